/* Restore test: a POSIX shared memory object (shm_open in /dev/shm, then
 * unlinked: how glibc's sem_open and python's multiprocessing locks keep
 * their semaphores) mapped MAP_SHARED by a parent and the child it forked.
 * After restore both must still map one object: the parent writes a flag,
 * the child answers through the same page. Before the fix each process got
 * its own copy, and the child never saw the flag.
 * With "parent-fd" (or "child-fd") that process also keeps the object's fd
 * open, the other only maps it: the fd, the mapping and the other
 * process's mapping are still one file (the parent reads the child's answer
 * through the fd, and the holder's pwrite is seen in both mappings).
 *   usage: restore_shm_tree GOFILE WORKDIR [parent-fd|child-fd] */
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
  const char *holder = argc > 3 ? argv[3] : "";
  int parent_fd = strcmp(holder, "parent-fd") == 0, child_fd = strcmp(holder, "child-fd") == 0;
  if (!parent_fd && !child_fd) close(fd);
  shm_unlink(name);
  shared[0] = 1;
  pid_t child = fork();
  if (child < 0) rt_die("fork");
  if (child == 0) {
    if (!child_fd) close(fd);
    while (shared[1] != 7) usleep(1000);
    if (child_fd) {
      /* Through the fd: both mappings must see it. */
      int nine = 9;
      if (pwrite(fd, &nine, sizeof nine, 2 * sizeof(int)) != sizeof nine) _exit(3);
      if (shared[2] != 9) _exit(4);
    } else {
      shared[2] = 9;
    }
    _exit(0);
  }
  if (child_fd) close(fd);
  rt_ready();
  rt_wait_go(argv[1]);
  if (parent_fd) {
    int seven = 7;
    RT_CHECK(pwrite(fd, &seven, sizeof seven, sizeof(int)) == sizeof seven, "pwrite: %s", strerror(errno));
    RT_CHECK(shared[1] == 7, "a write through the fd is not in the parent's own mapping after restore");
  } else {
    shared[1] = 7;
  }
  double until = rt_now(CLOCK_MONOTONIC) + 10;
  while (shared[2] != 9 && rt_now(CLOCK_MONOTONIC) < until) rt_sleep_ms(1);
  RT_CHECK(shared[2] == 9, "the child never answered through the shared page: it is not shared after restore");
  if (parent_fd) {
    int answer = 0;
    RT_CHECK(pread(fd, &answer, sizeof answer, 2 * sizeof(int)) == sizeof answer && answer == 9,
             "the child's answer is in the mapping but not in the file behind the parent's fd (%d)", answer);
  }
  if (shared[2] != 9) kill(child, SIGKILL);
  int st = 0;
  RT_CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
  return rt_finish();
}
