#include "holdd/cli/client_verbs.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "holdd/cli/exit.h"
#include "holdd/cli/migrate.h"
#include "holdd/cli/text_output.h"
#include "holdd/config/units.h"
#include "holdd/protocol/framing.h"
#include "holdd/protocol/verbs.h"

namespace holdd::cli {
namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------- arguments

// MAILBOX... and the addresses of --file F (- for stdin), at least one.
std::vector<std::string> mailboxes_from(const VerbArgs& args) {
  std::vector<std::string> out = args.list("MAILBOX");
  const std::string& file = args.text("--file");
  if (!file.empty()) {
    std::string text;
    if (file == "-") {
      std::ostringstream ss;
      ss << std::cin.rdbuf();
      text = ss.str();
    } else {
      std::ifstream in(file, std::ios::binary);
      if (!in) throw UsageError{"cannot read " + file + ": " + std::strerror(errno)};
      std::ostringstream ss;
      ss << in.rdbuf();
      text = ss.str();
    }
    for (std::string& a : protocol::parse_address_list(text)) out.push_back(std::move(a));
    if (out.empty()) throw UsageError{file + " names no mailbox (one address a line; '#' starts a comment)"};
  }
  if (out.empty()) throw UsageError{"name at least one MAILBOX, or --file F (run with --help for more)"};
  return out;
}

std::chrono::seconds duration_arg(const std::string& option, const std::string& text) {
  std::optional<std::chrono::seconds> d = holdd::parse_duration(text);
  if (!d) throw UsageError{option + ": expected a duration such as 30m, 4h or 2d, got \"" + text + "\""};
  return *d;
}

// ---------------------------------------------------------------- requests

json no_args(const VerbArgs&) { return json::object(); }

json probe_request(const VerbArgs& args) {
  const std::string& upstream = args.text("--upstream");
  return json{{"mailboxes", mailboxes_from(args)}, {"upstream", upstream.empty() ? "new" : upstream}};
}

json note_request(const VerbArgs& args) {
  return json{{"mailbox", args.text("MAILBOX")}, {"text", args.text("TEXT")}};
}

json node_request(const VerbArgs& args) {
  const std::string& action = args.text("ACTION");
  const std::string& node = args.text("NODE");
  if (action == "forget" && node.empty()) throw UsageError{"node forget: name the NODE (holdctl node list shows them)"};
  if (action == "list" && !node.empty()) throw UsageError{"node list takes no NODE"};
  return json{{"action", action}, {"node", node}};
}

// migrate sends requests of its own (run_migrate); this one is never sent.
json no_request(const VerbArgs&) { return json::object(); }

int run_migrate(const VerbArgs& args, const Session& session) {
  migrate::Options o;
  o.mailboxes = mailboxes_from(args);
  o.copy = args.text("--copy");
  if (o.copy.empty()) throw UsageError{"--copy: name the copy command (for example doveadm or imapsync)"};
  const double parallel = args.number("--parallel");
  if (!std::isfinite(parallel) || parallel > 1000) throw UsageError{"--parallel: expected 1 to 1000 copies at once"};
  o.parallel = parallel >= 1 ? static_cast<int>(parallel) : 4;
  o.verify = args.flag("--verify");
  o.rate = args.number("--rate");
  if (!std::isfinite(o.rate)) throw UsageError{"--rate: expected a number of messages a second, such as 50"};
  if (const std::string& t = args.text("--copy-timeout"); !t.empty()) o.copy_timeout = duration_arg("--copy-timeout", t);
  o.log_dir = args.text("--log-dir");
  o.dry_run = args.flag("--dry-run");
  o.json = session.json;
  return migrate::run(o, session.exchange, std::cout, std::cerr);
}

json list_request(const VerbArgs& args) {
  const std::string& state = args.text("--state");
  return state.empty() ? json::object() : json{{"state", state}};
}

json mailbox_request(const VerbArgs& args) { return json{{"mailbox", args.text("MAILBOX")}}; }

json batch_request(const VerbArgs& args) { return json{{"mailboxes", mailboxes_from(args)}}; }

json release_request(const VerbArgs& args) {
  const bool wait = args.flag("--wait");
  const std::string& timeout = args.text("--timeout");
  const double rate = args.number("--rate");
  if (!timeout.empty() && !wait) throw UsageError{"--timeout goes with --wait"};
  // CLI11 takes "inf" and "nan" as numbers; JSON cannot carry them and a cap that
  // silently vanished would replay a whole batch at full speed.
  if (!std::isfinite(rate)) throw UsageError{"--rate: expected a number of messages a second, such as 50"};
  const int64_t wait_seconds = timeout.empty() ? 0 : duration_arg("--timeout", timeout).count();
  return json{{"mailboxes", mailboxes_from(args)},
              {"wait", wait},
              {"rate", rate},
              {"dry_run", args.flag("--dry-run")},
              {"verify", args.flag("--verify")},
              {"wait_seconds", wait_seconds}};
}

json retry_request(const VerbArgs& args) {
  const bool all = args.flag("--all");
  const std::string& mailbox = args.text("MAILBOX");
  if (!all && mailbox.empty()) throw UsageError{"retry: name a MAILBOX, or --all"};
  return all ? json{{"all", true}} : json{{"mailbox", mailbox}};
}

json drop_request(const VerbArgs& args) { return json{{"ids", args.list("ID")}, {"yes", args.flag("--yes")}}; }

json check_request(const VerbArgs& args) {
  // Monitoring-plugin convention: a check that cannot run is UNKNOWN (3), even
  // for a bad threshold, so the monitoring system never reads it as CRITICAL.
  json out = json::object();
  const std::pair<const char*, const char*> thresholds[] = {
      {"warn_age_seconds", "--warn-age"}, {"crit_age_seconds", "--crit-age"}, {"old_quiet_seconds", "--old-quiet"}};
  for (const auto& [key, option] : thresholds) {
    const std::string& text = args.text(option);
    if (text.empty()) continue;
    std::optional<std::chrono::seconds> d = holdd::parse_duration(text);
    if (!d) {
      std::cout << "HOLDD UNKNOWN - invalid duration \"" << text << "\" (use e.g. 30m, 24h, 3d)\n";
      throw ExitNow{kUnreachable};
    }
    out[key] = d->count();
  }
  return out;
}

// ---------------------------------------------------------------- text output

void print_status(const json& r) {
  const json& m = r["mailboxes"];
  const json& held = r["held"];
  std::cout << "mailboxes     old " << num(m["old"]) << ", held " << num(m["held"]);
  if (m.contains("releasing")) std::cout << ", releasing " << num(m["releasing"]);
  std::cout << ", migrated " << num(m["migrated"]) << "\n";
  std::cout << "queued        " << num(r["queued"]["messages"]) << " messages, "
            << human_size(num(r["queued"]["bytes"])) << "\n";
  std::cout << "held          " << num(held["messages"]) << " messages, " << human_size(num(held["bytes"]));
  if (!held["oldest_age_seconds"].is_null()) std::cout << ", oldest " << human_age(held["oldest_age_seconds"]);
  std::cout << "\n";
  std::cout << "parked        " << num(r["parked"]) << (num(r["parked"]) > 0 ? "  (holdctl retry after fixing)" : "")
            << "\n";
  std::cout << "deferred      " << num(r["deferred"]) << "\n";
  std::cout << "in flight     " << num(r["in_flight"]) << "\n";
  std::cout << "relaying      " << (r.value("paused", false) ? "PAUSED (holdctl resume restarts it)" : "running")
            << "\n";
  std::cout << "delivered     old " << num(r["delivered"]["old"]) << ", new " << num(r["delivered"]["new"]) << "\n";
  if (r.contains("failures")) {
    std::cout << "failures      " << num(r["failures"]["deferred"]) << " deferrals, "
              << num(r["failures"]["parked"]) << " parked (since start)\n";
  }
  for (const char* u : {"old", "new"}) {
    std::cout << "last relay    " << u << ": ";
    if (r["last_relay"][u].is_null()) {
      std::cout << "never\n";
    } else {
      std::cout << str(r["last_relay"][u]) << " (" << human_age(r["last_relay_age_seconds"][u]) << " ago)\n";
    }
  }
  std::cout << "accepted      " << num(r["accepted"]["messages"]) << " messages, "
            << human_size(num(r["accepted"]["bytes"])) << "\n";
  if (num(r["forwarded_by_old"]) > 0) {
    std::cout << "forwarded     " << num(r["forwarded_by_old"]) << " by the old server, last "
              << str(r["last_forwarded_by_old"]) << "\n";
  }
  if (const json& c = r.value("cluster", json()); c.is_object()) {
    std::cout << "cluster       node " << str(c["node"]) << ", PostgreSQL " << str(c["database"]);
    if (c.contains("database_error")) std::cout << " (" << str(c["database_error"]) << "; state changes refused)";
    std::cout << "\n";
    for (const json& n : c.value("nodes", json::array())) {
      std::cout << "  node        " << str(n["name"]) << (n.value("alive", false) ? " alive" : " NOT SEEN")
                << ", last seen " << human_age(n["seen_seconds_ago"]) << " ago, " << num(n["queued"])
                << " queued, " << num(n["held"]) << " held\n";
    }
    for (const json& m2 : c.value("releasing", json::array())) {
      std::string waiting;
      for (const json& w : m2.value("waiting_for", json::array())) waiting += (waiting.empty() ? "" : ", ") + str(w);
      std::cout << "  releasing   " << str(m2["mailbox"]) << ": waiting for " << (waiting.empty() ? "-" : waiting)
                << "\n";
    }
  }
  std::cout << "disk free     " << human_size(num(r["disk_free"])) << "\n";
  std::cout << "uptime        " << human_age(r["uptime_seconds"]) << "\n";
}

void print_list(const json& r) {
  Table t({"MAILBOX", "STATE", "QUEUED", "SIZE", "PARKED", "OLDEST"});
  for (const json& m : r["mailboxes"]) {
    t.add({str(m["mailbox"]), str(m["state"]), std::to_string(num(m["queued"])), human_size(num(m["bytes"])),
           std::to_string(num(m["parked"])), human_age(m["oldest_age_seconds"])});
  }
  t.print(std::cout);
}

void print_show(const json& r) {
  std::cout << "mailbox       " << str(r["mailbox"]) << "\n";
  std::cout << "state         " << str(r["state"]);
  if (const json& c = r.value("cluster", json()); c.is_object() && c["waiting_for"].is_array()) {
    std::string waiting;
    for (const json& w : c["waiting_for"]) waiting += (waiting.empty() ? "" : ", ") + str(w);
    std::cout << " (waiting for node" << (c["waiting_for"].size() == 1 ? " " : "s ") << waiting << ")";
  }
  std::cout << "\n";
  std::cout << "queued        " << num(r["queued"]) << " messages, " << human_size(num(r["bytes"]));
  if (!r["oldest_age_seconds"].is_null()) std::cout << ", oldest " << human_age(r["oldest_age_seconds"]);
  std::cout << "\n";
  std::cout << "parked        " << num(r["parked"]) << "\n";
  std::cout << "in flight     " << (r.value("in_flight", false) ? "yes" : "no") << "\n";
  std::cout << "next attempt  " << str(r["next_attempt"]) << "\n";
  std::cout << "delivered     " << num(r["delivered"]) << "\n";
  if (num(r["forwarded_by_old"]) > 0) {
    std::cout << "forwarded     " << num(r["forwarded_by_old"]) << " by the old server, last "
              << str(r["last_forwarded"]) << "\n";
  }
  const json& d = r["last_delivery"];
  std::cout << "last delivery " << (d.is_object() ? str(d["at"]) + "  " + str(d["reply"]) : "-") << "\n";
  const json& e = r["last_error"];
  std::cout << "last error    " << (e.is_object() ? str(e["at"]) + "  " + str(e["error"]) : "-") << "\n";
  std::cout << "history\n";
  if (r["history"].empty()) std::cout << "  (no state change yet)\n";
  // A note (holdctl note, migrate's copy attempts) is a line with no state change.
  Table t({"  AT", "FROM", "TO", "BY", "NOTE"});
  for (const json& h : r["history"]) {
    t.add({"  " + str(h["at"]), str(h["from"]), str(h["to"]), str(h["by"]), str(h.value("note", json()), "")});
  }
  if (!r["history"].empty()) t.print(std::cout);
  if (const json& c = r.value("cluster", json()); c.is_object() && c["history"].is_array()) {
    std::cout << "cluster history (PostgreSQL)\n";
    Table h({"  AT", "FROM", "TO", "BY", "NODE"});
    for (const json& entry : c["history"]) {
      h.add({"  " + str(entry["at"]), str(entry["from"]), str(entry["to"]), str(entry["by"]), str(entry["node"])});
    }
    h.print(std::cout);
  }
}

void print_queue(const json& r) {
  std::cout << str(r["mailbox"]) << " (" << str(r["state"]) << "): " << r["messages"].size() << " messages\n";
  Table t({"ID", "ARRIVAL", "SENDER", "SIZE", "ATTEMPTS", "LAST ERROR"});
  for (const json& m : r["messages"]) {
    std::string error = str(m["last_error"], "");
    if (m.value("parked", false)) error = "PARKED: " + error;
    t.add({str(m["id"]), str(m["arrival"]), sender_text(m["sender"]), human_size(num(m["size"])),
           std::to_string(num(m["attempts"])), error});
  }
  t.print(std::cout);
}

void print_changes(const json& r) {
  const std::string state = str(r["state"]);
  for (const json& m : r["changed"]) std::cout << state << ": " << str(m) << "\n";
  for (const json& m : r["unchanged"]) std::cout << state << ": " << str(m) << " (already)\n";
}

void print_dry_run(const json& r) {
  std::cout << "dry run, nothing changed. Would replay to "
            << (r["target"].is_null() ? std::string("(no [upstream.new] configured)") : str(r["target"])) << ":\n";
  Table t({"MAILBOX", "MESSAGES", "SIZE", "FIRST ARRIVAL", "LAST ARRIVAL"});
  for (const json& m : r["mailboxes"]) {
    t.add({str(m["mailbox"]), std::to_string(num(m["messages"])), human_size(num(m["bytes"])),
           str(m["first_arrival"]), str(m["last_arrival"])});
  }
  t.print(std::cout);
  std::cout << "total: " << num(r["messages"]) << " messages, " << human_size(num(r["bytes"])) << " ("
            << num(r["bytes"]) << " bytes) in " << r["mailboxes"].size() << " mailbox(es)\n";
}

void print_release(const json& r) {
  if (r.value("dry_run", false)) return print_dry_run(r);
  print_changes(r);
  std::cout << "replay: " << num(r["replay"]["messages"]) << " messages, " << human_size(num(r["replay"]["bytes"]))
            << " to " << (r["target"].is_null() ? std::string("(none)") : str(r["target"])) << "\n";
  if (r.contains("warning")) std::cerr << "holdctl: warning: " << str(r["warning"]) << "\n";
  if (r.contains("delivered")) {
    std::cout << "delivered " << num(r["delivered"]) << ", parked " << num(r["parked"]) << ", remaining "
              << num(r["remaining"]) << "\n";
    if (num(r["remaining"]) > 0) {
      std::cerr << "holdctl: stopped waiting with " << num(r["remaining"])
                << " message(s) not yet delivered (the release stands; holdctl show MAILBOX tells why)\n";
    }
    if (num(r["parked"]) > 0) {
      std::cerr << "holdctl: some messages were parked (5xx from the new server): see holdctl queue MAILBOX, "
                   "then holdctl retry\n";
    }
  }
}

// The mailboxes an upstream did not accept, one a line with its reply.
void print_not_accepted(const json& rows, const char* what) {
  for (const json& m : rows) {
    std::cout << str(m["mailbox"]) << "  " << str(m["result"]) << "  " << str(m["reply"], "") << "\n";
  }
  if (!rows.empty()) {
    std::cerr << "holdctl: " << rows.size() << " mailbox(es) " << what
              << " (see above: the new server's reply; fix it there, then run the same command again)\n";
  }
}

void print_release_checked(const json& r) {
  print_release(r);
  if (r.contains("not_released")) print_not_accepted(r["not_released"], "not accepted by the new server, not released");
}

void print_probe(const json& r) {
  Table t({"MAILBOX", "RESULT", "REPLY"});
  for (const json& m : r["mailboxes"]) t.add({str(m["mailbox"]), str(m["result"]), str(m["reply"], "")});
  std::cout << "asked " << str(r["upstream"]) << " (" << str(r["target"]) << "):\n";
  t.print(std::cout);
}

// probe: 0 only when the upstream accepted every mailbox.
int probe_exit(const json& r) {
  for (const json& m : r.value("mailboxes", json::array())) {
    if (m.value("result", "") != "accepted") return kRefused;
  }
  return kOk;
}

// release --verify: 1 when the new server did not accept some mailbox.
int release_exit(const json& r) {
  return r.contains("not_released") && !r["not_released"].empty() ? kRefused : kOk;
}

void print_note(const json& r) { std::cout << "noted in the history of " << str(r["mailbox"]) << "\n"; }

void print_node(const json& r) {
  if (r.contains("forgotten")) {
    std::cout << "forgot node " << str(r["forgotten"]) << "\n";
    return;
  }
  Table t({"NODE", "ALIVE", "LAST SEEN", "VERSION", "QUEUED", "HELD", "APPLIED"});
  for (const json& n : r["nodes"]) {
    t.add({str(n["name"]) + (n.value("self", false) ? " (this)" : ""), n.value("alive", false) ? "yes" : "NO",
           str(n["last_seen"]) + " (" + human_age(n["seen_seconds_ago"]) + " ago)", str(n["version"]),
           std::to_string(num(n["queued"])), std::to_string(num(n["held"])), std::to_string(num(n["applied_change"]))});
  }
  t.print(std::cout);
}

void print_nothing(const json&) {}

void print_retry(const json& r) { std::cout << "requeued " << num(r["requeued"]) << " parked message(s)\n"; }

void print_drop(const json& r) {
  const bool dropped = r.value("dropped", false);
  Table t({"ID", "MAILBOX", "SENDER", "SIZE", "ARRIVAL"});
  for (const json& m : r["messages"]) {
    t.add({str(m["id"]), str(m["mailbox"]), sender_text(m["sender"]), human_size(num(m["size"])), str(m["arrival"])});
  }
  std::cout << (dropped ? "dropped:\n" : "would drop:\n");
  t.print(std::cout);
  if (!dropped) std::cout << "re-run with --yes to delete\n";
}

void print_paused(const json&) { std::cout << "relaying paused (intake continues; holdctl resume restarts it)\n"; }

void print_resumed(const json&) { std::cout << "relaying resumed\n"; }

void print_check(const json& r) { std::cout << str(r["line"]) << "\n"; }

constexpr ClientVerb kClientVerbs[] = {
    {"status", no_args, print_status},
    {"list", list_request, print_list},
    {"show", mailbox_request, print_show},
    {"queue", mailbox_request, print_queue},
    {"lock", batch_request, print_changes},
    {"release", release_request, print_release_checked, false, nullptr, release_exit},
    {"revert", batch_request, print_changes},
    {"retry", retry_request, print_retry},
    {"drop", drop_request, print_drop},
    {"pause", no_args, print_paused},
    {"resume", no_args, print_resumed},
    {"check", check_request, print_check, /*monitoring_plugin=*/true},
    {"probe", probe_request, print_probe, false, nullptr, probe_exit},
    {"migrate", no_request, print_nothing, false, run_migrate},
    {"note", note_request, print_note},
    {"node", node_request, print_node},
};
static_assert(protocol::names_every_verb(kClientVerbs),
              "one ClientVerb for each verb of control/verbs.h, in its order");

}  // namespace

std::span<const ClientVerb> client_verbs() { return kClientVerbs; }

const ClientVerb* find_client_verb(std::string_view name) {
  for (const ClientVerb& v : kClientVerbs) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

int exit_code(const ClientVerb& verb, const json& result) {
  if (verb.exit != nullptr) return verb.exit(result);
  if (!verb.monitoring_plugin) return kOk;
  const int code = result.value("code", 3);
  return code >= 0 && code <= 3 ? code : 3;
}

}  // namespace holdd::cli
