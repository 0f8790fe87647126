// Planning a tree restore (tree_plan.h).
#include "tree_plan.h"

#include "fd_kinds/fd_kind.h"

#include <algorithm>
#include <set>

#include <ckpt/img/file_identity.h>
#include <ckpt/img/fd_kinds.h>
#include <ckpt/img/fd_states.h>


namespace ckpt::reader {

using namespace img;

size_t TreePlan::live_count() const {
  size_t n = 0;
  for (const TreeProcess &p : processes) n += !p.zombie;
  return n;
}

namespace {

bool is_pipe(const FdRecord &r) { return is_pipe_end(static_cast<FdType>(r.type)); }

// The peer inode of a connected AF_UNIX socket whose peer is open (its
// pair is one object: both ends are made together), else 0.
u64 unix_peer(const CkptView &v, const FdRecord &r) {
  if (static_cast<FdType>(r.type) != FdType::Socket || !r.state.length) return 0;
  auto u = unix_socket_state(v.fds, r);
  if (!u || !(u->fixed.flags & kUnixConnected) || (u->fixed.flags & kUnixPeerClosed)) return 0;
  return u->fixed.peer_ino;
}

// Counts the users of every object a process could share with another and
// keeps those with more than one process.
void find_shared(TreePlan &plan) {
  std::map<SharedKey, std::pair<SharedUse, std::set<size_t>>> users;
  auto use = [&](SharedKey key, size_t process, size_t record) {
    auto [it, fresh] = users.try_emplace(key);
    if (fresh) it->second.first = {process, record};
    it->second.second.insert(process);
  };
  for (size_t p = 0; p < plan.processes.size(); p++) {
    const TreeProcess &tp = plan.processes[p];
    if (tp.zombie) continue;
    const CkptView &v = *tp.view;
    for (size_t i = 0; i < v.fds.records.size(); i++) {
      const FdRecord &r = v.fds.records[i];
      // A pty pair whose ends several processes hold (a terminal emulator
      // and the child on its slave) is made once; its master's open file
      // is the pair's, so a master fd is never a File of its own.
      if (auto index = pty_index(v, r)) use({SharedKey::PtyPair, *index, 0, 0}, p, i);
      else if (is_pipe(r) && r.pipe_id) use({SharedKey::Pipe, r.pipe_id, 0, 0}, p, i);
      else if (auto peer = unix_peer(v, r)) use({SharedKey::UnixPair, std::min(r.ino, peer), std::max(r.ino, peer), 0}, p, i);
      else if (r.file_id) use({SharedKey::File, r.file_id, 0, 0}, p, i);
    }
    for (size_t i = 0; i < v.vmas.records.size(); i++) {
      const VmaRecord &m = v.vmas.records[i];
      auto kind = static_cast<VmaKind>(m.kind);
      // Shared anonymous (and shared hugetlb) memory inherited across
      // fork is one object: the same inode in every process. So is a
      // deleted file mapped shared (python's multiprocessing locks are
      // POSIX semaphores in /dev/shm, unlinked at once): made once, or each
      // process would get its own copy and the locks would lock nothing.
      // Where some process still holds an fd on it, the object is that
      // fd's recreated file (tree_create.cc).
      bool deleted_file = kind == VmaKind::File && (m.flags & kVmaDeletedFile);
      if ((m.flags & kVmaShared) && (kind == VmaKind::SharedAnon || kind == VmaKind::Hugetlb || deleted_file))
        use({SharedKey::Memory, m.kind, m.dev, m.ino}, p, i);
    }
  }
  for (auto &[key, u] : users)
    if (u.second.size() > 1) plan.shared.emplace(key, u.first);
}

}  // namespace

Expected<TreePlan> plan_tree(const std::string &path, const ImageReader &root, const CkptView &root_view,
                             const CoreView &root_core) {
  TreePlan plan;
  plan.path = path;
  plan.root_image = &root;
  TreeProcess r;
  const TaskRecord &task = root_view.tasks.records[0];
  r.pid = task.pid;
  r.ppid = task.ppid;
  r.pgid = task.pgid;
  r.sid = task.sid;
  r.image = &root;
  r.view = root_view;
  r.core = root_core;
  plan.processes.push_back(std::move(r));
  std::map<pid_t, size_t> index{{task.pid, 0}};
  for (const TreeRecord &rec : root_view.tree.records) {
    TreeProcess p;
    p.pid = rec.pid;
    p.ppid = rec.ppid;
    p.pgid = rec.pgid;
    p.sid = rec.sid;
    p.zombie = (rec.flags & kTreeZombie) != 0;
    p.wait_status = rec.wait_status;
    p.exit_signal = rec.exit_signal;
    if (!p.zombie) {
      auto image = root.embedded(rec);
      if (!image) return image.error();
      p.embedded = std::make_unique<ImageReader>(image.take());
      p.image = p.embedded.get();
      auto view = decode_ckpt(*p.image);
      if (!view) return view.error().context("process " + std::to_string(rec.pid));
      auto core = decode_core(*p.image);
      if (!core) return core.error().context("process " + std::to_string(rec.pid));
      p.view = view.take();
      p.core = core.take();
      if (p.view->tasks.records.empty() || p.view->tasks.records[0].pid != rec.pid)
        return make_error("process %d: its embedded core describes another process", rec.pid);
    }
    auto parent = index.find(rec.ppid);
    if (parent == index.end()) return make_error("process %d: parent %d is not in the tree", rec.pid, rec.ppid);
    if (plan.processes[parent->second].zombie) return make_error("process %d: its parent %d is a zombie", rec.pid, rec.ppid);
    index[rec.pid] = plan.processes.size();
    plan.processes[parent->second].children.push_back(plan.processes.size());
    plan.processes.push_back(std::move(p));
  }
  // Memory stored once by an earlier core (CowPages, FORMAT.md §9.23) must
  // be that core's stored bytes, covered by its checksums.
  std::vector<TreeCore> cores;
  for (const TreeProcess &p : plan.processes)
    if (!p.zombie) cores.push_back({p.image, &*p.view});
  CKPT_TRY(check_cow_sources(cores));
  find_shared(plan);
  return plan;
}

}  // namespace ckpt::reader
