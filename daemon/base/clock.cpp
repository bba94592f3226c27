#include "holdd/base/clock.h"

#include <ctime>

namespace holdd {

int64_t to_unix_micros(SysTime t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

SysTime from_unix_micros(int64_t us) {
  return SysTime(std::chrono::duration_cast<SysTime::duration>(std::chrono::microseconds(us)));
}

int64_t now_unix_micros() { return to_unix_micros(std::chrono::system_clock::now()); }

static std::string format_utc(SysTime t, const char* fmt) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, fmt, &tm);
  return std::string(buf, n);
}

std::string format_rfc3339(SysTime t) { return format_utc(t, "%Y-%m-%dT%H:%M:%SZ"); }
std::string format_rfc3339_micros(int64_t us) { return format_rfc3339(from_unix_micros(us)); }
std::string format_rfc5322(SysTime t) { return format_utc(t, "%a, %d %b %Y %H:%M:%S +0000"); }

std::string format_duration(std::chrono::seconds d) {
  long long s = d.count();
  if (s < 0) s = 0;
  if (s == 0) return "0s";
  std::string out;
  const struct { long long size; char unit; } units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
  int parts = 0;
  for (const auto& u : units) {
    if (s >= u.size && parts < 2) {
      out += std::to_string(s / u.size) + u.unit;
      s %= u.size;
      ++parts;
    } else if (parts > 0) {
      ++parts;  // show at most two adjacent units: "3d4h", not "3d0h5m"
    }
  }
  return out;
}

}  // namespace holdd
