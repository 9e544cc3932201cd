/* http_jobs_f32.c — training.precision through the real backpropd binary over HTTP: a float32
 * digits job learns like the float64 one (held-out accuracy within 0.5 points, different
 * bits), the job JSON, GET …/weights and the tfjs export say which precision trained them,
 * two float32 runs on different worker counts give the same bytes, and bad precision values
 * are 400 problems naming training.precision.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bp.h"
#include "tests/harness.h"

static const char *TRAINING =
    "\"optimizer\":\"adam\",\"learning_rate\":0.01,\"lambda\":0.1,\"batch_size\":64,"
    "\"epochs\":30,\"seed\":11,\"validation_split\":0.2";

/* Submits the digits job in `precision` (NULL: the default) and waits for it. */
static json_t *run_job(const srv *s, const char *ds, const char *precision, char *id, size_t n)
{
    char training[512];
    if (precision)
        snprintf(training, sizeof training, "%s,\"precision\":\"%s\"", TRAINING, precision);
    else
        snprintf(training, sizeof training, "%s", TRAINING);
    submit_training(s, NULL, ds, "[64,25,10]", training, id, n);
    json_t *job = wait_job(s, id, "succeeded", 90);
    cr_assert_not_null(job);
    return job;
}

static double vacc(const json_t *job)
{
    return json_number_value(json_object_get(json_object_get(job, "progress"),
                                             "validation_accuracy"));
}

Test(jobs_f32, float32_job_learns_and_says_so, .timeout = 180)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    char ds[64], id64[64], id32[64];
    upload_digits(&s, ds, sizeof ds);
    json_t *j64 = run_job(&s, ds, NULL, id64, sizeof id64);
    json_t *j32 = run_job(&s, ds, "float32", id32, sizeof id32);
    const char *p64 = json_string_value(
        json_object_get(json_object_get(j64, "training"), "precision"));
    const char *p32 = json_string_value(
        json_object_get(json_object_get(j32, "training"), "precision"));
    cr_assert_str_eq(p64 ? p64 : "(none)", "float64");
    cr_assert_str_eq(p32 ? p32 : "(none)", "float32");
    double a64 = vacc(j64), a32 = vacc(j32);
    cr_log_info("digits over HTTP: held-out accuracy float64 %.4f float32 %.4f", a64, a32);
    cr_assert_geq(a32, 0.9);
    cr_assert_leq(fabs(a64 - a32), 0.005, "float32 %.4f vs float64 %.4f", a32, a64);
    json_t *w64 = get_json(&s, "/v1/jobs/%s/weights", id64);
    json_t *w32 = get_json(&s, "/v1/jobs/%s/weights", id32);
    cr_assert_str_eq(json_string_value(json_object_get(w64, "precision")), "float64");
    cr_assert_str_eq(json_string_value(json_object_get(w32, "precision")), "float32");
    cr_assert_not(json_equal(json_object_get(w64, "theta"), json_object_get(w32, "theta")));
    json_t *m = get_json(&s, "/v1/jobs/%s/model.json", id32);
    json_t *meta = json_object_get(m, "userDefinedMetadata");
    cr_assert_str_eq(json_string_value(json_object_get(meta, "training_precision")), "float32");
    json_decref(m);
    json_decref(w64);
    json_decref(w32);
    json_decref(j64);
    json_decref(j32);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* The same float32 job on 1 worker / 1 job thread and on 2 workers / 3 job threads: the same
 * weights, byte for byte. */
Test(jobs_f32, float32_same_bytes_any_threads, .timeout = 180)
{
    const char *a1[] = {"--workers", "1", "--job-threads", "1", NULL};
    const char *a2[] = {"--workers", "2", "--job-threads", "3", NULL};
    const char *const *args[] = {a1, a2};
    char *theta[2];
    for (int k = 0; k < 2; k++) {
        srv s;
        cr_assert_eq(srv_start(&s, args[k]), 0);
        char ds[64], id[64];
        upload_digits(&s, ds, sizeof ds);
        json_decref(run_job(&s, ds, "float32", id, sizeof id));
        json_t *w = get_json(&s, "/v1/jobs/%s/weights", id);
        theta[k] = json_dumps(json_object_get(w, "theta"), JSON_COMPACT);
        json_decref(w);
        srv_stop(&s);
        srv_cleanup(&s);
    }
    cr_assert_str_eq(theta[0], theta[1]);
    free(theta[0]);
    free(theta[1]);
}

Test(jobs_f32, bad_precision_is_a_named_400, .timeout = 60)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    char ds[64];
    upload_digits(&s, ds, sizeof ds);
    const char *bad[] = {"\"precision\":\"float16\"", "\"precision\":32",
                         "\"precision\":null", "\"precision\":\"FLOAT32\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *body = job_body(ds, "[64,10]", bad[i]);
        resp r;
        cr_assert_eq(http_post_json(&s, "/v1/jobs", body, &r), 0);
        expect_problem(&r, 400, "training.precision: must be one of float64, float32");
        resp_free(&r);
        free(body);
    }
    srv_stop(&s);
    srv_cleanup(&s);
}
