/* security.h — who may call what: API keys and tenants, CORS, per-key/per-address rate
 * limits (quotas are admission rules of the store: store_limits). main.c gives
 * security_check() and security_decorate() to the HTTP framework as its check and decorate
 * hooks: the first runs on every routed request (and OPTIONS on a known path) before the
 * handler, the second on every reply before it is queued.
 */
#ifndef BACKPROPD_SECURITY_H
#define BACKPROPD_SECURITY_H

#include <stddef.h>
#include <stdint.h>

#include "server/server.h"

/* new. Loads --api-keys-file (one "name:key" per line, '#' comments), parses
 * --cors-origins. Returns NULL with a message in err (e.g. unreadable keys file). */
security *security_new(const config *cfg, char *err, size_t errlen);
void security_free(security *sec); /* wipes the key digests; NULL is a no-op */
int security_has_keys(const security *sec);

/* Returns 0 when the request may go on (and sets r->owner), or 1 when it has already set
 * the reply (401 with WWW-Authenticate, 429 with Retry-After, a CORS preflight answer with
 * the path's methods r->allow...). A route needs no key when r->rt->open, unless it is
 * lockable and --metrics-auth locks it (/metrics). sec and r borrowed. */
int security_check(security *sec, req *r);
/* Events tokens: what a browser's EventSource (which cannot send Authorization) presents as
 * ?access_token= on GET /v1/jobs/{id}/events (routes with .token). A token names one job and
 * one tenant, and expires SECURITY_TOKEN_TTL seconds after it was made; it is an HMAC-SHA256
 * under a secret derived from the API keys (so every instance with the same keys file
 * accepts it, and changing the keys revokes it), never stored and never logged. */
#define SECURITY_TOKEN_TTL 300
/* Makes a token for job_id of owner into out (outlen >= SECURITY_TOKEN_MAX); *expires = unix
 * seconds it is good until. 0, or -1 when out is too small. */
#define SECURITY_TOKEN_MAX 256
int security_events_token(const security *sec, const char *owner, const char *job_id,
                          int64_t now, char *out, size_t outlen, int64_t *expires);

/* Adds CORS headers (exact-match Access-Control-Allow-Origin + Vary: Origin) to the reply. */
void security_decorate(security *sec, req *r);

#endif
