/* SQLite storage, the write path: series ids, readings, predictions, summaries and alerts; and
 * the reads the gateway needs (unpublished alerts, counts). See st_db.h for the contract and
 * st_db_internal.h for the connection. */
#include "st_db_internal.h"

#include <math.h>

#include <sqlite3.h>

/* ---- binding ----------------------------------------------------------------------------- */

static inline int bind_i64(st_db *db, enum stmt_id id, int col, int64_t v) {
    int rc = sqlite3_bind_int64(db->stmt[id], col, v);
    return rc == SQLITE_OK ? 0 : st__db_fail(db, st__db_stmt_defs[id].what, rc);
}

static inline int bind_dbl(st_db *db, enum stmt_id id, int col, double v) {
    int rc = sqlite3_bind_double(db->stmt[id], col, v);
    return rc == SQLITE_OK ? 0 : st__db_fail(db, st__db_stmt_defs[id].what, rc);
}

/* Binds a borrowed string without copying it; NULL binds SQL NULL. */
static inline int bind_txt(st_db *db, enum stmt_id id, int col, const char *s) {
    int rc = sqlite3_bind_text(db->stmt[id], col, s, -1, SQLITE_STATIC);
    return rc == SQLITE_OK ? 0 : st__db_fail(db, st__db_stmt_defs[id].what, rc);
}

/* ---- writes ------------------------------------------------------------------------------ */

int st_db_series_id(st_db *db, const char *sensor, const char *metric, int64_t *id) {
    int ret;
    if ((ret = bind_txt(db, S_SEL_SERIES, 1, sensor)) != 0 ||
        (ret = bind_txt(db, S_SEL_SERIES, 2, metric)) != 0) {
        st__db_release(db->stmt[S_SEL_SERIES]);
        return ret;
    }
    int rc = sqlite3_step(db->stmt[S_SEL_SERIES]);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(db->stmt[S_SEL_SERIES], 0);
        st__db_release(db->stmt[S_SEL_SERIES]);
        return 0;
    }
    ret = rc == SQLITE_DONE ? 0 : st__db_fail(db, st__db_stmt_defs[S_SEL_SERIES].what, rc);
    st__db_release(db->stmt[S_SEL_SERIES]);
    if (ret != 0) {
        return ret;
    }
    if ((ret = bind_txt(db, S_INS_SERIES, 1, sensor)) != 0 ||
        (ret = bind_txt(db, S_INS_SERIES, 2, metric)) != 0) {
        st__db_release(db->stmt[S_INS_SERIES]);
        return ret;
    }
    if ((ret = st__db_step_done(db, S_INS_SERIES)) != 0) {
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
    return rc == SQLITE_OK ? 0 : st__db_fail(db, st__db_stmt_defs[id].what, rc);
}

/* Binds SQL NULL for "no time": <= 0 or INT64_MAX (an unbounded band). */
static inline int bind_time_or_null(st_db *db, enum stmt_id id, int col, int64_t v) {
    int rc = v <= 0 || v == INT64_MAX ? sqlite3_bind_null(db->stmt[id], col)
                                      : sqlite3_bind_int64(db->stmt[id], col, v);
    return rc == SQLITE_OK ? 0 : st__db_fail(db, st__db_stmt_defs[id].what, rc);
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
        st__db_merge_if_due(db);
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
            st__db_release(db->stmt[id]);
            break;
        }
        if ((ret = st__db_step_done(db, id)) != 0) {
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
        st__db_release(db->stmt[id]);
        return ret;
    }
    return st__db_step_done(db, id);
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
        st__db_release(db->stmt[S_INS_SUMMARY]);
        return ret;
    }
    return st__db_step_done(db, S_INS_SUMMARY);
}

int st_db_insert_alert(st_db *db, const st_alert_row *row, int64_t *id) {
    int ret;
    if (row == NULL) {
        return st__db_fail_msg(db, ST_EIO, st__db_stmt_defs[S_INS_ALERT].what, "no row");
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
        st__db_release(db->stmt[S_INS_ALERT]);
        return ret;
    }
    if ((ret = st__db_step_done(db, S_INS_ALERT)) != 0) {
        return ret;
    }
    *id = sqlite3_last_insert_rowid(db->h);
    return 0;
}

int st_db_mark_published(st_db *db, int64_t id) {
    int ret = bind_i64(db, S_MARK_PUB, 1, id);
    if (ret != 0) {
        st__db_release(db->stmt[S_MARK_PUB]);
        return ret;
    }
    return st__db_step_done(db, S_MARK_PUB);
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
        return st__db_fail_msg(db, ST_EIO, st__db_stmt_defs[id].what, "no callback");
    }
    /* Inside a transaction this connection would also see its own uncommitted alerts. */
    if (!sqlite3_get_autocommit(db->h)) {
        return st__db_fail_msg(db, ST_EIO, st__db_stmt_defs[id].what,
                               "called inside a transaction");
    }
    if (limit <= 0) {
        return 0;
    }
    if ((ret = bind_i64(db, id, 1, after_id)) != 0 || (ret = bind_i64(db, id, 2, limit)) != 0) {
        st__db_release(st);
        return ret;
    }
    int n = 0;
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            break;
        }
        if (rc != SQLITE_ROW) {
            ret = st__db_fail(db, st__db_stmt_defs[id].what, rc);
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
    st__db_release(st);
    return ret != 0 ? ret : n;
}

static int count_rows(st_db *db, enum stmt_id id, int64_t *n) {
    sqlite3_stmt *st = db->stmt[id];
    int ret = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *n = sqlite3_column_int64(st, 0);
    } else {
        ret = st__db_fail(db, st__db_stmt_defs[id].what, rc);
    }
    st__db_release(st);
    return ret;
}

int st_db_count_readings(st_db *db, int64_t *n) {
    return count_rows(db, S_COUNT_READINGS, n);
}

int st_db_count_alerts(st_db *db, int64_t *n) {
    return count_rows(db, S_COUNT_ALERTS, n);
}
