/* Restore test: a memfd sealed with F_SEAL_FUTURE_WRITE (and F_SEAL_GROW,
 * F_SEAL_SHRINK, F_SEAL_SEAL) while a parent and the child it forked both
 * map it MAP_SHARED read-write (decision 192: the seal keeps the writable
 * mappings made before it and refuses new ones). After restore the two
 * still see each other's writes through their mappings, the seals are
 * the same, and a new writable shared mapping and write() are refused
 * (EPERM) in both processes. Before the fix the first process whose
 * restorer added the seal made the other's mapping fail ("Operation not
 * permitted").
 * MODE says who keeps the memfd's fd open:
 *   "both": parent and child (the child inherits it);
 *   "parent-fd": the parent only, the child only maps it;
 *   "none": neither, both only map it (its seals are in the VMA records,
 *   format minor 8);
 *   "none-unprivileged": "none" run as a user who may not open
 *   map_files, which it then does not check before the dump (an
 *   unprivileged --pidns restore of it is refused, decision 239);
 *   "single": one process, no child, that only maps it;
 *   "single-write": the same with F_SEAL_WRITE instead of
 *   F_SEAL_FUTURE_WRITE, mapped read-only after the seal (F_SEAL_WRITE
 *   refuses writable shared mappings; restore adds it before mapping).
 * Each process reads the seals and opens the memfd anew through
 * /proc/self/map_files (which gives the mapped file whether or not the
 * process has an fd of it) after the restore; map_files' link still
 * names the memfd "/memfd:tree-sealed (deleted)".
 *   usage: restore_sealed_memfd_tree GOFILE WORKDIR MODE */
#include "rt_prog.h"

#include <sys/mman.h>
#include <sys/wait.h>

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

#define PAGE 4096
#define PAGES 4
#define FUTURE_SEALS (F_SEAL_FUTURE_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)
#define WRITE_SEALS (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)
#define NAME_LINK "/memfd:tree-sealed (deleted)"

static int SEALS = FUTURE_SEALS;
#define TOKEN 0x5ea1ed

/* The memfd behind the mapping at `shared`, opened anew through
 * map_files with `flags` (-1 and errno if it cannot be). */
static int open_mapped(volatile int *shared, int flags) {
  char path[128];
  snprintf(path, sizeof path, "/proc/self/map_files/%lx-%lx", (unsigned long)(uintptr_t)shared,
           (unsigned long)(uintptr_t)shared + PAGES * PAGE);
  return open(path, flags | O_CLOEXEC);
}

/* What the seals forbid, and the seals themselves, as the process sees
 * them now; `who` names it in a failed check. */
static void check_sealed(volatile int *shared, int fd, const char *who) {
  int mapped = open_mapped(shared, O_RDWR);
  RT_CHECK(mapped >= 0, "%s: cannot open the mapped memfd through map_files: %s", who, strerror(errno));
  if (mapped < 0) return;
  char link[128], name[256] = "";
  snprintf(link, sizeof link, "/proc/self/map_files/%lx-%lx", (unsigned long)(uintptr_t)shared,
           (unsigned long)(uintptr_t)shared + PAGES * PAGE);
  ssize_t n = readlink(link, name, sizeof name - 1);
  if (n > 0) name[n] = 0;
  RT_CHECK(strcmp(name, NAME_LINK) == 0, "%s: the mapped memfd is \"%s\", was \"%s\"", who, name, NAME_LINK);
  int seals = fcntl(mapped, F_GET_SEALS);
  RT_CHECK(seals == SEALS, "%s: seals 0x%x through map_files, 0x%x before the dump", who, seals, SEALS);
  if (fd >= 0) {
    int own = fcntl(fd, F_GET_SEALS);
    RT_CHECK(own == SEALS, "%s: seals 0x%x through its fd, 0x%x before the dump", who, own, SEALS);
  }
  void *again = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mapped, 0);
  RT_CHECK(again == MAP_FAILED && errno == EPERM, "%s: a new writable shared mapping is not refused (%s)", who,
           again == MAP_FAILED ? strerror(errno) : "it was made");
  if (again != MAP_FAILED) munmap(again, PAGE);
  RT_CHECK(pwrite(mapped, "x", 1, 0) < 0 && errno == EPERM, "%s: write() is not refused", who);
  RT_CHECK(ftruncate(mapped, 2 * PAGES * PAGE) < 0 && errno == EPERM, "%s: growing it is not refused", who);
  close(mapped);
}

/* Waits (10 s at most) until *w holds `want`. */
static int wait_for(volatile int *w, int want) {
  double until = rt_now(CLOCK_MONOTONIC) + 10;
  while (*w != want && rt_now(CLOCK_MONOTONIC) < until) rt_sleep_ms(1);
  return *w == want;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 4);
  const char *mode = argv[3];
  int unprivileged = strcmp(mode, "none-unprivileged") == 0;
  if (unprivileged) mode = "none";
  int parent_fd = strcmp(mode, "parent-fd") == 0 || strcmp(mode, "both") == 0;
  int child_fd = strcmp(mode, "both") == 0;
  int single = strcmp(mode, "single") == 0 || strcmp(mode, "single-write") == 0;
  if (!parent_fd && !single && strcmp(mode, "none") != 0)
    rt_die("mode %s: both, parent-fd, none, single or single-write", mode);
  if (strcmp(mode, "single-write") == 0) SEALS = WRITE_SEALS;
  int fd = memfd_create("tree-sealed", MFD_ALLOW_SEALING | MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, PAGES * PAGE) != 0) rt_die("memfd_create");
  volatile int *shared;
  if (SEALS & F_SEAL_WRITE) {
    /* The bytes by write(), then the seal, then a read-only mapping:
     * F_SEAL_WRITE cannot be added while a writable mapping exists. */
    for (int i = 0; i < PAGES; i++) {
      int v = 100 + i;
      if (pwrite(fd, &v, sizeof v, (off_t)i * PAGE + 8 * (off_t)sizeof(int)) != sizeof v) rt_die("pwrite");
    }
    if (fcntl(fd, F_ADD_SEALS, SEALS) != 0) rt_die("F_ADD_SEALS");
    shared = mmap(NULL, PAGES * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    if (shared == MAP_FAILED) rt_die("mmap");
  } else {
    shared = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (shared == MAP_FAILED) rt_die("mmap");
    for (int i = 0; i < PAGES; i++) shared[i * PAGE / (int)sizeof(int) + 8] = 100 + i;
    if (fcntl(fd, F_ADD_SEALS, SEALS) != 0) rt_die("F_ADD_SEALS");
  }
  if (!unprivileged) check_sealed(shared, fd, "parent before the dump");
  if (rt_failures) rt_die("the seals do not hold before the dump");
  if (single) {
    close(fd);
    rt_ready();
    rt_wait_go(argv[1]);
    check_sealed(shared, -1, "restored");
    for (int i = 0; i < PAGES; i++)
      RT_CHECK(shared[i * PAGE / (int)sizeof(int) + 8] == 100 + i, "page %d lost its bytes", i);
    return rt_finish();
  }
  pid_t child = fork();
  if (child < 0) rt_die("fork");
  if (child == 0) {
    if (!child_fd) close(fd), fd = -1;
    shared[1] = 1; /* its setup is done */
    rt_wait_go(argv[1]);
    check_sealed(shared, fd, "child");
    for (int i = 0; i < PAGES; i++)
      RT_CHECK(shared[i * PAGE / (int)sizeof(int) + 8] == 100 + i, "child: page %d lost its bytes", i);
    RT_CHECK(wait_for(&shared[2], TOKEN), "child: the parent's token never showed: not shared after restore");
    shared[3] = TOKEN + 1;
    _exit(rt_failures ? 1 : 0); /* the parent reports PASS for both */
  }
  if (!wait_for(&shared[1], 1)) rt_die("the child did not start");
  if (!parent_fd) close(fd), fd = -1;
  rt_ready();
  rt_wait_go(argv[1]);
  check_sealed(shared, fd, "parent");
  for (int i = 0; i < PAGES; i++)
    RT_CHECK(shared[i * PAGE / (int)sizeof(int) + 8] == 100 + i, "parent: page %d lost its bytes", i);
  shared[2] = TOKEN;
  RT_CHECK(wait_for(&shared[3], TOKEN + 1), "the child never answered through the mapping: not shared after restore");
  if (shared[3] != TOKEN + 1) kill(child, SIGKILL);
  int st = 0;
  RT_CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
  return rt_finish();
}
