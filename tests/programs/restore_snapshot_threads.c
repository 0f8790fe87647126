/* Restore test for snapshot mode with many threads: 50 threads each count
 * in a register (r12) and write the count to the two words of their own
 * page at every step, checking first that the page still holds the
 * register's count; between bursts of steps each sleeps in a raw
 * nanosleep with the count still in r12. An image whose registers and
 * memory are not of one instant (a thread captured before or after the
 * copy was made) restores a thread whose r12 and page disagree: it marks
 * its page bad and stops counting.
 *   usage: restore_snapshot_threads GOFILE
 * prints "threads 50", then "ready"; after GOFILE (the restored process)
 * every thread must count on with no page marked bad. */
#include "rt_prog.h"

#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#define THREADS 50
struct slot {
  volatile uint64_t seq, copy; /* the count, twice */
  volatile uint64_t bad;       /* 1: page and register disagreed */
  volatile uint64_t reg;       /* r12 when they did */
  char fill[4096 - 32];
};
static struct slot *slots;

static void *counter(void *arg) {
  struct slot *s = arg;
  struct timespec ts = {0, 2000000};
  /* r12: the count; r13: steps left in the burst. A syscall keeps every
   * register but rax, rcx and r11. */
  __asm__ volatile(
      "xor %%r12, %%r12\n"
      "0: mov $2000, %%r13\n"
      "1: cmp (%[s]), %%r12\n"
      "jne 2f\n"
      "cmp 8(%[s]), %%r12\n"
      "jne 2f\n"
      "inc %%r12\n"
      "mov %%r12, (%[s])\n"
      "mov %%r12, 8(%[s])\n"
      "dec %%r13\n"
      "jnz 1b\n"
      "mov $35, %%eax\n" /* nanosleep(&ts, NULL) */
      "mov %[ts], %%rdi\n"
      "xor %%esi, %%esi\n"
      "syscall\n"
      "jmp 0b\n"
      "2: movq $1, 16(%[s])\n"
      "mov %%r12, 24(%[s])\n"
      "3: mov $35, %%eax\n"
      "mov %[ts], %%rdi\n"
      "xor %%esi, %%esi\n"
      "syscall\n"
      "jmp 3b\n"
      :
      : [s] "r"(s), [ts] "r"(&ts)
      : "rax", "rcx", "r11", "rdi", "rsi", "r12", "r13", "memory", "cc");
  return NULL;
}

static int count_threads(void) { return rt_count_entries("/proc/self/task"); }

int main(int argc, char **argv) {
  rt_start(argc, argv, 2);
  slots = mmap(NULL, sizeof(struct slot) * THREADS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (slots == MAP_FAILED) rt_die("mmap");
  memset(slots, 0, sizeof(struct slot) * THREADS);
  for (int i = 0; i < THREADS; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, counter, &slots[i]) != 0) rt_die("pthread_create");
  }
  for (int i = 0; i < THREADS; i++)
    while (slots[i].seq < 4000) rt_sleep_ms(1);
  printf("threads %d\n", count_threads() - 1);
  rt_ready();
  rt_wait_go(argv[1]);
  uint64_t before[THREADS];
  for (int i = 0; i < THREADS; i++) before[i] = slots[i].seq;
  RT_CHECK(count_threads() == THREADS + 1, "%d threads after restore, %d before", count_threads(), THREADS + 1);
  /* Two more bursts each (or a page marked bad). */
  double until = rt_now(CLOCK_MONOTONIC) + 30;
  for (int i = 0; i < THREADS; i++)
    while (!slots[i].bad && slots[i].seq < before[i] + 4000 && rt_now(CLOCK_MONOTONIC) < until) rt_sleep_ms(2);
  for (int i = 0; i < THREADS; i++) {
    RT_CHECK(!slots[i].bad, "thread %d: its page said %llu, its r12 %llu", i, (unsigned long long)slots[i].seq,
             (unsigned long long)slots[i].reg);
    RT_CHECK(slots[i].bad || slots[i].seq >= before[i] + 4000, "thread %d stopped counting at %llu", i,
             (unsigned long long)slots[i].seq);
  }
  return rt_finish();
}
