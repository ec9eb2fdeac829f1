#!/bin/sh
# Runs the named test suites (build/tests/<suite>) and the fuzz corpus
# replays, then prints the total as the last line: N passed, N failed.
BUILD=${BUILD:-build}
pass=0; fail=0; skip=0
log=$(mktemp)
for s in "$@"; do
    echo "== suite $s"
    TMEM_SUITE=$s "$BUILD/tests/$s" 2>&1 | tee "$log"
    line=$(grep -E '^[a-z_]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "suite $s: no result line (crashed?)"
        fail=$((fail + 1)); continue
    fi
    p=$(echo "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    k=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + ${k:-0}))
done
# Fuzz corpora: each replay binary runs every file of its corpus.
for r in "$BUILD"/fuzz/replay_*; do
    [ -x "$r" ] || continue
    n=${r##*/replay_}
    if "$r" "tests/fuzz/corpus/$n" >"$log" 2>&1; then
        echo "ok   fuzz replay $n ($(tail -n 1 "$log"))"; pass=$((pass + 1))
    else
        cat "$log"; echo "FAIL fuzz replay $n"; fail=$((fail + 1))
    fi
done
rm -f "$log"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
