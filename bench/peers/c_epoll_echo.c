/*
 * C epoll TCP echo server (benchmark peer): the fairness and cost floor.
 * One thread, one level-triggered epoll loop; every socket epoll_wait
 * reports is served once per turn (one recv of up to 64 KiB, its bytes sent
 * back), so every ready client gets one turn before anyone gets two. A
 * client that does not read its echo is not read from until the echo has
 * gone out (the rest is kept and sent on EPOLLOUT).
 *
 *   gcc -O2 -o c_epoll_echo bench/peers/c_epoll_echo.c
 *   ./c_epoll_echo PORT          (0 = let the system choose)
 *
 * Prints "listening on PORT" once ready. Listens on [::] (IPv4 too).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (64 * 1024)
#define MAX_EVENTS 4096

typedef struct {
  char *pending; /* bytes not yet echoed (client not reading), or NULL */
  size_t len, off;
} Conn;

static Conn *conns;

static void on_term(int sig) {
  (void)sig;
  _exit(0); /* SIGTERM ends the benchmark's run: a clean exit */
}
static int max_fd;

static void drop(int ep, int fd) {
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  free(conns[fd].pending);
  conns[fd].pending = NULL;
  close(fd);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 7777;
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, on_term);
  max_fd = 1 << 17;
  conns = calloc(max_fd, sizeof *conns);
  int ls = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int on = 1, off = 0;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  setsockopt(ls, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
  if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 511)) {
    perror("c_epoll_echo");
    return 1;
  }
  socklen_t alen = sizeof a;
  getsockname(ls, (struct sockaddr *)&a, &alen);
  printf("listening on %d\n", ntohs(a.sin6_port));
  fflush(stdout);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  static struct epoll_event events[MAX_EVENTS];
  static char buf[BUF];
  for (;;) {
    int n = epoll_wait(ep, events, MAX_EVENTS, -1);
    if (n < 0 && errno != EINTR) return 1;
    for (int k = 0; k < n; k++) {
      int fd = events[k].data.fd;
      if (fd == ls) {
        for (;;) {
          int c = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
          if (c < 0) break;
          if (c >= max_fd) {
            close(c);
            continue;
          }
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
          struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        }
        continue;
      }
      Conn *x = &conns[fd];
      if (x->pending) { /* EPOLLOUT: finish the echo, then read again */
        ssize_t w = send(fd, x->pending + x->off, x->len - x->off, 0);
        if (w < 0 && errno != EAGAIN) {
          drop(ep, fd);
          continue;
        }
        if (w > 0) x->off += w;
        if (x->off < x->len) continue;
        free(x->pending);
        x->pending = NULL;
        struct epoll_event ce = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ce);
        continue;
      }
      ssize_t r = recv(fd, buf, BUF, 0);
      if (r < 0 && errno == EAGAIN) continue;
      if (r <= 0) {
        drop(ep, fd);
        continue;
      }
      ssize_t w = send(fd, buf, r, 0);
      if (w < 0 && errno != EAGAIN) {
        drop(ep, fd);
        continue;
      }
      if (w < 0) w = 0;
      if (w < r) {
        x->pending = malloc(r - w);
        memcpy(x->pending, buf + w, r - w);
        x->len = r - w;
        x->off = 0;
        struct epoll_event ce = {.events = EPOLLOUT, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ce);
      }
    }
  }
}
