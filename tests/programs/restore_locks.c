/* Restore test: file locks and leases (issue 17). WORKDIR/flock-ex held
 * with flock(LOCK_EX), WORKDIR/flock-sh with flock(LOCK_SH),
 * WORKDIR/posix with a POSIX write lock on bytes 0-9 and a read lock from
 * 20 to EOF, WORKDIR/ofd with an OFD write lock on bytes 5-14, and
 * WORKDIR/lease with a read lease. After the restore every fd's fdinfo
 * "lock:" lines read as before, and a child finds each lock held against
 * it. With "write-lease", WORKDIR/write-lease (opened O_RDWR, the only
 * open file of it) holds a write lease as well, held again after the
 * restore.   usage: restore_locks GOFILE WORKDIR [write-lease] */
#include "rt_prog.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>

#define MAXFILES 6
#define WRITE_LEASE 5

static int nfiles = 5;
static const char *names[MAXFILES] = {"flock-ex", "flock-sh", "posix", "ofd", "lease", "write-lease"};
static char paths[MAXFILES][4096];
static int fds[MAXFILES];

/* Every "lock:" line of fd's fdinfo, with the leading "lock:\tN: " kept. */
static void lock_lines(int fd, char *out, size_t size) {
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  FILE *f = fopen(path, "r");
  out[0] = 0;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "lock:", 5) == 0) strncat(out, line, size - strlen(out) - 1);
  if (f) fclose(f);
}

static int set_lock(int fd, int cmd, short type, off_t start, off_t len) {
  struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
  return fcntl(fd, cmd, &fl);
}

/* In a child (another process, another open file): 0 if every lock and
 * the lease are held against it, else the number of the first that is not. */
static int child_finds_locks_held(void) {
  pid_t c = fork();
  if (c == 0) {
    int a = open(paths[0], O_RDWR), b = open(paths[1], O_RDWR), p = open(paths[2], O_RDWR), o = open(paths[3], O_RDWR);
    if (a < 0 || b < 0 || p < 0 || o < 0) _exit(10);
    if (flock(a, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK) _exit(1);
    if (flock(b, LOCK_SH | LOCK_NB) != 0) _exit(2);                      /* shared with ours */
    if (flock(b, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK) _exit(3);
    if (set_lock(p, F_SETLK, F_RDLCK, 0, 1) == 0) _exit(4);                /* under the write lock */
    if (set_lock(p, F_SETLK, F_WRLCK, 30, 1) == 0) _exit(5);               /* under the read lock */
    if (set_lock(p, F_SETLK, F_WRLCK, 12, 2) != 0) _exit(6);               /* between them: free */
    if (set_lock(o, F_OFD_SETLK, F_RDLCK, 14, 1) == 0) _exit(7);
    if (set_lock(o, F_OFD_SETLK, F_RDLCK, 15, 1) != 0) _exit(8);
    /* Opening the leased file for writing would break the lease (and
     * block): its holder being notified is the lease; F_GETLEASE is ours. */
    _exit(0);
  }
  int status = 0;
  if (c < 0 || waitpid(c, &status, 0) != c) return 100;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 101;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  if (argc > 3 && strcmp(argv[3], "write-lease") == 0) nfiles = MAXFILES;
  for (int i = 0; i < nfiles; i++) {
    snprintf(paths[i], sizeof paths[i], "%s/%s", argv[2], names[i]);
    int w = open(paths[i], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (w < 0 || write(w, "0123456789abcdefghijklmnopqrstuvwxyz", 36) != 36) rt_die("create %s", paths[i]);
    close(w);
    fds[i] = open(paths[i], i == 4 ? O_RDONLY : O_RDWR);
    if (fds[i] < 0) rt_die("open %s", paths[i]);
  }
  if (flock(fds[0], LOCK_EX) < 0) rt_die("flock LOCK_EX");
  if (flock(fds[1], LOCK_SH) < 0) rt_die("flock LOCK_SH");
  if (set_lock(fds[2], F_SETLK, F_WRLCK, 0, 10) < 0 || set_lock(fds[2], F_SETLK, F_RDLCK, 20, 0) < 0) rt_die("POSIX locks");
  if (set_lock(fds[3], F_OFD_SETLK, F_WRLCK, 5, 10) < 0) rt_die("OFD lock");
  if (fcntl(fds[4], F_SETLEASE, F_RDLCK) < 0) rt_die("F_SETLEASE");
  if (nfiles > WRITE_LEASE && fcntl(fds[WRITE_LEASE], F_SETLEASE, F_WRLCK) < 0) rt_die("F_SETLEASE F_WRLCK");
  static char before[MAXFILES][2048], after[MAXFILES][2048];
  for (int i = 0; i < nfiles; i++) {
    lock_lines(fds[i], before[i], sizeof before[i]);
    if (!before[i][0]) rt_die("no lock: line for %s", names[i]);
  }
  int held = child_finds_locks_held();
  if (held) rt_die("a child does not find the locks held before the dump (%d)", held);

  rt_ready();
  rt_wait_go(argv[1]);

  for (int i = 0; i < nfiles; i++) {
    lock_lines(fds[i], after[i], sizeof after[i]);
    RT_CHECK(strcmp(before[i], after[i]) == 0, "%s: fdinfo lock lines after the restore:\n%sbefore:\n%s", names[i],
             after[i], before[i]);
  }
  RT_CHECK(fcntl(fds[4], F_GETLEASE) == F_RDLCK, "the read lease is %d after the restore", fcntl(fds[4], F_GETLEASE));
  if (nfiles > WRITE_LEASE)
    RT_CHECK(fcntl(fds[WRITE_LEASE], F_GETLEASE) == F_WRLCK, "the write lease is %d after the restore",
             fcntl(fds[WRITE_LEASE], F_GETLEASE));
  held = child_finds_locks_held();
  RT_CHECK(held == 0, "a child does not find lock %d held after the restore", held);
  return rt_finish();
}
