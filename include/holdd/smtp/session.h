#pragma once
// A Session is one SMTP conversation (RFC 5321), run as one coroutine on the
// daemon's single I/O thread. It reads like the RFC: greeting, then one
// command in, one reply out, with replies to pipelined commands written
// together (RFC 2920). A watchdog races the conversation: command_timeout while
// waiting for a command, data_timeout while reading DATA/BDAT content; on
// expiry the client gets 421 4.4.2 and an unfinished message is dropped, never
// acknowledged.
//
// "250 queued" is sent only after Spool::put() returned, i.e. after the fsync.
//
// Message content in RAM is bounded by the daemon's MessageMemoryBudget
// (SessionDeps::memory, [server] max_message_memory), shared by all sessions:
// what it cannot hold now gets 452 4.3.1 (at MAIL SIZE=, instead of the 354, at
// the end of DATA after reading and dropping the rest, or after a BDAT chunk),
// never a 5xx, and the session goes on.
//
// STARTTLS (RFC 3207) is offered when the daemon gave a TlsContext and TLS is
// not up yet. After "220 Ready to start TLS" anything the client sent behind
// the STARTTLS line is discarded unread (CVE-2011-0411: plain-text commands
// must not be executed as if they came over TLS); after the handshake the
// session forgets HELO/EHLO and any transaction, so the client greets again.
//
// Lifetime: owned by SmtpServer (a shared_ptr kept by the coroutine's
// completion handler); request_stop()/terminate() are called on the I/O thread.
#include <array>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "holdd/net/line_reader.h"
#include "holdd/net/smtp_stream.h"
#include "holdd/smtp/bdat_reader.h"
#include "holdd/smtp/client_info.h"
#include "holdd/smtp/command.h"
#include "holdd/smtp/envelope.h"
#include "holdd/smtp/memory_budget.h"
#include "holdd/smtp/message_buffer.h"
#include "holdd/smtp/reply.h"
#include "holdd/smtp/session_deps.h"

namespace holdd::smtp {

namespace net = boost::asio;

class Session {
 public:
  Session(net::ip::tcp::socket socket, SessionDeps deps);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  // The whole conversation; completes when the connection is closed. An
  // exception escaping it is a bug (logged by the caller with the peer).
  net::awaitable<void> run();

  // Shutdown, step 1: an idle session says 421 4.3.2 and closes now; one
  // receiving or storing a message finishes that message (its 250 included),
  // then says 421 4.3.2.
  void request_stop();
  // Shutdown, step 2 (grace over): close now. A message not yet acknowledged
  // never will be.
  void terminate();

  const ClientInfo& client() const { return client_; }

 private:
  using Clock = std::chrono::steady_clock;
  enum class End { kNone, kTimeout, kShutdown, kTerminated };

  net::awaitable<void> converse();
  net::awaitable<void> converse_unguarded();
  net::awaitable<void> watchdog();

  // A reply to send, or nullopt when the connection is gone.
  net::awaitable<std::optional<Reply>> handle(const CommandLine& line);
  Reply on_hello(const Command& cmd, bool esmtp);
  Reply on_mail(const Command& cmd);
  net::awaitable<Reply> on_rcpt(const Command& cmd);
  // recipients = "verify": nullopt when `key` may receive mail, else the refusal
  // (550 5.1.1 when the upstreams refused it, 450 4.1.1 when they did not answer).
  net::awaitable<std::optional<Reply>> verify_recipient(const std::string& key, const std::string& written);
  Reply on_starttls(const Command& cmd);
  // After "220 Ready to start TLS": discards pipelined input, shakes hands,
  // resets the session. False when the connection is to be closed.
  net::awaitable<bool> start_tls();
  net::awaitable<std::optional<Reply>> on_data();
  net::awaitable<std::optional<Reply>> on_bdat(const Command& cmd);
  // Checks, stores, and answers a complete message (DATA or BDAT LAST). A
  // refused `content` (the memory budget ran out) gets 452 4.3.1.
  net::awaitable<Reply> finish_message(MessageBuffer content, uint64_t size, bool too_big,
                                       bool eight_bit);
  void reset_transaction();
  // An empty reservation against the daemon's memory budget (unbounded without one).
  MessageMemoryBudget::Reservation memory_reservation();
  // 452 4.3.1 for a message the memory budget cannot hold (logged at most once a minute).
  Reply no_memory();

  // I/O. Each returns false when the connection is gone (EOF, reset, cancel).
  // Reads what is there, waiting until `deadline` at most.
  net::awaitable<bool> read_more(Clock::time_point deadline);
  net::awaitable<bool> flush();
  // Reads exactly n octets, handing them to `sink` piece by piece.
  net::awaitable<bool> read_octets(uint64_t n, const std::function<void(std::string_view)>& sink);
  void queue_reply(const Reply& reply);
  void say_goodbye(const Reply& reply);  // best effort, never blocks
  void set_deadline(Clock::time_point when);

  SmtpStream stream_;
  SessionDeps deps_;
  std::shared_ptr<const ServerConfig> config_;
  std::shared_ptr<const Directory> directory_;
  net::steady_timer timer_;
  Clock::time_point deadline_ = Clock::time_point::max();
  // Set when the session starts waiting for a command line; the whole line must
  // arrive by then (command_timeout), however it trickles in.
  std::optional<Clock::time_point> line_deadline_;
  size_t read_size_ = 4 * 1024;  // adapts between 4 and 64 KiB (read_more)

  LineReader input_{kMaxCommandLine};
  std::string output_;
  ClientInfo client_;
  Envelope envelope_;

  // BDAT transaction in progress (RFC 3030).
  std::optional<BdatReader> bdat_;
  uint64_t bdat_declared_ = 0;  // sum of the chunk sizes announced so far
  std::string message_id_;      // reserved when DATA or the first BDAT began

  std::optional<Clock::time_point> latency_start_;  // end of DATA of a queued message
  uint32_t errors_ = 0;
  std::array<uint32_t, static_cast<size_t>(Verb::kUnknown) + 1> verb_counts_{};
  uint32_t commands_ = 0;

  bool conversation_over_ = false;  // converse() returned: the watchdog must not report
  bool idle_ = false;  // waiting for a command (shutdown may interrupt now)
  bool stop_requested_ = false;
  bool terminated_ = false;
  End end_ = End::kNone;
  std::exception_ptr escaped_;
};

}  // namespace holdd::smtp
