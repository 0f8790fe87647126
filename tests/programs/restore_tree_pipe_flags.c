/* Restore test: status flags per open file of a pipe shared by a tree
 * (issue 17). The parent makes a pipe and forks; the child reopens the
 * read end through /proc/self/fd with O_NONBLOCK (its own open file) and
 * keeps the inherited one too. After restore the child's reopened end is
 * non-blocking and its inherited end and the parent's are blocking; the
 * parent's bytes still reach the child through both.
 *   usage: restore_tree_pipe_flags GOFILE WORKDIR */
#include "rt_prog.h"

#include <fcntl.h>
#include <sys/wait.h>

static int nonblocking(int fd) { return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  int p[2], report[2];
  if (pipe(p) < 0 || pipe(report) < 0) rt_die("pipe");
  pid_t child = fork();
  if (child < 0) rt_die("fork");
  if (child == 0) {
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", p[0]);
    int own = open(self, O_RDONLY | O_NONBLOCK);
    if (own < 0) _exit(2);
    if (write(report[1], "r", 1) != 1) _exit(3);
    /* Wait for the parent's go byte (after the restore). */
    char c;
    if (read(p[0], &c, 1) != 1) _exit(4);
    char verdict = !nonblocking(own) ? 'o' : nonblocking(p[0]) ? 'i' : 'k';
    char more;
    if (verdict == 'k' && read(own, &more, 1) != 1) verdict = 'd';
    if (write(report[1], &verdict, 1) != 1) _exit(5);
    _exit(0);
  }
  char c;
  if (read(report[0], &c, 1) != 1 || c != 'r') rt_die("child set-up");
  rt_ready();
  rt_wait_go(argv[1]);
  RT_CHECK(!nonblocking(p[1]) && !nonblocking(p[0]), "the parent's pipe ends became non-blocking");
  if (write(p[1], "gx", 2) != 2) rt_die("write");
  char verdict = 0;
  RT_CHECK(read(report[0], &verdict, 1) == 1, "no verdict from the child");
  RT_CHECK(verdict == 'k', "child: %s",
           verdict == 'o'   ? "its reopened read end lost O_NONBLOCK"
           : verdict == 'i' ? "its inherited read end became non-blocking"
           : verdict == 'd' ? "the second byte did not arrive through its own open file"
                            : "no verdict");
  int st = 0;
  RT_CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
  return rt_finish();
}
