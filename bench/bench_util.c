/* bench_util.c — timing, memory and dataset helpers for the benchmarks (bench_util.h). */
#include "bench/bench_util.h"
#include "core/bp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
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

int bench_load_csv(double **X, double **Y, int32_t **labels, int64_t *m, int n_in, int K,
                   const char *path)
{
    int rc = -1;
    FILE *f = fopen(path, "r");
    double *x = NULL, *y = NULL;
    int32_t *lab = NULL;
    char *line = NULL;
    size_t cap = 0;
    int64_t rows = 0, alloc = 0;
    if (!f)
        goto cleanup;
    while (getline(&line, &cap, f) > 0) {
        char *p = line, *end;
        long label = strtol(p, &end, 10);
        if (end == p || *end != ',' || label < 0 || label >= K)
            continue; /* header or blank line */
        if (rows == alloc) {
            alloc = alloc ? 2 * alloc : 1024;
            double *nx = realloc(x, sizeof(double) * (size_t)(alloc * n_in));
            if (!nx)
                goto cleanup;
            x = nx;
            int32_t *nl = realloc(lab, sizeof(int32_t) * (size_t)alloc);
            if (!nl)
                goto cleanup;
            lab = nl;
        }
        p = end;
        for (int j = 0; j < n_in; j++) {
            if (*p != ',')
                goto cleanup;
            x[rows * n_in + j] = strtod(p + 1, &end);
            if (end == p + 1)
                goto cleanup;
            p = end;
        }
        lab[rows++] = (int32_t)label;
    }
    if (rows == 0)
        goto cleanup;
    y = calloc((size_t)(rows * K), sizeof(double));
    if (!y)
        goto cleanup;
    for (int64_t i = 0; i < rows; i++)
        y[i * K + lab[i]] = 1.0;
    *X = x;
    *Y = y;
    *labels = lab;
    *m = rows;
    x = NULL;
    y = NULL;
    lab = NULL;
    rc = 0;
cleanup:
    if (f)
        fclose(f);
    free(line);
    free(x);
    free(y);
    free(lab);
    return rc;
}
