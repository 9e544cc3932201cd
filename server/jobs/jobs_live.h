/* jobs_live.h — what the /v1/jobs handlers (h_jobs.c) may ask of jobs.c beyond jobs.h: the live
 * state of jobs running in THIS process (progress, cost history, latest weights), cancelling
 * them, and the Server-Sent Events stream. Private to jobs.c and h_jobs.c.
 *
 * Every function copies what it returns (new arrays, caller frees with free()), so no handler
 * ever holds a pointer into a worker's state.
 */
#ifndef BACKPROPD_JOBS_LIVE_H
#define BACKPROPD_JOBS_LIVE_H

#include "server/jobs/jobs.h"

/* 1 when the process is shutting down (new jobs and new streams get 503). */
int jobs_stopping(jobs *j);

/* 1 and *out filled when job id runs here (status running), else 0. */
int jobs_live_progress(jobs *j, const char *id, store_progress *out);
/* 1 and new arrays of *n rows (epochs 1..n) when id runs here; 0 not here; -1 out of memory. */
int jobs_live_history(jobs *j, const char *id, int64_t **epoch, double **cost,
                      double **validation_cost, double **accuracy,
                      double **validation_accuracy, size_t *n);
/* 1 and a new copy of the trainer's latest weights when id runs here and has some, with the
 * epoch they are from and its training / validation cost; 0 otherwise; -1 out of memory. */
int jobs_live_weights(jobs *j, const char *id, double **theta, int64_t *n_params,
                      int64_t *epoch, double *cost, double *validation_cost);
/* Asks the worker running id here to stop at the next batch boundary and finish the job as
 * cancelled. 1 if it runs here, 0 if not. */
int jobs_live_cancel(jobs *j, const char *id);
/* Waits (at most timeout_ms) until id no longer runs here. 0 gone, -1 still running. */
int jobs_live_wait_gone(jobs *j, const char *id, int timeout_ms);

/* Replies to GET /v1/jobs/{id}/events with a text/event-stream for job (owner-checked by the
 * caller), starting after event id last_event_id (0 = from the beginning).
 *
 * Event ids are one numbering that works live and replayed from the store:
 *   1 = status queued, 2 = status running, 2 + e = progress of epoch e (e >= 1),
 *   3 + E = the final status (succeeded/failed/cancelled) after E completed epochs.
 * A job resumed after a restart re-emits the epochs it redid under the same ids with the same
 * values (training is bit-exact), so a client's Last-Event-ID always means the same thing. */
handler_result jobs_events_reply(jobs *j, req *r, const char *id, const char *owner,
                                 int64_t last_event_id);

#endif
