/* Restore test: fds numbered far above imgtool's own RLIMIT_NOFILE (often
 * 1024), as a server that raised its limit holds. The process raises its
 * limit to 8192 and holds a file at fd 6000; after restore fd 6000 is that
 * file again and the limit is the process's.
 *   usage: restore_high_fds GOFILE WORKDIR */
#include "rt_prog.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define HIGH_FD 6000

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  struct rlimit r = {8192, 8192};
  if (setrlimit(RLIMIT_NOFILE, &r) < 0) rt_die("setrlimit");
  char path[512];
  snprintf(path, sizeof path, "%s/high-fd-file", argv[2]);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || write(fd, "high", 4) != 4 || dup2(fd, HIGH_FD) != HIGH_FD) rt_die("fd %d", HIGH_FD);
  close(fd);
  struct stat before;
  if (fstat(HIGH_FD, &before) < 0) rt_die("fstat");
  rt_ready();
  rt_wait_go(argv[1]);
  struct stat after;
  RT_CHECK(fstat(HIGH_FD, &after) == 0 && after.st_ino == before.st_ino, "fd %d is not the file it was", HIGH_FD);
  RT_CHECK(lseek(HIGH_FD, 0, SEEK_CUR) == 4, "fd %d is not at offset 4", HIGH_FD);
  struct rlimit now;
  RT_CHECK(getrlimit(RLIMIT_NOFILE, &now) == 0 && now.rlim_cur == 8192 && now.rlim_max == 8192,
           "RLIMIT_NOFILE is %llu/%llu, was 8192/8192", (unsigned long long)now.rlim_cur,
           (unsigned long long)now.rlim_max);
  unlink(path);
  return rt_finish();
}
