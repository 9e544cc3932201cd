/* store_postgres_leases.c — claims and leases of jobs in the PostgreSQL store (store.h).
 *
 * A claim takes the queued (or lease-expired running) job with the lowest seq that no other
 * transaction has locked: SELECT … ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED, then sets the
 * lease (owner, expiry) and a fencing token from the sequence lease_tokens, so every claim of
 * every job on every instance gets a larger token than any before it. The holder passes
 * "owner#token" (store_job.lease_token) to renew and to every write; a write whose token is
 * not the job's current one changes nothing (STORE_CONFLICT). Renewal moves the expiry and
 * reports a requested cancel; release and start-up expiry give the job back to the queue (or
 * end it cancelled), both compare-and-set on owner and token.
 *
 * Every lease time (the expiry a claim or renewal sets, the "now" an expiry is judged by) is
 * the database server's clock (POSTGRES_NOW_MS), never an instance's: an instance whose clock
 * runs ahead cannot take live leases early, one whose clock lags cannot set expiries already
 * past.
 */
#include "server/store/postgres/store_postgres_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The owner and token of a lease reference into a (two parameters). -1 when malformed. */
static int arg_lease(pargs *a, const char *ref, char *owner, size_t cap)
{
    int64_t token = 0;
    if (store_lease_ref_split(ref, owner, cap, &token) < 0)
        return -1;
    postgres_arg_text(a, owner);
    postgres_arg_i64(a, token);
    return 0;
}

static int claim_body(pconn *c, const char *worker_id, int64_t lease_ms, store_job *out,
                      store_error *err)
{
    store_job_clear(out);
    pargs a = {0};
    /* a running job whose worker died after a cancel was requested ends as cancelled */
    if (postgres_run(c, "UPDATE jobs SET status = 4, finished_at = " POSTGRES_NOW_MS ", "
                     "lease_owner = NULL, lease_until = 0 WHERE status = 1 "
                     "AND lease_until < " POSTGRES_NOW_MS " AND cancel_requested <> 0", NULL,
                     "claim job", NULL, err) < 0)
        return err->code;
    postgres_arg_text(&a, worker_id);
    postgres_arg_i64(&a, lease_ms);
    PGresult *r = postgres_exec(c, "WITH pick AS (SELECT seq AS pick_seq FROM jobs "
                                "WHERE status = 0 OR (status = 1 AND lease_until < "
                                POSTGRES_NOW_MS ") "
                                "ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) "
                                "UPDATE jobs SET status = 1, lease_owner = $1, "
                                "lease_until = " POSTGRES_NOW_MS " + $2::bigint, "
                                "lease_token = nextval('lease_tokens'), "
                                "started_at = CASE WHEN started_at = 0 THEN " POSTGRES_NOW_MS
                                " ELSE started_at END FROM pick WHERE seq = pick.pick_seq "
                                "RETURNING " POSTGRES_JOB_COLS, &a, "claim job", err);
    if (!r)
        return err->code;
    int code = PQntuples(r) ? postgres_read_job(r, 0, out, err)
                            : store_err(err, STORE_NOT_FOUND, "store: no job to claim");
    PQclear(r);
    return code;
}

int postgres_job_claim(store *s, const char *worker_id, int64_t lease_ms, store_job *out,
                       store_error *err)
{
    memset(out, 0, sizeof *out);
    postgres_tx t;
    int code = 0;
    POSTGRES_TX(t, s, POSTGRES_TX_WRITE, err) {
        t.code = claim_body(t.c, worker_id, lease_ms, out, err);
        if (t.code == STORE_NOT_FOUND) { /* commit the cancelled-job cleanup all the same */
            code = t.code;
            t.code = 0;
        } else {
            code = 0;
        }
    }
    if (t.code < 0) {
        store_job_clear(out);
        return t.code;
    }
    if (code < 0)
        return store_err(err, code, "store: no job to claim");
    return 0;
}

int postgres_check_lease(pconn *c, const char *id, const char *worker_ref, store_error *err)
{
    char owner[160];
    int64_t token = 0;
    if (store_lease_ref_split(worker_ref, owner, sizeof owner, &token) < 0)
        return store_err(err, STORE_CONFLICT, "store: lease lost (malformed lease reference)");
    pargs a = {0};
    postgres_arg_text(&a, id);
    PGresult *r = postgres_exec(c, "SELECT status, lease_owner, lease_token FROM jobs "
                                "WHERE id = $1 FOR UPDATE", &a, "check lease", err);
    if (!r)
        return err->code;
    int code = 0;
    if (!PQntuples(r)) {
        code = store_err(err, STORE_CONFLICT, "store: lease lost (job deleted)");
    } else {
        char holder[160];
        postgres_text(holder, sizeof holder, r, 0, 1);
        if (postgres_i64(r, 0, 0) != JOB_RUNNING || PQgetisnull(r, 0, 1) ||
            strcmp(holder, owner) != 0)
            code = store_err(err, STORE_CONFLICT, "store: lease lost (job not running for this "
                             "worker)");
        else if (token && postgres_i64(r, 0, 2) != token)
            code = store_err(err, STORE_CONFLICT, "store: lease lost (fenced: token %lld, the "
                             "job's is %lld)", (long long)token,
                             (long long)postgres_i64(r, 0, 2));
    }
    PQclear(r);
    return code;
}

static int renew_body(pconn *c, const char *id, const char *worker_ref, int64_t lease_ms,
                      int *cancel_requested, store_error *err)
{
    *cancel_requested = 0;
    char owner[160];
    pargs a = {0};
    postgres_arg_text(&a, id);
    if (arg_lease(&a, worker_ref, owner, sizeof owner) < 0)
        return store_err(err, STORE_CONFLICT, "store: lease lost (malformed lease reference)");
    postgres_arg_i64(&a, lease_ms);
    PGresult *r = postgres_exec(c, "UPDATE jobs SET lease_until = " POSTGRES_NOW_MS
                                " + $4::bigint WHERE id = $1 "
                                "AND status = 1 AND lease_owner = $2 "
                                "AND ($3::bigint = 0 OR lease_token = $3) "
                                "RETURNING cancel_requested", &a, "renew lease", err);
    if (!r)
        return err->code;
    int code = 0;
    if (PQntuples(r))
        *cancel_requested = postgres_i64(r, 0, 0) != 0;
    else
        code = store_err(err, STORE_CONFLICT, "store: lease lost (job not running for this "
                         "worker)");
    PQclear(r);
    return code;
}

int postgres_job_renew(store *s, const char *id, const char *worker_id, int64_t lease_ms,
                       int *cancel_requested, store_error *err)
{
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_WRITE, err)
        t.code = renew_body(t.c, id, worker_id, lease_ms, cancel_requested, err);
    return t.code;
}

/* Ends the lease of running job id held by worker_ref (compare-and-set on owner and token):
 * back to queued, or cancelled when a cancel was requested. tell_missing: NOT_FOUND for a job
 * that does not exist (expiry), else CONFLICT. */
static int end_body(pconn *c, const char *id, const char *worker_ref, int tell_missing,
                    const char *what, store_error *err)
{
    char owner[160];
    pargs a = {0};
    postgres_arg_text(&a, id);
    if (arg_lease(&a, worker_ref, owner, sizeof owner) < 0)
        return store_err(err, STORE_CONFLICT, "store: lease lost (malformed lease reference)");
    int64_t changed = 0;
    if (postgres_run(c, "UPDATE jobs SET "
                     "status = CASE WHEN cancel_requested <> 0 THEN 4 ELSE 0 END, "
                     "finished_at = CASE WHEN cancel_requested <> 0 THEN " POSTGRES_NOW_MS
                     " ELSE 0 END, "
                     "lease_owner = NULL, lease_until = 0 WHERE id = $1 AND status = 1 "
                     "AND lease_owner = $2 AND ($3::bigint = 0 OR lease_token = $3)", &a, what,
                     &changed, err) < 0)
        return err->code;
    if (changed)
        return postgres_run(c, "NOTIFY backpropd_jobs", NULL, what, NULL, err);
    if (tell_missing) {
        a.n = 1;
        PGresult *r = postgres_exec(c, "SELECT 1 FROM jobs WHERE id = $1", &a, what, err);
        if (!r)
            return err->code;
        int found = PQntuples(r) > 0;
        PQclear(r);
        if (!found)
            return store_err(err, STORE_NOT_FOUND, "store: no such job");
    }
    return store_err(err, STORE_CONFLICT, "store: lease lost (job not running for this worker)");
}

int postgres_job_release(store *s, const char *id, const char *worker_id, store_error *err)
{
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_WRITE, err)
        t.code = end_body(t.c, id, worker_id, 0, "release job", err);
    return t.code;
}

int postgres_job_expire_lease(store *s, const char *id, const char *lease_owner,
                              store_error *err)
{
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_WRITE, err)
        t.code = end_body(t.c, id, lease_owner, 1, "expire lease", err);
    return t.code;
}

static int leases_body(pconn *c, store_lease **out, size_t *n, store_error *err)
{
    free(*out);
    *out = NULL;
    *n = 0;
    PGresult *r = postgres_exec(c, "SELECT id, lease_owner, lease_until FROM jobs "
                                "WHERE status = 1 ORDER BY seq", NULL, "list leases", err);
    if (!r)
        return err->code;
    int rows = PQntuples(r);
    *out = calloc(rows ? (size_t)rows : 1, sizeof **out);
    if (!*out) {
        PQclear(r);
        return store_err(err, STORE_NOMEM, "store: out of memory");
    }
    for (int i = 0; i < rows; i++) {
        postgres_text((*out)[i].id, sizeof (*out)[i].id, r, i, 0);
        postgres_text((*out)[i].lease_owner, sizeof (*out)[i].lease_owner, r, i, 1);
        (*out)[i].lease_until = postgres_i64(r, i, 2);
    }
    *n = (size_t)rows;
    PQclear(r);
    return 0;
}

int postgres_job_leases(store *s, store_lease **out, size_t *n, store_error *err)
{
    *out = NULL;
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_READ, err)
        t.code = leases_body(t.c, out, n, err);
    if (t.code < 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return t.code;
}
