#include "holdd/control/sd_notify.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include <boost/asio/io_context.hpp>

#include <doctest/doctest.h>

using namespace holdd;

namespace {

// A stand-in for systemd's notification socket: a datagram socket in /tmp.
struct FakeNotifySocket {
  FakeNotifySocket() {
    path = "/tmp/holdd-notify-" + std::to_string(::getpid()) + ".sock";
    ::unlink(path.c_str());
    fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  }
  ~FakeNotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    ::close(fd);
    ::unlink(path.c_str());
  }
  std::string receive() {
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }
  std::string path;
  int fd = -1;
};

}  // namespace

TEST_CASE("sd_notify: messages reach NOTIFY_SOCKET, and are no-ops without it") {
  {
    FakeNotifySocket systemd;
    sd_notify::ready();
    CHECK(systemd.receive().find("READY=1") != std::string::npos);
    sd_notify::stopping();
    CHECK(systemd.receive().find("STOPPING=1") != std::string::npos);
    sd_notify::reloading();
    std::string reload = systemd.receive();
    CHECK(reload.find("RELOADING=1") != std::string::npos);
    CHECK(reload.find("MONOTONIC_USEC=") != std::string::npos);
    sd_notify::status("12 held");
    CHECK(systemd.receive() == "STATUS=12 held");
  }
  CHECK_NOTHROW(sd_notify::ready());  // no NOTIFY_SOCKET: nothing happens
}

TEST_CASE("sd_notify: no watchdog unless systemd asks for one for this process") {
  ::unsetenv("WATCHDOG_USEC");
  CHECK_FALSE(sd_notify::watchdog_interval());
  ::setenv("WATCHDOG_USEC", "4000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  REQUIRE(sd_notify::watchdog_interval());
  CHECK(sd_notify::watchdog_interval()->count() == 4000000);
  ::setenv("WATCHDOG_PID", "1", 1);  // meant for another process
  CHECK_FALSE(sd_notify::watchdog_interval());
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
}

TEST_CASE("sd_notify: the watchdog pings only while the health check says healthy") {
  FakeNotifySocket systemd;
  ::setenv("WATCHDOG_USEC", "200000", 1);  // 200 ms: pings every 100 ms
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  boost::asio::io_context io;
  bool healthy = true;
  std::chrono::microseconds asked{0};
  sd_notify::Watchdog watchdog(io.get_executor(), [&](std::chrono::microseconds interval) {
    asked = interval;
    return healthy;
  });
  REQUIRE(watchdog.start());
  CHECK(systemd.receive() == "WATCHDOG=1");  // the first ping, at start
  auto pings_during = [&](std::chrono::milliseconds d) {
    io.restart();
    io.run_for(d);
    int n = 0;
    while (systemd.receive() == "WATCHDOG=1") ++n;
    return n;
  };
  CHECK(pings_during(std::chrono::milliseconds(350)) >= 2);
  CHECK(asked.count() == 200000);  // the check is told the watchdog interval
  healthy = false;  // a stuck spool writer: systemd must see the pings stop
  CHECK(pings_during(std::chrono::milliseconds(350)) == 0);
  healthy = true;
  CHECK(pings_during(std::chrono::milliseconds(350)) >= 2);
  watchdog.stop();
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
}
