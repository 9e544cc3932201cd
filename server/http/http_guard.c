/* http_guard.c — the connection guard: deadlines and a budget that libmicrohttpd does not
 * have, so slow clients (slowloris: headers a byte at a time; slow bodies) cannot hold the
 * server's connection slots.
 *
 * DESIGN. MHD tells us when a connection opens and closes (MHD_OPTION_NOTIFY_CONNECTION); we
 * keep one `guard_conn` per connection (its socket context) in one list under one mutex, and
 * the access handler marks its phase: WAITING for a request's headers (from the connection's
 * start, or from the end of its previous request), RECEIVING a body, SERVING (a handler, the
 * work pool or a stream has it: no deadline here). A reaper thread, four times a second, ends
 * a connection that has waited for its headers longer than --header-timeout, or whose body
 * has come slower than GUARD_MIN_BODY_RATE on average once that long has passed. The budget:
 * connections waiting for headers may hold at most 90% of --max-connections; a connection
 * that opens beyond that ends the one that has waited longest at once, so there is always
 * room for a short request whose headers come in one piece. A connection is ended by
 * shutdown(2) of its socket: MHD then sees the end of the stream and closes it the usual way
 * (completion callback, log line, close notification), on its own thread. Nothing here holds
 * the lock while doing more than list bookkeeping and that one system call.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/http/http_internal.h"

#define GUARD_MIN_BODY_RATE 1024.0 /* bytes/s a body must average after --header-timeout */
#define GUARD_TICK_NS (250 * 1000 * 1000)

struct guard_conn {
    guard_conn *prev, *next;
    int fd;
    int phase;           /* GUARD_WAITING, GUARD_RECEIVING, GUARD_SERVING */
    int ended;           /* shut down by the guard (counted once) */
    double since;        /* monotonic seconds the phase began */
    uint64_t body;       /* bytes of body received in this phase */
};

struct http_guard {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    guard_conn *head;
    int n, waiting;
    int budget;          /* waiting connections at most */
    double header_timeout;
    int stop;
    pthread_t reaper;
    int started;
};

/* Ends c (under mu): its socket is shut down; MHD closes it. */
static void end_locked(http_guard *g, guard_conn *c, const char *why)
{
    (void)g;
    if (c->ended)
        return;
    c->ended = 1;
    shutdown(c->fd, SHUT_RDWR);
    log_event(LOG_INFO, "connection_ended", "reason=%s phase=%s seconds=%.1f bytes=%llu", why,
              c->phase == GUARD_WAITING ? "headers" : "body", clock_monotonic() - c->since,
              (unsigned long long)c->body);
}

static void set_phase_locked(http_guard *g, guard_conn *c, int phase)
{
    if (c->phase == GUARD_WAITING && !c->ended)
        g->waiting--;
    c->phase = phase;
    c->since = clock_monotonic();
    c->body = 0;
    if (phase == GUARD_WAITING && !c->ended)
        g->waiting++;
}

void http_guard_opened(http_guard *g, struct MHD_Connection *conn, void **socket_context)
{
    guard_conn *c = calloc(1, sizeof *c);
    *socket_context = c;
    if (!c)
        return; /* unguarded: MHD's idle timeout still applies */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = ci ? ci->connect_fd : -1;
    c->phase = GUARD_SERVING;
    pthread_mutex_lock(&g->mu);
    c->next = g->head;
    if (g->head)
        g->head->prev = c;
    g->head = c;
    g->n++;
    set_phase_locked(g, c, GUARD_WAITING);
    if (g->waiting > g->budget) { /* over the budget: the longest waiter goes */
        guard_conn *oldest = NULL;
        for (guard_conn *o = g->head; o; o = o->next)
            if (o->phase == GUARD_WAITING && !o->ended && o != c &&
                (!oldest || o->since < oldest->since))
                oldest = o;
        if (oldest && oldest->fd >= 0) {
            end_locked(g, oldest, "budget");
            g->waiting--;
        }
    }
    pthread_mutex_unlock(&g->mu);
}

void http_guard_closed(http_guard *g, void **socket_context)
{
    guard_conn *c = *socket_context;
    *socket_context = NULL;
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    if (c->phase == GUARD_WAITING && !c->ended)
        g->waiting--;
    if (c->prev)
        c->prev->next = c->next;
    else
        g->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    g->n--;
    pthread_mutex_unlock(&g->mu);
    free(c);
}

void http_guard_phase(http_guard *g, guard_conn *c, int phase)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    set_phase_locked(g, c, phase);
    pthread_mutex_unlock(&g->mu);
}

void http_guard_body(http_guard *g, guard_conn *c, size_t n)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    c->body += n;
    pthread_mutex_unlock(&g->mu);
}

static void *reaper_main(void *arg)
{
    http_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec d;
        clock_gettime(CLOCK_REALTIME, &d);
        d.tv_nsec += GUARD_TICK_NS;
        if (d.tv_nsec >= 1000000000) {
            d.tv_sec++;
            d.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&g->cond, &g->mu, &d);
        double now = clock_monotonic();
        for (guard_conn *c = g->head; c && !g->stop; c = c->next) {
            if (c->ended || c->fd < 0)
                continue;
            double t = now - c->since;
            if (c->phase == GUARD_WAITING && t > g->header_timeout) {
                end_locked(g, c, "header_timeout");
                g->waiting--;
            } else if (c->phase == GUARD_RECEIVING && t > g->header_timeout &&
                       (double)c->body < GUARD_MIN_BODY_RATE * t) {
                end_locked(g, c, "slow_body");
            }
        }
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

http_guard *http_guard_new(int max_connections, int header_timeout)
{
    http_guard *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->budget = max_connections - (max_connections + 9) / 10; /* room for 10%, at least 1 */
    if (g->budget < 1)
        g->budget = 1;
    g->header_timeout = header_timeout > 0 ? header_timeout : 10;
    if (pthread_create(&g->reaper, NULL, reaper_main, g) != 0) {
        http_guard_free(g);
        return NULL;
    }
    g->started = 1;
    return g;
}

void http_guard_free(http_guard *g)
{
    if (!g)
        return;
    if (g->started) {
        pthread_mutex_lock(&g->mu);
        g->stop = 1;
        pthread_cond_broadcast(&g->cond);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->reaper, NULL);
    }
    while (g->head) { /* MHD closed every connection before this; a leftover is freed */
        guard_conn *c = g->head;
        g->head = c->next;
        free(c);
    }
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->mu);
    free(g);
}
