#include <ckpt/img/table.h>

namespace ckpt::img {

Expected<RawTable> parse_table(std::span<const u8> desc) {
  RawTable t;
  if (desc.size() < sizeof(TableHeader))
    return make_error("table of %zu bytes is shorter than its 24-byte header", desc.size());
  std::memcpy(&t.header, desc.data(), sizeof(TableHeader));
  const TableHeader &h = t.header;
  if (h.header_size < sizeof(TableHeader) || h.header_size > desc.size())
    return make_error("table header_size %u is out of range (24..%zu)", h.header_size, desc.size());
  if (h.record_size < kMinRecordSize)
    return make_error("table record_size %u is below the minimum of %u", h.record_size, kMinRecordSize);
  u64 avail = desc.size() - h.header_size;
  u64 records_bytes = u64(h.record_count) * h.record_size;  // both u32: cannot overflow u64
  if (records_bytes > avail)
    return make_error("table of %u records of %u bytes needs %llu bytes but only %llu follow its header",
                      h.record_count, h.record_size, (unsigned long long)records_bytes,
                      (unsigned long long)avail);
  if (h.data_size != avail - records_bytes)
    return make_error("table data_size %llu does not match the %llu bytes after its records",
                      (unsigned long long)h.data_size, (unsigned long long)(avail - records_bytes));
  t.records = desc.subspan(h.header_size, records_bytes);
  t.data = desc.subspan(h.header_size + records_bytes);
  return t;
}

}  // namespace ckpt::img
