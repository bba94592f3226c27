#include "holdd/spool/mailbox_key_migration.h"

#include <doctest/doctest.h>

#include "../temp_dir.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "holdd/spool/spool.h"

namespace holdd {
namespace {

// Runs `body` as a coroutine on a fresh io_context until it finishes.
template <class F>
void run(F body) {
  net::io_context io;
  std::exception_ptr error;
  net::co_spawn(io, body(io), [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
}

SpoolOptions options_for(const TempDir& dir, bool fold) {
  SpoolOptions options;
  options.path = dir.path.string();
  options.initial_state = MailboxState::kOld;
  options.initial_map_size = 1ull << 24;
  options.fold_local_part_case = fold;
  return options;
}

std::unique_ptr<Spool> open_spool(const TempDir& dir, net::io_context& io, bool fold) {
  auto spool = Spool::open(options_for(dir, fold), io.get_executor());
  REQUIRE(spool.ok());
  return std::move(*spool);
}

// Plain helpers: g++ 12 rejects braced initializer lists inside coroutine bodies.
const std::vector<std::string> kBobUpper = {"Bob@example.test"};
const std::vector<std::string> kBobLower = {"bob@example.test"};
const std::vector<std::string> kBobBoth = {"Bob@example.test", "bob@example.test"};
const std::vector<std::string> kCarolUpper = {"Carol@example.test"};

IncomingMessage message(Spool& spool, const std::string& sender, const std::vector<std::string>& mailboxes) {
  IncomingMessage m;
  m.meta.id = spool.new_id();
  m.meta.sender = sender;
  std::string content = "Subject: " + sender + "\r\n\r\nbody\r\n";
  m.meta.received_size = content.size();
  for (const std::string& mb : mailboxes) m.recipients.push_back(QueuedRecipient{mb, mb, "", ""});
  m.content = std::move(content);
  return m;
}

std::vector<std::string> senders(const std::vector<QueueEntry>& q) {
  std::vector<std::string> out;
  for (const QueueEntry& e : q) out.push_back(e.sender);
  return out;
}

bool has_record(const Spool& spool, const std::string& key) {
  std::vector<MailboxRecord> records = spool.mailbox_records();
  return std::any_of(records.begin(), records.end(), [&](const MailboxRecord& r) { return r.mailbox == key; });
}

// Opens the spool's LMDB environment by itself (no Spool) and runs the migration
// as Spool::open would: how a test sees whether it ran.
MailboxKeyMigration migrate_directly(const TempDir& dir, bool fold) {
  MDB_env* env = nullptr;
  REQUIRE(mdb_env_create(&env) == MDB_SUCCESS);
  mdb_env_set_maxdbs(env, 8);
  mdb_env_set_mapsize(env, 1ull << 24);
  REQUIRE(mdb_env_open(env, dir.path.c_str(), MDB_NOTLS, 0600) == MDB_SUCCESS);
  MailboxKeyTables t;
  MDB_txn* txn = nullptr;
  REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == MDB_SUCCESS);
  REQUIRE(mdb_dbi_open(txn, "mailbox", 0, &t.mailbox) == MDB_SUCCESS);
  REQUIRE(mdb_dbi_open(txn, "queue", 0, &t.queue) == MDB_SUCCESS);
  REQUIRE(mdb_dbi_open(txn, "meta", 0, &t.meta) == MDB_SUCCESS);
  REQUIRE(mdb_dbi_open(txn, "info", 0, &t.info) == MDB_SUCCESS);
  REQUIRE(mdb_txn_commit(txn) == MDB_SUCCESS);
  Result<MailboxKeyMigration> r =
      migrate_mailbox_keys(env, t, fold, [] { return Status::no_space("the test map does not grow"); });
  mdb_env_close(env);
  REQUIRE(r.ok());
  return *r;
}

TEST_CASE("mailbox key migration: mixed-case keys merge in arrival order, once, held winning") {
  TempDir dir;
  std::string dup_id, parked_id;
  // An exact-mode spool (as a holdd before local_part_case wrote it): Bob@ and
  // bob@ are two mailboxes, Bob@ held, bob@ old with one delivery behind it.
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io, /*fold=*/false);
    REQUIRE((co_await spool->put(message(*spool, "s0@x.test", kBobLower))).ok());
    REQUIRE((co_await spool->sync()).is_ok());
    REQUIRE((co_await spool->delivered(*spool->head("bob@example.test"), UpstreamKind::kOld, "250 ok")).is_ok());
    REQUIRE((co_await spool->set_state(kBobUpper, MailboxState::kHeld, "holdctl uid=0")).ok());
    REQUIRE((co_await spool->put(message(*spool, "s1@x.test", kBobUpper))).ok());
    REQUIRE((co_await spool->put(message(*spool, "s2@x.test", kBobLower))).ok());
    auto both = message(*spool, "s3@x.test", kBobBoth);  // RCPT Bob@ and bob@ in one transaction
    dup_id = both.meta.id;
    REQUIRE((co_await spool->put(std::move(both))).ok());
    REQUIRE((co_await spool->put(message(*spool, "s4@x.test", kBobUpper))).ok());
    REQUIRE((co_await spool->put(message(*spool, "s5@x.test", kBobLower))).ok());
    REQUIRE((co_await spool->put(message(*spool, "c0@x.test", kCarolUpper))).ok());
    REQUIRE((co_await spool->sync()).is_ok());
    // A parked entry keeps its flag and attempts through the move.
    QueueEntry s2 = spool->queue("bob@example.test").front();
    REQUIRE(s2.sender == "s2@x.test");
    parked_id = s2.id;
    REQUIRE((co_await spool->parked(s2, "550 5.1.1 no")).is_ok());
    REQUIRE((co_await spool->sync()).is_ok());
    CHECK(spool->queue("Bob@example.test").size() == 3);
    CHECK(spool->queue("bob@example.test").size() == 3);
    CHECK(spool->meta(dup_id)->refs == 2);
  });
  // Opened under the default rule: one mailbox, bob@example.test.
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io, /*fold=*/true);
    std::vector<QueueEntry> q = spool->queue("bob@example.test");
    CHECK(senders(q) == std::vector<std::string>{"s1@x.test", "s2@x.test", "s3@x.test", "s4@x.test", "s5@x.test"});
    for (size_t i = 1; i < q.size(); ++i) CHECK(q[i - 1].seq < q[i].seq);
    // The relayed rcpt stays what the client wrote.
    CHECK(q[0].recipient.rcpt == "Bob@example.test");
    CHECK(q[1].recipient.rcpt == "bob@example.test");
    CHECK(q[1].parked);
    CHECK(q[1].id == parked_id);
    CHECK(spool->queue("Bob@example.test").empty());
    CHECK_FALSE(has_record(*spool, "Bob@example.test"));
    // The message for both spellings is queued once, and its refs follow.
    CHECK(spool->entries_of(dup_id).size() == 1);
    CHECK(spool->meta(dup_id)->refs == 1);

    MailboxRecord r = spool->mailbox("bob@example.test");
    CHECK(r.state == MailboxState::kHeld);  // held wins: nothing leaves before release
    CHECK(r.delivered == 1);
    CHECK(r.parked == 1);
    CHECK(r.last_delivery == "old: 250 ok");
    REQUIRE(r.history.size() == 2);
    CHECK(r.history[0].from == MailboxState::kOld);  // Bob@'s lock
    CHECK(r.history[0].to == MailboxState::kHeld);
    CHECK(r.history[0].by == "holdctl uid=0");
    CHECK(r.history[1].from == MailboxState::kOld);  // bob@'s mail is held from now on
    CHECK(r.history[1].to == MailboxState::kHeld);
    CHECK(r.history[1].by == "spool: merged bob@example.test, Bob@example.test (local_part_case = \"insensitive\")");
    CHECK(r.history[0].at_us <= r.history[1].at_us);

    QueueTotals t = spool->totals("bob@example.test");
    CHECK(t.messages == 5);
    CHECK(t.parked == 1);
    CHECK(spool->totals("Bob@example.test").messages == 0);

    // A key with no lower-case twin is simply renamed.
    CHECK(senders(spool->queue("carol@example.test")) == std::vector<std::string>{"c0@x.test"});
    CHECK(has_record(*spool, "carol@example.test"));
    CHECK_FALSE(has_record(*spool, "Carol@example.test"));
    co_return;
  });
  // The marker makes it a one-time job.
  CHECK_FALSE(migrate_directly(dir, /*fold=*/true).ran);
}

TEST_CASE("mailbox key migration: the records' latest state wins when none is held") {
  TempDir dir;
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io, /*fold=*/false);
    REQUIRE((co_await spool->put(message(*spool, "s0@x.test", kBobLower))).ok());
    REQUIRE((co_await spool->put(message(*spool, "s1@x.test", kBobUpper))).ok());
    // bob@ went held and back to old first; Bob@ was released (migrated) later.
    REQUIRE((co_await spool->set_state(kBobLower, MailboxState::kHeld, "a")).ok());
    REQUIRE((co_await spool->set_state(kBobLower, MailboxState::kOld, "b")).ok());
    REQUIRE((co_await spool->set_state(kBobUpper, MailboxState::kHeld, "c")).ok());
    REQUIRE((co_await spool->set_state(kBobUpper, MailboxState::kMigrated, "d")).ok());
  });
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io, /*fold=*/true);
    MailboxRecord r = spool->mailbox("bob@example.test");
    CHECK(r.state == MailboxState::kMigrated);
    std::vector<std::string> by;
    for (const StateChange& c : r.history) by.push_back(c.by.substr(0, 1));
    // Both histories in time order, then the change bob@'s mail undergoes.
    CHECK(by == std::vector<std::string>{"a", "b", "c", "d", "s"});
    CHECK(r.history.back().from == MailboxState::kOld);
    CHECK(r.history.back().to == MailboxState::kMigrated);
    CHECK(senders(spool->queue("bob@example.test")) == std::vector<std::string>{"s0@x.test", "s1@x.test"});
    co_return;
  });
}

TEST_CASE("mailbox key migration: exact mode rewrites nothing, and a later insensitive open folds again") {
  TempDir dir;
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io, /*fold=*/true);
    REQUIRE((co_await spool->put(message(*spool, "s0@x.test", kBobLower))).ok());
  });
  // The spool was empty at that open (nothing written then); this open finds
  // nothing to fold but sets the marker, and the next one skips the scan.
  MailboxKeyMigration first = migrate_directly(dir, /*fold=*/true);
  CHECK(first.ran);
  CHECK(first.mailboxes_renamed + first.mailboxes_merged + first.entries_moved == 0);
  CHECK_FALSE(migrate_directly(dir, /*fold=*/true).ran);
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io, /*fold=*/false);
    // Exact mode: the folded key is an exact key like any other.
    CHECK(spool->queue("bob@example.test").size() == 1);
    REQUIRE((co_await spool->put(message(*spool, "s1@x.test", kBobUpper))).ok());
  });
  CHECK_FALSE(migrate_directly(dir, /*fold=*/false).ran);  // the marker is gone already
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io, /*fold=*/true);
    CHECK(senders(spool->queue("bob@example.test")) == std::vector<std::string>{"s0@x.test", "s1@x.test"});
    CHECK(spool->queue("Bob@example.test").empty());
    co_return;
  });
}

TEST_CASE("mailbox key migration: runs after journal recovery, so journaled old-case keys fold too") {
  TempDir dir;
  // A child puts for Bob@ in exact mode and dies before the LMDB commit: the
  // message exists only in the journal, under the old key.
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    net::io_context io;
    SpoolOptions options = options_for(dir, /*fold=*/false);
    options.journal_commit_delay_us = 60'000'000;
    auto spool = Spool::open(options, io.get_executor());
    if (!spool.ok()) ::_exit(2);
    bool ok = false;
    net::co_spawn(io, [&]() -> net::awaitable<void> {
      ok = (co_await (*spool)->put(message(**spool, "j0@x.test", kBobUpper))).ok();
    }, net::detached);
    io.run();
    ::_exit(ok ? 0 : 3);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io, /*fold=*/true);
    CHECK(senders(spool->queue("bob@example.test")) == std::vector<std::string>{"j0@x.test"});
    CHECK(spool->queue("Bob@example.test").empty());
    CHECK(spool->totals("bob@example.test").messages == 1);
    co_return;
  });
}

}  // namespace
}  // namespace holdd
