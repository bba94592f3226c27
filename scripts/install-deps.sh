#!/usr/bin/env bash
# Installs everything holdd needs to build and to run its tests on Debian 12, from
# Debian's own packages only. Idempotent: when every package is already installed it
# does not touch apt at all, so reruns take well under a second. Run as root.
#
# --bench: also what bench/run.sh needs beyond the tests (a real Dovecot LMTP
# server as the new server of the replay benchmark). Packages that ship a system
# service (PostgreSQL, Dovecot) are installed without starting it: the benchmarks
# and tests start their own instances on loopback.
set -euo pipefail

packages=(
  # build
  g++ cmake make pkg-config openssl ccache
  libboost1.81-dev libssl-dev libspf2-dev libopendkim-dev liblmdb-dev
  libspdlog-dev libfmt-dev doctest-dev libtomlplusplus-dev libcli11-dev
  nlohmann-json3-dev libsystemd-dev
  libpq-dev  # [cluster]: mailbox states shared in PostgreSQL, through libpq
  # tests: real peers nobody on this project wrote
  python3 python3-pytest python3-aiosmtpd swaks postfix lmdb-utils
  libnet-ssleay-perl  # swaks --tls
  iproute2 procps
  # cluster tests: a real PostgreSQL server per test (tests/integration/postgres.py
  # runs Debian's server binaries itself; the system cluster is never used)
  postgresql
  # auth tests: a real DNS server on loopback, DKIM keys, organizational domains
  dnsmasq-base opendkim-tools publicsuffix  # dnsmasq-base: the binary, no system service
  python3-dkim  # dkimpy: signs the DKIM test messages of test_auth_edge.py (Debian 12's opendkim-testmsg stops with "dkim_chunk(): Syntax error")
  # systemd-analyze, to verify systemd/holdd.service
  systemd
  # /metrics checked with the Prometheus project's own parser
  python3-prometheus-client
  # fuzzing (scripts/fuzz.sh): clang with libFuzzer and the sanitizer runtimes
  clang libclang-rt-14-dev
  # cpack -G DEB: dpkg-shlibdeps computes the package's Depends, dpkg-deb builds it
  dpkg-dev
  # test_deb_install.py: installs the .deb in a throwaway Debian 12 root booted with
  # systemd-nspawn (the root is bootstrapped once, cached in /var/cache/holdd-tests)
  debootstrap systemd-container
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(dovecot-core dovecot-lmtpd)
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  if [[ "$status" != "ii"* ]]; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run it as root: bash scripts/install-deps.sh" >&2
  exit 1
fi

echo "install-deps: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Postfix is only wanted for its tools (smtp-sink, smtp-source): tell its package
# not to configure a system mail server.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string localhost" | debconf-set-selections
# No system service may start from this install (Dovecot would take ports 110 and
# 143, PostgreSQL's system cluster port 5432): a policy-rc.d that says no, for the
# time of the install, unless the machine already has one.
policy=/usr/sbin/policy-rc.d
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\n# scripts/install-deps.sh: no service starts during its install\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
# The postgresql package also creates a system cluster (15/main) and enables its
# service, which policy-rc.d kept from starting now: when this install brought it,
# keep it from starting at boot too.
if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v systemctl >/dev/null; then
  systemctl disable --quiet postgresql.service ||
    echo "install-deps: could not disable postgresql.service; it may start at boot" >&2
fi
echo "install-deps: done"
