#!/usr/bin/env bash
# Runs bench/throughput.bench.ts on two or more checkouts in one sitting, the order rotated each
# round (A B, B A, …), and keeps their per-round ratio lines: how a change of the API or the
# worker was judged against the floors (docs/performance.md).
#
#   bash bench/alternate-throughput.sh ROUNDS NAME=DIR [NAME=DIR ...] [-- BENCH ARGS]
#   e.g. bash bench/alternate-throughput.sh 2 before=../before after=. -- --via=library --rounds=3
#
# Each DIR is a checkout with its own node_modules (`pnpm install --offline`) and the engine
# (`bash scripts/setup.sh`, or a link to another checkout's .mailroom/bin). Output:
# .mailroom/bench-alternate/<time>/ (one log per run, summary.txt with the RESULT lines).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS=${1:?usage: bench/alternate-throughput.sh ROUNDS NAME=DIR [NAME=DIR ...] [-- BENCH ARGS]}
shift
SIDES=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do SIDES+=("$1"); shift; done
[ $# -gt 0 ] && shift
OUT=$PWD/.mailroom/bench-alternate/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
n=${#SIDES[@]}
for round in $(seq 1 "$ROUNDS"); do
  for k in $(seq 0 $((n - 1))); do
    side=${SIDES[$(((k + round - 1) % n))]}
    name=${side%%=*}
    dir=$(cd "${side#*=}" && pwd)
    log="$OUT/$name.$round.log"
    echo "[alternate] $(date -u +%H:%M:%S) $name, round $round"
    (cd "$dir" && pnpm exec tsx bench/throughput.bench.ts "$@") >"$log" 2>&1 || echo "[alternate] $name failed: see $log"
    grep -E 'RESULT round|RESULT ratios' "$log" | sed "s/^/[$name $round] /" | tee -a "$OUT/summary.txt" || true
  done
done
