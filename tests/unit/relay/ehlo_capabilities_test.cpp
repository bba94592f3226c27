#include "holdd/relay/ehlo_capabilities.h"

#include <doctest/doctest.h>

namespace holdd {
namespace {

TEST_CASE("EhloCapabilities: keywords are case-insensitive, the first line is the greeting") {
  SmtpReply reply{250,
                  {"pipelining.example greets you", "pipelining", "Size 1048576", "8BITMIME",
                   "SMTPUTF8", "DSN", "STARTTLS", "CHUNKING", "X-UNKNOWN arg"}};
  const EhloCapabilities caps = EhloCapabilities::parse(reply);
  CHECK(caps.pipelining);
  CHECK(caps.size);
  CHECK(caps.max_size == 1048576);
  CHECK(caps.eight_bit_mime);
  CHECK(caps.smtputf8);
  CHECK(caps.dsn);
  CHECK(caps.starttls);
}

TEST_CASE("EhloCapabilities: nothing offered means nothing used") {
  const EhloCapabilities caps = EhloCapabilities::parse(SmtpReply{250, {"PIPELINING"}});
  CHECK(!caps.pipelining);  // the greeting line is not a keyword
  CHECK(!caps.size);
  CHECK(!caps.eight_bit_mime);
  CHECK(!caps.starttls);
}

TEST_CASE("EhloCapabilities: SIZE without a number has no limit") {
  struct Case {
    const char* line;
    uint64_t max;
  };
  const Case cases[] = {{"SIZE", 0}, {"SIZE 0", 0}, {"SIZE many", 0}, {"SIZE 52428800", 52428800}};
  for (const Case& c : cases) {
    CAPTURE(std::string(c.line));
    const EhloCapabilities caps = EhloCapabilities::parse(SmtpReply{250, {"mx", c.line}});
    CHECK(caps.size);
    CHECK(caps.max_size == c.max);
  }
}

}  // namespace
}  // namespace holdd
