#include "holdd/auth/verdict.h"

namespace holdd::auth {

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::kNone: return "none";
    case Verdict::kPass: return "pass";
    case Verdict::kFail: return "fail";
    case Verdict::kSoftfail: return "softfail";
    case Verdict::kNeutral: return "neutral";
    case Verdict::kTemperror: return "temperror";
    case Verdict::kPermerror: return "permerror";
  }
  return "permerror";
}

}  // namespace holdd::auth
