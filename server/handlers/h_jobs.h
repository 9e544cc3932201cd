/* h_jobs.h — what the /v1/jobs handler files (h_jobs.c, h_jobs_list.c) share. */
#ifndef BACKPROPD_H_JOBS_H
#define BACKPROPD_H_JOBS_H

#include <jansson.h>

#include "server/server.h"
#include "server/store/store.h"

/* new: the job as GET /v1/jobs/{id} shows it (live progress when it runs here); NULL on OOM
 * or an unreadable stored spec. */
json_t *handlers_job_json(server *s, const store_job *job);

#endif
