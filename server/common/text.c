/* text.c — see text.h. */
#include "server/common/text.h"

#include <string.h>

const char *text_log_safe(char *out, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (cap == 0)
        return out;
    for (; s && *s && o + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '%') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return out;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid (the check jansson
 * applies to every string it prints: no overlongs, no surrogates, nothing past U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
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

const char *text_name_safe(char *out, size_t cap, const char *in)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t n = strlen(in), o = 0;
    if (cap == 0)
        return out;
    for (size_t i = 0; i < n && o + 1 < cap;) {
        size_t k = s[i] < 0x80 ? 1 : utf8_len(s + i, n - i);
        if (k > 1 && o + k < cap) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
            continue;
        }
        int bad = k != 1 || s[i] < 0x20 || s[i] == 0x7f || s[i] == '"' || s[i] == '\\';
        out[o++] = bad ? '_' : (char)s[i];
        i += k ? k : 1;
    }
    out[o] = '\0';
    return out;
}
