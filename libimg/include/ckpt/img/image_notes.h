// ImageNotes: everything that goes into PT_NOTE 0, gathered by the writer
// and turned into notes in the one order docs/FORMAT.md specifies.
#pragma once

#include <optional>
#include <vector>

#include <ckpt/img/note.h>
#include <ckpt/img/table.h>

namespace ckpt::img {

struct ImageNotes {
  /// One thread's register notes.
  struct Thread {
    PrStatus prstatus{};
    std::vector<u8> fpregs;   ///< 512 bytes, or empty to omit NT_FPREGSET
    std::vector<u8> xstate;   ///< XSAVE area, or empty to omit NT_X86_XSTATE
  };

  std::optional<PrPsInfo> psinfo;
  std::vector<Thread> threads;      ///< the signalled (or main) thread first
  std::vector<u8> siginfo;          ///< 128 bytes, or empty
  std::vector<u64> auxv;            ///< (type, value) words incl. AT_NULL
  std::vector<FileMapping> files;   ///< NT_FILE, main executable first

  // One TableBuilder per CKPT note kind (CKPT_NOTE_KINDS), e.g. `tasks`.
#define CKPT_NOTE_BUILDER(name, type, R, builder, ...) TableBuilder<R> builder;
  CKPT_NOTE_KINDS(CKPT_NOTE_BUILDER)
#undef CKPT_NOTE_BUILDER

  /// The notes in file order: NT_PRPSINFO; per thread NT_PRSTATUS,
  /// NT_FPREGSET, NT_X86_XSTATE, with NT_SIGINFO right after the first
  /// thread's; NT_AUXV; NT_FILE; then the
  /// CKPT notes in type order, omitting empty tables (Identity is always
  /// written when it has a record).
  std::vector<Note> encode() const;
};

}  // namespace ckpt::img
