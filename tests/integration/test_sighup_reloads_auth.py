"""SIGHUP reloads [auth]: messages after the reload carry the verdicts of the new
settings (methods, authserv-id), and a reload with an [auth] that cannot be used is
refused with the old settings kept. The client is on loopback, which libspf2 always
passes, and the nameserver is a closed loopback port: no look-up leaves the machine
(DKIM and DMARC are off here; test_auth_edge.py covers them with a real DNS server)."""
import re

from helpers import make_message, wait_until


def auth_results(data):
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    headers = data.split("\r\n\r\n", 1)[0]
    return [h for h in re.split(r"\r\n(?![ \t])", headers) if h.lower().startswith("authentication-results:")]


def send_and_receive(holdd, n):
    holdd.send(f"s{n}@sender.test", ["bob@example.com"], make_message(n, to="bob@example.com"))
    return holdd.sink_old.wait_for(n)[n - 1]["data"]


def test_auth_settings_apply_to_messages_after_sighup_and_a_bad_one_is_refused(holdd):
    # Start: all methods off, no Authentication-Results at all.
    assert auth_results(send_and_receive(holdd, 1)) == []

    holdd.config["auth"] = {"spf": True, "dkim": False, "dmarc": False,
                            "authserv_id": "edge.reload.test", "nameservers": ["127.0.0.1:9"]}
    holdd.write_config()
    holdd.reload()
    wait_until(lambda: holdd.log_text().count("reload done") == 1, 15, what="reload done")
    results = auth_results(send_and_receive(holdd, 2))
    assert len(results) == 1, results
    assert results[0].startswith("Authentication-Results: edge.reload.test;")
    assert "spf=pass" in results[0]

    # A bad [auth] (nameserver that is not an address) is refused; the running one stays.
    holdd.config["auth"]["nameservers"] = ["not an address"]
    holdd.config["auth"]["authserv_id"] = "other.reload.test"
    holdd.write_config()
    holdd.reload()
    wait_until(lambda: "reload refused" in holdd.log_text(), 15, what="bad reload refused")
    results = auth_results(send_and_receive(holdd, 3))
    assert len(results) == 1 and results[0].startswith("Authentication-Results: edge.reload.test;"), results
    assert holdd.running
