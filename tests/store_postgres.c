/* store_postgres.c — the store suite (tests/store_sqlite.c) against the PostgreSQL engine: the
 * same tests, each on its own database of one throwaway cluster that this binary starts
 * before the tests (initdb + pg_ctl as `nobody` on a temp dir and a free port,
 * tests/harness/pg.c) and stops after them; plus what only a shared database has: fencing
 * tokens and claims under SKIP LOCKED from several instances.
 */
#define STORE_TEST_POSTGRES 1
#include "tests/store_sqlite.c"

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    if (pg_cluster_start() != 0)
        fprintf(stderr, "store_postgres: the PostgreSQL cluster did not start\n");
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    pg_cluster_stop();
}
