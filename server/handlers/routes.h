/* routes.h — the route table: every endpoint the server answers, in one place, and the
 * handlers it names (each takes the server as its context pointer). The table (routes.c) is
 * also what tests compare against api/openapi.yaml.
 */
#ifndef BACKPROPD_ROUTES_H
#define BACKPROPD_ROUTES_H

#include "server/http/http.h"

/* The table (route is http.h's type); the framework is given it at http_start. */
extern const route routes[];
extern const int n_routes;

/* ---- handlers (one file per area) ---- */
/* h_ops.c */
handler_result h_healthz(void *ctx, req *r);
handler_result h_readyz(void *ctx, req *r);
handler_result h_metrics(void *ctx, req *r);
handler_result h_openapi(void *ctx, req *r);
/* h_docs.c */
handler_result h_docs(void *ctx, req *r);
handler_result h_docs_asset(void *ctx, req *r);
/* h_datasets.c */
handler_result h_datasets_create(void *ctx, req *r);
handler_result h_datasets_list(void *ctx, req *r);
handler_result h_datasets_get(void *ctx, req *r);
handler_result h_datasets_delete(void *ctx, req *r);
/* h_math.c */
handler_result h_cost(void *ctx, req *r);
handler_result h_gradient(void *ctx, req *r);
handler_result h_gradient_check(void *ctx, req *r);
/* h_jobs.c, h_jobs_list.c */
handler_result h_jobs_create(void *ctx, req *r);
handler_result h_jobs_list(void *ctx, req *r);
handler_result h_jobs_get(void *ctx, req *r);
handler_result h_jobs_cost(void *ctx, req *r);
handler_result h_jobs_weights(void *ctx, req *r);
handler_result h_jobs_gradient(void *ctx, req *r);
handler_result h_jobs_events(void *ctx, req *r);
handler_result h_jobs_predict(void *ctx, req *r);
handler_result h_jobs_evaluate(void *ctx, req *r); /* h_evaluate.c */
handler_result h_jobs_cancel(void *ctx, req *r);
handler_result h_jobs_delete(void *ctx, req *r);
/* h_export.c */
handler_result h_jobs_model_json(void *ctx, req *r);
handler_result h_jobs_weights_bin(void *ctx, req *r);
handler_result h_jobs_model_onnx(void *ctx, req *r);
/* h_events.c */
handler_result h_jobs_events_token(void *ctx, req *r);
/* h_dashboard.c */
handler_result h_dashboard(void *ctx, req *r);
handler_result h_dashboard_asset(void *ctx, req *r);
handler_result h_whoami(void *ctx, req *r);

#endif
