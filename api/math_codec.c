/* math_codec.c — the JSON of the synchronous math endpoints and of predictions (math_codec.h):
 * decoding a request body into a spec, weights, the regularization and check parameters and
 * the data (a stored dataset's id, or inline X with y/Y), and encoding the answers.
 */
#include "api/math_codec.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/jobs_codec.h"

/* The keys a request may have (the gradient check also takes epsilon and seed). */
static const char *const math_keys[] = {"network", "theta", "lambda", "dataset", "X", "y", "Y",
                                        NULL};
static const char *const check_keys[] = {"network", "theta", "lambda", "dataset", "X", "y", "Y",
                                         "epsilon", "seed", NULL};

/* The optional numbers (absent: the defaults in out stay); 0 ok, -1 with err. */
static int get_numbers(api_math_request *out, const json_t *body, api_error *err)
{
    const json_t *v;
    int64_t n;
    if ((v = json_object_get(body, "lambda")) &&
        api_number(&out->lambda, v, 0, INFINITY, 0, err, "lambda") < 0)
        return -1;
    if ((v = json_object_get(body, "epsilon")) &&
        api_number(&out->epsilon, v, 0, 1, API_LO_OPEN | API_HI_OPEN, err, "epsilon") < 0)
        return -1;
    if ((v = json_object_get(body, "seed"))) {
        if (api_int(&n, v, 0, INT64_MAX, err, "seed") < 0)
            return -1;
        out->seed = (uint64_t)n;
    }
    return 0;
}

/* "theta", or for a check without it weights drawn from the seed. */
static int get_theta(api_math_request *out, const json_t *body, api_math_kind kind,
                     api_error *err)
{
    const json_t *jt = json_object_get(body, "theta");
    if (jt) {
        out->theta = api_theta_parse(jt, &out->spec, "theta", err);
        return out->theta ? 0 : -1;
    }
    if (kind != API_MATH_CHECK) {
        api_fail(err, 400, "theta: missing (one matrix per layer transition, bias column "
                           "first)");
        return -1;
    }
    out->theta = malloc((size_t)bp_param_count(&out->spec) * sizeof *out->theta);
    if (!out->theta) {
        api_fail(err, 503, "out of memory");
        return -1;
    }
    bp_rng rng;
    bp_rng_seed(&rng, out->seed);
    bp_init_weights(out->theta, &out->spec, 0.0, &rng);
    return 0;
}

static int get_data(api_math_request *out, const json_t *body, api_error *err)
{
    return api_data_source_parse(out->dataset, sizeof out->dataset, &out->data, body, err);
}

int api_data_source_parse(char *dataset, size_t cap, api_dataset *data, const json_t *body,
                          api_error *err)
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
        return api_dataset_from_json(data, body, err);
    if (json_object_get(body, "y") || json_object_get(body, "Y")) {
        api_fail(err, 400, "%s: only together with inline \"X\"",
                 json_object_get(body, "y") ? "y" : "Y");
        return -1;
    }
    const char *ids = json_string_value(id);
    if (!ids || strlen(ids) >= cap) {
        api_fail(err, 400, "dataset: expected a dataset id like \"ds_…\"");
        return -1;
    }
    snprintf(dataset, cap, "%s", ids);
    return 0;
}

void api_math_request_clear(api_math_request *r)
{
    if (!r)
        return;
    free(r->theta);
    api_dataset_clear(&r->data);
    memset(r, 0, sizeof *r);
}

int api_math_request_parse(api_math_request *out, const char *text, size_t len,
                           api_math_kind kind, api_error *err)
{
    int rc = -1;
    memset(out, 0, sizeof *out);
    out->epsilon = 1e-4;
    out->seed = 42;
    json_t *body = api_parse(text, len, err);
    if (!body)
        goto cleanup;
    if (!json_is_object(body)) {
        api_fail(err, 400, "body: expected a JSON object");
        goto cleanup;
    }
    if (api_check_keys(body, kind == API_MATH_CHECK ? check_keys : math_keys, "body", err) < 0)
        goto cleanup;
    const json_t *net = json_object_get(body, "network");
    if (!net) {
        api_fail(err, 400, "network: missing (e.g. {\"layers\": [64, 25, 10]})");
        goto cleanup;
    }
    if (api_spec_parse(&out->spec, net, "network", err) < 0)
        goto cleanup;
    int64_t P = bp_param_count(&out->spec);
    if (kind == API_MATH_CHECK && P > API_MAX_GRADCHECK_PARAMS) {
        api_fail(err, 400, "network: %lld parameters; the gradient check takes at most %d",
                 (long long)P, API_MAX_GRADCHECK_PARAMS);
        goto cleanup;
    }
    if (get_numbers(out, body, err) < 0 || get_theta(out, body, kind, err) < 0 ||
        get_data(out, body, err) < 0)
        goto cleanup;
    rc = 0;
cleanup:
    json_decref(body); /* inline data has been copied out of the tree */
    if (rc < 0)
        api_math_request_clear(out);
    return rc;
}

json_t *api_cost_json(double J)
{
    return isfinite(J) ? json_pack("{s:f}", "cost", J) : NULL;
}

json_t *api_gradient_json(double J, const double *grad, const bp_spec *spec)
{
    json_t *g = isfinite(J) ? api_theta_json(grad, spec) : NULL;
    return g ? json_pack("{s:f, s:o}", "cost", J, "gradients", g) : NULL;
}

json_t *api_gradcheck_json(const bp_gradcheck_result *res, const double *analytic,
                           const double *numerical, const bp_spec *spec)
{
    double rel = res->relative_difference; /* the core gives 0 when both gradients are 0 */
    if (!isfinite(rel) || !isfinite(res->max_abs_difference))
        return NULL;
    json_t *a = api_theta_json(analytic, spec), *n = api_theta_json(numerical, spec);
    if (!a || !n) {
        json_decref(a);
        json_decref(n);
        return NULL;
    }
    return json_pack("{s:f, s:f, s:o, s:o}", "relative_difference", rel, "max_abs_difference",
                     res->max_abs_difference, "analytic", a, "numerical", n);
}

int api_predict_request_parse(const char *text, size_t len, int s1, double **X, int64_t *rows,
                              api_error *err)
{
    *X = NULL;
    *rows = 0;
    json_t *body = api_parse(text, len, err);
    if (body)
        *X = api_predict_parse(body, s1, API_PREDICT_MAX_ROWS, rows, err);
    json_decref(body);
    return *X ? 0 : -1;
}

json_t *api_predictions_json(const double *out, const int32_t *labels, int64_t rows, int K)
{
    json_t *jo = json_array(), *jl = labels ? json_array() : NULL;
    for (int64_t i = 0; jo && (jl || !labels) && i < rows; i++) {
        json_t *row = json_array();
        for (int k = 0; row && k < K; k++)
            if (json_array_append_new(row, api_number_or_null(out[i * K + k])) < 0) {
                json_decref(row);
                row = NULL;
            }
        if (!row || json_array_append_new(jo, row) < 0 ||
            (jl && json_array_append_new(jl, json_integer(labels[i])) < 0)) {
            json_decref(jo);
            jo = NULL;
        }
    }
    if (!jo || (labels && !jl)) {
        json_decref(jo);
        json_decref(jl);
        return NULL;
    }
    return jl ? json_pack("{s:o, s:o}", "outputs", jo, "labels", jl)
              : json_pack("{s:o}", "outputs", jo);
}
