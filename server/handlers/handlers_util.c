/* handlers_util.c — helpers shared by the h_*.c handlers (handlers_util.h): store errors as
 * problem replies, safe ids for messages, random ids, RFC 3339 times, listing pages.
 */
#include "server/handlers/handlers_util.h"

#include <errno.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "server/common/log.h"

#define RETRY_JOBS "10"  /* seconds suggested when the job queue or job quota is full */
#define RETRY_BYTES "60" /* seconds suggested when the dataset byte quota is full */
#define STORE_FULL_DETAIL                                                                      \
    "the store is full: free disk space (or delete datasets or jobs) and retry"

void handlers_store_problem(api_error *err, req *r, int code, const store_error *se,
                      const char *field, const char *kind, const char *id)
{
    char safe[64];
    switch (code) {
    case STORE_NOT_FOUND:
        api_fail(err, 404, "%s: no %s \"%s\"", field, kind, handlers_safe_id(id, safe, sizeof safe));
        break;
    case STORE_FULL:
        api_fail(err, 507, STORE_FULL_DETAIL);
        break;
    case STORE_BUSY:
        http_add_header(r, "Retry-After", "1");
        api_fail(err, 503, "the store is busy: try again in a second");
        break;
    case STORE_QUEUE_FULL:
    case STORE_QUOTA:
        /* admission refused (store_limits): the store's message names the limit; a dataset
         * quota frees up only when the client deletes some, so suggest a longer wait */
        http_add_header(r, "Retry-After", strcmp(kind, "dataset") == 0 ? RETRY_BYTES : RETRY_JOBS);
        api_fail(err, 429, "%s", se->msg);
        break;
    case STORE_KEY_REUSED:
        api_fail(err, 422, "%s", se->msg);
        break;
    case STORE_CONFLICT:
        api_fail(err, 409, "%s \"%s\": %s", kind, handlers_safe_id(id, safe, sizeof safe), se->msg);
        break;
    default:
        log_event(LOG_ERROR, "store_error", "req=%llu code=%d", (unsigned long long)r->id, code);
        api_fail(err, 500, "store error: %s", se->msg);
        break;
    }
}

handler_result handlers_reply_store_error(req *r, int code, const store_error *se, const char *kind,
                                    const char *id)
{
    api_error err = {0};
    handlers_store_problem(&err, r, code, se, "id", kind, id);
    return handlers_reply_api_error(r, &err);
}

handler_result handlers_reply_api_error(req *r, const api_error *err)
{
    return http_reply_problem(r, err->status ? err->status : 500, "%s", err->detail);
}

const char *handlers_safe_id(const char *text, char *out, size_t cap)
{
    api_escape(out, cap, text ? text : "", text ? strlen(text) : 0);
    return out;
}

int handlers_random_id(char *out, size_t cap, const char *prefix)
{
    unsigned char b[12];
    size_t p = strlen(prefix);
    if (cap < p + 2 * sizeof b + 1)
        return -1;
    for (size_t got = 0; got < sizeof b;) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    memcpy(out, prefix, p);
    for (size_t i = 0; i < sizeof b; i++)
        snprintf(out + p + 2 * i, 3, "%02x", b[i]);
    return 0;
}

void handlers_rfc3339(char out[32], int64_t unix_seconds)
{
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int handlers_whole_number(const char *text, int64_t lo, int64_t hi, int64_t *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(text, &end, 10);
    if (errno || end == text || *end || x < lo || x > hi)
        return -1;
    *v = x;
    return 0;
}

int handlers_page_query(req *r, int64_t *limit, int64_t *cursor, api_error *err)
{
    const char *q;
    *limit = HU_PAGE_DEFAULT;
    *cursor = 0;
    if ((q = http_query(r, "limit")) && handlers_whole_number(q, 1, HU_PAGE_MAX, limit) < 0) {
        api_fail(err, 400, "limit: must be an integer in 1..%d", HU_PAGE_MAX);
        return -1;
    }
    if ((q = http_query(r, "cursor")) && *q && handlers_whole_number(q, 1, INT64_MAX, cursor) < 0) {
        api_fail(err, 400, "cursor: not a cursor this server gave out");
        return -1;
    }
    return 0;
}

json_t *handlers_page_json(const char *key, json_t *items, int64_t next)
{
    char cur[32];
    snprintf(cur, sizeof cur, "%lld", (long long)next);
    return json_pack("{s:o, s:o}", key, items, "next_cursor",
                     next > 0 ? json_string(cur) : json_null());
}

handler_result handlers_reply_page(req *r, int rc, const char *key, json_t *items, int64_t next,
                                   const store_error *se, const char *kind)
{
    if (rc < 0) {
        json_decref(items);
        return handlers_reply_store_error(r, rc, se, kind, "");
    }
    json_t *page = rc == 0 && items ? handlers_page_json(key, items, next) : NULL;
    if (!page) {
        json_decref(rc == 0 ? NULL : items); /* handlers_page_json took them */
        return http_reply_problem(r, 503, "out of memory: try again later");
    }
    return http_reply_json(r, 200, page);
}

api_job_progress handlers_progress_view(const store_progress *p)
{
    return (api_job_progress){.epoch = p->epoch, .epochs = p->epochs, .cost = p->cost,
                              .validation_cost = p->validation_cost, .accuracy = p->accuracy,
                              .validation_accuracy = p->validation_accuracy,
                              .samples_per_second = p->samples_per_second};
}

int handlers_idempotency(req *r, int ttl_seconds, const char *params, store_idempotency *idem)
{
    const char *key = http_header(r, "Idempotency-Key");
    memset(idem, 0, sizeof *idem);
    if (!key)
        return 0;
    size_t n = strlen(key);
    int ok = n >= 1 && n <= 255;
    for (size_t i = 0; ok && i < n; i++)
        ok = key[i] >= 0x21 && key[i] <= 0x7e;
    if (!ok) {
        http_reply_problem(r, 400, "Idempotency-Key: must be 1 to 255 visible ASCII characters "
                                   "(a UUID is a good choice)");
        return -1;
    }
    /* What the request asks: its media type, the parameters that shape it, its body. */
    struct sha256_ctx c;
    unsigned char d[SHA256_DIGEST_SIZE];
    sha256_init(&c);
    sha256_update(&c, strlen(r->media_type) + 1, (const uint8_t *)r->media_type);
    for (const char *p = params; p && *p;) {
        char name[32];
        size_t k = strcspn(p, ",");
        snprintf(name, sizeof name, "%.*s", (int)k, p);
        const char *v = http_query(r, name);
        sha256_update(&c, 1, (const uint8_t *)(v ? "=" : "-")); /* absent differs from "" */
        if (v)
            sha256_update(&c, strlen(v) + 1, (const uint8_t *)v);
        p += k + (p[k] == ',');
    }
    sha256_update(&c, r->body_len, (const uint8_t *)(r->body ? r->body : ""));
    sha256_digest(&c, sizeof d, d);
    for (size_t i = 0; i < sizeof d; i++)
        snprintf(idem->request + 2 * i, 3, "%02x", d[i]);
    idem->key = key;
    idem->ttl_ms = (int64_t)ttl_seconds * 1000;
    return 1;
}
