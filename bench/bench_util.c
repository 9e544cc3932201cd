/* bench_util.c — timing, memory, dataset, libcurl sink and server-process helpers for the
 * benchmarks (bench_util.h). */
#include "bench/bench_util.h"
#include "core/bp.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* ---------------------------------------------------------------- files and libcurl */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int bench_rm_tree(const char *dir)
{
    if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0)
        return 0;
    return errno == ENOENT ? 0 : -1;
}

size_t bench_sink_write(char *data, size_t size, size_t n, void *sink)
{
    bench_sink *k = sink;
    char *b = realloc(k->buf, k->len + size * n + 1);
    if (!b)
        return 0;
    memcpy(b + k->len, data, size * n);
    k->buf = b;
    k->len += size * n;
    b[k->len] = '\0';
    return size * n;
}

/* ---------------------------------------------------------------- the server */

int bench_server_init(bench_server *s, const char *prefix)
{
    memset(s, 0, sizeof *s);
    int w = snprintf(s->dir, sizeof s->dir, "/tmp/%sXXXXXX", prefix);
    if (w < 0 || (size_t)w >= sizeof s->dir || !mkdtemp(s->dir)) {
        s->dir[0] = '\0';
        return -1;
    }
    return 0;
}

int bench_server_start(bench_server *s, const char *data_subdir, const char *const *extra_args,
                       int log_stderr)
{
    const char *bin = getenv("BACKPROPD_BIN");
    if (!bin || !*bin)
        bin = "build/backpropd";
    char data[160];
    if (!s->dir[0])
        return -1;
    if (data_subdir) {
        snprintf(data, sizeof data, "%s/%s", s->dir, data_subdir);
        if (mkdir(data, 0700) < 0)
            return -1;
    } else {
        snprintf(data, sizeof data, "%s", s->dir);
    }
    int log_fd = -1;
    if (log_stderr) {
        snprintf(s->log, sizeof s->log, "%s.log", s->dir);
        log_fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (log_fd < 0)
            return -1;
    }
    const char *args[32] = {bin, "--port", "0", "--data", data};
    int n = 5;
    for (int i = 0; extra_args && extra_args[i]; i++) {
        if (n >= 29) {
            if (log_fd >= 0)
                close(log_fd);
            return -1;
        }
        args[n++] = extra_args[i];
    }
    args[n] = NULL;
    char *argv[32]; /* execv's type; the strings are not modified */
    for (int i = 0; i <= n; i++)
        argv[i] = (char *)(uintptr_t)args[i];
    int fd[2];
    if (pipe(fd) < 0) {
        if (log_fd >= 0)
            close(log_fd);
        return -1;
    }
    s->pid = fork();
    if (s->pid == 0) {
        dup2(fd[1], 1);
        if (log_fd >= 0)
            dup2(log_fd, 2);
        close(fd[0]);
        execv(bin, argv);
        _exit(127);
    }
    close(fd[1]);
    if (log_fd >= 0)
        close(log_fd);
    if (s->pid < 0) {
        close(fd[0]);
        return -1;
    }
    FILE *f = fdopen(fd[0], "r");
    char line[256];
    int port = -1;
    while (f && fgets(line, sizeof line, f)) {
        const char *l = strstr(line, "listening http://");
        const char *colon = l ? strrchr(l, ':') : NULL;
        if (colon) {
            port = atoi(colon + 1);
            break;
        }
    }
    if (f)
        fclose(f);
    else
        close(fd[0]);
    if (port <= 0)
        return -1;
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", port);
    return 0;
}

void bench_server_stop(bench_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
    }
    if (s->dir[0] && bench_rm_tree(s->dir) < 0)
        fprintf(stderr, "bench: could not remove %s\n", s->dir);
    if (s->log[0])
        unlink(s->log);
    memset(s, 0, sizeof *s);
}
