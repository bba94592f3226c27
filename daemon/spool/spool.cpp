// The Spool object itself: its lifetime, queue IDs, the on_queued / on_fatal hooks,
// health and map growth. Opening is in spool_open.cpp, the writes in
// spool_write.cpp, the reads in spool_read.cpp; the state they share in
// spool_impl.h.
#include "holdd/spool/spool.h"

#include <algorithm>
#include <cstdio>
#include <mutex>

#include <spdlog/spdlog.h>

#include "holdd/base/clock.h"
#include "spool_impl.h"

namespace holdd {

Spool::Spool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Spool::~Spool() = default;

Spool::Impl::~Impl() {
  {
    std::lock_guard lock(observers->mu);
    observers->list.clear();
  }
  {
    std::lock_guard lock(fatal->mu);
    fatal->handler = nullptr;
  }
  if (writer) writer->stop();
  writer.reset();
  journal.reset();
  if (env != nullptr) mdb_env_close(env);
}

Status Spool::Impl::grow_map() {
  if (map_size >= options.max_map_size) return Status::no_space("LMDB map at its maximum size");
  uint64_t next = std::min(map_size * 2, options.max_map_size);
  std::unique_lock lock(resize_mu);
  int rc = mdb_env_set_mapsize(env, next);
  if (rc != MDB_SUCCESS) return lmdb_status(rc, "mdb_env_set_mapsize");
  spdlog::info("spool: LMDB map grown from {} to {} bytes", map_size, next);
  map_size = next;
  return Status::ok();
}

std::string Spool::new_id() {
  uint64_t now = static_cast<uint64_t>(now_unix_micros());
  uint64_t last = impl_->last_id.load();
  uint64_t next;
  do {
    next = std::max(now, last + 1);
  } while (!impl_->last_id.compare_exchange_weak(last, next));
  char buf[24];
  std::snprintf(buf, sizeof buf, "%014llX", static_cast<unsigned long long>(next));
  return buf;
}

bool Spool::low_on_disk() { return impl_->disk.is_low(); }

void Spool::on_queued(std::function<void(const std::vector<std::string>&)> observer) {
  std::lock_guard lock(impl_->observers->mu);
  impl_->observers->list.push_back(std::move(observer));
}

void Spool::on_fatal(std::function<void(const Status&)> handler) {
  std::lock_guard lock(impl_->fatal->mu);
  impl_->fatal->handler = std::move(handler);
}

bool Spool::healthy(std::chrono::nanoseconds stall) const { return impl_->writer->healthy(stall); }

}  // namespace holdd
