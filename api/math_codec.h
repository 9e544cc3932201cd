/* math_codec.h — JSON for the synchronous math: the POST /v1/cost, /v1/gradient and
 * /v1/gradient/check request, the answers of the three, and the POST /v1/jobs/{id}/predict
 * request and answer. No HTTP and no storage: a request names a stored dataset by id and the
 * server loads it; inline data is decoded here.
 *
 * Errors go into an api_error whose detail names the field ("lambda: …", "X[3]: …").
 * Ownership per function: "new" = caller frees (json_decref / free / *_clear); else borrowed.
 */
#ifndef BACKPROPD_MATH_CODEC_H
#define BACKPROPD_MATH_CODEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "core/bp.h"

typedef enum { API_MATH_COST = 1, API_MATH_GRADIENT, API_MATH_CHECK } api_math_kind;

#define API_PREDICT_MAX_ROWS 1000000

/* A decoded math request. */
typedef struct {
    bp_spec spec;
    double *theta;      /* new: bp_param_count(&spec) doubles; drawn from seed for a check
                         * without "theta" */
    double lambda;      /* default 0 */
    double epsilon;     /* gradient check: default 1e-4 */
    uint64_t seed;      /* gradient check: default 42 */
    char dataset[40];   /* the stored dataset's id, "" when the data is inline */
    api_dataset data;   /* inline "X" with "y" or "Y" (empty when dataset is set) */
} api_math_request;
void api_math_request_clear(api_math_request *r); /* frees theta and data; NULL ok; zeroed */

/* Decodes the body text of a math request of this kind: {"network","theta","lambda", and
 * "dataset" or inline "X" with "y"/"Y"}, the check also "epsilon", "seed" (theta optional
 * there, at most API_MAX_GRADCHECK_PARAMS parameters). Unknown keys refused. 0 ok (*out
 * filled), -1 with err (400, 503 out of memory). */
int api_math_request_parse(api_math_request *out, const char *text, size_t len,
                           api_math_kind kind, api_error *err);

/* The data of a request body: "dataset" (an id, into dataset: cap bytes) or inline "X" with
 * "y"/"Y" (into *data, new), exactly one of the two. 0 ok, -1 with err (400). */
int api_data_source_parse(char *dataset, size_t cap, api_dataset *data, const json_t *body,
                          api_error *err);

/* new: {"cost": J}; NULL when J is not finite. */
json_t *api_cost_json(double J);
/* new: {"cost": J, "gradients": [...]} in theta's shape; NULL when J is not finite. */
json_t *api_gradient_json(double J, const double *grad, const bp_spec *spec);
/* new: {"relative_difference","max_abs_difference","analytic","numerical"}; NULL when a
 * difference is not finite. */
json_t *api_gradcheck_json(const bp_gradcheck_result *res, const double *analytic,
                           const double *numerical, const bp_spec *spec);

/* Decodes a predict body {"X": [[s1 numbers] × 1..API_PREDICT_MAX_ROWS]}. 0 ok (*X new:
 * rows × s1, *rows), -1 with err (400; 413 when the rows do not fit in memory). */
int api_predict_request_parse(const char *text, size_t len, int s1, double **X, int64_t *rows,
                              api_error *err);
/* new: {"outputs": [[K numbers or null] × rows], "labels": [rows]}; NULL out of memory. */
json_t *api_predictions_json(const double *out, const int32_t *labels, int64_t rows, int K);

#endif
