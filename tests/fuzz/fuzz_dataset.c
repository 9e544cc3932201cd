/* fuzz_dataset.c — the dataset parsers checked against each other: whatever one of the three
 * accepts (CSV, the fast JSON text parser, the jansson tree reader), the same data written in
 * the other format is accepted by the others with the same rows, widths, labels and equal
 * numbers (the same bits but for the sign of a zero, see ds_equal); and the two JSON readers agree on every input, both accepting with
 * equal data or both refusing (a disagreement traps).
 *
 * Built with clang -fsanitize=fuzzer by `make fuzz` (tests/fuzz/run), and included by
 * tests/api_fuzz_dataset.c, whose Criterion driver replays corpus_dataset/ and a fixed set of
 * mutations under ASan+UBSan in every `make test`.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ds_check(int ok)
{
    if (!ok)
        __builtin_trap();
}

/* Same shape, labels and numbers: equal doubles, so the same bits but for the sign of a zero
 * (jansson reads JSON's integer "-0" as +0 and "-0.0" as -0.0, and reads every integer as a
 * real once one is past 64 bits; the math cannot tell ±0 apart). NaN cannot occur: the
 * parsers refuse non-finite numbers. */
static int ds_same_numbers(const double *a, const double *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static int ds_equal(const api_dataset *a, const api_dataset *b)
{
    if (a->rows != b->rows || a->features != b->features || a->outputs != b->outputs ||
        !a->labels != !b->labels || !a->Y != !b->Y)
        return 0;
    if (!ds_same_numbers(a->X, b->X, (size_t)(a->rows * a->features)))
        return 0;
    if (a->labels && memcmp(a->labels, b->labels, (size_t)a->rows * sizeof *a->labels) != 0)
        return 0;
    if (a->Y && !ds_same_numbers(a->Y, b->Y, (size_t)(a->rows * a->outputs)))
        return 0;
    return 1;
}

/* Appends with growth; returns 0, or -1 out of memory. */
typedef struct {
    char *p;
    size_t n, cap;
} ds_text;

static int ds_put(ds_text *t, const char *s)
{
    size_t k = strlen(s);
    if (t->n + k + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap < t->n + k + 1)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p)
            return -1;
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->n, s, k + 1);
    t->n += k;
    return 0;
}

/* d (labels) as CSV (label first) or as {"X": …, "y": …}; numbers with 17 digits, which read
 * back to the same double. new, or NULL. */
static char *ds_write(const api_dataset *d, int csv)
{
    ds_text t = {0};
    char num[40];
    int bad = csv ? 0 : ds_put(&t, "{\"X\": [");
    for (int64_t i = 0; i < d->rows && !bad; i++) {
        if (csv) {
            snprintf(num, sizeof num, "%d", (int)d->labels[i]);
            bad |= ds_put(&t, num);
        } else {
            bad |= ds_put(&t, i ? ", [" : "[");
        }
        for (int64_t k = 0; k < d->features && !bad; k++) {
            double v = d->X[i * d->features + k];
            /* JSON's "-0" is the integer zero (+0 for jansson): negative zero is "-0.0" */
            snprintf(num, sizeof num, v == 0 && signbit(v) ? "%s-0.0" : "%s%.17g",
                     csv || k ? "," : "", v);
            bad |= ds_put(&t, num);
        }
        bad |= ds_put(&t, csv ? "\n" : "]");
    }
    if (!csv) {
        bad |= ds_put(&t, "], \"y\": [");
        for (int64_t i = 0; i < d->rows && !bad; i++) {
            snprintf(num, sizeof num, "%s%d", i ? "," : "", (int)d->labels[i]);
            bad |= ds_put(&t, num);
        }
        bad |= ds_put(&t, "]}");
    }
    if (bad) {
        free(t.p);
        return NULL;
    }
    return t.p;
}

/* Both JSON readers on text: they agree (both refuse, or equal data); 1 when they accepted
 * (the data in *out). */
static int ds_json_both(const char *text, size_t len, api_dataset *out)
{
    api_error err;
    api_dataset fast = {0}, tree = {0};
    static const char *const keys[] = {"X", "y", "Y", NULL}; /* an upload's, as the fast one */
    int ok_fast = api_dataset_parse_json_text(&fast, text, len, &err) == 0;
    json_t *j = api_parse(text, len, &err);
    int ok_tree = j && api_check_keys(j, keys, "body", &err) == 0 &&
                  api_dataset_from_json(&tree, j, &err) == 0;
    json_decref(j);
    ds_check(ok_fast == ok_tree);
    if (ok_fast)
        ds_check(ds_equal(&fast, &tree));
    api_dataset_clear(&tree);
    *out = fast;
    return ok_fast;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    api_error err;
    api_dataset d = {0}, back = {0};
    /* JSON in: the two readers agree; accepted labelled data reads the same as CSV */
    if (ds_json_both(text, size, &d) && d.labels && d.features > 0) {
        char *csv = ds_write(&d, 1);
        if (csv) {
            ds_check(api_dataset_parse_csv_header(&back, csv, strlen(csv),
                                                  API_CSV_HEADER_FALSE, &err) == 0);
            ds_check(ds_equal(&d, &back));
            api_dataset_clear(&back);
            free(csv);
        }
    }
    api_dataset_clear(&d);
    /* CSV in: accepted data reads the same as JSON, by both JSON readers */
    if (api_dataset_parse_csv_header(&d, text, size, API_CSV_HEADER_FALSE, &err) == 0) {
        char *json = ds_write(&d, 0);
        if (json) {
            ds_check(ds_json_both(json, strlen(json), &back) == 1);
            ds_check(ds_equal(&d, &back));
            api_dataset_clear(&back);
            free(json);
        }
        api_dataset_clear(&d);
    }
    return 0;
}
