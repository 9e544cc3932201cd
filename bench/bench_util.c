/* bench_util.c — statistics, memory, dataset and server helpers for the benchmarks
 * (bench_util.h). The server process and HTTP come from the test harness (tests/harness.h). */
#include "bench/bench_util.h"
#include "api/api.h"
#include "core/bp.h"
#include "server/blas_env.h"
#include "tests/harness.h"

#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bench_init(const char *name, char **argv)
{
    blas_env_setup(argv);
    curl_global_init(CURL_GLOBAL_ALL);
    const char *env = getenv("OPENBLAS_CORETYPE");
    printf("%s: OpenBLAS core %s, %d threads (OPENBLAS_CORETYPE=%s)\n", name, blas_core_name(),
           blas_get_threads(), env ? env : "");
}

bp_train_config bench_config(bp_optimizer optimizer, double learning_rate, double lambda,
                             int64_t batch_size, int64_t epochs)
{
    bp_train_config c;
    bp_train_config_default(&c);
    c.optimizer = optimizer;
    c.learning_rate = learning_rate;
    c.lambda = lambda;
    c.batch_size = batch_size;
    c.epochs = epochs;
    return c;
}

double *bench_theta(const bp_spec *spec, uint64_t seed)
{
    double *theta = malloc((size_t)bp_param_count(spec) * sizeof *theta);
    if (theta) {
        bp_rng rng;
        bp_rng_seed(&rng, seed);
        bp_init_weights(theta, spec, 0.0, &rng);
    }
    return theta;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_sort(double *v, int n)
{
    if (n > 0)
        qsort(v, (size_t)n, sizeof *v, cmp_double);
}

double bench_quantile(const double *sorted, int n, double q)
{
    if (n <= 0)
        return NAN;
    double pos = q * (n - 1);
    int i = (int)pos;
    return i + 1 < n ? sorted[i] + (pos - i) * (sorted[i + 1] - sorted[i]) : sorted[n - 1];
}

double bench_median(double *v, int n)
{
    bench_sort(v, n);
    return bench_quantile(v, n, 0.5);
}

/* Value in kB of the /proc/self/status line starting with key, in bytes. */
static int64_t status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    int64_t v = 0;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) == 0) {
            v = strtoll(line + kl, NULL, 10) * 1024;
            break;
        }
    }
    fclose(f);
    return v;
}

int64_t bench_peak_rss(void)
{
    return status_kb("VmHWM:");
}

int bench_reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return -1;
    int ok = fputs("5", f) >= 0;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

int64_t bench_rss(void)
{
    return status_kb("VmRSS:");
}

int bench_synthetic(double **X, double **Y, int32_t **labels, int64_t m, int n_in, int K,
                    uint64_t seed)
{
    double *x = malloc(sizeof(double) * (size_t)(m * n_in));
    double *y = calloc((size_t)(m * K), sizeof(double));
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)m);
    double *teacher = malloc(sizeof(double) * (size_t)K * (size_t)n_in);
    if (!x || !y || !lab || !teacher) {
        free(x);
        free(y);
        free(lab);
        free(teacher);
        return -1;
    }
    bp_rng rng;
    bp_rng_seed(&rng, seed);
    for (int64_t i = 0; i < (int64_t)K * n_in; i++)
        teacher[i] = 2.0 * bp_rng_uniform(&rng) - 1.0;
    for (int64_t i = 0; i < m; i++) {
        double *xi = x + i * n_in;
        for (int j = 0; j < n_in; j++)
            xi[j] = bp_rng_uniform(&rng);
        int best = 0;
        double best_v = -INFINITY;
        for (int k = 0; k < K; k++) {
            double s = 0.0;
            for (int j = 0; j < n_in; j++)
                s += teacher[(int64_t)k * n_in + j] * (xi[j] - 0.5);
            if (s > best_v) {
                best_v = s;
                best = k;
            }
        }
        lab[i] = best;
        y[i * K + best] = 1.0;
    }
    free(teacher);
    *X = x;
    *Y = y;
    if (labels)
        *labels = lab;
    else
        free(lab);
    return 0;
}

int bench_load_digits(double **X, double **Y, int32_t **labels, int64_t *m, int K)
{
    int rc = -1;
    size_t len = 0;
    api_dataset d = {0};
    api_error err = {0};
    char *csv = test_slurp(test_data_path("digits.csv"), &len);
    if (!csv || api_dataset_parse_csv(&d, csv, len, &err) != 0 || !d.labels)
        goto cleanup;
    double *y = api_targets(&d, K, &err);
    if (!y)
        goto cleanup;
    *X = d.X;
    *Y = y;
    *labels = d.labels;
    *m = d.rows;
    d.X = NULL;
    d.labels = NULL;
    rc = 0;
cleanup:
    if (rc != 0)
        fprintf(stderr, "bench: cannot load tests/data/digits.csv: %s\n", err.detail);
    api_dataset_clear(&d);
    free(csv);
    return rc;
}

void bench_stop(srv *s)
{
    char why[200] = "";
    if (srv_shutdown(s, why, sizeof why) != 0)
        fprintf(stderr, "bench: %s\n", why);
    srv_cleanup(s);
}
