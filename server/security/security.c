/* security.c — who may call what: API keys and tenants, CORS, per-key and per-address rate
 * limits (see security.h for the hooks the framework calls).
 *
 * DESIGN
 * Keys. --api-keys-file holds "name:key" or "name:sha256:<64 hex>" lines. Every key is kept
 * only as its SHA-256 digest (a plain key is hashed at load time and the text wiped), so a
 * presented token is hashed once and compared with every digest in constant time, with no
 * early exit and no dependence on key lengths. The key name becomes the tenant (r->owner);
 * handlers and the store do the per-tenant filtering. Keys are never logged.
 * CORS. --cors-origins is parsed into canonical origins (lower-case scheme and host, default
 * port dropped). A request's Origin is canonicalised the same strict way and compared
 * exactly; the value we send back in Access-Control-Allow-Origin is always our configured
 * string, never bytes copied from the request. "null" and "*" are refused.
 * Rate limits. Token buckets (rate N/s, burst 2N) keyed "a:<address>" (IPv6 by /64) and
 * "k:<key name>" (security_rate.c); every answer that went through them carries the
 * RateLimit-* fields of the tighter one.
 */
#include "server/common/clock.h"
#include "server/security/security.h"
#include "server/security/security_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <nettle/sha2.h>
#include <sys/random.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "server/common/log.h"

#define KEY_DIGEST 32
#define KEY_MIN_LEN 16
#define KEY_MAX_LEN 512       /* longest presented token we look at */
#define KEYS_MAX 100000       /* lines of real keys accepted in the file */

typedef struct {
    char name[64];
    unsigned char digest[KEY_DIGEST];
} security_key;

struct security {
    security_key *keys;
    size_t n_keys;
    char (*origins)[SEC_ORIGIN_MAX + 1];
    size_t n_origins;
    int metrics_auth;
    security_rl *rl;          /* the rate limiter (security_rate.c), NULL when off */
    unsigned char token_secret[SEC_TOKEN_SECRET]; /* events tokens' HMAC key */
};

/* ------------------------------------------------------------------ helpers */

static void sha256(const void *data, size_t len, unsigned char out[KEY_DIGEST])
{
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, len, data);
    sha256_digest(&c, KEY_DIGEST, out);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int valid_name(const char *s, size_t n)
{
    if (n < 1 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return 0;
    return 1;
}

/* Visible ASCII only: what can travel in an Authorization header without quoting. */
static int visible_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* 1 if a and b (KEY_DIGEST bytes) are equal; time independent of the contents. */
static unsigned digest_eq(const unsigned char *a, const unsigned char *b)
{
    unsigned diff = 0;
    for (size_t i = 0; i < KEY_DIGEST; i++)
        diff |= (unsigned)(a[i] ^ b[i]);
    return 1u & ((diff - 1u) >> 8); /* diff is 0..255: 1 only when it is 0 */
}

/* ------------------------------------------------------------------ keys file */

/* Parses one trimmed, non-comment line into k. Returns NULL or the error text. */
static const char *parse_key_line(char *line, size_t len, security_key *k)
{
    char *colon = memchr(line, ':', len);
    if (!colon || colon == line || colon == line + len - 1)
        return "expected name:key";
    size_t nlen = (size_t)(colon - line);
    if (!valid_name(line, nlen))
        return "name must be 1-63 characters of A-Z a-z 0-9 _ . -";
    memcpy(k->name, line, nlen);
    k->name[nlen] = '\0';
    char *key = colon + 1;
    size_t klen = len - nlen - 1;
    if (klen >= 7 && strncmp(key, "sha256:", 7) == 0) {
        const char *hex = key + 7;
        if (klen - 7 != 2 * KEY_DIGEST)
            return "sha256: needs exactly 64 hex digits";
        for (size_t i = 0; i < KEY_DIGEST; i++) {
            int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return "sha256: needs exactly 64 hex digits";
            k->digest[i] = (unsigned char)(hi << 4 | lo);
        }
        return NULL;
    }
    if (klen < KEY_MIN_LEN || klen > KEY_MAX_LEN || !visible_ascii(key, klen))
        return "key must be 16-512 visible ASCII characters (no spaces)";
    sha256(key, klen, k->digest);
    return NULL;
}

/* Loads the keys file into sec. 0, or -1 with err filled. */
static int load_keys(security *sec, const char *path, char *err, size_t errlen)
{
    int rc = -1;
    char *line = NULL;
    size_t cap = 0, lineno = 0, kcap = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "api-keys-file: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 0077))
        log_event(LOG_WARN, "api_keys_file", "msg=\"readable by group or others; chmod 600\"");
    ssize_t got;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        char *p = line;
        while (len && isspace((unsigned char)p[len - 1]))
            len--;
        while (len && isspace((unsigned char)*p))
            p++, len--;
        if (len == 0 || *p == '#')
            continue;
        if (sec->n_keys == KEYS_MAX) {
            snprintf(err, errlen, "api-keys-file line %zu: more than %d keys", lineno, KEYS_MAX);
            goto cleanup;
        }
        if (sec->n_keys == kcap) {
            size_t ncap = kcap ? 2 * kcap : 16;
            security_key *nk = realloc(sec->keys, ncap * sizeof *nk);
            if (!nk) {
                snprintf(err, errlen, "api-keys-file: out of memory");
                goto cleanup;
            }
            sec->keys = nk;
            kcap = ncap;
        }
        security_key *k = &sec->keys[sec->n_keys];
        const char *why = parse_key_line(p, len, k);
        explicit_bzero(line, cap);
        if (why) {
            snprintf(err, errlen, "api-keys-file line %zu: %s", lineno, why);
            goto cleanup;
        }
        for (size_t i = 0; i < sec->n_keys; i++) {
            if (strcmp(sec->keys[i].name, k->name) == 0) {
                snprintf(err, errlen, "api-keys-file line %zu: duplicate name %s", lineno,
                         k->name);
                goto cleanup;
            }
            if (memcmp(sec->keys[i].digest, k->digest, KEY_DIGEST) == 0) {
                snprintf(err, errlen, "api-keys-file line %zu: same key as %s", lineno,
                         sec->keys[i].name);
                goto cleanup;
            }
        }
        sec->n_keys++;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "api-keys-file: read error on %s", path);
        goto cleanup;
    }
    if (sec->n_keys == 0) {
        snprintf(err, errlen, "api-keys-file: %s holds no keys", path);
        goto cleanup;
    }
    rc = 0;
cleanup:
    if (line)
        explicit_bzero(line, cap);
    free(line);
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------------ origins */

int security_origin_canon(const char *in, char *out, size_t outlen)
{
    char buf[SEC_ORIGIN_MAX + 1];
    size_t n = 0;
    const char *p = in;
    int https;
    if (!in)
        return -1;
    if (strncasecmp(p, "https://", 8) == 0)
        https = 1, p += 8;
    else if (strncasecmp(p, "http://", 7) == 0)
        https = 0, p += 7;
    else
        return -1;
    n = (size_t)snprintf(buf, sizeof buf, "%s", https ? "https://" : "http://");
    /* host: [v6] or a DNS name / IPv4 of letters, digits, '-' and '.' */
    const char *h = p;
    if (*p == '[') {
        p++;
        while (isxdigit((unsigned char)*p) || *p == ':' || *p == '.')
            p++;
        if (*p != ']' || p == h + 1)
            return -1;
        p++;
    } else {
        while (isalnum((unsigned char)*p) || *p == '-' || *p == '.')
            p++;
        if (p == h || *h == '.' || *h == '-')
            return -1;
    }
    size_t hlen = (size_t)(p - h);
    if (n + hlen >= sizeof buf)
        return -1;
    for (size_t i = 0; i < hlen; i++)
        buf[n++] = (char)tolower((unsigned char)h[i]);
    if (*p == ':') {
        const char *d = ++p;
        long port = 0;
        while (isdigit((unsigned char)*p) && p - d < 6)
            port = port * 10 + (*p++ - '0');
        if (p == d || *d == '0' || port > 65535)
            return -1;
        if (port != (https ? 443 : 80)) {
            int w = snprintf(buf + n, sizeof buf - n, ":%ld", port);
            if (w < 0 || (size_t)w >= sizeof buf - n)
                return -1;
            n += (size_t)w;
        }
    }
    if (*p != '\0')
        return -1; /* path, trailing slash, userinfo, query, whitespace... */
    buf[n] = '\0';
    if (n + 1 > outlen)
        return -1;
    memcpy(out, buf, n + 1);
    return 0;
}

/* Parses the comma-separated --cors-origins into sec. 0, or -1 with err filled. */
static int load_origins(security *sec, const char *list, char *err, size_t errlen)
{
    size_t count = 1;
    for (const char *c = list; *c; c++)
        count += *c == ',';
    sec->origins = calloc(count, sizeof *sec->origins);
    if (!sec->origins) {
        snprintf(err, errlen, "cors-origins: out of memory");
        return -1;
    }
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *s = p, *e = p + n;
        p = *e ? e + 1 : e;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (s == e)
            continue;
        char one[SEC_ORIGIN_MAX + 2];
        size_t len = (size_t)(e - s);
        if (len >= sizeof one) {
            snprintf(err, errlen, "cors-origins: origin longer than %d characters",
                     SEC_ORIGIN_MAX);
            return -1;
        }
        memcpy(one, s, len);
        one[len] = '\0';
        if (security_origin_canon(one, sec->origins[sec->n_origins], SEC_ORIGIN_MAX + 1) != 0) {
            snprintf(err, errlen,
                     "cors-origins: \"%s\" is not an origin like https://app.example.com[:port]"
                     " (\"null\", \"*\", paths and trailing slashes are refused)", one);
            return -1;
        }
        sec->n_origins++;
    }
    return 0;
}

const char *security_origin_allowed(const security *sec, const char *origin)
{
    char canon[SEC_ORIGIN_MAX + 1];
    if (!sec || !origin || sec->n_origins == 0 || strlen(origin) > SEC_ORIGIN_MAX ||
        security_origin_canon(origin, canon, sizeof canon) != 0)
        return NULL;
    for (size_t i = 0; i < sec->n_origins; i++)
        if (strcmp(canon, sec->origins[i]) == 0)
            return sec->origins[i];
    return NULL;
}

/* ------------------------------------------------------------------ authentication */

size_t security_key_count(const security *sec)
{
    return sec ? sec->n_keys : 0;
}

security_auth security_authenticate(const security *sec, const char *authorization, char *name,
                          size_t namelen)
{
    if (!authorization)
        return SEC_AUTH_MISSING;
    const char *p = authorization;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return SEC_AUTH_MALFORMED;
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t len = strcspn(p, " \t");
    const char *rest = p + len;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (len == 0 || len > KEY_MAX_LEN || *rest || !visible_ascii(p, len))
        return SEC_AUTH_MALFORMED;

    unsigned char d[KEY_DIGEST];
    sha256(p, len, d);
    size_t match = 0;
    unsigned found = 0;
    for (size_t i = 0; i < sec->n_keys; i++) {
        unsigned eq = digest_eq(d, sec->keys[i].digest);
        size_t mask = (size_t)0 - (size_t)eq;
        match = (match & ~mask) | (i & mask);
        found |= eq;
    }
    explicit_bzero(d, sizeof d);
    if (!found)
        return SEC_AUTH_INVALID;
    snprintf(name, namelen, "%s", sec->keys[match].name);
    return SEC_AUTH_OK;
}

int security_rate_take(security *sec, const char *key, double now)
{
    return security_rl_take(sec ? sec->rl : NULL, key, now, NULL);
}

size_t security_rate_entries(security *sec)
{
    return security_rl_entries(sec ? sec->rl : NULL);
}

/* "a:<ip>" for the connection's peer (IPv6 grouped by /64); "a:?" when unknown. */
static void client_key(const req *r, char *out, size_t outlen)
{
    const union MHD_ConnectionInfo *ci =
        r->conn ? MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS) : NULL;
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa && sa->sa_family == AF_INET) {
        struct sockaddr_in in4;
        memcpy(&in4, sa, sizeof in4);
        inet_ntop(AF_INET, &in4.sin_addr, ip, sizeof ip);
    } else if (sa && sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof in6);
        if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
            inet_ntop(AF_INET, &in6.sin6_addr.s6_addr[12], ip, sizeof ip);
        } else {
            memset(&in6.sin6_addr.s6_addr[8], 0, 8); /* one bucket per /64 */
            inet_ntop(AF_INET6, &in6.sin6_addr, ip, sizeof ip);
        }
    }
    snprintf(out, outlen, "a:%s", ip);
}

/* ------------------------------------------------------------------ events tokens */

/* The secret: SHA-256 over a label and every key digest (the same keys file gives every
 * instance the same secret); random without keys (tokens are then never needed). */
static int token_secret_init(security *sec)
{
    if (sec->n_keys == 0)
        return getrandom(sec->token_secret, SEC_TOKEN_SECRET, 0) == SEC_TOKEN_SECRET ? 0 : -1;
    struct sha256_ctx c;
    static const char label[] = "backpropd events token v1";
    sha256_init(&c);
    sha256_update(&c, sizeof label, (const uint8_t *)label);
    for (size_t i = 0; i < sec->n_keys; i++)
        sha256_update(&c, KEY_DIGEST, sec->keys[i].digest);
    _Static_assert(SEC_TOKEN_SECRET == KEY_DIGEST, "the secret is one SHA-256 digest");
    sha256_digest(&c, KEY_DIGEST, sec->token_secret);
    return 0;
}

int security_events_token(const security *sec, const char *owner, const char *job_id,
                          int64_t now, char *out, size_t outlen, int64_t *expires)
{
    return security_token_make(sec->token_secret, owner, job_id, now, out, outlen, expires);
}

/* ------------------------------------------------------------------ lifecycle */

security *security_new(const config *cfg, char *err, size_t errlen)
{
    security *ret = NULL;
    security *sec = calloc(1, sizeof *sec);
    if (!sec) {
        snprintf(err, errlen, "security: out of memory");
        return NULL;
    }
    sec->metrics_auth = cfg->metrics_auth;
    if (cfg->api_keys_file[0] && load_keys(sec, cfg->api_keys_file, err, errlen) != 0)
        goto cleanup;
    if (cfg->metrics_auth && sec->n_keys == 0) {
        snprintf(err, errlen, "--metrics-auth needs --api-keys-file");
        goto cleanup;
    }
    if (cfg->cors_origins[0] && load_origins(sec, cfg->cors_origins, err, errlen) != 0)
        goto cleanup;
    if (token_secret_init(sec) != 0) {
        snprintf(err, errlen, "security: no randomness for the events token secret");
        goto cleanup;
    }
    if (cfg->rate_limit > 0) {
        sec->rl = security_rl_new(cfg->rate_limit);
        if (!sec->rl) {
            snprintf(err, errlen, "security: out of memory");
            goto cleanup;
        }
    }
    ret = sec;
    sec = NULL;
cleanup:
    security_free(sec);
    return ret;
}

void security_free(security *sec)
{
    if (!sec)
        return;
    if (sec->keys)
        explicit_bzero(sec->keys, sec->n_keys * sizeof *sec->keys);
    free(sec->keys);
    free(sec->origins);
    security_rl_free(sec->rl);
    explicit_bzero(sec->token_secret, sizeof sec->token_secret);
    free(sec);
}

int security_has_keys(const security *sec)
{
    return sec && sec->n_keys > 0;
}

/* ------------------------------------------------------------------ the hooks */

static int reply_429(req *r, int wait, const char *detail)
{
    char v[16];
    snprintf(v, sizeof v, "%d", wait < 1 ? 1 : wait);
    http_reply_problem(r, 429, "%s", detail);
    http_add_header(r, "Retry-After", v);
    return 1;
}

static int reply_401(req *r, security_auth why)
{
    static const char *const detail[] = {
        [SEC_AUTH_MISSING] = "Authorization: Bearer <API key> is required",
        [SEC_AUTH_MALFORMED] = "Authorization must be \"Bearer <API key>\"",
        [SEC_AUTH_INVALID] = "the API key is not valid",
    };
    static const char *const challenge[] = {
        [SEC_AUTH_MISSING] = "Bearer realm=\"backpropd\"",
        [SEC_AUTH_MALFORMED] = "Bearer realm=\"backpropd\", error=\"invalid_request\"",
        [SEC_AUTH_INVALID] = "Bearer realm=\"backpropd\", error=\"invalid_token\"",
    };
    static const char *const reason[] = {
        [SEC_AUTH_MISSING] = "missing", [SEC_AUTH_MALFORMED] = "malformed",
        [SEC_AUTH_INVALID] = "invalid",
    };
    log_event(LOG_INFO, "auth_failed", "id=%llu reason=%s", (unsigned long long)r->id,
              reason[why]);
    http_reply_problem(r, 401, "%s", detail[why]);
    http_add_header(r, "WWW-Authenticate", challenge[why]);
    return 1;
}

/* OPTIONS: the methods the path answers, and CORS preflight headers for allowed origins. */
static int reply_preflight(security *sec, req *r)
{
    char allow[sizeof r->allow + 16];
    snprintf(allow, sizeof allow, "%s%sOPTIONS", r->allow, r->allow[0] ? ", " : "");
    http_reply_empty(r, 204);
    http_add_header(r, "Allow", allow);
    const char *origin = security_origin_allowed(sec, http_header(r, "Origin"));
    if (sec->n_origins)
        http_add_header(r, "Vary", "Origin");
    if (!origin)
        return 1; /* no CORS headers: the browser refuses the cross-origin call */
    http_add_header(r, "Access-Control-Allow-Origin", origin);
    http_add_header(r, "Access-Control-Allow-Methods", allow);
    http_add_header(r, "Access-Control-Allow-Headers",
                    "Authorization, Content-Type, Last-Event-ID, Idempotency-Key, "
                    "If-None-Match, X-Request-Id");
    http_add_header(r, "Access-Control-Max-Age", "600");
    return 1;
}

/* One token from bucket key; *tight keeps the bucket closest to refusing (fewest tokens left)
 * of this request's buckets. 0 allowed, else seconds to wait. */
static int rate_take(security *sec, const char *key, security_rate_info *tight)
{
    security_rate_info info;
    int wait = security_rl_take(sec->rl, key, clock_monotonic(), &info);
    if (tight->limit == 0 || info.remaining < tight->remaining ||
        (info.remaining == tight->remaining && info.reset > tight->reset))
        *tight = info;
    return wait;
}

/* RateLimit-Limit / -Remaining / -Reset (draft-ietf-httpapi-ratelimit-headers) of the
 * tightest bucket, on every answer that went through the rate limiter. */
static void rate_headers(req *r, const security_rate_info *t)
{
    if (t->limit == 0)
        return;
    char v[24];
    snprintf(v, sizeof v, "%lld", (long long)t->limit);
    http_add_header(r, "RateLimit-Limit", v);
    snprintf(v, sizeof v, "%lld", (long long)t->remaining);
    http_add_header(r, "RateLimit-Remaining", v);
    snprintf(v, sizeof v, "%lld", (long long)t->reset);
    http_add_header(r, "RateLimit-Reset", v);
}

int security_check(security *sec, req *r)
{
    int rc = 0, wait;
    security_rate_info tight = {0, 0, 0};
    r->owner[0] = '\0';
    if (sec->rl) {
        char key[80];
        client_key(r, key, sizeof key);
        if ((wait = rate_take(sec, key, &tight))) {
            rc = reply_429(r, wait, "rate limit: too many requests from this address "
                                    "(--rate-limit); retry after Retry-After seconds");
            goto done;
        }
    }
    if (strcmp(r->method, "OPTIONS") == 0) {
        rc = reply_preflight(sec, r);
        goto done;
    }
    int open = r->rt && r->rt->open && !(r->rt->lockable && sec->metrics_auth);
    if (open || sec->n_keys == 0)
        goto done;
    char name[64];
    const char *auth = http_header(r, "Authorization");
    if (!auth && r->rt && r->rt->token && http_query(r, "access_token")) {
        if (security_token_check(sec->token_secret, http_query(r, "access_token"), r->param[0],
                                 (int64_t)time(NULL), name) != 0) {
            log_event(LOG_INFO, "auth_failed", "id=%llu reason=token", (unsigned long long)r->id);
            http_reply_problem(r, 401, "access_token: not valid for this job, or expired "
                                       "(tokens last %d s): get a new one from POST "
                                       "/v1/jobs/{id}/events/token", SECURITY_TOKEN_TTL);
            http_add_header(r, "WWW-Authenticate",
                            "Bearer realm=\"backpropd\", error=\"invalid_token\"");
            rc = 1;
            goto done;
        }
        goto authenticated;
    }
    security_auth why = security_authenticate(sec, auth, name, sizeof name);
    if (why != SEC_AUTH_OK) {
        rc = reply_401(r, why);
        goto done;
    }
authenticated:
    snprintf(r->owner, sizeof r->owner, "%s", name);
    if (sec->rl) {
        char key[80];
        snprintf(key, sizeof key, "k:%s", name);
        if ((wait = rate_take(sec, key, &tight)))
            rc = reply_429(r, wait, "rate limit: too many requests for this API key "
                                    "(--rate-limit); retry after Retry-After seconds");
    }
done:
    rate_headers(r, &tight);
    return rc;
}

void security_decorate(security *sec, req *r)
{
    if (!sec || sec->n_origins == 0)
        return;
    for (int i = 0; i < r->n_headers && i < REQ_MAX_HEADERS; i++)
        if (strcasecmp(r->headers[i][0], "Vary") == 0)
            return; /* already decorated (preflight) */
    http_add_header(r, "Vary", "Origin");
    const char *origin = security_origin_allowed(sec, http_header(r, "Origin"));
    if (!origin)
        return;
    http_add_header(r, "Access-Control-Allow-Origin", origin);
    http_add_header(r, "Access-Control-Expose-Headers",
                    "Location, Retry-After, WWW-Authenticate, X-Request-Id, ETag, "
                    "Idempotent-Replayed, RateLimit-Limit, RateLimit-Remaining, "
                    "RateLimit-Reset, Link");
}
