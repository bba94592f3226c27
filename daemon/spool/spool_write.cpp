// The spool's writes: each builds a request that the group-commit writer applies
// in a nested transaction of its batch (put, set_state, delivered, deferred,
// parked, requeue, drop, and sync, which writes nothing), and the steps they share.
#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <mutex>
#include <unordered_set>

#include "holdd/base/clock.h"
#include "holdd/spool/keys.h"
#include "queue_scan.h"
#include "spool_impl.h"

namespace holdd {

namespace {
constexpr size_t kMaxHistory = 200;  // state changes kept per mailbox
}  // namespace

// Submits `apply` to the group commit and completes on the caller's executor
// once the batch holding it is durable.
net::awaitable<Status> Spool::Impl::write(GroupCommitWriter::Apply apply) {
  auto initiate = [this](auto handler, GroupCommitWriter::Apply fn) {
    auto shared = std::make_shared<decltype(handler)>(std::move(handler));
    auto ex = net::get_associated_executor(*shared, io);
    auto work = net::make_work_guard(ex);  // keeps run() going while the writer works
    writer->submit(std::move(fn), [shared, ex, work](Status s) mutable {
      net::post(ex, [shared, s = std::move(s)]() mutable { (*shared)(std::move(s)); });
      work.reset();
    });
  };
  co_return co_await net::async_initiate<const net::use_awaitable_t<>&, void(Status)>(
      initiate, net::use_awaitable, std::move(apply));
}

// Removes one entry inside `txn`, releasing the message once nothing refers to it.
Status Spool::Impl::remove_entry(WriteTxn& txn, const QueueEntry& stored) {
  Status s = txn.erase(queue_dbi, keys::queue_key(stored.mailbox, stored.seq));
  if (!s.is_ok()) return s;
  if (auto bytes = txn.read(meta_dbi, stored.id)) {
    MessageMeta meta;
    decode(*bytes, meta);
    if (meta.refs <= 1) {
      if (s = txn.erase(meta_dbi, stored.id); !s.is_ok()) return s;
      if (s = txn.erase(body_dbi, stored.id); !s.is_ok()) return s;
    } else {
      --meta.refs;
      if (s = txn.put(meta_dbi, stored.id, encode(meta)); !s.is_ok()) return s;
    }
  }
  std::optional<QueueEntry> head = first_entry(txn.get(), queue_dbi, stored.mailbox);
  const int64_t oldest = head ? head->arrival_us : 0;
  txn.after_commit([this, stored, oldest] { counters.remove(stored, oldest); });
  return Status::ok();
}

// Reads the current version of `entry` (it may have been parked, retried or
// dropped since the caller read it).
std::optional<QueueEntry> Spool::Impl::current(WriteTxn& txn, const QueueEntry& entry) {
  auto bytes = txn.read(queue_dbi, keys::queue_key(entry.mailbox, entry.seq));
  if (!bytes) return std::nullopt;
  QueueEntry e;
  if (!decode(*bytes, e)) return std::nullopt;
  e.mailbox = entry.mailbox;
  e.seq = entry.seq;
  return e;
}

Status Spool::Impl::put_entry(WriteTxn& txn, const QueueEntry& e) {
  return txn.put(queue_dbi, keys::queue_key(e.mailbox, e.seq), encode(e));
}

Status Spool::Impl::update_record(WriteTxn& txn, const std::string& mailbox,
                                  const std::function<void(MailboxRecord&)>& change) {
  MailboxRecord r = read_record(txn.read(mailbox_dbi, mailbox), mailbox);
  change(r);
  return txn.put(mailbox_dbi, mailbox, encode(r));
}

// Stores a message put: body and meta once, an entry per recipient's mailbox,
// mailbox records for mailboxes seen for the first time. The same code applies
// it at intake and again from the journal. `states` (optional) gets the state of
// each recipient's mailbox.
Status Spool::Impl::apply_put(WriteTxn& txn, const StoredPut& p, std::string_view content,
                              std::vector<MailboxState>* states) {
  Status st = txn.put(body_dbi, p.meta.id, content, MDB_NOOVERWRITE);
  if (!st.is_ok()) return st;
  if (st = txn.put(meta_dbi, p.meta.id, encode(p.meta)); !st.is_ok()) return st;
  uint64_t seq = 0;
  if (auto v = txn.read(info_dbi, kSeqKey)) seq = keys::read_u64_be(*v);
  const int64_t arrival = p.meta.arrival_us;
  std::vector<std::string> mailboxes;
  for (const QueueEntry& e : p.entries) {
    auto bytes = txn.read(mailbox_dbi, e.mailbox);
    MailboxRecord record = read_record(bytes, e.mailbox);
    if (!bytes && record.state != MailboxState::kHeld) record.deliverable_since_us = arrival;
    if (p.meta.forwarded_by_old) {
      ++record.forwarded_by_old;
      record.last_forwarded_us = arrival;
    }
    if (!bytes || p.meta.forwarded_by_old) {
      if (st = txn.put(mailbox_dbi, e.mailbox, encode(record)); !st.is_ok()) return st;
    }
    if (states != nullptr) states->push_back(record.state);
    // A new entry never replaces one (MDB_KEYEXIST fails the put: a bug, not mail lost).
    st = txn.put(queue_dbi, keys::queue_key(e.mailbox, e.seq), encode(e), MDB_NOOVERWRITE);
    if (!st.is_ok()) return st;
    seq = std::max(seq, e.seq);
    txn.after_commit([this, e] { counters.add(e); });
    mailboxes.push_back(e.mailbox);
  }
  txn.after_commit([this, mailboxes = std::move(mailboxes)] {
    net::post(io, [shared = observers, mailboxes] {
      std::vector<std::function<void(const std::vector<std::string>&)>> list;
      {
        std::lock_guard lock(shared->mu);
        list = shared->list;
      }
      for (auto& observer : list) observer(mailboxes);
    });
  });
  if (p.meta.forwarded_by_old) {
    uint64_t total = 0;
    if (auto v = txn.read(info_dbi, kForwardedOldTotalKey)) total = keys::read_u64_be(*v);
    if (st = txn.put(info_dbi, kForwardedOldTotalKey, keys::u64_be(total + 1)); !st.is_ok()) return st;
    st = txn.put(info_dbi, kForwardedOldLastKey, keys::u64_be(static_cast<uint64_t>(arrival)));
    if (!st.is_ok()) return st;
  }
  return txn.put(info_dbi, kSeqKey, keys::u64_be(seq));
}

net::awaitable<Result<PutReceipt>> Spool::put(IncomingMessage msg) {
  if (low_on_disk()) co_return Status::no_space("free disk below min_free_disk");
  auto shared = std::make_shared<IncomingMessage>(std::move(msg));
  auto receipt = std::make_shared<PutReceipt>();
  Impl* impl = impl_.get();
  GroupCommitWriter::Apply apply = [impl, shared, receipt](WriteTxn& txn) -> Status {
    IncomingMessage& m = *shared;
    const int64_t now = now_unix_micros();
    uint64_t seq = 0;
    if (auto v = txn.read(impl->info_dbi, kSeqKey)) seq = keys::read_u64_be(*v);
    m.meta.arrival_us = now;
    m.meta.size = m.content.size();
    m.meta.refs = static_cast<uint32_t>(m.recipients.size());
    StoredPut p;
    p.meta = m.meta;
    for (const QueuedRecipient& r : m.recipients) {
      QueueEntry e;
      e.mailbox = r.mailbox;
      e.seq = ++seq;
      e.id = m.meta.id;
      e.recipient = r;
      e.sender = m.meta.sender;
      e.size = m.meta.received_size;
      e.arrival_us = now;
      e.forwarded_by_old = m.meta.forwarded_by_old;
      p.entries.push_back(std::move(e));
    }
    receipt->arrival_us = now;
    receipt->states.clear();
    Status st = impl->apply_put(txn, p, m.content, &receipt->states);
    if (!st.is_ok()) return st;
    // The content is shared with the journal record, not copied.
    txn.journal(JournalRecord{encode_put(p), std::shared_ptr<const std::string>(shared, &shared->content)});
    return st;
  };
  Status s = co_await impl->write(std::move(apply));
  if (!s.is_ok()) {
    // A full disk often surfaces as EIO from the commit's write, not ENOSPC: if
    // the message no longer fits, say so (452 4.3.1), not "local error" (451).
    impl->disk.refresh();
    if (s.code() == Status::Code::kIOError &&
        (impl->disk.was_low() || impl->disk.free_bytes() < 2 * shared->content.size())) {
      co_return Status::no_space("spool disk full: " + s.message());
    }
    co_return s;
  }
  co_return std::move(*receipt);
}

net::awaitable<Status> Spool::sync() {
  // A request without a journal record: the writer commits LMDB for it, with
  // every journaled put before it.
  GroupCommitWriter::Apply nothing = [](WriteTxn&) { return Status::ok(); };
  co_return co_await impl_->write(std::move(nothing));
}

net::awaitable<Status> Spool::sync(std::chrono::milliseconds timeout) {
  // The writer's completion cancels the timer; whichever comes first ends the wait.
  struct Wait {
    explicit Wait(const net::any_io_executor& ex) : timer(ex) {}
    net::steady_timer timer;
    std::optional<Status> status;
  };
  auto ex = co_await net::this_coro::executor;
  auto wait = std::make_shared<Wait>(ex);
  wait->timer.expires_after(timeout);
  GroupCommitWriter::Apply nothing = [](WriteTxn&) { return Status::ok(); };
  impl_->writer->submit(std::move(nothing), [wait, ex](Status s) {
    net::post(ex, [wait, s = std::move(s)]() mutable {
      wait->status = std::move(s);
      wait->timer.cancel();
    });
  });
  if (!wait->status) co_await wait->timer.async_wait(net::as_tuple(net::use_awaitable));
  if (wait->status) co_return *wait->status;
  co_return Status::timeout("spool sync still waiting after " + std::to_string(timeout.count()) + " ms");
}

net::awaitable<Result<std::vector<StateTransition>>> Spool::set_state(
    std::vector<std::string> mailboxes, MailboxState to, std::string by) {
  auto transitions = std::make_shared<std::vector<StateTransition>>();
  auto names = std::make_shared<std::vector<std::string>>(std::move(mailboxes));
  Impl* impl = impl_.get();
  GroupCommitWriter::Apply apply = [impl, names, transitions, to, by](WriteTxn& txn) -> Status {
    int64_t now = now_unix_micros();
    transitions->clear();
    std::unordered_set<std::string> seen;
    for (const std::string& mailbox : *names) {
      if (!seen.insert(mailbox).second) continue;
      MailboxRecord r = impl->read_record(txn.read(impl->mailbox_dbi, mailbox), mailbox);
      StateTransition t{mailbox, r.state, to};
      if (t.changed()) {
        r.history.push_back(StateChange{now, r.state, to, by});
        if (r.history.size() > kMaxHistory) r.history.erase(r.history.begin());
        // SPEC: the warn_after clock starts when mail becomes deliverable.
        if (r.state == MailboxState::kHeld) r.deliverable_since_us = now;
        r.state = to;
      }
      if (r.deliverable_since_us == 0 && r.state != MailboxState::kHeld) {
        r.deliverable_since_us = now;
      }
      Status st = txn.put(impl->mailbox_dbi, mailbox, encode(r));
      if (!st.is_ok()) return st;
      transitions->push_back(std::move(t));
    }
    return Status::ok();
  };
  Status s = co_await impl->write(std::move(apply));
  if (!s.is_ok()) co_return s;
  co_return std::move(*transitions);
}

net::awaitable<Status> Spool::add_note(std::string mailbox, std::string note, std::string by) {
  Impl* impl = impl_.get();
  GroupCommitWriter::Apply apply = [impl, mailbox = std::move(mailbox), note = std::move(note),
                                  by = std::move(by)](WriteTxn& txn) -> Status {
    MailboxRecord r = impl->read_record(txn.read(impl->mailbox_dbi, mailbox), mailbox);
    r.history.push_back(StateChange{now_unix_micros(), r.state, r.state, by, note});
    if (r.history.size() > kMaxHistory) r.history.erase(r.history.begin());
    return txn.put(impl->mailbox_dbi, mailbox, encode(r));
  };
  co_return co_await impl->write(std::move(apply));
}

net::awaitable<Status> Spool::delivered(QueueEntry entry, UpstreamKind upstream, std::string reply) {
  std::vector<AcceptedDelivery> one;
  one.push_back(AcceptedDelivery{std::move(entry), upstream, std::move(reply)});
  co_return co_await delivered(std::move(one));
}

net::awaitable<Status> Spool::delivered(std::vector<AcceptedDelivery> deliveries) {
  Impl* impl = impl_.get();
  GroupCommitWriter::Apply apply = [impl, deliveries = std::move(deliveries)](WriteTxn& txn) -> Status {
    for (const AcceptedDelivery& d : deliveries) {
      std::optional<QueueEntry> stored = impl->current(txn, d.entry);
      if (!stored) continue;  // dropped meanwhile: nothing left to remove
      Status st = impl->remove_entry(txn, *stored);
      if (!st.is_ok()) return st;
      int64_t now = now_unix_micros();
      st = impl->update_record(txn, d.entry.mailbox, [&](MailboxRecord& r) {
        r.last_delivery_us = now;
        r.last_delivery = std::string(to_string(d.upstream)) + ": " + d.reply;
        ++r.delivered;
      });
      if (!st.is_ok()) return st;
      st = txn.put(impl->info_dbi, last_relay_key(d.upstream), keys::u64_be(static_cast<uint64_t>(now)));
      if (!st.is_ok()) return st;
    }
    return Status::ok();
  };
  co_return co_await impl->write(std::move(apply));
}

net::awaitable<Status> Spool::deferred(QueueEntry entry, std::string error, int64_t next_attempt_us) {
  Impl* impl = impl_.get();
  GroupCommitWriter::Apply apply = [impl, entry = std::move(entry), error = std::move(error),
                                  next_attempt_us](WriteTxn& txn) -> Status {
    std::optional<QueueEntry> stored = impl->current(txn, entry);
    if (!stored) return Status::ok();
    txn.after_commit([impl, before = *stored] { impl->counters.deferred(before); });
    int64_t now = now_unix_micros();
    ++stored->attempts;
    stored->last_attempt_us = now;
    stored->next_attempt_us = next_attempt_us;
    stored->last_error = error;
    Status st = impl->put_entry(txn, *stored);
    if (!st.is_ok()) return st;
    return impl->update_record(txn, entry.mailbox, [&](MailboxRecord& r) {
      r.last_error_us = now;
      r.last_error = error;
    });
  };
  co_return co_await impl->write(std::move(apply));
}

net::awaitable<Status> Spool::parked(QueueEntry entry, std::string reply) {
  Impl* impl = impl_.get();
  GroupCommitWriter::Apply apply = [impl, entry = std::move(entry),
                                  reply = std::move(reply)](WriteTxn& txn) -> Status {
    std::optional<QueueEntry> stored = impl->current(txn, entry);
    if (!stored || stored->parked) return Status::ok();
    txn.after_commit([impl, before = *stored] { impl->counters.parked(before); });
    int64_t now = now_unix_micros();
    ++stored->attempts;
    stored->last_attempt_us = now;
    stored->next_attempt_us = 0;
    stored->last_error = reply;
    stored->parked = true;
    Status st = impl->put_entry(txn, *stored);
    if (!st.is_ok()) return st;
    return impl->update_record(txn, entry.mailbox, [&](MailboxRecord& r) {
      r.last_error_us = now;
      r.last_error = reply;
      ++r.parked;
    });
  };
  co_return co_await impl->write(std::move(apply));
}

net::awaitable<Result<uint64_t>> Spool::requeue(std::optional<std::string> mailbox) {
  auto count = std::make_shared<uint64_t>(0);
  Impl* impl = impl_.get();
  GroupCommitWriter::Apply apply = [impl, mailbox, count](WriteTxn& txn) -> Status {
    *count = 0;
    std::vector<QueueEntry> changed;
    for_each_entry(txn.get(), impl->queue_dbi, mailbox ? keys::queue_prefix(*mailbox) : "",
                   [&](QueueEntry e) {
                     if (e.parked || e.next_attempt_us != 0) changed.push_back(std::move(e));
                     return true;
                   });
    std::vector<QueueEntry> unparked;
    for (QueueEntry& e : changed) {
      if (e.parked) {
        ++*count;
        unparked.push_back(e);
      }
      e.parked = false;
      e.next_attempt_us = 0;
      Status st = impl->put_entry(txn, e);
      if (!st.is_ok()) return st;
    }
    txn.after_commit([impl, unparked = std::move(unparked)] {
      for (const QueueEntry& before : unparked) impl->counters.unparked(before);
    });
    return Status::ok();
  };
  Status s = co_await impl->write(std::move(apply));
  if (!s.is_ok()) co_return s;
  co_return *count;
}

net::awaitable<Result<std::vector<QueueEntry>>> Spool::drop(std::vector<std::string> ids) {
  auto dropped = std::make_shared<std::vector<QueueEntry>>();
  Impl* impl = impl_.get();
  GroupCommitWriter::Apply apply = [impl, ids = std::move(ids), dropped](WriteTxn& txn) -> Status {
    dropped->clear();
    std::unordered_set<std::string> wanted(ids.begin(), ids.end());
    std::vector<QueueEntry> doomed;
    for_each_entry(txn.get(), impl->queue_dbi, "", [&](QueueEntry e) {
      if (wanted.count(e.id) != 0) doomed.push_back(std::move(e));
      return true;
    });
    for (const QueueEntry& e : doomed) {
      Status st = impl->remove_entry(txn, e);
      if (!st.is_ok()) return st;
    }
    *dropped = std::move(doomed);
    return Status::ok();
  };
  Status s = co_await impl->write(std::move(apply));
  if (!s.is_ok()) co_return s;
  co_return std::move(*dropped);
}

}  // namespace holdd
