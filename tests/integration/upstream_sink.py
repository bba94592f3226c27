#!/usr/bin/python3
"""A recording SMTP or LMTP server (aiosmtpd) that plays the old or new mail server.

Run by the integration fixture as its own process, so that a test can stop it and
start it again on the same port (an upstream that is down). Every transaction that
reaches end of DATA is appended as one JSON line to --log:

  {"n": 1, "time": 1700000000.1, "mail_from": "a@b", "mail_options": [...],
   "rcpts": [{"rcpt": "anna@example.com", "options": [...], "reply": "250 ..."}],
   "data_b64": "..."}

"data_b64" is the content exactly as received, with dot-stuffing undone and the
final "." removed (aiosmtpd's original_content). A recipient whose "reply" starts
with 2 was accepted; anything else was refused (at RCPT, or at DATA).

Refusals come from the JSON file --control, re-read at every command, so a test can
change the sink's behaviour without restarting it:

  {"rcpt":  {"bob@example.com": "550 5.1.1 no such user"},   # at RCPT
   "data":  {"bob@example.com": "451 4.3.0 try later"},      # at end of DATA, per rcpt
   "data_contains": {"X-Reject: yes": "554 5.6.0 refused"},  # at end of DATA, by content
   "rcpt_default": "550 5.1.1 unknown",                       # RCPT of any other address
   "rcpt_delay": 0.05}                                        # seconds before each RCPT reply

In SMTP mode the DATA reply is the first refusal that applies (or 250); in LMTP mode
there is one reply per accepted recipient (RFC 2033), each chosen on its own.

With --tls-cert/--tls-key the sink offers STARTTLS with that certificate. With
--commands every command line is appended to that file as one JSON line, before it
is handled, with whether the session was inside TLS at that moment; a RCPT also
with its argument and how many RCPTs (this one included, all sessions) were
waiting for their reply then:

  {"time": 1700000000.1, "verb": "RCPT", "tls": false, "arg": "TO:<anna@example.com>",
   "in_progress": 3}
"""
import argparse
import asyncio
import base64
import json
import os
import signal
import ssl
import sys
import time

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP


class Recorder:
    def __init__(self, log_path, control_path, lmtp):
        self.log_path = log_path
        self.control_path = control_path
        self.lmtp = lmtp
        self.count = 0

    def control(self):
        try:
            with open(self.control_path, encoding="utf-8") as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        control = self.control()
        if control.get("rcpt_delay"):
            await asyncio.sleep(float(control["rcpt_delay"]))
        reply = control.get("rcpt", {}).get(address, control.get("rcpt_default"))
        if reply:
            self.record(envelope, [{"rcpt": address, "options": rcpt_options,
                                    "reply": reply}], refused_at="rcpt")
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(rcpt_options)
        return "250 2.1.5 Ok"

    def data_reply(self, control, rcpt, content):
        reply = control.get("data", {}).get(rcpt)
        if reply:
            return reply
        for needle, reply in control.get("data_contains", {}).items():
            if needle.encode() in content:
                return reply
        return None

    async def handle_DATA(self, server, session, envelope):
        control = self.control()
        content = envelope.original_content or b""
        rcpts = []
        for rcpt, options in zip(envelope.rcpt_tos, envelope.rcpt_options):
            reply = self.data_reply(control, rcpt, content)
            rcpts.append({"rcpt": rcpt, "options": options,
                          "reply": reply or "250 2.0.0 Ok: delivered"})
        if not self.lmtp:
            refusal = next((r["reply"] for r in rcpts if not r["reply"].startswith("2")), None)
            if refusal:
                for r in rcpts:
                    r["reply"] = refusal
        self.record(envelope, rcpts, content=content)
        if self.lmtp:
            # One reply line per accepted recipient, in RCPT order (RFC 2033 4.2).
            return "\r\n".join(r["reply"] for r in rcpts)
        return rcpts[0]["reply"]

    def record(self, envelope, rcpts, content=b"", refused_at=None):
        self.count += 1
        entry = {"n": self.count, "time": time.time(), "mail_from": envelope.mail_from,
                 "mail_options": envelope.mail_options, "rcpts": rcpts,
                 "data_b64": base64.b64encode(content).decode("ascii")}
        if refused_at:
            entry["refused_at"] = refused_at
        line = json.dumps(entry) + "\n"
        # One write per line, so a reader never sees half an entry except at the end.
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)


def append_line(path, entry):
    # One write per line, so a reader never sees half an entry except at the end.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode("utf-8"))
    finally:
        os.close(fd)


RCPTS_IN_PROGRESS = [0]  # across sessions: RCPTs received and not yet answered


def log_commands(server, path):
    """Wraps every smtp_<VERB> handler aiosmtpd dispatches to (its _smtp_methods
    table, built in its constructor) so that each command is logged first."""
    def wrap(verb, method):
        async def logged(arg):
            entry = {"time": time.time(), "verb": verb, "tls": server._tls_protocol is not None}
            if verb != "RCPT":
                append_line(path, entry)
                return await method(arg)
            RCPTS_IN_PROGRESS[0] += 1
            entry.update(arg=arg, in_progress=RCPTS_IN_PROGRESS[0])
            append_line(path, entry)
            try:
                return await method(arg)
            finally:
                RCPTS_IN_PROGRESS[0] -= 1
        return logged

    server._smtp_methods = {verb: wrap(verb, m) for verb, m in server._smtp_methods.items()}


async def serve(args):
    recorder = Recorder(args.log, args.control, args.lmtp)
    protocol = LMTP if args.lmtp else SMTP

    tls_context = None
    if args.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)

    def factory():
        server = protocol(recorder, hostname=args.name, ident="upstream-sink",
                          data_size_limit=args.data_size_limit, enable_SMTPUTF8=True,
                          decode_data=False, tls_context=tls_context)
        if args.commands:
            log_commands(server, args.commands)
        return server

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host=args.host, port=args.port,
                                      reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.ready:
        with open(args.ready + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(args.ready + ".tmp", args.ready)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--control", required=True)
    p.add_argument("--ready", help="file created once the port is listening")
    p.add_argument("--lmtp", action="store_true")
    p.add_argument("--name", default="upstream.test")
    p.add_argument("--data-size-limit", type=int, default=64 << 20)
    p.add_argument("--tls-cert", help="PEM certificate chain: offer STARTTLS")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument("--commands", help="JSON-lines log of every command received")
    args = p.parse_args()
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
