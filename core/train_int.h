/* train_int.h — what the trainer's three files share, and nothing else includes: the trainer
 * struct, the optimizers' small interface (optim.c) the trainer (train.c) steps with, the
 * evaluation they both use, and the checkpoint image's view of the state (checkpoint.c).
 *
 * Every optimizer descends the same J(Θ): a step on a batch uses the batch-average data term
 * plus (λ/m_train)·Θ, i.e. bp_cost_grad(..., lambda, m_train), so λ means the same at any
 * batch size. Full-batch modes (gd, lbfgs, and sgd/momentum/adam when the batch covers the
 * training set) keep the gradient, cost and training-rows-right count at the current Θ: a
 * step uses the gradient, then J, ∇J and the count are evaluated once at the new Θ (one
 * pass), which is both the epoch's report and the next step's gradient.
 */
#ifndef BP_TRAIN_INT_H
#define BP_TRAIN_INT_H

#include "core/core_int.h"

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

    /* The rows the passes read, in the config's precision: Xtr.. themselves (float64), or
     * float32 copies made once at creation (own32: training then validation rows, X then Y). */
    size_t es;                  /* bytes per element: 8 or 4 */
    const void *x_tr, *y_tr, *x_va, *y_va;
    float *own32;

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
    int64_t lb_correct;         /* training rows right at lb_theta */

    int64_t *perm;              /* m_train: this epoch's row order (mini-batch mode) */
    void *Xb, *Yb;              /* batch × n_in, batch × n_out in the precision: gathered
                                 * mini-batch */

    /* Resumable state (all of it goes into the checkpoint). */
    bp_rng rng;                 /* shuffle stream */
    int64_t epoch;              /* epochs completed */
    int finished;               /* DONE or FAILED returned: further epochs do nothing */
    int failed;                 /* FAILED returned: further epochs fail again */
    int have_grad;              /* full batch: grad/cost/correct hold ∇J, J, the count at theta */
    double cost;                /* J at theta (full batch; mini-batch: after the epoch) */
    int64_t correct;            /* training rows predicted right at theta (0 without labels) */
    double init_cost;           /* J(Θ₀) on the training rows: the divergence reference (NaN:
                                 * not measured yet) */
    int64_t adam_t;
    int64_t lb_pos, lb_count;   /* next slot, filled slots (always slots 0..count-1) */
    double best_cost;           /* validation J at best_epoch (early stopping: the best so
                                 * far, +inf before the first) */
    int64_t since_best;         /* epochs without improvement */
    int64_t best_epoch;         /* the epoch of the weights held (early stopping: the best) */
    double best_train_cost;     /* J on the training rows at best_epoch */
    int stop;                   /* bp_stop_reason once finished */

    int dirty;                  /* cancelled mid-epoch: no checkpoint until reloaded */
};

/* The cancel flag is written by other threads (cancel, shutdown): read atomically. */
int train_cancelled(const volatile int *cancel);
/* malloc / calloc of count elements, count checked in 64 bits (count <= 0 gives one). */
void *train_alloc(int64_t count, size_t elem);
void *train_zalloc(int64_t count, size_t elem);

/* grad ← ∇J(theta) on the training rows (written), *correct ← training rows predicted right;
 * returns J. One pass: bp_cost_grad_eval. */
double train_full_eval(bp_trainer *t, double *grad, const double *theta, int64_t *correct);

/* Sets es and the rows the passes read (x_tr .. y_va): t's float64 rows, or for BP_FLOAT32
 * float32 copies (own32). -1 with err when out of memory or a value overflows float32.
 * (train_f32.c) */
int train_pass_rows(bp_trainer *t, bp_error *err);

/* ---- the optimizers (optim.c) ---- */
/* Allocates the optimizer's state for t->cfg (momentum/adam moments, lbfgs history). */
int optim_alloc(bp_trainer *t, bp_error *err);
void optim_free(bp_trainer *t);
/* A mini-batch step from g (+ c·θ on the non-bias weights: c = λ/m_train for a gradient that
 * still lacks its regularization). */
void optim_batch_step(bp_trainer *t, const double *g, double c);
/* One full-batch step from theta, with grad/cost/correct at theta (have_grad): afterwards they
 * hold the new point's. 1 moved, 0 converged (BP_STOP_CONVERGED's rule: theta unchanged),
 * -1 cancelled (theta untouched). */
int optim_full_step(bp_trainer *t, const volatile int *cancel);

#endif
