/* jobs_live.h — what the /v1/jobs handlers (h_jobs.c, h_events.c) may ask of the job runtime
 * beyond jobs.h: the live state of jobs running in THIS process (progress, cost history,
 * latest weights), cancelling them, and a listener told when that state changes.
 *
 * Every function copies what it returns (new arrays, caller frees with free()), so no handler
 * ever holds a pointer into a worker's state.
 */
#ifndef BACKPROPD_JOBS_LIVE_H
#define BACKPROPD_JOBS_LIVE_H

#include <stdint.h>

#include "server/jobs/jobs.h"

/* 1 when the process is shutting down (new jobs and new streams get 503). */
int jobs_stopping(jobs *j);

/* 1 and *out filled when job id runs here (status running), else 0. */
int jobs_live_progress(jobs *j, const char *id, store_progress *out);
/* The version of job id's live progress here: 0 when it does not run here, else a number
 * that changes (and never comes back) whenever what jobs_live_progress gives for it changes,
 * and when it stops and starts running here again. Read it before jobs_live_progress: equal
 * before and after means that progress was the one of that version. */
uint64_t jobs_live_version(jobs *j, const char *id);
/* 1 when id runs here: *created_at and *started_at (unix ms), and a new array *rows of *n
 * (at most max) progress rows, one per completed epoch after after_epoch (rows[i].epoch =
 * after_epoch + 1 + i; *rows NULL when *n is 0). 0 not here; -1 out of memory. */
int jobs_live_epochs(jobs *j, const char *id, int64_t after_epoch, size_t max,
                     int64_t *created_at, int64_t *started_at, store_progress **rows,
                     size_t *n);
/* 1 and a new copy of the trainer's latest weights when id runs here and has some, with the
 * epoch they are from and its training / validation cost; 0 otherwise; -1 out of memory. */
int jobs_live_weights(jobs *j, const char *id, double **theta, int64_t *n_params,
                      int64_t *epoch, double *cost, double *validation_cost);
/* Asks the worker running id here to stop at the next batch boundary and finish the job as
 * cancelled. 1 if it runs here, 0 if not. */
int jobs_live_cancel(jobs *j, const char *id);
/* Waits (at most timeout_ms) until id no longer runs here. 0 gone, -1 still running. */
int jobs_live_wait_gone(jobs *j, const char *id, int timeout_ms);

/* The change listener: fn(arg, job_id) is called after the live state of job_id changed here
 * (it started running here, completed an epoch, stopped running here: its final state is in
 * the store by then), and once with job_id NULL when jobs_stop begins (everything ends).
 * It is called from worker threads and from jobs_stop's caller, WITHOUT any lock of the job
 * runtime held: fn may call every jobs_live_* function. fn must return quickly (it delays a
 * worker) and must not call jobs_stop/jobs_free. One listener; fn NULL removes it. Set it
 * before jobs_start, or know that a call already under way may still reach the old one. */
typedef void (*jobs_change_fn)(void *arg, const char *job_id);
void jobs_on_change(jobs *j, jobs_change_fn fn, void *arg);

#endif
