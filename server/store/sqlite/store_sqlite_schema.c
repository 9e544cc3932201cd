/* store_sqlite_schema.c — the SQL of the SQLite store: the schema as its migrations
 * (sqlite_migrations[v] takes a file from user_version v to v + 1; store_sqlite.c runs them at
 * open, in one transaction; append, never edit: a file written by any earlier version must
 * open) and the text of every prepared statement (sqlite_queries, by query_id).
 */
#include "server/store/sqlite/store_sqlite_int.h"

/* migrations[v] takes a file from user_version v to v+1. Append, never edit. */
const char *const sqlite_migrations[STORE_SCHEMA_VERSION] = {
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta(key, value) VALUES('byte_order', '" HOST_ORDER "');"
    "CREATE TABLE datasets("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  owner TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  rows INTEGER NOT NULL CHECK(rows > 0),"
    "  features INTEGER NOT NULL CHECK(features > 0),"
    "  outputs INTEGER NOT NULL CHECK(outputs > 0),"
    "  has_labels INTEGER NOT NULL,"
    "  x_format TEXT NOT NULL,"      /* f64le: rows*features, row-major */
    "  y_format TEXT NOT NULL,"      /* i32le labels (rows) or f64le Y (rows*outputs) */
    "  bytes INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL);" /* unix seconds */
    "CREATE INDEX datasets_owner ON datasets(owner, seq);"
    "CREATE TABLE dataset_chunks("
    "  dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,"
    "  kind INTEGER NOT NULL,"       /* 0 X, 1 labels, 2 Y */
    "  seq INTEGER NOT NULL,"
    "  data BLOB NOT NULL,"          /* <= 16 MiB */
    "  PRIMARY KEY(dataset_id, kind, seq));"
    "CREATE TABLE jobs("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  owner TEXT NOT NULL,"
    "  dataset_id TEXT NOT NULL,"    /* no foreign key: finished jobs outlive their dataset */
    "  spec_json TEXT NOT NULL,"
    "  status INTEGER NOT NULL,"     /* job_status */
    "  cancel_requested INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL," /* unix ms, 0 = not yet */
    "  started_at INTEGER NOT NULL DEFAULT 0,"
    "  finished_at INTEGER NOT NULL DEFAULT 0,"
    "  error TEXT NOT NULL DEFAULT '',"
    "  p_epoch INTEGER NOT NULL DEFAULT 0,"
    "  p_epochs INTEGER NOT NULL DEFAULT 0,"
    "  p_cost REAL, p_validation_cost REAL, p_accuracy REAL, p_samples_per_second REAL,"
    "  lease_owner TEXT,"
    "  lease_until INTEGER NOT NULL DEFAULT 0," /* unix ms */
    "  theta0_n INTEGER NOT NULL DEFAULT 0,"
    "  theta0 BLOB);"                /* f64le warm start */
    "CREATE INDEX jobs_owner ON jobs(owner, seq);"
    "CREATE INDEX jobs_status ON jobs(status, seq);"
    "CREATE INDEX jobs_dataset ON jobs(dataset_id, status);"
    "CREATE TABLE job_history("
    "  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  epoch INTEGER NOT NULL,"
    "  cost REAL, validation_cost REAL, accuracy REAL," /* NULL = NaN */
    "  PRIMARY KEY(job_id, epoch)) WITHOUT ROWID;"
    "CREATE TABLE job_checkpoints("  /* latest checkpoint while running, final weights when done */
    "  job_id TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,"
    "  epoch INTEGER NOT NULL,"
    "  cost REAL,"
    "  n_params INTEGER NOT NULL,"
    "  theta BLOB,"                  /* f64le, n_params */
    "  image BLOB);",                /* bp_trainer checkpoint image, NULL once finished */
    /* 2: what training reports. accuracy is now the training rows' and validation_accuracy
     * the held-out rows'; version 1 stored the held-out rows' as accuracy when there were
     * any, so it moves. best_epoch: the epoch of the weights held (0 = none); stop_reason:
     * NULL until the job ends (and for jobs that ended before version 2). */
    "ALTER TABLE jobs ADD COLUMN p_validation_accuracy REAL;"
    "ALTER TABLE jobs ADD COLUMN best_epoch INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN stop_reason TEXT;"
    "ALTER TABLE job_history ADD COLUMN validation_accuracy REAL;"
    "ALTER TABLE job_checkpoints ADD COLUMN validation_cost REAL;"
    "UPDATE jobs SET p_validation_accuracy = p_accuracy, p_accuracy = NULL "
    "  WHERE json_extract(spec_json, '$.training.validation_split') > 0;"
    "UPDATE job_history SET validation_accuracy = accuracy, accuracy = NULL "
    "  WHERE job_id IN (SELECT id FROM jobs "
    "    WHERE json_extract(spec_json, '$.training.validation_split') > 0);",
    /* 3: Idempotency-Key of creates: per owner and kind ("job", "dataset"), the digest of the
     * request and the id it created; rows older than the TTL are ignored, then purged. A
     * job's labels: {"name","tags","metadata"} as given (NULL = none). */
    "ALTER TABLE jobs ADD COLUMN labels TEXT;"
    "CREATE TABLE idempotency("
    "  owner TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  request TEXT NOT NULL,"       /* SHA-256 hex */
    "  resource_id TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL," /* unix ms */
    "  PRIMARY KEY(owner, kind, key)) WITHOUT ROWID;"
    "CREATE INDEX idempotency_age ON idempotency(created_at);",
    /* 4: the report on a finished job's held-out rows (JSON text, NULL = none). */
    "ALTER TABLE jobs ADD COLUMN metrics_json TEXT;"
    /* and a dataset's class names (a JSON array of strings, NULL = labels 0..K-1). */
    "ALTER TABLE datasets ADD COLUMN classes_json TEXT;",
    /* 5: lookups by (id, owner) in one index, so that another tenant's id costs what a
     * missing id costs: both are a miss in this index, and a foreign row is never read. */
    "CREATE UNIQUE INDEX datasets_id_owner ON datasets(id, owner);"
    "CREATE UNIQUE INDEX jobs_id_owner ON jobs(id, owner);",
};

#define JOB_COLS                                                                            \
    "id, owner, dataset_id, spec_json, status, cancel_requested, seq, created_at, started_at, " \
    "finished_at, error, p_epoch, p_epochs, p_cost, p_validation_cost, p_accuracy, "         \
    "p_samples_per_second, lease_owner, lease_until, p_validation_accuracy, best_epoch, "    \
    "stop_reason, labels, metrics_json"
#define DS_COLS "id, owner, name, rows, features, outputs, has_labels, bytes, created_at, " \
                "x_format, y_format"

const char *const sqlite_queries[Q__COUNT] = {
    [Q_BEGIN] = "BEGIN",
    [Q_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_DS_INSERT] = "INSERT INTO datasets(" DS_COLS ", classes_json) "
                    "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
    [Q_DS_CLASSES] = "SELECT classes_json FROM datasets INDEXED BY datasets_id_owner WHERE id = ?1 "
                     "AND (?2 IS NULL OR owner = ?2)",
    [Q_DS_CHUNK_INSERT] = "INSERT INTO dataset_chunks(dataset_id, kind, seq, data) "
                          "VALUES(?1,?2,?3,?4)",
    [Q_DS_GET] = "SELECT " DS_COLS " FROM datasets INDEXED BY datasets_id_owner "
                 "WHERE id = ?1 AND (?2 IS NULL OR owner = ?2)",
    [Q_DS_CHUNKS] = "SELECT rowid, kind, seq, length(data) FROM dataset_chunks "
                    "WHERE dataset_id = ?1 ORDER BY kind, seq",
    [Q_DS_LIST] = "SELECT " DS_COLS ", seq FROM datasets WHERE owner = ?1 AND seq < ?2 "
                  "ORDER BY seq DESC LIMIT ?3",
    [Q_DS_DELETE] = "DELETE FROM datasets WHERE id = ?1",
    [Q_DS_IN_USE] = "SELECT 1 FROM jobs WHERE dataset_id = ?1 AND status IN (0, 1) LIMIT 1",
    [Q_DS_BYTES] = "SELECT coalesce(sum(bytes), 0) FROM datasets WHERE owner = ?1",
    [Q_DS_EXISTS] = "SELECT 1 FROM datasets INDEXED BY datasets_id_owner "
                    "WHERE id = ?1 AND owner = ?2",
    [Q_JOB_INSERT] = "INSERT INTO jobs(id, owner, dataset_id, spec_json, status, created_at, "
                     "p_epoch, p_epochs, p_cost, p_validation_cost, p_accuracy, "
                     "p_samples_per_second, theta0_n, theta0, labels) "
                     "VALUES(?1,?2,?3,?4,0,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
    [Q_JOB_GET] = "SELECT " JOB_COLS " FROM jobs INDEXED BY jobs_id_owner "
                  "WHERE id = ?1 AND (?2 IS NULL OR owner = ?2)",
    [Q_JOB_GET_SEQ] = "SELECT " JOB_COLS " FROM jobs WHERE seq = ?1",
    [Q_JOB_LIST] = "SELECT " JOB_COLS " FROM jobs WHERE seq < ?3 AND (?1 IS NULL OR owner = ?1) "
                   "AND (?2 < 0 OR status = ?2) ORDER BY seq DESC LIMIT ?4",
    [Q_JOB_COUNT_ACTIVE] = "SELECT count(*) FROM jobs WHERE status IN (0, 1) "
                           "AND (?1 IS NULL OR owner = ?1)",
    [Q_JOB_COUNT_STATUS] = "SELECT status, count(*) FROM jobs GROUP BY status",
    [Q_JOB_EXPIRE_CANCELLED] = "UPDATE jobs SET status = 4, finished_at = ?1, lease_owner = NULL, "
                               "lease_until = 0 WHERE status = 1 AND lease_until < ?1 "
                               "AND cancel_requested <> 0",
    [Q_JOB_CLAIMABLE] = "SELECT seq FROM jobs WHERE status = 0 "
                        "OR (status = 1 AND lease_until < ?1) ORDER BY seq LIMIT 1",
    [Q_JOB_CLAIM] = "UPDATE jobs SET status = 1, lease_owner = ?2, lease_until = ?3, "
                    "started_at = CASE WHEN started_at = 0 THEN ?4 ELSE started_at END "
                    "WHERE seq = ?1",
    [Q_JOB_RENEW] = "UPDATE jobs SET lease_until = ?3 "
                    "WHERE id = ?1 AND status = 1 AND lease_owner = ?2",
    [Q_JOB_CANCEL_FLAG] = "SELECT cancel_requested FROM jobs WHERE id = ?1",
    [Q_JOB_LEASE] = "SELECT status, lease_owner FROM jobs WHERE id = ?1",
    [Q_JOB_RELEASE] = "UPDATE jobs SET status = CASE WHEN cancel_requested THEN 4 ELSE 0 END, "
                      "finished_at = CASE WHEN cancel_requested THEN ?3 ELSE 0 END, "
                      "lease_owner = NULL, lease_until = 0 "
                      "WHERE id = ?1 AND status = 1 AND lease_owner = ?2",
    [Q_JOB_LEASES] = "SELECT id, lease_owner, lease_until FROM jobs WHERE status = 1 "
                     "ORDER BY seq",
    [Q_JOB_PROGRESS] = "UPDATE jobs SET p_epoch = ?2, p_epochs = ?3, p_cost = ?4, "
                       "p_validation_cost = ?5, p_accuracy = ?6, p_samples_per_second = ?7, "
                       "p_validation_accuracy = ?8, best_epoch = ?9, stop_reason = ?10 "
                       "WHERE id = ?1",
    [Q_JOB_FINISH] = "UPDATE jobs SET status = ?2, finished_at = ?3, error = ?4, "
                     "lease_owner = NULL, lease_until = 0 WHERE id = ?1",
    [Q_JOB_STATUS] = "SELECT status FROM jobs INDEXED BY jobs_id_owner "
                     "WHERE id = ?1 AND owner = ?2",
    [Q_JOB_CANCEL_NOW] = "UPDATE jobs SET status = 4, cancel_requested = 1, finished_at = ?2 "
                         "WHERE id = ?1",
    [Q_JOB_SET_CANCEL] = "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1",
    [Q_JOB_DELETE] = "DELETE FROM jobs INDEXED BY jobs_id_owner WHERE id = ?1 AND owner = ?2",
    [Q_JOB_THETA0] = "SELECT theta0_n, theta0 FROM jobs WHERE id = ?1",
    [Q_JOB_SET_METRICS] = "UPDATE jobs SET metrics_json = ?2 WHERE id = ?1",
    [Q_HIST_DELETE_FROM] = "DELETE FROM job_history WHERE job_id = ?1 AND epoch >= ?2",
    [Q_HIST_INSERT] = "INSERT INTO job_history(job_id, epoch, cost, validation_cost, accuracy, "
                      "validation_accuracy) VALUES(?1,?2,?3,?4,?5,?6)",
    [Q_HIST_SELECT] = "SELECT epoch, cost, validation_cost, accuracy, validation_accuracy "
                      "FROM job_history WHERE job_id = ?1 AND epoch > ?2 ORDER BY epoch "
                      "LIMIT ?3",
    [Q_CKPT_UPSERT] = "INSERT INTO job_checkpoints(job_id, epoch, cost, n_params, theta, image, "
                      "validation_cost) VALUES(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(job_id) DO "
                      "UPDATE SET epoch = excluded.epoch, cost = excluded.cost, "
                      "n_params = excluded.n_params, theta = excluded.theta, "
                      "image = excluded.image, validation_cost = excluded.validation_cost",
    [Q_CKPT_DROP_IMAGE] = "UPDATE job_checkpoints SET image = NULL WHERE job_id = ?1",
    [Q_CKPT_IMAGE] = "SELECT image FROM job_checkpoints WHERE job_id = ?1",
    [Q_CKPT_WEIGHTS] = "SELECT c.n_params, c.epoch, c.cost, c.theta, c.validation_cost "
                       "FROM job_checkpoints c "
                       "JOIN jobs j INDEXED BY jobs_id_owner ON j.id = c.job_id WHERE c.job_id = ?1 "
                       "AND (?2 IS NULL OR j.owner = ?2)",
    [Q_IDEM_GET] = "SELECT request, resource_id FROM idempotency WHERE owner = ?1 AND kind = ?2 "
                   "AND key = ?3 AND created_at >= ?4",
    [Q_IDEM_PUT] = "INSERT OR REPLACE INTO idempotency(owner, kind, key, request, resource_id, "
                   "created_at) VALUES(?1,?2,?3,?4,?5,?6)",
    [Q_IDEM_PURGE] = "DELETE FROM idempotency WHERE created_at < ?1",
};

/* Job statuses are written as literals in the SQL above (status IN (0, 1), status = 4...). */
_Static_assert(JOB_QUEUED == 0 && JOB_RUNNING == 1 && JOB_SUCCEEDED == 2 && JOB_FAILED == 3 &&
               JOB_CANCELLED == 4, "the SQL uses job_status numbers as literals");

