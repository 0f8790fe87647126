// Table notes: the single encoding every CKPT note uses.
//
//   TableHeader (24 bytes) | record_count records of record_size bytes
//                          | data area of data_size bytes (strings, blobs)
//
// record_size is the writer's sizeof(record). A reader with a longer record
// type zero-fills the fields it did not get; one with a shorter type ignores
// the tail. That is how records grow at their end without a version bump.
#pragma once

#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/records.h>

namespace ckpt::img {

struct TableHeader {
  u32 header_size;   ///< bytes of this header; readers skip what they do not know
  u32 version;       ///< note version, currently 1
  u32 record_size;
  u32 record_count;
  u64 data_size;
};
static_assert(sizeof(TableHeader) == 24);

/// The smallest record_size a reader accepts; it bounds record_count by the
/// note's size, so a hostile count cannot make a reader allocate without limit.
inline constexpr u32 kMinRecordSize = 8;

/// A table note split into its parts, each checked to lie inside the note.
struct RawTable {
  TableHeader header{};
  std::span<const u8> records;
  std::span<const u8> data;
};

/// Splits a note's desc into header, records and data, checking every size.
Expected<RawTable> parse_table(std::span<const u8> desc);

/// A decoded table: records copied into their current C++ type, and a view
/// of the data area (valid as long as the image's bytes are).
template <typename R>
struct Table {
  std::vector<R> records;
  std::span<const u8> data;
  u32 version = 0;

  Expected<std::string_view> str(StrRef ref) const {
    if (ref.offset > data.size() || ref.length > data.size() - ref.offset)
      return make_error("string at data offset %u, length %u, lies outside the %zu-byte data area",
                        ref.offset, ref.length, data.size());
    return std::string_view(reinterpret_cast<const char *>(data.data()) + ref.offset, ref.length);
  }
  /// A string, or "" where the reference is bad (for display only).
  std::string_view str_or_empty(StrRef ref) const {
    auto s = str(ref);
    return s ? *s : std::string_view();
  }
  Expected<std::span<const u8>> blob(BlobRef ref) const {
    if (ref.offset > data.size() || ref.length > data.size() - ref.offset)
      return make_error("blob at data offset %llu, length %llu, lies outside the %zu-byte data area",
                        (unsigned long long)ref.offset, (unsigned long long)ref.length, data.size());
    return data.subspan(ref.offset, ref.length);
  }
};

template <typename R>
Expected<Table<R>> decode_table(std::span<const u8> desc) {
  auto raw = parse_table(desc);
  if (!raw) return raw.error();
  Table<R> t;
  t.version = raw->header.version;
  t.data = raw->data;
  u32 n = raw->header.record_count, size = raw->header.record_size;
  t.records.resize(n);
  for (u32 i = 0; i < n; i++) {
    R r{};
    std::memcpy(&r, raw->records.data() + size_t(i) * size, size < sizeof(R) ? size : sizeof(R));
    t.records[i] = r;
  }
  return t;
}

/// Builds one table note's desc.
template <typename R>
class TableBuilder {
 public:
  std::vector<R> records;

  R &add(const R &r) { return records.emplace_back(r); }

  StrRef add_string(std::string_view s) {
    StrRef ref{static_cast<u32>(data_.size()), static_cast<u32>(s.size())};
    data_.append(s);
    return ref;
  }
  BlobRef add_blob(std::span<const u8> b) {
    // Blobs start 8-aligned so a reader may view u64 arrays in place.
    data_.resize((data_.size() + 7) & ~size_t(7), '\0');
    BlobRef ref{data_.size(), b.size()};
    data_.append(reinterpret_cast<const char *>(b.data()), b.size());
    return ref;
  }

  std::vector<u8> encode(u32 version = 1) const {
    TableHeader h{sizeof(TableHeader), version, sizeof(R), static_cast<u32>(records.size()),
                  data_.size()};
    std::vector<u8> out(sizeof h + records.size() * sizeof(R) + data_.size());
    std::memcpy(out.data(), &h, sizeof h);
    if (!records.empty()) std::memcpy(out.data() + sizeof h, records.data(), records.size() * sizeof(R));
    if (!data_.empty()) std::memcpy(out.data() + sizeof h + records.size() * sizeof(R), data_.data(), data_.size());
    return out;
  }

 private:
  std::string data_;
};

}  // namespace ckpt::img
