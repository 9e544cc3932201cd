/* store_postgres_datasets.c — datasets in the PostgreSQL store (store.h): a metadata row and
 * the arrays as bytea chunks of at most 16 MiB (dataset_chunks), stored in one transaction
 * that also applies the owner's byte quota (under a transaction-scoped advisory lock on the
 * owner, so two uploads cannot both take the last bytes); loads read one chunk at a time in
 * one snapshot, so a 377 MB dataset never needs more than one extra chunk in memory.
 */
#include "server/store/postgres/store_postgres_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void read_meta(const PGresult *r, int row, store_dataset_meta *m)
{
    memset(m, 0, sizeof *m);
    postgres_text(m->id, sizeof m->id, r, row, 0);
    postgres_text(m->owner, sizeof m->owner, r, row, 1);
    postgres_text(m->name, sizeof m->name, r, row, 2);
    m->rows = postgres_i64(r, row, 3);
    m->features = postgres_i64(r, row, 4);
    m->outputs = postgres_i64(r, row, 5);
    m->has_labels = (int)postgres_i64(r, row, 6);
    m->bytes = postgres_i64(r, row, 7);
    m->created_at = postgres_i64(r, row, 8);
}

/* read_meta as a postgres_read_page row reader. */
static int read_meta_row(const PGresult *r, int row, void *dst, store_error *err)
{
    (void)err;
    read_meta(r, row, dst);
    return 0;
}

static int dataset_bytes(pconn *c, const char *owner, int64_t *bytes, store_error *err)
{
    pargs a = {0};
    postgres_arg_text(&a, owner ? owner : "");
    PGresult *r = postgres_exec(c, "SELECT coalesce(sum(bytes), 0)::bigint FROM datasets "
                                "WHERE owner = $1", &a, "dataset bytes", err);
    if (!r)
        return err->code;
    *bytes = postgres_i64(r, 0, 0);
    PQclear(r);
    return 0;
}

static int put_chunks(pconn *c, const char *id, int kind, const void *data, int64_t bytes,
                      store_error *err)
{
    const unsigned char *p = data;
    for (int64_t off = 0, seq = 0; off < bytes; off += POSTGRES_CHUNK_BYTES, seq++) {
        int64_t n = bytes - off < POSTGRES_CHUNK_BYTES ? bytes - off : POSTGRES_CHUNK_BYTES;
        pargs a = {0};
        postgres_arg_text(&a, id);
        postgres_arg_i64(&a, kind);
        postgres_arg_i64(&a, seq);
        postgres_arg_bytes(&a, p + off, (size_t)n);
        if (postgres_run(c, "INSERT INTO dataset_chunks(dataset_id, kind, seq, data) "
                         "VALUES($1, $2, $3, $4)", &a, "store dataset", NULL, err) < 0)
            return err->code;
    }
    return 0;
}

/* Does dataset id exist (for owner, or any owner when owner is NULL)? 1, 0 or a store_code. */
static int dataset_exists(pconn *c, const char *owner, const char *id, store_error *err)
{
    pargs a = {0};
    postgres_arg_text(&a, id);
    postgres_arg_text(&a, owner);
    PGresult *r = postgres_exec(c, "SELECT 1 FROM datasets WHERE id = $1 "
                                "AND ($2::text IS NULL OR owner = $2)", &a, "read dataset", err);
    if (!r)
        return err->code;
    int n = PQntuples(r);
    PQclear(r);
    return n > 0;
}

static int put_body(pconn *c, const postgres_tx *t, const store_dataset_meta *meta,
                    const double *X, const void *y, int64_t xbytes, int64_t ybytes,
                    store_error *err)
{
    char id[sizeof meta->id + 1];
    snprintf(id, sizeof id, "%.*s", (int)sizeof meta->id, meta->id);
    if (t->attempt > 0) { /* an earlier COMMIT of unknown outcome may have stored it */
        int e = dataset_exists(c, NULL, id, err);
        if (e != 0)
            return e < 0 ? e : 0;
    }
    char owner[sizeof meta->owner + 1];
    snprintf(owner, sizeof owner, "%.*s", (int)sizeof meta->owner, meta->owner);
    if (postgres_idem_check(c, owner, "dataset", meta->idem, err) < 0)
        return err->code;
    pargs a = {0};
    POSTGRES_ARG_FIELD(&a, meta->owner);
    if (postgres_run(c, "SELECT pg_advisory_xact_lock(hashtext('ds:' || $1))", &a,
                     "store dataset", NULL, err) < 0)
        return err->code;
    int64_t have = 0;
    if (dataset_bytes(c, owner, &have, err) < 0 ||
        store_admit_bytes((const store *)t->s, have, xbytes + ybytes, err) < 0)
        return err->code;
    memset(&a, 0, sizeof a);
    postgres_arg_text(&a, id);
    POSTGRES_ARG_FIELD(&a, meta->owner);
    POSTGRES_ARG_FIELD(&a, meta->name);
    postgres_arg_i64(&a, meta->rows);
    postgres_arg_i64(&a, meta->features);
    postgres_arg_i64(&a, meta->outputs);
    postgres_arg_i64(&a, meta->has_labels ? 1 : 0);
    postgres_arg_i64(&a, xbytes + ybytes);
    postgres_arg_i64(&a, meta->created_at > 0 ? meta->created_at : (int64_t)time(NULL));
    postgres_arg_text(&a, meta->classes_json);
    if (postgres_run(c, "INSERT INTO datasets(" POSTGRES_DS_COLS ", classes_json) "
                     "VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)", &a, "store dataset", NULL,
                     err) < 0) {
        if (err->code == STORE_CONFLICT)
            store_err(err, STORE_CONFLICT, "store: dataset id already exists");
        return err->code;
    }
    if (put_chunks(c, id, POSTGRES_CHUNK_X, X, xbytes, err) < 0 ||
        put_chunks(c, id, meta->has_labels ? POSTGRES_CHUNK_LABELS : POSTGRES_CHUNK_Y, y, ybytes,
                   err) < 0)
        return err->code;
    return postgres_idem_record(c, owner, "dataset", meta->idem, id, err);
}

int postgres_dataset_put(store *s, const store_dataset_meta *meta, const double *X,
                         const int32_t *labels, const double *Y, store_error *err)
{
    int64_t xbytes, ybytes;
    if (store_dataset_check(meta, X, labels, Y, &xbytes, &ybytes, err) < 0)
        return err->code;
    const void *y = meta->has_labels ? (const void *)labels : (const void *)Y;
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_WRITE, err)
        t.code = put_body(t.c, &t, meta, X, y, xbytes, ybytes, err);
    return t.code;
}

static int get_body(pconn *c, const char *owner, const char *id, store_dataset_meta *out,
                    store_error *err)
{
    pargs a = {0};
    postgres_arg_text(&a, id);
    postgres_arg_text(&a, owner);
    PGresult *r = postgres_exec(c, "SELECT " POSTGRES_DS_COLS " FROM datasets WHERE id = $1 "
                                "AND ($2::text IS NULL OR owner = $2)", &a, "read dataset", err);
    if (!r)
        return err->code;
    int code = 0;
    if (PQntuples(r))
        read_meta(r, 0, out);
    else
        code = store_err(err, STORE_NOT_FOUND, "store: no such dataset");
    PQclear(r);
    return code;
}

int postgres_dataset_get(store *s, const char *owner, const char *id, store_dataset_meta *out,
                         store_error *err)
{
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_READ, err)
        t.code = get_body(t.c, owner, id, out, err);
    return t.code;
}

static int classes_body(pconn *c, const char *owner, const char *id, char **classes_json,
                        store_error *err)
{
    free(*classes_json);
    *classes_json = NULL;
    pargs a = {0};
    postgres_arg_text(&a, id);
    postgres_arg_text(&a, owner);
    PGresult *r = postgres_exec(c, "SELECT classes_json FROM datasets WHERE id = $1 "
                                "AND ($2::text IS NULL OR owner = $2)", &a,
                                "read dataset classes", err);
    if (!r)
        return err->code;
    int code = 0;
    if (!PQntuples(r))
        code = store_err(err, STORE_NOT_FOUND, "store: no such dataset");
    else if (!PQgetisnull(r, 0, 0) &&
             !(*classes_json = strndup(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0))))
        code = store_err(err, STORE_NOMEM, "store: out of memory");
    PQclear(r);
    return code;
}

int postgres_dataset_classes(store *s, const char *owner, const char *id, char **classes_json,
                             store_error *err)
{
    *classes_json = NULL;
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_READ, err)
        t.code = classes_body(t.c, owner, id, classes_json, err);
    if (t.code < 0) {
        free(*classes_json);
        *classes_json = NULL;
    }
    return t.code;
}

/* Reads the chunks of one kind in order into dst (exactly `bytes` long). */
static int read_chunks(pconn *c, const char *id, int kind, unsigned char *dst, int64_t bytes,
                       store_error *err)
{
    int64_t off = 0;
    for (int64_t seq = 0; off < bytes; seq++) {
        pargs a = {0};
        postgres_arg_text(&a, id);
        postgres_arg_i64(&a, kind);
        postgres_arg_i64(&a, seq);
        PGresult *r = postgres_exec(c, "SELECT data FROM dataset_chunks WHERE dataset_id = $1 "
                                    "AND kind = $2 AND seq = $3", &a, "read dataset", err);
        if (!r)
            return err->code;
        int64_t len = PQntuples(r) ? PQgetlength(r, 0, 0) : 0;
        if (len <= 0 || len > bytes - off) {
            PQclear(r);
            return store_err(err, STORE_IO, "store: dataset is corrupt (chunk %d/%lld)", kind,
                             (long long)seq);
        }
        memcpy(dst + off, PQgetvalue(r, 0, 0), (size_t)len);
        PQclear(r);
        off += len;
    }
    return 0;
}

static int load_body(pconn *c, const char *owner, const char *id, store_dataset_meta *meta,
                     double **x, void **y, store_error *err)
{
    free(*x);
    free(*y);
    *x = NULL;
    *y = NULL;
    if (get_body(c, owner, id, meta, err) < 0)
        return err->code;
    int64_t xbytes, ybytes;
    if (store_dataset_sizes(meta, &xbytes, &ybytes, err) < 0)
        return store_err(err, STORE_IO, "store: dataset metadata is corrupt");
    *x = malloc((size_t)xbytes);
    *y = malloc((size_t)ybytes);
    if (!*x || !*y)
        return store_err(err, STORE_NOMEM, "store: out of memory loading a dataset of %lld bytes",
                         (long long)(xbytes + ybytes));
    if (read_chunks(c, id, POSTGRES_CHUNK_X, (unsigned char *)*x, xbytes, err) < 0 ||
        read_chunks(c, id, meta->has_labels ? POSTGRES_CHUNK_LABELS : POSTGRES_CHUNK_Y, *y,
                    ybytes, err) < 0)
        return err->code;
    return 0;
}

int postgres_dataset_load(store *s, const char *owner, const char *id, store_dataset_meta *meta,
                          double **X, int32_t **labels, double **Y, store_error *err)
{
    *X = NULL;
    *labels = NULL;
    *Y = NULL;
    double *x = NULL;
    void *y = NULL;
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_READ, err)
        t.code = load_body(t.c, owner, id, meta, &x, &y, err);
    if (t.code < 0) {
        free(x);
        free(y);
        return t.code;
    }
    *X = x;
    if (meta->has_labels)
        *labels = y;
    else
        *Y = y;
    return 0;
}

static int list_body(pconn *c, const char *owner, int64_t cursor, int limit,
                     store_dataset_meta **out, size_t *n, int64_t *next_cursor, store_error *err)
{
    free(*out);
    *out = NULL;
    *n = 0;
    *next_cursor = 0;
    pargs a = {0};
    postgres_arg_text(&a, owner ? owner : "");
    postgres_arg_i64(&a, cursor > 0 ? cursor : INT64_MAX);
    postgres_arg_i64(&a, limit + 1); /* one more tells whether a next page exists */
    PGresult *r = postgres_exec(c, "SELECT " POSTGRES_DS_COLS ", seq FROM datasets "
                                "WHERE owner = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3", &a,
                                "list datasets", err);
    if (!r)
        return err->code;
    void *page = NULL;
    int code = postgres_read_page(r, limit, sizeof **out, 9, read_meta_row, &page, n,
                                  next_cursor, err);
    *out = page;
    PQclear(r);
    return code;
}

int postgres_dataset_list(store *s, const char *owner, int64_t cursor, int limit,
                          store_dataset_meta **out, size_t *n, int64_t *next_cursor,
                          store_error *err)
{
    *out = NULL;
    limit = limit < 1 ? 1 : limit > 1000 ? 1000 : limit;
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_READ, err)
        t.code = list_body(t.c, owner, cursor, limit, out, n, next_cursor, err);
    if (t.code < 0) {
        free(*out);
        *out = NULL;
        *n = 0;
        *next_cursor = 0;
    }
    return t.code;
}

static int delete_body(pconn *c, const char *owner, const char *id, store_error *err)
{
    pargs a = {0};
    postgres_arg_text(&a, id);
    postgres_arg_text(&a, owner ? owner : "");
    PGresult *r = postgres_exec(c, "SELECT 1 FROM datasets WHERE id = $1 AND owner = $2 "
                                "FOR UPDATE", &a, "delete dataset", err);
    if (!r)
        return err->code;
    int found = PQntuples(r) > 0;
    PQclear(r);
    if (!found)
        return store_err(err, STORE_NOT_FOUND, "store: no such dataset");
    /* job creation locks the dataset row too (FOR SHARE), so no job can start using it now */
    a.n = 1;
    r = postgres_exec(c, "SELECT 1 FROM jobs WHERE dataset_id = $1 AND status IN (0, 1) LIMIT 1",
                      &a, "delete dataset", err);
    if (!r)
        return err->code;
    int used = PQntuples(r) > 0;
    PQclear(r);
    if (used)
        return store_err(err, STORE_CONFLICT, "store: dataset is used by a queued or running job");
    return postgres_run(c, "DELETE FROM datasets WHERE id = $1", &a, "delete dataset", NULL, err);
}

int postgres_dataset_delete(store *s, const char *owner, const char *id, store_error *err)
{
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_WRITE, err)
        t.code = delete_body(t.c, owner, id, err);
    return t.code;
}

int postgres_dataset_bytes(store *s, const char *owner, int64_t *bytes, store_error *err)
{
    postgres_tx t;
    POSTGRES_TX(t, s, POSTGRES_TX_READ, err)
        t.code = dataset_bytes(t.c, owner, bytes, err);
    return t.code;
}
