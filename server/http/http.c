/* http.c — the request framework of http.h on top of libmicrohttpd 0.9.75: the daemon, the
 * route matcher, and the access handler (body limits, routing, the check hook, query
 * parameters, Content-Type, handlers), the request-completed callback (the ONLY place a req
 * is freed) with its log line. Replies are in http_reply.c, the work pool in http_pool.c,
 * deadlines for slow clients in http_guard.c.
 *
 * MHD calls the access handler several times per request:
 *   1st call   *con_cls == NULL: we allocate the req and check the headers. Only a body that
 *              is too large (Content-Length) or a refused Transfer-Encoding is answered here:
 *              a reply queued on the first call makes MHD 0.9.75 drop keep-alive.
 *   body calls *upload_data_size > 0: appended to r->body (cut off with 413 at --max-body).
 *   last call  *upload_data_size == 0: route, check hook, query, Content-Type, then the
 *              handler here (no body) or on the work pool (a route with a body), queue reply.
 *   resumed    after deferred work ran on the work pool: queue the reply it set.
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

#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/common/text.h"
#include "server/http/http_internal.h"

#define MAX_TLS_FILE (1024 * 1024)
#define DISCARD_LIMIT (16u * 1024 * 1024) /* body bytes read and dropped past max_body */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

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

/* 1 if item (n bytes) is in the comma-separated list (NULL = empty). */
static int in_list(const char *list, const char *item, size_t n)
{
    while (list && *list) {
        size_t k = strcspn(list, ",");
        if (k == n && n && strncmp(list, item, n) == 0)
            return 1;
        list += k;
        if (*list == ',')
            list++;
    }
    return 0;
}

/* "a,b" -> "a, b" into out (for messages and headers). */
static void list_pretty(const char *list, char *out, size_t len)
{
    size_t o = 0;
    for (const char *a = list; a && *a && o + 3 < len; a++) {
        if (*a == ',') {
            out[o++] = ',';
            out[o++] = ' ';
        } else {
            out[o++] = *a;
        }
    }
    out[o] = '\0';
}

/* ------------------------------------------------------------------ the route table */

/* 1 if path matches pattern; captures {…} segments into params. */
static int match(const char *pattern, const char *path, char params[][64])
{
    int np = 0;
    while (*pattern && *path) {
        if (*pattern == '{') {
            const char *pe = strchr(pattern, '}');
            size_t n = strcspn(path, "/");
            if (!pe || n == 0 || n >= 64 || np >= REQ_MAX_PARAMS)
                return 0;
            memcpy(params[np], path, n);
            params[np][n] = '\0';
            np++;
            pattern = pe + 1;
            path += n;
        } else if (*pattern++ != *path++) {
            return 0;
        }
    }
    return *pattern == '\0' && *path == '\0';
}

int http_route_match(const route *routes, int n, const char *method, const char *path,
                     char params[][64], char *allow, size_t allow_len)
{
    char scratch[REQ_MAX_PARAMS][64];
    size_t used = 0;
    if (allow_len)
        allow[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (!match(routes[i].pattern, path, scratch))
            continue;
        if (strcmp(routes[i].method, method) == 0) {
            memcpy(params, scratch, sizeof scratch);
            return i;
        }
        if (used < allow_len) {
            int w = snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "",
                             routes[i].method);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------ the access handler */

/* Counts the Content-Length headers of a request and whether their values differ. */
typedef struct {
    int n;
    int differ;
    const char *first;
} cl_count;

static enum MHD_Result count_content_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                            const char *value)
{
    (void)kind;
    cl_count *c = cls;
    if (key && strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (c->n++ == 0)
            c->first = value;
        else if (!c->first || !value || strcmp(c->first, value) != 0)
            c->differ = 1;
    }
    return MHD_YES;
}

/* The first call: allocate, look at the headers; an early reply for the framing and body
 * rules. A request whose length is ambiguous is refused before any of its body is read: a
 * Transfer-Encoding other than chunked (identity included: RFC 9112 removed it, and MHD would
 * wait for a body it cannot delimit) is 501; Content-Length headers that disagree are 400 (a
 * proxy that reads the last one would see another request, the smuggling pattern); HTTP/1.1
 * without Host is 400 (RFC 9112 §3.2). */
static int first_call_checks(req_impl *ri, const char *version)
{
    req *r = &ri->r;
    int64_t max_body = ri->h->max_body;
    const char *te = http_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (te && strcasecmp(te, "chunked") != 0) {
        char safe[64];
        text_log_safe(safe, sizeof safe, te);
        http_reply_problem(r, 501,
                           "Transfer-Encoding '%s' is not supported: send the body as is "
                           "(Content-Length) or chunked",
                           safe);
        return 1;
    }
    cl_count count = {0, 0, NULL};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_content_length, &count);
    if (count.differ) {
        http_reply_problem(r, 400, "Content-Length: the request has %d Content-Length headers "
                                   "that disagree; send one",
                           count.n);
        return 1;
    }
    if (version && strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
        !http_header(r, MHD_HTTP_HEADER_HOST)) {
        http_reply_problem(r, 400, "Host: an HTTP/1.1 request must carry a Host header");
        return 1;
    }
    const char *cl = http_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && !te) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno == ERANGE || n > (unsigned long long)max_body) {
            http_reply_problem(r, 413,
                               "the request body is %s bytes; the limit (--max-body) is %lld "
                               "bytes",
                               errno == ERANGE ? "too many" : cl, (long long)max_body);
            return 1;
        }
    }
    return 0;
}

/* Appends body bytes; 1 when the limit was crossed (the 413 reply is set). */
static int append_body(req_impl *ri, const char *data, size_t n)
{
    req *r = &ri->r;
    int64_t max_body = ri->h->max_body;
    ri->bytes_in += n;
    if ((unsigned long long)r->body_len + n > (unsigned long long)max_body) {
        r->too_large = 1;
        free(r->body);
        r->body = NULL;
        r->body_len = r->body_cap = 0;
        http_reply_problem(r, 413, "the request body is over the limit (--max-body) of %lld "
                                   "bytes",
                           (long long)max_body);
        return 1;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap * 2 : 16384;
        /* A declared Content-Length (already checked against the limit) sizes it at once. */
        const char *cl = http_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (!r->body_cap && cl) {
            unsigned long long want = strtoull(cl, NULL, 10);
            if (want >= r->body_len + n && want <= (unsigned long long)max_body)
                cap = (size_t)want + 1;
        }
        while (cap < r->body_len + n + 1)
            cap *= 2;
        if (cap > (size_t)max_body + 1)
            cap = (size_t)max_body + 1;
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

/* No route for method + path: OPTIONS on a known path (the check hook may answer it as a
 * CORS preflight), 405 with Allow, or 404. */
static void answer_unrouted(req_impl *ri)
{
    req *r = &ri->r;
    const http_hooks *hk = &ri->h->hooks;
    char allow[128];
    snprintf(allow, sizeof allow, "%s, OPTIONS", r->allow);
    if (r->allow[0] && strcmp(r->method, MHD_HTTP_METHOD_OPTIONS) == 0) {
        if ((!hk->check || hk->check(r->ctx, r) == 0) && !r->status) {
            http_add_header(r, "Allow", allow);
            http_reply_empty(r, 204);
        }
    } else if (r->allow[0]) {
        http_add_header(r, "Allow", allow);
        char path[160], method[32];
        text_log_safe(path, sizeof path, r->path);
        text_log_safe(method, sizeof method, r->method);
        http_reply_problem(r, 405, "%s is not allowed on %s: use %s", method, path, r->allow);
    } else {
        char safe[160];
        text_log_safe(safe, sizeof safe, r->path);
        http_reply_problem(r, 404, "no such resource: %s", safe);
    }
}

/* MHD's iterator over the query: stops at the first parameter the route does not take. */
static enum MHD_Result query_known(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    (void)value;
    req *r = cls;
    if (in_list(r->rt->query, key, strlen(key)))
        return MHD_YES;
    char safe[64], list[160];
    text_log_safe(safe, sizeof safe, key);
    list_pretty(r->rt->query, list, sizeof list);
    if (list[0])
        http_reply_problem(r, 400, "query parameter \"%s\" is not supported here (supported: "
                                   "%s)", safe, list);
    else
        http_reply_problem(r, 400, "query parameter \"%s\" is not supported here (this route "
                                   "takes none)", safe);
    return MHD_NO;
}

/* 0 when the body's Content-Type is one the route takes (or there is no body), else 1 with
 * the 415 set. */
static int check_media_type(req *r)
{
    const route *rt = r->rt;
    if (!rt->accepts || (r->body_len == 0 && !r->media_type[0]) ||
        in_list(rt->accepts, r->media_type, strlen(r->media_type)))
        return 0;
    char list[128];
    list_pretty(rt->accepts, list, sizeof list);
    http_add_header(r, "Accept-Post", list);
    char got[80];
    text_log_safe(got, sizeof got, r->media_type);
    http_reply_problem(r, 415, "Content-Type must be %s (got %s%s%s)", list, got[0] ? "'" : "",
                       got[0] ? got : "none", got[0] ? "'" : "");
    return 1;
}

/* Runs a body route's handler on the work pool. */
static void run_on_pool(void *arg, req *r)
{
    (void)arg;
    if (r->rt->handler(r->ctx, r) == HANDLER_CLOSE && !r->status)
        http_reply_problem(r, 400, "the request could not be handled");
}

/* Route, check hook, query parameters, Content-Type, then the handler: here for a route
 * without a body, on the work pool for one with a body. Returns the handler's result. */
static handler_result dispatch(req_impl *ri)
{
    req *r = &ri->r;
    const http_hooks *hk = &ri->h->hooks;
    if (!r->rt) {
        answer_unrouted(ri);
        return HANDLER_OK;
    }
    if (hk->check && hk->check(r->ctx, r) != 0) {
        if (!r->status)
            http_reply_problem(r, 403, "refused");
        return HANDLER_OK;
    }
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_known, r);
    if (r->status || check_media_type(r))
        return HANDLER_OK;
    if (r->rt->accepts)
        return http_defer(r, run_on_pool, NULL);
    return r->rt->handler(r->ctx, r);
}

/* MHD's first call for a request: the req, its route, the early body checks. */
static enum MHD_Result begin_request(http_server *h, struct MHD_Connection *conn,
                                     const char *url, const char *method, const char *version,
                                     void **con_cls)
{
    req_impl *ri = calloc(1, sizeof *ri);
    if (!ri)
        return MHD_NO;
    *con_cls = ri;
    ri->h = h;
    req *r = &ri->r;
    r->conn = conn;
    r->ctx = h->ctx;
    r->method = method;
    r->path = url;
    r->id = atomic_fetch_add(&h->next_id, 1) + 1;
    r->t_start = clock_monotonic();
    r->phase = PHASE_RECEIVING;
    const union MHD_ConnectionInfo *sc =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    ri->gc = sc ? sc->socket_context : NULL;
    http_guard_phase(h->guard, ri->gc, GUARD_RECEIVING);
    http_request_id(r);
    parse_media_type(http_header(r, MHD_HTTP_HEADER_CONTENT_TYPE), r->media_type,
                     sizeof r->media_type);
    const char *match_method = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0 ? "GET" : method;
    r->route = http_route_match(h->routes, h->n_routes, match_method, url, r->param, r->allow,
                                sizeof r->allow);
    r->rt = r->route >= 0 ? &h->routes[r->route] : NULL;
    if (first_call_checks(ri, version)) {
        r->phase = PHASE_DISPATCHED;
        http_guard_phase(h->guard, ri->gc, GUARD_SERVING);
        return http_queue_reply(ri);
    }
    return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    req_impl *ri = *con_cls;
    if (!ri)
        return begin_request(cls, conn, url, method, version, con_cls);

    req *r = &ri->r;
    if (r->phase == PHASE_RESUMED)
        return http_queue_reply(ri);
    if (r->phase != PHASE_RECEIVING) /* not expected: already answered or suspended */
        return MHD_YES;

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        http_guard_body(ri->h->guard, ri->gc, n);
        if (r->too_large) {
            /* MHD 0.9.75 cannot queue a reply in the middle of a body: the rest is read and
             * dropped, and the 413 set at the limit goes out after it. A body that goes on
             * far past the limit is cut by closing the connection. */
            ri->bytes_in += n;
            return ri->bytes_in > (size_t)ri->h->max_body + DISCARD_LIMIT ? MHD_NO : MHD_YES;
        }
        append_body(ri, upload_data, n);
        return MHD_YES;
    }

    r->phase = PHASE_DISPATCHED;
    http_guard_phase(ri->h->guard, ri->gc, GUARD_SERVING);
    if (r->too_large) /* the 413 (or 503) set when the body crossed the limit */
        return http_queue_reply(ri);
    handler_result hr = dispatch(ri);
    if (hr == HANDLER_CLOSE) {
        if (ri->deferred) /* a handler must not defer and close; keep MHD's rules */
            return MHD_YES;
        return MHD_NO;
    }
    if (ri->deferred) /* resumed later by the pool; the reply is queued then */
        return MHD_YES;
    return http_queue_reply(ri);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    http_server *h = cls;
    req_impl *ri = *con_cls;
    if (!ri)
        return;
    *con_cls = NULL;
    req *r = &ri->r;
    double secs = clock_monotonic() - r->t_start;
    unsigned status = ri->queued ? r->status : 0;

    char path[200], method[32];
    text_log_safe(path, sizeof path, r->path);
    text_log_safe(method, sizeof method, r->method);
    static const char *const ends[] = {"ok", "error", "timeout", "shutdown", "read_error",
                                       "client_abort"};
    const char *end = (unsigned)toe < sizeof ends / sizeof ends[0] ? ends[toe] : "other";
    log_event(LOG_INFO, "request",
              "id=%llu request_id=%s method=%s path=%s route=%s status=%u ms=%.3f in=%zu "
              "out=%zu%s%s",
              (unsigned long long)r->id, r->request_id, method, path, r->rt ? r->rt->pattern : "-", status,
              secs * 1e3, ri->bytes_in, ri->bytes_out,
              toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " end=",
              toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : end);

    http_guard_phase(h->guard, ri->gc, GUARD_WAITING); /* keep-alive: the next request */
    if (r->cleanup)
        r->cleanup(r->cleanup_arg);
    http_reply_release(ri);
    if (ri->deferred)
        atomic_fetch_sub(&h->deferred_live, 1);
    free(r->body);
    free(ri);
}

/* MHD's connection notifications: the guard's bookkeeping. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    http_server *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        http_guard_opened(h->guard, conn, socket_context);
    else
        http_guard_closed(h->guard, socket_context);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    http_server *p = cls;
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

/* MHD's options for these settings (opts has room for 16) and TLS flags into *flags. The TLS
 * files are read into p (kept until the daemon stops). 0 ok, -1 with err. */
static int daemon_options(http_server *p, const http_settings *st, const struct addrinfo *ai,
                          struct MHD_OptionItem *opts, unsigned *flags, char *err,
                          size_t errlen)
{
    int n = 0;
    /* The logger first, or MHD prints what comes before it to stderr its own way. */
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, p};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, p};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection,
                                        p};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, st->max_connections, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, st->max_per_ip,
                                        NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, st->idle_timeout, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                        (intptr_t)st->connection_memory, NULL};
    if (st->http_threads > 1)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, st->http_threads,
                                            NULL};
    if (st->tls_cert && st->tls_cert[0]) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, errlen, "--tls-cert: this libmicrohttpd was built without TLS "
                                  "support, so HTTPS is not available here");
            return -1;
        }
        p->tls_cert = read_small_file(st->tls_cert, "--tls-cert", err, errlen);
        if (!p->tls_cert)
            return -1;
        p->tls_key = read_small_file(st->tls_key ? st->tls_key : "", "--tls-key", err, errlen);
        if (!p->tls_key)
            return -1;
        static char priorities[] = TLS_PRIORITIES;
        *flags |= MHD_USE_TLS;
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, p->tls_cert};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, p->tls_key};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, priorities};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return 0;
}

http_server *http_start(const http_settings *st, const route *routes, int n_routes,
                        void *ctx, const http_hooks *hooks, int *port, char *err,
                        size_t errlen)
{
    http_server *ret = NULL;
    struct addrinfo *ai = NULL;
    http_server *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->listen_fd = MHD_INVALID_SOCKET;
    p->routes = routes;
    p->n_routes = n_routes;
    p->ctx = ctx;
    if (hooks)
        p->hooks = *hooks;
    p->max_body = st->max_body;
    p->max_pending = st->max_pending > 0 ? st->max_pending : 256;
    p->guard = http_guard_new(st->max_connections, st->header_timeout);
    if (!p->guard) {
        snprintf(err, errlen, "cannot start the connection guard");
        goto cleanup;
    }
    if (http_pool_start(p, st->work_threads, err, errlen) != 0)
        goto cleanup;

    /* The address: a literal, or a name such as localhost. */
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", st->port);
    int gai = getaddrinfo(st->bind, port_text, &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(err, errlen, "--bind %s: %s", st->bind, gai_strerror(gai));
        goto cleanup;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        flags |= MHD_USE_EPOLL;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem opts[16];
    if (daemon_options(p, st, ai, opts, &flags, err, errlen) != 0)
        goto cleanup;

    p->daemon = MHD_start_daemon(flags, (uint16_t)st->port, NULL, NULL, on_access, p,
                                 MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!p->daemon) {
        snprintf(err, errlen, "could not listen on %s port %d%s%s", st->bind, st->port,
                 p->last_mhd_error[0] ? ": " : "", p->last_mhd_error);
        goto cleanup;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(p->daemon, MHD_DAEMON_INFO_BIND_PORT);
    *port = info && info->port ? info->port : st->port;
    log_event(LOG_DEBUG, "http_start",
              "epoll=%d http_threads=%d work_threads=%d tls=%d max_connections=%d "
              "max_per_ip=%d idle_timeout=%d max_body=%lld",
              (flags & MHD_USE_EPOLL) != 0, st->http_threads, st->work_threads,
              (flags & MHD_USE_TLS) != 0, st->max_connections, st->max_per_ip,
              st->idle_timeout, (long long)st->max_body);
    ret = p;
    p = NULL;
cleanup:
    if (ai)
        freeaddrinfo(ai);
    if (p) {
        http_pool_drain(p);
        http_pool_free(p);
    }
    return ret;
}

void http_stop(http_server *p)
{
    if (!p)
        return;
    if (p->daemon)
        p->listen_fd = MHD_quiesce_daemon(p->daemon); /* no new connections */
    http_pool_drain(p); /* every deferred connection has been resumed after this */
    /* Give resumed connections a moment to send the replies they now hold. */
    for (int i = 0; i < 200 && atomic_load(&p->deferred_live) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (p->daemon)
        MHD_stop_daemon(p->daemon);
    if (p->listen_fd != MHD_INVALID_SOCKET)
        close(p->listen_fd);
    http_pool_free(p);
}
