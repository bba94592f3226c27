#include "holdd/spool/write_txn.h"

#include <cerrno>
#include <string>

namespace holdd {

Status lmdb_status(int rc, std::string_view what) {
  if (rc == MDB_SUCCESS) return Status::ok();
  std::string msg = std::string(what) + ": " + mdb_strerror(rc);
  if (rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT) return Status::no_space(std::move(msg));
  return Status::io_error(std::move(msg));
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
