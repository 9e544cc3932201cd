/* store_postgres.c — the store (store.h) on PostgreSQL, shared by any number of backpropd
 * instances: this file holds the engine (connections, parameters, results, errors), the
 * transaction runner with retry, and open with its migrations; store_postgres_schema.c holds
 * the schema, store_postgres_datasets.c the datasets, store_postgres_jobs.c and
 * store_postgres_leases.c the jobs, store_postgres_results.c a worker's writes,
 * store_postgres_idem.c idempotency keys, store_postgres_listen.c LISTEN/NOTIFY.
 *
 * DESIGN. Every thread that touches a store gets its own libpq connection (opened lazily, kept
 * in a pthread key whose destructor closes it, listed in s->conns so postgres_close closes the
 * rest: the set is server/store/store_conns.c, shared by the engines; this file gives it
 * conn_new and conn_close). Statements use text parameters except bytea and float8 (binary, so
 * doubles cross bit-exact) and ask for binary results. Every operation is one transaction run
 * by POSTGRES_TX (store_postgres_int.h): a lost connection is reopened and the transaction run
 * again, as are serialization failures and deadlocks, with back-off; a database that stays away
 * turns into STORE_BUSY (503 + Retry-After) and /readyz (store_ping, one attempt) answers 503
 * meanwhile. Writes run at READ COMMITTED with explicit row locks (FOR UPDATE; claims with SKIP
 * LOCKED) and transaction-scoped advisory locks where a decision reads rows that do not exist
 * yet (admission counts, idempotency keys); reads that need one snapshot run at REPEATABLE
 * READ, READ ONLY.
 * Migrations: at open, under pg_advisory_lock(POSTGRES_MIGRATION_LOCK), each pending
 * migration runs in its own transaction with the version bump; instances starting together
 * wait for the first one and find nothing left to do.
 */
#include "server/store/postgres/store_postgres_int.h"

#include <endian.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The engine this folder provides (store_engine.h): postgres:// and postgresql:// URIs. */
static const char *const postgres_schemes[] = {"postgres", "postgresql", NULL};
#define POSTGRES_ENTRY(ret, name, params, args) .name = postgres_##name,
const store_engine store_engine_postgres = {
    .name = "PostgreSQL",
    .schemes = postgres_schemes,
    .open = postgres_open,
    .close = postgres_close,
    STORE_ENGINE_OPS(POSTGRES_ENTRY)
};
#undef POSTGRES_ENTRY

/* ---------------- parameters ---------------- */

static void arg_set(pargs *a, const char *v, int len, int fmt)
{
    if (a->n >= POSTGRES_MAX_PARAMS)
        return; /* a programming error: the statement then fails on its parameter count */
    a->v[a->n] = v;
    a->len[a->n] = len;
    a->fmt[a->n] = fmt;
    a->n++;
}

void postgres_arg_text(pargs *a, const char *s)
{
    arg_set(a, s, 0, 0);
}

void postgres_arg_field(pargs *a, const char *field, size_t size)
{
    /* text parameters are NUL-terminated: copy a field that fills its buffer */
    size_t n = strnlen(field, size);
    if (n < size || a->n >= POSTGRES_MAX_PARAMS) {
        arg_set(a, field, 0, 0);
        return;
    }
    arg_set(a, field, (int)n, 1); /* binary text is the raw bytes */
}

void postgres_arg_i64(pargs *a, int64_t v)
{
    if (a->n >= POSTGRES_MAX_PARAMS)
        return;
    snprintf(a->buf[a->n], sizeof a->buf[a->n], "%lld", (long long)v);
    arg_set(a, a->buf[a->n], 0, 0);
}

void postgres_arg_f64(pargs *a, double v)
{
    if (a->n >= POSTGRES_MAX_PARAMS)
        return;
    if (isnan(v)) {
        arg_set(a, NULL, 0, 0);
        return;
    }
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    bits = htobe64(bits);
    memcpy(a->buf[a->n], &bits, sizeof bits);
    arg_set(a, a->buf[a->n], 8, 1);
}

void postgres_arg_bytes(pargs *a, const void *p, size_t n)
{
    arg_set(a, p, p ? (int)n : 0, 1);
}

/* ---------------- errors and results ---------------- */

/* SQLSTATE classes a retry may cure: connection exceptions (08), serialization failure
 * (40001), deadlock (40P01), the server shutting down or restarting (57P01..57P03), too many
 * connections (53300), lock not available (55P03). */
static int sqlstate_transient(const char *st)
{
    if (!st)
        return 0;
    return strncmp(st, "08", 2) == 0 || strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 ||
           strncmp(st, "57P0", 4) == 0 || strcmp(st, "53300") == 0 || strcmp(st, "55P03") == 0;
}

/* The store_code of a failed result (r may be NULL: no result at all). */
static int fail_result(pconn *c, const PGresult *r, const char *what, store_error *err)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg)
        msg = PQerrorMessage(c->db);
    char one[200];
    snprintf(one, sizeof one, "%s", msg && *msg ? msg : "no answer");
    for (char *p = one; *p; p++)
        if (*p == '\n')
            *p = ' ';
    if (PQstatus(c->db) != CONNECTION_OK || sqlstate_transient(st)) {
        c->transient = 1;
        return store_err(err, STORE_BUSY, "store: %s: database unavailable (%s)", what, one);
    }
    if (st && strcmp(st, "53100") == 0)
        return store_err(err, STORE_FULL, "store: %s: disk full (%s)", what, one);
    if (st && strcmp(st, "53200") == 0)
        return store_err(err, STORE_NOMEM, "store: %s: out of memory", what);
    if (st && strncmp(st, "23", 2) == 0)
        return store_err(err, STORE_CONFLICT, "store: %s: %s", what, one);
    return store_err(err, STORE_IO, "store: %s: %s", what, one);
}

PGresult *postgres_exec(pconn *c, const char *sql, const pargs *a, const char *what,
                        store_error *err)
{
    PGresult *r = PQexecParams(c->db, sql, a ? a->n : 0, NULL, a ? a->v : NULL,
                               a ? a->len : NULL, a ? a->fmt : NULL, 1);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    fail_result(c, r, what, err);
    PQclear(r);
    return NULL;
}

int postgres_run(pconn *c, const char *sql, const pargs *a, const char *what, int64_t *changed,
                 store_error *err)
{
    PGresult *r = postgres_exec(c, sql, a, what, err);
    if (!r)
        return err->code;
    if (changed) {
        const char *t = PQcmdTuples(r);
        *changed = t && *t ? strtoll(t, NULL, 10) : 0;
    }
    PQclear(r);
    return 0;
}

int64_t postgres_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    const char *p = PQgetvalue(r, row, col);
    switch (PQgetlength(r, row, col)) {
    case 2: {
        uint16_t v;
        memcpy(&v, p, 2);
        return (int16_t)be16toh(v);
    }
    case 4: {
        uint32_t v;
        memcpy(&v, p, 4);
        return (int32_t)be32toh(v);
    }
    case 8: {
        uint64_t v;
        memcpy(&v, p, 8);
        return (int64_t)be64toh(v);
    }
    default:
        return 0;
    }
}

double postgres_f64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8)
        return NAN;
    uint64_t v;
    memcpy(&v, PQgetvalue(r, row, col), 8);
    v = be64toh(v);
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

void postgres_text(char *dst, size_t size, const PGresult *r, int row, int col)
{
    int n = PQgetisnull(r, row, col) ? 0 : PQgetlength(r, row, col);
    snprintf(dst, size, "%.*s", n, PQgetvalue(r, row, col));
}

int postgres_read_page(const PGresult *r, int limit, size_t elem, int seq_col,
                       int (*read_row)(const PGresult *r, int row, void *dst, store_error *err),
                       void **out, size_t *n, int64_t *next_cursor, store_error *err)
{
    int rows = PQntuples(r), keep = rows > limit ? limit : rows, code = 0;
    *out = calloc(keep ? (size_t)keep : 1, elem);
    if (!*out)
        return store_err(err, STORE_NOMEM, "store: out of memory");
    for (int i = 0; code == 0 && i < keep; i++, (*n)++)
        code = read_row(r, i, (char *)*out + (size_t)i * elem, err);
    if (code == 0 && rows > limit)
        *next_cursor = postgres_i64(r, keep - 1, seq_col);
    return code;
}

int postgres_doubles(const PGresult *r, int row, int col, int64_t n, double **out,
                     const char *what, store_error *err)
{
    *out = NULL;
    if (PQgetisnull(r, row, col))
        return 0;
    int64_t len = PQgetlength(r, row, col);
    if (n < 0 || n > INT64_MAX / 8 || len != n * 8)
        return store_err(err, STORE_IO, "store: %s: stored weights are corrupt (%lld bytes for "
                         "%lld numbers)", what, (long long)len, (long long)n);
    double *d = malloc(len ? (size_t)len : 1);
    if (!d)
        return store_err(err, STORE_NOMEM, "store: %s: out of memory", what);
    if (len)
        memcpy(d, PQgetvalue(r, row, col), (size_t)len);
    *out = d;
    return 0;
}

/* ---------------- connections ---------------- */

/* Frees a connection (a store_conn_close_fn: link is the pconn's first member). */
static void conn_close(store_conn *link)
{
    pconn *c = (pconn *)link;
    PQfinish(c->db);
    free(c);
}

/* store_conn_open_fn: this thread's connection to s, not yet connected (conn_get does). */
static store_conn *conn_new(void *s, store_error *err)
{
    pconn *c = calloc(1, sizeof *c);
    if (!c) {
        store_err(err, STORE_NOMEM, "store: out of memory");
        return NULL;
    }
    c->s = s;
    return &c->link;
}

PGconn *postgres_connect(store *s, store_error *err)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {s->uri, "5", "backpropd", NULL};
    PGconn *db = PQconnectdbParams(keys, vals, 1);
    if (!db) {
        store_err(err, STORE_NOMEM, "store: out of memory");
        return NULL;
    }
    if (PQstatus(db) != CONNECTION_OK) {
        char one[200];
        snprintf(one, sizeof one, "%s", PQerrorMessage(db));
        for (char *p = one; *p; p++)
            if (*p == '\n')
                *p = ' ';
        PQfinish(db);
        store_err(err, STORE_BUSY, "store: database unreachable (%s)", one);
        return NULL;
    }
    PGresult *r = PQexec(db, "SET client_min_messages = warning; SET TIME ZONE 'UTC'");
    PQclear(r);
    return db;
}

/* Opens c->db (again): 0, or STORE_BUSY (transient) when the server does not answer. */
static int conn_connect(pconn *c, store_error *err)
{
    PQfinish(c->db);
    c->db = postgres_connect(c->s, err);
    if (!c->db && err->code == STORE_BUSY)
        c->transient = 1;
    return c->db ? 0 : err->code;
}

/* This thread's connection, reconnected when it was lost. NULL with err filled. */
static pconn *conn_get(store *s, store_error *err)
{
    pconn *c = (pconn *)store_conns_get(&s->conns, err);
    if (!c)
        return NULL;
    c->transient = 0;
    if ((!c->db || PQstatus(c->db) != CONNECTION_OK) && conn_connect(c, err) < 0)
        return NULL;
    return c;
}

/* ---------------- the transaction runner ---------------- */

void postgres_tx_init(postgres_tx *t, store *s, int mode, store_error *err)
{
    memset(t, 0, sizeof *t);
    t->s = s;
    t->mode = mode;
    t->err = err;
    t->backoff = 0.02;
    t->deadline = clock_monotonic() + POSTGRES_RETRY_SECONDS;
}

static void sleep_seconds(double d)
{
    struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Ends the open transaction (if any) after a failure. */
static void tx_abort(pconn *c)
{
    if (c && c->db && PQstatus(c->db) == CONNECTION_OK &&
        PQtransactionStatus(c->db) != PQTRANS_IDLE) {
        PGresult *r = PQexec(c->db, "ROLLBACK");
        PQclear(r);
    }
}

/* Begins a transaction on this thread's connection: 0 or a store_code (c->transient tells). */
static int tx_begin(postgres_tx *t)
{
    t->c = conn_get(t->s, t->err);
    if (!t->c)
        return t->err->code;
    const char *sql = t->mode == POSTGRES_TX_READ
                          ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                          : "BEGIN ISOLATION LEVEL READ COMMITTED";
    return postgres_run(t->c, sql, NULL, "begin", NULL, t->err);
}

int postgres_tx_next(postgres_tx *t)
{
    for (;;) {
        if (t->state == 0) { /* about to run the body */
            t->code = tx_begin(t);
            if (t->code == 0) {
                t->state = 1;
                return 1;
            }
        } else { /* the body ran */
            if (t->code == 0)
                t->code = postgres_run(t->c, "COMMIT", NULL, "commit", NULL, t->err);
            if (t->code == 0)
                return 0;
            tx_abort(t->c);
        }
        int transient = t->c ? t->c->transient : 1;
        if (t->code == STORE_NOMEM && !t->c)
            transient = 0;
        if (!transient || clock_monotonic() + t->backoff > t->deadline)
            return 0; /* t->code and t->err tell */
        sleep_seconds(t->backoff);
        t->backoff = t->backoff * 2 > 1.0 ? 1.0 : t->backoff * 2;
        t->attempt++;
        t->state = 0;
    }
}

/* ---------------- open, migrate, close ---------------- */

/* Runs a script of several statements (a migration; no parameters, no rows wanted). */
static int run_script(pconn *c, const char *sql, store_error *err)
{
    PGresult *r = PQexec(c->db, sql);
    int code = r && PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : fail_result(c, r, "migrate", err);
    PQclear(r);
    return code;
}

/* Under the migration lock: creates the meta table, reads the version and applies what is
 * missing, each migration in its own transaction. */
static int migrate(pconn *c, store_error *err)
{
    int64_t v = 0;
    PGresult *r = NULL;
    char order[8] = "";
    if (postgres_run(c, "CREATE TABLE IF NOT EXISTS backpropd_meta(key text PRIMARY KEY, "
                     "value text NOT NULL)", NULL, "migrate", NULL, err) < 0)
        return err->code;
    r = postgres_exec(c, "SELECT value::bigint FROM backpropd_meta WHERE key = 'schema_version'",
                      NULL, "migrate", err);
    if (!r)
        return err->code;
    v = PQntuples(r) ? postgres_i64(r, 0, 0) : 0;
    PQclear(r);
    if (v > POSTGRES_SCHEMA_VERSION)
        return store_err(err, STORE_IO, "store: the database has schema version %lld, newer "
                         "than this backpropd knows (%d): upgrade backpropd", (long long)v,
                         POSTGRES_SCHEMA_VERSION);
    for (; v < POSTGRES_SCHEMA_VERSION; v++) {
        pargs a = {0};
        postgres_arg_i64(&a, v + 1);
        if (postgres_run(c, "BEGIN", NULL, "migrate", NULL, err) < 0 ||
            run_script(c, postgres_migrations[v], err) < 0 ||
            postgres_run(c, "INSERT INTO backpropd_meta(key, value) VALUES('schema_version', $1) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", &a, "migrate",
                         NULL, err) < 0 ||
            postgres_run(c, "COMMIT", NULL, "migrate", NULL, err) < 0) {
            tx_abort(c);
            return err->code;
        }
    }
    r = postgres_exec(c, "SELECT value FROM backpropd_meta WHERE key = 'byte_order'", NULL,
                      "migrate", err);
    if (!r)
        return err->code;
    if (PQntuples(r))
        postgres_text(order, sizeof order, r, 0, 0);
    PQclear(r);
    if (strcmp(order, POSTGRES_HOST_ORDER) != 0)
        return store_err(err, STORE_IO, "store: the database was written on a host with another "
                         "byte order (%s)", order);
    return 0;
}

store *postgres_open(const char *uri, store_error *err)
{
    store *s = calloc(1, sizeof *s);
    pconn *c = NULL;
    int conns_made = 0, mu_made = 0;
    if (!s || !(s->uri = strdup(uri))) {
        store_err(err, STORE_NOMEM, "store: out of memory");
        goto fail;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        store_err(err, STORE_NOMEM, "store: cannot create a mutex");
        goto fail;
    }
    mu_made = 1;
    if (store_conns_init(&s->conns, conn_new, conn_close, s, err) < 0)
        goto fail;
    conns_made = 1;
    /* One attempt: a deployment that starts the database with us restarts us (compose's
     * restart policy); once open, every operation retries (POSTGRES_TX). */
    c = conn_get(s, err);
    if (!c)
        goto fail;
    pargs lock = {0};
    postgres_arg_i64(&lock, POSTGRES_MIGRATION_LOCK);
    if (postgres_run(c, "SELECT pg_advisory_lock($1::bigint)", &lock, "migrate", NULL, err) < 0)
        goto fail;
    int code = migrate(c, err);
    if (postgres_run(c, "SELECT pg_advisory_unlock($1::bigint)", &lock, "migrate", NULL,
                     code < 0 ? &(store_error){0} : err) < 0 && code == 0)
        code = err->code;
    if (code < 0)
        goto fail;
    return s;
fail:
    if (conns_made)
        store_conns_close_all(&s->conns); /* closes c too */
    if (mu_made)
        pthread_mutex_destroy(&s->mu);
    if (s)
        free(s->uri);
    free(s);
    if (!err->code)
        store_err(err, STORE_IO, "store: cannot open the store");
    return NULL;
}

void postgres_close(store *s)
{
    store_error ignored;
    postgres_listen(s, NULL, NULL, &ignored);
    store_conns_close_all(&s->conns);
    pthread_mutex_destroy(&s->mu);
    free(s->uri);
    free(s);
}

/* One probe, no back-off (/readyz answers at once); a connection the server dropped while
 * idle is reopened once first. */
int postgres_ping(store *s, store_error *err)
{
    int code = STORE_BUSY;
    for (int attempt = 0; attempt < 2 && code == STORE_BUSY; attempt++) {
        pconn *c = conn_get(s, err);
        if (!c)
            return err->code;
        code = postgres_run(c, "SELECT 1", NULL, "ping", NULL, err);
    }
    return code;
}
