/* api_contract.c — unit tests of the contract's edges that users hit: unknown keys full of
 * control characters, DEL, quotes and UTF-8 (quoted safely, cut with "…"), integer fields at
 * 2^63 and around 2^53 (refused or exact, never wrapped), and doubles printed in their
 * shortest text in replies and in the stored job spec.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/jobs_codec.h"
#include "tests/key_shown.h"

/* ------------------------------------------------------------------ unknown keys */

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
    expect_key_shown(err.detail, "network", key);
}

Test(keys, control_characters_del_and_utf8_are_quoted_safely)
{
    /* the reported key: "l", ten DEL, "i" */
    char key[64] = "l";
    memset(key + 1, 0x7f, 10);
    strcat(key, "i");
    spec_key_refused(key, key);

    for (size_t u = 0; u < KEY_UNITS; u++)
        for (int n = 1; n <= 40; n++) {
            char json_key[400], raw[200];
            key_of_units(json_key, raw, u, n);
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

/* The seed a job request with "seed": <seed> gets, after a round trip through the stored spec
 * text; or -1 when refused (with the one message). */
static int64_t seed_of(const char *seed)
{
    char tr[128];
    snprintf(tr, sizeof tr, "\"seed\": %s", seed);
    api_job_request req;
    int rc;
    const char *d = job_with("[2, 1]", tr, &req, &rc);
    if (rc < 0) {
        api_job_request_clear(&req);
        cr_assert_str_eq(d, "training.seed: must be an integer in 0..9223372036854775807");
        return -1;
    }
    char *stored = api_job_spec_dump(&req.spec, &req.train);
    cr_assert(stored);
    bp_spec s2;
    bp_train_config c2;
    api_error err = {0};
    cr_assert_eq(api_job_spec_parse(&s2, &c2, stored, &err), 0, "%s: %s", stored, err.detail);
    cr_assert_eq(c2.seed, req.train.seed, "%s", stored);
    free(stored);
    api_job_request_clear(&req);
    cr_assert(c2.seed <= INT64_MAX);
    return (int64_t)c2.seed;
}

Test(integers, seed_range_is_exact)
{
    cr_assert_eq(seed_of("9223372036854775808"), -1);     /* 2^63 */
    cr_assert_eq(seed_of("9223372036854775808.0"), -1);
    cr_assert_eq(seed_of("18446744073709551615"), -1);    /* 2^64 - 1 */
    cr_assert_eq(seed_of("9007199254740993.0"), -1);      /* reads as 2^53: may have been rounded */
    cr_assert_eq(seed_of("9007199254740992.0"), -1);
    cr_assert_eq(seed_of("1e300"), -1);
    cr_assert_eq(seed_of("1.5"), -1);
    cr_assert_eq(seed_of("-1"), -1);
    cr_assert_eq(seed_of("-1e-300"), -1);
    cr_assert_eq(seed_of("\"7\""), -1);
    cr_assert_eq(seed_of("null"), -1);
    cr_assert_eq(seed_of("true"), -1);
    cr_assert_eq(seed_of("[1]"), -1);
    cr_assert_eq(seed_of("9223372036854775807"), 9223372036854775807LL);
    cr_assert_eq(seed_of("9007199254740993"), 9007199254740993LL);
    cr_assert_eq(seed_of("9007199254740991.0"), 9007199254740991LL);
    cr_assert_eq(seed_of("-0.0"), 0);
    cr_assert_eq(seed_of("42.0"), 42);
    cr_assert_eq(seed_of("4.2e1"), 42);
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

/* ------------------------------------------------------------------ error paths */

/* The JSON path of a syntax error quotes each key as keys are quoted elsewhere (a long one cut
 * with "…") and keeps whole parts only, however long the keys and deep the nesting. */
Test(keys, error_paths_of_long_keys_stay_bounded)
{
    for (int depth = 1; depth <= 12; depth++)
        for (int n = 1; n <= 40; n += 13) {
            char text[4096] = "", key[64];
            memset(key, 0x7f, (size_t)n);
            key[n] = '\0';
            for (int d = 0; d < depth; d++)
                snprintf(text + strlen(text), sizeof text - strlen(text), "{\"%s\": ", key);
            strcat(text, "[1, }");
            api_error err = {0};
            json_t *j = api_parse(text, strlen(text), &err);
            cr_assert_null(j);
            cr_assert_eq(err.status, 400u);
            cr_assert(strstr(err.detail, ": invalid JSON at line 1"), "%s", err.detail);
            /* the path: whole escaped keys joined by '.', at most 160 bytes */
            const char *end = strstr(err.detail, ": invalid JSON");
            size_t plen = (size_t)(end - err.detail), parts = 1, o = 0;
            cr_assert(plen < 160, "%s", err.detail);
            for (; o < plen; parts++) { /* each part: the key, or a prefix of it and "…" */
                int k = 0;
                for (; k < n && strncmp(err.detail + o, "\\u007f", 6) == 0; k++)
                    o += 6;
                if (k < n) {
                    cr_assert(k > 0 && strncmp(err.detail + o, "\xE2\x80\xA6", 3) == 0, "%s",
                              err.detail);
                    o += 3;
                }
                cr_assert(o == plen || err.detail[o++] == '.', "%s", err.detail);
            }
            cr_assert(parts - 1 <= (size_t)depth, "%s", err.detail);
        }
}
