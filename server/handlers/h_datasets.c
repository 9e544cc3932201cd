/* h_datasets.c — /v1/datasets: upload (JSON, CSV or NumPy .npy), list (a page at a time), get
 * (metadata, or with Accept: application/x-npy the arrays as .npy), delete.
 *
 * An upload can be hundreds of MB; the framework runs it on the work pool (the route has a
 * body), where it is parsed straight from the body text with the fast parsers in
 * api/ingest.c, then stored as binary doubles (store_dataset_put) and never parsed again.
 * Metadata is encoded by api/datasets_codec.h. Reads and deletes are short store calls made
 * on the HTTP thread. Every dataset belongs to r->owner; another owner's id is a plain 404.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/datasets_codec.h"
#include "api/npy.h"
#include "server/common/text.h"
#include "server/handlers/handlers_util.h"
#include "server/handlers/routes.h"
#include "server/server.h"
#include "server/store/store.h"

/* ------------------------------------------------------------------ helpers */


/* new: the dataset's public metadata (encoded by api/datasets_codec.h). */
static json_t *meta_json(const store_dataset_meta *m, const char *classes_json)
{
    char when[32];
    handlers_rfc3339(when, m->created_at);
    api_dataset_meta_view v = {.id = m->id, .name = m->name, .rows = m->rows,
                               .features = m->features, .outputs = m->outputs,
                               .created_at = when, .classes_json = classes_json};
    return api_dataset_meta_json(&v);
}

/* ------------------------------------------------------------------ upload */

/* Parses an application/x-npy body by ?label=first|last or ?targets=K (npy.h). */
static int parse_npy(api_dataset *d, req *r, api_error *err)
{
    const char *label = http_query(r, "label"), *targets = http_query(r, "targets");
    api_npy_layout layout = API_NPY_LABEL_FIRST;
    int64_t k = 0;
    if (label && targets) {
        api_fail(err, 400, "targets: give either label or targets, not both");
        return -1;
    }
    if (label && strcmp(label, "first") != 0) {
        if (strcmp(label, "last") != 0) {
            api_fail(err, 400, "label: must be first or last");
            return -1;
        }
        layout = API_NPY_LABEL_LAST;
    }
    if (targets) {
        char *end = NULL;
        k = strtoll(targets, &end, 10);
        if (!*targets || *end || k < 1) {
            api_fail(err, 400, "targets: must be a positive integer (the last columns' count)");
            return -1;
        }
        layout = API_NPY_TARGETS;
    }
    return api_dataset_parse_npy(d, r->body, r->body_len, layout, k, err);
}

/* Stores a parsed upload for r->owner and answers 201 with its metadata (or the problem). */
static handler_result store_upload(server *s, req *r, const api_dataset *d, const char *name)
{
    store_dataset_meta meta; /* its byte size is the store's to work out (and to admit) */
    memset(&meta, 0, sizeof meta);
    if (handlers_random_id(meta.id, sizeof meta.id, "ds_") < 0)
        return http_reply_problem(r, 503, "no randomness available for an id: try again");
    snprintf(meta.owner, sizeof meta.owner, "%s", r->owner);
    snprintf(meta.name, sizeof meta.name, "%s", name);
    meta.rows = d->rows;
    meta.features = d->features;
    meta.outputs = d->outputs;
    meta.has_labels = d->labels != NULL;
    meta.classes_json = d->classes_json;
    meta.created_at = (int64_t)time(NULL);
    store_error se = {0};
    store_idempotency idem;
    int keyed = handlers_idempotency(r, s->cfg.idempotency_ttl, "name,header", &idem);
    if (keyed < 0)
        return HANDLER_OK;
    meta.idem = keyed ? &idem : NULL;
    int rc = store_dataset_put(s->st, &meta, d->X, d->labels, d->Y, &se); /* --quota-bytes: 429 */
    if (rc == STORE_REPLAY) { /* a retry: the dataset the first request stored */
        rc = store_dataset_get(s->st, r->owner, idem.replay_id, &meta, &se);
        http_add_header(r, "Idempotent-Replayed", "true");
    }
    if (rc < 0)
        return handlers_reply_store_error(r, rc, &se, "dataset", meta.id);
    char location[80];
    snprintf(location, sizeof location, "/v1/datasets/%s", meta.id);
    http_add_header(r, "Location", location);
    return http_reply_json(r, 201, meta_json(&meta, d->classes_json));
}

/* The line a CSV message names ("line N, …"), 0 when none. */
static long long detail_line(const api_error *e)
{
    long long n = 0;
    return sscanf(e->detail, "line %lld,", &n) == 1 ? n : 0;
}

/* CSV: the fast reader for label-first numeric labels; the general one (csv_labels.c) for
 * another label column, label_base 1, or when the fast one refused column 1 (a label column
 * of class names). When both refuse, the message of the one that read further stands (the
 * fast reader's on a tie). */
static int parse_csv(api_dataset *d, req *r, api_csv_header mode, int64_t label_col, int base,
                     api_error *err)
{
    if (label_col == 0 && base == 0 &&
        api_dataset_parse_csv_header(d, r->body, r->body_len, mode, err) == 0)
        return 0;
    if (label_col == 0 && base == 0 && !strstr(err->detail, ", column 1: "))
        return -1;
    api_error general = {0};
    if (api_dataset_parse_csv_labels(d, r->body, r->body_len, mode, label_col, base,
                                     &general) == 0)
        return 0;
    if (label_col != 0 || base != 0 || detail_line(&general) > detail_line(err))
        *err = general;
    return -1;
}

/* JSON: the fast reader; "y" of class names through api_dataset_parse_json_names. */
static int parse_json(api_dataset *d, req *r, api_error *err)
{
    if (api_dataset_parse_json_text(d, r->body, r->body_len, err) == 0)
        return 0;
    api_error names = {0};
    if (api_dataset_parse_json_names(d, r->body, r->body_len, &names) == 0)
        return 0;
    if (names.status)
        *err = names;
    return -1;
}

/* On the work pool (the route has a body): decode (CSV or JSON) → store → encode. */
handler_result h_datasets_create(void *ctx, req *r)
{
    const char *q = http_query(r, "name");
    if (q && strlen(q) > 127)
        return http_reply_problem(r, 400, "name: at most 127 characters");
    char name[128];
    text_name_safe(name, sizeof name, q ? q : "");
    const char *header = http_query(r, "header");
    api_csv_header mode = API_CSV_HEADER_AUTO;
    if (header && strcmp(header, "auto") != 0) {
        if (strcmp(header, "true") == 0)
            mode = API_CSV_HEADER_TRUE;
        else if (strcmp(header, "false") == 0)
            mode = API_CSV_HEADER_FALSE;
        else
            return http_reply_problem(r, 400, "header: must be one of auto, true, false");
    }
    int csv = strcmp(r->media_type, "text/csv") == 0;
    int npy = strcmp(r->media_type, "application/x-npy") == 0;
    int64_t label_col = 0, base = 0;
    /* ?label for .npy (first|last) is parse_npy's */
    const char *lq = csv ? http_query(r, "label") : NULL, *bq = http_query(r, "label_base");
    if (lq && strcmp(lq, "first") != 0 &&
        (strcmp(lq, "last") == 0 ? (label_col = -1, 0)
                                 : handlers_whole_number(lq, 1, BP_MAX_UNITS + 1, &label_col)))
        return http_reply_problem(r, 400, "label: must be first, last or a column number "
                                          "1..%d", BP_MAX_UNITS + 1);
    if (lq && label_col > 0)
        label_col--; /* 1-based in the query */
    if (bq && handlers_whole_number(bq, 0, 1, &base) < 0)
        return http_reply_problem(r, 400, "label_base: must be 0 or 1");
    if (bq && !csv)
        return http_reply_problem(r, 400, "label_base: CSV uploads only (JSON labels are given "
                                          "as they are)");
    if (!csv && !npy && http_query(r, "label"))
        return http_reply_problem(r, 400, "label: CSV and .npy uploads only (JSON labels are "
                                          "given as they are)");
    api_dataset d;
    api_error err = {0};
    memset(&d, 0, sizeof d);
    int rc = csv   ? parse_csv(&d, r, mode, label_col, (int)base, &err)
             : npy ? parse_npy(&d, r, &err)
                   : parse_json(&d, r, &err);
    handler_result hr = rc < 0 ? handlers_reply_api_error(r, &err) : store_upload(ctx, r, &d, name);
    api_dataset_clear(&d);
    return hr;
}

/* ------------------------------------------------------------------ reads, delete */

/* Appends to list up to limit datasets of r->owner named name (NULL any), newest first from
 * cursor on; *next = the cursor of the next page, 0 when none. The store pages by owner only,
 * so with a name it reads on, each time asking for no more rows than the page still needs
 * (every row read is then looked at, and the store's cursor is the page's). 0 ok, 1 out of
 * memory, else the store's code (< 0) with se. */
static int list_datasets(server *s, req *r, const char *name, int64_t cursor, int64_t limit,
                         json_t *list, int64_t *next, store_error *se)
{
    for (;;) {
        store_dataset_meta *metas = NULL;
        size_t n = 0;
        int64_t want = limit - (int64_t)json_array_size(list);
        int rc = store_dataset_list(s->st, r->owner, cursor, (int)want, &metas, &n, next, se);
        if (rc < 0)
            return rc;
        int oom = 0;
        for (size_t i = 0; i < n && !oom; i++)
            if (!name || strcmp(metas[i].name, name) == 0)
                oom = json_array_append_new(list, meta_json(&metas[i], NULL)) < 0;
        free(metas);
        if (oom)
            return 1;
        if ((int64_t)json_array_size(list) == limit || *next <= 0)
            return 0;
        cursor = *next;
    }
}

handler_result h_datasets_list(void *ctx, req *r)
{
    server *s = ctx;
    api_error ae = {0};
    int64_t limit, cursor, next = 0;
    if (handlers_page_query(r, &limit, &cursor, &ae) < 0)
        return handlers_reply_api_error(r, &ae);
    const char *name = http_query(r, "name");
    store_error se = {0};
    json_t *list = json_array();
    int rc = list ? list_datasets(s, r, name, cursor, limit, list, &next, &se) : 1;
    return handlers_reply_page(r, rc, "datasets", list, next, &se, "dataset");
}

/* On the work pool: the stored arrays as one .npy file (npy.h's layout). */
static void download_npy(void *ctx, req *r)
{
    server *s = ctx;
    store_dataset_meta meta;
    store_error se = {0};
    api_dataset d;
    memset(&d, 0, sizeof d);
    int rc = store_dataset_load(s->st, r->owner, r->param[0], &meta, &d.X, &d.labels, &d.Y, &se);
    if (rc < 0) {
        handlers_reply_store_error(r, rc, &se, "dataset", r->param[0]);
        return;
    }
    d.rows = meta.rows;
    d.features = meta.features;
    d.outputs = meta.outputs;
    size_t len = 0;
    void *npy = api_npy_from_dataset(&d, &len);
    if (npy)
        http_reply_data(r, 200, "application/x-npy", npy, len);
    else
        http_reply_problem(r, 503, "out of memory: try again later");
    free(npy);
    api_dataset_clear(&d);
}

handler_result h_datasets_get(void *ctx, req *r)
{
    server *s = ctx;
    const char *accept = http_header(r, "Accept");
    if (accept && strstr(accept, "application/x-npy"))
        return http_defer(r, download_npy, s);
    store_dataset_meta meta;
    store_error se = {0};
    char *classes = NULL;
    int rc = store_dataset_get(s->st, r->owner, r->param[0], &meta, &se);
    if (rc == 0)
        rc = store_dataset_classes(s->st, r->owner, r->param[0], &classes, &se);
    if (rc < 0)
        return handlers_reply_store_error(r, rc, &se, "dataset", r->param[0]);
    handler_result hr = http_reply_json(r, 200, meta_json(&meta, classes));
    free(classes);
    http_reply_immutable(r); /* a dataset never changes: it is stored once, then deleted */
    return hr;
}

handler_result h_datasets_delete(void *ctx, req *r)
{
    server *s = ctx;
    store_error se = {0};
    int rc = store_dataset_delete(s->st, r->owner, r->param[0], &se);
    if (rc < 0)
        return handlers_reply_store_error(r, rc, &se, "dataset", r->param[0]);
    return http_reply_empty(r, 204);
}
