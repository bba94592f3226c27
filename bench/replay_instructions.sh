#!/usr/bin/env bash
# Instructions holdd executes to replay a held backlog: a measurement that the load
# of a shared machine does not move (wall-clock replay times here vary +-20%).
#
#   HOLDD_BIN=build/holdd HOLDCTL_BIN=build/holdctl bench/replay_instructions.sh
#
# 1. Starts smtp-sink (the upstream) and holdd normally, and fills a held backlog:
#    MESSAGES (2000) messages of SIZE (4096) bytes over MAILBOXES (20) mailboxes
#    (initial_state = "held", smtp-source as in bench/run.sh's replay).
# 2. Stops holdd (SIGTERM) and restarts it on the same spool under
#    `valgrind --tool=callgrind`; once it is ready, stops it again: the baseline
#    (startup with this spool, then shutdown).
# 3. Restarts it under callgrind once more, runs `holdctl release --file ... --wait`
#    until every message is delivered to smtp-sink, and stops it (SIGTERM).
# Prints the instructions (callgrind's Ir, all threads) of both runs, and of the
# replay alone (replay run minus baseline) in total and per message. REPEAT (1)
# repeats steps 2-3 on copies of the same spool, to show how repeatable the count
# is (timers, group-commit batching and event-loop wakeups make it vary a little).
#
# Environment: HOLDD_BIN, HOLDCTL_BIN (default build/holdd, build/holdctl),
# MESSAGES, MAILBOXES, SIZE, REPEAT, VALGRIND_ARGS (extra callgrind options),
# BENCH_DIR (/var/tmp), KEEP_WORK=1 keeps the work directory, with the callgrind
# output files (callgrind.replay.N and callgrind.base.N) for callgrind_annotate.
# Needs valgrind, smtp-source and smtp-sink (Postfix), python3.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH=$PATH:/usr/sbin:/sbin

MESSAGES=${MESSAGES:-2000}
MAILBOXES=${MAILBOXES:-20}
SIZE=${SIZE:-4096}
REPEAT=${REPEAT:-1}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
holdd=$(readlink -f "${HOLDD_BIN:-$root/build/holdd}")
holdctl=$(readlink -f "${HOLDCTL_BIN:-$(dirname "$holdd")/holdctl}")

say() { printf '%s replay_instructions: %s\n' "$(date +%T)" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
for tool in valgrind smtp-source smtp-sink python3; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -x $holdd && -x $holdctl ]] || die "no holdd/holdctl binaries at $holdd, $holdctl"
((MESSAGES % MAILBOXES == 0)) || die "MESSAGES ($MESSAGES) must be a multiple of MAILBOXES ($MAILBOXES)"

work=$(mktemp -d "$BENCH_DIR/holdd-instr.XXXXXX")
holdd_pid=""; sink_pid=""
stop_holdd() {
  [[ -n $holdd_pid ]] || return 0
  kill -TERM "$holdd_pid" 2>/dev/null || true
  wait "$holdd_pid" 2>/dev/null || true
  holdd_pid=""
}
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  stop_holdd
  if [[ -n $sink_pid ]]; then kill "$sink_pid" 2>/dev/null; wait "$sink_pid" 2>/dev/null; fi
  if [[ ${KEEP_WORK:-0} == 1 || $rc -ne 0 ]]; then say "work directory kept: $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
holdd_port=$(free_port); sink_port=$(free_port)
while [[ $sink_port == "$holdd_port" ]]; do sink_port=$(free_port); done

printf 'mb%03d@example.com\n' $(seq 1 "$MAILBOXES") > "$work/mailboxes.txt"
# The configuration of bench/run.sh, with the spool path given per run.
write_config() {  # $1 spool directory
  cat > "$work/holdd.toml" <<TOML
[server]
listen = ["127.0.0.1:$holdd_port"]
hostname = "holdd.bench.localhost"
[spool]
path = "$1"
min_free_disk = "100MiB"
[control]
socket = "$work/control.sock"
metrics_listen = ""
[directory]
domains = ["example.com"]
recipients = "any"
initial_state = "held"
[upstream.new]
host = "127.0.0.1"
port = $sink_port
protocol = "smtp"
tls = "none"
[delivery]
retry_min = "1s"
retry_max = "5s"
[auth]
spf = false
dkim = false
dmarc = false
TOML
}

start_holdd() {  # $@: a command prefix (valgrind ...) or nothing
  local log_start
  touch "$work/holdd.log"
  log_start=$(wc -l < "$work/holdd.log")
  "$@" "$holdd" --config "$work/holdd.toml" >> "$work/holdd.log" 2>&1 &
  holdd_pid=$!
  for _ in $(seq 1200); do  # 120 s: startup under valgrind is slow
    if tail -n +"$((log_start + 1))" "$work/holdd.log" | grep -q "holdd ready"; then return 0; fi
    kill -0 "$holdd_pid" 2>/dev/null || break
    sleep 0.1
  done
  tail -20 "$work/holdd.log" >&2
  die "holdd did not start"
}

sink_user=()
[[ $(id -u) -eq 0 ]] && sink_user=(-u postfix)
smtp-sink "${sink_user[@]}" -m 1000 "127.0.0.1:$sink_port" 1024 > "$work/smtp-sink.log" 2>&1 &
sink_pid=$!
for _ in $(seq 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1',$sink_port),1).close()" 2>/dev/null && break
  sleep 0.1
done
kill -0 "$sink_pid" 2>/dev/null || { cat "$work/smtp-sink.log" >&2; die "smtp-sink did not start"; }

# --- 1. the held backlog ---------------------------------------------------------
write_config "$work/spool"
"$holdd" --check-config --config "$work/holdd.toml" >/dev/null || die "holdd rejects the config"
start_holdd
per=$((MESSAGES / MAILBOXES))
say "loading $MESSAGES messages of $SIZE bytes ($per for each of $MAILBOXES mailboxes)"
xargs -P 10 -I{} smtp-source -s 1 -d -m "$per" -l "$SIZE" -M bench.test -f sender@bench.test \
  -t {} "127.0.0.1:$holdd_port" < "$work/mailboxes.txt"
stop_holdd

callgrind() {  # $1 output file: runs holdd under callgrind until stop_holdd
  start_holdd valgrind --tool=callgrind --callgrind-out-file="$1" ${VALGRIND_ARGS:-}
}
total_ir() {  # callgrind output file -> instructions, all threads
  awk '/^(summary|totals):/ {print $2; exit}' "$1"
}

results=()
for rep in $(seq "$REPEAT"); do
  # Each repetition starts from a copy of the same held spool.
  rm -rf "$work/spool.run"
  cp -a "$work/spool" "$work/spool.run"
  write_config "$work/spool.run"

  say "rep $rep: baseline: holdd under callgrind, startup and shutdown"
  callgrind "$work/callgrind.base.$rep"
  stop_holdd
  base=$(total_ir "$work/callgrind.base.$rep")

  say "rep $rep: replay: holdd under callgrind, holdctl release --file ... --wait"
  callgrind "$work/callgrind.replay.$rep"
  t0=$(date +%s%N)
  "$holdctl" --config "$work/holdd.toml" --json release --file "$work/mailboxes.txt" --wait \
    > "$work/release.json" || { cat "$work/release.json" >&2; die "holdctl release failed"; }
  t1=$(date +%s%N)
  stop_holdd
  delivered=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("delivered", -1))' "$work/release.json")
  [[ $delivered -eq $MESSAGES ]] || die "holdd delivered $delivered of $MESSAGES"
  replay=$(total_ir "$work/callgrind.replay.$rep")
  line=$(awk -v b="$base" -v r="$replay" -v n="$MESSAGES" -v s="$(( (t1 - t0) / 1000000 ))" -v k="$rep" 'BEGIN {
    printf "rep %d: baseline %d Ir; replay run %d Ir; replay alone %d Ir = %.0f Ir/message (release took %.1f s under valgrind)",
      k, b, r, r - b, (r - b) / n, s / 1000 }')
  say "$line"
  results+=("$line")
done

echo "holdd: $holdd"
echo "messages: $MESSAGES x $SIZE bytes over $MAILBOXES mailboxes"
printf '%s\n' "${results[@]}"
