/* http_request_id.c — the X-Request-Id of a request (http.h): the client's own id when it is
 * sane, so a caller can match its logs with ours, else a new random one. "Sane" = 1 to 128
 * characters of A-Z a-z 0-9 - _ . : / + = (UUIDs, ULIDs, base64 and trace ids fit; quotes,
 * spaces, control bytes and anything that could forge a log field do not). The id is set on
 * the first call for the request, so even a 413 sent at once carries it.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "server/http/http_internal.h"

#define REQUEST_ID_MAX 128

static int sane_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-_.:/+=", c));
}

static int sane(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++)
        if (n >= REQUEST_ID_MAX || !sane_char(id[n]))
            return 0;
    return n > 0;
}

/* n (<= RANDOM_BATCH) bytes from getrandom(2), fetched RANDOM_BATCH at a time per thread so
 * a request does not cost a system call: 0, or -1 when the kernel has no entropy yet. */
#define RANDOM_BATCH 4096
static int random_bytes(unsigned char *out, size_t n)
{
    static _Thread_local unsigned char pool[RANDOM_BATCH];
    static _Thread_local size_t left;
    if (left < n) {
        if (getrandom(pool, sizeof pool, GRND_NONBLOCK) != (ssize_t)sizeof pool)
            return -1;
        left = sizeof pool;
    }
    left -= n;
    memcpy(out, pool + left, n);
    memset(pool + left, 0, n); /* each byte is handed out once */
    return 0;
}

void http_request_id(req *r)
{
    _Static_assert(sizeof r->request_id > REQUEST_ID_MAX, "room for the longest id");
    const char *theirs = http_header(r, "X-Request-Id");
    if (theirs && sane(theirs)) {
        snprintf(r->request_id, sizeof r->request_id, "%s", theirs);
        return;
    }
    unsigned char b[16];
    if (random_bytes(b, sizeof b) != 0) {
        /* No entropy yet (early boot): unique within the process is enough for an id. */
        static atomic_uint_fast64_t counter;
        uint64_t n = atomic_fetch_add(&counter, 1) + 1;
        memset(b, 0, sizeof b);
        memcpy(b, &n, sizeof n);
        memcpy(b + 8, &r->t_start, sizeof r->t_start);
    }
    static const char hex[] = "0123456789abcdef"; /* one snprintf per byte cost 10% of a GET */
    for (size_t i = 0; i < sizeof b; i++) {
        r->request_id[2 * i] = hex[b[i] >> 4];
        r->request_id[2 * i + 1] = hex[b[i] & 15];
    }
    r->request_id[2 * sizeof b] = '\0';
}
