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
#define CKPT_NOTE_ENCODE(name, type, R, builder, ...) add_table(out, CkptNote::name, builder);
  CKPT_NOTE_KINDS(CKPT_NOTE_ENCODE)
#undef CKPT_NOTE_ENCODE
  return out;
}

}  // namespace ckpt::img
