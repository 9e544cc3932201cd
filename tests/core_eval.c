/* core_eval.c — Criterion tests of core/eval.c: bp_evaluate's figures against a reference
 * written here (a per-sample forward pass in plain loops, confusion and scores counted by
 * hand, ROC AUC by counting every positive/negative pair), the validation split's marks
 * against the trainer's, and standardization: fit on the unmarked rows, apply, and the fold
 * into Θ^(1) reproducing forward(Θ, (x − μ)/σ) to 1e-12.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/bp.h"

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

static void fill_uniform(double *v, int64_t n, double lo, double hi, uint64_t seed)
{
    bp_rng r;
    bp_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * bp_rng_uniform(&r);
}

/* out (s_L) = the net's output for one input x, scalar loops and libm. */
static void naive_forward(double *out, const bp_spec *sp, const double *theta, const double *x)
{
    double a[64], z[64];
    int L = sp->n_layers, n = sp->sizes[0];
    memcpy(a, x, sizeof(double) * (size_t)n);
    const double *t = theta;
    for (int l = 0; l + 1 < L; l++) {
        int si = sp->sizes[l], so = sp->sizes[l + 1];
        for (int j = 0; j < so; j++) {
            double s = t[j * (si + 1)];
            for (int k = 0; k < si; k++)
                s += t[j * (si + 1) + 1 + k] * a[k];
            z[j] = s;
        }
        t += so * (si + 1);
        for (int j = 0; j < so; j++) {
            if (l + 2 < L)
                a[j] = sp->hidden == BP_ACT_SIGMOID ? 1 / (1 + exp(-z[j]))
                       : sp->hidden == BP_ACT_TANH  ? tanh(z[j])
                                                    : (z[j] > 0 ? z[j] : 0);
            else if (sp->output == BP_OUT_SIGMOID)
                a[j] = 1 / (1 + exp(-z[j]));
            else
                a[j] = z[j];
        }
        if (l + 2 == L && sp->output == BP_OUT_SOFTMAX) {
            double s = 0;
            for (int j = 0; j < so; j++)
                s += exp(z[j]);
            for (int j = 0; j < so; j++)
                a[j] = exp(z[j]) / s;
        }
    }
    memcpy(out, a, sizeof(double) * (size_t)sp->sizes[L - 1]);
}

static double close_to(double a, double b)
{
    return fabs(a - b) <= 1e-9 * fmax(1.0, fabs(b));
}

typedef struct {
    bp_spec spec;
    int64_t m, P;
    double *X, *Y, *theta, *A;
    bp_work *w;
} evcase;

/* m rows; one-hot targets of K classes (s_L == 1: 0/1) drawn from a seed, or reals. */
static void evcase_init(evcase *c, int n, const int *sizes, bp_out o, int64_t m, uint64_t seed)
{
    bp_error err = {{0}};
    c->spec = make_spec(n, sizes, BP_ACT_TANH, o);
    c->m = m;
    c->P = bp_param_count(&c->spec);
    int n_in = sizes[0], K = sizes[n - 1];
    c->X = calloc((size_t)(m * n_in), sizeof(double));
    c->Y = calloc((size_t)(m * K), sizeof(double));
    c->A = calloc((size_t)(m * K), sizeof(double));
    c->theta = malloc(sizeof(double) * (size_t)c->P);
    fill_uniform(c->X, m * n_in, -2, 2, seed);
    fill_uniform(c->theta, c->P, -1.5, 1.5, seed + 1);
    bp_rng r;
    bp_rng_seed(&r, seed + 2);
    for (int64_t i = 0; i < m; i++) {
        if (o == BP_OUT_LINEAR)
            for (int k = 0; k < K; k++)
                c->Y[i * K + k] = 3 * bp_rng_uniform(&r) - 1;
        else if (K == 1)
            c->Y[i] = bp_rng_next(&r) % 2;
        else
            c->Y[i * K + (int)(bp_rng_next(&r) % (uint64_t)K)] = 1;
        naive_forward(c->A + i * K, &c->spec, c->theta, c->X + i * n_in);
    }
    c->w = bp_work_new(&c->spec, m, &err);
    cr_assert_not_null(c->w, "%s", err.msg);
}

static void evcase_free(evcase *c)
{
    free(c->X);
    free(c->Y);
    free(c->A);
    free(c->theta);
    bp_work_free(c->w);
}

static int argmax(const double *v, int K)
{
    if (K == 1)
        return v[0] >= 0.5;
    int b = 0;
    for (int k = 1; k < K; k++)
        if (v[k] > v[b])
            b = k;
    return b;
}

/* Every classification figure of bp_evaluate recomputed from the naive outputs. */
static void check_classification(int n, const int *sizes, bp_out o, double lambda)
{
    evcase c;
    evcase_init(&c, n, sizes, o, 301, 7 + (uint64_t)sizes[n - 1]);
    int Ko = sizes[n - 1], K = Ko == 1 ? 2 : Ko;
    bp_eval e;
    bp_error err = {{0}};
    cr_assert_eq(bp_evaluate(&e, c.w, c.X, c.Y, c.theta, c.m, lambda, &err), 0, "%s", err.msg);
    cr_assert_eq(e.K, K);
    int64_t conf[16][16] = {{0}};
    double ll = 0, reg = 0;
    int64_t right = 0;
    for (int64_t i = 0; i < c.m; i++) {
        const double *a = c.A + i * Ko, *y = c.Y + i * Ko;
        int t = argmax(y, Ko), p = argmax(a, Ko);
        conf[t][p]++;
        right += t == p;
        for (int k = 0; k < Ko; k++)
            ll -= o == BP_OUT_SOFTMAX ? y[k] * log(a[k])
                                      : y[k] * log(a[k]) + (1 - y[k]) * log(1 - a[k]);
    }
    ll /= (double)c.m;
    for (int l = 0, off = 0; l + 1 < n; off += sizes[l + 1] * (sizes[l] + 1), l++)
        for (int j = 0; j < sizes[l + 1]; j++)
            for (int k = 1; k <= sizes[l]; k++)
                reg += c.theta[off + j * (sizes[l] + 1) + k] * c.theta[off + j * (sizes[l] + 1) + k];
    double J = ll + lambda / (2.0 * (double)c.m) * reg;
    cr_assert(close_to(e.log_loss, ll), "log_loss %.17g vs %.17g", e.log_loss, ll);
    cr_assert(close_to(e.cost, J), "cost %.17g vs %.17g", e.cost, J);
    cr_assert(close_to(e.accuracy, (double)right / (double)c.m));
    double macro_f1 = 0, wf1 = 0;
    for (int k = 0; k < K; k++) {
        int64_t tp = conf[k][k], pred = 0, sup = 0;
        for (int j = 0; j < K; j++) {
            cr_assert_eq(e.confusion[k * K + j], conf[k][j], "confusion[%d][%d]", k, j);
            pred += conf[j][k];
            sup += conf[k][j];
        }
        double p = pred ? (double)tp / (double)pred : 0, r = sup ? (double)tp / (double)sup : 0;
        double f = p + r > 0 ? 2 * p * r / (p + r) : 0;
        cr_assert(close_to(e.precision[k], p) && close_to(e.recall[k], r) && close_to(e.f1[k], f),
                  "class %d", k);
        cr_assert_eq(e.support[k], sup);
        macro_f1 += f / K;
        wf1 += f * (double)sup / (double)c.m;
    }
    cr_assert(close_to(e.macro[2], macro_f1) && close_to(e.weighted[2], wf1));
    if (K == 2) { /* every (positive, negative) pair: 1 when ordered right, ½ on a tie */
        double wins = 0, pairs = 0;
        for (int64_t i = 0; i < c.m; i++)
            for (int64_t j = 0; j < c.m; j++) {
                if (argmax(c.Y + i * Ko, Ko) != 1 || argmax(c.Y + j * Ko, Ko) != 0)
                    continue;
                double si = c.A[i * Ko + Ko - 1], sj = c.A[j * Ko + Ko - 1];
                wins += si > sj ? 1 : si == sj ? 0.5 : 0;
                pairs++;
            }
        cr_assert(close_to(e.roc_auc, wins / pairs), "auc %g vs %g", e.roc_auc, wins / pairs);
    } else {
        cr_assert(isnan(e.roc_auc));
    }
    bp_eval_clear(&e);
    evcase_free(&c);
}

Test(evaluate, softmax_four_classes) { check_classification(3, (int[]){3, 5, 4}, BP_OUT_SOFTMAX, 0.7); }
Test(evaluate, softmax_two_classes_auc) { check_classification(3, (int[]){3, 5, 2}, BP_OUT_SOFTMAX, 0); }
Test(evaluate, one_sigmoid_output_auc) { check_classification(3, (int[]){4, 6, 1}, BP_OUT_SIGMOID, 1); }
Test(evaluate, sigmoid_three_outputs) { check_classification(2, (int[]){4, 3}, BP_OUT_SIGMOID, 0.2); }

Test(evaluate, linear_mse_mae_r2)
{
    evcase c;
    evcase_init(&c, 3, (int[]){3, 4, 2}, BP_OUT_LINEAR, 200, 99);
    bp_eval e;
    bp_error err = {{0}};
    cr_assert_eq(bp_evaluate(&e, c.w, c.X, c.Y, c.theta, c.m, 0, &err), 0);
    double se = 0, ae = 0, r2 = 0;
    for (int k = 0; k < 2; k++) {
        double mu = 0, res = 0, tot = 0;
        for (int64_t i = 0; i < c.m; i++)
            mu += c.Y[i * 2 + k] / (double)c.m;
        for (int64_t i = 0; i < c.m; i++) {
            double d = c.A[i * 2 + k] - c.Y[i * 2 + k], t = c.Y[i * 2 + k] - mu;
            se += d * d;
            ae += fabs(d);
            res += d * d;
            tot += t * t;
        }
        r2 += (1 - res / tot) / 2;
    }
    cr_assert(close_to(e.mse, se / (2.0 * (double)c.m)) && close_to(e.mae, ae / (2.0 * (double)c.m)));
    cr_assert(close_to(e.r2, r2), "r2 %g vs %g", e.r2, r2);
    cr_assert(close_to(e.cost, se / (2.0 * (double)c.m)));
    cr_assert_eq(e.K, 0);
    cr_assert_null(e.confusion);
    bp_eval_clear(&e);
    evcase_free(&c);
}

Test(standardize, fit_skips_marked_rows_and_constant_columns)
{
    double X[] = {1, 5, 2, 3, 5, 2, 100, 5, -7, 5, 5, 2}; /* 4 rows × 3; column 1 constant */
    unsigned char skip[] = {0, 0, 1, 0};
    double mean[3], sd[3];
    bp_standardize_fit(mean, sd, X, skip, 4, 3);
    cr_assert(close_to(mean[0], 3.0) && close_to(mean[1], 5.0) && close_to(mean[2], 2.0));
    cr_assert(close_to(sd[0], sqrt(8.0 / 3)), "sd0 %g", sd[0]);
    cr_assert_eq(sd[1], 1.0);
    cr_assert_eq(sd[2], 1.0);
    double Z[12];
    bp_standardize_apply(Z, X, mean, sd, 4, 3);
    cr_assert(close_to(Z[9], (5 - 3.0) / sqrt(8.0 / 3)) && Z[10] == 0.0);
}

Test(standardize, split_marks_match_the_trainer)
{
    bp_train_config cfg;
    bp_train_config_default(&cfg);
    cfg.validation_split = 0.3;
    cfg.seed = 5;
    unsigned char mark[50];
    bp_error err = {{0}};
    cr_assert_eq(bp_split_mark(mark, 50, &cfg, &err), 0);
    int held = 0;
    for (int i = 0; i < 50; i++)
        held += mark[i];
    cr_assert_eq(held, 15);
    cfg.validation_split = 0;
    cr_assert_eq(bp_split_mark(mark, 50, &cfg, &err), 0);
    for (int i = 0; i < 50; i++)
        cr_assert_eq(mark[i], 0);
}

Test(standardize, fold_equals_forward_on_standardized_inputs)
{
    const int sizes[] = {5, 7, 3};
    bp_spec sp = make_spec(3, sizes, BP_ACT_SIGMOID, BP_OUT_SOFTMAX);
    int64_t P = bp_param_count(&sp);
    double theta[100], folded[100], X[40 * 5], Z[40 * 5], mean[5], sd[5];
    cr_assert(P <= 100);
    fill_uniform(theta, P, -1, 1, 3);
    fill_uniform(X, 40 * 5, -10, 30, 4);
    for (int i = 0; i < 40; i++)
        X[i * 5 + 2] = 4.25; /* a constant feature */
    bp_standardize_fit(mean, sd, X, NULL, 40, 5);
    bp_standardize_apply(Z, X, mean, sd, 40, 5);
    bp_fold_standardize(folded, theta, mean, sd, &sp);
    for (int64_t k = sizes[1] * (sizes[0] + 1); k < P; k++)
        cr_assert_eq(folded[k], theta[k], "later layers are copied");
    for (int i = 0; i < 40; i++) {
        double a[3], b[3];
        naive_forward(a, &sp, folded, X + i * 5);
        naive_forward(b, &sp, theta, Z + i * 5);
        for (int k = 0; k < 3; k++)
            cr_assert(fabs(a[k] - b[k]) <= 1e-12, "row %d out %d: %.17g vs %.17g", i, k, a[k], b[k]);
    }
}
