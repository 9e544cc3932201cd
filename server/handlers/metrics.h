/* metrics.h — counters for GET /metrics (Prometheus text format 0.0.4): requests by route and
 * status, request latency per route, plus gauges read at render time (queue depth, jobs by
 * status, samples trained). Lock-free on the request path (atomics).
 */
#ifndef BACKPROPD_METRICS_H
#define BACKPROPD_METRICS_H

#include "server/server.h"

/* new (free with metrics_free, which accepts NULL); NULL when out of memory. */
metrics *metrics_new(int n_routes);
void metrics_free(metrics *m);
/* route = index in the route table, -1 for unmatched paths. */
void metrics_request(metrics *m, int route, unsigned status, double seconds);
/* new: the whole exposition text, NUL-terminated. */
char *metrics_render(server *s);

#endif
