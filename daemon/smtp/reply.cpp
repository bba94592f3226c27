#include "holdd/smtp/reply.h"

#include <string>

namespace holdd::smtp {
namespace {

Reply make(int code, std::string_view enhanced, std::string text, bool closes = false) {
  return Reply{code, std::string(enhanced), std::move(text), closes};
}

}  // namespace

std::string Reply::to_wire() const {
  std::string out;
  const std::string code_text = std::to_string(code);
  std::string_view rest = text;
  for (;;) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    const bool last = nl == std::string_view::npos;
    out += code_text;
    out += last ? ' ' : '-';
    if (!enhanced.empty()) {
      out += enhanced;
      out += ' ';
    }
    out += line;
    out += "\r\n";
    if (last) break;
    rest.remove_prefix(nl + 1);
  }
  return out;
}

std::string Reply::summary() const {
  std::string wire = to_wire();
  return wire.substr(0, wire.find("\r\n"));
}

Reply Reply::greeting(std::string_view hostname) {
  return make(220, "", std::string(hostname) + " ESMTP holdd");
}
Reply Reply::bye() { return make(221, "2.0.0", "Bye", true); }
Reply Reply::too_many_connections() {
  return make(421, "4.7.0", "Too many connections, try again later", true);
}
Reply Reply::too_many_connections_from_ip() {
  return make(421, "4.7.0", "Too many connections from your address, try again later", true);
}
Reply Reply::too_many_errors(std::string_view hostname) {
  return make(421, "4.7.0", std::string(hostname) + " Error: too many errors", true);
}
Reply Reply::timeout(std::string_view hostname) {
  return make(421, "4.4.2", std::string(hostname) + " Error: timeout exceeded", true);
}
Reply Reply::shutting_down(std::string_view hostname) {
  return make(421, "4.3.2", std::string(hostname) + " Service shutting down, try again later",
              true);
}

Reply Reply::ehlo(std::string_view hostname, uint64_t max_message_size, bool tls_offered) {
  std::string text(hostname);
  text += "\nPIPELINING";
  text += "\nSIZE " + std::to_string(max_message_size);
  if (tls_offered) text += "\nSTARTTLS";
  text += "\n8BITMIME\nSMTPUTF8\nENHANCEDSTATUSCODES\nCHUNKING\nDSN";
  return make(250, "", std::move(text));
}
Reply Reply::helo(std::string_view hostname) { return make(250, "", std::string(hostname)); }

Reply Reply::ok() { return make(250, "2.0.0", "Ok"); }
Reply Reply::sender_ok() { return make(250, "2.1.0", "Ok"); }
Reply Reply::recipient_ok() { return make(250, "2.1.5", "Ok"); }
Reply Reply::start_data() { return make(354, "", "End data with <CR><LF>.<CR><LF>"); }
Reply Reply::queued(std::string_view id) {
  return make(250, "2.0.0", "Ok: queued as " + std::string(id));
}
Reply Reply::chunk_ok(uint64_t octets) {
  return make(250, "2.0.0", "Ok: " + std::to_string(octets) + " octets received");
}
Reply Reply::cannot_vrfy() {
  return make(252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery");
}
Reply Reply::help() {
  return make(214, "2.0.0",
              "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP; see RFC 5321");
}
Reply Reply::ready_to_start_tls() {
  Reply r = make(220, "2.0.0", "Ready to start TLS");
  r.starts_tls = true;
  return r;
}

Reply Reply::syntax(std::string_view text) { return make(501, "5.5.2", std::string(text)); }
Reply Reply::bad_parameter(std::string_view text) {
  return make(501, "5.5.4", std::string(text));
}
Reply Reply::unsupported_parameter(std::string_view p) {
  return make(555, "5.5.4", "Unsupported option: " + std::string(p));
}
Reply Reply::bad_sender(std::string_view why) {
  return make(501, "5.1.7", "Bad sender address syntax: " + std::string(why));
}
Reply Reply::bad_recipient(std::string_view why) {
  return make(501, "5.1.3", "Bad recipient address syntax: " + std::string(why));
}
Reply Reply::needs_smtputf8() {
  return make(553, "5.6.7", "Non-ASCII address requires SMTPUTF8 on MAIL FROM");
}
Reply Reply::unrecognized() { return make(500, "5.5.2", "Error: command not recognized"); }
Reply Reply::line_too_long() { return make(500, "5.5.2", "Error: line too long"); }
Reply Reply::bare_newline() {
  return make(500, "5.5.2", "Error: bare <CR> or <LF> in command; end commands with <CR><LF>");
}
Reply Reply::not_implemented() { return make(502, "5.5.1", "Error: command not implemented"); }
Reply Reply::bad_sequence(std::string_view text) { return make(503, "5.5.1", std::string(text)); }
Reply Reply::no_valid_recipients() { return make(554, "5.5.1", "Error: no valid recipients"); }
Reply Reply::relay_denied(std::string_view rcpt) {
  return make(550, "5.7.1", "<" + std::string(rcpt) + ">: Relay access denied");
}
Reply Reply::unknown_user(std::string_view rcpt) {
  return make(550, "5.1.1",
              "<" + std::string(rcpt) + ">: Recipient address rejected: User unknown");
}
Reply Reply::unverified_recipient(std::string_view rcpt) {
  return make(450, "4.1.1",
              "<" + std::string(rcpt) +
                  ">: Recipient address not verified yet: the mail servers were not asked or did not answer; try again later");
}
Reply Reply::routing_refused(std::string_view rcpt) {
  return make(550, "5.7.1",
              "<" + std::string(rcpt) + ">: Recipient address rejected: source routing refused");
}
Reply Reply::message_too_big() {
  return make(552, "5.3.4", "Error: message size exceeds fixed limit");
}
Reply Reply::too_many_hops() {
  return make(554, "5.4.6", "Error: too many hops (Received: headers), mail loop?");
}

Reply Reply::too_many_recipients() { return make(452, "4.5.3", "Error: too many recipients"); }
Reply Reply::no_storage() { return make(452, "4.3.1", "Insufficient system storage"); }
Reply Reply::local_error() {
  return make(451, "4.3.0", "Error: local error in processing, try again later");
}

Reply reply_for(const Status& s) {
  switch (s.code()) {
    case Status::Code::kNoSpace: return Reply::no_storage();
    default: return Reply::local_error();  // never 5xx: the sender cannot fix our trouble
  }
}

}  // namespace holdd::smtp
