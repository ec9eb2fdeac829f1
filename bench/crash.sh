#!/bin/sh
# bench/crash.sh: recovery time after a crash (issue 12;
# docs/persistence.md "After a crash"), per GiB of persistent pages,
# against `cat` of the same arena files to /dev/null (the same bytes read
# once, same run).  Run by `make bench` (scripts/bench.sh sets BUILD).
#
# A tmemd with --state-dir in /dev/shm (tmpfs, as /run/tmem/state is), a
# tenant (bench/crash_bench.c) putting TMEM_CRASH_PAGES corpus pages
# (default 262144: 1 GiB; each made its own) into a persistent pool;
# kill -9 of tmemd; `cat` of the arena files it left; tmemd started
# again, its log's recovery line read; the tenant, as a new process,
# checks every page byte for byte.  Exits non-zero when a page is lost or
# differs.
BUILD=${BUILD:-build}
CORPUS=${TMEM_CORPUS:-../shared/corpus/pages-a.bin.zst}
PAGES=${TMEM_CRASH_PAGES:-262144}
BIN="$BUILD/bench/crash_bench"
say() { echo "crash bench: $*"; }
if [ ! -r "$CORPUS" ]; then
    say "corpus $CORPUS is absent: nothing measured (SKIPPED)"; exit 0
fi
. scripts/bench_cc.sh
bench_cc crash_bench "$BIN" || { say "cannot build $BIN"; exit 1; }
dir=/dev/shm
[ -d "$dir" ] && [ -w "$dir" ] || dir=${TMPDIR:-/tmp}
tmp=$(mktemp -d "$dir/tmem-crash-bench.XXXXXX")
DPID=""; TPID=""
cleanup() {
    [ -n "$TPID" ] && kill -9 "$TPID" 2>/dev/null
    [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
start() {
    "$BUILD/tmemd" --socket "$tmp/s" --budget 8G --foreground \
        --state-dir "$tmp/state" 2> "$tmp/d$1.log" &
    DPID=$!
    # serving once what a crash left is recovered
    for i in $(seq 600); do
        grep -q "serving on" "$tmp/d$1.log" 2>/dev/null && return 0; sleep 0.1; done
    say "tmemd did not start"; cat "$tmp/d$1.log"; exit 1
}
now() { date +%s.%N; }
start 1
"$BIN" put "$tmp/s" "$CORPUS" "$PAGES" > "$tmp/put.out" 2>&1 &
TPID=$!
for i in $(seq 1200); do
    grep -q ready "$tmp/put.out" 2>/dev/null && break
    kill -0 "$TPID" 2>/dev/null || break; sleep 0.1; done
grep -q ready "$tmp/put.out" || { say "the tenant failed"; cat "$tmp/put.out"; exit 1; }
kill -9 "$DPID"; wait "$DPID" 2>/dev/null; DPID=""
kill -9 "$TPID"; wait "$TPID" 2>/dev/null; TPID=""
rm -f "$tmp/s"
files=$(du -sb "$tmp/state/arenas" | cut -f1)
t0=$(now); cat "$tmp"/state/arenas/*.tma > /dev/null; t1=$(now)
start 2
line=$(grep "recovered after a crash" "$tmp/d2.log")
[ -n "$line" ] || { say "nothing recovered"; cat "$tmp/d2.log"; exit 1; }
"$BIN" check "$tmp/s" "$CORPUS" "$PAGES" || { say "PAGES LOST OR WRONG"; exit 1; }
kill "$DPID"; wait "$DPID" 2>/dev/null; DPID=""
secs=$(echo "$line" | sed -n 's/.* in \([0-9.]*\) s,.*/\1/p')
echo "$line" | sed 's/^[^ ]* tmemd: /tmemd: /'
awk -v s="$secs" -v a="$t0" -v b="$t1" -v p="$PAGES" -v f="$files" 'BEGIN {
    gib = p * 4096 / 1073741824; c = b - a;
    printf "recovery of %d pages (%.2f GiB of pages, %.0f MiB of arena files): %.2f s, %.2f s per GiB of pages; cat of the files to /dev/null %.3f s: recovery / cat %.1f\n", p, gib, f / 1048576, s, s / gib, c, (c > 0 ? s / c : 0) }'
