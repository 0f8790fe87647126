// The damaged corpus (damaged_corpus.h): every variant must be refused by the
// library (in process, the whole corpus) and by `imgtool verify` and
// `imgtool info` (as subprocesses, a sample): exit 1, not a signal, exactly
// one line on stderr, nothing on stdout.
#include <gtest/gtest.h>

#include <algorithm>
#include <dirent.h>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <ckpt/img/exec_form.h>
#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>
#include <ckpt/reader/validate.h>

#include "damaged_corpus.h"
#include "subprocess.h"

using namespace ckpt::test;
using namespace ckpt::img;

namespace {

const std::string kImgtool = IMGTOOL_PATH;
const std::string kCorpusDir = CKPT_DAMAGED_CORPUS_DIR;

CorpusOptions default_options() {
  CorpusOptions o;
  o.base.threads = 2;
  o.base.segments = 3;
  return o;
}

// What `imgtool info` needs from the library: open, checksums, both decoders.
// Returns the first error, or "" if the bytes were accepted.
std::string library_error(std::span<const u8> bytes) {
  auto r = ImageReader::from_bytes(bytes);
  if (!r) return r.error().message();
  Status s = verify_integrity(*r);
  if (!s) return s.error().message();
  auto c = decode_core(*r);
  if (!c) return c.error().message();
  auto v = decode_ckpt(*r);
  if (!v) return v.error().message();
  return "";
}

// What `imgtool verify` checks for one image (no parent chain).
std::string validate_error(std::span<const u8> bytes) {
  auto r = ImageReader::from_bytes(bytes);
  if (!r) return r.error().message();
  Status s = ckpt::reader::validate_one(*r);
  return s ? "" : s.error().message();
}

// Runs `imgtool CMD FILE` and returns "" if it refused the variant `v` as
// the contract says (exit 1, one line on stderr, nothing on stdout) and
// for its damage (refusal_mismatch), else what was wrong. FILE's name
// must not say what the damage is, or the line would name it for sure.
std::string imgtool_refuses(const std::string &cmd, const std::string &file, const Variant &v) {
  RunResult r = run({kImgtool, cmd, file});
  if (!r.exited) return "imgtool " + cmd + ": " + r.status();
  if (r.exit_code != 1) return "imgtool " + cmd + " exited " + std::to_string(r.exit_code) + " (want 1)";
  if (!r.out.empty()) return "imgtool " + cmd + " printed on stdout: " + r.out.substr(0, 200);
  auto lines = r.err_lines();
  if (lines.size() != 1) return "imgtool " + cmd + " printed " + std::to_string(lines.size()) + " stderr lines: " + r.err.substr(0, 500);
  if (lines[0].rfind("imgtool " + cmd + ": ", 0) != 0) return "imgtool " + cmd + " stderr line is: " + lines[0];
  if (std::string why = refusal_mismatch(v, lines[0]); !why.empty()) return "imgtool " + cmd + ": " + why;
  return "";
}

}  // namespace

TEST(DamagedCorpus, BaseImageIsGood) {
  // Otherwise every "rejection" below would prove nothing.
  CorpusOptions o = default_options();
  auto bytes = encode_image(corpus_base_image(o.base));
  ASSERT_FALSE(bytes.empty());
  EXPECT_EQ(library_error(bytes), "");
  EXPECT_EQ(validate_error(bytes), "");
  TempDir d;
  ASSERT_TRUE(write_file(d.file("base.ckpt"), bytes));
  RunResult v = run({kImgtool, "verify", "--intact", d.file("base.ckpt")});
  EXPECT_TRUE(v.exited && v.exit_code == 0) << v.status() << " " << v.err;
  RunResult i = run({kImgtool, "info", d.file("base.ckpt")});
  EXPECT_TRUE(i.exited && i.exit_code == 0) << i.status() << " " << i.err;
}

TEST(DamagedCorpus, ResealIsFaithful) {
  // Resealing an undamaged image changes nothing; resealing after a benign
  // change (a byte of memory) makes it valid again. So a resealed variant is
  // refused for its damage, not for a botched reseal.
  CorpusOptions o = default_options();
  auto bytes = encode_image(corpus_base_image(o.base));
  auto r = ImageReader::from_bytes(bytes);
  ASSERT_TRUE(r);
  u64 integrity = r->phdrs().back().p_offset;
  auto copy = bytes;
  ASSERT_TRUE(reseal(copy, integrity));
  EXPECT_TRUE(copy == bytes);
  u64 data = r->phdrs()[1].p_offset + 5;
  copy[data] ^= 0x55;
  EXPECT_NE(library_error(copy), "") << "a changed byte of memory must fail its checksum";
  ASSERT_TRUE(reseal(copy, integrity));
  EXPECT_EQ(library_error(copy), "");
  EXPECT_EQ(validate_error(copy), "");
  copy[64 + 56 + 9] ^= 1;  // PT_LOAD 1's p_offset, changed after the reseal
  EXPECT_NE(library_error(copy), "");
}

TEST(DamagedCorpus, EveryVariantRejectedInProcess) {
  CorpusOptions o = default_options();
  std::map<std::string, size_t> per_kind;
  std::vector<std::string> accepted_info, accepted_verify, misrefused;
  std::set<std::string> names;
  size_t total = 0;
  for_each_variant(o, [&](const Variant &v) {
    total++;
    per_kind[std::string(kind_name(v.kind)) + (v.resealed ? " (resealed)" : "")]++;
    EXPECT_TRUE(names.insert(v.name).second) << "duplicate variant name " << v.name;
    std::string info = library_error(v.bytes), verify = validate_error(v.bytes);
    if (info.empty()) accepted_info.push_back(v.name);
    else if (std::string why = refusal_mismatch(v, info); !why.empty()) misrefused.push_back(v.name + " (info): " + why);
    if (verify.empty()) accepted_verify.push_back(v.name);
    else if (std::string why = refusal_mismatch(v, verify); !why.empty())
      misrefused.push_back(v.name + " (verify): " + why);
  });
  std::string summary;
  for (auto &[k, n] : per_kind) summary += " " + k + ":" + std::to_string(n);
  RecordProperty("variants", std::to_string(total));
  std::printf("damaged corpus: %zu variants:%s\n", total, summary.c_str());
  EXPECT_GT(total, 5000u);
  EXPECT_GT(per_kind["truncated"], 20u);
  EXPECT_GT(per_kind["absurd (resealed)"], 50u);
  EXPECT_GT(per_kind["semantic"], 20u);
  EXPECT_GT(per_kind["xnum (resealed)"], 5u);
  auto show = [](const std::vector<std::string> &v) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < 40; i++) s += "\n  " + v[i];
    if (v.size() > 40) s += "\n  ... and " + std::to_string(v.size() - 40) + " more";
    return s;
  };
  EXPECT_TRUE(accepted_info.empty()) << accepted_info.size()
                                     << " damaged variants were accepted by open + verify_integrity + decode:"
                                     << show(accepted_info);
  EXPECT_TRUE(accepted_verify.empty()) << accepted_verify.size()
                                       << " damaged variants were accepted by validate_one:" << show(accepted_verify);
  EXPECT_TRUE(misrefused.empty()) << misrefused.size() << " damaged variants were refused for another reason than "
                                  << "their damage:" << show(misrefused);
}

TEST(DamagedCorpus, SampleRejectedByImgtool) {
  CorpusOptions o = default_options();
  // Pass 1: count the flips, to sample them evenly.
  size_t flips = 0;
  for_each_variant(o, [&](const Variant &v) { flips += v.kind == DamageKind::Flipped; });
  const size_t stride = std::max<size_t>(1, flips / 30);
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::vector<std::string> failures;
  size_t flip_index = 0, run_count = 0, resealed_absurd = 0;
  for_each_variant(o, [&](const Variant &v) {
    bool take = false;
    switch (v.kind) {
      case DamageKind::Flipped: {
        // Always the ckpt marker and version bytes of e_ident, else a stride.
        bool marker = v.name.rfind("flipped-at-9-", 0) == 0 || v.name.rfind("flipped-at-10-", 0) == 0 ||
                      v.name.rfind("flipped-at-11-", 0) == 0 || v.name.rfind("flipped-at-12-", 0) == 0 ||
                      v.name.rfind("flipped-at-13-", 0) == 0;
        take = marker || flip_index++ % stride == 0;
        break;
      }
      case DamageKind::Absurd:
        // Every resealed one (the structural checks), every 3rd raw one.
        take = v.resealed || (resealed_absurd++ % 3 == 0);
        break;
      default:
        take = true;
    }
    if (!take) return;
    std::string file = dir.file("variant.ckpt");
    if (!write_file(file, v.bytes)) {
      failures.push_back(v.name + ": could not write the variant");
      return;
    }
    run_count++;
    for (const char *cmd : {"verify", "info"}) {
      std::string why = imgtool_refuses(cmd, file, v);
      if (!why.empty()) failures.push_back(v.name + ": " + why);
    }
    unlink(file.c_str());
  });
  std::printf("ran imgtool verify and info on %zu damaged variants\n", run_count);
  EXPECT_GE(run_count, 100u);
  std::string all;
  for (size_t i = 0; i < failures.size() && i < 40; i++) all += "\n  " + failures[i];
  EXPECT_TRUE(failures.empty()) << failures.size() << " failures:" << all;
}

TEST(DamagedCorpus, CommittedSeedsAreRejectedForTheirDamage) {
  // tests/corpus/damaged/ holds a few variants written by make_damaged_corpus
  // for the fuzzers, named as the generator names them. Each must still be
  // refused, and for the damage its variant of that name says.
  std::map<std::string, std::string> seeds;  // name -> path
  if (DIR *d = opendir(kCorpusDir.c_str())) {
    while (dirent *e = readdir(d))
      if (e->d_name[0] != '.' && std::string(e->d_name) != "README.md") seeds[e->d_name] = kCorpusDir + "/" + e->d_name;
    closedir(d);
  }
  ASSERT_GE(seeds.size(), 5u) << "expected the committed seeds in " << kCorpusDir;
  std::map<std::string, Variant> made;
  for_each_variant(seed_corpus_options(), [&](const Variant &v) {
    if (seeds.count(v.name)) made[v.name] = v;
  });
  TempDir dir;
  std::string file = dir.file("seed.ckpt");
  for (const auto &[name, path] : seeds) {
    SCOPED_TRACE(path);
    auto it = made.find(name);
    ASSERT_NE(it, made.end()) << "the generator makes no variant named " << name
                              << " (regenerate: cmake --build build --target damaged_corpus)";
    const Variant &v = it->second;
    auto bytes = read_file(path);
    std::string info = library_error(bytes), verify = validate_error(bytes);
    ASSERT_NE(info, "");
    ASSERT_NE(verify, "");
    EXPECT_EQ(refusal_mismatch(v, info), "");
    EXPECT_EQ(refusal_mismatch(v, verify), "");
    ASSERT_TRUE(write_file(file, bytes));
    EXPECT_EQ(imgtool_refuses("verify", file, v), "");
    EXPECT_EQ(imgtool_refuses("info", file, v), "");
  }
}

// Images written before format 1.2 keep their program headers at 64, with
// no room for the exec form's header: still read and verified, and refused
// by the exec-form conversion with one line.
TEST(OldLayout, ProgramHeadersAt64StillReadButCannotBecomeExecForm) {
  std::vector<u8> b = encode_image(corpus_base_image({}));
  ASSERT_FALSE(b.empty());
  Elf64_Ehdr eh;
  std::memcpy(&eh, b.data(), sizeof eh);
  ASSERT_EQ(eh.e_phoff, kPhdrOffset);
  size_t table = size_t(eh.e_phnum) * sizeof(Elf64_Phdr);
  Elf64_Phdr last;
  std::memcpy(&last, b.data() + kPhdrOffset + table - sizeof last, sizeof last);
  // The old writer's layout: headers at 64, notes where they were (the
  // program header table's old end is padding before them).
  std::memmove(b.data() + 64, b.data() + kPhdrOffset, table);
  std::memset(b.data() + 64 + table, 0, kPhdrOffset - 64);
  eh.e_phoff = 64;
  std::memcpy(b.data(), &eh, sizeof eh);
  ASSERT_TRUE(reseal(b, last.p_offset));
  auto r = ImageReader::from_bytes(b);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_FALSE(r->exec_form());
  auto ok = verify_integrity(*r);
  EXPECT_TRUE(ok) << ok.error().message();
  const u8 not_a_launcher[64] = {};
  auto parts = make_exec_form({b.data(), sizeof eh}, b.size(), not_a_launcher);
  ASSERT_FALSE(parts);
  EXPECT_NE(parts.error().message().find("written before format 1.2"), std::string::npos) << parts.error().message();
}
