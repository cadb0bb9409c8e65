/* pingpong_driver.c — fair ping-pong load for a TCP echo server on 127.0.0.1.
 *
 *   gcc -O2 -o driver bench/repro/pingpong_driver.c
 *   ./driver PORT CONNS TOTAL
 *
 * Opens CONNS connections, one at a time, and has each echo one 64-byte
 * message before counting starts (so a client still in the accept backlog
 * does not start late). Then every connection keeps one 64-byte message in
 * flight (send, wait for its 64 bytes back, send again) until TOTAL messages
 * have come back, and it prints how many came back on the busiest and on the
 * slowest connection. One epoll loop reads every ready socket in each turn,
 * at a few microseconds a message, so the driver is fair itself and the
 * server sets the pace ("driver CPU" near 100% would say otherwise). Every
 * byte is checked. Gives up after 60 s. Loopback only.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 64
static time_t deadline;

static void die(const char *what) {
  fprintf(stderr, "driver: %s\n", what);
  exit(1);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec +
         u.ru_stime.tv_usec / 1e6;
}

/* Connection i's message: 64 bytes of its own value, so crossed wires show. */
static unsigned char value(int i) { return (unsigned char)(i % 251); }

static int dial(int port, int i) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, got = 0;
  if (fd < 0) die("socket (ulimit -n too low?)");
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    perror("driver: connect");
    exit(1);
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  unsigned char msg[MSG], buf[MSG];
  memset(msg, value(i), MSG);
  if (send(fd, msg, MSG, 0) != MSG) die("first send");
  while (got < MSG) { /* blocking: the first echo, not counted */
    ssize_t r = recv(fd, buf + got, MSG - got, 0);
    if (r <= 0) die("first echo");
    got += r;
  }
  if (memcmp(buf, msg, MSG)) die("wrong bytes in the first echo");
  if (time(NULL) > deadline) die("gave up after 60 s while connecting");
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s PORT CONNS TOTAL\n", argv[0]);
    return 2;
  }
  int port = atoi(argv[1]), conns = atoi(argv[2]);
  long total = atol(argv[3]), sent = 0, received = 0;
  if (port <= 0 || port > 65535 || conns <= 0 || total < conns)
    die("need 0 < PORT < 65536, CONNS > 0 and TOTAL >= CONNS");
  deadline = time(NULL) + 60;
  int *fd = calloc(conns, sizeof *fd), *got = calloc(conns, sizeof *got);
  long *count = calloc(conns, sizeof *count);
  int ep = epoll_create1(0);
  for (int i = 0; i < conns; i++) {
    fd[i] = dial(port, i);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd[i], &ev);
  }
  unsigned char msg[MSG], buf[MSG];
  double t0 = now(), cpu0 = cpu();
  for (int i = 0; i < conns; i++, sent++) {
    memset(msg, value(i), MSG);
    if (send(fd[i], msg, MSG, 0) != MSG) die("send");
  }
  struct epoll_event events[4096];
  while (received < total) {
    if (time(NULL) > deadline) die("gave up after 60 s");
    int n = epoll_wait(ep, events, 4096, 100);
    for (int k = 0; k < n; k++) { /* every ready socket, every turn */
      int i = (int)events[k].data.u32;
      ssize_t r = recv(fd[i], buf, MSG - got[i], 0);
      if (r <= 0) die(r == 0 ? "closed by the server" : "recv");
      for (ssize_t b = 0; b < r; b++)
        if (buf[b] != value(i)) die("wrong bytes");
      if ((got[i] += r) < MSG) continue;
      got[i] = 0;
      count[i]++;
      received++;
      if (sent < total) {
        memset(msg, value(i), MSG);
        if (send(fd[i], msg, MSG, 0) != MSG) die("send");
        sent++;
      }
    }
  }
  double seconds = now() - t0, busy = (cpu() - cpu0) / seconds;
  long most = count[0], least = count[0];
  for (int i = 1; i < conns; i++) {
    if (count[i] > most) most = count[i];
    if (count[i] < least) least = count[i];
  }
  printf("connections %d  messages %ld  busiest %ld  slowest %ld  "
         "busiest/slowest %s%.1f  msg/s %.0f  driver CPU %.0f%%\n",
         conns, received, most, least, least ? "" : ">",
         (double)most / (least ? least : 1), received / seconds, 100 * busy);
  return 0;
}
