#!/usr/bin/env bash
# smoke.sh — end-to-end message delivery under light load, for CI.
#
#   test/load/smoke.sh [SESSIONS [MESSAGES [RATE]]]    (default 200 2000 1000)
#
# Builds the binaries, starts metronome (SQLite, default modules) on free
# loopback ports, imports the accounts, and runs the chat scenario of
# metronome-load: SESSIONS sessions log in (STARTTLS, SCRAM-SHA-1, bind,
# presence), then send MESSAGES chat messages to each other (random sender,
# random recipient) at RATE messages/s. Exits non-zero
# unless every message was delivered exactly once. Takes well under a
# minute; everything it started is stopped by PID. DIRECT_TLS=1 uses the
# direct TLS listener instead of STARTTLS; TRANSPORT=websocket or bosh runs
# over that web transport (as bench.sh does); KEEP=1 keeps the logs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${1:-200}
M=${2:-2000}
RATE=${3:-1000}

transport_setup
raise_nofile "$(session_fds "$N")"
build
write_config
import_users "$N"
start_server
target_args

args=("${TARGET[@]}")
[[ -n ${DIRECT_TLS:-} && $TRANSPORT == tcp ]] && args=(--tls --addr "$TLS_ADDR")
rc=0
step_ms=$((M * 1000 / RATE))
"$BIN/metronome-load" chat "${args[@]}" --user 'load%d@localhost' --password "$PASSWORD" \
	--sessions "$N" --rates "$RATE" --step "${step_ms}ms" --drain 10s --duration 2m \
	--server-pid "$SERVER_PID" || rc=$?
if [[ $rc -ne 0 ]]; then
	grep -i 'level=\(warn\|error\)' "$WORK/server.log" | tail -n 20 >&2 || true
	die "smoke test failed (metronome-load exit $rc)"
fi
stop_pid "$SERVER_PID" 30
wait "$SERVER_PID" || die "the server exited with status $? on SIGTERM"
log "smoke test passed"
