#include "holdd/smtp/session.h"

#include <algorithm>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "holdd/base/clock.h"
#include "holdd/base/maillog.h"
#include "holdd/net/io_error.h"
#include "holdd/net/tls_context.h"
#include "holdd/smtp/data_reader.h"
#include "holdd/smtp/memory_budget.h"
#include "holdd/smtp/message_headers.h"

namespace holdd::smtp {
namespace {

using net::ip::tcp;
constexpr auto kAsTuple = net::as_tuple(net::use_awaitable);
constexpr size_t kReadSize = 64 * 1024;
constexpr size_t kMinReadSize = 4 * 1024;
// What the memory budget must cover before a 354 (and before each BDAT chunk):
// with less than this left, the client is refused before it uploads.
constexpr uint64_t kFirstContent = 64 * 1024;
// Spare room behind the content for the headers holdd prepends (Received:,
// Authentication-Results:, Message-ID:), so that they go in without a copy.
constexpr size_t kHeaderRoom = 8 * 1024;

// Puts `prefix` in front of `content`: in place when the spare capacity holds
// it (the usual case), else into a new string, charged first (the old and the
// new one exist at once). False when the budget cannot cover that.
bool prepend(std::string& content, const std::string& prefix,
             MessageMemoryBudget::Reservation& held) {
  if (prefix.size() <= content.capacity() - content.size()) {
    content.insert(0, prefix);
    return true;
  }
  const uint64_t joined = content.size() + prefix.size();
  const uint64_t need = std::max<uint64_t>(content.capacity() + joined,
                                           MessageBuffer::kPeakCopies * joined);
  if (need > held.bytes() && !held.grow(need - held.bytes())) return false;
  std::string out;
  out.reserve(static_cast<size_t>(joined));
  out += prefix;
  out += content;
  content.swap(out);
  return true;
}

std::string peer_ip(const tcp::socket& socket) {
  boost::system::error_code ec;
  tcp::endpoint ep = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  net::ip::address a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    a = net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6());
  }
  return a.to_string();
}

uint16_t peer_port(const tcp::socket& socket) {
  boost::system::error_code ec;
  tcp::endpoint ep = socket.remote_endpoint(ec);
  return ec ? 0 : ep.port();
}

const char* verb_name(Verb v) {
  switch (v) {
    case Verb::kEhlo: return "ehlo";
    case Verb::kHelo: return "helo";
    case Verb::kMail: return "mail";
    case Verb::kRcpt: return "rcpt";
    case Verb::kData: return "data";
    case Verb::kBdat: return "bdat";
    case Verb::kRset: return "rset";
    case Verb::kNoop: return "noop";
    case Verb::kQuit: return "quit";
    case Verb::kVrfy: return "vrfy";
    case Verb::kHelp: return "help";
    case Verb::kStarttls: return "starttls";
    case Verb::kNotImplemented: return "unimplemented";
    case Verb::kUnknown: return "unknown";
  }
  return "unknown";
}

}  // namespace

Session::Session(tcp::socket socket, SessionDeps deps)
    : stream_(std::move(socket)),
      deps_(std::move(deps)),
      config_(deps_.config),
      directory_(deps_.directory ? deps_.directory() : nullptr),
      timer_(stream_.socket().get_executor()) {
  client_.ip = peer_ip(stream_.socket());
  client_.port = peer_port(stream_.socket());
}

Session::~Session() = default;

void Session::request_stop() {
  stop_requested_ = true;
  timer_.cancel();  // the watchdog looks again: an idle session ends now
}

void Session::terminate() {
  terminated_ = true;
  timer_.cancel();
}

void Session::set_deadline(Clock::time_point when) {
  deadline_ = when;
  // The watchdog sleeps until the deadline it saw: wake it when this one is sooner.
  if (when < timer_.expiry()) timer_.cancel();
}

net::awaitable<void> Session::run() {
  using namespace net::experimental::awaitable_operators;
  maillog::connect(client_.rdns.empty() ? "unknown" : client_.rdns, client_.ip);
  // The first to finish cancels the other: a timeout or shutdown interrupts
  // the conversation wherever it waits (an unfinished DATA is dropped).
  co_await (converse() || watchdog());
  switch (end_) {
    case End::kTimeout: say_goodbye(Reply::timeout(config_->hostname)); break;
    case End::kShutdown: say_goodbye(Reply::shutting_down(config_->hostname)); break;
    case End::kTerminated:
    case End::kNone: break;
  }
  stream_.close();

  std::string stats;
  for (size_t i = 0; i < verb_counts_.size(); ++i) {
    if (verb_counts_[i] == 0) continue;
    stats += verb_name(static_cast<Verb>(i));
    stats += '=' + std::to_string(verb_counts_[i]) + ' ';
  }
  stats += "commands=" + std::to_string(commands_);
  if (client_.tls) stats += " tls=" + client_.tls->version;
  if (end_ == End::kTimeout) stats += " timeout";
  maillog::disconnect(client_.ip, stats);
  if (escaped_) std::rethrow_exception(escaped_);
}

net::awaitable<void> Session::watchdog() {
  for (;;) {
    if (conversation_over_) co_return;  // converse() won; its cancellation woke us
    if (terminated_) {
      end_ = End::kTerminated;
      co_return;
    }
    if (stop_requested_ && idle_) {
      end_ = End::kShutdown;
      co_return;
    }
    if (Clock::now() >= deadline_) {
      end_ = End::kTimeout;
      co_return;
    }
    timer_.expires_at(deadline_);
    co_await timer_.async_wait(kAsTuple);  // woken early by set_deadline/request_stop
  }
}

net::awaitable<void> Session::converse() {
  // Nothing may escape: the watchdog would otherwise keep the session until its
  // deadline. A cancellation (the watchdog won) is normal; anything else is a
  // bug, rethrown by run() for the server to log.
  try {
    co_await converse_unguarded();
  } catch (const boost::system::system_error& e) {
    if (e.code() != net::error::operation_aborted) escaped_ = std::current_exception();
  } catch (...) {
    escaped_ = std::current_exception();
  }
  conversation_over_ = true;
}

net::awaitable<void> Session::converse_unguarded() {
  if (config_ == nullptr || deps_.spool == nullptr || directory_ == nullptr) {
    spdlog::error("smtp: session started without config, spool or directory");
    queue_reply(Reply{421, "4.3.0", config_ ? config_->hostname + " Error: not ready" : "Error",
                      true});
    co_await flush();
    co_return;
  }
  queue_reply(Reply::greeting(config_->hostname));
  for (;;) {
    if (stop_requested_) {
      queue_reply(Reply::shutting_down(config_->hostname));
      co_await flush();
      co_return;
    }
    std::optional<CommandLine> line = input_.next_line();
    if (!line) {
      // RFC 2920: replies wait until the client's batch is used up; a read that
      // may block comes only after they are written.
      if (!co_await flush()) co_return;
      if (stop_requested_) continue;
      idle_ = true;
      // command_timeout bounds the whole command line, not each read: a client
      // dripping a byte at a time (slowloris) is cut like a silent one.
      if (!line_deadline_) line_deadline_ = Clock::now() + config_->command_timeout;
      const bool more = co_await read_more(*line_deadline_);
      idle_ = false;
      if (!more) co_return;
      continue;
    }
    line_deadline_.reset();
    std::optional<Reply> reply = co_await handle(*line);
    if (!reply) co_return;  // connection lost while reading content
    queue_reply(*reply);
    if (reply->closes_connection) {
      co_await flush();
      co_return;
    }
    if (reply->starts_tls) {
      if (!co_await start_tls()) co_return;
      continue;
    }
    if (reply->is_error() && ++errors_ >= kMaxErrors) {
      queue_reply(Reply::too_many_errors(config_->hostname));
      co_await flush();
      co_return;
    }
  }
}

net::awaitable<std::optional<Reply>> Session::handle(const CommandLine& line) {
  ++commands_;
  if (line.too_long) co_return Reply::line_too_long();
  // A bare CR or LF never ends a command (SPEC); a line holding one is refused
  // whole rather than guessed at.
  if (line.bare_newline) co_return Reply::bare_newline();
  Command cmd = parse_command(line.text);
  ++verb_counts_[static_cast<size_t>(cmd.verb)];
  switch (cmd.verb) {
    case Verb::kEhlo: co_return on_hello(cmd, true);
    case Verb::kHelo: co_return on_hello(cmd, false);
    case Verb::kMail: co_return on_mail(cmd);
    case Verb::kRcpt: co_return co_await on_rcpt(cmd);
    case Verb::kData:
      if (cmd.error) co_return *cmd.error;
      co_return co_await on_data();
    case Verb::kBdat: co_return co_await on_bdat(cmd);
    case Verb::kRset:
      reset_transaction();
      co_return Reply::ok();
    case Verb::kNoop: co_return Reply::ok();
    case Verb::kQuit: co_return Reply::bye();
    case Verb::kVrfy:
      if (cmd.error) co_return *cmd.error;
      co_return Reply::cannot_vrfy();  // RFC 5321 3.5.3: no address harvesting
    case Verb::kHelp: co_return Reply::help();
    case Verb::kStarttls: co_return on_starttls(cmd);
    case Verb::kNotImplemented:
    case Verb::kUnknown: break;
  }
  co_return cmd.error ? *cmd.error : Reply::unrecognized();
}

MessageMemoryBudget::Reservation Session::memory_reservation() {
  if (deps_.memory == nullptr) return {};
  return deps_.memory->reservation();
}

Reply Session::no_memory() {
  // Once a minute at most, for all sessions: under a flood of clients, a line
  // per refused message would be a flood of its own (the metric counts them all).
  if (deps_.memory != nullptr) {
    if (const uint64_t n = deps_.memory->refusals_to_log(Clock::now())) {
      spdlog::warn(
          "smtp: message memory budget full ({} of {} MiB in use): {} message(s) refused with "
          "452 4.3.1 since the last such line, {} in all; the senders retry later. Raise "
          "[server] max_message_memory if this is legitimate load",
          deps_.memory->used() >> 20, deps_.memory->limit() >> 20, n, deps_.memory->refusals());
    }
  }
  return Reply::no_storage();
}

void Session::reset_transaction() {
  envelope_.reset();
  bdat_.reset();
  bdat_declared_ = 0;
  message_id_.clear();
}

Reply Session::on_hello(const Command& cmd, bool esmtp) {
  if (cmd.error) return *cmd.error;
  // RFC 5321 4.1.4: a new greeting resets the transaction.
  reset_transaction();
  client_.helo = cmd.argument;
  client_.esmtp = esmtp;
  const bool tls_offered = deps_.tls != nullptr && !stream_.is_tls();
  if (esmtp) return Reply::ehlo(config_->hostname, config_->max_message_size, tls_offered);
  return Reply::helo(config_->hostname);
}

Reply Session::on_starttls(const Command& cmd) {
  if (deps_.tls == nullptr) return Reply::not_implemented();  // not offered: no [tls]
  if (cmd.error) return *cmd.error;                             // 501 5.5.4
  if (stream_.is_tls()) return Reply::bad_sequence("Error: TLS already active");
  return Reply::ready_to_start_tls();
}

net::awaitable<bool> Session::start_tls() {
  // The 220 goes out in plain text, together with the replies to whatever
  // came before STARTTLS in the same batch.
  if (!co_await flush()) co_return false;
  // CVE-2011-0411: bytes the client sent behind STARTTLS, before the
  // handshake, were sent in plain text, where anyone on the path could have
  // put them. They are dropped, never executed as if they came over TLS.
  // (Bytes still in the kernel's buffer reach the handshake and break it.)
  if (const size_t n = input_.buffered_size(); n > 0) {
    spdlog::warn("smtp: [{}]:{}: {} byte(s) pipelined after STARTTLS discarded (CVE-2011-0411)",
                 client_.ip, client_.port, n);
    input_.clear();
  }
  set_deadline(Clock::now() + config_->command_timeout);
  const Status handshake = co_await stream_.handshake(deps_.tls);
  if (!handshake.is_ok()) {
    // "TLS handshake failed: <why>"; a cancel (timeout, shutdown) is not news.
    if (handshake.code() != Status::Code::kCancelled) {
      spdlog::info("smtp: [{}]:{}: {}", client_.ip, client_.port, handshake.message());
    }
    co_return false;
  }
  client_.tls = stream_.tls_info();
  spdlog::info("smtp: [{}]:{}: TLS established: {} {}", client_.ip, client_.port,
               client_.tls ? client_.tls->version : "?", client_.tls ? client_.tls->cipher : "?");
  // RFC 3207 4.2: discard everything learnt before TLS; the client greets again.
  client_.helo.clear();
  client_.esmtp = false;
  reset_transaction();
  co_return true;
}

Reply Session::on_mail(const Command& cmd) {
  if (client_.helo.empty()) return Reply::bad_sequence("Error: send HELO/EHLO first");
  if (envelope_.has_sender) return Reply::bad_sequence("Error: nested MAIL command");
  if (cmd.error) return *cmd.error;
  // RFC 1870: refuse at MAIL what would be refused at the end of DATA.
  if (cmd.mail.size && *cmd.mail.size > config_->max_message_size) {
    return Reply::message_too_big();
  }
  // RFC 1870 6.1: a declared size the memory budget cannot hold now is 452
  // (temporary: it fits once other messages are stored). SIZE <= the limit
  // here, so the product does not overflow.
  if (cmd.mail.size && deps_.memory != nullptr &&
      *cmd.mail.size * MessageBuffer::kPeakCopies > deps_.memory->available()) {
    deps_.memory->count_refusal();
    return no_memory();
  }
  if (deps_.spool->low_on_disk()) {
    Reply r = Reply::no_storage();
    maillog::rejected(client_.ip, "MAIL", r.summary());
    return r;
  }
  envelope_.has_sender = true;
  envelope_.sender = cmd.path ? cmd.path->to_string() : std::string();
  envelope_.params = cmd.mail;
  return Reply::sender_ok();
}

net::awaitable<Reply> Session::on_rcpt(const Command& cmd) {
  if (!envelope_.has_sender) co_return Reply::bad_sequence("Error: need MAIL command");
  if (bdat_) co_return Reply::bad_sequence("Error: RCPT after BDAT");
  if (cmd.error) co_return *cmd.error;
  if (cmd.non_ascii_path && !envelope_.params.smtputf8) co_return Reply::needs_smtputf8();
  Address address = *cmd.path;
  if (address.domain.empty()) {  // <postmaster>: RFC 5321 4.5.1
    const auto& domains = directory_->config().domains;
    if (!domains.empty()) address.domain = domains.front();
  }
  const std::string written = address.to_string();
  const bool repeated = std::find(envelope_.rcpt_addresses.begin(), envelope_.rcpt_addresses.end(),
                                  written) != envelope_.rcpt_addresses.end();
  if (!repeated && envelope_.rcpt_addresses.size() >= config_->max_recipients) {
    co_return Reply::too_many_recipients();
  }
  Resolution resolution = address.domain.empty() ? Resolution{} : directory_->resolve(address);
  std::optional<Reply> refusal;
  switch (resolution.verdict) {
    case Resolution::Verdict::kAccept: break;
    case Resolution::Verdict::kNotOurDomain: refusal = Reply::relay_denied(written); break;
    case Resolution::Verdict::kUnknownMailbox: refusal = Reply::unknown_user(written); break;
    case Resolution::Verdict::kRoutingRefused: refusal = Reply::routing_refused(written); break;
    case Resolution::Verdict::kAskUpstreams: break;  // below: no co_await inside a switch (GCC 12)
  }
  if (resolution.verdict == Resolution::Verdict::kAskUpstreams && !resolution.mailboxes.empty()) {
    refusal = co_await verify_recipient(resolution.mailboxes.front(), written);
  }
  if (!refusal && resolution.mailboxes.empty()) refusal = Reply::local_error();
  if (refusal) {
    maillog::rejected(client_.ip, "RCPT", refusal->summary());
    co_return *refusal;
  }
  const std::string key = directory_->mailbox_key(address);
  for (const std::string& mailbox : resolution.mailboxes) {
    // The address as written when it is the mailbox itself (John.Smith@ for
    // john.smith@ too: the upstream sees what the sender typed); after an alias,
    // the mailbox key (the upstream knows mailboxes, not our aliases).
    envelope_.add_recipient(QueuedRecipient{mailbox, mailbox == key ? written : mailbox,
                                            cmd.rcpt.notify, cmd.rcpt.orcpt});
  }
  envelope_.add_rcpt_address(written);
  co_return Reply::recipient_ok();
}

net::awaitable<std::optional<Reply>> Session::verify_recipient(const std::string& key,
                                                               const std::string& written) {
  // Already a mailbox of the spool (verified before, or named by holdctl lock):
  // its mail is held or relayed like any listed mailbox's.
  if (deps_.spool->has_mailbox(key)) co_return std::nullopt;
  if (deps_.verifier == nullptr) co_return Reply::unknown_user(written);
  // The verifier bounds its own wait (a probe slot, the upstreams' timeouts);
  // the command timeout is for the client's silence, not for ours.
  set_deadline(Clock::time_point::max());
  // No co_await in a switch or its condition: GCC 12 miscompiles it (SIGILL).
  const RecipientVerifier::Answer answer = co_await deps_.verifier->verify(key, written);
  if (answer == RecipientVerifier::Answer::kKnown) co_return std::nullopt;
  if (answer == RecipientVerifier::Answer::kUnknown) co_return Reply::unknown_user(written);
  co_return Reply::unverified_recipient(written);
}

net::awaitable<std::optional<Reply>> Session::on_data() {
  if (!envelope_.has_sender) co_return Reply::bad_sequence("Error: need MAIL command");
  // RFC 3030 2: DATA after BDAT in the same transaction is 503.
  if (bdat_) co_return Reply::bad_sequence("Error: DATA not allowed after BDAT");
  if (!envelope_.has_recipients()) co_return Reply::no_valid_recipients();
  DataReader reader(config_->max_message_size, memory_reservation());
  // No memory for even the start of a message: 452 instead of 354, so the
  // client does not upload in vain. The transaction stays (RSET or retry DATA).
  if (!reader.content().reserve(kFirstContent)) co_return no_memory();
  message_id_ = deps_.spool->new_id();
  queue_reply(Reply::start_data());

  // data_timeout bounds the whole content, from the 354 to the final dot.
  const Clock::time_point deadline = Clock::now() + config_->data_timeout;
  for (;;) {
    input_.consume(reader.feed(input_.buffered()));
    if (reader.ended()) break;
    if (!co_await flush()) co_return std::nullopt;
    if (!co_await read_more(deadline)) co_return std::nullopt;
  }
  latency_start_ = Clock::now();
  const uint64_t size = reader.size();
  const bool too_big = reader.too_big();
  const bool eight_bit = reader.eight_bit();
  co_return co_await finish_message(reader.take_content(), size, too_big, eight_bit);
}

net::awaitable<std::optional<Reply>> Session::on_bdat(const Command& cmd) {
  if (cmd.error) co_return *cmd.error;  // no usable count: nothing to skip
  // Decide before reading; the chunk is read (and maybe discarded) either way,
  // since it follows the command at once (RFC 3030 2, 4.2).
  std::optional<Reply> refusal;
  if (!envelope_.has_sender) {
    refusal = Reply::bad_sequence("Error: need MAIL command");
  } else if (!envelope_.has_recipients()) {
    refusal = Reply::no_valid_recipients();
  } else if (cmd.chunk_size > config_->max_message_size - bdat_declared_) {
    // The declared total is over the limit (RFC 3030 4.2: 552 with the chunk
    // read and discarded). bdat_declared_ never exceeds the limit here.
    refusal = Reply::message_too_big();
  } else {
    if (!bdat_) {
      bdat_.emplace(config_->max_message_size, memory_reservation());
      message_id_ = deps_.spool->new_id();
    }
    // No memory for even the start of this chunk: 452, and (RFC 3030 2: a 4xx
    // to BDAT discards its chunk) the chunk is read and thrown away.
    if (!bdat_->content().reserve(std::min(cmd.chunk_size, kFirstContent))) {
      refusal = no_memory();
    }
  }
  if (refusal) {
    // Named, not a temporary inside co_await: g++ 12 miscompiles that pattern.
    const std::function<void(std::string_view)> discard = [](std::string_view) {};
    if (!co_await read_octets(cmd.chunk_size, discard)) co_return std::nullopt;
    // A failed BDAT ends the transaction: later pipelined chunks get 503.
    reset_transaction();
    co_return *refusal;
  }
  bdat_declared_ += cmd.chunk_size;
  BdatReader& reader = *bdat_;
  const std::function<void(std::string_view)> keep = [&reader](std::string_view s) { reader.feed(s); };
  if (!co_await read_octets(cmd.chunk_size, keep)) {
    co_return std::nullopt;
  }
  if (reader.out_of_memory()) {
    // The budget ran out inside this chunk; the rest of it was read and thrown
    // away. 452 to the chunk ends the transaction, its earlier chunks with it
    // (RFC 3030 2); later pipelined chunks get 503.
    reset_transaction();
    co_return no_memory();
  }
  if (!cmd.last) co_return Reply::chunk_ok(cmd.chunk_size);
  latency_start_ = Clock::now();
  reader.finish();
  const uint64_t size = reader.size();
  const bool too_big = reader.too_big();
  const bool eight_bit = reader.eight_bit();
  co_return co_await finish_message(reader.take_content(), size, too_big, eight_bit);
}

net::awaitable<Reply> Session::finish_message(MessageBuffer content, uint64_t size, bool too_big,
                                              bool eight_bit) {
  const std::string id = std::exchange(message_id_, std::string());
  // The memory this message's content takes, until put() completed: the
  // content is in the blocks, then in one string, then also in LMDB's pages.
  MessageMemoryBudget::Reservation held;
  std::optional<std::string> whole;
  if (!content.refused()) {
    whole = content.take(kHeaderRoom);
    held = content.take_reservation();
  }
  std::string body = whole ? std::move(*whole) : std::string();
  HeaderSummary headers = scan_headers(body);
  // RFC 5321 6.3: too many Received: fields means a loop (e.g. the old server
  // forwarding back to us during a cutover). Loops and oversize are permanent,
  // so they are answered before the memory check: no retry would help.
  std::optional<Reply> refusal;
  if (headers.received > config_->max_hops) {
    refusal = Reply::too_many_hops();
  } else if (too_big) {
    refusal = Reply::message_too_big();
  } else if (!whole) {
    // The budget ran out while the content arrived (or has no room left for our
    // headers): never acknowledged, the client retries later.
    latency_start_.reset();
    reset_transaction();
    co_return no_memory();
  }
  if (refusal) {
    latency_start_.reset();
    maillog::rejected(client_.ip, "DATA", refusal->summary() + " size=" + std::to_string(size));
    reset_transaction();
    co_return *refusal;
  }
  set_deadline(Clock::time_point::max());  // storing is ours to finish, not the client's

  const SysTime now = std::chrono::system_clock::now();
  ReceivedInfo received;
  received.helo = client_.helo;
  received.esmtp = client_.esmtp;
  received.client_name = client_.rdns;
  received.client_ip = client_.ip;
  received.hostname = config_->hostname;
  received.queue_id = id;
  if (envelope_.rcpt_addresses.size() == 1) received.single_rcpt = envelope_.rcpt_addresses.front();
  received.tls = client_.tls;
  received.when = now;

  std::string prefix = received_header(received);
  if (deps_.annotator) prefix += co_await deps_.annotator->annotate(client_, envelope_, body);
  // Migration tools (imapsync) tell duplicates apart by Message-ID.
  if (!headers.has_message_id) prefix += message_id_header(id, now, config_->hostname);
  const uint64_t body_size = body.size();  // as received (the annotator may drop forged fields)
  if (!prepend(body, prefix, held)) {
    latency_start_.reset();
    reset_transaction();
    co_return no_memory();
  }

  IncomingMessage msg;
  msg.meta.id = id;
  msg.meta.sender = envelope_.sender;
  msg.meta.received_size = body_size;
  msg.meta.eight_bit = envelope_.params.body == BodyType::k8BitMime || eight_bit;
  msg.meta.smtputf8 = envelope_.params.smtputf8;
  msg.meta.dsn_ret = envelope_.params.ret;
  msg.meta.dsn_envid = envelope_.params.envid;
  msg.meta.client = client_.describe();
  // SPEC "The old server": mail the old server forwards is counted, and never
  // relayed back to it.
  msg.meta.forwarded_by_old = config_->is_old_forwarder(client_.ip);
  const bool forwarded_by_old = msg.meta.forwarded_by_old;
  msg.recipients = envelope_.recipients;
  msg.content = std::move(body);  // no copy: the headers went into its spare room
  const uint64_t stored_size = msg.content.size();
  const uint64_t received_size = msg.meta.received_size;
  const std::vector<QueuedRecipient> recipients = msg.recipients;
  const std::string sender = envelope_.sender;
  reset_transaction();  // RFC 5321 4.1.1.4: the next MAIL needs no RSET

  // 250 promises the message survives kill -9 and power loss: send it only
  // after put() returns, i.e. after the group commit's fsync. `held` is given
  // back when this returns: LMDB's copy is gone with the commit, and the writer
  // drops the message right after its batch completes. (A journaled message
  // stays in RAM until its LMDB commit, at most 10 ms later: the journal's
  // bounded batch, outside the budget.)
  Result<PutReceipt> receipt = co_await deps_.spool->put(std::move(msg));
  if (!receipt) {
    spdlog::error("smtp: {}: storing message from {} failed: {}", id, client_.describe(),
                  receipt.status().to_string());
    latency_start_.reset();
    co_return reply_for(receipt.status());  // 452 4.3.1 / 451 4.3.0, never 5xx
  }
  maillog::accepted(id, sender, stored_size, recipients.size(), client_.describe(), forwarded_by_old);
  for (size_t i = 0; i < recipients.size(); ++i) {
    const MailboxState state =
        i < receipt->states.size() ? receipt->states[i] : MailboxState::kOld;
    maillog::queued(id, recipients[i].mailbox, state);
  }
  if (deps_.stats != nullptr) {
    ++deps_.stats->messages_accepted;
    deps_.stats->bytes_accepted += received_size;
    deps_.stats->recipients_accepted += recipients.size();
  }
  co_return Reply::queued(id);
}

void Session::queue_reply(const Reply& reply) {
  output_ += reply.to_wire();
  if (deps_.stats != nullptr) {
    const int cls = reply.code_class();
    if (cls >= 0 && cls < static_cast<int>(deps_.stats->replies_by_class.size())) {
      ++deps_.stats->replies_by_class[static_cast<size_t>(cls)];
    }
  }
}

net::awaitable<bool> Session::flush() {
  if (output_.empty()) co_return true;
  std::string out;
  out.swap(output_);
  set_deadline(Clock::now() + config_->command_timeout);  // a client that never reads
  const boost::system::error_code ec = co_await stream_.write(out);
  if (ec) {
    spdlog::debug("smtp: write to [{}]:{} failed: {}", client_.ip, client_.port, ec.message());
    co_return false;
  }
  if (latency_start_) {
    if (deps_.stats != nullptr) deps_.stats->intake_latency.observe(Clock::now() - *latency_start_);
    latency_start_.reset();
  }
  co_return true;
}

net::awaitable<bool> Session::read_more(Clock::time_point deadline) {
  set_deadline(deadline);
  // Read as much as the client sends, but do not hold (and zero-fill) 64 KiB for
  // every idle session: start small, grow while reads fill the room, shrink back
  // when they do not. An idle session then costs a few KiB, not 64.
  if (input_.buffered_size() == 0) input_.release();
  std::span<char> room = input_.prepare(read_size_);
  auto [ec, n] = co_await stream_.read_some(room);
  input_.commit(ec ? 0 : n);
  if (!ec) {
    if (n == room.size()) {
      read_size_ = std::min(read_size_ * 4, kReadSize);
    } else if (n < read_size_ / 4) {
      read_size_ = std::max(read_size_ / 2, kMinReadSize);
    }
  }
  if (ec) {
    // The client hanging up and a cancel (timeout, shutdown) are how
    // conversations end; anything else is worth a line.
    if (!is_eof(ec) && !is_cancelled(ec)) {
      spdlog::debug("smtp: read from [{}]:{} failed: {}", client_.ip, client_.port, ec.message());
    }
    co_return false;
  }
  co_return true;
}

net::awaitable<bool> Session::read_octets(uint64_t n,
                                          const std::function<void(std::string_view)>& sink) {
  // data_timeout bounds the whole chunk, however slowly it trickles in.
  const Clock::time_point deadline = Clock::now() + config_->data_timeout;
  for (;;) {
    const size_t take = static_cast<size_t>(std::min<uint64_t>(n, input_.buffered_size()));
    if (take > 0) {
      sink(input_.buffered().substr(0, take));
      input_.consume(take);
      n -= take;
    }
    if (n == 0) co_return true;
    if (!co_await flush()) co_return false;
    if (!co_await read_more(deadline)) co_return false;
  }
}

void Session::say_goodbye(const Reply& reply) {
  queue_reply(reply);
  // Best effort: whatever fits in the socket buffer now; never wait for a
  // client that does not read.
  stream_.write_now(output_);
  output_.clear();
}

}  // namespace holdd::smtp
