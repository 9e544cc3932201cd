/* server.h — the process-wide server object every handler receives, and the settings.
 *
 * Settings live in one table in config.c (flag, environment variable, default, help); this
 * struct is what that table fills. Module state (store, jobs, security, metrics) hangs off
 * `server` so handlers need no globals.
 */
#ifndef BACKPROPD_SERVER_H
#define BACKPROPD_SERVER_H

#include <stdatomic.h>
#include <stdint.h>

#include "server/http/http.h"
#include "server/store/store.h"

typedef struct {
    char bind[64];            /* --bind BACKPROPD_BIND 127.0.0.1 */
    int port;                 /* --port BACKPROPD_PORT 8080; 0 = any free port (printed) */
    char data[512];           /* --data BACKPROPD_DATA ./data */
    char store[1024];         /* --store BACKPROPD_STORE: "" = SQLite in data; postgres://… */
    int workers;              /* --workers BACKPROPD_WORKERS: cores */
    int job_threads;          /* --job-threads BACKPROPD_JOB_THREADS 0: cores, shared */
    int64_t max_body;         /* --max-body BACKPROPD_MAX_BODY 256 MiB */
    int max_queue;            /* --max-queue BACKPROPD_MAX_QUEUE 64 */
    char api_keys_file[512];  /* --api-keys-file BACKPROPD_API_KEYS_FILE */
    char cors_origins[1024];  /* --cors-origins BACKPROPD_CORS_ORIGINS, comma-separated */
    char tls_cert[512];       /* --tls-cert BACKPROPD_TLS_CERT */
    char tls_key[512];        /* --tls-key BACKPROPD_TLS_KEY */
    int insecure;             /* --insecure BACKPROPD_INSECURE */
    int log_level;            /* --log-level BACKPROPD_LOG_LEVEL: error warn info debug */
    int checkpoint_seconds;   /* --checkpoint-seconds BACKPROPD_CHECKPOINT_SECONDS 10 */
    int max_connections;      /* --max-connections 1024 */
    int max_per_ip;           /* --max-per-ip 64 */
    int idle_timeout;         /* --idle-timeout seconds 60 */
    int header_timeout;       /* --header-timeout seconds 10 */
    int64_t connection_memory; /* --connection-memory 128 KiB: headers + read buffer */
    int http_threads;         /* --http-threads 2 */
    int math_threads;         /* --math-threads: cores (the work pool: requests with a body) */
    int max_pending;          /* --max-pending: queued work-pool requests per lane before 503 */
    int quota_jobs;           /* --quota-jobs per key queued+running, 0 = off */
    int64_t quota_bytes;      /* --quota-bytes per key stored dataset bytes, 0 = off */
    int rate_limit;           /* --rate-limit requests/s per key and per address, 0 = off */
    int metrics_auth;         /* --metrics-auth: /metrics needs a key */
    int idempotency_ttl;      /* --idempotency-ttl seconds an Idempotency-Key is kept, 86400 */
} config;

typedef struct server server;
typedef struct jobs jobs;         /* jobs.h: queue, workers, live progress */
typedef struct events events;     /* handlers/h_events.h: the SSE streams that follow jobs */
typedef struct security security; /* security.h: keys, CORS, rate limits */
typedef struct metrics metrics;   /* metrics.h */
typedef struct handlers_job_cache handlers_job_cache; /* handlers/handlers_job_cache.h */

struct server {
    config cfg;
    store *st;
    jobs *jobs;
    events *events;
    security *sec;
    metrics *metrics;
    handlers_job_cache *job_cache; /* GET /v1/jobs/{id} bodies (NULL: none kept) */
    http_server *http;            /* http.h: the daemon and its work pool */
    atomic_int shutting_down;     /* set on SIGINT/SIGTERM: new jobs get 503 */
    int cores;
};

#endif
