#include "holdd/relay/dot_stuffer.h"

#include <algorithm>

namespace holdd {

bool DotStuffer::next(std::string& out, std::size_t max_bytes) {
  if (done_) return false;
  const std::size_t start = out.size();
  max_bytes = std::max<std::size_t>(max_bytes, 1);
  while (pos_ < content_.size() && out.size() - start < max_bytes) {
    if (at_line_start_ && content_[pos_] == '.') out += '.';
    const std::size_t lf = content_.find('\n', pos_);
    const std::size_t line_end = lf == std::string_view::npos ? content_.size() : lf + 1;
    const std::size_t room = max_bytes - std::min(max_bytes, out.size() - start);
    const std::size_t take = std::min(line_end - pos_, std::max<std::size_t>(room, 1));
    out.append(content_.substr(pos_, take));
    pos_ += take;
    at_line_start_ = out.back() == '\n';
  }
  if (pos_ == content_.size()) {
    // The final "." must be on a line of its own: without this, content ending in
    // "x" would send "x.\r\n" and the upstream would wait for the real end.
    if (!content_.empty() && !content_.ends_with("\r\n")) out += "\r\n";
    out += ".\r\n";
    done_ = true;
  }
  return true;
}

std::string DotStuffer::stuff(std::string_view content) {
  DotStuffer stuffer(content);
  std::string out;
  out.reserve(content.size() + content.size() / 64 + 5);
  while (stuffer.next(out, content.size() + 1)) {
  }
  return out;
}

}  // namespace holdd
