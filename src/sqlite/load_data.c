/*
 * What the driver's rows hold and which rows it touches: values made from
 * (key, version) alone, so any read can be checked, and ranks drawn from
 * a Zipfian distribution, scattered over the keys.
 */
#include "load.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

uint64_t load_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static const char *const words[32] = {
    "account", "balance", "customer", "order",  "shipped", "pending",
    "invoice", "street",  "city",     "amount", "total",   "status",
    "created", "updated", "region",   "north",  "south",   "east",
    "west",    "item",    "price",    "tax",    "paid",    "open",
    "closed",  "note",    "the",      "and",    "of",      "for",
    "with",    "from"};

size_t load_value(uint64_t key, uint32_t ver, char *out)
{
    uint64_t s = key * 0x100000001b3ull ^ ((uint64_t)ver << 40) ^ 0x5eed;
    size_t len = 400 + load_rand(&s) % 601;
    size_t n = (size_t)snprintf(out, LOAD_VALUE_MAX, "key=%llu ver=%u:",
                                (unsigned long long)key, ver);
    while (n < len) {
        uint64_t r = load_rand(&s);
        const char *w = words[r % 32];
        size_t wl = strlen(w);
        out[n++] = r >> 8 & 7 ? ' ' : ',';
        for (size_t i = 0; i < wl && n < len; i++)
            out[n++] = w[i];
        if (!(r >> 11 & 15) && n + 6 < len) /* a number now and then */
            n += (size_t)snprintf(out + n, 7, " %05u", (unsigned)(r >> 16) % 100000);
    }
    return len;
}

void load_zipf_init(struct load_zipf *z, uint64_t n, double theta)
{
    double zeta2 = 1.0 + pow(0.5, theta);
    z->n = n;
    z->theta = theta;
    z->zetan = 0;
    for (uint64_t i = 1; i <= n; i++)
        z->zetan += 1.0 / pow((double)i, theta);
    z->alpha = 1.0 / (1.0 - theta);
    z->eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) / (1.0 - zeta2 / z->zetan);
    z->half_pow = pow(0.5, theta);
}

uint64_t load_zipf_next(const struct load_zipf *z, double u)
{
    double uz = u * z->zetan;
    if (uz < 1.0 || z->n < 2)
        return 0;
    if (uz < 1.0 + z->half_pow)
        return 1;
    uint64_t r = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1.0, z->alpha));
    return r < z->n ? r : z->n - 1;
}

uint64_t load_scatter(uint64_t rank, uint64_t n)
{
    static const uint64_t primes[] = {1000003, 1000033, 1000037};
    uint64_t p = primes[0];
    for (int i = 0; i < 3; i++)
        if (n % primes[i] != 0) { /* coprime with n: a bijection */
            p = primes[i];
            break;
        }
    return (rank * p + 7919) % n;
}
