/* bench_util.h — small helpers shared by the benchmarks: a monotonic clock, the median of a
 * set of samples, peak resident memory, and a seeded synthetic dataset.
 */
#ifndef BACKPROPD_BENCH_UTIL_H
#define BACKPROPD_BENCH_UTIL_H

#include <stdint.h>
#include <stddef.h>

/* Seconds on CLOCK_MONOTONIC. */
double bench_now(void);
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

/* Loads a CSV whose rows are "label,f1,...,fn" (tests/data/digits.csv) into X (m × n_in),
 * one-hot Y (m × K) and labels; all new. Returns 0, or -1 if the file is missing or
 * malformed. */
int bench_load_csv(double **X, double **Y, int32_t **labels, int64_t *m, int n_in, int K,
                   const char *path);

#endif
