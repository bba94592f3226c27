// parse_path / parse_address (RFC 5321 4.1.2) and the mailbox key.
// Properties: an accepted path round-trips through to_string(); parse_address
// accepts what parse_path accepted, with the same parts; the mailbox key is a
// fixed point (parsing the key gives the same key), so holdctl, the directory
// files and RCPT TO agree on which mailbox an address is; and routing requests
// ('%', '!', quoted '@') and address literals are recognised however written.
// Input: 1 flag byte (allow_null, utf8), then the text.
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "holdd/route/address.h"

using namespace holdd;
using namespace holdd::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const uint8_t flags = in.take_byte();
  const bool allow_null = flags & 1;
  const bool utf8 = flags & 2;
  const std::string_view text = in.rest();

  PathParse p = parse_path(text, allow_null, utf8);
  if (!p.ok()) {
    FUZZ_CHECK(!p.address, text);
  } else if (p.address) {
    const Address& a = *p.address;
    const std::string s = a.to_string();
    FUZZ_CHECK(s.size() <= 254, text);
    // No byte that could end the path or the line, except inside quotes or an
    // address literal (RFC 5321 dcontent allows '<', '>' and '@').
    FUZZ_CHECK(s.find_first_of(std::string_view("\0\r\n<> ", 6)) == std::string::npos ||
                   a.local.front() == '"' || a.is_address_literal(),
               text);
    FUZZ_CHECK(a.local.find_first_of(std::string_view("\0\r\n", 3)) == std::string::npos, text);
    FUZZ_CHECK(a.domain.find_first_of(std::string_view("\0\r\n", 3)) == std::string::npos, text);
    PathParse again = parse_path("<" + s + "> " + p.rest, allow_null, utf8);
    FUZZ_CHECK(again.ok() && again.address, text);
    FUZZ_CHECK(again.address->local == a.local && again.address->domain == a.domain, text);
    FUZZ_CHECK(again.rest == p.rest, text);

    std::optional<Address> bare = parse_address(s);
    FUZZ_CHECK(bare.has_value(), text);
    FUZZ_CHECK(bare->local == a.local && bare->domain == a.domain, text);

    const std::string key = a.mailbox_key(LocalPartCase::kExact);
    std::optional<Address> keyed = parse_address(key);
    FUZZ_CHECK(keyed.has_value(), key);
    FUZZ_CHECK(keyed->mailbox_key(LocalPartCase::kExact) == key, key);
    // Folding a stored exact key gives the insensitive key (the spool migration).
    const std::string folded = a.mailbox_key(LocalPartCase::kInsensitive);
    FUZZ_CHECK(fold_mailbox_key(key) == folded, key);
    FUZZ_CHECK(keyed->mailbox_key(LocalPartCase::kInsensitive) == folded, key);
    // Unquoting for the key must not hide a routing request.
    if (a.asks_for_routing()) FUZZ_CHECK(keyed->asks_for_routing(), key);
    FUZZ_CHECK(keyed->is_address_literal() == a.is_address_literal(), key);
  } else {
    FUZZ_CHECK(allow_null, text);
  }

  // parse_address on the raw text: anything it accepts must be a valid path.
  if (std::optional<Address> a = parse_address(text)) {
    PathParse again = parse_path("<" + a->to_string() + ">", false, /*utf8=*/true);
    FUZZ_CHECK(again.ok() && again.address, text);
    for (LocalPartCase rule : {LocalPartCase::kExact, LocalPartCase::kInsensitive}) {
      FUZZ_CHECK(again.address->mailbox_key(rule) == a->mailbox_key(rule), text);
    }
  }
  return 0;
}
