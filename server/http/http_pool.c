/* http_pool.c — the work pool behind http_defer and the routes with a body, in the manner of
 * Redis' bio.c: tasks queued under one mutex and one condition variable; a pool thread locks,
 * pops, unlocks, runs the task WITHOUT the lock, then resumes the connection (the last time
 * it touches the req).
 *
 * DESIGN. Two lanes, so that small requests are never stuck behind big ones. The heavy lane
 * holds compute whose cost the body does not bound (the routes marked `heavy`: cost,
 * gradients, gradient checks, predictions) and bodies past HTTP_QUICK_BODY (their parse is
 * the work); it keeps one FIFO per tenant (the API key's name, or the client's address
 * without keys) in a ring served in turn, so one tenant's twenty gradient checks delay
 * another's request by at most one task per tenant ahead of it. The quick lane (everything
 * else: small uploads, job requests, cancels) is one FIFO. The first pool thread serves only
 * the quick lane; the others take a quick task first, else the next tenant's heavy task.
 * Each lane holds at most max_pending queued tasks (a tenant at most a quarter of the heavy
 * lane's): past that, 503 + Retry-After at once, never an unbounded queue. On shutdown the
 * pool stops taking tasks and answers every queued one 503 + Retry-After (the running ones
 * finish), so every accepted request is answered and every suspended connection is resumed
 * before MHD_stop_daemon. The threads run below the HTTP threads' priority: on a busy
 * machine a parse or a gradient waits, a probe does not.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "server/http/http_internal.h"

#define WORK_NICENESS 10 /* the work pool's threads, relative to the HTTP threads' 0 */

typedef struct {
    http_server *p;
    int quick_only;
} pool_thread;

/* ------------------------------------------------------------------ the lanes (under lock) */

static int tenant_limit(const http_server *p)
{
    return p->max_pending / 4 > 0 ? p->max_pending / 4 : 1;
}

static tenant_queue *tenant_find(http_server *p, const char *tenant)
{
    for (tenant_queue *q = p->heavy; q; q = q->next)
        if (strcmp(q->tenant, tenant) == 0)
            return q;
    return NULL;
}

/* Pops the next task: the quick lane first, then (unless quick_only) the heavy lane's next
 * tenant, whose queue then goes to the end of the ring (or away, when empty). */
static task *pop_locked(http_server *p, int quick_only)
{
    task *t = p->quick_head;
    if (t) {
        p->quick_head = t->next;
        if (!p->quick_head)
            p->quick_tail = NULL;
        p->n_quick--;
        return t;
    }
    tenant_queue *q = quick_only ? NULL : p->heavy;
    if (!q)
        return NULL;
    t = q->head;
    q->head = t->next;
    if (!q->head)
        q->tail = NULL;
    q->n--;
    p->n_heavy--;
    p->heavy = q->next;
    if (q->head) { /* to the end of the ring */
        tenant_queue **end = &p->heavy;
        while (*end)
            end = &(*end)->next;
        q->next = NULL;
        *end = q;
    } else {
        free(q);
    }
    return t;
}

/* Queues t on its lane. 0, or -1 when the lane (or the tenant's share of it) is full or
 * memory ran out (t is then not queued). */
static int push_locked(http_server *p, task *t, int heavy, const char *tenant)
{
    t->next = NULL;
    if (!heavy) {
        if (p->n_quick >= p->max_pending)
            return -1;
        if (p->quick_tail)
            p->quick_tail->next = t;
        else
            p->quick_head = t;
        p->quick_tail = t;
        p->n_quick++;
        return 0;
    }
    if (p->n_heavy >= p->max_pending)
        return -1;
    tenant_queue *q = tenant_find(p, tenant);
    if (q && q->n >= tenant_limit(p))
        return -1;
    if (!q) {
        q = calloc(1, sizeof *q);
        if (!q)
            return -1;
        snprintf(q->tenant, sizeof q->tenant, "%s", tenant);
        tenant_queue **end = &p->heavy;
        while (*end)
            end = &(*end)->next;
        *end = q;
    }
    if (q->tail)
        q->tail->next = t;
    else
        q->head = t;
    q->tail = t;
    q->n++;
    p->n_heavy++;
    return 0;
}

/* ------------------------------------------------------------------ threads */

/* Sets the task's reply if it set none, hands the req back to MHD's thread, frees the task. */
static void finish(task *t)
{
    req *r = &t->ri->r;
    if (!r->status)
        http_reply_problem(r, 500, "deferred work for %s %s set no reply", r->method, r->path);
    r->phase = PHASE_RESUMED;
    struct MHD_Connection *conn = r->conn;
    free(t);
    MHD_resume_connection(conn); /* after this the req belongs to MHD's thread again */
}

static void *pool_main(void *arg)
{
    pool_thread *pt = arg;
    http_server *p = pt->p;
    /* Raising one's own niceness needs no privilege; failing to is harmless. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WORK_NICENESS);
    for (;;) {
        pthread_mutex_lock(&p->lock);
        task *t;
        while (!(t = pop_locked(p, pt->quick_only)) && !p->stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        pthread_mutex_unlock(&p->lock);
        if (!t) /* stopping (drain refuses what is still queued) */
            break;
        t->fn(t->arg, &t->ri->r);
        finish(t);
    }
    free(pt);
    return NULL;
}

/* The tenant a request's heavy work is queued under: its API key's name, else its address. */
static void request_tenant(req *r, char *out, size_t len)
{
    if (r->owner[0]) {
        snprintf(out, len, "key:%s", r->owner);
        return;
    }
    snprintf(out, len, "addr:?");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    char ip[INET6_ADDRSTRLEN] = "";
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, ip,
                  sizeof ip);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, ip,
                  sizeof ip);
    if (ip[0])
        snprintf(out, len, "addr:%s", ip);
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
    t->ri = ri;
    t->fn = fn;
    t->arg = arg;
    int heavy = (r->rt && r->rt->heavy) || ri->bytes_in > HTTP_QUICK_BODY;
    char tenant[80];
    request_tenant(r, tenant, sizeof tenant);

    pthread_mutex_lock(&p->lock);
    int stopping = p->stopping, queued = 0;
    if (!stopping && push_locked(p, t, heavy, tenant) == 0) {
        /* Suspended before a pool thread can pop the task (it needs the lock), so resume
         * follows suspend. */
        queued = 1;
        r->phase = PHASE_DEFERRED;
        ri->deferred = 1;
        atomic_fetch_add(&p->deferred_live, 1);
        MHD_suspend_connection(r->conn);
        pthread_cond_broadcast(&p->cond); /* the quick-only thread may not take it */
    }
    pthread_mutex_unlock(&p->lock);
    if (queued) /* t is in the queue now: the pool thread that pops it frees it */
        return HANDLER_OK; /* cppcheck-suppress memleak */
    free(t);
    if (stopping) {
        http_add_header(r, "Retry-After", "5");
        return http_reply_problem(r, 503, "the server is shutting down: try again shortly");
    }
    http_add_header(r, "Retry-After", "1");
    return http_reply_problem(r, 503,
                              "the server is busy: %s work queued already (the limit is %d "
                              "per lane, a quarter of it per client); try again shortly",
                              heavy ? "this client's share of heavy" : "too much quick",
                              p->max_pending);
}

void http_pool_free(http_server *p)
{
    if (!p)
        return;
    http_guard_free(p->guard);
    free(p->threads);
    free(p->tls_cert);
    free(p->tls_key);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* Stops taking tasks, answers the queued ones 503 + Retry-After, joins the threads once the
 * running tasks end. */
void http_pool_drain(http_server *p)
{
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    task *refused = NULL, *t;
    while ((t = pop_locked(p, 0))) {
        t->next = refused;
        refused = t;
    }
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    while ((t = refused)) {
        refused = t->next;
        req *r = &t->ri->r;
        http_add_header(r, "Retry-After", "5");
        http_reply_problem(r, 503, "the server is shutting down: try again shortly");
        finish(t);
    }
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    p->n_threads = 0;
}

/* Starts the quick lane's thread and n more. 0 ok, -1 with err (the threads started are
 * joined by pool_drain). */
int http_pool_start(http_server *p, int n, char *err, size_t errlen)
{
    p->threads = calloc((size_t)n + 1, sizeof *p->threads);
    if (!p->threads) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i <= n; i++) {
        pool_thread *pt = malloc(sizeof *pt);
        if (!pt) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        pt->p = p;
        pt->quick_only = i == 0;
        int e = pthread_create(&p->threads[i], NULL, pool_main, pt);
        if (e) {
            free(pt);
            snprintf(err, errlen, "work thread: %s", strerror(e));
            return -1;
        }
        p->n_threads++;
    }
    return 0;
}
