// holdctl migrate: lock, copy, release per mailbox, N workers, one process each.
#include "holdd/cli/migrate.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <stdexcept>

namespace holdd::cli::migrate {
namespace {

using Clock = std::chrono::steady_clock;

// A copy asked to stop (timeout, second signal) gets SIGTERM, then SIGKILL after this.
constexpr auto kKillGrace = std::chrono::seconds(5);
constexpr auto kTick = std::chrono::milliseconds(100);

volatile sig_atomic_t g_signals = 0;
extern "C" void on_signal(int) { g_signals = g_signals + 1; }

// SIGINT/SIGTERM handlers for the duration of a run, the old ones back after.
class SignalScope {
 public:
  SignalScope() {
    g_signals = 0;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~SignalScope() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  SignalScope(const SignalScope&) = delete;
  SignalScope& operator=(const SignalScope&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

enum class Outcome { kPending, kRunning, kMigrated, kSkipped, kFailed, kNotStarted };

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kMigrated: return "migrated";
    case Outcome::kSkipped: return "skipped";
    case Outcome::kFailed: return "failed";
    case Outcome::kNotStarted: return "not_started";
    case Outcome::kPending: return "pending";
    case Outcome::kRunning: return "running";
  }
  return "?";
}

struct Job {
  std::string mailbox;     // the daemon's key for it (or what was asked, if unknown)
  std::string state;       // at the start
  uint64_t queued = 0;     // messages waiting at the start
  Outcome outcome = Outcome::kPending;
  std::string reason;      // why it failed or was skipped
  std::string log;         // the copy's output
  pid_t pid = -1;
  Clock::time_point started{};
  Clock::time_point term_sent{};
  bool timed_out = false;
  bool killed = false;     // by the operator's second signal
  int exit_code = -1;
  int signal = 0;
  double seconds = 0;
  uint64_t replayed = 0;
};

std::string format_duration(double seconds) {
  const long long s = std::llround(std::max(0.0, seconds));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  return buf;
}

std::string utc_stamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// local@domain split at the last '@' ({local}, {domain}, HOLDD_LOCAL, HOLDD_DOMAIN).
struct MailboxParts {
  std::string local, domain;
};
MailboxParts split_mailbox(const std::string& mailbox) {
  const auto at = mailbox.rfind('@');
  if (at == std::string::npos) return {mailbox, ""};
  return {mailbox.substr(0, at), mailbox.substr(at + 1)};
}

std::string error_of(const json& response) {
  return response.value("error", std::string("the daemon refused without saying why"));
}

class Batch {
 public:
  Batch(const Options& options, const Exchange& exchange, std::ostream& out, std::ostream& err)
      : o_(options), exchange_(exchange), out_(out), err_(err) {
    live_ = !o_.json && &out_ == &std::cout && ::isatty(STDOUT_FILENO) == 1;
  }

  int run() {
    try {
      plan();
    } catch (const std::exception& e) {
      err_ << "holdctl: " << e.what() << "\n";
      return 3;
    }
    if (o_.dry_run) return print_plan();
    if (!prepare_log_dir()) return 1;
    SignalScope signals;
    t0_ = Clock::now();
    work();
    return report();
  }

 private:
  // What each named mailbox is now: its key, state and queue (one `show` each).
  void plan() {
    std::map<std::string, bool> seen;
    for (const std::string& asked : o_.mailboxes) {
      const json response = request("show", {{"mailbox", asked}});
      Job job;
      if (!response.value("ok", false)) {
        job.mailbox = asked;
        job.outcome = Outcome::kFailed;
        job.reason = error_of(response);
        jobs_.push_back(std::move(job));
        continue;
      }
      const json& r = response["result"];
      job.mailbox = r.value("mailbox", asked);
      if (seen[job.mailbox]) continue;  // the same mailbox named twice (alias, case)
      seen[job.mailbox] = true;
      job.state = r.value("state", "");
      job.queued = r.value("queued", uint64_t{0});
      if (job.state == "migrated") {
        job.outcome = Outcome::kSkipped;
        job.reason = "already migrated";
      }
      jobs_.push_back(std::move(job));
    }
  }

  int print_plan() {
    bool any_unknown = false;
    json rows = json::array();
    size_t to_do = 0;
    for (const Job& j : jobs_) {
      const char* action = j.outcome == Outcome::kSkipped ? "skip (already migrated)"
                           : j.outcome == Outcome::kFailed ? "refused"
                                                           : "lock, copy, release";
      any_unknown = any_unknown || j.outcome == Outcome::kFailed;
      if (j.outcome == Outcome::kPending) ++to_do;
      rows.push_back({{"mailbox", j.mailbox}, {"state", j.state.empty() ? json(nullptr) : json(j.state)},
                      {"queued", j.queued}, {"action", action},
                      {"reason", j.reason.empty() ? json(nullptr) : json(j.reason)}});
    }
    if (o_.json) {
      out_ << json{{"dry_run", true}, {"mailboxes", rows}, {"to_do", to_do}}.dump(2) << "\n";
    } else {
      out_ << "migrate --dry-run: " << to_do << " to copy and release, "
           << jobs_.size() - to_do << " not (nothing changed)\n";
      for (const Job& j : jobs_) {
        out_ << "  " << j.mailbox << "  ";
        if (j.outcome == Outcome::kSkipped) {
          out_ << "skip: already migrated\n";
        } else if (j.outcome == Outcome::kFailed) {
          out_ << "REFUSED: " << j.reason << "\n";
        } else {
          out_ << j.state << ", " << j.queued << " message(s) waiting: lock, copy, "
               << (o_.verify ? "release if the new server accepts it" : "release") << "\n";
        }
      }
      out_ << "copy command: " << o_.copy << "\n";
    }
    return any_unknown ? 1 : 0;
  }

  bool prepare_log_dir() {
    log_dir_ = o_.log_dir.empty() ? "holdctl-migrate-" + utc_stamp() : o_.log_dir;
    std::error_code ec;
    std::filesystem::create_directories(log_dir_, ec);
    if (ec) {
      err_ << "holdctl: cannot create the log directory " << log_dir_ << ": " << ec.message()
           << " (pass --log-dir DIR)\n";
      return false;
    }
    return true;
  }

  void work() {
    size_t next = 0;
    bool killed_all = false;
    for (;;) {
      const auto now = Clock::now();
      if (g_signals >= 1 && !stopping_) {
        stopping_ = true;
        message("signal: no new copy starts; the running ones finish (signal again to kill them)");
      }
      if (g_signals >= 2 && !killed_all) {
        killed_all = true;
        for (Job& j : jobs_) {
          if (j.outcome != Outcome::kRunning) continue;
          j.killed = true;
          terminate(j, now);
        }
        message("signal again: the running copies are killed; their mailboxes stay held");
      }
      for (Job& j : jobs_) {
        if (j.outcome != Outcome::kRunning) continue;
        if (o_.copy_timeout.count() > 0 && !j.timed_out && now - j.started > o_.copy_timeout) {
          j.timed_out = true;
          terminate(j, now);
        }
        if ((j.timed_out || j.killed) && now - j.term_sent > kKillGrace) ::kill(-j.pid, SIGKILL);
        int status = 0;
        const pid_t done = ::waitpid(j.pid, &status, WNOHANG);
        if (done == j.pid) finish(j, status);
      }
      while (!stopping_ && running_ < static_cast<size_t>(std::max(1, o_.parallel)) && next < jobs_.size()) {
        Job& j = jobs_[next++];
        if (j.outcome == Outcome::kPending) start(j);
      }
      draw();
      if (running_ == 0 && (stopping_ || next >= jobs_.size())) break;
      timespec tick{0, std::chrono::duration_cast<std::chrono::nanoseconds>(kTick).count()};
      ::nanosleep(&tick, nullptr);  // a signal cuts it short: fine
    }
    for (Job& j : jobs_) {
      if (j.outcome == Outcome::kPending) {
        j.outcome = Outcome::kNotStarted;
        j.reason = unreachable_.empty() ? "interrupted before its copy started" : unreachable_;
      }
    }
    if (live_) out_ << "\r\033[K";
  }

  void terminate(Job& j, Clock::time_point now) {
    ::kill(-j.pid, SIGTERM);
    j.term_sent = now;
  }

  void start(Job& j) {
    const json locked = request_or_stop("lock", {{"mailboxes", {j.mailbox}}});
    if (locked.is_null()) return;  // the daemon went away: stopping_ is set
    if (!locked.value("ok", false)) {
      fail(j, "lock refused: " + error_of(locked));
      return;
    }
    j.log = (std::filesystem::path(log_dir_) / log_file_name(j.mailbox)).string();
    const int fd = ::open(j.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      fail(j, "cannot write the copy's log " + j.log + ": " + std::strerror(errno));
      return;
    }
    const std::string command = expand_command(o_.copy, j.mailbox);
    const std::string head = "# holdctl migrate " + utc_stamp() + ": " + command + "\n";
    (void)!::write(fd, head.data(), head.size());
    const MailboxParts parts = split_mailbox(j.mailbox);
    note(j, "migrate: copy started (log " + j.log + ")");
    const pid_t pid = ::fork();
    if (pid == 0) {
      // The child: its own process group, so that the terminal's ^C reaches holdctl
      // only (the copies finish), and a kill reaches the whole copy (sh and its tool).
      ::setpgid(0, 0);
      ::signal(SIGINT, SIG_DFL);
      ::signal(SIGTERM, SIG_DFL);
      const int null_fd = ::open("/dev/null", O_RDONLY);
      if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::setenv("HOLDD_MAILBOX", j.mailbox.c_str(), 1);
      ::setenv("HOLDD_LOCAL", parts.local.c_str(), 1);
      ::setenv("HOLDD_DOMAIN", parts.domain.c_str(), 1);
      ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      const std::string why = std::string("holdctl: cannot run /bin/sh: ") + std::strerror(errno) + "\n";
      (void)!::write(STDERR_FILENO, why.data(), why.size());
      ::_exit(127);
    }
    ::close(fd);
    if (pid < 0) {
      fail(j, std::string("cannot start the copy: ") + std::strerror(errno));
      return;
    }
    ::setpgid(pid, pid);  // as the child does: whichever runs first
    j.pid = pid;
    j.started = Clock::now();
    j.outcome = Outcome::kRunning;
    ++running_;
  }

  void finish(Job& j, int status) {
    --running_;
    j.seconds = std::chrono::duration<double>(Clock::now() - j.started).count();
    const std::string took = " after " + format_duration(j.seconds);
    if (WIFEXITED(status)) j.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) j.signal = WTERMSIG(status);
    std::string why;
    if (j.timed_out) {
      why = "copy ran past --copy-timeout and was killed" + took;
    } else if (j.killed) {
      why = "copy killed on the operator's signal" + took;
    } else if (j.signal != 0) {
      why = "copy killed by signal " + std::to_string(j.signal) + took;
    } else if (j.exit_code != 0) {
      why = "copy exited " + std::to_string(j.exit_code) + took;
    }
    if (!why.empty()) {
      note(j, "migrate: " + why + "; not released");
      fail(j, why + " (log " + j.log + ")");
      return;
    }
    note(j, "migrate: copy exited 0" + took);
    json args = {{"mailboxes", {j.mailbox}}, {"wait", false}, {"rate", o_.rate}, {"dry_run", false}};
    if (o_.verify) args["verify"] = true;
    const json released = request_or_stop("release", args);
    if (released.is_null()) {
      fail(j, "copied, but not released: " + unreachable_);
      return;
    }
    if (!released.value("ok", false)) {
      note(j, "migrate: not released: " + error_of(released));
      fail(j, "copied, but the release was refused: " + error_of(released));
      return;
    }
    const json& r = released["result"];
    if (r.contains("not_released") && !r["not_released"].empty()) {
      const json& refusal = r["not_released"][0];
      const std::string reply = refusal.value("result", std::string("refused")) + ": " +
                                refusal.value("reply", std::string());
      note(j, "migrate: not released: the new server does not accept it (" + reply + ")");
      fail(j, "copied, but the new server does not accept the mailbox (" + reply + "); still held");
      return;
    }
    j.replayed = r.contains("replay") ? r["replay"].value("messages", uint64_t{0}) : 0;
    replayed_ += j.replayed;
    j.outcome = Outcome::kMigrated;
    line(j.mailbox + ": migrated (copy " + format_duration(j.seconds) + ", " +
         std::to_string(j.replayed) + " held message(s) replayed)");
  }

  void fail(Job& j, std::string reason) {
    j.outcome = Outcome::kFailed;
    j.reason = std::move(reason);
    line(j.mailbox + ": FAILED: " + j.reason);
  }

  // History entries are a help to the operator, not a condition of the copy: a
  // daemon that refuses one is reported once, and the batch goes on.
  void note(const Job& j, const std::string& text) {
    const json r = request_or_stop("note", {{"mailbox", j.mailbox}, {"text", text}});
    if (!r.is_null() && !r.value("ok", false) && !note_refused_) {
      note_refused_ = true;
      message("the daemon does not record the attempts in the mailboxes' history: " + error_of(r));
    }
  }

  json request(const std::string& command, json args) {
    return exchange_(json{{"command", command}, {"args", std::move(args)}});
  }

  // A request during the batch: if the daemon cannot be reached, no new copy starts
  // (the running ones finish, their mailboxes stay held) and null comes back.
  json request_or_stop(const std::string& command, json args) {
    if (!unreachable_.empty()) return nullptr;
    try {
      return request(command, std::move(args));
    } catch (const std::exception& e) {
      unreachable_ = e.what();
      stopping_ = true;
      message(unreachable_ + ": no new copy starts");
      return nullptr;
    }
  }

  // A finished mailbox: one plain line, unless on a terminal (the live line counts
  // it; the summary lists the failures).
  void line(const std::string& text) {
    if (o_.json || live_) return;
    out_ << text << std::endl;
  }

  void message(const std::string& text) {
    if (live_) out_ << "\r\033[K";
    err_ << "holdctl: " << text << std::endl;
  }

  void draw() {
    if (!live_) return;
    size_t done = 0, failed = 0, left = 0;
    for (const Job& j : jobs_) {
      if (j.outcome == Outcome::kMigrated) ++done;
      if (j.outcome == Outcome::kFailed) ++failed;
      if (j.outcome == Outcome::kPending) ++left;
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0_).count();
    std::string eta = "-";
    if (done + failed > 0 && left + running_ > 0) {
      eta = format_duration(elapsed / static_cast<double>(done + failed) * static_cast<double>(left + running_));
    }
    out_ << "\r\033[Kmigrate: " << done << " done, " << failed << " failed, " << running_ << " running, " << left
         << " left, " << replayed_ << " replayed, " << format_duration(elapsed) << " elapsed, " << eta << " left"
         << (stopping_ ? " (stopping)" : "") << std::flush;
  }

  int report() {
    size_t migrated = 0, skipped = 0, failed = 0, not_started = 0;
    json rows = json::array();
    for (const Job& j : jobs_) {
      migrated += j.outcome == Outcome::kMigrated;
      skipped += j.outcome == Outcome::kSkipped;
      failed += j.outcome == Outcome::kFailed;
      not_started += j.outcome == Outcome::kNotStarted;
      json row = {{"mailbox", j.mailbox}, {"result", outcome_name(j.outcome)}};
      if (!j.reason.empty()) row["reason"] = j.reason;
      if (!j.log.empty()) row["log"] = j.log;
      if (j.pid > 0) {
        row["copy_seconds"] = std::round(j.seconds * 10) / 10;
        row["exit_code"] = j.exit_code >= 0 ? json(j.exit_code) : json(nullptr);
        if (j.signal != 0) row["signal"] = j.signal;
      }
      if (j.outcome == Outcome::kMigrated) row["replayed"] = j.replayed;
      rows.push_back(std::move(row));
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0_).count();
    const bool all_migrated = migrated + skipped == jobs_.size();
    if (o_.json) {
      out_ << json{{"mailboxes", rows},     {"migrated", migrated},       {"skipped", skipped},
                   {"failed", failed},      {"not_started", not_started}, {"replayed", replayed_},
                   {"log_dir", log_dir_},   {"elapsed_seconds", std::llround(elapsed)},
                   {"complete", all_migrated}}
                  .dump(2)
           << "\n";
      return all_migrated ? 0 : 1;
    }
    out_ << "migrate: " << migrated + skipped << " of " << jobs_.size() << " mailbox(es) migrated ("
         << migrated << " now, " << skipped << " before), " << failed << " failed, " << not_started
         << " not started; " << replayed_ << " held message(s) replayed; " << format_duration(elapsed)
         << "; logs in " << log_dir_ << "\n";
    for (const Job& j : jobs_) {
      if (j.outcome == Outcome::kFailed || j.outcome == Outcome::kNotStarted) {
        out_ << "  " << (j.outcome == Outcome::kFailed ? "FAILED " : "NOT STARTED ") << j.mailbox << ": "
             << j.reason << "\n";
      }
    }
    if (!all_migrated) {
      out_ << "migrate: the mailboxes not migrated stay as they were (held if their copy ran): "
              "fix the cause and run the same command again; it does only what is left\n";
    }
    return all_migrated ? 0 : 1;
  }

  const Options& o_;
  const Exchange& exchange_;
  std::ostream& out_;
  std::ostream& err_;
  bool live_ = false;
  std::vector<Job> jobs_;
  std::string log_dir_;
  Clock::time_point t0_{};
  size_t running_ = 0;
  uint64_t replayed_ = 0;
  bool stopping_ = false;
  bool note_refused_ = false;
  std::string unreachable_;
};

}  // namespace

std::string shell_quote(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string expand_command(const std::string& command, const std::string& mailbox) {
  const MailboxParts parts = split_mailbox(mailbox);
  const std::pair<const char*, std::string> fields[] = {{"{mailbox}", shell_quote(mailbox)},
                                                        {"{local}", shell_quote(parts.local)},
                                                        {"{domain}", shell_quote(parts.domain)}};
  std::string out;
  for (size_t i = 0; i < command.size();) {
    bool replaced = false;
    for (const auto& [name, value] : fields) {
      if (command.compare(i, std::strlen(name), name) == 0) {
        out += value;
        i += std::strlen(name);
        replaced = true;
        break;
      }
    }
    if (!replaced) out += command[i++];
  }
  return out;
}

std::string log_file_name(const std::string& mailbox) {
  std::string name;
  for (char c : mailbox) {
    const auto u = static_cast<unsigned char>(c);
    name += (c == '/' || u < 0x20 || u == 0x7f) ? '_' : c;
  }
  if (name.empty() || name.front() == '.') name.insert(0, "_");
  return name + ".log";
}

int run(const Options& options, const Exchange& exchange, std::ostream& out, std::ostream& err) {
  Batch batch(options, exchange, out, err);
  return batch.run();
}

}  // namespace holdd::cli::migrate
