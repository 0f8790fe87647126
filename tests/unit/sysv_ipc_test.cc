// The SysvIpc and IpcNamespace notes (FORMAT.md, format 1.4): records and
// their data round-trip through encode and decode; decode refuses data that
// does not fit its kind; an attached SysV mapping is restorable exactly when
// the image holds its whole segment.
#include <gtest/gtest.h>

#include <cstring>

#include <ckpt/img/restorable.h>

#include "synthetic.h"

namespace {

using namespace ckpt::img;

SysvIpcRecord object(SysvIpcKind kind, i32 id, i32 key) {
  SysvIpcRecord r{};
  r.kind = static_cast<u32>(kind);
  r.id = id;
  r.key = key;
  r.mode = 0640;
  r.uid = 1000;
  r.gid = 100;
  return r;
}

std::vector<u8> message(i64 type, const std::string &body) {
  std::vector<u8> out(sizeof(SysvMessageHeader) + ((body.size() + 7) & ~size_t(7)), 0);
  SysvMessageHeader h{type, body.size()};
  std::memcpy(out.data(), &h, sizeof h);
  std::memcpy(out.data() + sizeof h, body.data(), body.size());
  return out;
}

// Segment 4711 (16384 bytes, locked), semaphores 815 (5, 0, 42), queue 1234
// with "hello" (type 1) and "world!!" (type 7), in their own namespace.
ckpt::test::SyntheticImage with_ipc() {
  auto im = ckpt::test::make_synthetic();
  ImageNotes &n = im.notes;
  SysvIpcRecord shm = object(SysvIpcKind::Shm, 4711, 0x5eed0001);
  shm.mode |= kSysvShmLocked;
  shm.size = 16384;  // the first synthetic mapping's length
  shm.cpid = 4242;
  std::vector<u8> bytes(16384);
  for (size_t i = 0; i < bytes.size(); i++) bytes[i] = u8(i * 7);
  shm.data = n.sysv_ipc.add_blob(bytes);
  n.sysv_ipc.add(shm);
  SysvIpcRecord sem = object(SysvIpcKind::Sem, 815, 0x5eed0003);
  sem.count = 3;
  const u16 values[3] = {5, 0, 42};
  sem.data = n.sysv_ipc.add_blob(std::span<const u8>(reinterpret_cast<const u8 *>(values), sizeof values));
  n.sysv_ipc.add(sem);
  SysvIpcRecord msg = object(SysvIpcKind::Msg, 1234, 0x5eed0004);
  msg.count = 2;
  msg.size = 16384;
  std::vector<u8> queue = message(1, "hello");
  std::vector<u8> second = message(7, "world!!");
  queue.insert(queue.end(), second.begin(), second.end());
  msg.data = n.sysv_ipc.add_blob(queue);
  n.sysv_ipc.add(msg);
  IpcNamespaceRecord ns{};
  ns.flags = kIpcNsOwn;
  ns.ns_inode = 4026531839;
  n.ipc_namespace.add(ns);
  return im;
}

TEST(SysvIpcNotes, RecordsAndDataRoundTrip) {
  auto im = with_ipc();
  auto v = view_of_notes(im.notes);
  ASSERT_TRUE(v) << v.error().message();
  const CkptView &view = v->view;
  ASSERT_EQ(view.sysv_ipc.records.size(), 3u);
  ASSERT_EQ(view.ipc_namespace.records.size(), 1u);
  EXPECT_EQ(view.ipc_namespace.records[0].flags, u32(kIpcNsOwn));
  EXPECT_EQ(view.ipc_namespace.records[0].ns_inode, 4026531839u);
  for (size_t i = 0; i < 3; i++) {
    const SysvIpcRecord &got = view.sysv_ipc.records[i], &want = im.notes.sysv_ipc.records[i];
    EXPECT_EQ(std::memcmp(&got, &want, sizeof got), 0) << "record " << i;
  }
  auto shm = view.sysv_ipc.blob(view.sysv_ipc.records[0].data);
  ASSERT_TRUE(shm);
  ASSERT_EQ(shm->size(), 16384u);
  for (size_t i = 0; i < shm->size(); i++) ASSERT_EQ((*shm)[i], u8(i * 7)) << "segment byte " << i;
  auto sem = view.sysv_ipc.blob(view.sysv_ipc.records[1].data);
  ASSERT_TRUE(sem);
  ASSERT_EQ(sem->size(), 6u);
  u16 values[3];
  std::memcpy(values, sem->data(), 6);
  EXPECT_EQ(values[0], 5);
  EXPECT_EQ(values[1], 0);
  EXPECT_EQ(values[2], 42);
  auto msg = view.sysv_ipc.blob(view.sysv_ipc.records[2].data);
  ASSERT_TRUE(msg);
  std::vector<u8> want = message(1, "hello"), second = message(7, "world!!");
  want.insert(want.end(), second.begin(), second.end());
  EXPECT_EQ(std::vector<u8>(msg->begin(), msg->end()), want);
  EXPECT_EQ(view.sysv_ipc.records[0].mode & kSysvShmLocked, kSysvShmLocked);
}

TEST(SysvIpcNotes, DataThatDoesNotFitItsKindIsRefused) {
  auto damaged = [](auto change) {
    auto im = with_ipc();
    change(im.notes.sysv_ipc.records);
    auto v = view_of_notes(im.notes);
    return v ? std::string("decoded") : v.error().message();
  };
  EXPECT_NE(damaged([](auto &r) { r[0].size = 4096; }).find("16384 bytes stored for a segment of 4096"),
            std::string::npos);
  EXPECT_NE(damaged([](auto &r) { r[1].count = 4; }).find("for 4 semaphores"), std::string::npos);
  EXPECT_NE(damaged([](auto &r) { r[2].count = 3; }).find("message 2 lies past its data"), std::string::npos);
  EXPECT_NE(damaged([](auto &r) { r[2].count = 1; }).find("for 1 messages"), std::string::npos);
  EXPECT_NE(damaged([](auto &r) { r[1].kind = 0; r[1].id = 4711; r[1].data = r[0].data; r[1].size = 16384; })
                .find("id 4711 is negative or repeated"),
            std::string::npos);
  EXPECT_NE(damaged([](auto &r) { r[0].kind = 9; }).find("unknown kind 9"), std::string::npos);
}

// A queue's data that ends inside a message's zero padding: the walk past
// that padding must not read a further header from beyond the data (the
// fuzz campaign's heap overflow, fuzz/regressions/fuzz_tables).
TEST(SysvIpcNotes, QueueDataEndingInsideThePaddingIsRefused) {
  auto im = with_ipc();
  std::vector<u8> cut = message(1, "hello");
  cut.resize(sizeof(SysvMessageHeader) + 5);
  SysvIpcRecord &q = im.notes.sysv_ipc.records[2];
  q.data = im.notes.sysv_ipc.add_blob(cut);
  q.count = 2;
  auto v = view_of_notes(im.notes);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message().find("message 1 lies past its data"), std::string::npos) << v.error().message();
}

// The first synthetic mapping (two pages) made a SysV attach of segment
// `id`: restorable only with the whole segment in the image.
std::string refusal_of_attach(i32 id, u64 pgoff) {
  auto im = with_ipc();
  VmaRecord &m = im.notes.vmas.records[0];
  m.kind = static_cast<u32>(VmaKind::SysvShm);
  m.flags |= kVmaShared;
  m.ino = static_cast<u64>(id);
  m.pgoff = pgoff;
  auto v = view_of_notes(im.notes);
  if (!v) return "damaged: " + v.error().message();
  return unsupported_message(unsupported_state(v->view));
}

TEST(SysvIpcNotes, AttachedSegmentIsRestorableWhenTheImageHoldsIt) {
  EXPECT_EQ(refusal_of_attach(4711, 0), "");
  EXPECT_NE(refusal_of_attach(4712, 0).find("segment 4712 is not in the image"), std::string::npos);
  EXPECT_NE(refusal_of_attach(4711, 4096).find("a part of segment 4711"), std::string::npos);
}

}  // namespace
