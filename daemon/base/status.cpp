#include "holdd/base/status.h"

namespace holdd {

std::string Status::to_string() const {
  const char* name = "ok";
  switch (code_) {
    case Code::kOk: return "ok";
    case Code::kNotFound: name = "not found"; break;
    case Code::kInvalid: name = "invalid"; break;
    case Code::kPermanent: name = "permanent"; break;
    case Code::kTemporary: name = "temporary"; break;
    case Code::kNoSpace: name = "no space"; break;
    case Code::kIOError: name = "I/O error"; break;
    case Code::kTimeout: name = "timeout"; break;
    case Code::kCancelled: name = "cancelled"; break;
  }
  return message_.empty() ? name : std::string(name) + ": " + message_;
}

}  // namespace holdd
