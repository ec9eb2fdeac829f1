#!/bin/sh
# make demo (until the multi-tenant demo exists): puts the pages of the
# shared corpus through an embedded store with `tmem bench store` and shows
# what was stored, how much memory it took and how fast it went, then the
# same pages with each codec.  Run from the repository root; BUILD is set by
# make.  Corpus: TMEM_CORPUS, default ../shared/corpus/pages-a.bin.zst.
BUILD=${BUILD:-build}
CORPUS=${TMEM_CORPUS:-../shared/corpus/pages-a.bin.zst}
TMEM="$BUILD/tmem"

if [ ! -r "$CORPUS" ]; then
    echo "demo: the corpus $CORPUS is absent."
    echo "      It holds 4 KiB pages of real process heaps (raw or .zst);"
    echo "      put it there, or point TMEM_CORPUS at any such file."
    exit 1
fi
[ -x "$TMEM" ] || { echo "demo: $TMEM is not built (run make demo)"; exit 1; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT

# bench ARGS...: runs the store bench into $out; stops the demo on failure.
bench() {
    if ! "$TMEM" bench store --corpus "$CORPUS" --json "$@" >"$out"; then
        echo "demo: tmem bench store $* failed"; exit 1
    fi
}

# j KEY: one field of the last run.
j() { sed -n "s/.*\"$1\": \"*\([^,}\"]*\).*/\1/p" "$out"; }

# calc EXPR: awk arithmetic, printf-formatted by the first argument.
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

mib() { calc "%.1f MiB" "$1 / 1048576"; }

bench --threads 1
pages=$(j pages)
echo "tmem demo: an embedded tmem store (one client, one persistent pool," \
    "LZ4)"
echo "takes $pages pages ($(mib "$(j orig_bytes)")) sampled from the heaps" \
    "of real processes"
echo "($CORPUS); every page is then read back"
echo "and compared byte for byte."
echo
echo "What it stored"
printf '  %-26s %8s\n' "pages" "$pages"
printf '  %-26s %8s  (%s of the pages; no data stored)\n' \
    "zero or same-filled" "$(j zero_pages)" \
    "$(calc '%.0f%%' "100 * $(j zero_pages) / $pages")"
printf '  %-26s %8s  (share the data of an identical page)\n' \
    "deduplicated" "$(j dedup_pages)"
printf '  %-26s %8s  (compressed badly: kept as they are)\n' \
    "stored raw" "$(j raw_pages)"
printf '  %-26s %8s\n' "distinct contents" "$(j unique_blobs)"
echo
echo "How much memory"
printf '  %-26s %8s  (data %s + metadata %s)\n' "used" \
    "$(mib "$(j used_bytes)")" "$(mib "$(j data_bytes)")" \
    "$(mib "$(j meta_bytes)")"
printf '  %-26s %8s  (original / used: %s -> %s)\n' "ratio" \
    "$(calc '%.2fx' "$(j ratio)")" "$(mib "$(j orig_bytes)")" \
    "$(mib "$(j used_bytes)")"
echo
echo "How fast (1 thread, each operation timed on its own)"
printf '  %-26s %8s pages/s   p50 %.1f us   p99 %.1f us\n' "put" \
    "$(calc '%.0f' "$(j put_pages_per_s)")" "$(j put_us_p50)" \
    "$(j put_us_p99)"
printf '  %-26s %8s pages/s   p50 %.1f us   p99 %.1f us\n' "get" \
    "$(calc '%.0f' "$(j get_pages_per_s)")" "$(j get_us_p50)" \
    "$(j get_us_p99)"
echo
echo "The same pages with each codec"
printf '  %-8s %8s %10s %12s %12s\n' codec ratio "used" "put p50 us" \
    "get p50 us"
for c in lz4 zstd none; do
    bench --compress "$c"
    printf '  %-8s %8s %10s %12.1f %12.1f\n' "$c" \
        "$(calc '%.2fx' "$(j ratio)")" "$(mib "$(j used_bytes)")" \
        "$(j put_us_p50)" "$(j get_us_p50)"
done
echo
echo "make bench measures the same pages against the kernel's zram."
