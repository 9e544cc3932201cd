/* store_postgres_results.c — what a job produces in the PostgreSQL store: checkpoints with
 * their cost history, the final transition, cancel and delete, and the reads of results
 * (checkpoint image, weights, history, warm start). Every worker write first checks the lease
 * and its fencing token (postgres_check_lease, store_postgres_leases.c) in its transaction.
 */
#include "server/store/postgres/store_postgres_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* new: a float8[] literal of v[0..n-1] ("{1.5,NULL,…}": NaN or v NULL is NULL; %.17g reads
 * back bit-exact). NULL when out of memory. */
static char *f64_array(const double *v, int64_t n)
{
    size_t cap = (size_t)n * 26 + 3, used = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[used++] = '{';
    for (int64_t i = 0; i < n; i++) {
        double d = v ? v[i] : NAN;
        const char *sep = i ? "," : "";
        int w;
        if (isnan(d))
            w = snprintf(s + used, cap - used, "%sNULL", sep);
        else if (isinf(d))
            w = snprintf(s + used, cap - used, "%s%sInfinity", sep, d < 0 ? "-" : "");
        else
            w = snprintf(s + used, cap - used, "%s%.17g", sep, d);
        used += (size_t)w;
    }
    s[used++] = '}';
    s[used] = '\0';
    return s;
}

/* History rows from hist->first_epoch on are replaced by hist (one statement for all rows). */
static int put_history(pconn *c, const char *id, const store_history *hist, store_error *err)
{
    if (!hist)
        return 0;
    pargs a = {0};
    postgres_arg_text(&a, id);
    postgres_arg_i64(&a, hist->first_epoch);
    if (postgres_run(c, "DELETE FROM job_history WHERE job_id = $1 AND epoch >= $2", &a,
                     "store history", NULL, err) < 0)
        return err->code;
    if (hist->n <= 0)
        return 0;
    char *col[4] = {f64_array(hist->cost, hist->n), f64_array(hist->validation_cost, hist->n),
                    f64_array(hist->accuracy, hist->n),
                    f64_array(hist->validation_accuracy, hist->n)};
    int code = 0;
    if (!col[0] || !col[1] || !col[2] || !col[3]) {
        code = store_err(err, STORE_NOMEM, "store: out of memory");
        goto cleanup;
    }
    for (int k = 0; k < 4; k++)
        postgres_arg_text(&a, col[k]);
    code = postgres_run(c, "INSERT INTO job_history(job_id, epoch, cost, validation_cost, "
                        "accuracy, validation_accuracy) SELECT $1, $2 + o - 1, c, v, a, va "
                        "FROM unnest($3::float8[], $4::float8[], $5::float8[], $6::float8[]) "
                        "WITH ORDINALITY AS u(c, v, a, va, o)", &a, "store history", NULL, err);
cleanup:
    for (int k = 0; k < 4; k++)
        free(col[k]);
    return code;
}

static int put_progress(pconn *c, const char *id, const store_progress *p, store_error *err)
{
    if (!p)
        return 0;
    pargs a = {0};
    postgres_arg_text(&a, id);
    postgres_arg_i64(&a, p->epoch);
    postgres_arg_i64(&a, p->epochs);
    postgres_arg_f64(&a, p->cost);
    postgres_arg_f64(&a, p->validation_cost);
    postgres_arg_f64(&a, p->accuracy);
    postgres_arg_f64(&a, p->samples_per_second);
    postgres_arg_f64(&a, p->validation_accuracy);
    postgres_arg_i64(&a, p->best_epoch);
    char reason[sizeof p->stop_reason + 1];
    snprintf(reason, sizeof reason, "%.*s", (int)sizeof p->stop_reason, p->stop_reason);
    postgres_arg_text(&a, reason[0] ? reason : NULL);
    return postgres_run(c, "UPDATE jobs SET p_epoch = $2, p_epochs = $3, p_cost = $4, "
                        "p_validation_cost = $5, p_accuracy = $6, p_samples_per_second = $7, "
                        "p_validation_accuracy = $8, best_epoch = $9, stop_reason = $10 "
                        "WHERE id = $1", &a, "store progress", NULL, err);
}

/* The weights (theta, NULL to keep none) and checkpoint image (may be NULL) of job id,
 * labelled by store_weights_label. */
static int put_weights(pconn *c, const char *id, const store_history *hist,
                       const store_progress *p, const double *theta, int64_t n_params,
                       const void *image, size_t image_len, store_error *err)
{
    int64_t epoch;
    double cost, vcost;
    store_weights_label(hist, p, &epoch, &cost, &vcost);
    if (theta && (n_params < 0 || n_params > INT32_MAX / 8))
        return store_err(err, STORE_CONFLICT, "store: bad parameter count");
    if (image_len > INT32_MAX)
        return store_err(err, STORE_CONFLICT, "store: checkpoint too large");
    pargs a = {0};
    postgres_arg_text(&a, id);
    postgres_arg_i64(&a, epoch);
    postgres_arg_f64(&a, cost);
    postgres_arg_i64(&a, theta ? n_params : 0);
    postgres_arg_bytes(&a, theta, theta ? (size_t)n_params * 8 : 0);
    postgres_arg_bytes(&a, image, image_len);
    postgres_arg_f64(&a, vcost);
    return postgres_run(c, "INSERT INTO job_checkpoints(job_id, epoch, cost, n_params, theta, "
                        "image, validation_cost) VALUES($1,$2,$3,$4,$5,$6,$7) "
                        "ON CONFLICT(job_id) DO UPDATE SET epoch = excluded.epoch, "
                        "cost = excluded.cost, n_params = excluded.n_params, "
                        "theta = excluded.theta, image = excluded.image, "
                        "validation_cost = excluded.validation_cost", &a,
                        image ? "store checkpoint" : "store final weights", NULL, err);
}

static int checkpoint_body(pconn *c, const char *id, const char *worker_id,
                           const store_history *hist, const store_progress *progress,
                           const void *image, size_t image_len, const double *theta,
                           int64_t n_params, store_error *err)
{
    if (postgres_check_lease(c, id, worker_id, err) < 0 || put_history(c, id, hist, err) < 0 ||
        put_progress(c, id, progress, err) < 0 ||
        put_weights(c, id, hist, progress, theta, n_params, image, image_len, err) < 0)
        return err->code;
    pargs a = {0};
    postgres_arg_text(&a, id);
    return postgres_run(c, "SELECT pg_notify('backpropd_progress', $1)", &a, "store progress",
                        NULL, err);
}

int postgres_job_checkpoint(store *s, const char *id, const char *worker_id,
                            const store_history *hist, const store_progress *progress,
                            const void *checkpoint, size_t checkpoint_len, const double *theta,
                            int64_t n_params, store_error *err)
{
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_WRITE, err)
        t.code = checkpoint_body(t.c, id, worker_id, hist, progress, checkpoint, checkpoint_len,
                                 theta, n_params, err);
    return t.code;
}

static int progress_body(pconn *c, const char *id, const char *worker_id,
                         const store_history *hist, const store_progress *progress,
                         store_error *err)
{
    if (postgres_check_lease(c, id, worker_id, err) < 0 || put_history(c, id, hist, err) < 0 ||
        put_progress(c, id, progress, err) < 0)
        return err->code;
    pargs a = {0};
    postgres_arg_text(&a, id);
    return postgres_run(c, "SELECT pg_notify('backpropd_progress', $1)", &a, "store progress",
                        NULL, err);
}

int postgres_job_progress(store *s, const char *id, const char *worker_id,
                          const store_history *hist, const store_progress *progress,
                          store_error *err)
{
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_WRITE, err)
        t.code = progress_body(t.c, id, worker_id, hist, progress, err);
    return t.code;
}

static int finish_body(pconn *c, const char *id, const char *worker_id, job_status status,
                       const char *error, const store_history *hist,
                       const store_progress *progress, const double *theta, int64_t n_params,
                       store_error *err)
{
    if (postgres_check_lease(c, id, worker_id, err) < 0 || put_history(c, id, hist, err) < 0 ||
        put_progress(c, id, progress, err) < 0)
        return err->code;
    pargs a = {0};
    postgres_arg_text(&a, id);
    if (theta ? put_weights(c, id, hist, progress, theta, n_params, NULL, 0, err) < 0
              : postgres_run(c, "UPDATE job_checkpoints SET image = NULL WHERE job_id = $1", &a,
                             "store final weights", NULL, err) < 0)
        return err->code;
    postgres_arg_i64(&a, (int64_t)status);
    postgres_arg_i64(&a, clock_wall_ms());
    postgres_arg_text(&a, error ? error : "");
    if (postgres_run(c, "UPDATE jobs SET status = $2, finished_at = $3, error = $4, "
                     "lease_owner = NULL, lease_until = 0 WHERE id = $1", &a, "finish job", NULL,
                     err) < 0)
        return err->code;
    a.n = 1;
    return postgres_run(c, "SELECT pg_notify('backpropd_progress', $1)", &a, "finish job", NULL,
                        err);
}

int postgres_job_finish(store *s, const char *id, const char *worker_id, job_status status,
                        const char *error, const store_history *hist,
                        const store_progress *progress, const double *theta, int64_t n_params,
                        store_error *err)
{
    if (status != JOB_SUCCEEDED && status != JOB_FAILED && status != JOB_CANCELLED)
        return store_err(err, STORE_CONFLICT, "store: finish needs a final status");
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_WRITE, err)
        t.code = finish_body(t.c, id, worker_id, status, error, hist, progress, theta, n_params,
                             err);
    return t.code;
}

static int metrics_body(pconn *c, const char *id, const char *worker_id,
                        const char *metrics_json, store_error *err)
{
    if (postgres_check_lease(c, id, worker_id, err) < 0)
        return err->code;
    pargs a = {0};
    postgres_arg_text(&a, id);
    postgres_arg_text(&a, metrics_json);
    return postgres_run(c, "UPDATE jobs SET metrics_json = $2 WHERE id = $1", &a,
                        "store metrics", NULL, err);
}

int postgres_job_set_metrics(store *s, const char *id, const char *worker_id,
                             const char *metrics_json, store_error *err)
{
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_WRITE, err)
        t.code = metrics_body(t.c, id, worker_id, metrics_json, err);
    return t.code;
}

static int cancel_body(pconn *c, const char *owner, const char *id, int *now_cancelled,
                       store_error *err)
{
    *now_cancelled = 0;
    pargs a = {0};
    postgres_arg_text(&a, id);
    postgres_arg_text(&a, owner ? owner : "");
    PGresult *r = postgres_exec(c, "SELECT status FROM jobs WHERE id = $1 AND owner = $2 "
                                "FOR UPDATE", &a, "cancel job", err);
    if (!r)
        return err->code;
    int found = PQntuples(r) > 0;
    int64_t status = found ? postgres_i64(r, 0, 0) : -1;
    PQclear(r);
    if (!found)
        return store_err(err, STORE_NOT_FOUND, "store: no such job");
    a.n = 1;
    if (status == JOB_QUEUED) {
        postgres_arg_i64(&a, clock_wall_ms());
        if (postgres_run(c, "UPDATE jobs SET status = 4, cancel_requested = 1, finished_at = $2 "
                         "WHERE id = $1", &a, "cancel job", NULL, err) < 0)
            return err->code;
        *now_cancelled = 1;
    } else if (status == JOB_RUNNING) {
        if (postgres_run(c, "UPDATE jobs SET cancel_requested = 1 WHERE id = $1", &a,
                         "cancel job", NULL, err) < 0)
            return err->code;
    }
    a.n = 1;
    return postgres_run(c, "SELECT pg_notify('backpropd_cancel', $1)", &a, "cancel job", NULL,
                        err);
}

int postgres_job_request_cancel(store *s, const char *owner, const char *id, int *now_cancelled,
                                store_error *err)
{
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_WRITE, err)
        t.code = cancel_body(t.c, owner, id, now_cancelled, err);
    return t.code;
}

static int delete_body(pconn *c, const postgres_tx *t, const char *owner, const char *id,
                       store_error *err)
{
    pargs a = {0};
    postgres_arg_text(&a, id);
    postgres_arg_text(&a, owner ? owner : "");
    int64_t changed = 0;
    if (postgres_run(c, "DELETE FROM jobs WHERE id = $1 AND owner = $2", &a, "delete job",
                     &changed, err) < 0)
        return err->code;
    /* on a retry, the first attempt's COMMIT of unknown outcome may have deleted it */
    if (changed == 0 && t->attempt == 0)
        return store_err(err, STORE_NOT_FOUND, "store: no such job");
    a.n = 1;
    return postgres_run(c, "SELECT pg_notify('backpropd_cancel', $1)", &a, "delete job", NULL,
                        err);
}

int postgres_job_delete(store *s, const char *owner, const char *id, store_error *err)
{
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_WRITE, err)
        t.code = delete_body(t.c, &t, owner, id, err);
    return t.code;
}
