/* Restore test: unlinked files are the same files after restore (issue 17,
 * "Open files and fds").
 * - An unlinked file owned by 1234:1235 with a set modification time and
 *   holes (1 MiB, data only at 512 KiB): after restore it has the same
 *   owner, mtime, bytes, and its holes are still holes.
 * - A memfd given to 1234:1235: the same owner.
 * - A file opened, hard-linked beside itself, unlinked under its first
 *   name and opened again through the second: both fds are one inode, and
 *   a write through one is read through the other.
 * - A file made with open(WORKDIR, O_TMPFILE | O_RDWR | O_APPEND): the same
 *   bytes, position and flags (F_GETFL shows O_TMPFILE), and it can still
 *   be linked into the folder (only an O_TMPFILE file can).
 * - An unlinked file of 512 KiB of data with holes punched into it
 *   (fallocate PUNCH_HOLE | KEEP_SIZE), one in the middle and one at the
 *   end: after restore SEEK_DATA/SEEK_HOLE give the same layout and every
 *   byte is the same.
 * With argv[3] == "elsewhere", the hard link is made in a subfolder instead
 * (the dump must refuse: the other name is not where it can be found).
 *   usage: restore_unlinked_files GOFILE WORKDIR [elsewhere] */
#include "rt_prog.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define SIZE (1 << 20)
#define DATA_AT (512 << 10)
#define UID 1234
#define GID 1235
static const struct timespec kMtime = {1000000000, 123456789};

#define PUNCHED_SIZE (512 << 10)
#define MAX_RUNS 16

/* The file's data runs as SEEK_DATA/SEEK_HOLE see them: starts and ends
 * alternately in runs[], their count returned. */
static int data_runs(int fd, off_t size, off_t *runs) {
  int n = 0;
  off_t at = 0;
  while (at < size && n + 2 <= MAX_RUNS) {
    off_t data = lseek(fd, at, SEEK_DATA);
    if (data < 0) break;
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0) hole = size;
    runs[n++] = data;
    runs[n++] = hole;
    at = hole;
  }
  return n;
}

/* The byte at `off` of the punched file before its holes were punched. */
static char punched_byte(off_t off) { return (char)('a' + (off * 7 + off / 4096) % 26); }

static void check_owner(const char *what, int fd) {
  struct stat st;
  if (fstat(fd, &st) < 0) {
    rt_fail("%s: fstat: %s", what, strerror(errno));
    return;
  }
  RT_CHECK(st.st_uid == UID && st.st_gid == GID, "%s: owner %u:%u, was %u:%u", what, st.st_uid, st.st_gid, UID, GID);
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  int elsewhere = argc > 3 && strcmp(argv[3], "elsewhere") == 0;
  char sparse_path[512], first[512], second[512], sub[512];
  snprintf(sparse_path, sizeof sparse_path, "%s/sparse", argv[2]);
  snprintf(first, sizeof first, "%s/first-name", argv[2]);
  snprintf(sub, sizeof sub, "%s/sub", argv[2]);
  snprintf(second, sizeof second, "%s/%ssecond-name", argv[2], elsewhere ? "sub/" : "");

  int sparse = open(sparse_path, O_RDWR | O_CREAT | O_TRUNC, 0640);
  if (sparse < 0 || ftruncate(sparse, SIZE) < 0) rt_die("create %s", sparse_path);
  char block[4096];
  memset(block, 'd', sizeof block);
  if (pwrite(sparse, block, sizeof block, DATA_AT) != (ssize_t)sizeof block) rt_die("pwrite");
  if (fchown(sparse, UID, GID) < 0) rt_die("fchown");
  struct timespec times[2] = {{0, UTIME_OMIT}, kMtime};
  if (futimens(sparse, times) < 0 || unlink(sparse_path) < 0) rt_die("futimens/unlink");
  if (lseek(sparse, 0, SEEK_DATA) != DATA_AT) rt_die("this filesystem does not keep holes");

  int memfd = (int)syscall(SYS_memfd_create, "owned", 0);
  if (memfd < 0 || write(memfd, "m", 1) != 1 || fchown(memfd, UID, GID) < 0) rt_die("memfd");

  if (elsewhere && mkdir(sub, 0700) < 0) rt_die("mkdir");
  int linked = open(first, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (linked < 0 || write(linked, "hello", 5) != 5) rt_die("create %s", first);
  if (link(first, second) < 0 || unlink(first) < 0) rt_die("link/unlink");
  int again = open(second, O_RDWR);
  if (again < 0) rt_die("open %s", second);

  int tmpfile = open(argv[2], O_TMPFILE | O_RDWR | O_APPEND, 0640);
  if (tmpfile < 0 || write(tmpfile, "tmpfile-bytes", 13) != 13 || lseek(tmpfile, 3, SEEK_SET) != 3)
    rt_die("O_TMPFILE in %s", argv[2]);
  int tmpfile_flags = fcntl(tmpfile, F_GETFL);

  char punched_path[512];
  snprintf(punched_path, sizeof punched_path, "%s/punched", argv[2]);
  int punched = open(punched_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  static char pattern[PUNCHED_SIZE];
  for (off_t i = 0; i < PUNCHED_SIZE; i++) pattern[i] = punched_byte(i);
  if (punched < 0 || pwrite(punched, pattern, PUNCHED_SIZE, 0) != PUNCHED_SIZE || fsync(punched) < 0)
    rt_die("create %s", punched_path);
  if (fallocate(punched, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 128 << 10, 64 << 10) < 0 ||
      fallocate(punched, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 448 << 10, 64 << 10) < 0 || unlink(punched_path) < 0)
    rt_die("punch holes into %s", punched_path);
  off_t runs_before[MAX_RUNS], runs_after[MAX_RUNS];
  int nruns_before = data_runs(punched, PUNCHED_SIZE, runs_before);
  if (nruns_before != 4 || runs_before[1] != 128 << 10 || runs_before[2] != 192 << 10 || runs_before[3] != 448 << 10)
    rt_die("this filesystem does not punch holes as asked (%d runs)", nruns_before / 2);
  for (off_t i = 128 << 10; i < 192 << 10; i++) pattern[i] = 0;
  for (off_t i = 448 << 10; i < PUNCHED_SIZE; i++) pattern[i] = 0;

  rt_ready();
  rt_wait_go(argv[1]);

  struct stat st;
  if (fstat(sparse, &st) < 0) rt_die("fstat");
  check_owner("unlinked file", sparse);
  RT_CHECK(st.st_size == SIZE, "unlinked file size %lld, was %d", (long long)st.st_size, SIZE);
  RT_CHECK(st.st_mtim.tv_sec == kMtime.tv_sec && st.st_mtim.tv_nsec == kMtime.tv_nsec,
           "unlinked file mtime %lld.%09ld, was %lld.%09ld", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
           (long long)kMtime.tv_sec, kMtime.tv_nsec);
  off_t data = lseek(sparse, 0, SEEK_DATA);
  RT_CHECK(data == DATA_AT, "unlinked file: first data at %lld, was %d (its holes were filled)", (long long)data, DATA_AT);
  RT_CHECK(st.st_blocks * 512 < 64 * 1024, "unlinked file takes %lld bytes on disk: not sparse", (long long)st.st_blocks * 512);
  char back[4096];
  RT_CHECK(pread(sparse, back, sizeof back, DATA_AT) == (ssize_t)sizeof back && memcmp(back, block, sizeof back) == 0,
           "unlinked file lost its data");
  check_owner("memfd", memfd);

  struct stat a, b;
  if (fstat(linked, &a) < 0 || fstat(again, &b) < 0) rt_die("fstat linked");
  RT_CHECK(a.st_dev == b.st_dev && a.st_ino == b.st_ino, "the unlinked name and its hard link are two files now");
  if (pwrite(linked, "J", 1, 0) != 1) rt_die("pwrite linked");
  char c = 0;
  RT_CHECK(pread(again, &c, 1, 0) == 1 && c == 'J', "a write through the unlinked name is not read through the link");
  unlink(second);

  int flags = fcntl(tmpfile, F_GETFL);
  RT_CHECK(flags == tmpfile_flags, "O_TMPFILE file: flags 0%o, were 0%o", flags, tmpfile_flags);
  off_t pos = lseek(tmpfile, 0, SEEK_CUR);
  RT_CHECK(pos == 3, "O_TMPFILE file: position %lld, was 3", (long long)pos);
  char tbuf[32] = "";
  RT_CHECK(pread(tmpfile, tbuf, sizeof tbuf, 0) == 13 && memcmp(tbuf, "tmpfile-bytes", 13) == 0,
           "O_TMPFILE file: read '%s'", tbuf);
  char fdpath[64], named[512];
  snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", tmpfile);
  snprintf(named, sizeof named, "%s/tmpfile-linked", argv[2]);
  RT_CHECK(linkat(AT_FDCWD, fdpath, AT_FDCWD, named, AT_SYMLINK_FOLLOW) == 0, "O_TMPFILE file: linkat: %s",
           strerror(errno));
  unlink(named);

  if (fstat(punched, &st) < 0) rt_die("fstat punched");
  RT_CHECK(st.st_size == PUNCHED_SIZE, "punched file size %lld, was %d", (long long)st.st_size, PUNCHED_SIZE);
  int nruns_after = data_runs(punched, PUNCHED_SIZE, runs_after);
  int same_runs = nruns_after == nruns_before;
  for (int i = 0; same_runs && i < nruns_after; i++) same_runs = runs_after[i] == runs_before[i];
  RT_CHECK(same_runs, "punched file: %d data runs after the restore (first %lld-%lld, last ends at %lld), %d before (0-%lld, %lld-%lld)",
           nruns_after / 2, nruns_after ? (long long)runs_after[0] : -1LL, nruns_after ? (long long)runs_after[1] : -1LL,
           nruns_after ? (long long)runs_after[nruns_after - 1] : -1LL, nruns_before / 2, (long long)runs_before[1],
           (long long)runs_before[2], (long long)runs_before[3]);
  static char punched_back[PUNCHED_SIZE];
  RT_CHECK(pread(punched, punched_back, PUNCHED_SIZE, 0) == PUNCHED_SIZE && memcmp(punched_back, pattern, PUNCHED_SIZE) == 0,
           "punched file: its bytes differ after the restore");
  return rt_finish();
}
