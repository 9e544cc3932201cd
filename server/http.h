/* http.h — the request framework between libmicrohttpd and backpropd's handlers.
 *
 * One `req` per HTTP request, created on MHD's first callback and freed ONLY in the
 * request-completed callback. The framework (http.c):
 *   - first call: Content-Length over --max-body -> 413 at once (the only early replies are
 *     413 and a refused Transfer-Encoding); otherwise it just allocates the req;
 *   - following calls: appends the body (chunked bodies are counted and cut at the limit);
 *   - last call (upload done): matches the route table (404 / 405 with Allow), runs the
 *     security hook (auth, CORS, rate limits), checks Content-Type against the route (415),
 *     then calls the handler.
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

typedef struct server server;
typedef struct req req;

typedef enum {
    HANDLER_OK = 0,    /* a reply was set (or the request was deferred / streams) */
    HANDLER_CLOSE = 1  /* drop the connection without a reply (hopeless input) */
} handler_result;

typedef handler_result (*route_handler)(server *s, req *r);

#define REQ_MAX_PARAMS 2
#define REQ_MAX_HEADERS 8

struct req {
    /* ---- set by the framework, read-only for handlers ---- */
    struct MHD_Connection *conn;
    server *srv;
    const char *method;         /* borrowed from MHD */
    const char *path;           /* borrowed from MHD, without the query string */
    char media_type[64];        /* Content-Type without parameters, lower case, "" if none */
    char *body;                 /* complete request body, NUL-terminated (may be NULL if 0) */
    size_t body_len;
    char owner[64];             /* tenant (API key name) set by the security hook; "" = none */
    char param[REQ_MAX_PARAMS][64]; /* path parameters, in order: /v1/jobs/{id} -> param[0] */
    int route;                  /* index in the route table, -1 none */
    uint64_t id;                /* request number, for logs */
    double t_start;             /* monotonic seconds */

    /* ---- the reply (set through http_reply_* only) ---- */
    unsigned status;
    struct MHD_Response *response;
    char headers[REQ_MAX_HEADERS][2][160];
    int n_headers;

    /* ---- framework internals ---- */
    size_t body_cap;
    int too_large;              /* body exceeded --max-body while streaming */
    int phase;                  /* 0 new, 1 receiving, 2 dispatched, 3 deferred, 4 resumed */
    void (*cleanup)(void *);    /* handler state freed on completion (may be NULL) */
    void *cleanup_arg;
};

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
/* An empty reply (204, or 202 without body). */
handler_result http_reply_empty(req *r, unsigned status);
/* A streaming reply (SSE): MHD's content reader callback; see MHD_create_response_from_callback. */
handler_result http_reply_stream(req *r, unsigned status, const char *content_type,
                                 MHD_ContentReaderCallback reader, void *ctx,
                                 MHD_ContentReaderFreeCallback free_ctx);
/* Extra header on the reply (Location, Retry-After, Allow, ...); call before or after the
 * reply function, before the handler returns. Silently ignored past REQ_MAX_HEADERS. */
void http_add_header(req *r, const char *name, const char *value);
/* A state pointer freed when the request completes. */
void http_on_complete(req *r, void (*fn)(void *), void *arg);

/* ---- heavy work off the HTTP threads ----
 * Suspends the connection and runs fn(arg, r) on the math pool; fn sets the reply with an
 * http_reply_* function and returns; the framework then resumes the connection and queues
 * the reply from MHD's thread. The handler returns HANDLER_OK right after http_defer. */
handler_result http_defer(req *r, void (*fn)(void *arg, req *r), void *arg);

#endif
