/* Restore test: the terminal a program was run from is reconnected, not
 * refused. The test holds the master of a pty pair, as a terminal emulator
 * would; this program makes the slave its controlling terminal (setsid,
 * then open without O_NOCTTY) and holds it on fd 0 and fd 30, and /dev/tty
 * on fd 31. The dump must not refuse them; after the restore the three fds
 * are open again (on the restoring imgtool's streams: it has no terminal).
 *   usage: restore_ctty GOFILE WORKDIR SLAVE */
#include "rt_prog.h"

#include <fcntl.h>
#include <sys/ioctl.h>

int main(int argc, char **argv) {
  rt_start(argc, argv, 4);
  if (setsid() < 0) rt_die("setsid");
  int fd = open(argv[3], O_RDWR);
  if (fd < 0) rt_die("open %s", argv[3]);
  int sid = -1;
  if (ioctl(fd, TIOCGSID, &sid) != 0 || sid != getpid()) rt_die("%s did not become the controlling terminal", argv[3]);
  if (dup2(fd, 0) < 0 || dup2(fd, 30) < 0) rt_die("dup2");
  if (fd != 0 && fd != 30) close(fd);
  if (dup2(open("/dev/tty", O_RDWR), 31) < 0) rt_die("/dev/tty");
  rt_ready();
  rt_wait_go(argv[1]);
  for (int i = 0; i < 3; i++) {
    int want = i == 0 ? 0 : 29 + i;
    RT_CHECK(fcntl(want, F_GETFD) >= 0, "fd %d (the terminal) was not restored", want);
  }
  return rt_finish();
}
