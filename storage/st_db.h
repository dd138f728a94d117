/* SQLite storage: schema, migrations and the write path. One st_db is one connection; the
 * writer thread owns the write connection and is the only thread that calls the write
 * functions. Every function returns 0 or a negative error code (ST_E*), and writes a
 * one-line reason (with sqlite3_errmsg) retrievable with st_db_errmsg.
 *
 * Schema (version 1, PRAGMA user_version = 1), STRICT tables:
 *   series(id INTEGER PRIMARY KEY, sensor TEXT NOT NULL, metric TEXT NOT NULL,
 *          UNIQUE(sensor, metric))
 *   readings(series_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL, value REAL NOT NULL)
 *          + index on (series_id, ts_ms)
 *   alerts(id INTEGER PRIMARY KEY AUTOINCREMENT, gateway TEXT, series_id INTEGER, kind TEXT,
 *          state TEXT, severity TEXT, rule TEXT, ts_ms INTEGER, value REAL, threshold REAL,
 *          message TEXT, published INTEGER NOT NULL DEFAULT 0)   -- the outbox
 *   views: v_readings(sensor, metric, ts_ms, ts, value),
 *          v_alerts(id, sensor, metric, kind, state, severity, ts_ms, ts, value, threshold,
 *                   message, published)
 * Pragmas: journal_mode=WAL, synchronous=NORMAL (FULL optional), busy_timeout. */
#ifndef ST_DB_H
#define ST_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ST_OK 0
#define ST_EIO (-1)       /* an SQLite error; see st_db_errmsg */
#define ST_ENOMEM (-2)
#define ST_EBUSY (-3)     /* locked by another connection past busy_timeout */
#define ST_EFULL (-4)     /* disk or database full */
#define ST_EREADONLY (-5) /* read-only file or directory */
#define ST_ESCHEMA (-6)   /* a database from a newer iotgw (user_version too high) */

#define ST_SCHEMA_VERSION 1

typedef struct st_db st_db;

typedef struct st_db_opts {
    bool sync_full;     /* synchronous=FULL instead of NORMAL */
    int busy_timeout_ms; /* default 5000 when 0 */
    bool read_only;     /* open read-only (for queries); no migrations */
} st_db_opts;

/* Opens (creating it when missing, unless read_only) and migrates the schema.
 * Borrows path and opts. On failure *out is untouched and err gets a reason. */
int st_db_open(st_db **out, const char *path, const st_db_opts *opts, char *err, size_t errlen);
void st_db_close(st_db *db);

/* The reason of the last failed call on this connection ("" if none). Valid until the next
 * call. */
const char *st_db_errmsg(const st_db *db);

/* Transactions: one batch of rows per transaction. */
int st_db_begin(st_db *db);
int st_db_commit(st_db *db);
int st_db_rollback(st_db *db);

/* Finds or inserts the series row for (sensor, metric); writes its id. Borrows the names.
 * The caller caches the id (this function runs SQL every time). */
int st_db_series_id(st_db *db, const char *sensor, const char *metric, int64_t *id);

/* Appends one raw reading (inside a transaction). */
int st_db_insert_reading(st_db *db, int64_t series_id, int64_t ts_ms, double value);

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
} st_alert_row;

/* Appends an alert to the outbox (inside the transaction of the readings that caused it) and
 * writes its id: unique and increasing for the life of the database file. Borrows row. */
int st_db_insert_alert(st_db *db, const st_alert_row *row, int64_t *id);

/* Marks an alert published (after its PUBACK). Runs in its own statement; may be called
 * inside or outside a transaction. */
int st_db_mark_published(st_db *db, int64_t id);

/* Calls fn for each committed, unpublished alert in id order, at most `limit` rows, with
 * id > after_id. Used by the publisher at start and after outages. Returns the number of rows
 * visited or a negative error. */
typedef struct st_alert_out {
    int64_t id;
    const char *gateway, *sensor, *metric, *kind, *state, *severity, *rule, *message;
    int64_t ts_ms;
    double value, threshold;
} st_alert_out;
typedef int (*st_alert_fn)(void *ctx, const st_alert_out *a);
int st_db_unpublished(st_db *db, int64_t after_id, int limit, st_alert_fn fn, void *ctx);

/* Counts for tests and stats: rows in readings, rows in alerts. */
int st_db_count_readings(st_db *db, int64_t *n);
int st_db_count_alerts(st_db *db, int64_t *n);

#endif
