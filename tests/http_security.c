/* http_security.c — security of the real backpropd binary over HTTP: API keys (missing,
 * malformed, wrong, revoked, hashed), open health routes, tenant isolation on every endpoint
 * (another key's id answers exactly like a missing id), random id format, CORS (preflight,
 * actual and SSE requests, 20 crafted origins), quotas and the rate limit (429 + Retry-After,
 * then success after waiting), refusal to bind beyond loopback without keys, and HTTPS with a
 * throwaway self-signed certificate (TLS 1.2+ only, plain HTTP refused).
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/harness.h"

#define KEY_A "alice-key-0123456789abcdef"
#define KEY_B "bob-key-fedcba9876543210xyz"
#define KEY_C "carol-hashed-key-00112233445566"
#define ORIGIN "https://app.example.com"
#define ORIGIN2 "http://localhost:5173"

/* ---------------------------------------------------------------- helpers */

/* A fresh temp directory for keys files and certificates (removed by rm_tmpdir). */
static void make_tmpdir(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/bpd_sec_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmpdir(const char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
}

/* SHA-256 of s in hex, computed by coreutils (independently of the server). */
static void sha256_hex(const char *s, char out[65])
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "printf '%%s' '%s' | sha256sum", s);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    cr_assert_not_null(fgets(out, 65, p));
    pclose(p);
    cr_assert_eq(strlen(out), 64);
}

/* Writes the standard keys file (alice, bob plain; carol hashed) into dir. */
static void write_keys(const char *dir, char *path, size_t len, int with_alice)
{
    char hex[65], text[512];
    sha256_hex(KEY_C, hex);
    snprintf(text, sizeof text,
             "# test keys\n%s\nbob:" KEY_B "\n\ncarol:sha256:%s\n",
             with_alice ? "alice:" KEY_A : "# alice revoked", hex);
    snprintf(path, len, "%s/keys", dir);
    write_file(path, text);
}

/* One request with an optional key and Origin (and up to two more headers). */
static resp call(const srv *s, const char *method, const char *path, const char *key,
                 const char *origin, const char *json)
{
    char auth[256], orig[256];
    const char *h[6];
    int n = 0;
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        h[n++] = auth;
    }
    if (origin) {
        snprintf(orig, sizeof orig, "Origin: %s", origin);
        h[n++] = orig;
    }
    h[n] = NULL;
    resp r;
    memset(&r, 0, sizeof r);
    int rc = http_req(s, method, path, json ? "application/json" : NULL, json,
                      json ? strlen(json) : 0, h, &r);
    cr_assert_eq(rc, 0, "%s %s: transport error", method, path);
    return r;
}

static resp call_h(const srv *s, const char *method, const char *path,
                   const char *const *headers)
{
    resp r;
    memset(&r, 0, sizeof r);
    cr_assert_eq(http_req(s, method, path, NULL, NULL, 0, headers, &r), 0);
    return r;
}

static int has_header(const resp *r, const char *name)
{
    char buf[512];
    return resp_header(r, name, buf, sizeof buf) == 0;
}

static void header_is(const resp *r, const char *name, const char *want)
{
    char buf[512];
    cr_assert_eq(resp_header(r, name, buf, sizeof buf), 0, "no %s header; headers:\n%s", name,
                 r->headers);
    cr_assert_str_eq(buf, want, "%s: %s, want %s", name, buf, want);
}

static void header_has(const resp *r, const char *name, const char *part)
{
    char buf[512];
    cr_assert_eq(resp_header(r, name, buf, sizeof buf), 0, "no %s header; headers:\n%s", name,
                 r->headers);
    cr_assert(strstr(buf, part), "%s: \"%s\" lacks \"%s\"", name, buf, part);
}

/* The handlers this file exercises must exist: a 501 means a stub is still linked. */
static void not_stub(const resp *r, const char *what)
{
    cr_assert_neq(r->status, 501, "%s: handler not implemented yet (501)", what);
}

/* 401 problem+json with the right challenge. */
static void is_401(const resp *r, const char *error_param)
{
    cr_assert_eq(r->status, 401, "status %ld, body %s", r->status, r->body);
    header_has(r, "Content-Type", "application/problem+json");
    header_has(r, "WWW-Authenticate", "Bearer realm=\"backpropd\"");
    if (error_param)
        header_has(r, "WWW-Authenticate", error_param);
    json_t *j = resp_json(r);
    cr_assert_not_null(j);
    cr_assert_eq(json_integer_value(json_object_get(j, "status")), 401);
    json_decref(j);
}

/* 429 problem+json with Retry-After: whole seconds >= 1. Returns them. */
static int is_429(const resp *r)
{
    char buf[64];
    cr_assert_eq(r->status, 429, "status %ld, body %s", r->status, r->body);
    header_has(r, "Content-Type", "application/problem+json");
    cr_assert_eq(resp_header(r, "Retry-After", buf, sizeof buf), 0, "no Retry-After");
    for (const char *c = buf; *c; c++)
        cr_assert(isdigit((unsigned char)*c), "Retry-After \"%s\" is not whole seconds", buf);
    int secs = atoi(buf);
    cr_assert_geq(secs, 1);
    cr_assert_leq(secs, 3600);
    return secs;
}

/* Copies the string field `name` of the JSON body into out. */
static void body_field(const resp *r, const char *name, char *out, size_t len)
{
    json_t *j = resp_json(r);
    cr_assert_not_null(j, "body is not JSON: %s", r->body);
    const char *v = json_string_value(json_object_get(j, name));
    cr_assert_not_null(v, "no \"%s\" in %s", name, r->body);
    snprintf(out, len, "%s", v);
    json_decref(j);
}

/* An id is prefix + at least 24 lower-case hex digits (>= 96 random bits). */
static void id_format(const char *id, const char *prefix)
{
    size_t p = strlen(prefix), n = strlen(id);
    cr_assert(strncmp(id, prefix, p) == 0, "%s lacks %s", id, prefix);
    cr_assert_geq(n - p, 24, "%s: fewer than 96 bits", id);
    for (size_t i = p; i < n; i++)
        cr_assert(isxdigit((unsigned char)id[i]) && !isupper((unsigned char)id[i]),
                  "%s: not hex", id);
}

/* A small dataset: rows × 4 features, labels 0/1 (JSON). */
static char *dataset_json(int rows, int salt)
{
    size_t cap = 64 + (size_t)rows * 120;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    size_t n = (size_t)snprintf(s, cap, "{\"X\": [");
    for (int i = 0; i < rows; i++)
        n += (size_t)snprintf(s + n, cap - n, "%s[%d.5, %d.25, %d, %d]", i ? ", " : "",
                              (i * 7 + salt) % 10, (i * 3) % 5, i % 2, (i + salt) % 3);
    n += (size_t)snprintf(s + n, cap - n, "], \"y\": [");
    for (int i = 0; i < rows; i++)
        n += (size_t)snprintf(s + n, cap - n, "%s%d", i ? ", " : "", i % 2);
    snprintf(s + n, cap - n, "]}");
    return s;
}

/* POST /v1/datasets as key; returns the id (201 expected). */
static void make_dataset(const srv *s, const char *key, int rows, char *id, size_t len)
{
    char *body = dataset_json(rows, 1);
    resp r = call(s, "POST", "/v1/datasets?name=alices-secret-data", key, NULL, body);
    free(body);
    not_stub(&r, "POST /v1/datasets");
    cr_assert_eq(r.status, 201, "POST /v1/datasets: %ld %s", r.status, r.body);
    body_field(&r, "id", id, len);
    id_format(id, "ds_");
    resp_free(&r);
}

/* The Authorization header list for key (NULL: none) in buf. */
static const char *const *auth_headers(const char *key, char *buf, size_t len,
                                       const char *h[2])
{
    snprintf(buf, len, "Authorization: Bearer %s", key ? key : "");
    h[0] = buf;
    h[1] = NULL;
    return key ? h : NULL;
}

/* POST /v1/jobs as key: a [4, 3, 2] network on ds (202 expected); the id into id. */
static void make_job(const srv *s, const char *key, const char *ds, int epochs, char *id,
                     size_t len)
{
    char training[64], auth[256];
    const char *h[2];
    snprintf(training, sizeof training, "\"epochs\": %d, \"seed\": 7", epochs);
    char *body = job_body(ds, "[4, 3, 2]", training);
    submit_job(s, auth_headers(key, auth, sizeof auth, h), body, id, len);
    free(body);
    id_format(id, "job_");
}

/* Polls the job until it is in a final state (20 s at most); returns the status. */
static void wait_final(const srv *s, const char *key, const char *job, char *status, size_t len)
{
    char auth[256];
    const char *h[2];
    json_t *j = wait_job_h(s, auth_headers(key, auth, sizeof auth, h), job, NULL, 20);
    snprintf(status, len, "%s", json_string_value(json_object_get(j, "status")));
    json_decref(j);
}

/* Replaces every occurrence of from by to (same length) in s. */
static void replace_all(char *s, const char *from, const char *to)
{
    size_t n = strlen(from);
    cr_assert_eq(strlen(to), n);
    for (char *p = strstr(s, from); p; p = strstr(p + n, from))
        memcpy(p, to, n);
}

/* out = tmpl with its "%s" (if any) replaced by id (no printf on a variable format). */
static void subst(char *out, size_t len, const char *tmpl, const char *id)
{
    const char *p = strstr(tmpl, "%s");
    if (!p)
        snprintf(out, len, "%s", tmpl);
    else
        snprintf(out, len, "%.*s%s%s", (int)(p - tmpl), tmpl, id, p + 2);
}

/* ---------------------------------------------------------------- keys */

Test(keys, missing_malformed_wrong_keys_get_401, .timeout = 60)
{
    char dir[64], keys[128];
    make_tmpdir(dir, sizeof dir);
    write_keys(dir, keys, sizeof keys, 1);
    srv s;
    const char *args[] = {"--api-keys-file", keys, NULL};
    cr_assert_eq(srv_start(&s, args), 0);

    const char *paths[] = {"/v1/datasets", "/v1/jobs", "/v1/jobs/job_0123456789abcdef01234567"};
    for (size_t i = 0; i < 3; i++) {
        resp r = call(&s, "GET", paths[i], NULL, NULL, NULL);
        is_401(&r, NULL);
        resp_free(&r);
        r = call(&s, "GET", paths[i], "not-a-key-but-long-enough", NULL, NULL);
        is_401(&r, "error=\"invalid_token\"");
        resp_free(&r);
    }
    /* POST routes too, before looking at the body */
    resp r = call(&s, "POST", "/v1/cost", NULL, NULL, "{}");
    is_401(&r, NULL);
    resp_free(&r);
    r = call(&s, "POST", "/v1/datasets", KEY_A "x", NULL, "{}");
    is_401(&r, "invalid_token");
    resp_free(&r);

    static const char *const malformed[] = {
        "Authorization: Bearer", "Authorization: Bearer ", "Authorization: Basic YWxpY2U6eA==",
        "Authorization: " KEY_A, "Authorization: Bearer" KEY_A,
        "Authorization: Bearer " KEY_A " " KEY_B, "Authorization: Token " KEY_A,
    };
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
        const char *h[] = {malformed[i], NULL};
        resp m = call_h(&s, "GET", "/v1/datasets", h);
        is_401(&m, NULL);
        resp_free(&m);
    }
    /* the scheme is case-insensitive (RFC 7235); the hashed key works */
    const char *const lower[] = {"Authorization: bearer " KEY_A, NULL};
    r = call_h(&s, "GET", "/v1/datasets", lower);
    not_stub(&r, "GET /v1/datasets");
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    resp_free(&r);
    r = call(&s, "GET", "/v1/datasets", KEY_C, NULL, NULL);
    cr_assert_eq(r.status, 200, "hashed key: %ld %s", r.status, r.body);
    resp_free(&r);
    r = call(&s, "GET", "/v1/datasets", "sha256:0000", NULL, NULL);
    is_401(&r, "invalid_token");
    resp_free(&r);

    /* open routes */
    const char *open[] = {"/healthz", "/readyz", "/openapi.yaml", "/metrics"};
    for (size_t i = 0; i < 4; i++) {
        r = call(&s, "GET", open[i], NULL, NULL, NULL);
        cr_assert_eq(r.status, 200, "%s: %ld", open[i], r.status);
        resp_free(&r);
    }
    /* keys never reach the log */
    char *log = srv_log(&s);
    cr_assert_not_null(log);
    cr_assert_null(strstr(log, KEY_A), "key in the log");
    cr_assert_null(strstr(log, KEY_B), "key in the log");
    cr_assert_null(strstr(log, "not-a-key-but-long-enough"), "presented token in the log");
    free(log);
    srv_stop(&s);
    srv_cleanup(&s);
    rm_tmpdir(dir);
}

Test(keys, revoked_key_and_metrics_auth, .timeout = 60)
{
    char dir[64], keys[128];
    make_tmpdir(dir, sizeof dir);
    write_keys(dir, keys, sizeof keys, 1);
    srv s;
    const char *args[] = {"--api-keys-file", keys, "--metrics-auth", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    resp r = call(&s, "GET", "/v1/jobs", KEY_A, NULL, NULL);
    not_stub(&r, "GET /v1/jobs");
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    r = call(&s, "GET", "/metrics", NULL, NULL, NULL);
    is_401(&r, NULL);
    resp_free(&r);
    r = call(&s, "GET", "/metrics", KEY_B, NULL, NULL);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    srv_stop(&s);

    write_keys(dir, keys, sizeof keys, 0); /* alice revoked */
    cr_assert_eq(srv_restart(&s, args), 0);
    r = call(&s, "GET", "/v1/jobs", KEY_A, NULL, NULL);
    is_401(&r, "invalid_token");
    resp_free(&r);
    r = call(&s, "GET", "/v1/jobs", KEY_B, NULL, NULL);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
    rm_tmpdir(dir);
}

/* The server refuses to start on a bad keys file, naming the line, without the key. */
Test(keys, malformed_keys_file_refused, .timeout = 30)
{
    char dir[64], keys[128], cmd[1024], out[2048] = "";
    make_tmpdir(dir, sizeof dir);
    snprintf(keys, sizeof keys, "%s/keys", dir);
    write_file(keys, "# keys\nalice:" KEY_A "\nbob " KEY_B "\n");
    snprintf(cmd, sizeof cmd,
             "timeout 10 %s --port 0 --data %s --api-keys-file %s 2>&1; echo rc=$?", srv_bin(),
             dir, keys);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    pclose(p);
    cr_assert(strstr(out, "api-keys-file line 3: expected name:key"), "%s", out);
    cr_assert_null(strstr(out, "rc=0\n"), "%s", out);
    cr_assert_null(strstr(out, "rc=124"), "server did not exit: %s", out);
    cr_assert_null(strstr(out, KEY_B), "key printed: %s", out);
    rm_tmpdir(dir);
}

/* ---------------------------------------------------------------- tenants */

typedef struct {
    const char *method, *path, *body; /* "%s" in path/body = the id under test */
    int job;                          /* 1: the id is a job id, 0: a dataset id */
} endpoint;

Test(tenants, other_keys_ids_are_404_like_missing_ids, .timeout = 120)
{
    char dir[64], keys[128];
    make_tmpdir(dir, sizeof dir);
    write_keys(dir, keys, sizeof keys, 1);
    srv s;
    const char *args[] = {"--api-keys-file", keys, "--cors-origins", ORIGIN, NULL};
    cr_assert_eq(srv_start(&s, args), 0);

    char ds[64], ds2[64], job[64], status[32];
    make_dataset(&s, KEY_A, 30, ds, sizeof ds);
    make_dataset(&s, KEY_A, 30, ds2, sizeof ds2);
    cr_assert_str_neq(ds, ds2);
    make_job(&s, KEY_A, ds, 5, job, sizeof job);
    wait_final(&s, KEY_A, job, status, sizeof status);
    cr_assert_str_eq(status, "succeeded");

    /* ids of the same shape and length that exist for nobody */
    char mds[64], mjob[64];
    snprintf(mds, sizeof mds, "%.*s", (int)strlen(ds), "ds_0123456789abcdef0123456789abcdef");
    snprintf(mjob, sizeof mjob, "%.*s", (int)strlen(job), "job_0123456789abcdef0123456789abcdef");

    static const char theta[] =
        "[[[0.1,0.2,0.3,0.4,0.5],[0.1,-0.2,0.3,-0.4,0.5],[0.0,0.1,0.0,0.1,0.0]],"
        "[[0.1,0.2,0.3,0.4],[-0.1,0.2,-0.3,0.4]]]";
    char math_body[1024], check_body[512], job_body[512];
    snprintf(math_body, sizeof math_body,
             "{\"network\": {\"layers\": [4, 3, 2]}, \"theta\": %s, \"lambda\": 1.0, "
             "\"dataset\": \"%%s\"}", theta);
    snprintf(check_body, sizeof check_body,
             "{\"network\": {\"layers\": [4, 3, 2]}, \"lambda\": 1.0, \"seed\": 3, "
             "\"dataset\": \"%%s\"}");
    snprintf(job_body, sizeof job_body,
             "{\"network\": {\"layers\": [4, 3, 2]}, \"dataset\": \"%%s\", "
             "\"training\": {\"epochs\": 5}}");
    const endpoint eps[] = {
        {"GET", "/v1/datasets/%s", NULL, 0},
        {"DELETE", "/v1/datasets/%s", NULL, 0},
        {"POST", "/v1/cost", math_body, 0},
        {"POST", "/v1/gradient", math_body, 0},
        {"POST", "/v1/gradient/check", check_body, 0},
        {"POST", "/v1/jobs", job_body, 0},
        {"GET", "/v1/jobs/%s", NULL, 1},
        {"GET", "/v1/jobs/%s/cost", NULL, 1},
        {"GET", "/v1/jobs/%s/weights", NULL, 1},
        {"GET", "/v1/jobs/%s/gradient", NULL, 1},
        {"GET", "/v1/jobs/%s/events", NULL, 1},
        {"POST", "/v1/jobs/%s/predict", "{\"X\": [[1, 2, 3, 4]]}", 1},
        {"POST", "/v1/jobs/%s/cancel", NULL, 1},
        {"DELETE", "/v1/jobs/%s", NULL, 1},
    };
    for (size_t i = 0; i < sizeof eps / sizeof *eps; i++) {
        const endpoint *e = &eps[i];
        const char *id = e->job ? job : ds, *miss = e->job ? mjob : mds;
        char path_a[256], path_m[256], body_a[1024], body_m[1024];
        subst(path_a, sizeof path_a, e->path, id);
        subst(path_m, sizeof path_m, e->path, miss);
        if (e->body) {
            subst(body_a, sizeof body_a, e->body, id);
            subst(body_m, sizeof body_m, e->body, miss);
        }
        char what[300];
        snprintf(what, sizeof what, "%s %s", e->method, path_a);
        /* B with A's id, B with a missing id */
        resp rb = call(&s, e->method, path_a, KEY_B, NULL, e->body ? body_a : NULL);
        resp rm = call(&s, e->method, path_m, KEY_B, NULL, e->body ? body_m : NULL);
        not_stub(&rb, what);
        cr_assert_eq(rb.status, 404, "%s as bob: %ld %s", what, rb.status, rb.body);
        cr_assert_eq(rm.status, 404, "%s missing: %ld %s", what, rm.status, rm.body);
        replace_all(rb.body, id, miss);
        cr_assert_str_eq(rb.body, rm.body, "%s: bob's answer differs from a missing id's", what);
        cr_assert_null(strstr(rb.body, "alice"), "%s leaks the owner", what);
        cr_assert_null(strstr(rb.body, "alices-secret-data"), "%s leaks the name", what);
        resp_free(&rb);
        resp_free(&rm);
    }
    /* A's objects are untouched by B's DELETE and cancel, and A sees all of them */
    char job2[64] = ""; /* the job alice's POST /v1/jobs makes here: final before ds goes */
    for (size_t i = 0; i < sizeof eps / sizeof *eps; i++) {
        const endpoint *e = &eps[i];
        if (strcmp(e->method, "DELETE") == 0)
            continue;
        const char *id = e->job ? job : ds;
        char path_a[256], body_a[1024];
        subst(path_a, sizeof path_a, e->path, id);
        if (e->body)
            subst(body_a, sizeof body_a, e->body, id);
        resp ra = call(&s, e->method, path_a, KEY_A, NULL, e->body ? body_a : NULL);
        cr_assert(ra.status >= 200 && ra.status < 300, "%s %s as alice: %ld %s", e->method,
                  path_a, ra.status, ra.body);
        if (strcmp(e->method, "POST") == 0 && strcmp(e->path, "/v1/jobs") == 0) {
            json_t *j = resp_json(&ra);
            const char *id2 = j ? json_string_value(json_object_get(j, "id")) : NULL;
            cr_assert(id2, "POST /v1/jobs as alice: no id in %s", ra.body);
            snprintf(job2, sizeof job2, "%s", id2);
            json_decref(j);
        }
        resp_free(&ra);
    }
    cr_assert(job2[0], "alice's POST /v1/jobs was not exercised");
    wait_final(&s, KEY_A, job2, status, sizeof status);
    wait_final(&s, KEY_A, job, status, sizeof status);
    cr_assert(strcmp(status, "succeeded") == 0, "bob's cancel reached alice's job: %s", status);

    /* lists: one's own only */
    resp r = call(&s, "GET", "/v1/datasets", KEY_B, NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_null(strstr(r.body, ds), "bob's list shows alice's dataset: %s", r.body);
    cr_assert_null(strstr(r.body, ds2));
    resp_free(&r);
    r = call(&s, "GET", "/v1/datasets", KEY_A, NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.body, ds) && strstr(r.body, ds2), "alice's list: %s", r.body);
    resp_free(&r);
    r = call(&s, "GET", "/v1/jobs", KEY_B, NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_null(strstr(r.body, job), "bob's list shows alice's job: %s", r.body);
    resp_free(&r);
    r = call(&s, "GET", "/v1/jobs", KEY_A, NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.body, job), "alice's list: %s", r.body);
    resp_free(&r);

    /* SSE works cross-origin: the finished job's stream carries the CORS headers */
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/events", job);
    r = call(&s, "GET", path, KEY_A, ORIGIN, NULL);
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    header_has(&r, "Content-Type", "text/event-stream");
    header_is(&r, "Access-Control-Allow-Origin", ORIGIN);
    header_has(&r, "Vary", "Origin");
    cr_assert(strstr(r.body, "succeeded"), "%s", r.body);
    resp_free(&r);

    /* A's deletes work after all */
    snprintf(path, sizeof path, "/v1/jobs/%s", job);
    r = call(&s, "DELETE", path, KEY_A, NULL, NULL);
    cr_assert_eq(r.status, 204, "%ld %s", r.status, r.body);
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/datasets/%s", ds);
    r = call(&s, "DELETE", path, KEY_A, NULL, NULL);
    cr_assert_eq(r.status, 204, "%ld %s", r.status, r.body);
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
    rm_tmpdir(dir);
}

/* Ids are random: 20 datasets give 20 distinct ids whose hex parts share no long prefix. */
Test(tenants, ids_are_random, .timeout = 60)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    char ids[20][64];
    for (int i = 0; i < 20; i++) {
        make_dataset(&s, NULL, 3, ids[i], sizeof ids[i]);
        for (int j = 0; j < i; j++) {
            cr_assert_str_neq(ids[i], ids[j]);
            cr_assert_neq(strncmp(ids[i], ids[j], 3 + 6), 0, "%s and %s look sequential",
                          ids[i], ids[j]);
        }
    }
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- CORS */

static const char *const crafted[20] = {
    "https://app.example.com.evil.net", "https://evil-app.example.com",
    "https://evilapp.example.com",      "https://app.example.co",
    "http://app.example.com",           "https://app.example.com:8443",
    "https://app.example.com/",         "null",
    "https://APP.EXAMPLE.COM.EVIL.NET", "HTTP://APP.EXAMPLE.COM",
    "https://user@app.example.com",     "https://app.example.com/path",
    "https://app.example.com.",         "https://sub.app.example.com",
    "http://localhost",                 "http://localhost:51730",
    "https://localhost:5173",           "http://127.0.0.1:5173",
    "*",                                "https://app.example.com\tx",
};

Test(cors, preflight_actual_and_crafted_origins, .timeout = 60)
{
    char dir[64], keys[128];
    make_tmpdir(dir, sizeof dir);
    write_keys(dir, keys, sizeof keys, 1);
    srv s;
    const char *args[] = {"--api-keys-file", keys, "--cors-origins", ORIGIN "," ORIGIN2, NULL};
    cr_assert_eq(srv_start(&s, args), 0);

    /* preflight: no key needed */
    const char *pre[] = {"Origin: " ORIGIN, "Access-Control-Request-Method: POST",
                         "Access-Control-Request-Headers: authorization, content-type", NULL};
    resp r = call_h(&s, "OPTIONS", "/v1/jobs", pre);
    cr_assert_eq(r.status, 204, "%ld %s", r.status, r.body);
    header_is(&r, "Access-Control-Allow-Origin", ORIGIN);
    header_has(&r, "Vary", "Origin");
    header_has(&r, "Access-Control-Allow-Methods", "GET");
    header_has(&r, "Access-Control-Allow-Methods", "POST");
    header_has(&r, "Access-Control-Allow-Headers", "Authorization");
    header_has(&r, "Access-Control-Allow-Headers", "Content-Type");
    header_has(&r, "Access-Control-Allow-Headers", "Last-Event-ID");
    header_is(&r, "Access-Control-Max-Age", "600");
    cr_assert_not(has_header(&r, "Access-Control-Allow-Credentials"));
    resp_free(&r);
    const char *pre2[] = {"Origin: " ORIGIN2, "Access-Control-Request-Method: DELETE", NULL};
    r = call_h(&s, "OPTIONS", "/v1/datasets/ds_0123456789abcdef01234567", pre2);
    cr_assert_eq(r.status, 204);
    header_is(&r, "Access-Control-Allow-Origin", ORIGIN2);
    header_has(&r, "Access-Control-Allow-Methods", "DELETE");
    resp_free(&r);

    /* actual requests, authorised or not, carry the headers for the allowed origin */
    r = call(&s, "GET", "/v1/datasets", KEY_A, ORIGIN, NULL);
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    header_is(&r, "Access-Control-Allow-Origin", ORIGIN);
    header_has(&r, "Vary", "Origin");
    header_has(&r, "Access-Control-Expose-Headers", "Location");
    header_has(&r, "Access-Control-Expose-Headers", "Retry-After");
    header_has(&r, "Access-Control-Expose-Headers", "Link"); /* /cost's next page */
    resp_free(&r);
    r = call(&s, "GET", "/v1/datasets", NULL, ORIGIN2, NULL);
    is_401(&r, NULL);
    header_is(&r, "Access-Control-Allow-Origin", ORIGIN2);
    resp_free(&r);
    r = call(&s, "GET", "/healthz", NULL, ORIGIN, NULL);
    header_is(&r, "Access-Control-Allow-Origin", ORIGIN);
    resp_free(&r);
    /* scheme and host compare case-insensitively; the answer is the configured spelling */
    r = call(&s, "GET", "/healthz", NULL, "HTTPS://App.Example.com", NULL);
    header_is(&r, "Access-Control-Allow-Origin", ORIGIN);
    resp_free(&r);
    /* no Origin: no Allow-Origin, but Vary for caches */
    r = call(&s, "GET", "/healthz", NULL, NULL, NULL);
    cr_assert_not(has_header(&r, "Access-Control-Allow-Origin"));
    header_has(&r, "Vary", "Origin");
    resp_free(&r);

    for (int i = 0; i < 20; i++) {
        char oh[256];
        snprintf(oh, sizeof oh, "Origin: %s", crafted[i]);
        const char *h1[] = {oh, "Access-Control-Request-Method: GET", NULL};
        r = call_h(&s, "OPTIONS", "/v1/datasets", h1);
        cr_assert_eq(r.status, 204, "%s: %ld", crafted[i], r.status);
        cr_assert_not(has_header(&r, "Access-Control-Allow-Origin"), "preflight allows %s",
                      crafted[i]);
        cr_assert_not(has_header(&r, "Access-Control-Allow-Methods"));
        resp_free(&r);
        r = call(&s, "GET", "/v1/datasets", KEY_A, crafted[i], NULL);
        cr_assert_eq(r.status, 200);
        cr_assert_not(has_header(&r, "Access-Control-Allow-Origin"), "GET allows %s",
                      crafted[i]);
        resp_free(&r);
    }
    srv_stop(&s);
    srv_cleanup(&s);
    rm_tmpdir(dir);
}

Test(cors, none_configured_none_sent, .timeout = 30)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    resp r = call(&s, "GET", "/healthz", NULL, ORIGIN, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_not(has_header(&r, "Access-Control-Allow-Origin"));
    resp_free(&r);
    const char *pre[] = {"Origin: " ORIGIN, "Access-Control-Request-Method: POST", NULL};
    r = call_h(&s, "OPTIONS", "/v1/jobs", pre);
    cr_assert_eq(r.status, 204);
    cr_assert_not(has_header(&r, "Access-Control-Allow-Origin"));
    header_has(&r, "Allow", "POST");
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- quotas, rate limit */

Test(limits, job_quota, .timeout = 90)
{
    char dir[64], keys[128];
    make_tmpdir(dir, sizeof dir);
    write_keys(dir, keys, sizeof keys, 1);
    srv s;
    const char *args[] = {"--api-keys-file", keys, "--quota-jobs", "1", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char ds[64], dsb[64], job1[64], job2[64], jobb[64], status[32];
    make_dataset(&s, KEY_A, 200, ds, sizeof ds);
    make_dataset(&s, KEY_B, 20, dsb, sizeof dsb);
    make_job(&s, KEY_A, ds, 1000000, job1, sizeof job1); /* runs until cancelled */

    char body[256];
    snprintf(body, sizeof body,
             "{\"network\": {\"layers\": [4, 3, 2]}, \"dataset\": \"%s\", "
             "\"training\": {\"epochs\": 5}}", ds);
    resp r = call(&s, "POST", "/v1/jobs", KEY_A, NULL, body);
    is_429(&r);
    resp_free(&r);
    /* another key has its own quota */
    make_job(&s, KEY_B, dsb, 5, jobb, sizeof jobb);
    /* cancel the running job: then the retry succeeds */
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", job1);
    r = call(&s, "POST", path, KEY_A, NULL, NULL);
    cr_assert(r.status == 200 || r.status == 202, "%ld %s", r.status, r.body);
    resp_free(&r);
    wait_final(&s, KEY_A, job1, status, sizeof status);
    cr_assert_str_eq(status, "cancelled");
    make_job(&s, KEY_A, ds, 5, job2, sizeof job2);
    wait_final(&s, KEY_A, job2, status, sizeof status);
    wait_final(&s, KEY_B, jobb, status, sizeof status);
    srv_stop(&s);
    srv_cleanup(&s);
    rm_tmpdir(dir);
}

Test(limits, byte_quota, .timeout = 60)
{
    char dir[64], keys[128];
    make_tmpdir(dir, sizeof dir);
    write_keys(dir, keys, sizeof keys, 1);
    srv s;
    /* a 30 x 4 dataset stores 30*4*8 = 960 bytes of X (+ labels): one fits, two do not */
    const char *args[] = {"--api-keys-file", keys, "--quota-bytes", "1500", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char ds[64], other[64];
    make_dataset(&s, KEY_A, 30, ds, sizeof ds);
    char *body = dataset_json(30, 2);
    resp r = call(&s, "POST", "/v1/datasets", KEY_A, NULL, body);
    is_429(&r);
    cr_assert(strstr(r.body, "delete"), "the problem should say how to make room: %s", r.body);
    resp_free(&r);
    make_dataset(&s, KEY_B, 30, other, sizeof other); /* bob's quota is his own */
    char path[128];
    snprintf(path, sizeof path, "/v1/datasets/%s", ds);
    r = call(&s, "DELETE", path, KEY_A, NULL, NULL);
    cr_assert_eq(r.status, 204);
    resp_free(&r);
    r = call(&s, "POST", "/v1/datasets", KEY_A, NULL, body);
    cr_assert_eq(r.status, 201, "after deleting: %ld %s", r.status, r.body);
    resp_free(&r);
    free(body);
    srv_stop(&s);
    srv_cleanup(&s);
    rm_tmpdir(dir);
}

Test(limits, rate_limit, .timeout = 60)
{
    char dir[64], keys[128];
    make_tmpdir(dir, sizeof dir);
    write_keys(dir, keys, sizeof keys, 1);
    srv s;
    const char *args[] = {"--api-keys-file", keys, "--rate-limit", "5", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    /* burst 2N = 10: the 11th quick request (at most ~1 token refilled meanwhile) is refused */
    int ok = 0, limited = 0, wait = 0;
    for (int i = 0; i < 40 && !limited; i++) {
        resp r = call(&s, "GET", "/v1/datasets", KEY_A, NULL, NULL);
        if (r.status == 429) {
            wait = is_429(&r);
            limited = 1;
        } else {
            not_stub(&r, "GET /v1/datasets");
            cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
            ok++;
        }
        resp_free(&r);
    }
    cr_assert(limited, "40 quick requests never got 429");
    cr_assert_geq(ok, 10);
    cr_assert_leq(ok, 20, "%d requests passed a 5/s limit with burst 10", ok);
    cr_assert_leq(wait, 2);
    /* unauthenticated requests from the same address are limited too */
    resp r = call(&s, "GET", "/v1/datasets", NULL, NULL, NULL);
    cr_assert_eq(r.status, 429);
    resp_free(&r);
    sleep((unsigned)wait);
    r = call(&s, "GET", "/v1/datasets", KEY_A, NULL, NULL);
    cr_assert_eq(r.status, 200, "after Retry-After: %ld %s", r.status, r.body);
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
    rm_tmpdir(dir);
}

/* ---------------------------------------------------------------- binding */

Test(bind, beyond_loopback_needs_keys_or_insecure, .timeout = 60)
{
    char dir[64], cmd[1024], out[2048] = "";
    make_tmpdir(dir, sizeof dir);
    snprintf(cmd, sizeof cmd, "timeout 10 %s --bind 0.0.0.0 --port 0 --data %s 2>&1; echo rc=$?",
             srv_bin(), dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    pclose(p);
    cr_assert(strstr(out, "--insecure"), "no mention of --insecure: %s", out);
    cr_assert(strstr(out, "--api-keys-file"), "no mention of --api-keys-file: %s", out);
    cr_assert_null(strstr(out, "rc=0\n"), "exited 0: %s", out);
    cr_assert_null(strstr(out, "rc=124"), "kept running: %s", out);
    cr_assert_null(strstr(out, "listening"), "it listened: %s", out);

    /* --insecure: it starts (and answers on loopback) */
    srv s;
    const char *insecure[] = {"--bind", "0.0.0.0", "--insecure", NULL};
    cr_assert_eq(srv_start(&s, insecure), 0);
    resp r = call(&s, "GET", "/healthz", NULL, NULL, NULL);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);

    /* with keys: starts without --insecure */
    char keys[128];
    write_keys(dir, keys, sizeof keys, 1);
    const char *withkeys[] = {"--bind", "0.0.0.0", "--api-keys-file", keys, NULL};
    cr_assert_eq(srv_start(&s, withkeys), 0);
    r = call(&s, "GET", "/v1/jobs", NULL, NULL, NULL);
    is_401(&r, NULL);
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
    rm_tmpdir(dir);
}

/* ---------------------------------------------------------------- TLS */

/* GET url; returns the HTTP status, or -1 on a transport/TLS error. tls: 0 any (1.2+ by
 * curl's default), 12 exactly TLS 1.2, 13 exactly TLS 1.3. cainfo NULL = system CAs. */
static long https_get(const char *url, const char *cainfo, int tls)
{
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, test_curl_discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (cainfo)
        curl_easy_setopt(c, CURLOPT_CAINFO, cainfo);
    if (tls == 12)
        curl_easy_setopt(c, CURLOPT_SSLVERSION,
                         (long)(CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2));
    if (tls == 13)
        curl_easy_setopt(c, CURLOPT_SSLVERSION,
                         (long)(CURL_SSLVERSION_TLSv1_3 | CURL_SSLVERSION_MAX_TLSv1_3));
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

/* 1 if `openssl s_client` completes a handshake at exactly this protocol (-tls1, -tls1_1),
 * with the client's own limits lifted (no system openssl.cnf, security level 0) so that only
 * the server can refuse. (Checked against `openssl s_server -tls1_1`: this does connect.) */
static int old_tls_handshake(int port, const char *flag)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "echo | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect 127.0.0.1:%d "
             "%s -cipher 'ALL:@SECLEVEL=0' 2>/dev/null | grep -q 'Cipher is [A-Z]'", port, flag);
    return system(cmd) == 0;
}

Test(tls, https_with_self_signed_certificate, .timeout = 90)
{
    char dir[64], cert[128], key[128], cmd[1024];
    make_tmpdir(dir, sizeof dir);
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 "
             "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout %s -out %s "
             ">/dev/null 2>&1", key, cert);
    cr_assert_eq(system(cmd), 0, "openssl req failed");

    srv s;
    const char *args[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/healthz", s.port);
    /* verified against our certificate, at TLS 1.2 and TLS 1.3 */
    cr_assert_eq(https_get(url, cert, 0), 200);
    cr_assert_eq(https_get(url, cert, 12), 200, "TLS 1.2 refused");
    cr_assert_eq(https_get(url, cert, 13), 200, "TLS 1.3 refused");
    /* not trusted without it */
    cr_assert_eq(https_get(url, NULL, 0), -1, "self-signed certificate accepted blindly");
    /* plain HTTP to the TLS port gets no HTTP answer */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", s.port);
    cr_assert_eq(https_get(url, NULL, 0), -1, "plain HTTP answered on the TLS port");
    /* TLS 1.0 and 1.1 are refused by the server */
    cr_assert_not(old_tls_handshake(s.port, "-tls1_1"), "TLS 1.1 accepted");
    cr_assert_not(old_tls_handshake(s.port, "-tls1"), "TLS 1.0 accepted");
    cr_assert(old_tls_handshake(s.port, "-tls1_2"), "s_client cannot do TLS 1.2 (test broken)");
    srv_stop(&s);
    srv_cleanup(&s);

    /* a missing key file is a clear start-up error */
    snprintf(cmd, sizeof cmd,
             "timeout 10 %s --port 0 --data %s --tls-cert %s --tls-key %s/nope.pem "
             ">/dev/null 2>&1", srv_bin(), dir, cert, dir);
    cr_assert_neq(system(cmd), 0, "started without its TLS key");
    rm_tmpdir(dir);
}
