/* http_jobs_threads.c — a job's threads (--job-threads) through the real binary over HTTP: the
 * same seed, spec and data give byte-identical served weights with --job-threads 1, 2, 3 and 7
 * and --workers 1 and 2 (two jobs at once sharing the pools), for a mini-batch job whose
 * batches are cut into shards and a full-batch one; the pools exist (the process has their
 * threads); and a job checkpointed at one thread count (at its SIGTERM) and resumed after a
 * restart at another ends with the weights of an uninterrupted run at a third, in float64 and
 * in float32. tests/run also runs this file against the ThreadSanitizer build.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"

/* Threads of the server process (its /proc/PID/task entries). */
static int process_threads(const srv *s)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)s->pid);
    DIR *d = opendir(path);
    cr_assert_not_null(d, "cannot read %s", path);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

#define MINI "\"optimizer\":\"adam\",\"learning_rate\":0.01,\"batch_size\":256,\"epochs\":6," \
             "\"seed\":7,\"validation_split\":0.1,\"lambda\":0.5"
#define FULL "\"optimizer\":\"gd\",\"learning_rate\":1.0,\"epochs\":10,\"seed\":8,\"lambda\":1"

Test(job_threads, same_weights_any_job_threads_and_workers, .timeout = 300)
{
    const char *args[][5] = {{"--job-threads", "1", "--workers", "1", NULL},
                             {"--job-threads", "2", "--workers", "2", NULL},
                             {"--job-threads", "3", "--workers", "1", NULL},
                             {"--job-threads", "7", "--workers", "2", NULL}};
    enum { N = sizeof args / sizeof args[0] };
    char *mini[N], *full[N];
    for (int k = 0; k < N; k++) {
        srv s;
        cr_assert_eq(srv_start(&s, args[k]), 0);
        char ds[64], a[64], b[64];
        upload_digits(&s, ds, sizeof ds);
        submit_training(&s, NULL, ds, "[64,40,10]", MINI, a, sizeof a); /* 2 workers: at once */
        submit_training(&s, NULL, ds, "[64,40,10]", FULL, b, sizeof b);
        json_decref(wait_job(&s, a, "succeeded", 120));
        json_decref(wait_job(&s, b, "succeeded", 120));
        mini[k] = get_text(&s, "/v1/jobs/%s/weights", a);
        full[k] = get_text(&s, "/v1/jobs/%s/weights", b);
        cr_assert(strlen(mini[k]) > 10000 && strlen(full[k]) > 10000);
        /* each worker and its pool's --job-threads − 1 helpers (and main, HTTP, ...) */
        int workers = atoi(args[k][3]), jt = atoi(args[k][1]);
        cr_assert_gt(process_threads(&s), workers * jt, "%s %s: %d threads", args[k][1],
                     args[k][3], process_threads(&s));
        srv_stop(&s);
        srv_cleanup(&s);
    }
    cr_assert(strcmp(mini[0], full[0]) != 0); /* two different runs: the comparison can fail */
    for (int k = 1; k < N; k++) {
        cr_assert_str_eq(mini[k], mini[0], "mini-batch: %s %s %s %s differs from 1 thread",
                         args[k][0], args[k][1], args[k][2], args[k][3]);
        cr_assert_str_eq(full[k], full[0], "full batch: %s %s %s %s differs from 1 thread",
                         args[k][0], args[k][1], args[k][2], args[k][3]);
    }
    for (int k = 0; k < N; k++) {
        free(mini[k]);
        free(full[k]);
    }
}

#define LONG "\"optimizer\":\"adam\",\"learning_rate\":0.002,\"batch_size\":192,\"epochs\":100," \
             "\"seed\":5,\"validation_split\":0.2,\"lambda\":0.1"

/* A job with training `training` checkpointed on 2 threads at its SIGTERM, resumed on 7 after
 * a restart, ends with the served weights of the same job run uninterrupted on 1 thread. */
static void resume_across_thread_counts(const char *training)
{
    srv s, r;
    const char *two[] = {"--workers", "1", "--job-threads", "2", "--checkpoint-seconds", "1",
                         NULL};
    const char *seven[] = {"--workers", "1", "--job-threads", "7", NULL};
    const char *one[] = {"--workers", "1", "--job-threads", "1", NULL};
    cr_assert_eq(srv_start(&s, two), 0);
    char ds[64], a[64], dr[64], b[64];
    upload_digits(&s, ds, sizeof ds);
    submit_training(&s, NULL, ds, "[64,100,10]", training, a, sizeof a);
    wait_epoch(&s, a, 3, 120);
    json_t *mid = get_json(&s, "/v1/jobs/%s", a);
    int64_t at = json_integer_value(json_object_get(json_object_get(mid, "progress"), "epoch"));
    json_decref(mid);
    cr_assert_lt(at, 100, "the job finished before the restart: make it longer");
    srv_stop(&s); /* SIGTERM: a checkpoint at the last epoch boundary (2 threads), release */
    char *log = srv_log(&s);
    cr_assert_not_null(strstr(log, "status=queued"), "no release logged:\n%s", log);
    free(log);
    cr_assert_eq(srv_restart(&s, seven), 0);
    json_t *ja = wait_job(&s, a, NULL, 300);
    cr_assert_str_eq(json_string_value(json_object_get(ja, "status")), "succeeded");
    char *wa = get_text(&s, "/v1/jobs/%s/weights", a);
    /* it resumed from the checkpoint, not from the start */
    log = srv_log(&s);
    char running[128];
    snprintf(running, sizeof running, "id=%s status=running epoch=", a);
    const char *p = strstr(log, running), *last = NULL;
    for (; p; p = strstr(p + 1, running))
        last = p;
    cr_assert_not_null(last, "no running line in:\n%s", log);
    long from = strtol(last + strlen(running), NULL, 10);
    cr_assert_geq(from, 3, "the restarted job began at epoch %ld", from);
    free(log);
    /* the same job uninterrupted, on one thread, on another server */
    cr_assert_eq(srv_start(&r, one), 0);
    upload_digits(&r, dr, sizeof dr);
    submit_training(&r, NULL, dr, "[64,100,10]", training, b, sizeof b);
    json_t *jb = wait_job(&r, b, NULL, 300);
    cr_assert_str_eq(json_string_value(json_object_get(jb, "status")), "succeeded");
    char *wb = get_text(&r, "/v1/jobs/%s/weights", b);
    if (strstr(training, "float32"))
        cr_assert_not_null(strstr(wa, "\"precision\":\"float32\""), "weights: %.200s", wa);
    cr_assert_str_eq(wa, wb, "%s: resumed on 7 threads after a checkpoint on 2 (epoch %lld): "
                     "weights differ from 1 thread uninterrupted", training, (long long)at);
    free(wa);
    free(wb);
    json_decref(ja);
    json_decref(jb);
    srv_stop(&s);
    srv_cleanup(&s);
    srv_stop(&r);
    srv_cleanup(&r);
}

Test(job_threads, resume_at_another_thread_count, .timeout = 400)
{
    resume_across_thread_counts(LONG);
}

/* The same for float32 training (mixed precision: float64 master weights in the checkpoint,
 * float32 passes): its served weights say so. */
Test(job_threads, resume_at_another_thread_count_float32, .timeout = 400)
{
    resume_across_thread_counts(LONG ",\"precision\":\"float32\"");
}
