/* text.c — see text.h. */
#include "server/common/text.h"

#include "api/api.h"

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

const char *text_name_safe(char *out, size_t cap, const char *in)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t n = strlen(in), o = 0;
    if (cap == 0)
        return out;
    for (size_t i = 0; i < n && o + 1 < cap;) {
        size_t k = s[i] < 0x80 ? 1 : api_utf8_len(s + i, n - i);
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

uint32_t text_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}
