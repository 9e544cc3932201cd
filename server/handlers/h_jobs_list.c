/* h_jobs_list.c — GET /v1/jobs: the caller's jobs, newest first, a page at a time, filtered
 * by status (in the store's query), dataset, name, tag and creation time (here, reading on
 * until the page is full: the store pages by status only, so an engine needs nothing more
 * than store_job_list to serve every filter).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/jobs_codec.h"
#include "server/handlers/h_jobs.h"
#include "server/handlers/handlers_util.h"
#include "server/handlers/routes.h"
#include "server/server.h"
#include "server/store/store.h"

/* What a listing keeps, besides the status the store filters on. */
typedef struct {
    const char *dataset, *name, *tag; /* NULL = any */
    int64_t after_ms, before_ms;      /* created strictly after / before; 0 = no bound */
} job_filter;

static int keep(const job_filter *f, const store_job *j)
{
    return (!f->dataset || strcmp(j->dataset_id, f->dataset) == 0) &&
           (!f->after_ms || j->created_at > f->after_ms) &&
           (!f->before_ms || j->created_at < f->before_ms) &&
           api_job_labels_match(j->labels_json, f->name, f->tag);
}

/* Appends to arr up to limit jobs of r->owner, newest first from cursor on, with this status
 * (< 0 any) that pass f; *next = the cursor of the next page, 0 when none. 0 ok, 1 out of
 * memory, else the store's code (< 0) with se. */
static int list_jobs(server *s, req *r, int status, const job_filter *f, int64_t cursor,
                     int64_t limit, json_t *arr, int64_t *next, store_error *se)
{
    *next = 0;
    for (;;) {
        store_job *list = NULL;
        size_t n = 0, i = 0;
        int64_t more = 0;
        int rc = store_job_list(s->st, r->owner, status, cursor, (int)limit, &list, &n, &more,
                                se);
        if (rc < 0)
            return rc;
        int oom = 0;
        for (; i < n && !oom && (int64_t)json_array_size(arr) < limit; i++) {
            if (!keep(f, &list[i]))
                continue;
            json_t *jj = handlers_job_json(s, &list[i]);
            oom = !jj || json_array_append_new(arr, jj) < 0;
        }
        int64_t last = i > 0 ? list[i - 1].seq : 0;
        store_jobs_free(list, n);
        if (oom)
            return 1;
        if ((int64_t)json_array_size(arr) == limit) {
            *next = i < n || more > 0 ? last : 0;
            return 0;
        }
        if (more <= 0)
            return 0;
        cursor = more;
    }
}

/* "2026-11-30T20:00:00Z" or with a fraction ("…:00.250Z") into unix ms. 0 ok, -1 not. */
static int parse_time(const char *text, int64_t *ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    int64_t frac = 0, scale = 1000;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++)
            if (scale > 1)
                frac += (*p - '0') * (scale /= 10);
    }
    if ((p[0] != 'Z' && p[0] != 'z') || p[1])
        return -1;
    *ms = (int64_t)timegm(&tm) * 1000 + frac;
    return 0;
}

/* The filters of the query into f. 0, or -1 with a 400 reply naming the parameter. */
static int read_filter(req *r, job_filter *f)
{
    static const char *const times[] = {"created_after", "created_before"};
    memset(f, 0, sizeof *f);
    const char *d = http_query(r, "dataset"), *n = http_query(r, "name");
    const char *t = http_query(r, "tag");
    f->dataset = d && *d ? d : NULL;
    f->name = n && *n ? n : NULL;
    f->tag = t && *t ? t : NULL;
    for (int k = 0; k < 2; k++) {
        const char *v = http_query(r, times[k]);
        int64_t *dst = k ? &f->before_ms : &f->after_ms;
        if (v && parse_time(v, dst) < 0) {
            http_reply_problem(r, 400, "%s: expected an RFC 3339 UTC time such as "
                                       "2026-11-30T20:00:00Z", times[k]);
            return -1;
        }
    }
    return 0;
}

handler_result h_jobs_list(void *ctx, req *r)
{
    server *s = ctx;
    int status = -1;
    int64_t limit, cursor, next = 0;
    api_error ae = {0};
    job_filter f;
    const char *q = http_query(r, "status");
    if (q) {
        job_status st;
        if (job_status_parse(q, &st) != 0)
            return http_reply_problem(r, 400, "status: must be one of queued, running, "
                                              "succeeded, failed, cancelled");
        status = (int)st;
    }
    if (handlers_page_query(r, &limit, &cursor, &ae) < 0)
        return handlers_reply_api_error(r, &ae);
    if (read_filter(r, &f) < 0)
        return HANDLER_OK;
    store_error se = {0};
    json_t *arr = json_array();
    int rc = arr ? list_jobs(s, r, status, &f, cursor, limit, arr, &next, &se) : 1;
    return handlers_reply_page(r, rc, "jobs", arr, next, &se, "job");
}
