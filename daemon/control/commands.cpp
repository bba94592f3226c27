#include "holdd/control/commands.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <unordered_set>

#include <boost/asio/this_coro.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "holdd/base/clock.h"
#include "holdd/base/maillog.h"
#include "holdd/base/printable.h"
#include "holdd/control/health_check.h"
#include "holdd/control/snapshot.h"
#include "holdd/protocol/framing.h"
#include "holdd/protocol/verbs.h"
#include "holdd/relay/upstream_client.h"
#include "holdd/route/address.h"

namespace holdd {

using json = nlohmann::json;

namespace {

// `release --wait` without a limit: long enough to mean "until done" without
// overflowing the dispatcher's time arithmetic.
constexpr std::chrono::seconds kWaitForever{10LL * 365 * 24 * 3600};

json time_or_null(int64_t us) { return us > 0 ? json(format_rfc3339_micros(us)) : json(nullptr); }

json age_or_null(int64_t now_us, int64_t us) {
  if (us <= 0) return nullptr;
  return us >= now_us ? 0 : (now_us - us) / 1000000;
}

std::string upstream_target(const std::optional<UpstreamConfig>& u) {
  if (!u) return "";
  return Endpoint{u->host, u->port}.to_string();
}

// A note in a mailbox's history (holdctl note, migrate): a line, not a file.
constexpr size_t kMaxNote = 2000;

// ---- arguments ----

const json& args_of(const json& request) {
  static const json kEmpty = json::object();
  auto it = request.find("args");
  return it != request.end() && it->is_object() ? *it : kEmpty;
}

Result<std::vector<std::string>> string_list(const json& args, const char* key) {
  auto it = args.find(key);
  if (it == args.end() || !it->is_array()) {
    return Status::invalid(std::string("malformed request: \"") + key + "\" must be a list of strings");
  }
  std::vector<std::string> out;
  out.reserve(it->size());
  for (const json& v : *it) {
    if (!v.is_string()) {
      return Status::invalid(std::string("malformed request: \"") + key + "\" must be a list of strings");
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

Result<std::string> string_arg(const json& args, const char* key) {
  auto it = args.find(key);
  if (it == args.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
    return Status::invalid(std::string("malformed request: \"") + key + "\" must be a string");
  }
  return it->get<std::string>();
}

bool bool_arg(const json& args, const char* key) {
  auto it = args.find(key);
  return it != args.end() && it->is_boolean() && it->get<bool>();
}

// A finite non-negative number, or nullopt when absent, not a number, negative,
// infinite or NaN.
std::optional<double> number_arg(const json& args, const char* key) {
  auto it = args.find(key);
  if (it == args.end() || !it->is_number()) return std::nullopt;
  double v = it->get<double>();
  if (!std::isfinite(v) || v < 0) return std::nullopt;
  return v;
}

// A number of seconds, at most kWaitForever: a converted double beyond int64's
// range is undefined, and a time point that far ahead overflows steady_clock.
std::optional<std::chrono::seconds> seconds_arg(const json& args, const char* key) {
  std::optional<double> v = number_arg(args, key);
  if (!v) return std::nullopt;
  if (*v >= static_cast<double>(kWaitForever.count())) return kWaitForever;
  return std::chrono::seconds(static_cast<int64_t>(*v));
}

// ---- mailbox names ----

// Why the directory refuses `name`, in words that tell the operator what to do.
std::string refusal(const Directory& d, const std::string& name, Resolution::Verdict verdict) {
  switch (verdict) {
    case Resolution::Verdict::kNotOurDomain: {
      std::string domains;
      for (const std::string& dom : d.config().domains) domains += (domains.empty() ? "" : ", ") + dom;
      return name + ": not one of our domains ([directory] domains = " +
             (domains.empty() ? "none" : domains) + ")";
    }
    case Resolution::Verdict::kRoutingRefused:
      return name + ": not a mailbox (routing characters or an address literal)";
    case Resolution::Verdict::kUnknownMailbox:
    default: {
      const std::string& file = d.config().mailboxes;
      return "unknown mailbox: " + name + " (" +
             (file.empty() ? std::string("no [directory] mailboxes file is configured")
                           : "not listed in " + file) +
             "; use [directory] recipients = \"any\" or \"verify\" to accept others)";
    }
  }
}

// Resolves every name like a RCPT TO (aliases expand); refuses the whole batch,
// naming every refused name, if any is refused. Deduplicated, in the given order.
Result<std::vector<std::string>> resolve_batch(const Directory& d, const std::vector<std::string>& names) {
  if (names.empty()) return Status::invalid("no mailbox given");
  std::vector<std::string> mailboxes;
  std::unordered_set<std::string> seen;
  std::vector<std::string> refused;
  for (const std::string& name : names) {
    if (!parse_address(name)) {
      refused.push_back("not an address: \"" + name + "\" (expected local@domain)");
      continue;
    }
    Resolution r = d.resolve(std::string_view(name));
    // With recipients = "verify" an unlisted address is the operator's to name:
    // locking it before its first mail arrives is how a batch is prepared.
    const bool named = r.verdict == Resolution::Verdict::kAccept ||
                       r.verdict == Resolution::Verdict::kAskUpstreams;
    if (!named || r.mailboxes.empty()) {
      refused.push_back(refusal(d, name, r.verdict));
      continue;
    }
    for (std::string& m : r.mailboxes) {
      if (seen.insert(m).second) mailboxes.push_back(std::move(m));
    }
  }
  if (refused.empty()) return mailboxes;
  std::string message = refused.front();
  if (refused.size() > 1) {
    message = std::to_string(refused.size()) + " names refused: ";
    for (size_t i = 0; i < refused.size(); ++i) message += (i > 0 ? "; " : "") + refused[i];
  }
  if (names.size() > 1) message += " (nothing changed)";
  return Status::not_found(std::move(message));
}

// show/queue name one mailbox; an alias fanning out to several is ambiguous.
Result<std::string> resolve_one(const Directory& d, const std::string& name) {
  Result<std::vector<std::string>> r = resolve_batch(d, {name});
  if (!r) return r.status();
  if (r->size() > 1) {
    std::string targets;
    for (const std::string& m : *r) targets += (targets.empty() ? "" : ", ") + m;
    return Status::invalid(name + " is an alias of several mailboxes (" + targets + "); name one");
  }
  return r->front();
}

// ---- JSON shapes ----

json message_json(const QueueEntry& e) {
  return json{{"id", e.id},
              {"mailbox", e.mailbox},
              {"sender", e.sender},
              {"size", e.size},
              {"arrival", time_or_null(e.arrival_us)}};
}

json entry_json(const QueueEntry& e) {
  return json{{"id", e.id},
              {"seq", e.seq},
              {"arrival", time_or_null(e.arrival_us)},
              {"sender", e.sender},
              {"recipient", e.recipient.rcpt.empty() ? e.mailbox : e.recipient.rcpt},
              {"size", e.size},
              {"attempts", e.attempts},
              {"last_attempt", time_or_null(e.last_attempt_us)},
              {"next_attempt", time_or_null(e.next_attempt_us)},
              {"last_error", e.last_error},
              {"parked", e.parked}};
}

// Carries out one request for one peer. Each verb of protocol::kVerbs has one
// handler here (kDaemonVerbs, below the class).
class Handler {
 public:
  Handler(const DaemonView& view, const ControlPeer& peer) : view_(view), by_(peer.by()) {}

  // The handler of `command` with `args`; an unknown command is refused.
  net::awaitable<Result<json>> run(const std::string& command, const json& args);

  // ---- the verbs: the request's args -> its result, or a refusal ----

  net::awaitable<Result<json>> status(const json&) {
    DaemonSnapshot s = take_snapshot(view_);
    json by_state{{"old", s.mailboxes_in(MailboxState::kOld)},
                  {"held", s.mailboxes_in(MailboxState::kHeld)},
                  {"migrated", s.mailboxes_in(MailboxState::kMigrated)}};
    if (view_.cluster) {  // the shared states, releasing included (the same count as /metrics)
      by_state = json::object();
      for (size_t i = 0; i < std::size(cluster::kSharedStates); ++i) {
        by_state[std::string(cluster::kSharedStates[i])] = s.cluster.mailboxes[i];
      }
    }
    // Not inside the braced json below: GCC 12 cannot co_await in a braced initializer.
    json cluster = co_await cluster_status();
    const int64_t old_us = s.last_relay_us[static_cast<size_t>(UpstreamKind::kOld)];
    const int64_t new_us = s.last_relay_us[static_cast<size_t>(UpstreamKind::kNew)];
    co_return json{
        {"mailboxes", std::move(by_state)},
        {"queued", {{"messages", s.queued.messages}, {"bytes", s.queued.bytes}}},
        {"held",
         {{"messages", s.held.messages},
          {"bytes", s.held.bytes},
          {"oldest_age_seconds", s.held.messages > 0 ? age_or_null(s.now_us, s.held.oldest_arrival_us)
                                                     : json(nullptr)}}},
        {"parked", s.parked},
        {"deferred", s.deferred},
        {"late", s.late},
        {"in_flight", s.in_flight},
        {"removal_pending", s.removal_pending},
        {"paused", s.paused},
        {"delivered", {{"old", s.relay.delivered_old}, {"new", s.relay.delivered_new}}},
        {"failures", {{"deferred", s.relay.deferred}, {"parked", s.relay.parked}}},
        {"last_relay", {{"old", time_or_null(old_us)}, {"new", time_or_null(new_us)}}},
        {"last_relay_age_seconds", {{"old", age_or_null(s.now_us, old_us)}, {"new", age_or_null(s.now_us, new_us)}}},
        {"forwarded_by_old", s.forwarded_by_old},
        {"last_forwarded_by_old", time_or_null(s.last_forwarded_by_old_us)},
        {"accepted", {{"messages", s.intake.messages_accepted}, {"bytes", s.intake.bytes_accepted}}},
        {"connections_open", s.intake.connections_open},
        {"uptime_seconds", s.age_seconds(s.started_us)},
        {"disk_free", s.spool.disk_free},
        {"min_free_disk", s.min_free_disk},
        {"warn_after_seconds", s.warn_after.count()},
        {"cluster", std::move(cluster)},
    };
  }

  net::awaitable<Result<json>> list(const json& args) {
    std::optional<std::string> only;
    if (auto it = args.find("state"); it != args.end() && !it->is_null()) {
      if (it->is_string()) only = it->get<std::string>();
      const bool known = only && (parse_mailbox_state(*only) || (*only == cluster::kReleasing));
      if (!known) co_return Status::invalid("state must be one of old, held, releasing, migrated");
    }
    const int64_t now = now_unix_micros();
    std::map<std::string, QueueTotals> totals = spool().all_totals();
    json rows = json::array();
    for (const auto& [key, record] : known_mailboxes(view_)) {
      const std::string state = state_name(key, record.state);
      if (only && state != *only) continue;
      auto t = totals.find(key);
      const QueueTotals q = t != totals.end() ? t->second : QueueTotals{};
      rows.push_back(json{{"mailbox", key},
                          {"state", state},
                          {"queued", q.messages},
                          {"bytes", q.bytes},
                          {"parked", q.parked},
                          {"oldest_age_seconds", q.messages > 0 ? age_or_null(now, q.oldest_arrival_us) : json(nullptr)}});
    }
    co_return json{{"mailboxes", std::move(rows)}};
  }

  net::awaitable<Result<json>> show(const json& args) {
    Result<std::string> name = string_arg(args, "mailbox");
    if (!name) co_return name.status();
    Result<std::string> key = resolve_one(*view_.directory(), *name);
    if (!key) co_return key.status();
    const int64_t now = now_unix_micros();
    MailboxRecord r = spool().mailbox(*key);
    QueueTotals q = spool().totals(*key);
    MailboxActivity a = dispatcher().activity(*key);
    json history = json::array();
    for (const StateChange& c : r.history) {
      history.push_back(json{{"at", time_or_null(c.at_us)},
                             {"from", std::string(to_string(c.from))},
                             {"to", std::string(to_string(c.to))},
                             {"by", c.by}});
      if (!c.note.empty()) history.back()["note"] = c.note;
    }
    json result{{"mailbox", *key},
                {"state", state_name(*key, r.state)},
                {"history", std::move(history)},
                {"queued", q.messages},
                {"bytes", q.bytes},
                {"parked", q.parked},
                {"oldest_age_seconds", q.messages > 0 ? age_or_null(now, q.oldest_arrival_us) : json(nullptr)},
                {"in_flight", a.in_flight},
                {"removal_pending", a.removal_pending},
                {"next_attempt", q.messages > 0 && r.state != MailboxState::kHeld
                                     ? time_or_null(a.next_attempt_us) : json(nullptr)},
                {"deliverable_since", time_or_null(r.deliverable_since_us)},
                {"last_delivery", nullptr},
                {"last_error", nullptr},
                {"delivered", r.delivered},
                {"parked_ever", r.parked},
                {"forwarded_by_old", r.forwarded_by_old},
                {"last_forwarded", time_or_null(r.last_forwarded_us)}};
    if (r.last_delivery_us > 0) {
      result["last_delivery"] = json{{"at", time_or_null(r.last_delivery_us)}, {"reply", r.last_delivery}};
    }
    if (r.last_error_us > 0) {
      result["last_error"] = json{{"at", time_or_null(r.last_error_us)}, {"error", r.last_error}};
    }
    if (*key != *name) result["resolved_from"] = *name;
    if (view_.cluster) {
      // The shared history (who changed the state, on which node) and, while the
      // mailbox is releasing, the nodes whose backlog is not done yet.
      json cluster{{"node", view_.cluster->node_name()}, {"history", nullptr}, {"waiting_for", nullptr}};
      auto shared = co_await view_.cluster->history(*key);
      if (shared) {
        json rows = json::array();
        for (const cluster::ClusterHistoryEntry& h : *shared) {
          rows.push_back(json{{"at", h.at}, {"from", h.from}, {"to", h.to}, {"by", h.by}, {"node", h.node}});
        }
        cluster["history"] = std::move(rows);
      } else {
        cluster["error"] = shared.status().message();
      }
      if (view_.cluster->state_of(*key) == cluster::kReleasing) {
        auto waiting = co_await view_.cluster->waiting_nodes(*key);
        if (waiting) cluster["waiting_for"] = *waiting;
      }
      result["cluster"] = std::move(cluster);
    }
    co_return result;
  }

  net::awaitable<Result<json>> queue(const json& args) {
    Result<std::string> name = string_arg(args, "mailbox");
    if (!name) co_return name.status();
    Result<std::string> key = resolve_one(*view_.directory(), *name);
    if (!key) co_return key.status();
    json messages = json::array();
    for (const QueueEntry& e : spool().queue(*key)) messages.push_back(entry_json(e));
    co_return json{{"mailbox", *key},
                {"state", state_name(*key, spool().mailbox(*key).state)},
                {"messages", std::move(messages)}};
  }

  net::awaitable<Result<json>> lock(const json& args) {
    co_return co_await change_and_quiesce(args, MailboxState::kHeld);
  }

  net::awaitable<Result<json>> release(const json& args) {
    Result<std::vector<std::string>> names = string_list(args, "mailboxes");
    if (!names) co_return names.status();
    Result<std::vector<std::string>> mailboxes = resolve_batch(*view_.directory(), *names);
    if (!mailboxes) co_return mailboxes.status();
    const std::string target = upstream_target(view_.config().upstream_new);

    // --verify: only what the new server accepts is released; the rest is listed
    // with its reply and stays as it is.
    json not_released = json::array();
    if (bool_arg(args, "verify")) {
      Result<std::vector<ProbeRow>> probed = co_await probe_upstream(*mailboxes, "new");
      if (!probed) co_return probed.status();
      std::vector<std::string> accepted;
      for (ProbeRow& row : *probed) {
        if (row.result.verdict == ProbeResult::Verdict::kAccepted) {
          accepted.push_back(row.mailbox);
        } else {
          not_released.push_back(row.to_json());
        }
      }
      *mailboxes = std::move(accepted);
    }
    if (bool_arg(args, "dry_run")) {
      Result<json> plan = dry_run(*mailboxes, target);
      if (plan && bool_arg(args, "verify")) (*plan)["not_released"] = std::move(not_released);
      co_return plan;
    }
    if (mailboxes->empty()) {
      co_return json{{"changed", json::array()}, {"unchanged", json::array()}, {"state", "migrated"},
                     {"replay", {{"messages", 0}, {"bytes", 0}}},
                     {"target", target.empty() ? json(nullptr) : json(target)},
                     {"not_released", std::move(not_released)}};
    }

    uint64_t messages = 0, bytes = 0;
    for (const std::string& m : *mailboxes) {
      QueueTotals t = spool().totals(m);
      messages += t.messages;
      bytes += t.bytes;
    }
    // The cap is in place before the state change can let the first message go.
    const double rate = number_arg(args, "rate").value_or(0);
    if (rate > 0) dispatcher().limit_rate(*mailboxes, rate);
    Result<json> result = co_await set_state(*mailboxes, MailboxState::kMigrated);
    if (!result) co_return result;
    (*result)["replay"] = json{{"messages", messages}, {"bytes", bytes}};
    (*result)["target"] = target.empty() ? json(nullptr) : json(target);
    if (target.empty()) {
      (*result)["warning"] = "no [upstream.new] is configured: the mail stays queued";
    }
    if (bool_arg(args, "wait")) {
      const std::chrono::seconds limit = seconds_arg(args, "wait_seconds").value_or(std::chrono::seconds(0));
      const std::chrono::seconds wait = limit.count() >= 1 ? limit : kWaitForever;
      const auto started = std::chrono::steady_clock::now();
      if (view_.cluster) {
        // Every node's backlog first (the mailboxes become migrated), then what
        // this node still has.
        const bool migrated = co_await view_.cluster->wait_migrated(*mailboxes, wait);
        (*result)["state"] = migrated ? "migrated" : "releasing";
      }
      const auto spent = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started);
      SettleReport report = co_await dispatcher().settle(*mailboxes, std::max(std::chrono::seconds(1), wait - spent));
      (*result)["delivered"] = report.delivered;
      (*result)["parked"] = report.parked;
      (*result)["remaining"] = report.remaining;
    }
    if (bool_arg(args, "verify")) (*result)["not_released"] = std::move(not_released);
    co_return result;
  }

  // probe: does the upstream know each mailbox? Nothing changes, nothing is delivered.
  net::awaitable<Result<json>> probe(const json& args) {
    Result<std::vector<std::string>> names = string_list(args, "mailboxes");
    if (!names) co_return names.status();
    Result<std::vector<std::string>> mailboxes = resolve_batch(*view_.directory(), *names);
    if (!mailboxes) co_return mailboxes.status();
    const std::string which = args.contains("upstream") && args["upstream"].is_string()
                                  ? args["upstream"].get<std::string>() : "new";
    Result<std::vector<ProbeRow>> probed = co_await probe_upstream(*mailboxes, which);
    if (!probed) co_return probed.status();
    json rows = json::array();
    size_t accepted = 0;
    for (const ProbeRow& row : *probed) {
      rows.push_back(row.to_json());
      accepted += row.result.verdict == ProbeResult::Verdict::kAccepted;
    }
    const auto& upstream = which == "old" ? view_.config().upstream_old : view_.config().upstream_new;
    co_return json{{"upstream", which},
                   {"target", upstream_target(upstream)},
                   {"mailboxes", std::move(rows)},
                   {"accepted", accepted},
                   {"not_accepted", probed->size() - accepted}};
  }

  // note: a line of text in the mailbox's history.
  net::awaitable<Result<json>> note(const json& args) {
    Result<std::string> name = string_arg(args, "mailbox");
    if (!name) co_return name.status();
    Result<std::string> text = string_arg(args, "text");
    if (!text) co_return text.status();
    if (text->empty() || text->size() > kMaxNote) {
      co_return Status::invalid("the note must be 1 to " + std::to_string(kMaxNote) + " bytes long");
    }
    Result<std::string> key = resolve_one(*view_.directory(), *name);
    if (!key) co_return key.status();
    Status s = co_await spool().add_note(*key, *text, by_);
    if (!s.is_ok()) co_return s;
    spdlog::info("control: {} noted on {}: {}", by_, *key, printable(*text));
    co_return json{{"mailbox", *key}, {"note", *text}};
  }

  // migrate runs in holdctl (it needs the operator's credentials for the copy);
  // the daemon only sees its lock, note, probe and release requests.
  net::awaitable<Result<json>> migrate(const json&) {
    co_return Status::invalid("migrate is run by holdctl itself (lock, copy, release per mailbox), "
                              "not by the daemon: use holdctl migrate");
  }

  net::awaitable<Result<json>> revert(const json& args) {
    co_return co_await change_and_quiesce(args, MailboxState::kOld);
  }

  net::awaitable<Result<json>> retry(const json& args) {
    std::vector<std::string> mailboxes;
    Result<uint64_t> requeued = uint64_t{0};
    if (bool_arg(args, "all")) {
      for (const auto& [key, totals] : spool().all_totals()) mailboxes.push_back(key);
      requeued = co_await spool().requeue(std::nullopt);
    } else {
      Result<std::string> name = string_arg(args, "mailbox");
      if (!name) co_return Status::invalid("retry needs a mailbox or \"all\": true");
      Result<std::vector<std::string>> resolved = resolve_batch(*view_.directory(), {*name});
      if (!resolved) co_return resolved.status();
      mailboxes = *resolved;
      uint64_t sum = 0;
      for (const std::string& m : mailboxes) {
        Result<uint64_t> n = co_await spool().requeue(m);
        if (!n) {
          requeued = n.status();
          break;
        }
        sum += *n;
      }
      if (requeued) requeued = sum;
    }
    if (!requeued) co_return Status::io_error("could not requeue: " + requeued.status().message());
    dispatcher().notify(mailboxes);
    spdlog::info("control: {} requeued {} parked message(s)", by_, *requeued);
    co_return json{{"requeued", *requeued}};
  }

  net::awaitable<Result<json>> drop(const json& args) {
    Result<std::vector<std::string>> ids = string_list(args, "ids");
    if (!ids) co_return ids.status();
    if (ids->empty()) co_return Status::invalid("no message ID given");
    json messages = json::array();
    std::vector<std::string> missing;
    for (const std::string& id : *ids) {
      std::vector<QueueEntry> entries = spool().entries_of(id);
      if (entries.empty()) missing.push_back(id);
      for (const QueueEntry& e : entries) messages.push_back(message_json(e));
    }
    if (!missing.empty()) {
      std::string list;
      for (const std::string& id : missing) list += (list.empty() ? "" : ", ") + id;
      co_return Status::not_found("no queued message with ID " + list +
                                  " (delivered already? see holdctl queue MAILBOX); nothing dropped");
    }
    if (!bool_arg(args, "yes")) co_return json{{"dropped", false}, {"messages", std::move(messages)}};

    Result<std::vector<QueueEntry>> dropped = co_await spool().drop(*ids);
    if (!dropped) co_return Status::io_error("could not drop, nothing dropped: " + dropped.status().message());
    messages = json::array();
    std::set<std::string> mailboxes;
    for (const QueueEntry& e : *dropped) {
      maillog::dropped(e.id, e.mailbox, by_);
      messages.push_back(message_json(e));
      mailboxes.insert(e.mailbox);
    }
    // The head of these mailboxes may have changed.
    dispatcher().notify(std::vector<std::string>(mailboxes.begin(), mailboxes.end()));
    co_return json{{"dropped", true}, {"messages", std::move(messages)}};
  }

  net::awaitable<Result<json>> node(const json& args) {
    if (!view_.cluster) {
      co_return Status::invalid("this holdd is a single node (no [cluster] in " + view_.config().path +
                                "): there are no other nodes");
    }
    const std::string action = args.value("action", "");
    if (action == "list") {
      auto nodes = co_await view_.cluster->nodes();
      if (!nodes) co_return nodes.status();
      co_return json{{"nodes", nodes_json(*nodes)}};
    }
    if (action == "forget") {
      Result<std::string> name = string_arg(args, "node");
      if (!name) co_return name.status();
      Status s = co_await view_.cluster->forget(*name);
      if (!s.is_ok()) co_return s;
      spdlog::info("control: {} forgot node {}", by_, *name);
      co_return json{{"forgotten", *name}};
    }
    co_return Status::invalid("node: the action is list or forget, not \"" + action + "\"");
  }

  net::awaitable<Result<json>> pause(const json&) { co_return set_paused(true); }

  net::awaitable<Result<json>> resume(const json&) { co_return set_paused(false); }

  net::awaitable<Result<json>> check(const json& args) {
    HealthThresholds t;
    if (auto v = seconds_arg(args, "warn_age_seconds")) t.warn_age = *v;
    if (auto v = seconds_arg(args, "crit_age_seconds")) t.crit_age = *v;
    if (auto v = seconds_arg(args, "old_quiet_seconds")) t.old_quiet = *v;
    HealthReport report = evaluate_health(take_snapshot(view_), t);
    co_return json{{"code", report.code}, {"line", report.line}};
  }

 private:
  Spool& spool() { return *view_.spool; }
  Dispatcher& dispatcher() { return *view_.dispatcher; }

  // Sets `to` on the named mailboxes in one transaction, logs each change and
  // wakes the dispatcher. The result lists what changed and what already was `to`.
  net::awaitable<Result<json>> set_state(const std::vector<std::string>& mailboxes, MailboxState to) {
    if (view_.cluster) co_return co_await set_cluster_state(mailboxes, to);
    Result<std::vector<StateTransition>> transitions = co_await spool().set_state(mailboxes, to, by_);
    if (!transitions) {
      co_return Status(Status::io_error("could not record the change, nothing changed: " +
                                        transitions.status().message()));
    }
    json changed = json::array(), unchanged = json::array();
    for (const StateTransition& t : *transitions) {
      if (t.changed()) {
        maillog::state_changed(t.mailbox, t.from, t.to, by_);
        changed.push_back(t.mailbox);
      } else {
        unchanged.push_back(t.mailbox);
      }
    }
    dispatcher().notify(mailboxes);
    spdlog::info("control: {} set {} on {} mailbox(es), {} changed", by_, to_string(to),
                 mailboxes.size(), changed.size());
    co_return json{{"changed", std::move(changed)},
                   {"unchanged", std::move(unchanged)},
                   {"state", std::string(to_string(to))}};
  }

  // With [cluster]: the change goes to PostgreSQL first; every live node applies
  // it (lock, revert: nothing in flight anywhere; release: each node's backlog
  // sealed, the state `releasing` until every node replayed it) before this
  // returns. Refused, with why, while the database cannot be reached.
  net::awaitable<Result<json>> set_cluster_state(const std::vector<std::string>& mailboxes, MailboxState to) {
    const std::string target = to == MailboxState::kMigrated ? std::string(cluster::kReleasing)
                                                               : std::string(to_string(to));
    const std::string by = by_ + " on " + view_.cluster->node_name();  // not a temporary in co_await (GCC 12)
    auto changes = co_await view_.cluster->change_state(mailboxes, target, by);
    if (!changes) co_return changes.status();
    std::set<std::string> changed_set;
    json changed = json::array(), unchanged = json::array();
    for (const cluster::ClusterChange& c : *changes) {
      changed_set.insert(c.mailbox);
      changed.push_back(c.mailbox);
    }
    for (const std::string& m : mailboxes) {
      if (!changed_set.contains(m)) unchanged.push_back(m);
    }
    spdlog::info("control: {} set {} on {} mailbox(es) across the cluster, {} changed", by_, target,
                 mailboxes.size(), changed.size());
    co_return json{{"changed", std::move(changed)}, {"unchanged", std::move(unchanged)}, {"state", target}};
  }

  // The state the operator sees: the shared one with [cluster] (`releasing`
  // included), the spool's otherwise.
  std::string state_name(const std::string& mailbox, MailboxState local) const {
    if (view_.cluster) {
      std::string shared = view_.cluster->state_of(mailbox);
      if (!shared.empty()) return shared;
    }
    return std::string(to_string(local));
  }

  // status: the cluster part (null for a single node).
  net::awaitable<json> cluster_status() {
    if (!view_.cluster) co_return json(nullptr);
    cluster::ClusterNode& c = *view_.cluster;
    json out{{"node", c.node_name()},
             {"database", c.connected() ? "connected" : "unreachable"},
             {"applied_change", c.applied_change()},
             {"releasing_here", c.releasing_here()}};
    if (!c.connected()) out["database_error"] = c.down_reason();
    // Releasing mailboxes and the nodes each one waits for (SPEC: status names them).
    json releasing = json::array();
    for (const auto& [mailbox, state] : c.states()) {
      if (state != cluster::kReleasing) continue;
      auto waiting = co_await c.waiting_nodes(mailbox);
      releasing.push_back(json{{"mailbox", mailbox}, {"waiting_for", waiting ? json(*waiting) : json(nullptr)}});
    }
    out["releasing"] = std::move(releasing);
    auto nodes = co_await c.nodes();
    if (nodes) out["nodes"] = nodes_json(*nodes);
    co_return out;
  }

  json nodes_json(const std::vector<cluster::NodeInfo>& nodes) const {
    json rows = json::array();
    for (const cluster::NodeInfo& n : nodes) {
      rows.push_back(json{{"name", n.name},
                          {"self", n.name == view_.cluster->node_name()},
                          {"alive", n.alive},
                          {"version", n.version},
                          {"started_at", n.started_at},
                          {"last_seen", n.last_seen},
                          {"seen_seconds_ago", static_cast<int64_t>(n.seen_seconds_ago)},
                          {"applied_change", n.applied_change},
                          {"queued", n.queued},
                          {"held", n.held}});
    }
    return rows;
  }

  // lock and revert: set the state, then return only when no relay is in flight
  // for these mailboxes. SPEC for lock: the operator may start copying as soon as
  // it returns. For revert: a message already on its way to the new server lands
  // there before the operator is told the mailbox's mail goes to the old one again.
  net::awaitable<Result<json>> change_and_quiesce(const json& args, MailboxState to) {
    Result<std::vector<std::string>> names = string_list(args, "mailboxes");
    if (!names) co_return names.status();
    Result<std::vector<std::string>> mailboxes = resolve_batch(*view_.directory(), *names);
    if (!mailboxes) co_return mailboxes.status();
    Result<json> result = co_await set_state(*mailboxes, to);
    if (!result) co_return result;
    co_await dispatcher().quiesce(*mailboxes);
    co_return result;
  }

  Result<json> dry_run(const std::vector<std::string>& mailboxes, const std::string& target) {
    json rows = json::array();
    uint64_t messages = 0, bytes = 0;
    for (const std::string& m : mailboxes) {
      uint64_t n = 0, b = 0;
      int64_t first = 0, last = 0;
      for (const QueueEntry& e : spool().queue(m)) {
        ++n;
        b += e.size;
        if (first == 0) first = e.arrival_us;
        last = e.arrival_us;
      }
      messages += n;
      bytes += b;
      rows.push_back(json{{"mailbox", m},
                          {"state", std::string(to_string(spool().mailbox(m).state))},
                          {"messages", n},
                          {"bytes", b},
                          {"first_arrival", time_or_null(first)},
                          {"last_arrival", time_or_null(last)}});
    }
    return json{{"dry_run", true},
                {"target", target.empty() ? json(nullptr) : json(target)},
                {"mailboxes", std::move(rows)},
                {"messages", messages},
                {"bytes", bytes}};
  }

  // One mailbox's probe verdict.
  struct ProbeRow {
    std::string mailbox;
    ProbeResult result;
    json to_json() const {
      return json{{"mailbox", mailbox}, {"result", std::string(to_string(result.verdict))}, {"reply", result.reply}};
    }
  };

  // Asks `which` upstream ("new" or "old") about each mailbox on one connection
  // (SPEC: as for a delivery, same TLS rules; nothing is delivered).
  net::awaitable<Result<std::vector<ProbeRow>>> probe_upstream(const std::vector<std::string>& mailboxes,
                                                                const std::string& which) {
    if (which != "new" && which != "old") {
      co_return Status::invalid("upstream must be \"new\" or \"old\", not \"" + which + "\"");
    }
    const Config& config = view_.config();
    const std::optional<UpstreamConfig>& upstream = which == "old" ? config.upstream_old : config.upstream_new;
    if (!upstream) co_return Status::invalid("no [upstream." + which + "] is configured: nothing to ask");
    UpstreamClient client(co_await net::this_coro::executor, *upstream, config.server.hostname);
    std::vector<ProbeRow> rows;
    rows.reserve(mailboxes.size());
    for (const std::string& m : mailboxes) {
      // Not `ProbeRow{m, co_await ...}`: GCC 12 destroys temporaries of a braced
      // initializer holding a co_await twice (a double free at exit).
      ProbeResult verdict = co_await client.probe(m);
      rows.push_back(ProbeRow{m, std::move(verdict)});
    }
    co_await client.quit();
    spdlog::info("control: {} probed {} mailbox(es) at upstream {}", by_, rows.size(), which);
    co_return rows;
  }

  // pause and resume.
  Result<json> set_paused(bool pause) {
    if (pause) {
      dispatcher().pause();
    } else {
      dispatcher().resume();
    }
    spdlog::info("control: {} {} relaying", by_, pause ? "paused" : "resumed");
    return json{{"paused", dispatcher().paused()}};
  }

  const DaemonView& view_;
  std::string by_;
};

// The daemon's half of each verb of protocol::kVerbs.
struct DaemonVerb {
  std::string_view name;
  net::awaitable<Result<json>> (Handler::*handle)(const json& args);
};

constexpr DaemonVerb kDaemonVerbs[] = {
    {"status", &Handler::status},
    {"list", &Handler::list},
    {"show", &Handler::show},
    {"queue", &Handler::queue},
    {"lock", &Handler::lock},
    {"release", &Handler::release},
    {"revert", &Handler::revert},
    {"retry", &Handler::retry},
    {"drop", &Handler::drop},
    {"pause", &Handler::pause},
    {"resume", &Handler::resume},
    {"check", &Handler::check},
    {"probe", &Handler::probe},
    {"migrate", &Handler::migrate},
    {"note", &Handler::note},
    {"node", &Handler::node},
};
static_assert(protocol::names_every_verb(kDaemonVerbs),
              "one handler for each verb of control/verbs.h, in its order");

net::awaitable<Result<json>> Handler::run(const std::string& command, const json& args) {
  // Every message answered 250 must show: commit the spool's journaled puts. A
  // stalled disk must not stall the monitoring check: after 2 s, answer from
  // the last commit.
  if (view_.spool != nullptr) {
    Status synced = co_await spool().sync(std::chrono::seconds(2));
    if (!synced.is_ok()) {
      spdlog::warn("control: {}: answering from the spool's last commit", synced.to_string());
    }
  }
  for (const DaemonVerb& verb : kDaemonVerbs) {
    if (verb.name == command) co_return co_await (this->*verb.handle)(args);
  }
  co_return Status::invalid("unknown command \"" + command + "\"");
}

}  // namespace

std::vector<std::string_view> ControlCommands::verbs() {
  std::vector<std::string_view> names;
  for (const DaemonVerb& verb : kDaemonVerbs) names.push_back(verb.name);
  return names;
}

std::string ControlPeer::by() const {
  return "holdctl uid=" + std::to_string(uid) + " pid=" + std::to_string(pid);
}

net::awaitable<json> ControlCommands::execute(const json& request, const ControlPeer& peer) {
  auto command = request.find("command");
  if (command == request.end() || !command->is_string()) {
    co_return protocol::error_response("malformed request: no \"command\"");
  }
  Handler handler(view_, peer);
  Result<json> result = co_await handler.run(command->get<std::string>(), args_of(request));
  if (!result) co_return protocol::error_response(result.status().message());
  co_return protocol::ok_response(std::move(*result));
}

}  // namespace holdd
