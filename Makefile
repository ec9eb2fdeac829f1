# tmem — plain make.
#
#   make                 build/libtmem.a, build/libtmem.so, build/tmem, build/tmemd
#   make check           all test suites, the fuzz corpora, and the store
#                        and daemon suites and the corpora again under
#                        ASan+UBSan
#                        (last line: N passed, N failed, N skipped)
#   make check-store     the store suite only (used with SANITIZE=thread)
#   make bench           benchmarks against the kernel's zram, same run
#   make demo            the demo: a host overcommitted through tmem, a
#                        report with plots in demo-report/ (root)
#   make SANITIZE=address,undefined check
#
# Every target first runs scripts/deps.sh, which installs missing Debian
# packages.  Objects are rebuilt whenever the flags change (build/.flags).

BUILD    ?= build
CC       ?= cc
OPT      ?= -O2
SANITIZE ?=

# The release, from the VERSION file (tmem --version, tmemd --version,
# the pkg-config file).
VERSION  := $(shell cat VERSION 2>/dev/null || echo unknown)

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -fPIC \
	-Iinclude -Ilib -pthread -MMD -MP -DTMEM_VERSION='"$(VERSION)"'
ifneq ($(SANITIZE),)
CFLAGS_BASE += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS_SAN := -fsanitize=$(SANITIZE)
endif
ALL_CFLAGS := $(CFLAGS_BASE) $(CFLAGS)
# tmem run's preload library: no sanitizer, initial-exec thread-locals
# (see its rule below)
PLAIN_CFLAGS := $(filter-out -fsanitize=% -fno-omit-frame-pointer,\
	$(CFLAGS_BASE)) $(CFLAGS) -ftls-model=initial-exec
LDLIBS_ALL := -llz4 -lzstd -lxxhash -lmicrohttpd -luring -lpthread -lm
ALL_LDFLAGS := $(LDFLAGS_SAN) $(LDFLAGS) -pthread

LIB_SRC   := $(sort $(wildcard lib/*/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TMEM_SRC  := $(sort $(wildcard src/tmem/*.c))
TMEMD_SRC := $(sort $(wildcard src/tmemd/*.c))
RUN_SRC   := $(sort $(wildcard src/run/*.c))
PROGS     := $(BUILD)/tmem $(if $(TMEMD_SRC),$(BUILD)/tmemd) \
	$(if $(RUN_SRC),$(BUILD)/libtmem_run.so)

# Test suites: every directory tests/<suite>/ with .c files is one binary,
# linked with the shared runner tests/runner.c and the helpers of
# tests/lib (the tmemd harness).
SUITES    := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard tests/*/*.c)))))
SUITES    := $(filter-out fuzz progs lib,$(SUITES))
SUITE_BIN := $(SUITES:%=$(BUILD)/tests/%)
TESTLIB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/lib/*.c))
# Fuzz targets tests/fuzz/fuzz_<name>.c: a replay binary for make check,
# libFuzzer binaries with make fuzz (clang).  Both link libtmem and the
# CLI's commands (src/tmem but its main), so a target may drive a command.
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=$(BUILD)/fuzz/replay_%)
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
CLI_SRC   := $(filter-out src/tmem/main.c,$(TMEM_SRC))
# make check also runs these suites and the fuzz replays under ASan+UBSan,
# built in SAN_BUILD (unless the whole check is already sanitized).
SAN_SUITES := store daemon
SAN_BUILD  := $(BUILD)/asan-ci
# The public API: the functions include/tmem/*.h declare.
PUB_HDR   := $(sort $(wildcard include/tmem/*.h))
# Programs the tests run as tenants (tmem run): tests/progs/<name>.c, each
# a plain program of its own, no libtmem.
PROG_SRC  := $(sort $(wildcard tests/progs/*.c))
PROG_BIN  := $(PROG_SRC:tests/progs/%.c=$(BUILD)/tests/progs/%)

# Parts with build rules of their own (mk/<part>.mk: the SQLite
# extension, tmemfs, the web view) add to these, then their rules follow.
#   EXTRA_PROGS         more targets of `make` (built by their own rules)
#   TMEM_EXTRA_OBJ      objects linked into build/tmem beyond src/tmem
#   TMEM_EXTRA_LIBS     libraries build/tmem needs beyond LDLIBS_ALL
#   TMEMD_EXTRA_OBJ     objects linked into build/tmemd beyond src/tmemd
#   SUITE_OBJ_<suite>   objects a test suite links beyond its tests/<suite>
#   SUITE_LIBS_<suite>  libraries it needs beyond LDLIBS_ALL
#   CHECK_EXTRA         more prerequisites of make check
EXTRA_PROGS :=
TMEM_EXTRA_OBJ :=
TMEM_EXTRA_LIBS :=
TMEMD_EXTRA_OBJ :=
CHECK_EXTRA :=
# plain `make` builds everything, whatever target a part's mk file names first
.DEFAULT_GOAL := all
include $(sort $(wildcard mk/*.mk))

.PHONY: all deps check check-store check-san bench demo fuzz clean format \
	install uninstall \
	FORCE
all: $(BUILD)/libtmem.a $(BUILD)/libtmem.so $(PROGS) $(EXTRA_PROGS)

deps: $(BUILD)/.deps
$(BUILD)/.deps: scripts/deps.sh
	@mkdir -p $(BUILD)
	@sh scripts/deps.sh
	@touch $@

# Rebuild everything when the compiler flags change.
FLAGS_NOW := $(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $(PLAIN_CFLAGS)
$(BUILD)/.flags: FORCE | $(BUILD)/.deps
	@mkdir -p $(BUILD)
	@if [ "$$(cat $@ 2>/dev/null)" != "$(FLAGS_NOW)" ]; then \
		echo "$(FLAGS_NOW)" > $@; fi
FORCE:

$(BUILD)/obj/%.o: %.c $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libtmem.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# libtmem.so exports the public API and nothing else: its version script
# names the functions include/tmem/*.h declare (scripts/api_names.sh);
# every other symbol, the tmem__ internals, test hooks and fault injection
# among them, is local.  The tests link libtmem.a and keep them.
$(BUILD)/libtmem.map: scripts/api_names.sh $(PUB_HDR) | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	@names=$$(CC="$(CC)" sh scripts/api_names.sh) && [ -n "$$names" ] && \
		{ echo '{ global:'; printf '    %s;\n' $$names; \
		  echo '  local: *;'; echo '};'; } > $@

$(BUILD)/libtmem.so: $(LIB_OBJ) $(BUILD)/libtmem.map
	$(CC) -shared $(ALL_LDFLAGS) -Wl,--version-script=$(BUILD)/libtmem.map \
		-o $@ $(LIB_OBJ) $(LDLIBS_ALL)

$(BUILD)/tmem: $(TMEM_SRC:%.c=$(BUILD)/obj/%.o) $(TMEM_EXTRA_OBJ) \
		$(BUILD)/libtmem.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(TMEM_EXTRA_LIBS)

$(BUILD)/tmemd: $(TMEMD_SRC:%.c=$(BUILD)/obj/%.o) $(TMEMD_EXTRA_OBJ) \
		$(BUILD)/libtmem.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

# tmem run's preload library: the wrappers of src/run and libtmem in one
# shared object; libtmem's own symbols stay inside (-fvisibility=hidden,
# --exclude-libs), so only the libc names it wraps are seen by the
# program.  Always built without sanitizers: it is loaded into programs
# that have none (a sanitizer runtime must come first in a process).
# Thread-locals are initial-exec: in the static TLS block, beside each
# thread's stack, never behind __tls_get_addr and its malloc'd vectors,
# which live in the program's heap (tswap memory: a fault there inside
# tswap's own threads could never be served).
RUN_OBJ := $(patsubst %.c,$(BUILD)/objplain/%.o,$(RUN_SRC) $(LIB_SRC))
$(BUILD)/objplain/%.o: %.c $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(PLAIN_CFLAGS) $(if $(filter lib/%,$<),-fvisibility=hidden) \
		-c $< -o $@

$(BUILD)/libtmem_run.so: $(RUN_OBJ)
	$(CC) -shared -pthread -Wl,-z,defs -o $@ $(RUN_OBJ) \
		-llz4 -lzstd -lxxhash -ldl -lpthread -lm

.SECONDEXPANSION:
# Keep test objects (pattern-rule intermediates) between builds.
.PRECIOUS: $(BUILD)/obj/%.o $(BUILD)/fuzzobj/%.o
$(BUILD)/tests/%: $$(addprefix $(BUILD)/obj/,$$(addsuffix .o,$$(basename $$(wildcard tests/$$*/*.c)))) \
		$(BUILD)/obj/tests/runner.o $(TESTLIB_OBJ) $$(SUITE_OBJ_$$*) \
		$(BUILD)/libtmem.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(SUITE_LIBS_$*)

$(BUILD)/libtmemcli.a: $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/fuzz/replay_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o \
		$(BUILD)/obj/tests/fuzz/replay_main.o $(BUILD)/libtmemcli.a \
		$(BUILD)/libtmem.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/progs/%: tests/progs/%.c $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -o $@ $<

check: all $(SUITE_BIN) $(FUZZ_REPLAY) $(PROG_BIN) $(CHECK_EXTRA) $(if $(SANITIZE),,check-san)
	@BUILD=$(BUILD) $(if $(SANITIZE),,SAN_BUILD=$(SAN_BUILD) \
		SAN_SUITES="$(SAN_SUITES)") sh scripts/check.sh $(SUITES)

# The sanitized suites' binaries, the programs they run (BUILD/tmemd,
# BUILD/tmem) and the fuzz replays, in SAN_BUILD.
check-san: $(BUILD)/.deps
	@$(MAKE) --no-print-directory BUILD=$(SAN_BUILD) \
		SANITIZE=address,undefined $(SAN_BUILD)/tmem $(SAN_BUILD)/tmemd \
		$(SAN_SUITES:%=$(SAN_BUILD)/tests/%) \
		$(FUZZ_REPLAY:$(BUILD)/%=$(SAN_BUILD)/%)

check-store: all $(BUILD)/tests/store
	@BUILD=$(BUILD) sh scripts/check.sh store

bench: all
	@BUILD=$(BUILD) sh scripts/bench.sh

# The demo (needs root: cgroups, zram); DEMO_ARGS=--quick for the short one.
demo: all
	@$(BUILD)/tmem demo $(DEMO_ARGS)

# libFuzzer builds (clang): make fuzz; run e.g. build/fuzz/fuzz_proto
# tests/fuzz/corpus/proto.  libtmem and the CLI's commands are compiled
# once (BUILD/fuzzobj, instrumented for coverage), each target links them.
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -Iinclude -Ilib -MMD -MP \
	-fsanitize=fuzzer-no-link,address,undefined
fuzz: $(FUZZ_BIN)

$(BUILD)/fuzzobj/%.o: %.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -c $< -o $@

$(BUILD)/fuzz/libfuzzlib.a: $(patsubst %.c,$(BUILD)/fuzzobj/%.o,\
		$(LIB_SRC) $(CLI_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/fuzz/fuzz_%: $(BUILD)/fuzzobj/tests/fuzz/fuzz_%.o \
		$(BUILD)/fuzz/libfuzzlib.a
	clang -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS_ALL)

# make install [PREFIX=/usr/local] [DESTDIR=]: the programs, the library
# (static, shared, and tmem run's preload library where tmem looks for it:
# PREFIX/lib/tmem, beside the SQLite extension and the demo's SQLite
# driver), the headers, a pkg-config file, the man pages and the
# systemd unit (its ExecStart written for PREFIX).
PREFIX  ?= /usr/local
BINDIR  := $(PREFIX)/bin
SBINDIR := $(PREFIX)/sbin
LIBDIR  := $(PREFIX)/lib
INCDIR  := $(PREFIX)/include
MANDIR  := $(PREFIX)/share/man
UNITDIR := $(PREFIX)/lib/systemd/system
INSTALLED := $(BINDIR)/tmem $(SBINDIR)/tmemd $(LIBDIR)/libtmem.a \
	$(LIBDIR)/libtmem.so $(LIBDIR)/tmem/libtmem_run.so \
	$(LIBDIR)/tmem/libtmem_sqlite.so $(LIBDIR)/tmem/tmem_sqlite_load \
	$(LIBDIR)/pkgconfig/tmem.pc $(MANDIR)/man1/tmem.1 \
	$(MANDIR)/man8/tmemd.8 $(UNITDIR)/tmemd.service \
	$(patsubst include/%,$(INCDIR)/%,$(wildcard include/tmem/*.h))

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) \
		$(DESTDIR)$(LIBDIR)/tmem $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(INCDIR)/tmem $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR)
	install -m 755 $(BUILD)/tmem $(DESTDIR)$(BINDIR)/tmem
	install -m 755 $(BUILD)/tmemd $(DESTDIR)$(SBINDIR)/tmemd
	install -m 644 $(BUILD)/libtmem.a $(DESTDIR)$(LIBDIR)/libtmem.a
	install -m 755 $(BUILD)/libtmem.so $(DESTDIR)$(LIBDIR)/libtmem.so
	install -m 755 $(BUILD)/libtmem_run.so \
		$(DESTDIR)$(LIBDIR)/tmem/libtmem_run.so
	install -m 755 $(BUILD)/libtmem_sqlite.so $(BUILD)/tmem_sqlite_load \
		$(DESTDIR)$(LIBDIR)/tmem/
	install -m 644 include/tmem/*.h $(DESTDIR)$(INCDIR)/tmem/
	install -m 644 docs/tmem.1 $(DESTDIR)$(MANDIR)/man1/tmem.1
	install -m 644 docs/tmemd.8 $(DESTDIR)$(MANDIR)/man8/tmemd.8
	sed 's|/usr/local/sbin/tmemd|$(SBINDIR)/tmemd|' docs/tmemd.service \
		> $(DESTDIR)$(UNITDIR)/tmemd.service
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCDIR@|$(INCDIR)|' -e 's|@VERSION@|$(VERSION)|' \
		scripts/tmem.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/tmem.pc

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(LIBDIR)/tmem $(DESTDIR)$(INCDIR)/tmem 2>/dev/null

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj $(BUILD)/objplain $(BUILD)/fuzzobj \
	-name '*.d' 2>/dev/null)
