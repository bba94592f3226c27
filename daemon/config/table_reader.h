#pragma once
// A TableReader reads one TOML table of holdd.toml. Its getters leave the default
// in place when a key is absent and record a ConfigError (file, dotted key, why)
// when a value has the wrong type or is impossible, so one pass finds every
// problem. reject_unknown_keys() then reports each key no getter asked for: a
// misspelt key must not silently fall back to its default. Private to config/.
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "holdd/config/config.h"

namespace holdd::config_internal {

class TableReader {
 public:
  // `table` may be null (the section is absent): every getter then keeps the default.
  // REQUIRES: `file` and `errors` outlive the reader.
  TableReader(const toml::table* table, std::string prefix, const std::string& file,
              std::vector<ConfigError>& errors);

  // Each getter returns true when the key is present and its value was stored.
  bool get_string(std::string_view key, std::string& out, bool allow_empty = true);
  bool get_bool(std::string_view key, bool& out);
  bool get_integer(std::string_view key, uint64_t& out, uint64_t min, uint64_t max);
  template <class T>
  bool get_uint(std::string_view key, T& out, uint64_t min,
                uint64_t max = std::numeric_limits<T>::max()) {
    uint64_t v = 0;
    if (!get_integer(key, v, min, max)) return false;
    out = static_cast<T>(v);
    return true;
  }
  // "50MiB" or an integer number of bytes.
  bool get_size(std::string_view key, uint64_t& out, uint64_t min);
  // "1h30m" or an integer number of seconds.
  bool get_duration(std::string_view key, std::chrono::seconds& out, std::chrono::seconds min);
  // An array of strings; a single string is read as a list of one.
  bool get_string_list(std::string_view key, std::vector<std::string>& out);
  // One of a fixed set of words.
  template <class E>
  bool get_choice(std::string_view key, E& out,
                  std::initializer_list<std::pair<std::string_view, E>> choices) {
    std::string word;
    if (!get_string(key, word)) return false;
    std::string expected;
    for (const auto& [name, value] : choices) {
      if (word == name) {
        out = value;
        return true;
      }
      expected += (expected.empty() ? "\"" : ", \"") + std::string(name) + "\"";
    }
    error(key, "expected one of " + expected + ", got \"" + word + "\"");
    return false;
  }

  // A sub-table; null when absent or not a table (the latter is an error).
  const toml::table* get_table(std::string_view key);
  // The raw node (null when absent); marks the key as known.
  const toml::node* get_node(std::string_view key);
  // Marks a key as known without reading it.
  void allow(std::string_view key);

  void error(std::string_view key, std::string reason);
  std::string path_of(std::string_view key) const;
  const std::string& file() const { return file_; }
  std::vector<ConfigError>& errors() { return errors_; }

  // Reports every key of the table that no getter asked for, with a suggestion
  // when a known key is one or two typos away.
  void reject_unknown_keys();

 private:
  const toml::table* table_;
  std::string prefix_;
  const std::string& file_;
  std::vector<ConfigError>& errors_;
  std::vector<std::string> known_;
};

// "a string", "an integer", ... for messages.
std::string type_name(const toml::node& node);
// A short rendering of a scalar for "got ..." messages.
std::string render(const toml::node& node);

}  // namespace holdd::config_internal
