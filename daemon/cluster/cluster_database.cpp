#include "holdd/cluster/cluster_database.h"


#include <spdlog/spdlog.h>

namespace holdd::cluster {

namespace {
constexpr std::chrono::seconds kReconnectPause{1};
constexpr std::chrono::milliseconds kListenPoll{100};
}  // namespace

ClusterDatabase::ClusterDatabase(std::string conninfo, net::any_io_executor io)
    : conninfo_(std::move(conninfo)), io_(std::move(io)) {}

ClusterDatabase::~ClusterDatabase() { stop(); }

void ClusterDatabase::start(std::function<Status(PgConnection&)> on_connected, std::function<void()> on_notify) {
  on_connected_ = std::move(on_connected);
  on_notify_ = std::move(on_notify);
  thread_ = std::thread([this] { run(); });
}

void ClusterDatabase::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string ClusterDatabase::down_reason() const {
  std::lock_guard lock(mutex_);
  return connected_ ? "" : down_reason_;
}

void ClusterDatabase::submit(Job job) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      jobs_.push_back(std::move(job));
      wake_.notify_all();
      return;
    }
  }
  job(nullptr, Status::cancelled("holdd is stopping"));
}

// On the thread. True when a healthy connection is there (made now if need be,
// at most one attempt a second).
bool ClusterDatabase::ensure_connected() {
  if (conn_ && conn_->healthy()) return true;
  if (conn_) {
    conn_.reset();
    connected_ = false;
    std::lock_guard lock(mutex_);
    down_reason_ = "the connection to PostgreSQL was lost";
    spdlog::error("cluster: the connection to PostgreSQL was lost; state changes are refused until it is back "
                  "(intake and relaying go on with the last known states)");
  }
  auto now = std::chrono::steady_clock::now();
  if (now < next_try_) return false;
  next_try_ = now + kReconnectPause;
  Result<PgConnection> conn = PgConnection::connect(conninfo_);
  Status ready = conn ? Status::ok() : conn.status();
  if (conn) {
    if (ready.is_ok()) ready = on_connected_ ? on_connected_(*conn) : Status::ok();
    if (ready.is_ok()) ready = conn->exec(std::string("LISTEN ") + kStateChannel);
  }
  if (!ready.is_ok()) {
    std::lock_guard lock(mutex_);
    if (down_reason_ != ready.message()) {
      spdlog::error("cluster: {}; retrying every {}s", ready.message(), kReconnectPause.count());
    }
    down_reason_ = ready.message();
    return false;
  }
  conn_ = std::move(*conn);
  connected_ = true;
  spdlog::info("cluster: connected to PostgreSQL {} ({})", conn_->server_version(), redact(conninfo_));
  net::post(io_, [this] {
    if (on_notify_) on_notify_();
  });
  return true;
}

void ClusterDatabase::run() {
  for (;;) {
    std::deque<Job> jobs;
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, kListenPoll, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) {
        jobs.swap(jobs_);
        lock.unlock();
        for (Job& job : jobs) job(nullptr, Status::cancelled("holdd is stopping"));
        conn_.reset();
        connected_ = false;
        return;
      }
      jobs.swap(jobs_);
    }
    const bool up = ensure_connected();
    Status down;
    if (!up) {
      std::lock_guard lock(mutex_);
      down = Status::temporary("PostgreSQL unreachable: " + down_reason_);
    }
    for (Job& job : jobs) {
      if (up && conn_ && conn_->healthy()) {
        job(&*conn_, Status::ok());
      } else {
        job(nullptr, up ? Status::temporary("PostgreSQL unreachable: the connection was lost") : down);
      }
    }
    if (conn_ && conn_->healthy()) {
      if (!conn_->notifications().empty()) {
        net::post(io_, [this] {
          if (on_notify_) on_notify_();
        });
      }
    }
  }
}

}  // namespace holdd::cluster
