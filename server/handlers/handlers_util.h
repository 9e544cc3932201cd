/* handlers_util.h — what every h_*.c handler needs and used to write again: the problem
 * reply for a failed store call, ids made safe to quote in a message, new random ids, RFC 3339
 * times, the problem reply for an api_error, and the paging of listings (limit, cursor,
 * next_cursor). Thread-safe; no state.
 */
#ifndef BACKPROPD_HANDLERS_UTIL_H
#define BACKPROPD_HANDLERS_UTIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "api/jobs_codec.h"
#include "server/http/http.h"
#include "server/store/store.h"

/* The problem for a failed store call (code < 0) into err: 404 `<field>: no <kind> "<id>"`
 * (field: where the id came from, "id" for the path, "dataset" for a body field; the id
 * sanitized), 507 the store is full, 503 busy (and Retry-After: 1 added to r's reply), 429
 * with the store's message for a refused admission (queue full, quota; Retry-After 10, or 60
 * for kind "dataset"), 409
 * `<kind> "<id>": <msg>` for a conflict, else 500 (a bug or a broken disk: logged with the
 * request number). kind: "dataset", "job". */
void handlers_store_problem(api_error *err, req *r, int code, const store_error *se,
                      const char *field, const char *kind, const char *id);

/* Sets the reply for a failed store call on an id from the path (handlers_store_problem with field
 * "id"). Returns HANDLER_OK. */
handler_result handlers_reply_store_error(req *r, int code, const store_error *se, const char *kind,
                                    const char *id);

/* Sets the problem reply err describes (status 500 if it has none: a bug). */
handler_result handlers_reply_api_error(req *r, const api_error *err);

/* A copy of text (an id from the URL) safe to quote in a message, escaped and cut as
 * api_escape does (the contract's one quoting rule). NULL prints as "". Returns out. */
const char *handlers_safe_id(const char *text, char *out, size_t cap);

/* prefix + 24 lower-case hex digits from 96 bits of getrandom(2) into out (cap >= prefix + 25).
 * 0 ok, -1 if the kernel gave no randomness (answer 503). */
int handlers_random_id(char *out, size_t cap, const char *prefix);

/* 0 and *v when text is a whole decimal integer in lo..hi, else -1. */
int handlers_whole_number(const char *text, int64_t lo, int64_t hi, int64_t *v);

/* A listing's ?limit= (1..HU_PAGE_MAX, default HU_PAGE_DEFAULT) and ?cursor= (a number this
 * server gave out as next_cursor; absent or empty = the first page, *cursor 0). 0 ok, -1 with
 * a 400 in err naming the parameter. */
#define HU_PAGE_DEFAULT 50
#define HU_PAGE_MAX 1000
int handlers_page_query(req *r, int64_t *limit, int64_t *cursor, api_error *err);

/* new: {"<key>": items, "next_cursor": "<next>" or null when next is 0}; steals items. NULL
 * when out of memory. */
json_t *handlers_page_json(const char *key, json_t *items, int64_t next);
/* The answer of a listing that collected items (stolen): rc 0 → 200 {key: items,
 * "next_cursor"}; 1 → 503 out of memory; < 0 → the store's problem (se, kind). */
handler_result handlers_reply_page(req *r, int rc, const char *key, json_t *items, int64_t next,
                                   const store_error *se, const char *kind);

/* "2024-05-01T12:00:00Z" for a Unix time in seconds (UTC). */
void handlers_rfc3339(char out[32], int64_t unix_seconds);
/* The API's view of a job's progress (what GET /v1/jobs/{id} and progress events show). */
api_job_progress handlers_progress_view(const store_progress *p);

/* The request's Idempotency-Key (POST /v1/jobs, /v1/datasets) into idem: 0 when there is
 * none (leave idem unused), 1 when idem is set (key borrowed from the request; request = the
 * SHA-256 of the media type, the query parameters named in params (comma-separated) and the
 * body; ttl_ms from --idempotency-ttl), -1 with a 400 reply (the key is not 1..255 visible
 * ASCII characters). */
int handlers_idempotency(req *r, int ttl_seconds, const char *params, store_idempotency *idem);

#endif
