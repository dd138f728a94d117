/* Unit tests of the window queries of storage/st_query (st_query_windows): every source, and
 * auto over thinned history (stored summaries of the size, finer ones, raw readings). Real
 * SQLite files in a temporary directory per test, written with st_db, read with st_query. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st_db.h"
#include "st_query.h"
#include "st_query_internal.h"
#include "test_st_query.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_windows_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_windows_summaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_windows_auto_tiers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_windows_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_windows_finer_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_windows_finer_deep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_windows_plans, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
