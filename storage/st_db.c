/* SQLite storage: the connection (open, pragmas, prepared statements, errors), transactions
 * and the merge of staged readings. The schema and its migrations are in st_db_schema.c, the
 * inserts and reads in st_db_rows.c (shared: st_db_internal.h). See st_db.h for the contract. */
#include "st_db_internal.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

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

/* ---- prepared statements: one table drives preparation, use and finalization -------------- */

const st__db_stmt_def st__db_stmt_defs[S__COUNT] = {
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
int st__db_fail(st_db *db, const char *what, int rc) {
    const char *msg = db->h != NULL ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc);
    snprintf(db->err, sizeof(db->err), "%s: %s", what, msg);
    int code = map_rc(db->path, rc);
    return code != ST_OK ? code : ST_EIO;
}

/* Records a reason that is not an SQLite error. */
int st__db_fail_msg(st_db *db, int code, const char *what, const char *msg) {
    snprintf(db->err, sizeof(db->err), "%s: %s", what, msg);
    return code;
}

/* ---- statement helpers ------------------------------------------------------------------- */

/* Makes a statement ready for its next use. sqlite3_reset only repeats the error of the last
 * step, which the caller has already reported, and sqlite3_clear_bindings cannot fail; clearing
 * drops the pointers to borrowed strings bound with SQLITE_STATIC. */
void st__db_release(sqlite3_stmt *st) {
    (void)sqlite3_reset(st);
    (void)sqlite3_clear_bindings(st);
}

/* Steps a bound statement that returns no row, then releases it. */
int st__db_step_done(st_db *db, enum stmt_id id) {
    int rc = sqlite3_step(db->stmt[id]);
    int ret = rc == SQLITE_DONE ? 0 : st__db_fail(db, st__db_stmt_defs[id].what, rc);
    st__db_release(db->stmt[id]);
    return ret;
}

/* Runs a statement that returns one integer (a count, a pragma value). */
int st__db_query_int(st_db *db, const char *what, const char *sql, int64_t *out) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return st__db_fail(db, what, rc);
    }
    int ret = 0;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
    } else if (rc == SQLITE_DONE) {
        ret = st__db_fail_msg(db, ST_EIO, what, "no result");
    } else {
        ret = st__db_fail(db, what, rc);
    }
    /* The error, if any, came from the step and is already recorded. */
    (void)sqlite3_finalize(st);
    return ret;
}

int st__db_exec_sql(st_db *db, const char *what, const char *sql) {
    int rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : st__db_fail(db, what, rc);
}

/* ---- open: pragmas, statements (identity and migrations: st_db_schema.c) --------------------- */

/* PRAGMA max_page_count from a size in bytes; the limit lasts as long as the connection. SQLite
 * never lowers it below the pages in use, and a file at its limit fails writes with SQLITE_FULL
 * (ST_EFULL), as a full disk does. 0 keeps SQLite's own limit. */
static int set_max_size(st_db *db, int64_t max_bytes) {
    int64_t page_size, pages;
    int ret;
    if (max_bytes <= 0) {
        return 0;
    }
    if ((ret = st__db_query_int(db, "page_size", "PRAGMA page_size", &page_size)) != 0) {
        return ret;
    }
    pages = page_size > 0 ? max_bytes / page_size : 0;
    if (pages >= MAX_PAGE_COUNT) {
        return 0;
    }
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld", (long long)(pages > 1 ? pages : 1));
    return st__db_query_int(db, "max_page_count", sql, &pages);
}

static int set_pragmas(st_db *db, const st_db_opts *opts) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->h, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return st__db_fail(db, "journal_mode", rc);
    }
    int ret = 0;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        ret = st__db_fail(db, "journal_mode", rc);
    } else {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        /* An in-memory database reports "memory"; anything else means WAL was refused. */
        if (mode == NULL || (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0)) {
            ret = st__db_fail_msg(db, ST_EIO, "journal_mode", "could not switch to WAL");
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
    if ((ret = st__db_exec_sql(db, "pragmas", sql)) != 0) {
        return ret;
    }
    return set_max_size(db, opts->max_bytes);
}

int st__db_rollback_quietly(st_db *db) {
    if (sqlite3_get_autocommit(db->h)) {
        return 0;
    }
    /* Called after a failure: its own error must not hide the first one. */
    int rc = sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : -1;
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
        const char *sql = i == S_INS_READINGS_CHUNK ? chunk : st__db_stmt_defs[i].sql;
        int rc = sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &db->stmt[i], NULL);
        if (rc != SQLITE_OK) {
            char what[64];
            snprintf(what, sizeof(what), "prepare %s", st__db_stmt_defs[i].what);
            return st__db_fail(db, what, rc);
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
        ret = st__db_fail(db, "open", rc);
        goto fail_open;
    }
    /* SQLite silently falls back to read-only for a file it cannot write. */
    if (!opts->read_only && sqlite3_db_readonly(db->h, "main") == 1) {
        ret = st__db_fail_msg(db, ST_EREADONLY, "open", "the database file is read-only");
        goto fail_open;
    }
    int busy = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : BUSY_TIMEOUT_DEFAULT;
    rc = sqlite3_busy_timeout(db->h, busy);
    if (rc != SQLITE_OK) {
        ret = st__db_fail(db, "busy_timeout", rc);
        goto fail_open;
    }
    if ((ret = st__db_check_identity(db)) != 0) {
        goto fail_open;
    }
    if (opts->read_only) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA cache_size = -%d", CACHE_KIB);
        if ((ret = st__db_exec_sql(db, "pragmas", sql)) != 0) {
            goto fail_open;
        }
    } else if ((ret = set_pragmas(db, opts)) != 0 || (ret = st__db_migrate(db)) != 0) {
        goto fail_open;
    }
    if ((ret = prepare_all(db)) != 0) {
        goto fail_open;
    }
    db->merge_rows = opts->merge_rows > 0 ? opts->merge_rows : 0;
    db->staged_min = INT64_MAX;
    if (!opts->read_only &&
        ((ret = st__db_query_int(db, "count recent readings",
                                 "SELECT count(*) FROM readings_recent", &db->recent)) != 0 ||
         (ret = st__db_query_int(db, "count series", "SELECT count(*) FROM series",
                                 &db->n_series)) != 0)) {
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
    return rc == SQLITE_OK ? 0 : st__db_fail(db, "busy_timeout", rc);
}

sqlite3 *st_db_handle(st_db *db) {
    return db->h;
}

int st_db_exec(st_db *db, const char *sql) {
    return st__db_exec_sql(db, "exec", sql);
}

/* ---- transactions ------------------------------------------------------------------------ */

int st_db_begin(st_db *db) {
    /* SQLite would start a write transaction on a read-only connection and fail only later. */
    if (db->read_only) {
        return st__db_fail_msg(db, ST_EREADONLY, st__db_stmt_defs[S_BEGIN].what,
                               "database opened read-only");
    }
    return st__db_step_done(db, S_BEGIN);
}

/* Merges once enough readings are staged. A failure leaves the rows staged (the views still
 * show them) and its reason in db->err; the next try waits for another quarter of merge_rows,
 * so that a full disk does not turn every commit into a failing merge. */
void st__db_merge_if_due(st_db *db) {
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
    int ret = st__db_step_done(db, S_COMMIT);
    if (ret == 0) {
        st__db_merge_if_due(db);
    }
    return ret;
}

int st_db_merge(st_db *db) {
    int ret;
    if (db->read_only) {
        return st__db_fail_msg(db, ST_EREADONLY, st__db_stmt_defs[S_MERGE_COPY].what,
                               "database opened read-only");
    }
    if (!sqlite3_get_autocommit(db->h)) {
        return st__db_fail_msg(db, ST_EIO, st__db_stmt_defs[S_MERGE_COPY].what,
                               "called inside a transaction");
    }
    if ((ret = st__db_step_done(db, S_MERGE_BEGIN)) != 0) {
        return ret;
    }
    int64_t copied = 0, cleared = 0;
    if ((ret = st__db_step_done(db, S_MERGE_COPY)) != 0) {
        goto fail_rollback;
    }
    copied = sqlite3_changes64(db->h);
    if ((ret = st__db_step_done(db, S_MERGE_CLEAR)) != 0) {
        goto fail_rollback;
    }
    cleared = sqlite3_changes64(db->h);
    if ((ret = st__db_step_done(db, S_MERGE_COMMIT)) != 0) {
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
    (void)st__db_rollback_quietly(db);
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
    return st__db_step_done(db, S_ROLLBACK);
}
