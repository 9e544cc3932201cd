/* api_export.c — unit tests of the protobuf writer (api/pb.c) and the exports (api/export.c):
 * varints, tags, length-delimited fields and nested messages against the byte strings of the
 * protobuf encoding guide and a varint decoder written here; an ONNX model and a weights.bin
 * of a small net read back by this file's own decoder (every weight's bytes where the layout
 * puts them); the standardization fold (bp_fold_standardize) against predicting standardized
 * rows with the unfolded weights; class names and dtype parsing.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/export.h"
#include "api/pb.h"

/* ------------------------------------------------------------------ a decoder of our own */

/* Reads a varint at *p (end: one past the last byte); -1 when it runs past the end. */
static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (*p >= end)
            return -1;
        unsigned char b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* The n-th (0-based) occurrence of field in the message buf[0..len): a varint into *v or a
 * length-delimited value into *data and *dlen. 0 found, -1 not (or malformed). */
static int find_field(const unsigned char *buf, size_t len, uint32_t field, int n, uint64_t *v,
                      const unsigned char **data, size_t *dlen)
{
    const unsigned char *p = buf, *end = buf + len;
    while (p < end) {
        uint64_t tag, val;
        if (get_varint(&p, end, &tag) < 0)
            return -1;
        unsigned wire = (unsigned)(tag & 7);
        const unsigned char *d = NULL;
        if (wire == 0) {
            if (get_varint(&p, end, &val) < 0)
                return -1;
        } else if (wire == 2) {
            if (get_varint(&p, end, &val) < 0 || val > (uint64_t)(end - p))
                return -1;
            d = p;
            p += val;
        } else {
            return -1;
        }
        if ((tag >> 3) == field && n-- == 0) {
            if (v)
                *v = val;
            if (data)
                *data = d;
            if (dlen)
                *dlen = d ? (size_t)val : 0;
            return 0;
        }
    }
    return -1;
}

static size_t count_field(const unsigned char *buf, size_t len, uint32_t field)
{
    size_t n = 0;
    while (find_field(buf, len, field, (int)n, NULL, NULL, NULL) == 0)
        n++;
    return n;
}

static void expect_bytes(const api_pb *pb, const unsigned char *want, size_t n, const char *what)
{
    cr_assert_eq(pb->oom, 0);
    cr_assert_eq(pb->len, n, "%s: %zu bytes, want %zu", what, pb->len, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(pb->buf[i], want[i], "%s: byte %zu is %02x, want %02x", what, i, pb->buf[i],
                     want[i]);
}

/* ------------------------------------------------------------------ the writer */

Test(pb, varints_as_the_encoding_guide_spells_them)
{
    static const struct {
        uint64_t v;
        unsigned char bytes[10];
        size_t n;
    } cases[] = {
        {0, {0x00}, 1},
        {1, {0x01}, 1},
        {127, {0x7f}, 1},
        {128, {0x80, 0x01}, 2},
        {150, {0x96, 0x01}, 2},
        {300, {0xac, 0x02}, 2},
        {16383, {0xff, 0x7f}, 2},
        {16384, {0x80, 0x80, 0x01}, 3},
        {UINT64_MAX, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        api_pb pb = {0};
        api_pb_varint(&pb, cases[k].v);
        expect_bytes(&pb, cases[k].bytes, cases[k].n, "varint");
        cr_assert_eq(api_pb_varint_size(cases[k].v), cases[k].n);
        api_pb_clear(&pb);
    }
}

Test(pb, varints_round_trip_through_our_decoder)
{
    /* every bit length 0..64, and its neighbours: length = max(1, ceil(bits / 7)) */
    for (int bits = 0; bits <= 64; bits++) {
        uint64_t base = bits == 0 ? 0 : bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
        for (int d = 0; d < 2; d++) {
            uint64_t v = d ? base >> 1 : base;
            int vb = 0;
            for (uint64_t t = v; t; t >>= 1)
                vb++;
            size_t want = vb == 0 ? 1 : (size_t)(vb + 6) / 7;
            api_pb pb = {0};
            api_pb_varint(&pb, v);
            cr_assert_eq(pb.len, want, "%llu: %zu bytes, want %zu", (unsigned long long)v,
                         pb.len, want);
            const unsigned char *p = pb.buf;
            uint64_t back;
            cr_assert_eq(get_varint(&p, pb.buf + pb.len, &back), 0);
            cr_assert_eq(back, v);
            cr_assert_eq(p, pb.buf + pb.len);
            api_pb_clear(&pb);
        }
    }
}

Test(pb, fields_as_the_encoding_guide_spells_them)
{
    /* message Test1 { int32 a = 1; } with a = 150 → 08 96 01 */
    api_pb pb = {0};
    api_pb_int(&pb, 1, 150);
    expect_bytes(&pb, (const unsigned char[]){0x08, 0x96, 0x01}, 3, "Test1");
    api_pb_clear(&pb);
    /* message Test2 { string b = 2; } with b = "testing" → 12 07 74 65 73 74 69 6e 67 */
    api_pb_string(&pb, 2, "testing");
    expect_bytes(&pb, (const unsigned char[]){0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g'}, 9,
                 "Test2");
    api_pb_clear(&pb);
    /* message Test3 { Test1 c = 3; } with c.a = 150 → 1a 03 08 96 01 */
    size_t m = api_pb_begin(&pb, 3);
    api_pb_int(&pb, 1, 150);
    api_pb_end(&pb, m);
    expect_bytes(&pb, (const unsigned char[]){0x1a, 0x03, 0x08, 0x96, 0x01}, 5, "Test3");
    api_pb_clear(&pb);
    /* a negative int64 is ten bytes of two's complement; a field number past 15 a 2-byte tag */
    api_pb_int(&pb, 20, -1);
    expect_bytes(&pb, (const unsigned char[]){0xa0, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                              0xff, 0xff, 0xff, 0x01}, 12, "int64 -1, field 20");
    api_pb_clear(&pb);
}

Test(pb, nested_messages_get_multi_byte_lengths_and_keep_their_contents)
{
    /* outer(5){ inner(6){ 300 bytes } , field 1 = 7 }: lengths 300 → ac 02, and 300+3+2 = 305
     * → b1 02 */
    unsigned char blob[300];
    for (size_t i = 0; i < sizeof blob; i++)
        blob[i] = (unsigned char)(i * 7 + 3);
    api_pb pb = {0};
    size_t outer = api_pb_begin(&pb, 5);
    size_t inner = api_pb_begin(&pb, 6);
    api_pb_raw(&pb, blob, sizeof blob);
    api_pb_end(&pb, inner);
    api_pb_int(&pb, 1, 7);
    api_pb_end(&pb, outer);
    cr_assert_eq(pb.oom, 0);
    /* inner: tag 0x32, len ac 02, 300 bytes = 303; plus field 1 (08 07) = 305 = b1 02 */
    const unsigned char head[] = {0x2a, 0xb1, 0x02, 0x32, 0xac, 0x02};
    cr_assert_eq(pb.len, sizeof head + 300 + 2);
    cr_assert(memcmp(pb.buf, head, sizeof head) == 0);
    cr_assert(memcmp(pb.buf + sizeof head, blob, sizeof blob) == 0);
    cr_assert_eq(pb.buf[pb.len - 2], 0x08);
    cr_assert_eq(pb.buf[pb.len - 1], 0x07);
    size_t len = 0;
    unsigned char *out = api_pb_release(&pb, &len);
    cr_assert(out && len == sizeof head + 302);
    cr_assert_eq(pb.buf, NULL);
    free(out);
}

/* ------------------------------------------------------------------ the exports */

/* A [3, 2, 2] net whose weights are 0.1·(k+1)·(-1)^k, k their index in the unrolled Θ. */
static bp_spec small_spec(bp_out output)
{
    bp_spec s = {.n_layers = 3, .sizes = {3, 2, 2}, .hidden = BP_ACT_TANH, .output = output};
    return s;
}

static void small_theta(double *theta, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        theta[k] = 0.1 * (double)(k + 1) * (k % 2 ? -1 : 1) + 1.0 / 3.0;
}

/* The n-byte little-endian unsigned number at p. */
static uint64_t le_uint(const unsigned char *p, int n)
{
    uint64_t u = 0;
    for (int i = n - 1; i >= 0; i--)
        u = u << 8 | p[i];
    return u;
}

static double le_double(const unsigned char *p)
{
    uint64_t u = le_uint(p, 8);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static float le_float(const unsigned char *p)
{
    uint32_t u = (uint32_t)le_uint(p, 4);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The graph's initializer named name: its dims and raw bytes. */
static void initializer(const unsigned char *graph, size_t glen, const char *name,
                        int64_t dims[2], size_t *ndims, const unsigned char **raw, size_t *rlen,
                        uint64_t *type)
{
    const unsigned char *t;
    size_t tlen;
    for (int i = 0; find_field(graph, glen, 5, i, NULL, &t, &tlen) == 0; i++) {
        const unsigned char *nm;
        size_t nlen;
        cr_assert_eq(find_field(t, tlen, 8, 0, NULL, &nm, &nlen), 0);
        if (nlen != strlen(name) || memcmp(nm, name, nlen) != 0)
            continue;
        *ndims = count_field(t, tlen, 1);
        for (size_t d = 0; d < *ndims; d++) {
            uint64_t v;
            cr_assert_eq(find_field(t, tlen, 1, (int)d, &v, NULL, NULL), 0);
            dims[d] = (int64_t)v;
        }
        cr_assert_eq(find_field(t, tlen, 2, 0, type, NULL, NULL), 0);
        cr_assert_eq(find_field(t, tlen, 9, 0, NULL, raw, rlen), 0);
        return;
    }
    cr_assert_fail("no initializer %s", name);
}

Test(export, onnx_tensors_hold_theta_where_the_graph_says)
{
    bp_spec spec = small_spec(BP_OUT_SOFTMAX);
    double theta[8 + 6];
    cr_assert_eq(bp_param_count(&spec), 14);
    small_theta(theta, 14);
    api_export_model m = {.job_id = "job_x", .spec = &spec, .theta = theta};
    for (int f32 = 0; f32 < 2; f32++) {
        size_t len = 0;
        unsigned char *bytes = api_export_onnx(&m, f32 ? API_EXPORT_FLOAT32 : API_EXPORT_FLOAT64,
                                               &len);
        cr_assert(bytes && len > 0);
        uint64_t v;
        cr_assert_eq(find_field(bytes, len, 1, 0, &v, NULL, NULL), 0);
        cr_assert_eq(v, 7); /* ir_version */
        const unsigned char *graph;
        size_t glen;
        cr_assert_eq(find_field(bytes, len, 7, 0, NULL, &graph, &glen), 0);
        cr_assert_eq(count_field(graph, glen, 1), 4); /* Gemm, Tanh, Gemm, Softmax */
        size_t width = f32 ? 4 : 8;
        for (int l = 1; l <= 2; l++) {
            int64_t in = spec.sizes[l - 1], out = spec.sizes[l], dims[2];
            const double *T = theta + bp_layer_offset(&spec, l - 1);
            char name[8];
            size_t nd, rlen;
            const unsigned char *raw;
            uint64_t type;
            snprintf(name, sizeof name, "W%d", l);
            initializer(graph, glen, name, dims, &nd, &raw, &rlen, &type);
            cr_assert_eq(type, f32 ? 1u : 11u);
            cr_assert(nd == 2 && dims[0] == out && dims[1] == in);
            cr_assert_eq(rlen, (size_t)(out * in) * width);
            for (int64_t i = 0; i < out; i++)
                for (int64_t j = 0; j < in; j++) {
                    const unsigned char *p = raw + (size_t)(i * in + j) * width;
                    double want = T[i * (in + 1) + 1 + j];
                    if (f32)
                        cr_assert_eq(le_float(p), (float)want);
                    else
                        cr_assert_eq(le_double(p), want);
                }
            snprintf(name, sizeof name, "b%d", l);
            initializer(graph, glen, name, dims, &nd, &raw, &rlen, &type);
            cr_assert(nd == 1 && dims[0] == out);
            for (int64_t i = 0; i < out; i++) {
                double want = T[i * (in + 1)];
                if (f32)
                    cr_assert_eq(le_float(raw + (size_t)i * width), (float)want);
                else
                    cr_assert_eq(le_double(raw + (size_t)i * width), want);
            }
        }
        free(bytes);
    }
}

Test(export, tfjs_weights_are_kernels_transposed_then_biases)
{
    bp_spec spec = small_spec(BP_OUT_LINEAR);
    double theta[14];
    small_theta(theta, 14);
    api_export_model m = {.spec = &spec, .theta = theta};
    size_t len = 0;
    unsigned char *bin = api_export_tfjs_weights(&m, &len);
    cr_assert(bin);
    cr_assert_eq(len, 4 * 14);
    size_t k = 0;
    for (int l = 1; l <= 2; l++) {
        int64_t in = spec.sizes[l - 1], out = spec.sizes[l];
        const double *T = theta + bp_layer_offset(&spec, l - 1);
        for (int64_t i = 0; i < in; i++)
            for (int64_t j = 0; j < out; j++, k++)
                cr_assert_eq(le_float(bin + 4 * k), (float)T[j * (in + 1) + 1 + i]);
        for (int64_t j = 0; j < out; j++, k++)
            cr_assert_eq(le_float(bin + 4 * k), (float)T[j * (in + 1)]);
    }
    free(bin);
    json_t *j = api_export_tfjs_json(&m, "weights.bin");
    cr_assert(j);
    json_t *w = json_object_get(json_array_get(json_object_get(j, "weightsManifest"), 0), "weights");
    cr_assert_eq(json_array_size(w), 4);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(w, 2), "name")),
                     "dense_2/kernel");
    json_t *layers = json_object_get(json_object_get(json_object_get(j, "modelTopology"),
                                                     "config"), "layers");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_array_get(layers, 1), "config"), "activation")),
                     "linear");
    json_decref(j);
}

/* Outputs of spec for m rows of X (m × s_1) with theta. */
static void predict(double *out, const bp_spec *spec, const double *X, const double *theta,
                    int64_t m)
{
    bp_error be = {{0}};
    bp_work *w = bp_work_new(spec, m, &be);
    cr_assert(w, "%s", be.msg);
    bp_predict(out, NULL, w, X, theta, m);
    bp_work_free(w);
}

Test(export, standardization_fold_equals_predicting_standardized_rows)
{
    bp_spec spec = small_spec(BP_OUT_SOFTMAX);
    double theta[14], folded[14], inplace[14];
    small_theta(theta, 14);
    const double mean[3] = {2.5, -1.0, 7.0}, sd[3] = {0.5, 3.0, 0.0}; /* feature 3 constant */
    enum { M = 5 };
    double X[M * 3], Xs[M * 3], a[M * 2], b[M * 2];
    for (int i = 0; i < M * 3; i++) {
        X[i] = mean[i % 3] + 0.37 * (i - 7);
        double sigma = sd[i % 3] > 0 ? sd[i % 3] : 1.0;
        Xs[i] = (X[i] - mean[i % 3]) / sigma;
    }
    bp_fold_standardize(folded, theta, mean, sd, &spec);
    memcpy(inplace, theta, sizeof theta);
    bp_fold_standardize(inplace, inplace, mean, sd, &spec);
    cr_assert(memcmp(folded, inplace, sizeof folded) == 0, "in place differs");
    for (int k = 8; k < 14; k++)
        cr_assert_eq(folded[k], theta[k], "layer 2 changed");
    predict(a, &spec, X, folded, M);
    predict(b, &spec, Xs, theta, M);
    for (int i = 0; i < M * 2; i++)
        cr_assert(fabs(a[i] - b[i]) <= 1e-14, "output %d: %.17g vs %.17g", i, a[i], b[i]);
    /* and the export carries the folded weights and says so */
    api_export_model m = {.spec = &spec, .theta = theta, .mean = mean, .sd = sd};
    size_t len;
    unsigned char *bin = api_export_tfjs_weights(&m, &len);
    cr_assert(bin);
    cr_assert_eq(le_float(bin + 4 * 6), (float)folded[0]); /* dense_1 bias[0] */
    cr_assert_eq(le_float(bin + 4 * 0), (float)folded[1]); /* dense_1 kernel[0][0] */
    free(bin);
    unsigned char *onnx = api_export_onnx(&m, API_EXPORT_FLOAT64, &len);
    cr_assert(onnx);
    cr_assert(memmem(onnx, len, "standardization", 15));
    free(onnx);
    /* none given: a plain copy */
    bp_fold_standardize(folded, theta, NULL, NULL, &spec);
    cr_assert(memcmp(folded, theta, sizeof theta) == 0);
}

Test(export, class_names_and_precision_in_the_metadata)
{
    bp_spec spec = small_spec(BP_OUT_SOFTMAX);
    double theta[14];
    small_theta(theta, 14);
    const char *const classes[] = {"cat", "dog \"big\""};
    api_export_model m = {.job_id = "job_1", .spec = &spec, .theta = theta, .classes = classes,
                          .n_classes = 2};
    json_t *j = api_export_tfjs_json(&m, "weights.bin");
    json_t *c = json_object_get(json_object_get(j, "userDefinedMetadata"), "classes");
    cr_assert_eq(json_array_size(c), 2);
    cr_assert_str_eq(json_string_value(json_array_get(c, 1)), "dog \"big\"");
    json_decref(j);
    size_t len;
    unsigned char *onnx = api_export_onnx(&m, API_EXPORT_FLOAT32, &len);
    cr_assert(onnx);
    int seen = 0;
    const unsigned char *e;
    size_t elen;
    for (int i = 0; find_field(onnx, len, 14, i, NULL, &e, &elen) == 0; i++) {
        const unsigned char *k, *v;
        size_t klen, vlen;
        cr_assert_eq(find_field(e, elen, 1, 0, NULL, &k, &klen), 0);
        cr_assert_eq(find_field(e, elen, 2, 0, NULL, &v, &vlen), 0);
        if (klen == 7 && memcmp(k, "classes", 7) == 0) {
            const char *want = "[\"cat\",\"dog \\\"big\\\"\"]";
            cr_assert(vlen == strlen(want) && memcmp(v, want, vlen) == 0, "%.*s", (int)vlen, v);
            seen++;
        }
        if (klen == 9 && memcmp(k, "precision", 9) == 0) {
            cr_assert(vlen == 7 && memcmp(v, "float32", 7) == 0);
            seen++;
        }
    }
    cr_assert_eq(seen, 2);
    free(onnx);
}

Test(export, dtype_parse)
{
    api_export_dtype d = API_EXPORT_FLOAT32;
    api_error err = {0};
    cr_assert_eq(api_export_dtype_parse(NULL, &d, &err), 0);
    cr_assert_eq(d, API_EXPORT_FLOAT64);
    cr_assert_eq(api_export_dtype_parse("float32", &d, &err), 0);
    cr_assert_eq(d, API_EXPORT_FLOAT32);
    cr_assert_eq(api_export_dtype_parse("double", &d, &err), 0);
    cr_assert_eq(d, API_EXPORT_FLOAT64);
    cr_assert_eq(api_export_dtype_parse("float16", &d, &err), -1);
    cr_assert_eq(err.status, 400);
    cr_assert(strncmp(err.detail, "dtype: ", 7) == 0, "%s", err.detail);
}
