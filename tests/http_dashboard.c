/* http_dashboard.c — the dashboard's files over real HTTP: GET / and every file of
 * server/dashboard/ at /ui/{asset} answer the repository's bytes with their Content-Type, the
 * strict Content-Security-Policy, nosniff, no-cache and a strong ETag that If-None-Match turns
 * into a 304 without a body; every file the page or a module names is served; an unknown asset
 * is a problem+json 404; the page needs no key when the server has keys; GET /v1/whoami names
 * the tenant of the key (and says when there are no keys). The browser side is
 * tests/js/dashboard.test.mjs.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/harness.h"

#define CSP "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " \
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
#define KEY_A "alice-dashboard-key-0123456789"

/* The repository's copy of a dashboard file (new), its length in *len. */
static char *repo_file(const char *name, size_t *len)
{
    char rel[320];
    snprintf(rel, sizeof rel, "../../server/dashboard/%s", name);
    return test_read_file(test_data_path(rel), len);
}

static const char *type_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return "";
    if (strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    if (strcmp(dot, ".svg") == 0)
        return "image/svg+xml";
    return "text/html; charset=utf-8";
}

/* GET path: 200, the file's bytes and type, the security and caching headers; then a 304
 * for its ETag and a 200 for another. */
static void check_served(const srv *s, const char *path, const char *file)
{
    size_t len = 0;
    char *want = repo_file(file, &len);
    resp r;
    char v[200];
    cr_assert_eq(http_get(s, path, &r), 0);
    cr_assert_eq(r.status, 200, "%s: %ld", path, r.status);
    cr_expect_eq(r.len, len, "%s: %zu bytes served, the file has %zu", path, r.len, len);
    cr_expect(r.len == len && memcmp(r.body, want, len) == 0, "%s: not the file's bytes", path);
    cr_assert_eq(resp_header(&r, "Content-Type", v, sizeof v), 0);
    cr_expect_str_eq(v, type_of(file), "%s", path);
    cr_assert_eq(resp_header(&r, "Content-Security-Policy", v, sizeof v), 0, "%s: no CSP", path);
    cr_expect_str_eq(v, CSP);
    cr_assert_eq(resp_header(&r, "X-Content-Type-Options", v, sizeof v), 0);
    cr_expect_str_eq(v, "nosniff");
    cr_assert_eq(resp_header(&r, "Cache-Control", v, sizeof v), 0);
    cr_expect_str_eq(v, "no-cache");
    char etag[64];
    cr_assert_eq(resp_header(&r, "ETag", etag, sizeof etag), 0, "%s: no ETag", path);
    cr_expect(etag[0] == '"' && strlen(etag) == 18, "%s: ETag %s", path, etag);
    resp_free(&r);

    char inm[100];
    snprintf(inm, sizeof inm, "If-None-Match: W/\"0000000000000000\", %s", etag);
    const char *h[] = {inm, NULL};
    cr_assert_eq(http_req(s, "GET", path, NULL, NULL, 0, h, &r), 0);
    cr_expect_eq(r.status, 304, "%s with its ETag: %ld", path, r.status);
    cr_expect_eq(r.len, 0);
    resp_free(&r);
    const char *h2[] = {"If-None-Match: \"0000000000000000\"", NULL};
    cr_assert_eq(http_req(s, "GET", path, NULL, NULL, 0, h2, &r), 0);
    cr_expect_eq(r.status, 200, "%s with another ETag: %ld", path, r.status);
    resp_free(&r);
    free(want);
}

/* Every "/ui/NAME" and "./NAME" the text names answers 200. Returns how many it checked. */
static int check_references(const srv *s, const char *text)
{
    int n = 0;
    const char *marks[] = {"\"/ui/", "'./"};
    for (int m = 0; m < 2; m++)
        for (const char *p = strstr(text, marks[m]); p; p = strstr(p + 1, marks[m])) {
            const char *name = p + strlen(marks[m]);
            size_t k = strcspn(name, "\"'");
            char path[128];
            snprintf(path, sizeof path, "/ui/%.*s", (int)k, name);
            resp r;
            cr_assert_eq(http_get(s, path, &r), 0);
            cr_expect_eq(r.status, 200, "%s (named by a dashboard file) answers %ld", path, r.status);
            resp_free(&r);
            n++;
        }
    return n;
}

Test(http_dashboard, every_file_served_with_type_csp_and_etag, .timeout = 60)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    check_served(&s, "/", "index.html");

    /* every file of server/dashboard/ (but the page) at /ui/NAME, and what each names */
    char dir[300];
    snprintf(dir, sizeof dir, "%s", test_data_path("../../server/dashboard"));
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot list %s", dir);
    int files = 0, refs = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        size_t len = 0;
        char *text = repo_file(e->d_name, &len);
        refs += check_references(&s, text);
        free(text);
        files++;
        if (strcmp(e->d_name, "index.html") == 0)
            continue;
        char path[300];
        snprintf(path, sizeof path, "/ui/%s", e->d_name);
        check_served(&s, path, e->d_name);
    }
    closedir(d);
    cr_expect_geq(files, 8, "only %d dashboard files", files);
    cr_expect_geq(refs, 10, "the page and its modules name only %d files", refs);

    /* HEAD: the headers without the body */
    resp r;
    cr_assert_eq(http_req(&s, "HEAD", "/", NULL, NULL, 0, NULL, &r), 0);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(r.len, 0);
    resp_free(&r);
    /* an unknown file, a path below /ui/NAME, and a page that is no route */
    cr_assert_eq(http_get(&s, "/ui/nope.js", &r), 0);
    expect_problem(&r, 404, "asset: no dashboard file \"nope.js\"");
    resp_free(&r);
    cr_assert_eq(http_get(&s, "/ui/app.js/x", &r), 0);
    cr_expect_eq(r.status, 404);
    resp_free(&r);
    cr_assert_eq(http_get(&s, "/index.html", &r), 0);
    cr_expect_eq(r.status, 404);
    resp_free(&r);

    /* no keys: whoami says so */
    json_t *me = get_json_h(&s, NULL, "/v1/whoami");
    cr_expect(json_is_null(json_object_get(me, "tenant")));
    cr_expect(json_is_false(json_object_get(me, "keys_required")));
    json_decref(me);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(http_dashboard, page_is_open_and_whoami_names_the_key, .timeout = 60)
{
    char dir[] = "/tmp/bpd_dash_XXXXXX", keys[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(keys, sizeof keys, "%s/keys", dir);
    FILE *f = fopen(keys, "w");
    cr_assert_not_null(f);
    fputs("alice:" KEY_A "\nbob:bob-dashboard-key-0123456789\n", f);
    fclose(f);
    chmod(keys, 0600);
    const char *extra[] = {"--api-keys-file", keys, NULL};
    srv s;
    cr_assert_eq(srv_start(&s, extra), 0);

    check_served(&s, "/", "index.html");        /* no key needed for the page */
    check_served(&s, "/ui/app.js", "app.js");
    resp r;
    cr_assert_eq(http_get(&s, "/v1/whoami", &r), 0);
    cr_expect_eq(r.status, 401);
    resp_free(&r);
    const char *bad[] = {"Authorization: Bearer not-a-key-0123456789", NULL};
    cr_assert_eq(http_req(&s, "GET", "/v1/whoami", NULL, NULL, 0, bad, &r), 0);
    cr_expect_eq(r.status, 401);
    resp_free(&r);
    const char *h[] = {"Authorization: Bearer " KEY_A, NULL};
    json_t *me = get_json_h(&s, h, "/v1/whoami");
    cr_expect_str_eq(json_string_value(json_object_get(me, "tenant")), "alice");
    cr_expect(json_is_true(json_object_get(me, "keys_required")));
    json_decref(me);
    /* the key never reaches the log */
    char *log = srv_log(&s);
    cr_expect_null(strstr(log, KEY_A));
    free(log);
    srv_stop(&s);
    srv_cleanup(&s);
    unlink(keys);
    rmdir(dir);
}
