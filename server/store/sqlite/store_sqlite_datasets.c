/* store_sqlite_datasets.c — datasets in the SQLite store (store.h): metadata rows and the arrays
 * in chunks of at most 16 MiB (dataset_chunks), stored in one transaction that also applies
 * the owner's byte quota; loads check every chunk's size and the recorded number format. The
 * engine is in store_sqlite.c, the SQL in store_sqlite_schema.c.
 */
#include "server/store/sqlite/store_sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------- datasets ---------------- */

static void read_ds_meta(sqlite3_stmt *st, store_dataset_meta *m, char *xf, char *yf)
{
    memset(m, 0, sizeof *m);
    sqlite_copy_text(m->id, sizeof m->id, st, 0);
    sqlite_copy_text(m->owner, sizeof m->owner, st, 1);
    sqlite_copy_text(m->name, sizeof m->name, st, 2);
    m->rows = sqlite3_column_int64(st, 3);
    m->features = sqlite3_column_int64(st, 4);
    m->outputs = sqlite3_column_int64(st, 5);
    m->has_labels = sqlite3_column_int(st, 6);
    m->bytes = sqlite3_column_int64(st, 7);
    m->created_at = sqlite3_column_int64(st, 8);
    if (xf)
        sqlite_copy_text(xf, 8, st, 9);
    if (yf)
        sqlite_copy_text(yf, 8, st, 10);
}

/* Sum of the dataset bytes of owner on connection c, inside or outside a transaction. */
static int dataset_bytes(sconn *c, const char *owner, int64_t *bytes, store_error *err)
{
    *bytes = 0;
    sqlite3_stmt *st = sqlite_stmt(c, Q_DS_BYTES, err);
    if (!st)
        return err->code;
    sqlite3_bind_text(st, 1, owner ? owner : "", -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int code = 0;
    if (rc == SQLITE_ROW)
        *bytes = sqlite3_column_int64(st, 0);
    else
        code = sqlite_fail(c, rc, "dataset bytes", err);
    sqlite3_reset(st);
    return code;
}

/* Inserts the chunks of one array (already inside the transaction). */
static int put_chunks(sconn *c, const char *id, size_t idsize, int kind, const void *data,
                      int64_t bytes, store_error *err)
{
    const unsigned char *p = data;
    for (int64_t off = 0, seq = 0; off < bytes; off += STORE_CHUNK_BYTES, seq++) {
        int64_t n = bytes - off < STORE_CHUNK_BYTES ? bytes - off : STORE_CHUNK_BYTES;
        sqlite3_stmt *st = sqlite_stmt(c, Q_DS_CHUNK_INSERT, err);
        if (!st)
            return err->code;
        sqlite_bind_field(st, 1, id, idsize);
        sqlite3_bind_int(st, 2, kind);
        sqlite3_bind_int64(st, 3, seq);
        int rc = sqlite3_bind_blob64(st, 4, p + off, (sqlite3_uint64)n, SQLITE_STATIC);
        if (rc != SQLITE_OK)
            return sqlite_fail(c, rc, "dataset chunk", err);
        if (sqlite_exec(c, st, "store dataset", err) < 0)
            return err->code;
    }
    return 0;
}

int sqlite_dataset_put(store *s, const store_dataset_meta *meta, const double *X,
                      const int32_t *labels, const double *Y, store_error *err)
{
    sconn *c = sqlite_conn(s, err);
    if (!c)
        return err->code;
    int64_t xbytes, ybytes;
    if (store_dataset_check(meta, X, labels, Y, &xbytes, &ybytes, err) < 0)
        return err->code;
    if (sqlite_begin(c, 1, err) < 0)
        return err->code;
    if (sqlite_idem_check(c, meta->owner, "dataset", meta->idem, err) < 0)
        goto fail;
    /* Admission (--quota-bytes) in the transaction that stores the dataset. */
    int64_t have = 0;
    if (dataset_bytes(c, meta->owner, &have, err) < 0 ||
        store_admit_bytes(s, have, xbytes + ybytes, err) < 0)
        goto fail;
    sqlite3_stmt *st = sqlite_stmt(c, Q_DS_INSERT, err);
    if (!st)
        goto fail;
    STORE_BIND_FIELD(st, 1, meta->id);
    STORE_BIND_FIELD(st, 2, meta->owner);
    STORE_BIND_FIELD(st, 3, meta->name);
    sqlite3_bind_int64(st, 4, meta->rows);
    sqlite3_bind_int64(st, 5, meta->features);
    sqlite3_bind_int64(st, 6, meta->outputs);
    sqlite3_bind_int(st, 7, meta->has_labels ? 1 : 0);
    sqlite3_bind_int64(st, 8, xbytes + ybytes);
    sqlite3_bind_int64(st, 9, meta->created_at > 0 ? meta->created_at : (int64_t)time(NULL));
    sqlite3_bind_text(st, 10, F64_FORMAT, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, meta->has_labels ? I32_FORMAT : F64_FORMAT, -1, SQLITE_STATIC);
    sqlite_bind_opt_text(st, 12, meta->classes_json);
    if (sqlite_exec(c, st, "store dataset", err) < 0) {
        if (err->code == STORE_CONFLICT)
            store_err(err, STORE_CONFLICT, "store: dataset id already exists");
        goto fail;
    }
    if (put_chunks(c, meta->id, sizeof meta->id, CHUNK_X, X, xbytes, err) < 0)
        goto fail;
    if (meta->has_labels
            ? put_chunks(c, meta->id, sizeof meta->id, CHUNK_LABELS, labels, ybytes, err) < 0
            : put_chunks(c, meta->id, sizeof meta->id, CHUNK_Y, Y, ybytes, err) < 0)
        goto fail;
    if (sqlite_idem_record(c, meta->owner, "dataset", meta->idem, meta->id, err) < 0)
        goto fail;
    return sqlite_commit(c, err);
fail:
    sqlite_rollback(c);
    return err->code;
}

int sqlite_dataset_classes(store *s, const char *owner, const char *id, char **classes_json,
                          store_error *err)
{
    *classes_json = NULL;
    sconn *c;
    sqlite3_stmt *st = sqlite_query(s, Q_DS_CLASSES, &c, err);
    if (!st)
        return err->code;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite_bind_opt_text(st, 2, owner);
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        if (t && !(*classes_json = strdup((const char *)t)))
            code = store_err(err, STORE_NOMEM, "store: out of memory");
    } else if (rc == SQLITE_DONE) {
        code = store_err(err, STORE_NOT_FOUND, "store: no such dataset");
    } else {
        code = sqlite_fail(c, rc, "read dataset classes", err);
    }
    sqlite3_reset(st);
    return code;
}

int sqlite_dataset_get(store *s, const char *owner, const char *id, store_dataset_meta *out,
                      store_error *err)
{
    sconn *c;
    sqlite3_stmt *st = sqlite_query(s, Q_DS_GET, &c, err);
    if (!st)
        return err->code;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite_bind_opt_text(st, 2, owner);
    int rc = sqlite3_step(st);
    int code = 0;
    if (rc == SQLITE_ROW)
        read_ds_meta(st, out, NULL, NULL);
    else if (rc == SQLITE_DONE)
        code = store_err(err, STORE_NOT_FOUND, "store: no such dataset");
    else
        code = sqlite_fail(c, rc, "read dataset", err);
    sqlite3_reset(st);
    return code;
}

/* Reads the chunks of one kind, in order, into dst (exactly `bytes` long). The statement is
 * positioned on the first row of that kind (rc = its last step result) and left after it. */
static int read_chunks(sconn *c, sqlite3_stmt *st, int *rc, int kind, unsigned char *dst,
                       int64_t bytes, store_error *err)
{
    int64_t off = 0, seq = 0;
    sqlite3_blob *blob = NULL;
    int code = 0;
    while (*rc == SQLITE_ROW && sqlite3_column_int(st, 1) == kind) {
        int64_t rowid = sqlite3_column_int64(st, 0);
        int64_t len = sqlite3_column_int64(st, 3);
        if (sqlite3_column_int64(st, 2) != seq || len <= 0 || len > bytes - off) {
            code = store_err(err, STORE_IO, "store: dataset is corrupt (chunk %d/%lld)", kind,
                          (long long)seq);
            goto cleanup;
        }
        int r = blob ? sqlite3_blob_reopen(blob, rowid)
                     : sqlite3_blob_open(c->db, "main", "dataset_chunks", "data", rowid, 0, &blob);
        if (r == SQLITE_OK)
            r = sqlite3_blob_read(blob, dst + off, (int)len, 0);
        if (r != SQLITE_OK) {
            code = sqlite_fail(c, r, "read dataset", err);
            goto cleanup;
        }
        off += len;
        seq++;
        *rc = sqlite3_step(st);
    }
    if (*rc != SQLITE_ROW && *rc != SQLITE_DONE) {
        code = sqlite_fail(c, *rc, "read dataset", err);
        goto cleanup;
    }
    if (off != bytes)
        code = store_err(err, STORE_IO, "store: dataset is corrupt (%lld of %lld bytes)",
                      (long long)off, (long long)bytes);
cleanup:
    sqlite3_blob_close(blob);
    return code;
}

int sqlite_dataset_load(store *s, const char *owner, const char *id, store_dataset_meta *meta,
                       double **X, int32_t **labels, double **Y, store_error *err)
{
    *X = NULL;
    *labels = NULL;
    *Y = NULL;
    sconn *c = sqlite_conn(s, err);
    if (!c)
        return err->code;
    double *x = NULL;
    void *y = NULL;
    char xf[8], yf[8];
    if (sqlite_begin(c, 0, err) < 0)
        return err->code;
    sqlite3_stmt *st = sqlite_stmt_id(c, Q_DS_GET, id, err);
    if (!st)
        goto fail;
    sqlite_bind_opt_text(st, 2, owner);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        read_ds_meta(st, meta, xf, yf);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) {
        store_err(err, STORE_NOT_FOUND, "store: no such dataset");
        goto fail;
    }
    if (rc != SQLITE_ROW) {
        sqlite_fail(c, rc, "read dataset", err);
        goto fail;
    }
    if (strcmp(xf, F64_FORMAT) != 0 ||
        strcmp(yf, meta->has_labels ? I32_FORMAT : F64_FORMAT) != 0) {
        store_err(err, STORE_IO, "store: dataset stored as %s/%s, this host reads %s", xf, yf,
               F64_FORMAT);
        goto fail;
    }
    int64_t xbytes, ybytes;
    if (store_dataset_sizes(meta, &xbytes, &ybytes, err) < 0) {
        store_err(err, STORE_IO, "store: dataset metadata is corrupt");
        goto fail;
    }
    x = malloc((size_t)xbytes);
    y = malloc((size_t)ybytes);
    if (!x || !y) {
        store_err(err, STORE_NOMEM, "store: out of memory loading a dataset of %lld bytes",
               (long long)(xbytes + ybytes));
        goto fail;
    }
    st = sqlite_stmt_id(c, Q_DS_CHUNKS, id, err);
    if (!st)
        goto fail;
    rc = sqlite3_step(st);
    int code = read_chunks(c, st, &rc, CHUNK_X, (unsigned char *)x, xbytes, err);
    if (code == 0)
        code = read_chunks(c, st, &rc, meta->has_labels ? CHUNK_LABELS : CHUNK_Y, y, ybytes,
                           err);
    if (code == 0 && rc != SQLITE_DONE)
        code = store_err(err, STORE_IO, "store: dataset is corrupt (extra chunks)");
    sqlite3_reset(st);
    if (code < 0)
        goto fail;
    sqlite_rollback(c); /* ends the read transaction */
    *X = x;
    if (meta->has_labels)
        *labels = y;
    else
        *Y = y;
    return 0;
fail:
    sqlite_rollback(c);
    free(x);
    free(y);
    return err->code;
}

/* sqlite_collect's reader of a dataset row. */
static int read_ds_row(sqlite3_stmt *st, void *row, store_error *err)
{
    (void)err;
    read_ds_meta(st, row, NULL, NULL);
    return 0;
}

int sqlite_dataset_list(store *s, const char *owner, int64_t cursor, int limit,
                       store_dataset_meta **out, size_t *n, int64_t *next_cursor,
                       store_error *err)
{
    *out = NULL;
    *n = 0;
    *next_cursor = 0;
    limit = limit < 1 ? 1 : limit > 1000 ? 1000 : limit;
    sconn *c;
    sqlite3_stmt *st = sqlite_query(s, Q_DS_LIST, &c, err);
    if (!st)
        return err->code;
    sqlite3_bind_text(st, 1, owner ? owner : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, cursor > 0 ? cursor : INT64_MAX);
    sqlite3_bind_int(st, 3, limit + 1); /* one more tells whether a next page exists */
    sqlite_rows how = {sizeof **out, read_ds_row, NULL, 11 /* seq */, limit, "list datasets"};
    return sqlite_collect(c, st, &how, (void **)out, n, next_cursor, err);
}

int sqlite_dataset_delete(store *s, const char *owner, const char *id, store_error *err)
{
    sconn *c = sqlite_write(s, err);
    if (!c)
        return err->code;
    sqlite3_stmt *st = sqlite_stmt_id(c, Q_DS_EXISTS, id, err);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 2, owner ? owner : "", -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) {
        store_err(err, STORE_NOT_FOUND, "store: no such dataset");
        goto fail;
    }
    if (rc != SQLITE_ROW) {
        sqlite_fail(c, rc, "delete dataset", err);
        goto fail;
    }
    st = sqlite_stmt_id(c, Q_DS_IN_USE, id, err);
    if (!st)
        goto fail;
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) {
        store_err(err, STORE_CONFLICT, "store: dataset is used by a queued or running job");
        goto fail;
    }
    if (rc != SQLITE_DONE) {
        sqlite_fail(c, rc, "delete dataset", err);
        goto fail;
    }
    st = sqlite_stmt_id(c, Q_DS_DELETE, id, err);
    if (!st)
        goto fail;
    if (sqlite_exec(c, st, "delete dataset", err) < 0)
        goto fail;
    /* The freed pages go to the file's free list and are reused by the next uploads; the file
     * does not shrink here (moving the pages behind them could take seconds under the write
     * lock). auto_vacuum=INCREMENTAL lets an operator shrink it offline. */
    return sqlite_commit(c, err);
fail:
    sqlite_rollback(c);
    return err->code;
}

int sqlite_dataset_bytes(store *s, const char *owner, int64_t *bytes, store_error *err)
{
    sconn *c = sqlite_conn(s, err);
    return c ? dataset_bytes(c, owner, bytes, err) : err->code;
}
