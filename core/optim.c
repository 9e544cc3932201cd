/* optim.c — the trainer's five optimizers behind train_int.h's small interface: the
 * per-element updates of gd/sgd, momentum and adam (a mini-batch step, or a full-batch step
 * followed by one evaluation at the new Θ), and L-BFGS (two-loop recursion with Armijo
 * backtracking, falling back to steepest descent). Their state (moments, L-BFGS pairs) is
 * allocated here and saved by checkpoint.c.
 *
 * Convergence (BP_STOP_CONVERGED): lbfgs reports it when no step along steepest descent lowers
 * J; gd (and sgd whose batch is the training set) when a step leaves every weight unchanged,
 * bit for bit: the next epoch would start from the same Θ and do the same. Neither test
 * changes a single bit of a run that does not hit it.
 */
#include "core/train_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LBFGS_C1 1e-4         /* Armijo sufficient-decrease constant */
#define LBFGS_MIN_SY 1e-10    /* update pairs with sᵀy at or below this are skipped */
#define LBFGS_TRIES 20        /* step halvings along the quasi-Newton direction */
#define LBFGS_SD_TRIES 40     /* step halvings along steepest descent after a reset */
#define LBFGS_MAX_BYTES (4LL << 30) /* s and y history cap */

int optim_alloc(bp_trainer *t, bp_error *err)
{
    bp_optimizer opt = t->cfg.optimizer;
    int64_t P = t->P;
    if (opt == BP_OPT_MOMENTUM || opt == BP_OPT_ADAM) {
        t->vel = train_zalloc(P, sizeof(double));
        if (!t->vel)
            goto oom;
    }
    if (opt == BP_OPT_ADAM) {
        t->sq = train_zalloc(P, sizeof(double));
        if (!t->sq)
            goto oom;
    }
    if (opt == BP_OPT_LBFGS) {
        int64_t M = t->cfg.lbfgs_memory;
        if (P > LBFGS_MAX_BYTES / (2 * M * (int64_t)sizeof(double))) {
            core_set_error(err, "training.lbfgs_memory: %lld pairs of %lld parameters need more "
                        "than 4 GiB; lower it or use adam", (long long)M, (long long)P);
            return -1;
        }
        t->lb_s = train_zalloc(M * P, sizeof(double));
        t->lb_y = train_zalloc(M * P, sizeof(double));
        t->lb_rho = train_zalloc(M, sizeof(double));
        t->lb_alpha = train_zalloc(M, sizeof(double));
        t->lb_dir = train_zalloc(P, sizeof(double));
        t->lb_theta = train_zalloc(P, sizeof(double));
        t->lb_grad = train_zalloc(P, sizeof(double));
        if (!t->lb_s || !t->lb_y || !t->lb_rho || !t->lb_alpha || !t->lb_dir || !t->lb_theta ||
            !t->lb_grad)
            goto oom;
    }
    return 0;
oom:
    core_set_error(err, "out of memory allocating the trainer (%lld parameters)", (long long)P);
    return -1;
}

void optim_free(bp_trainer *t)
{
    free(t->vel);
    free(t->sq);
    free(t->lb_s);
    free(t->lb_y);
    free(t->lb_rho);
    free(t->lb_alpha);
    free(t->lb_dir);
    free(t->lb_theta);
    free(t->lb_grad);
}

/* ---- optimizer steps: theta and state updated in place from the gradient g ----
 * Each step takes c = λ/m_train for a gradient that still lacks its regularization (mini-batch
 * steps: bp_grad with λ = 0), and uses g + c·θ on the non-bias weights, formed exactly as
 * bp_cost_grad would have added it (g + c·θ, one rounding), inside the update's one pass; c = 0
 * for a gradient that already has it (full batch). Rows are walked layer by layer: the bias
 * element first (no c·θ term), then the s_l weights. */

/* The per-element updates, g the complete gradient element. */
#define UPD_GD(i, gi)                   \
    do {                                \
        double o_ = th[i];              \
        th[i] = o_ - lr * (gi);         \
        moved |= th[i] != o_;           \
    } while (0)
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

/* Runs UPD over the Θ rows r0 .. r1-1 (rows of all layers counted in arena order: row j of
 * layer l is its bias element then its s_l weights) with the complete gradient g (+ c·θ off
 * the bias column). Every element's update reads and writes that element only, so any split
 * into row ranges gives the same bits. */
#define FOR_ROWS(UPD)                                                            \
    do {                                                                         \
        int64_t row = 0, i0 = 0;                                                 \
        for (int l = 0; l + 1 < t->spec.n_layers && row < r1; l++) {            \
            int64_t s_in = t->spec.sizes[l], s_out = t->spec.sizes[l + 1];       \
            for (int64_t j = 0; j < s_out; j++, row++, i0 += s_in + 1) {         \
                if (row < r0)                                                    \
                    continue;                                                    \
                if (row >= r1)                                                   \
                    break;                                                       \
                if (c == 0.0) {                                                  \
                    for (int64_t i = i0; i < i0 + 1 + s_in; i++)                 \
                        UPD(i, g[i]);                                            \
                    continue;                                                    \
                }                                                                \
                UPD(i0, g[i0]);                                                  \
                for (int64_t i = i0 + 1; i < i0 + 1 + s_in; i++)                 \
                    UPD(i, g[i] + c * th[i]);                                    \
            }                                                                    \
        }                                                                        \
    } while (0)

/* One step's shared inputs, and the rows it splits into tasks. */
typedef struct {
    bp_trainer *t;
    const double *g;
    double c, ic1, ic2;
    int64_t rows;    /* Σ s_{l+1} */
    int moved;       /* gd: some weight changed (atomic OR) */
} step_ctx;

/* Θ rows per task of a step. */
#define STEP_ROWS 64

/* Task k of a step: rows k·STEP_ROWS .. of the optimizer's update. */
static void step_task(void *arg, int64_t k, int thread)
{
    (void)thread;
    step_ctx *sc = arg;
    bp_trainer *t = sc->t;
    const double *g = sc->g;
    double c = sc->c, *th = t->theta;
    double lr = t->cfg.learning_rate;
    int64_t r0 = k * STEP_ROWS, r1 = r0 + STEP_ROWS < sc->rows ? r0 + STEP_ROWS : sc->rows;
    if (t->cfg.optimizer == BP_OPT_MOMENTUM) {
        double mu = t->cfg.momentum, *v = t->vel;
        FOR_ROWS(UPD_MOMENTUM);
    } else if (t->cfg.optimizer == BP_OPT_ADAM) {
        double b1 = t->cfg.beta1, b2 = t->cfg.beta2, eps = t->cfg.adam_eps;
        double ic1 = sc->ic1, ic2 = sc->ic2, *m1 = t->vel, *m2 = t->sq;
        FOR_ROWS(UPD_ADAM);
    } else {
        int moved = 0;
        FOR_ROWS(UPD_GD);
        if (moved)
            __atomic_store_n(&sc->moved, 1, __ATOMIC_RELAXED);
    }
}

/* One optimizer step from g (+ c·θ on the non-bias weights, see above), its rows split over
 * the trainer's pool. Returns 0 only for a gradient step that changed no weight (momentum and
 * adam: always 1, their state moves). */
static int apply_step(bp_trainer *t, const double *g, double c)
{
    step_ctx sc = {.t = t, .g = g, .c = c};
    for (int l = 1; l < t->spec.n_layers; l++)
        sc.rows += t->spec.sizes[l];
    if (t->cfg.optimizer == BP_OPT_ADAM) {
        t->adam_t++;
        /* Bias corrections as reciprocals: one division and one sqrt an element. */
        sc.ic1 = 1.0 / (1.0 - pow(t->cfg.beta1, (double)t->adam_t));
        sc.ic2 = 1.0 / (1.0 - pow(t->cfg.beta2, (double)t->adam_t));
    }
    core_parallel_for(t->work->pool, (sc.rows + STEP_ROWS - 1) / STEP_ROWS, step_task, &sc);
    return t->cfg.optimizer == BP_OPT_MOMENTUM || t->cfg.optimizer == BP_OPT_ADAM || sc.moved;
}

void optim_batch_step(bp_trainer *t, const double *g, double c)
{
    (void)apply_step(t, g, c);
}

static double dot(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
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
        if (train_cancelled(cancel)) {
            *ok = -1;
            return NAN;
        }
        for (int64_t i = 0; i < P; i++)
            t->lb_theta[i] = t->theta[i] + step * t->lb_dir[i];
        double f = train_full_eval(t, t->lb_grad, t->lb_theta, &t->lb_correct);
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
    t->correct = t->lb_correct;
    return 1;
}

int optim_full_step(bp_trainer *t, const volatile int *cancel)
{
    if (t->cfg.optimizer == BP_OPT_LBFGS)
        return lbfgs_iteration(t, cancel);
    int moved = apply_step(t, t->grad, 0.0);
    t->cost = train_full_eval(t, t->grad, t->theta, &t->correct);
    return moved;
}

