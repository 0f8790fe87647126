/* Restore test: a process tree. The root R has
 *   A   a child with a grandchild G; a pipe R->G holds "from-root" and a
 *       pipe G->R holds "from-grandchild", both buffered at the dump;
 *   B   a child that called setsid (it leads its own session);
 *   C   a child that leads its own process group, and D, a child in C's group;
 *   T   a child forked by a non-main thread of R;
 *   Z1  a zombie that exited with status 5, Z2 one killed by SIGUSR1.
 * R, A and G share one page of MAP_SHARED|MAP_ANONYMOUS memory; R, A and B
 * share one open file description of WORKDIR/shared.txt (one offset).
 * It prints "pids R A B C D T Z1 Z2" and "ready". After the go file each
 * process checks its pid, parent, session and group; G reads its pipe and
 * writes "G" into the shared page, A checks it sees the root's "R" there,
 * A and B each write one line through the shared description, and R waits
 * for every child (the zombies' statuses included), reads G's bytes, checks
 * the page and the file, and exits 0 with "PASS" on stderr.
 *   usage: restore_tree GOFILE WORKDIR */
#include "rt_prog.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static const char *go_file;
static char *page;
static pid_t root_pid, root_pgid, root_sid;
static int ready_w;  /* each child writes one byte here once set up */

static pid_t real_getpid(void) { return (pid_t)syscall(SYS_getpid); }

static char dumped_ns[64];

/* The root's session and group lead outside the tree: restored into a new
 * pid namespace (restore --pidns), their leaders are not in it and the
 * kernel reports them as 0 there. */
static pid_t outside_id(pid_t id) {
  char ns[64] = "";
  if (readlink("/proc/self/ns/pid", ns, sizeof ns - 1) < 0) rt_fail("readlink: %s", strerror(errno));
  return strcmp(ns, dumped_ns) == 0 ? id : 0;
}

/* A child's common checks after the go file; its exit status says how it went. */
static void check_self(pid_t pid, pid_t ppid, pid_t pgid, pid_t sid) {
  if (pgid == root_pgid) pgid = outside_id(pgid);
  if (sid == root_sid) sid = outside_id(sid);
  RT_CHECK(real_getpid() == pid, "getpid() %d, was %d", real_getpid(), pid);
  RT_CHECK(getppid() == ppid, "pid %d: parent %d, was %d", pid, getppid(), ppid);
  RT_CHECK(getpgid(0) == pgid, "pid %d: process group %d, was %d", pid, getpgid(0), pgid);
  RT_CHECK(getsid(0) == sid, "pid %d: session %d, was %d", pid, getsid(0), sid);
}

static void set_up(void) {
  char c = 1;
  if (write(ready_w, &c, 1) != 1) rt_die("ready pipe");
}

static pid_t forked_by_thread;
static void *thread_main(void *arg) {
  (void)arg;
  pid_t parent = real_getpid();
  pid_t t = fork();
  if (t < 0) rt_die("fork T");
  if (t == 0) {
    pid_t me = real_getpid();
    set_up();
    rt_wait_go(go_file);
    check_self(me, parent, root_pgid, root_sid);
    _exit(rt_failures ? 1 : 0);
  }
  forked_by_thread = t;
  return NULL;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  go_file = argv[1];
  if (readlink("/proc/self/ns/pid", dumped_ns, sizeof dumped_ns - 1) < 0) rt_die("readlink");
  root_pid = real_getpid();
  root_pgid = getpgid(0);
  root_sid = getsid(0);
  page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) rt_die("mmap");
  page[0] = 'R';
  char path[4096];
  snprintf(path, sizeof path, "%s/shared.txt", argv[2]);
  int file = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (file < 0 || write(file, "root\n", 5) != 5) rt_die("shared.txt");
  int to_g[2], from_g[2], ready[2];
  if (pipe(to_g) || pipe(from_g) || pipe(ready)) rt_die("pipe");
  ready_w = ready[1];
  if (write(to_g[1], "from-root", 9) != 9) rt_die("write to_g");

  pid_t a = fork();
  if (a < 0) rt_die("fork A");
  if (a == 0) {
    pid_t me = real_getpid();
    pid_t g = fork();
    if (g < 0) rt_die("fork G");
    if (g == 0) {
      pid_t gme = real_getpid();
      close(to_g[1]);
      close(from_g[0]);
      if (write(from_g[1], "from-grandchild", 15) != 15) rt_die("write from_g");
      set_up();
      rt_wait_go(go_file);
      check_self(gme, me, root_pgid, root_sid);
      char buf[32] = "";
      ssize_t n = read(to_g[0], buf, sizeof buf - 1);
      RT_CHECK(n == 9 && memcmp(buf, "from-root", 9) == 0, "G read %zd bytes '%s' from the root's pipe", n, buf);
      RT_CHECK(page[0] == 'R', "G sees '%c' in the shared page, not R", page[0]);
      page[1] = 'G';
      _exit(rt_failures ? 1 : 0);
    }
    close(to_g[0]);
    close(to_g[1]);
    close(from_g[0]);
    close(from_g[1]);
    set_up();
    rt_wait_go(go_file);
    check_self(me, root_pid, root_pgid, root_sid);
    int st = 0;
    RT_CHECK(waitpid(g, &st, 0) == g && WIFEXITED(st) && WEXITSTATUS(st) == 0, "G: wait status 0x%x", st);
    RT_CHECK(page[1] == 'G', "A does not see G's write in the shared page ('%c')", page[1]);
    RT_CHECK(write(file, "A\n", 2) == 2, "A: write: %s", strerror(errno));
    _exit(rt_failures ? 1 : 0);
  }
  pid_t b = fork();
  if (b < 0) rt_die("fork B");
  if (b == 0) {
    pid_t me = real_getpid();
    if (setsid() < 0) rt_die("setsid");
    set_up();
    rt_wait_go(go_file);
    check_self(me, root_pid, me, me);
    RT_CHECK(write(file, "B\n", 2) == 2, "B: write: %s", strerror(errno));
    _exit(rt_failures ? 1 : 0);
  }
  int c_ready[2];
  if (pipe(c_ready)) rt_die("pipe");
  pid_t c = fork();
  if (c < 0) rt_die("fork C");
  if (c == 0) {
    pid_t me = real_getpid();
    if (setpgid(0, 0) < 0) rt_die("setpgid C");
    close(c_ready[0]);
    close(c_ready[1]);
    set_up();
    rt_wait_go(go_file);
    check_self(me, root_pid, me, root_sid);
    _exit(rt_failures ? 1 : 0);
  }
  if (setpgid(c, c) < 0 && errno != EACCES) rt_die("setpgid C from R");
  close(c_ready[0]);
  close(c_ready[1]);
  pid_t d = fork();
  if (d < 0) rt_die("fork D");
  if (d == 0) {
    pid_t me = real_getpid();
    if (setpgid(0, c) < 0) rt_die("setpgid D");
    set_up();
    rt_wait_go(go_file);
    check_self(me, root_pid, c, root_sid);
    _exit(rt_failures ? 1 : 0);
  }
  pthread_t thread;
  if (pthread_create(&thread, NULL, thread_main, NULL) != 0) rt_die("pthread_create");
  pthread_join(thread, NULL);
  pid_t t = forked_by_thread;
  pid_t z1 = fork();
  if (z1 == 0) _exit(5);
  pid_t z2 = fork();
  if (z2 == 0) {
    signal(SIGUSR1, SIG_DFL);
    raise(SIGUSR1);
    _exit(99);
  }
  close(to_g[0]);
  close(from_g[1]);
  /* Every live child set up (A and G, B, C, D, T), the zombies dead. */
  for (int i = 0; i < 6; i++) {
    char ch;
    if (read(ready[0], &ch, 1) != 1) rt_die("ready pipe");
  }
  siginfo_t info;
  if (waitid(P_PID, z1, &info, WEXITED | WNOWAIT) || waitid(P_PID, z2, &info, WEXITED | WNOWAIT)) rt_die("waitid");
  printf("pids %d %d %d %d %d %d %d %d\n", root_pid, a, b, c, d, t, z1, z2);
  rt_ready();
  rt_wait_go(go_file);

  rt_report_to(argv[2]);
  RT_CHECK(real_getpid() == root_pid, "getpid() %d, was %d", real_getpid(), root_pid);
  const struct { pid_t pid; const char *name; } kids[] = {{a, "A"}, {b, "B"}, {c, "C"}, {d, "D"}, {t, "T"}};
  for (size_t i = 0; i < sizeof kids / sizeof kids[0]; i++) {
    int st = 0;
    pid_t w = waitpid(kids[i].pid, &st, 0);
    RT_CHECK(w == kids[i].pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s (%d): waitpid %d, status 0x%x",
             kids[i].name, kids[i].pid, w, st);
  }
  int st = 0;
  pid_t w = waitpid(z1, &st, WNOHANG);
  RT_CHECK(w == z1 && WIFEXITED(st) && WEXITSTATUS(st) == 5, "zombie Z1 (%d): waitpid %d, status 0x%x", z1, w, st);
  w = waitpid(z2, &st, WNOHANG);
  RT_CHECK(w == z2 && WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR1, "zombie Z2 (%d): waitpid %d, status 0x%x", z2, w,
           st);
  RT_CHECK(waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD, "a child left after all were reaped");
  char buf[32] = "";
  ssize_t n = read(from_g[0], buf, sizeof buf - 1);
  RT_CHECK(n == 15 && memcmp(buf, "from-grandchild", 15) == 0, "R read %zd bytes '%s' from G's pipe", n, buf);
  RT_CHECK(page[1] == 'G', "R does not see G's write in the shared page ('%c')", page[1]);
  /* One offset for R, A and B: "root\n" then "A\n" and "B\n" after it, in
   * either order; separate offsets would have written both at 5. */
  off_t end = lseek(file, 0, SEEK_CUR);
  RT_CHECK(end == 9, "the shared file offset is %lld, not 9", (long long)end);
  char text[16] = "";
  RT_CHECK(pread(file, text, sizeof text - 1, 0) == 9, "shared.txt is not 9 bytes: '%s'", text);
  RT_CHECK(strcmp(text, "root\nA\nB\n") == 0 || strcmp(text, "root\nB\nA\n") == 0, "shared.txt holds '%s'", text);
  FILE *maps = fopen("/proc/self/maps", "r");
  char line[512];
  int dev_zero = 0;
  while (maps && fgets(line, sizeof line, maps))
    if (strtoull(line, NULL, 16) == (unsigned long long)(uintptr_t)page) dev_zero = strstr(line, "/dev/zero (deleted)") != NULL;
  if (maps) fclose(maps);
  RT_CHECK(dev_zero, "the shared page is not shared anonymous memory (/dev/zero (deleted)) in /proc/self/maps");
  return rt_finish();
}
