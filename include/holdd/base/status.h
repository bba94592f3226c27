#pragma once
// Status and Result<T>: errors are values (LevelDB's shape). Every failure in holdd
// ends as an SMTP reply or a relay decision, so the question a Status answers is
// "temporary or permanent?". Exceptions mean a bug and stop at the session.
#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace holdd {

class Status {
 public:
  enum class Code {
    kOk,
    kNotFound,    // no such mailbox / message
    kInvalid,     // the caller asked for something malformed or impossible
    kPermanent,   // the peer or the request will never succeed as is (5xx)
    kTemporary,   // try again later (4xx)
    kNoSpace,     // disk or LMDB map full, below min_free_disk (452 4.3.1)
    kIOError,     // local I/O failure (451 4.3.0)
    kTimeout,
    kCancelled,   // shutdown or the peer went away
  };

  Status() = default;
  static Status ok() { return {}; }
  static Status not_found(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status invalid(std::string m) { return {Code::kInvalid, std::move(m)}; }
  static Status permanent(std::string m) { return {Code::kPermanent, std::move(m)}; }
  static Status temporary(std::string m) { return {Code::kTemporary, std::move(m)}; }
  static Status no_space(std::string m) { return {Code::kNoSpace, std::move(m)}; }
  static Status io_error(std::string m) { return {Code::kIOError, std::move(m)}; }
  static Status timeout(std::string m) { return {Code::kTimeout, std::move(m)}; }
  static Status cancelled(std::string m) { return {Code::kCancelled, std::move(m)}; }

  bool is_ok() const { return code_ == Code::kOk; }
  bool is_permanent() const { return code_ == Code::kPermanent || code_ == Code::kInvalid; }
  bool is_temporary() const { return !is_ok() && !is_permanent(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// A T, or a non-OK Status. (std::expected<T, Status> once on C++23.)
template <class T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) { assert(!status_.is_ok()); }  // NOLINT

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Status& status() const { return status_; }
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace holdd
