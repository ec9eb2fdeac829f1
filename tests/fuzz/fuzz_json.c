/*
 * libFuzzer target for the JSON reader (lib/client/json.c), which reads
 * the stats text tmemd sends to the CLI; that text carries names tenants
 * chose.  The bytes, cut at the first NUL, are parsed.
 *
 * Beyond not crashing: a parse returns 0, -EINVAL or -ENOMEM; an accepted
 * tree is well formed (children counted in n, keys exactly on members of
 * objects, text on strings and numbers, depth within TMEM_JSON_MAX_DEPTH)
 * and every member is found by tmem__json_get and tmem__json_find; and the
 * tree written back as JSON parses to the same tree (strings and keys
 * escaped for \" \\ \n \t, numbers as their own text).  A broken rule
 * aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/json.h"
#include "fuzz.h"

/* Checks j's shape; depth counts containers above it. */
static void check_tree(const tmem__json *j, int depth)
{
    CHECK(depth <= TMEM_JSON_MAX_DEPTH);
    CHECK(j->type >= TMEM_JSON_NULL && j->type <= TMEM_JSON_OBJECT);
    bool text = j->type == TMEM_JSON_STRING || j->type == TMEM_JSON_NUMBER;
    CHECK(text == (j->str != NULL));
    if (j->type == TMEM_JSON_BOOL)
        CHECK(j->num == 0 || j->num == 1);
    if (j->type != TMEM_JSON_ARRAY && j->type != TMEM_JSON_OBJECT) {
        CHECK(j->kids == NULL && j->n == 0);
        return;
    }
    size_t n = 0;
    for (const tmem__json *k = j->kids; k; k = k->next, n++) {
        CHECK((k->key != NULL) == (j->type == TMEM_JSON_OBJECT));
        check_tree(k, depth + 1);
        if (k->key) {
            /* the first member of that name, somewhere at or before k */
            const tmem__json *g = tmem__json_get(j, k->key);
            CHECK(g && strcmp(g->key, k->key) == 0);
            CHECK(tmem__json_find(j, k->key) != NULL);
        }
    }
    CHECK(n == j->n);
}

/* Growable output text. */
struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        o->cap = (o->len + n + 1) * 2;
        o->p = realloc(o->p, o->cap);
        CHECK(o->p != NULL);
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void put_string(struct out *o, const char *s)
{
    put(o, "\"", 1);
    for (; *s; s++) {
        const char *e = *s == '"'    ? "\\\""
                        : *s == '\\' ? "\\\\"
                        : *s == '\n' ? "\\n"
                        : *s == '\t' ? "\\t"
                                     : NULL;
        if (e)
            put(o, e, 2);
        else
            put(o, s, 1);
    }
    put(o, "\"", 1);
}

static void write_tree(struct out *o, const tmem__json *j)
{
    static const char *const word[] = {"null", "false", "true"};
    switch (j->type) {
    case TMEM_JSON_NULL:
        put(o, word[0], 4);
        return;
    case TMEM_JSON_BOOL:
        put(o, word[j->num ? 2 : 1], j->num ? 4 : 5);
        return;
    case TMEM_JSON_NUMBER:
        put(o, j->str, strlen(j->str));
        return;
    case TMEM_JSON_STRING:
        put_string(o, j->str);
        return;
    default:
        break;
    }
    bool obj = j->type == TMEM_JSON_OBJECT;
    put(o, obj ? "{" : "[", 1);
    for (const tmem__json *k = j->kids; k; k = k->next) {
        if (k != j->kids)
            put(o, ",", 1);
        if (obj) {
            put_string(o, k->key);
            put(o, ":", 1);
        }
        write_tree(o, k);
    }
    put(o, obj ? "}" : "]", 1);
}

static void check_same(const tmem__json *a, const tmem__json *b)
{
    for (; a && b; a = a->next, b = b->next) {
        CHECK(a->type == b->type && a->n == b->n);
        CHECK(!a->key == !b->key && (!a->key || !strcmp(a->key, b->key)));
        CHECK(!a->str == !b->str && (!a->str || !strcmp(a->str, b->str)));
        CHECK(a->num == b->num || (a->num != a->num && b->num != b->num));
        check_same(a->kids, b->kids);
    }
    CHECK(!a && !b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    tmem__json *j = NULL, *again = NULL;
    struct out o = {0};

    CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    int r = tmem__json_parse(text, &j);
    free(text);
    CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
    if (r != 0)
        return 0;
    CHECK(j != NULL && j->key == NULL && j->next == NULL);
    check_tree(j, 0);
    write_tree(&o, j);
    CHECK(tmem__json_parse(o.p, &again) == 0);
    check_same(j, again);
    tmem__json_free(again);
    tmem__json_free(j);
    free(o.p);
    return 0;
}
