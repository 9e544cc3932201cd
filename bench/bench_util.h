/* bench_util.h — small helpers shared by the benchmarks: a monotonic clock, the median of a
 * set of samples, peak resident memory, a seeded synthetic dataset, removing a directory
 * tree, a libcurl write sink, and the real server (build/backpropd) started on a free port.
 */
#ifndef BACKPROPD_BENCH_UTIL_H
#define BACKPROPD_BENCH_UTIL_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

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

/* Removes dir and everything below it (no shell); a missing dir is fine. 0, or -1 if
 * something could not be removed. */
int bench_rm_tree(const char *dir);

/* A growing NUL-terminated buffer for libcurl's CURLOPT_WRITEFUNCTION / HEADERFUNCTION:
 * start with {0}; buf is new (caller frees), NULL until something arrived. */
typedef struct {
    char *buf;
    size_t len;
} bench_sink;

/* libcurl write callback appending to the bench_sink `sink`; returns size * n, or 0 (which
 * makes libcurl fail the transfer) when out of memory. */
size_t bench_sink_write(char *data, size_t size, size_t n, void *sink);

/* The real server, started by a benchmark in a temporary directory. A zeroed struct is "not
 * started"; bench_server_stop on it is a no-op. */
typedef struct {
    pid_t pid;     /* the server's pid, or <= 0 when none is running */
    char dir[64];  /* temporary directory (owned: removed by bench_server_stop), "" if none */
    char log[72];  /* "<dir>.log" when the server's stderr goes there (removed by stop), or "" */
    char base[64]; /* "http://127.0.0.1:PORT" once started */
} bench_server;

/* Step 1: zeroes s and makes a fresh temporary directory "/tmp/<prefix>XXXXXX" in s->dir, so
 * a caller can write files there (an API keys file) before starting. 0, or -1. */
int bench_server_init(bench_server *s, const char *prefix);

/* Step 2: runs $BACKPROPD_BIN (default build/backpropd) as
 *     BIN --port 0 --data DATA extra_args...
 * with DATA = s->dir, or s->dir/data_subdir (made here, mode 0700) when data_subdir is not
 * NULL; extra_args (borrowed, NULL-terminated, may be NULL) at most 24. The server's stderr
 * is inherited, or written to s->log = "<dir>.log" when log_stderr is set (its request lines
 * kept aside). Reads the server's stdout up to its "listening http://ADDR:PORT" line and
 * sets s->base. 0, or -1 (call bench_server_stop to clean up either way). */
int bench_server_start(bench_server *s, const char *data_subdir, const char *const *extra_args,
                       int log_stderr);

/* SIGTERM to the server, waits for it, removes s->dir and s->log; s is "not started" after.
 * A no-op on a zeroed struct. */
void bench_server_stop(bench_server *s);

#endif
