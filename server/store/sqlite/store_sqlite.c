/* store_sqlite.c — the store (store.h) on SQLite: <dir>/backpropd.db in WAL mode with
 * synchronous=FULL. This file holds the engine (connections, statements, errors), the
 * open-time checks and the migration runner; store_sqlite_schema.c holds the schema's
 * migrations, store_sqlite_datasets.c the datasets, store_sqlite_jobs.c and
 * store_sqlite_leases.c the jobs.
 *
 * DESIGN. Every thread that touches a store gets its own connection (opened lazily, kept in a
 * pthread key whose destructor closes it when the thread exits, and listed in s->conns so
 * store_close closes the rest: the set is server/store/store_conns.c, shared by the engines;
 * this file gives it conn_open_thread and conn_close). A connection caches its prepared
 * statements. Every write is one BEGIN IMMEDIATE transaction, so writers queue on SQLite's lock
 * (busy_timeout) instead of failing half-way, and readers never block in WAL mode. Any failure
 * rolls the transaction back: what was stored before stays intact, and the next write after
 * space returns works. Coordination between workers (claims, leases) lives entirely in the
 * database, so several processes can share one file; <dir>/backpropd.db.peers tells each of
 * them whether it is alone (sqlite_writes_seen, for store_job_version).
 *
 * File format: the application_id pragma marks a backpropd file and user_version is the
 * schema version (migrations run at open inside one transaction). Numbers are stored
 * as native little-endian blobs ("f64le" doubles, "i32le" labels), recorded per dataset and
 * in the meta table; a dataset's arrays are split into chunks of at most 16 MiB.
 */
#include "server/store/sqlite/store_sqlite_int.h"
#include "server/store/store_debug.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define STORE_APP_ID 0x42507264      /* "BPrd" */
#define STORE_PAGE_SIZE 16384
#define STORE_BUSY_MS 5000

/* The engine this folder provides (store_engine.h): a directory location. */
static const char *const sqlite_schemes[] = {"file", NULL};
#define SQLITE_ENTRY(ret, name, params, args) .name = sqlite_##name,
const store_engine store_engine_sqlite = {
    .name = "SQLite",
    .schemes = sqlite_schemes,
    .open = sqlite_open,
    .close = sqlite_close,
    .writes_seen = sqlite_writes_seen,
    STORE_ENGINE_OPS(SQLITE_ENTRY)
};
#undef SQLITE_ENTRY

/* ---------------- small helpers ---------------- */

static int map_rc(sqlite3 *db, int rc)
{
    int primary = rc & 0xff;
    if (primary == SQLITE_FULL)
        return STORE_FULL;
    if (primary == SQLITE_IOERR && db) {
        int sys = sqlite3_system_errno(db);
        if (sys == ENOSPC || sys == EDQUOT)
            return STORE_FULL;
        if (rc == SQLITE_IOERR_NOMEM)
            return STORE_NOMEM;
    }
    switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_BUSY;
    case SQLITE_NOMEM:
        return STORE_NOMEM;
    case SQLITE_CONSTRAINT:
        return STORE_CONFLICT;
    default:
        return STORE_IO;
    }
}

int sqlite_fail(sconn *c, int rc, const char *what, store_error *err)
{
    sqlite3 *db = c ? c->db : NULL;
    int code = map_rc(db, rc);
    const char *detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if (code == STORE_FULL)
        return store_err(err, code, "store: %s: disk full (%s)", what, detail);
    return store_err(err, code, "store: %s: %s", what, detail);
}

int sqlite_bind_field(sqlite3_stmt *st, int i, const char *field, size_t size)
{
    return sqlite3_bind_text(st, i, field, (int)strnlen(field, size), SQLITE_STATIC);
}

int sqlite_bind_opt_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

int sqlite_bind_real(sqlite3_stmt *st, int i, double v)
{
    return isnan(v) ? sqlite3_bind_null(st, i) : sqlite3_bind_double(st, i, v);
}

double sqlite_column_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

void sqlite_copy_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, size, "%s", t ? (const char *)t : "");
}

int sqlite_column_doubles(sconn *c, sqlite3_stmt *st, int col, int64_t n, double **out,
                      const char *what, store_error *err)
{
    *out = NULL;
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return 0;
    const void *b = sqlite3_column_blob(st, col);
    int64_t len = sqlite3_column_bytes(st, col);
    if (!b && sqlite3_errcode(c->db) == SQLITE_NOMEM)
        return store_err(err, STORE_NOMEM, "store: %s: out of memory", what);
    if (n < 0 || n > INT64_MAX / 8 || len != n * 8)
        return store_err(err, STORE_IO, "store: %s: stored weights are corrupt (%lld bytes for "
                      "%lld numbers)", what, (long long)len, (long long)n);
    double *d = malloc(len ? (size_t)len : 1);
    if (!d)
        return store_err(err, STORE_NOMEM, "store: %s: out of memory", what);
    if (len)
        memcpy(d, b, (size_t)len);
    *out = d;
    return 0;
}

int sqlite_collect(sconn *c, sqlite3_stmt *st, const sqlite_rows *how, void **out, size_t *n,
               int64_t *next_cursor, store_error *err)
{
    char *v = NULL;
    size_t len = 0, cap = 0;
    int64_t last_seq = 0;
    int rc, code = 0;
    *out = NULL;
    *n = 0;
    if (next_cursor)
        *next_cursor = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (how->limit > 0 && len == (size_t)how->limit) {
            if (next_cursor)
                *next_cursor = last_seq; /* one more row follows: a next page exists */
            break;
        }
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char *nv = realloc(v, ncap * how->size);
            if (!nv) {
                code = store_err(err, STORE_NOMEM, "store: out of memory");
                goto cleanup;
            }
            v = nv;
            cap = ncap;
        }
        memset(v + len * how->size, 0, how->size);
        if ((code = how->read(st, v + len * how->size, err)) < 0)
            goto cleanup;
        if (how->seq_col >= 0)
            last_seq = sqlite3_column_int64(st, how->seq_col);
        len++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        code = sqlite_fail(c, rc, how->what, err);
cleanup:
    sqlite3_reset(st);
    if (code < 0) {
        for (size_t i = 0; how->clear && i < len; i++)
            how->clear(v + i * how->size);
        free(v);
        if (next_cursor)
            *next_cursor = 0;
        return code;
    }
    *out = v;
    *n = len;
    return 0;
}

/* ---------------- connections ---------------- */

/* Frees a connection (a store_conn_close_fn: link is the sconn's first member). */
static void conn_close(store_conn *link)
{
    sconn *c = (sconn *)link;
    if (!c)
        return;
    for (int i = 0; i < Q__COUNT; i++)
        sqlite3_finalize(c->q[i]);
    sqlite3_close_v2(c->db);
    free(c);
}

/* Runs pragmas / DDL with no result rows needed. */
static int conn_exec(sconn *c, const char *sql, const char *what, store_error *err)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : sqlite_fail(c, rc, what, err);
}

/* new. A configured connection to s->path (created when `create`). */
static sconn *conn_open(store *s, int create, store_error *err)
{
    sconn *c = calloc(1, sizeof *c);
    if (!c) {
        store_err(err, STORE_NOMEM, "store: out of memory");
        return NULL;
    }
    c->s = s;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(s->path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        if (!c->db)
            store_err(err, STORE_NOMEM, "store: out of memory");
        else
            store_err(err, map_rc(c->db, rc), "store: cannot open %s: %s", s->path,
                   sqlite3_errmsg(c->db));
        goto fail;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, STORE_BUSY_MS);
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
    if (sqlite3_db_readonly(c->db, "main") == 1) {
        store_err(err, STORE_IO, "store: %s is read-only", s->path);
        goto fail;
    }
    /* Per-connection settings; none of them writes to the file. */
    if (conn_exec(c, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;"
                     "PRAGMA journal_size_limit = 67108864; PRAGMA cache_size = -8192;"
                     "PRAGMA temp_store = MEMORY;", "configure connection", err) < 0) {
        int x = sqlite3_extended_errcode(c->db) & 0xff;
        if (x == SQLITE_NOTADB || x == SQLITE_CORRUPT)
            store_err(err, STORE_IO, "store: %s is not a backpropd database (not an SQLite file, "
                   "or its header is corrupt)", s->path);
        goto fail;
    }
    return c;
fail:
    conn_close(&c->link);
    return NULL;
}

/* store_conn_open_fn: a connection for this thread's first use of s. */
static store_conn *conn_open_thread(void *s, store_error *err)
{
    sconn *c = conn_open(s, 0, err);
    return c ? &c->link : NULL;
}

static int conn_apply_cap(sconn *c, store_error *err)
{
    int want = atomic_load(&c->s->max_pages);
    if (want == c->max_pages)
        return 0;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld",
             want > 0 ? (long long)want : 4294967294LL);
    if (conn_exec(c, sql, "max_page_count", err) < 0)
        return err->code;
    c->max_pages = want;
    return 0;
}

sconn *sqlite_conn(store *s, store_error *err)
{
    err->code = 0;
    err->msg[0] = '\0';
    sconn *c = (sconn *)store_conns_get(&s->conns, err);
    if (!c)
        return NULL;
    if (conn_apply_cap(c, err) < 0)
        return NULL;
    return c;
}

sqlite3_stmt *sqlite_stmt(sconn *c, query_id id, store_error *err)
{
    sqlite3_stmt *st = c->q[id];
    if (!st) {
        int rc = sqlite3_prepare_v3(c->db, sqlite_queries[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
        if (rc != SQLITE_OK) {
            sqlite_fail(c, rc, "prepare", err);
            return NULL;
        }
        c->q[id] = st;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

sqlite3_stmt *sqlite_stmt_id(sconn *c, query_id q, const char *id, store_error *err)
{
    sqlite3_stmt *st = sqlite_stmt(c, q, err);
    if (st)
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return st;
}

sqlite3_stmt *sqlite_query(store *s, query_id id, sconn **c, store_error *err)
{
    *c = sqlite_conn(s, err);
    return *c ? sqlite_stmt(*c, id, err) : NULL;
}

sconn *sqlite_write(store *s, store_error *err)
{
    sconn *c = sqlite_conn(s, err);
    return c && sqlite_begin(c, 1, err) == 0 ? c : NULL;
}

int sqlite_exec(sconn *c, sqlite3_stmt *st, const char *what, store_error *err)
{
    int rc = sqlite3_step(st);
    int code = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sqlite_fail(c, rc, what, err);
    sqlite3_reset(st);
    return code;
}

int sqlite_begin(sconn *c, int write, store_error *err)
{
    sqlite3_stmt *st = sqlite_stmt(c, write ? Q_BEGIN_IMMEDIATE : Q_BEGIN, err);
    return st ? sqlite_exec(c, st, "begin", err) : err->code;
}

void sqlite_rollback(sconn *c)
{
    if (sqlite3_get_autocommit(c->db))
        return;
    /* Reset every statement first: a pending one would make ROLLBACK fail. */
    for (int i = 0; i < Q__COUNT; i++)
        if (c->q[i])
            sqlite3_reset(c->q[i]);
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

int sqlite_commit(sconn *c, store_error *err)
{
    sqlite3_stmt *st = sqlite_stmt(c, Q_COMMIT, err);
    int code = st ? sqlite_exec(c, st, "commit", err) : err->code;
    if (code < 0)
        sqlite_rollback(c);
    return code;
}

/* ---------------- open, close, checks ---------------- */

/* mkdir -p with 0700 for what it creates. */
static int make_dirs(const char *dir, store_error *err)
{
    char p[600];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return store_err(err, STORE_IO, "store: data directory path too long");
    for (char *q = p + 1;; q++) {
        if (*q == '/' || *q == '\0') {
            char saved = *q;
            *q = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST)
                return store_err(err, STORE_IO, "store: cannot create %s: %s", p, strerror(errno));
            *q = saved;
            if (!saved)
                break;
        }
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return store_err(err, STORE_IO, "store: %s is not a directory", dir);
    return 0;
}

/* One integer from a pragma or query. */
static int query_int(sconn *c, const char *sql, int64_t *out, store_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
    }
    int code = rc == SQLITE_OK || rc == SQLITE_DONE ? 0 : sqlite_fail(c, rc, "read header", err);
    sqlite3_finalize(st);
    return code;
}

static int query_text(sconn *c, const char *sql, char *out, size_t size, store_error *err)
{
    sqlite3_stmt *st = NULL;
    out[0] = '\0';
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            sqlite_copy_text(out, size, st, 0);
            rc = SQLITE_OK;
        }
    }
    int code = rc == SQLITE_OK || rc == SQLITE_DONE ? 0 : sqlite_fail(c, rc, "check", err);
    sqlite3_finalize(st);
    return code;
}

/* PRAGMA quick_check must answer "ok"; else the first problems go into the message. */
static int quick_check(sconn *c, store_error *err)
{
    sqlite3_stmt *st = NULL;
    char found[160] = "";
    size_t used = 0;
    int rc = sqlite3_prepare_v2(c->db, "PRAGMA quick_check(3)", -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        if (t && strcmp((const char *)t, "ok") != 0 && used < sizeof found - 1) {
            int w = snprintf(found + used, sizeof found - used, "%s%s", used ? "; " : "",
                             (const char *)t);
            used = w < 0 ? used : used + (size_t)w;
        }
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    for (char *p = found; *p; p++)
        if (*p == '\n')
            *p = ' ';
    if (rc != SQLITE_DONE)
        return store_err(err, STORE_IO, "store: %s is corrupt (%s); restore it from a backup",
                      c->s->path, sqlite3_errmsg(c->db));
    if (found[0])
        return store_err(err, STORE_IO, "store: %s is corrupt (quick_check: %s); restore it from "
                      "a backup", c->s->path, found);
    return 0;
}

/* Is this file ours, empty, or something else? Fills *fresh. */
static int check_identity(sconn *c, int *fresh, int64_t *version, store_error *err)
{
    int64_t app = 0, tables = 0;
    if (query_int(c, "PRAGMA application_id", &app, err) < 0) {
        int rc = sqlite3_extended_errcode(c->db);
        if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT)
            return store_err(err, STORE_IO, "store: %s is not a backpropd database (not an SQLite "
                          "file, or its header is corrupt)", c->s->path);
        return err->code;
    }
    if (query_int(c, "PRAGMA user_version", version, err) < 0 ||
        query_int(c, "SELECT count(*) FROM sqlite_schema", &tables, err) < 0)
        return err->code;
    *fresh = 0;
    if (app == 0 && tables == 0 && *version == 0) {
        *fresh = 1;
        return 0;
    }
    if (app != STORE_APP_ID)
        return store_err(err, STORE_IO, "store: %s is an SQLite database of another application "
                      "(application_id 0x%08llx), not backpropd's; move it away or choose "
                      "another --data directory", c->s->path, (unsigned long long)(uint32_t)app);
    if (*version > STORE_SCHEMA_VERSION)
        return store_err(err, STORE_IO, "store: %s has schema version %lld, newer than this "
                      "backpropd knows (%d): upgrade backpropd", c->s->path,
                      (long long)*version, STORE_SCHEMA_VERSION);
    return 0;
}

/* Applies the migrations from the file's version up, in one transaction (re-reading the
 * version under the write lock: another process may have migrated meanwhile). */
static int migrate(sconn *c, store_error *err)
{
    int64_t v = 0;
    if (sqlite_begin(c, 1, err) < 0)
        return err->code;
    int fresh = 0;
    if (check_identity(c, &fresh, &v, err) < 0)
        goto fail;
    for (; v < STORE_SCHEMA_VERSION; v++)
        if (conn_exec(c, sqlite_migrations[v], "migrate", err) < 0)
            goto fail;
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d",
             STORE_APP_ID, STORE_SCHEMA_VERSION);
    if (conn_exec(c, sql, "migrate", err) < 0)
        goto fail;
    char order[16];
    if (query_text(c, "SELECT value FROM meta WHERE key = 'byte_order'", order, sizeof order,
                   err) < 0)
        goto fail;
    if (strcmp(order, HOST_ORDER) != 0) {
        store_err(err, STORE_IO, "store: %s was written on a host with another byte order (%s)",
               c->s->path, order);
        goto fail;
    }
    return sqlite_commit(c, err);
fail:
    sqlite_rollback(c);
    return err->code;
}

/* ---------------- other processes on the same file (writes_seen) ----------------
 * <dir>/backpropd.db.peers: every process holds a shared fcntl lock on its byte 0 for as long
 * as it has the store open, and on opening, before its first write to the database, writes 8
 * random bytes at offset 8. F_GETLK for a write lock (which never reports the caller's own
 * locks) then tells whether another process has the store open now, and a change of those 8
 * bytes whether one has opened it since we last looked. Without the file (it cannot be made)
 * nothing is vouched for. */
static void peers_open(store *s, const char *dir)
{
    char path[640];
    s->peers_fd = -1;
    if (snprintf(path, sizeof path, "%s/backpropd.db.peers", dir) >= (int)sizeof path)
        return;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct flock l = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    uint64_t mark = 0;
    if (getrandom(&mark, sizeof mark, 0) != (ssize_t)sizeof mark)
        mark = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
    if (fd < 0 || fcntl(fd, F_SETLKW, &l) < 0 ||
        pwrite(fd, &mark, sizeof mark, 8) != (ssize_t)sizeof mark) {
        if (fd >= 0)
            close(fd);
        return;
    }
    s->peers_fd = fd;
    s->peers_mark = mark;
    s->peers_gen = 1;
}

uint64_t sqlite_writes_seen(store *s)
{
    if (s->peers_fd < 0)
        return 0;
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    int alone = fcntl(s->peers_fd, F_GETLK, &l) == 0 && l.l_type == F_UNLCK;
    uint64_t mark = 0;
    int got = pread(s->peers_fd, &mark, sizeof mark, 8) == (ssize_t)sizeof mark;
    pthread_mutex_lock(&s->peers_mu);
    if (!got || mark != s->peers_mark) { /* someone came: what we read before may be old */
        s->peers_mark = mark;
        s->peers_gen++;
    }
    uint64_t gen = s->peers_gen;
    pthread_mutex_unlock(&s->peers_mu);
    return alone && got ? gen : 0;
}

store *sqlite_open(const char *dir, store_error *err)
{
    store *s = NULL;
    sconn *c = NULL;
    int conns_made = 0;
    if (!sqlite3_threadsafe()) {
        store_err(err, STORE_IO, "store: this SQLite library was built without thread support");
        goto fail;
    }
    if (!dir || !*dir) {
        store_err(err, STORE_IO, "store: no data directory given");
        goto fail;
    }
    if (make_dirs(dir, err) < 0)
        goto fail;
    s = calloc(1, sizeof *s);
    if (!s) {
        store_err(err, STORE_NOMEM, "store: out of memory");
        goto fail;
    }
    if (snprintf(s->path, sizeof s->path, "%s/backpropd.db", dir) >= (int)sizeof s->path) {
        store_err(err, STORE_IO, "store: data directory path too long");
        goto fail;
    }
    if (store_conns_init(&s->conns, conn_open_thread, conn_close, s, err) < 0)
        goto fail;
    conns_made = 1;
    pthread_mutex_init(&s->peers_mu, NULL);
    peers_open(s, dir); /* before the first write: recovery and migrations write */

    c = conn_open(s, 1, err);
    if (!c)
        goto fail;
    int fresh = 0;
    int64_t version = 0;
    if (check_identity(c, &fresh, &version, err) < 0)
        goto fail;
    if (fresh) {
        /* Only effective before the first table exists. */
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA page_size = %d; PRAGMA auto_vacuum = INCREMENTAL",
                 STORE_PAGE_SIZE);
        if (conn_exec(c, sql, "create", err) < 0)
            goto fail;
    }
    char mode[16];
    if (query_text(c, "PRAGMA journal_mode = WAL", mode, sizeof mode, err) < 0)
        goto fail;
    if (strcmp(mode, "wal") != 0) {
        store_err(err, STORE_IO, "store: %s: cannot use WAL mode (journal_mode is %s)", s->path, mode);
        goto fail;
    }
    if (!fresh) {
        if (quick_check(c, err) < 0)
            goto fail;
    }
    if (migrate(c, err) < 0)
        goto fail;
    store_conns_add(&s->conns, &c->link);
    return s;
fail:
    if (c)
        conn_close(&c->link);
    if (conns_made) {
        store_conns_close_all(&s->conns);
        if (s->peers_fd >= 0)
            close(s->peers_fd);
        pthread_mutex_destroy(&s->peers_mu);
    }
    free(s);
    if (!err->code)
        store_err(err, STORE_IO, "store: cannot open the store");
    return NULL;
}

/* Closes every connection, including those of threads still alive (which must not touch s
 * again: call this after the threads that used the store have stopped). */
void sqlite_close(store *s)
{
    if (!s)
        return;
    store_conns_close_all(&s->conns);
    if (s->peers_fd >= 0)
        close(s->peers_fd);
    pthread_mutex_destroy(&s->peers_mu);
    free(s);
}

int sqlite_ping(store *s, store_error *err)
{
    sconn *c = sqlite_conn(s, err);
    if (!c)
        return err->code;
    int64_t v = 0;
    return query_int(c, "PRAGMA user_version", &v, err);
}

/* One process owns the file's queue: there is nobody else to hear from. */
int sqlite_listen(store *s, store_event_fn fn, void *arg, store_error *err)
{
    (void)s;
    (void)fn;
    (void)arg;
    (void)err;
    return 0;
}

/* Followers in this process read the live registry; checkpoints carry the history. */
int sqlite_job_progress(store *s, const char *id, const char *worker_id,
                        const store_history *hist, const store_progress *progress,
                        store_error *err)
{
    (void)s;
    (void)id;
    (void)worker_id;
    (void)hist;
    (void)progress;
    (void)err;
    return 0;
}

void store_debug_max_pages(store *s, int pages)
{
    if (((store_base *)(void *)s)->engine != &store_engine_sqlite)
        return;
    atomic_store(&s->max_pages, pages > 0 ? pages : 0);
}

int store_debug_page_count(store *s, int64_t *pages, int64_t *page_size, store_error *err)
{
    if (((store_base *)(void *)s)->engine != &store_engine_sqlite)
        return store_err(err, STORE_IO, "store: page counts are SQLite's");
    sconn *c = sqlite_conn(s, err);
    if (!c)
        return err->code;
    if (query_int(c, "PRAGMA page_count", pages, err) < 0)
        return err->code;
    return query_int(c, "PRAGMA page_size", page_size, err);
}
