/* core_net.c — Criterion tests of core/net.c and core/model.c: spec validation, layout, PRNG,
 * initialisation, J(Θ) and its backprop gradient against (a) values worked out by hand, (b) a
 * separate naive per-sample implementation written here (plain loops, libm, no BLAS), and (c)
 * centered finite differences; the course's gradient check; chunking; prediction; the vector
 * exp/log1p.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/bp.h"
#include "core/vmath.h"

/* ---- helpers ---- */

static bp_spec make_spec(int n, const int *sizes, bp_act h, bp_out o)
{
    bp_spec s;
    memset(&s, 0, sizeof s);
    s.n_layers = n;
    for (int i = 0; i < n; i++)
        s.sizes[i] = sizes[i];
    s.hidden = h;
    s.output = o;
    return s;
}

static double rel_err(double a, double b)
{
    double d = fabs(a - b), s = fmax(fabs(a), fabs(b));
    return s > 0 ? d / s : d;
}

/* ‖a − b‖ / ‖a + b‖ (0 when both are zero). */
static double rel_norm(const double *a, const double *b, int64_t n)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        d += (a[i] - b[i]) * (a[i] - b[i]);
        s += (a[i] + b[i]) * (a[i] + b[i]);
    }
    return s > 0 ? sqrt(d / s) : sqrt(d);
}

static void fill_uniform(double *v, int64_t n, double lo, double hi, uint64_t seed)
{
    bp_rng r;
    bp_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * bp_rng_uniform(&r);
}

/* Targets suited to the output: sigmoid → 0/1 mixed with soft values, softmax → probability
 * rows, linear → reals. */
static void fill_targets(double *Y, int64_t m, int K, bp_out o, uint64_t seed)
{
    bp_rng r;
    bp_rng_seed(&r, seed);
    for (int64_t i = 0; i < m; i++) {
        double *y = Y + i * K;
        if (o == BP_OUT_SIGMOID) {
            for (int k = 0; k < K; k++)
                y[k] = (i + k) % 3 == 0 ? bp_rng_uniform(&r) : (double)((i + k) % 2);
        } else if (o == BP_OUT_SOFTMAX) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (y[k] = bp_rng_uniform(&r) + 0.1);
            for (int k = 0; k < K; k++)
                y[k] /= s;
        } else {
            for (int k = 0; k < K; k++)
                y[k] = 4.0 * bp_rng_uniform(&r) - 2.0;
        }
    }
}

/* The naive reference: one sample at a time, scalar loops, textbook formulas from z.
 * Returns J; if grad != NULL writes (not accumulates) ∂J/∂Θ. */
static double naive_cost_grad(double *grad, const bp_spec *sp, const double *theta,
                              const double *X, const double *Y, int64_t m, double lambda,
                              int64_t m_reg)
{
    int L = sp->n_layers, K = sp->sizes[L - 1];
    double *a[BP_MAX_LAYERS], *z[BP_MAX_LAYERS], *d[BP_MAX_LAYERS];
    int64_t off[BP_MAX_LAYERS];
    int64_t P = 0;
    for (int l = 0; l < L; l++) {
        a[l] = calloc((size_t)sp->sizes[l], sizeof(double));
        z[l] = calloc((size_t)sp->sizes[l], sizeof(double));
        d[l] = calloc((size_t)sp->sizes[l], sizeof(double));
        off[l] = P;
        if (l + 1 < L)
            P += (int64_t)sp->sizes[l + 1] * (sp->sizes[l] + 1);
    }
    if (grad)
        memset(grad, 0, sizeof(double) * (size_t)P);
    double J = 0;
    for (int64_t i = 0; i < m; i++) {
        for (int k = 0; k < sp->sizes[0]; k++)
            a[0][k] = X[i * sp->sizes[0] + k];
        for (int l = 0; l + 1 < L; l++) {
            int si = sp->sizes[l];
            for (int j = 0; j < sp->sizes[l + 1]; j++) {
                const double *row = theta + off[l] + (int64_t)j * (si + 1);
                double s = row[0];
                for (int k = 0; k < si; k++)
                    s += row[k + 1] * a[l][k];
                z[l + 1][j] = s;
                if (l + 2 < L) {
                    if (sp->hidden == BP_ACT_SIGMOID)
                        a[l + 1][j] = 1.0 / (1.0 + exp(-s));
                    else if (sp->hidden == BP_ACT_TANH)
                        a[l + 1][j] = tanh(s);
                    else
                        a[l + 1][j] = s > 0 ? s : 0;
                }
            }
        }
        const double *y = Y + i * K;
        double *zo = z[L - 1], *ao = a[L - 1];
        if (sp->output == BP_OUT_SIGMOID) {
            for (int k = 0; k < K; k++) {
                ao[k] = 1.0 / (1.0 + exp(-zo[k]));
                J += -(y[k] * log(ao[k]) + (1 - y[k]) * log(1 - ao[k]));
            }
        } else if (sp->output == BP_OUT_SOFTMAX) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += exp(zo[k]);
            for (int k = 0; k < K; k++) {
                ao[k] = exp(zo[k]) / s;
                J += -y[k] * log(ao[k]);
            }
        } else {
            for (int k = 0; k < K; k++) {
                ao[k] = zo[k];
                J += 0.5 * (ao[k] - y[k]) * (ao[k] - y[k]);
            }
        }
        if (!grad)
            continue;
        for (int k = 0; k < K; k++)
            d[L - 1][k] = ao[k] - y[k];
        for (int l = L - 2; l >= 0; l--) {
            int si = sp->sizes[l];
            for (int j = 0; j < sp->sizes[l + 1]; j++) {
                double *g = grad + off[l] + (int64_t)j * (si + 1);
                g[0] += d[l + 1][j];
                for (int k = 0; k < si; k++)
                    g[k + 1] += d[l + 1][j] * a[l][k];
            }
            if (l == 0)
                continue;
            for (int k = 0; k < si; k++) {
                double s = 0;
                for (int j = 0; j < sp->sizes[l + 1]; j++)
                    s += theta[off[l] + (int64_t)j * (si + 1) + k + 1] * d[l + 1][j];
                double zz = z[l][k], gp;
                if (sp->hidden == BP_ACT_SIGMOID) {
                    double sg = 1.0 / (1.0 + exp(-zz));
                    gp = sg * (1 - sg);
                } else if (sp->hidden == BP_ACT_TANH) {
                    gp = 1.0 / (cosh(zz) * cosh(zz));
                } else {
                    gp = zz > 0 ? 1 : 0;
                }
                d[l][k] = s * gp;
            }
        }
    }
    J /= (double)m;
    double reg = 0;
    for (int l = 0; l + 1 < L; l++) {
        int si = sp->sizes[l];
        for (int j = 0; j < sp->sizes[l + 1]; j++)
            for (int k = 1; k <= si; k++) {
                double t = theta[off[l] + (int64_t)j * (si + 1) + k];
                reg += t * t;
                if (grad)
                    grad[off[l] + (int64_t)j * (si + 1) + k] =
                        grad[off[l] + (int64_t)j * (si + 1) + k] / (double)m +
                        lambda / (double)m_reg * t;
            }
        if (grad)
            for (int j = 0; j < sp->sizes[l + 1]; j++)
                grad[off[l] + (int64_t)j * (si + 1)] /= (double)m;
    }
    for (int l = 0; l < L; l++) {
        free(a[l]);
        free(z[l]);
        free(d[l]);
    }
    return J + lambda / (2.0 * (double)m_reg) * reg;
}

/* Everything one case needs: spec, X, Y, theta, workspace and gradient buffers. */
typedef struct {
    bp_spec spec;
    int64_t m, P;
    double *X, *Y, *theta, *g, *g2, *num;
    bp_work *w;
} tcase;

static void tcase_init(tcase *c, int n, const int *sizes, bp_act h, bp_out o, int64_t m,
                       double wscale, uint64_t seed)
{
    bp_error err = {{0}};
    c->spec = make_spec(n, sizes, h, o);
    cr_assert_eq(bp_spec_validate(&c->spec, &err), 0, "%s", err.msg);
    c->m = m;
    c->P = bp_param_count(&c->spec);
    int n_in = sizes[0], K = sizes[n - 1];
    c->X = malloc(sizeof(double) * (size_t)(m * n_in));
    c->Y = malloc(sizeof(double) * (size_t)(m * K));
    c->theta = malloc(sizeof(double) * (size_t)c->P);
    c->g = calloc((size_t)c->P, sizeof(double));
    c->g2 = calloc((size_t)c->P, sizeof(double));
    c->num = calloc((size_t)c->P, sizeof(double));
    fill_uniform(c->X, m * n_in, -1, 1, seed);
    fill_targets(c->Y, m, K, o, seed + 1);
    fill_uniform(c->theta, c->P, -wscale, wscale, seed + 2);
    c->w = bp_work_new(&c->spec, m, &err);
    cr_assert_not_null(c->w, "%s", err.msg);
}

static void tcase_free(tcase *c)
{
    free(c->X);
    free(c->Y);
    free(c->theta);
    free(c->g);
    free(c->g2);
    free(c->num);
    bp_work_free(c->w);
}

/* The three checks every (activation, output, shape, λ) case must pass:
 *   J equals the naive J (1e-12 relative); the gradient equals the naive backprop (1e-12);
 *   bp_gradcheck and centered differences of the NAIVE J both agree with it below 1e-9. */
static void check_case(int n, const int *sizes, bp_act h, bp_out o, double lambda, uint64_t seed)
{
    tcase c;
    tcase_init(&c, n, sizes, h, o, 7, 0.8, seed);
    double J = bp_cost_grad(c.g, c.w, c.X, c.Y, c.theta, c.m, lambda, c.m);
    double Jn = naive_cost_grad(c.g2, &c.spec, c.theta, c.X, c.Y, c.m, lambda, c.m);
    cr_assert(rel_err(J, Jn) < 1e-12, "%s/%s L=%d λ=%g: J %.17g vs naive %.17g", bp_act_name(h),
              bp_out_name(o), n, lambda, J, Jn);
    cr_assert(rel_norm(c.g, c.g2, c.P) < 1e-12, "%s/%s L=%d: grad vs naive %g", bp_act_name(h),
              bp_out_name(o), n, rel_norm(c.g, c.g2, c.P));

    bp_gradcheck_result r;
    bp_error err = {{0}};
    double *an = calloc((size_t)c.P, sizeof(double));
    cr_assert_eq(bp_gradcheck(&r, an, c.num, c.w, c.X, c.Y, c.theta, c.m, lambda, 1e-5, &err), 0,
                 "%s", err.msg);
    cr_assert(r.relative_difference < 1e-9, "%s/%s L=%d λ=%g: gradcheck rel %g (worst %lld)",
              bp_act_name(h), bp_out_name(o), n, lambda, r.relative_difference,
              (long long)r.worst_index);
    cr_assert(rel_norm(an, c.g, c.P) == 0.0, "gradcheck's analytic gradient is bp_cost_grad's");

    /* independent: centered differences of the naive J */
    double *tp = malloc(sizeof(double) * (size_t)c.P);
    memcpy(tp, c.theta, sizeof(double) * (size_t)c.P);
    for (int64_t i = 0; i < c.P; i++) {
        double t = tp[i], e = 1e-5;
        tp[i] = t + e;
        double jp = naive_cost_grad(NULL, &c.spec, tp, c.X, c.Y, c.m, lambda, c.m);
        tp[i] = t - e;
        double jm = naive_cost_grad(NULL, &c.spec, tp, c.X, c.Y, c.m, lambda, c.m);
        tp[i] = t;
        c.num[i] = (jp - jm) / (2 * e);
    }
    double rn = rel_norm(c.num, c.g, c.P);
    cr_assert(rn < 1e-9, "%s/%s L=%d λ=%g: naive finite differences rel %g", bp_act_name(h),
              bp_out_name(o), n, lambda, rn);
    free(tp);
    free(an);
    tcase_free(&c);
}

static void check_pairing(bp_act h, bp_out o)
{
    static const int s1[] = {3, 5, 3};
    static const int s2[] = {1, 1, 1};
    static const int s3[] = {4, 6, 5, 4, 3}; /* 3 hidden layers */
    static const int s4[] = {5, 1, 4};       /* 1-unit hidden layer */
    static const int s5[] = {6, 9, 2};
    static const int s6[] = {3, 4};          /* no hidden layer */
    const int *shapes[] = {s1, s2, s3, s4, s5, s6};
    const int lens[] = {3, 3, 5, 3, 3, 2};
    for (int i = 0; i < 6; i++) {
        check_case(lens[i], shapes[i], h, o, 0.0, 100 + (uint64_t)i);
        check_case(lens[i], shapes[i], h, o, 0.7, 200 + (uint64_t)i);
    }
}

/* ---- spec ---- */

Test(spec, accepts_good_shapes)
{
    bp_error err = {{0}};
    bp_spec s = make_spec(3, (int[]){64, 25, 10}, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    cr_assert_eq(bp_spec_validate(&s, &err), 0, "%s", err.msg);
    s = make_spec(2, (int[]){1, 1}, BP_ACT_RELU, BP_OUT_LINEAR);
    cr_assert_eq(bp_spec_validate(&s, &err), 0, "%s", err.msg);
    /* exactly at the limit: 10000 × (9999 + 1) = 100,000,000 parameters */
    s = make_spec(2, (int[]){9999, 10000}, BP_ACT_TANH, BP_OUT_SOFTMAX);
    cr_assert_eq(bp_spec_validate(&s, &err), 0, "%s", err.msg);
    cr_assert_eq(bp_param_count(&s), 100000000LL);
    s = make_spec(2, (int[]){65536, 1}, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    cr_assert_eq(bp_spec_validate(&s, &err), 0, "%s", err.msg);
    bp_spec many;
    memset(&many, 0, sizeof many);
    many.n_layers = 64;
    for (int i = 0; i < 64; i++)
        many.sizes[i] = 3;
    cr_assert_eq(bp_spec_validate(&many, &err), 0, "%s", err.msg);
    cr_assert_eq(bp_param_count(&many), 63 * 12);
}

Test(spec, rejects_bad_shapes_naming_the_field)
{
    bp_error err = {{0}};
    bp_spec s = make_spec(3, (int[]){3, 0, 2}, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    cr_assert_eq(bp_spec_validate(&s, &err), -1);
    cr_assert_str_eq(err.msg, "layers[1]: must be an integer in 1..65536");

    s = make_spec(3, (int[]){3, 4, 65537}, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    cr_assert_eq(bp_spec_validate(&s, &err), -1);
    cr_assert_str_eq(err.msg, "layers[2]: must be an integer in 1..65536");

    s = make_spec(3, (int[]){-5, 4, 2}, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    cr_assert_eq(bp_spec_validate(&s, &err), -1);
    cr_assert_str_eq(err.msg, "layers[0]: must be an integer in 1..65536");

    s = make_spec(1, (int[]){3}, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    cr_assert_eq(bp_spec_validate(&s, &err), -1);
    cr_assert_str_eq(err.msg, "layers: need 2..64 entries");

    s.n_layers = 65;
    cr_assert_eq(bp_spec_validate(&s, &err), -1);
    cr_assert_str_eq(err.msg, "layers: need 2..64 entries");

    s.n_layers = -1;
    cr_assert_eq(bp_spec_validate(&s, &err), -1);
    cr_assert_str_eq(err.msg, "layers: need 2..64 entries");

    /* 10000 × 10001 = 100,010,000 */
    s = make_spec(2, (int[]){10000, 10000}, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    cr_assert_eq(bp_spec_validate(&s, &err), -1);
    cr_assert_str_eq(err.msg, "layers: 100010000 parameters exceed the limit of 100000000");

    /* far beyond 32 bits: 63 × 65536 × 65537 = 270,587,068,416 */
    bp_spec big;
    memset(&big, 0, sizeof big);
    big.n_layers = 64;
    for (int i = 0; i < 64; i++)
        big.sizes[i] = 65536;
    cr_assert_eq(bp_spec_validate(&big, &err), -1);
    cr_assert_str_eq(err.msg, "layers: 270587068416 parameters exceed the limit of 100000000");

    s = make_spec(2, (int[]){2, 2}, (bp_act)7, BP_OUT_SIGMOID);
    cr_assert_eq(bp_spec_validate(&s, &err), -1);
    cr_assert(strncmp(err.msg, "activation:", 11) == 0, "%s", err.msg);
    s = make_spec(2, (int[]){2, 2}, BP_ACT_SIGMOID, (bp_out)-1);
    cr_assert_eq(bp_spec_validate(&s, &err), -1);
    cr_assert(strncmp(err.msg, "output:", 7) == 0, "%s", err.msg);
    cr_assert_eq(bp_spec_validate(NULL, &err), -1);
    cr_assert_eq(bp_spec_validate(&s, NULL), -1, "a NULL error buffer is allowed");
}

Test(spec, layout_and_names)
{
    bp_spec s = make_spec(4, (int[]){3, 5, 2, 3}, BP_ACT_TANH, BP_OUT_SOFTMAX);
    /* 5·4 + 2·6 + 3·3 */
    cr_assert_eq(bp_param_count(&s), 41);
    cr_assert_eq(bp_layer_offset(&s, 0), 0);
    cr_assert_eq(bp_layer_offset(&s, 1), 20);
    cr_assert_eq(bp_layer_offset(&s, 2), 32);
    cr_assert_eq(bp_layer_offset(&s, 3), 41);
    cr_assert_str_eq(bp_act_name(BP_ACT_SIGMOID), "sigmoid");
    cr_assert_str_eq(bp_act_name(BP_ACT_TANH), "tanh");
    cr_assert_str_eq(bp_act_name(BP_ACT_RELU), "relu");
    cr_assert_str_eq(bp_out_name(BP_OUT_SIGMOID), "sigmoid");
    cr_assert_str_eq(bp_out_name(BP_OUT_SOFTMAX), "softmax");
    cr_assert_str_eq(bp_out_name(BP_OUT_LINEAR), "linear");
}

/* ---- gradients for every pairing ---- */

Test(grad, sigmoid_sigmoid) { check_pairing(BP_ACT_SIGMOID, BP_OUT_SIGMOID); }
Test(grad, sigmoid_softmax) { check_pairing(BP_ACT_SIGMOID, BP_OUT_SOFTMAX); }
Test(grad, sigmoid_linear) { check_pairing(BP_ACT_SIGMOID, BP_OUT_LINEAR); }
Test(grad, tanh_sigmoid) { check_pairing(BP_ACT_TANH, BP_OUT_SIGMOID); }
Test(grad, tanh_softmax) { check_pairing(BP_ACT_TANH, BP_OUT_SOFTMAX); }
Test(grad, tanh_linear) { check_pairing(BP_ACT_TANH, BP_OUT_LINEAR); }
Test(grad, relu_sigmoid) { check_pairing(BP_ACT_RELU, BP_OUT_SIGMOID); }
Test(grad, relu_softmax) { check_pairing(BP_ACT_RELU, BP_OUT_SOFTMAX); }
Test(grad, relu_linear) { check_pairing(BP_ACT_RELU, BP_OUT_LINEAR); }

Test(grad, accumulates_and_uses_m_reg)
{
    tcase c;
    tcase_init(&c, 3, (int[]){4, 3, 2}, BP_ACT_SIGMOID, BP_OUT_SIGMOID, 6, 0.5, 77);
    /* λ with m_reg = 60: the penalty is λ/(2·60) Σθ², the gradient term (λ/60)θ */
    double J = bp_cost_grad(c.g, c.w, c.X, c.Y, c.theta, c.m, 2.0, 60);
    double Jn = naive_cost_grad(c.g2, &c.spec, c.theta, c.X, c.Y, c.m, 2.0, 60);
    cr_assert(rel_err(J, Jn) < 1e-12, "%.17g vs %.17g", J, Jn);
    cr_assert(rel_norm(c.g, c.g2, c.P) < 1e-12);
    /* a second call adds the same gradient again */
    bp_cost_grad(c.g, c.w, c.X, c.Y, c.theta, c.m, 2.0, 60);
    for (int64_t i = 0; i < c.P; i++)
        cr_assert(fabs(c.g[i] - 2 * c.g2[i]) <= 1e-12 * fabs(c.g2[i]) + 1e-15, "[%lld]",
                  (long long)i);
    /* cost only: dtheta NULL gives the same J */
    cr_assert_eq(bp_cost_grad(NULL, c.w, c.X, c.Y, c.theta, c.m, 2.0, 60), J);
    tcase_free(&c);
}

/* ---- the course's check ---- */

/* debugInitializeWeights(fan_out, fan_in): W = reshape(sin(1:numel(W)), size(W)) / 10 with
 * size (fan_out, 1 + fan_in), column-major: W(r, c) = sin(1 + r + c·fan_out) / 10 (0-based). */
static void debug_init(double *W, int fan_out, int fan_in)
{
    for (int r = 0; r < fan_out; r++)
        for (int c = 0; c <= fan_in; c++)
            W[r * (fan_in + 1) + c] = sin(1.0 + r + (double)c * fan_out) / 10.0;
}

Test(course, check_nn_gradients)
{
    const int in = 3, hid = 5, K = 3, m = 5;
    bp_spec s = make_spec(3, (int[]){in, hid, K}, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    int64_t P = bp_param_count(&s);
    cr_assert_eq(P, 5 * 4 + 3 * 6);
    double theta[38], X[15], Y[15] = {0}, an[38], num[38], g2[38];
    debug_init(theta, hid, in);
    debug_init(theta + bp_layer_offset(&s, 1), K, hid);
    /* X = debugInitializeWeights(m, in − 1): m × in, X(i, j) = sin(1 + i + j·m) / 10 */
    for (int i = 0; i < m; i++)
        for (int j = 0; j < in; j++)
            X[i * in + j] = sin(1.0 + i + (double)j * m) / 10.0;
    /* y = 1 + mod(1:m, K): 0-based label (i mod K) for i = 1..m → 1, 2, 0, 1, 2 */
    for (int i = 1; i <= m; i++)
        Y[(i - 1) * K + (i % K)] = 1.0;
    bp_error err = {{0}};
    bp_work *w = bp_work_new(&s, m, &err);
    cr_assert_not_null(w);
    for (int pass = 0; pass < 2; pass++) {
        double lambda = pass == 0 ? 0.0 : 3.0;
        bp_gradcheck_result r;
        cr_assert_eq(bp_gradcheck(&r, an, num, w, X, Y, theta, m, lambda, 1e-4, &err), 0);
        cr_assert(r.relative_difference < 1e-9, "λ=%g: relative difference %g", lambda,
                  r.relative_difference);
        cr_assert(r.max_abs_difference < 1e-10, "λ=%g: max abs %g", lambda, r.max_abs_difference);
        naive_cost_grad(g2, &s, theta, X, Y, m, lambda, m);
        cr_assert(rel_norm(an, g2, P) < 1e-12);
        /* every element checked, none trivially zero */
        for (int i = 0; i < P; i++)
            cr_assert(fabs(an[i]) > 1e-6 && fabs(an[i] - num[i]) < 1e-10, "[%d] %g vs %g", i,
                      an[i], num[i]);
    }
    bp_work_free(w);
}

Test(course, sigmoid_gradient)
{
    const double z[5] = {-1, -0.5, 0, 0.5, 1};
    const double want[5] = {0.196612, 0.235004, 0.25, 0.235004, 0.196612};
    /* through the network: 1-1-1, hidden sigmoid, linear output; Θ1 = [z, 0],
     * Θ2 = [0, 1], y = σ(z) − 1 so δ2 = 1 and ∂J/∂Θ1[0] = δ2 · Θ2[1] · g′(z) = g′(z). */
    bp_spec s = make_spec(3, (int[]){1, 1, 1}, BP_ACT_SIGMOID, BP_OUT_LINEAR);
    bp_error err = {{0}};
    bp_work *w = bp_work_new(&s, 1, &err);
    cr_assert_not_null(w);
    for (int i = 0; i < 5; i++) {
        double theta[4] = {z[i], 0.0, 0.0, 1.0}, d[4] = {0}, x = 0.37;
        double y = 1.0 / (1.0 + exp(-z[i])) - 1.0;
        bp_cost_grad(d, w, &x, &y, theta, 1, 0.0, 1);
        cr_assert(fabs(d[0] - want[i]) < 5e-7, "network g'(%g) = %.7f", z[i], d[0]);
        cr_assert(fabs(d[1] - want[i] * x) < 5e-7);
    }
    bp_work_free(w);
}

/* ---- hand-computed costs ---- */

static double sig(double z) { return 1.0 / (1.0 + exp(-z)); }

Test(cost, by_hand_sigmoid_2_2_1)
{
    /* Θ1 = [[0.1, 0.2, -0.3], [-0.4, 0.5, 0.6]], Θ2 = [[0.7, -0.8, 0.9]] */
    bp_spec s = make_spec(3, (int[]){2, 2, 1}, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    double theta[9] = {0.1, 0.2, -0.3, -0.4, 0.5, 0.6, 0.7, -0.8, 0.9};
    double X[4] = {1.0, 2.0, -1.0, 0.5}, Y[2] = {1.0, 0.0};
    double J = 0;
    for (int i = 0; i < 2; i++) {
        double x1 = X[2 * i], x2 = X[2 * i + 1];
        double h1 = sig(0.1 + 0.2 * x1 - 0.3 * x2), h2 = sig(-0.4 + 0.5 * x1 + 0.6 * x2);
        double a = sig(0.7 - 0.8 * h1 + 0.9 * h2);
        J += -(Y[i] * log(a) + (1 - Y[i]) * log(1 - a));
    }
    J /= 2;
    double reg = 0.04 + 0.09 + 0.25 + 0.36 + 0.64 + 0.81;
    double want = J + 1.5 / (2 * 2) * reg; /* λ = 1.5, m = 2 */
    bp_error err = {{0}};
    bp_work *w = bp_work_new(&s, 2, &err);
    double got = bp_cost_grad(NULL, w, X, Y, theta, 2, 1.5, 2);
    cr_assert(rel_err(got, want) < 1e-12, "%.17g vs %.17g", got, want);
    double g[9] = {0};
    got = bp_cost_grad(g, w, X, Y, theta, 2, 1.5, 2);
    cr_assert(rel_err(got, want) < 1e-12);
    /* output bias gradient by hand: mean of (a − y) */
    double d0 = 0;
    for (int i = 0; i < 2; i++) {
        double x1 = X[2 * i], x2 = X[2 * i + 1];
        double h1 = sig(0.1 + 0.2 * x1 - 0.3 * x2), h2 = sig(-0.4 + 0.5 * x1 + 0.6 * x2);
        d0 += sig(0.7 - 0.8 * h1 + 0.9 * h2) - Y[i];
    }
    cr_assert(rel_err(g[6], d0 / 2) < 1e-12, "%.17g vs %.17g", g[6], d0 / 2);
    bp_work_free(w);
}

Test(cost, by_hand_softmax_and_linear)
{
    /* softmax 2 → 3, one sample: z = Θ [1; x] */
    bp_spec s = make_spec(2, (int[]){2, 3}, BP_ACT_SIGMOID, BP_OUT_SOFTMAX);
    double theta[9] = {0.5, -1.0, 2.0, 0.0, 0.3, 0.3, -0.2, 1.1, -0.7};
    double x[2] = {0.4, -0.9}, y[3] = {0.0, 1.0, 0.0};
    double z0 = 0.5 - 0.4 - 1.8, z1 = 0.12 - 0.27, z2 = -0.2 + 0.44 + 0.63;
    double want = -(z1 - log(exp(z0) + exp(z1) + exp(z2)));
    bp_error err = {{0}};
    bp_work *w = bp_work_new(&s, 1, &err);
    double got = bp_cost_grad(NULL, w, x, y, theta, 1, 0.0, 1);
    cr_assert(rel_err(got, want) < 1e-12, "%.17g vs %.17g", got, want);
    double g[9] = {0}, g2[9];
    bp_cost_grad(g, w, x, y, theta, 1, 0.0, 1);
    naive_cost_grad(g2, &s, theta, x, y, 1, 0.0, 1);
    cr_assert(rel_norm(g, g2, 9) < 1e-12);
    bp_work_free(w);

    /* linear 2 → 1 over two samples: J = Σ (z − y)² / (2m) */
    s = make_spec(2, (int[]){2, 1}, BP_ACT_SIGMOID, BP_OUT_LINEAR);
    double th[3] = {1.0, 2.0, -3.0}, X[4] = {1.0, 1.0, 0.5, -2.0}, Y[2] = {0.5, 4.0};
    double r0 = (1 + 2 - 3) - 0.5, r1 = (1 + 1 + 6) - 4.0;
    want = (r0 * r0 + r1 * r1) / 4 + 0.25 / 4 * (4 + 9); /* λ = 0.25 */
    w = bp_work_new(&s, 2, &err);
    got = bp_cost_grad(NULL, w, X, Y, th, 2, 0.25, 2);
    cr_assert(rel_err(got, want) < 1e-12, "%.17g vs %.17g", got, want);
    double gl[3] = {0};
    bp_cost_grad(gl, w, X, Y, th, 2, 0.25, 2);
    cr_assert(rel_err(gl[0], (r0 + r1) / 2) < 1e-12);
    cr_assert(rel_err(gl[1], (r0 * 1 + r1 * 0.5) / 2 + 0.25 / 2 * 2.0) < 1e-12);
    cr_assert(rel_err(gl[2], (r0 * 1 + r1 * -2.0) / 2 + 0.25 / 2 * -3.0) < 1e-12);
    bp_work_free(w);
}

Test(cost, stable_for_large_z)
{
    /* |z| = 800: the logistic and softmax costs stay finite and exact-ish */
    bp_spec s = make_spec(2, (int[]){1, 2}, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    double theta[4] = {800.0, 0.0, -800.0, 0.0}, x = 0.0, y[2] = {0.0, 0.0};
    bp_error err = {{0}};
    bp_work *w = bp_work_new(&s, 1, &err);
    double J = bp_cost_grad(NULL, w, &x, y, theta, 1, 0.0, 1);
    cr_assert(rel_err(J, 800.0) < 1e-15, "J = %.17g", J); /* −log(1 − σ(800)) ≈ 800 */
    bp_work_free(w);
    s.output = BP_OUT_SOFTMAX;
    w = bp_work_new(&s, 1, &err);
    double ys[2] = {0.0, 1.0};
    J = bp_cost_grad(NULL, w, &x, ys, theta, 1, 0.0, 1);
    cr_assert(rel_err(J, 1600.0) < 1e-15, "J = %.17g", J);
    bp_work_free(w);
}

Test(cost, nan_propagates)
{
    tcase c;
    tcase_init(&c, 3, (int[]){3, 4, 2}, BP_ACT_SIGMOID, BP_OUT_SIGMOID, 5, 0.5, 3);
    c.X[4] = NAN;
    cr_assert(isnan(bp_cost_grad(c.g, c.w, c.X, c.Y, c.theta, c.m, 0.0, c.m)));
    tcase_free(&c);
}

/* ---- chunking ---- */

static void check_chunked(bp_act h, bp_out o)
{
    const int64_t m = 2 * BP_CHUNK_ROWS + 37;
    tcase c;
    tcase_init(&c, 3, (int[]){6, 9, 4}, h, o, m, 0.6, 900 + (uint64_t)o);
    double J = bp_cost_grad(c.g, c.w, c.X, c.Y, c.theta, m, 0.3, m);
    double Jn = naive_cost_grad(c.g2, &c.spec, c.theta, c.X, c.Y, m, 0.3, m);
    cr_assert(rel_err(J, Jn) < 1e-12, "J %.17g vs naive %.17g", J, Jn);
    cr_assert(rel_norm(c.g, c.g2, c.P) < 1e-12, "grad rel %g", rel_norm(c.g, c.g2, c.P));
    /* a workspace sized for more rows gives bit-identical results (chunk size is fixed) */
    bp_error err = {{0}};
    bp_work *big = bp_work_new(&c.spec, 100000, &err);
    double *g3 = calloc((size_t)c.P, sizeof(double));
    cr_assert_eq(bp_cost_grad(g3, big, c.X, c.Y, c.theta, m, 0.3, m), J);
    cr_assert_eq(memcmp(g3, c.g, sizeof(double) * (size_t)c.P), 0);
    free(g3);
    bp_work_free(big);
    tcase_free(&c);
}

Test(chunk, sigmoid_output) { check_chunked(BP_ACT_SIGMOID, BP_OUT_SIGMOID); }
Test(chunk, softmax_output) { check_chunked(BP_ACT_TANH, BP_OUT_SOFTMAX); }
Test(chunk, linear_output) { check_chunked(BP_ACT_RELU, BP_OUT_LINEAR); }

Test(chunk, wide_layers_use_every_vector_path)
{
    /* 17 and 8 units: full 8-lane blocks plus tails, in both directions */
    tcase c;
    tcase_init(&c, 4, (int[]){11, 17, 8, 3}, BP_ACT_SIGMOID, BP_OUT_SIGMOID, 301, 0.7, 55);
    double J = bp_cost_grad(c.g, c.w, c.X, c.Y, c.theta, c.m, 0.1, c.m);
    double Jn = naive_cost_grad(c.g2, &c.spec, c.theta, c.X, c.Y, c.m, 0.1, c.m);
    cr_assert(rel_err(J, Jn) < 1e-12, "J %.17g vs naive %.17g", J, Jn);
    cr_assert(rel_norm(c.g, c.g2, c.P) < 1e-12);
    tcase_free(&c);
}

/* ---- prediction ---- */

Test(predict, labels_outputs_and_accuracy)
{
    /* 2 → 2 linear, Θ = [[0, 1, 0], [0, 0, 1]]: outputs are the inputs, label = arg-max */
    bp_spec s = make_spec(2, (int[]){2, 2}, BP_ACT_SIGMOID, BP_OUT_LINEAR);
    double theta[6] = {0, 1, 0, 0, 0, 1};
    double X[8] = {0.9, 0.1, -1.0, 2.0, 3.0, 2.5, 0.0, 0.5};
    int32_t want[4] = {0, 1, 0, 1}, got[4] = {-1, -1, -1, -1};
    double out[8];
    bp_error err = {{0}};
    bp_work *w = bp_work_new(&s, 4, &err);
    bp_predict(out, got, w, X, theta, 4);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(got[i], want[i], "row %d", i);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(out[i], X[i]);
    cr_assert_eq(bp_accuracy(w, X, want, theta, 4), 1.0);
    int32_t three_right[4] = {0, 1, 1, 1};
    cr_assert_eq(bp_accuracy(w, X, three_right, theta, 4), 0.75);
    bp_work_free(w);

    /* one sigmoid output: label = a ≥ 0.5, i.e. z ≥ 0 */
    s = make_spec(2, (int[]){1, 1}, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    double th1[2] = {-1.0, 2.0}, x1[3] = {0.0, 0.5, 3.0};
    int32_t l1[3];
    double o1[3];
    w = bp_work_new(&s, 3, &err);
    bp_predict(o1, l1, w, x1, th1, 3);
    cr_assert_eq(l1[0], 0);
    cr_assert_eq(l1[1], 1);
    cr_assert_eq(l1[2], 1);
    cr_assert(rel_err(o1[0], sig(-1.0)) < 1e-15);
    cr_assert(rel_err(o1[2], sig(5.0)) < 1e-15);
    bp_work_free(w);
}

Test(predict, softmax_outputs_match_naive_over_chunks)
{
    const int64_t m = BP_CHUNK_ROWS + 5;
    tcase c;
    tcase_init(&c, 3, (int[]){4, 7, 5}, BP_ACT_TANH, BP_OUT_SOFTMAX, m, 1.0, 31);
    double *out = malloc(sizeof(double) * (size_t)(m * 5));
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)m);
    bp_predict(out, lab, c.w, c.X, c.theta, m);
    for (int64_t i = 0; i < m; i += 97) {
        /* naive forward for row i */
        double h[7], z[5], s = 0;
        for (int j = 0; j < 7; j++) {
            double t = c.theta[j * 5];
            for (int k = 0; k < 4; k++)
                t += c.theta[j * 5 + k + 1] * c.X[i * 4 + k];
            h[j] = tanh(t);
        }
        int best = 0;
        for (int j = 0; j < 5; j++) {
            double t = c.theta[35 + j * 8];
            for (int k = 0; k < 7; k++)
                t += c.theta[35 + j * 8 + k + 1] * h[k];
            z[j] = t;
            s += exp(t);
            if (z[j] > z[best])
                best = j;
        }
        for (int j = 0; j < 5; j++)
            cr_assert(rel_err(out[i * 5 + j], exp(z[j]) / s) < 1e-13, "row %lld", (long long)i);
        cr_assert_eq(lab[i], best);
    }
    /* accuracy against the predicted labels is exactly 1 */
    cr_assert_eq(bp_accuracy(c.w, c.X, lab, c.theta, m), 1.0);
    free(out);
    free(lab);
    tcase_free(&c);
}

/* ---- the fused evaluation and the cost-free gradient ---- */

/* bp_cost_eval's J is bp_cost_grad's bit for bit, its count is bp_accuracy's, and bp_grad's
 * gradient is bp_cost_grad's bit for bit; over several chunks, with λ, for every output. */
static void check_eval(bp_act h, bp_out o, int K)
{
    int64_t m = 3 * 64 + 29; /* 64-row chunks for this small net: several, plus a tail */
    tcase c;
    tcase_init(&c, 3, (int[]){40, 48, K}, h, o, m, 0.8, 4000 + (uint64_t)o);
    cr_assert_eq(bp_chunk_rows(&c.spec), 64);
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)m);
    bp_predict(NULL, lab, c.w, c.X, c.theta, m);
    for (int64_t i = 0; i < m; i += 3)
        lab[i] = K == 1 ? 1 - lab[i] : (lab[i] + 1) % K; /* every third row wrong */
    double acc = bp_accuracy(c.w, c.X, lab, c.theta, m);
    double J = bp_cost_grad(c.g, c.w, c.X, c.Y, c.theta, m, 0.7, 5 * m);
    double J0 = bp_cost_grad(NULL, c.w, c.X, c.Y, c.theta, m, 0.7, 5 * m);
    int64_t right = -1;
    double Je = bp_cost_eval(&right, c.w, c.X, c.Y, lab, c.theta, m, 0.7, 5 * m);
    cr_assert_eq(memcmp(&Je, &J, sizeof J), 0, "eval J %.17g vs %.17g", Je, J);
    cr_assert_eq(memcmp(&Je, &J0, sizeof J), 0);
    cr_assert_eq((double)right / (double)m, acc, "%lld right, accuracy %g", (long long)right, acc);
    cr_assert_eq(right, m - (m + 2) / 3);
    /* without labels: the same J, nothing counted */
    double Jn = bp_cost_eval(&right, c.w, c.X, c.Y, NULL, c.theta, m, 0.7, 5 * m);
    cr_assert_eq(memcmp(&Jn, &J, sizeof J), 0);
    cr_assert_eq(right, 0);
    /* bp_grad: the same gradient bits, accumulated */
    for (int64_t i = 0; i < c.P; i++)
        c.g2[i] = 0.25;
    bp_grad(c.g2, c.w, c.X, c.Y, c.theta, m, 0.7, 5 * m);
    for (int64_t i = 0; i < c.P; i++)
        c.g2[i] -= 0.25;
    double *g3 = calloc((size_t)c.P, sizeof(double));
    bp_grad(g3, c.w, c.X, c.Y, c.theta, m, 0.7, 5 * m);
    cr_assert_eq(memcmp(g3, c.g, sizeof(double) * (size_t)c.P), 0);
    cr_assert(rel_norm(c.g2, c.g, c.P) < 1e-14);
    /* and both agree with the naive reference */
    double Jr = naive_cost_grad(c.num, &c.spec, c.theta, c.X, c.Y, m, 0.7, 5 * m);
    cr_assert(rel_err(J, Jr) < 1e-12, "J %.17g vs naive %.17g", J, Jr);
    cr_assert(rel_norm(c.g, c.num, c.P) < 1e-12);
    free(g3);
    free(lab);
    tcase_free(&c);
}

Test(eval, sigmoid_output) { check_eval(BP_ACT_SIGMOID, BP_OUT_SIGMOID, 5); }
Test(eval, one_sigmoid_output) { check_eval(BP_ACT_RELU, BP_OUT_SIGMOID, 1); }
Test(eval, softmax_output) { check_eval(BP_ACT_TANH, BP_OUT_SOFTMAX, 4); }
Test(eval, linear_output) { check_eval(BP_ACT_SIGMOID, BP_OUT_LINEAR, 3); }

/* The chunk size depends on the spec alone: small layers 64.., big ones BP_CHUNK_ROWS; the
 * results never depend on the rows a workspace was sized for. */
Test(chunk, rows_depend_on_the_spec_only)
{
    bp_spec w1 = make_spec(3, (int[]){64, 32, 10}, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    bp_spec w2 = make_spec(4, (int[]){784, 256, 128, 10}, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    bp_spec tiny = make_spec(3, (int[]){2, 3, 1}, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    cr_assert_eq(bp_chunk_rows(&w1), 64);
    cr_assert_eq(bp_chunk_rows(&w2), BP_CHUNK_ROWS);
    cr_assert_eq(bp_chunk_rows(&tiny), BP_CHUNK_ROWS);
    tcase c;
    tcase_init(&c, 3, (int[]){64, 32, 10}, BP_ACT_SIGMOID, BP_OUT_SIGMOID, 301, 0.5, 77);
    double J = bp_cost_grad(c.g, c.w, c.X, c.Y, c.theta, c.m, 0.2, c.m);
    bp_error err = {{0}};
    bp_work *big = bp_work_new(&c.spec, 100000, &err);
    double J2 = bp_cost_grad(c.g2, big, c.X, c.Y, c.theta, c.m, 0.2, c.m);
    cr_assert_eq(memcmp(&J, &J2, sizeof J), 0);
    cr_assert_eq(memcmp(c.g, c.g2, sizeof(double) * (size_t)c.P), 0);
    double Jr = naive_cost_grad(c.num, &c.spec, c.theta, c.X, c.Y, c.m, 0.2, c.m);
    cr_assert(rel_err(J, Jr) < 1e-12);
    cr_assert(rel_norm(c.g, c.num, c.P) < 1e-12);
    bp_work_free(big);
    tcase_free(&c);
}

/* ---- misc ---- */

Test(misc, check_finite)
{
    double v[6] = {0, 1, -2, 3, 4, 5};
    int64_t bad = -1;
    cr_assert_eq(bp_check_finite(v, 6, &bad), 0);
    v[3] = NAN;
    cr_assert_eq(bp_check_finite(v, 6, &bad), -1);
    cr_assert_eq(bad, 3);
    v[3] = 0;
    v[5] = -INFINITY;
    cr_assert_eq(bp_check_finite(v, 6, &bad), -1);
    cr_assert_eq(bad, 5);
    cr_assert_eq(bp_check_finite(v, 0, &bad), 0);
}

Test(misc, rng_seeding_and_streams)
{
    bp_rng a, b;
    /* splitmix64 from seed 0 gives these four well-known values */
    bp_rng_seed(&a, 0);
    cr_assert_eq(a.s[0], 0xe220a8397b1dcdafULL);
    cr_assert_eq(a.s[1], 0x6e789e6aa1b965f4ULL);
    cr_assert_eq(a.s[2], 0x06c45d188009454fULL);
    cr_assert_eq(a.s[3], 0xf88bb8a8724c81ecULL);
    /* xoshiro256**: first output rotl(s1 · 5, 7) · 9 */
    uint64_t t = a.s[1] * 5;
    uint64_t first = ((t << 7) | (t >> 57)) * 9;
    cr_assert_eq(bp_rng_next(&a), first);

    bp_rng_seed(&a, 42);
    bp_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(bp_rng_next(&a), bp_rng_next(&b));
    bp_rng_seed(&b, 43);
    int same = 0;
    for (int i = 0; i < 1000; i++)
        same += bp_rng_next(&a) == bp_rng_next(&b);
    cr_assert_eq(same, 0);

    double sum = 0, lo = 1, hi = 0;
    for (int i = 0; i < 100000; i++) {
        double u = bp_rng_uniform(&a);
        cr_assert(u >= 0.0 && u < 1.0);
        sum += u;
        lo = fmin(lo, u);
        hi = fmax(hi, u);
    }
    cr_assert(fabs(sum / 100000 - 0.5) < 0.005, "mean %g", sum / 100000);
    cr_assert(lo < 1e-3 && hi > 1 - 1e-3);
}

Test(misc, init_weights_within_epsilon)
{
    bp_spec s = make_spec(3, (int[]){400, 25, 10}, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    int64_t P = bp_param_count(&s), off1 = bp_layer_offset(&s, 1);
    double *th = malloc(sizeof(double) * (size_t)P), *th2 = malloc(sizeof(double) * (size_t)P);
    bp_rng r;
    bp_rng_seed(&r, 1);
    bp_init_weights(th, &s, 0.0, &r);
    double e1 = sqrt(6.0) / sqrt(425.0), e2 = sqrt(6.0) / sqrt(35.0);
    double m1 = 0, m2 = 0;
    for (int64_t i = 0; i < P; i++) {
        double e = i < off1 ? e1 : e2;
        cr_assert(fabs(th[i]) <= e, "[%lld] %g beyond %g", (long long)i, th[i], e);
        if (i < off1)
            m1 = fmax(m1, fabs(th[i]));
        else
            m2 = fmax(m2, fabs(th[i]));
    }
    cr_assert(m1 > 0.99 * e1 && m2 > 0.9 * e2, "range used: %g/%g %g/%g", m1, e1, m2, e2);
    /* same seed → same weights; explicit ε */
    bp_rng_seed(&r, 1);
    bp_init_weights(th2, &s, 0.0, &r);
    cr_assert_eq(memcmp(th, th2, sizeof(double) * (size_t)P), 0);
    bp_rng_seed(&r, 2);
    bp_init_weights(th2, &s, 0.12, &r);
    double mx = 0;
    for (int64_t i = 0; i < P; i++)
        mx = fmax(mx, fabs(th2[i]));
    cr_assert(mx <= 0.12 && mx > 0.119, "max %g", mx);
    free(th);
    free(th2);
}

Test(misc, workspace_and_gradcheck_errors)
{
    bp_error err = {{0}};
    bp_spec s = make_spec(2, (int[]){2, 2}, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    cr_assert_null(bp_work_new(&s, 0, &err));
    cr_assert(strstr(err.msg, "rows") != NULL, "%s", err.msg);
    s.sizes[1] = 0;
    cr_assert_null(bp_work_new(&s, 5, &err));
    cr_assert_str_eq(err.msg, "layers[1]: must be an integer in 1..65536");
    bp_work_free(NULL);
    cr_assert_eq(bp_work_bytes(NULL), 0);

    s.sizes[1] = 2;
    bp_work *w = bp_work_new(&s, 3, &err);
    cr_assert_not_null(w);
    cr_assert(bp_work_bytes(w) >= 3 * 2 * sizeof(double));
    double th[6] = {0}, an[6], num[6], X[2] = {1, 2}, Y[2] = {1, 0};
    bp_gradcheck_result r;
    cr_assert_eq(bp_gradcheck(&r, an, num, w, X, Y, th, 1, 0.0, 0.0, &err), -1);
    cr_assert(strncmp(err.msg, "epsilon", 7) == 0, "%s", err.msg);
    cr_assert_eq(bp_gradcheck(&r, an, num, w, X, Y, th, 1, 0.0, 1e-4, &err), 0);
    cr_assert(r.relative_difference < 1e-9);
    bp_work_free(w);
}

/* ---- the vector kernels against libm ---- */

static double ulps(double got, double want)
{
    if (got == want)
        return 0;
    return fabs(got - want) / fmax(nextafter(fabs(want), INFINITY) - fabs(want), 4.9e-324);
}

Test(vmath, exp_matches_libm)
{
    double worst = 0, at = 0;
    bp_rng r;
    bp_rng_seed(&r, 9);
    for (int i = 0; i < 200000; i++) {
        double x[8], y[8];
        for (int k = 0; k < 8; k++)
            x[k] = i < 100000 ? -745.0 + 1454.7 * bp_rng_uniform(&r)
                              : 40.0 * bp_rng_uniform(&r) - 20.0;
        bp_v8d v = bp_v8_load(x);
        bp_v8d e = bp_v8_exp(&v);
        bp_v8_store(y, e);
        for (int k = 0; k < 8; k++) {
            double u = ulps(y[k], exp(x[k]));
            if (u > worst) {
                worst = u;
                at = x[k];
            }
        }
    }
    cr_assert(worst <= 1.0, "exp: %g ulp at %.17g", worst, at);
    double sp[8] = {0.0, -INFINITY, INFINITY, NAN, 709.7, -744.0, 1e-300, -1000.0}, o[8];
    bp_v8d v = bp_v8_load(sp);
    bp_v8d e = bp_v8_exp(&v);
    bp_v8_store(o, e);
    cr_assert_eq(o[0], 1.0);
    cr_assert_eq(o[1], 0.0);
    cr_assert(isinf(o[2]) && o[2] > 0);
    cr_assert(isnan(o[3]));
    cr_assert(ulps(o[4], exp(709.7)) <= 1);
    cr_assert(o[5] > 0 && fabs(o[5] - exp(-744.0)) <= 4.9e-324 * 1, "subnormal %g", o[5]);
    cr_assert_eq(o[6], 1.0);
    cr_assert_eq(o[7], 0.0);
}

Test(vmath, log1p_on_unit_interval_matches_libm)
{
    double worst = 0, at = 0;
    bp_rng r;
    bp_rng_seed(&r, 10);
    for (int i = 0; i < 200000; i++) {
        double u[8], y[8];
        for (int k = 0; k < 8; k++)
            u[k] = i % 2 ? bp_rng_uniform(&r) : exp(-745.0 * bp_rng_uniform(&r));
        bp_v8d v = bp_v8_load(u);
        bp_v8d l = bp_v8_log1p01(&v);
        bp_v8_store(y, l);
        for (int k = 0; k < 8; k++) {
            double e = ulps(y[k], log1p(u[k]));
            if (e > worst) {
                worst = e;
                at = u[k];
            }
        }
    }
    cr_assert(worst <= 1.0, "log1p: %g ulp at %.17g", worst, at);
    double sp[8] = {0.0, 1.0, 0x1p-1074, 0.41421356237309503, 0.41421356237309515, NAN, 0.5,
                    1e-20}, o[8];
    bp_v8d v = bp_v8_load(sp);
    bp_v8d l = bp_v8_log1p01(&v);
    bp_v8_store(o, l);
    cr_assert_eq(o[0], 0.0);
    cr_assert(ulps(o[1], log(2.0)) <= 1);
    cr_assert_eq(o[2], 0x1p-1074);
    cr_assert(ulps(o[3], log1p(sp[3])) <= 1 && ulps(o[4], log1p(sp[4])) <= 1);
    cr_assert(isnan(o[5]));
    cr_assert(ulps(o[7], 1e-20) <= 1);
}

/* ulps against a long-double reference (x87: 64-bit mantissa, so "the truth" to ~2^-11 ulp). */
static double ulps_l(double got, long double want)
{
    double w = (double)want;
    if ((long double)got == want)
        return 0;
    return (double)(fabsl((long double)got - want) /
                    (long double)fmax(nextafter(fabs(w), INFINITY) - fabs(w), 4.9e-324));
}

/* tanh: within 2.6 ulp of the true value (glibc's own tanh is 2.2 ulp off at worst), more than
 * 1 ulp off for under 5% of arguments (glibc: about 3%); expm1 within 2 ulp; special values
 * exact. */
Test(vmath, tanh_and_expm1_against_long_double)
{
    double worst = 0, at = 0, worst_m1 = 0, at_m1 = 0;
    long over = 0, over_glibc = 0, n = 0;
    bp_rng r;
    bp_rng_seed(&r, 12);
    for (int i = 0; i < 100000; i++) {
        double x[8], y[8], xm[8], ym[8];
        for (int k = 0; k < 8; k++) {
            x[k] = i % 4 == 0 ? 50.0 * bp_rng_uniform(&r) - 25.0
                 : i % 4 == 1 ? ldexp(bp_rng_uniform(&r) - 0.5, -(int)(bp_rng_next(&r) % 40))
                              : 6.0 * bp_rng_uniform(&r) - 3.0;
            xm[k] = i % 2 ? 100.0 * bp_rng_uniform(&r) - 50.0 : 3.0 * bp_rng_uniform(&r) - 1.5;
        }
        bp_v8d v = bp_v8_load(x), vm = bp_v8_load(xm);
        bp_v8d t = bp_v8_tanh(&v), e = bp_v8_expm1(&vm);
        bp_v8_store(y, t);
        bp_v8_store(ym, e);
        for (int k = 0; k < 8; k++, n++) {
            double u = ulps_l(y[k], tanhl(x[k]));
            over += u > 1.0;
            over_glibc += ulps_l(tanh(x[k]), tanhl(x[k])) > 1.0;
            if (u > worst) {
                worst = u;
                at = x[k];
            }
            u = ulps_l(ym[k], expm1l(xm[k]));
            if (u > worst_m1) {
                worst_m1 = u;
                at_m1 = xm[k];
            }
        }
    }
    cr_assert(worst <= 2.6, "tanh: %g ulp at %.17g", worst, at);
    cr_assert(over <= n / 20, "tanh: %ld of %ld beyond 1 ulp (glibc: %ld)", over, n,
              over_glibc);
    cr_assert(worst_m1 <= 2.0, "expm1: %g ulp at %.17g", worst_m1, at_m1);
    double sp[8] = {0.0, -0.0, INFINITY, -INFINITY, NAN, 1e-310, -22.5, 1.0}, o[8];
    bp_v8d v = bp_v8_load(sp);
    bp_v8d t = bp_v8_tanh(&v);
    bp_v8_store(o, t);
    cr_assert(o[0] == 0.0 && !signbit(o[0]));
    cr_assert(o[1] == 0.0 && signbit(o[1]));
    cr_assert_eq(o[2], 1.0);
    cr_assert_eq(o[3], -1.0);
    cr_assert(isnan(o[4]));
    cr_assert_eq(o[5], 1e-310);
    cr_assert_eq(o[6], -1.0);
    cr_assert(ulps_l(o[7], tanhl(1.0L)) <= 1.0);
}

/* The kernels give the same bits whatever the instruction set they are compiled for (net.c
 * picks an AVX-512, AVX2 or baseline clone at load time; no FMA contraction anywhere). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KERNELS(suffix, attr)                                                      \
    attr static void kernels_##suffix(double *out, const double *in, int n)        \
    {                                                                              \
        for (int i = 0; i < n; i += 8) {                                           \
            bp_v8d v = bp_v8_load(in + i), a = -v * v;                             \
            bp_v8d t = bp_v8_tanh(&v), e = bp_v8_exp(&v), m = bp_v8_expm1(&v);    \
            bp_v8d u = bp_v8_exp(&a);                                              \
            bp_v8d l = bp_v8_log1p01(&u);                                          \
            bp_v8_store(out + 5 * i, t);                                           \
            bp_v8_store(out + 5 * i + 8, e);                                       \
            bp_v8_store(out + 5 * i + 16, m);                                      \
            bp_v8_store(out + 5 * i + 24, u);                                      \
            bp_v8_store(out + 5 * i + 32, l);                                      \
        }                                                                          \
    }
KERNELS(base, )
KERNELS(avx2, __attribute__((target("avx2"))))
KERNELS(avx512, __attribute__((target("avx512f"))))

Test(vmath, same_bits_on_every_instruction_set)
{
    enum { N = 4096 };
    double *in = malloc(sizeof(double) * N), *a = malloc(sizeof(double) * 5 * N),
           *b = malloc(sizeof(double) * 5 * N);
    fill_uniform(in, N, -30.0, 30.0, 5);
    kernels_base(a, in, N);
    if (__builtin_cpu_supports("avx2")) {
        kernels_avx2(b, in, N);
        cr_assert_eq(memcmp(a, b, sizeof(double) * 5 * N), 0, "avx2 differs from baseline");
    }
    if (__builtin_cpu_supports("avx512f")) {
        kernels_avx512(b, in, N);
        cr_assert_eq(memcmp(a, b, sizeof(double) * 5 * N), 0, "avx512f differs from baseline");
    }
    free(in);
    free(a);
    free(b);
}
#endif
