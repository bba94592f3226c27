#include "holdd/control/health_check.h"

#include <algorithm>
#include <vector>

#include "holdd/base/clock.h"

namespace holdd {

namespace {

const char* code_name(int code) {
  switch (code) {
    case HealthReport::kOk: return "OK";
    case HealthReport::kWarning: return "WARNING";
    case HealthReport::kCritical: return "CRITICAL";
    default: return "UNKNOWN";
  }
}

std::string human(int64_t seconds) { return format_duration(std::chrono::seconds(seconds)); }

// Collects problems and keeps the worst code.
struct Findings {
  int code = HealthReport::kOk;
  std::vector<std::string> problems;
  void raise(int c, std::string problem) {
    code = std::max(code, c);
    problems.push_back(std::move(problem));
  }
};

}  // namespace

HealthReport evaluate_health(const DaemonSnapshot& s, const HealthThresholds& t) {
  Findings f;
  const int64_t held_age = s.held.messages > 0 ? s.age_seconds(s.held.oldest_arrival_us) : 0;
  const int64_t warn_age = t.warn_age.count();
  const int64_t crit_age = t.crit_age.count();

  if (s.held.messages > 0 && held_age > crit_age) {
    f.raise(HealthReport::kCritical, "held mail " + human(held_age) + " old (critical after " +
                                         human(crit_age) + ")");
  } else if (s.held.messages > 0 && held_age > warn_age) {
    f.raise(HealthReport::kWarning, "held mail " + human(held_age) + " old (warning after " +
                                        human(warn_age) + ")");
  }
  if (s.spool.disk_free < s.min_free_disk) {
    f.raise(HealthReport::kCritical, "disk free " + std::to_string(s.spool.disk_free) +
                                         " B below min_free_disk: intake answers 452");
  } else if (s.spool.disk_free < 2 * s.min_free_disk) {
    f.raise(HealthReport::kWarning, "disk free " + std::to_string(s.spool.disk_free) +
                                        " B below twice min_free_disk");
  }
  if (s.parked > 0) {
    f.raise(HealthReport::kWarning, std::to_string(s.parked) +
                                        " parked (upstream refused with 5xx; fix, then holdctl retry)");
  }
  if (s.late > 0) {
    f.raise(HealthReport::kWarning,
            std::to_string(s.late) + " undelivered for over " + human(s.warn_after.count()) +
                " (oldest " + human(s.age_seconds(s.oldest_late_clock_us)) + ")");
  }
  // The old server is quiet when nothing went to it AND nothing came from it
  // ([upstream.old] forwarders) for the duration (SPEC "The old server").
  const int64_t old_relay_us = s.last_relay_us[static_cast<size_t>(UpstreamKind::kOld)];
  const int64_t old_forward_us = s.last_forwarded_by_old_us;
  auto seconds_since = [&](int64_t us) -> int64_t { return us == 0 ? -1 : s.age_seconds(us); };
  const int64_t old_quiet_for = seconds_since(std::max(old_relay_us, old_forward_us));
  if (t.old_quiet) {
    const std::pair<int64_t, const char*> directions[] = {
        {seconds_since(old_relay_us), "old server still receiving: last relay "},
        {seconds_since(old_forward_us), "old server still forwarding: last forward "}};
    for (const auto& [since, what] : directions) {
      if (since >= 0 && since < t.old_quiet->count()) {
        f.raise(HealthReport::kWarning,
                what + human(since) + " ago (quiet needs " + human(t.old_quiet->count()) + ")");
      }
    }
    if (s.queued_for_old > 0) {
      f.raise(HealthReport::kWarning,
              std::to_string(s.queued_for_old) + " queued for the old server (" +
                  std::to_string(s.old_mailboxes_with_mail) + " mailbox(es) in state old)");
    }
  }

  std::string summary;
  for (const std::string& p : f.problems) {
    if (!summary.empty()) summary += "; ";
    summary += p;
  }
  if (!summary.empty()) summary += "; ";
  summary += std::to_string(s.held.messages) + " held, " + std::to_string(s.queued.messages) +
             " queued, " + std::to_string(s.parked) + " parked";
  if (s.held.messages > 0) summary += ", oldest held " + human(held_age);
  if (t.old_quiet && f.code == HealthReport::kOk) {
    summary += old_quiet_for < 0 ? ", nothing ever relayed to the old server"
                                 : ", old server quiet for " + human(old_quiet_for);
  }
  if (s.paused) summary += ", relaying paused";

  // Perfdata: 'label'=value[UOM];warn;crit;min;max. "N:" is a range whose alert
  // is below N (disk), "0" alerts on anything above 0 (parked).
  const std::string n = std::to_string(s.min_free_disk);
  const std::string n2 = std::to_string(2 * s.min_free_disk);
  std::string perf = "held=" + std::to_string(s.held.messages) + ";;;0" +
                     " held_oldest_age=" + std::to_string(held_age) + "s;" +
                     std::to_string(warn_age) + ";" + std::to_string(crit_age) + ";0" +
                     " parked=" + std::to_string(s.parked) + ";0;;0" +
                     " queued=" + std::to_string(s.queued.messages) + ";;;0" +
                     " deferred_old=" + std::to_string(s.late) + ";0;;0" +
                     " disk_free=" + std::to_string(s.spool.disk_free) + "B;" + n2 + ":;" + n + ":;0";
  if (t.old_quiet && old_quiet_for >= 0) {  // never relayed: no value to graph
    perf += " old_quiet=" + std::to_string(std::max<int64_t>(old_quiet_for, 0)) + "s;" +
            std::to_string(t.old_quiet->count()) + ":;;0";
  }

  HealthReport r;
  r.code = f.code;
  r.line = std::string("HOLDD ") + code_name(f.code) + " - " + summary + " | " + perf;
  return r;
}

}  // namespace holdd
