/* SQLite storage: the schema text, the migrations from one version to the next, and the check
 * that a file is an iotgw database this version can open (st_db_internal.h). */
#include "st_db_internal.h"

#include <stdio.h>

#include <sqlite3.h>

/* PRAGMA application_id of an iotgw database: "iotg". It tells our files from other SQLite
 * databases, which may use user_version for their own purposes. */
#define APP_ID 0x696f7467

/* ---- schema ------------------------------------------------------------------------------ */

#define TS_RFC3339(col) "strftime('%Y-%m-%dT%H:%M:%fZ', " col " / 1000.0, 'unixepoch')"

// clang-format off
static const char schema_v1[] =
    "CREATE TABLE series("
    "  id INTEGER PRIMARY KEY,"
    "  sensor TEXT NOT NULL,"
    "  metric TEXT NOT NULL,"
    "  UNIQUE(sensor, metric)"
    ") STRICT;"
    "CREATE TABLE readings("
    "  series_id INTEGER NOT NULL,"
    "  ts_ms INTEGER NOT NULL,"
    "  value REAL NOT NULL"
    ") STRICT;"
    "CREATE INDEX readings_series_ts ON readings(series_id, ts_ms);"
    /* New readings land here, in arrival order and without an index, so that inserting costs
     * an append. Keeping readings_series_ts up to date row by row touches one index page per
     * series per transaction, which measured 3-5x too slow; a merge moves the rows in
     * (series_id, ts_ms) order and touches each page once. */
    "CREATE TABLE readings_recent("
    "  series_id INTEGER NOT NULL,"
    "  ts_ms INTEGER NOT NULL,"
    "  value REAL NOT NULL"
    ") STRICT;"
    "CREATE TABLE alerts("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  gateway TEXT,"
    "  series_id INTEGER,"
    "  kind TEXT,"
    "  state TEXT,"
    "  severity TEXT,"
    "  rule TEXT,"
    "  ts_ms INTEGER,"
    "  value REAL,"
    "  threshold REAL,"
    "  message TEXT,"
    "  published INTEGER NOT NULL DEFAULT 0"
    ") STRICT;"
    /* The publisher's scan skips published rows without reading them. */
    "CREATE INDEX alerts_unpublished ON alerts(id) WHERE published = 0;"
    /* One join per table, rather than a join over a UNION ALL subquery: SQLite then pushes a
     * query's conditions into each arm and uses readings_series_ts, where the subquery form
     * materializes every reading for aggregate queries. */
    "CREATE VIEW v_readings(sensor, metric, ts_ms, ts, value) AS"
    "  SELECT s.sensor, s.metric, r.ts_ms, " TS_RFC3339("r.ts_ms") ", r.value"
    "  FROM readings r JOIN series s ON s.id = r.series_id"
    "  UNION ALL"
    "  SELECT s.sensor, s.metric, r.ts_ms, " TS_RFC3339("r.ts_ms") ", r.value"
    "  FROM readings_recent r JOIN series s ON s.id = r.series_id;"
    "CREATE VIEW v_alerts(id, sensor, metric, kind, state, severity, ts_ms, ts, value,"
    "                     threshold, message, published) AS"
    "  SELECT a.id, s.sensor, s.metric, a.kind, a.state, a.severity, a.ts_ms,"
    "         " TS_RFC3339("a.ts_ms") ", a.value, a.threshold, a.message, a.published"
    "  FROM alerts a LEFT JOIN series s ON s.id = a.series_id;";

/* Version 2: window summaries. */
static const char schema_v2[] =
    "CREATE TABLE summaries("
    "  series_id INTEGER NOT NULL,"
    "  window_ms INTEGER NOT NULL,"
    "  start_ms INTEGER NOT NULL,"
    "  count INTEGER NOT NULL,"
    "  min REAL NOT NULL,"
    "  max REAL NOT NULL,"
    "  mean REAL NOT NULL,"
    "  stddev REAL NOT NULL,"
    "  first REAL NOT NULL,"
    "  last REAL NOT NULL,"
    "  p50 REAL NOT NULL,"
    "  p95 REAL NOT NULL"
    ") STRICT;"
    "CREATE INDEX summaries_series ON summaries(series_id, window_ms, start_ms);"
    "CREATE VIEW v_summaries(sensor, metric, window_ms, start_ms, end_ms, start, count, min,"
    "                        max, mean, stddev, first, last, p50, p95) AS"
    "  SELECT s.sensor, s.metric, w.window_ms, w.start_ms, w.start_ms + w.window_ms,"
    "         " TS_RFC3339("w.start_ms") ", w.count, w.min, w.max, w.mean, w.stddev,"
    "         w.first, w.last, w.p50, w.p95"
    "  FROM summaries w JOIN series s ON s.id = w.series_id;";

/* Version 3: anomaly scores, trend predictions, active alerts and the rule in v_alerts. The
 * views are documented in docs/history.md: change them only with a migration. */
static const char schema_v3[] =
    "ALTER TABLE readings ADD COLUMN anomaly REAL;"
    "ALTER TABLE readings_recent ADD COLUMN anomaly REAL;"
    /* Kind-specific: rate per second, silence in ms, predicted crossing (epoch ms), shift,
     * anomaly score; NULL for high and low. */
    "ALTER TABLE alerts ADD COLUMN detail REAL;"
    "DROP VIEW v_readings;"
    "CREATE VIEW v_readings(sensor, metric, ts_ms, ts, value, anomaly) AS"
    "  SELECT s.sensor, s.metric, r.ts_ms, " TS_RFC3339("r.ts_ms") ", r.value, r.anomaly"
    "  FROM readings r JOIN series s ON s.id = r.series_id"
    "  UNION ALL"
    "  SELECT s.sensor, s.metric, r.ts_ms, " TS_RFC3339("r.ts_ms") ", r.value, r.anomaly"
    "  FROM readings_recent r JOIN series s ON s.id = r.series_id;"
    "CREATE TABLE predictions("
    "  series_id INTEGER NOT NULL,"
    "  ts_ms INTEGER NOT NULL,"
    "  level REAL,"
    "  slope_per_h REAL,"
    "  slope_se_per_h REAL,"
    "  eta_ms INTEGER,"
    "  eta_lo_ms INTEGER,"
    "  eta_hi_ms INTEGER"
    ") STRICT;"
    "CREATE INDEX predictions_series_ts ON predictions(series_id, ts_ms);"
    "CREATE VIEW v_predictions(sensor, metric, ts_ms, ts, level, slope_per_h, slope_se_per_h,"
    "                          eta_ms, eta, eta_lo_ms, eta_hi_ms) AS"
    "  SELECT s.sensor, s.metric, p.ts_ms, " TS_RFC3339("p.ts_ms") ", p.level, p.slope_per_h,"
    "         p.slope_se_per_h, p.eta_ms, " TS_RFC3339("p.eta_ms") ", p.eta_lo_ms, p.eta_hi_ms"
    "  FROM predictions p JOIN series s ON s.id = p.series_id;"
    "DROP VIEW v_alerts;"
    "CREATE VIEW v_alerts(id, sensor, metric, kind, state, severity, ts_ms, ts, value,"
    "                     threshold, message, published, rule, detail) AS"
    "  SELECT a.id, s.sensor, s.metric, a.kind, a.state, a.severity, a.ts_ms,"
    "         " TS_RFC3339("a.ts_ms") ", a.value, a.threshold, a.message, a.published, a.rule,"
    "         a.detail"
    "  FROM alerts a LEFT JOIN series s ON s.id = a.series_id;"
    /* The newest row of each (series, kind, rule) is found in this index alone. Alerts are
     * rare next to readings: the writer hardly notices the extra index. */
    "CREATE INDEX alerts_series_kind_rule ON alerts(series_id, kind, rule, id);"
    /* Ids grow in the order the transitions happened, so the newest row of a group is its
     * current state; timestamps can step backwards and would not tell. */
    "CREATE VIEW v_active_alerts(id, sensor, metric, kind, state, severity, ts_ms, ts, value,"
    "                            threshold, message, published, rule, detail) AS"
    "  SELECT a.id, s.sensor, s.metric, a.kind, a.state, a.severity, a.ts_ms,"
    "         " TS_RFC3339("a.ts_ms") ", a.value, a.threshold, a.message, a.published, a.rule,"
    "         a.detail"
    "  FROM alerts a LEFT JOIN series s ON s.id = a.series_id"
    "  WHERE a.state = 'raised' AND a.id IN"
    "    (SELECT max(id) FROM alerts GROUP BY series_id, kind, rule);";

/* Version 4: a reading is identified by (series, ts_ms, value), so that MQTT redeliveries are
 * stored once while distinct readings with a repeated timestamp are all kept. readings
 * becomes a clustered table on that key (no rowid, no separate index: ~35 instead of ~54 bytes
 * per reading); the merge skips rows already there, and v_readings hides staged rows that
 * the next merge will skip. Exact duplicates already stored are dropped here. */
static const char schema_v4[] =
    "CREATE TABLE readings_v4("
    "  series_id INTEGER NOT NULL,"
    "  ts_ms INTEGER NOT NULL,"
    "  value REAL NOT NULL,"
    "  anomaly REAL,"
    "  PRIMARY KEY(series_id, ts_ms, value)"
    ") STRICT, WITHOUT ROWID;"
    "INSERT OR IGNORE INTO readings_v4(series_id, ts_ms, value, anomaly)"
    "  SELECT series_id, ts_ms, value, anomaly FROM readings ORDER BY series_id, ts_ms, value, rowid;"
    "INSERT OR IGNORE INTO readings_v4(series_id, ts_ms, value, anomaly)"
    "  SELECT series_id, ts_ms, value, anomaly FROM readings_recent"
    "  ORDER BY series_id, ts_ms, value, rowid;"
    "DELETE FROM readings_recent;"
    "DROP VIEW v_readings;"
    "DROP TABLE readings;"
    "ALTER TABLE readings_v4 RENAME TO readings;"
    "CREATE VIEW v_readings(sensor, metric, ts_ms, ts, value, anomaly) AS"
    "  SELECT s.sensor, s.metric, r.ts_ms, " TS_RFC3339("r.ts_ms") ", r.value, r.anomaly"
    "  FROM readings r JOIN series s ON s.id = r.series_id"
    "  UNION ALL"
    "  SELECT s.sensor, s.metric, r.ts_ms, " TS_RFC3339("r.ts_ms") ", r.value, r.anomaly"
    "  FROM readings_recent r JOIN series s ON s.id = r.series_id"
    "  WHERE NOT EXISTS (SELECT 1 FROM readings x"
    "                    WHERE x.series_id = r.series_id AND x.ts_ms = r.ts_ms"
    "                      AND x.value = r.value);"
    /* The documented column order: the aggregates right after end_ms, the RFC 3339 start
     * (which version 2 put after end_ms) appended last. */
    "DROP VIEW v_summaries;"
    "CREATE VIEW v_summaries(sensor, metric, window_ms, start_ms, end_ms, count, min, max,"
    "                        mean, stddev, first, last, p50, p95, start) AS"
    "  SELECT s.sensor, s.metric, w.window_ms, w.start_ms, w.start_ms + w.window_ms,"
    "         w.count, w.min, w.max, w.mean, w.stddev, w.first, w.last, w.p50, w.p95,"
    "         " TS_RFC3339("w.start_ms")
    "  FROM summaries w JOIN series s ON s.id = w.series_id;";
// clang-format on

/* migrations[v] takes a database from user_version v to v + 1, in its own transaction. */
typedef struct migration {
    const char *what;
    const char *sql;
} migration;

static const migration migrations[] = {
    {"create schema v1", schema_v1},
    {"add window summaries (v2)", schema_v2},
    {"add anomaly scores, predictions and active alerts (v3)", schema_v3},
    {"deduplicate readings on (series, ts, value) (v4)", schema_v4},
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == ST_SCHEMA_VERSION,
               "one migration step per schema version");

/* Refuses files that are not iotgw databases, or come from a newer iotgw. */
int st__db_check_identity(st_db *db) {
    int64_t app_id, version, n_objects;
    int ret;
    if ((ret = st__db_query_int(db, "read application_id", "PRAGMA application_id", &app_id)) !=
            0 ||
        (ret = st__db_query_int(db, "read user_version", "PRAGMA user_version", &version)) != 0 ||
        (ret = st__db_query_int(db, "read schema", "SELECT count(*) FROM sqlite_schema",
                                &n_objects)) != 0) {
        return ret;
    }
    bool empty = version == 0 && n_objects == 0;
    if (app_id != APP_ID && !(empty && !db->read_only)) {
        return st__db_fail_msg(db, ST_ESCHEMA, db->path,
                               "not an iotgw database (no iotgw application_id, and not empty)");
    }
    if (version < 0) {
        return st__db_fail_msg(db, ST_ESCHEMA, db->path, "invalid schema version (negative)");
    }
    if (version > ST_SCHEMA_VERSION) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "schema version %lld is newer than this iotgw supports (%d); upgrade iotgw",
                 (long long)version, ST_SCHEMA_VERSION);
        return st__db_fail_msg(db, ST_ESCHEMA, db->path, msg);
    }
    if (db->read_only && version != ST_SCHEMA_VERSION) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "schema version %lld is older than %d; open it read-write once to migrate",
                 (long long)version, ST_SCHEMA_VERSION);
        return st__db_fail_msg(db, ST_ESCHEMA, db->path, msg);
    }
    return 0;
}

/* Applies migrations[v] for each v from the current version, each in its own transaction.
 * The version is read again under the write lock, so two processes opening the same file
 * cannot both apply a step. */
int st__db_migrate(st_db *db) {
    for (;;) {
        int64_t v;
        int ret = st__db_exec_sql(db, "migrate: begin", "BEGIN IMMEDIATE");
        if (ret != 0) {
            return ret;
        }
        if ((ret = st__db_query_int(db, "migrate: read user_version", "PRAGMA user_version", &v)) !=
            0) {
            goto fail_rollback;
        }
        if (v < 0 || v >= ST_SCHEMA_VERSION) {
            if (v != ST_SCHEMA_VERSION) {
                ret = st__db_fail_msg(db, ST_ESCHEMA, db->path,
                                      "migrated by a newer iotgw while opening; upgrade iotgw");
                goto fail_rollback;
            }
            return st__db_exec_sql(db, "migrate: commit", "COMMIT");
        }
        if ((ret = st__db_exec_sql(db, migrations[v].what, migrations[v].sql)) != 0) {
            goto fail_rollback;
        }
        char sql[96];
        snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; PRAGMA user_version = %lld", APP_ID,
                 (long long)v + 1);
        if ((ret = st__db_exec_sql(db, "migrate: set user_version", sql)) != 0) {
            goto fail_rollback;
        }
        if ((ret = st__db_exec_sql(db, "migrate: commit", "COMMIT")) != 0) {
            goto fail_rollback;
        }
        continue;
    fail_rollback:
        (void)st__db_rollback_quietly(db);
        return ret;
    }
}
