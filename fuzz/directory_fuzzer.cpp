// Directory::parse (mailboxes file and "alias: target, ..." file): any text
// either loads or gives errors that name a line; a loaded directory resolves
// every listed mailbox to itself, every alias to listed mailboxes only, and
// never loops (nested aliases, cycles).
// Input: mailboxes text, a NUL, aliases text, a NUL, addresses to resolve (one a line).
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz_input.h"
#include "holdd/route/directory.h"

using namespace holdd;
using namespace holdd::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const uint8_t flags = in.take_byte();
  const std::string_view mailboxes = in.take_until('\0');
  const std::string_view aliases = in.take_until('\0');
  const std::string_view queries = in.rest();

  DirectoryConfig config;
  config.domains = {"example.com", "example.org"};
  config.mailboxes = "/fuzz/mailboxes.txt";
  config.aliases = "/fuzz/aliases.txt";
  config.recipients = (flags & 1) ? RecipientPolicy::kAny : RecipientPolicy::kListed;

  auto result = Directory::parse(config, mailboxes, aliases);
  if (auto* errors = std::get_if<std::vector<ConfigError>>(&result)) {
    FUZZ_CHECK(!errors->empty(), mailboxes);
    for (const ConfigError& e : *errors) {
      FUZZ_CHECK(!e.reason.empty(), e.to_string());
      (void)e.to_string();
    }
    return 0;
  }
  const auto& dir = std::get<std::shared_ptr<const Directory>>(result);
  for (const std::string& key : dir->mailboxes()) {
    FUZZ_CHECK(dir->is_listed(key), key);
    Resolution r = dir->resolve(std::string_view(key));
    FUZZ_CHECK(r.verdict == Resolution::Verdict::kAccept, key);
    FUZZ_CHECK(r.mailboxes.size() == 1 && r.mailboxes[0] == key, key);
  }
  std::string_view rest = queries;
  for (int n = 0; n < 64 && !rest.empty(); ++n) {
    size_t nl = rest.find('\n');
    std::string_view q = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    Resolution r = dir->resolve(q);
    if (r.verdict == Resolution::Verdict::kAccept) {
      FUZZ_CHECK(!r.mailboxes.empty(), q);
      for (const std::string& m : r.mailboxes) {
        if (config.recipients == RecipientPolicy::kListed) FUZZ_CHECK(dir->is_listed(m), m);
        std::optional<Address> a = parse_address(m);
        FUZZ_CHECK(a && dir->is_local_domain(a->domain), m);
        FUZZ_CHECK(!a->asks_for_routing() && !a->is_address_literal(), m);
      }
    } else {
      FUZZ_CHECK(r.mailboxes.empty(), q);
    }
  }
  return 0;
}
