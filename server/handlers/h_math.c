/* h_math.c — the stateless math endpoints: POST /v1/cost, /v1/gradient, /v1/gradient/check.
 *
 * Each reads decode (api/math_codec.h) → load the named dataset (store) → the core's
 * bp_cost_grad or bp_gradcheck on the full batch → encode (api/math_codec.h) → reply. The
 * framework runs these handlers on the work pool (the routes have a body), never on an HTTP
 * thread, so /healthz stays fast while a big gradient computes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/math_codec.h"
#include "server/handlers/handlers_util.h"
#include "server/handlers/routes.h"
#include "server/server.h"
#include "server/store/store.h"

/* A gradient check costs 2 × params evaluations of J on every row: about 4 · rows · params²
 * multiply-adds. Above this bound of rows · params² it would hold a math thread for minutes. */
#define GRADCHECK_WORK_LIMIT 2.5e10

/* The request's data: the named stored dataset (loaded into q->data), or the inline data
 * already there. 0 ok, -1 with err (404 for an unknown id; a busy store adds Retry-After). */
static int load_data(server *s, req *r, api_math_request *q, api_error *err)
{
    if (!q->dataset[0])
        return 0;
    store_dataset_meta meta;
    store_error se = {0};
    api_dataset *d = &q->data;
    int rc = store_dataset_load(s->st, r->owner, q->dataset, &meta, &d->X, &d->labels, &d->Y,
                                &se);
    if (rc < 0) {
        handlers_store_problem(err, r, rc, &se, "dataset", "dataset", q->dataset);
        return -1;
    }
    d->rows = meta.rows;
    d->features = meta.features;
    d->outputs = meta.outputs;
    return 0;
}

/* The core's answer for a decoded request on its data, encoded (new); NULL with err. */
static json_t *compute(const api_math_request *q, api_math_kind kind, api_error *err)
{
    bp_error be = {{0}};
    const api_dataset *d = &q->data;
    const bp_spec *spec = &q->spec;
    int64_t P = bp_param_count(spec);
    json_t *out = NULL;
    double *T = NULL, *grad = NULL, *numerical = NULL;
    bp_work *w = NULL;
    if (!(T = api_targets(d, spec->sizes[spec->n_layers - 1], err)))
        goto cleanup;
    if (kind == API_MATH_CHECK && (double)d->rows * (double)P * (double)P > GRADCHECK_WORK_LIMIT) {
        api_fail(err, 400, "network: a gradient check of %lld parameters on %lld rows is too "
                           "much work (rows x parameters^2 must stay under %.1e): use fewer "
                           "rows or a smaller network", (long long)P, (long long)d->rows,
                 GRADCHECK_WORK_LIMIT);
        goto cleanup;
    }
    if (!(w = bp_work_new(spec, d->rows, &be))) {
        api_fail(err, 413, "network: %s", be.msg);
        goto cleanup;
    }
    if (kind != API_MATH_COST &&
        (!(grad = calloc((size_t)P, sizeof *grad)) ||
         (kind == API_MATH_CHECK && !(numerical = calloc((size_t)P, sizeof *numerical))))) {
        api_fail(err, 503, "out of memory");
        goto cleanup;
    }
    if (kind == API_MATH_CHECK) {
        bp_gradcheck_result res;
        if (bp_gradcheck(&res, grad, numerical, w, d->X, T, q->theta, d->rows, q->lambda,
                         q->epsilon, &be) < 0) {
            api_fail(err, 422, "network: %s", be.msg);
            goto cleanup;
        }
        out = api_gradcheck_json(&res, grad, numerical, spec);
    } else {
        double J = bp_cost_grad(grad, w, d->X, T, q->theta, d->rows, q->lambda, d->rows);
        out = kind == API_MATH_COST ? api_cost_json(J) : api_gradient_json(J, grad, spec);
    }
    if (!out)
        api_fail(err, 422, "theta: the cost or a gradient is not finite at these weights "
                           "(an output saturated): try smaller weights");
cleanup:
    bp_work_free(w);
    free(grad);
    free(numerical);
    free(T);
    return out;
}

/* decode → load → compute → encode → reply */
static handler_result math(server *s, req *r, api_math_kind kind)
{
    api_error err = {0};
    api_math_request q;
    json_t *out = NULL;
    if (api_math_request_parse(&q, r->body, r->body_len, kind, &err) == 0 &&
        load_data(s, r, &q, &err) == 0 && api_dataset_fits(&q.data, &q.spec, &err) == 0)
        out = compute(&q, kind, &err);
    api_math_request_clear(&q);
    return out ? http_reply_json(r, 200, out) : handlers_reply_api_error(r, &err);
}

handler_result h_cost(void *ctx, req *r)
{
    return math(ctx, r, API_MATH_COST);
}

handler_result h_gradient(void *ctx, req *r)
{
    return math(ctx, r, API_MATH_GRADIENT);
}

handler_result h_gradient_check(void *ctx, req *r)
{
    return math(ctx, r, API_MATH_CHECK);
}
