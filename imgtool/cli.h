// What every imgtool subcommand shares: argument scanning and the one-line
// failure report of the contract.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace ckpt::tool {

/// Prints "imgtool CMD: MESSAGE" on stderr and returns 1, the exit code.
int fail(const std::string &cmd, const std::string &message);

/// Parsed command line of one subcommand: --flag, --opt VALUE / --opt=VALUE,
/// and positional words. Unknown options are errors, never ignored.
struct Args {
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> options;  // name -> value ("" for flags)

  bool has(const std::string &name) const;
  std::optional<std::string> get(const std::string &name) const;
};

/// Options a subcommand accepts; `takes_value` ones consume the next word.
struct OptionSpec {
  std::string name;       // e.g. "--json"
  bool takes_value = false;
  std::string alias;      // e.g. "-o"
};

/// Scans argv[first..]. On error, returns nullopt after printing the error.
std::optional<Args> parse_args(const std::string &cmd, int argc, char **argv, int first,
                               const std::vector<OptionSpec> &specs);

/// The start every subcommand shares: parses argv[2..argc) with `specs`
/// and --help/-h, and prints `help` on stdout for --help. Returns the
/// arguments, or the exit code to return at once: 0 after --help, 2 after
/// an option error (printed by parse_args).
std::variant<Args, int> parse_command(const std::string &cmd, int argc, char **argv, std::vector<OptionSpec> specs,
                                      const char *help);

/// What a subcommand takes: its name, --help text, options, and from
/// `min_words` to `max_words` positional words, `expected` saying which in
/// the error ("expected exactly one FILE (see 'imgtool info --help')").
struct CommandSpec {
  std::string name;
  const char *help;
  std::vector<OptionSpec> options;
  size_t min_words = 1, max_words = 1;
  std::string expected = "exactly one FILE";
};

/// parse_command with `spec`'s options, then the count of positional
/// words; runs `body` with the arguments and returns its exit code, or
/// returns 0 after --help, 2 after an option error, 1 after a wrong count.
int run_command(const CommandSpec &spec, int argc, char **argv, const std::function<int(const Args &)> &body);

/// Where the words for gdb start: the index of the first "--" after the
/// subcommand, or argc.
int index_of_double_dash(int argc, char **argv);

/// A pid as given on the command line (decimal, 1..2^30-1), or nullopt.
std::optional<int> parse_pid(const std::string &text);

int cmd_binfmt(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_gdb(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_extract(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_merge(int argc, char **argv);

}  // namespace ckpt::tool
