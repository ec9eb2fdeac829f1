#!/bin/sh
# bench/save.sh: save and restore throughput of a client's persistent
# pages (issue 12; docs/persistence.md) against `cat` of the stream file
# (the same bytes through the same file system, same run).  Run by
# `make bench` (scripts/bench.sh sets BUILD).
#
# Builds $BUILD/bench/save_bench (bench/save_bench.c): TMEM_SAVE_PAGES
# corpus pages (default 65536, 256 MiB; each made its own) into a
# persistent pool of the embedded store, saved to a file in /dev/shm
# (memory, as the pages are), restored into a second store and checked
# page by page, ROUNDS times (TMEM_BENCH_ROUNDS, default 3).  Each round
# also times `cat FILE > FILE2` and `cat FILE > /dev/null`.  Prints the
# median MiB/s of each and the ratios; exits non-zero only when a run
# failed or a page came back wrong.
BUILD=${BUILD:-build}
CORPUS=${TMEM_CORPUS:-../shared/corpus/pages-a.bin.zst}
ROUNDS=${TMEM_BENCH_ROUNDS:-3}
PAGES=${TMEM_SAVE_PAGES:-65536}
BIN="$BUILD/bench/save_bench"
if [ ! -r "$CORPUS" ]; then
    echo "save bench: corpus $CORPUS is absent: nothing measured (SKIPPED)"
    exit 0
fi
. scripts/bench_cc.sh
if ! bench_cc save_bench "$BIN"; then
    echo "save bench: cannot build $BIN"; exit 1
fi
dir=/dev/shm
[ -d "$dir" ] && [ -w "$dir" ] || dir=${TMPDIR:-/tmp}
tmp=$(mktemp -d "$dir/tmem-save-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }
rc=0
for r in $(seq "$ROUNDS"); do
    if ! "$BIN" "$CORPUS" "$PAGES" "$tmp/s" > "$tmp/r$r.json"; then
        echo "save bench: round $r FAILED"; cat "$tmp/r$r.json"; rc=1; continue
    fi
    mib=$(sed -n 's/.*"stream_mib": \([0-9.]*\).*/\1/p' "$tmp/r$r.json")
    t0=$(now); cat "$tmp/s" > "$tmp/c"; t1=$(now)
    cat "$tmp/s" > /dev/null; t2=$(now)
    rm -f "$tmp/c"
    awk -v m="$mib" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
        printf "%.0f %.0f\n", m / (b - a), m / (c - b) }' > "$tmp/cat$r"
    echo "round $r: $(cat "$tmp/r$r.json") cat to a file $(cut -d' ' -f1 "$tmp/cat$r") MiB/s, to /dev/null $(cut -d' ' -f2 "$tmp/cat$r") MiB/s"
done
[ $rc -eq 0 ] || exit $rc
med() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
save=$(cat "$tmp"/r*.json | sed -n 's/.*"save_mib_s": \([0-9.]*\).*/\1/p' | med)
rest=$(cat "$tmp"/r*.json | sed -n 's/.*"restore_mib_s": \([0-9.]*\).*/\1/p' | med)
catf=$(cut -d' ' -f1 "$tmp"/cat* | med)
catn=$(cut -d' ' -f2 "$tmp"/cat* | med)
awk -v s="$save" -v r="$rest" -v f="$catf" -v n="$catn" -v p="$PAGES" 'BEGIN {
    printf "save/restore of %d pages (medians of the rounds): save %d MiB/s, restore %d MiB/s of stream; cat to a file %d MiB/s, to /dev/null %d MiB/s\n", p, s, r, f, n;
    printf "save / cat to a file %.2f, restore / cat to a file %.2f (restore / cat to /dev/null %.2f)\n", s / f, r / f, r / n }'
