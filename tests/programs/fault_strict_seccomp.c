/* Fault test target (tests/faults): the main thread (the one a dump
 * borrows first) is in seccomp strict mode, computing; a second thread
 * does the talking. A dump must never leave the strict thread killed (by
 * an injected syscall that runs after the dumper died: DECISIONS 179).
 * After the go file, the second thread checks that the main thread is
 * still strict and still counting, and ends the process.
 *   usage: fault_strict_seccomp GOFILE WORKDIR */
#include "rt_prog.h"

#include <linux/seccomp.h>
#include <pthread.h>
#include <sys/syscall.h>

static volatile uint64_t counter;
static volatile int strict_on;
static const char *gofile;
static pid_t main_tid;

static int seccomp_mode_of(pid_t tid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
  FILE *f = fopen(path, "r");
  int mode = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "Seccomp:", 8) == 0) mode = atoi(line + 8);
  if (f) fclose(f);
  return mode;
}

static void *talker(void *arg) {
  (void)arg;
  while (!strict_on) rt_sleep_ms(1);
  RT_CHECK(seccomp_mode_of(main_tid) == SECCOMP_MODE_STRICT, "main thread not strict before the dump");
  rt_ready();
  rt_wait_go(gofile);
  RT_CHECK(seccomp_mode_of(main_tid) == SECCOMP_MODE_STRICT, "main thread %d is not in strict mode (gone?)",
           (int)main_tid);
  /* Still computing: the counter moves (bounded wait, no timing claim). */
  uint64_t before = counter;
  int moved = 0;
  for (int i = 0; i < 2000 && !moved; i++) {
    rt_sleep_ms(5);
    moved = counter != before;
  }
  RT_CHECK(moved, "the strict main thread stopped counting at %llu", (unsigned long long)before);
  exit(rt_finish()); /* exit_group: ends the strict thread too */
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  gofile = argv[1];
  main_tid = (pid_t)syscall(SYS_gettid);
  pthread_t t;
  if (pthread_create(&t, NULL, talker, NULL) != 0) rt_die("pthread_create");
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, NULL) != 0) rt_die("seccomp strict");
  strict_on = 1;
  for (;;) counter++; /* only read, write, exit and rt_sigreturn from here on */
}
