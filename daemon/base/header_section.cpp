#include "holdd/base/header_section.h"

#include <algorithm>

namespace holdd {
namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

// Offset just after the line break of the line that starts at `pos` (or the end).
std::size_t next_line(std::string_view m, std::size_t pos) {
  const std::size_t lf = m.find('\n', pos);
  return lf == std::string_view::npos ? m.size() : lf + 1;
}

// The line [pos, next) without its line break: the LF and a CR just before it.
std::string_view line_at(std::string_view m, std::size_t pos, std::size_t next) {
  std::string_view line = m.substr(pos, next - pos);
  if (line.ends_with('\n')) {
    line.remove_suffix(1);
    if (line.ends_with('\r')) line.remove_suffix(1);
  }
  return line;
}

}  // namespace

bool is_field_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return c >= 33 && c <= 126 && c != ':';
  });
}

HeaderSection parse_header_section(std::string_view m) {
  HeaderSection section;
  std::size_t pos = 0;
  while (pos < m.size()) {
    const std::size_t next = next_line(m, pos);
    const std::string_view line = line_at(m, pos, next);
    if (line.empty()) {  // the empty line between header and body
      section.body = next;
      return section;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) break;
    std::string_view name = line.substr(0, colon);
    while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);
    // A line that begins with white space here continues nothing: its "name"
    // is not ftext, and it is the body's first line, as any other non-field is.
    if (!is_field_name(name)) break;
    std::size_t end = next;
    while (end < m.size() && is_wsp(m[end])) end = next_line(m, end);
    section.fields.push_back({name, m.substr(pos + colon + 1, end - pos - colon - 1), pos, end});
    pos = end;
  }
  section.body = pos;
  return section;
}

std::string unfold(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c != '\r' && c != '\n') out.push_back(c);
  }
  std::size_t b = 0;
  while (b < out.size() && is_wsp(out[b])) ++b;
  std::size_t e = out.size();
  while (e > b && is_wsp(out[e - 1])) --e;
  return out.substr(b, e - b);
}

}  // namespace holdd
