/* train.c — the trainer's life cycle (bp.h): configuration and its ranges, the validation
 * split, bp_trainer_new / _free, and bp_trainer_epoch as three named steps: step (the
 * optimizer's updates over the training rows, optim.c), stop (divergence, early stopping,
 * convergence, the last epoch) and report (progress). The checkpoint image is checkpoint.c.
 *
 * Everything a trainer needs is allocated in bp_trainer_new; an epoch allocates nothing.
 * Randomness comes from three streams derived from the seed (weights, validation split,
 * per-epoch shuffles), never from timing: same seed, spec and data give bit-identical weights,
 * and a checkpoint taken between epochs resumes to the very same bits.
 *
 * Epoch outcomes beyond the header's: DONE early when a full-batch step can no longer move Θ
 * (BP_STOP_CONVERGED). When early stopping restores the best Θ, that epoch's progress still
 * describes the epoch that ran (the cost history stays true) and its best_* fields the restored
 * one; later calls return DONE and report on the restored weights. After FAILED every call fails
 * again; after CANCELLED the trainer may go on, but cannot be checkpointed until a checkpoint is
 * loaded. Progress costs: J with λ/(2 m_train) on both training and validation rows, so the two
 * are comparable; the training rows' accuracy comes from the pass that gives their cost (no
 * pass of its own); samples/s counts the whole epoch call, evaluation included. J(Θ₀), the
 * divergence reference, comes free with the first full-batch gradient; in mini-batch mode it
 * costs one forward pass over the training rows at the first epoch's start.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif
#include "core/train_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Distinct PRNG streams from one seed (xor, not add: splitmix64 seeds that differ by its
 * increment would give shifted copies of the same stream). */
#define STREAM_SPLIT 0x73706c6974ULL      /* "split" */
#define STREAM_SHUFFLE 0x73687566666cULL  /* "shuffl" */

const char *bp_optimizer_name(bp_optimizer o)
{
    static const char *const names[] = {"gd", "sgd", "momentum", "adam", "lbfgs"};
    return (unsigned)o < sizeof names / sizeof *names ? names[o] : "unknown";
}

void bp_train_config_default(bp_train_config *c)
{
    memset(c, 0, sizeof *c);
    c->optimizer = BP_OPT_GD;
    c->learning_rate = 1.0;
    c->lambda = 1.0;
    c->epochs = 400;
    c->batch_size = 0;
    c->seed = 42;
    c->validation_split = 0.0;
    c->early_stopping_patience = 0;
    c->init_epsilon = 0.0;
    c->momentum = 0.9;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->adam_eps = 1e-8;
    c->lbfgs_memory = 10;
}

/* Ranges of the config's fields. Messages name each field as the JSON request does
 * (adam_eps is "adam_epsilon"); callers put their own path in front ("training."). */
int bp_train_config_validate(const bp_train_config *c, bp_error *err)
{
    const char *bad = NULL;
    if ((int)c->optimizer < (int)BP_OPT_GD || (int)c->optimizer > (int)BP_OPT_LBFGS)
        bad = "optimizer: must be one of gd, sgd, momentum, adam, lbfgs";
    else if (!isfinite(c->learning_rate) || c->learning_rate <= 0)
        bad = "learning_rate: must be a finite number > 0";
    else if (!isfinite(c->lambda) || c->lambda < 0)
        bad = "lambda: must be a finite number >= 0";
    else if (c->epochs < 1 || c->epochs > BP_MAX_EPOCHS)
        bad = "epochs: must be an integer in 1.." CORE_STR(BP_MAX_EPOCHS);
    else if (c->batch_size < 0 || c->batch_size > 1000000000)
        bad = "batch_size: must be an integer in 0..1000000000 (0 = full batch)";
    else if (!isfinite(c->validation_split) || c->validation_split < 0 ||
             c->validation_split >= 1)
        bad = "validation_split: must be in [0, 1)";
    else if (c->early_stopping_patience < 0 || c->early_stopping_patience > BP_MAX_EPOCHS)
        bad = "early_stopping_patience: must be an integer in 0.." CORE_STR(BP_MAX_EPOCHS);
    else if (c->early_stopping_patience > 0 && !(c->validation_split > 0))
        bad = "early_stopping_patience: needs validation_split > 0";
    else if (!isfinite(c->init_epsilon) || c->init_epsilon < 0 || c->init_epsilon > 1e6)
        bad = "init_epsilon: must be a number in (0, 1e6], or 0 or null (per-layer default)";
    else if (!isfinite(c->momentum) || c->momentum < 0 || c->momentum >= 1)
        bad = "momentum: must be in [0, 1)";
    else if (!isfinite(c->beta1) || c->beta1 < 0 || c->beta1 >= 1)
        bad = "beta1: must be in [0, 1)";
    else if (!isfinite(c->beta2) || c->beta2 < 0 || c->beta2 >= 1)
        bad = "beta2: must be in [0, 1)";
    else if (!isfinite(c->adam_eps) || c->adam_eps <= 0)
        bad = "adam_epsilon: must be a finite number > 0";
    else if (c->lbfgs_memory < 1 || c->lbfgs_memory > BP_MAX_LBFGS_MEMORY)
        bad = "lbfgs_memory: must be an integer in 1.." CORE_STR(BP_MAX_LBFGS_MEMORY);
    else if (c->standardize != 0 && c->standardize != 1)
        bad = "standardize: must be true or false";
    else if (!bp_precision_name(c->precision))
        bad = "precision: must be one of float64, float32";
    if (bad) {
        core_set_error(err, "%s", bad);
        return -1;
    }
    if (c->batch_size > 0 && (c->optimizer == BP_OPT_GD || c->optimizer == BP_OPT_LBFGS)) {
        core_set_error(err, "batch_size: %s is full-batch: use 0, or sgd, momentum or adam",
                    bp_optimizer_name(c->optimizer));
        return -1;
    }
    return 0;
}

int bp_split_sizes(int64_t m, double split, int64_t *n_train, int64_t *n_val, bp_error *err)
{
    int64_t v = (int64_t)floor(split * (double)m);
    *n_val = v;
    *n_train = m - v;
    if (split > 0 && v < 1) {
        core_set_error(err, "validation_split: %g of %lld rows leaves no validation rows", split,
                    (long long)m);
        return -1;
    }
    if (m - v < 1) {
        core_set_error(err, "validation_split: %g of %lld rows leaves no training rows", split,
                    (long long)m);
        return -1;
    }
    return 0;
}

const char *bp_stop_reason_name(bp_stop_reason r)
{
    static const char *const names[] = {NULL, "completed", "early_stopping", "converged",
                                        "diverged"};
    return (unsigned)r < sizeof names / sizeof *names ? names[r] : NULL;
}

/* ---- allocation helpers: counts checked in 64-bit before multiplying ---- */

void *train_alloc(int64_t count, size_t elem)
{
    if (count <= 0)
        count = 1;
    if ((uint64_t)count > SIZE_MAX / elem)
        return NULL;
    return malloc((size_t)count * elem);
}

void *train_zalloc(int64_t count, size_t elem)
{
    if (count <= 0)
        count = 1;
    if ((uint64_t)count > SIZE_MAX / elem)
        return NULL;
    return calloc((size_t)count, elem);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Uniform integer in [0, n) without modulo bias (n >= 1). */
static uint64_t rng_below(bp_rng *rng, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do {
        r = bp_rng_next(rng);
    } while (r >= limit);
    return r % n;
}

/* perm: n, written: a Fisher–Yates shuffle of 0..n-1. */
static void shuffle_identity(int64_t *perm, int64_t n, bp_rng *rng)
{
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rng_below(rng, (uint64_t)i + 1);
        int64_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}

/* dst: k × cols, src: any × cols, elements of es bytes; copies rows idx[0..k). */
static void gather_rows_es(void *dst, const void *src, const int64_t *idx, int64_t k,
                           int64_t cols, size_t es)
{
    size_t bytes = (size_t)cols * es;
    for (int64_t i = 0; i < k; i++)
        memcpy((char *)dst + (size_t)i * bytes, (const char *)src + (size_t)idx[i] * bytes,
               bytes);
}

static void gather_rows(double *dst, const double *src, const int64_t *idx, int64_t k,
                        int64_t cols)
{
    gather_rows_es(dst, src, idx, k, cols, sizeof(double));
}

/* A mini-batch gather split over the pool: task k copies rows k·GATHER_ROWS .. of X and Y. */
typedef struct {
    bp_trainer *t;
    const int64_t *idx;
    int64_t n;
} gather_ctx;

#define GATHER_ROWS 32

static void gather_task(void *arg, int64_t k, int thread)
{
    (void)thread;
    gather_ctx *g = arg;
    int64_t r0 = k * GATHER_ROWS, n = g->n - r0 < GATHER_ROWS ? g->n - r0 : GATHER_ROWS;
    bp_trainer *t = g->t;
    gather_rows_es((char *)t->Xb + (size_t)(r0 * t->n_in) * t->es, t->x_tr, g->idx + r0, n,
                   t->n_in, t->es);
    gather_rows_es((char *)t->Yb + (size_t)(r0 * t->n_out) * t->es, t->y_tr, g->idx + r0, n,
                   t->n_out, t->es);
}

void bp_trainer_free(bp_trainer *t)
{
    if (!t)
        return;
    bp_work_free(t->work);
    bp_work_free(t->eval_work);
    free(t->own_X);
    free(t->own_Y);
    free(t->own_L);
    free(t->own32);
    free(t->theta);
    free(t->grad);
    free(t->best_theta);
    optim_free(t);
    free(t->perm);
    free(t->Xb);
    free(t->Yb);
    free(t);
}

int bp_split_mark(unsigned char *is_val, int64_t m, const bp_train_config *cfg, bp_error *err)
{
    int64_t n_train, n_val;
    memset(is_val, 0, (size_t)m);
    if (bp_split_sizes(m, cfg->validation_split, &n_train, &n_val, err) != 0)
        return -1;
    if (n_val == 0)
        return 0;
    int64_t *perm = train_alloc(m, sizeof *perm);
    if (!perm) {
        core_set_error(err, "out of memory splitting %lld rows", (long long)m);
        return -1;
    }
    bp_rng srng;
    bp_rng_seed(&srng, cfg->seed ^ STREAM_SPLIT);
    shuffle_identity(perm, m, &srng);
    /* The first n_val of the permutation are held out. */
    for (int64_t i = 0; i < n_val; i++)
        is_val[perm[i]] = 1;
    free(perm);
    return 0;
}

/* Splits the dataset: m_val rows chosen by the seed's split stream go to validation, the rest
 * to training, each gathered into trainer-owned contiguous copies. */
static int split_rows(bp_trainer *t, const bp_data *d, bp_error *err)
{
    int rc = -1;
    int64_t m = d->m;
    int64_t *perm = train_alloc(m, sizeof *perm);
    if (!perm)
        goto oom;
    /* Both parts are listed in dataset order (a mark per row, not a sort): the gathers read
     * memory forwards. */
    int64_t *val = perm, *tr = perm + t->m_val;
    {
        unsigned char *is_val = train_zalloc(m, 1);
        if (!is_val || bp_split_mark(is_val, m, &t->cfg, err) != 0) {
            free(is_val);
            goto oom;
        }
        int64_t iv = 0, it = 0;
        for (int64_t r = 0; r < m; r++) {
            if (is_val[r])
                val[iv++] = r;
            else
                tr[it++] = r;
        }
        free(is_val);
    }
    t->own_X = train_alloc(m * t->n_in, sizeof(double));
    t->own_Y = train_alloc(m * t->n_out, sizeof(double));
    if (!t->own_X || !t->own_Y)
        goto oom;
    gather_rows(t->own_X, d->X, tr, t->m_train, t->n_in);
    gather_rows(t->own_X + t->m_train * t->n_in, d->X, val, t->m_val, t->n_in);
    gather_rows(t->own_Y, d->Y, tr, t->m_train, t->n_out);
    gather_rows(t->own_Y + t->m_train * t->n_out, d->Y, val, t->m_val, t->n_out);
    t->Xtr = t->own_X;
    t->Ytr = t->own_Y;
    t->Xva = t->own_X + t->m_train * t->n_in;
    t->Yva = t->own_Y + t->m_train * t->n_out;
    if (d->labels) {
        t->own_L = train_alloc(m, sizeof(int32_t));
        if (!t->own_L)
            goto oom;
        for (int64_t i = 0; i < t->m_train; i++)
            t->own_L[i] = d->labels[tr[i]];
        for (int64_t i = 0; i < t->m_val; i++)
            t->own_L[t->m_train + i] = d->labels[val[i]];
        t->Ltr = t->own_L;
        t->Lva = t->own_L + t->m_train;
    }
    rc = 0;
    goto cleanup;
oom:
    core_set_error(err, "out of memory splitting %lld rows into training and validation sets",
                (long long)m);
cleanup:
    free(perm);
    return rc;
}

static int check_data(const bp_spec *spec, const bp_data *d, bp_error *err)
{
    int L = spec->n_layers;
    if (!d || !d->X || !d->Y || d->m < 1) {
        core_set_error(err, "dataset: has no rows");
        return -1;
    }
    if (d->n_in != spec->sizes[0]) {
        core_set_error(err, "dataset: has %lld features but layers[0] is %d", (long long)d->n_in,
                    spec->sizes[0]);
        return -1;
    }
    if (d->n_out != spec->sizes[L - 1]) {
        core_set_error(err, "dataset: has %lld outputs but layers[%d] is %d", (long long)d->n_out,
                    L - 1, spec->sizes[L - 1]);
        return -1;
    }
    if (d->m > INT64_MAX / 65536) {
        core_set_error(err, "dataset: too many rows (%lld)", (long long)d->m);
        return -1;
    }
    int64_t bad;
    if (bp_check_finite(d->X, d->m * d->n_in, &bad) != 0) {
        core_set_error(err, "X[%lld][%lld]: must be a finite number", (long long)(bad / d->n_in),
                    (long long)(bad % d->n_in));
        return -1;
    }
    if (bp_check_finite(d->Y, d->m * d->n_out, &bad) != 0) {
        core_set_error(err, "Y[%lld][%lld]: must be a finite number", (long long)(bad / d->n_out),
                    (long long)(bad % d->n_out));
        return -1;
    }
    return 0;
}

bp_trainer *bp_trainer_new(const bp_spec *spec, const bp_train_config *cfg, const bp_data *data,
                           const double *theta0, bp_error *err)
{
    bp_trainer *t = NULL;
    if (bp_spec_validate(spec, err) != 0 || bp_train_config_validate(cfg, err) != 0)
        goto fail;
    if (check_data(spec, data, err) != 0)
        goto fail;
    t = calloc(1, sizeof *t);
    if (!t)
        goto oom;
    t->spec = *spec;
    t->cfg = *cfg;
    t->P = bp_param_count(spec);
    t->n_in = data->n_in;
    t->n_out = data->n_out;
    t->m_all = data->m;
    int64_t P = t->P;

    /* Rows: the split's sizes, then the rows themselves. */
    if (bp_split_sizes(data->m, cfg->validation_split, &t->m_train, &t->m_val, err) != 0)
        goto fail;
    if (t->m_val > 0) {
        if (split_rows(t, data, err) != 0)
            goto fail;
    } else {
        t->Xtr = data->X;
        t->Ytr = data->Y;
        t->Ltr = data->labels;
    }

    if (train_pass_rows(t, err) != 0)
        goto fail;

    /* Batch geometry: a batch covering the training set is full-batch mode (no shuffle). */
    bp_optimizer opt = cfg->optimizer;
    t->batch = t->m_train;
    if (opt != BP_OPT_GD && opt != BP_OPT_LBFGS && cfg->batch_size > 0 &&
        cfg->batch_size < t->m_train)
        t->batch = cfg->batch_size;
    t->full_batch = t->batch == t->m_train;

    int64_t m_eval = t->m_train > t->m_val ? t->m_train : t->m_val;
    t->work = bp_work_new_precision(spec, t->batch, cfg->precision, err);
    if (!t->work)
        goto fail;
    if (t->batch < bp_chunk_rows(spec) && t->batch < m_eval) {
        t->eval_work = core_work_new(spec, m_eval, 0, cfg->precision, err);
        if (!t->eval_work)
            goto fail;
    }

    t->theta = train_alloc(P, sizeof(double));
    t->grad = train_zalloc(P, sizeof(double));
    if (!t->theta || !t->grad)
        goto oom;
    if (cfg->early_stopping_patience > 0) {
        t->best_theta = train_alloc(P, sizeof(double));
        if (!t->best_theta)
            goto oom;
    }
    if (optim_alloc(t, err) != 0)
        goto fail;
    if (!t->full_batch) {
        t->perm = train_alloc(t->m_train, sizeof(int64_t));
        t->Xb = train_alloc(t->batch * t->n_in, t->es);
        t->Yb = train_alloc(t->batch * t->n_out, t->es);
        if (!t->perm || !t->Xb || !t->Yb)
            goto oom;
    }

    /* Weights: a warm start (checked) or the seed's weight stream. */
    if (theta0) {
        int64_t bad;
        if (bp_check_finite(theta0, P, &bad) != 0) {
            core_set_error(err, "theta: parameter %lld is not a finite number", (long long)bad);
            goto fail;
        }
        memcpy(t->theta, theta0, (size_t)P * sizeof(double));
    } else {
        bp_rng wrng;
        bp_rng_seed(&wrng, cfg->seed);
        bp_init_weights(t->theta, spec, cfg->init_epsilon, &wrng);
    }
    bp_rng_seed(&t->rng, cfg->seed ^ STREAM_SHUFFLE);
    t->best_cost = INFINITY;
    t->init_cost = NAN;
    t->best_train_cost = NAN;
    return t;

oom:
    core_set_error(err, "out of memory allocating the trainer (%lld parameters)",
                (long long)(t ? t->P : 0));
fail:
    bp_trainer_free(t);
    return NULL;
}

int bp_trainer_set_pool(bp_trainer *t, bp_pool *pool, bp_error *err)
{
    if (bp_work_set_pool(t->work, pool, err) != 0)
        return -1;
    return t->eval_work ? bp_work_set_pool(t->eval_work, pool, err) : 0;
}

const double *bp_trainer_theta(const bp_trainer *t)
{
    return t->theta;
}

int64_t bp_trainer_epochs_done(const bp_trainer *t)
{
    return t->epoch;
}

int train_cancelled(const volatile int *cancel)
{
    return cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED);
}

double train_full_eval(bp_trainer *t, double *grad, const double *theta, int64_t *correct)
{
    memset(grad, 0, (size_t)t->P * sizeof(double));
    int mode = OUT_COST | OUT_DELTA | (t->Ltr ? OUT_ACT : 0);
    if (correct)
        *correct = 0;
    return core_pass(grad, correct, t->work, t->x_tr, t->y_tr, t->Ltr, theta, t->m_train,
                     t->cfg.lambda, t->m_train, mode);
}

/* The workspace of the end-of-epoch passes. */
static bp_work *eval_work(const bp_trainer *t)
{
    return t->eval_work ? t->eval_work : t->work;
}

/* J and the rows right on the training rows at theta, in one pass. */
static double eval_train(bp_trainer *t, int64_t *correct)
{
    if (correct)
        *correct = 0;
    return core_pass(NULL, correct, eval_work(t), t->x_tr, t->y_tr, t->Ltr, t->theta,
                     t->m_train, t->cfg.lambda, t->m_train, OUT_COST | (t->Ltr ? OUT_ACT : 0));
}

/* ---- an epoch: step, stop, report ---- */

/* What the end of an epoch measured at theta. */
typedef struct {
    double cost, vcost;         /* J on training / held-out rows (vcost NaN without) */
    int64_t correct, vcorrect;  /* rows predicted right there */
} epoch_eval;

/* The optimizer's updates over the training rows; afterwards t->cost and t->correct describe
 * the new theta. 1 moved, 0 converged (theta unchanged), -1 cancelled. */
static int epoch_step(bp_trainer *t, const volatile int *cancel)
{
    if (t->full_batch) {
        if (train_cancelled(cancel))
            return -1;
        if (!t->have_grad) {
            t->cost = train_full_eval(t, t->grad, t->theta, &t->correct);
            t->have_grad = 1;
        }
        if (isnan(t->init_cost))
            t->init_cost = t->cost; /* J(Θ₀) */
        return optim_full_step(t, cancel);
    }
    if (isnan(t->init_cost))
        t->init_cost = core_pass(NULL, NULL, eval_work(t), t->x_tr, t->y_tr, NULL, t->theta,
                                 t->m_train, t->cfg.lambda, t->m_train, OUT_COST);
    shuffle_identity(t->perm, t->m_train, &t->rng);
    for (int64_t b0 = 0; b0 < t->m_train; b0 += t->batch) {
        if (train_cancelled(cancel))
            return -1;
        int64_t nb = t->m_train - b0 < t->batch ? t->m_train - b0 : t->batch;
        gather_ctx g = {t, t->perm + b0, nb};
        core_parallel_for(t->work->pool, (nb + GATHER_ROWS - 1) / GATHER_ROWS, gather_task, &g);
        memset(t->grad, 0, (size_t)t->P * sizeof(double));
        core_pass(t->grad, NULL, t->work, t->Xb, t->Yb, NULL, t->theta, nb, 0.0, t->m_train,
                  OUT_DELTA);
        optim_batch_step(t, t->grad, t->cfg.lambda / (double)t->m_train);
    }
    t->cost = eval_train(t, &t->correct);
    return 1;
}

/* The held-out rows at theta into ev (the training side is the step's). */
static void eval_validation(bp_trainer *t, epoch_eval *ev)
{
    ev->vcost = NAN;
    ev->vcorrect = 0;
    if (t->m_val > 0)
        ev->vcost = core_pass(NULL, &ev->vcorrect, eval_work(t), t->x_va, t->y_va, t->Lva,
                              t->theta, t->m_val, t->cfg.lambda, t->m_train,
                              OUT_COST | (t->Lva ? OUT_ACT : 0));
}

/* Marks the run diverged (BP_STOP_DIVERGED) if `what`'s J is past the rule; 1 if it is. */
static int diverged(bp_trainer *t, const char *what, double J, bp_error *err)
{
    double limit = BP_DIVERGENCE_FACTOR * fmax(t->init_cost, 1.0);
    if (isfinite(J) && !(J > limit))
        return 0;
    if (isfinite(J))
        core_set_error(err, "diverged at epoch %lld: %s %.3g > 1e6 × max(initial cost %.3g, 1); "
                    "lower the learning rate", (long long)t->epoch, what, J, t->init_cost);
    else
        core_set_error(err, "diverged at epoch %lld: %s became %s (initial cost %.3g); lower the "
                    "learning rate", (long long)t->epoch, what, isnan(J) ? "NaN" : "infinite",
                    t->init_cost);
    t->stop = BP_STOP_DIVERGED;
    t->dirty = t->failed = t->finished = 1;
    return 1;
}

/* Whether the epoch just run ends training, and why (t->stop): divergence, early stopping
 * (restoring the best weights), convergence, the last epoch. Tracks the epoch of the weights
 * held (best_*). */
static bp_train_status epoch_stop(bp_trainer *t, int moved, const epoch_eval *ev, bp_error *err)
{
    if (diverged(t, "cost", ev->cost, err))
        return BP_TRAIN_FAILED;
    int stop = !moved ? BP_STOP_CONVERGED
                      : t->epoch >= t->cfg.epochs ? BP_STOP_COMPLETED : BP_STOP_NONE;
    if (t->cfg.early_stopping_patience > 0) {
        if (!isfinite(ev->vcost) && diverged(t, "validation cost", ev->vcost, err))
            return BP_TRAIN_FAILED;
        if (ev->vcost < t->best_cost) {
            t->best_cost = ev->vcost;
            t->since_best = 0;
            t->best_epoch = t->epoch;
            t->best_train_cost = ev->cost;
            memcpy(t->best_theta, t->theta, (size_t)t->P * sizeof(double));
        } else {
            t->since_best++;
        }
        if (t->since_best >= t->cfg.early_stopping_patience)
            stop = BP_STOP_EARLY_STOPPING;
        if (stop != BP_STOP_NONE)
            memcpy(t->theta, t->best_theta, (size_t)t->P * sizeof(double));
    } else {
        t->best_epoch = t->epoch;
        t->best_train_cost = ev->cost;
        t->best_cost = ev->vcost;
    }
    if (stop == BP_STOP_NONE)
        return BP_TRAIN_CONTINUE;
    t->stop = stop;
    t->finished = 1;
    return BP_TRAIN_DONE;
}

static double fraction(int64_t right, int64_t of, const int32_t *labels)
{
    return labels && of > 0 ? (double)right / (double)of : NAN;
}

/* Fills *progress for an epoch call that started at `start` and ended with `status`. */
static void epoch_report(const bp_trainer *t, bp_train_status status, const epoch_eval *ev,
                         double start, bp_progress *progress)
{
    if (!progress)
        return;
    double elapsed = now_seconds() - start;
    int held = status == BP_TRAIN_CONTINUE || status == BP_TRAIN_DONE;
    progress->epoch = t->epoch;
    progress->epochs = t->cfg.epochs;
    progress->cost = ev->cost;
    progress->validation_cost = ev->vcost;
    progress->accuracy = fraction(ev->correct, t->m_train, t->Ltr);
    progress->validation_accuracy = fraction(ev->vcorrect, t->m_val, t->Lva);
    progress->samples_per_second =
        status == BP_TRAIN_CANCELLED ? 0
        : elapsed > 0                ? (double)t->m_train / elapsed
                                     : (double)t->m_train / 1e-9;
    /* Running: the weights are the epoch's own (early stopping's best so far is kept apart) */
    int own = status == BP_TRAIN_CONTINUE;
    progress->best_epoch = own ? t->epoch : held ? t->best_epoch : 0;
    progress->best_cost = own ? ev->cost : held ? t->best_train_cost : NAN;
    progress->best_validation_cost = own ? ev->vcost : held && t->m_val > 0 ? t->best_cost : NAN;
    progress->stop = status == BP_TRAIN_DONE || status == BP_TRAIN_FAILED
                         ? (bp_stop_reason)t->stop
                         : BP_STOP_NONE;
}

bp_train_status bp_trainer_epoch(bp_trainer *t, bp_progress *progress, const volatile int *cancel,
                                 bp_error *err)
{
    double start = now_seconds();
    epoch_eval ev = {NAN, NAN, 0, 0};
    bp_train_status status;
    if (t->failed) {
        core_set_error(err, "training already failed at epoch %lld", (long long)t->epoch);
        status = BP_TRAIN_FAILED;
    } else if (t->finished) {
        /* Nothing to train: report on the weights in place (the best ones, with early
         * stopping). */
        ev.cost = eval_train(t, &ev.correct);
        eval_validation(t, &ev);
        status = BP_TRAIN_DONE;
    } else {
        int moved = epoch_step(t, cancel);
        if (moved < 0) {
            t->dirty = 1;
            core_set_error(err, "cancelled during epoch %lld", (long long)t->epoch + 1);
            status = BP_TRAIN_CANCELLED;
        } else {
            t->epoch++;
            ev.cost = t->cost;
            ev.correct = t->correct;
            eval_validation(t, &ev);
            status = epoch_stop(t, moved, &ev, err);
        }
    }
    epoch_report(t, status, &ev, start, progress);
    return status;
}
