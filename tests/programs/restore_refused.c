/* Restore test: a process holding what restore cannot bring back. `imgtool
 * dump` must refuse it before anything is written or killed, so this
 * program is never restored: after the go file appears, the *original*
 * checks that the refused dump left every object exactly as it was, and
 * exits 0 (or reports FAIL lines on stderr).
 *   usage: restore_refused GOFILE WORKDIR MODE
 *   MODE objects  an eventfd (fd 40, counter 5), an epoll fd (fd 41) watching
 *                 a pipe with a byte in it (fd 42), a netlink route socket
 *                 (fd 43), a POSIX timer ticking (its signal blocked until
 *                 the go file appears)
 *        pty      a pty pair it opened, its master (fd 50) handed to a
 *                 child and closed here: slave fd 51 in raw mode with a
 *                 33x111 window and bytes queued from the master; the
 *                 pair split over two processes comes back as one pair
 *                 (the child's master reaches fd 51 both ways: it
 *                 echoes a line in capitals when fd 53, a pipe to it,
 *                 says so, and exits when 53 is closed)
 *        chardev  /dev/kmsg (fd 60, refused) beside /dev/null (61) and
 *                 /dev/urandom (62), which restore reopens faithfully
 *        storm    a POSIX timer signalling every millisecond, unblocked: the
 *                 dumper's injected syscalls are hit by its signals
 *        objects also holds a userfaultfd (fd 44), storm one at fd 43,
 *        which restore refuses: POSIX timers, eventfds and epoll fds alone
 *        are restorable now
 *        kernel:KIND  fd 70 is a kernel object restore refuses: io_uring,
 *                 perf_event, bpf (an array map), userfaultfd, pidfd (of
 *                 the process's parent), fanotify
 * Prints "timer N" (objects) and "pts PATH" (pty) before "ready". */
#include "rt_prog.h"

#include <poll.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdint.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/perf_event.h>
#include <sys/epoll.h>
#include <sys/fanotify.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <termios.h>

static const char kQueued[] = "typed but not read yet";

/* A kernel object of the kind named, at fd 70. */
static void make_kernel_object(const char *kind) {
  int fd = -1;
  if (!strcmp(kind, "io_uring")) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    fd = (int)syscall(SYS_io_uring_setup, 4, &p);
  } else if (!strcmp(kind, "perf_event")) {
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_SOFTWARE;
    a.config = PERF_COUNT_SW_TASK_CLOCK;
    fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
  } else if (!strcmp(kind, "bpf")) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = BPF_MAP_TYPE_ARRAY;
    a.key_size = 4;
    a.value_size = 4;
    a.max_entries = 1;
    fd = (int)syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a);
  } else if (!strcmp(kind, "userfaultfd")) {
    fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
  } else if (!strcmp(kind, "pidfd")) {
    fd = (int)syscall(SYS_pidfd_open, getppid(), 0);
  } else if (!strcmp(kind, "fanotify")) {
    fd = fanotify_init(FAN_CLASS_NOTIF, 0);
  } else {
    rt_die("unknown kernel object %s", kind);
  }
  if (fd < 0) rt_die("make %s", kind);
  rt_place(fd, 70);
}

static pid_t pty_holder = -1;

int main(int argc, char **argv) {
  rt_start(argc, argv, 4);
  const char *mode = argv[3];
  timer_t timer = 0;
  if (!strcmp(mode, "objects")) {
    rt_place(eventfd(5, 0), 40);
    int p[2];
    if (pipe(p) != 0) rt_die("pipe");
    rt_place(p[0], 42);
    if (write(p[1], "x", 1) != 1) rt_die("write");
    close(p[1]);
    rt_place(epoll_create1(0), 41);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1234};
    if (epoll_ctl(41, EPOLL_CTL_ADD, 42, &ev) != 0) rt_die("epoll_ctl");
    /* Sockets other than AF_UNIX, TCP and UDP are not restored. */
    rt_place(socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE), 43);
    /* Blocked until the go file: a timer signal arriving while the dumper
     * borrows a thread for an injected syscall is not what this tests. */
    signal(SIGRTMIN, rt_count_tick);
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &rt, NULL);
    struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN};
    if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0) rt_die("timer_create");
    struct itimerspec its = {{0, 20000000}, {0, 20000000}};
    if (timer_settime(timer, 0, &its, NULL) != 0) rt_die("timer_settime");
    printf("timer %ld\n", (long)(intptr_t)timer);
    rt_place((int)syscall(SYS_userfaultfd, O_CLOEXEC), 44);
  } else if (!strcmp(mode, "pty")) {
    struct termios t;
    rt_open_raw_pty(50, 51, &t);
    if (tcsetattr(51, TCSANOW, &t) != 0) rt_die("tcsetattr");
    struct winsize ws = {.ws_row = 33, .ws_col = 111};
    if (ioctl(51, TIOCSWINSZ, &ws) != 0) rt_die("TIOCSWINSZ");
    if (write(50, kQueued, strlen(kQueued)) != (ssize_t)strlen(kQueued)) rt_die("write to the master");
    int echo[2];
    if (pipe(echo) != 0) rt_die("pipe");
    rt_place(echo[0], 52);
    pty_holder = fork();
    if (pty_holder < 0) rt_die("fork");
    if (pty_holder == 0) {
      /* The terminal emulator in miniature: once the parent writes a line
       * to its end, the master echoes it back in capitals, then exits. */
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      close(51);
      close(echo[1]);
      char c;
      if (read(52, &c, 1) != 1) _exit(2);
      char line[16];
      ssize_t n = read(50, line, sizeof line);
      for (ssize_t i = 0; i < n; i++) line[i] = (char)(line[i] >= 'a' && line[i] <= 'z' ? line[i] - 32 : line[i]);
      if (n <= 0 || write(50, line, (size_t)n) != n) _exit(3);
      /* Its last close of the master hangs the slave up, which drops what
       * the slave has not read: it waits until the parent has. */
      while (read(52, &c, 1) > 0) {
      }
      _exit(0);
    }
    close(50);
    close(52);
    rt_place(echo[1], 53);
  } else if (!strcmp(mode, "storm")) {
    signal(SIGRTMIN, rt_count_tick);
    struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN};
    if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0) rt_die("timer_create");
    struct itimerspec its = {{0, 1000000}, {0, 1000000}};
    if (timer_settime(timer, 0, &its, NULL) != 0) rt_die("timer_settime");
    rt_place((int)syscall(SYS_userfaultfd, O_CLOEXEC), 43);
  } else if (!strncmp(mode, "kernel:", 7)) {
    make_kernel_object(mode + 7);
  } else if (!strcmp(mode, "chardev")) {
    rt_place(open("/dev/kmsg", O_RDONLY | O_NONBLOCK), 60);
    rt_place(open("/dev/null", O_RDWR), 61);
    rt_place(open("/dev/urandom", O_RDONLY), 62);
  } else {
    rt_die("unknown mode %s", mode);
  }
  rt_ready();
  rt_wait_go(argv[1]);

  if (!strcmp(mode, "objects")) {
    uint64_t v = 0;
    RT_CHECK(read(40, &v, 8) == 8 && v == 5, "eventfd: counter %llu, expected 5", (unsigned long long)v);
    struct epoll_event ev;
    int n = epoll_wait(41, &ev, 1, 1000);
    RT_CHECK(n == 1 && ev.data.u64 == 0x1234, "epoll: %d events", n);
    int protocol = -1;
    socklen_t len = sizeof protocol;
    RT_CHECK(getsockopt(43, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 && protocol == NETLINK_ROUTE,
             "fd 43 is no longer the netlink route socket");
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    sigprocmask(SIG_UNBLOCK, &rt, NULL);
    int before = rt_timer_ticks;
    double until = rt_now(CLOCK_MONOTONIC) + 5;
    while (rt_timer_ticks < before + 3 && rt_now(CLOCK_MONOTONIC) < until) rt_sleep_ms(5);
    RT_CHECK(rt_timer_ticks >= before + 3, "the POSIX timer stopped ticking (%d ticks)", rt_timer_ticks - before);
  } else if (!strcmp(mode, "pty")) {
    struct termios t;
    RT_CHECK(tcgetattr(51, &t) == 0 && !(t.c_lflag & (ICANON | ECHO)), "the slave is no longer in raw mode");
    RT_CHECK(t.c_cc[VMIN] == 1 && t.c_cc[VTIME] == 0, "VMIN %d VTIME %d", t.c_cc[VMIN], t.c_cc[VTIME]);
    struct winsize ws = {0};
    RT_CHECK(ioctl(51, TIOCGWINSZ, &ws) == 0 && ws.ws_row == 33 && ws.ws_col == 111, "window size %ux%u",
             ws.ws_row, ws.ws_col);
    char buf[64] = "";
    int fl = fcntl(51, F_GETFL);
    fcntl(51, F_SETFL, fl | O_NONBLOCK);
    ssize_t got = read(51, buf, sizeof buf - 1);
    RT_CHECK(got == (ssize_t)strlen(kQueued) && !memcmp(buf, kQueued, strlen(kQueued)),
             "queued bytes: read %zd \"%s\"", got, buf);
    /* Both ways through the one pair: the child's master reads what fd 51
     * writes and answers. */
    fcntl(51, F_SETFL, fl);
    RT_CHECK(write(51, "ping", 4) == 4 && write(53, "g", 1) == 1, "writing to the pty");
    memset(buf, 0, sizeof buf);
    got = 0;
    for (int tries = 0; got < 4 && tries < 100; tries++) {
      struct pollfd p = {51, POLLIN, 0};
      if (poll(&p, 1, 100) != 1) continue;
      ssize_t n = read(51, buf + got, 4 - (size_t)got);
      if (n <= 0) break;
      got += n;
    }
    RT_CHECK(got == 4 && !memcmp(buf, "PING", 4), "the master's answer: read %zd \"%s\"", got, buf);
    close(53);
    int st = 0;
    RT_CHECK(waitpid(pty_holder, &st, 0) == pty_holder && WIFEXITED(st) && WEXITSTATUS(st) == 0,
             "the master's holder: wait status 0x%x", st);
  } else if (!strcmp(mode, "storm")) {
    int before = rt_timer_ticks;
    double until = rt_now(CLOCK_MONOTONIC) + 5;
    while (rt_timer_ticks < before + 50 && rt_now(CLOCK_MONOTONIC) < until) rt_sleep_ms(1);
    RT_CHECK(rt_timer_ticks >= before + 50, "the POSIX timer stopped ticking (%d ticks)", rt_timer_ticks - before);
  } else if (!strncmp(mode, "kernel:", 7)) {
    RT_CHECK(fcntl(70, F_GETFD) >= 0, "the %s fd is gone", mode + 7);
  } else {
    char b[8];
    RT_CHECK(write(61, "x", 1) == 1, "/dev/null: write failed");
    RT_CHECK(read(62, b, sizeof b) == (ssize_t)sizeof b, "/dev/urandom: read failed");
    RT_CHECK(fcntl(60, F_GETFD) >= 0, "/dev/kmsg fd is gone");
  }
  return rt_finish();
}
