/* store_conns.h — the per-thread connection set every store engine uses: each thread that
 * touches a store gets its own connection (an engine's sqlite3 or PGconn wrapper), opened on
 * its first use by the engine's open callback, kept in a pthread key whose destructor closes
 * it when the thread exits, and listed so that store_conns_close_all closes those of threads
 * still alive. The engine supplies only how to open and close one connection. Included only
 * by engines (server/store/<engine>/).
 */
#ifndef BACKPROPD_STORE_CONNS_H
#define BACKPROPD_STORE_CONNS_H

#include <pthread.h>

#include "server/store/store.h"

struct store_conns;

/* The link of one connection in its set: the first member of an engine's connection struct
 * (so a store_conn * is the engine's connection). Managed by store_conns; the engine only
 * zeroes it. */
typedef struct store_conn {
    struct store_conns *set;          /* set by store_conns_add */
    struct store_conn *prev, *next;   /* set->all, under set->mu */
} store_conn;

/* The engine's callbacks. open: new. A connection for the calling thread (its link zeroed),
 * or NULL with err filled; arg is the set's arg (the engine's store). close: frees one
 * connection (never NULL), on whichever thread ends it. */
typedef store_conn *(*store_conn_open_fn)(void *arg, store_error *err);
typedef void (*store_conn_close_fn)(store_conn *c);

typedef struct store_conns {
    pthread_key_t key;                /* this thread's connection */
    pthread_mutex_t mu;               /* guards all */
    store_conn *all;                  /* every open connection */
    store_conn_open_fn open;
    store_conn_close_fn close;
    void *arg;                        /* given to open */
} store_conns;

/* Makes an empty set (its mutex and thread key). 0, or STORE_NOMEM with err's message. */
int store_conns_init(store_conns *set, store_conn_open_fn open, store_conn_close_fn close,
                     void *arg, store_error *err);
/* This thread's connection (borrowed), opened with set->open and added on first use. NULL
 * with err filled when that open fails. */
store_conn *store_conns_get(store_conns *set, store_error *err);
/* Adds c (steals it) to the set as this thread's connection: for one the engine opened
 * itself (an open that creates the store). */
void store_conns_add(store_conns *set, store_conn *c);
/* Closes every connection of the set, including those of threads still alive (which must not
 * touch the store again: call this after the threads that used it have stopped), and
 * destroys the set; no destructor runs for it afterwards. */
void store_conns_close_all(store_conns *set);

#endif
