/* store_sqlite_jobs.c — jobs in the SQLite store: the queue of record, cost history,
 * checkpoints and weights (store.h); claims and leases are in store_sqlite_leases.c, the engine
 * in store_sqlite.c, the SQL in store_sqlite_schema.c.
 *
 * DESIGN. A job row moves queued → running → succeeded | failed | cancelled. A worker CLAIMS
 * the queued (or lease-expired running) job with the lowest seq inside one BEGIN IMMEDIATE
 * transaction, so two workers — threads or processes sharing the file — can never claim the
 * same job: the second one's transaction starts after the first one's commit and no longer
 * sees the job as claimable. The lease (lease_owner, lease_until) is renewed by the worker;
 * every write a worker makes for a job (checkpoint, finish, release) first checks in the same
 * transaction that it still holds the lease, else STORE_CONFLICT. A checkpoint replaces the
 * previous one and the history rows from its first epoch on in one transaction, so a crash
 * leaves either the old or the new checkpoint, never a mix. Final weights stay in the
 * checkpoint row (its resume image is dropped at finish).
 * Start-up recovery (jobs_lease.c) lists the running jobs' leases and expires those of workers
 * known dead with the same compare-and-set on lease_owner as a release, so a lease renewed or
 * claimed by someone else in between is left alone.
 * Extension: reads that take an owner accept owner == NULL meaning "any owner" (internal
 * callers such as the workers); writes by a tenant require the owner.
 */
#include "server/store/sqlite/store_sqlite_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a row of JOB_COLS into *j (overwritten; spec_json new). */
static int read_job(sqlite3_stmt *st, store_job *j, store_error *err)
{
    memset(j, 0, sizeof *j);
    sqlite_copy_text(j->id, sizeof j->id, st, 0);
    sqlite_copy_text(j->owner, sizeof j->owner, st, 1);
    sqlite_copy_text(j->dataset_id, sizeof j->dataset_id, st, 2);
    const unsigned char *spec = sqlite3_column_text(st, 3);
    j->spec_json = strdup(spec ? (const char *)spec : "");
    const unsigned char *labels = sqlite3_column_text(st, 22);
    const unsigned char *metrics = sqlite3_column_text(st, 23);
    j->labels_json = labels ? strdup((const char *)labels) : NULL;
    j->metrics_json = metrics ? strdup((const char *)metrics) : NULL;
    if (!j->spec_json || (labels && !j->labels_json) || (metrics && !j->metrics_json)) {
        store_job_clear(j);
        return store_err(err, STORE_NOMEM, "store: out of memory");
    }
    j->status = (job_status)sqlite3_column_int(st, 4);
    j->cancel_requested = sqlite3_column_int(st, 5) != 0;
    j->seq = sqlite3_column_int64(st, 6);
    j->created_at = sqlite3_column_int64(st, 7);
    j->started_at = sqlite3_column_int64(st, 8);
    j->finished_at = sqlite3_column_int64(st, 9);
    sqlite_copy_text(j->error, sizeof j->error, st, 10);
    j->progress.epoch = sqlite3_column_int64(st, 11);
    j->progress.epochs = sqlite3_column_int64(st, 12);
    j->progress.cost = sqlite_column_real(st, 13);
    j->progress.validation_cost = sqlite_column_real(st, 14);
    j->progress.accuracy = sqlite_column_real(st, 15);
    j->progress.samples_per_second = sqlite_column_real(st, 16);
    sqlite_copy_text(j->lease_owner, sizeof j->lease_owner, st, 17);
    j->lease_until = sqlite3_column_int64(st, 18);
    j->progress.validation_accuracy = sqlite_column_real(st, 19);
    j->progress.best_epoch = sqlite3_column_int64(st, 20);
    j->progress.best_cost = j->progress.best_validation_cost = NAN;
    sqlite_copy_text(j->progress.stop_reason, sizeof j->progress.stop_reason, st, 21);
    if (!j->progress.stop_reason[0] && (j->status == JOB_CANCELLED || j->status == JOB_FAILED))
        snprintf(j->progress.stop_reason, sizeof j->progress.stop_reason, "%s",
                 j->status == JOB_CANCELLED ? "cancelled" : "error");
    return 0;
}

static void bind_progress(sqlite3_stmt *st, int first, const store_progress *p)
{
    sqlite3_bind_int64(st, first, p->epoch);
    sqlite3_bind_int64(st, first + 1, p->epochs);
    sqlite_bind_real(st, first + 2, p->cost);
    sqlite_bind_real(st, first + 3, p->validation_cost);
    sqlite_bind_real(st, first + 4, p->accuracy);
    sqlite_bind_real(st, first + 5, p->samples_per_second);
}

static int bind_doubles(sconn *c, sqlite3_stmt *st, int i, const double *v, int64_t n,
                        store_error *err)
{
    if (!v)
        return sqlite3_bind_null(st, i) == SQLITE_OK ? 0 : sqlite_fail(c, SQLITE_NOMEM, "bind", err);
    if (n < 0 || n > INT64_MAX / 8)
        return store_err(err, STORE_CONFLICT, "store: bad parameter count");
    int rc = sqlite3_bind_blob64(st, i, v, (sqlite3_uint64)n * 8, SQLITE_STATIC);
    return rc == SQLITE_OK ? 0 : sqlite_fail(c, rc, "bind weights", err);
}

/* Queued + running jobs of owner (NULL = everybody) on connection c, inside or outside a
 * transaction. 0 or a store_code. */
static int count_active(sconn *c, const char *owner, int64_t *n, store_error *err)
{
    *n = 0;
    sqlite3_stmt *st = sqlite_stmt(c, Q_JOB_COUNT_ACTIVE, err);
    if (!st)
        return err->code;
    sqlite_bind_opt_text(st, 1, owner);
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    else
        code = sqlite_fail(c, rc, "count jobs", err);
    sqlite3_reset(st);
    return code;
}

/* ---------------- create, read, list ---------------- */

int sqlite_job_create(store *s, store_job *job, const double *theta0, int64_t n_params,
                     store_error *err)
{
    if (!job->spec_json)
        return store_err(err, STORE_CONFLICT, "store: job has no spec");
    sconn *c = sqlite_write(s, err);
    if (!c)
        return err->code;
    int64_t now = clock_wall_ms();
    if (sqlite_idem_check(c, job->owner, "job", job->idem, err) < 0)
        goto fail;
    /* The dataset must exist for this owner: checked in the same transaction as the insert,
     * so it cannot be deleted in between (store_dataset_delete refuses while it is used). */
    sqlite3_stmt *st = sqlite_stmt(c, Q_DS_EXISTS, err);
    if (!st)
        goto fail;
    STORE_BIND_FIELD(st, 1, job->dataset_id);
    STORE_BIND_FIELD(st, 2, job->owner);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) {
        store_err(err, STORE_NOT_FOUND, "store: no such dataset");
        goto fail;
    }
    if (rc != SQLITE_ROW) {
        sqlite_fail(c, rc, "create job", err);
        goto fail;
    }
    /* Admission (--max-queue, --quota-jobs) in the transaction that inserts: no two creators
     * can both see the last free place. */
    int64_t all = 0, mine = 0;
    if (count_active(c, NULL, &all, err) < 0 || count_active(c, job->owner, &mine, err) < 0 ||
        store_admit_job(s, all, mine, err) < 0)
        goto fail;
    st = sqlite_stmt(c, Q_JOB_INSERT, err);
    if (!st)
        goto fail;
    STORE_BIND_FIELD(st, 1, job->id);
    STORE_BIND_FIELD(st, 2, job->owner);
    STORE_BIND_FIELD(st, 3, job->dataset_id);
    sqlite3_bind_text(st, 4, job->spec_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    bind_progress(st, 6, &job->progress);
    sqlite3_bind_int64(st, 12, theta0 ? n_params : 0);
    if (bind_doubles(c, st, 13, theta0, n_params, err) < 0)
        goto fail;
    sqlite_bind_opt_text(st, 14, job->labels_json);
    if (sqlite_exec(c, st, "create job", err) < 0) {
        if (err->code == STORE_CONFLICT)
            store_err(err, STORE_CONFLICT, "store: job id already exists");
        goto fail;
    }
    int64_t seq = sqlite3_last_insert_rowid(c->db);
    if (sqlite_idem_record(c, job->owner, "job", job->idem, job->id, err) < 0)
        goto fail;
    if (sqlite_commit(c, err) < 0)
        return err->code;
    job->seq = seq;
    job->created_at = now;
    job->status = JOB_QUEUED;
    job->cancel_requested = 0;
    job->started_at = job->finished_at = 0;
    job->error[0] = '\0';
    return 0;
fail:
    sqlite_rollback(c);
    return err->code;
}

/* One job by id (owner NULL = any) or, when id is NULL, by seq (store_sqlite_int.h). */
int sqlite_get_job(sconn *c, const char *owner, const char *id, int64_t seq, store_job *out,
               store_error *err)
{
    sqlite3_stmt *st = sqlite_stmt(c, id ? Q_JOB_GET : Q_JOB_GET_SEQ, err);
    if (!st)
        return err->code;
    if (id) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite_bind_opt_text(st, 2, owner);
    } else {
        sqlite3_bind_int64(st, 1, seq);
    }
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW)
        code = read_job(st, out, err);
    else if (rc == SQLITE_DONE)
        code = store_err(err, STORE_NOT_FOUND, "store: no such job");
    else
        code = sqlite_fail(c, rc, "read job", err);
    sqlite3_reset(st);
    return code;
}

int sqlite_job_get(store *s, const char *owner, const char *id, store_job *out, store_error *err)
{
    sconn *c = sqlite_conn(s, err);
    if (!c)
        return err->code;
    return sqlite_get_job(c, owner, id, 0, out, err);
}

/* sqlite_collect's reader and releaser of a job row. */
static int read_job_row(sqlite3_stmt *st, void *row, store_error *err)
{
    return read_job(st, row, err);
}

static void clear_job_row(void *row)
{
    store_job_clear(row);
}

int sqlite_job_list(store *s, const char *owner, int status, int64_t cursor, int limit,
                   store_job **out, size_t *n, int64_t *next_cursor, store_error *err)
{
    *out = NULL;
    *n = 0;
    *next_cursor = 0;
    limit = limit < 1 ? 1 : limit > 1000 ? 1000 : limit;
    sconn *c;
    sqlite3_stmt *st = sqlite_query(s, Q_JOB_LIST, &c, err);
    if (!st)
        return err->code;
    sqlite_bind_opt_text(st, 1, owner);
    sqlite3_bind_int(st, 2, status);
    sqlite3_bind_int64(st, 3, cursor > 0 ? cursor : INT64_MAX);
    sqlite3_bind_int(st, 4, limit + 1); /* one more tells whether a next page exists */
    sqlite_rows how = {sizeof **out, read_job_row, clear_job_row, 6 /* seq */, limit, "list jobs"};
    return sqlite_collect(c, st, &how, (void **)out, n, next_cursor, err);
}

int sqlite_job_count_active(store *s, const char *owner, int64_t *n, store_error *err)
{
    sconn *c = sqlite_conn(s, err);
    return c ? count_active(c, owner, n, err) : err->code;
}

int sqlite_job_count_by_status(store *s, int64_t counts[5], store_error *err)
{
    memset(counts, 0, 5 * sizeof counts[0]);
    sconn *c;
    sqlite3_stmt *st = sqlite_query(s, Q_JOB_COUNT_STATUS, &c, err);
    if (!st)
        return err->code;
    int rc, code = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int k = sqlite3_column_int(st, 0);
        if (k >= 0 && k < 5)
            counts[k] = sqlite3_column_int64(st, 1);
    }
    if (rc != SQLITE_DONE)
        code = sqlite_fail(c, rc, "count jobs", err);
    sqlite3_reset(st);
    return code;
}

/* ---------------- checkpoints and the end of a job ---------------- */

/* Inside a write transaction: history rows from hist->first_epoch on are replaced by hist. */
static int put_history(sconn *c, const char *id, const store_history *hist, store_error *err)
{
    if (!hist)
        return 0;
    sqlite3_stmt *st = sqlite_stmt_id(c, Q_HIST_DELETE_FROM, id, err);
    if (!st)
        return err->code;
    sqlite3_bind_int64(st, 2, hist->first_epoch);
    if (sqlite_exec(c, st, "store history", err) < 0)
        return err->code;
    for (int64_t i = 0; i < hist->n; i++) {
        st = sqlite_stmt_id(c, Q_HIST_INSERT, id, err);
        if (!st)
            return err->code;
        sqlite3_bind_int64(st, 2, hist->first_epoch + i);
        sqlite_bind_real(st, 3, hist->cost ? hist->cost[i] : NAN);
        sqlite_bind_real(st, 4, hist->validation_cost ? hist->validation_cost[i] : NAN);
        sqlite_bind_real(st, 5, hist->accuracy ? hist->accuracy[i] : NAN);
        sqlite_bind_real(st, 6, hist->validation_accuracy ? hist->validation_accuracy[i] : NAN);
        if (sqlite_exec(c, st, "store history", err) < 0)
            return err->code;
    }
    return 0;
}

static int put_progress(sconn *c, const char *id, const store_progress *p, store_error *err)
{
    if (!p)
        return 0;
    sqlite3_stmt *st = sqlite_stmt_id(c, Q_JOB_PROGRESS, id, err);
    if (!st)
        return err->code;
    bind_progress(st, 2, p);
    sqlite_bind_real(st, 8, p->validation_accuracy);
    sqlite3_bind_int64(st, 9, p->best_epoch);
    sqlite_bind_opt_text(st, 10, p->stop_reason[0] ? p->stop_reason : NULL);
    return sqlite_exec(c, st, "store progress", err);
}

/* Inside a write transaction: the weights (theta, NULL to keep none) and the checkpoint image
 * (may be NULL) of job id, labelled with the epoch and costs they belong to
 * (store_weights_label). */
static int put_weights(sconn *c, const char *id, const store_history *hist,
                       const store_progress *p, const double *theta, int64_t n_params,
                       const void *image, size_t image_len, store_error *err)
{
    int64_t epoch;
    double cost, vcost;
    store_weights_label(hist, p, &epoch, &cost, &vcost);
    sqlite3_stmt *st = sqlite_stmt_id(c, Q_CKPT_UPSERT, id, err);
    if (!st)
        return err->code;
    sqlite3_bind_int64(st, 2, epoch);
    sqlite_bind_real(st, 3, cost);
    sqlite3_bind_int64(st, 4, theta ? n_params : 0);
    if (bind_doubles(c, st, 5, theta, n_params, err) < 0)
        return err->code;
    int rc = image ? sqlite3_bind_blob64(st, 6, image, image_len, SQLITE_STATIC)
                   : sqlite3_bind_null(st, 6);
    if (rc != SQLITE_OK)
        return sqlite_fail(c, rc, "store checkpoint", err);
    sqlite_bind_real(st, 7, vcost);
    return sqlite_exec(c, st, image ? "store checkpoint" : "store final weights", err);
}

int sqlite_job_checkpoint(store *s, const char *id, const char *worker_id,
                         const store_history *hist, const store_progress *progress,
                         const void *checkpoint, size_t checkpoint_len,
                         const double *theta, int64_t n_params, store_error *err)
{
    if (checkpoint_len > (size_t)INT64_MAX)
        return store_err(err, STORE_CONFLICT, "store: checkpoint too large");
    sconn *c = sqlite_write(s, err);
    if (!c)
        return err->code;
    if (sqlite_check_lease(c, id, worker_id, err) < 0 || put_history(c, id, hist, err) < 0 ||
        put_progress(c, id, progress, err) < 0 ||
        put_weights(c, id, hist, progress, theta, n_params, checkpoint, checkpoint_len, err) < 0)
        goto fail;
    return sqlite_commit(c, err);
fail:
    sqlite_rollback(c);
    return err->code;
}

int sqlite_job_finish(store *s, const char *id, const char *worker_id, job_status status,
                     const char *error, const store_history *hist,
                     const store_progress *progress, const double *theta, int64_t n_params,
                     store_error *err)
{
    if (status != JOB_SUCCEEDED && status != JOB_FAILED && status != JOB_CANCELLED)
        return store_err(err, STORE_CONFLICT, "store: finish needs a final status");
    sconn *c = sqlite_write(s, err);
    if (!c)
        return err->code;
    if (sqlite_check_lease(c, id, worker_id, err) < 0 || put_history(c, id, hist, err) < 0 ||
        put_progress(c, id, progress, err) < 0)
        goto fail;
    sqlite3_stmt *st;
    if (theta) {
        /* no resume image once finished */
        if (put_weights(c, id, hist, progress, theta, n_params, NULL, 0, err) < 0)
            goto fail;
    } else {
        st = sqlite_stmt_id(c, Q_CKPT_DROP_IMAGE, id, err); /* keep the last checkpoint's weights */
        if (!st)
            goto fail;
        if (sqlite_exec(c, st, "store final weights", err) < 0)
            goto fail;
    }
    st = sqlite_stmt_id(c, Q_JOB_FINISH, id, err);
    if (!st)
        goto fail;
    sqlite3_bind_int(st, 2, (int)status);
    sqlite3_bind_int64(st, 3, clock_wall_ms());
    sqlite3_bind_text(st, 4, error ? error : "", -1, SQLITE_STATIC);
    if (sqlite_exec(c, st, "finish job", err) < 0)
        goto fail;
    return sqlite_commit(c, err);
fail:
    sqlite_rollback(c);
    return err->code;
}

int sqlite_job_set_metrics(store *s, const char *id, const char *worker_id,
                          const char *metrics_json, store_error *err)
{
    sconn *c = sqlite_write(s, err);
    if (!c)
        return err->code;
    if (sqlite_check_lease(c, id, worker_id, err) < 0)
        goto fail;
    sqlite3_stmt *st = sqlite_stmt_id(c, Q_JOB_SET_METRICS, id, err);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 2, metrics_json, -1, SQLITE_STATIC);
    if (sqlite_exec(c, st, "store metrics", err) < 0)
        goto fail;
    return sqlite_commit(c, err);
fail:
    sqlite_rollback(c);
    return err->code;
}

int sqlite_job_request_cancel(store *s, const char *owner, const char *id, int *now_cancelled,
                             store_error *err)
{
    *now_cancelled = 0;
    sconn *c = sqlite_write(s, err);
    if (!c)
        return err->code;
    sqlite3_stmt *st = sqlite_stmt_id(c, Q_JOB_STATUS, id, err);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 2, owner ? owner : "", -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int status = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) {
        store_err(err, STORE_NOT_FOUND, "store: no such job");
        goto fail;
    }
    if (rc != SQLITE_ROW) {
        sqlite_fail(c, rc, "cancel job", err);
        goto fail;
    }
    if (status == JOB_QUEUED || status == JOB_RUNNING) {
        st = sqlite_stmt_id(c, status == JOB_QUEUED ? Q_JOB_CANCEL_NOW : Q_JOB_SET_CANCEL, id, err);
        if (!st)
            goto fail;
        if (status == JOB_QUEUED)
            sqlite3_bind_int64(st, 2, clock_wall_ms());
        if (sqlite_exec(c, st, "cancel job", err) < 0)
            goto fail;
    }
    if (sqlite_commit(c, err) < 0)
        return err->code;
    *now_cancelled = status == JOB_QUEUED;
    return 0;
fail:
    sqlite_rollback(c);
    return err->code;
}

int sqlite_job_delete(store *s, const char *owner, const char *id, store_error *err)
{
    sconn *c = sqlite_write(s, err);
    if (!c)
        return err->code;
    sqlite3_stmt *st = sqlite_stmt_id(c, Q_JOB_DELETE, id, err);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 2, owner ? owner : "", -1, SQLITE_STATIC);
    if (sqlite_exec(c, st, "delete job", err) < 0)
        goto fail;
    if (sqlite3_changes(c->db) == 0) {
        store_err(err, STORE_NOT_FOUND, "store: no such job");
        goto fail;
    }
    return sqlite_commit(c, err);
fail:
    sqlite_rollback(c);
    return err->code;
}

/* ---------------- results ---------------- */

int sqlite_job_checkpoint_load(store *s, const char *id, void **buf, size_t *len,
                              store_error *err)
{
    *buf = NULL;
    *len = 0;
    sconn *c;
    sqlite3_stmt *st = sqlite_query(s, Q_CKPT_IMAGE, &c, err);
    if (!st)
        return err->code;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        const void *b = sqlite3_column_blob(st, 0);
        int n = sqlite3_column_bytes(st, 0);
        void *copy = malloc(n > 0 ? (size_t)n : 1);
        if (!copy || (!b && n > 0)) {
            free(copy);
            code = store_err(err, STORE_NOMEM, "store: out of memory");
        } else {
            if (n > 0)
                memcpy(copy, b, (size_t)n);
            *buf = copy;
            *len = (size_t)n;
        }
    } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        code = store_err(err, STORE_NOT_FOUND, "store: job has no checkpoint");
    } else {
        code = sqlite_fail(c, rc, "read checkpoint", err);
    }
    sqlite3_reset(st);
    return code;
}

int sqlite_job_weights(store *s, const char *owner, const char *id, double **theta,
                      int64_t *n_params, int64_t *epoch, double *cost, double *validation_cost,
                      store_error *err)
{
    *theta = NULL;
    *n_params = 0;
    *epoch = 0;
    *cost = NAN;
    if (validation_cost)
        *validation_cost = NAN;
    sconn *c;
    sqlite3_stmt *st = sqlite_query(s, Q_CKPT_WEIGHTS, &c, err);
    if (!st)
        return err->code;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite_bind_opt_text(st, 2, owner);
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 3) != SQLITE_NULL) {
        int64_t n = sqlite3_column_int64(st, 0);
        code = sqlite_column_doubles(c, st, 3, n, theta, "read weights", err);
        if (code == 0) {
            *n_params = n;
            *epoch = sqlite3_column_int64(st, 1);
            *cost = sqlite_column_real(st, 2);
            if (validation_cost)
                *validation_cost = sqlite_column_real(st, 4);
        }
    } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        code = store_err(err, STORE_NOT_FOUND, "store: job has no weights yet");
    } else {
        code = sqlite_fail(c, rc, "read weights", err);
    }
    sqlite3_reset(st);
    return code;
}

/* The history's columns after epoch, as read (NaN for NULL). */
enum { HIST_COST, HIST_VCOST, HIST_ACC, HIST_VACC, HIST_COLS };

int sqlite_job_history_page(store *s, const char *owner, const char *id, int64_t after,
                            int64_t limit, int64_t **epoch, double **cost,
                            double **validation_cost, double **accuracy,
                            double **validation_accuracy, size_t *n, store_error *err)
{
    double **out[HIST_COLS] = {cost, validation_cost, accuracy, validation_accuracy};
    *epoch = NULL;
    for (int k = 0; k < HIST_COLS; k++)
        if (out[k])
            *out[k] = NULL;
    *n = 0;
    sconn *c = sqlite_conn(s, err);
    if (!c)
        return err->code;
    int64_t *e = NULL;
    double *col[HIST_COLS] = {NULL};
    size_t len = 0, cap = 0;
    if (sqlite_begin(c, 0, err) < 0) /* one snapshot: the job check and its rows agree */
        return err->code;
    store_job job;
    if (sqlite_get_job(c, owner, id, 0, &job, err) < 0)
        goto fail;
    store_job_clear(&job);
    sqlite3_stmt *st = sqlite_stmt_id(c, Q_HIST_SELECT, id, err);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, limit < 0 ? -1 : limit); /* SQLite: a negative LIMIT is none */
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            int64_t *ne = realloc(e, ncap * sizeof *ne);
            int bad = !ne;
            if (ne)
                e = ne;
            for (int k = 0; k < HIST_COLS && !bad; k++) {
                double *nc = realloc(col[k], ncap * sizeof *nc);
                bad = !nc;
                if (nc)
                    col[k] = nc;
            }
            if (bad) {
                sqlite3_reset(st);
                store_err(err, STORE_NOMEM, "store: out of memory");
                goto fail;
            }
            cap = ncap;
        }
        e[len] = sqlite3_column_int64(st, 0);
        for (int k = 0; k < HIST_COLS; k++)
            col[k][len] = sqlite_column_real(st, 1 + k);
        len++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        sqlite_fail(c, rc, "read history", err);
        goto fail;
    }
    sqlite_rollback(c); /* ends the read transaction */
    *epoch = e;
    for (int k = 0; k < HIST_COLS; k++) {
        if (out[k])
            *out[k] = col[k];
        else
            free(col[k]);
    }
    *n = len;
    return 0;
fail:
    sqlite_rollback(c);
    free(e);
    for (int k = 0; k < HIST_COLS; k++)
        free(col[k]);
    return err->code;
}

int sqlite_job_theta0(store *s, const char *id, double **theta, int64_t *n_params,
                     store_error *err)
{
    *theta = NULL;
    *n_params = 0;
    sconn *c;
    sqlite3_stmt *st = sqlite_query(s, Q_JOB_THETA0, &c, err);
    if (!st)
        return err->code;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(st, 0);
        code = sqlite_column_doubles(c, st, 1, n, theta, "read theta0", err);
        if (code == 0 && *theta)
            *n_params = n;
    } else if (rc == SQLITE_DONE) {
        code = store_err(err, STORE_NOT_FOUND, "store: no such job");
    } else {
        code = sqlite_fail(c, rc, "read theta0", err);
    }
    sqlite3_reset(st);
    return code;
}
