/* datasets_codec.h — JSON for stored datasets: the metadata object that POST /v1/datasets,
 * GET /v1/datasets and GET /v1/datasets/{id} answer with. No HTTP and no storage types: the
 * caller passes plain values (the time already written as RFC 3339).
 * Ownership per function: "new" = caller frees (json_decref); else borrowed.
 */
#ifndef BACKPROPD_DATASETS_CODEC_H
#define BACKPROPD_DATASETS_CODEC_H

#include <jansson.h>
#include <stdint.h>

/* What a dataset's metadata shows. */
typedef struct {
    const char *id;          /* "ds_…" */
    const char *name;        /* "" when none was given */
    int64_t rows, features, outputs;
    const char *created_at;  /* RFC 3339 UTC to the second */
    const char *classes_json; /* the class names (JSON array text), or NULL */
} api_dataset_meta_view;

/* new: {"id","name","rows","features","outputs","created_at"} and "classes" when the dataset
 * has class names; NULL out of memory. */
json_t *api_dataset_meta_json(const api_dataset_meta_view *m);

#endif
