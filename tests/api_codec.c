/* api_codec.c — unit tests of api/: the strict JSON parser, spec and theta codecs with their
 * exact messages, the dataset parsers (jansson tree, fast JSON text, CSV) against each other
 * and against strtod, and the 17-digit round trip of everything the server prints.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/jobs_codec.h"

static bp_spec spec_of(const char *json)
{
    api_error err = {0};
    json_t *j = api_parse(json, strlen(json), &err);
    cr_assert(j, "parse %s: %s", json, err.detail);
    bp_spec s;
    int rc = api_spec_parse(&s, j, "network", &err);
    json_decref(j);
    cr_assert_eq(rc, 0, "%s: %s", json, err.detail);
    return s;
}

/* The detail api_spec_parse gives for json (which must fail with 400). */
static const char *spec_error(const char *json)
{
    static api_error err;
    memset(&err, 0, sizeof err);
    json_t *j = api_parse(json, strlen(json), &err);
    cr_assert(j, "parse %s: %s", json, err.detail);
    bp_spec s;
    int rc = api_spec_parse(&s, j, "network", &err);
    json_decref(j);
    cr_assert_eq(rc, -1, "%s was accepted", json);
    cr_assert_eq(err.status, 400u);
    return err.detail;
}

Test(spec, good)
{
    bp_spec s = spec_of("{\"layers\": [64, 25, 10]}");
    cr_assert_eq(s.n_layers, 3);
    cr_assert_eq(s.sizes[0], 64);
    cr_assert_eq(s.sizes[1], 25);
    cr_assert_eq(s.sizes[2], 10);
    cr_assert_eq(s.hidden, BP_ACT_SIGMOID);
    cr_assert_eq(s.output, BP_OUT_SIGMOID);
    s = spec_of("{\"layers\": [3, 2.0, 1], \"activation\": \"relu\", \"output\": \"softmax\"}");
    cr_assert_eq(s.sizes[1], 2);
    cr_assert_eq(s.hidden, BP_ACT_RELU);
    cr_assert_eq(s.output, BP_OUT_SOFTMAX);
    s = spec_of("{\"layers\": [1, 65536], \"activation\": \"tanh\", \"output\": \"linear\"}");
    cr_assert_eq(s.sizes[1], 65536);
    cr_assert_eq(s.hidden, BP_ACT_TANH);
    cr_assert_eq(s.output, BP_OUT_LINEAR);

    /* and back */
    json_t *j = api_spec_json(&s);
    char *txt = api_dump(j, NULL);
    cr_assert_str_eq(txt, "{\"layers\":[1,65536],\"activation\":\"tanh\",\"output\":\"linear\"}");
    free(txt);
    json_decref(j);
}

Test(spec, bad_messages)
{
    cr_assert_str_eq(spec_error("{\"layers\": [64, 0, 10]}"),
                     "network.layers[1]: must be an integer in 1..65536");
    cr_assert_str_eq(spec_error("{\"layers\": [64, 25, -3]}"),
                     "network.layers[2]: must be an integer in 1..65536");
    cr_assert_str_eq(spec_error("{\"layers\": [65537, 10]}"),
                     "network.layers[0]: must be an integer in 1..65536");
    cr_assert_str_eq(spec_error("{\"layers\": [64, 2.5]}"),
                     "network.layers[1]: must be an integer in 1..65536");
    cr_assert_str_eq(spec_error("{\"layers\": [\"64\", 10]}"),
                     "network.layers[0]: must be an integer in 1..65536");
    cr_assert_str_eq(spec_error("{\"layers\": [64]}"),
                     "network.layers: expected an array of 2..64 layer sizes");
    cr_assert_str_eq(spec_error("{\"layers\": 64}"),
                     "network.layers: expected an array of 2..64 layer sizes");
    cr_assert_str_eq(spec_error("{}"), "network.layers: missing");
    cr_assert_str_eq(spec_error("{\"layers\": [64, 10], \"foo\": 1}"),
                     "network: unknown key \"foo\"");
    cr_assert_str_eq(spec_error("{\"layers\": [64, 10], \"activation\": \"swish\"}"),
                     "network.activation: must be one of \"sigmoid\", \"tanh\", \"relu\"");
    cr_assert_str_eq(spec_error("{\"layers\": [64, 10], \"output\": 3}"),
                     "network.output: must be one of \"sigmoid\", \"softmax\", \"linear\"");
    cr_assert_str_eq(spec_error("[64, 10]"),
                     "network: expected an object like {\"layers\": [64, 25, 10]}");
    char want[200];
    long long params = 2LL * 65536 * 65537;
    snprintf(want, sizeof want, "network.layers: %lld parameters exceed the limit of %lld",
             params, (long long)BP_MAX_PARAMS);
    cr_assert_str_eq(spec_error("{\"layers\": [65536, 65536, 65536]}"), want);
    /* 65 layers */
    char big[600] = "{\"layers\": [1";
    for (int i = 0; i < 64; i++)
        strcat(big, ",1");
    strcat(big, "]}");
    cr_assert_str_eq(spec_error(big), "network.layers: expected an array of 2..64 layer sizes");
}

/* ---- theta ---- */

static const char *theta_error(const char *json, const bp_spec *s)
{
    static api_error err;
    memset(&err, 0, sizeof err);
    json_t *j = api_parse(json, strlen(json), &err);
    cr_assert(j, "parse %s: %s", json, err.detail);
    double *t = api_theta_parse(j, s, "theta", &err);
    json_decref(j);
    cr_assert_null(t, "%s was accepted", json);
    free(t);
    cr_assert_eq(err.status, 400u);
    return err.detail;
}

/* The detail api_job_request_parse gives for json (which must fail with 400). */
static const char *job_error(const char *json)
{
    static api_error err;
    memset(&err, 0, sizeof err);
    json_t *j = api_parse(json, strlen(json), &err);
    cr_assert(j, "parse %s: %s", json, err.detail);
    api_job_request req;
    int rc = api_job_request_parse(&req, j, &err);
    json_decref(j);
    api_job_request_clear(&req);
    cr_assert_eq(rc, -1, "%s was accepted", json);
    cr_assert_eq(err.status, 400u);
    return err.detail;
}

/* Unknown keys are named as api_spec_parse names them: '<parent>: unknown key "<key>"'. */
Test(job_request, unknown_keys)
{
    cr_assert_str_eq(job_error("{\"network\": {\"layers\": [2, 1]}, \"dataset\": \"ds_a\", "
                               "\"foo\": 1}"),
                     "body: unknown key \"foo\"");
    cr_assert_str_eq(job_error("{\"network\": {\"layers\": [2, 1]}, \"dataset\": \"ds_a\", "
                               "\"training\": {\"epochs\": 1, \"foo\": 1}}"),
                     "training: unknown key \"foo\"");
    cr_assert_str_eq(job_error("{\"network\": {\"layers\": [2, 1], \"foo\": 1}, "
                               "\"dataset\": \"ds_a\"}"),
                     "network: unknown key \"foo\"");
}

Test(theta, shapes)
{
    bp_spec s = spec_of("{\"layers\": [2, 3, 1]}"); /* theta[0] 3x3, theta[1] 1x4 */
    const char *good = "[[[1,2,3],[4,5,6],[7,8,9]], [[10,11,12.5,-13]]]";
    api_error err = {0};
    json_t *j = api_parse(good, strlen(good), &err);
    cr_assert(j);
    double *t = api_theta_parse(j, &s, "theta", &err);
    cr_assert(t, "%s", err.detail);
    cr_assert_eq(bp_param_count(&s), 13);
    double want[13] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12.5, -13};
    cr_assert_arr_eq(t, want, sizeof want);
    free(t);
    json_decref(j);

    cr_assert_str_eq(theta_error("[[[1,2,3],[4,5],[7,8,9]], [[10,11,12,13]]]", &s),
                     "theta[0]: expected 3 rows of 3 numbers, row 1 has 2");
    cr_assert_str_eq(theta_error("[[[1,2,3],[4,5,6],[7,8,9]], [[1,1,1,1],[1,1,1,1]]]", &s),
                     "theta[1]: expected 1 rows of 4 numbers, found 2 rows");
    cr_assert_str_eq(theta_error("[[[1,2,3],[4,5,6],[7,null,9]], [[10,11,12,13]]]", &s),
                     "theta[0][2][1]: expected a number");
    cr_assert_str_eq(theta_error("[[[1,2,3],[4,5,6],[7,8,9]]]", &s),
                     "theta: expected a list of 2 matrices (one per layer transition)");
    cr_assert_str_eq(theta_error("[[[1,2,3],[4,5,6],7], [[10,11,12,13]]]", &s),
                     "theta[0][2]: expected an array of 3 numbers");
    cr_assert_str_eq(theta_error("[[[1,2,3],[4,5,6],[7,8,9]], \"x\"]", &s),
                     "theta[1]: expected 1 rows of 4 numbers, found no array");
}

/* ---- the strict parser ---- */

static const char *parse_error(const char *text)
{
    static api_error err;
    memset(&err, 0, sizeof err);
    json_t *j = api_parse(text, strlen(text), &err);
    cr_assert_null(j, "%s was accepted", text);
    json_decref(j);
    cr_assert_eq(err.status, 400u);
    return err.detail;
}

Test(parse, refusals_name_the_place)
{
    const char *d = parse_error("{\"network\": {\"layers\": [2, 1]}, \"network\": 3}");
    cr_assert(strstr(d, "duplicate key"), "%s", d);
    cr_assert(strstr(d, "network"), "%s", d);
    d = parse_error("{\"X\": [[1, 2], [3, 1e999]]}");
    cr_assert(strstr(d, "X[1][1]") && strstr(d, "out of range"), "%s", d);
    d = parse_error("{\"theta\": [NaN]}");
    cr_assert(strstr(d, "theta[0]") && strstr(d, "invalid JSON"), "%s", d);
    d = parse_error("{\"theta\": [1, Infinity]}");
    cr_assert(strstr(d, "theta[1]"), "%s", d);
    d = parse_error("{\"a\": 1} x");
    cr_assert(strstr(d, "invalid JSON"), "%s", d);
    d = parse_error("{\"a\": 1,}");
    cr_assert(strstr(d, "invalid JSON"), "%s", d);
    d = parse_error("");
    cr_assert_str_eq(d, "body: empty, expected a JSON object");

    char deep[400] = "{\"X\": ";
    for (int i = 0; i < 100; i++)
        strcat(deep, "[");
    for (int i = 0; i < 100; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    d = parse_error(deep);
    cr_assert(strstr(d, "nested deeper than 64 levels"), "%s", d);
    cr_assert(strncmp(d, "X[0]", 4) == 0, "%s", d);

    /* brackets inside strings do not count */
    char s[400] = "{\"k\": \"";
    for (int i = 0; i < 100; i++)
        strcat(s, "[");
    strcat(s, "\"}");
    api_error err = {0};
    json_t *j = api_parse(s, strlen(s), &err);
    cr_assert(j, "%s", err.detail);
    json_decref(j);

    /* integers where numbers are expected, and beyond 64 bits */
    const char *t = "{\"a\": 3, \"b\": 123456789012345678901234567890}";
    j = api_parse(t, strlen(t), &err);
    cr_assert(j, "%s", err.detail);
    cr_assert_eq(json_number_value(json_object_get(j, "a")), 3.0);
    cr_assert_eq(json_number_value(json_object_get(j, "b")),
                 strtod("123456789012345678901234567890", NULL));
    json_decref(j);
}

Test(parse, problem_json)
{
    json_t *p = api_problem_json(409, "X: rows have 3 features but network.layers[0] is 4");
    cr_assert_str_eq(json_string_value(json_object_get(p, "title")), "Conflict");
    cr_assert_eq(json_integer_value(json_object_get(p, "status")), 409);
    cr_assert_str_eq(json_string_value(json_object_get(p, "type")), "about:blank");
    cr_assert_str_eq(json_string_value(json_object_get(p, "detail")),
                     "X: rows have 3 features but network.layers[0] is 4");
    json_decref(p);
    cr_assert_str_eq(api_status_title(415), "Unsupported Media Type");
}

/* ---- numbers ---- */

/* One number through the JSON text parser (csv = 0) or the CSV parser (csv = 1); pad adds
 * trailing whitespace so that the scanner's 8-bytes-at-a-time path runs too. */
static double one_number(int csv, const char *num, int pad, int *ok, api_error *err)
{
    char text[600];
    if (csv)
        snprintf(text, sizeof text, "0,0\r\n1,%s\r\n%*s", num, pad, ""); /* row 1: data */
    else
        snprintf(text, sizeof text, "{\"X\": [[%s]], \"y\": [0]}%*s", num, pad, "");
    api_dataset d = {0};
    memset(err, 0, sizeof *err);
    *ok = (csv ? api_dataset_parse_csv : api_dataset_parse_json_text)(&d, text, strlen(text),
                                                                       err) == 0;
    double v = *ok ? d.X[csv] : 0;
    api_dataset_clear(&d);
    return v;
}

/* The same number with and without padding: both paths must agree to the bit. */
static double number_both_ways(int csv, const char *num, int *ok, api_error *err)
{
    int ok2;
    api_error err2;
    double padded = one_number(csv, num, 40, &ok2, &err2);
    double v = one_number(csv, num, 0, ok, err);
    cr_assert_eq(*ok, ok2, "%s: padded and unpadded disagree: %s / %s", num, err->detail,
                 err2.detail);
    if (*ok)
        cr_assert(memcmp(&v, &padded, sizeof v) == 0, "%s: %.17g padded %.17g", num, v, padded);
    else
        cr_assert_str_eq(err->detail, err2.detail);
    return v;
}

static double fast_number(const char *num, int *ok, api_error *err)
{
    return number_both_ways(0, num, ok, err);
}

static double csv_number(const char *num, int *ok, api_error *err)
{
    return number_both_ways(1, num, ok, err);
}

static void assert_same_double(double a, double b, const char *what)
{
    cr_assert(memcmp(&a, &b, sizeof a) == 0, "%s: %.17g != %.17g", what, a, b);
}

Test(numbers, exactly_strtod)
{
    const char *good[] = {"0.1", "1e-300", "-0", "123456789012345678901234567890",
                          "2.2250738585072014e-308", "4.9e-324", "0", "1", "-1.5e+10",
                          "9007199254740993", "9007199254740992", "1e22", "1e23", "1E-22",
                          "0.30000000000000004", "1.7976931348623157e308", "0e999",
                          "2.4703282292062327e-324", "1e-400", "123.456e-5",
                          "0.000000000000000000000000000001234567890123456789"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        int ok;
        api_error err;
        double want = strtod(good[i], NULL);
        double v = fast_number(good[i], &ok, &err);
        cr_assert(ok, "%s refused: %s", good[i], err.detail);
        assert_same_double(v, want, good[i]);
        v = csv_number(good[i], &ok, &err);
        cr_assert(ok, "csv %s refused: %s", good[i], err.detail);
        assert_same_double(v, want, good[i]);
    }
    cr_assert(signbit(strtod("-0", NULL)));

    /* random decimal strings of every length: the fast path must agree with strtod */
    srand(7);
    for (int n = 0; n < 200000; n++) {
        char s[64];
        int o = 0;
        if (rand() % 2)
            s[o++] = '-';
        int nd = rand() % 4 == 0 ? 0 : 1 + rand() % 20; /* 0: "0.xxx" */
        s[o++] = nd ? (char)('1' + rand() % 9) : '0';
        for (int k = 1; k < nd; k++)
            s[o++] = (char)('0' + rand() % 10);
        if (rand() % 2) {
            s[o++] = '.';
            int nf = 1 + rand() % 18;
            for (int k = 0; k < nf; k++)
                s[o++] = (char)('0' + rand() % 10);
        }
        if (rand() % 2)
            o += snprintf(s + o, sizeof s - (size_t)o, "e%d", rand() % 80 - 40);
        s[o] = '\0';
        int ok;
        api_error err;
        double v = fast_number(s, &ok, &err);
        cr_assert(ok, "%s refused: %s", s, err.detail);
        assert_same_double(v, strtod(s, NULL), s);
    }
}

Test(numbers, refused)
{
    int ok;
    api_error err;
    fast_number("1e999", &ok, &err);
    cr_assert(!ok);
    cr_assert_str_eq(err.detail, "X[0][0]: number out of range (overflows a double)");
    fast_number("-1e400", &ok, &err);
    cr_assert(!ok);
    const char *bad[] = {"01", "1.", ".5", "+1", "NaN", "Infinity", "-Infinity", "-", "1e",
                         "1e+", "0x10", "1.5.2", "\"1\"", "true", "--1", "1 2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        fast_number(bad[i], &ok, &err);
        cr_assert(!ok, "%s accepted", bad[i]);
        cr_assert_eq(err.status, 400u);
        cr_assert_str_eq(err.detail, "X[0][0]: expected a number", "%s: %s", bad[i], err.detail);
        csv_number(bad[i], &ok, &err);
        cr_assert(!ok, "csv %s accepted", bad[i]);
        cr_assert(strstr(err.detail, "line 2, column 2: expected a number"), "%s: %s", bad[i],
                  err.detail);
    }
    csv_number("1e999", &ok, &err);
    cr_assert(!ok);
    cr_assert_str_eq(err.detail, "line 2, column 2: number out of range (overflows a double)");
}

/* ---- datasets ---- */

static int parse_json_text(api_dataset *d, const char *text, api_error *err)
{
    memset(err, 0, sizeof *err);
    return api_dataset_parse_json_text(d, text, strlen(text), err);
}

static const char *json_text_error(const char *text)
{
    static api_error err;
    api_dataset d = {0};
    int rc = parse_json_text(&d, text, &err);
    api_dataset_clear(&d);
    cr_assert_eq(rc, -1, "%s accepted", text);
    cr_assert_eq(err.status, 400u);
    return err.detail;
}

/* The jansson path's message for the same body (after a successful api_parse). */
static const char *tree_error(const char *text)
{
    static api_error err;
    memset(&err, 0, sizeof err);
    json_t *j = api_parse(text, strlen(text), &err);
    cr_assert(j, "%s: %s", text, err.detail);
    api_dataset d = {0};
    int rc = api_dataset_from_json(&d, j, &err);
    json_decref(j);
    api_dataset_clear(&d);
    cr_assert_eq(rc, -1, "%s accepted", text);
    return err.detail;
}

Test(dataset, text_and_tree_agree)
{
    /* a random dataset with numbers in many spellings */
    srand(11);
    size_t cap = 1 << 20, o = 0;
    char *text = malloc(cap);
    o += (size_t)snprintf(text + o, cap - o, "{\n  \"X\" : [");
    int rows = 300, cols = 17;
    for (int i = 0; i < rows; i++) {
        o += (size_t)snprintf(text + o, cap - o, "%s[", i ? ", " : "");
        for (int c = 0; c < cols; c++) {
            double v = (rand() / (double)RAND_MAX - 0.5) * pow(10, rand() % 30 - 15);
            o += (size_t)snprintf(text + o, cap - o, c ? " ,\t" : "");
            switch (rand() % 5) { /* many spellings of numbers */
            case 0: o += (size_t)snprintf(text + o, cap - o, "%.17g", v); break;
            case 1: o += (size_t)snprintf(text + o, cap - o, "%.3f", v); break;
            case 2: o += (size_t)snprintf(text + o, cap - o, "%g", v); break;
            case 3: o += (size_t)snprintf(text + o, cap - o, "%.10E", v); break;
            default: o += (size_t)snprintf(text + o, cap - o, "%.0f", v); break;
            }
        }
        o += (size_t)snprintf(text + o, cap - o, "]");
    }
    o += (size_t)snprintf(text + o, cap - o, "],\r\n \"y\":[");
    for (int i = 0; i < rows; i++)
        o += (size_t)snprintf(text + o, cap - o, "%s%d", i ? "," : "", (i * 7) % 10);
    o += (size_t)snprintf(text + o, cap - o, "] }\n");

    api_error err;
    api_dataset a = {0}, b = {0};
    cr_assert_eq(parse_json_text(&a, text, &err), 0, "%s", err.detail);
    json_t *j = api_parse(text, o, &err);
    cr_assert(j, "%s", err.detail);
    cr_assert_eq(api_dataset_from_json(&b, j, &err), 0, "%s", err.detail);
    json_decref(j);
    cr_assert_eq(a.rows, rows);
    cr_assert_eq(b.rows, rows);
    cr_assert_eq(a.features, cols);
    cr_assert_eq(b.features, cols);
    cr_assert_eq(a.outputs, 10);
    cr_assert_eq(b.outputs, 10);
    /* bit-identical, except that jansson reads the integer literal -0 as 0 (an integer
     * has no sign bit): equal as numbers */
    for (int i = 0; i < rows * cols; i++)
        assert_same_double(a.X[i] == 0 ? 0.0 : a.X[i], b.X[i] == 0 ? 0.0 : b.X[i], "X");
    cr_assert(memcmp(a.labels, b.labels, sizeof(int32_t) * (size_t)rows) == 0);
    cr_assert_null(a.Y);
    api_dataset_clear(&a);
    api_dataset_clear(&b);
    free(text);

    /* Y instead of y, keys in any order, \u escapes in keys */
    const char *t = "{\"Y\": [[0.5, 1], [1, 0]], \"\\u0058\": [[1], [2]]}";
    cr_assert_eq(parse_json_text(&a, t, &err), 0, "%s", err.detail);
    cr_assert_eq(a.rows, 2);
    cr_assert_eq(a.features, 1);
    cr_assert_eq(a.outputs, 2);
    cr_assert_null(a.labels);
    cr_assert_eq(a.Y[0], 0.5);
    cr_assert_eq(a.Y[3], 0.0);
    api_dataset_clear(&a);
}

Test(dataset, json_refusals)
{
    struct {
        const char *text, *want;
    } cases[] = {
        {"{\"X\": [[1, 2]], \"X\": [[1, 2]], \"y\": [0]}", "X: invalid JSON: duplicate key"},
        {"{\"X\": [[1, 2]], \"y\": [0], \"z\": 1}", "body: unknown key \"z\""},
        {"{\"X\": [[1, 2]], \"y\": [0]} x",
         "body: invalid JSON: unexpected text after the object at offset 26"},
        {"{\"X\": [], \"y\": []}", "X: expected a non-empty array of rows"},
        {"{\"X\": [[]], \"y\": [0]}", "X[0]: expected an array of 1..65536 numbers"},
        {"{\"X\": [[1, 2], [3]], \"y\": [0, 1]}", "X[1]: expected an array of 2 numbers, found 1"},
        {"{\"X\": [[1, 2], [3, \"a\"]], \"y\": [0, 1]}", "X[1][1]: expected a number"},
        {"{\"X\": [[1, 2], [3, 4]], \"y\": [0]}",
         "y: expected 2 labels (one per row of X), found 1"},
        {"{\"X\": [[1, 2]], \"y\": [-1]}", "y[0]: must be an integer in 0..65535"},
        {"{\"X\": [[1, 2]], \"y\": [1.5]}", "y[0]: must be an integer in 0..65535"},
        {"{\"X\": [[1, 2]], \"y\": [65536]}", "y[0]: must be an integer in 0..65535"},
        {"{\"X\": [[1, 2]]}", "y: missing (class labels, or \"Y\" for a target matrix)"},
        {"{\"X\": [[1, 2]], \"y\": [0], \"Y\": [[1]]}", "y, Y: give exactly one of them"},
        {"{\"y\": [0]}", "X: missing (an array of rows, one per sample)"},
        {"{\"X\": [[1, 2]], \"Y\": [[1], [2]]}", "Y: expected 1 rows (one per row of X), found 2"},
        {"{\"X\": [[[1]]], \"y\": [0]}", "X[0][0]: expected a number"},
        {"{\"X\": [[1, 2]], \"y\": [0, ]}", "y[1]: must be an integer in 0..65535"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        cr_assert_str_eq(json_text_error(cases[i].text), cases[i].want, "%s", cases[i].text);
    /* the jansson path says the same where it gets that far */
    for (size_t i = 3; i < sizeof cases / sizeof *cases - 2; i++)
        if (strstr(cases[i].text, "\"z\"") == NULL)
            cr_assert_str_eq(tree_error(cases[i].text), cases[i].want, "%s", cases[i].text);
    cr_assert_str_eq(json_text_error(""), "body: empty, expected a JSON object");
    cr_assert_str_eq(json_text_error("[1]"), "body: expected a JSON object");

    char deep[400] = "{\"X\": ";
    for (int i = 0; i < 100; i++)
        strcat(deep, "[");
    for (int i = 0; i < 100; i++)
        strcat(deep, "]");
    strcat(deep, ", \"y\": [0]}");
    cr_assert_str_eq(json_text_error(deep), "X[0][0]: expected a number");
}

static const char *csv_error(const char *text)
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

Test(dataset, csv)
{
    const char *t = "label,a,b\r\n3,0.5,1e-3\r\n0, -2 ,4\r\n\r\n";
    api_dataset d = {0};
    api_error err = {0};
    cr_assert_eq(api_dataset_parse_csv(&d, t, strlen(t), &err), 0, "%s", err.detail);
    cr_assert_eq(d.rows, 2);
    cr_assert_eq(d.features, 2);
    cr_assert_eq(d.outputs, 4);
    double want[] = {0.5, 1e-3, -2, 4};
    cr_assert_arr_eq(d.X, want, sizeof want);
    cr_assert_eq(d.labels[0], 3);
    cr_assert_eq(d.labels[1], 0);
    api_dataset_clear(&d);

    /* no header, no final newline */
    t = "1,2,3\n0,4,5";
    cr_assert_eq(api_dataset_parse_csv(&d, t, strlen(t), &err), 0, "%s", err.detail);
    cr_assert_eq(d.rows, 2);
    cr_assert_eq(d.X[3], 5.0);
    api_dataset_clear(&d);

    cr_assert_str_eq(csv_error("1,2,3\n0,4\n"), "line 2: expected 3 fields, found 2");
    cr_assert_str_eq(csv_error("h1,h2,h3\n1,2,3\n0,4,5,6\n"), "line 3: expected 3 fields, found 4");
    cr_assert_str_eq(csv_error("1,2,3\n0,4,abc\n"),
                     "line 2, column 3: expected a number, found \"abc\"");
    cr_assert_str_eq(csv_error("1,2,3\n0,4,\n"), "line 2, column 3: expected a number, found \"\"");
    cr_assert_str_eq(csv_error("1,2,3\n-1,4,5\n"), "line 2, column 1: label must be an integer in 0..65535");
    cr_assert_str_eq(csv_error("1.5,2,3\n"), "line 1, column 1: label must be an integer in 0..65535");
    cr_assert_str_eq(csv_error(""), "body: no data rows (CSV: one row a sample, the label first)");
    cr_assert_str_eq(csv_error("label,a,b\r\n"),
                     "body: no data rows (CSV: one row a sample, the label first)");
    cr_assert_str_eq(csv_error("1\n"), "line 1: expected a label and at least one feature");

    /* the digits file: 1797 rows, 64 features, labels 0..9 */
    FILE *f = fopen("tests/data/digits.csv", "rb");
    if (!f)
        f = fopen("../tests/data/digits.csv", "rb");
    cr_assert(f);
    char *buf = malloc(1 << 22);
    size_t n = fread(buf, 1, 1 << 22, f);
    fclose(f);
    cr_assert_eq(api_dataset_parse_csv(&d, buf, n, &err), 0, "%s", err.detail);
    cr_assert_eq(d.rows, 1797);
    cr_assert_eq(d.features, 64);
    cr_assert_eq(d.outputs, 10);
    cr_assert_eq(d.labels[0], 0);
    cr_assert_eq(d.X[2], 0.3125);
    api_dataset_clear(&d);
    free(buf);
}

/* The first row is a header only when none of its fields is a number: a typo is refused. */
Test(dataset, csv_typo_in_the_first_row_is_not_a_header)
{
    cr_assert_str_eq(csv_error("1O,0.5,0.25\n0,0.5,0.25\n"),
                     "line 1, column 1: \"1O\" is not a number (a header row must have no "
                     "numeric field; use ?header=true to force one)");
    cr_assert_str_eq(csv_error("1,0.5,O.25\r\n0,0.5,0.25\r\n"),
                     "line 1, column 3: \"O.25\" is not a number (a header row must have no "
                     "numeric field; use ?header=true to force one)");
    cr_assert_str_eq(csv_error("\n\nlabel,0,x\n0,0.5,0.25\n"),
                     "line 3, column 1: \"label\" is not a number (a header row must have no "
                     "numeric field; use ?header=true to force one)");
    /* a text field after numbers, and the same as a later row */
    cr_assert_str_eq(csv_error("0,1,2\n1,2O,3\n"),
                     "line 2, column 2: expected a number, found \"2O\"");
    cr_assert_str_eq(csv_error("0,1,2\n1,\"a\\b\x7f\",3\n"),
                     "line 2, column 2: expected a number, found \"\\\"a\\\\b\\u007f\\\"\"");
}

Test(dataset, targets_and_fit)
{
    int32_t labels[3] = {0, 2, 1};
    double X[6] = {1, 2, 3, 4, 5, 6};
    api_dataset d = {.rows = 3, .features = 2, .outputs = 3, .X = X, .labels = labels};
    api_error err = {0};
    bp_spec s = spec_of("{\"layers\": [2, 4, 3]}");
    cr_assert_eq(api_dataset_fits(&d, &s, &err), 0, "%s", err.detail);
    double *T = api_targets(&d, 3, &err);
    double want[9] = {1, 0, 0, 0, 0, 1, 0, 1, 0};
    cr_assert_arr_eq(T, want, sizeof want);
    free(T);

    s = spec_of("{\"layers\": [3, 3]}");
    cr_assert_eq(api_dataset_fits(&d, &s, &err), -1);
    cr_assert_eq(err.status, 409u);
    cr_assert_str_eq(err.detail, "X: rows have 2 features but network.layers[0] is 3");
    s = spec_of("{\"layers\": [2, 2]}");
    cr_assert_eq(api_dataset_fits(&d, &s, &err), -1);
    cr_assert_eq(err.status, 409u);
    cr_assert_str_eq(err.detail,
                     "y: labels go up to 2 but network.layers[1] is 2 (one output per class)");
    cr_assert_null(api_targets(&d, 2, &err));
    cr_assert_eq(err.status, 409u);
    cr_assert_str_eq(err.detail, "y[1]: label 2 does not fit a network with 2 outputs");

    /* one sigmoid output: labels 0/1 are the targets */
    int32_t bin[3] = {1, 0, 1};
    api_dataset b = {.rows = 3, .features = 2, .outputs = 2, .X = X, .labels = bin};
    s = spec_of("{\"layers\": [2, 1]}");
    cr_assert_eq(api_dataset_fits(&b, &s, &err), 0, "%s", err.detail);
    T = api_targets(&b, 1, &err);
    cr_assert_eq(T[0], 1.0);
    cr_assert_eq(T[1], 0.0);
    cr_assert_eq(T[2], 1.0);
    free(T);

    double Y[6] = {0.1, 0.9, 1, 0, 0.3, 0.7};
    api_dataset y = {.rows = 3, .features = 2, .outputs = 2, .X = X, .Y = Y};
    s = spec_of("{\"layers\": [2, 3]}");
    cr_assert_eq(api_dataset_fits(&y, &s, &err), -1);
    cr_assert_str_eq(err.detail, "Y: has 2 columns but network.layers[1] is 3");
    cr_assert_null(api_targets(&y, 3, &err));
    cr_assert_eq(err.status, 409u);
    T = api_targets(&y, 2, &err);
    cr_assert_arr_eq(T, Y, sizeof Y);
    free(T);
}

/* ---- output ---- */

Test(output, round_trip_17_digits)
{
    bp_spec s = spec_of("{\"layers\": [9, 50]}");
    int64_t n = bp_param_count(&s);
    double *t = malloc((size_t)n * sizeof *t);
    bp_rng rng;
    bp_rng_seed(&rng, 3);
    for (int64_t i = 0; i < n; i++) {
        uint64_t bits = bp_rng_next(&rng);
        double v;
        memcpy(&v, &bits, sizeof v);
        t[i] = isfinite(v) ? v : bp_rng_uniform(&rng) / 3.0;
    }
    double special[] = {0.1, 1.0 / 3.0, 5e-324, DBL_MAX, -0.0, 2.2250738585072014e-308, 1e22,
                        123456789.0, -DBL_MIN, 0.0};
    memcpy(t, special, sizeof special);
    json_t *j = api_theta_json(t, &s);
    cr_assert(j);
    size_t len;
    char *txt = api_dump(j, &len);
    json_decref(j);
    cr_assert_eq(strlen(txt), len);
    api_error err = {0};
    json_t *back = api_parse(txt, len, &err);
    cr_assert(back, "%s", err.detail);
    double *t2 = api_theta_parse(back, &s, "theta", &err);
    cr_assert(t2, "%s", err.detail);
    for (int64_t i = 0; i < n; i++)
        assert_same_double(t2[i], t[i], "round trip");
    free(t2);
    json_decref(back);
    free(txt);

    /* NaN cannot be printed: the codec refuses instead of printing garbage */
    t[5] = NAN;
    cr_assert_null(api_theta_json(t, &s));
    free(t);
}

/* A wide first row over many short lines: the rows are sized by the bytes too, so the parse
 * allocates a few bytes per body byte instead of asking for terabytes (which the plain build
 * answered 413 and the ASan build died of). Blank lines are skipped: one row stays. */
Test(dataset, csv_wide_first_row_over_many_lines_is_sized_by_the_bytes)
{
    enum { F = 60000, LINES = 20000000 };
    size_t len = 2 * F + LINES;
    char *t = malloc(len + 1);
    cr_assert(t);
    for (int i = 0; i < F; i++) {
        t[2 * i] = i ? '1' : '0';
        t[2 * i + 1] = i + 1 < F ? ',' : '\n';
    }
    memset(t + 2 * F, '\n', LINES);
    t[len] = '\0';
    api_dataset d = {0};
    api_error err = {0};
    cr_assert_eq(api_dataset_parse_csv(&d, t, len, &err), 0, "%d %s", err.status, err.detail);
    cr_expect_eq(d.rows, 1);
    cr_expect_eq(d.features, F - 1);
    cr_expect_eq(d.X[F - 2], 1.0);
    api_dataset_clear(&d);
    free(t);
}

/* A NUL byte after a number is refused by both JSON readers alike (jansson's number reader
 * stopped at it and the tree reader took "1\0" for 1, while the fast reader refused). */
Test(dataset, nul_after_a_number_is_refused_by_both_json_readers)
{
    const char t[] = "{\"X\": [[1\0]], \"y\": [0]}";
    api_error err = {0};
    api_dataset d = {0};
    cr_expect_eq(api_dataset_parse_json_text(&d, t, sizeof t - 1, &err), -1);
    json_t *j = api_parse(t, sizeof t - 1, &err);
    cr_expect_null(j, "the tree reader accepted a NUL after a number");
    json_decref(j);
    cr_expect_eq(err.status, 400);
    cr_expect(strstr(err.detail, "NUL"), "%s", err.detail);
    const char csv[] = "0,1\0\n";
    cr_expect_eq(api_dataset_parse_csv(&d, csv, sizeof csv - 1, &err), -1);
}
