// The codec of records.h: spool records and journaled puts to CBOR and back.
#include "holdd/spool/records.h"

#include <cstdint>
#include <nlohmann/json.hpp>

namespace holdd {

using nlohmann::json;

// Records are CBOR maps (RFC 8949) with short keys: a queue entry is written on
// every attempt, and the status scan at open reads them all. Every text field is a
// CBOR byte string: envelope addresses, HELO names, DSN parameters and upstream
// replies are bytes from the network (an old server's Latin-1 reply, an 8-bit
// HELO), and a record must store whatever came, never fail on it (issue 12). The
// text is escaped only where it is shown (printable()).
//
// Spools written before this format hold JSON text records; they start with '{',
// which no CBOR map does (0xA0-0xBF), and are still read.

namespace {

json bytes(std::string_view s) {
  return json::binary(std::vector<std::uint8_t>(s.begin(), s.end()));
}

std::string serialise(const json& j) {
  std::string out;
  json::to_cbor(j, out);
  return out;
}

json parse(std::string_view in) {
  if (in.empty()) return json(json::value_t::discarded);
  if (in.front() == '{') return json::parse(in, nullptr, /*allow_exceptions=*/false);
  return json::from_cbor(in, /*strict=*/true, /*allow_exceptions=*/false);
}

// A text field: a byte string (this format) or a JSON string (older spools).
void get_text(const json& j, const char* key, std::string& out) {
  auto it = j.find(key);
  if (it == j.end()) return;
  if (it->is_binary()) {
    const auto& b = it->get_binary();
    out.assign(b.begin(), b.end());
  } else if (it->is_string()) {
    out = it->get<std::string>();
  }
}

template <class T>
void get(const json& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it != j.end() && !it->is_null()) out = it->get<T>();
}

MailboxState state_or_old(const json& j, const char* key) {
  std::string s;
  get_text(j, key, s);
  return parse_mailbox_state(s).value_or(MailboxState::kOld);
}

}  // namespace

std::string encode(const MessageMeta& m) {
  json j = {{"id", bytes(m.id)},        {"t", m.arrival_us},      {"s", bytes(m.sender)},
            {"z", m.size},              {"rz", m.received_size},  {"8", m.eight_bit},
            {"u", m.smtputf8},          {"ret", bytes(m.dsn_ret)}, {"env", bytes(m.dsn_envid)},
            {"c", bytes(m.client)},     {"n", m.refs}};
  if (m.forwarded_by_old) j["fo"] = true;
  return serialise(j);
}

std::string encode(const QueueEntry& e) {
  json j = {{"id", bytes(e.id)},
            {"r", bytes(e.recipient.rcpt)},
            {"no", bytes(e.recipient.notify)},
            {"or", bytes(e.recipient.orcpt)},
            {"s", bytes(e.sender)},
            {"z", e.size},
            {"t", e.arrival_us},
            {"a", e.attempts},
            {"la", e.last_attempt_us},
            {"na", e.next_attempt_us},
            {"e", bytes(e.last_error)},
            {"p", e.parked}};
  if (e.forwarded_by_old) j["fo"] = true;
  return serialise(j);
}

std::string encode(const MailboxRecord& r) {
  json history = json::array();
  for (const StateChange& c : r.history) {
    json change = {{"t", c.at_us}, {"f", bytes(to_string(c.from))}, {"to", bytes(to_string(c.to))}, {"by", bytes(c.by)}};
    if (!c.note.empty()) change["n"] = bytes(c.note);
    history.push_back(std::move(change));
  }
  json j = {{"st", bytes(to_string(r.state))},
            {"h", std::move(history)},
            {"ds", r.deliverable_since_us},
            {"ldt", r.last_delivery_us},
            {"ld", bytes(r.last_delivery)},
            {"let", r.last_error_us},
            {"le", bytes(r.last_error)},
            {"nd", r.delivered},
            {"np", r.parked}};
  if (r.forwarded_by_old > 0) {
    j["nf"] = r.forwarded_by_old;
    j["lf"] = r.last_forwarded_us;
  }
  return serialise(j);
}

bool decode(std::string_view in, MessageMeta& m) {
  json j = parse(in);
  if (!j.is_object()) return false;
  try {
    get_text(j, "id", m.id);
    get(j, "t", m.arrival_us);
    get_text(j, "s", m.sender);
    get(j, "z", m.size);
    get(j, "rz", m.received_size);
    get(j, "8", m.eight_bit);
    get(j, "u", m.smtputf8);
    get_text(j, "ret", m.dsn_ret);
    get_text(j, "env", m.dsn_envid);
    get_text(j, "c", m.client);
    get(j, "n", m.refs);
    get(j, "fo", m.forwarded_by_old);
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

bool decode(std::string_view in, QueueEntry& e) {
  json j = parse(in);
  if (!j.is_object()) return false;
  try {
    get_text(j, "id", e.id);
    get_text(j, "r", e.recipient.rcpt);
    get_text(j, "no", e.recipient.notify);
    get_text(j, "or", e.recipient.orcpt);
    get_text(j, "s", e.sender);
    get(j, "z", e.size);
    get(j, "t", e.arrival_us);
    get(j, "a", e.attempts);
    get(j, "la", e.last_attempt_us);
    get(j, "na", e.next_attempt_us);
    get_text(j, "e", e.last_error);
    get(j, "p", e.parked);
    get(j, "fo", e.forwarded_by_old);
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

bool decode(std::string_view in, MailboxRecord& r) {
  json j = parse(in);
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
        get_text(c, "by", change.by);
        get_text(c, "n", change.note);
        r.history.push_back(std::move(change));
      }
    }
    get(j, "ds", r.deliverable_since_us);
    get(j, "ldt", r.last_delivery_us);
    get_text(j, "ld", r.last_delivery);
    get(j, "let", r.last_error_us);
    get_text(j, "le", r.last_error);
    get(j, "nd", r.delivered);
    get(j, "np", r.parked);
    get(j, "nf", r.forwarded_by_old);
    get(j, "lf", r.last_forwarded_us);
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

// The journal's head of a put: a CBOR map whose values are the records' own
// encodings and the mailbox keys, all as byte strings (binary-safe, as above).
// Journals written before that format hold JSON text ('{'), still read.
std::string encode_put(const StoredPut& p) {
  json entries = json::array();
  for (const QueueEntry& e : p.entries) {
    entries.push_back(json::array({bytes(e.mailbox), e.seq, bytes(encode(e))}));
  }
  std::string out;
  json::to_cbor(json{{"m", bytes(encode(p.meta))}, {"e", std::move(entries)}}, out);
  return out;
}

bool decode_put(std::string_view head, StoredPut& p) {
  if (head.empty()) return false;
  json j = head.front() == '{' ? json::parse(head, nullptr, /*allow_exceptions=*/false)
                               : json::from_cbor(head, /*strict=*/true, /*allow_exceptions=*/false);
  auto text = [](const json& v, std::string& out) {
    if (v.is_binary()) {
      out.assign(v.get_binary().begin(), v.get_binary().end());
    } else if (v.is_string()) {
      out = v.get<std::string>();
    } else {
      return false;
    }
    return true;
  };
  if (!j.is_object() || !j.contains("m") || !j.contains("e") || !j["e"].is_array()) return false;
  std::string record;
  if (!text(j["m"], record) || !decode(record, p.meta)) return false;
  for (const json& item : j["e"]) {
    if (!item.is_array() || item.size() != 3 || !item[1].is_number_unsigned()) return false;
    QueueEntry e;
    if (!text(item[2], record) || !decode(record, e) || !text(item[0], e.mailbox)) return false;
    e.seq = item[1].get<uint64_t>();
    p.entries.push_back(std::move(e));
  }
  return true;
}

}  // namespace holdd
