/*
 * Fair load generator for the ping-pong scenarios (TCP and UDP): one C
 * process, one epoll loop. run.ts compiles it with gcc into bench/.cache/.
 *
 *   load_epoll SCENARIO HOST PORT CONNS SIZE DURATION_S WARMUP_S TIMEOUT_MS
 *              SERVER_PID            (SCENARIO: tcp-pingpong | udp-pingpong |
 *                                     tcp-bulk; SERVER_PID 0: no server CPU)
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
 *
 * tcp-bulk: each connection streams its pattern in SIZE-byte non-blocking
 * writes while reading the echo back in BULK_READ-byte reads, and checks
 * every byte against the pattern at its stream position; the rate counts
 * the bytes echoed inside the window. After the window it stops writing,
 * shuts its side down and reads the rest (for at most TIMEOUT_MS): every
 * byte sent must have come back. Big reads and a big send buffer keep
 * its cost per byte to the kernel's (a copy in, a copy out, the loopback
 * delivery) and a memcmp: what an echo server pays at the very least, so
 * only a server that adds nearly nothing to the kernel's work can bring
 * it near a full core.
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
/* Bulk: bytes asked of each recv(). A few syscalls per 64 KiB written. */
#define BULK_READ (256 * 1024)
/* Bulk: send buffer asked for; the receive buffer is left to the kernel's
 * auto-tuning, which grows it further (net.ipv4.tcp_rmem). */
#define BULK_SNDBUF (4 * 1024 * 1024)

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

/* ------------------------------------------------------------ tcp-bulk */

typedef struct {
  int fd;
  int writing; /* still streaming: the window is not over */
  int done;    /* the server closed after echoing everything */
  unsigned long long sent, received, counted;
} Stream;

/* The pattern of connection `seed` from stream position `pos` on. */
static const unsigned char *pattern_at(const unsigned char *ref, int seed,
                                       unsigned long long pos) {
  return ref + (seed + pos) % PATTERN_PERIOD;
}

/* Read everything there is: every byte is checked against the pattern at
 * its stream position; `counting`: the bytes count for the rate. Returns
 * 1 when the server closed (or failed), 0 when nothing is left to read. */
static int bulk_read(Stream *x, int i, const unsigned char *ref,
                     unsigned char *buf, int counting) {
  for (;;) {
    ssize_t r = recv(x->fd, buf, BULK_READ, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (r <= 0) {
      if (r < 0) fail(strerror(errno), i);
      return 1;
    }
    const unsigned char *want = pattern_at(ref, i, x->received);
    if (x->received + r > x->sent) {
      fail("more bytes echoed than sent", i);
    } else if (memcmp(buf, want, r)) {
      ssize_t at = 0;
      while (buf[at] == want[at]) at++;
      char what[96];
      snprintf(what, sizeof what, "echo differs at byte %llu",
               x->received + at);
      fail(what, i);
    } else if (counting) {
      x->counted += r;
    }
    x->received += r;
  }
}

/* Write SIZE-byte slices of the pattern until the socket buffer is full. */
static void bulk_write(Stream *x, int i, const unsigned char *ref, size_t size,
                       int ep) {
  while (x->writing) {
    ssize_t w = send(x->fd, pattern_at(ref, i, x->sent), size, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (w < 0) {
      fail(strerror(errno), i);
      x->writing = 0;
      struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
      epoll_ctl(ep, EPOLL_CTL_MOD, x->fd, &ev);
      return;
    }
    x->sent += w;
  }
}

static int bulk(const char *host, const char *port, struct addrinfo *addr,
                int conns, size_t size, double duration, double warmup,
                double timeout, int server_pid) {
  size_t span = size > BULK_READ ? size : BULK_READ;
  unsigned char *ref = malloc(span + PATTERN_PERIOD);
  for (size_t i = 0; i < span + PATTERN_PERIOD; i++) {
    ref[i] = (unsigned char)((i % PATTERN_PERIOD) ^ 0x5a);
  }
  unsigned char *buf = malloc(BULK_READ);
  Stream *c = calloc(conns, sizeof *c);
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");

  /* One connection at a time, each with one blocking SIZE-byte echo, as
   * in ping-pong: the bulk stream then goes on from position SIZE. */
  for (int i = 0; i < conns; i++) {
    int fd = socket(addr->ai_family, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (connect(fd, addr->ai_addr, addr->ai_addrlen) < 0) die("connect");
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    /* The kernel caps it at net.core.wmem_max: fewer wake-ups to refill. */
    int sndbuf = BULK_SNDBUF;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (send(fd, pattern_at(ref, i, 0), size, 0) != (ssize_t)size) {
      die("first send");
    }
    c[i].fd = fd;
    c[i].sent = size;
    while (c[i].received < size) {
      size_t want = size - c[i].received;
      ssize_t n = recv(fd, buf, want < BULK_READ ? want : BULK_READ, 0);
      if (n <= 0) die("first echo");
      if (memcmp(buf, pattern_at(ref, i, c[i].received), n)) {
        fail("wrong bytes", i);
      }
      c[i].received += n;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT,
                             .data.u32 = (uint32_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    c[i].writing = 1;
  }

  double start = now(), window = start + warmup, end = window + duration;
  int in_window = 0;
  double cpu0 = 0, srv0 = -1, t0 = 0;
  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    double t = now();
    if (!in_window && t >= window) {
      in_window = 1;
      cpu0 = own_cpu();
      srv0 = server_cpu(server_pid);
      t0 = now();
    }
    if (t >= end) break;
    int n = epoll_wait(ep, events, MAX_EVENTS, 5);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int k = 0; k < n; k++) {
      int i = (int)events[k].data.u32;
      Stream *x = &c[i];
      if (x->done) continue;
      if (events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        if (bulk_read(x, i, ref, buf, in_window)) {
          fail("closed by server", i);
          epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
          x->done = 1;
          continue;
        }
      }
      if (events[k].events & EPOLLOUT) bulk_write(x, i, ref, size, ep);
    }
  }
  double t1 = now();
  double srv1 = server_cpu(server_pid);
  double cpu = own_cpu() - cpu0;
  double elapsed = t1 - t0;

  /* Stop writing; the server echoes what it still has, then closes. */
  int open_streams = 0;
  for (int i = 0; i < conns; i++) {
    if (c[i].done) continue;
    open_streams++;
    c[i].writing = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_MOD, c[i].fd, &ev);
    shutdown(c[i].fd, SHUT_WR);
  }
  double give_up = now() + timeout;
  while (open_streams > 0 && now() < give_up) {
    int n = epoll_wait(ep, events, MAX_EVENTS, 5);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int k = 0; k < n; k++) {
      int i = (int)events[k].data.u32;
      Stream *x = &c[i];
      if (x->done || !bulk_read(x, i, ref, buf, 0)) continue;
      x->done = 1;
      open_streams--;
      epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
      if (x->received != x->sent) {
        char what[96];
        snprintf(what, sizeof what, "sent %llu B, echoed %llu B", x->sent,
                 x->received);
        fail(what, i);
      }
    }
  }

  unsigned long long ops = 0, min = 0, max = 0;
  for (int i = 0; i < conns; i++) {
    if (!c[i].done) {
      char what[96];
      snprintf(what, sizeof what,
               "not closed %.1f s after the end: sent %llu B, echoed %llu B",
               timeout, c[i].sent, c[i].received);
      fail(what, i);
    }
    ops += c[i].counted;
    if (i == 0 || c[i].counted < min) min = c[i].counted;
    if (c[i].counted > max) max = c[i].counted;
    close(c[i].fd);
  }
  double pct = 100 * cpu / elapsed;
  printf("{\"scenario\":\"tcp-bulk\",\"target\":\"%s:%s\",\"conns\":%d,"
         "\"size\":%zu,\"elapsed_s\":%.3f,\"ops\":%llu,\"ops_per_s\":%.0f,"
         "\"unit\":\"byte\",\"errors\":%ld,\"error_samples\":[",
         host, port, conns, size, elapsed, ops, ops / elapsed, errors);
  for (long e = 0; e < errors && e < 5; e++) {
    printf("%s\"%s\"", e ? "," : "", samples[e]);
  }
  printf("],\"load_cpu_s\":%.3f,\"load_cpu_pct\":%.1f,\"load_procs\":1,"
         "\"load_busiest_proc_pct\":%.1f,\"generator_bound\":%s,"
         "\"gbytes_per_s\":%.3f,\"per_conn_min\":%llu,\"per_conn_max\":%llu,"
         "\"fairness\":%.2f",
         cpu, pct, pct, pct >= GENERATOR_BOUND_PCT ? "true" : "false",
         ops / elapsed / 1e9, min, max, (double)max / (min > 0 ? min : 1));
  if (srv0 >= 0 && srv1 >= 0) {
    printf(",\"server_cpu_s\":%.2f,\"server_cpu_us_per_op\":%.4g",
           srv1 - srv0, ops ? 1e6 * (srv1 - srv0) / ops : 0);
  }
  printf("}\n");
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 10) {
    fprintf(stderr,
            "usage: load_epoll SCENARIO HOST PORT CONNS SIZE DURATION_S "
            "WARMUP_S TIMEOUT_MS SERVER_PID\n");
    return 2;
  }
  int udp = strcmp(argv[1], "udp-pingpong") == 0;
  int is_bulk = strcmp(argv[1], "tcp-bulk") == 0;
  if (!udp && !is_bulk && strcmp(argv[1], "tcp-pingpong")) {
    fprintf(stderr, "load_epoll: unknown scenario %s\n", argv[1]);
    return 2;
  }
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
  if (is_bulk) {
    return bulk(host, port, addr, conns, size, duration, warmup, timeout,
                server_pid);
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
