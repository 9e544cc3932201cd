/* net.c — the network half of core/bp.h: the forward pass, the cost J(Θ) with
 * its backprop gradient, and prediction. (The spec, Θ layout, PRNG, initialisation and gradient
 * checking are in core/model.c; the training loop is in core/train.c.)
 *
 * (The workspace, struct bp_work, is made in core/work.c.)
 *
 * Shapes, for a chunk of n rows (n ≤ BP_CHUNK_ROWS) and layer l = 0 .. L-2 (s_l = sizes[l]):
 *   X chunk  A_0        n × s_0            read in place, never copied
 *   Θ_l                 s_{l+1} × (s_l+1)  row-major, column 0 is the bias
 *   W_l = Θ_l[:, 1:]    s_{l+1} × s_l      theta + off_l + 1 with leading dimension s_l + 1
 *   A_{l+1} = g(A_l W_lᵀ + b_l)   n × s_{l+1}   (the output layer keeps z, not a)
 * Backward (δ_L = (a − y)/m with the 1/m folded in once, stored over A_{L-1}):
 *   dW_l  += δ_{l+1}ᵀ A_l                  one dgemm, beta = 1, straight into dtheta
 *   db_l  += column sums of δ_{l+1}        fused into the pass that made δ_{l+1}
 *   δ_l    = (δ_{l+1} W_l) .* g′(A_l)      one dgemm into scratch, then one fused pass
 *                                          that writes δ_l over A_l
 * Elementwise work is one pass per matrix; per-activation branches sit outside the loops.
 *
 * Two precisions from one source: the passes' body is core/net_pass.h, included below once
 * with real = double (cblas_dgemm; suffix _f64) and once with real = float (cblas_sgemm;
 * _f32). A float32 pass (core_pass on a BP_FLOAT32 workspace) rounds the float64 master Θ to
 * float32 once per pass, computes activations, deltas and each shard's gradient in float32
 * (the elementwise kernels evaluate in double from float inputs and round once; the data
 * term's sums are kept in double), adds the shards' gradients by the same fixed tree in
 * float32, and widens the sum into the caller's float64 dtheta; the regularization is the
 * float64 one on the master Θ, as in a float64 pass.
 */
#include "core/core_int.h"
#include "core/vmath.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* The hot elementwise loops are compiled for AVX-512, AVX2 and baseline x86-64 and picked at
 * load time (GCC function multi-versioning); core/vmath.h keeps the results bit-identical. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(BP_NO_MULTIVERSION)
#define BP_HOT __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BP_HOT
#endif

/* Parameters per block of the gradient tree (a parallel-for index). */
#define TREE_BLOCK 8192

/* ---- the passes, once per precision (core/net_pass.h) ---- */

#define NP_CAT_(a, b) a##b
#define NP_CAT(a, b) NP_CAT_(a, b)
#define NP(name) NP_CAT(name, NP_SUFFIX)

#define real double
#define NP_SUFFIX _f64
#define GEMM cblas_dgemm
#define RV_LOAD(p) bp_v8_load(p)
#define RV_STORE(p, v) bp_v8_store(p, v)
#include "core/net_pass.h"
#undef real
#undef NP_SUFFIX
#undef GEMM
#undef RV_LOAD
#undef RV_STORE

#define real float
#define NP_SUFFIX _f32
#define GEMM cblas_sgemm
#define RV_LOAD(p) bp_v8_load_f32(p)
#define RV_STORE(p, v) bp_v8_store_f32(p, v)
#include "core/net_pass.h"
#undef real
#undef NP_SUFFIX
#undef GEMM
#undef RV_LOAD
#undef RV_STORE

/* ---- regularization (float64, on the master Θ, in both precisions) ---- */

/* Σ θ² over one row of n non-bias weights; if drow != NULL also drow += c · θ. */
BP_HOT static double regularize_row(double *drow, const double *row, int n, double c)
{
    const bp_v8d cv = bp_v8_splat(c);
    bp_v8d acc = bp_v8_splat(0.0);
    int n8 = n & ~7;
    for (int k = 0; k < n8; k += 8) {
        bp_v8d t = bp_v8_load(row + k);
        acc += t * t;
        if (drow)
            bp_v8_store(drow + k, bp_v8_load(drow + k) + cv * t);
    }
    double sq = bp_v8_hsum(&acc);
    for (int k = n8; k < n; k++) {
        sq += row[k] * row[k];
        if (drow)
            drow[k] += c * row[k];
    }
    return sq;
}

/* (λ / 2m_reg) Σ θ² over the non-bias columns (returned), and if dtheta != NULL
 * dtheta += (λ / m_reg) θ there; one pass per row. */
static double regularize(double *dtheta, const bp_spec *sp, const double *theta, double lambda,
                         int64_t m_reg)
{
    double sq = 0.0, c = lambda / (double)m_reg;
    int64_t off = 0;
    for (int l = 0; l + 1 < sp->n_layers; l++) {
        int s_in = sp->sizes[l], s_out = sp->sizes[l + 1];
        for (int j = 0; j < s_out; j++) {
            int64_t row = off + (int64_t)j * (s_in + 1) + 1;
            sq += regularize_row(dtheta ? dtheta + row : NULL, theta + row, s_in, c);
        }
        off += (int64_t)s_out * (s_in + 1);
    }
    return 0.5 * c * sq;
}


int32_t core_row_label(const double *a, int K)
{
    return row_label_f64(a, K);
}

/* dtheta[i] += g[i] for the float32 pass's gradient, in blocks on the pool. */
typedef struct {
    double *dtheta;
    const float *g;
    int64_t P;
} widen_ctx;

static void widen_block(void *arg, int64_t b, int thread)
{
    (void)thread;
    widen_ctx *c = arg;
    int64_t i0 = b * TREE_BLOCK, i1 = i0 + TREE_BLOCK < c->P ? i0 + TREE_BLOCK : c->P;
    for (int64_t i = i0; i < i1; i++)
        c->dtheta[i] += (double)c->g[i];
}

double core_pass(double *dtheta, int64_t *correct, bp_work *w, const void *X, const void *Y,
                 const int32_t *labels, const double *theta, int64_t m, double lambda,
                 int64_t m_reg, int mode)
{
    const bp_spec *sp = &w->spec;
    int64_t P = bp_param_count(sp);
    if (m_reg <= 0)
        m_reg = m;
    double cost;
    if (w->precision == BP_FLOAT32) {
        float *th = w->theta32, *g = w->grad32;
        for (int64_t i = 0; i < P; i++)
            th[i] = (float)theta[i]; /* Θ rounded to float32 once per pass */
        if (mode & OUT_DELTA)
            memset(g, 0, sizeof(float) * (size_t)P);
        cost = cost_pass_f32(g, correct, w, X, Y, labels, th, m, mode);
        if (mode & OUT_DELTA) {
            widen_ctx c = {dtheta, g, P};
            core_parallel_for(w->pool, (P + TREE_BLOCK - 1) / TREE_BLOCK, widen_block, &c);
        }
    } else {
        cost = cost_pass_f64(dtheta, correct, w, X, Y, labels, theta, m, mode);
    }
    if (lambda != 0.0)
        cost += regularize((mode & OUT_DELTA) ? dtheta : NULL, sp, theta, lambda, m_reg);
    return (mode & OUT_COST) ? cost : 0.0;
}

/* A public float64 entry point on a float32 workspace (or the reverse) is a caller's bug: the
 * pass does nothing and J is NaN. */
static int wrong_precision(const bp_work *w, bp_precision want)
{
    return w->precision != want;
}

double bp_cost_grad(double *dtheta, bp_work *w, const double *X, const double *Y,
                    const double *theta, int64_t m, double lambda, int64_t m_reg)
{
    if (m <= 0 || wrong_precision(w, BP_FLOAT64))
        return NAN;
    return core_pass(dtheta, NULL, w, X, Y, NULL, theta, m, lambda, m_reg,
                     dtheta ? OUT_COST | OUT_DELTA : OUT_COST);
}

void bp_grad(double *dtheta, bp_work *w, const double *X, const double *Y, const double *theta,
             int64_t m, double lambda, int64_t m_reg)
{
    if (m <= 0 || wrong_precision(w, BP_FLOAT64))
        return;
    core_pass(dtheta, NULL, w, X, Y, NULL, theta, m, lambda, m_reg, OUT_DELTA);
}

double bp_cost_eval(int64_t *correct, bp_work *w, const double *X, const double *Y,
                    const int32_t *labels, const double *theta, int64_t m, double lambda,
                    int64_t m_reg)
{
    return bp_cost_grad_eval(NULL, correct, w, X, Y, labels, theta, m, lambda, m_reg);
}

/* The one mode rule of the *_eval passes. */
static int eval_mode(const double *dtheta, const int32_t *labels)
{
    return OUT_COST | (dtheta ? OUT_DELTA : 0) | (labels ? OUT_ACT : 0);
}

double bp_cost_grad_eval(double *dtheta, int64_t *correct, bp_work *w, const double *X,
                         const double *Y, const int32_t *labels, const double *theta, int64_t m,
                         double lambda, int64_t m_reg)
{
    if (correct)
        *correct = 0;
    if (m <= 0 || wrong_precision(w, BP_FLOAT64))
        return NAN;
    return core_pass(dtheta, correct, w, X, Y, labels, theta, m, lambda, m_reg,
                     eval_mode(dtheta, labels));
}

double bp_cost_grad_eval_f32(double *dtheta, int64_t *correct, bp_work *w, const float *X,
                             const float *Y, const int32_t *labels, const double *theta,
                             int64_t m, double lambda, int64_t m_reg)
{
    if (correct)
        *correct = 0;
    if (m <= 0 || wrong_precision(w, BP_FLOAT32))
        return NAN;
    return core_pass(dtheta, correct, w, X, Y, labels, theta, m, lambda, m_reg,
                     eval_mode(dtheta, labels));
}

void bp_grad_f32(double *dtheta, bp_work *w, const float *X, const float *Y,
                 const double *theta, int64_t m, double lambda, int64_t m_reg)
{
    if (m <= 0 || wrong_precision(w, BP_FLOAT32))
        return;
    core_pass(dtheta, NULL, w, X, Y, NULL, theta, m, lambda, m_reg, OUT_DELTA);
}

/* ---- prediction ---- */

void bp_predict(double *outputs, int32_t *labels, bp_work *w, const double *X,
                const double *theta, int64_t m)
{
    const bp_spec *sp = &w->spec;
    int L = sp->n_layers, n_in = sp->sizes[0], K = sp->sizes[L - 1];
    if (wrong_precision(w, BP_FLOAT64))
        return;
    for (int64_t r0 = 0; r0 < m; r0 += w->rows) {
        int64_t n = m - r0 < w->rows ? m - r0 : w->rows;
        forward_f64(&w->sc[0], sp, X + r0 * n_in, theta, n);
        double *Aout = w->sc[0].act[L - 1];
        output_activate_f64(Aout, w->sc[0].outbuf, n, K, sp->output);
        if (outputs)
            memcpy(outputs + r0 * K, Aout, sizeof(double) * (size_t)(n * K));
        if (labels)
            for (int64_t i = 0; i < n; i++)
                labels[r0 + i] = core_row_label(Aout + i * K, K);
    }
}

double bp_accuracy(bp_work *w, const double *X, const int32_t *labels, const double *theta,
                   int64_t m)
{
    const bp_spec *sp = &w->spec;
    int L = sp->n_layers, n_in = sp->sizes[0], K = sp->sizes[L - 1];
    if (m <= 0 || wrong_precision(w, BP_FLOAT64))
        return NAN;
    int64_t right = 0;
    for (int64_t r0 = 0; r0 < m; r0 += w->rows) {
        int64_t n = m - r0 < w->rows ? m - r0 : w->rows;
        forward_f64(&w->sc[0], sp, X + r0 * n_in, theta, n);
        double *Aout = w->sc[0].act[L - 1];
        output_activate_f64(Aout, w->sc[0].outbuf, n, K, sp->output);
        for (int64_t i = 0; i < n; i++)
            right += core_row_label(Aout + i * K, K) == labels[r0 + i];
    }
    return (double)right / (double)m;
}
