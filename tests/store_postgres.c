/* store_postgres.c — the store suite (tests/store_sqlite.c) against the PostgreSQL engine: the
 * same tests, each on its own database of one throwaway cluster that this binary starts
 * before the tests (initdb + pg_ctl as `nobody` on a temp dir and a free port,
 * tests/harness/pg.c) and stops after them; plus what only a shared database has: fencing
 * tokens and claims under SKIP LOCKED from several instances.
 */
#define STORE_TEST_POSTGRES 1
#include "tests/store_sqlite.c"

#include "server/common/clock.h"

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    if (pg_cluster_start() != 0)
        fprintf(stderr, "store_postgres: the PostgreSQL cluster did not start\n");
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    pg_cluster_stop();
}

/* ---------------- what only a shared database has ---------------- */

/* A worker whose lease expired and was claimed again — even under the same owner string —
 * holds an older fencing token: none of its writes lands, the new holder's do. */
Test(store, fencing_token_refuses_a_stale_holder_even_with_the_same_owner)
{
    store *s = open_ok(tmpdir);
    store_error err;
    put_small(s, "ds_f", "");
    store_job j, c1, c2;
    make_job(s, "job_f", "", "ds_f", &j);
    cr_assert_eq(store_job_claim(s, "w", 50, &c1, &err), 0, "%s", err.msg);
    cr_assert_gt(c1.lease_token, 0);
    cr_assert_str_eq(c1.lease_owner, "w");
    usleep(120 * 1000); /* the lease runs out */
    cr_assert_eq(store_job_claim(s, "w", 60000, &c2, &err), 0, "%s", err.msg);
    cr_assert_str_eq(c2.id, "job_f");
    cr_assert_gt(c2.lease_token, c1.lease_token, "tokens grow at every claim");
    char stale[64], fresh[64];
    snprintf(stale, sizeof stale, "w#%lld", (long long)c1.lease_token);
    snprintf(fresh, sizeof fresh, "w#%lld", (long long)c2.lease_token);
    double th[2] = {1, 2}, cost[1] = {9};
    store_history h = {.first_epoch = 1, .n = 1, .cost = cost};
    store_progress p = {.epoch = 1, .epochs = 9, .cost = 9, .validation_cost = NAN,
                        .accuracy = NAN, .samples_per_second = NAN};
    int cancel;
    cr_assert_eq(store_job_checkpoint(s, "job_f", stale, &h, &p, "old", 3, th, 2, &err),
                 STORE_CONFLICT);
    cr_assert(strstr(err.msg, "fenced"), "%s", err.msg);
    cr_assert_eq(store_job_renew(s, "job_f", stale, 60000, &cancel, &err), STORE_CONFLICT);
    cr_assert_eq(store_job_finish(s, "job_f", stale, JOB_SUCCEEDED, NULL, &h, &p, th, 2, &err),
                 STORE_CONFLICT);
    cr_assert_eq(store_job_release(s, "job_f", stale, &err), STORE_CONFLICT);
    void *img;
    size_t len;
    cr_assert_eq(store_job_checkpoint_load(s, "job_f", &img, &len, &err), STORE_NOT_FOUND);
    cr_assert_eq(sql_int(tmpdir, "SELECT count(*) FROM job_history"), 0);
    /* the holder of the current token writes */
    cr_assert_eq(store_job_renew(s, "job_f", fresh, 60000, &cancel, &err), 0, "%s", err.msg);
    cr_assert_eq(store_job_checkpoint(s, "job_f", fresh, &h, &p, "new", 3, th, 2, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(store_job_finish(s, "job_f", fresh, JOB_SUCCEEDED, NULL, NULL, &p, th, 2, &err),
                 0, "%s", err.msg);
    store_job g;
    cr_assert_eq(store_job_get(s, "", "job_f", &g, &err), 0);
    cr_assert_eq(g.status, JOB_SUCCEEDED);
    store_job_clear(&g);
    store_job_clear(&c1);
    store_job_clear(&c2);
    store_close(s);
}

/* Lease times are the database's clock, not the instance's: an instance whose clock runs an
 * hour ahead finds no expired lease to take from a live holder, and a holder whose clock lags
 * an hour renews a lease that still runs (its expiry not set an hour in the past). Fails with
 * expiries computed from the instance's clock (clock_debug_skew_ms plays the skewed clock). */
Test(store, skewed_instance_clocks_neither_steal_nor_shorten_live_leases)
{
    store *s = open_ok(tmpdir), *other = open_ok(tmpdir);
    store_error err;
    put_small(s, "ds_k", "");
    store_job j, c, stolen;
    make_job(s, "job_k", "", "ds_k", &j);
    cr_assert_eq(store_job_claim(s, "holder", 60000, &c, &err), 0, "%s", err.msg);
    clock_debug_skew_ms(3600 * 1000); /* the other instance's clock is an hour ahead */
    int rc = store_job_claim(other, "thief", 60000, &stolen, &err);
    cr_assert_eq(rc, STORE_NOT_FOUND, "an instance an hour ahead took the live lease (%d, %s)",
                 rc, stolen.lease_owner);
    clock_debug_skew_ms(-3600 * 1000); /* the holder's clock lags an hour: it renews */
    int cancel = 0;
    char ref[160];
    snprintf(ref, sizeof ref, "holder#%lld", (long long)c.lease_token);
    cr_assert_eq(store_job_renew(s, "job_k", ref, 60000, &cancel, &err), 0, "%s", err.msg);
    clock_debug_skew_ms(0);
    rc = store_job_claim(other, "thief", 60000, &stolen, &err);
    cr_assert_eq(rc, STORE_NOT_FOUND, "a renewal from a lagging clock left the lease expired "
                 "(%d, %s)", rc, stolen.lease_owner);
    store_job_clear(&stolen);
    store_job_clear(&c);
    store_job_clear(&j);
    store_close(other);
    store_close(s);
}

/* Idempotency keys age by the database's clock too: an instance whose clock runs an hour ahead
 * still replays a key stored a moment ago (and does not purge it as expired), a key stored by
 * an instance whose clock lags an hour is live for the others (its created_at not an hour in
 * the past), and that lagging instance does not replay a key whose TTL has run out. Fails
 * with cutoffs and created_at from the instance's clock (clock_debug_skew_ms). */
Test(store, skewed_instance_clocks_neither_replay_expired_nor_expire_live_keys)
{
    store *s = open_ok(tmpdir), *other = open_ok(tmpdir);
    store_error err;
    put_small(s, "ds_a", "alice");
    store_idempotency k1 = {.key = "k-ahead", .ttl_ms = 60000};
    snprintf(k1.request, sizeof k1.request, "%064d", 1);
    cr_assert_eq(idem_job(s, "job_k1", "alice", "ds_a", &k1), 0);
    clock_debug_skew_ms(3600 * 1000); /* the other instance's clock is an hour ahead */
    store_idempotency k1b = k1;
    int rc = idem_job(other, "job_k1b", "alice", "ds_a", &k1b);
    clock_debug_skew_ms(0);
    cr_assert_eq(rc, STORE_REPLAY, "an instance an hour ahead forgot a live key (%d)", rc);
    cr_assert_str_eq(k1b.replay_id, "job_k1");

    clock_debug_skew_ms(-3600 * 1000); /* this instance's clock lags an hour: it stores a key */
    store_idempotency k2 = {.key = "k-behind", .ttl_ms = 60000};
    snprintf(k2.request, sizeof k2.request, "%064d", 2);
    rc = idem_job(other, "job_k2", "alice", "ds_a", &k2);
    clock_debug_skew_ms(0);
    cr_assert_eq(rc, 0);
    store_idempotency k2b = k2;
    rc = idem_job(s, "job_k2b", "alice", "ds_a", &k2b);
    cr_assert_eq(rc, STORE_REPLAY, "a key stored by a lagging instance was born expired (%d)", rc);
    cr_assert_str_eq(k2b.replay_id, "job_k2");

    store_idempotency k3 = {.key = "k-brief", .ttl_ms = 50};
    snprintf(k3.request, sizeof k3.request, "%064d", 3);
    cr_assert_eq(idem_job(s, "job_k3", "alice", "ds_a", &k3), 0);
    usleep(200 * 1000); /* its TTL runs out */
    clock_debug_skew_ms(-3600 * 1000); /* the lagging instance retries it */
    store_idempotency k3b = k3;
    rc = idem_job(other, "job_k3b", "alice", "ds_a", &k3b);
    clock_debug_skew_ms(0);
    cr_assert_eq(rc, 0, "a lagging instance replayed an expired key (%d, %s)", rc, k3b.replay_id);
    int64_t n = 0;
    cr_assert_eq(store_job_count_active(s, "alice", &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 4, "job_k1, job_k2, job_k3 and job_k3b, no replay stored twice");
    store_close(other);
    store_close(s);
}

/* Connections the server drops (a restart, a proxy, pg_terminate_backend) are reopened by
 * the transaction runner: the next operation of every thread works. */
Test(store, dropped_connections_are_reopened_transparently)
{
    store *s = open_ok(tmpdir);
    store_error err;
    put_small(s, "ds_r", "");
    store_job j;
    make_job(s, "job_r1", "", "ds_r", &j);
    PGconn *pc = PQconnectdb(pg_uri);
    cr_assert_eq(PQstatus(pc), CONNECTION_OK);
    PGresult *r = PQexec(pc, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                             "WHERE datname = current_database() AND pid <> pg_backend_pid()");
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(pc));
    cr_assert_geq(atoi(PQgetvalue(r, 0, 0)), 1, "the store's connection was not found");
    PQclear(r);
    PQfinish(pc);
    usleep(50 * 1000);
    store_job g;
    cr_assert_eq(store_job_get(s, "", "job_r1", &g, &err), 0, "%s", err.msg);
    store_job_clear(&g);
    make_job(s, "job_r2", "", "ds_r", &j); /* a write too */
    cr_assert_eq(store_ping(s, &err), 0, "%s", err.msg);
    int64_t n;
    cr_assert_eq(store_job_count_active(s, "", &n, &err), 0);
    cr_assert_eq(n, 2);
    store_close(s);
}

#ifndef __SANITIZE_ADDRESS__ /* 376 MB twice under ASan: the plain run covers it */
/* A W2-sized dataset (60000 × 784 doubles + labels: 376 MB) goes in as 16 MiB bytea chunks
 * and comes back bit for bit, one chunk in memory at a time besides the arrays. */
Test(store, w2_sized_dataset_376mb_roundtrips_bit_exact, .timeout = 300)
{
    store *s = open_ok(tmpdir);
    int64_t rows = 60000, features = 784;
    double *X = awkward_doubles(rows * features);
    int32_t *y = malloc((size_t)rows * sizeof *y);
    cr_assert_not_null(y);
    for (int64_t i = 0; i < rows; i++)
        y[i] = (int32_t)(rnd64() % 10);
    store_dataset_meta m;
    fill_meta(&m, "ds_w2", "big", rows, features, 10, 1);
    store_error err;
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(store_dataset_put(s, &m, X, y, NULL, &err), 0, "%s", err.msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    store_dataset_meta got;
    double *X2, *Y2;
    int32_t *l2;
    cr_assert_eq(store_dataset_load(s, "big", "ds_w2", &got, &X2, &l2, &Y2, &err), 0, "%s",
                 err.msg);
    clock_gettime(CLOCK_MONOTONIC, &t2);
    cr_assert_eq(got.bytes, rows * features * 8 + rows * 4);
    cr_assert_eq(memcmp(X2, X, (size_t)(rows * features) * 8), 0);
    cr_assert_eq(memcmp(l2, y, (size_t)rows * 4), 0);
    cr_assert_null(Y2);
    cr_assert_eq(sql_int(tmpdir, "SELECT count(*) FROM dataset_chunks WHERE kind = 0"),
                 (rows * features * 8 + (16 << 20) - 1) / (16 << 20));
    cr_log_info("376 MB dataset: stored in %.2f s, loaded in %.2f s",
                (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
                (double)(t2.tv_sec - t1.tv_sec) + (t2.tv_nsec - t1.tv_nsec) / 1e9);
    free(X2);
    free(l2);
    free(X);
    free(y);
    store_close(s);
}
#endif
