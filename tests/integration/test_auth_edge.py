"""Edge trust through the real daemon (issue 4): SPF, DKIM and DMARC results in the
Authentication-Results: header of the copy the upstream receives, and forged
Authentication-Results: fields claiming our authserv-id removed.

libspf2 passes every SPF check for 127.0.0.0/8 and ::1 whatever the record says, so
the SMTP client must not be on loopback. Each test module run creates its own
network namespace with a veth pair: holdd listens on the host side (198.51.100.x,
TEST-NET-2), the client (smtplib, run with `ip netns exec`) sends from the
namespace side. DNS is a dnsmasq started here on 127.0.0.1, authoritative for
*.test from the records given on its command line, forwarding nothing; holdd is
pointed at it with [auth] nameservers. DKIM keys come from opendkim-genkey and
messages are signed with dkimpy (python3-dkim): signer and verifier are both code
nobody on this project wrote. Nothing here talks to an address outside loopback and
the namespace; everything started here is stopped, and the namespace and its veth
pair are deleted, also when a test fails.
"""
import base64
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest

from helpers import SYSTEM_PYTHON, make_message, wait_until

AUTHSERV_ID = "mx.holdd.test"
SELECTOR = "sel1"
SIGNER = "signer.test"

SPF_RECORDS = {
    "pass.test": "v=spf1 ip4:198.51.100.0/24 -all",
    "fail.test": "v=spf1 -all",
    "softfail.test": "v=spf1 ~all",
    # none.test: no record at all
}
DMARC_RECORDS = {
    "pass.test": "v=DMARC1; p=reject",
    SIGNER: "v=DMARC1; p=reject",
    "victim.test": "v=DMARC1; p=reject",
}


def run(*cmd, check=True, timeout=30):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                          timeout=timeout, check=check, stdin=subprocess.DEVNULL)


# --- the network namespace -----------------------------------------------------------

NETNS_PREFIX = "holdd-t-"


def remove_stale_namespaces():
    """Deletes the namespaces of earlier runs whose process is gone (killed by a
    ctest timeout, say). Their veth pairs go with them."""
    listed = run("ip", "netns", "list", check=False).stdout
    for name in re.findall(rf"^({NETNS_PREFIX}(\d+)-[0-9a-f]+)\b", listed, re.M):
        if not os.path.exists(f"/proc/{name[1]}"):
            run("ip", "netns", "del", name[0], check=False)


class Netns:
    """A network namespace joined to the host by a veth pair, each side with one
    address of a /30 out of 198.51.100.0/24 that no interface uses yet (so that
    two runs at once, e.g. the release and the ASan tree, do not collide)."""

    def __init__(self):
        remove_stale_namespaces()
        tag = secrets.token_hex(4)
        self.name = f"{NETNS_PREFIX}{os.getpid()}-{tag}"
        self.host_if = f"hdt{tag}h"  # interface names: at most 15 characters
        self.ns_if = f"hdt{tag}n"
        used = run("ip", "-4", "-o", "addr", "show").stdout
        free = [k for k in range(1, 63)
                if not re.search(rf"\b198\.51\.100\.({4 * k}|{4 * k + 1}|{4 * k + 2}|{4 * k + 3})/",
                                 used)]
        if not free:
            raise RuntimeError("no free /30 in 198.51.100.0/24")
        k = random.choice(free)
        self.host_ip = f"198.51.100.{4 * k + 1}"
        self.ns_ip = f"198.51.100.{4 * k + 2}"
        self.created = False

    def setup(self):
        run("ip", "netns", "add", self.name)
        self.created = True
        run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if,
            "netns", self.name)
        run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        run("ip", "link", "set", self.host_if, "up")
        self.exec("ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
        self.exec("ip", "link", "set", self.ns_if, "up")
        self.exec("ip", "link", "set", "lo", "up")
        # The link is up once the namespace side can reach the host side.
        wait_until(lambda: self.exec("ping", "-c", "1", "-W", "1", self.host_ip,
                                     check=False).returncode == 0
                   if shutil.which("ping") else True, 10, what="the veth link")

    def exec(self, *cmd, check=True, timeout=30, input=None):
        return subprocess.run(["ip", "netns", "exec", self.name, *map(str, cmd)],
                              capture_output=True, text=True, timeout=timeout, check=check,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL)

    def cleanup(self):
        # Deleting either end of a veth pair deletes both; the namespace goes last.
        run("ip", "link", "del", self.host_if, check=False)
        if self.created:
            run("ip", "netns", "del", self.name, check=False)
            self.created = False


@pytest.fixture(scope="module")
def netns():
    if os.geteuid() != 0:
        pytest.skip(f"auth edge tests NOT RUN: need root to create a network namespace and "
                    f"a veth pair; running as uid {os.geteuid()}")
    if shutil.which("ip") is None:
        pytest.skip("auth edge tests NOT RUN: ip not found in PATH (Debian package iproute2; "
                    "scripts/install-deps.sh installs it)")
    ns = Netns()
    try:
        try:
            ns.setup()
        except (subprocess.CalledProcessError, AssertionError) as e:
            detail = getattr(e, "stderr", "") or str(e)
            # Root without CAP_NET_ADMIN (an unprivileged container, say): the
            # machine cannot do it, which is not holdd's failure.
            pytest.skip(f"auth edge tests NOT RUN: this machine cannot set up a network "
                        f"namespace with a veth pair: {detail.strip()}")
        yield ns
    finally:
        ns.cleanup()


# The SMTP client, run inside the namespace: one message with smtplib, the result
# as JSON on stdout (the reply to the end of DATA, or the error).
CLIENT = r"""
import base64, json, smtplib, sys
a = json.load(sys.stdin)
out = {}
try:
    with smtplib.SMTP(a["host"], a["port"], local_hostname=a["helo"], timeout=60) as c:
        out["source"] = c.sock.getsockname()[0]
        c.ehlo(a["helo"])
        code, text = c.mail(a["mail_from"])
        if code != 250:
            raise RuntimeError(f"MAIL: {code} {text!r}")
        for r in a["rcpts"]:
            code, text = c.rcpt(r)
            if code != 250:
                raise RuntimeError(f"RCPT {r}: {code} {text!r}")
        code, text = c.data(base64.b64decode(a["data"]))
        out.update(code=code, text=text.decode(errors="replace"))
except Exception as e:
    out["error"] = repr(e)
print(json.dumps(out))
"""


def send_from_netns(ns, holdd, mail_from, msg, rcpts=("anna@example.com",), helo="client.test"):
    """Sends `msg` from the namespace to holdd; asserts 250 and returns the reply."""
    request = {"host": ns.host_ip, "port": holdd.smtp_port, "helo": helo,
               "mail_from": mail_from, "rcpts": list(rcpts),
               "data": base64.b64encode(msg).decode()}
    r = ns.exec(SYSTEM_PYTHON, "-c", CLIENT, input=json.dumps(request), timeout=90)
    result = json.loads(r.stdout)
    assert "error" not in result, result
    assert result["source"] == ns.ns_ip, result
    assert result["code"] == 250, result
    return result


# --- the DNS server ------------------------------------------------------------------

def free_udp_tcp_port():
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def dns_query(port, name, qtype=16, timeout=0.5):
    """One raw UDP query to 127.0.0.1:port; returns the RCODE, None without answer."""
    qid = random.randrange(65536)
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, ("127.0.0.1", port))
        try:
            answer = s.recv(4096)
        except (socket.timeout, ConnectionRefusedError):
            return None
    if len(answer) < 12 or struct.unpack(">H", answer[:2])[0] != qid:
        return None
    return answer[3] & 0x0F


def txt_option(name, text):
    """dnsmasq --txt-record for `text`, split into character-strings of 200 octets."""
    return f"--txt-record={name}," + ",".join(text[i:i + 200] for i in range(0, len(text), 200))


class Dns:
    def __init__(self, binary, workdir):
        self.binary = binary
        self.dir = workdir
        self.port = free_udp_tcp_port()
        self.proc = None
        self.dkim_key, self.dkim_record = self.make_dkim_key()

    def make_dkim_key(self):
        run("opendkim-genkey", "-b", "2048", "-d", SIGNER, "-s", SELECTOR, "-D", self.dir,
            timeout=120)
        text = (self.dir / f"{SELECTOR}.txt").read_text()
        record = "".join(re.findall(r'"([^"]*)"', text))  # the zone file's strings, joined
        assert record.startswith("v=DKIM1;") and "p=" in record, text
        return (self.dir / f"{SELECTOR}.private").read_bytes(), record

    def start(self):
        records = [txt_option("ready.test", "ready")]
        records += [txt_option(d, t) for d, t in SPF_RECORDS.items()]
        records += [txt_option(f"_dmarc.{d}", t) for d, t in DMARC_RECORDS.items()]
        records.append(txt_option(f"{SELECTOR}._domainkey.{SIGNER}", self.dkim_record))
        cmd = [self.binary, "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
               "--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address=127.0.0.1",
               f"--port={self.port}", "--local=/test/", "--cache-size=0",
               "--log-facility=-", "--log-queries", *records]
        self.log = self.dir / "dnsmasq.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"dnsmasq exited {self.proc.returncode}: "
                                     f"{self.log.read_text(errors='replace')}")
            return dns_query(self.port, "ready.test") == 0

        wait_until(ready, 15, interval=0.1, what="dnsmasq to answer")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def txt(self, name):
        """What dnsmasq serves, for dkimpy's verifier (dnsfunc)."""
        if name.rstrip(".") == f"{SELECTOR}._domainkey.{SIGNER}":
            return self.dkim_record.encode()
        return None


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    dnsmasq = shutil.which("dnsmasq") or next(
        (p for p in ("/usr/sbin/dnsmasq", "/sbin/dnsmasq") if os.access(p, os.X_OK)), None)
    if dnsmasq is None:
        pytest.fail("dnsmasq is not installed (scripts/install-deps.sh installs dnsmasq-base)")
    server = Dns(dnsmasq, tmp_path_factory.mktemp("dns"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


# --- holdd and what the upstream got -------------------------------------------------

def start_holdd(holdd, ns, nameserver, dns_timeout="2s"):
    port = holdd.smtp_port
    holdd.config["server"]["listen"] = [f"127.0.0.1:{port}", f"{ns.host_ip}:{port}"]
    holdd.config["auth"] = {"spf": True, "dkim": True, "dmarc": True,
                            "authserv_id": AUTHSERV_ID, "nameservers": [nameserver],
                            "dns_timeout": dns_timeout}
    holdd.write_config()
    holdd.start()


def header_fields(data):
    """(name, unfolded value) of each header field of a CRLF message, in order."""
    head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
    fields = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1][1] += " " + line.strip()
        else:
            name, _, value = line.partition(":")
            fields.append([name, value.strip()])
    return [tuple(f) for f in fields]


def authserv_id_of(value):
    return re.split(r"[;\s(]", value.strip(), maxsplit=1)[0]


def auth_results(data, authserv_id=None):
    values = [v for n, v in header_fields(data) if n.lower() == "authentication-results"]
    if authserv_id is None:
        return values
    return [v for v in values if authserv_id_of(v).lower() == authserv_id.lower()]


def results_of(value):
    """Our A-R value -> {method: (result, {property: value})}, comments dropped."""
    value = re.sub(r"\([^)]*\)", "", value)
    out = {}
    for part in value.split(";")[1:]:
        words = part.split()
        if not words:
            continue
        method, _, result = words[0].partition("=")
        props = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        out[method] = (result, props)
    return out


def relayed_results(holdd, count=1, rcpt="anna@example.com"):
    """The upstream's copies for `rcpt` (the mailbox is `old`: relayed at once) and,
    for each, the methods of the one A-R with our authserv-id."""
    deliveries = holdd.sink_old.wait_for(count, rcpt)
    out = []
    for d in deliveries:
        ours = auth_results(d["data"], AUTHSERV_ID)
        assert len(ours) == 1, f"expected one A-R of {AUTHSERV_ID}: {ours}\n{d['data']!r}"
        out.append((d, results_of(ours[0])))
    return out


def signed(msg, key):
    import dkim  # python3-dkim (dkimpy)
    sig = dkim.sign(msg, SELECTOR.encode(), SIGNER.encode(), key,
                    canonicalize=(b"relaxed", b"relaxed"))
    return sig + msg


def dkimpy_verifies(data, dns):
    import dkim
    return dkim.verify(data, dnsfunc=lambda name, timeout=5: dns.txt(name.decode()
                                                                      if isinstance(name, bytes)
                                                                      else name))


# --- the tests -----------------------------------------------------------------------

@pytest.mark.parametrize("domain, expected", [
    ("pass.test", "pass"), ("fail.test", "fail"), ("softfail.test", "softfail"),
    ("none.test", "none")])
@pytest.mark.holdd(start=False)
def test_spf_verdict_from_a_non_loopback_client(holdd, netns, dns, domain, expected):
    start_holdd(holdd, netns, f"127.0.0.1:{dns.port}")
    sender = f"user@{domain}"
    send_from_netns(netns, holdd, sender, make_message(1, sender=sender))
    [(delivery, results)] = relayed_results(holdd)
    assert results["spf"] == (expected, {"smtp.mailfrom": sender}), results
    # The client really was the namespace, not loopback.
    received = [v for n, v in header_fields(delivery["data"]) if n.lower() == "received"]
    assert netns.ns_ip in received[0], received


@pytest.mark.parametrize("helo, expected", [("pass.test", "pass"), ("fail.test", "fail")])
@pytest.mark.holdd(start=False)
def test_spf_checks_the_helo_name_for_the_null_sender(holdd, netns, dns, helo, expected):
    """RFC 7208 2.4: a bounce (MAIL FROM:<>) is checked as postmaster@HELO."""
    start_holdd(holdd, netns, f"127.0.0.1:{dns.port}")
    send_from_netns(netns, holdd, "", make_message(1, sender=f"mailer-daemon@{helo}"), helo=helo)
    [(_, results)] = relayed_results(holdd)
    assert results["spf"] == (expected, {"smtp.helo": helo}), results


@pytest.mark.parametrize("dead_server", ["black hole", "closed port"])
@pytest.mark.holdd(start=False)
def test_dns_failure_is_temperror_and_the_message_is_still_accepted(holdd, netns, dead_server):
    port = free_udp_tcp_port()
    hole = None
    if dead_server == "black hole":  # reads nothing, answers nothing: timeouts
        hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        hole.bind(("127.0.0.1", port))
    try:
        start_holdd(holdd, netns, f"127.0.0.1:{port}", dns_timeout="1s")
        began = time.monotonic()
        send_from_netns(netns, holdd, "user@pass.test", make_message(1, sender="user@pass.test"))
        elapsed = time.monotonic() - began
        [(_, results)] = relayed_results(holdd)
    finally:
        if hole is not None:
            hole.close()
    assert results["spf"][0] == "temperror", results
    assert results["spf"][1] == {"smtp.mailfrom": "user@pass.test"}, results
    assert results["dmarc"][0] == "temperror", results
    assert results["dkim"][0] == "none", results
    # Bounded by [auth] dns_timeout (a verification gets twice that), not by the
    # resolver's own retries.
    assert elapsed < 10, elapsed


@pytest.mark.holdd(start=False)
def test_dkim_signed_message_passes_and_one_changed_body_byte_fails(holdd, netns, dns):
    start_holdd(holdd, netns, f"127.0.0.1:{dns.port}")
    sender = f"news@{SIGNER}"
    good = signed(make_message(1, sender=sender, body="Hello from the signer.\r\n"), dns.dkim_key)
    b_tag = re.search(rb"\bb=([A-Za-z0-9+/]{8})", good.replace(b"\r\n ", b"")).group(1).decode()
    # The same signed message with one byte of the body changed.
    tampered = good.replace(b"Hello from", b"Jello from")
    assert tampered != good and dkimpy_verifies(good, dns) and not dkimpy_verifies(tampered, dns)

    send_from_netns(netns, holdd, sender, good)
    send_from_netns(netns, holdd, sender, tampered)
    [(first, ok), (second, bad)] = relayed_results(holdd, 2)
    assert first["data"].endswith(good) and second["data"].endswith(tampered)

    assert ok["dkim"] == ("pass", {"header.d": SIGNER, "header.s": SELECTOR,
                                   "header.b": b_tag}), ok
    assert ok["spf"][0] == "none", ok  # signer.test publishes no SPF record
    assert ok["dmarc"] == ("pass", {"header.from": SIGNER, "policy.dmarc": "reject"}), ok
    # What holdd relays still verifies (only header fields were prepended).
    assert dkimpy_verifies(first["data"], dns)

    assert bad["dkim"][0] == "fail", bad
    assert bad["dkim"][1]["header.d"] == SIGNER, bad
    assert bad["dmarc"] == ("fail", {"header.from": SIGNER, "policy.dmarc": "reject"}), bad


@pytest.mark.holdd(start=False)
def test_dmarc_pass_with_aligned_spf_and_fail_without_alignment_still_delivered(
        holdd, netns, dns):
    start_holdd(holdd, netns, f"127.0.0.1:{dns.port}")
    # SPF passes for pass.test and From: is pass.test: aligned.
    aligned = make_message(1, sender="news@pass.test")
    send_from_netns(netns, holdd, "bounce@pass.test", aligned)
    # SPF passes for pass.test and a DKIM signature of signer.test passes, but
    # From: is victim.test (p=reject): nothing aligns. Recorded, not refused.
    spoof = signed(make_message(2, sender="ceo@victim.test"), dns.dkim_key)
    send_from_netns(netns, holdd, "bounce@pass.test", spoof)

    [(_, a), (d, b)] = relayed_results(holdd, 2)
    assert a["spf"][0] == "pass" and a["dkim"][0] == "none", a
    assert a["dmarc"] == ("pass", {"header.from": "pass.test", "policy.dmarc": "reject"}), a
    assert b["spf"][0] == "pass" and b["dkim"][0] == "pass", b
    assert b["dkim"][1]["header.d"] == SIGNER, b
    assert b["dmarc"] == ("fail", {"header.from": "victim.test", "policy.dmarc": "reject"}), b
    assert d["data"].endswith(spoof)


@pytest.mark.holdd(start=False)
def test_forged_results_with_our_authserv_id_are_removed_others_kept(holdd, netns, dns):
    start_holdd(holdd, netns, f"127.0.0.1:{dns.port}")
    other = "Authentication-Results: relay.other.test; dkim=pass header.d=fail.test"
    forged = [f"Authentication-Results: {AUTHSERV_ID}; spf=pass smtp.mailfrom=user@fail.test",
              f"Authentication-Results: {AUTHSERV_ID.upper()} (folded);\r\n\tdmarc=pass",
              f'Authentication-Results: "{AUTHSERV_ID}"; dkim=pass header.d=fail.test',
              f"authentication-results: (comment) {AUTHSERV_ID} 1; iprev=pass"]
    # Only header fields are ours to judge: the same text in the body stays.
    body = f"Quoted from an earlier message:\r\n{forged[0]}\r\n"
    msg = make_message(1, sender="user@fail.test", extra_headers=[forged[0], other, *forged[1:]],
                       body=body)
    send_from_netns(netns, holdd, "user@fail.test", msg)

    [(delivery, results)] = relayed_results(holdd)  # exactly one A-R of ours
    data = delivery["data"]
    # Ours tells the truth about the forged claims.
    assert results["spf"] == ("fail", {"smtp.mailfrom": "user@fail.test"}), results
    assert results["dkim"][0] == "none" and results["dmarc"][0] == "none", results
    head = data.split(b"\r\n\r\n", 1)[0]
    for f in forged:
        assert f.encode() not in head
    assert data.endswith(body.encode())
    # The other authserv-id's field is kept, byte for byte, and so is the rest of
    # the message: it is the original without the forged fields.
    assert auth_results(data, "relay.other.test") == [other.split(": ", 1)[1]]
    stripped = msg
    for f in forged:
        stripped = stripped.replace(f.encode() + b"\r\n", b"", 1)
    assert data.endswith(stripped), data
    assert len(auth_results(data)) == 2, auth_results(data)
