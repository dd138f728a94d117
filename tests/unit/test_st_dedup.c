/* Unit tests of schema v4: the reading identity ((series, ts_ms, value) is stored once, a
 * repeated timestamp with another value is kept), multi-row inserts, the merge at open and at
 * an orderly stop, the migration of a version-3 file that holds copies, and the views' column
 * order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>

#include "test_st_fixture.h"

static int64_t count_readings(st_db *db) {
    int64_t n = -1;
    assert_int_equal(st_db_count_readings(db, &n), 0);
    return n;
}

/* Copies are skipped at the merge; among staged copies the first keeps its score. Before the
 * merge, v_readings already hides a staged copy of a merged reading. */
static void test_copies_stored_once(void **state) {
    fixture *f = *state;
    st_db_opts o = {.merge_rows = 1000000};
    st_db *db = open_ok(f->path, &o);
    int64_t s;
    assert_int_equal(st_db_series_id(db, "pump", "temp", &s), 0);
    assert_int_equal(st_db_begin(db), 0);
    assert_int_equal(st_db_insert_reading_scored(db, s, 1000, 21.5, 0.25), 0);
    assert_int_equal(st_db_insert_reading_scored(db, s, 1000, 21.5, 0.75), 0); /* a copy */
    assert_int_equal(st_db_insert_reading(db, s, 1000, 22.0), 0); /* same ts, other value */
    assert_int_equal(st_db_insert_reading(db, s, 2000, 21.5), 0); /* same value, other ts */
    assert_int_equal(st_db_commit(db), 0);
    assert_int_equal(st_db_merge(db), 0);
    assert_int_equal(st_db_duplicates(db), 1);
    assert_int_equal(count_readings(db), 3);

    sqlite3 *h = raw_open(f->path);
    assert_int_equal(raw_int(h, "SELECT anomaly = 0.25 FROM v_readings WHERE ts_ms = 1000 AND"
                                " value = 21.5"),
                     1);
    /* A redelivery after the merge: staged, hidden by the view, counted once. */
    assert_int_equal(st_db_insert_reading(db, s, 1000, 22.0), 0);
    assert_int_equal(st_db_insert_reading(db, s, 3000, 23.0), 0);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), 2);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM v_readings"), 4);
    assert_int_equal(count_readings(db), 4);
    assert_int_equal(st_db_merge(db), 0);
    assert_int_equal(st_db_duplicates(db), 2);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings"), 4);
    /* -0.0 and 0.0 are the same value to SQLite: one reading. */
    assert_int_equal(st_db_insert_reading(db, s, 4000, 0.0), 0);
    assert_int_equal(st_db_insert_reading(db, s, 4000, -0.0), 0);
    assert_int_equal(st_db_merge(db), 0);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings WHERE ts_ms = 4000"), 1);
    sqlite3_close(h);
    st_db_close(db);
}

/* st_db_insert_readings: chunks of ST_INSERT_CHUNK rows and single rows for the rest, in
 * order; NaN anomaly stores NULL. */
static void test_insert_readings_chunks(void **state) {
    fixture *f = *state;
    st_db *db = open_ok(f->path, NULL);
    int64_t s;
    assert_int_equal(st_db_series_id(db, "s", "m", &s), 0);
    enum { N = 2 * ST_INSERT_CHUNK + 5 };
    st_reading_row rows[N];
    for (int i = 0; i < N; i++) {
        rows[i] = (st_reading_row){s, 1000 + i, i * 0.5, i % 2 ? NAN : i / 100.0};
    }
    size_t done = 0;
    assert_int_equal(st_db_begin(db), 0);
    assert_int_equal(st_db_insert_readings(db, rows, N, 0, &done), 0);
    assert_int_equal(done, N);
    assert_int_equal(st_db_insert_readings(db, rows, 0, 0, &done), 0);
    assert_int_equal(done, 0);
    assert_int_equal(st_db_commit(db), 0);
    sqlite3 *h = raw_open(f->path);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), N);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent WHERE anomaly IS NULL"),
                     N / 2);
    /* Arrival order kept: rowid k holds row k - 1. */
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent WHERE"
                                " ts_ms <> 999 + rowid OR value <> (rowid - 1) * 0.5"),
                     0);
    /* Nothing may repeat: an orderly stop leaves the rows staged, no merge needed. */
    assert_int_equal(st_db_settle(db), 0);
    assert_int_equal(st_db_merges(db), 0);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), N);
    sqlite3_close(h);
    st_db_close(db);
}

/* A failed chunk reports how many rows went in before it. */
static void test_insert_readings_fail(void **state) {
    fixture *f = *state;
    st_db *db = open_ok(f->path, NULL);
    int64_t s;
    assert_int_equal(st_db_series_id(db, "s", "m", &s), 0);
    enum { N = 4000 };
    static st_reading_row rows[N];
    for (int i = 0; i < N; i++) {
        rows[i] = (st_reading_row){s, i, i, NAN};
    }
    assert_int_equal(st_db_exec(db, "PRAGMA max_page_count = 1"), 0);
    size_t done = N;
    assert_int_equal(st_db_begin(db), 0);
    assert_int_equal(st_db_insert_readings(db, rows, N, 0, &done), ST_EFULL);
    assert_true(done < N);
    assert_int_equal(done % ST_INSERT_CHUNK, 0);
    assert_int_equal(st_db_rollback(db), 0);
    st_db_close(db);
}

/* At an orderly stop, rows that may repeat others are merged so that the file at rest holds
 * each reading once; what an earlier run left staged is merged at the next open. */
static void test_settle_and_open_merge(void **state) {
    fixture *f = *state;
    st_db_opts o = {.merge_rows = 1000000};
    st_db *db = open_ok(f->path, &o);
    int64_t s;
    assert_int_equal(st_db_series_id(db, "s", "m", &s), 0);
    st_reading_row rows[3] = {{s, 6, 2, NAN}, {s, 5, 1, NAN}, {s, 5, 1, NAN}};
    int64_t oldest = 0;
    assert_false(st_db_staged_min(db, &oldest));
    assert_int_equal(st_db_begin(db), 0);
    assert_int_equal(st_db_insert_readings(db, rows, 3, 1, NULL), 0);
    assert_int_equal(st_db_commit(db), 0);
    assert_true(st_db_staged_min(db, &oldest));
    assert_int_equal(oldest, 5);
    sqlite3 *h = raw_open(f->path);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), 3);
    assert_int_equal(st_db_settle(db), 0);
    assert_int_equal(st_db_merges(db), 1);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings"), 2);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), 0);
    assert_false(st_db_staged_min(db, &oldest));
    assert_int_equal(st_db_settle(db), 0); /* nothing staged: nothing to do */
    assert_int_equal(st_db_merges(db), 1);

    assert_int_equal(st_db_insert_readings(db, rows, 2, 0, NULL), 0);
    st_db_close(db); /* two copies left staged */
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), 2);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM v_readings"), 2);
    db = open_ok(f->path, &o);
    assert_int_equal(st_db_merges(db), 1);
    assert_int_equal(st_db_duplicates(db), 2);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), 0);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings"), 2);
    sqlite3_close(h);
    st_db_close(db);
}

/* A version-3 file (rowid readings, copies allowed, staged rows) migrates: exact copies go,
 * distinct readings with a repeated timestamp stay, scores survive. */
static void test_migrate_v3_to_v4(void **state) {
    fixture *f = *state;
    st_db *db = open_ok(f->path, NULL);
    int64_t s;
    assert_int_equal(st_db_series_id(db, "pump", "temp", &s), 0);
    st_db_close(db);
    sqlite3 *h = raw_open(f->path);
    raw_exec(h, "DROP VIEW v_readings; DROP TABLE readings;"
                "CREATE TABLE readings(series_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL,"
                "  value REAL NOT NULL, anomaly REAL) STRICT;"
                "CREATE INDEX readings_series_ts ON readings(series_id, ts_ms);"
                "CREATE VIEW v_readings(sensor, metric, ts_ms, ts, value, anomaly) AS"
                "  SELECT s.sensor, s.metric, r.ts_ms, '', r.value, r.anomaly"
                "  FROM readings r JOIN series s ON s.id = r.series_id UNION ALL"
                "  SELECT s.sensor, s.metric, r.ts_ms, '', r.value, r.anomaly"
                "  FROM readings_recent r JOIN series s ON s.id = r.series_id;"
                "INSERT INTO readings VALUES(1, 1000, 1.5, 0.5), (1, 1000, 1.5, 0.9),"
                "  (1, 1000, 2.5, NULL), (1, 2000, 1.5, NULL);"
                "INSERT INTO readings_recent VALUES(1, 2000, 1.5, NULL), (1, 3000, 3.5, 0.1);"
                "PRAGMA user_version = 3");
    db = open_ok(f->path, NULL);
    assert_int_equal(raw_int(h, "PRAGMA user_version"), ST_SCHEMA_VERSION);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), 0);
    assert_int_equal(raw_int(h, "SELECT group_concat(ts_ms || ':' || value || ':' ||"
                                " ifnull(anomaly, 'null'), ' ') = '1000:1.5:0.5 1000:2.5:null"
                                " 2000:1.5:null 3000:3.5:0.1' FROM (SELECT * FROM v_readings"
                                " ORDER BY ts_ms, value)"),
                     1);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM v_readings WHERE sensor = 'pump' AND"
                                " ts = '1970-01-01T00:00:01.000Z'"),
                     2);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM sqlite_schema WHERE name IN"
                                " ('readings_v4', 'readings_series_ts')"),
                     0);
    sqlite3_close(h);
    st_db_close(db);
}

/* The views' columns, in the documented order (docs/history.md): the contract. */
static void test_view_columns(void **state) {
    fixture *f = *state;
    st_db_close(open_ok(f->path, NULL));
    sqlite3 *h = raw_open(f->path);
    static const struct {
        const char *view, *cols;
    } want[] = {
        {"v_readings", "sensor,metric,ts_ms,ts,value,anomaly"},
        {"v_summaries", "sensor,metric,window_ms,start_ms,end_ms,count,min,max,mean,stddev,first,"
                        "last,p50,p95,start"},
        {"v_alerts", "id,sensor,metric,kind,state,severity,ts_ms,ts,value,threshold,message,"
                     "published,rule,detail"},
        {"v_active_alerts", "id,sensor,metric,kind,state,severity,ts_ms,ts,value,threshold,"
                            "message,published,rule,detail"},
        {"v_predictions", "sensor,metric,ts_ms,ts,level,slope_per_h,slope_se_per_h,eta_ms,eta,"
                          "eta_lo_ms,eta_hi_ms"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT (SELECT group_concat(name) FROM (SELECT name FROM pragma_table_info('%s')"
                 " ORDER BY cid)) = '%s'",
                 want[i].view, want[i].cols);
        if (raw_int(h, sql) != 1) {
            print_error("%s: columns differ from %s\n", want[i].view, want[i].cols);
            fail();
        }
    }
    sqlite3_close(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_copies_stored_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_readings_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_readings_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settle_and_open_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v3_to_v4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_columns, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
