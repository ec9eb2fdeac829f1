/*
 * The small JSON reader of json.h: recursive descent over a NUL-terminated
 * text, depth-bounded, every node from tmem__malloc (freed as a tree).
 */
#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

typedef struct rd {
    const char *p;
    int err;
} rd;

static void skip_ws(rd *r)
{
    while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')
        r->p++;
}

static tmem__json *parse_value(rd *r, int depth);

static char *parse_string(rd *r)
{
    const char *s = ++r->p; /* past the opening quote */
    size_t n = 0;
    while (s[n] && s[n] != '"')
        n += s[n] == '\\' && s[n + 1] ? 2 : 1;
    if (s[n] != '"') {
        r->err = -EINVAL;
        return NULL;
    }
    char *out = tmem__malloc(n + 1), *o = out;
    if (!out) {
        r->err = -ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            *o++ = s[i];
            continue;
        }
        char e = s[++i];
        *o++ = e == 'n' ? '\n' : e == 't' ? '\t' : e;
        if (!strchr("\"\\/nt", e))
            o[-1] = '\\', *o++ = e;
    }
    *o = '\0';
    r->p = s + n + 1;
    return out;
}

static tmem__json *node(rd *r, tmem__json_type t)
{
    tmem__json *j = tmem__calloc(1, sizeof *j);
    if (!j)
        r->err = -ENOMEM;
    else
        j->type = t;
    return j;
}

/* Parses the members of an array or object (after the opening bracket). */
static tmem__json *parse_container(rd *r, int depth, bool obj)
{
    tmem__json *j = node(r, obj ? TMEM_JSON_OBJECT : TMEM_JSON_ARRAY);
    tmem__json **tail;
    char close = obj ? '}' : ']';

    if (!j)
        return NULL;
    tail = &j->kids;
    r->p++;
    skip_ws(r);
    if (*r->p == close) {
        r->p++;
        return j;
    }
    for (;;) {
        char *key = NULL;
        skip_ws(r);
        if (obj) {
            if (*r->p != '"' || !(key = parse_string(r)))
                goto bad;
            skip_ws(r);
            if (*r->p++ != ':') {
                tmem__free(key);
                goto bad;
            }
        }
        tmem__json *v = parse_value(r, depth + 1);
        if (!v) {
            tmem__free(key);
            goto bad;
        }
        v->key = key;
        *tail = v;
        tail = &v->next;
        j->n++;
        skip_ws(r);
        if (*r->p == ',') {
            r->p++;
            continue;
        }
        if (*r->p++ == close)
            return j;
        goto bad;
    }
bad:
    if (!r->err)
        r->err = -EINVAL;
    tmem__json_free(j);
    return NULL;
}

static tmem__json *parse_number(rd *r)
{
    char *end;
    double d = strtod(r->p, &end);
    if (end == r->p) {
        r->err = -EINVAL;
        return NULL;
    }
    tmem__json *j = node(r, TMEM_JSON_NUMBER);
    if (!j)
        return NULL;
    j->num = d;
    j->str = tmem__malloc((size_t)(end - r->p) + 1);
    if (!j->str) {
        r->err = -ENOMEM;
        tmem__free(j);
        return NULL;
    }
    memcpy(j->str, r->p, (size_t)(end - r->p));
    j->str[end - r->p] = '\0';
    r->p = end;
    return j;
}

static const struct {
    const char *word;
    tmem__json_type type;
    double num;
} words[] = {
    {"true", TMEM_JSON_BOOL, 1},
    {"false", TMEM_JSON_BOOL, 0},
    {"null", TMEM_JSON_NULL, 0},
};

static tmem__json *parse_value(rd *r, int depth)
{
    if (depth > TMEM_JSON_MAX_DEPTH) {
        r->err = -EINVAL;
        return NULL;
    }
    skip_ws(r);
    if (*r->p == '{' || *r->p == '[')
        return parse_container(r, depth, *r->p == '{');
    if (*r->p == '"') {
        char *s = parse_string(r);
        tmem__json *j = s ? node(r, TMEM_JSON_STRING) : NULL;
        if (!j)
            tmem__free(s);
        else
            j->str = s;
        return j;
    }
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t n = strlen(words[i].word);
        if (strncmp(r->p, words[i].word, n) == 0) {
            tmem__json *j = node(r, words[i].type);
            if (j)
                j->num = words[i].num;
            r->p += n;
            return j;
        }
    }
    return parse_number(r);
}

int tmem__json_parse(const char *text, tmem__json **out)
{
    rd r = {.p = text, .err = 0};
    tmem__json *j = parse_value(&r, 0);
    if (!j)
        return r.err ? r.err : -EINVAL;
    skip_ws(&r);
    if (*r.p) {
        tmem__json_free(j);
        return -EINVAL;
    }
    *out = j;
    return 0;
}

void tmem__json_free(tmem__json *j)
{
    while (j) {
        tmem__json *next = j->next;
        tmem__json_free(j->kids);
        tmem__free(j->key);
        tmem__free(j->str);
        tmem__free(j);
        j = next;
    }
}

const tmem__json *tmem__json_get(const tmem__json *obj, const char *key)
{
    if (!obj || obj->type != TMEM_JSON_OBJECT)
        return NULL;
    for (const tmem__json *k = obj->kids; k; k = k->next)
        if (k->key && strcmp(k->key, key) == 0)
            return k;
    return NULL;
}

const tmem__json *tmem__json_find(const tmem__json *j, const char *key)
{
    for (const tmem__json *k = j ? j->kids : NULL; k; k = k->next) {
        if (k->key && strcmp(k->key, key) == 0)
            return k;
        const tmem__json *f = tmem__json_find(k, key);
        if (f)
            return f;
    }
    return NULL;
}
