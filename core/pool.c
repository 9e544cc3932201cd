/* pool.c — the passes' thread pool (bp.h: bp_pool_*), and core_parallel_for, the one way the
 * core runs work on it. A pool is a caller-owned object, never a global.
 *
 * DESIGN: threads − 1 pthreads sleep on `go`; a parallel-for publishes its task under the
 * mutex with a new generation number and the number of helpers it wants (the active count
 * minus the caller, at most n − 1), opens it, wakes them, and works through the indices
 * itself as thread 0. Every participant takes the next index from an atomic counter until
 * none is left, so which thread runs which index is timing; the results never are (each index
 * writes only its own outputs, see net.c). A helper joins only while the task is open (under
 * the mutex, counted in `busy`); the caller, once it finds no index left, closes the task and
 * waits for the helpers that joined, not for those still asleep: on a loaded machine a
 * descheduled helper costs nothing, and none can touch a task after its parallel-for returned.
 * Helpers not asked for (index above the wanted count) sleep through a generation.
 */
#include "core/core_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct {
    bp_pool *pool;
    int index; /* 1 .. threads − 1 */
} helper;

struct bp_pool {
    pthread_mutex_t mu;
    pthread_cond_t go;     /* helpers: a new generation, or quit */
    pthread_cond_t done;   /* caller: pending reached 0 */
    int threads;           /* participants, caller included */
    atomic_int active;     /* participants the next parallel-for uses */
    pthread_t *tid;        /* threads − 1 */
    helper *helpers;       /* threads − 1 */
    int started;           /* helpers running */
    /* the current task, under mu */
    uint64_t gen;
    int wanted;            /* helpers 1..wanted may take part in generation gen */
    int open;              /* helpers may still join the current task */
    int busy;              /* helpers that joined it and have not finished */
    int quit;
    core_task fn;
    void *arg;
    int64_t n;
    atomic_llong next;     /* next index to take */
};

/* Takes indices until none is left. */
static void drain(bp_pool *p, core_task fn, void *arg, int64_t n, int thread)
{
    for (;;) {
        int64_t i = atomic_fetch_add(&p->next, 1);
        if (i >= n)
            break;
        fn(arg, i, thread);
    }
}

static void *helper_main(void *varg)
{
    helper *h = varg;
    bp_pool *p = h->pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && (p->gen == seen || h->index > p->wanted)) {
            if (p->gen != seen && h->index > p->wanted)
                seen = p->gen; /* not asked for this one */
            else
                pthread_cond_wait(&p->go, &p->mu);
        }
        if (p->quit)
            break;
        seen = p->gen;
        if (!p->open)
            continue; /* the caller already finished it */
        p->busy++;
        core_task fn = p->fn;
        void *arg = p->arg;
        int64_t n = p->n;
        pthread_mutex_unlock(&p->mu);
        drain(p, fn, arg, n, h->index);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0 && !p->open)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

bp_pool *bp_pool_new(int threads, bp_error *err)
{
    if (threads < 1 || threads > 4096) {
        core_set_error(err, "threads: must be an integer in 1..4096");
        return NULL;
    }
    bp_pool *p = calloc(1, sizeof *p);
    if (!p)
        goto oom;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = threads;
    atomic_init(&p->active, threads);
    atomic_init(&p->next, 0);
    p->tid = calloc((size_t)threads, sizeof *p->tid);
    p->helpers = calloc((size_t)threads, sizeof *p->helpers);
    if (!p->tid || !p->helpers)
        goto oom;
    for (int k = 1; k < threads; k++) {
        p->helpers[k - 1] = (helper){p, k};
        if (pthread_create(&p->tid[k - 1], NULL, helper_main, &p->helpers[k - 1]) != 0) {
            core_set_error(err, "threads: cannot start thread %d of %d", k + 1, threads);
            bp_pool_free(p);
            return NULL;
        }
        p->started = k;
    }
    return p;
oom:
    core_set_error(err, "threads: out of memory for a pool of %d", threads);
    bp_pool_free(p);
    return NULL;
}

void bp_pool_free(bp_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int k = 0; k < p->started; k++)
        pthread_join(p->tid[k], NULL);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->tid);
    free(p->helpers);
    free(p);
}

int bp_pool_threads(const bp_pool *p)
{
    return p ? p->threads : 1;
}

void bp_pool_set_active(bp_pool *p, int active)
{
    if (!p)
        return;
    atomic_store(&p->active, active < 1 ? 1 : active > p->threads ? p->threads : active);
}

int bp_pool_active(const bp_pool *p)
{
    return p ? atomic_load(&p->active) : 1;
}

void core_parallel_for(bp_pool *p, int64_t n, core_task fn, void *arg)
{
    int want = p ? atomic_load(&p->active) - 1 : 0;
    if (want > n - 1)
        want = (int)(n - 1);
    if (want <= 0) {
        for (int64_t i = 0; i < n; i++)
            fn(arg, i, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    atomic_store(&p->next, 0);
    p->wanted = want;
    p->open = 1;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    drain(p, fn, arg, n, 0);
    pthread_mutex_lock(&p->mu);
    p->open = 0;
    while (p->busy > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
