/* bench_store.c — the cost of durability:
 *   1. uploading the 60,000 × 784 dataset into the SQLite store on disk (WAL, synchronous=FULL)
 *      against the same store on a tmpfs (/dev/shm: an in-memory store) and against a plain
 *      memcpy of the same bytes (what keeping it only in memory would cost), plus the load;
 *   2. checkpoints of a W2 job (784-256-128-10, adam, batch 256): the cost of one checkpoint
 *      (trainer image + weights + history in one transaction) and training time with a
 *      checkpoint after every epoch against none, projected to the default 10 s interval
 *      (target < 3% slower).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "core/bp.h"
#include "server/store/store.h"

/* Seconds to store the dataset into a fresh store under `parent` (median of `runs`), and to
 * load it back (median). -1 on failure. */
static int time_put_load(const char *parent, const double *X, const int32_t *labels, int64_t m,
                         int n_in, int runs, double *put_s, double *load_s)
{
    double puts[8], loads[8];
    char dir[256];
    for (int r = 0; r < runs; r++) {
        snprintf(dir, sizeof dir, "%s/bpd_bench_XXXXXX", parent);
        if (!mkdtemp(dir))
            return -1;
        store_error err;
        store *s = store_open(dir, &err);
        if (!s) {
            fprintf(stderr, "store_open %s: %s\n", dir, err.msg);
            test_rm_tree(dir);
            return -1;
        }
        store_dataset_meta meta;
        memset(&meta, 0, sizeof meta);
        snprintf(meta.id, sizeof meta.id, "ds_bench%02d", r);
        meta.rows = m;
        meta.features = n_in;
        meta.outputs = 10;
        meta.has_labels = 1;
        double t0 = test_now_s();
        int rc = store_dataset_put(s, &meta, X, labels, NULL, &err);
        puts[r] = test_now_s() - t0;
        double *X2 = NULL, *Y2 = NULL;
        int32_t *l2 = NULL;
        t0 = test_now_s();
        if (rc == 0)
            rc = store_dataset_load(s, "", meta.id, &meta, &X2, &l2, &Y2, &err);
        loads[r] = test_now_s() - t0;
        if (rc == 0 && memcmp(X2, X, (size_t)m * (size_t)n_in * 8) != 0) {
            fprintf(stderr, "loaded dataset differs\n");
            rc = -1;
        }
        free(X2);
        free(l2);
        free(Y2);
        store_close(s);
        test_rm_tree(dir);
        if (rc != 0) {
            fprintf(stderr, "store: %s\n", err.msg);
            return -1;
        }
    }
    *put_s = bench_median(puts, runs);
    *load_s = bench_median(loads, runs);
    return 0;
}

static int bench_upload(void)
{
    const int64_t m = 60000;
    const int n_in = 784;
    double *X = NULL, *Y = NULL;
    int32_t *labels = NULL;
    if (bench_synthetic(&X, &Y, &labels, m, n_in, 10, 12345) != 0)
        return -1;
    double mb = ((double)m * n_in * 8 + (double)m * 4) / 1e6;

    /* memcpy baseline: an in-memory store keeps a copy */
    double copies[3];
    double *Xc = malloc((size_t)m * n_in * 8);
    int32_t *lc = malloc((size_t)m * 4);
    if (!Xc || !lc)
        return -1;
    memset(Xc, 0, (size_t)m * n_in * 8); /* fault the pages in first */
    for (int r = 0; r < 3; r++) {
        double t0 = test_now_s();
        memcpy(Xc, X, (size_t)m * n_in * 8);
        memcpy(lc, labels, (size_t)m * 4);
        copies[r] = test_now_s() - t0;
    }
    double copy_s = bench_median(copies, 3);
    free(Xc);
    free(lc);

    double disk_put, disk_load, shm_put, shm_load;
    if (time_put_load("/tmp", X, labels, m, n_in, 3, &disk_put, &disk_load) < 0 ||
        time_put_load("/dev/shm", X, labels, m, n_in, 3, &shm_put, &shm_load) < 0)
        return -1;
    printf("dataset 60000x784 + labels (%.0f MB), median of 3:\n", mb);
    printf("  memcpy (in-memory copy)      %8.3f s  %7.0f MB/s\n", copy_s, mb / copy_s);
    printf("  SQLite store on tmpfs        %8.3f s  %7.0f MB/s   load %.3f s (%.0f MB/s)\n",
           shm_put, mb / shm_put, shm_load, mb / shm_load);
    printf("  SQLite store on disk (FULL)  %8.3f s  %7.0f MB/s   load %.3f s (%.0f MB/s)\n",
           disk_put, mb / disk_put, disk_load, mb / disk_load);
    printf("  durability cost: disk/tmpfs = %.2fx, disk/memcpy = %.1fx\n", disk_put / shm_put,
           disk_put / copy_s);
    free(X);
    free(Y);
    free(labels);
    return 0;
}

/* One checkpoint as the jobs module writes it: image + weights + history + progress. */
static int checkpoint(store *s, bp_trainer *t, void *buf, size_t size, const bp_progress *p,
                      int64_t n_params, store_error *err)
{
    bp_error be;
    if (bp_trainer_checkpoint_save(t, buf, size, &be) != 0) {
        snprintf(err->msg, sizeof err->msg, "checkpoint_save: %.200s", be.msg);
        return -1;
    }
    store_history h = {.first_epoch = p->epoch, .n = 1, .cost = &p->cost,
                       .validation_cost = &p->validation_cost, .accuracy = &p->accuracy};
    store_progress sp = {.epoch = p->epoch, .epochs = p->epochs, .cost = p->cost,
                         .validation_cost = p->validation_cost, .accuracy = p->accuracy,
                         .samples_per_second = p->samples_per_second};
    return store_job_checkpoint(s, "job_bench", "bench", &h, &sp, buf, size,
                                bp_trainer_theta(t), n_params, err);
}

static int bench_checkpoints(void)
{
    const int64_t m = 60000;
    double *X = NULL, *Y = NULL;
    int32_t *labels = NULL;
    if (bench_synthetic(&X, &Y, &labels, m, 784, 10, 12345) != 0)
        return -1;
    bp_spec spec = {4, {784, 256, 128, 10}, BP_ACT_SIGMOID, BP_OUT_SIGMOID};
    bp_train_config cfg = bench_config(BP_OPT_ADAM, 0.001, 0.0, 256, 100);
    bp_data data = {.X = X, .Y = Y, .labels = labels, .m = m, .n_in = 784, .n_out = 10};
    bp_error be;
    bp_trainer *t = bp_trainer_new(&spec, &cfg, &data, NULL, &be);
    if (!t) {
        fprintf(stderr, "trainer: %s\n", be.msg);
        return -1;
    }
    int64_t n_params = bp_param_count(&spec);
    size_t size = bp_trainer_checkpoint_size(t);
    void *buf = malloc(size);

    char dir[] = "/tmp/bpd_bench_XXXXXX";
    store_error err;
    store *s = mkdtemp(dir) ? store_open(dir, &err) : NULL;
    int rc = -1;
    if (!s || !buf)
        goto cleanup;
    store_dataset_meta meta;
    memset(&meta, 0, sizeof meta);
    snprintf(meta.id, sizeof meta.id, "ds_w2");
    meta.rows = 1;
    meta.features = 1;
    meta.outputs = 1;
    meta.has_labels = 1;
    double one = 1;
    int32_t zero = 0;
    store_job job;
    memset(&job, 0, sizeof job);
    snprintf(job.id, sizeof job.id, "job_bench");
    snprintf(job.dataset_id, sizeof job.dataset_id, "ds_w2");
    job.spec_json = (char *)"{}";
    store_job claimed;
    if (store_dataset_put(s, &meta, &one, &zero, NULL, &err) != 0 ||
        store_job_create(s, &job, NULL, 0, &err) != 0 ||
        store_job_claim(s, "bench", 3600000, &claimed, &err) != 0)
        goto cleanup;
    store_job_clear(&claimed);

    bp_progress p;
    if (bp_trainer_epoch(t, &p, NULL, &be) != BP_TRAIN_CONTINUE) { /* warm-up, not timed */
        fprintf(stderr, "epoch: %s\n", be.msg);
        goto cleanup;
    }
    /* epochs alternate: plain, then with a checkpoint (same work either way); medians, as
     * this box is shared */
    const int pairs = 3;
    double plain[3], with[3], costs[16];
    int nc = 0;
    for (int e = 0; e < 2 * pairs; e++) {
        double t0 = test_now_s();
        if (bp_trainer_epoch(t, &p, NULL, &be) != BP_TRAIN_CONTINUE) {
            fprintf(stderr, "epoch: %s\n", be.msg);
            goto cleanup;
        }
        double t1 = test_now_s();
        if (e % 2) {
            if (checkpoint(s, t, buf, size, &p, n_params, &err) != 0)
                goto cleanup;
            double t2 = test_now_s();
            costs[nc++] = t2 - t1;
            with[e / 2] = t2 - t0;
        } else {
            plain[e / 2] = t1 - t0;
        }
    }
    for (int i = 0; i < 6; i++) { /* more checkpoint samples, no training in between */
        double t0 = test_now_s();
        if (checkpoint(s, t, buf, size, &p, n_params, &err) != 0)
            goto cleanup;
        costs[nc++] = test_now_s() - t0;
    }
    double ck = bench_median(costs, nc);
    double epoch_s = bench_median(plain, pairs), epoch_ck = bench_median(with, pairs);
    printf("W2 checkpoint: image %.1f MB + weights %.1f MB, median %.1f ms (%d samples)\n",
           (double)size / 1e6, (double)n_params * 8 / 1e6, ck * 1e3, nc);
    printf("  epoch %.2f s plain, %.2f s with a checkpoint after it (medians of %d)\n", epoch_s,
           epoch_ck, pairs);
    printf("  checkpoint every 10 s (default): +%.2f%% training time (target < 3%%)\n",
           100.0 * ck / fmax(10.0, epoch_s));
    rc = 0;
cleanup:
    if (rc != 0)
        fprintf(stderr, "bench_store: %s\n", err.msg);
    store_close(s);
    test_rm_tree(dir);
    free(buf);
    bp_trainer_free(t);
    free(X);
    free(Y);
    free(labels);
    return rc;
}

int main(void)
{
    int rc = bench_upload();
    if (bench_checkpoints() != 0)
        rc = -1;
    return rc == 0 ? 0 : 1;
}
