/*
 * Recovery of a private arena after a crash (lib/store/recover.c; issue
 * 12, docs/persistence.md "After a crash"): an arena kept as a file
 * (tmem_store_config.arena_dir) is read back from its records alone, and
 * what it holds is written as a save stream (save.h), which the daemon
 * restores into a client kept for the tenant the arena's tag names.
 * Internal to tmem's programs.
 */
#ifndef TMEM_STORE_RECOVER_H
#define TMEM_STORE_RECOVER_H

#include <stdbool.h>
#include <stdint.h>

#include <tmem/store.h>

#include "common/arena_fmt.h"

typedef struct tmem_recover_info {
    unsigned char tag[TMEM_ARENA_TAG_MAX]; /* the owner's words */
    uint32_t tag_len;  /* 0: no owner was ever written (nothing to keep) */
    bool dead;         /* its owner was going away: nothing to keep */
    uint32_t pools;    /* pools open in it */
    uint64_t names;    /* live names read */
    uint64_t pages;    /* pages written to the stream */
    uint64_t replaced; /* names another with a higher sequence replaced */
    uint64_t orphans;  /* names of pools no longer open */
    uint64_t bad;      /* records that failed a check (dropped) */
    uint64_t file_bytes; /* the file's size */
} tmem_recover_info;

/* Reads the header of arena file fd: its tag and whether it was dying.
 * Returns 0, -EPROTO (not a private arena file of this version), or
 * -errno.  info is filled either way where it could be. */
int tmem__arena_file_peek(int fd, tmem_recover_info *info);

/* Writes a save stream (save.h) of every persistent page named in arena
 * file fd to out: every live name whose record, and (an alias) whose
 * target record, passes its checks (back-pointer, state, kind, length,
 * checksum), of a pool open in the pool table with the same instance;
 * for one key the highest sequence number wins.  A record that fails a
 * check was never acknowledged (its state word is written last) and is
 * counted in info->bad.  The file is only read.  Returns 0, -EPROTO (not
 * a private arena file of this version), TMEM_ENOMEM, or -errno (of the
 * file or a write to out: the stream is then incomplete, and its reader
 * refuses it). */
int tmem__arena_recover(int fd, int out, tmem_recover_info *info);

/* Sets the owner's words written into c's private arena (at most
 * TMEM_ARENA_TAG_MAX bytes: else TMEM_EINVAL), now and when it opens.
 * Returns 0. */
int tmem__client_set_tag(tmem_client *c, const void *tag, uint32_t len);

#endif
