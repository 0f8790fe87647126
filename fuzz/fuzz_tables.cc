// fuzz_tables: one CKPT table note desc. The first byte selects the record
// type (with_record_type in fuzz_common.h: every kind of the note registry,
// then the integrity note's), the rest is the desc given to parse_table and
// decode_table<R>, then to the kind's own decoders (kind_checks.h: the fd
// kinds' states, armed ranges, SysV messages) and, beside a minimal
// identity note, to decode_ckpt_notes (the cross-record rules) and the
// restore policy (unsupported_state).
//
// Checked beyond "no crash": parse_table's parts tile the desc exactly,
// decode_table agrees with parse_table and copies each record's prefix
// (zero-filling a longer type), every str()/blob() result lies inside the
// data area exactly when the reference fits, and a decoded table re-encoded
// by TableBuilder decodes to the same records and data.
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include <ckpt/img/table.h>

#include "fuzz_common.h"
#include "kind_checks.h"

using namespace ckpt;
using namespace ckpt::img;
using ckpt::fuzz::touch;
using ckpt::fuzz::within;

namespace {

template <typename R>
void check_table(std::span<const u8> desc) {
  auto raw = parse_table(desc);
  auto t = decode_table<R>(desc);
  CKPT_FUZZ_CHECK(bool(raw) == bool(t));
  if (!raw) {
    CKPT_FUZZ_CHECK(!raw.error().message().empty());
    return;
  }
  const TableHeader &h = raw->header;
  CKPT_FUZZ_CHECK(h.header_size >= sizeof(TableHeader) && h.header_size <= desc.size());
  CKPT_FUZZ_CHECK(h.record_size >= kMinRecordSize);
  CKPT_FUZZ_CHECK(raw->records.size() == u64(h.record_count) * h.record_size);
  CKPT_FUZZ_CHECK(raw->data.size() == h.data_size);
  CKPT_FUZZ_CHECK(h.header_size + raw->records.size() + raw->data.size() == desc.size());
  CKPT_FUZZ_CHECK(raw->records.data() == desc.data() + h.header_size);
  CKPT_FUZZ_CHECK(raw->data.data() == desc.data() + h.header_size + raw->records.size());
  CKPT_FUZZ_CHECK(within(raw->data.data(), raw->data.size(), desc.data(), desc.size()));

  CKPT_FUZZ_CHECK(t->version == h.version);
  CKPT_FUZZ_CHECK(t->records.size() == h.record_count);
  CKPT_FUZZ_CHECK(t->data.data() == raw->data.data() && t->data.size() == raw->data.size());
  touch(t->data);
  const size_t copied = h.record_size < sizeof(R) ? h.record_size : sizeof(R);
  for (size_t i = 0; i < t->records.size(); i++) {
    const u8 *rec = reinterpret_cast<const u8 *>(&t->records[i]);
    CKPT_FUZZ_CHECK(std::memcmp(rec, raw->records.data() + i * h.record_size, copied) == 0);
    for (size_t k = copied; k < sizeof(R); k++) CKPT_FUZZ_CHECK(rec[k] == 0);
  }
  fuzz::check_contents(*t);

  // Round trip through the builder: the data area goes in as one blob at
  // offset 0, so every reference stays valid.
  TableBuilder<R> b;
  b.records = t->records;
  if (!t->data.empty()) {
    BlobRef whole = b.add_blob(t->data);
    CKPT_FUZZ_CHECK(whole.offset == 0 && whole.length == t->data.size());
  }
  std::vector<u8> again = b.encode(t->version);
  CKPT_FUZZ_CHECK(again.size() == sizeof(TableHeader) + t->records.size() * sizeof(R) + t->data.size());
  auto t2 = decode_table<R>(again);
  CKPT_FUZZ_CHECK(bool(t2));
  CKPT_FUZZ_CHECK(t2->version == t->version);
  CKPT_FUZZ_CHECK(t2->records.size() == t->records.size());
  if (!t->records.empty())
    CKPT_FUZZ_CHECK(std::memcmp(t2->records.data(), t->records.data(), t->records.size() * sizeof(R)) == 0);
  CKPT_FUZZ_CHECK(t2->data.size() == t->data.size());
  if (!t->data.empty()) CKPT_FUZZ_CHECK(std::memcmp(t2->data.data(), t->data.data(), t->data.size()) == 0);
}

/// The desc as the one note of its kind in a view's notes, with a minimal
/// identity note beside it (unless it is the identity note): what
/// decode_ckpt checks across records, and the restore policy, on it.
template <typename R>
void check_as_view(std::span<const u8> desc) {
  const CkptNote type = fuzz::kSelectorNote[fuzz::selector_of_record<R>()];
  if (type == CkptNote::Integrity) return;  // not a table of the view
  std::vector<Note> notes;
  if (type != CkptNote::Identity) {
    static const std::vector<u8> identity = [] {
      TableBuilder<IdentityRecord> b;
      IdentityRecord id{};
      id.format_minor = kFormatMinor;
      id.process_count = 1;
      b.add(id);
      return b.encode();
    }();
    notes.push_back(make_ckpt_note(CkptNote::Identity, identity));
  }
  notes.push_back(make_ckpt_note(type, std::vector<u8>(desc.begin(), desc.end())));
  auto view = decode_ckpt_notes(notes);
  if (!view) {
    CKPT_FUZZ_CHECK(!view.error().message().empty());
    return;
  }
  fuzz::check_view(*view);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  // libFuzzer's buffer ends exactly at data + size, so ASan catches reads
  // past the end of the desc.
  std::span<const u8> desc(data + 1, size - 1);
  fuzz::with_record_type(data[0], [&]<typename R>() {
    check_table<R>(desc);
    check_as_view<R>(desc);
  });
  return 0;
}
