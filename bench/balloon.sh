#!/bin/sh
# make bench: the self-ballooning controller on a real memory cgroup.
# A tenant workload that grows and shrinks (bench/balloon_bench.c) runs
# three times in one run: without a controller, with `tmem balloon run`
# (PSI guard on), with the guard off; peak/mean memory, runtime, OOM kills
# side by side, and the targets (mean >= 30% lower, runtime within 10%,
# zero OOM kills with the guard on).
#
# Controller settings used (documented in docs/balloon.md): interval 1 s,
# selfballoon_reserved_mb=64 (growth headroom: the tenant starts empty, so
# the default 10%-of-start would be 1 MiB), downhysteresis 4,
# frontswap_hysteresis 2, frontswap_inertia 1.
BUILD=${BUILD:-build}
if [ "$(id -u)" != 0 ]; then echo "balloon bench: needs root, skipped"; exit 0; fi
if [ ! -e /sys/class/zram-control/hot_add ]; then
    echo "balloon bench: no zram hot_add, skipped"; exit 0; fi
out=$BUILD/bench
mkdir -p "$out"
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Ilib -o "$out/balloon_bench" bench/balloon_bench.c \
    lib/common/sysfile.c lib/common/zram.c || exit 1
# the controller's logs (one line per decision) land in $out/balloon-*.log
BALLOON_BENCH_LOGS=$out exec "$out/balloon_bench" "$BUILD/tmem" --interval 1 \
    --set selfballoon_reserved_mb=64 --set selfballoon_downhysteresis=4 \
    --set frontswap_hysteresis=2 --set frontswap_inertia=1
