/* h_cost.c — GET /v1/jobs/{id}/cost (routes.h): a job's cost history, a page at a time.
 *
 * ?after=E (default 0) asks for the epochs after E, ?limit=N (1..COST_PAGE_MAX, default
 * COST_PAGE_DEFAULT) for at most N of them. The answer keeps the history's shape ({"epoch",
 * "cost", "validation_cost", "accuracy", "validation_accuracy"}, one array entry per epoch)
 * and adds "next": the path of the following page (also sent as `Link: <…>; rel="next"`), or
 * null when this page holds the rest of the history as it is now. A client reads the whole
 * history by following "next" until it is null; a running job's later epochs come with
 * ?after=<the last epoch it has>.
 *
 * Only the page is read, from the live entry while the job runs here (jobs_live_epochs) or
 * from the store (store_job_history_page, one engine operation on both engines), one row more
 * than the page so that "next" is null exactly when nothing follows: a long history is never
 * held or formatted whole for one request.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"
#include "api/jobs_codec.h"
#include "server/handlers/h_jobs.h"
#include "server/handlers/handlers_util.h"
#include "server/handlers/routes.h"
#include "server/jobs/jobs_live.h"

#define COST_PAGE_DEFAULT 1000
#define COST_PAGE_MAX 10000

/* One page of history rows, as columns (each array n long; new, freed by page_clear). */
typedef struct {
    int64_t *epoch;
    double *cost, *vcost, *acc, *vacc;
    size_t n;
} cost_page;

static void page_clear(cost_page *p)
{
    free(p->epoch);
    free(p->cost);
    free(p->vcost);
    free(p->acc);
    free(p->vacc);
    *p = (cost_page){0};
}

/* The page from the live entry when the job runs here: 1 read, 0 not here, -1 out of memory. */
static int page_live(server *s, const char *id, int64_t after, int64_t want, cost_page *p)
{
    int64_t created_at = 0, started_at = 0;
    store_progress *rows = NULL;
    size_t n = 0;
    int rc = jobs_live_epochs(s->jobs, id, after, (size_t)want, &created_at, &started_at, &rows,
                              &n);
    if (rc <= 0)
        goto cleanup;
    size_t k = n ? n : 1;
    p->epoch = malloc(k * sizeof *p->epoch);
    p->cost = malloc(k * sizeof *p->cost);
    p->vcost = malloc(k * sizeof *p->vcost);
    p->acc = malloc(k * sizeof *p->acc);
    p->vacc = malloc(k * sizeof *p->vacc);
    if (!p->epoch || !p->cost || !p->vcost || !p->acc || !p->vacc) {
        page_clear(p);
        rc = -1;
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        p->epoch[i] = rows[i].epoch;
        p->cost[i] = rows[i].cost;
        p->vcost[i] = rows[i].validation_cost;
        p->acc[i] = rows[i].accuracy;
        p->vacc[i] = rows[i].validation_accuracy;
    }
    p->n = n;
cleanup:
    free(rows);
    return rc;
}

/* ?after= and ?limit=: 0 ok, -1 with a 400 in err naming the parameter. */
static int cost_query(req *r, int64_t *after, int64_t *limit, api_error *err)
{
    const char *q;
    *after = 0;
    *limit = COST_PAGE_DEFAULT;
    if ((q = http_query(r, "after")) && handlers_whole_number(q, 0, INT64_MAX, after) < 0) {
        api_fail(err, 400, "after: must be a whole number of epochs, 0 or more (the last epoch "
                           "of the page before)");
        return -1;
    }
    if ((q = http_query(r, "limit")) && handlers_whole_number(q, 1, COST_PAGE_MAX, limit) < 0) {
        api_fail(err, 400, "limit: must be an integer in 1..%d", COST_PAGE_MAX);
        return -1;
    }
    return 0;
}

/* Sets "next" on out (borrowed) and the Link header: the page after epoch last, or null. */
static int set_next(req *r, json_t *out, const char *id, int64_t last, int64_t limit, int more)
{
    char next[128], link[160];
    if (!more)
        return json_object_set_new(out, "next", json_null());
    snprintf(next, sizeof next, "/v1/jobs/%s/cost?after=%lld&limit=%lld", id, (long long)last,
             (long long)limit);
    snprintf(link, sizeof link, "<%s>; rel=\"next\"", next);
    http_add_header(r, "Link", link);
    return json_object_set_new(out, "next", json_string(next));
}

static handler_result job_cost(server *s, req *r, const store_job *job)
{
    cost_page p = {0};
    handler_result hr;
    int64_t after, limit;
    api_error err = {0};
    if (cost_query(r, &after, &limit, &err) < 0) {
        hr = handlers_reply_api_error(r, &err);
        goto cleanup;
    }
    /* one row more than the page: whether another page follows */
    int live = job->status == JOB_RUNNING ? page_live(s, job->id, after, limit + 1, &p) : 0;
    if (live < 0) {
        hr = http_reply_problem(r, 503, "out of memory: try again");
        goto cleanup;
    }
    if (!live) {
        store_error se = {0};
        int rc = store_job_history_page(s->st, r->owner, job->id, after, limit + 1, &p.epoch,
                                        &p.cost, &p.vcost, &p.acc, &p.vacc, &p.n, &se);
        if (rc < 0) {
            hr = handlers_reply_store_error(r, rc, &se, "job", job->id);
            goto cleanup;
        }
    }
    int more = p.n > (size_t)limit;
    if (more)
        p.n = (size_t)limit;
    api_job_history h = {p.epoch, p.cost, p.vcost, p.acc, p.vacc, p.n};
    json_t *out = api_job_history_json(&h);
    if (out && set_next(r, out, job->id, p.n ? p.epoch[p.n - 1] : after, limit, more) < 0) {
        json_decref(out);
        out = NULL;
    }
    hr = out ? http_reply_json(r, 200, out)
             : http_reply_problem(r, 503, "out of memory: could not encode the cost history");
    if (job->status == JOB_SUCCEEDED || job->status == JOB_FAILED ||
        job->status == JOB_CANCELLED) /* a finished job's pages never change again */
        http_reply_immutable(r);
cleanup:
    page_clear(&p);
    return hr;
}

handler_result h_jobs_cost(void *ctx, req *r)
{
    return handlers_on_job(ctx, r, job_cost);
}
