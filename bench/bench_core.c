/* bench_core.c — the benchmark of core/: full-batch J + ∇J on
 *   W1  digits 64-32-10, m = 1797 (tests/data/digits.csv)
 *   W2  seeded synthetic 60000 × 784, 784-256-128-10
 * with median time and GFLOP/s (forward 2·m·Σ (s_l+1)·s_{l+1}, backward twice that), and in the
 * same run a plain dgemm on 2048³ and the same GEMM shapes as ratios; samples/s of an sgd epoch
 * (batch 64 on W1, 256 on W2) through the bp_trainer API; and peak memory against the dataset
 * plus parameters. Targets are printed next to each measurement.
 */
#include "bench/bench_util.h"
#include "core/bp.h"
#include "server/blas_env.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SAMPLES 64

typedef struct {
    const char *name, *desc;
    bp_spec spec;
    double *X, *Y;
    int32_t *labels;
    int64_t m;
} workload;

/* Nominal FLOPs of one J + ∇J: forward 2·m·Σ (s_l+1)·s_{l+1}, backward twice that. */
static double flops_full(const bp_spec *s, int64_t m)
{
    double f = 0.0;
    for (int l = 0; l + 1 < s->n_layers; l++)
        f += 2.0 * (double)m * (s->sizes[l] + 1.0) * s->sizes[l + 1];
    return 3.0 * f;
}

/* One timed J + ∇J (λ = 1, full batch). */
static double once_cost_grad(const workload *wl, const double *theta, double *dtheta, bp_work *w)
{
    int64_t P = bp_param_count(&wl->spec);
    double t0 = test_now_s();
    memset(dtheta, 0, sizeof(double) * (size_t)P);
    bp_cost_grad(dtheta, w, wl->X, wl->Y, theta, wl->m, 1.0, wl->m);
    return test_now_s() - t0;
}

/* The GEMMs bp_cost_grad issues (same shapes, same chunking), with no elementwise work. */
static void gemms_only(const workload *wl, const double *theta, double *dtheta, double *buf_a,
                       double *buf_b)
{
    const bp_spec *s = &wl->spec;
    int L = s->n_layers;
    int64_t chunk = bp_chunk_rows(s);
    for (int64_t r0 = 0; r0 < wl->m; r0 += chunk) {
        int n = (int)(wl->m - r0 < chunk ? wl->m - r0 : chunk);
        const double *A = wl->X + r0 * s->sizes[0];
        int64_t off = 0;
        for (int l = 0; l + 1 < L; l++) {
            int si = s->sizes[l], so = s->sizes[l + 1];
            double *Z = (l % 2) ? buf_b : buf_a;
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, so, si, 1.0, A, si,
                        theta + off + 1, si + 1, 0.0, Z, so);
            A = Z;
            off += (int64_t)so * (si + 1);
        }
        for (int l = L - 2; l >= 0; l--) {
            int si = s->sizes[l], so = s->sizes[l + 1];
            off = bp_layer_offset(s, l);
            const double *D = (l % 2) ? buf_b : buf_a;
            const double *Al = l == 0 ? wl->X + r0 * s->sizes[0] : ((l % 2) ? buf_a : buf_b);
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, so, si, n, 1.0, D, so, Al, si,
                        1.0, dtheta + off + 1, si + 1);
            if (l > 0)
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, si, so, 1.0, D, so,
                            theta + off + 1, si + 1, 0.0, (l % 2) ? buf_a : buf_b, si);
        }
    }
}

/* Buffers for the GEMM-only replay and the square dgemm, allocated once. */
typedef struct {
    double *a, *b;        /* BP_CHUNK_ROWS × max s_l each */
    double *sa, *sb, *sc; /* 2048 × 2048 each, or NULL when not wanted */
} gemm_bufs;

static double once_gemms_only(const workload *wl, const double *theta, double *dtheta,
                              const gemm_bufs *g)
{
    double t0 = test_now_s();
    gemms_only(wl, theta, dtheta, g->a, g->b);
    return test_now_s() - t0;
}

#define SQ 2048
static double once_square(const gemm_bufs *g)
{
    double t0 = test_now_s();
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, SQ, SQ, SQ, 1.0, g->sa, SQ, g->sb, SQ,
                0.0, g->sc, SQ);
    return test_now_s() - t0;
}

static double min_of(const double *v, int n)
{
    double m = INFINITY;
    for (int i = 0; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

/* samples/s of sgd epochs through bp_trainer (median over `epochs` epochs), NaN on failure.
 * An epoch ends with one forward pass over the training rows for the exact J and accuracy it
 * reports; that pass is timed on its own too, and *steps_only gets the samples/s of the
 * training steps alone (epoch time minus the evaluation's median). */
static double sgd_samples_per_s(const workload *wl, int64_t batch, int epochs, double *steps_only)
{
    *steps_only = NAN;
    bp_train_config cfg = bench_config(BP_OPT_SGD, 0.1, 0.0, batch, epochs);
    bp_data d = {wl->X, wl->Y, wl->labels, wl->m, wl->spec.sizes[0],
                 wl->spec.sizes[wl->spec.n_layers - 1]};
    bp_error err = {{0}};
    bp_trainer *t = bp_trainer_new(&wl->spec, &cfg, &d, NULL, &err);
    if (!t) {
        printf("  %s sgd: trainer not available: %s\n", wl->name, err.msg);
        return NAN;
    }
    double s[MAX_SAMPLES], own[MAX_SAMPLES];
    int n = 0;
    for (int e = 0; e < epochs && n < MAX_SAMPLES; e++) {
        bp_progress p;
        double t0 = test_now_s();
        bp_train_status st = bp_trainer_epoch(t, &p, NULL, &err);
        own[n] = (double)wl->m / (test_now_s() - t0);
        s[n++] = p.samples_per_second;
        if (st == BP_TRAIN_FAILED) {
            printf("  %s sgd: epoch failed: %s\n", wl->name, err.msg);
            break;
        }
        if (st != BP_TRAIN_CONTINUE)
            break;
    }
    bp_trainer_free(t);
    if (n == 0)
        return NAN;
    double reported = bench_median(s, n), wall = bench_median(own, n);
    printf("  %s sgd batch %lld: %.0f samples/s reported by the trainer, %.0f by wall clock "
           "(incl. the end-of-epoch cost)\n",
           wl->name, (long long)batch, reported, wall);

    /* the end-of-epoch evaluation alone: J and correct labels in one forward pass */
    bp_work *w = bp_work_new(&wl->spec, wl->m, &err);
    double *theta = calloc((size_t)bp_param_count(&wl->spec), sizeof(double));
    if (w && theta) {
        bp_rng rng;
        bp_rng_seed(&rng, 42);
        bp_init_weights(theta, &wl->spec, 0.0, &rng);
        double ev[MAX_SAMPLES];
        int ne = 0;
        for (int e = 0; e < n && ne < MAX_SAMPLES; e++) {
            int64_t correct = 0;
            double t0 = test_now_s();
            (void)bp_cost_eval(&correct, w, wl->X, wl->Y, wl->labels, theta, wl->m, 0.0, wl->m);
            ev[ne++] = test_now_s() - t0;
        }
        double eval_s = bench_median(ev, ne), epoch_s = (double)wl->m / wall;
        if (epoch_s > eval_s) {
            *steps_only = (double)wl->m / (epoch_s - eval_s);
            printf("    of which the end-of-epoch evaluation %.2f ms (%.0f%% of the epoch); "
                   "training steps alone: %.0f samples/s\n",
                   eval_s * 1e3, 100.0 * eval_s / epoch_s, *steps_only);
        }
    }
    free(theta);
    bp_work_free(w);
    return reported;
}

/* Full-batch J + ∇J, the same GEMMs alone, and (if with_square) the square dgemm, measured
 * in alternation so that load from other processes hits all of them alike. Prints medians
 * (and bests) and ratios. */
static void run_full_batch(const workload *wl, int rounds, int with_square, double target_ms,
                           double target_ratio)
{
    bp_error err = {{0}};
    int64_t P = bp_param_count(&wl->spec);
    int maxs = 0;
    for (int l = 1; l < wl->spec.n_layers; l++)
        maxs = wl->spec.sizes[l] > maxs ? wl->spec.sizes[l] : maxs;
    gemm_bufs g = {0};
    double *theta = malloc(sizeof(double) * (size_t)P), *dtheta = malloc(sizeof(double) * (size_t)P);
    bp_work *w = bp_work_new(&wl->spec, wl->m, &err);
    g.a = malloc(sizeof(double) * BP_CHUNK_ROWS * (size_t)maxs);
    g.b = malloc(sizeof(double) * BP_CHUNK_ROWS * (size_t)maxs);
    if (with_square) {
        g.sa = malloc(sizeof(double) * SQ * SQ);
        g.sb = malloc(sizeof(double) * SQ * SQ);
        g.sc = malloc(sizeof(double) * SQ * SQ);
    }
    if (!theta || !dtheta || !w || !g.a || !g.b || (with_square && (!g.sa || !g.sb || !g.sc))) {
        printf("  %s: setup failed: %s\n", wl->name, err.msg);
        goto cleanup;
    }
    bp_rng rng;
    bp_rng_seed(&rng, 42);
    bp_init_weights(theta, &wl->spec, 0.0, &rng);
    if (with_square)
        for (int64_t i = 0; i < (int64_t)SQ * SQ; i++) {
            g.sa[i] = bp_rng_uniform(&rng);
            g.sb[i] = bp_rng_uniform(&rng);
        }
    double tc[MAX_SAMPLES], tg[MAX_SAMPLES], ts[MAX_SAMPLES];
    if (rounds > MAX_SAMPLES)
        rounds = MAX_SAMPLES;
    once_cost_grad(wl, theta, dtheta, w); /* warm-up */
    once_gemms_only(wl, theta, dtheta, &g);
    if (with_square)
        once_square(&g);
    for (int i = 0; i < rounds; i++) {
        tc[i] = once_cost_grad(wl, theta, dtheta, w);
        tg[i] = once_gemms_only(wl, theta, dtheta, &g);
        if (with_square)
            ts[i] = once_square(&g);
    }
    double f = flops_full(&wl->spec, wl->m);
    double bc = min_of(tc, rounds), bg = min_of(tg, rounds);
    double mc = bench_median(tc, rounds), mg = bench_median(tg, rounds);
    printf("  %s %s, %d BLAS threads, full batch J+grad: median %.3f ms (best %.3f), "
           "%.1f GFLOP/s (best %.1f)\n",
           wl->name, wl->desc, blas_get_threads(), mc * 1e3, bc * 1e3, f / mc / 1e9,
           f / bc / 1e9);
    if (target_ms > 0)
        printf("    target < %.2f ms: %s\n", target_ms, mc * 1e3 < target_ms ? "MET" : "missed");
    printf("    same GEMMs alone: median %.3f ms (best %.3f) = %.1f GFLOP/s; J+grad / GEMMs "
           "time %.2f (elementwise and overhead share %.0f%%)\n",
           mg * 1e3, bg * 1e3, f / mg / 1e9, mc / mg, 100.0 * (mc - mg) / mc);
    if (with_square) {
        double ms = bench_median(ts, rounds), bs = min_of(ts, rounds);
        double sq = 2.0 * SQ * (double)SQ * SQ / ms / 1e9, sqb = 2.0 * SQ * (double)SQ * SQ / bs / 1e9;
        printf("    square dgemm 2048^3 in the same rounds: median %.1f GFLOP/s (best %.1f)\n", sq,
               sqb);
        printf("    J+grad GFLOP/s / square dgemm GFLOP/s: %.2f (bests: %.2f)", f / mc / 1e9 / sq,
               f / bc / 1e9 / sqb);
        if (target_ratio > 0)
            printf("  target >= %.2f: %s", target_ratio,
                   f / mc / 1e9 / sq >= target_ratio ? "MET" : "missed");
        printf("\n");
    }
cleanup:
    bp_work_free(w);
    free(theta);
    free(dtheta);
    free(g.a);
    free(g.b);
    free(g.sa);
    free(g.sb);
    free(g.sc);
}

int main(int argc, char **argv)
{
    (void)argc;
    bench_init("bench_core", argv);
    int rc = 1;
    workload w1 = {.name = "W1", .desc = "digits 64-32-10 m=1797", .spec = {3, {64, 32, 10}, BP_ACT_SIGMOID, BP_OUT_SIGMOID}};
    workload w2 = {.name = "W2", .desc = "synthetic 784-256-128-10 m=60000", .spec = {4, {784, 256, 128, 10}, BP_ACT_SIGMOID, BP_OUT_SIGMOID}};
    if (bench_load_digits(&w1.X, &w1.Y, &w1.labels, &w1.m, 10) != 0) {
        printf("cannot load tests/data/digits.csv (run from the project root)\n");
        goto cleanup;
    }
    w2.m = 60000;
    if (bench_synthetic(&w2.X, &w2.Y, &w2.labels, w2.m, 784, 10, 12345) != 0) {
        printf("cannot allocate the synthetic set\n");
        goto cleanup;
    }

    int threads = blas_get_threads();
    run_full_batch(&w1, 51, 1, 0.6, 0);
    if (threads > 1) {
        blas_set_threads(1);
        run_full_batch(&w1, 51, 0, 0.6, 0);
        blas_set_threads(threads);
    }
    run_full_batch(&w2, 7, 1, 0, 0.70);

    /* Peak memory from here on: the square-dgemm buffers are gone; what is left is the
     * datasets, parameters, workspaces, trainers and the libraries. */
    int peak_reset = bench_reset_peak_rss() == 0;
    {
        bp_error err = {{0}};
        int64_t P = bp_param_count(&w2.spec);
        double *th = calloc((size_t)P, sizeof(double)), *d = calloc((size_t)P, sizeof(double));
        bp_work *w = bp_work_new(&w2.spec, w2.m, &err);
        if (th && d && w)
            bp_cost_grad(d, w, w2.X, w2.Y, th, w2.m, 1.0, w2.m);
        bp_work_free(w);
        free(th);
        free(d);
    }
    double s1_steps, s2_steps;
    double s1 = sgd_samples_per_s(&w1, 64, 7, &s1_steps);
    if (!isnan(s1))
        printf("    target > 2,000,000 samples/s: whole epoch %s, training steps alone %s\n",
               s1 > 2e6 ? "MET" : "missed", s1_steps > 2e6 ? "MET" : "missed");
    double s2 = sgd_samples_per_s(&w2, 256, 3, &s2_steps);
    if (!isnan(s2))
        printf("    target > 75,000 samples/s: whole epoch %s, training steps alone %s\n",
               s2 > 75e3 ? "MET" : "missed", s2_steps > 75e3 ? "MET" : "missed");

    double data_bytes = (double)w2.m * (784 + 10) * sizeof(double) + (double)w2.m * 4 +
                        (double)w1.m * (64 + 10) * sizeof(double) + (double)w1.m * 4;
    double param_bytes = (double)(bp_param_count(&w2.spec) + bp_param_count(&w1.spec)) * 8.0;
    double peak = (double)bench_peak_rss();
    printf("  peak RSS%s %.1f MB (W2 J+grad and both sgd runs); datasets + params %.1f MB: "
           "ratio %.2f (target < 1.5: %s)\n",
           peak_reset ? " since reset" : " (whole run: reset unsupported)", peak / 1e6, (data_bytes + param_bytes) / 1e6, peak / (data_bytes + param_bytes),
           peak / (data_bytes + param_bytes) < 1.5 ? "MET" : "missed");
    rc = 0;
cleanup:
    free(w1.X);
    free(w1.Y);
    free(w1.labels);
    free(w2.X);
    free(w2.Y);
    free(w2.labels);
    return rc;
}
