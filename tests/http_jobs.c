/* http_jobs.c — training jobs through the real backpropd binary over HTTP: a digits job that
 * learns (accuracy, falling cost, predictions), weights that are the model /v1/gradient and an
 * in-process bp_cost_grad see (same cost), determinism across runs and worker counts, cancel,
 * delete, queue limits, 404s and named 400/409s, Server-Sent Events (every epoch in order, the
 * final status last, Last-Event-ID replay), eight concurrent jobs, and a SIGTERM mid-training
 * that resumes to bit-identical weights.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "core/bp.h"
#include "tests/harness.h"

/* ---------------------------------------------------------------- helpers */

/* The served weights of a job, parsed (new theta; *spec filled). */
static double *served_theta(const json_t *weights, bp_spec *spec)
{
    api_error e = {0};
    cr_assert_eq(api_spec_parse(spec, json_object_get(weights, "network"), "network", &e), 0);
    double *theta = api_theta_parse(json_object_get(weights, "theta"), spec, "theta", &e);
    cr_assert_not_null(theta, "%s", e.detail);
    return theta;
}

/* J(Θ) of the served weights on all of digits, computed in this process by the core. */
static double local_cost(const json_t *weights, double lambda)
{
    bp_spec spec;
    api_error e = {0};
    double *theta = served_theta(weights, &spec);
    api_dataset d = {0};
    test_digits_load(&d);
    double *Y = api_targets(&d, spec.sizes[spec.n_layers - 1], &e);
    cr_assert_not_null(Y);
    bp_error be = {{0}};
    bp_work *w = bp_work_new(&spec, d.rows, &be);
    cr_assert_not_null(w);
    double J = bp_cost_grad(NULL, w, d.X, Y, theta, d.rows, lambda, d.rows);
    bp_work_free(w);
    free(Y);
    free(theta);
    api_dataset_clear(&d);
    return J;
}

static void close_rel(double a, double b, double tol, const char *what)
{
    cr_assert(fabs(a - b) <= tol * fabs(b), "%s: %.17g vs %.17g", what, a, b);
}

/* ---------------------------------------------------------------- a real model */

Test(jobs, digits_adam_learns_and_predicts, .timeout = 120)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    char ds[64], id[64];
    upload_digits(&s, ds, sizeof ds);
    char *body = job_body(ds, "[64,25,10]",
                          "\"optimizer\":\"adam\",\"learning_rate\":0.01,\"lambda\":0.1,"
                          "\"batch_size\":64,\"epochs\":40,\"seed\":11,\"validation_split\":0.2");
    submit_job(&s, NULL, body, id, sizeof id);
    json_t *job = wait_job(&s, id, NULL, 60);
    cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded");
    json_t *p = json_object_get(job, "progress");
    cr_assert_eq(json_integer_value(json_object_get(p, "epoch")), 40);
    cr_assert_eq(json_integer_value(json_object_get(p, "epochs")), 40);
    double acc = json_number_value(json_object_get(p, "accuracy"));
    cr_assert(acc >= 0.95, "held-out accuracy %.4f < 0.95", acc);
    cr_assert(json_number_value(json_object_get(p, "validation_cost")) > 0);
    cr_assert(json_is_string(json_object_get(job, "created_at")));
    cr_assert(json_is_string(json_object_get(job, "started_at")));
    cr_assert(json_is_string(json_object_get(job, "finished_at")));
    cr_assert(json_is_null(json_object_get(job, "error")));
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(job, "training"), "optimizer")), "adam");

    /* The cost history: 40 epochs, falling overall, ending at the reported cost. */
    json_t *hist = get_json(&s, "/v1/jobs/%s/cost", id);
    json_t *costs = json_object_get(hist, "cost");
    cr_assert_eq(json_array_size(costs), 40);
    cr_assert_eq(json_array_size(json_object_get(hist, "validation_cost")), 40);
    double first = json_number_value(json_array_get(costs, 0));
    double last = json_number_value(json_array_get(costs, 39));
    cr_assert(last < 0.5 * first, "cost %.4f -> %.4f did not fall", first, last);
    cr_assert_eq(last, json_number_value(json_object_get(p, "cost")));
    for (size_t i = 0; i < 40; i++)
        cr_assert_eq(json_integer_value(json_array_get(json_object_get(hist, "epoch"), i)),
                     (json_int_t)i + 1);

    /* Predictions on the first 300 rows agree with their labels. */
    api_dataset d = {0};
    test_digits_load(&d);
    json_t *X = json_array();
    for (int i = 0; i < 300; i++) {
        json_t *row = json_array();
        for (int k = 0; k < 64; k++)
            json_array_append_new(row, json_real(d.X[i * 64 + k]));
        json_array_append_new(X, row);
    }
    json_t *pb = json_pack("{s:o}", "X", X);
    char *pbody = json_dumps(pb, JSON_COMPACT);
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/predict", id);
    resp r;
    cr_assert_eq(http_post_json(&s, path, pbody, &r), 0);
    cr_assert_eq(r.status, 200, "predict: %ld %s", r.status, r.body);
    json_t *pr = resp_json(&r);
    json_t *labels = json_object_get(pr, "labels");
    json_t *outs = json_object_get(pr, "outputs");
    cr_assert_eq(json_array_size(labels), 300);
    cr_assert_eq(json_array_size(outs), 300);
    cr_assert_eq(json_array_size(json_array_get(outs, 0)), 10);
    int agree = 0;
    for (int i = 0; i < 300; i++) {
        json_int_t lab = json_integer_value(json_array_get(labels, (size_t)i));
        agree += lab == d.labels[i];
        /* The label is the arg-max of the outputs. */
        json_t *o = json_array_get(outs, (size_t)i);
        for (size_t k = 0; k < 10; k++)
            cr_assert(json_number_value(json_array_get(o, k)) <=
                      json_number_value(json_array_get(o, (size_t)lab)));
    }
    cr_assert(agree >= 285, "only %d of 300 predictions match the labels", agree);
    resp_free(&r);

    /* Predict with the wrong width names X. */
    cr_assert_eq(http_post_json(&s, path, "{\"X\":[[1,2,3]]}", &r), 0);
    expect_problem(&r, 400, "X[0]");
    resp_free(&r);
    cr_assert_eq(http_post_json(&s, path, "{\"X\":[[1]],\"y\":[1]}", &r), 0);
    expect_problem_eq(&r, 400, "body: unknown key \"y\"");
    resp_free(&r);

    json_decref(pr);
    free(pbody);
    json_decref(pb);
    api_dataset_clear(&d);
    json_decref(hist);
    json_decref(job);
    free(body);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* The weights a job serves are the model /v1/gradient, /v1/jobs/{id}/gradient and the core in
 * this process all evaluate to the job's final reported cost. */
Test(jobs, weights_are_the_model_gradient_sees, .timeout = 120)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    char ds[64], id[64];
    upload_digits(&s, ds, sizeof ds);
    char *body = job_body(ds, "[64,25,10]",
                          "\"optimizer\":\"lbfgs\",\"lambda\":1.0,\"epochs\":60,\"seed\":3");
    submit_job(&s, NULL, body, id, sizeof id);
    json_t *job = wait_job(&s, id, NULL, 60);
    cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded");
    double reported = json_number_value(json_object_get(json_object_get(job, "progress"), "cost"));

    char *wt = get_text(&s, "/v1/jobs/%s/weights", id);
    json_error_t je;
    json_t *w = json_loads(wt, 0, &je);
    cr_assert_not_null(w);
    int64_t epoch = json_integer_value(json_object_get(w, "epoch"));
    cr_assert(epoch >= 1 && epoch <= 60);
    cr_assert_eq(json_number_value(json_object_get(w, "cost")), reported);
    json_t *theta = json_object_get(w, "theta");
    cr_assert_eq(json_array_size(theta), 2);
    cr_assert_eq(json_array_size(json_array_get(theta, 0)), 25);
    cr_assert_eq(json_array_size(json_array_get(json_array_get(theta, 0), 0)), 65);

    /* /v1/gradient with the same network, theta, dataset and lambda. */
    json_t *gb = json_pack("{s:O, s:O, s:s, s:f}", "network", json_object_get(w, "network"),
                           "theta", theta, "dataset", ds, "lambda", 1.0);
    char *gtext = json_dumps(gb, JSON_COMPACT | JSON_REAL_PRECISION(17));
    resp r;
    cr_assert_eq(http_post_json(&s, "/v1/gradient", gtext, &r), 0);
    cr_assert_eq(r.status, 200, "gradient: %ld %s", r.status, r.body);
    json_t *g = resp_json(&r);
    double J_service = json_number_value(json_object_get(g, "cost"));
    close_rel(J_service, reported, 1e-9, "/v1/gradient cost vs job cost");
    resp_free(&r);

    /* The job's own gradient endpoint: same cost, same gradients. */
    json_t *jg = get_json(&s, "/v1/jobs/%s/gradient", id);
    close_rel(json_number_value(json_object_get(jg, "cost")), J_service, 1e-12,
              "job gradient cost");
    json_t *ga = json_object_get(g, "gradients"), *gj = json_object_get(jg, "gradients");
    cr_assert_eq(json_array_size(gj), 2);
    for (size_t l = 0; l < 2; l++) {
        json_t *ma = json_array_get(ga, l), *mj = json_array_get(gj, l);
        cr_assert_eq(json_array_size(ma), json_array_size(mj));
        for (size_t i = 0; i < json_array_size(ma); i++)
            for (size_t k = 0; k < json_array_size(json_array_get(ma, i)); k++) {
                double a = json_number_value(json_array_get(json_array_get(ma, i), k));
                double b = json_number_value(json_array_get(json_array_get(mj, i), k));
                cr_assert(fabs(a - b) <= 1e-12 + 1e-9 * fabs(a), "D[%zu][%zu][%zu]", l, i, k);
            }
    }
    /* And the core in this process. lbfgs converges: the cost is well below the start. */
    double J_local = local_cost(w, 1.0);
    close_rel(J_local, reported, 1e-9, "in-process cost vs job cost");
    cr_assert(reported < 1.0, "lbfgs cost %.4f", reported);

    json_decref(jg);
    json_decref(g);
    free(gtext);
    json_decref(gb);
    json_decref(w);
    free(wt);
    json_decref(job);
    free(body);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- determinism */

Test(jobs, same_seed_same_bytes_any_worker_count, .timeout = 120)
{
    const char *training = "\"optimizer\":\"adam\",\"learning_rate\":0.01,\"batch_size\":50,"
                           "\"epochs\":8,\"seed\":99,\"validation_split\":0.1,\"lambda\":0.5";
    srv a, b;
    const char *two[] = {"--workers", "2", NULL};
    const char *one[] = {"--workers", "1", NULL};
    cr_assert_eq(srv_start(&a, two), 0);
    cr_assert_eq(srv_start(&b, one), 0);
    char dsa[64], dsb[64], j1[64], j2[64], j3[64];
    upload_digits(&a, dsa, sizeof dsa);
    upload_digits(&b, dsb, sizeof dsb);
    char *ba = job_body(dsa, "[64,30,10]", training);
    char *bb = job_body(dsb, "[64,30,10]", training);
    submit_job(&a, NULL, ba, j1, sizeof j1); /* two at once on two workers */
    submit_job(&a, NULL, ba, j2, sizeof j2);
    submit_job(&b, NULL, bb, j3, sizeof j3);
    json_t *x = wait_job(&a, j1, "succeeded", 60);
    json_t *y = wait_job(&a, j2, "succeeded", 60);
    json_t *z = wait_job(&b, j3, "succeeded", 60);
    char *w1 = get_text(&a, "/v1/jobs/%s/weights", j1);
    char *w2 = get_text(&a, "/v1/jobs/%s/weights", j2);
    char *w3 = get_text(&b, "/v1/jobs/%s/weights", j3);
    cr_assert(strlen(w1) > 10000);
    cr_assert_str_eq(w1, w2, "same seed twice: different weights");
    cr_assert_str_eq(w1, w3, "--workers 2 and --workers 1: different weights");
    /* A different seed gives different weights (the comparison can fail). */
    char *bc = job_body(dsa, "[64,30,10]",
                        "\"optimizer\":\"adam\",\"learning_rate\":0.01,\"batch_size\":50,"
                        "\"epochs\":8,\"seed\":100,\"validation_split\":0.1,\"lambda\":0.5");
    char j4[64];
    submit_job(&a, NULL, bc, j4, sizeof j4);
    json_decref(wait_job(&a, j4, "succeeded", 60));
    char *w4 = get_text(&a, "/v1/jobs/%s/weights", j4);
    cr_assert(strcmp(w1, w4) != 0);
    free(w1);
    free(w2);
    free(w3);
    free(w4);
    free(ba);
    free(bb);
    free(bc);
    json_decref(x);
    json_decref(y);
    json_decref(z);
    srv_stop(&a);
    srv_stop(&b);
    srv_cleanup(&a);
    srv_cleanup(&b);
}

/* ---------------------------------------------------------------- cancel, delete, queue */

#define LONG_JOB "\"optimizer\":\"sgd\",\"learning_rate\":0.05,\"batch_size\":8,\"epochs\":100000,\"seed\":1"

Test(jobs, cancel_delete_and_queue_limit, .timeout = 120)
{
    srv s;
    const char *args[] = {"--workers", "1", "--max-queue", "2", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char ds[64], a[64], b[64], c[64];
    upload_digits(&s, ds, sizeof ds);
    char *body = job_body(ds, "[64,25,10]", LONG_JOB);
    submit_job(&s, NULL, body, a, sizeof a);
    wait_epoch(&s, a, 2, 30); /* A runs on the only worker */
    submit_job(&s, NULL, body, b, sizeof b);
    json_t *jb = get_json(&s, "/v1/jobs/%s", b);
    cr_assert_str_eq(json_string_value(json_object_get(jb, "status")), "queued");
    json_decref(jb);

    /* Queue full: A running + B queued = 2. */
    resp r;
    cr_assert_eq(http_post_json(&s, "/v1/jobs", body, &r), 0);
    expect_problem(&r, 429, "queue");
    char ra[32];
    cr_assert_eq(resp_header(&r, "Retry-After", ra, sizeof ra), 0);
    cr_assert(atoi(ra) >= 1);
    resp_free(&r);

    /* Weights are readable while it runs. */
    json_t *wl = get_json(&s, "/v1/jobs/%s/weights", a);
    cr_assert(json_integer_value(json_object_get(wl, "epoch")) >= 2);
    json_decref(wl);

    /* Delete the queued job: 204, then it is gone; the queue has room again. */
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", b);
    cr_assert_eq(http_req(&s, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    cr_assert_eq(r.status, 204, "delete: %ld %s", r.status, r.body);
    resp_free(&r);
    cr_assert_eq(http_get(&s, path, &r), 0);
    expect_problem(&r, 404, b);
    resp_free(&r);
    submit_job(&s, NULL, body, c, sizeof c);

    /* Cancel the running job: answered as cancelled within about a second. */
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", a);
    double t0 = test_now_s();
    cr_assert_eq(http_req(&s, "POST", path, NULL, NULL, 0, NULL, &r), 0);
    double dt = test_now_s() - t0;
    cr_assert_eq(r.status, 200, "cancel: %ld %s", r.status, r.body);
    json_t *ja = resp_json(&r);
    cr_assert_str_eq(json_string_value(json_object_get(ja, "status")), "cancelled");
    cr_assert(json_is_string(json_object_get(ja, "finished_at")));
    cr_assert(dt < 1.5, "cancel took %.2f s", dt);
    json_decref(ja);
    resp_free(&r);
    /* Its weights of the last completed epoch stay readable. */
    wl = get_json(&s, "/v1/jobs/%s/weights", a);
    cr_assert(json_integer_value(json_object_get(wl, "epoch")) >= 2);
    json_decref(wl);
    /* Cancelling again is harmless. */
    cr_assert_eq(http_req(&s, "POST", path, NULL, NULL, 0, NULL, &r), 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);

    /* C now runs; delete it while running: cancelled first, then gone. */
    wait_epoch(&s, c, 1, 30);
    snprintf(path, sizeof path, "/v1/jobs/%s", c);
    cr_assert_eq(http_req(&s, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    cr_assert_eq(r.status, 204);
    resp_free(&r);
    cr_assert_eq(http_get(&s, path, &r), 0);
    cr_assert_eq(r.status, 404);
    resp_free(&r);

    /* The list: newest first, filtered by status, paginated. */
    json_t *l = get_json(&s, "/v1/jobs?status=cancelled");
    json_t *arr = json_object_get(l, "jobs");
    cr_assert_eq(json_array_size(arr), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 0), "id")), a);
    json_decref(l);
    free(body);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(jobs, list_pagination_and_bad_requests, .timeout = 60)
{
    srv s;
    const char *args[] = {"--workers", "1", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char ds[64], ids[3][64];
    upload_digits(&s, ds, sizeof ds);
    char *body = job_body(ds, "[64,8,10]", "\"optimizer\":\"gd\",\"epochs\":2");
    for (int i = 0; i < 3; i++)
        submit_job(&s, NULL, body, ids[i], sizeof ids[i]);
    json_t *p1 = get_json(&s, "/v1/jobs?limit=2");
    json_t *a1 = json_object_get(p1, "jobs");
    cr_assert_eq(json_array_size(a1), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(a1, 0), "id")), ids[2]);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(a1, 1), "id")), ids[1]);
    const char *cur = json_string_value(json_object_get(p1, "next_cursor"));
    cr_assert_not_null(cur);
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs?limit=2&cursor=%s", cur);
    json_t *p2 = get_json(&s, "%s", path);
    json_t *a2 = json_object_get(p2, "jobs");
    cr_assert_eq(json_array_size(a2), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(a2, 0), "id")), ids[0]);
    cr_assert(json_is_null(json_object_get(p2, "next_cursor")));
    json_decref(p1);
    json_decref(p2);

    resp r;
    cr_assert_eq(http_get(&s, "/v1/jobs?status=bogus", &r), 0);
    expect_problem(&r, 400, "status");
    resp_free(&r);
    cr_assert_eq(http_get(&s, "/v1/jobs?limit=0", &r), 0);
    expect_problem(&r, 400, "limit");
    resp_free(&r);
    cr_assert_eq(http_get(&s, "/v1/jobs?limit=1001", &r), 0);
    expect_problem(&r, 400, "limit");
    resp_free(&r);

    /* Bad specs, each naming its field. */
    struct {
        const char *layers, *training;
        long status;
        const char *names;
    } bad[] = {
        {"[64,25,10]", "\"optimizer\":\"rmsprop\"", 400,
         "training.optimizer: must be one of gd, sgd, momentum, adam, lbfgs"},
        {"[64,25,10]", "\"epochs\":0", 400, "training.epochs"},
        {"[64,25,10]", "\"learning_rate\":-1", 400, "training.learning_rate"},
        {"[64,25,10]", "\"validation_split\":1.5", 400, "training.validation_split"},
        {"[64,25,10]", "\"optimizer\":\"lbfgs\",\"batch_size\":10", 400, "training.batch_size"},
        {"[63,25,10]", "\"epochs\":1", 409, "layers[0]"},
        {"[64,25,9]", "\"epochs\":1", 409, "dataset"},
        {"[64,0,10]", "\"epochs\":1", 400, "network.layers[1]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *b = job_body(ds, bad[i].layers, bad[i].training);
        cr_assert_eq(http_post_json(&s, "/v1/jobs", b, &r), 0);
        expect_problem(&r, bad[i].status, bad[i].names);
        resp_free(&r);
        free(b);
    }
    /* Unknown keys, named as everywhere else. */
    char *b = job_body(ds, "[64,25,10]", "\"foo\":1");
    cr_assert_eq(http_post_json(&s, "/v1/jobs", b, &r), 0);
    expect_problem_eq(&r, 400, "training: unknown key \"foo\"");
    resp_free(&r);
    free(b);
    b = NULL;
    cr_assert(asprintf(&b, "{\"network\":{\"layers\":[64,10]},\"dataset\":\"%s\",\"extra\":1}",
                       ds) > 0);
    cr_assert_eq(http_post_json(&s, "/v1/jobs", b, &r), 0);
    expect_problem_eq(&r, 400, "body: unknown key \"extra\"");
    resp_free(&r);
    free(b);
    cr_assert_eq(http_post_json(&s, "/v1/jobs",
                                "{\"network\":{\"layers\":[64,10]},\"dataset\":\"ds_nope\"}", &r),
                 0);
    expect_problem(&r, 404, "dataset");
    resp_free(&r);
    /* init_epsilon null is the default; a number is accepted. */
    b = job_body(ds, "[64,10]", "\"epochs\":1,\"init_epsilon\":null");
    cr_assert_eq(http_post_json(&s, "/v1/jobs", b, &r), 0);
    cr_assert_eq(r.status, 202, "%s", r.body);
    json_t *jj = resp_json(&r);
    cr_assert(json_is_null(json_object_get(json_object_get(jj, "training"), "init_epsilon")));
    json_decref(jj);
    resp_free(&r);
    free(b);

    /* A job that diverges fails and says why; the weights of its last good epoch remain. */
    char fid[64];
    b = job_body(ds, "[64,25,10],\"activation\":\"relu\",\"output\":\"linear\"",
                 "\"optimizer\":\"gd\",\"learning_rate\":1e12,\"epochs\":50");
    submit_job(&s, NULL, b, fid, sizeof fid);
    free(b);
    json_t *fj = wait_job(&s, fid, NULL, 30);
    cr_assert_str_eq(json_string_value(json_object_get(fj, "status")), "failed");
    const char *why = json_string_value(json_object_get(fj, "error"));
    cr_assert_not_null(why);
    cr_assert_not_null(strstr(why, "lower the learning rate"), "%s", why);
    int64_t good = json_integer_value(json_object_get(json_object_get(fj, "progress"), "epoch"));
    char at[64];
    snprintf(at, sizeof at, "at epoch %lld:", (long long)good + 1);
    cr_assert_not_null(strstr(why, at), "\"%s\" vs last good epoch %lld", why, (long long)good);
    if (good > 0) {
        json_t *fw = get_json(&s, "/v1/jobs/%s/weights", fid);
        cr_assert_eq(json_integer_value(json_object_get(fw, "epoch")), good);
        json_decref(fw);
    }
    json_decref(fj);

    /* Unknown ids: 404 problem on every job route. */
    const char *routes[][2] = {
        {"GET", "/v1/jobs/job_000000000000000000000000"},
        {"GET", "/v1/jobs/job_000000000000000000000000/cost"},
        {"GET", "/v1/jobs/job_000000000000000000000000/weights"},
        {"GET", "/v1/jobs/job_000000000000000000000000/gradient"},
        {"GET", "/v1/jobs/job_000000000000000000000000/events"},
        {"POST", "/v1/jobs/job_000000000000000000000000/cancel"},
        {"DELETE", "/v1/jobs/job_000000000000000000000000"},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        cr_assert_eq(http_req(&s, routes[i][0], routes[i][1], NULL, NULL, 0, NULL, &r), 0);
        expect_problem(&r, 404, "job_000000000000000000000000");
        resp_free(&r);
    }
    cr_assert_eq(http_post_json(&s, "/v1/jobs/job_x/predict", "{\"X\":[[0]]}", &r), 0);
    expect_problem(&r, 404, "job_x");
    resp_free(&r);
    free(body);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- events */

/* Reads a whole event stream (it must end by itself): 200, text/event-stream. */
static void read_stream(const srv *s, const char *id, long last_id, sse_stream *k)
{
    char path[128], hdr[64];
    snprintf(path, sizeof path, "/v1/jobs/%s/events", id);
    snprintf(hdr, sizeof hdr, "Last-Event-ID: %ld", last_id);
    const char *const h[] = {hdr, NULL};
    long status = 0;
    char ct[64];
    CURLcode rc = sse_read(s, path, last_id >= 0 ? h : NULL, 60000, k, &status, ct, sizeof ct);
    cr_assert_eq(rc, CURLE_OK, "stream: %s", curl_easy_strerror(rc));
    cr_assert_eq(status, 200);
    cr_assert_not_null(strstr(ct, "text/event-stream"), "%s", ct);
}

Test(jobs, events_every_epoch_in_order_and_replay, .timeout = 120)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    char ds[64], id[64];
    upload_digits(&s, ds, sizeof ds);
    const int E = 40;
    char *body = job_body(ds, "[64,40,10]",
                          "\"optimizer\":\"momentum\",\"learning_rate\":0.01,\"batch_size\":1,"
                          "\"epochs\":40,\"seed\":5");
    double t_submit = test_now_s();
    submit_job(&s, NULL, body, id, sizeof id);
    sse_stream k;
    read_stream(&s, id, -1, &k);
    static sse_event ev[256];
    size_t n = sse_parse(k.buf, ev, 256);
    /* queued, running, E progress, succeeded: ids 1, 2, 3..E+2, E+3. */
    cr_assert_eq(n, (size_t)E + 3, "got %zu events:\n%s", n, k.buf);
    cr_assert_str_eq(ev[0].event, "status");
    cr_assert_str_eq(json_string_value(json_object_get(ev[0].data, "status")), "queued");
    cr_assert_eq(ev[0].id, 1);
    cr_assert_str_eq(json_string_value(json_object_get(ev[1].data, "status")), "running");
    cr_assert_eq(ev[1].id, 2);
    json_t *hist = get_json(&s, "/v1/jobs/%s/cost", id);
    for (int e = 1; e <= E; e++) {
        sse_event *x = &ev[e + 1];
        cr_assert_str_eq(x->event, "progress");
        cr_assert_eq(x->id, e + 2);
        cr_assert_eq(json_integer_value(json_object_get(x->data, "epoch")), e);
        cr_assert_eq(json_integer_value(json_object_get(x->data, "epochs")), E);
        cr_assert_eq(json_number_value(json_object_get(x->data, "cost")),
                     json_number_value(json_array_get(json_object_get(hist, "cost"),
                                                      (size_t)e - 1)),
                     "epoch %d cost differs from /cost", e);
    }
    sse_event *fin = &ev[E + 2];
    cr_assert_str_eq(fin->event, "status");
    cr_assert_eq(fin->id, E + 3);
    cr_assert_str_eq(json_string_value(json_object_get(fin->data, "status")), "succeeded");
    /* It was live: the first epoch arrived in the first half of the job's time, however fast
     * the machine trains (a stream that only replayed the finished job would get all 40 at
     * its end). */
    cr_assert(k.t_last - k.t_first_progress > 0.5 * (k.t_last - t_submit),
              "events arrived in one burst (first progress %.3f s before the end, %.3f s after "
              "the submission)", k.t_last - k.t_first_progress, k.t_first_progress - t_submit);
    free(k.buf);

    /* Reconnect with Last-Event-ID: exactly what came after. */
    long after = 20;
    read_stream(&s, id, after, &k);
    static sse_event ev2[256];
    size_t n2 = sse_parse(k.buf, ev2, 256);
    cr_assert_eq(n2, (size_t)(E + 3 - after), "replay got %zu events", n2);
    for (size_t i = 0; i < n2; i++) {
        cr_assert_eq(ev2[i].id, after + 1 + (long)i);
        cr_assert_str_eq(ev2[i].event, ev[after + i].event);
        char *a = json_dumps(ev2[i].data, JSON_COMPACT | JSON_SORT_KEYS);
        char *b = json_dumps(ev[after + i].data, JSON_COMPACT | JSON_SORT_KEYS);
        if (!strcmp(ev2[i].event, "progress")) { /* replay has no samples/s */
            cr_assert_eq(json_number_value(json_object_get(ev2[i].data, "cost")),
                         json_number_value(json_object_get(ev[after + i].data, "cost")));
        } else {
            cr_assert_str_eq(a, b);
        }
        free(a);
        free(b);
    }
    free(k.buf);
    for (size_t i = 0; i < n; i++)
        json_decref(ev[i].data);
    for (size_t i = 0; i < n2; i++)
        json_decref(ev2[i].data);
    json_decref(hist);
    free(body);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* A stream open on a long job ends cleanly when the server shuts down (no hang, exit 0). */
typedef struct {
    const srv *s;
    const char *id;
    long timeout_ms;
    sse_stream k;
    CURLcode rc;
} stream_thread;

static void *stream_reader(void *arg)
{
    stream_thread *t = arg;
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/events", t->id);
    t->rc = sse_read(t->s, path, NULL, t->timeout_ms, &t->k, NULL, NULL, 0);
    return NULL;
}

Test(jobs, events_end_on_shutdown, .timeout = 60)
{
    srv s;
    const char *args[] = {"--workers", "1", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char ds[64], id[64];
    upload_digits(&s, ds, sizeof ds);
    char *body = job_body(ds, "[64,25,10]", LONG_JOB);
    submit_job(&s, NULL, body, id, sizeof id);
    wait_epoch(&s, id, 1, 30);
    stream_thread t = {.s = &s, .id = id, .timeout_ms = 30000};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, stream_reader, &t), 0);
    test_sleep_ms(700);
    double t0 = test_now_s();
    srv_stop(&s); /* asserts a clean exit 0 */
    pthread_join(th, NULL);
    cr_assert(test_now_s() - t0 < 10, "shutdown with an open stream took %.1f s", test_now_s() - t0);
    cr_assert_eq(t.rc, CURLE_OK, "stream did not end cleanly: %s", curl_easy_strerror(t.rc));
    cr_assert_not_null(t.k.buf);
    cr_assert_not_null(strstr(t.k.buf, "event: progress"));
    free(t.k.buf);
    srv_cleanup(&s);
    free(body);
}

/* A stream on a queued job waits without a busy HTTP thread: it gets the queued status, then a
 * heartbeat comment within 15 s; meanwhile streams whose clients vanished and /healthz are
 * served, and shutdown with suspended streams is clean. */
Test(jobs, events_heartbeat_while_queued, .timeout = 90)
{
    srv s;
    const char *args[] = {"--workers", "1", "--http-threads", "1", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char ds[64], a[64], b[64];
    upload_digits(&s, ds, sizeof ds);
    char *body = job_body(ds, "[64,25,10]", LONG_JOB);
    submit_job(&s, NULL, body, a, sizeof a);
    wait_epoch(&s, a, 1, 30);
    submit_job(&s, NULL, body, b, sizeof b); /* stays queued behind a */

    /* Ten clients that vanish, on the running and on the queued job. */
    stream_thread v[10];
    pthread_t vt[10];
    for (int i = 0; i < 10; i++) {
        /* 1.5 s (room for a ThreadSanitizer server to answer ten streams on its one HTTP
         * thread), then the client just goes away */
        v[i] = (stream_thread){.s = &s, .id = i % 2 ? a : b, .timeout_ms = 1500};
        cr_assert_eq(pthread_create(&vt[i], NULL, stream_reader, &v[i]), 0);
    }
    for (int i = 0; i < 10; i++)
        pthread_join(vt[i], NULL);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(v[i].rc, CURLE_OPERATION_TIMEDOUT);
        cr_assert_not_null(v[i].k.buf);
        cr_assert_not_null(strstr(v[i].k.buf, "\"status\":\"queued\""));
        free(v[i].k.buf);
    }

    stream_thread t = {.s = &s, .id = b, .timeout_ms = 30000};
    pthread_t th;
    double t0 = test_now_s();
    cr_assert_eq(pthread_create(&th, NULL, stream_reader, &t), 0);
    /* With one HTTP thread, the suspended stream leaves it free. */
    for (int i = 0; i < 20; i++) {
        resp r;
        test_sleep_ms(100);
        cr_assert_eq(http_get(&s, "/healthz", &r), 0);
        cr_assert_eq(r.status, 200);
        resp_free(&r);
    }
    for (;;) {
        test_sleep_ms(200);
        if (t.k.buf && strstr(t.k.buf, ": heartbeat"))
            break;
        cr_assert(test_now_s() - t0 < 20, "no heartbeat within 20 s");
    }
    cr_assert(test_now_s() - t0 > 14, "heartbeat after %.1f s", test_now_s() - t0);
    cr_assert_not_null(strstr(t.k.buf, "id: 1\nevent: status\n"));
    cr_assert_null(strstr(t.k.buf, "id: 2\n"), "a queued job has no running event");
    srv_stop(&s); /* ends the open stream; exit 0 within the harness's limit */
    pthread_join(th, NULL);
    cr_assert_eq(t.rc, CURLE_OK, "%s", curl_easy_strerror(t.rc));
    free(t.k.buf);
    free(body);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- concurrency */

Test(jobs, eight_jobs_two_workers, .timeout = 180)
{
    srv s;
    const char *args[] = {"--workers", "2", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char ds[64], id[8][64];
    upload_digits(&s, ds, sizeof ds);
    for (int i = 0; i < 8; i++) {
        char tr[256];
        snprintf(tr, sizeof tr,
                 "\"optimizer\":\"adam\",\"learning_rate\":0.03,\"batch_size\":32,"
                 "\"epochs\":50,\"seed\":%d,\"lambda\":0.3",
                 100 + i);
        char *b = job_body(ds, "[64,20,10]", tr);
        submit_job(&s, NULL, b, id[i], sizeof id[i]);
        free(b);
    }
    /* Each job takes a few hundred ms (a few tens with batch 128 and 25 epochs, when two
     * workers on a fast machine could empty the queue while the submissions' fsyncs ran). */
    resp m;
    cr_assert_eq(http_get(&s, "/metrics", &m), 0);
    const char *qd = strstr(m.body, "\nbackpropd_jobs_queue_depth ");
    cr_assert_not_null(qd, "no queue depth in /metrics");
    int depth = atoi(qd + strlen("\nbackpropd_jobs_queue_depth "));
    cr_assert(depth >= 1 && depth <= 8, "queue depth %d right after 8 submissions", depth);
    resp_free(&m);
    for (int i = 0; i < 8; i++) {
        json_t *j = wait_job(&s, id[i], NULL, 120);
        cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "succeeded",
                         "job %d: %s", i, json_string_value(json_object_get(j, "error")));
        json_t *p = json_object_get(j, "progress");
        double reported = json_number_value(json_object_get(p, "cost"));
        double acc = json_number_value(json_object_get(p, "accuracy"));
        cr_assert(acc > 0.9, "job %d: training accuracy %.3f", i, acc);
        char *wt = get_text(&s, "/v1/jobs/%s/weights", id[i]);
        json_t *w = json_loads(wt, 0, NULL);
        close_rel(local_cost(w, 0.3), reported, 1e-9, "job cost vs in-process cost");
        json_decref(w);
        free(wt);
        json_decref(j);
    }
    resp r;
    cr_assert_eq(http_get(&s, "/metrics", &r), 0);
    cr_assert_not_null(strstr(r.body, "samples"), "metrics lack samples trained");
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- restart */

Test(jobs, sigterm_mid_training_resumes_bit_exactly, .timeout = 180)
{
    srv s;
    const char *args[] = {"--workers", "1", "--checkpoint-seconds", "1", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char ds[64], a[64], b[64];
    upload_digits(&s, ds, sizeof ds);
    char *body = job_body(ds, "[64,30,10]",
                          "\"optimizer\":\"adam\",\"learning_rate\":0.005,\"batch_size\":16,"
                          "\"epochs\":300,\"seed\":21,\"validation_split\":0.2,\"lambda\":0.2");
    submit_job(&s, NULL, body, a, sizeof a);
    /* 300 epochs (a few ms each, 1-2 s in all) leave SIGTERM ample time after epoch 12 on a
     * fast machine too; with 60 the job could end before the signal and log no release. */
    wait_epoch(&s, a, 12, 60);
    srv_stop(&s); /* SIGTERM mid-training: checkpoint, release, exit 0 */
    char *log = srv_log(&s);
    cr_assert_not_null(strstr(log, "status=queued"), "no release logged:\n%s", log);
    free(log);
    cr_assert_eq(srv_restart(&s, args), 0);
    json_t *ja = wait_job(&s, a, NULL, 120);
    cr_assert_str_eq(json_string_value(json_object_get(ja, "status")), "succeeded");
    /* The same job uninterrupted. */
    submit_job(&s, NULL, body, b, sizeof b);
    json_t *jb = wait_job(&s, b, NULL, 120);
    cr_assert_str_eq(json_string_value(json_object_get(jb, "status")), "succeeded");
    char *wa = get_text(&s, "/v1/jobs/%s/weights", a);
    char *wb = get_text(&s, "/v1/jobs/%s/weights", b);
    cr_assert_str_eq(wa, wb, "resumed weights differ from an uninterrupted run");
    /* and it ends reporting the same: epoch of the weights, why it stopped, accuracies */
    cr_assert_eq(json_integer_value(json_object_get(ja, "best_epoch")),
                 json_integer_value(json_object_get(jb, "best_epoch")));
    cr_assert_eq(json_integer_value(json_object_get(ja, "best_epoch")), 300);
    cr_assert_str_eq(json_string_value(json_object_get(ja, "stop_reason")), "completed");
    cr_assert_str_eq(json_string_value(json_object_get(jb, "stop_reason")), "completed");
    json_t *pa = json_object_get(ja, "progress"), *pb = json_object_get(jb, "progress");
    cr_assert_eq(json_number_value(json_object_get(pa, "accuracy")),
                 json_number_value(json_object_get(pb, "accuracy")));
    cr_assert_eq(json_number_value(json_object_get(pa, "validation_accuracy")),
                 json_number_value(json_object_get(pb, "validation_accuracy")));
    cr_assert(json_is_number(json_object_get(pa, "validation_accuracy")));
    json_t *ha = get_json(&s, "/v1/jobs/%s/cost", a), *hb = get_json(&s, "/v1/jobs/%s/cost", b);
    char *ta = json_dumps(ha, JSON_COMPACT | JSON_REAL_PRECISION(17));
    char *tb = json_dumps(hb, JSON_COMPACT | JSON_REAL_PRECISION(17));
    cr_assert_str_eq(ta, tb, "cost histories differ");
    free(ta);
    free(tb);
    json_decref(ha);
    json_decref(hb);
    free(wa);
    free(wb);
    json_decref(ja);
    json_decref(jb);
    free(body);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- what training reports */

/* A fresh server with digits uploaded (its id into ds). */
static void start_with_digits(srv *s, char *ds, size_t len)
{
    cr_assert_eq(srv_start(s, NULL), 0);
    upload_digits(s, ds, len);
}

static void stop_and_clean(srv *s)
{
    srv_stop(s);
    srv_cleanup(s);
}

/* Rows of digits the served weights label right, counted here with the core's bp_predict. */
static int64_t rows_right(const json_t *weights, const api_dataset *d)
{
    bp_spec spec;
    double *theta = served_theta(weights, &spec);
    bp_error be = {{0}};
    bp_work *w = bp_work_new(&spec, d->rows, &be);
    cr_assert_not_null(w);
    int32_t *pred = malloc((size_t)d->rows * sizeof *pred);
    bp_predict(NULL, pred, w, d->X, theta, d->rows);
    int64_t right = 0;
    for (int64_t i = 0; i < d->rows; i++)
        right += pred[i] == d->labels[i];
    free(pred);
    bp_work_free(w);
    free(theta);
    return right;
}

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    cr_assert(json_is_number(v), "%s is not a number", key);
    return json_number_value(v);
}

/* The final status event of a finished job's stream (replayed from the store). */
static json_t *final_event(const srv *s, const char *id)
{
    sse_stream k;
    read_stream(s, id, -1, &k);
    static sse_event ev[512];
    size_t n = sse_parse(k.buf, ev, 512);
    cr_assert_gt(n, 0);
    cr_assert_str_eq(ev[n - 1].event, "status");
    json_t *fin = json_incref(ev[n - 1].data);
    for (size_t i = 0; i < n; i++)
        json_decref(ev[i].data);
    free(k.buf);
    return fin;
}

/* Early stopping keeps the best epoch's weights: the job says which epoch (best_epoch, the
 * arg-min of its own validation-cost history) and why it stopped, /weights reports that epoch
 * and its costs, and all of it is in the list, the final event, and survives a restart. */
Test(jobs, early_stopping_reports_the_epoch_of_its_weights, .timeout = 120)
{
    srv s;
    char ds[64], id[64];
    start_with_digits(&s, ds, sizeof ds);
    char *body = job_body(ds, "[64,64,10]",
                          "\"optimizer\":\"adam\",\"learning_rate\":0.05,\"batch_size\":32,"
                          "\"epochs\":100,\"seed\":7,\"validation_split\":0.2,"
                          "\"early_stopping_patience\":2,\"lambda\":0");
    submit_job(&s, NULL, body, id, sizeof id);
    json_t *job = wait_job(&s, id, NULL, 60);
    cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded");
    cr_assert_str_eq(json_string_value(json_object_get(job, "stop_reason")), "early_stopping");
    int64_t last = json_integer_value(json_object_get(json_object_get(job, "progress"), "epoch"));
    cr_assert_lt(last, 100, "early stopping never triggered");

    json_t *hist = get_json(&s, "/v1/jobs/%s/cost", id);
    json_t *vc = json_object_get(hist, "validation_cost"), *c = json_object_get(hist, "cost");
    cr_assert_eq(json_array_size(vc), (size_t)last);
    size_t best = 0;
    for (size_t i = 1; i < json_array_size(vc); i++)
        if (json_number_value(json_array_get(vc, i)) < json_number_value(json_array_get(vc, best)))
            best = i;
    int64_t best_epoch = (int64_t)best + 1;
    cr_assert_eq(last, best_epoch + 2, "patience 2 after the best epoch %lld",
                 (long long)best_epoch);
    cr_assert_eq(json_integer_value(json_object_get(job, "best_epoch")), best_epoch);

    json_t *w = get_json(&s, "/v1/jobs/%s/weights", id);
    cr_assert_eq(json_integer_value(json_object_get(w, "epoch")), best_epoch);
    cr_assert_eq(num(w, "cost"), json_number_value(json_array_get(c, best)));
    cr_assert_eq(num(w, "validation_cost"), json_number_value(json_array_get(vc, best)));

    /* the list and the final event say the same */
    json_t *list = get_json(&s, "/v1/jobs");
    json_t *item = json_array_get(json_object_get(list, "jobs"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(item, "id")), id);
    cr_assert_eq(json_integer_value(json_object_get(item, "best_epoch")), best_epoch);
    cr_assert_str_eq(json_string_value(json_object_get(item, "stop_reason")), "early_stopping");
    json_t *fin = final_event(&s, id);
    cr_assert_str_eq(json_string_value(json_object_get(fin, "status")), "succeeded");
    cr_assert_eq(json_integer_value(json_object_get(fin, "best_epoch")), best_epoch);
    cr_assert_str_eq(json_string_value(json_object_get(fin, "stop_reason")), "early_stopping");

    /* durable */
    srv_stop(&s);
    cr_assert_eq(srv_restart(&s, NULL), 0);
    json_t *again = get_json(&s, "/v1/jobs/%s", id);
    cr_assert_eq(json_integer_value(json_object_get(again, "best_epoch")), best_epoch);
    cr_assert_str_eq(json_string_value(json_object_get(again, "stop_reason")), "early_stopping");
    json_t *w2 = get_json(&s, "/v1/jobs/%s/weights", id);
    cr_assert_eq(json_integer_value(json_object_get(w2, "epoch")), best_epoch);

    json_decref(w2);
    json_decref(again);
    json_decref(fin);
    json_decref(list);
    json_decref(w);
    json_decref(hist);
    json_decref(job);
    free(body);
    stop_and_clean(&s);
}

/* A run without early stopping: the weights are the last epoch's, it completed, and while it
 * was queued or running there was no stop reason (nor, queued, weights). */
Test(jobs, completed_run_reports_its_last_epoch, .timeout = 60)
{
    srv s;
    char ds[64], id[64];
    start_with_digits(&s, ds, sizeof ds);
    char *body = job_body(ds, "[64,10]", "\"epochs\":5,\"learning_rate\":0.5");
    submit_job(&s, NULL, body, id, sizeof id);
    json_t *q = get_json(&s, "/v1/jobs/%s", id);
    const char *st = json_string_value(json_object_get(q, "status"));
    if (!strcmp(st, "queued") || !strcmp(st, "running"))
        cr_assert(json_is_null(json_object_get(q, "stop_reason")), "%s", st);
    if (!strcmp(st, "queued"))
        cr_assert(json_is_null(json_object_get(q, "best_epoch")));
    json_t *job = wait_job(&s, id, NULL, 60);
    cr_assert_str_eq(json_string_value(json_object_get(job, "stop_reason")), "completed");
    cr_assert_eq(json_integer_value(json_object_get(job, "best_epoch")), 5);
    json_t *w = get_json(&s, "/v1/jobs/%s/weights", id);
    cr_assert_eq(json_integer_value(json_object_get(w, "epoch")), 5);
    cr_assert_eq(num(w, "cost"), num(json_object_get(job, "progress"), "cost"));
    cr_assert(json_is_null(json_object_get(w, "validation_cost")));
    cr_assert_eq(num(w, "cost"), local_cost(w, 1.0));
    json_decref(w);
    json_decref(job);
    json_decref(q);
    free(body);
    stop_and_clean(&s);
}

/* progress.accuracy is the training rows', progress.validation_accuracy the held-out rows',
 * and /cost has both per epoch. Without a split the training rows are all of digits, so the
 * accuracy is the count this test makes with the served weights; with one, the two counts
 * (accuracy × training rows, validation_accuracy × held-out rows) add up to it. */
Test(jobs, accuracy_on_training_and_held_out_rows, .timeout = 120)
{
    srv s;
    char ds[64], id[64];
    start_with_digits(&s, ds, sizeof ds);
    api_dataset d = {0};
    test_digits_load(&d);
    for (int split = 0; split < 2; split++) {
        char *body = job_body(ds, "[64,20,10]",
                              split ? "\"optimizer\":\"adam\",\"learning_rate\":0.01,"
                                      "\"batch_size\":50,\"epochs\":6,\"validation_split\":0.25"
                                    : "\"optimizer\":\"lbfgs\",\"epochs\":6");
        submit_job(&s, NULL, body, id, sizeof id);
        json_t *job = wait_job(&s, id, NULL, 60);
        cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded");
        json_t *p = json_object_get(job, "progress");
        json_t *w = get_json(&s, "/v1/jobs/%s/weights", id);
        cr_assert_eq(json_integer_value(json_object_get(w, "epoch")),
                     json_integer_value(json_object_get(p, "epoch")));
        int64_t right = rows_right(w, &d);
        double acc = num(p, "accuracy");
        json_t *hist = get_json(&s, "/v1/jobs/%s/cost", id);
        json_t *ha = json_object_get(hist, "accuracy");
        json_t *hv = json_object_get(hist, "validation_accuracy");
        size_t n = json_array_size(json_object_get(hist, "epoch"));
        cr_assert_eq(json_array_size(ha), n);
        cr_assert_eq(json_array_size(hv), n);
        cr_assert_eq(json_number_value(json_array_get(ha, n - 1)), acc);
        if (!split) {
            cr_assert_eq(acc, (double)right / (double)d.rows, "accuracy %.17g, counted %lld/%lld",
                         acc, (long long)right, (long long)d.rows);
            cr_assert(json_is_null(json_object_get(p, "validation_accuracy")));
            cr_assert(json_is_null(json_array_get(hv, n - 1)));
        } else {
            int64_t m_val = (int64_t)floor(0.25 * (double)d.rows), m_train = d.rows - m_val;
            double vacc = num(p, "validation_accuracy");
            cr_assert_eq(json_number_value(json_array_get(hv, n - 1)), vacc);
            double rt = acc * (double)m_train, rv = vacc * (double)m_val;
            cr_assert(fabs(rt - round(rt)) < 1e-9 && fabs(rv - round(rv)) < 1e-9,
                      "accuracy %.17g of %lld, validation %.17g of %lld", acc,
                      (long long)m_train, vacc, (long long)m_val);
            cr_assert_eq((int64_t)round(rt) + (int64_t)round(rv), right,
                         "%g + %g rows right, counted %lld", rt, rv, (long long)right);
        }
        json_decref(hist);
        json_decref(w);
        json_decref(job);
        free(body);
    }
    api_dataset_clear(&d);
    stop_and_clean(&s);
}

/* Hidden relu, output linear, learning rate 50 on digits: the first epoch's cost passes
 * 1e6 × max(J(Θ₀), 1), J(Θ₀) computed here from the seed's initial weights (bp_init_weights,
 * as the job does without a warm start). The job fails as diverged instead of succeeding. */
Test(jobs, diverging_run_fails_as_diverged, .timeout = 60)
{
    srv s;
    char ds[64], id[64];
    start_with_digits(&s, ds, sizeof ds);
    char *body = NULL;
    cr_assert(asprintf(&body, "{\"network\":{\"layers\":[64,25,10],\"activation\":\"relu\","
                              "\"output\":\"linear\"},\"dataset\":\"%s\",\"training\":"
                              "{\"learning_rate\":50,\"seed\":42}}", ds) > 0);
    submit_job(&s, NULL, body, id, sizeof id);
    json_t *job = wait_job(&s, id, NULL, 60);
    cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "failed");
    cr_assert_str_eq(json_string_value(json_object_get(job, "stop_reason")), "diverged");

    int sz[] = {64, 25, 10};
    bp_spec spec = {0};
    spec.n_layers = 3;
    memcpy(spec.sizes, sz, sizeof sz);
    spec.hidden = BP_ACT_RELU;
    spec.output = BP_OUT_LINEAR;
    int64_t P = bp_param_count(&spec);
    double *theta0 = malloc((size_t)P * sizeof(double));
    bp_rng rng;
    bp_rng_seed(&rng, 42);
    bp_init_weights(theta0, &spec, 0, &rng);
    api_dataset d = {0};
    test_digits_load(&d);
    api_error e = {0};
    double *Y = api_targets(&d, 10, &e);
    bp_error be = {{0}};
    bp_work *w = bp_work_new(&spec, d.rows, &be);
    double J0 = bp_cost_grad(NULL, w, d.X, Y, theta0, d.rows, 1.0, d.rows);
    char want[160];
    snprintf(want, sizeof want, "> 1e6 × max(initial cost %.3g, 1); lower the learning rate", J0);
    const char *err = json_string_value(json_object_get(job, "error"));
    cr_assert_not_null(err);
    cr_assert_eq(strncmp(err, "diverged at epoch 1: cost ", 26), 0, "error \"%s\"", err);
    cr_assert_not_null(strstr(err, want), "error \"%s\" lacks \"%s\"", err, want);
    double J1 = strtod(err + 26, NULL);
    cr_assert_gt(J1, 1e6 * fmax(J0, 1.0), "%s", err);
    json_t *fin = final_event(&s, id);
    cr_assert_str_eq(json_string_value(json_object_get(fin, "stop_reason")), "diverged");
    json_decref(fin);
    bp_work_free(w);
    free(Y);
    api_dataset_clear(&d);
    free(theta0);
    json_decref(job);
    free(body);
    stop_and_clean(&s);
}

/* POST /v1/jobs/{id}/predict on the first 50 digits. */
static json_t *predict_50(const srv *s, const char *id, const api_dataset *d)
{
    json_t *X = json_array();
    for (int i = 0; i < 50; i++) {
        json_t *row = json_array();
        for (int k = 0; k < 64; k++)
            json_array_append_new(row, json_real(d->X[i * 64 + k]));
        json_array_append_new(X, row);
    }
    json_t *pb = json_pack("{s:o}", "X", X);
    char *pbody = json_dumps(pb, JSON_COMPACT);
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/predict", id);
    resp r;
    cr_assert_eq(http_post_json(s, path, pbody, &r), 0);
    cr_assert_eq(r.status, 200, "predict: %ld %s", r.status, r.body);
    json_t *pr = resp_json(&r);
    cr_assert_not_null(pr);
    resp_free(&r);
    free(pbody);
    json_decref(pb);
    return pr;
}

/* A regression (linear output) net's predictions have no labels; classifiers' labels are the
 * arg-max of their outputs (sigmoid with one output: output >= 0.5). */
Test(jobs, predict_labels_only_for_classifiers, .timeout = 90)
{
    srv s;
    char ds[64], id[64];
    start_with_digits(&s, ds, sizeof ds);
    api_dataset d = {0};
    test_digits_load(&d);
    const char *outs[] = {"linear", "softmax", "sigmoid"};
    for (int k = 0; k < 3; k++) {
        char *body = NULL;
        cr_assert(asprintf(&body, "{\"network\":{\"layers\":[64,10],\"output\":\"%s\"},"
                                  "\"dataset\":\"%s\",\"training\":{\"epochs\":3,"
                                  "\"learning_rate\":0.1}}", outs[k], ds) > 0);
        submit_job(&s, NULL, body, id, sizeof id);
        json_t *job = wait_job(&s, id, NULL, 60);
        cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded", "%s",
                         outs[k]);
        json_t *pr = predict_50(&s, id, &d);
        json_t *o = json_object_get(pr, "outputs"), *labels = json_object_get(pr, "labels");
        cr_assert_eq(json_array_size(o), 50);
        if (k == 0) {
            cr_assert_null(labels, "linear output: labels present");
        } else {
            cr_assert_eq(json_array_size(labels), 50, "%s", outs[k]);
            for (size_t i = 0; i < 50; i++) {
                json_t *row = json_array_get(o, i);
                size_t best = 0;
                for (size_t j = 1; j < json_array_size(row); j++)
                    if (json_number_value(json_array_get(row, j)) >
                        json_number_value(json_array_get(row, best)))
                        best = j;
                cr_assert_eq(json_integer_value(json_array_get(labels, i)), (json_int_t)best,
                             "%s row %zu", outs[k], i);
            }
        }
        json_decref(pr);
        json_decref(job);
        free(body);
    }
    api_dataset_clear(&d);
    stop_and_clean(&s);
}

/* ---------------------------------------------------------------- one output, labels 0/1 */

/* A binary classifier: labels 0 and 1 on a network with ONE sigmoid output. /v1/cost takes
 * the data (api_dataset_fits: one output takes labels 0 and 1), so a job must train on it
 * too, and the cost the job reports is what /v1/cost computes at the job's weights. */
Test(jobs, binary_classifier_with_one_output_trains, .timeout = 60)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    /* 40 points, label 1 when x0 + x1 > 1 */
    json_t *X = json_array(), *y = json_array();
    for (int i = 0; i < 40; i++) {
        double a = (i % 8) / 7.0, b = (i / 8) / 4.0;
        json_array_append_new(X, json_pack("[f, f]", a, b));
        json_array_append_new(y, json_integer(a + b > 1.0));
    }
    json_t *dsj = json_pack("{s:o, s:o}", "X", X, "y", y);
    char *dstext = json_dumps(dsj, JSON_COMPACT);
    char ds[64], id[64];
    cr_assert_eq(post_for_id(&s, "/v1/datasets", "application/json", dstext, strlen(dstext),
                             NULL, ds, sizeof ds), 201);

    char *body = job_body(ds, "[2,2,1]",
                          "\"optimizer\":\"lbfgs\",\"lambda\":0.5,\"epochs\":20,\"seed\":5");
    submit_job(&s, NULL, body, id, sizeof id);
    json_t *job = wait_job(&s, id, NULL, 30);
    cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded", "%s",
                     json_string_value(json_object_get(job, "error")));
    double reported = json_number_value(json_object_get(json_object_get(job, "progress"), "cost"));

    /* /v1/cost on the same dataset at the job's weights */
    json_t *w = get_json(&s, "/v1/jobs/%s/weights", id);
    json_t *cb = json_pack("{s:O, s:O, s:s, s:f}", "network", json_object_get(w, "network"),
                           "theta", json_object_get(w, "theta"), "dataset", ds, "lambda", 0.5);
    char *ctext = json_dumps(cb, JSON_COMPACT | JSON_REAL_PRECISION(17));
    resp r;
    cr_assert_eq(http_post_json(&s, "/v1/cost", ctext, &r), 0);
    cr_assert_eq(r.status, 200, "cost: %ld %s", r.status, r.body);
    json_t *c = resp_json(&r);
    close_rel(json_number_value(json_object_get(c, "cost")), reported, 1e-12,
              "/v1/cost vs the job's cost");
    resp_free(&r);

    /* two labels on one output, but labels up to 2 do not fit it: 409 naming y */
    char ds3[64];
    const char *three = "{\"X\":[[0,0],[1,1],[2,2]],\"y\":[0,1,2]}";
    cr_assert_eq(post_for_id(&s, "/v1/datasets", "application/json", three, strlen(three), NULL,
                             ds3, sizeof ds3), 201);
    char *body3 = job_body(ds3, "[2,2,1]", "\"epochs\":1");
    cr_assert_eq(http_post_json(&s, "/v1/jobs", body3, &r), 0);
    expect_problem(&r, 409, "one output takes labels 0 and 1");
    resp_free(&r);

    free(body3);
    json_decref(c);
    free(ctext);
    json_decref(cb);
    json_decref(w);
    json_decref(job);
    free(body);
    free(dstext);
    json_decref(dsj);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---------------------------------------------------------------- admission under load */

#define BURST 40
#define QUOTA_KEY "alice-quota-key-0123456789"

/* Fires n copies of one POST at once (curl multi, one connection each) and counts the
 * answers by status: *accepted (`ok`), *refused (429); anything else fails the test. */
static void burst_post(const srv *s, const char *path, const char *ctype, const char *body,
                       const char *key, int n, long ok, int *accepted, int *refused)
{
    CURLM *m = curl_multi_init();
    CURL *e[BURST];
    struct curl_slist *h = NULL;
    char url[256], hdr[128];
    cr_assert(n <= BURST);
    snprintf(url, sizeof url, "%s%s", s->base, path);
    snprintf(hdr, sizeof hdr, "Content-Type: %s", ctype);
    h = curl_slist_append(h, hdr);
    if (key) {
        snprintf(hdr, sizeof hdr, "Authorization: Bearer %s", key);
        h = curl_slist_append(h, hdr);
    }
    for (int i = 0; i < n; i++) {
        e[i] = curl_easy_init();
        curl_easy_setopt(e[i], CURLOPT_URL, url);
        curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, test_curl_discard);
        curl_easy_setopt(e[i], CURLOPT_TIMEOUT, 60L);
        curl_easy_setopt(e[i], CURLOPT_FORBID_REUSE, 1L);
        curl_multi_add_handle(m, e[i]);
    }
    int running = n;
    while (running > 0) {
        cr_assert_eq(curl_multi_perform(m, &running), CURLM_OK);
        if (running > 0)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    *accepted = *refused = 0;
    for (int i = 0; i < n; i++) {
        long status = 0;
        curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &status);
        cr_assert(status == ok || status == 429, "request %d: status %ld", i, status);
        *accepted += status == ok;
        *refused += status == 429;
        curl_multi_remove_handle(m, e[i]);
        curl_easy_cleanup(e[i]);
    }
    curl_slist_free_all(h);
    curl_multi_cleanup(m);
}

/* A keys file with QUOTA_KEY for "alice" in a temp dir; the path into path. */
static void quota_keys_file(char *dir, size_t dlen, char *path, size_t plen)
{
    snprintf(dir, dlen, "/tmp/bpd_quota_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, plen, "%s/keys", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("alice:" QUOTA_KEY "\n", f);
    cr_assert_eq(fclose(f), 0);
}

static int count_listed(const srv *s, const char *const *headers, const char *path,
                        const char *field)
{
    json_t *l = get_json_h(s, headers, "%s", path);
    int n = (int)json_array_size(json_object_get(l, field));
    json_decref(l);
    return n;
}

/* One more POST after a burst: refused with 429, the detail containing needle, Retry-After
 * retry_after seconds. */
static void post_refused(const srv *s, const char *path, const char *body,
                         const char *const *headers, const char *needle, int retry_after)
{
    resp r;
    cr_assert_eq(http_req(s, "POST", path, "application/json", body, strlen(body), headers, &r),
                 0);
    expect_problem(&r, 429, needle);
    char ra[32];
    cr_assert_eq(resp_header(&r, "Retry-After", ra, sizeof ra), 0);
    cr_assert_eq(atoi(ra), retry_after);
    resp_free(&r);
}

/* 40 POST /v1/jobs of body at once (as key, NULL = none; h: the same key as headers) admit
 * exactly `want`, list exactly `want`, and one more is refused with `refusal`. */
static void expect_jobs_admitted(const srv *s, const char *body, const char *key,
                                 const char *const *h, int want, const char *refusal)
{
    int accepted, refused;
    burst_post(s, "/v1/jobs", "application/json", body, key, BURST, 202, &accepted, &refused);
    cr_assert_eq(accepted, want, "%d of %d accepted, want %d", accepted, BURST, want);
    cr_assert_eq(refused, BURST - want);
    cr_assert_eq(count_listed(s, h, "/v1/jobs", "jobs"), want);
    /* the refusal keeps its answer: 429, Retry-After 10, the limit named */
    post_refused(s, "/v1/jobs", body, h, refusal, 10);
}

/* --max-queue is decided in the transaction that inserts: 40 POSTs at once on 16 HTTP threads
 * never get more than 2 jobs queued or running (one runs on the only worker, one waits). */
Test(jobs, max_queue_holds_under_concurrent_posts, .timeout = 120)
{
    srv s;
    const char *args[] = {"--workers", "1", "--max-queue", "2", "--http-threads", "16", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char ds[64];
    upload_digits(&s, ds, sizeof ds);
    char *body = job_body(ds, "[64,25,10]", LONG_JOB);
    expect_jobs_admitted(&s, body, NULL, NULL, 2,
                         "the job queue is full (2 of 2 queued or running)");
    free(body);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* --quota-jobs likewise: 40 POSTs of one key at once, exactly 3 accepted. */
Test(jobs, job_quota_holds_under_concurrent_posts, .timeout = 120)
{
    char dir[64], keys[128], auth[128];
    quota_keys_file(dir, sizeof dir, keys, sizeof keys);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", QUOTA_KEY);
    const char *h[] = {auth, NULL};
    srv s;
    const char *args[] = {"--workers", "1", "--quota-jobs", "3", "--http-threads", "8",
                          "--api-keys-file", keys, NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    char ds[64];
    char *csv;
    size_t len;
    csv = test_digits_csv(1, &len);
    cr_assert_eq(post_for_id(&s, "/v1/datasets", "text/csv", csv, len, h, ds, sizeof ds), 201);
    free(csv);
    char *body = job_body(ds, "[64,25,10]", LONG_JOB);
    expect_jobs_admitted(&s, body, QUOTA_KEY, h, 3,
                         "quota: at most 3 queued or running jobs per API key");
    free(body);
    srv_stop(&s);
    srv_cleanup(&s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* --quota-bytes is decided in the transaction that stores the dataset: 40 uploads at once of
 * a dataset of B bytes under a quota of 4.5 B store exactly 4. */
Test(jobs, byte_quota_holds_under_concurrent_uploads, .timeout = 120)
{
    const int rows = 10, features = 4;
    const int64_t bytes = (int64_t)rows * features * 8 + rows * 4; /* X + labels */
    char quota[32];
    snprintf(quota, sizeof quota, "%lld", (long long)(4 * bytes + bytes / 2));
    char text[2048];
    size_t n = (size_t)snprintf(text, sizeof text, "{\"X\": [");
    for (int i = 0; i < rows; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s[%d, %d.5, %d, 1]", i ? ", " : "", i,
                              i % 3, i % 2);
    n += (size_t)snprintf(text + n, sizeof text - n, "], \"y\": [");
    for (int i = 0; i < rows; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s%d", i ? ", " : "", i % 2);
    snprintf(text + n, sizeof text - n, "]}");
    srv s;
    const char *args[] = {"--quota-bytes", quota, "--http-threads", "8", "--math-threads", "8",
                          NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    int accepted, refused;
    burst_post(&s, "/v1/datasets", "application/json", text, NULL, BURST, 201, &accepted,
               &refused);
    cr_assert_eq(accepted, 4, "--quota-bytes %s accepted %d uploads of %lld bytes", quota,
                 accepted, (long long)bytes);
    cr_assert_eq(count_listed(&s, NULL, "/v1/datasets", "datasets"), 4);
    char want[160];
    snprintf(want, sizeof want, "would take %lld of %s bytes (--quota-bytes)",
             (long long)(5 * bytes), quota);
    post_refused(&s, "/v1/datasets", text, NULL, want, 60);
    srv_stop(&s);
    srv_cleanup(&s);
}
