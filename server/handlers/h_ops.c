/* h_ops.c — operations endpoints: GET /healthz (alive), /readyz (store answers and not
 * shutting down), /metrics (Prometheus text 0.0.4), /openapi.yaml (the contract, compiled
 * into the binary by openapi_blob.c).
 */
#include <stdlib.h>
#include <string.h>

#include "server/http/http.h"
#include "server/handlers/metrics.h"
#include "server/handlers/routes.h"
#include "server/server.h"
#include "server/store/store.h"

/* openapi_blob.c: the bytes of api/openapi.yaml, [start, end). */
extern const char backpropd_openapi_start[];
extern const char backpropd_openapi_end[];

handler_result h_healthz(void *ctx, req *r)
{
    (void)ctx;
    static const char body[] = "{\"status\":\"ok\"}";
    return http_reply_data(r, 200, "application/json", body, sizeof body - 1);
}

handler_result h_readyz(void *ctx, req *r)
{
    server *s = ctx;
    if (atomic_load(&s->shutting_down)) {
        http_add_header(r, "Retry-After", "5");
        return http_reply_problem(r, 503, "the server is shutting down");
    }
    store_error err = {0};
    if (!s->st || store_ping(s->st, &err) != 0) {
        http_add_header(r, "Retry-After", "5");
        return http_reply_problem(r, 503, "the store does not answer: %s",
                                  err.msg[0] ? err.msg : "not open");
    }
    static const char body[] = "{\"status\":\"ready\"}";
    return http_reply_data(r, 200, "application/json", body, sizeof body - 1);
}

handler_result h_metrics(void *ctx, req *r)
{
    server *s = ctx;
    char *text = metrics_render(s);
    if (!text)
        return http_reply_problem(r, 500, "out of memory rendering the metrics");
    handler_result hr =
        http_reply_data(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
    free(text);
    return hr;
}

handler_result h_openapi(void *ctx, req *r)
{
    (void)ctx;
    /* one object in fact: .incbin puts both symbols around the same bytes */
    /* cppcheck-suppress comparePointers */
    size_t len = (size_t)(backpropd_openapi_end - backpropd_openapi_start);
    return http_reply_data(r, 200, "application/yaml", backpropd_openapi_start, len);
}
