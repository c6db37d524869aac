# Helpers shared by the load scripts (sourced, not run): a throwaway work
# directory, the binaries, a server on free loopback ports, and cleanup of
# exactly the processes the script started.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/metronome-load.XXXXXX")
BIN=$WORK/bin
CONFIG=$WORK/metronome.toml
PASSWORD=load-secret
STARTED_PIDS=()

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# stop_pid PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 20).
stop_pid() {
	local pid=$1 wait=${2:-20} i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < wait * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	log "process $pid did not stop after ${wait}s; killing it"
	kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? i
	# Newest first: the load tool before the server.
	for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
		stop_pid "${STARTED_PIDS[i]}"
		wait "${STARTED_PIDS[i]}" 2>/dev/null || true
	done
	if [[ $rc -ne 0 || -n ${KEEP:-} ]]; then
		log "logs and data kept in $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# session_fds N: the open files each side needs for N sessions: one
# connection per session, two with BOSH (a held request and the next).
session_fds() {
	if [[ ${TRANSPORT:-tcp} == bosh ]]; then echo $((2 * $1 + 1024)); else echo $(($1 + 1024)); fi
}

# raise_nofile N: make sure this shell (and so its children) may open N files.
raise_nofile() {
	local need=$1
	if [[ $(ulimit -Sn) != unlimited && $(ulimit -Sn) -lt $need ]]; then
		if [[ $(ulimit -Hn) != unlimited && $(ulimit -Hn) -lt $need ]]; then
			ulimit -Hn "$need" 2>/dev/null || die "ulimit -n: need $need open files, the hard limit is $(ulimit -Hn) (raise it, or use fewer sessions)"
		fi
		ulimit -Sn "$need"
	fi
	log "open files limit: $(ulimit -Sn)"
}

# build: the binaries into $BIN, from the work tree; with PREBUILT set, copied
# from that directory instead (the same binaries for a series of runs while
# the tree changes).
build() {
	if [[ -n ${PREBUILT:-} ]]; then
		log "using the binaries of $PREBUILT"
		mkdir -p "$BIN"
		cp "$PREBUILT/metronome" "$PREBUILT/metronomectl" "$PREBUILT/metronome-load" "$BIN/"
		return
	fi
	log "building metronome, metronomectl and metronome-load"
	(cd "$ROOT" && go build -o "$BIN/" ./cmd/metronome ./cmd/metronomectl ./cmd/metronome-load)
}

# write_config: SQLite in $WORK/data, the default modules (plus those in
# ENABLE_MODULES, less those in DISABLE_MODULES, space-separated), SQLite's
# synchronous mode from SQLITE_SYNC (default full), listeners on
# loopback port 0 (the kernel picks free ports; start_server reads them
# back from the log), no idle pings during a run. With HTTP set, the
# [http] server too, on an HTTPS and a plain loopback listener; with bosh
# enabled, BOSH_MAX_SESSIONS (default 10000) as its max_sessions.
write_config() {
	cat >"$CONFIG" <<TOML
[server]
data_dir = "$WORK/data"
log_level = "info"

scram_hashes = ["SHA-1", "SHA-256"]

[storage]
default = "sqlite"
sqlite = { synchronous = "${SQLITE_SYNC:-full}" }

[listen]
c2s = ["127.0.0.1:0"]
c2s_tls = ["127.0.0.1:0"]

[c2s]
idle_timeout = "1h"

[host."localhost"]
TOML
	local m enable="" disable="" mods=()
	for m in ${ENABLE_MODULES:-}; do enable+="\"$m\", "; done
	for m in ${DISABLE_MODULES:-}; do disable+="\"$m\", "; done
	[[ -n $enable ]] && mods+=("enable = [${enable%, }]")
	[[ -n $disable ]] && mods+=("disable = [${disable%, }]")
	if [[ ${#mods[@]} -gt 0 ]]; then
		local IFS=,
		echo "modules = { ${mods[*]} }" >>"$CONFIG"
	fi
	if [[ -n ${HTTP:-} ]]; then
		cat >>"$CONFIG" <<TOML

[http]
listen_tls = ["127.0.0.1:0"]
listen = ["127.0.0.1:0"]
TOML
	fi
	if [[ " ${ENABLE_MODULES:-} " == *" bosh "* ]]; then
		cat >>"$CONFIG" <<TOML

[modules.bosh]
max_sessions = ${BOSH_MAX_SESSIONS:-10000}
TOML
	fi
	if [[ -n ${MUC:-} ]]; then
		cat >>"$CONFIG" <<TOML

[component."conference.localhost"]
module = "muc"
TOML
	fi
}

# import_users N: accounts load0..load(N-1)@localhost, all with $PASSWORD.
import_users() {
	local n=$1
	seq 0 $((n - 1)) | sed "s/.*/load&@localhost $PASSWORD/" >"$WORK/users.txt"
	log "importing $n accounts"
	"$BIN/metronomectl" --config "$CONFIG" user import "$WORK/users.txt" >&2
}

# start_server: sets SERVER_PID, C2S_ADDR and TLS_ADDR, and with HTTP set
# HTTPS_ADDR and HTTP_ADDR.
# With SERVER_CPU set, the server is pinned to that CPU (taskset).
start_server() {
	local pin=()
	[[ -n ${SERVER_CPU:-} ]] && pin=(taskset -c "$SERVER_CPU")
	# Created first: the loop below may read it before the shell that
	# starts the server has opened it (sed would fail, and set -e end the
	# script).
	: >"$WORK/server.log"
	"${pin[@]}" "$BIN/metronome" --config "$CONFIG" >"$WORK/server.log" 2>&1 &
	SERVER_PID=$!
	STARTED_PIDS+=("$SERVER_PID")
	local i up=
	for ((i = 0; i < 300; i++)); do
		C2S_ADDR=$(sed -n 's/.*msg=listening kind=c2s addr=\([^ ]*\).*/\1/p' "$WORK/server.log" | head -n1)
		TLS_ADDR=$(sed -n 's/.*msg=listening kind=c2s_tls addr=\([^ ]*\).*/\1/p' "$WORK/server.log" | head -n1)
		up=${C2S_ADDR:+${TLS_ADDR:+1}}
		if [[ -n ${HTTP:-} ]]; then
			HTTPS_ADDR=$(sed -n 's/.*msg=listening.* kind=https addr=\([^ ]*\).*/\1/p' "$WORK/server.log" | head -n1)
			HTTP_ADDR=$(sed -n 's/.*msg=listening.* kind=http addr=\([^ ]*\).*/\1/p' "$WORK/server.log" | head -n1)
			[[ -n $HTTPS_ADDR && -n $HTTP_ADDR ]] || up=
		fi
		[[ -n $up ]] && break
		kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "the server exited"; }
		sleep 0.1
	done
	[[ -n $up ]] || { cat "$WORK/server.log" >&2; die "the server did not listen within 30s"; }
	log "server pid $SERVER_PID listening on $C2S_ADDR (STARTTLS) and $TLS_ADDR (direct TLS)${HTTP:+, $HTTPS_ADDR (HTTPS) and $HTTP_ADDR (HTTP)}"
}

# transport_setup: TRANSPORT is tcp (the default), websocket or bosh. For
# the web transports, the configuration write_config writes gets the [http]
# server and the transport's module.
transport_setup() {
	TRANSPORT=${TRANSPORT:-tcp}
	case $TRANSPORT in
	tcp) ;;
	websocket | bosh)
		HTTP=1
		ENABLE_MODULES="${ENABLE_MODULES:-} $TRANSPORT"
		;;
	*) die "TRANSPORT=$TRANSPORT: tcp, websocket or bosh" ;;
	esac
}

# target_args: after start_server, sets TARGET to the metronome-load flags
# that reach the server over TRANSPORT: --addr for tcp; for the web
# transports --transport and --url, wss:// or https:// on the HTTPS
# listener (WEB_TLS=0: ws:// or http:// on the plain one).
target_args() {
	local path=/xmpp-websocket scheme=ws
	case $TRANSPORT in
	tcp)
		TARGET=(--addr "$C2S_ADDR")
		return
		;;
	bosh) path=/http-bind scheme=http ;;
	esac
	if [[ ${WEB_TLS:-1} == 0 ]]; then
		TARGET=(--transport "$TRANSPORT" --url "$scheme://$HTTP_ADDR$path")
	else
		TARGET=(--transport "$TRANSPORT" --url "${scheme}s://$HTTPS_ADDR$path")
	fi
}

# rss_kib PID: resident set size in KiB (VmRSS); hwm_kib: its peak (VmHWM).
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
