/* Restore test: vector registers live across the dump. Two threads load
 * known values into AVX registers (ymm, and with AVX-512 also zmm16-31
 * and an opmask) inside one asm block and loop comparing them with the
 * constants until the main thread sets the go flag. One loop never leaves
 * user mode, the other sleeps in a raw nanosleep system call every round.
 * Exit 0 if the registers never changed.   usage: restore_avx GOFILE */
#include "rt_prog.h"

#include <pthread.h>
#include <stdint.h>

static const uint64_t pat_a[8] __attribute__((aligned(64))) = {
    0x0123456789abcdefull, 0xfedcba9876543210ull, 0x1111222233334444ull, 0x5555666677778888ull,
    0x99990000aaaabbbbull, 0xccccddddeeeeffffull, 0x0f0f0f0ff0f0f0f0ull, 0xa5a5a5a55a5a5a5aull};
static const uint64_t pat_b[8] __attribute__((aligned(64))) = {
    0x1122334455667788ull, 0x99aabbccddeeff00ull, 0xdeadbeefcafebabeull, 0x0badf00d0ddba11full,
    0x8877665544332211ull, 0x00ffeeddccbbaa99ull, 0x7777777733333333ull, 0x1357924680acebdfull};
static const uint64_t kmask_a = 0x5a5aa5a5deadbeefull, kmask_b = 0x0123456789abcdefull;
static volatile int go_flag;
static volatile int loaded_a, loaded_b;
static int avx512;

/* The start of both loops, once the registers are loaded: say so, then
 * (label 1) compare ymm0 with the pattern, to label 2 if it changed. */
#define SAY_LOADED_THEN_CHECK_YMM0 \
  "movl $1, (%[loaded])\n\t" \
  "1:\n\t" \
  "vpcmpeqq (%[pat]), %%ymm0, %%ymm1\n\t" \
  "vpmovmskb %%ymm1, %%eax\n\t" \
  "cmpl $-1, %%eax\n\t" \
  "jne 2f\n\t"

/* The end of both loops: with [sleep], a raw nanosleep(ts) system call;
 * then back to label 1 until the go flag is set, with bad = 0. Labels 2 and
 * 3 set bad to 1 and 2 (ymm0, then the other registers changed); the asm
 * block ends with label 9. */
#define SLEEP_OR_SPIN_UNTIL_GO \
  "testl %[sleep], %[sleep]\n\t" \
  "jz 4f\n\t" \
  "movl $35, %%eax\n\t" /* SYS_nanosleep */ \
  "movq %[ts], %%rdi\n\t" \
  "xorl %%esi, %%esi\n\t" \
  "syscall\n\t" \
  "4:\n\t" \
  "pause\n\t" \
  "cmpl $0, (%[go])\n\t" \
  "je 1b\n\t" \
  "xorl %k[bad], %k[bad]\n\t" \
  "jmp 9f\n\t" \
  "2: movl $1, %k[bad]\n\t" \
  "jmp 9f\n\t" \
  "3: movl $2, %k[bad]\n\t"

/* Returns 0 while the registers hold the values; 1..3 says which changed. */
static long spin_avx2(const uint64_t *pat, volatile int *loaded, int sleep) {
  long bad;
  struct timespec ts = {0, 1000000};
  __asm__ volatile(
      "vmovdqu (%[pat]), %%ymm0\n\t"
      "vmovdqu 32(%[pat]), %%ymm8\n\t"
      SAY_LOADED_THEN_CHECK_YMM0
      "vpcmpeqq 32(%[pat]), %%ymm8, %%ymm1\n\t"
      "vpmovmskb %%ymm1, %%eax\n\t"
      "cmpl $-1, %%eax\n\t"
      "jne 3f\n\t"
      SLEEP_OR_SPIN_UNTIL_GO
      "9:\n\t"
      : [bad] "=&r"(bad)
      : [pat] "r"(pat), [loaded] "r"(loaded), [go] "r"(&go_flag), [sleep] "r"(sleep), [ts] "r"(&ts)
      : "rax", "rdi", "rsi", "rcx", "r11", "xmm0", "xmm1", "xmm8", "memory", "cc");
  return bad;
}

__attribute__((target("avx512f"))) static long spin_avx512(const uint64_t *pat, const uint64_t *kmask, volatile int *loaded, int sleep) {
  long bad;
  struct timespec ts = {0, 1000000};
  __asm__ volatile(
      "vmovdqu (%[pat]), %%ymm0\n\t"
      "vmovdqu64 (%[pat]), %%zmm16\n\t"
      "vmovdqu64 (%[pat]), %%zmm31\n\t"
      "kmovq (%[kmask]), %%k2\n\t"
      SAY_LOADED_THEN_CHECK_YMM0
      "vpcmpeqq (%[pat]), %%zmm16, %%k3\n\t"
      "kmovw %%k3, %%eax\n\t"
      "cmpl $0xff, %%eax\n\t"
      "jne 3f\n\t"
      "vpcmpeqq (%[pat]), %%zmm31, %%k3\n\t"
      "kmovw %%k3, %%eax\n\t"
      "cmpl $0xff, %%eax\n\t"
      "jne 3f\n\t"
      "kmovq %%k2, %%rax\n\t"
      "cmpq (%[kmask]), %%rax\n\t"
      "jne 5f\n\t"
      SLEEP_OR_SPIN_UNTIL_GO
      "jmp 9f\n\t"
      "5: movl $3, %k[bad]\n\t"
      "9:\n\t"
      : [bad] "=&r"(bad)
      : [pat] "r"(pat), [kmask] "r"(kmask), [loaded] "r"(loaded), [go] "r"(&go_flag), [sleep] "r"(sleep),
        [ts] "r"(&ts)
      : "rax", "rdi", "rsi", "rcx", "r11", "xmm0", "xmm1", "xmm16", "xmm31", "k2", "k3", "memory", "cc");
  return bad;
}

static void *thread_a(void *arg) {
  (void)arg;
  long bad = avx512 ? spin_avx512(pat_a, &kmask_a, &loaded_a, 0) : spin_avx2(pat_a, &loaded_a, 0);
  return (void *)bad;
}
static void *thread_b(void *arg) {
  (void)arg;
  long bad = avx512 ? spin_avx512(pat_b, &kmask_b, &loaded_b, 1) : spin_avx2(pat_b, &loaded_b, 1);
  return (void *)bad;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 2);
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2")) {
    printf("skip no AVX2\n");
    rt_ready();
    return 0;
  }
  avx512 = !!__builtin_cpu_supports("avx512f");
  printf("avx512 %d\n", avx512);
  pthread_t a, b;
  if (pthread_create(&a, NULL, thread_a, NULL) != 0 || pthread_create(&b, NULL, thread_b, NULL) != 0)
    rt_die("pthread_create");
  while (!loaded_a || !loaded_b) rt_sleep_ms(1);
  rt_sleep_ms(20);
  rt_ready();
  rt_wait_go(argv[1]);
  go_flag = 1;
  void *ra, *rb;
  pthread_join(a, &ra);
  pthread_join(b, &rb);
  static const char *what[] = {"", "ymm0", "ymm8/zmm16/zmm31", "opmask k2"};
  RT_CHECK(ra == NULL, "spinning thread: %s changed", what[(long)ra & 3]);
  RT_CHECK(rb == NULL, "sleeping thread: %s changed", what[(long)rb & 3]);
  return rt_finish();
}
