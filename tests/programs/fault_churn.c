/* Fault test target: a process that keeps changing while it is dumped.
 *   threads  a thread creates and joins short-lived threads in a loop
 *   mmap     a thread maps, touches and unmaps regions in a loop
 *   fork     a thread forks children that exit at once, and reaps them
 * The main thread keeps a checksum of a fixed buffer; after the go file
 * the churn stops, every loop must have gone on (after a restore, too) and
 * the buffer must be intact.
 *   usage: fault_churn GOFILE WORKDIR threads|mmap|fork */
#include "rt_prog.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

static volatile int stop;
static volatile uint64_t rounds;
static const char *mode;

static void *short_lived(void *arg) { return arg; }

static void *churn(void *arg) {
  (void)arg;
  while (!stop) {
    if (!strcmp(mode, "threads")) {
      pthread_t t;
      if (pthread_create(&t, NULL, short_lived, NULL) == 0) pthread_join(t, NULL);
    } else if (!strcmp(mode, "mmap")) {
      size_t len = (size_t)(1 + rounds % 16) << 16;
      char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p != MAP_FAILED) {
        for (size_t i = 0; i < len; i += 4096) p[i] = (char)i;
        munmap(p, len);
      }
    } else {
      pid_t c = fork();
      if (c == 0) _exit(0);
      if (c > 0) waitpid(c, NULL, 0);
      rt_sleep_ms(1);
    }
    __atomic_fetch_add(&rounds, 1, __ATOMIC_SEQ_CST);
  }
  return NULL;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 4);
  mode = argv[3];
  static uint8_t buffer[1 << 20];
  for (size_t i = 0; i < sizeof buffer; i++) buffer[i] = (uint8_t)(i * 7 + 3);
  pthread_t t;
  if (pthread_create(&t, NULL, churn, NULL) != 0) rt_die("pthread_create");
  while (__atomic_load_n(&rounds, __ATOMIC_SEQ_CST) < 10) rt_sleep_ms(1);
  rt_ready();
  rt_wait_go(argv[1]);
  uint64_t at_go = __atomic_load_n(&rounds, __ATOMIC_SEQ_CST);
  rt_sleep_ms(50);
  RT_CHECK(__atomic_load_n(&rounds, __ATOMIC_SEQ_CST) > at_go, "the %s churn stopped (%llu rounds)", mode,
           (unsigned long long)at_go);
  stop = 1;
  pthread_join(t, NULL);
  for (size_t i = 0; i < sizeof buffer; i++)
    if (buffer[i] != (uint8_t)(i * 7 + 3)) {
      rt_fail("buffer byte %zu is %u", i, buffer[i]);
      break;
    }
  return rt_finish();
}
