/* store_postgres_idem.c — Idempotency-Key of creates in the PostgreSQL store (store.h):
 * looked up and remembered inside the create's own READ COMMITTED transaction. Concurrent
 * retries with one key, on any instance, are serialised by a transaction-scoped advisory lock
 * on (owner, kind, key): the second waits until the first commits or rolls back, and its
 * look-up (a new statement, so a new snapshot) then sees the first one's row. The rule itself
 * (replay or 422) is store_idem_decide's (store.c), as for the SQLite engine. A key's age is
 * the database's clock (POSTGRES_NOW_MS), as leases are: created_at and the expiry cutoff
 * come from one clock for every instance, so an instance whose clock is skewed neither
 * replays an expired key nor forgets a live one.
 */
#include "server/store/postgres/store_postgres_int.h"

#include <stdio.h>
#include <string.h>

int postgres_idem_check(pconn *c, const char *owner, const char *kind, store_idempotency *idem,
                        store_error *err)
{
    if (!idem)
        return 0;
    pargs a = {0};
    postgres_arg_text(&a, owner);
    postgres_arg_text(&a, kind);
    postgres_arg_text(&a, idem->key);
    if (postgres_run(c, "SELECT pg_advisory_xact_lock(hashtextextended("
                     "'idem:' || $1 || ':' || $2 || ':' || $3, 0))", &a, "idempotency key",
                     NULL, err) < 0)
        return err->code;
    postgres_arg_i64(&a, idem->ttl_ms);
    PGresult *r = postgres_exec(c, "SELECT request, resource_id FROM idempotency "
                                "WHERE owner = $1 AND kind = $2 AND key = $3 "
                                "AND created_at >= " POSTGRES_NOW_MS " - $4::bigint", &a,
                                "idempotency key", err);
    if (!r)
        return err->code;
    char request[65] = "", id[40] = "";
    int found = PQntuples(r) > 0;
    if (found) {
        postgres_text(request, sizeof request, r, 0, 0);
        postgres_text(id, sizeof id, r, 0, 1);
    }
    PQclear(r);
    return store_idem_decide(idem, found, request, id, err);
}

int postgres_idem_record(pconn *c, const char *owner, const char *kind,
                         const store_idempotency *idem, const char *id, store_error *err)
{
    if (!idem)
        return 0;
    pargs a = {0};
    postgres_arg_i64(&a, idem->ttl_ms);
    if (postgres_run(c, "DELETE FROM idempotency WHERE created_at < " POSTGRES_NOW_MS
                     " - $1::bigint", &a, "idempotency keys", NULL, err) < 0)
        return err->code;
    memset(&a, 0, sizeof a);
    postgres_arg_text(&a, owner);
    postgres_arg_text(&a, kind);
    postgres_arg_text(&a, idem->key);
    postgres_arg_text(&a, idem->request);
    postgres_arg_text(&a, id);
    return postgres_run(c, "INSERT INTO idempotency(owner, kind, key, request, resource_id, "
                        "created_at) VALUES($1,$2,$3,$4,$5," POSTGRES_NOW_MS ") "
                        "ON CONFLICT(owner, kind, key) DO UPDATE SET request = excluded.request, "
                        "resource_id = excluded.resource_id, created_at = excluded.created_at",
                        &a, "idempotency key", NULL, err);
}
