#pragma once
// A real DNS server for the auth tests: dnsmasq on 127.0.0.1 (and ::1) at a free
// high port, authoritative for *.test from the records given on its command
// line, forwarding nothing. Started by the test, killed by the destructor.
// Nothing here ever talks to a DNS server outside loopback.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "holdd/auth/resolver.h"

namespace holdd::auth::testing {

// The dnsmasq binary's path; "" when it is not installed.
inline std::string dnsmasq_path() {
  for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"}) {
    std::string path = std::string(dir) + "dnsmasq";
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}
inline bool dnsmasq_installed() { return !dnsmasq_path().empty(); }

// True when the CI environment variable is set (to anything but "", "0" or "false"),
// as the CI runner does when it runs .ci/run.
inline bool running_in_ci() {
  const char* ci = std::getenv("CI");
  if (ci == nullptr) return false;
  std::string_view v(ci);
  return !v.empty() && v != "0" && v != "false";
}

// The one guard of every test that needs dnsmasq; call it first and return when it
// is false. doctest 2.4.9 has no runtime skip, so without dnsmasq the test would
// pass having checked nothing: instead it prints a WARNING naming the test and
// returns false, and under CI it FAILS the test, since scripts/install-deps.sh
// installs dnsmasq-base and its absence there is a broken environment.
inline bool dnsmasq_available_or_warn() {
  if (dnsmasq_installed()) return true;
  if (running_in_ci()) {
    FAIL("dnsmasq not found (CI is set; scripts/install-deps.sh installs dnsmasq-base): "
         "DNS test NOT RUN");
  }
  MESSAGE("WARNING: dnsmasq not found: DNS test NOT RUN "
          "(install dnsmasq-base; with CI set this is a failure)");
  return false;
}

// A loopback UDP+TCP port nobody uses right now.
inline uint16_t free_port() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(u, reinterpret_cast<sockaddr*>(&a), sizeof a);
    getsockname(u, reinterpret_cast<sockaddr*>(&a), &len);
    int t = socket(AF_INET, SOCK_STREAM, 0);
    bool tcp_free = bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(t);
    close(u);
    if (tcp_free) return ntohs(a.sin_port);
  }
  return 0;
}

class DnsServer {
 public:
  // `records`: dnsmasq options such as "--txt-record=example.test,v=spf1 -all".
  explicit DnsServer(std::vector<std::string> records) : port_(free_port()) {
    std::vector<std::string> args = {
        "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
        "--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address=127.0.0.1",
        "--listen-address=::1", "--port=" + std::to_string(port_), "--local=/test/",
        "--log-facility=/dev/null", "--cache-size=0",
        "--txt-record=ready.test,ready"};
    args.insert(args.end(), records.begin(), records.end());
    const std::string path = dnsmasq_path();
    std::vector<char*> argv;  // built before fork: the child only calls async-signal-safe functions
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      int null = open("/dev/null", O_RDWR);
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      execv(path.c_str(), argv.data());
      _exit(127);
    }
    // Ready when it answers.
    Result<Resolver> r = Resolver::create({address()}, std::chrono::seconds(1));
    for (int i = 0; i < 100 && r; ++i) {
      if (r->txt("ready.test").status == DnsStatus::kFound) {
        ready_ = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~DnsServer() { stop(); }
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  void stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }

  bool ready() const { return ready_; }
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string address6() const { return "[::1]:" + std::to_string(port_); }

 private:
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  bool ready_ = false;
};

}  // namespace holdd::auth::testing
