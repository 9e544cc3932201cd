/* bench_tenants.c — can a caller tell another tenant's id from an id that does not exist by
 * timing? Starts build/backpropd (BACKPROPD_BIN) on a free port with two API keys;
 * alice uploads a few rows of tests/data/digits.csv and trains a tiny job; then bob, on one
 * keep-alive connection, sends N_PAIRS × (GET /v1/jobs/<alice's job>, GET /v1/jobs/<missing>)
 * and N_PAIRS × (GET /v1/datasets/<alice's ds>, GET /v1/datasets/<missing>), all 4·N_PAIRS
 * requests shuffled together, each missing id a fresh random well-formed one. For each pair it
 * prints median/p90/p99 of libcurl's total time, the difference of medians, a Mann-Whitney U
 * z score and the Kolmogorov-Smirnov distance, whether the bodies and headers (Date and X-Request-Id aside)
 * are byte-identical once the id is masked, and a verdict:
 *   "not distinguishable" when |z| < 3.29 and D < D_crit (both two-sided α = 0.001,
 *   D_crit = 1.949·sqrt(2/N_PAIRS)); "distinguishable" when both reject; else "borderline".
 * A positive control follows (alice's own job, 200, against a missing id, 404) so the reader
 * sees the same statistics do flag a real difference. Exits 1 if a pair is distinguishable or
 * a foreign id answers anything but 404.
 */
#include <curl/curl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "bench/bench_util.h"
#include "server/blas_env.h"
#include "tests/harness.h"

#define N_PAIRS 3000
#define N_WARMUP 400
#define CSV_ROWS 100
#define KEY_ALICE "alice-bench-key-0123456789abcdef"
#define KEY_BOB "bob-bench-key-fedcba9876543210xyz"
#define Z_CRIT 3.29    /* two-sided α = 0.001 for the Mann-Whitney z */
#define KS_C 1.949     /* sqrt(-ln(α/2)/2) at α = 0.001 */

/* ---------------------------------------------------------------- server */

/* Starts the server in a fresh temporary data directory holding a keys file for alice and
 * bob. 0, or -1 (bench_stop cleans up either way). */
static int server_start(srv *s)
{
    if (srv_prepare(s) < 0)
        return -1;
    char keys[300];
    snprintf(keys, sizeof keys, "%s/keys", s->datadir);
    FILE *kf = fopen(keys, "w");
    if (!kf)
        return -1;
    fputs("alice:" KEY_ALICE "\nbob:" KEY_BOB "\n", kf);
    fclose(kf);
    chmod(keys, 0600);
    const char *args[] = {"--api-keys-file", keys, "--log-level", "warn", NULL};
    return srv_spawn(s, args);
}

/* ---------------------------------------------------------------- client */

/* One request on handle c (kept alive between calls) as `key`. body (new) and hdrs (new, may
 * be NULL if not wanted) receive the response; *us its total time in µs. Returns the status
 * or -1 on a transport error. */
static long request(CURL *c, const srv *s, const char *key, const char *method,
                    const char *path, const char *ctype, const char *body, size_t len,
                    char **out, char **hdrs, curl_off_t *us)
{
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    const char *const headers[] = {auth, NULL};
    resp r;
    long status = -1;
    if (http_req_on(c, s, method, path, ctype, body, len, headers, &r) == 0) {
        status = r.status;
        if (us)
            *us = (curl_off_t)r.total_us;
    }
    if (out) {
        *out = r.body;
        r.body = NULL;
    }
    if (hdrs) {
        *hdrs = r.headers;
        r.headers = NULL;
    }
    resp_free(&r);
    return status;
}

/* new: the "id" of a JSON answer with status `want`, or NULL (and a message). */
static char *answer_id(long st, long want, const char *out, const char *what)
{
    json_t *j = st == want ? json_loads(out, 0, NULL) : NULL;
    const char *id = j ? json_string_value(json_object_get(j, "id")) : NULL;
    char *r = id ? strdup(id) : NULL;
    if (!r)
        fprintf(stderr, "bench_tenants: %s -> %ld %s\n", what, st, out);
    json_decref(j);
    return r;
}

/* new: the first `rows` lines of tests/data/digits.csv, or NULL. */
static char *digits_head(int rows, size_t *len)
{
    char *b = test_slurp(test_data_path("digits.csv"), len), *p = b;
    for (int i = 0; p && i < rows && (p = strchr(p, '\n')); i++)
        p++;
    if (p) {
        *p = '\0';
        *len = (size_t)(p - b);
    }
    return b;
}

/* Alice's dataset and a finished tiny job (ids new). 0 ok. */
static int alice_setup(CURL *c, const srv *s, char **ds, char **job)
{
    size_t len;
    char *csv = digits_head(CSV_ROWS, &len), *out = NULL;
    int rc = -1;
    *ds = *job = NULL;
    if (!csv) {
        fprintf(stderr, "bench_tenants: cannot read tests/data/digits.csv\n");
        return -1;
    }
    long st = request(c, s, KEY_ALICE, "POST", "/v1/datasets", "text/csv", csv, len, &out, NULL,
                      NULL);
    if (!(*ds = answer_id(st, 201, out, "upload")))
        goto cleanup;
    free(out);
    out = NULL;
    char body[512];
    snprintf(body, sizeof body,
             "{\"network\":{\"layers\":[64,5,10]},\"dataset\":\"%s\",\"training\":"
             "{\"optimizer\":\"gd\",\"learning_rate\":1.0,\"epochs\":5,\"seed\":1}}",
             *ds);
    st = request(c, s, KEY_ALICE, "POST", "/v1/jobs", "application/json", body, strlen(body),
                 &out, NULL, NULL);
    if (!(*job = answer_id(st, 202, out, "submit")))
        goto cleanup;
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", *job);
    for (double t0 = test_now_s(); test_now_s() - t0 < 20;) {
        free(out);
        out = NULL;
        st = request(c, s, KEY_ALICE, "GET", path, NULL, NULL, 0, &out, NULL, NULL);
        json_t *j = st == 200 ? json_loads(out, 0, NULL) : NULL;
        const char *status = j ? json_string_value(json_object_get(j, "status")) : NULL;
        int done = status && strcmp(status, "queued") && strcmp(status, "running");
        int ok = status && !strcmp(status, "succeeded");
        json_decref(j);
        if (done) {
            rc = ok ? 0 : -1;
            if (!ok)
                fprintf(stderr, "bench_tenants: job ended %s\n", out);
            goto cleanup;
        }
        usleep(20000);
    }
    fprintf(stderr, "bench_tenants: job did not finish in 20 s\n");
cleanup:
    free(csv);
    free(out);
    return rc;
}

/* ---------------------------------------------------------------- statistics */

/* Two-sided Kolmogorov-Smirnov distance of sorted a[n], b[m]: max |F_a − F_b| (ties crossed
 * together). */
static double ks_distance(const double *a, int n, const double *b, int m)
{
    int i = 0, j = 0;
    double d = 0;
    while (i < n && j < m) {
        double x = a[i] < b[j] ? a[i] : b[j];
        while (i < n && a[i] == x)
            i++;
        while (j < m && b[j] == x)
            j++;
        double g = fabs((double)i / n - (double)j / m);
        if (g > d)
            d = g;
    }
    return d;
}

typedef struct {
    double v;
    int from_a;
} tagged;

static int cmp_tagged(const void *p, const void *q)
{
    const tagged *x = p, *y = q;
    return (x->v > y->v) - (x->v < y->v);
}

/* Mann-Whitney U of a[n] vs b[m] as a z score (normal approximation, mid-ranks and the tie
 * correction); positive when a tends to be larger. NAN on allocation failure. */
static double mann_whitney_z(const double *a, int n, const double *b, int m)
{
    int N = n + m;
    tagged *t = malloc((size_t)N * sizeof *t);
    if (!t)
        return NAN;
    for (int i = 0; i < n; i++)
        t[i] = (tagged){a[i], 1};
    for (int j = 0; j < m; j++)
        t[n + j] = (tagged){b[j], 0};
    qsort(t, (size_t)N, sizeof *t, cmp_tagged);
    double ra = 0, ties = 0;
    for (int i = 0; i < N;) {
        int k = i;
        while (k < N && t[k].v == t[i].v)
            k++;
        double mid = (i + 1 + k) / 2.0, cnt = k - i; /* ranks i+1..k */
        for (int q = i; q < k; q++)
            if (t[q].from_a)
                ra += mid;
        ties += cnt * cnt * cnt - cnt;
        i = k;
    }
    free(t);
    double u = ra - n * (n + 1.0) / 2, mu = (double)n * m / 2;
    double var = (double)n * m / 12 * ((N + 1) - ties / ((double)N * (N - 1)));
    return var > 0 ? (u - mu) / sqrt(var) : 0;
}

/* ---------------------------------------------------------------- the measurement */

enum { JOB_OWN, JOB_MISSING, DS_OWN, DS_MISSING, N_KINDS };

/* A well-formed random id with the same prefix and length as `like` (e.g. "job_" + 24 hex). */
static void random_id(const char *like, char *out, size_t cap)
{
    const char *us = strchr(like, '_');
    size_t pre = us ? (size_t)(us - like) + 1 : 0, len = strlen(like);
    unsigned char r[64];
    if (len >= cap || len - pre > sizeof r || getrandom(r, len - pre, 0) != (ssize_t)(len - pre))
        for (size_t i = 0; i < len - pre && i < sizeof r; i++)
            r[i] = (unsigned char)rand(); /* only if getrandom fails: ids need not be secret */
    memcpy(out, like, pre);
    for (size_t i = pre; i < len && i < cap - 1; i++)
        out[i] = "0123456789abcdef"[r[i - pre] & 15];
    out[len < cap ? len : cap - 1] = '\0';
}

/* In place: every occurrence of id in s becomes "<ID>" (same length or shorter). */
static void mask(char *s, const char *id)
{
    size_t l = strlen(id);
    for (char *p; l >= 4 && (p = strstr(s, id));) {
        memcpy(p, "<ID>", 4);
        memmove(p + 4, p + l, strlen(p + l) + 1);
    }
}

/* In place: drops the Date header line (it changes with the clock, not with the id). */
/* Drops the headers that differ on every request by design: Date and X-Request-Id (a fresh
 * id per request unless the client sends one). */
static void drop_per_request(char *h)
{
    for (char *p = h; *p;) {
        char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) + 1 : strlen(p);
        if (!strncasecmp(p, "date:", 5) || !strncasecmp(p, "x-request-id:", 13))
            memmove(p, p + l, strlen(p + l) + 1);
        else
            p += l;
    }
}

/* What one kind of request answered: its first masked body and headers, and whether all
 * later ones matched them. */
typedef struct {
    char *body, *hdrs; /* new */
    int body_differs, hdrs_differs, bad_status;
} seen;

static void note(seen *k, char *body, char *hdrs, const char *id, long st)
{
    mask(body, id);
    mask(hdrs, id);
    drop_per_request(hdrs);
    if (st != 404)
        k->bad_status++;
    if (!k->body) {
        k->body = body;
        k->hdrs = hdrs;
        return;
    }
    k->body_differs += strcmp(k->body, body) != 0;
    k->hdrs_differs += strcmp(k->hdrs, hdrs) != 0;
    free(body);
    free(hdrs);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng_next(void) /* xorshift64*: the order of requests, nothing secret */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

/* Prints one pair's comparison; returns 1 if distinguishable, 0 if not, 2 if borderline. */
static int report(const char *what, double *own, double *miss, int n, const seen *ko,
                  const seen *km)
{
    bench_sort(own, n);
    bench_sort(miss, n);
    double mo = bench_quantile(own, n, 0.5), mm = bench_quantile(miss, n, 0.5);
    double z = mann_whitney_z(own, n, miss, n), d = ks_distance(own, n, miss, n);
    double dcrit = KS_C * sqrt(2.0 / n), diff = mo - mm;
    int same_body = ko->body && km->body && !strcmp(ko->body, km->body) && !ko->body_differs &&
                    !km->body_differs;
    int same_hdrs = ko->hdrs && km->hdrs && !strcmp(ko->hdrs, km->hdrs) && !ko->hdrs_differs &&
                    !km->hdrs_differs;
    printf("%s (n = %d each, µs):\n", what, n);
    printf("  other tenant's id  median %7.1f  p90 %7.1f  p99 %7.1f\n", mo,
           bench_quantile(own, n, 0.9), bench_quantile(own, n, 0.99));
    printf("  missing id         median %7.1f  p90 %7.1f  p99 %7.1f\n", mm,
           bench_quantile(miss, n, 0.9), bench_quantile(miss, n, 0.99));
    printf("  body (id masked): %s\n", km->body ? km->body : "");
    printf("  statuses all 404: %s; bodies byte-identical (id masked): %s; headers identical "
           "(id masked, Date and X-Request-Id aside): %s\n",
           ko->bad_status + km->bad_status == 0 ? "yes" : "no", same_body ? "yes" : "no",
           same_hdrs ? "yes" : "no");
    if (!same_body)
        printf("  other tenant's body: %s\n  missing id's body:   %s\n",
               ko->body ? ko->body : "", km->body ? km->body : "");
    int zr = fabs(z) >= Z_CRIT, kr = d >= dcrit;
    int verdict = zr && kr ? 1 : zr || kr ? 2 : 0;
    printf("  Mann-Whitney z = %+.2f (|z| < %.2f), KS D = %.3f (D < %.3f)\n", z, Z_CRIT, d,
           dcrit);
    printf("  verdict: difference of medians %+.1f µs (%+.1f%%), KS D = %.3f, z = %+.2f: %s\n",
           diff, 100 * diff / mm, d, z,
           verdict == 1 ? "DISTINGUISHABLE" : verdict == 2 ? "borderline" : "not distinguishable");
    return verdict;
}

/* Positive control, so the reader can see the method does detect a real difference: alice's
 * own job (200, the full job JSON) against a missing id (404), N_CONTROL each, shuffled. */
#define N_CONTROL 1000
static int control(CURL *c, const srv *s, const char *job)
{
    double *t[2] = {malloc(N_CONTROL * sizeof(double)), malloc(N_CONTROL * sizeof(double))};
    int n[2] = {0, 0}, rc = -1;
    long st_seen[2] = {0, 0};
    if (!t[0] || !t[1])
        goto cleanup;
    while (n[0] < N_CONTROL || n[1] < N_CONTROL) {
        int kind = (int)(rng_next() & 1);
        if (n[kind] == N_CONTROL)
            kind = !kind;
        char id[64], path[128];
        if (kind == 0)
            snprintf(id, sizeof id, "%s", job);
        else
            random_id(job, id, sizeof id);
        snprintf(path, sizeof path, "/v1/jobs/%s", id);
        curl_off_t us = 0;
        long st = request(c, s, KEY_ALICE, "GET", path, NULL, NULL, 0, NULL, NULL, &us);
        if (st < 0)
            goto cleanup;
        st_seen[kind] = st;
        t[kind][n[kind]++] = (double)us;
    }
    bench_sort(t[0], N_CONTROL);
    bench_sort(t[1], N_CONTROL);
    double m0 = bench_quantile(t[0], N_CONTROL, 0.5), m1 = bench_quantile(t[1], N_CONTROL, 0.5);
    printf("control, alice GET /v1/jobs/{id}: own job (%ld) median %.1f µs vs missing id (%ld) "
           "median %.1f µs: difference %+.1f µs (%+.1f%%), KS D = %.3f (D_crit %.3f), "
           "z = %+.2f\n",
           st_seen[0], m0, st_seen[1], m1, m0 - m1, 100 * (m0 - m1) / m1,
           ks_distance(t[0], N_CONTROL, t[1], N_CONTROL), KS_C * sqrt(2.0 / N_CONTROL),
           mann_whitney_z(t[0], N_CONTROL, t[1], N_CONTROL));
    rc = 0;
cleanup:
    free(t[0]);
    free(t[1]);
    return rc;
}

static int measure(const srv *s, const char *ds, const char *job)
{
    int rc = -1, total = N_KINDS * N_PAIRS;
    unsigned char *order = malloc((size_t)(total + N_WARMUP));
    double *t[N_KINDS] = {0};
    int cnt[N_KINDS] = {0};
    seen k[N_KINDS];
    memset(k, 0, sizeof k);
    CURL *c = curl_easy_init();
    if (!order || !c)
        goto cleanup;
    for (int i = 0; i < N_KINDS; i++)
        if (!(t[i] = malloc(N_PAIRS * sizeof *t[i])))
            goto cleanup;
    /* N_WARMUP untimed requests (all kinds), then every kind N_PAIRS times, shuffled. */
    for (int i = 0; i < N_WARMUP; i++)
        order[i] = (unsigned char)(i % N_KINDS);
    for (int i = 0; i < total; i++)
        order[N_WARMUP + i] = (unsigned char)(i % N_KINDS);
    for (int i = total - 1; i > 0; i--) {
        int j = (int)(rng_next() % (uint64_t)(i + 1));
        unsigned char x = order[N_WARMUP + i];
        order[N_WARMUP + i] = order[N_WARMUP + j];
        order[N_WARMUP + j] = x;
    }
    long connects = 0;
    double t0 = test_now_s();
    for (int i = 0; i < N_WARMUP + total; i++) {
        int kind = order[i];
        char id[64], path[128], *body = NULL, *hdrs = NULL;
        if (kind == JOB_OWN || kind == DS_OWN)
            snprintf(id, sizeof id, "%s", kind == JOB_OWN ? job : ds);
        else
            random_id(kind == JOB_MISSING ? job : ds, id, sizeof id);
        snprintf(path, sizeof path, "/v1/%s/%s", kind < DS_OWN ? "jobs" : "datasets", id);
        curl_off_t us = 0;
        long st = request(c, s, KEY_BOB, "GET", path, NULL, NULL, 0, &body, &hdrs, &us);
        long nc = 0;
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &nc);
        if (st < 0) {
            fprintf(stderr, "bench_tenants: transport error on %s\n", path);
            free(body);
            free(hdrs);
            goto cleanup;
        }
        if (i >= N_WARMUP) {
            connects += nc;
            t[kind][cnt[kind]++] = (double)us;
        }
        note(&k[kind], body, hdrs, id, st);
    }
    double secs = test_now_s() - t0;
    printf("bob: %d GETs (+%d warm-up) in %.2f s on one keep-alive connection (new connections "
           "during the timed part: %ld), all four kinds shuffled together\n",
           total, N_WARMUP, secs, connects);
    int v1 = report("GET /v1/jobs/{id}", t[JOB_OWN], t[JOB_MISSING], N_PAIRS, &k[JOB_OWN],
                    &k[JOB_MISSING]);
    int v2 = report("GET /v1/datasets/{id}", t[DS_OWN], t[DS_MISSING], N_PAIRS, &k[DS_OWN],
                    &k[DS_MISSING]);
    printf("thresholds: distinguishable when the Mann-Whitney |z| >= %.2f and the KS D >= "
           "%.3f (each two-sided α = 0.001); borderline when only one of them is\n",
           Z_CRIT, KS_C * sqrt(2.0 / N_PAIRS));
    if (control(c, s, job) < 0)
        goto cleanup;
    int leaks = 0;
    for (int i = 0; i < N_KINDS; i++)
        leaks += k[i].bad_status;
    rc = leaks || v1 == 1 || v2 == 1 ? 1 : 0;
cleanup:
    for (int i = 0; i < N_KINDS; i++) {
        free(t[i]);
        free(k[i].body);
        free(k[i].hdrs);
    }
    free(order);
    if (c)
        curl_easy_cleanup(c);
    return rc;
}

int main(int argc, char **argv)
{
    (void)argc;
    bench_init("bench_tenants", argv);
    int rc = 1;
    char *ds = NULL, *job = NULL;
    srv s = {0};
    CURL *c = curl_easy_init();
    if (!c || server_start(&s) < 0) {
        fprintf(stderr, "bench_tenants: server did not start\n");
        goto cleanup;
    }
    if (alice_setup(c, &s, &ds, &job) < 0)
        goto cleanup;
    printf("bench_tenants: alice's dataset %s (%d rows of digits.csv), job %s (64-5-10, gd, "
           "5 epochs) succeeded\n",
           ds, CSV_ROWS, job);
    int r = measure(&s, ds, job);
    if (r < 0)
        fprintf(stderr, "bench_tenants: measurement failed\n");
    rc = r == 0 ? 0 : 1;
cleanup:
    if (c)
        curl_easy_cleanup(c);
    bench_stop(&s);
    free(ds);
    free(job);
    curl_global_cleanup();
    return rc;
}
