/* bench_threads.c — one job on every core (issue 17), measured in one run, ratios printed beside
 * their targets:
 *   1. W2 (784-256-128-10, sigmoid, m = 60000 synthetic) sgd mini-batch 256, whole epochs
 *      including the end-of-epoch exact J and accuracy, through bp_trainer (what a job runs)
 *      on a pool of 1 thread and of every core: samples/s, the speed-up, and a check that both
 *      gave the same weights bit for bit;
 *   2. W2 full-batch J + ∇J (bp_cost_grad over the 60000 rows), 1 thread and every core;
 *   3. the same two against numpy float64 with 2 BLAS threads (bench/peer_numpy.py run by Debian's /usr/bin/python3, written for
 *      speed: bias kept apart, buffers preallocated) on identical data and initial weights,
 *      when python3 can import numpy: the targets are ≥ 1.4× (whole epochs), ≥ 1.3× (the
 *      same epochs' training steps alone: ours is the epoch's time less the end-of-epoch J
 *      and accuracy pass timed alone on the same threads, numpy's is timed up to its J pass)
 *      and ≥ 1.3× (full-batch J + ∇J).
 * BLAS runs one thread per call here as in the server; the pool gives the parallelism.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "core/bp.h"
#include "server/blas_env.h"

#define M 60000
#define BATCH 256
#define REPS 3

static const bp_spec W2 = {4, {784, 256, 128, 10}, BP_ACT_SIGMOID, BP_OUT_SIGMOID};

/* samples/s of one sgd epoch (median of `epochs`) on `threads`; the final weights into out. */
static double epoch_rate(const bp_data *d, int threads, int epochs, double *out)
{
    bp_train_config c = bench_config(BP_OPT_SGD, 0.1, 0.0, BATCH, epochs);
    bp_error err = {{0}};
    bp_trainer *t = bp_trainer_new(&W2, &c, d, NULL, &err);
    bp_pool *pool = bp_pool_new(threads, &err);
    if (!t || !pool || bp_trainer_set_pool(t, pool, &err) != 0) {
        printf("  trainer on %d threads not available: %s\n", threads, err.msg);
        bp_trainer_free(t);
        bp_pool_free(pool);
        return NAN;
    }
    double r[16];
    int n = 0;
    for (int e = 0; e < epochs; e++) {
        bp_progress p;
        double t0 = test_now_s();
        bp_trainer_epoch(t, &p, NULL, &err);
        r[n++] = (double)d->m / (test_now_s() - t0);
    }
    memcpy(out, bp_trainer_theta(t), (size_t)bp_param_count(&W2) * sizeof(double));
    bp_trainer_free(t);
    bp_pool_free(pool);
    return bench_median(r, n);
}

/* Seconds of one full-batch J + ∇J (median of REPS) on `threads`, in float64 (Xf NULL) or in
 * float32 from Xf/Yf (d's rows converted once, as a float32 job does). */
static double full_grad_seconds_p(const bp_data *d, const float *Xf, const float *Yf,
                                  const double *theta, int threads)
{
    bp_error err = {{0}};
    bp_work *w = bp_work_new_precision(&W2, d->m, Xf ? BP_FLOAT32 : BP_FLOAT64, &err);
    bp_pool *pool = bp_pool_new(threads, &err);
    double *g = malloc((size_t)bp_param_count(&W2) * sizeof(double));
    double s[REPS];
    int n = 0;
    if (w && pool && g && bp_work_set_pool(w, pool, &err) == 0)
        for (; n < REPS; n++) {
            memset(g, 0, (size_t)bp_param_count(&W2) * sizeof(double));
            double t0 = test_now_s();
            if (Xf)
                bp_cost_grad_eval_f32(g, NULL, w, Xf, Yf, NULL, theta, d->m, 0.0, d->m);
            else
                bp_cost_grad(g, w, d->X, d->Y, theta, d->m, 0.0, d->m);
            s[n] = test_now_s() - t0;
        }
    bp_work_free(w);
    bp_pool_free(pool);
    free(g);
    return n ? bench_median(s, n) : NAN;
}

/* Seconds of the trainer's end-of-epoch pass over the training rows (J and accuracy in one
 * forward pass, bp_cost_eval, as bp_trainer_epoch runs it), median of REPS, on `threads`. */
static double eval_seconds(const bp_data *d, const double *theta, int threads)
{
    bp_error err = {{0}};
    bp_work *w = bp_work_new(&W2, d->m, &err);
    bp_pool *pool = bp_pool_new(threads, &err);
    double s[REPS];
    int n = 0;
    if (w && pool && bp_work_set_pool(w, pool, &err) == 0)
        for (; n < REPS; n++) {
            int64_t correct = 0;
            double t0 = test_now_s();
            bp_cost_eval(&correct, w, d->X, d->Y, d->labels, theta, d->m, 0.0, d->m);
            s[n] = test_now_s() - t0;
        }
    bp_work_free(w);
    bp_pool_free(pool);
    return n ? bench_median(s, n) : NAN;
}

static double full_grad_seconds(const bp_data *d, const double *theta, int threads)
{
    return full_grad_seconds_p(d, NULL, NULL, theta, threads);
}

/* new: n doubles rounded to float32. */
static float *to_float32(const double *v, int64_t n)
{
    float *f = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; f && i < n; i++)
        f[i] = (float)v[i];
    return f;
}

/* training.precision "float32" (issue 17): W2 full-batch J + ∇J in float32 on every core
 * beside float64's gn seconds, and PyTorch float32 when python3 can import torch. */
static void float32_ratio(const bp_data *d, const double *theta, int cores, double gn)
{
    float *Xf = to_float32(d->X, d->m * 784), *Yf = to_float32(d->Y, d->m * 10);
    double gf = Xf && Yf ? full_grad_seconds_p(d, Xf, Yf, theta, cores) : NAN;
    printf("  full-batch J+grad float32: %.3f s on %d threads\n", gf, cores);
    printf("  ratio W2 full-batch J+grad float32 vs our float64: %.2fx (target >= 1.8x)\n",
           gn / gf);
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
        printf("  ratio W2 full-batch J+grad float32 vs PyTorch float32: not installed "
               "(python3 cannot import torch), peer skipped\n");
    else
        printf("  ratio W2 full-batch J+grad float32 vs PyTorch float32: torch is importable "
               "but its peer script is not written yet (target >= 1.0x)\n");
    free(Xf);
    free(Yf);
}

/* Writes n doubles to dir/name. 0 or -1. */
static int write_doubles(const char *dir, const char *name, const double *v, int64_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t put = fwrite(v, sizeof(double), (size_t)n, f);
    return fclose(f) == 0 && put == (size_t)n ? 0 : -1;
}

/* Runs bench/peer_numpy.py on the same data and weights; its two numbers, or NaN each. */
static void numpy_peer(const bp_data *d, const double *theta, double *epoch_sps,
                       double *steps_sps, double *grad_s)
{
    *epoch_sps = *steps_sps = *grad_s = NAN;
    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        printf("  numpy: not installed (python3-numpy), peer skipped\n");
        return;
    }
    char dir[] = "/tmp/bench_threads.XXXXXX";
    if (!mkdtemp(dir))
        return;
    char cmd[1024];
    if (write_doubles(dir, "X", d->X, d->m * 784) == 0 &&
        write_doubles(dir, "Y", d->Y, d->m * 10) == 0 &&
        write_doubles(dir, "theta", theta, bp_param_count(&W2)) == 0) {
        snprintf(cmd, sizeof cmd,
                 "OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 /usr/bin/python3 bench/peer_numpy.py %s %d %d",
                 dir, M, BATCH);
        FILE *p = popen(cmd, "r");
        char line[256];
        while (p && fgets(line, sizeof line, p)) {
            fputs("  numpy: ", stdout);
            fputs(line, stdout);
            sscanf(line, "epoch_samples_per_s %lf", epoch_sps);
            sscanf(line, "steps_samples_per_s %lf", steps_sps);
            sscanf(line, "full_grad_s %lf", grad_s);
        }
        if (p)
            pclose(p);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("  could not remove %s\n", dir);
}

int main(int argc, char **argv)
{
    (void)argc;
    bench_init("bench_threads", argv);
    blas_set_threads(1);
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    cores = cores < 1 ? 1 : cores;
    double *X = NULL, *Y = NULL;
    int32_t *labels = NULL;
    if (bench_synthetic(&X, &Y, &labels, M, 784, 10, 12345) != 0) {
        printf("cannot allocate the synthetic set\n");
        return 1;
    }
    bp_data d = {X, Y, labels, M, 784, 10};
    int64_t P = bp_param_count(&W2);
    double *th1 = malloc((size_t)P * sizeof(double)), *thn = malloc((size_t)P * sizeof(double));
    double *theta = bench_theta(&W2, 42);
    printf("W2 784-256-128-10 m=%d, %d cores, shards of a batch of %d: %d\n", M, cores, BATCH,
           bp_shards(&W2, BATCH));
    double r1 = epoch_rate(&d, 1, 2, th1);
    double rn = epoch_rate(&d, cores, 2, thn);
    printf("  sgd batch %d whole epochs: %.0f samples/s on 1 thread, %.0f on %d: %.2fx; "
           "weights %s\n", BATCH, r1, rn, cores, rn / r1,
           memcmp(th1, thn, (size_t)P * sizeof(double)) == 0 ? "bit-identical" : "DIFFER");
    double g1 = full_grad_seconds(&d, theta, 1), gn = full_grad_seconds(&d, theta, cores);
    printf("  full-batch J+grad: %.3f s on 1 thread, %.3f s on %d: %.2fx\n", g1, gn, cores,
           g1 / gn);
    float32_ratio(&d, theta, cores, gn);
    double te = eval_seconds(&d, theta, cores);
    double rs = (double)M / ((double)M / rn - te); /* the epoch less its J + accuracy pass */
    printf("  sgd batch %d training steps alone on %d threads: %.0f samples/s (the epoch's "
           "%.3f s less its J + accuracy pass, %.3f s timed alone)\n", BATCH, cores, rs,
           (double)M / rn, te);
    double np_sps, np_steps, np_grad;
    numpy_peer(&d, theta, &np_sps, &np_steps, &np_grad);
    if (isfinite(np_sps))
        printf("  ratio W2 mini-batch 256 whole epochs vs numpy float64 (2 threads): %.2fx "
               "(target >= 1.4x)\n", rn / np_sps);
    if (isfinite(np_steps))
        printf("  ratio W2 mini-batch 256 training steps alone vs numpy float64 (2 threads): "
               "%.2fx (target >= 1.3x)\n", rs / np_steps);
    if (isfinite(np_grad))
        printf("  ratio W2 full-batch J+grad vs numpy float64 (2 threads): %.2fx "
               "(target >= 1.3x)\n", np_grad / gn);
    free(th1);
    free(thn);
    free(theta);
    free(X);
    free(Y);
    free(labels);
    return 0;
}
