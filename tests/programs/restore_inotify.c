/* Restore test: inotify (issue 13). Fd 40 watches WORKDIR/a (wd 1, modify),
 * WORKDIR/b (wd 2, removed again: a gap), WORKDIR/c (wd 3, attrib and
 * IN_ONESHOT), the directory WORKDIR/d (wd 4, create and delete) and the
 * symlink WORKDIR/link itself (wd 5, IN_DONT_FOLLOW, attrib). After the
 * restore the watches have the same numbers and masks, nothing is queued
 * (no trace of how the gap was made), events on the watched files arrive
 * with their wds, and a new watch gets wd 6 as it would have.
 *   usage: restore_inotify GOFILE WORKDIR */
#include "rt_prog.h"

#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#define FD_IN 40

static char dir[512];

static const char *at(const char *name) {
  static char buf[4][600];
  static int i;
  i = (i + 1) % 4;
  snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
  return buf[i];
}

static void touch(const char *name) {
  int fd = open(at(name), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) rt_die("create %s", name);
  close(fd);
}

static int add(const char *name, uint32_t mask) {
  int wd = inotify_add_watch(FD_IN, at(name), mask);
  if (wd < 0) rt_die("inotify_add_watch %s", name);
  return wd;
}

/* The next event (waiting up to 2 s): its wd and mask, the name in name. */
static int next_event(uint32_t *mask, char *name, size_t len) {
  static char buf[4096] __attribute__((aligned(8)));
  static ssize_t have, off;
  if (off >= have) {
    struct pollfd p = {.fd = FD_IN, .events = POLLIN};
    if (poll(&p, 1, 2000) != 1) return -1;
    have = read(FD_IN, buf, sizeof buf);
    off = 0;
    if (have <= 0) return -1;
  }
  struct inotify_event *e = (struct inotify_event *)(buf + off);
  off += sizeof *e + e->len;
  *mask = e->mask;
  snprintf(name, len, "%s", e->len ? e->name : "");
  return e->wd;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  snprintf(dir, sizeof dir, "%s", argv[2]);
  touch("a");
  touch("b");
  touch("c");
  if (mkdir(at("d"), 0755) != 0) rt_die("mkdir");
  if (symlink("a", at("link")) != 0) rt_die("symlink");
  int fd = inotify_init1(IN_NONBLOCK);
  if (fd < 0 || dup2(fd, FD_IN) < 0) rt_die("inotify_init1");
  close(fd);
  int wa = add("a", IN_MODIFY);
  int wb = add("b", IN_MODIFY);
  int wc = add("c", IN_ATTRIB | IN_ONESHOT);
  int wdir = add("d", IN_CREATE | IN_DELETE);
  int wlink = add("link", IN_ATTRIB | IN_DONT_FOLLOW);
  if (wa != 1 || wb != 2 || wc != 3 || wdir != 4 || wlink != 5) rt_die("unexpected wds %d %d %d %d %d", wa, wb, wc, wdir, wlink);
  if (inotify_rm_watch(FD_IN, wb) != 0) rt_die("inotify_rm_watch");
  char drain[4096];
  while (read(FD_IN, drain, sizeof drain) > 0) {
  }
  rt_ready();
  rt_wait_go(argv[1]);

  RT_CHECK(fcntl(FD_IN, F_GETFL) & O_NONBLOCK, "O_NONBLOCK lost");
  RT_CHECK(read(FD_IN, drain, sizeof drain) < 0 && errno == EAGAIN, "events queued after the restore");
  uint32_t mask;
  char name[256];
  int fdw = open(at("a"), O_WRONLY | O_APPEND);
  RT_CHECK(fdw >= 0 && write(fdw, "x", 1) == 1, "write a");
  close(fdw);
  int wd = next_event(&mask, name, sizeof name);
  RT_CHECK(wd == 1 && (mask & IN_MODIFY), "write to a: wd %d mask %#x, expected wd 1 IN_MODIFY", wd, mask);
  /* b is not watched any more: nothing. */
  fdw = open(at("b"), O_WRONLY | O_APPEND);
  RT_CHECK(fdw >= 0 && write(fdw, "x", 1) == 1, "write b");
  close(fdw);
  chmod(at("c"), 0600);
  wd = next_event(&mask, name, sizeof name);
  RT_CHECK(wd == 3 && (mask & IN_ATTRIB), "chmod c: wd %d mask %#x, expected wd 3 IN_ATTRIB", wd, mask);
  /* IN_ONESHOT: the watch is gone after its event (IN_IGNORED follows). */
  wd = next_event(&mask, name, sizeof name);
  RT_CHECK(wd == 3 && (mask & IN_IGNORED), "c's one-shot watch: wd %d mask %#x, expected wd 3 IN_IGNORED", wd, mask);
  touch("d/new");
  wd = next_event(&mask, name, sizeof name);
  RT_CHECK(wd == 4 && (mask & IN_CREATE) && !strcmp(name, "new"), "create d/new: wd %d mask %#x name %s", wd, mask,
           name);
  /* The symlink itself, not its target. */
  struct timespec times[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
  utimensat(AT_FDCWD, at("link"), times, AT_SYMLINK_NOFOLLOW);
  wd = next_event(&mask, name, sizeof name);
  RT_CHECK(wd == 5 && (mask & IN_ATTRIB), "touch link: wd %d mask %#x, expected wd 5 IN_ATTRIB", wd, mask);
  touch("e");
  int we = add("e", IN_MODIFY);
  RT_CHECK(we == 6, "a new watch got wd %d, expected 6", we);
  return rt_finish();
}
