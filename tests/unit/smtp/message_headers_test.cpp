#include "holdd/smtp/message_headers.h"

#include <doctest/doctest.h>

namespace holdd::smtp {
namespace {

TEST_CASE("scan_headers: counts Received: and finds Message-ID: in the header section only") {
  struct Case {
    std::string content;
    uint32_t received;
    bool has_message_id;
  };
  const Case cases[] = {
      {"Subject: x\r\n\r\nbody\r\n", 0, false},
      {"Received: a\r\nreceived: b\r\n\tcontinued\r\nRECEIVED : c\r\n\r\n", 3, false},
      {"Message-ID: <a@b>\r\n\r\n", 0, true},
      {"message-id:<a@b>\r\n\r\n", 0, true},
      {"Subject: x\r\n\r\nMessage-ID: <in@body>\r\nReceived: in body\r\n", 0, false},
      {"Received: x\r\nnot a header line\r\nReceived: y\r\n", 1, false},
      {"", 0, false},
      {"Received: only headers, no body\r\n", 1, false},
      {"X-Message-ID: <a@b>\r\nX-Received: y\r\n\r\n", 0, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.content);
    HeaderSummary s = scan_headers(c.content);
    CHECK(s.received == c.received);
    CHECK(s.has_message_id == c.has_message_id);
  }
}

TEST_CASE("received_header: RFC 5321 4.4 trace field") {
  ReceivedInfo info;
  info.helo = "client.test";
  info.client_ip = "192.0.2.7";
  info.hostname = "mx1.example.com";
  info.queue_id = "0123456789ABCD";
  info.single_rcpt = "anna@example.com";
  info.when = from_unix_micros(1795452564000000);  // 2026-11-23T16:49:24Z
  CHECK(received_header(info) ==
        "Received: from client.test (unknown [192.0.2.7])\r\n"
        "\tby mx1.example.com (holdd) with ESMTP id 0123456789ABCD\r\n"
        "\tfor <anna@example.com>; Mon, 23 Nov 2026 16:49:24 +0000\r\n");

  info.single_rcpt.reset();
  info.esmtp = false;
  info.client_ip = "2001:db8::1";
  info.helo = "evil\r\nX-Injected: (yes)";
  CHECK(received_header(info) ==
        "Received: from evil??X-Injected: ?yes? (unknown [IPv6:2001:db8::1])\r\n"
        "\tby mx1.example.com (holdd) with SMTP id 0123456789ABCD;\r\n"
        "\tMon, 23 Nov 2026 16:49:24 +0000\r\n");

  info.esmtp = true;
  info.tls = TlsInfo{"TLSv1.3", "TLS_AES_256_GCM_SHA384"};
  const std::string tls = received_header(info);
  CHECK(tls.find("\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n") != std::string::npos);
  CHECK(tls.find("with ESMTPS id") != std::string::npos);
}

TEST_CASE("message_id_header") {
  CHECK(message_id_header("0123456789ABCD", from_unix_micros(1795452564000000), "mx1.example.com") ==
        "Message-ID: <0123456789ABCD.1795452564@mx1.example.com>\r\n");
}

}  // namespace
}  // namespace holdd::smtp
