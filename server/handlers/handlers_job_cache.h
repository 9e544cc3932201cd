/* handlers_job_cache.h — the JSON body of GET /v1/jobs/{id}, kept per job so that polling a
 * job that is not changing does not read the store and re-encode the job each time.
 *
 * Freshness comes from the store, not from a time to live: an entry is made from a store read
 * preceded by store_job_version, carries that version, and is served only while
 * store_job_version still gives it — every store write of the job (on this instance) moves
 * the version. On PostgreSQL the version is 0 (other instances write the same database and
 * this one would not see it), so nothing is cached there. A job running here also changes
 * between store writes (its live progress, jobs_live.h): its entry carries the live version
 * as well (jobs_live_version; 0 for a job not running here), read before the job too. An
 * entry answers only
 * its owner: for anyone else it is a miss, which reads the store and gets the same 404 as an
 * unknown id.
 */
#ifndef BACKPROPD_HANDLERS_JOB_CACHE_H
#define BACKPROPD_HANDLERS_JOB_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "server/http/http.h"

typedef struct handlers_job_cache handlers_job_cache;

/* new; NULL when out of memory. */
handlers_job_cache *handlers_job_cache_new(void);
void handlers_job_cache_free(handlers_job_cache *c); /* NULL is a no-op */

/* When c holds job id of owner at version (nonzero) and live version live, sets r's reply to
 * a 200 application/json of its body (a copy) and returns 1; else 0 and r is untouched. c may
 * be NULL (always 0). */
int handlers_job_cache_reply(handlers_job_cache *c, req *r, const char *owner, const char *id,
                             uint64_t version, uint64_t live);

/* Keeps body (copied) as job id of owner at version and live version live, replacing what c
 * held for it. Nothing when c is NULL, version is 0 or memory is short. */
void handlers_job_cache_put(handlers_job_cache *c, const char *owner, const char *id,
                            uint64_t version, uint64_t live, const char *body, size_t len);

#endif
