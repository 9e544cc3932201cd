/* api_contract.c — unit tests of the contract's edges that users hit: unknown keys full of
 * control characters, DEL, quotes and UTF-8 (quoted safely, cut with "…"), integer fields at
 * 2^63 and around 2^53 (refused or exact, never wrapped), doubles printed in their shortest
 * text in replies and in the stored job spec, and the CSV header rule that cannot eat a row.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/jobs_codec.h"

/* ------------------------------------------------------------------ unknown keys */

/* What a message shows of one character of a key, written independently of api/: quote and
 * backslash escaped, control characters and DEL as \u00xx, UTF-8 as it is. */
static size_t show_char(char *out, const unsigned char *c, size_t *used)
{
    *used = 1;
    if (*c == '"' || *c == '\\')
        return (size_t)sprintf(out, "\\%c", *c);
    if (*c < 0x20 || *c == 0x7f)
        return (size_t)sprintf(out, "\\u%04x", *c);
    if (*c >= 0xC0)
        *used = *c >= 0xF0 ? 4 : *c >= 0xE0 ? 3 : 2;
    memcpy(out, c, *used);
    out[*used] = '\0';
    return *used;
}

/* detail must be '<field>: unknown key "<q>"' where q is the escaped key, whole, or cut at a
 * character boundary and followed by "…". */
static void expect_key_named(const char *detail, const char *field, const char *key)
{
    char head[64];
    snprintf(head, sizeof head, "%s: unknown key \"", field);
    cr_assert(strncmp(detail, head, strlen(head)) == 0, "%s", detail);
    const char *q = detail + strlen(head);
    size_t qlen = strlen(q), o = 0, used;
    cr_assert(qlen >= 1 && q[qlen - 1] == '"', "%s", detail);
    qlen--;
    char one[8];
    for (const unsigned char *c = (const unsigned char *)key; *c; c += used) {
        size_t n = show_char(one, c, &used);
        if (o + n > qlen || memcmp(q + o, one, n) != 0) {
            cr_assert(qlen - o == 3 && memcmp(q + o, "\xE2\x80\xA6", 3) == 0,
                      "key shown wrongly at byte %zu: %s", o, detail);
            return;
        }
        o += n;
    }
    cr_assert_eq(o, qlen, "%s", detail);
}

/* The detail api_spec_parse gives for a network with the extra key (JSON text json_key). */
static void spec_key_refused(const char *json_key, const char *key)
{
    char text[1024];
    snprintf(text, sizeof text, "{\"layers\": [2, 1], \"%s\": []}", json_key);
    api_error err = {0};
    json_t *j = api_parse(text, strlen(text), &err);
    cr_assert(j, "%s: %s", text, err.detail);
    bp_spec s;
    cr_assert_eq(api_spec_parse(&s, j, "network", &err), -1);
    json_decref(j);
    cr_assert_eq(err.status, 400u);
    expect_key_named(err.detail, "network", key);
}

Test(keys, control_characters_del_and_utf8_are_quoted_safely)
{
    /* the reported key: "l", ten DEL, "i" */
    char key[64] = "l";
    memset(key + 1, 0x7f, 10);
    strcat(key, "i");
    spec_key_refused(key, key);

    const char *units[][2] = {{"\x7f", "\x7f"},       {"\\u0001", "\x01"}, {"\\u001f", "\x1f"},
                              {"\xC3\xA9", "\xC3\xA9"}, {"\\\"", "\""},    {"\\\\", "\\"},
                              {"\xE2\x82\xAC", "\xE2\x82\xAC"}, {"\\n", "\n"}};
    for (size_t u = 0; u < sizeof units / sizeof *units; u++)
        for (int n = 1; n <= 40; n++) {
            char json_key[400] = "l", raw[200] = "l";
            for (int k = 0; k < n; k++) {
                strcat(json_key, units[u][0]);
                strcat(raw, units[u][1]);
            }
            strcat(json_key, "i");
            strcat(raw, "i");
            spec_key_refused(json_key, raw);
        }
}

/* The job request's other levels use the same checker. */
Test(keys, every_level_quotes_the_same_way)
{
    const char *text = "{\"network\": {\"layers\": [2, 1]}, \"dataset\": \"ds_a\", "
                       "\"training\": {\"\\u007f\\u007f\\\"x\": 1}}";
    api_error err = {0};
    json_t *j = api_parse(text, strlen(text), &err);
    cr_assert(j);
    api_job_request req;
    cr_assert_eq(api_job_request_parse(&req, j, &err), -1);
    json_decref(j);
    cr_assert_str_eq(err.detail, "training: unknown key \"\\u007f\\u007f\\\"x\"");

    text = "{\"X\": [[1]], \"y\": [0], \"\\u0001\\u0002\": 1}";
    api_dataset d = {0};
    cr_assert_eq(api_dataset_parse_json_text(&d, text, strlen(text), &err), -1);
    cr_assert_str_eq(err.detail, "body: unknown key \"\\u0001\\u0002\"");
}

/* ------------------------------------------------------------------ integers */

static const char *job_with(const char *layers, const char *training, api_job_request *req,
                            int *rc)
{
    static api_error err;
    char text[512];
    snprintf(text, sizeof text,
             "{\"network\": {\"layers\": %s}, \"dataset\": \"ds_a\", \"training\": {%s}}", layers,
             training);
    memset(&err, 0, sizeof err);
    json_t *j = api_parse(text, strlen(text), &err);
    cr_assert(j, "%s: %s", text, err.detail);
    *rc = api_job_request_parse(req, j, &err);
    json_decref(j);
    return err.detail;
}

static void seed_refused(const char *seed)
{
    char tr[128];
    snprintf(tr, sizeof tr, "\"seed\": %s", seed);
    api_job_request req;
    int rc;
    const char *d = job_with("[2, 1]", tr, &req, &rc);
    api_job_request_clear(&req);
    cr_assert_eq(rc, -1, "seed %s accepted", seed);
    cr_assert_str_eq(d, "training.seed: must be an integer in 0..9223372036854775807");
}

static uint64_t seed_accepted(const char *seed)
{
    char tr[128];
    snprintf(tr, sizeof tr, "\"seed\": %s", seed);
    api_job_request req;
    int rc;
    const char *d = job_with("[2, 1]", tr, &req, &rc);
    cr_assert_eq(rc, 0, "seed %s: %s", seed, d);
    uint64_t v = req.train.seed;
    /* and through the stored spec text and back */
    char *stored = api_job_spec_dump(&req.spec, &req.train);
    cr_assert(stored);
    bp_spec s2;
    bp_train_config c2;
    api_error err = {0};
    cr_assert_eq(api_job_spec_parse(&s2, &c2, stored, &err), 0, "%s: %s", stored, err.detail);
    cr_assert_eq(c2.seed, v, "%s", stored);
    free(stored);
    api_job_request_clear(&req);
    return v;
}

Test(integers, seed_range_is_exact)
{
    seed_refused("9223372036854775808");     /* 2^63 */
    seed_refused("9223372036854775808.0");
    seed_refused("18446744073709551615");    /* 2^64 - 1 */
    seed_refused("9007199254740993.0");      /* reads as 2^53: may have been rounded */
    seed_refused("9007199254740992.0");
    seed_refused("1e300");
    seed_refused("1.5");
    seed_refused("-1");
    seed_refused("-1e-300");
    seed_refused("\"7\"");
    seed_refused("null");
    seed_refused("true");
    seed_refused("[1]");
    cr_assert_eq(seed_accepted("9223372036854775807"), 9223372036854775807ull);
    cr_assert_eq(seed_accepted("9007199254740993"), 9007199254740993ull);
    cr_assert_eq(seed_accepted("9007199254740991.0"), 9007199254740991ull);
    cr_assert_eq(seed_accepted("-0.0"), 0u);
    cr_assert_eq(seed_accepted("42.0"), 42u);
    cr_assert_eq(seed_accepted("4.2e1"), 42u);
}

Test(integers, layer_sizes_share_the_rule)
{
    const char *bad[] = {"9223372036854775808", "9007199254740993.0", "1e300", "1.5", "-0.5",
                         "65537", "0", "\"3\"", "null"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char layers[64];
        snprintf(layers, sizeof layers, "[2, %s]", bad[i]);
        api_job_request req;
        int rc;
        const char *d = job_with(layers, "", &req, &rc);
        api_job_request_clear(&req);
        cr_assert_eq(rc, -1, "%s accepted", layers);
        cr_assert_str_eq(d, "network.layers[1]: must be an integer in 1..65536");
    }
    api_job_request req;
    int rc;
    const char *d = job_with("[2, 3.0, -0.0e0, 1]", "", &req, &rc);
    cr_assert_eq(rc, -1);
    cr_assert_str_eq(d, "network.layers[2]: must be an integer in 1..65536");
    d = job_with("[2, 3.0, 1]", "\"epochs\": 2.0, \"batch_size\": 0.0", &req, &rc);
    cr_assert_eq(rc, 0, "%s", d);
    cr_assert_eq(req.spec.sizes[1], 3);
    cr_assert_eq(req.train.epochs, 2);
    api_job_request_clear(&req);
}

/* ------------------------------------------------------------------ shortest doubles */

Test(doubles, replies_and_the_stored_spec_are_shortest)
{
    json_t *j = json_pack("{s:f, s:f, s:f, s:[f, f]}", "lambda", 0.1, "third", 1.0 / 3.0,
                          "one", 1.0, "xs", 1e22, 5e-324);
    char *t = api_dump(j, NULL);
    cr_assert_str_eq(t, "{\"lambda\":0.1,\"third\":0.3333333333333333,\"one\":1.0,"
                        "\"xs\":[1e22,5e-324]}");
    free(t);
    json_decref(j);

    api_job_request req;
    int rc;
    const char *d = job_with("[2, 1]", "\"lambda\": 0.1, \"learning_rate\": 0.3", &req, &rc);
    cr_assert_eq(rc, 0, "%s", d);
    char *stored = api_job_spec_dump(&req.spec, &req.train);
    cr_assert(strstr(stored, "\"lambda\":0.1,"), "%s", stored);
    cr_assert(strstr(stored, "\"learning_rate\":0.3,"), "%s", stored);
    cr_assert_null(strstr(stored, "0000000000"), "%s", stored);
    bp_spec s2;
    bp_train_config c2;
    api_error err = {0};
    cr_assert_eq(api_job_spec_parse(&s2, &c2, stored, &err), 0, "%s", err.detail);
    cr_assert(memcmp(&c2.lambda, &req.train.lambda, sizeof c2.lambda) == 0);
    cr_assert(memcmp(&c2.learning_rate, &req.train.learning_rate, sizeof c2.lambda) == 0);
    free(stored);
    api_job_request_clear(&req);
}

/* ------------------------------------------------------------------ CSV header */

static const char *csv_refusal(const char *text)
{
    static api_error err;
    memset(&err, 0, sizeof err);
    api_dataset d = {0};
    int rc = api_dataset_parse_csv(&d, text, strlen(text), &err);
    api_dataset_clear(&d);
    cr_assert_eq(rc, -1, "%s accepted", text);
    cr_assert_eq(err.status, 400u);
    return err.detail;
}

Test(csv, a_typo_in_the_first_row_is_not_a_header)
{
    cr_assert_str_eq(csv_refusal("1O,0.5,0.25\n0,0.5,0.25\n"),
                     "line 1, column 1: \"1O\" is not a number (a header row must have no "
                     "numeric field; use ?header=true to force one)");
    cr_assert_str_eq(csv_refusal("1,0.5,O.25\r\n0,0.5,0.25\r\n"),
                     "line 1, column 3: \"O.25\" is not a number (a header row must have no "
                     "numeric field; use ?header=true to force one)");
    cr_assert_str_eq(csv_refusal("\n\nlabel,0,x\n0,0.5,0.25\n"),
                     "line 3, column 1: \"label\" is not a number (a header row must have no "
                     "numeric field; use ?header=true to force one)");
    /* a text field after numbers, and the same as a later row */
    cr_assert_str_eq(csv_refusal("0,1,2\n1,2O,3\n"),
                     "line 2, column 2: expected a number, found \"2O\"");
    cr_assert_str_eq(csv_refusal("0,1,2\n1,\"a\\b\x7f\",3\n"),
                     "line 2, column 2: expected a number, found \"\\\"a\\\\b\\u007f\\\"\"");
}
