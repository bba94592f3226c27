"""Inbound STARTTLS (issue 4, item 1; RFC 3207) against the real daemon, with a
self-signed certificate made at test time by the openssl CLI: smtplib and swaks
get TLS, the stored copy's Received: names it, commands pipelined behind STARTTLS
are discarded (CVE-2011-0411), SIGHUP picks up a renewed certificate and refuses a
broken one."""
import hashlib
import re
import shutil
import smtplib
import ssl
import subprocess

import pytest

from helpers import RawSmtp, make_message, split_prepended, wait_until


def make_cert(directory, name, cn="localhost"):
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-subj", f"/CN={cn}", "-days", "1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    return cert, key


def fingerprint_of_file(cert):
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert.read_text())).hexdigest()


def start_with_tls(holdd, tmp_path):
    """Starts holdd with [tls] pointing at a fresh certificate; returns its paths."""
    cert, key = make_cert(tmp_path, "holdd")
    holdd.config["tls"] = {"certificate": str(cert), "private_key": str(key)}
    holdd.write_config()
    holdd.start()
    return cert, key


def no_verify():
    """Opportunistic SMTP clients do not verify; these tests look at the
    certificate themselves."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def served_fingerprint(port):
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as c:
        c.ehlo("client.test")
        c.starttls(context=no_verify())
        der = c.sock.getpeercert(binary_form=True)
        c.quit()
    return hashlib.sha256(der).hexdigest()


@pytest.mark.holdd(start=False)
def test_smtplib_starttls_message_is_stored_with_tls_in_received(holdd, tmp_path):
    start_with_tls(holdd, tmp_path)
    holdd.ctl_json("lock", "anna@example.com")
    msg = make_message(1, sender="tls@sender.test")
    with smtplib.SMTP("127.0.0.1", holdd.smtp_port, timeout=30) as c:
        c.ehlo("client.test")
        assert c.has_extn("starttls")
        code, text = c.starttls(context=no_verify())
        assert (code, text) == (220, b"2.0.0 Ready to start TLS")
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        c.ehlo("client.test")
        assert not c.has_extn("starttls"), "STARTTLS offered again inside TLS"
        c.sendmail("tls@sender.test", ["anna@example.com"], msg)
    queued = holdd.queue("anna@example.com")
    assert [m["sender"] for m in queued] == ["tls@sender.test"]

    result = holdd.ctl_json("release", "anna@example.com", "--wait")
    assert result["delivered"] == 1, result
    [delivery] = holdd.sink_new.deliveries("anna@example.com")
    received = [h for h in split_prepended(delivery["data"], msg)
                if h.lower().startswith(b"received:")]
    assert len(received) == 1, received
    text = received[0].decode()
    assert " with ESMTPS id " in text, text  # RFC 3848
    assert re.search(r"\(using TLSv1\.[23] with cipher [A-Z0-9_-]+\)", text), text
    assert re.search(r"TLS established: TLSv1\.[23] \S+", holdd.log_text())


@pytest.mark.skipif(shutil.which("swaks") is None,
                    reason="swaks STARTTLS test NOT RUN: swaks not found in PATH (Debian "
                           "packages swaks, libnet-ssleay-perl; scripts/install-deps.sh)")
@pytest.mark.holdd(start=False)
def test_swaks_tls_delivers(holdd, tmp_path):
    start_with_tls(holdd, tmp_path)
    holdd.ctl_json("lock", "anna@example.com")
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{holdd.smtp_port}", "--tls",
                        "--to", "anna@example.com", "--from", "swaks@sender.test",
                        "--helo", "client.test", "--header", "Subject: swaks over TLS",
                        "--body", "Hello over TLS.", "--timeout", "20"],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "TLS started" in r.stdout, r.stdout
    assert "queued as" in r.stdout, r.stdout
    assert [m["sender"] for m in holdd.queue("anna@example.com")] == ["swaks@sender.test"]


def test_starttls_not_offered_without_tls_section(holdd):
    with smtplib.SMTP("127.0.0.1", holdd.smtp_port, timeout=15) as c:
        c.ehlo("client.test")
        assert not c.has_extn("starttls")
        code, _ = c.docmd("STARTTLS")
        assert code == 502


@pytest.mark.holdd(start=False)
def test_commands_pipelined_behind_starttls_are_discarded(holdd, tmp_path):
    """CVE-2011-0411: what follows STARTTLS in the same write was sent in plain
    text (a man in the middle could have put it there); it must not run after
    the handshake as if it came over TLS."""
    start_with_tls(holdd, tmp_path)
    with RawSmtp(holdd.smtp_port) as raw:
        assert raw.read_reply()[0] == 220
        assert raw.command("EHLO client.test")[0] == 250
        raw.send(b"STARTTLS\r\nMAIL FROM:<x@y.test>\r\nRCPT TO:<anna@example.com>\r\n")
        code, lines = raw.read_reply()
        assert code == 220, lines
        assert raw.buf == b"", f"plain-text bytes after the 220: {raw.buf!r}"
        raw.sock = no_verify().wrap_socket(raw.sock, server_hostname="localhost")
        # The first reply over TLS is to our command: the injected MAIL did not
        # run, and neither did the greeting survive the handshake.
        code, lines = raw.command("RCPT TO:<anna@example.com>")
        assert (code, lines) == (503, ["503 5.5.1 Error: need MAIL command"])
        code, lines = raw.command("MAIL FROM:<a@sender.test>")
        assert code == 503, lines  # EHLO first (RFC 3207 4.2)
        code, lines = raw.command("EHLO client.test")
        assert code == 250 and not any("STARTTLS" in line for line in lines), lines
        code, lines = raw.command("RCPT TO:<anna@example.com>")
        assert (code, lines) == (503, ["503 5.5.1 Error: need MAIL command"])
        assert raw.command("QUIT")[0] == 221
    assert "pipelined after STARTTLS discarded" in holdd.log_text()
    assert holdd.queue("anna@example.com") == []


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
@pytest.mark.holdd(start=False)
def test_tls_1_1_is_refused(holdd, tmp_path):
    start_with_tls(holdd, tmp_path)
    ctx = no_verify()
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with smtplib.SMTP("127.0.0.1", holdd.smtp_port, timeout=15) as c:
        c.ehlo("client.test")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            c.starttls(context=ctx)
    assert wait_until(lambda: "TLS handshake failed" in holdd.log_text(), 10)


@pytest.mark.holdd(start=False)
def test_sighup_serves_a_renewed_certificate_and_refuses_a_broken_one(holdd, tmp_path):
    cert, key = start_with_tls(holdd, tmp_path)
    first = fingerprint_of_file(cert)
    assert served_fingerprint(holdd.smtp_port) == first

    # A session connected before the reload keeps the certificate it started with.
    early = smtplib.SMTP("127.0.0.1", holdd.smtp_port, timeout=15)
    early.ehlo("client.test")

    # Renewal in place, as certbot does it.
    new_cert, new_key = make_cert(tmp_path, "renewed")
    second = fingerprint_of_file(new_cert)
    assert second != first
    shutil.copyfile(new_key, key)
    shutil.copyfile(new_cert, cert)
    holdd.reload()
    wait_until(lambda: served_fingerprint(holdd.smtp_port) == second, 15,
               what="the renewed certificate served after SIGHUP")
    early.starttls(context=no_verify())
    assert hashlib.sha256(early.sock.getpeercert(binary_form=True)).hexdigest() == first
    early.ehlo("client.test")
    assert early.noop()[0] == 250
    early.quit()

    # A broken certificate is refused; the running one stays.
    cert.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    holdd.reload()
    wait_until(lambda: re.search(r"reload refused: tls\.certificate \S*holdd\.crt",
                                 holdd.log_text()), 15, what="the refused reload in the log")
    assert holdd.running
    assert served_fingerprint(holdd.smtp_port) == second


@pytest.mark.holdd(start=False)
def test_a_bad_certificate_stops_start_and_fails_check_config(holdd, tmp_path):
    cert, key = make_cert(tmp_path, "holdd")
    other_cert, _ = make_cert(tmp_path, "other")
    holdd.config["tls"] = {"certificate": str(other_cert), "private_key": str(key)}
    holdd.write_config()
    check = subprocess.run([holdd.bin, "--config", str(holdd.config_path), "--check-config"],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert check.returncode == 1, check.stdout + check.stderr
    assert f'tls.private_key "{key}" does not belong to tls.certificate "{other_cert}"' \
        in check.stderr, check.stderr
    run = subprocess.run([holdd.bin, "--config", str(holdd.config_path)],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "does not belong to" in run.stdout + run.stderr
