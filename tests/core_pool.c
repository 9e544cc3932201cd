/* core_pool.c — Criterion tests for the core's parallel passes (core/pool.c, the shards of
 * core/net.c): the shard count is a function of the spec and the rows alone; J, ∇J and the
 * rows-right count are the same bits with no pool and with pools of 1, 2, 3, 7 and 16 threads
 * (and any active count); the sharded gradient still matches finite differences; a trainer
 * gives the same weights at every thread count, and a checkpoint taken at one thread count
 * resumes bit-exactly at another.
 *
 * BLAS runs one thread per call here, as the server sets it (bp.h: a threaded BLAS's bits
 * depend on its own thread count, which is not what these tests are about).
 */
#include "core/bp.h"

#include <cblas.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const int thread_counts[] = {1, 2, 3, 7, 16};
#define N_COUNTS ((int)(sizeof thread_counts / sizeof thread_counts[0]))

static void one_blas_thread(void)
{
    openblas_set_num_threads(1);
}

TestSuite(pool, .init = one_blas_thread);

typedef struct {
    double *X, *Y;
    int32_t *labels;
    int64_t m;
    int n_in, n_out;
} blobs;

/* m rows of n_in features around n_out class centres, one-hot Y, from a fixed seed. */
static blobs make_blobs(int64_t m, int n_in, int n_out, uint64_t seed)
{
    blobs b = {malloc((size_t)(m * n_in) * sizeof(double)),
               calloc((size_t)(m * n_out), sizeof(double)), malloc((size_t)m * sizeof(int32_t)),
               m, n_in, n_out};
    bp_rng r;
    bp_rng_seed(&r, seed);
    for (int64_t i = 0; i < m; i++) {
        int c = (int)(bp_rng_next(&r) % (uint64_t)n_out);
        b.labels[i] = c;
        b.Y[i * n_out + c] = 1.0;
        for (int j = 0; j < n_in; j++)
            b.X[i * n_in + j] = (j % n_out == c ? 1.5 : 0.0) + bp_rng_uniform(&r) - 0.5;
    }
    return b;
}

static void blobs_free(blobs *b)
{
    free(b->X);
    free(b->Y);
    free(b->labels);
}

static bp_spec spec3(int a, int h, int k, bp_act g, bp_out o)
{
    bp_spec s;
    memset(&s, 0, sizeof s);
    s.n_layers = 3;
    s.sizes[0] = a;
    s.sizes[1] = h;
    s.sizes[2] = k;
    s.hidden = g;
    s.output = o;
    return s;
}

Test(pool, shards_follow_the_spec_and_rows_only)
{
    bp_spec s = spec3(784, 256, 10, BP_ACT_RELU, BP_OUT_SOFTMAX);
    cr_assert_eq(bp_shards(&s, 1), 1);
    cr_assert_eq(bp_shards(&s, 127), 1);
    cr_assert_eq(bp_shards(&s, 128), 2);
    cr_assert_eq(bp_shards(&s, 256), 4);
    cr_assert_eq(bp_shards(&s, 60000), BP_MAX_SHARDS);
    /* a network of 2^23 parameters and more: the partial gradients' budget allows two */
    bp_spec big = spec3(4096, 2048, 10, BP_ACT_RELU, BP_OUT_SOFTMAX);
    int64_t P = bp_param_count(&big);
    cr_assert_eq(bp_shards(&big, 60000), (int)(BP_SHARD_BUDGET / P));
}

/* One pass (J, ∇J, rows right) on w into g / *J / *right. */
static void one_pass(bp_work *w, const blobs *b, const double *th, int64_t P, double *g,
                     double *J, int64_t *right)
{
    memset(g, 0, (size_t)P * sizeof(double));
    *J = bp_cost_grad_eval(g, right, w, b->X, b->Y, b->labels, th, b->m, 0.7, b->m);
}

Test(pool, pass_is_the_same_bits_at_every_thread_count)
{
    blobs b = make_blobs(1000, 20, 5, 11); /* 15 shards */
    bp_out outs[] = {BP_OUT_SIGMOID, BP_OUT_SOFTMAX, BP_OUT_LINEAR};
    for (int k = 0; k < 3; k++) {
        bp_spec s = spec3(20, 17, 5, BP_ACT_TANH, outs[k]);
        cr_assert_eq(bp_shards(&s, b.m), 15);
        int64_t P = bp_param_count(&s);
        double *th = malloc((size_t)P * sizeof(double));
        double *g0 = malloc((size_t)P * sizeof(double)), *g = malloc((size_t)P * sizeof(double));
        bp_rng r;
        bp_rng_seed(&r, 3);
        bp_init_weights(th, &s, 0, &r);
        bp_error err = {{0}};
        bp_work *w = bp_work_new(&s, b.m, &err);
        cr_assert_not_null(w, "%s", err.msg);
        double J0, J;
        int64_t right0, right;
        one_pass(w, &b, th, P, g0, &J0, &right0);
        cr_assert(isfinite(J0) && right0 > 0);
        for (int c = 0; c < N_COUNTS; c++) {
            bp_pool *pool = bp_pool_new(thread_counts[c], &err);
            cr_assert_not_null(pool, "%s", err.msg);
            cr_assert_eq(bp_work_set_pool(w, pool, &err), 0, "%s", err.msg);
            for (int active = 1; active <= thread_counts[c]; active += active < 3 ? 1 : 5) {
                bp_pool_set_active(pool, active);
                one_pass(w, &b, th, P, g, &J, &right);
                cr_assert_eq(J, J0, "%s: %d threads (%d active)", bp_out_name(outs[k]),
                             thread_counts[c], active);
                cr_assert_eq(right, right0);
                cr_assert_eq(memcmp(g, g0, (size_t)P * sizeof(double)), 0, "%s: %d threads",
                             bp_out_name(outs[k]), thread_counts[c]);
            }
            cr_assert_eq(bp_work_set_pool(w, NULL, &err), 0);
            bp_pool_free(pool);
        }
        /* and the sum over shards is the gradient of all the rows: bp_grad agrees */
        memset(g, 0, (size_t)P * sizeof(double));
        bp_grad(g, w, b.X, b.Y, th, b.m, 0.7, b.m);
        cr_assert_eq(memcmp(g, g0, (size_t)P * sizeof(double)), 0);
        bp_work_free(w);
        free(th);
        free(g0);
        free(g);
    }
    blobs_free(&b);
}

Test(pool, sharded_gradient_matches_finite_differences)
{
    blobs b = make_blobs(300, 6, 3, 5); /* 4 shards */
    bp_spec s = spec3(6, 7, 3, BP_ACT_SIGMOID, BP_OUT_SOFTMAX);
    cr_assert_eq(bp_shards(&s, b.m), 4);
    int64_t P = bp_param_count(&s);
    double *th = malloc((size_t)P * sizeof(double)), *an = malloc((size_t)P * sizeof(double)),
           *nu = malloc((size_t)P * sizeof(double));
    bp_rng r;
    bp_rng_seed(&r, 8);
    bp_init_weights(th, &s, 0, &r);
    bp_error err = {{0}};
    bp_work *w = bp_work_new(&s, b.m, &err);
    bp_pool *pool = bp_pool_new(3, &err);
    cr_assert_not_null(pool, "%s", err.msg);
    cr_assert_eq(bp_work_set_pool(w, pool, &err), 0);
    bp_gradcheck_result res;
    cr_assert_eq(bp_gradcheck(&res, an, nu, w, b.X, b.Y, th, b.m, 0.4, 1e-5, &err), 0, "%s",
                 err.msg);
    cr_assert_lt(res.relative_difference, 1e-9, "relative difference %g",
                 res.relative_difference);
    bp_work_free(w);
    bp_pool_free(pool);
    free(th);
    free(an);
    free(nu);
    blobs_free(&b);
}

/* Trains `epochs` epochs on threads (0: no pool) from a checkpoint image (NULL: the start);
 * returns the weights (new) and, if ck_at > 0, the image after epoch ck_at into *ck. */
static double *train(const bp_train_config *c, const bp_spec *s, const blobs *b, int threads,
                     const void *from, size_t from_len, int64_t ck_at, void **ck, size_t *ck_len)
{
    bp_data d = {b->X, b->Y, b->labels, b->m, b->n_in, b->n_out};
    bp_error err = {{0}};
    bp_trainer *t = bp_trainer_new(s, c, &d, NULL, &err);
    cr_assert_not_null(t, "%s", err.msg);
    bp_pool *pool = threads ? bp_pool_new(threads, &err) : NULL;
    cr_assert(!threads || pool, "%s", err.msg);
    cr_assert_eq(bp_trainer_set_pool(t, pool, &err), 0, "%s", err.msg);
    if (from)
        cr_assert_eq(bp_trainer_checkpoint_load(t, from, from_len, &err), 0, "%s", err.msg);
    bp_progress p;
    bp_train_status st = BP_TRAIN_CONTINUE;
    while (st == BP_TRAIN_CONTINUE) {
        st = bp_trainer_epoch(t, &p, NULL, &err);
        if (ck_at > 0 && bp_trainer_epochs_done(t) == ck_at) {
            *ck_len = bp_trainer_checkpoint_size(t);
            *ck = malloc(*ck_len);
            cr_assert_eq(bp_trainer_checkpoint_save(t, *ck, *ck_len, &err), 0);
        }
    }
    cr_assert_eq(st, BP_TRAIN_DONE, "%s", err.msg);
    int64_t P = bp_param_count(s);
    double *th = malloc((size_t)P * sizeof(double));
    memcpy(th, bp_trainer_theta(t), (size_t)P * sizeof(double));
    bp_trainer_free(t);
    bp_pool_free(pool);
    return th;
}

static void same_weights_any_threads(bp_optimizer o, int64_t batch)
{
    blobs b = make_blobs(900, 12, 4, 21);
    bp_spec s = spec3(12, 16, 4, BP_ACT_RELU, BP_OUT_SOFTMAX);
    bp_train_config c;
    bp_train_config_default(&c);
    c.optimizer = o;
    c.batch_size = batch;
    c.learning_rate = o == BP_OPT_LBFGS ? 1.0 : o == BP_OPT_ADAM ? 0.01 : 0.3;
    c.lambda = 0.3;
    c.epochs = 6;
    c.validation_split = 0.2;
    int64_t P = bp_param_count(&s);
    void *ck = NULL;
    size_t ck_len = 0;
    double *ref = train(&c, &s, &b, 0, NULL, 0, 3, &ck, &ck_len);
    for (int k = 0; k < N_COUNTS; k++) {
        double *th = train(&c, &s, &b, thread_counts[k], NULL, 0, 0, NULL, NULL);
        cr_assert_eq(memcmp(th, ref, (size_t)P * sizeof(double)), 0, "%s: %d threads",
                     bp_optimizer_name(o), thread_counts[k]);
        free(th);
        /* resumed at another thread count from the no-pool run's epoch-3 image */
        th = train(&c, &s, &b, thread_counts[N_COUNTS - 1 - k], ck, ck_len, 0, NULL, NULL);
        cr_assert_eq(memcmp(th, ref, (size_t)P * sizeof(double)), 0, "%s: resumed on %d",
                     bp_optimizer_name(o), thread_counts[N_COUNTS - 1 - k]);
        free(th);
    }
    free(ck);
    free(ref);
    blobs_free(&b);
}

Test(pool, trainer_same_weights_and_resume_at_every_thread_count_minibatch)
{
    same_weights_any_threads(BP_OPT_ADAM, 256); /* 4 shards a batch, 11 for the evaluation */
    same_weights_any_threads(BP_OPT_SGD, 100);  /* batches of one shard */
}

Test(pool, trainer_same_weights_and_resume_at_every_thread_count_full_batch)
{
    same_weights_any_threads(BP_OPT_GD, 0);
    same_weights_any_threads(BP_OPT_LBFGS, 0);
}
