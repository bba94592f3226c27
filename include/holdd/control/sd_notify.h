#pragma once
// Telling systemd how the daemon is doing (Type=notify, sd_notify(3)). Every call
// is a no-op when not started by systemd (no NOTIFY_SOCKET), so the daemon calls
// them unconditionally.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

namespace holdd::sd_notify {

namespace net = boost::asio;

void ready();      // READY=1: listeners are open, mail may come
void stopping();   // STOPPING=1: SIGTERM received, shutting down
void reloading();  // RELOADING=1 (+ MONOTONIC_USEC): SIGHUP; call ready() when done
void status(std::string_view text);  // STATUS=...: shown by systemctl status

// The WatchdogSec= interval systemd expects pings within, or nullopt if the unit
// has no watchdog (or it is meant for another process).
std::optional<std::chrono::microseconds> watchdog_interval();

// Pings WATCHDOG=1 at half the watchdog interval from a timer on `ex`: if the
// io_context's thread stalls, the pings stop and systemd restarts the daemon. So
// do they while `healthy` (given the watchdog interval) says false: the parts
// that run on other threads (the spool's writer) are watched too.
class Watchdog {
 public:
  using Health = std::function<bool(std::chrono::microseconds interval)>;
  explicit Watchdog(net::any_io_executor ex, Health healthy = {});
  ~Watchdog();  // stop()
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Starts pinging if systemd asked for a watchdog; returns whether it did.
  bool start();
  void stop();  // idempotent; the timer no longer keeps the io_context running

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace holdd::sd_notify
