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

#include "test_st_query.h"

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
        cmocka_unit_test_setup_teardown(test_alerts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_duration, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
