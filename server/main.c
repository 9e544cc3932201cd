/* main.c — backpropd's entry point: settings, store, security, metrics, jobs, the HTTP
 * daemon (given its settings, the route table, the server as the handlers' context, and the
 * security and metrics hooks); prints "listening http://ADDR:PORT" once ready; then waits for SIGINT/SIGTERM and
 * shuts down in order (stop taking jobs, stop workers at a batch boundary, stop HTTP, free).
 *
 * Signals: the handler only writes one byte to a self-pipe (async-signal-safe); the main
 * thread waits on the pipe. A handler (rather than sigwait) also covers threads created
 * before main() by libraries (OpenBLAS), whose signal masks we do not control. A second
 * signal, or a shutdown longer than SHUTDOWN_LIMIT seconds, ends the process at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/common/clock.h"
#include "server/blas_env.h"
#include "server/config.h"
#include "server/jobs/jobs.h"
#include "server/common/log.h"
#include "server/handlers/h_events.h"
#include "server/handlers/handlers_job_cache.h"
#include "server/handlers/metrics.h"
#include "server/handlers/routes.h"
#include "server/security/security.h"
#include "server/server.h"
#include "server/store/store.h"

#define SHUTDOWN_LIMIT_MS 10000

/* jobs_settings.before_workers: one BLAS thread per call, always (process-wide, set once
 * before any worker trains): weights stay bit-identical whatever --workers and --job-threads
 * are. OpenBLAS 0.3.21's dgemm gives different bits with 1 and 2 threads (its threaded driver
 * splits K and M differently; measured on digits, full batch: the weights differ after one
 * epoch), so a job uses the cores through the core's row shards instead (bp.h: bp_shards),
 * each shard's GEMMs on one thread (--job-threads). */
static void one_blas_thread(void *arg)
{
    (void)arg;
    blas_set_threads(1);
    log_event(LOG_INFO, "blas", "threads=1 per call core=%s", blas_core_name());
}

static int signal_pipe[2] = {-1, -1};

/* ---- the framework's hooks: security before the handler and on every reply, metrics ---- */
static int hook_check(void *ctx, req *r)
{
    server *s = ctx;
    return security_check(s->sec, r);
}

static void hook_decorate(void *ctx, req *r)
{
    server *s = ctx;
    security_decorate(s->sec, r);
}

static void hook_observe(void *ctx, int route_index, unsigned status, double seconds)
{
    server *s = ctx;
    metrics_request(s->metrics, route_index, status, seconds);
}

static const http_hooks hooks = {hook_check, hook_decorate, hook_observe};

/* The HTTP daemon's part of the settings (strings borrowed from cfg). */
static http_settings http_settings_of(const config *cfg)
{
    return (http_settings){
        .bind = cfg->bind,
        .port = cfg->port,
        .max_body = cfg->max_body,
        .http_threads = cfg->http_threads,
        .work_threads = cfg->math_threads,
        .max_pending = cfg->max_pending,
        .max_connections = cfg->max_connections,
        .max_per_ip = cfg->max_per_ip,
        .idle_timeout = cfg->idle_timeout,
        .header_timeout = cfg->header_timeout,
        .connection_memory = cfg->connection_memory,
        .tls_cert = cfg->tls_cert,
        .tls_key = cfg->tls_key,
    };
}

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(signal_pipe[1], &b, 1);
    (void)w;
    errno = saved;
}

static int install_signals(void)
{
    if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN); /* a vanished client (or closed stdout) is an error, not death */
    return 0;
}

/* Blocks until a signal arrives (or timeout_ms passes, -1 = forever). Returns the signal
 * number, 0 on timeout. */
static int wait_signal(int timeout_ms)
{
    struct pollfd pfd = {signal_pipe[0], POLLIN, 0};
    for (;;) {
        int n = poll(&pfd, 1, timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        unsigned char b = 0;
        if (read(signal_pipe[0], &b, 1) == 1)
            return b;
    }
}

/* Runs during shutdown: a second signal or the time limit ends the process. */
static void *shutdown_watchdog(void *arg)
{
    (void)arg;
    int sig = wait_signal(SHUTDOWN_LIMIT_MS);
    if (sig)
        log_event(LOG_WARN, "shutdown", "msg=\"second signal: exiting now\" signal=%d", sig);
    else
        log_event(LOG_ERROR, "shutdown", "msg=\"shutdown took over %d s: exiting now\"",
                  SHUTDOWN_LIMIT_MS / 1000);
    _exit(1);
}

/* Opens the store and starts security, metrics, the job runtime, the event streams and the
 * HTTP framework, in that order; *port is where it listens. 0, or -1 after saying why on
 * stderr (what did start is stopped by stop_services). */
static int start_services(server *srv, int *port)
{
    const config *cfg = &srv->cfg;
    char err[1024] = "";
    store_error serr;
    memset(&serr, 0, sizeof serr);
    /* --store (a postgres:// URI) or SQLite in --data (creates the directory) */
    srv->st = store_open(cfg->store[0] ? cfg->store : cfg->data, &serr);
    if (!srv->st) {
        fprintf(stderr, "backpropd: store: %s\n",
                serr.msg[0] ? serr.msg : "could not open the store");
        return -1;
    }
    store_set_limits(srv->st, &(store_limits){.max_active = cfg->max_queue,
                                              .max_active_owner = cfg->quota_jobs,
                                              .max_bytes_owner = cfg->quota_bytes});
    if (!(srv->sec = security_new(cfg, err, sizeof err))) {
        fprintf(stderr, "backpropd: security: %s\n", err);
        return -1;
    }
    if (!(srv->job_cache = handlers_job_cache_new()) ||
        !(srv->metrics = metrics_new(n_routes))) {
        fprintf(stderr, "backpropd: out of memory\n");
        return -1;
    }
    int workers = cfg->workers > 0 ? cfg->workers : (srv->cores > 0 ? srv->cores : 1);
    jobs_settings js = {.workers = workers, .job_threads = cfg->job_threads,
                        .cores = srv->cores > 0 ? srv->cores : 1,
                        .checkpoint_seconds = cfg->checkpoint_seconds,
                        .before_workers = one_blas_thread};
    if (!(srv->jobs = jobs_new(srv->st, &js, err, sizeof err))) {
        fprintf(stderr, "backpropd: jobs: %s\n", err);
        return -1;
    }
    if (!(srv->events = events_new(srv->jobs, srv->st, err, sizeof err))) {
        fprintf(stderr, "backpropd: %s\n", err);
        return -1;
    }
    if (jobs_start(srv->jobs, err, sizeof err) != 0) {
        fprintf(stderr, "backpropd: jobs: %s\n", err);
        return -1;
    }
    http_settings hs = http_settings_of(cfg);
    srv->http = http_start(&hs, routes, n_routes, srv, &hooks, port, err, sizeof err);
    if (!srv->http) {
        fprintf(stderr, "backpropd: %s\n", err);
        return -1;
    }
    return 0;
}

/* Stops and frees everything start_services started (any part of it; NULLs are no-ops), in
 * the order a shutdown needs: the workers stop at a batch boundary, checkpoint and release
 * their jobs and the event streams end; then HTTP answers what it accepted and stops; then
 * the streams (no callback can reach them any more) and the rest are freed. */
static void stop_services(server *srv)
{
    jobs_stop(srv->jobs);
    http_stop(srv->http);
    srv->http = NULL;
    events_free(srv->events);
    jobs_free(srv->jobs);
    metrics_free(srv->metrics);
    handlers_job_cache_free(srv->job_cache);
    security_free(srv->sec);
    store_close(srv->st);
}

/* The "listening" line on stdout (what tests and scripts wait for) and the start log line. */
static void announce(const server *srv, int port)
{
    const config *cfg = &srv->cfg;
    int v6 = strchr(cfg->bind, ':') != NULL;
    printf("listening http%s://%s%s%s:%d\n", cfg->tls_cert[0] ? "s" : "", v6 ? "[" : "",
           cfg->bind, v6 ? "]" : "", port);
    fflush(stdout);
    log_event(LOG_INFO, "start",
              "bind=%s port=%d store=%s data=%s workers=%d job_threads=%d math_threads=%d "
              "http_threads=%d keys=%d tls=%d blas=%s",
              cfg->bind, port, store_engine_of(srv->st), cfg->store[0] ? "-" : cfg->data,
              cfg->workers, cfg->job_threads, cfg->math_threads, cfg->http_threads,
              security_has_keys(srv->sec), cfg->tls_cert[0] != '\0', blas_core_name());
}

/* Serves until SIGINT/SIGTERM; then new jobs get 503 and the shutdown watchdog runs (the stop
 * itself is stop_services). */
static void serve_until_signal(server *srv)
{
    int sig = wait_signal(-1);
    log_event(LOG_INFO, "shutdown", "signal=%s", sig == SIGINT ? "INT" : "TERM");
    pthread_t watchdog;
    if (pthread_create(&watchdog, NULL, shutdown_watchdog, NULL) == 0)
        pthread_detach(watchdog);
    atomic_store(&srv->shutting_down, 1);
}

int main(int argc, char **argv)
{
    blas_env_setup(argv); /* may re-exec this binary with OPENBLAS_CORETYPE set */

    char err[1024] = "";
    server srv;
    memset(&srv, 0, sizeof srv);
    atomic_init(&srv.shutting_down, 0);

    config_result cr = config_load(&srv.cfg, argc, argv, err, sizeof err);
    if (cr == CONFIG_EXIT)
        return 0;
    if (cr == CONFIG_ERROR) {
        fprintf(stderr, "backpropd: %s\n", err);
        return 2;
    }
    srv.cores = config_cores();
    log_set_level(srv.cfg.log_level);
    if (install_signals() != 0) {
        fprintf(stderr, "backpropd: signals: %s\n", strerror(errno));
        return 1;
    }
    int rc = 1, port = 0;
    if (start_services(&srv, &port) == 0) {
        announce(&srv, port);
        serve_until_signal(&srv);
        rc = 0;
    }
    double t0 = clock_monotonic();
    stop_services(&srv);
    if (rc == 0)
        log_event(LOG_INFO, "stopped", "ms=%.1f", 1e3 * (clock_monotonic() - t0));
    return rc;
}
