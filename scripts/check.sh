#!/bin/sh
# Runs the named test suites (BUILD/tests/<suite>) and the fuzz corpus
# replays; when SAN_BUILD and SAN_SUITES are set, also those suites and
# the replays as built under ASan+UBSan in SAN_BUILD (each suite with
# BUILD=SAN_BUILD, so the tmemd and tmem it starts are sanitized too).
# Prints the total of everything as the last line:
# N passed, N failed, N skipped.
BUILD=${BUILD:-build}
# A sanitizer's report ends the process that made it (UBSan alone would
# print and go on), so the test that caused it fails.
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export UBSAN_OPTIONS
pass=0; fail=0; skip=0
log=$(mktemp)

# run_suite NAME BUILD_DIR LABEL: adds the suite's "N passed, N failed,
# N skipped" line to the totals.
run_suite() {
    echo "== suite $3"
    BUILD=$2 TMEM_SUITE=$3 "$2/tests/$1" 2>&1 | tee "$log"
    line=$(grep -E '^[a-z_]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "suite $3: no result line (crashed?)"
        fail=$((fail + 1)); return
    fi
    p=$(echo "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    k=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + ${k:-0}))
}

# run_replays BUILD_DIR SUFFIX: each fuzz replay binary of BUILD_DIR runs
# every file of its corpus; one pass or failure each.
run_replays() {
    for r in "$1"/fuzz/replay_*; do
        [ -x "$r" ] || continue
        n=${r##*/replay_}
        if "$r" "tests/fuzz/corpus/$n" >"$log" 2>&1; then
            echo "ok   fuzz replay $n$2 ($(tail -n 1 "$log"))"
            pass=$((pass + 1))
        else
            cat "$log"; echo "FAIL fuzz replay $n$2"; fail=$((fail + 1))
        fi
    done
}

for s in "$@"; do
    run_suite "$s" "$BUILD" "$s"
done
run_replays "$BUILD" ""
# The same suites, and the corpora, under ASan+UBSan.
if [ -n "$SAN_BUILD" ]; then
    for s in $SAN_SUITES; do
        run_suite "$s" "$SAN_BUILD" "${s}_asan_ubsan"
    done
    run_replays "$SAN_BUILD" " (ASan+UBSan)"
fi
rm -f "$log"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
