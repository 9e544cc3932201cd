/* store_sqlite_leases.c — claims and leases of jobs in the SQLite store (store.h): a worker
 * CLAIMS the oldest claimable job inside one BEGIN IMMEDIATE transaction, renews its lease,
 * releases it on shutdown; start-up recovery lists the leases and expires those of dead
 * workers with a compare-and-set on the lease owner. The design is described at the head of
 * store_sqlite_jobs.c.
 */
#include "server/store/sqlite/store_sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- claims and leases ---------------- */

int sqlite_job_claim(store *s, const char *worker_id, int64_t lease_ms, store_job *out,
                    store_error *err)
{
    sconn *c = sqlite_write(s, err);
    if (!c)
        return err->code;
    int64_t now = clock_wall_ms(); /* read with the write lock held: leases compare against it */
    /* A running job whose worker died after a cancel was requested ends as cancelled. */
    sqlite3_stmt *st = sqlite_stmt(c, Q_JOB_EXPIRE_CANCELLED, err);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, now);
    if (sqlite_exec(c, st, "claim job", err) < 0)
        goto fail;
    st = sqlite_stmt(c, Q_JOB_CLAIMABLE, err);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, now);
    int rc = sqlite3_step(st);
    int64_t seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) {
        if (sqlite_commit(c, err) < 0)
            return err->code;
        return store_err(err, STORE_NOT_FOUND, "store: no job to claim");
    }
    if (rc != SQLITE_ROW) {
        sqlite_fail(c, rc, "claim job", err);
        goto fail;
    }
    st = sqlite_stmt(c, Q_JOB_CLAIM, err);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_text(st, 2, worker_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now + lease_ms);
    sqlite3_bind_int64(st, 4, now);
    if (sqlite_exec(c, st, "claim job", err) < 0)
        goto fail;
    if (sqlite_get_job(c, NULL, NULL, seq, out, err) < 0)
        goto fail;
    if (sqlite_commit(c, err) < 0) {
        store_job_clear(out);
        return err->code;
    }
    return 0;
fail:
    sqlite_rollback(c);
    return err->code;
}

/* Inside a write transaction: does worker_id hold the lease of running job id? */
int sqlite_check_lease(sconn *c, const char *id, const char *worker_id, store_error *err)
{
    sqlite3_stmt *st = sqlite_stmt_id(c, Q_JOB_LEASE, id, err);
    if (!st)
        return err->code;
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW) {
        const unsigned char *holder = sqlite3_column_text(st, 1);
        if (sqlite3_column_int(st, 0) != JOB_RUNNING || !holder ||
            strcmp((const char *)holder, worker_id) != 0)
            code = store_err(err, STORE_CONFLICT, "store: lease lost (job not running for this "
                          "worker)");
    } else if (rc == SQLITE_DONE) {
        code = store_err(err, STORE_CONFLICT, "store: lease lost (job deleted)");
    } else {
        code = sqlite_fail(c, rc, "check lease", err);
    }
    sqlite3_reset(st);
    return code;
}

int sqlite_job_renew(store *s, const char *id, const char *worker_id, int64_t lease_ms,
                    int *cancel_requested, store_error *err)
{
    *cancel_requested = 0;
    sconn *c = sqlite_write(s, err);
    if (!c)
        return err->code;
    sqlite3_stmt *st = sqlite_stmt_id(c, Q_JOB_RENEW, id, err);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 2, worker_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, clock_wall_ms() + lease_ms);
    if (sqlite_exec(c, st, "renew lease", err) < 0)
        goto fail;
    if (sqlite3_changes(c->db) == 0) {
        store_err(err, STORE_CONFLICT, "store: lease lost (job not running for this worker)");
        goto fail;
    }
    st = sqlite_stmt_id(c, Q_JOB_CANCEL_FLAG, id, err);
    if (!st)
        goto fail;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *cancel_requested = sqlite3_column_int(st, 0) != 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) {
        sqlite_fail(c, rc, "renew lease", err);
        goto fail;
    }
    return sqlite_commit(c, err);
fail:
    sqlite_rollback(c);
    return err->code;
}

/* Ends the lease of running job id held by worker_id (compare-and-set on the owner): back to
 * queued, or cancelled when a cancel was requested. Release and expiry are the same write;
 * only the error for "no such job" differs (expiry tells NOT_FOUND from CONFLICT). */
static int end_lease(store *s, const char *id, const char *worker_id, int tell_missing,
                     const char *what, store_error *err)
{
    sconn *c = sqlite_write(s, err);
    if (!c)
        return err->code;
    sqlite3_stmt *st = sqlite_stmt_id(c, Q_JOB_RELEASE, id, err);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 2, worker_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, clock_wall_ms());
    if (sqlite_exec(c, st, what, err) < 0)
        goto fail;
    if (sqlite3_changes(c->db) == 0) {
        int rc = SQLITE_ROW;
        if (tell_missing) { /* does the job exist at all? */
            if (!(st = sqlite_stmt(c, Q_JOB_LEASE, err)))
                goto fail;
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
            rc = sqlite3_step(st);
            sqlite3_reset(st);
        }
        if (rc == SQLITE_ROW)
            store_err(err, STORE_CONFLICT, "store: lease lost (job not running for this worker)");
        else if (rc == SQLITE_DONE)
            store_err(err, STORE_NOT_FOUND, "store: no such job");
        else
            sqlite_fail(c, rc, what, err);
        goto fail;
    }
    return sqlite_commit(c, err);
fail:
    sqlite_rollback(c);
    return err->code;
}

int sqlite_job_release(store *s, const char *id, const char *worker_id, store_error *err)
{
    return end_lease(s, id, worker_id, 0, "release job", err);
}

int sqlite_job_expire_lease(store *s, const char *id, const char *lease_owner, store_error *err)
{
    return end_lease(s, id, lease_owner, 1, "expire lease", err);
}

/* sqlite_collect's reader of a lease row. */
static int read_lease_row(sqlite3_stmt *st, void *row, store_error *err)
{
    store_lease *l = row;
    (void)err;
    sqlite_copy_text(l->id, sizeof l->id, st, 0);
    sqlite_copy_text(l->lease_owner, sizeof l->lease_owner, st, 1);
    l->lease_until = sqlite3_column_int64(st, 2);
    return 0;
}

int sqlite_job_leases(store *s, store_lease **out, size_t *n, store_error *err)
{
    *out = NULL;
    *n = 0;
    sconn *c;
    sqlite3_stmt *st = sqlite_query(s, Q_JOB_LEASES, &c, err);
    if (!st)
        return err->code;
    sqlite_rows how = {sizeof **out, read_lease_row, NULL, -1, 0, "list leases"};
    return sqlite_collect(c, st, &how, (void **)out, n, NULL, err);
}
