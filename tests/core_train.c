/* core_train.c — Criterion tests for the trainer (core/train.c, optim.c, checkpoint.c):
 * configuration and its messages, every optimizer descending J, the mini-batch λ semantics,
 * learning XOR and the digits, bit-exact determinism and checkpoint resume (and the previous
 * image version), early stopping, convergence, cancellation and divergence, and what each
 * epoch reports (both accuracies from the evaluation pass, the epoch of the weights held, why
 * training stopped).
 *
 * Expected values are computed here independently (by hand for a 1→1 linear network) or are
 * properties that a wrong implementation would break (held-out accuracy, memcmp of weights).
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

/* A small seeded 3-class problem: 4 features, class = which of 3 centres is nearest. */
static dataset make_blobs(int64_t m, uint64_t seed)
{
    dataset d = {0};
    d.m = m;
    d.n_in = 4;
    d.n_out = 3;
    d.X = malloc((size_t)(m * 4) * sizeof(double));
    d.Y = calloc((size_t)(m * 3), sizeof(double));
    d.labels = malloc((size_t)m * sizeof(int32_t));
    bp_rng r;
    bp_rng_seed(&r, seed);
    static const double centre[3][4] = {{1, 0, 0, 1}, {0, 1, 1, 0}, {1, 1, 0, 0}};
    for (int64_t i = 0; i < m; i++) {
        int c = (int)(i % 3);
        for (int j = 0; j < 4; j++)
            d.X[i * 4 + j] = centre[c][j] + 0.6 * (bp_rng_uniform(&r) - 0.5);
        d.Y[i * 3 + c] = 1.0;
        d.labels[i] = c;
    }
    return d;
}

/* Like make_blobs but hard to fit: wide noise and 30% of labels replaced by random ones, so
 * validation J turns up after a few epochs and early stopping has something to do. */
static dataset make_noisy(int64_t m, uint64_t seed)
{
    dataset d = {0};
    d.m = m;
    d.n_in = 4;
    d.n_out = 3;
    d.X = malloc((size_t)(m * 4) * sizeof(double));
    d.Y = calloc((size_t)(m * 3), sizeof(double));
    d.labels = malloc((size_t)m * sizeof(int32_t));
    bp_rng r;
    bp_rng_seed(&r, seed);
    static const double centre[3][4] = {{1, 0, 0, 1}, {0, 1, 1, 0}, {1, 1, 0, 0}};
    for (int64_t i = 0; i < m; i++) {
        int c = (int)(i % 3);
        for (int j = 0; j < 4; j++)
            d.X[i * 4 + j] = centre[c][j] + 2.0 * (bp_rng_uniform(&r) - 0.5);
        int lab = bp_rng_uniform(&r) < 0.3 ? (int)(bp_rng_next(&r) % 3) : c;
        d.Y[i * 3 + lab] = 1.0;
        d.labels[i] = lab;
    }
    return d;
}

/* A trainer from theta0 (NULL: the seed's weights), asserting it could be made. */
static bp_trainer *new_trainer_from(const bp_spec *s, const bp_train_config *c,
                                   const dataset *d, const double *theta0)
{
    bp_error err = {{0}};
    bp_data v = view(d);
    bp_trainer *t = bp_trainer_new(s, c, &v, theta0, &err);
    cr_assert_not_null(t, "bp_trainer_new: %s", err.msg);
    return t;
}

static bp_trainer *new_trainer(const bp_spec *s, const bp_train_config *c, const dataset *d)
{
    return new_trainer_from(s, c, d, NULL);
}

/* The 1 → 1 net with a linear output: J is a parabola that tests can compute by hand. */
static bp_spec linear_1x1(void)
{
    int sz[] = {1, 1};
    return make_spec(2, sz, BP_ACT_SIGMOID, BP_OUT_LINEAR);
}

/* Runs epochs until the trainer says it is done; returns the last status. */
static bp_train_status run_to_end(bp_trainer *t, bp_progress *last)
{
    bp_error err = {{0}};
    bp_progress p;
    bp_train_status st;
    do {
        st = bp_trainer_epoch(t, &p, NULL, &err);
    } while (st == BP_TRAIN_CONTINUE);
    cr_assert_eq(st, BP_TRAIN_DONE, "training ended with %d: %s", (int)st, err.msg);
    if (last)
        *last = p;
    return st;
}

static double full_cost(const bp_spec *s, const dataset *d, const double *theta, double lambda)
{
    bp_error err = {{0}};
    bp_work *w = bp_work_new(s, d->m, &err);
    cr_assert_not_null(w, "%s", err.msg);
    double J = bp_cost_grad(NULL, w, d->X, d->Y, theta, d->m, lambda, d->m);
    bp_work_free(w);
    return J;
}

/* ---- configuration ---- */

Test(train_config, defaults_are_the_documented_ones)
{
    bp_train_config c;
    memset(&c, 0xab, sizeof c);
    bp_train_config_default(&c);
    cr_assert_eq(c.optimizer, BP_OPT_GD);
    cr_assert_eq(c.learning_rate, 1.0);
    cr_assert_eq(c.lambda, 1.0);
    cr_assert_eq(c.epochs, 400);
    cr_assert_eq(c.batch_size, 0);
    cr_assert_eq(c.seed, 42);
    cr_assert_eq(c.validation_split, 0.0);
    cr_assert_eq(c.early_stopping_patience, 0);
    cr_assert_eq(c.init_epsilon, 0.0);
    cr_assert_eq(c.momentum, 0.9);
    cr_assert_eq(c.beta1, 0.9);
    cr_assert_eq(c.beta2, 0.999);
    cr_assert_eq(c.adam_eps, 1e-8);
    cr_assert_eq(c.lbfgs_memory, 10);
    bp_error err = {{0}};
    cr_assert_eq(bp_train_config_validate(&c, &err), 0, "%s", err.msg);
    cr_assert_str_eq(bp_optimizer_name(BP_OPT_GD), "gd");
    cr_assert_str_eq(bp_optimizer_name(BP_OPT_SGD), "sgd");
    cr_assert_str_eq(bp_optimizer_name(BP_OPT_MOMENTUM), "momentum");
    cr_assert_str_eq(bp_optimizer_name(BP_OPT_ADAM), "adam");
    cr_assert_str_eq(bp_optimizer_name(BP_OPT_LBFGS), "lbfgs");
}

#define EPS_MSG "init_epsilon: must be a number in (0, 1e6], or 0 or null (per-layer default)"

static void expect_invalid(const bp_train_config *c, const char *msg)
{
    bp_error err = {{0}};
    cr_assert_eq(bp_train_config_validate(c, &err), -1, "expected \"%s\"", msg);
    cr_assert_str_eq(err.msg, msg);
}

Test(train_config, messages_name_the_json_field)
{
    bp_train_config c;
    bp_train_config_default(&c);
    c.learning_rate = 0;
    expect_invalid(&c, "learning_rate: must be a finite number > 0");
    c.learning_rate = NAN;
    expect_invalid(&c, "learning_rate: must be a finite number > 0");
    bp_train_config_default(&c);
    c.lambda = -1;
    expect_invalid(&c, "lambda: must be a finite number >= 0");
    bp_train_config_default(&c);
    c.epochs = 0;
    expect_invalid(&c, "epochs: must be an integer in 1..1000000");
    c.epochs = 1000001;
    expect_invalid(&c, "epochs: must be an integer in 1..1000000");
    bp_train_config_default(&c);
    c.optimizer = BP_OPT_SGD;
    c.batch_size = -1;
    expect_invalid(&c, "batch_size: must be an integer in 0..1000000000 (0 = full batch)");
    bp_train_config_default(&c);
    c.batch_size = 32; /* gd is full batch */
    expect_invalid(&c, "batch_size: gd is full-batch: use 0, or sgd, momentum or adam");
    bp_train_config_default(&c);
    c.validation_split = 1.0;
    expect_invalid(&c, "validation_split: must be in [0, 1)");
    c.validation_split = -0.1;
    expect_invalid(&c, "validation_split: must be in [0, 1)");
    bp_train_config_default(&c);
    c.early_stopping_patience = 5;
    expect_invalid(&c, "early_stopping_patience: needs validation_split > 0");
    c.validation_split = 0.2;
    bp_error err = {{0}};
    cr_assert_eq(bp_train_config_validate(&c, &err), 0, "%s", err.msg);
    bp_train_config_default(&c);
    c.optimizer = (bp_optimizer)7;
    expect_invalid(&c, "optimizer: must be one of gd, sgd, momentum, adam, lbfgs");
    bp_train_config_default(&c);
    c.momentum = 1.0;
    expect_invalid(&c, "momentum: must be in [0, 1)");
    bp_train_config_default(&c);
    c.lbfgs_memory = 0;
    expect_invalid(&c, "lbfgs_memory: must be an integer in 1..100");
    bp_train_config_default(&c);
    c.init_epsilon = INFINITY;
    expect_invalid(&c, EPS_MSG);
    c.init_epsilon = -0.5;
    expect_invalid(&c, EPS_MSG);
    bp_train_config_default(&c);
    c.adam_eps = 0;
    expect_invalid(&c, "adam_epsilon: must be a finite number > 0");
}

Test(train_config, trainer_refuses_bad_data_and_splits)
{
    int sz[] = {4, 3, 3};
    bp_spec s = make_spec(3, sz, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    dataset d = make_blobs(3, 1);
    bp_train_config c;
    bp_train_config_default(&c);
    bp_error err = {{0}};
    bp_data v = view(&d);

    c.validation_split = 0.2; /* 0.6 of a row: none held out */
    cr_assert_null(bp_trainer_new(&s, &c, &v, NULL, &err));
    cr_assert_str_eq(err.msg, "validation_split: 0.2 of 3 rows leaves no validation rows");

    bp_train_config_default(&c);
    v.n_in = 5;
    cr_assert_null(bp_trainer_new(&s, &c, &v, NULL, &err));
    cr_assert_str_eq(err.msg, "dataset: has 5 features but layers[0] is 4");

    v = view(&d);
    d.X[5] = NAN;
    cr_assert_null(bp_trainer_new(&s, &c, &v, NULL, &err));
    cr_assert_str_eq(err.msg, "X[1][1]: must be a finite number");
    dataset_free(&d);
}

/* ---- optimizers ---- */

/* Every optimizer lowers J(Θ) on the training set (with λ), from the same initial weights. */
Test(train_opt, every_optimizer_decreases_J)
{
    int sz[] = {4, 5, 3};
    bp_spec s = make_spec(3, sz, BP_ACT_TANH, BP_OUT_SOFTMAX);
    dataset d = make_blobs(90, 7);
    struct {
        bp_optimizer o;
        double lr;
        int64_t batch;
    } cases[] = {{BP_OPT_GD, 0.5, 0},      {BP_OPT_SGD, 0.1, 16},  {BP_OPT_SGD, 0.5, 0},
                 {BP_OPT_MOMENTUM, 0.05, 10}, {BP_OPT_ADAM, 0.01, 16}, {BP_OPT_ADAM, 0.05, 0},
                 {BP_OPT_LBFGS, 1.0, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        bp_train_config c;
        bp_train_config_default(&c);
        c.optimizer = cases[k].o;
        c.learning_rate = cases[k].lr;
        c.batch_size = cases[k].batch;
        c.lambda = 0.5;
        c.epochs = 15;
        bp_trainer *t = new_trainer(&s, &c, &d);
        double J0 = full_cost(&s, &d, bp_trainer_theta(t), c.lambda);
        bp_progress p;
        run_to_end(t, &p);
        double J1 = full_cost(&s, &d, bp_trainer_theta(t), c.lambda);
        cr_assert_eq(p.epoch, 15);
        cr_assert_float_eq(p.cost, J1, 1e-12 * fabs(J1), "%s: reported cost %.17g vs %.17g",
                           bp_optimizer_name(c.optimizer), p.cost, J1);
        cr_assert_lt(J1, 0.8 * J0, "%s (batch %lld): J %g -> %g", bp_optimizer_name(c.optimizer),
                     (long long)c.batch_size, J0, J1);
        cr_assert(isnan(p.validation_cost));
        cr_assert(p.accuracy >= 0 && p.accuracy <= 1);
        cr_assert_gt(p.samples_per_second, 0);
        bp_trainer_free(t);
    }
    dataset_free(&d);
}

/* With batch_size = m, sgd is exactly gd (same weights, same J) — λ is not rescaled. */
Test(train_opt, sgd_with_whole_batch_is_gd)
{
    int sz[] = {4, 6, 3};
    bp_spec s = make_spec(3, sz, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    dataset d = make_blobs(60, 3);
    bp_train_config c;
    bp_train_config_default(&c);
    c.epochs = 1;
    c.lambda = 3.0;
    bp_trainer *gd = new_trainer(&s, &c, &d);
    c.optimizer = BP_OPT_SGD;
    c.batch_size = d.m;
    bp_trainer *sgd = new_trainer(&s, &c, &d);
    bp_progress pg, ps;
    run_to_end(gd, &pg);
    run_to_end(sgd, &ps);
    int64_t P = bp_param_count(&s);
    cr_assert_eq(memcmp(bp_trainer_theta(gd), bp_trainer_theta(sgd), (size_t)P * sizeof(double)),
                 0);
    cr_assert_eq(pg.cost, ps.cost);
    bp_trainer_free(gd);
    bp_trainer_free(sgd);
    dataset_free(&d);
}

/* Mini-batch steps use (λ/m_train)·Θ, not λ/batch: checked by hand on a 1→1 linear net,
 * J = Σ(θ0 + θ1 x − y)²/(2m) + λ θ1²/(2m), with every row equal so the shuffle cannot matter. */
Test(train_opt, minibatch_lambda_uses_training_set_size)
{
    int sz[] = {1, 1};
    bp_spec s = make_spec(2, sz, BP_ACT_SIGMOID, BP_OUT_LINEAR);
    enum { M = 8 };
    double X[M], Y[M];
    for (int i = 0; i < M; i++) {
        X[i] = 2.0;
        Y[i] = 1.0;
    }
    dataset d = {X, Y, NULL, M, 1, 1};
    bp_train_config c;
    bp_train_config_default(&c);
    c.optimizer = BP_OPT_SGD;
    c.batch_size = 2; /* 4 steps per epoch */
    c.learning_rate = 0.05;
    c.lambda = 2.0;
    c.epochs = 3;
    double theta0[2] = {0.3, -0.4};
    bp_error err = {{0}};
    bp_data v = view(&d);
    bp_trainer *t = bp_trainer_new(&s, &c, &v, theta0, &err);
    cr_assert_not_null(t, "%s", err.msg);
    bp_progress p;
    run_to_end(t, &p);
    cr_assert(isnan(p.accuracy)); /* no labels */

    double b = theta0[0], w = theta0[1];
    for (int step = 0; step < 3 * (M / 2); step++) {
        double e = b + w * 2.0 - 1.0;
        double gb = e, gw = e * 2.0 + c.lambda / M * w;
        b -= c.learning_rate * gb;
        w -= c.learning_rate * gw;
    }
    const double *th = bp_trainer_theta(t);
    cr_assert_float_eq(th[0], b, 1e-13, "bias %.17g vs %.17g", th[0], b);
    cr_assert_float_eq(th[1], w, 1e-13, "weight %.17g vs %.17g", th[1], w);
    double e = b + 2.0 * w - 1.0;
    double J = e * e / 2.0 + c.lambda * w * w / (2.0 * M);
    cr_assert_float_eq(p.cost, J, 1e-13, "cost %.17g vs %.17g", p.cost, J);
    cr_assert_eq(bp_trainer_epochs_done(t), 3);
    bp_trainer_free(t);
}

/* momentum and adam by hand on the same 1→1 linear net, full batch. */
Test(train_opt, momentum_and_adam_match_hand_computation)
{
    int sz[] = {1, 1};
    bp_spec s = make_spec(2, sz, BP_ACT_SIGMOID, BP_OUT_LINEAR);
    double X[4] = {0, 1, 2, 3}, Y[4] = {1, 3, 2, 5};
    dataset d = {X, Y, NULL, 4, 1, 1};
    bp_data v = view(&d);
    double theta0[2] = {0.1, 0.2};
    for (int which = 0; which < 2; which++) {
        bp_train_config c;
        bp_train_config_default(&c);
        c.optimizer = which ? BP_OPT_ADAM : BP_OPT_MOMENTUM;
        c.learning_rate = which ? 0.1 : 0.02;
        c.lambda = 0.5;
        c.epochs = 5;
        bp_error err = {{0}};
        bp_trainer *t = bp_trainer_new(&s, &c, &v, theta0, &err);
        cr_assert_not_null(t, "%s", err.msg);
        run_to_end(t, NULL);
        double th[2] = {theta0[0], theta0[1]}, m1[2] = {0}, m2[2] = {0};
        for (int k = 1; k <= 5; k++) {
            double g[2] = {0, 0};
            for (int i = 0; i < 4; i++) {
                double e = th[0] + th[1] * X[i] - Y[i];
                g[0] += e / 4;
                g[1] += e * X[i] / 4;
            }
            g[1] += c.lambda / 4 * th[1];
            for (int j = 0; j < 2; j++) {
                if (which) {
                    m1[j] = c.beta1 * m1[j] + (1 - c.beta1) * g[j];
                    m2[j] = c.beta2 * m2[j] + (1 - c.beta2) * g[j] * g[j];
                    double mh = m1[j] / (1 - pow(c.beta1, k)), vh = m2[j] / (1 - pow(c.beta2, k));
                    th[j] -= c.learning_rate * mh / (sqrt(vh) + c.adam_eps);
                } else {
                    m1[j] = c.momentum * m1[j] - c.learning_rate * g[j];
                    th[j] += m1[j];
                }
            }
        }
        const double *got = bp_trainer_theta(t);
        cr_assert_float_eq(got[0], th[0], 1e-12, "%s bias %.17g vs %.17g",
                           bp_optimizer_name(c.optimizer), got[0], th[0]);
        cr_assert_float_eq(got[1], th[1], 1e-12, "%s weight %.17g vs %.17g",
                           bp_optimizer_name(c.optimizer), got[1], th[1]);
        bp_trainer_free(t);
    }
}

/* ---- learning ---- */

static void check_xor(bp_optimizer o, double lr, int64_t epochs)
{
    int sz[] = {2, 4, 1};
    bp_spec s = make_spec(3, sz, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    double X[8] = {0, 0, 0, 1, 1, 0, 1, 1}, Y[4] = {0, 1, 1, 0};
    int32_t L[4] = {0, 1, 1, 0};
    dataset d = {X, Y, L, 4, 2, 1};
    bp_train_config c;
    bp_train_config_default(&c);
    c.optimizer = o;
    c.learning_rate = lr;
    c.lambda = 0;
    c.epochs = epochs;
    c.seed = 1;
    bp_trainer *t = new_trainer(&s, &c, &d);
    bp_progress p;
    run_to_end(t, &p);
    cr_assert_lt(p.cost, 0.1, "%s: XOR cost %g after %lld epochs", bp_optimizer_name(o), p.cost,
                 (long long)p.epoch);
    cr_assert_eq(p.accuracy, 1.0, "%s: XOR accuracy %g", bp_optimizer_name(o), p.accuracy);
    bp_error err = {{0}};
    bp_work *w = bp_work_new(&s, 4, &err);
    int32_t pred[4];
    bp_predict(NULL, pred, w, X, bp_trainer_theta(t), 4);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pred[i], L[i], "%s: XOR row %d", bp_optimizer_name(o), i);
    bp_work_free(w);
    bp_trainer_free(t);
}

Test(train_learn, xor_with_gd)
{
    check_xor(BP_OPT_GD, 2.0, 5000);
}

Test(train_learn, xor_with_lbfgs)
{
    check_xor(BP_OPT_LBFGS, 1.0, 300);
}

static void check_digits(bp_optimizer o, double lr, int64_t batch, int64_t epochs)
{
    dataset d = load_digits();
    int sz[] = {64, 25, 10};
    bp_spec s = make_spec(3, sz, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    bp_train_config c;
    bp_train_config_default(&c);
    c.optimizer = o;
    c.learning_rate = lr;
    c.batch_size = batch;
    c.lambda = 1.0;
    c.epochs = epochs;
    c.validation_split = 0.2;
    bp_trainer *t = new_trainer(&s, &c, &d);
    double *hist = malloc((size_t)epochs * sizeof(double));
    bp_progress p;
    bp_error err = {{0}};
    bp_train_status st;
    int64_t n = 0;
    do {
        st = bp_trainer_epoch(t, &p, NULL, &err);
        cr_assert_neq(st, BP_TRAIN_FAILED, "%s", err.msg);
        cr_assert_lt(n, epochs);
        hist[n++] = p.cost;
    } while (st == BP_TRAIN_CONTINUE);
    cr_assert_eq(st, BP_TRAIN_DONE);
    cr_assert(isfinite(p.validation_cost));
    cr_assert_geq(p.validation_accuracy, 0.95, "%s: held-out accuracy %.4f after %lld epochs",
                  bp_optimizer_name(o), p.validation_accuracy, (long long)p.epoch);
    /* Cost history: the last is well below the first, and it falls across each tenth. */
    cr_assert_lt(hist[n - 1], 0.3 * hist[0], "%s: cost %g -> %g", bp_optimizer_name(o), hist[0],
                 hist[n - 1]);
    int64_t step = n / 10 > 0 ? n / 10 : 1;
    for (int64_t i = step; i < n; i += step)
        cr_assert_lt(hist[i], hist[i - step], "%s: cost rose from epoch %lld to %lld",
                     bp_optimizer_name(o), (long long)(i - step + 1), (long long)(i + 1));
    cr_log_info("digits %s: held-out accuracy %.4f, J %.4f -> %.4f over %lld epochs",
                bp_optimizer_name(o), p.validation_accuracy, hist[0], hist[n - 1], (long long)n);
    free(hist);
    bp_trainer_free(t);
    dataset_free(&d);
}

Test(train_learn, digits_adam_held_out_95)
{
    check_digits(BP_OPT_ADAM, 0.01, 64, 40);
}

Test(train_learn, digits_lbfgs_held_out_95)
{
    check_digits(BP_OPT_LBFGS, 1.0, 0, 150);
}

/* ---- determinism and resume ---- */

static double *train_theta(const bp_spec *s, const bp_train_config *c, const dataset *d)
{
    bp_trainer *t = new_trainer(s, c, d);
    run_to_end(t, NULL);
    int64_t P = bp_param_count(s);
    double *th = malloc((size_t)P * sizeof(double));
    memcpy(th, bp_trainer_theta(t), (size_t)P * sizeof(double));
    bp_trainer_free(t);
    return th;
}

Test(train_det, same_seed_same_bits_other_seed_other_bits)
{
    int sz[] = {4, 7, 3};
    bp_spec s = make_spec(3, sz, BP_ACT_RELU, BP_OUT_SOFTMAX);
    dataset d = make_blobs(120, 11);
    bp_train_config c;
    bp_train_config_default(&c);
    c.optimizer = BP_OPT_ADAM;
    c.learning_rate = 0.01;
    c.batch_size = 16;
    c.epochs = 8;
    c.validation_split = 0.25;
    int64_t P = bp_param_count(&s);
    size_t bytes = (size_t)P * sizeof(double);
    double *a = train_theta(&s, &c, &d), *b = train_theta(&s, &c, &d);
    cr_assert_eq(memcmp(a, b, bytes), 0);
    c.seed = 43;
    double *e = train_theta(&s, &c, &d);
    cr_assert_neq(memcmp(a, e, bytes), 0);
    free(a);
    free(b);
    free(e);
    dataset_free(&d);
}

/* Runs a job straight to its end, and again as k epochs, checkpoint, a brand-new trainer, load,
 * the rest: the final weights and epochs must be identical to the bit. With patience > 0 the
 * data are noisy enough that the straight run stops early after k, and some epoch before k did
 * not improve, so the early-stopping counters must survive the checkpoint too. */
static void check_resume(bp_optimizer o, double lr, int64_t batch, int64_t k, int64_t patience)
{
    int sz[] = {4, 6, 3};
    bp_spec s = make_spec(3, sz, BP_ACT_TANH, BP_OUT_SIGMOID);
    dataset d = make_noisy(60, 5);
    bp_train_config c;
    bp_train_config_default(&c);
    c.optimizer = o;
    c.learning_rate = lr;
    c.batch_size = batch;
    c.epochs = patience > 0 ? 40 : 12;
    c.lambda = 0.3;
    c.validation_split = 0.3;
    c.early_stopping_patience = patience;
    int64_t P = bp_param_count(&s);
    const char *name = bp_optimizer_name(o);
    bp_error err = {{0}};

    bp_trainer *straight = new_trainer(&s, &c, &d);
    bp_progress ps;
    bp_train_status st;
    double best = INFINITY;
    int stalls_before_k = 0;
    do {
        st = bp_trainer_epoch(straight, &ps, NULL, &err);
        if (ps.validation_cost < best)
            best = ps.validation_cost;
        else if (ps.epoch <= k)
            stalls_before_k++;
    } while (st == BP_TRAIN_CONTINUE);
    cr_assert_eq(st, BP_TRAIN_DONE, "%s: %s", name, err.msg);
    cr_assert_gt(ps.epoch, k, "%s: the straight run ended at epoch %lld", name,
                 (long long)ps.epoch);
    if (patience > 0) {
        cr_assert_lt(ps.epoch, c.epochs, "%s: early stopping never triggered", name);
        cr_assert_gt(stalls_before_k, 0, "%s: no stalled epoch before the checkpoint", name);
    }

    bp_trainer *first = new_trainer(&s, &c, &d);
    bp_progress p;
    for (int64_t i = 0; i < k; i++)
        cr_assert_eq(bp_trainer_epoch(first, &p, NULL, &err), BP_TRAIN_CONTINUE, "%s", name);
    size_t n = bp_trainer_checkpoint_size(first);
    unsigned char *img = malloc(n);
    cr_assert_eq(bp_trainer_checkpoint_save(first, img, n, &err), 0, "%s: %s", name, err.msg);
    cr_assert_eq(memcmp(img, "BPCK", 4), 0);
    cr_assert_eq(bp_trainer_checkpoint_save(first, img, n - 1, &err), -1);
    bp_trainer_free(first);

    bp_trainer *second = new_trainer(&s, &c, &d);
    cr_assert_eq(bp_trainer_epochs_done(second), 0);
    cr_assert_eq(bp_trainer_checkpoint_load(second, img, n, &err), 0, "%s: %s", name, err.msg);
    cr_assert_eq(bp_trainer_epochs_done(second), k);
    bp_progress pr;
    run_to_end(second, &pr);

    cr_assert_eq(bp_trainer_epochs_done(second), bp_trainer_epochs_done(straight), "%s", name);
    cr_assert_eq(memcmp(bp_trainer_theta(second), bp_trainer_theta(straight),
                        (size_t)P * sizeof(double)),
                 0, "%s: resumed weights differ", name);
    cr_assert_eq(pr.cost, ps.cost, "%s", name);
    cr_assert_eq(pr.validation_cost, ps.validation_cost, "%s", name);
    cr_assert_eq(pr.accuracy, ps.accuracy, "%s", name);
    cr_assert_eq(pr.validation_accuracy, ps.validation_accuracy, "%s", name);
    cr_assert_eq(pr.best_epoch, ps.best_epoch, "%s", name);
    cr_assert_eq(pr.best_cost, ps.best_cost, "%s", name);
    cr_assert_eq(pr.best_validation_cost, ps.best_validation_cost, "%s", name);
    cr_assert_eq(pr.stop, ps.stop, "%s", name);
    cr_assert_eq(ps.stop, patience > 0 ? BP_STOP_EARLY_STOPPING : BP_STOP_COMPLETED, "%s", name);
    if (patience > 0)
        cr_assert_lt(ps.best_epoch, ps.epoch, "%s", name);
    free(img);
    bp_trainer_free(straight);
    bp_trainer_free(second);
    dataset_free(&d);
}

Test(train_resume, sgd)
{
    check_resume(BP_OPT_SGD, 0.3, 8, 7, 4);
}

Test(train_resume, momentum)
{
    check_resume(BP_OPT_MOMENTUM, 0.05, 10, 8, 4);
}

Test(train_resume, adam)
{
    check_resume(BP_OPT_ADAM, 0.02, 16, 8, 4);
}

Test(train_resume, lbfgs)
{
    check_resume(BP_OPT_LBFGS, 1.0, 0, 7, 4);
}

Test(train_resume, gd)
{
    check_resume(BP_OPT_GD, 1.0, 0, 5, 0);
}

/* A version-1 image (before correct, init_cost, best_epoch, best_train_cost and stop were
 * added: five u64 after the PRNG state; and before version 3's precision, the header's last
 * field) made from a version-3 one: header length at byte 20,
 * state 13 u64 after the header; version, total size and FNV-1a checksum rewritten. */
/* Sets an image's last 8 bytes to the FNV-1a checksum of the rest (as checkpoint.c does). */
static void fix_checksum(unsigned char *img, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n - 8; i++) {
        h ^= img[i];
        h *= 0x100000001b3ULL;
    }
    for (int i = 0; i < 8; i++)
        img[n - 8 + i] = (unsigned char)(h >> (8 * i));
}

static unsigned char *as_version_1(const unsigned char *img, size_t n, size_t *n1)
{
    /* This build writes version 3: its header's last field (the precision) is dropped too. */
    uint64_t nh = 0;
    for (int i = 0; i < 8; i++)
        nh |= (uint64_t)img[20 + i] << (8 * i);
    size_t prec = 28 + (size_t)(nh - 1) * 8;   /* the precision field */
    size_t cut = 28 + (size_t)nh * 8 + 13 * 8; /* the five version-2 fields */
    *n1 = n - 48;
    unsigned char *v1 = malloc(*n1);
    memcpy(v1, img, prec);
    memcpy(v1 + prec, img + prec + 8, cut - prec - 8);
    memcpy(v1 + cut - 8, img + cut + 40, n - cut - 40);
    uint64_t fields[3] = {1, (uint64_t)*n1, nh - 1};
    for (int f = 0; f < 3; f++)
        for (int i = 0; i < 8; i++)
            v1[4 + 8 * f + i] = (unsigned char)(fields[f] >> (8 * i));
    fix_checksum(v1, *n1);
    return v1;
}

/* The previous image version still resumes to the same bits and the same report. */
Test(train_resume, version_1_images_still_load)
{
    int sz[] = {4, 6, 3};
    bp_spec s = make_spec(3, sz, BP_ACT_TANH, BP_OUT_SIGMOID);
    dataset d = make_noisy(60, 5);
    bp_optimizer opts[] = {BP_OPT_GD, BP_OPT_SGD, BP_OPT_LBFGS};
    for (int k = 0; k < 3; k++) {
        bp_train_config c;
        bp_train_config_default(&c);
        c.optimizer = opts[k];
        c.learning_rate = opts[k] == BP_OPT_LBFGS ? 1.0 : 0.3;
        c.batch_size = opts[k] == BP_OPT_SGD ? 8 : 0;
        c.epochs = 12;
        c.lambda = 0.3;
        c.validation_split = 0.3;
        const char *name = bp_optimizer_name(c.optimizer);
        bp_trainer *straight = new_trainer(&s, &c, &d);
        bp_progress ps, pr;
        run_to_end(straight, &ps);
        bp_trainer *first = new_trainer(&s, &c, &d);
        bp_error err = {{0}};
        for (int i = 0; i < 5; i++)
            cr_assert_eq(bp_trainer_epoch(first, &pr, NULL, &err), BP_TRAIN_CONTINUE);
        size_t n = bp_trainer_checkpoint_size(first), n1;
        unsigned char *img = malloc(n);
        cr_assert_eq(bp_trainer_checkpoint_save(first, img, n, &err), 0, "%s", err.msg);
        unsigned char *v1 = as_version_1(img, n, &n1);
        bp_trainer *second = new_trainer(&s, &c, &d);
        cr_assert_eq(bp_trainer_checkpoint_load(second, v1, n1, &err), 0, "%s: %s", name,
                     err.msg);
        run_to_end(second, &pr);
        cr_assert_eq(memcmp(bp_trainer_theta(second), bp_trainer_theta(straight),
                            (size_t)bp_param_count(&s) * sizeof(double)),
                     0, "%s: resumed weights differ", name);
        cr_assert_eq(pr.cost, ps.cost, "%s", name);
        cr_assert_eq(pr.accuracy, ps.accuracy, "%s", name);
        cr_assert_eq(pr.validation_accuracy, ps.validation_accuracy, "%s", name);
        cr_assert_eq(pr.best_epoch, ps.best_epoch, "%s", name);
        cr_assert_eq(pr.stop, ps.stop, "%s", name);
        /* version 4 does not exist */
        img[4] = 4;
        cr_assert_eq(bp_trainer_checkpoint_load(second, img, n, &err), -1);
        cr_assert_str_eq(err.msg, "checkpoint: version 4 is not supported (expected 1 to 3)");
        free(v1);
        free(img);
        bp_trainer_free(first);
        bp_trainer_free(second);
        bp_trainer_free(straight);
    }
    dataset_free(&d);
}

/* A copy of img with the state field at index `field` (0 epoch, 1 finished, 2 have_grad,
 * 3 cost, 4 adam_t, 5 lb_pos, 6 lb_count, 7 best_cost, 8 since_best) set to v and the
 * checksum made right again, as a hostile or damaged store could hand it over. */
static unsigned char *with_state_field(const unsigned char *img, size_t n, int field, uint64_t v)
{
    uint64_t nh = 0;
    for (int i = 0; i < 8; i++)
        nh |= (uint64_t)img[20 + i] << (8 * i);
    unsigned char *out = malloc(n);
    memcpy(out, img, n);
    size_t at = 28 + (size_t)nh * 8 + (size_t)field * 8;
    for (int i = 0; i < 8; i++)
        out[at + i] = (unsigned char)(v >> (8 * i));
    fix_checksum(out, n);
    return out;
}

/* Counters at INT64_MAX (or past what the epochs done can make) are a clear error naming the
 * field, not a trainer that overflows at its next step; the same image with sane values
 * loads. */
Test(train_resume, load_checks_each_counter)
{
    int sz[] = {4, 6, 3};
    bp_spec s = make_spec(3, sz, BP_ACT_TANH, BP_OUT_SIGMOID);
    dataset d = make_blobs(30, 2);
    bp_train_config c;
    bp_train_config_default(&c);
    c.optimizer = BP_OPT_ADAM;
    c.batch_size = 8;
    c.epochs = 20;
    c.early_stopping_patience = 5;
    c.validation_split = 0.2;
    bp_trainer *t = new_trainer(&s, &c, &d);
    bp_error err = {{0}};
    bp_progress p;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(bp_trainer_epoch(t, &p, NULL, &err), BP_TRAIN_CONTINUE, "%s", err.msg);
    size_t n = bp_trainer_checkpoint_size(t);
    unsigned char *img = malloc(n);
    cr_assert_eq(bp_trainer_checkpoint_save(t, img, n, &err), 0, "%s", err.msg);
    const struct {
        int field;
        uint64_t value;
        const char *name;
    } bad[] = {{4, (uint64_t)INT64_MAX, "adam_t"}, {4, 3 * 3 + 4 * 3, "adam_t"},
               {8, (uint64_t)INT64_MAX, "since_best"}, {8, 4, "since_best"},
               {0, (uint64_t)INT64_MAX, "epoch"}, {1, 2, "finished"}, {4, (uint64_t)-1, "adam_t"}};
    bp_trainer *u = new_trainer(&s, &c, &d);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char *x = with_state_field(img, n, bad[i].field, bad[i].value);
        cr_expect_eq(bp_trainer_checkpoint_load(u, x, n, &err), -1, "%s = %llu loaded",
                     bad[i].name, (unsigned long long)bad[i].value);
        cr_expect(strstr(err.msg, bad[i].name), "%s: %s", bad[i].name, err.msg);
        free(x);
    }
    /* in range: 3 epochs of ceil(24/8) = 3 steps make adam_t 9; since_best up to 3 */
    unsigned char *ok = with_state_field(img, n, 8, 3);
    cr_expect_eq(bp_trainer_checkpoint_load(u, ok, n, &err), 0, "%s", err.msg);
    free(ok);
    cr_expect_eq(bp_trainer_checkpoint_load(u, img, n, &err), 0, "%s", err.msg);
    free(img);
    bp_trainer_free(t);
    bp_trainer_free(u);
    dataset_free(&d);
}

Test(train_resume, load_refuses_another_spec_and_damaged_images)
{
    int sz[] = {4, 6, 3}, sz2[] = {4, 5, 3};
    bp_spec s = make_spec(3, sz, BP_ACT_TANH, BP_OUT_SIGMOID);
    bp_spec s2 = make_spec(3, sz2, BP_ACT_TANH, BP_OUT_SIGMOID);
    dataset d = make_blobs(30, 2);
    bp_train_config c;
    bp_train_config_default(&c);
    c.epochs = 5;
    bp_trainer *t = new_trainer(&s, &c, &d);
    bp_error err = {{0}};
    bp_progress p;
    cr_assert_eq(bp_trainer_epoch(t, &p, NULL, &err), BP_TRAIN_CONTINUE);
    size_t n = bp_trainer_checkpoint_size(t);
    unsigned char *img = malloc(n);
    cr_assert_eq(bp_trainer_checkpoint_save(t, img, n, &err), 0, "%s", err.msg);

    bp_trainer *other = new_trainer(&s2, &c, &d);
    const double *before = bp_trainer_theta(other);
    double keep = before[0];
    cr_assert_eq(bp_trainer_checkpoint_load(other, img, n, &err), -1);
    cr_assert_str_eq(err.msg, "checkpoint: made for a different parameter count than this "
                              "trainer's");
    cr_assert_eq(bp_trainer_theta(other)[0], keep);
    cr_assert_eq(bp_trainer_epochs_done(other), 0);
    bp_trainer_free(other);

    c.lambda = 2.0; /* same shape, other config */
    other = new_trainer(&s, &c, &d);
    cr_assert_eq(bp_trainer_checkpoint_load(other, img, n, &err), -1);
    cr_assert_str_eq(err.msg, "checkpoint: made for a different lambda than this trainer's");
    bp_trainer_free(other);

    cr_assert_eq(bp_trainer_checkpoint_load(t, img, n - 8, &err), -1);
    cr_assert(strstr(err.msg, "truncated"), "%s", err.msg);
    img[n / 2] ^= 1;
    cr_assert_eq(bp_trainer_checkpoint_load(t, img, n, &err), -1);
    cr_assert_str_eq(err.msg, "checkpoint: checksum mismatch (corrupted image)");
    img[0] = 'X';
    cr_assert_eq(bp_trainer_checkpoint_load(t, img, n, &err), -1);
    cr_assert_str_eq(err.msg, "checkpoint: not a backpropd checkpoint");
    free(img);
    bp_trainer_free(t);
    dataset_free(&d);
}

/* ---- early stopping, cancellation, divergence ---- */

/* Every row is the same, so validation J is J on that row with the training set's λ term and
 * can be recomputed here; momentum makes it oscillate so early stopping triggers. */
Test(train_stop, early_stopping_restores_the_best_weights)
{
    int sz[] = {1, 1};
    bp_spec s = make_spec(2, sz, BP_ACT_SIGMOID, BP_OUT_LINEAR);
    enum { M = 10 };
    double X[M], Y[M];
    for (int i = 0; i < M; i++) {
        X[i] = 1.0;
        Y[i] = 2.0;
    }
    dataset d = {X, Y, NULL, M, 1, 1};
    bp_train_config c;
    bp_train_config_default(&c);
    c.optimizer = BP_OPT_MOMENTUM;
    c.learning_rate = 0.5;
    c.momentum = 0.95;
    c.lambda = 0.1;
    c.epochs = 200;
    c.validation_split = 0.2;
    c.early_stopping_patience = 3;
    double theta0[2] = {0, 0};
    bp_error err = {{0}};
    bp_data v = view(&d);
    bp_trainer *t = bp_trainer_new(&s, &c, &v, theta0, &err);
    cr_assert_not_null(t, "%s", err.msg);
    bp_progress p;
    bp_train_status st;
    double best = INFINITY, last = NAN, best_train = NAN;
    int64_t best_epoch = 0;
    do {
        st = bp_trainer_epoch(t, &p, NULL, &err);
        last = p.validation_cost;
        if (p.validation_cost < best) {
            best = p.validation_cost;
            best_train = p.cost;
            best_epoch = p.epoch;
        }
        if (st == BP_TRAIN_CONTINUE) {
            /* while it runs, the weights held are the epoch's own */
            cr_assert_eq(p.best_epoch, p.epoch);
            cr_assert_eq(p.stop, BP_STOP_NONE);
        }
    } while (st == BP_TRAIN_CONTINUE);
    cr_assert_eq(st, BP_TRAIN_DONE, "%s", err.msg);
    cr_assert_lt(p.epoch, c.epochs, "early stopping never triggered");
    cr_assert_eq(p.epoch, best_epoch + c.early_stopping_patience);
    cr_assert_gt(last, best);
    /* The last progress describes the epoch that ran; best_* the restored weights. */
    cr_assert_eq(p.stop, BP_STOP_EARLY_STOPPING);
    cr_assert_str_eq(bp_stop_reason_name(p.stop), "early_stopping");
    cr_assert_eq(p.validation_cost, last);
    cr_assert_eq(p.best_epoch, best_epoch);
    cr_assert_eq(p.best_validation_cost, best);
    cr_assert_eq(p.best_cost, best_train);
    const double *th = bp_trainer_theta(t);
    double e = th[0] + th[1] - 2.0;
    int64_t m_train = M - 2;
    double J = e * e / 2.0 + c.lambda * th[1] * th[1] / (2.0 * (double)m_train);
    cr_assert_float_eq(J, best, 1e-12, "restored weights give J %.17g, best was %.17g", J, best);
    /* Done is final, and reports on the restored weights. */
    cr_assert_eq(bp_trainer_epoch(t, &p, NULL, &err), BP_TRAIN_DONE);
    cr_assert_eq(p.validation_cost, best);
    cr_assert_eq(p.cost, best_train);
    cr_assert_eq(p.best_epoch, best_epoch);
    cr_assert_eq(p.stop, BP_STOP_EARLY_STOPPING);
    cr_assert_eq(bp_trainer_epochs_done(t), best_epoch + c.early_stopping_patience);
    bp_trainer_free(t);
}

Test(train_stop, cancel_stops_before_the_next_batch)
{
    int sz[] = {4, 5, 3};
    bp_spec s = make_spec(3, sz, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    dataset d = make_blobs(50, 9);
    bp_optimizer opts[] = {BP_OPT_SGD, BP_OPT_GD, BP_OPT_LBFGS};
    for (int k = 0; k < 3; k++) {
        bp_train_config c;
        bp_train_config_default(&c);
        c.optimizer = opts[k];
        c.batch_size = opts[k] == BP_OPT_SGD ? 5 : 0;
        c.epochs = 10;
        bp_trainer *t = new_trainer(&s, &c, &d);
        int64_t P = bp_param_count(&s);
        double *before = malloc((size_t)P * sizeof(double));
        memcpy(before, bp_trainer_theta(t), (size_t)P * sizeof(double));
        volatile int cancel = 1;
        bp_error err = {{0}};
        bp_progress p;
        cr_assert_eq(bp_trainer_epoch(t, &p, &cancel, &err), BP_TRAIN_CANCELLED);
        cr_assert_eq(memcmp(before, bp_trainer_theta(t), (size_t)P * sizeof(double)), 0,
                     "%s: a step ran after cancel", bp_optimizer_name(c.optimizer));
        cr_assert_eq(bp_trainer_epochs_done(t), 0);
        size_t n = bp_trainer_checkpoint_size(t);
        void *img = malloc(n);
        cr_assert_eq(bp_trainer_checkpoint_save(t, img, n, &err), -1);
        free(img);
        free(before);
        bp_trainer_free(t);
    }
    dataset_free(&d);
}

/* Mid-epoch: the flag is the low half of the trainer's own θ[0] (a bias that starts at 0.0),
 * so it turns nonzero exactly when the first mini-batch step lands. Exactly one step must have
 * run: θ is the hand-computed result of one sgd step on a 1→1 linear net. */
Test(train_stop, cancel_mid_epoch_stops_within_one_batch)
{
    int sz[] = {1, 1};
    bp_spec s = make_spec(2, sz, BP_ACT_SIGMOID, BP_OUT_LINEAR);
    enum { M = 12 };
    double X[M], Y[M];
    for (int i = 0; i < M; i++) {
        X[i] = 1.5;
        Y[i] = 0.7;
    }
    dataset d = {X, Y, NULL, M, 1, 1};
    bp_train_config c;
    bp_train_config_default(&c);
    c.optimizer = BP_OPT_SGD;
    c.batch_size = 3;
    c.learning_rate = 0.1;
    c.lambda = 0.5;
    c.epochs = 2;
    double theta0[2] = {0.0, 0.3};
    bp_error err = {{0}};
    bp_data v = view(&d);
    bp_trainer *t = bp_trainer_new(&s, &c, &v, theta0, &err);
    cr_assert_not_null(t, "%s", err.msg);

    double e = theta0[0] + 1.5 * theta0[1] - 0.7;
    double b1 = theta0[0] - c.learning_rate * e;
    double w1 = theta0[1] - c.learning_rate * (e * 1.5 + c.lambda / M * theta0[1]);
    uint64_t bits;
    memcpy(&bits, &b1, sizeof bits);
    cr_assert_neq(bits & 0xffffffffu, 0, "precondition: the step changes the low half");

    const volatile int *flag = (const volatile int *)(const void *)bp_trainer_theta(t);
    bp_progress p;
    cr_assert_eq(bp_trainer_epoch(t, &p, flag, &err), BP_TRAIN_CANCELLED);
    const double *th = bp_trainer_theta(t);
    cr_assert_float_eq(th[0], b1, 1e-15, "bias %.17g vs one step %.17g", th[0], b1);
    cr_assert_float_eq(th[1], w1, 1e-15, "weight %.17g vs one step %.17g", th[1], w1);
    cr_assert_eq(bp_trainer_epochs_done(t), 0);
    bp_trainer_free(t);
}

/* The relu / linear digits net at learning rate 50 (it used to "succeed" at J = 4e172): the
 * first epoch's J passes 1e6 × max(J(Θ₀), 1), with J(Θ₀) computed here from the trainer's
 * initial weights, so the run fails as diverged, naming the epoch and both costs. */
Test(train_stop, divergence_fails_with_the_epoch)
{
    dataset d = load_digits();
    int sz[] = {64, 25, 10};
    bp_spec s = make_spec(3, sz, BP_ACT_RELU, BP_OUT_LINEAR);
    bp_train_config c;
    bp_train_config_default(&c);
    c.learning_rate = 50;
    c.epochs = 400;
    bp_trainer *t = new_trainer(&s, &c, &d);
    double J0 = full_cost(&s, &d, bp_trainer_theta(t), c.lambda);
    bp_error err = {{0}};
    bp_progress p;
    bp_train_status st;
    int64_t n = 0;
    do {
        st = bp_trainer_epoch(t, &p, NULL, &err);
        n++;
    } while (st == BP_TRAIN_CONTINUE);
    cr_assert_eq(st, BP_TRAIN_FAILED, "status %d after %lld epochs", (int)st, (long long)n);
    cr_assert_eq(p.stop, BP_STOP_DIVERGED);
    cr_assert_str_eq(bp_stop_reason_name(p.stop), "diverged");
    cr_assert_eq(p.epoch, n);
    double J = full_cost(&s, &d, bp_trainer_theta(t), c.lambda);
    cr_assert_eq(p.cost, J, "reported %.17g, the weights give %.17g", p.cost, J);
    cr_assert_gt(J, BP_DIVERGENCE_FACTOR * fmax(J0, 1.0));
    char want[256];
    snprintf(want, sizeof want, "diverged at epoch %lld: cost %.3g > 1e6 × max(initial cost "
             "%.3g, 1); lower the learning rate", (long long)n, J, J0);
    cr_assert_str_eq(err.msg, want);
    cr_assert_eq(p.best_epoch, 0);
    cr_assert_eq(bp_trainer_epoch(t, &p, NULL, &err), BP_TRAIN_FAILED); /* failure is final */
    cr_assert_eq(bp_trainer_epochs_done(t), n);
    size_t len = bp_trainer_checkpoint_size(t);
    void *img = malloc(len);
    cr_assert_eq(bp_trainer_checkpoint_save(t, img, len, &err), -1);
    free(img);
    bp_trainer_free(t);
    dataset_free(&d);
}

/* Weights so large that J(Θ₀) is already infinite: the first epoch's J is not finite. */
Test(train_stop, divergence_on_a_cost_that_is_not_finite)
{
    bp_spec s = linear_1x1();
    double X[4] = {1, 2, 3, 4}, Y[4] = {1, 2, 3, 4};
    dataset d = {X, Y, NULL, 4, 1, 1};
    bp_train_config c;
    bp_train_config_default(&c);
    double theta0[2] = {1e200, 1e200};
    bp_trainer *t = new_trainer_from(&s, &c, &d, theta0);
    bp_error err = {{0}};
    bp_progress p;
    cr_assert_eq(bp_trainer_epoch(t, &p, NULL, &err), BP_TRAIN_FAILED);
    cr_assert_eq(p.stop, BP_STOP_DIVERGED);
    cr_assert(!isfinite(p.cost));
    const char *want = isnan(p.cost)
                           ? "diverged at epoch 1: cost became NaN (initial cost inf)"
                           : "diverged at epoch 1: cost became infinite (initial cost inf)";
    cr_assert_eq(strncmp(err.msg, want, strlen(want)), 0, "got \"%s\"", err.msg);
    bp_trainer_free(t);
}

/* Full batch, a weight vector at which every gradient element is exactly 0 (the net already
 * fits y = 1 + x, λ = 0): gd's step leaves Θ unchanged, so the run stops as converged after
 * one epoch; lbfgs finds no descent step either. A run that does not hit it completes. */
Test(train_stop, converged_and_completed)
{
    bp_spec s = linear_1x1();
    double X[4] = {0, 1, 2, 3}, Y[4] = {1, 2, 3, 4};
    dataset d = {X, Y, NULL, 4, 1, 1};
    bp_optimizer opts[] = {BP_OPT_GD, BP_OPT_LBFGS};
    for (int k = 0; k < 2; k++) {
        bp_train_config c;
        bp_train_config_default(&c);
        c.optimizer = opts[k];
        c.lambda = 0;
        c.learning_rate = 0.1;
        c.epochs = 50;
        double theta0[2] = {1, 1};
        bp_trainer *t = new_trainer_from(&s, &c, &d, theta0);
        bp_error err = {{0}};
        bp_progress p;
        cr_assert_eq(bp_trainer_epoch(t, &p, NULL, &err), BP_TRAIN_DONE, "%s: %s",
                     bp_optimizer_name(c.optimizer), err.msg);
        cr_assert_eq(p.stop, BP_STOP_CONVERGED, "%s", bp_optimizer_name(c.optimizer));
        cr_assert_str_eq(bp_stop_reason_name(p.stop), "converged");
        cr_assert_eq(p.epoch, 1);
        cr_assert_eq(p.best_epoch, 1);
        cr_assert_eq(memcmp(bp_trainer_theta(t), theta0, sizeof theta0), 0);
        cr_assert_eq(p.cost, 0.0);
        bp_trainer_free(t);

        if (opts[k] != BP_OPT_GD)
            continue; /* lbfgs gets there exactly */
        /* From elsewhere gd runs every epoch. */
        theta0[0] = 0;
        t = new_trainer_from(&s, &c, &d, theta0);
        run_to_end(t, &p);
        cr_assert_eq(p.epoch, c.epochs, "%s", bp_optimizer_name(c.optimizer));
        cr_assert_eq(p.stop, BP_STOP_COMPLETED, "%s", bp_optimizer_name(c.optimizer));
        cr_assert_str_eq(bp_stop_reason_name(p.stop), "completed");
        cr_assert_eq(p.best_epoch, c.epochs);
        cr_assert_eq(p.best_cost, p.cost);
        cr_assert_eq(p.best_cost, full_cost(&s, &d, bp_trainer_theta(t), 0));
        cr_assert(isnan(p.best_validation_cost));
        bp_trainer_free(t);
    }
}

/* The end-of-epoch evaluation reports what bp_cost_grad and bp_accuracy give on the trainer's
 * weights, from the pass that gives the training cost (mini-batch: bp_cost_eval; full batch:
 * bp_cost_grad_eval). With a split, the training and held-out rows partition the dataset, so
 * the two accuracies' counts add up to the rows right over all of it. */
static void check_eval(bp_optimizer o, int64_t batch)
{
    dataset d = load_digits();
    int sz[] = {64, 32, 10};
    bp_spec s = make_spec(3, sz, BP_ACT_SIGMOID, BP_OUT_SIGMOID);
    for (int split = 0; split < 2; split++) {
        bp_train_config c;
        bp_train_config_default(&c);
        c.optimizer = o;
        c.batch_size = batch;
        c.learning_rate = 0.05;
        c.lambda = 0.5;
        c.epochs = 2;
        c.validation_split = split ? 0.25 : 0.0;
        bp_data v = view(&d);
        bp_error err = {{0}};
        bp_trainer *t = bp_trainer_new(&s, &c, &v, NULL, &err);
        cr_assert_not_null(t, "%s", err.msg);
        bp_progress p;
        cr_assert_eq(bp_trainer_epoch(t, &p, NULL, &err), BP_TRAIN_CONTINUE, "%s", err.msg);
        bp_work *w = bp_work_new(&s, d.m, &err);
        const double *th = bp_trainer_theta(t);
        double all = bp_accuracy(w, d.X, d.labels, th, d.m);
        if (!split) {
            double J = bp_cost_grad(NULL, w, d.X, d.Y, th, d.m, c.lambda, d.m);
            cr_assert_eq(p.cost, J, "cost %.17g vs %.17g", p.cost, J);
            cr_assert_eq(p.accuracy, all);
            cr_assert(isnan(p.validation_cost));
            cr_assert(isnan(p.validation_accuracy));
        } else {
            int64_t m_train, m_val;
            cr_assert_eq(bp_split_sizes(d.m, 0.25, &m_train, &m_val, &err), 0);
            cr_assert_eq(m_val, (int64_t)floor(0.25 * (double)d.m));
            cr_assert(isfinite(p.cost) && p.cost > 0);
            cr_assert(isfinite(p.validation_cost) && p.validation_cost > 0);
            double rt = p.accuracy * (double)m_train, rv = p.validation_accuracy * (double)m_val;
            cr_assert(fabs(rt - round(rt)) < 1e-9 && fabs(rv - round(rv)) < 1e-9,
                      "accuracies %g, %g over %lld, %lld rows", p.accuracy,
                      p.validation_accuracy, (long long)m_train, (long long)m_val);
            cr_assert_eq((int64_t)round(rt) + (int64_t)round(rv),
                         (int64_t)round(all * (double)d.m), "rows right: %g + %g vs %g", rt, rv,
                         all * (double)d.m);
        }
        bp_work_free(w);
        bp_trainer_free(t);
    }
    dataset_free(&d);
}

Test(train_eval, progress_matches_separate_passes)
{
    check_eval(BP_OPT_MOMENTUM, 64);
}

Test(train_eval, progress_matches_separate_passes_full_batch)
{
    check_eval(BP_OPT_GD, 0);
    check_eval(BP_OPT_LBFGS, 0);
}

/* bp_cost_grad_eval: the same J and gradient bits as bp_cost_grad, and bp_accuracy's count,
 * for every output layer. */
Test(train_eval, cost_grad_eval_is_cost_grad_plus_count)
{
    dataset d = make_blobs(300, 21);
    bp_out outs[] = {BP_OUT_SIGMOID, BP_OUT_SOFTMAX, BP_OUT_LINEAR};
    for (int k = 0; k < 3; k++) {
        int sz[] = {4, 9, 3};
        bp_spec s = make_spec(3, sz, BP_ACT_TANH, outs[k]);
        int64_t P = bp_param_count(&s);
        double *th = malloc((size_t)P * sizeof(double));
        double *g1 = calloc((size_t)P, sizeof(double)), *g2 = calloc((size_t)P, sizeof(double));
        bp_rng rng;
        bp_rng_seed(&rng, 5);
        bp_init_weights(th, &s, 0, &rng);
        bp_error err = {{0}};
        bp_work *w = bp_work_new(&s, 128, &err); /* several chunks */
        double J1 = bp_cost_grad(g1, w, d.X, d.Y, th, d.m, 0.3, d.m);
        int64_t right = -1;
        double J2 = bp_cost_grad_eval(g2, &right, w, d.X, d.Y, d.labels, th, d.m, 0.3, d.m);
        cr_assert_eq(J1, J2, "%s", bp_out_name(outs[k]));
        cr_assert_eq(memcmp(g1, g2, (size_t)P * sizeof(double)), 0, "%s", bp_out_name(outs[k]));
        double acc = bp_accuracy(w, d.X, d.labels, th, d.m);
        cr_assert_eq((double)right, round(acc * (double)d.m), "%s", bp_out_name(outs[k]));
        bp_work_free(w);
        free(th);
        free(g1);
        free(g2);
    }
    dataset_free(&d);
}
