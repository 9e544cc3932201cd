/* http_pool.c — the work pool behind http_defer and the routes with a body: one FIFO of
 * tasks guarded by one mutex and one condition variable (in the manner of Redis' bio.c).
 * http_defer suspends the connection, then locks, appends, signals and unlocks. A pool
 * thread locks, pops, unlocks, runs the task WITHOUT the lock, then resumes the connection
 * (the last time it touches the req). On shutdown the pool stops taking new tasks (they get
 * 503), finishes those already queued, and its threads are joined, so every suspended
 * connection has been resumed before MHD_stop_daemon. The threads run below the HTTP
 * threads' priority: on a busy machine a parse or a gradient waits, a probe does not.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "server/http/http_internal.h"

#define WORK_NICENESS 10 /* the work pool's threads, relative to the HTTP threads' 0 */

static void *pool_main(void *arg)
{
    http_server *p = arg;
    /* Raising one's own niceness needs no privilege; failing to is harmless. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WORK_NICENESS);
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        task *t = p->head;
        if (!t) { /* stopping and nothing left */
            pthread_mutex_unlock(&p->lock);
            break;
        }
        p->head = t->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);

        req *r = &t->ri->r;
        t->fn(t->arg, r);
        if (!r->status)
            http_reply_problem(r, 500, "deferred work for %s %s set no reply", r->method,
                               r->path);
        r->phase = PHASE_RESUMED;
        struct MHD_Connection *conn = r->conn;
        free(t);
        MHD_resume_connection(conn); /* after this the req belongs to MHD's thread again */
    }
    return NULL;
}

handler_result http_defer(req *r, void (*fn)(void *arg, req *r), void *arg)
{
    req_impl *ri = (req_impl *)(void *)r;
    http_server *p = ri->h;
    if (r->phase == PHASE_DEFERRED) { /* already on the pool (a route with a body) */
        fn(arg, r);
        return HANDLER_OK;
    }
    task *t = malloc(sizeof *t);
    if (!t)
        return http_reply_problem(r, 503, "out of memory: try again later");
    t->next = NULL;
    t->ri = ri;
    t->fn = fn;
    t->arg = arg;

    pthread_mutex_lock(&p->lock);
    int stopping = p->stopping;
    if (!stopping) {
        /* Suspended before a pool thread can see the task, so resume follows suspend. */
        r->phase = PHASE_DEFERRED;
        ri->deferred = 1;
        atomic_fetch_add(&p->deferred_live, 1);
        MHD_suspend_connection(r->conn);
        if (p->tail)
            p->tail->next = t;
        else
            p->head = t;
        p->tail = t;
        pthread_cond_signal(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
    if (stopping) {
        free(t);
        http_add_header(r, "Retry-After", "5");
        return http_reply_problem(r, 503, "the server is shutting down: try again shortly");
    }
    /* t is in the queue now: the pool thread that pops it frees it */
    /* cppcheck-suppress memleak */
    return HANDLER_OK;
}

void http_pool_free(http_server *p)
{
    if (!p)
        return;
    free(p->threads);
    free(p->tls_cert);
    free(p->tls_key);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* Stops taking tasks, runs what is queued, joins the threads. */
void http_pool_drain(http_server *p)
{
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    p->n_threads = 0;
}

/* Starts n pool threads. 0 ok, -1 with err (the threads started are joined by pool_drain). */
int http_pool_start(http_server *p, int n, char *err, size_t errlen)
{
    p->threads = calloc((size_t)(n > 0 ? n : 1), sizeof *p->threads);
    if (!p->threads) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int e = pthread_create(&p->threads[i], NULL, pool_main, p);
        if (e) {
            snprintf(err, errlen, "work thread: %s", strerror(e));
            return -1;
        }
        p->n_threads++;
    }
    return 0;
}

