#pragma once
// `holdctl check`: the daemon's health as one monitoring-plugin line (Nagios /
// Icinga plugin conventions): "HOLDD WARNING - <what is wrong> | <perfdata>" and a
// code 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
//
// Rules (the worst one wins):
//   parked messages                          WARNING  (a 5xx needs a human: fix, `retry`)
//   held mail older than warn_age / crit_age WARNING / CRITICAL (default 24h / 72h:
//                                            a mailbox copy rarely takes a day)
//   deliverable mail waiting > warn_after    WARNING  (clock starts on release)
//   disk free < 2 x min_free_disk / < min    WARNING / CRITICAL (intake answers 452)
//   with old_quiet: last relay to the old server less than old_quiet ago, or mail
//   queued for mailboxes still in state old WARNING  (not yet safe to switch it off)
#include <chrono>
#include <optional>
#include <string>

#include "holdd/control/snapshot.h"

namespace holdd {

struct HealthThresholds {
  std::chrono::seconds warn_age{24 * 3600};
  std::chrono::seconds crit_age{72 * 3600};
  std::optional<std::chrono::seconds> old_quiet;
};

struct HealthReport {
  enum Code { kOk = 0, kWarning = 1, kCritical = 2, kUnknown = 3 };
  int code = kOk;
  std::string line;  // "HOLDD OK - ... | perfdata", no newline
};

// Pure: everything it needs is in the snapshot (now_us included).
HealthReport evaluate_health(const DaemonSnapshot& s, const HealthThresholds& t);

}  // namespace holdd
