/*
 * Fuzz target for tunable values: the bytes are written as a value to every
 * balloon tunable (admin and not) and as a tunable name.  Beyond not
 * crashing, it checks the contract of tmem_balloon_set: only 0, -EINVAL or
 * -ERANGE for an admin, -EPERM otherwise; a refused write changes nothing;
 * an accepted one reads back as the same number and leaves a controller
 * whose tick divides by nothing that is 0.  A broken rule aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "balloon/controller.h"
#include "fuzz.h"

/* Decimal value of an accepted write, straight from the text. */
static unsigned long long plain_value(const char *s)
{
    unsigned long long v = 0;
    for (; *s >= '0' && *s <= '9'; s++)
        v = v * 10 + (unsigned)(*s - '0');
    return v;
}

static void one_tunable(const char *name, const char *value)
{
    tmem_balloon b, before;
    tmem_balloon_input in = {.cur = 300000,
                             .committed = 100000,
                             .reserve = 2000,
                             .max = 400000,
                             .frontswap = 5000};
    tmem_balloon_output out;
    bool started = false;
    char buf[32];
    int err;

    tmem_balloon_init(&b, 262144, true);
    before = b;
    CHECK(tmem_balloon_set(&b, name, value, false, &started) == -EPERM);
    CHECK(!started && memcmp(&b, &before, sizeof b) == 0);

    err = tmem_balloon_set(&b, name, value, true, &started);
    CHECK(err == 0 || err == -EINVAL || err == -ERANGE);
    if (err) {
        CHECK(!started && memcmp(&b, &before, sizeof b) == 0);
        return;
    }
    CHECK(tmem_balloon_get(&b, name, buf, sizeof buf) > 0);
    CHECK(strtoull(buf, NULL, 10) == plain_value(value));
    /* every step of the controller must still be well defined */
    for (int i = 0; i < 4; i++) {
        tmem_balloon_tick(&b, &in, &out);
        in.frontswap -= in.frontswap / 4;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    tmem_balloon b;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    for (size_t i = 0; tmem_balloon_tunable_names[i]; i++)
        one_tunable(tmem_balloon_tunable_names[i], text);
    /* the bytes as a name: refused unless they are one */
    tmem_balloon_init(&b, 262144, true);
    int err = tmem_balloon_set(&b, text, "1", true, NULL);
    bool known = false;
    for (size_t i = 0; tmem_balloon_tunable_names[i]; i++)
        known |= strcmp(text, tmem_balloon_tunable_names[i]) == 0;
    CHECK(known ? err == 0 : err == -EINVAL);
    free(text);
    return 0;
}
