#include "holdd/smtp/reply.h"

#include <doctest/doctest.h>

namespace holdd::smtp {
namespace {

TEST_CASE("Reply: wire form carries the enhanced code on every line") {
  struct Case {
    Reply reply;
    std::string wire;
  };
  const Case cases[] = {
      {Reply::ok(), "250 2.0.0 Ok\r\n"},
      {Reply::queued("0123456789ABCD"), "250 2.0.0 Ok: queued as 0123456789ABCD\r\n"},
      {Reply::greeting("mx1.example.com"), "220 mx1.example.com ESMTP holdd\r\n"},
      {Reply::bye(), "221 2.0.0 Bye\r\n"},
      {Reply{550, "5.7.1", "a\nb", false}, "550-5.7.1 a\r\n550 5.7.1 b\r\n"},
      {Reply::start_data(), "354 End data with <CR><LF>.<CR><LF>\r\n"},
      {Reply::relay_denied("x@elsewhere.test"),
       "550 5.7.1 <x@elsewhere.test>: Relay access denied\r\n"},
      {Reply::unknown_user("nobody@example.com"),
       "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown\r\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.wire);
    CHECK(c.reply.to_wire() == c.wire);
  }
}

TEST_CASE("Reply: EHLO lists exactly the extensions holdd offers") {
  CHECK(Reply::ehlo("mx.test", 52428800, false).to_wire() ==
        "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
        "250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250 DSN\r\n");
  CHECK(Reply::ehlo("mx.test", 10, true).to_wire().find("250-STARTTLS\r\n") != std::string::npos);
}

TEST_CASE("Reply: codes and enhanced codes of the limits SPEC names") {
  struct Case {
    Reply reply;
    int code;
    std::string enhanced;
    bool closes;
  };
  const Case cases[] = {
      {Reply::too_many_connections(), 421, "4.7.0", true},
      {Reply::too_many_connections_from_ip(), 421, "4.7.0", true},
      {Reply::too_many_errors("h"), 421, "4.7.0", true},
      {Reply::timeout("h"), 421, "4.4.2", true},
      {Reply::shutting_down("h"), 421, "4.3.2", true},
      {Reply::too_many_recipients(), 452, "4.5.3", false},
      {Reply::no_storage(), 452, "4.3.1", false},
      {Reply::local_error(), 451, "4.3.0", false},
      {Reply::message_too_big(), 552, "5.3.4", false},
      {Reply::too_many_hops(), 554, "5.4.6", false},
      {Reply::no_valid_recipients(), 554, "5.5.1", false},
      {Reply::line_too_long(), 500, "5.5.2", false},
      {Reply::unrecognized(), 500, "5.5.2", false},
      {Reply::not_implemented(), 502, "5.5.1", false},
      {Reply::cannot_vrfy(), 252, "2.5.2", false},
      {Reply::needs_smtputf8(), 553, "5.6.7", false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.reply.summary());
    CHECK(c.reply.code == c.code);
    CHECK(c.reply.enhanced == c.enhanced);
    CHECK(c.reply.closes_connection == c.closes);
  }
}

TEST_CASE("reply_for: our own trouble is always 4xx") {
  CHECK(reply_for(Status::no_space("map full")).summary() == "452 4.3.1 Insufficient system storage");
  const Status others[] = {Status::io_error("EIO"), Status::temporary("x"),
                           Status::permanent("x"), Status::invalid("x"), Status::timeout("x"),
                           Status::cancelled("x"), Status::not_found("x")};
  for (const Status& s : others) {
    CAPTURE(s.to_string());
    const Reply r = reply_for(s);
    CHECK(r.code == 451);
    CHECK(r.enhanced == "4.3.0");
    CHECK(r.text.find(s.message()) == std::string::npos);  // details stay in the log
  }
}

}  // namespace
}  // namespace holdd::smtp
