/* Restore test: the program `imgtool restore --gdb` debugs live
 * (tests/restore/gdb_live_test.cc). Three threads: the main thread waits for
 * the go file; "reader" is blocked in read() on a pipe (a restartable
 * syscall: under gdb it must resume, not fail with EINTR); "sleeper" is in
 * pause(). After the go file, the main thread calls after_checkpoint()
 * (the tests' breakpoint), which sets `watched` (their watchpoint), feeds
 * the reader one byte and checks it came through.
 *   usage: restore_gdb_live GOFILE WORKDIR */
#include "rt_prog.h"

#include <pthread.h>

volatile int watched = 7;
static int pipe_fds[2];
static volatile int reader_got = -1;

static void *reader(void *arg) {
  char c;
  ssize_t n = read(pipe_fds[0], &c, 1);
  if (n != 1) rt_fail("read in the reader thread returned %zd (%s)", n, n < 0 ? strerror(errno) : "");
  reader_got = n == 1 ? c : -1;
  return arg;
}

static void *sleeper(void *arg) {
  for (;;) pause();
  return arg;
}

void __attribute__((noinline)) after_checkpoint(void) {
  watched = 42;
  if (write(pipe_fds[1], "x", 1) != 1) rt_fail("write: %s", strerror(errno));
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 2);
  if (pipe(pipe_fds) != 0) rt_die("pipe");
  pthread_t r, s;
  if (pthread_create(&r, NULL, reader, NULL) != 0 || pthread_create(&s, NULL, sleeper, NULL) != 0)
    rt_die("pthread_create");
  pthread_setname_np(r, "reader");
  pthread_setname_np(s, "sleeper");
  rt_sleep_ms(50);  /* both threads in their syscalls */
  printf("pid %d\n", getpid());
  rt_ready();
  rt_wait_go(argv[1]);
  after_checkpoint();
  pthread_join(r, NULL);
  RT_CHECK(reader_got == 'x', "the reader thread got %d", reader_got);
  RT_CHECK(watched == 42, "watched is %d", watched);
  return rt_finish();
}
