#!/usr/bin/python3
"""An SMTP or LMTP upstream for the UpstreamClient tests, built on aiosmtpd.

Every message it accepts is written to OUT/msg-N.data (the content as received,
after dot-unstuffing) and OUT/msg-N.json (envelope, the client's port, TLS), so
the test can compare bytes. Every end of DATA, accepted or not, appends a line to
OUT/attempts.log: "accepted" or "deferred", and the message's Subject. Run with Debian's /usr/bin/python3 (python3-aiosmtpd).
"""
import argparse
import asyncio
import json
import os
import ssl

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP


class Recorder:
    def __init__(self, out, rcpt_reply, data_reply, defer_containing="", defer_times=0):
        self.out = out
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply
        self.defer_containing = defer_containing.encode()
        self.defer_times = defer_times
        self.count = 0

    def attempt(self, envelope, outcome):
        subject = b""
        for line in envelope.original_content.split(b"\r\n"):
            if line.lower().startswith(b"subject:"):
                subject = line[8:].strip()
                break
        with open(os.path.join(self.out, "attempts.log"), "ab") as f:
            f.write(outcome.encode() + b" " + subject + b"\n")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        if (self.defer_containing and self.defer_times > 0
                and self.defer_containing in envelope.original_content):
            self.defer_times -= 1
            self.attempt(envelope, "deferred")
            return "451 4.3.0 try again later"
        self.attempt(envelope, "accepted")
        self.count += 1
        record = {
            "client_port": session.peer[1],
            "tls": session.ssl is not None,
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "rcpt_options": envelope.rcpt_options,
        }
        path = os.path.join(self.out, f"msg-{self.count}")
        with open(path + ".data", "wb") as f:
            f.write(envelope.original_content)
        path += ".json"
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)  # the test never sees a half-written file
        if server.__class__ is LMTP:
            return "250 2.0.0 delivered"
        return f"250 2.0.0 Ok: queued as Q{self.count}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--lmtp", action="store_true")
    p.add_argument("--size", type=int, default=33554432)
    p.add_argument("--smtputf8", action="store_true")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--broken-tls", action="store_true",
                   help="offer STARTTLS but allow only TLS 1.1, which the client refuses")
    p.add_argument("--timeout", type=float, default=300, help="idle timeout, seconds")
    p.add_argument("--rcpt-reply", default="")
    p.add_argument("--data-reply", default="")
    p.add_argument("--defer-containing", default="",
                   help="answer 451 at the end of DATA to content containing this text ...")
    p.add_argument("--defer-times", type=int, default=0, help="... this many times")
    args = p.parse_args()

    handler = Recorder(args.out, args.rcpt_reply, args.data_reply, args.defer_containing,
                       args.defer_times)
    tls = None
    if args.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)
        if args.broken_tls:
            tls.minimum_version = ssl.TLSVersion.TLSv1
            tls.maximum_version = ssl.TLSVersion.TLSv1_1
    cls = LMTP if args.lmtp else SMTP

    def factory():
        return cls(handler, data_size_limit=args.size, enable_SMTPUTF8=args.smtputf8,
                   decode_data=False, tls_context=tls, hostname="peer.test",
                   timeout=args.timeout)

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", args.port))
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
