#include "holdd/smtp/envelope.h"

#include <doctest/doctest.h>

namespace holdd::smtp {
namespace {

TEST_CASE("Envelope: one recipient per mailbox, first one wins, reset clears") {
  Envelope e;
  CHECK(e.add_recipient({"anna@example.com", "anna@example.com", "", ""}));
  CHECK(e.add_recipient({"bob@example.com", "bob@example.com", "", ""}));
  CHECK(!e.add_recipient({"anna@example.com", "anna@example.com", "NEVER", ""}));
  REQUIRE(e.recipients.size() == 2);
  CHECK(e.recipients[0].notify.empty());
  e.add_rcpt_address("team@example.com");
  e.add_rcpt_address("team@example.com");
  CHECK(e.rcpt_addresses.size() == 1);
  e.reset();
  CHECK(!e.has_recipients());
  CHECK(!e.has_sender);
}

}  // namespace
}  // namespace holdd::smtp
