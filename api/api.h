/* api.h — backpropd's JSON contract (../shared/design/API.md, api/openapi.yaml): jansson
 * codecs for network specs, theta/gradients and datasets, request validation, and the
 * problem+json error every 4xx carries. No HTTP and no storage here: the server calls these.
 *
 * Errors go into a caller-provided api_error (thread-safe) whose `detail` names the field and
 * index, e.g. "theta[1]: expected 10 rows of 33 numbers, row 4 has 32". Functions return 0 /
 * a pointer on success and -1 / NULL on failure.
 * Ownership per function: "new" = caller frees; "borrowed" = owned by the argument.
 */
#ifndef BACKPROPD_API_H
#define BACKPROPD_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bp.h"

typedef struct {
    unsigned status;   /* 400, 409, 413, 415, 422... */
    char detail[512];
} api_error;
void api_fail(api_error *err, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "about:blank"-style title for a status ("Bad Request", ...). */
const char *api_status_title(unsigned status);
/* new: {"type","title","status","detail"} */
json_t *api_problem_json(unsigned status, const char *detail);

/* new. Parses a request body: JSON_REJECT_DUPLICATES, nesting depth <= 64, NaN/Infinity and
 * numbers that overflow a double (1e999) refused, trailing garbage refused. */
json_t *api_parse(const char *text, size_t len, api_error *err);
/* new. Prints with 17 significant digits (numbers round-trip to the same double). */
char *api_dump(const json_t *j, size_t *len);

/* ---- network spec: {"layers":[…],"activation":"sigmoid","output":"sigmoid"} ---- */
/* field: the JSON path for messages ("network"). Unknown keys refused. */
int api_spec_parse(bp_spec *out, const json_t *j, const char *field, api_error *err);
json_t *api_spec_json(const bp_spec *spec); /* new */

/* ---- theta / gradients: a list of row-major matrices, bias column first ---- */
/* new: the unrolled Θ (bp_param_count doubles) for spec, checking every shape. */
double *api_theta_parse(const json_t *j, const bp_spec *spec, const char *field, api_error *err);
json_t *api_theta_json(const double *theta, const bp_spec *spec); /* new */

/* ---- datasets ---- */
typedef struct {
    int64_t rows, features, outputs; /* outputs: max label + 1, or Y's columns */
    double *X;                       /* new: rows × features */
    int32_t *labels;                 /* new: rows (y given), or NULL */
    double *Y;                       /* new: rows × outputs (Y given), or NULL */
} api_dataset;
void api_dataset_clear(api_dataset *d); /* frees the arrays; *d zeroed */
/* From a parsed object holding "X" and exactly one of "y"/"Y" (other keys are the caller's
 * business). Labels must be integers in 0..65535; rows must agree; at least one row. */
int api_dataset_from_json(api_dataset *out, const json_t *obj, api_error *err);
/* The upload body {"X":[[…]],"y":[…]} (or "Y") parsed straight from text without building a
 * jansson tree (fast path for large uploads; same rules and messages). */
int api_dataset_parse_json_text(api_dataset *out, const char *text, size_t len, api_error *err);
/* CSV: one row a sample, first column the label, optional header line, '\n' or "\r\n". */
int api_dataset_parse_csv(api_dataset *out, const char *text, size_t len, api_error *err);
/* new: dense targets for a network with K outputs: one-hot from labels (each label < K, else
 * 409 naming the row) or Y (outputs == K, else 409). */
double *api_targets(const api_dataset *d, int64_t K, api_error *err);
/* 409 unless features == s_1 and the targets fit s_L. */
int api_dataset_fits(const api_dataset *d, const bp_spec *spec, api_error *err);

/* ---- limits for synchronous math (same limits as jobs) ---- */
#define API_MAX_GRADCHECK_PARAMS 20000

#endif
