/* store_sqlite_idem.c — Idempotency-Key of creates in the SQLite store (store.h): looked up
 * and remembered inside the create's own BEGIN IMMEDIATE transaction, so of concurrent
 * retries with one key exactly one inserts and the others see its row (SQLite serialises
 * write transactions). The rule itself (replay or 422) is store_idem_decide's (store.c).
 */
#include "server/store/sqlite/store_sqlite_int.h"

#include <stdio.h>
#include <string.h>

#include "server/common/clock.h"

int sqlite_idem_check(sconn *c, const char *owner, const char *kind, store_idempotency *idem,
                      store_error *err)
{
    if (!idem)
        return 0;
    sqlite3_stmt *st = sqlite_stmt(c, Q_IDEM_GET, err);
    if (!st)
        return err->code;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, idem->key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, clock_wall_ms() - idem->ttl_ms);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sqlite3_reset(st);
        return sqlite_fail(c, rc, "idempotency key", err);
    }
    char request[65] = "", id[40] = "";
    if (rc == SQLITE_ROW) {
        sqlite_copy_text(request, sizeof request, st, 0);
        sqlite_copy_text(id, sizeof id, st, 1);
    }
    sqlite3_reset(st);
    return store_idem_decide(idem, rc == SQLITE_ROW, request, id, err);
}

int sqlite_idem_record(sconn *c, const char *owner, const char *kind,
                       const store_idempotency *idem, const char *id, store_error *err)
{
    if (!idem)
        return 0;
    int64_t now = clock_wall_ms();
    sqlite3_stmt *st = sqlite_stmt(c, Q_IDEM_PURGE, err);
    if (!st)
        return err->code;
    sqlite3_bind_int64(st, 1, now - idem->ttl_ms);
    if (sqlite_exec(c, st, "idempotency keys", err) < 0)
        return err->code;
    st = sqlite_stmt(c, Q_IDEM_PUT, err);
    if (!st)
        return err->code;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, idem->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, idem->request, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now);
    return sqlite_exec(c, st, "idempotency key", err) < 0 ? err->code : 0;
}
