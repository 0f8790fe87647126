/* Sets opmask register k1 to a known value and spins without touching it.
 * k1 is set before "ready" is written (by a raw write system call, inside
 * the same asm block, so no library code can clobber k1 afterwards). */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

static const char ready[] = "ready\n";

int main(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  __asm__ volatile(
      "movabsq $0x5a5aa5a5deadbeef, %%rax\n\t"
      "kmovq %%rax, %%k1\n\t"
      "movl $1, %%eax\n\t"  /* SYS_write */
      "movl $1, %%edi\n\t"  /* stdout */
      "movq %0, %%rsi\n\t"
      "movl $6, %%edx\n\t"
      "syscall\n\t"
      "1: pause\n\t"
      "jmp 1b\n\t"
      :
      : "r"(ready)
      : "rax", "rdi", "rsi", "rdx", "rcx", "r11", "memory");
  return 0;
}
