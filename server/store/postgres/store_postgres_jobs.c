/* store_postgres_jobs.c — jobs in the PostgreSQL store: the queue of record, cost history,
 * checkpoints and weights (store.h); claims and leases are in store_postgres_leases.c.
 *
 * DESIGN. The same life cycle as the SQLite engine (store_sqlite_jobs.c): queued → running →
 * succeeded | failed | cancelled, every worker write checked against its lease in the same
 * transaction. Here the check locks the job row (SELECT … FOR UPDATE) and compares both the
 * lease owner and the fencing token, so a worker whose lease was taken over (expired and
 * claimed again, by any instance) can never overwrite the new holder's checkpoint, history or
 * result, and a claim waits for a checkpoint in flight to commit. Admission counts run under a
 * transaction-scoped advisory lock, so concurrent creators on any instance cannot both take
 * the last place; the dataset row is locked FOR SHARE so it cannot be deleted under a new job.
 */
#include "server/store/postgres/store_postgres_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADMISSION_LOCK 0x42506a62 /* "BPjb" */

int postgres_read_job(const PGresult *r, int row, store_job *j, store_error *err)
{
    memset(j, 0, sizeof *j);
    postgres_text(j->id, sizeof j->id, r, row, 0);
    postgres_text(j->owner, sizeof j->owner, r, row, 1);
    postgres_text(j->dataset_id, sizeof j->dataset_id, r, row, 2);
    j->spec_json = strndup(PQgetvalue(r, row, 3), (size_t)PQgetlength(r, row, 3));
    int labels = !PQgetisnull(r, row, 23), metrics = !PQgetisnull(r, row, 24);
    if (labels)
        j->labels_json = strndup(PQgetvalue(r, row, 23), (size_t)PQgetlength(r, row, 23));
    if (metrics)
        j->metrics_json = strndup(PQgetvalue(r, row, 24), (size_t)PQgetlength(r, row, 24));
    if (!j->spec_json || (labels && !j->labels_json) || (metrics && !j->metrics_json)) {
        store_job_clear(j);
        return store_err(err, STORE_NOMEM, "store: out of memory");
    }
    j->status = (job_status)postgres_i64(r, row, 4);
    j->cancel_requested = postgres_i64(r, row, 5) != 0;
    j->seq = postgres_i64(r, row, 6);
    j->created_at = postgres_i64(r, row, 7);
    j->started_at = postgres_i64(r, row, 8);
    j->finished_at = postgres_i64(r, row, 9);
    postgres_text(j->error, sizeof j->error, r, row, 10);
    j->progress.epoch = postgres_i64(r, row, 11);
    j->progress.epochs = postgres_i64(r, row, 12);
    j->progress.cost = postgres_f64(r, row, 13);
    j->progress.validation_cost = postgres_f64(r, row, 14);
    j->progress.accuracy = postgres_f64(r, row, 15);
    j->progress.samples_per_second = postgres_f64(r, row, 16);
    postgres_text(j->lease_owner, sizeof j->lease_owner, r, row, 17);
    j->lease_until = postgres_i64(r, row, 18);
    j->progress.validation_accuracy = postgres_f64(r, row, 19);
    j->progress.best_epoch = postgres_i64(r, row, 20);
    j->progress.best_cost = j->progress.best_validation_cost = NAN;
    postgres_text(j->progress.stop_reason, sizeof j->progress.stop_reason, r, row, 21);
    j->lease_token = postgres_i64(r, row, 22);
    if (!j->progress.stop_reason[0] && (j->status == JOB_CANCELLED || j->status == JOB_FAILED))
        snprintf(j->progress.stop_reason, sizeof j->progress.stop_reason, "%s",
                 j->status == JOB_CANCELLED ? "cancelled" : "error");
    return 0;
}

static int count_active(pconn *c, const char *owner, int64_t *n, store_error *err)
{
    pargs a = {0};
    postgres_arg_text(&a, owner);
    PGresult *r = postgres_exec(c, "SELECT count(*) FROM jobs WHERE status IN (0, 1) "
                                "AND ($1::text IS NULL OR owner = $1)", &a, "count jobs", err);
    if (!r)
        return err->code;
    *n = postgres_i64(r, 0, 0);
    PQclear(r);
    return 0;
}

/* ---------------- create, read, list ---------------- */

static int create_body(pconn *c, const postgres_tx *t, store_job *job, int64_t now,
                       const double *theta0, int64_t n_params, int64_t *seq, store_error *err)
{
    char id[sizeof job->id + 1], owner[sizeof job->owner + 1];
    snprintf(id, sizeof id, "%.*s", (int)sizeof job->id, job->id);
    snprintf(owner, sizeof owner, "%.*s", (int)sizeof job->owner, job->owner);
    pargs a = {0};
    postgres_arg_text(&a, id);
    PGresult *r;
    if (t->attempt > 0) { /* an earlier COMMIT of unknown outcome may have stored it */
        r = postgres_exec(c, "SELECT seq FROM jobs WHERE id = $1", &a, "create job", err);
        if (!r)
            return err->code;
        *seq = PQntuples(r) ? postgres_i64(r, 0, 0) : 0;
        PQclear(r);
        if (*seq)
            return 0;
    }
    if (postgres_idem_check(c, owner, "job", job->idem, err) < 0)
        return err->code;
    memset(&a, 0, sizeof a);
    POSTGRES_ARG_FIELD(&a, job->dataset_id);
    postgres_arg_text(&a, owner);
    r = postgres_exec(c, "SELECT 1 FROM datasets WHERE id = $1 AND owner = $2 FOR SHARE", &a,
                      "create job", err);
    if (!r)
        return err->code;
    int found = PQntuples(r) > 0;
    PQclear(r);
    if (!found)
        return store_err(err, STORE_NOT_FOUND, "store: no such dataset");
    const store_limits *l = &((const store_base *)(const void *)t->s)->limits;
    if (l->max_active > 0 || l->max_active_owner > 0) {
        memset(&a, 0, sizeof a);
        postgres_arg_i64(&a, ADMISSION_LOCK);
        int64_t all = 0, mine = 0;
        if (postgres_run(c, "SELECT pg_advisory_xact_lock($1::bigint)", &a, "create job", NULL,
                         err) < 0 ||
            count_active(c, NULL, &all, err) < 0 || count_active(c, owner, &mine, err) < 0 ||
            store_admit_job((const store *)t->s, all, mine, err) < 0)
            return err->code;
    }
    memset(&a, 0, sizeof a);
    postgres_arg_text(&a, id);
    postgres_arg_text(&a, owner);
    POSTGRES_ARG_FIELD(&a, job->dataset_id);
    postgres_arg_text(&a, job->spec_json);
    postgres_arg_i64(&a, now);
    postgres_arg_i64(&a, job->progress.epoch);
    postgres_arg_i64(&a, job->progress.epochs);
    postgres_arg_f64(&a, job->progress.cost);
    postgres_arg_f64(&a, job->progress.validation_cost);
    postgres_arg_f64(&a, job->progress.accuracy);
    postgres_arg_f64(&a, job->progress.samples_per_second);
    postgres_arg_i64(&a, theta0 ? n_params : 0);
    postgres_arg_bytes(&a, theta0, theta0 ? (size_t)n_params * 8 : 0);
    postgres_arg_text(&a, job->labels_json);
    r = postgres_exec(c, "INSERT INTO jobs(id, owner, dataset_id, spec_json, status, created_at, "
                      "p_epoch, p_epochs, p_cost, p_validation_cost, p_accuracy, "
                      "p_samples_per_second, theta0_n, theta0, labels) "
                      "VALUES($1,$2,$3,$4,0,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14) RETURNING seq", &a,
                      "create job", err);
    if (!r) {
        if (err->code == STORE_CONFLICT)
            store_err(err, STORE_CONFLICT, "store: job id already exists");
        return err->code;
    }
    *seq = postgres_i64(r, 0, 0);
    PQclear(r);
    if (postgres_idem_record(c, owner, "job", job->idem, id, err) < 0)
        return err->code;
    /* wakes idle workers of every instance listening (delivered at commit) */
    return postgres_run(c, "NOTIFY backpropd_jobs", NULL, "create job", NULL, err);
}

int postgres_job_create(store *s, store_job *job, const double *theta0, int64_t n_params,
                        store_error *err)
{
    if (!job->spec_json)
        return store_err(err, STORE_CONFLICT, "store: job has no spec");
    if (theta0 && (n_params < 0 || n_params > INT32_MAX / 8))
        return store_err(err, STORE_CONFLICT, "store: bad parameter count");
    int64_t now = clock_wall_ms(), seq = 0;
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_WRITE, err)
        t.code = create_body(t.c, &t, job, now, theta0, n_params, &seq, err);
    if (t.code < 0)
        return t.code;
    job->seq = seq;
    job->created_at = now;
    job->status = JOB_QUEUED;
    job->cancel_requested = 0;
    job->started_at = job->finished_at = 0;
    job->error[0] = '\0';
    return 0;
}

static int get_body(pconn *c, const char *owner, const char *id, store_job *out,
                    store_error *err)
{
    store_job_clear(out);
    pargs a = {0};
    postgres_arg_text(&a, id);
    postgres_arg_text(&a, owner);
    PGresult *r = postgres_exec(c, "SELECT " POSTGRES_JOB_COLS " FROM jobs WHERE id = $1 "
                                "AND ($2::text IS NULL OR owner = $2)", &a, "read job", err);
    if (!r)
        return err->code;
    int code = PQntuples(r) ? postgres_read_job(r, 0, out, err)
                            : store_err(err, STORE_NOT_FOUND, "store: no such job");
    PQclear(r);
    return code;
}

int postgres_job_get(store *s, const char *owner, const char *id, store_job *out,
                     store_error *err)
{
    memset(out, 0, sizeof *out);
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_READ, err)
        t.code = get_body(t.c, owner, id, out, err);
    return t.code;
}

/* postgres_read_job as a postgres_read_page row reader. */
static int read_job_row(const PGresult *r, int row, void *dst, store_error *err)
{
    return postgres_read_job(r, row, dst, err);
}

static int list_body(pconn *c, const char *owner, int status, int64_t cursor, int limit,
                     store_job **out, size_t *n, int64_t *next_cursor, store_error *err)
{
    store_jobs_free(*out, *n);
    *out = NULL;
    *n = 0;
    *next_cursor = 0;
    pargs a = {0};
    postgres_arg_text(&a, owner);
    postgres_arg_i64(&a, status);
    postgres_arg_i64(&a, cursor > 0 ? cursor : INT64_MAX);
    postgres_arg_i64(&a, limit + 1);
    PGresult *r = postgres_exec(c, "SELECT " POSTGRES_JOB_COLS " FROM jobs WHERE seq < $3 "
                                "AND ($1::text IS NULL OR owner = $1) "
                                "AND ($2::int < 0 OR status = $2) ORDER BY seq DESC LIMIT $4",
                                &a, "list jobs", err);
    if (!r)
        return err->code;
    void *page = NULL;
    int code = postgres_read_page(r, limit, sizeof **out, 6, read_job_row, &page, n,
                                  next_cursor, err);
    *out = page;
    PQclear(r);
    return code;
}

int postgres_job_list(store *s, const char *owner, int status, int64_t cursor, int limit,
                      store_job **out, size_t *n, int64_t *next_cursor, store_error *err)
{
    *out = NULL;
    *n = 0;
    limit = limit < 1 ? 1 : limit > 1000 ? 1000 : limit;
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_READ, err)
        t.code = list_body(t.c, owner, status, cursor, limit, out, n, next_cursor, err);
    if (t.code < 0) {
        store_jobs_free(*out, *n);
        *out = NULL;
        *n = 0;
        *next_cursor = 0;
    }
    return t.code;
}

int postgres_job_count_active(store *s, const char *owner, int64_t *n, store_error *err)
{
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_READ, err)
        t.code = count_active(t.c, owner, n, err);
    return t.code;
}

static int count_status_body(pconn *c, int64_t counts[5], store_error *err)
{
    memset(counts, 0, 5 * sizeof counts[0]);
    PGresult *r = postgres_exec(c, "SELECT status, count(*) FROM jobs GROUP BY status", NULL,
                                "count jobs", err);
    if (!r)
        return err->code;
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t k = postgres_i64(r, i, 0);
        if (k >= 0 && k < 5)
            counts[k] = postgres_i64(r, i, 1);
    }
    PQclear(r);
    return 0;
}

int postgres_job_count_by_status(store *s, int64_t counts[5], store_error *err)
{
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_READ, err)
        t.code = count_status_body(t.c, counts, err);
    return t.code;
}

/* ---------------- results ---------------- */

static int image_body(pconn *c, const char *id, void **buf, size_t *len, store_error *err)
{
    free(*buf);
    *buf = NULL;
    *len = 0;
    pargs a = {0};
    postgres_arg_text(&a, id);
    PGresult *r = postgres_exec(c, "SELECT image FROM job_checkpoints WHERE job_id = $1", &a,
                                "read checkpoint", err);
    if (!r)
        return err->code;
    int code = 0;
    if (PQntuples(r) && !PQgetisnull(r, 0, 0)) {
        size_t n = (size_t)PQgetlength(r, 0, 0);
        *buf = malloc(n ? n : 1);
        if (!*buf)
            code = store_err(err, STORE_NOMEM, "store: out of memory");
        else {
            memcpy(*buf, PQgetvalue(r, 0, 0), n);
            *len = n;
        }
    } else {
        code = store_err(err, STORE_NOT_FOUND, "store: job has no checkpoint");
    }
    PQclear(r);
    return code;
}

int postgres_job_checkpoint_load(store *s, const char *id, void **buf, size_t *len,
                                 store_error *err)
{
    *buf = NULL;
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_READ, err)
        t.code = image_body(t.c, id, buf, len, err);
    if (t.code < 0) {
        free(*buf);
        *buf = NULL;
        *len = 0;
    }
    return t.code;
}

typedef struct {
    double *theta;
    int64_t n, epoch;
    double cost, vcost;
} weights;

static int weights_body(pconn *c, const char *owner, const char *id, weights *w,
                        store_error *err)
{
    free(w->theta);
    memset(w, 0, sizeof *w);
    w->cost = w->vcost = NAN;
    pargs a = {0};
    postgres_arg_text(&a, id);
    postgres_arg_text(&a, owner);
    PGresult *r = postgres_exec(c, "SELECT c.n_params, c.epoch, c.cost, c.theta, "
                                "c.validation_cost FROM job_checkpoints c "
                                "JOIN jobs j ON j.id = c.job_id WHERE c.job_id = $1 "
                                "AND ($2::text IS NULL OR j.owner = $2)", &a, "read weights",
                                err);
    if (!r)
        return err->code;
    int code = 0;
    if (PQntuples(r) && !PQgetisnull(r, 0, 3)) {
        w->n = postgres_i64(r, 0, 0);
        code = postgres_doubles(r, 0, 3, w->n, &w->theta, "read weights", err);
        w->epoch = postgres_i64(r, 0, 1);
        w->cost = postgres_f64(r, 0, 2);
        w->vcost = postgres_f64(r, 0, 4);
    } else {
        code = store_err(err, STORE_NOT_FOUND, "store: job has no weights yet");
    }
    PQclear(r);
    return code;
}

int postgres_job_weights(store *s, const char *owner, const char *id, double **theta,
                         int64_t *n_params, int64_t *epoch, double *cost,
                         double *validation_cost, store_error *err)
{
    weights w = {0};
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_READ, err)
        t.code = weights_body(t.c, owner, id, &w, err);
    if (t.code < 0) {
        free(w.theta);
        memset(&w, 0, sizeof w);
        w.cost = w.vcost = NAN;
    }
    *theta = w.theta;
    *n_params = w.n;
    *epoch = w.epoch;
    *cost = w.cost;
    if (validation_cost)
        *validation_cost = w.vcost;
    return t.code;
}

/* The history's columns after epoch (NaN for NULL). */
enum { HIST_COST, HIST_VCOST, HIST_ACC, HIST_VACC, HIST_COLS };

static int history_body(pconn *c, const char *owner, const char *id, int64_t after,
                        int64_t limit, int64_t **e, double *col[HIST_COLS], size_t *n,
                        store_error *err)
{
    free(*e);
    *e = NULL;
    for (int k = 0; k < HIST_COLS; k++) {
        free(col[k]);
        col[k] = NULL;
    }
    *n = 0;
    pargs a = {0};
    postgres_arg_text(&a, id);
    postgres_arg_text(&a, owner);
    PGresult *r = postgres_exec(c, "SELECT 1 FROM jobs WHERE id = $1 "
                                "AND ($2::text IS NULL OR owner = $2)", &a, "read history", err);
    if (!r)
        return err->code;
    int found = PQntuples(r) > 0;
    PQclear(r);
    if (!found)
        return store_err(err, STORE_NOT_FOUND, "store: no such job");
    a.n = 1;
    postgres_arg_i64(&a, after);
    if (limit < 0)
        postgres_arg_text(&a, NULL); /* LIMIT NULL: all */
    else
        postgres_arg_i64(&a, limit);
    r = postgres_exec(c, "SELECT epoch, cost, validation_cost, accuracy, validation_accuracy "
                      "FROM job_history WHERE job_id = $1 AND epoch > $2 ORDER BY epoch "
                      "LIMIT $3::bigint", &a, "read history", err);
    if (!r)
        return err->code;
    size_t rows = (size_t)PQntuples(r);
    int bad = !(*e = malloc((rows ? rows : 1) * sizeof **e));
    for (int k = 0; k < HIST_COLS; k++)
        bad |= !(col[k] = malloc((rows ? rows : 1) * sizeof *col[k]));
    if (bad) {
        PQclear(r);
        return store_err(err, STORE_NOMEM, "store: out of memory");
    }
    for (size_t i = 0; i < rows; i++) {
        (*e)[i] = postgres_i64(r, (int)i, 0);
        for (int k = 0; k < HIST_COLS; k++)
            col[k][i] = postgres_f64(r, (int)i, 1 + k);
    }
    *n = rows;
    PQclear(r);
    return 0;
}

int postgres_job_history_page(store *s, const char *owner, const char *id, int64_t after,
                              int64_t limit, int64_t **epoch, double **cost,
                              double **validation_cost, double **accuracy,
                              double **validation_accuracy, size_t *n, store_error *err)
{
    double **out[HIST_COLS] = {cost, validation_cost, accuracy, validation_accuracy};
    double *col[HIST_COLS] = {NULL};
    int64_t *e = NULL;
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_READ, err)
        t.code = history_body(t.c, owner, id, after, limit, &e, col, n, err);
    if (t.code < 0) {
        free(e);
        e = NULL;
        for (int k = 0; k < HIST_COLS; k++) {
            free(col[k]);
            col[k] = NULL;
        }
        *n = 0;
    }
    *epoch = e;
    for (int k = 0; k < HIST_COLS; k++) {
        if (out[k])
            *out[k] = col[k];
        else
            free(col[k]);
    }
    return t.code;
}

static int theta0_body(pconn *c, const char *id, double **theta, int64_t *n_params,
                       store_error *err)
{
    free(*theta);
    *theta = NULL;
    *n_params = 0;
    pargs a = {0};
    postgres_arg_text(&a, id);
    PGresult *r = postgres_exec(c, "SELECT theta0_n, theta0 FROM jobs WHERE id = $1", &a,
                                "read theta0", err);
    if (!r)
        return err->code;
    int code = 0;
    if (PQntuples(r)) {
        int64_t n = postgres_i64(r, 0, 0);
        code = postgres_doubles(r, 0, 1, n, theta, "read theta0", err);
        if (code == 0 && *theta)
            *n_params = n;
    } else {
        code = store_err(err, STORE_NOT_FOUND, "store: no such job");
    }
    PQclear(r);
    return code;
}

int postgres_job_theta0(store *s, const char *id, double **theta, int64_t *n_params,
                        store_error *err)
{
    *theta = NULL;
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_READ, err)
        t.code = theta0_body(t.c, id, theta, n_params, err);
    if (t.code < 0) {
        free(*theta);
        *theta = NULL;
        *n_params = 0;
    }
    return t.code;
}
