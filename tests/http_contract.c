/* http_contract.c — the JSON contract's edges through the real backpropd binary over HTTP:
 * unknown keys full of control characters, DEL and UTF-8 on every route that reads a network
 * spec (a 400 naming network and the escaped key, and a server that stays up), integer fields
 * at 2^63 and around 2^53, doubles that leave in their shortest text, the CSV header rule
 * (?header=auto|true|false) and a predict body whose X is not a list of rows.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "tests/harness.h"
#include "tests/key_shown.h"

static const char *const spec_routes[] = {"/v1/cost", "/v1/gradient", "/v1/gradient/check",
                                          "/v1/jobs"};

/* A body whose network holds the key `key` (JSON text of the key given by `json_key`). */
static char *spec_body(const char *route, const char *json_key)
{
    char *b = NULL;
    if (strcmp(route, "/v1/jobs") == 0)
        cr_assert(asprintf(&b, "{\"network\":{\"layers\":[1,1],\"%s\":[]},\"dataset\":\"ds_x\"}",
                           json_key) > 0);
    else
        cr_assert(asprintf(&b, "{\"network\":{\"layers\":[1,1],\"%s\":[]},\"theta\":[[[0,0]]],"
                               "\"X\":[[1]],\"y\":[0]}", json_key) > 0);
    return b;
}

Test(contract, unknown_keys_with_control_characters, .timeout = 120)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    /* the reported body, byte for byte */
    char reported[64] = "{\"network\":{\"l";
    memset(reported + strlen(reported), 0x7f, 10);
    strcat(reported, "i\":[]}}");
    for (size_t i = 0; i < 4; i++) {
        resp r;
        cr_assert_eq(http_post_json(&s, spec_routes[i], reported, &r), 0);
        char *d = problem_detail(&r, 400);
        char key[16] = "l";
        memset(key + 1, 0x7f, 10);
        strcat(key, "i");
        expect_key_shown(d, "network", key);
        free(d);
        resp_free(&r);
    }
    /* 1..40 of DEL, escaped control characters, quotes, backslashes and UTF-8 letters, on
     * each of the four routes */
    for (size_t u = 0; u < KEY_UNITS; u++)
        for (int n = 1; n <= 40; n++)
            for (size_t i = 0; i < 4; i++) {
                char json_key[400], key[200];
                key_of_units(json_key, key, u, n);
                char *body = spec_body(spec_routes[i], json_key);
                resp r;
                cr_assert_eq(http_post_json(&s, spec_routes[i], body, &r), 0);
                char *d = problem_detail(&r, 400);
                expect_key_shown(d, "network", key);
                free(d);
                resp_free(&r);
                free(body);
            }
    /* raw control characters are invalid JSON: still a 400 that names network */
    for (int n = 1; n <= 40; n += 13) {
        char json_key[64] = "l";
        memset(json_key + 1, 0x01, (size_t)n);
        json_key[n + 1] = '\0';
        char *body = spec_body("/v1/cost", json_key);
        resp r;
        cr_assert_eq(http_post_json(&s, "/v1/cost", body, &r), 0);
        char *d = problem_detail(&r, 400);
        cr_assert(strncmp(d, "network", 7) == 0 && strstr(d, "invalid JSON"), "%s", d);
        free(d);
        resp_free(&r);
        free(body);
    }
    srv_stop(&s); /* asserts a clean exit and a log free of sanitizer reports */
    srv_cleanup(&s);
}

/* ------------------------------------------------------------------ a small trained job */

#define TINY_CSV "0,0.5,0.1\n1,0.25,0.2\n0,0.75,0.3\n1,1,0.4\n"

static void upload_tiny(const srv *s, char *ds, size_t len)
{
    long st = post_for_id(s, "/v1/datasets", "text/csv", TINY_CSV, strlen(TINY_CSV), NULL, ds,
                          len);
    cr_assert_eq(st, 201);
}

/* POST /v1/jobs with the training fields `training` (JSON text), expecting a 400 whose
 * detail is exactly want. */
static void job_refused(const srv *s, const char *ds, const char *layers, const char *training,
                        const char *want)
{
    char *body = job_body(ds, layers, training);
    resp r;
    cr_assert_eq(http_post_json(s, "/v1/jobs", body, &r), 0);
    expect_problem_eq(&r, 400, want);
    resp_free(&r);
    free(body);
}

/* Submits, waits for success, returns the job's raw JSON text (new). */
static char *job_done(const srv *s, const char *ds, const char *training, char *id, size_t len)
{
    char *body = job_body(ds, "[2,2]", training);
    submit_job(s, NULL, body, id, len);
    free(body);
    json_t *j = wait_job(s, id, NULL, 60);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "succeeded",
                     "job %s: %s", id, json_string_value(json_object_get(j, "error")));
    json_decref(j);
    return get_text(s, "/v1/jobs/%s", id);
}

/* Starts a server, uploads the tiny dataset and runs one job with `training` on it. */
static char *first_job(srv *s, const char *training, char *id, size_t len)
{
    char ds[64];
    cr_assert_eq(srv_start(s, NULL), 0);
    upload_tiny(s, ds, sizeof ds);
    return job_done(s, ds, training, id, len);
}

#define SEED_RANGE "training.seed: must be an integer in 0..9223372036854775807"

Test(contract, integer_fields_at_2_63_and_2_53, .timeout = 120)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    char ds[64], id[64];
    upload_tiny(&s, ds, sizeof ds);

    const char *refused[] = {"\"seed\":9223372036854775808", "\"seed\":9223372036854775808.0",
                             "\"seed\":18446744073709551616", "\"seed\":9007199254740993.0",
                             "\"seed\":1e300", "\"seed\":1.5", "\"seed\":-1", "\"seed\":\"1\"",
                             "\"seed\":null", "\"seed\":true", "\"seed\":-1e-300"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        job_refused(&s, ds, "[2,2]", refused[i], SEED_RANGE);
    job_refused(&s, ds, "[9223372036854775808,2]", "",
                "network.layers[0]: must be an integer in 1..65536");
    job_refused(&s, ds, "[2,9007199254740993.0,2]", "",
                "network.layers[1]: must be an integer in 1..65536");
    job_refused(&s, ds, "[2,1.5,2]", "", "network.layers[1]: must be an integer in 1..65536");
    job_refused(&s, ds, "[2,2]", "\"epochs\":1e300",
                "training.epochs: must be an integer in 1..1000000");

    /* the largest seed is stored and shown exactly, and the job's weights are readable */
    char *text = job_done(&s, ds, "\"seed\":9223372036854775807,\"epochs\":2", id, sizeof id);
    cr_assert(strstr(text, "\"seed\":9223372036854775807,"), "%s", text);
    free(text);
    free(get_text(&s, "/v1/jobs/%s/weights", id));
    free(get_text(&s, "/v1/jobs/%s/gradient", id));

    /* 2^53 + 1 written as an integer is exact; -0.0 is the integer 0 */
    text = job_done(&s, ds, "\"seed\":9007199254740993,\"epochs\":1", id, sizeof id);
    cr_assert(strstr(text, "\"seed\":9007199254740993,"), "%s", text);
    free(text);
    text = job_done(&s, ds, "\"seed\":-0.0,\"epochs\":1", id, sizeof id);
    cr_assert(strstr(text, "\"seed\":0,"), "%s", text);
    free(text);

    /* the gradient check's seed has the same range */
    resp r;
    cr_assert_eq(http_post_json(&s, "/v1/gradient/check",
                                "{\"network\":{\"layers\":[2,1]},\"X\":[[1,2]],\"y\":[1],"
                                "\"seed\":9223372036854775808}", &r), 0);
    expect_problem_eq(&r, 400, "seed: must be an integer in 0..9223372036854775807");
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ------------------------------------------------------------------ shortest doubles */

/* Every real number in the JSON text [p, e) is the shortest text that reads back to its
 * double: it parses, and with one significant digit fewer (%.{d-1}g) it would not. */
static void expect_shortest_numbers(const char *p, const char *e)
{
    int in_string = 0, count = 0;
    for (; p < e; p++) {
        if (in_string) {
            if (*p == '\\')
                p++;
            else if (*p == '"')
                in_string = 0;
            continue;
        }
        if (*p == '"') {
            in_string = 1;
            continue;
        }
        if (!(*p == '-' || (*p >= '0' && *p <= '9')))
            continue;
        char *end;
        double v = strtod(p, &end);
        size_t n = (size_t)(end - p);
        char tok[64];
        cr_assert(n > 0 && n < sizeof tok);
        memcpy(tok, p, n);
        tok[n] = '\0';
        p = end - 1;
        if (!strpbrk(tok, ".eE"))
            continue; /* an integer */
        int digits = 0, lead = 1;
        char last_sig = 0;
        int trailing = 0;
        for (const char *c = tok; *c && *c != 'e' && *c != 'E'; c++) {
            if (*c < '0' || *c > '9')
                continue;
            if (lead && *c == '0')
                continue;
            lead = 0;
            digits++;
            trailing = *c == '0' ? trailing + 1 : 0;
            last_sig = *c;
        }
        (void)last_sig;
        digits -= trailing; /* "100.0" has one significant digit */
        cr_assert(digits <= 17, "%s: more than 17 digits", tok);
        if (digits > 1) {
            char shorter[400];
            snprintf(shorter, sizeof shorter, "%.*g", digits - 1, v);
            double back = strtod(shorter, NULL);
            cr_assert(memcmp(&back, &v, sizeof v) != 0, "%s is not shortest: %s reads back",
                      tok, shorter);
        }
        count++;
    }
    cr_assert(count > 0, "no real numbers in the text");
}

Test(contract, doubles_leave_in_their_shortest_text, .timeout = 120)
{
    srv s;
    char id[64];
    char *text = first_job(&s, "\"lambda\":0.1,\"learning_rate\":0.3,\"epochs\":3,"
                               "\"optimizer\":\"adam\"", id, sizeof id);
    cr_assert(strstr(text, "\"lambda\":0.1,"), "%s", text);
    cr_assert(strstr(text, "\"learning_rate\":0.3,"), "%s", text);
    cr_assert_null(strstr(text, "0.10000000000000001"), "%s", text);
    expect_shortest_numbers(text, text + strlen(text));
    free(text);

    /* weights, cost history, an event stream and a math reply: every real is shortest */
    const char *reads[] = {"weights", "cost", "gradient"};
    for (size_t i = 0; i < 3; i++) {
        text = get_text(&s, "/v1/jobs/%s/%s", id, reads[i]);
        expect_shortest_numbers(text, text + strlen(text));
        free(text);
    }
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/events", id);
    sse_stream k;
    long st;
    sse_read(&s, path, NULL, 10000, &k, &st, NULL, 0);
    cr_assert_eq(st, 200);
    for (char *line = strstr(k.buf, "data: "); line; line = strstr(line + 1, "data: ")) {
        char *nl = strchr(line, '\n');
        if (strstr(line, "\"cost\"") && (!nl || strstr(line, "\"cost\"") < nl))
            expect_shortest_numbers(line + 6, nl ? nl : line + strlen(line));
    }
    free(k.buf);

    resp r;
    cr_assert_eq(http_post_json(&s, "/v1/gradient",
                                "{\"network\":{\"layers\":[2,1]},\"theta\":[[[0.1,0.2,0.3]]],"
                                "\"X\":[[1,2],[0.5,0.25]],\"y\":[1,0],\"lambda\":0.1}", &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    expect_shortest_numbers(r.body, r.body + r.len);
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ------------------------------------------------------------------ CSV header rule */

/* POST CSV to /v1/datasets + query; returns the status; the reply into r. */
static void post_csv(const srv *s, const char *query, const char *csv, resp *r)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/datasets%s", query);
    cr_assert_eq(http_req(s, "POST", path, "text/csv", csv, strlen(csv), NULL, r), 0);
}

static void csv_accepted(const srv *s, const char *query, const char *csv, int64_t rows,
                         int64_t outputs)
{
    resp r;
    post_csv(s, query, csv, &r);
    cr_assert_eq(r.status, 201, "%s %s: %ld %s", query, csv, r.status, r.body);
    json_t *j = resp_json(&r);
    cr_assert_eq(json_integer_value(json_object_get(j, "rows")), rows, "%s", r.body);
    cr_assert_eq(json_integer_value(json_object_get(j, "outputs")), outputs, "%s", r.body);
    json_decref(j);
    resp_free(&r);
}

static void csv_refused(const srv *s, const char *query, const char *csv, const char *want)
{
    resp r;
    post_csv(s, query, csv, &r);
    expect_problem_eq(&r, 400, want);
    resp_free(&r);
}

Test(contract, csv_header_rule, .timeout = 60)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    /* a typo in the first data row is not a header */
    csv_refused(&s, "", "1O,0.5,0.25\n0,0.5,0.25\n",
                "line 1, column 1: \"1O\" is not a number (a header row must have no numeric "
                "field; use ?header=true to force one)");
    csv_refused(&s, "?header=auto", "\n1,0.5,x\"y\n0,0.5,0.25\n",
                "line 2, column 3: \"x\\\"y\" is not a number (a header row must have no "
                "numeric field; use ?header=true to force one)");
    /* a later typo names its line and column */
    csv_refused(&s, "", "0,1,2\n1,2O,3\n", "line 2, column 2: expected a number, found \"2O\"");
    /* header=false: a text first row is data, and refused as such */
    csv_refused(&s, "?header=false", "label,a,b\n0,1,2\n",
                "line 1, column 1: expected a number, found \"label\"");
    /* header=true drops a numeric first row (label 5 is gone: outputs 2) */
    csv_accepted(&s, "?header=true", "5,5,5\n0,1,2\n1,3,4\n", 2, 2);
    /* auto: a real header as before, and all-numeric first rows are data */
    csv_accepted(&s, "", "label,a,b\n0,1,2\n1,3,4\n", 2, 2);
    csv_accepted(&s, "?header=auto", "5,5,5\n0,1,2\n1,3,4\n", 3, 6);
    csv_accepted(&s, "?header=false", "5,5,5\n0,1,2\n1,3,4\n", 3, 6);
    csv_refused(&s, "?header=yes", "0,1,2\n", "header: must be one of auto, true, false");
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ------------------------------------------------------------------ predict */

Test(contract, predict_rows_must_be_arrays, .timeout = 60)
{
    srv s;
    char id[64];
    free(first_job(&s, "\"epochs\":1", id, sizeof id));
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/predict", id);
    struct {
        const char *body, *want;
    } cases[] = {
        {"{\"X\":[1,2]}", "X[0]: a row must be an array of 2 numbers"},
        {"{\"X\":[[1,2],3]}", "X[1]: a row must be an array of 2 numbers"},
        {"{\"X\":[[1,2],[3]]}", "X[1]: a row must be an array of 2 numbers, found 1"},
        {"{\"X\":[[1,\"2\"]]}", "X[0][1]: expected a number"},
        {"{\"X\":[[1,2]],\"y\":[1]}", "body: unknown key \"y\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        resp r;
        cr_assert_eq(http_post_json(&s, path, cases[i].body, &r), 0);
        expect_problem_eq(&r, 400, cases[i].want);
        resp_free(&r);
    }
    resp r;
    cr_assert_eq(http_post_json(&s, path, "{\"X\":[[1,2],[0.5,0.25]]}", &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}
