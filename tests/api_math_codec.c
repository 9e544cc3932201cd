/* api_math_codec.c — unit tests of api/math_codec.c and api/datasets_codec.c: a math request
 * decodes to the spec, weights, lambda and data it spells (or names its bad field), a check
 * without theta draws the same weights as the core from the same seed, predict bodies decode
 * row by row, and the answers encode the numbers they are given (17 significant digits).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/datasets_codec.h"
#include "api/math_codec.h"

static int parse(api_math_request *q, const char *text, api_math_kind kind, api_error *err)
{
    return api_math_request_parse(q, text, strlen(text), kind, err);
}

Test(math_codec, request_with_inline_data)
{
    const char *text = "{\"network\":{\"layers\":[2,1]},\"theta\":[[[0.5,-1.25,2]]],"
                       "\"lambda\":0.75,\"X\":[[1,2],[3,4],[5,6]],\"y\":[0,1,1]}";
    api_math_request q;
    api_error err = {0};
    cr_assert_eq(parse(&q, text, API_MATH_GRADIENT, &err), 0, "%s", err.detail);
    cr_assert_eq(q.spec.n_layers, 2);
    cr_assert_eq(q.spec.sizes[0], 2);
    cr_assert_eq(q.spec.sizes[1], 1);
    cr_assert_eq(q.theta[0], 0.5);
    cr_assert_eq(q.theta[1], -1.25);
    cr_assert_eq(q.theta[2], 2.0);
    cr_assert_eq(q.lambda, 0.75);
    cr_assert_str_eq(q.dataset, "");
    cr_assert_eq(q.data.rows, 3);
    cr_assert_eq(q.data.features, 2);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(q.data.X[i], (double)(i + 1));
    cr_assert_eq(q.data.labels[0], 0);
    cr_assert_eq(q.data.labels[2], 1);
    api_math_request_clear(&q);
    cr_assert_null(q.theta);
    api_math_request_clear(NULL);
}

Test(math_codec, check_without_theta_draws_from_the_seed)
{
    const char *text = "{\"network\":{\"layers\":[3,2,2]},\"seed\":7,\"epsilon\":0.001,"
                       "\"dataset\":\"ds_0123456789abcdef01234567\"}";
    api_math_request q;
    api_error err = {0};
    cr_assert_eq(parse(&q, text, API_MATH_CHECK, &err), 0, "%s", err.detail);
    cr_assert_str_eq(q.dataset, "ds_0123456789abcdef01234567");
    cr_assert_eq(q.data.rows, 0);
    cr_assert_eq(q.epsilon, 0.001);
    cr_assert_eq(q.seed, 7);
    int64_t P = bp_param_count(&q.spec);
    double *want = malloc((size_t)P * sizeof *want);
    bp_rng rng;
    bp_rng_seed(&rng, 7);
    bp_init_weights(want, &q.spec, 0.0, &rng);
    cr_assert_eq(memcmp(want, q.theta, (size_t)P * sizeof *want), 0);
    free(want);
    api_math_request_clear(&q);
}

Test(math_codec, bad_requests_name_the_field)
{
    const struct {
        const char *text;
        api_math_kind kind;
        const char *detail;
    } cases[] = {
        {"[1]", API_MATH_COST, "body: expected a JSON object"},
        {"{\"network\":{\"layers\":[1,1]},\"foo\":1}", API_MATH_COST, "body: unknown key \"foo\""},
        {"{\"network\":{\"layers\":[1,1]},\"seed\":1,\"theta\":[[[0,1]]],\"X\":[[1]],\"y\":[0]}",
         API_MATH_COST, "body: unknown key \"seed\""},
        {"{\"theta\":[]}", API_MATH_COST, "network: missing (e.g. {\"layers\": [64, 25, 10]})"},
        {"{\"network\":{\"layers\":[1,1]},\"X\":[[1]],\"y\":[0]}", API_MATH_COST,
         "theta: missing (one matrix per layer transition, bias column first)"},
        {"{\"network\":{\"layers\":[1,1]},\"theta\":[[[0,1]]],\"lambda\":-1,\"X\":[[1]],"
         "\"y\":[0]}",
         API_MATH_COST, "lambda: must be a number >= 0"},
        {"{\"network\":{\"layers\":[1,1]},\"epsilon\":2,\"dataset\":\"ds_x\"}", API_MATH_CHECK,
         "epsilon: must be a number in (0, 1)"},
        {"{\"network\":{\"layers\":[1,1]},\"theta\":[[[0,1]]]}", API_MATH_COST,
         "dataset: missing (a dataset id, or inline \"X\" with \"y\" or \"Y\")"},
        {"{\"network\":{\"layers\":[1,1]},\"theta\":[[[0,1]]],\"dataset\":\"ds_x\",\"X\":[[1]]}",
         API_MATH_COST, "dataset: give either \"dataset\" or inline \"X\", not both"},
        {"{\"network\":{\"layers\":[1,1]},\"theta\":[[[0,1]]],\"dataset\":\"ds_x\",\"y\":[1]}",
         API_MATH_COST, "y: only together with inline \"X\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        api_math_request q;
        api_error err = {0};
        cr_assert_eq(parse(&q, cases[i].text, cases[i].kind, &err), -1, "%s", cases[i].text);
        cr_assert_eq(err.status, 400, "%s", cases[i].text);
        cr_assert_str_eq(err.detail, cases[i].detail, "%s", cases[i].text);
        cr_assert_null(q.theta);
    }
}

Test(math_codec, answers_carry_the_numbers)
{
    bp_spec spec = {.n_layers = 2, .sizes = {2, 1}};
    double g[3] = {0.1, 1.0 / 3.0, -2.5e-300};
    json_t *j = api_gradient_json(1.0 / 7.0, g, &spec);
    cr_assert_not_null(j);
    cr_assert_eq(json_real_value(json_object_get(j, "cost")), 1.0 / 7.0);
    json_t *row = json_array_get(json_array_get(json_object_get(j, "gradients"), 0), 0);
    for (size_t k = 0; k < 3; k++)
        cr_assert_eq(json_number_value(json_array_get(row, k)), g[k]);
    json_decref(j);
    cr_assert_null(api_gradient_json(NAN, g, &spec));
    cr_assert_null(api_cost_json(INFINITY));
    j = api_cost_json(2.75);
    cr_assert_eq(json_real_value(json_object_get(j, "cost")), 2.75);
    json_decref(j);
}

Test(math_codec, predict_bodies_and_answers)
{
    const char *text = "{\"X\":[[1,2.5],[-3,4e-3]]}";
    double *X = NULL;
    int64_t rows = 0;
    api_error err = {0};
    cr_assert_eq(api_predict_request_parse(text, strlen(text), 2, &X, &rows, &err), 0, "%s",
                 err.detail);
    cr_assert_eq(rows, 2);
    cr_assert_eq(X[1], 2.5);
    cr_assert_eq(X[3], 4e-3);
    free(X);
    const char *bad[][2] = {{"{\"X\":[[1,2],[3]]}", "X[1]: a row must be an array of 2 numbers, found 1"},
                            {"{\"X\":[]}", "X: expected an array of 1..1000000 rows of 2 numbers"},
                            {"{\"Z\":1}", "body: unknown key \"Z\""},
                            {"{\"X\":[[1,\"a\"]]}", "X[0][1]: expected a number"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        api_error e = {0};
        cr_assert_eq(api_predict_request_parse(bad[i][0], strlen(bad[i][0]), 2, &X, &rows, &e),
                     -1);
        cr_assert_null(X);
        cr_assert_str_eq(e.detail, bad[i][1]);
    }
    double out[4] = {0.25, 0.75, NAN, 1.0 / 3.0};
    int32_t labels[2] = {1, 0};
    json_t *j = api_predictions_json(out, labels, 2, 2);
    json_t *o = json_object_get(j, "outputs");
    cr_assert_eq(json_number_value(json_array_get(json_array_get(o, 0), 1)), 0.75);
    cr_assert(json_is_null(json_array_get(json_array_get(o, 1), 0)));
    cr_assert_eq(json_number_value(json_array_get(json_array_get(o, 1), 1)), 1.0 / 3.0);
    cr_assert_eq(json_integer_value(json_array_get(json_object_get(j, "labels"), 0)), 1);
    json_decref(j);
}

Test(datasets_codec, metadata)
{
    api_dataset_meta_view v = {.id = "ds_0123456789abcdef01234567", .name = "digits",
                               .rows = 1797, .features = 64, .outputs = 10,
                               .created_at = "2026-11-26T19:26:50Z"};
    json_t *j = api_dataset_meta_json(&v);
    char *text = json_dumps(j, JSON_COMPACT);
    cr_assert_str_eq(text, "{\"id\":\"ds_0123456789abcdef01234567\",\"name\":\"digits\","
                           "\"rows\":1797,\"features\":64,\"outputs\":10,"
                           "\"created_at\":\"2026-11-26T19:26:50Z\"}");
    free(text);
    json_decref(j);
}
