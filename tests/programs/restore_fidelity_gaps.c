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
 *   are the same after the restore.
 * - "account": private mappings whose commit charge (smaps "ac",
 *   VM_ACCOUNT) comes from their history: writable once, then PROT_NONE
 *   (a thread stack's guard) or read-only (written first, like RELRO);
 *   PROT_NONE then made writable; a file mapping written then read-only;
 *   read-only ones never writable whose bytes were changed through
 *   /proc/self/mem (a debugger's breakpoint); one writable, never
 *   touched, then PROT_NONE (uncharged again): each has "ac" as before
 *   the dump after the restore, and its bytes.
 * - "mapped-modes": a memfd (chmod 0640), a MFD_NOEXEC_SEAL memfd (0666,
 *   F_SEAL_EXEC) and an unlinked /dev/shm file (0604), each mapped
 *   MAP_SHARED with no fd left: the mode stat shows through
 *   /proc/self/map_files is the same after the restore. */
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

/* Writes `len` bytes at p through /proc/self/mem: FOLL_FORCE, as a
 * debugger does, so a read-only private mapping is changed without ever
 * being writable. */
static void force_write(void *p, const void *bytes, size_t len) {
  int fd = open("/proc/self/mem", O_RDWR);
  if (fd < 0 || pwrite(fd, bytes, len, (off_t)(uintptr_t)p) != (ssize_t)len) rt_die("write through /proc/self/mem");
  close(fd);
}

#define NACCOUNT 7

static int account_mode(char **argv) {
  char path[512];
  snprintf(path, sizeof path, "%s/account-data", argv[2]);
  int file = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  char page[PAGE];
  memset(page, 'f', sizeof page);
  if (file < 0 || write(file, page, PAGE) != PAGE || write(file, page, PAGE) != PAGE) rt_die("%s", path);
  const char *names[NACCOUNT] = {"written-dropped-then-none", "written-then-read-only", "none-then-writable",
                                 "file-written-then-read-only", "file-read-only-patched", "anon-read-only-patched",
                                 "untouched-writable-then-none"};
  /* What the kernel's rules give (mm/mmap.c, mm/mprotect.c): charged once
   * writable and kept when write is dropped, but for an anonymous mapping
   * never faulted in (no anon_vma), whose charge goes with write; a forced
   * write charges nothing. */
  static const int expected_ac[NACCOUNT] = {1, 1, 1, 1, 0, 0, 0};
  char *maps[NACCOUNT];
  for (int i = 0; i < NACCOUNT; i++) {
    /* A hole page after each keeps them from merging. */
    char *p = mmap(NULL, 3 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || munmap(p + 2 * PAGE, PAGE) < 0) rt_die("mmap %s", names[i]);
    int anon_flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, file_flags = MAP_PRIVATE | MAP_FIXED;
    int ok = 1;
    switch (i) {
    case 0: /* a thread stack's guard: the stack was used, the guard page is empty */
      ok = mmap(p, 2 * PAGE, PROT_READ | PROT_WRITE, anon_flags, -1, 0) == p;
      if (ok) p[0] = 1;
      ok = ok && madvise(p, PAGE, MADV_DONTNEED) == 0 && mprotect(p, 2 * PAGE, PROT_NONE) == 0;
      break;
    case 1:
      ok = mmap(p, 2 * PAGE, PROT_READ | PROT_WRITE, anon_flags, -1, 0) == p;
      if (ok) memset(p, 'r', PAGE);
      ok = ok && mprotect(p, 2 * PAGE, PROT_READ) == 0;
      break;
    case 2:
      ok = mprotect(p, 2 * PAGE, PROT_READ | PROT_WRITE) == 0;
      if (ok) memset(p + PAGE, 'w', PAGE);
      break;
    case 3:
      ok = mmap(p, 2 * PAGE, PROT_READ | PROT_WRITE, file_flags, file, 0) == p;
      if (ok) p[1] = 'W';
      ok = ok && mprotect(p, 2 * PAGE, PROT_READ) == 0;
      break;
    case 4:
      ok = mmap(p, 2 * PAGE, PROT_READ, file_flags, file, 0) == p;
      if (ok) force_write(p + PAGE + 2, "BP", 2);
      break;
    case 5:
      ok = mmap(p, 2 * PAGE, PROT_READ, anon_flags, -1, 0) == p;
      if (ok) force_write(p + 5, "bp", 2);
      break;
    case 6:
      ok = mmap(p, 2 * PAGE, PROT_READ | PROT_WRITE, anon_flags, -1, 0) == p && mprotect(p, 2 * PAGE, PROT_NONE) == 0;
      break;
    }
    if (!ok) rt_die("making %s", names[i]);
    maps[i] = p;
  }
  close(file);
  int ac[NACCOUNT];
  for (int i = 0; i < NACCOUNT; i++) {
    ac[i] = rt_vma_has_flag(maps[i], "ac");
    if (ac[i] != expected_ac[i]) rt_die("%s: 'ac' is %d before the dump, not %d", names[i], ac[i], expected_ac[i]);
  }

  rt_ready();
  rt_wait_go(argv[1]);

  for (int i = 0; i < NACCOUNT; i++) {
    int now = rt_vma_has_flag(maps[i], "ac");
    RT_CHECK(now == ac[i], "%s: 'ac' is %d after the restore, %d before", names[i], now, ac[i]);
  }
  RT_CHECK(maps[1][0] == 'r' && maps[1][PAGE - 1] == 'r' && maps[1][PAGE] == 0, "written-then-read-only lost its bytes");
  RT_CHECK(maps[2][PAGE] == 'w' && maps[2][0] == 0, "none-then-writable lost its bytes");
  RT_CHECK(maps[3][0] == 'f' && maps[3][1] == 'W' && maps[3][PAGE] == 'f', "file-written-then-read-only lost its bytes");
  RT_CHECK(maps[4][PAGE + 1] == 'f' && maps[4][PAGE + 2] == 'B' && maps[4][PAGE + 3] == 'P' && maps[4][0] == 'f',
           "file-read-only-patched lost its bytes");
  RT_CHECK(maps[5][5] == 'b' && maps[5][6] == 'p' && maps[5][0] == 0, "anon-read-only-patched lost its bytes");
  return rt_finish();
}

/* The mode of the object mapped at p, through /proc/self/map_files. */
static int mapped_mode(void *p, size_t len) {
  char link[96];
  struct stat st;
  snprintf(link, sizeof link, "/proc/self/map_files/%lx-%lx", (unsigned long)p, (unsigned long)p + len);
  return stat(link, &st) < 0 ? -1 : (int)(st.st_mode & 07777);
}

static int mapped_modes_mode(char **argv) {
  const char *names[3] = {"memfd-0640", "memfd-noexec", "shm-0604"};
  char *maps[3];
  int modes[3];
  char shm[64];
  snprintf(shm, sizeof shm, "/dev/shm/ckpt-mapped-mode-%d", (int)getpid());
  for (int i = 0; i < 3; i++) {
    int fd = i == 0   ? memfd(names[i], 0)
             : i == 1 ? memfd(names[i], MFD_NOEXEC_SEAL)
                      : open(shm, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) rt_die("%s", names[i]);
    if (i == 0 && fchmod(fd, 0640) < 0) rt_die("fchmod %s", names[i]);
    if (i == 2 && (ftruncate(fd, PAGE) < 0 || fchmod(fd, 0604) < 0 || unlink(shm) < 0)) rt_die("%s", shm);
    maps[i] = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (maps[i] == MAP_FAILED) rt_die("mmap %s", names[i]);
    close(fd);
    maps[i][1] = (char)('A' + i);
    modes[i] = mapped_mode(maps[i], PAGE);
  }
  if (modes[0] != 0640 || modes[1] != 0666 || modes[2] != 0604)
    rt_die("modes 0%o 0%o 0%o before the dump", modes[0], modes[1], modes[2]);

  rt_ready();
  rt_wait_go(argv[1]);

  for (int i = 0; i < 3; i++) {
    int now = mapped_mode(maps[i], PAGE);
    RT_CHECK(now == modes[i], "%s: mode 0%o after the restore, 0%o before", names[i], now, modes[i]);
    RT_CHECK(maps[i][1] == 'A' + i, "%s lost its bytes", names[i]);
  }
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
  if (strcmp(mode, "account") == 0) return account_mode(argv);
  if (strcmp(mode, "mapped-modes") == 0) return mapped_modes_mode(argv);
  rt_die("unknown mode %s", mode);
}
