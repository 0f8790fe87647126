/* Restore test: bytes buffered in FIFOs and pipes. A FIFO holding "hello"
 * with two fds on it (a reader and a writer: two open files, one pipe);
 * a FIFO and an anonymous pipe each holding more bytes than the default
 * 64 KiB capacity would take, with their capacity raised. After the
 * restore every byte comes back exactly once and the capacities are kept.
 * With "huge": only a pipe of 2 MiB capacity holding 1.5 MB (the test
 * raises fs.pipe-max-size for the dump and lowers it for the restore).
 *   usage: restore_fifo GOFILE WORKDIR [huge] */
#include "rt_prog.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>

#define FD_SMALL_R 40
#define FD_SMALL_W 41
#define FD_BIG_R 42
#define FD_BIG_W 43
#define FD_PIPE_R 44
#define FD_PIPE_W 45

#define BIG_CAPACITY (256 * 1024)
#define BIG_BYTES 150000 /* more than the default 65536 */

static uint8_t pattern(size_t i, unsigned seed) { return (uint8_t)(i * 7 + i / 251 + seed); }

static void fill_big(int fd, unsigned seed) {
  static uint8_t buf[BIG_BYTES];
  for (size_t i = 0; i < BIG_BYTES; i++) buf[i] = pattern(i, seed);
  if (fcntl(fd, F_SETPIPE_SZ, BIG_CAPACITY) < 0) rt_die("F_SETPIPE_SZ");
  if (write(fd, buf, BIG_BYTES) != BIG_BYTES) rt_die("write %d bytes", BIG_BYTES);
}

/* Reads everything buffered (the fd is non-blocking). */
static size_t drain(int fd, uint8_t *buf, size_t cap) {
  size_t got = 0;
  for (;;) {
    ssize_t n = read(fd, buf + got, cap - got);
    if (n <= 0) break;
    got += (size_t)n;
    if (got == cap) break;
  }
  return got;
}

static void check_big(const char *what, int rfd, int wfd, unsigned seed) {
  int cap = fcntl(wfd, F_GETPIPE_SZ);
  RT_CHECK(cap == BIG_CAPACITY, "%s: capacity %d, expected %d", what, cap, BIG_CAPACITY);
  static uint8_t buf[2 * BIG_BYTES];
  fcntl(rfd, F_SETFL, O_NONBLOCK);
  size_t got = drain(rfd, buf, sizeof buf);
  RT_CHECK(got == BIG_BYTES, "%s: %zu bytes buffered, expected %d", what, got, BIG_BYTES);
  for (size_t i = 0; i < got && i < BIG_BYTES; i++)
    if (buf[i] != pattern(i, seed)) {
      rt_fail("%s: byte %zu differs", what, i);
      break;
    }
}

#define HUGE_CAPACITY (2 * 1024 * 1024)
#define HUGE_BYTES 1500000

static int huge_pipe(const char *gofile) {
  int p[2];
  if (pipe(p) < 0) rt_die("pipe");
  rt_place(p[0], FD_PIPE_R);
  rt_place(p[1], FD_PIPE_W);
  if (fcntl(FD_PIPE_W, F_SETPIPE_SZ, HUGE_CAPACITY) < 0) rt_die("F_SETPIPE_SZ %d", HUGE_CAPACITY);
  static uint8_t buf[HUGE_BYTES];
  memset(buf, 0x5a, sizeof buf);
  if (write(FD_PIPE_W, buf, HUGE_BYTES) != HUGE_BYTES) rt_die("write %d bytes", HUGE_BYTES);
  rt_ready();
  rt_wait_go(gofile);
  uint8_t *back = malloc(HUGE_BYTES + 1);
  fcntl(FD_PIPE_R, F_SETFL, O_NONBLOCK);
  size_t got = back ? drain(FD_PIPE_R, back, HUGE_BYTES + 1) : 0;
  RT_CHECK(got == HUGE_BYTES, "pipe: %zu bytes buffered, expected %d", got, HUGE_BYTES);
  return rt_finish();
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  if (argc > 3 && strcmp(argv[3], "huge") == 0) return huge_pipe(argv[1]);
  char small[4096], big[4096];
  snprintf(small, sizeof small, "%s/small.fifo", argv[2]);
  snprintf(big, sizeof big, "%s/big.fifo", argv[2]);
  if (mkfifo(small, 0600) < 0 || mkfifo(big, 0600) < 0) rt_die("mkfifo");

  rt_place(open(small, O_RDONLY | O_NONBLOCK), FD_SMALL_R);
  rt_place(open(small, O_WRONLY), FD_SMALL_W);
  if (write(FD_SMALL_W, "hello", 5) != 5) rt_die("write hello");

  rt_place(open(big, O_RDONLY | O_NONBLOCK), FD_BIG_R);
  rt_place(open(big, O_WRONLY), FD_BIG_W);
  fill_big(FD_BIG_W, 1);

  int p[2];
  if (pipe(p) < 0) rt_die("pipe");
  rt_place(p[0], FD_PIPE_R);
  rt_place(p[1], FD_PIPE_W);
  fill_big(FD_PIPE_W, 2);

  rt_ready();
  rt_wait_go(argv[1]);

  uint8_t buf[64];
  size_t got = drain(FD_SMALL_R, buf, sizeof buf);
  RT_CHECK(got == 5 && memcmp(buf, "hello", 5) == 0, "FIFO with two fds: read back \"%.*s\" (%zu bytes), expected \"hello\"",
           (int)got, buf, got);
  check_big("FIFO over the default capacity", FD_BIG_R, FD_BIG_W, 1);
  check_big("pipe over the default capacity", FD_PIPE_R, FD_PIPE_W, 2);
  return rt_finish();
}
