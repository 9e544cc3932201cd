/* key_shown.h — what tests expect a message to show of a user's key, written independently
 * of api/ (api_escape): quote and backslash escaped, control characters and DEL as \u00xx,
 * UTF-8 as it is; a key too long for the message is cut at a character boundary and ends
 * with "…". Static helpers for the Criterion tests that include it.
 */
#ifndef BACKPROPD_TESTS_KEY_SHOWN_H
#define BACKPROPD_TESTS_KEY_SHOWN_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/* The shown form of the character at c into out (>= 8 bytes); *used: its bytes in the key. */
static size_t key_shown_char(char *out, const unsigned char *c, size_t *used)
{
    *used = 1;
    if (*c == '"' || *c == '\\')
        return (size_t)sprintf(out, "\\%c", *c);
    if (*c < 0x20 || *c == 0x7f)
        return (size_t)sprintf(out, "\\u%04x", *c);
    if (*c >= 0xC0)
        *used = *c >= 0xF0 ? 4 : *c >= 0xE0 ? 3 : 2;
    memcpy(out, c, *used);
    out[*used] = '\0';
    return *used;
}

/* detail must be '<field>: unknown key "<q>"' where q shows the whole key, or a prefix of it
 * cut at a character boundary followed by "…". */
static void expect_key_shown(const char *detail, const char *field, const char *key)
{
    char head[64];
    snprintf(head, sizeof head, "%s: unknown key \"", field);
    cr_assert(strncmp(detail, head, strlen(head)) == 0, "%s", detail);
    const char *q = detail + strlen(head);
    size_t qlen = strlen(q), o = 0, used;
    cr_assert(qlen >= 1 && q[qlen - 1] == '"', "%s", detail);
    qlen--;
    char one[8];
    for (const unsigned char *c = (const unsigned char *)key; *c; c += used) {
        size_t n = key_shown_char(one, c, &used);
        if (o + n > qlen || memcmp(q + o, one, n) != 0) {
            cr_assert(qlen - o == 3 && memcmp(q + o, "\xE2\x80\xA6", 3) == 0,
                      "key shown wrongly at byte %zu: %s", o, detail);
            return;
        }
        o += n;
    }
    cr_assert_eq(o, qlen, "%s", detail);
}

/* The JSON text and the raw bytes of a key "l" + n × a unit + "i", for the units tests try:
 * DEL, escaped control characters, quote, backslash, newline and 2- and 3-byte UTF-8. */
static const char *const key_units[][2] = {
    {"\x7f", "\x7f"},         {"\\u0001", "\x01"}, {"\\u001f", "\x1f"}, {"\xC3\xA9", "\xC3\xA9"},
    {"\\\"", "\""},         {"\\\\", "\\"},   {"\xE2\x82\xAC", "\xE2\x82\xAC"},
    {"\\n", "\n"}};
#define KEY_UNITS (sizeof key_units / sizeof *key_units)

static void key_of_units(char *json_key, char *raw, size_t unit, int n)
{
    strcpy(json_key, "l");
    strcpy(raw, "l");
    for (int k = 0; k < n; k++) {
        strcat(json_key, key_units[unit][0]);
        strcat(raw, key_units[unit][1]);
    }
    strcat(json_key, "i");
    strcat(raw, "i");
}

#endif
