/* http_jobs_cache.c — GET /v1/jobs/{id} answered from the server's body cache
 * (server/handlers/handlers_job_cache.h) stays exactly what a store read gives, through every
 * change of the job: queued (polled twice, so the second answer comes from the cache) →
 * running (the epoch count keeps moving under fast polling) → succeeded → deleted (404);
 * another tenant's GET of the cached job answers like an unknown id before and after; the
 * repeated answers are byte-identical and carry no validator (the job is not an immutable
 * representation).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/harness.h"

#define KEY_A "alice-key-cache-0123456789abcdef"
#define KEY_B "bob-key-cache-fedcba9876543210xy"

static const char *const HA[] = {"Authorization: Bearer " KEY_A, NULL};
static const char *const HB[] = {"Authorization: Bearer " KEY_B, NULL};

/* GET /v1/jobs/{id} with headers: the response (caller frees). */
static resp get_job(const srv *s, const char *const *h, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    resp r;
    memset(&r, 0, sizeof r);
    cr_assert_eq(http_req(s, "GET", path, NULL, NULL, 0, h, &r), 0);
    return r;
}

/* The problem detail of a 404 for id, with id replaced by "ID" (so two ids compare). */
static char *detail_without_id(const srv *s, const char *const *h, const char *id)
{
    resp r = get_job(s, h, id);
    char *d = problem_detail(&r, 404);
    resp_free(&r);
    char *at = strstr(d, id);
    cr_assert_not_null(at, "detail \"%s\" does not name %s", d, id);
    char *out = malloc(strlen(d) + 4);
    snprintf(out, strlen(d) + 4, "%.*sID%s", (int)(at - d), d, at + strlen(id));
    free(d);
    return out;
}

/* Bob's GET of id answers exactly as his GET of an id nobody has. */
static void foreign_is_missing(const srv *s, const char *id)
{
    char *foreign = detail_without_id(s, HB, id);
    char *missing = detail_without_id(s, HB, "job_0123456789abcdef01234567");
    cr_assert_str_eq(foreign, missing);
    free(foreign);
    free(missing);
}

/* The progress.epoch Alice's GET of id answers. */
static int64_t epoch_of(const srv *s, const char *id)
{
    json_t *j = get_json_h(s, HA, "/v1/jobs/%s", id);
    int64_t e = json_integer_value(json_object_get(json_object_get(j, "progress"), "epoch"));
    json_decref(j);
    return e;
}

/* Two GETs in a row: the same status and the same bytes, no ETag; the status into want. */
static void get_twice(const srv *s, const char *id, const char *want)
{
    resp a = get_job(s, HA, id), b = get_job(s, HA, id);
    cr_assert_eq(a.status, 200, "%ld %s", a.status, a.body);
    cr_assert_eq(b.status, 200, "%ld %s", b.status, b.body);
    cr_assert_str_eq(a.body, b.body);
    char buf[256];
    cr_assert_neq(resp_header(&b, "ETag", buf, sizeof buf), 0, "a job has no ETag");
    json_t *j = resp_json(&b);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), want, "%s", b.body);
    json_decref(j);
    resp_free(&a);
    resp_free(&b);
}

/* Uploads the digits to s as the owner of h (NULL: no key) into ds, and starts a job of a
 * million epochs there that holds a worker until it is cancelled: its id into busy, once it
 * runs. */
static void start_busy(const srv *s, const char *const *h, char ds[64], char busy[64])
{
    size_t n;
    char *csv = test_digits_csv(1, &n);
    cr_assert_eq(post_for_id(s, "/v1/datasets?name=digits", "text/csv", csv, n, h, ds, 64),
                 201);
    free(csv);
    submit_training(s, h, ds, "[64,32,10]", "\"optimizer\":\"sgd\",\"learning_rate\":0.1,"
                                            "\"batch_size\":64,\"epochs\":1000000", busy, 64);
    json_decref(wait_job_h(s, h, busy, "running", 30));
}

Test(jobs_cache, fresh_through_every_change_and_per_tenant, .timeout = 120)
{
    srv s;
    const char *args[] = {"--workers", "1", NULL};
    cr_assert_eq(srv_start_keys(&s, "alice:" KEY_A "\nbob:" KEY_B "\n", args), 0);

    char ds[64], busy[64], q[64];
    start_busy(&s, HA, ds, busy); /* it holds the only worker: the next job stays queued */
    /* While it runs, every answer follows its epochs, which take milliseconds (tens or
     * hundreds of them under TSan); the store hears of them 4 times a second
     * (PROGRESS_SECONDS). Polled back to back until the answer has moved 30 times: a fresh
     * answer shows most epochs, one kept until the next store write at most 4 a second of
     * however many ran (a fixed count in a fixed time failed on a loaded TSan server, whose
     * epochs can be as slow as the store's writes; then the two look alike, and the plain
     * server's millisecond epochs are the check: a kept answer fails it). */
    int64_t e = epoch_of(&s, busy), e0 = e;
    int moves = 0;
    double t0 = test_now_s(), t = 0;
    for (; t < 30.0 && moves < 30; t = test_now_s() - t0) {
        int64_t now = epoch_of(&s, busy);
        cr_assert_geq(now, e, "epoch went back from %lld to %lld", (long long)e, (long long)now);
        moves += now != e;
        e = now;
    }
    cr_log_info("the answer moved %d times over %lld epochs in %.2f s of polling", moves,
                (long long)(e - e0), t);
    cr_assert_geq(moves, 30, "the epoch moved only %d times in %.1f s", moves, t);
    /* a kept answer moves at most 4 t + 1 times, so fewer than half of fast epochs: fresh
     * means either most epochs shown or more moves than store writes could make */
    cr_assert(moves >= 0.5 * (double)(e - e0) || moves > 4 * t + 5,
              "the answer showed %d of %lld epochs in %.1f s", moves, (long long)(e - e0), t);
    submit_training(&s, HA, ds, "[64,16,10]", "\"optimizer\":\"adam\",\"learning_rate\":0.01,"
                                      "\"batch_size\":64,\"epochs\":3", q, sizeof q);

    get_twice(&s, q, "queued");
    foreign_is_missing(&s, q);

    /* Cancelling the long job frees the worker: the queued job is claimed, runs, succeeds.
     * A cache that missed the claim or the finish would answer "queued" until the timeout. */
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", busy);
    resp r;
    cr_assert_eq(http_req(&s, "POST", path, NULL, NULL, 0, HA, &r), 0);
    cr_assert_eq(r.status, 200, "cancel: %ld %s", r.status, r.body);
    resp_free(&r);
    json_t *done = wait_job_h(&s, HA, q, "succeeded", 60);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(done, "progress"), "epoch")),
                 3);
    json_decref(done);
    get_twice(&s, q, "succeeded");
    get_twice(&s, busy, "cancelled");
    foreign_is_missing(&s, q);

    /* Bob cannot delete it (404), and that leaves Alice's answer as it was. */
    snprintf(path, sizeof path, "/v1/jobs/%s", q);
    cr_assert_eq(http_req(&s, "DELETE", path, NULL, NULL, 0, HB, &r), 0);
    cr_assert_eq(r.status, 404, "%ld %s", r.status, r.body);
    resp_free(&r);
    get_twice(&s, q, "succeeded");
    /* Alice deletes it: the cached answer must not outlive the job. */
    cr_assert_eq(http_req(&s, "DELETE", path, NULL, NULL, 0, HA, &r), 0);
    cr_assert_eq(r.status, 204, "%ld %s", r.status, r.body);
    resp_free(&r);
    r = get_job(&s, HA, q);
    cr_assert_eq(r.status, 404, "deleted job: %ld %s", r.status, r.body);
    resp_free(&r);

    srv_stop(&s);
    srv_cleanup(&s);
}

/* Two processes on one SQLite file (the store allows it: each job stays with the process
 * holding its lease): the first one's answers follow what the second one writes. The first
 * one's only worker is busy, so a job posted to it is claimed, run and finished by the
 * second; the first one, polled throughout, must see it succeed. A cache trusting only its
 * own process's writes answers "queued" or "running" forever. */
Test(jobs_cache, fresh_when_another_process_writes_the_file, .timeout = 120)
{
    srv a, b;
    const char *args[] = {"--workers", "1", NULL};
    cr_assert_eq(srv_start(&a, args), 0);
    char ds[64], busy[64], q[64];
    start_busy(&a, NULL, ds, busy);

    memcpy(&b, &a, sizeof b); /* the same data directory */
    b.own_dir = 0;
    snprintf(b.logpath, sizeof b.logpath, "%s/server-b.log", a.datadir);
    cr_assert_eq(srv_restart(&b, args), 0);

    submit_training(&a, NULL, ds, "[64,16,10]", "\"optimizer\":\"adam\",\"learning_rate\":0.01,"
                                      "\"batch_size\":64,\"epochs\":200", q, sizeof q);
    /* polled on a all along (each answer may come from its cache) */
    json_t *j = NULL;
    const char *st = "";
    for (double t0 = test_now_s(); test_now_s() - t0 < 60; test_sleep_ms(5)) {
        json_decref(j);
        j = get_json(&a, "/v1/jobs/%s", q);
        st = json_string_value(json_object_get(j, "status"));
        if (st && strcmp(st, "succeeded") == 0)
            break;
    }
    cr_assert_str_eq(st ? st : "", "succeeded", "a still answers %s for the job b ran",
                     st ? st : "(none)");
    json_t *jb = get_json(&b, "/v1/jobs/%s", q);
    cr_assert(json_equal(j, jb), "a and b answer differently");
    json_decref(j);
    json_decref(jb);
    srv_stop(&b);
    srv_stop(&a);
    srv_cleanup(&a);
}
