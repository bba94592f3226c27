#!/usr/bin/env bash
# Intake throughput of holdd with Postfix's smtp-source as the client: messages/s
# accepted durably (250 after fsync) at 1 and 20 concurrent sessions, with group
# commit on (default) and off (HOLDD_SPOOL_MAX_BATCH=1: one fsync per message).
#
#   bench/intake.sh [HOLDD_BIN] [MESSAGES]
#
# Mail goes to held mailboxes (recipients = "any", initial_state = "held"), so
# nothing is relayed: this measures SMTP intake + spool only. The spool lives in
# $BENCH_DIR (default /var/tmp/holdd-bench), on the disk a real spool would use.
set -euo pipefail
holdd=${1:-build/holdd}
messages=${2:-2000}
size=${SIZE:-4096}
dir=${BENCH_DIR:-/var/tmp/holdd-bench}
command -v smtp-source >/dev/null || PATH=$PATH:/usr/sbin
command -v smtp-source >/dev/null || { echo "bench: smtp-source not found (apt-get install postfix)" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pid=""
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

start_holdd() {  # $1: extra environment assignment or ""
  rm -rf "$dir"; mkdir -p "$dir"
  cat > "$dir/holdd.toml" <<TOML
[server]
listen = ["127.0.0.1:$port"]
hostname = "bench.localhost"
max_connections_per_ip = 1000
[spool]
path = "$dir/spool"
min_free_disk = "100MiB"
[control]
socket = "$dir/control.sock"
metrics_listen = ""
[directory]
domains = ["example.com"]
recipients = "any"
initial_state = "held"
[auth]
spf = false
dkim = false
dmarc = false
TOML
  env $1 "$holdd" --config "$dir/holdd.toml" > "$dir/holdd.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    grep -q "holdd ready" "$dir/holdd.log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench: holdd did not start:"; cat "$dir/holdd.log"; exit 1
}

stop_holdd() {
  kill "$pid"; wait "$pid" || true; pid=""
  grep -o "spool: .* per fsync)" "$dir/holdd.log" || true
}

run() {  # $1 label, $2 sessions
  local t0 t1
  t0=$(date +%s.%N)
  smtp-source -s "$2" -m "$messages" -l "$size" -f sender@bench.test -t rcpt@example.com "127.0.0.1:$port"
  t1=$(date +%s.%N)
  python3 -c "import sys; n=$messages; t=$t1-$t0; print(f'{sys.argv[1]:<28} sessions={$2:<3} {n} msgs in {t:.2f}s = {n/t:8.0f} msg/s')" "$1"
}

echo "holdd intake, $messages messages of $size bytes, spool in $dir ($(df -h --output=source "$(dirname "$dir")" | tail -1))"
for mode in group single; do
  if [[ $mode == group ]]; then start_holdd ""; else start_holdd "HOLDD_SPOOL_MAX_BATCH=1"; fi
  run "group commit $( [[ $mode == group ]] && echo on || echo off)" 1
  run "group commit $( [[ $mode == group ]] && echo on || echo off)" 20
  stop_holdd
done
