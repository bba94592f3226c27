// WriteTxn: an owned LMDB write transaction (aborted unless committed), its reads
// and writes, and lmdb_status(), LMDB's codes as a Status.
#include "holdd/spool/write_txn.h"

#include <cerrno>
#include <string>
#include <utility>

namespace holdd {

Status lmdb_status(int rc, std::string_view what) {
  if (rc == MDB_SUCCESS) return Status::ok();
  std::string msg = std::string(what) + ": " + mdb_strerror(rc);
  if (rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT) return Status::no_space(std::move(msg));
  return Status::io_error(std::move(msg));
}

int WriteTxn::begin(MDB_env* env, WriteTxn* parent, std::optional<WriteTxn>& out) {
  out.reset();
  MDB_txn* txn = nullptr;
  const int rc = mdb_txn_begin(env, parent != nullptr ? parent->txn_ : nullptr, 0, &txn);
  if (rc == MDB_SUCCESS) out.emplace(WriteTxn(txn));
  return rc;
}

WriteTxn::~WriteTxn() {
  if (txn_ != nullptr) mdb_txn_abort(txn_);
}

WriteTxn::WriteTxn(WriteTxn&& other) noexcept
    : txn_(std::exchange(other.txn_, nullptr)),
      map_full_(other.map_full_),
      after_commit_(std::move(other.after_commit_)),
      journal_(std::move(other.journal_)) {}

WriteTxn& WriteTxn::operator=(WriteTxn&& other) noexcept {
  if (this != &other) {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
    txn_ = std::exchange(other.txn_, nullptr);
    map_full_ = other.map_full_;
    after_commit_ = std::move(other.after_commit_);
    journal_ = std::move(other.journal_);
  }
  return *this;
}

int WriteTxn::commit() {
  // mdb_txn_commit frees the transaction whatever it returns.
  return mdb_txn_commit(std::exchange(txn_, nullptr));
}

Status WriteTxn::check(int rc, std::string_view what) {
  if (rc == MDB_MAP_FULL) map_full_ = true;
  return lmdb_status(rc, what);
}

std::optional<std::string_view> WriteTxn::read(MDB_dbi dbi, std::string_view key) const {
  MDB_val k = to_val(key), v;
  if (mdb_get(txn_, dbi, &k, &v) != MDB_SUCCESS) return std::nullopt;
  return to_view(v);
}

Status WriteTxn::put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags) {
  MDB_val k = to_val(key), v = to_val(value);
  return check(mdb_put(txn_, dbi, &k, &v, flags), "mdb_put");
}

Status WriteTxn::erase(MDB_dbi dbi, std::string_view key) {
  MDB_val k = to_val(key);
  int rc = mdb_del(txn_, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return Status::ok();
  return check(rc, "mdb_del");
}

}  // namespace holdd
