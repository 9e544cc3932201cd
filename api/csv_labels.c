/* csv_labels.c — CSV uploads whose labels are not the fast path's (api.h): a label column
 * other than the first (?label=first|last|N), labels 1..K (?label_base=1), and class names
 * (a label column of text: "cat", "dog"). Slower than csv.c's one-pass reader (each line is
 * split into fields first), which stays the path for plain numeric label-first files.
 *
 * Class names: the distinct label texts sorted byte-wise (memcmp order), class k the k-th, so
 * the mapping depends on the set of names alone, not on row order. A label column is names
 * only when none of its fields is a number: a column mixing numbers and text is refused at
 * its first text field, so a typo in a numeric column never becomes a class.
 */
#include "api/api.h"
#include "api/scan_number.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_BYTES 200

typedef struct {
    const char *p;
    size_t n;
    int64_t line; /* where it was read: for messages */
} span;

static const char *trim_left(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static span trim(const char *p, const char *e)
{
    p = trim_left(p, e);
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    return (span){p, (size_t)(e - p), 0};
}

/* 1 when the field is one finite number (into *v). */
static int field_number(span f, double *v)
{
    const char *e = f.p + f.n;
    const char *q = f.n ? scan_number(f.p, e, v) : NULL;
    return q == e && is_finite(*v);
}

/* Splits [p, le) at commas into f (cap fields); returns the count (cap + 1 when more). */
static int64_t split(const char *p, const char *le, span *f, int64_t cap)
{
    int64_t n = 0;
    for (;;) {
        const char *c = memchr(p, ',', (size_t)(le - p));
        const char *fe = c ? c : le;
        if (n < cap)
            f[n] = trim(p, fe);
        n++;
        if (!c || n > cap)
            return n;
        p = c + 1;
    }
}

static int by_bytes(const void *a, const void *b)
{
    const span *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* Index of name in the sorted distinct names (present). */
static int64_t name_index(const span *names, int64_t k, span name)
{
    int64_t lo = 0, hi = k - 1;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (by_bytes(&names[mid], &name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* new: the JSON array text of k names. NULL out of memory. */
static char *names_json(const span *names, int64_t k)
{
    json_t *a = json_array();
    for (int64_t i = 0; a && i < k; i++)
        if (json_array_append_new(a, json_stringn(names[i].p, names[i].n)) < 0) {
            json_decref(a);
            a = NULL;
        }
    char *s = a ? api_dump(a, NULL) : NULL;
    json_decref(a);
    return s;
}

/* 1 when a class name is 1..NAME_MAX_BYTES bytes of UTF-8 without control characters. */
static int name_ok(const unsigned char *s, size_t n)
{
    if (n == 0 || n > NAME_MAX_BYTES)
        return 0;
    for (size_t at = 0; at < n;) {
        if (s[at] >= 0x20 && s[at] < 0x7f) {
            at++;
            continue;
        }
        size_t u = api_utf8_len(s + at, n - at);
        if (!u)
            return 0;
        at += u;
    }
    return 1;
}

/* Labels as class names: sorted distinct names, labels = their indexes. 0 ok, -1 with err. */
static int text_labels(api_dataset *d, span *lab, int64_t label_col, api_error *err)
{
    int64_t m = d->rows, k = 0;
    for (int64_t i = 0; i < m; i++) {
        if (!name_ok((const unsigned char *)lab[i].p, lab[i].n)) {
            api_fail(err, 400, "line %lld, column %lld: a class name must be 1..%d bytes of "
                     "UTF-8 text without control characters", (long long)lab[i].line,
                     (long long)label_col + 1, NAME_MAX_BYTES);
            return -1;
        }
    }
    span *names = malloc((size_t)m * sizeof *names);
    if (!names) {
        api_fail(err, 413, "body: the class names do not fit in memory");
        return -1;
    }
    memcpy(names, lab, (size_t)m * sizeof *names);
    qsort(names, (size_t)m, sizeof *names, by_bytes);
    for (int64_t i = 0; i < m; i++)
        if (k == 0 || by_bytes(&names[k - 1], &names[i]) != 0)
            names[k++] = names[i];
    int rc = -1;
    if (k > 65536) {
        api_fail(err, 400, "column %lld: %lld class names; at most 65536", (long long)label_col + 1,
                 (long long)k);
        goto cleanup;
    }
    for (int64_t i = 0; i < m; i++)
        d->labels[i] = (int32_t)name_index(names, k, lab[i]);
    d->outputs = k;
    if (!(d->classes_json = names_json(names, k))) {
        api_fail(err, 503, "out of memory");
        goto cleanup;
    }
    rc = 0;
cleanup:
    free(names);
    return rc;
}

/* Numeric labels base..base+65535 → 0..65535; base 1 also names them "1".."K". */
static int number_labels(api_dataset *d, const span *lab, int64_t label_col, int base,
                         api_error *err)
{
    int64_t max_label = -1;
    for (int64_t i = 0; i < d->rows; i++) {
        double v = 0;
        int64_t x;
        field_number(lab[i], &v);
        if (api_int_of_double(v, base, 65535 + base, &x) < 0) {
            api_fail(err, 400, "line %lld, column %lld: label must be an integer in %d..%d%s",
                     (long long)lab[i].line, (long long)label_col + 1, base, 65535 + base,
                     base ? " (?label_base=1)" : "");
            return -1;
        }
        d->labels[i] = (int32_t)(x - base);
        max_label = x - base > max_label ? x - base : max_label;
    }
    d->outputs = max_label + 1;
    if (base == 0)
        return 0;
    json_t *a = json_array();
    for (int64_t k = 0; a && k <= max_label; k++) {
        char num[24];
        snprintf(num, sizeof num, "%lld", (long long)(k + base));
        if (json_array_append_new(a, json_string(num)) < 0) {
            json_decref(a);
            a = NULL;
        }
    }
    d->classes_json = a ? api_dump(a, NULL) : NULL;
    json_decref(a);
    if (!d->classes_json)
        api_fail(err, 503, "out of memory");
    return d->classes_json ? 0 : -1;
}

/* The header rule of csv.c, over the feature fields only (the label column may be text in
 * data rows too): all text = a header, all numbers = data, a mix refused at its first text. */
static int header_row(const span *f, int64_t nf, int64_t label_col, int64_t line,
                      api_csv_header mode, int *header, api_error *err)
{
    *header = mode == API_CSV_HEADER_TRUE;
    if (mode != API_CSV_HEADER_AUTO)
        return 0;
    int64_t numeric = 0, text_col = -1;
    for (int64_t c = 0; c < nf; c++) {
        double v;
        if (c == label_col)
            continue;
        if (field_number(f[c], &v))
            numeric++;
        else if (text_col < 0)
            text_col = c;
    }
    if (numeric == 0 || text_col < 0) {
        *header = numeric == 0;
        return 0;
    }
    char ex[API_QUOTE_MAX];
    api_escape(ex, sizeof ex, f[text_col].p, f[text_col].n);
    api_fail(err, 400, "line %lld, column %lld: \"%s\" is not a number (a header row must have "
             "no numeric field; use ?header=true to force one)", (long long)line,
             (long long)text_col + 1, ex);
    return -1;
}

/* Long: one loop over the lines keeps the header decision, the width check and the row
 * storage together; the label pass after it is split out (text_labels, number_labels). */
int api_dataset_parse_csv_labels(api_dataset *out, const char *text, size_t len,
                                 api_csv_header header, int64_t label_col, int label_base,
                                 api_error *err)
{
    api_dataset d;
    memset(&d, 0, sizeof d);
    span *f = NULL, *lab = NULL;
    int64_t nf = 0, cap_rows = 2, col = -1, first_text = -1;
    const char *p = text ? text : "", *end = p + (text ? len : 0);
    if (end - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    for (const char *s = p; s < end && (s = memchr(s, '\n', (size_t)(end - s))); s++)
        cap_rows++;
    f = malloc((BP_MAX_UNITS + 2) * sizeof *f);
    lab = malloc((size_t)cap_rows * sizeof *lab);
    if (!f || !lab)
        goto oom;
    int first = 1;
    for (int64_t line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *next = nl ? nl + 1 : end;
        if (le > p && le[-1] == '\r')
            le--;
        if (trim_left(p, le) == le) {
            p = next;
            continue;
        }
        int64_t n = split(p, le, f, BP_MAX_UNITS + 2);
        p = next;
        if (!nf) {
            if (n < 2 || n > BP_MAX_UNITS + 1) {
                api_fail(err, 400, "line %lld: expected a label and 1..%d features",
                         (long long)line, BP_MAX_UNITS);
                goto fail;
            }
            col = label_col < 0 ? n - 1 : label_col;
            if (col >= n) {
                api_fail(err, 400, "label: column %lld is beyond the %lld fields of line %lld",
                         (long long)col + 1, (long long)n, (long long)line);
                goto fail;
            }
        }
        if (first) {
            first = 0;
            int is_header;
            if (header_row(f, n, col, line, header, &is_header, err) < 0)
                goto fail;
            if (is_header)
                continue;
        }
        if (!nf) {
            nf = n;
            if (!(d.X = malloc((size_t)(cap_rows * (nf - 1)) * sizeof *d.X)) ||
                !(d.labels = malloc((size_t)cap_rows * sizeof *d.labels)))
                goto oom;
        }
        if (n != nf) {
            api_fail(err, 400, "line %lld: expected %lld fields, found %lld", (long long)line,
                     (long long)nf, (long long)n);
            goto fail;
        }
        double *row = d.X + d.rows * (nf - 1);
        for (int64_t c = 0, k = 0; c < nf; c++) {
            if (c == col)
                continue;
            if (!field_number(f[c], &row[k++])) {
                char ex[API_QUOTE_MAX];
                api_escape(ex, sizeof ex, f[c].p, f[c].n);
                api_fail(err, 400, "line %lld, column %lld: expected a number, found \"%s\"",
                         (long long)line, (long long)c + 1, ex);
                goto fail;
            }
        }
        double v;
        lab[d.rows] = f[col];
        lab[d.rows].line = line;
        if (!field_number(f[col], &v) && first_text < 0)
            first_text = d.rows;
        d.rows++;
    }
    if (d.rows == 0) {
        api_fail(err, 400, "body: no data rows (CSV: one row a sample, with a label column)");
        goto fail;
    }
    d.features = nf - 1;
    int64_t numbers = 0;
    for (int64_t i = 0; i < d.rows; i++) {
        double v;
        numbers += field_number(lab[i], &v);
    }
    if (first_text >= 0 && numbers > 0) { /* a mix: the first text is refused */
        char ex[API_QUOTE_MAX];
        api_escape(ex, sizeof ex, lab[first_text].p, lab[first_text].n);
        api_fail(err, 400, "line %lld, column %lld: expected a number, found \"%s\"",
                 (long long)lab[first_text].line, (long long)col + 1, ex);
        goto fail;
    }
    if (first_text >= 0 && label_base) {
        api_fail(err, 400, "label_base: only for numeric labels (these are class names)");
        goto fail;
    }
    if ((first_text >= 0 ? text_labels(&d, lab, col, err)
                         : number_labels(&d, lab, col, label_base, err)) < 0)
        goto fail;
    free(f);
    free(lab);
    *out = d;
    return 0;
oom:
    api_fail(err, 413, "body: the rows do not fit in memory");
fail:
    free(f);
    free(lab);
    api_dataset_clear(&d);
    return -1;
}

int api_dataset_parse_json_names(api_dataset *out, const char *text, size_t len, api_error *err)
{
    memset(out, 0, sizeof *out);
    span *lab = NULL;
    api_error perr = {0}; /* not this kind of upload: the caller's message stands */
    json_t *copy = NULL, *body = api_parse(text, len, &perr);
    int rc = -1;
    const json_t *y = json_object_get(body, "y");
    size_t m = json_array_size(y);
    if (!json_is_array(y) || m == 0 || !json_is_string(json_array_get(y, 0)))
        goto cleanup;
    if (!(copy = json_copy(body)) || !(lab = calloc(m, sizeof *lab)))
        goto oom;
    json_t *zeros = json_array();
    for (size_t i = 0; zeros && i < m; i++) {
        const json_t *v = json_array_get(y, i);
        if (!json_is_string(v)) {
            api_fail(err, 400, "y[%zu]: expected a class name like y[0] (a string)", i);
            json_decref(zeros);
            goto cleanup;
        }
        lab[i] = (span){json_string_value(v), json_string_length(v), (int64_t)i};
        if (json_array_append_new(zeros, json_integer(0)) < 0) {
            json_decref(zeros);
            zeros = NULL;
        }
    }
    if (!zeros || json_object_set_new(copy, "y", zeros) < 0)
        goto oom;
    if (api_dataset_from_json(out, copy, err) < 0)
        goto cleanup;
    for (size_t i = 0; i < m; i++)
        if (!name_ok((const unsigned char *)lab[i].p, lab[i].n)) {
            api_fail(err, 400, "y[%zu]: a class name must be 1..%d bytes of UTF-8 text without "
                     "control characters", i, NAME_MAX_BYTES);
            goto cleanup;
        }
    rc = text_labels(out, lab, 0, err);
    goto cleanup;
oom:
    api_fail(err, 503, "out of memory");
cleanup:
    if (rc < 0)
        api_dataset_clear(out);
    free(lab);
    json_decref(copy);
    json_decref(body);
    return rc;
}
