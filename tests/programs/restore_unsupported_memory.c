/* Dump test: memory the dumper cannot save must make the dump refuse, not
 * write zeros. argv[3] picks the mapping: "secretmem" (memfd_secret) or
 * "past-eof" (three pages of a one-page file, unlinked: the last two
 * raise SIGBUS and cannot be read) or "aio" (an io_setup context, whose
 * ring is the mapping). "start" is the mapping's address. The program
 * just waits; it is never restored.
 *   usage: restore_unsupported_memory GOFILE WORKDIR secretmem|past-eof|aio */
#include "rt_prog.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define NR_memfd_secret 447

int main(int argc, char **argv) {
  rt_start(argc, argv, 4);
  uint8_t *p;
  size_t len;
  if (strcmp(argv[3], "secretmem") == 0) {
    int fd = (int)syscall(NR_memfd_secret, 0);
    if (fd < 0) {
      printf("skip memfd_secret: %s\n", strerror(errno));
      rt_ready();
      return 0;
    }
    len = 4096;
    if (ftruncate(fd, len) < 0) rt_die("ftruncate secretmem");
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd); /* only the mapping is left to refuse */
  } else if (strcmp(argv[3], "past-eof") == 0) {
    char path[4096];
    snprintf(path, sizeof path, "%s/short.dat", argv[2]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 4096) < 0) rt_die("create %s", path);
    p = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) rt_die("mmap %s", path);
    close(fd);
    unlink(path);
    memset(p, 0x5a, 4096); /* only the first page exists */
    printf("start %llx\n", (unsigned long long)(uintptr_t)p);
    rt_ready();
    rt_wait_go(argv[1]);
    return 0;
  } else if (strcmp(argv[3], "aio") == 0) {
    unsigned long ctx = 0; /* aio_context_t: the ring's address */
    if (syscall(SYS_io_setup, 8, &ctx) < 0) rt_die("io_setup");
    printf("start %llx\n", (unsigned long long)ctx);
    rt_ready();
    rt_wait_go(argv[1]);
    return 0;
  } else {
    rt_die("unknown mode %s", argv[3]);
  }
  if (p == MAP_FAILED) rt_die("mmap %s", argv[3]);
  memset(p, 0x5a, len);
  printf("start %llx\n", (unsigned long long)(uintptr_t)p);
  rt_ready();
  rt_wait_go(argv[1]);
  return 0;
}
