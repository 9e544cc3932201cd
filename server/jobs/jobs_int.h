/* jobs_int.h — what the job runtime's files share (jobs.c: registry, wake-ups, life cycle,
 * the ticker and the jobs_live.h getters; jobs_worker.c: one worker's claim → prepare →
 * train → checkpoint → finish). Nothing outside server/jobs/ includes this.
 */
#ifndef BACKPROPD_JOBS_INT_H
#define BACKPROPD_JOBS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/bp.h"
#include "server/jobs/jobs.h"
#include "server/jobs/jobs_live.h"
#include "server/store/store.h"

#define LEASE_MS 15000
#define RENEW_SECONDS (LEASE_MS / 3000.0)
#define PROGRESS_SECONDS 0.25 /* epochs reach the store (for other instances) this often */
#define JOBS_LEASE_REF_MAX 160 /* "host:pid:boot:n" (< 128) + "#token" */

typedef struct live live;

/* A job running in this process: what other threads may see of it (all under j->mu, except
 * `cancel`, which the core reads between batches). */
struct live {
    live *next;
    char id[40];
    char owner[64];
    char worker_id[JOBS_LEASE_REF_MAX]; /* the lease reference its writes and renewals name */
    volatile int cancel;       /* nonzero: stop at the next batch boundary */
    int user_cancel;           /* a client asked: finish as cancelled */
    int lease_lost;            /* another worker holds it now: drop it without writing */
    int64_t created_at, started_at; /* unix ms */
    store_progress progress;
    uint64_t seq;              /* jobs_live_version: from j->live_seq at each change above */
    size_t n_hist, cap_hist;   /* history rows for epochs 1..n_hist */
    double *h_cost, *h_vcost, *h_acc, *h_vacc, *h_sps;
    double *theta;             /* n_params: the trainer's weights, those of epoch theta_epoch */
    int64_t n_params, theta_epoch;
    double theta_cost, theta_vcost; /* J on training / held-out rows at theta_epoch */
    int has_theta;
};

typedef struct {
    jobs *j;
    int n;
    char worker_id[128];
    pthread_t thread;
    int started;
    bp_pool *pool;             /* the threads its jobs' passes run on, or NULL: its own */
} worker;

struct jobs {
    store *st;                 /* borrowed */
    jobs_settings set;
    pthread_mutex_t mu;
    pthread_cond_t work_cond;  /* idle workers wait here */
    pthread_cond_t tick_cond;  /* the ticker sleeps here */
    pthread_cond_t gone_cond;  /* a live job ended */
    uint64_t notify_seq;
    atomic_int stopping;
    int stopped;
    live *live;
    uint64_t live_seq;         /* under mu: the last live->seq handed out (never reused) */
    worker *workers;
    int n_workers;
    pthread_t ticker;
    int ticker_started;
    int renew_now;             /* the ticker renews at once (a cancel arrived from the store) */
    atomic_llong samples;
    atomic_llong depth;        /* last queue depth read from the store */
    jobs_change_fn on_change;  /* under mu; called without it (jobs_changed) */
    void *on_change_arg;
};

/* Registry, under j->mu. */
live *jobs_live_find_locked(jobs *j, const char *id);
/* Tells the change listener (jobs_on_change) that job id (NULL: every job) changed. Call
 * WITHOUT j->mu held. */
void jobs_changed(jobs *j, const char *id);
/* Frees a live entry no longer listed; NULL is a no-op. */
void jobs_live_free(live *l);

/* jobs_worker.c: a worker thread's body (arg: its worker). */
void *jobs_worker_main(void *arg);

#endif
