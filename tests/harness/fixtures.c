/* fixtures.c — what many tests share: test data files (the digits CSV), problem+json
 * expectations, uploading a dataset, building and submitting a job body, waiting for a job. */
#include "tests/harness.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void srv_stop(srv *s)
{
    char why[200] = "";
    cr_assert(srv_shutdown(s, why, sizeof why) == 0, "%s", why);
}

size_t test_curl_discard(char *data, size_t size, size_t n, void *userp)
{
    (void)data;
    (void)userp;
    return size * n;
}

char *test_read_file(const char *path, size_t *len)
{
    char *buf = test_slurp(path, len);
    cr_assert_not_null(buf, "cannot read %s", path);
    return buf;
}

char *test_digits_csv(int times, size_t *len)
{
    size_t n;
    char *one = test_read_file(test_data_path("digits.csv"), &n);
    if (times == 1) {
        *len = n;
        return one;
    }
    char *all = malloc(n * (size_t)times + 1);
    cr_assert_not_null(all);
    for (int i = 0; i < times; i++)
        memcpy(all + n * (size_t)i, one, n);
    all[n * (size_t)times] = '\0';
    free(one);
    *len = n * (size_t)times;
    return all;
}

void test_digits_load(api_dataset *d)
{
    size_t n;
    char *csv = test_digits_csv(1, &n);
    api_error e = {0};
    cr_assert_eq(api_dataset_parse_csv(d, csv, n, &e), 0, "%s", e.detail);
    free(csv);
}

char *problem_detail(const resp *r, long status)
{
    cr_assert_eq(r->status, status, "status %ld, want %ld: %s", r->status, status, r->body);
    char ct[128] = "";
    cr_assert_eq(resp_header(r, "Content-Type", ct, sizeof ct), 0, "no Content-Type");
    cr_assert(strncmp(ct, "application/problem+json", 24) == 0, "Content-Type %s", ct);
    json_t *j = resp_json(r);
    cr_assert_not_null(j, "problem body is not JSON: %s", r->body);
    cr_assert(json_is_string(json_object_get(j, "type")), "no type: %s", r->body);
    cr_assert(json_is_string(json_object_get(j, "title")), "no title: %s", r->body);
    cr_assert_eq(json_integer_value(json_object_get(j, "status")), status, "%s", r->body);
    const char *detail = json_string_value(json_object_get(j, "detail"));
    cr_assert_not_null(detail, "no detail: %s", r->body);
    char *copy = strdup(detail);
    json_decref(j);
    return copy;
}

void expect_problem(const resp *r, long status, const char *needle)
{
    char *detail = problem_detail(r, status);
    if (needle)
        cr_assert(strstr(detail, needle), "detail \"%s\" does not name \"%s\"", detail, needle);
    free(detail);
}

void expect_problem_eq(const resp *r, long status, const char *detail)
{
    char *got = problem_detail(r, status);
    cr_assert_str_eq(got, detail);
    free(got);
}

long post_for_id(const srv *s, const char *path, const char *content_type, const char *body,
                 size_t len, const char *const *headers, char *id, size_t idlen)
{
    resp r;
    if (http_req(s, "POST", path, content_type, body, len, headers, &r) != 0) {
        resp_free(&r); /* http_req fills the buffers even on a transport error */
        return 0;
    }
    long status = r.status;
    if (status == 201 || status == 202) {
        json_t *j = resp_json(&r);
        const char *v = json_string_value(json_object_get(j, "id"));
        snprintf(id, idlen, "%s", v ? v : "");
        json_decref(j);
    }
    resp_free(&r);
    return status;
}

void upload_digits(const srv *s, char *id, size_t len)
{
    size_t n;
    char *csv = test_digits_csv(1, &n);
    resp r;
    cr_assert_eq(http_req(s, "POST", "/v1/datasets?name=digits", "text/csv", csv, n, NULL, &r), 0);
    cr_assert_eq(r.status, 201, "upload: %ld %s", r.status, r.body);
    json_t *j = resp_json(&r);
    cr_assert_not_null(j);
    snprintf(id, len, "%s", json_string_value(json_object_get(j, "id")));
    cr_assert_eq(json_integer_value(json_object_get(j, "rows")), 1797);
    json_decref(j);
    resp_free(&r);
    free(csv);
}

char *job_body(const char *ds, const char *layers, const char *training)
{
    char *b = NULL;
    cr_assert(asprintf(&b, "{\"network\":{\"layers\":%s},\"dataset\":\"%s\",\"training\":{%s}}",
                       layers, ds, training) > 0);
    return b;
}

void submit_job(const srv *s, const char *const *headers, const char *body, char *id,
                size_t len)
{
    resp r;
    cr_assert_eq(http_req(s, "POST", "/v1/jobs", "application/json", body, strlen(body),
                          headers, &r), 0);
    cr_assert_eq(r.status, 202, "submit: %ld %s", r.status, r.body);
    json_t *j = resp_json(&r);
    cr_assert_not_null(j);
    snprintf(id, len, "%s", json_string_value(json_object_get(j, "id")));
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "queued");
    char loc[128], want[128];
    cr_assert_eq(resp_header(&r, "Location", loc, sizeof loc), 0);
    snprintf(want, sizeof want, "/v1/jobs/%s", id);
    cr_assert_str_eq(loc, want);
    cr_assert_eq(strncmp(id, "job_", 4), 0);
    cr_assert_eq(strlen(id), 28);
    for (const char *c = id + 4; *c; c++)
        cr_assert((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'), "%s: not hex", id);
    json_decref(j);
    resp_free(&r);
}

void submit_training(const srv *s, const char *const *headers, const char *ds,
                     const char *layers, const char *training, char *id, size_t len)
{
    char *body = job_body(ds, layers, training);
    submit_job(s, headers, body, id, len);
    free(body);
}

/* GET fmt… (formatted into path) with headers asserting 200; the answer (resp_free it). */
static void get_ok(const srv *s, const char *const *headers, resp *r, char *path, size_t plen,
                   const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));
static void get_ok(const srv *s, const char *const *headers, resp *r, char *path, size_t plen,
                   const char *fmt, va_list ap)
{
    vsnprintf(path, plen, fmt, ap);
    cr_assert_eq(http_req(s, "GET", path, NULL, NULL, 0, headers, r), 0, "GET %s: no answer",
                 path);
    cr_assert_eq(r->status, 200, "GET %s: %ld %s", path, r->status, r->body);
}

char *get_text_h(const srv *s, const char *const *headers, const char *fmt, ...)
{
    char path[256];
    resp r;
    va_list ap;
    va_start(ap, fmt);
    get_ok(s, headers, &r, path, sizeof path, fmt, ap);
    va_end(ap);
    char *t = strdup(r.body);
    cr_assert_not_null(t);
    resp_free(&r);
    return t;
}

json_t *get_json_h(const srv *s, const char *const *headers, const char *fmt, ...)
{
    char path[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    char *text = get_text_h(s, headers, "%s", path);
    json_t *j = json_loads(text, 0, NULL);
    cr_assert_not_null(j, "GET %s: not JSON", path);
    free(text);
    return j;
}

json_t *wait_job_h(const srv *s, const char *const *headers, const char *id, const char *want,
                   double timeout)
{
    double end = test_now_s() + timeout;
    for (;;) {
        json_t *j = get_json_h(s, headers, "/v1/jobs/%s", id);
        const char *st = json_string_value(json_object_get(j, "status"));
        cr_assert_not_null(st, "job %s has no status", id);
        if ((want && strcmp(st, want) == 0) ||
            (!want && (!strcmp(st, "succeeded") || !strcmp(st, "failed") ||
                       !strcmp(st, "cancelled"))))
            return j;
        cr_assert(test_now_s() < end, "job %s still %s after %.0f s", id, st, timeout);
        json_decref(j);
        test_sleep_ms(20);
    }
}

void wait_epoch(const srv *s, const char *id, int64_t epochs, double timeout)
{
    double end = test_now_s() + timeout;
    for (;;) {
        json_t *j = get_json(s, "/v1/jobs/%s", id);
        int64_t e = json_integer_value(json_object_get(json_object_get(j, "progress"), "epoch"));
        const char *st = json_string_value(json_object_get(j, "status"));
        cr_assert(!strcmp(st, "running") || !strcmp(st, "queued"), "job %s is %s", id, st);
        json_decref(j);
        if (e >= epochs)
            return;
        cr_assert(test_now_s() < end, "job %s: epoch %lld < %lld after %.0f s", id, (long long)e,
                  (long long)epochs, timeout);
        test_sleep_ms(20);
    }
}
