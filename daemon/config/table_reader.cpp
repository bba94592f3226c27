#include "table_reader.h"

#include <algorithm>

#include "holdd/base/clock.h"
#include "holdd/config/units.h"

namespace holdd::config_internal {
namespace {

std::string quoted(std::string_view s) {
  constexpr size_t kMaxShown = 60;
  std::string out = "\"";
  out.append(s.substr(0, kMaxShown));
  if (s.size() > kMaxShown) out += "...";
  return out + "\"";
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

std::string render(const toml::node& node) {
  if (auto s = node.as_string()) return quoted(s->get());
  if (auto i = node.as_integer()) return std::to_string(i->get());
  if (auto b = node.as_boolean()) return b->get() ? "true" : "false";
  return type_name(node);
}

TableReader::TableReader(const toml::table* table, std::string prefix, const std::string& file,
                         std::vector<ConfigError>& errors)
    : table_(table), prefix_(std::move(prefix)), file_(file), errors_(errors) {}

std::string TableReader::path_of(std::string_view key) const {
  return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
}

void TableReader::error(std::string_view key, std::string reason) {
  errors_.push_back(ConfigError{file_, path_of(key), std::move(reason)});
}

void TableReader::allow(std::string_view key) { known_.emplace_back(key); }

const toml::node* TableReader::get_node(std::string_view key) {
  allow(key);
  return table_ == nullptr ? nullptr : table_->get(key);
}

bool TableReader::get_string(std::string_view key, std::string& out, bool allow_empty) {
  const toml::node* node = get_node(key);
  if (node == nullptr) return false;
  auto s = node->as_string();
  if (s == nullptr) {
    error(key, "expected a string, got " + type_name(*node));
    return false;
  }
  if (!allow_empty && s->get().empty()) {
    error(key, "must not be empty");
    return false;
  }
  out = s->get();
  return true;
}

bool TableReader::get_bool(std::string_view key, bool& out) {
  const toml::node* node = get_node(key);
  if (node == nullptr) return false;
  auto b = node->as_boolean();
  if (b == nullptr) {
    error(key, "expected true or false, got " + render(*node));
    return false;
  }
  out = b->get();
  return true;
}

bool TableReader::get_integer(std::string_view key, uint64_t& out, uint64_t min, uint64_t max) {
  const toml::node* node = get_node(key);
  if (node == nullptr) return false;
  auto i = node->as_integer();
  if (i == nullptr) {
    error(key, "expected an integer, got " + render(*node));
    return false;
  }
  int64_t v = i->get();
  if (v < 0 || static_cast<uint64_t>(v) < min || static_cast<uint64_t>(v) > max) {
    error(key, "must be from " + std::to_string(min) + " to " + std::to_string(max) + ", got " +
                   std::to_string(v));
    return false;
  }
  out = static_cast<uint64_t>(v);
  return true;
}

bool TableReader::get_size(std::string_view key, uint64_t& out, uint64_t min) {
  const toml::node* node = get_node(key);
  if (node == nullptr) return false;
  uint64_t bytes = 0;
  if (auto i = node->as_integer()) {
    if (i->get() < 0) {
      error(key, "must not be negative, got " + std::to_string(i->get()));
      return false;
    }
    bytes = static_cast<uint64_t>(i->get());
  } else if (auto s = node->as_string()) {
    auto parsed = parse_size(s->get());
    if (!parsed) {
      error(key, "expected a size such as \"50MiB\" (units B, KiB, MiB, GiB, TiB), got " +
                     quoted(s->get()));
      return false;
    }
    bytes = *parsed;
  } else {
    error(key, "expected a size such as \"50MiB\", got " + type_name(*node));
    return false;
  }
  if (bytes < min) {
    error(key, "must be at least " + std::to_string(min) + " bytes, got " + render(*node));
    return false;
  }
  out = bytes;
  return true;
}

bool TableReader::get_duration(std::string_view key, std::chrono::seconds& out,
                               std::chrono::seconds min) {
  const toml::node* node = get_node(key);
  if (node == nullptr) return false;
  std::chrono::seconds d{0};
  if (auto i = node->as_integer()) {
    if (i->get() < 0) {
      error(key, "must not be negative, got " + std::to_string(i->get()));
      return false;
    }
    d = std::chrono::seconds(i->get());
  } else if (auto s = node->as_string()) {
    auto parsed = parse_duration(s->get());
    if (!parsed) {
      error(key, "expected a duration such as \"30s\", \"5m\" or \"1h30m\" (units d, h, m, s), got " +
                     quoted(s->get()));
      return false;
    }
    d = *parsed;
  } else {
    error(key, "expected a duration such as \"5m\", got " + type_name(*node));
    return false;
  }
  if (d < min) {
    error(key, "must be at least " + format_duration(min) + ", got " + render(*node));
    return false;
  }
  out = d;
  return true;
}

bool TableReader::get_string_list(std::string_view key, std::vector<std::string>& out) {
  const toml::node* node = get_node(key);
  if (node == nullptr) return false;
  if (auto s = node->as_string()) {
    out = {s->get()};
    return true;
  }
  auto array = node->as_array();
  if (array == nullptr) {
    error(key, "expected an array of strings, got " + type_name(*node));
    return false;
  }
  std::vector<std::string> items;
  bool ok = true;
  for (size_t n = 0; n < array->size(); ++n) {
    const toml::node& item = *array->get(n);
    if (auto s = item.as_string()) {
      items.push_back(s->get());
    } else {
      error(std::string(key) + "[" + std::to_string(n) + "]", "expected a string, got " + render(item));
      ok = false;
    }
  }
  if (ok) out = std::move(items);
  return ok;
}

const toml::table* TableReader::get_table(std::string_view key) {
  const toml::node* node = get_node(key);
  if (node == nullptr) return nullptr;
  if (auto t = node->as_table()) return t;
  error(key, "expected a table ([" + path_of(key) + "]), got " + type_name(*node));
  return nullptr;
}

void TableReader::reject_unknown_keys() {
  if (table_ == nullptr) return;
  for (const auto& [k, node] : *table_) {
    std::string_view key = k.str();
    if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
    std::string reason = node.is_table() ? "unknown table" : "unknown key";
    const std::string* best = nullptr;
    size_t best_distance = 3;  // suggest only for one or two typos
    for (const std::string& candidate : known_) {
      size_t d = edit_distance(key, candidate);
      if (d < best_distance) {
        best = &candidate;
        best_distance = d;
      }
    }
    if (best != nullptr) reason += " (did you mean \"" + *best + "\"?)";
    error(key, reason);
  }
}

}  // namespace holdd::config_internal
