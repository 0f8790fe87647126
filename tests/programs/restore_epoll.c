/* Restore test: epoll (issue 13). An epoll fd (50) watching, with data
 * tags: a pipe's read end with a byte in it (fd 40, data 111), an eventfd
 * with counter 3 (fd 41, 222), a socketpair end with a message queued (fd
 * 42, 333), the other end with nothing queued (fd 43, 444), an EPOLLET
 * entry on a second eventfd (fd 44, 555), and an EPOLLONESHOT entry on a
 * readable pipe that has fired already (fd 45, 666: disabled); a second
 * epoll fd (51) with EPOLLEXCLUSIVE on the first pipe and the first epoll
 * fd nested in it. After the restore epoll_wait reports exactly the ready
 * targets with their data, and fdinfo shows the same events as before.
 *   usage: restore_epoll GOFILE WORKDIR */
#include "rt_prog.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

static void sort_lines(char *text);

static void add(int ep, int fd, uint32_t events, uint64_t data) {
  struct epoll_event ev = {.events = events, .data.u64 = data};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) rt_die("epoll_ctl add %d", fd);
}

/* The "tfd:" lines of an epoll fd's fdinfo, without pos/ino (which name
 * the new files). */
static void targets(int ep, char *out, size_t size) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", ep);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
  out[0] = 0;
  if (!f) return;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "tfd:", 4)) continue;
    char *pos = strstr(line, " pos:");
    if (pos) strcpy(pos, "\n");
    strncat(out, line, size - strlen(out) - 1);
  }
  fclose(f);
  sort_lines(out);
}

static int by_line(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The lines of `text` sorted in place (the interest list's order follows
 * the kernel's tree of file addresses, which differ after a restore). */
static void sort_lines(char *text) {
  char *lines[64];
  int n = 0;
  for (char *p = strtok(text, "\n"); p && n < 64; p = strtok(NULL, "\n")) lines[n++] = strdup(p);
  qsort(lines, n, sizeof lines[0], by_line);
  text[0] = 0;
  for (int i = 0; i < n; i++) {
    strcat(text, lines[i]);
    strcat(text, "\n");
    free(lines[i]);
  }
}

static char before50[2048], before51[2048];

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  int p[2], q[2], sv[2];
  if (pipe(p) != 0 || pipe(q) != 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0) rt_die("pipe/socketpair");
  rt_place(p[0], 40);
  if (write(p[1], "x", 1) != 1) rt_die("write");
  rt_place(p[1], 46);
  rt_place(eventfd(3, 0), 41);
  rt_place(sv[0], 42);
  rt_place(sv[1], 43);
  if (send(43, "m", 1, 0) != 1) rt_die("send");
  rt_place(eventfd(1, 0), 44);
  rt_place(q[0], 45);
  if (write(q[1], "y", 1) != 1) rt_die("write");
  rt_place(q[1], 47);
  rt_place(epoll_create1(0), 50);
  fcntl(50, F_SETFD, FD_CLOEXEC);
  add(50, 40, EPOLLIN, 111);
  add(50, 41, EPOLLIN, 222);
  add(50, 42, EPOLLIN, 333);
  add(50, 43, EPOLLIN, 444);
  add(50, 44, EPOLLIN | EPOLLET, 555);
  add(50, 45, EPOLLIN | EPOLLONESHOT, 666);
  /* Fire the one-shot and the edge: neither reports again until re-armed
   * or a new edge. */
  struct epoll_event evs[16];
  int n = epoll_wait(50, evs, 16, 0);
  if (n != 5) rt_die("setup epoll_wait gave %d events, expected 5", n);
  rt_place(epoll_create1(0), 51);
  add(51, 40, EPOLLIN | EPOLLEXCLUSIVE, 777);
  add(51, 50, EPOLLIN, 888);
  targets(50, before50, sizeof before50);
  targets(51, before51, sizeof before51);
  rt_ready();
  rt_wait_go(argv[1]);

  char after[2048];
  targets(50, after, sizeof after);
  RT_CHECK(!strcmp(after, before50), "fd 50 targets changed:\n%s-- was --\n%s", after, before50);
  targets(51, after, sizeof after);
  RT_CHECK(!strcmp(after, before51), "fd 51 targets changed:\n%s-- was --\n%s", after, before51);
  RT_CHECK(fcntl(50, F_GETFD) == FD_CLOEXEC && fcntl(51, F_GETFD) == 0, "close-on-exec of the epoll fds changed (%d %d)",
           fcntl(50, F_GETFD), fcntl(51, F_GETFD));
  n = epoll_wait(50, evs, 16, 0);
  uint64_t seen = 0;
  for (int i = 0; i < n; i++) {
    uint64_t d = evs[i].data.u64;
    if (d == 111) seen |= 1;
    else if (d == 222) seen |= 2;
    else if (d == 333) seen |= 4;
    else if (d == 555) seen |= 8; /* a new edge at restore: tolerated */
    else rt_fail("fd 50: unexpected event with data %llu (events 0x%x)", (unsigned long long)d, evs[i].events);
  }
  RT_CHECK((seen & 7) == 7, "fd 50: ready targets 0x%llx, expected the pipe, eventfd and socket (0x7)",
           (unsigned long long)seen);
  /* The level-triggered targets stay ready; the edge-triggered and the
   * fired one-shot do not report again. */
  n = epoll_wait(50, evs, 16, 0);
  RT_CHECK(n == 3, "fd 50: second epoll_wait gave %d events, expected 3", n);
  /* Readiness follows the targets: drain them and nothing is ready. */
  char c;
  uint64_t v;
  RT_CHECK(read(40, &c, 1) == 1 && read(41, &v, 8) == 8 && v == 3 && recv(42, &c, 1, 0) == 1,
           "draining the targets failed");
  n = epoll_wait(50, evs, 16, 0);
  RT_CHECK(n == 0, "fd 50: %d events after draining, expected 0", n);
  /* New readiness wakes a blocking wait; re-arming the one-shot works. */
  RT_CHECK(send(42, "w", 1, 0) == 1, "send");
  n = epoll_wait(50, evs, 16, 1000);
  RT_CHECK(n == 1 && evs[0].data.u64 == 444, "fd 50: after a send to 43: %d events", n);
  struct epoll_event re = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 667};
  RT_CHECK(epoll_ctl(50, EPOLL_CTL_MOD, 45, &re) == 0, "re-arming the one-shot: %s", strerror(errno));
  recv(43, &c, 1, 0);
  n = epoll_wait(50, evs, 16, 0);
  RT_CHECK(n == 1 && evs[0].data.u64 == 667, "fd 50: the re-armed one-shot: %d events", n);
  /* The nested epoll: 51 sees 50 ready (45 is ready) and the pipe 40 is empty now. */
  n = epoll_wait(51, evs, 16, 0);
  RT_CHECK(n == 0, "fd 51: %d events, expected 0 (the pipe and epoll 50 are drained)", n);
  return rt_finish();
}
