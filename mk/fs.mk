# tmemfs (src/fs, `tmem fs`; docs/tmemfs.md): a FUSE file system linked
# into build/tmem.  Its objects alone see libfuse3's headers and the CLI's
# own (cmds.h, opt_table.h); src/tmem itself stays free of FUSE, so the
# fuzz replays that link src/tmem need no libfuse.  The fs suite links
# the cache (no FUSE in it) and drives the real mount through build/tmem.

FS_SRC      := $(sort $(wildcard src/fs/*.c))
FS_OBJ      := $(FS_SRC:%.c=$(BUILD)/obj/%.o)
FUSE_CFLAGS := $(shell pkg-config --cflags fuse3 2>/dev/null)
FUSE_LIBS   := $(shell pkg-config --libs fuse3 2>/dev/null || echo -lfuse3)

TMEM_EXTRA_OBJ  += $(FS_OBJ)
TMEM_EXTRA_LIBS += $(FUSE_LIBS)
SUITE_OBJ_fs    := $(BUILD)/obj/src/fs/fs_cache.o $(BUILD)/obj/src/fs/fs_node.o

$(FS_OBJ): ALL_CFLAGS += $(FUSE_CFLAGS) -Isrc/tmem

# The generic rule rebuilds on $(BUILD)/.flags; these objects also on a
# change of libfuse's flags.
FS_FLAGS_NOW := $(FUSE_CFLAGS) $(FUSE_LIBS)
$(FS_OBJ): $(BUILD)/.flags-fs
$(BUILD)/.flags-fs: FORCE | $(BUILD)/.deps
	@mkdir -p $(BUILD)
	@if [ "$$(cat $@ 2>/dev/null)" != "$(FS_FLAGS_NOW)" ]; then \
		echo "$(FS_FLAGS_NOW)" > $@; fi
