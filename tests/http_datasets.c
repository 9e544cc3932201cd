/* http_datasets.c — /v1/datasets against the real server: digits uploaded as CSV and as JSON
 * give the same dataset (and the same cost), metadata/list/delete, owners cannot see each
 * other's datasets, and every class of bad upload gets its documented 4xx problem+json naming
 * the field while the server keeps serving. Also the body limits (413 by Content-Length and
 * for chunked bodies) and 415.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "tests/harness.h"

/* ------------------------------------------------------------------ helpers */

/* {"X": [[…]], "y": […]} with 17 significant digits (the same doubles). */
static char *dataset_json(const api_dataset *d)
{
    size_t cap = (size_t)(d->rows * (d->features + 1)) * 26 + 64, o = 0;
    char *t = malloc(cap);
    cr_assert(t);
    o += (size_t)snprintf(t + o, cap - o, "{\"X\": [");
    for (int64_t i = 0; i < d->rows; i++) {
        o += (size_t)snprintf(t + o, cap - o, "%s[", i ? "," : "");
        for (int64_t j = 0; j < d->features; j++)
            o += (size_t)snprintf(t + o, cap - o, "%s%.17g", j ? "," : "",
                                  d->X[i * d->features + j]);
        o += (size_t)snprintf(t + o, cap - o, "]");
    }
    o += (size_t)snprintf(t + o, cap - o, "], \"y\": [");
    for (int64_t i = 0; i < d->rows; i++)
        o += (size_t)snprintf(t + o, cap - o, "%s%d", i ? "," : "", d->labels[i]);
    snprintf(t + o, cap - o, "]}");
    return t;
}

static void expect_alive(const srv *s)
{
    resp r;
    cr_assert_eq(http_get(s, "/healthz", &r), 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
}

static json_t *upload(const srv *s, const char *path, const char *type, const char *body,
                      size_t len, const char *const *headers)
{
    resp r;
    cr_assert_eq(http_req(s, "POST", path, type, body, len, headers, &r), 0);
    cr_assert_eq(r.status, 201, "upload: %ld %s", r.status, r.body);
    char loc[128];
    cr_assert_eq(resp_header(&r, "Location", loc, sizeof loc), 0);
    json_t *j = resp_json(&r);
    cr_assert(j);
    char want[128];
    snprintf(want, sizeof want, "/v1/datasets/%s", json_string_value(json_object_get(j, "id")));
    cr_assert_str_eq(loc, want);
    resp_free(&r);
    return j;
}

static int matches(const char *s, const char *pattern)
{
    regex_t re;
    cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static int64_t jint(const json_t *o, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(o, k));
}

/* ------------------------------------------------------------------ tests */

Test(datasets, digits_as_csv_and_json_agree, .timeout = 60)
{
    size_t len;
    char *csv = test_digits_csv(1, &len);
    api_dataset d = {0};
    api_error err = {0};
    cr_assert_eq(api_dataset_parse_csv(&d, csv, len, &err), 0, "%s", err.detail);
    char *json = dataset_json(&d);

    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    json_t *a = upload(&s, "/v1/datasets?name=digits%20csv", "text/csv", csv, len, NULL);
    json_t *b = upload(&s, "/v1/datasets?name=digits%20json", "application/json", json,
                       strlen(json), NULL);
    const char *ida = json_string_value(json_object_get(a, "id"));
    const char *idb = json_string_value(json_object_get(b, "id"));
    cr_assert(matches(ida, "^ds_[0-9a-f]{24}$"), "%s", ida);
    cr_assert(matches(idb, "^ds_[0-9a-f]{24}$"), "%s", idb);
    cr_assert_str_neq(ida, idb);
    cr_assert_str_eq(json_string_value(json_object_get(a, "name")), "digits csv");
    cr_assert_str_eq(json_string_value(json_object_get(b, "name")), "digits json");
    cr_assert(matches(json_string_value(json_object_get(a, "created_at")),
                      "^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]Z$"));
    /* counted independently of the server: lines of the file, fields of the first line */
    int64_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += csv[i] == '\n';
    int64_t fields = 1;
    for (const char *c = csv; *c != '\n'; c++)
        fields += *c == ',';
    for (int k = 0; k < 2; k++) {
        json_t *m = k ? b : a;
        cr_assert_eq(jint(m, "rows"), lines);
        cr_assert_eq(jint(m, "rows"), 1797);
        cr_assert_eq(jint(m, "features"), fields - 1);
        cr_assert_eq(jint(m, "outputs"), 10);
    }

    /* the same cost on both, equal to the core's in-process */
    bp_spec spec = {.n_layers = 3, .sizes = {64, 16, 10}};
    int64_t P = bp_param_count(&spec);
    double *theta = malloc((size_t)P * sizeof *theta);
    bp_rng rng;
    bp_rng_seed(&rng, 5);
    bp_init_weights(theta, &spec, 0.0, &rng);
    json_t *tj = api_theta_json(theta, &spec);
    double cost[2];
    for (int k = 0; k < 2; k++) {
        json_t *req = json_pack("{s:o, s:O, s:f, s:s}", "network", api_spec_json(&spec),
                                "theta", tj, "lambda", 0.5, "dataset", k ? idb : ida);
        char *body = api_dump(req, NULL);
        resp r;
        cr_assert_eq(http_post_json(&s, "/v1/cost", body, &r), 0);
        cr_assert_eq(r.status, 200, "%s", r.body);
        json_t *j = resp_json(&r);
        cost[k] = json_number_value(json_object_get(j, "cost"));
        json_decref(j);
        resp_free(&r);
        free(body);
        json_decref(req);
    }
    cr_assert_eq(cost[0], cost[1], "%.17g vs %.17g", cost[0], cost[1]);
    double *T = api_targets(&d, 10, &err);
    bp_error be;
    bp_work *w = bp_work_new(&spec, d.rows, &be);
    double want = bp_cost_grad(NULL, w, d.X, T, theta, d.rows, 0.5, d.rows);
    cr_assert(fabs(cost[0] - want) <= 1e-12 * fabs(want), "%.17g vs %.17g", cost[0], want);
    bp_work_free(w);
    free(T);

    /* get, list, delete */
    char path[128];
    resp r;
    snprintf(path, sizeof path, "/v1/datasets/%s", ida);
    cr_assert_eq(http_get(&s, path, &r), 0);
    cr_assert_eq(r.status, 200);
    json_t *g = resp_json(&r);
    cr_assert(json_equal(g, a), "GET %s differs from the upload answer: %s", path, r.body);
    json_decref(g);
    resp_free(&r);

    cr_assert_eq(http_get(&s, "/v1/datasets", &r), 0);
    cr_assert_eq(r.status, 200);
    json_t *lj = resp_json(&r);
    json_t *list = json_object_get(lj, "datasets");
    cr_assert_eq(json_array_size(list), 2);
    int seen = 0;
    for (size_t i = 0; i < 2; i++)
        seen += json_equal(json_array_get(list, i), a) + 2 * json_equal(json_array_get(list, i), b);
    cr_assert_eq(seen, 3, "%s", r.body);
    json_decref(lj);
    resp_free(&r);

    cr_assert_eq(http_req(&s, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    cr_assert_eq(r.status, 204);
    resp_free(&r);
    cr_assert_eq(http_get(&s, path, &r), 0);
    expect_problem(&r, 404, ida);
    resp_free(&r);
    cr_assert_eq(http_req(&s, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    expect_problem(&r, 404, ida);
    resp_free(&r);
    cr_assert_eq(http_get(&s, "/v1/datasets", &r), 0);
    json_t *l2 = resp_json(&r);
    cr_assert_eq(json_array_size(json_object_get(l2, "datasets")), 1);
    json_decref(l2);
    resp_free(&r);
    /* a dataset that is gone is a 404 for the math too */
    json_t *req = json_pack("{s:o, s:O, s:s}", "network", api_spec_json(&spec), "theta", tj,
                            "dataset", ida);
    char *body = api_dump(req, NULL);
    cr_assert_eq(http_post_json(&s, "/v1/cost", body, &r), 0);
    expect_problem(&r, 404, "dataset");
    resp_free(&r);
    free(body);
    json_decref(req);

    srv_stop(&s);
    srv_cleanup(&s);
    json_decref(a);
    json_decref(b);
    json_decref(tj);
    free(theta);
    free(json);
    free(csv);
    api_dataset_clear(&d);
}

Test(datasets, names_are_checked_and_sanitized, .timeout = 30)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    const char *csv = "0,1\n1,2\n";
    json_t *m = upload(&s, "/v1/datasets?name=a%22b%5Cc%0Ad%C3%A9", "text/csv", csv, strlen(csv),
                       NULL);
    cr_assert_str_eq(json_string_value(json_object_get(m, "name")), "a_b_c_d\xc3\xa9");
    json_decref(m);
    m = upload(&s, "/v1/datasets", "text/csv", csv, strlen(csv), NULL);
    cr_assert_str_eq(json_string_value(json_object_get(m, "name")), "");
    json_decref(m);
    char path[300] = "/v1/datasets?name=";
    for (int i = 0; i < 128; i++)
        strcat(path, "n");
    resp r;
    cr_assert_eq(http_req(&s, "POST", path, "text/csv", csv, strlen(csv), NULL, &r), 0);
    expect_problem(&r, 400, "name");
    resp_free(&r);
    cr_assert_eq(http_get(&s, "/v1/datasets/ds_000000000000000000000000", &r), 0);
    expect_problem(&r, 404, "ds_000000000000000000000000");
    resp_free(&r);
    expect_alive(&s);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(datasets, bad_uploads_name_the_field, .timeout = 60)
{
    struct {
        const char *type, *body;
        long status;
        const char *needle;
    } cases[] = {
        /* JSON */
        {"application/json", "{\"X\": [[1, 2]], \"y\": [0]", 400, "y: invalid JSON"},
        {"application/json", "{\"X\": [[1, 2]], \"y\": [0]} trailing", 400, "unexpected text"},
        {"application/json", "{\"X\": [[1, 2]], \"X\": [[1, 2]], \"y\": [0]}", 400,
         "X: invalid JSON: duplicate key"},
        {"application/json", "{\"X\": [[1, 2]], \"y\": [0], \"name\": \"x\"}", 400,
         "unknown key \"name\""},
        {"application/json", "{\"X\": \"1,2\", \"y\": [0]}", 400, "X: expected a non-empty"},
        {"application/json", "{\"X\": [[1, 2], [3, true]], \"y\": [0, 1]}", 400,
         "X[1][1]: expected a number"},
        {"application/json", "{\"X\": [[1, 2], [3]], \"y\": [0, 1]}", 400,
         "X[1]: expected an array of 2 numbers, found 1"},
        {"application/json", "{\"X\": [[1, NaN]], \"y\": [0]}", 400, "X[0][1]"},
        {"application/json", "{\"X\": [[1, Infinity]], \"y\": [0]}", 400, "X[0][1]"},
        {"application/json", "{\"X\": [[1, 1e999]], \"y\": [0]}", 400,
         "X[0][1]: number out of range"},
        {"application/json", "{\"X\": [[1, 2]], \"y\": [-1]}", 400,
         "y[0]: must be an integer in 0..65535"},
        {"application/json", "{\"X\": [[1, 2]], \"y\": [70000]}", 400, "y[0]"},
        {"application/json", "{\"X\": [[1, 2]], \"y\": [0, 1]}", 400,
         "y: expected 1 labels (one per row of X), found 2"},
        {"application/json", "{\"X\": [], \"y\": []}", 400, "X: expected a non-empty array"},
        {"application/json", "", 400, "body: empty"},
        {"application/json", "{\"X\": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]], \"y\": [0]}", 400,
         "X[0][0]"},
        /* CSV */
        {"text/csv", "label,a,b\n0,1,2\n1,2,3\n1,2\n", 400, "line 4: expected 3 fields, found 2"},
        {"text/csv", "0,1,2\n1,2,x\n", 400, "line 2, column 3: expected a number"},
        {"text/csv", "0,1,2\n1,2,NaN\n", 400, "line 2, column 3"},
        {"text/csv", "0,1,2\n1,2,1e999\n", 400, "line 2, column 3: number out of range"},
        {"text/csv", "0,1,2\n-3,2,1\n", 400, "line 2, column 1: label"},
        {"text/csv", "", 400, "no data rows"},
        {"text/csv", "label,a\r\n", 400, "no data rows"},
        /* media type */
        {"text/plain", "0,1\n", 415, ""},
        {"application/xml", "<x/>", 415, ""},
    };
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        resp r;
        cr_assert_eq(http_req(&s, "POST", "/v1/datasets", cases[i].type, cases[i].body,
                              strlen(cases[i].body), NULL, &r),
                     0);
        expect_problem(&r, cases[i].status, cases[i].needle);
        resp_free(&r);
        expect_alive(&s);
    }
    /* nothing was stored */
    resp r;
    cr_assert_eq(http_get(&s, "/v1/datasets", &r), 0);
    cr_assert_str_eq(r.body, "{\"datasets\":[],\"next_cursor\":null}");
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---- body limits ---- */

typedef struct {
    const char *p;
    size_t left;
} feed;

static size_t feed_read(char *buf, size_t size, size_t n, void *arg)
{
    feed *f = arg;
    size_t k = size * n < f->left ? size * n : f->left;
    k = k > 100 ? 100 : k; /* many small chunks */
    memcpy(buf, f->p, k);
    f->p += k;
    f->left -= k;
    return k;
}

/* A chunked POST; returns the status (0 if the connection failed before any answer). */
static long post_chunked(const srv *s, const char *path, const char *type, const char *body,
                         size_t len)
{
    CURL *c = curl_easy_init();
    cr_assert(c);
    char url[256], ct[128];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    snprintf(ct, sizeof ct, "Content-Type: %s", type);
    struct curl_slist *h = curl_slist_append(NULL, "Transfer-Encoding: chunked");
    h = curl_slist_append(h, ct);
    h = curl_slist_append(h, "Expect:");
    feed f = {body, len};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, feed_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &f);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, test_curl_discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

Test(datasets, oversized_bodies_get_413, .timeout = 60)
{
    const char *extra[] = {"--max-body", "4096", NULL};
    srv s;
    cr_assert_eq(srv_start(&s, extra), 0);
    size_t n = 20000;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i += 4)
        memcpy(big + i, "1,0\n", 4);
    big[n] = '\0';
    resp r;
    cr_assert_eq(http_req(&s, "POST", "/v1/datasets", "text/csv", big, n, NULL, &r), 0);
    expect_problem(&r, 413, "");
    resp_free(&r);
    expect_alive(&s);
    cr_assert_eq(post_chunked(&s, "/v1/datasets", "text/csv", big, n), 413);
    expect_alive(&s);
    /* under the limit, chunked is fine */
    cr_assert_eq(post_chunked(&s, "/v1/datasets", "text/csv", big, 2000), 201);
    cr_assert_eq(http_req(&s, "POST", "/v1/cost", "application/json", big, n, NULL, &r), 0);
    expect_problem(&r, 413, "");
    resp_free(&r);
    expect_alive(&s);
    srv_stop(&s);
    srv_cleanup(&s);
    free(big);
}

/* ---- owners ---- */

Test(datasets, another_keys_dataset_is_404, .timeout = 30)
{
    char keys[] = "/tmp/backpropd-keys-XXXXXX";
    int fd = mkstemp(keys);
    cr_assert(fd >= 0);
    const char *text = "alice:alice-key-0123456789abcdef\nbob:bob-key-0123456789abcdef\n";
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    const char *extra[] = {"--api-keys-file", keys, NULL};
    const char *alice[] = {"Authorization: Bearer alice-key-0123456789abcdef", NULL};
    const char *bob[] = {"Authorization: Bearer bob-key-0123456789abcdef", NULL};
    srv s;
    cr_assert_eq(srv_start(&s, extra), 0);
    const char *csv = "0,1\n1,2\n";
    json_t *m = upload(&s, "/v1/datasets", "text/csv", csv, strlen(csv), alice);
    char path[128];
    snprintf(path, sizeof path, "/v1/datasets/%s", json_string_value(json_object_get(m, "id")));
    resp r;
    cr_assert_eq(http_req(&s, "GET", path, NULL, NULL, 0, alice, &r), 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    cr_assert_eq(http_req(&s, "GET", path, NULL, NULL, 0, bob, &r), 0);
    expect_problem(&r, 404, "ds_");
    resp_free(&r);
    cr_assert_eq(http_req(&s, "DELETE", path, NULL, NULL, 0, bob, &r), 0);
    expect_problem(&r, 404, "ds_");
    resp_free(&r);
    cr_assert_eq(http_req(&s, "GET", "/v1/datasets", NULL, NULL, 0, bob, &r), 0);
    cr_assert_str_eq(r.body, "{\"datasets\":[],\"next_cursor\":null}");
    resp_free(&r);
    char body[256];
    snprintf(body, sizeof body,
             "{\"network\": {\"layers\": [1, 1]}, \"theta\": [[[0, 1]]], \"dataset\": \"%s\"}",
             json_string_value(json_object_get(m, "id")));
    cr_assert_eq(http_req(&s, "POST", "/v1/cost", "application/json", body, strlen(body), bob,
                          &r),
                 0);
    expect_problem(&r, 404, "dataset");
    resp_free(&r);
    cr_assert_eq(http_req(&s, "POST", "/v1/cost", "application/json", body, strlen(body), alice,
                          &r),
                 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    cr_assert_eq(http_req(&s, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    cr_assert_eq(r.status, 401);
    resp_free(&r);
    json_decref(m);
    srv_stop(&s);
    srv_cleanup(&s);
    unlink(keys);
}

/* ---- listing: cursor paging, and the jobs of one dataset ---- */

/* GET path, asserting 200; the JSON answer (new). */
Test(datasets, list_pages_with_limit_and_cursor, .timeout = 60)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    enum { N = 5 };
    char ids[N][64];
    for (int i = 0; i < N; i++) {
        char csv[32], path[64];
        snprintf(csv, sizeof csv, "%d,%d\n1,2\n", i % 2, i);
        snprintf(path, sizeof path, "/v1/datasets?name=d%d", i);
        cr_assert_eq(post_for_id(&s, path, "text/csv", csv, strlen(csv), NULL, ids[i],
                                 sizeof ids[i]), 201);
    }
    /* the whole list at once: newest first, no next page */
    json_t *all = get_json(&s, "/v1/datasets");
    cr_assert_eq(json_array_size(json_object_get(all, "datasets")), N);
    cr_assert(json_is_null(json_object_get(all, "next_cursor")));
    json_decref(all);

    /* pages of 2: each dataset exactly once, newest first */
    int seen = 0, pages = 0;
    char path[160] = "/v1/datasets?limit=2";
    for (;;) {
        json_t *p = get_json(&s, "%s", path);
        json_t *a = json_object_get(p, "datasets");
        cr_assert(json_array_size(a) >= 1 && json_array_size(a) <= 2, "page of %zu",
                  json_array_size(a));
        for (size_t k = 0; k < json_array_size(a); k++, seen++) {
            cr_assert_lt(seen, N);
            cr_assert_str_eq(json_string_value(json_object_get(json_array_get(a, k), "id")),
                             ids[N - 1 - seen]);
        }
        pages++;
        const char *cur = json_string_value(json_object_get(p, "next_cursor"));
        if (!cur) {
            cr_assert(json_is_null(json_object_get(p, "next_cursor")));
            json_decref(p);
            break;
        }
        snprintf(path, sizeof path, "/v1/datasets?limit=2&cursor=%s", cur);
        json_decref(p);
    }
    cr_assert_eq(seen, N);
    cr_assert_eq(pages, (N + 1) / 2);

    resp r;
    const char *bad[][2] = {{"/v1/datasets?limit=0", "limit"},
                            {"/v1/datasets?limit=1001", "limit"},
                            {"/v1/datasets?limit=x", "limit"},
                            {"/v1/datasets?cursor=abc", "cursor"},
                            {"/v1/datasets?cursor=-3", "cursor"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(http_get(&s, bad[i][0], &r), 0);
        expect_problem(&r, 400, bad[i][1]);
        resp_free(&r);
    }
    srv_stop(&s);
    srv_cleanup(&s);
}

/* The ids of the jobs in a GET /v1/jobs answer, in order, joined by spaces (new). */
static char *job_ids(const json_t *page)
{
    json_t *a = json_object_get(page, "jobs");
    char *out = calloc(1, 64 * json_array_size(a) + 1);
    cr_assert(out);
    for (size_t i = 0; i < json_array_size(a); i++) {
        if (i)
            strcat(out, " ");
        strcat(out, json_string_value(json_object_get(json_array_get(a, i), "id")));
    }
    return out;
}

Test(datasets, jobs_filtered_by_dataset, .timeout = 60)
{
    srv s;
    const char *args[] = {"--workers", "1", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char a[64], b[64], ja[3][64], jb[64];
    const char *csv = "0,0,0\n1,1,1\n0,0,1\n1,1,0\n";
    cr_assert_eq(post_for_id(&s, "/v1/datasets", "text/csv", csv, strlen(csv), NULL, a, sizeof a),
                 201);
    cr_assert_eq(post_for_id(&s, "/v1/datasets", "text/csv", csv, strlen(csv), NULL, b, sizeof b),
                 201);
    char *body_a = job_body(a, "[2,2]", "\"epochs\":1");
    char *body_b = job_body(b, "[2,2]", "\"epochs\":1");
    submit_job(&s, NULL, body_a, ja[0], sizeof ja[0]);
    submit_job(&s, NULL, body_b, jb, sizeof jb);
    submit_job(&s, NULL, body_a, ja[1], sizeof ja[1]);
    submit_job(&s, NULL, body_a, ja[2], sizeof ja[2]);

    char path[160], want[256];
    snprintf(path, sizeof path, "/v1/jobs?dataset=%s", a);
    json_t *p = get_json(&s, "%s", path);
    char *got = job_ids(p);
    snprintf(want, sizeof want, "%s %s %s", ja[2], ja[1], ja[0]);
    cr_assert_str_eq(got, want);
    cr_assert(json_is_null(json_object_get(p, "next_cursor")));
    free(got);
    json_decref(p);

    snprintf(path, sizeof path, "/v1/jobs?dataset=%s", b);
    p = get_json(&s, "%s", path);
    got = job_ids(p);
    cr_assert_str_eq(got, jb);
    free(got);
    json_decref(p);

    /* paging within the filter: limit 2, then the rest */
    snprintf(path, sizeof path, "/v1/jobs?dataset=%s&limit=2", a);
    p = get_json(&s, "%s", path);
    got = job_ids(p);
    snprintf(want, sizeof want, "%s %s", ja[2], ja[1]);
    cr_assert_str_eq(got, want);
    free(got);
    const char *cur = json_string_value(json_object_get(p, "next_cursor"));
    cr_assert_not_null(cur);
    snprintf(path, sizeof path, "/v1/jobs?dataset=%s&limit=2&cursor=%s", a, cur);
    json_decref(p);
    p = get_json(&s, "%s", path);
    got = job_ids(p);
    cr_assert_str_eq(got, ja[0]);
    cr_assert(json_is_null(json_object_get(p, "next_cursor")));
    free(got);
    json_decref(p);

    /* an id no dataset has: an empty list, like a status nobody has */
    p = get_json(&s, "%s", "/v1/jobs?dataset=ds_000000000000000000000000");
    cr_assert_eq(json_array_size(json_object_get(p, "jobs")), 0);
    cr_assert(json_is_null(json_object_get(p, "next_cursor")));
    json_decref(p);

    free(body_a);
    free(body_b);
    srv_stop(&s);
    srv_cleanup(&s);
}
