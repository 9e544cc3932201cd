/* store_sqlite.c — TEMPORARY link stub, replaced by its owner. */
#include "store.h"
#include <stdlib.h>
#include <string.h>
struct store { int unused; };
store *store_open(const char *dir, store_error *err)
{
    (void)dir; (void)err; return calloc(1, sizeof(store));
}
void store_close(store *s)
{
    (void)s; free(s);
}
int store_ping(store *s, store_error *err)
{
    (void)s; (void)err; return STORE_IO;
}
int store_dataset_put(store *s, const store_dataset_meta *meta, const double *X, const int32_t *labels, const double *Y, store_error *err)
{
    (void)s; (void)meta; (void)X; (void)labels; (void)Y; (void)err; return STORE_IO;
}
int store_dataset_get(store *s, const char *owner, const char *id, store_dataset_meta *out, store_error *err)
{
    (void)s; (void)owner; (void)id; (void)out; (void)err; return STORE_IO;
}
int store_dataset_load(store *s, const char *owner, const char *id, store_dataset_meta *meta, double **X, int32_t **labels, double **Y, store_error *err)
{
    (void)s; (void)owner; (void)id; (void)meta; (void)X; (void)labels; (void)Y; (void)err; return STORE_IO;
}
int store_dataset_list(store *s, const char *owner, store_dataset_meta **out, size_t *n, store_error *err)
{
    (void)s; (void)owner; (void)out; (void)n; (void)err; return STORE_IO;
}
int store_dataset_delete(store *s, const char *owner, const char *id, store_error *err)
{
    (void)s; (void)owner; (void)id; (void)err; return STORE_IO;
}
int store_dataset_bytes(store *s, const char *owner, int64_t *bytes, store_error *err)
{
    (void)s; (void)owner; (void)bytes; (void)err; return STORE_IO;
}
const char *job_status_name(job_status s)
{
    (void)s; return "queued";
}
int job_status_parse(const char *name, job_status *out)
{
    (void)name; (void)out; return STORE_IO;
}
void store_job_clear(store_job *j)
{
    (void)j; free(j->spec_json); j->spec_json=NULL;
}
void store_jobs_free(store_job *jobs, size_t n)
{
    (void)jobs; (void)n; free(jobs);
}
int store_job_create(store *s, store_job *job, const double *theta0, int64_t n_params, store_error *err)
{
    (void)s; (void)job; (void)theta0; (void)n_params; (void)err; return STORE_IO;
}
int store_job_get(store *s, const char *owner, const char *id, store_job *out, store_error *err)
{
    (void)s; (void)owner; (void)id; (void)out; (void)err; return STORE_IO;
}
int store_job_list(store *s, const char *owner, int status, int64_t cursor, int limit, store_job **out, size_t *n, int64_t *next_cursor, store_error *err)
{
    (void)s; (void)owner; (void)status; (void)cursor; (void)limit; (void)out; (void)n; (void)next_cursor; (void)err; return STORE_IO;
}
int store_job_count_active(store *s, const char *owner, int64_t *n, store_error *err)
{
    (void)s; (void)owner; (void)n; (void)err; return STORE_IO;
}
int store_job_count_by_status(store *s, int64_t counts[5], store_error *err)
{
    (void)s; (void)counts; (void)err; return STORE_IO;
}
int store_job_claim(store *s, const char *worker_id, int64_t lease_ms, store_job *out, store_error *err)
{
    (void)s; (void)worker_id; (void)lease_ms; (void)out; (void)err; return STORE_IO;
}
int store_job_renew(store *s, const char *id, const char *worker_id, int64_t lease_ms, int *cancel_requested, store_error *err)
{
    (void)s; (void)id; (void)worker_id; (void)lease_ms; (void)cancel_requested; (void)err; return STORE_IO;
}
int store_job_release(store *s, const char *id, const char *worker_id, store_error *err)
{
    (void)s; (void)id; (void)worker_id; (void)err; return STORE_IO;
}
int store_job_checkpoint(store *s, const char *id, const char *worker_id, const store_history *hist, const store_progress *progress, const void *checkpoint, size_t checkpoint_len, const double *theta, int64_t n_params, store_error *err)
{
    (void)s; (void)id; (void)worker_id; (void)hist; (void)progress; (void)checkpoint; (void)checkpoint_len; (void)theta; (void)n_params; (void)err; return STORE_IO;
}
int store_job_finish(store *s, const char *id, const char *worker_id, job_status status, const char *error, const store_history *hist, const store_progress *progress, const double *theta, int64_t n_params, store_error *err)
{
    (void)s; (void)id; (void)worker_id; (void)status; (void)error; (void)hist; (void)progress; (void)theta; (void)n_params; (void)err; return STORE_IO;
}
int store_job_request_cancel(store *s, const char *owner, const char *id, int *now_cancelled, store_error *err)
{
    (void)s; (void)owner; (void)id; (void)now_cancelled; (void)err; return STORE_IO;
}
int store_job_delete(store *s, const char *owner, const char *id, store_error *err)
{
    (void)s; (void)owner; (void)id; (void)err; return STORE_IO;
}
int store_job_checkpoint_load(store *s, const char *id, void **buf, size_t *len, store_error *err)
{
    (void)s; (void)id; (void)buf; (void)len; (void)err; return STORE_IO;
}
int store_job_weights(store *s, const char *owner, const char *id, double **theta, int64_t *n_params, int64_t *epoch, double *cost, store_error *err)
{
    (void)s; (void)owner; (void)id; (void)theta; (void)n_params; (void)epoch; (void)cost; (void)err; return STORE_IO;
}
int store_job_history(store *s, const char *owner, const char *id, int64_t **epoch, double **cost, double **validation_cost, double **accuracy, size_t *n, store_error *err)
{
    (void)s; (void)owner; (void)id; (void)epoch; (void)cost; (void)validation_cost; (void)accuracy; (void)n; (void)err; return STORE_IO;
}
int store_job_theta0(store *s, const char *id, double **theta, int64_t *n_params, store_error *err)
{
    (void)s; (void)id; (void)theta; (void)n_params; (void)err; return STORE_IO;
}
