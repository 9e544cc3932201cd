/* core_dataset.h — what the core test suites share: a dataset held in memory, its bp_data
 * view, a spec from a size list, and the digits set (tests/data/digits.csv) loaded with one-hot
 * targets. Included by tests/core_train.c and tests/core_f32.c only. */
#ifndef TESTS_CORE_DATASET_H
#define TESTS_CORE_DATASET_H

#include "core/bp.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double *X, *Y;
    int32_t *labels;
    int64_t m, n_in, n_out;
} dataset;

static void dataset_free(dataset *d)
{
    free(d->X);
    free(d->Y);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

static bp_data view(const dataset *d)
{
    bp_data v = {d->X, d->Y, d->labels, d->m, d->n_in, d->n_out};
    return v;
}

static bp_spec make_spec(int n, const int *sizes, bp_act hidden, bp_out out)
{
    bp_spec s;
    memset(&s, 0, sizeof s);
    s.n_layers = n;
    for (int i = 0; i < n; i++)
        s.sizes[i] = sizes[i];
    s.hidden = hidden;
    s.output = out;
    return s;
}

/* Loads digits.csv (label, then 64 features) with one-hot Y over 10 classes. */
static dataset load_digits(void)
{
    dataset d = {0};
    const char *paths[] = {"tests/data/digits.csv", "../tests/data/digits.csv"};
    FILE *f = NULL;
    for (int i = 0; i < 2 && !f; i++)
        f = fopen(paths[i], "r");
    cr_assert_not_null(f, "cannot open tests/data/digits.csv");
    int64_t cap = 2048;
    d.n_in = 64;
    d.n_out = 10;
    d.X = malloc((size_t)(cap * d.n_in) * sizeof(double));
    d.Y = calloc((size_t)(cap * d.n_out), sizeof(double));
    d.labels = malloc((size_t)cap * sizeof(int32_t));
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *p = line, *end;
        double lab = strtod(p, &end);
        if (end == p)
            continue;
        cr_assert_lt(d.m, cap);
        d.labels[d.m] = (int32_t)lab;
        d.Y[d.m * 10 + (int64_t)lab] = 1.0;
        p = end;
        for (int j = 0; j < 64; j++) {
            cr_assert_eq(*p, ',');
            d.X[d.m * 64 + j] = strtod(p + 1, &end);
            cr_assert_neq(end, p + 1);
            p = end;
        }
        d.m++;
    }
    fclose(f);
    cr_assert_eq(d.m, 1797);
    return d;

#endif
