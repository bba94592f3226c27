#include "holdd/control/sd_notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <string>

#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

namespace holdd::sd_notify {

namespace {

void send(const std::string& state) {
  int r = ::sd_notify(0, state.c_str());
  if (r < 0) spdlog::warn("sd_notify({}): error {}", state, -r);
}

}  // namespace

void ready() { send("READY=1\nSTATUS=accepting mail"); }
void stopping() { send("STOPPING=1\nSTATUS=stopping"); }

void reloading() {
  // Type=notify-reload (systemd 253) wants the monotonic time with RELOADING=1.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const long long usec = static_cast<long long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\nSTATUS=reloading");
}

void status(std::string_view text) { send("STATUS=" + std::string(text)); }

std::optional<std::chrono::microseconds> watchdog_interval() {
  uint64_t usec = 0;
  if (::sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec);
}

struct Watchdog::Impl {
  Impl(net::any_io_executor ex, Health h) : timer(ex), healthy(std::move(h)) {}
  net::steady_timer timer;
  Health healthy;
  std::chrono::microseconds period{0};
  bool running = false;
  bool withheld = false;  // the last ping was skipped (logged once per episode)
};

namespace {

// Completion-handler loop rather than a coroutine: one timer, no frame to keep.
void schedule(const std::shared_ptr<Watchdog::Impl>& impl) {
  impl->timer.expires_after(impl->period);
  impl->timer.async_wait([impl](boost::system::error_code ec) {
    if (ec || !impl->running) return;
    if (!impl->healthy || impl->healthy(impl->period * 2)) {
      if (impl->withheld) spdlog::info("systemd watchdog: healthy again, pinging");
      impl->withheld = false;
      send("WATCHDOG=1");
    } else if (!impl->withheld) {
      impl->withheld = true;
      spdlog::error("systemd watchdog: the spool writer is stuck or failed: not pinging "
                    "(systemd restarts holdd if this lasts)");
    }
    schedule(impl);
  });
}

}  // namespace

Watchdog::Watchdog(net::any_io_executor ex, Health healthy)
    : impl_(std::make_shared<Impl>(std::move(ex), std::move(healthy))) {}

Watchdog::~Watchdog() { stop(); }

bool Watchdog::start() {
  if (impl_->running) return true;
  std::optional<std::chrono::microseconds> interval = watchdog_interval();
  if (!interval) return false;
  impl_->period = *interval / 2;
  impl_->running = true;
  send("WATCHDOG=1");
  schedule(impl_);
  spdlog::info("systemd watchdog: pinging every {} ms", impl_->period.count() / 1000);
  return true;
}

void Watchdog::stop() {
  if (!impl_->running) return;
  impl_->running = false;
  impl_->timer.cancel();
}

}  // namespace holdd::sd_notify
