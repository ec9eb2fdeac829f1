#!/bin/sh
# bench/daemon.sh: the store through tmemd against the embedded store, same
# run (issue 3).  Run by `make bench` (scripts/bench.sh sets BUILD).
#
# Starts one tmemd of its own on a temporary socket, then runs
# `tmem bench daemon` with 1 and with 2 tenant processes (batches of
# TMEM_BENCH_BATCH pages, default 64; --rounds TMEM_BENCH_ROUNDS, default
# 3, best reported; --repeat TMEM_BENCH_REPEAT passes, default 8).  Each
# run also measures the embedded store with as many threads as tenants and
# the same batches, so the ratios compare figures from the same moment.
# Targets:
#   batched put and get pages/s through tmemd >= 70% of the embedded store
#   2 tenants together >= 1.5 x 1 tenant (put and get)
# PASS/MISS is a report: the exit status is non-zero only when a run failed
# or a page came back wrong.
#
# Corpus: TMEM_CORPUS, default ../shared/corpus/pages-a.bin.zst.
BUILD=${BUILD:-build}
CORPUS=${TMEM_CORPUS:-../shared/corpus/pages-a.bin.zst}
ROUNDS=${TMEM_BENCH_ROUNDS:-3}
REPEAT=${TMEM_BENCH_REPEAT:-8}
BATCH=${TMEM_BENCH_BATCH:-64}
TMEM="$BUILD/tmem"
TMEMD="$BUILD/tmemd"
rc=0

if [ ! -r "$CORPUS" ]; then
    echo "daemon bench: corpus $CORPUS is absent: nothing measured (SKIPPED)"
    exit 0
fi
for p in "$TMEM" "$TMEMD"; do
    [ -x "$p" ] || { echo "daemon bench: $p not built"; exit 1; }
done

tmp=$(mktemp -d)
"$TMEMD" --socket "$tmp/sock" --foreground 2>"$tmp/tmemd.log" &
dpid=$!
trap 'kill $dpid 2>/dev/null; wait $dpid 2>/dev/null; rm -rf "$tmp"' EXIT
i=0
while [ ! -S "$tmp/sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
[ -S "$tmp/sock" ] || { echo "daemon bench: tmemd did not start"; \
    cat "$tmp/tmemd.log"; exit 1; }

# jget KEY FILE: one field of a flat JSON object.
jget() {
    sed -n "s/.*\"$1\": \"*\([^,}\"]*\).*/\1/p" "$2"
}

for n in 1 2; do
    if ! timeout 900 "$TMEM" --socket "$tmp/sock" bench daemon --corpus "$CORPUS" \
            --clients $n --batch "$BATCH" --rounds "$ROUNDS" \
            --repeat "$REPEAT" --json \
            >"$tmp/c$n.json" 2>"$tmp/err"; then
        echo "daemon bench: FAILED with $n clients"; cat "$tmp/err"; exit 1
    fi
done

# verdict NAME VALUE TARGET: PASS when VALUE >= TARGET.
verdict() {
    awk -v n="$1" -v v="$2" -v t="$3" 'BEGIN {
        printf "  %-44s %8.3f  (target >= %s)  %s\n", n, v, t,
               (v >= t ? "PASS" : "MISS") }'
}

c1="$tmp/c1.json"; c2="$tmp/c2.json"
printf '%-28s %14s %14s\n' "" "1 client" "2 clients"
for k in cpus pages put_pages_per_s get_pages_per_s embedded_put_pages_per_s \
         embedded_get_pages_per_s put_cpus get_cpus put_us_p50 put_us_p99 get_us_p50 \
         get_us_p99 rtt_put_us_p50 rtt_put_us_p99 rtt_get_us_p50 \
         rtt_get_us_p99 orig_bytes used_bytes zero_pages dedup_pages; do
    printf '%-28s %14s %14s\n' "$k" "$(jget $k "$c1")" "$(jget $k "$c2")"
done
echo "targets (batch $BATCH, best of $ROUNDS rounds):"
verdict "put through tmemd / embedded (1 client)" \
    "$(jget put_ratio_vs_embedded "$c1")" 0.70
verdict "get through tmemd / embedded (1 client)" \
    "$(jget get_ratio_vs_embedded "$c1")" 0.70
verdict "put pages/s 2 clients / 1 client" \
    "$(awk -v a="$(jget put_pages_per_s "$c2")" \
        -v b="$(jget put_pages_per_s "$c1")" 'BEGIN{print a / b}')" 1.5
verdict "get pages/s 2 clients / 1 client" \
    "$(awk -v a="$(jget get_pages_per_s "$c2")" \
        -v b="$(jget get_pages_per_s "$c1")" 'BEGIN{print a / b}')" 1.5
# ratio KEY_A FILE_A KEY_B FILE_B [SCALE]: SCALE (default 1) x A / B.
ratio() {
    awk -v a="$(jget "$1" "$2")" -v b="$(jget "$3" "$4")" -v s="${5:-1}" \
        'BEGIN { printf "%.2f", (b > 0 ? s * a / b : 0) }'
}
echo "the machine (same run): the embedded store with 2 threads does" \
    "$(ratio embedded_put_pages_per_s "$c2" embedded_put_pages_per_s "$c1")x" \
    "puts and $(ratio embedded_get_pages_per_s "$c2" embedded_get_pages_per_s "$c1")x" \
    "gets of 1 thread;"
echo "2 tenants through tmemd do $(jget put_ratio_vs_embedded "$c2") of its" \
    "puts and $(jget get_ratio_vs_embedded "$c2") of its gets; 1 tenant keeps" \
    "$(jget put_cpus "$c1") / $(jget get_cpus "$c1") CPUs busy (spinning" \
    "included) in puts / gets"
# What 1.5x asks of this run, and what 2 tenants cost in CPU per page:
# the embedded store's 2 threads bound what 2 tenants can do on 2 CPUs.
us_per_page() { # CPUS PAGES_PER_S
    awk -v c="$1" -v r="$2" 'BEGIN { printf "%.2f", (r > 0 ? c / r * 1e6 : 0) }'
}
th=$(jget clients "$c2"); nc=$(jget cpus "$c2"); [ "$th" -lt "$nc" ] && nc=$th
echo "1.5x needs 2 tenants at" \
    "$(ratio put_pages_per_s "$c1" embedded_put_pages_per_s "$c2" 1.5) /" \
    "$(ratio get_pages_per_s "$c1" embedded_get_pages_per_s "$c2" 1.5) of the embedded" \
    "2-thread rate (puts / gets); CPU per page with 2 tenants:" \
    "$(us_per_page "$(jget put_cpus "$c2")" "$(jget put_pages_per_s "$c2")") /" \
    "$(us_per_page "$(jget get_cpus "$c2")" "$(jget get_pages_per_s "$c2")") us" \
    "through tmemd, at most" \
    "$(us_per_page "$nc" "$(jget embedded_put_pages_per_s "$c2")") /" \
    "$(us_per_page "$nc" "$(jget embedded_get_pages_per_s "$c2")") us embedded"
exit $rc
