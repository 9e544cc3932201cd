/* harness.h — integration-test harness (tests/harness/: process.c runs the server, client.c
 * is the HTTP client, files.c finds and reads test data, sse.c reads event streams,
 * fixtures.c holds shared steps, cost.c reads a cost history page by page): starts the real
 * backpropd binary (BACKPROPD_BIN, default build/backpropd) on an ephemeral port (--port 0;
 * the server prints "listening http://ADDR:PORT" on stdout once ready) with a temporary data
 * directory, talks to it over real HTTP with libcurl, and stops it. srv_stop() fails the current test if the
 * server's stderr holds an AddressSanitizer/UBSan/ThreadSanitizer report or it did not exit 0.
 * process.c, client.c and files.c need no Criterion (the benchmarks use them); fixtures.c, sse.c
 * and cost.c assert with Criterion.
 */
#ifndef BACKPROPD_HARNESS_H
#define BACKPROPD_HARNESS_H

#include <curl/curl.h>
#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "api/api.h"

typedef struct {
    pid_t pid;
    int port;
    char base[64];      /* "http://127.0.0.1:PORT" */
    char datadir[256];  /* temp dir, removed by srv_cleanup */
    char logpath[300];  /* server stderr */
    int own_dir;
} srv;

/* Starts a server with a fresh temp data dir. extra: NULL-terminated extra argv (may be NULL).
 * Returns 0, or -1 (and the test should fail) if it did not come up in 10 s. */
int srv_start(srv *s, const char *const *extra);
/* srv_start in two steps, for a caller that writes files into s->datadir (a keys file) before
 * the server starts: srv_prepare zeroes s and makes the temp dir; srv_spawn starts the server
 * on it. 0, or -1. */
int srv_prepare(srv *s);
int srv_spawn(srv *s, const char *const *extra);
/* srv_prepare, then keys (the lines of an --api-keys-file, "name:key\n"…) written to
 * <datadir>/keys (mode 0600), then srv_spawn with --api-keys-file that file and extra (may be
 * NULL; at most 14 items). 0, or -1 as srv_start. */
int srv_start_keys(srv *s, const char *keys, const char *const *extra);
/* Starts again on an existing data dir (restart tests); keeps s->datadir. */
int srv_restart(srv *s, const char *const *extra);
/* SIGTERM, waits up to 15 s, asserts clean exit and a sanitizer-free log. Keeps the dir. */
void srv_stop(srv *s);
/* The same without Criterion (benchmarks): 0 on a clean exit, else -1 and why (the log's tail
 * goes to stderr). A no-op returning 0 when nothing runs. Keeps the dir. */
int srv_shutdown(srv *s, char *why, size_t why_len);
/* SIGKILL, no checks. Keeps the dir. */
void srv_kill9(srv *s);
/* Removes dir and everything below it (no shell, no links followed). */
void test_rm_tree(const char *dir);
/* Removes the data dir. */
void srv_cleanup(srv *s);
/* The server's stderr so far (new, free()). */
char *srv_log(const srv *s);
/* A figure of /proc/PID/status in KiB ("VmHWM": the peak resident memory, "VmRSS"), or -1. */
long srv_status_kb(pid_t pid, const char *field);

typedef struct {
    long status;
    char *body;        /* NUL-terminated */
    size_t len;
    char *headers;     /* raw response headers, NUL-terminated */
    long long total_us; /* the request's total time (libcurl's), µs */
} resp;

/* One request. content_type NULL = no body. headers: NULL-terminated "Name: value" list.
 * Returns 0 on an HTTP answer (any status), -1 on a transport error. */
int http_req(const srv *s, const char *method, const char *path, const char *content_type,
             const char *body, size_t len, const char *const *headers, resp *out);
/* The same on the caller's libcurl handle c, so its connection is kept alive between calls
 * (benchmarks); c's options are reset first. */
int http_req_on(CURL *c, const srv *s, const char *method, const char *path,
                const char *content_type, const char *body, size_t len,
                const char *const *headers, resp *out);
/* Shorthands */
int http_get(const srv *s, const char *path, resp *out);
int http_post_json(const srv *s, const char *path, const char *json, resp *out);
void resp_free(resp *r);
/* new: the body parsed as JSON (NULL if it is not). */
json_t *resp_json(const resp *r);
/* Value of a response header (case-insensitive) copied into buf; 0 found, -1 not. */
int resp_header(const resp *r, const char *name, char *buf, size_t len);

/* Path of a file in tests/data (works from the repo root or build dirs). */
const char *test_data_path(const char *name);

/* ---- helpers shared by the tests that use the harness. Those that assert fail the current
 * Criterion test, so call them from a test's own process. ---- */

/* The server binary: BACKPROPD_BIN, default build/backpropd. */
const char *srv_bin(void);
/* Monotonic clock, in seconds and in milliseconds. */
double test_now_s(void);
double test_now_ms(void);
void test_sleep_ms(int ms);
/* A growing NUL-terminated buffer and the libcurl write callback that appends to it (userp is
 * a test_buf *; returns 0, so libcurl aborts the transfer, when out of memory). */
typedef struct {
    char *p;
    size_t len, cap;
} test_buf;
size_t test_curl_append(void *data, size_t size, size_t nmemb, void *userp);
/* A libcurl write callback that drops what it is given. */
size_t test_curl_discard(char *data, size_t size, size_t n, void *userp);

/* new: a whole file, NUL-terminated, its length in *len (asserts it can be read). */
char *test_read_file(const char *path, size_t *len);
/* The same without Criterion: NULL when the file cannot be read. */
char *test_slurp(const char *path, size_t *len);
/* new: tests/data/digits.csv (1797 rows: label, then 64 features) repeated `times` times. */
char *test_digits_csv(int times, size_t *len);
/* tests/data/digits.csv parsed in this process by the api codec (asserts it parses). */
void test_digits_load(api_dataset *d);

/* Asserts r is an RFC 9457 problem (Content-Type application/problem+json, a JSON body with
 * "type", "title", this "status" and a "detail"); returns the detail (new). */
char *problem_detail(const resp *r, long status);
/* problem_detail, and the detail contains needle (NULL: anything). */
void expect_problem(const resp *r, long status, const char *needle);
/* problem_detail, and the detail is exactly detail. */
void expect_problem_eq(const resp *r, long status, const char *detail);

/* POST body (content_type) to path with headers (may be NULL). Returns the HTTP status, 0 on a
 * transport error; on 201 with a JSON body, its "id" is copied into id (idlen > 0). Does not
 * assert: usable where a server may die mid-request. */
long post_for_id(const srv *s, const char *path, const char *content_type, const char *body,
                 size_t len, const char *const *headers, char *id, size_t idlen);
/* POST /v1/datasets?name=digits with tests/data/digits.csv, asserting 201 and 1797 rows; the
 * dataset id into id. */
void upload_digits(const srv *s, char *id, size_t len);

/* new: a job request {"network":{"layers":LAYERS},"dataset":DS,"training":{TRAINING}};
 * layers and training are JSON text (training: the inside of the object). */
char *job_body(const char *ds, const char *layers, const char *training);
/* POST /v1/jobs (headers may be NULL) asserting 202, status "queued", Location and an id
 * "job_" + 24 hex; the id into id. */
void submit_job(const srv *s, const char *const *headers, const char *body, char *id,
                size_t len);
/* submit_job of job_body(ds, layers, training). */
void submit_training(const srv *s, const char *const *headers, const char *ds,
                     const char *layers, const char *training, char *id, size_t len);
/* GET fmt… with headers (may be NULL) asserting 200; the body as text (new, free()). */
char *get_text_h(const srv *s, const char *const *headers, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* GET fmt… with headers (may be NULL) asserting 200; the body as JSON (new). */
json_t *get_json_h(const srv *s, const char *const *headers, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Polls GET /v1/jobs/{id} (every 20 ms, headers may be NULL) until its status is want, or
 * final (succeeded, failed, cancelled) when want is NULL; asserts it gets there within
 * timeout seconds. Returns the job (new). */
json_t *wait_job_h(const srv *s, const char *const *headers, const char *id, const char *want,
                   double timeout);
/* Polls GET /v1/jobs/{id} until the job (queued or running, else it fails the test) has
 * completed at least `epochs` epochs, within timeout seconds. */
void wait_epoch(const srv *s, const char *id, int64_t epochs, double timeout);
/* cost.c: GET /v1/jobs/{id}/cost (?limit=limit when > 0, else the server's default of 1000)
 * and every page after it by "next" until it is null, each page checked (200, five arrays of
 * one length, no more than the limit and full when next is set, epochs increasing, next and
 * the Link header naming the page after its last epoch); the joined history {"epoch","cost",
 * "validation_cost","accuracy","validation_accuracy"} (new) and the page count in *pages (may
 * be NULL). get_cost_text: the joined history of the default pages as compact JSON text
 * (new, free()): what the whole-history answer was, for tests that compare histories. */
json_t *get_cost_history_h(const srv *s, const char *const *headers, const char *id, int limit,
                           int *pages);
char *get_cost_text(const srv *s, const char *id);
/* ---- Server-Sent Events ---- */
typedef struct {
    char *buf;               /* new: everything received, NUL-terminated (free it) */
    size_t len, cap;
    double t_first_progress; /* test_now_s() when "event: progress" first arrived, else 0 */
    double t_first;          /* test_now_s() of the first bytes, else 0 */
    double t_last;           /* test_now_s() of the last bytes */
    /* sse_read_ids' (borrowed; NULL otherwise): arrived[N] is set to test_now_s() when the
     * line "id: N" (N < n_arrived) first arrives. */
    double *arrived;
    size_t n_arrived;
    size_t scanned;          /* buf before this offset has been looked at for "id: " lines */
} sse_stream;
/* GET path (headers may be NULL) as an event stream into *k (zeroed first) until the server
 * ends it or timeout_ms passes. The status and Content-Type (ctype may be NULL) are filled
 * when asked for. Returns libcurl's result (CURLE_OPERATION_TIMEDOUT after timeout_ms). */
CURLcode sse_read(const srv *s, const char *path, const char *const *headers, long timeout_ms,
                  sse_stream *k, long *status, char *ctype, size_t ctlen);
/* sse_read without headers, status or type, also stamping each event id's first arrival into
 * arrived[0..n_arrived) (see sse_stream), which the caller zeroes. */
CURLcode sse_read_ids(const srv *s, const char *path, long timeout_ms, sse_stream *k,
                      double *arrived, size_t n_arrived);
typedef struct {
    long id;
    char event[16];
    json_t *data; /* new */
} sse_event;
/* Parses "id: N\nevent: E\ndata: {…}\n\n" blocks (comments ": …" skipped) into out; returns
 * how many. */
size_t sse_parse(const char *text, sse_event *out, size_t cap);

/* The same without headers. */
#define get_text(s, ...) get_text_h((s), NULL, __VA_ARGS__)
#define get_json(s, ...) get_json_h((s), NULL, __VA_ARGS__)
#define wait_job(s, id, want, timeout) wait_job_h((s), NULL, (id), (want), (timeout))

/* One request sent byte for byte on a fresh connection (client.c); the raw answer (new), read
 * until the server closes, a JSON body ends, or 5 s (raw_exchange_ms: timeout_ms); NULL when
 * it cannot connect. */
char *raw_exchange(int port, const char *request);
char *raw_exchange_ms(int port, const char *request, int timeout_ms);

/* ---------------- pg.c: a throwaway PostgreSQL cluster ---------------- */
/* Starts one (initdb + pg_ctl, as `nobody` when root) on a temp dir and a free port, and
 * exports BPD_PG_DIR / BPD_PG_PORT so forked tests find it; a no-op when they are set. 0 or -1
 * (why on stderr). pg_cluster_stop stops it and removes the dir. */
int pg_cluster_start(void);
void pg_cluster_stop(void);
/* Stops (fast) and starts the server again, keeping its data: database-restart tests. */
int pg_cluster_stop_server(void);
int pg_cluster_start_server(void);
/* A new empty database on the cluster; its URI into uri. 0 or -1. */
int pg_new_database(char *uri, size_t cap);

#endif
