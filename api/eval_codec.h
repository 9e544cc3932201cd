/* eval_codec.h — JSON for evaluation: the POST /v1/jobs/{id}/evaluate request ({"dataset"} or
 * inline "X" with "y"/"Y") and the report it answers with, which is also a finished job's
 * "metrics" on its held-out rows. No HTTP and no storage: the server loads a named dataset.
 * Ownership per function: "new" = caller frees (json_decref / api_dataset_clear); else borrowed.
 */
#ifndef BACKPROPD_EVAL_CODEC_H
#define BACKPROPD_EVAL_CODEC_H

#include <jansson.h>
#include <stddef.h>

#include "api/api.h"
#include "core/bp.h"

/* Decodes an evaluate body: exactly one of "dataset" (id into dataset, cap bytes) and inline
 * "X" with "y"/"Y" (into *data, new); unknown keys refused. With classes_json (the job's
 * class names, or NULL) "y" may hold the names instead of the numbers ('y[3]: "emu" is not
 * one of the job's classes' otherwise). 0 ok, -1 with err (400). */
int api_evaluate_request_parse(char *dataset, size_t cap, api_dataset *data, const char *text,
                               size_t len, const char *classes_json, api_error *err);

/* new: the report. Classification (e->K > 0): {"rows","cost","accuracy","log_loss","classes",
 * "confusion","per_class":[{"class","precision","recall","f1","support"}],"macro":{…},
 * "weighted":{…}} and, for K == 2, "roc_auc" (null when a class has no rows). classes_json:
 * the class names (api_class_names_json), or NULL for "0".."K-1". Linear (K == 0):
 * {"rows","cost","mse","mae","r2"}. Figures that are not finite are null. NULL on OOM. */
json_t *api_evaluation_json(const bp_eval *e, const char *classes_json);

/* new: K class names: element k of the JSON array text classes_json when it has one, else
 * the decimal k ("0".."K-1"). NULL out of memory. */
json_t *api_class_names_json(const char *classes_json, int64_t K);
/* Adds "classes" (K names) and "predicted" (each row's class name) to a predict answer o
 * when classes_json is set. 0 ok, -1 OOM. */
int api_predictions_named(json_t *o, const int32_t *labels, int64_t rows, int64_t K,
                          const char *classes_json);

#endif
