/* SQLite storage: schema, migrations and the write path. One st_db is one connection; the
 * writer thread owns the write connection and is the only thread that calls the write
 * functions. A connection is opened with SQLITE_OPEN_NOMUTEX: one thread at a time may use
 * it. Every function returns 0 or a negative error code (ST_E*), and writes a one-line reason
 * (with sqlite3_errmsg) retrievable with st_db_errmsg.
 *
 * Schema (version 4, PRAGMA user_version = 4; version 1 had no summaries, version 2 no
 * anomaly scores, predictions or v_active_alerts, version 3 a rowid readings table with an
 * index and no deduplication), STRICT tables:
 *   series(id INTEGER PRIMARY KEY, sensor TEXT NOT NULL, metric TEXT NOT NULL,
 *          UNIQUE(sensor, metric))
 *   readings(series_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL, value REAL NOT NULL,
 *          anomaly REAL, PRIMARY KEY(series_id, ts_ms, value)) WITHOUT ROWID; anomaly is NULL
 *          when not scored. (series, ts_ms, value) identifies a reading: repeated timestamps
 *          with other values are kept, exact copies (redeliveries) are stored once.
 *   readings_recent(series_id, ts_ms, value, anomaly), same columns, rowid, no index: new
 *          readings are appended here and merged into readings in key order every merge_rows
 *          rows (st_db_merge). Keeping the clustered table up to date row by row touches one
 *          page per series per transaction; measured 3-5x slower than this staging.
 *   alerts(id INTEGER PRIMARY KEY AUTOINCREMENT, gateway TEXT, series_id INTEGER, kind TEXT,
 *          state TEXT, severity TEXT, rule TEXT, ts_ms INTEGER, value REAL, threshold REAL,
 *          message TEXT, published INTEGER NOT NULL DEFAULT 0)   -- the outbox
 *          + index on (series_id, kind, rule, id) for v_active_alerts
 *   predictions(series_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL, level REAL,
 *          slope_per_h REAL, slope_se_per_h REAL, eta_ms INTEGER, eta_lo_ms INTEGER,
 *          eta_hi_ms INTEGER) + index on (series_id, ts_ms)
 *   views (the documented contract, docs/history.md):
 *          v_readings(sensor, metric, ts_ms, ts, value, anomaly) over readings and the
 *                     staged rows not in readings yet,
 *          v_alerts(id, sensor, metric, kind, state, severity, ts_ms, ts, value, threshold,
 *                   message, published, rule),
 *          v_active_alerts(same columns as v_alerts): per (series, kind, rule) the newest
 *                   alert row (highest id) when its state is 'raised',
 *          v_predictions(sensor, metric, ts_ms, ts, level, slope_per_h, slope_se_per_h,
 *                        eta_ms, eta, eta_lo_ms, eta_hi_ms), eta RFC 3339 text or NULL
 *   PRAGMA application_id = 0x696f7467 ("iotg") marks iotgw files.
 * Pragmas: journal_mode=WAL, synchronous=NORMAL (FULL optional), busy_timeout,
 * journal_size_limit=64 MiB, cache_size=2 MiB. */
#ifndef ST_DB_H
#define ST_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "window.h"

#define ST_OK        0
#define ST_EIO       (-1) /* an SQLite error; see st_db_errmsg */
#define ST_ENOMEM    (-2)
#define ST_EBUSY     (-3) /* locked by another connection past busy_timeout */
#define ST_EFULL     (-4) /* disk or database full */
#define ST_EREADONLY (-5) /* read-only file or directory */
/* Not an iotgw database (also a file that is not SQLite at all), or one from a newer iotgw
 * (user_version too high); for a read-only open also a schema older than ST_SCHEMA_VERSION. */
#define ST_ESCHEMA (-6)

#define ST_SCHEMA_VERSION 4

/* Rows per multi-row INSERT of st_db_insert_readings (one statement of 4 x 32 parameters
 * measured ~2x faster per row than single-row statements). */
#define ST_INSERT_CHUNK 32

typedef struct st_db st_db;

typedef struct st_db_opts {
    bool sync_full;      /* synchronous=FULL instead of NORMAL */
    int busy_timeout_ms; /* default 5000 when 0 */
    bool read_only;      /* open read-only (for queries); no migrations */
    int merge_rows;      /* merge staged readings from this many; when <= 0, the default:
                            max(262144, 64 x number of series) */
    int64_t max_bytes;   /* largest file size (PRAGMA max_page_count, rounded down to pages);
                            past it writes fail with ST_EFULL; <= 0: SQLite's own limit */
} st_db_opts;

/* Opens (creating it when missing, unless read_only) and migrates the schema.
 * Borrows path and opts. On failure *out is untouched and err gets a reason. */
int st_db_open(st_db **out, const char *path, const st_db_opts *opts, char *err, size_t errlen);
void st_db_close(st_db *db);

/* The reason of the last failed call on this connection ("" if none). Valid until the next
 * call. */
const char *st_db_errmsg(const st_db *db);

/* Transactions: one batch of rows per transaction (BEGIN IMMEDIATE). st_db_rollback without an
 * open transaction (SQLite may have rolled back already, e.g. after ST_EFULL) returns 0.
 * After a successful COMMIT, st_db_commit merges the staged readings when merge_rows or more
 * are staged (in its own transaction; ~0.2-0.4 s for 256k rows of 1k series, ~1-2 s for 640k
 * rows of 10k series, during which the writer stalls). A failed merge does not fail the
 * commit: the rows stay staged and visible in v_readings, the reason is left in st_db_errmsg,
 * and the merge is retried after another merge_rows / 4 readings. */
int st_db_begin(st_db *db);
int st_db_commit(st_db *db);
int st_db_rollback(st_db *db);

/* Finds or inserts the series row for (sensor, metric); writes its id. Borrows the names.
 * The caller caches the id (this function runs SQL every time). */
int st_db_series_id(st_db *db, const char *sensor, const char *metric, int64_t *id);

typedef struct st_reading_row {
    int64_t series_id;
    int64_t ts_ms;
    double value;   /* finite */
    double anomaly; /* anomaly score (anomaly.h); NaN stores NULL */
} st_reading_row;

/* Appends n raw readings (inside a transaction, normally) to readings_recent, in statements of
 * ST_INSERT_CHUNK rows. n_maybe_dup says how many of them may repeat a reading stored before
 * (the caller knows: a reading newer than every earlier one of its series cannot); 0 lets
 * st_db_settle skip its merge. Writes the number of rows appended to *done (may be NULL): on
 * failure the rows before *done were appended, the others not. Outside a transaction it may
 * run a merge (see st_db_commit). Borrows rows. */
int st_db_insert_readings(st_db *db, const st_reading_row *rows, size_t n, size_t n_maybe_dup,
                          size_t *done);

/* One reading, with no anomaly score / with one; each counts as a possible repeat. */
int st_db_insert_reading(st_db *db, int64_t series_id, int64_t ts_ms, double value);
int st_db_insert_reading_scored(st_db *db, int64_t series_id, int64_t ts_ms, double value,
                                double anomaly);

/* Appends one trend prediction (trend.h) made at ts_ms (inside a transaction). NaN level or
 * slopes store NULL; an eta <= 0 or INT64_MAX (none predicted, or an unbounded band) stores
 * NULL. */
int st_db_insert_prediction(st_db *db, int64_t series_id, int64_t ts_ms, double level,
                            double slope_per_h, double slope_se_per_h, int64_t eta_ms,
                            int64_t eta_lo_ms, int64_t eta_hi_ms);

/* Appends one window summary (inside a transaction). Borrows w. Version 2 schema:
 *   summaries(series_id, window_ms, start_ms, count, min, max, mean, stddev, first, last, p50,
 *             p95) + index on (series_id, window_ms, start_ms)
 *   v_summaries(sensor, metric, window_ms, start_ms, end_ms, count, min, max, mean, stddev,
 *               first, last, p50, p95, start), `start` RFC 3339 UTC text (version 4 moved it
 *               from after end_ms to the end). */
int st_db_insert_summary(st_db *db, int64_t series_id, const an_window_summary *w);

typedef struct st_alert_row {
    const char *gateway;
    int64_t series_id;
    const char *kind;     /* "high", "low", ... */
    const char *state;    /* "raised" | "cleared" */
    const char *severity; /* "info" | "warning" | "critical" */
    const char *rule;     /* rule name */
    int64_t ts_ms;
    double value;
    double threshold;
    const char *message;
    double detail; /* kind-specific (rate, silence ms, predicted crossing ms, shift, score);
                    * NaN stores NULL */
} st_alert_row;

/* Appends an alert to the outbox (inside the transaction of the readings that caused it) and
 * writes its id: unique and increasing for the life of the database file. Borrows row. */
int st_db_insert_alert(st_db *db, const st_alert_row *row, int64_t *id);

/* Marks an alert published (after its PUBACK). Runs in its own statement; may be called
 * inside or outside a transaction. */
int st_db_mark_published(st_db *db, int64_t id);

/* Calls fn for each committed, unpublished alert in id order, at most `limit` rows, with
 * id > after_id. Used by the publisher at start and after outages. Returns the number of rows
 * visited or a negative error. fn returns 0 to go on; any other value stops after that row
 * (which counts as visited). The strings of *a are borrowed, valid only during the call, and
 * NULL for SQL NULL; value/threshold are NaN when NULL. fn must not call st_db functions on
 * this db. Must be called outside a transaction (ST_EIO otherwise), so that only committed
 * rows are seen. limit <= 0 visits nothing. */
typedef struct st_alert_out {
    int64_t id;
    const char *gateway, *sensor, *metric, *kind, *state, *severity, *rule, *message;
    int64_t ts_ms;
    double value, threshold;
    double detail; /* NaN when NULL */
} st_alert_out;
typedef int (*st_alert_fn)(void *ctx, const st_alert_out *a);
int st_db_unpublished(st_db *db, int64_t after_id, int limit, st_alert_fn fn, void *ctx);

/* Moves every staged reading into the readings table, in one transaction of its own; a copy
 * of a reading already there (same series, ts_ms and value: an MQTT redelivery) is skipped
 * and counted (st_db_duplicates); among staged copies the first to arrive is kept. The writer
 * may call it in idle time; st_db_open and st_db_commit call it when due. Must be called
 * outside a transaction (ST_EIO otherwise). */
int st_db_merge(st_db *db);

/* At an orderly stop: merges when a staged reading may repeat another one (see
 * st_db_insert_readings), so that v_readings shows every reading once (it already hides staged
 * copies of merged readings, not copies among the staged rows); otherwise leaves
 * the rows staged (v_readings shows them all the same) and returns 0 at once. */
int st_db_settle(st_db *db);

/* The smallest ts_ms of the staged readings, or smaller (INT64_MIN when not known: rows staged
 * by an earlier connection that could not be merged at open); false when nothing is staged.
 * Lets retention see whether staged rows are due without scanning the unindexed staging
 * table. */
bool st_db_staged_min(const st_db *db, int64_t *ts_ms);

/* Copies skipped by merges, and merges done, since this connection was opened. */
int64_t st_db_duplicates(const st_db *db);
int64_t st_db_merges(const st_db *db);

/* Counts for tests and stats: rows in readings (merged and staged), rows in alerts. */
int st_db_count_readings(st_db *db, int64_t *n);
int st_db_count_alerts(st_db *db, int64_t *n);

/* Sets the busy timeout of the connection (ms; <= 0: the default, 5000). The writer shortens
 * it while storage is failing, so that a retry against a lock does not stall it. */
int st_db_set_busy_timeout(st_db *db, int ms);

/* The SQLite connection, for storage modules that prepare their own statements on it
 * (st_retain). Same thread rules as the st_db; valid until st_db_close. */
struct sqlite3;
struct sqlite3 *st_db_handle(st_db *db);

/* Test-only: runs SQL on this connection (e.g. "PRAGMA max_page_count = 10" to simulate a full
 * disk). Borrows sql. Returns 0 or ST_E*; errmsg "exec: <sqlite message>". */
int st_db_exec(st_db *db, const char *sql);

#endif
