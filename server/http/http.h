/* http.h — the request framework between libmicrohttpd and backpropd's handlers. It knows no
 * handler, store, job, security or metrics: it is given, at http_start, its settings, the route
 * table, an opaque context pointer handed to every handler and hook, and three hooks (check
 * before the handler, decorate every reply, observe every answered request).
 *
 * One `req` per HTTP request, created on MHD's first callback and freed ONLY in the
 * request-completed callback. The framework (http.c):
 *   - first call: Content-Length over max_body -> 413 at once (the only early replies are
 *     413 and a refused Transfer-Encoding); otherwise it just allocates the req;
 *   - following calls: appends the body (chunked bodies are counted and cut at the limit);
 *   - last call (upload done): matches the route table (404 / 405 with Allow), runs the
 *     check hook (auth, CORS preflight, rate limits), refuses query parameters the route does
 *     not take (400), checks Content-Type against the route (415), then calls the handler:
 *     on the HTTP thread for a route without a body, on the work pool for a route with one
 *     (so no handler parses a body on an HTTP thread).
 * A handler builds exactly one reply with an http_reply_* function (or defers, or streams)
 * and returns HANDLER_OK; the framework queues it after the handler returns (never on MHD's
 * first call, which would close keep-alive connections in MHD 0.9.75).
 * Handlers never call MHD_queue_response themselves.
 */
#ifndef BACKPROPD_HTTP_H
#define BACKPROPD_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

typedef struct req req;
typedef struct http_server http_server; /* the daemon and its work pool (http.c) */

typedef enum {
    HANDLER_OK = 0,    /* a reply was set (or the request was deferred / streams) */
    HANDLER_CLOSE = 1  /* drop the connection without a reply (hopeless input) */
} handler_result;

/* What the framework adds to EVERY reply (http_reply.c, http_cache.c, http_gzip.c), so no
 * handler repeats it:
 *   - X-Request-Id: the client's when it is sane (1-128 of A-Z a-z 0-9 - _ . : / + =),
 *     else a new random one; also in the request's log line (r->request_id).
 *   - Cache-Control: "no-store", unless the handler set its own, or marked the reply
 *     immutable (http_reply_immutable): then a strong ETag, "private, max-age=31536000,
 *     immutable", and If-None-Match answered 304 without a body.
 *   - gzip (Content-Encoding, Vary: Accept-Encoding) for JSON, CSV and text bodies of
 *     HTTP_GZIP_MIN to HTTP_GZIP_MAX bytes and for event streams (a deflate flush per read), when the
 *     client's Accept-Encoding allows it.
 */
#define HTTP_GZIP_MIN 1024
#define HTTP_GZIP_MAX (16 << 20) /* larger bodies go as they are: compressing them would hold
                                  * an HTTP thread (about 0.1 s at this size) */

/* ctx: the context pointer given to http_start (borrowed). */
typedef handler_result (*route_handler)(void *ctx, req *r);

/* One row of the route table (the table itself belongs to the caller of http_start). */
typedef struct {
    const char *method;    /* "GET", "POST", "DELETE" (HEAD is answered as GET) */
    const char *pattern;   /* "/v1/jobs/{id}/cost": {name} matches one non-empty segment */
    route_handler handler;
    const char *accepts;   /* comma-separated media types of the body; NULL = no body. A
                            * route with a body runs its handler on the work pool. */
    const char *query;     /* comma-separated query parameters it takes; NULL = none (any
                            * other parameter is a 400 before the handler runs) */
    int open;              /* 1 = needs no API key */
    int lockable;          /* open, unless the check hook locks it (--metrics-auth) */
    int heavy;             /* 1 = compute whose cost the body does not bound (the math
                            * routes): the work pool's heavy lane, served in turn per tenant;
                            * the rest, and bodies up to HTTP_QUICK_BODY, take the quick lane */
    int token;             /* a short-lived read token (?access_token=) may stand in for the
                            * key: for clients that cannot send headers (EventSource) */
} route;

#define HTTP_QUICK_BODY (1 << 20) /* bytes: a body route past this is heavy (its parse is) */

#define REQ_MAX_PARAMS 2
#define REQ_MAX_HEADERS 16

struct req {
    /* ---- set by the framework, read-only for handlers and hooks ---- */
    struct MHD_Connection *conn;
    void *ctx;                  /* the context given to http_start (borrowed) */
    const char *method;         /* borrowed from MHD */
    const char *path;           /* borrowed from MHD, without the query string */
    char media_type[64];        /* Content-Type without parameters, lower case, "" if none */
    char *body;                 /* complete request body, NUL-terminated (may be NULL if 0) */
    size_t body_len;
    char owner[64];             /* tenant (API key name) set by the check hook; "" = none */
    char param[REQ_MAX_PARAMS][64]; /* path parameters, in order: /v1/jobs/{id} -> param[0] */
    int route;                  /* index in the route table, -1 none */
    const route *rt;            /* the matched route, NULL none (OPTIONS, 404, 405) */
    char allow[96];             /* the methods the path answers ("GET, DELETE"), "" unknown */
    uint64_t id;                /* request number, for logs */
    char request_id[132];       /* X-Request-Id: the client's (sane) or a new one */
    double t_start;             /* monotonic seconds */

    /* ---- the reply (set through http_reply_* only; turned into MHD's response when it
     * is queued, so the framework can answer 304 or compress it) ---- */
    unsigned status;            /* 0 = no reply set yet */
    int immutable;              /* http_reply_immutable was called */
    char headers[REQ_MAX_HEADERS][2][160];
    int n_headers;

    /* ---- framework internals ---- */
    size_t body_cap;
    int too_large;              /* body exceeded max_body while streaming */
    int phase;                  /* 0 new, 1 receiving, 2 dispatched, 3 deferred, 4 resumed */
    void (*cleanup)(void *);    /* handler state freed on completion (may be NULL) */
    void *cleanup_arg;
};

/* What the framework calls around the handlers; every hook may be NULL. ctx as for handlers. */
typedef struct {
    /* Before the handler, and for OPTIONS on a known path (r->rt NULL, r->allow set): 0 = go
     * on (the framework answers OPTIONS with 204 + Allow itself), 1 = the hook set the reply
     * (401, 429, a CORS preflight answer...). */
    int (*check)(void *ctx, req *r);
    /* On every reply just before it is queued (CORS headers). */
    void (*decorate)(void *ctx, req *r);
    /* Once per answered request: route index (-1 none), status, seconds since it arrived. */
    void (*observe)(void *ctx, int route, unsigned status, double seconds);
} http_hooks;

/* The daemon's settings (main fills them from its configuration). */
typedef struct {
    const char *bind;          /* address or name */
    int port;                  /* 0 = any free port */
    int64_t max_body;          /* bytes */
    int http_threads;          /* MHD's thread pool */
    int work_threads;          /* the pool behind http_defer and body routes (plus one thread
                                * that serves only the quick lane) */
    int max_pending;           /* queued work per lane before 503 + Retry-After */
    int max_connections, max_per_ip;
    int idle_timeout;          /* seconds */
    int header_timeout;        /* seconds to send a request's headers (and the pace a body
                                * must keep after that long) */
    int64_t connection_memory; /* bytes per connection: headers + read buffer */
    const char *tls_cert, *tls_key; /* PEM file paths; "" or NULL = plain HTTP */
} http_settings;

/* new. Starts the work pool and the daemon. settings, routes, hooks: borrowed, and routes
 * and hooks must outlive the server. Writes the bound port (the real one when settings->port
 * is 0) to *port. NULL with a message in err. */
http_server *http_start(const http_settings *settings, const route *routes, int n_routes,
                        void *ctx, const http_hooks *hooks, int *port, char *err,
                        size_t errlen);
/* Stops accepting connections, finishes deferred work, resumes every suspended connection,
 * stops the daemon and frees it. NULL is a no-op. */
void http_stop(http_server *h);

/* Index of the route for method + path in routes (n of them), filling params; -1 when none,
 * then allow holds the methods the path answers ("GET, DELETE"; "" when the path is unknown). */
int http_route_match(const route *routes, int n, const char *method, const char *path,
                     char params[][64], char *allow, size_t allow_len);

/* ---- query and headers (borrowed strings, NULL if absent) ---- */
const char *http_query(req *r, const char *key);
const char *http_header(req *r, const char *name);

/* ---- replies: each sets the one reply of the request ---- */
/* Steals body. Adds Content-Type: application/json. Printed by api_dump: each number in the
 * shortest text that parses back to the same double. */
handler_result http_reply_json(req *r, unsigned status, json_t *body);
/* RFC 9457 application/problem+json {"type","title","status","detail"}; title from status. */
handler_result http_reply_problem(req *r, unsigned status, const char *detail_fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Copies data. */
handler_result http_reply_data(req *r, unsigned status, const char *content_type,
                               const void *data, size_t len);
/* Steals text (malloc'ed, len bytes; NULL only with len 0): http_reply_data without the copy. */
handler_result http_reply_text(req *r, unsigned status, const char *content_type, char *text,
                               size_t len);
/* An empty reply (204, or 202 without body). */
handler_result http_reply_empty(req *r, unsigned status);
/* A streaming reply (SSE): MHD's content reader callback; see MHD_create_response_from_callback. */
handler_result http_reply_stream(req *r, unsigned status, const char *content_type,
                                 MHD_ContentReaderCallback reader, void *ctx,
                                 MHD_ContentReaderFreeCallback free_ctx);
/* Marks the reply just set (a 200 with a body) as an immutable representation: it can never
 * change for this URL (a finished job's weights, a dataset's metadata). The framework gives it
 * a strong ETag (a digest of the bytes sent), answers If-None-Match with 304, and lets it be
 * cached ("private, max-age=31536000, immutable"). Other statuses are left as they are. */
void http_reply_immutable(req *r);
/* 1 once a reply has been set on r. */
int http_replied(const req *r);
/* Extra header on the reply (Location, Retry-After, Allow, ...); call before or after the
 * reply function, before the handler returns. Silently ignored past REQ_MAX_HEADERS. */
void http_add_header(req *r, const char *name, const char *value);
/* A state pointer freed when the request completes. */
void http_on_complete(req *r, void (*fn)(void *), void *arg);

/* ---- heavy work off the HTTP threads ----
 * Suspends the connection and runs fn(arg, r) on the work pool; fn sets the reply with an
 * http_reply_* function and returns; the framework then resumes the connection and queues
 * the reply from MHD's thread. The handler returns HANDLER_OK right after http_defer. Called
 * from a handler that already runs on the pool (a route with a body), it runs fn at once. */
handler_result http_defer(req *r, void (*fn)(void *arg, req *r), void *arg);

#endif
