/* bench_http.c — what gzip and ETags buy on an immutable representation: a finished job's
 * weights (a 64-25-10 digits network, about 39 KB of JSON). Starts build/backpropd
 * (BACKPROPD_BIN) on a free port, trains the job, then on one keep-alive connection sends
 * N_ROUNDS × four GETs of the weights, interleaved so load drifts hit them all alike:
 *   identity (no Accept-Encoding), gzip (Accept-Encoding: gzip), and each again with the
 *   ETag it was given in If-None-Match (the 304 round-trip).
 * Prints bytes on the wire and the median / p90 of libcurl's total time for each, and the
 * ratios to identity: gzip size (target <= 0.5), gzip time, 304 time. The gzip bodies are
 * inflated here once and compared with the identity bytes (exit 1 if they differ, if a
 * conditional GET is not a 304, or if a 304 carries a body).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "bench/bench_util.h"
#include "tests/harness.h"

#define N_ROUNDS 400
#define N_WARMUP 40

/* 0 when the gzip bytes inflate to exactly plain. */
static int same_inflated(const resp *z, const resp *plain)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        return -1;
    char *out = malloc(plain->len + 1);
    int rc = -1;
    if (!out)
        goto cleanup;
    zs.next_in = (Bytef *)z->body;
    zs.avail_in = (uInt)z->len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)plain->len + 1;
    if (inflate(&zs, Z_FINISH) == Z_STREAM_END && zs.total_out == plain->len &&
        memcmp(out, plain->body, plain->len) == 0)
        rc = 0;
cleanup:
    free(out);
    inflateEnd(&zs);
    return rc;
}

/* Trains the job; its weights path into path. 0 or -1. */
static int make_job(const srv *s, char *path, size_t len)
{
    char ds[64] = "", id[64], body[256];
    size_t n;
    resp r;
    char *csv = test_slurp(test_data_path("digits.csv"), &n);
    int rc = csv ? http_req(s, "POST", "/v1/datasets?name=digits", "text/csv", csv, n, NULL, &r)
                 : -1;
    free(csv);
    json_t *j = rc == 0 && r.status == 201 ? resp_json(&r) : NULL;
    snprintf(ds, sizeof ds, "%s", j ? json_string_value(json_object_get(j, "id")) : "");
    json_decref(j);
    if (rc == 0)
        resp_free(&r);
    if (!ds[0])
        return -1;
    snprintf(body, sizeof body, "{\"network\":{\"layers\":[64,25,10]},\"dataset\":\"%s\","
             "\"training\":{\"optimizer\":\"gd\",\"epochs\":3}}", ds);
    rc = http_req(s, "POST", "/v1/jobs", "application/json", body, strlen(body), NULL, &r);
    j = rc == 0 && r.status == 202 ? resp_json(&r) : NULL;
    snprintf(id, sizeof id, "%s", j ? json_string_value(json_object_get(j, "id")) : "");
    json_decref(j);
    resp_free(&r);
    if (!id[0])
        return -1;
    snprintf(path, len, "/v1/jobs/%s/weights", id);
    for (int i = 0; i < 3000; i++) {
        char jp[96];
        snprintf(jp, sizeof jp, "/v1/jobs/%s", id);
        if (http_get(s, jp, &r) != 0)
            return -1;
        int done = strstr(r.body, "\"succeeded\"") != NULL;
        resp_free(&r);
        if (done)
            return 0;
        test_sleep_ms(20);
    }
    return -1;
}

typedef struct {
    const char *name;
    const char *h[3];
    double us[N_ROUNDS];
    size_t bytes;
    long status;
} variant;

int main(int argc, char **argv)
{
    (void)argc;
    bench_init("bench_http", argv);
    srv s;
    const char *args[] = {"--workers", "1", "--log-level", "warn", NULL};
    if (srv_start(&s, args) != 0) {
        fprintf(stderr, "bench_http: the server did not start\n");
        return 1;
    }
    int bad = 0;
    char path[128], tag[128] = "", tagz[128] = "", inm[160], inmz[160];
    if (make_job(&s, path, sizeof path) != 0) {
        fprintf(stderr, "bench_http: the job did not finish\n");
        bench_stop(&s);
        return 1;
    }
    resp plain, z;
    http_req(&s, "GET", path, NULL, NULL, 0, NULL, &plain);
    const char *gzh[] = {"Accept-Encoding: gzip", NULL};
    http_req(&s, "GET", path, NULL, NULL, 0, gzh, &z);
    resp_header(&plain, "ETag", tag, sizeof tag);
    resp_header(&z, "ETag", tagz, sizeof tagz);
    if (same_inflated(&z, &plain) != 0) {
        fprintf(stderr, "bench_http: the gzip body does not inflate to the identity body\n");
        bad = 1;
    }
    resp_free(&plain);
    resp_free(&z);
    snprintf(inm, sizeof inm, "If-None-Match: %s", tag);
    snprintf(inmz, sizeof inmz, "If-None-Match: %s", tagz);
    variant v[4] = {{"identity", {NULL}, {0}, 0, 0},
                    {"gzip", {"Accept-Encoding: gzip", NULL}, {0}, 0, 0},
                    {"identity 304", {inm, NULL}, {0}, 0, 0},
                    {"gzip 304", {"Accept-Encoding: gzip", inmz, NULL}, {0}, 0, 0}};
    CURL *c = curl_easy_init();
    for (int round = -N_WARMUP; round < N_ROUNDS && c; round++) {
        for (int k = 0; k < 4; k++) {
            resp r;
            if (http_req_on(c, &s, "GET", path, NULL, NULL, 0, v[k].h[0] ? v[k].h : NULL,
                            &r) != 0) {
                bad = 1;
                continue;
            }
            if (round >= 0)
                v[k].us[round] = (double)r.total_us;
            v[k].bytes = r.len;
            v[k].status = r.status;
            resp_free(&r);
        }
    }
    curl_easy_cleanup(c);
    double med[4];
    for (int k = 0; k < 4; k++) {
        bench_sort(v[k].us, N_ROUNDS);
        med[k] = bench_quantile(v[k].us, N_ROUNDS, 0.5);
        printf("  %-13s status %ld  %6zu bytes  median %7.1f us  p90 %7.1f us\n", v[k].name,
               v[k].status, v[k].bytes, med[k], bench_quantile(v[k].us, N_ROUNDS, 0.9));
    }
    if (v[0].status != 200 || v[1].status != 200 || v[2].status != 304 || v[3].status != 304 ||
        v[2].bytes || v[3].bytes)
        bad = 1;
    printf("  gzip/identity: size %.3f (target <= 0.5), time %.2f\n",
           (double)v[1].bytes / (double)v[0].bytes, med[1] / med[0]);
    printf("  304/identity time: %.2f (identity), %.2f (gzip)\n", med[2] / med[0],
           med[3] / med[1]);
    bench_stop(&s);
    return bad;
}
