/* jobs.c — training jobs at run time (jobs.h, jobs_live.h): worker threads that claim jobs from
 * the store, run the core's trainer, publish live progress, checkpoint, and stop cleanly; and
 * the Server-Sent Events streams that follow them.
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
 * into it after every epoch (lock, copy, wake the job's event streams, unlock); handlers copy
 * out of it under the same lock. Nobody trains, touches the store or encodes JSON while
 * holding `j->mu` — except event streams, which format a few small events under it.
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
 * Threads: each worker uses ONE BLAS thread (OpenBLAS gives different bits at different thread
 * counts, and weights must not depend on --workers) and runs at nice 19, so HTTP threads win
 * the CPU when every core trains.
 *
 * Leases are renewed every LEASE_MS/3 by the `ticker` thread for every live job, so a long
 * epoch never loses its lease; the renewal also reports cancels requested through the store
 * (e.g. on another instance), and a lost lease stops the worker without touching the job.
 *
 * Event streams (SSE): each GET /events holds a `stream` in `j->streams`. libmicrohttpd pulls
 * bytes through stream_read() on an HTTP thread. When nothing is ready, the reader suspends its
 * connection (MHD_suspend_connection from the content reader, the pattern microhttpd.h
 * prescribes for "no data yet") and returns 0: no HTTP thread blocks or spins. A worker
 * publishing an epoch resumes the job's streams; the ticker resumes each suspended stream when
 * its 15 s heartbeat is due and, once a second, those that follow a job not running here
 * (queued, or running elsewhere: they poll the store). Only the reader suspends and only
 * holders of `j->mu` resume, each under `j->mu` with the stream's `suspended` flag, so a
 * connection is never resumed twice or after it was freed. jobs_stop() resumes every
 * suspended stream so its reader ends it: MHD_stop_daemon must see no suspended connection.
 */
#include "server/common/clock.h"
#include "server/common/text.h"
#include "server/jobs/jobs.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/jobs_codec.h"
#include "server/blas_env.h"
#include "core/bp.h"
#include "server/jobs/jobs_lease.h"
#include "server/jobs/jobs_live.h"
#include "server/common/log.h"

#define LEASE_MS 15000
#define RENEW_SECONDS (LEASE_MS / 3000.0)
#define HEARTBEAT_SECONDS 15.0
#define STREAM_MAX_EVENTS 256   /* events formatted per reader refill */

typedef struct live live;
typedef struct stream stream;

/* A job running in this process: what other threads may see of it (all under j->mu, except
 * `cancel`, which the core reads between batches). */
struct live {
    live *next;
    char id[40];
    char owner[64];
    char worker_id[128];
    volatile int cancel;       /* nonzero: stop at the next batch boundary */
    int user_cancel;           /* a client asked: finish as cancelled */
    int lease_lost;            /* another worker holds it now: drop it without writing */
    int64_t created_at, started_at; /* unix ms */
    store_progress progress;
    size_t n_hist, cap_hist;   /* history rows for epochs 1..n_hist */
    double *h_cost, *h_vcost, *h_acc, *h_vacc, *h_sps;
    double *theta;             /* n_params: the trainer's weights, those of epoch theta_epoch */
    int64_t n_params, theta_epoch;
    double theta_cost, theta_vcost; /* J on training / held-out rows at theta_epoch */
    int has_theta;
};

/* One SSE connection. Fields marked (reader) belong to the HTTP thread running stream_read;
 * the rest are under j->mu. */
struct stream {
    stream *next;
    jobs *j;
    struct MHD_Connection *conn;
    char id[40];
    char owner[64];
    int suspended;             /* the reader suspended the connection; only a resume clears it */
    int dirty;                 /* something was published since the reader last looked */
    int poll_store;            /* the job does not run here: poll the store once a second */
    double last_write;         /* monotonic seconds of the last bytes handed out */
    int64_t last_id;           /* (reader) last event id formatted */
    int done;                  /* (reader) final status formatted: end after the buffer */
    char *buf;                 /* (reader) pending bytes */
    size_t len, off, cap;
};

typedef struct {
    jobs *j;
    int n;
    char worker_id[128];
    pthread_t thread;
    int started;
} worker;

struct jobs {
    server *s;
    pthread_mutex_t mu;
    pthread_cond_t work_cond;  /* idle workers wait here */
    pthread_cond_t tick_cond;  /* the ticker sleeps here */
    pthread_cond_t gone_cond;  /* a live job ended */
    uint64_t notify_seq;
    atomic_int stopping;
    int stopped;
    live *live;
    stream *streams;
    worker *workers;
    int n_workers;
    pthread_t ticker;
    int ticker_started;
    atomic_llong samples;
    atomic_llong depth;        /* last queue depth read from the store */
};

/* ------------------------------------------------------------------ small helpers */

static void log_transition(const char *id, const char *status, int64_t epoch, const char *error)
{
    char safe[300];
    if (error && *error)
        log_event(LOG_INFO, "job", "id=%s status=%s epoch=%lld error=\"%s\"", id, status,
                  (long long)epoch, text_log_safe(safe, sizeof safe, error));
    else
        log_event(LOG_INFO, "job", "id=%s status=%s epoch=%lld", id, status, (long long)epoch);
}

static void progress_from_bp(store_progress *out, const bp_progress *p)
{
    out->epoch = p->epoch;
    out->epochs = p->epochs;
    out->cost = p->cost;
    out->validation_cost = p->validation_cost;
    out->accuracy = p->accuracy;
    out->validation_accuracy = p->validation_accuracy;
    out->samples_per_second = p->samples_per_second;
    out->best_epoch = p->best_epoch;
    out->best_cost = p->best_cost;
    out->best_validation_cost = p->best_validation_cost;
    const char *why = bp_stop_reason_name(p->stop);
    snprintf(out->stop_reason, sizeof out->stop_reason, "%s", why ? why : "");
}

/* ------------------------------------------------------------------ registry (under j->mu) */

static live *live_find(jobs *j, const char *id)
{
    for (live *l = j->live; l; l = l->next)
        if (strcmp(l->id, id) == 0)
            return l;
    return NULL;
}

static void live_free(live *l)
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

/* Marks the job's streams dirty and resumes the suspended ones. */
static void wake_streams_locked(jobs *j, const char *id)
{
    for (stream *s = j->streams; s; s = s->next) {
        if (id && strcmp(s->id, id) != 0)
            continue;
        s->dirty = 1;
        if (s->suspended) {
            s->suspended = 0;
            MHD_resume_connection(s->conn);
        }
    }
}

/* One history row. */
typedef struct {
    double cost, vcost, acc, vacc, sps;
} hist_row;

/* Appends one history row (epoch n_hist + 1). 0 ok, -1 out of memory. */
static int live_push_row_locked(live *l, const hist_row *r)
{
    double **cols[] = {&l->h_cost, &l->h_vcost, &l->h_acc, &l->h_vacc, &l->h_sps};
    const double vals[] = {r->cost, r->vcost, r->acc, r->vacc, r->sps};
    enum { NCOLS = sizeof cols / sizeof cols[0] };
    if (l->n_hist == l->cap_hist) {
        size_t cap = l->cap_hist ? l->cap_hist * 2 : 64;
        for (int k = 0; k < NCOLS; k++) {
            double *a = realloc(*cols[k], cap * sizeof *a);
            if (!a)
                return -1;
            *cols[k] = a;
        }
        l->cap_hist = cap;
    }
    for (int k = 0; k < NCOLS; k++)
        (*cols[k])[l->n_hist] = vals[k];
    l->n_hist++;
    return 0;
}

/* ------------------------------------------------------------------ running one job */

typedef struct {
    worker *w;
    store_job *job;
    live *lv;
    bp_spec spec;
    bp_train_config cfg;
    int64_t n_params;
    double *X, *Y, *targets, *theta0;
    int32_t *labels;
    store_dataset_meta meta;
    bp_trainer *t;
    unsigned char *img;        /* the trainer's image at epoch img_epoch */
    size_t img_len, img_cap;
    int64_t img_epoch;         /* -1: none held */
    int64_t ckpt_epoch;        /* epoch of the checkpoint the store holds */
    char error[512];
} run;

/* The worker's own view: history rows [from, to) and the weights of the latest epoch are only
 * written by this thread, so it may read them without the lock. */
static void history_slice(const live *l, int64_t from_epoch, int64_t to_epoch, store_history *h)
{
    h->first_epoch = from_epoch + 1;
    h->n = to_epoch > from_epoch ? to_epoch - from_epoch : 0;
    h->cost = l->h_cost ? l->h_cost + from_epoch : NULL;
    h->validation_cost = l->h_vcost ? l->h_vcost + from_epoch : NULL;
    h->accuracy = l->h_acc ? l->h_acc + from_epoch : NULL;
    h->validation_accuracy = l->h_vacc ? l->h_vacc + from_epoch : NULL;
}

/* Writes the held epoch-boundary image as the job's checkpoint. 0 ok, else a store_code. */
static int write_checkpoint(run *R)
{
    jobs *j = R->w->j;
    live *l = R->lv;
    if (R->img_epoch < 0 || R->img_epoch <= R->ckpt_epoch || !l->has_theta ||
        l->theta_epoch != R->img_epoch)
        return 0;
    store_history h;
    history_slice(l, R->ckpt_epoch, R->img_epoch, &h);
    store_progress p = l->progress; /* worker-written only */
    store_error se = {0};
    int rc = store_job_checkpoint(j->s->st, R->job->id, R->w->worker_id, &h, &p, R->img,
                                  R->img_len, l->theta, l->n_params, &se);
    if (rc == 0) {
        R->ckpt_epoch = R->img_epoch;
        log_event(LOG_DEBUG, "checkpoint", "id=%s epoch=%lld bytes=%zu", R->job->id,
                  (long long)R->img_epoch, R->img_len);
    } else {
        char safe[300];
        log_event(LOG_WARN, "checkpoint", "id=%s epoch=%lld code=%d error=\"%s\"", R->job->id,
                  (long long)R->img_epoch, rc, text_log_safe(safe, sizeof safe, se.msg));
    }
    return rc;
}

/* Loads everything the trainer needs; on failure R->error says why (the job fails). */
static int prepare(run *R)
{
    jobs *j = R->w->j;
    store *st = j->s->st;
    store_error se = {0};
    api_error ae = {0};
    bp_error be = {{0}};
    void *ck = NULL;
    size_t ck_len = 0;
    int64_t *h_epoch = NULL;
    double *h_cost = NULL, *h_vcost = NULL, *h_acc = NULL, *h_vacc = NULL;
    size_t h_n = 0;
    int rc = -1;

    if (api_job_spec_parse(&R->spec, &R->cfg, R->job->spec_json, &ae) < 0) {
        snprintf(R->error, sizeof R->error, "stored job spec is unreadable: %.400s", ae.detail);
        goto cleanup;
    }
    R->n_params = bp_param_count(&R->spec);
    int K = R->spec.sizes[R->spec.n_layers - 1];
    int rcs = store_dataset_load(st, R->job->owner, R->job->dataset_id, &R->meta, &R->X,
                                 &R->labels, &R->Y, &se);
    if (rcs == STORE_NOT_FOUND) {
        snprintf(R->error, sizeof R->error, "dataset %s no longer exists", R->job->dataset_id);
        goto cleanup;
    }
    if (rcs < 0) {
        snprintf(R->error, sizeof R->error, "could not load dataset %s: %s",
                 R->job->dataset_id, se.msg);
        goto cleanup;
    }
    api_dataset d = {.rows = R->meta.rows, .features = R->meta.features,
                     .outputs = R->meta.outputs, .X = R->X, .labels = R->labels, .Y = R->Y};
    if (api_dataset_fits(&d, &R->spec, &ae) < 0 || !(R->targets = api_targets(&d, K, &ae))) {
        snprintf(R->error, sizeof R->error, "%.500s", ae.detail);
        goto cleanup;
    }
    int64_t n_theta0 = 0;
    rcs = store_job_theta0(st, R->job->id, &R->theta0, &n_theta0, &se);
    if (rcs < 0 && rcs != STORE_NOT_FOUND) {
        snprintf(R->error, sizeof R->error, "could not load the warm-start theta: %s", se.msg);
        goto cleanup;
    }
    if (R->theta0 && n_theta0 != R->n_params) {
        snprintf(R->error, sizeof R->error, "the warm-start theta has %lld values, not %lld",
                 (long long)n_theta0, (long long)R->n_params);
        goto cleanup;
    }
    bp_data data = {.X = R->X, .Y = R->targets, .labels = R->labels, .m = R->meta.rows,
                    .n_in = R->meta.features, .n_out = K};
    R->t = bp_trainer_new(&R->spec, &R->cfg, &data, R->theta0, &be);
    if (!R->t) {
        snprintf(R->error, sizeof R->error, "%s", be.msg);
        goto cleanup;
    }
    rcs = store_job_checkpoint_load(st, R->job->id, &ck, &ck_len, &se);
    if (rcs == 0) {
        if (bp_trainer_checkpoint_load(R->t, ck, ck_len, &be) < 0) {
            snprintf(R->error, sizeof R->error, "the job's checkpoint cannot be resumed: %s",
                     be.msg);
            goto cleanup;
        }
    } else if (rcs != STORE_NOT_FOUND) {
        snprintf(R->error, sizeof R->error, "could not load the job's checkpoint: %s", se.msg);
        goto cleanup;
    }
    R->ckpt_epoch = bp_trainer_epochs_done(R->t);
    R->img_epoch = -1;

    /* Resuming: the history up to the checkpoint comes from the store. */
    if (R->ckpt_epoch > 0 &&
        store_job_history(st, R->job->owner, R->job->id, &h_epoch, &h_cost, &h_vcost, &h_acc,
                          &h_vacc, &h_n, &se) < 0)
        h_n = 0;
    double *theta_copy = malloc((size_t)R->n_params * sizeof(double));
    if (!theta_copy) {
        snprintf(R->error, sizeof R->error, "out of memory for %lld parameters",
                 (long long)R->n_params);
        goto cleanup;
    }
    memcpy(theta_copy, bp_trainer_theta(R->t), (size_t)R->n_params * sizeof(double));
    pthread_mutex_lock(&j->mu);
    live *l = R->lv;
    int oom = 0;
    for (int64_t e = 1; e <= R->ckpt_epoch && !oom; e++) {
        size_t i = (size_t)(e - 1);
        int have = i < h_n && h_epoch[i] == e;
        hist_row row = {NAN, NAN, NAN, NAN, NAN};
        if (have)
            row = (hist_row){h_cost[i], h_vcost[i], h_acc[i], h_vacc[i], NAN};
        oom = live_push_row_locked(l, &row) < 0;
    }
    l->theta = theta_copy;
    l->n_params = R->n_params;
    l->theta_epoch = R->ckpt_epoch;
    l->theta_cost = R->ckpt_epoch > 0 && l->n_hist ? l->h_cost[l->n_hist - 1] : NAN;
    l->theta_vcost = R->ckpt_epoch > 0 && l->n_hist ? l->h_vcost[l->n_hist - 1] : NAN;
    l->has_theta = R->ckpt_epoch > 0;
    l->progress.epochs = R->cfg.epochs;
    pthread_mutex_unlock(&j->mu);
    if (oom) {
        snprintf(R->error, sizeof R->error, "out of memory for the cost history");
        goto cleanup;
    }
    rc = 0;
cleanup:
    free(ck);
    free(h_epoch);
    free(h_cost);
    free(h_vcost);
    free(h_acc);
    free(h_vacc);
    return rc;
}

/* After a completed epoch: publish it (history, progress, weights), wake its streams, and keep
 * the epoch-boundary image. */
static void publish_epoch(run *R, const bp_progress *p)
{
    jobs *j = R->w->j;
    live *l = R->lv;
    int oom;
    pthread_mutex_lock(&j->mu);
    hist_row row = {p->cost, p->validation_cost, p->accuracy, p->validation_accuracy,
                    p->samples_per_second};
    oom = live_push_row_locked(l, &row) < 0;
    progress_from_bp(&l->progress, p);
    /* the trainer's weights: this epoch's, or the best one's once early stopping restored it */
    memcpy(l->theta, bp_trainer_theta(R->t), (size_t)R->n_params * sizeof(double));
    l->theta_epoch = p->best_epoch;
    l->theta_cost = p->best_cost;
    l->theta_vcost = p->best_validation_cost;
    l->has_theta = 1;
    wake_streams_locked(j, l->id);
    pthread_mutex_unlock(&j->mu);
    if (oom)
        log_event(LOG_WARN, "job", "id=%s epoch=%lld error=\"history row dropped: out of memory\"",
                  l->id, (long long)p->epoch);

    int64_t m_train = 0, m_val = 0;
    bp_split_sizes(R->meta.rows, R->cfg.validation_split, &m_train, &m_val, NULL);
    atomic_fetch_add(&j->samples, (long long)m_train);

    size_t need = bp_trainer_checkpoint_size(R->t);
    if (need > R->img_cap) {
        unsigned char *b = realloc(R->img, need);
        if (!b) {
            R->img_epoch = -1;
            return;
        }
        R->img = b;
        R->img_cap = need;
    }
    bp_error be = {{0}};
    if (bp_trainer_checkpoint_save(R->t, R->img, need, &be) == 0) {
        R->img_len = need;
        R->img_epoch = p->epoch;
    } else {
        R->img_epoch = -1;
    }
}

static void run_job(worker *w, store_job *job)
{
    jobs *j = w->j;
    store *st = j->s->st;
    store_error se = {0};
    run R;
    memset(&R, 0, sizeof R);
    R.w = w;
    R.job = job;
    R.img_epoch = -1;
    job_status final = JOB_FAILED;
    int release = 0, abandon = 0, diverged = 0;

    live *l = calloc(1, sizeof *l);
    if (!l) {
        store_job_release(st, job->id, w->worker_id, &se);
        return;
    }
    snprintf(l->id, sizeof l->id, "%s", job->id);
    snprintf(l->owner, sizeof l->owner, "%s", job->owner);
    snprintf(l->worker_id, sizeof l->worker_id, "%s", w->worker_id);
    l->created_at = job->created_at;
    l->started_at = job->started_at;
    l->progress = job->progress;
    R.lv = l;
    pthread_mutex_lock(&j->mu);
    l->next = j->live;
    j->live = l;
    if (atomic_load(&j->stopping))
        l->cancel = 1;
    wake_streams_locked(j, l->id);
    pthread_mutex_unlock(&j->mu);
    log_transition(job->id, "running", job->progress.epoch, NULL);

    if (prepare(&R) < 0)
        goto finish;

    /* A cancel may have reached the store between the claim and the registration. */
    int cancel_req = 0;
    if (store_job_renew(st, job->id, w->worker_id, LEASE_MS, &cancel_req, &se) == 0 &&
        cancel_req) {
        pthread_mutex_lock(&j->mu);
        l->user_cancel = 1;
        __atomic_store_n(&l->cancel, 1, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&j->mu);
    }

    double last_ckpt = clock_monotonic();
    double every = j->s->cfg.checkpoint_seconds > 0 ? j->s->cfg.checkpoint_seconds : 10;
    for (;;) {
        bp_progress p;
        bp_error be = {{0}};
        bp_train_status ts = bp_trainer_epoch(R.t, &p, &l->cancel, &be);
        if (ts == BP_TRAIN_CONTINUE || ts == BP_TRAIN_DONE) {
            publish_epoch(&R, &p);
            if (ts == BP_TRAIN_DONE) {
                final = JOB_SUCCEEDED;
                break;
            }
            if (clock_monotonic() - last_ckpt >= every) {
                if (write_checkpoint(&R) == STORE_CONFLICT) {
                    abandon = 1;
                    break;
                }
                last_ckpt = clock_monotonic();
            }
            continue;
        }
        if (ts == BP_TRAIN_CANCELLED) {
            pthread_mutex_lock(&j->mu);
            int user = l->user_cancel, lost = l->lease_lost;
            pthread_mutex_unlock(&j->mu);
            if (lost)
                abandon = 1;
            else if (user)
                final = JOB_CANCELLED;
            else
                release = 1; /* shutdown */
            break;
        }
        snprintf(R.error, sizeof R.error, "%s", be.msg[0] ? be.msg : "training failed");
        diverged = p.stop == BP_STOP_DIVERGED;
        final = JOB_FAILED;
        break;
    }

finish:
    if (abandon) {
        log_event(LOG_WARN, "job", "id=%s status=abandoned error=\"lease lost to another worker\"",
                  job->id);
    } else if (release) {
        write_checkpoint(&R);
        if (store_job_release(st, job->id, w->worker_id, &se) < 0)
            log_event(LOG_WARN, "job", "id=%s error=\"release failed: code %d\"", job->id, se.code);
        log_transition(job->id, "queued", R.ckpt_epoch, NULL);
    } else {
        /* Final weights: the trainer's (best ones under early stopping) when it succeeded,
         * else those of the last completed epoch. */
        const double *theta = NULL;
        if (final == JOB_SUCCEEDED && R.t)
            theta = bp_trainer_theta(R.t);
        else if (l->has_theta)
            theta = l->theta;
        store_history h;
        history_slice(l, R.ckpt_epoch, (int64_t)l->n_hist, &h);
        store_progress p = l->progress;
        if (p.epochs == 0)
            p.epochs = R.cfg.epochs;
        /* The weights stored are those the worker holds: the epoch they are from, and why the
         * job ended (succeeded: the trainer's reason, already in the progress). */
        p.best_epoch = l->has_theta ? l->theta_epoch : 0;
        p.best_cost = l->theta_cost;
        p.best_validation_cost = l->theta_vcost;
        if (final != JOB_SUCCEEDED)
            snprintf(p.stop_reason, sizeof p.stop_reason, "%s",
                     final == JOB_CANCELLED ? "cancelled" : diverged ? "diverged" : "error");
        int rc = -1;
        for (int attempt = 0; attempt < 30 && rc < 0; attempt++) {
            rc = store_job_finish(st, job->id, w->worker_id, final, R.error[0] ? R.error : NULL,
                                  &h, &p, theta, theta ? R.n_params : 0, &se);
            if (rc == STORE_CONFLICT || rc == STORE_NOT_FOUND)
                break; /* deleted, or lease lost */
            if (rc < 0 && atomic_load(&j->stopping) && attempt >= 2)
                break; /* exit in time; the lease expires and the job is resumed */
            if (rc < 0) {
                /* Disk full / busy: keep the lease and retry for a while. */
                struct timespec d = {0, 200 * 1000 * 1000};
                nanosleep(&d, NULL);
            }
        }
        if (rc < 0)
            log_event(LOG_WARN, "job", "id=%s error=\"final write failed: code %d\"", job->id, rc);
        log_transition(job->id, job_status_name(final), p.epoch, R.error);
    }

    pthread_mutex_lock(&j->mu);
    for (live **pp = &j->live; *pp; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    wake_streams_locked(j, l->id);
    pthread_cond_broadcast(&j->gone_cond);
    pthread_mutex_unlock(&j->mu);
    live_free(l);
    bp_trainer_free(R.t);
    free(R.img);
    free(R.X);
    free(R.Y);
    free(R.labels);
    free(R.targets);
    free(R.theta0);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    jobs *j = w->j;
    /* Training is batch work: nice 19 for this thread (CFS weight 15 against 1024 for nice 0),
     * so HTTP threads win the CPU when they compete with it and requests stay fast while every
     * core trains. (Not SCHED_IDLE: it would let any other busy process starve jobs and their
     * leases.) */
    setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
    for (;;) {
        pthread_mutex_lock(&j->mu);
        uint64_t seq = j->notify_seq;
        pthread_mutex_unlock(&j->mu);
        if (atomic_load(&j->stopping))
            break;
        store_job job;
        memset(&job, 0, sizeof job);
        store_error se = {0};
        int rc = store_job_claim(j->s->st, w->worker_id, LEASE_MS, &job, &se);
        if (rc == 0) {
            run_job(w, &job);
            store_job_clear(&job);
            continue;
        }
        if (rc != STORE_NOT_FOUND) {
            char safe[300];
            log_event(LOG_WARN, "worker", "worker=%d code=%d error=\"claim failed: %s\"", w->n,
                      rc, text_log_safe(safe, sizeof safe, se.msg));
        }
        pthread_mutex_lock(&j->mu);
        if (!atomic_load(&j->stopping) && j->notify_seq == seq) {
            struct timespec d = clock_deadline_in(1.0);
            pthread_cond_timedwait(&j->work_cond, &j->mu, &d);
        }
        pthread_mutex_unlock(&j->mu);
    }
    return NULL;
}

/* ------------------------------------------------------------------ the ticker */

/* Live jobs' ids and lease holders, copied under the lock for renewal outside it.
 * renew_leases is called with j->mu held; it drops the lock around the store calls and holds
 * it again when it returns. */
typedef struct {
    char id[40];
    char worker_id[128];
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
        rn[i].code = store_job_renew(j->s->st, rn[i].id, rn[i].worker_id, LEASE_MS,
                                     &rn[i].cancel, &se);
    }
    pthread_mutex_lock(&j->mu);
    for (int i = 0; i < n; i++) {
        live *l = live_find(j, rn[i].id);
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

/* Once a second: resumes streams that poll the store or owe a heartbeat; every LEASE_MS/3
 * renews the lease of every job running here. */
static void *ticker_main(void *arg)
{
    jobs *j = arg;
    double last_renew = clock_monotonic();
    renewal *rn = calloc((size_t)j->n_workers, sizeof *rn); /* live jobs <= workers */
    pthread_mutex_lock(&j->mu);
    while (!atomic_load(&j->stopping)) {
        struct timespec d = clock_deadline_in(1.0);
        pthread_cond_timedwait(&j->tick_cond, &j->mu, &d);
        if (atomic_load(&j->stopping))
            break;
        double now = clock_monotonic();
        for (stream *s = j->streams; s; s = s->next) {
            if (s->suspended && (s->poll_store || now - s->last_write >= HEARTBEAT_SECONDS)) {
                s->suspended = 0;
                s->dirty = 1;
                MHD_resume_connection(s->conn);
            }
        }
        if (rn && now - last_renew >= RENEW_SECONDS) {
            last_renew = now;
            renew_leases(j, rn, j->n_workers);
        }
    }
    pthread_mutex_unlock(&j->mu);
    free(rn);
    return NULL;
}

/* ------------------------------------------------------------------ jobs.h */

jobs *jobs_new(server *s, char *err, size_t errlen)
{
    jobs *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errlen, "jobs: out of memory");
        return NULL;
    }
    j->s = s;
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
    int n = j->s->cfg.workers > 0 ? j->s->cfg.workers : (j->s->cores > 0 ? j->s->cores : 1);
    /* One BLAS thread per worker, always (process-wide, set once before any worker trains):
     * workers × BLAS threads never exceeds the cores as long as workers <= cores, and weights
     * stay bit-identical whatever --workers is. OpenBLAS 0.3.21's dgemm gives different bits
     * with 1 and 2 threads (its threaded driver splits K and M differently; measured on
     * digits, full batch: the weights differ after one epoch), so a job may not use "all the
     * cores" when it runs alone without giving up determinism. On W2 shapes (784-256-128-10,
     * batch 256) 2 BLAS threads were not faster than 1 on this box anyway. */
    int blas = 1;
    blas_set_threads(blas);

    /* Lease owner identity "host:pid:boot:n" (jobs_lease.h). Before any worker claims, the
     * jobs this host's dead processes left running go back to the queue at once instead of
     * waiting LEASE_MS for their leases to run out. */
    char host[80], boot[24];
    jobs_lease_self(host, sizeof host, boot, sizeof boot);
    int recovered = 0;
    jobs_recover_dead_leases(j->s->st, host, getpid(), boot, LEASE_MS, &recovered);

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
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
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
    log_event(LOG_INFO, "jobs", "workers=%d blas_threads=%d lease_ms=%d recovered=%d", n, blas,
              LEASE_MS, recovered);
    return 0;
}

void jobs_stop(jobs *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    if (j->stopped) {
        pthread_mutex_unlock(&j->mu);
        return;
    }
    atomic_store(&j->stopping, 1);
    for (live *l = j->live; l; l = l->next)
        __atomic_store_n(&l->cancel, 1, __ATOMIC_RELAXED);
    wake_streams_locked(j, NULL);
    pthread_cond_broadcast(&j->work_cond);
    pthread_cond_broadcast(&j->tick_cond);
    pthread_mutex_unlock(&j->mu);

    for (int i = 0; i < j->n_workers; i++)
        if (j->workers[i].started) {
            pthread_join(j->workers[i].thread, NULL);
            j->workers[i].started = 0;
        }
    if (j->ticker_started) {
        pthread_join(j->ticker, NULL);
        j->ticker_started = 0;
    }
    pthread_mutex_lock(&j->mu);
    wake_streams_locked(j, NULL); /* readers never suspend once stopping is set; belt and braces */
    j->stopped = 1;
    pthread_mutex_unlock(&j->mu);
}

void jobs_free(jobs *j)
{
    if (!j)
        return;
    jobs_stop(j);
    /* Streams still listed belong to connections MHD has not closed; they unlink themselves
     * when freed, so MHD_stop_daemon must run before jobs_free. */
    while (j->live) {
        live *l = j->live;
        j->live = l->next;
        live_free(l);
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
    if (store_job_count_active(j->s->st, NULL, &n, &se) == 0)
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
    live *l = live_find(j, id);
    if (l)
        *out = l->progress;
    pthread_mutex_unlock(&j->mu);
    return l != NULL;
}

int jobs_live_history(jobs *j, const char *id, int64_t **epoch, double **cost,
                      double **validation_cost, double **accuracy,
                      double **validation_accuracy, size_t *n)
{
    double **out[] = {cost, validation_cost, accuracy, validation_accuracy};
    enum { NCOLS = sizeof out / sizeof out[0] };
    int rc = 0;
    *epoch = NULL;
    for (int k = 0; k < NCOLS; k++)
        *out[k] = NULL;
    *n = 0;
    pthread_mutex_lock(&j->mu);
    live *l = live_find(j, id);
    if (l) {
        const double *src[NCOLS] = {l->h_cost, l->h_vcost, l->h_acc, l->h_vacc};
        size_t k = l->n_hist;
        int64_t *e = malloc((k ? k : 1) * sizeof *e);
        double *c[NCOLS];
        int bad = !e;
        for (int col = 0; col < NCOLS; col++) {
            c[col] = malloc((k ? k : 1) * sizeof *c[col]);
            bad |= !c[col];
        }
        if (bad) {
            free(e);
            for (int col = 0; col < NCOLS; col++)
                free(c[col]);
            rc = -1;
        } else {
            for (size_t i = 0; i < k; i++)
                e[i] = (int64_t)i + 1;
            for (int col = 0; col < NCOLS; col++) {
                if (k)
                    memcpy(c[col], src[col], k * sizeof *c[col]);
                *out[col] = c[col];
            }
            *epoch = e;
            *n = k;
            rc = 1;
        }
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int jobs_live_weights(jobs *j, const char *id, double **theta, int64_t *n_params,
                      int64_t *epoch, double *cost, double *validation_cost)
{
    int rc = 0;
    *theta = NULL;
    pthread_mutex_lock(&j->mu);
    live *l = live_find(j, id);
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
    live *l = live_find(j, id);
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
    while (live_find(j, id)) {
        if (pthread_cond_timedwait(&j->gone_cond, &j->mu, &d) == ETIMEDOUT) {
            rc = live_find(j, id) ? -1 : 0;
            break;
        }
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

/* ------------------------------------------------------------------ event streams */

/* Appends formatted bytes to the reader's buffer. 0 ok, -1 out of memory. */
static int sbuf_printf(stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sbuf_printf(stream *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if (s->len + (size_t)n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + (size_t)n + 1)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b)
            return -1;
        s->buf = b;
        s->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(s->buf + s->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
    return 0;
}

/* Formats one event (steals data). 0 ok, -1 out of memory. */
static int emit(stream *s, int64_t id, const char *event, json_t *data)
{
    char *text = data ? api_dump(data, NULL) : NULL;
    json_decref(data);
    if (!text)
        return -1;
    int rc = sbuf_printf(s, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)id, event, text);
    free(text);
    if (rc == 0)
        s->last_id = id;
    return rc;
}

static json_t *status_event(const char *status, int64_t at_ms, int64_t epoch, const char *error)
{
    return json_pack("{s:s, s:o, s:I, s:o}", "status", status, "at", api_time_json(at_ms),
                     "epoch", (json_int_t)epoch, "error",
                     error && *error ? json_string(error) : json_null());
}

/* The final status event: status_event plus what the job's resource says of its end. */
static json_t *final_event(const store_job *job, int64_t epoch)
{
    json_t *o = status_event(job_status_name(job->status), job->finished_at, epoch, job->error);
    if (o && api_job_outcome_set(o, job->progress.best_epoch, job->progress.stop_reason) < 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static json_t *progress_event(int64_t epoch, int64_t epochs, const hist_row *r)
{
    api_job_progress p = {.epoch = epoch, .epochs = epochs, .cost = r->cost,
                          .validation_cost = r->vcost, .accuracy = r->acc,
                          .validation_accuracy = r->vacc, .samples_per_second = r->sps};
    return api_job_progress_json(&p);
}

/* Events of a job running here, after s->last_id (under j->mu). */
static int fill_live(stream *s, const live *l)
{
    int count = 0;
    if (s->last_id < 1 && emit(s, 1, "status", status_event("queued", l->created_at, 0, NULL)) < 0)
        return -1;
    if (s->last_id < 2 &&
        emit(s, 2, "status", status_event("running", l->started_at, 0, NULL)) < 0)
        return -1;
    for (int64_t e = s->last_id > 2 ? s->last_id - 1 : 1;
         e <= (int64_t)l->n_hist && count < STREAM_MAX_EVENTS; e++, count++) {
        size_t i = (size_t)(e - 1);
        hist_row row = {l->h_cost[i], l->h_vcost[i], l->h_acc[i], l->h_vacc[i], l->h_sps[i]};
        if (emit(s, 2 + e, "progress", progress_event(e, l->progress.epochs, &row)) < 0)
            return -1;
    }
    return 0;
}

/* Events of a job that does not run here, from the store. */
static int fill_store(stream *s, store *st)
{
    store_job job;
    memset(&job, 0, sizeof job);
    store_error se = {0};
    int64_t *h_epoch = NULL;
    double *h_cost = NULL, *h_vcost = NULL, *h_acc = NULL, *h_vacc = NULL;
    size_t h_n = 0;
    int rc = 0;
    int r = store_job_get(st, s->owner, s->id, &job, &se);
    if (r == STORE_NOT_FOUND) {
        s->done = 1; /* deleted */
        goto cleanup;
    }
    if (r < 0)
        goto cleanup; /* try again at the next poll */
    int final = job.status == JOB_SUCCEEDED || job.status == JOB_FAILED ||
                job.status == JOB_CANCELLED;
    if (s->last_id < 1 && emit(s, 1, "status", status_event("queued", job.created_at, 0, NULL)) < 0)
        goto oom;
    if (job.started_at > 0 && s->last_id < 2 &&
        emit(s, 2, "status", status_event("running", job.started_at, 0, NULL)) < 0)
        goto oom;
    int64_t last_epoch = s->last_id >= 2 ? s->last_id - 2 : 0;
    int64_t E = job.progress.epoch;
    if (job.progress.epoch > last_epoch || final) {
        if (store_job_history(st, s->owner, s->id, &h_epoch, &h_cost, &h_vcost, &h_acc, &h_vacc,
                              &h_n, &se) < 0)
            goto cleanup;
        for (size_t i = 0; i < h_n; i++) {
            if (h_epoch[i] <= last_epoch)
                continue;
            hist_row row = {h_cost[i], h_vcost[i], h_acc[i], h_vacc[i], NAN};
            if (emit(s, 2 + h_epoch[i], "progress",
                     progress_event(h_epoch[i], job.progress.epochs, &row)) < 0)
                goto oom;
            last_epoch = h_epoch[i];
        }
        if (h_n > 0 && h_epoch[h_n - 1] > E)
            E = h_epoch[h_n - 1];
    }
    if (final) {
        if (3 + E > s->last_id && emit(s, 3 + E, "status", final_event(&job, E)) < 0)
            goto oom;
        s->done = 1;
    }
    goto cleanup;
oom:
    rc = -1;
cleanup:
    store_job_clear(&job);
    free(h_epoch);
    free(h_cost);
    free(h_vcost);
    free(h_acc);
    free(h_vacc);
    return rc;
}

/* MHD content reader: hands out pending bytes; refills from the live entry or the store; when
 * there is nothing, suspends the connection and returns 0 (resumed by a publish, the ticker
 * or shutdown). */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream *s = cls;
    jobs *j = s->j;
    (void)pos;
    while (s->off == s->len) {
        s->off = s->len = 0;
        if (s->done || atomic_load(&j->stopping))
            return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&j->mu);
        s->dirty = 0;
        live *l = live_find(j, s->id);
        int rc = l ? fill_live(s, l) : 0;
        s->poll_store = l == NULL;
        pthread_mutex_unlock(&j->mu);
        if (!l)
            rc = fill_store(s, j->s->st);
        if (rc < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (s->len > 0)
            break;
        if (s->done)
            return MHD_CONTENT_READER_END_OF_STREAM;
        double now = clock_monotonic();
        pthread_mutex_lock(&j->mu);
        if (now - s->last_write >= HEARTBEAT_SECONDS) {
            pthread_mutex_unlock(&j->mu);
            if (sbuf_printf(s, ": heartbeat\n\n") < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            break;
        }
        if (!s->dirty && !atomic_load(&j->stopping)) {
            s->suspended = 1;
            MHD_suspend_connection(s->conn);
            pthread_mutex_unlock(&j->mu);
            return 0;
        }
        pthread_mutex_unlock(&j->mu);
    }
    size_t n = s->len - s->off < max ? s->len - s->off : max;
    memcpy(buf, s->buf + s->off, n);
    s->off += n;
    pthread_mutex_lock(&j->mu);
    s->last_write = clock_monotonic();
    pthread_mutex_unlock(&j->mu);
    return (ssize_t)n;
}

/* MHD frees the response: the connection is gone (finished, client vanished, or shutdown). */
static void stream_free(void *cls)
{
    stream *s = cls;
    if (!s)
        return;
    jobs *j = s->j;
    pthread_mutex_lock(&j->mu);
    for (stream **pp = &j->streams; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    pthread_mutex_unlock(&j->mu);
    free(s->buf);
    free(s);
}

handler_result jobs_events_reply(jobs *j, req *r, const char *id, const char *owner,
                                 int64_t last_event_id)
{
    stream *s = calloc(1, sizeof *s);
    if (!s)
        return http_reply_problem(r, 503, "out of memory for an event stream; retry later");
    s->j = j;
    s->conn = r->conn;
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->owner, sizeof s->owner, "%s", owner);
    s->last_id = last_event_id > 0 ? last_event_id : 0;
    s->last_write = clock_monotonic();
    pthread_mutex_lock(&j->mu);
    if (atomic_load(&j->stopping)) {
        pthread_mutex_unlock(&j->mu);
        free(s);
        http_add_header(r, "Retry-After", "5");
        return http_reply_problem(r, 503, "shutting down: reconnect to follow the job");
    }
    s->next = j->streams;
    j->streams = s;
    pthread_mutex_unlock(&j->mu);
    http_add_header(r, "Cache-Control", "no-cache");
    http_add_header(r, "X-Accel-Buffering", "no");
    return http_reply_stream(r, 200, "text/event-stream", stream_read, s, stream_free);
}
