/* core_int.h — what the files of the core share and nothing outside core/ includes: the one
 * writer of error messages into a caller's bp_error, and the workspace's layout (made in
 * work.c, used by the passes in net.c).
 */
#ifndef BP_CORE_INT_H
#define BP_CORE_INT_H

#include "core/bp.h"

/* A macro's value as a string literal (limits named in messages). */
#define CORE_STR_(x) #x
#define CORE_STR(x) CORE_STR_(x)

/* Writes a formatted message into err (which may be NULL). Defined in model.c. */
void core_set_error(bp_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One thread's activations and deltas for a chunk of rows, in one arena. The element type is
 * the workspace's precision (double, or float for BP_FLOAT32): the passes (net_pass.h) take
 * these as real *. */
typedef struct {
    void *act[BP_MAX_LAYERS];       /* act[l]: rows × s_l, l = 1 .. L-1 (act[0] unused: X) */
    void *scratch;                  /* rows × max hidden s_l: δ_l before the g′ product */
    void *outbuf;                   /* rows × s_L: e^{z − max} for softmax */
    void *colsum;                   /* max s_l, l ≥ 1: bias-column sums of the newest δ */
    void *bias;                     /* max s_l, l ≥ 1: Θ_l[:, 0] gathered contiguously */
    void *arena;                    /* owns every buffer above */
} core_scratch;

/* Arg-max label of one row a of K outputs (the first on ties); K == 1: a >= 0.5. Defined in
 * net.c; bp_predict's labels and bp_evaluate's true classes (of target rows). */
int32_t core_row_label(const double *a, int K);

/* The workspace (bp_work_new, work.c): per-thread scratch, and the shards' partial gradients.
 * A pass over m rows cuts them into core_shards(spec, m) shards (fixed by spec and m alone);
 * shard 0 accumulates into the caller's dtheta, shard s ≥ 1 into grads[s-1]; they are then
 * summed by a fixed pairwise tree over the shard index (net.c). */
struct bp_work {
    bp_spec spec;
    int64_t rows;                   /* rows per chunk: min(max_rows, bp_chunk_rows(spec)). An
                                     * m above max_rows still works, in chunks of max_rows;
                                     * results are then only the same as with a bigger
                                     * workspace when max_rows ≥ bp_chunk_rows(spec) (bp.h's
                                     * fixed-chunk promise assumes m ≤ max_rows, which every
                                     * caller here keeps). */
    int n_grads;                    /* core_shards(spec, max_rows) − 1, or 0: a gradient pass
                                     * over more rows uses at most n_grads + 1 shards */
    bp_precision precision;         /* the element type of everything below but sc's owner */
    void *grads[BP_MAX_SHARDS];     /* n_grads × bp_param_count reals, one arena (grads[0]) */
    float *theta32;                 /* BP_FLOAT32: P, the pass's Θ rounded to float32 */
    float *grad32;                  /* BP_FLOAT32 with gradients: P, shard 0's gradient */
    core_scratch *sc;               /* n_sc: sc[t] is thread t's (t = 0: the caller's) */
    int n_sc;
    bp_pool *pool;                  /* borrowed, or NULL: every shard on the caller */
    size_t bytes;
};

/* What a pass computes (bit flags; core_pass's mode). */
enum {
    OUT_COST = 1,  /* the data term's sum */
    OUT_DELTA = 2, /* z := δ_L = (a − y) · inv_m, and colsum; the gradient */
    OUT_ACT = 4    /* z := a = g_out(z) (prediction, accuracy): needs labels */
};

/* The one pass behind bp_cost_grad, bp_grad, bp_cost_grad_eval and their _f32 forms (net.c),
 * in w's precision: X, Y are m rows of double (BP_FLOAT64) or float (BP_FLOAT32); theta and
 * dtheta (accumulated into, with OUT_DELTA) are float64 either way. Returns J with mode &
 * OUT_COST, else 0; *correct (may be NULL) the rows right with OUT_ACT. m ≥ 1. */
double core_pass(double *dtheta, int64_t *correct, bp_work *w, const void *X, const void *Y,
                 const int32_t *labels, const double *theta, int64_t m, double lambda,
                 int64_t m_reg, int mode);

/* bp_work_new, with the shards' gradient buffers only if grads (a workspace for cost-only
 * passes, e.g. the trainer's end-of-epoch evaluation, needs none: those passes use any number
 * of shards). */
bp_work *core_work_new(const bp_spec *spec, int64_t max_rows, int grads, bp_precision precision,
                       bp_error *err);
/* Shards of a pass over m rows for this spec: 1..BP_MAX_SHARDS (see bp.h). */
int core_shards(const bp_spec *spec, int64_t m);

/* Runs fn(arg, i, thread) for i = 0 .. n-1 on the pool's active threads (the caller is thread
 * 0; thread < bp_pool_threads) and returns when every call has returned. pool NULL: all on
 * the caller, in order. Defined in pool.c. */
typedef void (*core_task)(void *arg, int64_t i, int thread);
void core_parallel_for(bp_pool *pool, int64_t n, core_task fn, void *arg);

#endif
