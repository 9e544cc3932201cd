/* security_internal.h — the pieces of security.c that unit tests (tests/server_security.c)
 * exercise directly: origin canonicalisation and matching, bearer-token authentication, and
 * the token-bucket rate limiter with an injectable clock. Not for handlers: they use
 * security.h only.
 */
#ifndef BACKPROPD_SECURITY_INTERNAL_H
#define BACKPROPD_SECURITY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "server/security/security.h"

/* Longest origin accepted (config or request), so that it fits a reply header value. */
#define SEC_ORIGIN_MAX 150

/* Canonical form of a web origin "scheme://host[:port]": scheme http or https and host in
 * lower case, default port (80/443) dropped, nothing else allowed (no path, trailing slash,
 * userinfo, query, whitespace; "null" and "*" refused). Writes it into out (outlen bytes)
 * and returns 0, or returns -1 when `in` is not such an origin. */
int security_origin_canon(const char *in, char *out, size_t outlen);

/* The configured origin (borrowed, canonical) that `origin` (a request's Origin header,
 * may be NULL) names, or NULL when it is not on the --cors-origins list. */
const char *security_origin_allowed(const security *sec, const char *origin);

/* Outcome of checking an Authorization header. */
typedef enum {
    SEC_AUTH_OK = 0,
    SEC_AUTH_MISSING,   /* no Authorization header */
    SEC_AUTH_MALFORMED, /* not "Bearer <token>" */
    SEC_AUTH_INVALID    /* well-formed token that is no configured key */
} security_auth;

/* Checks an Authorization header value (may be NULL) against every configured key, in
 * time independent of which key (if any) matches. On SEC_AUTH_OK copies the key's name
 * into name (namelen bytes). */
security_auth security_authenticate(const security *sec, const char *authorization, char *name,
                          size_t namelen);

/* Number of keys loaded. */
size_t security_key_count(const security *sec);

/* Events tokens (security_token.c) under a secret of SEC_TOKEN_SECRET bytes: make one for
 * job_id of owner (security_events_token's contract), or check one for job_id at unix time
 * now: 0 with the owner (< 64 bytes) in owner, or -1 (malformed, expired, another job's,
 * forged). */
#define SEC_TOKEN_SECRET 32
int security_token_make(const unsigned char secret[SEC_TOKEN_SECRET], const char *owner,
                        const char *job_id, int64_t now, char *out, size_t outlen,
                        int64_t *expires);
int security_token_check(const unsigned char secret[SEC_TOKEN_SECRET], const char *token,
                         const char *job_id, int64_t now, char owner[64]);

/* The rate limiter (security_rate.c). */
typedef struct security_rl security_rl;
/* The state of a bucket after a take, as the RateLimit-* fields give it. */
typedef struct {
    int64_t limit;     /* the burst */
    int64_t remaining; /* whole tokens left */
    int64_t reset;     /* seconds until the bucket is full again (or until the next token
                        * when refused) */
} security_rate_info;
/* new: buckets of rate tokens/s, burst 2 × rate; NULL out of memory. */
security_rl *security_rl_new(double rate);
void security_rl_free(security_rl *rl); /* NULL is a no-op */
/* One token from bucket key at monotonic time now: 0 allowed, else whole seconds to wait;
 * info (may be NULL) filled. rl NULL: always 0, info untouched. */
int security_rl_take(security_rl *rl, const char *key, double now, security_rate_info *info);
size_t security_rl_entries(security_rl *rl);

/* Takes one token from the bucket called `key` ("k:<name>" or "a:<address>") at monotonic
 * time `now` (seconds). Returns 0 when allowed, else the whole seconds (>= 1) to wait. With
 * the rate limit off, always 0. */
int security_rate_take(security *sec, const char *key, double now);
/* Buckets currently held (bounded: idle full buckets are evicted when the table fills). */
size_t security_rate_entries(security *sec);

#endif
