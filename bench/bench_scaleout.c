/* bench_scaleout.c — issue 13's figures, as ratios in one run, on a throwaway PostgreSQL cluster
 * this benchmark starts itself (tests/harness/pg.c):
 *   1. a W2-sized dataset (60,000 × 784 doubles + labels, 376 MB) stored into and loaded from
 *      PostgreSQL (16 MiB bytea chunks) against the SQLite store on disk;
 *   2. jobs/s through the shared queue: 36 small jobs on 1 instance against 3 instances (one
 *      worker each) on the same database;
 *   3. queued → running latency on idle instances: a job posted to one instance and claimed
 *      by the first worker woken by the store's notification (median of 15);
 *   4. SSE event latency across instances: one job's event stream read from all three
 *      instances at once; each event's arrival on the instances that do not train the job
 *      (LISTEN/NOTIFY, then the store) minus its arrival on the one that does.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "server/store/store.h"

/* Seconds to put and to load the dataset on location (a directory or a URI); -1 on failure. */
static int put_load(const char *location, const double *X, const int32_t *y, int64_t m, int n,
                    double *put_s, double *load_s)
{
    store_error err;
    store *s = store_open(location, &err);
    if (!s) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        return -1;
    }
    store_dataset_meta meta;
    memset(&meta, 0, sizeof meta);
    snprintf(meta.id, sizeof meta.id, "ds_bench");
    meta.rows = m;
    meta.features = n;
    meta.outputs = 10;
    meta.has_labels = 1;
    double t0 = test_now_s();
    int rc = store_dataset_put(s, &meta, X, y, NULL, &err);
    *put_s = test_now_s() - t0;
    double *X2 = NULL, *Y2 = NULL;
    int32_t *l2 = NULL;
    t0 = test_now_s();
    if (rc == 0)
        rc = store_dataset_load(s, "", "ds_bench", &meta, &X2, &l2, &Y2, &err);
    *load_s = test_now_s() - t0;
    if (rc == 0 && memcmp(X2, X, (size_t)m * (size_t)n * 8) != 0)
        rc = -1;
    if (rc != 0)
        fprintf(stderr, "dataset: %s\n", err.msg);
    free(X2);
    free(l2);
    free(Y2);
    store_close(s);
    return rc;
}

/* The status of job id on s into st ("" when s does not answer). */
static void status_of(const srv *s, const char *id, char *st, size_t cap)
{
    char path[96];
    resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    st[0] = '\0';
    if (http_get(s, path, &r) != 0)
        return;
    json_t *j = r.status == 200 ? resp_json(&r) : NULL;
    const char *v = j ? json_string_value(json_object_get(j, "status")) : NULL;
    snprintf(st, cap, "%s", v ? v : "");
    json_decref(j);
    resp_free(&r);
}

/* POSTs body to path on s expecting status want; the answer's "id" into id. 0 or -1. */
static int post_id(const srv *s, const char *path, const char *ctype, const char *body,
                   size_t len, long want, char *id, size_t cap)
{
    resp r;
    if (http_req(s, "POST", path, ctype, body, len, NULL, &r) != 0)
        return -1;
    json_t *j = r.status == want ? resp_json(&r) : NULL;
    const char *v = j ? json_string_value(json_object_get(j, "id")) : NULL;
    snprintf(id, cap, "%s", v ? v : "");
    if (!v)
        fprintf(stderr, "POST %s: %ld %s\n", path, r.status, r.body);
    json_decref(j);
    resp_free(&r);
    return v ? 0 : -1;
}

/* POSTs a small job to s; its id into id. 0 or -1. */
static int post_job(const srv *s, const char *ds, int epochs, int seed, char *id, size_t cap)
{
    char body[400];
    snprintf(body, sizeof body, "{\"network\":{\"layers\":[64,16,10]},\"dataset\":\"%s\","
             "\"training\":{\"optimizer\":\"adam\",\"learning_rate\":0.01,\"epochs\":%d,"
             "\"seed\":%d}}", ds, epochs, seed);
    return post_id(s, "/v1/jobs", "application/json", body, strlen(body), 202, id, cap);
}

/* Uploads tests/data/digits.csv to s; the dataset id into id. 0 or -1. */
static int upload(const srv *s, char *id, size_t cap)
{
    size_t len = 0;
    char *csv = test_slurp(test_data_path("digits.csv"), &len);
    int rc = csv ? post_id(s, "/v1/datasets?name=digits", "text/csv", csv, len, 201, id, cap)
                 : -1;
    free(csv);
    return rc;
}

/* Seconds for n jobs posted round-robin to v[0..k-1] to all succeed; -1 on failure. */
static double queue_seconds(srv *v, int k, const char *ds, int n)
{
    char (*ids)[64] = calloc((size_t)n, sizeof *ids);
    double t0 = test_now_s(), t = -1;
    for (int i = 0; i < n; i++)
        if (post_job(&v[i % k], ds, 40, i + 1, ids[i], sizeof ids[i]) < 0)
            goto cleanup;
    for (int i = 0; i < n; i++) {
        char st[32] = "";
        while (test_now_s() - t0 < 300) {
            status_of(&v[i % k], ids[i], st, sizeof st);
            if (strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0)
                break;
            test_sleep_ms(10);
        }
        if (strcmp(st, "succeeded") != 0)
            goto cleanup;
    }
    t = test_now_s() - t0;
cleanup:
    free(ids);
    return t;
}

/* ---- 4. one job's events read on every instance at once ---- */
#define SSE_MAX_EVENTS 8192

typedef struct {
    const srv *s;
    char path[96];                  /* /v1/jobs/{id}/events */
    sse_stream k;                   /* k.t_first: when this reader's stream opened */
    double arrived[SSE_MAX_EVENTS]; /* test_now_s() when event id i first arrived; 0 = not */
} sse_reader;

static void *sse_read_all(void *arg)
{
    sse_reader *r = arg;
    sse_read_ids(r->s, r->path, 120000, &r->k, r->arrived, SSE_MAX_EVENTS);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A long job posted to v[0], its events read on the 3 instances at once; prints the median,
 * p90 and max cross-instance delay of the events that arrived live (not replayed at connect).
 * 0 or -1. */
static int sse_latency(srv *v, const char *ds)
{
    char id[64];
    int rc = -1;
    sse_reader *r = calloc(3, sizeof *r);
    double *lat = malloc(2 * SSE_MAX_EVENTS * sizeof *lat);
    pthread_t th[3];
    int started = 0;
    if (!r || !lat || post_job(&v[0], ds, 1500, 77, id, sizeof id) < 0)
        goto cleanup;
    for (; started < 3; started++) {
        r[started].s = &v[started];
        snprintf(r[started].path, sizeof r[started].path, "/v1/jobs/%s/events", id);
        if (pthread_create(&th[started], NULL, sse_read_all, &r[started]) != 0)
            break;
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    double t_ready = 0; /* when every stream was open: what came before was replayed */
    int opened = 0;
    for (int i = 0; i < started; i++) {
        free(r[i].k.buf);
        opened += r[i].k.t_first > 0;
        t_ready = r[i].k.t_first > t_ready ? r[i].k.t_first : t_ready;
    }
    if (opened < 3)
        goto cleanup;
    int n = 0, local_of[3] = {0, 0, 0};
    for (int e = 0; e < SSE_MAX_EVENTS; e++) {
        double a0 = r[0].arrived[e], a1 = r[1].arrived[e], a2 = r[2].arrived[e];
        if (a0 == 0 || a1 == 0 || a2 == 0)
            continue;
        int first = a0 <= a1 && a0 <= a2 ? 0 : a1 <= a2 ? 1 : 2;
        double t_first = r[first].arrived[e];
        if (t_first < t_ready + 0.2) /* replayed from the store at connect: not live */
            continue;
        local_of[first]++;
        for (int i = 0; i < 3; i++)
            if (i != first)
                lat[n++] = (r[i].arrived[e] - t_first) * 1000;
    }
    if (n == 0) {
        printf("  SSE across instances: no live event reached all three readers\n");
        goto cleanup;
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    printf("  SSE event latency across instances (one job's %d live events read on all 3; "
           "first arrival on instances %d/%d/%d times): the other two instances median %.1f ms, "
           "p90 %.1f ms, max %.1f ms\n", n / 2, local_of[0], local_of[1], local_of[2],
           lat[n / 2], lat[(int)(n * 0.9)], lat[n - 1]);
    rc = 0;
cleanup:
    free(r);
    free(lat);
    return rc;
}

static int start_n(srv *v, int k, const char *uri)
{
    const char *args[] = {"--store", uri, "--workers", "1", "--log-level", "warn", NULL};
    for (int i = 0; i < k; i++)
        if (srv_start(&v[i], args) < 0)
            return -1;
    return 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    bench_init("bench_scaleout", argv);
    if (pg_cluster_start() != 0)
        return 1;
    int rc = 1;
    /* 1. the W2-sized dataset */
    int64_t m = 60000;
    int n = 784;
    double *X = NULL, *Y = NULL;
    int32_t *y = NULL;
    char uri[256], dir[] = "/tmp/bpd_bench_XXXXXX";
    if (bench_synthetic(&X, &Y, &y, m, n, 10, 7) < 0 || !mkdtemp(dir) ||
        pg_new_database(uri, sizeof uri) < 0)
        goto cleanup;
    double pg_put, pg_load, sq_put, sq_load;
    if (put_load(uri, X, y, m, n, &pg_put, &pg_load) < 0 ||
        put_load(dir, X, y, m, n, &sq_put, &sq_load) < 0)
        goto cleanup;
    test_rm_tree(dir);
    printf("  376 MB dataset: PostgreSQL put %.2f s, load %.2f s; SQLite put %.2f s, load %.2f s;"
           " PostgreSQL/SQLite put %.2fx, load %.2fx\n", pg_put, pg_load, sq_put, sq_load,
           pg_put / sq_put, pg_load / sq_load);
    free(X);
    free(Y);
    free(y);
    X = Y = NULL;
    y = NULL;

    /* 2. jobs/s, 1 against 3 instances */
    srv v[3];
    char ds[64];
    const int jobs = 36;
    double secs[2];
    for (int round = 0; round < 2; round++) {
        int k = round ? 3 : 1;
        if (pg_new_database(uri, sizeof uri) < 0 || start_n(v, k, uri) < 0)
            goto cleanup;
        if (upload(&v[0], ds, sizeof ds) < 0)
            goto cleanup;
        secs[round] = queue_seconds(v, k, ds, jobs);
        if (round == 1) { /* 3. queued → running on idle instances */
            double lat[15];
            for (int i = 0; i < 15; i++) {
                char id[64], st[32] = "";
                double t0 = test_now_s();
                if (post_job(&v[i % 3], ds, 4000, 100 + i, id, sizeof id) < 0)
                    goto cleanup;
                for (int p = 0; p < 3 && strcmp(st, "running") != 0; p = (p + 1) % 3) {
                    status_of(&v[p], id, st, sizeof st);
                    if (test_now_s() - t0 > 10)
                        break;
                }
                lat[i] = test_now_s() - t0;
                char path[96];
                resp r;
                snprintf(path, sizeof path, "/v1/jobs/%s", id);
                if (http_req(&v[0], "DELETE", path, NULL, NULL, 0, NULL, &r) == 0)
                    resp_free(&r);
                test_sleep_ms(300);
            }
            printf("  queued → running on idle instances (3, posted round-robin): median %.1f ms"
                   " (polling included)\n", bench_median(lat, 15) * 1000);
            sse_latency(v, ds); /* 4. */
        }
        for (int i = 0; i < k; i++)
            bench_stop(&v[i]);
        if (secs[round] < 0)
            goto cleanup;
    }
    printf("  %d small jobs through the queue: 1 instance %.2f s (%.1f jobs/s), 3 instances "
           "%.2f s (%.1f jobs/s): 3/1 = %.2fx (2 cores)\n", jobs, secs[0], jobs / secs[0],
           secs[1], jobs / secs[1], secs[0] / secs[1]);
    rc = 0;
cleanup:
    free(X);
    free(Y);
    free(y);
    pg_cluster_stop();
    return rc;
}
