/* bench_service.c — the training service under load:
 *   1. wrk --latency on GET /healthz and GET /v1/jobs/{id} with the workers idle, then while
 *      both workers train: requests/s and p99 each time, and the loss (target: < 20% fewer
 *      requests/s, p99 < 10 ms); then GET /v1/jobs/{id} against a bare libmicrohttpd server in
 *      this process (the daemon set up as server/http/http.c sets ours up: internal polling
 *      thread + epoll, a pool of --http-threads' default 2, the same connection memory, limit
 *      and timeout, keep-alive; it answers on MHD's second call, as ours does, with one
 *      prepared response of exactly the job's JSON bytes), the two wrk runs moments apart,
 *      three rounds (target: ours >= 50% of the bare server's requests/s);
 *   2. a W2-shaped job (784-256-128-10, adam, batch 256, on a seeded synthetic set; m = 6000
 *      rows instead of 60000 to keep the upload short) through the service: its samples/s per
 *      epoch (from the SSE progress events) against the core's own bp_trainer_epoch on the same
 *      data, spec and config in this process, both on every core: the server with --workers 1
 *      --job-threads <cores>, the core's trainer on a bp_pool of <cores> threads (BLAS one
 *      thread per call on both sides, as the server runs it). Target: >= 90%.
 * Starts build/backpropd (BACKPROPD_BIN) itself on a free port with a temporary data dir.
 */
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <jansson.h>
#include <microhttpd.h>

#include "bench/bench_util.h"
#include "core/bp.h"
#include "server/blas_env.h"
#include "tests/harness.h"

#define W2_ROWS 6000
#define WRK_SECONDS "5"

/* One request; the body (new, NUL-terminated) into *out. Returns the status or -1. */
static long request(const srv *s, const char *method, const char *path, const char *ctype,
                    const char *body, size_t len, char **out)
{
    resp r;
    long status = http_req(s, method, path, ctype, body, len, NULL, &r) == 0 ? r.status : -1;
    if (out) {
        *out = r.body;
        r.body = NULL;
    }
    resp_free(&r);
    return status;
}

static json_t *request_json(const srv *s, const char *method, const char *path,
                            const char *body, long want)
{
    char *out = NULL;
    long st = request(s, method, path, body ? "application/json" : NULL, body,
                      body ? strlen(body) : 0, &out);
    json_t *j = st == want ? json_loads(out, 0, NULL) : NULL;
    if (!j)
        fprintf(stderr, "bench_service: %s %s -> %ld %s\n", method, path, st, out);
    free(out);
    return j;
}

/* wrk --latency on url: requests/s, p99 (ms) and, when n is not NULL, the requests made.
 * 0 ok. */
static int run_wrk_n(const char *url, double *rps, double *p99_ms, double *n)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "wrk -t2 -c16 -d" WRK_SECONDS "s --latency '%s' 2>&1", url);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[256];
    *rps = NAN;
    *p99_ms = NAN;
    while (fgets(line, sizeof line, p)) {
        double v;
        char unit[8];
        if (sscanf(line, "Requests/sec: %lf", &v) == 1)
            *rps = v;
        else if (n && sscanf(line, " %lf requests in", &v) == 1)
            *n = v;
        else if (sscanf(line, " 99%% %lf%7s", &v, unit) == 2)
            *p99_ms = !strcmp(unit, "us") ? v / 1000 : !strcmp(unit, "s") ? v * 1000 : v;
    }
    return pclose(p) == 0 && isfinite(*rps) ? 0 : -1;
}

static int run_wrk(const char *url, double *rps, double *p99_ms)
{
    return run_wrk_n(url, rps, p99_ms, NULL);
}

/* CPU seconds (user + system, all threads) process pid has used so far; NaN if unknown. */
static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[got] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                     &st) != 2)
        return NAN;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* wrk on url against the server process pid: requests/s and that process's CPU microseconds
 * per request (what a loaded box disturbs far less than requests/s). 0 ok. */
static int run_wrk_cpu(const char *url, pid_t pid, double *rps, double *us_per_req)
{
    double p99, n = NAN, c0 = cpu_seconds(pid);
    int rc = run_wrk_n(url, rps, &p99, &n);
    *us_per_req = (cpu_seconds(pid) - c0) * 1e6 / n;
    return rc;
}

/* CSV "label,x1,…" of the synthetic set (new). */
static char *to_csv(const double *X, const int32_t *labels, int64_t m, int n, size_t *len)
{
    size_t cap = (size_t)m * (size_t)(n + 1) * 12 + 16, o = 0;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    for (int64_t i = 0; i < m; i++) {
        o += (size_t)snprintf(b + o, cap - o, "%d", labels[i]);
        for (int k = 0; k < n; k++)
            o += (size_t)snprintf(b + o, cap - o, ",%.6g", X[i * n + k]);
        b[o++] = '\n';
    }
    b[o] = '\0';
    *len = o;
    return b;
}

/* A seeded synthetic set, its CSV text and its id once uploaded; synth_free frees all. */
typedef struct {
    double *X, *Y; /* m × n, m × 10 */
    int32_t *L;    /* m */
    char *csv;     /* "label,x1,…" text */
    size_t len;
    char *ds;      /* dataset id, NULL until uploaded */
} synth;

static void synth_free(synth *d)
{
    free(d->X);
    free(d->Y);
    free(d->L);
    free(d->csv);
    free(d->ds);
}

static char *upload(const srv *s, const char *ctype, const char *body, size_t len)
{
    char *out = NULL;
    long st = request(s, "POST", "/v1/datasets", ctype, body, len, &out);
    json_t *j = st == 201 ? json_loads(out, 0, NULL) : NULL;
    char *id = j ? strdup(json_string_value(json_object_get(j, "id"))) : NULL;
    if (!id)
        fprintf(stderr, "bench_service: upload -> %ld %s\n", st, out);
    json_decref(j);
    free(out);
    return id;
}

static char *submit(const srv *s, const char *ds, const char *layers,
                    const char *training)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"network\":{\"layers\":%s},\"dataset\":\"%s\",\"training\":{%s}}", layers, ds,
             training);
    json_t *j = request_json(s, "POST", "/v1/jobs", body, 202);
    char *id = j ? strdup(json_string_value(json_object_get(j, "id"))) : NULL;
    json_decref(j);
    return id;
}

static const char *job_status(const srv *s, const char *id, int64_t *epoch)
{
    static char st[32];
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    json_t *j = request_json(s, "GET", path, NULL, 200);
    snprintf(st, sizeof st, "%s", j ? json_string_value(json_object_get(j, "status")) : "?");
    if (epoch)
        *epoch = j ? json_integer_value(json_object_get(json_object_get(j, "progress"), "epoch"))
                   : 0;
    json_decref(j);
    return st;
}

/* ---------------------------------------------------------------- bare libmicrohttpd */

#define BARE_ROUNDS 3

/* The whole handler of the bare server: nothing on the first call, the prepared response on
 * the second (libmicrohttpd's documented pattern, which ours follows too). */
static enum MHD_Result bare_access(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version,
                                   const char *upload_data, size_t *upload_data_size,
                                   void **con_cls)
{
    static int first_seen;
    (void)url, (void)method, (void)version, (void)upload_data;
    if (!*con_cls) {
        *con_cls = &first_seen;
        return MHD_YES;
    }
    *upload_data_size = 0;
    return MHD_queue_response(conn, MHD_HTTP_OK, cls);
}

/* Starts a bare daemon answering body on 127.0.0.1 (a free port into *port). NULL on error. */
static struct MHD_Daemon *bare_start(struct MHD_Response *mresp, uint16_t *port)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        flags |= MHD_USE_EPOLL;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    /* server/config.c's defaults: --http-threads 2, --max-connections 1024, --idle-timeout
     * 60, --connection-memory 128K. */
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, bare_access, mresp, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2, MHD_OPTION_CONNECTION_LIMIT, (unsigned)1024,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)128 * 1024, MHD_OPTION_END);
    const union MHD_DaemonInfo *info = d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)
                                         : NULL;
    *port = info ? info->port : 0;
    return d;
}

/* GET u_job on our server against the bare server answering the same bytes, wrk runs moments
 * apart, BARE_ROUNDS rounds: every run and the median ratio, printed. 0 ok. */
static int bare_ratio(const srv *s, const char *job_path, const char *u_job)
{
    char *body = NULL;
    if (request(s, "GET", job_path, NULL, NULL, 0, &body) != 200 || !body) {
        free(body);
        return -1;
    }
    size_t len = strlen(body);
    struct MHD_Response *mresp =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY);
    free(body);
    uint16_t port = 0;
    struct MHD_Daemon *d = NULL;
    int rc = -1;
    if (!mresp || MHD_add_response_header(mresp, "Content-Type", "application/json") != MHD_YES ||
        !(d = bare_start(mresp, &port)) || !port)
        goto cleanup;
    char u_bare[96];
    snprintf(u_bare, sizeof u_bare, "http://127.0.0.1:%u/v1/jobs/x", (unsigned)port);
    double ours[BARE_ROUNDS], bare[BARE_ROUNDS], ratio[BARE_ROUNDS];
    double ours_us[BARE_ROUNDS], bare_us[BARE_ROUNDS], cpu_ratio[BARE_ROUNDS];
    for (int i = 0; i < BARE_ROUNDS; i++) {
        if (run_wrk_cpu(u_bare, getpid(), &bare[i], &bare_us[i]) < 0 ||
            run_wrk_cpu(u_job, s->pid, &ours[i], &ours_us[i]) < 0)
            goto cleanup;
        ratio[i] = ours[i] / bare[i];
        cpu_ratio[i] = bare_us[i] / ours_us[i];
    }
    printf("  GET /v1/jobs/{id} vs a bare libmicrohttpd server (same daemon setup, a %zu-byte "
           "body), wrk runs moments apart; server CPU per request beside (the bare server's is "
           "this process's):\n", len);
    for (int i = 0; i < BARE_ROUNDS; i++)
        printf("    round %d: ours %8.0f req/s | bare %8.0f req/s | %.2f    CPU ours %5.1f us | "
               "bare %5.1f us | bare/ours %.2f\n", i + 1, ours[i], bare[i], ratio[i],
               ours_us[i], bare_us[i], cpu_ratio[i]);
    printf("  ratio GET /v1/jobs/{id} vs bare libmicrohttpd: %.2f (median of %d; target >= "
           "0.50); by server CPU per request: %.2f\n", bench_median(ratio, BARE_ROUNDS),
           BARE_ROUNDS, bench_median(cpu_ratio, BARE_ROUNDS));
    rc = 0;
cleanup:
    if (d)
        MHD_stop_daemon(d);
    if (mresp)
        MHD_destroy_response(mresp);
    return rc;
}

/* ---------------------------------------------------------------- part 1: wrk */

/* 1 while GET /v1/jobs/{id} says "running" (a deleted job's 404 is not). */
static int still_running(const srv *s, const char *id)
{
    char path[128], *out = NULL;
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    int running = request(s, "GET", path, NULL, NULL, 0, &out) == 200 && out &&
                  strstr(out, "\"status\":\"running\"");
    free(out);
    return running;
}

static int bench_requests(void)
{
    srv s = {0};
    const char *args[] = {"--log-level", "warn", "--workers", "2", NULL};
    if (srv_start(&s, args) < 0) {
        fprintf(stderr, "bench_service: server did not start\n");
        bench_stop(&s);
        return -1;
    }
    int rc = -1;
    char *j0 = NULL, *j1 = NULL, *j2 = NULL;
    synth d = {0};
    /* A 20000 × 128 synthetic set and 128-256-10 sgd jobs keep both workers busy. */
    if (bench_synthetic(&d.X, &d.Y, &d.L, 20000, 128, 10, 5) < 0 ||
        !(d.csv = to_csv(d.X, d.L, 20000, 128, &d.len)) ||
        !(d.ds = upload(&s, "text/csv", d.csv, d.len)))
        goto cleanup;
    const char *ds = d.ds;
    j0 = submit(&s, ds, "[128,32,10]", "\"optimizer\":\"adam\",\"learning_rate\":0.01,"
                                       "\"batch_size\":256,\"epochs\":2");
    if (!j0)
        goto cleanup;
    while (strcmp(job_status(&s, j0, NULL), "succeeded") != 0)
        usleep(50000);
    char u_health[128], u_job[160];
    snprintf(u_health, sizeof u_health, "%s/healthz", s.base);
    snprintf(u_job, sizeof u_job, "%s/v1/jobs/%s", s.base, j0);
    double idle_h_rps, idle_h_p99, idle_j_rps, idle_j_p99;
    if (run_wrk(u_health, &idle_h_rps, &idle_h_p99) < 0 ||
        run_wrk(u_job, &idle_j_rps, &idle_j_p99) < 0) {
        fprintf(stderr, "bench_service: wrk failed (is it installed?)\n");
        goto cleanup;
    }
    const char *longjob = "\"optimizer\":\"sgd\",\"learning_rate\":0.01,\"batch_size\":64,"
                          "\"epochs\":100000";
    j1 = submit(&s, ds, "[128,256,10]", longjob);
    j2 = submit(&s, ds, "[128,256,10]", longjob);
    if (!j1 || !j2)
        goto cleanup;
    int64_t e1 = 0, e2 = 0;
    while (e1 < 1 || e2 < 1) {
        usleep(50000);
        job_status(&s, j1, &e1);
        job_status(&s, j2, &e2);
    }
    double busy_h_rps, busy_h_p99, busy_j_rps, busy_j_p99;
    if (run_wrk(u_health, &busy_h_rps, &busy_h_p99) < 0 ||
        run_wrk(u_job, &busy_j_rps, &busy_j_p99) < 0)
        goto cleanup;
    int64_t f1 = 0, f2 = 0;
    job_status(&s, j1, &f1);
    job_status(&s, j2, &f2);
    printf("requests (wrk -t2 -c16 -d%ss, 2 cores shared by wrk, server and training):\n",
           WRK_SECONDS);
    printf("  GET /healthz        idle %8.0f req/s p99 %6.2f ms | 2 workers training %8.0f req/s "
           "p99 %6.2f ms | loss %5.1f%%\n",
           idle_h_rps, idle_h_p99, busy_h_rps, busy_h_p99, 100 * (1 - busy_h_rps / idle_h_rps));
    printf("  GET /v1/jobs/{id}   idle %8.0f req/s p99 %6.2f ms | 2 workers training %8.0f req/s "
           "p99 %6.2f ms | loss %5.1f%%\n",
           idle_j_rps, idle_j_p99, busy_j_rps, busy_j_p99, 100 * (1 - busy_j_rps / idle_j_rps));
    printf("  (the training jobs went on meanwhile: epochs %lld and %lld)\n", (long long)f1,
           (long long)f2);
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", j1);
    request(&s, "DELETE", path, NULL, NULL, 0, NULL);
    snprintf(path, sizeof path, "/v1/jobs/%s", j2);
    request(&s, "DELETE", path, NULL, NULL, 0, NULL);
    /* Idle again (the deletes cancel the two jobs): ours against the bare server. */
    for (int i = 0; i < 100 && (still_running(&s, j1) || still_running(&s, j2)); i++)
        usleep(50000);
    snprintf(path, sizeof path, "/v1/jobs/%s", j0);
    if (bare_ratio(&s, path, u_job) < 0)
        fprintf(stderr, "bench_service: the bare libmicrohttpd comparison failed\n");
    rc = 0;
cleanup:
    bench_stop(&s);
    synth_free(&d);
    free(j0);
    free(j1);
    free(j2);
    return rc;
}

/* ---------------------------------------------------------------- part 2: throughput */

#define W2_EPOCHS 6
#define W2_ROUNDS 3 /* service and core interleaved: the box is shared */
#define W2_TRAINING "\"optimizer\":\"adam\",\"learning_rate\":0.001,\"batch_size\":256," \
                    "\"epochs\":6,\"seed\":1,\"lambda\":0.0001"

/* samples/s of each epoch through the service, from the job's event stream. */
static int service_w2(const srv *s, const char *ds, double *sps, int *n)
{
    char *id = submit(s, ds, "[784,256,128,10]", W2_TRAINING);
    if (!id)
        return -1;
    char path[128], *out = NULL;
    snprintf(path, sizeof path, "/v1/jobs/%s/events", id);
    long st = request(s, "GET", path, NULL, NULL, 0, &out); /* ends with the final status */
    *n = 0;
    for (const char *p = out; st == 200 && (p = strstr(p, "event: progress\ndata: ")); ) {
        p += strlen("event: progress\ndata: ");
        json_t *j = json_loadb(p, strcspn(p, "\n"), 0, NULL);
        if (j && *n < W2_EPOCHS)
            sps[(*n)++] = json_number_value(json_object_get(j, "samples_per_second"));
        json_decref(j);
    }
    free(out);
    free(id);
    return *n == W2_EPOCHS ? 0 : -1;
}

/* The same epochs with the core in this process, on a thread with the workers' nice 10 so
 * both see the same share of a busy box. */
typedef struct {
    const double *X, *Y;
    const int32_t *L;
    double *sps;
    int rc;
} core_run;

static int core_w2(const double *X, const double *Y, const int32_t *L, double *sps);

/* The cores of this machine: the service's threads for a job running alone (--job-threads 0)
 * and the core's pool here. */
static int bench_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n >= 1 ? (int)n : 1;
}
static void *core_thread(void *arg)
{
    core_run *c = arg;
    setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
    c->rc = core_w2(c->X, c->Y, c->L, c->sps);
    return NULL;
}

static int core_w2_niced(const double *X, const double *Y, const int32_t *L, double *sps)
{
    core_run c = {X, Y, L, sps, -1};
    pthread_t t;
    if (pthread_create(&t, NULL, core_thread, &c) != 0)
        return -1;
    pthread_join(t, NULL);
    return c.rc;
}

static int core_w2(const double *X, const double *Y, const int32_t *L, double *sps)
{
    bp_spec spec = {4, {784, 256, 128, 10}, BP_ACT_SIGMOID, BP_OUT_SIGMOID};
    bp_train_config c = bench_config(BP_OPT_ADAM, 0.001, 0.0001, 256, W2_EPOCHS);
    c.seed = 1;
    bp_data d = {X, Y, L, W2_ROWS, 784, 10};
    bp_error e = {{0}};
    bp_trainer *t = bp_trainer_new(&spec, &c, &d, NULL, &e);
    bp_pool *pool = bp_pool_new(bench_cores(), &e);
    if (!t || !pool || bp_trainer_set_pool(t, pool, &e) != 0) {
        bp_trainer_free(t);
        bp_pool_free(pool);
        return -1;
    }
    for (int i = 0; i < W2_EPOCHS; i++) {
        bp_progress p;
        bp_trainer_epoch(t, &p, NULL, &e);
        sps[i] = p.samples_per_second;
    }
    bp_trainer_free(t);
    bp_pool_free(pool);
    return 0;
}

static int bench_throughput(void)
{
    int rc = -1;
    synth d = {0};
    srv s = {0};
    char threads[16];
    snprintf(threads, sizeof threads, "%d", bench_cores());
    const char *args[] = {"--log-level", "warn", "--workers", "1", "--job-threads", threads,
                          NULL};
    if (bench_synthetic(&d.X, &d.Y, &d.L, W2_ROWS, 784, 10, 2) < 0 ||
        !(d.csv = to_csv(d.X, d.L, W2_ROWS, 784, &d.len)))
        goto cleanup;
    if (srv_start(&s, args) < 0)
        goto cleanup;
    double t0 = test_now_s();
    d.ds = upload(&s, "text/csv", d.csv, d.len);
    double t_up = test_now_s() - t0;
    double *X = d.X;
    const char *ds = d.ds;
    /* The uploaded CSV has 6 significant digits: train the core on exactly those values. */
    for (int64_t i = 0; i < (int64_t)W2_ROWS * 784; i++) {
        char b[32];
        snprintf(b, sizeof b, "%.6g", X[i]);
        X[i] = strtod(b, NULL);
    }
    double svc[W2_ROUNDS][W2_EPOCHS], core[W2_ROUNDS][W2_EPOCHS];
    int n = 0;
    blas_set_threads(1);
    for (int round = 0; ds && round < W2_ROUNDS; round++) {
        if (service_w2(&s, ds, svc[round], &n) < 0 ||
            core_w2_niced(X, d.Y, d.L, core[round]) < 0)
            goto cleanup;
    }
    if (!ds)
        goto cleanup;
    double all_s[W2_ROUNDS * W2_EPOCHS], all_c[W2_ROUNDS * W2_EPOCHS];
    for (int r = 0; r < W2_ROUNDS; r++)
        for (int i = 1; i < W2_EPOCHS; i++) { /* epoch 1 warms caches up */
            all_s[r * (W2_EPOCHS - 1) + i - 1] = svc[r][i];
            all_c[r * (W2_EPOCHS - 1) + i - 1] = core[r][i];
        }
    double ms = bench_median(all_s, W2_ROUNDS * (W2_EPOCHS - 1));
    double mc = bench_median(all_c, W2_ROUNDS * (W2_EPOCHS - 1));
    printf("W2 training (784-256-128-10, adam, batch 256, m = %d, %d threads on each side: "
           "--job-threads %d / a bp_pool of %d; upload of %.0f MB CSV %.2f s):\n",
           W2_ROWS, bench_cores(), bench_cores(), bench_cores(), (double)d.len / 1e6, t_up);
    printf("  through the service %8.0f samples/s | core bp_trainer_epoch %8.0f samples/s | "
           "ratio service vs core on the same %d threads %5.1f%% (target >= 90%%)\n",
           ms, mc, bench_cores(), 100 * ms / mc);
    rc = 0;
cleanup:
    bench_stop(&s);
    synth_free(&d);
    return rc;
}

int main(int argc, char **argv)
{
    (void)argc;
    bench_init("bench_service", argv);
    int rc = 0;
    if (bench_throughput() < 0) {
        fprintf(stderr, "bench_service: throughput part failed\n");
        rc = 1;
    }
    if (bench_requests() < 0) {
        fprintf(stderr, "bench_service: request part failed\n");
        rc = 1;
    }
    curl_global_cleanup();
    return rc;
}
