/* Unit tests of storage/st_recent (the series with a recent reading, read at start for the
 * stale preload): real SQLite files in a temporary directory per test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "st_db.h"
#include "st_recent.h"

#include "test_st_fixture.h"

#define T0  1700000000000LL
#define DAY (24LL * 3600 * 1000)

typedef struct seen {
    char name[16][32];
    int64_t ts[16];
    double value[16];
    int n;
    int stop_after; /* fn returns 1 after this many rows; 0: never */
} seen;

static int collect(void *ctx, const st_recent_row *row) {
    seen *s = ctx;
    assert_true(s->n < 16);
    snprintf(s->name[s->n], sizeof(s->name[0]), "%s/%s", row->sensor, row->metric);
    s->ts[s->n] = row->ts_ms;
    s->value[s->n] = row->value;
    s->n++;
    return s->stop_after > 0 && s->n >= s->stop_after;
}

static int64_t series(st_db *db, const char *sensor, const char *metric) {
    int64_t id = 0;
    assert_int_equal(st_db_series_id(db, sensor, metric, &id), 0);
    return id;
}

static void insert(st_db *db, int64_t id, int64_t ts, double value) {
    assert_int_equal(st_db_insert_reading(db, id, ts, value), 0);
}

/* Within the horizon or not, merged or staged: the newest reading of each series decides. */
static void test_recent_series(void **state) {
    fixture *f = *state;
    st_db_opts o = {.merge_rows = 1000000};
    st_db *db = open_ok(f->path, &o);
    int64_t a = series(db, "a", "t");       /* merged, recent */
    int64_t old = series(db, "old", "t");   /* merged, older than the horizon */
    int64_t c = series(db, "c", "t");       /* merged old, staged recent */
    int64_t d = series(db, "d", "t");       /* staged only, recent */
    int64_t e = series(db, "e", "t");       /* merged recent, staged older */
    (void)series(db, "none", "t");          /* no reading at all */
    int64_t g = series(db, "g", "t");       /* two readings at the newest ts */
    int64_t edge = series(db, "edge", "t"); /* exactly at the horizon */
    assert_int_equal(st_db_begin(db), 0);
    insert(db, a, T0 - 1000, 1.0);
    insert(db, a, T0 - 500, 2.0);
    insert(db, a, T0 - 2 * DAY, 3.0);
    insert(db, old, T0 - 10 * DAY, 4.0);
    insert(db, old, T0 - 9 * DAY, 5.0);
    insert(db, c, T0 - 30 * DAY, 6.0);
    insert(db, e, T0 - 100, 7.0);
    insert(db, g, T0 - 50, 8.0);
    insert(db, g, T0 - 50, 9.5);
    insert(db, edge, T0 - 7 * DAY, 10.0);
    assert_int_equal(st_db_commit(db), 0);
    assert_int_equal(st_db_merge(db), 0);
    assert_int_equal(st_db_begin(db), 0);
    insert(db, c, T0 - 200, 11.0);
    insert(db, c, T0 - 300, 12.0);
    insert(db, d, T0 - 400, 13.0);
    insert(db, e, T0 - 5000, 14.0);
    insert(db, old, T0 - 8 * DAY, 15.0);
    assert_int_equal(st_db_commit(db), 0);
    sqlite3 *h = raw_open(f->path);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), 5);

    seen s = {0};
    char err[256] = "";
    assert_int_equal(st_db_recent_series(db, T0 - 7 * DAY, collect, &s, err, sizeof(err)), 6);
    assert_string_equal(err, "");
    assert_int_equal(s.n, 6);
    /* In series id order. */
    assert_string_equal(s.name[0], "a/t");
    assert_int_equal(s.ts[0], T0 - 500);
    assert_true(s.value[0] == 2.0);
    assert_string_equal(s.name[1], "c/t");
    assert_int_equal(s.ts[1], T0 - 200);
    assert_true(s.value[1] == 11.0);
    assert_string_equal(s.name[2], "d/t");
    assert_int_equal(s.ts[2], T0 - 400);
    assert_true(s.value[2] == 13.0);
    assert_string_equal(s.name[3], "e/t");
    assert_int_equal(s.ts[3], T0 - 100);
    assert_true(s.value[3] == 7.0);
    assert_string_equal(s.name[4], "g/t");
    assert_int_equal(s.ts[4], T0 - 50);
    assert_true(s.value[4] == 9.5);
    assert_string_equal(s.name[5], "edge/t");
    assert_int_equal(s.ts[5], T0 - 7 * DAY);

    /* A wider horizon takes the old series too, with its staged reading; a narrower one leaves
     * out what is older. */
    s = (seen){0};
    assert_int_equal(st_db_recent_series(db, T0 - 8 * DAY, collect, &s, err, sizeof(err)), 7);
    assert_string_equal(s.name[1], "old/t");
    assert_int_equal(s.ts[1], T0 - 8 * DAY);
    assert_true(s.value[1] == 15.0);
    s = (seen){0};
    assert_int_equal(st_db_recent_series(db, T0 - 300, collect, &s, err, sizeof(err)), 3);
    assert_string_equal(s.name[0], "c/t");
    assert_string_equal(s.name[1], "e/t");
    assert_string_equal(s.name[2], "g/t");

    /* After the merge, the same answers. */
    assert_int_equal(st_db_merge(db), 0);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM readings_recent"), 0);
    s = (seen){0};
    assert_int_equal(st_db_recent_series(db, T0 - 7 * DAY, collect, &s, err, sizeof(err)), 6);
    assert_string_equal(s.name[1], "c/t");
    assert_int_equal(s.ts[1], T0 - 200);
    assert_string_equal(s.name[3], "e/t");
    assert_int_equal(s.ts[3], T0 - 100);

    /* The callback can stop the walk. */
    s = (seen){.stop_after = 2};
    assert_int_equal(st_db_recent_series(db, T0 - 7 * DAY, collect, &s, err, sizeof(err)), 2);
    assert_int_equal(s.n, 2);

    /* The lookup in readings seeks on its key; it never scans the table. */
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(h,
                                        "EXPLAIN QUERY PLAN SELECT ts_ms, value FROM readings"
                                        " WHERE series_id = ?1 ORDER BY ts_ms DESC, value DESC"
                                        " LIMIT 1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(st, 3);
        assert_non_null(strstr(detail, "SEARCH readings USING PRIMARY KEY (series_id=?)"));
        rows++;
    }
    assert_int_equal(rows, 1);
    sqlite3_finalize(st);
    sqlite3_close(h);
    st_db_close(db);
}

static void test_empty_and_errors(void **state) {
    fixture *f = *state;
    st_db *db = open_ok(f->path, NULL);
    seen s = {0};
    char err[256] = "";
    assert_int_equal(st_db_recent_series(db, 0, collect, &s, err, sizeof(err)), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(st_db_recent_series(db, 0, NULL, &s, err, sizeof(err)), ST_EIO);
    assert_non_null(strstr(err, "no callback"));
    assert_int_equal(st_db_begin(db), 0);
    assert_int_equal(st_db_recent_series(db, 0, collect, &s, err, sizeof(err)), ST_EIO);
    assert_non_null(strstr(err, "inside a transaction"));
    assert_int_equal(st_db_commit(db), 0);
    st_db_close(db);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_recent_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
