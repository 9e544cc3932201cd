/* scan_number.h — the exact JSON-grammar number scanner shared by api/'s text parsers
 * (ingest.c: JSON uploads, csv.c: CSV). Numbers follow JSON's grammar exactly (no "01", "1.",
 * ".5", "+1", NaN or Infinity) and are converted with Clinger's exact fast path — a mantissa of
 * at most 2^53 and a decimal exponent within ±22 is one correctly rounded multiply or divide
 * by an exactly representable power of ten — and strtod (correctly rounded) for everything
 * else. Short numbers read their digit runs 8 bytes at a time (SWAR). Internal to api/.
 */
#ifndef BACKPROPD_API_SCAN_NUMBER_H
#define BACKPROPD_API_SCAN_NUMBER_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ numbers */

static const double exact_pow10[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static inline int is_digit(char c)
{
    return (unsigned)(c - '0') < 10u;
}

/* strtod on a copy of [s, e) (the text need not be NUL-terminated). */
static inline double slow_strtod(const char *s, const char *e)
{
    char small[128];
    size_t n = (size_t)(e - s);
    char *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf)
        return NAN; /* reported as out of range by the caller */
    memcpy(buf, s, n);
    buf[n] = '\0';
    double v = strtod(buf, NULL); /* the grammar was checked: strtod reads all of it */
    if (buf != small)
        free(buf);
    return v;
}

/* ---- SWAR digit runs (8 bytes at a time, little-endian, first character lowest) ---- */

/* How many of the 8 bytes at p are ASCII digits before the first non-digit (0..8). */
static inline int digit_run(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    uint64_t x = v ^ 0x3030303030303030ull;                          /* digits -> 0..9 */
    uint64_t y = (x & 0x7F7F7F7F7F7F7F7Full) + 0x7676767676767676ull; /* >= 10 sets bit 7 */
    uint64_t bad = (x | y) & 0x8080808080808080ull;
    return bad ? __builtin_ctzll(bad) >> 3 : 8;
}

/* The value of the k (1..8) digits at p. */
static inline uint64_t digits_value(const char *p, int k)
{
    uint64_t v;
    memcpy(&v, p, 8);
    if (k < 8) /* keep the k digits, pad with leading '0's */
        v = (v << (8 * (8 - k))) | (0x3030303030303030ull >> (8 * k));
    v -= 0x3030303030303030ull;
    v = v * 10 + (v >> 8);
    v = (((v & 0x000000FF000000FFull) * 0x000F424000000064ull) +
         (((v >> 16) & 0x000000FF000000FFull) * 0x0000271000000001ull)) >> 32;
    return v;
}

static const uint64_t pow10_u64[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                      100000000};

/* Scans one JSON number starting at p (before end). Returns the first byte after it, or NULL
 * when the text there is not a JSON number. *out is correctly rounded (may be ±Inf). */
static inline __attribute__((always_inline)) const char *scan_number(const char *p,
                                                                     const char *end,
                                                                     double *out)
{
    const char *start = p;
    int neg = 0, ndig = 0, inexact = 0;
    uint64_t mant = 0;
    int64_t exp10 = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    /* Common case, branch-light: at most 8 integer digits, at most 7 fraction digits, no
     * exponent, with room to read 8 bytes past each run. Exact: mant < 10^15 < 2^53. */
    if (end - p >= 24) {
        const char *s = p;
        uint64_t ival = 0;
        int k = 0;
        if (*s == '0') {
            s++;
        } else {
            k = digit_run(s);
            if (k == 0 || k == 8)
                goto general;
            ival = digits_value(s, k);
            s += k;
        }
        int nf = 0;
        uint64_t fval = 0;
        if (*s == '.') {
            nf = digit_run(s + 1);
            if (nf == 0)
                return NULL; /* "1." */
            if (nf == 8)
                goto general;
            fval = digits_value(s + 1, nf);
            s += 1 + nf;
        }
        if (*s == 'e' || *s == 'E')
            goto general;
        double v = (double)(ival * pow10_u64[nf] + fval);
        if (nf)
            v /= exact_pow10[nf];
        *out = neg ? -v : v;
        return s;
    }
general:
    if (p >= end)
        return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        for (; p < end && is_digit(*p); p++) {
            if (ndig < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                ndig++;
            } else {
                inexact = 1;
                exp10++;
            }
        }
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return NULL;
        for (; p < end && is_digit(*p); p++) {
            if (mant == 0 && *p == '0') {
                exp10--; /* leading zeros of 0.000123 */
            } else if (ndig < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                ndig++;
                exp10--;
            } else {
                inexact = 1;
            }
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= end || !is_digit(*p))
            return NULL;
        int64_t e = 0;
        for (; p < end && is_digit(*p); p++)
            if (e < 1000000000)
                e = e * 10 + (*p - '0');
        exp10 += eneg ? -e : e;
    }
    double v;
    if (mant == 0 && !inexact)
        v = 0.0;
    else if (!inexact && mant <= (1ull << 53) && exp10 >= -22 && exp10 <= 22)
        v = exp10 < 0 ? (double)mant / exact_pow10[-exp10] : (double)mant * exact_pow10[exp10];
    else
        v = slow_strtod(neg ? start + 1 : start, p);
    *out = neg ? -v : v;
    return p;
}

static inline int is_finite(double v)
{
    return v - v == 0.0; /* false for ±Inf and NaN */
}

#endif
