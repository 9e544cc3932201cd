/* store.c — the engine-neutral part of the store (store.h): choosing the engine from a
 * location, the admission rules (--max-queue, --quota-jobs, --quota-bytes) that engines apply
 * inside their transactions, dataset size checks, job status names, error text. Nothing here
 * knows SQL; the engine (server/store/<engine>/) implements the rest (store_engine.h).
 */
#include "server/store/store_engine.h"
#include "server/common/text.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- engines and locations ---------------- */

/* Schemes of every engine backpropd knows, built into this binary or not. */
static const struct {
    const char *scheme, *engine;
} known_schemes[] = {
    {"file", "SQLite"},
    {"postgres", "PostgreSQL"},
    {"postgresql", "PostgreSQL"},
};

/* The scheme of "scheme://…" into out (lower case letters, digits, '+', '-', '.'), or "file"
 * for anything else (a directory). */
static void location_scheme(const char *location, char *out, size_t cap)
{
    size_t n = strspn(location, "abcdefghijklmnopqrstuvwxyz0123456789+-.");
    if (n == 0 || n >= cap || strncmp(location + n, "://", 3) != 0)
        snprintf(out, cap, "file");
    else
        snprintf(out, cap, "%.*s", (int)n, location);
}

/* The engines linked into this binary, in the order a scheme is looked up. */
static const store_engine *const engines[] = {&store_engine_sqlite, &store_engine_postgres};

static const store_engine *engine_of(const char *scheme)
{
    for (size_t e = 0; e < sizeof engines / sizeof engines[0]; e++)
        for (size_t i = 0; engines[e]->schemes[i]; i++)
            if (strcmp(scheme, engines[e]->schemes[i]) == 0)
                return engines[e];
    return NULL;
}

store *store_open(const char *location, store_error *err)
{
    char scheme[32];
    store *s = NULL;
    err->code = 0;
    err->msg[0] = '\0';
    if (!location || !*location) {
        store_err(err, STORE_IO, "store: no data location given");
        goto cleanup;
    }
    location_scheme(location, scheme, sizeof scheme);
    const store_engine *e = engine_of(scheme);
    if (e) {
        s = e->open(location, err);
        goto cleanup;
    }
    const char *engine = NULL;
    for (size_t i = 0; i < sizeof known_schemes / sizeof known_schemes[0]; i++)
        if (strcmp(scheme, known_schemes[i].scheme) == 0)
            engine = known_schemes[i].engine;
    if (engine)
        store_err(err, STORE_IO, "store: no %s engine in this build", engine);
    else
        store_err(err, STORE_IO, "store: unknown location scheme \"%s://\" (give a directory "
                  "or a postgres:// URI)", scheme);
cleanup:
    if (s) {
        store_base *b = (store_base *)(void *)s;
        b->engine = e;
        memset(&b->limits, 0, sizeof b->limits);
        atomic_init(&b->all_jobs, 1);
        for (size_t i = 0; i < STORE_JOB_VERSION_SLOTS; i++)
            atomic_init(&b->job[i], 0);
    }
    return s;
}

void store_close(store *s)
{
    if (s)
        ((store_base *)(void *)s)->engine->close(s);
}

const char *store_engine_of(const store *s)
{
    return ((const store_base *)(const void *)s)->engine->name;
}

/* ---------------- job versions (store_job_version) ---------------- */

static size_t version_slot(const char *id)
{
    return text_hash(id) & (STORE_JOB_VERSION_SLOTS - 1);
}

uint64_t store_job_version(store *s, const char *id)
{
    store_base *b = (store_base *)(void *)s;
    uint64_t seen = b->engine->writes_seen ? b->engine->writes_seen(s) : 0;
    if (!seen)
        return 0;
    /* The three counters only grow, so their sum changes whenever one does; seen is never
     * 0 here, so neither is the sum. */
    return seen + atomic_load(&b->all_jobs) + atomic_load(&b->job[version_slot(id)]);
}

static void bump_job(store *s, const char *id)
{
    atomic_fetch_add(&((store_base *)(void *)s)->job[version_slot(id)], 1);
}

static void bump_all(store *s)
{
    atomic_fetch_add(&((store_base *)(void *)s)->all_jobs, 1);
}

/* What each operation does to job versions once the engine has returned (committed or
 * rolled back: a bump too many only costs a cache miss). Every operation is listed, so a new
 * one does not compile until it is classified here. Reads: nothing. */
#define AFTER_ping(...)
#define AFTER_listen(...)
#define AFTER_dataset_put(...)
#define AFTER_dataset_get(...)
#define AFTER_dataset_load(...)
#define AFTER_dataset_list(...)
#define AFTER_dataset_bytes(...)
#define AFTER_dataset_classes(...)
#define AFTER_job_get(...)
#define AFTER_job_list(...)
#define AFTER_job_count_active(...)
#define AFTER_job_count_by_status(...)
#define AFTER_job_leases(...)
#define AFTER_job_checkpoint_load(...)
#define AFTER_job_weights(...)
#define AFTER_job_history_page(...)
#define AFTER_job_theta0(...)
/* Writes of one job, named by id. */
#define AFTER_job_create(s, job, ...) bump_job(s, (job)->id)
#define AFTER_job_renew(s, id, ...) bump_job(s, id)
#define AFTER_job_release(s, id, ...) bump_job(s, id)
#define AFTER_job_expire_lease(s, id, ...) bump_job(s, id)
#define AFTER_job_checkpoint(s, id, ...) bump_job(s, id)
#define AFTER_job_progress(s, id, ...) bump_job(s, id)
#define AFTER_job_finish(s, id, ...) bump_job(s, id)
#define AFTER_job_set_metrics(s, id, ...) bump_job(s, id)
#define AFTER_job_request_cancel(s, owner, id, ...) bump_job(s, id)
#define AFTER_job_delete(s, owner, id, ...) bump_job(s, id)
/* Writes that may change jobs they do not name: a claim also ends other jobs (a running job
 * whose worker died after a cancel); a dataset's deletion, to be safe. */
#define AFTER_job_claim(s, ...) bump_all(s)
#define AFTER_dataset_delete(s, ...) bump_all(s)

/* Every other store.h operation goes to the engine the store was opened with. */
#define STORE_DISPATCH(ret, name, params, args)                                                \
    ret store_##name params                                                                    \
    {                                                                                          \
        err->code = 0;                                                                         \
        err->msg[0] = '\0';                                                                    \
        ret rc = ((store_base *)(void *)s)->engine->name args;                                 \
        AFTER_##name args;                                                                     \
        return rc;                                                                             \
    }
STORE_ENGINE_OPS(STORE_DISPATCH)

int store_job_history(store *s, const char *owner, const char *id, int64_t **epoch,
                      double **cost, double **validation_cost, double **accuracy,
                      double **validation_accuracy, size_t *n, store_error *err)
{
    return store_job_history_page(s, owner, id, 0, -1, epoch, cost, validation_cost, accuracy,
                                  validation_accuracy, n, err);
}
#undef STORE_DISPATCH

void store_set_limits(store *s, const store_limits *limits)
{
    store_base *b = (store_base *)(void *)s;
    b->limits = *limits;
}

/* ---------------- errors ---------------- */

int store_err(store_error *err, int code, const char *fmt, ...)
{
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

/* ---------------- admission ---------------- */

static const store_limits *limits_of(const store *s)
{
    return &((const store_base *)(const void *)s)->limits;
}

int store_admit_job(const store *s, int64_t all, int64_t mine, store_error *err)
{
    const store_limits *l = limits_of(s);
    if (l->max_active > 0 && all >= l->max_active)
        return store_err(err, STORE_QUEUE_FULL, "the job queue is full (%lld of %lld queued or "
                         "running): retry later", (long long)all, (long long)l->max_active);
    if (l->max_active_owner > 0 && mine >= l->max_active_owner)
        return store_err(err, STORE_QUOTA, "quota: at most %lld queued or running jobs per API "
                         "key (--quota-jobs); wait for one to finish or cancel one",
                         (long long)l->max_active_owner);
    return 0;
}

int store_admit_bytes(const store *s, int64_t have, int64_t add, store_error *err)
{
    const store_limits *l = limits_of(s);
    int64_t max = l->max_bytes_owner;
    if (max <= 0 || (add >= 0 && have <= max && add <= max - have))
        return 0;
    int64_t want = add < 0 || add > INT64_MAX - have ? INT64_MAX : have + add;
    return store_err(err, STORE_QUOTA, "quota: datasets of this API key would take %lld of %lld "
                     "bytes (--quota-bytes); delete datasets to make room", (long long)want,
                     (long long)max);
}

int store_idem_decide(store_idempotency *idem, int found, const char *request, const char *id,
                      store_error *err)
{
    if (!found)
        return 0;
    if (strcmp(request, idem->request) != 0)
        return store_err(err, STORE_KEY_REUSED, "Idempotency-Key: already used for a different "
                         "request (another body or parameters); use a new key for a new "
                         "request");
    snprintf(idem->replay_id, sizeof idem->replay_id, "%s", id);
    return store_err(err, STORE_REPLAY, "Idempotency-Key: already used for this request");
}

/* ---------------- datasets ---------------- */

int store_dataset_sizes(const store_dataset_meta *m, int64_t *xbytes, int64_t *ybytes,
                        store_error *err)
{
    int64_t xn, xb, yn, yb, total;
    if (m->rows <= 0 || m->features <= 0 || m->outputs <= 0)
        return store_err(err, STORE_CONFLICT, "store: dataset: rows, features and outputs must "
                         "be positive");
    if (__builtin_mul_overflow(m->rows, m->features, &xn) ||
        __builtin_mul_overflow(xn, (int64_t)8, &xb) ||
        __builtin_mul_overflow(m->rows, m->has_labels ? (int64_t)1 : m->outputs, &yn) ||
        __builtin_mul_overflow(yn, (int64_t)(m->has_labels ? 4 : 8), &yb) ||
        __builtin_add_overflow(xb, yb, &total))
        return store_err(err, STORE_CONFLICT, "store: dataset too large");
#if SIZE_MAX < INT64_MAX
    if (total > (int64_t)SIZE_MAX)
        return store_err(err, STORE_CONFLICT, "store: dataset too large");
#endif
    *xbytes = xb;
    *ybytes = yb;
    return 0;
}

int store_dataset_check(const store_dataset_meta *m, const void *X, const void *labels,
                        const void *Y, int64_t *xbytes, int64_t *ybytes, store_error *err)
{
    if (store_dataset_sizes(m, xbytes, ybytes, err) < 0)
        return err->code;
    if (!X || (m->has_labels ? !labels : !Y))
        return store_err(err, STORE_CONFLICT, "store: dataset: missing %s",
                         !X ? "X" : m->has_labels ? "labels" : "Y");
    return 0;
}

/* ---------------- jobs ---------------- */

void store_weights_label(const store_history *hist, const store_progress *p, int64_t *epoch,
                         double *cost, double *validation_cost)
{
    *epoch = 0;
    *cost = *validation_cost = NAN;
    if (p && p->best_epoch > 0) {
        *epoch = p->best_epoch;
        *cost = p->best_cost;
        *validation_cost = p->best_validation_cost;
    } else if (p) {
        *epoch = p->epoch;
        *cost = p->cost;
        *validation_cost = p->validation_cost;
    } else if (hist && hist->n > 0) {
        *epoch = hist->first_epoch + hist->n - 1;
    }
}

static const char *const status_names[] = {"queued", "running", "succeeded", "failed",
                                           "cancelled"};

const char *job_status_name(job_status s)
{
    return (unsigned)s < 5 ? status_names[s] : "unknown";
}

int job_status_parse(const char *name, job_status *out)
{
    for (int i = 0; name && i < 5; i++)
        if (strcmp(name, status_names[i]) == 0) {
            *out = (job_status)i;
            return 0;
        }
    return -1;
}

void store_job_clear(store_job *j)
{
    if (!j)
        return;
    free(j->spec_json);
    j->spec_json = NULL;
    free(j->labels_json);
    j->labels_json = NULL;
    free(j->metrics_json);
    j->metrics_json = NULL;
}

void store_jobs_free(store_job *jobs, size_t n)
{
    if (!jobs)
        return;
    for (size_t i = 0; i < n; i++)
        store_job_clear(&jobs[i]);
    free(jobs);
}

int store_lease_ref_split(const char *ref, char *buf, size_t cap, int64_t *token)
{
    const char *hash = strrchr(ref, '#');
    size_t n = hash ? (size_t)(hash - ref) : strlen(ref);
    *token = 0;
    if (n >= cap)
        return -1;
    memcpy(buf, ref, n);
    buf[n] = '\0';
    if (hash) {
        char *end;
        long long t = strtoll(hash + 1, &end, 10);
        if (end == hash + 1 || *end || t <= 0)
            return -1;
        *token = t;
    }
    return 0;
}
