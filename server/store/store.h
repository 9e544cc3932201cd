/* store.h — backpropd's persistent store: datasets, jobs, cost history, checkpoints, weights.
 *
 * An interface that leaks no storage-engine types: today SQLite in a directory
 * (server/store/sqlite/), later PostgreSQL shared by several instances. Workers never get jobs
 * from memory: they CLAIM queued jobs from the store with a lease (store_job_claim) and renew
 * it; a job whose lease expired (its instance died) can be claimed again and resumes from its
 * last checkpoint. The in-memory queue in jobs.c is only a wake-up signal.
 *
 * ENGINES: chosen at run time from the location (store_open): a directory is SQLite
 * (server/store/sqlite/), "postgres://…" or "postgresql://…" (any libpq URI) is PostgreSQL
 * (server/store/postgres/), shared by several instances. Both are linked into every binary
 * behind one plugin table (store_engine.h, like GNU Taler's DB plugins); store.c dispatches
 * every function below to the engine the store was opened with. The engine-neutral rules
 * (choosing the engine from the location, admission limits and their messages, dataset size
 * checks, status names) live in store.c, which every engine calls; an engine holds only its
 * storage code.
 *
 * Thread-safety: one `store` may be used from any number of threads at once (the SQLite
 * implementation keeps one connection per thread). Every function returns 0 on success or
 * a negative store_code and fills *err (caller-provided, may not be NULL).
 * Ownership: out-parameters documented "new" are malloc'd and freed by the caller with free()
 * or the named *_free; everything passed in is borrowed.
 * Owners: every dataset and job carries the tenant (API key name, "" with no keys). Every
 * function that takes an owner answers STORE_NOT_FOUND for another owner's id. owner NULL
 * means ANY owner for reads (get, load, job list, history, weights, count_active): internal
 * callers such as the workers use it; handlers and event streams always pass the caller's
 * owner. Writes and per-tenant sums (dataset list/delete/bytes, job cancel/delete) take NULL
 * as the owner "" (no keys), never as "any".
 */
#ifndef BACKPROPD_STORE_H
#define BACKPROPD_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    STORE_OK = 0,
    STORE_NOT_FOUND = -1, /* no such id (or another owner's) */
    STORE_CONFLICT = -2,  /* state does not allow it (e.g. lease lost, job not running) */
    STORE_FULL = -3,      /* disk full / quota on disk: answer 507 */
    STORE_BUSY = -4,      /* locked too long: answer 503 + Retry-After */
    STORE_IO = -5,        /* I/O error, corrupt file */
    STORE_NOMEM = -6,
    STORE_QUEUE_FULL = -7, /* admission: max_active jobs reached (store_limits): answer 429 */
    STORE_QUOTA = -8,      /* admission: the owner's job or byte quota reached: answer 429 */
    STORE_REPLAY = -9,     /* idempotency: this key already made this request: the id it
                            * created is in idem->replay_id (nothing was written) */
    STORE_KEY_REUSED = -10 /* idempotency: this key was used for another request: answer 422 */
} store_code;

typedef struct {
    int code;
    char msg[256];
} store_error;

typedef struct store store;

/* new. Opens the store at `location`: a directory (SQLite: opens or creates
 * <dir>/backpropd.db with WAL, synchronous=FULL, busy timeout, migrations, quick_check; a
 * corrupt or foreign file is a clear error), or "scheme://…" for an engine that serves that
 * scheme ("postgres://user@host/db": PostgreSQL; versioned migrations at open, serialized
 * across instances by an advisory lock). */
store *store_open(const char *location, store_error *err);
void store_close(store *s);
const char *store_engine_of(const store *s); /* "SQLite" or "PostgreSQL" (static) */
int store_ping(store *s, store_error *err); /* readiness: the store answers */

/* What happened on the store, possibly by another instance sharing it. */
typedef enum {
    STORE_EVENT_QUEUED = 0,  /* a job was queued or given back to the queue (job_id "") */
    STORE_EVENT_PROGRESS,    /* job_id's progress, checkpoint or final state was written */
    STORE_EVENT_CANCEL       /* job_id's cancel was requested, or it was deleted */
} store_event;
typedef void (*store_event_fn)(void *arg, store_event ev, const char *job_id);
/* Calls fn(arg, …) on a thread of the store's own (no store lock held) for every event of
 * every instance sharing the store: PostgreSQL LISTEN/NOTIFY on a connection of its own,
 * reconnected when lost (after a reconnect fn gets one STORE_EVENT_QUEUED: events may have
 * been missed). SQLite (one process) has none to tell: 0 and fn is never called. fn NULL stops
 * the listener and waits for its thread (no call after that returns); store_close stops it
 * too. One listener per store. 0 or a store_code. */
int store_listen(store *s, store_event_fn fn, void *arg, store_error *err);

/* Admission limits, each decided inside the transaction that inserts (so concurrent creators
 * can never overshoot): 0 = no limit. */
typedef struct {
    int64_t max_active;        /* queued + running jobs of everybody (--max-queue) */
    int64_t max_active_owner;  /* queued + running jobs per owner (--quota-jobs) */
    int64_t max_bytes_owner;   /* stored dataset bytes per owner (--quota-bytes) */
} store_limits;
/* Sets the limits (copied; none after store_open). Call before other threads use s. */
void store_set_limits(store *s, const store_limits *limits);

/* ---------------- idempotency ----------------
 * A create (store_job_create, store_dataset_put) given an Idempotency-Key: inside the
 * transaction that inserts, the engine looks the key up for the same owner and kind ("job",
 * "dataset"), among keys younger than ttl_ms. None: the insert goes on and the key is
 * remembered with the new id, in the same transaction (so of concurrent retries exactly one
 * creates). Found with the same request digest: STORE_REPLAY, nothing written, the first id
 * in replay_id. Found with another digest: STORE_KEY_REUSED. Only successful creates are
 * remembered: a refused one (quota, bad dataset) may be retried with the same key. */
typedef struct {
    const char *key;       /* the Idempotency-Key (borrowed; 1..255 visible ASCII) */
    char request[65];      /* SHA-256 hex of what the request asked (body and parameters) */
    int64_t ttl_ms;        /* how long a key is remembered (--idempotency-ttl) */
    char replay_id[40];    /* out, with STORE_REPLAY */
} store_idempotency;

/* ---------------- datasets ---------------- */
typedef struct {
    char id[40];          /* "ds_" + 24 hex, made by the caller (random, >= 96 bits) */
    char owner[64];
    char name[128];
    int64_t rows, features, outputs; /* outputs: K = max label + 1, or Y's columns */
    int has_labels;       /* 1: labels stored (y given), 0: Y stored */
    int64_t bytes;        /* size of the stored blobs */
    int64_t created_at;   /* unix seconds */
    store_idempotency *idem; /* store_dataset_put only: NULL = no key (borrowed) */
    const char *classes_json; /* put: the class names (JSON array text, borrowed) or NULL;
                               * reads set NULL (store_dataset_classes reads them) */
} store_dataset_meta;

/* Stores X (rows × features) and either labels (rows) or Y (rows × outputs) in one
 * transaction. Large arrays are split into chunks internally. STORE_QUOTA when the owner's
 * datasets would exceed max_bytes_owner (err says by how much). */
int store_dataset_put(store *s, const store_dataset_meta *meta, const double *X,
                      const int32_t *labels, const double *Y, store_error *err);
int store_dataset_get(store *s, const char *owner, const char *id, store_dataset_meta *out,
                      store_error *err);
/* new: *X (rows × features), and *labels or *Y (the other set to NULL). */
int store_dataset_load(store *s, const char *owner, const char *id, store_dataset_meta *meta,
                       double **X, int32_t **labels, double **Y, store_error *err);
/* new: *out array of *n metas of owner, newest first, at most limit (clamped to 1..1000);
 * cursor = where the previous page stopped (0 = from the newest); *next_cursor = the cursor
 * of the next page, 0 when there is none. */
int store_dataset_list(store *s, const char *owner, int64_t cursor, int limit,
                       store_dataset_meta **out, size_t *n, int64_t *next_cursor,
                       store_error *err);
int store_dataset_delete(store *s, const char *owner, const char *id, store_error *err);
/* new: the dataset's class names as JSON array text, *classes_json NULL when it has none. */
int store_dataset_classes(store *s, const char *owner, const char *id, char **classes_json,
                          store_error *err);
/* Sum of dataset bytes stored by owner. */
int store_dataset_bytes(store *s, const char *owner, int64_t *bytes, store_error *err);

/* ---------------- jobs ---------------- */
typedef enum {
    JOB_QUEUED = 0, JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED
} job_status;
const char *job_status_name(job_status s);
int job_status_parse(const char *name, job_status *out); /* 0 ok, -1 unknown */

typedef struct {
    int64_t epoch, epochs;
    double cost, validation_cost, accuracy, samples_per_second; /* NaN = none */
    double validation_accuracy; /* held-out rows; accuracy is the training rows' */
    /* The weights stored with this progress (checkpoint or final): the epoch they are from
     * and its costs; best_epoch 0 = none named: the progress's own epoch and costs. The job
     * shows best_epoch (0 = null). */
    int64_t best_epoch;
    double best_cost, best_validation_cost;
    /* Why the job ended: "completed", "early_stopping", "converged", "diverged", "cancelled",
     * "error"; "" while it has not. Read back: a cancelled or failed job without one says
     * "cancelled" or "error" (cancels the store makes itself, jobs older than the field). */
    char stop_reason[16];
} store_progress;

typedef struct {
    char id[40];          /* "job_" + 24 hex */
    char owner[64];
    char dataset_id[40];
    char *spec_json;      /* new (owned by this struct): {"network":…,"training":…} canonical */
    char *labels_json;    /* new (owned) or NULL: {"name","tags","metadata"} given at creation,
                           * stored as is (the store does not read it) */
    char *metrics_json;   /* new (owned), or NULL: the report on the held-out rows
                           * (api_evaluation_json) a job with a validation split gets when it
                           * succeeds */
    job_status status;
    int cancel_requested;
    int64_t seq;          /* creation order, assigned by store_job_create */
    int64_t created_at, started_at, finished_at; /* unix ms, 0 = not yet */
    char error[512];
    store_progress progress;
    char lease_owner[128]; /* running: the lease holder ("host:pid:boot:n"), else "" */
    int64_t lease_until;   /* unix ms the lease runs to; 0 = none */
    /* The fencing token of the lease (engines that have them: PostgreSQL), larger at every
     * claim of any job; 0 = none. The holder passes "lease_owner#lease_token" as worker_id
     * to renew / checkpoint / finish / release, so a worker whose lease was taken over can
     * write nothing even if its owner string comes back. */
    int64_t lease_token;
    store_idempotency *idem; /* store_job_create only: NULL = no key (borrowed) */
} store_job;
void store_job_clear(store_job *j); /* frees spec_json, labels_json and metrics_json; the
                                     * struct is the caller's */
void store_jobs_free(store_job *jobs, size_t n);

/* Creates a queued job (assigns seq, created_at). theta0 (n_params doubles, may be NULL) is
 * the warm start. STORE_QUEUE_FULL / STORE_QUOTA when store_limits refuse it (err says
 * which), STORE_NOT_FOUND when the owner has no such dataset; with job->idem, STORE_REPLAY or
 * STORE_KEY_REUSED (see idempotency above). */
int store_job_create(store *s, store_job *job, const double *theta0, int64_t n_params,
                     store_error *err);
int store_job_get(store *s, const char *owner, const char *id, store_job *out, store_error *err);
/* The version of job `id` on this instance, for caches of what is built from a read of it:
 * read the version BEFORE reading the job; while store_job_version gives the same number
 * again, no write that can change that job has been made since (every store.h write bumps it
 * after it returns, hence after its commit), so what was built from that read is current.
 * 0 when the engine cannot promise this (other instances write the same database:
 * PostgreSQL): do not cache then. No I/O, no lock; never 0 on SQLite. */
uint64_t store_job_version(store *s, const char *id);
/* new: newest first; status < 0 = any; cursor = seq to continue below (0 = from the top);
 * *next_cursor = 0 when no more. */
int store_job_list(store *s, const char *owner, int status, int64_t cursor, int limit,
                   store_job **out, size_t *n, int64_t *next_cursor, store_error *err);
/* Queued + running jobs of owner, or of everybody when owner is NULL (queue depth). */
int store_job_count_active(store *s, const char *owner, int64_t *n, store_error *err);
int store_job_count_by_status(store *s, int64_t counts[5], store_error *err);

/* Claims the oldest claimable job for worker `worker_id`: status queued, or running whose
 * lease expired (its worker died). Sets running, started_at (first time), lease until
 * now + lease_ms. Returns 0 and fills *out, or STORE_NOT_FOUND when nothing is claimable. */
int store_job_claim(store *s, const char *worker_id, int64_t lease_ms, store_job *out,
                    store_error *err);
/* Extends the lease; STORE_CONFLICT if this worker no longer holds it. Also reports whether
 * a cancel was requested (*cancel_requested). */
int store_job_renew(store *s, const char *id, const char *worker_id, int64_t lease_ms,
                    int *cancel_requested, store_error *err);
/* Gives a claimed job back to the queue (shutdown), keeping its checkpoint. */
int store_job_release(store *s, const char *id, const char *worker_id, store_error *err);

/* The lease of one running job. */
typedef struct {
    char id[40];
    char lease_owner[128];
    int64_t lease_until;  /* unix ms */
} store_lease;
/* new: *out array of the *n running jobs' leases, in queue order (start-up recovery). */
int store_job_leases(store *s, store_lease **out, size_t *n, store_error *err);
/* Compare-and-set for start-up recovery: if running job id is still leased by lease_owner (a
 * worker known to be dead), ends that lease at once: the job goes back to queued (cancelled
 * if a cancel was requested) keeping its seq, started_at, history and checkpoint, claimable
 * immediately. STORE_CONFLICT if someone else holds it now or it is not running (so a live
 * worker that renewed meanwhile is never robbed), STORE_NOT_FOUND if there is no such job. */
int store_job_expire_lease(store *s, const char *id, const char *lease_owner, store_error *err);

/* One transaction: appends cost history rows [first_epoch .. first_epoch+n-1] (replacing any
 * rows at or after first_epoch: a resumed job rewrites what it redid), stores the checkpoint
 * image, the weights at that point, and the progress. The previous checkpoint stays valid
 * until this commits. STORE_CONFLICT if worker_id no longer holds the lease. */
typedef struct {
    int64_t first_epoch, n;
    const double *cost, *validation_cost, *accuracy; /* n each; NaN stored as NULL */
    const double *validation_accuracy;               /* n, or NULL = all NaN */
} store_history;
int store_job_checkpoint(store *s, const char *id, const char *worker_id,
                         const store_history *hist, const store_progress *progress,
                         const void *checkpoint, size_t checkpoint_len,
                         const double *theta, int64_t n_params, store_error *err);
/* Between checkpoints: history rows from hist->first_epoch on and the progress, without
 * weights or image, so followers on OTHER instances see every epoch (PostgreSQL: one small
 * transaction, lease and token checked, then NOTIFY). SQLite has no other instance (its
 * followers read the live registry): 0, nothing written. STORE_CONFLICT if worker_id no
 * longer holds the lease. */
int store_job_progress(store *s, const char *id, const char *worker_id,
                       const store_history *hist, const store_progress *progress,
                       store_error *err);
/* Final transition (succeeded / failed / cancelled) with the final weights (may be NULL),
 * error text (may be NULL), and the remaining history, in one transaction. */
int store_job_finish(store *s, const char *id, const char *worker_id, job_status status,
                     const char *error, const store_history *hist,
                     const store_progress *progress, const double *theta, int64_t n_params,
                     store_error *err);
/* Stores the job's held-out report (JSON text, borrowed) while worker_id holds its lease (the
 * worker calls it just before store_job_finish). STORE_CONFLICT if the lease is lost. */
int store_job_set_metrics(store *s, const char *id, const char *worker_id,
                          const char *metrics_json, store_error *err);
/* Queued → cancelled at once (returns 0, *now_cancelled=1); running → cancel_requested=1
 * (*now_cancelled=0); final states unchanged. */
int store_job_request_cancel(store *s, const char *owner, const char *id, int *now_cancelled,
                             store_error *err);
int store_job_delete(store *s, const char *owner, const char *id, store_error *err);

/* new: the last checkpoint image (STORE_NOT_FOUND if none). */
int store_job_checkpoint_load(store *s, const char *id, void **buf, size_t *len,
                              store_error *err);
/* new: latest weights (checkpoint while running, final when done) and the epoch / cost /
 * validation cost (NaN = none; validation_cost may be NULL) they belong to. STORE_NOT_FOUND
 * when the job has none yet. */
int store_job_weights(store *s, const char *owner, const char *id, double **theta,
                      int64_t *n_params, int64_t *epoch, double *cost, double *validation_cost,
                      store_error *err);
/* new: the cost history, *n rows (epoch 1..n), NaN where absent. validation_accuracy may be
 * NULL (not wanted). */
int store_job_history(store *s, const char *owner, const char *id, int64_t **epoch,
                      double **cost, double **validation_cost, double **accuracy,
                      double **validation_accuracy, size_t *n, store_error *err);
/* The same from epoch after + 1 on, at most limit rows (< 0: all): one page of it. */
int store_job_history_page(store *s, const char *owner, const char *id, int64_t after,
                           int64_t limit, int64_t **epoch, double **cost,
                           double **validation_cost, double **accuracy,
                           double **validation_accuracy, size_t *n, store_error *err);
/* The warm-start theta given at creation (new, NULL if none). */
int store_job_theta0(store *s, const char *id, double **theta, int64_t *n_params,
                     store_error *err);

#endif
