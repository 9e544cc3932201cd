/* jobs_worker.c — one worker thread of the job runtime (jobs_int.h): claim a job from the store,
 * prepare it (spec, dataset, trainer, checkpoint, history so far), train epoch after epoch
 * publishing each one into its live entry, checkpoint every --checkpoint-seconds, and finish
 * (final status, release on shutdown, or abandon when the lease was lost). The design is
 * described at the head of jobs.c.
 *
 * Threads: each worker runs at nice 19, so HTTP threads win the CPU when every core trains;
 * the BLAS thread count is set once before the workers start (jobs_settings.before_workers).
 */
#include "server/jobs/jobs_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/eval_codec.h"
#include "api/jobs_codec.h"
#include "core/bp.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/common/text.h"

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
    int64_t m_train;           /* training rows (the split's other part is held out) */
    double *X, *Y, *targets, *theta0;
    int32_t *labels;
    store_dataset_meta meta;
    bp_trainer *t;
    unsigned char *img;        /* the trainer's image at epoch img_epoch */
    size_t img_len, img_cap;
    int64_t img_epoch;         /* -1: none held */
    int64_t ckpt_epoch;        /* epoch of the checkpoint the store holds */
    int64_t prog_epoch;        /* history rows the store holds (checkpoint or progress) */
    char error[512];
    /* how it ends: release (shutdown: back to the queue), abandon (lease lost), else final */
    job_status final;
    int release, abandon;
    int diverged;              /* the trainer failed the job as diverged */
    /* what every write for this job names as its lease: the worker id, "#token" added when
     * the store fences leases (store_job.lease_token) */
    char lease[JOBS_LEASE_REF_MAX];
    api_job_extras extras;     /* the standardization kept with the job (mean NULL: none) */
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
    int rc = store_job_checkpoint(j->st, R->job->id, R->lease, &h, &p, R->img,
                                  R->img_len, l->theta, l->n_params, &se);
    if (rc == 0) {
        R->ckpt_epoch = R->img_epoch;
        if (R->prog_epoch < R->ckpt_epoch)
            R->prog_epoch = R->ckpt_epoch;
        log_event(LOG_DEBUG, "checkpoint", "id=%s epoch=%lld bytes=%zu", R->job->id,
                  (long long)R->img_epoch, R->img_len);
    } else {
        char safe[300];
        log_event(LOG_WARN, "checkpoint", "id=%s epoch=%lld code=%d error=\"%s\"", R->job->id,
                  (long long)R->img_epoch, rc, text_log_safe(safe, sizeof safe, se.msg));
    }
    return rc;
}

/* Between checkpoints: the history since what the store holds and the progress, for followers
 * on other instances (a no-op on SQLite). 0 ok, else a store_code (STORE_CONFLICT: lease
 * lost; anything else only delays the followers). */
static int write_progress(run *R)
{
    live *l = R->lv;
    int64_t from = R->prog_epoch > R->ckpt_epoch ? R->prog_epoch : R->ckpt_epoch;
    if ((int64_t)l->n_hist <= from)
        return 0;
    store_history h;
    history_slice(l, from, (int64_t)l->n_hist, &h);
    store_progress p = l->progress; /* worker-written only */
    store_error se = {0};
    int rc = store_job_progress(R->w->j->st, R->job->id, R->lease, &h, &p, &se);
    if (rc == 0)
        R->prog_epoch = (int64_t)l->n_hist;
    return rc;
}

/* prepare, phase 1: the spec, the dataset and its targets, the warm-start theta. */
static int prepare_data(run *R)
{
    store *st = R->w->j->st;
    store_error se = {0};
    api_error ae = {0};
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
    /* Trained standardized: the transform fitted at creation, kept in the spec text, so a
     * resumed job trains on the same bits. */
    if (api_job_extras_parse(&R->extras, R->job->spec_json, R->meta.features, &ae) < 0) {
        snprintf(R->error, sizeof R->error, "%.500s", ae.detail);
        goto cleanup;
    }
    if (R->extras.mean)
        bp_standardize_apply(R->X, R->X, R->extras.mean, R->extras.sd, R->meta.rows,
                             R->meta.features);
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
    rc = 0;
cleanup:
    return rc;
}

/* prepare, phase 2: the trainer, resumed from the job's checkpoint when it has one. */
static int prepare_trainer(run *R)
{
    store *st = R->w->j->st;
    store_error se = {0};
    bp_error be = {{0}};
    void *ck = NULL;
    size_t ck_len = 0;
    int rc = -1;

    int K = R->spec.sizes[R->spec.n_layers - 1];
    int64_t m_val = 0;
    bp_split_sizes(R->meta.rows, R->cfg.validation_split, &R->m_train, &m_val, NULL);
    bp_data data = {.X = R->X, .Y = R->targets, .labels = R->labels, .m = R->meta.rows,
                    .n_in = R->meta.features, .n_out = K};
    R->t = bp_trainer_new(&R->spec, &R->cfg, &data, R->theta0, &be);
    if (!R->t) {
        snprintf(R->error, sizeof R->error, "%s", be.msg);
        goto cleanup;
    }
    int rcs = store_job_checkpoint_load(st, R->job->id, &ck, &ck_len, &se);
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
    if (bp_trainer_set_pool(R->t, R->w->pool, &be) < 0) {
        log_event(LOG_WARN, "job", "id=%s error=\"%s: training on one thread\"", R->job->id,
                  be.msg);
        bp_trainer_set_pool(R->t, NULL, NULL); /* the same weights, on the worker alone */
    }
    R->ckpt_epoch = bp_trainer_epochs_done(R->t);
    R->img_epoch = -1;
    rc = 0;
cleanup:
    free(ck);
    return rc;
}

/* prepare, phase 3: the live entry's history up to the checkpoint (from the store when
 * resuming) and the weights the trainer starts from. */
static int prepare_live(run *R)
{
    jobs *j = R->w->j;
    store *st = j->st;
    store_error se = {0};
    int64_t *h_epoch = NULL;
    double *h_cost = NULL, *h_vcost = NULL, *h_acc = NULL, *h_vacc = NULL;
    size_t h_n = 0;
    int rc = -1;

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
    l->seq = ++j->live_seq;
    pthread_mutex_unlock(&j->mu);
    if (oom) {
        snprintf(R->error, sizeof R->error, "out of memory for the cost history");
        goto cleanup;
    }
    rc = 0;
cleanup:
    free(h_epoch);
    free(h_cost);
    free(h_vcost);
    free(h_acc);
    free(h_vacc);
    return rc;
}

/* Loads everything the trainer needs; on failure R->error says why (the job fails). */
static int prepare(run *R)
{
    return prepare_data(R) < 0 || prepare_trainer(R) < 0 || prepare_live(R) < 0 ? -1 : 0;
}

/* After a completed epoch: publish it (history, progress, weights), tell the change listener,
 * and keep the epoch-boundary image. */
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
    l->seq = ++j->live_seq;
    /* the trainer's weights: this epoch's, or the best one's once early stopping restored it */
    memcpy(l->theta, bp_trainer_theta(R->t), (size_t)R->n_params * sizeof(double));
    l->theta_epoch = p->best_epoch;
    l->theta_cost = p->best_cost;
    l->theta_vcost = p->best_validation_cost;
    l->has_theta = 1;
    pthread_mutex_unlock(&j->mu);
    jobs_changed(j, l->id);
    if (oom)
        log_event(LOG_WARN, "job", "id=%s epoch=%lld error=\"history row dropped: out of memory\"",
                  l->id, (long long)p->epoch);

    atomic_fetch_add(&j->samples, (long long)R->m_train);

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

/* run_job, phase 1: the job's live entry, listed so other threads see it running here. NULL
 * when out of memory. */
static live *run_register(worker *w, const store_job *job, const char *lease)
{
    jobs *j = w->j;
    live *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    snprintf(l->id, sizeof l->id, "%s", job->id);
    snprintf(l->owner, sizeof l->owner, "%s", job->owner);
    snprintf(l->worker_id, sizeof l->worker_id, "%s", lease);
    l->created_at = job->created_at;
    l->started_at = job->started_at;
    l->progress = job->progress;
    pthread_mutex_lock(&j->mu);
    l->seq = ++j->live_seq;
    l->next = j->live;
    j->live = l;
    if (atomic_load(&j->stopping))
        l->cancel = 1;
    pthread_mutex_unlock(&j->mu);
    jobs_changed(j, l->id);
    log_transition(job->id, "running", job->progress.epoch, NULL);
    return l;
}

/* The threads a job's passes may use now: --job-threads, or (0) the cores shared evenly among
 * the jobs running in this process, at least one each. The weights never depend on it. */
static int job_share(jobs *j)
{
    if (j->set.job_threads > 0)
        return j->set.job_threads;
    int running = 0;
    pthread_mutex_lock(&j->mu);
    for (const live *l = j->live; l; l = l->next)
        running++;
    pthread_mutex_unlock(&j->mu);
    int share = j->set.cores / (running > 0 ? running : 1);
    return share > 0 ? share : 1;
}

/* run_job, phase 2: epochs until done, cancelled, failed or the lease is lost, with a
 * checkpoint every --checkpoint-seconds. Sets R->final / release / abandon. */
static void run_train(run *R)
{
    jobs *j = R->w->j;
    live *l = R->lv;
    store_error se = {0};

    /* A cancel may have reached the store between the claim and the registration. */
    int cancel_req = 0;
    if (store_job_renew(j->st, R->job->id, R->lease, LEASE_MS, &cancel_req, &se) == 0 &&
        cancel_req) {
        pthread_mutex_lock(&j->mu);
        l->user_cancel = 1;
        __atomic_store_n(&l->cancel, 1, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&j->mu);
    }

    double last_ckpt = clock_monotonic(), last_prog = last_ckpt;
    double every = j->set.checkpoint_seconds > 0 ? j->set.checkpoint_seconds : 10;
    for (;;) {
        bp_progress p;
        bp_error be = {{0}};
        bp_pool_set_active(R->w->pool, job_share(j));
        bp_train_status ts = bp_trainer_epoch(R->t, &p, &l->cancel, &be);
        if (ts == BP_TRAIN_CONTINUE || ts == BP_TRAIN_DONE) {
            publish_epoch(R, &p);
            if (ts == BP_TRAIN_DONE) {
                R->final = JOB_SUCCEEDED;
                break;
            }
            if (clock_monotonic() - last_ckpt >= every) {
                if (write_checkpoint(R) == STORE_CONFLICT) {
                    R->abandon = 1;
                    break;
                }
                last_ckpt = last_prog = clock_monotonic();
            } else if (clock_monotonic() - last_prog >= PROGRESS_SECONDS) {
                if (write_progress(R) == STORE_CONFLICT) {
                    R->abandon = 1;
                    break;
                }
                last_prog = clock_monotonic();
            }
            continue;
        }
        if (ts == BP_TRAIN_CANCELLED) {
            pthread_mutex_lock(&j->mu);
            int user = l->user_cancel, lost = l->lease_lost;
            pthread_mutex_unlock(&j->mu);
            if (lost)
                R->abandon = 1;
            else if (user)
                R->final = JOB_CANCELLED;
            else
                R->release = 1; /* shutdown */
            break;
        }
        snprintf(R->error, sizeof R->error, "%s", be.msg[0] ? be.msg : "training failed");
        R->diverged = p.stop == BP_STOP_DIVERGED;
        R->final = JOB_FAILED;
        break;
    }
}

/* new: the report (api_evaluation_json's text) of weights theta on the held-out rows of the
 * (standardized) dataset; NULL when the job has none or out of memory. */
static char *heldout_metrics(run *R, const double *theta)
{
    int64_t m = R->meta.rows, n = R->meta.features, K = R->spec.sizes[R->spec.n_layers - 1];
    int64_t m_train, m_val;
    if (!theta || bp_split_sizes(m, R->cfg.validation_split, &m_train, &m_val, NULL) < 0 ||
        m_val == 0)
        return NULL;
    char *text = NULL;
    unsigned char *held = malloc((size_t)m);
    double *Xv = malloc((size_t)(m_val * n) * sizeof *Xv);
    double *Yv = malloc((size_t)(m_val * K) * sizeof *Yv);
    bp_work *w = bp_work_new(&R->spec, m_val, NULL);
    bp_eval e;
    memset(&e, 0, sizeof e);
    if (!held || !Xv || !Yv || !w || bp_split_mark(held, m, &R->cfg, NULL) < 0)
        goto cleanup;
    for (int64_t i = 0, v = 0; i < m; i++)
        if (held[i]) {
            memcpy(Xv + v * n, R->X + i * n, (size_t)n * sizeof *Xv);
            memcpy(Yv + v * K, R->targets + i * K, (size_t)K * sizeof *Yv);
            v++;
        }
    if (bp_evaluate(&e, w, Xv, Yv, theta, m_val, R->cfg.lambda, NULL) == 0) {
        json_t *j = api_evaluation_json(&e, R->extras.classes_json);
        text = j ? api_dump(j, NULL) : NULL;
        json_decref(j);
    }
cleanup:
    bp_eval_clear(&e);
    bp_work_free(w);
    free(held);
    free(Xv);
    free(Yv);
    return text;
}

/* run_job, phase 3 (final): the final status, weights and remaining history in one store
 * transaction, retried for a while when the disk is full or the store busy. */
static void run_write_final(run *R)
{
    jobs *j = R->w->j;
    live *l = R->lv;
    store_job *job = R->job;
    store_error se = {0};
    /* Final weights: the trainer's (best ones under early stopping) when it succeeded,
     * else those of the last completed epoch. */
    const double *theta = NULL;
    if (R->final == JOB_SUCCEEDED && R->t)
        theta = bp_trainer_theta(R->t);
    else if (l->has_theta)
        theta = l->theta;
    store_history h;
    history_slice(l, R->ckpt_epoch, (int64_t)l->n_hist, &h);
    store_progress p = l->progress;
    if (p.epochs == 0)
        p.epochs = R->cfg.epochs;
    /* The weights stored are those the worker holds: the epoch they are from, and why the job
     * ended (succeeded: the trainer's reason, already in the progress). */
    p.best_epoch = l->has_theta ? l->theta_epoch : 0;
    p.best_cost = l->theta_cost;
    p.best_validation_cost = l->theta_vcost;
    if (R->final != JOB_SUCCEEDED)
        snprintf(p.stop_reason, sizeof p.stop_reason, "%s",
                 R->final == JOB_CANCELLED ? "cancelled" : R->diverged ? "diverged" : "error");
    char *metrics = R->final == JOB_SUCCEEDED ? heldout_metrics(R, theta) : NULL;
    if (metrics && store_job_set_metrics(j->st, job->id, R->lease, metrics, &se) < 0)
        log_event(LOG_WARN, "job", "id=%s error=\"held-out metrics not stored: code %d\"",
                  job->id, se.code);
    free(metrics);
    int rc = -1;
    for (int attempt = 0; attempt < 30 && rc < 0; attempt++) {
        rc = store_job_finish(j->st, job->id, R->lease, R->final,
                              R->error[0] ? R->error : NULL, &h, &p, theta,
                              theta ? R->n_params : 0, &se);
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
    log_transition(job->id, job_status_name(R->final), p.epoch, R->error);
}

/* run_job, phase 3: how the job leaves this worker — abandoned (lease lost: write nothing),
 * released (shutdown: last checkpoint, back to the queue) or finished. */
static void run_end(run *R)
{
    store_job *job = R->job;
    store_error se = {0};
    if (R->abandon) {
        log_event(LOG_WARN, "job", "id=%s status=abandoned error=\"lease lost to another worker\"",
                  job->id);
    } else if (R->release) {
        write_checkpoint(R);
        if (store_job_release(R->w->j->st, job->id, R->lease, &se) < 0)
            log_event(LOG_WARN, "job", "id=%s error=\"release failed: code %d\"", job->id, se.code);
        log_transition(job->id, "queued", R->ckpt_epoch, NULL);
    } else {
        run_write_final(R);
    }
}

/* run_job, phase 4: unlist the live entry (its final state is in the store by now), tell the
 * listener, and free everything the run held. */
static void run_unregister(run *R)
{
    jobs *j = R->w->j;
    live *l = R->lv;
    pthread_mutex_lock(&j->mu);
    for (live **pp = &j->live; *pp; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    pthread_cond_broadcast(&j->gone_cond);
    pthread_mutex_unlock(&j->mu);
    jobs_changed(j, l->id);
    jobs_live_free(l);
    bp_trainer_free(R->t);
    free(R->img);
    free(R->X);
    free(R->Y);
    free(R->labels);
    free(R->targets);
    free(R->theta0);
    api_job_extras_clear(&R->extras);
}

/* One claimed job, start to end: register → prepare → train → end → unregister. */
static void run_job(worker *w, store_job *job)
{
    run R;
    memset(&R, 0, sizeof R);
    R.w = w;
    R.job = job;
    R.img_epoch = -1;
    R.final = JOB_FAILED;
    if (job->lease_token > 0)
        snprintf(R.lease, sizeof R.lease, "%s#%lld", w->worker_id, (long long)job->lease_token);
    else
        snprintf(R.lease, sizeof R.lease, "%s", w->worker_id);
    R.lv = run_register(w, job, R.lease);
    if (!R.lv) {
        store_error se = {0};
        store_job_release(w->j->st, job->id, R.lease, &se);
        return;
    }
    if (prepare(&R) == 0)
        run_train(&R);
    run_end(&R);
    run_unregister(&R);
}

void *jobs_worker_main(void *arg)
{
    worker *w = arg;
    jobs *j = w->j;
    /* Training is batch work: nice 19 for this thread (CFS weight 15 against 1024 for nice 0),
     * so HTTP threads win the CPU when they compete with it and requests stay fast while every
     * core trains. (Not SCHED_IDLE: it would let any other busy process starve jobs and their
     * leases.) */
    setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
    /* The pool's threads are made here, so they inherit the nice value. */
    int threads = j->set.job_threads > 0 ? j->set.job_threads : j->set.cores;
    if (threads > 1) {
        bp_error be = {{0}};
        if (!(w->pool = bp_pool_new(threads, &be)))
            log_event(LOG_WARN, "worker", "worker=%d error=\"%s: jobs train on one thread\"",
                      w->n, be.msg);
    }
    for (;;) {
        pthread_mutex_lock(&j->mu);
        uint64_t seq = j->notify_seq;
        pthread_mutex_unlock(&j->mu);
        if (atomic_load(&j->stopping))
            break;
        store_job job;
        memset(&job, 0, sizeof job);
        store_error se = {0};
        int rc = store_job_claim(j->st, w->worker_id, LEASE_MS, &job, &se);
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
    bp_pool_free(w->pool);
    w->pool = NULL;
    return NULL;
}
