/* h_events.h — GET /v1/jobs/{id}/events: Server-Sent Events that follow a job, live from the
 * job runtime (jobs_live.h) while it runs here, else from the store.
 *
 * Event ids are one numbering that works live and replayed from the store:
 *   1 = status queued, 2 = status running, 2 + e = progress of epoch e (e >= 1),
 *   3 + E = the final status (succeeded/failed/cancelled) after E completed epochs.
 * A job resumed after a restart re-emits the epochs it redid under the same ids with the same
 * values (training is bit-exact), so a client's Last-Event-ID always means the same thing.
 */
#ifndef BACKPROPD_H_EVENTS_H
#define BACKPROPD_H_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "server/http/http.h"
#include "server/jobs/jobs.h"
#include "server/store/store.h"

typedef struct events events;

/* new. Follows j (registers as its change listener, jobs_on_change) and reads st; both
 * borrowed, and must outlive the events. Starts the thread that sends heartbeats and polls
 * the store for streams of jobs not running here. NULL + message on failure. */
events *events_new(jobs *j, store *st, char *err, size_t errlen);
/* Stops that thread, unregisters from j and frees; NULL is a no-op. Call after jobs_stop (which
 * ends every stream) and after the HTTP daemon stopped (which frees them). */
void events_free(events *ev);

/* Replies to GET /v1/jobs/{id}/events with a text/event-stream for job id (owner-checked by
 * the caller; owner is used for the store reads), starting after event id last_event_id
 * (0 = from the beginning). 503 + Retry-After when the process is shutting down. */
handler_result events_reply(events *ev, req *r, const char *id, const char *owner,
                            int64_t last_event_id);

#endif
