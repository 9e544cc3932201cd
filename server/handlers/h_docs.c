/* h_docs.c — GET /docs and GET /docs/{asset}: a readable API reference. The page and its
 * script and style are compiled in (docs_blob.c); the script fetches /openapi.yaml from this
 * server and renders it in the browser. Every answer carries a strict Content-Security-Policy
 * (only this server's scripts, styles and fetches; no inline code; no frames), nosniff and no
 * referrer. Open routes: the reference describes the API, it holds no tenant's data.
 */
#include <stddef.h>
#include <string.h>

#include "server/handlers/routes.h"

/* docs_blob.c: each file between its _start and _end symbols */
extern const char backpropd_docs_html_start[], backpropd_docs_html_end[];
extern const char backpropd_docs_js_start[], backpropd_docs_js_end[];
extern const char backpropd_docs_css_start[], backpropd_docs_css_end[];

#define DOCS_CSP                                                                               \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "            \
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static handler_result reply_asset(req *r, const char *type, const char *start, const char *end)
{
    /* one object in fact: .incbin puts both symbols around the same bytes */
    /* cppcheck-suppress comparePointers */
    size_t len = (size_t)(end - start);
    http_reply_data(r, 200, type, start, len);
    http_add_header(r, "Content-Security-Policy", DOCS_CSP);
    http_add_header(r, "X-Content-Type-Options", "nosniff");
    http_add_header(r, "Referrer-Policy", "no-referrer");
    return HANDLER_OK;
}

handler_result h_docs(void *ctx, req *r)
{
    (void)ctx;
    return reply_asset(r, "text/html; charset=utf-8", backpropd_docs_html_start,
                       backpropd_docs_html_end);
}

handler_result h_docs_asset(void *ctx, req *r)
{
    (void)ctx;
    if (strcmp(r->param[0], "docs.js") == 0)
        return reply_asset(r, "text/javascript; charset=utf-8", backpropd_docs_js_start,
                           backpropd_docs_js_end);
    if (strcmp(r->param[0], "docs.css") == 0)
        return reply_asset(r, "text/css; charset=utf-8", backpropd_docs_css_start,
                           backpropd_docs_css_end);
    return http_reply_problem(r, 404, "no such resource: /docs/%s (the page's files are "
                                      "docs.js and docs.css)", r->param[0]);
}
