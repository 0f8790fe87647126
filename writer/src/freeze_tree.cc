#include "freeze_tree.h"

#include <ckpt/img/fault_point.h>

#include <algorithm>
#include <unistd.h>

namespace ckpt::writer {

using img::make_error;
using img::Status;

img::Expected<FrozenTree> FrozenTree::freeze(pid_t root, const std::atomic<bool> *cancel) {
  FrozenTree tree;
  auto frozen = FrozenProcess::freeze(root, cancel);
  if (!frozen) return frozen.error();
  TreeMember m;
  m.pid = root;
  auto stat = read_stat(root);
  if (!stat) return stat.error();
  m.stat = stat.take();
  m.ppid = m.stat.ppid;
  m.frozen = std::make_unique<FrozenProcess>(std::move(*frozen));
  tree.members_.push_back(std::move(m));
  // A frozen process cannot fork, but a child frozen later could have
  // forked before its freeze: each process's children are read only once
  // it is frozen, so the walk sees them. The final rounds re-read every
  // list until nothing new appears (a fork that was completing when its
  // parent was interrupted).
  for (int round = 0; round < 100; round++) {
    size_t before = tree.members_.size();
    for (size_t i = 0; i < tree.members_.size(); i++) CKPT_TRY(tree.add_children_of(i, cancel));
    if (tree.members_.size() == before) return tree;
  }
  return make_error("the tree of process %d kept growing while it was being frozen", root);
}

Status FrozenTree::add_children_of(size_t index, const std::atomic<bool> *cancel) {
  if (members_[index].zombie) return {};  // an exited process has no children (they were reparented)
  pid_t parent = members_[index].pid;
  auto kids = list_children_by_thread(parent);
  if (!kids) return kids.error();
  for (const ChildOf &c : *kids) {
    // The dumper itself may be a descendant of the target (libckpt runs
    // imgtool as a child of the caller): it and its own children are left
    // out; they are never reached through it.
    if (c.child == getpid()) continue;
    if (std::any_of(members_.begin(), members_.end(), [&](const TreeMember &m) { return m.pid == c.child; }))
      continue;
    TreeMember m;
    m.pid = c.child;
    m.ppid = parent;
    m.creator_tid = c.creator_tid;
    auto stat = read_stat(c.child);
    if (!stat) continue;  // gone: reaped by the kernel (SIGCHLD ignored in the parent)
    m.stat = stat.take();
    if (m.stat.state == 'Z' && m.stat.num_threads > 1)
      return make_error("process %d (child of %d): its main thread has exited while %lld other threads run; "
                        "such a process cannot be dumped", c.child, parent, (long long)m.stat.num_threads);
    if (m.stat.state != 'Z' && m.stat.state != 'X') {
      auto frozen = FrozenProcess::freeze(c.child, cancel);
      if (!frozen) {
        // It may have exited while we froze it: then it is a zombie now,
        // or gone altogether.
        auto again = read_stat(c.child);
        if (!again) continue;
        if (again->state != 'Z' && again->state != 'X')
          return frozen.error().context("process " + std::to_string(c.child) + " (child of " +
                                        std::to_string(parent) + ")");
        m.stat = again.take();
      } else {
        m.frozen = std::make_unique<FrozenProcess>(std::move(*frozen));
      }
    }
    m.zombie = !m.frozen;
    members_.push_back(std::move(m));
  }
  return {};
}

Status FrozenTree::release() {
  Status result;
  for (size_t i = members_.size(); i-- > 0;) {
    if (!members_[i].frozen) continue;
    Status s = members_[i].frozen->release();
    if (!s && result) result = s;
  }
  return result;
}

Status FrozenTree::kill() {
  Status result;
  for (TreeMember &m : members_) {
    if (!m.frozen) continue;
    Status s = m.frozen->kill();
    if (!s && result) result = s;
    if (result) result = img::fault_point("dump-killing");
  }
  return result;
}

}  // namespace ckpt::writer
