/* Reads the recently active series for the stale preload at start. See st_recent.h. */
#include "st_recent.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>

/* The staging table has no index: one pass, grouped, in series order. SQLite gives a bare
 * column next to max() the values of the row that holds the maximum. */
static const char STAGED_SQL[] = "SELECT series_id, max(ts_ms), value FROM readings_recent"
                                 "  GROUP BY series_id ORDER BY series_id";
static const char SERIES_SQL[] = "SELECT id, sensor, metric FROM series ORDER BY id";
/* The primary key (series_id, ts_ms, value) answers this with one seek from its end. */
static const char NEWEST_SQL[] = "SELECT ts_ms, value FROM readings WHERE series_id = ?1"
                                 "  ORDER BY ts_ms DESC, value DESC LIMIT 1";

enum { Q_STAGED, Q_SERIES, Q_NEWEST, Q_COUNT };

static int sqlite_code(int rc) {
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return ST_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return ST_EBUSY;
    default:
        return ST_EIO;
    }
}

static int fail(sqlite3 *h, int rc, char *err, size_t errlen) {
    snprintf(err, errlen, "recent series: %s", sqlite3_errmsg(h));
    return sqlite_code(rc);
}

/* Steps the staging cursor past every group before series id `id`. *done once it is
 * exhausted. Returns 0 or a negative ST_E* code. */
static int staged_seek(sqlite3 *h, sqlite3_stmt *st, int64_t id, bool *done, char *err,
                       size_t errlen) {
    while (!*done && sqlite3_column_int64(st, 0) < id) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            *done = true;
        } else if (rc != SQLITE_ROW) {
            return fail(h, rc, err, errlen);
        }
    }
    return 0;
}

int st_db_recent_series(st_db *db, int64_t since_ms, st_recent_fn fn, void *ctx, char *err,
                        size_t errlen) {
    static const char *const sql[Q_COUNT] = {STAGED_SQL, SERIES_SQL, NEWEST_SQL};
    sqlite3 *h = st_db_handle(db);
    sqlite3_stmt *st[Q_COUNT] = {NULL};
    int ret = 0;
    int n = 0;
    if (fn == NULL) {
        snprintf(err, errlen, "recent series: no callback");
        return ST_EIO;
    }
    if (!sqlite3_get_autocommit(h)) {
        snprintf(err, errlen, "recent series: called inside a transaction");
        return ST_EIO;
    }
    for (int q = 0; q < Q_COUNT; q++) {
        int rc = sqlite3_prepare_v2(h, sql[q], -1, &st[q], NULL);
        if (rc != SQLITE_OK) {
            ret = fail(h, rc, err, errlen);
            goto out_finalize;
        }
    }
    int rc = sqlite3_step(st[Q_STAGED]);
    bool staged_done = rc == SQLITE_DONE;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        ret = fail(h, rc, err, errlen);
        goto out_finalize;
    }
    for (;;) {
        rc = sqlite3_step(st[Q_SERIES]);
        if (rc == SQLITE_DONE) {
            break;
        }
        if (rc != SQLITE_ROW) {
            ret = fail(h, rc, err, errlen);
            goto out_finalize;
        }
        int64_t id = sqlite3_column_int64(st[Q_SERIES], 0);
        bool found = false;
        st_recent_row row = {0};
        if ((ret = staged_seek(h, st[Q_STAGED], id, &staged_done, err, errlen)) != 0) {
            goto out_finalize;
        }
        if (!staged_done && sqlite3_column_int64(st[Q_STAGED], 0) == id) {
            row.ts_ms = sqlite3_column_int64(st[Q_STAGED], 1);
            row.value = sqlite3_column_double(st[Q_STAGED], 2);
            found = true;
        }
        sqlite3_stmt *q = st[Q_NEWEST];
        sqlite3_reset(q);
        if ((rc = sqlite3_bind_int64(q, 1, id)) != SQLITE_OK) {
            ret = fail(h, rc, err, errlen);
            goto out_finalize;
        }
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            int64_t ts = sqlite3_column_int64(q, 0);
            if (!found || ts > row.ts_ms) {
                row.ts_ms = ts;
                row.value = sqlite3_column_double(q, 1);
                found = true;
            }
        } else if (rc != SQLITE_DONE) {
            ret = fail(h, rc, err, errlen);
            goto out_finalize;
        }
        if (!found || row.ts_ms < since_ms) {
            continue;
        }
        row.sensor = (const char *)sqlite3_column_text(st[Q_SERIES], 1);
        row.metric = (const char *)sqlite3_column_text(st[Q_SERIES], 2);
        n++;
        if (fn(ctx, &row) != 0) {
            break;
        }
    }

out_finalize:
    for (int q = 0; q < Q_COUNT; q++) {
        sqlite3_finalize(st[q]);
    }
    return ret != 0 ? ret : n;
}
