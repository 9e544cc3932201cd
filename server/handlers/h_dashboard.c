/* h_dashboard.c — the dashboard: GET / (index.html) and GET /ui/{asset} (its ES modules, style
 * sheet and icon), all compiled into the binary by dashboard_blob.c; and GET /v1/whoami, which
 * tells a page whether it is calling with an API key and whose (the tenant).
 *
 * Every file is answered with a strict Content-Security-Policy (scripts, styles, images and
 * fetches from this origin only; no inline script or style, no framing, no form posts), nosniff
 * and no referrer. Caching: "no-cache" with a strong ETag (FNV-1a 64 of the bytes, computed
 * once), so a browser revalidates every load and gets a 304 without a body while the binary is
 * the same, and a new binary's files are never mixed with an old one's.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "server/handlers/routes.h"

#define CSP "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " \
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

#define DECLARE(sym) extern const char backpropd_##sym##_start[], backpropd_##sym##_end[]
DECLARE(ui_index_html);
DECLARE(ui_style_css);
DECLARE(ui_icon_svg);
DECLARE(ui_app_js);
DECLARE(ui_api_js);
DECLARE(ui_chart_js);
DECLARE(ui_jobs_js);
DECLARE(ui_results_js);
DECLARE(ui_draw_js);
DECLARE(ui_dom_js);

typedef struct {
    const char *name;          /* "" = the page itself (GET /) */
    const char *type;          /* Content-Type */
    const char *start, *end;   /* the bytes, [start, end) */
    char etag[24];             /* "\"<16 hex>\"", filled once */
} asset;

#define ROW(name, type, sym) {name, type, backpropd_##sym##_start, backpropd_##sym##_end, ""}
#define JS "text/javascript; charset=utf-8"
static asset assets[] = {
    ROW("", "text/html; charset=utf-8", ui_index_html),
    ROW("style.css", "text/css; charset=utf-8", ui_style_css),
    ROW("icon.svg", "image/svg+xml", ui_icon_svg),
    ROW("app.js", JS, ui_app_js),
    ROW("api.js", JS, ui_api_js),
    ROW("chart.js", JS, ui_chart_js),
    ROW("jobs.js", JS, ui_jobs_js),
    ROW("results.js", JS, ui_results_js),
    ROW("draw.js", JS, ui_draw_js),
    ROW("dom.js", JS, ui_dom_js),
};
#define N_ASSETS (sizeof assets / sizeof assets[0])

static pthread_once_t etags_once = PTHREAD_ONCE_INIT;

static size_t asset_len(const asset *a)
{
    /* one object in fact: .incbin puts both symbols around the same bytes */
    /* cppcheck-suppress comparePointers */
    return (size_t)(a->end - a->start);
}

static void etags_compute(void)
{
    for (size_t i = 0; i < N_ASSETS; i++) {
        uint64_t h = 14695981039346656037ull;
        const unsigned char *p = (const unsigned char *)assets[i].start;
        for (size_t k = 0, n = asset_len(&assets[i]); k < n; k++)
            h = (h ^ p[k]) * 1099511628211ull;
        snprintf(assets[i].etag, sizeof assets[i].etag, "\"%016llx\"", (unsigned long long)h);
    }
}

/* Does If-None-Match (a list of entity tags, or "*") name etag? Weak tags compare too. */
static int etag_matches(const char *inm, const char *etag)
{
    if (!inm)
        return 0;
    size_t el = strlen(etag);
    for (const char *p = inm; *p;) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        if (*p == '*')
            return 1;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (strncmp(p, etag, el) == 0 && (p[el] == '\0' || p[el] == ',' || p[el] == ' '))
            return 1;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}

static handler_result reply_asset(req *r, asset *a)
{
    pthread_once(&etags_once, etags_compute);
    http_add_header(r, "Content-Security-Policy", CSP);
    http_add_header(r, "X-Content-Type-Options", "nosniff");
    http_add_header(r, "Referrer-Policy", "no-referrer");
    http_add_header(r, "Cache-Control", "no-cache");
    http_add_header(r, "ETag", a->etag);
    if (etag_matches(http_header(r, "If-None-Match"), a->etag))
        return http_reply_empty(r, 304);
    return http_reply_data(r, 200, a->type, a->start, asset_len(a));
}

handler_result h_dashboard(void *ctx, req *r)
{
    (void)ctx;
    return reply_asset(r, &assets[0]);
}

handler_result h_dashboard_asset(void *ctx, req *r)
{
    (void)ctx;
    for (size_t i = 1; i < N_ASSETS; i++)
        if (strcmp(r->param[0], assets[i].name) == 0)
            return reply_asset(r, &assets[i]);
    return http_reply_problem(r, 404, "asset: no dashboard file \"%.60s\"", r->param[0]);
}

handler_result h_whoami(void *ctx, req *r)
{
    (void)ctx;
    /* The route needs a key whenever the server has keys, so an empty owner means none. */
    json_t *o = json_pack("{s:o, s:b}", "tenant",
                          r->owner[0] ? json_string(r->owner) : json_null(), "keys_required",
                          r->owner[0] != '\0');
    if (!o)
        return http_reply_problem(r, 503, "out of memory");
    return http_reply_json(r, 200, o);
}
