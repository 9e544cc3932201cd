/* h_datasets.c — /v1/datasets: upload (JSON or CSV), list (a page at a time), get, delete.
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
    int rc = store_dataset_put(s->st, &meta, d->X, d->labels, d->Y, &se); /* --quota-bytes: 429 */
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
    int64_t label_col = 0, base = 0;
    const char *lq = http_query(r, "label"), *bq = http_query(r, "label_base");
    if (lq && strcmp(lq, "first") != 0 &&
        (strcmp(lq, "last") == 0 ? (label_col = -1, 0)
                                 : handlers_whole_number(lq, 1, BP_MAX_UNITS + 1, &label_col)))
        return http_reply_problem(r, 400, "label: must be first, last or a column number "
                                          "1..%d", BP_MAX_UNITS + 1);
    if (lq && label_col > 0)
        label_col--; /* 1-based in the query */
    if (bq && handlers_whole_number(bq, 0, 1, &base) < 0)
        return http_reply_problem(r, 400, "label_base: must be 0 or 1");
    if ((lq || bq) && strcmp(r->media_type, "text/csv") != 0)
        return http_reply_problem(r, 400, "%s: CSV uploads only (JSON labels are given as "
                                          "they are)", lq ? "label" : "label_base");
    api_dataset d;
    api_error err = {0};
    memset(&d, 0, sizeof d);
    int rc = strcmp(r->media_type, "text/csv") == 0
                 ? parse_csv(&d, r, mode, label_col, (int)base, &err)
                 : parse_json(&d, r, &err);
    handler_result hr = rc < 0 ? handlers_reply_api_error(r, &err) : store_upload(ctx, r, &d, name);
    api_dataset_clear(&d);
    return hr;
}

/* ------------------------------------------------------------------ reads, delete */

handler_result h_datasets_list(void *ctx, req *r)
{
    server *s = ctx;
    api_error ae = {0};
    int64_t limit, cursor, next = 0;
    if (handlers_page_query(r, &limit, &cursor, &ae) < 0)
        return handlers_reply_api_error(r, &ae);
    store_dataset_meta *metas = NULL;
    size_t n = 0;
    store_error se = {0};
    int rc = store_dataset_list(s->st, r->owner, cursor, (int)limit, &metas, &n, &next, &se);
    if (rc < 0)
        return handlers_reply_store_error(r, rc, &se, "dataset", "");
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        if (json_array_append_new(list, meta_json(&metas[i], NULL)) < 0) {
            json_decref(list);
            list = NULL;
        }
    free(metas);
    json_t *page = list ? handlers_page_json("datasets", list, next) : NULL;
    if (!page)
        return http_reply_problem(r, 503, "out of memory: try again later");
    return http_reply_json(r, 200, page);
}

handler_result h_datasets_get(void *ctx, req *r)
{
    server *s = ctx;
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
