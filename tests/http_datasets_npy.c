/* http_datasets_npy.c — NumPy .npy datasets through the real binary over HTTP, on files this
 * test writes byte by byte: digits uploaded as float64 .npy (label first) is the dataset the
 * CSV upload gives (its download has the same bytes, and a job trains to the same weights on
 * both); float32 with the label last reads back exactly; a Y block by ?targets; a hostile
 * header, a short body and bad query values are 400 problem+json naming what is wrong; the
 * download of a CSV-uploaded set is the .npy this test writes itself.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "tests/harness.h"

/* new: a version-1.0 .npy file of a rows × cols array (values: item-byte little-endian
 * floats, already laid out), header padded to 64 bytes; its length into *len. */
static char *npy_bytes(const char *descr, int64_t rows, int64_t cols, const void *vals,
                       size_t item, size_t *len)
{
    char dict[160];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': "
                     "(%lld, %lld), }", descr, (long long)rows, (long long)cols);
    size_t head = (10 + (size_t)n + 1 + 63) / 64 * 64, body = (size_t)(rows * cols) * item;
    char *b = malloc(head + body);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (char)((head - 10) & 0xff);
    b[9] = (char)((head - 10) >> 8);
    memset(b + 10, ' ', head - 10);
    memcpy(b + 10, dict, (size_t)n);
    b[head - 1] = '\n';
    memcpy(b + head, vals, body);
    *len = head + body;
    return b;
}

/* new: digits as [label, 64 features] rows of float64 in a .npy file. */
static char *digits_npy(size_t *len)
{
    api_dataset d = {0};
    test_digits_load(&d);
    double *v = malloc((size_t)(d.rows * 65) * sizeof(double));
    for (int64_t r = 0; r < d.rows; r++) {
        v[r * 65] = d.labels[r];
        memcpy(v + r * 65 + 1, d.X + r * 64, 64 * sizeof(double));
    }
    char *b = npy_bytes("<f8", d.rows, 65, v, 8, len);
    free(v);
    api_dataset_clear(&d);
    return b;
}

static void upload(const srv *s, const char *query, const char *body, size_t len, char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/datasets%s", query);
    long st = post_for_id(s, path, "application/x-npy", body, len, NULL, id, 64);
    cr_assert_eq(st, 201, "npy upload %s: %ld", query, st);
}

/* GET /v1/datasets/{id} as .npy (asserting 200 and the Content-Type). */
static resp download(const srv *s, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/datasets/%s", id);
    const char *h[] = {"Accept: application/x-npy", NULL};
    resp r;
    cr_assert_eq(http_req(s, "GET", path, NULL, NULL, 0, h, &r), 0);
    cr_assert_eq(r.status, 200, "download: %ld %s", r.status, r.body);
    char ct[64];
    cr_assert_eq(resp_header(&r, "Content-Type", ct, sizeof ct), 0);
    cr_assert_str_eq(ct, "application/x-npy");
    return r;
}

Test(datasets_npy, digits_as_npy_is_the_csv_dataset, .timeout = 120)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    size_t len;
    char *npy = digits_npy(&len);
    char a[64], b[64];
    upload(&s, "?name=digits-npy", npy, len, a);
    upload_digits(&s, b, sizeof b);
    json_t *m = get_json(&s, "/v1/datasets/%s", a);
    cr_assert_eq(json_integer_value(json_object_get(m, "rows")), 1797);
    cr_assert_eq(json_integer_value(json_object_get(m, "features")), 64);
    cr_assert_eq(json_integer_value(json_object_get(m, "outputs")), 10);
    json_decref(m);
    /* both downloads are exactly the file written here */
    resp ra = download(&s, a), rb = download(&s, b);
    cr_assert_eq(ra.len, len);
    cr_assert_eq(memcmp(ra.body, npy, len), 0, "the .npy upload does not download as itself");
    cr_assert_eq(rb.len, len);
    cr_assert_eq(memcmp(rb.body, npy, len), 0, "the CSV upload does not download as this .npy");
    resp_free(&ra);
    resp_free(&rb);
    /* and a job trains to the same weights on either */
    const char *tr = "\"optimizer\":\"gd\",\"learning_rate\":1.0,\"epochs\":5,\"seed\":3";
    char *ja = job_body(a, "[64,20,10]", tr), *jb = job_body(b, "[64,20,10]", tr);
    char j1[64], j2[64];
    submit_job(&s, NULL, ja, j1, sizeof j1);
    submit_job(&s, NULL, jb, j2, sizeof j2);
    json_decref(wait_job(&s, j1, "succeeded", 60));
    json_decref(wait_job(&s, j2, "succeeded", 60));
    char *w1 = get_text(&s, "/v1/jobs/%s/weights", j1), *w2 = get_text(&s, "/v1/jobs/%s/weights", j2);
    cr_assert_str_eq(w1, w2);
    free(w1);
    free(w2);
    free(ja);
    free(jb);
    free(npy);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(datasets_npy, float32_label_last_and_targets, .timeout = 60)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    /* 3 rows of [x1, x2, label] in float32 */
    const float f[9] = {0.5f, -1.25f, 2, 0.25f, 8.5f, 0, 1e-3f, 3, 1};
    size_t len;
    char *b = npy_bytes("<f4", 3, 3, f, 4, &len), id[64];
    upload(&s, "?label=last", b, len, id);
    resp r = download(&s, id);
    /* read back as [label, x1, x2] float64: the float32 values exactly */
    size_t head = (size_t)(unsigned char)r.body[8] + 10;
    cr_assert_eq(r.len, head + 9 * 8);
    double got[9];
    memcpy(got, r.body + head, sizeof got);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(got[i * 3], (double)f[i * 3 + 2]);
        cr_assert_eq(got[i * 3 + 1], (double)f[i * 3]);
        cr_assert_eq(got[i * 3 + 2], (double)f[i * 3 + 1]);
    }
    resp_free(&r);
    free(b);
    /* Y: the last 2 columns of 2 rows × 3 */
    const double v[6] = {1, 0.5, -0.5, 2, 0.25, 0.75};
    b = npy_bytes("<f8", 2, 3, v, 8, &len);
    upload(&s, "?targets=2", b, len, id);
    json_t *m = get_json(&s, "/v1/datasets/%s", id);
    cr_assert_eq(json_integer_value(json_object_get(m, "features")), 1);
    cr_assert_eq(json_integer_value(json_object_get(m, "outputs")), 2);
    json_decref(m);
    r = download(&s, id);
    cr_assert_eq(memcmp(r.body + r.len - sizeof v, v, sizeof v), 0);
    resp_free(&r);
    free(b);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(datasets_npy, bad_files_and_queries_are_named_400s, .timeout = 60)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    const double v[6] = {0, 0.5, 1, 1, 0.25, 0};
    size_t len;
    char *b = npy_bytes(">f8", 2, 3, v, 8, &len);
    resp r;
    cr_assert_eq(http_req(&s, "POST", "/v1/datasets", "application/x-npy", b, len, NULL, &r), 0);
    expect_problem_eq(&r, 400, "npy header: 'descr' is '>f8': must be '<f8' (little-endian "
                               "float64) or '<f4' (float32)");
    resp_free(&r);
    free(b);
    b = npy_bytes("<f8", 2, 3, v, 8, &len);
    cr_assert_eq(http_req(&s, "POST", "/v1/datasets", "application/x-npy", b, len - 8, NULL, &r),
                 0);
    expect_problem(&r, 400, "body: 40 bytes of values after the header, but 'shape' (2, 3)");
    resp_free(&r);
    cr_assert_eq(http_req(&s, "POST", "/v1/datasets?label=middle", "application/x-npy", b, len,
                          NULL, &r), 0);
    expect_problem_eq(&r, 400, "label: must be first or last");
    resp_free(&r);
    cr_assert_eq(http_req(&s, "POST", "/v1/datasets?targets=x", "application/x-npy", b, len,
                          NULL, &r), 0);
    expect_problem(&r, 400, "targets: must be a positive integer");
    resp_free(&r);
    cr_assert_eq(http_req(&s, "POST", "/v1/datasets?targets=3", "application/x-npy", b, len,
                          NULL, &r), 0);
    expect_problem(&r, 400, "targets: must be an integer in 1..2");
    resp_free(&r);
    cr_assert_eq(http_req(&s, "POST", "/v1/datasets", "application/x-npy", "PK\x03\x04", 4, NULL,
                          &r), 0);
    expect_problem_eq(&r, 400, "body: not a .npy file (it must start with \\x93NUMPY)");
    resp_free(&r);
    /* nothing of the refused uploads was stored */
    json_t *list = get_json(&s, "/v1/datasets");
    cr_assert_eq(json_array_size(json_object_get(list, "datasets")), 0);
    json_decref(list);
    free(b);
    srv_stop(&s);
    srv_cleanup(&s);
}
