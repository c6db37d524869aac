#!/usr/bin/env bash
# idle_rss.sh — server memory per idle client session.
#
#   test/load/idle_rss.sh [SESSIONS]        (default 10000)
#
# Builds the binaries, starts metronome (SQLite, default modules) on free
# loopback ports with a throwaway configuration, imports SESSIONS accounts
# with `metronomectl user import`, samples the server's VmRSS, logs SESSIONS
# idle sessions in with metronome-load --idle (STARTTLS, SCRAM-SHA-256, bind,
# initial presence), lets the server settle, samples VmRSS again and prints
# the difference per session. Everything it started is stopped by PID.
#
# Environment: SETTLE (seconds to wait after all sessions are up, default
# 30; the figure is the last of the samples taken every 5 s), CONCURRENCY
# (logins in flight, default 64), CONNECT_RATE (sessions/s, default 0 =
# unlimited), KEEP=1 keeps the work directory (logs, data).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${1:-10000}
SETTLE=${SETTLE:-30}
[[ $N =~ ^[1-9][0-9]*$ ]] || die "usage: $0 [SESSIONS]"

raise_nofile $((N + 1024))
build
write_config
import_users "$N"
start_server

sleep 5 # let start-up garbage be collected
before=$(rss_kib "$SERVER_PID")
log "server VmRSS before: $before KiB"

"$BIN/metronome-load" --addr "$C2S_ADDR" --user 'load%d@localhost' --password "$PASSWORD" \
	--sessions "$N" --idle --hold 2h --duration 2h \
	--concurrency "${CONCURRENCY:-64}" --connect-rate "${CONNECT_RATE:-0}" \
	>"$WORK/load.out" 2>"$WORK/load.err" &
LOAD_PID=$!
STARTED_PIDS+=("$LOAD_PID")
log "metronome-load pid $LOAD_PID: logging $N sessions in"
while ! grep -q '^\(UP\|FAILED\) ' "$WORK/load.out"; do
	if ! kill -0 "$LOAD_PID" 2>/dev/null; then
		cat "$WORK/load.out" "$WORK/load.err" >&2
		die "metronome-load exited before the sessions were up"
	fi
	sleep 1
done
up_line=$(grep '^\(UP\|FAILED\) ' "$WORK/load.out")
log "$up_line"
[[ $up_line == UP* ]] || { tail -n 20 "$WORK/load.err" >&2; die "not all sessions logged in"; }
bound=$("$BIN/metronomectl" --config "$CONFIG" status 2>/dev/null | awk -F': *' 'tolower($1) ~ /sessions/ {print $2}' || true)
log "server reports ${bound:-?} bound sessions"

after=0
for ((t = 0; t < SETTLE; t += 5)); do
	sleep 5
	after=$(rss_kib "$SERVER_PID")
	log "server VmRSS after $((t + 5))s: $after KiB"
done
hwm=$(hwm_kib "$SERVER_PID")

stop_pid "$LOAD_PID" 60
load_rc=0
wait "$LOAD_PID" || load_rc=$?
cat "$WORK/load.out" >&2
[[ $load_rc -eq 0 ]] || die "metronome-load failed (exit $load_rc)"

per=$(awk -v a="$after" -v b="$before" -v n="$N" 'BEGIN {printf "%.1f", (a - b) / n}')
printf 'sessions=%d rss_before_kib=%d rss_after_kib=%d rss_peak_kib=%d delta_kib=%d kib_per_session=%s\n' \
	"$N" "$before" "$after" "$hwm" $((after - before)) "$per"
