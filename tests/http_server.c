/* http_server.c — integration tests of the HTTP framework, the flags and the operations
 * endpoints, against the real binary (BACKPROPD_BIN) over real HTTP: health, problem+json
 * errors (404, 405 + Allow, 413 by Content-Length and chunked, refused Transfer-Encoding,
 * 415), OPTIONS, metrics that count, the embedded OpenAPI document, keep-alive, --help and
 * bad flags, --port 0, SIGTERM, and the loopback rule.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* Checks r is an RFC 9457 problem with this status; returns its detail (new) for more checks. */
static char *assert_problem(const resp *r, long status)
{
    char *detail = problem_detail(r, status);
    char ct[128];
    cr_assert_eq(resp_header(r, "Content-Type", ct, sizeof ct), 0, "no Content-Type");
    cr_assert_str_eq(ct, "application/problem+json");
    cr_assert(*detail, "no detail: %s", r->body);
    return detail;
}

/* Runs the binary with args (no server harness); captures stdout and stderr (new) and the
 * exit status. Kills it after timeout_ms (then *exit_code = -1). */
static void run_bin(const char *const *args, char **out, char **err, int *exit_code,
                    int timeout_ms)
{
    char outpath[] = "/tmp/backpropd-out-XXXXXX", errpath[] = "/tmp/backpropd-err-XXXXXX";
    int fo = mkstemp(outpath), fe = mkstemp(errpath);
    cr_assert(fo >= 0 && fe >= 0);
    const char *argv[32];
    int n = 0;
    argv[n++] = srv_bin();
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(fo, 1);
        dup2(fe, 2);
        execv(argv[0], (char *const *)(void *)argv);
        _exit(127);
    }
    int status = 0;
    double deadline = test_now_ms() + timeout_ms;
    *exit_code = -1;
    for (;;) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        if (test_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        usleep(5000);
    }
    char **dst[2] = {out, err};
    int fds[2] = {fo, fe};
    for (int k = 0; k < 2; k++) {
        off_t len = lseek(fds[k], 0, SEEK_END);
        char *buf = calloc(1, (size_t)len + 1);
        cr_assert(buf);
        cr_assert_eq(pread(fds[k], buf, (size_t)len, 0), len);
        *dst[k] = buf;
        close(fds[k]);
    }
    unlink(outpath);
    unlink(errpath);
}

/* Value of a Prometheus sample line that starts with `series ` (0 if absent). */
static long long metric_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return atoll(line + n + 1);
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return 0;
}

Test(http_server, healthz_answers_json)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    resp r;
    cr_assert_eq(http_get(&s, "/healthz", &r), 0);
    cr_assert_eq(r.status, 200);
    char ct[64];
    cr_assert_eq(resp_header(&r, "Content-Type", ct, sizeof ct), 0);
    cr_assert_str_eq(ct, "application/json");
    json_t *j = resp_json(&r);
    cr_assert_not_null(j);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
    json_decref(j);
    resp_free(&r);

    /* HEAD: same status, no body */
    cr_assert_eq(http_req(&s, "HEAD", "/healthz", NULL, NULL, 0, NULL, &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, 0);
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(http_server, port_zero_prints_a_real_port_and_readyz)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    cr_assert(s.port > 0 && s.port < 65536);
    resp r;
    cr_assert_eq(http_get(&s, "/readyz", &r), 0);
    cr_assert_eq(r.status, 200, "readyz: %ld %s", r.status, r.body);
    json_t *j = resp_json(&r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "ready");
    json_decref(j);
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(http_server, unknown_path_is_a_404_problem)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    resp r;
    cr_assert_eq(http_get(&s, "/no/such/thing?x=1", &r), 0);
    char *detail = assert_problem(&r, 404);
    cr_assert(strstr(detail, "/no/such/thing"), "detail does not name the path: %s", detail);
    cr_assert_null(strstr(detail, "x=1"), "the query leaked into the detail: %s", detail);
    free(detail);
    resp_free(&r);
    /* bytes that are not UTF-8 still give a JSON problem */
    cr_assert_eq(http_get(&s, "/v1/%FF%FE", &r), 0);
    free(assert_problem(&r, 404));
    resp_free(&r);
    cr_assert_eq(http_req(&s, "DELETE", "/v1/datasets/%FF", NULL, NULL, 0, NULL, &r), 0);
    cr_assert(r.status == 404 || r.status == 405 || r.status == 400, "%ld", r.status);
    resp_free(&r);
    /* a path param position with an empty segment does not match */
    cr_assert_eq(http_get(&s, "/v1/jobs//cost", &r), 0);
    free(assert_problem(&r, 404));
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(http_server, wrong_method_is_405_with_allow)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    resp r;
    char allow[128];

    cr_assert_eq(http_req(&s, "DELETE", "/healthz", NULL, NULL, 0, NULL, &r), 0);
    free(assert_problem(&r, 405));
    cr_assert_eq(resp_header(&r, "Allow", allow, sizeof allow), 0, "no Allow header");
    cr_assert(strstr(allow, "GET"), "Allow: %s", allow);
    cr_assert_null(strstr(allow, "DELETE"), "Allow: %s", allow);
    resp_free(&r);

    cr_assert_eq(http_req(&s, "PUT", "/v1/datasets/ds_x", "application/json", "{}", 2, NULL, &r),
                 0);
    free(assert_problem(&r, 405));
    cr_assert_eq(resp_header(&r, "Allow", allow, sizeof allow), 0);
    cr_assert(strstr(allow, "GET") && strstr(allow, "DELETE"), "Allow: %s", allow);
    cr_assert_null(strstr(allow, "POST"), "Allow: %s", allow);
    resp_free(&r);

    cr_assert_eq(http_get(&s, "/v1/cost", &r), 0);
    free(assert_problem(&r, 405));
    cr_assert_eq(resp_header(&r, "Allow", allow, sizeof allow), 0);
    cr_assert(strstr(allow, "POST"), "Allow: %s", allow);
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

static char *filled(size_t n)
{
    char *b = malloc(n + 1);
    cr_assert(b);
    memset(b, ' ', n);
    b[0] = '{';
    b[n - 1] = '}';
    b[n] = '\0';
    return b;
}

Test(http_server, body_over_max_body_is_413_by_content_length)
{
    srv s;
    const char *const extra[] = {"--max-body", "1000", NULL};
    cr_assert_eq(srv_start(&s, extra), 0);
    char *big = filled(1001);
    resp r;
    cr_assert_eq(http_req(&s, "POST", "/v1/cost", "application/json", big, 1001, NULL, &r), 0);
    char *detail = assert_problem(&r, 413);
    cr_assert(strstr(detail, "1000"), "detail does not give the limit: %s", detail);
    free(detail);
    resp_free(&r);

    /* exactly at the limit: accepted by the framework (the handler decides what it means) */
    cr_assert_eq(http_req(&s, "POST", "/v1/cost", "application/json", big, 1000, NULL, &r), 0);
    cr_assert_neq(r.status, 413, "a body of exactly --max-body bytes was refused");
    resp_free(&r);

    /* a huge one (megabytes): refused before the server reads it (the client waits for
     * 100 Continue, gets the 413 instead and never sends the body) */
    size_t huge = 8u << 20;
    char *h = filled(huge);
    const char *const expect[] = {"Expect: 100-continue", NULL};
    cr_assert_eq(http_req(&s, "POST", "/v1/cost", "application/json", h, huge, expect, &r), 0);
    free(assert_problem(&r, 413));
    resp_free(&r);
    free(h);
    free(big);

    cr_assert_eq(http_get(&s, "/healthz", &r), 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(http_server, chunked_body_over_max_body_is_413)
{
    srv s;
    const char *const extra[] = {"--max-body", "1000", NULL};
    cr_assert_eq(srv_start(&s, extra), 0);
    const char *const chunked[] = {"Transfer-Encoding: chunked", NULL};
    char *big = filled(5000);
    resp r;
    cr_assert_eq(
        http_req(&s, "POST", "/v1/cost", "application/json", big, 5000, chunked, &r), 0);
    char *detail = assert_problem(&r, 413);
    cr_assert(strstr(detail, "1000"), "detail: %s", detail);
    free(detail);
    resp_free(&r);

    /* chunked under the limit goes through to the handler */
    cr_assert_eq(http_req(&s, "POST", "/v1/cost", "application/json", big, 999, chunked, &r),
                 0);
    cr_assert_neq(r.status, 413);
    resp_free(&r);
    free(big);

    cr_assert_eq(http_get(&s, "/healthz", &r), 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(http_server, max_body_from_the_environment_and_flag_wins)
{
    setenv("BACKPROPD_MAX_BODY", "100", 1);
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    char *body = filled(200);
    resp r;
    cr_assert_eq(http_req(&s, "POST", "/v1/cost", "application/json", body, 200, NULL, &r), 0);
    free(assert_problem(&r, 413));
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);

    const char *const extra[] = {"--max-body", "1K", NULL};
    cr_assert_eq(srv_start(&s, extra), 0);
    cr_assert_eq(http_req(&s, "POST", "/v1/cost", "application/json", body, 200, NULL, &r), 0);
    cr_assert_neq(r.status, 413, "--max-body 1K did not override the environment");
    resp_free(&r);
    free(body);
    srv_stop(&s);
    srv_cleanup(&s);
    unsetenv("BACKPROPD_MAX_BODY");
}

/* Sends raw bytes, returns what came back within 5 s (new). */
Test(http_server, refused_transfer_encoding)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    char *got = raw_exchange(s.port, "POST /v1/cost HTTP/1.1\r\nHost: x\r\n"
                                     "Content-Type: application/json\r\n"
                                     "Transfer-Encoding: gzip\r\n\r\nabc");
    cr_assert(strncmp(got, "HTTP/1.1 501", 12) == 0 || strncmp(got, "HTTP/1.1 400", 12) == 0,
              "Transfer-Encoding gzip answered: %.200s", got);
    cr_assert(strstr(got, "application/problem+json"), "%s", got);
    free(got);
    resp r;
    cr_assert_eq(http_get(&s, "/healthz", &r), 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(http_server, wrong_content_type_is_415)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    resp r;
    cr_assert_eq(http_req(&s, "POST", "/v1/cost", "text/plain", "{}", 2, NULL, &r), 0);
    char *detail = assert_problem(&r, 415);
    cr_assert(strstr(detail, "application/json"), "detail does not name the type: %s", detail);
    free(detail);
    resp_free(&r);
    /* parameters and case do not matter */
    cr_assert_eq(http_req(&s, "POST", "/v1/cost", "Application/JSON; charset=utf-8", "{}", 2,
                          NULL, &r),
                 0);
    cr_assert_neq(r.status, 415, "Application/JSON; charset=utf-8 was refused");
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(http_server, options_is_answered)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    resp r;
    cr_assert_eq(http_req(&s, "OPTIONS", "/v1/datasets", NULL, NULL, 0, NULL, &r), 0);
    cr_assert(r.status == 204 || r.status == 200, "OPTIONS: %ld", r.status);
    char allow[128];
    cr_assert_eq(resp_header(&r, "Allow", allow, sizeof allow), 0);
    cr_assert(strstr(allow, "GET") && strstr(allow, "POST"), "Allow: %s", allow);
    resp_free(&r);
    cr_assert_eq(http_req(&s, "OPTIONS", "/nowhere", NULL, NULL, 0, NULL, &r), 0);
    free(assert_problem(&r, 404));
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(http_server, metrics_count_requests)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    const char *ok = "backpropd_http_requests_total{method=\"GET\",route=\"/healthz\","
                     "status=\"200\"}";
    const char *nf = "backpropd_http_requests_total{method=\"\",route=\"unmatched\","
                     "status=\"404\"}";
    resp r;
    cr_assert_eq(http_get(&s, "/metrics", &r), 0);
    cr_assert_eq(r.status, 200);
    char ct[128];
    cr_assert_eq(resp_header(&r, "Content-Type", ct, sizeof ct), 0);
    cr_assert(strncmp(ct, "text/plain; version=0.0.4", 25) == 0, "Content-Type: %s", ct);
    long long ok0 = metric_value(r.body, ok), nf0 = metric_value(r.body, nf);
    resp_free(&r);

    for (int i = 0; i < 3; i++) {
        cr_assert_eq(http_get(&s, "/healthz", &r), 0);
        resp_free(&r);
    }
    cr_assert_eq(http_get(&s, "/nope", &r), 0);
    resp_free(&r);

    cr_assert_eq(http_get(&s, "/metrics", &r), 0);
    cr_assert_eq(metric_value(r.body, ok), ok0 + 3, "%s", r.body);
    cr_assert_eq(metric_value(r.body, nf), nf0 + 1, "%s", r.body);
    cr_assert(metric_value(r.body, "backpropd_http_request_duration_seconds_count{method=\"GET\","
                                   "route=\"/healthz\"}") >= 3);
    cr_assert(strstr(r.body, "backpropd_jobs_queue_depth "), "%s", r.body);
    cr_assert(strstr(r.body, "backpropd_samples_trained_total "), "%s", r.body);
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(http_server, openapi_document_is_served)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    resp r;
    cr_assert_eq(http_get(&s, "/openapi.yaml", &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert(strncmp(r.body, "openapi:", 8) == 0, "%.80s", r.body);

    /* the embedded bytes are the file's */
    const char *paths[] = {"api/openapi.yaml", "../api/openapi.yaml", "../../api/openapi.yaml"};
    FILE *f = NULL;
    for (size_t i = 0; !f && i < 3; i++)
        f = fopen(paths[i], "rb");
    if (f) {
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        rewind(f);
        char *file = malloc((size_t)len + 1);
        cr_assert_eq(fread(file, 1, (size_t)len, f), (size_t)len);
        fclose(f);
        cr_assert_eq(r.len, (size_t)len, "served %zu bytes, the file has %ld (rebuild?)", r.len,
                     len);
        cr_assert_eq(memcmp(r.body, file, (size_t)len), 0);
        free(file);
    }
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(http_server, keep_alive_connections_are_reused)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    CURL *c = curl_easy_init();
    cr_assert(c);
    char url[128];
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, test_curl_discard);
    long connects = -1, status = 0;

    snprintf(url, sizeof url, "%s/healthz", s.base);
    curl_easy_setopt(c, CURLOPT_URL, url);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
    cr_assert_eq(connects, 1);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    cr_assert_eq(status, 200);
    cr_assert_eq(connects, 0, "the second GET opened a new connection");

    /* a request with a body, answered, leaves the connection open too */
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(url, sizeof url, "%s/v1/cost", s.base);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{}");
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
    cr_assert_eq(connects, 0, "the POST opened a new connection");
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    snprintf(url, sizeof url, "%s/healthz", s.base);
    curl_easy_setopt(c, CURLOPT_URL, url);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
    cr_assert_eq(connects, 0, "the connection was closed after the POST");
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(http_server, help_lists_every_flag)
{
    const char *const args[] = {"--help", NULL};
    char *out, *err;
    int code;
    run_bin(args, &out, &err, &code, 10000);
    cr_assert_eq(code, 0, "--help exited %d: %s", code, err);
    static const char *const flags[] = {
        "--bind", "--port", "--data", "--workers", "--max-body", "--max-queue",
        "--api-keys-file", "--cors-origins", "--tls-cert", "--tls-key", "--insecure",
        "--log-level", "--checkpoint-seconds", "--max-connections", "--max-per-ip",
        "--idle-timeout", "--http-threads", "--math-threads", "--quota-jobs", "--quota-bytes",
        "--rate-limit", "--metrics-auth", "BACKPROPD_PORT", "BACKPROPD_DATA"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        cr_assert(strstr(out, flags[i]), "--help does not mention %s:\n%s", flags[i], out);
    free(out);
    free(err);
}

Test(http_server, bad_flags_exit_non_zero_with_a_clear_message)
{
    struct {
        const char *args[4];
        const char *says[2];
    } cases[] = {
        {{"--port", "99999", NULL}, {"--port", "0..65535"}},
        {{"--port", "eighty", NULL}, {"--port", "integer"}},
        {{"--bogus", NULL}, {"--bogus", NULL}},
        {{"--log-level", "loud", NULL}, {"--log-level", "debug"}},
        {{"--max-body", "12Q", NULL}, {"--max-body", NULL}},
        {{"--workers", NULL}, {"--workers", "value"}},
        {{"stray", NULL}, {"stray", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out, *err;
        int code;
        run_bin(cases[i].args, &out, &err, &code, 10000);
        cr_assert(code > 0 && code < 128, "%s exited %d", cases[i].args[0], code);
        cr_assert(strstr(err, "backpropd: "), "stderr: %s", err);
        for (int k = 0; k < 2; k++)
            if (cases[i].says[k])
                cr_assert(strstr(err, cases[i].says[k]), "'%s' not in: %s", cases[i].says[k],
                          err);
        cr_assert_eq(out[0], '\0', "printed on stdout: %s", out);
        free(out);
        free(err);
    }
}

Test(http_server, sigterm_exits_zero_quickly)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    resp r;
    cr_assert_eq(http_get(&s, "/healthz", &r), 0);
    resp_free(&r);
    double t0 = test_now_ms();
    srv_stop(&s); /* asserts exit 0 and a clean log */
    double ms = test_now_ms() - t0;
    cr_assert(ms < 10000, "shutdown took %.0f ms", ms);
    char *log = srv_log(&s);
    cr_assert(log && strstr(log, "event=stopped"), "no 'stopped' line in the log");
    cr_assert(strstr(log, "event=request") && strstr(log, "path=/healthz"),
              "no request line in the log");
    free(log);
    srv_cleanup(&s);
}

Test(http_server, binding_beyond_loopback_needs_keys_or_insecure)
{
    char dir[] = "/tmp/backpropd-bind-XXXXXX";
    cr_assert(mkdtemp(dir));
    const char *const args[] = {"--bind", "0.0.0.0", "--port", "0", "--data", dir, NULL};
    char *out, *err;
    int code;
    run_bin(args, &out, &err, &code, 10000);
    cr_assert_eq(code, 2, "exit %d: %s", code, err);
    cr_assert(strstr(err, "--api-keys-file") && strstr(err, "--insecure"), "%s", err);
    cr_assert_null(strstr(out, "listening"));
    free(out);
    free(err);
    rmdir(dir);

    srv s;
    const char *const insecure[] = {"--bind", "0.0.0.0", "--insecure", NULL};
    cr_assert_eq(srv_start(&s, insecure), 0);
    resp r;
    cr_assert_eq(http_get(&s, "/healthz", &r), 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(http_server, https_with_tls_cert_and_key)
{
    char dir[] = "/tmp/backpropd-tls-XXXXXX";
    cr_assert(mkdtemp(dir));
    char cmd[512], cert[128], key[128];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -days 1 -subj /CN=localhost >/dev/null 2>&1",
             key, cert);
    if (system(cmd) != 0) {
        rmdir(dir);
        cr_skip_test("openssl is not installed (scripts/install-deps installs it)");
    }
    srv s;
    const char *const extra[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    cr_assert_eq(srv_start(&s, extra), 0);

    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/healthz", s.port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, cert);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L); /* the name is localhost, we dial an IP */
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, test_curl_discard);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    cr_assert_eq(status, 200);
    /* TLS 1.1 and older are refused */
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)(CURL_SSLVERSION_TLSv1_0 |
                                                    CURL_SSLVERSION_MAX_TLSv1_1));
    cr_assert_neq(curl_easy_perform(c), CURLE_OK, "a TLS 1.1 handshake succeeded");
    curl_easy_cleanup(c);

    /* plain HTTP on the TLS port gets no HTTP answer */
    resp r;
    http_get(&s, "/healthz", &r);
    cr_assert_neq(r.status, 200);
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

/* ---- query parameters: each route takes its own, the framework refuses the rest ---- */

Test(http_server, unknown_query_parameters_are_400, .timeout = 30)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    const char *cost = "{\"network\":{\"layers\":[1,1]},\"theta\":[[[0,1]]],\"X\":[[1]],\"y\":[1]}";
    const struct {
        const char *method, *path, *body, *detail;
    } cases[] = {
        {"GET", "/healthz?foo=1", NULL,
         "query parameter \"foo\" is not supported here (this route takes none)"},
        {"GET", "/v1/datasets?foo=", NULL,
         "query parameter \"foo\" is not supported here (supported: name, limit, cursor)"},
        {"GET", "/v1/jobs?foo=1&limit=2", NULL,
         "query parameter \"foo\" is not supported here (supported: status, dataset, name, tag, "
         "created_after, created_before, limit, cursor)"},
        {"GET", "/v1/jobs/job_000000000000000000000000?verbose=1", NULL,
         "query parameter \"verbose\" is not supported here (this route takes none)"},
        {"POST", "/v1/cost?lambda=1", cost,
         "query parameter \"lambda\" is not supported here (this route takes none)"},
        {"POST", "/v1/datasets?name=a&format=csv", "0,1\n",
         "query parameter \"format\" is not supported here (supported: name, header, label, "
         "targets, label_base)"},
        {"POST", "/v1/jobs?dataset=x", "{}",
         "query parameter \"dataset\" is not supported here (this route takes none)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        resp r;
        const char *ct = !cases[i].body ? NULL
                         : strstr(cases[i].path, "/v1/datasets") ? "text/csv"
                                                                  : "application/json";
        cr_assert_eq(http_req(&s, cases[i].method, cases[i].path, ct, cases[i].body,
                              cases[i].body ? strlen(cases[i].body) : 0, NULL, &r), 0);
        char *detail = assert_problem(&r, 400);
        cr_assert_str_eq(detail, cases[i].detail, "%s %s", cases[i].method, cases[i].path);
        free(detail);
        resp_free(&r);
    }
    /* the supported ones still work, and nothing was created by the refused POSTs */
    resp r;
    cr_assert_eq(http_get(&s, "/v1/datasets?limit=5", &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.body, "{\"datasets\":[],\"next_cursor\":null}");
    resp_free(&r);
    cr_assert_eq(http_get(&s, "/v1/jobs?status=queued&limit=5", &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ---- big bodies are parsed off the HTTP threads ---- */

typedef struct {
    const srv *s;
    char path[96];
    const char *body;
    size_t len;
    int rounds;
    long status[4];
    json_t *answer[4]; /* new */
    double done;
} big_call;

static void *big_post(void *arg)
{
    big_call *c = arg;
    /* the uploads are the background here: the probes of /healthz go first in this process */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 15);
    for (int k = 0; k < c->rounds; k++) {
        resp r;
        if (http_req(c->s, "POST", c->path, "application/json", c->body, c->len, NULL, &r) == 0) {
            c->status[k] = r.status;
            c->answer[k] = resp_json(&r);
        }
        resp_free(&r);
    }
    c->done = test_now_s();
    return NULL;
}

static int cmp_ms(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Row i of the predict input: one of 7 patterns of 64 numbers. */
static void pattern_row(char *out, size_t cap, int p)
{
    size_t o = (size_t)snprintf(out, cap, "[");
    for (int j = 0; j < 64; j++)
        o += (size_t)snprintf(out + o, cap - o, "%s%.6f", j ? "," : "",
                              ((p * 64 + j) * 37 % 101) / 101.0);
    snprintf(out + o, cap - o, "]");
}

/* {"X": [rows rows cycling through the 7 patterns]} (new). */
static char *predict_body(int rows, size_t *len)
{
    char row[7][1024];
    for (int p = 0; p < 7; p++)
        pattern_row(row[p], sizeof row[p], p);
    size_t cap = (size_t)rows * 1024 + 64, o = 0;
    char *t = malloc(cap);
    cr_assert(t);
    o += (size_t)snprintf(t, cap, "{\"X\":[");
    for (int i = 0; i < rows; i++)
        o += (size_t)snprintf(t + o, cap - o, "%s%s", i ? "," : "", row[i % 7]);
    o += (size_t)snprintf(t + o, cap - o, "]}");
    *len = o;
    return t;
}

Test(http_server, big_bodies_do_not_stall_healthz, .timeout = 240)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    /* a small trained model with 64 inputs and one output */
    size_t o = 0, cap = 64 * 1024;
    char *ds = malloc(cap);
    o += (size_t)snprintf(ds, cap, "{\"X\":[");
    for (int i = 0; i < 30; i++) {
        char row[1024];
        pattern_row(row, sizeof row, i % 7);
        o += (size_t)snprintf(ds + o, cap - o, "%s%s", i ? "," : "", row);
    }
    o += (size_t)snprintf(ds + o, cap - o, "],\"Y\":[");
    for (int i = 0; i < 30; i++)
        o += (size_t)snprintf(ds + o, cap - o, "%s[%d]", i ? "," : "", i % 7 > 3);
    o += (size_t)snprintf(ds + o, cap - o, "]}");
    char dsid[64], job[64];
    cr_assert_eq(post_for_id(&s, "/v1/datasets", "application/json", ds, o, NULL, dsid,
                             sizeof dsid), 201);
    free(ds);
    char *jb = job_body(dsid, "[64,3,1]", "\"epochs\":2");
    submit_job(&s, NULL, jb, job, sizeof job);
    free(jb);
    json_t *done = wait_job(&s, job, "succeeded", 30);
    json_decref(done);

    /* the reference: the 7 patterns predicted one by one */
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs/%s/predict", job);
    size_t small_len;
    char *small = predict_body(7, &small_len);
    resp r;
    cr_assert_eq(http_req(&s, "POST", path, "application/json", small, small_len, NULL, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *ref = resp_json(&r);
    resp_free(&r);
    free(small);

    /* 3 connections, 2 bodies of ~17 MB each; /healthz every 10 ms meanwhile */
    enum { N_CALLS = 3, ROWS = 30000 };
    size_t big_len;
    char *big = predict_body(ROWS, &big_len);
    cr_assert_gt(big_len, 15u * 1000 * 1000);
    big_call calls[N_CALLS];
    pthread_t th[N_CALLS];
    double t0 = test_now_s();
    for (int i = 0; i < N_CALLS; i++) {
        calls[i] = (big_call){.s = &s, .body = big, .len = big_len, .rounds = 2};
        snprintf(calls[i].path, sizeof calls[i].path, "%s", path);
        pthread_create(&th[i], NULL, big_post, &calls[i]);
    }
    enum { MAX_LAT = 20000 };
    double *lat = malloc(MAX_LAT * sizeof *lat);
    int n_lat = 0;
    /* A probe every 10 ms. One the server holds for T ms stands for the T/10 probes that
     * would have been sent meanwhile, and they count too (T, T-10, T-20... ms): a 5 s stall
     * is 500 slow probes, not one. Time this process itself was not scheduled (a busy
     * machine) is not the server's and is not counted. */
    while (n_lat < MAX_LAT) {
        int running = 0;
        for (int i = 0; i < N_CALLS; i++)
            running += calls[i].done == 0;
        if (!running)
            break;
        double a = test_now_s();
        cr_assert_eq(http_get(&s, "/healthz", &r), 0);
        cr_assert_eq(r.status, 200);
        resp_free(&r);
        double ms = (test_now_s() - a) * 1e3;
        for (double v = ms; v > 0 && n_lat < MAX_LAT; v -= 10)
            lat[n_lat++] = v;
        test_sleep_ms(10);
    }
    double last = 0;
    for (int i = 0; i < N_CALLS; i++) {
        pthread_join(th[i], NULL);
        last = calls[i].done > last ? calls[i].done : last;
        for (int k = 0; k < calls[i].rounds; k++) {
            cr_assert_eq(calls[i].status[k], 200, "call %d round %d: %ld", i, k,
                         calls[i].status[k]);
            json_t *out = json_object_get(calls[i].answer[k], "outputs");
            json_t *lab = json_object_get(calls[i].answer[k], "labels");
            cr_assert_eq(json_array_size(out), ROWS);
            cr_assert_eq(json_array_size(lab), ROWS);
            for (size_t row = 0; row < ROWS; row += 997) {
                double got = json_number_value(json_array_get(json_array_get(out, row), 0));
                double want = json_number_value(json_array_get(
                    json_array_get(json_object_get(ref, "outputs"), row % 7), 0));
                cr_assert(fabs(got - want) <= 1e-12 * (1 + fabs(want)), "row %zu: %.17g vs %.17g",
                          row, got, want);
            }
            json_decref(calls[i].answer[k]);
        }
    }
    qsort(lat, (size_t)n_lat, sizeof *lat, cmp_ms);
    double p99 = lat[(n_lat * 99) / 100 < n_lat ? (n_lat * 99) / 100 : n_lat - 1];
    cr_log_info("%d predict bodies of %.1f MB over %d connections took %.2f s; /healthz: %d "
                "calls, p50 %.2f ms, p99 %.2f ms, max %.2f ms",
                N_CALLS * 2, big_len / 1e6, N_CALLS, last - t0, n_lat, lat[n_lat / 2], p99,
                lat[n_lat - 1]);
    cr_assert_geq(n_lat, 50, "only %d /healthz calls during the uploads (%.2f s)", n_lat,
                  last - t0);
    cr_assert_lt(p99, 50.0, "p99 /healthz %.1f ms during big bodies (max %.1f ms)", p99,
                 lat[n_lat - 1]);
    free(lat);
    free(big);
    json_decref(ref);
    srv_stop(&s);
    srv_cleanup(&s);
}
