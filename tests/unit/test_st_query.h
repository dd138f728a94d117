/* Shared by the unit tests of storage/st_query (test_st_query.c, test_st_query_windows.c):
 * a writer and a reader on the fixture's file, and one query into the fixture's buffer.
 * Include after <cmocka.h>, st_db.h and st_query.h. */
#ifndef TEST_ST_QUERY_H
#define TEST_ST_QUERY_H

#define T0 1700000000000LL /* 2023-11-14T22:13:20Z, a multiple of 10 s */

#include "test_st_fixture.h"

static inline st_db *writer(const char *path, int merge_rows) {
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

static inline int64_t series(st_db *db, const char *sensor, const char *metric) {
    int64_t id;
    assert_int_equal(st_db_series_id(db, sensor, metric, &id), 0);
    return id;
}

static inline st_query *reader(const char *path) {
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
static inline int query(fixture *f, enum what w, const st_filter *flt, st_format fmt,
                        int64_t window, st_source src, st_result *res) {
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

#endif
