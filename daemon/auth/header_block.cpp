#include "holdd/auth/header_block.h"

namespace holdd::auth {

namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

// Offset just after the line break of the line starting at `pos` (or the end).
std::size_t next_line(std::string_view m, std::size_t pos) {
  std::size_t lf = m.find('\n', pos);
  return lf == std::string_view::npos ? m.size() : lf + 1;
}

bool is_empty_line(std::string_view m, std::size_t pos) {
  return m.compare(pos, 2, "\r\n") == 0 || m.compare(pos, 1, "\n") == 0;
}

}  // namespace

std::vector<HeaderField> header_fields(std::string_view m) {
  std::vector<HeaderField> fields;
  std::size_t pos = 0;
  while (pos < m.size() && !is_empty_line(m, pos)) {
    std::size_t line_end = next_line(m, pos);
    std::string_view first = m.substr(pos, line_end - pos);
    std::size_t colon = first.find(':');
    if (colon == std::string_view::npos || colon == 0 || is_wsp(first[0])) break;
    std::size_t end = line_end;
    while (end < m.size() && is_wsp(m[end])) end = next_line(m, end);
    std::string_view name = first.substr(0, colon);
    while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);
    fields.push_back({name, m.substr(pos + colon + 1, end - pos - colon - 1), pos, end});
    pos = end;
  }
  return fields;
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


}  // namespace holdd::auth
