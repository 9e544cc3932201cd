/* http_export.c — the export routes of the real binary over HTTP (the JavaScript tests load the
 * same files in TensorFlow.js and ONNX Runtime; these run under every server variant, ASan
 * included): weights.bin is the float32 of /weights' Θ in the manifest's order, model.onnx a
 * protobuf beginning with ir_version 7 whose float32 form is the smaller by the weights' half,
 * and the problem answers: 400 naming dtype, 404 unknown job on every route.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"

static float le_float(const char *p)
{
    uint32_t u = 0;
    for (int i = 3; i >= 0; i--)
        u = u << 8 | (unsigned char)p[i];
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void get(const srv *s, const char *path, resp *r, long want, const char *ctype)
{
    cr_assert_eq(http_get(s, path, r), 0);
    cr_assert_eq(r->status, want, "GET %s: %ld %s", path, r->status, r->body);
    char ct[64] = "";
    resp_header(r, "Content-Type", ct, sizeof ct);
    cr_assert_str_eq(ct, ctype, "GET %s", path);
}

Test(http_export, routes_serve_the_weights_and_refuse_what_they_must, .timeout = 60)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    char ds[64], job[64], path[128];
    const char *data = "{\"X\": [[0, 0.5], [1, 0.25], [0.5, 0.75], [0.2, 0.1]], "
                       "\"y\": [0, 1, 1, 0]}";
    cr_assert_eq(post_for_id(&s, "/v1/datasets", "application/json", data, strlen(data), NULL, ds,
                             sizeof ds), 201);
    char body[512];
    snprintf(body, sizeof body,
             "{\"network\": {\"layers\": [2, 3, 2], \"activation\": \"tanh\", "
             "\"output\": \"softmax\"}, \"dataset\": \"%s\", "
             "\"training\": {\"epochs\": 5, \"seed\": 9}}", ds);
    submit_job(&s, NULL, body, job, sizeof job);
    json_decref(wait_job_h(&s, NULL, job, "succeeded", 30));

    /* weights.bin: per layer kernel (Θ[:,1:]ᵀ) then bias, float32 little-endian */
    json_t *w = get_json_h(&s, NULL, "/v1/jobs/%s/weights", job);
    json_t *theta = json_object_get(w, "theta");
    resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s/weights.bin", job);
    get(&s, path, &r, 200, "application/octet-stream");
    cr_assert_eq(r.len, 4u * (3 * 3 + 2 * 4));
    size_t k = 0;
    for (size_t l = 0; l < 2; l++) {
        json_t *T = json_array_get(theta, l);
        size_t out = json_array_size(T), in = json_array_size(json_array_get(T, 0)) - 1;
        for (size_t i = 0; i < in; i++)
            for (size_t j = 0; j < out; j++, k++)
                cr_assert_eq(le_float(r.body + 4 * k),
                             (float)json_real_value(json_array_get(json_array_get(T, j), 1 + i)));
        for (size_t j = 0; j < out; j++, k++)
            cr_assert_eq(le_float(r.body + 4 * k),
                         (float)json_real_value(json_array_get(json_array_get(T, j), 0)));
    }
    resp_free(&r);
    json_decref(w);

    snprintf(path, sizeof path, "/v1/jobs/%s/model.json", job);
    get(&s, path, &r, 200, "application/json");
    json_t *mj = resp_json(&r);
    cr_assert_str_eq(json_string_value(json_object_get(mj, "format")), "layers-model");
    json_decref(mj);
    resp_free(&r);

    snprintf(path, sizeof path, "/v1/jobs/%s/model.onnx", job);
    get(&s, path, &r, 200, "application/octet-stream");
    cr_assert(r.len > 17 * 8 && r.body[0] == 0x08 && r.body[1] == 0x07, "not ir_version 7");
    cr_assert(memmem(r.body, r.len, job, strlen(job)), "no job id in the metadata");
    size_t f64 = r.len;
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s/model.onnx?dtype=float32", job);
    get(&s, path, &r, 200, "application/octet-stream");
    /* 17 weights of 4 bytes instead of 8 (and a length prefix or two a byte shorter) */
    cr_assert(f64 >= r.len + 17 * 4 && f64 <= r.len + 17 * 4 + 4, "float64 %zu bytes, float32 %zu",
              f64, r.len);
    resp_free(&r);

    snprintf(path, sizeof path, "/v1/jobs/%s/model.onnx?dtype=int8", job);
    cr_assert_eq(http_get(&s, path, &r), 0);
    expect_problem(&r, 400, "dtype: ");
    resp_free(&r);
    static const char *const files[] = {"model.json", "weights.bin", "model.onnx"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "/v1/jobs/job_000000000000000000000000/%s", files[i]);
        cr_assert_eq(http_get(&s, path, &r), 0);
        expect_problem(&r, 404, "job_000000000000000000000000");
        resp_free(&r);
    }
    srv_stop(&s);
    srv_cleanup(&s);
}
