#!/bin/sh
# bench/pagein.sh: tswap's page-in latency against the kernel's swap-in
# from zram, same run, same pages (issue 10).  Run by `make bench`
# (scripts/bench.sh sets BUILD).
#
# Builds $BUILD/bench/pagein (bench/pagein.c) and runs it ROUNDS times
# (TMEM_BENCH_ROUNDS, default 3) on TMEM_PAGEIN_PAGES corpus pages
# (default 4096): tswap on the embedded store, tswap through a tmemd of
# its own, and (as root) the kernel's swap-in from a zram device it makes
# and removes.  Prints each round's JSON, then the median ratios against
# the target: tswap p50 <= 1.5 x the kernel's (PASS/MISS is a report; the
# exit status is non-zero only when a run failed or a page came back
# wrong).
#
# Corpus: TMEM_CORPUS, default ../shared/corpus/pages-a.bin.zst.
BUILD=${BUILD:-build}
CORPUS=${TMEM_CORPUS:-../shared/corpus/pages-a.bin.zst}
ROUNDS=${TMEM_BENCH_ROUNDS:-3}
PAGES=${TMEM_PAGEIN_PAGES:-4096}
BIN="$BUILD/bench/pagein"

if [ ! -r "$CORPUS" ]; then
    echo "pagein bench: corpus $CORPUS is absent: nothing measured (SKIPPED)"
    exit 0
fi
if [ ! -x "$BUILD/tmemd" ]; then
    echo "pagein bench: $BUILD/tmemd not built"; exit 1
fi
. scripts/bench_cc.sh
if ! bench_cc pagein "$BIN"; then
    echo "pagein bench: cannot build $BIN"; exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rc=0
r=1
while [ "$r" -le "$ROUNDS" ]; do
    if "$BIN" --corpus "$CORPUS" --pages "$PAGES" --tmemd "$BUILD/tmemd" \
            >"$tmp/$r.json"; then
        echo "round $r: $(cat "$tmp/$r.json")"
    else
        echo "pagein bench: round $r FAILED"; cat "$tmp/$r.json"; rc=1
    fi
    r=$((r + 1))
done

# median FIELD: the median over rounds of a numeric JSON field.
median() {
    for f in "$tmp"/*.json; do
        sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" "$f"
    done | sort -n | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]}'
}

emb=$(median ratio_p50_embedded)
dmn=$(median ratio_p50_tmemd)
if [ -z "$emb" ]; then
    echo "pagein bench: no kernel figure (see \"skipped\" above): no ratio"
    exit $rc
fi
verdict() { awk -v r="$1" 'BEGIN { print (r <= 1.5) ? "PASS" : "MISS" }'; }
echo "pagein: tswap p50 / kernel zram swap-in p50 (median of $ROUNDS):" \
     "embedded ${emb}x $(verdict "$emb"), tmemd ${dmn}x $(verdict "$dmn")" \
     "(target <= 1.5x)"
exit $rc
