#include "holdd/control/metrics.h"

#include <set>
#include <sstream>

#include <doctest/doctest.h>

using namespace holdd;

namespace {

// The value of the sample line that starts with `series` ("name{labels}").
std::string value_of(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return line.substr(series.size() + 1);
  }
  return "(missing)";
}

}  // namespace

TEST_CASE("metrics: counters, gauges and labels in the text format") {
  DaemonSnapshot s;
  s.now_us = 1800000000LL * 1000000;
  s.held = {3, 300, 0, s.now_us - 90LL * 1000000};
  s.queued = {5, 500, 1, s.now_us - 90LL * 1000000};
  s.parked = 1;
  s.mailboxes = {7, 2, 1};
  s.relay.delivered_old = 11;
  s.relay.delivered_new = 4;
  s.relay.bytes_new = 4096;
  s.last_relay_us[1] = 1799999000LL * 1000000;
  s.paused = true;
  s.intake.connections_total = 42;
  s.intake.replies_by_class[2] = 100;
  s.intake.replies_by_class[5] = 3;
  s.intake.messages_accepted = 9;

  const std::string text = render_metrics(s);
  struct Case { const char* series; const char* value; };
  const Case cases[] = {
      {"holdd_connections_total", "42"},
      {"holdd_smtp_replies_total{class=\"2xx\"}", "100"},
      {"holdd_smtp_replies_total{class=\"4xx\"}", "0"},
      {"holdd_smtp_replies_total{class=\"5xx\"}", "3"},
      {"holdd_messages_accepted_total", "9"},
      {"holdd_relayed_total{upstream=\"old\"}", "11"},
      {"holdd_relayed_total{upstream=\"new\"}", "4"},
      {"holdd_relayed_bytes_total{upstream=\"new\"}", "4096"},
      {"holdd_queued_messages", "5"},
      {"holdd_held_messages", "3"},
      {"holdd_held_bytes", "300"},
      {"holdd_held_oldest_age_seconds", "90"},
      {"holdd_parked_messages", "1"},
      {"holdd_mailboxes{state=\"old\"}", "7"},
      {"holdd_mailboxes{state=\"held\"}", "2"},
      {"holdd_mailboxes{state=\"migrated\"}", "1"},
      {"holdd_paused", "1"},
      {"holdd_last_relay_timestamp_seconds{upstream=\"old\"}", "0"},
      {"holdd_last_relay_timestamp_seconds{upstream=\"new\"}", "1799999000"},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.series));
    CHECK(value_of(text, c.series) == c.value);
  }
  CHECK(text.find("# TYPE holdd_connections_total counter\n") != std::string::npos);
  CHECK(text.find("# TYPE holdd_queued_messages gauge\n") != std::string::npos);
  CHECK(text.find("# HELP holdd_held_messages ") != std::string::npos);
  CHECK(text.back() == '\n');
}

TEST_CASE("metrics: every family has HELP and TYPE before its samples, once") {
  const std::string text = render_metrics(DaemonSnapshot{});
  std::istringstream in(text);
  std::string line, family;
  std::set<std::string> typed;
  while (std::getline(in, line)) {
    CAPTURE(line);
    if (line.rfind("# TYPE ", 0) == 0) {
      family = line.substr(7, line.find(' ', 7) - 7);
      CHECK(typed.insert(family).second);
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) continue;
    const std::string name = line.substr(0, line.find_first_of("{ "));
    CHECK(name.rfind("holdd_", 0) == 0);
    CHECK(name.rfind(family, 0) == 0);  // the sample belongs to the last TYPE
  }
}

TEST_CASE("metrics: the intake latency histogram is cumulative, ending in +Inf = count") {
  DaemonSnapshot s;
  LatencyHistogram& h = s.intake.intake_latency;
  h.observe(std::chrono::duration<double>(0.0005));  // le 0.001
  h.observe(std::chrono::duration<double>(0.003));   // le 0.005
  h.observe(std::chrono::duration<double>(0.003));
  h.observe(std::chrono::duration<double>(30.0));    // above every bound
  const std::string text = render_metrics(s);
  CHECK(value_of(text, "holdd_intake_latency_seconds_bucket{le=\"0.001\"}") == "1");
  CHECK(value_of(text, "holdd_intake_latency_seconds_bucket{le=\"0.0025\"}") == "1");
  CHECK(value_of(text, "holdd_intake_latency_seconds_bucket{le=\"0.005\"}") == "3");
  CHECK(value_of(text, "holdd_intake_latency_seconds_bucket{le=\"10\"}") == "3");
  CHECK(value_of(text, "holdd_intake_latency_seconds_bucket{le=\"+Inf\"}") == "4");
  CHECK(value_of(text, "holdd_intake_latency_seconds_count") == "4");
  CHECK(std::stod(value_of(text, "holdd_intake_latency_seconds_sum")) == doctest::Approx(30.0065));
  CHECK(text.find("# TYPE holdd_intake_latency_seconds histogram\n") != std::string::npos);
}
