#include "holdd/app/daemon.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <malloc.h>
#include <string_view>
#include <variant>

#include <spdlog/spdlog.h>

#include "holdd/app/auth_annotator.h"
#include "holdd/app/recipient_probe.h"
#include "holdd/cluster/cluster_node.h"
#include "holdd/cluster/pg_connection.h"
#include "holdd/cluster/schema.h"
#include "holdd/control/control_server.h"
#include "holdd/control/metrics_server.h"
#include "holdd/control/sd_notify.h"
#include "holdd/net/tls_context.h"
#include "holdd/relay/dispatcher.h"
#include "holdd/relay/upstream_client.h"
#include "holdd/route/directory.h"
#include "holdd/smtp/memory_budget.h"
#include "holdd/smtp/server.h"
#include "holdd/spool/spool.h"

namespace holdd {

namespace {

// Loads the config and the directory files it names; prints every problem.
std::optional<std::pair<Config, std::shared_ptr<const Directory>>> load_all(
    const std::string& path, const std::function<void(const std::string&)>& report) {
  auto loaded = load_config(path);
  if (auto* errors = std::get_if<std::vector<ConfigError>>(&loaded)) {
    for (const ConfigError& e : *errors) report(e.to_string());
    return std::nullopt;
  }
  Config config = std::get<Config>(std::move(loaded));
  // A CA file that holds no certificate would defer every delivery to that
  // upstream: refuse it now, like a [tls] certificate that does not load.
  bool upstream_tls_ok = true;
  for (const std::optional<UpstreamConfig>* upstream : {&config.upstream_old, &config.upstream_new}) {
    if (!upstream->has_value()) continue;
    if (Status s = check_tls_settings(**upstream); !s.is_ok()) {
      report(config.path + ": " + s.message());
      upstream_tls_ok = false;
    }
  }
  auto directory = Directory::load(config.directory);
  if (auto* errors = std::get_if<std::vector<ConfigError>>(&directory)) {
    for (const ConfigError& e : *errors) report(e.to_string());
    return std::nullopt;
  }
  if (!upstream_tls_ok) return std::nullopt;
  return std::make_pair(std::move(config), std::get<std::shared_ptr<const Directory>>(directory));
}

// The [tls] certificate for inbound STARTTLS, or null when [tls] is not set.
Result<std::shared_ptr<TlsContext>> load_tls(const TlsConfig& config) {
  if (!config.enabled()) return std::shared_ptr<TlsContext>();
  Result<std::shared_ptr<TlsContext>> tls = TlsContext::load({config.certificate, config.private_key});
  if (tls && (*tls)->expired()) {
    spdlog::warn("tls: the certificate in {} has expired; STARTTLS still offered with it",
                 config.certificate);
  }
  return tls;
}

// Benchmarks only: HOLDD_SPOOL_JOURNAL=0 (no intake journal), HOLDD_SPOOL_PREALLOCATE=1
// or =0 (data-file preallocation on or off) and HOLDD_SPOOL_MAX_BATCH=N (at most N
// requests per group commit; 1 turns it off) show what each part of intake buys
// (bench/intake.sh, docs/performance.md). Environment variables rather than config
// keys: no operator has a reason to set them. The spool never reads the
// environment; this is the one place that does.
void apply_spool_bench_overrides(SpoolOptions& options) {
  if (const char* v = std::getenv("HOLDD_SPOOL_JOURNAL")) options.journal = std::string_view(v) != "0";
  if (const char* v = std::getenv("HOLDD_SPOOL_PREALLOCATE")) {
    options.preallocate = std::string_view(v) != "0";
  }
  if (const char* v = std::getenv("HOLDD_SPOOL_MAX_BATCH")) {
    long n = std::strtol(v, nullptr, 10);
    if (n >= 1) options.max_batch = static_cast<size_t>(n);  // the writer caps it at 512
  }
}

class Daemon {
 public:
  Daemon(Config config, std::shared_ptr<const Directory> directory)
      : config_(std::move(config)),
        directory_(std::move(directory)),
        signals_(io_),
        memory_(config_.server.max_message_memory) {}

  int run() {
    SpoolOptions spool_options;
    spool_options.path = config_.spool.path;
    spool_options.min_free_disk = config_.spool.min_free_disk;
    spool_options.initial_state = config_.directory.initial_state;
    // Several nodes: a mailbox the database has not told this node about is held
    // until it does (within a second while the database is up; SPEC: "a mailbox
    // never seen before is held" while it is not).
    if (config_.cluster.enabled()) spool_options.initial_state = MailboxState::kHeld;
    spool_options.fold_local_part_case = config_.directory.local_part_case == LocalPartCase::kInsensitive;
    apply_spool_bench_overrides(spool_options);
    auto spool = Spool::open(spool_options, io_.get_executor());
    if (!spool) {
      spdlog::critical("cannot open spool: {}", spool.status().to_string());
      return 1;
    }
    spool_ = std::move(*spool);
    dispatcher_ = std::make_unique<Dispatcher>(io_.get_executor(), *spool_, config_);
    spool_->on_queued([this](const std::vector<std::string>& mailboxes) {
      dispatcher_->notify(mailboxes);
      if (cluster_) cluster_->seen(mailboxes);
    });
    if (config_.cluster.enabled()) start_cluster();
    // A spool that LMDB no longer vouches for must not take more mail: stop, and
    // exit non-zero so that systemd restarts holdd and the journal is replayed.
    spool_->on_fatal([this](const Status& status) {
      if (exit_code_ != 0) return;
      exit_code_ = 1;
      spdlog::critical("spool failed ({}): shutting down to restart from the journal",
                       status.to_string());
      net::co_spawn(io_, shutdown(), net::detached);
    });

    SessionDeps deps;
    deps.config = std::make_shared<const ServerConfig>(config_.server);
    deps.spool = spool_.get();
    deps.directory = [this] { return directory_; };
    deps.stats = &intake_;
    deps.memory = &memory_;
    // Made even with recipients = "listed": a SIGHUP may turn "verify" on.
    verifier_ = std::make_unique<smtp::RecipientVerifier>(
        io_.get_executor(), make_recipient_probe([this]() -> const Config& { return config_; }),
        recipient_verify_options(config_), &intake_.verify);
    deps.verifier = verifier_.get();
    intake_.message_memory = &memory_;
    auto verifier = auth::AuthVerifier::create(config_.auth);
    if (!verifier) {
      spdlog::critical("auth: {}", verifier.status().to_string());
      return 1;
    }
    annotator_ = std::make_shared<AuthAnnotator>(std::shared_ptr<auth::AuthVerifier>(std::move(*verifier)));
    deps.annotator = annotator_;
    Result<std::shared_ptr<TlsContext>> tls = load_tls(config_.tls);
    if (!tls) {
      spdlog::critical("{}", tls.status().message());
      return 1;
    }
    deps.tls = *tls;
    if (deps.tls) spdlog::info("tls: STARTTLS offered with {}", deps.tls->summary());
    smtp_ = std::make_unique<SmtpServer>(io_, deps);
    if (Status s = smtp_->listen(config_.server.listen); !s.is_ok()) {
      spdlog::critical("{}", s.to_string());
      return 1;
    }

    DaemonView view;
    view.spool = spool_.get();
    view.dispatcher = dispatcher_.get();
    view.cluster = cluster_.get();
    view.intake = &intake_;
    view.config = [this]() -> const Config& { return config_; };
    view.directory = [this] { return directory_; };
    view.started = std::chrono::system_clock::now();
    auto control = ControlServer::open(io_.get_executor(), config_.control, view);
    if (!control) {
      spdlog::critical("control socket: {}", control.status().to_string());
      return 1;
    }
    control_ = std::move(*control);
    if (config_.control.metrics_listen) {
      auto metrics = MetricsServer::open(io_.get_executor(), *config_.control.metrics_listen, view);
      if (!metrics) {
        spdlog::critical("metrics: {}", metrics.status().to_string());
        return 1;
      }
      metrics_ = std::move(*metrics);
    }

    signals_.add(SIGTERM);
    signals_.add(SIGINT);
    signals_.add(SIGHUP);
    net::co_spawn(io_, handle_signals(), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
    dispatcher_->start();
    smtp_->start();
    control_->start();
    if (metrics_) metrics_->start();
    // The watchdog pings only while the spool's writer thread is healthy too: a
    // writer stuck on a dead disk stalls every 250 without stalling this thread.
    watchdog_ = std::make_unique<sd_notify::Watchdog>(
        io_.get_executor(), [this](std::chrono::microseconds interval) {
          return spool_->healthy(interval / 2);
        });
    watchdog_->start();
    std::string listening;
    for (const Endpoint& e : smtp_->local_endpoints()) listening += " " + e.to_string();
    spdlog::info("holdd ready: smtp{} control {} spool {} ({} queued)", listening,
                 config_.control.socket, config_.spool.path, spool_->all_totals().size());
    sd_notify::ready();

    io_.run();
    // io.run() returns once shutdown() has stopped every part; the spool's
    // destructor then lets the writer finish what is queued (the last commit lands).
    control_.reset();
    metrics_.reset();
    smtp_.reset();
    verifier_.reset();
    cluster_.reset();
    dispatcher_.reset();
    spool_.reset();
    spdlog::info("holdd stopped{}", exit_code_ != 0 ? " after a fatal spool error" : "");
    return exit_code_;
  }

 private:
  // SPEC: "At start a node reads the states from PostgreSQL before it accepts
  // mail": runs the io_context until the node has synced (or given up waiting for
  // the database, after kClusterStartWait).
  void start_cluster() {
    static constexpr std::chrono::seconds kClusterStartWait{10};
    cluster::ClusterOptions options;
    options.conninfo = config_.cluster.postgresql;
    options.node = config_.cluster.node;
    options.version = HOLDD_VERSION;
    options.initial_state = config_.directory.initial_state;
    cluster_ = std::make_unique<cluster::ClusterNode>(io_.get_executor(), options, *spool_, *dispatcher_);
    spdlog::info("cluster: node {}, PostgreSQL {}", options.node, cluster::redact(options.conninfo));
    // The listed mailboxes are states in the database too (in initial_state), so
    // that every node knows them even before their first mail.
    cluster_->seen(directory_->mailboxes());
    auto started = net::co_spawn(io_, cluster_->start(kClusterStartWait), net::use_future);
    while (started.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      if (io_.stopped()) io_.restart();
      io_.run_one_for(std::chrono::milliseconds(50));
    }
    started.get();
    if (io_.stopped()) io_.restart();
  }

  net::awaitable<void> handle_signals() {
    for (;;) {
      auto [ec, signo] = co_await signals_.async_wait(net::as_tuple(net::use_awaitable));
      if (ec) co_return;
      if (signo == SIGHUP) {
        reload();
        continue;
      }
      spdlog::info("signal {}: shutting down", signo == SIGTERM ? "SIGTERM" : "SIGINT");
      co_await shutdown();
      co_return;
    }
  }

  // SPEC: stop accepting, finish or abort sessions cleanly (an unfinished DATA is
  // never acknowledged), flush, exit 0.
  net::awaitable<void> shutdown() {
    if (shutting_down_) co_return;
    shutting_down_ = true;
    sd_notify::stopping();
    if (watchdog_) watchdog_->stop();
    verifier_->stop();  // an RCPT waiting for a probe slot gets its 450 now
    co_await smtp_->shutdown(config_.server.shutdown_grace);
    co_await dispatcher_->stop(config_.server.shutdown_grace);
    if (cluster_) co_await cluster_->stop();
    control_->stop();
    if (metrics_) metrics_->stop();
    signals_.cancel();
  }

  void reload() {
    sd_notify::reloading();
    spdlog::info("SIGHUP: reloading {}", config_.path);
    auto loaded = load_all(config_.path, [](const std::string& problem) {
      spdlog::error("reload refused: {}", problem);
    });
    if (!loaded) {
      spdlog::error("reload refused: the running configuration stays in force");
      sd_notify::ready();
      return;
    }
    auto& [config, directory] = *loaded;
    // A certificate that does not load is refused like any other bad setting:
    // the running one stays (renewing a certificate in place is the usual
    // reason for this SIGHUP).
    Result<std::shared_ptr<TlsContext>> tls = load_tls(config.tls);
    if (!tls) {
      spdlog::error("reload refused: {}", tls.status().message());
      spdlog::error("reload refused: the running configuration stays in force");
      sd_notify::ready();
      return;
    }
    // [auth] too, when it changed: a verifier that cannot be made (a bad
    // nameserver) refuses the reload. Unchanged, the running verifier stays.
    std::unique_ptr<auth::AuthVerifier> new_verifier;
    if (!(config.auth == config_.auth)) {
      auto verifier = auth::AuthVerifier::create(config.auth);
      if (!verifier) {
        spdlog::error("reload refused: auth: {}", verifier.status().to_string());
        spdlog::error("reload refused: the running configuration stays in force");
        sd_notify::ready();
        return;
      }
      new_verifier = std::move(*verifier);
    }
    if (!(config.cluster == config_.cluster)) {
      spdlog::warn("reload: [cluster] changes take effect only after a restart");
    }
    if (config.spool.path != config_.spool.path || config.control.socket != config_.control.socket) {
      spdlog::warn("reload: spool.path and control.socket changes take effect only after a restart");
    }
    std::vector<std::string> listen_old, listen_new;
    for (const Endpoint& e : config_.server.listen) listen_old.push_back(e.to_string());
    for (const Endpoint& e : config.server.listen) listen_new.push_back(e.to_string());
    if (listen_old != listen_new) {
      spdlog::warn("reload: server.listen changes take effect only after a restart");
    }
    // The spool's keys follow the rule it was opened with (they are folded at
    // open): a directory under the other rule would file mail under keys that
    // lock and release do not see.
    if (config.directory.local_part_case != config_.directory.local_part_case) {
      spdlog::warn("reload: directory.local_part_case changes take effect only after a restart");
      config.directory.local_part_case = config_.directory.local_part_case;
      auto same_rule = Directory::load(config.directory);
      if (auto* errors = std::get_if<std::vector<ConfigError>>(&same_rule)) {
        for (const ConfigError& e : *errors) spdlog::error("reload refused: {}", e.to_string());
        spdlog::error("reload refused: the running configuration stays in force");
        sd_notify::ready();
        return;
      }
      directory = std::get<std::shared_ptr<const Directory>>(std::move(same_rule));
    }
    if (config.server.max_message_memory != config_.server.max_message_memory) {
      spdlog::info("reload: server.max_message_memory {} -> {} bytes ({} in use)",
                   config_.server.max_message_memory, config.server.max_message_memory,
                   memory_.used());
    }
    // Keep what cannot change without a restart; take the rest.
    config.spool = config_.spool;
    config.control.socket = config_.control.socket;
    config.server.listen = config_.server.listen;
    config.cluster = config_.cluster;
    config_ = std::move(config);
    directory_ = std::move(directory);
    smtp_->reconfigure(std::make_shared<const ServerConfig>(config_.server));
    if (*tls) {
      spdlog::info("tls: STARTTLS offered with {}", (*tls)->summary());
    } else {
      spdlog::info("tls: STARTTLS not offered ([tls] not set)");
    }
    smtp_->set_tls(std::move(*tls));
    dispatcher_->reconfigure(config_);
    if (cluster_) cluster_->seen(directory_->mailboxes());  // mailboxes the reload added
    verifier_->reconfigure(recipient_verify_options(config_));
    if (new_verifier) {
      annotator_->replace(std::shared_ptr<auth::AuthVerifier>(std::move(new_verifier)));
      spdlog::info("reload: [auth] spf={} dkim={} dmarc={} authserv_id={} for new messages",
                   config_.auth.spf, config_.auth.dkim, config_.auth.dmarc, config_.auth.authserv_id);
    }
    spdlog::info("reload done: {} mailboxes, {} domains", directory_->mailboxes().size(),
                 config_.directory.domains.size());
    sd_notify::ready();
  }

  Config config_;
  std::shared_ptr<const Directory> directory_;
  net::io_context io_{1};
  net::signal_set signals_;
  IntakeStats intake_;
  // Message content in RAM, across all sessions; reload() sets its limit
  // through SmtpServer::reconfigure().
  smtp::MessageMemoryBudget memory_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<cluster::ClusterNode> cluster_;  // [cluster] only
  std::shared_ptr<AuthAnnotator> annotator_;
  std::unique_ptr<smtp::RecipientVerifier> verifier_;  // recipients = "verify"
  std::unique_ptr<SmtpServer> smtp_;
  std::unique_ptr<ControlServer> control_;
  std::unique_ptr<MetricsServer> metrics_;
  std::unique_ptr<sd_notify::Watchdog> watchdog_;
  int exit_code_ = 0;
  bool shutting_down_ = false;  // non-zero after a fatal spool error
};

}  // namespace

// --check-config with [cluster]: says whether PostgreSQL answers now and which
// schema it has. Not an error when it does not (systemd runs --check-config before
// each start, and a node starts without the database: SPEC "Several nodes").
static void check_cluster_database(const Config& config) {
  if (!config.cluster.enabled()) return;
  Result<cluster::PgConnection> db = cluster::PgConnection::connect(config.cluster.postgresql);
  if (!db) {
    std::fprintf(stderr,
                 "%s: cluster.postgresql: warning: %s; holdd starts anyway, with the states in its spool, "
                 "and catches up when the database is back\n",
                 config.path.c_str(), db.status().message().c_str());
    return;
  }
  int have = 0;
  Result<cluster::PgRows> version = db->query(
      "SELECT CASE WHEN to_regclass('holdd_schema') IS NULL THEN 0 ELSE "
      "(SELECT coalesce(max(version), 0) FROM holdd_schema) END");
  if (version && !version->empty() && version->at(0).at(0)) have = std::stoi(*version->at(0).at(0));
  std::printf("%s: cluster: node %s, PostgreSQL %s reachable, holdd schema version %d (this holdd: %d%s)\n",
              config.path.c_str(), config.cluster.node.c_str(), db->server_version().c_str(), have,
              cluster::schema_version(), have < cluster::schema_version() ? ", upgraded at start" : "");
}

int check_config(const std::string& config_path) {
  auto loaded = load_all(config_path, [](const std::string& problem) {
    std::fprintf(stderr, "%s\n", problem.c_str());
  });
  if (!loaded) return 1;
  if (Result<std::shared_ptr<TlsContext>> tls = load_tls(loaded->first.tls); !tls) {
    std::fprintf(stderr, "%s\n", tls.status().message().c_str());
    return 1;
  }
  std::printf("%s: configuration OK (%zu mailboxes, %zu domains)\n", config_path.c_str(),
              loaded->second->mailboxes().size(), loaded->first.directory.domains.size());
  check_cluster_database(loaded->first);
  return 0;
}

int run_daemon(const std::string& config_path) {
  auto loaded = load_all(config_path, [](const std::string& problem) {
    spdlog::critical("{}", problem);
  });
  if (!loaded) return 1;
  std::signal(SIGPIPE, SIG_IGN);
  // Large message content (whole messages, LMDB's dirty pages for them) goes
  // back to the kernel when freed, so that RSS follows max_message_memory. glibc
  // would otherwise raise its mmap threshold after the first such free (up to
  // 32 MiB) and serve them from heaps that keep their high-water mark (seen: 60
  // clients x 20 MiB against a 64 MiB budget peaked at 103 MiB over idle).
  // Setting it fixes it. Not at the default 128 KiB: LMDB allocates 3 MiB of
  // arrays for every nested write transaction (one per spool write), and mapping
  // and unmapping them cost a quarter of intake's CPU (perf: sysmalloc_mmap,
  // munmap's TLB shootdowns). The receiving blocks of 128 KiB and more are mapped
  // by MessageBuffer itself.
  mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
  // And the spool writer's heap keeps those arrays' pages once freed: trimming
  // them back cost a madvise() and fresh page faults for every spool write
  // (strace: one madvise per message at intake). At most 8 MiB of free memory
  // stays at the top of a heap.
  mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
  Daemon daemon(std::move(loaded->first), std::move(loaded->second));
  return daemon.run();
}

}  // namespace holdd
