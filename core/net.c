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
 */
#include "core/core_int.h"
#include "core/vmath.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- forward ---- */

/* bias[j] = Θ_l[j, 0]: the strided bias column gathered once per layer and chunk. */
static void gather_bias(double *bias, const double *theta_l, int s_in, int s_out)
{
    for (int j = 0; j < s_out; j++)
        bias[j] = theta_l[(int64_t)j * (s_in + 1)];
}

/* The hot elementwise loops are compiled for AVX-512, AVX2 and baseline x86-64 and picked at
 * load time (GCC function multi-versioning); core/vmath.h keeps the results bit-identical. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(BP_NO_MULTIVERSION)
#define BP_HOT __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BP_HOT
#endif

/* Copies cnt < 8 doubles into a zero-padded vector / back out of one. */
static inline __attribute__((always_inline)) bp_v8d load_part(const double *p, int cnt)
{
    double buf[8] = {0};
    memcpy(buf, p, sizeof(double) * (size_t)cnt);
    return bp_v8_load(buf);
}

static inline __attribute__((always_inline)) void store_part(double *p, const bp_v8d *v,
                                                            int cnt)
{
    double buf[8];
    bp_v8_store(buf, *v);
    memcpy(p, buf, sizeof(double) * (size_t)cnt);
}

/* A = σ(A + bias) over n × s, one pass. */
BP_HOT static void bias_sigmoid(double *A, const double *bias, int64_t n, int s)
{
    const bp_v8d one = bp_v8_splat(1.0);
    int s8 = s & ~7, tail = s - s8;
    for (int64_t i = 0; i < n; i++) {
        double *a = A + i * s;
        for (int j = 0; j < s8; j += 8) {
            bp_v8d mz = -(bp_v8_load(a + j) + bp_v8_load(bias + j));
            bp_v8_store(a + j, one / (one + bp_v8_exp(&mz)));
        }
        if (tail) {
            bp_v8d mz = -(load_part(a + s8, tail) + load_part(bias + s8, tail));
            bp_v8d v = one / (one + bp_v8_exp(&mz));
            store_part(a + s8, &v, tail);
        }
    }
}

/* A = max(A + bias, 0) over n × s, one pass. */
BP_HOT static void bias_relu(double *A, const double *bias, int64_t n, int s)
{
    const bp_v8d zero = bp_v8_splat(0.0);
    int s8 = s & ~7;
    for (int64_t i = 0; i < n; i++) {
        double *a = A + i * s;
        for (int j = 0; j < s8; j += 8) {
            bp_v8d z = bp_v8_load(a + j) + bp_v8_load(bias + j);
            bp_v8_store(a + j, bp_v8_select(z > zero, z, zero));
        }
        for (int j = s8; j < s; j++) {
            double z = a[j] + bias[j];
            a[j] = z > 0.0 ? z : 0.0;
        }
    }
}

/* A = tanh(A + bias) over n × s, one pass. */
BP_HOT static void bias_tanh(double *A, const double *bias, int64_t n, int s)
{
    int s8 = s & ~7, tail = s - s8;
    for (int64_t i = 0; i < n; i++) {
        double *a = A + i * s;
        for (int j = 0; j < s8; j += 8) {
            bp_v8d z = bp_v8_load(a + j) + bp_v8_load(bias + j);
            bp_v8_store(a + j, bp_v8_tanh(&z));
        }
        if (tail) {
            bp_v8d z = load_part(a + s8, tail) + load_part(bias + s8, tail);
            bp_v8d v = bp_v8_tanh(&z);
            store_part(a + s8, &v, tail);
        }
    }
}

/* A += bias over n × s rows (the output layer's z). */
BP_HOT static void bias_add(double *A, const double *bias, int64_t n, int s)
{
    int s8 = s & ~7;
    for (int64_t i = 0; i < n; i++) {
        double *a = A + i * s;
        for (int j = 0; j < s8; j += 8)
            bp_v8_store(a + j, bp_v8_load(a + j) + bp_v8_load(bias + j));
        for (int j = s8; j < s; j++)
            a[j] += bias[j];
    }
}

/* A = g(A + bias) over n × s rows, one pass; g chosen outside the loops. */
static void bias_act(double *A, const double *bias, int64_t n, int s, bp_act g)
{
    switch (g) {
    case BP_ACT_SIGMOID:
        bias_sigmoid(A, bias, n, s);
        break;
    case BP_ACT_TANH:
        bias_tanh(A, bias, n, s);
        break;
    case BP_ACT_RELU:
        bias_relu(A, bias, n, s);
        break;
    }
}

/* Forward pass over one chunk: act[1..L-2] = hidden activations, act[L-1] = output z.
 * X: n × s_0, theta: the unrolled Θ. */
static void forward(core_scratch *w, const bp_spec *sp, const double *X, const double *theta,
                    int64_t n)
{
    int L = sp->n_layers;
    const double *A = X;
    int64_t off = 0;
    for (int l = 0; l + 1 < L; l++) {
        int s_in = sp->sizes[l], s_out = sp->sizes[l + 1];
        const double *th = theta + off;
        double *Z = w->act[l + 1]; /* n × s_out */
        /* Z = A · W_lᵀ: (n × s_in) · (s_in × s_out) */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, s_out, s_in, 1.0, A, s_in,
                    th + 1, s_in + 1, 0.0, Z, s_out);
        gather_bias(w->bias, th, s_in, s_out);
        if (l + 2 < L)
            bias_act(Z, w->bias, n, s_out, sp->hidden);
        else
            bias_add(Z, w->bias, n, s_out);
        A = Z;
        off += (int64_t)s_out * (s_in + 1);
    }
}

/* ---- cost and gradient ---- */

/* What a pass over the output layer's z produces (bit flags). */
enum {
    OUT_COST = 1,  /* the data term's sum */
    OUT_DELTA = 2, /* z := δ_L = (a − y) · inv_m, and colsum */
    OUT_ACT = 4    /* z := a = g_out(z) (prediction, accuracy) */
};

/* Logistic loss summed over N = n·K outputs from z (mode & OUT_COST, else 0), and/or Z
 * overwritten with δ = (σ(z) − y) · inv_m (OUT_DELTA) or with σ(z) (OUT_ACT). σ(z) is
 * 1/(1 + e^{−|z|}) for z ≥ 0 and e^{−|z|}/(1 + e^{−|z|}) below, the same bits in every mode, so
 * bp_cost_eval's labels equal bp_accuracy's. mode is a constant in every caller (the wrappers
 * below), so each gets a loop with only its own work. Y may be NULL without OUT_COST/OUT_DELTA. */
static inline __attribute__((always_inline)) double
out_sigmoid_body(double *Z, const double *Y, int64_t N, double inv_m, int mode)
{
    const bp_v8d one = bp_v8_splat(1.0), zero = bp_v8_splat(0.0), im = bp_v8_splat(inv_m);
    const bp_v8l abs_mask = {INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX,
                             INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX};
    bp_v8d acc = zero;
    for (int64_t i = 0; i < N; i += 8) {
        int cnt = N - i < 8 ? (int)(N - i) : 8;
        bp_v8d z = cnt == 8 ? bp_v8_load(Z + i) : load_part(Z + i, cnt);
        bp_v8d y = zero;
        if (mode & (OUT_COST | OUT_DELTA))
            y = cnt == 8 ? bp_v8_load(Y + i) : load_part(Y + i, cnt);
        bp_v8d mabs = -(bp_v8d)((bp_v8l)z & abs_mask);
        bp_v8d e = bp_v8_exp(&mabs);   /* e^{−|z|} */
        if (mode & OUT_COST) {
            bp_v8d t = bp_v8_log1p01(&e);  /* log(1 + e^{−|z|}) */
            bp_v8d pos = bp_v8_select(z > zero, z, zero), neg = bp_v8_select(z < zero, -z, zero);
            /* y·softplus(−z) + (1−y)·softplus(z) */
            bp_v8d c = y * (neg + t) + (one - y) * (pos + t);
            acc += cnt == 8 ? c : bp_v8_select(bp_v8_first(cnt), c, zero);
        }
        if (mode & (OUT_DELTA | OUT_ACT)) {
            bp_v8d inv = one / (one + e);
            bp_v8d a = bp_v8_select(z >= zero, inv, e * inv);
            bp_v8d d = (mode & OUT_DELTA) ? (a - y) * im : a;
            if (cnt == 8)
                bp_v8_store(Z + i, d);
            else
                store_part(Z + i, &d, cnt);
        }
    }
    return bp_v8_hsum(&acc);
}

BP_HOT static double out_sigmoid_cost(double *Z, const double *Y, int64_t N)
{
    return out_sigmoid_body(Z, Y, N, 0.0, OUT_COST);
}

BP_HOT static double out_sigmoid_cost_delta(double *Z, const double *Y, int64_t N, double inv_m)
{
    return out_sigmoid_body(Z, Y, N, inv_m, OUT_COST | OUT_DELTA);
}

BP_HOT static void out_sigmoid_delta(double *Z, const double *Y, int64_t N, double inv_m)
{
    out_sigmoid_body(Z, Y, N, inv_m, OUT_DELTA);
}

BP_HOT static double out_sigmoid_cost_act(double *Z, const double *Y, int64_t N)
{
    return out_sigmoid_body(Z, Y, N, 0.0, OUT_COST | OUT_ACT);
}

BP_HOT static void out_sigmoid_act(double *Z, int64_t N)
{
    out_sigmoid_body(Z, NULL, N, 0.0, OUT_ACT);
}

/* E = e^Z over N values (Z already max-shifted, so every value is ≤ 0). */
BP_HOT static void exp_array(double *E, const double *Z, int64_t N)
{
    for (int64_t i = 0; i < N; i += 8) {
        int cnt = N - i < 8 ? (int)(N - i) : 8;
        bp_v8d z = cnt == 8 ? bp_v8_load(Z + i) : load_part(Z + i, cnt);
        bp_v8d e = bp_v8_exp(&z);
        if (cnt == 8)
            bp_v8_store(E + i, e);
        else
            store_part(E + i, &e, cnt);
    }
}

/* Softmax's first half over n rows of K: each row of Z shifted by its max (in place), then
 * E = e^Z for all n × K at once. */
static void softmax_shift_exp(double *E, double *Z, int64_t n, int K)
{
    for (int64_t i = 0; i < n; i++) {
        double *z = Z + i * K;
        double mx = z[0];
        for (int k = 1; k < K; k++)
            mx = z[k] > mx ? z[k] : mx;
        for (int k = 0; k < K; k++)
            z[k] -= mx;
    }
    exp_array(E, Z, n * K);
}

/* Σ_k e[k] over one row of K, in order (every softmax pass sums the same way). */
static double row_sum(const double *e, int K)
{
    double sum = 0.0;
    for (int k = 0; k < K; k++)
        sum += e[k];
    return sum;
}

/* One row's softmax δ from e = e^{z − max} and sum = Σe: z := e·(inv_m/sum) − y·inv_m. */
static void softmax_row_delta(double *z, const double *e, const double *y, int K, double sum,
                              double inv_m)
{
    double inv = inv_m / sum;
    for (int k = 0; k < K; k++)
        z[k] = e[k] * inv - y[k] * inv_m;
}

/* Turns the output layer's z (n × K, in place) into a = g_out(z). E: n × K scratch. */
static void output_activate(double *Z, double *E, int64_t n, int K, bp_out out)
{
    switch (out) {
    case BP_OUT_SIGMOID:
        out_sigmoid_act(Z, n * K);
        break;
    case BP_OUT_SOFTMAX:
        softmax_shift_exp(E, Z, n, K);
        for (int64_t i = 0; i < n; i++) {
            double *z = Z + i * K;
            const double *e = E + i * K;
            double inv = 1.0 / row_sum(e, K);
            for (int k = 0; k < K; k++)
                z[k] = e[k] * inv;
        }
        break;
    case BP_OUT_LINEAR:
        break;
    }
}

/* colsum[k] = Σ_i δ_L[i, k] over the n × K deltas in Z. */
static void delta_colsum(double *colsum, const double *Z, int64_t n, int K)
{
    memset(colsum, 0, sizeof(double) * (size_t)K);
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < K; k++)
            colsum[k] += Z[i * K + k];
}

/* The output layer of one chunk, by mode (OUT_* flags; at least one of COST and DELTA; ACT
 * only with COST): returns the data term summed over its rows (not yet divided by m; 0 without
 * OUT_COST). OUT_DELTA overwrites Z (n × K) with δ_L = (a − y) · inv_m and sets
 * colsum[k] = Σ_i δ_L[i, k]; OUT_ACT overwrites Z with a = g_out(z), bit for bit what
 * output_activate gives. The cost's arithmetic is the same in every mode. E: n × K scratch for
 * softmax. */
static double output_cost(double *Z, double *colsum, double *E, const double *Y, int64_t n,
                          int K, bp_out out, int mode, double inv_m)
{
    double cost = 0.0;
    int want_cost = (mode & OUT_COST) != 0, want_delta = (mode & OUT_DELTA) != 0;
    switch (out) {
    case BP_OUT_SIGMOID:
        if (mode == (OUT_COST | OUT_DELTA))
            cost = out_sigmoid_cost_delta(Z, Y, n * K, inv_m);
        else if (mode == OUT_DELTA)
            out_sigmoid_delta(Z, Y, n * K, inv_m);
        else if (mode == (OUT_COST | OUT_ACT))
            cost = out_sigmoid_cost_act(Z, Y, n * K);
        else
            cost = out_sigmoid_cost(Z, Y, n * K);
        break;
    case BP_OUT_SOFTMAX:
        /* shift and exponentiate, then per row: log-sum-exp */
        softmax_shift_exp(E, Z, n, K);
        for (int64_t i = 0; i < n; i++) {
            double *z = Z + i * K;
            const double *e = E + i * K, *y = Y + i * K;
            double sum = row_sum(e, K);
            if (want_cost) {
                double lse = log(sum);
                for (int k = 0; k < K; k++)
                    cost -= y[k] * (z[k] - lse); /* −y log softmax(z) */
            }
            if (want_delta) {
                softmax_row_delta(z, e, y, K, sum, inv_m);
            } else if (mode & OUT_ACT) {
                double inv = 1.0 / sum;
                for (int k = 0; k < K; k++)
                    z[k] = e[k] * inv;
            }
        }
        break;
    case BP_OUT_LINEAR:
        for (int64_t i = 0; i < n * K; i++) {
            double r = Z[i] - Y[i];
            if (want_cost)
                cost += 0.5 * r * r;
            if (want_delta)
                Z[i] = r * inv_m;
        }
        break;
    }
    if (want_delta)
        delta_colsum(colsum, Z, n, K);
    return cost;
}

/* OUT_DELTA after OUT_COST | OUT_ACT left a = g_out(z) in Z (and e^{z − max} in E for
 * softmax): Z := δ_L and colsum, bit for bit what output_cost's OUT_DELTA gives from z (the
 * same operations on the same values: a − y, and softmax_row_delta). */
static void output_delta_from_act(double *Z, double *colsum, const double *E, const double *Y,
                                  int64_t n, int K, bp_out out, double inv_m)
{
    if (out == BP_OUT_SOFTMAX) {
        for (int64_t i = 0; i < n; i++)
            softmax_row_delta(Z + i * K, E + i * K, Y + i * K, K, row_sum(E + i * K, K), inv_m);
    } else {
        for (int64_t i = 0; i < n * K; i++)
            Z[i] = (Z[i] - Y[i]) * inv_m;
    }
    delta_colsum(colsum, Z, n, K);
}

/* δ_l = S .* g′(A) written over A (n × s), colsum[j] = Σ_i δ_l[i, j], in one pass.
 * g′ from the outputs a: sigmoid a(1 − a), tanh 1 − a², relu [a > 0]. */
BP_HOT static void delta_hidden(double *A, double *colsum, const double *S, int64_t n, int s,
                                bp_act g)
{
    const bp_v8d one = bp_v8_splat(1.0), zero = bp_v8_splat(0.0);
    int s8 = s & ~7;
    memset(colsum, 0, sizeof(double) * (size_t)s);
    for (int64_t i = 0; i < n; i++) {
        double *a = A + i * s;
        const double *r = S + i * s;
        for (int j = 0; j < s8; j += 8) {
            bp_v8d av = bp_v8_load(a + j), rv = bp_v8_load(r + j), d;
            if (g == BP_ACT_SIGMOID)
                d = rv * (av * (one - av));
            else if (g == BP_ACT_TANH)
                d = rv * (one - av * av);
            else
                d = bp_v8_select(av > zero, rv, zero);
            bp_v8_store(a + j, d);
            bp_v8_store(colsum + j, bp_v8_load(colsum + j) + d);
        }
        for (int j = s8; j < s; j++) {
            double d;
            if (g == BP_ACT_SIGMOID)
                d = r[j] * (a[j] * (1.0 - a[j]));
            else if (g == BP_ACT_TANH)
                d = r[j] * (1.0 - a[j] * a[j]);
            else
                d = a[j] > 0.0 ? r[j] : 0.0;
            a[j] = d;
            colsum[j] += d;
        }
    }
}

/* Backward pass over one chunk whose forward pass and output δ are in w. Accumulates into
 * dtheta. X: n × s_0 (A_0). */
static void backward(double *dtheta, core_scratch *w, const bp_spec *sp, const double *X,
                     const double *theta, int64_t n)
{
    int L = sp->n_layers;
    for (int l = L - 2; l >= 0; l--) {
        int s_in = sp->sizes[l], s_out = sp->sizes[l + 1];
        int64_t off = bp_layer_offset(sp, l);
        const double *D = w->act[l + 1];             /* δ_{l+1}: n × s_out */
        const double *A = l == 0 ? X : w->act[l];    /* A_l: n × s_in */
        double *dth = dtheta + off;
        /* dW_l += δ_{l+1}ᵀ · A_l: (s_out × n) · (n × s_in), into dtheta[:, 1:] */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s_out, s_in, (int)n, 1.0, D, s_out,
                    A, s_in, 1.0, dth + 1, s_in + 1);
        for (int j = 0; j < s_out; j++)
            dth[(int64_t)j * (s_in + 1)] += w->colsum[j];
        if (l > 0) {
            /* S = δ_{l+1} · W_l: (n × s_out) · (s_out × s_in) */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, s_in, s_out, 1.0, D,
                        s_out, theta + off + 1, s_in + 1, 0.0, w->scratch, s_in);
            delta_hidden(w->act[l], w->colsum, w->scratch, n, s_in, sp->hidden);
        }
    }
}

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
    if (K == 1)
        return a[0] >= 0.5 ? 1 : 0;
    int32_t best = 0;
    for (int k = 1; k < K; k++)
        if (a[k] > a[best])
            best = k;
    return best;
}

/* What one pass computes, and each shard's part of it (cost_pass). */
typedef struct {
    bp_work *w;
    double *dtheta;
    const double *X, *Y, *theta;
    const int32_t *labels;
    int64_t m;
    int S, mode;
    double inv_m;
    double data[BP_MAX_SHARDS];   /* shard s's data-term sum */
    int64_t right[BP_MAX_SHARDS]; /* shard s's rows predicted right */
} pass;

/* Shard s of a pass, on thread `thread`'s scratch: per chunk of its rows, forward, the output
 * layer by mode (OUT_COST, OUT_DELTA with backward into its gradient, OUT_ACT with labels
 * counted; ACT and DELTA together: labels, then δ). Shard 0 accumulates into the caller's
 * dtheta, shard s ≥ 1 into w->grads[s-1] (zeroed here). */
static void shard_run(void *arg, int64_t s, int thread)
{
    pass *p = arg;
    bp_work *w = p->w;
    core_scratch *sc = &w->sc[thread];
    const bp_spec *sp = &w->spec;
    int L = sp->n_layers, n_in = sp->sizes[0], K = sp->sizes[L - 1];
    int64_t r_begin = s * p->m / p->S, r_end = (s + 1) * p->m / p->S;
    double *g = s == 0 ? p->dtheta : w->grads[s - 1];
    if (s > 0 && (p->mode & OUT_DELTA))
        memset(g, 0, sizeof(double) * (size_t)bp_param_count(sp));
    double data = 0.0;
    int64_t right = 0;
    for (int64_t r0 = r_begin; r0 < r_end; r0 += w->rows) {
        int64_t n = r_end - r0 < w->rows ? r_end - r0 : w->rows;
        const double *Xc = p->X + r0 * n_in;
        double *Aout = sc->act[L - 1];
        forward(sc, sp, Xc, p->theta, n);
        /* With both, the activations come first (labels counted), then δ from them. */
        int first = (p->mode & OUT_ACT) ? p->mode & ~OUT_DELTA : p->mode;
        data += output_cost(Aout, sc->colsum, sc->outbuf, p->Y + r0 * K, n, K, sp->output, first,
                            p->inv_m);
        if (p->mode & OUT_ACT)
            for (int64_t i = 0; i < n; i++)
                right += core_row_label(Aout + i * K, K) == p->labels[r0 + i];
        if ((p->mode & OUT_ACT) && (p->mode & OUT_DELTA))
            output_delta_from_act(Aout, sc->colsum, sc->outbuf, p->Y + r0 * K, n, K, sp->output,
                                  p->inv_m);
        if (p->mode & OUT_DELTA)
            backward(g, sc, sp, Xc, p->theta, n);
    }
    p->data[s] = data;
    p->right[s] = right;
}

/* Parameters per block of the gradient tree (a parallel-for index). */
#define TREE_BLOCK 8192

/* Block b of the pairwise tree: part[0][i] = Σ_s part[s][i] over the block's i, level by
 * level (part[s] += part[s + 2^k] for s a multiple of 2^(k+1)): a fixed order. */
static void tree_block(void *arg, int64_t b, int thread)
{
    (void)thread;
    pass *p = arg;
    int64_t P = bp_param_count(&p->w->spec);
    int64_t i0 = b * TREE_BLOCK, i1 = i0 + TREE_BLOCK < P ? i0 + TREE_BLOCK : P;
    for (int step = 1; step < p->S; step *= 2)
        for (int s = 0; s + step < p->S; s += 2 * step) {
            double *dst = s == 0 ? p->dtheta : p->w->grads[s - 1];
            const double *src = p->w->grads[s + step - 1];
            for (int64_t i = i0; i < i1; i++)
                dst[i] += src[i];
        }
}

/* The one pass behind bp_cost_grad, bp_grad, bp_cost_eval and bp_cost_grad_eval: the shards
 * (shard_run) on the workspace's pool, their gradients, data sums and counts added by the
 * same fixed tree, then the regularization. Returns J (mode & OUT_COST) or 0. The cost's
 * arithmetic does not depend on the other flags, so all three give the same bits for J. */
static double cost_pass(double *dtheta, int64_t *correct, bp_work *w, const double *X,
                        const double *Y, const int32_t *labels, const double *theta, int64_t m,
                        double lambda, int64_t m_reg, int mode)
{
    const bp_spec *sp = &w->spec;
    if (m_reg <= 0)
        m_reg = m;
    pass p = {.w = w, .dtheta = dtheta, .X = X, .Y = Y, .theta = theta, .labels = labels,
              .m = m, .mode = mode, .inv_m = 1.0 / (double)m};
    p.S = bp_shards(sp, m);
    if ((mode & OUT_DELTA) && p.S > w->n_grads + 1)
        p.S = w->n_grads + 1; /* more rows than the workspace was sized for */
    core_parallel_for(w->pool, p.S, shard_run, &p);
    if (mode & OUT_DELTA && p.S > 1)
        core_parallel_for(w->pool, (bp_param_count(sp) + TREE_BLOCK - 1) / TREE_BLOCK,
                          tree_block, &p);
    for (int step = 1; step < p.S; step *= 2)
        for (int s = 0; s + step < p.S; s += 2 * step) {
            p.data[s] += p.data[s + step];
            p.right[s] += p.right[s + step];
        }
    if (correct)
        *correct = p.right[0];
    double cost = p.data[0] * p.inv_m;
    if (lambda != 0.0) {
        double reg = regularize((mode & OUT_DELTA) ? dtheta : NULL, sp, theta, lambda, m_reg);
        cost += reg;
    }
    return (mode & OUT_COST) ? cost : 0.0;
}

double bp_cost_grad(double *dtheta, bp_work *w, const double *X, const double *Y,
                    const double *theta, int64_t m, double lambda, int64_t m_reg)
{
    if (m <= 0)
        return NAN;
    return cost_pass(dtheta, NULL, w, X, Y, NULL, theta, m, lambda, m_reg,
                     dtheta ? OUT_COST | OUT_DELTA : OUT_COST);
}

void bp_grad(double *dtheta, bp_work *w, const double *X, const double *Y, const double *theta,
             int64_t m, double lambda, int64_t m_reg)
{
    if (m <= 0)
        return;
    cost_pass(dtheta, NULL, w, X, Y, NULL, theta, m, lambda, m_reg, OUT_DELTA);
}

double bp_cost_eval(int64_t *correct, bp_work *w, const double *X, const double *Y,
                    const int32_t *labels, const double *theta, int64_t m, double lambda,
                    int64_t m_reg)
{
    return bp_cost_grad_eval(NULL, correct, w, X, Y, labels, theta, m, lambda, m_reg);
}

double bp_cost_grad_eval(double *dtheta, int64_t *correct, bp_work *w, const double *X,
                         const double *Y, const int32_t *labels, const double *theta, int64_t m,
                         double lambda, int64_t m_reg)
{
    if (correct)
        *correct = 0;
    if (m <= 0)
        return NAN;
    int mode = OUT_COST | (dtheta ? OUT_DELTA : 0) | (labels ? OUT_ACT : 0);
    return cost_pass(dtheta, correct, w, X, Y, labels, theta, m, lambda, m_reg, mode);
}

/* ---- prediction ---- */

void bp_predict(double *outputs, int32_t *labels, bp_work *w, const double *X,
                const double *theta, int64_t m)
{
    const bp_spec *sp = &w->spec;
    int L = sp->n_layers, n_in = sp->sizes[0], K = sp->sizes[L - 1];
    for (int64_t r0 = 0; r0 < m; r0 += w->rows) {
        int64_t n = m - r0 < w->rows ? m - r0 : w->rows;
        forward(&w->sc[0], sp, X + r0 * n_in, theta, n);
        double *Aout = w->sc[0].act[L - 1];
        output_activate(Aout, w->sc[0].outbuf, n, K, sp->output);
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
    if (m <= 0)
        return NAN;
    int64_t right = 0;
    for (int64_t r0 = 0; r0 < m; r0 += w->rows) {
        int64_t n = m - r0 < w->rows ? m - r0 : w->rows;
        forward(&w->sc[0], sp, X + r0 * n_in, theta, n);
        double *Aout = w->sc[0].act[L - 1];
        output_activate(Aout, w->sc[0].outbuf, n, K, sp->output);
        for (int64_t i = 0; i < n; i++)
            right += core_row_label(Aout + i * K, K) == labels[r0 + i];
    }
    return (double)right / (double)m;
}
