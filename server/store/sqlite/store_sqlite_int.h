/* store_sqlite_int.h — internals shared by the SQLite store's files (store_sqlite.c: engine,
 * connections, open-time checks; store_sqlite_schema.c: the SQL; store_sqlite_datasets.c: datasets; store_sqlite_jobs.c: jobs,
 * checkpoints, results; store_sqlite_leases.c: claims and leases).
 * Nothing outside store_sqlite*.c includes this.
 */
#ifndef BACKPROPD_STORE_SQLITE_INT_H
#define BACKPROPD_STORE_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>

#include "server/common/clock.h"
#include "server/store/store.h"
#include "server/store/store_conns.h"
#include "server/store/store_engine.h"

#define STORE_CHUNK_BYTES ((int64_t)16 << 20) /* a dataset array is stored in chunks of this */

/* Numbers are stored as native-order blobs; the order is recorded in the file and per dataset. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_ORDER "be"
#else
#define HOST_ORDER "le"
#endif
#define F64_FORMAT "f64" HOST_ORDER
#define I32_FORMAT "i32" HOST_ORDER

enum { CHUNK_X = 0, CHUNK_LABELS = 1, CHUNK_Y = 2 }; /* dataset_chunks.kind */

/* Every SQL statement the store runs, prepared once per connection on first use. */
typedef enum {
    Q_BEGIN, Q_BEGIN_IMMEDIATE, Q_COMMIT,
    /* datasets */
    Q_DS_INSERT, Q_DS_CHUNK_INSERT, Q_DS_GET, Q_DS_CHUNKS, Q_DS_LIST, Q_DS_DELETE, Q_DS_IN_USE,
    Q_DS_BYTES, Q_DS_EXISTS,
    /* jobs */
    Q_JOB_INSERT, Q_JOB_GET, Q_JOB_GET_SEQ, Q_JOB_LIST, Q_JOB_COUNT_ACTIVE, Q_JOB_COUNT_STATUS,
    Q_JOB_EXPIRE_CANCELLED, Q_JOB_CLAIMABLE, Q_JOB_CLAIM, Q_JOB_RENEW, Q_JOB_CANCEL_FLAG,
    Q_JOB_LEASE, Q_JOB_LEASES, Q_JOB_RELEASE, Q_JOB_PROGRESS, Q_JOB_FINISH, Q_JOB_STATUS,
    Q_JOB_CANCEL_NOW,
    Q_JOB_SET_CANCEL, Q_JOB_DELETE, Q_JOB_THETA0, Q_JOB_SET_METRICS, Q_DS_CLASSES,
    Q_HIST_DELETE_FROM, Q_HIST_INSERT, Q_HIST_SELECT,
    Q_CKPT_UPSERT, Q_CKPT_DROP_IMAGE, Q_CKPT_IMAGE, Q_CKPT_WEIGHTS,
    Q_IDEM_GET, Q_IDEM_PUT, Q_IDEM_PURGE,
    Q__COUNT
} query_id;

/* One SQLite connection, used by exactly one thread (opened with SQLITE_OPEN_NOMUTEX). */
typedef struct sconn {
    store_conn link;            /* first: its place in s->conns */
    sqlite3 *db;
    sqlite3_stmt *q[Q__COUNT];
    struct store *s;
    int max_pages;              /* the cap last applied on this connection */
} sconn;

struct store {
    store_base base;            /* first: the engine-neutral state (store_engine.h) */
    char path[600];             /* <dir>/backpropd.db */
    store_conns conns;          /* each thread's sconn (store_conns.h) */
    atomic_int max_pages;       /* store_debug_max_pages; 0 = none */
    int peers_fd;               /* <dir>/backpropd.db.peers, -1 = none (sqlite_writes_seen) */
    pthread_mutex_t peers_mu;   /* guards the two below */
    uint64_t peers_mark;        /* its 8 bytes at offset 8 when we last looked */
    uint64_t peers_gen;         /* what sqlite_writes_seen gives: +1 at each new mark */
};

/* This thread's connection, opened on first use. NULL with err filled. */
sconn *sqlite_conn(store *s, store_error *err);
/* The prepared statement `id` of c, reset with no bindings. NULL with err filled. */
sqlite3_stmt *sqlite_stmt(sconn *c, query_id id, store_error *err);
/* sqlite_stmt with a job's or dataset's id bound to ?1 (borrowed: it must outlive the step). */
sqlite3_stmt *sqlite_stmt_id(sconn *c, query_id q, const char *id, store_error *err);
/* This thread's connection (into *c) and its statement `id`, ready to bind: the opening of
 * every read. NULL with err filled. */
sqlite3_stmt *sqlite_query(store *s, query_id id, sconn **c, store_error *err);
/* This thread's connection inside a new write transaction (BEGIN IMMEDIATE): the opening of
 * every write. NULL with err filled. */
sconn *sqlite_write(store *s, store_error *err);
/* Fills err from an SQLite result code (the connection's message, never data) and returns
 * the store_code: FULL, BUSY, NOMEM, CONFLICT (constraint) or IO. */
int sqlite_fail(sconn *c, int rc, const char *what, store_error *err);
/* Sets err to code + message and returns code (store_engine.h). */
/* Transactions: begin (write = BEGIN IMMEDIATE), commit, rollback if one is open. */
int sqlite_begin(sconn *c, int write, store_error *err);
int sqlite_commit(sconn *c, store_error *err);
void sqlite_rollback(sconn *c);
/* Steps a statement that returns no rows and resets it. 0 or a store_code. */
int sqlite_exec(sconn *c, sqlite3_stmt *st, const char *what, store_error *err);

/* Text and blob binding helpers. A fixed-size char field is bound up to its first NUL. */
int sqlite_bind_field(sqlite3_stmt *st, int i, const char *field, size_t size);
#define STORE_BIND_FIELD(st, i, f) sqlite_bind_field((st), (i), (f), sizeof(f))
int sqlite_bind_opt_text(sqlite3_stmt *st, int i, const char *s); /* NULL binds NULL */
int sqlite_bind_real(sqlite3_stmt *st, int i, double v);          /* NaN binds NULL */
double sqlite_column_real(sqlite3_stmt *st, int i);               /* NULL reads NaN */
void sqlite_copy_text(char *dst, size_t size, sqlite3_stmt *st, int col);

/* Doubles stored as native-order blobs: copies a blob column of exactly n doubles into a new
 * array (NULL blob → *out NULL, 0). STORE_IO if the length does not match. */
int sqlite_column_doubles(sconn *c, sqlite3_stmt *st, int col, int64_t n, double **out,
                      const char *what, store_error *err);

/* Jobs (store_sqlite_jobs.c): one job by id (owner NULL = any) or, when id is NULL, by seq,
 * into *out (spec_json new). 0, STORE_NOT_FOUND or another store_code. */
int sqlite_get_job(sconn *c, const char *owner, const char *id, int64_t seq, store_job *out,
               store_error *err);
/* Leases (store_sqlite_leases.c), inside a write transaction: 0 when worker_id holds the lease
 * of running job id, else STORE_CONFLICT (or STORE_NOT_FOUND) with err filled. */
int sqlite_check_lease(sconn *c, const char *id, const char *worker_id, store_error *err);

/* Idempotency keys (store_sqlite_idem.c), inside the write transaction of a create:
 * sqlite_idem_check looks idem's key up for owner and kind (store_idem_decide: 0 go on, else
 * STORE_REPLAY / STORE_KEY_REUSED or an error with err); sqlite_idem_record remembers it with
 * the id just created and forgets expired keys. idem NULL: both are no-ops returning 0. */
int sqlite_idem_check(sconn *c, const char *owner, const char *kind, store_idempotency *idem,
                      store_error *err);
int sqlite_idem_record(sconn *c, const char *owner, const char *kind,
                       const store_idempotency *idem, const char *id, store_error *err);

/* How sqlite_collect reads the rows of a list: their size, a reader filling one zeroed row (0, or
 * a store_code with err), what releases a row's own allocations (may be NULL), the column of
 * the row's seq for paging (-1: none), the page size (0: every row), and a word for errors. */
typedef struct {
    size_t size;
    int (*read)(sqlite3_stmt *st, void *row, store_error *err);
    void (*clear)(void *row);
    int seq_col;
    int limit;
    const char *what;
} sqlite_rows;
/* Steps a bound statement to its end (or one row past how->limit, which sets *next_cursor to
 * the seq of the last row kept; may be NULL) and returns the rows as one new array in *out,
 * *n of them; resets the statement. 0, or a store_code with err (nothing returned). */
int sqlite_collect(sconn *c, sqlite3_stmt *st, const sqlite_rows *how, void **out, size_t *n,
               int64_t *next_cursor, store_error *err);

/* The engine's operations (store_engine.h), one per store.h function: sqlite_<op>. */
store *sqlite_open(const char *dir, store_error *err);
void sqlite_close(store *s);
#define SQLITE_PROTO(ret, name, params, args) ret sqlite_##name params;
STORE_ENGINE_OPS(SQLITE_PROTO)
#undef SQLITE_PROTO
uint64_t sqlite_writes_seen(store *s);

/* The schema version this build writes, and its migrations (store_sqlite_schema.c). */
#define STORE_SCHEMA_VERSION 5
extern const char *const sqlite_migrations[STORE_SCHEMA_VERSION];
/* The SQL of each prepared statement (store_sqlite_schema.c). */
extern const char *const sqlite_queries[Q__COUNT];

#endif
