#include "tree_ids.h"

#include "fd_kinds/fd_kind.h"

#include <cerrno>
#include <cstring>
#include <linux/kcmp.h>
#include <map>
#include <sys/syscall.h>
#include <unistd.h>

namespace ckpt::writer {

using img::make_error;
using img::u32;
using img::u64;

static bool is_pipe_record(const img::FdRecord &r) {
  return writer_fd_kind(static_cast<img::FdType>(r.type)).pipe_buffer;
}

img::Status assign_tree_ids(std::vector<ProcessCapture *> &captures) {
  struct Holder {
    pid_t pid;
    int fd;
    u32 id;
  };
  // file_id: only fds on the same inode can share a description, so kcmp()
  // is asked only within a (dev, ino) bucket, against each group's first fd.
  std::map<std::pair<u64, u64>, std::vector<Holder>> groups;
  u32 next_file_id = 1;
  // pipe_id: one per pipe/FIFO inode over the whole tree.
  std::map<std::pair<u64, u64>, u32> pipe_ids;
  for (ProcessCapture *pc : captures) {
    std::map<u32, u32> local_pipe;  // this process's pipe_id -> the tree's
    std::vector<bool> pipe_is_new;
    for (FdInfo &fi : pc->fds.fds) {
      img::FdRecord &r = fi.record;
      auto &bucket = groups[{r.dev, r.ino}];
      u32 id = 0;
      for (const Holder &h : bucket) {
        long same = syscall(SYS_kcmp, h.pid, pc->pid, KCMP_FILE, h.fd, r.fd);
        if (same < 0)
          return make_error("kcmp(KCMP_FILE) of pid %d fd %d against pid %d fd %d: %s", pc->pid, r.fd, h.pid, h.fd,
                            strerror(errno));
        if (same == 0) {
          id = h.id;
          break;
        }
      }
      if (id == 0) {
        id = next_file_id++;
        bucket.push_back({pc->pid, r.fd, id});
      }
      r.file_id = id;
      if (r.pipe_id && is_pipe_record(r)) {
        auto [it, fresh] = pipe_ids.try_emplace({r.dev, r.ino}, u32(pipe_ids.size() + 1));
        local_pipe.try_emplace(r.pipe_id, it->second);
        if (fresh) {
          // This process is the first to hold the pipe: its PipeInfo stays.
          if (pipe_is_new.size() <= r.pipe_id) pipe_is_new.resize(r.pipe_id + 1);
          pipe_is_new[r.pipe_id] = true;
        }
        r.pipe_id = it->second;
      }
    }
    // Keep the PipeInfo of pipes this process is the first to hold.
    std::vector<PipeInfo> kept;
    for (PipeInfo &p : pc->fds.pipes) {
      auto it = local_pipe.find(p.pipe_id);
      if (it == local_pipe.end()) return make_error("pid %d: pipe %u has no fd", pc->pid, p.pipe_id);
      bool first = p.pipe_id < pipe_is_new.size() && pipe_is_new[p.pipe_id];
      p.pipe_id = it->second;
      if (first) kept.push_back(std::move(p));
    }
    pc->fds.pipes = std::move(kept);
  }
  return {};
}

}  // namespace ckpt::writer
