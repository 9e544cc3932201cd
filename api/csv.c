/* csv.c — CSV dataset uploads parsed straight from the request text (api.h): one row a
 * sample, the label first, '\n' or "\r\n", blank lines skipped, and a first row that is a
 * header only by a rule that cannot eat data (?header=auto|true|false). Numbers are read by
 * the exact scanner of scan_number.h; every error names its line and column (1-based).
 */
#include "api/api.h"
#include "api/scan_number.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The CSV field starting at f (the line ends at le) escaped and cut for a message. */
static void field_excerpt(char out[API_QUOTE_MAX], const char *f, const char *le)
{
    const char *comma = memchr(f, ',', (size_t)(le - f));
    api_escape(out, API_QUOTE_MAX, f, (size_t)((comma ? comma : le) - f));
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

/* Long: over 100 lines on purpose: one pass over tens of MB whose row loop keeps its whole state
 * (line, width, the arrays sized at the first data row, the label range) in locals, so that
 * the per-field path stays a few compares; split up, it would pass all of them by pointer. */
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
            /* and by the bytes: a further row of `fields` numbers takes at least 2·fields
             * bytes with its commas and newline, so a wide first row over many short lines
             * never asks for more than ~4 bytes per body byte (not terabytes) */
            int64_t by_bytes = 1 + ((int64_t)(end - next) + 1) / (2 * fields);
            cap_rows = lines < by_bytes ? lines : by_bytes;
            if (cap_rows > INT64_MAX / (fields - 1) ||
                !(d.X = api_alloc_array(cap_rows * (fields - 1), sizeof *d.X, 0)) ||
                !(d.labels = api_alloc_array(cap_rows, sizeof *d.labels, 0))) {
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
        if (!row) { /* cannot happen: cap_rows bounds the complete rows (a guard) */
            api_fail(err, 413, "body: more than %lld rows", (long long)cap_rows);
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
