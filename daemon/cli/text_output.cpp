#include "holdd/cli/text_output.h"

#include <algorithm>
#include <cstdio>

namespace holdd::cli {

using json = nlohmann::json;

std::string str(const json& v, const char* fallback) {
  if (v.is_null()) return fallback;
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

uint64_t num(const json& v) { return v.is_number() ? v.get<uint64_t>() : 0; }

std::string human_size(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  }
  return buf;
}

std::string human_age(const json& seconds) {
  if (!seconds.is_number()) return "-";
  long long s = seconds.get<long long>();
  if (s <= 0) return "0s";
  std::string out;
  const struct { long long size; char unit; } units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
  int parts = 0;
  for (const auto& u : units) {
    if (parts == 2) break;
    if (s >= u.size) {
      out += std::to_string(s / u.size) + u.unit;
      s %= u.size;
      ++parts;
    } else if (parts > 0) {
      ++parts;
    }
  }
  return out;
}

std::string sender_text(const json& sender) {
  std::string v = str(sender, "");
  return v.empty() ? "<>" : v;
}

void Table::print(std::ostream& out) const {
  std::vector<size_t> width(rows_.front().size(), 0);
  for (const auto& r : rows_) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows_) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    line.erase(line.find_last_not_of(' ') + 1);  // an empty last column leaves no padding
    out << line << "\n";
  }
}

}  // namespace holdd::cli
