#!/usr/bin/env python3
"""Writes the hand-made seed corpora in fuzz/corpus/<target>/ (run once; the files
are committed). Each seed is a meaningful input in the target's input format (see
the comment at the top of each *_fuzzer.cpp): an SMTP session, a smuggling attempt,
a real config file, ..."""
import hashlib
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
SEED8 = b"\x01\x05\x02\x10\x03\x07\x0b\x01"  # split pieces 2,6,3,1,4,8,12,2 ...


def write(target, name, data):
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


# smtp_command: 8-byte split seed + wire
sessions = {
    "ehlo_mail_rcpt_data": b"EHLO client.test\r\nMAIL FROM:<a@sender.test> SIZE=100 BODY=8BITMIME\r\n"
                           b"RCPT TO:<anna@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;anna@example.com\r\nDATA\r\n",
    "smtputf8": "MAIL FROM:<jos\u00e9@sender.test> SMTPUTF8\r\nRCPT TO:<\u00fc@example.com>\r\n".encode(),
    "null_sender_dsn": b"HELO x\r\nMAIL FROM:<> RET=HDRS ENVID=abc+2Bdef\r\nRSET\r\nNOOP\r\nQUIT\r\n",
    "bdat": b"BDAT 100\r\nBDAT 0 LAST\r\nBDAT 18446744073709551616 LAST\r\n",
    "source_route": b"RCPT TO:<@a.test,@b.test:user@example.com>\r\nRCPT TO:<\"quoted@x\"@example.com>\r\n",
    "literals": b"RCPT TO:<user@[192.0.2.1]>\r\nRCPT TO:<u@[IPv6:2001:db8::1]>\r\nRCPT TO:<u@[tag:x]>\r\n",
    "percent_hack": b"RCPT TO:<user%other.test@example.com>\r\nRCPT TO:<a!b@example.com>\r\n",
    "bad_syntax": b"MAIL FROM:anna@example.com\r\nRCPT TO:<<a@b>>\r\nMAIL FROM:<a@b> SIZE=x\r\nFOO\r\n\r\n",
    "bare_newlines": b"NOOP\nRSET\rQUIT\r\nVRFY anna\r\n",
    "starttls_injection": b"STARTTLS\r\nRSET\r\nMAIL FROM:<a@b.test>\r\n",
    "long_line": b"NOOP " + b"x" * 1100 + b"\r\nQUIT\r\n",
    "misc_verbs": b"HELP\r\nEXPN list\r\nAUTH PLAIN\r\nVRFY <anna@example.com>\r\nDATA x\r\n",
}
for name, wire in sessions.items():
    write("smtp_command", name, SEED8 + wire)

# data_reader / bdat_reader: size selector + 8-byte seed + wire
data_cases = {
    "simple": b"Subject: x\r\n\r\nhello\r\n.\r\n",
    "dot_stuffed": b"..leading\r\n...\r\n.\r\n",
    "lf_dot_lf": b"a\n.\nb\r\n.\r\n",
    "lf_dot_crlf": b"a\n.\r\nb\r\n.\r\n",
    "crlf_dot_lf": b"a\r\n.\nb\r\n.\r\n",
    "cr_dot_cr": b"a\r.\rb\r\n.\r\n",
    "nul_bytes": b"a\x00b\r\n\x00.\r\n.\r\n",
    "immediate_end": b".\r\nMAIL FROM:<x@y>\r\n",
    "pipelined_after": b"x\r\n.\r\nRSET\r\nQUIT\r\n",
    "eight_bit": "caf\u00e9\r\n.\r\n".encode(),
    "unterminated": b"no end here\r\n.\n",
}
for name, wire in data_cases.items():
    write("data_reader", name, b"\x00" + SEED8 + wire)
write("data_reader", "too_big", b"\x88" + SEED8 + b"0123456789abcdef\r\n.\r\n")
for name, wire in {"crlf": b"a\r\nb\r\n", "bare_cr_lf": b"a\rb\nc", "cr_at_end": b"x\r",
                   "nul": b"\x00\r\n\x00", "utf8": "\u00fc\r\n".encode()}.items():
    write("bdat_reader", name, b"\x00" + SEED8 + wire)
write("bdat_reader", "too_big", b"\x84" + SEED8 + b"abcdefgh\r\n")

# config: the shipped files
for f in ("conf/holdd.toml", "conf/dev.toml"):
    p = ROOT / f
    if p.exists():
        write("config", p.name, p.read_bytes())
write("config", "errors.toml", b'[server]\nmax_message_size = "fifty"\nlisten = ["[::1]:x"]\n'
      b'[spool]\nmin_free_disk = -1\n[nope]\nx = 1\n')
write("config", "syntax_error.toml", b'[server\nhostname = "a\n')

# address: flag byte + text
for i, text in enumerate([b"<anna@example.com>", b"<>", b"<@a.test,@b.test:u@example.com> SIZE=1",
                          b'<"a b"@example.com>', b'<"x@y"@example.com>', b"<u@[192.0.2.1]>",
                          b"<u@[IPv6:::1]>", "<\u00fc@b\u00fccher.example>".encode(), b"<a%b@c.test>",
                          b"<a..b@c>", b"<a@b> <", b"  <A@EXAMPLE.COM>  x=y"]):
    write("address", f"path{i}", bytes([i % 4]) + text)
write("address", "bare", b"\x02anna@Example.COM")

# directory: flag, mailboxes NUL aliases NUL queries
write("directory", "basic", b"\x00anna@example.com\nbob@Example.COM # c\n\"Dan S\"@example.org\n\x00"
      b"team@example.com: anna@example.com, bob@example.com\nall@example.com: team@example.com\n\x00"
      b"team@example.com\nANNA@example.com\nall@EXAMPLE.com\nx@other.test\n")
write("directory", "cycle", b"\x00a@example.com\n\x00x@example.com: y@example.com\ny@example.com: x@example.com, a@example.com\n\x00x@example.com\n")
write("directory", "errors", b"\x01not an address\nu@other.test\n\x00bad line\nq@example.com:\n\x00q@example.com\n")

# headers: selector, authserv-id NUL six strings NUL-separated, message
msg = (b"Received: from a\r\n\tby b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
       b"Authentication-Results: mx.example.com; spf=pass\r\n"
       b"Authentication-Results: other.example; dkim=fail\r\n"
       b"authentication-results : MX.EXAMPLE.COM (comment);\r\n\tdkim=pass\r\n"
       b"Message-ID: <1@x>\r\nSubject: hi\r\n\r\nAuthentication-Results: mx.example.com; body\r\n")
write("headers", "forged", b"\xff" + b"mx.example.com\x00helo.test\x00client.name\x00anna@example.com\x00"
      b"TLSv1.3\x00TLS_AES_256_GCM_SHA384\x00reason (x)\x00" + msg)
write("headers", "hostile", b"\x5f" + b"mx.example.com\x00bad\r\nX-Evil: 1\x00(paren\x00\"q\"@x\x00\x00\x00;\x00"
      b"Subject: x\r\n")

# reply_parser
for name, text in {"multi": b"250-first\r\n250-PIPELINING\r\n250 SIZE 100\r\n",
                   "queued": b"250 2.0.0 Ok: queued as X\r\n",
                   "garbage": b"HTTP/1.1 400 Bad\r\n\r\n",
                   "mixed": b"250-a\r\n251 b\r\n",
                   "lmtp": b"250 2.1.5 ok\r\n452 4.2.2 full\r\n550 5.1.1 no\r\n"}.items():
    write("reply_parser", name, text)

# dot_stuffer: chunk byte + content
for name, text in {"dots": b"\x07.\r\n..\r\n.x\r\nend", "bare": b"\x01a\n.\nb\r.\r", "empty": b"\x10"}.items():
    write("dot_stuffer", name, text)
