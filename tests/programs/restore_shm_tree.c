/* Restore test: a POSIX shared memory object (shm_open in /dev/shm, then
 * unlinked: how glibc's sem_open and python's multiprocessing locks keep
 * their semaphores) mapped MAP_SHARED by a parent and the child it forked.
 * After restore both must still map one object: the parent writes a flag,
 * the child answers through the same page. Before the fix each process got
 * its own copy, and the child never saw the flag.
 *   usage: restore_shm_tree GOFILE WORKDIR */
#include "rt_prog.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  char name[64];
  snprintf(name, sizeof name, "/ckpt-shm-tree-%d", (int)getpid());
  int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0 || ftruncate(fd, 4096) != 0) rt_die("shm_open %s", name);
  volatile int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (shared == MAP_FAILED) rt_die("mmap");
  close(fd);
  shm_unlink(name);
  shared[0] = 1;
  pid_t child = fork();
  if (child < 0) rt_die("fork");
  if (child == 0) {
    while (shared[1] != 7) usleep(1000);
    shared[2] = 9;
    _exit(0);
  }
  rt_ready();
  rt_wait_go(argv[1]);
  shared[1] = 7;
  double until = rt_now(CLOCK_MONOTONIC) + 10;
  while (shared[2] != 9 && rt_now(CLOCK_MONOTONIC) < until) rt_sleep_ms(1);
  RT_CHECK(shared[2] == 9, "the child never answered through the shared page: it is not shared after restore");
  if (shared[2] != 9) kill(child, SIGKILL);
  int st = 0;
  RT_CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
  return rt_finish();
}
