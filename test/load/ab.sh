#!/usr/bin/env bash
# ab.sh — compare two builds of the server by the instructions and cycles
# it spends per chat message, counted by the CPU (perf stat), which varies
# far less from run to run than CPU time on a shared machine.
#
#   test/load/ab.sh DIR_A DIR_B [RUNS] [RATE]
#
# DIR_A and DIR_B each hold metronome, metronomectl and metronome-load
# (go build -o DIR/ ./cmd/metronome ./cmd/metronomectl ./cmd/metronome-load).
# For each of RUNS (2) rounds, A then B: bench.sh chat at RATE (1000) msg/s
# for 30 s with MAM off; 8 s after the sessions are up, perf stat counts
# the server's user and kernel instructions and cycles for 15 s. Prints one
# line per run, per message:
#   A1 instr/msg u=39438 k=40881  cycles/msg u=102710 k=120124
# Needs perf and hardware counters; everything it starts stops by itself.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
a=${1:?usage: $0 DIR_A DIR_B [RUNS] [RATE]}
b=${2:?usage: $0 DIR_A DIR_B [RUNS] [RATE]}
runs=${3:-2}
rate=${4:-1000}
command -v perf >/dev/null || { echo "ab.sh: perf is not installed" >&2; exit 1; }
out=$(mktemp -d "${TMPDIR:-/tmp}/metronome-ab.XXXXXX")
for ((r = 1; r <= runs; r++)); do
	for v in A B; do
		dir=$a
		[[ $v == B ]] && dir=$b
		log=$out/$v$r.log
		OUT=$out/$v$r PREBUILT=$dir DISABLE_MODULES=mam RATES=$rate STEP=30s \
			timeout 600 "$here/bench.sh" chat >"$log" 2>&1 &
		bench=$!
		until grep -q '^\(UP\|FAILED\)' "$log" 2>/dev/null; do
			kill -0 "$bench" 2>/dev/null || { echo "ab.sh: bench.sh ended early, see $log" >&2; exit 1; }
			sleep 0.5
		done
		sleep 8
		pid=$(awk '/server pid/ {for (i = 1; i <= NF; i++) if ($i == "pid") print $(i + 1)}' "$log" | head -1)
		perf stat -x, -e instructions:u,instructions:k,cycles:u,cycles:k -p "$pid" -- sleep 15 2>"$out/$v$r.perf"
		wait "$bench" || true
		awk -F, -v n=$((rate * 15)) -v tag="$v$r" '{v[$3] = $1}
			END {printf "%s instr/msg u=%d k=%d  cycles/msg u=%d k=%d\n", tag,
				v["instructions:u"] / n, v["instructions:k"] / n, v["cycles:u"] / n, v["cycles:k"] / n}' "$out/$v$r.perf"
	done
done
echo "logs in $out"
