/* client.c — the HTTP client of the tests: one libcurl request per call into a resp (status,
 * body, headers), and reading JSON and headers back out of it. */
#include "tests/harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

size_t test_curl_append(void *data, size_t size, size_t nmemb, void *userp)
{
    test_buf *b = userp;
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
    int rc = http_req_on(c, s, method, path, content_type, body, len, headers, out);
    curl_easy_cleanup(c);
    return rc;
}

int http_req_on(CURL *c, const srv *s, const char *method, const char *path,
                const char *content_type, const char *body, size_t len,
                const char *const *headers, resp *out)
{
    memset(out, 0, sizeof *out);
    curl_easy_reset(c); /* options only: the kept-alive connection stays */
    test_buf bb = {0}, hb = {0};
    struct curl_slist *hl = NULL;
    char url[1024];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, test_curl_append);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &bb);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, test_curl_append);
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
    if (rc == CURLE_OK) {
        curl_off_t us = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
        curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &us);
        out->total_us = (long long)us;
    } else {
        fprintf(stderr, "harness: %s %s: %s\n", method, url, curl_easy_strerror(rc));
    }
    curl_slist_free_all(hl);
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

/* One request written as is on a fresh TCP connection; the answer's bytes (new,
 * NUL-terminated) once the server closes, a JSON body's '}' has arrived, or after timeout_ms;
 * NULL when it cannot connect. For what a client library would never send. */
char *raw_exchange_ms(int port, const char *request, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char *buf = calloc(1, 65536);
    size_t len = strlen(request);
    if (!buf || connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        send(fd, request, len, MSG_NOSIGNAL) != (ssize_t)len) {
        free(buf);
        close(fd);
        return NULL;
    }
    size_t used = 0;
    double deadline = test_now_ms() + timeout_ms;
    while (used < 65535 && test_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = read(fd, buf + used, 65535 - used);
        if (n <= 0)
            break;
        used += (size_t)n;
        if (strstr(buf, "\r\n\r\n") && strchr(strstr(buf, "\r\n\r\n"), '}'))
            break;
    }
    close(fd);
    return buf;
}

char *raw_exchange(int port, const char *request)
{
    return raw_exchange_ms(port, request, 5000);
}
