// The restoring child (become_image.h).
#include "become_image.h"
#include "foreground_terminal.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <ckpt/img/fault_point.h>

#include "fill_checks.h"
#include "lazy_pages.h"
#include "locks.h"
#include "mapped_objects.h"
#include "phase_times.h"
#include "process_setup.h"
#include "restorer_args.h"

namespace ckpt::reader {

using namespace img;

namespace {

// The key of a mapped file: one fd per path, opened for writing only where
// a shared mapping is or may become writable.
std::string mapped_file_key(const CkptView &v, const VmaRecord &m) {
  // kVmaMayWrite: a mapping the program could mprotect to PROT_WRITE
  // (images before it have only the protection to go by).
  bool writable_shared = (m.flags & kVmaShared) && ((m.prot & PROT_WRITE) || (m.flags & kVmaMayWrite));
  return std::string(v.vmas.str_or_empty(m.path)) + (writable_shared ? "\1" : "");
}

// The files that file mappings map, opened by path, one fd per key.
struct MappedFiles {
  std::vector<std::pair<std::string, int>> opened;  ///< key, fd
  int fd_of(const std::string &key) const {
    for (auto &o : opened)
      if (o.first == key) return o.second;
    return -1;
  }
};

Status open_mapped_files(const CkptView &v, MappedFiles &out) {
  for (const VmaRecord &m : v.vmas.records) {
    if (static_cast<VmaKind>(m.kind) != VmaKind::File || (m.flags & kVmaDeletedFile)) continue;
    std::string key = mapped_file_key(v, m);
    if (out.fd_of(key) >= 0) continue;
    std::string p(v.vmas.str_or_empty(m.path));
    bool writable = key.back() == '\1';
    int fd = open(p.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) return make_error("cannot open mapped file %s: %s", p.c_str(), strerror(errno));
    out.opened.push_back({key, fd});
  }
  return {};
}

}  // namespace

std::vector<int *> InheritedObjects::all_fds() {
  std::vector<int *> out;
  for (auto &[id, fd] : fds.files) out.push_back(&fd);
  for (auto &[id, ends] : fds.pipes) {
    out.push_back(&ends.first);
    out.push_back(&ends.second);
  }
  for (auto &[ino, fd] : fds.unix_sockets) out.push_back(&fd);
  for (auto &[index, pair] : fds.pty_pairs) {
    out.push_back(&pair.first);
    if (pair.second >= 0) out.push_back(&pair.second);
  }
  for (auto &[key, fd] : memory) out.push_back(&fd);
  return out;
}

void InheritedObjects::close_all() {
  for (int *fd : all_fds())
    if (*fd >= 0) {
      close(*fd);
      *fd = -1;
    }
}

void die_with_parent(pid_t parent) {
  // PR_SET_PDEATHSIG: the kernel sends the signal when the parent *thread*
  // exits (prctl(2)); the clone-calling thread of imgtool lives until
  // imgtool exits. A parent that died before the prctl is seen as a
  // changed getppid() (we were reparented).
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
}

Status become_image(const ProcessImage &process, ChildChannels &channels) {
  const CkptView &v = process.view;
  trace_phase("child: becoming the image");
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);

  RestorerFds fds;
  fds.status_fd = channels.status_fd;
  fds.image_fd = open(process.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fds.image_fd < 0) return make_error("cannot open %s: %s", process.path.c_str(), strerror(errno));
  MappedFiles files;
  CKPT_TRY(open_mapped_files(v, files));
  // --lazy: the userfaultfd imgtool's helper serves (lazy_pages.h).
  if (channels.lazy_sock >= 0) {
    auto made = make_lazy_uffd(channels.lazy_sock);
    if (!made) return made.error();
    fds.uffd = *made;
  }
  trace_phase("child: image, mapped files and userfaultfd open");
  // Until here nothing is seen outside this process but opened files and
  // the userfaultfd sent to imgtool; restore_fds may bind sockets, open
  // fifos and make files. imgtool's last checks (DECISIONS 268) pass
  // first: on a failed check it kills us, and EOF means it is gone.
  if (channels.checks_fd >= 0) {
    char passed = 0;
    ssize_t n;
    while ((n = read(channels.checks_fd, &passed, 1)) < 0 && errno == EINTR) {
    }
    if (n != 1) _exit(127);
    close(channels.checks_fd);
    channels.checks_fd = -1;
    trace_phase("child: imgtool's checks passed");
  }
  // The fd table; ours move above it (restore_fds writes the new numbers back).
  std::vector<int *> keep = {&fds.image_fd, &fds.status_fd};
  // CKPT_TRACE_TIMES: a copy of imgtool's stderr for the trace lines, kept
  // through restore_fds (fd 2 becomes the program's) and closed before the
  // restorer runs.
  int trace_fd = tracing_times() ? fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3) : -1;
  if (trace_fd >= 0) keep.push_back(&trace_fd);
  if (fds.uffd >= 0) keep.push_back(&fds.uffd);
  for (auto &o : files.opened) keep.push_back(&o.second);
  if (channels.inherited)
    for (int *fd : channels.inherited->all_fds()) keep.push_back(fd);
  Status fds_restored =
      restore_fds(v, keep, channels.terminal, channels.inherited ? &channels.inherited->fds : nullptr);
  channels.status_fd = fds.status_fd;
  CKPT_TRY(fds_restored);
  if (trace_fd >= 0) set_phase_trace_fd(trace_fd);
  trace_phase("child: fds restored");

  // The objects behind shared and deleted-file mappings, made now that
  // every restored fd is in place.
  MappedObjects objects;
  Status prepared =
      prepare_shared_objects(v, process.image, objects, channels.inherited ? &channels.inherited->memory : nullptr);
  // What we use of the inherited objects is dup'ed by now.
  if (channels.inherited) channels.inherited->close_all();
  CKPT_TRY(prepared);
  auto exe_fd = open_executable(v, process.image, objects);
  if (!exe_fd) return exe_fd.error();
  objects.owned_fds.push_back(*exe_fd);
  fds.exe_fd = *exe_fd;
  fds.vma_fd.assign(v.vmas.records.size(), -1);
  for (size_t i = 0; i < v.vmas.records.size(); i++) {
    const VmaRecord &m = v.vmas.records[i];
    if (objects.vma_fd[i] >= 0) fds.vma_fd[i] = objects.vma_fd[i];
    else if (static_cast<VmaKind>(m.kind) == VmaKind::File && !(m.flags & kVmaDeletedFile))
      fds.vma_fd[i] = files.fd_of(mapped_file_key(v, m));
  }
  fds.prefilled = objects.prefilled;
  fds.late_seals_by_imgtool = channels.inherited != nullptr;  // a tree's process
  fds.one_process = channels.inherited == nullptr;
  for (auto &o : files.opened) fds.close_fds.push_back(o.second);
  for (int fd : objects.owned_fds) fds.close_fds.push_back(fd);
  if (fds.uffd >= 0) fds.close_fds.push_back(fds.uffd);  // the helper has its own

  trace_phase("child: shared objects and executable ready");
  CKPT_TRY(restore_process_state(v));
  if (channels.take_terminal) CKPT_TRY(take_controlling_terminal(v));
  if (trace_fd >= 0) fds.close_fds.push_back(trace_fd);
  // Last of the fd work: nothing before the restorer closes an fd now.
  CKPT_TRY(restore_locks(v));
  auto region = lay_out_restorer(process.image, v, process.core, fds);
  if (!region) return region.error();
  // Eager: the segments the restorer will not check as it reads, checked
  // now (fill_checks.h). A damaged image is reported as verify words it,
  // not as this process's failure (RS_CHECKSUM, verdict.cc). --lazy
  // leaves the memory it does not read unchecked (the restorer still
  // checks what it reads).
  if (fds.uffd < 0)
    if (Status s = check_segments_now(process.image, v, region->check_before); !s) {
      std::string line = char(RS_CHECKSUM) + s.error().message() + "\n";
      (void)!write(channels.status_fd, line.data(), line.size());
      _exit(127);
    }
  trace_phase("child: restorer laid out, jumping to it");
  // A test takes one of the image's tids here, after the preflight and
  // before the restorer claims it (decision 254's retry; docs/design/fault-points.md).
  CKPT_TRY(fault_point("restore-before-threads"));
  jump_to_restorer(*region);
}

void become_image_or_report(const ProcessImage &process, ChildChannels channels) {
  Status s = become_image(process, channels);
  std::string msg = s.error().message() + "\n";
  (void)!write(channels.status_fd, msg.data(), msg.size());
  _exit(127);
}

}  // namespace ckpt::reader
