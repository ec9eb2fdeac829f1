# SQLite on cleancache (src/sqlite, docs/sqlite.md).
#
#   BUILD/libtmem_sqlite.so   the loadable extension (VFS only): sqlite3's
#                             `.load BUILD/libtmem_sqlite`.  Built without
#                             sanitizers (it loads into programs that have
#                             none), libtmem inside it and hidden; only
#                             sqlite3_tmemsqlite_init is exported.
#   BUILD/libtmem_sqlite.a    the same code for programs that link it
#                             (tmem_sqlite_install: page cache + VFS),
#                             with libtmem.a and -lsqlite3
#   BUILD/tmem_sqlite_load    the workload driver (src/sqlite/load_*.c)
#   tests/sqlite              the suite; links libtmem_sqlite's objects

SQLITE_EXT_SRC  := $(filter-out src/sqlite/load_%,$(sort $(wildcard src/sqlite/*.c)))
SQLITE_LOAD_SRC := $(sort $(wildcard src/sqlite/load_*.c))
SQLITE_OBJ      := $(SQLITE_EXT_SRC:%.c=$(BUILD)/obj/%.o)
SQLITE_LOAD_OBJ := $(SQLITE_LOAD_SRC:%.c=$(BUILD)/obj/%.o)
# the extension's objects and libtmem's, compiled for the shared object
SQLITE_SO_OBJ   := $(patsubst %.c,$(BUILD)/objsqlext/%.o,$(SQLITE_EXT_SRC) $(LIB_SRC))
SQLITE_SO_CFLAGS := $(filter-out -ftls-model=initial-exec,$(PLAIN_CFLAGS)) \
	-fvisibility=hidden

EXTRA_PROGS += $(BUILD)/libtmem_sqlite.so $(BUILD)/libtmem_sqlite.a \
	$(BUILD)/tmem_sqlite_load
SUITE_OBJ_sqlite := $(BUILD)/libtmem_sqlite.a
SUITE_LIBS_sqlite := -lsqlite3
CHECK_EXTRA += $(BUILD)/libtmem_sqlite.so $(BUILD)/tmem_sqlite_load

# Linked: SQLite's own functions, not the extension routines table.
$(BUILD)/obj/src/sqlite/%.o: ALL_CFLAGS += -DSQLITE_CORE
$(BUILD)/obj/tests/sqlite/%.o: ALL_CFLAGS += -DSQLITE_CORE

$(BUILD)/objsqlext/%.o: %.c $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(SQLITE_SO_CFLAGS) -c $< -o $@

$(BUILD)/libtmem_sqlite.so: $(SQLITE_SO_OBJ)
	$(CC) -shared -pthread -Wl,-z,defs -o $@ $(SQLITE_SO_OBJ) \
		-llz4 -lzstd -lxxhash -lpthread -lm

$(BUILD)/libtmem_sqlite.a: $(SQLITE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tmem_sqlite_load: $(SQLITE_LOAD_OBJ) $(BUILD)/libtmem_sqlite.a \
		$(BUILD)/libtmem.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL) -lsqlite3

-include $(shell find $(BUILD)/objsqlext -name '*.d' 2>/dev/null)
