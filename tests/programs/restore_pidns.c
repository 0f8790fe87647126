/* Restore test for --pidns: after the go file appears, appends one line
 *   "pid P getpid G ppid Q ns NS proc_self S"
 * to WORKDIR/report.txt (the pid it had before the dump, getpid() and
 * getppid() asked of the kernel now, its pid namespace, and what
 * /proc/self names), checks that getpid() is still the pid it had and that
 * /proc/self agrees (its /proc is its own namespace's), then by MODE:
 *   exit:N    exits with status N
 *   signal:N  dies of signal N
 *   run       appends "tick N" lines every 20 ms, forever
 *   usage: restore_pidns GOFILE WORKDIR MODE */
#include "rt_prog.h"

#include <fcntl.h>
#include <sys/syscall.h>

int main(int argc, char **argv) {
  rt_start(argc, argv, 4);
  pid_t pid = getpid();
  printf("pid %d\n", pid);
  rt_ready();
  rt_wait_go(argv[1]);

  rt_report_to(argv[2]);
  pid_t now = (pid_t)syscall(SYS_getpid);
  char ns[64] = "", self[64] = "";
  if (readlink("/proc/self/ns/pid", ns, sizeof ns - 1) < 0) rt_fail("readlink /proc/self/ns/pid: %s", strerror(errno));
  if (readlink("/proc/self", self, sizeof self - 1) < 0) rt_fail("readlink /proc/self: %s", strerror(errno));
  fprintf(stderr, "pid %d getpid %d ppid %d ns %s proc_self %s\n", pid, now, (int)syscall(SYS_getppid), ns, self);
  RT_CHECK(now == pid, "getpid() is %d, was %d", now, pid);
  RT_CHECK(atoi(self) == pid, "/proc/self is %s, getpid() %d", self, pid);
  rt_end_as(argv[3], rt_finish());
}
