/* bench_ingest.c — the ingest benchmark: dataset ingest and /v1/gradient latency.
 *
 * 1. A seeded 60,000 × 784 set (MNIST-shaped: ~80% zeros, other pixels k/255 printed with 6
 *    significant digits, labels 0..9) generated once as CSV and as JSON text. MB/s of
 *    api_dataset_parse_csv and api_dataset_parse_json_text (median of 3) against simply
 *    reading the same bytes (read(2) from the page cache, and a memchr scan over them), and
 *    python3's json.loads on the same JSON file when python3 exists (by wall clock and by CPU
 *    time, since the machine may be shared). The jansson tree path
 *    (api_parse + api_dataset_from_json, used for small inline data) on the first 6,000 rows.
 *    Targets: CSV >= 150 MB/s; JSON not slower than json.loads.
 * 2. Latency of POST /v1/gradient for a small net (64-25-10 on the stored digits set) against
 *    the real server (build/backpropd --port 0, started here): p50/p99 of sequential libcurl
 *    requests on one keep-alive connection, and under load with wrk (a Lua script sets the
 *    POST body) when wrk is installed. `bench_ingest --latency-only` runs just this part.
 */
#include "api/api.h"
#include "bench/bench_util.h"
#include "tests/harness.h"
#include "server/blas_env.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ROWS 60000
#define COLS 784
#define JANSSON_ROWS 6000

/* ------------------------------------------------------------------ the data */

typedef struct {
    char *csv, *json;
    size_t csv_len, json_len, json_small_len; /* json_small: the first JANSSON_ROWS rows */
    char *json_small;
} texts;

static char *append(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

static int make_texts(texts *t)
{
    char pix[256][16];
    size_t plen[256];
    for (int k = 0; k < 256; k++) {
        snprintf(pix[k], sizeof pix[k], "%.6g", k / 255.0);
        plen[k] = strlen(pix[k]);
    }
    /* the same draws for both texts: one pass makes the pixel codes */
    uint8_t *code = malloc((size_t)ROWS * COLS);
    if (!code)
        return -1;
    uint64_t s = 0x9E3779B97F4A7C15ull; /* seeded xorshift64* */
    for (size_t i = 0; i < (size_t)ROWS * COLS; i++) {
        s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
        uint64_t r = s * 0x2545F4914F6CDD1Dull;
        code[i] = (r >> 60) < 13 ? 0 : (uint8_t)(1 + (r >> 32) % 255); /* 13/16 zeros */
    }
    size_t cap = (size_t)ROWS * (COLS * 10 + 16) + 64;
    t->csv = malloc(cap);
    t->json = malloc(cap);
    if (!t->csv || !t->json)
        return -1;
    char *c = t->csv, *j = t->json;
    c = append(c, "label", 5);
    for (int f = 0; f < COLS; f++)
        c += sprintf(c, ",px%d", f);
    *c++ = '\n';
    j = append(j, "{\"X\":[", 6);
    for (int i = 0; i < ROWS; i++) {
        const uint8_t *row = code + (size_t)i * COLS;
        *c++ = (char)('0' + i % 10);
        if (i)
            *j++ = ',';
        *j++ = '[';
        for (int f = 0; f < COLS; f++) {
            *c++ = ',';
            c = append(c, pix[row[f]], plen[row[f]]);
            if (f)
                *j++ = ',';
            j = append(j, pix[row[f]], plen[row[f]]);
        }
        *c++ = '\n';
        *j++ = ']';
        if (i + 1 == JANSSON_ROWS)
            t->json_small_len = (size_t)(j - t->json);
    }
    j = append(j, "],\"y\":[", 7);
    for (int i = 0; i < ROWS; i++) {
        if (i)
            *j++ = ',';
        *j++ = (char)('0' + i % 10);
    }
    j = append(j, "]}\n", 3);
    t->csv_len = (size_t)(c - t->csv);
    t->json_len = (size_t)(j - t->json);
    /* the small JSON: first rows + their labels */
    t->json_small = malloc(t->json_small_len + 4 * JANSSON_ROWS + 32);
    if (!t->json_small)
        return -1;
    char *q = append(t->json_small, t->json, t->json_small_len);
    q = append(q, "],\"y\":[", 7);
    for (int i = 0; i < JANSSON_ROWS; i++) {
        if (i)
            *q++ = ',';
        *q++ = (char)('0' + i % 10);
    }
    q = append(q, "]}", 2);
    t->json_small_len = (size_t)(q - t->json_small);
    free(code);
    return 0;
}

/* ------------------------------------------------------------------ ingest timings */

static double mbps(size_t bytes, double seconds)
{
    return (double)bytes / 1e6 / seconds;
}

/* CPU seconds of this process: on a shared, loaded machine the wall clock also measures the
 * scheduler, so both are reported. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
    double wall, cpu; /* medians, seconds */
} timing;

static volatile size_t sink_sz;

static timing time_memchr(const char *p, size_t n)
{
    double w[3], c[3];
    for (int k = 0; k < 3; k++) {
        double t0 = test_now_s(), c0 = cpu_now();
        const void *hit = memchr(p, '\x01', n); /* absent: reads every byte */
        sink_sz += hit != NULL;
        w[k] = test_now_s() - t0;
        c[k] = cpu_now() - c0;
    }
    return (timing){bench_median(w, 3), bench_median(c, 3)};
}

static double time_read(const char *path, size_t n)
{
    char *buf = malloc(1 << 20);
    double best[3];
    for (int k = 0; k < 3; k++) {
        int fd = open(path, O_RDONLY);
        double t0 = test_now_s();
        size_t total = 0;
        ssize_t got;
        while (fd >= 0 && (got = read(fd, buf, 1 << 20)) > 0)
            total += (size_t)got;
        best[k] = test_now_s() - t0;
        if (fd >= 0)
            close(fd);
        sink_sz += total == n;
    }
    free(buf);
    return bench_median(best, 3);
}

typedef int (*parse_fn)(api_dataset *, const char *, size_t, api_error *);

static timing time_parse(parse_fn fn, const char *text, size_t n, api_dataset *keep)
{
    double w[3], c[3];
    for (int k = 0; k < 3; k++) {
        api_dataset d = {0};
        api_error err = {0};
        double t0 = test_now_s(), c0 = cpu_now();
        int rc = fn(&d, text, n, &err);
        w[k] = test_now_s() - t0;
        c[k] = cpu_now() - c0;
        if (rc < 0) {
            fprintf(stderr, "parse failed: %s\n", err.detail);
            return (timing){NAN, NAN};
        }
        if (k == 0 && keep)
            *keep = d;
        else
            api_dataset_clear(&d);
    }
    return (timing){bench_median(w, 3), bench_median(c, 3)};
}

static double time_tree(const char *text, size_t n)
{
    double v[3];
    for (int k = 0; k < 3; k++) {
        api_dataset d = {0};
        api_error err = {0};
        double t0 = test_now_s();
        json_t *j = api_parse(text, n, &err);
        int rc = j ? api_dataset_from_json(&d, j, &err) : -1;
        json_decref(j);
        v[k] = test_now_s() - t0;
        api_dataset_clear(&d);
        if (rc < 0) {
            fprintf(stderr, "jansson path failed: %s\n", err.detail);
            return NAN;
        }
    }
    return bench_median(v, 3);
}

/* Seconds python3's json.loads takes on the file (median of 3, timed inside python), or NaN. */
static double time_python(const char *path)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json,sys,time\n"
             "b=open(sys.argv[1],\"rb\").read()\n"
             "v=[]\n"
             "for _ in range(3):\n"
             "    t=time.perf_counter(); d=json.loads(b); v.append(time.perf_counter()-t); del d\n"
             "print(sorted(v)[1])' %s 2>/dev/null",
             path);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NAN;
    double s = NAN;
    if (fscanf(p, "%lf", &s) != 1)
        s = NAN;
    pclose(p);
    return s;
}

static int write_file(const char *path, const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

/* ------------------------------------------------------------------ the server */

/* The last lines of the server's log, when something went wrong. */
static void server_log_tail(const srv *sp)
{
    char *log = srv_log(sp);
    size_t n = log ? strlen(log) : 0;
    const char *tail = log ? log + n : NULL;
    for (int lines = 0; tail && tail > log && lines < 6; lines += *--tail == '\n')
        ;
    printf("%s\n", tail ? tail : "  (no server log)");
    free(log);
}

/* One POST on handle c (reused: keep-alive); returns the status or -1, fills *out (freed
 * first). */
static long post(CURL *c, const srv *sp, const char *path, const char *type, const char *body,
                 size_t len, resp *out)
{
    resp_free(out);
    return http_req_on(c, sp, "POST", path, type, body, len, NULL, out) == 0 ? out->status : -1;
}

/* wrk with a Lua script that sets the POST body; prints its latency percentiles. */
static void run_wrk(const char *url, const char *body_path)
{
    if (system("command -v wrk >/dev/null 2>&1") != 0) {
        printf("  wrk not installed: skipped the loaded run\n");
        return;
    }
    char lua[] = "/tmp/bench-ingest-wrk-XXXXXX";
    int fd = mkstemp(lua);
    if (fd < 0)
        return;
    FILE *f = fdopen(fd, "w");
    fprintf(f,
            "local fh = io.open(\"%s\", \"rb\")\n"
            "wrk.method = \"POST\"\n"
            "wrk.body = fh:read(\"*a\")\n"
            "fh:close()\n"
            "wrk.headers[\"Content-Type\"] = \"application/json\"\n",
            body_path);
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "wrk -t2 -c4 -d5s --latency -s %s %s 2>&1", lua, url);
    FILE *p = popen(cmd, "r");
    char line[256];
    double p50 = NAN, p99 = NAN, rps = NAN;
    long non2xx = 0;
    while (p && fgets(line, sizeof line, p)) {
        double v;
        char unit[8];
        if (sscanf(line, " 50%% %lf%7s", &v, unit) == 2)
            p50 = v * (strcmp(unit, "us") == 0 ? 1e-3 : strcmp(unit, "s") == 0 ? 1e3 : 1);
        if (sscanf(line, " 99%% %lf%7s", &v, unit) == 2)
            p99 = v * (strcmp(unit, "us") == 0 ? 1e-3 : strcmp(unit, "s") == 0 ? 1e3 : 1);
        if (sscanf(line, "Requests/sec: %lf", &v) == 1)
            rps = v;
        sscanf(line, " Non-2xx or 3xx responses: %ld", &non2xx);
    }
    if (p)
        pclose(p);
    unlink(lua);
    printf("  wrk -t2 -c4 -d5s (4 connections)  p50 %.2f ms  p99 %.2f ms  %.0f req/s%s\n", p50,
           p99, rps, non2xx ? "  (some non-2xx answers!)" : "");
}

static void bench_gradient_latency(void)
{
    srv sp = {0};
    const char *args[] = {"--log-level", "info", NULL}; /* a line per request, in the log */
    if (srv_start(&sp, args) < 0) {
        printf("gradient latency: could not start build/backpropd (run from the repo root after "
               "make): skipped\n"); /* the harness printed the server's log */
        bench_stop(&sp);
        return;
    }
    CURL *c = curl_easy_init();
    resp out = {0};
    size_t n = 0;
    char *csv = test_slurp(test_data_path("digits.csv"), &n);
    long st = csv ? post(c, &sp, "/v1/datasets?name=digits", "text/csv", csv, n, &out) : -1;
    json_t *meta = st == 201 ? resp_json(&out) : NULL;
    if (!meta) {
        printf("gradient latency: upload failed (%ld): skipped\n", st);
        server_log_tail(&sp);
        goto done;
    }
    bp_spec spec = {.n_layers = 3, .sizes = {64, 25, 10}};
    double *theta = bench_theta(&spec, 1);
    json_t *body = json_pack("{s:o, s:o, s:f, s:O}", "network", api_spec_json(&spec), "theta",
                             api_theta_json(theta, &spec), "lambda", 1.0, "dataset",
                             json_object_get(meta, "id"));
    size_t blen;
    char *text = api_dump(body, &blen);
    json_decref(body);
    free(theta);
    char url[160];
    snprintf(url, sizeof url, "%s/v1/gradient", sp.base);

    enum { WARM = 20, N = 500 };
    double lat[N];
    int ok = 1;
    for (int i = 0; i < WARM + N && ok; i++) {
        double t0 = test_now_s();
        ok = post(c, &sp, "/v1/gradient", "application/json", text, blen, &out) == 200;
        if (i >= WARM)
            lat[i - WARM] = (test_now_s() - t0) * 1e3;
    }
    printf("POST /v1/gradient, 64-25-10 on the stored digits set (1797 rows), body %.1f kB, "
           "answer %.1f kB\n", (double)blen / 1e3, (double)out.len / 1e3);
    if (!ok) {
        printf("  a request failed: %s\n", out.body ? out.body : "");
    } else {
        bench_sort(lat, N);
        printf("  libcurl, sequential, keep-alive: p50 %.2f ms  p99 %.2f ms  (n = %d)\n",
               bench_quantile(lat, N, 0.50), bench_quantile(lat, N, 0.99), N);
        char path[] = "/tmp/bench-ingest-body-XXXXXX";
        int fd = mkstemp(path);
        if (fd >= 0 && write(fd, text, blen) == (ssize_t)blen) {
            close(fd);
            run_wrk(url, path);
        }
        unlink(path);
    }
    free(text);
done:
    json_decref(meta);
    resp_free(&out);
    free(csv);
    curl_easy_cleanup(c);
    bench_stop(&sp);
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    bench_init("bench_ingest", argv);
    if (argc > 1 && strcmp(argv[1], "--latency-only") == 0) {
        bench_gradient_latency();
        return 0;
    }
    texts t = {0};
    double t0 = test_now_s();
    if (make_texts(&t) < 0) {
        fprintf(stderr, "out of memory making the texts\n");
        return 1;
    }
    printf("ingest: %d x %d, seeded (13/16 zeros, other pixels k/255 to 6 digits), made in "
           "%.1f s\n  CSV %.1f MB, JSON %.1f MB\n",
           ROWS, COLS, test_now_s() - t0, (double)t.csv_len / 1e6, (double)t.json_len / 1e6);

    char csv_path[] = "/tmp/bench-ingest-csv-XXXXXX", json_path[] = "/tmp/bench-ingest-json-XXXXXX";
    int fc = mkstemp(csv_path), fj = mkstemp(json_path);
    if (fc < 0 || fj < 0 || write_file(csv_path, t.csv, t.csv_len) < 0 ||
        write_file(json_path, t.json, t.json_len) < 0) {
        fprintf(stderr, "cannot write the temporary files\n");
        return 1;
    }
    close(fc);
    close(fj);

    double rd = time_read(csv_path, t.csv_len);
    timing mc = time_memchr(t.csv, t.csv_len);
    api_dataset a = {0}, b = {0};
    timing csv_t = time_parse(api_dataset_parse_csv, t.csv, t.csv_len, &a);
    timing json_t = time_parse(api_dataset_parse_json_text, t.json, t.json_len, &b);
    int same = a.rows == ROWS && b.rows == ROWS && a.features == COLS && b.features == COLS &&
               memcmp(a.X, b.X, sizeof(double) * ROWS * COLS) == 0 &&
               memcmp(a.labels, b.labels, sizeof(int32_t) * ROWS) == 0;
    api_dataset_clear(&a);
    api_dataset_clear(&b);
    double tree_s = time_tree(t.json_small, t.json_small_len);
    double py_s = time_python(json_path);
    double load[1] = {NAN};
    getloadavg(load, 1);

    printf("  (medians of 3; MB/s by wall clock, and by this process's CPU time: load average "
           "%.1f on %ld cores)\n", load[0], sysconf(_SC_NPROCESSORS_ONLN));
    printf("  read(2) from the page cache        %6.0f MB/s\n", mbps(t.csv_len, rd));
    printf("  memchr over the bytes              %6.0f MB/s  cpu %6.0f MB/s\n",
           mbps(t.csv_len, mc.wall), mbps(t.csv_len, mc.cpu));
    double csv_cpu = mbps(t.csv_len, csv_t.cpu);
    printf("  CSV  api_dataset_parse_csv         %6.0f MB/s  cpu %6.0f MB/s  (target >= 150 "
           "MB/s: %s)\n",
           mbps(t.csv_len, csv_t.wall), csv_cpu, csv_cpu >= 150 ? "met" : "MISSED");
    printf("  JSON api_dataset_parse_json_text   %6.0f MB/s  cpu %6.0f MB/s\n",
           mbps(t.json_len, json_t.wall), mbps(t.json_len, json_t.cpu));
    if (isnan(py_s))
        printf("  JSON python3 json.loads            skipped (no python3)\n");
    else
        printf("  JSON python3 json.loads            %6.0f MB/s  (ours is %.1fx by wall clock: "
               "target >= 1x %s)\n",
               mbps(t.json_len, py_s), py_s / json_t.wall, py_s >= json_t.wall ? "met" : "MISSED");
    printf("  JSON jansson tree, first %d rows %6.0f MB/s  (the path of inline data in math "
           "requests)\n",
           JANSSON_ROWS, mbps(t.json_small_len, tree_s));
    printf("  CSV and JSON parse to identical arrays: %s\n", same ? "yes" : "NO");
    unlink(csv_path);
    unlink(json_path);
    free(t.csv);
    free(t.json);
    free(t.json_small);

    bench_gradient_latency();
    curl_global_cleanup();
    return same ? 0 : 1;
}
