#!/usr/bin/env bash
# A throwaway Dovecot LMTP server on loopback, for the replay benchmark (issue 16):
# the new server of most cutovers is Dovecot, and the limit of a replay is what it
# can take. Everything lives in DIR (config, sockets, logs, the Maildirs); any
# address is a user (static userdb, allow_all_users), mail goes to
# DIR/mail/<local part>/Maildir with Dovecot's default fsync behaviour.
#
#   bench/dovecot_lmtp.sh start DIR PORT   # returns once LMTP answers on 127.0.0.1:PORT
#   bench/dovecot_lmtp.sh count DIR        # messages delivered so far (files in the Maildirs)
#   bench/dovecot_lmtp.sh stop DIR
#
# Needs Debian's dovecot-core and dovecot-lmtpd (scripts/install-deps.sh --bench);
# runs as root, mail owned by the `dovecot` user that the package creates.
set -euo pipefail

cmd=${1:?usage: $0 start DIR PORT | count DIR | stop DIR}
dir=${2:?usage: $0 start DIR PORT | count DIR | stop DIR}

case "$cmd" in
  start)
    port=${3:?usage: $0 start DIR PORT}
    command -v dovecot >/dev/null || { echo "dovecot_lmtp: no dovecot (bash scripts/install-deps.sh --bench)" >&2; exit 1; }
    mkdir -p "$dir/run" "$dir/state" "$dir/mail"
    chown dovecot:dovecot "$dir/mail"
    cat > "$dir/dovecot.conf" <<EOF
# Written by bench/dovecot_lmtp.sh: LMTP only, on loopback, for one benchmark run.
protocols = lmtp
listen = 127.0.0.1
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
ssl = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = maildir:~/Maildir
default_internal_user = dovecot
default_login_user = dovenull
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=$dir/mail/%n allow_all_users=yes
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $port
  }
}
EOF
    dovecot -c "$dir/dovecot.conf"
    for _ in $(seq 100); do
      if python3 - "$port" <<'PY' 2>/dev/null; then exit 0; fi
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
sys.exit(0 if s.recv(512).startswith(b"220") else 1)
PY
      sleep 0.1
    done
    echo "dovecot_lmtp: no LMTP greeting on 127.0.0.1:$port; $dir/dovecot.log says:" >&2
    tail -20 "$dir/dovecot.log" >&2 || true
    exit 1
    ;;
  count)
    find "$dir/mail" -path '*/Maildir/new/*' -type f -o -path '*/Maildir/cur/*' -type f 2>/dev/null | wc -l
    ;;
  stop)
    [[ -f "$dir/dovecot.conf" ]] || exit 0
    doveadm -c "$dir/dovecot.conf" stop 2>/dev/null || true
    for _ in $(seq 50); do
      [[ -f "$dir/run/master.pid" ]] && kill -0 "$(cat "$dir/run/master.pid")" 2>/dev/null || exit 0
      sleep 0.1
    done
    kill -9 "$(cat "$dir/run/master.pid")" 2>/dev/null || true
    ;;
  *)
    echo "usage: $0 start DIR PORT | count DIR | stop DIR" >&2
    exit 2
    ;;
esac
