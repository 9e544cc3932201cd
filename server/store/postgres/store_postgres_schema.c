/* store_postgres_schema.c — the schema of the PostgreSQL store as its migrations:
 * postgres_migrations[v] takes a database from version v to v + 1 (backpropd_meta's
 * schema_version). store_postgres.c runs them at open under an advisory lock, so instances
 * that start together migrate once; append, never edit. The tables mirror the SQLite
 * engine's (store_sqlite_schema.c) plus lease_token, the fencing token taken from the
 * sequence lease_tokens at every claim.
 */
#include "server/store/postgres/store_postgres_int.h"

const char *const postgres_migrations[POSTGRES_SCHEMA_VERSION] = {
    "INSERT INTO backpropd_meta(key, value) VALUES('byte_order', '" POSTGRES_HOST_ORDER "');"
    "CREATE TABLE datasets("
    "  seq bigserial PRIMARY KEY,"
    "  id text NOT NULL UNIQUE,"
    "  owner text NOT NULL,"
    "  name text NOT NULL,"
    "  rows bigint NOT NULL CHECK(rows > 0),"
    "  features bigint NOT NULL CHECK(features > 0),"
    "  outputs bigint NOT NULL CHECK(outputs > 0),"
    "  has_labels int NOT NULL,"
    "  bytes bigint NOT NULL,"
    "  created_at bigint NOT NULL);"   /* unix seconds */
    "CREATE INDEX datasets_owner ON datasets(owner, seq);"
    "CREATE TABLE dataset_chunks("
    "  dataset_id text NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,"
    "  kind int NOT NULL,"             /* 0 X, 1 labels, 2 Y (native order, see meta) */
    "  seq bigint NOT NULL,"
    "  data bytea NOT NULL,"           /* <= 16 MiB */
    "  PRIMARY KEY(dataset_id, kind, seq));"
    /* doubles do not compress: skip TOAST's attempt */
    "ALTER TABLE dataset_chunks ALTER COLUMN data SET STORAGE EXTERNAL;"
    "CREATE SEQUENCE lease_tokens;"
    "CREATE TABLE jobs("
    "  seq bigserial PRIMARY KEY,"
    "  id text NOT NULL UNIQUE,"
    "  owner text NOT NULL,"
    "  dataset_id text NOT NULL,"      /* no foreign key: finished jobs outlive their dataset */
    "  spec_json text NOT NULL,"
    "  status int NOT NULL,"           /* job_status */
    "  cancel_requested int NOT NULL DEFAULT 0,"
    "  created_at bigint NOT NULL,"    /* unix ms, 0 = not yet */
    "  started_at bigint NOT NULL DEFAULT 0,"
    "  finished_at bigint NOT NULL DEFAULT 0,"
    "  error text NOT NULL DEFAULT '',"
    "  p_epoch bigint NOT NULL DEFAULT 0,"
    "  p_epochs bigint NOT NULL DEFAULT 0,"
    "  p_cost float8, p_validation_cost float8, p_accuracy float8,"
    "  p_samples_per_second float8, p_validation_accuracy float8,"
    "  best_epoch bigint NOT NULL DEFAULT 0,"
    "  stop_reason text,"
    "  lease_owner text,"
    "  lease_until bigint NOT NULL DEFAULT 0," /* unix ms */
    "  lease_token bigint NOT NULL DEFAULT 0,"
    "  theta0_n bigint NOT NULL DEFAULT 0,"
    "  theta0 bytea);"
    "CREATE INDEX jobs_owner ON jobs(owner, seq);"
    "CREATE INDEX jobs_status ON jobs(status, seq);"
    "CREATE INDEX jobs_dataset ON jobs(dataset_id, status);"
    "CREATE TABLE job_history("
    "  job_id text NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  epoch bigint NOT NULL,"
    "  cost float8, validation_cost float8, accuracy float8, validation_accuracy float8,"
    "  PRIMARY KEY(job_id, epoch));"
    "CREATE TABLE job_checkpoints("
    "  job_id text PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,"
    "  epoch bigint NOT NULL,"
    "  cost float8, validation_cost float8,"
    "  n_params bigint NOT NULL,"
    "  theta bytea,"
    "  image bytea);",
    /* 2 (SQLite's 3): Idempotency-Key of creates, per owner and kind ("job", "dataset"): the
     * digest of the request and the id it created; rows older than the TTL are ignored, then
     * purged. A job's labels: {"name","tags","metadata"} as given (NULL = none). */
    "ALTER TABLE jobs ADD COLUMN labels text;"
    "CREATE TABLE idempotency("
    "  owner text NOT NULL,"
    "  kind text NOT NULL,"
    "  key text NOT NULL,"
    "  request text NOT NULL,"         /* SHA-256 hex */
    "  resource_id text NOT NULL,"
    "  created_at bigint NOT NULL,"    /* unix ms */
    "  PRIMARY KEY(owner, kind, key));"
    "CREATE INDEX idempotency_age ON idempotency(created_at);",
    /* 3 (SQLite's 4): the report on a finished job's held-out rows (JSON text, NULL = none)
     * and a dataset's class names (a JSON array of strings, NULL = labels 0..K-1). */
    "ALTER TABLE jobs ADD COLUMN metrics_json text;"
    "ALTER TABLE datasets ADD COLUMN classes_json text;",
};

/* Job statuses are written as literals in the SQL (status IN (0, 1), status = 4...). */
_Static_assert(JOB_QUEUED == 0 && JOB_RUNNING == 1 && JOB_SUCCEEDED == 2 && JOB_FAILED == 3 &&
               JOB_CANCELLED == 4, "the SQL uses job_status numbers as literals");
