/*
 * Fair load generator for the ping-pong scenarios (TCP and UDP): one C
 * process, one epoll loop. run.ts compiles it with gcc into bench/.cache/.
 *
 *   load_epoll SCENARIO HOST PORT CONNS SIZE DURATION_S WARMUP_S TIMEOUT_MS
 *              SERVER_PID            (SCENARIO: tcp-pingpong | udp-pingpong;
 *                                     SERVER_PID 0: no server CPU)
 *
 * Why C: a Deno generator meets tokio's budget of 128 ready reads per poll
 * and is unfair itself past ~128 busy connections per worker; Node.js is
 * fair but costs ~20 us of CPU per message, as much as the servers it
 * measures. Here every socket that epoll_wait reports is served in the same
 * turn, at a few us per message, so the server sets the pace. The report
 * says when this process was itself near a full core (generator_bound).
 *
 * Each connection sends SIZE bytes of its own pattern (common.ts
 * makeReference, shifted by the connection's number), waits for all of
 * them back, checks every byte, and sends again. Only the timed window
 * (after WARMUP_S) counts. Prints ONE JSON object (LoadResult) on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
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

#define PATTERN_PERIOD 251
#define MAX_SAMPLES 4000000
#define GENERATOR_BOUND_PCT 90.0
#define MAX_EVENTS 4096

typedef struct {
  int fd;
  size_t got;
  double started;
  long count;
  unsigned char *msg;
  unsigned char *buf;
  int dead;
} Conn;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double own_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

static double server_cpu(int pid) {
  char path[64], text[4096];
  if (pid <= 0) return -1;
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  char *p = strrchr(text, ')');
  if (!p) return -1;
  unsigned long utime = 0, stime = 0;
  /* after ") ": state is field 3; utime and stime are fields 14 and 15 */
  int field = 2;
  for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
    field++;
    if (field == 14) utime = strtoul(tok, NULL, 10);
    if (field == 15) {
      stime = strtoul(tok, NULL, 10);
      break;
    }
  }
  return (utime + stime) / 100.0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static long errors = 0;
static char samples[5][160];

static void fail(const char *what, int conn) {
  if (errors < 5) {
    snprintf(samples[errors], sizeof samples[0], "conn %d: %s", conn, what);
  }
  errors++;
}

static void die(const char *what) {
  fprintf(stderr, "load_epoll: %s: %s\n", what, strerror(errno));
  exit(1);
}

int main(int argc, char **argv) {
  if (argc != 10) {
    fprintf(stderr,
            "usage: load_epoll SCENARIO HOST PORT CONNS SIZE DURATION_S "
            "WARMUP_S TIMEOUT_MS SERVER_PID\n");
    return 2;
  }
  int udp = strcmp(argv[1], "udp-pingpong") == 0;
  const char *host = argv[2];
  const char *port = argv[3];
  int conns = atoi(argv[4]);
  size_t size = (size_t)atol(argv[5]);
  double duration = atof(argv[6]), warmup = atof(argv[7]);
  double timeout = atof(argv[8]) / 1000.0;
  int server_pid = atoi(argv[9]);
  if (conns < 1 || size < 1) {
    fprintf(stderr, "load_epoll: CONNS and SIZE must be >= 1\n");
    return 2;
  }

  struct addrinfo hints = {0}, *addr;
  hints.ai_socktype = udp ? SOCK_DGRAM : SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  int gai = getaddrinfo(host, port, &hints, &addr);
  if (gai) {
    fprintf(stderr, "load_epoll: %s: %s\n", host, gai_strerror(gai));
    return 1;
  }

  unsigned char *ref = malloc(size + PATTERN_PERIOD);
  for (size_t i = 0; i < size + PATTERN_PERIOD; i++) {
    ref[i] = (unsigned char)((i % PATTERN_PERIOD) ^ 0x5a);
  }
  Conn *c = calloc(conns, sizeof *c);
  double *lat = malloc(sizeof(double) * MAX_SAMPLES);
  long nlat = 0, losses = 0;
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");

  /* Open one connection at a time, each with one echo: a server with
   * listen(1) (the sheets') never finds its backlog full. */
  for (int i = 0; i < conns; i++) {
    c[i].msg = ref + (i % PATTERN_PERIOD);
    c[i].buf = malloc(size);
    int fd = socket(addr->ai_family, addr->ai_socktype, 0);
    if (fd < 0) die("socket");
    if (connect(fd, addr->ai_addr, addr->ai_addrlen) < 0) die("connect");
    if (!udp) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      struct timeval tv = {10, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      if (send(fd, c[i].msg, size, 0) != (ssize_t)size) die("first send");
      size_t got = 0;
      while (got < size) {
        ssize_t n = recv(fd, c[i].buf + got, size - got, 0);
        if (n <= 0) die("first echo");
        got += n;
      }
      if (memcmp(c[i].buf, c[i].msg, size)) fail("wrong bytes", i);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    c[i].fd = fd;
  }

  double start = now();
  for (int i = 0; i < conns; i++) {
    c[i].started = start;
    if (send(c[i].fd, c[i].msg, size, 0) != (ssize_t)size) fail("send", i);
  }
  double window = start + warmup, end = window + duration;
  int in_window = 0;
  double cpu0 = 0, srv0 = -1, t0 = 0;
  struct epoll_event events[MAX_EVENTS];
  double last_sweep = start;
  for (;;) {
    double t = now();
    if (!in_window && t >= window) {
      in_window = 1;
      cpu0 = own_cpu();
      srv0 = server_cpu(server_pid);
      t0 = now();
      for (int i = 0; i < conns; i++) c[i].count = 0;
    }
    if (t >= end) break;
    if (udp && t - last_sweep >= timeout / 4) {
      /* a datagram not echoed within the timeout is lost: send again */
      last_sweep = t;
      for (int i = 0; i < conns; i++) {
        if (t - c[i].started >= timeout) {
          if (in_window) losses++;
          c[i].started = t;
          send(c[i].fd, c[i].msg, size, 0);
        }
      }
    }
    int n = epoll_wait(ep, events, MAX_EVENTS, 5);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int k = 0; k < n; k++) {
      int i = (int)events[k].data.u32;
      Conn *x = &c[i];
      for (;;) {
        ssize_t r = recv(x->fd, x->buf + x->got, size - x->got, 0);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (r <= 0) {
          fail(r == 0 ? "closed by server" : strerror(errno), i);
          epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
          x->dead = 1;
          break;
        }
        if (udp && (size_t)r != size) {
          fail("short datagram", i);
          continue;
        }
        x->got += r;
        if (x->got < size) continue;
        x->got = 0;
        if (memcmp(x->buf, x->msg, size)) fail("wrong bytes", i);
        double done = now();
        if (in_window) {
          x->count++;
          if (nlat < MAX_SAMPLES) lat[nlat++] = (done - x->started) * 1000;
        }
        x->started = done;
        if (send(x->fd, x->msg, size, 0) != (ssize_t)size) fail("send", i);
        if (!udp) break; /* one message in flight: nothing more to read */
      }
    }
  }
  double t1 = now();
  double srv1 = server_cpu(server_pid);
  double cpu = own_cpu() - cpu0;
  double elapsed = t1 - t0;

  long ops = 0, min = -1, max = 0;
  for (int i = 0; i < conns; i++) {
    ops += c[i].count;
    if (min < 0 || c[i].count < min) min = c[i].count;
    if (c[i].count > max) max = c[i].count;
    close(c[i].fd);
  }
  qsort(lat, nlat, sizeof(double), cmp_double);
  double p50 = nlat ? lat[(long)(0.5 * nlat)] : 0;
  double p99 = nlat ? lat[(long)(0.99 * nlat)] : 0;
  double pct = 100 * cpu / elapsed;
  printf("{\"scenario\":\"%s\",\"target\":\"%s:%s\",\"conns\":%d,"
         "\"size\":%zu,\"elapsed_s\":%.3f,\"ops\":%ld,\"ops_per_s\":%.0f,"
         "\"unit\":\"%s\",\"errors\":%ld,\"error_samples\":[",
         argv[1], host, port, conns, size, elapsed, ops, ops / elapsed,
         udp ? "datagram" : "msg", errors);
  for (long e = 0; e < errors && e < 5; e++) {
    printf("%s\"%s\"", e ? "," : "", samples[e]);
  }
  printf("],\"load_cpu_s\":%.3f,\"load_cpu_pct\":%.1f,\"load_procs\":1,"
         "\"load_busiest_proc_pct\":%.1f,\"generator_bound\":%s,"
         "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"per_conn_min\":%ld,"
         "\"per_conn_max\":%ld,\"fairness\":%.2f",
         cpu, pct, pct, pct >= GENERATOR_BOUND_PCT ? "true" : "false", p50,
         p99, min, max, (double)max / (min > 0 ? min : 1));
  if (udp) printf(",\"losses\":%ld", losses);
  if (srv0 >= 0 && srv1 >= 0) {
    printf(",\"server_cpu_s\":%.2f,\"server_cpu_us_per_op\":%.2f",
           srv1 - srv0, ops ? 1e6 * (srv1 - srv0) / ops : 0);
  }
  printf("}\n");
  return 0;
}
