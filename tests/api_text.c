/* api_text.c — unit tests of the contract's one-of-each helpers: api_escape at every size
 * around its limit (never a byte past the buffer, never a split escape or UTF-8 character),
 * api_double_format on millions of doubles (reads back bit-identically, and no shorter %.Ng
 * would), api_dump against jansson's own printer and parser on random documents, the integer
 * and number readers, the problem+json builder, the CSV header modes and the predict body.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

/* ------------------------------------------------------------------ api_escape */

/* Independent of api/: the escaped form of one character (see api.h). */
static size_t unit_of(char *out, const unsigned char *c, size_t left, size_t *used)
{
    *used = 1;
    if (*c == '"' || *c == '\\')
        return (size_t)sprintf(out, "\\%c", *c);
    if (*c < 0x20 || *c == 0x7f)
        return (size_t)sprintf(out, "\\u%04x", *c);
    if (*c < 0x80)
        return (size_t)sprintf(out, "%c", *c);
    size_t k = *c >= 0xF0 ? 4 : *c >= 0xE0 ? 3 : *c >= 0xC2 ? 2 : 0;
    int ok = k && k <= left;
    for (size_t i = 1; ok && i < k; i++)
        ok = (c[i] & 0xC0) == 0x80;
    if (!ok)
        return (size_t)sprintf(out, "?");
    *used = k;
    memcpy(out, c, k);
    return k;
}

Test(escape, every_size_around_the_limit)
{
    /* inputs whose characters escape to 1, 2, 6 bytes and 2-, 3-, 4-byte UTF-8, mixed */
    const char *inputs[] = {
        "abcdefghijklmnopqrstuvwxyz0123456789",
        "l\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7fi",
        "\x01\x02\x1f\"\\\x7f" "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80" "b",
        "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9",
        "bad \xC3 \xFF \xE2\x82 utf8 \xF0\x9F\x98\x80\x80",
        "",
    };
    for (size_t t = 0; t < sizeof inputs / sizeof *inputs; t++) {
        const unsigned char *in = (const unsigned char *)inputs[t];
        size_t n = strlen(inputs[t]);
        /* the whole escaped text and where each character ends in it */
        char full[512];
        size_t ends[128], nunits = 0, flen = 0, used;
        for (size_t i = 0; i < n; i += used) {
            flen += unit_of(full + flen, in + i, n - i, &used);
            ends[nunits++] = flen;
        }
        full[flen] = '\0';
        for (size_t cap = 1; cap <= flen + 8; cap++) {
            char buf[600];
            memset(buf, 'Z', sizeof buf);
            size_t got = api_escape(buf, cap, inputs[t], n);
            cr_assert_eq(buf[cap], 'Z', "wrote past cap %zu", cap);
            cr_assert_eq(strlen(buf), got);
            cr_assert(got < cap);
            if (flen < cap) {
                cr_assert_str_eq(buf, full, "cap %zu", cap);
                continue;
            }
            /* cut: the longest whole-character prefix that leaves room for "…" */
            size_t keep = 0;
            for (size_t u = 0; u < nunits; u++)
                if (ends[u] + 3 < cap)
                    keep = ends[u];
            if (cap < 4) {
                cr_assert_eq(got, 0u, "cap %zu: %s", cap, buf);
                continue;
            }
            cr_assert_eq(got, keep + 3, "cap %zu: %s", cap, buf);
            cr_assert(memcmp(buf, full, keep) == 0, "cap %zu: %s", cap, buf);
            cr_assert(memcmp(buf + keep, "\xE2\x80\xA6", 3) == 0, "cap %zu: %s", cap, buf);
        }
    }
    cr_assert_eq(api_escape(NULL, 0, "x", 1), 0u);
}

/* ------------------------------------------------------------------ api_double_format */

static int reads_back(const char *text, double v)
{
    double b = strtod(text, NULL);
    return memcmp(&b, &v, sizeof v) == 0;
}

/* Significant digits of a printed number ("0.00120" -> 2, "100.0" -> 1, "1e22" -> 1). */
static int sig_digits(const char *t)
{
    int d = 0, lead = 1, trailing = 0;
    for (; *t && *t != 'e'; t++) {
        if (*t < '0' || *t > '9' || (lead && *t == '0'))
            continue;
        lead = 0;
        d++;
        trailing = *t == '0' ? trailing + 1 : 0;
    }
    return d - trailing;
}

/* The plain algorithm api_double_format must agree with, spelling included: the first of
 * %.15g, %.16g, %.17g that reads back (subnormals: from %.1g), spelled as jansson spells reals
 * (".0" added to a bare integer, no '+' and no leading zeros in the exponent). */
static void reference_format(char *out, double v)
{
    char t[64];
    for (int p = v != 0 && fabs(v) < DBL_MIN ? 1 : 15; p <= 17; p++) {
        snprintf(t, sizeof t, "%.*g", p, v);
        if (reads_back(t, v))
            break;
    }
    size_t o = 0;
    for (const char *c = t; *c; c++) {
        out[o++] = *c;
        if (*c == 'e') {
            if (c[1] == '-')
                out[o++] = *++c;
            while (c[1] == '+' || (c[1] == '0' && c[2]))
                c++;
        }
    }
    out[o] = '\0';
    if (!strpbrk(out, ".e"))
        strcat(out, ".0");
}

static void check_shortest(double v)
{
    static unsigned calls;
    char buf[API_DOUBLE_BUF];
    int n = api_double_format(buf, v);
    if (calls++ % 8 == 0) {
        char want[64];
        reference_format(want, v);
        cr_assert_str_eq(buf, want, "%a", v);
    }
    cr_assert(n > 0 && (size_t)n == strlen(buf), "%a", v);
    cr_assert(reads_back(buf, v), "%a printed %s", v, buf);
    cr_assert(strpbrk(buf, ".e"), "%s does not read as a real", buf);
    cr_assert_null(strchr(buf, '+'), "%s", buf);
    int d = sig_digits(buf);
    cr_assert(d >= (v != 0) && d <= 17, "%s", buf);
    if (d > 1) { /* one digit fewer would not read back (nor would fewer still) */
        char shorter[400];
        snprintf(shorter, sizeof shorter, "%.*g", d - 1, v);
        cr_assert(!reads_back(shorter, v), "%a: %s, but %s reads back too", v, buf, shorter);
    }
}

Test(doubles, two_million_print_shortest_and_read_back, .timeout = 300)
{
    double special[] = {0.1, 0.2, 0.3, 1.0 / 3.0, 2.0 / 3.0, 1.0, -1.0, 0.0, -0.0, 100.0,
                        1e22, 1e23, 1e-7, 123456789.0, 9007199254740993.0, DBL_MAX, -DBL_MAX,
                        DBL_MIN, -DBL_MIN, DBL_TRUE_MIN, -DBL_TRUE_MIN, DBL_EPSILON,
                        5e-324, 2.2250738585072009e-308, 4.9406564584124654e-324, 1e308,
                        0.30000000000000004, 1.7976931348623157e308};
    for (size_t i = 0; i < sizeof special / sizeof *special; i++)
        check_shortest(special[i]);
    for (int e = -1074; e <= 1023; e++) { /* every power of two */
        check_shortest(ldexp(1.0, e));
        check_shortest(-ldexp(1.0, e));
    }
    for (int e = -323; e <= 308; e++) { /* every power of ten, and its neighbours */
        char t[16];
        snprintf(t, sizeof t, "1e%d", e);
        double v = strtod(t, NULL);
        check_shortest(v);
        check_shortest(nextafter(v, 0));
        check_shortest(nextafter(v, INFINITY));
    }
    /* random bit patterns (every exponent, subnormals included), and random short decimals */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    int done = 0;
    while (done < 2000000) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        if (done % 4 == 3) { /* a decimal with few digits: the short texts */
            char t[40];
            snprintf(t, sizeof t, "%llu.%llue%d", (unsigned long long)(x % 100000),
                     (unsigned long long)((x >> 20) % 1000), (int)((x >> 40) % 600) - 300);
            v = strtod(t, NULL);
        } else {
            uint64_t bits = done % 4 == 2 ? x & 0x800FFFFFFFFFFFFFull : x; /* subnormals */
            memcpy(&v, &bits, sizeof v);
        }
        if (!isfinite(v))
            continue;
        check_shortest(v);
        done++;
    }
    char buf[API_DOUBLE_BUF];
    cr_assert_eq(api_double_format(buf, NAN), -1);
    cr_assert_eq(api_double_format(buf, INFINITY), -1);
    cr_assert_str_eq(buf, "");
    cr_assert_eq(api_double_format(buf, 0.1), 3);
    cr_assert_str_eq(buf, "0.1");
    api_double_format(buf, -0.0);
    cr_assert_str_eq(buf, "-0.0");
    api_double_format(buf, 1e-7);
    cr_assert_str_eq(buf, "1e-7");
}

/* ------------------------------------------------------------------ api_dump */

static uint64_t rng_state = 12345;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static json_t *random_string(int nul_ok)
{
    static const char *pieces[] = {"a", "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x01",
                                   "\x1f", "\x7f", "\xC3\xA9", "\xE2\x82\xAC",
                                   "\xF0\x9F\x98\x80", "key", " ", "0"};
    char s[64] = "";
    size_t n = rnd() % 8;
    for (size_t i = 0; i < n; i++)
        strcat(s, pieces[rnd() % (sizeof pieces / sizeof *pieces)]);
    if (nul_ok && rnd() % 10 == 0) /* a NUL inside */
        return json_stringn(s, strlen(s) + 1);
    return json_string(s);
}

static json_t *random_value(int depth)
{
    int kind = (int)(rnd() % (depth > 4 ? 6 : 8));
    switch (kind) {
    case 0: return json_null();
    case 1: return json_boolean(rnd() & 1);
    case 2: return json_integer((json_int_t)rnd());
    case 3: {
        double v;
        uint64_t bits = rnd();
        memcpy(&v, &bits, sizeof v);
        return json_real(isfinite(v) ? v : (double)(bits % 1000) / 10.0);
    }
    case 4:
    case 5: return random_string(1);
    case 6: {
        json_t *a = json_array();
        for (size_t i = rnd() % 5; i > 0; i--)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (size_t i = rnd() % 5; i > 0; i--) {
            json_t *k = random_string(0);
            json_object_setn_new(o, json_string_value(k), json_string_length(k),
                                 random_value(depth + 1));
            json_decref(k);
        }
        return o;
    }
    }
}

/* Does j hold a real anywhere? Without one, jansson's printer and ours must agree exactly. */
static int has_real(const json_t *j)
{
    if (json_is_real(j))
        return 1;
    size_t i;
    json_t *v;
    const char *k;
    if (json_is_array(j))
        json_array_foreach(j, i, v) if (has_real(v)) return 1;
    if (json_is_object(j))
        json_object_foreach((json_t *)(uintptr_t)j, k, v) if (has_real(v)) return 1;
    return 0;
}

Test(dump, random_documents_read_back_equal, .timeout = 120)
{
    for (int t = 0; t < 20000; t++) {
        json_t *doc = random_value(0);
        size_t len;
        char *ours = api_dump(doc, &len);
        cr_assert(ours);
        cr_assert_eq(strlen(ours), len); /* a NUL in a string is printed as \u0000 */
        json_error_t e;
        json_t *back = json_loadb(ours, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        cr_assert(back, "%s: %s", ours, e.text);
        cr_assert(json_equal(doc, back), "not equal after the round trip: %s", ours);
        /* without reals the text is jansson's, byte for byte */
        if (!has_real(doc)) {
            char *theirs = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
            cr_assert_str_eq(ours, theirs);
            free(theirs);
        }
        json_decref(back);
        json_decref(doc);
        free(ours);
    }
    /* reals are spelled as jansson spells them, but shortest */
    json_t *j = json_pack("[f, f, f, f, f]", 1.0, 1e22, 0.1, -2.5e-7, 1e100);
    char *t = api_dump(j, NULL);
    cr_assert_str_eq(t, "[1.0,1e22,0.1,-2.5e-7,1e100]");
    free(t);
    json_decref(j);
    cr_assert_null(api_dump(NULL, NULL));
}

/* ------------------------------------------------------------------ readers */

static json_t *num(const char *text)
{
    api_error err = {0};
    char doc[128];
    snprintf(doc, sizeof doc, "[%s]", text);
    json_t *a = api_parse(doc, strlen(doc), &err);
    cr_assert(a, "%s: %s", text, err.detail);
    json_t *v = json_incref(json_array_get(a, 0));
    json_decref(a);
    return v;
}

Test(readers, the_integer_reader)
{
    struct {
        const char *text;
        int64_t lo, hi;
        int ok;
        int64_t want;
    } cases[] = {
        {"9223372036854775807", 0, INT64_MAX, 1, INT64_MAX},
        {"9223372036854775808", 0, INT64_MAX, 0, 0},
        {"-9223372036854775808", INT64_MIN, 0, 1, INT64_MIN},
        {"-9223372036854775809", INT64_MIN, 0, 0, 0},
        {"9007199254740993", 0, INT64_MAX, 1, 9007199254740993LL},
        {"9007199254740991.0", 0, INT64_MAX, 1, 9007199254740991LL},
        {"9007199254740992.0", 0, INT64_MAX, 0, 0},
        {"9007199254740994.0", 0, INT64_MAX, 0, 0},
        {"-9007199254740991.0", INT64_MIN, 0, 1, -9007199254740991LL},
        {"-9007199254740992.0", INT64_MIN, 0, 0, 0},
        {"-0.0", 0, 10, 1, 0},
        {"1e300", 0, INT64_MAX, 0, 0},
        {"1.5", 0, 10, 0, 0},
        {"1e-300", 0, 10, 0, 0},
        {"3.0", 1, 3, 1, 3},
        {"4", 1, 3, 0, 0},
        {"0", 1, 3, 0, 0},
        {"\"1\"", 0, 10, 0, 0},
        {"null", 0, 10, 0, 0},
        {"false", 0, 10, 0, 0},
        {"{}", 0, 10, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *v = num(cases[i].text);
        int64_t out = -77;
        api_error err = {0};
        int rc = api_int(&out, v, cases[i].lo, cases[i].hi, &err, "f[%d]", 3);
        json_decref(v);
        if (cases[i].ok) {
            cr_assert_eq(rc, 0, "%s: %s", cases[i].text, err.detail);
            cr_assert_eq(out, cases[i].want, "%s", cases[i].text);
        } else {
            cr_assert_eq(rc, -1, "%s accepted as %lld", cases[i].text, (long long)out);
            cr_assert_eq(out, -77);
            cr_assert_eq(err.status, 400u);
            char want[128];
            snprintf(want, sizeof want, "f[3]: must be an integer in %lld..%lld",
                     (long long)cases[i].lo, (long long)cases[i].hi);
            cr_assert_str_eq(err.detail, want);
        }
    }
    int64_t out;
    cr_assert_eq(api_int_of_double(65535.0, 0, 65535, &out), 0);
    cr_assert_eq(out, 65535);
    cr_assert_eq(api_int_of_double(NAN, 0, 65535, &out), -1);
    cr_assert_eq(api_int_of_double(-INFINITY, INT64_MIN, 0, &out), -1);
    cr_assert_eq(api_int_of_double(9223372036854775808.0, 0, INT64_MAX, &out), -1);
}

Test(readers, the_number_reader)
{
    api_error err = {0};
    double x = -1;
    json_t *v = num("0.5");
    cr_assert_eq(api_number(&x, v, 0, 1, API_HI_OPEN, &err, "a"), 0);
    cr_assert_eq(x, 0.5);
    json_decref(v);
    v = num("1");
    cr_assert_eq(api_number(&x, v, 0, 1, API_HI_OPEN, &err, "a.%s", "b"), -1);
    cr_assert_str_eq(err.detail, "a.b: must be a number in [0, 1)");
    cr_assert_eq(api_number(&x, v, 0, 1, 0, &err, "a"), 0);
    cr_assert_eq(x, 1.0);
    json_decref(v);
    v = num("0");
    cr_assert_eq(api_number(&x, v, 0, INFINITY, API_LO_OPEN | API_OR_NULL, &err, "e"), -1);
    cr_assert_str_eq(err.detail, "e: must be a number > 0, or null");
    cr_assert_eq(api_number(&x, v, 0, INFINITY, 0, &err, "e"), 0);
    json_decref(v);
    v = num("\"0\"");
    cr_assert_eq(api_number(&x, v, -INFINITY, INFINITY, 0, &err, "X[%d][%d]", 1, 2), -1);
    cr_assert_str_eq(err.detail, "X[1][2]: expected a number");
    json_decref(v);
}

Test(readers, unknown_keys_with_nul_and_the_problem_object)
{
    json_t *o = json_object();
    json_object_setn_new(o, "X\0y", 3, json_true());
    static const char *const keys[] = {"X", NULL};
    api_error err = {0};
    cr_assert_eq(api_check_keys(o, keys, "body", &err), -1);
    cr_assert_str_eq(err.detail, "body: unknown key \"X\\u0000y\"");
    json_decref(o);

    json_t *p = api_problem_json(400, "bad \xFF byte \xC3\xA9");
    cr_assert_str_eq(json_string_value(json_object_get(p, "detail")), "bad ? byte \xC3\xA9");
    cr_assert_str_eq(json_string_value(json_object_get(p, "title")), "Bad Request");
    cr_assert_eq(json_integer_value(json_object_get(p, "status")), 400);
    char *t = api_dump(p, NULL);
    cr_assert_str_eq(t, "{\"type\":\"about:blank\",\"title\":\"Bad Request\",\"status\":400,"
                        "\"detail\":\"bad ? byte \xC3\xA9\"}");
    free(t);
    json_decref(p);
}

/* ------------------------------------------------------------------ CSV header modes */

static int64_t csv_rows(const char *text, api_csv_header mode, const char **detail)
{
    static api_error err;
    api_dataset d = {0};
    memset(&err, 0, sizeof err);
    int rc = api_dataset_parse_csv_header(&d, text, strlen(text), mode, &err);
    int64_t rows = rc == 0 ? d.rows : -1;
    api_dataset_clear(&d);
    *detail = err.detail;
    return rows;
}

Test(csv, header_modes)
{
    const char *d;
    cr_assert_eq(csv_rows("5,5,5\n0,1,2\n", API_CSV_HEADER_TRUE, &d), 1, "%s", d);
    cr_assert_eq(csv_rows("5,5,5\n0,1,2\n", API_CSV_HEADER_AUTO, &d), 2, "%s", d);
    cr_assert_eq(csv_rows("5,5,5\n0,1,2\n", API_CSV_HEADER_FALSE, &d), 2, "%s", d);
    cr_assert_eq(csv_rows("a,b,c\n0,1,2\n", API_CSV_HEADER_AUTO, &d), 1, "%s", d);
    cr_assert_eq(csv_rows("1O,x,2\n0,1,2\n", API_CSV_HEADER_TRUE, &d), 1, "%s", d);
    cr_assert_eq(csv_rows("a,b,c\n0,1,2\n", API_CSV_HEADER_FALSE, &d), -1);
    cr_assert_str_eq(d, "line 1, column 1: expected a number, found \"a\"");
    cr_assert_eq(csv_rows("\r\n \r\nlabel, 1 ,b\r\n0,1,2\r\n", API_CSV_HEADER_AUTO, &d), -1);
    cr_assert_str_eq(d, "line 3, column 1: \"label\" is not a number (a header row must have "
                        "no numeric field; use ?header=true to force one)");
    /* a long field is escaped and cut */
    char text[400] = "0,1,";
    for (int i = 0; i < 100; i++)
        strcat(text, "\x7f");
    strcat(text, "\n0,1,2\n");
    cr_assert_eq(csv_rows(text, API_CSV_HEADER_AUTO, &d), -1);
    cr_assert(strncmp(d, "line 1, column 3: \"\\u007f", 25) == 0, "%s", d);
    cr_assert(strstr(d, "\xE2\x80\xA6\" is not a number"), "%s", d);
}

/* ------------------------------------------------------------------ predict body */

Test(predict, rows_of_the_network_width)
{
    const char *bad[][2] = {
        {"{\"X\": [1, 2]}", "X[0]: a row must be an array of 2 numbers"},
        {"{\"X\": [[1, 2], [3]]}", "X[1]: a row must be an array of 2 numbers, found 1"},
        {"{\"X\": [[1, null]]}", "X[0][1]: expected a number"},
        {"{\"X\": []}", "X: expected an array of 1..3 rows of 2 numbers"},
        {"{\"X\": [[1, 2], [1, 2], [1, 2], [1, 2]]}",
         "X: expected an array of 1..3 rows of 2 numbers"},
        {"{\"X\": [[1, 2]], \"Y\": 1}", "body: unknown key \"Y\""},
        {"[]", "body: expected an object {\"X\": [[…]]}"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        api_error err = {0};
        json_t *j = api_parse(bad[i][0], strlen(bad[i][0]), &err);
        cr_assert(j);
        int64_t rows = -1;
        cr_assert_null(api_predict_parse(j, 2, 3, &rows, &err), "%s", bad[i][0]);
        cr_assert_str_eq(err.detail, bad[i][1]);
        cr_assert_eq(err.status, 400u);
        json_decref(j);
    }
    const char *good = "{\"X\": [[1, 2.5], [-3, 4e-3]]}";
    api_error err = {0};
    json_t *j = api_parse(good, strlen(good), &err);
    int64_t rows = 0;
    double *X = api_predict_parse(j, 2, 3, &rows, &err);
    cr_assert(X, "%s", err.detail);
    cr_assert_eq(rows, 2);
    double want[] = {1, 2.5, -3, 4e-3};
    cr_assert_arr_eq(X, want, sizeof want);
    free(X);
    json_decref(j);
}
