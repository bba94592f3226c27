#!/usr/bin/env bash
# Configures and builds holdd.
#   scripts/build.sh [--asan] [BUILD_DIR] [-- extra cmake configure args]
# Default: RelWithDebInfo in build/. --asan: ASan+UBSan (-DHOLDD_SANITIZE=ON) in
# build-asan/ unless BUILD_DIR is given. JOBS (default: number of cores) sets the
# build parallelism; TARGETS (default: all) limits what is built.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

sanitize=OFF
build_dir=""
extra=()
while (($#)); do
  case "$1" in
    --asan) sanitize=ON ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n 2,6p "${BASH_SOURCE[0]}"; exit 0 ;;
    *) build_dir="$1" ;;
  esac
  shift
done
if [[ -z "$build_dir" ]]; then
  if [[ $sanitize == ON ]]; then build_dir="$root/build-asan"; else build_dir="$root/build"; fi
fi
build_type=${BUILD_TYPE:-RelWithDebInfo}
jobs=${JOBS:-$(nproc)}

echo "build: $build_dir (CMAKE_BUILD_TYPE=$build_type, HOLDD_SANITIZE=$sanitize, -j$jobs)"
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" \
  -DHOLDD_SANITIZE="$sanitize" "${extra[@]}"
targets=()
for t in ${TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build_dir" -j"$jobs" "${targets[@]}"
