#!/bin/sh
# bench/run_redis.sh: Debian's redis-server holding 256 MiB of 4 KiB values
# (KEYS, default 65536; values are pages of the corpus, so they compress
# as real heaps do) under three memory regimes, in one run:
#   tmem    `tmem run --budget 64M` through tmemd: heap over 64 MiB in the
#           store (tswap; faults fixed in the faulting thread)
#   kernel  a v1 memory cgroup limited to 64 MiB, swap on zram (lz4),
#           page-cluster 0: the kernel's own answer to the same problem
#   free    no limit, for scale
# Each: fill every key, read every key back (all must be correct).  Then
# redis-benchmark's uniform random GETs (-r KEYS, -d 4096, 8 clients, REQS
# requests), ROUNDS times (default 5), the tmem and kernel redis both up
# and their rounds interleaved (tmem first in odd rounds, kernel first in
# even ones): this machine's speed drifts over minutes, and a drift then
# moves both sides of a round alike.  What counts is the median of the
# rounds' tmem/kernel ratios.  The free regime runs after, for scale.
# Memory used (measured once every value is in and was read back), two ways:
#   as the issue counts it: tmem = redis's RSS (anonymous and file; not
#     the arena pages it maps read-only to read its own pages: those are
#     the daemon's) + tmemd's used_bytes (the store holds only this
#     tenant); kernel = the cgroup's usage + zram's mem_used_total;
#   like for like: the kernel's side counted as tmem's is, redis's RSS
#     (anonymous and file) + zram's mem_used_total.  The cgroup is not
#     charged for the file pages of redis's binary and libraries that
#     were in the page cache before it started (tmem's run loaded them),
#     yet they are in both processes' RSS.
# PACK_LEVEL (default 3, tmem run's own) sets --pack-level: 0 packs pages
# with LZ4's fast compressor, as zram's lz4 does.
# Targets: GET throughput tmem >= 0.8 x kernel, memory tmem <= kernel
# (both ways are reported; PASS needs both).
# PASS/MISS is a report; the exit status is non-zero when a run failed or
# a value came back wrong.  Needs root (zram, cgroups): skipped otherwise.
BUILD=${BUILD:-build}
CORPUS=${TMEM_CORPUS:-../shared/corpus/pages-a.bin.zst}
KEYS=${KEYS:-65536}
REQS=${REQS:-100000}
ROUNDS=${ROUNDS:-5}
BUDGET=${BUDGET:-64M}
PACK_LEVEL=${PACK_LEVEL:-3} # tmem run --pack-level (its default)
TMEM="$BUILD/tmem"
CG=/sys/fs/cgroup/memory
say() { echo "redis bench: $*"; }
for p in redis-server redis-benchmark redis-cli; do
    command -v $p >/dev/null || { say "$p missing, skipped"; exit 0; }; done
[ "$(id -u)" = 0 ] || { say "needs root (zram, cgroups), skipped"; exit 0; }
[ -e /sys/class/zram-control/hot_add ] || { say "no zram, skipped"; exit 0; }
[ -d "$CG" ] || { say "no v1 memory cgroup at $CG, skipped"; exit 0; }
[ -x "$TMEM" ] || { say "$TMEM not built"; exit 1; }
CORPUS_ARG=""
[ -r "$CORPUS" ] && CORPUS_ARG="--corpus $CORPUS"

tmp=$(mktemp -d)
ZDEV=""; k_dead=""; PGC=$(cat /proc/sys/vm/page-cluster); DPID=""; TPID=""; KPID=""; FPID=""
cleanup() {
    for p in $TPID $KPID $FPID; do kill -9 "$p" 2>/dev/null; done
    [ -n "$DPID" ] && kill "$DPID" 2>/dev/null
    if [ -n "$ZDEV" ]; then
        swapoff "/dev/zram$ZDEV" 2>/dev/null
        echo "$ZDEV" > /sys/class/zram-control/hot_remove 2>/dev/null
    fi
    echo "$PGC" > /proc/sys/vm/page-cluster
    [ -d "$CG/tmem-redis-bench" ] && rmdir "$CG/tmem-redis-bench" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
rc=0

# wait_redis PORT: up to 10 s for PING.
wait_redis() {
    for i in $(seq 100); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}

# load NAME PORT: fill, check (every value right); $tmp/NAME.{fill,check}.
load() {
    "$TMEM" bench redis fill --port "$2" --keys "$KEYS" $CORPUS_ARG \
        > "$tmp/$1.fill" || { say "$1: fill failed: $(cat "$tmp/$1.fill")"; rc=1; }
    "$TMEM" bench redis check --port "$2" --keys "$KEYS" $CORPUS_ARG \
        > "$tmp/$1.check" || { say "$1: VALUES WRONG: $(cat "$tmp/$1.check")"; rc=1; }
}

# get_round NAME PORT PID: one round of GETs, appended to $tmp/NAME.rounds
# (nothing when the server is gone).
get_round() {
    kill -0 "$3" 2>/dev/null || return 1
    v=$(timeout 120 redis-benchmark -p "$2" -t get -n "$REQS" -r "$KEYS" \
        -d 4096 -c 8 --csv 2>/dev/null | awk -F'"' '/GET/ {print $4}')
    [ -n "$v" ] || return 1
    echo "$v" >> "$tmp/$1.rounds"
    echo "$v"
}

rss_kib() { awk '/^RssAnon|^RssFile/ {s += $2} END {print s}' "/proc/$1/status"; }
anon_kib() { awk '/^RssAnon/ {print $2}' "/proc/$1/status"; }
base=$((20000 + $$ % 20000))
tport=$base; kport=$((base + 1)); fport=$((base + 2))

# ---- tmem run, through tmemd -------------------------------------------------
"$BUILD/tmemd" --socket "$tmp/s" --budget 4G --foreground 2> "$tmp/tmemd.log" &
DPID=$!
for i in $(seq 50); do [ -S "$tmp/s" ] && break; sleep 0.1; done
"$TMEM" --socket "$tmp/s" run --budget "$BUDGET" --pack-level "$PACK_LEVEL" \
    --name redis-bench -- \
    redis-server --port "$tport" --save "" --appendonly no --logfile "$tmp/r1.log" &
TPID=$!
if wait_redis "$tport"; then
    load tmem "$tport"
    tmem_rss=$(rss_kib "$TPID"); tmem_anon=$(anon_kib "$TPID")
    tmem_store=$("$TMEM" --socket "$tmp/s" stats --json |
        sed -n 's/.*"used_bytes":\([0-9]*\).*/\1/p' | head -n 1)
    "$TMEM" --socket "$tmp/s" list > "$tmp/tmem.list" 2>&1
else
    say "redis under tmem run did not start"; cat "$tmp/r1.log"; rc=1
fi

# ---- the kernel: a memory cgroup and zram swap -------------------------------
ZDEV=$(cat /sys/class/zram-control/hot_add)
echo lz4 > "/sys/block/zram$ZDEV/comp_algorithm"
echo 1G > "/sys/block/zram$ZDEV/disksize"
mkswap "/dev/zram$ZDEV" >/dev/null && swapon -p 32767 "/dev/zram$ZDEV" || {
    say "zram swap could not start"; exit 1; }
echo 0 > /proc/sys/vm/page-cluster
mkdir -p "$CG/tmem-redis-bench"
numfmt --from=iec "$BUDGET" > "$CG/tmem-redis-bench/memory.limit_in_bytes"
# anonymous pages are all the cgroup has to reclaim: prefer them
echo 100 > "$CG/tmem-redis-bench/memory.swappiness"
sh -c "echo \$\$ > $CG/tmem-redis-bench/cgroup.procs; exec redis-server \
    --port $kport --save '' --appendonly no --logfile $tmp/r2.log" &
KPID=$!
if wait_redis "$kport"; then
    load kernel "$kport"
    if kill -0 "$KPID" 2>/dev/null; then
        k_cg=$(cat "$CG/tmem-redis-bench/memory.usage_in_bytes")
        k_zram=$(awk '{print $3}' "/sys/block/zram$ZDEV/mm_stat")
        k_zorig=$(awk '{print $1}' "/sys/block/zram$ZDEV/mm_stat")
        k_rss=$(rss_kib "$KPID"); k_anon=$(anon_kib "$KPID")
    else
        k_dead=1
    fi
else
    say "redis in the cgroup did not start"; rc=1
fi

# ---- the GET rounds, interleaved ------------------------------------------
: > "$tmp/tmem.rounds"; : > "$tmp/kernel.rounds"; : > "$tmp/ratios"
for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
        t=$(get_round tmem "$tport" "$TPID"); k=$(get_round kernel "$kport" "$KPID")
    else
        k=$(get_round kernel "$kport" "$KPID"); t=$(get_round tmem "$tport" "$TPID")
    fi
    echo "round $r: tmem ${t:-none} kernel ${k:-none} GET req/s"
    [ -n "$t" ] && [ -n "$k" ] && awk -v t="$t" -v k="$k" 'BEGIN {printf "%.4f\n", t / k}' >> "$tmp/ratios"
done
if ! kill -0 "$KPID" 2>/dev/null; then
    k_oom=$(awk '/oom_kill / {print $2}' "$CG/tmem-redis-bench/memory.oom_control")
    say "kernel: redis-server died in its $BUDGET cgroup (the cgroup's OOM kills: ${k_oom:-?}) after $(wc -l < "$tmp/kernel.rounds") of $ROUNDS GET rounds"
fi
redis-cli -p "$tport" shutdown nosave >/dev/null 2>&1; wait "$TPID" 2>/dev/null; TPID=""
redis-cli -p "$kport" shutdown nosave >/dev/null 2>&1; wait "$KPID" 2>/dev/null; KPID=""
kill "$DPID"; wait "$DPID" 2>/dev/null; DPID=""

# ---- no limit, for scale --------------------------------------------------------
redis-server --port "$fport" --save "" --appendonly no --logfile "$tmp/r3.log" &
FPID=$!
: > "$tmp/free.rounds"
if wait_redis "$fport"; then
    load free "$fport"
    free_rss=$(rss_kib "$FPID")
    for r in 1 2 3; do get_round free "$fport" "$FPID" >/dev/null; done
fi
redis-cli -p "$fport" shutdown nosave >/dev/null 2>&1; wait "$FPID" 2>/dev/null; FPID=""

# ---- report ---------------------------------------------------------------------
num() { [ -n "$1" ] && echo "$1" || echo 0; }
med() { sort -n "$1" | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]; else print 0}'; }
t_rps=$(med "$tmp/tmem.rounds"); k_rps=$(med "$tmp/kernel.rounds"); f_rps=$(med "$tmp/free.rounds")
ratio=$(med "$tmp/ratios")
t_mem=$(( $(num "$tmem_rss") * 1024 + $(num "$tmem_store") ))
k_mem=$(( $(num "$k_cg") + $(num "$k_zram") ))
k_like=$(( $(num "$k_rss") * 1024 + $(num "$k_zram") ))
mib() { echo $(( $(num "$1") >> 20 )); }
# fill SET/s: what writing every value costs (pages going out compressed)
fill() { sed -n 's/.*"ops_per_s":\([0-9]*\).*/\1/p' "$tmp/$1.fill" 2>/dev/null; }
echo "redis-server, $KEYS keys of 4 KiB, budget $BUDGET, tmem --pack-level $PACK_LEVEL; GET: redis-benchmark -r $KEYS -c 8, $ROUNDS interleaved rounds"
echo "fill SET/s (one client, every value written once): tmem $(fill tmem), kernel $(fill kernel), free $(fill free)"
printf '%-8s %12s %12s  %s\n' regime "GET req/s" "memory MiB" "how memory is counted"
printf '%-8s %12s %12s  %s\n' tmem "$t_rps" "$(mib "$t_mem")" \
    "RSS $(( $(num "$tmem_rss") >> 10 )) MiB (anon $(( $(num "$tmem_anon") >> 10 ))) + store $(mib "$tmem_store") MiB"
printf '%-8s %12s %12s  %s\n' kernel "$k_rps" "$(mib "$k_mem")" \
    "cgroup $(mib "$k_cg") MiB + zram $(mib "$k_zram") MiB (holding $(mib "$k_zorig") MiB)"
printf '%-8s %12s %12s  %s\n' "" "" "$(mib "$k_like")" \
    "RSS $(( $(num "$k_rss") >> 10 )) MiB (anon $(( $(num "$k_anon") >> 10 ))) + zram $(mib "$k_zram") MiB"
printf '%-8s %12s %12s  %s\n' free "$f_rps" "$(( $(num "$free_rss") >> 10 ))" "RSS"
echo "(GET req/s: medians of the rounds)"
[ -f "$tmp/tmem.list" ] && sed 's/^/  tmem list: /' "$tmp/tmem.list"
[ -n "$k_dead" ] && { k_mem=0; k_like=0; }
awk -v r="$ratio" -v n="$(wc -l < "$tmp/ratios")" -v tm="$t_mem" -v km="$k_mem" -v kl="$k_like" 'BEGIN {
    printf "GET throughput tmem/kernel %.2f, the median of %d rounds'"'"' ratios (target >= 0.80): %s\n", r, n, (n > 0 && r >= 0.8 ? "PASS" : "MISS");
    m = km > 0 ? tm / km : 0; l = kl > 0 ? tm / kl : 0;
    if (km > 0)
        printf "memory tmem/kernel %.2f as the issue counts it, %.2f like for like (target <= 1.00): %s\n", m, l, ((m <= 1.0 && l <= 1.0) ? "PASS" : "MISS");
    else
        printf "memory tmem/kernel: no kernel figure (its redis died before it was measured)\n";
}'
exit $rc
