#pragma once
// How holdctl shows the daemon's answers as text: JSON values as words, sizes and
// ages for people, and tables with aligned columns.
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace holdd::cli {

// A string as it is, null as `fallback`, anything else as JSON text.
std::string str(const nlohmann::json& v, const char* fallback = "-");

// A number, or 0 for anything else (a field an older daemon does not send).
uint64_t num(const nlohmann::json& v);

// "512 B", "1.5 KiB", "3.0 GiB".
std::string human_size(uint64_t bytes);

// The two largest units of a number of seconds: "3d4h", "2h", "5m10s", "0s"; "-"
// for anything but a number.
std::string human_age(const nlohmann::json& seconds);

// An envelope sender; "<>" for the null sender.
std::string sender_text(const nlohmann::json& sender);

// Columns padded to their widest cell; the last column is not padded.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace holdd::cli
