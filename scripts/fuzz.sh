#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang++) in build-fuzz/ and runs each one.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
# For each target: first replays its committed corpus (fuzz/corpus/TARGET/, which
# holds the seeds and every crash input found so far: a regression that brings a
# crash back fails here at once), then fuzzes for SECONDS from a scratch copy of
# the corpus (new inputs go to build-fuzz/work/, not into the repository).
# A crash, a leak, a sanitizer report or a broken property stops the target; its
# input is saved as build-fuzz/artifacts/TARGET/crash-*; the script exits 1.
# Environment: FUZZ_BUILD_DIR (default build-fuzz), JOBS (build, default 2),
# FUZZ_RESULTS (a CSV file to append target,seconds,execs,corpus,status to),
# FUZZ_MAX_LEN (default 4096).
# Longer runs: scripts/fuzz.sh 3600 smtp_command   (see docs/reliability.md).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-60}
shift || true
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${JOBS:-2}
max_len=${FUZZ_MAX_LEN:-4096}
all_targets=(smtp_command data_reader bdat_reader config address directory headers reply_parser dot_stuffer)
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")

if ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang++ is not installed (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
echo "fuzz.sh: building in $build"
CXX=clang++ cmake -S "$root/fuzz" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
cmake --build "$build" -j"$jobs" >"$build/build.log" 2>&1 || { cat "$build/build.log" >&2; echo "fuzz.sh: build FAILED" >&2; exit 1; }

dict_for() {
  case $1 in
    smtp_command|address|directory) echo smtp.dict ;;
    data_reader|bdat_reader|dot_stuffer) echo data.dict ;;
    config) echo config.dict ;;
    headers) echo headers.dict ;;
    reply_parser) echo reply.dict ;;
  esac
}

export ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${FUZZ_UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
summary=()
for t in "${targets[@]}"; do
  bin="$build/fuzz_$t"
  corpus="$root/fuzz/corpus/$t"
  work="$build/work/$t"
  artifacts="$build/artifacts/$t/"
  log="$build/logs/$t.log"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  [[ -x $bin ]] || { echo "fuzz.sh: no target $t" >&2; failed=1; continue; }
  dict=()
  d=$(dict_for "$t")
  [[ -n $d ]] && dict=(-dict="$root/fuzz/$d")

  # 1. Replay: every committed input must pass.
  if ! "$bin" "${dict[@]}" -runs=0 "$corpus" >"$log.replay" 2>&1 || grep -q "ERROR:\|PROPERTY FAILED" "$log.replay"; then
    echo "fuzz.sh: $t: the committed corpus FAILS (see $log.replay)" >&2
    tail -n 40 "$log.replay" >&2
    summary+=("$(printf '%-14s replay FAILED' "$t")")
    [[ -n ${FUZZ_RESULTS:-} ]] && echo "$t,0,0,0,replay-failed" >>"$FUZZ_RESULTS"
    failed=1
    continue
  fi
  ((seconds > 0)) || { summary+=("$(printf '%-14s corpus replayed (%d inputs)' "$t" "$(ls "$corpus" | wc -l)")"); continue; }

  # 2. Fuzz from the corpus (seeds + what earlier runs here found).
  cp -n "$corpus"/* "$work"/ 2>/dev/null
  "$bin" "${dict[@]}" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts" "$work" >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n1)
  units=$(ls "$work" | wc -l)
  status=ok
  if ((rc != 0)); then
    status=FAILED
    failed=1
    echo "fuzz.sh: $t FAILED (exit $rc); artifacts in $artifacts" >&2
    grep -E "ERROR|PROPERTY FAILED|runtime error|^    #[0-9]" "$log" | head -n 30 >&2
  fi
  summary+=("$(printf '%-14s %4ss %10s execs %6s corpus  %s' "$t" "$seconds" "${execs:-?}" "$units" "$status")")
  [[ -n ${FUZZ_RESULTS:-} ]] && echo "$t,$seconds,${execs:-0},$units,$status" >>"$FUZZ_RESULTS"
done

echo "=== fuzz summary (${seconds}s per target)"
for s in "${summary[@]}"; do echo "  $s"; done
if ((failed)); then echo "fuzz.sh: FAILED" >&2; exit 1; fi
echo "fuzz.sh: OK"
