/* http.c — the request framework of http.h on top of libmicrohttpd 0.9.75: the daemon, the
 * access handler (body limits, routing, security, Content-Type, handlers), replies, the
 * request-completed callback (the ONLY place a req is freed), per-request logs and metrics,
 * and the math pool behind http_defer.
 *
 * MHD calls the access handler several times per request:
 *   1st call   *con_cls == NULL: we allocate the req and check the headers. Only a body that
 *              is too large (Content-Length) or a refused Transfer-Encoding is answered here:
 *              a reply queued on the first call makes MHD 0.9.75 drop keep-alive.
 *   body calls *upload_data_size > 0: appended to r->body (cut off with 413 at --max-body).
 *   last call  *upload_data_size == 0: route, security, Content-Type, handler, queue reply.
 *   resumed    after http_defer's work ran on the math pool: queue the reply it set.
 *
 * DESIGN of the math pool (in the manner of Redis' bio.c): one FIFO of tasks guarded by one
 * mutex and one condition variable. http_defer suspends the connection, then locks, appends,
 * signals and unlocks. A pool thread locks, pops, unlocks, runs the task WITHOUT the lock,
 * then resumes the connection (the last time it touches the req). On shutdown the pool stops
 * taking new tasks (they get 503), finishes those already queued, and its threads are
 * joined, so every suspended connection has been resumed before MHD_stop_daemon.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "routes.h"
#include "security.h"
#include "server.h"

enum { PHASE_NEW = 0, PHASE_RECEIVING = 1, PHASE_DISPATCHED = 2, PHASE_DEFERRED = 3,
       PHASE_RESUMED = 4 };

#define MAX_TLS_FILE (1024 * 1024)
#define DISCARD_LIMIT (16u * 1024 * 1024) /* body bytes read and dropped past --max-body */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* The framework's view of a request: the handlers' req first, then private bookkeeping. */
typedef struct {
    req r;
    size_t bytes_in;      /* body bytes received (also past the limit) */
    size_t bytes_out;     /* reply body size, 0 when streamed */
    int queued;           /* the reply was handed to MHD */
    int deferred;         /* http_defer was called (read on the MHD thread only) */
    int early;            /* replied on the first call (413, refused Transfer-Encoding) */
    char allow[96];       /* methods of the path when the method did not match */
    int path_known;
} req_impl;

typedef struct task {
    struct task *next;
    req_impl *ri;
    void (*fn)(void *arg, req *r);
    void *arg;
} task;

/* The math pool, and the rest of the daemon's state owned by this file. */
struct mathpool {
    pthread_mutex_t lock;
    pthread_cond_t cond;     /* a task was queued, or stopping */
    task *head, *tail;
    int stopping;            /* no new tasks; threads exit once the queue is empty */
    int n_threads;
    pthread_t *threads;

    atomic_uint_fast64_t next_id;  /* request numbers */
    atomic_int deferred_live;      /* deferred requests not completed yet */
    MHD_socket listen_fd;          /* from MHD_quiesce_daemon: ours to close */
    char *tls_cert, *tls_key;      /* kept alive until the daemon is stopped */
    char last_mhd_error[256];      /* for a clear start-up message */
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Copies s for a log line or a message: printable ASCII except space, quote, backslash and
 * percent; the others as %XX (so any bytes become safe, valid UTF-8). */
static void log_safe(char *out, size_t len, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; s && *s && o + 4 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if (c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '%') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

/* ------------------------------------------------------------------ replies */

static void set_reply(req *r, unsigned status, struct MHD_Response *resp, size_t len)
{
    req_impl *ri = (req_impl *)(void *)r;
    if (r->response) { /* a second reply replaces the first (a handler bug, said in the log) */
        log_event(LOG_DEBUG, "reply_replaced", "id=%llu old=%u new=%u",
                  (unsigned long long)r->id, r->status, status);
        MHD_destroy_response(r->response);
    }
    r->response = resp;
    r->status = status;
    ri->bytes_out = len;
}

/* The last resort when even a reply cannot be built: an empty 500 from static memory. */
static void reply_oom(req *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, (void *)(uintptr_t) "", MHD_RESPMEM_PERSISTENT);
    set_reply(r, 500, resp, 0);
}

handler_result http_reply_data(req *r, unsigned status, const char *content_type,
                               const void *data, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, (void *)(uintptr_t)(len ? data : ""), MHD_RESPMEM_MUST_COPY);
    if (!resp) {
        reply_oom(r);
        return HANDLER_OK;
    }
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    set_reply(r, status, resp, len);
    return HANDLER_OK;
}

/* Takes ownership of text (malloc'd, len bytes). */
static handler_result reply_owned_text(req *r, unsigned status, const char *content_type,
                                       char *text, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        reply_oom(r);
        return HANDLER_OK;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    set_reply(r, status, resp, len);
    return HANDLER_OK;
}

handler_result http_reply_json(req *r, unsigned status, json_t *body)
{
    if (!body)
        return http_reply_problem(r, 500, "out of memory building the reply");
    size_t len;
    char *text = api_dump(body, &len);
    json_decref(body);
    if (!text)
        return http_reply_problem(r, 500, "could not encode the reply");
    return reply_owned_text(r, status, "application/json", text, len);
}

handler_result http_reply_problem(req *r, unsigned status, const char *detail_fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, detail_fmt);
    vsnprintf(detail, sizeof detail, detail_fmt, ap);
    va_end(ap);
    json_t *j = api_problem_json(status, detail);
    size_t len;
    char *text = j ? api_dump(j, &len) : NULL;
    json_decref(j);
    if (!text) {
        reply_oom(r);
        return HANDLER_OK;
    }
    return reply_owned_text(r, status, "application/problem+json", text, len);
}

handler_result http_reply_empty(req *r, unsigned status)
{
    return http_reply_data(r, status, NULL, NULL, 0);
}

handler_result http_reply_stream(req *r, unsigned status, const char *content_type,
                                 MHD_ContentReaderCallback reader, void *ctx,
                                 MHD_ContentReaderFreeCallback free_ctx)
{
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, reader, ctx, free_ctx);
    if (!resp) {
        if (free_ctx)
            free_ctx(ctx);
        return http_reply_problem(r, 500, "could not start the stream");
    }
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    set_reply(r, status, resp, 0);
    return HANDLER_OK;
}

void http_add_header(req *r, const char *name, const char *value)
{
    if (r->n_headers >= REQ_MAX_HEADERS || !name || !value)
        return;
    snprintf(r->headers[r->n_headers][0], sizeof r->headers[0][0], "%s", name);
    snprintf(r->headers[r->n_headers][1], sizeof r->headers[0][1], "%s", value);
    r->n_headers++;
}

void http_on_complete(req *r, void (*fn)(void *), void *arg)
{
    r->cleanup = fn;
    r->cleanup_arg = arg;
}

const char *http_query(req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* Hands the reply to MHD: CORS and extra headers first. */
static enum MHD_Result queue_reply(server *s, req_impl *ri)
{
    req *r = &ri->r;
    if (!r->response)
        http_reply_problem(r, 500, "the handler of %s %s set no reply", r->method, r->path);
    security_decorate(s, r);
    for (int i = 0; i < r->n_headers; i++)
        MHD_add_response_header(r->response, r->headers[i][0], r->headers[i][1]);
    /* Counted here, not on completion: a client that has its answer sees it in /metrics. */
    metrics_request(s->metrics, r->route, r->status, now_seconds() - r->t_start);
    enum MHD_Result ret = MHD_queue_response(r->conn, r->status, r->response);
    MHD_destroy_response(r->response); /* MHD holds its own reference now */
    r->response = NULL;
    ri->queued = 1;
    return ret;
}

/* ------------------------------------------------------------------ math pool */

static void *pool_main(void *arg)
{
    mathpool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        task *t = p->head;
        if (!t) { /* stopping and nothing left */
            pthread_mutex_unlock(&p->lock);
            break;
        }
        p->head = t->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);

        req *r = &t->ri->r;
        t->fn(t->arg, r);
        if (!r->response)
            http_reply_problem(r, 500, "deferred work for %s %s set no reply", r->method,
                               r->path);
        r->phase = PHASE_RESUMED;
        struct MHD_Connection *conn = r->conn;
        free(t);
        MHD_resume_connection(conn); /* after this the req belongs to MHD's thread again */
    }
    return NULL;
}

handler_result http_defer(req *r, void (*fn)(void *arg, req *r), void *arg)
{
    mathpool *p = r->srv->math;
    req_impl *ri = (req_impl *)(void *)r;
    task *t = malloc(sizeof *t);
    if (!t)
        return http_reply_problem(r, 503, "out of memory: try again later");
    t->next = NULL;
    t->ri = ri;
    t->fn = fn;
    t->arg = arg;

    pthread_mutex_lock(&p->lock);
    int stopping = p->stopping;
    if (!stopping) {
        /* Suspended before a pool thread can see the task, so resume follows suspend. */
        r->phase = PHASE_DEFERRED;
        ri->deferred = 1;
        atomic_fetch_add(&p->deferred_live, 1);
        MHD_suspend_connection(r->conn);
        if (p->tail)
            p->tail->next = t;
        else
            p->head = t;
        p->tail = t;
        pthread_cond_signal(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
    if (stopping) {
        free(t);
        http_add_header(r, "Retry-After", "5");
        return http_reply_problem(r, 503, "the server is shutting down: try again shortly");
    }
    /* t is in the queue now: the pool thread that pops it frees it */
    /* cppcheck-suppress memleak */
    return HANDLER_OK;
}

static void pool_free(mathpool *p)
{
    if (!p)
        return;
    free(p->threads);
    free(p->tls_cert);
    free(p->tls_key);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* Stops taking tasks, runs what is queued, joins the threads. */
static void pool_drain(mathpool *p)
{
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    p->n_threads = 0;
}

/* ------------------------------------------------------------------ the access handler */

/* "Application/JSON; charset=utf-8" -> "application/json" */
static void parse_media_type(const char *ct, char *out, size_t len)
{
    size_t o = 0;
    if (ct) {
        while (*ct == ' ' || *ct == '\t')
            ct++;
        for (; *ct && *ct != ';' && *ct != ' ' && *ct != '\t' && o + 1 < len; ct++) {
            char c = *ct;
            out[o++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
    }
    out[o] = '\0';
}

/* 1 if media type mt is in the comma-separated list. */
static int accepts(const char *list, const char *mt)
{
    size_t n = strlen(mt);
    while (*list) {
        size_t k = strcspn(list, ",");
        if (k == n && n && strncmp(list, mt, n) == 0)
            return 1;
        list += k;
        if (*list == ',')
            list++;
    }
    return 0;
}

/* The first call: allocate, look at the headers; an early reply only for the body rules. */
static int first_call_checks(server *s, req_impl *ri)
{
    req *r = &ri->r;
    const char *te = http_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (te && strcasecmp(te, "chunked") != 0 && strcasecmp(te, "identity") != 0) {
        char safe[64];
        log_safe(safe, sizeof safe, te);
        http_reply_problem(r, 501,
                           "Transfer-Encoding '%s' is not supported: send the body as is "
                           "(Content-Length) or chunked",
                           safe);
        return 1;
    }
    const char *cl = http_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && (!te || strcasecmp(te, "chunked") != 0)) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno == ERANGE || n > (unsigned long long)s->cfg.max_body) {
            http_reply_problem(r, 413,
                               "the request body is %s bytes; the limit (--max-body) is %lld "
                               "bytes",
                               errno == ERANGE ? "too many" : cl, (long long)s->cfg.max_body);
            return 1;
        }
    }
    return 0;
}

/* Appends body bytes; 1 when the limit was crossed (the 413 reply is set). */
static int append_body(server *s, req_impl *ri, const char *data, size_t n)
{
    req *r = &ri->r;
    ri->bytes_in += n;
    if ((unsigned long long)r->body_len + n > (unsigned long long)s->cfg.max_body) {
        r->too_large = 1;
        free(r->body);
        r->body = NULL;
        r->body_len = r->body_cap = 0;
        http_reply_problem(r, 413, "the request body is over the limit (--max-body) of %lld "
                                   "bytes",
                           (long long)s->cfg.max_body);
        return 1;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap * 2 : 16384;
        /* A declared Content-Length (already checked against the limit) sizes it at once. */
        const char *cl = http_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (!r->body_cap && cl) {
            unsigned long long want = strtoull(cl, NULL, 10);
            if (want >= r->body_len + n && want <= (unsigned long long)s->cfg.max_body)
                cap = (size_t)want + 1;
        }
        while (cap < r->body_len + n + 1)
            cap *= 2;
        if (cap > (size_t)s->cfg.max_body + 1)
            cap = (size_t)s->cfg.max_body + 1;
        char *p = realloc(r->body, cap);
        if (!p) {
            http_reply_problem(r, 503, "out of memory receiving the body: try again later");
            r->too_large = 1;
            return 1;
        }
        r->body = p;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return 0;
}

/* Route, security, Content-Type, handler. Returns the handler's result. */
static handler_result dispatch(server *s, req_impl *ri)
{
    req *r = &ri->r;
    if (r->route < 0) {
        int options = strcmp(r->method, MHD_HTTP_METHOD_OPTIONS) == 0;
        if (ri->path_known && options) {
            if (security_check(s, r, 1) == 0 && !r->response) {
                char allow[128];
                snprintf(allow, sizeof allow, "%s, OPTIONS", ri->allow);
                http_add_header(r, "Allow", allow);
                http_reply_empty(r, 204);
            }
        } else if (ri->path_known) {
            char allow[128];
            snprintf(allow, sizeof allow, "%s, OPTIONS", ri->allow);
            http_add_header(r, "Allow", allow);
            char path[160], method[32];
            log_safe(path, sizeof path, r->path);
            log_safe(method, sizeof method, r->method);
            http_reply_problem(r, 405, "%s is not allowed on %s: use %s", method, path,
                               ri->allow);
        } else {
            char safe[160];
            log_safe(safe, sizeof safe, r->path);
            http_reply_problem(r, 404, "no such resource: %s", safe);
        }
        return HANDLER_OK;
    }
    const route *rt = &routes[r->route];
    int open = rt->open && !(s->cfg.metrics_auth && rt->handler == h_metrics);
    if (security_check(s, r, open) != 0) {
        if (!r->response)
            http_reply_problem(r, 403, "refused");
        return HANDLER_OK;
    }
    if (rt->accepts && (r->body_len > 0 || r->media_type[0]) &&
        !accepts(rt->accepts, r->media_type)) {
        char list[128];
        size_t o = 0;
        for (const char *a = rt->accepts; *a && o + 3 < sizeof list; a++) {
            if (*a == ',') {
                list[o++] = ',';
                list[o++] = ' ';
            } else {
                list[o++] = *a;
            }
        }
        list[o] = '\0';
        http_add_header(r, "Accept-Post", list);
        char got[80];
        log_safe(got, sizeof got, r->media_type);
        http_reply_problem(r, 415, "Content-Type must be %s (got %s%s%s)", list,
                           got[0] ? "'" : "", got[0] ? got : "none", got[0] ? "'" : "");
        return HANDLER_OK;
    }
    return rt->handler(s, r);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    (void)version;
    server *s = cls;
    req_impl *ri = *con_cls;

    if (!ri) {
        ri = calloc(1, sizeof *ri);
        if (!ri)
            return MHD_NO;
        *con_cls = ri;
        req *r = &ri->r;
        r->conn = conn;
        r->srv = s;
        r->method = method;
        r->path = url;
        r->id = atomic_fetch_add(&s->math->next_id, 1) + 1;
        r->t_start = now_seconds();
        r->phase = PHASE_RECEIVING;
        parse_media_type(http_header(r, MHD_HTTP_HEADER_CONTENT_TYPE), r->media_type,
                         sizeof r->media_type);
        const char *match_method = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0 ? "GET" : method;
        r->route = routes_match(match_method, url, r->param, &ri->path_known, ri->allow,
                                sizeof ri->allow);
        if (first_call_checks(s, ri)) {
            ri->early = 1;
            r->phase = PHASE_DISPATCHED;
            return queue_reply(s, ri);
        }
        return MHD_YES;
    }

    req *r = &ri->r;
    if (r->phase == PHASE_RESUMED)
        return queue_reply(s, ri);
    if (r->phase != PHASE_RECEIVING) /* not expected: already answered or suspended */
        return MHD_YES;

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_large) {
            /* MHD 0.9.75 cannot queue a reply in the middle of a body: the rest is read and
             * dropped, and the 413 set at the limit goes out after it. A body that goes on
             * far past the limit is cut by closing the connection. */
            ri->bytes_in += n;
            return ri->bytes_in > (size_t)s->cfg.max_body + DISCARD_LIMIT ? MHD_NO : MHD_YES;
        }
        append_body(s, ri, upload_data, n);
        return MHD_YES;
    }

    r->phase = PHASE_DISPATCHED;
    if (r->too_large) /* the 413 (or 503) set when the body crossed the limit */
        return queue_reply(s, ri);
    handler_result hr = dispatch(s, ri);
    if (hr == HANDLER_CLOSE) {
        if (ri->deferred) /* a handler must not defer and close; keep MHD's rules */
            return MHD_YES;
        return MHD_NO;
    }
    if (ri->deferred) /* resumed later by the pool; the reply is queued then */
        return MHD_YES;
    return queue_reply(s, ri);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    server *s = cls;
    req_impl *ri = *con_cls;
    if (!ri)
        return;
    *con_cls = NULL;
    req *r = &ri->r;
    double secs = now_seconds() - r->t_start;
    unsigned status = ri->queued ? r->status : 0;

    char path[200], method[32];
    log_safe(path, sizeof path, r->path);
    log_safe(method, sizeof method, r->method);
    static const char *const ends[] = {"ok", "error", "timeout", "shutdown", "read_error",
                                       "client_abort"};
    const char *end = (unsigned)toe < sizeof ends / sizeof ends[0] ? ends[toe] : "other";
    log_event(LOG_INFO, "request",
              "id=%llu method=%s path=%s route=%s status=%u ms=%.3f in=%zu out=%zu%s%s",
              (unsigned long long)r->id, method, path,
              r->route >= 0 ? routes[r->route].pattern : "-", status, secs * 1e3, ri->bytes_in,
              ri->bytes_out, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " end=",
              toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : end);

    if (r->cleanup)
        r->cleanup(r->cleanup_arg);
    if (r->response)
        MHD_destroy_response(r->response);
    if (ri->deferred)
        atomic_fetch_sub(&s->math->deferred_live, 1);
    free(r->body);
    free(ri);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    mathpool *p = cls;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    for (char *c = msg; *c; c++)
        if (*c == '"' || *c == '\n' || *c == '\\')
            *c = '\'';
    if (p && !p->last_mhd_error[0]) /* the first error says most ("bind: in use") */
        snprintf(p->last_mhd_error, sizeof p->last_mhd_error, "%s", msg);
    log_event(LOG_WARN, "mhd", "msg=\"%s\"", msg);
}

/* ------------------------------------------------------------------ start / stop */

/* new: the whole file (NUL-terminated), NULL with err. */
static char *read_small_file(const char *path, const char *what, char *err, size_t errlen)
{
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    buf = malloc(MAX_TLS_FILE + 1);
    if (!buf) {
        snprintf(err, errlen, "%s %s: out of memory", what, path);
        goto cleanup;
    }
    size_t n = fread(buf, 1, MAX_TLS_FILE + 1, f);
    if (ferror(f) || n == 0 || n > MAX_TLS_FILE) {
        snprintf(err, errlen, "%s %s: %s", what, path,
                 ferror(f) ? strerror(errno) : n == 0 ? "empty file" : "larger than 1 MiB");
        free(buf);
        buf = NULL;
        goto cleanup;
    }
    buf[n] = '\0';
cleanup:
    fclose(f);
    return buf;
}

int http_start(server *s, int *port, char *err, size_t errlen)
{
    const config *cfg = &s->cfg;
    struct addrinfo *ai = NULL;
    mathpool *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->listen_fd = MHD_INVALID_SOCKET;
    s->math = p;

    p->threads = calloc((size_t)cfg->math_threads, sizeof *p->threads);
    if (!p->threads) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < cfg->math_threads; i++) {
        int e = pthread_create(&p->threads[i], NULL, pool_main, p);
        if (e) {
            snprintf(err, errlen, "math thread: %s", strerror(e));
            goto fail;
        }
        p->n_threads++;
    }

    /* The address: a literal, or a name such as localhost. */
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", cfg->port);
    int gai = getaddrinfo(cfg->bind, port_text, &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(err, errlen, "--bind %s: %s", cfg->bind, gai_strerror(gai));
        goto fail;
    }

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        flags |= MHD_USE_EPOLL;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;

    struct MHD_OptionItem opts[16];
    int n = 0;
    /* The logger first, or MHD prints what comes before it to stderr its own way. */
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, p};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_per_ip,
                                        NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                        (intptr_t)cfg->connection_memory, NULL};
    if (cfg->http_threads > 1)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, cfg->http_threads,
                                            NULL};
    if (cfg->tls_cert[0]) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, errlen, "--tls-cert: this libmicrohttpd was built without TLS "
                                  "support, so HTTPS is not available here");
            goto fail;
        }
        p->tls_cert = read_small_file(cfg->tls_cert, "--tls-cert", err, errlen);
        if (!p->tls_cert)
            goto fail;
        p->tls_key = read_small_file(cfg->tls_key, "--tls-key", err, errlen);
        if (!p->tls_key)
            goto fail;
        static char priorities[] = TLS_PRIORITIES;
        flags |= MHD_USE_TLS;
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, p->tls_cert};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, p->tls_key};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, priorities};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    s->daemon = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_access, s,
                                 MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, errlen, "could not listen on %s port %d%s%s", cfg->bind, cfg->port,
                 p->last_mhd_error[0] ? ": " : "", p->last_mhd_error);
        goto fail;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    *port = info && info->port ? info->port : cfg->port;
    freeaddrinfo(ai);
    log_event(LOG_DEBUG, "http_start",
              "epoll=%d http_threads=%d math_threads=%d tls=%d max_connections=%d "
              "max_per_ip=%d idle_timeout=%d max_body=%lld",
              (flags & MHD_USE_EPOLL) != 0, cfg->http_threads, cfg->math_threads,
              cfg->tls_cert[0] != '\0', cfg->max_connections, cfg->max_per_ip,
              cfg->idle_timeout, (long long)cfg->max_body);
    return 0;

fail:
    if (ai)
        freeaddrinfo(ai);
    pool_drain(p);
    pool_free(p);
    s->math = NULL;
    return -1;
}

void http_stop(server *s)
{
    mathpool *p = s->math;
    if (!p)
        return;
    if (s->daemon)
        p->listen_fd = MHD_quiesce_daemon(s->daemon); /* no new connections */
    pool_drain(p); /* every deferred connection has been resumed after this */
    /* Give resumed connections a moment to send the replies they now hold. */
    for (int i = 0; i < 200 && atomic_load(&p->deferred_live) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (s->daemon) {
        MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
    }
    if (p->listen_fd != MHD_INVALID_SOCKET)
        close(p->listen_fd);
    pool_free(p);
    s->math = NULL;
}
