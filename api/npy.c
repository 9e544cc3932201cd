/* npy.c — NumPy .npy datasets (npy.h): the header (magic, version, length, the dict literal
 * with 'descr', 'fortran_order' and 'shape'), the values checked and split into X and labels
 * or Y without any text parse, and the writer for downloads. Every offset and size is checked
 * against the buffer in 64 bits before use.
 */
#include "api/npy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "\x93NUMPY"
#define MAGIC_LEN 6

typedef struct {
    const char *p, *end;
    api_error *err;
} dict_lexer;

static void ws(dict_lexer *lx)
{
    while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t'))
        lx->p++;
}

static int eat(dict_lexer *lx, char c)
{
    ws(lx);
    if (lx->p < lx->end && *lx->p == c) {
        lx->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string ('…' or "…", no escapes) into out[cap]. 0 or -1. */
static int quoted(dict_lexer *lx, char *out, size_t cap)
{
    ws(lx);
    if (lx->p >= lx->end || (*lx->p != '\'' && *lx->p != '"'))
        return -1;
    char q = *lx->p++;
    size_t n = 0;
    while (lx->p < lx->end && *lx->p != q) {
        if (*lx->p == '\\' || n + 1 >= cap)
            return -1;
        out[n++] = *lx->p++;
    }
    if (lx->p >= lx->end)
        return -1;
    lx->p++;
    out[n] = '\0';
    return 0;
}

/* A non-negative decimal integer below 2^62. 0 or -1. */
static int integer(dict_lexer *lx, int64_t *v)
{
    ws(lx);
    const char *s = lx->p;
    int64_t x = 0;
    while (lx->p < lx->end && *lx->p >= '0' && *lx->p <= '9') {
        if (x > (INT64_C(1) << 62) / 10)
            return -1;
        x = x * 10 + (*lx->p++ - '0');
    }
    if (lx->p == s)
        return -1;
    *v = x;
    return 0;
}

/* 'shape': (a, b) — any number of dimensions is read, so the message can say how many. */
static int shape(dict_lexer *lx, api_npy_header *h)
{
    int64_t dims[8];
    int nd = 0;
    if (!eat(lx, '(')) {
        api_fail(lx->err, 400, "npy header: 'shape' must be a tuple (rows, columns)");
        return -1;
    }
    while (!eat(lx, ')')) {
        if (nd == 8 || integer(lx, &dims[nd]) < 0) {
            api_fail(lx->err, 400, "npy header: 'shape' must be a tuple of 2 non-negative "
                                   "integers (rows, columns)");
            return -1;
        }
        nd++;
        if (!eat(lx, ',') && !(ws(lx), lx->p < lx->end && *lx->p == ')')) {
            api_fail(lx->err, 400, "npy header: 'shape': expected ',' or ')'");
            return -1;
        }
    }
    if (nd != 2) {
        api_fail(lx->err, 400, "npy header: 'shape' must be 2-D (rows, columns), found %d "
                               "dimension%s", nd, nd == 1 ? "" : "s");
        return -1;
    }
    h->rows = dims[0];
    h->cols = dims[1];
    return 0;
}

/* One "'key': value" of the dict; seen: bit per key. */
static int entry(dict_lexer *lx, api_npy_header *h, unsigned *seen)
{
    char key[32], descr[16];
    if (quoted(lx, key, sizeof key) < 0 || !eat(lx, ':')) {
        api_fail(lx->err, 400, "npy header: expected a 'key': value entry of the dict");
        return -1;
    }
    unsigned bit = !strcmp(key, "descr") ? 1u : !strcmp(key, "fortran_order") ? 2u
                 : !strcmp(key, "shape") ? 4u : 0u;
    if (!bit || (*seen & bit)) {
        api_fail(lx->err, 400, "npy header: %s key '%s' (expected descr, fortran_order, shape)",
                 bit ? "repeated" : "unexpected", key);
        return -1;
    }
    *seen |= bit;
    if (bit == 1) {
        if (quoted(lx, descr, sizeof descr) < 0) {
            api_fail(lx->err, 400, "npy header: 'descr' must be a dtype string such as '<f8'");
            return -1;
        }
        if (strcmp(descr, "<f8") && strcmp(descr, "<f4")) {
            api_fail(lx->err, 400, "npy header: 'descr' is '%s': must be '<f8' (little-endian "
                                   "float64) or '<f4' (float32)", descr);
            return -1;
        }
        h->item = descr[2] == '8' ? 8 : 4;
        return 0;
    }
    if (bit == 2) {
        ws(lx);
        if (lx->end - lx->p >= 5 && !memcmp(lx->p, "False", 5)) {
            lx->p += 5;
            return 0;
        }
        api_fail(lx->err, 400, "npy header: 'fortran_order' must be False (C order; save "
                               "with np.ascontiguousarray)");
        return -1;
    }
    return shape(lx, h);
}

/* The dict literal in text[0..n): {'descr': '<f8', 'fortran_order': False, 'shape': (r, c), }
 * then spaces and one '\n'. */
static int header_dict(api_npy_header *h, const char *text, size_t n, api_error *err)
{
    dict_lexer lx = {text, text + n, err};
    unsigned seen = 0;
    if (!eat(&lx, '{')) {
        api_fail(err, 400, "npy header: expected a dict literal '{...}'");
        return -1;
    }
    while (!eat(&lx, '}')) {
        if (entry(&lx, h, &seen) < 0)
            return -1;
        if (!eat(&lx, ',') && !(ws(&lx), lx.p < lx.end && *lx.p == '}')) {
            api_fail(err, 400, "npy header: expected ',' or '}' in the dict");
            return -1;
        }
    }
    if (seen != 7) {
        api_fail(err, 400, "npy header: missing '%s'", !(seen & 1) ? "descr"
                 : !(seen & 2) ? "fortran_order" : "shape");
        return -1;
    }
    ws(&lx);
    while (lx.p < lx.end && (*lx.p == ' ' || *lx.p == '\n'))
        lx.p++;
    if (lx.p != lx.end || n == 0 || text[n - 1] != '\n') {
        api_fail(err, 400, "npy header: only spaces and a final newline may follow the dict");
        return -1;
    }
    return 0;
}

int api_npy_header_parse(api_npy_header *h, const void *buf, size_t len, api_error *err)
{
    const unsigned char *b = buf;
    memset(h, 0, sizeof *h);
    if (len < MAGIC_LEN + 2 || memcmp(b, MAGIC, MAGIC_LEN) != 0) {
        api_fail(err, 400, "body: not a .npy file (it must start with \\x93NUMPY)");
        return -1;
    }
    int major = b[6], minor = b[7];
    if (major < 1 || major > 3 || minor != 0) {
        api_fail(err, 400, "npy header: format version %d.%d: must be 1.0, 2.0 or 3.0", major,
                 minor);
        return -1;
    }
    size_t lenbytes = major == 1 ? 2 : 4;
    if (len < MAGIC_LEN + 2 + lenbytes) {
        api_fail(err, 400, "npy header: truncated before its length");
        return -1;
    }
    uint64_t hlen = b[8] | (uint64_t)b[9] << 8;
    if (lenbytes == 4)
        hlen |= (uint64_t)b[10] << 16 | (uint64_t)b[11] << 24;
    uint64_t start = MAGIC_LEN + 2 + lenbytes;
    if (hlen > len - start) {
        api_fail(err, 400, "npy header: its length (%llu bytes) runs past the body (%zu bytes)",
                 (unsigned long long)hlen, len);
        return -1;
    }
    if (header_dict(h, (const char *)b + start, (size_t)hlen, err) < 0)
        return -1;
    h->offset = (size_t)(start + hlen);
    if (h->rows < 1 || h->cols < 2) {
        api_fail(err, 400, "npy header: 'shape' (%lld, %lld): need at least 1 row and 2 "
                 "columns (a label or target and a feature)", (long long)h->rows,
                 (long long)h->cols);
        return -1;
    }
    uint64_t have = len - h->offset;
    if ((uint64_t)h->rows > UINT64_MAX / (uint64_t)h->cols ||
        (uint64_t)(h->rows * h->cols) > UINT64_MAX / (uint64_t)h->item ||
        (uint64_t)(h->rows * h->cols) * (uint64_t)h->item != have) {
        api_fail(err, 400, "body: %llu bytes of values after the header, but 'shape' (%lld, "
                 "%lld) of %d-byte values needs %lld × %lld × %d", (unsigned long long)have,
                 (long long)h->rows, (long long)h->cols, h->item, (long long)h->rows,
                 (long long)h->cols, h->item);
        return -1;
    }
    return 0;
}

/* Value (row, col) of the array, as a double. */
static double value(const api_npy_header *h, const unsigned char *base, int64_t row, int64_t col)
{
    int64_t i = row * h->cols + col;
    if (h->item == 8) {
        double v;
        memcpy(&v, base + i * 8, 8);
        return v;
    }
    float f;
    memcpy(&f, base + i * 4, 4);
    return (double)f;
}

/* Index of the first non-finite of v[0..n), or -1: an exponent test per value, branch-free
 * over blocks of 8 so it vectorizes. */
static int64_t first_nonfinite(const double *v, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t any = 0;
        for (int k = 0; k < 8; k++) {
            uint64_t b;
            memcpy(&b, v + i + k, 8);
            any |= (uint64_t)((b & 0x7ff0000000000000ULL) == 0x7ff0000000000000ULL);
        }
        if (any)
            break;
    }
    for (; i < n; i++)
        if (!isfinite(v[i]))
            return i;
    return -1;
}

/* Long: one loop over the rows fills X and labels or Y, checking each value once. */
int api_dataset_parse_npy(api_dataset *out, const void *buf, size_t len, api_npy_layout layout,
                          int64_t targets, api_error *err)
{
    api_npy_header h;
    api_dataset d;
    memset(&d, 0, sizeof d);
    memset(out, 0, sizeof *out);
    if (api_npy_header_parse(&h, buf, len, err) < 0)
        return -1;
    int64_t ny = layout == API_NPY_TARGETS ? targets : 1;
    if (ny < 1 || ny >= h.cols) {
        api_fail(err, 400, "targets: must be an integer in 1..%lld (the array has %lld columns "
                 "and needs a feature)", (long long)(h.cols - 1), (long long)h.cols);
        return -1;
    }
    const unsigned char *base = (const unsigned char *)buf + h.offset;
    d.rows = h.rows;
    d.features = h.cols - ny;
    int64_t fcol = layout == API_NPY_LABEL_FIRST ? 1 : 0; /* first feature's column */
    int64_t ycol = layout == API_NPY_LABEL_FIRST ? 0 : d.features;
    d.X = malloc((size_t)(d.rows * d.features) * sizeof(double));
    if (layout == API_NPY_TARGETS)
        d.Y = malloc((size_t)(d.rows * ny) * sizeof(double));
    else
        d.labels = malloc((size_t)d.rows * sizeof(int32_t));
    if (!d.X || (!d.Y && !d.labels)) {
        api_fail(err, 413, "body: %lld × %lld values are too many to hold in memory",
                 (long long)h.rows, (long long)h.cols);
        goto fail;
    }
    int64_t max_label = -1;
    for (int64_t r = 0; r < d.rows; r++) {
        double *x = d.X + r * d.features;
        if (h.item == 8) /* float64: the row's features are already doubles */
            memcpy(x, base + (r * h.cols + fcol) * 8, (size_t)d.features * sizeof(double));
        else
            for (int64_t j = 0; j < d.features; j++)
                x[j] = value(&h, base, r, fcol + j);
        int64_t bad = first_nonfinite(x, d.features);
        if (bad >= 0) {
            api_fail(err, 400, "row %lld, column %lld: must be a finite number", (long long)r,
                     (long long)(fcol + bad));
            goto fail;
        }
        for (int64_t k = 0; k < ny; k++) {
            double v = value(&h, base, r, ycol + k);
            int64_t lab;
            if (d.Y && isfinite(v)) {
                d.Y[r * ny + k] = v;
            } else if (d.labels && api_int_of_double(v, 0, 65535, &lab) == 0) {
                d.labels[r] = (int32_t)lab;
                max_label = lab > max_label ? lab : max_label;
            } else {
                api_fail(err, 400, d.Y ? "row %lld, column %lld: must be a finite number"
                                       : "row %lld, column %lld: label must be an integer in "
                                         "0..65535", (long long)r, (long long)(ycol + k));
                goto fail;
            }
        }
    }
    d.outputs = d.Y ? ny : max_label + 1;
    *out = d;
    return 0;
fail:
    api_dataset_clear(&d);
    return -1;
}

void *api_npy_from_dataset(const api_dataset *d, size_t *len)
{
    int64_t ny = d->labels ? 1 : d->outputs, cols = d->features + ny;
    char dict[128];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f8', 'fortran_order': False, 'shape': "
                     "(%lld, %lld), }", (long long)d->rows, (long long)cols);
    /* magic + version + u16 length + dict + spaces + '\n', padded to 64 bytes */
    size_t head = ((size_t)MAGIC_LEN + 4 + (size_t)n + 1 + 63) / 64 * 64;
    if (d->rows < 0 || cols < 1 || (uint64_t)d->rows > (SIZE_MAX - head) / 8 / (uint64_t)cols)
        return NULL;
    size_t total = head + (size_t)(d->rows * cols) * 8;
    unsigned char *b = malloc(total);
    if (!b)
        return NULL;
    memcpy(b, MAGIC, MAGIC_LEN);
    b[6] = 1;
    b[7] = 0;
    size_t hlen = head - MAGIC_LEN - 4;
    b[8] = (unsigned char)(hlen & 0xff);
    b[9] = (unsigned char)(hlen >> 8);
    memset(b + 10, ' ', hlen);
    memcpy(b + 10, dict, (size_t)n);
    b[head - 1] = '\n';
    double *v = (double *)(void *)(b + head);
    for (int64_t r = 0; r < d->rows; r++, v += cols) {
        const double *x = d->X + r * d->features;
        if (d->labels) {
            v[0] = (double)d->labels[r];
            memcpy(v + 1, x, (size_t)d->features * sizeof(double));
        } else {
            memcpy(v, x, (size_t)d->features * sizeof(double));
            memcpy(v + d->features, d->Y + r * ny, (size_t)ny * sizeof(double));
        }
    }
    *len = total;
    return b;
}
