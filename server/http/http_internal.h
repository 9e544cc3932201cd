/* http_internal.h — what the framework's own files (http.c: the access handler and the
 * daemon; http_reply.c: replies; http_pool.c: the work pool) share and nobody else sees: the
 * framework's view of a request, the daemon's state, and the calls between those files.
 */
#ifndef BACKPROPD_HTTP_INTERNAL_H
#define BACKPROPD_HTTP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "server/http/http.h"

/* http_guard.c: the connection guard (deadlines, the budget of connections waiting for
 * headers). A guard_conn is a connection's socket context; phases below. */
typedef struct http_guard http_guard;
typedef struct guard_conn guard_conn;
enum { GUARD_WAITING = 0, GUARD_RECEIVING = 1, GUARD_SERVING = 2 };
http_guard *http_guard_new(int max_connections, int header_timeout);
void http_guard_free(http_guard *g);
void http_guard_opened(http_guard *g, struct MHD_Connection *conn, void **socket_context);
void http_guard_closed(http_guard *g, void **socket_context);
void http_guard_phase(http_guard *g, guard_conn *c, int phase);
void http_guard_body(http_guard *g, guard_conn *c, size_t n);

enum { PHASE_NEW = 0, PHASE_RECEIVING = 1, PHASE_DISPATCHED = 2, PHASE_DEFERRED = 3,
       PHASE_RESUMED = 4 };

/* The framework's view of a request: the handlers' req first, then private bookkeeping. */
typedef struct {
    req r;
    http_server *h;
    size_t bytes_in;      /* body bytes received (also past the limit) */
    size_t bytes_out;     /* reply body size, 0 when streamed */
    int queued;           /* the reply was handed to MHD */
    int deferred;         /* http_defer was called (read on the MHD thread only) */
    guard_conn *gc;       /* the connection's guard entry, or NULL */
    /* The reply until it is queued: a body (owned), or a stream's reader. */
    char *out;            /* NULL for an empty body */
    size_t out_len;
    char out_type[96];    /* Content-Type, "" none */
    MHD_ContentReaderCallback reader; /* non-NULL: a stream */
    void *reader_ctx;
    MHD_ContentReaderFreeCallback reader_free;
} req_impl;

typedef struct task {
    struct task *next;
    req_impl *ri;
    void (*fn)(void *arg, req *r);
    void *arg;
} task;

/* One tenant's queued heavy tasks (FIFO), in the ring the heavy lane serves in turn. */
typedef struct tenant_queue {
    struct tenant_queue *next;
    task *head, *tail;
    int n;
    char tenant[80];         /* "key:" + API key name, or "addr:" + client address */
} tenant_queue;

/* The work pool, and the rest of the daemon's state. */
struct http_server {
    pthread_mutex_t lock;
    pthread_cond_t cond;     /* a task was queued, or stopping */
    task *quick_head, *quick_tail; /* the quick lane: one FIFO */
    tenant_queue *heavy;     /* the heavy lane: per-tenant FIFOs, the next to serve first */
    int n_quick, n_heavy;    /* queued (not started) tasks per lane */
    int max_pending;         /* queued tasks per lane at most (a tenant: a quarter of it) */
    int stopping;            /* no new tasks; queued ones are refused, threads exit */
    int n_threads;           /* started threads: the first serves the quick lane only */
    pthread_t *threads;

    atomic_uint_fast64_t next_id;  /* request numbers */
    atomic_int deferred_live;      /* deferred requests not completed yet */
    MHD_socket listen_fd;          /* from MHD_quiesce_daemon: ours to close */
    char *tls_cert, *tls_key;      /* kept alive until the daemon is stopped */
    char last_mhd_error[256];      /* for a clear start-up message */

    struct MHD_Daemon *daemon;
    const route *routes;           /* borrowed from http_start's caller */
    int n_routes;
    void *ctx;                     /* handed to handlers and hooks */
    http_hooks hooks;
    int64_t max_body;
    http_guard *guard;             /* deadlines and the waiting budget of connections */
};

/* http_reply.c: hands r's reply to MHD (decorate hook, caching, compression, extra headers,
 * observe hook). http_reply_release frees a reply that was never queued. */
enum MHD_Result http_queue_reply(req_impl *ri);
void http_reply_release(req_impl *ri);
/* Adds token to the reply's Vary header (one header, "Origin, Accept-Encoding"). */
void http_add_vary(req *r, const char *token);

/* http_request_id.c: r->request_id from the client's X-Request-Id or a new random one. */
void http_request_id(req *r);

/* http_cache.c: ETag / If-None-Match / Cache-Control of a reply about to be queued. */
void http_cache_apply(req_impl *ri);

/* http_gzip.c: compresses the body, or wraps the stream, when the client accepts gzip and
 * the type is worth it; adds Vary and Content-Encoding. Returns the ETag suffix ("-gz") to
 * use for a compressed body via *gz (1 compressed, 0 not). */
void http_gzip_apply(req_impl *ri, int *gz);
/* 1 when a reply of this Content-Type is a candidate for gzip. */
int http_gzip_type(const char *content_type);
/* 1 when an Accept-Encoding value allows gzip. */
int http_gzip_accepts(const char *accept_encoding);

/* http_pool.c: starts n threads and one for the quick lane (0, or -1 with err; those started
 * are joined by drain); stops taking tasks, refuses the queued ones (503) and joins the
 * threads once the running tasks end; frees the state. */
int http_pool_start(http_server *p, int n, char *err, size_t errlen);
void http_pool_drain(http_server *p);
void http_pool_free(http_server *p);

#endif
