/* server_security.c — unit tests of server/security.c without HTTP: the API keys file
 * (plain and SHA-256 keys, every malformed shape with its line number), bearer-token
 * checking, origin canonicalisation and matching, and the token-bucket rate limiter with an
 * injected clock (rate, burst, Retry-After, bounded table), and events tokens with an injected
 * clock (one job, one owner, expiry, forgery).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/security/security.h"
#include "server/security/security_internal.h"

static char keys_path[64];

/* Writes text to a fresh temp file; its path goes into cfg->api_keys_file. */
static void write_keys(config *cfg, const char *text)
{
    snprintf(keys_path, sizeof keys_path, "/tmp/bpd_keys_XXXXXX");
    int fd = mkstemp(keys_path);
    cr_assert(fd >= 0);
    size_t len = strlen(text);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    snprintf(cfg->api_keys_file, sizeof cfg->api_keys_file, "%s", keys_path);
}

/* security_new on a keys file with this text; NULL expected iff want_err != NULL, in which
 * case the error must contain want_err. */
static security *load(const char *text, const char *want_err)
{
    config cfg;
    memset(&cfg, 0, sizeof cfg);
    write_keys(&cfg, text);
    char err[256] = "";
    security *sec = security_new(&cfg, err, sizeof err);
    unlink(keys_path);
    if (want_err) {
        cr_assert_null(sec, "expected failure for %s", text);
        cr_assert(strstr(err, want_err), "error \"%s\" lacks \"%s\"", err, want_err);
        cr_assert_null(strstr(err, "0123456789abcdef"), "a key leaked into: %s", err);
    } else {
        cr_assert_not_null(sec, "unexpected error: %s", err);
    }
    return sec;
}

static security_auth auth(const security *sec, const char *header, char *name)
{
    return security_authenticate(sec, header, name, 64);
}

/* SHA-256 of "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq" (FIPS 180-2 B.2). */
#define FIPS_MSG "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
#define FIPS_HEX "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"

Test(keys, plain_and_hashed_keys_with_comments)
{
    security *sec = load("# backpropd keys\n"
                         "\n"
                         "alice:0123456789abcdef-alice\n"
                         "   bob.team-1:Zm9vYmFyYmF6cXV4cXV1eA==  \r\n"
                         "hashed_c:sha256:" FIPS_HEX "\n"
                         "  # indented comment\n",
                         NULL);
    cr_assert_eq(security_key_count(sec), 3);
    cr_assert(security_has_keys(sec));
    char name[64];
    cr_assert_eq(auth(sec, "Bearer 0123456789abcdef-alice", name), SEC_AUTH_OK);
    cr_assert_str_eq(name, "alice");
    cr_assert_eq(auth(sec, "Bearer Zm9vYmFyYmF6cXV4cXV1eA==", name), SEC_AUTH_OK);
    cr_assert_str_eq(name, "bob.team-1"); /* line trimmed, CRLF tolerated */
    cr_assert_eq(auth(sec, "Bearer " FIPS_MSG, name), SEC_AUTH_OK);
    cr_assert_str_eq(name, "hashed_c");
    security_free(sec);
}

Test(keys, name_with_space_is_rejected)
{
    load("bob.team-1 : Zm9vYmFyYmF6cXV4cXV1eA==\n", "line 1: name must be");
}

Test(keys, authenticate_each_key)
{
    security *sec = load("alice:0123456789abcdef-alice\n"
                         "bob.team-1:Zm9vYmFyYmF6cXV4cXV1eA==\n"
                         "hashed_c:sha256:" FIPS_HEX "\n",
                         NULL);
    char name[64];
    cr_assert_eq(auth(sec, "Bearer Zm9vYmFyYmF6cXV4cXV1eA==", name), SEC_AUTH_OK);
    cr_assert_str_eq(name, "bob.team-1");
    cr_assert_eq(auth(sec, "Bearer " FIPS_MSG, name), SEC_AUTH_OK);
    cr_assert_str_eq(name, "hashed_c");
    /* scheme is case-insensitive (RFC 7235), extra blanks tolerated */
    cr_assert_eq(auth(sec, "bearer 0123456789abcdef-alice", name), SEC_AUTH_OK);
    cr_assert_str_eq(name, "alice");
    cr_assert_eq(auth(sec, "BEARER   0123456789abcdef-alice  ", name), SEC_AUTH_OK);
    /* the hash itself is not a key */
    cr_assert_eq(auth(sec, "Bearer sha256:" FIPS_HEX, name), SEC_AUTH_INVALID);
    cr_assert_eq(auth(sec, "Bearer " FIPS_HEX, name), SEC_AUTH_INVALID);
    /* near misses */
    cr_assert_eq(auth(sec, "Bearer 0123456789abcdef-alicE", name), SEC_AUTH_INVALID);
    cr_assert_eq(auth(sec, "Bearer 0123456789abcdef-alic", name), SEC_AUTH_INVALID);
    cr_assert_eq(auth(sec, "Bearer 0123456789abcdef-alicee", name), SEC_AUTH_INVALID);
    cr_assert_eq(auth(sec, "Bearer alice", name), SEC_AUTH_INVALID);
    /* shapes */
    cr_assert_eq(auth(sec, NULL, name), SEC_AUTH_MISSING);
    cr_assert_eq(auth(sec, "", name), SEC_AUTH_MALFORMED);
    cr_assert_eq(auth(sec, "Bearer", name), SEC_AUTH_MALFORMED);
    cr_assert_eq(auth(sec, "Bearer ", name), SEC_AUTH_MALFORMED);
    cr_assert_eq(auth(sec, "Bearer0123456789abcdef-alice", name), SEC_AUTH_MALFORMED);
    cr_assert_eq(auth(sec, "Basic YWxpY2U6MDEyMzQ1Njc4OWFiY2RlZg==", name), SEC_AUTH_MALFORMED);
    cr_assert_eq(auth(sec, "0123456789abcdef-alice", name), SEC_AUTH_MALFORMED);
    cr_assert_eq(auth(sec, "Bearer 0123456789abcdef-alice extra", name), SEC_AUTH_MALFORMED);
    security_free(sec);
}

Test(keys, malformed_files_name_the_line)
{
    load("# ok\nalice:0123456789abcdef-alice\nnocolon\n",
         "api-keys-file line 3: expected name:key");
    load(":0123456789abcdef\n", "line 1: expected name:key");
    load("alice:\n", "line 1: expected name:key");
    load("alice:short\n", "line 1: key must be");
    load("al ice:0123456789abcdef\n", "line 1: name must be");
    load("al/ice:0123456789abcdef\n", "line 1: name must be");
    load("a123456789012345678901234567890123456789012345678901234567890123:0123456789abcdef\n",
         "line 1: name must be");
    load("alice:0123456789 abcdef\n", "line 1: key must be");
    load("alice:sha256:abc\n", "line 1: sha256: needs exactly 64 hex digits");
    load("alice:sha256:" "g48d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1\n",
         "sha256: needs exactly 64 hex");
    load("alice:0123456789abcdef\n\nalice:0123456789abcdeX\n", "line 3: duplicate name alice");
    load("alice:0123456789abcdef\nbob:0123456789abcdef\n", "line 2: same key as alice");
    load("# nothing\n\n", "holds no keys");
    load("", "holds no keys");
}

Test(keys, longest_name_and_unreadable_file)
{
    security *sec = load("a12345678901234567890123456789012345678901234567890123456789012:"
                         "0123456789abcdef\n", NULL);
    char name[64];
    cr_assert_eq(auth(sec, "Bearer 0123456789abcdef", name), SEC_AUTH_OK);
    cr_assert_eq(strlen(name), 63);
    security_free(sec);

    config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.api_keys_file, sizeof cfg.api_keys_file, "/nonexistent/keys");
    char err[256];
    cr_assert_null(security_new(&cfg, err, sizeof err));
    cr_assert(strstr(err, "cannot open /nonexistent/keys"), "%s", err);
}

Test(keys, no_keys_means_open_and_metrics_auth_needs_keys)
{
    config cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[256];
    security *sec = security_new(&cfg, err, sizeof err);
    cr_assert_not_null(sec);
    cr_assert_not(security_has_keys(sec));
    security_free(sec);
    security_free(NULL);
    cfg.metrics_auth = 1;
    cr_assert_null(security_new(&cfg, err, sizeof err));
    cr_assert(strstr(err, "--metrics-auth"), "%s", err);
}

/* ---------------------------------------------------------------- origins */

static void canon_is(const char *in, const char *want)
{
    char out[SEC_ORIGIN_MAX + 1];
    if (!want) {
        cr_assert_neq(security_origin_canon(in, out, sizeof out), 0, "%s accepted as %s", in, out);
        return;
    }
    cr_assert_eq(security_origin_canon(in, out, sizeof out), 0, "%s refused", in);
    cr_assert_str_eq(out, want);
}

Test(origins, canonical_form)
{
    canon_is("https://app.example.com", "https://app.example.com");
    canon_is("HTTPS://App.Example.COM", "https://app.example.com");
    canon_is("https://app.example.com:443", "https://app.example.com");
    canon_is("http://app.example.com:80", "http://app.example.com");
    canon_is("http://app.example.com:443", "http://app.example.com:443");
    canon_is("http://localhost:5173", "http://localhost:5173");
    canon_is("http://127.0.0.1:3000", "http://127.0.0.1:3000");
    canon_is("http://[::1]:3000", "http://[::1]:3000");
    canon_is("null", NULL);
    canon_is("*", NULL);
    canon_is("", NULL);
    canon_is("https://", NULL);
    canon_is("https://app.example.com/", NULL);
    canon_is("https://app.example.com/path", NULL);
    canon_is("https://user@app.example.com", NULL);
    canon_is("https://app.example.com?x", NULL);
    canon_is("https://app.example.com#x", NULL);
    canon_is("https://app.example.com:", NULL);
    canon_is("https://app.example.com:0", NULL);
    canon_is("https://app.example.com:0443", NULL);
    canon_is("https://app.example.com:65536", NULL);
    canon_is("https://app.example.com:1234567", NULL);
    canon_is("ftp://app.example.com", NULL);
    canon_is("//app.example.com", NULL);
    canon_is("app.example.com", NULL);
    canon_is("https://app.example.com ", NULL);
    canon_is(" https://app.example.com", NULL);
    canon_is("https://app.example.com\r\nX-Evil: 1", NULL);
    canon_is("https://[::1", NULL);
    canon_is("https://.example.com", NULL);
}

static security *with_origins(const char *list, const char *want_err)
{
    config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.cors_origins, sizeof cfg.cors_origins, "%s", list);
    char err[256] = "";
    security *sec = security_new(&cfg, err, sizeof err);
    if (want_err) {
        cr_assert_null(sec, "%s accepted", list);
        cr_assert(strstr(err, want_err), "error \"%s\" lacks \"%s\"", err, want_err);
    } else {
        cr_assert_not_null(sec, "%s", err);
    }
    return sec;
}

Test(origins, matching_is_exact)
{
    security *sec = with_origins(" https://app.example.com , http://localhost:5173,,", NULL);
    const char *hit = security_origin_allowed(sec, "https://app.example.com");
    cr_assert_not_null(hit);
    cr_assert_str_eq(hit, "https://app.example.com");
    cr_assert_str_eq(security_origin_allowed(sec, "https://APP.example.com"), "https://app.example.com");
    cr_assert_str_eq(security_origin_allowed(sec, "http://localhost:5173"), "http://localhost:5173");
    static const char *const bad[] = {
        "https://app.example.com.evil.net", "https://evil-app.example.com",
        "https://evilapp.example.com", "https://app.example.co", "https://pp.example.com",
        "http://app.example.com", "https://app.example.com:8443", "https://app.example.com/",
        "null", "https://app.example.com.", "http://localhost", "http://localhost:51730",
        "https://localhost:5173", "http://localhost:517", "https://u@app.example.com",
        "", "*", "https://app.example.com\n", NULL,
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_null(security_origin_allowed(sec, bad[i]), "%s allowed", bad[i] ? bad[i] : "NULL");
    security_free(sec);
}

Test(origins, bad_config_is_refused)
{
    with_origins("null", "\"null\"");
    with_origins("https://a.example.com,*", "\"*\"");
    with_origins("https://a.example.com/", "is not an origin");
    with_origins("a.example.com", "is not an origin");
    char long_origin[300] = "https://";
    memset(long_origin + 8, 'a', 200);
    with_origins(long_origin, "longer than");
}

Test(origins, none_configured_allows_none)
{
    security *sec = with_origins("", NULL);
    cr_assert_null(security_origin_allowed(sec, "http://localhost:5173"));
    security_free(sec);
}

/* ---------------------------------------------------------------- rate limiter */

static security *with_rate(int n)
{
    config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.rate_limit = n;
    char err[256];
    security *sec = security_new(&cfg, err, sizeof err);
    cr_assert_not_null(sec, "%s", err);
    return sec;
}

Test(ratelimit, burst_then_rate)
{
    security *sec = with_rate(5); /* 5/s, burst 10 */
    double t = 1000.0;
    for (int i = 0; i < 10; i++)
        cr_assert_eq(security_rate_take(sec, "a:1.2.3.4", t), 0, "take %d refused", i);
    int wait = security_rate_take(sec, "a:1.2.3.4", t);
    cr_assert_eq(wait, 1); /* one token needs 0.2 s: rounded up to 1 s */
    /* another bucket is independent */
    cr_assert_eq(security_rate_take(sec, "k:alice", t), 0);
    /* 0.19 s later: 0.95 tokens, short; 0.21 s later: 1.05, one request */
    cr_assert_eq(security_rate_take(sec, "a:1.2.3.4", t + 0.19), 1);
    cr_assert_eq(security_rate_take(sec, "a:1.2.3.4", t + 0.21), 0);
    cr_assert_eq(security_rate_take(sec, "a:1.2.3.4", t + 0.21), 1);
    /* after waiting the advertised second: 5.05 tokens -> 5 requests */
    int ok = 0;
    while (security_rate_take(sec, "a:1.2.3.4", t + 1.21) == 0)
        ok++;
    cr_assert_eq(ok, 5);
    /* never more than the burst */
    ok = 0;
    while (security_rate_take(sec, "a:1.2.3.4", t + 100.0) == 0)
        ok++;
    cr_assert_eq(ok, 10);
    security_free(sec);
}

Test(ratelimit, slow_rate_retry_after)
{
    security *sec = with_rate(1); /* 1/s, burst 2 */
    cr_assert_eq(security_rate_take(sec, "a:x", 0.0), 0);
    cr_assert_eq(security_rate_take(sec, "a:x", 0.0), 0);
    cr_assert_eq(security_rate_take(sec, "a:x", 0.0), 1);
    cr_assert_eq(security_rate_take(sec, "a:x", 0.5), 1);
    cr_assert_eq(security_rate_take(sec, "a:x", 1.0), 0);
    security_free(sec);
}

Test(ratelimit, off_is_off)
{
    security *sec = with_rate(0);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(security_rate_take(sec, "a:x", 0.0), 0);
    cr_assert_eq(security_rate_entries(sec), 0);
    security_free(sec);
}

Test(ratelimit, table_is_bounded_and_keeps_busy_buckets)
{
    security *sec = with_rate(1);
    char key[32];
    /* one busy bucket, drained */
    cr_assert_eq(security_rate_take(sec, "a:busy", 0.0), 0);
    cr_assert_eq(security_rate_take(sec, "a:busy", 0.0), 0);
    /* 100k distinct addresses, each seen once, over 0.5 s: all still busy when the table
     * fills, so the oldest are dropped; the count never exceeds the table's bound */
    size_t most = 0;
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "a:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        cr_assert_eq(security_rate_take(sec, key, 0.5 * i / 100000.0), 0);
        size_t n = security_rate_entries(sec);
        if (n > most)
            most = n;
    }
    cr_assert_leq(most, 8192 / 2);
    cr_assert_gt(most, 1000);
    security_free(sec);
}

Test(ratelimit, idle_buckets_are_evicted_before_busy_ones)
{
    security *sec = with_rate(1); /* burst 2: a bucket is idle 2 s after its last use */
    char key[32];
    for (int i = 0; i < 4000; i++) {
        snprintf(key, sizeof key, "a:old%d", i);
        cr_assert_eq(security_rate_take(sec, key, 0.0), 0);
    }
    cr_assert_eq(security_rate_entries(sec), 4000);
    /* 10 s later the 4000 are idle; drain one bucket, then overflow the table */
    cr_assert_eq(security_rate_take(sec, "a:hot", 10.0), 0);
    cr_assert_eq(security_rate_take(sec, "a:hot", 10.0), 0);
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "a:new%d", i);
        cr_assert_eq(security_rate_take(sec, key, 10.0), 0);
    }
    /* the compaction dropped the idle ones and kept the drained one (still empty) */
    cr_assert_lt(security_rate_entries(sec), 300);
    cr_assert_eq(security_rate_take(sec, "a:hot", 10.0), 1);
    security_free(sec);
}

/* ---------------------------------------------------------------- events tokens */

Test(tokens, one_job_one_owner_until_it_expires)
{
    unsigned char secret[SEC_TOKEN_SECRET], other[SEC_TOKEN_SECRET];
    memset(secret, 7, sizeof secret);
    memset(other, 8, sizeof other);
    const char *job = "job_0123456789abcdef01234567";
    char tok[SECURITY_TOKEN_MAX], owner[64];
    int64_t now = 1764500000, expires = 0;
    cr_assert_eq(security_token_make(secret, "alice", job, now, tok, sizeof tok, &expires), 0);
    cr_assert_eq(expires, now + SECURITY_TOKEN_TTL);
    cr_assert_eq(security_token_check(secret, tok, job, now, owner), 0);
    cr_assert_str_eq(owner, "alice");
    /* still good at the last second, refused one second later */
    cr_assert_eq(security_token_check(secret, tok, job, expires, owner), 0);
    cr_assert_eq(security_token_check(secret, tok, job, expires + 1, owner), -1);
    /* another job, another secret (keys changed), a flipped MAC digit, another owner */
    cr_assert_eq(security_token_check(secret, tok, "job_0123456789abcdef01234568", now, owner),
                 -1);
    cr_assert_eq(security_token_check(other, tok, job, now, owner), -1);
    char bad[SECURITY_TOKEN_MAX];
    snprintf(bad, sizeof bad, "%s", tok);
    bad[strlen(bad) - 1] ^= 1;
    cr_assert_eq(security_token_check(secret, bad, job, now, owner), -1);
    char *dot = strchr(tok + 3, '.');
    snprintf(bad, sizeof bad, "v1.%lld.626f62%s", (long long)expires, strchr(dot + 1, '.'));
    cr_assert_eq(security_token_check(secret, bad, job, now, owner), -1, "bob with alice's MAC");
    /* a later expiry than the TTL allows is not one this server made */
    snprintf(bad, sizeof bad, "v1.%lld%s", (long long)(now + SECURITY_TOKEN_TTL + 3600), dot);
    cr_assert_eq(security_token_check(secret, bad, job, now, owner), -1);
    const char *junk[] = {"", "v1", "v1.", "v2.1.2.3", "v1.x.61.00", "v1.1764500300.6.00"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        cr_assert_eq(security_token_check(secret, junk[i], job, now, owner), -1, "%s", junk[i]);
    /* the tenant without keys ("") round-trips too */
    cr_assert_eq(security_token_make(secret, "", job, now, tok, sizeof tok, &expires), 0);
    cr_assert_eq(security_token_check(secret, tok, job, now, owner), 0);
    cr_assert_str_eq(owner, "");
}
