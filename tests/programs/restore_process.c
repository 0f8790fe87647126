/* Restore test: process state. Working directory, umask, resource limits,
 * nice value, name, session leadership; CLOCK_MONOTONIC and
 * CLOCK_BOOTTIME keep moving forward across the dump and restore.
 *   usage: restore_process GOFILE WORKDIR */
#include "rt_prog.h"

#include <grp.h>
#include <sys/auxv.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

/// The nice value set before the checkpoint, checked after the restore.
static int want_nice;

static size_t read_proc(const char *path, char *buf, size_t size) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, size, f);
  fclose(f);
  return n;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  char cwd[4096];
  snprintf(cwd, sizeof cwd, "%s/sub dir", argv[2]);
  if (mkdir(cwd, 0755) != 0 || chdir(cwd) != 0) rt_die("mkdir/chdir %s", cwd);
  /* The go file's path may be relative to the original directory. */
  char go[4096];
  if (argv[1][0] == '/') snprintf(go, sizeof go, "%s", argv[1]);
  else rt_die("GOFILE must be absolute");
  umask(0027);
  struct rlimit nofile = {200, 300}, core = {12345 * 4096, 23456 * 4096};
  if (setrlimit(RLIMIT_NOFILE, &nofile) != 0 || setrlimit(RLIMIT_CORE, &core) != 0) rt_die("setrlimit");
  // Raise the nice value by 7 from wherever the test runner left it (an
  // unprivileged process may only raise it; `nice ctest` starts it at 10).
  errno = 0;
  int start_nice = getpriority(PRIO_PROCESS, 0);
  want_nice = start_nice + 7 > 19 ? 19 : start_nice + 7;
  if (want_nice == start_nice) rt_die("nice value already at the maximum");
  if (setpriority(PRIO_PROCESS, 0, want_nice) != 0) rt_die("setpriority");
  if (prctl(PR_SET_NAME, "rs-proc-comm") != 0) rt_die("PR_SET_NAME");
  if (setsid() < 0) rt_die("setsid");
  static char exe0[4096], cmdline0[4096], exe1[4096], cmdline1[4096];
  if (readlink("/proc/self/exe", exe0, sizeof exe0 - 1) <= 0) rt_die("readlink");
  size_t cmdline0_len = read_proc("/proc/self/cmdline", cmdline0, sizeof cmdline0);
  unsigned long at_random0 = getauxval(AT_RANDOM), at_phdr0 = getauxval(AT_PHDR);
  setenv("RS_PROCESS_ENV", "set before the dump", 1);
  int persona0 = personality(0xffffffff);
  uid_t uid0[3];
  gid_t gid0[3], groups0[64];
  getresuid(&uid0[0], &uid0[1], &uid0[2]);
  getresgid(&gid0[0], &gid0[1], &gid0[2]);
  int ngroups0 = getgroups(64, groups0);
  printf("uid %d\n", (int)uid0[0]);
  double mono0 = rt_now(CLOCK_MONOTONIC), boot0 = rt_now(CLOCK_BOOTTIME), real0 = rt_now(CLOCK_REALTIME);
  rt_ready();
  rt_wait_go(go);
  double mono1 = rt_now(CLOCK_MONOTONIC), boot1 = rt_now(CLOCK_BOOTTIME), real1 = rt_now(CLOCK_REALTIME);

  char now[4096] = "";
  if (!getcwd(now, sizeof now)) rt_fail("getcwd: %s", strerror(errno));
  RT_CHECK(strcmp(now, cwd) == 0, "cwd \"%s\", expected \"%s\"", now, cwd);
  mode_t m = umask(0);
  RT_CHECK(m == 0027, "umask 0%o, expected 0027", m);
  struct rlimit r;
  getrlimit(RLIMIT_NOFILE, &r);
  RT_CHECK(r.rlim_cur == 200 && r.rlim_max == 300, "RLIMIT_NOFILE %llu/%llu, expected 200/300",
           (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max);
  getrlimit(RLIMIT_CORE, &r);
  RT_CHECK(r.rlim_cur == core.rlim_cur && r.rlim_max == core.rlim_max, "RLIMIT_CORE %llu/%llu",
           (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max);
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, 0);
  RT_CHECK(nice == want_nice && errno == 0, "nice %d, expected %d", nice, want_nice);
  char comm[32] = "";
  prctl(PR_GET_NAME, comm);
  RT_CHECK(strcmp(comm, "rs-proc-comm") == 0, "comm \"%s\", expected \"rs-proc-comm\"", comm);
  FILE *f = fopen("/proc/self/comm", "r");
  if (f) {
    char line[64] = "";
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    fclose(f);
    RT_CHECK(strcmp(line, "rs-proc-comm\n") == 0, "/proc/self/comm \"%s\"", line);
  }
  RT_CHECK(getsid(0) == getpid(), "session %d, expected to lead our own (%d)", getsid(0), getpid());
  RT_CHECK(getpgid(0) == getpid(), "process group %d, expected %d", getpgid(0), getpid());
  RT_CHECK(mono1 > mono0, "CLOCK_MONOTONIC went back: %.6f -> %.6f", mono0, mono1);
  RT_CHECK(boot1 > boot0, "CLOCK_BOOTTIME went back: %.6f -> %.6f", boot0, boot1);
  RT_CHECK(real1 > real0, "CLOCK_REALTIME went back: %.6f -> %.6f", real0, real1);
  /* Identity. */
  int persona1 = personality(0xffffffff);
  RT_CHECK(persona1 == persona0, "personality 0x%x, was 0x%x", persona1, persona0);
  uid_t uid1[3];
  gid_t gid1[3], groups1[64];
  getresuid(&uid1[0], &uid1[1], &uid1[2]);
  getresgid(&gid1[0], &gid1[1], &gid1[2]);
  int ngroups1 = getgroups(64, groups1);
  RT_CHECK(!memcmp(uid0, uid1, sizeof uid0), "uids %d/%d/%d, were %d/%d/%d", uid1[0], uid1[1], uid1[2], uid0[0],
           uid0[1], uid0[2]);
  RT_CHECK(!memcmp(gid0, gid1, sizeof gid0), "gids %d/%d/%d, were %d/%d/%d", gid1[0], gid1[1], gid1[2], gid0[0],
           gid0[1], gid0[2]);
  RT_CHECK(ngroups1 == ngroups0 && !memcmp(groups0, groups1, ngroups0 * sizeof(gid_t)),
           "supplementary groups differ (%d, were %d)", ngroups1, ngroups0);

  /* What the kernel says about the program. */
  if (readlink("/proc/self/exe", exe1, sizeof exe1 - 1) <= 0) rt_fail("readlink /proc/self/exe: %s", strerror(errno));
  RT_CHECK(strcmp(exe0, exe1) == 0, "/proc/self/exe is \"%s\", was \"%s\"", exe1, exe0);
  size_t cmdline1_len = read_proc("/proc/self/cmdline", cmdline1, sizeof cmdline1);
  RT_CHECK(cmdline1_len == cmdline0_len && memcmp(cmdline0, cmdline1, cmdline0_len) == 0,
           "/proc/self/cmdline differs (%zu bytes, was %zu): \"%s\"", cmdline1_len, cmdline0_len, cmdline1);
  RT_CHECK(getauxval(AT_RANDOM) == at_random0 && getauxval(AT_PHDR) == at_phdr0, "auxv differs");
  char auxv[4096];
  size_t auxv_len = read_proc("/proc/self/auxv", auxv, sizeof auxv);
  int found_phdr = 0;
  for (size_t i = 0; i + 16 <= auxv_len; i += 16) {
    unsigned long key, val;
    memcpy(&key, auxv + i, 8);
    memcpy(&val, auxv + i + 8, 8);
    if (key == AT_PHDR) found_phdr = val == at_phdr0;
  }
  RT_CHECK(found_phdr, "/proc/self/auxv has no AT_PHDR 0x%lx", at_phdr0);
  const char *env = getenv("RS_PROCESS_ENV");
  RT_CHECK(env && strcmp(env, "set before the dump") == 0, "environment variable lost");

  /* fork and exec still work. */
  pid_t child = fork();
  if (child == 0) _exit(getppid() == getpid() ? 1 : 7);
  int st = 0;
  RT_CHECK(child > 0 && waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 7,
           "fork: child %d, status 0x%x", child, st);
  child = fork();
  if (child == 0) {
    execl("/bin/sh", "sh", "-c", "exit 5", (char *)NULL);
    _exit(127);
  }
  RT_CHECK(child > 0 && waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 5,
           "fork+exec /bin/sh: status 0x%x", st);

  /* And time keeps moving (the vdso works). */
  rt_sleep_ms(20);
  double mono2 = rt_now(CLOCK_MONOTONIC);
  RT_CHECK(mono2 >= mono1 + 0.019, "CLOCK_MONOTONIC: 20 ms sleep took %.6f s", mono2 - mono1);
  return rt_finish();
}
