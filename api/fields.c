/* fields.c — the rules every field of the contract is read by, each written once (api.h):
 * errors into an api_error, the problem+json object with its status titles, the strict
 * object-key check ('<parent>: unknown key "name"'), the integer reader and the number reader.
 * Codecs (codec.c, ingest.c, jobs_codec.c) and the server's handlers call these; none of them
 * reads an integer, a number or a key list another way.
 */
#include "api/api.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ errors */

void api_fail(api_error *err, unsigned status, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    err->status = status;
    vsnprintf(err->detail, sizeof err->detail, fmt, ap);
    va_end(ap);
}

const char *api_status_title(unsigned status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    default: return status >= 500 ? "Server Error" : "Client Error";
    }
}

json_t *api_problem_json(unsigned status, const char *detail)
{
    char safe[1024];
    const char *d = detail ? detail : "";
    json_t *text = json_string(d);
    if (!text) { /* bytes that are not UTF-8 (jansson refuses them): each becomes '?' */
        const unsigned char *s = (const unsigned char *)d;
        size_t n = strlen(d), o = 0;
        for (size_t i = 0; i < n && o + 1 < sizeof safe;) {
            size_t k = s[i] < 0x80 ? 1 : api_utf8_len(s + i, n - i);
            if (k == 0 || o + k >= sizeof safe) {
                safe[o++] = '?';
                i += k ? k : 1;
                continue;
            }
            memcpy(safe + o, s + i, k);
            o += k;
            i += k;
        }
        safe[o] = '\0';
        text = json_string(safe);
    }
    return json_pack("{s:s, s:s, s:i, s:o*}", "type", "about:blank", "title",
                     api_status_title(status), "status", (int)status, "detail", text);
}

/* ------------------------------------------------------------------ keys */

void api_fail_unknown_key(api_error *err, const char *field, const char *key, size_t len)
{
    char q[API_QUOTE_MAX];
    api_escape(q, sizeof q, key, len);
    api_fail(err, 400, "%s: unknown key \"%s\"", field, q);
}

int api_check_keys(const json_t *obj, const char *const *allowed, const char *field,
                   api_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)obj, key, v) { /* jansson iterates non-const */
        size_t len = json_object_iter_key_len(json_object_key_to_iter(key)); /* may hold NULs */
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strlen(*a) == len && memcmp(*a, key, len) == 0;
        if (!ok) {
            api_fail_unknown_key(err, field, key, len);
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ integers */

/* 400 "<path>: <what>", the path printed from path_fmt with ap. */
static void fail_at(api_error *err, const char *what, const char *path_fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void fail_at(api_error *err, const char *what, const char *path_fmt, va_list ap)
{
    char path[256];
    vsnprintf(path, sizeof path, path_fmt, ap);
    api_fail(err, 400, "%s: %s", path, what);
}

int api_int_of_double(double x, int64_t lo, int64_t hi, int64_t *out)
{
    /* From 2^53 on a real may already have been rounded by the parser (9007199254740993.0
     * reads as 2^53): only integers written as integers are exact there. */
    if (!(x > -9007199254740992.0 && x < 9007199254740992.0) || x != trunc(x))
        return -1;
    int64_t n = (int64_t)x; /* |x| < 2^53: defined and exact */
    if (n < lo || n > hi)
        return -1;
    *out = n;
    return 0;
}

int api_int(int64_t *out, const json_t *v, int64_t lo, int64_t hi, api_error *err,
            const char *path_fmt, ...)
{
    int64_t n = 0;
    int ok = 0;
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        ok = x >= lo && x <= hi;
        n = (int64_t)x;
    } else if (json_is_real(v)) { /* JSON has one number type: 3.0 is the integer 3 */
        ok = api_int_of_double(json_real_value(v), lo, hi, &n) == 0;
    }
    if (ok) {
        *out = n;
        return 0;
    }
    char what[96];
    snprintf(what, sizeof what, "must be an integer in %lld..%lld", (long long)lo, (long long)hi);
    va_list ap;
    va_start(ap, path_fmt);
    fail_at(err, what, path_fmt, ap);
    va_end(ap);
    return -1;
}

/* ------------------------------------------------------------------ numbers */

int api_number(double *out, const json_t *v, double lo, double hi, unsigned flags,
               api_error *err, const char *path_fmt, ...)
{
    double x = json_number_value(v);
    int lo_open = (flags & API_LO_OPEN) != 0, hi_open = (flags & API_HI_OPEN) != 0;
    if (json_is_number(v) && isfinite(x) && (lo_open ? x > lo : x >= lo) &&
        (hi_open ? x < hi : x <= hi)) {
        *out = x;
        return 0;
    }
    char what[96];
    const char *or_null = flags & API_OR_NULL ? ", or null" : "";
    if (lo == -INFINITY && hi == INFINITY)
        snprintf(what, sizeof what, "expected a number");
    else if (hi == INFINITY)
        snprintf(what, sizeof what, "must be a number %s %g%s", lo_open ? ">" : ">=", lo, or_null);
    else
        snprintf(what, sizeof what, "must be a number in %c%g, %g%c%s", lo_open ? '(' : '[', lo, hi,
                 hi_open ? ')' : ']', or_null);
    va_list ap;
    va_start(ap, path_fmt);
    fail_at(err, what, path_fmt, ap);
    va_end(ap);
    return -1;
}

void *api_alloc_array(int64_t n, size_t size, int zero)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t limit = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : UINT64_MAX;
    if (n < 0 || size == 0 || (uint64_t)n > limit / size)
        return NULL;
    size_t bytes = (size_t)n * size;
    return zero ? calloc(bytes ? (size_t)n : 1, size) : malloc(bytes ? bytes : 1);
}
