/* ckpt_exclude: the table of excluded ranges lives in a memfd named
 * "ckpt-exclude", which the dumper finds in /proc/PID/fd (the layout is
 * docs/FORMAT.md's "Excluded pages"; writer/src/excluded_pages.cc reads
 * it). A memfd is restored with its bytes, so a restored process keeps its
 * table and later checkpoints still leave the ranges out. */
#define _GNU_SOURCE
#include <ckpt/ckpt.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

static const char kTableMagic[8] = {'C', 'K', 'P', 'T', 'E', 'X', 'C', 'L'};
#define kTableVersion 1u
#define kTableLink "/memfd:ckpt-exclude (deleted)"

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static int table_fd = -1;

/* Still our table? The program may have closed the fd (closefrom() in a
 * daemon) and the number be reused; its inode changes on restore, so the
 * name is the test. */
static int is_table(int fd) {
  char path[64], link[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, link, sizeof link - 1);
  if (n < 0) return 0;
  link[n] = 0;
  return strcmp(link, kTableLink) == 0;
}

static int open_table(void) {
  if (table_fd >= 0 && is_table(table_fd)) return table_fd;
  int fd = memfd_create("ckpt-exclude", MFD_CLOEXEC);
  if (fd < 0) return -errno;
  unsigned char header[16];
  uint32_t version = kTableVersion, count = 0;
  memcpy(header, kTableMagic, 8);
  memcpy(header + 8, &version, 4);
  memcpy(header + 12, &count, 4);
  if (pwrite(fd, header, sizeof header, 0) != (ssize_t)sizeof header) {
    int e = errno ? errno : EIO;
    close(fd);
    return -e;
  }
  table_fd = fd;
  return fd;
}

/* 0 if [start, end) lies in private anonymous mappings; -ENOMEM where a
 * part is unmapped, -EINVAL where it is a file's or shared. */
static int check_private_anonymous(uintptr_t start, uintptr_t end) {
  FILE *maps = fopen("/proc/self/maps", "re");
  if (!maps) return -errno;
  char line[4096 + 128];
  uintptr_t covered = start;
  int result = -ENOMEM;
  while (fgets(line, sizeof line, maps)) {
    unsigned long lo, hi, ino;
    char perms[8];
    int path_at = 0;
    if (sscanf(line, "%lx-%lx %7s %*x %*x:%*x %lu %n", &lo, &hi, perms, &ino, &path_at) < 4) continue;
    if (hi <= covered) continue;
    if (lo > covered) break; /* a hole */
    const char *path = line + path_at;
    int anonymous = ino == 0 && (path[0] == '\n' || path[0] == 0 || strncmp(path, "[heap]", 6) == 0 ||
                                 strncmp(path, "[stack]", 7) == 0 || strncmp(path, "[anon:", 6) == 0);
    if (!anonymous || perms[3] != 'p') {
      result = -EINVAL;
      break;
    }
    covered = hi;
    if (covered >= end) {
      result = 0;
      break;
    }
  }
  fclose(maps);
  return result;
}

int ckpt_exclude(void *addr, size_t len) {
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t start = (uintptr_t)addr;
  if (start % page) return -EINVAL;
  if (len == 0) return 0;
  if (len > UINTPTR_MAX - start - (page - 1)) return -EINVAL;
  uintptr_t end = (start + len + page - 1) & ~(page - 1);
  int r = check_private_anonymous(start, end);
  if (r < 0) return r;
  /* The natural marker where the kernel has it (CONFIG_ANON_VMA_NAME);
   * EINVAL without it, so the table below is what always works. */
  prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, start, end - start, "ckpt-exclude");

  pthread_mutex_lock(&table_lock);
  int fd = open_table();
  if (fd < 0) {
    pthread_mutex_unlock(&table_lock);
    return fd;
  }
  uint32_t count = 0;
  uint64_t entry[2] = {start, end};
  r = 0;
  if (pread(fd, &count, 4, 12) != 4)
    r = -EIO;
  /* The entry before the count that covers it: a dump freezes us anyway,
   * but a reader never sees an entry not yet written. */
  else if (pwrite(fd, entry, sizeof entry, 16 + (off_t)count * 16) != (ssize_t)sizeof entry)
    r = errno ? -errno : -EIO;
  else {
    count++;
    if (pwrite(fd, &count, 4, 12) != 4) r = errno ? -errno : -EIO;
  }
  pthread_mutex_unlock(&table_lock);
  return r;
}
