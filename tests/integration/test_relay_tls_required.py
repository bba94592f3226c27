"""Relay with `tls = "required"` towards an upstream (issue 4, edge trust): the
real daemon against recording aiosmtpd upstreams that offer STARTTLS (or not) with
certificates from a CA made at test time by the openssl CLI.

- an upstream without STARTTLS: the message stays queued with an error naming
  STARTTLS, and the upstream never sees a MAIL, RCPT or DATA (nothing in plain text);
- a certificate for the configured name (`tls_name`) signed by the CA in `ca_file`:
  delivered, every transaction command inside TLS;
- a certificate for another name, or for the right name from a CA holdd does not
  trust: deferred, never delivered, again nothing sent after the handshake.
"""
import secrets
import subprocess

import pytest

from helpers import make_message, stays, wait_until

UPSTREAM_NAME = "old.upstream.test"
TRANSACTION_VERBS = {"MAIL", "RCPT", "DATA", "BDAT"}


def openssl(*args):
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60,
                   stdin=subprocess.DEVNULL)


def ec_key_args():
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def make_ca(directory, stem, cn):
    key, cert = directory / f"{stem}.key", directory / f"{stem}.crt"
    openssl("req", "-x509", *ec_key_args(), "-subj", f"/CN={cn}", "-days", "2",
            "-keyout", key, "-out", cert,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def make_server_cert(directory, stem, name, ca):
    """A server certificate for DNS name `name` signed by `ca` (cert, key)."""
    key, csr, cert = (directory / f"{stem}.{ext}" for ext in ("key", "csr", "crt"))
    ext = directory / f"{stem}.ext"
    ext.write_text(f"subjectAltName=DNS:{name}\n"
                   "basicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\n")
    openssl("req", *ec_key_args(), "-subj", f"/CN={name}", "-keyout", key, "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
            "-set_serial", secrets.randbits(63), "-days", "2", "-extfile", ext, "-out", cert)
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d, "ca", "holdd test CA")
    stranger_ca = make_ca(d, "stranger-ca", "some other CA")
    return {
        "ca": ca[0],
        "right_name": make_server_cert(d, "right", UPSTREAM_NAME, ca),
        "other_name": make_server_cert(d, "other", "other.upstream.test", ca),
        "unknown_ca": make_server_cert(d, "stranger", UPSTREAM_NAME, stranger_ca),
    }


def start(holdd, pki, sink_cert):
    """The old upstream with tls = "required" (verified against our CA, name
    UPSTREAM_NAME); its sink offers STARTTLS with `sink_cert` unless None."""
    holdd.sink_old.tls = sink_cert
    holdd.sink_old.record_commands = True
    holdd.sink_old.start()
    holdd.sink_new.start()
    holdd.config["upstream"]["old"].update(
        {"tls": "required", "ca_file": str(pki["ca"]), "tls_name": UPSTREAM_NAME})
    holdd.write_config()
    holdd.start()


def verbs(sink, tls=None):
    return [c["verb"] for c in sink.commands() if tls is None or c["tls"] == tls]


def wait_deferred(holdd, mailbox, needle, attempts=2):
    """Waits until the one queued message for `mailbox` was tried `attempts` times
    and its last error contains `needle`; returns it."""
    def check():
        queued = holdd.queue(mailbox)
        if len(queued) == 1 and queued[0]["attempts"] >= attempts \
                and needle in (queued[0]["last_error"] or ""):
            return queued[0]
        return None

    return wait_until(check, 20, what=f"{attempts} deferred attempts naming {needle!r}")


@pytest.mark.holdd(start=False, sinks_up=False)
def test_upstream_without_starttls_gets_nothing_and_the_message_waits(holdd, pki):
    start(holdd, pki, sink_cert=None)
    holdd.send("a@sender.test", ["anna@example.com"], make_message(1))
    entry = wait_deferred(holdd, "anna@example.com", "STARTTLS")
    assert "does not offer STARTTLS (tls = required)" in entry["last_error"], entry
    assert not entry["parked"], entry
    # holdd did talk to it (so the check below can fail), but never began a
    # transaction: no envelope, no content in plain text.
    seen = verbs(holdd.sink_old)
    assert "EHLO" in seen, seen
    assert not TRANSACTION_VERBS & set(seen), seen
    assert holdd.sink_old.entries() == []
    assert "does not offer STARTTLS" in holdd.ctl("queue", "anna@example.com").stdout
    assert "deferred to=<anna@example.com> upstream=old" in holdd.log_text()


@pytest.mark.holdd(start=False, sinks_up=False)
def test_certificate_for_the_name_from_the_configured_ca_is_delivered(holdd, pki):
    start(holdd, pki, sink_cert=pki["right_name"])
    msg = make_message(2)
    holdd.send("a@sender.test", ["anna@example.com"], msg)
    [delivery] = holdd.sink_old.wait_for(1, "anna@example.com")
    assert delivery["data"].endswith(msg)
    holdd.wait_queued("anna@example.com", 0)
    # STARTTLS came in plain text, everything of the transaction inside TLS.
    assert "STARTTLS" in verbs(holdd.sink_old, tls=False)
    assert not TRANSACTION_VERBS & set(verbs(holdd.sink_old, tls=False)), holdd.sink_old.commands()
    assert {"MAIL", "RCPT", "DATA"} <= set(verbs(holdd.sink_old, tls=True)), holdd.sink_old.commands()
    assert "certificate verified" in holdd.log_text()


@pytest.mark.parametrize("cert, needle", [
    ("other_name", "hostname mismatch"),
    ("unknown_ca", "unable to get local issuer certificate"),
])
@pytest.mark.holdd(start=False, sinks_up=False)
def test_certificate_that_does_not_verify_is_deferred_not_delivered(holdd, pki, cert, needle):
    start(holdd, pki, sink_cert=pki[cert])
    holdd.send("a@sender.test", ["anna@example.com"], make_message(3))
    entry = wait_deferred(holdd, "anna@example.com", needle)
    assert "TLS handshake" in entry["last_error"], entry
    assert not entry["parked"], entry
    # The handshake was attempted; no transaction followed it, in TLS or not,
    # and holdd did not fall back to plain text.
    assert "STARTTLS" in verbs(holdd.sink_old), holdd.sink_old.commands()
    assert stays(lambda: not TRANSACTION_VERBS & set(verbs(holdd.sink_old)), 1.5), \
        holdd.sink_old.commands()
    assert holdd.sink_old.entries() == []
    assert "retrying without TLS" not in holdd.log_text()


def ca_garbage(tmp_path):
    bad = tmp_path / "garbage.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    return bad


@pytest.mark.holdd(start=False)
def test_a_ca_file_without_a_certificate_stops_start_and_fails_check_config(holdd, tmp_path):
    """Found with these tests: such a file passed --check-config and then deferred
    every delivery with "cannot load CA file"."""
    bad = ca_garbage(tmp_path)
    holdd.config["upstream"]["old"].update(
        {"tls": "required", "ca_file": str(bad), "tls_name": UPSTREAM_NAME})
    holdd.write_config()
    expected = f"upstream.old.ca_file: cannot load CA file {bad}"
    check = subprocess.run([holdd.bin, "--config", str(holdd.config_path), "--check-config"],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert check.returncode == 1, check.stdout + check.stderr
    assert expected in check.stderr, check.stderr
    run = subprocess.run([holdd.bin, "--config", str(holdd.config_path)],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert run.returncode == 1, run.stdout + run.stderr
    assert expected in run.stdout + run.stderr


def test_sighup_refuses_a_ca_file_without_a_certificate(holdd, tmp_path):
    bad = ca_garbage(tmp_path)
    holdd.config["upstream"]["old"].update(
        {"tls": "required", "ca_file": str(bad), "tls_name": UPSTREAM_NAME})
    holdd.write_config()
    holdd.reload()
    wait_until(lambda: f"reload refused: {holdd.config_path}: upstream.old.ca_file" in holdd.log_text(),
               15, what="the refused reload in the log")
    assert holdd.running
    # The running configuration (tls = "none" to the old upstream) stays.
    holdd.send("a@sender.test", ["anna@example.com"], make_message(4))
    holdd.sink_old.wait_for(1, "anna@example.com")
