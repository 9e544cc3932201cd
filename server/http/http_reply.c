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

#include "api/api.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/http/http_internal.h"

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
    /* HEAD: the stream's headers and no body at all (MHD would still frame an unknown-size
     * reply as chunked and send its closing "0" chunk), so the stream ends here. */
    if (strcmp(r->method, MHD_HTTP_METHOD_HEAD) == 0) {
        if (free_ctx)
            free_ctx(ctx);
        http_reply_data(r, status, content_type, NULL, 0);
        return HANDLER_OK;
    }
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

/* Hands the reply to MHD: the decorate hook and the extra headers first. */
enum MHD_Result http_queue_reply(req_impl *ri)
{
    req *r = &ri->r;
    const http_hooks *hk = &ri->h->hooks;
    if (!r->response)
        http_reply_problem(r, 500, "the handler of %s %s set no reply", r->method, r->path);
    if (hk->decorate)
        hk->decorate(r->ctx, r);
    for (int i = 0; i < r->n_headers; i++)
        MHD_add_response_header(r->response, r->headers[i][0], r->headers[i][1]);
    /* Observed here, not on completion: a client that has its answer sees it in /metrics. */
    if (hk->observe)
        hk->observe(r->ctx, r->route, r->status, clock_monotonic() - r->t_start);
    enum MHD_Result ret = MHD_queue_response(r->conn, r->status, r->response);
    MHD_destroy_response(r->response); /* MHD holds its own reference now */
    r->response = NULL;
    ri->queued = 1;
    return ret;
}

