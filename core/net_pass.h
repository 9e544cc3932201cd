/* net_pass.h — the precision-dependent body of core/net.c's passes, included by net.c once per
 * precision (llm.c style, one source for both): net.c defines
 *   real        the element type of X, Y, the activations, deltas and shard gradients
 *   GEMM        cblas_dgemm or cblas_sgemm
 *   RV_LOAD(p), RV_STORE(p, v)   8 reals to / from a bp_v8d (vmath.h): the elementwise
 *               kernels always compute in double, so float inputs are widened exactly and the
 *               result rounded once: the same bits on every target_clones version
 *   NP(name)    name with the precision's suffix (_f64, _f32)
 * and the shared OUT_* flags, BP_HOT and TREE_BLOCK. Not a header of its own: nothing else
 * includes it. Shapes and the algorithm: net.c's opening comment.
 */

static int32_t NP(row_label)(const real *a, int K);

/* bias[j] = Θ_l[j, 0]: the strided bias column gathered once per layer and chunk. */
static void NP(gather_bias)(real *bias, const real *theta_l, int s_in, int s_out)
{
    for (int j = 0; j < s_out; j++)
        bias[j] = theta_l[(int64_t)j * (s_in + 1)];
}

/* Copies cnt < 8 doubles into a zero-padded vector / back out of one. */
static inline __attribute__((always_inline)) bp_v8d NP(load_part)(const real *p, int cnt)
{
    real buf[8] = {0};
    memcpy(buf, p, sizeof(real) * (size_t)cnt);
    return RV_LOAD(buf);
}

static inline __attribute__((always_inline)) void NP(store_part)(real *p, const bp_v8d *v,
                                                            int cnt)
{
    real buf[8];
    RV_STORE(buf, *v);
    memcpy(p, buf, sizeof(real) * (size_t)cnt);
}

/* A = σ(A + bias) over n × s, one pass. */
BP_HOT static void NP(bias_sigmoid)(real *A, const real *bias, int64_t n, int s)
{
    const bp_v8d one = bp_v8_splat(1.0);
    int s8 = s & ~7, tail = s - s8;
    for (int64_t i = 0; i < n; i++) {
        real *a = A + i * s;
        for (int j = 0; j < s8; j += 8) {
            bp_v8d mz = -(RV_LOAD(a + j) + RV_LOAD(bias + j));
            RV_STORE(a + j, one / (one + bp_v8_exp(&mz)));
        }
        if (tail) {
            bp_v8d mz = -(NP(load_part)(a + s8, tail) + NP(load_part)(bias + s8, tail));
            bp_v8d v = one / (one + bp_v8_exp(&mz));
            NP(store_part)(a + s8, &v, tail);
        }
    }
}

/* A = max(A + bias, 0) over n × s, one pass. */
BP_HOT static void NP(bias_relu)(real *A, const real *bias, int64_t n, int s)
{
    const bp_v8d zero = bp_v8_splat(0.0);
    int s8 = s & ~7;
    for (int64_t i = 0; i < n; i++) {
        real *a = A + i * s;
        for (int j = 0; j < s8; j += 8) {
            bp_v8d z = RV_LOAD(a + j) + RV_LOAD(bias + j);
            RV_STORE(a + j, bp_v8_select(z > zero, z, zero));
        }
        for (int j = s8; j < s; j++) {
            double z = (double)a[j] + bias[j];
            a[j] = z > 0.0 ? z : 0.0;
        }
    }
}

/* A = tanh(A + bias) over n × s, one pass. */
BP_HOT static void NP(bias_tanh)(real *A, const real *bias, int64_t n, int s)
{
    int s8 = s & ~7, tail = s - s8;
    for (int64_t i = 0; i < n; i++) {
        real *a = A + i * s;
        for (int j = 0; j < s8; j += 8) {
            bp_v8d z = RV_LOAD(a + j) + RV_LOAD(bias + j);
            RV_STORE(a + j, bp_v8_tanh(&z));
        }
        if (tail) {
            bp_v8d z = NP(load_part)(a + s8, tail) + NP(load_part)(bias + s8, tail);
            bp_v8d v = bp_v8_tanh(&z);
            NP(store_part)(a + s8, &v, tail);
        }
    }
}

/* A += bias over n × s rows (the output layer's z). */
BP_HOT static void NP(bias_add)(real *A, const real *bias, int64_t n, int s)
{
    int s8 = s & ~7;
    for (int64_t i = 0; i < n; i++) {
        real *a = A + i * s;
        for (int j = 0; j < s8; j += 8)
            RV_STORE(a + j, RV_LOAD(a + j) + RV_LOAD(bias + j));
        for (int j = s8; j < s; j++)
            a[j] = (real)((double)a[j] + bias[j]);
    }
}

/* A = g(A + bias) over n × s rows, one pass; g chosen outside the loops. */
static void NP(bias_act)(real *A, const real *bias, int64_t n, int s, bp_act g)
{
    switch (g) {
    case BP_ACT_SIGMOID:
        NP(bias_sigmoid)(A, bias, n, s);
        break;
    case BP_ACT_TANH:
        NP(bias_tanh)(A, bias, n, s);
        break;
    case BP_ACT_RELU:
        NP(bias_relu)(A, bias, n, s);
        break;
    }
}

/* Forward pass over one chunk: act[1..L-2] = hidden activations, act[L-1] = output z.
 * X: n × s_0, theta: the unrolled Θ. */
static void NP(forward)(core_scratch *w, const bp_spec *sp, const real *X, const real *theta,
                    int64_t n)
{
    int L = sp->n_layers;
    const real *A = X;
    int64_t off = 0;
    for (int l = 0; l + 1 < L; l++) {
        int s_in = sp->sizes[l], s_out = sp->sizes[l + 1];
        const real *th = theta + off;
        real *Z = w->act[l + 1]; /* n × s_out */
        /* Z = A · W_lᵀ: (n × s_in) · (s_in × s_out) */
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, s_out, s_in, 1.0, A, s_in,
                    th + 1, s_in + 1, 0.0, Z, s_out);
        NP(gather_bias)(w->bias, th, s_in, s_out);
        if (l + 2 < L)
            NP(bias_act)(Z, w->bias, n, s_out, sp->hidden);
        else
            NP(bias_add)(Z, w->bias, n, s_out);
        A = Z;
        off += (int64_t)s_out * (s_in + 1);
    }
}


/* Logistic loss summed over N = n·K outputs from z (mode & OUT_COST, else 0), and/or Z
 * overwritten with δ = (σ(z) − y) · inv_m (OUT_DELTA) or with σ(z) (OUT_ACT). σ(z) is
 * 1/(1 + e^{−|z|}) for z ≥ 0 and e^{−|z|}/(1 + e^{−|z|}) below, the same bits in every mode, so
 * bp_cost_eval's labels equal bp_accuracy's. mode is a constant in every caller (the wrappers
 * below), so each gets a loop with only its own work. Y may be NULL without OUT_COST/OUT_DELTA. */
static inline __attribute__((always_inline)) double
NP(out_sigmoid_body)(real *Z, const real *Y, int64_t N, double inv_m, int mode)
{
    const bp_v8d one = bp_v8_splat(1.0), zero = bp_v8_splat(0.0), im = bp_v8_splat(inv_m);
    const bp_v8l abs_mask = {INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX,
                             INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX};
    bp_v8d acc = zero;
    for (int64_t i = 0; i < N; i += 8) {
        int cnt = N - i < 8 ? (int)(N - i) : 8;
        bp_v8d z = cnt == 8 ? RV_LOAD(Z + i) : NP(load_part)(Z + i, cnt);
        bp_v8d y = zero;
        if (mode & (OUT_COST | OUT_DELTA))
            y = cnt == 8 ? RV_LOAD(Y + i) : NP(load_part)(Y + i, cnt);
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
                RV_STORE(Z + i, d);
            else
                NP(store_part)(Z + i, &d, cnt);
        }
    }
    return bp_v8_hsum(&acc);
}

BP_HOT static double NP(out_sigmoid_cost)(real *Z, const real *Y, int64_t N)
{
    return NP(out_sigmoid_body)(Z, Y, N, 0.0, OUT_COST);
}

BP_HOT static double NP(out_sigmoid_cost_delta)(real *Z, const real *Y, int64_t N, double inv_m)
{
    return NP(out_sigmoid_body)(Z, Y, N, inv_m, OUT_COST | OUT_DELTA);
}

BP_HOT static void NP(out_sigmoid_delta)(real *Z, const real *Y, int64_t N, double inv_m)
{
    NP(out_sigmoid_body)(Z, Y, N, inv_m, OUT_DELTA);
}

BP_HOT static double NP(out_sigmoid_cost_act)(real *Z, const real *Y, int64_t N)
{
    return NP(out_sigmoid_body)(Z, Y, N, 0.0, OUT_COST | OUT_ACT);
}

BP_HOT static void NP(out_sigmoid_act)(real *Z, int64_t N)
{
    NP(out_sigmoid_body)(Z, NULL, N, 0.0, OUT_ACT);
}

/* E = e^Z over N values (Z already max-shifted, so every value is ≤ 0). */
BP_HOT static void NP(exp_array)(real *E, const real *Z, int64_t N)
{
    for (int64_t i = 0; i < N; i += 8) {
        int cnt = N - i < 8 ? (int)(N - i) : 8;
        bp_v8d z = cnt == 8 ? RV_LOAD(Z + i) : NP(load_part)(Z + i, cnt);
        bp_v8d e = bp_v8_exp(&z);
        if (cnt == 8)
            RV_STORE(E + i, e);
        else
            NP(store_part)(E + i, &e, cnt);
    }
}

/* Softmax's first half over n rows of K: each row of Z shifted by its max (in place), then
 * E = e^Z for all n × K at once. */
static void NP(softmax_shift_exp)(real *E, real *Z, int64_t n, int K)
{
    for (int64_t i = 0; i < n; i++) {
        real *z = Z + i * K;
        double mx = z[0];
        for (int k = 1; k < K; k++)
            mx = z[k] > mx ? z[k] : mx;
        for (int k = 0; k < K; k++)
            z[k] -= mx;
    }
    NP(exp_array)(E, Z, n * K);
}

/* Σ_k e[k] over one row of K, in order (every softmax pass sums the same way). */
static double NP(row_sum)(const real *e, int K)
{
    double sum = 0.0;
    for (int k = 0; k < K; k++)
        sum += e[k];
    return sum;
}

/* One row's softmax δ from e = e^{z − max} and sum = Σe: z := e·(inv_m/sum) − y·inv_m. */
static void NP(softmax_row_delta)(real *z, const real *e, const real *y, int K, double sum,
                              double inv_m)
{
    double inv = inv_m / sum;
    for (int k = 0; k < K; k++)
        z[k] = e[k] * inv - y[k] * inv_m;
}

/* Turns the output layer's z (n × K, in place) into a = g_out(z). E: n × K scratch. */
__attribute__((unused)) /* float64 only: prediction */
static void NP(output_activate)(real *Z, real *E, int64_t n, int K, bp_out out)
{
    switch (out) {
    case BP_OUT_SIGMOID:
        NP(out_sigmoid_act)(Z, n * K);
        break;
    case BP_OUT_SOFTMAX:
        NP(softmax_shift_exp)(E, Z, n, K);
        for (int64_t i = 0; i < n; i++) {
            real *z = Z + i * K;
            const real *e = E + i * K;
            double inv = 1.0 / NP(row_sum)(e, K);
            for (int k = 0; k < K; k++)
                z[k] = e[k] * inv;
        }
        break;
    case BP_OUT_LINEAR:
        break;
    }
}

/* colsum[k] = Σ_i δ_L[i, k] over the n × K deltas in Z. */
static void NP(delta_colsum)(real *colsum, const real *Z, int64_t n, int K)
{
    memset(colsum, 0, sizeof(real) * (size_t)K);
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < K; k++)
            colsum[k] += Z[i * K + k];
}

/* The output layer of one chunk, by mode (OUT_* flags; at least one of COST and DELTA; ACT
 * only with COST): returns the data term summed over its rows (not yet divided by m; 0 without
 * OUT_COST). OUT_DELTA overwrites Z (n × K) with δ_L = (a − y) · inv_m and sets
 * colsum[k] = Σ_i δ_L[i, k]; OUT_ACT overwrites Z with a = g_out(z), bit for bit what
 * NP(output_activate) gives. The cost's arithmetic is the same in every mode. E: n × K scratch for
 * softmax. */
static double NP(output_cost)(real *Z, real *colsum, real *E, const real *Y, int64_t n,
                          int K, bp_out out, int mode, double inv_m)
{
    double cost = 0.0;
    int want_cost = (mode & OUT_COST) != 0, want_delta = (mode & OUT_DELTA) != 0;
    switch (out) {
    case BP_OUT_SIGMOID:
        if (mode == (OUT_COST | OUT_DELTA))
            cost = NP(out_sigmoid_cost_delta)(Z, Y, n * K, inv_m);
        else if (mode == OUT_DELTA)
            NP(out_sigmoid_delta)(Z, Y, n * K, inv_m);
        else if (mode == (OUT_COST | OUT_ACT))
            cost = NP(out_sigmoid_cost_act)(Z, Y, n * K);
        else
            cost = NP(out_sigmoid_cost)(Z, Y, n * K);
        break;
    case BP_OUT_SOFTMAX:
        /* shift and exponentiate, then per row: log-sum-exp */
        NP(softmax_shift_exp)(E, Z, n, K);
        for (int64_t i = 0; i < n; i++) {
            real *z = Z + i * K;
            const real *e = E + i * K, *y = Y + i * K;
            double sum = NP(row_sum)(e, K);
            if (want_cost) {
                double lse = log(sum);
                for (int k = 0; k < K; k++)
                    cost -= y[k] * (z[k] - lse); /* −y log softmax(z) */
            }
            if (want_delta) {
                NP(softmax_row_delta)(z, e, y, K, sum, inv_m);
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
        NP(delta_colsum)(colsum, Z, n, K);
    return cost;
}

/* OUT_DELTA after OUT_COST | OUT_ACT left a = g_out(z) in Z (and e^{z − max} in E for
 * softmax): Z := δ_L and colsum, bit for bit what NP(output_cost)'s OUT_DELTA gives from z (the
 * same operations on the same values: a − y, and NP(softmax_row_delta)). */
static void NP(output_delta_from_act)(real *Z, real *colsum, const real *E, const real *Y,
                                  int64_t n, int K, bp_out out, double inv_m)
{
    if (out == BP_OUT_SOFTMAX) {
        for (int64_t i = 0; i < n; i++)
            NP(softmax_row_delta)(Z + i * K, E + i * K, Y + i * K, K, NP(row_sum)(E + i * K, K), inv_m);
    } else {
        for (int64_t i = 0; i < n * K; i++)
            Z[i] = (Z[i] - Y[i]) * inv_m;
    }
    NP(delta_colsum)(colsum, Z, n, K);
}

/* δ_l = S .* g′(A) written over A (n × s), colsum[j] = Σ_i δ_l[i, j], in one pass.
 * g′ from the outputs a: sigmoid a(1 − a), tanh 1 − a², relu [a > 0]. */
BP_HOT static void NP(delta_hidden)(real *A, real *colsum, const real *S, int64_t n, int s,
                                bp_act g)
{
    const bp_v8d one = bp_v8_splat(1.0), zero = bp_v8_splat(0.0);
    int s8 = s & ~7;
    memset(colsum, 0, sizeof(real) * (size_t)s);
    for (int64_t i = 0; i < n; i++) {
        real *a = A + i * s;
        const real *r = S + i * s;
        for (int j = 0; j < s8; j += 8) {
            bp_v8d av = RV_LOAD(a + j), rv = RV_LOAD(r + j), d;
            if (g == BP_ACT_SIGMOID)
                d = rv * (av * (one - av));
            else if (g == BP_ACT_TANH)
                d = rv * (one - av * av);
            else
                d = bp_v8_select(av > zero, rv, zero);
            RV_STORE(a + j, d);
            RV_STORE(colsum + j, RV_LOAD(colsum + j) + d);
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
static void NP(backward)(real *dtheta, core_scratch *w, const bp_spec *sp, const real *X,
                     const real *theta, int64_t n)
{
    int L = sp->n_layers;
    for (int l = L - 2; l >= 0; l--) {
        int s_in = sp->sizes[l], s_out = sp->sizes[l + 1];
        int64_t off = bp_layer_offset(sp, l);
        const real *D = w->act[l + 1];             /* δ_{l+1}: n × s_out */
        const real *A = l == 0 ? X : w->act[l];    /* A_l: n × s_in */
        real *dth = dtheta + off;
        /* dW_l += δ_{l+1}ᵀ · A_l: (s_out × n) · (n × s_in), into dtheta[:, 1:] */
        GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, s_out, s_in, (int)n, 1.0, D, s_out,
                    A, s_in, 1.0, dth + 1, s_in + 1);
        const real *colsum = w->colsum;         /* Σ_i δ_{l+1}[i, :] */
        for (int j = 0; j < s_out; j++)
            dth[(int64_t)j * (s_in + 1)] += colsum[j];
        if (l > 0) {
            /* S = δ_{l+1} · W_l: (n × s_out) · (s_out × s_in) */
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, s_in, s_out, 1.0, D,
                        s_out, theta + off + 1, s_in + 1, 0.0, w->scratch, s_in);
            NP(delta_hidden)(w->act[l], w->colsum, w->scratch, n, s_in, sp->hidden);
        }
    }
}


/* What one pass computes, and each shard's part of it (cost_pass). */
typedef struct {
    bp_work *w;
    real *g0;                     /* shard 0's gradient (accumulated into) */
    const real *X, *Y, *theta;
    const int32_t *labels;
    int64_t m;
    int S, mode;
    double inv_m;
    double data[BP_MAX_SHARDS];   /* shard s's data-term sum */
    int64_t right[BP_MAX_SHARDS]; /* shard s's rows predicted right */
} NP(pass);

/* Shard s of a pass, on thread `thread`'s scratch: per chunk of its rows, forward, the output
 * layer by mode (OUT_COST, OUT_DELTA with backward into its gradient, OUT_ACT with labels
 * counted; ACT and DELTA together: labels, then δ). Shard 0 accumulates into g0, shard s ≥ 1
 * into w->grads[s-1] (zeroed here). */
static void NP(shard_run)(void *arg, int64_t s, int thread)
{
    NP(pass) *p = arg;
    bp_work *w = p->w;
    core_scratch *sc = &w->sc[thread];
    const bp_spec *sp = &w->spec;
    int L = sp->n_layers, n_in = sp->sizes[0], K = sp->sizes[L - 1];
    int64_t r_begin = s * p->m / p->S, r_end = (s + 1) * p->m / p->S;
    real *g = s == 0 ? p->g0 : w->grads[s - 1];
    if (s > 0 && (p->mode & OUT_DELTA))
        memset(g, 0, sizeof(real) * (size_t)bp_param_count(sp));
    double data = 0.0;
    int64_t right = 0;
    for (int64_t r0 = r_begin; r0 < r_end; r0 += w->rows) {
        int64_t n = r_end - r0 < w->rows ? r_end - r0 : w->rows;
        const real *Xc = p->X + r0 * n_in, *Yc = p->Y + r0 * K;
        real *Aout = sc->act[L - 1];
        NP(forward)(sc, sp, Xc, p->theta, n);
        /* With both, the activations come first (labels counted), then δ from them. */
        int first = (p->mode & OUT_ACT) ? p->mode & ~OUT_DELTA : p->mode;
        data += NP(output_cost)(Aout, sc->colsum, sc->outbuf, Yc, n, K, sp->output, first,
                                p->inv_m);
        if (p->mode & OUT_ACT)
            for (int64_t i = 0; i < n; i++)
                right += NP(row_label)(Aout + i * K, K) == p->labels[r0 + i];
        if ((p->mode & OUT_ACT) && (p->mode & OUT_DELTA))
            NP(output_delta_from_act)(Aout, sc->colsum, sc->outbuf, Yc, n, K, sp->output,
                                      p->inv_m);
        if (p->mode & OUT_DELTA)
            NP(backward)(g, sc, sp, Xc, p->theta, n);
    }
    p->data[s] = data;
    p->right[s] = right;
}

/* Block b of the pairwise tree: part[0][i] = Σ_s part[s][i] over the block's i, level by
 * level (part[s] += part[s + 2^k] for s a multiple of 2^(k+1)): a fixed order. */
static void NP(tree_block)(void *arg, int64_t b, int thread)
{
    (void)thread;
    NP(pass) *p = arg;
    int64_t P = bp_param_count(&p->w->spec);
    int64_t i0 = b * TREE_BLOCK, i1 = i0 + TREE_BLOCK < P ? i0 + TREE_BLOCK : P;
    for (int step = 1; step < p->S; step *= 2)
        for (int s = 0; s + step < p->S; s += 2 * step) {
            real *dst = s == 0 ? p->g0 : p->w->grads[s - 1];
            const real *src = p->w->grads[s + step - 1];
            for (int64_t i = i0; i < i1; i++)
                dst[i] += src[i];
        }
}

/* The data part of one pass (core_pass adds the regularization): the shards (shard_run) on
 * the workspace's pool, their gradients (into g0), data sums and counts added by the same
 * fixed tree. Returns the data term averaged over m (whatever the mode). */
static double NP(cost_pass)(real *g0, int64_t *correct, bp_work *w, const real *X,
                            const real *Y, const int32_t *labels, const real *theta, int64_t m,
                            int mode)
{
    const bp_spec *sp = &w->spec;
    NP(pass) p = {.w = w, .g0 = g0, .X = X, .Y = Y, .theta = theta, .labels = labels,
                  .m = m, .mode = mode, .inv_m = 1.0 / (double)m};
    p.S = bp_shards(sp, m);
    if ((mode & OUT_DELTA) && p.S > w->n_grads + 1)
        p.S = w->n_grads + 1; /* more rows than the workspace was sized for */
    core_parallel_for(w->pool, p.S, NP(shard_run), &p);
    if (mode & OUT_DELTA && p.S > 1)
        core_parallel_for(w->pool, (bp_param_count(sp) + TREE_BLOCK - 1) / TREE_BLOCK,
                          NP(tree_block), &p);
    for (int step = 1; step < p.S; step *= 2)
        for (int s = 0; s + step < p.S; s += 2 * step) {
            p.data[s] += p.data[s + step];
            p.right[s] += p.right[s + step];
        }
    if (correct)
        *correct = p.right[0];
    return p.data[0] * p.inv_m;
}

/* Arg-max label of one row a of K outputs (the first on ties); K == 1: a >= 0.5. */
static int32_t NP(row_label)(const real *a, int K)
{
    if (K == 1)
        return a[0] >= 0.5 ? 1 : 0;
    int32_t best = 0;
    for (int k = 1; k < K; k++)
        if (a[k] > a[best])
            best = k;
    return best;
}
