/* server_openapi.c — api/openapi.yaml and the route table (server/routes.c) describe the same
 * endpoints: every route is documented under the same path and method, and every documented
 * path + method is a route. The YAML is read simply by indentation: under the top-level
 * "paths:", a key indented by 2 is a path and a key indented by 4 that names an HTTP method
 * is an operation of it.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/routes.h"

#define MAX_OPS 128

typedef struct {
    char method[8];
    char path[128];
} op;

static char *read_yaml(void)
{
    const char *paths[] = {"api/openapi.yaml", "../api/openapi.yaml", "../../api/openapi.yaml"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        FILE *f = fopen(paths[i], "rb");
        if (!f)
            continue;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = malloc((size_t)n + 1);
        cr_assert(buf);
        cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
        buf[n] = '\0';
        fclose(f);
        return buf;
    }
    cr_assert_fail("api/openapi.yaml not found (run from the repository root)");
    return NULL;
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
    int n = 0, in_paths = 0;
    char path[128] = "";
    for (char *line = strtok(yaml, "\n"); line; line = strtok(NULL, "\n")) {
        const char *t = line + indent_of(line);
        if (*t == '\0' || *t == '#' || *t == '\r')
            continue;
        int ind = indent_of(line);
        char key[128];
        if (ind == 0) {
            in_paths = strncmp(line, "paths:", 6) == 0;
            continue;
        }
        if (!in_paths || !bare_key(line, key, sizeof key))
            continue;
        if (ind == 2) {
            snprintf(path, sizeof path, "%s", key);
        } else if (ind == 4 && path[0]) {
            for (size_t m = 0; m < sizeof methods / sizeof *methods; m++) {
                if (strcmp(key, methods[m]) != 0)
                    continue;
                cr_assert(n < MAX_OPS);
                for (size_t i = 0; key[i]; i++)
                    ops[n].method[i] = (char)toupper((unsigned char)key[i]);
                ops[n].method[strlen(key)] = '\0';
                snprintf(ops[n].path, sizeof ops[n].path, "%s", path);
                n++;
            }
        }
    }
    return n;
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
