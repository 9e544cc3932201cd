/* security_rate.c — the rate limiter of security.c: token buckets (rate N/s, burst 2N) keyed
 * "a:<address>" and "k:<key name>" in one open-addressing table under one mutex. The table
 * has a fixed size; when it is half full it is rebuilt keeping only buckets that are not yet
 * full again (a full bucket is the same as no bucket), and if that is not enough, only the
 * most recently used. Work under the lock is a hash probe and a few flops; rebuilds are
 * O(table) and rare. Each take also reports the bucket as the IETF RateLimit fields see it
 * (limit = burst, remaining whole tokens, seconds until the bucket is full again).
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/security/security_internal.h"

#define RL_SLOTS 8192         /* hash slots (power of two) */
#define RL_LIVE_MAX (RL_SLOTS / 2)

typedef struct {
    char key[80];             /* "" = empty slot */
    double tokens;            /* tokens at time `last` */
    double last;              /* monotonic seconds */
} bucket;

struct security_rl {
    pthread_mutex_t mu;       /* guards everything below */
    double rate, burst;
    bucket *slots, *spare;    /* RL_SLOTS each */
    double *ages;             /* RL_SLOTS scratch for rebuilds */
    size_t live;
};

security_rl *security_rl_new(double rate)
{
    security_rl *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    pthread_mutex_init(&rl->mu, NULL);
    rl->rate = rate;
    rl->burst = 2.0 * rate;
    rl->slots = calloc(RL_SLOTS, sizeof *rl->slots);
    rl->spare = calloc(RL_SLOTS, sizeof *rl->spare);
    rl->ages = calloc(RL_SLOTS, sizeof *rl->ages);
    if (!rl->slots || !rl->spare || !rl->ages) {
        security_rl_free(rl);
        return NULL;
    }
    return rl;
}

void security_rl_free(security_rl *rl)
{
    if (!rl)
        return;
    free(rl->slots);
    free(rl->spare);
    free(rl->ages);
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

/* Slot holding key, or the empty slot where it would go. */
static bucket *rl_find(bucket *slots, const char *key)
{
    size_t i = (size_t)hash_str(key) & (RL_SLOTS - 1);
    while (slots[i].key[0] && strcmp(slots[i].key, key) != 0)
        i = (i + 1) & (RL_SLOTS - 1);
    return &slots[i];
}

static double rl_tokens(const security_rl *sec, const bucket *b, double now)
{
    double t = b->tokens + (now - b->last) * sec->rate;
    return t < sec->burst ? t : sec->burst;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Rebuilds the table without idle (refilled) buckets; if still more than 3/4 of the live
 * limit remain, keeps only the most recently used half of the limit. Caller holds mu. */
static void rl_compact(security_rl *sec, double now)
{
    size_t busy = 0, keep = RL_LIVE_MAX;
    double since = -INFINITY;
    for (size_t i = 0; i < RL_SLOTS; i++)
        if (sec->slots[i].key[0] && rl_tokens(sec, &sec->slots[i], now) < sec->burst)
            sec->ages[busy++] = sec->slots[i].last;
    if (busy > RL_LIVE_MAX * 3 / 4) {
        keep = RL_LIVE_MAX / 2;
        qsort(sec->ages, busy, sizeof *sec->ages, cmp_double);
        since = sec->ages[busy - keep];
    }
    memset(sec->spare, 0, RL_SLOTS * sizeof *sec->spare);
    size_t live = 0;
    for (size_t i = 0; i < RL_SLOTS && live < keep; i++) {
        const bucket *b = &sec->slots[i];
        if (b->key[0] && b->last >= since && rl_tokens(sec, b, now) < sec->burst) {
            *rl_find(sec->spare, b->key) = *b;
            live++;
        }
    }
    bucket *t = sec->slots;
    sec->slots = sec->spare;
    sec->spare = t;
    sec->live = live;
}

int security_rl_take(security_rl *sec, const char *key, double now, security_rate_info *info)
{
    if (!sec)
        return 0;
    int wait = 0;
    pthread_mutex_lock(&sec->mu);
    bucket *b = rl_find(sec->slots, key);
    if (!b->key[0]) {
        if (sec->live >= RL_LIVE_MAX) {
            rl_compact(sec, now);
            b = rl_find(sec->slots, key);
        }
        snprintf(b->key, sizeof b->key, "%s", key);
        b->tokens = sec->burst;
        b->last = now;
        sec->live++;
    }
    b->tokens = rl_tokens(sec, b, now);
    b->last = now;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
    } else {
        double w = ceil((1.0 - b->tokens) / sec->rate);
        wait = w < 1.0 ? 1 : (int)w;
    }
    if (info) {
        info->limit = (int64_t)sec->burst;
        info->remaining = (int64_t)floor(b->tokens);
        info->reset = wait ? wait : (int64_t)ceil((sec->burst - b->tokens) / sec->rate);
    }
    pthread_mutex_unlock(&sec->mu);
    return wait;
}

size_t security_rl_entries(security_rl *sec)
{
    if (!sec)
        return 0;
    pthread_mutex_lock(&sec->mu);
    size_t n = sec->live;
    pthread_mutex_unlock(&sec->mu);
    return n;
}

