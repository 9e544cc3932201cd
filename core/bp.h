/* bp.h — backpropd's core: dense feedforward networks trained by backpropagation.
 *
 * Pure computation in double precision: no I/O, no JSON, no HTTP, no globals, no exit().
 * Conventions (the course's): Θ^(l) is s_{l+1} × (s_l + 1), row-major, column 0 multiplies the
 * bias unit. All Θ^(l) live back to back in one "unrolled" arena of bp_param_count() doubles,
 * layer by layer; gradients and optimizer state use arenas of the same layout. Matrices of
 * samples are row-major, one row a sample: X is m × s_1, Y is m × s_L.
 *
 * Argument order follows llm.c: outputs first, then inputs, then weights, then sizes;
 * gradient buffers are prefixed `d`. Functions that produce gradients ACCUMULATE into them;
 * the caller zeroes. Errors go into a caller-provided bp_error (thread-safe); functions that
 * can fail return 0 on success and -1 on failure, constructors return NULL on failure.
 * Ownership: "new" = caller frees with the matching *_free (which accepts NULL);
 * "borrowed" = valid until the owner is freed or next called.
 */
#ifndef BP_H
#define BP_H

#include <stddef.h>
#include <stdint.h>

#define BP_MAX_LAYERS 64
#define BP_MAX_UNITS 65536
#define BP_MAX_PARAMS 100000000LL

typedef struct {
    char msg[256];
} bp_error;

typedef enum { BP_ACT_SIGMOID = 0, BP_ACT_TANH, BP_ACT_RELU } bp_act;
typedef enum { BP_OUT_SIGMOID = 0, BP_OUT_SOFTMAX, BP_OUT_LINEAR } bp_out;

/* A network's shape: s_1 (inputs) .. s_L (outputs), hidden activation, output + cost.
 *   BP_OUT_SIGMOID: logistic cost  -Σ_k [y log a + (1-y) log(1-a)] / m
 *   BP_OUT_SOFTMAX: cross-entropy  -Σ_k y log softmax(z)_k / m
 *   BP_OUT_LINEAR:  squared error  Σ_k (a - y)^2 / (2m)
 * each pairing with δ^(L) = a^(L) − y. */
typedef struct {
    int n_layers;              /* L, 2..BP_MAX_LAYERS */
    int sizes[BP_MAX_LAYERS];  /* sizes[0] = s_1 ... sizes[L-1] = s_L, each 1..BP_MAX_UNITS */
    bp_act hidden;
    bp_out output;
} bp_spec;

/* 0 if the spec is usable (layer count, unit counts, parameter total checked in 64-bit),
 * else -1 with a message naming the field, e.g. "layers[2]: must be an integer in 1..65536". */
int bp_spec_validate(const bp_spec *spec, bp_error *err);
/* Length of the unrolled Θ: Σ_l s_{l+1} (s_l + 1). Spec must be valid. */
int64_t bp_param_count(const bp_spec *spec);
/* Offset of Θ^(l) (l = 0 .. L-2) in the unrolled arena; l = L-1 gives bp_param_count. */
int64_t bp_layer_offset(const bp_spec *spec, int l);
const char *bp_act_name(bp_act a);
const char *bp_out_name(bp_out o);


/* ---- PRNG: xoshiro256**, owned by whoever needs one (a job, a test); never global ---- */
typedef struct {
    uint64_t s[4];
} bp_rng;
void bp_rng_seed(bp_rng *rng, uint64_t seed);   /* splitmix64 expansion of seed */
uint64_t bp_rng_next(bp_rng *rng);
double bp_rng_uniform(bp_rng *rng);             /* [0, 1), 53 random bits */

/* Θ uniform in ±ε per layer; epsilon <= 0 means ε_l = sqrt(6)/sqrt(s_l + s_{l+1}). */
void bp_init_weights(double *theta, const bp_spec *spec, double epsilon, bp_rng *rng);

/* 0 if all n values are finite, else -1 and *bad_index = first bad one. */
int bp_check_finite(const double *v, int64_t n, int64_t *bad_index);

/* The arithmetic of a workspace's passes (and of a training job). BP_FLOAT64 is the default
 * and what every function without _f32 in its name uses; BP_FLOAT32 computes activations,
 * deltas and gradients in float32 (cblas_sgemm) from float32 X and Y and Θ rounded to float32
 * per pass, returning float64 gradients (see net.c). */
typedef enum { BP_FLOAT64 = 0, BP_FLOAT32 = 1 } bp_precision;
const char *bp_precision_name(bp_precision p); /* "float64", "float32"; NULL if neither */

/* ---- Workspace: activations and deltas for a chunk of rows, allocated once ---- */
typedef struct bp_work bp_work;
/* new. Holds activations/deltas for min(max_rows, bp_chunk_rows(spec)) rows; any m is
 * processed in chunks of that size (results independent of max_rows: the chunk size is a
 * function of the spec alone, at most BP_CHUNK_ROWS). */
#define BP_CHUNK_ROWS 2048
/* Rows per chunk for this (valid) spec: 64..BP_CHUNK_ROWS, smaller for networks of small
 * layers (their activations then stay in cache), BP_CHUNK_ROWS for the rest. */
int64_t bp_chunk_rows(const bp_spec *spec);
bp_work *bp_work_new(const bp_spec *spec, int64_t max_rows, bp_error *err);
/* new: the same for passes in `precision` (bp_work_new is BP_FLOAT64). */
bp_work *bp_work_new_precision(const bp_spec *spec, int64_t max_rows, bp_precision precision,
                               bp_error *err);
bp_precision bp_work_precision(const bp_work *w);
void bp_work_free(bp_work *w);
/* Bytes the workspace holds (for memory accounting). */
size_t bp_work_bytes(const bp_work *w);

/* ---- Parallel passes: the same bits with any number of threads ----
 * A pass over m rows (bp_cost_grad, bp_grad, bp_cost_eval, bp_cost_grad_eval) cuts the rows
 * into S = bp_shards(spec, m) contiguous shards, a function of the spec and m alone, never of
 * the threads: S = floor(m / BP_SHARD_MIN_ROWS) clamped to 1..BP_MAX_SHARDS and to
 * S·P ≤ BP_SHARD_BUDGET doubles of partial gradients (P = bp_param_count). Shard s holds rows
 * [⌊s·m/S⌋, ⌊(s+1)·m/S⌋), processed in chunks of bp_chunk_rows; its Δ and cost sums are
 * computed by one thread, and the shards' sums are added by a fixed pairwise tree over s
 * (level by level: s += s + 2^k for s a multiple of 2^(k+1)). Any pool, of any size, or none
 * gives the same bits, provided each BLAS call runs on one thread (OpenBLAS: the process-wide
 * openblas_set_num_threads(1), the caller's choice; a threaded BLAS is still correct, but its
 * bits depend on its own thread count). With S = 1 a pass is the single-thread pass of before
 * (the release before shards summed every chunk of a batch in sequence; batches of at least
 * 2·BP_SHARD_MIN_ROWS rows now give slightly different — equally exact — rounding). */
#define BP_SHARD_MIN_ROWS 64
#define BP_MAX_SHARDS 16
#define BP_SHARD_BUDGET (INT64_C(1) << 24)
int bp_shards(const bp_spec *spec, int64_t m);

/* A pool of threads for the passes, owned by the caller (the core keeps no globals).
 * new: threads ≥ 1 participants, threads − 1 of them pthreads (the caller of a pass is the
 * other). Threads inherit the creating thread's scheduling (e.g. its nice value). */
typedef struct bp_pool bp_pool;
bp_pool *bp_pool_new(int threads, bp_error *err);
void bp_pool_free(bp_pool *p);   /* joins the threads; no pass may be running */
int bp_pool_threads(const bp_pool *p);
/* How many threads the next passes use: 1..bp_pool_threads (clamped). Any thread may call it
 * at any time (e.g. to share cores among jobs); results never depend on it. */
void bp_pool_set_active(bp_pool *p, int active);
int bp_pool_active(const bp_pool *p);
/* Passes on w from now on run their shards on pool (borrowed: it must outlive w's use; NULL:
 * on the calling thread). Allocates scratch for the pool's threads: -1 if out of memory. One
 * pass at a time per workspace, as always. */
int bp_work_set_pool(bp_work *w, bp_pool *pool, bp_error *err);

/* J(Θ) on m rows: data term averaged over m plus lambda/(2 m_reg) Σ non-bias θ².
 * If dtheta != NULL, ACCUMULATES ∂J/∂Θ into it: (1/m) Δ + (lambda/m_reg) Θ on non-bias columns.
 * m_reg is the training-set size (pass m for the full batch; a mini-batch passes the whole
 * training set's size so λ means the same at any batch size). One GEMM per layer and
 * direction per chunk. X: m × s_1, Y: m × s_L, theta/dtheta: bp_param_count. */
double bp_cost_grad(double *dtheta, bp_work *w, const double *X, const double *Y,
                    const double *theta, int64_t m, double lambda, int64_t m_reg);

/* ∂J/∂Θ alone, ACCUMULATED into dtheta exactly as bp_cost_grad(dtheta, ...) does, without
 * computing the cost (the optimizers' mini-batch steps never read it): the same bits in dtheta.
 * lambda = 0 leaves the regularization to the caller (the trainer folds it into the update). */
void bp_grad(double *dtheta, bp_work *w, const double *X, const double *Y, const double *theta,
             int64_t m, double lambda, int64_t m_reg);

/* J(Θ) as bp_cost_grad(NULL, ...) gives it (the same bits) and, in the same forward pass, the
 * number of rows whose predicted label (bp_predict's) equals labels[i] into *correct (0 when
 * labels is NULL; correct may be NULL). One forward pass instead of bp_cost_grad's plus
 * bp_accuracy's: the trainer's end-of-epoch evaluation. */
double bp_cost_eval(int64_t *correct, bp_work *w, const double *X, const double *Y,
                    const int32_t *labels, const double *theta, int64_t m, double lambda,
                    int64_t m_reg);

/* bp_cost_grad and bp_cost_eval in one pass: J and, if dtheta != NULL, ∂J/∂Θ ACCUMULATED into
 * dtheta (the same bits as bp_cost_grad's), and the rows whose predicted label equals
 * labels[i] counted into *correct (0 when labels is NULL; correct may be NULL). The trainer's
 * full-batch evaluation: cost, gradient and training accuracy from one forward pass. */
double bp_cost_grad_eval(double *dtheta, int64_t *correct, bp_work *w, const double *X,
                         const double *Y, const int32_t *labels, const double *theta, int64_t m,
                         double lambda, int64_t m_reg);

/* bp_cost_grad_eval and bp_grad on a BP_FLOAT32 workspace: X (m × s_1) and Y (m × s_L) in
 * float32, theta and dtheta float64 (dtheta ACCUMULATES the float32 pass's gradient, widened,
 * plus the float64 (lambda/m_reg) Θ). The same bits with any pool, as in float64. The
 * functions without _f32 (and bp_predict, bp_accuracy) need a BP_FLOAT64 workspace: on a
 * float32 one they do nothing and return NaN, and these the reverse. */
double bp_cost_grad_eval_f32(double *dtheta, int64_t *correct, bp_work *w, const float *X,
                             const float *Y, const int32_t *labels, const double *theta,
                             int64_t m, double lambda, int64_t m_reg);
void bp_grad_f32(double *dtheta, bp_work *w, const float *X, const float *Y,
                 const double *theta, int64_t m, double lambda, int64_t m_reg);

/* Outputs a^(L) (m × s_L, may be NULL) and arg-max labels (m, may be NULL; for s_L == 1 the
 * label is a >= 0.5) for m rows of X. */
void bp_predict(double *outputs, int32_t *labels, bp_work *w, const double *X,
                const double *theta, int64_t m);
/* Fraction of m rows whose predicted label equals labels[i]. */
double bp_accuracy(bp_work *w, const double *X, const int32_t *labels, const double *theta,
                   int64_t m);

/* Centered finite differences (J(θ+ε e_i) − J(θ−ε e_i)) / 2ε for every parameter against
 * backprop. analytic/numerical: bp_param_count each (written, not accumulated).
 * Result: norm(num − grad) / norm(num + grad) and max |num − grad|. theta is not modified. */
typedef struct {
    double relative_difference;
    double max_abs_difference;
    int64_t worst_index;
} bp_gradcheck_result;
int bp_gradcheck(bp_gradcheck_result *res, double *analytic, double *numerical, bp_work *w,
                 const double *X, const double *Y, const double *theta, int64_t m,
                 double lambda, double epsilon, bp_error *err);

/* ---- Training ---- */
typedef enum {
    BP_OPT_GD = 0, BP_OPT_SGD, BP_OPT_MOMENTUM, BP_OPT_ADAM, BP_OPT_LBFGS
} bp_optimizer;
const char *bp_optimizer_name(bp_optimizer o);

typedef struct {
    bp_optimizer optimizer;
    double learning_rate;            /* > 0 (lbfgs: initial step scale, 1.0 typical) */
    double lambda;                   /* >= 0 */
    int64_t epochs;                  /* 1..BP_MAX_EPOCHS */
    int64_t batch_size;              /* 0 = full batch */
    uint64_t seed;
    double validation_split;         /* [0, 1) */
    int64_t early_stopping_patience; /* 0 = off, ..BP_MAX_EPOCHS; needs validation_split > 0 */
    double init_epsilon;             /* 0 = per-layer default, else (0, 1e6] */
    double momentum;                 /* momentum: 0.9 */
    double beta1, beta2, adam_eps;   /* adam: 0.9, 0.999, 1e-8 */
    int lbfgs_memory;                /* lbfgs: 10, 1..BP_MAX_LBFGS_MEMORY */
    int standardize;                 /* 0 or 1: the caller trains on inputs standardized by
                                      * the training rows' mean and sd (bp_standardize_fit,
                                      * skipping bp_split_mark's rows); the trainer itself
                                      * never reads it */
    bp_precision precision;          /* BP_FLOAT64 (default) or BP_FLOAT32: the passes'
                                      * arithmetic; weights and optimizer state stay float64
                                      * (float64 master weights, see train.c) */
} bp_train_config;
#define BP_MAX_EPOCHS 1000000
#define BP_MAX_LBFGS_MEMORY 100
/* Fills the defaults above (gd, lr 1, lambda 1, 400 epochs, full batch, seed 42...). */
void bp_train_config_default(bp_train_config *c);
/* The one home of the config's ranges. 0 if usable, else -1 with a message that names the
 * field as the JSON request does, without a path ("learning_rate: must be a finite number
 * > 0"); callers put theirs in front ("training."). */
int bp_train_config_validate(const bp_train_config *c, bp_error *err);
/* The validation split of m rows: *n_val = floor(split · m) rows held out, *n_train the rest.
 * 0 if both parts are usable (split == 0: no held-out rows; split > 0: at least one of each),
 * else -1 with a message naming "validation_split". */
int bp_split_sizes(int64_t m, double split, int64_t *n_train, int64_t *n_val, bp_error *err);

/* Divergence: an epoch whose training cost J is not finite, or exceeds
 * BP_DIVERGENCE_FACTOR · max(J(Θ₀), 1) (J(Θ₀): the cost at the weights training started
 * from, epoch 0), fails the run with BP_STOP_DIVERGED. Ordinary runs never come near: J at
 * the start is the worst a working descent sees. */
#define BP_DIVERGENCE_FACTOR 1e6

/* A borrowed view of a dataset. labels may be NULL (then accuracy is NaN). */
typedef struct {
    const double *X;       /* m × n_in */
    const double *Y;       /* m × n_out */
    const int32_t *labels; /* m, or NULL */
    int64_t m, n_in, n_out;
} bp_data;

/* Why training stopped. */
typedef enum {
    BP_STOP_NONE = 0,       /* it has not (CONTINUE, CANCELLED) */
    BP_STOP_COMPLETED,      /* all epochs ran */
    BP_STOP_EARLY_STOPPING, /* validation J did not improve for early_stopping_patience epochs */
    BP_STOP_CONVERGED,      /* a full-batch step can no longer move Θ: lbfgs finds no step along
                             * steepest descent that lowers J (a stationary point to machine
                             * precision); gd (or sgd whose batch is the training set) takes a
                             * step that leaves every weight unchanged, bit for bit. Every later
                             * epoch would repeat that epoch, so stopping changes nothing. */
    BP_STOP_DIVERGED        /* see BP_DIVERGENCE_FACTOR (FAILED) */
} bp_stop_reason;
/* "completed", "early_stopping", "converged", "diverged"; NULL for BP_STOP_NONE. */
const char *bp_stop_reason_name(bp_stop_reason r);

typedef struct {
    int64_t epoch;             /* epochs completed, 1-based after the first */
    int64_t epochs;
    double cost;               /* J on the training rows at the end of the epoch */
    double validation_cost;    /* J on held-out rows, NaN when there are none */
    double accuracy;           /* fraction of training rows predicted right; NaN w/o labels */
    double validation_accuracy;/* the same on held-out rows; NaN without them or labels */
    double samples_per_second; /* training rows processed per second in this epoch */
    /* The weights bp_trainer_theta holds after this call: the epoch they are from and its J on
     * the training and held-out rows. The epoch just run, except when early stopping restored
     * the best epoch's weights (DONE). After FAILED and CANCELLED: 0 and NaN (the trainer's
     * weights are no epoch's). */
    int64_t best_epoch;
    double best_cost, best_validation_cost;
    bp_stop_reason stop;       /* DONE / FAILED: why; else BP_STOP_NONE */
} bp_progress;

typedef enum {
    BP_TRAIN_CONTINUE = 0, /* epoch done, more to go */
    BP_TRAIN_DONE,         /* all epochs done, early stopping or converged: best weights in place */
    BP_TRAIN_CANCELLED,    /* *cancel became nonzero: state is mid-epoch, do not checkpoint */
    BP_TRAIN_FAILED        /* err says why (e.g. "diverged at epoch 12: cost became NaN ...") */
} bp_train_status;

typedef struct bp_trainer bp_trainer;
/* new. Copies theta0 (bp_param_count doubles) for a warm start, else initialises from the
 * seed. data is borrowed and must outlive the trainer. Splits validation rows by the seed. */
bp_trainer *bp_trainer_new(const bp_spec *spec, const bp_train_config *cfg, const bp_data *data,
                           const double *theta0, bp_error *err);
void bp_trainer_free(bp_trainer *t);
/* The trainer's passes run on pool (borrowed, NULL: the caller's thread); the weights are the
 * same bits either way. May be called between epochs. -1 if out of memory. */
int bp_trainer_set_pool(bp_trainer *t, bp_pool *pool, bp_error *err);
/* Runs one epoch; checks *cancel (may be NULL) before every batch. Fills *progress. */
bp_train_status bp_trainer_epoch(bp_trainer *t, bp_progress *progress, const volatile int *cancel,
                                 bp_error *err);
const double *bp_trainer_theta(const bp_trainer *t); /* borrowed: current weights */
int64_t bp_trainer_epochs_done(const bp_trainer *t);
/* Checkpoint: a self-describing byte image of EVERYTHING needed to resume bit-exactly
 * (weights, optimizer state, PRNG, epoch, best-so-far, early-stopping counters, the initial
 * cost, the stop reason). Take it only between epochs. size() gives the exact length for save(). */
size_t bp_trainer_checkpoint_size(const bp_trainer *t);
int bp_trainer_checkpoint_save(const bp_trainer *t, void *buf, size_t size, bp_error *err);
/* Restores into a trainer made with the same spec, config and data; -1 if it does not match. */
int bp_trainer_checkpoint_load(bp_trainer *t, const void *buf, size_t size, bp_error *err);

/* ---- Evaluation and standardization (core/eval.c) ---- */

/* A trained net measured on m rows with targets Y (m × s_L). Classification (sigmoid or
 * softmax output): the true class of a row is Y's arg-max (s_L == 1: y >= 0.5), the predicted
 * one bp_predict's label; K = s_L classes (2 when s_L == 1). Precision, recall and F1 with a
 * zero denominator are 0. Linear output: the error figures only. */
typedef struct {
    int64_t m;
    int K;                /* classes; 0 for a linear output */
    double cost;          /* J(Θ) on these rows with lambda and m_reg = m (bp_cost_grad's) */
    double log_loss;      /* J's data term (lambda 0); NaN for a linear output */
    double accuracy;      /* NaN for a linear output */
    int64_t *confusion;   /* new: K × K, row = true class, column = predicted; NULL linear */
    double *precision, *recall, *f1; /* new: K each */
    int64_t *support;     /* new: K: rows whose true class is k */
    double macro[3];      /* precision, recall, f1: unweighted mean over the K classes */
    double weighted[3];   /* the same weighted by support */
    double roc_auc;       /* K == 2 only (score: a, or the class-1 output); NaN otherwise or
                           * when one class has no rows. Ties count one half. */
    double mse, mae;      /* linear: mean over all m × s_L entries of (a − y)², |a − y| */
    double r2;            /* linear: mean over outputs of 1 − SS_res/SS_tot (an output whose
                           * targets are constant counts 1 when predicted exactly, else 0) */
} bp_eval;
/* Fills *out (bp_eval_clear frees it) for m >= 1 rows. One forward pass for the outputs and
 * bp_cost_grad's for J (two when lambda != 0). -1 with err when out of memory. */
int bp_evaluate(bp_eval *out, bp_work *w, const double *X, const double *Y, const double *theta,
                int64_t m, double lambda, bp_error *err);
void bp_eval_clear(bp_eval *e);

/* The held-out rows of cfg's validation split of m rows, exactly as bp_trainer_new chooses
 * them: is_val[i] = 1 held out, 0 training (m bytes, written). -1 with err (out of memory). */
int bp_split_mark(unsigned char *is_val, int64_t m, const bp_train_config *cfg, bp_error *err);
/* Per-feature mean and population standard deviation (n each, written) of the rows i of X
 * (m × n) with skip[i] == 0 (skip NULL: all rows; at least one row used). A feature whose sd
 * is 0 (constant) gets sd = 1, so (x − μ)/σ is 0 for it. */
void bp_standardize_fit(double *mean, double *sd, const double *X, const unsigned char *skip,
                        int64_t m, int64_t n);
/* Xout = (X − mean) / sd row by row (m × n; Xout may be X). */
void bp_standardize_apply(double *Xout, const double *X, const double *mean, const double *sd,
                          int64_t m, int64_t n);
/* theta_out (bp_param_count; may be theta) = theta with the transform folded into Θ^(1), so
 * that forward(theta_out, x) == forward(theta, (x − mean)/sd) up to rounding: W' = W/σ (per
 * input column), b' = b − Σ_k W_k μ_k/σ_k; later layers copied. mean, sd: s_1 each; an sd that
 * is 0 or not finite counts as 1 (a constant feature: only centred); mean or sd NULL = a plain
 * copy. */
void bp_fold_standardize(double *theta_out, const double *theta, const double *mean,
                         const double *sd, const bp_spec *spec);

#endif
