/* http_math.c — POST /v1/cost, /v1/gradient and /v1/gradient/check against the real server:
 * the cost of small nets equals a hand-written forward pass (written out here, sample by
 * sample, independent of the core), the gradient equals the core's bp_cost_grad in-process
 * and centered finite differences of /v1/cost itself, the gradient check agrees, every class
 * of bad request gets its documented 4xx problem+json naming the field while the server keeps
 * serving, and /healthz stays fast while big gradients compute on the math pool.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "tests/harness.h"

/* ------------------------------------------------------------------ helpers */

static json_t *matrix(const double *v, int64_t rows, int64_t cols)
{
    json_t *m = json_array();
    for (int64_t i = 0; i < rows; i++) {
        json_t *row = json_array();
        for (int64_t j = 0; j < cols; j++)
            json_array_append_new(row, json_real(v[i * cols + j]));
        json_array_append_new(m, row);
    }
    return m;
}

static json_t *labels_json(const int32_t *y, int64_t m)
{
    json_t *a = json_array();
    for (int64_t i = 0; i < m; i++)
        json_array_append_new(a, json_integer(y[i]));
    return a;
}

/* POSTs body (stolen) and returns the parsed answer (new), asserting status 200. */
static json_t *post_ok(const srv *s, const char *path, json_t *body)
{
    char *text = api_dump(body, NULL);
    json_decref(body);
    resp r;
    cr_assert_eq(http_post_json(s, path, text, &r), 0);
    cr_assert_eq(r.status, 200, "%s: %ld %s", path, r.status, r.body);
    json_t *j = resp_json(&r);
    cr_assert(j);
    resp_free(&r);
    free(text);
    return j;
}

static double post_cost(const srv *s, json_t *body)
{
    json_t *j = post_ok(s, "/v1/cost", body);
    double c = json_number_value(json_object_get(j, "cost"));
    json_decref(j);
    return c;
}

/* ------------------------------------------------------------------ the cost by hand */

/* J written out sample by sample: sigmoid hidden units; output sigmoid (logistic cost),
 * softmax (cross-entropy) or linear (squared error / 2m); plus lambda/2m Σ non-bias θ².
 * theta row-major per layer, bias column first. */
static double cost_by_hand(const bp_spec *s, const double *theta, const double *X,
                           const double *Y, int m, double lambda)
{
    double J = 0;
    for (int i = 0; i < m; i++) {
        double a[64], z[64];
        int n = s->sizes[0];
        for (int k = 0; k < n; k++)
            a[k] = X[i * n + k];
        const double *t = theta;
        for (int l = 0; l + 1 < s->n_layers; l++) {
            int out = s->sizes[l + 1];
            for (int j = 0; j < out; j++) {
                z[j] = t[j * (n + 1)];
                for (int k = 0; k < n; k++)
                    z[j] += t[j * (n + 1) + 1 + k] * a[k];
            }
            t += out * (n + 1);
            n = out;
            int last = l + 2 == s->n_layers;
            for (int j = 0; j < n; j++)
                a[j] = last && s->output != BP_OUT_SIGMOID ? z[j] : 1 / (1 + exp(-z[j]));
        }
        const double *y = Y + i * n;
        if (s->output == BP_OUT_SIGMOID) {
            for (int k = 0; k < n; k++)
                J -= y[k] * log(a[k]) + (1 - y[k]) * log(1 - a[k]);
        } else if (s->output == BP_OUT_SOFTMAX) {
            double zmax = a[0], sum = 0;
            for (int k = 1; k < n; k++)
                zmax = a[k] > zmax ? a[k] : zmax;
            for (int k = 0; k < n; k++)
                sum += exp(a[k] - zmax);
            for (int k = 0; k < n; k++)
                J -= y[k] * (a[k] - zmax - log(sum));
        } else {
            for (int k = 0; k < n; k++)
                J += 0.5 * (a[k] - y[k]) * (a[k] - y[k]);
        }
    }
    J /= m;
    double reg = 0;
    const double *t = theta;
    for (int l = 0; l + 1 < s->n_layers; l++) {
        int in = s->sizes[l], out = s->sizes[l + 1];
        for (int j = 0; j < out; j++)
            for (int k = 1; k <= in; k++)
                reg += t[j * (in + 1) + k] * t[j * (in + 1) + k];
        t += out * (in + 1);
    }
    return J + lambda / (2.0 * m) * reg;
}

Test(math, cost_of_tiny_nets_by_hand, .timeout = 30)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);

    /* the 2-2-1 net of the README: J computed with pencil-and-paper formulas */
    resp r;
    const char *readme = "{\"network\": {\"layers\": [2, 2, 1]}, \"theta\": [[[0.1, 0.2, 0.3], "
                         "[0.4, 0.5, 0.6]], [[0.7, 0.8, 0.9]]], \"X\": [[1, 2], [3, 4]], "
                         "\"y\": [0, 1]}";
    cr_assert_eq(http_post_json(&s, "/v1/cost", readme, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *j = resp_json(&r);
    double got = json_number_value(json_object_get(j, "cost"));
    json_decref(j);
    resp_free(&r);
    double g = 0;
    {
        double x[2][2] = {{1, 2}, {3, 4}}, y[2] = {0, 1};
        for (int i = 0; i < 2; i++) {
            double a1 = 1 / (1 + exp(-(0.1 + 0.2 * x[i][0] + 0.3 * x[i][1])));
            double a2 = 1 / (1 + exp(-(0.4 + 0.5 * x[i][0] + 0.6 * x[i][1])));
            double h = 1 / (1 + exp(-(0.7 + 0.8 * a1 + 0.9 * a2)));
            g += -(y[i] * log(h) + (1 - y[i]) * log(1 - h)) / 2;
        }
    }
    cr_assert(fabs(got - g) <= 1e-14 * g, "%.17g vs %.17g", got, g);

    /* 3-4-2 with every output kind, with and without lambda */
    const bp_out outs[] = {BP_OUT_SIGMOID, BP_OUT_SOFTMAX, BP_OUT_LINEAR};
    for (int o = 0; o < 3; o++) {
        for (int withl = 0; withl < 2; withl++) {
            bp_spec spec = {.n_layers = 3, .sizes = {3, 4, 2}, .output = outs[o]};
            double theta[4 * 4 + 2 * 5], X[5 * 3], Y[5 * 2];
            int32_t y[5] = {0, 1, 1, 0, 1};
            for (int i = 0; i < 26; i++)
                theta[i] = sin(1.0 + i) * 0.9;
            for (int i = 0; i < 15; i++)
                X[i] = cos(0.3 * i) * 2;
            for (int i = 0; i < 5; i++) {
                Y[2 * i] = y[i] == 0;
                Y[2 * i + 1] = y[i] == 1;
                if (outs[o] == BP_OUT_LINEAR) { /* regression targets */
                    Y[2 * i] = 0.25 * i - 0.5;
                    Y[2 * i + 1] = sin(i);
                }
            }
            double lambda = withl ? 0.75 : 0;
            json_t *body = json_pack("{s:o, s:o, s:f, s:o, s:o}", "network",
                                     api_spec_json(&spec), "theta", api_theta_json(theta, &spec),
                                     "lambda", lambda, "X", matrix(X, 5, 3),
                                     outs[o] == BP_OUT_LINEAR ? "Y" : "y",
                                     outs[o] == BP_OUT_LINEAR ? matrix(Y, 5, 2) : labels_json(y, 5));
            double c = post_cost(&s, body);
            double want = cost_by_hand(&spec, theta, X, Y, 5, lambda);
            cr_assert(fabs(c - want) <= 1e-13 * fabs(want), "%s lambda %g: %.17g vs %.17g",
                      bp_out_name(outs[o]), lambda, c, want);
        }
    }
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ------------------------------------------------------------------ gradients */

typedef struct {
    api_dataset d; /* first rows of digits */
    bp_spec spec;
    double *theta;
    int64_t P;
} fixture;

static void fixture_make(fixture *f, int64_t rows, int hidden, uint64_t seed)
{
    test_digits_load(&f->d);
    f->d.rows = rows;
    f->spec = (bp_spec){.n_layers = 3, .sizes = {64, hidden, 10}};
    f->P = bp_param_count(&f->spec);
    f->theta = malloc((size_t)f->P * sizeof *f->theta);
    bp_rng rng;
    bp_rng_seed(&rng, seed);
    bp_init_weights(f->theta, &f->spec, 0.0, &rng);
}

static void fixture_free(fixture *f)
{
    api_dataset_clear(&f->d);
    free(f->theta);
}

/* {"network","theta","lambda","X","y"} for the fixture (theta may be NULL: left out) */
static json_t *fixture_body(const fixture *f, const double *theta, double lambda)
{
    json_t *b = json_pack("{s:o, s:f, s:o, s:o}", "network", api_spec_json(&f->spec), "lambda",
                          lambda, "X", matrix(f->d.X, f->d.rows, f->d.features), "y",
                          labels_json(f->d.labels, f->d.rows));
    if (theta)
        json_object_set_new(b, "theta", api_theta_json(theta, &f->spec));
    return b;
}

Test(math, gradient_is_the_cores_and_finite_differences, .timeout = 60)
{
    fixture f;
    fixture_make(&f, 120, 7, 3);
    const double lambda = 1.5;
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    json_t *ans = post_ok(&s, "/v1/gradient", fixture_body(&f, f.theta, lambda));
    api_error err;
    double *grad = api_theta_parse(json_object_get(ans, "gradients"), &f.spec, "gradients", &err);
    cr_assert(grad, "%s", err.detail);
    double cost = json_number_value(json_object_get(ans, "cost"));
    json_decref(ans);

    /* the core in this process */
    double *T = api_targets(&f.d, 10, &err);
    bp_error be;
    bp_work *w = bp_work_new(&f.spec, f.d.rows, &be);
    double *core = calloc((size_t)f.P, sizeof *core);
    double core_cost = bp_cost_grad(core, w, f.d.X, T, f.theta, f.d.rows, lambda, f.d.rows);
    cr_assert(fabs(cost - core_cost) <= 1e-13 * core_cost, "%.17g vs %.17g", cost, core_cost);
    double gmax = 0;
    for (int64_t i = 0; i < f.P; i++)
        gmax = fmax(gmax, fabs(core[i]));
    for (int64_t i = 0; i < f.P; i++)
        cr_assert(fabs(grad[i] - core[i]) <= 1e-12 * gmax, "D[%lld]: %.17g vs %.17g",
                  (long long)i, grad[i], core[i]);

    /* centered differences of the server's own /v1/cost, in both layers, bias and not */
    const int64_t probe[] = {0, 1, 64, 200, f.P - 80, f.P - 10, f.P - 1};
    const double eps = 1e-5;
    for (size_t k = 0; k < sizeof probe / sizeof *probe; k++) {
        int64_t i = probe[k];
        double keep = f.theta[i];
        f.theta[i] = keep + eps;
        double jp = post_cost(&s, fixture_body(&f, f.theta, lambda));
        f.theta[i] = keep - eps;
        double jm = post_cost(&s, fixture_body(&f, f.theta, lambda));
        f.theta[i] = keep;
        double fd = (jp - jm) / (2 * eps);
        cr_assert(fabs(fd - grad[i]) <= 1e-8 + 1e-6 * fabs(grad[i]),
                  "theta[%lld]: finite difference %.12g, gradient %.12g", (long long)i, fd,
                  grad[i]);
    }
    srv_stop(&s);
    srv_cleanup(&s);
    bp_work_free(w);
    free(core);
    free(T);
    free(grad);
    fixture_free(&f);
}

Test(math, gradient_check, .timeout = 60)
{
    fixture f;
    fixture_make(&f, 40, 5, 42); /* seed 42: the check's default */
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);

    /* without theta: weights from the seed, the same bp_init_weights draws as here */
    json_t *ans = post_ok(&s, "/v1/gradient/check", fixture_body(&f, NULL, 0.5));
    double rel = json_number_value(json_object_get(ans, "relative_difference"));
    double mad = json_number_value(json_object_get(ans, "max_abs_difference"));
    cr_assert(rel > 0 && rel < 1e-7, "relative difference %g", rel);
    cr_assert(mad >= 0 && mad < 1e-7, "max abs difference %g", mad);
    api_error err;
    double *an = api_theta_parse(json_object_get(ans, "analytic"), &f.spec, "analytic", &err);
    double *nu = api_theta_parse(json_object_get(ans, "numerical"), &f.spec, "numerical", &err);
    cr_assert(an && nu, "%s", err.detail);
    json_decref(ans);
    json_t *g = post_ok(&s, "/v1/gradient", fixture_body(&f, f.theta, 0.5));
    double *grad = api_theta_parse(json_object_get(g, "gradients"), &f.spec, "gradients", &err);
    json_decref(g);
    double worst = 0, num = 0, den = 0;
    for (int64_t i = 0; i < f.P; i++) {
        cr_assert(fabs(an[i] - grad[i]) <= 1e-12 + 1e-10 * fabs(grad[i]), "analytic[%lld]",
                  (long long)i);
        worst = fmax(worst, fabs(nu[i] - an[i]));
        num += (nu[i] - an[i]) * (nu[i] - an[i]);
        den += (nu[i] + an[i]) * (nu[i] + an[i]);
    }
    cr_assert(fabs(worst - mad) <= 1e-15, "max abs difference %g, recomputed %g", mad, worst);
    cr_assert(fabs(sqrt(num) / sqrt(den) - rel) <= 1e-6 * rel, "relative difference");

    /* a different seed gives different weights, an explicit theta and epsilon are used */
    json_t *b = fixture_body(&f, NULL, 0.5);
    json_object_set_new(b, "seed", json_integer(7));
    json_t *other = post_ok(&s, "/v1/gradient/check", b);
    double *an7 = api_theta_parse(json_object_get(other, "analytic"), &f.spec, "a", &err);
    cr_assert(memcmp(an7, an, (size_t)f.P * sizeof *an) != 0);
    json_decref(other);
    b = fixture_body(&f, f.theta, 0.5);
    json_object_set_new(b, "epsilon", json_real(1e-3));
    other = post_ok(&s, "/v1/gradient/check", b);
    cr_assert_lt(json_number_value(json_object_get(other, "relative_difference")), 1e-5);
    json_decref(other);

    resp r;
    const char *bad[][2] = {
        {"{\"network\": {\"layers\": [1, 1]}, \"X\": [[1]], \"y\": [1], \"epsilon\": 0}", "epsilon"},
        {"{\"network\": {\"layers\": [1, 1]}, \"X\": [[1]], \"y\": [1], \"epsilon\": 1}", "epsilon"},
        {"{\"network\": {\"layers\": [1, 1]}, \"X\": [[1]], \"y\": [1], \"seed\": -1}", "seed"},
        {"{\"network\": {\"layers\": [1, 1]}, \"X\": [[1]], \"y\": [1], \"seed\": \"a\"}", "seed"},
        {"{\"network\": {\"layers\": [200, 100]}, \"X\": [[1]], \"y\": [1]}", "network"},
        {"{\"network\": {\"layers\": [1, 1]}, \"X\": [[1]], \"y\": [1], \"epsilon\": 1e-4, "
         "\"seed\": 1, \"extra\": 1}", "unknown key \"extra\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_eq(http_post_json(&s, "/v1/gradient/check", bad[i][0], &r), 0);
        expect_problem(&r, 400, bad[i][1]);
        resp_free(&r);
    }
    /* epsilon and seed belong to the check only */
    cr_assert_eq(http_post_json(&s, "/v1/cost", "{\"network\": {\"layers\": [1, 1]}, \"theta\": "
                                                "[[[0, 1]]], \"X\": [[1]], \"y\": [1], \"seed\": 3}",
                                &r),
                 0);
    expect_problem(&r, 400, "unknown key \"seed\"");
    resp_free(&r);

    srv_stop(&s);
    srv_cleanup(&s);
    free(an);
    free(an7);
    free(nu);
    free(grad);
    fixture_free(&f);
}

/* ------------------------------------------------------------------ errors */

Test(math, every_error_class_is_a_named_4xx, .timeout = 60)
{
#define NET "\"network\": {\"layers\": [2, 1]}"
#define TH "\"theta\": [[[0.1, 0.2, 0.3]]]"
#define XY "\"X\": [[1, 2], [3, 4]], \"y\": [0, 1]"
    struct {
        const char *body;
        long status;
        const char *needle;
    } cases[] = {
        {"{" NET ", " TH ", " XY, 400, "invalid JSON"},
        {"{" NET ", " TH ", " XY "} x", 400, "invalid JSON"},
        {"{" NET ", " TH ", " XY "}}", 400, "invalid JSON"},
        {"{" NET ", " NET ", " TH ", " XY "}", 400, "network: invalid JSON at line 1 column"},
        {"{" NET ", " TH ", " XY ", \"foo\": 1}", 400, "body: unknown key \"foo\""},
        {"{\"network\": {\"layers\": [2, 1], \"bias\": true}, " TH ", " XY "}", 400,
         "network: unknown key \"bias\""},
        {"{" NET ", " TH ", " XY ", \"lambda\": \"1\"}", 400, "lambda: must be a number >= 0"},
        {"{" NET ", " TH ", " XY ", \"lambda\": -1}", 400, "lambda: must be a number >= 0"},
        {"{" NET ", \"theta\": \"zero\", " XY "}", 400, "theta: expected a list of 1 matrix"},
        {"{\"network\": [2, 1], " TH ", " XY "}", 400, "network: expected an object"},
        {"{" NET ", " TH ", \"X\": \"x\", \"y\": [0]}", 400, "X: expected a non-empty array"},
        {"{" NET ", " TH ", \"dataset\": 5}", 400, "dataset: expected a dataset id"},
        {"{" NET ", \"theta\": [[[0.1, 0.2]]], " XY "}", 400,
         "theta[0]: expected 1 rows of 3 numbers, row 0 has 2"},
        {"{" NET ", \"theta\": [[[0.1, 0.2, 0.3], [1, 2, 3]]], " XY "}", 400,
         "theta[0]: expected 1 rows of 3 numbers, found 2 rows"},
        {"{" NET ", \"theta\": [[[0.1, NaN, 0.3]]], " XY "}", 400, "theta[0][0][1]"},
        {"{" NET ", \"theta\": [[[0.1, Infinity, 0.3]]], " XY "}", 400, "theta[0][0][1]"},
        {"{" NET ", \"theta\": [[[0.1, -Infinity, 0.3]]], " XY "}", 400, "theta[0][0][1]"},
        {"{" NET ", \"theta\": [[[0.1, 1e999, 0.3]]], " XY "}", 400,
         "theta[0][0][1]: invalid JSON at line 1 column 54: number out of range"},
        {"{" NET ", " TH ", \"X\": [[1, 2], [3, 1e999]], \"y\": [0, 1]}", 400, "X[1][1]"},
        {"{\"network\": {\"layers\": [2, -1]}, " TH ", " XY "}", 400,
         "network.layers[1]: must be an integer in 1..65536"},
        {"{\"network\": {\"layers\": [0, 1]}, " TH ", " XY "}", 400,
         "network.layers[0]: must be an integer in 1..65536"},
        {"{\"network\": {\"layers\": [2, 1000000]}, " TH ", " XY "}", 400,
         "network.layers[1]: must be an integer in 1..65536"},
        {"{\"network\": {\"layers\": [65536, 65536, 65536]}, " TH ", " XY "}", 400,
         "network.layers: 8590065664 parameters exceed the limit"},
        {"{\"network\": {\"layers\": [2]}, " TH ", " XY "}", 400, "network.layers"},
        {"{\"network\": {\"layers\": [2, 1], \"activation\": \"gelu\"}, " TH ", " XY "}", 400,
         "network.activation"},
        {"{\"network\": {\"layers\": [3, 1]}, \"theta\": [[[0.1, 0.2, 0.3, 0.4]]], " XY "}", 409,
         "X: rows have 2 features but network.layers[0] is 3"},
        {"{" NET ", " TH ", \"X\": [[1, 2], [3, 4]], \"y\": [0, 2]}", 409, "y: labels go up to 2"},
        {"{\"network\": {\"layers\": [2, 2]}, \"theta\": [[[0, 1, 2], [1, 2, 3]]], "
         "\"X\": [[1, 2]], \"Y\": [[1, 0, 0]]}", 409, "Y: has 3 columns but network.layers[1] is 2"},
        {"{" NET ", " TH ", \"X\": [], \"y\": []}", 400, "X: expected a non-empty array of rows"},
        {"{" NET ", " TH ", \"X\": [[1, 2]], \"y\": [-1]}", 400, "y[0]: must be an integer"},
        {"{" NET ", " TH ", \"X\": [[1, 2]], \"y\": [0, 1]}", 400, "y: expected 1 labels"},
        {"{" NET ", " TH ", \"X\": [[1, 2]]}", 400, "y: missing"},
        {"{" NET ", " TH ", \"X\": [[1, 2]], \"y\": [0], \"Y\": [[1]]}", 400,
         "y, Y: give exactly one"},
        {"{" NET ", " TH ", \"dataset\": \"ds_000000000000000000000000\"}", 404,
         "dataset: no dataset \"ds_000000000000000000000000\""},
        {"{" NET ", " TH ", \"dataset\": \"ds_000000000000000000000000\", " XY "}", 400,
         "dataset: give either"},
        {"{" NET ", " TH "}", 400, "dataset: missing"},
        {"{" NET ", " XY "}", 400, "theta: missing"},
        {"{" TH ", " XY "}", 400, "network: missing"},
        {"[1, 2]", 400, "body: expected a JSON object"},
        {"", 400, "body: empty"},
    };
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    resp r;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (int k = 0; k < 2; k++) { /* the same on /v1/cost and /v1/gradient */
            cr_assert_eq(http_post_json(&s, k ? "/v1/gradient" : "/v1/cost", cases[i].body, &r),
                         0);
            expect_problem(&r, cases[i].status, cases[i].needle);
            resp_free(&r);
        }
        cr_assert_eq(http_get(&s, "/healthz", &r), 0);
        cr_assert_eq(r.status, 200);
        resp_free(&r);
    }

    /* 100 levels of nesting */
    char deep[1000] = "{" NET ", " TH ", \"X\": ";
    for (int i = 0; i < 100; i++)
        strcat(deep, "[");
    for (int i = 0; i < 100; i++)
        strcat(deep, "]");
    strcat(deep, ", \"y\": [0]}");
    cr_assert_eq(http_post_json(&s, "/v1/gradient", deep, &r), 0);
    expect_problem(&r, 400, "nested deeper than 64 levels");
    resp_free(&r);

    /* wrong Content-Type, wrong method */
    const char *ok = "{" NET ", " TH ", " XY "}";
    cr_assert_eq(http_req(&s, "POST", "/v1/cost", "text/csv", ok, strlen(ok), NULL, &r), 0);
    expect_problem(&r, 415, "");
    resp_free(&r);
    cr_assert_eq(http_req(&s, "POST", "/v1/gradient", "text/plain", ok, strlen(ok), NULL, &r), 0);
    expect_problem(&r, 415, "");
    resp_free(&r);
    cr_assert_eq(http_get(&s, "/v1/gradient", &r), 0);
    cr_assert_eq(r.status, 405);
    char allow[64];
    cr_assert_eq(resp_header(&r, "Allow", allow, sizeof allow), 0);
    cr_assert(strstr(allow, "POST") && !strstr(allow, "GET"), "Allow: %s", allow);
    resp_free(&r);

    /* and the valid request still works */
    cr_assert_eq(http_post_json(&s, "/v1/cost", ok, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
#undef NET
#undef TH
#undef XY
}

/* ------------------------------------------------------------------ /healthz under load */

typedef struct {
    const srv *s;
    const char *body;
    long status;
    double done;
} bg_call;

static void *bg_gradient(void *arg)
{
    bg_call *c = arg;
    resp r;
    if (http_post_json(c->s, "/v1/gradient", c->body, &r) == 0)
        c->status = r.status;
    resp_free(&r);
    c->done = test_now_s();
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

Test(math, healthz_stays_fast_during_big_gradients, .timeout = 180)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* 20000 x 784 pixels as CSV, labels 0..9 */
    const int64_t m = 20000, n = 784;
    size_t cap = (size_t)(m * (n + 1) * 4 + 16), o = 0;
    char *csv = malloc(cap);
    bp_rng rng;
    bp_rng_seed(&rng, 9);
    for (int64_t i = 0; i < m; i++) {
        o += (size_t)snprintf(csv + o, cap - o, "%d", (int)(i % 10));
        for (int64_t j = 0; j < n; j++) {
            uint64_t v = bp_rng_next(&rng) % 8;
            o += (size_t)snprintf(csv + o, cap - o, v < 6 ? ",0" : ",0.%d", (int)v);
        }
        csv[o++] = '\n';
    }
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    resp r;
    char id[64];
    cr_assert_eq(post_for_id(&s, "/v1/datasets", "text/csv", csv, o, NULL, id, sizeof id), 201);
    free(csv);

    bp_spec spec = {.n_layers = 3, .sizes = {784, 256, 10}};
    int64_t P = bp_param_count(&spec);
    double *theta = malloc((size_t)P * sizeof *theta);
    bp_init_weights(theta, &spec, 0.0, &rng);
    json_t *body = json_pack("{s:o, s:o, s:f, s:o}", "network", api_spec_json(&spec), "theta",
                             api_theta_json(theta, &spec), "lambda", 1.0, "dataset",
                             json_string(id));
    char *text = api_dump(body, NULL);
    json_decref(body);

    /* more gradients than math threads, so some wait in the queue too */
    enum { N_CALLS = 4 };
    bg_call calls[N_CALLS];
    pthread_t th[N_CALLS];
    double t0 = test_now_s();
    for (int i = 0; i < N_CALLS; i++) {
        calls[i] = (bg_call){.s = &s, .body = text};
        pthread_create(&th[i], NULL, bg_gradient, &calls[i]);
    }
    double lat[2000];
    int n_lat = 0;
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    for (;;) {
        int running = 0;
        for (int i = 0; i < N_CALLS; i++)
            running += calls[i].done == 0;
        if (!running || n_lat == 2000)
            break;
        double a = test_now_s();
        cr_assert_eq(http_get(&s, "/healthz", &r), 0);
        cr_assert_eq(r.status, 200);
        resp_free(&r);
        lat[n_lat++] = (test_now_s() - a) * 1e3;
        nanosleep(&pause, NULL);
    }
    double last = 0;
    for (int i = 0; i < N_CALLS; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(calls[i].status, 200);
        last = fmax(last, calls[i].done);
    }
    qsort(lat, (size_t)n_lat, sizeof *lat, cmp_double);
    cr_log_info("%d gradients of 20000x784 on 784-256-10 took %.2f s; /healthz during them: "
                "%d calls, p50 %.2f ms, max %.2f ms",
                N_CALLS, last - t0, n_lat, lat[n_lat / 2], lat[n_lat - 1]);
    cr_assert_geq(n_lat, 5, "the gradients finished before /healthz was measured (%.2f s)",
                  last - t0);
    cr_assert_lt(lat[n_lat / 2], 50.0, "median /healthz %.1f ms during gradients",
                 lat[n_lat / 2]);
    cr_assert_lt(lat[n_lat - 1], 250.0, "slowest /healthz %.1f ms during gradients",
                 lat[n_lat - 1]);
    srv_stop(&s);
    srv_cleanup(&s);
    free(text);
    free(theta);
}
