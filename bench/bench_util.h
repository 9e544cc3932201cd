/* bench_util.h — small helpers shared by the benchmarks: sorting, quantiles and medians of
 * samples, resident memory, a seeded synthetic dataset, the digits set, and stopping a server.
 * The clock (test_now_s), the server process (srv_start) and HTTP (http_req, http_req_on) are
 * the test harness's (tests/harness.h), so benchmarks and tests drive the server alike.
 */
#ifndef BACKPROPD_BENCH_UTIL_H
#define BACKPROPD_BENCH_UTIL_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "tests/harness.h"

#include "core/bp.h"

/* Start of every benchmark: the same OpenBLAS kernels as the server (may re-execute the
 * program once, see server/blas_env.h), libcurl's global set-up, and a first line naming the
 * kernels: "<name>: OpenBLAS core X, N threads (OPENBLAS_CORETYPE=…)". */
void bench_init(const char *name, char **argv);
/* The core's default training config with these fields set. */
bp_train_config bench_config(bp_optimizer optimizer, double learning_rate, double lambda,
                             int64_t batch_size, int64_t epochs);
/* new: Θ for spec initialised from seed as a job would (bp_init_weights, default ε); NULL when
 * out of memory. */
double *bench_theta(const bp_spec *spec, uint64_t seed);

/* Sorts v[n] ascending. */
void bench_sort(double *v, int n);
/* Quantile q (0..1) of sorted[n] by linear interpolation; NaN for n == 0. */
double bench_quantile(const double *sorted, int n, double q);
/* Median of n samples (sorts v in place); NaN for n == 0. */
double bench_median(double *v, int n);
/* Peak resident set size of this process in bytes (VmHWM from /proc/self/status), 0 if
 * unknown. */
int64_t bench_peak_rss(void);
/* Resets the peak (VmHWM) to the current RSS (writes 5 to /proc/self/clear_refs). 0 or -1. */
int bench_reset_peak_rss(void);
/* Current resident set size (VmRSS) in bytes, 0 if unknown. */
int64_t bench_rss(void);

/* A seeded synthetic classification set: X (m × n_in, uniform in [0, 1)) and one-hot Y
 * (m × K) with labels from a fixed random linear teacher, so it is learnable.
 * X, Y, labels: new (caller frees each with free()); labels may be NULL if not wanted.
 * Returns 0, or -1 on allocation failure (nothing allocated). */
int bench_synthetic(double **X, double **Y, int32_t **labels, int64_t m, int n_in, int K,
                    uint64_t seed);

/* tests/data/digits.csv read by the project's own CSV parser (api_dataset_parse_csv): X
 * (m × 64), one-hot Y (m × K) and labels, all new. Returns 0, or -1 with a message. */
int bench_load_digits(double **X, double **Y, int32_t **labels, int64_t *m, int K);

/* Stops a server started with the harness's srv_start (reporting an unclean exit on stderr)
 * and removes its data directory. */
void bench_stop(srv *s);

#endif
