/* h_math.c — the stateless math endpoints: POST /v1/cost, /v1/gradient, /v1/gradient/check.
 *
 * Body: {"network", "theta", "lambda", "dataset": "ds_…"} or inline "X" with "y"/"Y";
 * the gradient check adds "epsilon" and "seed" (theta optional there). The whole request —
 * parsing, loading the dataset from the store, the math — runs on the math pool through
 * http_defer, never on an HTTP thread, so /healthz stays fast while a big gradient computes.
 * The answers are exactly the core's: bp_cost_grad and bp_gradcheck on the full batch.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "handlers_util.h"
#include "routes.h"
#include "server.h"
#include "store.h"

typedef enum { MATH_COST = 1, MATH_GRADIENT, MATH_CHECK } math_kind;

/* A gradient check costs 2 × params evaluations of J on every row: about 4 · rows · params²
 * multiply-adds. Above this bound of rows · params² it would hold a math thread for minutes. */
#define GRADCHECK_WORK_LIMIT 2.5e10

/* ------------------------------------------------------------------ request fields */

/* The keys a request may have (the gradient check also takes epsilon and seed). */
static const char *const math_keys[] = {"network", "theta", "lambda", "dataset", "X", "y", "Y",
                                        NULL};
static const char *const check_keys[] = {"network", "theta", "lambda", "dataset", "X", "y", "Y",
                                         "epsilon", "seed", NULL};

/* The optional numbers (absent: the caller's defaults stay); 0 ok, -1 with err. */
static int read_numbers(const json_t *body, double *lambda, double *epsilon, uint64_t *seed,
                        api_error *err)
{
    const json_t *v;
    int64_t n;
    if ((v = json_object_get(body, "lambda")) &&
        api_number(lambda, v, 0, INFINITY, 0, err, "lambda") < 0)
        return -1;
    if ((v = json_object_get(body, "epsilon")) &&
        api_number(epsilon, v, 0, 1, API_LO_OPEN | API_HI_OPEN, err, "epsilon") < 0)
        return -1;
    if ((v = json_object_get(body, "seed"))) {
        if (api_int(&n, v, 0, INT64_MAX, err, "seed") < 0)
            return -1;
        *seed = (uint64_t)n;
    }
    return 0;
}

/* The dataset named by "dataset" (from the store) or given inline. 0 ok, -1 with the reply
 * described by err (status 404 for an unknown id; a busy store also adds Retry-After). */
static int load_data(api_dataset *d, server *s, req *r, const json_t *body, api_error *err)
{
    const json_t *id = json_object_get(body, "dataset");
    int inline_data = json_object_get(body, "X") != NULL;
    if (id && inline_data) {
        api_fail(err, 400, "dataset: give either \"dataset\" or inline \"X\", not both");
        return -1;
    }
    if (!id && !inline_data) {
        api_fail(err, 400, "dataset: missing (a dataset id, or inline \"X\" with \"y\" or \"Y\")");
        return -1;
    }
    if (inline_data)
        return api_dataset_from_json(d, body, err);
    if (json_object_get(body, "y") || json_object_get(body, "Y")) {
        api_fail(err, 400, "%s: only together with inline \"X\"",
                 json_object_get(body, "y") ? "y" : "Y");
        return -1;
    }
    const char *ids = json_string_value(id);
    if (!ids || strlen(ids) >= 40) {
        api_fail(err, 400, "dataset: expected a dataset id like \"ds_…\"");
        return -1;
    }
    store_dataset_meta meta;
    store_error se = {0};
    int rc = store_dataset_load(s->st, r->owner, ids, &meta, &d->X, &d->labels, &d->Y, &se);
    if (rc == 0) {
        d->rows = meta.rows;
        d->features = meta.features;
        d->outputs = meta.outputs;
        return 0;
    }
    hu_store_problem(err, r, rc, &se, "dataset", "dataset", ids);
    return -1;
}

/* ------------------------------------------------------------------ the work */

static json_t *check_json(const bp_gradcheck_result *res, const double *analytic,
                          const double *numerical, const bp_spec *spec)
{
    double rel = res->relative_difference; /* the core gives 0 when both gradients are 0 */
    json_t *a = api_theta_json(analytic, spec), *n = api_theta_json(numerical, spec);
    if (!a || !n || !isfinite(rel) || !isfinite(res->max_abs_difference)) {
        json_decref(a);
        json_decref(n);
        return NULL;
    }
    return json_pack("{s:f, s:f, s:o, s:o}", "relative_difference", rel, "max_abs_difference",
                     res->max_abs_difference, "analytic", a, "numerical", n);
}

static void math_work(void *arg, req *r)
{
    math_kind kind = (math_kind)(uintptr_t)arg;
    server *s = r->srv;
    api_error err = {0};
    bp_error be = {{0}};
    api_dataset d;
    memset(&d, 0, sizeof d);
    json_t *body = NULL, *out = NULL;
    double *theta = NULL, *T = NULL, *grad = NULL, *numerical = NULL;
    bp_work *w = NULL;

    if (!(body = api_parse(r->body, r->body_len, &err)))
        goto fail;
    if (!json_is_object(body)) {
        api_fail(&err, 400, "body: expected a JSON object");
        goto fail;
    }
    if (api_check_keys(body, kind == MATH_CHECK ? check_keys : math_keys, "body", &err) < 0)
        goto fail;
    const json_t *net = json_object_get(body, "network");
    bp_spec spec;
    if (!net) {
        api_fail(&err, 400, "network: missing (e.g. {\"layers\": [64, 25, 10]})");
        goto fail;
    }
    if (api_spec_parse(&spec, net, "network", &err) < 0)
        goto fail;
    int64_t P = bp_param_count(&spec);
    if (kind == MATH_CHECK && P > API_MAX_GRADCHECK_PARAMS) {
        api_fail(&err, 400, "network: %lld parameters; the gradient check takes at most %d",
                 (long long)P, API_MAX_GRADCHECK_PARAMS);
        goto fail;
    }
    double lambda = 0.0, epsilon = 1e-4;
    uint64_t seed = 42;
    if (read_numbers(body, &lambda, &epsilon, &seed, &err) < 0)
        goto fail;
    const json_t *jt = json_object_get(body, "theta");
    if (jt) {
        if (!(theta = api_theta_parse(jt, &spec, "theta", &err)))
            goto fail;
    } else if (kind != MATH_CHECK) {
        api_fail(&err, 400, "theta: missing (one matrix per layer transition, bias column "
                            "first)");
        goto fail;
    } else {
        if (!(theta = malloc((size_t)P * sizeof *theta))) {
            api_fail(&err, 503, "out of memory");
            goto fail;
        }
        bp_rng rng;
        bp_rng_seed(&rng, seed);
        bp_init_weights(theta, &spec, 0.0, &rng);
    }
    if (load_data(&d, s, r, body, &err) < 0 || api_dataset_fits(&d, &spec, &err) < 0)
        goto fail;
    json_decref(body); /* inline data has been copied: give the tree's memory back now */
    body = NULL;
    int K = spec.sizes[spec.n_layers - 1];
    if (!(T = api_targets(&d, K, &err)))
        goto fail;
    if (kind == MATH_CHECK && (double)d.rows * (double)P * (double)P > GRADCHECK_WORK_LIMIT) {
        api_fail(&err, 400, "network: a gradient check of %lld parameters on %lld rows is too "
                            "much work (rows x parameters^2 must stay under %.1e): use fewer "
                            "rows or a smaller network", (long long)P, (long long)d.rows,
                 GRADCHECK_WORK_LIMIT);
        goto fail;
    }
    if (!(w = bp_work_new(&spec, d.rows, &be))) {
        api_fail(&err, 413, "network: %s", be.msg);
        goto fail;
    }

    if (kind == MATH_COST) {
        double J = bp_cost_grad(NULL, w, d.X, T, theta, d.rows, lambda, d.rows);
        if (isfinite(J))
            out = json_pack("{s:f}", "cost", J);
    } else if (kind == MATH_GRADIENT) {
        if (!(grad = calloc((size_t)P, sizeof *grad))) {
            api_fail(&err, 503, "out of memory");
            goto fail;
        }
        double J = bp_cost_grad(grad, w, d.X, T, theta, d.rows, lambda, d.rows);
        json_t *g = isfinite(J) ? api_theta_json(grad, &spec) : NULL;
        if (g)
            out = json_pack("{s:f, s:o}", "cost", J, "gradients", g);
    } else {
        bp_gradcheck_result res;
        if (!(grad = malloc((size_t)P * sizeof *grad)) ||
            !(numerical = malloc((size_t)P * sizeof *numerical))) {
            api_fail(&err, 503, "out of memory");
            goto fail;
        }
        if (bp_gradcheck(&res, grad, numerical, w, d.X, T, theta, d.rows, lambda, epsilon,
                         &be) < 0) {
            api_fail(&err, 422, "network: %s", be.msg);
            goto fail;
        }
        out = check_json(&res, grad, numerical, &spec);
    }
    if (!out) {
        api_fail(&err, 422, "theta: the cost or a gradient is not finite at these weights "
                            "(an output saturated): try smaller weights");
        goto fail;
    }
    http_reply_json(r, 200, out);
    goto cleanup;
fail:
    hu_reply_api_error(r, &err);
cleanup:
    bp_work_free(w);
    free(grad);
    free(numerical);
    free(T);
    free(theta);
    api_dataset_clear(&d);
    json_decref(body);
}

handler_result h_cost(server *s, req *r)
{
    (void)s;
    return http_defer(r, math_work, (void *)(uintptr_t)MATH_COST);
}

handler_result h_gradient(server *s, req *r)
{
    (void)s;
    return http_defer(r, math_work, (void *)(uintptr_t)MATH_GRADIENT);
}

handler_result h_gradient_check(server *s, req *r)
{
    (void)s;
    return http_defer(r, math_work, (void *)(uintptr_t)MATH_CHECK);
}
