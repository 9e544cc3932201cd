/* api_npy.c — Criterion tests for the .npy reader and writer (api/npy.h) on files written here
 * byte by byte: format versions 1.0, 2.0 and 3.0, float64 and float32, labels first or last
 * or a Y block; hostile headers each refused with a 400 naming what is wrong; every
 * truncation and random corruption of a valid file refused or read without a crash; and the
 * download writer's bytes read back to the same arrays.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/npy.h"

/* Writes a .npy file into buf: magic, version major.0, the header length (2 bytes for 1.0,
 * 4 otherwise), dict, spaces up to a multiple of 64 and '\n', then vbytes of values. */
static size_t make_npy(unsigned char *buf, int major, const char *dict, const void *vals,
                       size_t vbytes)
{
    size_t lb = major == 1 ? 2 : 4, pre = 8 + lb, n = strlen(dict);
    size_t total_head = (pre + n + 1 + 63) / 64 * 64, hlen = total_head - pre;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    for (size_t i = 0; i < lb; i++)
        buf[8 + i] = (unsigned char)(hlen >> (8 * i));
    memset(buf + pre, ' ', hlen);
    memcpy(buf + pre, dict, n);
    buf[total_head - 1] = '\n';
    memcpy(buf + total_head, vals, vbytes);
    return total_head + vbytes;
}

static const double V3x3[9] = {2, 0.5, -1.25, 0, 4, 8.5, 1, -0.75, 3};

#define D8 "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 3), }"

Test(npy, reads_every_version_float64_and_float32)
{
    static unsigned char buf[4096];
    for (int major = 1; major <= 3; major++) {
        size_t len = make_npy(buf, major, D8, V3x3, sizeof V3x3);
        api_dataset d;
        api_error e = {0};
        cr_assert_eq(api_dataset_parse_npy(&d, buf, len, API_NPY_LABEL_FIRST, 0, &e), 0, "%s",
                     e.detail);
        cr_assert_eq(d.rows, 3);
        cr_assert_eq(d.features, 2);
        cr_assert_eq(d.outputs, 3); /* labels 2, 0, 1 */
        cr_assert_eq(d.labels[0], 2);
        cr_assert_eq(d.labels[1], 0);
        cr_assert_eq(d.labels[2], 1);
        cr_assert_eq(d.X[0], 0.5);
        cr_assert_eq(d.X[1], -1.25);
        cr_assert_eq(d.X[5], 3.0);
        cr_assert_null(d.Y);
        api_dataset_clear(&d);
    }
    float f[9];
    for (int i = 0; i < 9; i++)
        f[i] = (float)V3x3[i];
    size_t len = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3)}",
                          f, sizeof f);
    api_dataset d;
    api_error e = {0};
    cr_assert_eq(api_dataset_parse_npy(&d, buf, len, API_NPY_LABEL_FIRST, 0, &e), 0, "%s",
                 e.detail);
    cr_assert_eq(d.X[3], 8.5);
    cr_assert_eq(d.labels[2], 1);
    api_dataset_clear(&d);
}

Test(npy, label_last_and_targets)
{
    static unsigned char buf[4096];
    size_t len = make_npy(buf, 1, D8, V3x3, sizeof V3x3);
    api_dataset d;
    api_error e = {0};
    /* last column: -1.25 is not a label */
    cr_assert_eq(api_dataset_parse_npy(&d, buf, len, API_NPY_LABEL_LAST, 0, &e), -1);
    cr_assert_eq(e.status, 400);
    cr_assert_str_eq(e.detail, "row 0, column 2: label must be an integer in 0..65535");
    cr_assert_eq(api_dataset_parse_npy(&d, buf, len, API_NPY_TARGETS, 2, &e), 0, "%s", e.detail);
    cr_assert_eq(d.features, 1);
    cr_assert_eq(d.outputs, 2);
    cr_assert_null(d.labels);
    cr_assert_eq(d.X[1], 0.0);
    cr_assert_eq(d.Y[2], 4.0);
    cr_assert_eq(d.Y[3], 8.5);
    api_dataset_clear(&d);
    const double lab_last[6] = {0.5, 1, 0.25, 0};
    len = make_npy(buf, 2, "{'shape': (2, 2), 'fortran_order': False, 'descr': '<f8'}",
                   lab_last, 4 * sizeof(double));
    cr_assert_eq(api_dataset_parse_npy(&d, buf, len, API_NPY_LABEL_LAST, 0, &e), 0, "%s",
                 e.detail);
    cr_assert_eq(d.labels[0], 1);
    cr_assert_eq(d.labels[1], 0);
    cr_assert_eq(d.X[1], 0.25);
    api_dataset_clear(&d);
    cr_assert_eq(api_dataset_parse_npy(&d, buf, len, API_NPY_TARGETS, 2, &e), -1);
    cr_assert_str_eq(e.detail, "targets: must be an integer in 1..1 (the array has 2 columns "
                               "and needs a feature)");
}

typedef struct {
    int major;
    const char *dict;
    size_t vbytes;  /* values written (of V3x3, up to 72) */
    const char *want;
} bad_case;

Test(npy, hostile_headers_get_a_400_naming_the_problem)
{
    static const bad_case cases[] = {
        {1, "{'descr': '>f8', 'fortran_order': False, 'shape': (3, 3), }", 72,
         "npy header: 'descr' is '>f8': must be '<f8' (little-endian float64) or '<f4' "
         "(float32)"},
        {1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3, 3), }", 72,
         "npy header: 'descr' is '<i8'"},
        {1, "{'descr': '<f8', 'fortran_order': True, 'shape': (3, 3), }", 72,
         "npy header: 'fortran_order' must be False"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (9,), }", 72,
         "npy header: 'shape' must be 2-D (rows, columns), found 1 dimension"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 3, 3), }", 72,
         "npy header: 'shape' must be 2-D (rows, columns), found 3 dimensions"},
        {1, "{'descr': '<f8', 'fortran_order': False}", 72, "npy header: missing 'shape'"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 3), 'x': 1}", 72,
         "npy header: unexpected key 'x'"},
        {1, "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (3, 3)}", 72,
         "npy header: repeated key 'descr'"},
        {1, D8, 71, "body: 71 bytes of values after the header, but 'shape' (3, 3)"},
        {3, D8, 64, "body: 64 bytes of values"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 3), }", 0,
         "npy header: 'shape' (0, 3): need at least 1 row and 2 columns"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 1), }", 24,
         "npy header: 'shape' (3, 1): need at least 1 row and 2 columns"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, "
            "4611686018427387904), }", 72, "body: 72 bytes of values after the header"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999, 3)}", 72,
         "npy header: 'shape' must be a tuple of 2 non-negative integers"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (-3, 3), }", 72,
         "npy header: 'shape' must be a tuple of 2 non-negative integers"},
        {1, "{'descr: '<f8', 'fortran_order': False, 'shape': (3, 3), }", 72,
         "npy header: expected a 'key': value entry of the dict"},
        {1, "{'descr': '<f8' 'fortran_order': False, 'shape': (3, 3), }", 72,
         "npy header: expected ',' or '}' in the dict"},
        {1, "['descr', '<f8']", 72, "npy header: expected a dict literal '{...}'"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 3)} junk", 72,
         "npy header: only spaces and a final newline may follow the dict"},
    };
    static unsigned char buf[8192];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len = make_npy(buf, cases[i].major, cases[i].dict, V3x3, cases[i].vbytes);
        api_dataset d;
        api_error e = {0};
        cr_assert_eq(api_dataset_parse_npy(&d, buf, len, API_NPY_LABEL_FIRST, 0, &e), -1,
                     "case %zu accepted", i);
        cr_assert_eq(e.status, 400, "case %zu: status %u", i, e.status);
        cr_assert(strncmp(e.detail, cases[i].want, strlen(cases[i].want)) == 0,
                  "case %zu: \"%s\" does not start with \"%s\"", i, e.detail, cases[i].want);
    }
    /* the fixed part: magic, version, length */
    size_t len = make_npy(buf, 1, D8, V3x3, 72);
    api_npy_header h;
    api_error e = {0};
    buf[1] = 'X';
    cr_assert_eq(api_npy_header_parse(&h, buf, len, &e), -1);
    cr_assert_str_eq(e.detail, "body: not a .npy file (it must start with \\x93NUMPY)");
    buf[1] = 'N';
    buf[6] = 4;
    cr_assert_eq(api_npy_header_parse(&h, buf, len, &e), -1);
    cr_assert_str_eq(e.detail, "npy header: format version 4.0: must be 1.0, 2.0 or 3.0");
    buf[6] = 1;
    buf[7] = 1;
    cr_assert_eq(api_npy_header_parse(&h, buf, len, &e), -1);
    cr_assert_str_eq(e.detail, "npy header: format version 1.1: must be 1.0, 2.0 or 3.0");
    buf[7] = 0;
    buf[8] = 0xff;
    buf[9] = 0xff;
    cr_assert_eq(api_npy_header_parse(&h, buf, len, &e), -1);
    cr_assert(strstr(e.detail, "npy header: its length (65535 bytes) runs past the body"), "%s",
              e.detail);
    /* non-finite values and bad labels name their row and column */
    double v[9];
    memcpy(v, V3x3, sizeof v);
    v[4] = NAN;
    len = make_npy(buf, 1, D8, v, sizeof v);
    api_dataset d;
    cr_assert_eq(api_dataset_parse_npy(&d, buf, len, API_NPY_LABEL_FIRST, 0, &e), -1);
    cr_assert_str_eq(e.detail, "row 1, column 1: must be a finite number");
    v[4] = 1.0;
    v[6] = 1.5;
    len = make_npy(buf, 1, D8, v, sizeof v);
    cr_assert_eq(api_dataset_parse_npy(&d, buf, len, API_NPY_LABEL_FIRST, 0, &e), -1);
    cr_assert_str_eq(e.detail, "row 2, column 0: label must be an integer in 0..65535");
}

/* Every prefix of a valid file, and random byte changes in its header, are refused (or, for
 * a change that keeps it valid, read) without reading outside the buffer: run under ASan by
 * `make test`. */
Test(npy, truncations_and_corruptions_never_crash)
{
    static unsigned char buf[4096], copy[4096];
    size_t len = make_npy(buf, 2, D8, V3x3, sizeof V3x3);
    for (size_t n = 0; n < len; n++) {
        unsigned char *p = malloc(n ? n : 1); /* exact size: ASan sees any overread */
        memcpy(p, buf, n);
        api_dataset d;
        api_error e = {0};
        cr_assert_eq(api_dataset_parse_npy(&d, p, n, API_NPY_LABEL_FIRST, 0, &e), -1,
                     "a %zu-byte prefix was accepted", n);
        free(p);
    }
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        memcpy(copy, buf, len);
        for (int k = 0; k < 3; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            copy[x % 128] = (unsigned char)(x >> 32);
        }
        unsigned char *p = malloc(len);
        memcpy(p, copy, len);
        api_dataset d;
        api_error e = {0};
        if (api_dataset_parse_npy(&d, p, len, API_NPY_LABEL_FIRST, 0, &e) == 0)
            api_dataset_clear(&d);
        else
            cr_assert(e.status == 400 || e.status == 413);
        free(p);
    }
}

Test(npy, download_reads_back_to_the_same_arrays)
{
    double X[6] = {0.1, -2, 3e-300, 4, 5.5, 1e300};
    int32_t labels[3] = {7, 0, 65535};
    double Y[6] = {1, 0, 0.5, 0.5, -1, 2};
    api_dataset a = {.rows = 3, .features = 2, .outputs = 65536, .X = X, .labels = labels};
    size_t len = 0;
    unsigned char *b = api_npy_from_dataset(&a, &len);
    cr_assert_not_null(b);
    api_npy_header h;
    api_error e = {0};
    cr_assert_eq(api_npy_header_parse(&h, b, len, &e), 0, "%s", e.detail);
    cr_assert_eq(h.offset % 64, 0);
    cr_assert_eq(b[6], 1);
    api_dataset d;
    cr_assert_eq(api_dataset_parse_npy(&d, b, len, API_NPY_LABEL_FIRST, 0, &e), 0, "%s",
                 e.detail);
    cr_assert_eq(memcmp(d.X, X, sizeof X), 0);
    cr_assert_eq(memcmp(d.labels, labels, sizeof labels), 0);
    cr_assert_eq(d.outputs, 65536);
    api_dataset_clear(&d);
    free(b);
    api_dataset t = {.rows = 3, .features = 2, .outputs = 2, .X = X, .Y = Y};
    b = api_npy_from_dataset(&t, &len);
    cr_assert_eq(api_dataset_parse_npy(&d, b, len, API_NPY_TARGETS, 2, &e), 0, "%s", e.detail);
    cr_assert_eq(memcmp(d.X, X, sizeof X), 0);
    cr_assert_eq(memcmp(d.Y, Y, sizeof Y), 0);
    api_dataset_clear(&d);
    free(b);
}

/* Files numpy itself wrote (np.save, numpy 1.24; kept in the fuzz corpus) read as they say. */
Test(npy, reads_what_numpy_saves)
{
    static unsigned char buf[512];
    const char *paths[] = {"tests/fuzz/corpus/dataset.npy", "tests/fuzz/corpus/dataset_f4.npy"};
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(paths[k], "rb");
        cr_assert_not_null(f, "cannot open %s", paths[k]);
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        api_dataset d;
        api_error e = {0};
        cr_assert_eq(api_dataset_parse_npy(&d, buf, len, k ? API_NPY_LABEL_LAST
                                                           : API_NPY_LABEL_FIRST, 0, &e),
                     0, "%s: %s", paths[k], e.detail);
        cr_assert_eq(d.rows, 2);
        if (k == 0) { /* [[1, 0.5, -2], [0, 0.25, 3]] */
            cr_assert_eq(d.labels[0], 1);
            cr_assert_eq(d.X[1], -2.0);
            cr_assert_eq(d.X[3], 3.0);
        } else {      /* [[0.5, 1], [0.25, 0]] float32, label last */
            cr_assert_eq(d.labels[0], 1);
            cr_assert_eq(d.X[1], 0.25);
        }
        api_dataset_clear(&d);
    }
}
