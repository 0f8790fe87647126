// Shared helpers of the libFuzzer targets: invariant checks that crash the
// fuzzer, byte "touching" so ASan sees every view a decoder hands out, and
// the record-type table of fuzz_tables (also used by make_seeds).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string_view>

#include <ckpt/img/format.h>
#include <ckpt/img/note_kinds.h>
#include <ckpt/img/records.h>
#include <ckpt/img/table.h>

namespace ckpt::fuzz {

/// A violated invariant is a finding: say which, then crash so libFuzzer
/// saves the input.
#define CKPT_FUZZ_CHECK(cond)                                                              \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      __builtin_trap();                                                                    \
    }                                                                                      \
  } while (0)

/// Reads every byte of a view, so that a view reaching outside its buffer is
/// an ASan report rather than a silent success.
inline volatile uint8_t touch_sink;
inline void touch(const void *p, size_t n) {
  const uint8_t *b = static_cast<const uint8_t *>(p);
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++) acc ^= b[i];
  touch_sink = acc;
}
inline void touch(std::span<const uint8_t> s) { touch(s.data(), s.size()); }
inline void touch(std::string_view s) { touch(s.data(), s.size()); }

/// Is [p, p+n) inside [base, base+size)?
inline bool within(const void *p, size_t n, const void *base, size_t size) {
  auto a = reinterpret_cast<uintptr_t>(p), b = reinterpret_cast<uintptr_t>(base);
  return a >= b && a - b <= size && n <= size - (a - b);
}

// ---- Record types of fuzz_tables ------------------------------------------
// The first input byte, modulo kRecordTypes, selects one of these.

inline constexpr unsigned kRecordTypes = 21;

/// Calls f.template operator()<R>() for the record type selected by sel.
template <typename F>
void with_record_type(uint8_t sel, F &&f) {
  using namespace img;
  switch (sel % kRecordTypes) {
    case 0: f.template operator()<IdentityRecord>(); break;
    case 1: f.template operator()<TaskRecord>(); break;
    case 2: f.template operator()<ThreadRecord>(); break;
    case 3: f.template operator()<VmaRecord>(); break;
    case 4: f.template operator()<PageRangeRecord>(); break;
    case 5: f.template operator()<FdRecord>(); break;
    case 6: f.template operator()<PipeRecord>(); break;
    case 7: f.template operator()<SigActionRecord>(); break;
    case 8: f.template operator()<PendingSignalRecord>(); break;
    case 9: f.template operator()<TimerRecord>(); break;
    case 10: f.template operator()<RlimitRecord>(); break;
    case 11: f.template operator()<TreeRecord>(); break;
    case 12: f.template operator()<ParentRecord>(); break;
    case 13: f.template operator()<IntegrityRecord>(); break;
    case 14: f.template operator()<SeccompFilterRecord>(); break;
    case 15: f.template operator()<StoredFileRecord>(); break;
    case 16: f.template operator()<LockRecord>(); break;
    case 17: f.template operator()<GuardRangeRecord>(); break;
    case 18: f.template operator()<SysvIpcRecord>(); break;
    case 19: f.template operator()<IpcNamespaceRecord>(); break;
    case 20: f.template operator()<CowPagesRecord>(); break;
  }
}

/// The selector byte of a CKPT note type, or -1.
inline int selector_of(img::CkptNote type) {
  using img::CkptNote;
  switch (type) {
    case CkptNote::Identity: return 0;
    case CkptNote::Tasks: return 1;
    case CkptNote::Threads: return 2;
    case CkptNote::Vmas: return 3;
    case CkptNote::PageRanges: return 4;
    case CkptNote::Fds: return 5;
    case CkptNote::Pipes: return 6;
    case CkptNote::SigActions: return 7;
    case CkptNote::PendingSignals: return 8;
    case CkptNote::Timers: return 9;
    case CkptNote::Rlimits: return 10;
    case CkptNote::Tree: return 11;
    case CkptNote::Parent: return 12;
    case CkptNote::Integrity: return 13;
    case CkptNote::SeccompFilters: return 14;
    case CkptNote::StoredFiles: return 15;
    case CkptNote::Locks: return 16;
    case CkptNote::GuardRanges: return 17;
    case CkptNote::SysvIpc: return 18;
    case CkptNote::IpcNamespace: return 19;
    case CkptNote::CowPages: return 20;
  }
  return -1;
}

// The references of each record type are libimg's (note_kinds.h).
using img::for_each_ref;

/// Resolves every reference of every record of a decoded table and checks
/// what str()/blob() return against the data area.
template <typename R>
void check_refs(const img::Table<R> &t) {
  using namespace img;
  const auto data = t.data;
  for (const R &r : t.records) {
    for_each_ref(
        r,
        [&](StrRef ref) {
          bool fits = ref.offset <= data.size() && ref.length <= data.size() - ref.offset;
          auto s = t.str(ref);
          CKPT_FUZZ_CHECK(bool(s) == fits);
          if (s) {
            CKPT_FUZZ_CHECK(s->size() == ref.length);
            CKPT_FUZZ_CHECK(within(s->data(), s->size(), data.data(), data.size()));
            touch(*s);
          } else {
            CKPT_FUZZ_CHECK(!s.error().message().empty());
          }
          std::string_view e = t.str_or_empty(ref);
          CKPT_FUZZ_CHECK(fits ? e.size() == ref.length : e.empty());
          touch(e);
        },
        [&](BlobRef ref) {
          bool fits = ref.offset <= data.size() && ref.length <= data.size() - ref.offset;
          auto b = t.blob(ref);
          CKPT_FUZZ_CHECK(bool(b) == fits);
          if (b) {
            CKPT_FUZZ_CHECK(b->size() == ref.length);
            CKPT_FUZZ_CHECK(within(b->data(), b->size(), data.data(), data.size()));
            touch(*b);
          }
        });
  }
}

}  // namespace ckpt::fuzz
