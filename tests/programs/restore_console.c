/* Restore test: a console opened by the program (issue 17: a console or
 * virtual terminal came back as /dev/null). Opens NODE (a character device
 * node the test made, e.g. 4:1 = tty1) at fd 45, O_RDWR | O_NONBLOCK |
 * O_NOCTTY; after the restore fd 45 must be that device again, with its
 * flags.
 *   usage: restore_console GOFILE WORKDIR NODE */
#include "rt_prog.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

int main(int argc, char **argv) {
  rt_start(argc, argv, 4);
  int fd = open(argv[3], O_RDWR | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) rt_die("open %s", argv[3]);
  if (dup2(fd, 45) < 0) rt_die("dup2");
  close(fd);
  struct stat before;
  if (fstat(45, &before) != 0) rt_die("fstat");
  printf("rdev %u:%u\n", major(before.st_rdev), minor(before.st_rdev));
  rt_ready();
  rt_wait_go(argv[1]);
  struct stat now;
  RT_CHECK(fstat(45, &now) == 0 && S_ISCHR(now.st_mode) && now.st_rdev == before.st_rdev,
           "fd 45 is %u:%u, want %u:%u", major(now.st_rdev), minor(now.st_rdev), major(before.st_rdev),
           minor(before.st_rdev));
  int fl = fcntl(45, F_GETFL);
  RT_CHECK(fl >= 0 && (fl & O_ACCMODE) == O_RDWR && (fl & O_NONBLOCK), "fd 45 flags %#x, want O_RDWR|O_NONBLOCK", fl);
  return rt_finish();
}
