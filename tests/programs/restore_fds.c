/* Restore test: file descriptors. A file at an offset, an O_APPEND file,
 * dup'ed fds sharing an offset, a close-on-exec fd, a pipe holding unread
 * bytes, an unlinked file with content, and stdin: a pipe into which the
 * test wrote bytes that nobody read before the dump.
 *   usage: restore_fds GOFILE WORKDIR */
#include "rt_prog.h"

#include <fcntl.h>
#include <sys/stat.h>

#define FD_OFFSET 20
#define FD_APPEND 21
#define FD_SHARED_A 22
#define FD_SHARED_B 23
#define FD_CLOEXEC_NO 24
#define FD_PIPE_R 25
#define FD_PIPE_W 26
#define FD_UNLINKED 27
#define FD_RDONLY 28
#define FD_DIR 29
#define FD_DEVZERO 32
#define FD_OPATH 33
#define FD_DEVNULL 34

static const char kText[] = "0123456789abcdefghijklmnopqrstuvwxyz";
static const char kPipeBytes[] = "bytes left in the pipe";
static const char kStdinBytes[] = "stdin-bytes-from-the-test";

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) rt_die("write %s", path);
  close(fd);
}

static long offset_of(int fd) { return (long)lseek(fd, 0, SEEK_CUR); }

static void expect_read(int fd, const char *want, const char *what) {
  char buf[256] = "";
  size_t n = strlen(want);
  ssize_t got = read(fd, buf, n);
  if (got != (ssize_t)n || memcmp(buf, want, n) != 0)
    rt_fail("%s: read %zd bytes \"%.*s\", expected \"%s\" (%s)", what, got, got > 0 ? (int)got : 0, buf, want,
            got < 0 ? strerror(errno) : "");
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  const char *dir = argv[2];
  char p_offset[4096], p_append[4096], p_shared[4096], p_unlinked[4096];
  snprintf(p_offset, sizeof p_offset, "%s/offset.txt", dir);
  snprintf(p_append, sizeof p_append, "%s/append.log", dir);
  snprintf(p_shared, sizeof p_shared, "%s/shared.txt", dir);
  snprintf(p_unlinked, sizeof p_unlinked, "%s/unlinked.bin", dir);

  write_file(p_offset, kText);
  rt_place(open(p_offset, O_RDWR), FD_OFFSET);
  lseek(FD_OFFSET, 10, SEEK_SET);

  write_file(p_append, "before\n");
  rt_place(open(p_append, O_WRONLY | O_APPEND), FD_APPEND);

  write_file(p_shared, kText);
  rt_place(open(p_shared, O_RDONLY), FD_SHARED_A);
  lseek(FD_SHARED_A, 5, SEEK_SET);
  if (dup2(FD_SHARED_A, FD_SHARED_B) < 0) rt_die("dup2");
  /* FD_SHARED_A is close-on-exec, its dup is not: the flag is per fd. */
  fcntl(FD_SHARED_A, F_SETFD, FD_CLOEXEC);

  rt_place(open(p_offset, O_RDONLY), FD_CLOEXEC_NO); /* no O_CLOEXEC */
  rt_place(open(p_offset, O_RDONLY | O_CLOEXEC), FD_RDONLY);
  /* dup2 clears FD_CLOEXEC: set it again on the placed fd. */
  fcntl(FD_RDONLY, F_SETFD, FD_CLOEXEC);

  int p[2];
  if (pipe(p) != 0) rt_die("pipe");
  rt_place(p[0], FD_PIPE_R);
  rt_place(p[1], FD_PIPE_W);
  if (write(FD_PIPE_W, kPipeBytes, strlen(kPipeBytes)) != (ssize_t)strlen(kPipeBytes)) rt_die("write pipe");

  /* Unlinked: 3 pages of a pattern after a header, offset 7. */
  int ufd = open(p_unlinked, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (ufd < 0) rt_die("open %s", p_unlinked);
  static char big[3 * 4096];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 7 + 3);
  if (write(ufd, "UNLINKED", 8) != 8 || write(ufd, big, sizeof big) != (ssize_t)sizeof big) rt_die("write unlinked");
  unlink(p_unlinked);
  rt_place(ufd, FD_UNLINKED);
  lseek(FD_UNLINKED, 7, SEEK_SET);

  rt_place(open(dir, O_RDONLY | O_DIRECTORY), FD_DIR);
  rt_place(open("/dev/zero", O_RDONLY), FD_DEVZERO);
  rt_place(open("/dev/null", O_WRONLY), FD_DEVNULL);
  rt_place(open(p_offset, O_PATH), FD_OPATH);

  rt_ready();
  rt_wait_go(argv[1]);

  /* File at an offset. */
  RT_CHECK(offset_of(FD_OFFSET) == 10, "offset.txt: offset %ld, expected 10", offset_of(FD_OFFSET));
  expect_read(FD_OFFSET, "abcde", "offset.txt");
  RT_CHECK((fcntl(FD_OFFSET, F_GETFL) & O_ACCMODE) == O_RDWR, "offset.txt: not O_RDWR");

  /* O_APPEND: writes go to the end. */
  int fl = fcntl(FD_APPEND, F_GETFL);
  RT_CHECK(fl >= 0 && (fl & O_APPEND), "append.log: O_APPEND lost (flags 0%o)", fl);
  RT_CHECK((fl & O_ACCMODE) == O_WRONLY, "append.log: access mode 0%o, expected O_WRONLY", fl & O_ACCMODE);
  if (write(FD_APPEND, "after\n", 6) != 6) rt_fail("append.log: write: %s", strerror(errno));
  char buf[256] = "";
  int rfd = open(p_append, O_RDONLY);
  ssize_t n = rfd >= 0 ? read(rfd, buf, sizeof buf - 1) : -1;
  if (rfd >= 0) close(rfd);
  buf[n > 0 ? n : 0] = 0;
  RT_CHECK(strcmp(buf, "before\nafter\n") == 0, "append.log holds \"%s\"", buf);

  /* dup'ed fds share one offset. */
  RT_CHECK(offset_of(FD_SHARED_A) == 5, "shared.txt: offset %ld, expected 5", offset_of(FD_SHARED_A));
  expect_read(FD_SHARED_B, "567", "shared.txt through the dup");
  RT_CHECK(offset_of(FD_SHARED_A) == 8, "shared.txt: offset %ld after reading 3 bytes through the dup, expected 8",
           offset_of(FD_SHARED_A));
  RT_CHECK(fcntl(FD_SHARED_A, F_GETFD) == FD_CLOEXEC, "fd %d: FD_CLOEXEC lost", FD_SHARED_A);
  RT_CHECK(fcntl(FD_SHARED_B, F_GETFD) == 0, "fd %d: FD_CLOEXEC set", FD_SHARED_B);

  /* Close-on-exec flags. */
  RT_CHECK(fcntl(FD_RDONLY, F_GETFD) == FD_CLOEXEC, "fd %d: FD_CLOEXEC lost", FD_RDONLY);
  RT_CHECK(fcntl(FD_CLOEXEC_NO, F_GETFD) == 0, "fd %d: FD_CLOEXEC set", FD_CLOEXEC_NO);
  RT_CHECK(offset_of(FD_CLOEXEC_NO) == 0, "fd %d: offset %ld", FD_CLOEXEC_NO, offset_of(FD_CLOEXEC_NO));
  RT_CHECK(fcntl(FD_OFFSET, F_GETFD) == 0, "fd %d: FD_CLOEXEC set", FD_OFFSET);

  /* The pipe: the unread bytes, then it still works both ways. */
  fcntl(FD_PIPE_R, F_SETFL, O_NONBLOCK);
  expect_read(FD_PIPE_R, kPipeBytes, "pipe");
  char c;
  RT_CHECK(read(FD_PIPE_R, &c, 1) < 0 && errno == EAGAIN, "pipe: more bytes than were written");
  if (write(FD_PIPE_W, "x", 1) != 1) rt_fail("pipe: write: %s", strerror(errno));
  expect_read(FD_PIPE_R, "x", "pipe after a new write");

  /* Unlinked file: content, offset, and still unlinked. */
  struct stat st;
  RT_CHECK(fstat(FD_UNLINKED, &st) == 0 && st.st_nlink == 0, "unlinked file: nlink %lu", (unsigned long)st.st_nlink);
  RT_CHECK(st.st_size == 8 + (off_t)sizeof big, "unlinked file: size %lld", (long long)st.st_size);
  RT_CHECK(offset_of(FD_UNLINKED) == 7, "unlinked file: offset %ld, expected 7", offset_of(FD_UNLINKED));
  static char back[sizeof big];
  RT_CHECK(pread(FD_UNLINKED, back, 8, 0) == 8 && memcmp(back, "UNLINKED", 8) == 0, "unlinked file: header");
  RT_CHECK(pread(FD_UNLINKED, back, sizeof big, 8) == (ssize_t)sizeof big && memcmp(back, big, sizeof big) == 0,
           "unlinked file: content differs");
  RT_CHECK(access(p_unlinked, F_OK) != 0, "%s exists again", p_unlinked);

  /* A directory, devices, an O_PATH fd. */
  struct stat dst;
  RT_CHECK(fstat(FD_DIR, &dst) == 0 && S_ISDIR(dst.st_mode), "fd %d is no longer a directory", FD_DIR);
  int at = openat(FD_DIR, "offset.txt", O_RDONLY);
  RT_CHECK(at >= 0, "openat(directory fd, offset.txt): %s", strerror(errno));
  if (at >= 0) close(at);
  char zeros[16] = {1};
  RT_CHECK(read(FD_DEVZERO, zeros, sizeof zeros) == sizeof zeros && zeros[0] == 0 && zeros[15] == 0,
           "/dev/zero does not read zeros");
  RT_CHECK(write(FD_DEVNULL, "x", 1) == 1, "/dev/null: write: %s", strerror(errno));
  int pf = fcntl(FD_OPATH, F_GETFL);
  RT_CHECK(pf >= 0 && (pf & O_PATH), "fd %d: O_PATH lost (flags 0%o)", FD_OPATH, pf);
  struct stat pst;
  RT_CHECK(fstat(FD_OPATH, &pst) == 0 && S_ISREG(pst.st_mode), "fd %d (O_PATH): fstat", FD_OPATH);

  /* stdin: the bytes the test wrote, then EOF (the writer is gone). */
  fcntl(0, F_SETFL, O_NONBLOCK);
  expect_read(0, kStdinBytes, "stdin");
  n = read(0, &c, 1);
  RT_CHECK(n == 0, "stdin: read after the bytes returned %zd (%s), expected EOF", n, n < 0 ? strerror(errno) : "");

  return rt_finish();
}
