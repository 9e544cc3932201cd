/* jobs_codec.h — JSON for training jobs: the POST /v1/jobs request, the canonical spec text the
 * store keeps ({"network":…,"training":…}), and the job / progress / history / weights / event
 * objects the server answers with. No HTTP and no storage types here: callers pass plain values.
 *
 * Errors go into an api_error whose detail names the field ("training.epochs: …").
 * Ownership per function: "new" = caller frees (json_decref / free); everything else borrowed.
 */
#ifndef BACKPROPD_JOBS_CODEC_H
#define BACKPROPD_JOBS_CODEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "core/bp.h"

/* What a client may attach to a job to find it again: a name, tags, free-form metadata. */
#define API_JOB_NAME_MAX 128      /* bytes */
#define API_JOB_TAGS_MAX 32       /* tags per job */
#define API_JOB_TAG_MAX 64        /* bytes per tag */
#define API_JOB_METADATA_MAX 4096 /* bytes of the metadata object as printed */

/* A parsed POST /v1/jobs body. */
typedef struct {
    bp_spec spec;
    bp_train_config train;
    char dataset[40];  /* "ds_…" */
    double *theta0;    /* new: warm start (bp_param_count doubles), or NULL */
    char *labels_json; /* new: {"name","tags","metadata"} as the job keeps them, or NULL
                        * when the request has none of the three */
    char from_job[40]; /* "job_…": warm start from that job's weights; "" none */
} api_job_request;
void api_job_request_clear(api_job_request *r); /* frees theta0, labels_json; *r zeroed */

/* {"network","dataset","training","theta","from_job","name","tags","metadata"} ("theta"
 * and "from_job" not both): unknown keys refused at every level. "name": 1..API_JOB_NAME_MAX
 * bytes without control characters; "tags": at most API_JOB_TAGS_MAX strings of
 * 1..API_JOB_TAG_MAX bytes without control characters or commas; "metadata": an object of at
 * most API_JOB_METADATA_MAX bytes printed. Each may be absent.
 * ('body: unknown key "foo"', 'training: unknown key "foo"'); "training" may be absent
 * (defaults) and each of its fields is optional; "theta" may be absent or null. 0 ok, -1 with
 * err (400). */
int api_job_request_parse(api_job_request *out, const json_t *body, api_error *err);

/* "training" object <-> bp_train_config. field = JSON path prefix ("training"). The ranges are
 * the core's (bp_train_config_validate): its message comes back under the path
 * ("training.epochs: must be an integer in 1..1000000"); here only JSON types are checked. */
int api_training_parse(bp_train_config *out, const json_t *j, const char *field, api_error *err);
json_t *api_training_json(const bp_train_config *c); /* new, every field, canonical order */

/* Canonical spec text stored with a job: {"network":{…},"training":{…}} (new, NUL-terminated,
 * printed by api_dump: each number the shortest text that parses back to the same double).
 * NULL on OOM. */
char *api_job_spec_dump(const bp_spec *spec, const bp_train_config *c);
/* Parses that text back. 0 ok, -1 with err. */
int api_job_spec_parse(bp_spec *spec, bp_train_config *c, const char *text, api_error *err);

/* What a job's model carries beyond its network and training config, kept in the same stored
 * spec text as {"standardize": {"mean": […], "std": […]}, "from_job": "job_…",
 * "classes": […]}. */
typedef struct {
    int64_t n_in;      /* s_1: the length of mean and sd */
    double *mean, *sd; /* new: the standardization (bp_standardize_fit), NULL when none */
    char from_job[40]; /* the job it warm-started from, "" none */
    char *classes_json; /* new: its dataset's class names (JSON array text), or NULL */
} api_job_extras;
void api_job_extras_clear(api_job_extras *x); /* frees mean, sd, classes_json; *x zeroed */
/* api_job_spec_dump's text with the extras x (may be NULL) added. new, NULL on OOM. */
char *api_job_spec_dump_extras(const bp_spec *spec, const bp_train_config *c,
                               const api_job_extras *x);
/* The extras of a stored spec text for a network of n_in inputs (*out filled: mean/sd new or
 * NULL). 0 ok, -1 with err (500: unreadable). */
int api_job_extras_parse(api_job_extras *out, const char *text, int64_t n_in, api_error *err);
/* Sets "standardize": {"mean", "std"} (n each) in object o (borrowed); mean NULL: nothing.
 * 0 ok, -1 OOM. */
int api_standardize_set(json_t *o, const double *mean, const double *sd, int64_t n);

/* ---- answers ---- */
typedef struct {
    int64_t epoch, epochs;
    double cost, validation_cost, accuracy, samples_per_second; /* NaN = null */
    double validation_accuracy;                                 /* NaN = null */
} api_job_progress;

/* Everything GET /v1/jobs/{id} shows, as plain values (all borrowed). */
typedef struct {
    const char *id;
    const char *status;     /* "queued" … */
    const char *dataset;
    const char *spec_json;  /* canonical text from api_job_spec_dump */
    const char *error;      /* NULL or "" = null */
    int64_t created_at_ms, started_at_ms, finished_at_ms; /* unix ms, 0 = null */
    api_job_progress progress;
    int64_t best_epoch;      /* the epoch of the weights the job holds; 0 = null */
    const char *stop_reason; /* why it ended; NULL or "" = null */
    const char *labels_json; /* {"name","tags","metadata"} (api_job_request), NULL = none */
    const char *metrics_json; /* the held-out report (api_evaluation_json's text), or NULL */
} api_job_view;

/* The labels of a job (labels_json, may be NULL): 1 when they match name (NULL = any) and
 * hold tag (NULL = any), else 0. */
int api_job_labels_match(const char *labels_json, const char *name, const char *tag);

/* new: {"id","status","network","dataset","training","progress","created_at","started_at",
 * "finished_at","error","best_epoch","stop_reason","from_job","name","tags","metadata"}
 * (name null, tags [] and metadata {} when the job has none) and "metrics" when metrics_json
 * is set. NULL on OOM or an unreadable spec_json. */
json_t *api_job_json(const api_job_view *v);
/* Sets "best_epoch" (0 → null) and "stop_reason" (NULL or "" → null) in object o (borrowed):
 * the job's end as the resource and the final event show it. 0 ok, -1 OOM. */
int api_job_outcome_set(json_t *o, int64_t best_epoch, const char *stop_reason);
json_t *api_job_progress_json(const api_job_progress *p); /* new */
/* A cost history: n rows, each array n long (NaN → null). */
typedef struct {
    const int64_t *epoch;
    const double *cost, *validation_cost, *accuracy, *validation_accuracy;
    size_t n;
} api_job_history;
/* new: {"epoch":[…],"cost":[…],"validation_cost":[…],"accuracy":[…],
 * "validation_accuracy":[…]}. */
json_t *api_job_history_json(const api_job_history *h);
/* new: {"network","theta","epoch","cost","validation_cost"}: the weights and the epoch they
 * are from, with its J on the training and held-out rows (NaN → null). */
json_t *api_job_weights_json(const bp_spec *spec, const double *theta, int64_t epoch,
                             double cost, double validation_cost);
/* new: a number, or null for NaN / Inf. */
json_t *api_number_or_null(double v);
/* RFC 3339 UTC with milliseconds ("2026-11-26T19:00:00.123Z") into buf (>= 32 bytes). */
const char *api_time_rfc3339(int64_t unix_ms, char *buf, size_t len);
/* new: RFC 3339 string, or null for 0. */
json_t *api_time_json(int64_t unix_ms);

#endif
