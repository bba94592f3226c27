#include "holdd/spool/records.h"

#include <doctest/doctest.h>

#include <string>

namespace holdd {
namespace {

// Every byte value, as a text field could carry it from the network.
std::string all_bytes() {
  std::string s;
  for (int c = 0; c < 256; ++c) s += static_cast<char>(c);
  return s;
}

}  // namespace

// Issue 12: an upstream's "250 2.0.0 Message re\xE7u" could not be recorded (the
// JSON encoder refused the Latin-1 byte), so the message was delivered again every
// retry_min; a Latin-1 HELO made every DATA end in 451.
TEST_CASE("records: every text field keeps any bytes through encode and decode") {
  const std::string latin1 = "250 2.0.0 Message re\xe7u";
  const std::string bytes = all_bytes();

  MessageMeta m;
  m.id = "0123456789ABCD";
  m.arrival_us = 1'700'000'000'000'000;
  m.sender = "j\xf6rg@example.test";
  m.size = 12345;
  m.received_size = 12000;
  m.eight_bit = true;
  m.smtputf8 = true;
  m.dsn_ret = "HDRS";
  m.dsn_envid = bytes;
  m.client = "mail.m\xfcller.test [192.0.2.7]";
  m.refs = 3;
  MessageMeta m2;
  REQUIRE(decode(encode(m), m2));
  CHECK(m2.id == m.id);
  CHECK(m2.arrival_us == m.arrival_us);
  CHECK(m2.sender == m.sender);
  CHECK(m2.size == m.size);
  CHECK(m2.received_size == m.received_size);
  CHECK(m2.eight_bit);
  CHECK(m2.smtputf8);
  CHECK(m2.dsn_ret == m.dsn_ret);
  CHECK(m2.dsn_envid == bytes);
  CHECK(m2.client == m.client);
  CHECK(m2.refs == 3);

  QueueEntry e;
  e.id = m.id;
  e.recipient.rcpt = "b\xe9la@example.test";
  e.recipient.notify = "SUCCESS,FAILURE";
  e.recipient.orcpt = "rfc822;" + bytes;
  e.sender = m.sender;
  e.size = 99;
  e.arrival_us = 5;
  e.attempts = 7;
  e.last_attempt_us = 6;
  e.next_attempt_us = 8;
  e.last_error = latin1;
  e.parked = true;
  QueueEntry e2;
  REQUIRE(decode(encode(e), e2));
  CHECK(e2.id == e.id);
  CHECK(e2.recipient.rcpt == e.recipient.rcpt);
  CHECK(e2.recipient.notify == e.recipient.notify);
  CHECK(e2.recipient.orcpt == e.recipient.orcpt);
  CHECK(e2.sender == e.sender);
  CHECK(e2.size == 99);
  CHECK(e2.arrival_us == 5);
  CHECK(e2.attempts == 7);
  CHECK(e2.last_attempt_us == 6);
  CHECK(e2.next_attempt_us == 8);
  CHECK(e2.last_error == latin1);
  CHECK(e2.parked);

  MailboxRecord r;
  r.state = MailboxState::kMigrated;
  r.history.push_back(StateChange{1, MailboxState::kOld, MailboxState::kHeld, "holdctl (uid 0)"});
  r.history.push_back(StateChange{2, MailboxState::kHeld, MailboxState::kMigrated, bytes});
  r.deliverable_since_us = 3;
  r.last_delivery_us = 4;
  r.last_delivery = "new: " + latin1;
  r.last_error_us = 5;
  r.last_error = "550 5.1.1 Benutzer unbekannt \xfc";
  r.delivered = 10;
  r.parked = 2;
  MailboxRecord r2;
  REQUIRE(decode(encode(r), r2));
  CHECK(r2.state == MailboxState::kMigrated);
  REQUIRE(r2.history.size() == 2);
  CHECK(r2.history[0].from == MailboxState::kOld);
  CHECK(r2.history[0].to == MailboxState::kHeld);
  CHECK(r2.history[1].by == bytes);
  CHECK(r2.deliverable_since_us == 3);
  CHECK(r2.last_delivery == r.last_delivery);
  CHECK(r2.last_error == r.last_error);
  CHECK(r2.delivered == 10);
  CHECK(r2.parked == 2);
}

TEST_CASE("records: forwards, their counts and history notes survive encode and decode; absent, they read as none") {
  MessageMeta m;
  m.id = "0123456789ABCD";
  m.forwarded_by_old = true;
  MessageMeta m2;
  REQUIRE(decode(encode(m), m2));
  CHECK(m2.forwarded_by_old);
  m.forwarded_by_old = false;
  REQUIRE(decode(encode(m), m2));
  CHECK_FALSE(m2.forwarded_by_old);

  QueueEntry e;
  e.id = m.id;
  e.forwarded_by_old = true;
  QueueEntry e2;
  REQUIRE(decode(encode(e), e2));
  CHECK(e2.forwarded_by_old);

  MailboxRecord r;
  r.forwarded_by_old = 7;
  r.last_forwarded_us = 1'700'000'000'000'000;
  r.history.push_back(StateChange{1, MailboxState::kHeld, MailboxState::kHeld, "holdctl uid=0", "copy exited 0"});
  r.history.push_back(StateChange{2, MailboxState::kHeld, MailboxState::kMigrated, "holdctl uid=0", ""});
  MailboxRecord r2;
  REQUIRE(decode(encode(r), r2));
  CHECK(r2.forwarded_by_old == 7);
  CHECK(r2.last_forwarded_us == r.last_forwarded_us);
  REQUIRE(r2.history.size() == 2);
  CHECK(r2.history[0].note == "copy exited 0");
  CHECK(r2.history[1].note.empty());
  CHECK(r2.history[1].to == MailboxState::kMigrated);
}

TEST_CASE("records: JSON records of spools written before the binary format are still read") {
  QueueEntry e;
  REQUIRE(decode(R"({"id":"0661A8F4C2B1D0","r":"anna@example.com","no":"","or":"","s":"s@x.test",)"
                 R"("z":42,"t":17,"a":1,"la":2,"na":3,"e":"451 later","p":false})",
                 e));
  CHECK(e.id == "0661A8F4C2B1D0");
  CHECK(e.recipient.rcpt == "anna@example.com");
  CHECK(e.sender == "s@x.test");
  CHECK(e.size == 42);
  CHECK(e.attempts == 1);
  CHECK(e.last_error == "451 later");
  MailboxRecord r;
  REQUIRE(decode(R"({"st":"held","h":[{"t":1,"f":"old","to":"held","by":"holdctl"}],"ds":0,)"
                 R"("ldt":0,"ld":"","let":0,"le":"","nd":4,"np":0})",
                 r));
  CHECK(r.state == MailboxState::kHeld);
  REQUIRE(r.history.size() == 1);
  CHECK(r.history[0].by == "holdctl");
  CHECK(r.delivered == 4);
  MessageMeta m;
  REQUIRE(decode(R"({"id":"X","t":1,"s":"","z":2,"rz":1,"8":false,"u":false,"ret":"","env":"",)"
                 R"("c":"h [1.2.3.4]","n":1})",
                 m));
  CHECK(m.client == "h [1.2.3.4]");
}

TEST_CASE("records: damaged bytes are refused, not misread") {
  QueueEntry e;
  const std::string good = encode(e);
  CHECK_FALSE(decode("", e));
  CHECK_FALSE(decode("{not json", e));
  CHECK_FALSE(decode(good.substr(0, good.size() / 2), e));  // truncated CBOR
  CHECK_FALSE(decode("\x01\x02\x03", e));                   // not a map
}

}  // namespace holdd
