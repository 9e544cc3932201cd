/* http_evaluate.c — POST /v1/jobs/{id}/evaluate, training.standardize and "from_job" against
 * the real server over HTTP. Every figure the server reports is recomputed here from the
 * served weights with this file's own loops (forward pass, confusion, precision / recall / F1,
 * ROC AUC by counting pairs, MSE / MAE / R², the standardization's mean and sd), never with the
 * server's code.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "tests/harness.h"

#define MAXU 64

/* The served weights (GET …/weights) parsed: layers, output kind, theta. */
typedef struct {
    int L, sizes[8];
    char out[16], act[16];
    double *theta;
    double mean[MAXU], sd[MAXU];
    int standardized;
} model;

static void model_get(const srv *s, const char *job, model *m)
{
    memset(m, 0, sizeof *m);
    json_t *w = get_json(s, "/v1/jobs/%s/weights", job);
    json_t *net = json_object_get(w, "network"), *layers = json_object_get(net, "layers");
    m->L = (int)json_array_size(layers);
    for (int l = 0; l < m->L; l++)
        m->sizes[l] = (int)json_integer_value(json_array_get(layers, (size_t)l));
    snprintf(m->out, sizeof m->out, "%s", json_string_value(json_object_get(net, "output")));
    snprintf(m->act, sizeof m->act, "%s", json_string_value(json_object_get(net, "activation")));
    bp_spec spec;
    api_error e = {0};
    cr_assert_eq(api_spec_parse(&spec, net, "network", &e), 0);
    m->theta = api_theta_parse(json_object_get(w, "theta"), &spec, "theta", &e);
    cr_assert_not_null(m->theta, "%s", e.detail);
    json_t *st = json_object_get(w, "standardize");
    if (st) {
        m->standardized = 1;
        for (int k = 0; k < m->sizes[0]; k++) {
            m->mean[k] = json_number_value(json_array_get(json_object_get(st, "mean"), (size_t)k));
            m->sd[k] = json_number_value(json_array_get(json_object_get(st, "std"), (size_t)k));
        }
    }
    json_decref(w);
}

/* a (s_L) = the model's output for one raw input x: standardized when the model is, then the
 * layers in plain loops. */
static void forward(double *a_out, const model *m, const double *x_raw)
{
    double a[MAXU], z[MAXU];
    for (int k = 0; k < m->sizes[0]; k++)
        a[k] = m->standardized ? (x_raw[k] - m->mean[k]) / m->sd[k] : x_raw[k];
    const double *t = m->theta;
    for (int l = 0; l + 1 < m->L; l++) {
        int si = m->sizes[l], so = m->sizes[l + 1];
        for (int j = 0; j < so; j++) {
            z[j] = t[j * (si + 1)];
            for (int k = 0; k < si; k++)
                z[j] += t[j * (si + 1) + 1 + k] * a[k];
        }
        t += so * (si + 1);
        int last = l + 2 == m->L;
        const char *g = last ? m->out : m->act;
        double sum = 0;
        for (int j = 0; j < so; j++)
            sum += strcmp(g, "softmax") == 0 ? exp(z[j]) : 0;
        for (int j = 0; j < so; j++)
            a[j] = strcmp(g, "sigmoid") == 0   ? 1 / (1 + exp(-z[j]))
                   : strcmp(g, "softmax") == 0 ? exp(z[j]) / sum
                   : strcmp(g, "tanh") == 0    ? tanh(z[j])
                   : strcmp(g, "relu") == 0    ? (z[j] > 0 ? z[j] : 0)
                                               : z[j];
    }
    memcpy(a_out, a, sizeof(double) * (size_t)m->sizes[m->L - 1]);
}

/* λ/(2m) Σ non-bias θ². */
static double reg_term(const model *m, double lambda, int64_t rows)
{
    double sq = 0;
    const double *t = m->theta;
    for (int l = 0; l + 1 < m->L; l++) {
        int si = m->sizes[l], so = m->sizes[l + 1];
        for (int j = 0; j < so; j++)
            for (int k = 1; k <= si; k++)
                sq += t[j * (si + 1) + k] * t[j * (si + 1) + k];
        t += so * (si + 1);
    }
    return lambda / (2.0 * (double)rows) * sq;
}

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    cr_assert(json_is_number(v), "%s is not a number", key);
    return json_number_value(v);
}

static void near(double got, double want, const char *what)
{
    cr_assert(fabs(got - want) <= 1e-9 * fmax(1.0, fabs(want)), "%s: server %.17g, test %.17g",
              what, got, want);
}

/* POST path with a JSON body, asserting the status; the answer (new). */
static json_t *post_json(const srv *s, const char *path, const char *body, long status)
{
    resp r;
    cr_assert_eq(http_post_json(s, path, body, &r), 0);
    cr_assert_eq(r.status, status, "POST %s: %ld %s", path, r.status, r.body);
    json_t *j = resp_json(&r);
    resp_free(&r);
    return j;
}

/* POST path expecting a problem whose detail starts with prefix. */
static void post_problem(const srv *s, const char *path, const char *body, long status,
                         const char *prefix)
{
    resp r;
    cr_assert_eq(http_post_json(s, path, body, &r), 0);
    char *d = problem_detail(&r, status);
    cr_assert(strncmp(d, prefix, strlen(prefix)) == 0, "%s: detail \"%s\" does not start with "
              "\"%s\"", path, d, prefix);
    free(d);
    resp_free(&r);
}

/* Uploads a JSON dataset, returns its id in id. */
static void upload_json(const srv *s, const char *body, char *id, size_t len)
{
    long st = post_for_id(s, "/v1/datasets", "application/json", body, strlen(body), NULL, id,
                          len);
    cr_assert_eq(st, 201);
}

/* Submits and waits for success; the job id into id. */
static void train(const srv *s, const char *body, char *id, size_t len)
{
    submit_job(s, NULL, body, id, len);
    json_t *j = wait_job(s, id, NULL, 120);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "succeeded", "%s",
                     json_string_value(json_object_get(j, "error")));
    json_decref(j);
}

/* A small synthetic dataset: rows of n features x (mixed scales, feature 2 constant when
 * n > 2), a binary label by a noisy rule, and a regression target; as JSON text with "y" or
 * "Y" (kind 'y' labels, 'Y' the target). Also fills X, y, t. */
static char *synth(int rows, int n, char kind, double *X, int *y, double *t)
{
    size_t cap = (size_t)rows * (size_t)n * 32 + 4096, len = 0;
    char *b = malloc(cap);
    uint64_t u = 88172645463325252ULL;
    len += (size_t)snprintf(b + len, cap - len, "{\"X\": [");
    for (int i = 0; i < rows; i++) {
        for (int k = 0; k < n; k++) {
            u ^= u << 13, u ^= u >> 7, u ^= u << 17;
            double r = (double)(u >> 11) / 9007199254740992.0;
            X[i * n + k] = k == 2 ? 7.5 : (r - 0.3) * (k == 0 ? 100.0 : 1.0) + k;
        }
        u ^= u << 13, u ^= u >> 7, u ^= u << 17;
        double noise = (double)(u >> 11) / 9007199254740992.0 - 0.5;
        y[i] = X[i * n] / 50.0 - X[i * n + 1] + 0.8 + noise * 0.8 > 0;
        t[i] = 0.03 * X[i * n] - 2.0 * X[i * n + 1] + 0.5 + 0.1 * noise;
        len += (size_t)snprintf(b + len, cap - len, "%s[", i ? "," : "");
        for (int k = 0; k < n; k++)
            len += (size_t)snprintf(b + len, cap - len, "%s%.17g", k ? "," : "", X[i * n + k]);
        len += (size_t)snprintf(b + len, cap - len, "]");
    }
    len += (size_t)snprintf(b + len, cap - len, "], \"%c\": [", kind);
    for (int i = 0; i < rows; i++)
        len += kind == 'y' ? (size_t)snprintf(b + len, cap - len, "%s%d", i ? "," : "", y[i])
                           : (size_t)snprintf(b + len, cap - len, "%s[%.17g]", i ? "," : "", t[i]);
    snprintf(b + len, cap - len, "]}");
    return b;
}

/* ---------------------------------------------------------------- classification */

/* The report for labels y of rows X checked against this file's figures. */
static void check_classes(const json_t *rep, const model *m, const double *X, const int *y,
                          int rows, double lambda)
{
    int Ko = m->sizes[m->L - 1], K = Ko == 1 ? 2 : Ko, n = m->sizes[0];
    int64_t conf[16][16] = {{0}};
    double ll = 0, a[MAXU];
    int right = 0;
    double *score = malloc(sizeof(double) * (size_t)rows);
    for (int i = 0; i < rows; i++) {
        forward(a, m, X + i * n);
        int p = 0;
        if (Ko == 1)
            p = a[0] >= 0.5;
        else
            for (int k = 1; k < Ko; k++)
                p = a[k] > a[p] ? k : p;
        conf[y[i]][p]++;
        right += p == y[i];
        score[i] = a[Ko - 1];
        for (int k = 0; k < Ko; k++) {
            double t = Ko == 1 ? y[i] : (k == y[i]);
            ll -= strcmp(m->out, "softmax") == 0 ? t * log(a[k])
                                                 : t * log(a[k]) + (1 - t) * log(1 - a[k]);
        }
    }
    ll /= rows;
    cr_assert_eq(json_integer_value(json_object_get(rep, "rows")), rows);
    near(num(rep, "accuracy"), (double)right / rows, "accuracy");
    near(num(rep, "log_loss"), ll, "log_loss");
    near(num(rep, "cost"), ll + reg_term(m, lambda, rows), "cost");
    json_t *conf_j = json_object_get(rep, "confusion"), *per = json_object_get(rep, "per_class");
    cr_assert_eq(json_array_size(conf_j), (size_t)K);
    cr_assert_eq(json_array_size(json_object_get(rep, "classes")), (size_t)K);
    double mf1 = 0, wp = 0;
    for (int k = 0; k < K; k++) {
        int64_t tp = conf[k][k], pred = 0, sup = 0;
        for (int j = 0; j < K; j++) {
            cr_assert_eq(json_integer_value(json_array_get(json_array_get(conf_j, (size_t)k),
                                                           (size_t)j)), conf[k][j]);
            pred += conf[j][k];
            sup += conf[k][j];
        }
        double p = pred ? (double)tp / pred : 0, r = sup ? (double)tp / sup : 0;
        double f = p + r > 0 ? 2 * p * r / (p + r) : 0;
        json_t *pc = json_array_get(per, (size_t)k);
        char name[8];
        snprintf(name, sizeof name, "%d", k);
        cr_assert_str_eq(json_string_value(json_object_get(pc, "class")), name);
        near(num(pc, "precision"), p, "precision");
        near(num(pc, "recall"), r, "recall");
        near(num(pc, "f1"), f, "f1");
        cr_assert_eq(json_integer_value(json_object_get(pc, "support")), sup);
        mf1 += f / K;
        wp += p * (double)sup / rows;
    }
    near(num(json_object_get(rep, "macro"), "f1"), mf1, "macro f1");
    near(num(json_object_get(rep, "weighted"), "precision"), wp, "weighted precision");
    if (K == 2) {
        double wins = 0, pairs = 0;
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < rows; j++)
                if (y[i] == 1 && y[j] == 0) {
                    wins += score[i] > score[j] ? 1 : score[i] == score[j] ? 0.5 : 0;
                    pairs++;
                }
        if (pairs > 0)
            near(num(rep, "roc_auc"), wins / pairs, "roc_auc");
        else
            cr_assert(json_is_null(json_object_get(rep, "roc_auc")), "one class: null AUC");
    } else {
        cr_assert_null(json_object_get(rep, "roc_auc"));
    }
    free(score);
}

Test(http_evaluate, digits_report_matches_own_figures, .timeout = 240)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    char ds[64], job[64], path[128];
    upload_digits(&s, ds, sizeof ds);
    char *body = job_body(ds, "[64, 12, 10], \"output\": \"softmax\"",
                          "\"optimizer\": \"adam\", \"learning_rate\": 0.01, \"epochs\": 15, "
                          "\"batch_size\": 128, \"lambda\": 0.5");
    train(&s, body, job, sizeof job);
    free(body);
    model m;
    model_get(&s, job, &m);
    api_dataset d = {0};
    test_digits_load(&d);
    int *y = malloc(sizeof(int) * (size_t)d.rows);
    for (int64_t i = 0; i < d.rows; i++)
        y[i] = d.labels[i];
    snprintf(path, sizeof path, "/v1/jobs/%s/evaluate", job);
    char req[96];
    snprintf(req, sizeof req, "{\"dataset\": \"%s\"}", ds);
    json_t *rep = post_json(&s, path, req, 200);
    check_classes(rep, &m, d.X, y, (int)d.rows, 0.5);
    json_decref(rep);

    /* inline: the first 40 rows with one-hot "Y" */
    char *in = malloc(200000);
    size_t len = (size_t)sprintf(in, "{\"X\": [");
    for (int i = 0; i < 40; i++) {
        len += (size_t)sprintf(in + len, "%s[", i ? "," : "");
        for (int k = 0; k < 64; k++)
            len += (size_t)sprintf(in + len, "%s%.17g", k ? "," : "", d.X[i * 64 + k]);
        len += (size_t)sprintf(in + len, "]");
    }
    len += (size_t)sprintf(in + len, "], \"Y\": [");
    for (int i = 0; i < 40; i++) {
        len += (size_t)sprintf(in + len, "%s[", i ? "," : "");
        for (int k = 0; k < 10; k++)
            len += (size_t)sprintf(in + len, "%s%d", k ? "," : "", k == y[i]);
        len += (size_t)sprintf(in + len, "]");
    }
    sprintf(in + len, "]}");
    rep = post_json(&s, path, in, 200);
    check_classes(rep, &m, d.X, y, 40, 0.5);
    json_decref(rep);
    free(in);
    free(y);
    free(m.theta);
    api_dataset_clear(&d);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(http_evaluate, binary_sigmoid_auc_and_bad_requests, .timeout = 240)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    enum { R = 120, N = 2 };
    double X[R * N], t[R];
    int y[R];
    char ds[64], job[64], path[128];
    char *data = synth(R, N, 'y', X, y, t);
    upload_json(&s, data, ds, sizeof ds);
    char *body = job_body(ds, "[2, 4, 1]", "\"epochs\": 60, \"lambda\": 0.1");
    train(&s, body, job, sizeof job);
    free(body);
    model m;
    model_get(&s, job, &m);
    snprintf(path, sizeof path, "/v1/jobs/%s/evaluate", job);
    json_t *rep = post_json(&s, path, data, 200); /* inline X and y */
    check_classes(rep, &m, X, y, R, 0.1);
    json_decref(rep);

    char req[160];
    snprintf(req, sizeof req, "{\"dataset\": \"%s\", \"X\": [[1, 2]], \"y\": [1]}", ds);
    post_problem(&s, path, req, 400, "dataset: give either");
    post_problem(&s, path, "{\"X\": [[1, 2]], \"y\": [1], \"foo\": 1}", 400,
                 "body: unknown key \"foo\"");
    post_problem(&s, path, "{\"X\": [[1, 2, 3]], \"y\": [1]}", 409, "");
    post_problem(&s, path, "{\"X\": [[1, 2]], \"y\": [2]}", 409, "");
    post_problem(&s, path, "{\"X\": [[1, \"a\"]], \"y\": [1]}", 400, "X[0]");
    post_problem(&s, path, "{\"dataset\": \"ds_000000000000000000000000\"}", 404, "dataset");
    post_problem(&s, path, "{}", 400, "dataset: missing");
    post_problem(&s, "/v1/jobs/job_000000000000000000000000/evaluate", req, 404, "id");
    free(m.theta);
    free(data);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- regression, standardize */

Test(http_evaluate, linear_standardized_mse_mae_r2_and_predict, .timeout = 240)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    enum { R = 150, N = 3 };
    double X[R * N], t[R];
    int y[R];
    char ds[64], job[64], path[128];
    char *data = synth(R, N, 'Y', X, y, t);
    upload_json(&s, data, ds, sizeof ds);
    char *body = job_body(ds, "[3, 6, 1], \"output\": \"linear\", \"activation\": \"tanh\"",
                          "\"optimizer\": \"adam\", \"learning_rate\": 0.02, \"epochs\": 80, "
                          "\"lambda\": 0, \"standardize\": true");
    train(&s, body, job, sizeof job);
    free(body);
    json_t *jj = get_json(&s, "/v1/jobs/%s", job);
    cr_assert(json_is_true(json_object_get(json_object_get(jj, "training"), "standardize")));
    json_decref(jj);
    model m;
    model_get(&s, job, &m);
    cr_assert(m.standardized, "the weights carry no \"standardize\"");
    for (int k = 0; k < N; k++) { /* population mean and sd of every row; constant: sd 1 */
        double mu = 0, var = 0;
        for (int i = 0; i < R; i++)
            mu += X[i * N + k] / R;
        for (int i = 0; i < R; i++)
            var += (X[i * N + k] - mu) * (X[i * N + k] - mu) / R;
        near(m.mean[k], mu, "mean");
        near(m.sd[k], k == 2 ? 1.0 : sqrt(var), "sd");
    }
    /* predict applies the transform: outputs equal this file's forward on raw rows */
    snprintf(path, sizeof path, "/v1/jobs/%s/predict", job);
    json_t *pr = post_json(&s, path, "{\"X\": [[10, 0.5, 7.5], [-20, 1.5, 7.5]]}", 200);
    const double rows2[] = {10, 0.5, 7.5, -20, 1.5, 7.5};
    for (int i = 0; i < 2; i++) {
        double a;
        forward(&a, &m, rows2 + i * N);
        near(json_number_value(json_array_get(json_array_get(json_object_get(pr, "outputs"),
                                                             (size_t)i), 0)), a, "predict");
    }
    json_decref(pr);
    snprintf(path, sizeof path, "/v1/jobs/%s/evaluate", job);
    char req[96];
    snprintf(req, sizeof req, "{\"dataset\": \"%s\"}", ds);
    json_t *rep = post_json(&s, path, req, 200);
    double se = 0, ae = 0, mu = 0, tot = 0;
    for (int i = 0; i < R; i++)
        mu += t[i] / R;
    for (int i = 0; i < R; i++) {
        double a;
        forward(&a, &m, X + i * N);
        se += (a - t[i]) * (a - t[i]);
        ae += fabs(a - t[i]);
        tot += (t[i] - mu) * (t[i] - mu);
    }
    near(num(rep, "mse"), se / R, "mse");
    near(num(rep, "mae"), ae / R, "mae");
    near(num(rep, "r2"), 1 - se / tot, "r2");
    near(num(rep, "cost"), se / (2.0 * R), "cost");
    cr_assert_null(json_object_get(rep, "accuracy"));
    json_decref(rep);
    /* the job's gradient is taken on the standardized rows too: its J is this J */
    json_t *g = get_json(&s, "/v1/jobs/%s/gradient", job);
    near(num(g, "cost"), se / (2.0 * R), "gradient endpoint cost");
    json_decref(g);
    free(m.theta);
    free(data);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- from_job */

Test(http_evaluate, from_job_continues_with_weights_and_standardization, .timeout = 240)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    enum { R = 100, N = 3 };
    double X[R * N], t[R];
    int y[R];
    char ds[64], a[64], b[64];
    char *data = synth(R, N, 'y', X, y, t);
    upload_json(&s, data, ds, sizeof ds);
    char *body = job_body(ds, "[3, 4, 2], \"output\": \"softmax\"",
                          "\"epochs\": 20, \"standardize\": true");
    train(&s, body, a, sizeof a);
    free(body);
    model ma;
    model_get(&s, a, &ma);

    /* one more epoch of gd from A's weights: the step from A's Θ is reproduced here */
    char req[512];
    snprintf(req, sizeof req, "{\"network\": {\"layers\": [3, 4, 2], \"output\": \"softmax\"}, "
             "\"dataset\": \"%s\", \"from_job\": \"%s\", \"training\": {\"epochs\": 1}}", ds, a);
    submit_job(&s, NULL, req, b, sizeof b);
    json_t *jb = wait_job(&s, b, NULL, 60);
    cr_assert_str_eq(json_string_value(json_object_get(jb, "status")), "succeeded");
    cr_assert_str_eq(json_string_value(json_object_get(jb, "from_job")), a);
    cr_assert(json_is_true(json_object_get(json_object_get(jb, "training"), "standardize")));
    json_decref(jb);
    model mb;
    model_get(&s, b, &mb);
    cr_assert(mb.standardized);
    for (int k = 0; k < N; k++)
        cr_assert(mb.mean[k] == ma.mean[k] && mb.sd[k] == ma.sd[k], "standardization kept");
    /* B's weights differ from A's by one gradient step: close, not equal */
    double diff = 0;
    for (int i = 0; i < 4 * (3 + 1) + 2 * (4 + 1); i++)
        diff = fmax(diff, fabs(mb.theta[i] - ma.theta[i]));
    cr_assert(diff > 0 && diff < 1.0, "max |Θ_B − Θ_A| = %g", diff);
    json_t *ja = get_json(&s, "/v1/jobs/%s", a);
    cr_assert(json_is_null(json_object_get(ja, "from_job")));
    json_decref(ja);

    snprintf(req, sizeof req, "{\"network\": {\"layers\": [3, 5, 2], \"output\": \"softmax\"}, "
             "\"dataset\": \"%s\", \"from_job\": \"%s\"}", ds, a);
    post_problem(&s, "/v1/jobs", req, 422, "from_job:");
    snprintf(req, sizeof req, "{\"network\": {\"layers\": [3, 4, 2]}, \"dataset\": \"%s\", "
             "\"from_job\": \"%s\"}", ds, a);
    post_problem(&s, "/v1/jobs", req, 422, "from_job:"); /* sigmoid output, not softmax */
    snprintf(req, sizeof req, "{\"network\": {\"layers\": [3, 4, 2], \"output\": \"softmax\"}, "
             "\"dataset\": \"%s\", \"from_job\": \"job_000000000000000000000000\"}", ds);
    post_problem(&s, "/v1/jobs", req, 404, "from_job");
    snprintf(req, sizeof req, "{\"network\": {\"layers\": [3, 4, 2], \"output\": \"softmax\"}, "
             "\"dataset\": \"%s\", \"from_job\": 7}", ds);
    post_problem(&s, "/v1/jobs", req, 400, "from_job:");
    free(ma.theta);
    free(mb.theta);
    free(data);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- held-out metrics */

Test(http_evaluate, validation_split_job_reports_heldout_metrics, .timeout = 240)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    enum { R = 120, N = 3 };
    double X[R * N], t[R], Xh[R * N];
    int y[R], yh[R];
    char ds[64], job[64];
    char *data = synth(R, N, 'y', X, y, t);
    upload_json(&s, data, ds, sizeof ds);
    char *body = job_body(ds, "[3, 5, 1]", "\"epochs\": 40, \"lambda\": 0, \"seed\": 9, "
                                           "\"validation_split\": 0.25, \"standardize\": true");
    train(&s, body, job, sizeof job);
    free(body);
    /* Which rows were held out: the core's split rule (the one thing not recomputed here). */
    bp_train_config cfg;
    bp_train_config_default(&cfg);
    cfg.validation_split = 0.25;
    cfg.seed = 9;
    unsigned char held[R];
    cr_assert_eq(bp_split_mark(held, R, &cfg, NULL), 0);
    int nh = 0;
    for (int i = 0; i < R; i++)
        if (held[i]) {
            memcpy(Xh + nh * N, X + i * N, sizeof(double) * N);
            yh[nh++] = y[i];
        }
    cr_assert_eq(nh, 30);
    int pos = 0;
    for (int i = 0; i < nh; i++)
        pos += yh[i];
    cr_assert(pos > 3 && pos < nh - 3, "the held-out rows hold both classes (%d of %d)", pos, nh);
    model m;
    model_get(&s, job, &m);
    for (int k = 0; k < 2; k++) { /* the mean of the training rows only */
        double mu = 0;
        for (int i = 0; i < R; i++)
            mu += held[i] ? 0 : X[i * N + k] / (R - nh);
        near(m.mean[k], mu, "mean of the training rows");
    }
    json_t *jj = get_json(&s, "/v1/jobs/%s", job);
    json_t *met = json_object_get(jj, "metrics");
    cr_assert(json_is_object(met), "no metrics on a job with a validation split");
    check_classes(met, &m, Xh, yh, nh, 0);
    near(num(met, "cost"), num(json_object_get(jj, "progress"), "validation_cost"),
         "metrics cost vs the trainer's validation J");
    json_decref(jj);
    free(m.theta);
    free(data);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- class names */

/* POST /v1/datasets?query with body (media type), asserting status; the answer (new). */
static json_t *upload(const srv *s, const char *query, const char *media, const char *body,
                      long status)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/datasets%s", query);
    resp r;
    cr_assert_eq(http_req(s, "POST", path, media, body, strlen(body), NULL, &r), 0);
    cr_assert_eq(r.status, status, "%s: %ld %s", path, r.status, r.body);
    json_t *j = resp_json(&r);
    resp_free(&r);
    return j;
}

static void expect_names(const json_t *arr, const char *const *want, size_t n)
{
    cr_assert_eq(json_array_size(arr), n);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(json_string_value(json_array_get(arr, i)), want[i]);
}

Test(http_evaluate, class_names_from_csv_and_json, .timeout = 240)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    /* text labels in the last column, a header: names sorted byte-wise */
    static const char *const animals[] = {"dog", "cat", "bird"};
    static const char *const sorted[] = {"bird", "cat", "dog"};
    char csv[8192];
    size_t len = (size_t)sprintf(csv, "a,b,c,animal\n");
    double X[60 * 3];
    int cls[60];
    for (int i = 0; i < 60; i++) {
        int a = i % 3; /* dog, cat, bird → classes 2, 1, 0 */
        cls[i] = 2 - a;
        for (int k = 0; k < 3; k++)
            X[i * 3 + k] = (k == a ? 1.0 : 0.0) + 0.01 * ((i * 7 + k) % 5);
        len += (size_t)sprintf(csv + len, "%.17g,%.17g,%.17g,%s\n", X[i * 3], X[i * 3 + 1],
                               X[i * 3 + 2], animals[a]);
    }
    json_t *meta = upload(&s, "?label=last", "text/csv", csv, 201);
    expect_names(json_object_get(meta, "classes"), sorted, 3);
    cr_assert_eq(json_integer_value(json_object_get(meta, "outputs")), 3);
    cr_assert_eq(json_integer_value(json_object_get(meta, "features")), 3);
    char ds[64], job[64], path[128];
    snprintf(ds, sizeof ds, "%s", json_string_value(json_object_get(meta, "id")));
    json_decref(meta);
    json_t *got = get_json(&s, "/v1/datasets/%s", ds);
    expect_names(json_object_get(got, "classes"), sorted, 3);
    json_decref(got);
    char *body = job_body(ds, "[3, 6, 3], \"output\": \"softmax\"",
                          "\"optimizer\": \"adam\", \"learning_rate\": 0.05, \"epochs\": 60, "
                          "\"lambda\": 0");
    train(&s, body, job, sizeof job);
    free(body);
    model m;
    model_get(&s, job, &m);
    json_t *w = get_json(&s, "/v1/jobs/%s/weights", job);
    expect_names(json_object_get(w, "classes"), sorted, 3);
    json_decref(w);
    snprintf(path, sizeof path, "/v1/jobs/%s/predict", job);
    json_t *pr = post_json(&s, path, "{\"X\": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}", 200);
    expect_names(json_object_get(pr, "classes"), sorted, 3);
    for (int i = 0; i < 3; i++) {
        int label = (int)json_integer_value(json_array_get(json_object_get(pr, "labels"),
                                                           (size_t)i));
        cr_assert_str_eq(json_string_value(json_array_get(json_object_get(pr, "predicted"),
                                                          (size_t)i)), sorted[label]);
    }
    json_decref(pr);
    snprintf(path, sizeof path, "/v1/jobs/%s/evaluate", job);
    char req[96];
    snprintf(req, sizeof req, "{\"dataset\": \"%s\"}", ds);
    json_t *rep = post_json(&s, path, req, 200);
    expect_names(json_object_get(rep, "classes"), sorted, 3);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(rep,
                     "per_class"), 1), "class")), "cat");
    int64_t conf[3][3] = {{0}};
    for (int i = 0; i < 60; i++) {
        double a[3];
        forward(a, &m, X + i * 3);
        int p = a[1] > a[0] ? 1 : 0;
        p = a[2] > a[p] ? 2 : p;
        conf[cls[i]][p]++;
    }
    for (int t = 0; t < 3; t++)
        for (int p = 0; p < 3; p++)
            cr_assert_eq(json_integer_value(json_array_get(json_array_get(json_object_get(rep,
                         "confusion"), (size_t)t), (size_t)p)), conf[t][p]);
    json_decref(rep);
    /* inline rows labelled by name; a name the job does not know is refused naming y[i] */
    rep = post_json(&s, path, "{\"X\": [[1, 0, 0], [0, 0, 1]], \"y\": [\"dog\", \"bird\"]}",
                    200);
    const json_t *sup = json_object_get(rep, "per_class");
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(sup, 0), "support")), 1);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(sup, 1), "support")), 0);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(sup, 2), "support")), 1);
    json_decref(rep);
    post_problem(&s, path, "{\"X\": [[1, 0, 0]], \"y\": [\"emu\"]}", 400,
                 "y[0]: \"emu\" is not one of the job's classes");
    free(m.theta);

    /* labels 1..K (ex4 style) with ?label_base=1, a label in the middle column */
    meta = upload(&s, "?label_base=1&label=2", "text/csv", "0.5,1,2\n0.25,3,4\n0.75,2,1\n",
                  201);
    static const char *const ones[] = {"1", "2", "3"};
    expect_names(json_object_get(meta, "classes"), ones, 3);
    cr_assert_eq(json_integer_value(json_object_get(meta, "outputs")), 3);
    cr_assert_eq(json_integer_value(json_object_get(meta, "features")), 2);
    json_decref(meta);
    /* JSON class names */
    meta = upload(&s, "", "application/json",
                  "{\"X\": [[1], [2], [3]], \"y\": [\"yes\", \"no\", \"yes\"]}", 201);
    static const char *const yn[] = {"no", "yes"};
    expect_names(json_object_get(meta, "classes"), yn, 2);
    json_decref(meta);
    resp jr;
    const char *jb = "{\"X\": [[1]], \"y\": [0]}";
    cr_assert_eq(http_req(&s, "POST", "/v1/datasets?label=last", "application/json", jb,
                          strlen(jb), NULL, &jr), 0);
    expect_problem(&jr, 400, "label: CSV uploads only");
    resp_free(&jr);
    /* plain numeric uploads have no names */
    meta = upload(&s, "", "text/csv", "0,1\n1,2\n", 201);
    cr_assert_null(json_object_get(meta, "classes"));
    json_decref(meta);

    resp r;
    const char *bad[][3] = {
        {"?label_base=1", "0,1,2\n1,2,3\n", "line 1, column 1: label must be an integer in 1..65536"},
        {"", "cat,1\n2,2\n", "line 1, column 1"},
        {"?label=0", "1,2\n", "label: must be first, last or a column number"},
        {"?label=5", "1,2\n", "label: column 5 is beyond the 2 fields of line 1"},
        {"?label_base=2", "1,2\n", "label_base: must be 0 or 1"},
        {"?label_base=1", "cat,1\ndog,2\n", "label_base: only for numeric labels"},
        {"", "cat,1\ncat,x\n", "line 2, column 2: expected a number, found \"x\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char p2[128];
        snprintf(p2, sizeof p2, "/v1/datasets%s", bad[i][0]);
        cr_assert_eq(http_req(&s, "POST", p2, "text/csv", bad[i][1], strlen(bad[i][1]), NULL,
                              &r), 0);
        char *d = problem_detail(&r, 400);
        cr_assert(strstr(d, bad[i][2]), "%s: \"%s\" lacks \"%s\"", p2, d, bad[i][2]);
        free(d);
        resp_free(&r);
    }
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- resume */

Test(http_evaluate, standardized_job_killed_resumes_bit_exactly, .timeout = 300)
{
    srv s;
    const char *args[] = {"--workers", "1", "--checkpoint-seconds", "1", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char ds[64], a[64], b[64];
    upload_digits(&s, ds, sizeof ds);
    char *body = job_body(ds, "[64,30,10]",
                          "\"optimizer\":\"adam\",\"learning_rate\":0.005,\"batch_size\":16,"
                          "\"epochs\":50,\"seed\":5,\"validation_split\":0.2,\"lambda\":0.2,"
                          "\"standardize\":true");
    submit_job(&s, NULL, body, a, sizeof a);
    double end = test_now_s() + 120;
    for (;;) { /* past a checkpoint, still running */
        json_t *j = get_json(&s, "/v1/jobs/%s", a);
        int64_t e = json_integer_value(json_object_get(json_object_get(j, "progress"), "epoch"));
        json_decref(j);
        if (e >= 8)
            break;
        cr_assert(test_now_s() < end, "job %s stuck at epoch %lld", a, (long long)e);
        test_sleep_ms(20);
    }
    test_sleep_ms(1200);
    srv_kill9(&s);
    cr_assert_eq(srv_restart(&s, args), 0);
    json_t *ja = wait_job(&s, a, NULL, 180);
    cr_assert_str_eq(json_string_value(json_object_get(ja, "status")), "succeeded");
    submit_job(&s, NULL, body, b, sizeof b); /* the same job, uninterrupted */
    json_t *jb = wait_job(&s, b, NULL, 180);
    cr_assert_str_eq(json_string_value(json_object_get(jb, "status")), "succeeded");
    char *wa = get_text(&s, "/v1/jobs/%s/weights", a);
    char *wb = get_text(&s, "/v1/jobs/%s/weights", b);
    cr_assert(strstr(wa, "\"standardize\""), "no standardization with the weights");
    cr_assert_str_eq(wa, wb, "resumed weights differ from an uninterrupted run");
    char *ma = json_dumps(json_object_get(ja, "metrics"), JSON_COMPACT | JSON_REAL_PRECISION(17));
    char *mb = json_dumps(json_object_get(jb, "metrics"), JSON_COMPACT | JSON_REAL_PRECISION(17));
    cr_assert(ma && mb);
    cr_assert_str_eq(ma, mb, "held-out metrics differ");
    free(ma);
    free(mb);
    free(wa);
    free(wb);
    free(body);
    json_decref(ja);
    json_decref(jb);
    srv_stop(&s);
    srv_cleanup(&s);
}
