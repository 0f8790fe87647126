// Errors as values, in the spirit of llvm::Expected: a library call returns
// either its result or an Error carrying one human-readable line. Nothing in
// libimg throws across its boundary; callers decide how to report.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace ckpt::img {

/// One failure, described in a single line that names where it happened
/// (a byte offset, a record index, a path) and what was wrong.
class Error {
 public:
  explicit Error(std::string message) : message_(std::move(message)) {}
  const std::string &message() const { return message_; }

  /// Prefixes context, e.g. Error("bad size").context("note 3") gives
  /// "note 3: bad size".
  Error context(const std::string &where) const { return Error(where + ": " + message_); }

 private:
  std::string message_;
};

/// printf-style construction of an Error.
template <typename... Args>
Error make_error(const char *fmt, Args... args) {
  if constexpr (sizeof...(Args) == 0) {
    return Error(fmt);
  } else {
    int n = std::snprintf(nullptr, 0, fmt, args...);
    std::string s(n > 0 ? static_cast<size_t>(n) : 0, '\0');
    std::snprintf(s.data(), s.size() + 1, fmt, args...);
    return Error(std::move(s));
  }
}

/// Reading the value of an Expected that holds an error is a bug in the
/// caller, not a condition of the input: it ends the program with one line
/// naming the error that was ignored (std::get would throw
/// std::bad_variant_access across the library boundary instead).
[[noreturn]] inline void expected_value_missing(const Error &ignored) {
  std::fprintf(stderr, "internal error: a result was used without checking it: %s\n", ignored.message().c_str());
  std::fflush(stderr);
  std::abort();
}

/// Either a T or an Error.
template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}
  Expected(Error err) : v_(std::move(err)) {}

  explicit operator bool() const { return v_.index() == 0; }
  T &operator*() { return value(); }
  const T &operator*() const { return value(); }
  T *operator->() { return &value(); }
  const T *operator->() const { return &value(); }
  /// The error; a success has none, and says so.
  const Error &error() const {
    static const Error kNone("no error");
    const Error *e = std::get_if<1>(&v_);
    return e ? *e : kNone;
  }
  T take() { return std::move(value()); }

 private:
  T &value() {
    T *v = std::get_if<0>(&v_);
    if (!v) expected_value_missing(*std::get_if<1>(&v_));
    return *v;
  }
  const T &value() const {
    const T *v = std::get_if<0>(&v_);
    if (!v) expected_value_missing(*std::get_if<1>(&v_));
    return *v;
  }

  std::variant<T, Error> v_;
};

/// Success or an Error, for calls that return nothing.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error err) : err_(std::move(err)), failed_(true) {}
  static Status ok() { return Status(); }

  explicit operator bool() const { return !failed_; }
  const Error &error() const { return err_; }

 private:
  Error err_{""};
  bool failed_ = false;
};

}  // namespace ckpt::img

/// Early return of an Error from a Status or Expected expression.
#define CKPT_TRY(expr)                                   \
  do {                                                   \
    auto ckpt_try_result_ = (expr);                      \
    if (!ckpt_try_result_) return ckpt_try_result_.error(); \
  } while (0)

/// Early return of an Error from an Expected expression; otherwise its
/// value is moved into `lhs`.
#define CKPT_TRY_ASSIGN(lhs, expr)                       \
  do {                                                   \
    auto ckpt_try_result_ = (expr);                      \
    if (!ckpt_try_result_) return ckpt_try_result_.error(); \
    lhs = ckpt_try_result_.take();                       \
  } while (0)
