#!/usr/bin/env bash
# Runs every bench on two checkouts in one sitting, alternated (A, B, A, B...), and keeps their
# RESULT lines: the figures of docs/performance.md's engine comparison.
#
#   bash bench/compare-engines.sh BEFORE_DIR [ROUNDS] [BENCHES]
#
# BEFORE_DIR is a checkout of the code before the engine change (FerretDB 1.24 on the system's
# PostgreSQL, `--handler=postgresql`), e.g. `git worktree add --detach ../before f679152` and its
# own `bash scripts/setup.sh`. This checkout runs on FerretDB 2 + DocumentDB. ROUNDS defaults to
# 2; BENCHES to "floors throughput webhooks webhooks-after list retention". The list bench seeds
# its million entries once per side (kept in .mailroom/bench-list, or the before side's database
# mailroom_bench_list) and then only measures. Output: .mailroom/bench-compare/<time>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
AFTER=$PWD
BEFORE=$(cd "${1:?usage: bench/compare-engines.sh BEFORE_DIR [ROUNDS] [BENCHES]}" && pwd)
ROUNDS=${2:-2}
BENCHES=${3:-floors throughput webhooks webhooks-after list retention}
OUT=$AFTER/.mailroom/bench-compare/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

# bench name → arguments (the before side adds --handler=postgresql, and keeps its list seed in a database)
args() {
  case $1 in
    floors) echo "bench/floors.bench.ts" ;;
    throughput) echo "bench/throughput.bench.ts --emails=5000 --via=both" ;;
    webhooks) echo "bench/webhooks.bench.ts" ;;
    webhooks-after) echo "bench/webhooks.bench.ts --worker-after" ;;
    list) echo "bench/email-log-list.bench.ts --rows=1000000 --share=0.01" ;;
    retention) echo "bench/retention.bench.ts --old=1000000 --fresh=100000" ;;
    *) echo "unknown bench $1" >&2; exit 2 ;;
  esac
}

run() { # side dir bench round
  local side=$1 dir=$2 bench=$3 round=$4 extra=()
  if [ "$side" = before ]; then
    extra+=(--handler=postgresql)
    [ "$bench" = list ] && extra+=(--keep-db=mailroom_bench_list)
  else
    [ "$bench" = list ] && extra+=(--keep-dir="$AFTER/.mailroom/bench-list")
  fi
  local log="$OUT/$bench.$side.$round.log"
  echo "[compare] $(date -u +%H:%M:%S) $bench on $side, round $round"
  # shellcheck disable=SC2046
  (cd "$dir" && pnpm exec tsx $(args "$bench") "${extra[@]}") >"$log" 2>&1 || echo "[compare] $bench on $side failed: see $log"
  grep -E 'RESULT|p95|events/s|entries/s' "$log" | sed "s/^/[$side $round] /" | tee -a "$OUT/summary.txt" || true
}

for bench in $BENCHES; do
  for round in $(seq 1 "$ROUNDS"); do
    # Alternate which side goes first, so neither always runs on a warmer or quieter machine.
    if [ $((round % 2)) -eq 1 ]; then
      run before "$BEFORE" "$bench" "$round"
      run after "$AFTER" "$bench" "$round"
    else
      run after "$AFTER" "$bench" "$round"
      run before "$BEFORE" "$bench" "$round"
    fi
  done
done
echo "[compare] done: $OUT/summary.txt"
