/* jobs.h — training jobs at run time: worker threads that claim jobs from the store, run the
 * core's trainer, publish live progress (for GET /v1/jobs/{id} and event streams), checkpoint,
 * and stop cleanly on shutdown. The store is the queue of record; this module only keeps the
 * wake-up signal and the live state of the jobs running in this process. It knows no HTTP:
 * whoever follows jobs (the SSE handler) registers a change listener (jobs_live.h).
 */
#ifndef BACKPROPD_JOBS_H
#define BACKPROPD_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "server/store/store.h"

typedef struct jobs jobs;

typedef struct {
    int workers;              /* worker threads, >= 1 */
    int job_threads;          /* threads per job; 0: `cores`, shared among the running jobs */
    int cores;                /* online cores, >= 1 */
    int checkpoint_seconds;   /* seconds between checkpoints of a running job; <= 0: 10 */
    /* Called once by jobs_start on its own thread, before any worker starts (may be NULL):
     * process-wide set-up the workers need, e.g. the BLAS thread count. */
    void (*before_workers)(void *arg);
    void *before_workers_arg;
} jobs_settings;

/* new. st is borrowed (it must outlive the jobs), set is copied. Does not start threads yet.
 * NULL + message on failure. */
jobs *jobs_new(store *st, const jobs_settings *set, char *err, size_t errlen);
/* Recovery (jobs left running by a dead process go back to queued, resume from their last
 * checkpoint) and start of the worker threads. 0 ok, -1 with err. */
int jobs_start(jobs *j, char *err, size_t errlen);
/* Shutdown: workers stop at a batch boundary, write a checkpoint, release their jobs back to
 * the queue, and are joined; the change listener is told (job NULL) so followers end.
 * Idempotent. */
void jobs_stop(jobs *j);
/* Stops (jobs_stop) and frees; NULL is a no-op. */
void jobs_free(jobs *j);
/* Wake a worker: a job was queued. */
void jobs_notify(jobs *j);
/* Jobs queued + running in this process's view (metrics). */
int64_t jobs_queue_depth(jobs *j);
/* Total training samples processed since start (metrics). */
int64_t jobs_samples_trained(jobs *j);

#endif
