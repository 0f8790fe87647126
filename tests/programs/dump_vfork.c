/* A target with one thread stuck in an uninterruptible sleep: it vfork()s,
 * and the child blocks reading standard input (which never gets data), so
 * the parent thread waits in the kernel for the child (state D, TASK_KILLABLE
 * in wait_for_vfork_done) and ignores PTRACE_INTERRUPT. Prints "stuck TID"
 * and "ready" once the thread is in vfork. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile pid_t stuck_tid;

static void *vfork_worker(void *arg) {
  (void)arg;
  stuck_tid = (pid_t)syscall(SYS_gettid);
  pid_t child = vfork();
  if (child == 0) {
    char c;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* EOF once the test closes our stdin (or kills us): then the parent
     * thread is let go. */
    while (read(0, &c, 1) > 0) {
    }
    _exit(0);
  }
  for (;;) pause();
  return NULL;
}

int main(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  pthread_t t;
  if (pthread_create(&t, NULL, vfork_worker, NULL) != 0) return 1;
  while (!stuck_tid) usleep(1000);
  printf("stuck %d\n", (int)stuck_tid);
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
