/* handlers_util.c — helpers shared by the h_*.c handlers (handlers_util.h): store errors as
 * problem replies, safe ids for messages, random ids, RFC 3339 times.
 */
#include "server/handlers/handlers_util.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "server/common/log.h"

#define RETRY_JOBS "10"  /* seconds suggested when the job queue or job quota is full */
#define RETRY_BYTES "60" /* seconds suggested when the dataset byte quota is full */
#define STORE_FULL_DETAIL                                                                      \
    "the store is full: free disk space (or delete datasets or jobs) and retry"

void hu_store_problem(api_error *err, req *r, int code, const store_error *se,
                      const char *field, const char *kind, const char *id)
{
    char safe[64];
    switch (code) {
    case STORE_NOT_FOUND:
        api_fail(err, 404, "%s: no %s \"%s\"", field, kind, hu_safe_id(id, safe, sizeof safe));
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
    case STORE_CONFLICT:
        api_fail(err, 409, "%s \"%s\": %s", kind, hu_safe_id(id, safe, sizeof safe), se->msg);
        break;
    default:
        log_event(LOG_ERROR, "store_error", "req=%llu code=%d", (unsigned long long)r->id, code);
        api_fail(err, 500, "store error: %s", se->msg);
        break;
    }
}

handler_result hu_reply_store_error(req *r, int code, const store_error *se, const char *kind,
                                    const char *id)
{
    api_error err = {0};
    hu_store_problem(&err, r, code, se, "id", kind, id);
    return hu_reply_api_error(r, &err);
}

handler_result hu_reply_api_error(req *r, const api_error *err)
{
    return http_reply_problem(r, err->status ? err->status : 500, "%s", err->detail);
}

const char *hu_safe_id(const char *text, char *out, size_t cap)
{
    size_t o = 0;
    for (; text && *text && o + 1 < cap; text++)
        out[o++] = *text >= 0x20 && *text < 0x7f && *text != '"' && *text != '\\' ? *text : '?';
    out[o] = '\0';
    return out;
}

int hu_random_id(char *out, size_t cap, const char *prefix)
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

void hu_rfc3339(char out[32], int64_t unix_seconds)
{
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
