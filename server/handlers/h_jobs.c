/* h_jobs.c — the /v1/jobs endpoints (routes.h): submit, list, get, weights,
 * gradient, predictions, events, cancel, delete (the cost history is h_cost.c).
 *
 * The store is the record of every job; a job running in THIS process also has a live entry in
 * jobs.c (jobs_live.h), which is fresher (every epoch, not every checkpoint) and is preferred
 * for progress, /cost and /weights while it runs. Every handler first reads the job from the
 * store with r->owner, so another tenant's id is a plain 404. Short store reads run on the HTTP
 * thread; anything that touches a dataset or waits for a worker (gradient, predict, cancel and
 * delete of a running job) runs on the work pool through http_defer.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/eval_codec.h"
#include "api/jobs_codec.h"
#include "api/math_codec.h"
#include "server/handlers/h_events.h"
#include "server/handlers/h_jobs.h"
#include "server/handlers/handlers_job_cache.h"
#include "server/handlers/handlers_model.h"
#include "server/handlers/handlers_util.h"
#include "server/jobs/jobs_live.h"
#include "server/common/log.h"
#include "server/handlers/routes.h"
#include "server/server.h"
#include "server/store/store.h"

#define CANCEL_WAIT_MS 5000

/* ------------------------------------------------------------------ helpers */

static int is_final(job_status st)
{
    return st == JOB_SUCCEEDED || st == JOB_FAILED || st == JOB_CANCELLED;
}

json_t *handlers_job_json(server *s, const store_job *job)
{
    store_progress p = job->progress;
    if (job->status == JOB_RUNNING)
        jobs_live_progress(s->jobs, job->id, &p);
    api_job_view v = {
        .id = job->id,
        .status = job_status_name(job->status),
        .dataset = job->dataset_id,
        .spec_json = job->spec_json,
        .error = job->error,
        .created_at_ms = job->created_at,
        .started_at_ms = job->started_at,
        .finished_at_ms = job->finished_at,
        .progress = handlers_progress_view(&p),
        .best_epoch = p.best_epoch,
        .stop_reason = p.stop_reason,
        .labels_json = job->labels_json,
        .metrics_json = job->metrics_json,
    };
    return api_job_json(&v);
}

static handler_result reply_job(server *s, req *r, unsigned status, const store_job *job)
{
    json_t *j = handlers_job_json(s, job);
    if (!j)
        return http_reply_problem(r, 500, "job %s: stored spec is unreadable", job->id);
    return http_reply_json(r, status, j);
}

/* Reads the caller's job; on failure the reply is set and -1 returned. */
static int get_job(server *s, req *r, store_job *job)
{
    store_error se = {0};
    memset(job, 0, sizeof *job);
    int rc = store_job_get(s->st, r->owner, r->param[0], job, &se);
    if (rc < 0) {
        handlers_reply_store_error(r, rc, &se, "job", r->param[0]);
        return -1;
    }
    return 0;
}

/* Reads the caller's job named by the path (404 when it has none), runs fn on it, frees it. */
static handler_result on_job(void *ctx, req *r, job_handler fn)
{
    server *s = ctx;
    store_job job;
    if (get_job(s, r, &job) < 0)
        return HANDLER_OK;
    handler_result hr = fn(s, r, &job);
    store_job_clear(&job);
    return hr;
}

/* ------------------------------------------------------------------ POST /v1/jobs */

/* The stored dataset against the network: api_dataset_fits (the one check, also used by the
 * math endpoints and the trainer) on the dataset's shape, its detail prefixed with the
 * dataset's id. 0 fits, -1 with a 409 in err. */
static int dataset_fits(const store_dataset_meta *meta, const bp_spec *spec, api_error *err)
{
    int32_t label_mark = 0; /* api_dataset_fits asks only whether labels or Y are there */
    double y_mark = 0;
    api_dataset shape = {.rows = meta->rows, .features = meta->features,
                         .outputs = meta->outputs};
    if (meta->has_labels)
        shape.labels = &label_mark;
    else
        shape.Y = &y_mark;
    api_error inner = {0};
    if (api_dataset_fits(&shape, spec, &inner) == 0)
        return 0;
    api_fail(err, inner.status, "dataset: %s: %s", meta->id, inner.detail);
    return -1;
}

handler_result h_jobs_create(void *ctx, req *r)
{
    server *s = ctx;
    json_t *body = NULL;
    api_job_request jr;
    memset(&jr, 0, sizeof jr);
    store_job job;
    memset(&job, 0, sizeof job);
    api_error ae = {0};
    store_error se = {0};
    api_job_extras extras;
    memset(&extras, 0, sizeof extras);
    handler_result hr;

    if (atomic_load(&s->shutting_down) || jobs_stopping(s->jobs)) {
        http_add_header(r, "Retry-After", "5");
        hr = http_reply_problem(r, 503, "shutting down: not accepting jobs");
        goto cleanup;
    }
    store_idempotency idem;
    int keyed = handlers_idempotency(r, s->cfg.idempotency_ttl, NULL, &idem);
    if (keyed < 0) {
        hr = HANDLER_OK;
        goto cleanup;
    }
    job.idem = keyed ? &idem : NULL;
    body = api_parse(r->body, r->body_len, &ae);
    if (!body || api_job_request_parse(&jr, body, &ae) < 0) {
        hr = handlers_reply_api_error(r, &ae);
        goto cleanup;
    }

    /* The dataset must exist for this owner and fit the network. */
    store_dataset_meta meta;
    int rc = store_dataset_get(s->st, r->owner, jr.dataset, &meta, &se);
    if (rc < 0) {
        handlers_store_problem(&ae, r, rc, &se, "dataset", "dataset", jr.dataset);
        hr = handlers_reply_api_error(r, &ae);
        goto cleanup;
    }
    if (dataset_fits(&meta, &jr.spec, &ae) < 0) {
        hr = handlers_reply_api_error(r, &ae);
        goto cleanup;
    }
    int64_t m_train, m_val;
    bp_error be = {{0}};
    if (bp_split_sizes(meta.rows, jr.train.validation_split, &m_train, &m_val, &be) < 0) {
        hr = http_reply_problem(r, 409, "training.%s (dataset %s)", be.msg, jr.dataset);
        goto cleanup;
    }

    if (handlers_model_prepare(s, r, &jr, &extras, &ae) < 0) {
        hr = handlers_reply_api_error(r, &ae);
        goto cleanup;
    }
    if (handlers_random_id(job.id, sizeof job.id, "job_") < 0) {
        hr = http_reply_problem(r, 503, "no randomness for a job id: try again");
        goto cleanup;
    }
    snprintf(job.owner, sizeof job.owner, "%s", r->owner);
    snprintf(job.dataset_id, sizeof job.dataset_id, "%s", jr.dataset);
    job.labels_json = jr.labels_json; /* moves to the job */
    jr.labels_json = NULL;
    job.spec_json = api_job_spec_dump_extras(&jr.spec, &jr.train, &extras);
    if (!job.spec_json) {
        hr = http_reply_problem(r, 503, "out of memory: try again");
        goto cleanup;
    }
    job.status = JOB_QUEUED;
    job.progress.epochs = jr.train.epochs;
    job.progress.cost = job.progress.validation_cost = NAN;
    job.progress.accuracy = job.progress.samples_per_second = NAN;
    job.progress.validation_accuracy = job.progress.best_cost = NAN;
    job.progress.best_validation_cost = NAN;
    /* The store admits or refuses it (--max-queue, --quota-jobs: 429) in the insert. */
    rc = store_job_create(s->st, &job, jr.theta0, jr.theta0 ? bp_param_count(&jr.spec) : 0, &se);
    if (rc == STORE_REPLAY) { /* a retry: the job the first request made */
        store_job_clear(&job);
        snprintf(job.id, sizeof job.id, "%s", idem.replay_id);
        rc = store_job_get(s->st, r->owner, idem.replay_id, &job, &se);
        http_add_header(r, "Idempotent-Replayed", "true");
    }
    if (rc < 0) {
        hr = handlers_reply_store_error(r, rc, &se, "job", job.id);
        goto cleanup;
    }
    jobs_notify(s->jobs);
    log_event(LOG_INFO, "job", "id=%s status=%s epoch=0", job.id, job_status_name(job.status));
    char loc[80];
    snprintf(loc, sizeof loc, "/v1/jobs/%s", job.id);
    http_add_header(r, "Location", loc);
    hr = reply_job(s, r, 202, &job);
cleanup:
    json_decref(body);
    api_job_request_clear(&jr);
    api_job_extras_clear(&extras);
    store_job_clear(&job);
    return hr;
}

/* ------------------------------------------------------------------ GET /v1/jobs/{id} */

/* The body is kept in s->job_cache (handlers_job_cache.h) under the job's store version and
 * live version, both read before the job is: a poll of a job that did not change since is
 * answered from there. A running job is kept only when it runs here with the same live
 * version after the body was made as before (so the body holds that version's progress). */
handler_result h_jobs_get(void *ctx, req *r)
{
    server *s = ctx;
    uint64_t version = store_job_version(s->st, r->param[0]);
    uint64_t live = jobs_live_version(s->jobs, r->param[0]);
    if (handlers_job_cache_reply(s->job_cache, r, r->owner, r->param[0], version, live))
        return HANDLER_OK;
    store_job job;
    if (get_job(s, r, &job) < 0)
        return HANDLER_OK;
    json_t *j = handlers_job_json(s, &job);
    size_t len = 0;
    char *text = j ? api_dump(j, &len) : NULL;
    json_decref(j);
    if (!text)
        http_reply_problem(r, 500, "job %s: stored spec is unreadable", job.id);
    else {
        if (job.status != JOB_RUNNING || (live && jobs_live_version(s->jobs, job.id) == live))
            handlers_job_cache_put(s->job_cache, r->owner, job.id, version, live, text, len);
        http_reply_text(r, 200, "application/json", text, len);
    }
    store_job_clear(&job);
    return HANDLER_OK;
}

/* ------------------------------------------------------------------ GET …/weights */

static handler_result job_weights(server *s, req *r, const store_job *job)
{
    handlers_model m;
    handler_result hr = HANDLER_OK;
    if (handlers_model_load(s, r, r->owner, job->id, job->spec_json, job_status_name(job->status), &m) == 0) {
        json_t *out = api_job_weights_json(&m.spec, m.theta, m.epoch, m.cost, m.validation_cost);
        int64_t K = m.spec.sizes[m.spec.n_layers - 1];
        json_t *names = m.extras.classes_json && m.spec.output != BP_OUT_LINEAR
                            ? api_class_names_json(m.extras.classes_json, K < 2 ? 2 : K)
                            : NULL;
        if (!out)
            json_decref(names);
        if (out && ((names && json_object_set_new(out, "classes", names) < 0) ||
                    api_standardize_set(out, m.extras.mean, m.extras.sd, m.spec.sizes[0]) < 0 ||
                    json_object_set_new(out, "precision",
                                        json_string(bp_precision_name(m.cfg.precision))) < 0)) {
            json_decref(out);
            out = NULL;
        }
        hr = out ? http_reply_json(r, 200, out)
                 : http_reply_problem(r, 500, "could not encode the weights");
        if (is_final(job->status)) /* the final weights never change again */
            http_reply_immutable(r);
    }
    handlers_model_clear(&m);
    return hr;
}

handler_result h_jobs_weights(void *ctx, req *r)
{
    return on_job(ctx, r, job_weights);
}

/* ------------------------------------------------------------------ deferred math */

typedef struct {
    char id[40];
    char owner[64];
    char dataset[40];
    char *spec_json;
    double *X;        /* predict: rows × s_1 */
    int64_t rows;
    handlers_model model;  /* predict: the spec, parsed once; the weights once loaded */
} math_ctx;

static void math_ctx_free(void *p)
{
    math_ctx *c = p;
    if (!c)
        return;
    free(c->spec_json);
    free(c->X);
    handlers_model_clear(&c->model);
    free(c);
}

static math_ctx *math_ctx_new(req *r, const store_job *job)
{
    math_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    snprintf(c->id, sizeof c->id, "%s", job->id);
    snprintf(c->owner, sizeof c->owner, "%s", r->owner);
    snprintf(c->dataset, sizeof c->dataset, "%s", job->dataset_id);
    c->spec_json = strdup(job->spec_json ? job->spec_json : "");
    if (!c->spec_json) {
        free(c);
        return NULL;
    }
    http_on_complete(r, math_ctx_free, c);
    return c;
}

/* {"cost","gradients"} at the latest weights on the job's whole dataset, λ from its training
 * config, m_reg = the dataset's rows: what POST /v1/gradient answers for the same model. */
static void gradient_work(void *arg, req *r)
{
    math_ctx *c = arg;
    server *s = r->ctx;
    api_error ae = {0};
    store_error se = {0};
    bp_error be = {{0}};
    double *X = NULL, *Y = NULL, *targets = NULL, *grad = NULL;
    int32_t *labels = NULL;
    bp_work *w = NULL;
    store_dataset_meta meta;
    handlers_model m;

    if (handlers_model_load(s, r, c->owner, c->id, c->spec_json, NULL, &m) < 0)
        goto cleanup;
    const bp_spec *spec = &m.spec;
    int rc = store_dataset_load(s->st, c->owner, c->dataset, &meta, &X, &labels, &Y, &se);
    if (rc == STORE_NOT_FOUND) {
        http_reply_problem(r, 409, "dataset: %s of job %s no longer exists", c->dataset, c->id);
        goto cleanup;
    }
    if (rc < 0) {
        handlers_reply_store_error(r, rc, &se, "dataset", c->dataset);
        goto cleanup;
    }
    api_dataset d = {.rows = meta.rows, .features = meta.features, .outputs = meta.outputs,
                     .X = X, .labels = labels, .Y = Y};
    if (api_dataset_fits(&d, spec, &ae) < 0 ||
        !(targets = api_targets(&d, spec->sizes[spec->n_layers - 1], &ae))) {
        http_reply_problem(r, ae.status ? ae.status : 409, "%s", ae.detail);
        goto cleanup;
    }
    handlers_model_inputs(&m, X, meta.rows);
    w = bp_work_new(spec, meta.rows, &be);
    grad = calloc((size_t)bp_param_count(spec), sizeof *grad);
    if (!w || !grad) {
        http_reply_problem(r, 503, "out of memory for the gradient: %s", be.msg);
        goto cleanup;
    }
    double J = bp_cost_grad(grad, w, X, targets, m.theta, meta.rows, m.cfg.lambda, meta.rows);
    json_t *answer = api_gradient_json(J, grad, spec); /* NULL when J is not finite */
    if (!answer) {
        http_reply_problem(r, 409, "the gradient at the job's weights is not finite");
        goto cleanup;
    }
    http_reply_json(r, 200, answer);
cleanup:
    bp_work_free(w);
    handlers_model_clear(&m);
    free(X);
    free(Y);
    free(labels);
    free(targets);
    free(grad);
}

static handler_result job_gradient(server *s, req *r, const store_job *job)
{
    (void)s;
    math_ctx *c = math_ctx_new(r, job);
    if (!c)
        return http_reply_problem(r, 503, "out of memory: try again");
    return http_defer(r, gradient_work, c);
}

handler_result h_jobs_gradient(void *ctx, req *r)
{
    return on_job(ctx, r, job_gradient);
}

/* {"outputs","labels"} of the latest weights for c->X; a linear (regression) output has no
 * labels: {"outputs"} alone. */
static void predict_work(void *arg, req *r)
{
    math_ctx *c = arg;
    server *s = r->ctx;
    bp_error be = {{0}};
    double *out = NULL;
    int32_t *labels = NULL;
    bp_work *w = NULL;
    handlers_model *m = &c->model; /* the spec is there (job_predict) */

    if (handlers_model_weights(s, r, c->owner, c->id, NULL, m) < 0)
        goto cleanup;
    int K = m->spec.sizes[m->spec.n_layers - 1];
    int classifier = m->spec.output != BP_OUT_LINEAR;
    w = bp_work_new(&m->spec, c->rows, &be);
    out = malloc((size_t)c->rows * (size_t)K * sizeof *out);
    labels = classifier ? malloc((size_t)c->rows * sizeof *labels) : NULL;
    if (!w || !out || (classifier && !labels)) {
        http_reply_problem(r, 503, "out of memory for the predictions: %s", be.msg);
        goto cleanup;
    }
    handlers_model_inputs(m, c->X, c->rows);
    bp_predict(out, labels, w, c->X, m->theta, c->rows);
    json_t *answer = api_predictions_json(out, labels, c->rows, K);
    if (answer && api_predictions_named(answer, labels, c->rows, K, m->extras.classes_json) < 0) {
        json_decref(answer);
        answer = NULL;
    }
    if (!answer)
        http_reply_problem(r, 503, "out of memory for the predictions");
    else
        http_reply_json(r, 200, answer);
cleanup:
    bp_work_free(w);
    free(out);
    free(labels);
}

/* On the work pool (the route has a body): decode X for the job's network → predict_work. */
static handler_result job_predict(server *s, req *r, const store_job *job)
{
    (void)s;
    api_error ae = {0};
    math_ctx *c = math_ctx_new(r, job);
    if (!c)
        return http_reply_problem(r, 503, "out of memory: try again");
    if (handlers_model_spec(r, job->id, job->spec_json, &c->model) < 0)
        return HANDLER_OK; /* the 500 is set */
    if (api_predict_request_parse(r->body, r->body_len, c->model.spec.sizes[0], &c->X, &c->rows,
                                  &ae) < 0)
        return handlers_reply_api_error(r, &ae);
    return http_defer(r, predict_work, c); /* runs at once: this route is already on the pool */
}

handler_result h_jobs_predict(void *ctx, req *r)
{
    return on_job(ctx, r, job_predict);
}

/* ------------------------------------------------------------------ GET …/events */

static handler_result job_events(server *s, req *r, const store_job *job)
{
    int64_t last = 0;
    const char *h = http_header(r, "Last-Event-ID");
    if (h && handlers_whole_number(h, 0, INT64_MAX, &last) < 0)
        last = 0; /* anything else: start from the beginning */
    return events_reply(s->events, r, job->id, r->owner, last);
}

handler_result h_jobs_events(void *ctx, req *r)
{
    return on_job(ctx, r, job_events);
}

/* ------------------------------------------------------------------ cancel / delete */

/* The answer once a cancel is done: the job as it is now (200); for a delete, the delete (204). */
static handler_result reply_stopped(server *s, req *r, const char *owner, const char *id,
                                    int delete)
{
    store_error se = {0};
    if (delete) {
        int rc = store_job_delete(s->st, owner, id, &se);
        return rc < 0 ? handlers_reply_store_error(r, rc, &se, "job", id) : http_reply_empty(r, 204);
    }
    store_job now;
    memset(&now, 0, sizeof now);
    int rc = store_job_get(s->st, owner, id, &now, &se);
    handler_result hr = rc < 0 ? handlers_reply_store_error(r, rc, &se, "job", id)
                               : reply_job(s, r, 200, &now);
    store_job_clear(&now);
    return hr;
}

/* Run on the work pool: wait for this process's worker to stop the job, then answer. */
static void cancel_work(void *arg, req *r)
{
    math_ctx *c = arg;
    server *s = r->ctx;
    jobs_live_wait_gone(s->jobs, c->id, CANCEL_WAIT_MS);
    reply_stopped(s, r, c->owner, c->id, 0);
}

static void delete_work(void *arg, req *r)
{
    math_ctx *c = arg;
    server *s = r->ctx;
    jobs_live_wait_gone(s->jobs, c->id, CANCEL_WAIT_MS);
    reply_stopped(s, r, c->owner, c->id, 1);
}

/* Requests the cancel. Returns 1 when a worker of this process runs the job (then the caller
 * waits for it), 0 otherwise, -1 with the reply set. */
static int request_cancel(server *s, req *r, const store_job *job)
{
    if (is_final(job->status))
        return 0;
    int now_cancelled = 0;
    store_error se = {0};
    int rc = store_job_request_cancel(s->st, r->owner, job->id, &now_cancelled, &se);
    if (rc < 0) {
        handlers_reply_store_error(r, rc, &se, "job", job->id);
        return -1;
    }
    if (now_cancelled) {
        log_event(LOG_INFO, "job", "id=%s status=cancelled epoch=0", job->id);
        return 0;
    }
    return jobs_live_cancel(s->jobs, job->id);
}

/* Cancels the job (then deletes it when delete is set): at once unless a worker of this
 * process runs it, else on the work pool once that worker has stopped it. */
static handler_result cancel_then(server *s, req *r, int delete)
{
    store_job job;
    if (get_job(s, r, &job) < 0)
        return HANDLER_OK;
    handler_result hr = HANDLER_OK;
    int here = request_cancel(s, r, &job);
    if (here > 0) {
        math_ctx *c = math_ctx_new(r, &job);
        hr = c ? http_defer(r, delete ? delete_work : cancel_work, c)
               : http_reply_problem(r, 503, "out of memory: try again");
    } else if (here == 0) {
        hr = reply_stopped(s, r, r->owner, job.id, delete);
    }
    store_job_clear(&job);
    return hr;
}

/* POST …/cancel → the job: a queued job is cancelled at once; one running here is stopped
 * within a batch and the answer waits for it (up to 5 s); one running on another instance is
 * answered as it is now (status running) and stops at its next lease renewal. */
handler_result h_jobs_cancel(void *ctx, req *r)
{
    server *s = ctx;
    return cancel_then(s, r, 0);
}

/* DELETE …: cancels first if needed (waiting for this process's worker), then 204. */
handler_result h_jobs_delete(void *ctx, req *r)
{
    server *s = ctx;
    return cancel_then(s, r, 1);
}

/* ------------------------------------------------------------------ for h_export.c */

handler_result handlers_on_job(void *ctx, req *r, job_handler fn)
{
    return on_job(ctx, r, fn);
}
