/* security_token.c — events tokens (security.h): what a browser's EventSource presents as
 * ?access_token= in place of the API key it cannot send. A token is
 * "v1.<expires>.<owner hex>.<HMAC-SHA256 hex>", the MAC over the job id, the owner and the
 * expiry under the secret security.c derives from the keys file. Nothing is stored: a token
 * is checked by recomputing its MAC (compared in constant time).
 */
#include <nettle/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/security/security_internal.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The MAC of (job, owner, expires) in hex (2 × SEC_TOKEN_SECRET + 1 bytes). */
static void token_mac(const unsigned char secret[SEC_TOKEN_SECRET], const char *job_id,
                      const char *owner, long long expires, char hex[2 * SEC_TOKEN_SECRET + 1])
{
    char msg[256];
    int n = snprintf(msg, sizeof msg, "events\n%s\n%s\n%lld", job_id, owner, expires);
    struct hmac_sha256_ctx c;
    unsigned char d[SEC_TOKEN_SECRET];
    hmac_sha256_set_key(&c, SEC_TOKEN_SECRET, secret);
    hmac_sha256_update(&c, n > 0 ? (size_t)n : 0, (const uint8_t *)msg);
    hmac_sha256_digest(&c, SEC_TOKEN_SECRET, d);
    for (size_t i = 0; i < SEC_TOKEN_SECRET; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

int security_token_make(const unsigned char secret[SEC_TOKEN_SECRET], const char *owner,
                        const char *job_id, int64_t now, char *out, size_t outlen,
                        int64_t *expires)
{
    char mac[2 * SEC_TOKEN_SECRET + 1], owner_hex[2 * 63 + 1] = "";
    size_t olen = strlen(owner);
    if (olen > 63 || outlen < SECURITY_TOKEN_MAX)
        return -1;
    for (size_t i = 0; i < olen; i++)
        snprintf(owner_hex + 2 * i, 3, "%02x", (unsigned char)owner[i]);
    *expires = now + SECURITY_TOKEN_TTL;
    token_mac(secret, job_id, owner, (long long)*expires, mac);
    snprintf(out, outlen, "v1.%lld.%s.%s", (long long)*expires, owner_hex, mac);
    return 0;
}

int security_token_check(const unsigned char secret[SEC_TOKEN_SECRET], const char *token,
                         const char *job_id, int64_t now, char owner[64])
{
    char mac[2 * SEC_TOKEN_SECRET + 1];
    if (!token || strncmp(token, "v1.", 3) != 0 || strlen(token) >= SECURITY_TOKEN_MAX)
        return -1;
    char *end = NULL;
    long long expires = strtoll(token + 3, &end, 10);
    /* another instance's clock may run a little ahead: a minute of slack, no more */
    if (!end || *end != '.' || expires < now || expires > now + SECURITY_TOKEN_TTL + 60)
        return -1;
    const char *oh = end + 1, *dot = strchr(oh, '.');
    size_t ohl = dot ? (size_t)(dot - oh) : 0;
    if (!dot || ohl % 2 || ohl > 126 || strlen(dot + 1) != 2 * SEC_TOKEN_SECRET)
        return -1;
    for (size_t i = 0; i < ohl / 2; i++) {
        int hi = hexval(oh[2 * i]), lo = hexval(oh[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        owner[i] = (char)(hi << 4 | lo);
    }
    owner[ohl / 2] = '\0';
    if (strlen(owner) != ohl / 2)
        return -1;
    token_mac(secret, job_id, owner, expires, mac);
    unsigned diff = 0; /* constant time over the MAC */
    for (size_t i = 0; i < 2 * SEC_TOKEN_SECRET; i++)
        diff |= (unsigned)(mac[i] ^ dot[1 + i]);
    return diff == 0 ? 0 : -1;
}

