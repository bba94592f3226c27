#pragma once
// holdctl's exit codes (SPEC "Binaries"), and the two ways a command stops before
// its answer is printed. A monitoring-plugin verb (`check`) exits 0 to 3 as its
// result says instead, and turns a usage error into UNKNOWN (3).
#include <string>

namespace holdd::cli {

enum Exit { kOk = 0, kRefused = 1, kUsage = 2, kUnreachable = 3 };

// A usage error found after CLI11 parsed the command line (an unreadable --file,
// --timeout without --wait, a bad duration): holdctl prints "holdctl: <message>"
// and exits kUsage.
struct UsageError {
  std::string message;
};

// An exit whose output is already printed.
struct ExitNow {
  int code;
};

}  // namespace holdd::cli
