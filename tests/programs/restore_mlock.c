/* Restore test: locked memory. Two pages of a four-page region mlock()ed
 * (the region splits into locked and unlocked VMAs), and a region locked
 * with mlock2(MLOCK_ONFAULT) with one page touched, and a locked page made
 * PROT_NONE afterwards. After the restore
 * VmLck is what it was and each VMA's smaps flags say locked ("lo") and
 * lock-on-fault ("lf") exactly as before.   usage: restore_mlock GOFILE WORKDIR */
#include "rt_prog.h"

#include <sys/mman.h>
#include <sys/syscall.h>

#define PAGE 4096
#define MLOCK_ONFAULT_FLAG 1
#define NPROBES 5

struct probe {
  const char *name;
  char *addr;
  int lo, lf; /* before the dump */
};

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  char *region = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *onfault = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *noaccess = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED || onfault == MAP_FAILED || noaccess == MAP_FAILED) rt_die("mmap");
  noaccess[0] = 7;
  if (mlock(noaccess, PAGE) < 0 || mprotect(noaccess, PAGE, PROT_NONE) < 0) rt_die("mlock + PROT_NONE");
  memset(region, 0x5a, 4 * PAGE);
  if (mlock(region + PAGE, 2 * PAGE) < 0) rt_die("mlock");
  if (syscall(SYS_mlock2, onfault, 4 * PAGE, MLOCK_ONFAULT_FLAG) < 0) rt_die("mlock2 MLOCK_ONFAULT");
  onfault[0] = 1;

  static struct probe probes[] = {
      {"unlocked head", NULL, 0, 0}, {"locked middle", NULL, 0, 0}, {"unlocked tail", NULL, 0, 0},
      {"lock-on-fault region", NULL, 0, 0}, {"locked PROT_NONE page", NULL, 0, 0}};
  probes[0].addr = region;
  probes[1].addr = region + PAGE;
  probes[2].addr = region + 3 * PAGE;
  probes[3].addr = onfault;
  probes[4].addr = noaccess;
  for (int i = 0; i < NPROBES; i++) {
    probes[i].lo = rt_vma_has_flag(probes[i].addr, "lo");
    probes[i].lf = rt_vma_has_flag(probes[i].addr, "lf");
  }
  long vmlck_before = rt_vmlck_kb();
  if (probes[1].lo != 1 || probes[3].lf != 1 || probes[4].lo != 1 || vmlck_before < 8) rt_die("mlock did not show in smaps/status");
  printf("vmlck %ld\n", vmlck_before);

  rt_ready();
  rt_wait_go(argv[1]);

  long vmlck_after = rt_vmlck_kb();
  RT_CHECK(vmlck_after == vmlck_before, "VmLck is %ld kB after the restore, %ld kB before", vmlck_after, vmlck_before);
  for (int i = 0; i < NPROBES; i++) {
    int lo = rt_vma_has_flag(probes[i].addr, "lo"), lf = rt_vma_has_flag(probes[i].addr, "lf");
    RT_CHECK(lo == probes[i].lo, "%s: smaps 'lo' %d after the restore, %d before", probes[i].name, lo, probes[i].lo);
    RT_CHECK(lf == probes[i].lf, "%s: smaps 'lf' %d after the restore, %d before", probes[i].name, lf, probes[i].lf);
  }
  for (int i = 0; i < 4 * PAGE; i++)
    if ((unsigned char)region[i] != 0x5a) {
      rt_fail("locked memory lost its contents at byte %d", i);
      break;
    }
  mprotect(noaccess, PAGE, PROT_READ);
  RT_CHECK(noaccess[0] == 7, "the locked PROT_NONE page lost its contents");
  return rt_finish();
}
