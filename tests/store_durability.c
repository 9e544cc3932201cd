/* store_durability.c — issue 6 end to end against the real binary (tests/harness.h) with the
 * store's file checked directly (SQLite and the store API in this process):
 *   - upload, train, restart: every answer (datasets, jobs, weights, cost history) has the
 *     same bytes, and the stored dataset is bit-identical to the parsed CSV;
 *   - kill -9 at random moments (during an upload, mid-training, around checkpoints) for 20
 *     rounds: after each, PRAGMA integrity_check is ok and every acknowledged dataset (201) and
 *     job (202) is there with its exact bytes; in the end every interrupted job finishes with
 *     weights and cost history identical to an uninterrupted run with the same seed;
 *   - after kill -9 a restart runs the interrupted job again within ~2 s (start-up recovery of
 *     the dead process's lease, not its 15 s expiry), bit-identical in the end, also while the
 *     killed process is still an unreaped zombie; a second
 *     instance started beside a live one on the same store takes none of its jobs;
 *   - a full disk (a 4 MiB tmpfs as --data): uploads get 507, nothing stored is damaged, and
 *     uploads work again as soon as the file system grows — without a restart.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "server/store/store.h"
#include "tests/harness.h"

/* ---------------- helpers ---------------- */

/* Where digits CSV is uploaded (post_for_id: 201 with the id, 0 when the kill cut it off). */
#define UPLOAD "/v1/datasets?name=digits"

/* About 3 s of training on the build box (2026-11, after the core's speed-ups: 250 epochs
 * took 0.75 s), so kills land mid-training and checkpoints (every second) get written. */
static const char job_spec[] =
    "\"optimizer\":\"adam\",\"learning_rate\":0.005,\"batch_size\":16,\"epochs\":1000,"
    "\"seed\":77,\"validation_split\":0.2,\"lambda\":0.2";

/* Submits a [64,30,10] network on ds with this training (the inside of the object). */
static void submit(const srv *s, const char *ds, const char *training, char *id, size_t len)
{
    char *body = job_body(ds, "[64,30,10]", training);
    submit_job(s, NULL, body, id, len);
    free(body);
}

/* Waits for job id to end and asserts it succeeded. */
static void wait_succeeded(const srv *s, const char *id, double timeout)
{
    json_t *j = wait_job(s, id, NULL, timeout);
    const char *st = json_string_value(json_object_get(j, "status"));
    cr_assert_str_eq(st, "succeeded", "job %s ended %s", id, st);
    json_decref(j);
}

/* PRAGMA integrity_check on the server's file (the server is not running). */
static void assert_integrity(const char *dir)
{
    char path[400];
    snprintf(path, sizeof path, "%s/backpropd.db", dir);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK,
                 "%s", sqlite3_errmsg(db));
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        cr_assert_str_eq(t, "ok", "integrity_check: %s", t);
        rows++;
    }
    cr_assert_eq(rows, 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Sum of the epochs of the resume checkpoints in the (live) file: grows when a checkpoint is
 * written. -1 when the file cannot be read. */
static int64_t checkpoint_marker(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, "SELECT coalesce(sum(epoch), 0) FROM job_checkpoints "
                               "WHERE image IS NOT NULL", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Waits (up to timeout) until the running server writes a new checkpoint; 1 if it did. */
static int wait_new_checkpoint(const char *dir, double timeout)
{
    char path[400];
    snprintf(path, sizeof path, "%s/backpropd.db", dir);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return 0;
    }
    sqlite3_busy_timeout(db, 1000);
    int64_t first = checkpoint_marker(db);
    double end = test_now_s() + timeout;
    int seen = 0;
    while (!seen && test_now_s() < end) {
        test_sleep_ms(5);
        seen = checkpoint_marker(db) > first;
    }
    sqlite3_close(db);
    return seen;
}

/* The dataset as stored equals the parsed CSV bit for bit. */
static void assert_dataset_bytes(store *st, const char *id, const api_dataset *want)
{
    store_error err;
    store_dataset_meta m;
    double *X = NULL, *Y = NULL;
    int32_t *labels = NULL;
    cr_assert_eq(store_dataset_load(st, "", id, &m, &X, &labels, &Y, &err), 0,
                 "acknowledged dataset %s: %s", id, err.msg);
    cr_assert_eq(m.rows, want->rows);
    cr_assert_eq(m.features, want->features);
    cr_assert_not_null(labels);
    cr_assert_eq(memcmp(X, want->X, (size_t)(want->rows * want->features) * 8), 0);
    cr_assert_eq(memcmp(labels, want->labels, (size_t)want->rows * 4), 0);
    free(X);
    free(labels);
    free(Y);
}

static void parse_csv(const char *csv, size_t len, api_dataset *d)
{
    api_error e = {0};
    memset(d, 0, sizeof *d);
    cr_assert_eq(api_dataset_parse_csv(d, csv, len, &e), 0, "%s", e.detail);
}

TestSuite(durability, .timeout = 240);

/* ---------------- restart ---------------- */

Test(durability, restart_keeps_every_byte)
{
    srv s;
    const char *args[] = {"--workers", "2", "--checkpoint-seconds", "1", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    size_t n;
    char *csv = test_digits_csv(1, &n);
    char ds[64], job[64], job2[64];
    cr_assert_eq(post_for_id(&s, UPLOAD, "text/csv", csv, n, NULL, ds, sizeof ds), 201);
    submit(&s, ds, job_spec, job, sizeof job);
    wait_succeeded(&s, job, 90);
    submit(&s, ds, job_spec, job2, sizeof job2);
    char *before[7] = {
        get_text(&s, "/v1/datasets/%s", ds), get_text(&s, "/v1/datasets"),
        get_text(&s, "/v1/jobs/%s", job), get_text(&s, "/v1/jobs/%s/weights", job),
        get_cost_text(&s, job), NULL, NULL};
    wait_succeeded(&s, job2, 90);
    before[5] = get_text(&s, "/v1/jobs");
    before[6] = get_text(&s, "/v1/jobs/%s/weights", job2);
    srv_stop(&s);
    assert_integrity(s.datadir);

    cr_assert_eq(srv_restart(&s, args), 0);
    char *after[7] = {
        get_text(&s, "/v1/datasets/%s", ds), get_text(&s, "/v1/datasets"),
        get_text(&s, "/v1/jobs/%s", job), get_text(&s, "/v1/jobs/%s/weights", job),
        get_cost_text(&s, job), get_text(&s, "/v1/jobs"),
        get_text(&s, "/v1/jobs/%s/weights", job2)};
    for (int i = 0; i < 7; i++) {
        cr_assert_str_eq(after[i], before[i], "answer %d changed across a restart", i);
        free(before[i]);
        free(after[i]);
    }
    /* same seed, same spec: the two jobs' weights are identical too */
    char *w1 = get_text(&s, "/v1/jobs/%s/weights", job);
    char *w2 = get_text(&s, "/v1/jobs/%s/weights", job2);
    cr_assert_str_eq(w1, w2);
    free(w1);
    free(w2);
    srv_stop(&s);

    api_dataset d;
    parse_csv(csv, n, &d);
    store_error err;
    store *st = store_open(s.datadir, &err);
    cr_assert_not_null(st, "%s", err.msg);
    assert_dataset_bytes(st, ds, &d);
    store_close(st);
    api_dataset_clear(&d);
    free(csv);
    srv_cleanup(&s);
}

/* ---------------- kill -9 ---------------- */

typedef struct {
    const srv *s;
    const char *csv;
    size_t len;
    int delay_ms;
    long status;
    char id[64];
} uploader;

static void *upload_thread(void *arg)
{
    uploader *u = arg;
    test_sleep_ms(u->delay_ms);
    u->status = post_for_id(u->s, UPLOAD, "text/csv", u->csv, u->len, NULL, u->id, sizeof u->id);
    return NULL;
}

#define ROUNDS 20

Test(durability, kill9_at_random_moments_loses_nothing)
{
    unsigned seed = (unsigned)time(NULL);
    const char *env = getenv("BPD_KILL_SEED");
    if (env)
        seed = (unsigned)strtoul(env, NULL, 10);
    cr_log_info("kill -9 loop: BPD_KILL_SEED=%u", seed);
    srand(seed);

    size_t small_n, big_n;
    char *small = test_digits_csv(1, &small_n);
    char *big = test_digits_csv(6, &big_n); /* ~2.8 MB of CSV: a long enough upload to hit */
    api_dataset d_small, d_big;
    parse_csv(small, small_n, &d_small);
    parse_csv(big, big_n, &d_big);

    char ds_ids[ROUNDS + 1][64];
    int ds_big[ROUNDS + 1];
    int n_ds = 0;
    char job_ids[ROUNDS][64];
    int n_jobs = 0, uploads_cut = 0, uploads_acked = 0;
    /* jobs found running after a kill, with or without a checkpoint to resume from */
    int cut_with_ckpt[ROUNDS] = {0}, cut_without_ckpt[ROUNDS] = {0};
    /* kills that found a job running past a checkpoint: each makes the next start resume one
     * (a long job can be cut in several rounds; it counts in each) */
    int kills_after_checkpoint = 0;

    srv s;
    const char *args[] = {"--workers", "2", "--checkpoint-seconds", "1", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    cr_assert_eq(post_for_id(&s, UPLOAD, "text/csv", small, small_n, NULL, ds_ids[0],
                             sizeof ds_ids[0]), 201);
    ds_big[n_ds++] = 0;

    double t0 = test_now_s();
    for (int round = 0; round < ROUNDS; round++) {
        if (round > 0)
            cr_assert_eq(srv_restart(&s, args), 0, "round %d: the server did not come back",
                         round);
        /* everything acknowledged so far answers */
        for (int i = 0; i < n_ds; i++)
            free(get_text(&s, "/v1/datasets/%s", ds_ids[i]));
        for (int i = 0; i < n_jobs; i++)
            free(get_text(&s, "/v1/jobs/%s", job_ids[i]));

        submit(&s, ds_ids[0], job_spec, job_ids[n_jobs], sizeof job_ids[n_jobs]);
        n_jobs++;
        /* the kill lands anywhere in the job's run (checkpoints every second) or, every third
         * round, right after a checkpoint (during the next epochs or the next checkpoint); the
         * upload starts shortly before it, so some are cut off and some just made it */
        int kill_at = 200 + rand() % 2300;
        if (round % 3 == 1) {
            wait_new_checkpoint(s.datadir, 8);
            kill_at = rand() % 200;
        }
        int delay = kill_at - rand() % 200;
        uploader u = {.s = &s, .csv = big, .len = big_n, .delay_ms = delay > 0 ? delay : 0};
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, upload_thread, &u), 0);
        test_sleep_ms(kill_at);
        srv_kill9(&s);
        pthread_join(t, NULL);
        if (u.status == 201) {
            snprintf(ds_ids[n_ds], sizeof ds_ids[n_ds], "%s", u.id);
            ds_big[n_ds++] = 1;
            uploads_acked++;
        } else {
            cr_assert_eq(u.status, 0, "upload answered %ld", u.status);
            uploads_cut++;
        }

        /* the file after the crash: intact, and every acknowledged record exact */
        assert_integrity(s.datadir);
        store_error err;
        store *st = store_open(s.datadir, &err);
        cr_assert_not_null(st, "round %d: %s", round, err.msg);
        for (int i = 0; i < n_ds; i++)
            assert_dataset_bytes(st, ds_ids[i], ds_big[i] ? &d_big : &d_small);
        int resumable = 0;
        for (int i = 0; i < n_jobs; i++) {
            store_job j;
            cr_assert_eq(store_job_get(st, "", job_ids[i], &j, &err), 0, "job %s: %s",
                         job_ids[i], err.msg);
            cr_assert_not_null(strstr(j.spec_json, "\"seed\":77"), "%s", j.spec_json);
            if (j.status == JOB_RUNNING) { /* the crash interrupted it */
                void *img = NULL;
                size_t len = 0;
                if (store_job_checkpoint_load(st, job_ids[i], &img, &len, &err) == 0)
                    cut_with_ckpt[i] = resumable = 1;
                else
                    cut_without_ckpt[i] = 1;
                free(img);
            }
            store_job_clear(&j);
        }
        store_close(st);
        kills_after_checkpoint += resumable;
    }
    int cut_after_checkpoint = 0, cut_before_checkpoint = 0;
    for (int i = 0; i < n_jobs; i++) {
        cut_after_checkpoint += cut_with_ckpt[i];
        cut_before_checkpoint += cut_without_ckpt[i];
    }
    cr_log_info("%d rounds in %.1f s: %d uploads acknowledged, %d cut off; jobs interrupted: "
                "%d after a checkpoint (resume from it), %d before their first (start over); "
                "%d kills found a job past a checkpoint",
                ROUNDS, test_now_s() - t0, uploads_acked, uploads_cut, cut_after_checkpoint,
                cut_before_checkpoint, kills_after_checkpoint);
    /* the loop did exercise resuming from checkpoints (kills land mid-training) */
    cr_assert_geq(kills_after_checkpoint, 3, "too few kills landed mid-training to test resume");

    /* the last start: the jobs the killed processes held go back to the queue at once, every
     * job resumes and finishes */
    cr_assert_eq(srv_restart(&s, args), 0);
    char ref[64];
    submit(&s, ds_ids[0], job_spec, ref, sizeof ref); /* the uninterrupted run */
    for (int i = 0; i < n_jobs; i++)
        wait_succeeded(&s, job_ids[i], 150);
    wait_succeeded(&s, ref, 60);
    char *want_w = get_text(&s, "/v1/jobs/%s/weights", ref);
    char *want_c = get_cost_text(&s, ref);
    for (int i = 0; i < n_jobs; i++) {
        char *w = get_text(&s, "/v1/jobs/%s/weights", job_ids[i]);
        char *c = get_cost_text(&s, job_ids[i]);
        cr_assert_str_eq(w, want_w, "job %d (%s): weights differ from the uninterrupted run", i,
                         job_ids[i]);
        cr_assert_str_eq(c, want_c, "job %d (%s): cost history differs", i, job_ids[i]);
        free(w);
        free(c);
    }
    free(want_w);
    free(want_c);
    srv_stop(&s);
    assert_integrity(s.datadir);
    cr_log_info("kill -9 loop total %.1f s", test_now_s() - t0);
    api_dataset_clear(&d_small);
    api_dataset_clear(&d_big);
    free(small);
    free(big);
    srv_cleanup(&s);
}

/* ---------------- kill -9, then a restart resumes at once ---------------- */

/* The lease holder of job id as stored ("" when none); the file is read directly. */
static void lease_owner_of(const char *dir, const char *id, char *out, size_t len)
{
    store_error err;
    store *st = store_open(dir, &err);
    cr_assert_not_null(st, "%s", err.msg);
    store_job j;
    cr_assert_eq(store_job_get(st, "", id, &j, &err), 0, "%s", err.msg);
    snprintf(out, len, "%s", j.status == JOB_RUNNING ? j.lease_owner : "");
    store_job_clear(&j);
    store_close(st);
}

/* Does a lease owner "host:pid:boot:n" name process pid? */
static int owner_is(const char *owner, pid_t pid)
{
    char pat[32];
    snprintf(pat, sizeof pat, ":%d:", (int)pid);
    return strstr(owner, pat) != NULL;
}

/* A job of `epochs` epochs (about 2.5 ms each on the build box): long enough to be killed
 * mid-training, after a checkpoint. */
static void submit_long(const srv *s, const char *ds, int epochs, char *id, size_t len)
{
    char training[256];
    snprintf(training, sizeof training,
             "\"optimizer\":\"adam\",\"learning_rate\":0.005,\"batch_size\":16,\"epochs\":%d,"
             "\"seed\":78,\"validation_split\":0.2,\"lambda\":0.2", epochs);
    submit(s, ds, training, id, len);
}

Test(durability, kill9_then_restart_resumes_at_once_and_bit_exact)
{
    srv s;
    const char *args[] = {"--workers", "2", "--checkpoint-seconds", "1", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    size_t n;
    char *csv = test_digits_csv(1, &n);
    char ds[64], job[64], ref[64], owner[160];
    cr_assert_eq(post_for_id(&s, UPLOAD, "text/csv", csv, n, NULL, ds, sizeof ds), 201);
    submit_long(&s, ds, 3000, job, sizeof job);
    cr_assert(wait_new_checkpoint(s.datadir, 10), "no checkpoint within 10 s");
    test_sleep_ms(300); /* mid-epoch, after a checkpoint */
    pid_t old_pid = s.pid;
    srv_kill9(&s);
    lease_owner_of(s.datadir, job, owner, sizeof owner);
    cr_assert(owner_is(owner, old_pid), "the killed job is still leased by the dead process: "
              "'%s' (pid %d)", owner, (int)old_pid);

    /* restart: the dead process's job runs again in the new one long before its 15 s lease
     * would have run out */
    double t0 = test_now_s();
    cr_assert_eq(srv_restart(&s, args), 0);
    double up = test_now_s() - t0, resumed = -1;
    while (test_now_s() - t0 < 15) {
        lease_owner_of(s.datadir, job, owner, sizeof owner);
        if (owner_is(owner, s.pid)) {
            resumed = test_now_s() - t0;
            break;
        }
        test_sleep_ms(20);
    }
    cr_log_info("kill -9 → restart: server up in %.2f s, job running again after %.2f s", up,
                resumed);
    cr_assert(resumed >= 0, "the job did not resume within 15 s (holder '%s')", owner);
    cr_assert_lt(resumed, 2.5, "the job took %.2f s to resume (waited for the lease?)", resumed);
    char *log = srv_log(&s);
    cr_assert_not_null(strstr(log, "recovered=1 reason=process_gone"), "%s", log);
    free(log);

    /* and it still ends bit-identical to an uninterrupted run with the same seed */
    submit_long(&s, ds, 3000, ref, sizeof ref);
    wait_succeeded(&s, job, 120);
    wait_succeeded(&s, ref, 120);
    char *w = get_text(&s, "/v1/jobs/%s/weights", job);
    char *wr = get_text(&s, "/v1/jobs/%s/weights", ref);
    char *c = get_cost_text(&s, job);
    char *cref = get_cost_text(&s, ref);
    cr_assert_str_eq(w, wr, "resumed job's weights differ from the uninterrupted run");
    cr_assert_str_eq(c, cref, "resumed job's cost history differs");
    free(w);
    free(wr);
    free(c);
    free(cref);
    srv_stop(&s);
    assert_integrity(s.datadir);
    free(csv);
    srv_cleanup(&s);
}

/* Seconds until job is leased by a worker of pid (polling the file), or -1 after 15 s. */
static double seconds_until_leased_by(const srv *s, const char *job, pid_t pid, double t0)
{
    char owner[160];
    while (test_now_s() - t0 < 15) {
        lease_owner_of(s->datadir, job, owner, sizeof owner);
        if (owner_is(owner, pid))
            return test_now_s() - t0;
        test_sleep_ms(20);
    }
    return -1;
}

/* kill -9 under a parent that does not reap at once leaves a zombie, which still answers
 * kill(pid, 0): the next server must still see the holder as dead and resume its job at once,
 * not after the 15 s lease. */
Test(durability, kill9_zombie_holder_is_recovered_at_once)
{
    srv s;
    const char *args[] = {"--workers", "1", "--checkpoint-seconds", "1", NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    size_t n;
    char *csv = test_digits_csv(1, &n);
    char ds[64], job[64];
    cr_assert_eq(post_for_id(&s, UPLOAD, "text/csv", csv, n, NULL, ds, sizeof ds), 201);
    submit_long(&s, ds, 3000, job, sizeof job);
    cr_assert(wait_new_checkpoint(s.datadir, 10), "no checkpoint within 10 s");
    pid_t zombie = s.pid;
    cr_assert_eq(kill(zombie, SIGKILL), 0);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    cr_assert_eq(waitid(P_PID, (id_t)zombie, &si, WEXITED | WNOWAIT), 0); /* not reaped */
    cr_assert_eq(kill(zombie, 0), 0, "the killed server should still be a zombie");

    double t0 = test_now_s();
    cr_assert_eq(srv_restart(&s, args), 0);
    double resumed = seconds_until_leased_by(&s, job, s.pid, t0);
    cr_log_info("kill -9, zombie kept → restart: job running again after %.2f s", resumed);
    cr_assert(resumed >= 0, "the job did not resume within 15 s");
    cr_assert_lt(resumed, 2.5, "the job took %.2f s to resume (waited for the lease?)", resumed);
    char *log = srv_log(&s);
    cr_assert_not_null(strstr(log, "recovered=1 reason=process_gone"), "%s", log);
    free(log);
    cr_assert_eq(waitpid(zombie, NULL, 0), zombie);
    srv_stop(&s);
    assert_integrity(s.datadir);
    free(csv);
    srv_cleanup(&s);
}

Test(durability, restart_beside_a_live_instance_steals_nothing)
{
    /* two instances on one store (one host): the second one's start-up recovery must leave
     * the first one's running job alone */
    srv a, b;
    const char *args[] = {"--workers", "1", "--checkpoint-seconds", "1", NULL};
    cr_assert_eq(srv_start(&a, args), 0);
    size_t n;
    char *csv = test_digits_csv(1, &n);
    char ds[64], job[64], owner[160];
    cr_assert_eq(post_for_id(&a, UPLOAD, "text/csv", csv, n, NULL, ds, sizeof ds), 201);
    submit_long(&a, ds, 100000, job, sizeof job);
    double end = test_now_s() + 10;
    do {
        lease_owner_of(a.datadir, job, owner, sizeof owner);
        if (owner_is(owner, a.pid))
            break;
        test_sleep_ms(20);
    } while (test_now_s() < end);
    cr_assert(owner_is(owner, a.pid), "the job did not start on the first instance: '%s'", owner);

    memcpy(&b, &a, sizeof b);
    b.own_dir = 0;
    snprintf(b.logpath, sizeof b.logpath, "%s/server-b.log", a.datadir);
    cr_assert_eq(srv_restart(&b, args), 0);
    test_sleep_ms(1500); /* b's workers have looked for work */
    lease_owner_of(a.datadir, job, owner, sizeof owner);
    cr_assert(owner_is(owner, a.pid), "the second instance took the live job: '%s'", owner);
    char *log = srv_log(&b);
    cr_assert_not_null(strstr(log, "recovered=0"), "%s", log);
    cr_assert_null(strstr(log, "recovered=1"), "%s", log);
    free(log);
    srv_stop(&b);
    /* the first instance still holds its job: a cancel through it ends the job as cancelled
     * (its worker's final write checks the lease) */
    lease_owner_of(a.datadir, job, owner, sizeof owner);
    cr_assert(owner_is(owner, a.pid), "the job moved away from the first instance: '%s'", owner);
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", job);
    resp r;
    cr_assert_eq(http_post_json(&a, path, "{}", &r), 0);
    cr_assert(r.status == 200 || r.status == 202, "cancel: %ld %s", r.status, r.body);
    resp_free(&r);
    json_t *done = wait_job(&a, job, "cancelled", 30);
    json_decref(done);
    srv_stop(&a);
    assert_integrity(a.datadir);
    free(csv);
    srv_cleanup(&a);
}

/* ---------------- disk full ---------------- */

static char mnt[400];

static void unmount_fs(void)
{
    if (mnt[0]) {
        umount2(mnt, MNT_DETACH);
        rmdir(mnt);
    }
    mnt[0] = '\0';
}

Test(durability, full_disk_gives_507_and_recovers_without_restart, .fini = unmount_fs)
{
    snprintf(mnt, sizeof mnt, "/tmp/bpd_full_XXXXXX");
    cr_assert_not_null(mkdtemp(mnt));
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=4m") != 0) {
        rmdir(mnt);
        mnt[0] = '\0';
        cr_skip_test("cannot mount a tmpfs here (%s); tests/store_sqlite.c covers disk full "
                     "with a page cap", strerror(errno));
    }
    srv s;
    const char *args[] = {"--workers", "1", "--data", mnt, NULL};
    cr_assert_eq(srv_start(&s, args), 0);
    size_t n;
    char *csv = test_digits_csv(1, &n);
    char ids[16][64];
    int stored = 0;
    long status = 0;
    for (; stored < 16; stored++) {
        status = post_for_id(&s, UPLOAD, "text/csv", csv, n, NULL, ids[stored],
                             sizeof ids[stored]);
        if (status != 201)
            break;
    }
    cr_assert_eq(status, 507, "upload %d: %ld", stored, status);
    cr_assert_gt(stored, 0);
    cr_log_info("4 MiB file system full after %d digits uploads", stored);
    /* the server keeps serving, and what it stored is intact */
    resp r;
    cr_assert_eq(http_get(&s, "/healthz", &r), 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    for (int i = 0; i < stored; i++)
        free(get_text(&s, "/v1/datasets/%s", ids[i]));
    /* space returns: the next upload works, same process */
    cr_assert_eq(mount(NULL, mnt, NULL, MS_REMOUNT, "size=16m"), 0, "%s", strerror(errno));
    char more[64];
    cr_assert_eq(post_for_id(&s, UPLOAD, "text/csv", csv, n, NULL, more, sizeof more), 201);
    srv_stop(&s);
    assert_integrity(mnt);

    api_dataset d;
    parse_csv(csv, n, &d);
    store_error err;
    store *st = store_open(mnt, &err);
    cr_assert_not_null(st, "%s", err.msg);
    for (int i = 0; i < stored; i++)
        assert_dataset_bytes(st, ids[i], &d);
    assert_dataset_bytes(st, more, &d);
    store_close(st);
    api_dataset_clear(&d);
    free(csv);
    srv_cleanup(&s);
}
