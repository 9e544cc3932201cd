/* codec.c — the JSON side of backpropd's contract (api.h): the strict body parser
 * (duplicates, depth, NaN/Inf/overflow and trailing garbage refused, every error naming the
 * JSON path where it happened), and the codecs for network specs,
 * theta/gradients and datasets given as jansson trees (inline "X"/"y"/"Y" in math requests),
 * plus the dataset-vs-network checks. Uploads are parsed from raw text in ingest.c.
 */
#include "api/api.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_MAX_DEPTH 64

/* ------------------------------------------------------------------ parsing */

/* Where is byte `pos` of a JSON text? Rebuilds the path ("theta[1][4][2]", "network.layers")
 * by scanning the text up to pos with a stack of open containers. Best effort: it only has to
 * be right for texts that are valid up to pos, which is what jansson reports errors in. */
typedef struct {
    int is_obj;
    int want_key; /* object: the next string is a key */
    long long index;
    char key[48];
} path_frame;

static void path_at(char *out, size_t cap, const char *text, size_t pos)
{
    path_frame st[API_MAX_DEPTH + 1];
    int depth = 0;
    for (size_t i = 0; i < pos; i++) {
        char c = text[i];
        if (c == '"') {
            size_t start = ++i;
            while (i < pos && text[i] != '"')
                i += text[i] == '\\' ? 2 : 1;
            if (depth > 0 && depth <= API_MAX_DEPTH && st[depth - 1].is_obj &&
                st[depth - 1].want_key) {
                size_t n = (i < pos ? i : pos) - start;
                api_escape(st[depth - 1].key, sizeof st[depth - 1].key, text + start, n);
            }
        } else if (c == '{' || c == '[') {
            if (depth < API_MAX_DEPTH)
                st[depth] = (path_frame){.is_obj = c == '{', .want_key = 1};
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth > 0)
                depth--;
        } else if (c == ',' && depth > 0 && depth <= API_MAX_DEPTH) {
            st[depth - 1].index++;
            st[depth - 1].want_key = 1;
            st[depth - 1].key[0] = '\0';
        } else if (c == ':' && depth > 0 && depth <= API_MAX_DEPTH) {
            st[depth - 1].want_key = 0;
        }
    }
    size_t o = 0;
    out[0] = '\0';
    for (int d = 0; d < depth && d < API_MAX_DEPTH; d++) {
        char part[sizeof st[0].key + 2];
        if (!st[d].is_obj)
            snprintf(part, sizeof part, "[%lld]", st[d].index);
        else if (st[d].key[0])
            snprintf(part, sizeof part, "%s%s", o ? "." : "", st[d].key);
        else
            break;
        size_t n = strlen(part);
        if (n >= cap - o) /* whole parts only: the path stops where the buffer does */
            break;
        memcpy(out + o, part, n + 1);
        o += n;
    }
    if (!out[0])
        snprintf(out, cap, "body");
}

/* Nesting depth check that respects strings; 0 ok, else the offending offset + 1. */
static size_t too_deep(const char *text, size_t len)
{
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '"') {
            for (i++; i < len && text[i] != '"'; i++)
                if (text[i] == '\\')
                    i++;
        } else if (c == '[' || c == '{') {
            if (++depth > API_MAX_DEPTH)
                return i + 1;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 0;
}

json_t *api_parse(const char *text, size_t len, api_error *err)
{
    char path[160];
    if (!text || len == 0) {
        api_fail(err, 400, "body: empty, expected a JSON object");
        return NULL;
    }
    size_t deep = too_deep(text, len);
    if (deep) {
        path_at(path, sizeof path, text, deep - 1);
        api_fail(err, 400, "%s: nested deeper than %d levels", path, API_MAX_DEPTH);
        return NULL;
    }
    /* A raw NUL byte is never JSON (inside a string it must be written \u0000); jansson's
     * number reader stops at one and takes what came before, so "1\0" would read as 1 here
     * while the fast dataset reader and the CSV reader refuse it: refused here too. */
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        path_at(path, sizeof path, text, (size_t)(nul - text));
        api_fail(err, 400, "%s: invalid JSON: a NUL byte at offset %zu", path,
                 (size_t)(nul - text));
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j && json_error_code(&jerr) == json_error_numeric_overflow &&
        strstr(jerr.text, "integer")) {
        /* An integer literal beyond 64 bits: JSON has one number type, so read it as the
         * double it denotes (integer fields accept integral doubles). */
        j = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
    }
    if (j)
        return j;
    size_t pos = jerr.position > 0 && (size_t)jerr.position <= len ? (size_t)jerr.position : 0;
    path_at(path, sizeof path, text, pos);
    char what_buf[JSON_ERROR_TEXT_LENGTH];
    api_escape(what_buf, sizeof what_buf, jerr.text, strlen(jerr.text)); /* may quote raw bytes */
    const char *what = what_buf;
    if (strstr(what, "real number overflow"))
        what = "number out of range (overflows a double)";
    else if (strstr(what, "duplicate object key"))
        what = "duplicate key";
    api_fail(err, 400, "%s: invalid JSON at line %d column %d: %s", path, jerr.line,
             jerr.column, what);
    return NULL;
}

/* ------------------------------------------------------------------ network spec */

/* An enum field by its name, the names being the core's (name_of(0 .. n-1)). */
static int parse_enum(int *out, const json_t *v, const char *(*name_of)(int), int n,
                      const char *field, const char *key, api_error *err)
{
    if (!v)
        return 0; /* keep the default */
    for (int i = 0; json_is_string(v) && i < n; i++) {
        if (strcmp(json_string_value(v), name_of(i)) == 0) {
            *out = i;
            return 0;
        }
    }
    char list[128];
    size_t o = 0;
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s\"%s\"", i ? ", " : "", name_of(i));
    api_fail(err, 400, "%s.%s: must be one of %s", field, key, list);
    return -1;
}

static const char *act_name(int i)
{
    return bp_act_name((bp_act)i);
}

static const char *out_name(int i)
{
    return bp_out_name((bp_out)i);
}

int api_spec_parse(bp_spec *out, const json_t *j, const char *field, api_error *err)
{
    static const char *const keys[] = {"layers", "activation", "output", NULL};
    bp_spec spec;
    memset(&spec, 0, sizeof spec);
    if (!json_is_object(j)) {
        api_fail(err, 400, "%s: expected an object like {\"layers\": [64, 25, 10]}", field);
        return -1;
    }
    if (api_check_keys(j, keys, field, err) < 0)
        return -1;
    const json_t *layers = json_object_get(j, "layers");
    if (!layers) {
        api_fail(err, 400, "%s.layers: missing", field);
        return -1;
    }
    size_t n = json_array_size(layers);
    if (!json_is_array(layers) || n < 2 || n > BP_MAX_LAYERS) {
        api_fail(err, 400, "%s.layers: expected an array of 2..%d layer sizes", field,
                 BP_MAX_LAYERS);
        return -1;
    }
    spec.n_layers = (int)n;
    for (size_t i = 0; i < n; i++) {
        /* a size an int cannot hold is stored as 0: the core names the range */
        int64_t s;
        api_error ignored = {0};
        if (api_int(&s, json_array_get(layers, i), 0, INT_MAX, &ignored, "layers") < 0)
            s = 0;
        spec.sizes[i] = (int)s;
    }
    bp_error be = {{0}};
    if (bp_spec_validate(&spec, &be) < 0) { /* the sizes and the parameter total */
        api_fail(err, 400, "%s.%s", field, be.msg);
        return -1;
    }
    int act = 0, o = 0;
    if (parse_enum(&act, json_object_get(j, "activation"), act_name, BP_ACT_RELU + 1, field,
                   "activation", err) < 0 ||
        parse_enum(&o, json_object_get(j, "output"), out_name, BP_OUT_LINEAR + 1, field,
                   "output", err) < 0)
        return -1;
    spec.hidden = (bp_act)act;
    spec.output = (bp_out)o;
    *out = spec;
    return 0;
}

json_t *api_spec_json(const bp_spec *spec)
{
    json_t *layers = json_array();
    for (int i = 0; layers && i < spec->n_layers; i++)
        json_array_append_new(layers, json_integer(spec->sizes[i]));
    return json_pack("{s:o, s:s, s:s}", "layers", layers, "activation",
                     bp_act_name(spec->hidden), "output", bp_out_name(spec->output));
}

/* ------------------------------------------------------------------ theta */

double *api_theta_parse(const json_t *j, const bp_spec *spec, const char *field, api_error *err)
{
    int n_mat = spec->n_layers - 1;
    double *theta = NULL;
    if (!json_is_array(j) || json_array_size(j) != (size_t)n_mat) {
        api_fail(err, 400, "%s: expected a list of %d matri%s (one per layer transition)",
                 field, n_mat, n_mat == 1 ? "x" : "ces");
        goto fail;
    }
    int64_t total = bp_param_count(spec);
    theta = api_alloc_array(total, sizeof *theta, 0);
    if (!theta) {
        api_fail(err, 413, "%s: %lld parameters do not fit in memory", field, (long long)total);
        goto fail;
    }
    double *t = theta;
    for (int l = 0; l < n_mat; l++) {
        const json_t *mat = json_array_get(j, (size_t)l);
        size_t rows = (size_t)spec->sizes[l + 1], cols = (size_t)spec->sizes[l] + 1;
        if (!json_is_array(mat) || json_array_size(mat) != rows) {
            if (json_is_array(mat))
                api_fail(err, 400, "%s[%d]: expected %zu rows of %zu numbers, found %zu rows",
                         field, l, rows, cols, json_array_size(mat));
            else
                api_fail(err, 400, "%s[%d]: expected %zu rows of %zu numbers, found no array",
                         field, l, rows, cols);
            goto fail;
        }
        for (size_t r = 0; r < rows; r++) {
            const json_t *row = json_array_get(mat, r);
            if (!json_is_array(row)) {
                api_fail(err, 400, "%s[%d][%zu]: expected an array of %zu numbers", field, l,
                         r, cols);
                goto fail;
            }
            if (json_array_size(row) != cols) {
                api_fail(err, 400, "%s[%d]: expected %zu rows of %zu numbers, row %zu has %zu",
                         field, l, rows, cols, r, json_array_size(row));
                goto fail;
            }
            for (size_t c = 0; c < cols; c++)
                if (api_number(t++, json_array_get(row, c), -INFINITY, INFINITY, 0, err,
                               "%s[%d][%zu][%zu]", field, l, r, c) < 0)
                    goto fail;
        }
    }
    return theta;
fail:
    free(theta);
    return NULL;
}

json_t *api_theta_json(const double *theta, const bp_spec *spec)
{
    json_t *out = json_array();
    const double *t = theta;
    for (int l = 0; out && l + 1 < spec->n_layers; l++) {
        int rows = spec->sizes[l + 1], cols = spec->sizes[l] + 1;
        json_t *mat = json_array();
        if (json_array_append_new(out, mat) < 0)
            goto fail;
        for (int r = 0; r < rows; r++) {
            json_t *row = json_array();
            if (json_array_append_new(mat, row) < 0)
                goto fail;
            for (int c = 0; c < cols; c++)
                if (json_array_append_new(row, json_real(*t++)) < 0) /* NaN/Inf: NULL */
                    goto fail;
        }
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* ------------------------------------------------------------------ predict */

double *api_predict_parse(const json_t *body, int64_t width, int64_t max_rows, int64_t *rows,
                          api_error *err)
{
    static const char *const keys[] = {"X", NULL};
    double *X = NULL;
    if (!json_is_object(body)) {
        api_fail(err, 400, "body: expected an object {\"X\": [[…]]}");
        goto fail;
    }
    if (api_check_keys(body, keys, "body", err) < 0)
        goto fail;
    const json_t *jx = json_object_get(body, "X");
    size_t m = json_array_size(jx);
    if (!json_is_array(jx) || m == 0 || (int64_t)m > max_rows) {
        api_fail(err, 400, "X: expected an array of 1..%lld rows of %lld numbers",
                 (long long)max_rows, (long long)width);
        goto fail;
    }
    /* every row's shape before any memory: then the array holds what the body holds */
    for (size_t i = 0; i < m; i++) {
        const json_t *row = json_array_get(jx, i);
        if (!json_is_array(row)) {
            api_fail(err, 400, "X[%zu]: a row must be an array of %lld numbers", i,
                     (long long)width);
            goto fail;
        }
        if (json_array_size(row) != (size_t)width) {
            api_fail(err, 400, "X[%zu]: a row must be an array of %lld numbers, found %zu", i,
                     (long long)width, json_array_size(row));
            goto fail;
        }
    }
    if (width < 1 || (int64_t)m > INT64_MAX / width ||
        !(X = api_alloc_array((int64_t)m * width, sizeof *X, 0))) {
        api_fail(err, 413, "X: %zu rows do not fit in memory", m);
        goto fail;
    }
    for (size_t i = 0; i < m; i++) {
        const json_t *row = json_array_get(jx, i);
        for (int64_t k = 0; k < width; k++)
            if (api_number(&X[i * (size_t)width + (size_t)k], json_array_get(row, (size_t)k),
                           -INFINITY, INFINITY, 0, err, "X[%zu][%lld]", i, (long long)k) < 0)
                goto fail;
    }
    *rows = (int64_t)m;
    return X;
fail:
    free(X);
    return NULL;
}

/* ------------------------------------------------------------------ datasets */

void api_dataset_clear(api_dataset *d)
{
    if (!d)
        return;
    free(d->X);
    free(d->labels);
    free(d->Y);
    free(d->classes_json);
    memset(d, 0, sizeof *d);
}

/* Reads a rows × cols matrix (cols fixed by row 0 when *cols == 0) into a new array. */
static double *matrix_from_json(const json_t *m, const char *field, int64_t rows, int64_t *cols,
                                api_error *err)
{
    double *out = NULL;
    if (!json_is_array(m) || json_array_size(m) == 0) {
        api_fail(err, 400, "%s: expected a non-empty array of rows", field);
        goto fail;
    }
    if ((int64_t)json_array_size(m) != rows) {
        api_fail(err, 400, "%s: expected %lld rows (one per row of X), found %zu", field,
                 (long long)rows, json_array_size(m));
        goto fail;
    }
    const json_t *first = json_array_get(m, 0);
    int64_t n = (int64_t)json_array_size(first);
    if (!json_is_array(first) || n < 1 || n > BP_MAX_UNITS) {
        api_fail(err, 400, "%s[0]: expected an array of 1..%d numbers", field, BP_MAX_UNITS);
        goto fail;
    }
    /* every row's shape before any memory: then the array holds what the body holds */
    for (int64_t i = 0; i < rows; i++) {
        const json_t *row = json_array_get(m, (size_t)i);
        if (!json_is_array(row) || (int64_t)json_array_size(row) != n) {
            if (json_is_array(row))
                api_fail(err, 400, "%s[%lld]: expected an array of %lld numbers, found %zu",
                         field, (long long)i, (long long)n, json_array_size(row));
            else
                api_fail(err, 400, "%s[%lld]: expected an array of %lld numbers", field,
                         (long long)i, (long long)n);
            goto fail;
        }
    }
    if (rows > INT64_MAX / n || !(out = api_alloc_array(rows * n, sizeof *out, 0))) {
        api_fail(err, 413, "%s: %lld x %lld numbers do not fit in memory", field,
                 (long long)rows, (long long)n);
        goto fail;
    }
    double *o = out;
    for (int64_t i = 0; i < rows; i++) {
        const json_t *row = json_array_get(m, (size_t)i);
        for (int64_t c = 0; c < n; c++)
            if (api_number(o++, json_array_get(row, (size_t)c), -INFINITY, INFINITY, 0, err,
                           "%s[%lld][%lld]", field, (long long)i, (long long)c) < 0)
                goto fail;
    }
    *cols = n;
    return out;
fail:
    free(out);
    return NULL;
}

int api_dataset_from_json(api_dataset *out, const json_t *obj, api_error *err)
{
    api_dataset d;
    memset(&d, 0, sizeof d);
    const json_t *X = json_object_get(obj, "X"), *y = json_object_get(obj, "y"),
                 *Y = json_object_get(obj, "Y");
    if (!X) {
        api_fail(err, 400, "X: missing (an array of rows, one per sample)");
        goto fail;
    }
    if (!y == !Y) {
        api_fail(err, 400, y ? "y, Y: give exactly one of them"
                             : "y: missing (class labels, or \"Y\" for a target matrix)");
        goto fail;
    }
    if (!json_is_array(X) || json_array_size(X) == 0) {
        api_fail(err, 400, "X: expected a non-empty array of rows");
        goto fail;
    }
    d.rows = (int64_t)json_array_size(X);
    if (!(d.X = matrix_from_json(X, "X", d.rows, &d.features, err)))
        goto fail;
    if (Y) {
        if (!(d.Y = matrix_from_json(Y, "Y", d.rows, &d.outputs, err)))
            goto fail;
    } else {
        if (!json_is_array(y) || (int64_t)json_array_size(y) != d.rows) {
            api_fail(err, 400, "y: expected %lld labels (one per row of X), found %zu",
                     (long long)d.rows, json_array_size(y));
            goto fail;
        }
        if (!(d.labels = malloc((size_t)d.rows * sizeof *d.labels))) {
            api_fail(err, 413, "y: too many labels");
            goto fail;
        }
        for (int64_t i = 0; i < d.rows; i++) {
            int64_t v;
            if (api_int(&v, json_array_get(y, (size_t)i), 0, 65535, err, "y[%lld]",
                        (long long)i) < 0)
                goto fail;
            d.labels[i] = (int32_t)v;
            if (v + 1 > d.outputs)
                d.outputs = v + 1;
        }
    }
    *out = d;
    return 0;
fail:
    api_dataset_clear(&d);
    return -1;
}

double *api_targets(const api_dataset *d, int64_t K, api_error *err)
{
    double *T = NULL;
    if (K < 1 || d->rows > INT64_MAX / K || !(T = api_alloc_array(d->rows * K, sizeof *T, 1))) {
        api_fail(err, 413, "dataset: %lld x %lld targets do not fit in memory",
                 (long long)d->rows, (long long)K);
        return NULL;
    }
    if (d->Y) {
        if (d->outputs != K) {
            api_fail(err, 409, "Y: has %lld columns but the network has %lld outputs",
                     (long long)d->outputs, (long long)K);
            goto fail;
        }
        memcpy(T, d->Y, (size_t)(d->rows * K) * sizeof *T);
        return T;
    }
    for (int64_t i = 0; i < d->rows; i++) {
        int32_t lab = d->labels[i];
        if (K == 1 && lab <= 1) { /* one sigmoid output: the label is the target (0 or 1) */
            T[i] = lab;
        } else if (K > 1 && lab < K) {
            T[i * K + lab] = 1.0;
        } else {
            api_fail(err, 409, "y[%lld]: label %d does not fit a network with %lld output%s",
                     (long long)i, lab, (long long)K, K == 1 ? " (labels 0 or 1)" : "s");
            goto fail;
        }
    }
    return T;
fail:
    free(T);
    return NULL;
}

int api_dataset_fits(const api_dataset *d, const bp_spec *spec, api_error *err)
{
    int K = spec->sizes[spec->n_layers - 1];
    if (d->features != spec->sizes[0]) {
        api_fail(err, 409, "X: rows have %lld features but network.layers[0] is %d",
                 (long long)d->features, spec->sizes[0]);
        return -1;
    }
    if (d->Y && d->outputs != K) {
        api_fail(err, 409, "Y: has %lld columns but network.layers[%d] is %d",
                 (long long)d->outputs, spec->n_layers - 1, K);
        return -1;
    }
    if (!d->Y && d->outputs > (K == 1 ? 2 : K)) {
        api_fail(err, 409, "y: labels go up to %lld but network.layers[%d] is %d (%s)",
                 (long long)d->outputs - 1, spec->n_layers - 1, K,
                 K == 1 ? "one output takes labels 0 and 1" : "one output per class");
        return -1;
    }
    return 0;
}
