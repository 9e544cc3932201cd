/* handlers_model.c — a job's model for the handlers that compute with it (handlers_model.h):
 * spec, config and standardization from the stored spec text, weights live or stored.
 */
#include "server/handlers/handlers_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "server/handlers/handlers_util.h"
#include "server/jobs/jobs_live.h"
#include "server/store/store.h"

void handlers_model_clear(handlers_model *m)
{
    if (!m)
        return;
    free(m->theta);
    m->theta = NULL;
    api_job_extras_clear(&m->extras);
}

void handlers_model_inputs(const handlers_model *m, double *X, int64_t rows)
{
    if (m->extras.mean)
        bp_standardize_apply(X, X, m->extras.mean, m->extras.sd, rows, m->spec.sizes[0]);
}

/* A job's model, step 1: *m cleared, its spec and config from spec_json. 0 ok; -1 with a 500
 * reply (the stored spec is unreadable). */
int handlers_model_spec(req *r, const char *id, const char *spec_json, handlers_model *m)
{
    api_error ae = {0};
    memset(m, 0, sizeof *m);
    m->cost = m->validation_cost = NAN;
    if (api_job_spec_parse(&m->spec, &m->cfg, spec_json, &ae) < 0 ||
        api_job_extras_parse(&m->extras, spec_json, m->spec.sizes[0], &ae) < 0) {
        http_reply_problem(r, 500, "job %s: %s", id, ae.detail);
        return -1;
    }
    return 0;
}

/* Step 2: the weights of job id (owner's) for m->spec, from the live copy while the job runs
 * here, else from the store. 0 ok (m->theta new); -1 with the reply set: the store's problem,
 * 503 out of memory, 409 no weights yet (status: the job's status for that message, or NULL). */
int handlers_model_weights(server *s, req *r, const char *owner, const char *id,
                           const char *status, handlers_model *m)
{
    store_error se = {0};
    int64_t n = 0;
    int rc = jobs_live_weights(s->jobs, id, &m->theta, &n, &m->epoch, &m->cost,
                               &m->validation_cost);
    if (rc < 0) {
        http_reply_problem(r, 503, "out of memory: try again");
        return -1;
    }
    if (rc == 0) {
        rc = store_job_weights(s->st, owner, id, &m->theta, &n, &m->epoch, &m->cost,
                               &m->validation_cost, &se);
        if (rc < 0 && rc != STORE_NOT_FOUND) {
            handlers_reply_store_error(r, rc, &se, "job", id);
            return -1;
        }
    }
    if (rc == STORE_NOT_FOUND || n != bp_param_count(&m->spec)) {
        if (status)
            http_reply_problem(r, 409, "job %s has no weights yet: it is %s, and weights appear "
                                       "after its first epoch", id, status);
        else
            http_reply_problem(r, 409, "job %s has no weights yet: they appear after its first "
                                       "epoch", id);
        free(m->theta);
        m->theta = NULL;
        return -1;
    }
    return 0;
}

/* Both steps: 0 ok (free m->theta), -1 with the reply set. */
int handlers_model_load(server *s, req *r, const char *owner, const char *id,
                        const char *spec_json, const char *status, handlers_model *m)
{
    return handlers_model_spec(r, id, spec_json, m) < 0
               ? -1
               : handlers_model_weights(s, r, owner, id, status, m);
}

/* ------------------------------------------------------------------ a new job's model */

/* From job jr->from_job (the caller's): its weights into jr->theta0 and its standardization
 * into x, its network checked against jr's. 0 ok, -1 with err. */
static int from_job(server *s, req *r, api_job_request *jr, api_job_extras *x, api_error *err)
{
    store_job src;
    memset(&src, 0, sizeof src);
    store_error se = {0};
    handlers_model m;
    memset(&m, 0, sizeof m);
    int rc = -1, n_out = jr->spec.n_layers;
    int src_rc = store_job_get(s->st, r->owner, jr->from_job, &src, &se);
    if (src_rc < 0) {
        handlers_store_problem(err, r, src_rc, &se, "from_job", "job", jr->from_job);
        goto cleanup;
    }
    api_error ae = {0};
    if (api_job_spec_parse(&m.spec, &m.cfg, src.spec_json, &ae) < 0 ||
        api_job_extras_parse(&m.extras, src.spec_json, m.spec.sizes[0], &ae) < 0) {
        api_fail(err, 500, "from_job: job %s: %s", src.id, ae.detail);
        goto cleanup;
    }
    int same = m.spec.n_layers == n_out && m.spec.hidden == jr->spec.hidden &&
               m.spec.output == jr->spec.output;
    for (int l = 0; same && l < n_out; l++)
        same = m.spec.sizes[l] == jr->spec.sizes[l];
    if (!same) {
        api_fail(err, 422, "from_job: job %s has another network (layers, activation or "
                           "output) than this request's", src.id);
        goto cleanup;
    }
    int64_t n = 0;
    if (jobs_live_weights(s->jobs, src.id, &jr->theta0, &n, &m.epoch, &m.cost,
                          &m.validation_cost) <= 0) {
        free(jr->theta0);
        jr->theta0 = NULL;
        src_rc = store_job_weights(s->st, r->owner, src.id, &jr->theta0, &n, &m.epoch, &m.cost,
                                   &m.validation_cost, &se);
        if (src_rc < 0 && src_rc != STORE_NOT_FOUND) {
            handlers_store_problem(err, r, src_rc, &se, "from_job", "job", src.id);
            goto cleanup;
        }
    }
    if (!jr->theta0 || n != bp_param_count(&jr->spec)) {
        api_fail(err, 409, "from_job: job %s has no weights yet", src.id);
        goto cleanup;
    }
    free(m.extras.classes_json); /* the new job's dataset names its classes */
    m.extras.classes_json = NULL;
    *x = m.extras; /* steals mean and sd */
    memset(&m.extras, 0, sizeof m.extras);
    snprintf(x->from_job, sizeof x->from_job, "%s", src.id);
    jr->train.standardize = x->mean != NULL;
    rc = 0;
cleanup:
    handlers_model_clear(&m);
    store_job_clear(&src);
    return rc;
}

/* The training rows' mean and sd of dataset jr->dataset into x (new). 0 ok, -1 with err. */
static int fit_standardize(server *s, req *r, const api_job_request *jr, api_job_extras *x,
                           api_error *err)
{
    store_dataset_meta meta;
    store_error se = {0};
    bp_error be = {{0}};
    double *X = NULL, *Y = NULL;
    int32_t *labels = NULL;
    unsigned char *held = NULL;
    int rc = -1;
    int src = store_dataset_load(s->st, r->owner, jr->dataset, &meta, &X, &labels, &Y, &se);
    if (src < 0) {
        handlers_store_problem(err, r, src, &se, "dataset", "dataset", jr->dataset);
        goto cleanup;
    }
    x->n_in = meta.features;
    held = malloc((size_t)meta.rows);
    x->mean = malloc((size_t)meta.features * sizeof *x->mean);
    x->sd = malloc((size_t)meta.features * sizeof *x->sd);
    if (!held || !x->mean || !x->sd || bp_split_mark(held, meta.rows, &jr->train, &be) < 0) {
        api_fail(err, 503, "out of memory for the standardization: try again");
        goto cleanup;
    }
    bp_standardize_fit(x->mean, x->sd, X, held, meta.rows, meta.features);
    rc = 0;
cleanup:
    free(X);
    free(Y);
    free(labels);
    free(held);
    return rc;
}

int handlers_model_prepare(server *s, req *r, api_job_request *jr, api_job_extras *x,
                           api_error *err)
{
    memset(x, 0, sizeof *x);
    x->n_in = jr->spec.sizes[0];
    int rc = 0;
    if (jr->from_job[0])
        rc = from_job(s, r, jr, x, err);
    else if (jr->train.standardize)
        rc = fit_standardize(s, r, jr, x, err);
    store_error se = {0};
    int src = rc < 0 ? 0 : store_dataset_classes(s->st, r->owner, jr->dataset, &x->classes_json, &se);
    if (src < 0) {
        handlers_store_problem(err, r, src, &se, "dataset", "dataset", jr->dataset);
        rc = -1;
    }
    if (rc < 0)
        api_job_extras_clear(x);
    return rc;
}
