// The round-trip tests' fixture (roundtrip_*_test.cc): one image holding
// every note type, written once per test suite through ImageWriter into a
// memfd and read back with ImageReader.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <span>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

#include <ckpt/img/image_notes.h>
#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>
#include <ckpt/img/writer.h>

namespace ckpt::img::roundtrip {


// Every byte of a record set to a value that depends on its position and a
// seed, so a field copied to the wrong place or dropped shows up.
template <typename T>
T patterned(u32 seed) {
  T v;
  u8 *p = reinterpret_cast<u8 *>(&v);
  for (size_t i = 0; i < sizeof(T); i++) p[i] = static_cast<u8>(i * 37 + seed * 101 + 11 + (i >> 8));
  return v;
}

inline std::vector<u8> random_bytes(size_t n, u32 seed) {
  std::mt19937 rng(seed);
  std::vector<u8> v(n);
  for (u8 &b : v) b = static_cast<u8>(rng());
  return v;
}

inline std::string bytes_str(std::span<const u8> s) { return std::string(s.begin(), s.end()); }

// What make_fixture() builds.
struct Fixture {
  ImageNotes notes;
  std::vector<SegmentPlan> segments;
  std::vector<std::vector<u8>> data;  // filesz bytes per segment
  // What the tables' strings and blobs should read back as.
  std::vector<std::string> task_strings;  // comm, cwd, root, exe per task
  std::vector<std::vector<u8>> task_groups, task_auxv;
  std::vector<std::string> thread_names, vma_paths, fd_paths;
  std::vector<std::vector<u8>> vma_build_ids, fd_contents, pipe_data, seccomp_programs;
};

constexpr int kThreads = 3;
constexpr int kPid = 3100;

// The complete image every round-trip test reads back.
Fixture make_fixture();

// Writes the fixture to fd, feeding segment data in `chunk`-byte writes that
// straddle segment boundaries; segment 6's zero run goes through
// write_zeros, zero segments take no data at all.
Status write_fixture(const Fixture &f, int fd, size_t chunk, ImageLayout *layout_out = nullptr);

// The whole content of a regular file or memfd (empty on failure).
std::vector<u8> read_fd_all(int fd);

class RoundTrip : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixture_ = new Fixture(make_fixture());
    memfd_ = memfd_create("roundtrip", MFD_CLOEXEC);
    ASSERT_GE(memfd_, 0);
    layout_ = new ImageLayout;
    Status s = write_fixture(*fixture_, memfd_, 1000, layout_);
    ASSERT_TRUE(s) << s.error().message();
    bytes_ = new std::vector<u8>(read_fd_all(memfd_));
    ASSERT_FALSE(bytes_->empty());
    auto r = ImageReader::from_bytes(*bytes_);
    ASSERT_TRUE(r) << r.error().message();
    reader_ = new ImageReader(r.take());
  }
  static void TearDownTestSuite() {
    delete reader_;
    delete bytes_;
    delete layout_;
    delete fixture_;
    if (memfd_ >= 0) close(memfd_);
    reader_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(reader_, nullptr); }

  static CkptView ckpt() {
    auto v = decode_ckpt(*reader_);
    EXPECT_TRUE(v) << v.error().message();
    return v ? v.take() : CkptView{};
  }
  static CoreView core() {
    auto v = decode_core(*reader_);
    EXPECT_TRUE(v) << v.error().message();
    return v ? v.take() : CoreView{};
  }

  template <typename R>
  static void expect_same_records(const std::vector<R> &got, const std::vector<R> &want, const char *what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t i = 0; i < want.size(); i++)
      EXPECT_EQ(0, std::memcmp(&got[i], &want[i], sizeof(R))) << what << " record " << i << " differs";
  }

  // Each record's blob `blob` reads back as written.
  template <class Table, class R>
  static void expect_blobs(const Table &t, BlobRef R::*blob, const std::vector<std::vector<u8>> &blobs) {
    for (size_t i = 0; i < t.records.size(); i++) {
      auto b = t.blob(t.records[i].*blob);
      ASSERT_TRUE(b);
      EXPECT_EQ(bytes_str(*b), bytes_str(blobs[i]));
    }
  }
  // Each record's string `path` and blob `blob` read back as written.
  template <class Table, class R>
  static void expect_paths_and_blobs(const Table &t, StrRef R::*path, BlobRef R::*blob,
                                     const std::vector<std::string> &paths, const std::vector<std::vector<u8>> &blobs) {
    for (size_t i = 0; i < t.records.size(); i++) EXPECT_EQ(t.str_or_empty(t.records[i].*path), paths[i]);
    expect_blobs(t, blob, blobs);
  }
  // A table's records are `want`, byte for byte, and each record's string
  // `path` and blob `blob` read back as written.
  template <class Table, class R>
  static void expect_table(const Table &t, const std::vector<R> &want, const char *what, StrRef R::*path,
                           BlobRef R::*blob, const std::vector<std::string> &paths,
                           const std::vector<std::vector<u8>> &blobs) {
    expect_same_records(t.records, want, what);
    ASSERT_NO_FATAL_FAILURE(expect_paths_and_blobs(t, path, blob, paths, blobs));
  }
  // A table's records are `want`, byte for byte, and each record's blob
  // `blob` reads back as written.
  template <class Table, class R>
  static void expect_table(const Table &t, const std::vector<R> &want, const char *what, BlobRef R::*blob,
                           const std::vector<std::vector<u8>> &blobs) {
    expect_same_records(t.records, want, what);
    ASSERT_NO_FATAL_FAILURE(expect_blobs(t, blob, blobs));
  }

  static inline Fixture *fixture_ = nullptr;
  static inline int memfd_ = -1;
  static inline ImageLayout *layout_ = nullptr;
  static inline std::vector<u8> *bytes_ = nullptr;
  static inline ImageReader *reader_ = nullptr;
};

}  // namespace ckpt::img::roundtrip
