#!/usr/bin/env bash
# THE test command (README, .ci/run): installs what is missing, builds holdd twice
# and runs every test in both trees:
#   build/       RelWithDebInfo           unit + integration tests
#   build-asan/  ASan + UBSan (Debug)     unit + integration tests
# Exits non-zero if anything fails to build or any test fails; both trees are tested
# even when the first fails, so one run shows everything.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=${JOBS:-2}
logdir="$root/build-logs"
mkdir -p "$logdir"

bash scripts/install-deps.sh || { echo "test.sh: installing dependencies failed" >&2; exit 1; }

failed=0
summaries=()
total_passed=0
total_failed=0

# run_ctest NAME BUILD_DIR: runs every test of one tree, records its summary line.
run_ctest() {
  local name=$1 dir=$2 log="$logdir/ctest-$1.log"
  echo "=== ctest ($name): $dir"
  ctest --test-dir "$dir" -j"$jobs" --output-on-failure --no-tests=error 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local summary
  summary=$(grep -E '^[0-9]+% tests passed' "$log" | tail -n 1)
  summaries+=("$name: ${summary:-no ctest summary (exit $rc)}")
  if [[ $summary =~ ([0-9]+)\ tests\ failed\ out\ of\ ([0-9]+) ]]; then
    total_failed=$((total_failed + BASH_REMATCH[1]))
    total_passed=$((total_passed + BASH_REMATCH[2] - BASH_REMATCH[1]))
  fi
  if ((rc != 0)); then failed=1; fi
}

# --- 1. normal build ------------------------------------------------------------
if JOBS=$jobs bash scripts/build.sh "$root/build"; then
  run_ctest release "$root/build"
else
  echo "test.sh: build (build/) FAILED" >&2
  summaries+=("release: BUILD FAILED")
  failed=1
fi

# --- 2. ASan + UBSan build --------------------------------------------------------
# Sanitizer findings abort the process: a daemon that aborts fails its test (the
# fixture expects exit 0 on SIGTERM), and LeakSanitizer reports leaks at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if JOBS=$jobs BUILD_TYPE=${ASAN_BUILD_TYPE:-Debug} bash scripts/build.sh --asan "$root/build-asan"; then
  run_ctest asan "$root/build-asan"
else
  echo "test.sh: build (build-asan/) FAILED" >&2
  summaries+=("asan: BUILD FAILED")
  failed=1
fi

echo
echo "=== summary"
for s in "${summaries[@]}"; do echo "  $s"; done
if ((failed)); then
  echo "test.sh: FAILED (a build or a test failed; see above)"
else
  echo "test.sh: OK"
fi
# Last line, in the form CI reads: totals over both trees.
echo "tests: $total_passed passed, $total_failed failed"
exit "$failed"
