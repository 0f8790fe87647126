// The note kind registry (CKPT_NOTE_KINDS), unknown notes reported as
// warnings, and files named by device and inode (file_identity.h).
#include <gtest/gtest.h>

#include <string>
#include <sys/sysmacros.h>
#include <vector>

#include <ckpt/img/file_identity.h>
#include <ckpt/img/model.h>
#include <ckpt/img/note_kinds.h>

#include "synthetic.h"

using namespace ckpt::img;
using ckpt::test::encode_image;
using ckpt::test::make_synthetic;

namespace {

// A table note of a type no CKPT_NOTE_KINDS line has: what a newer writer adds.
constexpr u32 kNewerKind = 0x434b00f0;

Note newer_note() {
  TableBuilder<RlimitRecord> t;
  t.add({});
  return Note{kOwnerCkpt, kNewerKind, t.encode()};
}

}  // namespace

TEST(NoteKinds, RegistryNamesEveryTableNoteOnce) {
  EXPECT_EQ(std::size(kNoteKinds), 21u);
  for (const NoteKindInfo &k : kNoteKinds) {
    EXPECT_EQ(find_note_kind(static_cast<u32>(k.type)), &k) << k.name;
    EXPECT_GE(k.record_size, kMinRecordSize) << k.name;
  }
  EXPECT_STREQ(find_note_kind(static_cast<u32>(CkptNote::SigActions))->name, "signal actions");
  EXPECT_EQ(find_note_kind(static_cast<u32>(CkptNote::Fds))->record_size, sizeof(FdRecord));
  EXPECT_EQ(find_note_kind(static_cast<u32>(CkptNote::Threads))->scope, NoteScope::Thread);
  EXPECT_EQ(find_note_kind(static_cast<u32>(CkptNote::Parent))->count, NoteCount::OptionalOne);
  EXPECT_EQ(find_note_kind(static_cast<u32>(CkptNote::Integrity)), nullptr);
  EXPECT_EQ(find_note_kind(kNewerKind), nullptr);
}

// Every kind the writer's ImageNotes holds comes back in the decoded view.
TEST(NoteKinds, EncodeAndDecodeCoverEveryKind) {
  auto im = make_synthetic();
  std::vector<Note> notes = im.notes.encode();
  auto view = decode_ckpt_notes(notes);
  ASSERT_TRUE(view) << view.error().message();
  EXPECT_EQ(view->tasks.records.size(), im.notes.tasks.records.size());
  EXPECT_EQ(view->threads.records.size(), im.notes.thread_records.records.size());
  EXPECT_EQ(view->fds.records.size(), im.notes.fds.records.size());
  EXPECT_EQ(view->locks.records.size(), im.notes.locks.records.size());
  EXPECT_EQ(view->guard_ranges.records.size(), im.notes.guard_ranges.records.size());
  // The notes come out in type order (FORMAT.md §9.1).
  u32 last = 0;
  for (const Note &n : notes) {
    if (n.owner != kOwnerCkpt) continue;
    EXPECT_GT(n.type, last);
    last = n.type;
  }
}

TEST(NoteKinds, UnknownNoteIsAWarningNotAnError) {
  auto im = make_synthetic();
  im.extra_notes.push_back(newer_note());
  std::vector<uint8_t> bytes = encode_image(im);
  ASSERT_FALSE(bytes.empty());
  auto image = ImageReader::from_bytes(bytes);
  ASSERT_TRUE(image) << image.error().message();
  std::vector<std::string> warnings;
  auto view = decode_ckpt(*image, [&](const Error &e) { warnings.push_back(e.message()); });
  ASSERT_TRUE(view) << view.error().message();
  EXPECT_EQ(view->tasks.records.size(), 1u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("type 0x434b00f0"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("unknown kind"), std::string::npos) << warnings[0];
  // Without a handler it is skipped all the same.
  EXPECT_TRUE(decode_ckpt(*image));
}

TEST(NoteKinds, KnownNotesGiveNoWarning) {
  std::vector<uint8_t> bytes = encode_image(make_synthetic());
  auto image = ImageReader::from_bytes(bytes);
  ASSERT_TRUE(image) << image.error().message();
  int warnings = 0;
  ASSERT_TRUE(decode_ckpt(*image, [&](const Error &) { warnings++; }));
  EXPECT_EQ(warnings, 0);
}

// ---- Files by device and inode --------------------------------------------

// A VMA record as a format 1.4 writer makes it, and an fd record.
static VmaRecord mapping(u32 major, u32 minor, u64 ino) {
  VmaRecord m{};
  m.dev = (u64(major) << 8) | minor;  // the old field, as the writer still fills it
  m.dev_major = major;
  m.dev_minor = minor;
  m.ino = ino;
  return m;
}

static FdRecord open_file(u64 st_dev, u64 ino) {
  FdRecord f{};
  set_device(f, st_dev);
  f.ino = ino;
  return f;
}

TEST(FileIdentity, SameInodeOnAnotherDeviceIsAnotherFile) {
  VmaRecord m = mapping(8, 1, 1234);
  FdRecord f = open_file(makedev(8, 1), 1234);
  EXPECT_TRUE(same_file(m, f));
  set_device(f, makedev(0, 45));  // another file system, same inode number
  EXPECT_FALSE(same_file(m, f));
  f.ino = 0;
  m.ino = 0;
  EXPECT_FALSE(same_file(m, f)) << "anonymous memory maps no fd's file";
}

// Records of writers before format 1.4 have only `dev`, encoded one way in
// VMA records and another in fd records; both read as the same device.
TEST(FileIdentity, OlderRecordsDeriveMajorAndMinor) {
  VmaRecord m{};
  m.dev = (u64(8) << 8) | 3;
  m.ino = 77;
  EXPECT_EQ(file_identity(m), (FileIdentity{8, 3, 77}));
  FdRecord f{};
  f.dev = makedev(8, 3);
  f.ino = 77;
  EXPECT_EQ(file_identity(f), (FileIdentity{8, 3, 77}));
  EXPECT_TRUE(same_file(m, f));
  StoredFileRecord s{};
  s.dev = makedev(0, 300);
  s.ino = 5;
  EXPECT_EQ(file_identity(s), (FileIdentity{0, 300, 5}));
}

// A minor above 255 (overlayfs, btrfs subvolumes, FUSE: anonymous devices
// 0:N): st_dev packs it differently from (major << 8) | minor, so comparing
// the raw `dev` fields of a VMA and an fd missed the match.
TEST(FileIdentity, LargeMinorMatchesAcrossRecordKinds) {
  VmaRecord m = mapping(0, 300, 9);
  FdRecord f = open_file(makedev(0, 300), 9);
  EXPECT_NE(m.dev, f.dev);
  EXPECT_TRUE(same_file(m, f));
}
