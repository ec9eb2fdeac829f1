# Sourced by the bench scripts (bench/*.sh): bench_cc SRC OUT builds
# bench/SRC.c against $BUILD/libtmem.a, with the sanitizer $BUILD was
# built with, into OUT.  Returns non-zero when it cannot.
bench_cc() {
    mkdir -p "$(dirname "$2")"
    _san=$(grep -o -- '-fsanitize=[^ ]*' "$BUILD/.flags" 2>/dev/null | head -n 1)
    ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Iinclude -Ilib \
        ${_san:+"$_san"} "bench/$1.c" "$BUILD/libtmem.a" -o "$2" \
        -llz4 -lzstd -lxxhash -lmicrohttpd -luring -lpthread -lm
}
