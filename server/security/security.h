/* security.h — who may call what: API keys and tenants, CORS, per-key/per-address rate
 * limits (quotas are admission rules of the store: store_limits). The HTTP framework calls
 * security_check() on every request after routing and before the handler, and
 * security_decorate() on every reply before it is queued.
 */
#ifndef BACKPROPD_SECURITY_H
#define BACKPROPD_SECURITY_H

#include "server/server.h"

/* new. Loads --api-keys-file (one "name:key" per line, '#' comments), parses
 * --cors-origins. Returns NULL with a message in err (e.g. unreadable keys file). */
security *security_new(const config *cfg, char *err, size_t errlen);
void security_free(security *sec); /* wipes the key digests; NULL is a no-op */
int security_has_keys(const security *sec);

/* Returns 0 when the request may go on (and sets r->owner), or 1 when it has already set
 * the reply (401 with WWW-Authenticate, 429 with Retry-After, a CORS preflight answer...).
 * `open` = route needs no key (/healthz, /readyz, /openapi.yaml, /metrics unless
 * --metrics-auth). */
int security_check(server *s, req *r, int open);
/* Adds CORS headers (exact-match Access-Control-Allow-Origin + Vary: Origin) to the reply. */
void security_decorate(server *s, req *r);

#endif
