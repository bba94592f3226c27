#pragma once
// The control protocol's framing (docs/control-protocol.md), shared by holdctl and
// the control server: one single-line JSON object per request and per response.
//
// The protocol module is header-only and sits at layer 1, so that both holdctl
// (through cli/, which links neither Asio nor the spool) and the daemon's
// control/ can use it.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "holdd/base/printable.h"

namespace holdd::protocol {

using json = nlohmann::json;

// `holdctl release --file` with tens of thousands of addresses fits easily; a
// client that sends more without a newline is cut off rather than buffered.
inline constexpr std::size_t kMaxRequestLine = 16u << 20;
// Responses (`list`, `queue` of a big mailbox) may be larger than requests.
inline constexpr std::size_t kMaxResponseLine = 512u << 20;

// Makes every string value in `j` valid UTF-8: one that is not (an upstream's
// Latin-1 reply, an 8-bit HELO, both stored as they came) is shown through
// printable(), its odd bytes as \xNN, so the operator sees what was sent.
inline void make_printable(json& j) {
  if (j.is_string()) {
    auto& s = j.get_ref<std::string&>();
    if (!is_valid_utf8(s)) s = printable(s);
  } else if (j.is_structured()) {
    for (json& v : j) make_printable(v);
  }
}

// One line of JSON. Envelope senders and last errors come from the network and may
// hold invalid UTF-8: they are escaped (make_printable), never a reason to fail
// mid-response. Object keys that are still invalid fall back to U+FFFD.
inline std::string encode_line(const json& document) {
  std::string line;
  try {
    line = document.dump();
  } catch (const json::type_error&) {
    json copy = document;
    make_printable(copy);
    line = copy.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  line += '\n';
  return line;
}

// The JSON object of a line, or nullopt if it is not one.
inline std::optional<json> decode_line(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  json document = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded() || !document.is_object()) return std::nullopt;
  return document;
}

inline json make_request(std::string_view command, json args = json::object()) {
  return json{{"command", std::string(command)}, {"args", std::move(args)}};
}

inline json ok_response(json result) { return json{{"ok", true}, {"result", std::move(result)}}; }

inline json error_response(std::string message) {
  return json{{"ok", false}, {"error", std::move(message)}};
}

// `--file F`: one address a line. Blank lines and comments are ignored; a comment
// starts with '#' at the beginning of a line or after white space, because '#' is
// a legal character inside a local part ("a#b@example.com").
inline std::vector<std::string> parse_address_list(std::string_view text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
        line = line.substr(0, i);
        break;
      }
    }
    auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
    while (!line.empty() && is_space(line.front())) line.remove_prefix(1);
    while (!line.empty() && is_space(line.back())) line.remove_suffix(1);
    if (!line.empty()) out.emplace_back(line);
  }
  return out;
}

}  // namespace holdd::protocol
