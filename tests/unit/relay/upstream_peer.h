#pragma once
// Real upstreams for the relay unit tests, started by each test: aiosmtpd (through
// smtp_peer.py beside this file, which records what it received) and Postfix's
// smtp-sink. Every process is killed by its guard, whatever the test does.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

extern char** environ;

namespace holdd::test_peer {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline const fs::path kPeerScript = fs::path(__FILE__).parent_path() / "smtp_peer.py";

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "holdd-relay-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A child process, killed (TERM, then KILL) and reaped when the guard goes.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const fs::path& output) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, output.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE(rc == 0);
  }
  ~Process() { stop(); }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(20ms);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

// A plain listening socket on 127.0.0.1 that never accepts: connects succeed
// (the kernel's backlog) and then nothing is said.
class SilentListener {
 public:
  SilentListener() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(fd_, 8) == 0);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

inline uint16_t free_port() {
  SilentListener probe;  // bound to port 0: the kernel picks a free one
  return probe.port();
}

inline bool accepts_connections(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// An upstream process on a free loopback port, ready when constructed.
class Peer {
 public:
  // aiosmtpd through smtp_peer.py, recording into dir().
  static std::unique_ptr<Peer> aiosmtpd(std::vector<std::string> options = {}) {
    auto peer = std::unique_ptr<Peer>(new Peer);
    std::vector<std::string> argv = {"/usr/bin/python3", kPeerScript.string(), "--port",
                                     std::to_string(peer->port_), "--out",
                                     peer->dir_.path().string()};
    argv.insert(argv.end(), options.begin(), options.end());
    peer->start(argv);
    return peer;
  }
  // Postfix's smtp-sink, talking verbosely into output().
  static std::unique_ptr<Peer> smtp_sink(std::vector<std::string> options = {}) {
    auto peer = std::unique_ptr<Peer>(new Peer);
    std::vector<std::string> argv = {"/usr/sbin/smtp-sink", "-v"};
    if (geteuid() == 0) argv.insert(argv.end(), {"-u", "nobody"});
    argv.insert(argv.end(), options.begin(), options.end());
    argv.insert(argv.end(), {"127.0.0.1:" + std::to_string(peer->port_), "16"});
    peer->start(argv);
    return peer;
  }

  uint16_t port() const { return port_; }
  const fs::path& dir() const { return dir_.path(); }
  std::string output() const { return read_file(dir_.path() / "peer.out"); }
  int messages() const {
    int n = 0;
    while (fs::exists(dir() / ("msg-" + std::to_string(n + 1) + ".json"))) ++n;
    return n;
  }
  nlohmann::json envelope(int n) const {
    return nlohmann::json::parse(read_file(dir() / ("msg-" + std::to_string(n) + ".json")));
  }
  std::string content(int n) const {
    return read_file(dir() / ("msg-" + std::to_string(n) + ".data"));
  }
  // aiosmtpd: every end of DATA so far, "accepted SUBJECT" or "deferred SUBJECT".
  std::vector<std::string> attempts() const {
    std::vector<std::string> lines;
    std::istringstream in(read_file(dir() / "attempts.log"));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

 private:
  Peer() : port_(free_port()) {}
  void start(const std::vector<std::string>& argv) {
    process_.emplace(argv, dir_.path() / "peer.out");
    for (int i = 0; i < 200 && !accepts_connections(port_); ++i) std::this_thread::sleep_for(25ms);
    REQUIRE_MESSAGE(accepts_connections(port_), "peer did not start: " << output());
  }

  TempDir dir_;  // destroyed after the process
  uint16_t port_;
  std::optional<Process> process_;
};


}  // namespace holdd::test_peer
