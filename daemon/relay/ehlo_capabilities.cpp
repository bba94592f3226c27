#include "holdd/relay/ehlo_capabilities.h"

#include "holdd/base/ascii.h"

#include <charconv>
#include <string>
#include <string_view>

namespace holdd {
EhloCapabilities EhloCapabilities::parse(const SmtpReply& ehlo_reply) {
  EhloCapabilities caps;
  for (std::size_t i = 1; i < ehlo_reply.lines.size(); ++i) {
    std::string_view line = ehlo_reply.lines[i];
    const std::size_t space = line.find(' ');
    const std::string_view keyword = line.substr(0, space);
    const std::string_view argument =
        space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
    if (iequals(keyword, "PIPELINING")) {
      caps.pipelining = true;
    } else if (iequals(keyword, "SIZE")) {
      caps.size = true;
      uint64_t limit = 0;
      // A malformed argument counts as "no stated limit": the upstream will still
      // refuse an oversized message with 552, which parks it.
      auto [end, ec] = std::from_chars(argument.data(), argument.data() + argument.size(), limit);
      caps.max_size = ec == std::errc{} ? limit : 0;
      (void)end;
    } else if (iequals(keyword, "8BITMIME")) {
      caps.eight_bit_mime = true;
    } else if (iequals(keyword, "SMTPUTF8")) {
      caps.smtputf8 = true;
    } else if (iequals(keyword, "DSN")) {
      caps.dsn = true;
    } else if (iequals(keyword, "STARTTLS")) {
      caps.starttls = true;
    }
  }
  return caps;
}

}  // namespace holdd
