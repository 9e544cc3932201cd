/* text.c — every piece of text the contract writes (api.h): user bytes quoted into messages
 * with bounded, escaping writes (api_escape), doubles in the shortest form that reads back to
 * the same bits (api_double_format), and the one JSON printer (api_dump) the server uses for
 * replies, event streams and the store. jansson 2.14 cannot print shortest doubles, so the
 * printer is ours: it walks jansson values and writes what json_dumps(JSON_COMPACT) writes,
 * except that reals are shortest.
 */
#include "api/api.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ UTF-8 */

size_t api_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = n ? s[0] : 0;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* ------------------------------------------------------------------ quoting for messages */

#define ELLIPSIS "\xE2\x80\xA6" /* U+2026 "…" */

/* The escaped form of the character at s (n > 0 bytes left) into unit (>= 7 bytes); returns
 * its length, *used the input bytes it stands for. */
static size_t escape_unit(char unit[8], const unsigned char *s, size_t n, size_t *used)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = s[0];
    size_t k = c < 0x80 ? 1 : api_utf8_len(s, n);
    *used = k ? k : 1;
    if (k > 1) {
        memcpy(unit, s, k);
        return k;
    }
    if (k == 0) { /* not UTF-8: a message must be */
        unit[0] = '?';
        return 1;
    }
    if (c == '"' || c == '\\') {
        unit[0] = '\\';
        unit[1] = (char)c;
        return 2;
    }
    if (c < 0x20 || c == 0x7f) {
        memcpy(unit, "\\u00", 4);
        unit[4] = hex[c >> 4];
        unit[5] = hex[c & 15];
        return 6;
    }
    unit[0] = (char)c;
    return 1;
}

size_t api_escape(char *out, size_t cap, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    char unit[8];
    size_t used, full = 0, o = 0;
    if (!out || cap == 0)
        return 0;
    for (size_t i = 0; i < n; i += used) /* does all of it fit? */
        full += escape_unit(unit, u + i, n - i, &used);
    /* Whole characters up to `room`, then "…" when something was left out. */
    size_t room = full < cap ? full : (cap > sizeof ELLIPSIS ? cap - sizeof ELLIPSIS : 0);
    size_t i = 0;
    for (; i < n; i += used) {
        size_t k = escape_unit(unit, u + i, n - i, &used);
        if (o + k > room)
            break;
        memcpy(out + o, unit, k);
        o += k;
    }
    if (i < n && o + sizeof ELLIPSIS <= cap) {
        memcpy(out + o, ELLIPSIS, sizeof ELLIPSIS - 1);
        o += sizeof ELLIPSIS - 1;
    }
    out[o] = '\0';
    return o;
}

/* ------------------------------------------------------------------ doubles */

/* jansson's spelling of a real, which api_dump keeps: a ".0" when there is neither '.' nor an
 * exponent (so a real reads back as a real), and no '+' or leading zeros in the exponent. */
static size_t jansson_spelling(char *buf, size_t len)
{
    if (!strchr(buf, '.') && !strchr(buf, 'e')) {
        memcpy(buf + len, ".0", 3);
        return len + 2;
    }
    char *e = strchr(buf, 'e');
    if (e) {
        char *start = e + 1, *digits;
        if (*start == '-')
            start++;
        digits = start;
        while (*digits == '+' || *digits == '0')
            digits++;
        memmove(start, digits, strlen(digits) + 1);
        len = strlen(buf);
    }
    return len;
}

static int same_bits(const char *text, double x)
{
    double back = strtod(text, NULL);
    return memcmp(&back, &x, sizeof x) == 0;
}

/* What printf("%.*g", p, x) prints for x = ±0.d[0]d[1]…d[n-1] × 10^(e+1) (digits correctly
 * rounded to p, trailing zeros allowed), into buf; returns the length. */
static size_t compose_g(char *buf, int neg, const char *d, int n, int e, int p)
{
    size_t o = 0;
    while (n > 1 && d[n - 1] == '0')
        n--;
    if (neg)
        buf[o++] = '-';
    if (e < -4 || e >= p) { /* d.ddde±XX */
        buf[o++] = d[0];
        if (n > 1) {
            buf[o++] = '.';
            memcpy(buf + o, d + 1, (size_t)n - 1);
            o += (size_t)n - 1;
        }
        o += (size_t)snprintf(buf + o, 8, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    } else if (e < 0) { /* 0.000ddd */
        memcpy(buf + o, "0.", 2);
        o += 2;
        memset(buf + o, '0', (size_t)(-e - 1));
        o += (size_t)(-e - 1);
        memcpy(buf + o, d, (size_t)n);
        o += (size_t)n;
    } else { /* ddd.ddd */
        for (int i = 0; i <= e; i++)
            buf[o++] = i < n ? d[i] : '0';
        if (n > e + 1) {
            buf[o++] = '.';
            memcpy(buf + o, d + e + 1, (size_t)(n - e - 1));
            o += (size_t)(n - e - 1);
        }
    }
    buf[o] = '\0';
    return o;
}

/* The shortest %.Ng text (N = 15, 16, 17) of a normal double, from one printf of its 17
 * correctly rounded digits: rounding those to 15 or 16 digits gives what %.15g / %.16g give
 * unless the dropped digits are exactly a half ("50", "5"), where x itself may lie on either
 * side: only then is printf asked again. */
static size_t shortest_normal(char *buf, double x)
{
    char e17[40], d[18];
    snprintf(e17, sizeof e17, "%.16e", x); /* [-]d.dddddddddddddddde±XXX */
    int neg = e17[0] == '-';
    const char *m = e17 + neg;
    d[0] = m[0];
    memcpy(d + 1, m + 2, 16);
    int e = atoi(m + 19);
    for (int p = DBL_DIG; p <= 16; p++) {
        char r[18];
        int er = e, tie = d[p] == '5', up = d[p] > '5';
        for (int i = p + 1; i < 17 && tie; i++)
            if (d[i] != '0')
                tie = 0, up = 1;
        if (tie) {
            snprintf(buf, API_DOUBLE_BUF, "%.*g", p, x);
            if (same_bits(buf, x))
                return strlen(buf);
            continue;
        }
        memcpy(r, d, (size_t)p);
        for (int i = p - 1; up && i >= 0; i--) { /* round up, carrying */
            up = r[i] == '9';
            r[i] = up ? '0' : (char)(r[i] + 1);
        }
        if (up) { /* 9.99…9 became 10.0…0 */
            r[0] = '1';
            er++;
        }
        size_t n = compose_g(buf, neg, r, p, er, p);
        if (same_bits(buf, x))
            return n;
    }
    return compose_g(buf, neg, d, 17, e, 17);
}

int api_double_format(char buf[API_DOUBLE_BUF], double x)
{
    buf[0] = '\0';
    if (!isfinite(x))
        return -1;
    size_t len;
    if (x == 0) {
        len = (size_t)snprintf(buf, API_DOUBLE_BUF, "%s0", signbit(x) ? "-" : "");
    } else if (fabs(x) >= DBL_MIN) {
        /* DBL_DIG = 15: a normal double whose shortest text has <= 15 digits prints as exactly
         * that text with %.15g, and if any 16-digit text reads back so does %.16g. */
        len = shortest_normal(buf, x);
    } else { /* subnormals have fewer significant bits: every precision from 1 up */
        for (int p = 1; p <= 17; p++) {
            len = (size_t)snprintf(buf, API_DOUBLE_BUF, "%.*g", p, x);
            if (same_bits(buf, x))
                break;
        }
    }
    return (int)jansson_spelling(buf, len);
}

/* ------------------------------------------------------------------ the JSON printer */

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} outbuf;

#define DUMP_MAX_DEPTH 2048 /* jansson's own parser limit; trees from api_parse hold <= 64 */

static void put(outbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n >= b->cap - b->len) {
        size_t cap = b->cap;
        while (n >= cap - b->len) {
            if (cap > SIZE_MAX / 2) {
                b->failed = 1;
                return;
            }
            cap *= 2;
        }
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->failed = 1;
            return;
        }
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
}

/* A string as jansson writes it: \" \\ \b \f \n \r \t, other controls \u00XX (upper-case hex),
 * everything else (DEL, '/', UTF-8) as it is. jansson strings are valid UTF-8. */
static void put_string(outbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t run = 0;
    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(b, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        size_t k = 2;
        switch (c) {
        case '"': case '\\': esc[1] = (char)c; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default: k = 6; break;
        }
        put(b, esc, k);
    }
    put(b, s + run, n - run);
    put(b, "\"", 1);
}

static void put_value(outbuf *b, const json_t *j, int depth)
{
    char num[API_DOUBLE_BUF];
    if (depth > DUMP_MAX_DEPTH) {
        b->failed = 1;
        return;
    }
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *v;
        int first = 1;
        put(b, "{", 1);
        json_object_foreach((json_t *)(uintptr_t)j, key, v) { /* jansson iterates non-const */
            if (!first)
                put(b, ",", 1);
            first = 0;
            put_string(b, key, json_object_iter_key_len(json_object_key_to_iter(key)));
            put(b, ":", 1);
            put_value(b, v, depth + 1);
        }
        put(b, "}", 1);
        break;
    }
    case JSON_ARRAY:
        put(b, "[", 1);
        for (size_t i = 0; i < json_array_size(j); i++) {
            if (i)
                put(b, ",", 1);
            put_value(b, json_array_get(j, i), depth + 1);
        }
        put(b, "]", 1);
        break;
    case JSON_STRING:
        put_string(b, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER: {
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        put(b, num, (size_t)n);
        break;
    }
    case JSON_REAL: {
        int n = api_double_format(num, json_real_value(j));
        if (n < 0) /* jansson holds no NaN/Inf; never print one */
            b->failed = 1;
        else
            put(b, num, (size_t)n);
        break;
    }
    case JSON_TRUE:
        put(b, "true", 4);
        break;
    case JSON_FALSE:
        put(b, "false", 5);
        break;
    case JSON_NULL:
        put(b, "null", 4);
        break;
    default:
        b->failed = 1;
        break;
    }
}

char *api_dump(const json_t *j, size_t *len)
{
    outbuf b = {.cap = 256};
    char *out = NULL;
    if (!j || !(b.buf = malloc(b.cap)))
        goto cleanup;
    put_value(&b, j, 0);
    put(&b, "", 1); /* the NUL */
    if (b.failed)
        goto cleanup;
    out = b.buf;
    b.buf = NULL;
    if (len)
        *len = b.len - 1;
cleanup:
    free(b.buf);
    return out;
}
