/* jobs.c — training jobs at run time (jobs.h, jobs_live.h): the registry of jobs running here,
 * wake-ups, the ticker that renews leases, start (with recovery) and stop, and the live getters
 * handlers use. One worker's claim → prepare → train → finish is in jobs_worker.c.
 *
 * DESIGN
 * The store is the queue of record. POST /v1/jobs writes a queued job and calls jobs_notify();
 * nothing about the job is kept in memory until a worker claims it. --workers threads loop:
 * store_job_claim() with a lease (LEASE_MS) under a per-process worker id
 * "host:pid:boot:n" (boot: random per process start); when nothing is claimable a worker
 * sleeps on `work_cond` until jobs_notify() bumps `notify_seq` or one second passes (jobs
 * queued by another instance and leases that expired are then picked up). A claimed job runs
 * entirely on its worker's thread with its own spec, dataset copy, targets, trainer (PRNG,
 * workspace, optimizer state) and checkpoint image: no json_t and no core object crosses
 * threads.
 *
 * What other threads see of a running job is its `live` entry in the registry (`j->live`, a
 * list under `j->mu`): status, progress, the cost history, a copy of the weights after the
 * latest epoch, and the cancel flag the core polls before every batch. The worker publishes
 * into it after every epoch (lock, copy, unlock, then tell the change listener); handlers copy
 * out of it under the same lock. Nobody trains, touches the store, encodes JSON or calls the
 * listener while holding `j->mu`.
 *
 * Checkpoints: after every epoch the worker saves the trainer's image into its own buffer
 * (the core only allows that at an epoch boundary); every --checkpoint-seconds that image, the
 * history rows since the previous checkpoint, the weights and the progress go to the store in
 * one transaction. A failed write (disk full...) is logged and retried at the next interval;
 * training goes on. On shutdown the worker is cancelled at a batch boundary, writes the last
 * epoch-boundary image it holds, and releases the job back to the queue; the next start (or
 * another instance) resumes it bit-exactly. A job whose process died (kill -9, crash) keeps
 * status running with its lease. At start, before the workers, jobs_recover_dead_leases()
 * (jobs_lease.h) gives back to the queue every job leased by a process of this host that is
 * provably gone (no such pid, or our own pid with another boot id: a restarted container),
 * with a compare-and-set on the lease owner; a restarted instance resumes them at once from
 * their last checkpoint. Jobs of other hosts wait for their lease to expire (LEASE_MS), then
 * any worker claims them.
 *
 * Threads: workers run at nice 19 (jobs_worker.c); process-wide set-up they need (the
 * server's: ONE BLAS thread, so weights do not depend on --workers) runs once in jobs_start
 * before the first worker (jobs_settings.before_workers).
 *
 * Leases are renewed every LEASE_MS/3 by the `ticker` thread for every live job, so a long
 * epoch never loses its lease; the renewal also reports cancels requested through the store
 * (e.g. on another instance), and a lost lease stops the worker without touching the job.
 *
 * Followers (the SSE handler, server/handlers/h_events.c) learn of changes through one
 * listener (jobs_on_change), called after a job registers, publishes an epoch or leaves, and
 * once when jobs_stop begins; always without j->mu, so it may read the live state at once.
 */
#include "server/jobs/jobs_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/jobs/jobs_lease.h"
#include "server/jobs/jobs_live.h"

/* ------------------------------------------------------------------ registry (under j->mu) */

live *jobs_live_find_locked(jobs *j, const char *id)
{
    for (live *l = j->live; l; l = l->next)
        if (strcmp(l->id, id) == 0)
            return l;
    return NULL;
}

void jobs_live_free(live *l)
{
    if (!l)
        return;
    free(l->h_cost);
    free(l->h_vcost);
    free(l->h_acc);
    free(l->h_vacc);
    free(l->h_sps);
    free(l->theta);
    free(l);
}

void jobs_on_change(jobs *j, jobs_change_fn fn, void *arg)
{
    pthread_mutex_lock(&j->mu);
    j->on_change = fn;
    j->on_change_arg = arg;
    pthread_mutex_unlock(&j->mu);
}

void jobs_changed(jobs *j, const char *id)
{
    pthread_mutex_lock(&j->mu);
    jobs_change_fn fn = j->on_change;
    void *arg = j->on_change_arg;
    pthread_mutex_unlock(&j->mu);
    if (fn)
        fn(arg, id);
}

/* ------------------------------------------------------------------ the ticker */

/* Live jobs' ids and lease holders, copied under the lock for renewal outside it.
 * renew_leases is called with j->mu held; it drops the lock around the store calls and holds
 * it again when it returns. */
typedef struct {
    char id[40];
    char worker_id[JOBS_LEASE_REF_MAX];
    int cancel, code;
} renewal;

static void renew_leases(jobs *j, renewal *rn, int cap)
{
    int n = 0;
    for (live *l = j->live; l && n < cap; l = l->next, n++) {
        memcpy(rn[n].id, l->id, sizeof rn[n].id);
        memcpy(rn[n].worker_id, l->worker_id, sizeof rn[n].worker_id);
    }
    pthread_mutex_unlock(&j->mu);
    for (int i = 0; i < n; i++) {
        store_error se = {0};
        rn[i].cancel = 0;
        rn[i].code = store_job_renew(j->st, rn[i].id, rn[i].worker_id, LEASE_MS,
                                     &rn[i].cancel, &se);
    }
    pthread_mutex_lock(&j->mu);
    for (int i = 0; i < n; i++) {
        live *l = jobs_live_find_locked(j, rn[i].id);
        if (!l || strcmp(l->worker_id, rn[i].worker_id) != 0)
            continue;
        if (rn[i].code == STORE_CONFLICT || rn[i].code == STORE_NOT_FOUND) {
            l->lease_lost = 1;
            __atomic_store_n(&l->cancel, 1, __ATOMIC_RELAXED);
        } else if (rn[i].code == 0 && rn[i].cancel) {
            l->user_cancel = 1;
            __atomic_store_n(&l->cancel, 1, __ATOMIC_RELAXED);
        }
    }
}

/* Every LEASE_MS/3 renews the lease of every job running here. */
static void *ticker_main(void *arg)
{
    jobs *j = arg;
    double last_renew = clock_monotonic();
    renewal *rn = calloc((size_t)j->n_workers, sizeof *rn); /* live jobs <= workers */
    pthread_mutex_lock(&j->mu);
    while (!atomic_load(&j->stopping)) {
        struct timespec d = clock_deadline_in(1.0);
        if (!j->renew_now)
            pthread_cond_timedwait(&j->tick_cond, &j->mu, &d);
        if (atomic_load(&j->stopping))
            break;
        double now = clock_monotonic();
        if (rn && (now - last_renew >= RENEW_SECONDS || j->renew_now)) {
            last_renew = now;
            j->renew_now = 0;
            renew_leases(j, rn, j->n_workers);
        }
    }
    pthread_mutex_unlock(&j->mu);
    free(rn);
    return NULL;
}


/* ------------------------------------------------------------------ store events */

/* What other instances do, as the store tells (store_listen; on the store's thread, no lock
 * held): a job queued anywhere wakes the idle workers here; progress of a job (running
 * anywhere) wakes its followers; a cancel or delete of a job running here makes the ticker
 * renew at once, and the renewal stops the worker (cancel requested, or lease gone). */
static void on_store_event(void *arg, store_event ev, const char *id)
{
    jobs *j = arg;
    if (ev == STORE_EVENT_QUEUED) {
        jobs_notify(j);
    } else if (ev == STORE_EVENT_PROGRESS) {
        jobs_changed(j, id);
    } else {
        pthread_mutex_lock(&j->mu);
        if (jobs_live_find_locked(j, id)) {
            j->renew_now = 1;
            pthread_cond_broadcast(&j->tick_cond);
        }
        pthread_mutex_unlock(&j->mu);
        jobs_changed(j, id);
    }
}

/* ------------------------------------------------------------------ jobs.h */

jobs *jobs_new(store *st, const jobs_settings *set, char *err, size_t errlen)
{
    if (set->workers < 1) {
        snprintf(err, errlen, "jobs: at least one worker is needed");
        return NULL;
    }
    jobs *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errlen, "jobs: out of memory");
        return NULL;
    }
    j->st = st;
    j->set = *set;
    if (j->set.cores < 1)
        j->set.cores = 1;
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&j->work_cond, &ca);
    pthread_cond_init(&j->tick_cond, &ca);
    pthread_cond_init(&j->gone_cond, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&j->stopping, 0);
    atomic_init(&j->samples, 0);
    atomic_init(&j->depth, 0);
    return j;
}

int jobs_start(jobs *j, char *err, size_t errlen)
{
    int n = j->set.workers;
    if (j->set.before_workers)
        j->set.before_workers(j->set.before_workers_arg);

    /* Lease owner identity "host:pid:boot:n" (jobs_lease.h). Before any worker claims, the
     * jobs this host's dead processes left running go back to the queue at once instead of
     * waiting LEASE_MS for their leases to run out. */
    char host[80], boot[24];
    jobs_lease_self(host, sizeof host, boot, sizeof boot);
    int recovered = 0;
    jobs_recover_dead_leases(j->st, host, getpid(), boot, LEASE_MS, &recovered);

    j->workers = calloc((size_t)n, sizeof *j->workers);
    if (!j->workers) {
        snprintf(err, errlen, "jobs: out of memory");
        return -1;
    }
    j->n_workers = n;
    for (int i = 0; i < n; i++) {
        worker *w = &j->workers[i];
        w->j = j;
        w->n = i;
        snprintf(w->worker_id, sizeof w->worker_id, "%.69s:%d:%.16s:%d", host, (int)getpid(),
                 boot, i);
        if (pthread_create(&w->thread, NULL, jobs_worker_main, w) != 0) {
            snprintf(err, errlen, "jobs: cannot start worker thread %d: %s", i, strerror(errno));
            jobs_stop(j);
            return -1;
        }
        w->started = 1;
    }
    if (pthread_create(&j->ticker, NULL, ticker_main, j) != 0) {
        snprintf(err, errlen, "jobs: cannot start the ticker thread");
        jobs_stop(j);
        return -1;
    }
    j->ticker_started = 1;
    store_error se = {0};
    if (store_listen(j->st, on_store_event, j, &se) < 0)
        log_event(LOG_WARN, "jobs", "error=\"no events from the store: %s\"", se.msg);
    log_event(LOG_INFO, "jobs", "workers=%d lease_ms=%d recovered=%d", n, LEASE_MS, recovered);
    return 0;
}

void jobs_stop(jobs *j)
{
    if (!j)
        return;
    store_error se = {0};
    store_listen(j->st, NULL, NULL, &se); /* no store event reaches j after this */
    pthread_mutex_lock(&j->mu);
    if (j->stopped) {
        pthread_mutex_unlock(&j->mu);
        return;
    }
    atomic_store(&j->stopping, 1);
    for (live *l = j->live; l; l = l->next)
        __atomic_store_n(&l->cancel, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&j->work_cond);
    pthread_cond_broadcast(&j->tick_cond);
    pthread_mutex_unlock(&j->mu);
    jobs_changed(j, NULL); /* followers end */

    for (int i = 0; i < j->n_workers; i++)
        if (j->workers[i].started) {
            pthread_join(j->workers[i].thread, NULL);
            j->workers[i].started = 0;
        }
    if (j->ticker_started) {
        pthread_join(j->ticker, NULL);
        j->ticker_started = 0;
    }
    jobs_changed(j, NULL); /* followers never wait once stopping is set; belt and braces */
    pthread_mutex_lock(&j->mu);
    j->stopped = 1;
    pthread_mutex_unlock(&j->mu);
}

void jobs_free(jobs *j)
{
    if (!j)
        return;
    jobs_stop(j);
    while (j->live) {
        live *l = j->live;
        j->live = l->next;
        jobs_live_free(l);
    }
    free(j->workers);
    pthread_cond_destroy(&j->work_cond);
    pthread_cond_destroy(&j->tick_cond);
    pthread_cond_destroy(&j->gone_cond);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

void jobs_notify(jobs *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    j->notify_seq++;
    pthread_cond_broadcast(&j->work_cond);
    pthread_mutex_unlock(&j->mu);
}

int64_t jobs_queue_depth(jobs *j)
{
    if (!j)
        return 0;
    int64_t n = 0;
    store_error se = {0};
    if (store_job_count_active(j->st, NULL, &n, &se) == 0)
        atomic_store(&j->depth, (long long)n);
    return (int64_t)atomic_load(&j->depth);
}

int64_t jobs_samples_trained(jobs *j)
{
    return j ? (int64_t)atomic_load(&j->samples) : 0;
}

/* ------------------------------------------------------------------ jobs_live.h */

int jobs_stopping(jobs *j)
{
    return atomic_load(&j->stopping);
}

int jobs_live_progress(jobs *j, const char *id, store_progress *out)
{
    pthread_mutex_lock(&j->mu);
    live *l = jobs_live_find_locked(j, id);
    if (l)
        *out = l->progress;
    pthread_mutex_unlock(&j->mu);
    return l != NULL;
}

uint64_t jobs_live_version(jobs *j, const char *id)
{
    pthread_mutex_lock(&j->mu);
    live *l = jobs_live_find_locked(j, id);
    uint64_t v = l ? l->seq : 0;
    pthread_mutex_unlock(&j->mu);
    return v;
}

int jobs_live_weights(jobs *j, const char *id, double **theta, int64_t *n_params,
                      int64_t *epoch, double *cost, double *validation_cost)
{
    int rc = 0;
    *theta = NULL;
    pthread_mutex_lock(&j->mu);
    live *l = jobs_live_find_locked(j, id);
    if (l && l->has_theta) {
        double *t = malloc((size_t)l->n_params * sizeof *t);
        if (!t) {
            rc = -1;
        } else {
            memcpy(t, l->theta, (size_t)l->n_params * sizeof *t);
            *theta = t;
            *n_params = l->n_params;
            *epoch = l->theta_epoch;
            *cost = l->theta_cost;
            *validation_cost = l->theta_vcost;
            rc = 1;
        }
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int jobs_live_cancel(jobs *j, const char *id)
{
    pthread_mutex_lock(&j->mu);
    live *l = jobs_live_find_locked(j, id);
    if (l) {
        l->user_cancel = 1;
        __atomic_store_n(&l->cancel, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&j->mu);
    return l != NULL;
}

int jobs_live_wait_gone(jobs *j, const char *id, int timeout_ms)
{
    struct timespec d = clock_deadline_in(timeout_ms / 1000.0);
    int rc = 0;
    pthread_mutex_lock(&j->mu);
    while (jobs_live_find_locked(j, id)) {
        if (pthread_cond_timedwait(&j->gone_cond, &j->mu, &d) == ETIMEDOUT) {
            rc = jobs_live_find_locked(j, id) ? -1 : 0;
            break;
        }
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int jobs_live_epochs(jobs *j, const char *id, int64_t after_epoch, size_t max,
                     int64_t *created_at, int64_t *started_at, store_progress **rows,
                     size_t *n)
{
    int rc = 0;
    *rows = NULL;
    *n = 0;
    pthread_mutex_lock(&j->mu);
    live *l = jobs_live_find_locked(j, id);
    if (!l)
        goto cleanup;
    *created_at = l->created_at;
    *started_at = l->started_at;
    size_t from = after_epoch > 0 ? (size_t)after_epoch : 0;
    size_t k = l->n_hist > from ? l->n_hist - from : 0;
    if (k > max)
        k = max;
    rc = 1;
    if (k == 0)
        goto cleanup;
    store_progress *p = malloc(k * sizeof *p);
    if (!p) {
        rc = -1;
        goto cleanup;
    }
    for (size_t i = 0; i < k; i++) {
        size_t e = from + i; /* row index of epoch e + 1 */
        p[i] = (store_progress){.epoch = (int64_t)e + 1, .epochs = l->progress.epochs,
                                .cost = l->h_cost[e], .validation_cost = l->h_vcost[e],
                                .accuracy = l->h_acc[e], .validation_accuracy = l->h_vacc[e],
                                .samples_per_second = l->h_sps[e]};
    }
    *rows = p;
    *n = k;
cleanup:
    pthread_mutex_unlock(&j->mu);
    return rc;
}
