#pragma once
// ClusterDatabase: the node's link to PostgreSQL, on a thread of its own (libpq
// blocks). It keeps one connection, reconnects at most once a second while the
// database is away, LISTENs on the state channel, and runs the jobs the io thread
// gives it one after the other. A job's result comes back on the io executor as
// an awaitable; while the database cannot be reached a job fails at once with a
// temporary Status that says so (intake and relaying never wait for it).
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "holdd/base/status.h"
#include "holdd/cluster/pg_connection.h"

namespace holdd::cluster {

namespace net = boost::asio;

// The NOTIFY channel every state change signals.
inline constexpr const char* kStateChannel = "holdd_states";

// Work for the database thread. Callers keep it in a named local: GCC 12 destroys
// a temporary in a co_await's full expression twice.
template <class T>
using DbWork = std::function<Result<T>(PgConnection&)>;

class ClusterDatabase {
 public:
  // `on_connected(first)`: called on the thread after each (re)connection, with
  // the connection, before any job (the schema migration runs there);
  // `on_notify`: posted to `io` for each notification and after each
  // reconnection, so the node catches up at once.
  ClusterDatabase(std::string conninfo, net::any_io_executor io);
  ~ClusterDatabase();
  ClusterDatabase(const ClusterDatabase&) = delete;
  ClusterDatabase& operator=(const ClusterDatabase&) = delete;

  void start(std::function<Status(PgConnection&)> on_connected, std::function<void()> on_notify);
  void stop();  // pending jobs fail with kCancelled; joins the thread

  bool connected() const { return connected_.load(); }
  // Why the database is unreachable, for messages ("" while connected).
  std::string down_reason() const;

  // Runs `work` on the database thread with the connection.
  template <class T>
  net::awaitable<Result<T>> call(const DbWork<T>& work) {
    auto ex = co_await net::this_coro::executor;
    auto out = std::make_shared<std::optional<Result<T>>>();
    // A named local, not a temporary argument in the co_await (GCC 12 destroys those twice).
    auto initiation = [this, ex, out, work](auto handler) mutable {
      auto h = std::make_shared<decltype(handler)>(std::move(handler));
      submit([ex, h, out, work](PgConnection* conn, const Status& down) mutable {
        if (conn) {
          out->emplace(work(*conn));
        } else {
          out->emplace(down);
        }
        net::post(ex, [h]() mutable { (*h)(); });
      });
    };
    co_await net::async_initiate<decltype(net::use_awaitable), void()>(initiation, net::use_awaitable);
    co_return std::move(**out);
  }

 private:
  using Job = std::function<void(PgConnection* conn, const Status& down)>;
  void submit(Job job);
  void run();
  bool ensure_connected();

  const std::string conninfo_;
  net::any_io_executor io_;
  std::function<Status(PgConnection&)> on_connected_;
  std::function<void()> on_notify_;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::string down_reason_ = "not connected yet";
  std::atomic<bool> connected_{false};
  std::optional<PgConnection> conn_;  // the thread's only
  std::chrono::steady_clock::time_point next_try_{};
};

}  // namespace holdd::cluster
