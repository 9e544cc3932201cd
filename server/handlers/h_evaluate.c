/* h_evaluate.c — POST /v1/jobs/{id}/evaluate: a job's latest weights measured on a stored
 * dataset or on inline rows. decode (api/eval_codec.h) → the job's model (handlers_model.h,
 * its standardization applied to the rows) → the dataset → the core's bp_evaluate → encode.
 * The route has a body, so the framework runs it on the work pool, never on an HTTP thread.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/eval_codec.h"
#include "server/handlers/handlers_model.h"
#include "server/handlers/handlers_util.h"
#include "server/handlers/routes.h"
#include "server/server.h"
#include "server/store/store.h"

/* The named dataset of the caller into *d (new arrays). 0 ok, -1 with err (404 unknown). */
static int load_dataset(server *s, req *r, const char *id, api_dataset *d, api_error *err)
{
    store_dataset_meta meta;
    store_error se = {0};
    int rc = store_dataset_load(s->st, r->owner, id, &meta, &d->X, &d->labels, &d->Y, &se);
    if (rc < 0) {
        handlers_store_problem(err, r, rc, &se, "dataset", "dataset", id);
        return -1;
    }
    d->rows = meta.rows;
    d->features = meta.features;
    d->outputs = meta.outputs;
    return 0;
}

/* The report of model m on d (its X standardized in place when m trained so); new, or NULL
 * with err. */
static json_t *evaluate(const handlers_model *m, api_dataset *d, api_error *err)
{
    bp_error be = {{0}};
    bp_eval e;
    memset(&e, 0, sizeof e);
    json_t *out = NULL;
    bp_work *w = NULL;
    double *T = api_targets(d, m->spec.sizes[m->spec.n_layers - 1], err);
    if (!T)
        goto cleanup;
    handlers_model_inputs(m, d->X, d->rows);
    if (!(w = bp_work_new(&m->spec, d->rows, &be))) {
        api_fail(err, 413, "network: %s", be.msg);
        goto cleanup;
    }
    if (bp_evaluate(&e, w, d->X, T, m->theta, d->rows, m->cfg.lambda, &be) < 0) {
        api_fail(err, 503, "%s: try again", be.msg);
        goto cleanup;
    }
    if (!(out = api_evaluation_json(&e, m->extras.classes_json)))
        api_fail(err, 503, "out of memory for the report: try again");
cleanup:
    bp_eval_clear(&e);
    bp_work_free(w);
    free(T);
    return out;
}

handler_result h_jobs_evaluate(void *ctx, req *r)
{
    server *s = ctx;
    store_job job;
    memset(&job, 0, sizeof job);
    store_error se = {0};
    api_error ae = {0};
    api_dataset d;
    memset(&d, 0, sizeof d);
    handlers_model m;
    memset(&m, 0, sizeof m);
    char dataset[40];
    handler_result hr = HANDLER_OK;
    int rc = store_job_get(s->st, r->owner, r->param[0], &job, &se);
    if (rc < 0) {
        hr = handlers_reply_store_error(r, rc, &se, "job", r->param[0]);
        goto cleanup;
    }
    if (handlers_model_spec(r, job.id, job.spec_json, &m) < 0)
        goto cleanup; /* the 500 is set */
    if (api_evaluate_request_parse(dataset, sizeof dataset, &d, r->body, r->body_len,
                                   m.extras.classes_json, &ae) < 0 ||
        (dataset[0] && load_dataset(s, r, dataset, &d, &ae) < 0) ||
        api_dataset_fits(&d, &m.spec, &ae) < 0) {
        hr = handlers_reply_api_error(r, &ae);
        goto cleanup;
    }
    if (handlers_model_weights(s, r, r->owner, job.id, job_status_name(job.status), &m) < 0)
        goto cleanup; /* the reply is set */
    json_t *out = evaluate(&m, &d, &ae);
    hr = out ? http_reply_json(r, 200, out) : handlers_reply_api_error(r, &ae);
cleanup:
    handlers_model_clear(&m);
    api_dataset_clear(&d);
    store_job_clear(&job);
    return hr;
}
