#include "known_state_differences.h"

#include <regex>

namespace ckpt::restoretest {

const std::vector<KnownStateDifference> &known_state_differences() {
  static const std::vector<KnownStateDifference> list = {
      // Found by this comparison; no issue item yet. execve sets
      // PF_RANDOMIZE unless the personality has ADDR_NO_RANDOMIZE; a
      // restored task keeps imgtool's flag (no effect until its next
      // execve, which recomputes it; the personality itself is restored).
      {"8 (found by the state comparison): PF_RANDOMIZE under ADDR_NO_RANDOMIZE",
       R"((task\.\d+\.)?stat\.flags: 0 -> 4194304)"},
      // Not a bug (docs/DECISIONS.md): writing loginuid makes the kernel
      // assign the next audit sessionid, which cannot be chosen; the
      // settings program sets a loginuid, and restore sets it again.
      {"17: the audit sessionid a loginuid write assigns", R"(sessionid: \d+ -> \d+)", false, "ProcessSettings"},
      {"17: the audit sessionid a loginuid write assigns", R"(sessionid: \d+ -> \d+)", false,
       "ProcessSettingsInOtherCgroups"},
      {"17: the audit sessionid a loginuid write assigns", R"(sessionid: \d+ -> \d+)", false,
       "ProcessSettingsInMissingCgroupsMadeAgain"},
      // Not a bug (decision 118): a name unlinked while the file kept a
      // hard link beside it is reopened through that link, the same inode;
      // /proc then names the link, and the inode is no longer a deleted
      // file's (compared as "#N" by first sight) but a linked one's.
      {"17: an unlinked name reopened through its hard link", R"(fd\.\d+\.link: (.*)/first-name \(deleted\) -> \1/second-name)",
       false, "UnlinkedFilesKeepOwnerTimeHolesAndLinks"},
      {"17: an unlinked name reopened through its hard link", R"(fd\.\d+\.ino: #\d+ -> \d+)", false,
       "UnlinkedFilesKeepOwnerTimeHolesAndLinks"},
      // Not a bug: an O_TMPFILE file is named by its inode number in /proc
      // ("#INODE (deleted)"), and a file made again has a new inode; its
      // first-sight number shifts with the hard-linked one's above (the
      // program checks the bytes, flags, position and linkability itself).
      {"13: an O_TMPFILE file made again is a new inode", R"(fd\.\d+\.link: (.*)/#\d+ \(deleted\) -> \1/#\d+ \(deleted\))",
       false, "UnlinkedFilesKeepOwnerTimeHolesAndLinks"},
      {"13: an O_TMPFILE file made again is a new inode", R"(fd\.\d+\.ino: #\d+ -> #\d+)", false,
       "UnlinkedFilesKeepOwnerTimeHolesAndLinks"},
      // Not a bug (decision 141): an own IPC namespace is made again, a new
      // namespace with a new inode. It often gets the original's number
      // (freed by --kill, and the kernel reuses the lowest free one), but
      // not when a test running beside it made a namespace meanwhile.
      {"13: an own IPC namespace is a new namespace", R"(ns\.ipc: ipc:\[\d+\] -> ipc:\[\d+\])", false,
       "OwnNamespaceComesBackWithEveryObject"},
      // Not a bug (docs/DECISIONS.md 126): the dirty tracker a dump leaves
      // in the process it lets run on (a userfaultfd marked O_APPEND, its
      // mappings registered, "uw") is the dumper's, never restored: it is
      // in the process compared before a --kill dump taken after an
      // earlier one, and must not be in the restored process.
      {"11: the dump's dirty tracker is not restored", R"(fd\.\d+\.link: anon_inode:\[userfaultfd\] -> \(absent\))"},
      {"11: the dump's dirty tracker is not restored", R"(fd\.\d+\.flags: 0200[246]000 -> \(absent\))"},
      {"11: the dump's dirty tracker is not restored",
       R"(fd\.\d+\.(pos|mnt_id|ino|pending|total|API): \S+ -> \(absent\))"},
      {"11: the dump's dirty tracker is not restored", R"(maps\.\S+: (.*) VmFlags: (.*) uw(.*) -> \1 VmFlags: \2\3)"},
      // Its epoch (DECISIONS 189): a memfd of the dumper's name beside it,
      // O_RDWR|O_APPEND|O_CLOEXEC|O_LARGEFILE.
      {"11: the dump's dirty tracker is not restored",
       R"(fd\.\d+\.link: /memfd:ckpt-dirty-tracker \(deleted\) -> \(absent\))"},
      {"11: the dump's dirty tracker is not restored", R"(fd\.\d+\.flags: 0210[26]002 -> \(absent\))"},
      // Not a bug (decision 240): the test holds the lazy helper's
      // background copy back for an hour, so the VMAs it serves are still
      // registered on its userfaultfd ("um") when the state is compared.
      {"12: a lazy helper still serving its VMAs", R"(maps\.\S+: (.*) VmFlags: (.*)(.*) -> \1 VmFlags: \2 um\3)", true,
       "IsServedWhole/ByFaults"},
  };
  return list;
}

StateComparison compare_with_known_differences(const std::vector<std::string> &differences, bool lazy,
                                               const std::string &test) {
  auto applies = [&](const KnownStateDifference &k) {
    return (!k.lazy_only || lazy) && (!k.only_in_test || test == k.only_in_test);
  };
  static const std::vector<std::regex> patterns = [] {
    std::vector<std::regex> p;
    for (const KnownStateDifference &k : known_state_differences()) p.emplace_back(k.pattern);
    return p;
  }();
  StateComparison out;
  for (const std::string &line : differences) {
    size_t i = 0;
    while (i < patterns.size() &&
           (!applies(known_state_differences()[i]) || !std::regex_match(line, patterns[i])))
      i++;
    if (i == patterns.size())
      out.unexpected.push_back(line);
    else
      out.known[known_state_differences()[i].issue].push_back(line);
  }
  return out;
}

std::string join_lines(const std::vector<std::string> &lines, size_t max) {
  std::string out;
  for (size_t i = 0; i < lines.size() && i < max; i++) out += "  " + lines[i] + "\n";
  if (lines.size() > max) out += "  ... and " + std::to_string(lines.size() - max) + " more\n";
  return out;
}

}  // namespace ckpt::restoretest
