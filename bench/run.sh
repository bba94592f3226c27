#!/usr/bin/env bash
# holdd side by side with Postfix, one command:
#
#   sudo bench/run.sh                     # builds build-bench/ (release) unless HOLDD_BIN is set
#   HOLDD_BIN=build/holdd HOLDCTL_BIN=build/holdctl sudo -E bench/run.sh
#
# Starts holdd (spool in a temporary directory under BENCH_DIR, default /var/tmp),
# a PRIVATE Postfix instance (own config_directory, queue_directory and
# data_directory in the same temporary directory, so on the same file system;
# smtpd on a free loopback port; the system Postfix is neither used nor touched)
# and smtp-sink, and measures:
#
#  intake   smtp-source at SESSIONS (1 10 50) parallel sessions, one message per
#           connection ("conn") and many per connection ("multi", smtp-source -d),
#           SIZES (4 KiB and 100 KiB of payload). Targets: holdd (250 after its
#           LMDB commit, mail held), Postfix (250 after its queue file is fsynced,
#           mail put on hold by check_recipient_access static:HOLD) and smtp-sink
#           (stores nothing: the ceiling of this client). REPS runs per target,
#           interleaved (the start order rotates each rep) so that drift of this
#           shared machine hits all targets alike; the median is reported.
#  replay   `holdctl release --file ... --wait` of held 4 KiB messages, timed to the
#           last upstream acceptance, in REPLAY_SHAPES ("spread one batch dovecot"):
#           spread: REPLAY_MESSAGES (10000) over REPLAY_MAILBOXES (100) mailboxes;
#           one: REPLAY_MESSAGES in one mailbox; batch: BATCH_MAILBOXES (1000) x
#           BATCH_PER (20). These to smtp-sink, against Postfix relaying the same
#           messages from its hold queue to smtp-sink (`postsuper -H ALL`, timed
#           until its queue is empty). dovecot: the spread shape into a throwaway
#           Dovecot LMTP server (bench/dovecot_lmtp.sh; needs `scripts/install-deps.sh
#           --bench`), against smtp-source -L writing the same straight into that
#           Dovecot over DELIVERY_CONCURRENCY (20, holdd's default) connections.
#  latency  end of DATA -> 250 from the client side (bench/latency.py), LAT_SESSIONS
#           (10) sessions, LAT_MESSAGES (3000) messages of 4 KiB, holdd and Postfix
#           interleaved REPS times; median of each percentile.
#  idle     IDLE_SESSIONS (10000) concurrent idle sessions on holdd (bench/idle.py):
#           RSS meanwhile and the time a well-behaved client takes to get a 250.
#  Peak RSS of holdd: the highest VmHWM of the holdd processes of the run.
#
# Environment knobs (defaults in parentheses): PARTS ("intake replay latency idle"),
# REPS (3), SESSIONS ("1 10 50"), SHAPES ("conn multi"), SIZES ("4096 102400"),
# MESSAGES_4K (1000; per run), MESSAGES_LARGE (300; per run for sizes > 4096),
# REPLAY_MESSAGES, REPLAY_MAILBOXES, REPLAY_SHAPES, DELIVERY_PIPELINE (1; holdd's
# [delivery] pipeline), BATCH_MAILBOXES, BATCH_PER,
# DELIVERY_CONCURRENCY, LAT_SESSIONS, LAT_MESSAGES, IDLE_SESSIONS,
# BENCH_POSTFIX (auto: on when run as root, which Postfix's master needs; 0: off),
# BENCH_DIR (/var/tmp), OUT_DIR (build-bench/; results go to
# OUT_DIR/bench-<time>.{md,json}), KEEP_WORK=1 keeps the temporary directory,
# HOLDD_BIN / HOLDCTL_BIN (else scripts/build.sh builds build-bench/ with
# BUILD_TYPE, default RelWithDebInfo, tests off, only the holdd and holdctl targets).
#
# Needs only what scripts/install-deps.sh installs (postfix for smtp-source,
# smtp-sink and the private instance; python3). Everything it starts is stopped on
# exit, also on failure or Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH=$PATH:/usr/sbin:/sbin

PARTS=${PARTS:-"intake replay latency idle"}
REPS=${REPS:-3}
SESSIONS=${SESSIONS:-"1 10 50"}
SHAPES=${SHAPES:-"conn multi"}
SIZES=${SIZES:-"4096 102400"}
MESSAGES_4K=${MESSAGES_4K:-1000}
MESSAGES_LARGE=${MESSAGES_LARGE:-300}
REPLAY_MESSAGES=${REPLAY_MESSAGES:-10000}
REPLAY_MAILBOXES=${REPLAY_MAILBOXES:-100}
REPLAY_SHAPES=${REPLAY_SHAPES:-"spread one batch dovecot"}
BATCH_MAILBOXES=${BATCH_MAILBOXES:-1000}
BATCH_PER=${BATCH_PER:-20}
DELIVERY_CONCURRENCY=${DELIVERY_CONCURRENCY:-20}
DELIVERY_PIPELINE=${DELIVERY_PIPELINE:-1}
LAT_SESSIONS=${LAT_SESSIONS:-10}
LAT_MESSAGES=${LAT_MESSAGES:-3000}
IDLE_SESSIONS=${IDLE_SESSIONS:-10000}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
OUT_DIR=${OUT_DIR:-$root/build-bench}
BENCH_POSTFIX=${BENCH_POSTFIX:-auto}

say() { printf '%s bench: %s\n' "$(date +%T)" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
has_part() { [[ " $PARTS " == *" $1 "* ]]; }
load1() { cut -d' ' -f1 /proc/loadavg; }
now_ns() { date +%s%N; }

for tool in smtp-source smtp-sink python3; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh installs it)"
done
if [[ $BENCH_POSTFIX == auto ]]; then
  if [[ $(id -u) -eq 0 ]]; then BENCH_POSTFIX=1; else BENCH_POSTFIX=0; say "not root: Postfix is skipped (its master must start as root)"; fi
fi
if [[ $BENCH_POSTFIX == 1 ]]; then
  command -v postfix >/dev/null || die "postfix not found (scripts/install-deps.sh installs it)"
  getent passwd postfix >/dev/null || die "no user postfix (the Debian postfix package creates it)"
fi

# --- binaries ---------------------------------------------------------------------
if [[ -n ${HOLDD_BIN:-} ]]; then
  holdd=$(readlink -f "$HOLDD_BIN")
  holdctl=$(readlink -f "${HOLDCTL_BIN:-$(dirname "$holdd")/holdctl}")
else
  say "building a release tree in $root/build-bench (set HOLDD_BIN/HOLDCTL_BIN to skip)"
  TARGETS=${TARGETS:-"holdd holdctl"} BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} \
    "$root/scripts/build.sh" "$root/build-bench" -- -DHOLDD_TESTS=OFF >&2
  holdd=$root/build-bench/holdd
  holdctl=$root/build-bench/holdctl
fi
[[ -x $holdd && -x $holdctl ]] || die "no holdd/holdctl binaries at $holdd, $holdctl"

# --- work directory, ports, cleanup -----------------------------------------------
mkdir -p "$BENCH_DIR" "$OUT_DIR"
work=$(mktemp -d "$BENCH_DIR/holdd-bench.XXXXXX")
chmod 755 "$work"  # the postfix user must reach its queue directory
results=$work/results.jsonl
: > "$results"
record() { printf '%s\n' "$1" >> "$results"; }
disk_probe() {  # $1 label: durable writes/s of the disk right now (bench/disk.py)
  local out
  out=$(python3 "$root/bench/disk.py" "$work" --seconds "${DISK_PROBE_SECONDS:-0.75}") || return 0
  record "{\"kind\":\"disk\",\"label\":\"$1\",\"load\":$(load1),\"result\":$out}"
  say "disk ($1): $out"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
holdd_port=$(free_port); pf_port=$(free_port); sink_port=$(free_port)
while [[ $pf_port == "$holdd_port" ]]; do pf_port=$(free_port); done
while [[ $sink_port == "$holdd_port" || $sink_port == "$pf_port" ]]; do sink_port=$(free_port); done

holdd_pid=""; holdd_phase=""; holdd_label=""; holdd_log_start=0; sink_pid=""; pf_running=0
phase="setup"

stop_holdd() {  # records the instance's peak RSS and how many writes shared a commit
  [[ -n $holdd_pid ]] || return 0
  local hwm batch
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$holdd_pid/status" 2>/dev/null || true)
  kill -TERM "$holdd_pid" 2>/dev/null || true
  wait "$holdd_pid" 2>/dev/null || true
  holdd_pid=""
  # "spool: N writes in M LMDB commits and J journal appends; ...", logged at exit.
  # "commits" counts the durable points a write can wait for: both kinds.
  batch=$(tail -n +"$((holdd_log_start + 1))" "$work/holdd/holdd.log" |
    grep -o "spool: [0-9]* writes in [0-9]* LMDB commits and [0-9]* journal appends" | tail -1 |
    awk '{print $2, $5 + $9, $5}' || true)
  [[ -n $batch ]] || batch="0 0 0"
  read -r b_writes b_durable b_lmdb <<<"$batch"
  record "{\"kind\":\"holdd_instance\",\"phase\":\"$holdd_phase\",\"label\":\"$holdd_label\",\"hwm_kib\":${hwm:-0},\"writes\":$b_writes,\"commits\":$b_durable,\"lmdb_commits\":$b_lmdb}"
}

pf_stop() {
  ((pf_running)) || return 0
  local pidfile=$work/postfix/queue/pid/master.pid master
  master=$(tr -d ' \n' < "$pidfile" 2>/dev/null || true)
  postfix -c "$work/postfix/conf" stop >/dev/null 2>&1 || true
  for _ in $(seq 100); do
    [[ -n $master ]] && kill -0 "$master" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n $master ]] && kill -KILL "$master" 2>/dev/null || true
  pf_running=0
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  stop_holdd
  declare -F dovecot_stop >/dev/null && dovecot_stop
  pf_stop
  if [[ -n $sink_pid ]]; then kill "$sink_pid" 2>/dev/null; wait "$sink_pid" 2>/dev/null; fi
  if [[ ${KEEP_WORK:-0} == 1 || $rc -ne 0 ]]; then
    say "work directory kept: $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- holdd ------------------------------------------------------------------------
mkdir -p "$work/holdd"
holdd_config=$work/holdd/holdd.toml  # start_holdd's; the dovecot replay uses its own
cat > "$work/holdd/holdd.toml" <<TOML
# bench/run.sh: every recipient in example.com is accepted and held; release sends
# to smtp-sink. SPF/DKIM/DMARC off (no DNS on loopback; Postfix checks none either).
[server]
listen = ["127.0.0.1:$holdd_port"]
hostname = "holdd.bench.localhost"
max_connections = $((IDLE_SESSIONS + 1000))
max_connections_per_ip = $((IDLE_SESSIONS + 1000))
[spool]
path = "$work/holdd/spool"
min_free_disk = "100MiB"
[control]
socket = "$work/holdd/control.sock"
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
concurrency = $DELIVERY_CONCURRENCY
pipeline = $DELIVERY_PIPELINE
retry_min = "1s"
retry_max = "5s"
[auth]
spf = false
dkim = false
dmarc = false
TOML
"$holdd" --check-config --config "$work/holdd/holdd.toml" >/dev/null || die "holdd rejects the bench config"

# The soft limit of open files: 10,000 idle sessions need more than the usual 1024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < IDLE_SESSIONS + 200)) && has_part idle; then
  die "ulimit -n is $(ulimit -n) (hard $(ulimit -Hn)): too low for IDLE_SESSIONS=$IDLE_SESSIONS"
fi

start_holdd() {  # $1: a label for the records; a fresh spool each time
  stop_holdd
  rm -rf "$work/holdd/spool"
  holdd_log_start=$(wc -l < "$work/holdd/holdd.log")
  "$holdd" --config "$holdd_config" >> "$work/holdd/holdd.log" 2>&1 &
  holdd_pid=$!
  holdd_phase=$phase
  holdd_label=${1:-$phase}
  for _ in $(seq 200); do
    if tail -n +"$((holdd_log_start + 1))" "$work/holdd/holdd.log" | grep -q "holdd ready"; then return 0; fi
    kill -0 "$holdd_pid" 2>/dev/null || break
    sleep 0.05
  done
  tail -20 "$work/holdd/holdd.log" >&2
  die "holdd did not start"
}
touch "$work/holdd/holdd.log"

# --- smtp-sink: the ceiling for intake and the upstream for both relays --------------
sink_user=()
[[ $(id -u) -eq 0 ]] && sink_user=(-u postfix)
smtp-sink "${sink_user[@]}" -m 1000 "127.0.0.1:$sink_port" 1024 > "$work/smtp-sink.log" 2>&1 &
sink_pid=$!

# --- private Postfix --------------------------------------------------------------
pf=$work/postfix
pf_setup() {
  mkdir -p "$pf/conf" "$pf/queue" "$pf/data"
  chown postfix "$pf/data"
  cat > "$pf/conf/main.cf" <<EOF
# bench/run.sh: a private instance. Everything not set here is \`postconf -d\`.
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
maillog_file = $pf/maillog
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = postfix.bench.localhost
mydestination =
relay_domains =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
# Accept + fsync, nothing delivered: every message goes to the hold queue.
smtpd_recipient_restrictions = check_recipient_access static:HOLD, permit_mynetworks, reject_unauth_destination
# Relay (after postsuper -H): everything to smtp-sink.
relayhost = [127.0.0.1]:$sink_port
# Released mail is in the deferred queue: scan it every second, not every 5 minutes.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
EOF
  # master.cf: Debian's stock services, with smtpd on the bench's loopback port only.
  {
    echo "127.0.0.1:$pf_port inet n - n - - smtpd"
    cat <<'EOF'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
  } > "$pf/conf/master.cf"
  postfix -c "$pf/conf" check >&2 || die "postfix check failed for the private instance"
}
pf_start() {
  postfix -c "$pf/conf" start >&2 || { tail -20 "$pf/maillog" >&2; die "private Postfix did not start"; }
  pf_running=1
  for _ in $(seq 100); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$pf_port),1).close()" 2>/dev/null && return 0
    sleep 0.1
  done
  die "private Postfix does not listen on 127.0.0.1:$pf_port"
}
pf_queued() { find "$pf/queue/"{incoming,active,deferred,hold,maildrop} -type f 2>/dev/null | wc -l; }
pf_wipe() { postsuper -c "$pf/conf" -d ALL >/dev/null 2>&1 || true; }

if [[ $BENCH_POSTFIX == 1 ]]; then pf_setup; pf_start; fi
for _ in $(seq 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1',$sink_port),1).close()" 2>/dev/null && break
  sleep 0.1
done

meta() {
  local disk model
  disk=$(df -h --output=source,fstype,size "$work" | tail -1 | tr -s ' ')
  model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
  python3 - "$@" <<PY >> "$results"
import json, os
print(json.dumps({"kind": "meta", "cores": os.cpu_count(), "cpu": """$model""", "disk": """$disk""",
  "kernel": os.uname().release, "holdd": "$holdd", "postfix": "$(postconf -d -h mail_version 2>/dev/null || echo none)",
  "load_start": "$(cut -d' ' -f1-3 /proc/loadavg)", "reps": $REPS, "parts": "$PARTS",
  "started": "$(date -u +%FT%TZ)"}))
PY
}
meta
disk_probe start
say "work $work; holdd :$holdd_port, postfix :$pf_port ($([[ $BENCH_POSTFIX == 1 ]] && echo on || echo off)), smtp-sink :$sink_port; load $(cut -d' ' -f1-3 /proc/loadavg)"

# --- intake -----------------------------------------------------------------------
source_run() {  # port sessions shape size messages [rcpt] -> prints seconds
  local port=$1 s=$2 shape=$3 size=$4 n=$5 rcpt=${6:-rcpt@example.com} t0 t1
  local args=(-s "$s" -m "$n" -l "$size" -M bench.test -f sender@bench.test -t "$rcpt")
  [[ $shape == multi ]] && args+=(-d)
  t0=$(now_ns)
  if ! smtp-source "${args[@]}" "127.0.0.1:$port" > "$work/source.out" 2>&1; then
    cat "$work/source.out" >&2
    return 1
  fi
  t1=$(now_ns)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }'
}

intake_one() {  # target sessions shape size messages rep
  local target=$1 s=$2 shape=$3 size=$4 n=$5 rep=$6 port secs load
  case $target in
    holdd) port=$holdd_port ;;
    postfix) port=$pf_port ;;
    sink) port=$sink_port ;;
  esac
  load=$(load1)
  secs=$(source_run "$port" "$s" "$shape" "$size" "$n") || die "smtp-source failed against $target (sessions=$s shape=$shape size=$size)"
  record "{\"kind\":\"intake\",\"target\":\"$target\",\"sessions\":$s,\"shape\":\"$shape\",\"size\":$size,\"messages\":$n,\"rep\":$rep,\"seconds\":$secs,\"rate\":$(awk -v n="$n" -v t="$secs" 'BEGIN{printf "%.1f", n/t}'),\"load\":$load}"
  printf '  %-7s %7.0f msg/s  (load %s)\n' "$target" "$(awk -v n="$n" -v t="$secs" 'BEGIN{print n/t}')" "$load" >&2
}

if has_part intake; then
  phase=intake
  targets=(holdd sink)
  [[ $BENCH_POSTFIX == 1 ]] && targets=(holdd postfix sink)
  for size in $SIZES; do
    n=$MESSAGES_4K
    ((size > 4096)) && n=$MESSAGES_LARGE
    for shape in $SHAPES; do
      for s in $SESSIONS; do
        ((n >= s)) || die "fewer messages ($n) than sessions ($s)"
        start_holdd "$size/$shape/$s"
        [[ $BENCH_POSTFIX == 1 ]] && pf_wipe
        disk_probe "intake $size/$shape/$s"
        say "intake size=$size shape=$shape sessions=$s messages=$n"
        for rep in $(seq "$REPS"); do
          # rotate the start order each rep: A B C, B C A, C A B, ...
          k=$(((rep - 1) % ${#targets[@]}))
          for t in "${targets[@]:k}" "${targets[@]:0:k}"; do
            intake_one "$t" "$s" "$shape" "$size" "$n" "$rep"
          done
        done
      done
    done
  done
fi

# --- replay -----------------------------------------------------------------------
# Shapes (REPLAY_SHAPES): "spread" REPLAY_MESSAGES over REPLAY_MAILBOXES; "one" the
# same number in one mailbox (a shared mailbox: the per-mailbox order is the limit);
# "batch" BATCH_MAILBOXES x BATCH_PER (a night's batch: the scheduler is the limit);
# "dovecot" the spread shape into a real Dovecot LMTP server (the usual new server),
# against smtp-source writing the same mail straight into that Dovecot with the
# same number of connections (holdd's [delivery] concurrency).
load_mailboxes() {  # port file per [smtp-source options...]: per messages to each address of file, each in order
  local port=$1 file=$2 per=$3
  shift 3
  xargs -P 10 -I{} smtp-source -s 1 -d -m "$per" -l 4096 -M bench.test -f sender@bench.test "$@" \
    -t {} "127.0.0.1:$port" < "$file"
}
rate_of() { awk -v n="$1" -v t="$2" 'BEGIN{printf "%.1f", n/t}'; }
secs_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
replay_record() {  # shape target messages mailboxes seconds load
  record "{\"kind\":\"replay\",\"shape\":\"$1\",\"target\":\"$2\",\"messages\":$3,\"mailboxes\":$4,\"seconds\":$5,\"rate\":$(rate_of "$3" "$5"),\"load\":$6}"
  say "  $2 $3 in ${5}s"
}

dovecot_dir=$work/dovecot
dovecot_port=""
dovecot_stop() { [[ -n $dovecot_port ]] && bash "$root/bench/dovecot_lmtp.sh" stop "$dovecot_dir"; dovecot_port=""; }
dovecot_start() {  # a fresh mail directory each time
  dovecot_stop
  rm -rf "$dovecot_dir"
  dovecot_port=$(free_port)
  bash "$root/bench/dovecot_lmtp.sh" start "$dovecot_dir" "$dovecot_port"
}

replay_shape() {  # shape mailboxes per
  local shape=$1 n=$2 per=$3 total=$(($2 * $3)) file="$work/replay-$1.txt" load t0 delivered secs
  phase="replay $shape"
  printf 'mb%05d@example.com\n' $(seq 1 "$n") > "$file"
  if [[ $shape == dovecot ]]; then
    dovecot_start
    holdd_config=$work/holdd/holdd-dovecot.toml
    sed -e "/^\[upstream.new\]/,/^\[/ s/^port = .*/port = $dovecot_port/" \
        -e "/^\[upstream.new\]/,/^\[/ s/^protocol = .*/protocol = \"lmtp\"/" "$work/holdd/holdd.toml" > "$holdd_config"
  fi
  start_holdd "replay $shape"
  disk_probe "replay $shape"
  say "replay $shape: loading $total messages ($per for each of $n mailboxes) into holdd"
  load_mailboxes "$holdd_port" "$file" "$per"
  if [[ $BENCH_POSTFIX == 1 && $shape != dovecot ]]; then
    pf_wipe
    say "replay $shape: loading the same into Postfix's hold queue"
    load_mailboxes "$pf_port" "$file" "$per"
    [[ $(pf_queued) -eq $total ]] || die "Postfix holds $(pf_queued) messages, expected $total"
  fi

  say "replay $shape: holdctl release --file ($n mailboxes) --wait"
  load=$(load1); t0=$(now_ns)
  "$holdctl" --config "$holdd_config" --json release --file "$file" --wait > "$work/release.json" \
    || { cat "$work/release.json" >&2; die "holdctl release failed"; }
  secs=$(secs_since "$t0")
  delivered=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("delivered", -1))' "$work/release.json")
  [[ $delivered -eq $total ]] || die "holdd delivered $delivered of $total"
  replay_record "$shape" holdd "$total" "$n" "$secs" "$load"
  stop_holdd
  holdd_config=$work/holdd/holdd.toml

  if [[ $shape == dovecot ]]; then
    local got
    got=$(bash "$root/bench/dovecot_lmtp.sh" count "$dovecot_dir")
    [[ $got -eq $total ]] || die "Dovecot stored $got of $total"
    dovecot_start
    say "replay $shape: smtp-source -L straight into Dovecot, $DELIVERY_CONCURRENCY connections"
    load=$(load1); t0=$(now_ns)
    P=$DELIVERY_CONCURRENCY
    xargs -P "$P" -I{} smtp-source -L -s 1 -d -m "$per" -l 4096 -M bench.test -f sender@bench.test \
      -t {} "127.0.0.1:$dovecot_port" < "$file"
    secs=$(secs_since "$t0")
    got=$(bash "$root/bench/dovecot_lmtp.sh" count "$dovecot_dir")
    [[ $got -eq $total ]] || die "Dovecot stored $got of $total from smtp-source"
    replay_record "$shape" smtp-source "$total" "$n" "$secs" "$load"
    dovecot_stop
  elif [[ $BENCH_POSTFIX == 1 ]]; then
    say "replay $shape: postsuper -H ALL, until Postfix's queue is empty"
    local sent_before sent
    sent_before=$(grep -c "status=sent" "$pf/maillog" || true)
    load=$(load1); t0=$(now_ns)
    postsuper -c "$pf/conf" -H ALL >/dev/null 2>&1
    while (($(pf_queued) > 0)); do sleep 0.1; done
    secs=$(secs_since "$t0")
    sent=$(( $(grep -c "status=sent" "$pf/maillog" || true) - sent_before ))
    [[ $sent -eq $total ]] || die "Postfix sent $sent of $total"
    replay_record "$shape" postfix "$total" "$n" "$secs" "$load"
  fi
}

if has_part replay; then
  for shape in $REPLAY_SHAPES; do
    case $shape in
      spread) replay_shape spread "$REPLAY_MAILBOXES" $((REPLAY_MESSAGES / REPLAY_MAILBOXES)) ;;
      one) replay_shape one 1 "$REPLAY_MESSAGES" ;;
      batch) replay_shape batch "$BATCH_MAILBOXES" "$BATCH_PER" ;;
      dovecot)
        if command -v dovecot >/dev/null; then
          replay_shape dovecot "$REPLAY_MAILBOXES" $((REPLAY_MESSAGES / REPLAY_MAILBOXES))
        else
          say "replay dovecot: SKIPPED, no dovecot (bash scripts/install-deps.sh --bench)"
        fi ;;
      *) die "unknown replay shape $shape (REPLAY_SHAPES: spread one batch dovecot)" ;;
    esac
  done
fi

# --- latency ----------------------------------------------------------------------
if has_part latency; then
  phase=latency
  start_holdd
  [[ $BENCH_POSTFIX == 1 ]] && pf_wipe
  disk_probe latency
  lat_targets=(holdd)
  [[ $BENCH_POSTFIX == 1 ]] && lat_targets=(holdd postfix)
  for rep in $(seq "$REPS"); do
    k=$(((rep - 1) % ${#lat_targets[@]}))
    for t in "${lat_targets[@]:k}" "${lat_targets[@]:0:k}"; do
      port=$holdd_port; [[ $t == postfix ]] && port=$pf_port
      load=$(load1)
      say "latency $t rep $rep: $LAT_SESSIONS sessions, $LAT_MESSAGES messages"
      out=$(python3 "$root/bench/latency.py" --port "$port" --sessions "$LAT_SESSIONS" --messages "$LAT_MESSAGES" --size 4096) \
        || die "latency client failed against $t: $out"
      record "{\"kind\":\"latency\",\"target\":\"$t\",\"rep\":$rep,\"sessions\":$LAT_SESSIONS,\"load\":$load,\"result\":$out}"
      say "  $out"
    done
  done
fi

# --- idle sessions ----------------------------------------------------------------
if has_part idle; then
  phase=idle
  start_holdd
  say "idle: $IDLE_SESSIONS concurrent idle sessions on holdd"
  load=$(load1)
  out=$(python3 "$root/bench/idle.py" --port "$holdd_port" --pid "$holdd_pid" --count "$IDLE_SESSIONS") \
    || die "idle sessions failed: $out"
  record "{\"kind\":\"idle\",\"target\":\"holdd\",\"load\":$load,\"result\":$out}"
  say "  $out"
fi

phase=end
stop_holdd
disk_probe end
record "{\"kind\":\"end\",\"load_end\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"finished\":\"$(date -u +%FT%TZ)\"}"
stamp=$(date +%Y%m%d-%H%M%S)
python3 "$root/bench/report.py" "$results" "$OUT_DIR/bench-$stamp"
say "results: $OUT_DIR/bench-$stamp.md and .json"
