/* http_web.c — what browsers, proxies and scripts expect of the HTTP layer, through the real
 * binary over HTTP: X-Request-Id on every answer (echoed or made, in the log line), strong
 * ETags with 304 on immutable representations and Cache-Control everywhere, gzip of JSON and
 * event streams (decompressed here and compared with the identity bytes), and the RateLimit-*
 * fields next to 429 + Retry-After.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "tests/harness.h"

/* ---------------------------------------------------------------- helpers */

/* new: the gzip body of r inflated (*len bytes, NUL-terminated); asserts it is valid gzip. */
static char *gunzip(const resp *r, size_t *len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    cr_assert_eq(inflateInit2(&z, 15 + 16), Z_OK);
    size_t cap = 64 * r->len + 1024;
    char *out = malloc(cap + 1);
    cr_assert_not_null(out);
    z.next_in = (Bytef *)r->body;
    z.avail_in = (uInt)r->len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int rc = inflate(&z, Z_FINISH);
    cr_assert_eq(rc, Z_STREAM_END, "not a whole gzip stream (%d)", rc);
    *len = z.total_out;
    out[*len] = '\0';
    inflateEnd(&z);
    return out;
}

static void header_is(const resp *r, const char *name, const char *want)
{
    char v[256];
    cr_assert_eq(resp_header(r, name, v, sizeof v), 0, "no %s header", name);
    cr_assert_str_eq(v, want, "%s: %s", name, v);
}

static void no_header(const resp *r, const char *name)
{
    char v[256];
    cr_assert_neq(resp_header(r, name, v, sizeof v), 0, "unexpected %s: %s", name, v);
}

/* GET path with one extra header line (NULL none). */
static void get_with(const srv *s, const char *path, const char *h1, const char *h2, resp *r)
{
    const char *hs[] = {h1, h2, NULL};
    cr_assert_eq(http_req(s, "GET", path, NULL, NULL, 0, h1 ? hs : NULL, r), 0);
}

/* A finished two-epoch digits job; its id into id, its dataset into ds. */
static void finished_job(const srv *s, char *ds, size_t dslen, char *id, size_t idlen)
{
    upload_digits(s, ds, dslen);
    char *body = job_body(ds, "[64,25,10]", "\"optimizer\":\"gd\",\"epochs\":3");
    submit_job(s, NULL, body, id, idlen);
    json_t *j = wait_job(s, id, "succeeded", 60);
    json_decref(j);
    free(body);
}

/* ---------------------------------------------------------------- X-Request-Id */

Test(request_id, echoed_when_sane_made_otherwise_and_logged, .timeout = 30)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    resp r;
    get_with(&s, "/healthz", "X-Request-Id: client-42.a:b/c+d=", NULL, &r);
    cr_assert_eq(r.status, 200);
    header_is(&r, "X-Request-Id", "client-42.a:b/c+d=");
    resp_free(&r);

    /* None, an unsafe one, a too long one: a new 32-hex id each time, never the client's. */
    char longid[200];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    char hlong[256];
    snprintf(hlong, sizeof hlong, "X-Request-Id: %s", longid);
    const char *sent[] = {NULL, "X-Request-Id: a\"b status=500", hlong};
    char seen[3][64];
    for (int i = 0; i < 3; i++) {
        get_with(&s, "/v1/jobs/job_nope", sent[i], NULL, &r);
        cr_assert_eq(r.status, 404, "errors carry it too");
        cr_assert_eq(resp_header(&r, "X-Request-Id", seen[i], sizeof seen[i]), 0);
        cr_assert_eq(strlen(seen[i]), 32, "%s", seen[i]);
        for (int k = 0; k < 32; k++)
            cr_assert(isxdigit((unsigned char)seen[i][k]));
        resp_free(&r);
    }
    cr_assert_str_neq(seen[0], seen[1]);
    cr_assert_str_neq(seen[1], seen[2]);

    /* A 413 answered on MHD's first call carries one too. */
    char *big = calloc(1, 2048);
    const char *hs[] = {"X-Request-Id: big-one", NULL};
    const char *args[] = {"--max-body", "1024", NULL};
    srv s2;
    cr_assert_eq(srv_start(&s2, args), 0);
    cr_assert_eq(http_req(&s2, "POST", "/v1/cost", "application/json", big, 2047, hs, &r), 0);
    cr_assert_eq(r.status, 413);
    header_is(&r, "X-Request-Id", "big-one");
    resp_free(&r);
    free(big);
    srv_stop(&s2);
    srv_cleanup(&s2);

    srv_stop(&s);
    char *log = srv_log(&s);
    cr_assert(strstr(log, "request_id=client-42.a:b/c+d= "), "the log line names it");
    char want[80];
    snprintf(want, sizeof want, "request_id=%s ", seen[1]);
    cr_assert(strstr(log, want));
    cr_assert_null(strstr(log, "a\"b"), "an unsafe id never reaches the log");
    free(log);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- caching */

Test(caching, immutable_results_have_strong_etags_and_304, .timeout = 90)
{
    srv s;
    const char *args[] = {"--workers", "1", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char ds[64], id[64], path[128], etag[128], inm[160];
    finished_job(&s, ds, sizeof ds, id, sizeof id);

    const char *what[] = {"/v1/jobs/", "/v1/jobs/", "/v1/datasets/"};
    const char *tail[] = {"/weights", "/cost", ""};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s%s%s", what[i], i == 2 ? ds : id, tail[i]);
        resp r;
        get_with(&s, path, NULL, NULL, &r);
        cr_assert_eq(r.status, 200, "%s", path);
        cr_assert_eq(resp_header(&r, "ETag", etag, sizeof etag), 0, "%s has an ETag", path);
        cr_assert(etag[0] == '"' && strlen(etag) == 34, "strong: %s", etag);
        header_is(&r, "Cache-Control", "private, max-age=31536000, immutable");
        char *first = strdup(r.body);
        resp_free(&r);

        /* The same tag again, and 304 with no body for it (also inside a list, or as W/). */
        snprintf(inm, sizeof inm, "If-None-Match: \"x\", W/%s", etag);
        get_with(&s, path, inm, NULL, &r);
        cr_assert_eq(r.status, 304, "%s", path);
        cr_assert_eq(r.len, 0);
        header_is(&r, "ETag", etag);
        resp_free(&r);
        /* Another tag: the whole answer, unchanged. */
        get_with(&s, path, "If-None-Match: \"0123\"", NULL, &r);
        cr_assert_eq(r.status, 200);
        cr_assert_str_eq(r.body, first);
        header_is(&r, "ETag", etag);
        resp_free(&r);
        free(first);
    }
    /* What can change is never stored by a cache and has no validator. */
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    const char *changing[] = {path, "/v1/jobs", "/v1/datasets", "/v1/jobs/job_nope"};
    for (int i = 0; i < 4; i++) {
        resp r;
        get_with(&s, changing[i], NULL, NULL, &r);
        header_is(&r, "Cache-Control", "no-store");
        no_header(&r, "ETag");
        resp_free(&r);
    }
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(caching, running_job_weights_are_not_cacheable, .timeout = 90)
{
    srv s;
    const char *args[] = {"--workers", "1", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char ds[64], id[64], path[128];
    upload_digits(&s, ds, sizeof ds);
    char *body = job_body(ds, "[64,25,10]", "\"optimizer\":\"gd\",\"epochs\":100000");
    submit_job(&s, NULL, body, id, sizeof id);
    snprintf(path, sizeof path, "/v1/jobs/%s/weights", id);
    resp r;
    for (int tries = 0; tries < 500; tries++) {
        get_with(&s, path, NULL, NULL, &r);
        if (r.status == 200)
            break;
        resp_free(&r);
        test_sleep_ms(20);
    }
    cr_assert_eq(r.status, 200);
    header_is(&r, "Cache-Control", "no-store");
    no_header(&r, "ETag");
    resp_free(&r);
    free(body);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- gzip */

Test(gzip, json_is_compressed_when_accepted_and_worth_it, .timeout = 90)
{
    srv s;
    const char *args[] = {"--workers", "1", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char ds[64], id[64], path[128], tag[128], tagz[128], inm[160];
    finished_job(&s, ds, sizeof ds, id, sizeof id);
    snprintf(path, sizeof path, "/v1/jobs/%s/weights", id);

    resp plain, z;
    get_with(&s, path, NULL, NULL, &plain);
    cr_assert_eq(plain.status, 200);
    no_header(&plain, "Content-Encoding");
    header_is(&plain, "Vary", "Accept-Encoding");
    cr_assert_eq(resp_header(&plain, "ETag", tag, sizeof tag), 0);

    get_with(&s, path, "Accept-Encoding: br;q=1.0, gzip;q=0.5", NULL, &z);
    cr_assert_eq(z.status, 200);
    header_is(&z, "Content-Encoding", "gzip");
    header_is(&z, "Vary", "Accept-Encoding");
    header_is(&z, "Content-Type", "application/json");
    cr_assert_lt(z.len * 2, plain.len, "gzip %zu vs %zu bytes", z.len, plain.len);
    size_t n;
    char *inflated = gunzip(&z, &n);
    cr_assert_eq(n, plain.len);
    cr_assert_eq(memcmp(inflated, plain.body, n), 0, "the same bytes once inflated");
    free(inflated);
    /* The gzip bytes are another representation: another strong tag; either one gives 304. */
    cr_assert_eq(resp_header(&z, "ETag", tagz, sizeof tagz), 0);
    cr_assert_str_neq(tag, tagz);
    snprintf(inm, sizeof inm, "If-None-Match: %s", tag);
    resp r;
    get_with(&s, path, inm, "Accept-Encoding: gzip", &r);
    cr_assert_eq(r.status, 304);
    header_is(&r, "ETag", tagz);
    resp_free(&r);
    resp_free(&z);

    /* Refused (q=0), not offered, or too small to be worth it: identity. */
    const char *refuse[] = {"Accept-Encoding: gzip;q=0, *;q=0", "Accept-Encoding: identity",
                            "Accept-Encoding: br"};
    for (int i = 0; i < 3; i++) {
        get_with(&s, path, refuse[i], NULL, &r);
        no_header(&r, "Content-Encoding");
        cr_assert_eq(r.len, plain.len);
        resp_free(&r);
    }
    get_with(&s, "/healthz", "Accept-Encoding: gzip", NULL, &r);
    cr_assert_eq(r.status, 200);
    no_header(&r, "Content-Encoding");
    resp_free(&r);
    /* CSV-sized problem bodies are small: never compressed; big job lists are. */
    get_with(&s, "/v1/jobs", "Accept-Encoding: *", NULL, &r);
    cr_assert_eq(r.status, 200);
    if (r.len >= 1024)
        header_is(&r, "Content-Encoding", "gzip");
    resp_free(&r);
    resp_free(&plain);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(gzip, event_stream_is_compressed_and_complete, .timeout = 90)
{
    srv s;
    const char *args[] = {"--workers", "1", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char ds[64], id[64], path[128];
    finished_job(&s, ds, sizeof ds, id, sizeof id);
    snprintf(path, sizeof path, "/v1/jobs/%s/events", id);
    resp plain, z;
    get_with(&s, path, NULL, NULL, &plain);
    cr_assert_eq(plain.status, 200);
    no_header(&plain, "Content-Encoding");
    get_with(&s, path, "Accept-Encoding: gzip", NULL, &z);
    cr_assert_eq(z.status, 200);
    header_is(&z, "Content-Encoding", "gzip");
    header_is(&z, "Vary", "Accept-Encoding");
    size_t n;
    char *events = gunzip(&z, &n);
    sse_event ev[16];
    size_t got = sse_parse(events, ev, 16);
    size_t want = sse_parse(plain.body, ev + 8, 8);
    cr_assert_eq(got, want, "%zu events compressed, %zu plain", got, want);
    cr_assert_geq(got, 4, "3 progress events and the final status");
    cr_assert_str_eq(ev[got - 1].event, "status");
    for (size_t i = 0; i < got; i++) {
        cr_assert_eq(ev[i].id, ev[8 + i].id);
        cr_assert_str_eq(ev[i].event, ev[8 + i].event);
        cr_assert(json_equal(ev[i].data, ev[8 + i].data));
        json_decref(ev[i].data);
        json_decref(ev[8 + i].data);
    }
    free(events);
    resp_free(&z);
    resp_free(&plain);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- RateLimit-* */

static long header_long(const resp *r, const char *name)
{
    char v[64];
    cr_assert_eq(resp_header(r, name, v, sizeof v), 0, "no %s; headers:\n%s", name, r->headers);
    return strtol(v, NULL, 10);
}

Test(ratelimit, fields_count_down_to_the_429, .timeout = 60)
{
    srv s;
    const char *args[] = {"--rate-limit", "5", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    long prev = 10, first = -1;
    int limited = 0;
    for (int i = 0; i < 60 && !limited; i++) {
        resp r;
        get_with(&s, "/healthz", NULL, NULL, &r);
        cr_assert_eq(header_long(&r, "RateLimit-Limit"), 10, "burst 2N");
        long left = header_long(&r, "RateLimit-Remaining");
        long reset = header_long(&r, "RateLimit-Reset");
        if (r.status == 429) {
            cr_assert_eq(left, 0);
            cr_assert_eq(reset, header_long(&r, "Retry-After"), "Reset is Retry-After on a 429");
            cr_assert_geq(reset, 1);
            limited = 1;
        } else {
            cr_assert_eq(r.status, 200);
            if (first < 0)
                first = left;
            /* each request takes a token; refills (5/s) can never lift it past burst - 1 */
            cr_assert_leq(left, 9, "remaining %ld after %ld", left, prev);
            cr_assert_geq(reset, 1, "a bucket that is not full resets in >= 1 s");
            cr_assert_leq(reset, 2, "10 tokens at 5/s refill in <= 2 s");
            prev = left;
        }
        resp_free(&r);
    }
    cr_assert(limited, "60 quick requests never got 429");
    cr_assert(first >= 7 && first <= 9, "the first answer leaves about 9: %ld", first);
    cr_assert_lt(prev, first, "remaining went down before the 429");
    srv_stop(&s);
    srv_cleanup(&s);

    /* Without --rate-limit there is no limit to report. */
    cr_assert_eq(srv_start(&s, NULL), 0);
    resp r;
    get_with(&s, "/healthz", NULL, NULL, &r);
    no_header(&r, "RateLimit-Limit");
    no_header(&r, "RateLimit-Remaining");
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- events tokens */

#define KEY_ALICE "alice-web-key-0123456789abcdef"
#define KEY_BOB "bob-web-key-fedcba9876543210"
#define AUTH_ALICE "Authorization: Bearer " KEY_ALICE
#define AUTH_BOB "Authorization: Bearer " KEY_BOB

/* Starts s with alice's and bob's keys. */
static void start_with_keys(srv *s)
{
    const char *args[] = {"--workers", "1", NULL};
    cr_assert_eq(srv_start_keys(s, "alice:" KEY_ALICE "\nbob:" KEY_BOB "\n", args), 0);
}

/* POST …/events/token as auth (NULL none): the status; on 200 the token into tok. */
static long get_token(const srv *s, const char *job, const char *auth, char *tok, size_t len,
                      time_t *expires)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/events/token", job);
    const char *hs[] = {auth, NULL};
    resp r;
    cr_assert_eq(http_req(s, "POST", path, NULL, NULL, 0, auth ? hs : NULL, &r), 0);
    long st = r.status;
    if (st == 200) {
        json_t *j = resp_json(&r);
        cr_assert_eq(json_object_size(j), 2, "exactly token and expires_at: %s", r.body);
        snprintf(tok, len, "%s", json_string_value(json_object_get(j, "token")));
        struct tm tm = {0};
        const char *at = json_string_value(json_object_get(j, "expires_at"));
        cr_assert_not_null(at);
        cr_assert_not_null(strptime(at, "%Y-%m-%dT%H:%M:%SZ", &tm), "expires_at %s", at);
        *expires = timegm(&tm);
        json_decref(j);
        header_is(&r, "Cache-Control", "no-store");
    }
    resp_free(&r);
    return st;
}

static long events_with(const srv *s, const char *job, const char *tok, const char *auth,
                        resp *r)
{
    char path[512];
    snprintf(path, sizeof path, "/v1/jobs/%s/events?access_token=%s", job, tok);
    const char *hs[] = {auth, NULL};
    cr_assert_eq(http_req(s, "GET", path, NULL, NULL, 0, auth ? hs : NULL, r), 0);
    return r->status;
}

Test(events_token, reads_only_that_jobs_stream_and_is_never_logged, .timeout = 120)
{
    srv s;
    start_with_keys(&s);
    const char *ha[] = {AUTH_ALICE, NULL};
    char ds[64], job_a[64], job_b[64], tok[300], tok_b[300];
    {
        size_t n;
        char *csv = test_read_file(test_data_path("digits.csv"), &n);
        cr_assert_eq(post_for_id(&s, "/v1/datasets?name=d", "text/csv", csv, n, ha, ds, sizeof ds),
                     201);
        free(csv);
    }
    char *body = job_body(ds, "[64,25,10]", "\"optimizer\":\"gd\",\"epochs\":3");
    submit_job(&s, ha, body, job_a, sizeof job_a);
    submit_job(&s, ha, body, job_b, sizeof job_b);
    json_decref(wait_job_h(&s, ha, job_a, "succeeded", 60));
    free(body);

    time_t expires, now = time(NULL);
    cr_assert_eq(get_token(&s, job_a, AUTH_ALICE, tok, sizeof tok, &expires), 200);
    cr_assert(expires >= now + 240 && expires <= now + 310, "expires in minutes: %lld s",
              (long long)(expires - now));
    /* The stream, with no key at all: retry: first, then every event to the final status. */
    resp r;
    cr_assert_eq(events_with(&s, job_a, tok, NULL, &r), 200, "%s", r.body);
    header_is(&r, "Content-Type", "text/event-stream");
    cr_assert(strncmp(r.body, "retry: 3000\n\n", 13) == 0, "%.40s", r.body);
    sse_event ev[8];
    size_t n = sse_parse(r.body, ev, 8);
    cr_assert_eq(n, 6, "queued, running, 3 epochs, succeeded");
    cr_assert_str_eq(json_string_value(json_object_get(ev[5].data, "status")), "succeeded");
    for (size_t i = 0; i < n; i++)
        json_decref(ev[i].data);
    resp_free(&r);

    /* Nothing else: another job's stream, the job itself, its weights, a forged token. */
    cr_assert_eq(events_with(&s, job_b, tok, NULL, &r), 401);
    expect_problem(&r, 401, "access_token");
    resp_free(&r);
    char path[512];
    snprintf(path, sizeof path, "/v1/jobs/%s?access_token=%s", job_a, tok);
    cr_assert_eq(http_req(&s, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    cr_assert_eq(r.status, 401);
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s/weights?access_token=%s", job_a, tok);
    cr_assert_eq(http_req(&s, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    cr_assert_eq(r.status, 401);
    resp_free(&r);
    char forged[300];
    snprintf(forged, sizeof forged, "%s", tok);
    size_t fl = strlen(forged);
    forged[fl - 1] = forged[fl - 1] == '0' ? '1' : '0';
    cr_assert_eq(events_with(&s, job_a, forged, NULL, &r), 401);
    resp_free(&r);
    /* bob can neither read alice's job with it (the token is alice's) nor mint one for it. */
    cr_assert_eq(get_token(&s, job_a, AUTH_BOB, tok_b, sizeof tok_b, &expires), 404);
    cr_assert_eq(get_token(&s, job_a, NULL, tok_b, sizeof tok_b, &expires), 401);
    cr_assert_eq(get_token(&s, "job_000000000000000000000000", AUTH_ALICE, tok_b, sizeof tok_b,
                           &expires), 404);
    /* A key, when sent, is what counts: bob's key with alice's token is bob's 404. */
    cr_assert_eq(events_with(&s, job_a, tok, AUTH_BOB, &r), 404);
    resp_free(&r);

    /* Same keys, another process: the token still works (the secret comes from the keys). */
    srv_stop(&s);
    const char *args2[] = {"--api-keys-file", NULL, NULL};
    char keys[300];
    snprintf(keys, sizeof keys, "%s/keys", s.datadir);
    args2[1] = keys;
    cr_assert_eq(srv_restart(&s, args2), 0);
    cr_assert_eq(events_with(&s, job_a, tok, NULL, &r), 200);
    resp_free(&r);
    srv_stop(&s);

    char *log = srv_log(&s);
    const char *mac = strrchr(tok, '.');
    cr_assert_null(strstr(log, tok), "the token is in the log");
    cr_assert_null(strstr(log, mac + 1), "the token's MAC is in the log");
    cr_assert(strstr(log, "reason=token"), "refused tokens are logged, without the token");
    free(log);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- Idempotency-Key */

/* POST path with key (NULL none) as auth: status; the created id into id. */
static long post_keyed(const srv *s, const char *path, const char *ctype, const char *body,
                       const char *auth, const char *key, char *id, size_t idlen, int *replayed)
{
    char kh[400];
    snprintf(kh, sizeof kh, "Idempotency-Key: %s", key ? key : "");
    const char *hs[] = {auth, key ? kh : NULL, NULL};
    resp r;
    cr_assert_eq(http_req(s, "POST", path, ctype, body, strlen(body), hs, &r), 0);
    json_t *j = resp_json(&r);
    snprintf(id, idlen, "%s", json_string_value(json_object_get(j, "id")) ?: "");
    char v[32];
    if (replayed)
        *replayed = resp_header(&r, "Idempotent-Replayed", v, sizeof v) == 0;
    json_decref(j);
    long st = r.status;
    if (st == 422)
        expect_problem(&r, 422, "Idempotency-Key");
    resp_free(&r);
    return st;
}

static size_t count_listed(const srv *s, const char *auth, const char *what)
{
    const char *hs[] = {auth, NULL};
    json_t *j = get_json_h(s, hs, "/v1/%s", what);
    size_t n = json_array_size(json_object_get(j, what));
    json_decref(j);
    return n;
}

Test(idempotency, retries_get_the_first_answer_per_tenant, .timeout = 120)
{
    srv s;
    start_with_keys(&s);
    size_t n;
    char *csv = test_read_file(test_data_path("digits.csv"), &n);
    char ds[64], ds2[64], ds3[64], job[64], job2[64];
    int replayed = 0;
    const char *path = "/v1/datasets?name=digits";
    cr_assert_eq(post_keyed(&s, path, "text/csv", csv, AUTH_ALICE, "up-1", ds, sizeof ds,
                            &replayed), 201);
    cr_assert(!replayed);
    cr_assert_eq(post_keyed(&s, path, "text/csv", csv, AUTH_ALICE, "up-1", ds2, sizeof ds2,
                            &replayed), 201, "a retry gets the first answer");
    cr_assert_str_eq(ds2, ds);
    cr_assert(replayed);
    /* Another name is another request: the key cannot be reused for it. */
    cr_assert_eq(post_keyed(&s, "/v1/datasets?name=other", "text/csv", csv, AUTH_ALICE, "up-1",
                            ds3, sizeof ds3, NULL), 422);
    /* bob's "up-1" is his own. */
    cr_assert_eq(post_keyed(&s, path, "text/csv", csv, AUTH_BOB, "up-1", ds3, sizeof ds3,
                            &replayed), 201);
    cr_assert(!replayed);
    cr_assert_str_neq(ds3, ds);
    cr_assert_eq(count_listed(&s, AUTH_ALICE, "datasets"), 1);
    free(csv);

    char *body = job_body(ds, "[64,8,10]", "\"optimizer\":\"gd\",\"epochs\":2");
    char *other = job_body(ds, "[64,9,10]", "\"optimizer\":\"gd\",\"epochs\":2");
    /* The same string as a dataset's key: keys are per kind, so this is a first use. */
    cr_assert_eq(post_keyed(&s, "/v1/jobs", "application/json", body, AUTH_ALICE, "up-1", job,
                            sizeof job, &replayed), 202);
    cr_assert(!replayed);
    json_decref(wait_job_h(&s, (const char *[]){AUTH_ALICE, NULL}, job, "succeeded", 60));
    cr_assert_eq(post_keyed(&s, "/v1/jobs", "application/json", body, AUTH_ALICE, "up-1", job2,
                            sizeof job2, &replayed), 202, "the first answer's status");
    cr_assert_str_eq(job2, job);
    cr_assert(replayed);
    cr_assert_eq(post_keyed(&s, "/v1/jobs", "application/json", other, AUTH_ALICE, "up-1",
                            job2, sizeof job2, NULL), 422);
    cr_assert_eq(count_listed(&s, AUTH_ALICE, "jobs"), 1);
    /* A key that is no key: 400 naming the header. */
    char longkey[300];
    memset(longkey, 'k', 256);
    longkey[256] = '\0';
    const char *hs[] = {AUTH_ALICE, NULL, NULL};
    char kh[400];
    snprintf(kh, sizeof kh, "Idempotency-Key: %s", longkey);
    hs[1] = kh;
    resp r;
    cr_assert_eq(http_req(&s, "POST", "/v1/jobs", "application/json", body, strlen(body), hs,
                          &r), 0);
    expect_problem(&r, 400, "Idempotency-Key");
    resp_free(&r);
    free(body);
    free(other);
    srv_stop(&s);
    srv_cleanup(&s);
}

typedef struct {
    const srv *s;
    const char *body;
    char id[64];
    long status;
} retry_arg;

static void *retry_main(void *p)
{
    retry_arg *a = p;
    char kh[] = "Idempotency-Key: same-key-for-all";
    const char *hs[] = {kh, NULL};
    resp r;
    a->status = 0;
    if (http_req(a->s, "POST", "/v1/jobs", "application/json", a->body, strlen(a->body), hs,
                 &r) == 0) {
        a->status = r.status;
        json_t *j = resp_json(&r);
        snprintf(a->id, sizeof a->id, "%s", json_string_value(json_object_get(j, "id")) ?: "");
        json_decref(j);
        resp_free(&r);
    }
    return NULL;
}

Test(idempotency, concurrent_retries_make_one_job_and_keys_expire, .timeout = 120)
{
    srv s;
    const char *args[] = {"--workers", "1", "--idempotency-ttl", "2", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char ds[64];
    upload_digits(&s, ds, sizeof ds);
    char *body = job_body(ds, "[64,8,10]", "\"optimizer\":\"gd\",\"epochs\":1");
    enum { N = 12 };
    retry_arg a[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        a[i] = (retry_arg){.s = &s, .body = body};
        cr_assert_eq(pthread_create(&t[i], NULL, retry_main, &a[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(a[i].status, 202, "retry %d: %ld", i, a[i].status);
        cr_assert_str_eq(a[i].id, a[0].id, "retry %d made another job", i);
    }
    cr_assert_eq(count_listed(&s, NULL, "jobs"), 1, "exactly one job for %d retries", N);
    /* After --idempotency-ttl the key is forgotten: the same request makes a new job. */
    test_sleep_ms(2500);
    retry_arg late = {.s = &s, .body = body};
    retry_main(&late);
    cr_assert_eq(late.status, 202);
    cr_assert_str_neq(late.id, a[0].id);
    cr_assert_eq(count_listed(&s, NULL, "jobs"), 2);
    free(body);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- names, tags, filters */

/* The ids of GET path's "jobs" (or "datasets") array, comma-joined into out. */
static void ids_of(const srv *s, const char *path, const char *what, char *out, size_t len)
{
    json_t *j = get_json(s, "%s", path);
    json_t *a = json_object_get(j, what);
    cr_assert(json_is_array(a), "%s", path);
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(a); i++) {
        size_t n = strlen(out);
        snprintf(out + n, len - n, "%s%s", i ? "," : "",
                 json_string_value(json_object_get(json_array_get(a, i), "id")));
    }
    json_decref(j);
}

static void expect_ids(const srv *s, const char *path, const char *what, const char *want)
{
    char got[1024];
    ids_of(s, path, what, got, sizeof got);
    cr_assert_str_eq(got, want, "%s", path);
}

Test(find, jobs_by_name_tag_dataset_status_and_time_datasets_by_name, .timeout = 120)
{
    srv s;
    const char *args[] = {"--workers", "1", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    size_t n;
    char *csv = test_read_file(test_data_path("digits.csv"), &n);
    char dsa[64], dsb[64], j1[64], j2[64], j3[64], path[512], want[512];
    cr_assert_eq(post_for_id(&s, "/v1/datasets?name=alpha", "text/csv", csv, n, NULL, dsa,
                             sizeof dsa), 201);
    cr_assert_eq(post_for_id(&s, "/v1/datasets?name=beta", "text/csv", csv, n, NULL, dsb,
                             sizeof dsb), 201);
    free(csv);
    const char *net = "{\"layers\":[64,8,10]}", *tr = "{\"optimizer\":\"gd\",\"epochs\":1}";
    const char *meta = "{\"owner\":\"me\",\"n\":[1,2.5,{\"deep\":null}]}";
    char body[1024];
    snprintf(body, sizeof body, "{\"network\":%s,\"dataset\":\"%s\",\"training\":%s,"
             "\"name\":\"exp-1\",\"tags\":[\"lr\",\"small\"],\"metadata\":%s}", net, dsa, tr, meta);
    submit_job(&s, NULL, body, j1, sizeof j1);
    test_sleep_ms(20);
    snprintf(body, sizeof body, "{\"network\":%s,\"dataset\":\"%s\",\"training\":%s,"
             "\"name\":\"exp-2\",\"tags\":[\"small\"]}", net, dsb, tr);
    submit_job(&s, NULL, body, j2, sizeof j2);
    test_sleep_ms(20);
    snprintf(body, sizeof body, "{\"network\":%s,\"dataset\":\"%s\",\"training\":%s}", net, dsa,
             tr);
    submit_job(&s, NULL, body, j3, sizeof j3);

    /* Shown as given; none: null, [], {}. */
    json_t *a = wait_job(&s, j1, "succeeded", 60), *c = wait_job(&s, j3, "succeeded", 60);
    json_decref(wait_job(&s, j2, "succeeded", 60));
    json_t *m = json_loads(meta, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(a, "name")), "exp-1");
    cr_assert(json_equal(json_object_get(a, "metadata"), m));
    cr_assert_eq(json_array_size(json_object_get(a, "tags")), 2);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(a, "tags"), 1)), "small");
    cr_assert(json_is_null(json_object_get(c, "name")));
    cr_assert_eq(json_array_size(json_object_get(c, "tags")), 0);
    cr_assert(json_is_object(json_object_get(c, "metadata")));
    cr_assert_eq(json_object_size(json_object_get(c, "metadata")), 0);
    const char *t1 = json_string_value(json_object_get(a, "created_at"));
    const char *t3 = json_string_value(json_object_get(c, "created_at"));

    expect_ids(&s, "/v1/jobs?name=exp-1", "jobs", j1);
    snprintf(want, sizeof want, "%s,%s", j2, j1);
    expect_ids(&s, "/v1/jobs?tag=small", "jobs", want);
    snprintf(path, sizeof path, "/v1/jobs?tag=small&dataset=%s", dsa);
    expect_ids(&s, path, "jobs", j1);
    snprintf(path, sizeof path, "/v1/jobs?dataset=%s", dsa);
    snprintf(want, sizeof want, "%s,%s", j3, j1);
    expect_ids(&s, path, "jobs", want);
    expect_ids(&s, "/v1/jobs?status=succeeded&name=exp-2", "jobs", j2);
    expect_ids(&s, "/v1/jobs?status=queued&name=exp-2", "jobs", "");
    expect_ids(&s, "/v1/jobs?tag=lr&name=exp-2", "jobs", "");
    snprintf(path, sizeof path, "/v1/jobs?created_after=%s", t1);
    snprintf(want, sizeof want, "%s,%s", j3, j2);
    expect_ids(&s, path, "jobs", want);
    snprintf(path, sizeof path, "/v1/jobs?created_before=%s&created_after=%s", t3, t1);
    expect_ids(&s, path, "jobs", j2);
    /* A filtered page ends where the next one starts. */
    json_t *p1 = get_json(&s, "/v1/jobs?tag=small&limit=1");
    const char *cur = json_string_value(json_object_get(p1, "next_cursor"));
    cr_assert_not_null(cur);
    snprintf(path, sizeof path, "/v1/jobs?tag=small&limit=1&cursor=%s", cur);
    expect_ids(&s, path, "jobs", j1);
    json_decref(p1);
    /* Datasets by name. */
    expect_ids(&s, "/v1/datasets?name=beta", "datasets", dsb);
    expect_ids(&s, "/v1/datasets?name=nope", "datasets", "");
    snprintf(path, sizeof path, "/v1/datasets?name=alpha&limit=1");
    expect_ids(&s, path, "datasets", dsa);

    /* Bounds, each a 400 naming the field. */
    char many[512] = "[";
    for (int i = 0; i < 33; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s\"t%d\"", i ? "," : "", i);
    strcat(many, "]");
    char bigmeta[6000];
    snprintf(bigmeta, sizeof bigmeta, "{\"x\":\"%0*d\"}", 4200, 0);
    const struct { const char *extra, *field; } bad[] = {
        {"\"name\":\"\"", "name"}, {"\"name\":7", "name"}, {"\"tags\":\"small\"", "tags"},
        {"\"tags\":[\"a,b\"]", "tags[0]"}, {"\"tags\":[\"ok\",\"\"]", "tags[1]"},
        {"\"metadata\":[1]", "metadata"}, {bigmeta, "metadata"}, {"\"tags\":MANY", "tags"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char extra[6100];
        if (strstr(bad[i].extra, "MANY"))
            snprintf(extra, sizeof extra, "\"tags\":%s", many);
        else if (bad[i].extra == bigmeta)
            snprintf(extra, sizeof extra, "\"metadata\":%s", bigmeta);
        else
            snprintf(extra, sizeof extra, "%s", bad[i].extra);
        char *b = malloc(7000);
        snprintf(b, 7000, "{\"network\":%s,\"dataset\":\"%s\",\"training\":%s,%s}", net, dsa,
                 tr, extra);
        resp r;
        cr_assert_eq(http_post_json(&s, "/v1/jobs", b, &r), 0);
        char needle[32];
        snprintf(needle, sizeof needle, "%s:", bad[i].field);
        expect_problem(&r, 400, needle);
        resp_free(&r);
        free(b);
    }
    resp r;
    cr_assert_eq(http_get(&s, "/v1/jobs?created_after=yesterday", &r), 0);
    expect_problem(&r, 400, "created_after");
    resp_free(&r);
    json_decref(m);
    json_decref(a);
    json_decref(c);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- GET /docs */

#define DOCS_CSP "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " \
                 "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

Test(docs, renders_the_openapi_document_in_a_real_browser_under_its_csp, .timeout = 180)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    resp r;
    get_with(&s, "/docs", NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    header_is(&r, "Content-Type", "text/html; charset=utf-8");
    header_is(&r, "Content-Security-Policy", DOCS_CSP);
    header_is(&r, "X-Content-Type-Options", "nosniff");
    cr_assert(strstr(r.body, "<script src=\"/docs/docs.js\""));
    /* No inline code: every <script> has a src, no on…= handlers, no style attributes. */
    for (const char *p = r.body; (p = strstr(p, "<script")); p++)
        cr_assert(strncmp(p, "<script src=", 12) == 0, "inline script: %.40s", p);
    for (const char *p = r.body; (p = strstr(p, " on")); p++) { /* no onload="…" */
        const char *q = p + 3;
        while (*q >= 'a' && *q <= 'z')
            q++;
        cr_assert(*q != '=', "an event-handler attribute: %.30s", p);
    }
    cr_assert_null(strstr(r.body, "style="));
    resp_free(&r);
    const char *assets[][2] = {{"/docs/docs.js", "text/javascript; charset=utf-8"},
                               {"/docs/docs.css", "text/css; charset=utf-8"}};
    for (int i = 0; i < 2; i++) {
        get_with(&s, assets[i][0], NULL, NULL, &r);
        cr_assert_eq(r.status, 200);
        header_is(&r, "Content-Type", assets[i][1]);
        header_is(&r, "Content-Security-Policy", DOCS_CSP);
        cr_assert_null(strstr(r.body, "http://"), "%s reaches out", assets[i][0]);
        cr_assert_null(strstr(r.body, "https://"), "%s reaches out", assets[i][0]);
        resp_free(&r);
    }
    get_with(&s, "/docs/docs.js/more", NULL, NULL, &r);
    cr_assert_eq(r.status, 404);
    resp_free(&r);
    get_with(&s, "/docs/secret", NULL, NULL, &r);
    expect_problem(&r, 404, "docs.js");
    resp_free(&r);

    /* As many operations as the document has, rendered by Chromium under that CSP. */
    get_with(&s, "/openapi.yaml", NULL, NULL, &r);
    int ops = 0;
    for (const char *p = r.body; (p = strstr(p, "operationId:")); p++)
        ops++;
    resp_free(&r);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "timeout 120 chromium --headless --no-sandbox --disable-gpu "
             "--virtual-time-budget=10000 --dump-dom %s/docs 2>/dev/null", s.base);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    test_buf dom = {0};
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, p)) > 0)
        test_curl_append(chunk, 1, got, &dom);
    int rc = pclose(p);
    cr_assert_eq(rc, 0, "chromium failed (%d): is it installed (scripts/install-deps)?", rc);
    cr_assert_not_null(dom.p);
    char want[64];
    snprintf(want, sizeof want, "data-rendered=\"%d\"", ops);
    cr_assert(strstr(dom.p, want), "want %s in the rendered page: %.300s", want, dom.p);
    const char *must[] = {"id=\"op-createJobEventsToken\"", "id=\"schema-Job\"", "Idempotency-Key",
                          "RateLimit-Remaining", "<h1>backpropd 0.1.0</h1>"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        cr_assert(strstr(dom.p, must[i]), "%s not rendered", must[i]);
    free(dom.p);
    srv_stop(&s);
    srv_cleanup(&s);
}
