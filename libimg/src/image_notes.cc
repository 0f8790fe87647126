#include <ckpt/img/image_notes.h>

namespace ckpt::img {

template <typename R>
static void add_table(std::vector<Note> &out, CkptNote type, const TableBuilder<R> &t) {
  if (!t.records.empty()) out.push_back(make_ckpt_note(type, t.encode()));
}

std::vector<Note> ImageNotes::encode() const {
  std::vector<Note> out;
  if (psinfo) out.push_back(make_struct_note(kOwnerCore, kNtPrpsinfo, *psinfo));
  for (size_t i = 0; i < threads.size(); i++) {
    const Thread &t = threads[i];
    out.push_back(make_struct_note(kOwnerCore, kNtPrstatus, t.prstatus));
    if (!t.fpregs.empty()) out.push_back(Note{kOwnerCore, kNtFpregset, t.fpregs});
    if (!t.xstate.empty()) out.push_back(Note{kOwnerLinux, kNtX86Xstate, t.xstate});
    // BFD files NT_SIGINFO under the thread of the PRSTATUS before it, and
    // gdb's $_siginfo looks for it under the signalled (first) thread.
    if (i == 0 && !siginfo.empty()) out.push_back(Note{kOwnerCore, kNtSiginfo, siginfo});
  }
  if (threads.empty() && !siginfo.empty()) out.push_back(Note{kOwnerCore, kNtSiginfo, siginfo});
  if (!auxv.empty()) out.push_back(make_nt_auxv(auxv));
  if (!files.empty()) out.push_back(make_nt_file(files));
  add_table(out, CkptNote::Identity, identity);
  add_table(out, CkptNote::Tasks, tasks);
  add_table(out, CkptNote::Threads, thread_records);
  add_table(out, CkptNote::Vmas, vmas);
  add_table(out, CkptNote::PageRanges, ranges);
  add_table(out, CkptNote::Fds, fds);
  add_table(out, CkptNote::Pipes, pipes);
  add_table(out, CkptNote::SigActions, sigactions);
  add_table(out, CkptNote::PendingSignals, pending);
  add_table(out, CkptNote::Timers, timers);
  add_table(out, CkptNote::Rlimits, rlimits);
  add_table(out, CkptNote::Tree, tree);
  add_table(out, CkptNote::Parent, parent);
  add_table(out, CkptNote::SeccompFilters, seccomp_filters);
  add_table(out, CkptNote::StoredFiles, stored_files);
  add_table(out, CkptNote::Locks, locks);
  add_table(out, CkptNote::GuardRanges, guard_ranges);
  add_table(out, CkptNote::SysvIpc, sysv_ipc);
  add_table(out, CkptNote::IpcNamespace, ipc_namespace);
  return out;
}

}  // namespace ckpt::img
