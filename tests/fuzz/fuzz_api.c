/* fuzz_api.c — one fuzz target over every entry point of the JSON contract: the strict body
 * parser, network spec, training config, job request, stored job spec, theta, predict body,
 * dataset JSON (tree and fast text parser), CSV ingest in each header mode and the .npy reader
 * in each layout, plus the printers: whatever api_parse accepts, api_dump must print so that
 * jansson reads it back equal; whatever the .npy reader accepts, its writer must write so that
 * the reader gives the same arrays back.
 *
 * Built two ways: with clang -fsanitize=fuzzer (make fuzz; see README here) for long runs, and
 * included by tests/api_fuzz.c, whose Criterion driver replays corpus/ and a fixed set of
 * mutations under ASan+UBSan in every `make test`.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/jobs_codec.h"
#include "api/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A defect the sanitizers cannot see (a printer/parser disagreement) stops the run. */
static void fuzz_check(int ok)
{
    if (!ok)
        __builtin_trap();
}

static void fuzz_dump_round_trip(const json_t *j)
{
    size_t len;
    char *text = api_dump(j, &len);
    if (!text)
        return; /* out of memory */
    json_error_t e;
    json_t *back = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    fuzz_check(back != NULL && json_equal(j, back));
    json_decref(back);
    free(text);
}

/* Every tree-based reader on the parsed body j. */
static void fuzz_tree(const json_t *j)
{
    api_error err;
    bp_spec spec;
    bp_train_config cfg;
    api_dataset d;
    int64_t rows;
    memset(&d, 0, sizeof d);
    int have_spec = api_spec_parse(&spec, json_object_get(j, "network"), "network", &err) == 0;
    api_spec_parse(&spec, j, "network", &err);
    api_training_parse(&cfg, json_object_get(j, "training"), "training", &err);
    api_training_parse(&cfg, j, "training", &err);
    /* a theta for a large network would only measure malloc: skip those */
    if (!have_spec || bp_param_count(&spec) <= 100000) {
        api_job_request req;
        if (api_job_request_parse(&req, j, &err) == 0)
            api_job_request_clear(&req);
        if (have_spec)
            free(api_theta_parse(json_object_get(j, "theta"), &spec, "theta", &err));
    }
    if (api_dataset_from_json(&d, j, &err) == 0)
        api_dataset_clear(&d);
    for (int64_t width = 1; width <= 3; width++)
        free(api_predict_parse(j, width, 1000, &rows, &err));
    fuzz_dump_round_trip(j);
}

/* The .npy reader in every layout; an accepted file written again reads back the same. */
static void fuzz_npy(const uint8_t *data, size_t size)
{
    const api_npy_layout layouts[] = {API_NPY_LABEL_FIRST, API_NPY_LABEL_LAST, API_NPY_TARGETS};
    for (size_t k = 0; k < 3; k++) {
        api_dataset d, back;
        api_error err;
        if (api_dataset_parse_npy(&d, data, size, layouts[k], 1, &err) < 0)
            continue;
        size_t len = 0;
        uint8_t *b = api_npy_from_dataset(&d, &len);
        if (b) {
            api_npy_layout again = d.labels ? API_NPY_LABEL_FIRST : API_NPY_TARGETS;
            fuzz_check(api_dataset_parse_npy(&back, b, len, again, d.outputs, &err) == 0);
            size_t nx = (size_t)(d.rows * d.features) * sizeof(double);
            fuzz_check(back.rows == d.rows && back.features == d.features &&
                       memcmp(back.X, d.X, nx) == 0);
            api_dataset_clear(&back);
            free(b);
        }
        api_dataset_clear(&d);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    api_error err;
    api_dataset d;
    memset(&d, 0, sizeof d);
    json_t *j = api_parse(text, size, &err);
    if (j) {
        fuzz_tree(j);
        json_decref(j);
    }
    if (api_dataset_parse_json_text(&d, text, size, &err) == 0)
        api_dataset_clear(&d);
    const api_csv_header modes[] = {API_CSV_HEADER_AUTO, API_CSV_HEADER_TRUE,
                                    API_CSV_HEADER_FALSE};
    for (size_t m = 0; m < 3; m++)
        if (api_dataset_parse_csv_header(&d, text, size, modes[m], &err) == 0)
            api_dataset_clear(&d);
    fuzz_npy(data, size);
    char *z = malloc(size + 1); /* the stored job spec is NUL-terminated text */
    if (z) {
        memcpy(z, data, size);
        z[size] = '\0';
        bp_spec spec;
        bp_train_config cfg;
        api_job_spec_parse(&spec, &cfg, z, &err);
        free(z);
    }
    return 0;
}
