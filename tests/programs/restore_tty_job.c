/* Restore test: a full-screen style program on its controlling terminal
 * (issue 13 Terminals: `less` in tmux). Fds 0 and 1 are the terminal it
 * was run from, set to -icanon -echo -icrnl (ISIG kept, as less does);
 * prints "pid", "rows", "cols" before "ready". Restored by an imgtool
 * restore running in a new terminal, it checks: its termios on the new
 * terminal, a SIGWINCH and the new terminal's size (WORKDIR/newsize holds
 * "ROWS COLS"), its group in the foreground, open("/dev/tty") working.
 * With WORKDIR/jobctl: prints "stop-me", expects to be stopped (the test
 * types Ctrl-Z) and continued by `fg` with the terminal back in its
 * termios and its group in the foreground again. Prints "done" last.
 *   usage: restore_tty_job GOFILE WORKDIR */
#include "rt_prog.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>

static volatile sig_atomic_t winches, conts;
static void on_winch(int sig) { (void)sig; winches++; }
static void on_cont(int sig) { (void)sig; conts++; }

static int wait_for(volatile sig_atomic_t *counter, int ms) {
  for (int i = 0; i < ms / 10 && !*counter; i++) rt_sleep_ms(10);
  return *counter != 0;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  struct termios t;
  if (tcgetattr(0, &t) != 0) rt_die("tcgetattr");
  t.c_lflag &= ~(ICANON | ECHO);
  t.c_iflag &= ~ICRNL;
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  if (tcsetattr(0, TCSANOW, &t) != 0) rt_die("tcsetattr");
  struct winsize ws;
  if (ioctl(0, TIOCGWINSZ, &ws) != 0) rt_die("TIOCGWINSZ");
  signal(SIGWINCH, on_winch);
  signal(SIGCONT, on_cont);
  printf("pid %d\nrows %u\ncols %u\n", getpid(), ws.ws_row, ws.ws_col);
  rt_ready();
  rt_wait_go(argv[1]);

  char path[4096];
  snprintf(path, sizeof path, "%s/newsize", argv[2]);
  unsigned rows = 0, cols = 0;
  FILE *f = fopen(path, "r");
  if (!f || fscanf(f, "%u %u", &rows, &cols) != 2) rt_die("%s", path);
  fclose(f);
  RT_CHECK(wait_for(&winches, 5000), "no SIGWINCH after the restore");
  RT_CHECK(ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row == rows && ws.ws_col == cols, "window %ux%u, want %ux%u",
           ws.ws_row, ws.ws_col, rows, cols);
  struct termios now;
  RT_CHECK(tcgetattr(0, &now) == 0 && now.c_lflag == t.c_lflag && now.c_iflag == t.c_iflag,
           "the terminal's lflag %#x iflag %#x, want %#x %#x (icanon echo: the restoring terminal's)", now.c_lflag,
           now.c_iflag, t.c_lflag, t.c_iflag);
  RT_CHECK(tcgetpgrp(0) == getpgrp(), "foreground group %d, want ours %d", tcgetpgrp(0), getpgrp());
  int tty = open("/dev/tty", O_RDWR);
  RT_CHECK(tty >= 0, "open /dev/tty: %s (ENXIO: no controlling terminal)", strerror(errno));
  // /dev/tty's own inode is 5:0; what it reaches is the terminal on fd 0.
  int sid = -1;
  RT_CHECK(tty >= 0 && ioctl(tty, TIOCGSID, &sid) == 0 && sid == getsid(0), "/dev/tty's session %d, want ours %d", sid,
           getsid(0));
  if (tty >= 0) close(tty);

  snprintf(path, sizeof path, "%s/jobctl", argv[2]);
  if (access(path, F_OK) == 0) {
    conts = 0;
    printf("stop-me\n");
    fflush(stdout);
    RT_CHECK(wait_for(&conts, 30000), "not stopped and continued within 30 s");
    RT_CHECK(tcgetpgrp(0) == getpgrp(), "after fg: foreground group %d, want ours %d", tcgetpgrp(0), getpgrp());
    RT_CHECK(tcgetattr(0, &now) == 0 && now.c_lflag == t.c_lflag && now.c_iflag == t.c_iflag,
             "after fg: lflag %#x iflag %#x, want %#x %#x", now.c_lflag, now.c_iflag, t.c_lflag, t.c_iflag);
  }
  printf("done\n");
  fflush(stdout);
  return rt_finish();
}
