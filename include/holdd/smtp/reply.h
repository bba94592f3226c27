#pragma once
// An SMTP reply as holdd sends it (RFC 5321 4.2), with its RFC 3463 enhanced
// status code (RFC 2034: every 2xx/4xx/5xx reply except the greeting and the
// HELO/EHLO replies carries one). Factories name every reply the session sends,
// so the wording lives in one file.
#include <string>
#include <string_view>

#include "holdd/base/status.h"

namespace holdd::smtp {

struct Reply {
  int code = 250;
  std::string enhanced;  // "2.0.0"; empty for 220 greeting, EHLO/HELO, 354
  std::string text;      // '\n' separates the lines of a multi-line reply
  bool closes_connection = false;
  bool starts_tls = false;  // the session shakes hands once this is written

  // The wire form: "250-first\r\n250 last\r\n", each line prefixed with the
  // enhanced code when there is one.
  std::string to_wire() const;
  // The first line as it goes on the wire, without CRLF (for logs).
  std::string summary() const;
  int code_class() const { return code / 100; }
  bool is_error() const { return code >= 400; }

  // ---- connection ----
  static Reply greeting(std::string_view hostname);        // 220 HOST ESMTP holdd
  static Reply bye();                                      // 221 2.0.0 Bye
  static Reply too_many_connections();                     // 421 4.7.0
  static Reply too_many_connections_from_ip();             // 421 4.7.0
  static Reply too_many_errors(std::string_view hostname); // 421 4.7.0
  static Reply timeout(std::string_view hostname);         // 421 4.4.2
  static Reply shutting_down(std::string_view hostname);   // 421 4.3.2
  // ---- greetings ----
  // 250-HOST / 250-PIPELINING / ... / 250 DSN.
  static Reply ehlo(std::string_view hostname, uint64_t max_message_size, bool tls_offered);
  static Reply helo(std::string_view hostname);            // 250 HOST
  // ---- ordinary ----
  static Reply ok();                                       // 250 2.0.0 Ok
  static Reply sender_ok();                                // 250 2.1.0 Ok
  static Reply recipient_ok();                             // 250 2.1.5 Ok
  static Reply start_data();                               // 354
  static Reply queued(std::string_view id);                // 250 2.0.0 Ok: queued as ID
  static Reply chunk_ok(uint64_t octets);                  // 250 2.0.0 Ok: N octets
  static Reply cannot_vrfy();                              // 252 2.5.2
  static Reply help();                                     // 214 2.0.0
  static Reply ready_to_start_tls();                       // 220 2.0.0, starts_tls
  // ---- refusals the client must fix (5xx) ----
  static Reply syntax(std::string_view text);              // 501 5.5.2 TEXT
  static Reply bad_parameter(std::string_view text);       // 501 5.5.4 TEXT
  static Reply unsupported_parameter(std::string_view p);  // 555 5.5.4
  static Reply bad_sender(std::string_view why);           // 501 5.1.7
  static Reply bad_recipient(std::string_view why);        // 501 5.1.3
  static Reply needs_smtputf8();                           // 553 5.6.7
  static Reply unrecognized();                             // 500 5.5.2
  static Reply line_too_long();                            // 500 5.5.2
  static Reply bare_newline();                             // 500 5.5.2
  static Reply not_implemented();                          // 502 5.5.1
  static Reply bad_sequence(std::string_view text);        // 503 5.5.1 TEXT
  static Reply no_valid_recipients();                      // 554 5.5.1
  static Reply relay_denied(std::string_view rcpt);        // 550 5.7.1
  static Reply unknown_user(std::string_view rcpt);        // 550 5.1.1
  static Reply routing_refused(std::string_view rcpt);     // 550 5.7.1
  static Reply message_too_big();                          // 552 5.3.4
  static Reply too_many_hops();                            // 554 5.4.6
  // ---- what holdd cannot do right now (4xx) ----
  static Reply too_many_recipients();                      // 452 4.5.3
  static Reply unverified_recipient(std::string_view rcpt);  // 450 4.1.1
  static Reply no_storage();                               // 452 4.3.1
  static Reply local_error();                              // 451 4.3.0
};

// The one place a Status becomes SMTP text: our own trouble is always a 4xx
// (SPEC: never a 5xx for what the sender cannot fix). Details of the Status go
// to the log, never to the client.
Reply reply_for(const Status& s);

}  // namespace holdd::smtp
