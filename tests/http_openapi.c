/* http_openapi.c — api/openapi.yaml against the real server: GET /openapi.yaml serves the file
 * byte for byte; every request example in the document is replayed against a live server and
 * gets the documented success status and an answer equal to the documented response example
 * (values for the deterministic endpoints, shape for the rest); every GET example has the shape
 * of the live answer; the event stream numbers its events as documented; and error statuses are
 * really produced, each one documented for its operation.
 *
 * The document is read by indentation (the layout api/openapi.yaml keeps): under "paths:", a
 * path at indent 2, a method at 4, requestBody/responses at 6; request media types at 10 with
 * their example at 12; response statuses at 8, media types at 12, examples at 14. JSON
 * examples are written as JSON (flow YAML), so jansson reads them; "|" examples are blocks.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "tests/harness.h"

#define MAX_OPS 64
#define MAX_EX 8
#define MAX_ST 24
/* Placeholder ids of the document's examples, replaced by real ones before replaying. */
#define DOC_DATASET "ds_3f0c9a51e2b84d7761c0a9e4"

typedef struct {
    int status;       /* 0 for a request example */
    char media[64];
    char *text;       /* new */
} example;

typedef struct {
    char method[8];
    char path[128];
    int statuses[MAX_ST];
    int n_status;
    example req[MAX_EX], resp[MAX_EX];
    int n_req, n_resp;
} yop;

typedef struct {
    yop ops[MAX_OPS];
    int n;
} ydoc;

/* ------------------------------------------------------------------ reading the document */

/* api/openapi.yaml (new); its length into *len. The repository root is two levels above
 * tests/data, wherever the test runs from. */
static char *read_yaml(size_t *len)
{
    return test_read_file(test_data_path("../../api/openapi.yaml"), len);
}

typedef struct {
    const char *s;
    size_t n; /* without the newline */
} line;

static int split_lines(char *text, line **out)
{
    int cap = 1024, n = 0;
    line *ls = malloc((size_t)cap * sizeof *ls);
    cr_assert(ls);
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (n == cap) {
            cap *= 2;
            ls = realloc(ls, (size_t)cap * sizeof *ls);
            cr_assert(ls);
        }
        ls[n++] = (line){p, len};
        p += len + (nl ? 1 : 0);
    }
    *out = ls;
    return n;
}

static int indent_of(const line *l)
{
    size_t k = 0;
    while (k < l->n && l->s[k] == ' ')
        k++;
    return k == l->n ? -1 : (int)k; /* -1: blank */
}

/* "key:" (alone, or "key: value" when value_ok) at the line's indent, quotes removed. */
static int key_of(const line *l, char *out, size_t cap, const char **value)
{
    int ind = indent_of(l);
    if (ind < 0)
        return 0;
    const char *s = l->s + ind, *end = l->s + l->n;
    const char *colon = NULL;
    for (const char *c = s; c < end; c++)
        if (*c == ':' && (c + 1 == end || c[1] == ' ')) {
            colon = c;
            break;
        }
    if (!colon || colon == s)
        return 0;
    size_t n = (size_t)(colon - s);
    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
        s++;
        n -= 2;
    }
    if (n >= cap)
        return 0;
    memcpy(out, s, n);
    out[n] = '\0';
    if (value) {
        const char *v = colon + 1;
        while (v < end && *v == ' ')
            v++;
        *value = v;
    }
    return 1;
}

/* The example whose key is on line i: a "|" block or a flow value with its continuation lines
 * (those indented deeper than the key). new string. */
static char *example_text(const line *ls, int n, int i, const char *value)
{
    int key_ind = indent_of(&ls[i]);
    size_t vlen = (size_t)(ls[i].s + ls[i].n - value);
    size_t cap = 256, len = 0;
    char *out = malloc(cap);
    cr_assert(out);
    int block = vlen == 1 && value[0] == '|';
    int block_ind = -1;
    if (!block) {
        memcpy(out, value, vlen < cap ? vlen : 0);
        len = vlen;
        cr_assert(vlen < cap, "example too long on one line");
    }
    int j;
    for (j = i + 1; j < n; j++) {
        int ind = indent_of(&ls[j]);
        if (ind >= 0 && ind <= key_ind)
            break;
        const char *s = ls[j].s;
        size_t sl = ls[j].n;
        if (block) {
            if (ind >= 0 && block_ind < 0)
                block_ind = ind;
            size_t skip = ind < 0 ? sl : (size_t)block_ind;
            s += skip;
            sl -= skip;
        }
        while (len + sl + 2 > cap) {
            cap *= 2;
            out = realloc(out, cap);
            cr_assert(out);
        }
        if (len || block)
            out[len++] = '\n';
        memcpy(out + len, s, sl);
        len += sl;
    }
    out[len] = '\0';
    if (block) { /* YAML "clip": the content lines, one final newline */
        char *t = out;
        memmove(t, t + 1, len); /* the leading '\n' added before the first line */
        len--;
        while (len > 0 && t[len - 1] == '\n')
            len--;
        t[len++] = '\n';
        t[len] = '\0';
    }
    return out;
}

static void parse_doc(ydoc *d, char *text)
{
    static const char *const methods[] = {"get", "put", "post", "delete", "patch"};
    line *ls;
    int n = split_lines(text, &ls);
    int in_paths = 0, section = 0; /* 1 requestBody, 2 responses */
    int status = 0;
    char path[128] = "", media[64] = "", key[64];
    yop *op = NULL;
    memset(d, 0, sizeof *d);
    for (int i = 0; i < n; i++) {
        int ind = indent_of(&ls[i]);
        const char *value = NULL;
        if (ind < 0 || ls[i].s[ind] == '#')
            continue;
        if (ind == 0) {
            in_paths = ls[i].n >= 6 && strncmp(ls[i].s, "paths:", 6) == 0;
            op = NULL;
            continue;
        }
        if (!in_paths || !key_of(&ls[i], key, sizeof key, &value))
            continue;
        if (ind == 2) {
            snprintf(path, sizeof path, "%s", key);
            op = NULL;
        } else if (ind == 4) {
            op = NULL;
            for (size_t m = 0; m < sizeof methods / sizeof *methods; m++)
                if (strcmp(key, methods[m]) == 0) {
                    cr_assert(d->n < MAX_OPS);
                    op = &d->ops[d->n++];
                    for (size_t c = 0; key[c]; c++)
                        op->method[c] = (char)toupper((unsigned char)key[c]);
                    snprintf(op->path, sizeof op->path, "%s", path);
                }
        } else if (op && ind == 6) {
            section = strcmp(key, "requestBody") == 0 ? 1 : strcmp(key, "responses") == 0 ? 2 : 0;
        } else if (op && section == 1 && ind == 10) {
            snprintf(media, sizeof media, "%s", key);
        } else if (op && section == 1 && ind == 12 && strcmp(key, "example") == 0) {
            cr_assert(op->n_req < MAX_EX);
            op->req[op->n_req++] = (example){0, "", example_text(ls, n, i, value)};
            snprintf(op->req[op->n_req - 1].media, sizeof media, "%s", media);
        } else if (op && section == 2 && ind == 8) {
            status = atoi(key);
            cr_assert(status >= 100 && status < 600, "%s %s: response key %s", op->method,
                      op->path, key);
            cr_assert(op->n_status < MAX_ST);
            op->statuses[op->n_status++] = status;
        } else if (op && section == 2 && ind == 12) {
            snprintf(media, sizeof media, "%s", key);
        } else if (op && section == 2 && ind == 14 && strcmp(key, "example") == 0) {
            cr_assert(op->n_resp < MAX_EX);
            op->resp[op->n_resp++] = (example){status, "", example_text(ls, n, i, value)};
            snprintf(op->resp[op->n_resp - 1].media, sizeof media, "%s", media);
        }
    }
    free(ls);
}

static void free_doc(ydoc *d)
{
    for (int i = 0; i < d->n; i++) {
        for (int k = 0; k < d->ops[i].n_req; k++)
            free(d->ops[i].req[k].text);
        for (int k = 0; k < d->ops[i].n_resp; k++)
            free(d->ops[i].resp[k].text);
    }
}

static void load_doc(ydoc *d)
{
    size_t len;
    char *y = read_yaml(&len);
    parse_doc(d, y);
    free(y);
    cr_assert_gt(d->n, 15, "found only %d operations", d->n);
}

static const yop *find_op(const ydoc *d, const char *method, const char *path)
{
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->ops[i].method, method) == 0 && strcmp(d->ops[i].path, path) == 0)
            return &d->ops[i];
    cr_assert_fail("%s %s is not in api/openapi.yaml", method, path);
    return NULL;
}

static int documents(const yop *op, int status)
{
    for (int i = 0; i < op->n_status; i++)
        if (op->statuses[i] == status)
            return 1;
    return 0;
}

static const example *resp_example(const yop *op, int status, const char *media)
{
    for (int i = 0; i < op->n_resp; i++)
        if (op->resp[i].status == status && strcmp(op->resp[i].media, media) == 0)
            return &op->resp[i];
    return NULL;
}

static int success_status(const yop *op)
{
    for (int i = 0; i < op->n_status; i++)
        if (op->statuses[i] >= 200 && op->statuses[i] < 300)
            return op->statuses[i];
    cr_assert_fail("%s %s documents no 2xx", op->method, op->path);
    return 0;
}

/* ------------------------------------------------------------------ comparing JSON */

/* Keys whose values differ from run to run (ids, times): compared by type only. */
static int volatile_key(const char *k)
{
    static const char *const keys[] = {"id", "dataset", "created_at", "started_at",
                                       "finished_at", "at", "samples_per_second", "next_cursor"};
    for (size_t i = 0; k && i < sizeof keys / sizeof *keys; i++)
        if (strcmp(k, keys[i]) == 0)
            return 1;
    return 0;
}

/* values: 0 = shape only (same keys and types; arrays by their first element), else tolerance
 * for numbers (relative, plus 1e-11 absolute) with every value compared. */
static void same_json(const json_t *doc, const json_t *live, double tol, const char *where,
                      const char *key)
{
    int values = tol > 0 && !volatile_key(key);
    if (json_is_number(doc) && json_is_number(live)) {
        if (values) {
            double a = json_number_value(doc), b = json_number_value(live);
            cr_expect(fabs(a - b) <= tol * fmax(fabs(a), fabs(b)) + 1e-11,
                      "%s: %s is %.17g in the document, %.17g live", where, key ? key : "value",
                      a, b);
        }
        return;
    }
    if (volatile_key(key) && (json_is_null(doc) || json_is_null(live)))
        return; /* times and rates are null in one state and set in another */
    if (json_is_boolean(doc) && json_is_boolean(live))
        return;
    cr_assert_eq(json_typeof(doc), json_typeof(live),
                 "%s: %s has another type in the document than live", where,
                 key ? key : "value");
    if (json_is_object(doc)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)(uintptr_t)doc, k, v) {
            const json_t *lv = json_object_get(live, k);
            cr_assert(lv, "%s: the document has \"%s\", the live answer does not", where, k);
            same_json(v, lv, tol, where, k);
        }
        json_object_foreach((json_t *)(uintptr_t)live, k, v)
            cr_assert(json_object_get(doc, k), "%s: the live answer has \"%s\", the document "
                      "does not", where, k);
    } else if (json_is_array(doc)) {
        size_t n = json_array_size(doc);
        if (values) {
            cr_assert_eq(n, json_array_size(live), "%s: %s has %zu items in the document, %zu "
                         "live", where, key ? key : "array", n, json_array_size(live));
            for (size_t i = 0; i < n; i++)
                same_json(json_array_get(doc, i), json_array_get(live, i), tol, where, key);
        } else if (n && json_array_size(live)) {
            same_json(json_array_get(doc, 0), json_array_get(live, 0), tol, where, key);
        }
    } else if (json_is_string(doc) && values) {
        cr_expect_str_eq(json_string_value(doc), json_string_value(live), "%s: %s", where,
                         key ? key : "string");
    }
}

static json_t *parse_example(const example *e, const char *where)
{
    json_error_t err;
    json_t *j = json_loads(e->text, JSON_REJECT_DUPLICATES, &err);
    cr_assert(j, "%s: the %s example is not JSON (%s): %s", where, e->media, err.text, e->text);
    return j;
}

/* A copy of s with every from replaced by to (new). */
static char *replace_all(const char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    for (const char *p = strstr(s, from); p; p = strstr(p + fl, from))
        n++;
    char *out = malloc(strlen(s) + n * (tl + 1) + 1), *o = out;
    cr_assert(out);
    for (const char *p = s;;) {
        const char *q = strstr(p, from);
        if (!q) {
            strcpy(o, p);
            break;
        }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, to, tl);
        o += tl;
        p = q + fl;
    }
    return out;
}

/* The live path for a documented one: {id} becomes the dataset's or the job's id. */
static void live_path(char *out, size_t cap, const char *path, const char *ds, const char *job)
{
    const char *brace = strstr(path, "{id}");
    if (!brace) {
        snprintf(out, cap, "%s", path);
        return;
    }
    snprintf(out, cap, "%.*s%s%s", (int)(brace - path), path,
             strncmp(path, "/v1/datasets/", 13) == 0 ? ds : job, brace + 4);
}

static json_t *fetch_json(const srv *s, const char *path, long want)
{
    resp r;
    cr_assert_eq(http_get(s, path, &r), 0);
    cr_assert_eq(r.status, want, "GET %s: %ld %s", path, r.status, r.body);
    json_t *j = resp_json(&r);
    cr_assert(j, "GET %s: not JSON: %s", path, r.body);
    resp_free(&r);
    return j;
}

/* ------------------------------------------------------------------ served document */

Test(http_openapi, served_document_is_the_file, .timeout = 60)
{
    size_t len = 0;
    char *file = read_yaml(&len);
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    resp r;
    cr_assert_eq(http_get(&s, "/openapi.yaml", &r), 0);
    cr_assert_eq(r.status, 200);
    char ct[64] = "";
    cr_assert_eq(resp_header(&r, "Content-Type", ct, sizeof ct), 0);
    cr_expect_str_eq(ct, "application/yaml");
    cr_assert_eq(r.len, len, "served %zu bytes, the file has %zu", r.len, len);
    cr_assert(memcmp(r.body, file, len) == 0, "the served document differs from the file");
    resp_free(&r);
    free(file);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ------------------------------------------------------------------ examples, replayed */

/* Replays op's request examples; for a job creation returns the job id in job_out. */
static void replay(const srv *s, const yop *op, const char *ds, const char *job, char *job_out)
{
    char where[160], path[160];
    live_path(path, sizeof path, op->path, ds, job);
    int want = success_status(op);
    for (int k = 0; k < op->n_req; k++) {
        const example *e = &op->req[k];
        snprintf(where, sizeof where, "%s %s (%s example)", op->method, op->path, e->media);
        if (strcmp(e->media, "application/json") == 0)
            json_decref(parse_example(e, where)); /* the example is JSON as written */
        char *body = replace_all(e->text, DOC_DATASET, ds);
        resp r;
        cr_assert_eq(http_req(s, op->method, path, e->media, body, strlen(body), NULL, &r), 0);
        cr_assert_eq(r.status, want, "%s: %ld, documented %d: %s", where, r.status, want,
                     r.body);
        const example *re = resp_example(op, want, "application/json");
        json_t *live = resp_json(&r);
        cr_assert(live, "%s: answer is not JSON", where);
        if (re) {
            json_t *doc = parse_example(re, where);
            /* the math is deterministic; predictions depend on 400 epochs of training */
            double tol = strstr(op->path, "predict") || strstr(op->path, "evaluate") ? 1e-6 : 1e-9;
            same_json(doc, live, tol, where, NULL);
            json_decref(doc);
        }
        if (job_out && json_is_string(json_object_get(live, "id")))
            snprintf(job_out, 64, "%s", json_string_value(json_object_get(live, "id")));
        char loc[128];
        if (want == 201 || want == 202) {
            cr_assert_eq(resp_header(&r, "Location", loc, sizeof loc), 0, "%s: no Location",
                         where);
            cr_expect(strstr(loc, json_string_value(json_object_get(live, "id"))), "%s", where);
        }
        json_decref(live);
        resp_free(&r);
        free(body);
    }
}

Test(http_openapi, examples_replay_on_a_live_server, .timeout = 240)
{
    ydoc d;
    load_doc(&d);
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);

    /* The document's dataset placeholder is digits (64 features, 10 classes). */
    char ds[64];
    upload_digits(&s, ds, sizeof ds);

    /* POST examples without an id in the path first (one of them makes the job), then the
     * others once that job has its weights. */
    char job[64] = "";
    int replayed = 0;
    for (int i = 0; i < d.n; i++)
        if (d.ops[i].n_req && !strstr(d.ops[i].path, "{id}")) {
            replay(&s, &d.ops[i], ds, "", strcmp(d.ops[i].path, "/v1/jobs") ? NULL : job);
            replayed++;
        }
    cr_assert(job[0], "the POST /v1/jobs example made no job");
    json_t *done = wait_job(&s, job, NULL, 60);
    cr_assert_str_eq(json_string_value(json_object_get(done, "status")), "succeeded");
    json_decref(done);
    for (int i = 0; i < d.n; i++)
        if (d.ops[i].n_req && strstr(d.ops[i].path, "{id}")) {
            replay(&s, &d.ops[i], ds, job, NULL);
            replayed++;
        }
    /* datasets, cost, gradient, gradient/check, jobs, predict */
    cr_assert_geq(replayed, 6, "only %d operations have request examples", replayed);

    /* Every GET example has the shape of the live answer. */
    int shaped = 0;
    for (int i = 0; i < d.n; i++) {
        const yop *op = &d.ops[i];
        const example *re = resp_example(op, 200, "application/json");
        if (strcmp(op->method, "GET") || !re)
            continue;
        char path[160], where[160];
        live_path(path, sizeof path, op->path, ds, job);
        snprintf(where, sizeof where, "GET %s", op->path);
        json_t *live = fetch_json(&s, path, 200);
        json_t *doc = parse_example(re, where);
        same_json(doc, live, 0, where, NULL);
        json_decref(doc);
        json_decref(live);
        shaped++;
    }
    cr_assert_geq(shaped, 9, "only %d GET operations have JSON examples", shaped);
    free_doc(&d);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ------------------------------------------------------------------ event ids */

/* Checks a stream's events follow the documented numbering; returns the number of epochs E.
 * Collects the data of the first status and first progress event (new) when asked. */
static int64_t check_events(const char *text, const char *where, json_t **status_data,
                            json_t **progress_data)
{
    int64_t n = 0, E = -1;
    const char *p = text;
    int final_seen = 0;
    while ((p = strstr(p, "id: ")) != NULL) {
        long long id = strtoll(p + 4, NULL, 10);
        const char *ev = strstr(p, "\nevent: ");
        const char *data = strstr(p, "\ndata: ");
        cr_assert(ev && data, "%s: event %lld without event/data", where, id);
        cr_assert(!final_seen, "%s: an event after the final status", where);
        int is_status = strncmp(ev + 8, "status", 6) == 0;
        const char *eol = strchr(data + 7, '\n');
        cr_assert(eol);
        json_error_t err;
        json_t *j = json_loadb(data + 7, (size_t)(eol - data - 7), 0, &err);
        cr_assert(j, "%s: event %lld data is not JSON", where, id);
        n++;
        if (n <= 2) {
            cr_assert_eq(id, n, "%s: event %lld where %lld is documented", where, id,
                         (long long)n);
            cr_assert(is_status);
            cr_assert_str_eq(json_string_value(json_object_get(j, "status")),
                             n == 1 ? "queued" : "running", "%s", where);
            if (n == 1 && status_data)
                *status_data = json_incref(j);
        } else if (!is_status) {
            int64_t e = json_integer_value(json_object_get(j, "epoch"));
            cr_assert_eq(id, 2 + e, "%s: progress of epoch %lld has id %lld, documented 2 + e",
                         where, (long long)e, id);
            cr_assert_eq(e, n - 2, "%s: epochs out of order", where);
            E = e;
            if (e == 1 && progress_data)
                *progress_data = json_incref(j);
        } else {
            int64_t e = json_integer_value(json_object_get(j, "epoch"));
            cr_assert_eq(e, E, "%s: final status at epoch %lld after epoch %lld", where,
                         (long long)e, (long long)E);
            cr_assert_eq(id, 3 + E, "%s: final status has id %lld, documented 3 + E", where, id);
            final_seen = 1;
        }
        json_decref(j);
        p = eol;
    }
    cr_assert(final_seen, "%s: no final status", where);
    return E;
}

Test(http_openapi, event_stream_is_numbered_as_documented, .timeout = 120)
{
    ydoc d;
    load_doc(&d);
    const yop *op = find_op(&d, "GET", "/v1/jobs/{id}/events");
    const example *ex = resp_example(op, 200, "text/event-stream");
    cr_assert(ex, "no text/event-stream example");
    json_t *doc_status = NULL, *doc_progress = NULL;
    int64_t E = check_events(ex->text, "the document's example", &doc_status, &doc_progress);
    cr_assert_gt(E, 0);

    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    resp r;
    cr_assert_eq(http_post_json(&s, "/v1/datasets",
                                "{\"X\": [[0.0, 0.5], [1.0, 0.25], [0.5, 0.5]], \"y\": [0, 1, 1]}",
                                &r), 0);
    cr_assert_eq(r.status, 201);
    json_t *j = resp_json(&r);
    char body[256];
    snprintf(body, sizeof body,
             "{\"network\": {\"layers\": [2, 2, 2]}, \"dataset\": \"%s\", "
             "\"training\": {\"epochs\": 7}}",
             json_string_value(json_object_get(j, "id")));
    json_decref(j);
    resp_free(&r);
    cr_assert_eq(http_post_json(&s, "/v1/jobs", body, &r), 0);
    cr_assert_eq(r.status, 202, "%s", r.body);
    j = resp_json(&r);
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs/%s/events", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    resp_free(&r);
    cr_assert_eq(http_get(&s, path, &r), 0); /* ends after the final status */
    cr_assert_eq(r.status, 200);
    char ct[64] = "";
    cr_assert_eq(resp_header(&r, "Content-Type", ct, sizeof ct), 0);
    cr_expect_str_eq(ct, "text/event-stream");
    json_t *live_status = NULL, *live_progress = NULL;
    cr_assert_eq(check_events(r.body, "the live stream", &live_status, &live_progress), 7);
    same_json(doc_status, live_status, 0, "status event", NULL);
    same_json(doc_progress, live_progress, 0, "progress event", NULL);
    resp_free(&r);

    /* Last-Event-ID resumes after that id: epoch 5 is id 7, so the next is 8 (epoch 6). */
    const char *h[] = {"Last-Event-ID: 7", NULL};
    cr_assert_eq(http_req(&s, "GET", path, NULL, NULL, 0, h, &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert(strncmp(r.body, "retry: 3000\n\nid: 8\nevent: progress\n", 35) == 0,
              "resumed with: %.60s",
              r.body);
    cr_assert(strstr(r.body, "id: 10\nevent: status\n"), "no final status 3 + E: %s", r.body);
    resp_free(&r);

    json_decref(doc_status);
    json_decref(doc_progress);
    json_decref(live_status);
    json_decref(live_progress);
    free_doc(&d);
    srv_stop(&s);
    srv_cleanup(&s);
}

/* ------------------------------------------------------------------ documented errors */

#define KEY "0123456789abcdef0123456789abcdef"
#define AUTH "Authorization: Bearer " KEY

/* Sends a request with the key, asserts the status (and problem+json for errors), and that the
 * document lists that status for the operation. Returns the parsed answer (new) or NULL. */
static json_t *expect_status(const srv *s, const ydoc *d, const char *method, const char *path,
                             const char *doc_path, const char *ct, const char *body, long want)
{
    const char *h[] = {AUTH, NULL};
    resp r;
    cr_assert_eq(http_req(s, method, path, ct, body, body ? strlen(body) : 0, h, &r), 0);
    cr_assert_eq(r.status, want, "%s %s: %ld, want %ld: %s", method, path, r.status, want,
                 r.body);
    const yop *op = find_op(d, method, doc_path);
    cr_expect(documents(op, (int)want), "%s %s answers %ld, which the document does not list",
              method, doc_path, want);
    char got[64] = "";
    resp_header(&r, "Content-Type", got, sizeof got);
    if (want >= 400)
        cr_expect_str_eq(got, "application/problem+json", "%s %s", method, path);
    json_t *j = resp_json(&r);
    resp_free(&r);
    return j;
}

static void write_key_file(char *path, size_t cap)
{
    snprintf(path, cap, "/tmp/backpropd-openapi-keys-%d", (int)getpid());
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "alice:%s\n", KEY);
    fclose(f);
}

Test(http_openapi, documented_errors_are_produced, .timeout = 120)
{
    ydoc d;
    load_doc(&d);
    char keys[128];
    write_key_file(keys, sizeof keys);
    const char *extra[] = {"--api-keys-file", keys,   "--workers",      "1",
                           "--max-queue",     "2",    "--max-body",     "4096",
                           "--cors-origins",  "https://app.example.com", NULL};
    srv s;
    cr_assert_eq(srv_start(&s, extra), 0);
    resp r;

    /* 401 with its challenge, on a /v1 route; the open routes need no key. */
    cr_assert_eq(http_get(&s, "/v1/datasets", &r), 0);
    cr_assert_eq(r.status, 401);
    cr_expect(documents(find_op(&d, "GET", "/v1/datasets"), 401));
    char v[160] = "";
    cr_assert_eq(resp_header(&r, "WWW-Authenticate", v, sizeof v), 0);
    cr_expect(strncmp(v, "Bearer realm=\"backpropd\"", 24) == 0, "%s", v);
    resp_free(&r);
    cr_assert_eq(http_get(&s, "/healthz", &r), 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);

    /* OPTIONS: 204, Allow, CORS preflight for the configured origin, no key. */
    const char *pre[] = {"Origin: https://app.example.com", NULL};
    cr_assert_eq(http_req(&s, "OPTIONS", "/v1/jobs", NULL, NULL, 0, pre, &r), 0);
    cr_assert_eq(r.status, 204);
    cr_assert_eq(resp_header(&r, "Allow", v, sizeof v), 0);
    cr_expect_str_eq(v, "POST, GET, OPTIONS");
    cr_assert_eq(resp_header(&r, "Access-Control-Allow-Origin", v, sizeof v), 0);
    cr_expect_str_eq(v, "https://app.example.com");
    cr_assert_eq(resp_header(&r, "Access-Control-Allow-Headers", v, sizeof v), 0);
    cr_expect(strstr(v, "Authorization") && strstr(v, "Last-Event-ID"), "%s", v);
    resp_free(&r);

    /* 405 with Allow (documented for every route in info.description). */
    json_decref(expect_status(&s, &d, "POST", "/v1/cost", "/v1/cost", "application/json",
                              "{}", 400));
    const char *h[] = {AUTH, NULL};
    cr_assert_eq(http_req(&s, "PUT", "/v1/cost", NULL, NULL, 0, h, &r), 0);
    cr_assert_eq(r.status, 405);
    cr_assert_eq(resp_header(&r, "Allow", v, sizeof v), 0);
    cr_expect_str_eq(v, "POST, OPTIONS");
    resp_free(&r);

    /* The math endpoints: 400, 404, 409, 413, 415, 422. */
    json_decref(expect_status(&s, &d, "POST", "/v1/cost", "/v1/cost", "application/json",
                              "{\"network\": {\"layers\": [2, 1]}, \"theta\": [[[1, 2, 3]]], "
                              "\"X\": [[1, 2]], \"y\": [0], \"foo\": 1}", 400));
    json_decref(expect_status(&s, &d, "POST", "/v1/gradient", "/v1/gradient",
                              "application/json",
                              "{\"network\": {\"layers\": [2, 1]}, \"theta\": [[[1, 2, 3]]], "
                              "\"dataset\": \"ds_000000000000000000000000\"}", 404));
    json_decref(expect_status(&s, &d, "POST", "/v1/cost", "/v1/cost", "application/json",
                              "{\"network\": {\"layers\": [3, 1]}, \"theta\": [[[1, 2, 3, 4]]], "
                              "\"X\": [[1, 2]], \"y\": [0]}", 409));
    char big[5000];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    json_decref(expect_status(&s, &d, "POST", "/v1/gradient/check", "/v1/gradient/check",
                              "application/json", big, 413));
    json_decref(expect_status(&s, &d, "POST", "/v1/cost", "/v1/cost", "text/plain", "x", 415));
    json_decref(expect_status(&s, &d, "POST", "/v1/cost", "/v1/cost", "application/json",
                              "{\"network\": {\"layers\": [1, 1], \"output\": \"linear\"}, "
                              "\"theta\": [[[1e200, 1e200]]], \"X\": [[1e200]], \"Y\": [[0]]}",
                              422));

    /* Datasets and jobs: 201, 404, 202, 409 (no weights yet; dataset in use), 429. */
    json_t *j = expect_status(&s, &d, "POST", "/v1/datasets", "/v1/datasets",
                              "application/json",
                              "{\"X\": [[0.0, 0.5], [1.0, 0.25], [0.5, 0.5]], \"y\": [0, 1, 1]}",
                              201);
    char ds[64], dpath[128];
    snprintf(ds, sizeof ds, "%s", json_string_value(json_object_get(j, "id")));
    snprintf(dpath, sizeof dpath, "/v1/datasets/%s", ds);
    json_decref(j);
    json_decref(expect_status(&s, &d, "GET", "/v1/datasets/ds_000000000000000000000000",
                              "/v1/datasets/{id}", NULL, NULL, 404));
    json_decref(expect_status(&s, &d, "POST", "/v1/jobs", "/v1/jobs", "application/json",
                              "{\"network\": {\"layers\": [2, 2]}, "
                              "\"dataset\": \"ds_000000000000000000000000\"}", 404));
    char body[256], jobs[2][64];
    for (int i = 0; i < 2; i++) { /* one runs for long (1M parameters) on the one worker */
        snprintf(body, sizeof body,
                 "{\"network\": {\"layers\": [2, 1000, 1000, 2]}, \"dataset\": \"%s\", "
                 "\"training\": {\"epochs\": 1000000}}", ds);
        j = expect_status(&s, &d, "POST", "/v1/jobs", "/v1/jobs", "application/json", body, 202);
        snprintf(jobs[i], sizeof jobs[i], "%s", json_string_value(json_object_get(j, "id")));
        json_decref(j);
    }
    json_decref(expect_status(&s, &d, "POST", "/v1/jobs", "/v1/jobs", "application/json", body,
                              429));
    cr_assert_eq(http_req(&s, "POST", "/v1/jobs", "application/json", body, strlen(body), h, &r),
                 0);
    cr_assert_eq(resp_header(&r, "Retry-After", v, sizeof v), 0, "429 without Retry-After");
    cr_expect_gt(atoi(v), 0);
    resp_free(&r);

    /* jobs[1] is queued behind jobs[0]: no weights yet. */
    char jpath[192];
    snprintf(jpath, sizeof jpath, "/v1/jobs/%s/weights", jobs[1]);
    json_decref(expect_status(&s, &d, "GET", jpath, "/v1/jobs/{id}/weights", NULL, NULL, 409));
    snprintf(jpath, sizeof jpath, "/v1/jobs/%s/gradient", jobs[1]);
    json_decref(expect_status(&s, &d, "GET", jpath, "/v1/jobs/{id}/gradient", NULL, NULL, 409));
    snprintf(jpath, sizeof jpath, "/v1/jobs/%s/predict", jobs[1]);
    json_decref(expect_status(&s, &d, "POST", jpath, "/v1/jobs/{id}/predict",
                              "application/json", "{\"X\": [[0, 1]]}", 409));
    json_decref(expect_status(&s, &d, "DELETE", dpath, "/v1/datasets/{id}", NULL, NULL, 409));
    json_decref(expect_status(&s, &d, "GET", "/v1/jobs?limit=0", "/v1/jobs", NULL, NULL, 400));
    json_decref(expect_status(&s, &d, "GET", "/v1/jobs/job_000000000000000000000000/cost",
                              "/v1/jobs/{id}/cost", NULL, NULL, 404));
    snprintf(jpath, sizeof jpath, "/v1/jobs/%s/cost?limit=0", jobs[0]);
    json_decref(expect_status(&s, &d, "GET", jpath, "/v1/jobs/{id}/cost", NULL, NULL, 400));

    /* Cancel: 200 with the job, cancelled (the running one within the documented wait). */
    for (int i = 0; i < 2; i++) {
        snprintf(jpath, sizeof jpath, "/v1/jobs/%s/cancel", jobs[i]);
        j = expect_status(&s, &d, "POST", jpath, "/v1/jobs/{id}/cancel", NULL, NULL, 200);
        cr_expect_str_eq(json_string_value(json_object_get(j, "status")), "cancelled");
        json_decref(j);
    }
    snprintf(jpath, sizeof jpath, "/v1/jobs/%s", jobs[0]);
    json_decref(expect_status(&s, &d, "DELETE", jpath, "/v1/jobs/{id}", NULL, NULL, 204));
    json_decref(expect_status(&s, &d, "DELETE", dpath, "/v1/datasets/{id}", NULL, NULL, 204));

    free_doc(&d);
    unlink(keys);
    srv_stop(&s);
    srv_cleanup(&s);
}
