#pragma once
// GroupCommitWriter: LMDB allows one writer per environment, and each commit costs
// an fsync. One thread takes every write request waiting at that moment, runs each
// in a nested transaction of one batch transaction, and commits the batch with one
// fsync, so intake throughput grows with the number of concurrent sessions instead
// of stopping at the disk's fsync rate.
#include <lmdb.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "holdd/base/status.h"
#include "holdd/spool/write_txn.h"

namespace holdd {

class GroupCommitWriter {
 public:
  using Apply = std::function<Status(WriteTxn&)>;  // on the writer thread
  using Done = std::function<void(Status)>;        // on the writer thread, after commit

  // `grow_map` is called on the writer thread, with no transaction open, when the
  // map is full; it returns non-OK when the map cannot grow any more.
  // `after_batch` (optional) runs on the writer thread after each batch's `done`
  // callbacks, with no transaction open (SpoolPreallocation::top_up).
  GroupCommitWriter(MDB_env* env, std::function<Status()> grow_map,
                    std::function<void()> after_batch = {});
  ~GroupCommitWriter();  // stop()

  // Queues a request. `done` gets OK after the batch holding it is durable, or the
  // reason it was not applied (nothing of it is then visible).
  void submit(Apply apply, Done done);
  // Applies what is queued, then stops the thread. Later submits fail at once.
  void stop();

  uint64_t commits() const { return commits_.load(); }
  uint64_t requests() const { return requests_.load(); }
  // Time spent applying requests and committing batches (write + fsync), summed.
  uint64_t apply_ns() const { return apply_ns_.load(); }
  uint64_t commit_ns() const { return commit_ns_.load(); }

 private:
  struct Request {
    Apply apply;
    Done done;
  };
  void run();
  void commit_batch(std::deque<Request>& batch);

  MDB_env* env_;
  std::function<Status()> grow_map_;
  std::function<void()> after_batch_;
  size_t max_batch_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> pending_;
  bool stopping_ = false;
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> apply_ns_{0};
  std::atomic<uint64_t> commit_ns_{0};
  std::thread thread_;
};

}  // namespace holdd
