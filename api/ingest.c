/* ingest.c — the JSON dataset upload {"X": [[…]], "y": […]} (or "Y") parsed straight from the
 * request text, without a jansson tree (CSV uploads: csv.c). This is the fast path for large
 * uploads (tens of MB); it follows exactly the same rules and produces the same messages as
 * api_dataset_from_json (codec.c). Numbers are read by the exact scanner of scan_number.h;
 * one that overflows to ±Inf is refused.
 */
#include "api/api.h"
#include "api/scan_number.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ growable arrays */

typedef struct {
    void *v;
    int64_t n, cap, max; /* elements; max bounds cap (the text cannot hold more) */
    size_t elem;
} vec;

static int vec_reserve(vec *a, int64_t want)
{
    if (want <= a->cap)
        return 0;
    int64_t cap = a->cap ? a->cap : 4096;
    while (cap < want)
        cap = cap > INT64_MAX / 2 ? want : cap * 2;
    if (cap > a->max)
        cap = a->max > want ? a->max : want;
    if ((uint64_t)cap > SIZE_MAX / a->elem)
        return -1;
    void *nv = realloc(a->v, (size_t)cap * a->elem);
    if (!nv)
        return -1;
    a->v = nv;
    a->cap = cap;
    return 0;
}

/* Gives back the unused tail; returns the array (new), the vec forgets it. */
static void *vec_take(vec *a)
{
    void *v = a->v;
    if (a->n > 0 && a->n < a->cap) {
        void *nv = realloc(v, (size_t)a->n * a->elem);
        if (nv) /* else keep the larger block */
            v = nv;
    }
    a->v = NULL;
    a->n = a->cap = 0;
    return v;
}

/* ------------------------------------------------------------------ JSON upload */

typedef struct {
    const char *p, *end, *base;
    api_error *err;
} lexer;

static inline void ws(lexer *lx)
{
    while (lx->p < lx->end &&
           (*lx->p == ' ' || *lx->p == '\n' || *lx->p == '\r' || *lx->p == '\t'))
        lx->p++;
}

static inline int eat(lexer *lx, char c)
{
    if (lx->p < lx->end && *lx->p == c) {
        lx->p++;
        return 1;
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A JSON string (lx->p after the opening quote) decoded into key (truncated to cap-1 bytes). */
static int scan_key(lexer *lx, char *key, size_t cap)
{
    size_t o = 0;
    while (lx->p < lx->end && *lx->p != '"') {
        unsigned char c = (unsigned char)*lx->p++;
        int ch = c;
        if (c < 0x20) {
            api_fail(lx->err, 400, "body: control character in a string at offset %lld",
                     (long long)(lx->p - 1 - lx->base));
            return -1;
        }
        if (c == '\\') {
            if (lx->p >= lx->end)
                break;
            char e = *lx->p++;
            switch (e) {
            case '"': case '\\': case '/': ch = e; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            case 'u': {
                int u = 0;
                for (int i = 0; i < 4; i++) {
                    int h = lx->p < lx->end ? hexval(*lx->p++) : -1;
                    if (h < 0) {
                        api_fail(lx->err, 400, "body: bad \\u escape in a key");
                        return -1;
                    }
                    u = u * 16 + h;
                }
                ch = u;
                break;
            }
            default:
                api_fail(lx->err, 400, "body: bad escape \\%c in a key", e >= 0x20 ? e : '?');
                return -1;
            }
        }
        if (o + 1 < cap) /* raw bytes as they are (quoted by api_escape); \u escapes past
                            ASCII and NUL as '?': only "X", "y" and "Y" are keys anyway */
            key[o++] = ch == 0 || (c == '\\' && ch >= 0x80) ? '?' : (char)ch;
    }
    key[o] = '\0';
    if (!eat(lx, '"')) {
        api_fail(lx->err, 400, "body: unterminated string");
        return -1;
    }
    return 0;
}

/* A matrix: [[n, n, …], …]. *cols is fixed by the first row. */
static int scan_matrix(lexer *lx, const char *field, vec *out, int64_t *rows, int64_t *cols)
{
    int64_t r = 0, width = 0;
    ws(lx);
    if (!eat(lx, '[')) {
        api_fail(lx->err, 400, "%s: expected a non-empty array of rows", field);
        return -1;
    }
    ws(lx);
    if (lx->p < lx->end && *lx->p == ']') {
        api_fail(lx->err, 400, "%s: expected a non-empty array of rows", field);
        return -1;
    }
    for (;;) {
        if (!eat(lx, '[')) {
            if (r == 0)
                api_fail(lx->err, 400, "%s[0]: expected an array of 1..%d numbers", field,
                         BP_MAX_UNITS);
            else
                api_fail(lx->err, 400, "%s[%lld]: expected an array of %lld numbers", field,
                         (long long)r, (long long)width);
            return -1;
        }
        int64_t c = 0;
        ws(lx);
        if (!(lx->p < lx->end && *lx->p == ']')) {
            for (;;) {
                if (r == 0 && c == BP_MAX_UNITS) {
                    api_fail(lx->err, 400, "%s[0]: expected an array of 1..%d numbers", field,
                             BP_MAX_UNITS);
                    return -1;
                }
                if (out->n == out->cap && vec_reserve(out, out->n + 1) < 0) {
                    api_fail(lx->err, 413, "%s: too large to hold in memory", field);
                    return -1;
                }
                double v;
                const char *q = scan_number(lx->p, lx->end, &v);
                if (!q) {
                    api_fail(lx->err, 400, "%s[%lld][%lld]: expected a number", field,
                             (long long)r, (long long)c);
                    return -1;
                }
                if (!is_finite(v)) {
                    api_fail(lx->err, 400,
                             "%s[%lld][%lld]: number out of range (overflows a double)", field,
                             (long long)r, (long long)c);
                    return -1;
                }
                lx->p = q;
                ((double *)out->v)[out->n++] = v;
                c++;
                ws(lx);
                if (eat(lx, ',')) {
                    ws(lx);
                    continue;
                }
                if (lx->p < lx->end && *lx->p == ']')
                    break;
                api_fail(lx->err, 400, "%s[%lld][%lld]: expected a number", field,
                         (long long)r, (long long)c - 1);
                return -1;
            }
        }
        lx->p++; /* ']' */
        if (r == 0) {
            if (c == 0) {
                api_fail(lx->err, 400, "%s[0]: expected an array of 1..%d numbers", field,
                         BP_MAX_UNITS);
                return -1;
            }
            width = c;
        } else if (c != width) {
            api_fail(lx->err, 400, "%s[%lld]: expected an array of %lld numbers, found %lld",
                     field, (long long)r, (long long)width, (long long)c);
            return -1;
        }
        r++;
        ws(lx);
        if (eat(lx, ',')) {
            ws(lx);
            continue;
        }
        if (eat(lx, ']'))
            break;
        api_fail(lx->err, 400, "%s: invalid JSON: expected ',' or ']' after row %lld", field,
                 (long long)r - 1);
        return -1;
    }
    *rows = r;
    *cols = width;
    return 0;
}

/* Labels: [0, 3, 9, …], integers in 0..65535. */
static int scan_labels(lexer *lx, vec *out, int64_t *max_label)
{
    ws(lx);
    if (!eat(lx, '[')) {
        api_fail(lx->err, 400, "y: expected an array of labels (one per row of X)");
        return -1;
    }
    ws(lx);
    if (eat(lx, ']'))
        return 0;
    for (;;) {
        if (out->n == out->cap && vec_reserve(out, out->n + 1) < 0) {
            api_fail(lx->err, 413, "y: too large to hold in memory");
            return -1;
        }
        double v;
        int64_t lab;
        const char *q = scan_number(lx->p, lx->end, &v);
        if (!q || api_int_of_double(v, 0, 65535, &lab) < 0) {
            api_fail(lx->err, 400, "y[%lld]: must be an integer in 0..65535",
                     (long long)out->n);
            return -1;
        }
        lx->p = q;
        ((int32_t *)out->v)[out->n++] = (int32_t)lab;
        if (lab > *max_label)
            *max_label = lab;
        ws(lx);
        if (eat(lx, ',')) {
            ws(lx);
            continue;
        }
        if (eat(lx, ']'))
            return 0;
        api_fail(lx->err, 400, "y[%lld]: invalid JSON: expected ',' or ']'", (long long)out->n - 1);
        return -1;
    }
}

/* Long: about 100 lines: the object's keys, its three possible arrays and the checks between them
 * read as one grammar, top to bottom. */
int api_dataset_parse_json_text(api_dataset *out, const char *text, size_t len, api_error *err)
{
    api_dataset d;
    memset(&d, 0, sizeof d);
    if (!text) /* an empty body may come as NULL */
        text = "", len = 0;
    /* Every number takes at least one byte plus a separator: bounds every array. */
    int64_t max_values = (int64_t)(len / 2 + 1);
    vec X = {.elem = sizeof(double), .max = max_values};
    vec Y = {.elem = sizeof(double), .max = max_values};
    vec y = {.elem = sizeof(int32_t), .max = max_values};
    int seen_X = 0, seen_y = 0, seen_Y = 0;
    int64_t y_rows = 0, max_label = -1;
    lexer lx = {text, text + len, text, err};

    ws(&lx);
    if (!eat(&lx, '{')) {
        api_fail(err, 400, lx.p == lx.end ? "body: empty, expected a JSON object"
                                          : "body: expected a JSON object");
        goto fail;
    }
    ws(&lx);
    if (!eat(&lx, '}')) {
        for (;;) {
            char key[48];
            if (!eat(&lx, '"')) {
                api_fail(err, 400, "body: expected a key in double quotes at offset %lld",
                         (long long)(lx.p - text));
                goto fail;
            }
            if (scan_key(&lx, key, sizeof key) < 0)
                goto fail;
            ws(&lx);
            if (!eat(&lx, ':')) {
                api_fail(err, 400, "%s: invalid JSON: expected ':' after the key", key);
                goto fail;
            }
            int *seen = strcmp(key, "X") == 0   ? &seen_X
                        : strcmp(key, "y") == 0 ? &seen_y
                        : strcmp(key, "Y") == 0 ? &seen_Y
                                                : NULL;
            if (!seen) {
                api_fail_unknown_key(err, "body", key, strlen(key));
                goto fail;
            }
            if (*seen) {
                api_fail(err, 400, "%s: invalid JSON: duplicate key", key);
                goto fail;
            }
            *seen = 1;
            int rc = seen == &seen_X   ? scan_matrix(&lx, "X", &X, &d.rows, &d.features)
                     : seen == &seen_Y ? scan_matrix(&lx, "Y", &Y, &y_rows, &d.outputs)
                                       : scan_labels(&lx, &y, &max_label);
            if (rc < 0)
                goto fail;
            ws(&lx);
            if (eat(&lx, ',')) {
                ws(&lx);
                continue;
            }
            if (eat(&lx, '}'))
                break;
            api_fail(err, 400, "%s: invalid JSON: expected ',' or '}' after the value", key);
            goto fail;
        }
    }
    ws(&lx);
    if (lx.p != lx.end) {
        api_fail(err, 400, "body: invalid JSON: unexpected text after the object at offset %lld",
                 (long long)(lx.p - text));
        goto fail;
    }
    if (!seen_X) {
        api_fail(err, 400, "X: missing (an array of rows, one per sample)");
        goto fail;
    }
    if (seen_y == seen_Y) {
        api_fail(err, 400, seen_y ? "y, Y: give exactly one of them"
                                  : "y: missing (class labels, or \"Y\" for a target matrix)");
        goto fail;
    }
    if (seen_Y && y_rows != d.rows) {
        api_fail(err, 400, "Y: expected %lld rows (one per row of X), found %lld",
                 (long long)d.rows, (long long)y_rows);
        goto fail;
    }
    if (seen_y && y.n != d.rows) {
        api_fail(err, 400, "y: expected %lld labels (one per row of X), found %lld",
                 (long long)d.rows, (long long)y.n);
        goto fail;
    }
    if (seen_y)
        d.outputs = max_label + 1;
    d.X = vec_take(&X);
    d.Y = seen_Y ? vec_take(&Y) : NULL;
    d.labels = seen_y ? vec_take(&y) : NULL;
    *out = d;
    return 0;
fail:
    free(X.v);
    free(Y.v);
    free(y.v);
    return -1;
}
