/* train.c — the training loop of backpropd's core: configuration, the five optimizers
 * (gd, sgd, momentum, adam, lbfgs), validation split and early stopping, and bit-exact
 * checkpoints.
 *
 * Every optimizer descends the same J(Θ): a step on a batch uses the batch-average data term
 * plus (λ/m_train)·Θ, i.e. bp_cost_grad(..., lambda, m_train), so λ means the same at any batch
 * size. Everything a trainer needs is allocated in bp_trainer_new; an epoch allocates nothing.
 * Randomness comes from three streams derived from the seed (weights, validation split, per-epoch
 * shuffles), never from timing: same seed, spec and data give bit-identical weights, and a
 * checkpoint taken between epochs resumes to the very same bits.
 *
 * Full-batch modes (gd, lbfgs, and sgd/momentum/adam when the batch covers the training set)
 * keep the gradient and cost at the current Θ: a step uses it, then J and ∇J are evaluated once
 * at the new Θ, which is both the epoch's reported cost and the next step's gradient.
 *
 * Epoch outcomes beyond the header's: lbfgs returns DONE early when no step along steepest
 * descent lowers J (a stationary point to machine precision). When early stopping restores the
 * best Θ, that epoch's progress still describes the epoch that ran (the cost history stays
 * true); later calls return DONE and report on the restored weights. After FAILED every call
 * fails again; after CANCELLED the trainer may go on, but cannot be checkpointed until a
 * checkpoint is loaded. Progress costs: J with λ/(2 m_train) on both training and validation
 * rows, so the two are comparable; samples/s counts the whole epoch call, evaluation included.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif
#include "core/bp.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Distinct PRNG streams from one seed (xor, not add: splitmix64 seeds that differ by its
 * increment would give shifted copies of the same stream). */
#define STREAM_SPLIT 0x73706c6974ULL      /* "split" */
#define STREAM_SHUFFLE 0x73687566666cULL  /* "shuffl" */

#define LBFGS_C1 1e-4         /* Armijo sufficient-decrease constant */
#define LBFGS_MIN_SY 1e-10    /* update pairs with sᵀy at or below this are skipped */
#define LBFGS_TRIES 20        /* step halvings along the quasi-Newton direction */
#define LBFGS_SD_TRIES 40     /* step halvings along steepest descent after a reset */
#define LBFGS_MAX_BYTES (4LL << 30) /* s and y history cap */

#define CKPT_MAGIC "BPCK"
#define CKPT_VERSION 1u

struct bp_trainer {
    bp_spec spec;
    bp_train_config cfg;
    int64_t P;                  /* bp_param_count */
    int64_t n_in, n_out;
    int64_t m_all;              /* rows in the borrowed dataset */

    /* Training and validation rows: borrowed from the dataset when there is no split, else
     * trainer-owned contiguous copies (own_*). */
    const double *Xtr, *Ytr;    /* m_train × n_in, m_train × n_out */
    const int32_t *Ltr;         /* m_train or NULL */
    int64_t m_train;
    const double *Xva, *Yva;    /* m_val × n_in, m_val × n_out */
    const int32_t *Lva;         /* m_val or NULL */
    int64_t m_val;
    double *own_X, *own_Y;      /* (m_train + m_val) rows: training rows first */
    int32_t *own_L;

    int64_t batch;              /* rows per step; == m_train in full-batch mode */
    int full_batch;
    bp_work *work;              /* sized for a step */
    bp_work *eval_work;         /* sized for the end-of-epoch passes, or NULL: use work */

    double *theta;              /* P */
    double *grad;               /* P: gradient at theta (full batch) or of the last batch */
    double *best_theta;         /* P when early stopping is on */
    double *vel;                /* P: momentum velocity, adam first moment */
    double *sq;                 /* P: adam second moment */
    double *lb_s, *lb_y;        /* lbfgs_memory × P */
    double *lb_rho, *lb_alpha;  /* lbfgs_memory */
    double *lb_dir, *lb_theta, *lb_grad; /* P each: direction, trial point, its gradient */

    int64_t *perm;              /* m_train: this epoch's row order (mini-batch mode) */
    double *Xb, *Yb;            /* batch × n_in, batch × n_out: gathered mini-batch */

    /* Resumable state (all of it goes into the checkpoint). */
    bp_rng rng;                 /* shuffle stream */
    int64_t epoch;              /* epochs completed */
    int finished;               /* DONE or FAILED returned: further epochs do nothing */
    int failed;                 /* FAILED returned: further epochs fail again */
    int have_grad;              /* full batch: grad/cost hold ∇J and J at theta */
    double cost;                /* J at theta (full batch) */
    int64_t adam_t;
    int64_t lb_pos, lb_count;   /* next slot, filled slots (always slots 0..count-1) */
    double best_cost;           /* best validation cost so far (+inf before the first) */
    int64_t since_best;         /* epochs without improvement */

    int dirty;                  /* cancelled mid-epoch: no checkpoint until reloaded */
};

static void set_err(bp_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(bp_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

const char *bp_optimizer_name(bp_optimizer o)
{
    switch (o) {
    case BP_OPT_GD: return "gd";
    case BP_OPT_SGD: return "sgd";
    case BP_OPT_MOMENTUM: return "momentum";
    case BP_OPT_ADAM: return "adam";
    case BP_OPT_LBFGS: return "lbfgs";
    }
    return "unknown";
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

int bp_train_config_validate(const bp_train_config *c, bp_error *err)
{
    if ((int)c->optimizer < (int)BP_OPT_GD || (int)c->optimizer > (int)BP_OPT_LBFGS) {
        set_err(err, "training.optimizer: must be one of gd, sgd, momentum, adam, lbfgs");
        return -1;
    }
    if (!isfinite(c->learning_rate) || c->learning_rate <= 0) {
        set_err(err, "training.learning_rate: must be a finite number > 0");
        return -1;
    }
    if (!isfinite(c->lambda) || c->lambda < 0) {
        set_err(err, "training.lambda: must be a finite number >= 0");
        return -1;
    }
    if (c->epochs < 1 || c->epochs > 1000000) {
        set_err(err, "training.epochs: must be an integer in 1..1000000");
        return -1;
    }
    if (c->batch_size < 0 || c->batch_size > 1000000000) {
        set_err(err, "training.batch_size: must be an integer in 0..1000000000 (0 = full batch)");
        return -1;
    }
    if (c->batch_size > 0 && (c->optimizer == BP_OPT_GD || c->optimizer == BP_OPT_LBFGS)) {
        set_err(err, "training.batch_size: %s is full-batch: use 0, or sgd, momentum or adam",
                bp_optimizer_name(c->optimizer));
        return -1;
    }
    if (!isfinite(c->validation_split) || c->validation_split < 0 || c->validation_split >= 1) {
        set_err(err, "training.validation_split: must be in [0, 1)");
        return -1;
    }
    if (c->early_stopping_patience < 0 || c->early_stopping_patience > 1000000) {
        set_err(err, "training.early_stopping_patience: must be an integer in 0..1000000");
        return -1;
    }
    if (c->early_stopping_patience > 0 && !(c->validation_split > 0)) {
        set_err(err, "training.early_stopping_patience: needs validation_split > 0");
        return -1;
    }
    if (!isfinite(c->init_epsilon) || c->init_epsilon > 1e6) {
        set_err(err, "training.init_epsilon: must be a finite number <= 1e6 (or null)");
        return -1;
    }
    if (!isfinite(c->momentum) || c->momentum < 0 || c->momentum >= 1) {
        set_err(err, "training.momentum: must be in [0, 1)");
        return -1;
    }
    if (!isfinite(c->beta1) || c->beta1 < 0 || c->beta1 >= 1) {
        set_err(err, "training.beta1: must be in [0, 1)");
        return -1;
    }
    if (!isfinite(c->beta2) || c->beta2 < 0 || c->beta2 >= 1) {
        set_err(err, "training.beta2: must be in [0, 1)");
        return -1;
    }
    if (!isfinite(c->adam_eps) || c->adam_eps <= 0) {
        set_err(err, "training.adam_eps: must be a finite number > 0");
        return -1;
    }
    if (c->lbfgs_memory < 1 || c->lbfgs_memory > 100) {
        set_err(err, "training.lbfgs_memory: must be an integer in 1..100");
        return -1;
    }
    return 0;
}

/* ---- allocation helpers: counts checked in 64-bit before multiplying ---- */

static void *alloc_array(int64_t count, size_t elem)
{
    if (count <= 0)
        count = 1;
    if ((uint64_t)count > SIZE_MAX / elem)
        return NULL;
    return malloc((size_t)count * elem);
}

static void *zalloc_array(int64_t count, size_t elem)
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

/* dst: k × cols, src: any × cols; copies rows idx[0..k). */
static void gather_rows(double *dst, const double *src, const int64_t *idx, int64_t k,
                        int64_t cols)
{
    size_t bytes = (size_t)cols * sizeof(double);
    for (int64_t i = 0; i < k; i++)
        memcpy(dst + i * cols, src + idx[i] * cols, bytes);
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
    free(t->theta);
    free(t->grad);
    free(t->best_theta);
    free(t->vel);
    free(t->sq);
    free(t->lb_s);
    free(t->lb_y);
    free(t->lb_rho);
    free(t->lb_alpha);
    free(t->lb_dir);
    free(t->lb_theta);
    free(t->lb_grad);
    free(t->perm);
    free(t->Xb);
    free(t->Yb);
    free(t);
}

/* Splits the dataset: m_val rows chosen by the seed's split stream go to validation, the rest
 * to training, each gathered into trainer-owned contiguous copies. */
static int split_rows(bp_trainer *t, const bp_data *d, bp_error *err)
{
    int rc = -1;
    int64_t m = d->m;
    int64_t *perm = alloc_array(m, sizeof *perm);
    if (!perm)
        goto oom;
    bp_rng srng;
    bp_rng_seed(&srng, t->cfg.seed ^ STREAM_SPLIT);
    shuffle_identity(perm, m, &srng);
    /* The first m_val of the permutation are held out. Both parts are then listed in dataset
     * order (a mark per row, not a sort): the gathers read memory forwards. */
    int64_t *val = perm, *tr = perm + t->m_val;
    {
        unsigned char *is_val = zalloc_array(m, 1);
        if (!is_val)
            goto oom;
        for (int64_t i = 0; i < t->m_val; i++)
            is_val[perm[i]] = 1;
        int64_t iv = 0, it = 0;
        for (int64_t r = 0; r < m; r++) {
            if (is_val[r])
                val[iv++] = r;
            else
                tr[it++] = r;
        }
        free(is_val);
    }
    t->own_X = alloc_array(m * t->n_in, sizeof(double));
    t->own_Y = alloc_array(m * t->n_out, sizeof(double));
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
        t->own_L = alloc_array(m, sizeof(int32_t));
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
    set_err(err, "out of memory splitting %lld rows into training and validation sets",
            (long long)m);
cleanup:
    free(perm);
    return rc;
}

static int check_data(const bp_spec *spec, const bp_data *d, bp_error *err)
{
    int L = spec->n_layers;
    if (!d || !d->X || !d->Y || d->m < 1) {
        set_err(err, "dataset: has no rows");
        return -1;
    }
    if (d->n_in != spec->sizes[0]) {
        set_err(err, "dataset: has %lld features but layers[0] is %d", (long long)d->n_in,
                spec->sizes[0]);
        return -1;
    }
    if (d->n_out != spec->sizes[L - 1]) {
        set_err(err, "dataset: has %lld outputs but layers[%d] is %d", (long long)d->n_out, L - 1,
                spec->sizes[L - 1]);
        return -1;
    }
    if (d->m > INT64_MAX / 65536) {
        set_err(err, "dataset: too many rows (%lld)", (long long)d->m);
        return -1;
    }
    int64_t bad;
    if (bp_check_finite(d->X, d->m * d->n_in, &bad) != 0) {
        set_err(err, "X[%lld][%lld]: must be a finite number", (long long)(bad / d->n_in),
                (long long)(bad % d->n_in));
        return -1;
    }
    if (bp_check_finite(d->Y, d->m * d->n_out, &bad) != 0) {
        set_err(err, "Y[%lld][%lld]: must be a finite number", (long long)(bad / d->n_out),
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
    t->m_val = (int64_t)floor(cfg->validation_split * (double)data->m);
    t->m_train = data->m - t->m_val;
    if (cfg->validation_split > 0 && t->m_val < 1) {
        set_err(err, "training.validation_split: %g of %lld rows leaves no validation rows",
                cfg->validation_split, (long long)data->m);
        goto fail;
    }
    if (t->m_train < 1) {
        set_err(err, "training.validation_split: leaves no training rows");
        goto fail;
    }
    if (t->m_val > 0) {
        if (split_rows(t, data, err) != 0)
            goto fail;
    } else {
        t->Xtr = data->X;
        t->Ytr = data->Y;
        t->Ltr = data->labels;
    }

    /* Batch geometry: a batch covering the training set is full-batch mode (no shuffle). */
    bp_optimizer opt = cfg->optimizer;
    t->batch = t->m_train;
    if (opt != BP_OPT_GD && opt != BP_OPT_LBFGS && cfg->batch_size > 0 &&
        cfg->batch_size < t->m_train)
        t->batch = cfg->batch_size;
    t->full_batch = t->batch == t->m_train;

    int64_t m_eval = t->m_train > t->m_val ? t->m_train : t->m_val;
    t->work = bp_work_new(spec, t->batch, err);
    if (!t->work)
        goto fail;
    if (t->batch < bp_chunk_rows(spec) && t->batch < m_eval) {
        t->eval_work = bp_work_new(spec, m_eval, err);
        if (!t->eval_work)
            goto fail;
    }

    t->theta = alloc_array(P, sizeof(double));
    t->grad = zalloc_array(P, sizeof(double));
    if (!t->theta || !t->grad)
        goto oom;
    if (cfg->early_stopping_patience > 0) {
        t->best_theta = alloc_array(P, sizeof(double));
        if (!t->best_theta)
            goto oom;
    }
    if (opt == BP_OPT_MOMENTUM || opt == BP_OPT_ADAM) {
        t->vel = zalloc_array(P, sizeof(double));
        if (!t->vel)
            goto oom;
    }
    if (opt == BP_OPT_ADAM) {
        t->sq = zalloc_array(P, sizeof(double));
        if (!t->sq)
            goto oom;
    }
    if (opt == BP_OPT_LBFGS) {
        int64_t M = cfg->lbfgs_memory;
        if (P > LBFGS_MAX_BYTES / (2 * M * (int64_t)sizeof(double))) {
            set_err(err, "training.lbfgs_memory: %lld pairs of %lld parameters need more than "
                    "4 GiB; lower it or use adam", (long long)M, (long long)P);
            goto fail;
        }
        t->lb_s = zalloc_array(M * P, sizeof(double));
        t->lb_y = zalloc_array(M * P, sizeof(double));
        t->lb_rho = zalloc_array(M, sizeof(double));
        t->lb_alpha = zalloc_array(M, sizeof(double));
        t->lb_dir = zalloc_array(P, sizeof(double));
        t->lb_theta = zalloc_array(P, sizeof(double));
        t->lb_grad = zalloc_array(P, sizeof(double));
        if (!t->lb_s || !t->lb_y || !t->lb_rho || !t->lb_alpha || !t->lb_dir || !t->lb_theta ||
            !t->lb_grad)
            goto oom;
    }
    if (!t->full_batch) {
        t->perm = alloc_array(t->m_train, sizeof(int64_t));
        t->Xb = alloc_array(t->batch * t->n_in, sizeof(double));
        t->Yb = alloc_array(t->batch * t->n_out, sizeof(double));
        if (!t->perm || !t->Xb || !t->Yb)
            goto oom;
    }

    /* Weights: a warm start (checked) or the seed's weight stream. */
    if (theta0) {
        int64_t bad;
        if (bp_check_finite(theta0, P, &bad) != 0) {
            set_err(err, "theta: parameter %lld is not a finite number", (long long)bad);
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
    return t;

oom:
    set_err(err, "out of memory allocating the trainer (%lld parameters)",
            (long long)(t ? t->P : 0));
fail:
    bp_trainer_free(t);
    return NULL;
}

const double *bp_trainer_theta(const bp_trainer *t)
{
    return t->theta;
}

int64_t bp_trainer_epochs_done(const bp_trainer *t)
{
    return t->epoch;
}

/* ---- optimizer steps: theta and state updated in place from the gradient g ----
 * Each step takes c = λ/m_train for a gradient that still lacks its regularization (mini-batch
 * steps: bp_grad with λ = 0), and uses g + c·θ on the non-bias weights, formed exactly as
 * bp_cost_grad would have added it (g + c·θ, one rounding), inside the update's one pass; c = 0
 * for a gradient that already has it (full batch). Rows are walked layer by layer: the bias
 * element first (no c·θ term), then the s_l weights. */

/* The per-element updates, g the complete gradient element. */
#define UPD_GD(i, gi) (th[i] -= lr * (gi))
#define UPD_MOMENTUM(i, gi)             \
    do {                                \
        v[i] = mu * v[i] - lr * (gi);   \
        th[i] += v[i];                  \
    } while (0)
#define UPD_ADAM(i, gi)                                                 \
    do {                                                                \
        double g_ = (gi);                                               \
        m1[i] = b1 * m1[i] + (1.0 - b1) * g_;                           \
        m2[i] = b2 * m2[i] + (1.0 - b2) * g_ * g_;                      \
        th[i] -= lr * (m1[i] * ic1) / (sqrt(m2[i] * ic2) + eps);        \
    } while (0)

/* Runs UPD over every parameter with the complete gradient g (+ c·θ off the bias column). */
#define FOR_EACH_PARAM(UPD)                                                      \
    do {                                                                         \
        if (c == 0.0) {                                                          \
            for (int64_t i = 0; i < t->P; i++)                                   \
                UPD(i, g[i]);                                                    \
            break;                                                               \
        }                                                                        \
        int64_t i0 = 0;                                                          \
        for (int l = 0; l + 1 < t->spec.n_layers; l++) {                         \
            int64_t s_in = t->spec.sizes[l], s_out = t->spec.sizes[l + 1];       \
            for (int64_t j = 0; j < s_out; j++, i0 += s_in + 1) {                \
                UPD(i0, g[i0]);                                                  \
                for (int64_t i = i0 + 1; i < i0 + 1 + s_in; i++)                 \
                    UPD(i, g[i] + c * th[i]);                                    \
            }                                                                    \
        }                                                                        \
    } while (0)

static void step_gd(bp_trainer *t, const double *g, double c)
{
    double lr = t->cfg.learning_rate;
    double *th = t->theta;
    FOR_EACH_PARAM(UPD_GD);
}

static void step_momentum(bp_trainer *t, const double *g, double c)
{
    double lr = t->cfg.learning_rate, mu = t->cfg.momentum;
    double *th = t->theta, *v = t->vel;
    FOR_EACH_PARAM(UPD_MOMENTUM);
}

static void step_adam(bp_trainer *t, const double *g, double c)
{
    double lr = t->cfg.learning_rate, b1 = t->cfg.beta1, b2 = t->cfg.beta2, eps = t->cfg.adam_eps;
    double *th = t->theta, *m1 = t->vel, *m2 = t->sq;
    t->adam_t++;
    /* Bias corrections as reciprocals: one division and one sqrt an element. */
    double ic1 = 1.0 / (1.0 - pow(b1, (double)t->adam_t));
    double ic2 = 1.0 / (1.0 - pow(b2, (double)t->adam_t));
    FOR_EACH_PARAM(UPD_ADAM);
}

/* One optimizer step from g (+ c·θ on the non-bias weights, see above). */
static void apply_step(bp_trainer *t, const double *g, double c)
{
    switch (t->cfg.optimizer) {
    case BP_OPT_MOMENTUM: step_momentum(t, g, c); break;
    case BP_OPT_ADAM: step_adam(t, g, c); break;
    default: step_gd(t, g, c); break;
    }
}

/* grad ← ∇J(theta) on the training rows, returns J. */
static double full_cost_grad(bp_trainer *t, double *grad, const double *theta)
{
    memset(grad, 0, (size_t)t->P * sizeof(double));
    return bp_cost_grad(grad, t->work, t->Xtr, t->Ytr, theta, t->m_train, t->cfg.lambda,
                        t->m_train);
}

static double dot(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* The flag is written by other threads (cancel, shutdown): read it atomically. */
static int cancelled(const volatile int *cancel)
{
    return cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED);
}

/* Backtracking Armijo search from theta along dir (dg = gᵀdir < 0), first step t0, checking
 * *cancel before every evaluation. On success lb_theta/lb_grad/returned cost hold the accepted
 * point and *ok = 1; no acceptable step: *ok = 0; cancelled: *ok = -1. */
static double line_search(bp_trainer *t, double t0, double dg, int tries, int *ok,
                          const volatile int *cancel)
{
    int64_t P = t->P;
    double step = t0, f0 = t->cost;
    *ok = 0;
    for (int k = 0; k < tries; k++, step *= 0.5) {
        if (cancelled(cancel)) {
            *ok = -1;
            return NAN;
        }
        for (int64_t i = 0; i < P; i++)
            t->lb_theta[i] = t->theta[i] + step * t->lb_dir[i];
        double f = full_cost_grad(t, t->lb_grad, t->lb_theta);
        if (isfinite(f) && f <= f0 + LBFGS_C1 * step * dg &&
            isfinite(dot(t->lb_grad, t->lb_grad, P))) {
            *ok = 1;
            return f;
        }
    }
    return NAN;
}

/* One L-BFGS iteration (two-loop recursion, Armijo backtracking). Returns 1 if it moved,
 * 0 if no decrease was possible even along steepest descent (a stationary point), -1 if
 * cancelled (theta untouched). */
static int lbfgs_iteration(bp_trainer *t, const volatile int *cancel)
{
    int64_t P = t->P, M = t->cfg.lbfgs_memory;
    double *g = t->grad, *d = t->lb_dir, *alpha = t->lb_alpha;
    double lr = t->cfg.learning_rate;

    /* d = -H g by the two-loop recursion over the stored pairs, newest first. */
    memcpy(d, g, (size_t)P * sizeof(double));
    for (int64_t k = 0; k < t->lb_count; k++) {
        int64_t j = ((t->lb_pos - 1 - k) % M + M) % M;
        alpha[j] = t->lb_rho[j] * dot(t->lb_s + j * P, d, P);
        const double *yj = t->lb_y + j * P;
        for (int64_t i = 0; i < P; i++)
            d[i] -= alpha[j] * yj[i];
    }
    double gnorm = sqrt(dot(g, g, P));
    double t0 = lr;
    if (t->lb_count > 0) {
        int64_t j = ((t->lb_pos - 1) % M + M) % M;
        const double *yj = t->lb_y + j * P;
        double gamma = 1.0 / (t->lb_rho[j] * dot(yj, yj, P)); /* sᵀy / yᵀy */
        for (int64_t i = 0; i < P; i++)
            d[i] *= gamma;
    } else if (gnorm > 1.0) {
        t0 = lr / gnorm; /* first step: at most lr in length */
    }
    for (int64_t k = t->lb_count - 1; k >= 0; k--) {
        int64_t j = ((t->lb_pos - 1 - k) % M + M) % M;
        double beta = t->lb_rho[j] * dot(t->lb_y + j * P, d, P);
        const double *sj = t->lb_s + j * P;
        for (int64_t i = 0; i < P; i++)
            d[i] += sj[i] * (alpha[j] - beta);
    }
    for (int64_t i = 0; i < P; i++)
        d[i] = -d[i];

    double dg = dot(g, d, P);
    int ok = 0;
    double f = NAN;
    if (isfinite(dg) && dg < 0)
        f = line_search(t, t0, dg, LBFGS_TRIES, &ok, cancel);
    if (ok < 0)
        return -1;
    if (!ok) {
        /* Reset the memory and fall back to steepest descent. */
        t->lb_count = 0;
        t->lb_pos = 0;
        if (!(gnorm > 0) || !isfinite(gnorm))
            return 0;
        for (int64_t i = 0; i < P; i++)
            d[i] = -g[i];
        f = line_search(t, lr * fmin(1.0, 1.0 / gnorm), -gnorm * gnorm, LBFGS_SD_TRIES, &ok,
                        cancel);
        if (ok <= 0)
            return ok;
    }

    /* s = θ_new − θ, y = g_new − g; keep the pair only when the curvature is positive. */
    double *s = t->lb_s + t->lb_pos * P, *y = t->lb_y + t->lb_pos * P;
    for (int64_t i = 0; i < P; i++) {
        s[i] = t->lb_theta[i] - t->theta[i];
        y[i] = t->lb_grad[i] - g[i];
    }
    double sy = dot(s, y, P);
    if (sy > LBFGS_MIN_SY) {
        t->lb_rho[t->lb_pos] = 1.0 / sy;
        t->lb_pos = (t->lb_pos + 1) % M;
        if (t->lb_count < M)
            t->lb_count++;
    }
    memcpy(t->theta, t->lb_theta, (size_t)P * sizeof(double));
    memcpy(g, t->lb_grad, (size_t)P * sizeof(double));
    t->cost = f;
    return 1;
}

bp_train_status bp_trainer_epoch(bp_trainer *t, bp_progress *progress, const volatile int *cancel,
                                 bp_error *err)
{
    bp_train_status status = BP_TRAIN_CONTINUE;
    double start = now_seconds();
    double lambda = t->cfg.lambda;
    int moved = 1;
    double cost;
    int64_t correct_tr = 0; /* training rows predicted right, at theta ... */
    int have_acc_tr = 0;    /* ... when the mini-batch evaluation counted them */

    if (t->failed) {
        set_err(err, "training already failed at epoch %lld", (long long)t->epoch);
        status = BP_TRAIN_FAILED;
        goto report;
    }
    if (t->finished) {
        /* Nothing to train: report on the weights in place (the best ones, with early
         * stopping). */
        status = BP_TRAIN_DONE;
        goto report;
    }

    if (t->full_batch) {
        if (cancelled(cancel))
            goto cancel;
        if (!t->have_grad) {
            t->cost = full_cost_grad(t, t->grad, t->theta);
            t->have_grad = 1;
        }
        if (t->cfg.optimizer == BP_OPT_LBFGS) {
            moved = lbfgs_iteration(t, cancel);
            if (moved < 0)
                goto cancel;
        } else {
            apply_step(t, t->grad, 0.0);
            t->cost = full_cost_grad(t, t->grad, t->theta);
        }
    } else {
        shuffle_identity(t->perm, t->m_train, &t->rng);
        for (int64_t b0 = 0; b0 < t->m_train; b0 += t->batch) {
            if (cancelled(cancel))
                goto cancel;
            int64_t nb = t->m_train - b0 < t->batch ? t->m_train - b0 : t->batch;
            gather_rows(t->Xb, t->Xtr, t->perm + b0, nb, t->n_in);
            gather_rows(t->Yb, t->Ytr, t->perm + b0, nb, t->n_out);
            memset(t->grad, 0, (size_t)t->P * sizeof(double));
            bp_grad(t->grad, t->work, t->Xb, t->Yb, t->theta, nb, 0.0, t->m_train);
            apply_step(t, t->grad, lambda / (double)t->m_train);
        }
        /* J on the training rows, and their accuracy in the same pass when it is the one
         * reported (no validation rows). */
        bp_work *ew = t->eval_work ? t->eval_work : t->work;
        const int32_t *lab = t->m_val == 0 ? t->Ltr : NULL;
        t->cost = bp_cost_eval(&correct_tr, ew, t->Xtr, t->Ytr, lab, t->theta, t->m_train,
                               lambda, t->m_train);
        have_acc_tr = lab != NULL;
    }
    t->epoch++;

    if (!isfinite(t->cost)) {
        set_err(err, "cost became %s at epoch %lld: lower the learning rate",
                isnan(t->cost) ? "NaN" : "infinite", (long long)t->epoch);
        status = BP_TRAIN_FAILED;
        t->dirty = t->failed = t->finished = 1;
        goto report;
    }
    if (!moved)
        status = BP_TRAIN_DONE; /* lbfgs at a stationary point: nothing left to do */
    else if (t->epoch >= t->cfg.epochs)
        status = BP_TRAIN_DONE;

report:;
    bp_work *ew = t->eval_work ? t->eval_work : t->work;
    double val_cost = NAN, acc = NAN;
    cost = t->cost;
    if (t->finished && !t->failed) {
        /* finished before this call: the weights in place may be the restored best ones */
        const int32_t *lab = t->m_val == 0 ? t->Ltr : NULL;
        cost = bp_cost_eval(&correct_tr, ew, t->Xtr, t->Ytr, lab, t->theta, t->m_train, lambda,
                            t->m_train);
        have_acc_tr = lab != NULL;
    }
    if (t->m_val > 0) {
        int64_t correct = 0;
        val_cost = bp_cost_eval(&correct, ew, t->Xva, t->Yva, t->Lva, t->theta, t->m_val,
                                lambda, t->m_train);
        if (t->Lva)
            acc = (double)correct / (double)t->m_val;
    } else if (t->Ltr) {
        acc = have_acc_tr ? (double)correct_tr / (double)t->m_train
                          : bp_accuracy(ew, t->Xtr, t->Ltr, t->theta, t->m_train);
    }

    if (status != BP_TRAIN_FAILED && !t->finished && t->cfg.early_stopping_patience > 0) {
        if (!isfinite(val_cost)) {
            set_err(err, "validation cost became %s at epoch %lld: lower the learning rate",
                    isnan(val_cost) ? "NaN" : "infinite", (long long)t->epoch);
            status = BP_TRAIN_FAILED;
            t->dirty = t->failed = t->finished = 1;
        } else {
            if (val_cost < t->best_cost) {
                t->best_cost = val_cost;
                t->since_best = 0;
                memcpy(t->best_theta, t->theta, (size_t)t->P * sizeof(double));
            } else {
                t->since_best++;
            }
            if (t->since_best >= t->cfg.early_stopping_patience)
                status = BP_TRAIN_DONE;
            if (status == BP_TRAIN_DONE)
                memcpy(t->theta, t->best_theta, (size_t)t->P * sizeof(double));
        }
    }
    if (status == BP_TRAIN_DONE)
        t->finished = 1;

    if (progress) {
        double elapsed = now_seconds() - start;
        progress->epoch = t->epoch;
        progress->epochs = t->cfg.epochs;
        progress->cost = cost;
        progress->validation_cost = val_cost;
        progress->accuracy = acc;
        progress->samples_per_second =
            elapsed > 0 ? (double)t->m_train / elapsed : (double)t->m_train / 1e-9;
    }
    return status;

cancel:
    t->dirty = 1;
    if (progress) {
        progress->epoch = t->epoch;
        progress->epochs = t->cfg.epochs;
        progress->cost = NAN;
        progress->validation_cost = NAN;
        progress->accuracy = NAN;
        progress->samples_per_second = 0;
    }
    set_err(err, "cancelled during epoch %lld", (long long)t->epoch + 1);
    return BP_TRAIN_CANCELLED;
}

/* ---- checkpoints ----
 * Image (all integers little-endian u64, doubles as their IEEE bits in a u64):
 *   "BPCK", version, total size in bytes
 *   header: param count, spec (n_layers, sizes[], hidden, output), config (every field),
 *           data sizes (m, n_in, n_out, m_train, m_val)
 *   state:  epoch, finished, have_grad, cost, adam_t, lb_pos, lb_count, best_cost, since_best,
 *           rng s[4]
 *   arrays: theta[P]; grad[P] if have_grad; vel[P] (momentum, adam); sq[P] (adam);
 *           lbfgs rho[count], s[count·P], y[count·P]; best_theta[P] if early stopping
 *   u64 FNV-1a of everything before it. */

typedef struct {
    unsigned char *p;
    const unsigned char *r;
    size_t pos, size;
    int bad;
} ckbuf;

static void put_u64(ckbuf *b, uint64_t v)
{
    if (b->p) {
        for (int i = 0; i < 8; i++)
            b->p[b->pos + (size_t)i] = (unsigned char)(v >> (8 * i));
    }
    b->pos += 8;
}

static void put_f64(ckbuf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    put_u64(b, u);
}

static void put_i64(ckbuf *b, int64_t v)
{
    put_u64(b, (uint64_t)v);
}

static void put_array(ckbuf *b, const double *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        put_f64(b, v[i]);
}

static uint64_t get_u64(ckbuf *b)
{
    if (b->bad || b->size - b->pos < 8) {
        b->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)b->r[b->pos + (size_t)i] << (8 * i);
    b->pos += 8;
    return v;
}

static double get_f64(ckbuf *b)
{
    uint64_t u = get_u64(b);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

static int64_t get_i64(ckbuf *b)
{
    return (int64_t)get_u64(b);
}

static void get_array(ckbuf *b, double *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        v[i] = get_f64(b);
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The header fields that must match between an image and the trainer loading it, in order. */
#define HDR_MAX (8 + BP_MAX_LAYERS + 32)
static int header_fields(const bp_trainer *t, uint64_t *h)
{
    int n = 0;
    const bp_train_config *c = &t->cfg;
    uint64_t u;
    h[n++] = (uint64_t)t->P;
    h[n++] = (uint64_t)t->spec.n_layers;
    for (int l = 0; l < BP_MAX_LAYERS; l++)
        h[n++] = l < t->spec.n_layers ? (uint64_t)t->spec.sizes[l] : 0;
    h[n++] = (uint64_t)t->spec.hidden;
    h[n++] = (uint64_t)t->spec.output;
    h[n++] = (uint64_t)c->optimizer;
#define F(x) (memcpy(&u, &(x), 8), u)
    h[n++] = F(c->learning_rate);
    h[n++] = F(c->lambda);
    h[n++] = (uint64_t)c->epochs;
    h[n++] = (uint64_t)c->batch_size;
    h[n++] = c->seed;
    h[n++] = F(c->validation_split);
    h[n++] = (uint64_t)c->early_stopping_patience;
    h[n++] = F(c->init_epsilon);
    h[n++] = F(c->momentum);
    h[n++] = F(c->beta1);
    h[n++] = F(c->beta2);
    h[n++] = F(c->adam_eps);
    h[n++] = (uint64_t)c->lbfgs_memory;
#undef F
    h[n++] = (uint64_t)t->m_all;
    h[n++] = (uint64_t)t->n_in;
    h[n++] = (uint64_t)t->n_out;
    h[n++] = (uint64_t)t->m_train;
    h[n++] = (uint64_t)t->m_val;
    return n;
}

/* What each header field is, for the error message of a mismatched image. */
static const char *header_field_name(int i)
{
    static const char *tail[] = {"hidden activation", "output", "optimizer", "learning_rate",
                                 "lambda", "epochs", "batch_size", "seed", "validation_split",
                                 "early_stopping_patience", "init_epsilon", "momentum", "beta1",
                                 "beta2", "adam_eps", "lbfgs_memory", "dataset rows",
                                 "dataset features", "dataset outputs", "training rows",
                                 "validation rows"};
    if (i == 0)
        return "parameter count";
    if (i <= 1 + BP_MAX_LAYERS)
        return "layers";
    return tail[i - 2 - BP_MAX_LAYERS];
}

/* Writes (b->p != NULL) or measures (b->p == NULL) the image body after the magic. */
static void ckpt_write(const bp_trainer *t, ckbuf *b, size_t total)
{
    uint64_t h[HDR_MAX];
    int nh = header_fields(t, h);
    int64_t P = t->P;
    put_u64(b, (uint64_t)CKPT_VERSION);
    put_u64(b, (uint64_t)total);
    put_u64(b, (uint64_t)nh);
    for (int i = 0; i < nh; i++)
        put_u64(b, h[i]);
    put_i64(b, t->epoch);
    put_i64(b, t->finished);
    put_i64(b, t->have_grad);
    put_f64(b, t->cost);
    put_i64(b, t->adam_t);
    put_i64(b, t->lb_pos);
    put_i64(b, t->lb_count);
    put_f64(b, t->best_cost);
    put_i64(b, t->since_best);
    for (int i = 0; i < 4; i++)
        put_u64(b, t->rng.s[i]);
    put_array(b, t->theta, P);
    if (t->have_grad)
        put_array(b, t->grad, P);
    if (t->vel)
        put_array(b, t->vel, P);
    if (t->sq)
        put_array(b, t->sq, P);
    if (t->lb_s) {
        put_array(b, t->lb_rho, t->lb_count);
        put_array(b, t->lb_s, t->lb_count * P);
        put_array(b, t->lb_y, t->lb_count * P);
    }
    if (t->best_theta)
        put_array(b, t->best_theta, P);
}

size_t bp_trainer_checkpoint_size(const bp_trainer *t)
{
    ckbuf b = {0};
    ckpt_write(t, &b, 0);
    return 4 + b.pos + 8; /* magic, body, checksum */
}

int bp_trainer_checkpoint_save(const bp_trainer *t, void *buf, size_t size, bp_error *err)
{
    if (t->dirty) {
        set_err(err, "checkpoint: the trainer stopped mid-epoch (cancelled or failed)");
        return -1;
    }
    size_t need = bp_trainer_checkpoint_size(t);
    if (!buf || size < need) {
        set_err(err, "checkpoint: buffer of %zu bytes is smaller than the %zu needed", size,
                need);
        return -1;
    }
    unsigned char *p = buf;
    memcpy(p, CKPT_MAGIC, 4);
    ckbuf b = {.p = p + 4, .size = need - 12};
    ckpt_write(t, &b, need);
    ckbuf tail = {.p = p + need - 8};
    put_u64(&tail, fnv1a(p, need - 8));
    return 0;
}

int bp_trainer_checkpoint_load(bp_trainer *t, const void *buf, size_t size, bp_error *err)
{
    const unsigned char *p = buf;
    if (!buf || size < 4 + 8 * 3 + 8 || memcmp(p, CKPT_MAGIC, 4) != 0) {
        set_err(err, "checkpoint: not a backpropd checkpoint");
        return -1;
    }
    ckbuf b = {.r = p + 4, .size = size - 12};
    uint64_t version = get_u64(&b);
    if (version != CKPT_VERSION) {
        set_err(err, "checkpoint: version %llu is not supported (expected %u)",
                (unsigned long long)version, CKPT_VERSION);
        return -1;
    }
    uint64_t total = get_u64(&b);
    if (total != size) {
        set_err(err, "checkpoint: image is %zu bytes but says %llu (truncated?)", size,
                (unsigned long long)total);
        return -1;
    }
    ckbuf tail = {.r = p + size - 8, .size = 8};
    if (get_u64(&tail) != fnv1a(p, size - 8)) {
        set_err(err, "checkpoint: checksum mismatch (corrupted image)");
        return -1;
    }
    uint64_t h[HDR_MAX];
    int nh = header_fields(t, h);
    if (get_u64(&b) != (uint64_t)nh) {
        set_err(err, "checkpoint: header layout differs from this build");
        return -1;
    }
    for (int i = 0; i < nh; i++) {
        if (get_u64(&b) != h[i]) {
            set_err(err, "checkpoint: made for a different %s than this trainer's",
                    header_field_name(i));
            return -1;
        }
    }
    /* Scalars first, checked, before anything in t changes. */
    int64_t P = t->P, M = t->cfg.lbfgs_memory;
    int64_t epoch = get_i64(&b), finished = get_i64(&b), have_grad = get_i64(&b);
    double cost = get_f64(&b);
    int64_t adam_t = get_i64(&b), lb_pos = get_i64(&b), lb_count = get_i64(&b);
    double best_cost = get_f64(&b);
    int64_t since_best = get_i64(&b);
    bp_rng rng;
    for (int i = 0; i < 4; i++)
        rng.s[i] = get_u64(&b);
    int ok = !b.bad && epoch >= 0 && epoch <= t->cfg.epochs && (finished == 0 || finished == 1) &&
             (have_grad == 0 || have_grad == 1) && adam_t >= 0 && since_best >= 0 &&
             lb_pos >= 0 && lb_count >= 0 && (t->lb_s ? lb_pos < M && lb_count <= M
                                                      : lb_pos == 0 && lb_count == 0);
    if (ok) {
        /* The arrays must fill exactly what is left. */
        int64_t arrays = P + (have_grad ? P : 0) + (t->vel ? P : 0) + (t->sq ? P : 0) +
                         (t->lb_s ? lb_count * (2 * P + 1) : 0) + (t->best_theta ? P : 0);
        ok = (uint64_t)arrays == (b.size - b.pos) / 8 && (b.size - b.pos) % 8 == 0;
    }
    if (!ok) {
        set_err(err, "checkpoint: inconsistent training state");
        return -1;
    }
    t->epoch = epoch;
    t->finished = (int)finished;
    t->have_grad = (int)have_grad;
    t->cost = cost;
    t->adam_t = adam_t;
    t->lb_pos = lb_pos;
    t->lb_count = lb_count;
    t->best_cost = best_cost;
    t->since_best = since_best;
    t->rng = rng;
    get_array(&b, t->theta, P);
    if (have_grad)
        get_array(&b, t->grad, P);
    if (t->vel)
        get_array(&b, t->vel, P);
    if (t->sq)
        get_array(&b, t->sq, P);
    if (t->lb_s) {
        get_array(&b, t->lb_rho, lb_count);
        get_array(&b, t->lb_s, lb_count * P);
        get_array(&b, t->lb_y, lb_count * P);
    }
    if (t->best_theta)
        get_array(&b, t->best_theta, P);
    t->dirty = 0;
    return 0;
}
