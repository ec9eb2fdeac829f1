#!/bin/sh
# make bench: the self-ballooning controller on a tenant that re-reads its
# files (issue 14): repeated clean builds of this repository, CI-style, in
# a memory cgroup with our own zram swap, three ways in one run - no
# controller; `tmem balloon run --interval 1` with default tunables; the
# same with the tenant's files read through tmemfs (`tmem fs`) - each
# TMEM_BENCH_ROUNDS times (default 5), interleaved: medians reported, and
# the targets judged on the medians of the per-round ratios (the ways of a
# round run back to back, so a slow minute of a shared host moves both).
# TMEM_REFAULT_TRACE=1 also writes a trace per way (usage, anon, kernel,
# allowance, refaulted, swap every 100 ms) to BUILD/bench.
#
# One job (run inside the cgroup; `sh bench/balloon_refault.sh --job`):
# TMEM_REFAULT_BUILDS (default 5) clean builds, each in a workspace of its
# own that stays until the job ends (a CI runner's checkouts): unpack the
# source tarball, compile lib/*/*.c, src/tmemd/*.c and src/run/*.c with
# -O1 -g (2 at a time), archive the objects, unpack the page corpus (the
# test data) and checksum it.  Re-read by every build: the toolchain
# (gcc, cc1, as and their libraries), the system and project headers, the
# tarball and the corpus archive - all private copies in a directory on
# disk, so that nobody else's builds share their page cache.  Read or
# written once: each workspace's sources, objects and unpacked corpus.
# The page cache of the private directory is dropped before each way.
#
# Per way (bench/balloon_refault.c): peak and mean memory of the cgroup,
# runtime, bytes read from storage (the job's read_bytes, plus the tmemfs
# server's), peak swap, OOM kills, refaulted MiB.  Targets: mean memory
# >= 50% lower and runtime <= 5% longer with the controller, 0 OOM kills;
# with tmemfs, fewer storage reads than without the controller.
BUILD=${BUILD:-build}
CORPUS=${TMEM_CORPUS:-../shared/corpus/pages-a.bin.zst}
BUILDS=${TMEM_REFAULT_BUILDS:-5}
ROUNDS=${TMEM_BENCH_ROUNDS:-5}

# --cc DIR WS FILE: one compile of the job.
if [ "$1" = --cc ]; then
    d=$2 w=$3 f=$4
    o=$(echo "${f#"$w"/}" | tr / _)
    exec "$d/tc/gcc" -B"$d/tc/" -O1 -g -std=c11 -D_GNU_SOURCE -pthread \
        -nostdinc -isystem "$d/inc/gcc" -isystem "$d/inc/usr/x86_64-linux-gnu" \
        -isystem "$d/inc/usr" -I"$w/include" -I"$w/lib" -c "$f" \
        -o "$w/obj/$o.o" 2>/dev/null
fi
# --job DIR WS: the workload (in the cgroup).  A file that does not
# compile (the tarball is a snapshot of a tree others edit) costs the
# compiler's work up to the error, the same in every way.
if [ "$1" = --job ]; then
    d=$2 ws=$3 i=1
    export LD_LIBRARY_PATH="$d/tc"
    while [ "$i" -le "$BUILDS" ]; do
        w=$ws/$i
        mkdir -p "$w/obj" && tar -xf "$d/repo.tar" -C "$w" || exit 1
        ls "$w"/lib/*/*.c "$w"/src/tmemd/*.c "$w"/src/run/*.c |
            xargs -P2 -n1 sh "$0" --cc "$d" "$w"
        ar rcs "$w/lib.a" "$w"/obj/*.o || exit 1
        zstd -qdc "$d/corpus.zst" > "$w/pages.bin" || exit 1
        cksum "$w/pages.bin" > /dev/null || exit 1
        i=$((i + 1))
    done
    exit 0
fi

if [ "$(id -u)" != 0 ]; then echo "balloon refault bench: needs root, skipped"; exit 0; fi
if [ ! -e /sys/class/zram-control/hot_add ]; then
    echo "balloon refault bench: no zram hot_add, skipped"; exit 0; fi
if [ ! -r "$CORPUS" ]; then
    echo "balloon refault bench: corpus $CORPUS is absent, skipped"; exit 0; fi
for t in gcc tar zstd ar cksum mkswap swapon; do
    command -v $t > /dev/null || { echo "balloon refault bench: no $t, skipped"; exit 0; }
done
out=$BUILD/bench
mkdir -p "$out"
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Ilib -o "$out/balloon_refault" \
    bench/balloon_refault.c lib/common/sysfile.c || exit 1

tmp=$(mktemp -d /var/tmp/tmemws-bench.XXXXXX) || exit 1
dir=$tmp/files mnt=$tmp/mnt zram= fs_pid=
cleanup() {
    if [ -n "$fs_pid" ]; then
        umount "$mnt" 2> /dev/null; kill "$fs_pid" 2> /dev/null; wait "$fs_pid" 2> /dev/null
    fi
    if [ -n "$zram" ]; then
        swapoff "/dev/zram$zram" 2> /dev/null
        echo 1 > "/sys/block/zram$zram/reset"
        echo "$zram" > /sys/class/zram-control/hot_remove
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# the private toolchain, headers, tarball and corpus archive
mkdir -p "$dir/tc" "$dir/inc" "$mnt" || exit 1
cc1=$(gcc -print-prog-name=cc1)
as=$(readlink -f "$(command -v as)")
cp "$(readlink -f "$(command -v gcc)")" "$dir/tc/gcc" && cp "$cc1" "$dir/tc/cc1" &&
    cp "$as" "$dir/tc/as" || exit 1
for l in $( (ldd "$cc1"; ldd "$as") | awk '/=> \//{print $3}' | sort -u); do
    cp "$(readlink -f "$l")" "$dir/tc/$(basename "$l")" || exit 1
done
cp -r "$(dirname "$cc1")/include" "$dir/inc/gcc" && cp -r /usr/include "$dir/inc/usr" &&
    tar -cf "$dir/repo.tar" lib include src/tmemd src/run && cp "$CORPUS" "$dir/corpus.zst" || exit 1

zram=$(cat /sys/class/zram-control/hot_add) || exit 1
echo lz4 > "/sys/block/zram$zram/comp_algorithm" 2> /dev/null
echo 2G > "/sys/block/zram$zram/disksize" && mkswap "/dev/zram$zram" > /dev/null &&
    swapon -p 100 "/dev/zram$zram" || { echo "balloon refault bench: zram swap failed"; exit 1; }

have_fs=0
if "$BUILD/tmem" fs --help > /dev/null 2>&1; then have_fs=1; fi

# one_way NAME DIR [helper options]: one run of the job
one_way() {
    n=$1 d=$2
    shift 2
    rm -rf "$tmp/ws"
    "$out/balloon_refault" -n "$n" -d "$dir" -l "$out" "$@" -- \
        sh "$0" --job "$d" "$tmp/ws" >> "$tmp/results" || exit 1
    tail -n 1 "$tmp/results"
}

# the third way: the files through a tmemfs mount of $dir.  The server
# (and its pool) stays up across the rounds, as tmemd does on a host, and
# an earlier tenant has read the files once (the warm pass below); before
# each way the kernel's copies are dropped all the same, so what tmemfs
# saves is what its pool still holds.  Attributes and names are trusted
# for 10 s (nothing changes the toolchain from outside).
fs_start() {
    "$BUILD/tmem" fs --foreground --embedded --attr-timeout 10 "$dir" "$mnt" \
        > "$out/balloon-refault-tmemfs.log" 2>&1 &
    fs_pid=$!
    i=0
    while ! mountpoint -q "$mnt" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    if ! mountpoint -q "$mnt"; then
        echo "tmemfs: $BUILD/tmem fs did not mount (see $out/balloon-refault-tmemfs.log)"
        kill "$fs_pid" 2> /dev/null; wait "$fs_pid" 2> /dev/null; fs_pid=
        have_fs=0
        return
    fi
    find "$mnt" -type f -exec cat {} + > /dev/null
}

fs_way() {
    # the kernel's copies of the files as seen through the mount go too
    find "$mnt" -type f -exec sh -c 'for f; do dd if="$f" iflag=nocache count=0 status=none; done' sh {} +
    one_way tmemfs "$mnt" -t "$BUILD/tmem" -p "$fs_pid"
    echo "tmemfs server: $(awk '/VmRSS/{printf "%.0f MiB resident (its pool, compressed, outside the cgroup)", $2 / 1024}' "/proc/$fs_pid/status")"
}

if [ $have_fs = 1 ]; then fs_start; fi
echo "name peak_MiB mean_MiB runtime_s read_MiB swap_MiB ooms refault_MiB exit"
r=1
while [ $r -le "$ROUNDS" ]; do
    one_way none "$dir"
    one_way controller "$dir" -t "$BUILD/tmem"
    if [ $have_fs = 1 ]; then fs_way; fi
    r=$((r + 1))
done
if [ -n "$fs_pid" ]; then
    umount "$mnt" 2> /dev/null || fusermount3 -u "$mnt" 2> /dev/null
    kill "$fs_pid" 2> /dev/null; wait "$fs_pid" 2> /dev/null; fs_pid=
fi
[ $have_fs = 1 ] || echo "tmemfs: not built yet ($BUILD/tmem fs --help fails): the third way is not run"

# medians per way, and the targets
awk -v rounds="$ROUNDS" '
function median(name, col,   n, i, j, t, v) {
    n = 0
    for (i = 1; i <= NR; i++) if (nm[i] == name) v[++n] = val[i, col]
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
        if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return n ? v[int((n + 1) / 2)] : -1
}
# per round (the ways of a round run back to back): the ratios to the
# same round without a controller
function pmedian(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
        if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n ? a[int((n + 1) / 2)] : -1
}
{ nm[NR] = $1; for (c = 2; c <= 8; c++) val[NR, c] = $c; if ($9 != "ok") bad[$1] = $9
  if ($7 > oom[$1]) oom[$1] = $7; seen[$1] = 1
  k = ++round[$1]; mean[$1, k] = $3; rt[$1, k] = $4; rd[$1, k] = $5 }
END {
    printf "medians of %d rounds:\n%-12s %9s %9s %9s %9s %9s %5s\n", rounds, "way", "peak MiB",
        "mean MiB", "runtime s", "read MiB", "swap MiB", "OOMs"
    split("none controller tmemfs", ways, " ")
    for (k = 1; k <= 3; k++) { w = ways[k]; if (!seen[w]) continue
        printf "%-12s %9.0f %9.0f %9.2f %9.1f %9.0f %5d\n", w, median(w, 2), median(w, 3),
            median(w, 4), median(w, 5), median(w, 6), oom[w] }
    n = 0
    for (k = 1; k <= round["controller"] && k <= round["none"]; k++) {
        n++; sv[n] = 1 - mean["controller", k] / mean["none", k]
        sl[n] = rt["controller", k] / rt["none", k] - 1
        if (round["tmemfs"] >= k) { m++; fr[m] = rd["tmemfs", k] / rd["none", k] }
    }
    printf "per round, against the same round without a controller:"
    for (k = 1; k <= n; k++) printf " %.0f%%/%+.1f%%", sv[k] * 100, sl[k] * 100
    printf " (memory saved/runtime)\n"
    saved = pmedian(sv, n); slow = pmedian(sl, n)
    ok = (saved >= 0.5) && (slow <= 0.05) && oom["controller"] == 0 && !("controller" in bad) && !("none" in bad)
    printf "medians of the per-round ratios:\n"
    printf "mean memory with the controller: %.0f%% lower (target >= 50%%) %s\n", saved * 100,
        (saved >= 0.5 ? "MET" : "MISSED")
    printf "runtime with the controller: %+.1f%% (target <= +5%%) %s\n", slow * 100,
        (slow <= 0.05 ? "MET" : "MISSED")
    printf "OOM kills with the controller: %d, jobs %s (target 0, all ok) %s\n", oom["controller"],
        ("controller" in bad) ? bad["controller"] : "ok",
        ((oom["controller"] == 0 && !("controller" in bad)) ? "MET" : "MISSED")
    if (seen["tmemfs"]) {
        less = pmedian(fr, m)
        printf "storage reads with tmemfs: %.0f%% of those without the controller (medians %.1f vs %.1f MiB) %s\n",
            less * 100, median("tmemfs", 5), median("none", 5), (less < 1 ? "MET" : "MISSED")
        ok = ok && (less < 1)
    }
    exit ok ? 0 : 1
}' "$tmp/results"
