/* Unit tests of storage/st_query: real SQLite files in a temporary directory per test, written
 * with st_db, read with st_query. */
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
#include "st_query.h"
#include "st_query_internal.h"

#define T0 1700000000000LL /* 2023-11-14T22:13:20Z, a multiple of 10 s */

#include "test_st_fixture.h"

static st_db *writer(const char *path, int merge_rows) {
    st_db *db = NULL;
    char err[256];
    st_db_opts o = {.merge_rows = merge_rows, .busy_timeout_ms = 200};
    int rc = st_db_open(&db, path, &o, err, sizeof(err));
    if (rc != 0) {
        print_error("open %s: %s\n", path, err);
    }
    assert_int_equal(rc, 0);
    return db;
}

static int64_t series(st_db *db, const char *sensor, const char *metric) {
    int64_t id;
    assert_int_equal(st_db_series_id(db, sensor, metric, &id), 0);
    return id;
}

static st_query *reader(const char *path) {
    st_query *q = NULL;
    char err[256] = "x";
    int rc = st_query_open(&q, path, 0, err, sizeof(err));
    if (rc != 0) {
        print_error("st_query_open %s: %s\n", path, err);
    }
    assert_int_equal(rc, 0);
    assert_string_equal(err, "");
    return q;
}

enum what { READINGS, WINDOWS, ALERTS, ACTIVE };

/* Runs one query into f->out; returns its code. */
static int query(fixture *f, enum what w, const st_filter *flt, st_format fmt, int64_t window,
                 st_source src, st_result *res) {
    st_query *q = reader(f->path);
    free(f->out);
    f->out = NULL;
    FILE *out = open_memstream(&f->out, &f->out_len);
    assert_non_null(out);
    int rc = w == READINGS  ? st_query_readings(q, flt, fmt, out, res)
             : w == WINDOWS ? st_query_windows(q, flt, window, src, fmt, out, res)
                            : st_query_alerts(q, flt, w == ACTIVE, fmt, out, res);
    if (rc != 0) {
        print_message("query: %s\n", st_query_errmsg(q));
    }
    fclose(out);
    st_query_close(q);
    return rc;
}

static int lines(const char *s) {
    int n = 0;
    for (; *s != '\0'; s++) {
        n += *s == '\n';
    }
    return n;
}

/* Readings of pump1/temp and pump2/temp every second from T0 (value = second), pump1/rpm. */
static void fill(const char *path) {
    st_db *db = writer(path, 0);
    int64_t p1 = series(db, "pump1", "temp"), p2 = series(db, "pump2", "temp");
    int64_t rpm = series(db, "pump1", "rpm");
    assert_int_equal(st_db_begin(db), 0);
    for (int s = 0; s < 30; s++) {
        assert_int_equal(st_db_insert_reading(db, p1, T0 + s * 1000, s), 0);
        assert_int_equal(st_db_insert_reading_scored(db, p2, T0 + s * 1000, 100 + s, 0.5), 0);
    }
    assert_int_equal(st_db_insert_reading(db, rpm, T0, 1500.25), 0);
    assert_int_equal(st_db_commit(db), 0);
    st_db_close(db);
}

static void test_open_errors(void **state) {
    fixture *f = *state;
    st_query *q = (st_query *)0x1;
    char err[256];
    assert_int_equal(st_query_open(&q, f->path, 0, err, sizeof(err)), ST_EIO);
    assert_non_null(strstr(err, "iotgw.db: No such file or directory"));
    assert_int_equal(access(f->path, F_OK), -1); /* never created */
    assert_int_equal(st_query_open(&q, f->dir, 0, err, sizeof(err)), ST_EIO);
    assert_non_null(strstr(err, "is a directory"));

    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs("not a database, only text long enough to be taken for a database header.....\n", fp);
    fclose(fp);
    assert_int_equal(st_query_open(&q, f->path, 0, err, sizeof(err)), ST_ESCHEMA);
    assert_non_null(strstr(err, "not an iotgw database"));
    unlink(f->path);

    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    assert_int_equal(st_query_open(&q, f->path, 0, err, sizeof(err)), ST_ESCHEMA);
    assert_non_null(strstr(err, "not an iotgw database (no iotgw application_id)"));
    unlink(f->path);

    st_db_close(writer(f->path, 0));
    assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "PRAGMA user_version = 2", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    assert_int_equal(st_query_open(&q, f->path, 0, err, sizeof(err)), ST_ESCHEMA);
    assert_non_null(strstr(err, "schema version 2 is older than this iotgw's (4)"));
    assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "PRAGMA user_version = 5", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    assert_int_equal(st_query_open(&q, f->path, 0, err, sizeof(err)), ST_ESCHEMA);
    assert_non_null(strstr(err, "schema version 5 is newer than this iotgw supports (4)"));
    assert_ptr_equal(q, (st_query *)0x1);
    assert_int_equal(st_query_open(&q, NULL, 0, err, sizeof(err)), ST_EIO);
    assert_string_equal(st_query_errmsg(NULL), "");
    st_query_close(NULL);
}

static void test_readings_filters(void **state) {
    fixture *f = *state;
    fill(f->path);
    st_filter flt;
    st_result res;
    st_filter_init(&flt);
    assert_int_equal(flt.limit, ST_QUERY_LIMIT_DEFAULT);
    assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_CSV, 0, 0, &res), 0);
    assert_int_equal(res.rows, 61);
    assert_false(res.truncated);
    assert_int_equal(lines(f->out), 62);

    flt.metric = "te?p";
    flt.sensor = "pump[2]";
    flt.since_ms = T0 + 5000; /* inclusive */
    flt.until_ms = T0 + 8000; /* exclusive */
    assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_CSV, 0, 0, &res), 0);
    assert_string_equal(f->out, "sensor,metric,ts_ms,ts,value,anomaly\r\n"
                                "pump2,temp,1700000005000,2023-11-14T22:13:25.000Z,105,0.5\r\n"
                                "pump2,temp,1700000006000,2023-11-14T22:13:26.000Z,106,0.5\r\n"
                                "pump2,temp,1700000007000,2023-11-14T22:13:27.000Z,107,0.5\r\n");

    /* Oldest first by time, then sensor; the limit keeps the first rows and says so. */
    st_filter_init(&flt);
    flt.metric = "temp";
    flt.limit = 3;
    assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_CSV, 0, 0, &res), 0);
    assert_int_equal(res.rows, 3);
    assert_true(res.truncated);
    assert_non_null(strstr(f->out, "\r\npump1,temp,1700000000000,2023-11-14T22:13:20.000Z,0,\r\n"
                                   "pump2,temp,1700000000000,"));
    assert_non_null(strstr(f->out, "\r\npump1,temp,1700000001000,"));
    flt.newest_first = true;
    assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_CSV, 0, 0, &res), 0);
    assert_non_null(strstr(f->out, "\r\npump2,temp,1700000029000,"));
    assert_true(res.truncated);
    flt.limit = 60; /* exactly all: not truncated */
    assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_CSV, 0, 0, &res), 0);
    assert_int_equal(res.rows, 60);
    assert_false(res.truncated);

    /* Nothing matches: not an error; every format still well formed. */
    flt.sensor = "nobody";
    assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_JSON, 0, 0, &res), 0);
    assert_string_equal(f->out, "[]\n");
    assert_int_equal(res.rows, 0);
    assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_CSV, 0, 0, &res), 0);
    assert_string_equal(f->out, "sensor,metric,ts_ms,ts,value,anomaly\r\n");
    assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_TABLE, 0, 0, &res), 0);
    assert_string_equal(f->out, "sensor  metric  ts_ms  ts  value  anomaly\n"
                                "------  ------  -----  --  -----  -------\n");

    flt.limit = 0;
    assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_CSV, 0, 0, &res), ST_EIO);
    flt.limit = ST_QUERY_LIMIT_MAX + 1LL;
    assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_CSV, 0, 0, &res), ST_EIO);
}

/* Sensor names are data: hostile names and patterns go through bound parameters. */
static void test_hostile_names(void **state) {
    fixture *f = *state;
    st_db *db = writer(f->path, 0);
    static const char *names[] = {"x' OR 1=1 --", "we,ird\"name", "new\nline", "a[1]", "plain"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert_int_equal(st_db_insert_reading(db, series(db, names[i], "m"), T0 + (int64_t)i, 1),
                         0);
    }
    st_db_close(db);
    st_filter flt;
    st_result res;
    st_filter_init(&flt);
    flt.sensor = "x' OR 1=1 --";
    assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_CSV, 0, 0, &res), 0);
    assert_int_equal(res.rows, 1);
    assert_non_null(strstr(f->out, "\r\nx' OR 1=1 --,m,"));
    static const char *hostile[] = {"' OR '1'='1", "*' OR 1=1; --", "x'; DROP TABLE readings; --",
                                    "\" OR \"\"=\"", "a[1]"}; /* a[1] is a pattern: "a1" */
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        flt.sensor = hostile[i];
        assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_CSV, 0, 0, &res), 0);
        assert_int_equal(res.rows, 0);
        flt.sensor = NULL;
        flt.metric = hostile[i];
        assert_int_equal(query(f, ALERTS, &flt, ST_FORMAT_CSV, 0, 0, &res), 0);
        assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, 1000, ST_SOURCE_AUTO, &res), 0);
        assert_int_equal(res.rows, 0);
        flt.metric = NULL;
    }
    flt.sensor = "a[[]1]"; /* the literal name a[1] */
    assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_CSV, 0, 0, &res), 0);
    assert_int_equal(res.rows, 1);
    flt.sensor = NULL;
    assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_CSV, 0, 0, &res), 0);
    assert_int_equal(res.rows, 5); /* the table is still there */
}

static void escapes_db(const char *path) {
    st_db *db = writer(path, 0);
    assert_int_equal(st_db_insert_reading(db, series(db, "we,ird\"name", "m"), T0, 0.1), 0);
    assert_int_equal(
        st_db_insert_reading(db, series(db, "new\nline", "tab\there"), T0 + 1, 1.0 / 3.0), 0);
    assert_int_equal(st_db_insert_reading(db, series(db, "bad\xff\x01utf8", ""), T0 + 2, -2e-300),
                     0);
    assert_int_equal(
        st_db_insert_reading(db, series(db, "gr\xc3\xbc\xc3\x9f", "back\\slash"), T0 + 3, 1e21), 0);
    st_db_close(db);
}

static void test_csv_escaping(void **state) {
    fixture *f = *state;
    escapes_db(f->path);
    st_filter flt;
    st_filter_init(&flt);
    assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_CSV, 0, 0, NULL), 0);
    assert_string_equal(f->out,
                        "sensor,metric,ts_ms,ts,value,anomaly\r\n"
                        "\"we,ird\"\"name\",m,1700000000000,2023-11-14T22:13:20.000Z,0.1,\r\n"
                        "\"new\nline\",tab\there,1700000000001,2023-11-14T22:13:20.001Z,"
                        "0.3333333333333333,\r\n"
                        "bad\xff\x01utf8,\"\",1700000000002,2023-11-14T22:13:20.002Z,-2e-300,\r\n"
                        "gr\xc3\xbc\xc3\x9f,back\\slash,1700000000003,2023-11-14T22:13:20.003Z,"
                        "1e+21,\r\n");
}

static void test_json_escaping(void **state) {
    fixture *f = *state;
    escapes_db(f->path);
    st_filter flt;
    st_filter_init(&flt);
    assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_JSON, 0, 0, NULL), 0);
    assert_string_equal(
        f->out,
        "[\n"
        "{\"sensor\":\"we,ird\\\"name\",\"metric\":\"m\",\"ts_ms\":1700000000000,"
        "\"ts\":\"2023-11-14T22:13:20.000Z\",\"value\":0.1,\"anomaly\":null},\n"
        "{\"sensor\":\"new\\nline\",\"metric\":\"tab\\there\",\"ts_ms\":1700000000001,"
        "\"ts\":\"2023-11-14T22:13:20.001Z\",\"value\":0.3333333333333333,\"anomaly\":null},\n"
        "{\"sensor\":\"bad\\ufffd\\u0001utf8\",\"metric\":\"\",\"ts_ms\":1700000000002,"
        "\"ts\":\"2023-11-14T22:13:20.002Z\",\"value\":-2e-300,\"anomaly\":null},\n"
        "{\"sensor\":\"gr\xc3\xbc\xc3\x9f\",\"metric\":\"back\\\\slash\",\"ts_ms\":1700000000003,"
        "\"ts\":\"2023-11-14T22:13:20.003Z\",\"value\":1e+21,\"anomaly\":null}\n"
        "]\n");
}

static void test_table(void **state) {
    fixture *f = *state;
    escapes_db(f->path);
    st_filter flt;
    st_filter_init(&flt);
    flt.limit = 2;
    assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_TABLE, 0, 0, NULL), 0);
    assert_string_equal(
        f->out,
        "sensor       metric             ts_ms  ts                               value  anomaly\n"
        "-----------  ---------  -------------  ------------------------  ------------  -------\n"
        "we,ird\"name  m          1700000000000  2023-11-14T22:13:20.000Z           0.1  \n"
        "new\\nline    tab\\there  1700000000001  2023-11-14T22:13:20.001Z  0.3333333333  \n");
    /* Widths count code points; bytes that are not text are shown as escapes. */
    flt.since_ms = T0 + 2;
    assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_TABLE, 0, 0, NULL), 0);
    assert_non_null(strstr(f->out, "\nbad\\xff\\x01utf8              1700000000002"));
    assert_non_null(strstr(f->out, "\ngr\xc3\xbc\xc3\x9f             back\\slash  1700000000003"));

    /* More rows than the table holds to measure: the rest stream with the same widths. */
    st_db *db = writer(f->path, 0);
    int64_t s = series(db, "s", "m");
    assert_int_equal(st_db_begin(db), 0);
    for (int i = 0; i < 2500; i++) {
        assert_int_equal(st_db_insert_reading(db, s, T0 + 10000 + i, i), 0);
    }
    assert_int_equal(st_db_commit(db), 0);
    st_db_close(db);
    st_filter_init(&flt);
    flt.sensor = "s";
    flt.limit = 2400;
    st_result res;
    assert_int_equal(query(f, READINGS, &flt, ST_FORMAT_TABLE, 0, 0, &res), 0);
    assert_int_equal(res.rows, 2400);
    assert_true(res.truncated);
    assert_int_equal(lines(f->out), 2402);
    assert_non_null(
        strstr(f->out, "\ns       m       1700000010999  2023-11-14T22:13:30.999Z    999"));
    assert_non_null(
        strstr(f->out, "\ns       m       1700000012399  2023-11-14T22:13:32.399Z   2399"));
}

/* Checks where the windows of the last query came from. */
static void origins(const st_result *res, int64_t stored, int64_t finer, int64_t raw,
                    int64_t mixed) {
    if (res->windows[ST_ORIGIN_STORED] != stored || res->windows[ST_ORIGIN_FINER] != finer ||
        res->windows[ST_ORIGIN_RAW] != raw || res->windows[ST_ORIGIN_MIXED] != mixed) {
        fail_msg("origins: stored %lld finer %lld raw %lld mixed %lld, want %lld %lld %lld %lld",
                 (long long)res->windows[ST_ORIGIN_STORED],
                 (long long)res->windows[ST_ORIGIN_FINER], (long long)res->windows[ST_ORIGIN_RAW],
                 (long long)res->windows[ST_ORIGIN_MIXED], (long long)stored, (long long)finer,
                 (long long)raw, (long long)mixed);
    }
    assert_int_equal(stored + finer + raw + mixed, res->rows);
}

/* Windows computed from raw readings: aligned to the epoch, first/last by time (not by arrival),
 * whole windows selected by overlap, merged and staged rows alike. */
static void test_windows_raw(void **state) {
    fixture *f = *state;
    st_db *db = writer(f->path, 4);
    int64_t s = series(db, "p", "t");
    static const struct {
        int64_t ms;
        double v;
    } rows[] = {{5000, 7}, {1000, 3}, {9999, 5}, {10000, -1}, {19000, 2}, {12000, 8}, {25000, 4}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        assert_int_equal(st_db_insert_reading(db, s, T0 + rows[i].ms, rows[i].v), 0);
    }
    st_db_close(db);
    st_filter flt;
    st_filter_init(&flt);
    st_result res;
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, 10000, ST_SOURCE_AUTO, &res), 0);
    origins(&res, 0, 0, 3, 0);
    assert_string_equal(f->out,
                        "sensor,metric,start_ms,start,end_ms,count,min,max,avg,first,last\r\n"
                        "p,t,1700000000000,2023-11-14T22:13:20.000Z,1700000010000,3,3,7,5,3,5\r\n"
                        "p,t,1700000010000,2023-11-14T22:13:30.000Z,1700000020000,3,-1,8,3,-1,2\r\n"
                        "p,t,1700000020000,2023-11-14T22:13:40.000Z,1700000030000,1,4,4,4,4,4\r\n");
    /* [T0+15s, T0+20s) overlaps the window of T0+10s only, taken whole. */
    flt.since_ms = T0 + 15000;
    flt.until_ms = T0 + 20000;
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, 10000, ST_SOURCE_RAW, &res), 0);
    assert_int_equal(res.rows, 1);
    assert_non_null(strstr(f->out, ",1700000010000,2023-11-14T22:13:30.000Z,1700000020000,3,"));
    /* A window that does not divide the epoch offset: 7 s windows start at multiples of 7 s. */
    st_filter_init(&flt);
    flt.newest_first = true;
    flt.limit = 1;
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_JSON, 7000, ST_SOURCE_RAW, &res), 0);
    assert_true(res.truncated);
    assert_non_null(strstr(f->out, "\"start_ms\":1700000022000,")); /* 7000 * 242857146 */
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, 0, ST_SOURCE_RAW, &res), ST_EIO);
    assert_int_equal(
        query(f, WINDOWS, &flt, ST_FORMAT_CSV, ST_QUERY_WINDOW_MAX_MS + 1, ST_SOURCE_RAW, &res),
        ST_EIO);
}

static void put_summary(st_db *db, int64_t s, int64_t window, int64_t start, double v) {
    an_window_summary w = {.window_ms = window,
                           .start_ms = start,
                           .end_ms = start + window,
                           .count = 42,
                           .min = v,
                           .max = v,
                           .mean = v,
                           .first = v,
                           .last = v,
                           .p50 = v,
                           .p95 = v};
    assert_int_equal(st_db_insert_summary(db, s, &w), 0);
}

static void test_windows_summaries(void **state) {
    fixture *f = *state;
    st_db *db = writer(f->path, 0);
    int64_t s = series(db, "p", "t");
    assert_int_equal(st_db_insert_reading(db, s, T0 + 1000, 1), 0);
    assert_int_equal(st_db_begin(db), 0);
    put_summary(db, s, 10000, T0, 9);
    put_summary(db, s, 10000, T0, 9);        /* the same window stored twice (tumbling + hop) */
    put_summary(db, s, 10000, T0 + 5000, 7); /* a hopping window: not epoch-aligned */
    put_summary(db, s, 10000, T0 + 10000, 6);
    assert_int_equal(st_db_commit(db), 0);
    st_db_close(db);
    st_filter flt;
    st_filter_init(&flt);
    st_result res;
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, 10000, ST_SOURCE_AUTO, &res), 0);
    origins(&res, 2, 0, 0, 0);
    assert_string_equal(
        f->out, "sensor,metric,start_ms,start,end_ms,count,min,max,avg,first,last\r\n"
                "p,t,1700000000000,2023-11-14T22:13:20.000Z,1700000010000,42,9,9,9,9,9\r\n"
                "p,t,1700000010000,2023-11-14T22:13:30.000Z,1700000020000,42,6,6,6,6,6\r\n");
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, 10000, ST_SOURCE_RAW, &res), 0);
    origins(&res, 0, 0, 1, 0);
    assert_non_null(strstr(f->out, ",1,1,1,1,1,1\r\n"));
    /* No stored summary of 20 s: auto combines the two aligned 10 s ones (the hopping one and
     * the copy left out), weighting the means by their counts. */
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, 20000, ST_SOURCE_AUTO, &res), 0);
    origins(&res, 0, 1, 0, 0);
    assert_string_equal(
        f->out, "sensor,metric,start_ms,start,end_ms,count,min,max,avg,first,last\r\n"
                "p,t,1700000000000,2023-11-14T22:13:20.000Z,1700000020000,84,6,9,7.5,9,6\r\n");
    /* Nor of 30 s, which 10 s divides: T0 is 20 s into its 30 s window, T0 + 10 s starts the
     * next one. 25 s is not a multiple of 10 s: raw readings only. */
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, 30000, ST_SOURCE_AUTO, &res), 0);
    origins(&res, 0, 2, 0, 0);
    assert_non_null(strstr(f->out, "\r\np,t,1699999980000,2023-11-14T22:13:00.000Z,"
                                   "1700000010000,42,9,9,9,9,9\r\n"));
    assert_non_null(strstr(f->out, "\r\np,t,1700000010000,2023-11-14T22:13:30.000Z,"
                                   "1700000040000,42,6,6,6,6,6\r\n"));
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, 25000, ST_SOURCE_AUTO, &res), 0);
    origins(&res, 0, 0, 1, 0);
    assert_non_null(strstr(f->out, ",1,1,1,1,1,1\r\n"));
    flt.since_ms = T0 + 30000;
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, 10000, ST_SOURCE_AUTO, &res), 0);
    origins(&res, 0, 0, 0, 0);
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, 10000, ST_SOURCE_SUMMARIES, &res), 0);
    origins(&res, 0, 0, 0, 0);
}

/* A summary with its own figures (mean given; count readings between min and max). */
static void put_part(st_db *db, int64_t s, int64_t window, int64_t start, uint32_t count,
                     double min, double max, double mean, double first, double last) {
    an_window_summary w = {.window_ms = window,
                           .start_ms = start,
                           .end_ms = start + window,
                           .count = count,
                           .min = min,
                           .max = max,
                           .mean = mean,
                           .first = first,
                           .last = last,
                           .p50 = mean,
                           .p95 = max};
    assert_int_equal(st_db_insert_summary(db, s, &w), 0);
}

#define H0   1699999200000LL /* 2023-11-14T22:00:00Z: an hour, two hours before a day */
#define MIN  60000LL
#define HOUR 3600000LL

/* The thinned history a query meets after retention, for p/t over four hours from H0:
 *   hour 0: a stored 1 h roll-up; also a 1 m summary and a late raw reading inside it, which
 *           the roll-up already stands for (never counted);
 *   hour 1: 1 m summaries only (one stored twice, as tumbling and hopping; one hopping one
 *           between the minutes), the state between 7 and 90 days;
 *   hour 2: 1 m summaries for its first minute, raw readings after it (the raw cutoff), and a
 *           late reading in the summarised minute;
 *   hour 3: raw readings only (the window still open), plus summaries of sizes that do not
 *           fit: 7 s (does not divide 1 h) and 40 s (divides 1 h, not 1 m).
 * q/t has one raw reading in hour 1 and no summaries. */
static void fill_thinned(const char *path) {
    st_db *db = writer(path, 3);
    int64_t p = series(db, "p", "t"), q = series(db, "q", "t");
    assert_int_equal(st_db_begin(db), 0);
    put_part(db, p, HOUR, H0, 90, 1, 9, 5, 2, 8);
    put_part(db, p, MIN, H0, 7, -100, 100, 0, -100, 100);
    put_part(db, p, MIN, H0 + HOUR, 6, 2, 4, 3, 2.5, 3.5);
    put_part(db, p, MIN, H0 + HOUR + 30 * MIN, 4, 1, 10, 6, 9, 1);
    put_part(db, p, MIN, H0 + HOUR + 30 * MIN, 4, 1, 10, 6, 9, 1);
    put_part(db, p, MIN, H0 + HOUR + 10 * MIN + 30000, 50, -5, 50, 0, 0, 0);
    put_part(db, p, MIN, H0 + 2 * HOUR, 2, 5, 7, 6, 5, 7);
    put_part(db, p, 7000, H0 + 3 * HOUR - 4000, 1000, -9, 99, 0, 0, 0);
    put_part(db, p, 40000, H0 + 3 * HOUR, 1000, -9, 99, 0, 0, 0);
    assert_int_equal(st_db_commit(db), 0);
    static const struct {
        int64_t ms;
        double v;
    } raw[] = {{5 * MIN, -50},          {2 * HOUR + 10000, 100}, {2 * HOUR + 59 * MIN, 11},
               {2 * HOUR + 5 * MIN, 3}, {3 * HOUR + 2000, 6},    {3 * HOUR + 1000, 4}};
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        assert_int_equal(st_db_insert_reading(db, p, H0 + raw[i].ms, raw[i].v), 0);
    }
    assert_int_equal(st_db_insert_reading(db, q, H0 + HOUR + 1000, 42), 0);
    /* A copy of a merged reading, still staged: v_readings shows it once. */
    assert_int_equal(st_db_merge(db), 0);
    assert_int_equal(st_db_insert_reading(db, p, H0 + 3 * HOUR + 1000, 4), 0);
    st_db_close(db);
}

static const char csv_head[] =
    "sensor,metric,start_ms,start,end_ms,count,min,max,avg,first,last\r\n";

/* auto answers every window of the range, each from the best source that has it, and counts
 * no reading twice. */
static void test_windows_auto_tiers(void **state) {
    fixture *f = *state;
    fill_thinned(f->path);
    st_filter flt;
    st_filter_init(&flt);
    st_result res;
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, HOUR, ST_SOURCE_AUTO, &res), 0);
    origins(&res, 1, 1, 2, 1);
    assert_false(res.truncated);
    char want[2048];
    snprintf(want, sizeof(want),
             "%s"
             "p,t,1699999200000,2023-11-14T22:00:00.000Z,1700002800000,90,1,9,5,2,8\r\n"
             "p,t,1700002800000,2023-11-14T23:00:00.000Z,1700006400000,10,1,10,4.2,2.5,1\r\n"
             "q,t,1700002800000,2023-11-14T23:00:00.000Z,1700006400000,1,42,42,42,42,42\r\n"
             "p,t,1700006400000,2023-11-15T00:00:00.000Z,1700010000000,4,3,11,6.5,5,11\r\n"
             "p,t,1700010000000,2023-11-15T01:00:00.000Z,1700013600000,2,4,6,5,4,6\r\n",
             csv_head);
    assert_string_equal(f->out, want);

    /* Newest first, and the limit keeps the newest: over the mixed answer as over any. */
    flt.newest_first = true;
    flt.limit = 3;
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, HOUR, ST_SOURCE_AUTO, &res), 0);
    assert_true(res.truncated);
    origins(&res, 0, 0, 2, 1);
    snprintf(want, sizeof(want),
             "%s"
             "p,t,1700010000000,2023-11-15T01:00:00.000Z,1700013600000,2,4,6,5,4,6\r\n"
             "p,t,1700006400000,2023-11-15T00:00:00.000Z,1700010000000,4,3,11,6.5,5,11\r\n"
             "q,t,1700002800000,2023-11-14T23:00:00.000Z,1700006400000,1,42,42,42,42,42\r\n",
             csv_head);
    assert_string_equal(f->out, want);
    flt.newest_first = false;
    flt.limit = 2;
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, HOUR, ST_SOURCE_AUTO, &res), 0);
    assert_true(res.truncated);
    origins(&res, 1, 1, 0, 0);
    assert_non_null(strstr(f->out, "\r\np,t,1700002800000,"));
    assert_null(strstr(f->out, "\r\nq,t,"));

    /* A time range takes the whole windows it overlaps, from the same sources. */
    st_filter_init(&flt);
    flt.since_ms = H0 + HOUR + 59 * MIN;
    flt.until_ms = H0 + 2 * HOUR + 1;
    flt.sensor = "p";
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, HOUR, ST_SOURCE_AUTO, &res), 0);
    origins(&res, 0, 1, 0, 1);
    assert_non_null(strstr(f->out, ",10,1,10,4.2,2.5,1\r\n"));
    assert_non_null(strstr(f->out, ",4,3,11,6.5,5,11\r\n"));

    /* Days: the roll-up for hour 0 and the 1 m summaries of hour 1 make the first day (the 1 m
     * summary under the roll-up left out); the second day mixes summaries and raw readings. */
    st_filter_init(&flt);
    flt.sensor = "p";
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, 24 * HOUR, ST_SOURCE_AUTO, &res), 0);
    origins(&res, 0, 1, 0, 1);
    snprintf(want, sizeof(want),
             "%s"
             "p,t,1699920000000,2023-11-14T00:00:00.000Z,1700006400000,100,1,10,4.92,2,1\r\n"
             "p,t,1700006400000,2023-11-15T00:00:00.000Z,1700092800000,6,3,11,6,5,6\r\n",
             csv_head);
    assert_string_equal(f->out, want);

    /* Minutes: stored ones where they exist, raw readings elsewhere. */
    st_filter_init(&flt);
    flt.sensor = "p";
    flt.since_ms = H0 + 2 * HOUR;
    flt.until_ms = H0 + 3 * HOUR;
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, MIN, ST_SOURCE_AUTO, &res), 0);
    origins(&res, 1, 0, 2, 0);
    snprintf(want, sizeof(want),
             "%s"
             "p,t,1700006400000,2023-11-15T00:00:00.000Z,1700006460000,2,5,7,6,5,7\r\n"
             "p,t,1700006700000,2023-11-15T00:05:00.000Z,1700006760000,1,3,3,3,3,3\r\n"
             "p,t,1700009940000,2023-11-15T00:59:00.000Z,1700010000000,1,11,11,11,11,11\r\n",
             csv_head);
    assert_string_equal(f->out, want);
}

/* The other sources stay as they were: raw counts every raw reading, summaries reads only
 * stored summaries of exactly the size. */
static void test_windows_sources(void **state) {
    fixture *f = *state;
    fill_thinned(f->path);
    st_filter flt;
    st_filter_init(&flt);
    flt.sensor = "p";
    st_result res;
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, HOUR, ST_SOURCE_RAW, &res), 0);
    origins(&res, 0, 0, 3, 0);
    char want[1024];
    snprintf(want, sizeof(want),
             "%s"
             "p,t,1699999200000,2023-11-14T22:00:00.000Z,1700002800000,1,-50,-50,-50,-50,-50\r\n"
             "p,t,1700006400000,2023-11-15T00:00:00.000Z,1700010000000,3,3,100,38,100,11\r\n"
             "p,t,1700010000000,2023-11-15T01:00:00.000Z,1700013600000,2,4,6,5,4,6\r\n",
             csv_head);
    assert_string_equal(f->out, want);
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, HOUR, ST_SOURCE_SUMMARIES, &res), 0);
    origins(&res, 1, 0, 0, 0);
    assert_non_null(strstr(f->out, "\r\np,t,1699999200000,"));
    flt.newest_first = true;
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, MIN, ST_SOURCE_SUMMARIES, &res), 0);
    origins(&res, 4, 0, 0, 0);
    assert_true(strstr(f->out, "\r\np,t,1700006400000,") <
                strstr(f->out, "\r\np,t,1699999200000,"));
}

/* Finer sizes that overlap without nesting (20 s and 30 s in 1 m windows): only the chain
 * from the largest is used, so no reading counts twice; where it has no summary, the raw
 * readings count. */
static void test_windows_finer_chain(void **state) {
    fixture *f = *state;
    st_db *db = writer(f->path, 0);
    int64_t p = series(db, "p", "t");
    assert_int_equal(st_db_begin(db), 0);
    /* Minute 0: 30 s + 30 s (used), 20 s x 3 (not). Minute 1: only 20 s summaries (not used):
     * its raw reading counts. Minute 2: 30 s for the first half, 10 s (divides 30 s: on the
     * chain) for the second half, a 10 s one inside the 30 s one (left out). */
    put_part(db, p, 30000, H0, 3, 1, 3, 2, 1, 3);
    put_part(db, p, 30000, H0 + 30000, 1, 4, 4, 4, 4, 4);
    for (int i = 0; i < 3; i++) {
        put_part(db, p, 20000, H0 + i * 20000, 5, 0, 0, 0, 0, 0);
        put_part(db, p, 20000, H0 + MIN + i * 20000, 5, 0, 0, 0, 0, 0);
    }
    put_part(db, p, 30000, H0 + 2 * MIN, 2, 6, 8, 7, 6, 8);
    put_part(db, p, 10000, H0 + 2 * MIN + 10000, 9, -1, -1, -1, -1, -1);
    put_part(db, p, 10000, H0 + 2 * MIN + 40000, 1, 9, 9, 9, 9, 9);
    assert_int_equal(st_db_commit(db), 0);
    assert_int_equal(st_db_insert_reading(db, p, H0 + MIN + 5000, 7), 0);
    assert_int_equal(st_db_insert_reading(db, p, H0 + 5000, -7), 0); /* under a 30 s summary */
    st_db_close(db);
    st_filter flt;
    st_filter_init(&flt);
    st_result res;
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, MIN, ST_SOURCE_AUTO, &res), 0);
    origins(&res, 0, 2, 1, 0);
    char want[1024];
    snprintf(want, sizeof(want),
             "%s"
             "p,t,1699999200000,2023-11-14T22:00:00.000Z,1699999260000,4,1,4,2.5,1,4\r\n"
             "p,t,1699999260000,2023-11-14T22:01:00.000Z,1699999320000,1,7,7,7,7,7\r\n"
             "p,t,1699999320000,2023-11-14T22:02:00.000Z,1699999380000,3,6,9,7.666666666666667,"
             "6,9\r\n",
             csv_head);
    assert_string_equal(f->out, want);
}

/* The longest chain: nine stored sizes that halve each other (256 ms down to 1 ms) under 512 ms
 * windows; the eight largest are used, the 1 ms summary is not (its raw readings count). */
static void test_windows_finer_deep(void **state) {
    fixture *f = *state;
    st_db *db = writer(f->path, 0);
    int64_t p = series(db, "p", "t");
    assert_int_equal(T0 % 512, 0);
    assert_int_equal(st_db_begin(db), 0);
    int64_t at = 0;
    for (int64_t size = 256; size >= 1; size /= 2) {
        put_part(db, p, size, T0 + at, 1, (double)size, (double)size, (double)size, (double)size,
                 (double)size);
        at += size;
    }
    assert_int_equal(at, 511);
    assert_int_equal(st_db_commit(db), 0);
    assert_int_equal(st_db_insert_reading(db, p, T0 + 510, 1000), 0);
    assert_int_equal(st_db_insert_reading(db, p, T0 + 511, -1), 0);
    st_db_close(db);
    st_filter flt;
    st_filter_init(&flt);
    flt.sensor = "p";
    flt.metric = "t";
    flt.since_ms = T0;
    flt.until_ms = T0 + 1;
    st_result res;
    assert_int_equal(query(f, WINDOWS, &flt, ST_FORMAT_CSV, 512, ST_SOURCE_AUTO, &res), 0);
    origins(&res, 0, 0, 0, 1);
    /* 256 + 128 + ... + 2 = 510, plus 1000 - 1 from the raw readings: 1509 over 10. */
    char want[512];
    snprintf(want, sizeof(want),
             "%sp,t,1700000000000,2023-11-14T22:13:20.000Z,1700000000512,10,-1,1000,150.9,256,"
             "-1\r\n",
             csv_head);
    assert_string_equal(f->out, want);
}

/* The window queries look summaries and readings up through their indexes: no step of any
 * plan scans a whole table of them (only the unindexed staging table is scanned, as
 * v_readings does). Plans do not depend on the data (no ANALYZE statistics). */
static void test_windows_plans(void **state) {
    fixture *f = *state;
    fill_thinned(f->path);
    static const char *const full_scans[] = {"SCAN summaries", "SCAN cover", "SCAN readings",
                                             "SCAN merged", "SCAN series"};
    static const st_source sources[] = {ST_SOURCE_AUTO, ST_SOURCE_RAW, ST_SOURCE_SUMMARIES};
    static const int64_t sizes[] = {MIN, HOUR, 24 * HOUR};
    for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
        for (size_t j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++) {
            st_filter flt;
            st_filter_init(&flt);
            flt.sensor = "p";
            flt.metric = "t";
            flt.since_ms = H0;
            flt.until_ms = H0 + 4 * HOUR;
            st_query *q = reader(f->path);
            char *plan = NULL;
            size_t len = 0;
            FILE *out = open_memstream(&plan, &len);
            assert_non_null(out);
            assert_int_equal(st__query_windows_plan(q, &flt, sizes[j], sources[i], out), 0);
            fclose(out);
            st_query_close(q);
            for (char *line = strtok(plan, "\n"); line != NULL; line = strtok(NULL, "\n")) {
                /* SQLite before 3.36 wrote "SCAN TABLE x". */
                char step[256];
                snprintf(step, sizeof(step), "%s", line);
                if (strncmp(step, "SCAN TABLE ", 11) == 0) {
                    memmove(step + 5, step + 11, strlen(step + 11) + 1);
                }
                for (size_t k = 0; k < sizeof(full_scans) / sizeof(full_scans[0]); k++) {
                    size_t n = strlen(full_scans[k]);
                    if (strncmp(step, full_scans[k], n) == 0 &&
                        (step[n] == '\0' || step[n] == ' ')) {
                        fail_msg("source %zu, window %lld: plan step '%s'", i, (long long)sizes[j],
                                 line);
                    }
                }
            }
            free(plan);
        }
    }
}

static void test_alerts(void **state) {
    fixture *f = *state;
    st_db *db = writer(f->path, 0);
    int64_t s1 = series(db, "p1", "temp"), s2 = series(db, "p2", "temp"), id;
    static const struct {
        int s;
        const char *state;
    } rows[] = {{1, "raised"}, {2, "raised"}, {1, "cleared"}, {2, "cleared"}, {2, "raised"}};
    for (int i = 0; i < 5; i++) {
        st_alert_row r = {.gateway = "gw",
                          .series_id = rows[i].s == 1 ? s1 : s2,
                          .kind = "high",
                          .state = rows[i].state,
                          .severity = "warning",
                          .rule = "hot",
                          .ts_ms = T0 + i * 1000,
                          .value = 31,
                          .threshold = i < 2 ? 30 : NAN,
                          .message = "it's \"hot\""};
        assert_int_equal(st_db_insert_alert(db, &r, &id), 0);
    }
    st_db_close(db);
    st_filter flt;
    st_filter_init(&flt);
    st_result res;
    assert_int_equal(query(f, ALERTS, &flt, ST_FORMAT_CSV, 0, 0, &res), 0);
    assert_int_equal(res.rows, 5);
    assert_non_null(strstr(f->out, "id,sensor,metric,kind,state,severity,ts_ms,ts,value,"
                                   "threshold,message,published,rule\r\n"
                                   "1,p1,temp,high,raised,warning,1700000000000,"
                                   "2023-11-14T22:13:20.000Z,31,30,\"it's \"\"hot\"\"\",0,hot"
                                   "\r\n"));
    assert_int_equal(query(f, ACTIVE, &flt, ST_FORMAT_JSON, 0, 0, &res), 0);
    assert_string_equal(f->out, "[\n{\"id\":5,\"sensor\":\"p2\",\"metric\":\"temp\",\"kind\":"
                                "\"high\",\"state\":\"raised\",\"severity\":\"warning\",\"ts_ms\":"
                                "1700000004000,\"ts\":\"2023-11-14T22:13:24.000Z\",\"value\":31,"
                                "\"threshold\":null,\"message\":\"it's \\\"hot\\\"\","
                                "\"published\":0,\"rule\":\"hot\"}\n]\n");
    flt.newest_first = true;
    flt.sensor = "p1";
    assert_int_equal(query(f, ALERTS, &flt, ST_FORMAT_CSV, 0, 0, &res), 0);
    assert_int_equal(res.rows, 2);
    assert_non_null(strstr(f->out, "\r\n3,p1,"));
    assert_true(strstr(f->out, "\r\n3,p1,") < strstr(f->out, "\r\n1,p1,"));
    assert_int_equal(query(f, ACTIVE, &flt, ST_FORMAT_CSV, 0, 0, &res), 0);
    assert_int_equal(res.rows, 0);
    st_filter_init(&flt);
    flt.since_ms = T0 + 1000;
    flt.until_ms = T0 + 3000;
    assert_int_equal(query(f, ALERTS, &flt, ST_FORMAT_CSV, 0, 0, &res), 0);
    assert_int_equal(res.rows, 2);
}

typedef struct cookie {
    st_db *db;
    int64_t series;
    int writes;
    int commits_ok;
    bool fail;
} cookie;

/* An output that, on every write, commits a reading on the writer connection: the reader is
 * then inside its read transaction, stepping its statement. */
static ssize_t committing_write(void *c_, const char *buf, size_t n) {
    cookie *c = c_;
    (void)buf;
    if (c->fail) {
        return -1;
    }
    c->writes++;
    if (st_db_begin(c->db) == 0 && st_db_insert_reading(c->db, c->series, c->writes, -7) == 0 &&
        st_db_commit(c->db) == 0) {
        c->commits_ok++;
    }
    return (ssize_t)n;
}

/* While a query reads, the writer commits (WAL: no lock between them); the query sees its
 * snapshot only. An open write transaction does not block a query either. */
static void test_concurrent_writer(void **state) {
    fixture *f = *state;
    fill(f->path);
    cookie c = {.db = writer(f->path, 3)}; /* merges while the reader reads */
    c.series = series(c.db, "w", "m");
    st_query *q = reader(f->path);
    FILE *out = fopencookie(&c, "w", (cookie_io_functions_t){.write = committing_write});
    assert_non_null(out);
    setvbuf(out, NULL, _IONBF, 0);
    st_filter flt;
    st_filter_init(&flt);
    st_result res;
    assert_int_equal(st_query_readings(q, &flt, ST_FORMAT_CSV, out, &res), 0);
    assert_int_equal(res.rows, 61);
    assert_true(c.writes >= 61);
    assert_int_equal(c.commits_ok, c.writes);

    assert_int_equal(st_db_begin(c.db), 0);
    assert_int_equal(st_db_insert_reading(c.db, c.series, 2, -8), 0);
    assert_int_equal(st_query_readings(q, &flt, ST_FORMAT_CSV, out, &res), 0);
    assert_int_equal(res.rows, 61 + c.commits_ok);
    assert_int_equal(st_db_rollback(c.db), 0);

    /* A failing output is a write error, not a silent success. */
    c.fail = true;
    assert_int_equal(st_query_alerts(q, &flt, false, ST_FORMAT_JSON, out, &res), ST_EIO);
    assert_non_null(strstr(st_query_errmsg(q), "write: "));
    fclose(out);
    st_query_close(q);
    st_db_close(c.db);
}

static void test_parse_time(void **state) {
    (void)state;
    const int64_t now = T0 + 123;
    static const struct {
        const char *s;
        int64_t ms;
    } good[] = {
        {"now", T0 + 123},
        {"24h", T0 + 123 - 86400000},
        {"30m", T0 + 123 - 1800000},
        {"7d", T0 + 123 - 7 * 86400000LL},
        {"2w", T0 + 123 - 14 * 86400000LL},
        {"1.5h", T0 + 123 - 5400000},
        {"500ms", T0 - 377},
        {"0s", T0 + 123},
        {"2023-11-14T22:13:20Z", T0},
        {"2023-11-14t22:13:20.5z", T0 + 500},
        {"2023-11-14 22:13:20.123456Z", T0 + 123},
        {"2023-11-15T00:13:20.1+02:00", T0 + 100},
        {"2023-11-14T20:13:20-02:00", T0},
        {"2023-11-14T22:13:20-02:00", T0 + 2 * 3600000},
        {"2023-11-14", T0 - 80000000},
        {"2024-02-29", 1709164800000},
        {"1970-01-01T00:00:00Z", 0},
        {"1700000000000", T0},
        {"-1000", -1000},
        {"0", 0},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t t = 42;
        if (st_query_parse_time(good[i].s, now, &t) != 0 || t != good[i].ms) {
            fail_msg("'%s': got %lld, want %lld", good[i].s, (long long)t, (long long)good[i].ms);
        }
    }
    static const char *bad[] = {
        "",
        "x",
        "24H",
        "1h30m",
        "-1h",
        " 24h",
        "+5",
        "1.h",
        ".5h",
        "2023-02-29",
        "2023-13-01",
        "2023-11-14T24:00:00Z",
        "2023-11-14T22:13:20",
        "2023-11-14T22:13:20+2:00",
        "2023-11-14T22:13:20.Z",
        "2023-11-14T22:13Z",
        "99999999999999999999",
        "253402300800000",
        "10000-01-01",
        "1e3",
        "9999999999999999d",
        "9999999w",
        "1.0000000001s",
        "0x10",
        "12 ",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t t = 42;
        if (st_query_parse_time(bad[i], now, &t) != -1 || t != 42) {
            fail_msg("'%s' was accepted (%lld)", bad[i], (long long)t);
        }
    }
    int64_t t = 42;
    assert_int_equal(st_query_parse_time(NULL, now, &t), -1);
    assert_int_equal(st_query_parse_time("9999-12-31T23:59:59.999Z", now, &t), 0);
    assert_int_equal(t, ST_QUERY_TIME_MAX_MS);
    assert_int_equal(st_query_parse_time("0000-01-01", now, &t), 0);
    assert_int_equal(t, ST_QUERY_TIME_MIN_MS);
}

static void test_parse_duration(void **state) {
    (void)state;
    int64_t ms = 42;
    assert_int_equal(st_query_parse_duration("1h", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(st_query_parse_duration("15m", &ms), 0);
    assert_int_equal(ms, 900000);
    assert_int_equal(st_query_parse_duration("1ms", &ms), 0);
    assert_int_equal(ms, 1);
    assert_int_equal(st_query_parse_duration("0.25s", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(st_query_parse_duration("3650d", &ms), 0);
    assert_int_equal(ms, ST_QUERY_WINDOW_MAX_MS);
    static const char *bad[] = {"", "0s", "0.4ms", "3651d", "1", "h", "-1h", "1 h", "1hour", NULL};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ms = 42;
        assert_int_equal(st_query_parse_duration(bad[i], &ms), -1);
        assert_int_equal(ms, 42);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readings_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_windows_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_windows_summaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_windows_auto_tiers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_windows_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_windows_finer_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_windows_finer_deep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_windows_plans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alerts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_duration, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
