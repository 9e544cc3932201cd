/* store_sqlite.c — the store suite (server/store.h), run against each engine: built as is it
 * tests the SQLite engine; tests/store_postgres.c includes it with STORE_TEST_POSTGRES 1 and
 * runs the same tests against a throwaway PostgreSQL cluster (one fresh database per test),
 * leaving out only what is SQLite's own (files, pages, pragmas, migrations of its format).
 * What it covers: datasets round-trip bit
 * for bit (chunked beyond 16 MiB), owners are isolated, jobs list/paginate/claim in order,
 * concurrent workers (threads, two handles, two processes) never claim the same job, leases
 * expire and are lost, start-up recovery frees (compare-and-set) only the leases of provably
 * dead processes of this host and keeps their checkpoints, checkpoints/history/weights replace
 * atomically, reopen keeps every byte, corrupt and foreign files are refused, and a full disk
 * (page cap or a real 2 MiB tmpfs) fails cleanly without damage and recovers when space
 * returns; idempotency keys are decided inside the create (concurrent retries make one job),
 * labels, held-out metrics (lease-checked) and class names round-trip.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server/jobs/jobs_lease.h"
#include "server/store/store.h"
#include "server/store/store_debug.h"

#ifndef STORE_TEST_POSTGRES
#define STORE_TEST_POSTGRES 0
#endif
#if STORE_TEST_POSTGRES
#include <libpq-fe.h>

#include "tests/harness.h"
#endif

/* ---------------- helpers ---------------- */

static char tmpdir[256];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

/* PostgreSQL: the test's own database, which stands for tmpdir in open_ok and sql_int. */
static char pg_uri[256];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bpd_store_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
#if STORE_TEST_POSTGRES
    cr_assert_eq(pg_new_database(pg_uri, sizeof pg_uri), 0, "no test database (cluster: %s)",
                 getenv("BPD_PG_DIR") ? getenv("BPD_PG_DIR") : "not started");
#endif
}

/* Where the store of a test lives: the directory, or its database for PostgreSQL. */
static const char *location(const char *dir)
{
    return STORE_TEST_POSTGRES && strcmp(dir, tmpdir) == 0 ? pg_uri : dir;
}

static char mnt[300];

static void remove_tmpdir(void)
{
    if (mnt[0])
        umount2(mnt, MNT_DETACH);
    mnt[0] = '\0';
    if (tmpdir[0])
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    tmpdir[0] = '\0';
}

static store *open_ok(const char *dir)
{
    store_error err = {0};
    store *s = store_open(location(dir), &err);
    cr_assert_not_null(s, "store_open(%s): %s", location(dir), err.msg);
    return s;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd64(void)
{
    /* splitmix64: independent of the code under test */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Doubles with awkward bit patterns: -0.0, denormals, extremes, then random bit patterns. */
static double *awkward_doubles(int64_t n)
{
    double *v = malloc((size_t)n * sizeof *v);
    cr_assert_not_null(v);
    const double special[] = {-0.0, 0.0, 4.9406564584124654e-324, -4.9406564584124654e-324,
                              2.2250738585072009e-308, DBL_MIN, DBL_MAX, -DBL_MAX, 1.0 / 3.0,
                              0.1, -1e-310};
    for (int64_t i = 0; i < n; i++) {
        if (i < (int64_t)(sizeof special / sizeof special[0])) {
            v[i] = special[i];
        } else {
            uint64_t bits = rnd64();
            memcpy(&v[i], &bits, 8);
        }
    }
    return v;
}

static void fill_meta(store_dataset_meta *m, const char *id, const char *owner, int64_t rows,
                      int64_t features, int64_t outputs, int has_labels)
{
    memset(m, 0, sizeof *m);
    snprintf(m->id, sizeof m->id, "%s", id);
    snprintf(m->owner, sizeof m->owner, "%s", owner);
    snprintf(m->name, sizeof m->name, "name of %s", id);
    m->rows = rows;
    m->features = features;
    m->outputs = outputs;
    m->has_labels = has_labels;
}

/* A small labelled dataset stored as id/owner. */
static void put_small(store *s, const char *id, const char *owner)
{
    store_dataset_meta m;
    fill_meta(&m, id, owner, 4, 3, 2, 1);
    double X[12];
    for (int i = 0; i < 12; i++)
        X[i] = i * 0.5;
    int32_t y[4] = {0, 1, 1, 0};
    store_error err;
    cr_assert_eq(store_dataset_put(s, &m, X, y, NULL, &err), 0, "%s", err.msg);
}

static void make_job(store *s, const char *id, const char *owner, const char *ds,
                     store_job *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", id);
    snprintf(out->owner, sizeof out->owner, "%s", owner);
    snprintf(out->dataset_id, sizeof out->dataset_id, "%s", ds);
    char spec[96];
    snprintf(spec, sizeof spec, "{\"network\":{\"layers\":[3,2]},\"job\":\"%s\"}", id);
    out->spec_json = spec;
    out->progress.epochs = 10;
    out->progress.cost = out->progress.validation_cost = NAN;
    out->progress.accuracy = out->progress.samples_per_second = NAN;
    store_error err;
    cr_assert_eq(store_job_create(s, out, NULL, 0, &err), 0, "%s", err.msg);
    out->spec_json = NULL;
}

/* Runs one SQL query returning an integer directly on the file (read-only), or on the test's
 * database. */
static int64_t sql_int(const char *dir, const char *sql)
{
#if STORE_TEST_POSTGRES
    (void)dir;
    PGconn *pc = PQconnectdb(pg_uri);
    cr_assert_eq(PQstatus(pc), CONNECTION_OK, "%s", PQerrorMessage(pc));
    PGresult *r = PQexec(pc, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(pc));
    cr_assert_eq(PQntuples(r), 1);
    int64_t pv = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(pc);
    return pv;
#endif
    char path[400];
    snprintf(path, sizeof path, "%s/backpropd.db", dir);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static int same_double(double a, double b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

TestSuite(store, .init = make_tmpdir, .fini = remove_tmpdir, .timeout = 120);

/* ---------------- datasets ---------------- */

Test(store, dataset_roundtrip_bit_identical)
{
    store *s = open_ok(tmpdir);
    int64_t rows = 50, features = 7;
    double *X = awkward_doubles(rows * features);
    int32_t labels[50];
    for (int i = 0; i < 50; i++)
        labels[i] = (i * 7) % 5;
    store_dataset_meta m;
    fill_meta(&m, "ds_000000000000000000000001", "alice", rows, features, 5, 1);
    m.created_at = 1764183600;
    store_error err;
    cr_assert_eq(store_dataset_put(s, &m, X, labels, NULL, &err), 0, "%s", err.msg);

    store_dataset_meta got;
    cr_assert_eq(store_dataset_get(s, "alice", m.id, &got, &err), 0, "%s", err.msg);
    cr_assert_str_eq(got.id, m.id);
    cr_assert_str_eq(got.owner, "alice");
    cr_assert_str_eq(got.name, m.name);
    cr_assert_eq(got.rows, 50);
    cr_assert_eq(got.features, 7);
    cr_assert_eq(got.outputs, 5);
    cr_assert_eq(got.has_labels, 1);
    cr_assert_eq(got.bytes, 50 * 7 * 8 + 50 * 4);
    cr_assert_eq(got.created_at, 1764183600);

    double *X2, *Y2;
    int32_t *l2;
    cr_assert_eq(store_dataset_load(s, "alice", m.id, &got, &X2, &l2, &Y2, &err), 0, "%s",
                 err.msg);
    cr_assert_null(Y2);
    cr_assert_not_null(l2);
    cr_assert_eq(memcmp(X2, X, (size_t)(rows * features) * 8), 0);
    cr_assert_eq(memcmp(l2, labels, sizeof labels), 0);
    /* -0.0 and the smallest denormal survive exactly */
    cr_assert(signbit(X2[0]) && X2[0] == 0.0);
    cr_assert_eq(X2[2], 4.9406564584124654e-324);
    free(X2);
    free(l2);
    free(X);
    store_close(s);
}

Test(store, dataset_over_16mib_is_chunked_and_identical)
{
    store *s = open_ok(tmpdir);
    /* X: 5000 x 1000 doubles = 40,000,000 bytes -> 16 MiB + 16 MiB + 6,445,568 = 3 chunks;
     * Y (no labels): 5000 x 3 doubles, one small chunk. */
    int64_t rows = 5000, features = 1000, outputs = 3;
    double *X = awkward_doubles(rows * features);
    double *Y = awkward_doubles(rows * outputs);
    store_dataset_meta m;
    fill_meta(&m, "ds_big", "", rows, features, outputs, 0);
    store_error err;
    cr_assert_eq(store_dataset_put(s, &m, X, NULL, Y, &err), 0, "%s", err.msg);
    cr_assert_eq(sql_int(tmpdir, "SELECT count(*) FROM dataset_chunks WHERE dataset_id='ds_big' "
                                 "AND kind=0"), 3);
    cr_assert_eq(sql_int(tmpdir, "SELECT max(length(data)) FROM dataset_chunks"), 16 << 20);
    cr_assert_eq(sql_int(tmpdir, "SELECT sum(length(data)) FROM dataset_chunks WHERE kind=0"),
                 rows * features * 8);

    store_dataset_meta got;
    double *X2, *Y2;
    int32_t *l2;
    cr_assert_eq(store_dataset_load(s, "", "ds_big", &got, &X2, &l2, &Y2, &err), 0, "%s",
                 err.msg);
    cr_assert_null(l2);
    cr_assert_eq(got.has_labels, 0);
    cr_assert_eq(got.bytes, rows * features * 8 + rows * outputs * 8);
    cr_assert_eq(memcmp(X2, X, (size_t)(rows * features) * 8), 0);
    cr_assert_eq(memcmp(Y2, Y, (size_t)(rows * outputs) * 8), 0);
    free(X2);
    free(Y2);
    free(X);
    free(Y);
    store_close(s);
}

Test(store, dataset_owner_isolation_list_delete_bytes)
{
    store *s = open_ok(tmpdir);
    put_small(s, "ds_a1", "alice");
    put_small(s, "ds_b1", "bob");
    put_small(s, "ds_a2", "alice");
    store_error err;
    store_dataset_meta m;
    double *X, *Y;
    int32_t *l;
    cr_assert_eq(store_dataset_get(s, "bob", "ds_a1", &m, &err), STORE_NOT_FOUND);
    cr_assert_eq(store_dataset_load(s, "bob", "ds_a1", &m, &X, &l, &Y, &err), STORE_NOT_FOUND);
    cr_assert_null(X);
    cr_assert_eq(store_dataset_delete(s, "bob", "ds_a1", &err), STORE_NOT_FOUND);
    cr_assert_eq(store_dataset_get(s, "alice", "ds_nope", &m, &err), STORE_NOT_FOUND);

    store_dataset_meta *v;
    size_t n;
    int64_t next;
    cr_assert_eq(store_dataset_list(s, "alice", 0, 10, &v, &n, &next, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_eq(next, 0);
    cr_assert_str_eq(v[0].id, "ds_a2"); /* newest first */
    cr_assert_str_eq(v[1].id, "ds_a1");
    free(v);
    /* a page of one, then the rest from its cursor */
    cr_assert_eq(store_dataset_list(s, "alice", 0, 1, &v, &n, &next, &err), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(v[0].id, "ds_a2");
    cr_assert_gt(next, 0);
    free(v);
    cr_assert_eq(store_dataset_list(s, "alice", next, 1, &v, &n, &next, &err), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(v[0].id, "ds_a1");
    cr_assert_eq(next, 0);
    free(v);
    cr_assert_eq(store_dataset_list(s, "carol", 0, 10, &v, &n, &next, &err), 0);
    cr_assert_eq(n, 0);
    free(v);

    int64_t bytes;
    cr_assert_eq(store_dataset_bytes(s, "alice", &bytes, &err), 0);
    cr_assert_eq(bytes, 2 * (12 * 8 + 4 * 4));
    cr_assert_eq(store_dataset_bytes(s, "carol", &bytes, &err), 0);
    cr_assert_eq(bytes, 0);

    /* duplicate id */
    store_dataset_meta dup;
    fill_meta(&dup, "ds_a1", "alice", 1, 1, 1, 1);
    double x1 = 1;
    int32_t y1 = 0;
    cr_assert_eq(store_dataset_put(s, &dup, &x1, &y1, NULL, &err), STORE_CONFLICT);

    cr_assert_eq(store_dataset_delete(s, "alice", "ds_a1", &err), 0, "%s", err.msg);
    cr_assert_eq(store_dataset_get(s, "alice", "ds_a1", &m, &err), STORE_NOT_FOUND);
    cr_assert_eq(sql_int(tmpdir, "SELECT count(*) FROM dataset_chunks WHERE dataset_id='ds_a1'"),
                 0);
    cr_assert_eq(store_dataset_bytes(s, "alice", &bytes, &err), 0);
    cr_assert_eq(bytes, 12 * 8 + 4 * 4);
    cr_assert_eq(store_dataset_get(s, "bob", "ds_b1", &m, &err), 0);
    store_close(s);
}

Test(store, dataset_sizes_checked_before_anything)
{
    store *s = open_ok(tmpdir);
    store_dataset_meta m;
    fill_meta(&m, "ds_huge", "", INT64_MAX / 4, 1000, 1, 1);
    double x = 0;
    int32_t y = 0;
    store_error err;
    cr_assert_eq(store_dataset_put(s, &m, &x, &y, NULL, &err), STORE_CONFLICT);
    fill_meta(&m, "ds_zero", "", 0, 3, 1, 1);
    cr_assert_eq(store_dataset_put(s, &m, &x, &y, NULL, &err), STORE_CONFLICT);
    cr_assert_eq(sql_int(tmpdir, "SELECT count(*) FROM datasets"), 0);
    store_close(s);
}

Test(store, dataset_in_use_cannot_be_deleted)
{
    store *s = open_ok(tmpdir);
    put_small(s, "ds_1", "");
    store_job j;
    make_job(s, "job_1", "", "ds_1", &j);
    store_error err;
    cr_assert_eq(store_dataset_delete(s, "", "ds_1", &err), STORE_CONFLICT);
    /* a job cannot be made on a missing or foreign dataset */
    store_job bad;
    memset(&bad, 0, sizeof bad);
    snprintf(bad.id, sizeof bad.id, "job_bad");
    snprintf(bad.dataset_id, sizeof bad.dataset_id, "ds_1");
    snprintf(bad.owner, sizeof bad.owner, "mallory");
    bad.spec_json = (char *)"{}";
    cr_assert_eq(store_job_create(s, &bad, NULL, 0, &err), STORE_NOT_FOUND);
    int now = -1;
    cr_assert_eq(store_job_request_cancel(s, "", "job_1", &now, &err), 0);
    cr_assert_eq(now, 1);
    cr_assert_eq(store_dataset_delete(s, "", "ds_1", &err), 0, "%s", err.msg);
    /* the finished job outlives its dataset */
    store_job got;
    cr_assert_eq(store_job_get(s, "", "job_1", &got, &err), 0);
    cr_assert_eq(got.status, JOB_CANCELLED);
    store_job_clear(&got);
    store_close(s);
}

/* ---------------- jobs ---------------- */

Test(store, job_create_get_list_paginate_filter)
{
    store *s = open_ok(tmpdir);
    put_small(s, "ds_1", "alice");
    put_small(s, "ds_2", "bob");
    char id[40];
    int64_t seqs[25];
    for (int i = 0; i < 25; i++) {
        store_job j;
        snprintf(id, sizeof id, "job_%02d", i);
        make_job(s, id, "alice", "ds_1", &j);
        seqs[i] = j.seq;
        cr_assert_eq(j.status, JOB_QUEUED);
        cr_assert_gt(j.created_at, 1600000000000LL);
        if (i)
            cr_assert_gt(seqs[i], seqs[i - 1]);
    }
    store_job bj;
    make_job(s, "job_bob", "bob", "ds_2", &bj);

    store_error err;
    store_job got;
    cr_assert_eq(store_job_get(s, "alice", "job_07", &got, &err), 0, "%s", err.msg);
    cr_assert_str_eq(got.spec_json, "{\"network\":{\"layers\":[3,2]},\"job\":\"job_07\"}");
    cr_assert_str_eq(got.dataset_id, "ds_1");
    cr_assert_eq(got.seq, seqs[7]);
    cr_assert_eq(got.progress.epochs, 10);
    cr_assert(isnan(got.progress.cost));
    cr_assert_eq(got.started_at, 0);
    store_job_clear(&got);
    cr_assert_eq(store_job_get(s, "bob", "job_07", &got, &err), STORE_NOT_FOUND);
    cr_assert_eq(store_job_get(s, "alice", "job_bob", &got, &err), STORE_NOT_FOUND);

    /* pages of 10, newest first */
    int64_t cursor = 0, next;
    int seen = 0;
    for (int page = 0; page < 3; page++) {
        store_job *v;
        size_t n;
        cr_assert_eq(store_job_list(s, "alice", -1, cursor, 10, &v, &n, &next, &err), 0);
        cr_assert_eq(n, page < 2 ? 10u : 5u);
        for (size_t k = 0; k < n; k++, seen++) {
            snprintf(id, sizeof id, "job_%02d", 24 - seen);
            cr_assert_str_eq(v[k].id, id);
        }
        cr_assert_eq(next, page < 2 ? v[n - 1].seq : 0);
        store_jobs_free(v, n);
        cursor = next;
    }
    cr_assert_eq(seen, 25);

    /* status filter: cancel three queued jobs */
    int now;
    cr_assert_eq(store_job_request_cancel(s, "alice", "job_03", &now, &err), 0);
    cr_assert_eq(store_job_request_cancel(s, "alice", "job_11", &now, &err), 0);
    cr_assert_eq(store_job_request_cancel(s, "alice", "job_20", &now, &err), 0);
    store_job *v;
    size_t n;
    cr_assert_eq(store_job_list(s, "alice", JOB_CANCELLED, 0, 2, &v, &n, &next, &err), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(v[0].id, "job_20");
    cr_assert_str_eq(v[1].id, "job_11");
    store_jobs_free(v, n);
    cr_assert_eq(store_job_list(s, "alice", JOB_CANCELLED, next, 2, &v, &n, &next, &err), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(v[0].id, "job_03");
    cr_assert_eq(next, 0);
    store_jobs_free(v, n);

    /* limit clamps to 1..1000 */
    cr_assert_eq(store_job_list(s, "alice", -1, 0, 0, &v, &n, &next, &err), 0);
    cr_assert_eq(n, 1);
    store_jobs_free(v, n);
    cr_assert_eq(store_job_list(s, "alice", -1, 0, 5000, &v, &n, &next, &err), 0);
    cr_assert_eq(n, 25);
    cr_assert_eq(next, 0);
    store_jobs_free(v, n);

    int64_t active, counts[5];
    cr_assert_eq(store_job_count_active(s, "alice", &active, &err), 0);
    cr_assert_eq(active, 22);
    cr_assert_eq(store_job_count_active(s, NULL, &active, &err), 0);
    cr_assert_eq(active, 23);
    cr_assert_eq(store_job_count_by_status(s, counts, &err), 0);
    cr_assert_eq(counts[JOB_QUEUED], 23);
    cr_assert_eq(counts[JOB_CANCELLED], 3);
    cr_assert_eq(counts[JOB_RUNNING], 0);
    store_close(s);
}

Test(store, job_status_names)
{
    const char *names[] = {"queued", "running", "succeeded", "failed", "cancelled"};
    for (int i = 0; i < 5; i++) {
        cr_assert_str_eq(job_status_name((job_status)i), names[i]);
        job_status st;
        cr_assert_eq(job_status_parse(names[i], &st), 0);
        cr_assert_eq((int)st, i);
    }
    job_status st;
    cr_assert_eq(job_status_parse("done", &st), -1);
    cr_assert_eq(job_status_parse(NULL, &st), -1);
    store_job_clear(NULL);
    store_jobs_free(NULL, 0);
}

Test(store, claim_is_fifo_and_release_keeps_order_and_checkpoint)
{
    store *s = open_ok(tmpdir);
    put_small(s, "ds_1", "");
    store_job j;
    make_job(s, "job_a", "", "ds_1", &j);
    make_job(s, "job_b", "", "ds_1", &j);
    make_job(s, "job_c", "", "ds_1", &j);
    store_error err;
    store_job c1, c2;
    cr_assert_eq(store_job_claim(s, "w1", 60000, &c1, &err), 0, "%s", err.msg);
    cr_assert_str_eq(c1.id, "job_a");
    cr_assert_eq(c1.status, JOB_RUNNING);
    cr_assert_gt(c1.started_at, 0);
    int64_t started = c1.started_at;
    cr_assert_eq(store_job_claim(s, "w2", 60000, &c2, &err), 0);
    cr_assert_str_eq(c2.id, "job_b");
    store_job_clear(&c2);

    const char image[] = "checkpoint-image-of-a";
    double theta[3] = {1.5, -0.0, 3.25};
    store_history h = {.first_epoch = 1, .n = 0};
    store_progress p = {.epoch = 1, .epochs = 10, .cost = 0.5, .validation_cost = NAN,
                        .accuracy = NAN, .samples_per_second = 100};
    cr_assert_eq(store_job_checkpoint(s, "job_a", "w1", &h, &p, image, sizeof image, theta, 3,
                                      &err), 0, "%s", err.msg);
    cr_assert_eq(store_job_release(s, "job_a", "w2", &err), STORE_CONFLICT);
    cr_assert_eq(store_job_release(s, "job_a", "w1", &err), 0, "%s", err.msg);
    store_job g;
    cr_assert_eq(store_job_get(s, "", "job_a", &g, &err), 0);
    cr_assert_eq(g.status, JOB_QUEUED);
    store_job_clear(&g);
    /* job_a comes back before job_c: seq order is kept, the first start time too */
    usleep(5000);
    cr_assert_eq(store_job_claim(s, "w3", 60000, &c2, &err), 0);
    cr_assert_str_eq(c2.id, "job_a");
    cr_assert_eq(c2.started_at, started);
    void *buf;
    size_t len;
    cr_assert_eq(store_job_checkpoint_load(s, "job_a", &buf, &len, &err), 0, "%s", err.msg);
    cr_assert_eq(len, sizeof image);
    cr_assert_eq(memcmp(buf, image, len), 0);
    free(buf);
    store_job_clear(&c1);
    store_job_clear(&c2);
    cr_assert_eq(store_job_claim(s, "w1", 60000, &c1, &err), 0);
    cr_assert_str_eq(c1.id, "job_c");
    store_job_clear(&c1);
    cr_assert_eq(store_job_claim(s, "w1", 60000, &c1, &err), STORE_NOT_FOUND);
    store_close(s);
}

/* ---- concurrent claims: threads on two handles, plus another process ---- */

#define N_CLAIM_JOBS 200
typedef struct {
    store *s;
    char worker[16];
    char claimed[N_CLAIM_JOBS][40];
    int n;
    int errors;
} claimer;

static void *claim_loop(void *arg)
{
    claimer *c = arg;
    for (;;) {
        store_job j;
        store_error err;
        int rc = store_job_claim(c->s, c->worker, 600000, &j, &err);
        if (rc == STORE_NOT_FOUND)
            break;
        if (rc != 0) {
            c->errors++;
            continue;
        }
        if (c->n < N_CLAIM_JOBS)
            snprintf(c->claimed[c->n++], 40, "%s", j.id);
        store_job_clear(&j);
        usleep(2000); /* "work", so the others get the lock too */
    }
    return NULL;
}

Test(store, concurrent_claims_never_double_claim)
{
    store *a = open_ok(tmpdir);
    put_small(a, "ds_1", "");
    for (int i = 0; i < N_CLAIM_JOBS; i++) {
        char id[40];
        store_job j;
        snprintf(id, sizeof id, "job_%03d", i);
        make_job(a, id, "", "ds_1", &j);
    }
    store *b = open_ok(tmpdir);

    int fds[2], ready[2], go[2];
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(go), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) { /* another process with its own handle and two threads */
        close(fds[0]);
        store *c = open_ok(tmpdir);
        char byte = 'r';
        if (write(ready[1], &byte, 1) != 1 || read(go[0], &byte, 1) != 1)
            _exit(3);
        static claimer pc[2];
        pthread_t t[2];
        for (int i = 0; i < 2; i++) {
            pc[i].s = c;
            snprintf(pc[i].worker, sizeof pc[i].worker, "P%d", i);
            pthread_create(&t[i], NULL, claim_loop, &pc[i]);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        FILE *f = fdopen(fds[1], "w");
        for (int i = 0; i < 2; i++) {
            for (int k = 0; k < pc[i].n; k++)
                fprintf(f, "%s %s\n", pc[i].worker, pc[i].claimed[k]);
            if (pc[i].errors)
                fprintf(f, "ERR %d\n", pc[i].errors);
        }
        fclose(f);
        store_close(c);
        _exit(0);
    }
    close(fds[1]);
    char byte;
    cr_assert_eq(read(ready[0], &byte, 1), 1);
    cr_assert_eq(write(go[1], "g", 1), 1); /* everybody starts claiming now */
    static claimer cl[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        cl[i].s = i < 2 ? a : b;
        snprintf(cl[i].worker, sizeof cl[i].worker, "%c%d", i < 2 ? 'A' : 'B', i);
        pthread_create(&t[i], NULL, claim_loop, &cl[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);

    static int owner_of[N_CLAIM_JOBS];
    static char owner_name[N_CLAIM_JOBS][16];
    memset(owner_of, 0, sizeof owner_of);
    int total = 0;
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(cl[i].errors, 0, "worker %s had %d errors", cl[i].worker, cl[i].errors);
        for (int k = 0; k < cl[i].n; k++) {
            int idx = atoi(cl[i].claimed[k] + 4);
            cr_assert_eq(owner_of[idx], 0, "%s claimed twice", cl[i].claimed[k]);
            owner_of[idx] = 1;
            snprintf(owner_name[idx], 16, "%s", cl[i].worker);
            total++;
        }
    }
    FILE *f = fdopen(fds[0], "r");
    char w[16], id[40];
    int child = 0;
    while (fscanf(f, "%15s %39s", w, id) == 2) {
        cr_assert_str_neq(w, "ERR", "child worker errors: %s", id);
        int idx = atoi(id + 4);
        cr_assert_eq(owner_of[idx], 0, "%s claimed twice", id);
        owner_of[idx] = 1;
        snprintf(owner_name[idx], 16, "%s", w);
        total++;
        child++;
    }
    fclose(f);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert_eq(total, N_CLAIM_JOBS);
    /* the lease holder recorded in the store is the worker that got the job */
    store_error err;
    int cancel;
    for (int i = 0; i < N_CLAIM_JOBS; i += 17) {
        snprintf(id, sizeof id, "job_%03d", i);
        cr_assert_eq(store_job_renew(b, id, owner_name[i], 600000, &cancel, &err), 0, "%s",
                     err.msg);
        cr_assert_eq(store_job_renew(b, id, "nobody", 600000, &cancel, &err), STORE_CONFLICT);
    }
    cr_log_info("claims: A0 %d, A1 %d, B2 %d, B3 %d, other process %d", cl[0].n, cl[1].n,
                cl[2].n, cl[3].n, child);
    store_close(b);
    store_close(a);
}

Test(store, lease_expiry_lets_another_worker_resume)
{
    store *s = open_ok(tmpdir);
    put_small(s, "ds_1", "");
    store_job j;
    make_job(s, "job_1", "", "ds_1", &j);
    store_error err;
    store_job c;
    /* a 1 s lease: the claim's and the checkpoint's commits (each an fsync) fit in it on a
     * slow disk too (50 ms did not always) */
    cr_assert_eq(store_job_claim(s, "dead", 1000, &c, &err), 0);
    int64_t started = c.started_at;
    store_job_clear(&c);
    double cost[3] = {3.0, 2.0, 1.5}, vcost[3] = {3.1, NAN, 1.6}, acc[3] = {0.1, 0.2, 0.3};
    store_history h = {.first_epoch = 1, .n = 3, .cost = cost, .validation_cost = vcost,
                       .accuracy = acc};
    store_progress p = {.epoch = 3, .epochs = 10, .cost = 1.5, .validation_cost = 1.6,
                        .accuracy = 0.3, .samples_per_second = 1e6};
    double theta[2] = {0.25, -4.0};
    cr_assert_eq(store_job_checkpoint(s, "job_1", "dead", &h, &p, "img3", 4, theta, 2, &err), 0,
                 "%s", err.msg);
    /* not claimable while the lease holds */
    cr_assert_eq(store_job_claim(s, "alive", 60000, &c, &err), STORE_NOT_FOUND);
    usleep(1100 * 1000);
    cr_assert_eq(store_job_claim(s, "alive", 60000, &c, &err), 0, "%s", err.msg);
    cr_assert_str_eq(c.id, "job_1");
    cr_assert_eq(c.started_at, started);
    cr_assert_eq(c.progress.epoch, 3);
    store_job_clear(&c);
    void *img;
    size_t len;
    cr_assert_eq(store_job_checkpoint_load(s, "job_1", &img, &len, &err), 0);
    cr_assert_eq(len, 4);
    cr_assert_eq(memcmp(img, "img3", 4), 0);
    free(img);
    /* the dead worker lost everything it might still try */
    int cancel;
    cr_assert_eq(store_job_renew(s, "job_1", "dead", 60000, &cancel, &err), STORE_CONFLICT);
    cr_assert_eq(store_job_checkpoint(s, "job_1", "dead", &h, &p, "x", 1, theta, 2, &err),
                 STORE_CONFLICT);
    cr_assert_eq(store_job_finish(s, "job_1", "dead", JOB_SUCCEEDED, NULL, NULL, &p, theta, 2,
                                  &err), STORE_CONFLICT);
    cr_assert_eq(store_job_renew(s, "job_1", "alive", 60000, &cancel, &err), 0);
    cr_assert_eq(cancel, 0);
    store_close(s);
}

Test(store, checkpoint_and_history_replace_from_epoch_then_finish)
{
    store *s = open_ok(tmpdir);
    put_small(s, "ds_1", "alice");
    store_job j;
    make_job(s, "job_1", "alice", "ds_1", &j);
    store_error err;
    store_job c;
    cr_assert_eq(store_job_claim(s, "w", 60000, &c, &err), 0);
    store_job_clear(&c);

    double cost[5] = {5, 4, 3, 2, 1}, acc[5] = {0.1, 0.2, 0.3, 0.4, 0.5};
    store_history h = {.first_epoch = 1, .n = 5, .cost = cost, .validation_cost = NULL,
                       .accuracy = acc};
    store_progress p = {.epoch = 5, .epochs = 8, .cost = 1, .validation_cost = NAN,
                        .accuracy = 0.5, .samples_per_second = 10};
    double th1[4] = {1, 2, 3, 4};
    cr_assert_eq(store_job_checkpoint(s, "job_1", "w", &h, &p, "AAAA", 4, th1, 4, &err), 0);

    /* a resumed run redoes epochs 4.. with different numbers */
    double cost2[3] = {2.5, 1.25, 0.75}, vc2[3] = {NAN, 1.5, 0.9};
    store_history h2 = {.first_epoch = 4, .n = 3, .cost = cost2, .validation_cost = vc2,
                        .accuracy = NULL};
    store_progress p2 = {.epoch = 6, .epochs = 8, .cost = 0.75, .validation_cost = 0.9,
                         .accuracy = NAN, .samples_per_second = 20};
    double th2[4] = {-1, -0.0, 5e-324, 7};
    char image2[5000];
    for (size_t i = 0; i < sizeof image2; i++)
        image2[i] = (char)(i * 31);
    cr_assert_eq(store_job_checkpoint(s, "job_1", "w", &h2, &p2, image2, sizeof image2, th2, 4,
                                      &err), 0, "%s", err.msg);

    int64_t *ep;
    double *jc, *jv, *ac;
    size_t n;
    cr_assert_eq(store_job_history(s, "alice", "job_1", &ep, &jc, &jv, &ac, NULL, &n, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(n, 6);
    const double want_c[6] = {5, 4, 3, 2.5, 1.25, 0.75};
    const double want_v[6] = {NAN, NAN, NAN, NAN, 1.5, 0.9};
    const double want_a[6] = {0.1, 0.2, 0.3, NAN, NAN, NAN};
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(ep[i], (int64_t)i + 1);
        cr_assert(same_double(jc[i], want_c[i]), "cost[%zu] = %g", i, jc[i]);
        cr_assert(same_double(jv[i], want_v[i]), "vcost[%zu] = %g", i, jv[i]);
        cr_assert(same_double(ac[i], want_a[i]), "acc[%zu] = %g", i, ac[i]);
    }
    free(ep); free(jc); free(jv); free(ac);
    /* one page: after epoch 2, at most 3 rows (event stream replays read it so) */
    cr_assert_eq(store_job_history_page(s, "alice", "job_1", 2, 3, &ep, &jc, NULL, NULL, NULL,
                                        &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(ep[i], (int64_t)i + 3);
        cr_assert(same_double(jc[i], want_c[i + 2]), "page cost[%zu] = %g", i, jc[i]);
    }
    free(ep); free(jc);
    cr_assert_eq(store_job_history_page(s, "alice", "job_1", 6, 3, &ep, &jc, NULL, NULL, NULL,
                                        &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 0);
    free(ep); free(jc);
    cr_assert_eq(store_job_history(s, "bob", "job_1", &ep, &jc, &jv, &ac, NULL, &n, &err),
                 STORE_NOT_FOUND);

    double *w;
    int64_t np, epoch;
    double wc;
    cr_assert_eq(store_job_weights(s, "alice", "job_1", &w, &np, &epoch, &wc, NULL, &err), 0);
    cr_assert_eq(np, 4);
    cr_assert_eq(epoch, 6);
    cr_assert_eq(wc, 0.75);
    cr_assert_eq(memcmp(w, th2, sizeof th2), 0);
    free(w);
    cr_assert_eq(store_job_weights(s, "bob", "job_1", &w, &np, &epoch, &wc, NULL, &err),
                 STORE_NOT_FOUND);
    void *img;
    size_t len;
    cr_assert_eq(store_job_checkpoint_load(s, "job_1", &img, &len, &err), 0);
    cr_assert_eq(len, sizeof image2);
    cr_assert_eq(memcmp(img, image2, len), 0);
    free(img);
    store_job g;
    cr_assert_eq(store_job_get(s, "alice", "job_1", &g, &err), 0);
    cr_assert_eq(g.progress.epoch, 6);
    cr_assert_eq(g.progress.cost, 0.75);
    cr_assert(isnan(g.progress.accuracy));
    cr_assert_eq(g.progress.samples_per_second, 20);
    store_job_clear(&g);

    /* finish: remaining history, final weights, status; the resume image goes away */
    double cost3[2] = {0.5, 0.25};
    store_history h3 = {.first_epoch = 7, .n = 2, .cost = cost3};
    store_progress p3 = {.epoch = 8, .epochs = 8, .cost = 0.25, .validation_cost = 0.3,
                         .accuracy = 0.99, .samples_per_second = 30};
    double th3[4] = {9, 8, 7, 6};
    cr_assert_eq(store_job_finish(s, "job_1", "w", JOB_SUCCEEDED, NULL, &h3, &p3, th3, 4, &err),
                 0, "%s", err.msg);
    cr_assert_eq(store_job_get(s, "alice", "job_1", &g, &err), 0);
    cr_assert_eq(g.status, JOB_SUCCEEDED);
    cr_assert_geq(g.finished_at, g.started_at);
    cr_assert_gt(g.started_at, 0);
    cr_assert_str_eq(g.error, "");
    cr_assert_eq(g.progress.accuracy, 0.99);
    store_job_clear(&g);
    cr_assert_eq(store_job_weights(s, "alice", "job_1", &w, &np, &epoch, &wc, NULL, &err), 0);
    cr_assert_eq(epoch, 8);
    cr_assert_eq(wc, 0.25);
    cr_assert_eq(memcmp(w, th3, sizeof th3), 0);
    free(w);
    cr_assert_eq(store_job_checkpoint_load(s, "job_1", &img, &len, &err), STORE_NOT_FOUND);
    cr_assert_eq(store_job_history(s, NULL, "job_1", &ep, &jc, &jv, &ac, NULL, &n, &err), 0);
    cr_assert_eq(n, 8);
    cr_assert_eq(jc[7], 0.25);
    free(ep); free(jc); free(jv); free(ac);
    /* the lease is gone with the job's end */
    int cancel;
    cr_assert_eq(store_job_renew(s, "job_1", "w", 1000, &cancel, &err), STORE_CONFLICT);
    cr_assert_eq(store_job_claim(s, "w", 60000, &c, &err), STORE_NOT_FOUND);

    /* delete removes history and checkpoint rows */
    cr_assert_eq(store_job_delete(s, "bob", "job_1", &err), STORE_NOT_FOUND);
    cr_assert_eq(store_job_delete(s, "alice", "job_1", &err), 0, "%s", err.msg);
    cr_assert_eq(store_job_get(s, "alice", "job_1", &g, &err), STORE_NOT_FOUND);
    cr_assert_eq(sql_int(tmpdir, "SELECT count(*) FROM job_history"), 0);
    cr_assert_eq(sql_int(tmpdir, "SELECT count(*) FROM job_checkpoints"), 0);
    store_close(s);
}

Test(store, failed_job_keeps_last_checkpoint_weights_and_error)
{
    store *s = open_ok(tmpdir);
    put_small(s, "ds_1", "");
    store_job j, c;
    make_job(s, "job_1", "", "ds_1", &j);
    store_error err;
    double *w;
    int64_t np, epoch;
    double wc;
    cr_assert_eq(store_job_weights(s, "", "job_1", &w, &np, &epoch, &wc, NULL, &err),
                 STORE_NOT_FOUND);
    cr_assert_eq(store_job_claim(s, "w", 60000, &c, &err), 0);
    store_job_clear(&c);
    double th[2] = {1, 2};
    store_progress p = {.epoch = 11, .epochs = 20, .cost = 0.5, .validation_cost = NAN,
                        .accuracy = NAN, .samples_per_second = NAN};
    cr_assert_eq(store_job_checkpoint(s, "job_1", "w", NULL, &p, "i", 1, th, 2, &err), 0);
    const char *why = "cost became NaN at epoch 12: lower the learning rate";
    cr_assert_eq(store_job_finish(s, "job_1", "w", JOB_FAILED, why, NULL, NULL, NULL, 0, &err),
                 0, "%s", err.msg);
    store_job g;
    cr_assert_eq(store_job_get(s, "", "job_1", &g, &err), 0);
    cr_assert_eq(g.status, JOB_FAILED);
    cr_assert_str_eq(g.error, why);
    store_job_clear(&g);
    cr_assert_eq(store_job_weights(s, "", "job_1", &w, &np, &epoch, &wc, NULL, &err), 0);
    cr_assert_eq(epoch, 11);
    cr_assert_eq(np, 2);
    cr_assert_eq(w[1], 2.0);
    free(w);
    store_close(s);
}

Test(store, cancel_semantics)
{
    store *s = open_ok(tmpdir);
    put_small(s, "ds_1", "alice");
    store_job j, c;
    make_job(s, "job_q", "alice", "ds_1", &j);
    make_job(s, "job_r", "alice", "ds_1", &j);
    store_error err;
    /* job_q claimed first (FIFO), so make job_r the queued one: claim once */
    cr_assert_eq(store_job_claim(s, "w", 60000, &c, &err), 0);
    cr_assert_str_eq(c.id, "job_q");
    store_job_clear(&c);

    int now = -1;
    cr_assert_eq(store_job_request_cancel(s, "bob", "job_r", &now, &err), STORE_NOT_FOUND);
    cr_assert_eq(store_job_request_cancel(s, "alice", "job_r", &now, &err), 0);
    cr_assert_eq(now, 1);
    store_job g;
    cr_assert_eq(store_job_get(s, "alice", "job_r", &g, &err), 0);
    cr_assert_eq(g.status, JOB_CANCELLED);
    cr_assert_gt(g.finished_at, 0);
    store_job_clear(&g);
    cr_assert_eq(store_job_claim(s, "w2", 60000, &c, &err), STORE_NOT_FOUND);

    /* running: only the flag, seen by the worker's renew */
    int cancel = -1;
    cr_assert_eq(store_job_renew(s, "job_q", "w", 60000, &cancel, &err), 0);
    cr_assert_eq(cancel, 0);
    cr_assert_eq(store_job_request_cancel(s, "alice", "job_q", &now, &err), 0);
    cr_assert_eq(now, 0);
    cr_assert_eq(store_job_get(s, "alice", "job_q", &g, &err), 0);
    cr_assert_eq(g.status, JOB_RUNNING);
    cr_assert_eq(g.cancel_requested, 1);
    store_job_clear(&g);
    cr_assert_eq(store_job_renew(s, "job_q", "w", 60000, &cancel, &err), 0);
    cr_assert_eq(cancel, 1);
    cr_assert_eq(store_job_finish(s, "job_q", "w", JOB_CANCELLED, NULL, NULL, NULL, NULL, 0,
                                  &err), 0);
    /* final: unchanged */
    cr_assert_eq(store_job_request_cancel(s, "alice", "job_q", &now, &err), 0);
    cr_assert_eq(now, 0);
    cr_assert_eq(store_job_get(s, "alice", "job_q", &g, &err), 0);
    cr_assert_eq(g.status, JOB_CANCELLED);
    store_job_clear(&g);
    /* finish needs a final status */
    cr_assert_eq(store_job_finish(s, "job_q", "w", JOB_RUNNING, NULL, NULL, NULL, NULL, 0, &err),
                 STORE_CONFLICT);
    store_close(s);
}

Test(store, expired_lease_with_cancel_requested_ends_cancelled)
{
    store *s = open_ok(tmpdir);
    put_small(s, "ds_1", "");
    store_job j, c;
    make_job(s, "job_1", "", "ds_1", &j);
    make_job(s, "job_2", "", "ds_1", &j);
    store_error err;
    cr_assert_eq(store_job_claim(s, "dead", 30, &c, &err), 0);
    store_job_clear(&c);
    int now;
    cr_assert_eq(store_job_request_cancel(s, "", "job_1", &now, &err), 0);
    cr_assert_eq(now, 0);
    usleep(60 * 1000);
    cr_assert_eq(store_job_claim(s, "w", 60000, &c, &err), 0);
    cr_assert_str_eq(c.id, "job_2"); /* job_1 was cancelled, not handed out */
    store_job_clear(&c);
    store_job g;
    cr_assert_eq(store_job_get(s, "", "job_1", &g, &err), 0);
    cr_assert_eq(g.status, JOB_CANCELLED);
    store_job_clear(&g);
    /* a released job with a pending cancel ends cancelled too */
    cr_assert_eq(store_job_request_cancel(s, "", "job_2", &now, &err), 0);
    cr_assert_eq(store_job_release(s, "job_2", "w", &err), 0);
    cr_assert_eq(store_job_get(s, "", "job_2", &g, &err), 0);
    cr_assert_eq(g.status, JOB_CANCELLED);
    store_job_clear(&g);
    store_close(s);
}

/* ---- start-up recovery: compare-and-set lease expiry, and who counts as dead ---- */

Test(store, expire_lease_is_compare_and_set_and_keeps_everything)
{
    store *s = open_ok(tmpdir);
    put_small(s, "ds_1", "");
    store_job j, c;
    make_job(s, "job_1", "", "ds_1", &j);
    int64_t seq1 = j.seq;
    make_job(s, "job_2", "", "ds_1", &j);
    make_job(s, "job_3", "", "ds_1", &j);
    store_error err;
    const char *dead = "hostA:4242:00000000deadbeef:0";
    int64_t before = (int64_t)time(NULL) * 1000;
    cr_assert_eq(store_job_claim(s, dead, 600000, &c, &err), 0, "%s", err.msg);
    cr_assert_str_eq(c.id, "job_1");
    cr_assert_str_eq(c.lease_owner, dead); /* the claim reports its holder and lease end */
    cr_assert_geq(c.lease_until, before + 600000);
    int64_t started = c.started_at, lease_until = c.lease_until;
    store_job_clear(&c);
    cr_assert_eq(store_job_claim(s, "hostB:7:ffff:1", 600000, &c, &err), 0);
    cr_assert_str_eq(c.id, "job_2");
    store_job_clear(&c);
    double cost[2] = {2.5, 1.25}, theta[3] = {0.5, -0.0, 7.0};
    store_history h = {.first_epoch = 1, .n = 2, .cost = cost};
    store_progress p = {.epoch = 2, .epochs = 10, .cost = 1.25, .validation_cost = NAN,
                        .accuracy = NAN, .samples_per_second = NAN};
    cr_assert_eq(store_job_checkpoint(s, "job_1", dead, &h, &p, "img-2", 5, theta, 3, &err), 0,
                 "%s", err.msg);

    /* the running jobs' leases, in queue order; queued jobs are not listed */
    store_lease *v = NULL;
    size_t n = 0;
    cr_assert_eq(store_job_leases(s, &v, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(v[0].id, "job_1");
    cr_assert_str_eq(v[0].lease_owner, dead);
    cr_assert_eq(v[0].lease_until, lease_until);
    cr_assert_str_eq(v[1].id, "job_2");
    cr_assert_str_eq(v[1].lease_owner, "hostB:7:ffff:1");
    free(v);

    /* wrong owner: nothing changes */
    cr_assert_eq(store_job_expire_lease(s, "job_1", "hostA:4242:00000000deadbeee:0", &err),
                 STORE_CONFLICT);
    cr_assert_eq(store_job_expire_lease(s, "job_1", "hostB:7:ffff:1", &err), STORE_CONFLICT);
    store_job g;
    cr_assert_eq(store_job_get(s, "", "job_1", &g, &err), 0);
    cr_assert_eq(g.status, JOB_RUNNING);
    cr_assert_str_eq(g.lease_owner, dead);
    cr_assert_eq(g.lease_until, lease_until);
    store_job_clear(&g);
    /* no such job; a job that is not running */
    cr_assert_eq(store_job_expire_lease(s, "job_nope", dead, &err), STORE_NOT_FOUND);
    cr_assert_eq(store_job_expire_lease(s, "job_3", dead, &err), STORE_CONFLICT);

    /* right owner: queued at once, same seq, start time, progress, history and checkpoint */
    cr_assert_eq(store_job_expire_lease(s, "job_1", dead, &err), 0, "%s", err.msg);
    cr_assert_eq(store_job_get(s, "", "job_1", &g, &err), 0);
    cr_assert_eq(g.status, JOB_QUEUED);
    cr_assert_eq(g.seq, seq1);
    cr_assert_eq(g.started_at, started);
    cr_assert_eq(g.progress.epoch, 2);
    cr_assert_str_eq(g.lease_owner, "");
    cr_assert_eq(g.lease_until, 0);
    store_job_clear(&g);
    /* the dead holder can no longer write, and a second expiry is a conflict */
    cr_assert_eq(store_job_checkpoint(s, "job_1", dead, &h, &p, "x", 1, theta, 3, &err),
                 STORE_CONFLICT);
    cr_assert_eq(store_job_expire_lease(s, "job_1", dead, &err), STORE_CONFLICT);
    /* claimable at once (its 600 s lease had not run out), before job_3: queue order kept */
    cr_assert_eq(store_job_claim(s, "hostA:5000:0123456789abcdef:0", 15000, &c, &err), 0);
    cr_assert_str_eq(c.id, "job_1");
    cr_assert_eq(c.started_at, started);
    store_job_clear(&c);
    void *img;
    size_t len;
    cr_assert_eq(store_job_checkpoint_load(s, "job_1", &img, &len, &err), 0, "%s", err.msg);
    cr_assert_eq(len, 5);
    cr_assert_eq(memcmp(img, "img-2", 5), 0);
    free(img);
    int64_t *e;
    double *hc, *hv, *ha;
    cr_assert_eq(store_job_history(s, "", "job_1", &e, &hc, &hv, &ha, NULL, &n, &err), 0);
    cr_assert_eq(n, 2);
    cr_assert(same_double(hc[0], 2.5) && same_double(hc[1], 1.25));
    free(e);
    free(hc);
    free(hv);
    free(ha);
    double *w;
    int64_t np, we;
    double wc;
    cr_assert_eq(store_job_weights(s, "", "job_1", &w, &np, &we, &wc, NULL, &err), 0);
    cr_assert_eq(np, 3);
    cr_assert_eq(memcmp(w, theta, sizeof theta), 0);
    free(w);

    /* a pending cancel: the expired job ends cancelled instead of running again */
    int now;
    cr_assert_eq(store_job_request_cancel(s, "", "job_2", &now, &err), 0);
    cr_assert_eq(store_job_expire_lease(s, "job_2", "hostB:7:ffff:1", &err), 0);
    cr_assert_eq(store_job_get(s, "", "job_2", &g, &err), 0);
    cr_assert_eq(g.status, JOB_CANCELLED);
    store_job_clear(&g);
    store_close(s);
}

/* A child that sleeps until killed: a live process that is not us. */
static pid_t spawn_sleeper(void)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives a failed test */
        for (;;)
            pause();
    }
    return pid;
}

/* A pid that no process has any more (a child that exited and was reaped). */
static pid_t gone_pid(void)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0)
        _exit(0);
    cr_assert_eq(waitpid(pid, NULL, 0), pid);
    return pid;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Test(store, lease_owner_parse_and_liveness)
{
    char host[80], boot[24], h[128], b[64];
    long pid;
    int w;
    jobs_lease_self(host, sizeof host, boot, sizeof boot);
    cr_assert_eq(strlen(boot), 16);
    cr_assert_null(strchr(host, ':'));
    char boot2[24], host2[80];
    jobs_lease_self(host2, sizeof host2, boot2, sizeof boot2);
    cr_assert_str_eq(host2, host);
    cr_assert_str_neq(boot2, boot, "the boot id is random per process start");

    cr_assert_eq(jobs_lease_owner_parse("vm/1a2b3c4d:123:00ff:3", h, sizeof h, &pid, b, sizeof b,
                                        &w), 0);
    cr_assert_str_eq(h, "vm/1a2b3c4d");
    cr_assert_eq(pid, 123);
    cr_assert_str_eq(b, "00ff");
    cr_assert_eq(w, 3);
    /* a host with ':' in it (split from the right) */
    cr_assert_eq(jobs_lease_owner_parse("fe80::1:77:ab:0", h, sizeof h, &pid, b, sizeof b, &w), 0);
    cr_assert_str_eq(h, "fe80::1");
    cr_assert_eq(pid, 77);
    const char *bad[] = {"", "w1", "dead", "a:b:c", "h:0:b:0", "h:-3:b:0", "h:12x:b:0", "h:1::0",
                         ":1:b:0", "h:1:b:", "h:1:b:x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(jobs_lease_owner_parse(bad[i], h, sizeof h, &pid, b, sizeof b, &w), -1,
                     "%s", bad[i]);

    char owner[160];
    const char *why;
    pid_t me = getpid();
    int64_t now = wall_ms();
    /* this very process: alive; this pid with another boot id: a restarted container */
    snprintf(owner, sizeof owner, "%s:%d:%s:0", host, (int)me, boot);
    cr_assert_eq(jobs_lease_owner_dead(owner, host, me, boot, now, &why), 0);
    snprintf(owner, sizeof owner, "%s:%d:%s:1", host, (int)me, boot2);
    cr_assert_eq(jobs_lease_owner_dead(owner, host, me, boot, now, &why), 1);
    cr_assert_str_eq(why, "previous_process_same_pid");

    /* a live process of this host holding a lease it renewed just now: never dead */
    pid_t live = spawn_sleeper();
    usleep(20 * 1000);
    snprintf(owner, sizeof owner, "%s:%d:%s:0", host, (int)live, boot2);
    cr_assert_eq(jobs_lease_owner_dead(owner, host, me, boot, wall_ms(), &why), 0);
    cr_assert_str_eq(why, "process_alive");
    cr_assert_eq(jobs_lease_owner_dead(owner, host, me, boot, 0, &why), 0); /* unknown renewal */
    /* ...but a process that started well after the lease's last renewal cannot be its holder:
     * the pid was reused */
    cr_assert_eq(jobs_lease_owner_dead(owner, host, me, boot, now - 60000, &why), 1);
    cr_assert_str_eq(why, "pid_reused");
    /* the same pid on another host says nothing about that host */
    snprintf(owner, sizeof owner, "otherhost:%d:%s:0", (int)me, boot2);
    cr_assert_eq(jobs_lease_owner_dead(owner, host, me, boot, now, &why), 0);
    cr_assert_str_eq(why, "other_host");
    kill(live, SIGKILL);
    waitpid(live, NULL, 0);
    /* once it is gone (and reaped), it is dead */
    snprintf(owner, sizeof owner, "%s:%d:%s:0", host, (int)live, boot2);
    cr_assert_eq(jobs_lease_owner_dead(owner, host, me, boot, now, &why), 1);
    cr_assert_str_eq(why, "process_gone");
    /* pid 1 always exists: alive unless it is us */
    snprintf(owner, sizeof owner, "%s:1:%s:0", host, boot2);
    cr_assert_eq(jobs_lease_owner_dead(owner, host, me, boot, now, &why), 0);
    cr_assert_eq(jobs_lease_owner_dead(owner, host, 1, boot, now, &why), 1);
    cr_assert_eq(jobs_lease_owner_dead("w1", host, me, boot, now, &why), 0);
    cr_assert_str_eq(why, "unknown_owner");
}

/* A process that exited but was not reaped yet (a zombie: what `kill -9` leaves until its parent
 * waits) still answers kill(pid, 0); it can renew nothing, so it is dead. A live child next to
 * it stays alive. */
Test(store, zombie_lease_holder_is_dead)
{
    char host[80], boot[24], other_boot[24], owner[160];
    const char *why = NULL;
    jobs_lease_self(host, sizeof host, boot, sizeof boot);
    jobs_lease_self(host, sizeof host, other_boot, sizeof other_boot);
    pid_t zombie = fork();
    cr_assert_neq(zombie, -1);
    if (zombie == 0)
        _exit(0);
    /* wait until it has exited, without reaping it */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    cr_assert_eq(waitid(P_PID, (id_t)zombie, &si, WEXITED | WNOWAIT), 0);
    cr_assert_eq(kill(zombie, 0), 0, "a zombie still answers kill(pid, 0)");
    pid_t live = spawn_sleeper();
    int64_t now = wall_ms();

    snprintf(owner, sizeof owner, "%s:%d:%s:0", host, (int)zombie, other_boot);
    cr_assert_eq(jobs_lease_owner_dead(owner, host, getpid(), boot, now, &why), 1);
    cr_assert_str_eq(why, "process_gone");
    snprintf(owner, sizeof owner, "%s:%d:%s:0", host, (int)live, other_boot);
    cr_assert_eq(jobs_lease_owner_dead(owner, host, getpid(), boot, now, &why), 0);
    cr_assert_str_eq(why, "process_alive");

    kill(live, SIGKILL);
    waitpid(live, NULL, 0);
    cr_assert_eq(waitpid(zombie, NULL, 0), zombie);
}

Test(store, startup_recovery_frees_only_provably_dead_leases)
{
    store *s = open_ok(tmpdir);
    put_small(s, "ds_1", "");
    char host[80], boot[24], other_boot[24], tmp_host[80];
    jobs_lease_self(host, sizeof host, boot, sizeof boot);
    jobs_lease_self(tmp_host, sizeof tmp_host, other_boot, sizeof other_boot);
    pid_t me = getpid(), live = spawn_sleeper(), gone = gone_pid();
    char owners[5][160];
    snprintf(owners[0], 160, "%s:%d:%s:0", host, (int)live, other_boot); /* alive here */
    snprintf(owners[1], 160, "%s:%d:%s:0", host, (int)gone, other_boot); /* gone */
    snprintf(owners[2], 160, "%s:%d:%s:1", host, (int)me, other_boot);   /* my predecessor */
    snprintf(owners[3], 160, "elsewhere:%d:%s:0", (int)gone, other_boot); /* another host */
    snprintf(owners[4], 160, "%s:%d:%s:2", host, (int)me, boot);         /* me */
    const int want_queued[5] = {0, 1, 1, 0, 0};
    store_error err;
    int64_t until[5];
    for (int i = 0; i < 5; i++) {
        char id[40];
        store_job j, c;
        snprintf(id, sizeof id, "job_%d", i);
        make_job(s, id, "", "ds_1", &j);
        cr_assert_eq(store_job_claim(s, owners[i], 15000, &c, &err), 0, "%s", err.msg);
        cr_assert_str_eq(c.id, id);
        until[i] = c.lease_until;
        store_job_clear(&c);
    }
    int recovered = -1;
    cr_assert_eq(jobs_recover_dead_leases(s, host, me, boot, 15000, &recovered), 0);
    cr_assert_eq(recovered, 2);
    for (int i = 0; i < 5; i++) {
        char id[40];
        store_job g;
        snprintf(id, sizeof id, "job_%d", i);
        cr_assert_eq(store_job_get(s, "", id, &g, &err), 0);
        if (want_queued[i]) {
            cr_assert_eq(g.status, JOB_QUEUED, "%s (%s)", id, owners[i]);
        } else { /* untouched: same holder, same lease */
            cr_assert_eq(g.status, JOB_RUNNING, "%s (%s)", id, owners[i]);
            cr_assert_str_eq(g.lease_owner, owners[i]);
            cr_assert_eq(g.lease_until, until[i]);
        }
        store_job_clear(&g);
    }
    /* the live holder keeps working: it can renew its lease */
    int cancel;
    cr_assert_eq(store_job_renew(s, "job_0", owners[0], 15000, &cancel, &err), 0);
    /* a second pass finds nothing more to do */
    cr_assert_eq(jobs_recover_dead_leases(s, host, me, boot, 15000, &recovered), 0);
    cr_assert_eq(recovered, 0);
    kill(live, SIGKILL);
    waitpid(live, NULL, 0);
    store_close(s);
}

Test(store, theta0_and_delete_running_job)
{
    store *s = open_ok(tmpdir);
    put_small(s, "ds_1", "");
    store_job j;
    memset(&j, 0, sizeof j);
    snprintf(j.id, sizeof j.id, "job_warm");
    snprintf(j.dataset_id, sizeof j.dataset_id, "ds_1");
    j.spec_json = (char *)"{}";
    double th0[5] = {0.5, -0.0, 1e-310, -2, 3};
    store_error err;
    cr_assert_eq(store_job_create(s, &j, th0, 5, &err), 0, "%s", err.msg);
    store_job cold;
    make_job(s, "job_cold", "", "ds_1", &cold);
    double *t;
    int64_t n;
    cr_assert_eq(store_job_theta0(s, "job_warm", &t, &n, &err), 0);
    cr_assert_eq(n, 5);
    cr_assert_eq(memcmp(t, th0, sizeof th0), 0);
    free(t);
    cr_assert_eq(store_job_theta0(s, "job_cold", &t, &n, &err), 0);
    cr_assert_null(t);
    cr_assert_eq(n, 0);
    cr_assert_eq(store_job_theta0(s, "job_none", &t, &n, &err), STORE_NOT_FOUND);

    /* deleting a running job: the worker finds out on its next write */
    store_job c;
    cr_assert_eq(store_job_claim(s, "w", 60000, &c, &err), 0);
    store_job_clear(&c);
    cr_assert_eq(store_job_delete(s, "", "job_warm", &err), 0);
    int cancel;
    cr_assert_eq(store_job_renew(s, "job_warm", "w", 1000, &cancel, &err), STORE_CONFLICT);
    cr_assert_eq(store_job_checkpoint(s, "job_warm", "w", NULL, NULL, "x", 1, th0, 5, &err),
                 STORE_CONFLICT);
    store_close(s);
}

/* ---------------- persistence and bad files ---------------- */

Test(store, reopen_keeps_everything_byte_identical)
{
    double *X = awkward_doubles(300);
    double *Y = awkward_doubles(100 * 2);
    double th[6] = {-0.0, 5e-324, 1, 2, 3, 4};
    {
        store *s = open_ok(tmpdir);
        store_dataset_meta m;
        fill_meta(&m, "ds_keep", "k", 100, 3, 2, 0);
        store_error err;
        cr_assert_eq(store_dataset_put(s, &m, X, NULL, Y, &err), 0);
        store_job j, c;
        make_job(s, "job_1", "k", "ds_keep", &j);
        make_job(s, "job_2", "k", "ds_keep", &j);
        cr_assert_eq(store_job_claim(s, "w", 60000, &c, &err), 0);
        store_job_clear(&c);
        double cost[2] = {1.0 / 3.0, 0.1};
        store_history h = {.first_epoch = 1, .n = 2, .cost = cost};
        store_progress p = {.epoch = 2, .epochs = 5, .cost = 0.1, .validation_cost = NAN,
                            .accuracy = NAN, .samples_per_second = 1};
        cr_assert_eq(store_job_checkpoint(s, "job_1", "w", &h, &p, "IMAGE", 5, th, 6, &err), 0);
        store_close(s);
    }
    store *s = open_ok(tmpdir);
    store_error err;
    store_dataset_meta m;
    double *X2, *Y2;
    int32_t *l2;
    cr_assert_eq(store_dataset_load(s, "k", "ds_keep", &m, &X2, &l2, &Y2, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(memcmp(X2, X, 300 * 8), 0);
    cr_assert_eq(memcmp(Y2, Y, 200 * 8), 0);
    free(X2);
    free(Y2);
    double *w;
    int64_t np, epoch;
    double wc;
    cr_assert_eq(store_job_weights(s, "k", "job_1", &w, &np, &epoch, &wc, NULL, &err), 0);
    cr_assert_eq(memcmp(w, th, sizeof th), 0);
    cr_assert_eq(epoch, 2);
    free(w);
    int64_t *ep;
    double *jc, *jv, *ac;
    size_t n;
    cr_assert_eq(store_job_history(s, "k", "job_1", &ep, &jc, &jv, &ac, NULL, &n, &err), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(jc[0], 1.0 / 3.0);
    free(ep); free(jc); free(jv); free(ac);
    void *img;
    size_t len;
    cr_assert_eq(store_job_checkpoint_load(s, "job_1", &img, &len, &err), 0);
    cr_assert_eq(len, 5);
    cr_assert_eq(memcmp(img, "IMAGE", 5), 0);
    free(img);
    store_job g;
    cr_assert_eq(store_job_get(s, "k", "job_1", &g, &err), 0);
    cr_assert_eq(g.status, JOB_RUNNING); /* still leased: a restart claims it once expired */
    store_job_clear(&g);
    cr_assert_eq(store_job_get(s, "k", "job_2", &g, &err), 0);
    cr_assert_eq(g.status, JOB_QUEUED);
    store_job_clear(&g);
    cr_assert_eq(store_ping(s, &err), 0);
    store_close(s);
    free(X);
    free(Y);
#if STORE_TEST_POSTGRES
    cr_assert_eq(sql_int(tmpdir, "SELECT value::bigint FROM backpropd_meta "
                                 "WHERE key = 'schema_version'"), 3);
#else
    cr_assert_eq(sql_int(tmpdir, "PRAGMA user_version"), 5);
    cr_assert_eq(sql_int(tmpdir, "PRAGMA application_id"), 0x42507264);
#endif
}

/* A job with this training text, claimed by worker w and checkpointed after one epoch whose
 * accuracy is acc (as version 1 wrote it: the only accuracy column). */
static void job_with_accuracy(store *s, const char *id, const char *training, double acc)
{
    store_job j;
    memset(&j, 0, sizeof j);
    snprintf(j.id, sizeof j.id, "%s", id);
    snprintf(j.owner, sizeof j.owner, "o");
    snprintf(j.dataset_id, sizeof j.dataset_id, "ds_m");
    char spec[160];
    snprintf(spec, sizeof spec, "{\"network\":{\"layers\":[3,2]},\"training\":%s}", training);
    j.spec_json = spec;
    j.progress.cost = j.progress.validation_cost = j.progress.accuracy = NAN;
    j.progress.samples_per_second = NAN;
    store_error err;
    cr_assert_eq(store_job_create(s, &j, NULL, 0, &err), 0, "%s", err.msg);
    j.spec_json = NULL;
    store_job c;
    cr_assert_eq(store_job_claim(s, "w", 60000, &c, &err), 0, "%s", err.msg);
    cr_assert_str_eq(c.id, id);
    store_job_clear(&c);
    double cost = 0.5, th[2] = {1, 2};
    store_history h = {.first_epoch = 1, .n = 1, .cost = &cost, .accuracy = &acc};
    store_progress p = {.epoch = 1, .epochs = 10, .cost = 0.5, .validation_cost = NAN,
                        .accuracy = acc, .validation_accuracy = NAN, .samples_per_second = 1};
    cr_assert_eq(store_job_checkpoint(s, id, "w", &h, &p, "img", 3, th, 2, &err), 0, "%s",
                 err.msg);
}

#if !STORE_TEST_POSTGRES /* SQLite's own */
/* A version-1 file: its accuracy was the held-out rows' when the job had a validation split,
 * so migration 2 moves it to validation_accuracy (progress and history) for those jobs only,
 * and the new columns read as "none". The version-1 file is made from a current one by
 * dropping what versions 2 to 5 added. */
Test(store, migration_2_moves_held_out_accuracy)
{
    store *s = open_ok(tmpdir);
    put_small(s, "ds_m", "o");
    job_with_accuracy(s, "job_split", "{\"validation_split\":0.25}", 0.75);
    job_with_accuracy(s, "job_plain", "{\"validation_split\":0}", 0.5);
    store_close(s);
    char path[400];
    snprintf(path, sizeof path, "%s/backpropd.db", tmpdir);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    cr_assert_eq(sqlite3_exec(db,
                              "DROP INDEX datasets_id_owner;"
                              "DROP INDEX jobs_id_owner;"
                              "ALTER TABLE jobs DROP COLUMN metrics_json;"
                              "ALTER TABLE datasets DROP COLUMN classes_json;"
                              "ALTER TABLE jobs DROP COLUMN p_validation_accuracy;"
                              "ALTER TABLE jobs DROP COLUMN best_epoch;"
                              "ALTER TABLE jobs DROP COLUMN stop_reason;"
                              "ALTER TABLE job_history DROP COLUMN validation_accuracy;"
                              "ALTER TABLE job_checkpoints DROP COLUMN validation_cost;"
                              "DROP TABLE idempotency;"
                              "ALTER TABLE jobs DROP COLUMN labels;"
                              "PRAGMA user_version = 1;",
                              NULL, NULL, &msg),
                 SQLITE_OK, "%s", msg ? msg : "");
    sqlite3_close(db);
    cr_assert_eq(sql_int(tmpdir, "PRAGMA user_version"), 1);

    s = open_ok(tmpdir);
    cr_assert_eq(sql_int(tmpdir, "PRAGMA user_version"), 5);
    const char *ids[] = {"job_split", "job_plain"};
    for (int k = 0; k < 2; k++) {
        store_error err;
        store_job g;
        cr_assert_eq(store_job_get(s, "o", ids[k], &g, &err), 0, "%s", err.msg);
        double want_acc = k ? 0.5 : NAN, want_vacc = k ? NAN : 0.75;
        cr_assert(same_double(g.progress.accuracy, want_acc), "%s: %g", ids[k],
                  g.progress.accuracy);
        cr_assert(same_double(g.progress.validation_accuracy, want_vacc), "%s: %g", ids[k],
                  g.progress.validation_accuracy);
        cr_assert_eq(g.progress.best_epoch, 0);
        cr_assert_str_eq(g.progress.stop_reason, "");
        store_job_clear(&g);
        int64_t *e = NULL;
        double *hc = NULL, *hv = NULL, *ha = NULL, *hva = NULL;
        size_t n = 0;
        cr_assert_eq(store_job_history(s, "o", ids[k], &e, &hc, &hv, &ha, &hva, &n, &err), 0);
        cr_assert_eq(n, 1);
        cr_assert(same_double(ha[0], want_acc) && same_double(hva[0], want_vacc), "%s", ids[k]);
        free(e);
        free(hc);
        free(hv);
        free(ha);
        free(hva);
        double *w = NULL, wc, wv;
        int64_t np, we;
        cr_assert_eq(store_job_weights(s, "o", ids[k], &w, &np, &we, &wc, &wv, &err), 0);
        cr_assert(we == 1 && wc == 0.5 && isnan(wv));
        free(w);
    }
    store_close(s);
}

#endif

/* best_epoch, stop_reason and the weights' costs go through a checkpoint and the finish; a
 * cancelled or failed job without a stored reason reads "cancelled" / "error". */
Test(store, job_outcome_roundtrip)
{
    store *s = open_ok(tmpdir);
    put_small(s, "ds_m", "o");
    job_with_accuracy(s, "job_es", "{}", 0.5);
    store_error err;
    double th[2] = {3, 4};
    store_progress p = {.epoch = 9, .epochs = 10, .cost = 0.25, .validation_cost = 0.5,
                        .accuracy = 0.8, .validation_accuracy = 0.7, .samples_per_second = 1,
                        .best_epoch = 6, .best_cost = 0.3, .best_validation_cost = 0.4};
    snprintf(p.stop_reason, sizeof p.stop_reason, "early_stopping");
    cr_assert_eq(store_job_finish(s, "job_es", "w", JOB_SUCCEEDED, NULL, NULL, &p, th, 2, &err),
                 0, "%s", err.msg);
    store_job g;
    cr_assert_eq(store_job_get(s, "o", "job_es", &g, &err), 0);
    cr_assert_eq(g.progress.best_epoch, 6);
    cr_assert_str_eq(g.progress.stop_reason, "early_stopping");
    cr_assert_eq(g.progress.validation_accuracy, 0.7);
    store_job_clear(&g);
    double *w = NULL, wc, wv;
    int64_t np, we;
    cr_assert_eq(store_job_weights(s, "o", "job_es", &w, &np, &we, &wc, &wv, &err), 0);
    cr_assert(we == 6 && wc == 0.3 && wv == 0.4 && np == 2 && w[0] == 3 && w[1] == 4);
    free(w);
    /* a queued job cancelled by the store itself */
    store_job q;
    make_job(s, "job_q", "o", "ds_m", &q);
    int now = 0;
    cr_assert_eq(store_job_request_cancel(s, "o", "job_q", &now, &err), 0);
    cr_assert_eq(now, 1);
    cr_assert_eq(store_job_get(s, "o", "job_q", &g, &err), 0);
    cr_assert_str_eq(g.progress.stop_reason, "cancelled");
    cr_assert_eq(g.progress.best_epoch, 0);
    store_job_clear(&g);
    store_close(s);
}

#if !STORE_TEST_POSTGRES /* SQLite's own */
static void write_file(const char *path, const void *data, size_t n, off_t at, int trunc)
{
    int fd = open(path, O_WRONLY | O_CREAT | (trunc ? O_TRUNC : 0), 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, data, n, at), (ssize_t)n);
    close(fd);
}

Test(store, garbage_file_is_refused_with_a_message)
{
    char path[400];
    snprintf(path, sizeof path, "%s/backpropd.db", tmpdir);
    static unsigned char junk[65536];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)rnd64();
    write_file(path, junk, sizeof junk, 0, 1);
    store_error err = {0};
    store *s = store_open(tmpdir, &err);
    cr_assert_null(s);
    cr_assert_eq(err.code, STORE_IO);
    cr_assert(strstr(err.msg, "not a backpropd database"), "%s", err.msg);
    cr_log_info("garbage: %s", err.msg);
}

Test(store, damaged_pages_are_detected_at_open)
{
    store *s = open_ok(tmpdir);
    for (int i = 0; i < 20; i++) {
        char id[40];
        snprintf(id, sizeof id, "ds_%02d", i);
        put_small(s, id, "");
    }
    store_close(s);
    char path[400];
    snprintf(path, sizeof path, "%s/backpropd.db", tmpdir);
    /* keep the header page, scribble over the b-tree pages after it */
    static unsigned char junk[16384 * 4];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)rnd64();
    write_file(path, junk, sizeof junk, 16384, 0);
    store_error err = {0};
    s = store_open(tmpdir, &err);
    cr_assert_null(s);
    cr_assert_eq(err.code, STORE_IO);
    cr_assert(strstr(err.msg, "corrupt") || strstr(err.msg, "malformed"), "%s", err.msg);
    cr_log_info("damaged: %s", err.msg);
}

Test(store, foreign_and_newer_databases_are_refused)
{
    char path[400];
    snprintf(path, sizeof path, "%s/backpropd.db", tmpdir);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "CREATE TABLE users(name TEXT); INSERT INTO users VALUES('x')",
                              NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    store_error err = {0};
    cr_assert_null(store_open(tmpdir, &err));
    cr_assert(strstr(err.msg, "another application"), "%s", err.msg);
    /* the foreign file was not touched */
    cr_assert_eq(sql_int(tmpdir, "SELECT count(*) FROM users"), 1);
    cr_assert_eq(sql_int(tmpdir, "PRAGMA user_version"), 0);

    /* ours, but from a newer version */
    remove(path);
    store *s = open_ok(tmpdir);
    store_close(s);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    cr_assert_null(store_open(tmpdir, &err));
    cr_assert(strstr(err.msg, "newer"), "%s", err.msg);
}

Test(store, open_creates_missing_directories)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s/a/b/c", tmpdir);
    store *s = open_ok(dir);
    store_error err;
    cr_assert_eq(store_ping(s, &err), 0);
    store_close(s);
    cr_assert_eq(sql_int(dir, "PRAGMA application_id"), 0x42507264);
    /* a path that is a file, not a directory */
    char file[400];
    snprintf(file, sizeof file, "%s/plain", tmpdir);
    write_file(file, "x", 1, 0, 1);
    cr_assert_null(store_open(file, &err));
    cr_assert_eq(err.code, STORE_IO);
}

#endif

/* ---------------- threads ---------------- */

typedef struct {
    store *s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int used, release;
} lingering;

static void *linger(void *arg)
{
    lingering *l = arg;
    store_error err;
    store_dataset_meta m;
    int rc = store_dataset_get(l->s, "", "ds_1", &m, &err);
    pthread_mutex_lock(&l->mu);
    l->used = rc == 0 ? 1 : -1;
    pthread_cond_broadcast(&l->cv);
    while (!l->release)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
    return NULL; /* exits after store_close: no destructor may touch the store */
}

static void *short_lived(void *arg)
{
    store *s = arg;
    store_error err;
    int64_t b;
    return (void *)(intptr_t)store_dataset_bytes(s, "", &b, &err);
}

Test(store, thread_connections_close_on_exit_and_on_store_close)
{
    store *s = open_ok(tmpdir);
    put_small(s, "ds_1", "");
    for (int i = 0; i < 50; i++) { /* threads that come and go */
        pthread_t t;
        void *rv;
        pthread_create(&t, NULL, short_lived, s);
        pthread_join(t, &rv);
        cr_assert_eq((intptr_t)rv, 0);
    }
    lingering l = {.s = s};
    pthread_mutex_init(&l.mu, NULL);
    pthread_cond_init(&l.cv, NULL);
    pthread_t t;
    pthread_create(&t, NULL, linger, &l);
    pthread_mutex_lock(&l.mu);
    while (!l.used)
        pthread_cond_wait(&l.cv, &l.mu);
    pthread_mutex_unlock(&l.mu);
    cr_assert_eq(l.used, 1);
    store_close(s);
    pthread_mutex_lock(&l.mu);
    l.release = 1;
    pthread_cond_broadcast(&l.cv);
    pthread_mutex_unlock(&l.mu);
    pthread_join(t, NULL);
    /* and the file is still fine */
    s = open_ok(tmpdir);
    store_close(s);
}

#if !STORE_TEST_POSTGRES /* SQLite's own */
/* ---------------- disk full ---------------- */

/* Shared body: `s` is close to full (by cap or by file system). */
static void check_full_then_recover(store *s, void (*make_room)(store *))
{
    store_error err;
    /* what is stored already */
    put_small(s, "ds_keep", "");
    store_job j, c;
    make_job(s, "job_1", "", "ds_keep", &j);
    cr_assert_eq(store_job_claim(s, "w", 600000, &c, &err), 0);
    store_job_clear(&c);
    double th[3] = {1, 2, 3};
    store_progress p = {.epoch = 1, .epochs = 9, .cost = 2, .validation_cost = NAN,
                        .accuracy = NAN, .samples_per_second = 1};
    cr_assert_eq(store_job_checkpoint(s, "job_1", "w", NULL, &p, "small", 5, th, 3, &err), 0,
                 "%s", err.msg);

    /* fill: datasets of 256 KiB until the store says FULL */
    int64_t rows = 256, features = 128;
    double *X = awkward_doubles(rows * features);
    int32_t *y = calloc((size_t)rows, sizeof *y);
    int stored = 0, rc = 0;
    for (int i = 0; i < 1000; i++) {
        store_dataset_meta m;
        char id[40];
        snprintf(id, sizeof id, "ds_fill_%03d", i);
        fill_meta(&m, id, "", rows, features, 1, 1);
        rc = store_dataset_put(s, &m, X, y, NULL, &err);
        if (rc != 0)
            break;
        stored++;
    }
    cr_assert_eq(rc, STORE_FULL, "rc %d: %s", rc, err.msg);
    cr_assert(strstr(err.msg, "disk full"), "%s", err.msg);
    cr_log_info("full after %d datasets: %s", stored, err.msg);
    /* a big checkpoint fails too, and leaves the previous one valid */
    size_t big = 4 << 20;
    char *image = malloc(big);
    memset(image, 7, big);
    store_progress p2 = p;
    p2.epoch = 2;
    cr_assert_eq(store_job_checkpoint(s, "job_1", "w", NULL, &p2, image, big, th, 3, &err),
                 STORE_FULL, "%s", err.msg);
    void *img;
    size_t len;
    cr_assert_eq(store_job_checkpoint_load(s, "job_1", &img, &len, &err), 0, "%s", err.msg);
    cr_assert_eq(len, 5);
    cr_assert_eq(memcmp(img, "small", 5), 0);
    free(img);
    store_job g;
    cr_assert_eq(store_job_get(s, "", "job_1", &g, &err), 0);
    cr_assert_eq(g.progress.epoch, 1);
    store_job_clear(&g);
    /* everything stored before is intact */
    store_dataset_meta m;
    double *X2, *Y2;
    int32_t *l2;
    for (int i = 0; i < stored; i += 3) {
        char id[40];
        snprintf(id, sizeof id, "ds_fill_%03d", i);
        cr_assert_eq(store_dataset_load(s, "", id, &m, &X2, &l2, &Y2, &err), 0, "%s", err.msg);
        cr_assert_eq(memcmp(X2, X, (size_t)(rows * features) * 8), 0);
        free(X2);
        free(l2);
    }
    char failed_id[40];
    snprintf(failed_id, sizeof failed_id, "ds_fill_%03d", stored);
    cr_assert_eq(store_dataset_get(s, "", failed_id, &m, &err), STORE_NOT_FOUND);

    /* space returns: writes work again, same handle, no restart */
    make_room(s);
    store_dataset_meta nm;
    fill_meta(&nm, failed_id, "", rows, features, 1, 1);
    cr_assert_eq(store_dataset_put(s, &nm, X, y, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(store_job_checkpoint(s, "job_1", "w", NULL, &p2, image, 65536, th, 3, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(store_dataset_load(s, "", failed_id, &m, &X2, &l2, &Y2, &err), 0);
    cr_assert_eq(memcmp(X2, X, (size_t)(rows * features) * 8), 0);
    free(X2);
    free(l2);
    free(image);
    free(X);
    free(y);
}

static void lift_cap(store *s)
{
    store_debug_max_pages(s, 0);
}

Test(store, disk_full_by_page_cap_fails_cleanly_and_recovers)
{
    store *s = open_ok(tmpdir);
    store_error err;
    int64_t pages, page_size;
    cr_assert_eq(store_debug_page_count(s, &pages, &page_size, &err), 0);
    /* room for the small records plus about 2 MiB */
    store_debug_max_pages(s, (int)(pages + (2 << 20) / page_size + 8));
    check_full_then_recover(s, lift_cap);
    store_close(s);
    s = open_ok(tmpdir);
    store_close(s);
    cr_assert_eq(sql_int(tmpdir, "SELECT count(*) FROM pragma_integrity_check WHERE "
                                 "integrity_check <> 'ok'"), 0);
}

/* The operator frees space: the file system grows from 2 MiB to 8 MiB under the open store.
 * (Deleting rows cannot help on a full disk in WAL mode: a delete appends to the WAL too.) */
static void grow_fs(store *s)
{
    (void)s;
    cr_assert_eq(mount(NULL, mnt, NULL, MS_REMOUNT, "size=8m"), 0, "%s", strerror(errno));
}

Test(store, disk_full_on_a_real_2mib_tmpfs)
{
    snprintf(mnt, sizeof mnt, "%s/mnt", tmpdir);
    cr_assert_eq(mkdir(mnt, 0700), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=2m") != 0)
        cr_skip_test("cannot mount a tmpfs here (%s): the page-cap test covers disk full",
                     strerror(errno));
    store *s = open_ok(mnt);
    check_full_then_recover(s, grow_fs);
    store_close(s);
    s = open_ok(mnt); /* quick_check at open passes */
    store_close(s);
    cr_assert_eq(sql_int(mnt, "SELECT count(*) FROM pragma_integrity_check WHERE "
                              "integrity_check <> 'ok'"), 0);
}

#endif

/* ---------------- admission limits ---------------- */

#define ADMIT_THREADS 8
#define ADMIT_TRIES 12

typedef struct {
    store *s;
    int t;
    int ok, queue_full, quota, other;
} admitter;

/* Counts one admission answer. */
static void admit_count(admitter *a, int rc)
{
    a->ok += rc == 0;
    a->queue_full += rc == STORE_QUEUE_FULL;
    a->quota += rc == STORE_QUOTA;
    a->other += rc != 0 && rc != STORE_QUEUE_FULL && rc != STORE_QUOTA;
}

static void *admit_jobs(void *arg)
{
    admitter *a = arg;
    for (int i = 0; i < ADMIT_TRIES; i++) {
        store_job j;
        memset(&j, 0, sizeof j);
        snprintf(j.id, sizeof j.id, "job_%d_%d", a->t, i);
        snprintf(j.owner, sizeof j.owner, "%s", a->t % 2 ? "bob" : "alice");
        snprintf(j.dataset_id, sizeof j.dataset_id, "%s", a->t % 2 ? "ds_b" : "ds_a");
        char spec[] = "{}";
        j.spec_json = spec;
        store_error err;
        admit_count(a, store_job_create(a->s, &j, NULL, 0, &err));
    }
    return NULL;
}

static void *admit_bytes(void *arg)
{
    admitter *a = arg;
    double X[12] = {0};
    int32_t y[4] = {0, 1, 1, 0};
    for (int i = 0; i < ADMIT_TRIES; i++) {
        store_dataset_meta m;
        char id[40];
        snprintf(id, sizeof id, "ds_%d_%d", a->t, i);
        fill_meta(&m, id, a->t % 2 ? "bob" : "alice", 4, 3, 2, 1);
        store_error err;
        admit_count(a, store_dataset_put(a->s, &m, X, y, NULL, &err));
    }
    return NULL;
}

/* Runs ADMIT_THREADS threads of fn, half of them on a second handle of the same file (like a
 * second process), and sums their counts into *sum. */
static void admit_race(store *s1, store *s2, void *(*fn)(void *), admitter *sum)
{
    admitter a[ADMIT_THREADS];
    pthread_t th[ADMIT_THREADS];
    memset(a, 0, sizeof a);
    memset(sum, 0, sizeof *sum);
    for (int t = 0; t < ADMIT_THREADS; t++) {
        a[t].s = t < ADMIT_THREADS / 2 ? s1 : s2;
        a[t].t = t;
        cr_assert_eq(pthread_create(&th[t], NULL, fn, &a[t]), 0);
    }
    for (int t = 0; t < ADMIT_THREADS; t++) {
        pthread_join(th[t], NULL);
        sum->ok += a[t].ok;
        sum->queue_full += a[t].queue_full;
        sum->quota += a[t].quota;
        sum->other += a[t].other;
    }
}

/* Limits are decided inside the inserting transaction: 8 threads on two handles racing to
 * create 96 jobs for two owners end with exactly max_active jobs, none of an owner beyond its
 * quota; likewise dataset bytes per owner. */
Test(store, admission_limits_hold_under_concurrent_writers)
{
    store *s1 = open_ok(tmpdir), *s2 = open_ok(tmpdir);
    const int64_t ds_bytes = 4 * 3 * 8 + 4 * 4; /* put_small's X + labels */
    store_limits lim = {.max_active = 5, .max_active_owner = 3,
                        .max_bytes_owner = 3 * ds_bytes + ds_bytes / 2};
    store_set_limits(s1, &lim);
    store_set_limits(s2, &lim);
    put_small(s1, "ds_a", "alice");
    put_small(s1, "ds_b", "bob");

    admitter sum;
    admit_race(s1, s2, admit_jobs, &sum);
    cr_assert_eq(sum.other, 0);
    cr_assert_eq(sum.ok, lim.max_active, "%d jobs admitted, limit %lld", sum.ok,
                 (long long)lim.max_active);
    cr_assert_eq(sum.ok + sum.queue_full + sum.quota, ADMIT_THREADS * ADMIT_TRIES);
    int64_t all, alice, bob;
    store_error err;
    cr_assert_eq(store_job_count_active(s1, NULL, &all, &err), 0);
    cr_assert_eq(store_job_count_active(s1, "alice", &alice, &err), 0);
    cr_assert_eq(store_job_count_active(s1, "bob", &bob, &err), 0);
    cr_assert_eq(all, lim.max_active);
    cr_assert(alice <= lim.max_active_owner && bob <= lim.max_active_owner, "%lld %lld",
              (long long)alice, (long long)bob);
    cr_assert_eq(alice + bob, all);

    /* the refusals say which limit */
    store_job j;
    memset(&j, 0, sizeof j);
    snprintf(j.id, sizeof j.id, "job_more");
    snprintf(j.owner, sizeof j.owner, "alice");
    snprintf(j.dataset_id, sizeof j.dataset_id, "ds_a");
    char spec[] = "{}";
    j.spec_json = spec;
    cr_assert_eq(store_job_create(s1, &j, NULL, 0, &err), STORE_QUEUE_FULL);
    char want[96];
    snprintf(want, sizeof want, "(%lld of %lld queued or running)", (long long)all,
             (long long)lim.max_active);
    cr_assert(strstr(err.msg, want), "%s", err.msg);
    lim.max_active = 0; /* no global limit: alice's quota answers */
    store_set_limits(s1, &lim);
    int64_t *mine = alice >= bob ? &alice : &bob;
    snprintf(j.owner, sizeof j.owner, "%s", mine == &alice ? "alice" : "bob");
    snprintf(j.dataset_id, sizeof j.dataset_id, "%s", mine == &alice ? "ds_a" : "ds_b");
    int rc = store_job_create(s1, &j, NULL, 0, &err);
    cr_assert_eq(rc, *mine >= lim.max_active_owner ? STORE_QUOTA : 0, "%s", err.msg);

    /* bytes: each owner already stores one dataset (put_small above) */
    admit_race(s1, s2, admit_bytes, &sum);
    cr_assert_eq(sum.other, 0);
    cr_assert_eq(sum.queue_full, 0);
    cr_assert_eq(sum.ok, 2 * 2, "%d datasets admitted", sum.ok); /* 2 more per owner */
    int64_t b_alice, b_bob;
    cr_assert_eq(store_dataset_bytes(s1, "alice", &b_alice, &err), 0);
    cr_assert_eq(store_dataset_bytes(s1, "bob", &b_bob, &err), 0);
    cr_assert_eq(b_alice, 3 * ds_bytes);
    cr_assert_eq(b_bob, 3 * ds_bytes);
    store_close(s1);
    store_close(s2);
}

/* ---------------- idempotency keys, labels, held-out metrics, class names ---------------- */

#define IDEM_THREADS 8

typedef struct {
    store *s;
    int t, rc;
    char replay_id[40];
} idem_racer;

/* One retry of the same create: its own job id (as every HTTP attempt makes one), the same key
 * and request digest. */
static void *idem_race_one(void *arg)
{
    idem_racer *r = arg;
    store_idempotency idem = {.key = "k-race", .ttl_ms = 60000};
    snprintf(idem.request, sizeof idem.request, "%064d", 7);
    store_job j;
    memset(&j, 0, sizeof j);
    snprintf(j.id, sizeof j.id, "job_race_%d", r->t);
    snprintf(j.owner, sizeof j.owner, "alice");
    snprintf(j.dataset_id, sizeof j.dataset_id, "ds_a");
    char spec[] = "{}";
    j.spec_json = spec;
    j.idem = &idem;
    store_error err;
    r->rc = store_job_create(r->s, &j, NULL, 0, &err);
    snprintf(r->replay_id, sizeof r->replay_id, "%s", idem.replay_id);
    return NULL;
}

/* Creates a job for alice on ds_a with this key and digest; the store's answer. */
static int idem_job(store *s, const char *id, const char *owner, const char *ds,
                    store_idempotency *idem)
{
    store_job j;
    memset(&j, 0, sizeof j);
    snprintf(j.id, sizeof j.id, "%s", id);
    snprintf(j.owner, sizeof j.owner, "%s", owner);
    snprintf(j.dataset_id, sizeof j.dataset_id, "%s", ds);
    char spec[] = "{}";
    j.spec_json = spec;
    j.idem = idem;
    store_error err;
    return store_job_create(s, &j, NULL, 0, &err);
}

/* The key is decided inside the create's transaction: 8 concurrent retries on two handles
 * create exactly one job and the 7 others replay its id; another digest with the key is
 * refused; keys are per owner and per kind; refused creates and expired keys are not
 * remembered; a dataset replay stores nothing. */
Test(store, idempotency_keys_replay_reuse_and_race)
{
    store *s1 = open_ok(tmpdir), *s2 = open_ok(tmpdir);
    put_small(s1, "ds_a", "alice");
    put_small(s1, "ds_b", "bob");
    idem_racer r[IDEM_THREADS];
    pthread_t th[IDEM_THREADS];
    for (int t = 0; t < IDEM_THREADS; t++) {
        r[t] = (idem_racer){.s = t % 2 ? s2 : s1, .t = t};
        cr_assert_eq(pthread_create(&th[t], NULL, idem_race_one, &r[t]), 0);
    }
    int created = -1, replays = 0;
    for (int t = 0; t < IDEM_THREADS; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < IDEM_THREADS; t++) {
        cr_assert(r[t].rc == 0 || r[t].rc == STORE_REPLAY, "racer %d: %d", t, r[t].rc);
        if (r[t].rc == 0) {
            cr_assert_eq(created, -1, "two creates with one key (%d and %d)", created, t);
            created = t;
        } else {
            replays++;
        }
    }
    cr_assert_neq(created, -1);
    cr_assert_eq(replays, IDEM_THREADS - 1);
    char winner[40];
    snprintf(winner, sizeof winner, "job_race_%d", created);
    for (int t = 0; t < IDEM_THREADS; t++)
        if (r[t].rc == STORE_REPLAY)
            cr_assert_str_eq(r[t].replay_id, winner);
    int64_t n = 0;
    store_error err;
    cr_assert_eq(store_job_count_active(s1, "alice", &n, &err), 0);
    cr_assert_eq(n, 1);

    store_idempotency other = {.key = "k-race", .ttl_ms = 60000};
    snprintf(other.request, sizeof other.request, "%064d", 8);
    cr_assert_eq(idem_job(s1, "job_other", "alice", "ds_a", &other), STORE_KEY_REUSED);
    cr_assert_eq(idem_job(s1, "job_bob", "bob", "ds_b", &other), 0); /* bob's own key */
    /* a refused create is not remembered: the retry with the key may succeed */
    store_idempotency miss = {.key = "k-miss", .ttl_ms = 60000};
    snprintf(miss.request, sizeof miss.request, "%064d", 9);
    cr_assert_eq(idem_job(s1, "job_m1", "alice", "ds_none", &miss), STORE_NOT_FOUND);
    cr_assert_eq(idem_job(s1, "job_m2", "alice", "ds_a", &miss), 0);
    /* an expired key is forgotten */
    store_idempotency brief = {.key = "k-brief", .ttl_ms = 1};
    snprintf(brief.request, sizeof brief.request, "%064d", 10);
    cr_assert_eq(idem_job(s1, "job_b1", "alice", "ds_a", &brief), 0);
    nanosleep(&(struct timespec){.tv_nsec = 20 * 1000000}, NULL);
    cr_assert_eq(idem_job(s2, "job_b2", "alice", "ds_a", &brief), 0);

    /* datasets: the same key is another kind; a replay stores nothing */
    store_idempotency dk = {.key = "k-race", .ttl_ms = 60000};
    snprintf(dk.request, sizeof dk.request, "%064d", 11);
    store_dataset_meta m;
    double X[12] = {0};
    int32_t y[4] = {0, 1, 1, 0};
    fill_meta(&m, "ds_i1", "alice", 4, 3, 2, 1);
    m.idem = &dk;
    cr_assert_eq(store_dataset_put(s1, &m, X, y, NULL, &err), 0, "%s", err.msg);
    fill_meta(&m, "ds_i2", "alice", 4, 3, 2, 1);
    m.idem = &dk;
    cr_assert_eq(store_dataset_put(s2, &m, X, y, NULL, &err), STORE_REPLAY, "%s", err.msg);
    cr_assert_str_eq(dk.replay_id, "ds_i1");
    store_dataset_meta g;
    cr_assert_eq(store_dataset_get(s1, "alice", "ds_i2", &g, &err), STORE_NOT_FOUND);
    store_close(s1);
    store_close(s2);
}

/* A job's labels and held-out report and a dataset's class names round-trip as given (NULL
 * stays NULL); the report is written only by the lease holder (on PostgreSQL: with the
 * current fencing token). */
Test(store, labels_metrics_and_classes_roundtrip)
{
    store *s = open_ok(tmpdir);
    store_dataset_meta m;
    double X[12] = {0};
    int32_t y[4] = {0, 1, 1, 0};
    fill_meta(&m, "ds_c", "o", 4, 3, 2, 1);
    m.classes_json = "[\"cat\",\"dog \\u00e9\"]";
    store_error err;
    cr_assert_eq(store_dataset_put(s, &m, X, y, NULL, &err), 0, "%s", err.msg);
    put_small(s, "ds_m", "o");
    char *classes = NULL;
    cr_assert_eq(store_dataset_classes(s, "o", "ds_c", &classes, &err), 0, "%s", err.msg);
    cr_assert_str_eq(classes, "[\"cat\",\"dog \\u00e9\"]");
    free(classes);
    cr_assert_eq(store_dataset_classes(s, "o", "ds_m", &classes, &err), 0, "%s", err.msg);
    cr_assert_null(classes);
    cr_assert_eq(store_dataset_classes(s, "x", "ds_c", &classes, &err), STORE_NOT_FOUND);
    cr_assert_null(classes);

    store_job j;
    memset(&j, 0, sizeof j);
    snprintf(j.id, sizeof j.id, "job_l");
    snprintf(j.owner, sizeof j.owner, "o");
    snprintf(j.dataset_id, sizeof j.dataset_id, "ds_c");
    char spec[] = "{}", labels[] = "{\"name\":\"run 1\",\"tags\":[\"a\"],\"metadata\":{}}";
    j.spec_json = spec;
    j.labels_json = labels;
    j.progress.cost = j.progress.validation_cost = j.progress.accuracy = NAN;
    j.progress.samples_per_second = NAN;
    cr_assert_eq(store_job_create(s, &j, NULL, 0, &err), 0, "%s", err.msg);
    store_job c;
    cr_assert_eq(store_job_claim(s, "w", 60000, &c, &err), 0, "%s", err.msg);
    cr_assert_str_eq(c.labels_json, labels);
    cr_assert_null(c.metrics_json);
    char ref[160];
    if (c.lease_token > 0)
        snprintf(ref, sizeof ref, "w#%lld", (long long)c.lease_token);
    else
        snprintf(ref, sizeof ref, "w");
    const char *report = "{\"accuracy\":0.75,\"rows\":4}";
    cr_assert_eq(store_job_set_metrics(s, "job_l", "v", report, &err), STORE_CONFLICT);
    if (c.lease_token > 0) {
        char stale[160];
        snprintf(stale, sizeof stale, "w#%lld", (long long)c.lease_token + 1000);
        cr_assert_eq(store_job_set_metrics(s, "job_l", stale, report, &err), STORE_CONFLICT);
    }
    store_job g;
    cr_assert_eq(store_job_get(s, "o", "job_l", &g, &err), 0);
    cr_assert_null(g.metrics_json);
    store_job_clear(&g);
    cr_assert_eq(store_job_set_metrics(s, "job_l", ref, report, &err), 0, "%s", err.msg);
    cr_assert_eq(store_job_finish(s, "job_l", ref, JOB_SUCCEEDED, NULL, NULL, NULL, NULL, 0,
                                  &err), 0, "%s", err.msg);
    store_job_clear(&c);
    store_job *list = NULL;
    size_t n = 0;
    int64_t next = 0;
    cr_assert_eq(store_job_list(s, "o", -1, 0, 10, &list, &n, &next, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(list[0].labels_json, labels);
    cr_assert_str_eq(list[0].metrics_json, report);
    store_jobs_free(list, n);
    /* after the finish the lease is gone: no more writes */
    cr_assert_eq(store_job_set_metrics(s, "job_l", ref, "{}", &err), STORE_CONFLICT);
    store_close(s);
}

#if !STORE_TEST_POSTGRES /* SQLite's own */
Test(store, location_schemes_pick_the_engine)
{
    store_error err;
    /* postgres:// and postgresql:// go to the PostgreSQL engine: nothing listens on port 1 */
    cr_assert_null(store_open("postgres://user@127.0.0.1:1/backpropd", &err));
    cr_assert_eq(err.code, STORE_BUSY);
    cr_assert(strstr(err.msg, "database unreachable"), "%s", err.msg);
    cr_assert_null(store_open("postgresql://127.0.0.1:1/x", &err));
    cr_assert(strstr(err.msg, "database unreachable"), "%s", err.msg);
    cr_assert_null(store_open("redis://x", &err));
    cr_assert(strstr(err.msg, "unknown location scheme \"redis://\""), "%s", err.msg);
    cr_assert_null(store_open("", &err));
    cr_assert_eq(err.code, STORE_IO);
    store *s = open_ok(tmpdir); /* a directory: SQLite */
    store_close(s);
}
#endif

