/* Restore test: pty pairs the program opened itself (issue 13 Terminals,
 * issue 17 ptys). Pair 1: master fd 40 in packet mode, slave fd 41 in raw
 * mode with a 33x111 window, VMIN 3 / VTIME 7, exclusive, the slave owned
 * by 1234:5 with mode 0640, bytes queued both ways (written to the master
 * and not read by the slave, written to the slave and not read by the
 * master). Pair 2: master fd 42 only, never unlocked. After the restore:
 * each setting is back, the slave fd is the new master's slave and works
 * both ways, the queued bytes arrive once, pair 2 is still locked.
 * Prints "pts PATH" (pair 1's slave) before "ready".
 *   usage: restore_pty GOFILE WORKDIR */
#include "rt_prog.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>

static const char kToSlave[] = "typed-before-the-dump";
static const char kToMaster[] = "written-before-the-dump";

/* Reads what fd has within 2 s (at most cap bytes). */
static ssize_t read_some(int fd, char *buf, size_t cap) {
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, 2000) <= 0) return -1;
  return read(fd, buf, cap);
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  struct termios t;
  rt_open_raw_pty(40, 41, &t);
  t.c_cc[VMIN] = 3;
  t.c_cc[VTIME] = 7;
  if (tcsetattr(41, TCSANOW, &t) != 0) rt_die("tcsetattr");
  struct winsize ws = {.ws_row = 33, .ws_col = 111, .ws_xpixel = 5, .ws_ypixel = 9};
  if (ioctl(41, TIOCSWINSZ, &ws) != 0) rt_die("TIOCSWINSZ");
  int on = 1;
  if (ioctl(40, TIOCPKT, &on) != 0) rt_die("TIOCPKT");
  if (ioctl(41, TIOCEXCL) != 0) rt_die("TIOCEXCL");
  if (fchown(41, 1234, 5) != 0 || fchmod(41, 0640) != 0) rt_die("fchown/fchmod of the slave");
  if (write(40, kToSlave, strlen(kToSlave)) != (ssize_t)strlen(kToSlave)) rt_die("write to the master");
  if (write(41, kToMaster, strlen(kToMaster)) != (ssize_t)strlen(kToMaster)) rt_die("write to the slave");
  rt_place(posix_openpt(O_RDWR | O_NOCTTY), 42);  // pair 2: locked
  rt_sleep_ms(50);  /* the pty's work queue delivers the writes */
  rt_ready();
  rt_wait_go(argv[1]);

  struct termios now;
  RT_CHECK(tcgetattr(41, &now) == 0, "slave fd 41: tcgetattr: %s", strerror(errno));
  RT_CHECK(now.c_lflag == t.c_lflag && now.c_iflag == t.c_iflag && now.c_oflag == t.c_oflag && now.c_cflag == t.c_cflag,
           "termios flags: lflag %#x iflag %#x oflag %#x cflag %#x, want %#x %#x %#x %#x", now.c_lflag, now.c_iflag,
           now.c_oflag, now.c_cflag, t.c_lflag, t.c_iflag, t.c_oflag, t.c_cflag);
  RT_CHECK(now.c_cc[VMIN] == 3 && now.c_cc[VTIME] == 7, "VMIN %d VTIME %d, want 3 7", now.c_cc[VMIN], now.c_cc[VTIME]);
  struct winsize w = {0};
  RT_CHECK(ioctl(41, TIOCGWINSZ, &w) == 0 && w.ws_row == 33 && w.ws_col == 111 && w.ws_xpixel == 5 && w.ws_ypixel == 9,
           "window %ux%u (%ux%u px), want 33x111 (5x9)", w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel);
  int pkt = 0, excl = 0, lck = 1, lck2 = 0;
  RT_CHECK(ioctl(40, TIOCGPKT, &pkt) == 0 && pkt == 1, "packet mode %d, want 1", pkt);
  RT_CHECK(ioctl(41, TIOCGEXCL, &excl) == 0 && excl == 1, "exclusive %d, want 1", excl);
  RT_CHECK(ioctl(40, TIOCGPTLCK, &lck) == 0 && lck == 0, "pair 1 locked %d, want 0", lck);
  RT_CHECK(ioctl(42, TIOCGPTLCK, &lck2) == 0 && lck2 == 1, "pair 2 locked %d, want 1", lck2);
  struct stat st, named;
  const char *now_name = ptsname(40);
  RT_CHECK(fstat(41, &st) == 0 && now_name && stat(now_name, &named) == 0 && st.st_rdev == named.st_rdev,
           "fd 41 is not the slave of fd 40's pair (%s)", now_name ? now_name : "no name");
  RT_CHECK(st.st_uid == 1234 && st.st_gid == 5 && (st.st_mode & 07777) == 0640, "slave owner %u:%u mode %04o, want 1234:5 0640",
           st.st_uid, st.st_gid, st.st_mode & 07777);
  char buf[256];
  ssize_t n = read_some(41, buf, sizeof buf - 1);
  buf[n > 0 ? n : 0] = 0;
  RT_CHECK(n == (ssize_t)strlen(kToSlave) && !memcmp(buf, kToSlave, strlen(kToSlave)),
           "the slave read %zd bytes \"%s\", want \"%s\"", n, buf, kToSlave);
  n = read_some(40, buf, sizeof buf - 1);  // packet mode: a TIOCPKT_DATA byte first
  buf[n > 0 ? n : 0] = 0;
  RT_CHECK(n == (ssize_t)strlen(kToMaster) + 1 && buf[0] == TIOCPKT_DATA && !memcmp(buf + 1, kToMaster, strlen(kToMaster)),
           "the master read %zd bytes \"%s\", want a 0 byte and \"%s\"", n, n > 0 ? buf + 1 : "", kToMaster);
  // The pair works both ways after the restore.
  RT_CHECK(write(41, "pong", 4) == 4, "write to the slave: %s", strerror(errno));
  n = read_some(40, buf, sizeof buf);
  RT_CHECK(n == 5 && !memcmp(buf + 1, "pong", 4), "the master read %zd bytes after writing pong", n);
  RT_CHECK(write(40, "ping", 4) == 4, "write to the master: %s", strerror(errno));
  n = read_some(41, buf, sizeof buf);
  RT_CHECK(n == 4 && !memcmp(buf, "ping", 4), "the slave read %zd bytes after ping (EBADF before issue 17)", n);
  return rt_finish();
}
