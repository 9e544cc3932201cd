/* http_model.c — what a trained model keeps, against the real server over HTTP: "from_job"
 * warm starts (weights and standardization carried over, mismatches refused naming the field),
 * class names (CSV ?label=, ?label_base=1, text labels, JSON names) through the dataset, the
 * weights, predict and evaluate, and a standardized job resuming bit-exactly after kill -9.
 * Figures are recomputed with tests/harness/eval.c's own loops.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "tests/harness_eval.h"

/* ---------------------------------------------------------------- from_job */

Test(http_model, from_job_continues_with_weights_and_standardization, .timeout = 240)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    enum { R = 100, N = 3 };
    double X[R * N], t[R];
    int y[R];
    char ds[64], a[64], b[64];
    char *data = eval_synth(R, N, 'y', X, y, t);
    eval_upload_json(&s, data, ds, sizeof ds);
    char *body = job_body(ds, "[3, 4, 2], \"output\": \"softmax\"",
                          "\"epochs\": 20, \"standardize\": true");
    eval_train(&s, body, a, sizeof a);
    free(body);
    eval_model ma;
    eval_model_get(&s, a, &ma);

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
    eval_model mb;
    eval_model_get(&s, b, &mb);
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
    eval_post_problem(&s, "/v1/jobs", req, 422, "from_job:");
    snprintf(req, sizeof req, "{\"network\": {\"layers\": [3, 4, 2]}, \"dataset\": \"%s\", "
             "\"from_job\": \"%s\"}", ds, a);
    eval_post_problem(&s, "/v1/jobs", req, 422, "from_job:"); /* sigmoid output, not softmax */
    snprintf(req, sizeof req, "{\"network\": {\"layers\": [3, 4, 2], \"output\": \"softmax\"}, "
             "\"dataset\": \"%s\", \"from_job\": \"job_000000000000000000000000\"}", ds);
    eval_post_problem(&s, "/v1/jobs", req, 404, "from_job");
    snprintf(req, sizeof req, "{\"network\": {\"layers\": [3, 4, 2], \"output\": \"softmax\"}, "
             "\"dataset\": \"%s\", \"from_job\": 7}", ds);
    eval_post_problem(&s, "/v1/jobs", req, 400, "from_job:");
    free(ma.theta);
    free(mb.theta);
    free(data);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(http_model, class_names_from_csv_and_json, .timeout = 240)
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
    json_t *meta = eval_upload(&s, "?label=last", "text/csv", csv, 201);
    eval_expect_names(json_object_get(meta, "classes"), sorted, 3);
    cr_assert_eq(json_integer_value(json_object_get(meta, "outputs")), 3);
    cr_assert_eq(json_integer_value(json_object_get(meta, "features")), 3);
    char ds[64], job[64], path[128];
    snprintf(ds, sizeof ds, "%s", json_string_value(json_object_get(meta, "id")));
    json_decref(meta);
    json_t *got = get_json(&s, "/v1/datasets/%s", ds);
    eval_expect_names(json_object_get(got, "classes"), sorted, 3);
    json_decref(got);
    char *body = job_body(ds, "[3, 6, 3], \"output\": \"softmax\"",
                          "\"optimizer\": \"adam\", \"learning_rate\": 0.05, \"epochs\": 60, "
                          "\"lambda\": 0");
    eval_train(&s, body, job, sizeof job);
    free(body);
    eval_model m;
    eval_model_get(&s, job, &m);
    json_t *w = get_json(&s, "/v1/jobs/%s/weights", job);
    eval_expect_names(json_object_get(w, "classes"), sorted, 3);
    json_decref(w);
    snprintf(path, sizeof path, "/v1/jobs/%s/predict", job);
    json_t *pr = eval_post(&s, path, "{\"X\": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}", 200);
    eval_expect_names(json_object_get(pr, "classes"), sorted, 3);
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
    json_t *rep = eval_post(&s, path, req, 200);
    eval_expect_names(json_object_get(rep, "classes"), sorted, 3);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(rep,
                     "per_class"), 1), "class")), "cat");
    int64_t conf[3][3] = {{0}};
    for (int i = 0; i < 60; i++) {
        double a[3];
        eval_forward(a, &m, X + i * 3);
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
    rep = eval_post(&s, path, "{\"X\": [[1, 0, 0], [0, 0, 1]], \"y\": [\"dog\", \"bird\"]}",
                    200);
    const json_t *sup = json_object_get(rep, "per_class");
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(sup, 0), "support")), 1);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(sup, 1), "support")), 0);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(sup, 2), "support")), 1);
    json_decref(rep);
    eval_post_problem(&s, path, "{\"X\": [[1, 0, 0]], \"y\": [\"emu\"]}", 400,
                 "y[0]: \"emu\" is not one of the job's classes");
    free(m.theta);

    /* labels 1..K (ex4 style) with ?label_base=1, a label in the middle column */
    meta = eval_upload(&s, "?label_base=1&label=2", "text/csv", "0.5,1,2\n0.25,3,4\n0.75,2,1\n",
                  201);
    static const char *const ones[] = {"1", "2", "3"};
    eval_expect_names(json_object_get(meta, "classes"), ones, 3);
    cr_assert_eq(json_integer_value(json_object_get(meta, "outputs")), 3);
    cr_assert_eq(json_integer_value(json_object_get(meta, "features")), 2);
    json_decref(meta);
    /* JSON class names */
    meta = eval_upload(&s, "", "application/json",
                  "{\"X\": [[1], [2], [3]], \"y\": [\"yes\", \"no\", \"yes\"]}", 201);
    static const char *const yn[] = {"no", "yes"};
    eval_expect_names(json_object_get(meta, "classes"), yn, 2);
    json_decref(meta);
    resp jr;
    const char *jb = "{\"X\": [[1]], \"y\": [0]}";
    cr_assert_eq(http_req(&s, "POST", "/v1/datasets?label=last", "application/json", jb,
                          strlen(jb), NULL, &jr), 0);
    expect_problem(&jr, 400, "label: CSV and .npy uploads only");
    resp_free(&jr);
    /* plain numeric uploads have no names */
    meta = eval_upload(&s, "", "text/csv", "0,1\n1,2\n", 201);
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

Test(http_model, standardized_job_killed_resumes_bit_exactly, .timeout = 300)
{
    srv s;
    const char *args[] = {"--workers", "1", "--checkpoint-seconds", "1", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char ds[64], a[64], b[64];
    upload_digits(&s, ds, sizeof ds);
    char *body = job_body(ds, "[64,30,10]",
                          "\"optimizer\":\"adam\",\"learning_rate\":0.005,\"batch_size\":16,"
                          "\"epochs\":1000,\"seed\":5,\"validation_split\":0.2,\"lambda\":0.2,"
                          "\"standardize\":true");
    submit_job(&s, NULL, body, a, sizeof a);
    wait_epoch(&s, a, 8, 120);
    test_sleep_ms(1200); /* a checkpoint (every second) */
    /* killed mid-training: 1000 epochs of a few ms each outlast the wait (50 did not: the job
     * had ended before the kill, and nothing was resumed); wait_epoch asserts it still runs */
    wait_epoch(&s, a, 9, 1);
    srv_kill9(&s);
    cr_assert_eq(srv_restart(&s, args), 0);
    json_t *ja = wait_job(&s, a, NULL, 180);
    cr_assert_str_eq(json_string_value(json_object_get(ja, "status")), "succeeded");
    /* the restarted worker went on from a checkpoint, not from epoch 0 */
    char *log = srv_log(&s), want[128];
    snprintf(want, sizeof want, "id=%s status=running epoch=", a);
    long long from = -1;
    for (const char *p = strstr(log, want); p; p = strstr(p + 1, want))
        from = atoll(p + strlen(want));
    cr_assert(from > 0 && from < 1000, "resumed at epoch %lld", from);
    free(log);
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
