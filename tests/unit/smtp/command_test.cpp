#include "holdd/smtp/command.h"

#include <doctest/doctest.h>

namespace holdd::smtp {
namespace {

std::string error_of(const Command& c) { return c.error ? c.error->summary() : std::string("-"); }

TEST_CASE("parse_command: verbs are case-insensitive, unknown ones are 500 5.5.2") {
  struct Case {
    std::string line;
    Verb verb;
    std::string argument;
  };
  const Case cases[] = {
      {"EHLO client.test", Verb::kEhlo, "client.test"},
      {"ehlo client.test", Verb::kEhlo, "client.test"},
      {"HeLo  client.test ", Verb::kHelo, "client.test"},
      {"DATA", Verb::kData, ""},
      {"rset", Verb::kRset, ""},
      {"NOOP whatever", Verb::kNoop, "whatever"},
      {"QUIT", Verb::kQuit, ""},
      {"VRFY anna", Verb::kVrfy, "anna"},
      {"HELP", Verb::kHelp, ""},
      {"STARTTLS", Verb::kStarttls, ""},
      {"EXPN list", Verb::kNotImplemented, "list"},
      {"AUTH PLAIN", Verb::kNotImplemented, "PLAIN"},
      {"FOO bar", Verb::kUnknown, "bar"},
      {"", Verb::kUnknown, ""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.line);
    Command cmd = parse_command(c.line);
    CHECK(cmd.verb == c.verb);
    CHECK(cmd.argument == c.argument);
  }
  CHECK(error_of(parse_command("FOO")).substr(0, 9) == "500 5.5.2");
  CHECK(error_of(parse_command("EXPN x")).substr(0, 9) == "502 5.5.1");
}

TEST_CASE("parse_command: MAIL FROM with its ESMTP parameters") {
  Command c = parse_command(
      "MAIL FROM:<anna@example.com> SIZE=1234 BODY=8BITMIME SMTPUTF8 RET=hdrs ENVID=QQ+2Bx");
  REQUIRE(!c.error);
  REQUIRE(c.path);
  CHECK(c.path->to_string() == "anna@example.com");
  CHECK(c.mail.size == 1234u);
  CHECK(c.mail.body == BodyType::k8BitMime);
  CHECK(c.mail.smtputf8);
  CHECK(c.mail.ret == "HDRS");
  CHECK(c.mail.envid == "QQ+2Bx");

  Command null_sender = parse_command("mail from:<>");
  CHECK(!null_sender.error);
  CHECK(!null_sender.path);

  Command spaced = parse_command("MAIL FROM: <a@b.test> body=7bit");
  CHECK(!spaced.error);
  CHECK(spaced.mail.body == BodyType::k7Bit);

  Command huge = parse_command("MAIL FROM:<a@b.test> SIZE=99999999999999999999999");
  CHECK(!huge.error);
  CHECK(huge.mail.size == UINT64_MAX);  // over any limit: refused by the session
}

TEST_CASE("parse_command: malformed MAIL and RCPT get the right refusal") {
  struct Case {
    std::string line;
    std::string reply_prefix;
  };
  const Case cases[] = {
      {"MAIL", "501 5.5.2"},
      {"MAIL TO:<a@b.test>", "501 5.5.2"},
      {"MAIL FROM:a@b.test", "501 5.1.7"},
      {"MAIL FROM:<a@b.test", "501 5.1.7"},
      {"MAIL FROM:<a@b.test> FOO=1", "555 5.5.4"},
      {"MAIL FROM:<a@b.test> BODY=BINARYMIME", "555 5.5.4"},
      {"MAIL FROM:<a@b.test> BODY=9BIT", "555 5.5.4"},
      {"MAIL FROM:<a@b.test> SIZE=abc", "501 5.5.4"},
      {"MAIL FROM:<a@b.test> SIZE=1 SIZE=2", "501 5.5.4"},
      {"MAIL FROM:<a@b.test> RET=ALL", "501 5.5.4"},
      {"MAIL FROM:<a@b.test> ENVID=a=b", "501 5.5.4"},
      {"MAIL FROM:<a@b.test> SMTPUTF8=yes", "501 5.5.4"},
      {"MAIL FROM:<j\xC3\xB6rg@b.test>", "553 5.6.7"},  // UTF-8 without SMTPUTF8
      {"RCPT", "501 5.5.2"},
      {"RCPT FROM:<a@b.test>", "501 5.5.2"},
      {"RCPT TO:<>", "501 5.1.3"},
      {"RCPT TO:anna@example.com", "501 5.1.3"},
      {"RCPT TO:<anna@example.com> NOTIFY=SOMETIMES", "501 5.5.4"},
      {"RCPT TO:<anna@example.com> NOTIFY=NEVER,SUCCESS", "501 5.5.4"},
      {"RCPT TO:<anna@example.com> ORCPT=nosemicolon", "501 5.5.4"},
      {"RCPT TO:<anna@example.com> SIZE=1", "555 5.5.4"},
      {"EHLO", "501 5.5.2"},
      {"HELO", "501 5.5.2"},
      {"DATA now", "501 5.5.2"},
      {"VRFY", "501 5.5.2"},
      {"BDAT", "501 5.5.2"},
      {"BDAT x", "501 5.5.2"},
      {"BDAT 10 FIRST", "501 5.5.2"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.line);
    Command cmd = parse_command(c.line);
    REQUIRE(cmd.error);
    CHECK(cmd.error->summary().substr(0, c.reply_prefix.size()) == c.reply_prefix);
  }
}

TEST_CASE("parse_command: RCPT TO with DSN parameters, postmaster without a domain") {
  Command c = parse_command("RCPT TO:<anna@example.com> NOTIFY=success,failure ORCPT=rfc822;anna@example.com");
  REQUIRE(!c.error);
  CHECK(c.path->to_string() == "anna@example.com");
  CHECK(c.rcpt.notify == "SUCCESS,FAILURE");
  CHECK(c.rcpt.orcpt == "rfc822;anna@example.com");

  Command pm = parse_command("RCPT TO:<Postmaster>");
  REQUIRE(!pm.error);
  CHECK(pm.path->local == "postmaster");
  CHECK(pm.path->domain.empty());

  Command utf8 = parse_command("RCPT TO:<j\xC3\xB6rg@example.com>");
  CHECK(!utf8.error);  // allowed or not depends on MAIL's SMTPUTF8: the session decides
  CHECK(utf8.non_ascii_path);
}

TEST_CASE("parse_command: BDAT count and LAST") {
  struct Case {
    std::string line;
    uint64_t size;
    bool last;
  };
  const Case cases[] = {{"BDAT 0 LAST", 0, true},
                        {"BDAT 1000", 1000, false},
                        {"bdat 42 last", 42, true},
                        {"BDAT 123456789012345678901234567890", UINT64_MAX, false}};
  for (const Case& c : cases) {
    CAPTURE(c.line);
    Command cmd = parse_command(c.line);
    REQUIRE(!cmd.error);
    CHECK(cmd.verb == Verb::kBdat);
    CHECK(cmd.chunk_size == c.size);
    CHECK(cmd.last == c.last);
  }
}

TEST_CASE("is_xtext") {
  CHECK(is_xtext("abc+2B+3D"));
  CHECK(is_xtext(""));
  CHECK(!is_xtext("a=b"));
  CHECK(!is_xtext("a b"));
  CHECK(!is_xtext("a+2"));
  CHECK(!is_xtext("a+zz"));
  CHECK(!is_xtext("a+2b"));  // hex digits are upper case
}

}  // namespace
}  // namespace holdd::smtp
