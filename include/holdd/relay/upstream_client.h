#pragma once
// An UpstreamClient is one SMTP or LMTP client connection to an upstream (the old
// or the new server). It delivers one message to one recipient per transaction and
// can be reused for the next (connection reuse; RSET after a failed transaction).
// It is the client side of the protocol only: connecting, TLS and reading lines
// are net/'s SmtpStream, ClientTlsContext and LineReader.
// Use from one coroutine at a time, on the io_context's thread.
#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "holdd/base/status.h"
#include "holdd/config/config.h"

namespace holdd {

namespace net = boost::asio;

// What to send: envelope and content as the spool holds them.
struct OutgoingMessage {
  std::string queue_id;  // for logs
  std::string sender;    // "" for the null reverse-path <>
  std::string rcpt;
  bool eight_bit = false;  // BODY=8BITMIME
  bool smtputf8 = false;   // SMTPUTF8
  std::string dsn_ret;     // RET=, passed on only if the upstream offers DSN
  std::string dsn_envid;   // ENVID=
  std::string dsn_notify;  // NOTIFY=
  std::string dsn_orcpt;   // ORCPT=
  const std::string* content = nullptr;  // CRLF lines, not dot-stuffed; not owned
};

// The upstream's verdict on one delivery.
struct DeliveryResult {
  enum class Outcome {
    kAccepted,  // 2xx after DATA (for LMTP: this recipient's reply): remove from spool
    kDeferred,  // 4xx, connection failure, timeout, TLS required but impossible,
                // or a capability we need is missing (8BITMIME, SMTPUTF8): retry later
    kRejected,  // 5xx: park the message
  };
  Outcome outcome = Outcome::kDeferred;
  int code = 0;       // last reply code, 0 if none (connection failure)
  std::string reply;  // "250 2.0.0 Ok: queued as X" or "connect to h:25: Connection refused"
  bool accepted() const { return outcome == Outcome::kAccepted; }
};

// The upstream's answer to "do you know this recipient?" (holdctl probe, release
// --verify): MAIL FROM:<>, RCPT TO, RSET; nothing is delivered.
struct ProbeResult {
  enum class Verdict {
    kAccepted,  // 2xx to RCPT
    kRefused,   // 5xx to RCPT: the upstream does not know the address
    kUnknown,   // 4xx, no connection, a timeout, a refused MAIL FROM:<>: cannot tell
  };
  Verdict verdict = Verdict::kUnknown;
  std::string reply;  // the upstream's reply to RCPT, or why there is none
};
std::string_view to_string(ProbeResult::Verdict v);  // "accepted", "refused", "unknown"

// Whether the TLS settings of `upstream` can be used, so that a bad one is found by
// --check-config, at start and on SIGHUP rather than as a deferral of every
// delivery: for tls = "required", its ca_file (or the system store) must load and
// hold a certificate. The error names the key and the file.
Status check_tls_settings(const UpstreamConfig& upstream);

class UpstreamClient {
 public:
  // `helo_name` is said in EHLO/LHLO. Connects lazily on the first deliver().
  UpstreamClient(net::any_io_executor ex, UpstreamConfig upstream, std::string helo_name);
  ~UpstreamClient();
  UpstreamClient(const UpstreamClient&) = delete;
  UpstreamClient& operator=(const UpstreamClient&) = delete;

  // Connects (and greets, and STARTTLS per upstream.tls) if not connected, then runs
  // one transaction. Never throws for network or protocol trouble: it is a
  // kDeferred result. After any failure the connection is closed (next call
  // reconnects) unless the upstream is still in a clean state (RSET answered 250).
  net::awaitable<DeliveryResult> deliver(const OutgoingMessage& msg);
  // Asks whether the upstream knows `rcpt` (connecting as deliver() does, same TLS
  // rules), and leaves the connection open for the next probe. A connection the
  // upstream dropped while idle is reopened once.
  net::awaitable<ProbeResult> probe(const std::string& rcpt);
  // True while connected and in a state to start the next transaction.
  bool is_open() const;
  // QUIT (bounded wait) and close. Safe to call when not connected.
  net::awaitable<void> quit();
  // Close at once, without QUIT (shutdown, cancellation).
  void close();
  std::chrono::steady_clock::time_point last_used() const;
  const UpstreamConfig& upstream() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace holdd
