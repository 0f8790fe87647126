/* Restore test: the last gaps of issue 17, one mode each.
 *   usage: restore_fidelity_gaps GOFILE WORKDIR MODE [CGROUPDIR]
 * - "mlock-setuid": RLIMIT_MEMLOCK lowered to 64 KiB, 256 KiB mlock()ed
 *   (beyond the limit: root may), then the process drops to uid/gid 65534
 *   (setresgid, setresuid): after the restore the range is still locked
 *   (smaps "lo", VmLck the same), with the same ids and limit.
 * - "mlock-setuid-future": the same with 32 KiB locked (within the limit)
 *   and mlockall(MCL_FUTURE) before the uid change: a mapping made after
 *   the restore is locked too, as it was before the dump.
 * - "mcl-future": plain mlockall(MCL_FUTURE) (no MCL_ONFAULT) as root: a
 *   mapping made before it stays unlocked, one made after the restore is
 *   locked and faulted in ("lo" without "lf", VmLck grows by its size).
 * - "cgroup": joins CGROUPDIR (the test gives it its settings and removes
 *   it before the restore): /proc/self/cgroup reads the same afterwards.
 * - "seals": a memfd mapped MAP_SHARED read-write and then sealed with
 *   F_SEAL_FUTURE_WRITE (the mapping stays writable, write() and a new
 *   writable shared mapping fail with EPERM), one made with
 *   MFD_NOEXEC_SEAL (F_SEAL_EXEC, mode 0666) and one sealed with
 *   F_SEAL_EXEC later (mode 0777): seals, modes and what they forbid
 *   are the same after the restore. */
#include "rt_prog.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define PAGE 4096
#define UNPRIVILEGED 65534
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

static void read_all(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY);
  ssize_t n = fd < 0 ? -1 : read(fd, buf, size - 1);
  buf[n > 0 ? n : 0] = 0;
  if (fd >= 0) close(fd);
}

/* A new private anonymous mapping of `pages`: its "lo"/"lf" flags and how
 * much VmLck grew, then unmapped again. */
static void probe_new_mapping(int pages, int *lo, int *lf, long *grew_kb) {
  long before = rt_vmlck_kb();
  char *p = mmap(NULL, (size_t)pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    *lo = *lf = -1;
    *grew_kb = -1;
    return;
  }
  *lo = rt_vma_has_flag(p, "lo");
  *lf = rt_vma_has_flag(p, "lf");
  *grew_kb = rt_vmlck_kb() - before;
  munmap(p, (size_t)pages * PAGE);
}

static int mlock_modes(char **argv, const char *mode) {
  int drop = strncmp(mode, "mlock-setuid", 12) == 0;
  int future = strcmp(mode, "mlock-setuid-future") == 0 || strcmp(mode, "mcl-future") == 0;
  int pages = strcmp(mode, "mlock-setuid") == 0 ? 64 : 8;
  struct rlimit small = {64 << 10, 64 << 10}, limit_before;
  if (drop && setrlimit(RLIMIT_MEMLOCK, &small) < 0) rt_die("setrlimit RLIMIT_MEMLOCK");
  char *region = mmap(NULL, (size_t)pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) rt_die("mmap");
  memset(region, 0x3c, (size_t)pages * PAGE);
  if (drop && mlock(region, (size_t)pages * PAGE) < 0) rt_die("mlock");
  if (future && mlockall(MCL_FUTURE) < 0) rt_die("mlockall(MCL_FUTURE)");
  if (drop) {
    /* The go file is in WORKDIR (0700, root's): searchable once we are not. */
    if (chmod(argv[2], 0711) < 0) rt_die("chmod %s", argv[2]);
    if (setresgid(UNPRIVILEGED, UNPRIVILEGED, UNPRIVILEGED) < 0 || setresuid(UNPRIVILEGED, UNPRIVILEGED, UNPRIVILEGED) < 0)
      rt_die("setresgid/setresuid %d", UNPRIVILEGED);
  }
  getrlimit(RLIMIT_MEMLOCK, &limit_before);
  int region_lo = rt_vma_has_flag(region, "lo");
  long vmlck_before = rt_vmlck_kb();
  int lo = 0, lf = 0;
  long grew = 0;
  if (future) {
    probe_new_mapping(4, &lo, &lf, &grew);
    if (lo != 1 || lf != 0 || grew != 16) rt_die("mlockall(MCL_FUTURE) did not lock a new mapping (lo %d lf %d +%ld kB)", lo, lf, grew);
  }
  if (region_lo != drop || vmlck_before != (drop ? pages * 4 : 0)) rt_die("locked %d, VmLck %ld kB", region_lo, vmlck_before);
  printf("vmlck %ld\n", vmlck_before);

  rt_ready();
  rt_wait_go(argv[1]);

  uid_t r, e, s;
  gid_t gr, ge, gs;
  getresuid(&r, &e, &s);
  getresgid(&gr, &ge, &gs);
  uid_t want = drop ? UNPRIVILEGED : 0;
  RT_CHECK(r == want && e == want && s == want, "uids %u/%u/%u after the restore, %u before", r, e, s, want);
  RT_CHECK(gr == want && ge == want && gs == want, "gids %u/%u/%u after the restore, %u before", gr, ge, gs, want);
  struct rlimit limit_after;
  getrlimit(RLIMIT_MEMLOCK, &limit_after);
  RT_CHECK(limit_after.rlim_cur == limit_before.rlim_cur && limit_after.rlim_max == limit_before.rlim_max,
           "RLIMIT_MEMLOCK %lu/%lu after the restore, %lu/%lu before", (unsigned long)limit_after.rlim_cur,
           (unsigned long)limit_after.rlim_max, (unsigned long)limit_before.rlim_cur, (unsigned long)limit_before.rlim_max);
  int region_lo_after = rt_vma_has_flag(region, "lo");
  RT_CHECK(region_lo_after == region_lo, "the region's smaps 'lo' is %d after the restore, %d before", region_lo_after,
           region_lo);
  long vmlck_after = rt_vmlck_kb();
  RT_CHECK(vmlck_after == vmlck_before, "VmLck is %ld kB after the restore, %ld kB before", vmlck_after, vmlck_before);
  if (future) {
    int lo2 = 0, lf2 = 0;
    long grew2 = 0;
    probe_new_mapping(4, &lo2, &lf2, &grew2);
    RT_CHECK(lo2 == lo && lf2 == lf && grew2 == grew,
             "a mapping made after the restore: lo %d lf %d, VmLck +%ld kB; before the dump: lo %d lf %d, +%ld kB", lo2, lf2,
             grew2, lo, lf, grew);
  }
  for (int i = 0; i < pages * PAGE; i++)
    if ((unsigned char)region[i] != 0x3c) {
      rt_fail("the region lost its contents at byte %d", i);
      break;
    }
  return rt_finish();
}

static int cgroup_mode(char **argv, int argc) {
  if (argc < 5) rt_die("cgroup: no CGROUPDIR");
  char procs[512];
  snprintf(procs, sizeof procs, "%s/cgroup.procs", argv[4]);
  int fd = open(procs, O_WRONLY);
  if (fd < 0 || write(fd, "0", 1) != 1) rt_die("joining cgroup %s", argv[4]);
  close(fd);
  static char before[4096], after[4096];
  read_all("/proc/self/cgroup", before, sizeof before);
  rt_ready();
  rt_wait_go(argv[1]);
  read_all("/proc/self/cgroup", after, sizeof after);
  RT_CHECK(strcmp(before, after) == 0, "/proc/self/cgroup after the restore:\n%s\nbefore:\n%s", after, before);
  return rt_finish();
}

static int memfd(const char *name, unsigned flags) {
  int fd = (int)syscall(SYS_memfd_create, name, flags);
  if (fd < 0) rt_die("memfd_create %s", name);
  char page[PAGE];
  memset(page, name[0], sizeof page);
  if (write(fd, page, sizeof page) != PAGE) rt_die("write %s", name);
  return fd;
}

static int seals_mode(char **argv) {
  int future = memfd("future-write", MFD_ALLOW_SEALING);
  char *shared = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, future, 0);
  if (shared == MAP_FAILED) rt_die("mmap future-write");
  if (fcntl(future, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) < 0) rt_die("F_SEAL_FUTURE_WRITE");
  if (pwrite(future, "x", 1, 0) >= 0 || errno != EPERM) rt_die("F_SEAL_FUTURE_WRITE lets write() through");
  int noexec = memfd("noexec", MFD_NOEXEC_SEAL);
  int exec_sealed = memfd("exec-sealed", MFD_ALLOW_SEALING);
  if (fcntl(exec_sealed, F_ADD_SEALS, F_SEAL_EXEC) < 0) rt_die("F_SEAL_EXEC");
  int fds[3] = {future, noexec, exec_sealed};
  const char *names[3] = {"future-write", "noexec", "exec-sealed"};
  int seals[3];
  mode_t modes[3];
  for (int i = 0; i < 3; i++) {
    struct stat st;
    seals[i] = fcntl(fds[i], F_GET_SEALS);
    if (seals[i] < 0 || fstat(fds[i], &st) < 0) rt_die("F_GET_SEALS/fstat %s", names[i]);
    modes[i] = st.st_mode & 07777;
  }
  if (!(seals[1] & F_SEAL_EXEC) || modes[1] != 0666 || modes[2] != 0777) rt_die("MFD_NOEXEC_SEAL/F_SEAL_EXEC");
  printf("seals 0x%x 0x%x 0x%x\n", seals[0], seals[1], seals[2]);

  rt_ready();
  rt_wait_go(argv[1]);

  for (int i = 0; i < 3; i++) {
    struct stat st;
    int now = fcntl(fds[i], F_GET_SEALS);
    RT_CHECK(now == seals[i], "%s: seals 0x%x after the restore, 0x%x before", names[i], now, seals[i]);
    if (fstat(fds[i], &st) < 0) rt_die("fstat %s", names[i]);
    RT_CHECK((st.st_mode & 07777) == modes[i], "%s: mode 0%o after the restore, 0%o before", names[i],
             st.st_mode & 07777, modes[i]);
    char c = 0;
    RT_CHECK(pread(fds[i], &c, 1, 1) == 1 && c == names[i][0], "%s lost its bytes", names[i]);
  }
  RT_CHECK(pwrite(future, "x", 1, 0) < 0 && errno == EPERM, "future-write: write() is not refused after the restore");
  shared[0] = 'W';
  char c = 0;
  RT_CHECK(pread(future, &c, 1, 0) == 1 && c == 'W', "future-write: a write through the mapping is not in the memfd");
  void *again = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, future, 0);
  RT_CHECK(again == MAP_FAILED && errno == EPERM, "future-write: a new writable shared mapping is not refused");
  RT_CHECK(fchmod(noexec, 0755) < 0 && errno == EPERM, "noexec: chmod +x is not refused after the restore");
  RT_CHECK(fchmod(exec_sealed, 0666) < 0 && errno == EPERM, "exec-sealed: chmod -x is not refused after the restore");
  return rt_finish();
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 4);
  const char *mode = argv[3];
  /* stdio's buffers and the heap they come from, before any MCL_FUTURE:
   * allocated later they would be locked and change VmLck. */
  printf("mode %s\n", mode);
  rt_vmlck_kb();
  rt_vma_has_flag(argv, "lo");
  if (strncmp(mode, "mlock-setuid", 12) == 0 || strcmp(mode, "mcl-future") == 0) return mlock_modes(argv, mode);
  if (strcmp(mode, "cgroup") == 0) return cgroup_mode(argv, argc);
  if (strcmp(mode, "seals") == 0) return seals_mode(argv);
  rt_die("unknown mode %s", mode);
}
