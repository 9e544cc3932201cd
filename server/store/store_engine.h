/* store_engine.h — the plugin interface a storage engine (server/store/<engine>/) implements,
 * and what store.c gives every engine: the rules that are not SQL. Included only by store.c and
 * by engines; callers use store.h.
 *
 * Several engines are linked into one binary (like GNU Taler's DB plugins; Redis's ae.c picks
 * one of its ae_*.c at build time, we pick at run time from the location). Each engine defines
 * one `store_engine` table (store_engine_sqlite, store_engine_postgres) holding its name, the
 * location schemes it serves and one function per store.h operation; store.c chooses the
 * table from the location's scheme and every store.h function dispatches through the table
 * the store was opened with. STORE_ENGINE_OPS lists the operations once: the table's members,
 * store.c's dispatchers and each engine's prototypes are all generated from it, so an engine
 * that misses one, or gets a signature wrong, does not compile.
 */
#ifndef BACKPROPD_STORE_ENGINE_H
#define BACKPROPD_STORE_ENGINE_H

#include <stdatomic.h>
#include <stdint.h>

#include "server/store/store.h"

/* X(return type, name, (parameters), (arguments)) for every operation an engine implements;
 * name is the store.h function without "store_". */
#define STORE_ENGINE_OPS(X)                                                                    \
    X(int, ping, (store *s, store_error *err), (s, err))                                      \
    X(int, listen, (store *s, store_event_fn fn, void *arg, store_error *err),                \
      (s, fn, arg, err))                                                                      \
    X(int, dataset_put, (store *s, const store_dataset_meta *meta, const double *X,           \
                         const int32_t *labels, const double *Y, store_error *err),           \
      (s, meta, X, labels, Y, err))                                                           \
    X(int, dataset_get, (store *s, const char *owner, const char *id, store_dataset_meta *out,\
                         store_error *err), (s, owner, id, out, err))                         \
    X(int, dataset_load, (store *s, const char *owner, const char *id,                        \
                          store_dataset_meta *meta, double **X, int32_t **labels, double **Y, \
                          store_error *err), (s, owner, id, meta, X, labels, Y, err))         \
    X(int, dataset_list, (store *s, const char *owner, int64_t cursor, int limit,             \
                          store_dataset_meta **out, size_t *n, int64_t *next_cursor,          \
                          store_error *err), (s, owner, cursor, limit, out, n, next_cursor, err)) \
    X(int, dataset_delete, (store *s, const char *owner, const char *id, store_error *err),   \
      (s, owner, id, err))                                                                    \
    X(int, dataset_bytes, (store *s, const char *owner, int64_t *bytes, store_error *err),    \
      (s, owner, bytes, err))                                                                 \
    X(int, dataset_classes, (store *s, const char *owner, const char *id,                    \
                             char **classes_json, store_error *err),                          \
      (s, owner, id, classes_json, err))                                                      \
    X(int, job_create, (store *s, store_job *job, const double *theta0, int64_t n_params,     \
                        store_error *err), (s, job, theta0, n_params, err))                   \
    X(int, job_get, (store *s, const char *owner, const char *id, store_job *out,             \
                     store_error *err), (s, owner, id, out, err))                             \
    X(int, job_list, (store *s, const char *owner, int status, int64_t cursor, int limit,     \
                      store_job **out, size_t *n, int64_t *next_cursor, store_error *err),    \
      (s, owner, status, cursor, limit, out, n, next_cursor, err))                            \
    X(int, job_count_active, (store *s, const char *owner, int64_t *n, store_error *err),     \
      (s, owner, n, err))                                                                     \
    X(int, job_count_by_status, (store *s, int64_t counts[5], store_error *err),              \
      (s, counts, err))                                                                       \
    X(int, job_claim, (store *s, const char *worker_id, int64_t lease_ms, store_job *out,     \
                       store_error *err), (s, worker_id, lease_ms, out, err))                 \
    X(int, job_renew, (store *s, const char *id, const char *worker_id, int64_t lease_ms,     \
                       int *cancel_requested, store_error *err),                              \
      (s, id, worker_id, lease_ms, cancel_requested, err))                                    \
    X(int, job_release, (store *s, const char *id, const char *worker_id, store_error *err),  \
      (s, id, worker_id, err))                                                                \
    X(int, job_leases, (store *s, store_lease **out, size_t *n, store_error *err),            \
      (s, out, n, err))                                                                       \
    X(int, job_expire_lease, (store *s, const char *id, const char *lease_owner,              \
                              store_error *err), (s, id, lease_owner, err))                   \
    X(int, job_checkpoint, (store *s, const char *id, const char *worker_id,                  \
                            const store_history *hist, const store_progress *progress,        \
                            const void *checkpoint, size_t checkpoint_len,                    \
                            const double *theta, int64_t n_params, store_error *err),         \
      (s, id, worker_id, hist, progress, checkpoint, checkpoint_len, theta, n_params, err))   \
    X(int, job_progress, (store *s, const char *id, const char *worker_id,                    \
                          const store_history *hist, const store_progress *progress,          \
                          store_error *err), (s, id, worker_id, hist, progress, err))         \
    X(int, job_finish, (store *s, const char *id, const char *worker_id, job_status status,   \
                        const char *error, const store_history *hist,                         \
                        const store_progress *progress, const double *theta,                  \
                        int64_t n_params, store_error *err),                                  \
      (s, id, worker_id, status, error, hist, progress, theta, n_params, err))                \
    X(int, job_set_metrics, (store *s, const char *id, const char *worker_id,                \
                             const char *metrics_json, store_error *err),                     \
      (s, id, worker_id, metrics_json, err))                                                  \
    X(int, job_request_cancel, (store *s, const char *owner, const char *id,                  \
                                int *now_cancelled, store_error *err),                        \
      (s, owner, id, now_cancelled, err))                                                     \
    X(int, job_delete, (store *s, const char *owner, const char *id, store_error *err),       \
      (s, owner, id, err))                                                                    \
    X(int, job_checkpoint_load, (store *s, const char *id, void **buf, size_t *len,           \
                                 store_error *err), (s, id, buf, len, err))                   \
    X(int, job_weights, (store *s, const char *owner, const char *id, double **theta,         \
                         int64_t *n_params, int64_t *epoch, double *cost,                     \
                         double *validation_cost, store_error *err),                          \
      (s, owner, id, theta, n_params, epoch, cost, validation_cost, err))                     \
    X(int, job_history_page, (store *s, const char *owner, const char *id, int64_t after,     \
                              int64_t limit, int64_t **epoch, double **cost,                  \
                              double **validation_cost, double **accuracy,                    \
                              double **validation_accuracy, size_t *n, store_error *err),     \
      (s, owner, id, after, limit, epoch, cost, validation_cost, accuracy,                    \
       validation_accuracy, n, err))                                                          \
    X(int, job_theta0, (store *s, const char *id, double **theta, int64_t *n_params,          \
                        store_error *err), (s, id, theta, n_params, err))

#define STORE_ENGINE_MEMBER(ret, name, params, args) ret (*name) params;
/* An engine's table. */
typedef struct store_engine {
    const char *name;             /* in messages: "SQLite" */
    const char *const *schemes;   /* NULL-terminated; "file" = a directory location */
    /* new. Opens the store at `location` (a directory for "file", else the full "scheme://…"
     * string). The engine's struct store must begin with a store_base (below). */
    store *(*open)(const char *location, store_error *err);
    void (*close)(store *s);      /* s is never NULL */
    /* What store_job_version needs to vouch for freshness: 0 when other processes may be
     * writing the store right now; else a number that only grows, and grows whenever writes
     * not made through this store object may have happened since the last call (SQLite: a
     * process opened the same file meanwhile). NULL: never vouch (PostgreSQL, where other
     * instances write the same database all the time). */
    uint64_t (*writes_seen)(store *s);
    STORE_ENGINE_OPS(STORE_ENGINE_MEMBER)
} store_engine;
#undef STORE_ENGINE_MEMBER

/* An engine declares its functions <prefix>_<op> and fills its table from the same list:
 *     #define SQLITE_PROTO(ret, name, params, args) ret sqlite_##name params;
 *     STORE_ENGINE_OPS(SQLITE_PROTO)
 *     #define SQLITE_ENTRY(ret, name, params, args) .name = sqlite_##name,
 *     const store_engine store_engine_sqlite = {..., STORE_ENGINE_OPS(SQLITE_ENTRY)};
 */

/* The engines linked into this binary (each engine folder defines its table). */
extern const store_engine store_engine_sqlite;
extern const store_engine store_engine_postgres;

/* ---------------- engine-neutral state and rules (store.c) ---------------- */

/* Slots of store_job_version's per-job counters (a power of two): ids hash into them, so two
 * jobs may share one; a write then also moves the other job's version (a spurious cache miss,
 * never a stale hit). */
#define STORE_JOB_VERSION_SLOTS 1024

/* The first member of every engine's struct store: state that store.c manages. */
typedef struct {
    const store_engine *engine; /* set by store_open */
    store_limits limits;        /* admission limits (store_set_limits) */
    /* store_job_version: bumped by store.c AFTER each write returns (so after its commit) —
     * all_jobs by writes that may change any job, job[slot] by writes of the jobs in slot. */
    _Atomic uint64_t all_jobs;
    _Atomic uint64_t job[STORE_JOB_VERSION_SLOTS];
} store_base;

/* Sets err to code + message (printf format) and returns code. */
int store_err(store_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Admission of a new job, called by the engine INSIDE the write transaction that inserts it,
 * with the queued + running jobs of everybody (all) and of the job's owner (mine) as that
 * transaction sees them. 0 admitted, else STORE_QUEUE_FULL or STORE_QUOTA with err's message
 * (the engine then rolls back). */
int store_admit_job(const store *s, int64_t all, int64_t mine, store_error *err);
/* Admission of a new dataset of `add` bytes for an owner who stores `have` bytes (read inside
 * the transaction that stores it). 0 or STORE_QUOTA with err's message. */
int store_admit_bytes(const store *s, int64_t have, int64_t add, store_error *err);

/* The idempotency rule, for an engine that looked idem->key up inside its insert transaction:
 * found = 0 (no live key: 0, go on), or 1 with the stored request digest and id: STORE_REPLAY
 * (replay_id set) or STORE_KEY_REUSED, with err's message. The engine then rolls back. */
int store_idem_decide(store_idempotency *idem, int found, const char *request, const char *id,
                      store_error *err);

/* Checks a dataset's sizes (positive, and the byte counts fit int64 and size_t) and gives the
 * bytes of X and of labels/Y. 0, or STORE_CONFLICT with err's message. */
int store_dataset_sizes(const store_dataset_meta *m, int64_t *xbytes, int64_t *ybytes,
                        store_error *err);

/* Checks what store_dataset_put is given (sizes as store_dataset_sizes, and X plus labels or Y
 * present) and gives the bytes of X and of labels/Y. 0, or STORE_CONFLICT with err's message. */
int store_dataset_check(const store_dataset_meta *m, const void *X, const void *labels,
                        const void *Y, int64_t *xbytes, int64_t *ybytes, store_error *err);

/* What stored weights are labelled with: the progress's best_* when it names them, else its
 * own epoch and costs, else (no progress) the last history row's epoch with no costs. */
void store_weights_label(const store_history *hist, const store_progress *p, int64_t *epoch,
                         double *cost, double *validation_cost);

/* A lease reference as the job runtime passes it to writes: "worker_id" or, for an engine
 * with fencing tokens, "worker_id#token" (store_job.lease_token). Splits ref into the worker
 * part (into buf) and *token (0 when ref has none). 0, or -1 when the worker part is too long
 * or the token is not a positive number. */
int store_lease_ref_split(const char *ref, char *buf, size_t cap, int64_t *token);

#endif
