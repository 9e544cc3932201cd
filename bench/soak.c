/* soak.c — the project's own hostile-load proof (`make soak`, tests/soak), against the binary
 * named by BACKPROPD_BIN, with figures rather than a verdict alone:
 *   soak kill [ROUNDS]  kill -9 at random moments while datasets are uploaded and jobs train
 *                       and checkpoint, ROUNDS times (default 200); then every acknowledged
 *                       dataset is there with its rows, every acknowledged job finishes once,
 *                       succeeded, with weights bit-identical to the same job run without kills;
 *   soak load           SSE churn (3000 streams opened and dropped), slowloris (1100 slow
 *                       connections from 20 addresses against 1024 slots), trickled bodies (cut
 *                       by --header-timeout's body floor), and
 *                       /healthz probed throughout: worst probe, probes answered, and the
 *                       server's open descriptors and resident memory before and after.
 * Exit status 0 when every check held. One line per figure, "soak: …".
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench_util.h"

static int failures;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("soak: %s ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    failures += !ok;
}

/* ------------------------------------------------------------------ kill -9 rounds */

#define JOB                                                                              \
    "{\"network\": {\"layers\": [64, 16, 10]}, \"dataset\": \"%s\", \"training\": "         \
    "{\"optimizer\": \"adam\", \"learning_rate\": 0.01, \"epochs\": 60, \"batch_size\": 32, " \
    "\"seed\": 11}}"

/* POST body → the id of the 201/202 answer into id; the status (0: no answer). */
static long post_id(const srv *s, const char *path, const char *ct, const char *body, size_t len,
                    char *id, size_t idlen)
{
    resp r;
    if (http_req(s, "POST", path, ct, body, len, NULL, &r) != 0)
        return 0;
    long st = r.status;
    json_t *j = resp_json(&r);
    const char *v = j ? json_string_value(json_object_get(j, "id")) : NULL;
    snprintf(id, idlen, "%s", v ? v : "");
    json_decref(j);
    resp_free(&r);
    return st;
}

/* The job's final weights as text (new), after it finished; NULL when it did not succeed. */
static char *final_weights(const srv *s, const char *job, double timeout_s)
{
    char path[128];
    double t0 = test_now_s();
    for (;;) {
        snprintf(path, sizeof path, "/v1/jobs/%s", job);
        resp r;
        if (http_get(s, path, &r) != 0)
            return NULL;
        json_t *j = resp_json(&r);
        resp_free(&r);
        const char *st = j ? json_string_value(json_object_get(j, "status")) : NULL;
        int done = st && strcmp(st, "running") != 0 && strcmp(st, "queued") != 0;
        int ok = st && strcmp(st, "succeeded") == 0;
        json_decref(j);
        if (done && !ok)
            return NULL;
        if (done)
            break;
        if (test_now_s() - t0 > timeout_s)
            return NULL;
        usleep(50 * 1000);
    }
    snprintf(path, sizeof path, "/v1/jobs/%s/weights", job);
    resp r;
    if (http_get(s, path, &r) != 0 || r.status != 200) {
        resp_free(&r);
        return NULL;
    }
    json_t *j = resp_json(&r);
    resp_free(&r);
    char *theta = j ? json_dumps(json_object_get(j, "theta"), JSON_COMPACT) : NULL;
    json_decref(j);
    return theta;
}

static int soak_kill(int rounds)
{
    srv s;
    const char *args[] = {"--checkpoint-seconds", "1", "--workers", "2", NULL};
    if (srv_start(&s, args) != 0)
        return 1;
    size_t csv_len;
    char *csv = test_slurp("tests/data/digits.csv", &csv_len);
    char ds[64], ref_job[64], body[512];
    if (post_id(&s, "/v1/datasets", "text/csv", csv, csv_len, ds, sizeof ds) != 201)
        return 1;
    snprintf(body, sizeof body, JOB, ds);
    post_id(&s, "/v1/jobs", "application/json", body, strlen(body), ref_job, sizeof ref_job);
    char *ref = final_weights(&s, ref_job, 300);
    check(ref != NULL, "reference job trained without kills");

    enum { MAX_ACK = 4096 };
    static char ack_ds[MAX_ACK][64], ack_job[MAX_ACK][64];
    int n_ds = 0, n_job = 0, restarts = 0, refused = 0;
    unsigned seed = 12345;
    double t0 = test_now_s();
    for (int round = 0; round < rounds; round++) {
        char id[64];
        /* a small upload (acknowledged or not: only a 201 counts) and, every 4th round, a job */
        char small[256];
        int k = snprintf(small, sizeof small, "{\"X\": [[%d, 1], [2, %d]], \"y\": [0, 1]}", round,
                         round);
        long st = post_id(&s, "/v1/datasets", "application/json", small, (size_t)k, id, sizeof id);
        if (st == 201 && n_ds < MAX_ACK)
            snprintf(ack_ds[n_ds++], 64, "%s", id);
        if (round % 4 == 0) {
            st = post_id(&s, "/v1/jobs", "application/json", body, strlen(body), id, sizeof id);
            if (st == 202 && n_job < MAX_ACK)
                snprintf(ack_job[n_job++], 64, "%s", id);
            refused += st != 202;
        }
        seed = seed * 1103515245u + 12345u;
        usleep(100 * 1000 + (seed >> 8) % 900000); /* 0.1 .. 1 s of training, checkpoints */
        srv_kill9(&s);
        if (srv_restart(&s, args) != 0) {
            check(0, "restart failed after %d rounds", round);
            return 1;
        }
        restarts++;
    }
    double secs = test_now_s() - t0;
    printf("soak: %d kill -9 rounds in %.0f s: %d datasets and %d jobs acknowledged, %d job "
           "requests refused (queue full)\n", rounds, secs, n_ds, n_job, refused);
    int lost = 0;
    for (int i = 0; i < n_ds; i++) {
        char path[96];
        snprintf(path, sizeof path, "/v1/datasets/%.40s", ack_ds[i]);
        resp r;
        lost += http_get(&s, path, &r) != 0 || r.status != 200 || !strstr(r.body, "\"rows\":2");
        resp_free(&r);
    }
    check(lost == 0, "acknowledged datasets: %d of %d missing or changed", lost, n_ds);
    int differ = 0, failed = 0;
    for (int i = 0; i < n_job; i++) {
        char *w = final_weights(&s, ack_job[i], 600);
        failed += !w;
        differ += w && ref && strcmp(w, ref) != 0;
        free(w);
    }
    check(failed == 0 && differ == 0,
          "acknowledged jobs: %d of %d failed or lost, %d with other weights than the reference",
          failed, n_job, differ);
    char *log = srv_log(&s);
    check(log && !strstr(log, "Sanitizer"), "no sanitizer report");
    free(log);
    free(ref);
    free(csv);
    char why[256];
    srv_shutdown(&s, why, sizeof why);
    srv_cleanup(&s);
    return 0;
}

/* ------------------------------------------------------------------ load */

static long open_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    long n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 2;
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

/* A raw connection from source address 127.0.0.<from> sending `what`; its socket or -1. */
static int raw_connect(int port, int from, const char *what)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in src = {0}, dst = {0};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000000u | (unsigned)from);
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)port);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0 ||
        connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0 ||
        send(fd, what, strlen(what), MSG_NOSIGNAL) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int n_trickle_open(const int *fd, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += fd[i] >= 0;
    return k;
}

/* One /healthz probe on a fresh connection: its time in ms, or -1 (no answer in 5 s). */
static double probe(const srv *s)
{
    double t0 = test_now_ms();
    char *got = raw_exchange_ms(s->port, "GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                         "Connection: close\r\n\r\n", 5000);
    int ok = got && strncmp(got, "HTTP/1.1 200", 12) == 0;
    free(got);
    return ok ? test_now_ms() - t0 : -1;
}

static int soak_load(void)
{
    srv s;
    const char *args[] = {"--workers", "1", NULL};
    if (srv_start(&s, args) != 0)
        return 1;
    size_t csv_len;
    char *csv = test_slurp("tests/data/digits.csv", &csv_len);
    char ds[64], busy[64], queued[64], body[512];
    post_id(&s, "/v1/datasets", "text/csv", csv, csv_len, ds, sizeof ds);
    snprintf(body, sizeof body,
             "{\"network\": {\"layers\": [64, 16, 10]}, \"dataset\": \"%s\", \"training\": "
             "{\"epochs\": 1000000, \"seed\": 1}}", ds);
    post_id(&s, "/v1/jobs", "application/json", body, strlen(body), busy, sizeof busy);
    post_id(&s, "/v1/jobs", "application/json", body, strlen(body), queued, sizeof queued);
    usleep(500 * 1000);
    long fd0 = open_fds(s.pid), rss0 = rss_kb(s.pid);
    double worst = 0;
    int probes = 0, answered = 0;

    /* SSE churn: 3000 streams on the queued job, 100 at a time, dropped at once */
    char req[256];
    snprintf(req, sizeof req, "GET /v1/jobs/%s/events HTTP/1.1\r\nHost: x\r\n\r\n", queued);
    double t0 = test_now_s();
    int opened = 0;
    for (int batch = 0; batch < 30; batch++) {
        int fds[100];
        for (int i = 0; i < 100; i++) {
            fds[i] = raw_connect(s.port, 2 + (batch * 100 + i) % 20, req);
            opened += fds[i] >= 0;
        }
        usleep(20 * 1000);
        for (int i = 0; i < 100; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        double ms = probe(&s);
        probes++;
        answered += ms >= 0;
        if (ms > worst)
            worst = ms;
    }
    printf("soak: SSE churn: %d of 3000 streams opened and dropped in %.1f s\n", opened,
           test_now_s() - t0);

    /* slowloris: 1100 connections from 20 addresses that never finish their headers */
    static int slow[1100];
    int held = 0;
    for (int i = 0; i < 1100; i++) {
        slow[i] = raw_connect(s.port, 2 + i % 20, "GET /healthz HTTP/1.1\r\nX-Slow: ");
        held += slow[i] >= 0;
    }
    int slow_ok = 0;
    for (int i = 0; i < 6; i++) {
        double ms = probe(&s);
        probes++;
        answered += ms >= 0;
        slow_ok += ms >= 0;
        if (ms > worst || ms < 0)
            worst = ms < 0 ? 5000 : ms;
        usleep(500 * 1000);
    }
    printf("soak: slowloris: %d of 1100 slow connections accepted; /healthz answered %d of 6 "
           "meanwhile\n", held, slow_ok);
    check(slow_ok >= 5, "slowloris: %d of 6 probes answered", slow_ok);
    for (int i = 0; i < 1100; i++)
        if (slow[i] >= 0)
            close(slow[i]);
    /* trickled bodies: 50 uploads that send a byte every 200 ms */
    int trickle[50];
    const char *head = "POST /v1/datasets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                       "\r\nContent-Length: 100000\r\n\r\n{";
    for (int i = 0; i < 50; i++)
        trickle[i] = raw_connect(s.port, 2 + i % 20, head);
    for (int t = 0; t < 70 && n_trickle_open(trickle, 50) > 0; t++) {
        for (int i = 0; i < 50; i++)
            if (trickle[i] >= 0 && send(trickle[i], " ", 1, MSG_NOSIGNAL) != 1) {
                close(trickle[i]);
                trickle[i] = -1;
            }
        usleep(200 * 1000);
    }
    int cut = 0;
    for (int i = 0; i < 50; i++) {
        cut += trickle[i] < 0;
        if (trickle[i] >= 0)
            close(trickle[i]);
    }
    printf("soak: trickled bodies (5 bytes/s): %d of 50 cut by the server within 14 s\n", cut);
    check(cut == 50, "trickled bodies cut: %d of 50", cut);
    sleep(2); /* closed sockets seen by the server */
    long fd1 = open_fds(s.pid), rss1 = rss_kb(s.pid);
    printf("soak: worst /healthz %.0f ms, %d of %d probes answered\n", worst, answered, probes);
    printf("soak: server descriptors %ld -> %ld, resident memory %ld -> %ld KiB\n", fd0, fd1,
           rss0, rss1);
    check(fd1 <= fd0 + 8, "descriptors back: %ld -> %ld", fd0, fd1);
    check(answered >= probes - 1, "probes answered: %d of %d", answered, probes);
    char *log = srv_log(&s);
    check(log && !strstr(log, "Sanitizer") && !strstr(log, "runtime error"),
          "no sanitizer report");
    free(log);
    free(csv);
    char why[256];
    int down = srv_shutdown(&s, why, sizeof why);
    check(down == 0, "clean exit on SIGTERM");
    srv_cleanup(&s);
    return 0;
}

int main(int argc, char **argv)
{
    bench_init("soak", argv);
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "kill") == 0)
        soak_kill(argc >= 3 ? atoi(argv[2]) : 200);
    else if (argc >= 2 && strcmp(argv[1], "load") == 0)
        soak_load();
    else {
        fprintf(stderr, "usage: soak kill [ROUNDS] | soak load\n");
        return 2;
    }
    printf("soak: %s\n", failures ? "FAILED" : "passed");
    return failures ? 1 : 0;
}
