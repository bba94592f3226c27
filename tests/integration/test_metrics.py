"""/metrics serves the Prometheus text format with the documented metric names."""
import urllib.request

from helpers import make_message

NAMES = ["holdd_connections_total", "holdd_connections_refused_total", "holdd_smtp_replies_total",
         "holdd_messages_accepted_total", "holdd_bytes_accepted_total", "holdd_relayed_total",
         "holdd_relayed_bytes_total", "holdd_deferred_total", "holdd_parked_total",
         "holdd_queued_messages", "holdd_queued_bytes", "holdd_held_messages", "holdd_held_bytes",
         "holdd_held_oldest_age_seconds", "holdd_parked_messages", "holdd_mailboxes",
         "holdd_connections_open", "holdd_relay_in_flight", "holdd_paused",
         "holdd_spool_map_used_bytes", "holdd_disk_free_bytes",
         "holdd_last_relay_timestamp_seconds", "holdd_intake_latency_seconds"]


def scrape(holdd):
    with urllib.request.urlopen(f"http://127.0.0.1:{holdd.metrics_port}/metrics", timeout=10) as r:
        assert r.status == 200
        return r.read().decode()


def value(text, sample):
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no sample {sample}")


def test_metrics_has_every_documented_name(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    holdd.send("a@sender.test", ["anna@example.com"], make_message(1))
    text = scrape(holdd)
    missing = [n for n in NAMES if f"# TYPE {n} " not in text]
    assert not missing, missing
    assert value(text, "holdd_messages_accepted_total") == 1
    assert value(text, "holdd_held_messages") == 1
    assert value(text, 'holdd_mailboxes{state="held"}') == 1
    assert "# TYPE holdd_intake_latency_seconds histogram" in text
    assert value(text, "holdd_intake_latency_seconds_count") == 1
