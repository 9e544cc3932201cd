/* store_postgres_int.h — internals shared by the PostgreSQL store's files
 * (store_postgres.c: connections, the transaction runner, open and migrations;
 * store_postgres_schema.c: the SQL; store_postgres_datasets.c: datasets;
 * store_postgres_jobs.c: jobs, checkpoints, results; store_postgres_leases.c: claims and
 * leases; store_postgres_idem.c: idempotency keys). Nothing outside store_postgres*.c includes this.
 */
#ifndef BACKPROPD_STORE_POSTGRES_INT_H
#define BACKPROPD_STORE_POSTGRES_INT_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>

#include "server/common/clock.h"
#include "server/store/store.h"
#include "server/store/store_conns.h"
#include "server/store/store_engine.h"

#define POSTGRES_CHUNK_BYTES ((int64_t)16 << 20) /* a dataset array is stored in chunks of this */

/* Numbers are stored as native-order bytea; the order is recorded in the meta table. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define POSTGRES_HOST_ORDER "be"
#else
#define POSTGRES_HOST_ORDER "le"
#endif

enum { POSTGRES_CHUNK_X = 0, POSTGRES_CHUNK_LABELS = 1, POSTGRES_CHUNK_Y = 2 };

/* One libpq connection, used by exactly one thread at a time. */
typedef struct pconn {
    store_conn link;            /* first: its place in s->conns */
    PGconn *db;
    struct store *s;
    int transient;              /* the last failure may pass: retry the transaction */
} pconn;

struct store {
    store_base base;            /* first: the engine-neutral state (store_engine.h) */
    char *uri;                  /* the libpq connection URI (never logged: it may hold a password) */
    store_conns conns;          /* each thread's pconn (store_conns.h) */
    pthread_mutex_t mu;         /* guards the listener's fields below */
    /* the listener (store_postgres_listen.c), under mu */
    store_event_fn listen_fn;
    void *listen_arg;
    int listening;              /* its thread runs */
    int listen_stop;            /* it is asked to end */
    pthread_t listen_thread;
};

/* ---------------- parameters ---------------- */

#define POSTGRES_MAX_PARAMS 16
/* The parameters of one statement: text, or binary (bytea, float8). Borrowed pointers must
 * outlive the statement. */
typedef struct {
    int n;
    const char *v[POSTGRES_MAX_PARAMS];
    int len[POSTGRES_MAX_PARAMS];
    int fmt[POSTGRES_MAX_PARAMS];
    char buf[POSTGRES_MAX_PARAMS][24];
} pargs;
void postgres_arg_text(pargs *a, const char *s);               /* NULL: NULL */
void postgres_arg_field(pargs *a, const char *field, size_t size); /* up to its first NUL */
#define POSTGRES_ARG_FIELD(a, f) postgres_arg_field((a), (f), sizeof(f))
void postgres_arg_i64(pargs *a, int64_t v);
void postgres_arg_f64(pargs *a, double v);                    /* NaN: NULL */
void postgres_arg_bytes(pargs *a, const void *p, size_t n);   /* NULL: NULL */

/* ---------------- statements and results ---------------- */

/* Runs sql with a's parameters (may be NULL), binary results. The result (PQclear it) or
 * NULL with err filled and c->transient set when a retry may succeed (connection lost,
 * serialization failure, deadlock). */
PGresult *postgres_exec(pconn *c, const char *sql, const pargs *a, const char *what,
                        store_error *err);
/* postgres_exec for statements whose rows are not wanted: 0 or a store_code; *changed (may be
 * NULL) gets the rows it touched. */
int postgres_run(pconn *c, const char *sql, const pargs *a, const char *what, int64_t *changed,
                 store_error *err);
/* Binary result columns: an integer of 2, 4 or 8 bytes, a float8 (NULL: NaN), text into a
 * fixed buffer, a new copy of text. */
int64_t postgres_i64(const PGresult *r, int row, int col);
double postgres_f64(const PGresult *r, int row, int col);
void postgres_text(char *dst, size_t size, const PGresult *r, int row, int col);
/* One keyset page of a list query asked for limit + 1 rows (the one more tells whether a next
 * page exists): up to limit rows of r, each read by read_row into the next elem-sized element
 * of *out (new, calloc'ed; *n counts the elements read, also on failure, so the caller frees
 * them), and *next_cursor = column seq_col of the last kept row when more rows followed, else
 * 0. 0 or a store_code. */
int postgres_read_page(const PGresult *r, int limit, size_t elem, int seq_col,
                       int (*read_row)(const PGresult *r, int row, void *dst, store_error *err),
                       void **out, size_t *n, int64_t *next_cursor, store_error *err);
/* A bytea column of exactly n doubles into a new array (NULL: *out NULL). STORE_IO if the
 * length does not match. */
int postgres_doubles(const PGresult *r, int row, int col, int64_t n, double **out,
                     const char *what, store_error *err);

/* ---------------- the transaction runner ---------------- */

enum { POSTGRES_TX_WRITE = 0, POSTGRES_TX_READ = 1 };
/* One transaction with retries: POSTGRES_TX(t, s, mode, err) { t.code = body(t.c, ...); }
 * runs the body in BEGIN … COMMIT on this thread's connection; when it fails transiently
 * (connection lost → reconnect; serialization failure 40001; deadlock 40P01; a failed COMMIT
 * of unknown outcome), it rolls back, waits (back-off 20 ms doubling to 1 s) and runs the
 * body again, for at most POSTGRES_RETRY_SECONDS; then STORE_BUSY (answered 503 +
 * Retry-After). A body must be re-runnable: it sets every output afresh. t.attempt > 0 on a
 * retry (a body that inserts a caller-made id treats "already there" as its own earlier
 * commit). The body must not `break` or `return`: it sets t.code. */
typedef struct {
    store *s;
    pconn *c;
    int mode, attempt, code, state;
    double deadline, backoff;
    store_error *err;
} postgres_tx;
#define POSTGRES_RETRY_SECONDS 5.0
void postgres_tx_init(postgres_tx *t, store *s, int mode, store_error *err);
int postgres_tx_next(postgres_tx *t); /* 1: run the body (again), 0: done (t->code) */
#define POSTGRES_TX(t, s, mode, err) \
    for (postgres_tx_init(&(t), (s), (mode), (err)); postgres_tx_next(&(t));)

/* ---------------- shared by the files ---------------- */

/* The engine's operations (store_engine.h), one per store.h function: postgres_<op>. */
store *postgres_open(const char *uri, store_error *err);
void postgres_close(store *s);
#define POSTGRES_PROTO(ret, name, params, args) ret postgres_##name params;
STORE_ENGINE_OPS(POSTGRES_PROTO)
#undef POSTGRES_PROTO

/* Opens a connection of its own to s (the listener's): NULL with err filled. */
PGconn *postgres_connect(store *s, store_error *err);

/* Jobs (store_postgres_jobs.c): reads a row of POSTGRES_JOB_COLS into *j (spec_json new). */
int postgres_read_job(const PGresult *r, int row, store_job *j, store_error *err);
/* Inside a write transaction: 0 when worker_ref ("owner" or "owner#token") holds the lease of
 * running job id (its row is then locked to the end of the transaction), else STORE_CONFLICT
 * with err filled. */
int postgres_check_lease(pconn *c, const char *id, const char *worker_ref, store_error *err);

/* Idempotency keys (store_postgres_idem.c), inside the write transaction of a create (READ
 * COMMITTED): postgres_idem_check takes a transaction-scoped advisory lock on (owner, kind,
 * key), so a concurrent retry with the same key waits for this transaction and then sees its
 * row, and looks the key up (store_idem_decide: 0 go on, else STORE_REPLAY / STORE_KEY_REUSED
 * or an error with err); postgres_idem_record remembers it with the id just created and
 * forgets expired keys. idem NULL: both are no-ops returning 0. */
int postgres_idem_check(pconn *c, const char *owner, const char *kind, store_idempotency *idem,
                        store_error *err);
int postgres_idem_record(pconn *c, const char *owner, const char *kind,
                         const store_idempotency *idem, const char *id, store_error *err);

/* The SQL (store_postgres_schema.c): migrations[v] takes the database from version v to v+1. */
#define POSTGRES_SCHEMA_VERSION 3
extern const char *const postgres_migrations[POSTGRES_SCHEMA_VERSION];
/* The database server's clock in unix ms, as SQL: every lease time and idempotency key age is
 * judged by it (one clock for all instances; statement_timestamp() is stable within a
 * statement). */
#define POSTGRES_NOW_MS "(extract(epoch from statement_timestamp()) * 1000)::bigint"

#define POSTGRES_JOB_COLS                                                                     \
    "id, owner, dataset_id, spec_json, status, cancel_requested, seq, created_at, started_at, " \
    "finished_at, error, p_epoch, p_epochs, p_cost, p_validation_cost, p_accuracy, "         \
    "p_samples_per_second, lease_owner, lease_until, p_validation_accuracy, best_epoch, "    \
    "stop_reason, lease_token, labels, metrics_json"
#define POSTGRES_DS_COLS "id, owner, name, rows, features, outputs, has_labels, bytes, created_at"
/* The advisory lock key that serializes migrations across instances ("BPrd"). */
#define POSTGRES_MIGRATION_LOCK 0x42507264

#endif
