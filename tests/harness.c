/* harness.c — integration-test harness (harness.h): runs the real backpropd binary on an
 * ephemeral port with a fresh temporary data directory, talks HTTP to it with libcurl, stops
 * it and checks its log for sanitizer reports.
 *
 * Criterion runs each test in its own forked process, possibly several at once: everything
 * here lives in the caller's srv/resp structs; nothing is shared between tests. The server
 * child gets PR_SET_PDEATHSIG so it dies with a test that crashed before srv_stop().
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 15000

double test_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double test_now_ms(void)
{
    return test_now_s() * 1e3;
}

void test_sleep_ms(int ms)
{
    struct timespec d = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
}

const char *srv_bin(void)
{
    const char *b = getenv("BACKPROPD_BIN");
    return b && *b ? b : "build/backpropd";
}

/* Reads the server's stdout until "listening http://ADDR:PORT\n"; returns the port or -1. */
static int read_listening_line(int fd, pid_t pid)
{
    char line[512];
    size_t used = 0;
    double deadline = test_now_ms() + START_TIMEOUT_MS;
    for (;;) {
        int left = (int)(deadline - test_now_ms());
        if (left <= 0)
            return -1;
        struct pollfd pfd = {fd, POLLIN, 0};
        int n = poll(&pfd, 1, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        ssize_t got = read(fd, line + used, sizeof line - 1 - used);
        if (got <= 0) /* the server exited before listening */
            return -1;
        used += (size_t)got;
        line[used] = '\0';
        char *nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
            const char *p = strstr(line, "listening http");
            const char *colon = p ? strrchr(p, ':') : NULL;
            int port = colon ? atoi(colon + 1) : -1;
            return port > 0 && port < 65536 ? port : -1;
        }
        if (used >= sizeof line - 1)
            return -1;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return -1;
    }
}

static int spawn(srv *s, const char *const *extra)
{
    int out[2];
    if (pipe(out) != 0)
        return -1;
    const char *argv[64];
    int n = 0;
    argv[n++] = srv_bin();
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--data";
    argv[n++] = s->datadir;
    argv[n++] = "--log-level";
    argv[n++] = "debug";
    for (int i = 0; extra && extra[i] && n < 63; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(out[0]);
        close(out[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int log = open(s->logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log < 0)
            _exit(127);
        dup2(out[1], STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
        close(out[0]);
        close(out[1]);
        execv(argv[0], (char *const *)(void *)argv);
        dprintf(STDERR_FILENO, "harness: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]);
    s->pid = pid;
    s->port = read_listening_line(out[0], pid);
    close(out[0]); /* the server ignores SIGPIPE; it prints nothing more on stdout */
    if (s->port < 0) {
        char *log = srv_log(s);
        cr_log_error("backpropd (%s) did not print \"listening\" within %d s; its log:\n%s",
                     srv_bin(), START_TIMEOUT_MS / 1000, log ? log : "(none)");
        free(log);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        s->pid = 0;
        return -1;
    }
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->port);
    return 0;
}

int srv_start(srv *s, const char *const *extra)
{
    memset(s, 0, sizeof *s);
    const char *tmp = getenv("TMPDIR");
    snprintf(s->datadir, sizeof s->datadir, "%s/backpropd-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s->datadir)) {
        cr_log_error("mkdtemp: %s", strerror(errno));
        return -1;
    }
    s->own_dir = 1;
    snprintf(s->logpath, sizeof s->logpath, "%s/server.log", s->datadir);
    return spawn(s, extra);
}

int srv_restart(srv *s, const char *const *extra)
{
    s->pid = 0;
    s->port = 0;
    s->base[0] = '\0';
    return spawn(s, extra);
}

/* Waits for pid up to ms; returns 1 and fills *status when it exited. */
static int wait_exit(pid_t pid, int ms, int *status)
{
    double deadline = test_now_ms() + ms;
    for (;;) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid)
            return 1;
        if (w < 0 && errno != EINTR)
            return 0;
        if (test_now_ms() > deadline)
            return 0;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void srv_stop(srv *s)
{
    if (s->pid <= 0)
        return;
    pid_t pid = s->pid;
    s->pid = 0;
    kill(pid, SIGTERM);
    int status = 0;
    int exited = wait_exit(pid, STOP_TIMEOUT_MS, &status);
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    char *log = srv_log(s);
    static const char *const reports[] = {"ERROR: AddressSanitizer", "runtime error:",
                                          "WARNING: ThreadSanitizer", "ERROR: LeakSanitizer"};
    int clean = 1;
    for (size_t i = 0; log && i < sizeof reports / sizeof reports[0]; i++)
        if (strstr(log, reports[i]))
            clean = 0;
    int ok_exit = exited && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!clean || !ok_exit) {
        size_t len = log ? strlen(log) : 0;
        const char *tail = log ? (len > 12000 ? log + len - 12000 : log) : "(no log)";
        cr_log_error("server log (%s):\n%s", s->logpath, tail);
    }
    free(log);
    cr_assert(exited, "backpropd did not exit within %d s of SIGTERM", STOP_TIMEOUT_MS / 1000);
    cr_assert(clean, "backpropd's log has a sanitizer report (see above)");
    cr_assert(ok_exit, "backpropd did not exit 0 (status %d: %s %d)", status,
              WIFEXITED(status) ? "exit" : "signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

void srv_kill9(srv *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char child[1024];
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(child);
            else
                unlink(child);
        }
        closedir(d);
    }
    rmdir(path);
}

void srv_cleanup(srv *s)
{
    if (s->pid > 0)
        srv_kill9(s);
    if (s->own_dir && s->datadir[0])
        remove_tree(s->datadir);
    s->own_dir = 0;
}

char *srv_log(const srv *s)
{
    FILE *f = fopen(s->logpath, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *p = realloc(buf, cap);
            if (!p)
                break;
            buf = p;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* ---------------------------------------------------------------- HTTP */

typedef struct {
    char *p;
    size_t len, cap;
} growbuf;

static size_t grow_append(void *data, size_t size, size_t nmemb, void *userp)
{
    growbuf *b = userp;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

int http_req(const srv *s, const char *method, const char *path, const char *content_type,
             const char *body, size_t len, const char *const *headers, resp *out)
{
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    growbuf bb = {0}, hb = {0};
    struct curl_slist *hl = NULL;
    char url[1024];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, grow_append);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &bb);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, grow_append);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hb);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);

    int caller_expect = 0; /* no 100-continue wait unless the test asks for it */
    for (int i = 0; headers && headers[i]; i++)
        caller_expect |= strncasecmp(headers[i], "Expect:", 7) == 0;
    if (!caller_expect)
        hl = curl_slist_append(hl, "Expect:");
    if (content_type) {
        char ct[256];
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        hl = curl_slist_append(hl, ct);
    } else {
        hl = curl_slist_append(hl, "Content-Type:");
    }
    for (int i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);

    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (content_type || body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        }
    }

    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    else
        cr_log_info("%s %s: %s", method, url, curl_easy_strerror(rc));
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    out->body = bb.p ? bb.p : strdup("");
    out->len = bb.len;
    out->headers = hb.p ? hb.p : strdup("");
    return rc == CURLE_OK ? 0 : -1;
}

int http_get(const srv *s, const char *path, resp *out)
{
    return http_req(s, "GET", path, NULL, NULL, 0, NULL, out);
}

int http_post_json(const srv *s, const char *path, const char *json, resp *out)
{
    return http_req(s, "POST", path, "application/json", json, json ? strlen(json) : 0, NULL,
                    out);
}

void resp_free(resp *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof *r);
}

json_t *resp_json(const resp *r)
{
    if (!r->body)
        return NULL;
    return json_loadb(r->body, r->len, 0, NULL);
}

int resp_header(const resp *r, const char *name, char *buf, size_t len)
{
    /* The last block of headers counts (a 100 Continue may come first); last match wins. */
    int found = -1;
    size_t nlen = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t llen = end ? (size_t)(end - line) : strlen(line);
        if (llen > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            size_t vlen = llen - nlen - 1;
            while (vlen && (*v == ' ' || *v == '\t')) {
                v++;
                vlen--;
            }
            while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == ' '))
                vlen--;
            if (len) {
                size_t n = vlen < len - 1 ? vlen : len - 1;
                memcpy(buf, v, n);
                buf[n] = '\0';
            }
            found = 0;
        } else if (llen <= 1 && end && end[1]) {
            found = -1; /* a blank line ends a block; a later block replaces it */
        }
        line = end ? end + 1 : line + llen;
    }
    return found;
}

const char *test_data_path(const char *name)
{
    static __thread char path[512];
    static const char *const dirs[] = {"tests/data", "../tests/data", "../../tests/data",
                                       "../../../tests/data"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dirs[i], name);
        if (access(path, R_OK) == 0)
            return path;
    }
    snprintf(path, sizeof path, "tests/data/%s", name);
    return path;
}

/* ---------------------------------------------------------------- shared test helpers */

size_t test_curl_discard(char *data, size_t size, size_t n, void *userp)
{
    (void)data;
    (void)userp;
    return size * n;
}

char *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

char *test_digits_csv(int times, size_t *len)
{
    size_t n;
    char *one = test_read_file(test_data_path("digits.csv"), &n);
    if (times == 1) {
        *len = n;
        return one;
    }
    char *all = malloc(n * (size_t)times + 1);
    cr_assert_not_null(all);
    for (int i = 0; i < times; i++)
        memcpy(all + n * (size_t)i, one, n);
    all[n * (size_t)times] = '\0';
    free(one);
    *len = n * (size_t)times;
    return all;
}

void test_digits_load(api_dataset *d)
{
    size_t n;
    char *csv = test_digits_csv(1, &n);
    api_error e = {0};
    cr_assert_eq(api_dataset_parse_csv(d, csv, n, &e), 0, "%s", e.detail);
    free(csv);
}

char *problem_detail(const resp *r, long status)
{
    cr_assert_eq(r->status, status, "status %ld, want %ld: %s", r->status, status, r->body);
    char ct[128] = "";
    cr_assert_eq(resp_header(r, "Content-Type", ct, sizeof ct), 0, "no Content-Type");
    cr_assert(strncmp(ct, "application/problem+json", 24) == 0, "Content-Type %s", ct);
    json_t *j = resp_json(r);
    cr_assert_not_null(j, "problem body is not JSON: %s", r->body);
    cr_assert(json_is_string(json_object_get(j, "type")), "no type: %s", r->body);
    cr_assert(json_is_string(json_object_get(j, "title")), "no title: %s", r->body);
    cr_assert_eq(json_integer_value(json_object_get(j, "status")), status, "%s", r->body);
    const char *detail = json_string_value(json_object_get(j, "detail"));
    cr_assert_not_null(detail, "no detail: %s", r->body);
    char *copy = strdup(detail);
    json_decref(j);
    return copy;
}

void expect_problem(const resp *r, long status, const char *needle)
{
    char *detail = problem_detail(r, status);
    if (needle)
        cr_assert(strstr(detail, needle), "detail \"%s\" does not name \"%s\"", detail, needle);
    free(detail);
}

void expect_problem_eq(const resp *r, long status, const char *detail)
{
    char *got = problem_detail(r, status);
    cr_assert_str_eq(got, detail);
    free(got);
}

long post_for_id(const srv *s, const char *path, const char *content_type, const char *body,
                 size_t len, const char *const *headers, char *id, size_t idlen)
{
    resp r;
    if (http_req(s, "POST", path, content_type, body, len, headers, &r) != 0) {
        resp_free(&r); /* http_req fills the buffers even on a transport error */
        return 0;
    }
    long status = r.status;
    if (status == 201 || status == 202) {
        json_t *j = resp_json(&r);
        const char *v = json_string_value(json_object_get(j, "id"));
        snprintf(id, idlen, "%s", v ? v : "");
        json_decref(j);
    }
    resp_free(&r);
    return status;
}

void upload_digits(const srv *s, char *id, size_t len)
{
    size_t n;
    char *csv = test_digits_csv(1, &n);
    resp r;
    cr_assert_eq(http_req(s, "POST", "/v1/datasets?name=digits", "text/csv", csv, n, NULL, &r), 0);
    cr_assert_eq(r.status, 201, "upload: %ld %s", r.status, r.body);
    json_t *j = resp_json(&r);
    cr_assert_not_null(j);
    snprintf(id, len, "%s", json_string_value(json_object_get(j, "id")));
    cr_assert_eq(json_integer_value(json_object_get(j, "rows")), 1797);
    json_decref(j);
    resp_free(&r);
    free(csv);
}

char *job_body(const char *ds, const char *layers, const char *training)
{
    char *b = NULL;
    cr_assert(asprintf(&b, "{\"network\":{\"layers\":%s},\"dataset\":\"%s\",\"training\":{%s}}",
                       layers, ds, training) > 0);
    return b;
}

void submit_job(const srv *s, const char *const *headers, const char *body, char *id,
                size_t len)
{
    resp r;
    cr_assert_eq(http_req(s, "POST", "/v1/jobs", "application/json", body, strlen(body),
                          headers, &r), 0);
    cr_assert_eq(r.status, 202, "submit: %ld %s", r.status, r.body);
    json_t *j = resp_json(&r);
    cr_assert_not_null(j);
    snprintf(id, len, "%s", json_string_value(json_object_get(j, "id")));
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "queued");
    char loc[128], want[128];
    cr_assert_eq(resp_header(&r, "Location", loc, sizeof loc), 0);
    snprintf(want, sizeof want, "/v1/jobs/%s", id);
    cr_assert_str_eq(loc, want);
    cr_assert_eq(strncmp(id, "job_", 4), 0);
    cr_assert_eq(strlen(id), 28);
    for (const char *c = id + 4; *c; c++)
        cr_assert((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'), "%s: not hex", id);
    json_decref(j);
    resp_free(&r);
}

/* GET fmt… (formatted into path) with headers asserting 200; the answer (resp_free it). */
static void get_ok(const srv *s, const char *const *headers, resp *r, char *path, size_t plen,
                   const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));
static void get_ok(const srv *s, const char *const *headers, resp *r, char *path, size_t plen,
                   const char *fmt, va_list ap)
{
    vsnprintf(path, plen, fmt, ap);
    cr_assert_eq(http_req(s, "GET", path, NULL, NULL, 0, headers, r), 0, "GET %s: no answer",
                 path);
    cr_assert_eq(r->status, 200, "GET %s: %ld %s", path, r->status, r->body);
}

char *get_text_h(const srv *s, const char *const *headers, const char *fmt, ...)
{
    char path[256];
    resp r;
    va_list ap;
    va_start(ap, fmt);
    get_ok(s, headers, &r, path, sizeof path, fmt, ap);
    va_end(ap);
    char *t = strdup(r.body);
    cr_assert_not_null(t);
    resp_free(&r);
    return t;
}

json_t *get_json_h(const srv *s, const char *const *headers, const char *fmt, ...)
{
    char path[256];
    resp r;
    va_list ap;
    va_start(ap, fmt);
    get_ok(s, headers, &r, path, sizeof path, fmt, ap);
    va_end(ap);
    json_t *j = resp_json(&r);
    cr_assert_not_null(j, "GET %s: not JSON", path);
    resp_free(&r);
    return j;
}

json_t *wait_job_h(const srv *s, const char *const *headers, const char *id, const char *want,
                   double timeout)
{
    double end = test_now_s() + timeout;
    for (;;) {
        json_t *j = get_json_h(s, headers, "/v1/jobs/%s", id);
        const char *st = json_string_value(json_object_get(j, "status"));
        cr_assert_not_null(st, "job %s has no status", id);
        if ((want && strcmp(st, want) == 0) ||
            (!want && (!strcmp(st, "succeeded") || !strcmp(st, "failed") ||
                       !strcmp(st, "cancelled"))))
            return j;
        cr_assert(test_now_s() < end, "job %s still %s after %.0f s", id, st, timeout);
        json_decref(j);
        test_sleep_ms(20);
    }
}

/* ---------------------------------------------------------------- Server-Sent Events */

static size_t sse_write(char *data, size_t size, size_t nmemb, void *userp)
{
    sse_stream *k = userp;
    growbuf b = {k->buf, k->len, k->cap};
    size_t n = grow_append(data, size, nmemb, &b);
    k->buf = b.p;
    k->len = b.len;
    k->cap = b.cap;
    double t = test_now_s();
    if (k->t_first_progress == 0 && k->buf && strstr(k->buf, "event: progress"))
        k->t_first_progress = t;
    k->t_last = t;
    return n;
}

CURLcode sse_read(const srv *s, const char *path, const char *const *headers, long timeout_ms,
                  sse_stream *k, long *status, char *ctype, size_t ctlen)
{
    memset(k, 0, sizeof *k);
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    char url[512];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    struct curl_slist *h = NULL;
    for (int i = 0; headers && headers[i]; i++)
        h = curl_slist_append(h, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, k);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    if (status) {
        *status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    }
    if (ctype && ctlen) {
        char *ct = NULL;
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        snprintf(ctype, ctlen, "%s", ct ? ct : "");
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rc;
}

size_t sse_parse(const char *text, sse_event *out, size_t cap)
{
    size_t n = 0;
    const char *p = text;
    while (p && *p && n < cap) {
        const char *end = strstr(p, "\n\n");
        if (!end)
            break;
        sse_event e = {.id = -1};
        for (const char *line = p; line < end;) {
            const char *nl = memchr(line, '\n', (size_t)(end - line));
            size_t ll = nl ? (size_t)(nl - line) : (size_t)(end - line);
            if (!strncmp(line, "id: ", 4))
                e.id = atol(line + 4);
            else if (!strncmp(line, "event: ", 7))
                snprintf(e.event, sizeof e.event, "%.*s", (int)(ll - 7), line + 7);
            else if (!strncmp(line, "data: ", 6))
                e.data = json_loadb(line + 6, ll - 6, 0, NULL);
            line += ll + 1;
        }
        if (e.id >= 0)
            out[n++] = e;
        else
            json_decref(e.data);
        p = end + 2;
    }
    return n;
}
