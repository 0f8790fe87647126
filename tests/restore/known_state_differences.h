// The differences between a dumped process and its restored copy that are
// known bugs, each being fixed under its issue item. A difference the list
// does not name fails the test; deleting an entry is how its fix is proven
// (the restore tests then fail if the difference is still there).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace ckpt::restoretest {

struct KnownStateDifference {
  const char *issue;    ///< the issue item it belongs to, "8: ..."
  const char *pattern;  ///< ECMAScript regex matched against a whole diff_states() line
  bool lazy_only = false;  ///< applies only to restores with --lazy
  const char *only_in_test = nullptr;  ///< applies only in the test of this name
};

/// The list (known_state_differences.cc).
const std::vector<KnownStateDifference> &known_state_differences();

struct StateComparison {
  std::vector<std::string> unexpected;  ///< differences no entry names
  /// The others, by the issue of the entry that names them.
  std::map<std::string, std::vector<std::string>> known;
};

/// Sorts differences into known and unexpected, for a restore with or
/// without --lazy in the test named `test`.
StateComparison compare_with_known_differences(const std::vector<std::string> &differences, bool lazy,
                                               const std::string &test);


/// Indented lines, at most `max` of them and a count of the rest.
std::string join_lines(const std::vector<std::string> &lines, size_t max = 1000);

}  // namespace ckpt::restoretest
