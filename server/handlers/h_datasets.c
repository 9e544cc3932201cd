/* h_datasets.c — /v1/datasets: upload (JSON or CSV), list, get, delete.
 *
 * An upload can be hundreds of MB, so it is parsed on the math pool (http_defer), straight
 * from the body text with the fast parsers in api/ingest.c, then stored as binary doubles
 * (store_dataset_put) and never parsed again. Reads and deletes are short store calls made on
 * the HTTP thread. Every dataset belongs to r->owner; another owner's id is a plain 404.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "server/common/text.h"
#include "server/handlers/handlers_util.h"
#include "server/handlers/routes.h"
#include "server/server.h"
#include "server/store/store.h"

/* ------------------------------------------------------------------ helpers */


/* new: the dataset's public metadata. */
static json_t *meta_json(const store_dataset_meta *m)
{
    char when[32];
    hu_rfc3339(when, m->created_at);
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "id", m->id, "name", m->name, "rows",
                     (json_int_t)m->rows, "features", (json_int_t)m->features, "outputs",
                     (json_int_t)m->outputs, "created_at", when);
}

/* ------------------------------------------------------------------ upload */

typedef struct {
    int csv;
    char name[128];
} upload;

/* Runs on the math pool: parse, account, store, reply. */
static void upload_work(void *arg, req *r)
{
    const upload *u = arg;
    server *s = r->srv;
    api_dataset d;
    api_error err = {0};
    memset(&d, 0, sizeof d);
    int rc = u->csv ? api_dataset_parse_csv(&d, r->body, r->body_len, &err)
                    : api_dataset_parse_json_text(&d, r->body, r->body_len, &err);
    if (rc < 0) {
        hu_reply_api_error(r, &err);
        goto cleanup;
    }
    /* features, outputs <= 65536 and rows < body bytes: these products fit easily */
    int64_t bytes = d.rows * d.features * 8 + (d.labels ? d.rows * 4 : d.rows * d.outputs * 8);

    store_dataset_meta meta;
    memset(&meta, 0, sizeof meta);
    if (hu_random_id(meta.id, sizeof meta.id, "ds_") < 0) {
        http_reply_problem(r, 503, "no randomness available for an id: try again");
        goto cleanup;
    }
    snprintf(meta.owner, sizeof meta.owner, "%s", r->owner);
    snprintf(meta.name, sizeof meta.name, "%s", u->name);
    meta.rows = d.rows;
    meta.features = d.features;
    meta.outputs = d.outputs;
    meta.has_labels = d.labels != NULL;
    meta.bytes = bytes;
    meta.created_at = (int64_t)time(NULL);
    store_error se = {0};
    rc = store_dataset_put(s->st, &meta, d.X, d.labels, d.Y, &se); /* --quota-bytes: 429 */
    if (rc < 0) {
        hu_reply_store_error(r, rc, &se, "dataset", meta.id);
        goto cleanup;
    }
    char location[80];
    snprintf(location, sizeof location, "/v1/datasets/%s", meta.id);
    http_add_header(r, "Location", location);
    http_reply_json(r, 201, meta_json(&meta));
cleanup:
    api_dataset_clear(&d);
}

handler_result h_datasets_create(server *s, req *r)
{
    (void)s;
    const char *name = http_query(r, "name");
    if (name && strlen(name) > 127)
        return http_reply_problem(r, 400, "name: at most 127 characters");
    upload *u = calloc(1, sizeof *u);
    if (!u)
        return http_reply_problem(r, 503, "out of memory: try again later");
    u->csv = strcmp(r->media_type, "text/csv") == 0;
    text_name_safe(u->name, sizeof u->name, name ? name : "");
    http_on_complete(r, free, u);
    return http_defer(r, upload_work, u);
}

/* ------------------------------------------------------------------ reads, delete */

handler_result h_datasets_list(server *s, req *r)
{
    store_dataset_meta *metas = NULL;
    size_t n = 0;
    store_error se = {0};
    int rc = store_dataset_list(s->st, r->owner, &metas, &n, &se);
    if (rc < 0)
        return hu_reply_store_error(r, rc, &se, "dataset", "");
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        if (json_array_append_new(list, meta_json(&metas[i])) < 0) {
            json_decref(list);
            list = NULL;
        }
    free(metas);
    if (!list)
        return http_reply_problem(r, 503, "out of memory: try again later");
    return http_reply_json(r, 200, json_pack("{s:o}", "datasets", list));
}

handler_result h_datasets_get(server *s, req *r)
{
    store_dataset_meta meta;
    store_error se = {0};
    int rc = store_dataset_get(s->st, r->owner, r->param[0], &meta, &se);
    if (rc < 0)
        return hu_reply_store_error(r, rc, &se, "dataset", r->param[0]);
    return http_reply_json(r, 200, meta_json(&meta));
}

handler_result h_datasets_delete(server *s, req *r)
{
    store_error se = {0};
    int rc = store_dataset_delete(s->st, r->owner, r->param[0], &se);
    if (rc < 0)
        return hu_reply_store_error(r, rc, &se, "dataset", r->param[0]);
    return http_reply_empty(r, 204);
}
