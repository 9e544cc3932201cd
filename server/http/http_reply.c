/* http_reply.c — the replies of http.h (JSON, problem+json, data, empty, streams, extra
 * headers), the query and header look-ups, and the hand-over of a reply to MHD with the
 * decorate and observe hooks. A reply is set on the req; http.c queues it after the handler
 * returns (or after deferred work, from MHD's thread).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/http/http_internal.h"

/* ------------------------------------------------------------------ replies */

/* src into dst (cap bytes), cut to fit and NUL-terminated: snprintf's "%s" without the
 * format parsing every reply paid for. */
static void copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Drops the reply set so far (none yet is fine). */
void http_reply_release(req_impl *ri)
{
    free(ri->out);
    ri->out = NULL;
    ri->out_len = 0;
    ri->out_type[0] = '\0';
    if (ri->reader && ri->reader_free)
        ri->reader_free(ri->reader_ctx);
    ri->reader = NULL;
    ri->reader_ctx = NULL;
    ri->reader_free = NULL;
}

/* Sets the reply: a body (owned, may be NULL when len is 0) of content_type (NULL none). */
static void set_reply(req *r, unsigned status, const char *content_type, char *body, size_t len)
{
    req_impl *ri = (req_impl *)(void *)r;
    if (r->status) { /* a second reply replaces the first (a handler bug, said in the log) */
        log_event(LOG_DEBUG, "reply_replaced", "id=%llu old=%u new=%u",
                  (unsigned long long)r->id, r->status, status);
        http_reply_release(ri);
    }
    r->status = status;
    r->immutable = 0;
    ri->out = body;
    ri->out_len = len;
    copy_text(ri->out_type, sizeof ri->out_type, content_type ? content_type : "");
    ri->bytes_out = len;
}

int http_replied(const req *r)
{
    return r->status != 0;
}

void http_reply_immutable(req *r)
{
    r->immutable = 1;
}

handler_result http_reply_data(req *r, unsigned status, const char *content_type,
                               const void *data, size_t len)
{
    char *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy) {
            set_reply(r, 500, NULL, NULL, 0); /* the last resort: an empty 500 */
            return HANDLER_OK;
        }
        memcpy(copy, data, len);
    }
    set_reply(r, status, content_type, copy, len);
    return HANDLER_OK;
}

handler_result http_reply_text(req *r, unsigned status, const char *content_type, char *text,
                               size_t len)
{
    set_reply(r, status, content_type, text, len);
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
    return http_reply_text(r, status, "application/json", text, len);
}

handler_result http_reply_problem(req *r, unsigned status, const char *detail_fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, detail_fmt);
    vsnprintf(detail, sizeof detail, detail_fmt, ap);
    va_end(ap);
    json_t *j = api_problem_json(status, detail);
    size_t len = 0;
    char *text = j ? api_dump(j, &len) : NULL;
    json_decref(j);
    set_reply(r, text ? status : 500, text ? "application/problem+json" : NULL, text,
              text ? len : 0);
    return HANDLER_OK;
}

handler_result http_reply_empty(req *r, unsigned status)
{
    set_reply(r, status, NULL, NULL, 0);
    return HANDLER_OK;
}

handler_result http_reply_stream(req *r, unsigned status, const char *content_type,
                                 MHD_ContentReaderCallback reader, void *ctx,
                                 MHD_ContentReaderFreeCallback free_ctx)
{
    /* HEAD: the stream's headers and no body at all (MHD would still frame an unknown-size
     * reply as chunked and send its closing "0" chunk), so the stream ends here. */
    if (strcmp(r->method, MHD_HTTP_METHOD_HEAD) == 0) {
        if (free_ctx)
            free_ctx(ctx);
        http_reply_data(r, status, content_type, NULL, 0);
        return HANDLER_OK;
    }
    req_impl *ri = (req_impl *)(void *)r;
    set_reply(r, status, content_type, NULL, 0);
    ri->reader = reader;
    ri->reader_ctx = ctx;
    ri->reader_free = free_ctx;
    return HANDLER_OK;
}

void http_add_header(req *r, const char *name, const char *value)
{
    if (r->n_headers >= REQ_MAX_HEADERS || !name || !value)
        return;
    copy_text(r->headers[r->n_headers][0], sizeof r->headers[0][0], name);
    copy_text(r->headers[r->n_headers][1], sizeof r->headers[0][1], value);
    r->n_headers++;
}

void http_add_vary(req *r, const char *token)
{
    for (int i = 0; i < r->n_headers; i++) {
        if (strcasecmp(r->headers[i][0], "Vary") == 0) {
            size_t n = strlen(r->headers[i][1]);
            snprintf(r->headers[i][1] + n, sizeof r->headers[i][1] - n, ", %s", token);
            return;
        }
    }
    http_add_header(r, "Vary", token);
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

/* MHD's response for the reply set on ri (its body or stream handed over); NULL when out of
 * memory (then ri still owns them). */
static struct MHD_Response *make_response(req_impl *ri)
{
    struct MHD_Response *resp;
    if (ri->reader) {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, ri->reader,
                                                 ri->reader_ctx, ri->reader_free);
        if (resp)
            ri->reader = NULL; /* MHD frees the stream now */
    } else if (ri->out) {
        resp = MHD_create_response_from_buffer(ri->out_len, ri->out, MHD_RESPMEM_MUST_FREE);
        if (resp)
            ri->out = NULL;
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)(uintptr_t) "", MHD_RESPMEM_PERSISTENT);
    }
    if (resp && ri->out_type[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ri->out_type);
    return resp;
}

/* Hands the reply to MHD: the decorate hook, caching, compression and the extra headers. */
enum MHD_Result http_queue_reply(req_impl *ri)
{
    req *r = &ri->r;
    const http_hooks *hk = &ri->h->hooks;
    if (!r->status)
        http_reply_problem(r, 500, "the handler of %s %s set no reply", r->method, r->path);
    if (hk->decorate)
        hk->decorate(r->ctx, r);
    http_add_header(r, "X-Request-Id", r->request_id);
    http_cache_apply(ri);
    struct MHD_Response *resp = make_response(ri);
    if (!resp) { /* out of memory: an empty 500 from static memory, or nothing at all */
        http_reply_release(ri);
        r->status = 500;
        ri->bytes_out = 0;
        resp = make_response(ri);
        if (!resp)
            return MHD_NO;
    }
    for (int i = 0; i < r->n_headers; i++)
        MHD_add_response_header(resp, r->headers[i][0], r->headers[i][1]);
    /* Observed here, not on completion: a client that has its answer sees it in /metrics. */
    if (hk->observe)
        hk->observe(r->ctx, r->route, r->status, clock_monotonic() - r->t_start);
    enum MHD_Result ret = MHD_queue_response(r->conn, r->status, resp);
    MHD_destroy_response(resp); /* MHD holds its own reference now */
    ri->queued = 1;
    return ret;
}
