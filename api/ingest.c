/* ingest.c — dataset uploads parsed straight from the request text, without a jansson tree:
 * the JSON upload object {"X": [[…]], "y": […]} (or "Y") and CSV (label first, optional
 * header). These are the fast paths for large uploads (tens of MB); they follow exactly the
 * same rules and produce the same messages as api_dataset_from_json (codec.c).
 *
 * Numbers follow JSON's grammar exactly (no "01", "1.", ".5", "+1", NaN or Infinity) and are
 * converted with Clinger's exact fast path — a mantissa of at most 2^53 and a decimal exponent
 * within ±22 is one correctly rounded multiply or divide by an exactly representable power of
 * ten — and strtod (correctly rounded) for everything else. Overflow to ±Inf is refused.
 * Short numbers (the bulk of real data: "0", "0.372549", "17") read their digit runs 8 bytes
 * at a time (SWAR), which keeps the scanner nearly free of data-dependent branches.
 */
#include "api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ numbers */

static const double exact_pow10[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static inline int is_digit(char c)
{
    return (unsigned)(c - '0') < 10u;
}

/* strtod on a copy of [s, e) (the text need not be NUL-terminated). */
static double slow_strtod(const char *s, const char *e)
{
    char small[128];
    size_t n = (size_t)(e - s);
    char *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf)
        return NAN; /* reported as out of range by the caller */
    memcpy(buf, s, n);
    buf[n] = '\0';
    double v = strtod(buf, NULL); /* the grammar was checked: strtod reads all of it */
    if (buf != small)
        free(buf);
    return v;
}

/* ---- SWAR digit runs (8 bytes at a time, little-endian, first character lowest) ---- */

/* How many of the 8 bytes at p are ASCII digits before the first non-digit (0..8). */
static inline int digit_run(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    uint64_t x = v ^ 0x3030303030303030ull;                          /* digits -> 0..9 */
    uint64_t y = (x & 0x7F7F7F7F7F7F7F7Full) + 0x7676767676767676ull; /* >= 10 sets bit 7 */
    uint64_t bad = (x | y) & 0x8080808080808080ull;
    return bad ? __builtin_ctzll(bad) >> 3 : 8;
}

/* The value of the k (1..8) digits at p. */
static inline uint64_t digits_value(const char *p, int k)
{
    uint64_t v;
    memcpy(&v, p, 8);
    if (k < 8) /* keep the k digits, pad with leading '0's */
        v = (v << (8 * (8 - k))) | (0x3030303030303030ull >> (8 * k));
    v -= 0x3030303030303030ull;
    v = v * 10 + (v >> 8);
    v = (((v & 0x000000FF000000FFull) * 0x000F424000000064ull) +
         (((v >> 16) & 0x000000FF000000FFull) * 0x0000271000000001ull)) >> 32;
    return v;
}

static const uint64_t pow10_u64[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                      100000000};

/* Scans one JSON number starting at p (before end). Returns the first byte after it, or NULL
 * when the text there is not a JSON number. *out is correctly rounded (may be ±Inf). */
static inline __attribute__((always_inline)) const char *scan_number(const char *p,
                                                                     const char *end,
                                                                     double *out)
{
    const char *start = p;
    int neg = 0, ndig = 0, inexact = 0;
    uint64_t mant = 0;
    int64_t exp10 = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    /* Common case, branch-light: at most 8 integer digits, at most 7 fraction digits, no
     * exponent, with room to read 8 bytes past each run. Exact: mant < 10^15 < 2^53. */
    if (end - p >= 24) {
        const char *s = p;
        uint64_t ival = 0;
        int k = 0;
        if (*s == '0') {
            s++;
        } else {
            k = digit_run(s);
            if (k == 0 || k == 8)
                goto general;
            ival = digits_value(s, k);
            s += k;
        }
        int nf = 0;
        uint64_t fval = 0;
        if (*s == '.') {
            nf = digit_run(s + 1);
            if (nf == 0)
                return NULL; /* "1." */
            if (nf == 8)
                goto general;
            fval = digits_value(s + 1, nf);
            s += 1 + nf;
        }
        if (*s == 'e' || *s == 'E')
            goto general;
        double v = (double)(ival * pow10_u64[nf] + fval);
        if (nf)
            v /= exact_pow10[nf];
        *out = neg ? -v : v;
        return s;
    }
general:
    if (p >= end)
        return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        for (; p < end && is_digit(*p); p++) {
            if (ndig < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                ndig++;
            } else {
                inexact = 1;
                exp10++;
            }
        }
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return NULL;
        for (; p < end && is_digit(*p); p++) {
            if (mant == 0 && *p == '0') {
                exp10--; /* leading zeros of 0.000123 */
            } else if (ndig < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                ndig++;
                exp10--;
            } else {
                inexact = 1;
            }
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= end || !is_digit(*p))
            return NULL;
        int64_t e = 0;
        for (; p < end && is_digit(*p); p++)
            if (e < 1000000000)
                e = e * 10 + (*p - '0');
        exp10 += eneg ? -e : e;
    }
    double v;
    if (mant == 0 && !inexact)
        v = 0.0;
    else if (!inexact && mant <= (1ull << 53) && exp10 >= -22 && exp10 <= 22)
        v = exp10 < 0 ? (double)mant / exact_pow10[-exp10] : (double)mant * exact_pow10[exp10];
    else
        v = slow_strtod(neg ? start + 1 : start, p);
    *out = neg ? -v : v;
    return p;
}

static inline int is_finite(double v)
{
    return v - v == 0.0; /* false for ±Inf and NaN */
}

/* The CSV field starting at f (the line ends at le) escaped and cut for a message. */
static void field_excerpt(char out[API_QUOTE_MAX], const char *f, const char *le)
{
    const char *comma = memchr(f, ',', (size_t)(le - f));
    api_escape(out, API_QUOTE_MAX, f, (size_t)((comma ? comma : le) - f));
}

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

/* ------------------------------------------------------------------ CSV */

static inline const char *skip_blank(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* Is the first line [p, le) (line number `line`) a header? auto: only when none of its fields
 * is a number, so that no data row can be taken for one; all numbers: data; a mix is refused
 * naming its first non-number. 0 with *header set, -1 with err. */
static int csv_header_line(const char *p, const char *le, int64_t line, api_csv_header mode,
                           int *header, api_error *err)
{
    *header = mode == API_CSV_HEADER_TRUE;
    if (mode != API_CSV_HEADER_AUTO)
        return 0;
    int64_t col = 0, numeric = 0, text_col = 0;
    const char *text_field = NULL, *f = p;
    for (;; col++) {
        const char *comma = memchr(f, ',', (size_t)(le - f));
        const char *fe = comma ? comma : le, *q = skip_blank(f, fe);
        double v;
        q = q < fe ? scan_number(q, fe, &v) : NULL;
        if (q && skip_blank(q, fe) == fe) {
            numeric++;
        } else if (!text_field) {
            text_field = skip_blank(f, fe);
            text_col = col;
        }
        if (!comma)
            break;
        f = comma + 1;
    }
    if (numeric == 0 || !text_field) {
        *header = numeric == 0;
        return 0;
    }
    char ex[API_QUOTE_MAX];
    field_excerpt(ex, text_field, le);
    api_fail(err, 400, "line %lld, column %lld: \"%s\" is not a number (a header row must have "
             "no numeric field; use ?header=true to force one)", (long long)line,
             (long long)text_col + 1, ex);
    return -1;
}

int api_dataset_parse_csv(api_dataset *out, const char *text, size_t len, api_error *err)
{
    return api_dataset_parse_csv_header(out, text, len, API_CSV_HEADER_AUTO, err);
}

int api_dataset_parse_csv_header(api_dataset *out, const char *text, size_t len,
                                 api_csv_header header, api_error *err)
{
    api_dataset d;
    memset(&d, 0, sizeof d);
    if (!text) /* an empty body may come as NULL */
        text = "", len = 0;
    const char *p = text, *end = text + len;
    int64_t line = 0, fields = 0, cap_rows = 0, max_label = -1;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) /* UTF-8 byte order mark */
        p += 3;
    int first = 1;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *next = nl ? nl + 1 : end;
        line++;
        if (le > p && le[-1] == '\r')
            le--;
        if (skip_blank(p, le) == le) { /* blank line */
            p = next;
            continue;
        }
        if (first) {
            first = 0;
            int is_header;
            if (csv_header_line(p, le, line, header, &is_header, err) < 0)
                goto fail;
            if (is_header) {
                p = next;
                continue;
            }
        }
        int64_t col = 0;
        double *row = d.rows < cap_rows ? d.X + d.rows * (fields - 1) : NULL;
        const char *q = p;
        for (;;) {
            double v;
            q = skip_blank(q, le);
            const char *f = q;
            /* bounded by the buffer's end, not the line's: no number runs over '\r' or
             * '\n', and the scanner's 8-byte fast path then works up to the last field */
            q = q < le ? scan_number(q, end, &v) : NULL;
            if (q)
                q = skip_blank(q, le);
            if (!q || (q < le && *q != ',')) {
                char ex[API_QUOTE_MAX];
                field_excerpt(ex, f, le);
                api_fail(err, 400, "line %lld, column %lld: expected a number, found \"%s\"",
                         (long long)line, (long long)col + 1, ex);
                goto fail;
            }
            if (!is_finite(v)) {
                api_fail(err, 400,
                         "line %lld, column %lld: number out of range (overflows a double)",
                         (long long)line, (long long)col + 1);
                goto fail;
            }
            if (col == 0) {
                int64_t lab;
                if (api_int_of_double(v, 0, 65535, &lab) < 0) {
                    api_fail(err, 400, "line %lld, column 1: label must be an integer in "
                                       "0..65535", (long long)line);
                    goto fail;
                }
                if (row)
                    d.labels[d.rows] = (int32_t)lab;
                if (lab > max_label)
                    max_label = lab;
            } else if (row && col < fields) {
                row[col - 1] = v;
            } else if (!fields && col > BP_MAX_UNITS) {
                api_fail(err, 400, "line %lld: at most %d features per row", (long long)line,
                         BP_MAX_UNITS);
                goto fail;
            }
            col++;
            if (q == le)
                break;
            q++; /* ',' */
        }
        if (!fields) {
            /* First data row: now the width is known; size everything by the line count. */
            if (col < 2) {
                api_fail(err, 400, "line %lld: expected a label and at least one feature",
                         (long long)line);
                goto fail;
            }
            fields = col;
            int64_t lines = 2; /* this one, and a last one without '\n' */
            for (const char *s = next; s < end && (s = memchr(s, '\n', (size_t)(end - s)));
                 s++)
                lines++;
            cap_rows = lines;
            if (cap_rows > INT64_MAX / 8 / (fields - 1) ||
                !(d.X = malloc((size_t)(cap_rows * (fields - 1)) * sizeof *d.X)) ||
                !(d.labels = malloc((size_t)cap_rows * sizeof *d.labels))) {
                api_fail(err, 413, "body: %lld rows of %lld features do not fit in memory",
                         (long long)cap_rows, (long long)fields - 1);
                goto fail;
            }
            line--;
            continue; /* parse this line again, now storing it */
        }
        if (col != fields) {
            api_fail(err, 400, "line %lld: expected %lld fields, found %lld", (long long)line,
                     (long long)fields, (long long)col);
            goto fail;
        }
        d.rows++;
        p = next;
    }
    if (d.rows == 0) {
        api_fail(err, 400, "body: no data rows (CSV: one row a sample, the label first)");
        goto fail;
    }
    d.features = fields - 1;
    d.outputs = max_label + 1;
    if (d.rows < cap_rows) {
        double *nx = realloc(d.X, (size_t)(d.rows * d.features) * sizeof *d.X);
        int32_t *nl = realloc(d.labels, (size_t)d.rows * sizeof *d.labels);
        d.X = nx ? nx : d.X;
        d.labels = nl ? nl : d.labels;
    }
    *out = d;
    return 0;
fail:
    api_dataset_clear(&d);
    return -1;
}
