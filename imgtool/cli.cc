#include "cli.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ckpt::tool {

int fail(const std::string &cmd, const std::string &message) {
  std::fprintf(stderr, "imgtool %s: %s\n", cmd.c_str(), message.c_str());
  return 1;
}

bool Args::has(const std::string &name) const {
  for (const auto &[n, v] : options)
    if (n == name) return true;
  return false;
}

std::optional<std::string> Args::get(const std::string &name) const {
  for (const auto &[n, v] : options)
    if (n == name) return v;
  return std::nullopt;
}

std::optional<Args> parse_args(const std::string &cmd, int argc, char **argv, int first,
                               const std::vector<OptionSpec> &specs) {
  Args args;
  bool only_positional = false;
  for (int i = first; i < argc; i++) {
    std::string a = argv[i];
    if (only_positional || a == "-" || a.empty() || a[0] != '-') {
      args.positional.push_back(a);
      continue;
    }
    if (a == "--") {
      only_positional = true;
      continue;
    }
    std::string value;
    bool inline_value = false;
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      inline_value = true;
    }
    const OptionSpec *spec = nullptr;
    for (const OptionSpec &s : specs)
      if (a == s.name || (!s.alias.empty() && a == s.alias)) spec = &s;
    if (!spec) {
      fail(cmd, "unknown option '" + a + "' (see 'imgtool " + cmd + " --help')");
      return std::nullopt;
    }
    if (spec->takes_value && !inline_value) {
      if (i + 1 >= argc) {
        fail(cmd, "option " + spec->name + " needs a value");
        return std::nullopt;
      }
      value = argv[++i];
    } else if (!spec->takes_value && inline_value) {
      fail(cmd, "option " + spec->name + " takes no value");
      return std::nullopt;
    }
    args.options.emplace_back(spec->name, value);
  }
  return args;
}

std::variant<Args, int> parse_command(const std::string &cmd, int argc, char **argv, std::vector<OptionSpec> specs,
                                      const char *help) {
  specs.push_back({"--help", false, "-h"});
  auto args = parse_args(cmd, argc, argv, 2, specs);
  if (!args) return 2;
  if (args->has("--help")) {
    std::fputs(help, stdout);
    return 0;
  }
  return std::move(*args);
}

int run_command(const CommandSpec &spec, int argc, char **argv, const std::function<int(const Args &)> &body) {
  auto parsed = parse_command(spec.name, argc, argv, spec.options, spec.help);
  if (auto *code = std::get_if<int>(&parsed)) return *code;
  const Args &args = std::get<Args>(parsed);
  if (args.positional.size() < spec.min_words || args.positional.size() > spec.max_words)
    return fail(spec.name, "expected " + spec.expected + " (see 'imgtool " + spec.name + " --help')");
  return body(args);
}

int index_of_double_dash(int argc, char **argv) {
  for (int i = 2; i < argc; i++)
    if (std::strcmp(argv[i], "--") == 0) return i;
  return argc;
}

std::optional<int> parse_pid(const std::string &text) {
  char *end = nullptr;
  long pid = std::strtol(text.c_str(), &end, 10);
  // PID_MAX_LIMIT is 2^22 on 64-bit; 0x3fffffff is the most a pid field can hold.
  if (text.empty() || !end || *end || pid <= 0 || pid > 0x3fffffff) return std::nullopt;
  return static_cast<int>(pid);
}

}  // namespace ckpt::tool
