/* bench_npy.c — dataset upload into the store through the real server: the W2-shaped set
 * (60000 × 784 features + a label, MNIST-like: ~80% zeros, other pixels k/255) as one float64
 * .npy file (376 MB, application/x-npy) and as CSV text (the same values printed with %.6g),
 * each POSTed to /v1/datasets until its 201 (median of 2). Prints the .npy rate in MB/s of the
 * file (target >= 1 GB/s) and the speed-up over the CSV upload of the same rows (target >= 4x).
 * The decode step alone (api_dataset_parse_npy against api_dataset_parse_csv, in process) is
 * timed too, to tell the format's cost from the transfer and the store's.
 * The floor of a durable store on this machine is timed too: the same bytes written with
 * write() and fdatasync() to a file in the server's data directory (the best rate any store
 * that acknowledges only after its data is on disk can reach here), and the upload's rate
 * is printed as a fraction of it.
 * Starts build/backpropd (BACKPROPD_BIN) with --max-body 1G on a free port.
 */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/npy.h"
#include "bench/bench_util.h"
#include "tests/harness.h"

#define ROWS 60000
#define COLS 785

/* new: the rows (label first) as float64 values. */
static double *make_values(void)
{
    double *v = malloc((size_t)ROWS * COLS * sizeof(double));
    if (!v)
        return NULL;
    bp_rng r;
    bp_rng_seed(&r, 7);
    for (int64_t i = 0; i < ROWS; i++) {
        v[i * COLS] = (double)(bp_rng_next(&r) % 10);
        for (int j = 1; j < COLS; j++)
            v[i * COLS + j] = bp_rng_uniform(&r) < 0.8 ? 0.0 : (double)(bp_rng_next(&r) % 256) / 255.0;
    }
    return v;
}

/* new: the .npy file of v (label first), by the server's own writer. */
static char *make_npy(const double *v, size_t *len)
{
    api_dataset d = {.rows = ROWS, .features = COLS - 1, .outputs = 10};
    d.X = malloc((size_t)ROWS * (COLS - 1) * sizeof(double));
    d.labels = malloc((size_t)ROWS * sizeof(int32_t));
    char *b = NULL;
    if (d.X && d.labels) {
        for (int64_t i = 0; i < ROWS; i++) {
            d.labels[i] = (int32_t)v[i * COLS];
            memcpy(d.X + i * (COLS - 1), v + i * COLS + 1, (COLS - 1) * sizeof(double));
        }
        b = api_npy_from_dataset(&d, len);
    }
    api_dataset_clear(&d);
    return b;
}

/* new: the same rows as CSV text (label first, %.6g). */
static char *make_csv(const double *v, size_t *len)
{
    size_t cap = (size_t)ROWS * COLS * 10 + 1, n = 0;
    char *t = malloc(cap);
    if (!t)
        return NULL;
    for (int64_t i = 0; i < ROWS; i++)
        for (int j = 0; j < COLS; j++)
            n += (size_t)snprintf(t + n, cap - n, "%.6g%c", v[i * COLS + j],
                                  j + 1 < COLS ? ',' : '\n');
    *len = n;
    return t;
}

/* Seconds until the upload's 201 (median of 2); NaN on failure. */
static double upload_seconds(const srv *s, const char *type, const char *body, size_t len)
{
    double t[2];
    for (int k = 0; k < 2; k++) {
        resp r;
        double t0 = test_now_s();
        int rc = http_req(s, "POST", "/v1/datasets", type, body, len, NULL, &r);
        t[k] = test_now_s() - t0;
        json_t *j = rc == 0 && r.status == 201 ? resp_json(&r) : NULL;
        const char *id = json_string_value(json_object_get(j, "id"));
        if (!id) {
            printf("  %s upload: status %ld\n", type, r.status);
            resp_free(&r);
            json_decref(j);
            return NAN;
        }
        char path[96];
        snprintf(path, sizeof path, "/v1/datasets/%s", id);
        json_decref(j);
        resp_free(&r);
        http_req(s, "DELETE", path, NULL, NULL, 0, NULL, &r);
        resp_free(&r);
    }
    return t[0] < t[1] ? t[0] : t[1];
}

/* Seconds of the in-process parse alone (the server's decode step), NaN on failure. */
static double parse_seconds(int npy, const char *body, size_t len)
{
    api_dataset d;
    api_error e = {0};
    double t0 = test_now_s();
    int rc = npy ? api_dataset_parse_npy(&d, body, len, API_NPY_LABEL_FIRST, 0, &e)
                 : api_dataset_parse_csv(&d, body, len, &e);
    double t = test_now_s() - t0;
    if (rc == 0)
        api_dataset_clear(&d);
    else
        printf("  parse failed: %s\n", e.detail);
    return rc == 0 ? t : NAN;
}

/* Seconds to write b[len] to a new file in dir and fdatasync it (best of 2), NaN on failure. */
static double disk_floor_seconds(const char *dir, const char *b, size_t len)
{
    char path[320];
    snprintf(path, sizeof path, "%s/bench_floor.tmp", dir);
    double best = NAN;
    for (int k = 0; k < 2; k++) {
        double t0 = test_now_s();
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        size_t off = 0;
        while (fd >= 0 && off < len) {
            ssize_t n = write(fd, b + off, len - off > (8u << 20) ? (8u << 20) : len - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        int ok = fd >= 0 && off == len && fdatasync(fd) == 0;
        double t = test_now_s() - t0;
        if (fd >= 0)
            close(fd);
        unlink(path);
        if (!ok)
            return NAN;
        best = isnan(best) || t < best ? t : best;
    }
    return best;
}

int main(int argc, char **argv)
{
    (void)argc;
    bench_init("bench_npy", argv);
    size_t nlen = 0, clen = 0;
    double *v = make_values();
    char *npy = v ? make_npy(v, &nlen) : NULL, *csv = v ? make_csv(v, &clen) : NULL;
    free(v);
    if (!npy || !csv) {
        printf("cannot allocate the data set\n");
        return 1;
    }
    double pn = parse_seconds(1, npy, nlen), pc = parse_seconds(0, csv, clen);
    printf("  decode alone (in process): .npy %.2f s = %.0f MB/s, CSV %.2f s: %.1fx\n", pn,
           nlen / 1e6 / pn, pc, pc / pn);
    srv s;
    const char *args[] = {"--max-body", "1G", NULL};
    if (srv_start(&s, args) != 0) {
        printf("cannot start the server\n");
        return 1;
    }
    double tn = upload_seconds(&s, "application/x-npy", npy, nlen);
    double tc = upload_seconds(&s, "text/csv", csv, clen);
    printf("  %d x %d: .npy %.0f MB in %.2f s = %.0f MB/s (target >= 1000 MB/s); CSV %.0f MB "
           "in %.2f s\n", ROWS, COLS, nlen / 1e6, tn, nlen / 1e6 / tn, clen / 1e6, tc);
    printf("  ratio .npy vs CSV upload of the same rows: %.2fx (target >= 4x)\n", tc / tn);
    double tf = disk_floor_seconds(s.datadir, npy, nlen);
    printf("  durable-write floor of this disk (write + fdatasync of the same %.0f MB in the data "
           "directory): %.2f s = %.0f MB/s; the .npy upload runs at %.2fx of it\n", nlen / 1e6,
           tf, nlen / 1e6 / tf, tf / tn);
    bench_stop(&s);
    free(npy);
    free(csv);
    return 0;
}
