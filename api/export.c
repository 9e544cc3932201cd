/* export.c — the browser and runtime exports of export.h: TensorFlow.js model.json +
 * weights.bin, and ONNX written with the protobuf writer of pb.h. Field numbers are onnx.proto's
 * (github.com/onnx/onnx, onnx/onnx.proto), named below where they are used.
 */
#include "api/export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/pb.h"

#define PRODUCER "backpropd"
#define ONNX_IR_VERSION 7 /* the IR of opset 13 */
#define ONNX_OPSET 13

/* onnx.proto field numbers */
enum { MODEL_IR_VERSION = 1, MODEL_PRODUCER_NAME = 2, MODEL_GRAPH = 7, MODEL_OPSET_IMPORT = 8,
       MODEL_METADATA_PROPS = 14 };
enum { OPSET_VERSION = 2 };                             /* OperatorSetIdProto */
enum { ENTRY_KEY = 1, ENTRY_VALUE = 2 };                /* StringStringEntryProto */
enum { GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INITIALIZER = 5, GRAPH_INPUT = 11,
       GRAPH_OUTPUT = 12 };
enum { NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4, NODE_ATTRIBUTE = 5 };
enum { ATTR_NAME = 1, ATTR_I = 3, ATTR_TYPE = 20, ATTR_TYPE_INT = 2 };
enum { TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW_DATA = 9 };
enum { ONNX_FLOAT = 1, ONNX_DOUBLE = 11 };              /* TensorProto.DataType */
enum { VALUE_NAME = 1, VALUE_TYPE = 2 };                /* ValueInfoProto */
enum { TYPE_TENSOR = 1, TENSOR_TYPE_ELEM = 1, TENSOR_TYPE_SHAPE = 2 }; /* TypeProto(.Tensor) */
enum { SHAPE_DIM = 1, DIM_VALUE = 1, DIM_PARAM = 2 };   /* TensorShapeProto(.Dimension) */

int api_export_dtype_parse(const char *text, api_export_dtype *out, api_error *err)
{
    if (!text || !*text || strcmp(text, "float64") == 0 || strcmp(text, "double") == 0) {
        *out = API_EXPORT_FLOAT64;
        return 0;
    }
    if (strcmp(text, "float32") == 0 || strcmp(text, "float") == 0) {
        *out = API_EXPORT_FLOAT32;
        return 0;
    }
    api_fail(err, 400, "dtype: must be \"float64\" or \"float32\"");
    return -1;
}

/* new: Θ with the standardization folded in, or a borrowed theta when there is none (*owned
 * says which); NULL when out of memory. */
static const double *model_theta(const api_export_model *m, double **owned)
{
    *owned = NULL;
    if (!m->mean || !m->sd)
        return m->theta;
    *owned = malloc((size_t)bp_param_count(m->spec) * sizeof **owned);
    if (*owned)
        bp_fold_standardize(*owned, m->theta, m->mean, m->sd, m->spec);
    return *owned;
}

/* Appends v little-endian as a float64 or (rounded to nearest) float32. */
static void put_number(api_pb *pb, double v, api_export_dtype dtype)
{
    unsigned char b[8];
    if (dtype == API_EXPORT_FLOAT32) {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        for (int i = 0; i < 4; i++)
            b[i] = (unsigned char)(u >> (8 * i));
        api_pb_raw(pb, b, 4);
    } else {
        uint64_t u;
        memcpy(&u, &v, sizeof u);
        for (int i = 0; i < 8; i++)
            b[i] = (unsigned char)(u >> (8 * i));
        api_pb_raw(pb, b, 8);
    }
}

/* ------------------------------------------------------------------ ONNX */

/* A graph initializer named name from T = Θ^(l) (out × (in + 1), row-major): the weights
 * W = Θ^(l)[:, 1:] as [out, in] (Gemm's B with transB = 1), or with bias set the biases
 * b = Θ^(l)[:, 0] as [out]; raw_data little-endian in dtype. */
static void onnx_tensor(api_pb *pb, const char *name, const double *T, int64_t out, int64_t in,
                        int bias, api_export_dtype dtype)
{
    size_t mark = api_pb_begin(pb, GRAPH_INITIALIZER);
    api_pb_int(pb, TENSOR_DIMS, out);
    if (!bias)
        api_pb_int(pb, TENSOR_DIMS, in);
    api_pb_int(pb, TENSOR_DATA_TYPE, dtype == API_EXPORT_FLOAT32 ? ONNX_FLOAT : ONNX_DOUBLE);
    api_pb_string(pb, TENSOR_NAME, name);
    size_t width = dtype == API_EXPORT_FLOAT32 ? 4 : 8;
    api_pb_tag(pb, TENSOR_RAW_DATA, API_PB_LEN);
    api_pb_varint(pb, (uint64_t)(out * (bias ? 1 : in)) * width);
    for (int64_t i = 0; i < out; i++) {
        const double *row = T + i * (in + 1); /* Θ^(l)[i, :] */
        if (bias)
            put_number(pb, row[0], dtype);
        else
            for (int64_t j = 0; j < in; j++)
                put_number(pb, row[1 + j], dtype);
    }
    api_pb_end(pb, mark);
}

/* A node: op on inputs (n_in names) into output, with at most one integer attribute. */
static void onnx_node(api_pb *pb, const char *op, const char *name, const char *const *inputs,
                      int n_in, const char *output, const char *attr, int64_t attr_value)
{
    size_t mark = api_pb_begin(pb, GRAPH_NODE);
    for (int i = 0; i < n_in; i++)
        api_pb_string(pb, NODE_INPUT, inputs[i]);
    api_pb_string(pb, NODE_OUTPUT, output);
    api_pb_string(pb, NODE_NAME, name);
    api_pb_string(pb, NODE_OP_TYPE, op);
    if (attr) {
        size_t a = api_pb_begin(pb, NODE_ATTRIBUTE);
        api_pb_string(pb, ATTR_NAME, attr);
        api_pb_int(pb, ATTR_TYPE, ATTR_TYPE_INT);
        api_pb_int(pb, ATTR_I, attr_value);
        api_pb_end(pb, a);
    }
    api_pb_end(pb, mark);
}

/* A graph input or output: name, tensor of elem [N, width] with N dynamic ("N"). */
static void onnx_value(api_pb *pb, uint32_t field, const char *name, int elem, int64_t width)
{
    size_t mark = api_pb_begin(pb, field);
    api_pb_string(pb, VALUE_NAME, name);
    size_t type = api_pb_begin(pb, VALUE_TYPE);
    size_t tensor = api_pb_begin(pb, TYPE_TENSOR);
    api_pb_int(pb, TENSOR_TYPE_ELEM, elem);
    size_t shape = api_pb_begin(pb, TENSOR_TYPE_SHAPE);
    size_t dim = api_pb_begin(pb, SHAPE_DIM);
    api_pb_string(pb, DIM_PARAM, "N");
    api_pb_end(pb, dim);
    dim = api_pb_begin(pb, SHAPE_DIM);
    api_pb_int(pb, DIM_VALUE, width);
    api_pb_end(pb, dim);
    api_pb_end(pb, shape);
    api_pb_end(pb, tensor);
    api_pb_end(pb, type);
    api_pb_end(pb, mark);
}

/* The graph: per layer Gemm(a, W, b, transB = 1) and the activation. */
static void onnx_graph(api_pb *pb, const bp_spec *spec, const double *theta,
                       api_export_dtype dtype)
{
    static const char *const hidden_op[] = {"Sigmoid", "Tanh", "Relu"};
    static const char *const output_op[] = {"Sigmoid", "Softmax", "Identity"};
    int elem = dtype == API_EXPORT_FLOAT32 ? ONNX_FLOAT : ONNX_DOUBLE;
    int L = spec->n_layers;
    size_t mark = api_pb_begin(pb, MODEL_GRAPH);
    api_pb_string(pb, GRAPH_NAME, PRODUCER);
    char a[24] = "input", w[24], b[24], z[24], name[24], next[24];
    for (int l = 1; l < L; l++) {
        int64_t in = spec->sizes[l - 1], out = spec->sizes[l];
        const double *T = theta + bp_layer_offset(spec, l - 1); /* Θ^(l): out × (in + 1) */
        snprintf(w, sizeof w, "W%d", l);
        snprintf(b, sizeof b, "b%d", l);
        snprintf(z, sizeof z, "z%d", l + 1);
        onnx_tensor(pb, w, T, out, in, 0, dtype);
        onnx_tensor(pb, b, T, out, in, 1, dtype);
        const char *gemm_in[] = {a, w, b};
        snprintf(name, sizeof name, "gemm%d", l);
        onnx_node(pb, "Gemm", name, gemm_in, 3, z, "transB", 1);
        const char *op = l < L - 1 ? hidden_op[spec->hidden] : output_op[spec->output];
        const char *act_in[] = {z};
        snprintf(next, sizeof next, l < L - 1 ? "a%d" : "output", l + 1);
        snprintf(name, sizeof name, "act%d", l + 1);
        int softmax = l == L - 1 && spec->output == BP_OUT_SOFTMAX;
        onnx_node(pb, op, name, act_in, 1, next, softmax ? "axis" : NULL, -1);
        snprintf(a, sizeof a, "%s", next);
    }
    onnx_value(pb, GRAPH_INPUT, "input", elem, spec->sizes[0]);
    onnx_value(pb, GRAPH_OUTPUT, "output", elem, spec->sizes[L - 1]);
    api_pb_end(pb, mark);
}

static void onnx_meta(api_pb *pb, const char *key, const char *value)
{
    size_t mark = api_pb_begin(pb, MODEL_METADATA_PROPS);
    api_pb_string(pb, ENTRY_KEY, key);
    api_pb_string(pb, ENTRY_VALUE, value);
    api_pb_end(pb, mark);
}

/* A JSON value as metadata text (steals j); 0 ok, -1 out of memory. */
static int onnx_meta_json(api_pb *pb, const char *key, json_t *j)
{
    char *text = j ? api_dump(j, NULL) : NULL;
    json_decref(j);
    if (!text)
        return -1;
    onnx_meta(pb, key, text);
    free(text);
    return 0;
}

/* new: the class names as a JSON array of strings; NULL when out of memory. */
static json_t *classes_json(const api_export_model *m)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < m->n_classes; i++)
        if (json_array_append_new(arr, json_string(m->classes[i] ? m->classes[i] : "")) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    return arr;
}

unsigned char *api_export_onnx(const api_export_model *m, api_export_dtype dtype, size_t *len)
{
    api_pb pb = {0};
    double *owned = NULL;
    unsigned char *out = NULL;
    *len = 0;
    const double *theta = model_theta(m, &owned);
    if (!theta)
        goto cleanup;
    api_pb_int(&pb, MODEL_IR_VERSION, ONNX_IR_VERSION);
    api_pb_string(&pb, MODEL_PRODUCER_NAME, PRODUCER);
    size_t opset = api_pb_begin(&pb, MODEL_OPSET_IMPORT); /* domain "" = ai.onnx */
    api_pb_int(&pb, OPSET_VERSION, ONNX_OPSET);
    api_pb_end(&pb, opset);
    onnx_graph(&pb, m->spec, theta, dtype);
    onnx_meta(&pb, "producer", PRODUCER);
    if (m->job_id)
        onnx_meta(&pb, "job_id", m->job_id);
    if (m->training_precision)
        onnx_meta(&pb, "training_precision", m->training_precision);
    if (m->epoch > 0) {
        char epoch[24];
        snprintf(epoch, sizeof epoch, "%lld", (long long)m->epoch);
        onnx_meta(&pb, "epoch", epoch);
    }
    onnx_meta(&pb, "precision", dtype == API_EXPORT_FLOAT32 ? "float32" : "float64");
    if (onnx_meta_json(&pb, "network", api_spec_json(m->spec)) < 0)
        goto cleanup;
    if (m->classes && onnx_meta_json(&pb, "classes", classes_json(m)) < 0)
        goto cleanup;
    if (owned)
        onnx_meta(&pb, "standardization", "folded into the first Gemm: the model takes raw rows");
    out = api_pb_release(&pb, len);
cleanup:
    api_pb_clear(&pb);
    free(owned);
    return out;
}

/* ------------------------------------------------------------------ TensorFlow.js */

/* new: one Dense layer's Keras config (the first with its batch_input_shape). */
static json_t *tfjs_dense(const bp_spec *spec, int l, const char *activation)
{
    char name[24];
    snprintf(name, sizeof name, "dense_%d", l);
    json_t *cfg = json_pack("{s:s, s:b, s:s, s:i, s:s, s:b}", "name", name, "trainable", 1,
                            "dtype", "float32", "units", spec->sizes[l], "activation",
                            activation, "use_bias", 1);
    if (cfg && l == 1 &&
        json_object_set_new(cfg, "batch_input_shape",
                            json_pack("[n, i]", spec->sizes[0])) < 0) {
        json_decref(cfg);
        cfg = NULL;
    }
    return cfg ? json_pack("{s:s, s:o}", "class_name", "Dense", "config", cfg) : NULL;
}

/* new: {"name","shape","dtype"} of a manifest entry. */
static json_t *tfjs_weight(int l, const char *what, int64_t d0, int64_t d1)
{
    char name[40];
    snprintf(name, sizeof name, "dense_%d/%s", l, what);
    json_t *shape = d1 ? json_pack("[I, I]", (json_int_t)d0, (json_int_t)d1)
                       : json_pack("[I]", (json_int_t)d0);
    return shape ? json_pack("{s:s, s:o, s:s}", "name", name, "shape", shape, "dtype",
                             "float32")
                 : NULL;
}

/* new: {"producer","job_id","epoch","network","classes","standardized",
 * "training_precision"}. */
static json_t *tfjs_meta(const api_export_model *m)
{
    json_t *classes = m->classes ? classes_json(m) : json_null();
    json_t *epoch = m->epoch > 0 ? json_integer((json_int_t)m->epoch) : json_null();
    return json_pack("{s:s, s:s?, s:o, s:o, s:o, s:b, s:s?}", "producer", PRODUCER, "job_id",
                     m->job_id, "epoch", epoch, "network", api_spec_json(m->spec), "classes",
                     classes, "standardized", m->mean && m->sd, "training_precision",
                     m->training_precision);
}

json_t *api_export_tfjs_json(const api_export_model *m, const char *weights_path)
{
    static const char *const hidden[] = {"sigmoid", "tanh", "relu"};
    static const char *const output[] = {"sigmoid", "softmax", "linear"};
    const bp_spec *spec = m->spec;
    json_t *layers = json_array(), *weights = json_array();
    int ok = layers && weights;
    for (int l = 1; ok && l < spec->n_layers; l++) {
        const char *act = l < spec->n_layers - 1 ? hidden[spec->hidden] : output[spec->output];
        ok = json_array_append_new(layers, tfjs_dense(spec, l, act)) == 0 &&
             json_array_append_new(weights, tfjs_weight(l, "kernel", spec->sizes[l - 1],
                                                        spec->sizes[l])) == 0 &&
             json_array_append_new(weights, tfjs_weight(l, "bias", spec->sizes[l], 0)) == 0;
    }
    if (!ok) {
        json_decref(layers);
        json_decref(weights);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:n, s:{s:s, s:{s:s, s:o}, s:s, s:s}, s:[{s:[s], s:o}], s:o}",
                     "format", "layers-model", "generatedBy", PRODUCER, "convertedBy",
                     "modelTopology", "class_name", "Sequential", "config", "name", PRODUCER,
                     "layers", layers, "keras_version", "tfjs-layers 4.22.0", "backend",
                     "tensor_flow.js", "weightsManifest", "paths", weights_path, "weights",
                     weights, "userDefinedMetadata", tfjs_meta(m));
}

unsigned char *api_export_tfjs_weights(const api_export_model *m, size_t *len)
{
    const bp_spec *spec = m->spec;
    api_pb buf = {0}; /* used as a plain byte buffer */
    double *owned = NULL;
    unsigned char *out = NULL;
    *len = 0;
    const double *theta = model_theta(m, &owned);
    if (!theta)
        goto cleanup;
    for (int l = 1; l < spec->n_layers; l++) {
        int64_t in = spec->sizes[l - 1], units = spec->sizes[l];
        const double *T = theta + bp_layer_offset(spec, l - 1); /* Θ^(l): units × (in + 1) */
        for (int64_t i = 0; i < in; i++)       /* kernel [in, units]: kernel[i][j] = Θ[j][1+i] */
            for (int64_t j = 0; j < units; j++)
                put_number(&buf, T[j * (in + 1) + 1 + i], API_EXPORT_FLOAT32);
        for (int64_t j = 0; j < units; j++)    /* bias [units] = Θ[:, 0] */
            put_number(&buf, T[j * (in + 1)], API_EXPORT_FLOAT32);
    }
    out = api_pb_release(&buf, len);
cleanup:
    api_pb_clear(&buf);
    free(owned);
    return out;
}
