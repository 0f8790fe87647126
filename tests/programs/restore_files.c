/* Files that change between dump and restore (restore_files_test.cc):
 * a tmpfs file mapped MAP_SHARED with its fd closed (a JVM's hsperfdata),
 * a tmpfs file held open, and a log opened with O_TRUNC (not O_APPEND)
 * that gets rotated while the process is checkpointed. */
#include "rt_prog.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  char map_path[256], fd_path[256], log_path[512];
  snprintf(map_path, sizeof map_path, "/dev/shm/ckpt-test-files-%d.map", (int)getpid());
  snprintf(fd_path, sizeof fd_path, "/dev/shm/ckpt-test-files-%d.fd", (int)getpid());
  snprintf(log_path, sizeof log_path, "%s/log", argv[2]);

  int mfd = open(map_path, O_RDWR | O_CREAT | O_EXCL, 0640);
  if (mfd < 0 || ftruncate(mfd, 8192) < 0) rt_die("create %s", map_path);
  char *map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  if (map == MAP_FAILED) rt_die("mmap %s", map_path);
  close(mfd);
  strcpy(map, "mapped-before");

  int held = open(fd_path, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (held < 0 || write(held, "held-open", 9) != 9 || lseek(held, 4, SEEK_SET) != 4) rt_die("create %s", fd_path);

  int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (log < 0 || write(log, "before\n", 7) != 7) rt_die("create %s", log_path);

  printf("map %s\nheld %s\nlog %s\n", map_path, fd_path, log_path);
  rt_ready();
  rt_wait_go(argv[1]);

  RT_CHECK(strcmp(map, "mapped-before") == 0, "mapping holds '%.20s', not 'mapped-before'", map);
  strcpy(map + 4096, "mapped-after");
  if (msync(map, 8192, MS_SYNC) < 0) rt_fail("msync: %s", strerror(errno));
  char buf[16] = {0};
  ssize_t n = read(held, buf, sizeof buf - 1);
  RT_CHECK(n == 5 && strcmp(buf, "-open") == 0, "held file read %zd bytes '%s', not '-open'", n, buf);
  /* The rotated log is empty now: the write goes to its start, not to
   * offset 7 behind a hole. */
  RT_CHECK(write(log, "after\n", 6) == 6, "write to the log: %s", strerror(errno));
  off_t at = lseek(log, 0, SEEK_CUR);
  RT_CHECK(at == 6, "log position %lld after the write, not 6", (long long)at);
  return rt_finish();
}
