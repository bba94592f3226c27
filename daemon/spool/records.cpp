#include "holdd/spool/records.h"

#include <nlohmann/json.hpp>

namespace holdd {

using nlohmann::json;

// Short keys: a queue entry is written on every attempt, and the status scan at
// open reads them all.

std::string encode(const MessageMeta& m) {
  json j = {{"id", m.id},         {"t", m.arrival_us},       {"s", m.sender},
            {"z", m.size},        {"rz", m.received_size},   {"8", m.eight_bit},
            {"u", m.smtputf8},    {"ret", m.dsn_ret},        {"env", m.dsn_envid},
            {"c", m.client},      {"n", m.refs}};
  return j.dump();
}

std::string encode(const QueueEntry& e) {
  json j = {{"id", e.id},
            {"r", e.recipient.rcpt},
            {"no", e.recipient.notify},
            {"or", e.recipient.orcpt},
            {"s", e.sender},
            {"z", e.size},
            {"t", e.arrival_us},
            {"a", e.attempts},
            {"la", e.last_attempt_us},
            {"na", e.next_attempt_us},
            {"e", e.last_error},
            {"p", e.parked}};
  return j.dump();
}

std::string encode(const MailboxRecord& r) {
  json history = json::array();
  for (const StateChange& c : r.history) {
    history.push_back({{"t", c.at_us},
                       {"f", std::string(to_string(c.from))},
                       {"to", std::string(to_string(c.to))},
                       {"by", c.by}});
  }
  json j = {{"st", std::string(to_string(r.state))},
            {"h", std::move(history)},
            {"ds", r.deliverable_since_us},
            {"ldt", r.last_delivery_us},
            {"ld", r.last_delivery},
            {"let", r.last_error_us},
            {"le", r.last_error},
            {"nd", r.delivered},
            {"np", r.parked}};
  return j.dump();
}

namespace {

template <class T>
void get(const json& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it != j.end() && !it->is_null()) out = it->get<T>();
}

MailboxState state_or_old(const json& j, const char* key) {
  std::string s;
  get(j, key, s);
  return parse_mailbox_state(s).value_or(MailboxState::kOld);
}

}  // namespace

bool decode(std::string_view bytes, MessageMeta& m) {
  json j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return false;
  try {
    get(j, "id", m.id);
    get(j, "t", m.arrival_us);
    get(j, "s", m.sender);
    get(j, "z", m.size);
    get(j, "rz", m.received_size);
    get(j, "8", m.eight_bit);
    get(j, "u", m.smtputf8);
    get(j, "ret", m.dsn_ret);
    get(j, "env", m.dsn_envid);
    get(j, "c", m.client);
    get(j, "n", m.refs);
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

bool decode(std::string_view bytes, QueueEntry& e) {
  json j = json::parse(bytes, nullptr, false);
  if (!j.is_object()) return false;
  try {
    get(j, "id", e.id);
    get(j, "r", e.recipient.rcpt);
    get(j, "no", e.recipient.notify);
    get(j, "or", e.recipient.orcpt);
    get(j, "s", e.sender);
    get(j, "z", e.size);
    get(j, "t", e.arrival_us);
    get(j, "a", e.attempts);
    get(j, "la", e.last_attempt_us);
    get(j, "na", e.next_attempt_us);
    get(j, "e", e.last_error);
    get(j, "p", e.parked);
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

bool decode(std::string_view bytes, MailboxRecord& r) {
  json j = json::parse(bytes, nullptr, false);
  if (!j.is_object()) return false;
  try {
    r.state = state_or_old(j, "st");
    r.history.clear();
    if (auto it = j.find("h"); it != j.end() && it->is_array()) {
      for (const json& c : *it) {
        StateChange change;
        get(c, "t", change.at_us);
        change.from = state_or_old(c, "f");
        change.to = state_or_old(c, "to");
        get(c, "by", change.by);
        r.history.push_back(std::move(change));
      }
    }
    get(j, "ds", r.deliverable_since_us);
    get(j, "ldt", r.last_delivery_us);
    get(j, "ld", r.last_delivery);
    get(j, "let", r.last_error_us);
    get(j, "le", r.last_error);
    get(j, "nd", r.delivered);
    get(j, "np", r.parked);
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

}  // namespace holdd
