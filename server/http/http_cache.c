/* http_cache.c — HTTP caching for every reply (http.h): Cache-Control, and for replies a
 * handler marked immutable (http_reply_immutable) a strong ETag and If-None-Match → 304.
 *
 * The ETag is the first 128 bits of the SHA-256 of the identity body, in hex; the gzip
 * representation (http_gzip.c) carries the same tag with "-gz" appended, since a strong
 * validator names one exact byte sequence (RFC 9110 §8.8.3). If-None-Match uses the weak
 * comparison (§13.1.2): a client holding either representation gets 304. Everything not
 * marked immutable is "Cache-Control: no-store" (a job, a list, an error can all change),
 * unless the handler set a Cache-Control of its own (the event stream's no-cache).
 */
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/http/http_internal.h"

#define TAG_HEX 32
#define IMMUTABLE_CACHE "private, max-age=31536000, immutable"

static int has_header(const req *r, const char *name)
{
    for (int i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i][0], name) == 0)
            return 1;
    return 0;
}

/* 1 when the If-None-Match list holds "*" or tag (with or without "-gz", weak or strong). */
static int none_match(const char *list, const char *tag)
{
    size_t n = strlen(tag);
    for (const char *p = list; p && *p;) {
        p += strspn(p, " \t,");
        if (*p == '*')
            return 1;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (*p != '"')
            break;
        const char *end = strchr(p + 1, '"');
        if (!end)
            break;
        size_t len = (size_t)(end - p - 1);
        if (len >= n && strncmp(p + 1, tag, n) == 0 &&
            (len == n || (len == n + 3 && strncmp(p + 1 + n, "-gz", 3) == 0)))
            return 1;
        p = end + 1;
    }
    return 0;
}

void http_cache_apply(req_impl *ri)
{
    req *r = &ri->r;
    char tag[TAG_HEX + 1] = "";
    if (r->immutable && r->status == 200 && ri->out && !ri->reader) {
        struct sha256_ctx c;
        unsigned char d[SHA256_DIGEST_SIZE];
        sha256_init(&c);
        sha256_update(&c, ri->out_len, (const uint8_t *)ri->out);
        sha256_digest(&c, sizeof d, d);
        for (int i = 0; i < TAG_HEX / 2; i++)
            snprintf(tag + 2 * i, 3, "%02x", d[i]);
        if (none_match(http_header(r, "If-None-Match"), tag)) {
            /* 304: no body, but the headers a 200 would have had that matter to caches. */
            int gz = http_gzip_type(ri->out_type) && ri->out_len >= HTTP_GZIP_MIN &&
                     http_gzip_accepts(http_header(r, "Accept-Encoding"));
            if (http_gzip_type(ri->out_type) && ri->out_len >= HTTP_GZIP_MIN)
                http_add_vary(r, "Accept-Encoding");
            http_reply_release(ri);
            r->status = 304;
            ri->bytes_out = 0;
            char etag[TAG_HEX + 8];
            snprintf(etag, sizeof etag, "\"%s%s\"", tag, gz ? "-gz" : "");
            http_add_header(r, "ETag", etag);
            http_add_header(r, "Cache-Control", IMMUTABLE_CACHE);
            return;
        }
    }
    int gz = 0;
    http_gzip_apply(ri, &gz);
    if (tag[0]) {
        char etag[TAG_HEX + 8];
        snprintf(etag, sizeof etag, "\"%s%s\"", tag, gz ? "-gz" : "");
        http_add_header(r, "ETag", etag);
        http_add_header(r, "Cache-Control", IMMUTABLE_CACHE);
    } else if (!has_header(r, "Cache-Control")) {
        http_add_header(r, "Cache-Control", "no-store");
    }
}
