/* routes.c — the route table and its matcher. Adding an endpoint = one row here, one
 * handler, and its entry in api/openapi.yaml (a test checks the two agree).
 */
#include "server/handlers/routes.h"

#include <stdio.h>
#include <string.h>

#define JSON "application/json"

const route routes[] = {
    {"GET", "/healthz", h_healthz, NULL, 1},
    {"GET", "/readyz", h_readyz, NULL, 1},
    {"GET", "/metrics", h_metrics, NULL, 1},
    {"GET", "/openapi.yaml", h_openapi, NULL, 1},
    {"POST", "/v1/datasets", h_datasets_create, JSON ",text/csv", 0},
    {"GET", "/v1/datasets", h_datasets_list, NULL, 0},
    {"GET", "/v1/datasets/{id}", h_datasets_get, NULL, 0},
    {"DELETE", "/v1/datasets/{id}", h_datasets_delete, NULL, 0},
    {"POST", "/v1/cost", h_cost, JSON, 0},
    {"POST", "/v1/gradient", h_gradient, JSON, 0},
    {"POST", "/v1/gradient/check", h_gradient_check, JSON, 0},
    {"POST", "/v1/jobs", h_jobs_create, JSON, 0},
    {"GET", "/v1/jobs", h_jobs_list, NULL, 0},
    {"GET", "/v1/jobs/{id}", h_jobs_get, NULL, 0},
    {"DELETE", "/v1/jobs/{id}", h_jobs_delete, NULL, 0},
    {"GET", "/v1/jobs/{id}/cost", h_jobs_cost, NULL, 0},
    {"GET", "/v1/jobs/{id}/weights", h_jobs_weights, NULL, 0},
    {"GET", "/v1/jobs/{id}/gradient", h_jobs_gradient, NULL, 0},
    {"GET", "/v1/jobs/{id}/events", h_jobs_events, NULL, 0},
    {"POST", "/v1/jobs/{id}/predict", h_jobs_predict, JSON, 0},
    {"POST", "/v1/jobs/{id}/cancel", h_jobs_cancel, NULL, 0},
};
const int n_routes = (int)(sizeof routes / sizeof routes[0]);

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

int routes_match(const char *method, const char *path, char params[][64], int *path_known,
                 char *allow, size_t allow_len)
{
    char scratch[REQ_MAX_PARAMS][64];
    size_t used = 0;
    *path_known = 0;
    if (allow_len)
        allow[0] = '\0';
    for (int i = 0; i < n_routes; i++) {
        if (!match(routes[i].pattern, path, scratch))
            continue;
        if (strcmp(routes[i].method, method) == 0) {
            memcpy(params, scratch, sizeof scratch);
            return i;
        }
        *path_known = 1;
        if (used < allow_len) {
            int w = snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "",
                             routes[i].method);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    return -1;
}
