/* Reads v_active_alerts for the restore at start. See st_active.h. */
#include "st_active.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>

/* The view is the definition of "active"; the gateway column is not in it. */
static const char ACTIVE_SQL[] =
    "SELECT v.id, a.gateway, v.sensor, v.metric, v.kind, v.state, v.severity, v.rule,"
    "       v.message, v.ts_ms, v.value, v.threshold, v.detail"
    "  FROM v_active_alerts v JOIN alerts a ON a.id = v.id"
    "  ORDER BY v.id";

static const char *text_or_null(sqlite3_stmt *st, int col) {
    return (const char *)sqlite3_column_text(st, col);
}

static double real_or_nan(sqlite3_stmt *st, int col) {
    return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}

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

int st_db_active_alerts(st_db *db, st_alert_fn fn, void *ctx, char *err, size_t errlen) {
    sqlite3 *h = st_db_handle(db);
    sqlite3_stmt *st = NULL;
    if (fn == NULL) {
        snprintf(err, errlen, "active alerts: no callback");
        return ST_EIO;
    }
    if (!sqlite3_get_autocommit(h)) {
        snprintf(err, errlen, "active alerts: called inside a transaction");
        return ST_EIO;
    }
    int rc = sqlite3_prepare_v2(h, ACTIVE_SQL, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "active alerts: %s", sqlite3_errmsg(h));
        return sqlite_code(rc);
    }
    int n = 0;
    int ret = 0;
    for (;;) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            break;
        }
        if (rc != SQLITE_ROW) {
            snprintf(err, errlen, "active alerts: %s", sqlite3_errmsg(h));
            ret = sqlite_code(rc);
            break;
        }
        st_alert_out a = {
            .id = sqlite3_column_int64(st, 0),
            .gateway = text_or_null(st, 1),
            .sensor = text_or_null(st, 2),
            .metric = text_or_null(st, 3),
            .kind = text_or_null(st, 4),
            .state = text_or_null(st, 5),
            .severity = text_or_null(st, 6),
            .rule = text_or_null(st, 7),
            .message = text_or_null(st, 8),
            .ts_ms = sqlite3_column_int64(st, 9),
            .value = real_or_nan(st, 10),
            .threshold = real_or_nan(st, 11),
            .detail = real_or_nan(st, 12),
        };
        n++;
        if (fn(ctx, &a) != 0) {
            break;
        }
    }
    sqlite3_finalize(st);
    return ret != 0 ? ret : n;
}
