// Shared helpers of the libFuzzer targets: invariant checks that crash the
// fuzzer, byte "touching" so ASan sees every view a decoder hands out, and
// the record-type table of fuzz_tables (also used by make_seeds).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>

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
// Generated from the note registry (CKPT_NOTE_KINDS): selector i is the i-th
// kind in registry order, and the last one is the integrity note's record.
// A kind added to the registry is fuzzed from then on without a line here.

template <typename... R>
struct RecordTypeList {
  static constexpr unsigned size = sizeof...(R);
};
#define CKPT_FUZZ_RECORD_TYPE(name, type, R, ...) img::R,
using RecordTypes = RecordTypeList<CKPT_NOTE_KINDS(CKPT_FUZZ_RECORD_TYPE) img::IntegrityRecord>;
#undef CKPT_FUZZ_RECORD_TYPE

/// The first input byte of fuzz_tables, modulo kRecordTypes, selects one.
inline constexpr unsigned kRecordTypes = RecordTypes::size;
static_assert(kRecordTypes == std::size(img::kNoteKinds) + 1, "every note kind and the integrity note");
static_assert(kRecordTypes <= 256, "a selector is one byte");

/// The CKPT note type of each selector, in the same order.
inline constexpr img::CkptNote kSelectorNote[] = {
#define CKPT_FUZZ_SELECTOR_NOTE(name, ...) img::CkptNote::name,
    CKPT_NOTE_KINDS(CKPT_FUZZ_SELECTOR_NOTE)
#undef CKPT_FUZZ_SELECTOR_NOTE
    img::CkptNote::Integrity};
static_assert(std::size(kSelectorNote) == kRecordTypes);

namespace detail {
template <typename F, typename... R, size_t... I>
void dispatch_record_type(unsigned index, F &f, RecordTypeList<R...>, std::index_sequence<I...>) {
  (void)((index == I ? (f.template operator()<R>(), true) : false) || ...);
}
}  // namespace detail

/// Calls f.template operator()<R>() for the record type selected by sel.
template <typename F>
void with_record_type(uint8_t sel, F &&f) {
  detail::dispatch_record_type(sel % kRecordTypes, f, RecordTypes{}, std::make_index_sequence<kRecordTypes>{});
}

namespace detail {
template <typename R, typename... Rs>
constexpr unsigned index_in(RecordTypeList<Rs...>) {
  constexpr bool same[] = {std::is_same_v<R, Rs>...};
  for (unsigned i = 0; i < sizeof...(Rs); i++)
    if (same[i]) return i;
  return sizeof...(Rs);
}
}  // namespace detail

/// The selector of record type R (its kind's position in the registry).
template <typename R>
constexpr unsigned selector_of_record() {
  return detail::index_in<R>(RecordTypes{});
}
// One record type per kind, so a record type names its kind.
#define CKPT_FUZZ_SELECTOR_CHECK(name, type, R, ...)                                      \
  static_assert(kSelectorNote[selector_of_record<img::R>()] == img::CkptNote::name, \
                #R " is the record type of more than one note kind");
CKPT_NOTE_KINDS(CKPT_FUZZ_SELECTOR_CHECK)
#undef CKPT_FUZZ_SELECTOR_CHECK

/// The selector byte of a CKPT note type, or -1 for a type the registry
/// does not know.
inline int selector_of(img::CkptNote type) {
  for (unsigned i = 0; i < kRecordTypes; i++)
    if (kSelectorNote[i] == type) return static_cast<int>(i);
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
  // str() and blob() alike: they succeed exactly when the reference fits,
  // and then return its bytes, inside the data area.
  auto check_ref = [&](auto ref, auto resolved) {
    bool fits = ref.offset <= data.size() && ref.length <= data.size() - ref.offset;
    CKPT_FUZZ_CHECK(bool(resolved) == fits);
    if (resolved) {
      CKPT_FUZZ_CHECK(resolved->size() == ref.length);
      CKPT_FUZZ_CHECK(within(resolved->data(), resolved->size(), data.data(), data.size()));
      touch(*resolved);
    } else {
      CKPT_FUZZ_CHECK(!resolved.error().message().empty());
    }
    return fits;
  };
  for (const R &r : t.records) {
    for_each_ref(
        r,
        [&](StrRef ref) {
          bool fits = check_ref(ref, t.str(ref));
          std::string_view e = t.str_or_empty(ref);
          CKPT_FUZZ_CHECK(fits ? e.size() == ref.length : e.empty());
          touch(e);
        },
        [&](BlobRef ref) { check_ref(ref, t.blob(ref)); });
  }
}

}  // namespace ckpt::fuzz
