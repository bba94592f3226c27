#include "holdd/control/health_check.h"

#include <doctest/doctest.h>

using namespace holdd;

namespace {

constexpr int64_t kSecond = 1000000;
constexpr int64_t kHour = 3600 * kSecond;
constexpr int64_t kNow = 1800000000LL * kSecond;

// A healthy daemon: nothing queued, plenty of disk.
DaemonSnapshot healthy() {
  DaemonSnapshot s;
  s.now_us = kNow;
  s.started_us = kNow - 10 * kHour;
  s.min_free_disk = 2ull << 30;
  s.spool.disk_free = 100ull << 30;
  s.warn_after = std::chrono::hours(4);
  return s;
}

std::string summary_of(const HealthReport& r) { return r.line.substr(0, r.line.find(" | ")); }

}  // namespace

TEST_CASE("check: each rule raises the code it should, the worst one wins") {
  struct Case {
    const char* name;
    void (*setup)(DaemonSnapshot&, HealthThresholds&);
    int code;
    const char* says;  // part of the summary
  };
  const Case cases[] = {
      {"healthy", [](DaemonSnapshot&, HealthThresholds&) {}, HealthReport::kOk, "0 held, 0 queued, 0 parked"},
      {"parked", [](DaemonSnapshot& s, HealthThresholds&) { s.parked = 2; }, HealthReport::kWarning, "2 parked"},
      {"held young",
       [](DaemonSnapshot& s, HealthThresholds&) {
         s.held = {3, 300, 0, kNow - 2 * kHour};
       },
       HealthReport::kOk, "oldest held 2h"},
      {"held past warn age",
       [](DaemonSnapshot& s, HealthThresholds&) { s.held = {3, 300, 0, kNow - 25 * kHour}; },
       HealthReport::kWarning, "held mail 1d1h old (warning after 1d)"},
      {"held past crit age",
       [](DaemonSnapshot& s, HealthThresholds&) { s.held = {3, 300, 0, kNow - 73 * kHour}; },
       HealthReport::kCritical, "critical after 3d"},
      {"custom ages",
       [](DaemonSnapshot& s, HealthThresholds& t) {
         s.held = {1, 10, 0, kNow - 2 * kHour};
         t.warn_age = std::chrono::hours(1);
         t.crit_age = std::chrono::hours(3);
       },
       HealthReport::kWarning, "warning after 1h"},
      {"late delivery",
       [](DaemonSnapshot& s, HealthThresholds&) {
         s.late = 4;
         s.oldest_late_clock_us = kNow - 5 * kHour;
       },
       HealthReport::kWarning, "4 undelivered for over 4h (oldest 5h)"},
      {"disk below twice the minimum",
       [](DaemonSnapshot& s, HealthThresholds&) { s.spool.disk_free = 3ull << 30; }, HealthReport::kWarning,
       "below twice min_free_disk"},
      {"disk below the minimum",
       [](DaemonSnapshot& s, HealthThresholds&) { s.spool.disk_free = 1ull << 30; }, HealthReport::kCritical,
       "intake answers 452"},
      {"old quiet: never relayed",
       [](DaemonSnapshot&, HealthThresholds& t) { t.old_quiet = std::chrono::hours(72); }, HealthReport::kOk,
       "nothing ever relayed to the old server"},
      {"old quiet: quiet long enough",
       [](DaemonSnapshot& s, HealthThresholds& t) {
         s.last_relay_us[0] = kNow - 80 * kHour;
         t.old_quiet = std::chrono::hours(72);
       },
       HealthReport::kOk, "old server quiet for 3d8h"},
      {"old quiet: relayed recently",
       [](DaemonSnapshot& s, HealthThresholds& t) {
         s.last_relay_us[0] = kNow - 2 * kHour;
         t.old_quiet = std::chrono::hours(72);
       },
       HealthReport::kWarning, "old server still receiving: last relay 2h ago"},
      {"old quiet: relays quiet, but the old server forwarded recently",
       [](DaemonSnapshot& s, HealthThresholds& t) {
         s.last_relay_us[0] = kNow - 80 * kHour;
         s.last_forwarded_by_old_us = kNow - 3 * kHour;
         t.old_quiet = std::chrono::hours(72);
       },
       HealthReport::kWarning, "old server still forwarding: last forward 3h ago"},
      {"old quiet: both quiet long enough, the later one counts",
       [](DaemonSnapshot& s, HealthThresholds& t) {
         s.last_relay_us[0] = kNow - 100 * kHour;
         s.last_forwarded_by_old_us = kNow - 80 * kHour;
         t.old_quiet = std::chrono::hours(72);
       },
       HealthReport::kOk, "old server quiet for 3d8h"},
      {"old quiet: mail still queued for old mailboxes",
       [](DaemonSnapshot& s, HealthThresholds& t) {
         s.queued_for_old = 5;
         s.old_mailboxes_with_mail = 2;
         t.old_quiet = std::chrono::hours(72);
       },
       HealthReport::kWarning, "5 queued for the old server (2 mailbox(es) in state old)"},
      {"recent old relay without --old-quiet is fine",
       [](DaemonSnapshot& s, HealthThresholds&) { s.last_relay_us[0] = kNow - kSecond; }, HealthReport::kOk,
       "HOLDD OK"},
      {"critical beats warning",
       [](DaemonSnapshot& s, HealthThresholds&) {
         s.parked = 1;
         s.spool.disk_free = 0;
       },
       HealthReport::kCritical, "HOLDD CRITICAL - disk free 0 B"},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.name));
    DaemonSnapshot s = healthy();
    HealthThresholds t;
    c.setup(s, t);
    HealthReport r = evaluate_health(s, t);
    CAPTURE(r.line);
    CHECK(r.code == c.code);
    CHECK(r.line.find(c.says) != std::string::npos);
    CHECK(r.line.find('\n') == std::string::npos);
  }
}

TEST_CASE("check: the line starts with the plugin status and carries perfdata") {
  DaemonSnapshot s = healthy();
  s.held = {12, 1200, 0, kNow - kHour};
  s.queued = {30, 3000, 1, kNow - kHour};
  s.parked = 1;
  HealthReport r = evaluate_health(s, HealthThresholds{});
  CHECK(r.code == HealthReport::kWarning);
  CHECK(summary_of(r).rfind("HOLDD WARNING - ", 0) == 0);
  const std::string perf = r.line.substr(r.line.find(" | ") + 3);
  CHECK(perf.find("held=12;;;0") != std::string::npos);
  CHECK(perf.find("held_oldest_age=3600s;86400;259200;0") != std::string::npos);
  CHECK(perf.find("parked=1;0;;0") != std::string::npos);
  CHECK(perf.find("queued=30;;;0") != std::string::npos);
  CHECK(perf.find("disk_free=107374182400B;4294967296:;2147483648:;0") != std::string::npos);
  CHECK(perf.find("old_quiet") == std::string::npos);  // only with --old-quiet
}
