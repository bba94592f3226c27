#!/usr/bin/env python3
"""Turns bench/run.sh's results.jsonl into a table: prints markdown on stdout and
writes PREFIX.md and PREFIX.json.

    bench/report.py RESULTS.jsonl PREFIX
"""
import json
import statistics
import sys
from collections import defaultdict


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt_rate(x):
    return "-" if x is None else f"{x:,.0f}"


def fmt_ratio(a, b):
    return "-" if a is None or b in (None, 0) else f"{a / b:.2f}x"


def fmt_ms(x):
    return "-" if x is None else f"{x:.2f}"


def size_name(n):
    return f"{n // 1024} KiB" if n % 1024 == 0 else f"{n} B"


def main():
    path, prefix = sys.argv[1], sys.argv[2]
    rows = [json.loads(line) for line in open(path) if line.strip()]
    meta = next((r for r in rows if r["kind"] == "meta"), {})
    out = []
    summary = {"meta": meta, "intake": [], "replay": {}, "latency": {}, "idle": None}

    out.append(f"Machine: {meta.get('cores')} cores ({meta.get('cpu')}), spool and Postfix queue on "
               f"{meta.get('disk')}, kernel {meta.get('kernel')}, Postfix {meta.get('postfix')}; "
               f"load average at start {meta.get('load_start')}; {meta.get('started')}.")
    out.append("")

    instances = [r for r in rows if r["kind"] == "holdd_instance"]
    disks = {r["label"]: r for r in rows if r["kind"] == "disk"}
    by_label = {r["label"]: r for r in instances}

    def disk_text(label):
        d = disks.get(label)
        if not d:
            return "-"
        return f"{d['result']['fdatasync_per_s']:,.0f} / {d['result']['lmdb_commit_per_s']:,.0f}"

    if disks:
        out.append("Disk probe (bench/disk.py, one thread, 4 KiB): fdatasync/s / LMDB-style commits/s "
                   "(fdatasync + O_DSYNC meta write): at start " + disk_text("start") +
                   ", at the end " + disk_text("end") + ".")
        out.append("")

    # intake
    cells = defaultdict(lambda: defaultdict(list))
    loads = defaultdict(list)
    for r in rows:
        if r["kind"] == "intake":
            key = (r["size"], r["shape"], r["sessions"])
            cells[key][r["target"]].append(r["rate"])
            loads[key].append(r["load"])
    if cells:
        out.append(f"Intake, messages/s (smtp-source; median of {meta.get('reps')} interleaved runs; "
                   "load = 1-min load average range over the cell's runs)")
        out.append("")
        out.append("| size | messages per connection | sessions | holdd | Postfix (hold) | smtp-sink | "
                   "holdd/Postfix | holdd/smtp-sink | holdd writes per journal append or LMDB commit | disk fdatasync/s / commits/s | load |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
        for key in sorted(cells, key=lambda k: (k[0], k[1] != "conn", k[2])):
            size, shape, sessions = key
            h = median(cells[key].get("holdd", []))
            p = median(cells[key].get("postfix", []))
            s = median(cells[key].get("sink", []))
            lo, hi = min(loads[key]), max(loads[key])
            inst = by_label.get(f"{size}/{shape}/{sessions}")
            per_commit = inst["writes"] / inst["commits"] if inst and inst["commits"] else None
            out.append(f"| {size_name(size)} | {'1' if shape == 'conn' else 'many'} | {sessions} | "
                       f"{fmt_rate(h)} | {fmt_rate(p)} | {fmt_rate(s)} | {fmt_ratio(h, p)} | "
                       f"{fmt_ratio(h, s)} | {'-' if per_commit is None else f'{per_commit:.1f}'} | "
                       f"{disk_text(f'intake {size}/{shape}/{sessions}')} | {lo:.1f}-{hi:.1f} |")
            summary["intake"].append({"size": size, "shape": shape, "sessions": sessions,
                                      "holdd": h, "postfix": p, "sink": s, "writes_per_commit": per_commit,
                                      "disk": disks.get(f"intake {size}/{shape}/{sessions}"),
                                      "runs": {t: v for t, v in cells[key].items()},
                                      "load_min": lo, "load_max": hi})
        out.append("")

    # replay
    titles = {
        "spread": "Replay to smtp-sink, spread over mailboxes",
        "one": "Replay to smtp-sink, one mailbox (arrival order kept)",
        "batch": "Replay to smtp-sink, a batch of many small mailboxes",
        "dovecot": "Replay into a real Dovecot LMTP server",
    }
    names = {
        "holdd": "holdd (`holdctl release --file F --wait`)",
        "postfix": "Postfix (`postsuper -H ALL` until the queue is empty)",
        "smtp-source": "smtp-source -L straight into the same Dovecot, same connections",
    }
    shapes = defaultdict(dict)
    for r in rows:
        if r["kind"] == "replay":
            shapes[r.get("shape", "spread")][r["target"]] = r
    for shape, rep in shapes.items():
        out.append(titles.get(shape, f"Replay ({shape})") + ", end to end")
        out.append("")
        out.append("| target | messages | mailboxes | seconds | messages/s | load |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for t, r in rep.items():
            out.append(f"| {names.get(t, t)} | {r['messages']} | {r['mailboxes']} | {r['seconds']:.1f} | "
                       f"{fmt_rate(r['rate'])} | {r['load']} |")
        summary["replay"][shape] = rep
        other = "smtp-source" if shape == "dovecot" else "postfix"
        if "holdd" in rep and other in rep:
            out.append("")
            label = "holdd/smtp-source into Dovecot" if shape == "dovecot" else "holdd/Postfix replay"
            out.append(f"{label}: {fmt_ratio(rep['holdd']['rate'], rep[other]['rate'])}")
        out.append("")

    # latency
    lat = defaultdict(list)
    lat_load = defaultdict(list)
    sessions = None
    for r in rows:
        if r["kind"] == "latency":
            lat[r["target"]].append(r["result"])
            lat_load[r["target"]].append(r["load"])
            sessions = r["sessions"]
    if lat:
        out.append(f"Intake latency, end of DATA -> 250, {sessions} sessions, 4 KiB, client side "
                   f"(bench/latency.py), ms; median over {len(next(iter(lat.values())))} runs")
        out.append("")
        out.append("| target | p50 | p90 | p99 | p99.9 | max | samples/run | messages/s | load |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for t in ("holdd", "postfix"):
            if t not in lat:
                continue
            rs = lat[t]
            m = {k: median([x[k] for x in rs]) for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "msgs_per_s")}
            summary["latency"][t] = {**m, "runs": rs}
            out.append(f"| {t} | {fmt_ms(m['p50_ms'])} | {fmt_ms(m['p90_ms'])} | {fmt_ms(m['p99_ms'])} | "
                       f"{fmt_ms(m['p999_ms'])} | {fmt_ms(m['max_ms'])} | {rs[0]['samples']} | "
                       f"{fmt_rate(m['msgs_per_s'])} | {min(lat_load[t]):.1f}-{max(lat_load[t]):.1f} |")
        if "holdd" in summary["latency"] and "postfix" in summary["latency"]:
            h, p = summary["latency"]["holdd"], summary["latency"]["postfix"]
            out.append("")
            out.append(f"holdd/Postfix latency: p50 {fmt_ratio(h['p50_ms'], p['p50_ms'])}, "
                       f"p99 {fmt_ratio(h['p99_ms'], p['p99_ms'])}")
        out.append("")

    idle = next((r for r in rows if r["kind"] == "idle"), None)
    end = next((r for r in rows if r["kind"] == "end"), None)
    peaks = {}
    for r in instances:
        peaks[r["phase"]] = max(peaks.get(r["phase"], 0), r["hwm_kib"])
    summary["peak_rss_kib"] = peaks
    if idle or peaks:
        out.append("Memory of holdd")
        out.append("")
        if idle:
            i = idle["result"]
            summary["idle"] = idle
            out.append(f"- {i['opened']} of {i['requested']} idle sessions open (EHLO done), "
                       f"{i['still_open']} still open at the end: RSS {i['rss_idle_kib'] / 1024:.1f} MiB "
                       f"(anon {i['rss_anon_idle_kib'] / 1024:.1f} MiB, file {i['rss_file_idle_kib'] / 1024:.1f} MiB; "
                       f"{i['rss_before_kib'] / 1024:.1f} MiB before); a full 4 KiB transaction meanwhile: "
                       f"median {i['probe_ms_median']} ms, max {i['probe_ms_max']} ms "
                       f"({i['probe_errors']} errors); load {idle['load']}")
        if peaks:
            out.append("- peak RSS (VmHWM) of holdd: " + ", ".join(
                f"{phase} {kib / 1024:.1f} MiB" for phase, kib in peaks.items()) +
                " (intake: the highest of the fresh holdd of each cell)")
        if end:
            out.append(f"- load average at the end: {end['load_end']} ({end['finished']})")
        out.append("")

    text = "\n".join(out)
    print(text)
    with open(prefix + ".md", "w") as f:
        f.write(text + "\n")
    with open(prefix + ".json", "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
