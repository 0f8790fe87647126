/* xxh3's update on AVX2, for the restorer's checked fills (decision 230):
 * 0.02-0.03 s of CPU per GiB on this VM's Xeon against the portable scalar
 * code's 0.11-0.14 s. The only file of the blob built with vector
 * registers (-mavx2, reader/CMakeLists.txt). The restorer calls it only
 * where imgtool found AVX2 usable (rs_args.fill_flags: the CPU has it and
 * the kernel saves the YMM state), and clobbering vector registers is
 * harmless there: each thread leaves through rt_sigreturn, which loads the
 * program's whole FP/XSAVE state from its frame (state components the
 * frame lacks are set to their init values), so nothing of the restorer's
 * registers reaches the program. Same state layout and digests as the
 * scalar form in map_memory.c, so the two may share one state. */
#define XXH_INLINE_ALL
#define XXH_VECTOR XXH_AVX2
#define XXH_FORCE_MEMORY_ACCESS 1 /* unaligned loads, not memcpy calls */
#define XXH_DEBUGLEVEL 0
#include <xxhash.h>

#include "syscalls.h"

void rs_xxh3_update_avx2(void *state, const void *p, unsigned long n) {
  XXH3_64bits_update((XXH3_state_t *)state, p, n);
}
