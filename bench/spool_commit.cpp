// Spool commit rate without SMTP: `bench_spool_commit DIR [MESSAGES] [WRITERS] [SIZE]`
// puts MESSAGES messages of SIZE bytes into a fresh spool in DIR from WRITERS
// concurrent coroutines (so the group commit batches up to WRITERS per fsync) and
// prints messages/s and the writer's mean apply and commit times. Set
// HOLDD_SPOOL_JOURNAL=0, HOLDD_SPOOL_PREALLOCATE=1 (or =0) or HOLDD_SPOOL_MAX_BATCH=1
// to see what each buys: read here into SpoolOptions, as holdd reads them
// (app/daemon.cpp).
// Built on demand: cmake --build BUILD --target bench_spool_commit.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "holdd/spool/spool.h"

using namespace holdd;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR [MESSAGES] [WRITERS] [SIZE]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const int messages = argc > 2 ? std::atoi(argv[2]) : 2000;
  const int writers = argc > 3 ? std::atoi(argv[3]) : 1;
  const size_t size = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 4096;
  std::filesystem::remove_all(dir);

  net::io_context io;
  SpoolOptions options;
  options.path = dir;
  options.initial_state = MailboxState::kHeld;
  if (const char* v = std::getenv("HOLDD_SPOOL_JOURNAL")) options.journal = std::string_view(v) != "0";
  if (const char* v = std::getenv("HOLDD_SPOOL_PREALLOCATE")) options.preallocate = std::string_view(v) != "0";
  if (const char* v = std::getenv("HOLDD_SPOOL_MAX_BATCH")) {
    long n = std::strtol(v, nullptr, 10);
    if (n >= 1) options.max_batch = static_cast<size_t>(n);  // the writer caps it at 512
  }
  auto opened = Spool::open(options, io.get_executor());
  if (!opened.ok()) {
    std::fprintf(stderr, "cannot open spool: %s\n", opened.status().message().c_str());
    return 1;
  }
  std::unique_ptr<Spool> spool = std::move(*opened);
  const std::string body = "Subject: bench\r\n\r\n" + std::string(size, 'x') + "\r\n";
  int next = 0, failed = 0;
  auto start = std::chrono::steady_clock::now();
  for (int w = 0; w < writers; ++w) {
    auto writer = [&]() -> net::awaitable<void> {
      while (next < messages) {
        ++next;
        IncomingMessage m;
        m.meta.id = spool->new_id();
        m.meta.sender = "bench@example.net";
        m.meta.received_size = body.size();
        m.recipients.push_back(QueuedRecipient{"rcpt@example.com", "rcpt@example.com", "", ""});
        m.content = body;
        auto r = co_await spool->put(std::move(m));
        if (!r.ok()) ++failed;
      }
    };
    net::co_spawn(io, writer, net::detached);
  }
  io.run();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%d messages of %zu bytes, %d writers: %.0f messages/s (%d failed)\n", messages, size,
              writers, messages / seconds, failed);
  spool.reset();  // the writer logs its commit statistics
  std::filesystem::remove_all(dir);
  return failed == 0 ? 0 : 1;
}
