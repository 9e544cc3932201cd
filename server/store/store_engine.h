/* store_engine.h — what a storage engine (server/store/<engine>/) provides to the engine-neutral
 * store code (store.c), and what store.c gives every engine: the rules that are not SQL.
 * Included only by store.c and by engines; callers use store.h.
 *
 * Selection is at build time (see store.h): exactly one engine is linked and defines the
 * store.h functions not defined in store.c, plus the two below.
 */
#ifndef BACKPROPD_STORE_ENGINE_H
#define BACKPROPD_STORE_ENGINE_H

#include <stdint.h>

#include "server/store/store.h"

/* ---------------- provided by the engine ---------------- */

/* The engine's name in messages ("SQLite") and the location schemes it serves ("sqlite"; a
 * location without "scheme://" is a directory and goes to the engine that serves "file"). */
extern const char store_engine_name[];
extern const char *const store_engine_schemes[]; /* NULL-terminated */

/* new. Opens the store at `location` (a directory for "file", else the full "scheme://…"
 * string). The engine's struct store must begin with a store_base (below). */
store *store_engine_open(const char *location, store_error *err);

/* ---------------- engine-neutral state and rules (store.c) ---------------- */

/* The first member of every engine's struct store: state that store.c manages. */
typedef struct {
    store_limits limits; /* admission limits (store_set_limits) */
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

#endif
