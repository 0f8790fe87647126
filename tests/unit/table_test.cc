// Table notes: the one encoding of every CKPT note (libimg/include/ckpt/img/table.h).
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <ckpt/img/table.h>

using namespace ckpt::img;

namespace {

// Two versions of one record: V2 grew two fields at its end.
struct RecV1 {
  u64 a;
  u32 b;
  u32 c;
  StrRef name;
};
static_assert(sizeof(RecV1) == 24);

struct RecV2 {
  u64 a;
  u32 b;
  u32 c;
  StrRef name;
  u64 d;
  BlobRef extra;
};
static_assert(sizeof(RecV2) == 48);

std::vector<u8> encode_raw(const TableHeader &h, std::span<const u8> records, std::span<const u8> data) {
  std::vector<u8> out(h.header_size >= sizeof h ? h.header_size : sizeof h, 0);
  std::memcpy(out.data(), &h, sizeof h);
  out.insert(out.end(), records.begin(), records.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

TableHeader header_of(std::span<const u8> desc) {
  TableHeader h;
  std::memcpy(&h, desc.data(), sizeof h);
  return h;
}

void set_header(std::vector<u8> &desc, const TableHeader &h) { std::memcpy(desc.data(), &h, sizeof h); }

// parse_table refuses `desc` (whose `field` is `value`) with a message that
// names the field.
void expect_refused_naming(const std::vector<u8> &desc, const std::string &field, u32 value) {
  auto p = parse_table(desc);
  EXPECT_FALSE(p) << field << " " << value;
  if (!p) {
    EXPECT_NE(p.error().message().find(field), std::string::npos) << p.error().message();
  }
}

}  // namespace

// A table of `count` RecV1 records, each named `name` (one string).
std::vector<u8> named_records(const char *name, int count) {
  TableBuilder<RecV1> b;
  RecV1 r{};
  r.name = b.add_string(name);
  for (int i = 0; i < count; i++) b.add(r);
  return b.encode();
}

TEST(Table, RoundTripRecordsStringsAndBlobs) {
  TableBuilder<RecV2> b;
  std::vector<u8> blob1 = {1, 2, 3};
  std::vector<u8> blob2(100);
  for (size_t i = 0; i < blob2.size(); i++) blob2[i] = static_cast<u8>(0xff - i);
  for (int i = 0; i < 5; i++) {
    RecV2 r{};
    r.a = 0x1111111111111111ull * (i + 1);
    r.b = 100 + i;
    r.c = 0xdeadbeef ^ i;
    r.name = b.add_string("record-" + std::to_string(i));
    r.d = ~u64(i);
    r.extra = b.add_blob(i % 2 ? std::span<const u8>(blob1) : std::span<const u8>(blob2));
    b.add(r);
  }
  std::vector<u8> desc = b.encode(7);
  TableHeader h = header_of(desc);
  EXPECT_EQ(h.header_size, sizeof(TableHeader));
  EXPECT_EQ(h.version, 7u);
  EXPECT_EQ(h.record_size, sizeof(RecV2));
  EXPECT_EQ(h.record_count, 5u);
  EXPECT_EQ(sizeof(TableHeader) + 5 * sizeof(RecV2) + h.data_size, desc.size());

  auto t = decode_table<RecV2>(desc);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->version, 7u);
  ASSERT_EQ(t->records.size(), 5u);
  for (int i = 0; i < 5; i++) {
    const RecV2 &r = t->records[i];
    EXPECT_EQ(0, std::memcmp(&r, &b.records[i], sizeof r)) << "record " << i;
    auto s = t->str(r.name);
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_EQ(*s, "record-" + std::to_string(i));
    auto bl = t->blob(r.extra);
    ASSERT_TRUE(bl) << bl.error().message();
    const std::vector<u8> &want = i % 2 ? blob1 : blob2;
    EXPECT_EQ(std::vector<u8>(bl->begin(), bl->end()), want);
    EXPECT_EQ(r.extra.offset % 8, 0u) << "blobs start 8-aligned";
  }
}

TEST(Table, EmptyTableRoundTrips) {
  TableBuilder<RecV1> b;
  auto desc = b.encode();
  EXPECT_EQ(desc.size(), sizeof(TableHeader));
  auto t = decode_table<RecV1>(desc);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_TRUE(t->records.empty());
  EXPECT_TRUE(t->data.empty());
  EXPECT_EQ(t->version, 1u);
}

TEST(Table, ShorterRecordsAreZeroFilled) {
  // An old writer's table (V1 records) read by a new reader (V2).
  TableBuilder<RecV1> old;
  for (u32 i = 0; i < 3; i++) {
    RecV1 r{};
    r.a = 0xa0a0a0a0a0a0a0a0ull + i;
    r.b = 0xb0 + i;
    r.c = 0xc0 + i;
    r.name = old.add_string("n" + std::to_string(i));
    old.add(r);
  }
  auto desc = old.encode();
  EXPECT_EQ(header_of(desc).record_size, sizeof(RecV1));
  auto t = decode_table<RecV2>(desc);
  ASSERT_TRUE(t) << t.error().message();
  ASSERT_EQ(t->records.size(), 3u);
  for (u32 i = 0; i < 3; i++) {
    const RecV2 &r = t->records[i];
    EXPECT_EQ(r.a, 0xa0a0a0a0a0a0a0a0ull + i);
    EXPECT_EQ(r.b, 0xb0 + i);
    EXPECT_EQ(r.c, 0xc0 + i);
    EXPECT_EQ(r.d, 0u) << "field unknown to the writer must read as zero";
    EXPECT_EQ(r.extra.offset, 0u);
    EXPECT_EQ(r.extra.length, 0u);
    auto s = t->str(r.name);
    ASSERT_TRUE(s);
    EXPECT_EQ(*s, "n" + std::to_string(i));
  }
}

TEST(Table, ShorterRecordsHandEncodedWithOddSize) {
  // record_size 12 (not a multiple of 8, smaller than any real record): the
  // reader must copy exactly 12 bytes per record and zero the rest.
  std::vector<u8> recs(3 * 12);
  for (size_t i = 0; i < recs.size(); i++) recs[i] = static_cast<u8>(i + 1);
  const u8 data[] = {'x', 'y'};
  TableHeader h{sizeof(TableHeader), 1, 12, 3, sizeof data};
  auto desc = encode_raw(h, recs, data);
  auto t = decode_table<RecV2>(desc);
  ASSERT_TRUE(t) << t.error().message();
  ASSERT_EQ(t->records.size(), 3u);
  for (int i = 0; i < 3; i++) {
    std::vector<u8> want(sizeof(RecV2), 0);
    std::memcpy(want.data(), recs.data() + i * 12, 12);
    EXPECT_EQ(0, std::memcmp(&t->records[i], want.data(), sizeof(RecV2))) << "record " << i;
  }
  ASSERT_EQ(t->data.size(), 2u);
  EXPECT_EQ(t->data[0], 'x');
}

TEST(Table, LongerRecordsTailIgnored) {
  // A newer writer's table (V2) read by an older reader (V1).
  TableBuilder<RecV2> b;
  u8 blob[16] = {9, 9, 9};
  for (u32 i = 0; i < 4; i++) {
    RecV2 r{};
    r.a = 1000 + i;
    r.b = 2000 + i;
    r.c = 3000 + i;
    r.name = b.add_string(std::string(i + 1, 'q'));
    r.d = 0xffffffffffffffffull;
    r.extra = b.add_blob(blob);
    b.add(r);
  }
  auto t = decode_table<RecV1>(b.encode());
  ASSERT_TRUE(t) << t.error().message();
  ASSERT_EQ(t->records.size(), 4u);
  for (u32 i = 0; i < 4; i++) {
    EXPECT_EQ(t->records[i].a, 1000u + i);
    EXPECT_EQ(t->records[i].b, 2000u + i);
    EXPECT_EQ(t->records[i].c, 3000u + i);
    auto s = t->str(t->records[i].name);
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_EQ(*s, std::string(i + 1, 'q')) << "data area must be found after the longer records";
  }
}

TEST(Table, LongerHeaderIsSkipped) {
  // A future header with 8 more bytes: readers skip what they do not know.
  RecV1 r{42, 43, 44, {0, 3}};
  const u8 data[] = {'a', 'b', 'c'};
  TableHeader h{sizeof(TableHeader) + 8, 1, sizeof(RecV1), 1, sizeof data};
  auto desc = encode_raw(h, {reinterpret_cast<const u8 *>(&r), sizeof r}, data);
  ASSERT_EQ(desc.size(), 32 + sizeof r + 3);
  auto t = decode_table<RecV1>(desc);
  ASSERT_TRUE(t) << t.error().message();
  ASSERT_EQ(t->records.size(), 1u);
  EXPECT_EQ(t->records[0].a, 42u);
  EXPECT_EQ(*t->str(t->records[0].name), "abc");
}

TEST(Table, ParseRejectsShortDesc) {
  std::vector<u8> desc(23, 0);
  EXPECT_FALSE(parse_table(desc));
  EXPECT_FALSE(parse_table({}));
}

TEST(Table, ParseRejectsSmallHeaderSize) {
  TableBuilder<RecV1> b;
  b.add(RecV1{1, 2, 3, {}});
  auto desc = b.encode();
  ASSERT_TRUE(parse_table(desc));
  for (u32 hs : {0u, 1u, 16u, 23u}) {
    auto d = desc;
    TableHeader h = header_of(d);
    h.header_size = hs;
    set_header(d, h);
    expect_refused_naming(d, "header_size", hs);
  }
}

TEST(Table, ParseRejectsHeaderSizePastEnd) {
  TableBuilder<RecV1> b;
  auto desc = b.encode();
  TableHeader h = header_of(desc);
  h.header_size = static_cast<u32>(desc.size() + 1);
  set_header(desc, h);
  EXPECT_FALSE(parse_table(desc));
  h.header_size = std::numeric_limits<u32>::max();
  set_header(desc, h);
  EXPECT_FALSE(parse_table(desc));
}

TEST(Table, ParseRejectsSmallRecordSize) {
  for (u32 rs : {0u, 1u, 4u, 7u}) {
    TableHeader h{sizeof(TableHeader), 1, rs, 0, 0};
    expect_refused_naming(encode_raw(h, {}, {}), "record_size", rs);
  }
  TableHeader ok{sizeof(TableHeader), 1, kMinRecordSize, 0, 0};
  EXPECT_TRUE(parse_table(encode_raw(ok, {}, {})));
}

TEST(Table, ParseRejectsRecordsPastEnd) {
  TableBuilder<RecV1> b;
  for (u64 i = 0; i < 3; i++) b.add(RecV1{i, 0, 0, {}});
  auto desc = b.encode();
  for (u32 count : {4u, 1000u, 0x7fffffffu, 0xffffffffu}) {
    auto d = desc;
    TableHeader h = header_of(d);
    h.record_count = count;
    set_header(d, h);
    auto p = parse_table(d);
    EXPECT_FALSE(p) << "record_count " << count;
    auto t = decode_table<RecV1>(d);
    EXPECT_FALSE(t) << "decode_table must not allocate for record_count " << count;
  }
  // record_size * count overflows 32 bits: must still be compared in 64.
  auto d = desc;
  TableHeader h = header_of(d);
  h.record_size = 0x10000;
  h.record_count = 0x10000;  // 2^32 bytes: wraps to 0 in u32 arithmetic
  h.data_size = desc.size() - sizeof(TableHeader);
  set_header(d, h);
  EXPECT_FALSE(parse_table(d));
  h.record_size = 0xffffffff;
  h.record_count = 1;
  set_header(d, h);
  EXPECT_FALSE(parse_table(d));
}

TEST(Table, ParseRejectsDataSizeMismatch) {
  auto desc = named_records("hello", 1);
  TableHeader h0 = header_of(desc);
  ASSERT_EQ(h0.data_size, 5u);
  for (u64 ds : {u64(0), u64(4), u64(6), u64(1) << 40, ~u64(0)}) {
    auto d = desc;
    TableHeader h = h0;
    h.data_size = ds;
    set_header(d, h);
    EXPECT_FALSE(parse_table(d)) << "data_size " << ds;
  }
  // Trailing bytes not accounted for by data_size are a mismatch too.
  auto d = desc;
  d.push_back(0);
  EXPECT_FALSE(parse_table(d));
}

TEST(Table, ParseSplitsExactly) {
  auto desc = named_records("abcdef", 2);
  auto p = parse_table(desc);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->records.data(), desc.data() + sizeof(TableHeader));
  EXPECT_EQ(p->records.size(), 2 * sizeof(RecV1));
  EXPECT_EQ(p->data.data(), desc.data() + sizeof(TableHeader) + 2 * sizeof(RecV1));
  EXPECT_EQ(p->data.size(), 6u);
}

TEST(Table, StrBounds) {
  std::vector<u8> bytes = {'0', '1', '2', '3', '4', '5', '6', '7'};
  Table<RecV1> t;
  t.data = bytes;
  EXPECT_EQ(*t.str({0, 8}), "01234567");
  EXPECT_EQ(*t.str({3, 5}), "34567");
  EXPECT_EQ(*t.str({8, 0}), "") << "empty string at the very end is fine";
  EXPECT_EQ(*t.str({0, 0}), "");
  EXPECT_FALSE(t.str({0, 9}));
  EXPECT_FALSE(t.str({8, 1}));
  EXPECT_FALSE(t.str({9, 0}));
  EXPECT_FALSE(t.str({1, 0xffffffffu})) << "offset + length must not wrap";
  EXPECT_FALSE(t.str({0xffffffffu, 2}));
  EXPECT_EQ(t.str_or_empty({7, 2}), "");
  EXPECT_EQ(t.str_or_empty({7, 1}), "7");

  Table<RecV1> empty;
  EXPECT_TRUE(empty.str({0, 0}));
  EXPECT_FALSE(empty.str({0, 1}));
}

TEST(Table, BlobBounds) {
  std::vector<u8> bytes(16);
  for (size_t i = 0; i < bytes.size(); i++) bytes[i] = static_cast<u8>(i);
  Table<RecV1> t;
  t.data = bytes;
  auto b = t.blob({8, 8});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->size(), 8u);
  EXPECT_EQ((*b)[0], 8);
  EXPECT_EQ(b->data(), bytes.data() + 8) << "blobs are views, not copies";
  EXPECT_TRUE(t.blob({16, 0}));
  EXPECT_FALSE(t.blob({16, 1}));
  EXPECT_FALSE(t.blob({17, 0}));
  EXPECT_FALSE(t.blob({0, 17}));
  EXPECT_FALSE(t.blob({8, ~u64(0)})) << "offset + length must not wrap";
  EXPECT_FALSE(t.blob({~u64(0), 2}));
  EXPECT_FALSE(t.blob({u64(1) << 32, 0})) << "64-bit offsets are not truncated";
}

TEST(Table, BuilderBlobAlignmentAfterStrings) {
  TableBuilder<RecV1> b;
  StrRef s = b.add_string("abc");  // data is 3 bytes now
  u8 x[5] = {1, 2, 3, 4, 5};
  BlobRef br = b.add_blob(x);
  EXPECT_EQ(s.offset, 0u);
  EXPECT_EQ(s.length, 3u);
  EXPECT_EQ(br.offset, 8u);
  EXPECT_EQ(br.length, 5u);
  StrRef s2 = b.add_string("z");
  EXPECT_EQ(s2.offset, 13u);
  b.add(RecV1{});
  auto t = decode_table<RecV1>(b.encode());
  ASSERT_TRUE(t);
  EXPECT_EQ(*t->str(s), "abc");
  EXPECT_EQ(*t->str(s2), "z");
  auto bb = t->blob(br);
  ASSERT_TRUE(bb);
  EXPECT_EQ(std::vector<u8>(bb->begin(), bb->end()), std::vector<u8>(x, x + 5));
  // The alignment gap is zero-filled.
  for (u64 i = 3; i < 8; i++) EXPECT_EQ(t->data[i], 0) << i;
}
