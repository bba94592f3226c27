"""/metrics serves the Prometheus text format with the documented metric names; the
Prometheus project's own parser reads it, and the values match a known run and
`holdctl --json status`."""
import json
import os
import re
import time
import urllib.request
from pathlib import Path

from helpers import make_message

NAMES = ["holdd_connections_total", "holdd_connections_refused_total", "holdd_smtp_replies_total",
         "holdd_messages_accepted_total", "holdd_bytes_accepted_total", "holdd_relayed_total",
         "holdd_relayed_bytes_total", "holdd_deferred_total", "holdd_parked_total",
         "holdd_queued_messages", "holdd_queued_bytes", "holdd_held_messages", "holdd_held_bytes",
         "holdd_held_oldest_age_seconds", "holdd_parked_messages", "holdd_mailboxes",
         "holdd_connections_open", "holdd_relay_in_flight", "holdd_relay_removals_pending",
         "holdd_paused",
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
    # The Grafana dashboard in conf/ only queries series that exist.
    dashboard = json.loads((Path(os.environ.get("HOLDD_SOURCE_DIR", Path(__file__).resolve().parents[2]))
                            / "conf/grafana-holdd.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = set(re.findall(r"\bholdd_[a-z_]+", " ".join(exprs)))
    samples = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line.startswith("holdd_")}
    # holdd_cluster_* exist only with [cluster]: test_cluster.py checks those panels.
    single_node = {n for n in used if not n.startswith("holdd_cluster_")}
    assert single_node and not single_node - samples, sorted(single_node - samples)
    assert not [n for n in samples if n.startswith("holdd_cluster_")]


# --- with the Prometheus project's own parser (Debian python3-prometheus-client) ---

def parse(text):
    """{(sample name, frozenset of labels): value} and {family name: type}. The
    parser raises on anything that is not valid text exposition format."""
    from prometheus_client.parser import text_string_to_metric_families
    samples, types = {}, {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = s.value
    return samples, types


def get(samples, name, **labels):
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no sample {name}{labels or ''}"
    return samples[key]


def test_metrics_parse_and_agree_with_a_known_run_and_with_status(holdd):
    holdd.ctl_json("lock", "anna@example.com", "carol@example.com")
    for n, rcpt in enumerate(["anna@example.com", "carol@example.com"]):
        holdd.send("a@sender.test", [rcpt], make_message(n))
    before, types = parse(scrape(holdd))
    # The parser drops _total from counter family names.
    assert types["holdd_messages_accepted"] == "counter"
    assert types["holdd_relayed"] == "counter"
    assert types["holdd_held_messages"] == "gauge"
    assert types["holdd_mailboxes"] == "gauge"
    assert types["holdd_intake_latency_seconds"] == "histogram"
    assert get(before, "holdd_messages_accepted_total") == 2
    assert get(before, "holdd_held_messages") == 2
    assert get(before, "holdd_relayed_total", upstream="new") == 0
    assert get(before, "holdd_mailboxes", state="held") == 2

    result = holdd.ctl_json("release", "anna@example.com", "--wait")
    assert result["delivered"] == 1, result
    after, _ = parse(scrape(holdd))
    status = holdd.status()

    # Counters of the known run.
    assert get(after, "holdd_messages_accepted_total") == 2
    assert get(after, "holdd_relayed_total", upstream="new") == 1 > get(before, "holdd_relayed_total", upstream="new")
    assert get(after, "holdd_relayed_total", upstream="old") == 0
    assert get(after, "holdd_relayed_bytes_total", upstream="new") > 0
    assert get(after, "holdd_parked_total") == 0 and get(after, "holdd_deferred_total") == 0
    assert get(after, "holdd_connections_total") >= 2
    assert get(after, "holdd_smtp_replies_total", **{"class": "2xx"}) >= 2 * 5  # banner, EHLO, MAIL, RCPT, DATA end
    assert get(after, "holdd_smtp_replies_total", **{"class": "5xx"}) == 0
    assert time.time() - 60 < get(after, "holdd_last_relay_timestamp_seconds", upstream="new") <= time.time() + 1
    assert get(after, "holdd_last_relay_timestamp_seconds", upstream="old") == 0

    # Gauges agree with `holdctl --json status`.
    assert get(after, "holdd_messages_accepted_total") == status["accepted"]["messages"]
    assert get(after, "holdd_bytes_accepted_total") == status["accepted"]["bytes"]
    assert get(after, "holdd_relayed_total", upstream="new") == status["delivered"]["new"]
    assert get(after, "holdd_held_messages") == status["held"]["messages"] == 1
    assert get(after, "holdd_held_bytes") == status["held"]["bytes"] > 0
    assert get(after, "holdd_queued_messages") == status["queued"]["messages"] == 1
    assert get(after, "holdd_queued_bytes") == status["queued"]["bytes"]
    assert get(after, "holdd_parked_messages") == status["parked"] == 0
    assert get(after, "holdd_relay_in_flight") == status["in_flight"] == 0
    assert get(after, "holdd_relay_removals_pending") == status["removal_pending"] == 0
    assert get(after, "holdd_paused") == (1 if status["paused"] else 0) == 0
    assert get(after, "holdd_disk_free_bytes") > 0
    for state in ("old", "held", "migrated"):
        assert get(after, "holdd_mailboxes", state=state) == status["mailboxes"][state], state
    assert (get(after, "holdd_mailboxes", state="held"),
            get(after, "holdd_mailboxes", state="migrated")) == (1, 1)
    assert 0 <= get(after, "holdd_held_oldest_age_seconds") <= status["held"]["oldest_age_seconds"] + 1

    # The intake latency histogram: one observation per accepted message.
    buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in after.items()
                      if k[0] == "holdd_intake_latency_seconds_bucket"), key=lambda b: b[0])
    assert len(buckets) >= 5 and buckets[-1][0] == float("inf")
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), f"buckets not cumulative: {buckets}"
    assert counts[-1] == get(after, "holdd_intake_latency_seconds_count") == 2
    assert 0 < get(after, "holdd_intake_latency_seconds_sum") < 60
