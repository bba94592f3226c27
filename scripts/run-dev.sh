#!/usr/bin/env bash
# Installs what is missing, builds holdd and runs it in the foreground on loopback
# with conf/dev.toml (SMTP on 127.0.0.1:2525, spool and control socket under build/).
# In another shell:  build/holdctl --config conf/dev.toml status
# Stop with Ctrl-C (SIGINT: holdd finishes sessions, flushes and exits 0).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh
TARGETS="holdd holdctl" bash scripts/build.sh "$root/build"
mkdir -p "$root/build/dev-spool"
echo "run-dev: holdd --config conf/dev.toml (Ctrl-C stops it)"
exec "$root/build/holdd" --config "$root/conf/dev.toml"
