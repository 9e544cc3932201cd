/* eval.c — the evaluation tests' shared steps (tests/harness_eval.h): served weights, this
 * process's own forward pass and figures, synthetic data, asserting POSTs.
 */
#include "tests/harness_eval.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
void eval_model_get(const srv *s, const char *job, eval_model *m)
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

/* a (s_L) = the model's output for one raw input x: standardized when the model is, then
 * the layers in plain loops. */
void eval_forward(double *a_out, const eval_model *m, const double *x_raw)
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
double eval_reg_term(const eval_model *m, double lambda, int64_t rows)
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

/* The number at key of o (asserted to be one). */
double eval_num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    cr_assert(json_is_number(v), "%s is not a number", key);
    return json_number_value(v);
}

/* got within 1e-9 (relative, at least absolute) of want. */
void eval_near(double got, double want, const char *what)
{
    cr_assert(fabs(got - want) <= 1e-9 * fmax(1.0, fabs(want)), "%s: server %.17g, test %.17g",
              what, got, want);
}

/* POST path with a JSON body, asserting the status; the answer (new). */
json_t *eval_post(const srv *s, const char *path, const char *body, long status)
{
    resp r;
    cr_assert_eq(http_post_json(s, path, body, &r), 0);
    cr_assert_eq(r.status, status, "POST %s: %ld %s", path, r.status, r.body);
    json_t *j = resp_json(&r);
    resp_free(&r);
    return j;
}

/* POST path expecting a problem whose detail starts with prefix. */
void eval_post_problem(const srv *s, const char *path, const char *body, long status,
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
void eval_upload_json(const srv *s, const char *body, char *id, size_t len)
{
    long st = post_for_id(s, "/v1/datasets", "application/json", body, strlen(body), NULL, id,
                          len);
    cr_assert_eq(st, 201);
}

/* Submits and waits for success; the job id into id. */
void eval_train(const srv *s, const char *body, char *id, size_t len)
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
char *eval_synth(int rows, int n, char kind, double *X, int *y, double *t)
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

/* The report for labels y of rows X checked against figures computed here. */
void eval_check_classes(const json_t *rep, const eval_model *m, const double *X, const int *y,
                        int rows, double lambda)
{
    int Ko = m->sizes[m->L - 1], K = Ko == 1 ? 2 : Ko, n = m->sizes[0];
    int64_t conf[16][16] = {{0}};
    double ll = 0, a[MAXU];
    int right = 0;
    double *score = malloc(sizeof(double) * (size_t)rows);
    for (int i = 0; i < rows; i++) {
        eval_forward(a, m, X + i * n);
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
    eval_near(eval_num(rep, "accuracy"), (double)right / rows, "accuracy");
    eval_near(eval_num(rep, "log_loss"), ll, "log_loss");
    eval_near(eval_num(rep, "cost"), ll + eval_reg_term(m, lambda, rows), "cost");
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
        char name[16];
        snprintf(name, sizeof name, "%d", k);
        cr_assert_str_eq(json_string_value(json_object_get(pc, "class")), name);
        eval_near(eval_num(pc, "precision"), p, "precision");
        eval_near(eval_num(pc, "recall"), r, "recall");
        eval_near(eval_num(pc, "f1"), f, "f1");
        cr_assert_eq(json_integer_value(json_object_get(pc, "support")), sup);
        mf1 += f / K;
        wp += p * (double)sup / rows;
    }
    eval_near(eval_num(json_object_get(rep, "macro"), "f1"), mf1, "macro f1");
    eval_near(eval_num(json_object_get(rep, "weighted"), "precision"), wp, "weighted precision");
    if (K == 2) {
        double wins = 0, pairs = 0;
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < rows; j++)
                if (y[i] == 1 && y[j] == 0) {
                    wins += score[i] > score[j] ? 1 : score[i] == score[j] ? 0.5 : 0;
                    pairs++;
                }
        if (pairs > 0)
            eval_near(eval_num(rep, "roc_auc"), wins / pairs, "roc_auc");
        else
            cr_assert(json_is_null(json_object_get(rep, "roc_auc")), "one class: null AUC");
    } else {
        cr_assert_null(json_object_get(rep, "roc_auc"));
    }
    free(score);
}

/* POST /v1/datasets?query with body (media type), asserting status; the answer (new). */
json_t *eval_upload(const srv *s, const char *query, const char *media, const char *body,
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

/* arr is exactly the n strings of want. */
void eval_expect_names(const json_t *arr, const char *const *want, size_t n)
{
    cr_assert_eq(json_array_size(arr), n);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(json_string_value(json_array_get(arr, i)), want[i]);
}
