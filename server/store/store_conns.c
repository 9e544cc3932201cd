/* store_conns.c — the per-thread connection set of a store (store_conns.h), one for every
 * engine: a thread's connection lives in a pthread key (its destructor unlinks and closes it
 * when the thread exits) and in a list under a mutex (close_all closes what is left). The
 * engine's callbacks open and close one connection; nothing here knows SQL.
 */
#include "server/store/store_conns.h"

#include <stddef.h>

#include "server/store/store_engine.h"

/* pthread key destructor: the thread that owned this connection exits. */
static void conn_thread_exit(void *p)
{
    store_conn *c = p;
    store_conns *set = c->set;
    pthread_mutex_lock(&set->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        set->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&set->mu);
    set->close(c);
}

int store_conns_init(store_conns *set, store_conn_open_fn open, store_conn_close_fn close,
                     void *arg, store_error *err)
{
    *set = (store_conns){.open = open, .close = close, .arg = arg};
    if (pthread_mutex_init(&set->mu, NULL) != 0)
        return store_err(err, STORE_NOMEM, "store: cannot create a mutex");
    if (pthread_key_create(&set->key, conn_thread_exit) != 0) {
        pthread_mutex_destroy(&set->mu);
        return store_err(err, STORE_NOMEM, "store: cannot create a thread key");
    }
    return 0;
}

void store_conns_add(store_conns *set, store_conn *c)
{
    c->set = set;
    c->prev = NULL;
    pthread_mutex_lock(&set->mu);
    c->next = set->all;
    if (set->all)
        set->all->prev = c;
    set->all = c;
    pthread_mutex_unlock(&set->mu);
    pthread_setspecific(set->key, c);
}

store_conn *store_conns_get(store_conns *set, store_error *err)
{
    store_conn *c = pthread_getspecific(set->key);
    if (!c) {
        c = set->open(set->arg, err);
        if (c)
            store_conns_add(set, c);
    }
    return c;
}

void store_conns_close_all(store_conns *set)
{
    pthread_setspecific(set->key, NULL);
    pthread_key_delete(set->key); /* no destructor runs for this set after this */
    pthread_mutex_lock(&set->mu);
    store_conn *c = set->all;
    set->all = NULL;
    pthread_mutex_unlock(&set->mu);
    while (c) {
        store_conn *next = c->next;
        set->close(c);
        c = next;
    }
    pthread_mutex_destroy(&set->mu);
}
