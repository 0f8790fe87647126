/* Fault test target (tests/faults): the main thread computes in user code
 * all the time (it looks for the go file only every few million steps), so
 * a dump freezes it between two instructions and borrows it there for its
 * injected syscalls. Killing the dumper then must give the thread back with
 * its own registers: the loop's invariant (b == 3 * a + 7, kept in
 * registers) and the stack hold, or it crashes or reports FAIL.
 *   usage: fault_spin GOFILE */
#include "rt_prog.h"

#include <stdint.h>

int main(int argc, char **argv) {
  rt_start(argc, argv, 2);
  rt_ready();
  uint64_t a = 1, b = 10, rounds = 0;
  for (;;) {
    for (int i = 0; i < 4000000; i++) {
      a = a * 6364136223846793005ull + 1442695040888963407ull;
      b = 3 * a + 7;
      __asm__ volatile("" : "+r"(a), "+r"(b));
    }
    rounds++;
    RT_CHECK(b == 3 * a + 7, "round %llu: b is 0x%llx, 3a+7 is 0x%llx", (unsigned long long)rounds,
             (unsigned long long)b, (unsigned long long)(3 * a + 7));
    if (access(argv[1], F_OK) == 0) break;
  }
  return rt_finish();
}
