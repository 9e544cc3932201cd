/* fuzz_export.c — the browser and runtime exports (api/export.c) on networks made from the fuzz
 * bytes, each checked by readers written here and not shared with the writers:
 *   - ONNX, float64 and float32: a protobuf wire-format reader of its own (varint, fixed,
 *     length-delimited; every length inside its parent) walks the ModelProto: IR 7, opset 13,
 *     per layer a Gemm (transB = 1) and its activation chained from "input" to "output", the
 *     initializers W<l> [s_{l+1}, s_l] and b<l> [s_{l+1}] whose raw_data is exactly Θ (the
 *     standardization folded in) rounded to the dtype, the input/output widths, and the
 *     metadata (precision, job_id, epoch, training_precision, network, classes read back as
 *     JSON equal to the names given, standardization);
 *   - TensorFlow.js: model.json prints (api_dump) as JSON that jansson reads back equal, its
 *     layers and activations are the spec's, its manifest's byte count is weights.bin's
 *     length, and weights.bin holds float32 Θ^(l)[:,1:]ᵀ (s_l × s_{l+1} row-major) then
 *     Θ^(l)[:,0] per layer, bit for bit.
 * The fold of the standardization is computed here from its definition in core/bp.h (W' = W/σ,
 * σ of 0 counting as 1; b' = b − W'_k μ_k subtracted feature by feature), not by
 * bp_fold_standardize. Values compare bit for bit (±0 apart; any NaN matches a NaN: an
 * infinite folded weight times a zero mean).
 *
 * The input (bytes past the end read as 0):
 *   byte 0     bits 0-1: layers L = 2 + (v % 3); bits 2-3: hidden activation (v % 3);
 *              bits 4-5: output kind (v % 3); bit 6: standardized; bit 7: class names
 *   byte 1     bits 0-1: training_precision (none, float64, float32, none); bit 2: a job_id;
 *              bits 3-5: a ?dtype= text for api_export_dtype_parse (both dtypes are exported)
 *   bytes 2-5  s_1 .. s_4 = 1 + (b % 16) (the first L used)
 *   8 bytes    epoch (int64 little-endian; ≤ 0 = none)
 *   1 byte n,  then n bytes of class names separated by NUL; the export gets K names (K = s_L,
 *              2 for one sigmoid output) as the export handler makes them with
 *              api_class_names_json: a missing name, or one that is not UTF-8 (a stored JSON
 *              string never is), becomes its index
 *   8 bytes each: Θ (bp_param_count doubles), then when standardized mean[s_1] and sd[s_1];
 *              a non-finite double (the core refuses those) has its top exponent bit cleared.
 *
 * Built with clang -fsanitize=fuzzer by `make fuzz` (tests/fuzz/run), and included by
 * tests/api_fuzz_export.c, whose Criterion driver replays corpus_export/ and a fixed set of
 * mutations under ASan+UBSan in every `make test`.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/export.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A written export that is not what the model says stops the run. */
static void ex_check(int ok)
{
    if (!ok)
        __builtin_trap();
}

enum { EX_UNITS = 16, EX_P = 3 * EX_UNITS * (EX_UNITS + 1), EX_META = 16 };

/* The model made from the input, and what the exports must hold. */
typedef struct {
    bp_spec spec;
    int64_t P;
    double theta[EX_P];  /* as given */
    double folded[EX_P]; /* Θ with the standardization folded in (ex_fold) */
    double mean[EX_UNITS], sd[EX_UNITS];
    int standardized;
    char text[256 + EX_UNITS];   /* the class names, each NUL-terminated */
    char index[EX_UNITS][12];    /* names standing in for missing ones */
    const char *names[EX_UNITS]; /* into text or index; K of them */
    int K;                       /* 0 = no class names */
    char job_id[40];
    int dtype_text;              /* which ?dtype= text ex_dtype parses */
    api_export_model m;
} ex_model;

/* ------------------------------------------------------------------ the input */

typedef struct {
    const uint8_t *p;
    size_t n;
} ex_in;

static uint8_t in_byte(ex_in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static uint64_t in_u64(ex_in *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)in_byte(in) << (8 * i);
    return v;
}

/* A finite double: exponent all ones (inf, NaN) loses its top exponent bit. */
static double in_double(ex_in *in)
{
    uint64_t u = in_u64(in);
    if (((u >> 52) & 0x7ff) == 0x7ff)
        u &= ~(1ULL << 62);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* The class names from n bytes of text: K of them as the export handler would pass them. */
static void in_names(ex_model *x, ex_in *in, size_t n)
{
    int L = x->spec.n_layers;
    x->K = x->spec.sizes[L - 1] == 1 ? 2 : x->spec.sizes[L - 1];
    size_t len = 0;
    char *seg = x->text;
    int k = 0;
    for (size_t i = 0; i <= n; i++) {
        uint8_t c = i < n ? in_byte(in) : 0;
        x->text[len++] = (char)c;
        if (c != 0)
            continue;
        if (k < x->K) {
            json_t *s = json_string(seg); /* NULL: not UTF-8, never in a stored JSON text */
            x->names[k] = s ? seg : NULL;
            json_decref(s);
            k++;
        }
        seg = x->text + len;
    }
    for (k = 0; k < x->K; k++)
        if (!x->names[k]) {
            snprintf(x->index[k], sizeof x->index[k], "%d", k);
            x->names[k] = x->index[k];
        }
}

/* Θ with the standardization folded into Θ^(1), from the definition (see the top). */
static void ex_fold(ex_model *x)
{
    memcpy(x->folded, x->theta, (size_t)x->P * sizeof *x->folded);
    if (!x->standardized)
        return;
    int n = x->spec.sizes[0];
    for (int j = 0; j < x->spec.sizes[1]; j++) {
        const double *row = x->theta + j * (n + 1); /* Θ^(1)[j, :] */
        double *out = x->folded + j * (n + 1);
        double b = row[0];
        for (int k = 0; k < n; k++) {
            double w = row[1 + k] / (x->sd[k] != 0 ? x->sd[k] : 1.0);
            b -= w * x->mean[k];
            out[1 + k] = w;
        }
        out[0] = b;
    }
}

/* The model the input describes (see the top for the layout). */
static void ex_model_read(ex_model *x, const uint8_t *data, size_t size)
{
    static const char *const precision[] = {NULL, "float64", "float32", NULL};
    ex_in in = {data, size};
    memset(x, 0, sizeof *x);
    uint8_t flags = in_byte(&in), more = in_byte(&in);
    x->spec.n_layers = 2 + (flags & 3) % 3;
    x->spec.hidden = (bp_act)((flags >> 2 & 3) % 3);
    x->spec.output = (bp_out)((flags >> 4 & 3) % 3);
    for (int l = 0; l < 4; l++) {
        uint8_t b = in_byte(&in);
        if (l < x->spec.n_layers)
            x->spec.sizes[l] = 1 + b % EX_UNITS;
    }
    bp_error err;
    ex_check(bp_spec_validate(&x->spec, &err) == 0);
    x->P = bp_param_count(&x->spec);
    int64_t epoch = (int64_t)in_u64(&in);
    size_t n_text = in_byte(&in);
    if (flags & 0x80)
        in_names(x, &in, n_text);
    else
        for (size_t i = 0; i < n_text; i++)
            in_byte(&in);
    for (int64_t i = 0; i < x->P; i++)
        x->theta[i] = in_double(&in);
    x->standardized = (flags & 0x40) != 0;
    for (int k = 0; x->standardized && k < x->spec.sizes[0]; k++)
        x->mean[k] = in_double(&in);
    for (int k = 0; x->standardized && k < x->spec.sizes[0]; k++)
        x->sd[k] = in_double(&in);
    ex_fold(x);
    x->dtype_text = more >> 3 & 7;
    if (more & 4)
        snprintf(x->job_id, sizeof x->job_id, "job-%016llx", (unsigned long long)epoch);
    x->m = (api_export_model){.job_id = more & 4 ? x->job_id : NULL, .epoch = epoch,
                              .spec = &x->spec, .theta = x->theta,
                              .mean = x->standardized ? x->mean : NULL,
                              .sd = x->standardized ? x->sd : NULL,
                              .classes = x->K ? x->names : NULL, .n_classes = (size_t)x->K,
                              .training_precision = precision[more & 3]};
}

/* want rounded to the dtype (4 or 8 bytes) equals the little-endian number at raw. */
static int ex_same(double want, const uint8_t *raw, int width)
{
    uint64_t u = 0;
    for (int i = 0; i < width; i++)
        u |= (uint64_t)raw[i] << (8 * i);
    if (width == 4) {
        float w = (float)want, got;
        uint32_t wu, gu = (uint32_t)u;
        memcpy(&got, &gu, sizeof got);
        memcpy(&wu, &w, sizeof wu);
        return isnan(w) ? isnan(got) : wu == gu;
    }
    double got;
    uint64_t wu;
    memcpy(&got, &u, sizeof got);
    memcpy(&wu, &want, sizeof wu);
    return isnan(want) ? isnan(got) : wu == u;
}

/* ------------------------------------------------------------------ a protobuf reader */

typedef struct {
    const uint8_t *p, *end; /* a message's bytes not read yet */
} pb_msg;

typedef struct {
    uint32_t field;
    int wire;      /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
    uint64_t v;    /* varint or fixed value */
    pb_msg sub;    /* length-delimited: its bytes */
} pb_field;

static uint64_t pb_varint(pb_msg *r)
{
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
        ex_check(r->p < r->end && shift <= 63); /* ten bytes at most, inside the message */
        uint8_t b = *r->p++;
        ex_check(shift < 63 || b <= 1);
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
}

/* The next field of r into *f: 1, or 0 at r's end. Traps on a malformed field. */
static int pb_next(pb_msg *r, pb_field *f)
{
    if (r->p == r->end)
        return 0;
    uint64_t tag = pb_varint(r);
    ex_check(tag >> 3 >= 1 && tag >> 3 <= 0x1fffffff);
    f->field = (uint32_t)(tag >> 3);
    f->wire = (int)(tag & 7);
    f->v = 0;
    if (f->wire == 0) {
        f->v = pb_varint(r);
    } else if (f->wire == 1 || f->wire == 5) {
        size_t n = f->wire == 1 ? 8 : 4;
        ex_check((size_t)(r->end - r->p) >= n);
        for (size_t i = 0; i < n; i++)
            f->v |= (uint64_t)r->p[i] << (8 * i);
        r->p += n;
    } else {
        ex_check(f->wire == 2);
        uint64_t n = pb_varint(r);
        ex_check(n <= (uint64_t)(r->end - r->p)); /* inside its parent */
        f->sub = (pb_msg){r->p, r->p + n};
        r->p += n;
    }
    return 1;
}

/* f is the length-delimited string s. */
static int pb_is(const pb_field *f, const char *s)
{
    size_t n = strlen(s);
    return f->wire == 2 && (size_t)(f->sub.end - f->sub.p) == n && memcmp(f->sub.p, s, n) == 0;
}

/* ------------------------------------------------------------------ ONNX */

/* Initializer i (W<l> for even i, b<l> for odd) of x in dtype width (4 or 8). */
static void onnx_tensor(const ex_model *x, pb_msg t, int i, int width)
{
    int l = i / 2 + 1, bias = i % 2;
    int64_t in = x->spec.sizes[l - 1], out = x->spec.sizes[l];
    const double *T = x->folded + bp_layer_offset(&x->spec, l - 1); /* out × (in + 1) */
    char name[16];
    snprintf(name, sizeof name, "%c%d", bias ? 'b' : 'W', l);
    int64_t dims[3];
    int n_dims = 0, type = 0, named = 0, data = 0;
    pb_field f;
    while (pb_next(&t, &f)) {
        if (f.field == 1 && f.wire == 0) {
            ex_check(n_dims < 2);
            dims[n_dims++] = (int64_t)f.v;
        } else if (f.field == 2 && f.wire == 0) {
            type = (int)f.v;
        } else if (f.field == 8) {
            named = pb_is(&f, name);
        } else {
            ex_check(f.field == 9 && f.wire == 2 && !data);
            data = 1;
            size_t n = (size_t)(bias ? out : out * in);
            ex_check((size_t)(f.sub.end - f.sub.p) == n * (size_t)width);
            for (int64_t r = 0; r < out; r++)
                for (int64_t c = bias ? 0 : 1; c < (bias ? 1 : in + 1); c++, f.sub.p += width)
                    ex_check(ex_same(T[r * (in + 1) + c], f.sub.p, width));
        }
    }
    ex_check(named && data && type == (width == 4 ? 1 : 11));
    ex_check(n_dims == (bias ? 1 : 2) && dims[0] == out && (bias || dims[1] == in));
}

/* Node j of x's graph: Gemm(prev, W<l>, b<l>, transB = 1) → z<l+1> for even j, else the
 * activation of z<l+1> (Softmax with axis = -1); *prev (the input's name) becomes its output. */
static void onnx_node(const ex_model *x, pb_msg node, int j, pb_field *prev)
{
    static const char *const hidden[] = {"Sigmoid", "Tanh", "Relu"};
    static const char *const output[] = {"Sigmoid", "Softmax", "Identity"};
    int l = j / 2 + 1, L = x->spec.n_layers;
    const char *op = j % 2 == 0 ? "Gemm" : l < L - 1 ? hidden[x->spec.hidden]
                                                     : output[x->spec.output];
    const char *attr = j % 2 == 0 ? "transB" : strcmp(op, "Softmax") == 0 ? "axis" : NULL;
    int64_t attr_value = j % 2 == 0 ? 1 : -1;
    char w[16], b[16];
    snprintf(w, sizeof w, "W%d", l);
    snprintf(b, sizeof b, "b%d", l);
    int n_in = 0, n_out = 0, op_ok = 0, attrs = 0;
    pb_field f, out = {0};
    while (pb_next(&node, &f)) {
        ex_check(f.wire == 2);
        if (f.field == 1) {
            ex_check(n_in == 0 ? (f.sub.end - f.sub.p == prev->sub.end - prev->sub.p &&
                                  memcmp(f.sub.p, prev->sub.p, (size_t)(f.sub.end - f.sub.p)) == 0)
                               : pb_is(&f, n_in == 1 ? w : b));
            n_in++;
        } else if (f.field == 2) {
            out = f;
            n_out++;
        } else if (f.field == 4) {
            op_ok = pb_is(&f, op);
        } else if (f.field == 5) {
            int named = 0, typed = 0, valued = 0;
            pb_field a;
            while (pb_next(&f.sub, &a)) {
                named |= a.field == 1 && attr && pb_is(&a, attr);
                typed |= a.field == 20 && a.wire == 0 && a.v == 2; /* INT */
                valued |= a.field == 3 && a.wire == 0 && (int64_t)a.v == attr_value;
            }
            ex_check(named && typed && valued);
            attrs++;
        } else {
            ex_check(f.field == 3); /* its name */
        }
    }
    ex_check(op_ok && n_in == (j % 2 ? 1 : 3) && n_out == 1 && attrs == (attr != NULL));
    ex_check(j != 2 * (L - 1) - 1 || pb_is(&out, "output"));
    *prev = out;
}

/* A graph input/output: name, tensor of elem [N, width] with N a parameter. */
static void onnx_value(pb_msg v, const char *name, int elem, int64_t width)
{
    pb_field f, t, tt, s, d, x;
    int named = 0, dims = 0, elem_ok = 0, width_ok = 0;
    while (pb_next(&v, &f)) {
        named |= f.field == 1 && pb_is(&f, name);
        if (f.field != 2)
            continue;
        ex_check(f.wire == 2 && pb_next(&f.sub, &t) && t.field == 1 && t.wire == 2);
        while (pb_next(&t.sub, &tt)) {
            elem_ok |= tt.field == 1 && tt.wire == 0 && tt.v == (uint64_t)elem;
            if (tt.field != 2)
                continue;
            ex_check(tt.wire == 2);
            while (pb_next(&tt.sub, &s)) {
                ex_check(s.field == 1 && s.wire == 2 && pb_next(&s.sub, &d));
                if (dims == 0)
                    ex_check(d.field == 2 && pb_is(&d, "N"));
                else
                    width_ok = d.field == 1 && d.wire == 0 && d.v == (uint64_t)width;
                ex_check(!pb_next(&s.sub, &x));
                dims++;
            }
        }
    }
    ex_check(named && elem_ok && dims == 2 && width_ok);
}

/* The graph: nodes chained from "input", initializers, input and output. */
static void onnx_graph(const ex_model *x, pb_msg g, int width)
{
    int L = x->spec.n_layers, n_nodes = 0, n_init = 0, n_in = 0, n_out = 0;
    int elem = width == 4 ? 1 : 11;
    const uint8_t input[] = "input";
    pb_field f, prev = {.wire = 2, .sub = {input, input + 5}};
    while (pb_next(&g, &f)) {
        ex_check(f.wire == 2);
        if (f.field == 1) {
            ex_check(n_nodes < 2 * (L - 1));
            onnx_node(x, f.sub, n_nodes++, &prev);
        } else if (f.field == 5) {
            ex_check(n_init < 2 * (L - 1));
            onnx_tensor(x, f.sub, n_init++, width);
        } else if (f.field == 11) {
            onnx_value(f.sub, "input", elem, x->spec.sizes[0]);
            n_in++;
        } else if (f.field == 12) {
            onnx_value(f.sub, "output", elem, x->spec.sizes[L - 1]);
            n_out++;
        } else {
            ex_check(f.field == 2); /* its name */
        }
    }
    ex_check(n_nodes == 2 * (L - 1) && n_init == 2 * (L - 1) && n_in == 1 && n_out == 1);
}

typedef struct {
    pb_field key, value;
} pb_entry;

/* The metadata entry named key, or NULL; a key given twice traps. */
static const pb_entry *meta_find(const pb_entry *meta, int n, const char *key)
{
    const pb_entry *hit = NULL;
    for (int i = 0; i < n; i++)
        if (pb_is(&meta[i].key, key)) {
            ex_check(!hit);
            hit = &meta[i];
        }
    return hit;
}

/* The entry's value read as JSON (new), NULL when there is none; it must parse. */
static json_t *meta_json(const pb_entry *e)
{
    if (!e)
        return NULL;
    json_error_t jerr;
    json_t *j = json_loadb((const char *)e->value.sub.p, (size_t)(e->value.sub.end - e->value.sub.p),
                           0, &jerr);
    ex_check(j != NULL);
    return j;
}

/* names (K) as a JSON array (new). */
static json_t *names_json(const ex_model *x)
{
    json_t *a = json_array();
    for (int k = 0; a && k < x->K; k++)
        json_array_append_new(a, json_string(x->names[k]));
    ex_check(a && json_array_size(a) == (size_t)x->K);
    return a;
}

/* metadata_props: what export.h lists, each once, with the model's values. */
static void onnx_meta(const ex_model *x, const pb_entry *meta, int n, int width)
{
    const pb_entry *e = meta_find(meta, n, "producer");
    ex_check(e && pb_is(&e->value, "backpropd"));
    e = meta_find(meta, n, "precision");
    ex_check(e && pb_is(&e->value, width == 4 ? "float32" : "float64"));
    e = meta_find(meta, n, "job_id");
    ex_check(x->m.job_id ? e && pb_is(&e->value, x->m.job_id) : !e);
    e = meta_find(meta, n, "training_precision");
    ex_check(x->m.training_precision ? e && pb_is(&e->value, x->m.training_precision) : !e);
    char epoch[24];
    snprintf(epoch, sizeof epoch, "%lld", (long long)x->m.epoch);
    e = meta_find(meta, n, "epoch");
    ex_check(x->m.epoch > 0 ? e && pb_is(&e->value, epoch) : !e);
    ex_check((meta_find(meta, n, "standardization") != NULL) == x->standardized);
    json_t *got = meta_json(meta_find(meta, n, "network")), *want = api_spec_json(&x->spec);
    ex_check(got && want && json_equal(got, want));
    json_decref(got);
    json_decref(want);
    got = meta_json(meta_find(meta, n, "classes"));
    want = x->K ? names_json(x) : NULL;
    ex_check(x->K ? got && json_equal(got, want) : !got);
    json_decref(got);
    json_decref(want);
}

/* The ModelProto: IR 7, producer, opset 13 of the default domain, the graph once, metadata. */
static void onnx_check(const ex_model *x, const uint8_t *bytes, size_t len, int width)
{
    pb_msg model = {bytes, bytes + len};
    pb_entry meta[EX_META];
    int n_meta = 0, ir = 0, producer = 0, opset = 0, graphs = 0;
    pb_field f, g;
    while (pb_next(&model, &f)) {
        if (f.field == 1) {
            ir = f.wire == 0 && f.v == 7;
        } else if (f.field == 2) {
            producer = pb_is(&f, "backpropd");
        } else if (f.field == 7) {
            ex_check(f.wire == 2);
            onnx_graph(x, f.sub, width);
            graphs++;
        } else if (f.field == 8) {
            ex_check(f.wire == 2 && pb_next(&f.sub, &g) && !opset);
            opset = g.field == 2 && g.wire == 0 && g.v == 13 && !pb_next(&f.sub, &g);
        } else {
            ex_check(f.field == 14 && f.wire == 2 && n_meta < EX_META);
            pb_entry *e = &meta[n_meta++];
            ex_check(pb_next(&f.sub, &e->key) && e->key.field == 1 && e->key.wire == 2);
            ex_check(pb_next(&f.sub, &e->value) && e->value.field == 2 && e->value.wire == 2);
            ex_check(!pb_next(&f.sub, &g));
        }
    }
    ex_check(ir && producer && opset && graphs == 1);
    onnx_meta(x, meta, n_meta, width);
}

/* ------------------------------------------------------------------ TensorFlow.js */

/* o[key] is the string s. */
static int js_is(const json_t *o, const char *key, const char *s)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v && strcmp(v, s) == 0;
}

/* The layers and the manifest; the manifest's byte count into *bytes. */
static void tfjs_layers(const ex_model *x, const json_t *j, size_t *bytes)
{
    static const char *const hidden[] = {"sigmoid", "tanh", "relu"};
    static const char *const output[] = {"sigmoid", "softmax", "linear"};
    int L = x->spec.n_layers;
    const json_t *layers = json_object_get(
        json_object_get(json_object_get(j, "modelTopology"), "config"), "layers");
    const json_t *manifest = json_object_get(j, "weightsManifest");
    const json_t *group = json_array_get(manifest, 0), *paths = json_object_get(group, "paths");
    const json_t *weights = json_object_get(group, "weights");
    ex_check(json_array_size(layers) == (size_t)(L - 1) && json_array_size(manifest) == 1);
    const char *path = json_string_value(json_array_get(paths, 0));
    ex_check(json_array_size(paths) == 1 && path && strcmp(path, "weights.bin") == 0);
    ex_check(json_array_size(weights) == 2 * (size_t)(L - 1));
    *bytes = 0;
    for (int l = 1; l < L; l++) {
        const json_t *cfg = json_object_get(json_array_get(layers, (size_t)l - 1), "config");
        ex_check(json_integer_value(json_object_get(cfg, "units")) == x->spec.sizes[l]);
        ex_check(js_is(cfg, "activation", l < L - 1 ? hidden[x->spec.hidden]
                                                    : output[x->spec.output]));
        const json_t *batch = json_object_get(cfg, "batch_input_shape"); /* [null, s_1] */
        ex_check(l > 1 ? !batch
                       : json_array_size(batch) == 2 && json_is_null(json_array_get(batch, 0)) &&
                             json_integer_value(json_array_get(batch, 1)) == x->spec.sizes[0]);
        for (int bias = 0; bias < 2; bias++) {
            const json_t *w = json_array_get(weights, 2 * ((size_t)l - 1) + (size_t)bias);
            const json_t *shape = json_object_get(w, "shape");
            char name[32];
            snprintf(name, sizeof name, "dense_%d/%s", l, bias ? "bias" : "kernel");
            ex_check(js_is(w, "name", name) && js_is(w, "dtype", "float32"));
            ex_check(json_array_size(shape) == (bias ? 1u : 2u));
            size_t n = 4;
            for (size_t d = 0; d < json_array_size(shape); d++) {
                json_int_t v = json_integer_value(json_array_get(shape, d));
                ex_check(v == x->spec.sizes[bias ? l : l - 1 + (int)d]);
                n *= (size_t)v;
            }
            *bytes += n;
        }
    }
}

/* userDefinedMetadata: the model's job_id, epoch, network, classes, standardized,
 * training_precision. */
static void tfjs_meta(const ex_model *x, const json_t *j)
{
    const json_t *meta = json_object_get(j, "userDefinedMetadata");
    ex_check(js_is(meta, "producer", "backpropd"));
    ex_check(x->m.job_id ? js_is(meta, "job_id", x->m.job_id)
                         : json_is_null(json_object_get(meta, "job_id")));
    ex_check(x->m.training_precision
                 ? js_is(meta, "training_precision", x->m.training_precision)
                 : json_is_null(json_object_get(meta, "training_precision")));
    const json_t *epoch = json_object_get(meta, "epoch");
    ex_check(x->m.epoch > 0 ? json_integer_value(epoch) == x->m.epoch : json_is_null(epoch));
    ex_check(json_is_boolean(json_object_get(meta, "standardized")) &&
             json_is_true(json_object_get(meta, "standardized")) == x->standardized);
    json_t *want = api_spec_json(&x->spec);
    ex_check(want && json_equal(json_object_get(meta, "network"), want));
    json_decref(want);
    want = x->K ? names_json(x) : json_null();
    ex_check(json_equal(json_object_get(meta, "classes"), want));
    json_decref(want);
}

/* weights.bin: per layer the float32 kernel Θ'^(l)[:,1:]ᵀ (s_l × s_{l+1}) then Θ'^(l)[:,0]. */
static void tfjs_weights(const ex_model *x, const uint8_t *bin, size_t len)
{
    size_t at = 0;
    for (int l = 1; l < x->spec.n_layers; l++) {
        int64_t in = x->spec.sizes[l - 1], units = x->spec.sizes[l];
        const double *T = x->folded + bp_layer_offset(&x->spec, l - 1); /* units × (in + 1) */
        ex_check(len - at >= (size_t)((in + 1) * units) * 4);
        for (int64_t i = 0; i < in; i++)
            for (int64_t k = 0; k < units; k++, at += 4)
                ex_check(ex_same(T[k * (in + 1) + 1 + i], bin + at, 4));
        for (int64_t k = 0; k < units; k++, at += 4)
            ex_check(ex_same(T[k * (in + 1)], bin + at, 4));
    }
    ex_check(at == len);
}

static void tfjs_check(const ex_model *x)
{
    json_t *j = api_export_tfjs_json(&x->m, "weights.bin"), *back = NULL;
    size_t text_len = 0, bin_len = 0, manifest = 0;
    char *text = NULL;
    unsigned char *bin = api_export_tfjs_weights(&x->m, &bin_len);
    ex_check(j && bin);
    text = api_dump(j, &text_len);
    ex_check(text != NULL);
    json_error_t jerr;
    back = json_loadb(text, text_len, 0, &jerr);
    ex_check(back && json_equal(j, back) && js_is(back, "format", "layers-model"));
    tfjs_layers(x, back, &manifest);
    ex_check(manifest == bin_len);
    tfjs_meta(x, back);
    tfjs_weights(x, bin, bin_len);
    json_decref(back);
    free(text);
    free(bin);
    json_decref(j);
}

/* ?dtype= as the export handler parses it: the documented names, or 400 naming the field. */
static void ex_dtype(int which)
{
    static const char *const text[] = {NULL, "", "float64", "double", "float32", "float",
                                       "float16", "Float32"};
    static const int want[] = {API_EXPORT_FLOAT64, API_EXPORT_FLOAT64, API_EXPORT_FLOAT64,
                               API_EXPORT_FLOAT64, API_EXPORT_FLOAT32, API_EXPORT_FLOAT32, -1, -1};
    api_export_dtype got = API_EXPORT_FLOAT64;
    api_error err;
    memset(&err, 0, sizeof err);
    int rc = api_export_dtype_parse(text[which], &got, &err);
    ex_check(want[which] < 0 ? rc == -1 && err.status == 400 && strstr(err.detail, "dtype")
                             : rc == 0 && (int)got == want[which]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ex_model *x = malloc(sizeof *x);
    ex_check(x != NULL);
    ex_model_read(x, data, size);
    ex_dtype(x->dtype_text);
    for (int f32 = 0; f32 < 2; f32++) {
        size_t len = 0;
        unsigned char *onnx =
            api_export_onnx(&x->m, f32 ? API_EXPORT_FLOAT32 : API_EXPORT_FLOAT64, &len);
        ex_check(onnx != NULL);
        onnx_check(x, onnx, len, f32 ? 4 : 8);
        free(onnx);
    }
    tfjs_check(x);
    free(x);
    return 0;
}
