/* Restore test: a pty pair split over two processes, as `script` or a
 * terminal emulator makes it (issue 13). The parent holds the master
 * (fd 40); its child leads a session of its own with the slave as its
 * controlling terminal on fds 0, 1 and 2, its group in the foreground,
 * canonical mode with echo. Before "ready" the child has said "child up"
 * through the pair. After the restore the parent types "hello" on the
 * master; the child checks that the slave is still its controlling
 * terminal (/dev/tty opens, it leads the session, its group has the
 * foreground), reads the line and answers "got hello"; the parent reads
 * the answer from the master and checks the child's exit status.
 *   usage: restore_pty_script GOFILE WORKDIR */
#include "rt_prog.h"

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>

/* Reads from fd until `want` appears in what was read (10 s at most);
 * what was read goes to out. */
static int read_until(int fd, const char *want, char *out, size_t cap) {
  size_t got = 0;
  out[0] = 0;
  double until = rt_now(CLOCK_MONOTONIC) + 10;
  while (!strstr(out, want) && got + 1 < cap && rt_now(CLOCK_MONOTONIC) < until) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = read(fd, out + got, cap - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
    out[got] = 0;
  }
  return strstr(out, want) != NULL;
}

static int child_main(const char *gofile, const char *pts) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (setsid() < 0) _exit(80);
  /* A session leader without a terminal acquires the one it opens. */
  int s = open(pts, O_RDWR);
  if (s < 0) _exit(81);
  if (dup2(s, 0) < 0 || dup2(s, 1) < 0 || dup2(s, 2) < 0) _exit(82);
  if (s > 2) close(s);
  if (tcsetpgrp(0, getpgrp()) != 0) _exit(83);
  printf("child up\n");
  fflush(stdout);
  rt_wait_go(gofile);
  int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
  RT_CHECK(tty >= 0, "/dev/tty: %s (no controlling terminal)", strerror(errno));
  /* TIOCGSID answers only on the caller's controlling terminal. */
  pid_t sid = 0;
  RT_CHECK(ioctl(0, TIOCGSID, &sid) == 0 && sid == getpid(), "the slave on fd 0 is not its controlling terminal: %s",
           strerror(errno));
  if (tty >= 0) close(tty);
  RT_CHECK(getsid(0) == getpid(), "no longer leads its session");
  RT_CHECK(tcgetpgrp(0) == getpgrp(), "its group lost the foreground (%d, not %d)", tcgetpgrp(0), getpgrp());
  struct termios t;
  RT_CHECK(tcgetattr(0, &t) == 0 && (t.c_lflag & ICANON) && (t.c_lflag & ECHO), "the slave is not canonical with echo");
  char line[64] = "";
  RT_CHECK(fgets(line, sizeof line, stdin) && !strcmp(line, "hello\n"), "read \"%s\" from the terminal", line);
  printf("got %s", line);
  fflush(stdout);
  _exit(rt_failures ? 1 : 0);
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) rt_die("posix_openpt");
  if (m != 40) {
    if (dup2(m, 40) < 0) rt_die("dup2");
    close(m);
  }
  char pts[64];
  if (ptsname_r(40, pts, sizeof pts) != 0) rt_die("ptsname");
  fflush(stdout);
  pid_t child = fork();
  if (child < 0) rt_die("fork");
  if (child == 0) {
    close(40);
    return child_main(argv[1], pts);
  }
  char buf[512];
  if (!read_until(40, "child up", buf, sizeof buf)) rt_die("the child did not come up (read \"%s\")", buf);
  printf("pts %s\n", pts);
  rt_ready();
  rt_wait_go(argv[1]);

  RT_CHECK(write(40, "hello\n", 6) == 6, "typing on the master: %s", strerror(errno));
  RT_CHECK(read_until(40, "got hello", buf, sizeof buf), "the child's answer: read \"%s\"", buf);
  int st = 0;
  RT_CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
           "the child: wait status 0x%x; the terminal showed \"%s\"", st, buf);
  return rt_finish();
}
