/* A job-control shell in miniature for the terminal tests: run as the
 * session leader of a pty (forkpty's child), it starts COMMAND as a job
 * (its own process group, in the foreground) and waits for it as bash
 * does: when the job stops it takes the terminal back and appends
 * "stopped" to STATUSFILE, then waits for FGFILE to appear (the test's
 * `fg`), removes it and gives the job the terminal and SIGCONT. When the
 * job exits it appends "exit N" and exits with N.
 *   usage: tty_shell STATUSFILE FGFILE COMMAND [ARGS...] */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void note(const char *path, const char *line) {
  FILE *f = fopen(path, "a");
  if (f) {
    fprintf(f, "%s\n", line);
    fclose(f);
  }
}

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  signal(SIGTTOU, SIG_IGN);
  signal(SIGTTIN, SIG_IGN);
  signal(SIGTSTP, SIG_IGN);
  pid_t job = fork();
  if (job < 0) return 3;
  if (job == 0) {
    setpgid(0, 0);
    tcsetpgrp(0, getpid());
    signal(SIGTTOU, SIG_DFL);
    signal(SIGTTIN, SIG_DFL);
    signal(SIGTSTP, SIG_DFL);
    execv(argv[3], argv + 3);
    _exit(127);
  }
  setpgid(job, job);
  tcsetpgrp(0, job);
  for (;;) {
    int st = 0;
    if (waitpid(job, &st, WUNTRACED) < 0) {
      if (errno == EINTR) continue;
      return 4;
    }
    if (WIFSTOPPED(st)) {
      tcsetpgrp(0, getpgrp());
      note(argv[1], "stopped");
      while (access(argv[2], F_OK) != 0) {
        struct timespec ms = {0, 5000000};
        nanosleep(&ms, NULL);
      }
      unlink(argv[2]);
      tcsetpgrp(0, job);
      kill(-job, SIGCONT);
      continue;
    }
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    char line[32];
    snprintf(line, sizeof line, "exit %d", code);
    note(argv[1], line);
    return code;
  }
}
