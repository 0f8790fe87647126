/* Restore test: per-mapping flags that mmap and madvise set (issue 17):
 * MAP_NORESERVE ("nr"), MADV_HUGEPAGE ("hg"), MADV_NOHUGEPAGE ("nh"),
 * MADV_DONTFORK ("dc"), MADV_WIPEONFORK ("wf"), MADV_DONTDUMP ("dd"), and
 * mlockall(MCL_FUTURE | MCL_ONFAULT), which locks the mappings made
 * after it ("lo lf"), and a guard page (MADV_GUARD_INSTALL, 6.13+) in the
 * middle of a written mapping. Each mapping's smaps VmFlags must read the
 * same after the restore, a mapping made after the restore must be
 * locked, and the guard page must still fault (SIGSEGV) while its
 * neighbours keep their bytes.
 *   usage: restore_vmaflags GOFILE WORKDIR */
#include "rt_prog.h"

#include <setjmp.h>
#include <sys/mman.h>

#define MADV_GUARD_INSTALL_ 102

static sigjmp_buf fault_jmp;
static void on_segv(int sig) {
  (void)sig;
  siglongjmp(fault_jmp, 1);
}

/* 1 if writing to p faults. */
static int write_faults(volatile char *p) {
  struct sigaction sa = {.sa_handler = on_segv}, old;
  sigaction(SIGSEGV, &sa, &old);
  int faulted = 0;
  if (sigsetjmp(fault_jmp, 1) == 0) *p = 1;
  else faulted = 1;
  sigaction(SIGSEGV, &old, NULL);
  return faulted;
}

#define PAGE 4096
#define NPROBES 6

struct probe {
  const char *flag;
  int advice; /* -1: the mmap flag itself */
  char *addr;
};

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  static struct probe probes[NPROBES] = {{"nr", -1, NULL},           {"hg", MADV_HUGEPAGE, NULL},
                                         {"nh", MADV_NOHUGEPAGE, NULL}, {"dc", MADV_DONTFORK, NULL},
                                         {"wf", MADV_WIPEONFORK, NULL}, {"dd", MADV_DONTDUMP, NULL}};
  for (int i = 0; i < NPROBES; i++) {
    /* A hole page between probes keeps them from merging. */
    char *p = mmap(NULL, 6 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) rt_die("mmap");
    munmap(p + 4 * PAGE, 2 * PAGE);
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | (probes[i].advice < 0 ? MAP_NORESERVE : 0);
    if (mmap(p, 4 * PAGE, PROT_READ | PROT_WRITE, flags, -1, 0) != p) rt_die("mmap %s", probes[i].flag);
    if (probes[i].advice >= 0 && madvise(p, 4 * PAGE, probes[i].advice) < 0) rt_die("madvise %s", probes[i].flag);
    memset(p, i + 1, 4 * PAGE);
    probes[i].addr = p;
    if (rt_vma_has_flag(p, probes[i].flag) != 1) rt_die("no '%s' in smaps before the dump", probes[i].flag);
  }
  char *guarded = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (guarded == MAP_FAILED) rt_die("mmap guarded");
  memset(guarded, 0x77, 3 * PAGE);
  if (madvise(guarded + PAGE, PAGE, MADV_GUARD_INSTALL_) < 0) rt_die("MADV_GUARD_INSTALL");
  if (!write_faults(guarded + PAGE)) rt_die("the guard page does not fault");
  if (mlockall(MCL_FUTURE | MCL_ONFAULT) < 0) rt_die("mlockall");
  char *later = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (later == MAP_FAILED || rt_vma_has_flag(later, "lo") != 1 || rt_vma_has_flag(later, "lf") != 1)
    rt_die("mlockall(MCL_FUTURE | MCL_ONFAULT) did not lock a new mapping");
  munmap(later, PAGE);

  rt_ready();
  rt_wait_go(argv[1]);

  for (int i = 0; i < NPROBES; i++) {
    int has = rt_vma_has_flag(probes[i].addr, probes[i].flag);
    RT_CHECK(has == 1, "the mapping with '%s' has it %d after the restore", probes[i].flag, has);
    RT_CHECK(rt_vma_has_flag(probes[i].addr, "lo") == 0, "the mapping with '%s' is locked after the restore", probes[i].flag);
    for (int k = 0; k < 4 * PAGE; k++)
      if (probes[i].addr[k] != i + 1) {
        rt_fail("the mapping with '%s' lost its contents at byte %d", probes[i].flag, k);
        break;
      }
  }
  RT_CHECK(write_faults(guarded + PAGE), "the guard page takes writes after the restore");
  RT_CHECK(guarded[0] == 0x77 && guarded[2 * PAGE] == 0x77 && guarded[3 * PAGE - 1] == 0x77,
           "the pages around the guard page lost their bytes");
  RT_CHECK(!write_faults(guarded) && !write_faults(guarded + 2 * PAGE), "the pages around the guard page fault");
  later = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  RT_CHECK(later != MAP_FAILED && rt_vma_has_flag(later, "lo") == 1 && rt_vma_has_flag(later, "lf") == 1,
           "a mapping made after the restore is not locked on fault (mlockall(MCL_FUTURE | MCL_ONFAULT) lost)");
  return rt_finish();
}
