#include "holdd/spool/write_txn.h"

#include <doctest/doctest.h>

#include "../temp_dir.h"

#include <cerrno>
#include <optional>
#include <string>
#include <utility>

#include <lmdb.h>

namespace holdd {
namespace {

// An LMDB environment in a temp dir with one table, as the spool opens it.
struct TestEnv {
  TempDir dir;
  MDB_env* env = nullptr;
  MDB_dbi dbi = 0;

  explicit TestEnv(uint64_t map_size = 1ull << 22) {
    REQUIRE(mdb_env_create(&env) == MDB_SUCCESS);
    mdb_env_set_maxdbs(env, 2);
    mdb_env_set_mapsize(env, map_size);
    REQUIRE(mdb_env_open(env, dir.path.c_str(), MDB_NOTLS, 0600) == MDB_SUCCESS);
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == MDB_SUCCESS);
    REQUIRE(mdb_dbi_open(txn, "t", MDB_CREATE, &dbi) == MDB_SUCCESS);
    REQUIRE(mdb_txn_commit(txn) == MDB_SUCCESS);
  }
  ~TestEnv() { mdb_env_close(env); }
  TestEnv(const TestEnv&) = delete;
  TestEnv& operator=(const TestEnv&) = delete;

  // What a reader sees of `key` now: the last commit.
  std::optional<std::string> committed(std::string_view key) const {
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) == MDB_SUCCESS);
    MDB_val k = to_val(key), v;
    std::optional<std::string> out;
    if (mdb_get(txn, dbi, &k, &v) == MDB_SUCCESS) out = std::string(to_view(v));
    mdb_txn_abort(txn);
    return out;
  }

  WriteTxn begin(WriteTxn* parent = nullptr) {
    std::optional<WriteTxn> txn;
    REQUIRE(WriteTxn::begin(env, parent, txn) == MDB_SUCCESS);
    REQUIRE(txn.has_value());
    return std::move(*txn);
  }
};

TEST_CASE("WriteTxn: destroyed without commit(), it aborts: nothing it wrote is visible") {
  TestEnv t;
  {
    WriteTxn txn = t.begin();
    REQUIRE(txn.put(t.dbi, "k", "written, never committed").is_ok());
    CHECK(txn.read(t.dbi, "k") == std::optional<std::string_view>("written, never committed"));
  }
  CHECK_FALSE(t.committed("k").has_value());
  // The write lock went with it: the next transaction begins, and commits.
  WriteTxn next = t.begin();
  REQUIRE(next.put(t.dbi, "k", "v").is_ok());
  CHECK(next.commit() == MDB_SUCCESS);
  CHECK(next.get() == nullptr);  // gone: the destructor has nothing to abort
  CHECK(t.committed("k") == std::optional<std::string>("v"));
}

TEST_CASE("WriteTxn: a path that returns early aborts what it began") {
  TestEnv t;
  auto store_unless_told_not_to = [&](bool bail_out) -> int {
    WriteTxn txn = t.begin();
    if (!txn.put(t.dbi, "k", bail_out ? "half" : "whole").is_ok()) return -1;
    if (bail_out) return 0;  // no commit
    return txn.commit();
  };
  CHECK(store_unless_told_not_to(true) == 0);
  CHECK_FALSE(t.committed("k").has_value());
  CHECK(store_unless_told_not_to(false) == MDB_SUCCESS);
  CHECK(t.committed("k") == std::optional<std::string>("whole"));
}

TEST_CASE("WriteTxn: a nested transaction destroyed uncommitted leaves its parent as it was") {
  TestEnv t;
  WriteTxn batch = t.begin();
  REQUIRE(batch.put(t.dbi, "a", "1").is_ok());
  {
    WriteTxn failed = t.begin(&batch);
    REQUIRE(failed.put(t.dbi, "b", "2").is_ok());
    REQUIRE(failed.erase(t.dbi, "a").is_ok());
  }  // aborted
  {
    WriteTxn ok = t.begin(&batch);
    REQUIRE(ok.put(t.dbi, "c", "3").is_ok());
    REQUIRE(ok.commit() == MDB_SUCCESS);  // into the parent, not yet to readers
  }
  CHECK(batch.read(t.dbi, "a") == std::optional<std::string_view>("1"));
  CHECK_FALSE(batch.read(t.dbi, "b").has_value());
  CHECK(batch.read(t.dbi, "c") == std::optional<std::string_view>("3"));
  CHECK_FALSE(t.committed("c").has_value());
  REQUIRE(batch.commit() == MDB_SUCCESS);
  CHECK(t.committed("a") == std::optional<std::string>("1"));
  CHECK_FALSE(t.committed("b").has_value());
  CHECK(t.committed("c") == std::optional<std::string>("3"));
}

TEST_CASE("WriteTxn: moving one hands over the transaction, aborted once, by its last owner") {
  TestEnv t;
  std::optional<WriteTxn> first;
  REQUIRE(WriteTxn::begin(t.env, nullptr, first) == MDB_SUCCESS);
  REQUIRE(first->put(t.dbi, "k", "v").is_ok());
  first->after_commit([] {});
  MDB_txn* raw = first->get();
  {
    WriteTxn second(std::move(*first));
    CHECK(first->get() == nullptr);
    CHECK(second.get() == raw);
    CHECK(second.after_commit_hooks().size() == 1);
    first.reset();  // the moved-from one aborts nothing
    CHECK(second.read(t.dbi, "k") == std::optional<std::string_view>("v"));
  }  // the new owner aborts
  CHECK_FALSE(t.committed("k").has_value());
  WriteTxn next = t.begin();  // the write lock is free again
  CHECK(next.commit() == MDB_SUCCESS);
}

TEST_CASE("WriteTxn: a write that does not fit the map is kNoSpace and marks map_full()") {
  TestEnv t(/*map_size=*/1ull << 20);
  WriteTxn txn = t.begin();
  CHECK_FALSE(txn.map_full());
  Status s = txn.put(t.dbi, "big", std::string(4u << 20, 'x'));
  CHECK(s.code() == Status::Code::kNoSpace);
  CHECK(txn.map_full());
}

TEST_CASE("WriteTxn: begin() reports LMDB's code and leaves nothing when it cannot begin") {
  TempDir dir;
  MDB_env* env = nullptr;
  REQUIRE(mdb_env_create(&env) == MDB_SUCCESS);
  REQUIRE(mdb_env_open(env, dir.path.c_str(), MDB_NOTLS, 0600) == MDB_SUCCESS);  // creates the files
  mdb_env_close(env);
  REQUIRE(mdb_env_create(&env) == MDB_SUCCESS);
  REQUIRE(mdb_env_open(env, dir.path.c_str(), MDB_NOTLS | MDB_RDONLY, 0600) == MDB_SUCCESS);
  std::optional<WriteTxn> txn;
  CHECK(WriteTxn::begin(env, nullptr, txn) == EACCES);  // no write transaction in a read-only env
  CHECK_FALSE(txn.has_value());
  mdb_env_close(env);
}

TEST_CASE("lmdb_status: a full map or disk is kNoSpace, anything else kIOError") {
  struct Case {
    int rc;
    Status::Code code;
  };
  const Case cases[] = {{MDB_SUCCESS, Status::Code::kOk},       {MDB_MAP_FULL, Status::Code::kNoSpace},
                        {ENOSPC, Status::Code::kNoSpace},       {EDQUOT, Status::Code::kNoSpace},
                        {EIO, Status::Code::kIOError},          {MDB_PANIC, Status::Code::kIOError},
                        {MDB_CORRUPTED, Status::Code::kIOError}};
  for (const Case& c : cases) {
    CAPTURE(c.rc);
    CHECK(lmdb_status(c.rc, "op").code() == c.code);
  }
}

}  // namespace
}  // namespace holdd
