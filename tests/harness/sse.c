/* sse.c — reading Server-Sent Events: a libcurl stream reader that collects events until a
 * condition, and a parser of text/event-stream into events (id, event, data). */
#include "tests/harness.h"

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

static size_t sse_write(char *data, size_t size, size_t nmemb, void *userp)
{
    sse_stream *k = userp;
    test_buf b = {k->buf, k->len, k->cap};
    size_t n = test_curl_append(data, size, nmemb, &b);
    k->buf = b.p;
    k->len = b.len;
    k->cap = b.cap;
    double t = test_now_s();
    if (k->t_first_progress == 0 && k->buf && strstr(k->buf, "event: progress"))
        k->t_first_progress = t;
    if (k->t_first == 0)
        k->t_first = t;
    k->t_last = t;
    for (char *line = k->buf + k->scanned, *nl; k->arrived && (nl = strchr(line, '\n'));
         line = nl + 1) { /* whole lines only: one may end in the next chunk */
        if (strncmp(line, "id: ", 4) == 0) {
            long id = strtol(line + 4, NULL, 10);
            if (id >= 0 && (size_t)id < k->n_arrived && k->arrived[id] == 0)
                k->arrived[id] = t;
        }
        k->scanned = (size_t)(nl + 1 - k->buf);
    }
    return n;
}

static CURLcode read_stream(const srv *s, const char *path, const char *const *headers,
                            long timeout_ms, sse_stream *k, long *status, char *ctype,
                            size_t ctlen, double *arrived, size_t n_arrived)
{
    memset(k, 0, sizeof *k);
    k->arrived = arrived;
    k->n_arrived = n_arrived;
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

CURLcode sse_read(const srv *s, const char *path, const char *const *headers, long timeout_ms,
                  sse_stream *k, long *status, char *ctype, size_t ctlen)
{
    return read_stream(s, path, headers, timeout_ms, k, status, ctype, ctlen, NULL, 0);
}

CURLcode sse_read_ids(const srv *s, const char *path, long timeout_ms, sse_stream *k,
                      double *arrived, size_t n_arrived)
{
    return read_stream(s, path, NULL, timeout_ms, k, NULL, NULL, 0, arrived, n_arrived);
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
