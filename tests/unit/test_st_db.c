/* Unit tests of storage/st_db: real SQLite files in a temporary directory per test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "st_db.h"

#include "test_st_fixture.h"

static void test_open_create_reopen(void **state) {
    fixture *f = *state;
    st_db *db = open_ok(f->path, NULL);
    assert_int_equal(access(f->path, F_OK), 0);
    st_db_close(db);

    sqlite3 *h = raw_open(f->path);
    assert_int_equal(raw_int(h, "PRAGMA user_version"), ST_SCHEMA_VERSION);
    assert_int_equal(raw_int(h, "PRAGMA application_id"), 0x696f7467);
    assert_int_equal(raw_int(h, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM pragma_table_list WHERE strict = 1 AND"
                                " name IN ('series', 'readings', 'alerts')"),
                     3);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM sqlite_schema WHERE type = 'view' AND"
                                " name IN ('v_readings', 'v_alerts')"),
                     2);
    /* readings is clustered on its key: no rowid, no separate index. */
    assert_int_equal(raw_int(h, "SELECT wr FROM pragma_table_list WHERE name = 'readings'"), 1);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND"
                                " tbl_name = 'readings' AND sql IS NOT NULL"),
                     0);
    sqlite3_close(h);

    st_db_opts o = {.sync_full = true, .busy_timeout_ms = 100};
    db = open_ok(f->path, &o);
    int64_t n = -1;
    assert_int_equal(st_db_count_readings(db, &n), 0);
    assert_int_equal(n, 0);
    st_db_close(db);
    st_db_close(NULL);
}

static void test_future_version(void **state) {
    fixture *f = *state;
    st_db_close(open_ok(f->path, NULL));
    sqlite3 *h = raw_open(f->path);
    raw_exec(h, "PRAGMA user_version = 99");
    sqlite3_close(h);

    st_db *db = (st_db *)0x1;
    char err[256] = "";
    assert_int_equal(st_db_open(&db, f->path, NULL, err, sizeof(err)), ST_ESCHEMA);
    assert_ptr_equal(db, (st_db *)0x1);
    assert_non_null(strstr(err, "schema version 99 is newer"));
    assert_non_null(strstr(err, "upgrade iotgw"));

    st_db_opts ro = {.read_only = true};
    assert_int_equal(st_db_open(&db, f->path, &ro, err, sizeof(err)), ST_ESCHEMA);

    /* Refused before anything was written: the version is untouched. */
    h = raw_open(f->path);
    assert_int_equal(raw_int(h, "PRAGMA user_version"), 99);
    sqlite3_close(h);

    h = raw_open(f->path);
    raw_exec(h, "PRAGMA user_version = -1");
    sqlite3_close(h);
    assert_int_equal(st_db_open(&db, f->path, NULL, err, sizeof(err)), ST_ESCHEMA);
    assert_non_null(strstr(err, "invalid schema version"));
}

static void test_not_iotgw(void **state) {
    fixture *f = *state;
    st_db *db = NULL;
    char err[256] = "";

    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs("this is not a database, just some text that is long enough to look like a header\n", fp);
    fclose(fp);
    /* Not SQLite at all: a schema error (the gateway refuses it at start), not an I/O one. */
    assert_int_equal(st_db_open(&db, f->path, NULL, err, sizeof(err)), ST_ESCHEMA);
    assert_non_null(strstr(err, "file is not a database"));
    assert_null(db);
    unlink(f->path);

    /* Another application's SQLite database. */
    sqlite3 *h = raw_open(f->path);
    raw_exec(h, "CREATE TABLE series(x); INSERT INTO series VALUES (1)");
    sqlite3_close(h);
    assert_int_equal(st_db_open(&db, f->path, NULL, err, sizeof(err)), ST_ESCHEMA);
    assert_non_null(strstr(err, "not an iotgw database"));
    st_db_opts ro = {.read_only = true};
    assert_int_equal(st_db_open(&db, f->path, &ro, err, sizeof(err)), ST_ESCHEMA);
    assert_null(db);
    unlink(f->path);

    /* An empty SQLite file is not an iotgw database for a reader, but a writer may create one. */
    h = raw_open(f->path);
    raw_exec(h, "PRAGMA user_version = 0");
    sqlite3_close(h);
    assert_int_equal(st_db_open(&db, f->path, &ro, err, sizeof(err)), ST_ESCHEMA);
    assert_non_null(strstr(err, "not an iotgw database"));
    st_db_close(open_ok(f->path, NULL));
    st_db_close(open_ok(f->path, &ro));

    /* A missing file is not created by a reader. */
    char missing[192];
    snprintf(missing, sizeof(missing), "%s/missing.db", f->dir);
    assert_int_equal(st_db_open(&db, missing, &ro, err, sizeof(err)), ST_EIO);
    assert_non_null(strstr(err, "unable to open"));
    assert_int_equal(access(missing, F_OK), -1);
    snprintf(missing, sizeof(missing), "%s/no/such/dir.db", f->dir);
    assert_int_not_equal(st_db_open(&db, missing, NULL, err, sizeof(err)), 0);
    assert_null(db);
}

static void test_series_id(void **state) {
    fixture *f = *state;
    st_db *db = open_ok(f->path, NULL);
    int64_t a, b, c, a2 = -1;
    assert_int_equal(st_db_series_id(db, "boiler", "temperature", &a), 0);
    assert_int_equal(st_db_series_id(db, "boiler", "pressure", &b), 0);
    assert_int_equal(st_db_series_id(db, "pump", "temperature", &c), 0);
    assert_true(a != b && b != c && a != c);
    assert_int_equal(st_db_series_id(db, "boiler", "temperature", &a2), 0);
    assert_int_equal(a2, a);
    /* A name is not NULL: the NOT NULL constraint reports it. */
    int64_t untouched = 42;
    assert_int_equal(st_db_series_id(db, NULL, "x", &untouched), ST_EIO);
    assert_int_equal(untouched, 42);
    assert_non_null(strstr(st_db_errmsg(db), "insert series: NOT NULL constraint failed"));
    st_db_close(db);

    db = open_ok(f->path, NULL);
    int64_t b2 = -1, c2 = -1;
    assert_int_equal(st_db_series_id(db, "pump", "temperature", &c2), 0);
    assert_int_equal(st_db_series_id(db, "boiler", "pressure", &b2), 0);
    assert_int_equal(b2, b);
    assert_int_equal(c2, c);
    st_db_close(db);
}

static void test_readings_commit_count(void **state) {
    fixture *f = *state;
    st_db *db = open_ok(f->path, NULL);
    int64_t s1, s2, n = -1;
    assert_int_equal(st_db_series_id(db, "s", "m1", &s1), 0);
    assert_int_equal(st_db_series_id(db, "s", "m2", &s2), 0);
    assert_int_equal(st_db_begin(db), 0);
    for (int i = 0; i < 1000; i++) {
        /* Repeated timestamps are legitimate and all kept. */
        assert_int_equal(st_db_insert_reading(db, i % 2 ? s1 : s2, 1000 + i / 4, i * 0.5), 0);
    }
    assert_int_equal(st_db_commit(db), 0);
    assert_int_equal(st_db_count_readings(db, &n), 0);
    assert_int_equal(n, 1000);
    /* Outside a transaction a reading is committed on its own. */
    assert_int_equal(st_db_insert_reading(db, s1, 5, 1.0), 0);
    st_db_close(db);

    sqlite3 *h = raw_open(f->path);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM v_readings"), 1001);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM v_readings WHERE metric = 'm1'"), 501);
    sqlite3_close(h);
}

static void test_views(void **state) {
    fixture *f = *state;
    st_db *db = open_ok(f->path, NULL);
    int64_t s;
    assert_int_equal(st_db_series_id(db, "boiler", "temperature", &s), 0);
    static const struct {
        int64_t ts_ms;
        const char *ts;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {1700000000123, "2023-11-14T22:13:20.123Z"},
        {1700000000001, "2023-11-14T22:13:20.001Z"},
        {946684799999, "1999-12-31T23:59:59.999Z"},
        {951782400500, "2000-02-29T00:00:00.500Z"},
    };
    const size_t n = sizeof(cases) / sizeof(cases[0]);
    assert_int_equal(st_db_begin(db), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(st_db_insert_reading(db, s, cases[i].ts_ms, 20.25 + (double)i), 0);
    }
    st_alert_row row = {.gateway = "gw1",
                        .series_id = s,
                        .kind = "high",
                        .state = "raised",
                        .severity = "critical",
                        .rule = "too-hot",
                        .ts_ms = 1700000000123,
                        .value = 91.5,
                        .threshold = 90.0,
                        .message = "boiler temperature 91.5 > 90"};
    int64_t id;
    assert_int_equal(st_db_insert_alert(db, &row, &id), 0);
    assert_int_equal(st_db_commit(db), 0);

    sqlite3 *h = raw_open(f->path);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(h,
                                        "SELECT sensor, metric, ts_ms, ts, value FROM v_readings"
                                        " ORDER BY value",
                                        -1, &st, NULL),
                     SQLITE_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), "boiler");
        assert_string_equal((const char *)sqlite3_column_text(st, 1), "temperature");
        assert_int_equal(sqlite3_column_int64(st, 2), cases[i].ts_ms);
        assert_string_equal((const char *)sqlite3_column_text(st, 3), cases[i].ts);
        assert_true(sqlite3_column_double(st, 4) == 20.25 + (double)i);
    }
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);

    assert_int_equal(sqlite3_prepare_v2(h,
                                        "SELECT id, sensor, metric, kind, state, severity, ts_ms,"
                                        " ts, value, threshold, message, published FROM v_alerts",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, 0), id);
    assert_string_equal((const char *)sqlite3_column_text(st, 1), "boiler");
    assert_string_equal((const char *)sqlite3_column_text(st, 2), "temperature");
    assert_string_equal((const char *)sqlite3_column_text(st, 3), "high");
    assert_string_equal((const char *)sqlite3_column_text(st, 4), "raised");
    assert_string_equal((const char *)sqlite3_column_text(st, 5), "critical");
    assert_int_equal(sqlite3_column_int64(st, 6), 1700000000123);
    assert_string_equal((const char *)sqlite3_column_text(st, 7), "2023-11-14T22:13:20.123Z");
    assert_true(sqlite3_column_double(st, 8) == 91.5);
    assert_true(sqlite3_column_double(st, 9) == 90.0);
    assert_string_equal((const char *)sqlite3_column_text(st, 10), "boiler temperature 91.5 > 90");
    assert_int_equal(sqlite3_column_int64(st, 11), 0);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(h);
    st_db_close(db);
}

/* Staged readings move to the indexed table every merge_rows rows, keep every duplicate, and
 * show in v_readings before and after. */
static void test_merge(void **state) {
    fixture *f = *state;
    st_db_opts o = {.merge_rows = 100};
    st_db *db = open_ok(f->path, &o);
    int64_t s1, s2, n = -1;
    assert_int_equal(st_db_series_id(db, "s", "a", &s1), 0);
    assert_int_equal(st_db_series_id(db, "s", "b", &s2), 0);
    sqlite3 *h = raw_open(f->path);
    for (int b = 0; b < 5; b++) {
        assert_int_equal(st_db_begin(db), 0);
        for (int i = 0; i < 30; i++) {
            int k = b * 30 + i;
            /* Descending timestamps, and each one twice: the merge sorts and keeps them all. */
            assert_int_equal(st_db_insert_reading(db, k % 2 ? s1 : s2, 10000 - k / 4, k), 0);
        }
        assert_int_equal(st_db_commit(db), 0);
        int64_t staged = raw_int(h, "SELECT count(*) FROM readings_recent");
        int64_t merged = raw_int(h, "SELECT count(*) FROM readings");
        assert_int_equal(staged + merged, (b + 1) * 30);
        /* 30 rows per commit: the merge runs at the commit that reaches 100 staged rows. */
        assert_int_equal(merged, b >= 3 ? 120 : 0);
        assert_int_equal(raw_int(h, "SELECT count(*) FROM v_readings"), (b + 1) * 30);
    }
    assert_int_equal(st_db_count_readings(db, &n), 0);
    assert_int_equal(n, 150);
    assert_int_equal(raw_int(h, "SELECT count(DISTINCT value) FROM v_readings"), 150);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM v_readings WHERE metric = 'a'"), 75);

    /* An explicit merge outside a transaction; inside one it is refused. */
    assert_int_equal(st_db_begin(db), 0);
    assert_int_equal(st_db_merge(db), ST_EIO);
    assert_non_null(strstr(st_db_errmsg(db), "merge readings: called inside a transaction"));
    assert_int_equal(st_db_commit(db), 0);
    assert_int_equal(st_db_merge(db), 0);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), 0);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings"), 150);

    /* Outside a transaction each reading commits at once, and the merge follows at 100. */
    for (int i = 0; i < 100; i++) {
        assert_int_equal(st_db_insert_reading(db, s1, 20000 + i, 1.0), 0);
    }
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), 0);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings"), 250);

    /* What an earlier run left staged is merged at open (redeliveries after the start may
     * repeat it); then staging starts again from zero. */
    assert_int_equal(st_db_begin(db), 0);
    for (int i = 0; i < 60; i++) {
        assert_int_equal(st_db_insert_reading(db, s2, 30000 + i, 2.0), 0);
    }
    assert_int_equal(st_db_commit(db), 0);
    st_db_close(db);
    db = open_ok(f->path, &o);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), 0);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings"), 310);
    assert_int_equal(st_db_begin(db), 0);
    for (int i = 0; i < 60; i++) {
        assert_int_equal(st_db_insert_reading(db, s2, 40000 + i, 3.0), 0);
    }
    assert_int_equal(st_db_commit(db), 0);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), 60);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM v_readings"), 370);

    st_db_opts ro = {.read_only = true};
    st_db *reader = open_ok(f->path, &ro);
    assert_int_equal(st_db_merge(reader), ST_EREADONLY);
    st_db_close(reader);
    sqlite3_close(h);
    st_db_close(db);
}

/* A merge that fails for a full disk does not fail the commit, keeps the rows staged, and is
 * retried later. */
static void test_merge_full(void **state) {
    fixture *f = *state;
    st_db_opts o = {.merge_rows = 4000};
    st_db *db = open_ok(f->path, &o);
    int64_t s, n = -1;
    assert_int_equal(st_db_series_id(db, "s", "a", &s), 0);
    assert_int_equal(st_db_begin(db), 0);
    for (int i = 0; i < 3999; i++) {
        assert_int_equal(st_db_insert_reading(db, s, i, 1.0), 0);
    }
    assert_int_equal(st_db_commit(db), 0);
    /* Room for the staged rows, not for the merged copy (which needs more pages than the
     * few the schema migrations left free). */
    assert_int_equal(st_db_exec(db, "PRAGMA max_page_count = 1"), 0);
    assert_int_equal(st_db_begin(db), 0);
    assert_int_equal(st_db_insert_reading(db, s, 3999, 1.0), 0);
    assert_int_equal(st_db_commit(db), 0);
    assert_string_equal(st_db_errmsg(db), "merge readings: database or disk is full");
    assert_int_equal(st_db_count_readings(db, &n), 0);
    assert_int_equal(n, 4000);
    assert_int_equal(st_db_merge(db), ST_EFULL);
    assert_int_equal(st_db_exec(db, "PRAGMA max_page_count = 1000000"), 0);
    /* The retry waits for another quarter of merge_rows. */
    assert_int_equal(st_db_begin(db), 0);
    for (int i = 0; i < 1001; i++) {
        assert_int_equal(st_db_insert_reading(db, s, 10000 + i, 1.0), 0);
    }
    assert_int_equal(st_db_commit(db), 0);
    sqlite3 *h = raw_open(f->path);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings"), 5001);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), 0);
    sqlite3_close(h);
    st_db_close(db);
}

/* The default threshold: 262144 rows, or 64 per series when there are more than 4096. */
static void test_merge_default_threshold(void **state) {
    fixture *f = *state;
    st_db *db = open_ok(f->path, NULL);
    int64_t s = 0;
    sqlite3 *h = raw_open(f->path);
    assert_int_equal(st_db_begin(db), 0);
    for (int i = 0; i < 262143; i++) {
        assert_int_equal(st_db_insert_reading(db, 1, i, 1.0), 0);
    }
    assert_int_equal(st_db_commit(db), 0);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings"), 0);
    assert_int_equal(st_db_insert_reading(db, 1, 262143, 1.0), 0);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings"), 262144);

    assert_int_equal(st_db_begin(db), 0);
    for (int i = 0; i < 4097; i++) {
        char name[16];
        snprintf(name, sizeof(name), "s%d", i);
        assert_int_equal(st_db_series_id(db, name, "m", &s), 0);
    }
    assert_int_equal(st_db_commit(db), 0);
    st_db_close(db); /* the series count is read again at open */
    db = open_ok(f->path, NULL);
    assert_int_equal(st_db_begin(db), 0);
    for (int i = 0; i < 262144; i++) {
        assert_int_equal(st_db_insert_reading(db, s, i, 1.0), 0);
    }
    assert_int_equal(st_db_commit(db), 0);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), 262144);
    assert_int_equal(st_db_begin(db), 0);
    for (int i = 0; i < 64; i++) {
        assert_int_equal(st_db_insert_reading(db, s, 262144 + i, 1.0), 0);
    }
    assert_int_equal(st_db_commit(db), 0);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), 0);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings"), 2 * 262144 + 64);
    sqlite3_close(h);
    st_db_close(db);
}

static st_alert_row alert_row(int64_t series_id, int64_t ts_ms, const char *msg) {
    st_alert_row r = {.gateway = "gw1",
                      .series_id = series_id,
                      .kind = "high",
                      .state = "raised",
                      .severity = "warning",
                      .rule = "r1",
                      .ts_ms = ts_ms,
                      .value = 2.0,
                      .threshold = 1.0,
                      .message = msg};
    return r;
}

static void test_alert_ids(void **state) {
    fixture *f = *state;
    st_db *db = open_ok(f->path, NULL);
    int64_t s, prev = 0, id = 0, n = -1;
    assert_int_equal(st_db_series_id(db, "a", "b", &s), 0);
    for (int i = 0; i < 5; i++) {
        st_alert_row r = alert_row(s, 1000 + i, "m");
        assert_int_equal(st_db_insert_alert(db, &r, &id), 0);
        assert_true(id > prev);
        prev = id;
    }
    assert_int_equal(st_db_count_alerts(db, &n), 0);
    assert_int_equal(n, 5);
    /* Ids never repeat, even after the newest rows were deleted (and across reopen). */
    assert_int_equal(st_db_exec(db, "DELETE FROM alerts"), 0);
    st_db_close(db);
    db = open_ok(f->path, NULL);
    st_alert_row r = alert_row(s, 2000, NULL);
    assert_int_equal(st_db_insert_alert(db, &r, &id), 0);
    assert_true(id > prev);
    assert_int_equal(st_db_insert_alert(db, NULL, &id), ST_EIO);
    st_db_close(db);
}

typedef struct seen {
    int n;
    int stop_after;
    int64_t ids[16];
    char sensor[16][16];
    char msg[16][32];
    double value[16];
} seen;

static int collect(void *ctx, const st_alert_out *a) {
    seen *s = ctx;
    if (s->n < 16) {
        s->ids[s->n] = a->id;
        snprintf(s->sensor[s->n], sizeof(s->sensor[0]), "%s", a->sensor ? a->sensor : "(null)");
        snprintf(s->msg[s->n], sizeof(s->msg[0]), "%s", a->message ? a->message : "(null)");
        s->value[s->n] = a->value;
    }
    s->n++;
    return s->stop_after > 0 && s->n >= s->stop_after;
}

static void test_unpublished(void **state) {
    fixture *f = *state;
    st_db *db = open_ok(f->path, NULL);
    int64_t s, ids[6];
    assert_int_equal(st_db_series_id(db, "pump", "rpm", &s), 0);
    assert_int_equal(st_db_begin(db), 0);
    for (int i = 0; i < 6; i++) {
        char msg[16];
        snprintf(msg, sizeof(msg), "alert %d", i);
        st_alert_row r = alert_row(s, 1000 + i, msg);
        if (i == 5) {
            r.value = NAN; /* stored as NULL, read back as NaN */
        }
        assert_int_equal(st_db_insert_alert(db, &r, &ids[i]), 0);
    }
    seen sn = {0};
    /* Inside a transaction the scan would see uncommitted rows: refused. */
    assert_int_equal(st_db_unpublished(db, 0, 100, collect, &sn), ST_EIO);
    assert_non_null(strstr(st_db_errmsg(db), "inside a transaction"));
    assert_int_equal(st_db_commit(db), 0);

    assert_int_equal(st_db_unpublished(db, 0, 100, collect, &sn), 6);
    assert_int_equal(sn.n, 6);
    for (int i = 0; i < 6; i++) {
        char msg[16];
        snprintf(msg, sizeof(msg), "alert %d", i);
        assert_int_equal(sn.ids[i], ids[i]);
        assert_string_equal(sn.sensor[i], "pump");
        assert_string_equal(sn.msg[i], msg);
    }
    assert_true(sn.value[0] == 2.0);
    assert_true(isnan(sn.value[5]));

    memset(&sn, 0, sizeof(sn));
    assert_int_equal(st_db_unpublished(db, ids[1], 2, collect, &sn), 2);
    assert_int_equal(sn.ids[0], ids[2]);
    assert_int_equal(sn.ids[1], ids[3]);

    memset(&sn, 0, sizeof(sn));
    sn.stop_after = 3;
    assert_int_equal(st_db_unpublished(db, 0, 100, collect, &sn), 3);
    memset(&sn, 0, sizeof(sn));
    assert_int_equal(st_db_unpublished(db, 0, 0, collect, &sn), 0);
    assert_int_equal(st_db_unpublished(db, 0, 10, NULL, NULL), ST_EIO);

    /* Mark inside and outside a transaction. */
    assert_int_equal(st_db_mark_published(db, ids[0]), 0);
    assert_int_equal(st_db_begin(db), 0);
    assert_int_equal(st_db_mark_published(db, ids[3]), 0);
    assert_int_equal(st_db_mark_published(db, 999999), 0); /* unknown id: nothing to do */
    assert_int_equal(st_db_commit(db), 0);
    memset(&sn, 0, sizeof(sn));
    assert_int_equal(st_db_unpublished(db, 0, 100, collect, &sn), 4);
    assert_int_equal(sn.ids[0], ids[1]);
    assert_int_equal(sn.ids[1], ids[2]);
    assert_int_equal(sn.ids[2], ids[4]);
    assert_int_equal(sn.ids[3], ids[5]);

    /* Another connection sees only committed alerts. */
    assert_int_equal(st_db_begin(db), 0);
    st_alert_row r = alert_row(s, 3000, "uncommitted");
    int64_t id;
    assert_int_equal(st_db_insert_alert(db, &r, &id), 0);
    st_db_opts ro = {.read_only = true};
    st_db *reader = open_ok(f->path, &ro);
    memset(&sn, 0, sizeof(sn));
    assert_int_equal(st_db_unpublished(reader, 0, 100, collect, &sn), 4);
    assert_int_equal(st_db_commit(db), 0);
    memset(&sn, 0, sizeof(sn));
    assert_int_equal(st_db_unpublished(reader, 0, 100, collect, &sn), 5);
    assert_int_equal(sn.ids[4], id);
    st_db_close(reader);

    sqlite3 *h = raw_open(f->path);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM v_alerts WHERE published = 1"), 2);
    sqlite3_close(h);
    st_db_close(db);
}

static void test_rollback(void **state) {
    fixture *f = *state;
    st_db *db = open_ok(f->path, NULL);
    int64_t s, n = -1, id;
    assert_int_equal(st_db_series_id(db, "a", "b", &s), 0);
    assert_int_equal(st_db_rollback(db), 0); /* no transaction: nothing to do */
    assert_int_equal(st_db_begin(db), 0);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(st_db_insert_reading(db, s, i, 1.0), 0);
    }
    st_alert_row r = alert_row(s, 5, "m");
    assert_int_equal(st_db_insert_alert(db, &r, &id), 0);
    assert_int_equal(st_db_rollback(db), 0);
    assert_int_equal(st_db_count_readings(db, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(st_db_count_alerts(db, &n), 0);
    assert_int_equal(n, 0);
    /* Nested begin is an error that names the step. */
    assert_int_equal(st_db_begin(db), 0);
    assert_int_equal(st_db_begin(db), ST_EIO);
    assert_non_null(strstr(st_db_errmsg(db), "begin: cannot start a transaction"));
    assert_int_equal(st_db_rollback(db), 0);
    st_db_close(db);
}

static void test_disk_full(void **state) {
    fixture *f = *state;
    st_db *db = open_ok(f->path, NULL);
    int64_t s, n = -1;
    assert_int_equal(st_db_series_id(db, "a", "b", &s), 0);
    assert_int_equal(st_db_exec(db, "PRAGMA max_page_count = 1"), 0); /* clamps to current */
    assert_int_equal(st_db_begin(db), 0);
    int rc = 0;
    for (int i = 0; i < 100000 && rc == 0; i++) {
        rc = st_db_insert_reading(db, s, i, 1.0);
    }
    assert_int_equal(rc, ST_EFULL);
    assert_string_equal(st_db_errmsg(db), "insert reading: database or disk is full");
    assert_int_equal(st_db_rollback(db), 0);
    assert_int_equal(st_db_count_readings(db, &n), 0);
    assert_int_equal(n, 0);

    assert_int_equal(st_db_exec(db, "PRAGMA max_page_count = 1000000"), 0);
    assert_int_equal(st_db_insert_reading(db, s, 1, 1.0), 0);
    assert_int_equal(st_db_exec(db, "no such statement"), ST_EIO);
    assert_non_null(strstr(st_db_errmsg(db), "exec: near \"no\": syntax error"));
    st_db_close(db);
}

/* max_bytes: the file stops growing at the limit (whole pages) and writes fail as on a full
 * disk; the limit is the connection's, so another connection can still make room. */
static void test_max_bytes(void **state) {
    fixture *f = *state;
    st_db_opts o = {.max_bytes = 128 * 1024 + 100};
    st_db *db = open_ok(f->path, &o);
    int64_t s, n = -1;
    assert_int_equal(st_db_series_id(db, "a", "b", &s), 0);
    int rc = 0, stored = 0;
    for (int i = 0; i < 100000 && rc == 0; i++) {
        rc = st_db_insert_reading(db, s, i, 1.0);
        stored += rc == 0;
    }
    assert_int_equal(rc, ST_EFULL);
    assert_true(stored > 1000);
    sqlite3 *h = raw_open(f->path);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h,
                                        "SELECT page_count * page_size FROM pragma_page_count(),"
                                        " pragma_page_size()",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_true(sqlite3_column_int64(st, 0) <= 128 * 1024);
    sqlite3_finalize(st);
    raw_exec(h, "DELETE FROM readings_recent WHERE ts_ms < 1000");
    sqlite3_close(h);
    assert_int_equal(st_db_insert_reading(db, s, -1, 2.0), 0);
    assert_int_equal(st_db_count_readings(db, &n), 0);
    assert_int_equal(n, stored - 1000 + 1);
    /* Beyond SQLite's own limit the option changes nothing. */
    st_db_close(db);
    o.max_bytes = INT64_MAX;
    st_db_close(open_ok(f->path, &o));
    /* A shorter busy timeout is accepted; <= 0 restores the default. */
    db = open_ok(f->path, NULL);
    assert_int_equal(st_db_set_busy_timeout(db, 10), 0);
    assert_int_equal(st_db_set_busy_timeout(db, 0), 0);
    st_db_close(db);
}

static void test_read_only(void **state) {
    fixture *f = *state;
    st_db *db = open_ok(f->path, NULL);
    int64_t s, id, n = -1;
    assert_int_equal(st_db_series_id(db, "a", "b", &s), 0);
    assert_int_equal(st_db_insert_reading(db, s, 1, 1.0), 0);
    st_alert_row r = alert_row(s, 5, "m");
    assert_int_equal(st_db_insert_alert(db, &r, &id), 0);
    st_db_close(db);

    st_db_opts ro = {.read_only = true};
    db = open_ok(f->path, &ro);
    assert_int_equal(st_db_count_readings(db, &n), 0);
    assert_int_equal(n, 1);
    int64_t s2 = -1;
    assert_int_equal(st_db_series_id(db, "a", "b", &s2), 0); /* found: no write needed */
    assert_int_equal(s2, s);
    assert_int_equal(st_db_series_id(db, "new", "one", &s2), ST_EREADONLY);
    assert_non_null(strstr(st_db_errmsg(db), "insert series: attempt to write a readonly"));
    assert_int_equal(st_db_insert_reading(db, s, 2, 1.0), ST_EREADONLY);
    assert_string_equal(st_db_errmsg(db), "insert reading: attempt to write a readonly database");
    assert_int_equal(st_db_insert_alert(db, &r, &id), ST_EREADONLY);
    assert_int_equal(st_db_mark_published(db, id), ST_EREADONLY);
    assert_int_equal(st_db_begin(db), ST_EREADONLY);
    assert_int_equal(st_db_rollback(db), 0);
    assert_int_equal(st_db_exec(db, "DELETE FROM readings"), ST_EREADONLY);
    st_db_close(db);

    db = open_ok(f->path, NULL);
    assert_int_equal(st_db_count_readings(db, &n), 0);
    assert_int_equal(n, 1);
    st_db_close(db);
}

static void test_busy(void **state) {
    fixture *f = *state;
    st_db *w1 = open_ok(f->path, NULL);
    st_db_opts o = {.busy_timeout_ms = 1};
    st_db *w2 = open_ok(f->path, &o);
    assert_int_equal(st_db_begin(w1), 0);
    assert_int_equal(st_db_begin(w2), ST_EBUSY);
    assert_non_null(strstr(st_db_errmsg(w2), "begin: database is locked"));
    assert_int_equal(st_db_commit(w1), 0);
    assert_int_equal(st_db_begin(w2), 0);
    assert_int_equal(st_db_commit(w2), 0);
    st_db_close(w2);
    st_db_close(w1);
}

static void test_errmsg(void **state) {
    fixture *f = *state;
    assert_string_equal(st_db_errmsg(NULL), "");
    st_db *db = open_ok(f->path, NULL);
    assert_string_equal(st_db_errmsg(db), "");
    assert_int_equal(st_db_commit(db), ST_EIO);
    assert_string_equal(st_db_errmsg(db), "commit: cannot commit - no transaction is active");
    /* The reason stays until the next failure. */
    int64_t n;
    assert_int_equal(st_db_count_alerts(db, &n), 0);
    assert_string_equal(st_db_errmsg(db), "commit: cannot commit - no transaction is active");
    st_db_close(db);

    char err[8];
    db = NULL;
    assert_int_not_equal(st_db_open(&db, "/nonexistent-dir/x/y.db", NULL, err, sizeof(err)), 0);
    assert_true(strlen(err) < sizeof(err)); /* truncated, terminated */
    assert_int_equal(st_db_open(&db, NULL, NULL, NULL, 0), ST_EIO);
    assert_null(db);
}

/* Turns a current file back into version 2 as iotgw 2 wrote it (views verbatim). */
/* Turns a current file into a version-3 one: readings with a rowid and an index, copies
 * allowed, v_readings over both tables without the duplicate filter. */
static void downgrade_to_v3(sqlite3 *h) {
    raw_exec(h, "DROP VIEW v_readings;"
                "CREATE TABLE readings_v3(series_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL,"
                "  value REAL NOT NULL, anomaly REAL) STRICT;"
                "INSERT INTO readings_v3 SELECT series_id, ts_ms, value, anomaly FROM readings;"
                "DROP TABLE readings; ALTER TABLE readings_v3 RENAME TO readings;"
                "CREATE INDEX readings_series_ts ON readings(series_id, ts_ms);"
                "CREATE VIEW v_readings(sensor, metric, ts_ms, ts, value, anomaly) AS"
                "  SELECT s.sensor, s.metric, r.ts_ms,"
                "  strftime('%Y-%m-%dT%H:%M:%fZ', r.ts_ms / 1000.0, 'unixepoch'), r.value,"
                "  r.anomaly FROM readings r JOIN series s ON s.id = r.series_id UNION ALL"
                "  SELECT s.sensor, s.metric, r.ts_ms,"
                "  strftime('%Y-%m-%dT%H:%M:%fZ', r.ts_ms / 1000.0, 'unixepoch'), r.value,"
                "  r.anomaly FROM readings_recent r JOIN series s ON s.id = r.series_id;"
                "PRAGMA user_version = 3");
}

static void downgrade_to_v2(sqlite3 *h) {
    downgrade_to_v3(h);
    raw_exec(h, "DROP VIEW v_active_alerts; DROP INDEX alerts_series_kind_rule;"
                "DROP VIEW v_predictions; DROP TABLE predictions;"
                "DROP VIEW v_readings; DROP VIEW v_alerts;"
                "ALTER TABLE readings DROP COLUMN anomaly;"
                "ALTER TABLE readings_recent DROP COLUMN anomaly;"
                "ALTER TABLE alerts DROP COLUMN detail;"
                "CREATE VIEW v_readings(sensor, metric, ts_ms, ts, value) AS"
                "  SELECT s.sensor, s.metric, r.ts_ms,"
                "  strftime('%Y-%m-%dT%H:%M:%fZ', r.ts_ms / 1000.0, 'unixepoch'), r.value"
                "  FROM readings r JOIN series s ON s.id = r.series_id UNION ALL"
                "  SELECT s.sensor, s.metric, r.ts_ms,"
                "  strftime('%Y-%m-%dT%H:%M:%fZ', r.ts_ms / 1000.0, 'unixepoch'), r.value"
                "  FROM readings_recent r JOIN series s ON s.id = r.series_id;"
                "CREATE VIEW v_alerts(id, sensor, metric, kind, state, severity, ts_ms, ts,"
                "  value, threshold, message, published) AS"
                "  SELECT a.id, s.sensor, s.metric, a.kind, a.state, a.severity, a.ts_ms,"
                "  strftime('%Y-%m-%dT%H:%M:%fZ', a.ts_ms / 1000.0, 'unixepoch'), a.value,"
                "  a.threshold, a.message, a.published"
                "  FROM alerts a LEFT JOIN series s ON s.id = a.series_id;"
                "PRAGMA user_version = 2");
}

/* A version-1 file (no summaries) keeps its data and gains the summaries on open. */
static void test_migrate_v1_to_v2(void **state) {
    fixture *f = *state;
    st_db *db = open_ok(f->path, NULL);
    int64_t sid;
    assert_int_equal(st_db_series_id(db, "pump", "temp", &sid), 0);
    assert_int_equal(st_db_begin(db), 0);
    assert_int_equal(st_db_insert_reading(db, sid, 1700000000000, 21.5), 0);
    assert_int_equal(st_db_commit(db), 0);
    st_db_close(db);
    sqlite3 *h = raw_open(f->path);
    downgrade_to_v2(h);
    raw_exec(h, "DROP VIEW v_summaries; DROP TABLE summaries; PRAGMA user_version = 1");
    sqlite3_close(h);

    db = open_ok(f->path, NULL);
    an_window_summary w = {
        .window_ms = 60000,
        .start_ms = 1700000040000,
        .end_ms = 1700000100000,
        .count = 3,
        .min = 1,
        .max = 3,
        .mean = 2,
        .stddev = 1,
        .first = 1,
        .last = 3,
        .p50 = 2,
        .p95 = 2.9,
    };
    assert_int_equal(st_db_begin(db), 0);
    assert_int_equal(st_db_insert_summary(db, sid, &w), 0);
    assert_int_equal(st_db_commit(db), 0);
    st_db_close(db);
    h = raw_open(f->path);
    assert_int_equal(raw_int(h, "PRAGMA user_version"), ST_SCHEMA_VERSION);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM v_readings WHERE value = 21.5"), 1);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM v_summaries WHERE sensor = 'pump' AND"
                                " metric = 'temp' AND window_ms = 60000 AND"
                                " start_ms = 1700000040000 AND end_ms = 1700000100000 AND"
                                " start = '2023-11-14T22:14:00.000Z' AND count = 3 AND"
                                " min = 1 AND max = 3 AND mean = 2 AND stddev = 1 AND"
                                " first = 1 AND last = 3 AND p50 = 2 AND p95 = 2.9"),
                     1);
    sqlite3_close(h);
}

/* A version-2 file keeps its readings (anomaly NULL, merged or staged) and alerts, and gains
 * the scores, the predictions, the rule in v_alerts and v_active_alerts. */
static void test_migrate_v2_to_v3(void **state) {
    fixture *f = *state;
    st_db_opts o = {.merge_rows = 2};
    st_db *db = open_ok(f->path, &o);
    int64_t sid, id;
    assert_int_equal(st_db_series_id(db, "pump", "temp", &sid), 0);
    assert_int_equal(st_db_insert_reading(db, sid, 1000, 1.5), 0);
    assert_int_equal(st_db_insert_reading(db, sid, 2000, 2.5), 0); /* merged */
    assert_int_equal(st_db_insert_reading(db, sid, 3000, 3.5), 0); /* staged */
    st_alert_row r = alert_row(sid, 3000, "m");
    assert_int_equal(st_db_insert_alert(db, &r, &id), 0);
    st_db_close(db);
    sqlite3 *h = raw_open(f->path);
    downgrade_to_v2(h);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), 1);
    sqlite3_close(h);

    st_db_opts ro = {.read_only = true};
    char err[256] = "";
    db = NULL;
    assert_int_equal(st_db_open(&db, f->path, &ro, err, sizeof(err)), ST_ESCHEMA);
    assert_non_null(strstr(err, "schema version 2 is older than 4"));

    db = open_ok(f->path, &o);
    assert_int_equal(st_db_insert_reading_scored(db, sid, 4000, 4.5, 0.25), 0);
    assert_int_equal(st_db_insert_prediction(db, sid, 4000, 4.5, 1, 0.1, 0, 0, 0), 0);
    st_db_close(db);
    h = raw_open(f->path);
    assert_int_equal(raw_int(h, "PRAGMA user_version"), ST_SCHEMA_VERSION);
    /* The open merged the row version 2 had staged; 4.5 is staged anew. */
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), 1);
    assert_int_equal(raw_int(h, "SELECT group_concat(value || ':' || ifnull(anomaly, 'null'))"
                                " = '1.5:null,2.5:null,3.5:null,4.5:0.25'"
                                " FROM (SELECT * FROM v_readings ORDER BY ts_ms)"),
                     1);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM v_alerts WHERE rule = 'r1' AND id = 1"), 1);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM v_active_alerts WHERE id = 1"), 1);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM v_predictions WHERE level = 4.5"), 1);
    sqlite3_close(h);
}

/* Scores: NULL for st_db_insert_reading and NaN, kept through a merge. */
static void test_scored_readings(void **state) {
    fixture *f = *state;
    st_db_opts o = {.merge_rows = 1000};
    st_db *db = open_ok(f->path, &o);
    int64_t s;
    assert_int_equal(st_db_series_id(db, "a", "b", &s), 0);
    assert_int_equal(st_db_begin(db), 0);
    assert_int_equal(st_db_insert_reading(db, s, 1, 10.0), 0);
    assert_int_equal(st_db_insert_reading_scored(db, s, 2, 20.0, 0.5), 0);
    assert_int_equal(st_db_insert_reading_scored(db, s, 3, 30.0, NAN), 0);
    assert_int_equal(st_db_insert_reading_scored(db, s, 4, 40.0, 0.0), 0);
    assert_int_equal(st_db_commit(db), 0);
    sqlite3 *h = raw_open(f->path);
    const char *q = "SELECT group_concat(ifnull(anomaly, 'null')) = 'null,0.5,null,0.0'"
                    " FROM (SELECT anomaly FROM v_readings ORDER BY ts_ms)";
    assert_int_equal(raw_int(h, q), 1);
    assert_int_equal(st_db_merge(db), 0);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings WHERE anomaly IS NOT NULL"), 2);
    assert_int_equal(raw_int(h, q), 1);
    sqlite3_close(h);
    st_db_close(db);
}

static void test_predictions(void **state) {
    fixture *f = *state;
    st_db *db = open_ok(f->path, NULL);
    int64_t s;
    assert_int_equal(st_db_series_id(db, "pump", "vib", &s), 0);
    assert_int_equal(st_db_begin(db), 0);
    assert_int_equal(st_db_insert_prediction(db, s, 1700000000123, 4.25, 0.5, 0.125, 1700003600000,
                                             1700001800000, INT64_MAX),
                     0);
    assert_int_equal(st_db_insert_prediction(db, s, 1700000001000, NAN, NAN, NAN, 0, -5, 0), 0);
    assert_int_equal(st_db_commit(db), 0);
    sqlite3 *h = raw_open(f->path);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM v_predictions WHERE sensor = 'pump' AND"
                                " metric = 'vib' AND ts_ms = 1700000000123 AND"
                                " ts = '2023-11-14T22:13:20.123Z' AND level = 4.25 AND"
                                " slope_per_h = 0.5 AND slope_se_per_h = 0.125 AND"
                                " eta_ms = 1700003600000 AND eta = '2023-11-14T23:13:20.000Z' AND"
                                " eta_lo_ms = 1700001800000 AND eta_hi_ms IS NULL"),
                     1);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM v_predictions WHERE level IS NULL AND"
                                " slope_per_h IS NULL AND slope_se_per_h IS NULL AND"
                                " eta_ms IS NULL AND eta IS NULL AND eta_lo_ms IS NULL AND"
                                " eta_hi_ms IS NULL AND ts_ms = 1700000001000"),
                     1);
    sqlite3_close(h);
    st_db_close(db);
}

/* v_active_alerts: the newest row per (series, kind, rule) when it is 'raised'. */
static void test_active_alerts(void **state) {
    fixture *f = *state;
    st_db *db = open_ok(f->path, NULL);
    int64_t s1, s2, id;
    assert_int_equal(st_db_series_id(db, "p1", "temp", &s1), 0);
    assert_int_equal(st_db_series_id(db, "p2", "temp", &s2), 0);
    static const struct {
        int series;
        const char *kind, *rule, *state;
    } rows[] = {
        {1, "high", "hot", "raised"},  {1, "high", "hot", "cleared"}, /* cleared: not active */
        {1, "high", "hot2", "raised"},                                /* active: other rule */
        {1, "rate", "hot", "raised"},                                 /* active: other kind */
        {2, "high", "hot", "cleared"}, {2, "high", "hot", "raised"},  /* raised again: active */
        {2, "low", "cold", "raised"},  {2, "low", "cold", "raised"},  /* the newer one */
    };
    assert_int_equal(st_db_begin(db), 0);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        st_alert_row r = alert_row(rows[i].series == 1 ? s1 : s2, 1000 - (int64_t)i, "m");
        r.kind = rows[i].kind;
        r.rule = rows[i].rule;
        r.state = rows[i].state;
        assert_int_equal(st_db_insert_alert(db, &r, &id), 0);
    }
    assert_int_equal(st_db_commit(db), 0);
    sqlite3 *h = raw_open(f->path);
    assert_int_equal(raw_int(h, "SELECT group_concat(x, ' ') = '3:p1:high:hot2 4:p1:rate:hot"
                                " 6:p2:high:hot 8:p2:low:cold' FROM (SELECT id || ':' || sensor"
                                " || ':' || kind || ':' || rule AS x FROM v_active_alerts"
                                " WHERE state = 'raised' ORDER BY id)"),
                     1);
    /* Same columns as v_alerts, rule appended last in both. */
    assert_int_equal(raw_int(h, "SELECT (SELECT group_concat(name) FROM pragma_table_info("
                                "'v_alerts')) = (SELECT group_concat(name) FROM"
                                " pragma_table_info('v_active_alerts')) AND (SELECT name FROM"
                                " pragma_table_info('v_alerts') WHERE cid = 12) = 'rule'"),
                     1);
    sqlite3_close(h);
    st_db_close(db);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_create_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_future_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_iotgw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_series_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readings_commit_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_views, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_default_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alert_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unpublished, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errmsg, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1_to_v2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v2_to_v3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scored_readings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_predictions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_active_alerts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_bytes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
