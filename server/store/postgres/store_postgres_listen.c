/* store_postgres_listen.c — events of every instance sharing the database (store_listen):
 * one thread per store with a connection of its own that LISTENs on the channels the writes
 * NOTIFY in their transactions (delivered at commit, never for a rollback):
 *   backpropd_jobs      a job was queued or released (store_postgres_jobs.c, _leases.c)
 *   backpropd_progress  a checkpoint or the final state of the job in the payload
 *   backpropd_cancel    a cancel or delete of the job in the payload
 * It waits on the socket half a second at a time (so a stop is seen quickly); a lost
 * connection is reopened with back-off, and the reopening tells STORE_EVENT_QUEUED once
 * because notifications sent meanwhile are gone.
 */
#include "server/store/postgres/store_postgres_int.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int stopping(store *s)
{
    pthread_mutex_lock(&s->mu);
    int stop = s->listen_stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

static void tell(store *s, store_event ev, const char *id)
{
    s->listen_fn(s->listen_arg, ev, id ? id : "");
}

/* Delivers what arrived on db; -1 when the connection is lost. */
static int drain(store *s, PGconn *db)
{
    if (!PQconsumeInput(db))
        return -1;
    PGnotify *n;
    while ((n = PQnotifies(db))) {
        if (strcmp(n->relname, "backpropd_jobs") == 0)
            tell(s, STORE_EVENT_QUEUED, "");
        else if (strcmp(n->relname, "backpropd_progress") == 0)
            tell(s, STORE_EVENT_PROGRESS, n->extra);
        else if (strcmp(n->relname, "backpropd_cancel") == 0)
            tell(s, STORE_EVENT_CANCEL, n->extra);
        PQfreemem(n);
    }
    return PQstatus(db) == CONNECTION_OK ? 0 : -1;
}

static void *listen_main(void *arg)
{
    store *s = arg;
    PGconn *db = NULL;
    double backoff = 0.1;
    while (!stopping(s)) {
        if (!db) {
            store_error err = {0};
            db = postgres_connect(s, &err);
            PGresult *r = db ? PQexec(db, "LISTEN backpropd_jobs; LISTEN backpropd_progress; "
                                          "LISTEN backpropd_cancel")
                             : NULL;
            int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
            PQclear(r);
            if (!ok) {
                PQfinish(db);
                db = NULL;
                struct timespec d = {0, (long)(backoff * 1e9)};
                nanosleep(&d, NULL);
                backoff = backoff * 2 > 0.8 ? 0.8 : backoff * 2;
                continue;
            }
            backoff = 0.1;
            tell(s, STORE_EVENT_QUEUED, ""); /* what was sent while we were away is lost */
        }
        struct pollfd p = {.fd = PQsocket(db), .events = POLLIN};
        if (p.fd < 0 || (poll(&p, 1, 500) > 0 && drain(s, db) < 0)) {
            PQfinish(db);
            db = NULL;
        }
    }
    PQfinish(db);
    return NULL;
}

int postgres_listen(store *s, store_event_fn fn, void *arg, store_error *err)
{
    pthread_mutex_lock(&s->mu);
    int running = s->listening;
    s->listen_stop = running ? 1 : 0;
    pthread_mutex_unlock(&s->mu);
    if (running) { /* stop the current listener first */
        pthread_join(s->listen_thread, NULL);
        pthread_mutex_lock(&s->mu);
        s->listening = 0;
        s->listen_stop = 0;
        pthread_mutex_unlock(&s->mu);
    }
    if (!fn)
        return 0;
    s->listen_fn = fn;
    s->listen_arg = arg;
    if (pthread_create(&s->listen_thread, NULL, listen_main, s) != 0)
        return store_err(err, STORE_NOMEM, "store: cannot start the listener thread");
    pthread_mutex_lock(&s->mu);
    s->listening = 1;
    pthread_mutex_unlock(&s->mu);
    return 0;
}
