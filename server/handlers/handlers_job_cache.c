/* handlers_job_cache.c — the GET /v1/jobs/{id} body cache (handlers_job_cache.h): a fixed
 * table of entries, each job id hashed to one entry (a newer job replaces an older one that
 * hashes alike), each entry under its own mutex so the HTTP threads rarely meet. A hit copies
 * the body into the reply while holding the entry's lock; nothing else is done under it.
 */
#include "server/handlers/handlers_job_cache.h"
#include "server/common/text.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_ENTRIES 512 /* a power of two */

typedef struct {
    pthread_mutex_t mu;
    uint64_t version; /* 0: empty */
    uint64_t live;    /* jobs_live_version when it was made */
    char id[48];
    char owner[64];
    char *body;
    size_t len;
} entry;

struct handlers_job_cache {
    entry e[CACHE_ENTRIES];
};

handlers_job_cache *handlers_job_cache_new(void)
{
    handlers_job_cache *c = calloc(1, sizeof *c);
    for (size_t i = 0; c && i < CACHE_ENTRIES; i++)
        pthread_mutex_init(&c->e[i].mu, NULL);
    return c;
}

void handlers_job_cache_free(handlers_job_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < CACHE_ENTRIES; i++) {
        free(c->e[i].body);
        pthread_mutex_destroy(&c->e[i].mu);
    }
    free(c);
}

static entry *entry_of(handlers_job_cache *c, const char *id)
{
    return &c->e[text_hash(id) & (CACHE_ENTRIES - 1)];
}

int handlers_job_cache_reply(handlers_job_cache *c, req *r, const char *owner, const char *id,
                             uint64_t version, uint64_t live)
{
    if (!c || !version)
        return 0;
    entry *e = entry_of(c, id);
    int hit = 0;
    pthread_mutex_lock(&e->mu);
    /* Every comparison is made (no short cut), so another tenant's id costs what an unknown
     * id costs to the nanosecond scale; both then read the store. */
    int same = (e->version == version) & (e->live == live) & (strcmp(e->id, id) == 0) &
               (strcmp(e->owner, owner) == 0);
    if (same) {
        http_reply_data(r, 200, "application/json", e->body, e->len);
        hit = 1;
    }
    pthread_mutex_unlock(&e->mu);
    return hit;
}

void handlers_job_cache_put(handlers_job_cache *c, const char *owner, const char *id,
                            uint64_t version, uint64_t live, const char *body, size_t len)
{
    if (!c || !version || strlen(id) >= sizeof c->e[0].id ||
        strlen(owner) >= sizeof c->e[0].owner)
        return;
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return;
    memcpy(copy, body, len);
    entry *e = entry_of(c, id);
    pthread_mutex_lock(&e->mu);
    char *old = e->body;
    e->body = copy;
    e->len = len;
    e->version = version;
    e->live = live;
    strcpy(e->id, id);
    strcpy(e->owner, owner);
    pthread_mutex_unlock(&e->mu);
    free(old);
}
