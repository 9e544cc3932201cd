/* export.h — a trained network in the formats browsers and runtimes load directly, as bytes
 * or JSON made from the spec and Θ alone (no HTTP, no storage):
 *   - TensorFlow.js layers-model: model.json (a Keras-style Sequential of Dense layers whose
 *     weightsManifest names one relative file) and that file, weights.bin (little-endian
 *     float32: per layer the kernel Θ^(l)[:,1:]ᵀ, s_l × s_{l+1} row-major, then the bias
 *     Θ^(l)[:,0]);
 *   - ONNX (opset 13, IR version 7): input "input" [N, s_1] (N dynamic), per layer a Gemm
 *     (transB = 1 on W = Θ^(l)[:,1:], C = Θ^(l)[:,0]) and the activation (Sigmoid, Tanh, Relu;
 *     at the output Softmax(axis=-1), Sigmoid or Identity) into "output" [N, s_L]; double or
 *     float32; written with pb.h. metadata_props: producer, job_id, epoch, precision (the
 *     export's), training_precision (the job's), network, and classes / standardization
 *     when given.
 * A standardization (per-feature mean and sd) is folded into Θ^(1) (bp_fold_standardize), so
 * every export takes raw rows.
 */
#ifndef BACKPROPD_EXPORT_H
#define BACKPROPD_EXPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "core/bp.h"

/* What an export is made of (all borrowed). */
typedef struct {
    const char *job_id;          /* recorded in the metadata; NULL = none */
    int64_t epoch;               /* the epoch the weights are from (metadata); 0 = none */
    const bp_spec *spec;         /* a valid spec */
    const double *theta;         /* bp_param_count(spec) doubles, the course's layout */
    const double *mean, *sd;     /* s_1 each: the rows' standardization; both NULL = none */
    const char *const *classes;  /* n_classes class names (UTF-8), or NULL = none */
    size_t n_classes;
    const char *training_precision; /* "float64"/"float32": what the weights were trained
                                     * in (metadata "training_precision"); NULL = none */
} api_export_model;

/* The precision of an ONNX export. */
typedef enum { API_EXPORT_FLOAT64 = 0, API_EXPORT_FLOAT32 } api_export_dtype;

/* ?dtype=: NULL or "" → float64; "float64" or "double", "float32" or "float". 0 ok, else -1
 * with 400 'dtype: must be "float64" or "float32"'. */
int api_export_dtype_parse(const char *text, api_export_dtype *out, api_error *err);

/* new: the ONNX ModelProto's bytes, their count into *len; NULL when out of memory. */
unsigned char *api_export_onnx(const api_export_model *m, api_export_dtype dtype, size_t *len);

/* new: model.json, its manifest naming weights_path (relative to model.json's URL) for the
 * weights; userDefinedMetadata {"producer","job_id","epoch","network","classes",
 * "standardized","training_precision"} (job_id, epoch, classes null when none). NULL when out of memory. */
json_t *api_export_tfjs_json(const api_export_model *m, const char *weights_path);

/* new: weights.bin, in the manifest's order; its byte count into *len. NULL when out of
 * memory. */
unsigned char *api_export_tfjs_weights(const api_export_model *m, size_t *len);

#endif
