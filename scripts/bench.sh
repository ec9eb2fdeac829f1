#!/bin/sh
# make bench: runs every bench/*.sh in name order.  Each prints its own
# measurements and, where it has one, the ratio against a reference measured
# in the same run (the kernel's zram, memcpy, the embedded store).
BUILD=${BUILD:-build}
export BUILD
rc=0
for b in bench/*.sh; do
    [ -f "$b" ] || continue
    echo "== $b"
    sh "$b" || { echo "bench $b failed"; rc=1; }
done
exit $rc
