/* h_jobs.h — what the /v1/jobs handler files share (h_jobs.c, h_jobs_list.c, h_export.c): the
 * caller's job read from the store (with its problem reply set on failure), and the job as
 * GET shows it. A job's model (spec, weights, standardization, classes) is handlers_model.h's.
 */
#ifndef BACKPROPD_H_JOBS_H
#define BACKPROPD_H_JOBS_H

#include <jansson.h>
#include <stdint.h>

#include "core/bp.h"
#include "server/http/http.h"
#include "server/server.h"
#include "server/store/store.h"

/* A handler of /v1/jobs/{id}…: the caller's job, read from the store by handlers_on_job. */
typedef handler_result (*job_handler)(server *s, req *r, const store_job *job);

/* Reads the caller's job named by the path (404 when it has none), runs fn on it, frees it. */
handler_result handlers_on_job(void *ctx, req *r, job_handler fn);


/* new: the job as GET /v1/jobs/{id} shows it (live progress when it runs here); NULL on OOM
 * or an unreadable stored spec. */
json_t *handlers_job_json(server *s, const store_job *job);

#endif
