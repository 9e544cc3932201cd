/* routes.h — the route table: every endpoint the server answers, in one place.
 * The table (routes.c) is also what tests compare against api/openapi.yaml.
 */
#ifndef BACKPROPD_ROUTES_H
#define BACKPROPD_ROUTES_H

#include "server/http/http.h"

typedef struct {
    const char *method;    /* "GET", "POST", "DELETE" */
    const char *pattern;   /* "/v1/jobs/{id}/cost": {name} matches one non-empty segment */
    route_handler handler;
    const char *accepts;   /* comma-separated media types for the body; NULL = no body */
    int open;              /* 1 = needs no API key */
} route;

extern const route routes[];
extern const int n_routes;

/* Finds the route for method + path. Returns its index and fills r->param, or -1 with
 * *path_known = 1 when the path exists under other methods (then allow = "GET, DELETE"). */
int routes_match(const char *method, const char *path, char params[][64], int *path_known,
                 char *allow, size_t allow_len);

/* ---- handlers (one file per area) ---- */
/* h_ops.c */
handler_result h_healthz(server *s, req *r);
handler_result h_readyz(server *s, req *r);
handler_result h_metrics(server *s, req *r);
handler_result h_openapi(server *s, req *r);
/* h_datasets.c */
handler_result h_datasets_create(server *s, req *r);
handler_result h_datasets_list(server *s, req *r);
handler_result h_datasets_get(server *s, req *r);
handler_result h_datasets_delete(server *s, req *r);
/* h_math.c */
handler_result h_cost(server *s, req *r);
handler_result h_gradient(server *s, req *r);
handler_result h_gradient_check(server *s, req *r);
/* h_jobs.c */
handler_result h_jobs_create(server *s, req *r);
handler_result h_jobs_list(server *s, req *r);
handler_result h_jobs_get(server *s, req *r);
handler_result h_jobs_cost(server *s, req *r);
handler_result h_jobs_weights(server *s, req *r);
handler_result h_jobs_gradient(server *s, req *r);
handler_result h_jobs_events(server *s, req *r);
handler_result h_jobs_predict(server *s, req *r);
handler_result h_jobs_cancel(server *s, req *r);
handler_result h_jobs_delete(server *s, req *r);

#endif
