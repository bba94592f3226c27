"""Results of the reliability tests (crash loop, faults, abuse) for
docs/reliability.md: when HOLDD_RESULTS_DIR is set, each test appends one JSON
line per scenario to HOLDD_RESULTS_DIR/results.jsonl; scripts/reliability-report.sh
renders them into the table. Without the variable nothing is written (normal CI).

A scenario row: {"test": "crash_loop", "scenario": "...", "tried": "...",
"count": N, "lost": N, "outcome": "...", ...extra numbers}. `lost` is the number of
messages that got a 250 and never reached an upstream (the goal: 0)."""
import json
import os
import time
from pathlib import Path


def long_tests():
    """HOLDD_LONG_TESTS=1: the long versions (more kills, a million RCPTs, ...)."""
    return os.environ.get("HOLDD_LONG_TESTS", "") not in ("", "0")


def record(test, scenario, tried, count, lost=0, outcome="ok", **extra):
    row = {"test": test, "scenario": scenario, "tried": tried, "count": count,
           "lost": lost, "outcome": outcome, "time": time.time(),
           "build": os.path.basename(os.path.dirname(os.environ.get("HOLDD_BIN", "build/holdd"))),
           **extra}
    print(f"reliability: {json.dumps(row)}")
    out = os.environ.get("HOLDD_RESULTS_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        with open(Path(out) / "results.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
    return row
