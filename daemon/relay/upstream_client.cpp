#include "holdd/relay/upstream_client.h"

#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "holdd/base/status.h"
#include "holdd/net/io_error.h"
#include "holdd/net/line_reader.h"
#include "holdd/net/smtp_stream.h"
#include "holdd/net/tls_context.h"
#include "holdd/relay/dot_stuffer.h"
#include "holdd/relay/ehlo_capabilities.h"
#include "holdd/relay/reply_parser.h"

namespace holdd {
namespace {

using Clock = std::chrono::steady_clock;
using ErrorCode = boost::system::error_code;
using namespace std::chrono_literals;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// RFC 5321 4.5.3.2.6: wait at least 10 minutes for the reply to the final dot;
// the upstream may be filtering or delivering the message meanwhile.
constexpr Clock::duration kFinalReplyTimeout = 10min;
// QUIT is a courtesy; the transaction is over either way.
constexpr Clock::duration kQuitTimeout = 5s;
// DATA goes out in chunks of this size, each with its own command_timeout, so a
// big message on a slow link is bounded by progress rather than by total time.
constexpr std::size_t kWriteChunk = 64 * 1024;
// Replies are read this much at a time.
constexpr std::size_t kReadChunk = 4096;

// Runs `op`, but gives up after `limit`: nullopt then, and `op` was cancelled.
// (A race against a timer: cancel_after needs Boost 1.86.) Operations that ignore
// cancellation, like the resolver's getaddrinfo, still finish first.
template <class T>
net::awaitable<std::optional<T>> within(Clock::duration limit, net::awaitable<T> op) {
  using namespace net::experimental::awaitable_operators;
  net::steady_timer timer(co_await net::this_coro::executor, limit);
  auto first = co_await (std::move(op) || timer.async_wait(use_tuple));
  if (first.index() != 0) co_return std::nullopt;
  co_return std::move(std::get<0>(first));
}

std::string seconds_text(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + "s";
}

// CR, LF or NUL in an envelope field would let stored data inject SMTP commands.
bool is_safe_for_command(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// EOF or reset (Status::temporary from io_failure), not a timeout or a garbage reply.
bool is_connection_loss(const Status& s) {
  return s.code() == Status::Code::kTemporary;
}

DeliveryResult deferred(std::string reason, int code = 0) {
  return {DeliveryResult::Outcome::kDeferred, code, std::move(reason)};
}

// The upstream's verdict on a reply that ends (or aborts) the transaction.
DeliveryResult verdict(const SmtpReply& reply) {
  DeliveryResult r{DeliveryResult::Outcome::kDeferred, reply.code, reply.to_string()};
  if (reply.klass() == 2) r.outcome = DeliveryResult::Outcome::kAccepted;
  if (reply.klass() == 5) r.outcome = DeliveryResult::Outcome::kRejected;
  return r;
}

// The verdict on a reply that refused the transaction before its content.
DeliveryResult refusal_result(const SmtpReply& reply) {
  DeliveryResult r = verdict(reply);
  // A 2xx cannot refuse anything; never let it count as delivered.
  if (r.outcome == DeliveryResult::Outcome::kAccepted) r.outcome = DeliveryResult::Outcome::kDeferred;
  return r;
}

}  // namespace

struct UpstreamClient::Impl {
  Impl(net::any_io_executor executor, UpstreamConfig config, std::string helo)
      : cfg(std::move(config)),
        helo_name(std::move(helo)),
        stream(executor),
        peer(host_port(cfg.host, cfg.port)),
        log_prefix("upstream " + (cfg.name.empty() ? std::string("?") : cfg.name) + " (" + peer + ")") {}

  net::awaitable<DeliveryResult> deliver(const OutgoingMessage& msg);
  net::awaitable<ProbeResult> probe(const std::string& rcpt);
  net::awaitable<ProbeResult> probe_once(const std::string& rcpt);
  net::awaitable<void> quit();
  void close();

  // Connection setup. Each returns nullopt when the client is ready for MAIL, or
  // the result that ends this delivery (the connection is then closed).
  net::awaitable<std::optional<DeliveryResult>> connect();
  net::awaitable<std::optional<DeliveryResult>> connect_once(bool use_starttls,
                                                              bool& handshake_failed);
  net::awaitable<std::optional<DeliveryResult>> hello();
  net::awaitable<std::optional<DeliveryResult>> starttls(bool& handshake_failed);
  net::awaitable<Status> handshake();
  Result<std::shared_ptr<ClientTlsContext>> tls_context();

  net::awaitable<DeliveryResult> transact(const OutgoingMessage& msg);
  std::optional<DeliveryResult> check_capabilities(const OutgoingMessage& msg,
                                                   std::size_t size) const;
  std::string mail_command(const OutgoingMessage& msg, std::size_t size) const;
  std::string rcpt_command(const OutgoingMessage& msg) const;
  net::awaitable<DeliveryResult> abort_transaction(const SmtpReply& failure);
  net::awaitable<Status> send_content(std::string_view content);

  // Protocol I/O. Errors are Status values whose message is the delivery's reason.
  net::awaitable<Status> write(std::string_view data, std::string_view what);
  net::awaitable<Status> write_unbounded(std::string_view data, std::string_view what);
  net::awaitable<Result<SmtpReply>> read_reply(std::string_view what, Clock::duration limit);
  net::awaitable<Result<SmtpReply>> read_reply_unbounded(std::string_view what);
  net::awaitable<Result<std::string>> read_line(std::string_view what);
  net::awaitable<Result<SmtpReply>> command(const std::string& line, std::string_view what);
  // `during` completes "lost connection to HOST", e.g. " while sending DATA".
  Status io_failure(const ErrorCode& ec, const std::string& during) const;
  DeliveryResult fail(const Status& s);
  DeliveryResult refused(const SmtpReply& reply, std::string_view what);

  UpstreamConfig cfg;
  std::string helo_name;
  SmtpStream stream;
  std::string peer;        // "host:port", for messages
  std::string log_prefix;  // "upstream old (host:port)"
  std::shared_ptr<ClientTlsContext> tls_ctx;  // made at the first STARTTLS
  // Received, not yet parsed. Unbounded here: read_line() refuses a reply line
  // longer than the reply parser takes.
  LineReader input{std::numeric_limits<std::size_t>::max(), LineEnd::kLf};
  EhloCapabilities caps;
  bool open = false;  // connected, greeted, and between transactions
  // The last transaction failed because the connection was gone (EOF, reset, 421)
  // before MAIL was answered, i.e. before the upstream saw anything of it.
  bool stale = false;
  Clock::time_point last_used{};
};

// ---------------------------------------------------------------------------
// Delivery

net::awaitable<DeliveryResult> UpstreamClient::Impl::deliver(const OutgoingMessage& msg) {
  last_used = Clock::now();
  if (!is_safe_for_command(msg.sender) || !is_safe_for_command(msg.rcpt) ||
      !is_safe_for_command(msg.dsn_ret) || !is_safe_for_command(msg.dsn_envid) ||
      !is_safe_for_command(msg.dsn_notify) || !is_safe_for_command(msg.dsn_orcpt)) {
    // Cannot come from our intake; sending it would smuggle commands. Park it.
    spdlog::error("{}: {}: envelope contains CR, LF or NUL; not sent", log_prefix, msg.queue_id);
    co_return DeliveryResult{DeliveryResult::Outcome::kRejected, 501,
                             "501 5.5.2 envelope contains CR, LF or NUL (not sent)"};
  }
  const bool reused = open;
  if (!open) {
    if (std::optional<DeliveryResult> failure = co_await connect()) {
      last_used = Clock::now();
      co_return std::move(*failure);
    }
  }
  stale = false;
  DeliveryResult result = co_await transact(msg);
  if (reused && stale) {
    // The upstream dropped the idle connection (its own timeout) before MAIL was
    // answered, so nothing of this message reached it: that is no reason to wait
    // for a retry. Reconnect once.
    spdlog::debug("{}: reused connection was closed by the upstream; reconnecting", log_prefix);
    if (std::optional<DeliveryResult> failure = co_await connect()) {
      last_used = Clock::now();
      co_return std::move(*failure);
    }
    result = co_await transact(msg);
  }
  last_used = Clock::now();
  co_return result;
}

// ---------------------------------------------------------------------------
// Probe: MAIL FROM:<> (the null sender: no bounce can come of it), RCPT TO, RSET.

net::awaitable<ProbeResult> UpstreamClient::Impl::probe(const std::string& rcpt) {
  using Verdict = ProbeResult::Verdict;
  last_used = Clock::now();
  if (!is_safe_for_command(rcpt)) co_return ProbeResult{Verdict::kUnknown, "address contains CR, LF or NUL"};
  const bool reused = open;
  if (!open) {
    if (std::optional<DeliveryResult> failure = co_await connect()) co_return ProbeResult{Verdict::kUnknown, failure->reply};
  }
  stale = false;
  ProbeResult result = co_await probe_once(rcpt);
  if (reused && stale) {
    // Dropped while idle (the upstream's own timeout) before it answered MAIL.
    spdlog::debug("{}: reused connection was closed by the upstream; reconnecting", log_prefix);
    if (std::optional<DeliveryResult> failure = co_await connect()) co_return ProbeResult{Verdict::kUnknown, failure->reply};
    result = co_await probe_once(rcpt);
  }
  last_used = Clock::now();
  co_return result;
}

net::awaitable<ProbeResult> UpstreamClient::Impl::probe_once(const std::string& rcpt) {
  using Verdict = ProbeResult::Verdict;
  Result<SmtpReply> mail = co_await command("MAIL FROM:<>", "MAIL");
  if (!mail) {
    stale = is_connection_loss(mail.status());
    co_return ProbeResult{Verdict::kUnknown, fail(mail.status()).reply};
  }
  if (mail->code == 421) {
    stale = true;
    close();
    co_return ProbeResult{Verdict::kUnknown, mail->to_string()};
  }
  if (!mail->is_positive()) {
    // The upstream refuses the null sender: it says nothing about the mailbox.
    co_await abort_transaction(*mail);
    co_return ProbeResult{Verdict::kUnknown, "MAIL FROM:<> refused: " + mail->to_string()};
  }
  Result<SmtpReply> reply = co_await command("RCPT TO:<" + rcpt + ">", "RCPT");
  if (!reply) co_return ProbeResult{Verdict::kUnknown, fail(reply.status()).reply};
  const Verdict verdict = reply->is_positive() ? Verdict::kAccepted
                          : reply->klass() == 5 ? Verdict::kRefused
                                                : Verdict::kUnknown;
  ProbeResult result{verdict, reply->to_string()};
  if (reply->code == 421) {
    close();
    co_return result;
  }
  Result<SmtpReply> rset = co_await command("RSET", "RSET");
  if (!rset || rset->code != 250) close();
  co_return result;
}

net::awaitable<DeliveryResult> UpstreamClient::Impl::transact(const OutgoingMessage& msg) {
  static const std::string kNoContent;
  const std::string& content = msg.content != nullptr ? *msg.content : kNoContent;
  if (std::optional<DeliveryResult> refusal = check_capabilities(msg, content.size())) {
    co_return std::move(*refusal);
  }

  const std::string mail = mail_command(msg, content.size());
  const std::string rcpt = rcpt_command(msg);
  SmtpReply mail_reply, rcpt_reply, data_reply;
  if (caps.pipelining) {
    // RFC 2920 3.1: MAIL, RCPT and DATA in one write, replies read in order. Each
    // reply is read even after a refusal, to keep the stream in step.
    spdlog::debug("{} <- {} | {} | DATA", log_prefix, mail, rcpt);
    if (Status s = co_await write(mail + "\r\n" + rcpt + "\r\nDATA\r\n", "MAIL"); !s.is_ok()) {
      stale = is_connection_loss(s);
      co_return fail(s);
    }
    const std::string_view steps[] = {"MAIL", "RCPT", "DATA"};
    SmtpReply* const replies[] = {&mail_reply, &rcpt_reply, &data_reply};
    const SmtpReply* refusal = nullptr;  // the first one decides the outcome
    for (int i = 0; i < 3; ++i) {
      Result<SmtpReply> r = co_await read_reply(steps[i], cfg.command_timeout);
      if (!r) {
        if (i == 0) stale = is_connection_loss(r.status());
        if (refusal == nullptr) co_return fail(r.status());
        // Refused already: the upstream hanging up afterwards changes nothing.
        close();
        co_return refusal_result(*refusal);
      }
      *replies[i] = std::move(*r);
      if (i < 2 && !replies[i]->is_positive() && refusal == nullptr) refusal = replies[i];
      if (replies[i]->code == 421) {
        // RFC 5321 3.8: the upstream is closing; no further replies will come.
        if (i == 0) stale = true;
        close();
        co_return refusal_result(refusal != nullptr ? *refusal : *replies[i]);
      }
    }
    if (refusal != nullptr && data_reply.code == 354) {
      // A server that accepted DATA without a valid transaction gets an empty
      // message ended at once (RFC 2920 3.1); its reply does not matter.
      if (Status s = co_await write(".\r\n", "end of data"); !s.is_ok()) co_return fail(s);
      Result<SmtpReply> ignored = co_await read_reply("end of data", cfg.command_timeout);
      if (!ignored) co_return fail(ignored.status());
    }
    if (refusal != nullptr) co_return co_await abort_transaction(*refusal);
  } else {
    Result<SmtpReply> r = co_await command(mail, "MAIL");
    if (!r) {
      stale = is_connection_loss(r.status());
      co_return fail(r.status());
    }
    if (r->code == 421) stale = true;
    if (!r->is_positive()) co_return co_await abort_transaction(*r);
    r = co_await command(rcpt, "RCPT");
    if (!r) co_return fail(r.status());
    if (!r->is_positive()) co_return co_await abort_transaction(*r);
    r = co_await command("DATA", "DATA");
    if (!r) co_return fail(r.status());
    data_reply = std::move(*r);
  }
  if (data_reply.code != 354) {
    if (data_reply.klass() == 4 || data_reply.klass() == 5) {
      co_return co_await abort_transaction(data_reply);
    }
    close();  // 2xx or another 3xx to DATA: we no longer know what the upstream expects
    co_return deferred("unexpected reply to DATA from " + peer + ": " + data_reply.to_string(),
                       data_reply.code);
  }

  if (Status s = co_await send_content(content); !s.is_ok()) co_return fail(s);
  // For LMTP this is the reply for our one recipient (RFC 2033 4.2).
  Result<SmtpReply> final_reply = co_await read_reply("end of data", kFinalReplyTimeout);
  // Losing the connection here is the one at-least-once window (SPEC): the
  // upstream may have taken the message; we defer and send it again later.
  if (!final_reply) co_return fail(final_reply.status());
  // A 421 means the upstream is closing (RFC 5321 3.8): do not offer it for reuse.
  if (final_reply->klass() == 3 || final_reply->code == 421) close();
  if (final_reply->klass() == 3) {
    co_return deferred("unexpected reply to end of data from " + peer + ": " +
                           final_reply->to_string(),
                       final_reply->code);
  }
  co_return verdict(*final_reply);
}

std::optional<DeliveryResult> UpstreamClient::Impl::check_capabilities(
    const OutgoingMessage& msg, std::size_t size) const {
  // Downgrading 8-bit or UTF-8 mail (RFC 6152 3, RFC 6531 3.2) would change the
  // message: keep it and wait, the operator can fix the upstream.
  if (msg.eight_bit && !caps.eight_bit_mime) {
    spdlog::info("{}: {}: upstream does not offer 8BITMIME; deferred", log_prefix, msg.queue_id);
    return deferred("upstream does not offer 8BITMIME");
  }
  if (msg.smtputf8 && !caps.smtputf8) {
    spdlog::info("{}: {}: upstream does not offer SMTPUTF8; deferred", log_prefix, msg.queue_id);
    return deferred("upstream does not offer SMTPUTF8");
  }
  if (caps.size && caps.max_size != 0 && size > caps.max_size) {
    // The upstream said in advance it would refuse this (RFC 1870 6.1): a 552.
    spdlog::info("{}: {}: message of {} bytes exceeds the upstream's SIZE {}", log_prefix,
                 msg.queue_id, size, caps.max_size);
    return DeliveryResult{DeliveryResult::Outcome::kRejected, 552,
                          "552 5.3.4 message size " + std::to_string(size) +
                              " exceeds the upstream's limit of " +
                              std::to_string(caps.max_size) + " (SIZE)"};
  }
  return std::nullopt;
}

std::string UpstreamClient::Impl::mail_command(const OutgoingMessage& msg,
                                               std::size_t size) const {
  std::string line = "MAIL FROM:<" + msg.sender + ">";
  if (caps.size) line += " SIZE=" + std::to_string(size);
  if (msg.eight_bit && caps.eight_bit_mime) line += " BODY=8BITMIME";
  if (msg.smtputf8 && caps.smtputf8) line += " SMTPUTF8";
  // DSN parameters are passed on only to an upstream that understands them
  // (RFC 3461 4.1: the relay then owes no DSN of its own for dropping them).
  if (caps.dsn && !msg.dsn_ret.empty()) line += " RET=" + msg.dsn_ret;
  if (caps.dsn && !msg.dsn_envid.empty()) line += " ENVID=" + msg.dsn_envid;
  return line;
}

std::string UpstreamClient::Impl::rcpt_command(const OutgoingMessage& msg) const {
  std::string line = "RCPT TO:<" + msg.rcpt + ">";
  if (caps.dsn && !msg.dsn_notify.empty()) line += " NOTIFY=" + msg.dsn_notify;
  if (caps.dsn && !msg.dsn_orcpt.empty()) line += " ORCPT=" + msg.dsn_orcpt;
  return line;
}

// A transaction refused before the content: RSET so the connection can carry the
// next one, unless the upstream is no longer in a clean state.
net::awaitable<DeliveryResult> UpstreamClient::Impl::abort_transaction(const SmtpReply& failure) {
  const DeliveryResult result = refusal_result(failure);
  if (failure.code == 421) {
    // 421: the upstream is closing the connection (RFC 5321 3.8).
    close();
    co_return result;
  }
  Result<SmtpReply> rset = co_await command("RSET", "RSET");
  if (!rset || rset->code != 250) close();
  co_return result;
}

net::awaitable<Status> UpstreamClient::Impl::send_content(std::string_view content) {
  DotStuffer stuffer(content);
  std::string chunk;
  chunk.reserve(kWriteChunk + 8);
  for (;;) {
    chunk.clear();
    if (!stuffer.next(chunk, kWriteChunk)) break;
    if (Status s = co_await write(chunk, "message content"); !s.is_ok()) co_return s;
  }
  co_return Status::ok();
}

// ---------------------------------------------------------------------------
// Connection setup

net::awaitable<std::optional<DeliveryResult>> UpstreamClient::Impl::connect() {
  bool handshake_failed = false;
  std::optional<DeliveryResult> failure =
      co_await connect_once(cfg.tls != UpstreamTls::kNone, handshake_failed);
  if (failure && handshake_failed && cfg.tls == UpstreamTls::kOpportunistic) {
    // A failed handshake leaves the connection unusable, but opportunistic TLS
    // (RFC 7435) must not cost the delivery: start over in plain text.
    spdlog::info("{}: opportunistic TLS failed; retrying without TLS", log_prefix);
    failure = co_await connect_once(false, handshake_failed);
  }
  co_return failure;
}

net::awaitable<std::optional<DeliveryResult>> UpstreamClient::Impl::connect_once(
    bool use_starttls, bool& handshake_failed) {
  close();
  std::optional<Status> connected =
      co_await within(cfg.connect_timeout, stream.connect(cfg.host, cfg.port));
  if (!connected) connected = Status::timeout("connect to " + peer + ": timed out after " +
                                              seconds_text(cfg.connect_timeout));
  if (!connected->is_ok()) co_return fail(*connected);
  spdlog::debug("{}: connected", log_prefix);

  Result<SmtpReply> greeting = co_await read_reply("greeting", cfg.command_timeout);
  if (!greeting) co_return fail(greeting.status());
  spdlog::debug("{} -> {}", log_prefix, greeting->to_string());
  if (greeting->code != 220) co_return refused(*greeting, "greeting");

  if (std::optional<DeliveryResult> failure = co_await hello()) co_return failure;
  if (use_starttls) {
    if (std::optional<DeliveryResult> failure = co_await starttls(handshake_failed)) {
      co_return failure;
    }
  }
  open = true;
  co_return std::nullopt;
}

net::awaitable<std::optional<DeliveryResult>> UpstreamClient::Impl::hello() {
  const bool lmtp = cfg.protocol == UpstreamProtocol::kLmtp;
  const std::string verb = lmtp ? "LHLO" : "EHLO";
  Result<SmtpReply> reply = co_await command(verb + " " + helo_name, verb);
  if (!reply) co_return fail(reply.status());
  if (reply->is_positive()) {
    caps = EhloCapabilities::parse(*reply);
    co_return std::nullopt;
  }
  if (!lmtp && reply->klass() == 5) {
    // RFC 5321 4.1.4 / 3.2: an old server that does not know EHLO says 5xx; HELO
    // then works, without extensions.
    reply = co_await command("HELO " + helo_name, "HELO");
    if (!reply) co_return fail(reply.status());
    if (reply->is_positive()) {
      caps = EhloCapabilities{};
      co_return std::nullopt;
    }
    co_return refused(*reply, "HELO");
  }
  co_return refused(*reply, verb);
}

net::awaitable<std::optional<DeliveryResult>> UpstreamClient::Impl::starttls(
    bool& handshake_failed) {
  const bool required = cfg.tls == UpstreamTls::kRequired;
  if (!caps.starttls) {
    if (!required) co_return std::nullopt;
    // Never fall back to plain text when TLS is required: the message waits.
    spdlog::info("{}: does not offer STARTTLS (tls = required)", log_prefix);
    close();
    co_return deferred("upstream " + peer + " does not offer STARTTLS (tls = required)");
  }
  Result<SmtpReply> reply = co_await command("STARTTLS", "STARTTLS");
  if (!reply) co_return fail(reply.status());
  if (reply->code != 220) {
    if (!required) {
      // The session is still in its pre-STARTTLS state: go on in plain text.
      spdlog::info("{}: STARTTLS refused ({}); continuing without TLS", log_prefix,
                   reply->to_string());
      co_return std::nullopt;
    }
    close();
    co_return deferred("upstream " + peer + " refused STARTTLS (tls = required): " +
                           reply->to_string(),
                       reply->code);
  }
  if (input.buffered_size() > 0) {
    // Bytes after the 220 arrived in plain text but would be read as if they came
    // through TLS (the client side of CVE-2011-0411): someone is injecting.
    close();
    co_return deferred("upstream " + peer + " sent data after its STARTTLS reply");
  }
  if (Status s = co_await handshake(); !s.is_ok()) {
    handshake_failed = true;
    co_return fail(s);
  }
  // RFC 3207 4.2: forget what was learned before TLS and ask again.
  caps = EhloCapabilities{};
  co_return co_await hello();
}

net::awaitable<Status> UpstreamClient::Impl::handshake() {
  Result<std::shared_ptr<ClientTlsContext>> ctx = tls_context();
  if (!ctx) co_return ctx.status();
  const std::string name = cfg.tls_name.empty() ? cfg.host : cfg.tls_name;
  std::optional<Status> done = co_await within(cfg.command_timeout, stream.handshake(*ctx, name));
  if (!done) co_return Status::timeout("timeout in TLS handshake with " + peer);
  if (!done->is_ok()) co_return *done;
  const TlsInfo tls = stream.tls_info().value_or(TlsInfo{"unknown", "unknown"});
  spdlog::info("{}: TLS established ({}, {}{})", log_prefix, tls.version, tls.cipher,
               (*ctx)->verifies() ? ", certificate verified" : "");
  co_return Status::ok();
}

Result<std::shared_ptr<ClientTlsContext>> UpstreamClient::Impl::tls_context() {
  if (tls_ctx) return tls_ctx;
  Result<std::shared_ptr<ClientTlsContext>> ctx =
      ClientTlsContext::load(cfg.tls == UpstreamTls::kRequired, cfg.ca_file);
  if (ctx) tls_ctx = *ctx;
  return ctx;
}

// ---------------------------------------------------------------------------
// Protocol I/O

net::awaitable<Result<SmtpReply>> UpstreamClient::Impl::command(const std::string& line,
                                                                std::string_view what) {
  spdlog::debug("{} <- {}", log_prefix, line);
  if (Status s = co_await write(line + "\r\n", what); !s.is_ok()) co_return s;
  co_return co_await read_reply(what, cfg.command_timeout);
}

net::awaitable<Status> UpstreamClient::Impl::write(std::string_view data, std::string_view what) {
  std::optional<Status> s = co_await within(cfg.command_timeout, write_unbounded(data, what));
  if (!s) co_return Status::timeout("timeout sending " + std::string(what) + " to " + peer);
  co_return *s;
}

net::awaitable<Status> UpstreamClient::Impl::write_unbounded(std::string_view data,
                                                             std::string_view what) {
  const ErrorCode ec = co_await stream.write(data);
  if (ec) co_return io_failure(ec, " while sending " + std::string(what));
  co_return Status::ok();
}

net::awaitable<Result<SmtpReply>> UpstreamClient::Impl::read_reply(std::string_view what,
                                                                   Clock::duration limit) {
  std::optional<Result<SmtpReply>> reply = co_await within(limit, read_reply_unbounded(what));
  if (!reply) {
    const std::string waited_for =
        what == "greeting" ? std::string("greeting") : "reply to " + std::string(what);
    co_return Status::timeout("timeout waiting for " + waited_for + " from " + peer);
  }
  if (reply->ok()) spdlog::debug("{} -> {}", log_prefix, (*reply)->to_string());
  co_return std::move(*reply);
}

net::awaitable<Result<SmtpReply>> UpstreamClient::Impl::read_reply_unbounded(
    std::string_view what) {
  ReplyParser parser;
  for (;;) {
    Result<std::string> line = co_await read_line(what);
    if (!line) co_return line.status();
    switch (parser.feed(*line)) {
      case ReplyParser::State::kComplete: co_return parser.take();
      case ReplyParser::State::kGarbage:
        co_return Status::invalid("garbage " + std::string(what == "greeting" ? "" : "reply to ") +
                                  std::string(what) + " from " + peer + ": " + parser.error());
      case ReplyParser::State::kNeedMore: break;
    }
  }
}

net::awaitable<Result<std::string>> UpstreamClient::Impl::read_line(std::string_view what) {
  for (;;) {
    if (std::optional<CommandLine> line = input.next_line()) co_return std::move(line->text);
    if (input.buffered_size() > ReplyParser::kMaxLineLength + 1) {
      co_return Status::invalid("garbage reply to " + std::string(what) + " from " + peer +
                                ": reply line longer than 4096 bytes");
    }
    std::span<char> room = input.prepare(kReadChunk);
    auto [ec, n] = co_await stream.read_some(room);
    input.commit(ec ? 0 : n);
    if (ec) {
      co_return io_failure(ec, what == "greeting" ? std::string(" while waiting for greeting")
                                                  : " while waiting for reply to " + std::string(what));
    }
  }
}

// The upstream hanging up is said plainly; a reset, a TLS failure or a cancel
// with the error's words.
Status UpstreamClient::Impl::io_failure(const ErrorCode& ec, const std::string& during) const {
  if (is_eof(ec)) return Status::temporary("connection closed by " + peer + during);
  return from_io_error(ec, "lost connection to " + peer + during);
}

// I/O trouble: the connection is in an unknown state, close it and retry later.
DeliveryResult UpstreamClient::Impl::fail(const Status& s) {
  spdlog::info("{}: {}", log_prefix, s.message());
  close();
  return deferred(s.message());
}

// The upstream refused the session itself (greeting, EHLO/HELO/LHLO): close it
// and retry later. Even a 5xx here is about this connection, not the message
// (Postfix defers too): parking mail because a server is misconfigured or
// refusing our address would need an operator for every message.
DeliveryResult UpstreamClient::Impl::refused(const SmtpReply& reply, std::string_view what) {
  spdlog::info("{}: refused at {}: {}", log_prefix, what, reply.to_string());
  close();
  return deferred(reply.to_string(), reply.code);
}

net::awaitable<void> UpstreamClient::Impl::quit() {
  if (!open) {
    close();
    co_return;
  }
  open = false;
  auto say_quit = [this]() -> net::awaitable<Status> {
    spdlog::debug("{} <- QUIT", log_prefix);
    if (Status s = co_await write_unbounded("QUIT\r\n", "QUIT"); !s.is_ok()) co_return s;
    Result<SmtpReply> reply = co_await read_reply_unbounded("QUIT");
    if (reply.ok()) spdlog::debug("{} -> {}", log_prefix, reply->to_string());
    co_return reply.ok() ? Status::ok() : reply.status();
  };
  (void)co_await within(kQuitTimeout, say_quit());
  close();
}

void UpstreamClient::Impl::close() {
  open = false;
  input.clear();
  caps = EhloCapabilities{};
  stream.disconnect();
}

// ---------------------------------------------------------------------------

Status check_tls_settings(const UpstreamConfig& upstream) {
  if (upstream.tls != UpstreamTls::kRequired) return Status::ok();
  Result<std::shared_ptr<ClientTlsContext>> ctx = ClientTlsContext::load(true, upstream.ca_file);
  if (!ctx) {
    const std::string key = "upstream." + upstream.name + "." +
                            (upstream.ca_file.empty() ? "tls" : "ca_file");
    return Status::invalid(key + ": " + ctx.status().message());
  }
  return Status::ok();
}

UpstreamClient::UpstreamClient(net::any_io_executor ex, UpstreamConfig upstream,
                               std::string helo_name)
    : impl_(std::make_unique<Impl>(std::move(ex), std::move(upstream), std::move(helo_name))) {}

UpstreamClient::~UpstreamClient() = default;

net::awaitable<DeliveryResult> UpstreamClient::deliver(const OutgoingMessage& msg) {
  return impl_->deliver(msg);
}

net::awaitable<ProbeResult> UpstreamClient::probe(const std::string& rcpt) { return impl_->probe(rcpt); }

std::string_view to_string(ProbeResult::Verdict v) {
  switch (v) {
    case ProbeResult::Verdict::kAccepted: return "accepted";
    case ProbeResult::Verdict::kRefused: return "refused";
    case ProbeResult::Verdict::kUnknown: return "unknown";
  }
  return "unknown";
}

bool UpstreamClient::is_open() const { return impl_->open; }

net::awaitable<void> UpstreamClient::quit() { return impl_->quit(); }

void UpstreamClient::close() { impl_->close(); }

std::chrono::steady_clock::time_point UpstreamClient::last_used() const {
  return impl_->last_used;
}

const UpstreamConfig& UpstreamClient::upstream() const { return impl_->cfg; }

}  // namespace holdd
