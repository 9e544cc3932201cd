/* h_export.c — a job's trained network in the formats browsers and runtimes load directly
 * (api/export.h): GET /v1/jobs/{id}/model.json + weights.bin (TensorFlow.js layers-model; the
 * manifest names the relative "weights.bin", so tf.loadLayersModel(url, {requestInit:
 * {headers}}) fetches both with the same key) and GET /v1/jobs/{id}/model.onnx (?dtype=
 * float64 default, or float32). Each is made from the job's latest weights, as /weights serves
 * them (live while it runs here, the final ones when done; 409 before the first epoch).
 *
 * The encoding of a large net is heavy, so each request runs on the work pool (http_defer):
 * the job is read there, then encoded. The stored standardization and class names are not
 * passed yet (NULL): the writers fold / embed them when given.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/export.h"
#include "api/eval_codec.h"
#include "server/handlers/h_jobs.h"
#include "server/handlers/handlers_model.h"
#include "server/handlers/handlers_util.h"
#include "server/handlers/routes.h"

typedef enum { EXPORT_TFJS_JSON, EXPORT_TFJS_WEIGHTS, EXPORT_ONNX } export_kind;

/* The job's class names as K C strings in *names (new, the strings borrowed from *arr, new);
 * both NULL when the job has none. 0 ok, -1 out of memory. */
static int class_names(const handlers_model *m, const char ***names, json_t **arr)
{
    *names = NULL;
    *arr = NULL;
    if (!m->extras.classes_json)
        return 0;
    int64_t K = m->spec.sizes[m->spec.n_layers - 1];
    K = K == 1 ? 2 : K; /* one sigmoid output: two classes */
    *arr = api_class_names_json(m->extras.classes_json, K);
    *names = *arr ? calloc((size_t)K, sizeof **names) : NULL;
    if (!*names)
        return -1;
    for (int64_t k = 0; k < K; k++)
        (*names)[k] = json_string_value(json_array_get(*arr, (size_t)k));
    return 0;
}

/* Encodes the job's latest weights as kind (dtype: ONNX's precision) and sets the reply; the
 * standardization it trained with is folded into Θ^(1) and its class names go into the
 * metadata. A finished job's export never changes: immutable (ETag, 304). */
static handler_result export_job(server *s, req *r, const store_job *job, export_kind kind,
                                 api_export_dtype dtype)
{
    handlers_model model;
    if (handlers_model_load(s, r, r->owner, job->id, job->spec_json,
                            job_status_name(job->status), &model) < 0) {
        handlers_model_clear(&model);
        return HANDLER_OK; /* the reply is set */
    }
    const char **names = NULL;
    json_t *names_arr = NULL;
    handler_result hr;
    size_t len = 0;
    unsigned char *bytes = NULL;
    if (class_names(&model, &names, &names_arr) < 0) {
        hr = http_reply_problem(r, 503, "out of memory: try again");
        goto cleanup;
    }
    api_export_model m = {.job_id = job->id, .epoch = model.epoch, .spec = &model.spec,
                          .theta = model.theta, .mean = model.extras.mean,
                          .sd = model.extras.sd, .classes = names,
                          .n_classes = names ? json_array_size(names_arr) : 0,
                          .training_precision = bp_precision_name(model.cfg.precision)};
    if (kind == EXPORT_TFJS_JSON) {
        json_t *j = api_export_tfjs_json(&m, "weights.bin");
        hr = j ? http_reply_json(r, 200, j) : http_reply_problem(r, 503, "out of memory: try again");
    } else {
        bytes = kind == EXPORT_ONNX ? api_export_onnx(&m, dtype, &len)
                                    : api_export_tfjs_weights(&m, &len);
        if (!bytes) {
            hr = http_reply_problem(r, 503, "out of memory: try again");
            goto cleanup;
        }
        if (kind == EXPORT_ONNX) {
            char disp[96];
            snprintf(disp, sizeof disp, "attachment; filename=\"%s.onnx\"", job->id);
            http_add_header(r, "Content-Disposition", disp);
        }
        hr = http_reply_data(r, 200, "application/octet-stream", bytes, len);
    }
    if (job->status == JOB_SUCCEEDED || job->status == JOB_FAILED ||
        job->status == JOB_CANCELLED) /* the final weights never change again */
        http_reply_immutable(r);
cleanup:
    free(bytes);
    free(names);
    json_decref(names_arr);
    handlers_model_clear(&model);
    return hr;
}

static handler_result tfjs_json(server *s, req *r, const store_job *job)
{
    return export_job(s, r, job, EXPORT_TFJS_JSON, API_EXPORT_FLOAT32);
}

static handler_result tfjs_weights(server *s, req *r, const store_job *job)
{
    return export_job(s, r, job, EXPORT_TFJS_WEIGHTS, API_EXPORT_FLOAT32);
}

static handler_result onnx_f64(server *s, req *r, const store_job *job)
{
    return export_job(s, r, job, EXPORT_ONNX, API_EXPORT_FLOAT64);
}

static handler_result onnx_f32(server *s, req *r, const store_job *job)
{
    return export_job(s, r, job, EXPORT_ONNX, API_EXPORT_FLOAT32);
}

/* The export a deferred request makes. */
typedef struct {
    job_handler fn;
} export_op;
static export_op op_tfjs_json = {tfjs_json}, op_tfjs_weights = {tfjs_weights},
                 op_onnx_f64 = {onnx_f64}, op_onnx_f32 = {onnx_f32};

/* On the work pool: the caller's job (404 when it has none), then the export. */
static void export_work(void *arg, req *r)
{
    const export_op *op = arg;
    handlers_on_job(r->ctx, r, op->fn);
}

handler_result h_jobs_model_json(void *ctx, req *r)
{
    (void)ctx;
    return http_defer(r, export_work, &op_tfjs_json);
}

handler_result h_jobs_weights_bin(void *ctx, req *r)
{
    (void)ctx;
    return http_defer(r, export_work, &op_tfjs_weights);
}

handler_result h_jobs_model_onnx(void *ctx, req *r)
{
    (void)ctx;
    api_error ae = {0};
    api_export_dtype dtype;
    if (api_export_dtype_parse(http_query(r, "dtype"), &dtype, &ae) < 0)
        return handlers_reply_api_error(r, &ae);
    return http_defer(r, export_work, dtype == API_EXPORT_FLOAT32 ? &op_onnx_f32 : &op_onnx_f64);
}
