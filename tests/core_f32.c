/* core_f32.c — float32 passes and training (bp.h: BP_FLOAT32, bp_cost_grad_eval_f32,
 * bp_grad_f32, training.precision): float32 gradients against float64 centred finite
 * differences at float32 tolerances for every activation/output pairing, digits accuracy
 * within 0.5 points of float64, bit-identical weights with pools of 1, 2, 3 and 7 threads,
 * resume across thread counts, and checkpoints that refuse the other precision.
 */
#include "core/bp.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

#include "tests/core_dataset.h"
}

static void fill(double *v, int64_t n, double lo, double hi, uint64_t seed)
{
    bp_rng r;
    bp_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * bp_rng_uniform(&r);
}

static float *to_float(const double *v, int64_t n)
{
    float *f = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        f[i] = (float)v[i];
    return f;
}

/* The float32 gradient of a 5-7-6-K net on 300 rows (4 shards) against float64 centred
 * differences of J at the float32-rounded data and weights (the function float32 computes):
 * relative norm error below 1e-4 (float64 passes reach 1e-9; float32 rounding is 6e-8 a
 * step). */
static void check_f32(bp_act h, bp_out o)
{
    int K = o == BP_OUT_SOFTMAX ? 4 : 3;
    int sz[] = {5, 7, 6, K};
    bp_spec s = make_spec(4, sz, h, o);
    int64_t m = 300, P = bp_param_count(&s);
    double *X = malloc((size_t)(m * 5) * sizeof(double));
    double *Y = calloc((size_t)(m * K), sizeof(double));
    double *theta = malloc((size_t)P * sizeof(double));
    fill(X, m * 5, -1, 1, 1);
    fill(theta, P, -0.8, 0.8, 2);
    bp_rng r;
    bp_rng_seed(&r, 3);
    for (int64_t i = 0; i < m; i++) {
        if (o == BP_OUT_LINEAR)
            for (int k = 0; k < K; k++)
                Y[i * K + k] = bp_rng_uniform(&r) - 0.5;
        else
            Y[i * K + (int)(bp_rng_next(&r) % (uint64_t)K)] = 1.0;
    }
    /* float64 copies of the float32-rounded values */
    for (int64_t i = 0; i < m * 5; i++)
        X[i] = (double)(float)X[i];
    for (int64_t i = 0; i < P; i++)
        theta[i] = (double)(float)theta[i];
    float *Xf = to_float(X, m * 5), *Yf = to_float(Y, m * K);
    bp_error err = {{0}};
    bp_work *w32 = bp_work_new_precision(&s, m, BP_FLOAT32, &err);
    bp_work *w64 = bp_work_new(&s, m, &err);
    cr_assert_not_null(w32, "%s", err.msg);
    cr_assert_eq(bp_work_precision(w32), BP_FLOAT32);
    double *g = calloc((size_t)P, sizeof(double)), *num = malloc((size_t)P * sizeof(double));
    double lambda = 0.7;
    double J32 = bp_cost_grad_eval_f32(g, NULL, w32, Xf, Yf, NULL, theta, m, lambda, m);
    double J64 = bp_cost_grad(NULL, w64, X, Y, theta, m, lambda, m);
    cr_assert(fabs(J32 - J64) <= 1e-5 * fabs(J64), "J float32 %.9g vs float64 %.9g", J32, J64);
    /* the float64 entry points refuse a float32 workspace */
    cr_assert(isnan(bp_cost_grad(NULL, w32, X, Y, theta, m, lambda, m)));
    double eps = 1e-5, dn = 0, nn = 0;
    for (int64_t i = 0; i < P; i++) {
        double keep = theta[i];
        theta[i] = keep + eps;
        double jp = bp_cost_grad(NULL, w64, X, Y, theta, m, lambda, m);
        theta[i] = keep - eps;
        double jm = bp_cost_grad(NULL, w64, X, Y, theta, m, lambda, m);
        theta[i] = keep;
        num[i] = (jp - jm) / (2 * eps);
        dn += (num[i] - g[i]) * (num[i] - g[i]);
        nn += (num[i] + g[i]) * (num[i] + g[i]);
    }
    double rel = sqrt(dn) / sqrt(nn);
    cr_assert_lt(rel, 1e-4, "%s/%s: float32 gradient vs finite differences %.3g",
                 bp_act_name(h), bp_out_name(o), rel);
    /* and it is not the float64 gradient (the pass really ran in float32) */
    double *g64 = calloc((size_t)P, sizeof(double));
    bp_cost_grad(g64, w64, X, Y, theta, m, lambda, m);
    cr_assert_neq(memcmp(g, g64, (size_t)P * sizeof(double)), 0);
    cr_log_info("%s/%s float32 gradient rel err %.3g", bp_act_name(h), bp_out_name(o), rel);
    free(g64);
    free(g);
    free(num);
    free(Xf);
    free(Yf);
    free(X);
    free(Y);
    free(theta);
    bp_work_free(w32);
    bp_work_free(w64);
}

Test(f32_grad, sigmoid_sigmoid) { check_f32(BP_ACT_SIGMOID, BP_OUT_SIGMOID); }
Test(f32_grad, sigmoid_softmax) { check_f32(BP_ACT_SIGMOID, BP_OUT_SOFTMAX); }
Test(f32_grad, sigmoid_linear) { check_f32(BP_ACT_SIGMOID, BP_OUT_LINEAR); }
Test(f32_grad, tanh_sigmoid) { check_f32(BP_ACT_TANH, BP_OUT_SIGMOID); }
Test(f32_grad, tanh_softmax) { check_f32(BP_ACT_TANH, BP_OUT_SOFTMAX); }
Test(f32_grad, tanh_linear) { check_f32(BP_ACT_TANH, BP_OUT_LINEAR); }
Test(f32_grad, relu_sigmoid) { check_f32(BP_ACT_RELU, BP_OUT_SIGMOID); }
Test(f32_grad, relu_softmax) { check_f32(BP_ACT_RELU, BP_OUT_SOFTMAX); }
Test(f32_grad, relu_linear) { check_f32(BP_ACT_RELU, BP_OUT_LINEAR); }

static bp_trainer *digits_trainer(const dataset *d, bp_precision prec, bp_optimizer o,
                                  int64_t batch, int64_t epochs)
{
    int sz[] = {64, 25, 10};
    bp_spec s = make_spec(3, sz, BP_ACT_SIGMOID, BP_OUT_SOFTMAX);
    bp_train_config c;
    bp_train_config_default(&c);
    c.optimizer = o;
    c.learning_rate = o == BP_OPT_ADAM ? 0.01 : 1.0;
    c.batch_size = batch;
    c.lambda = 1.0;
    c.epochs = epochs;
    c.validation_split = 0.2;
    c.precision = prec;
    bp_data v = view(d);
    bp_error err = {{0}};
    bp_trainer *t = bp_trainer_new(&s, &c, &v, NULL, &err);
    cr_assert_not_null(t, "%s", err.msg);
    return t;
}

/* Runs n epochs (or to the end); returns the last progress. */
static bp_progress run_epochs(bp_trainer *t, int64_t n)
{
    bp_progress p = {0};
    bp_error err = {{0}};
    for (int64_t i = 0; i < n; i++) {
        bp_train_status st = bp_trainer_epoch(t, &p, NULL, &err);
        cr_assert_neq(st, BP_TRAIN_FAILED, "%s", err.msg);
        if (st != BP_TRAIN_CONTINUE)
            break;
    }
    return p;
}

static void digits_vs_f64(bp_optimizer o, int64_t batch, int64_t epochs)
{
    dataset d = load_digits();
    bp_trainer *t64 = digits_trainer(&d, BP_FLOAT64, o, batch, epochs);
    bp_trainer *t32 = digits_trainer(&d, BP_FLOAT32, o, batch, epochs);
    bp_progress p64 = run_epochs(t64, epochs), p32 = run_epochs(t32, epochs);
    cr_log_info("digits %s: held-out accuracy float64 %.4f float32 %.4f", bp_optimizer_name(o),
                p64.validation_accuracy, p32.validation_accuracy);
    cr_assert_geq(p32.validation_accuracy, 0.9);
    cr_assert_leq(fabs(p32.validation_accuracy - p64.validation_accuracy), 0.005,
                  "float32 %.4f vs float64 %.4f", p32.validation_accuracy,
                  p64.validation_accuracy);
    /* different arithmetic: not the same weights */
    int64_t P = 64 * 25 + 25 + 25 * 10 + 10;
    cr_assert_neq(memcmp(bp_trainer_theta(t32), bp_trainer_theta(t64), (size_t)P * 8), 0);
    bp_trainer_free(t64);
    bp_trainer_free(t32);
    dataset_free(&d);
}

Test(f32_learn, digits_adam_within_half_a_point, .timeout = 120)
{
    digits_vs_f64(BP_OPT_ADAM, 64, 30);
}

Test(f32_learn, digits_lbfgs_within_half_a_point, .timeout = 120)
{
    digits_vs_f64(BP_OPT_LBFGS, 0, 100);
}

/* Bit-identical weights with pools of 1, 2, 3 and 7 threads (mini-batch 512: 8 shards; and
 * full batch), and a checkpoint taken at one thread count resumed at another. */
static void check_det(bp_optimizer o, int64_t batch)
{
    dataset d = load_digits();
    int64_t P = 64 * 25 + 25 + 25 * 10 + 10;
    double *ref = malloc((size_t)P * sizeof(double));
    const int threads[] = {1, 2, 3, 7};
    bp_error err = {{0}};
    for (int k = 0; k < 4; k++) {
        bp_pool *pool = bp_pool_new(threads[k], &err);
        cr_assert_not_null(pool, "%s", err.msg);
        bp_trainer *t = digits_trainer(&d, BP_FLOAT32, o, batch, 6);
        cr_assert_eq(bp_trainer_set_pool(t, pool, &err), 0, "%s", err.msg);
        run_epochs(t, 6);
        if (k == 0)
            memcpy(ref, bp_trainer_theta(t), (size_t)P * sizeof(double));
        else
            cr_assert_eq(memcmp(ref, bp_trainer_theta(t), (size_t)P * sizeof(double)), 0,
                         "%s: %d threads gave other weights than 1", bp_optimizer_name(o),
                         threads[k]);
        bp_trainer_free(t);
        bp_pool_free(pool);
    }
    /* 3 epochs on 7 threads, checkpoint, resume on 2 threads for 3 more */
    bp_pool *p7 = bp_pool_new(7, &err), *p2 = bp_pool_new(2, &err);
    bp_trainer *a = digits_trainer(&d, BP_FLOAT32, o, batch, 6);
    bp_trainer_set_pool(a, p7, &err);
    run_epochs(a, 3);
    size_t n = bp_trainer_checkpoint_size(a);
    unsigned char *img = malloc(n);
    cr_assert_eq(bp_trainer_checkpoint_save(a, img, n, &err), 0, "%s", err.msg);
    bp_trainer *b = digits_trainer(&d, BP_FLOAT32, o, batch, 6);
    bp_trainer_set_pool(b, p2, &err);
    cr_assert_eq(bp_trainer_checkpoint_load(b, img, n, &err), 0, "%s", err.msg);
    run_epochs(b, 3);
    cr_assert_eq(bp_trainer_epochs_done(b), 6);
    cr_assert_eq(memcmp(ref, bp_trainer_theta(b), (size_t)P * sizeof(double)), 0,
                 "%s: resumed across thread counts gave other weights", bp_optimizer_name(o));
    /* a float64 trainer refuses the float32 image, naming the precision */
    bp_trainer *c = digits_trainer(&d, BP_FLOAT64, o, batch, 6);
    cr_assert_eq(bp_trainer_checkpoint_load(c, img, n, &err), -1);
    cr_assert(strstr(err.msg, "precision") != NULL, "%s", err.msg);
    bp_trainer_free(a);
    bp_trainer_free(b);
    bp_trainer_free(c);
    bp_pool_free(p7);
    bp_pool_free(p2);
    free(img);
    free(ref);
    dataset_free(&d);
}

Test(f32_det, adam_minibatch_threads_1_2_3_7_and_resume, .timeout = 120)
{
    check_det(BP_OPT_ADAM, 512);
}

Test(f32_det, gd_full_batch_threads_1_2_3_7_and_resume, .timeout = 120)
{
    check_det(BP_OPT_GD, 0);
}

/* A float64 image (this build's) loads into a float64 trainer and not into a float32 one;
 * a bad precision is refused by the config's one validator, naming the field. */
Test(f32_config, precision_is_validated_and_checkpoints_keep_to_theirs)
{
    bp_train_config c;
    bp_train_config_default(&c);
    cr_assert_eq(c.precision, BP_FLOAT64);
    cr_assert_str_eq(bp_precision_name(BP_FLOAT32), "float32");
    cr_assert_str_eq(bp_precision_name(BP_FLOAT64), "float64");
    c.precision = (bp_precision)7;
    bp_error err = {{0}};
    cr_assert_eq(bp_train_config_validate(&c, &err), -1);
    cr_assert(strncmp(err.msg, "precision:", 10) == 0, "%s", err.msg);
    dataset d = load_digits();
    bp_trainer *a = digits_trainer(&d, BP_FLOAT64, BP_OPT_ADAM, 64, 2);
    run_epochs(a, 1);
    size_t n = bp_trainer_checkpoint_size(a);
    unsigned char *img = malloc(n);
    cr_assert_eq(bp_trainer_checkpoint_save(a, img, n, &err), 0);
    bp_trainer *b32 = digits_trainer(&d, BP_FLOAT32, BP_OPT_ADAM, 64, 2);
    cr_assert_eq(bp_trainer_checkpoint_load(b32, img, n, &err), -1);
    cr_assert(strstr(err.msg, "precision") != NULL, "%s", err.msg);
    bp_trainer *b64 = digits_trainer(&d, BP_FLOAT64, BP_OPT_ADAM, 64, 2);
    cr_assert_eq(bp_trainer_checkpoint_load(b64, img, n, &err), 0, "%s", err.msg);
    free(img);
    bp_trainer_free(a);
    bp_trainer_free(b32);
    bp_trainer_free(b64);
    dataset_free(&d);
}
