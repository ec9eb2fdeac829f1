#!/bin/sh
# Prints the functions the public headers include/tmem/*.h declare, one
# name a line, sorted: what libtmem.so exports (the Makefile makes its
# version script from this list) and what tests/selfcheck holds it to.
# The headers are read as the compiler sees them, without comments or
# macros; internal tmem__ names never count.  Run from the tree's top.
CC=${CC:-cc}
text=$(for h in include/tmem/*.h; do echo "#include <tmem/${h##*/}>"; done |
    $CC -std=c11 -D_GNU_SOURCE -Iinclude -E -P -x c -) || {
    echo "api_names: cannot preprocess include/tmem/*.h" >&2
    exit 1
}
printf '%s\n' "$text" | grep -oE '\btmem_[a-z0-9_]+[[:space:]]*\(' |
    tr -d '( \t' | grep -v '^tmem__' | sort -u
