/* server_openapi.c — api/openapi.yaml and the route table (server/routes.c) describe the same
 * endpoints: every route is documented under the same path and method, and every documented
 * path + method is a route. The YAML is read simply by indentation: under the top-level
 * "paths:", a key indented by 2 is a path and a key indented by 4 that names an HTTP method
 * is an operation of it. Further checks on the same reading: every operation has a unique
 * operationId; the open routes (and only they) say "security: []"; every /v1 operation lists
 * 401 and 503, every route that takes a body 413 and 415; every route's query parameters
 * (the framework refuses others) are the operation's "in: query" parameters, in the same
 * order; every "$ref" points at a component that exists. (tests/http_openapi.c replays the examples against a live server.)
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/handlers/routes.h"
#include "tests/harness.h"

#define MAX_OPS 128

typedef struct {
    char method[8];
    char path[128];
    char op_id[64];
    int open;          /* "security: []" */
    int statuses[32];
    int n_status;
    char query[256];   /* its "in: query" parameters, comma-separated, in document order */
    char pending[64];  /* the last "- name:" under its parameters */
} op;

/* api/openapi.yaml (new). The repository root is two levels above tests/data, wherever the
 * test runs from. */
static char *read_yaml(void)
{
    size_t len;
    return test_read_file(test_data_path("../../api/openapi.yaml"), &len);
}

static int indent_of(const char *line)
{
    int n = 0;
    while (line[n] == ' ')
        n++;
    return n;
}

/* The key of a "key:" line (quotes removed) into out; 0 if the line is not "key:" alone. */
static int bare_key(const char *line, char *out, size_t cap)
{
    const char *s = line + indent_of(line);
    size_t n = strcspn(s, "\r\n");
    while (n > 0 && s[n - 1] == ' ')
        n--;
    if (n < 2 || s[n - 1] != ':')
        return 0;
    n--;
    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
        s++;
        n -= 2;
    }
    if (n == 0 || n >= cap)
        return 0;
    memcpy(out, s, n);
    out[n] = '\0';
    return 1;
}

static int parse_ops(char *yaml, op *ops)
{
    static const char *const methods[] = {"get", "put", "post", "delete", "patch", "head",
                                          "options", "trace"};
    int n = 0, in_paths = 0, in_responses = 0;
    char path[128] = "";
    op *cur = NULL;
    for (char *line = strtok(yaml, "\n"); line; line = strtok(NULL, "\n")) {
        const char *t = line + indent_of(line);
        if (*t == '\0' || *t == '#' || *t == '\r')
            continue;
        int ind = indent_of(line);
        char key[128];
        if (ind == 0) {
            in_paths = strncmp(line, "paths:", 6) == 0;
            cur = NULL;
            continue;
        }
        if (!in_paths)
            continue;
        if (cur && ind == 8 && strncmp(t, "- name: ", 8) == 0)
            snprintf(cur->pending, sizeof cur->pending, "%.*s", (int)strcspn(t + 8, "\r"), t + 8);
        if (cur && ind == 10 && strncmp(t, "in: query", 9) == 0 && cur->pending[0]) {
            size_t q = strlen(cur->query);
            snprintf(cur->query + q, sizeof cur->query - q, "%s%s", q ? "," : "", cur->pending);
            cur->pending[0] = '\0';
        }
        if (cur && ind == 6) {
            in_responses = strncmp(t, "responses:", 10) == 0;
            if (strncmp(t, "operationId: ", 13) == 0)
                snprintf(cur->op_id, sizeof cur->op_id, "%s", t + 13);
            if (strcmp(t, "security: []") == 0)
                cur->open = 1;
        }
        if (!bare_key(line, key, sizeof key))
            continue;
        if (ind == 2) {
            snprintf(path, sizeof path, "%s", key);
            cur = NULL;
        } else if (ind == 4 && path[0]) {
            cur = NULL;
            for (size_t m = 0; m < sizeof methods / sizeof *methods; m++) {
                if (strcmp(key, methods[m]) != 0)
                    continue;
                cr_assert(n < MAX_OPS);
                cur = &ops[n++];
                memset(cur, 0, sizeof *cur);
                for (size_t i = 0; key[i]; i++)
                    cur->method[i] = (char)toupper((unsigned char)key[i]);
                cur->method[strlen(key)] = '\0';
                snprintf(cur->path, sizeof cur->path, "%s", path);
            }
        } else if (cur && in_responses && ind == 8 && cur->n_status < 32) {
            cur->statuses[cur->n_status++] = atoi(key);
        }
    }
    return n;
}

static const op *op_of(const op *ops, int n, const char *method, const char *path)
{
    for (int k = 0; k < n; k++)
        if (strcmp(ops[k].method, method) == 0 && strcmp(ops[k].path, path) == 0)
            return &ops[k];
    return NULL;
}

static int lists(const op *o, int status)
{
    for (int i = 0; i < o->n_status; i++)
        if (o->statuses[i] == status)
            return 1;
    return 0;
}

Test(openapi, matches_route_table)
{
    char *yaml = read_yaml();
    op ops[MAX_OPS];
    int n = parse_ops(yaml, ops);
    free(yaml);
    cr_assert_gt(n, 0, "no operations found under paths:");

    for (int i = 0; i < n_routes; i++) {
        int found = 0;
        for (int k = 0; k < n; k++)
            found += strcmp(ops[k].method, routes[i].method) == 0 &&
                     strcmp(ops[k].path, routes[i].pattern) == 0;
        cr_expect_eq(found, 1, "route %s %s is documented %d times in api/openapi.yaml",
                     routes[i].method, routes[i].pattern, found);
    }
    for (int k = 0; k < n; k++) {
        int found = 0;
        for (int i = 0; i < n_routes; i++)
            found += strcmp(ops[k].method, routes[i].method) == 0 &&
                     strcmp(ops[k].path, routes[i].pattern) == 0;
        cr_expect_eq(found, 1, "api/openapi.yaml documents %s %s, which is not a route",
                     ops[k].method, ops[k].path);
    }
    cr_assert_eq(n, n_routes);
}

/* The parser itself must see what it is meant to see (so the test above can fail). */
Test(openapi, parser_reads_indentation)
{
    char text[] = "openapi: 3.1.0\n"
                  "paths:\n"
                  "  /a:\n"
                  "    parameters:\n"
                  "      - name: x\n"
                  "    get:\n"
                  "      responses:\n"
                  "        \"200\":\n"
                  "          description: ok\n"
                  "    delete:\n"
                  "      summary: d\n"
                  "  \"/b/{id}\":\n"
                  "    post:\n"
                  "      summary: p\n"
                  "components:\n"
                  "  schemas:\n"
                  "    get:\n";
    op ops[MAX_OPS];
    int n = parse_ops(text, ops);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(ops[0].method, "GET");
    cr_assert_str_eq(ops[0].path, "/a");
    cr_assert_str_eq(ops[1].method, "DELETE");
    cr_assert_str_eq(ops[2].method, "POST");
    cr_assert_str_eq(ops[2].path, "/b/{id}");
}

Test(openapi, operations_are_complete)
{
    char *yaml = read_yaml();
    op ops[MAX_OPS];
    int n = parse_ops(yaml, ops);
    free(yaml);
    cr_assert_eq(n, n_routes);
    for (int k = 0; k < n; k++) {
        cr_expect(ops[k].op_id[0], "%s %s has no operationId", ops[k].method, ops[k].path);
        for (int i = 0; i < k; i++)
            cr_expect(strcmp(ops[i].op_id, ops[k].op_id) != 0,
                      "operationId %s is used by %s %s and %s %s", ops[k].op_id, ops[i].method,
                      ops[i].path, ops[k].method, ops[k].path);
        cr_expect_gt(ops[k].n_status, 0, "%s %s lists no responses", ops[k].method, ops[k].path);
    }
    for (int i = 0; i < n_routes; i++) {
        const op *o = op_of(ops, n, routes[i].method, routes[i].pattern);
        cr_assert(o);
        cr_expect_eq(o->open, routes[i].open, "%s %s: security: [] %s, but the route is %s",
                     o->method, o->path, o->open ? "given" : "missing",
                     routes[i].open ? "open" : "behind the API key");
        if (!routes[i].open) {
            cr_expect(lists(o, 401), "%s %s does not list 401", o->method, o->path);
            cr_expect(lists(o, 503), "%s %s does not list 503", o->method, o->path);
        }
        /* the query parameters the framework lets through are the documented ones */
        cr_expect_str_eq(o->query, routes[i].query ? routes[i].query : "",
                         "%s %s: the document's query parameters are \"%s\", the route takes "
                         "\"%s\"", o->method, o->path, o->query,
                         routes[i].query ? routes[i].query : "");
        if (routes[i].query)
            cr_expect(lists(o, 400), "%s %s takes query parameters but does not list 400",
                      o->method, o->path);
        if (routes[i].accepts) {
            cr_expect(lists(o, 413), "%s %s takes a body but does not list 413", o->method,
                      o->path);
            cr_expect(lists(o, 415), "%s %s takes a body but does not list 415", o->method,
                      o->path);
            cr_expect(lists(o, 400), "%s %s takes a body but does not list 400", o->method,
                      o->path);
        }
    }
}

/* Every $ref: "#/components/<kind>/<name>" names a component that is defined. */
Test(openapi, refs_resolve)
{
    char *yaml = read_yaml();
    int refs = 0;
    for (const char *p = strstr(yaml, "$ref: \"#/components/"); p;
         p = strstr(p + 1, "$ref: \"#/components/")) {
        const char *kind = p + strlen("$ref: \"#/components/");
        const char *slash = strchr(kind, '/');
        cr_assert(slash);
        const char *name = slash + 1;
        size_t kl = (size_t)(slash - kind), nl = strcspn(name, "\"");
        char want_kind[64], want_name[80];
        cr_assert(kl + 4 < sizeof want_kind && nl + 8 < sizeof want_name);
        snprintf(want_kind, sizeof want_kind, "\n  %.*s:\n", (int)kl, kind);
        snprintf(want_name, sizeof want_name, "\n    %.*s:", (int)nl, name);
        const char *comp = strstr(yaml, "\ncomponents:\n");
        cr_assert(comp);
        const char *sec = strstr(comp, want_kind);
        cr_assert(sec, "no components/%.*s section", (int)kl, kind);
        const char *end = sec + 1;
        while ((end = strstr(end, "\n  ")) && end[3] == ' ') /* next 2-indented key ends it */
            end++;
        const char *def = strstr(sec, want_name);
        cr_expect(def && (!end || def < end), "$ref to components/%.*s/%.*s, which is not "
                  "defined", (int)kl, kind, (int)nl, name);
        refs++;
    }
    free(yaml);
    cr_assert_gt(refs, 50);
}
