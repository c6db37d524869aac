#!/usr/bin/env bash
# profile.sh — CPU and heap profiles of the server under one load scenario.
#
#   test/load/profile.sh idle|chat|muc [metronome-load flags...]
#
# Starts a throwaway server (like bench.sh, pinned to CPU 0 when there are
# two) with METRONOME_PPROF on a free loopback port, runs the scenario with
# the flags given (defaults below), takes a CPU profile of SECONDS (20)
# seconds once the sessions are up (idle: during the logins), and a heap
# profile while the sessions are still up (idle: after --settle), into OUT (default: a profiles/ directory in the work
# directory, kept). TRANSPORT=websocket or bosh (and WEB_TLS=0) as for
# bench.sh. Print the top entries with
#   go tool pprof -top OUT/cpu.pprof
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sc=${1:?usage: $0 idle|chat|muc [metronome-load flags]}
shift
OUT=${OUT:-$WORK/profiles}
KEEP=1
SECONDS_CPU=${SECONDS_CPU:-20}
mkdir -p "$OUT"
load_pin=()
if [[ $(nproc) -ge 2 ]]; then
	export SERVER_CPU=${SERVER_CPU:-0}
	load_pin=(taskset -c "${LOAD_CPU:-1}")
fi
case $sc in
idle) n=${SESSIONS:-10000}; defaults=(--hold 40s --settle 30s) ;;
chat) n=${SESSIONS:-2000}; defaults=(--rates 1000 --step 40s) ;;
muc) n=${SESSIONS:-2000}; defaults=(--rates 1000 --step 40s --room-size 50); export MUC=1 ;;
*) die "unknown scenario $sc" ;;
esac
[[ $# -gt 0 ]] && defaults=("$@")
transport_setup
raise_nofile "$(session_fds "$n")"
build
write_config
import_users "$n"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export METRONOME_PPROF=127.0.0.1:$port
start_server
target_args
sleep 3
"${load_pin[@]}" "$BIN/metronome-load" "$sc" "${TARGET[@]}" --user 'load%d@localhost' --password "$PASSWORD" \
	--sessions "$n" --server-pid "$SERVER_PID" --concurrency 64 --json "$OUT/$sc.json" "${defaults[@]}" >"$OUT/load.out" 2>&1 &
LOAD_PID=$!
STARTED_PIDS+=("$LOAD_PID")
if [[ $sc != idle ]]; then
	until grep -q '^\(UP\|FAILED\)' "$OUT/load.out"; do sleep 0.5; done
	sleep 2
fi
log "CPU profile for ${SECONDS_CPU}s"
curl -sf -o "$OUT/cpu.pprof" "http://$METRONOME_PPROF/debug/pprof/profile?seconds=$SECONDS_CPU"
if [[ $sc == idle ]]; then
	until grep -q '^\(MEMORY\|FAILED\)' "$OUT/load.out"; do sleep 0.5; done
fi
log "heap profile"
curl -sf -o "$OUT/heap.pprof" "http://$METRONOME_PPROF/debug/pprof/heap?gc=1" || true
curl -sf -o "$OUT/goroutine.txt" "http://$METRONOME_PPROF/debug/pprof/goroutine?debug=1" || true
curl -sf -o "$OUT/memstats.txt" "http://$METRONOME_PPROF/debug/pprof/heap?debug=1" || true
wait "$LOAD_PID" || log "metronome-load failed"
cat "$OUT/load.out"
cp "$BIN/metronome" "$OUT/"
log "profiles in $OUT"
