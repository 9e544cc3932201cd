/* harness.h — integration-test harness: starts the real backpropd binary (BACKPROPD_BIN, default
 * build/backpropd) on an ephemeral port (--port 0; the server prints
 * "listening http://ADDR:PORT" on stdout once ready) with a temporary data directory, talks to
 * it over real HTTP with libcurl, and stops it. srv_stop() fails the current test if the
 * server's stderr holds an AddressSanitizer/UBSan/ThreadSanitizer report or it did not exit 0.
 */
#ifndef BACKPROPD_HARNESS_H
#define BACKPROPD_HARNESS_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

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
/* Starts again on an existing data dir (restart tests); keeps s->datadir. */
int srv_restart(srv *s, const char *const *extra);
/* SIGTERM, waits up to 15 s, asserts clean exit and a sanitizer-free log. Keeps the dir. */
void srv_stop(srv *s);
/* SIGKILL, no checks. Keeps the dir. */
void srv_kill9(srv *s);
/* Removes the data dir. */
void srv_cleanup(srv *s);
/* The server's stderr so far (new, free()). */
char *srv_log(const srv *s);

typedef struct {
    long status;
    char *body;        /* NUL-terminated */
    size_t len;
    char *headers;     /* raw response headers, NUL-terminated */
} resp;

/* One request. content_type NULL = no body. headers: NULL-terminated "Name: value" list.
 * Returns 0 on an HTTP answer (any status), -1 on a transport error. */
int http_req(const srv *s, const char *method, const char *path, const char *content_type,
             const char *body, size_t len, const char *const *headers, resp *out);
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

#endif
