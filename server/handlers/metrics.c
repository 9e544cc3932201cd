/* metrics.c — request counters and latency histograms per route (lock-free: relaxed atomics
 * on the request path), rendered with the job gauges as Prometheus text format 0.0.4.
 *
 * Layout: one slot per route of the route table plus one for unmatched paths; per slot a
 * counter per HTTP status (100..599), a latency histogram (non-cumulative buckets, summed
 * into cumulative `le` buckets at render time), the latency sum in microseconds and a count.
 */
#include "server/handlers/metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/jobs/jobs.h"
#include "server/handlers/routes.h"

#define STATUS_MIN 100
#define STATUS_N 500 /* 100..599 */
#define N_BUCKETS 14

static const double bucket_le[N_BUCKETS] = {0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                            0.05,   0.1,    0.25,  0.5,    1,     2.5,  10};
static const char *const bucket_text[N_BUCKETS] = {"0.0001", "0.0005", "0.001", "0.0025",
                                                   "0.005",  "0.01",   "0.025", "0.05",
                                                   "0.1",    "0.25",   "0.5",   "1",
                                                   "2.5",    "10"};

struct metrics {
    int n_slots;                 /* n_routes + 1 (the last: unmatched) */
    atomic_uint_fast64_t *by_status; /* [n_slots][STATUS_N] */
    atomic_uint_fast64_t *bucket;    /* [n_slots][N_BUCKETS + 1] (last: over the top) */
    atomic_uint_fast64_t *sum_us;    /* [n_slots] */
    atomic_uint_fast64_t *count;     /* [n_slots] */
};

metrics *metrics_new(int route_count)
{
    metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->n_slots = (route_count > 0 ? route_count : 0) + 1;
    size_t slots = (size_t)m->n_slots;
    m->by_status = calloc(slots * STATUS_N, sizeof *m->by_status);
    m->bucket = calloc(slots * (N_BUCKETS + 1), sizeof *m->bucket);
    m->sum_us = calloc(slots, sizeof *m->sum_us);
    m->count = calloc(slots, sizeof *m->count);
    if (!m->by_status || !m->bucket || !m->sum_us || !m->count) {
        metrics_free(m);
        return NULL;
    }
    return m;
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    free(m->by_status);
    free(m->bucket);
    free(m->sum_us);
    free(m->count);
    free(m);
}

void metrics_request(metrics *m, int route_index, unsigned status, double seconds)
{
    if (!m)
        return;
    int slot = (route_index >= 0 && route_index < m->n_slots - 1) ? route_index : m->n_slots - 1;
    if (status >= STATUS_MIN && status < STATUS_MIN + STATUS_N)
        atomic_fetch_add_explicit(&m->by_status[(size_t)slot * STATUS_N + (status - STATUS_MIN)],
                                  1, memory_order_relaxed);
    if (seconds < 0)
        seconds = 0;
    int b = 0;
    while (b < N_BUCKETS && seconds > bucket_le[b])
        b++;
    atomic_fetch_add_explicit(&m->bucket[(size_t)slot * (N_BUCKETS + 1) + (size_t)b], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_us[slot], (uint_fast64_t)(seconds * 1e6 + 0.5),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&m->count[slot], 1, memory_order_relaxed);
}

/* ---- a growing text buffer ---- */
typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

static void slot_labels(int slot, int n_slots, char *out, size_t len)
{
    if (slot == n_slots - 1)
        snprintf(out, len, "method=\"\",route=\"unmatched\"");
    else
        snprintf(out, len, "method=\"%s\",route=\"%s\"", routes[slot].method,
                 routes[slot].pattern);
}

char *metrics_render(server *s)
{
    metrics *m = s->metrics;
    buf b = {malloc(16384), 0, 16384, 0};
    if (!b.p)
        return NULL;
    b.p[0] = '\0';
    char labels[160];

    put(&b, "# HELP backpropd_http_requests_total HTTP requests answered, by route and status.\n"
            "# TYPE backpropd_http_requests_total counter\n");
    for (int slot = 0; m && slot < m->n_slots; slot++) {
        slot_labels(slot, m->n_slots, labels, sizeof labels);
        for (int st = 0; st < STATUS_N; st++) {
            uint_fast64_t v = atomic_load_explicit(&m->by_status[(size_t)slot * STATUS_N + st],
                                                   memory_order_relaxed);
            if (v)
                put(&b, "backpropd_http_requests_total{%s,status=\"%d\"} %llu\n", labels,
                    st + STATUS_MIN, (unsigned long long)v);
        }
    }

    put(&b, "# HELP backpropd_http_request_duration_seconds Time from the request line to the "
            "reply being ready to send, by route.\n"
            "# TYPE backpropd_http_request_duration_seconds histogram\n");
    for (int slot = 0; m && slot < m->n_slots; slot++) {
        uint_fast64_t count = atomic_load_explicit(&m->count[slot], memory_order_relaxed);
        if (!count)
            continue;
        slot_labels(slot, m->n_slots, labels, sizeof labels);
        unsigned long long cumulative = 0;
        for (int k = 0; k <= N_BUCKETS; k++) {
            cumulative += atomic_load_explicit(&m->bucket[(size_t)slot * (N_BUCKETS + 1) + k],
                                               memory_order_relaxed);
            put(&b, "backpropd_http_request_duration_seconds_bucket{%s,le=\"%s\"} %llu\n",
                labels, k < N_BUCKETS ? bucket_text[k] : "+Inf", cumulative);
        }
        put(&b, "backpropd_http_request_duration_seconds_sum{%s} %.6f\n", labels,
            (double)atomic_load_explicit(&m->sum_us[slot], memory_order_relaxed) / 1e6);
        /* count = the +Inf bucket, so the two agree even while requests race in */
        put(&b, "backpropd_http_request_duration_seconds_count{%s} %llu\n", labels, cumulative);
    }

    if (s->jobs) {
        put(&b, "# HELP backpropd_jobs_queue_depth Jobs queued or running.\n"
                "# TYPE backpropd_jobs_queue_depth gauge\n"
                "backpropd_jobs_queue_depth %lld\n",
            (long long)jobs_queue_depth(s->jobs));
        put(&b, "# HELP backpropd_samples_trained_total Training samples processed since "
                "start.\n"
                "# TYPE backpropd_samples_trained_total counter\n"
                "backpropd_samples_trained_total %lld\n",
            (long long)jobs_samples_trained(s->jobs));
    }
    if (s->st) {
        int64_t counts[5] = {0};
        store_error err = {0};
        if (store_job_count_by_status(s->st, counts, &err) == 0) {
            put(&b, "# HELP backpropd_jobs Jobs in the store, by status.\n"
                    "# TYPE backpropd_jobs gauge\n");
            for (int i = 0; i < 5; i++)
                put(&b, "backpropd_jobs{status=\"%s\"} %lld\n", job_status_name((job_status)i),
                    (long long)counts[i]);
        }
    }
    put(&b, "# HELP backpropd_shutting_down 1 while the server is stopping.\n"
            "# TYPE backpropd_shutting_down gauge\n"
            "backpropd_shutting_down %d\n",
        atomic_load(&s->shutting_down));
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
