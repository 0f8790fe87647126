#include "proc_stat.h"

#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace ckpt::reader {

std::optional<StatHead> read_stat_head(pid_t pid) {
  char path[32], buf[512];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  buf[n > 0 ? n : 0] = 0;
  // "pid (comm) S ppid ...": comm may hold ')' and spaces, so the state
  // follows the last ')'.
  const char *paren = std::strrchr(buf, ')');
  if (!paren || paren[1] != ' ' || !paren[2]) return std::nullopt;
  StatHead head;
  head.state = paren[2];
  // state ppid pgrp session tty_nr tpgid flags
  if (std::sscanf(paren + 2, "%*c %*d %*d %*d %*d %*d %lu", &head.flags) != 1) return std::nullopt;
  return head;
}

}  // namespace ckpt::reader
