/* SQLite storage: schema, migrations and the write path. See st_db.h for the contract. */
#include "st_db.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

/* PRAGMA application_id of an iotgw database: "iotg". It tells our files from other SQLite
 * databases, which may use user_version for their own purposes. */
#define APP_ID 0x696f7467

#define JOURNAL_SIZE_LIMIT (64 * 1024 * 1024)
/* Page cache of the connection, in KiB (a negative cache_size is in KiB). The gateway targets a
 * few MB of RSS; the readings index beyond this is served from the OS page cache. */
#define CACHE_KIB            2048
#define BUSY_TIMEOUT_DEFAULT 5000
/* SQLite's largest max_page_count (a page number is 32 bits). */
#define MAX_PAGE_COUNT 4294967294LL
/* A merge rewrites the last index page of every series it touches, so it costs about one page
 * write per series plus a little per row: the default threshold grows with the series count
 * (measured on 2 cores, 10k series: 262144 rows gave ~250-280k rows/s, 64 per series (655360)
 * ~320-390k rows/s, 1M ~460k rows/s, with longer merges). */
#define MERGE_ROWS_MIN        262144
#define MERGE_ROWS_PER_SERIES 64

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

/* ---- prepared statements: one table drives preparation, use and finalization -------------- */

enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_INS_READING,
    S_INS_READINGS_CHUNK,
    S_INS_PREDICTION,
    S_INS_ALERT,
    S_SEL_SERIES,
    S_INS_SERIES,
    S_MARK_PUB,
    S_UNPUBLISHED,
    S_COUNT_READINGS,
    S_COUNT_ALERTS,
    S_INS_SUMMARY,
    S_MERGE_BEGIN,
    S_MERGE_COPY,
    S_MERGE_CLEAR,
    S_MERGE_COMMIT,
    S__COUNT
};

static const struct {
    const char *what; /* prefix of error messages */
    const char *sql;
} stmt_defs[S__COUNT] = {
    [S_BEGIN] = {"begin", "BEGIN IMMEDIATE"},
    [S_COMMIT] = {"commit", "COMMIT"},
    [S_ROLLBACK] = {"rollback", "ROLLBACK"},
    [S_INS_READING] = {"insert reading", "INSERT INTO readings_recent(series_id, ts_ms, value,"
                                         " anomaly) VALUES(?1, ?2, ?3, ?4)"},
    /* SQL text built by prepare_all: ST_INSERT_CHUNK rows of four parameters. */
    [S_INS_READINGS_CHUNK] = {"insert readings", NULL},
    [S_INS_PREDICTION] = {"insert prediction",
                          "INSERT INTO predictions(series_id, ts_ms, level, slope_per_h,"
                          " slope_se_per_h, eta_ms, eta_lo_ms, eta_hi_ms)"
                          " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"},
    [S_INS_ALERT] = {"insert alert",
                     "INSERT INTO alerts(gateway, series_id, kind, state, severity, rule, ts_ms,"
                     " value, threshold, message, detail)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"},
    [S_SEL_SERIES] = {"find series", "SELECT id FROM series WHERE sensor = ?1 AND metric = ?2"},
    [S_INS_SERIES] = {"insert series", "INSERT INTO series(sensor, metric) VALUES(?1, ?2)"},
    [S_MARK_PUB] = {"mark published", "UPDATE alerts SET published = 1 WHERE id = ?1"},
    [S_UNPUBLISHED] = {"unpublished alerts",
                       "SELECT a.id, a.gateway, s.sensor, s.metric, a.kind, a.state, a.severity,"
                       " a.rule, a.message, a.ts_ms, a.value, a.threshold, a.detail"
                       " FROM alerts a LEFT JOIN series s ON s.id = a.series_id"
                       " WHERE a.published = 0 AND a.id > ?1 ORDER BY a.id LIMIT ?2"},
    [S_COUNT_READINGS] = {"count readings",
                          "SELECT (SELECT count(*) FROM readings) +"
                          " (SELECT count(*) FROM readings_recent r WHERE NOT EXISTS"
                          " (SELECT 1 FROM readings x WHERE x.series_id = r.series_id"
                          " AND x.ts_ms = r.ts_ms AND x.value = r.value))"},
    [S_COUNT_ALERTS] = {"count alerts", "SELECT count(*) FROM alerts"},
    [S_INS_SUMMARY] = {"insert summary",
                       "INSERT INTO summaries(series_id, window_ms, start_ms, count, min, max,"
                       " mean, stddev, first, last, p50, p95)"
                       " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"},
    [S_MERGE_BEGIN] = {"merge readings: begin", "BEGIN IMMEDIATE"},
    /* Key order touches each page of readings once; among copies of one reading the first to
     * arrive (lowest rowid) is kept, and the others are skipped. */
    [S_MERGE_COPY] = {"merge readings",
                      "INSERT OR IGNORE INTO readings(series_id, ts_ms, value, anomaly)"
                      " SELECT series_id, ts_ms, value, anomaly FROM readings_recent"
                      " ORDER BY series_id, ts_ms, value, rowid"},
    [S_MERGE_CLEAR] = {"merge readings: clear", "DELETE FROM readings_recent"},
    [S_MERGE_COMMIT] = {"merge readings: commit", "COMMIT"},
};

struct st_db {
    sqlite3 *h;
    char *path;
    bool read_only;
    int64_t recent;     /* rows in readings_recent, or more after a rollback */
    int64_t retry_at;   /* after a failed merge, do not try again before recent reaches this */
    int64_t merge_rows; /* from st_db_opts; 0 for the default */
    int64_t n_series;
    int64_t maybe_dup;  /* staged rows that may repeat a stored reading (st_db_insert_readings) */
    int64_t duplicates; /* copies skipped by merges since open */
    int64_t merges;     /* merges since open */
    int64_t staged_min; /* smallest ts_ms staged since the last merge (INT64_MAX: none), or
                           smaller after a rollback */
    sqlite3_stmt *stmt[S__COUNT];
    char err[512];
};

/* ---- errors ------------------------------------------------------------------------------ */

/* True when the file, or the directory that would hold it, cannot be written. */
static bool read_only_place(const char *path) {
    if (path == NULL || access(path, F_OK) == 0) {
        return path != NULL && access(path, W_OK) != 0;
    }
    char *copy = strdup(path);
    if (copy == NULL) {
        return false;
    }
    bool ro = access(dirname(copy), W_OK) != 0 && errno != ENOENT;
    free(copy);
    return ro;
}

static int map_rc(const char *path, int rc) {
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return ST_OK;
    case SQLITE_FULL:
        return ST_EFULL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return ST_EBUSY;
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return ST_EREADONLY;
    case SQLITE_CANTOPEN:
        return read_only_place(path) ? ST_EREADONLY : ST_EIO;
    case SQLITE_NOMEM:
        return ST_ENOMEM;
    case SQLITE_NOTADB:
        return ST_ESCHEMA;
    default:
        return ST_EIO;
    }
}

/* Appends to db->err which file keeps a writer out: the database, its -wal or -shm file
 * (SQLite creates those with the database's mode, so a file that was read-only leaves them
 * read-only after it is made writable again), or the directory. */
static void name_read_only(st_db *db) {
    static const char *const suffix[] = {"", "-wal", "-shm"};
    char path[4096];
    size_t n = strlen(db->err);
    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", db->path, suffix[i]);
        if (access(path, F_OK) == 0 && access(path, W_OK) != 0) {
            snprintf(db->err + n, sizeof(db->err) - n, " (%.200s is not writable)", path);
            return;
        }
    }
    if (read_only_place(db->path)) {
        snprintf(db->err + n, sizeof(db->err) - n, " (its directory is not writable)");
    }
}

/* Records "<what>: <sqlite message>" and returns the ST_E* code of rc (an SQLite code). */
static int fail(st_db *db, const char *what, int rc) {
    const char *msg = db->h != NULL ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc);
    snprintf(db->err, sizeof(db->err), "%s: %s", what, msg);
    int code = map_rc(db->path, rc);
    return code != ST_OK ? code : ST_EIO;
}

/* Records a reason that is not an SQLite error. */
static int fail_msg(st_db *db, int code, const char *what, const char *msg) {
    snprintf(db->err, sizeof(db->err), "%s: %s", what, msg);
    return code;
}

/* ---- statement helpers ------------------------------------------------------------------- */

/* Makes a statement ready for its next use. sqlite3_reset only repeats the error of the last
 * step, which the caller has already reported, and sqlite3_clear_bindings cannot fail; clearing
 * drops the pointers to borrowed strings bound with SQLITE_STATIC. */
static void release(sqlite3_stmt *st) {
    (void)sqlite3_reset(st);
    (void)sqlite3_clear_bindings(st);
}

static inline int bind_i64(st_db *db, enum stmt_id id, int col, int64_t v) {
    int rc = sqlite3_bind_int64(db->stmt[id], col, v);
    return rc == SQLITE_OK ? 0 : fail(db, stmt_defs[id].what, rc);
}

static inline int bind_dbl(st_db *db, enum stmt_id id, int col, double v) {
    int rc = sqlite3_bind_double(db->stmt[id], col, v);
    return rc == SQLITE_OK ? 0 : fail(db, stmt_defs[id].what, rc);
}

/* Binds a borrowed string without copying it; NULL binds SQL NULL. */
static inline int bind_txt(st_db *db, enum stmt_id id, int col, const char *s) {
    int rc = sqlite3_bind_text(db->stmt[id], col, s, -1, SQLITE_STATIC);
    return rc == SQLITE_OK ? 0 : fail(db, stmt_defs[id].what, rc);
}

/* Steps a bound statement that returns no row, then releases it. */
static int step_done(st_db *db, enum stmt_id id) {
    int rc = sqlite3_step(db->stmt[id]);
    int ret = rc == SQLITE_DONE ? 0 : fail(db, stmt_defs[id].what, rc);
    release(db->stmt[id]);
    return ret;
}

/* Runs a statement that returns one integer (a count, a pragma value). */
static int query_int(st_db *db, const char *what, const char *sql, int64_t *out) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return fail(db, what, rc);
    }
    int ret = 0;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
    } else if (rc == SQLITE_DONE) {
        ret = fail_msg(db, ST_EIO, what, "no result");
    } else {
        ret = fail(db, what, rc);
    }
    /* The error, if any, came from the step and is already recorded. */
    (void)sqlite3_finalize(st);
    return ret;
}

static int exec_sql(st_db *db, const char *what, const char *sql) {
    int rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : fail(db, what, rc);
}

/* ---- open: checks, pragmas, migrations --------------------------------------------------- */

/* Refuses files that are not iotgw databases, or come from a newer iotgw. */
static int check_identity(st_db *db) {
    int64_t app_id, version, n_objects;
    int ret;
    if ((ret = query_int(db, "read application_id", "PRAGMA application_id", &app_id)) != 0 ||
        (ret = query_int(db, "read user_version", "PRAGMA user_version", &version)) != 0 ||
        (ret = query_int(db, "read schema", "SELECT count(*) FROM sqlite_schema", &n_objects)) !=
            0) {
        return ret;
    }
    bool empty = version == 0 && n_objects == 0;
    if (app_id != APP_ID && !(empty && !db->read_only)) {
        return fail_msg(db, ST_ESCHEMA, db->path,
                        "not an iotgw database (no iotgw application_id, and not empty)");
    }
    if (version < 0) {
        return fail_msg(db, ST_ESCHEMA, db->path, "invalid schema version (negative)");
    }
    if (version > ST_SCHEMA_VERSION) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "schema version %lld is newer than this iotgw supports (%d); upgrade iotgw",
                 (long long)version, ST_SCHEMA_VERSION);
        return fail_msg(db, ST_ESCHEMA, db->path, msg);
    }
    if (db->read_only && version != ST_SCHEMA_VERSION) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "schema version %lld is older than %d; open it read-write once to migrate",
                 (long long)version, ST_SCHEMA_VERSION);
        return fail_msg(db, ST_ESCHEMA, db->path, msg);
    }
    return 0;
}

/* PRAGMA max_page_count from a size in bytes; the limit lasts as long as the connection. SQLite
 * never lowers it below the pages in use, and a file at its limit fails writes with SQLITE_FULL
 * (ST_EFULL), as a full disk does. 0 keeps SQLite's own limit. */
static int set_max_size(st_db *db, int64_t max_bytes) {
    int64_t page_size, pages;
    int ret;
    if (max_bytes <= 0) {
        return 0;
    }
    if ((ret = query_int(db, "page_size", "PRAGMA page_size", &page_size)) != 0) {
        return ret;
    }
    pages = page_size > 0 ? max_bytes / page_size : 0;
    if (pages >= MAX_PAGE_COUNT) {
        return 0;
    }
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld", (long long)(pages > 1 ? pages : 1));
    return query_int(db, "max_page_count", sql, &pages);
}

static int set_pragmas(st_db *db, const st_db_opts *opts) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->h, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return fail(db, "journal_mode", rc);
    }
    int ret = 0;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        ret = fail(db, "journal_mode", rc);
    } else {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        /* An in-memory database reports "memory"; anything else means WAL was refused. */
        if (mode == NULL || (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0)) {
            ret = fail_msg(db, ST_EIO, "journal_mode", "could not switch to WAL");
        }
    }
    (void)sqlite3_finalize(st); /* a failed step is already recorded */
    if (ret != 0) {
        return ret;
    }
    char sql[160];
    snprintf(sql, sizeof(sql),
             "PRAGMA synchronous = %s; PRAGMA journal_size_limit = %d; PRAGMA cache_size = -%d",
             opts->sync_full ? "FULL" : "NORMAL", JOURNAL_SIZE_LIMIT, CACHE_KIB);
    if ((ret = exec_sql(db, "pragmas", sql)) != 0) {
        return ret;
    }
    return set_max_size(db, opts->max_bytes);
}

static int rollback_quietly(st_db *db) {
    if (sqlite3_get_autocommit(db->h)) {
        return 0;
    }
    /* Called after a failure: its own error must not hide the first one. */
    int rc = sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : -1;
}

/* Applies migrations[v] for each v from the current version, each in its own transaction.
 * The version is read again under the write lock, so two processes opening the same file
 * cannot both apply a step. */
static int migrate(st_db *db) {
    for (;;) {
        int64_t v;
        int ret = exec_sql(db, "migrate: begin", "BEGIN IMMEDIATE");
        if (ret != 0) {
            return ret;
        }
        if ((ret = query_int(db, "migrate: read user_version", "PRAGMA user_version", &v)) != 0) {
            goto fail_rollback;
        }
        if (v < 0 || v >= ST_SCHEMA_VERSION) {
            if (v != ST_SCHEMA_VERSION) {
                ret = fail_msg(db, ST_ESCHEMA, db->path,
                               "migrated by a newer iotgw while opening; upgrade iotgw");
                goto fail_rollback;
            }
            return exec_sql(db, "migrate: commit", "COMMIT");
        }
        if ((ret = exec_sql(db, migrations[v].what, migrations[v].sql)) != 0) {
            goto fail_rollback;
        }
        char sql[96];
        snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; PRAGMA user_version = %lld", APP_ID,
                 (long long)v + 1);
        if ((ret = exec_sql(db, "migrate: set user_version", sql)) != 0) {
            goto fail_rollback;
        }
        if ((ret = exec_sql(db, "migrate: commit", "COMMIT")) != 0) {
            goto fail_rollback;
        }
        continue;
    fail_rollback:
        (void)rollback_quietly(db);
        return ret;
    }
}

/* "INSERT INTO readings_recent(...) VALUES(?,?,?,?), ..." with ST_INSERT_CHUNK rows. */
static void chunk_sql(char *buf, size_t len) {
    size_t n = (size_t)snprintf(buf, len,
                                "INSERT INTO readings_recent(series_id, ts_ms, value,"
                                " anomaly) VALUES(?,?,?,?)");
    for (int i = 1; i < ST_INSERT_CHUNK && n < len; i++) {
        n += (size_t)snprintf(buf + n, len - n, ",(?,?,?,?)");
    }
}

static int prepare_all(st_db *db) {
    char chunk[128 + ST_INSERT_CHUNK * 16];
    chunk_sql(chunk, sizeof(chunk));
    for (int i = 0; i < S__COUNT; i++) {
        const char *sql = i == S_INS_READINGS_CHUNK ? chunk : stmt_defs[i].sql;
        int rc = sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &db->stmt[i], NULL);
        if (rc != SQLITE_OK) {
            char what[64];
            snprintf(what, sizeof(what), "prepare %s", stmt_defs[i].what);
            return fail(db, what, rc);
        }
    }
    return 0;
}

static void close_handle(st_db *db) {
    for (int i = 0; i < S__COUNT; i++) {
        /* Finalizing only repeats a statement's last error, which was reported then. */
        (void)sqlite3_finalize(db->stmt[i]);
        db->stmt[i] = NULL;
    }
    if (db->h != NULL && sqlite3_close(db->h) != SQLITE_OK) {
        /* Cannot happen with every statement finalized; never leak the handle anyway. */
        (void)sqlite3_close_v2(db->h);
    }
    db->h = NULL;
}

int st_db_open(st_db **out, const char *path, const st_db_opts *opts, char *err, size_t errlen) {
    static const st_db_opts defaults = {0};
    int ret;
    if (opts == NULL) {
        opts = &defaults;
    }
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (out == NULL || path == NULL) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "open: no database path");
        }
        return ST_EIO;
    }
    st_db *db = calloc(1, sizeof(*db));
    if (db == NULL) {
        ret = ST_ENOMEM;
        goto fail_alloc;
    }
    db->path = strdup(path);
    if (db->path == NULL) {
        ret = ST_ENOMEM;
        goto fail_path;
    }
    db->read_only = opts->read_only;

    int flags =
        SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE |
        (opts->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = sqlite3_open_v2(path, &db->h, flags, NULL);
    if (rc != SQLITE_OK) {
        ret = fail(db, "open", rc);
        goto fail_open;
    }
    /* SQLite silently falls back to read-only for a file it cannot write. */
    if (!opts->read_only && sqlite3_db_readonly(db->h, "main") == 1) {
        ret = fail_msg(db, ST_EREADONLY, "open", "the database file is read-only");
        goto fail_open;
    }
    int busy = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : BUSY_TIMEOUT_DEFAULT;
    rc = sqlite3_busy_timeout(db->h, busy);
    if (rc != SQLITE_OK) {
        ret = fail(db, "busy_timeout", rc);
        goto fail_open;
    }
    if ((ret = check_identity(db)) != 0) {
        goto fail_open;
    }
    if (opts->read_only) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA cache_size = -%d", CACHE_KIB);
        if ((ret = exec_sql(db, "pragmas", sql)) != 0) {
            goto fail_open;
        }
    } else if ((ret = set_pragmas(db, opts)) != 0 || (ret = migrate(db)) != 0) {
        goto fail_open;
    }
    if ((ret = prepare_all(db)) != 0) {
        goto fail_open;
    }
    db->merge_rows = opts->merge_rows > 0 ? opts->merge_rows : 0;
    db->staged_min = INT64_MAX;
    if (!opts->read_only &&
        ((ret = query_int(db, "count recent readings", "SELECT count(*) FROM readings_recent",
                          &db->recent)) != 0 ||
         (ret = query_int(db, "count series", "SELECT count(*) FROM series", &db->n_series)) !=
             0)) {
        goto fail_open;
    }
    /* Staged rows of an earlier run may be repeated by redeliveries after this start: merging
     * them now lets the next merge skip those copies. A failed merge (a full disk) does not
     * fail the open: the rows stay staged and the merge is tried again when due. */
    if (!opts->read_only && db->recent > 0 && st_db_merge(db) != 0) {
        db->retry_at = db->recent + 1;
        db->staged_min = INT64_MIN; /* not known: what an earlier run staged may be old */
    }
    db->err[0] = '\0';
    *out = db;
    return 0;

fail_open:
    if (ret == ST_EREADONLY && !opts->read_only) {
        name_read_only(db);
    }
    if (err != NULL && errlen > 0) {
        snprintf(err, errlen, "%s", db->err);
    }
    close_handle(db);
    free(db->path);
fail_path:
    free(db);
fail_alloc:
    if (ret == ST_ENOMEM && err != NULL && errlen > 0 && err[0] == '\0') {
        snprintf(err, errlen, "open: out of memory");
    }
    return ret;
}

void st_db_close(st_db *db) {
    if (db == NULL) {
        return;
    }
    close_handle(db);
    free(db->path);
    free(db);
}

const char *st_db_errmsg(const st_db *db) {
    return db != NULL ? db->err : "";
}

int st_db_set_busy_timeout(st_db *db, int ms) {
    int rc = sqlite3_busy_timeout(db->h, ms > 0 ? ms : BUSY_TIMEOUT_DEFAULT);
    return rc == SQLITE_OK ? 0 : fail(db, "busy_timeout", rc);
}

sqlite3 *st_db_handle(st_db *db) {
    return db->h;
}

int st_db_exec(st_db *db, const char *sql) {
    return exec_sql(db, "exec", sql);
}

/* ---- transactions ------------------------------------------------------------------------ */

int st_db_begin(st_db *db) {
    /* SQLite would start a write transaction on a read-only connection and fail only later. */
    if (db->read_only) {
        return fail_msg(db, ST_EREADONLY, stmt_defs[S_BEGIN].what, "database opened read-only");
    }
    return step_done(db, S_BEGIN);
}

/* Merges once enough readings are staged. A failure leaves the rows staged (the views still
 * show them) and its reason in db->err; the next try waits for another quarter of merge_rows,
 * so that a full disk does not turn every commit into a failing merge. */
static void merge_if_due(st_db *db) {
    int64_t threshold = db->merge_rows;
    if (threshold == 0) {
        threshold = MERGE_ROWS_PER_SERIES * db->n_series;
        threshold = threshold > MERGE_ROWS_MIN ? threshold : MERGE_ROWS_MIN;
    }
    if (db->recent < threshold || db->recent < db->retry_at) {
        return;
    }
    if (st_db_merge(db) != 0) {
        db->retry_at = db->recent + threshold / 4 + 1;
    }
}

int st_db_commit(st_db *db) {
    int ret = step_done(db, S_COMMIT);
    if (ret == 0) {
        merge_if_due(db);
    }
    return ret;
}

int st_db_merge(st_db *db) {
    int ret;
    if (db->read_only) {
        return fail_msg(db, ST_EREADONLY, stmt_defs[S_MERGE_COPY].what,
                        "database opened read-only");
    }
    if (!sqlite3_get_autocommit(db->h)) {
        return fail_msg(db, ST_EIO, stmt_defs[S_MERGE_COPY].what, "called inside a transaction");
    }
    if ((ret = step_done(db, S_MERGE_BEGIN)) != 0) {
        return ret;
    }
    int64_t copied = 0, cleared = 0;
    if ((ret = step_done(db, S_MERGE_COPY)) != 0) {
        goto fail_rollback;
    }
    copied = sqlite3_changes64(db->h);
    if ((ret = step_done(db, S_MERGE_CLEAR)) != 0) {
        goto fail_rollback;
    }
    cleared = sqlite3_changes64(db->h);
    if ((ret = step_done(db, S_MERGE_COMMIT)) != 0) {
        goto fail_rollback;
    }
    db->duplicates += cleared - copied;
    db->merges++;
    db->recent = 0;
    db->retry_at = 0;
    db->maybe_dup = 0;
    db->staged_min = INT64_MAX;
    return 0;

fail_rollback:
    (void)rollback_quietly(db);
    return ret;
}

int st_db_settle(st_db *db) {
    if (db->read_only || db->recent == 0 || db->maybe_dup == 0) {
        return 0;
    }
    return st_db_merge(db);
}

int64_t st_db_duplicates(const st_db *db) {
    return db->duplicates;
}

int64_t st_db_merges(const st_db *db) {
    return db->merges;
}

bool st_db_staged_min(const st_db *db, int64_t *ts_ms) {
    *ts_ms = db->staged_min;
    return db->recent > 0;
}

int st_db_rollback(st_db *db) {
    /* SQLite may already have rolled back after SQLITE_FULL, SQLITE_IOERR or SQLITE_NOMEM. */
    if (sqlite3_get_autocommit(db->h)) {
        return 0;
    }
    return step_done(db, S_ROLLBACK);
}

/* ---- writes ------------------------------------------------------------------------------ */

int st_db_series_id(st_db *db, const char *sensor, const char *metric, int64_t *id) {
    int ret;
    if ((ret = bind_txt(db, S_SEL_SERIES, 1, sensor)) != 0 ||
        (ret = bind_txt(db, S_SEL_SERIES, 2, metric)) != 0) {
        release(db->stmt[S_SEL_SERIES]);
        return ret;
    }
    int rc = sqlite3_step(db->stmt[S_SEL_SERIES]);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(db->stmt[S_SEL_SERIES], 0);
        release(db->stmt[S_SEL_SERIES]);
        return 0;
    }
    ret = rc == SQLITE_DONE ? 0 : fail(db, stmt_defs[S_SEL_SERIES].what, rc);
    release(db->stmt[S_SEL_SERIES]);
    if (ret != 0) {
        return ret;
    }
    if ((ret = bind_txt(db, S_INS_SERIES, 1, sensor)) != 0 ||
        (ret = bind_txt(db, S_INS_SERIES, 2, metric)) != 0) {
        release(db->stmt[S_INS_SERIES]);
        return ret;
    }
    if ((ret = step_done(db, S_INS_SERIES)) != 0) {
        return ret;
    }
    *id = sqlite3_last_insert_rowid(db->h);
    db->n_series++;
    return 0;
}

/* Binds SQL NULL for NaN (no score, no value). */
static inline int bind_dbl_or_null(st_db *db, enum stmt_id id, int col, double v) {
    int rc =
        isnan(v) ? sqlite3_bind_null(db->stmt[id], col) : sqlite3_bind_double(db->stmt[id], col, v);
    return rc == SQLITE_OK ? 0 : fail(db, stmt_defs[id].what, rc);
}

/* Binds SQL NULL for "no time": <= 0 or INT64_MAX (an unbounded band). */
static inline int bind_time_or_null(st_db *db, enum stmt_id id, int col, int64_t v) {
    int rc = v <= 0 || v == INT64_MAX ? sqlite3_bind_null(db->stmt[id], col)
                                      : sqlite3_bind_int64(db->stmt[id], col, v);
    return rc == SQLITE_OK ? 0 : fail(db, stmt_defs[id].what, rc);
}

/* Counts n staged rows; outside a transaction they are committed already: the same point as
 * a commit, where a merge may be due. */
static void staged(st_db *db, const st_reading_row *rows, size_t n, size_t n_maybe_dup) {
    for (size_t i = 0; i < n; i++) {
        if (rows[i].ts_ms < db->staged_min) {
            db->staged_min = rows[i].ts_ms;
        }
    }
    db->recent += (int64_t)n;
    db->maybe_dup += (int64_t)n_maybe_dup;
    if (sqlite3_get_autocommit(db->h)) {
        merge_if_due(db);
    }
}

/* Binds row r at parameter base + 1.. of statement id. */
static inline int bind_reading(st_db *db, enum stmt_id id, int base, const st_reading_row *r) {
    int ret;
    if ((ret = bind_i64(db, id, base + 1, r->series_id)) != 0 ||
        (ret = bind_i64(db, id, base + 2, r->ts_ms)) != 0 ||
        (ret = bind_dbl(db, id, base + 3, r->value)) != 0 ||
        (ret = bind_dbl_or_null(db, id, base + 4, r->anomaly)) != 0) {
        return ret;
    }
    return 0;
}

int st_db_insert_readings(st_db *db, const st_reading_row *rows, size_t n, size_t n_maybe_dup,
                          size_t *done) {
    size_t i = 0;
    int ret = 0;
    while (i < n) {
        bool chunk = n - i >= ST_INSERT_CHUNK;
        enum stmt_id id = chunk ? S_INS_READINGS_CHUNK : S_INS_READING;
        size_t k = chunk ? ST_INSERT_CHUNK : 1;
        for (size_t j = 0; j < k && ret == 0; j++) {
            ret = bind_reading(db, id, 4 * (int)j, &rows[i + j]);
        }
        if (ret != 0) {
            release(db->stmt[id]);
            break;
        }
        if ((ret = step_done(db, id)) != 0) {
            break;
        }
        i += k;
    }
    if (done != NULL) {
        *done = i;
    }
    staged(db, rows, i, i < n_maybe_dup ? i : n_maybe_dup);
    return ret;
}

int st_db_insert_reading(st_db *db, int64_t series_id, int64_t ts_ms, double value) {
    return st_db_insert_reading_scored(db, series_id, ts_ms, value, NAN);
}

int st_db_insert_reading_scored(st_db *db, int64_t series_id, int64_t ts_ms, double value,
                                double anomaly) {
    /* Without the caller's knowledge of the series' order, any row may repeat one. */
    st_reading_row r = {series_id, ts_ms, value, anomaly};
    return st_db_insert_readings(db, &r, 1, 1, NULL);
}

int st_db_insert_prediction(st_db *db, int64_t series_id, int64_t ts_ms, double level,
                            double slope_per_h, double slope_se_per_h, int64_t eta_ms,
                            int64_t eta_lo_ms, int64_t eta_hi_ms) {
    const enum stmt_id id = S_INS_PREDICTION;
    int ret;
    if ((ret = bind_i64(db, id, 1, series_id)) != 0 || (ret = bind_i64(db, id, 2, ts_ms)) != 0 ||
        (ret = bind_dbl_or_null(db, id, 3, level)) != 0 ||
        (ret = bind_dbl_or_null(db, id, 4, slope_per_h)) != 0 ||
        (ret = bind_dbl_or_null(db, id, 5, slope_se_per_h)) != 0 ||
        (ret = bind_time_or_null(db, id, 6, eta_ms)) != 0 ||
        (ret = bind_time_or_null(db, id, 7, eta_lo_ms)) != 0 ||
        (ret = bind_time_or_null(db, id, 8, eta_hi_ms)) != 0) {
        release(db->stmt[id]);
        return ret;
    }
    return step_done(db, id);
}

int st_db_insert_summary(st_db *db, int64_t series_id, const an_window_summary *w) {
    int ret;
    if ((ret = bind_i64(db, S_INS_SUMMARY, 1, series_id)) != 0 ||
        (ret = bind_i64(db, S_INS_SUMMARY, 2, w->window_ms)) != 0 ||
        (ret = bind_i64(db, S_INS_SUMMARY, 3, w->start_ms)) != 0 ||
        (ret = bind_i64(db, S_INS_SUMMARY, 4, (int64_t)w->count)) != 0 ||
        (ret = bind_dbl(db, S_INS_SUMMARY, 5, w->min)) != 0 ||
        (ret = bind_dbl(db, S_INS_SUMMARY, 6, w->max)) != 0 ||
        (ret = bind_dbl(db, S_INS_SUMMARY, 7, w->mean)) != 0 ||
        (ret = bind_dbl(db, S_INS_SUMMARY, 8, w->stddev)) != 0 ||
        (ret = bind_dbl(db, S_INS_SUMMARY, 9, w->first)) != 0 ||
        (ret = bind_dbl(db, S_INS_SUMMARY, 10, w->last)) != 0 ||
        (ret = bind_dbl(db, S_INS_SUMMARY, 11, w->p50)) != 0 ||
        (ret = bind_dbl(db, S_INS_SUMMARY, 12, w->p95)) != 0) {
        release(db->stmt[S_INS_SUMMARY]);
        return ret;
    }
    return step_done(db, S_INS_SUMMARY);
}

int st_db_insert_alert(st_db *db, const st_alert_row *row, int64_t *id) {
    int ret;
    if (row == NULL) {
        return fail_msg(db, ST_EIO, stmt_defs[S_INS_ALERT].what, "no row");
    }
    if ((ret = bind_txt(db, S_INS_ALERT, 1, row->gateway)) != 0 ||
        (ret = bind_i64(db, S_INS_ALERT, 2, row->series_id)) != 0 ||
        (ret = bind_txt(db, S_INS_ALERT, 3, row->kind)) != 0 ||
        (ret = bind_txt(db, S_INS_ALERT, 4, row->state)) != 0 ||
        (ret = bind_txt(db, S_INS_ALERT, 5, row->severity)) != 0 ||
        (ret = bind_txt(db, S_INS_ALERT, 6, row->rule)) != 0 ||
        (ret = bind_i64(db, S_INS_ALERT, 7, row->ts_ms)) != 0 ||
        (ret = bind_dbl(db, S_INS_ALERT, 8, row->value)) != 0 ||
        (ret = bind_dbl(db, S_INS_ALERT, 9, row->threshold)) != 0 ||
        (ret = bind_txt(db, S_INS_ALERT, 10, row->message)) != 0 ||
        (ret = bind_dbl_or_null(db, S_INS_ALERT, 11, row->detail)) != 0) {
        release(db->stmt[S_INS_ALERT]);
        return ret;
    }
    if ((ret = step_done(db, S_INS_ALERT)) != 0) {
        return ret;
    }
    *id = sqlite3_last_insert_rowid(db->h);
    return 0;
}

int st_db_mark_published(st_db *db, int64_t id) {
    int ret = bind_i64(db, S_MARK_PUB, 1, id);
    if (ret != 0) {
        release(db->stmt[S_MARK_PUB]);
        return ret;
    }
    return step_done(db, S_MARK_PUB);
}

/* ---- reads ------------------------------------------------------------------------------- */

static const char *col_text(sqlite3_stmt *st, int col) {
    return (const char *)sqlite3_column_text(st, col);
}

static double col_double(sqlite3_stmt *st, int col) {
    /* value and threshold are NULL when they were NaN. */
    return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}

int st_db_unpublished(st_db *db, int64_t after_id, int limit, st_alert_fn fn, void *ctx) {
    const enum stmt_id id = S_UNPUBLISHED;
    sqlite3_stmt *st = db->stmt[id];
    int ret;
    if (fn == NULL) {
        return fail_msg(db, ST_EIO, stmt_defs[id].what, "no callback");
    }
    /* Inside a transaction this connection would also see its own uncommitted alerts. */
    if (!sqlite3_get_autocommit(db->h)) {
        return fail_msg(db, ST_EIO, stmt_defs[id].what, "called inside a transaction");
    }
    if (limit <= 0) {
        return 0;
    }
    if ((ret = bind_i64(db, id, 1, after_id)) != 0 || (ret = bind_i64(db, id, 2, limit)) != 0) {
        release(st);
        return ret;
    }
    int n = 0;
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            break;
        }
        if (rc != SQLITE_ROW) {
            ret = fail(db, stmt_defs[id].what, rc);
            break;
        }
        st_alert_out a = {
            .id = sqlite3_column_int64(st, 0),
            .gateway = col_text(st, 1),
            .sensor = col_text(st, 2),
            .metric = col_text(st, 3),
            .kind = col_text(st, 4),
            .state = col_text(st, 5),
            .severity = col_text(st, 6),
            .rule = col_text(st, 7),
            .message = col_text(st, 8),
            .ts_ms = sqlite3_column_int64(st, 9),
            .value = col_double(st, 10),
            .threshold = col_double(st, 11),
            .detail = col_double(st, 12),
        };
        n++;
        if (fn(ctx, &a) != 0) {
            break;
        }
    }
    release(st);
    return ret != 0 ? ret : n;
}

static int count_rows(st_db *db, enum stmt_id id, int64_t *n) {
    sqlite3_stmt *st = db->stmt[id];
    int ret = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *n = sqlite3_column_int64(st, 0);
    } else {
        ret = fail(db, stmt_defs[id].what, rc);
    }
    release(st);
    return ret;
}

int st_db_count_readings(st_db *db, int64_t *n) {
    return count_rows(db, S_COUNT_READINGS, n);
}

int st_db_count_alerts(st_db *db, int64_t *n) {
    return count_rows(db, S_COUNT_ALERTS, n);
}
