/* routes.c — the route table: every endpoint the server answers, in one place, as data for the
 * framework (server/http/http.h's `route`): method, path pattern, handler, body media types
 * (a route with a body runs on the work pool), the query parameters it takes, whether it
 * needs an API key, and whether its work is heavy (the work pool's lane served in turn per
 * client). Adding an endpoint = one row here, one handler, and its entry in
 * api/openapi.yaml (tests check the two agree).
 */
#include "server/handlers/routes.h"

#define JSON "application/json"
#define PAGE "limit,cursor"

const route routes[] = {
    {"GET", "/healthz", h_healthz, .open = 1},
    {"GET", "/readyz", h_readyz, .open = 1},
    {"GET", "/metrics", h_metrics, .open = 1, .lockable = 1},
    {"GET", "/openapi.yaml", h_openapi, .open = 1},
    {"GET", "/docs", h_docs, .open = 1},
    {"GET", "/docs/{asset}", h_docs_asset, .open = 1},
    {"POST", "/v1/datasets", h_datasets_create, .accepts = JSON ",text/csv,application/x-npy",
     .query = "name,header,label,targets,label_base"},
    {"GET", "/v1/datasets", h_datasets_list, .query = "name," PAGE},
    {"GET", "/v1/datasets/{id}", h_datasets_get, .open = 0},
    {"DELETE", "/v1/datasets/{id}", h_datasets_delete, .open = 0},
    {"POST", "/v1/cost", h_cost, .accepts = JSON, .heavy = 1},
    {"POST", "/v1/gradient", h_gradient, .accepts = JSON, .heavy = 1},
    {"POST", "/v1/gradient/check", h_gradient_check, .accepts = JSON, .heavy = 1},
    {"POST", "/v1/jobs", h_jobs_create, .accepts = JSON},
    {"GET", "/v1/jobs", h_jobs_list,
     .query = "status,dataset,name,tag,created_after,created_before," PAGE},
    {"GET", "/v1/jobs/{id}", h_jobs_get, .open = 0},
    {"DELETE", "/v1/jobs/{id}", h_jobs_delete, .open = 0},
    {"GET", "/v1/jobs/{id}/cost", h_jobs_cost, .query = "after,limit"},
    {"GET", "/v1/jobs/{id}/weights", h_jobs_weights, .open = 0},
    {"GET", "/v1/jobs/{id}/model.json", h_jobs_model_json, .open = 0, .heavy = 1},
    {"GET", "/v1/jobs/{id}/weights.bin", h_jobs_weights_bin, .open = 0, .heavy = 1},
    {"GET", "/v1/jobs/{id}/model.onnx", h_jobs_model_onnx, .query = "dtype", .heavy = 1},
    {"GET", "/v1/jobs/{id}/gradient", h_jobs_gradient, .open = 0, .heavy = 1},
    {"GET", "/v1/jobs/{id}/events", h_jobs_events, .query = "access_token", .token = 1},
    {"POST", "/v1/jobs/{id}/events/token", h_jobs_events_token, .open = 0},
    {"POST", "/v1/jobs/{id}/predict", h_jobs_predict, .accepts = JSON, .heavy = 1},
    {"POST", "/v1/jobs/{id}/evaluate", h_jobs_evaluate, .accepts = JSON, .heavy = 1},
    {"POST", "/v1/jobs/{id}/cancel", h_jobs_cancel, .open = 0},
    {"GET", "/", h_dashboard, .open = 1},
    {"GET", "/ui/{asset}", h_dashboard_asset, .open = 1},
    {"GET", "/v1/whoami", h_whoami, .open = 0},
};
const int n_routes = (int)(sizeof routes / sizeof routes[0]);
