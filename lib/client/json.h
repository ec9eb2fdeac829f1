/*
 * A small JSON reader (DOM) for the stats text tmemd sends: the tmem CLI
 * renders it as tables and the tests check it.  Not a general-purpose
 * parser: numbers are kept as double and as their text, strings keep their
 * escapes decoded only for \" \\ \/ \n \t (others are copied verbatim),
 * depth is bounded (TMEM_JSON_MAX_DEPTH) so hostile text cannot recurse
 * the stack away.
 */
#ifndef TMEM_CLIENT_JSON_H
#define TMEM_CLIENT_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define TMEM_JSON_MAX_DEPTH 32

typedef enum tmem__json_type {
    TMEM_JSON_NULL,
    TMEM_JSON_BOOL,
    TMEM_JSON_NUMBER,
    TMEM_JSON_STRING,
    TMEM_JSON_ARRAY,
    TMEM_JSON_OBJECT,
} tmem__json_type;

typedef struct tmem__json tmem__json;
struct tmem__json {
    tmem__json_type type;
    char *key;        /* member name inside an object, else NULL */
    char *str;        /* STRING: value; NUMBER: its text */
    double num;       /* NUMBER, BOOL (0/1) */
    tmem__json *kids; /* ARRAY/OBJECT: first child */
    tmem__json *next; /* next sibling */
    size_t n;         /* ARRAY/OBJECT: number of children */
};

/* Parses text; returns 0 and sets *out (free with tmem__json_free), or
 * -EINVAL (malformed, too deep, trailing garbage) / -ENOMEM. */
int tmem__json_parse(const char *text, tmem__json **out);
void tmem__json_free(tmem__json *j); /* NULL is a no-op */
/* The member named key of an object, or NULL. */
const tmem__json *tmem__json_get(const tmem__json *obj, const char *key);
/* Finds the first member named key anywhere below j (depth first). */
const tmem__json *tmem__json_find(const tmem__json *j, const char *key);

#endif
