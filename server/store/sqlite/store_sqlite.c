/* store_sqlite.c — the store (store.h) on SQLite: <dir>/backpropd.db in WAL mode with
 * synchronous=FULL. This file holds the engine (connections, statements, errors), the schema
 * and its migrations, the open-time checks, and the datasets; store_sqlite_jobs.c holds jobs.
 *
 * DESIGN. Every thread that touches a store gets its own connection (opened lazily, kept in a
 * pthread key whose destructor closes it when the thread exits, and listed in s->conns so
 * store_close closes the rest). A connection caches its prepared statements. Every write is
 * one BEGIN IMMEDIATE transaction, so writers queue on SQLite's lock (busy_timeout) instead of
 * failing half-way, and readers never block in WAL mode. Any failure rolls the transaction
 * back: what was stored before stays intact, and the next write after space returns works.
 * Coordination between workers (claims, leases) lives entirely in the database, so several
 * processes can share one file.
 *
 * File format: the application_id pragma marks a backpropd file and user_version is the
 * schema version (migrations below run at open inside one transaction). Numbers are stored
 * as native little-endian blobs ("f64le" doubles, "i32le" labels), recorded per dataset and
 * in the meta table; a dataset's arrays are split into chunks of at most 16 MiB.
 */
#include "server/store/sqlite/store_sqlite_int.h"
#include "server/store/store_debug.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define STORE_APP_ID 0x42507264      /* "BPrd" */
#define STORE_SCHEMA_VERSION 2
#define STORE_PAGE_SIZE 16384
#define STORE_BUSY_MS 5000

/* ---------------- schema ---------------- */

/* migrations[v] takes a file from user_version v to v+1. Append, never edit. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta(key, value) VALUES('byte_order', '" HOST_ORDER "');"
    "CREATE TABLE datasets("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  owner TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  rows INTEGER NOT NULL CHECK(rows > 0),"
    "  features INTEGER NOT NULL CHECK(features > 0),"
    "  outputs INTEGER NOT NULL CHECK(outputs > 0),"
    "  has_labels INTEGER NOT NULL,"
    "  x_format TEXT NOT NULL,"      /* f64le: rows*features, row-major */
    "  y_format TEXT NOT NULL,"      /* i32le labels (rows) or f64le Y (rows*outputs) */
    "  bytes INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL);" /* unix seconds */
    "CREATE INDEX datasets_owner ON datasets(owner, seq);"
    "CREATE TABLE dataset_chunks("
    "  dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,"
    "  kind INTEGER NOT NULL,"       /* 0 X, 1 labels, 2 Y */
    "  seq INTEGER NOT NULL,"
    "  data BLOB NOT NULL,"          /* <= 16 MiB */
    "  PRIMARY KEY(dataset_id, kind, seq));"
    "CREATE TABLE jobs("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  owner TEXT NOT NULL,"
    "  dataset_id TEXT NOT NULL,"    /* no foreign key: finished jobs outlive their dataset */
    "  spec_json TEXT NOT NULL,"
    "  status INTEGER NOT NULL,"     /* job_status */
    "  cancel_requested INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL," /* unix ms, 0 = not yet */
    "  started_at INTEGER NOT NULL DEFAULT 0,"
    "  finished_at INTEGER NOT NULL DEFAULT 0,"
    "  error TEXT NOT NULL DEFAULT '',"
    "  p_epoch INTEGER NOT NULL DEFAULT 0,"
    "  p_epochs INTEGER NOT NULL DEFAULT 0,"
    "  p_cost REAL, p_validation_cost REAL, p_accuracy REAL, p_samples_per_second REAL,"
    "  lease_owner TEXT,"
    "  lease_until INTEGER NOT NULL DEFAULT 0," /* unix ms */
    "  theta0_n INTEGER NOT NULL DEFAULT 0,"
    "  theta0 BLOB);"                /* f64le warm start */
    "CREATE INDEX jobs_owner ON jobs(owner, seq);"
    "CREATE INDEX jobs_status ON jobs(status, seq);"
    "CREATE INDEX jobs_dataset ON jobs(dataset_id, status);"
    "CREATE TABLE job_history("
    "  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  epoch INTEGER NOT NULL,"
    "  cost REAL, validation_cost REAL, accuracy REAL," /* NULL = NaN */
    "  PRIMARY KEY(job_id, epoch)) WITHOUT ROWID;"
    "CREATE TABLE job_checkpoints("  /* latest checkpoint while running, final weights when done */
    "  job_id TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,"
    "  epoch INTEGER NOT NULL,"
    "  cost REAL,"
    "  n_params INTEGER NOT NULL,"
    "  theta BLOB,"                  /* f64le, n_params */
    "  image BLOB);",                /* bp_trainer checkpoint image, NULL once finished */
    /* 2: what training reports. accuracy is now the training rows' and validation_accuracy
     * the held-out rows'; version 1 stored the held-out rows' as accuracy when there were
     * any, so it moves. best_epoch: the epoch of the weights held (0 = none); stop_reason:
     * NULL until the job ends (and for jobs that ended before version 2). */
    "ALTER TABLE jobs ADD COLUMN p_validation_accuracy REAL;"
    "ALTER TABLE jobs ADD COLUMN best_epoch INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN stop_reason TEXT;"
    "ALTER TABLE job_history ADD COLUMN validation_accuracy REAL;"
    "ALTER TABLE job_checkpoints ADD COLUMN validation_cost REAL;"
    "UPDATE jobs SET p_validation_accuracy = p_accuracy, p_accuracy = NULL "
    "  WHERE json_extract(spec_json, '$.training.validation_split') > 0;"
    "UPDATE job_history SET validation_accuracy = accuracy, accuracy = NULL "
    "  WHERE job_id IN (SELECT id FROM jobs "
    "    WHERE json_extract(spec_json, '$.training.validation_split') > 0);",
};

#define JOB_COLS                                                                            \
    "id, owner, dataset_id, spec_json, status, cancel_requested, seq, created_at, started_at, " \
    "finished_at, error, p_epoch, p_epochs, p_cost, p_validation_cost, p_accuracy, "         \
    "p_samples_per_second, lease_owner, lease_until, p_validation_accuracy, best_epoch, "    \
    "stop_reason"
#define DS_COLS "id, owner, name, rows, features, outputs, has_labels, bytes, created_at, " \
                "x_format, y_format"

static const char *const queries[Q__COUNT] = {
    [Q_BEGIN] = "BEGIN",
    [Q_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_DS_INSERT] = "INSERT INTO datasets(" DS_COLS ") "
                    "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
    [Q_DS_CHUNK_INSERT] = "INSERT INTO dataset_chunks(dataset_id, kind, seq, data) "
                          "VALUES(?1,?2,?3,?4)",
    [Q_DS_GET] = "SELECT " DS_COLS " FROM datasets WHERE id = ?1 AND (?2 IS NULL OR owner = ?2)",
    [Q_DS_CHUNKS] = "SELECT rowid, kind, seq, length(data) FROM dataset_chunks "
                    "WHERE dataset_id = ?1 ORDER BY kind, seq",
    [Q_DS_LIST] = "SELECT " DS_COLS ", seq FROM datasets WHERE owner = ?1 AND seq < ?2 "
                  "ORDER BY seq DESC LIMIT ?3",
    [Q_DS_DELETE] = "DELETE FROM datasets WHERE id = ?1",
    [Q_DS_IN_USE] = "SELECT 1 FROM jobs WHERE dataset_id = ?1 AND status IN (0, 1) LIMIT 1",
    [Q_DS_BYTES] = "SELECT coalesce(sum(bytes), 0) FROM datasets WHERE owner = ?1",
    [Q_DS_EXISTS] = "SELECT 1 FROM datasets WHERE id = ?1 AND owner = ?2",
    [Q_JOB_INSERT] = "INSERT INTO jobs(id, owner, dataset_id, spec_json, status, created_at, "
                     "p_epoch, p_epochs, p_cost, p_validation_cost, p_accuracy, "
                     "p_samples_per_second, theta0_n, theta0) "
                     "VALUES(?1,?2,?3,?4,0,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
    [Q_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1 AND (?2 IS NULL OR owner = ?2)",
    [Q_JOB_GET_SEQ] = "SELECT " JOB_COLS " FROM jobs WHERE seq = ?1",
    [Q_JOB_LIST] = "SELECT " JOB_COLS " FROM jobs WHERE seq < ?3 AND (?1 IS NULL OR owner = ?1) "
                   "AND (?2 < 0 OR status = ?2) ORDER BY seq DESC LIMIT ?4",
    [Q_JOB_COUNT_ACTIVE] = "SELECT count(*) FROM jobs WHERE status IN (0, 1) "
                           "AND (?1 IS NULL OR owner = ?1)",
    [Q_JOB_COUNT_STATUS] = "SELECT status, count(*) FROM jobs GROUP BY status",
    [Q_JOB_EXPIRE_CANCELLED] = "UPDATE jobs SET status = 4, finished_at = ?1, lease_owner = NULL, "
                               "lease_until = 0 WHERE status = 1 AND lease_until < ?1 "
                               "AND cancel_requested <> 0",
    [Q_JOB_CLAIMABLE] = "SELECT seq FROM jobs WHERE status = 0 "
                        "OR (status = 1 AND lease_until < ?1) ORDER BY seq LIMIT 1",
    [Q_JOB_CLAIM] = "UPDATE jobs SET status = 1, lease_owner = ?2, lease_until = ?3, "
                    "started_at = CASE WHEN started_at = 0 THEN ?4 ELSE started_at END "
                    "WHERE seq = ?1",
    [Q_JOB_RENEW] = "UPDATE jobs SET lease_until = ?3 "
                    "WHERE id = ?1 AND status = 1 AND lease_owner = ?2",
    [Q_JOB_CANCEL_FLAG] = "SELECT cancel_requested FROM jobs WHERE id = ?1",
    [Q_JOB_LEASE] = "SELECT status, lease_owner FROM jobs WHERE id = ?1",
    [Q_JOB_RELEASE] = "UPDATE jobs SET status = CASE WHEN cancel_requested THEN 4 ELSE 0 END, "
                      "finished_at = CASE WHEN cancel_requested THEN ?3 ELSE 0 END, "
                      "lease_owner = NULL, lease_until = 0 "
                      "WHERE id = ?1 AND status = 1 AND lease_owner = ?2",
    [Q_JOB_LEASES] = "SELECT id, lease_owner, lease_until FROM jobs WHERE status = 1 "
                     "ORDER BY seq",
    [Q_JOB_PROGRESS] = "UPDATE jobs SET p_epoch = ?2, p_epochs = ?3, p_cost = ?4, "
                       "p_validation_cost = ?5, p_accuracy = ?6, p_samples_per_second = ?7, "
                       "p_validation_accuracy = ?8, best_epoch = ?9, stop_reason = ?10 "
                       "WHERE id = ?1",
    [Q_JOB_FINISH] = "UPDATE jobs SET status = ?2, finished_at = ?3, error = ?4, "
                     "lease_owner = NULL, lease_until = 0 WHERE id = ?1",
    [Q_JOB_STATUS] = "SELECT status FROM jobs WHERE id = ?1 AND owner = ?2",
    [Q_JOB_CANCEL_NOW] = "UPDATE jobs SET status = 4, cancel_requested = 1, finished_at = ?2 "
                         "WHERE id = ?1",
    [Q_JOB_SET_CANCEL] = "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1",
    [Q_JOB_DELETE] = "DELETE FROM jobs WHERE id = ?1 AND owner = ?2",
    [Q_JOB_THETA0] = "SELECT theta0_n, theta0 FROM jobs WHERE id = ?1",
    [Q_HIST_DELETE_FROM] = "DELETE FROM job_history WHERE job_id = ?1 AND epoch >= ?2",
    [Q_HIST_INSERT] = "INSERT INTO job_history(job_id, epoch, cost, validation_cost, accuracy, "
                      "validation_accuracy) VALUES(?1,?2,?3,?4,?5,?6)",
    [Q_HIST_SELECT] = "SELECT epoch, cost, validation_cost, accuracy, validation_accuracy "
                      "FROM job_history WHERE job_id = ?1 ORDER BY epoch",
    [Q_CKPT_UPSERT] = "INSERT INTO job_checkpoints(job_id, epoch, cost, n_params, theta, image, "
                      "validation_cost) VALUES(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(job_id) DO "
                      "UPDATE SET epoch = excluded.epoch, cost = excluded.cost, "
                      "n_params = excluded.n_params, theta = excluded.theta, "
                      "image = excluded.image, validation_cost = excluded.validation_cost",
    [Q_CKPT_DROP_IMAGE] = "UPDATE job_checkpoints SET image = NULL WHERE job_id = ?1",
    [Q_CKPT_IMAGE] = "SELECT image FROM job_checkpoints WHERE job_id = ?1",
    [Q_CKPT_WEIGHTS] = "SELECT c.n_params, c.epoch, c.cost, c.theta, c.validation_cost "
                       "FROM job_checkpoints c "
                       "JOIN jobs j ON j.id = c.job_id WHERE c.job_id = ?1 "
                       "AND (?2 IS NULL OR j.owner = ?2)",
};

/* Job statuses are written as literals in the SQL above (status IN (0, 1), status = 4...). */
_Static_assert(JOB_QUEUED == 0 && JOB_RUNNING == 1 && JOB_SUCCEEDED == 2 && JOB_FAILED == 3 &&
               JOB_CANCELLED == 4, "the SQL uses job_status numbers as literals");

/* The engine this file provides (store_engine.h): a directory location. */
const char store_engine_name[] = "SQLite";
const char *const store_engine_schemes[] = {"file", NULL};

/* ---------------- small helpers ---------------- */

static int map_rc(sqlite3 *db, int rc)
{
    int primary = rc & 0xff;
    if (primary == SQLITE_FULL)
        return STORE_FULL;
    if (primary == SQLITE_IOERR && db) {
        int sys = sqlite3_system_errno(db);
        if (sys == ENOSPC || sys == EDQUOT)
            return STORE_FULL;
        if (rc == SQLITE_IOERR_NOMEM)
            return STORE_NOMEM;
    }
    switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_BUSY;
    case SQLITE_NOMEM:
        return STORE_NOMEM;
    case SQLITE_CONSTRAINT:
        return STORE_CONFLICT;
    default:
        return STORE_IO;
    }
}

int sq_fail(sconn *c, int rc, const char *what, store_error *err)
{
    sqlite3 *db = c ? c->db : NULL;
    int code = map_rc(db, rc);
    const char *detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if (code == STORE_FULL)
        return sq_err(err, code, "store: %s: disk full (%s)", what, detail);
    return sq_err(err, code, "store: %s: %s", what, detail);
}

int sq_bind_field(sqlite3_stmt *st, int i, const char *field, size_t size)
{
    return sqlite3_bind_text(st, i, field, (int)strnlen(field, size), SQLITE_STATIC);
}

int sq_bind_opt_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

int sq_bind_real(sqlite3_stmt *st, int i, double v)
{
    return isnan(v) ? sqlite3_bind_null(st, i) : sqlite3_bind_double(st, i, v);
}

double sq_column_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

void sq_copy_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, size, "%s", t ? (const char *)t : "");
}

int sq_column_doubles(sconn *c, sqlite3_stmt *st, int col, int64_t n, double **out,
                      const char *what, store_error *err)
{
    *out = NULL;
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return 0;
    const void *b = sqlite3_column_blob(st, col);
    int64_t len = sqlite3_column_bytes(st, col);
    if (!b && sqlite3_errcode(c->db) == SQLITE_NOMEM)
        return sq_err(err, STORE_NOMEM, "store: %s: out of memory", what);
    if (n < 0 || n > INT64_MAX / 8 || len != n * 8)
        return sq_err(err, STORE_IO, "store: %s: stored weights are corrupt (%lld bytes for "
                      "%lld numbers)", what, (long long)len, (long long)n);
    double *d = malloc(len ? (size_t)len : 1);
    if (!d)
        return sq_err(err, STORE_NOMEM, "store: %s: out of memory", what);
    if (len)
        memcpy(d, b, (size_t)len);
    *out = d;
    return 0;
}

/* ---------------- connections ---------------- */

static void conn_close(sconn *c)
{
    if (!c)
        return;
    for (int i = 0; i < Q__COUNT; i++)
        sqlite3_finalize(c->q[i]);
    sqlite3_close_v2(c->db);
    free(c);
}

/* Runs pragmas / DDL with no result rows needed. */
static int conn_exec(sconn *c, const char *sql, const char *what, store_error *err)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : sq_fail(c, rc, what, err);
}

/* new. A configured connection to s->path (created when `create`). */
static sconn *conn_open(store *s, int create, store_error *err)
{
    sconn *c = calloc(1, sizeof *c);
    if (!c) {
        sq_err(err, STORE_NOMEM, "store: out of memory");
        return NULL;
    }
    c->s = s;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(s->path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        if (!c->db)
            sq_err(err, STORE_NOMEM, "store: out of memory");
        else
            sq_err(err, map_rc(c->db, rc), "store: cannot open %s: %s", s->path,
                   sqlite3_errmsg(c->db));
        goto fail;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, STORE_BUSY_MS);
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
    if (sqlite3_db_readonly(c->db, "main") == 1) {
        sq_err(err, STORE_IO, "store: %s is read-only", s->path);
        goto fail;
    }
    /* Per-connection settings; none of them writes to the file. */
    if (conn_exec(c, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;"
                     "PRAGMA journal_size_limit = 67108864; PRAGMA cache_size = -8192;"
                     "PRAGMA temp_store = MEMORY;", "configure connection", err) < 0) {
        int x = sqlite3_extended_errcode(c->db) & 0xff;
        if (x == SQLITE_NOTADB || x == SQLITE_CORRUPT)
            sq_err(err, STORE_IO, "store: %s is not a backpropd database (not an SQLite file, "
                   "or its header is corrupt)", s->path);
        goto fail;
    }
    return c;
fail:
    conn_close(c);
    return NULL;
}

/* pthread key destructor: the thread that owned this connection exits. */
static void conn_thread_exit(void *p)
{
    sconn *c = p;
    store *s = c->s;
    pthread_mutex_lock(&s->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&s->mu);
    conn_close(c);
}

static void conn_register(store *s, sconn *c)
{
    pthread_mutex_lock(&s->mu);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    pthread_mutex_unlock(&s->mu);
    pthread_setspecific(s->key, c);
}

static int conn_apply_cap(sconn *c, store_error *err)
{
    int want = atomic_load(&c->s->max_pages);
    if (want == c->max_pages)
        return 0;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld",
             want > 0 ? (long long)want : 4294967294LL);
    if (conn_exec(c, sql, "max_page_count", err) < 0)
        return err->code;
    c->max_pages = want;
    return 0;
}

sconn *sq_conn(store *s, store_error *err)
{
    err->code = 0;
    err->msg[0] = '\0';
    sconn *c = pthread_getspecific(s->key);
    if (!c) {
        c = conn_open(s, 0, err);
        if (!c)
            return NULL;
        conn_register(s, c);
    }
    if (conn_apply_cap(c, err) < 0)
        return NULL;
    return c;
}

sqlite3_stmt *sq_stmt(sconn *c, query_id id, store_error *err)
{
    sqlite3_stmt *st = c->q[id];
    if (!st) {
        int rc = sqlite3_prepare_v3(c->db, queries[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
        if (rc != SQLITE_OK) {
            sq_fail(c, rc, "prepare", err);
            return NULL;
        }
        c->q[id] = st;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

sqlite3_stmt *sq_query(store *s, query_id id, sconn **c, store_error *err)
{
    *c = sq_conn(s, err);
    return *c ? sq_stmt(*c, id, err) : NULL;
}

sconn *sq_write(store *s, store_error *err)
{
    sconn *c = sq_conn(s, err);
    return c && sq_begin(c, 1, err) == 0 ? c : NULL;
}

int sq_exec(sconn *c, sqlite3_stmt *st, const char *what, store_error *err)
{
    int rc = sqlite3_step(st);
    int code = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sq_fail(c, rc, what, err);
    sqlite3_reset(st);
    return code;
}

int sq_begin(sconn *c, int write, store_error *err)
{
    sqlite3_stmt *st = sq_stmt(c, write ? Q_BEGIN_IMMEDIATE : Q_BEGIN, err);
    return st ? sq_exec(c, st, "begin", err) : err->code;
}

void sq_rollback(sconn *c)
{
    if (sqlite3_get_autocommit(c->db))
        return;
    /* Reset every statement first: a pending one would make ROLLBACK fail. */
    for (int i = 0; i < Q__COUNT; i++)
        if (c->q[i])
            sqlite3_reset(c->q[i]);
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

int sq_commit(sconn *c, store_error *err)
{
    sqlite3_stmt *st = sq_stmt(c, Q_COMMIT, err);
    int code = st ? sq_exec(c, st, "commit", err) : err->code;
    if (code < 0)
        sq_rollback(c);
    return code;
}

/* ---------------- open, close, checks ---------------- */

/* mkdir -p with 0700 for what it creates. */
static int make_dirs(const char *dir, store_error *err)
{
    char p[600];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return sq_err(err, STORE_IO, "store: data directory path too long");
    for (char *q = p + 1;; q++) {
        if (*q == '/' || *q == '\0') {
            char saved = *q;
            *q = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST)
                return sq_err(err, STORE_IO, "store: cannot create %s: %s", p, strerror(errno));
            *q = saved;
            if (!saved)
                break;
        }
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return sq_err(err, STORE_IO, "store: %s is not a directory", dir);
    return 0;
}

/* One integer from a pragma or query. */
static int query_int(sconn *c, const char *sql, int64_t *out, store_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
    }
    int code = rc == SQLITE_OK || rc == SQLITE_DONE ? 0 : sq_fail(c, rc, "read header", err);
    sqlite3_finalize(st);
    return code;
}

static int query_text(sconn *c, const char *sql, char *out, size_t size, store_error *err)
{
    sqlite3_stmt *st = NULL;
    out[0] = '\0';
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            sq_copy_text(out, size, st, 0);
            rc = SQLITE_OK;
        }
    }
    int code = rc == SQLITE_OK || rc == SQLITE_DONE ? 0 : sq_fail(c, rc, "check", err);
    sqlite3_finalize(st);
    return code;
}

/* PRAGMA quick_check must answer "ok"; else the first problems go into the message. */
static int quick_check(sconn *c, store_error *err)
{
    sqlite3_stmt *st = NULL;
    char found[160] = "";
    size_t used = 0;
    int rc = sqlite3_prepare_v2(c->db, "PRAGMA quick_check(3)", -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        if (t && strcmp((const char *)t, "ok") != 0 && used < sizeof found - 1) {
            int w = snprintf(found + used, sizeof found - used, "%s%s", used ? "; " : "",
                             (const char *)t);
            used = w < 0 ? used : used + (size_t)w;
        }
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    for (char *p = found; *p; p++)
        if (*p == '\n')
            *p = ' ';
    if (rc != SQLITE_DONE)
        return sq_err(err, STORE_IO, "store: %s is corrupt (%s); restore it from a backup",
                      c->s->path, sqlite3_errmsg(c->db));
    if (found[0])
        return sq_err(err, STORE_IO, "store: %s is corrupt (quick_check: %s); restore it from "
                      "a backup", c->s->path, found);
    return 0;
}

/* Is this file ours, empty, or something else? Fills *fresh. */
static int check_identity(sconn *c, int *fresh, int64_t *version, store_error *err)
{
    int64_t app = 0, tables = 0;
    if (query_int(c, "PRAGMA application_id", &app, err) < 0) {
        int rc = sqlite3_extended_errcode(c->db);
        if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT)
            return sq_err(err, STORE_IO, "store: %s is not a backpropd database (not an SQLite "
                          "file, or its header is corrupt)", c->s->path);
        return err->code;
    }
    if (query_int(c, "PRAGMA user_version", version, err) < 0 ||
        query_int(c, "SELECT count(*) FROM sqlite_schema", &tables, err) < 0)
        return err->code;
    *fresh = 0;
    if (app == 0 && tables == 0 && *version == 0) {
        *fresh = 1;
        return 0;
    }
    if (app != STORE_APP_ID)
        return sq_err(err, STORE_IO, "store: %s is an SQLite database of another application "
                      "(application_id 0x%08llx), not backpropd's; move it away or choose "
                      "another --data directory", c->s->path, (unsigned long long)(uint32_t)app);
    if (*version > STORE_SCHEMA_VERSION)
        return sq_err(err, STORE_IO, "store: %s has schema version %lld, newer than this "
                      "backpropd knows (%d): upgrade backpropd", c->s->path,
                      (long long)*version, STORE_SCHEMA_VERSION);
    return 0;
}

/* Applies the migrations from the file's version up, in one transaction (re-reading the
 * version under the write lock: another process may have migrated meanwhile). */
static int migrate(sconn *c, store_error *err)
{
    int64_t v = 0;
    if (sq_begin(c, 1, err) < 0)
        return err->code;
    int fresh = 0;
    if (check_identity(c, &fresh, &v, err) < 0)
        goto fail;
    for (; v < STORE_SCHEMA_VERSION; v++)
        if (conn_exec(c, migrations[v], "migrate", err) < 0)
            goto fail;
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d",
             STORE_APP_ID, STORE_SCHEMA_VERSION);
    if (conn_exec(c, sql, "migrate", err) < 0)
        goto fail;
    char order[16];
    if (query_text(c, "SELECT value FROM meta WHERE key = 'byte_order'", order, sizeof order,
                   err) < 0)
        goto fail;
    if (strcmp(order, HOST_ORDER) != 0) {
        sq_err(err, STORE_IO, "store: %s was written on a host with another byte order (%s)",
               c->s->path, order);
        goto fail;
    }
    return sq_commit(c, err);
fail:
    sq_rollback(c);
    return err->code;
}

store *store_engine_open(const char *dir, store_error *err)
{
    store *s = NULL;
    sconn *c = NULL;
    int key_made = 0, mu_made = 0;
    if (!sqlite3_threadsafe()) {
        sq_err(err, STORE_IO, "store: this SQLite library was built without thread support");
        goto fail;
    }
    if (!dir || !*dir) {
        sq_err(err, STORE_IO, "store: no data directory given");
        goto fail;
    }
    if (make_dirs(dir, err) < 0)
        goto fail;
    s = calloc(1, sizeof *s);
    if (!s) {
        sq_err(err, STORE_NOMEM, "store: out of memory");
        goto fail;
    }
    if (snprintf(s->path, sizeof s->path, "%s/backpropd.db", dir) >= (int)sizeof s->path) {
        sq_err(err, STORE_IO, "store: data directory path too long");
        goto fail;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        sq_err(err, STORE_NOMEM, "store: cannot create a mutex");
        goto fail;
    }
    mu_made = 1;
    if (pthread_key_create(&s->key, conn_thread_exit) != 0) {
        sq_err(err, STORE_NOMEM, "store: cannot create a thread key");
        goto fail;
    }
    key_made = 1;

    c = conn_open(s, 1, err);
    if (!c)
        goto fail;
    int fresh = 0;
    int64_t version = 0;
    if (check_identity(c, &fresh, &version, err) < 0)
        goto fail;
    if (fresh) {
        /* Only effective before the first table exists. */
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA page_size = %d; PRAGMA auto_vacuum = INCREMENTAL",
                 STORE_PAGE_SIZE);
        if (conn_exec(c, sql, "create", err) < 0)
            goto fail;
    }
    char mode[16];
    if (query_text(c, "PRAGMA journal_mode = WAL", mode, sizeof mode, err) < 0)
        goto fail;
    if (strcmp(mode, "wal") != 0) {
        sq_err(err, STORE_IO, "store: %s: cannot use WAL mode (journal_mode is %s)", s->path, mode);
        goto fail;
    }
    if (!fresh) {
        if (quick_check(c, err) < 0)
            goto fail;
    }
    if (migrate(c, err) < 0)
        goto fail;
    conn_register(s, c);
    return s;
fail:
    conn_close(c);
    if (key_made)
        pthread_key_delete(s->key);
    if (mu_made)
        pthread_mutex_destroy(&s->mu);
    free(s);
    if (!err->code)
        sq_err(err, STORE_IO, "store: cannot open the store");
    return NULL;
}

/* Closes every connection, including those of threads still alive (which must not touch s
 * again: call this after the threads that used the store have stopped). */
void store_close(store *s)
{
    if (!s)
        return;
    pthread_setspecific(s->key, NULL);
    pthread_key_delete(s->key); /* no destructor runs for s after this */
    pthread_mutex_lock(&s->mu);
    sconn *c = s->conns;
    s->conns = NULL;
    pthread_mutex_unlock(&s->mu);
    while (c) {
        sconn *next = c->next;
        conn_close(c);
        c = next;
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int store_ping(store *s, store_error *err)
{
    sconn *c = sq_conn(s, err);
    if (!c)
        return err->code;
    int64_t v = 0;
    return query_int(c, "PRAGMA user_version", &v, err);
}

void store_debug_max_pages(store *s, int pages)
{
    atomic_store(&s->max_pages, pages > 0 ? pages : 0);
}

int store_debug_page_count(store *s, int64_t *pages, int64_t *page_size, store_error *err)
{
    sconn *c = sq_conn(s, err);
    if (!c)
        return err->code;
    if (query_int(c, "PRAGMA page_count", pages, err) < 0)
        return err->code;
    return query_int(c, "PRAGMA page_size", page_size, err);
}
