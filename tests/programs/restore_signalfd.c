/* Restore test: signalfds (issue 13). SIGUSR1, SIGUSR2 and SIGRTMIN+3 are
 * blocked; fd 40 is a nonblocking signalfd for SIGUSR1 and SIGUSR2, fd 41
 * a blocking one for SIGRTMIN+3 only. SIGUSR1 is pending at the dump (the
 * process's state, not the fd's). After the restore: fd 40 reads the
 * pending SIGUSR1, then a SIGUSR2 sent after the restore; fd 41 reads a
 * queued SIGRTMIN+3 with its value, and the masks are as they were.
 *   usage: restore_signalfd GOFILE WORKDIR */
#include "rt_prog.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/signalfd.h>

#define FD_USR 40
#define FD_RT 41

static const char *sigmask_of(int fd) {
  static char line[128];
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  FILE *f = fopen(path, "r");
  if (!f) return "";
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "sigmask:", 8)) {
      fclose(f);
      char *v = line + 8;
      while (*v == ' ' || *v == '\t') v++;
      v[strcspn(v, "\n")] = 0;
      return v;
    }
  fclose(f);
  return "";
}

static int read_signo(int fd, int *value) {
  struct signalfd_siginfo si;
  if (read(fd, &si, sizeof si) != sizeof si) return -1;
  if (value) *value = si.ssi_int;
  return (int)si.ssi_signo;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  sigset_t usr, rt, all;
  sigemptyset(&usr);
  sigaddset(&usr, SIGUSR1);
  sigaddset(&usr, SIGUSR2);
  sigemptyset(&rt);
  sigaddset(&rt, SIGRTMIN + 3);
  sigemptyset(&all);
  sigaddset(&all, SIGUSR1);
  sigaddset(&all, SIGUSR2);
  sigaddset(&all, SIGRTMIN + 3);
  if (sigprocmask(SIG_BLOCK, &all, NULL) != 0) rt_die("sigprocmask");
  rt_place(signalfd(-1, &usr, SFD_NONBLOCK), FD_USR);
  rt_place(signalfd(-1, &rt, 0), FD_RT);
  if (fcntl(FD_RT, F_SETFD, FD_CLOEXEC) != 0) rt_die("F_SETFD");
  char usr_mask[32], rt_mask[32];
  snprintf(usr_mask, sizeof usr_mask, "%s", sigmask_of(FD_USR));
  snprintf(rt_mask, sizeof rt_mask, "%s", sigmask_of(FD_RT));
  kill(getpid(), SIGUSR1);
  rt_ready();
  rt_wait_go(argv[1]);

  RT_CHECK(!strcmp(sigmask_of(FD_USR), usr_mask), "fd 40: sigmask %s, expected %s", sigmask_of(FD_USR), usr_mask);
  RT_CHECK(!strcmp(sigmask_of(FD_RT), rt_mask), "fd 41: sigmask %s, expected %s", sigmask_of(FD_RT), rt_mask);
  RT_CHECK(fcntl(FD_USR, F_GETFL) & O_NONBLOCK, "fd 40: O_NONBLOCK lost");
  RT_CHECK(!(fcntl(FD_RT, F_GETFL) & O_NONBLOCK), "fd 41: O_NONBLOCK appeared");
  RT_CHECK(fcntl(FD_RT, F_GETFD) == FD_CLOEXEC, "fd 41: FD_CLOEXEC lost");
  int got = read_signo(FD_USR, NULL);
  RT_CHECK(got == SIGUSR1, "fd 40: read signal %d, expected the pending SIGUSR1", got);
  RT_CHECK(read_signo(FD_USR, NULL) < 0 && errno == EAGAIN, "fd 40: more than the pending signal");
  kill(getpid(), SIGUSR2);
  got = read_signo(FD_USR, NULL);
  RT_CHECK(got == SIGUSR2, "fd 40: read signal %d, expected SIGUSR2 sent after the restore", got);
  union sigval sv = {.sival_int = 4242};
  sigqueue(getpid(), SIGRTMIN + 3, sv);
  int value = 0;
  got = read_signo(FD_RT, &value);
  RT_CHECK(got == SIGRTMIN + 3 && value == 4242, "fd 41: read signal %d value %d, expected %d value 4242", got, value,
           SIGRTMIN + 3);
  return rt_finish();
}
