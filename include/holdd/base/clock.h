#pragma once
// Wall-clock time for records (arrival, history) and RFC 3339 formatting.
// Durations in the daemon use std::chrono::steady_clock; what is stored or shown
// to operators is system_clock, kept as whole microseconds since the epoch.
#include <chrono>
#include <cstdint>
#include <string>

namespace holdd {

using SysTime = std::chrono::system_clock::time_point;

// Microseconds since the Unix epoch: the form every stored timestamp takes.
int64_t to_unix_micros(SysTime t);
SysTime from_unix_micros(int64_t us);
int64_t now_unix_micros();

// "2026-11-23T16:49:24Z" (UTC, RFC 3339, whole seconds).
std::string format_rfc3339(SysTime t);
std::string format_rfc3339_micros(int64_t us);
// "Mon, 23 Nov 2026 16:49:24 +0000" (RFC 5322 date-time, for Received:).
std::string format_rfc5322(SysTime t);
// "3d4h", "5m12s", "0s": short human durations for holdctl and logs.
std::string format_duration(std::chrono::seconds d);

}  // namespace holdd
