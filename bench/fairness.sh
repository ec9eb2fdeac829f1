#!/bin/sh
# bench/fairness.sh: one tenant's puts through tmemd alone, beside an
# honest tenant putting as hard, and beside a tenant that churns
# (persistent puts and flushes that make compaction run, ephemeral puts past
# the budget that make eviction run) — issue 11.  Run by `make bench`.
#
# Starts a tmemd of its own (budget TMEM_FAIR_BUDGET, default 64M, so the
# churner's ephemeral pages are evicted all along) and runs
# `tmem bench fairness` ROUNDS times (TMEM_BENCH_ROUNDS, default 3; phases
# of TMEM_FAIR_SECONDS, default 3).  Targets (medians over the rounds):
#   victim's rate beside the churner >= 0.7 x its rate beside the honest tenant
# and it prints the victim's put p99 beside the churner against alone.
# PASS/MISS is a report: the exit status is non-zero only when a run failed.
BUILD=${BUILD:-build}
CORPUS=${TMEM_CORPUS:-../shared/corpus/pages-a.bin.zst}
ROUNDS=${TMEM_BENCH_ROUNDS:-3}
SECONDS_A_PHASE=${TMEM_FAIR_SECONDS:-3}
BUDGET=${TMEM_FAIR_BUDGET:-64M}

if [ ! -r "$CORPUS" ]; then
    echo "fairness bench: corpus $CORPUS is absent: nothing measured (SKIPPED)"
    exit 0
fi
tmp=$(mktemp -d)
"$BUILD/tmemd" --socket "$tmp/sock" --budget "$BUDGET" --foreground \
    2>"$tmp/tmemd.log" &
dpid=$!
trap 'kill $dpid 2>/dev/null; wait $dpid 2>/dev/null; rm -rf "$tmp"' EXIT
i=0
while [ ! -S "$tmp/sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
[ -S "$tmp/sock" ] || { echo "fairness bench: tmemd did not start"; cat "$tmp/tmemd.log"; exit 1; }

r=1
while [ $r -le "$ROUNDS" ]; do
    TMEM_EMBEDDED=0 "$BUILD/tmem" --socket "$tmp/sock" bench fairness \
        --corpus "$CORPUS" --seconds "$SECONDS_A_PHASE" >"$tmp/round$r" ||
        { echo "fairness bench: round $r failed"; cat "$tmp/round$r"; exit 1; }
    cat "$tmp/round$r"
    r=$((r + 1))
done
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
ratio=$(grep -h "beside churner / beside honest" "$tmp"/round* |
    sed -E 's/.*: ([0-9.]+) \(.*/\1/' | median)
p99=$(grep -h "p99 beside churner / alone" "$tmp"/round* |
    sed -E 's/.*: ([0-9.]+)$/\1/' | median)
"$BUILD/tmem" --socket "$tmp/sock" stats 2>/dev/null |
    grep -E "evict_inline|compact_background" | sed 's/^/  tmemd: /'
verdict=$(awk -v r="$ratio" 'BEGIN {print (r >= 0.7) ? "PASS" : "MISS"}')
echo "fairness: victim beside churner / beside honest, median of $ROUNDS: $ratio (target >= 0.70): $verdict"
echo "fairness: victim put p99 beside churner / alone, median of $ROUNDS: $p99"
