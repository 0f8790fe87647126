// Target of the `imgtool diff` tests: between two checkpoints it changes
// exactly one global, opens exactly one file, and moves one thread from
// one blocking call to another (so its pc changes), on a command on stdin.
//
// Prints "global ADDR", "mover TID" and "ready". Then, on each line read
// from stdin: sets `changed_global` to 2, opens the path given on the
// command line, and tells the mover thread (blocked in read() on a pipe)
// to go and block in poll() instead. The main thread goes back to the
// same read() of stdin, so its own registers come back unchanged.
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>

volatile long changed_global = 1;
static int mover_pipe[2];
static volatile pid_t mover_tid;

static void *mover(void *arg) {
  (void)arg;
  mover_tid = (pid_t)syscall(SYS_gettid);
  char c;
  if (read(mover_pipe[0], &c, 1) != 1) return NULL;   // phase one: read()
  for (;;) poll(NULL, 0, -1);                          // phase two: poll()
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 2 || pipe(mover_pipe) != 0) return 2;
  pthread_t t;
  if (pthread_create(&t, NULL, mover, NULL) != 0) return 1;
  while (!mover_tid) usleep(1000);
  printf("global %p\nmover %d\nready\n", (void *)&changed_global, (int)mover_tid);
  fflush(stdout);
  char line[64];
  for (;;) {
    ssize_t n = read(0, line, sizeof line);
    if (n <= 0) return 0;
    changed_global = 2;
    if (open(argv[1], O_RDONLY | O_CREAT, 0600) < 0) return 3;
    if (write(mover_pipe[1], "x", 1) != 1) return 4;
  }
}
