/* http_evaluate.c — POST /v1/jobs/{id}/evaluate and a job's held-out "metrics" against the
 * real server over HTTP. Every figure the server reports is recomputed here from the served
 * weights with the test's own loops (tests/harness/eval.c: forward pass, confusion, precision /
 * recall / F1, ROC AUC by counting pairs, MSE / MAE / R², the standardization's mean and sd),
 * never with the server's code.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "tests/harness_eval.h"

Test(http_evaluate, digits_report_matches_own_figures, .timeout = 240)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    char ds[64], job[64], path[128];
    upload_digits(&s, ds, sizeof ds);
    char *body = job_body(ds, "[64, 12, 10], \"output\": \"softmax\"",
                          "\"optimizer\": \"adam\", \"learning_rate\": 0.01, \"epochs\": 15, "
                          "\"batch_size\": 128, \"lambda\": 0.5");
    eval_train(&s, body, job, sizeof job);
    free(body);
    eval_model m;
    eval_model_get(&s, job, &m);
    api_dataset d = {0};
    test_digits_load(&d);
    int *y = malloc(sizeof(int) * (size_t)d.rows);
    for (int64_t i = 0; i < d.rows; i++)
        y[i] = d.labels[i];
    snprintf(path, sizeof path, "/v1/jobs/%s/evaluate", job);
    char req[96];
    snprintf(req, sizeof req, "{\"dataset\": \"%s\"}", ds);
    json_t *rep = eval_post(&s, path, req, 200);
    eval_check_classes(rep, &m, d.X, y, (int)d.rows, 0.5);
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
    rep = eval_post(&s, path, in, 200);
    eval_check_classes(rep, &m, d.X, y, 40, 0.5);
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
    char *data = eval_synth(R, N, 'y', X, y, t);
    eval_upload_json(&s, data, ds, sizeof ds);
    char *body = job_body(ds, "[2, 4, 1]", "\"epochs\": 60, \"lambda\": 0.1");
    eval_train(&s, body, job, sizeof job);
    free(body);
    eval_model m;
    eval_model_get(&s, job, &m);
    snprintf(path, sizeof path, "/v1/jobs/%s/evaluate", job);
    json_t *rep = eval_post(&s, path, data, 200); /* inline X and y */
    eval_check_classes(rep, &m, X, y, R, 0.1);
    json_decref(rep);

    char req[160];
    snprintf(req, sizeof req, "{\"dataset\": \"%s\", \"X\": [[1, 2]], \"y\": [1]}", ds);
    eval_post_problem(&s, path, req, 400, "dataset: give either");
    eval_post_problem(&s, path, "{\"X\": [[1, 2]], \"y\": [1], \"foo\": 1}", 400,
                 "body: unknown key \"foo\"");
    eval_post_problem(&s, path, "{\"X\": [[1, 2, 3]], \"y\": [1]}", 409, "");
    eval_post_problem(&s, path, "{\"X\": [[1, 2]], \"y\": [2]}", 409, "");
    eval_post_problem(&s, path, "{\"X\": [[1, \"a\"]], \"y\": [1]}", 400, "X[0]");
    eval_post_problem(&s, path, "{\"dataset\": \"ds_000000000000000000000000\"}", 404, "dataset");
    eval_post_problem(&s, path, "{}", 400, "dataset: missing");
    eval_post_problem(&s, "/v1/jobs/job_000000000000000000000000/evaluate", req, 404, "id");
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
    char *data = eval_synth(R, N, 'Y', X, y, t);
    eval_upload_json(&s, data, ds, sizeof ds);
    char *body = job_body(ds, "[3, 6, 1], \"output\": \"linear\", \"activation\": \"tanh\"",
                          "\"optimizer\": \"adam\", \"learning_rate\": 0.02, \"epochs\": 80, "
                          "\"lambda\": 0, \"standardize\": true");
    eval_train(&s, body, job, sizeof job);
    free(body);
    json_t *jj = get_json(&s, "/v1/jobs/%s", job);
    cr_assert(json_is_true(json_object_get(json_object_get(jj, "training"), "standardize")));
    json_decref(jj);
    eval_model m;
    eval_model_get(&s, job, &m);
    cr_assert(m.standardized, "the weights carry no \"standardize\"");
    for (int k = 0; k < N; k++) { /* population mean and sd of every row; constant: sd 1 */
        double mu = 0, var = 0;
        for (int i = 0; i < R; i++)
            mu += X[i * N + k] / R;
        for (int i = 0; i < R; i++)
            var += (X[i * N + k] - mu) * (X[i * N + k] - mu) / R;
        eval_near(m.mean[k], mu, "mean");
        eval_near(m.sd[k], k == 2 ? 1.0 : sqrt(var), "sd");
    }
    /* predict applies the transform: outputs equal this file's forward on raw rows */
    snprintf(path, sizeof path, "/v1/jobs/%s/predict", job);
    json_t *pr = eval_post(&s, path, "{\"X\": [[10, 0.5, 7.5], [-20, 1.5, 7.5]]}", 200);
    const double rows2[] = {10, 0.5, 7.5, -20, 1.5, 7.5};
    for (int i = 0; i < 2; i++) {
        double a;
        eval_forward(&a, &m, rows2 + i * N);
        eval_near(json_number_value(json_array_get(json_array_get(json_object_get(pr, "outputs"),
                                                             (size_t)i), 0)), a, "predict");
    }
    json_decref(pr);
    snprintf(path, sizeof path, "/v1/jobs/%s/evaluate", job);
    char req[96];
    snprintf(req, sizeof req, "{\"dataset\": \"%s\"}", ds);
    json_t *rep = eval_post(&s, path, req, 200);
    double se = 0, ae = 0, mu = 0, tot = 0;
    for (int i = 0; i < R; i++)
        mu += t[i] / R;
    for (int i = 0; i < R; i++) {
        double a;
        eval_forward(&a, &m, X + i * N);
        se += (a - t[i]) * (a - t[i]);
        ae += fabs(a - t[i]);
        tot += (t[i] - mu) * (t[i] - mu);
    }
    eval_near(eval_num(rep, "mse"), se / R, "mse");
    eval_near(eval_num(rep, "mae"), ae / R, "mae");
    eval_near(eval_num(rep, "r2"), 1 - se / tot, "r2");
    eval_near(eval_num(rep, "cost"), se / (2.0 * R), "cost");
    cr_assert_null(json_object_get(rep, "accuracy"));
    json_decref(rep);
    /* the job's gradient is taken on the standardized rows too: its J is this J */
    json_t *g = get_json(&s, "/v1/jobs/%s/gradient", job);
    eval_near(eval_num(g, "cost"), se / (2.0 * R), "gradient endpoint cost");
    json_decref(g);
    free(m.theta);
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
    char *data = eval_synth(R, N, 'y', X, y, t);
    eval_upload_json(&s, data, ds, sizeof ds);
    char *body = job_body(ds, "[3, 5, 1]", "\"epochs\": 40, \"lambda\": 0, \"seed\": 9, "
                                           "\"validation_split\": 0.25, \"standardize\": true");
    eval_train(&s, body, job, sizeof job);
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
    eval_model m;
    eval_model_get(&s, job, &m);
    for (int k = 0; k < 2; k++) { /* the mean of the training rows only */
        double mu = 0;
        for (int i = 0; i < R; i++)
            mu += held[i] ? 0 : X[i * N + k] / (R - nh);
        eval_near(m.mean[k], mu, "mean of the training rows");
    }
    json_t *jj = get_json(&s, "/v1/jobs/%s", job);
    json_t *met = json_object_get(jj, "metrics");
    cr_assert(json_is_object(met), "no metrics on a job with a validation split");
    eval_check_classes(met, &m, Xh, yh, nh, 0);
    eval_near(eval_num(met, "cost"), eval_num(json_object_get(jj, "progress"), "validation_cost"),
         "metrics cost vs the trainer's validation J");
    json_decref(jj);
    free(m.theta);
    free(data);
    srv_stop(&s);
    srv_cleanup(&s);
}
