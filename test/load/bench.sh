#!/usr/bin/env bash
# bench.sh — the performance figures of the README and docs/perf, measured
# the way issue 6 sets them: server pinned to one CPU, load tool on the other,
# TLS 1.3, SCRAM-SHA-1, a fresh server with SQLite per scenario.
#
#   test/load/bench.sh [idle] [chat] [muc]      (default: idle chat, and muc
#                                                when the muc module exists)
#
# idle: IDLE_SESSIONS (10000) sessions log in at full speed (login rate and
#       p50/p99 latency), then the server's VmRSS per session is read.
# chat: CHAT_USERS (2000) users send one-to-one messages to random online
#       users at each rate of RATES (1000,4000,8000,16000) for STEP (10s)
#       each; SATURATE=1 then raises the rate until p99 > 100 ms or a loss.
# muc:  MUC_USERS (2000) users in rooms of 50 send groupchat messages at each
#       rate of MUC_RATES (200,1000,2000); SATURATE=1 as above.
#
# TRANSPORT=websocket or TRANSPORT=bosh runs the scenarios over that web
# transport instead of XMPP over TCP (the default, TRANSPORT=tcp): the
# configuration then has the [http] server on loopback and the websocket or
# bosh module, and metronome-load gets --transport and --url (wss:// or
# https:// on the HTTPS listener; WEB_TLS=0: ws:// or http:// on the plain
# one). Their JSON files are named <transport>-<scenario>.json.
#
# LOAD_ARGS adds metronome-load flags to every scenario (e.g. "--relogin
# --tls-resume" to measure logins of clients that kept their salted
# password and TLS session). DISABLE_MODULES (space-separated) turns
# modules off, e.g. "mam" to measure routing without archiving.
#
# The JSON results go to OUT (default: a results/ directory in the work
# directory, kept); the tables go to stdout. Figures are reported, never
# asserted. Everything the script started is stopped by PID.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

scenarios=("$@")
[[ ${#scenarios[@]} -gt 0 ]] || scenarios=(idle chat muc)
OUT=${OUT:-$WORK/results}
KEEP=1
mkdir -p "$OUT"

transport_setup

load_pin=()
if [[ $(nproc) -ge 2 ]]; then
	export SERVER_CPU=${SERVER_CPU:-0}
	load_pin=(taskset -c "${LOAD_CPU:-1}")
else
	log "one CPU only: server and load tool share it"
fi

build
sat=()
[[ -n ${SATURATE:-} ]] && sat=(--saturate)

for sc in "${scenarios[@]}"; do
	case $sc in
	idle) n=${IDLE_SESSIONS:-10000} ;;
	chat) n=${CHAT_USERS:-2000} ;;
	muc)
		n=${MUC_USERS:-2000}
		if ! "$BIN/metronomectl" hooks 2>/dev/null | grep -q 'mod\.muc\b' && ! grep -rqs 'package muc' "$ROOT/modules/muc"; then
			log "muc: no muc module in this build; skipped"
			continue
		fi
		export MUC=1
		;;
	*) die "unknown scenario $sc (idle, chat, muc)" ;;
	esac
	raise_nofile "$(session_fds "$n")"
	BOSH_MAX_SESSIONS=$((n + 1000))
	write_config
	rm -rf "$WORK/data"
	import_users "$n"
	start_server
	sleep 3 # let start-up garbage be collected before the first reading
	target_args
	json=$OUT/$sc.json
	if [[ $TRANSPORT != tcp ]]; then json=$OUT/$TRANSPORT-$sc.json; fi
	common=("${TARGET[@]}" --user 'load%d@localhost' --password "$PASSWORD" --sessions "$n"
		--server-pid "$SERVER_PID" --concurrency 64 --json "$json" --duration 1h)
	# shellcheck disable=SC2206
	[[ -n ${LOAD_ARGS:-} ]] && common+=($LOAD_ARGS)
	case $sc in
	idle) "${load_pin[@]}" "$BIN/metronome-load" idle "${common[@]}" --settle "${SETTLE:-20s}" --hold "${SETTLE:-20s}" ;;
	chat) "${load_pin[@]}" "$BIN/metronome-load" chat "${common[@]}" --rates "${RATES:-1000,4000,8000,16000}" --step "${STEP:-10s}" "${sat[@]}" ;;
	muc) "${load_pin[@]}" "$BIN/metronome-load" muc "${common[@]}" --rates "${MUC_RATES:-200,1000,2000}" --step "${STEP:-10s}" --room-size 50 "${sat[@]}" ;;
	esac || log "$sc: metronome-load reported a failure (see above)"
	stop_pid "$SERVER_PID" 60
	wait "$SERVER_PID" 2>/dev/null || true
	unset MUC
done
log "JSON results in $OUT"
