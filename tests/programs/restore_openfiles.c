/* Restore test: memfd seals and status flags per open file (issue 17).
 * A memfd sealed with F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
 * F_SEAL_SEAL, one made with MFD_ALLOW_SEALING and no seals yet, one made
 * without (F_SEAL_SEAL alone), a memfd reopened through /proc/self/fd with
 * O_APPEND, and a file under /dev/shm opened with O_APPEND; a pipe's read
 * end reopened through /proc/self/fd with O_NONBLOCK (its own open file:
 * the first stays blocking) and a write end dup()ed after O_NONBLOCK was
 * set (one open file: both have it). After the restore each has its seals
 * and status flags back, and the seals work.
 *   usage: restore_openfiles GOFILE WORKDIR */
#include "rt_prog.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

static int make_memfd(const char *name, unsigned flags, const char *bytes) {
  int fd = (int)syscall(SYS_memfd_create, name, flags);
  if (fd < 0 || write(fd, bytes, strlen(bytes)) != (ssize_t)strlen(bytes)) rt_die("memfd %s", name);
  return fd;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  const unsigned all = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
  int sealed = make_memfd("sealed", MFD_ALLOW_SEALING, "hello");
  if (fcntl(sealed, F_ADD_SEALS, all) < 0) rt_die("F_ADD_SEALS");
  int sealable = make_memfd("sealable", MFD_ALLOW_SEALING, "open");
  int plain = make_memfd("plain", 0, "plain");
  int appended_memfd = make_memfd("appended", 0, "a");
  char self[64];
  snprintf(self, sizeof self, "/proc/self/fd/%d", appended_memfd);
  int memfd_append = open(self, O_RDWR | O_APPEND);
  if (memfd_append < 0) rt_die("reopen memfd O_APPEND");
  char shm_path[128];
  snprintf(shm_path, sizeof shm_path, "/dev/shm/ckpt-seals-test-%d", (int)getpid());
  int shm_append = open(shm_path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0600);
  if (shm_append < 0 || write(shm_append, "b", 1) != 1) rt_die("create %s", shm_path);
  int pipe_fds[2];
  if (pipe(pipe_fds) < 0) rt_die("pipe");
  snprintf(self, sizeof self, "/proc/self/fd/%d", pipe_fds[0]);
  int read_again = open(self, O_RDONLY | O_NONBLOCK);
  if (read_again < 0) rt_die("reopen the pipe's read end");
  if (fcntl(pipe_fds[1], F_SETFL, O_NONBLOCK) < 0) rt_die("F_SETFL");
  int write_dup = dup(pipe_fds[1]);
  if (write_dup < 0) rt_die("dup");
  int seals_before[3] = {fcntl(sealed, F_GET_SEALS), fcntl(sealable, F_GET_SEALS), fcntl(plain, F_GET_SEALS)};
  if (seals_before[0] != (int)all || seals_before[1] != 0 || seals_before[2] != F_SEAL_SEAL) rt_die("F_GET_SEALS");
  printf("shm %s\n", shm_path);

  rt_ready();
  rt_wait_go(argv[1]);

  const char *names[3] = {"sealed", "sealable", "plain"};
  int fds[3] = {sealed, sealable, plain};
  for (int i = 0; i < 3; i++) {
    int now = fcntl(fds[i], F_GET_SEALS);
    RT_CHECK(now == seals_before[i], "the %s memfd has seals 0x%x after the restore, 0x%x before", names[i], now,
             seals_before[i]);
  }
  errno = 0;
  RT_CHECK(pwrite(sealed, "x", 1, 0) < 0 && errno == EPERM, "a write to the F_SEAL_WRITE memfd did not fail with EPERM");
  char buf[8] = {0};
  RT_CHECK(pread(sealed, buf, 5, 0) == 5 && memcmp(buf, "hello", 5) == 0, "the sealed memfd lost its bytes");
  RT_CHECK(fcntl(sealable, F_ADD_SEALS, F_SEAL_GROW) == 0, "the sealable memfd cannot be sealed after the restore: %s",
           strerror(errno));
  RT_CHECK(fcntl(plain, F_ADD_SEALS, F_SEAL_GROW) < 0, "the memfd made without MFD_ALLOW_SEALING can be sealed");
  RT_CHECK(fcntl(memfd_append, F_GETFL) & O_APPEND, "the memfd reopened with O_APPEND lost it");
  RT_CHECK(!(fcntl(appended_memfd, F_GETFL) & O_APPEND), "the memfd's first open file gained O_APPEND");
  RT_CHECK(fcntl(shm_append, F_GETFL) & O_APPEND, "the /dev/shm file lost O_APPEND");
  if (write(memfd_append, "z", 1) == 1) {
    char two[3] = {0};
    RT_CHECK(pread(appended_memfd, two, 2, 0) == 2 && memcmp(two, "az", 2) == 0,
             "the memfd's two open files are not one file after the restore (read \"%s\")", two);
  }
  RT_CHECK(!(fcntl(pipe_fds[0], F_GETFL) & O_NONBLOCK), "the pipe's first read end gained O_NONBLOCK");
  RT_CHECK(fcntl(read_again, F_GETFL) & O_NONBLOCK, "the pipe's read end reopened with O_NONBLOCK lost it");
  RT_CHECK((fcntl(pipe_fds[1], F_GETFL) & O_NONBLOCK) && (fcntl(write_dup, F_GETFL) & O_NONBLOCK),
           "the pipe's write end or its dup lost O_NONBLOCK");
  fcntl(write_dup, F_SETFL, 0);
  RT_CHECK(!(fcntl(pipe_fds[1], F_GETFL) & O_NONBLOCK), "the dup()ed write ends are not one open file after the restore");
  errno = 0;
  RT_CHECK(read(read_again, buf, 1) < 0 && errno == EAGAIN, "a read of the empty pipe through the O_NONBLOCK end did not fail with EAGAIN");
  RT_CHECK(write(pipe_fds[1], "p", 1) == 1 && read(pipe_fds[0], buf, 1) == 1 && buf[0] == 'p',
           "the reopened pipe ends are not one pipe");
  unlink(shm_path);
  return rt_finish();
}
