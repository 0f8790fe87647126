/* Restore test: process settings the kernel keeps per process or per mm
 * (issue 17): oom_score_adj, loginuid, PR_SET_CHILD_SUBREAPER,
 * PR_SET_THP_DISABLE and membarrier registrations. Each is set before
 * "ready"; after the restore each must read back the same, and a
 * registered membarrier command must still work. Given cgroup
 * directories, it moves itself into each first: /proc/self/cgroup must
 * read the same after the restore.
 *   usage: restore_settings GOFILE WORKDIR [CGROUPDIR...] */
#include "rt_prog.h"

#include <fcntl.h>
#include <sys/syscall.h>

/* linux/membarrier.h of older headers lacks the newer commands. */
#define MB_CMD_PRIVATE_EXPEDITED (1 << 3)
#define MB_CMD_REGISTER_PRIVATE_EXPEDITED (1 << 4)
#define MB_CMD_REGISTER_GLOBAL_EXPEDITED (1 << 2)
#define MB_CMD_GET_REGISTRATIONS (1 << 9)

static long membarrier(int cmd) { return syscall(SYS_membarrier, cmd, 0, -1); }

static long read_proc_long(const char *name) {
  char path[64], buf[64] = {0};
  snprintf(path, sizeof path, "/proc/self/%s", name);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1000000;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n > 0 ? strtol(buf, NULL, 10) : -1000000;
}

static int write_proc(const char *name, const char *value) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/%s", name);
  int fd = open(path, O_WRONLY);
  if (fd < 0) return -1;
  ssize_t n = write(fd, value, strlen(value));
  close(fd);
  return n == (ssize_t)strlen(value) ? 0 : -1;
}

static void read_all(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY);
  ssize_t n = fd < 0 ? -1 : read(fd, buf, size - 1);
  buf[n > 0 ? n : 0] = 0;
  if (fd >= 0) close(fd);
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  for (int i = 3; i < argc; i++) {
    char procs[512];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", argv[i]);
    int fd = open(procs, O_WRONLY);
    if (fd < 0 || write(fd, "0", 1) != 1) rt_die("joining cgroup %s", argv[i]);
    close(fd);
  }
  static char cgroups_before[4096], cgroups_after[4096];
  read_all("/proc/self/cgroup", cgroups_before, sizeof cgroups_before);
  if (write_proc("oom_score_adj", "400") < 0) rt_die("oom_score_adj");
  /* Needs CAP_AUDIT_CONTROL unless loginuid is still unset (-1). */
  if (write_proc("loginuid", "3") < 0) rt_die("loginuid");
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) rt_die("PR_SET_CHILD_SUBREAPER");
  if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) < 0) rt_die("PR_SET_THP_DISABLE");
  if (membarrier(MB_CMD_REGISTER_PRIVATE_EXPEDITED) < 0) rt_die("membarrier register private expedited");
  if (membarrier(MB_CMD_REGISTER_GLOBAL_EXPEDITED) < 0) rt_die("membarrier register global expedited");
  long regs_before = membarrier(MB_CMD_GET_REGISTRATIONS);
  if (regs_before < 0) rt_die("membarrier get registrations");
  printf("oom_score_adj %ld\n", read_proc_long("oom_score_adj"));
  printf("loginuid %ld\n", read_proc_long("loginuid"));
  printf("membarrier %ld\n", regs_before);

  rt_ready();
  rt_wait_go(argv[1]);

  long adj = read_proc_long("oom_score_adj");
  RT_CHECK(adj == 400, "oom_score_adj is %ld after the restore, 400 before", adj);
  long uid = read_proc_long("loginuid");
  RT_CHECK(uid == 3, "loginuid is %ld after the restore, 3 before", uid);
  int subreaper = -1;
  prctl(PR_GET_CHILD_SUBREAPER, &subreaper, 0, 0, 0);
  RT_CHECK(subreaper == 1, "PR_GET_CHILD_SUBREAPER is %d after the restore, 1 before", subreaper);
  long thp_disabled = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
  RT_CHECK(thp_disabled == 1, "PR_GET_THP_DISABLE is %ld after the restore, 1 before", thp_disabled);
  long regs_after = membarrier(MB_CMD_GET_REGISTRATIONS);
  RT_CHECK(regs_after == regs_before, "membarrier registrations are 0x%lx after the restore, 0x%lx before", regs_after,
           regs_before);
  RT_CHECK(membarrier(MB_CMD_PRIVATE_EXPEDITED) == 0, "MEMBARRIER_CMD_PRIVATE_EXPEDITED fails after the restore: %s",
           strerror(errno));
  read_all("/proc/self/cgroup", cgroups_after, sizeof cgroups_after);
  RT_CHECK(strcmp(cgroups_before, cgroups_after) == 0, "/proc/self/cgroup after the restore:\n%s\nbefore:\n%s",
           cgroups_after, cgroups_before);
  return rt_finish();
}
