/* Unit tests of storage/st_retain: real SQLite files in a temporary directory per test; every
 * expected figure is computed here from the rows the test wrote. `test_st_retain --bench [N]`
 * times one pass over N (default 1000000) old readings instead (docs/history.md quotes it). */
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
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "st_db.h"
#include "st_retain.h"
#include "test_rng.h"

#define MIN_MS  60000LL
#define HOUR_MS 3600000LL
#define DAY_MS  86400000LL
/* 2023-11-14T00:00:00Z: a whole day, hour and minute. */
#define T0 1699920000000LL

#include "test_st_fixture.h"

static st_db *open_db(const char *path) {
    st_db *db = NULL;
    char err[256] = "";
    /* No automatic merge: the tests decide what is staged. */
    st_db_opts o = {.merge_rows = 100000000};
    int rc = st_db_open(&db, path, &o, err, sizeof(err));
    if (rc != 0) {
        print_error("open %s: %d %s\n", path, rc, err);
    }
    assert_int_equal(rc, 0);
    return db;
}

static st_retain *retain_new(st_db *db, const st_retain_cfg *cfg) {
    st_retain *r = NULL;
    char err[256] = "";
    int rc = st_retain_new(&r, db, cfg, err, sizeof(err));
    if (rc != 0) {
        print_error("st_retain_new: %d %s\n", rc, err);
    }
    assert_int_equal(rc, 0);
    return r;
}

static void pass_ok(st_retain *r, int64_t now, st_retain_counts *c) {
    int rc = st_retain_pass(r, now, c);
    if (rc != 0) {
        print_error("pass: %d %s\n", rc, st_retain_errmsg(r));
    }
    assert_int_equal(rc, 0);
    assert_false(st_retain_running(r));
}

static int64_t q_int(st_db *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int64_t q_int(st_db *db, const char *fmt, ...) {
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(st_db_handle(db), sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    return v;
}

/* ---- expected figures, computed independently of the module ---- */

typedef struct reading {
    int64_t ts;
    double v;
} reading;

typedef struct expect {
    int64_t count;
    double min, max, mean, stddev, first, last, p50, p95;
} expect;

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy's default quantile (linear, rank (n - 1) p) of sorted values. */
static double quant(const double *s, size_t n, double p) {
    double h = (double)(n - 1) * p;
    size_t lo = (size_t)floor(h);
    if (lo + 1 >= n) {
        return s[n - 1];
    }
    return s[lo] + (h - (double)lo) * (s[lo + 1] - s[lo]);
}

/* The summary of the readings with ts in [lo, hi), two-pass mean and variance. */
static expect summarise(const reading *rs, size_t n, int64_t lo, int64_t hi) {
    expect e = {0};
    double *v = calloc(n, sizeof(*v));
    assert_non_null(v);
    int64_t t_first = INT64_MAX, t_last = INT64_MIN;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (rs[i].ts >= lo && rs[i].ts < hi) {
            v[e.count++] = rs[i].v;
            sum += rs[i].v;
            if (rs[i].ts < t_first) {
                t_first = rs[i].ts;
                e.first = rs[i].v;
            }
            if (rs[i].ts > t_last) {
                t_last = rs[i].ts;
                e.last = rs[i].v;
            }
        }
    }
    if (e.count > 0) {
        e.mean = sum / (double)e.count;
        double ss = 0;
        for (int64_t i = 0; i < e.count; i++) {
            ss += (v[i] - e.mean) * (v[i] - e.mean);
        }
        e.stddev = e.count > 1 ? sqrt(ss / (double)(e.count - 1)) : 0.0;
        qsort(v, (size_t)e.count, sizeof(*v), cmp_dbl);
        e.min = v[0];
        e.max = v[e.count - 1];
        e.p50 = quant(v, (size_t)e.count, 0.5);
        e.p95 = quant(v, (size_t)e.count, 0.95);
    }
    free(v);
    return e;
}

static void assert_close(double got, double want) {
    if (fabs(got - want) > 1e-9 * fmax(1.0, fabs(want))) {
        print_error("got %.17g, want %.17g\n", got, want);
        fail();
    }
}

/* Compares the summary row (series, window, start) with e. */
static void assert_summary(st_db *db, int64_t sid, int64_t window, int64_t start, const expect *e) {
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(st_db_handle(db),
                           "SELECT count, min, max, mean, stddev, first, last, p50,"
                           " p95, (SELECT count(*) FROM summaries WHERE series_id = ?1"
                           " AND window_ms = ?2 AND start_ms = ?3) FROM summaries"
                           " WHERE series_id = ?1 AND window_ms = ?2 AND start_ms = ?3",
                           -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_int64(st, 2, window);
    sqlite3_bind_int64(st, 3, start);
    if (sqlite3_step(st) != SQLITE_ROW) {
        print_error("no summary of window %lld at %lld\n", (long long)window, (long long)start);
        fail();
    }
    assert_int_equal(sqlite3_column_int64(st, 9), 1); /* exactly one row */
    assert_int_equal(sqlite3_column_int64(st, 0), e->count);
    const double want[8] = {e->min, e->max, e->mean, e->stddev, e->first, e->last, e->p50, e->p95};
    for (int k = 0; k < 8; k++) {
        assert_close(sqlite3_column_double(st, k + 1), want[k]);
    }
    sqlite3_finalize(st);
}

static void insert_readings(st_db *db, int64_t sid, const reading *rs, size_t n) {
    assert_int_equal(st_db_begin(db), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(st_db_insert_reading(db, sid, rs[i].ts, rs[i].v), 0);
    }
    assert_int_equal(st_db_commit(db), 0);
}

static void insert_summary(st_db *db, int64_t sid, int64_t window, int64_t start, const expect *e) {
    an_window_summary w = {.window_ms = window,
                           .start_ms = start,
                           .end_ms = start + window,
                           .count = (uint32_t)e->count,
                           .min = e->min,
                           .max = e->max,
                           .mean = e->mean,
                           .stddev = e->stddev,
                           .first = e->first,
                           .last = e->last,
                           .p50 = e->p50,
                           .p95 = e->p95};
    assert_int_equal(st_db_insert_summary(db, sid, &w), 0);
}

static const st_retain_cfg base_cfg = {.batch_rows = 2000};

/* ---- raw readings ---- */

/* Readings every 7 s (in shuffled order, some staged and some merged) over 3 hours; raw kept
 * 1 h, downsampled into 1-minute summaries. Exactly the readings below the aligned cutoff go,
 * each of their minutes gets the summary computed here, a minute that had a summary keeps it,
 * and a second series with only recent readings is untouched. */
static void test_raw_downsampled(void **state) {
    fixture *f = *state;
    st_db *db = open_db(f->path);
    int64_t s1, s2;
    assert_int_equal(st_db_series_id(db, "p1", "temp", &s1), 0);
    assert_int_equal(st_db_series_id(db, "p2", "temp", &s2), 0);
    enum { N = 3 * 3600 / 7 };
    reading *rs = calloc(N, sizeof(*rs));
    assert_non_null(rs);
    rng_seed(7);
    for (int i = 0; i < N; i++) {
        rs[i] = (reading){T0 + (int64_t)i * 7000, 20 + 5 * gauss()};
    }
    /* Two readings on one timestamp in one minute would make first/last ambiguous: there are
     * none (7 s apart). Shuffle so that ts order is not insertion order. */
    for (int i = N - 1; i > 0; i--) {
        int j = (int)(urand() * (i + 1));
        reading t = rs[i];
        rs[i] = rs[j];
        rs[j] = t;
    }
    insert_readings(db, s1, rs, N / 2);
    assert_int_equal(st_db_merge(db), 0);
    insert_readings(db, s1, rs + N / 2, N - N / 2); /* staged, not merged */
    reading recent[3] = {{T0 + 3 * HOUR_MS, 1}, {T0 + 3 * HOUR_MS + 1, 2}, {T0 + 2 * HOUR_MS, 3}};
    insert_readings(db, s2, recent, 3);
    /* The live windows already summarised minute 10: that row stays as it is. */
    expect live = {.count = 1,
                   .min = -1,
                   .max = -1,
                   .mean = -1,
                   .first = -1,
                   .last = -1,
                   .p50 = -1,
                   .p95 = -1};
    assert_int_equal(st_db_begin(db), 0);
    insert_summary(db, s1, MIN_MS, T0 + 10 * MIN_MS, &live);
    assert_int_equal(st_db_commit(db), 0);

    st_retain_cfg cfg = base_cfg;
    cfg.raw_ms = HOUR_MS;
    cfg.downsample_ms = MIN_MS;
    st_retain *r = retain_new(db, &cfg);
    const int64_t now = T0 + 3 * HOUR_MS + 25 * 1000; /* cutoff: T0 + 2h + 25 s -> T0 + 2h */
    const int64_t cut = T0 + 2 * HOUR_MS;
    int64_t due = 0;
    for (int i = 0; i < N; i++) {
        due += rs[i].ts < cut;
    }
    st_retain_counts c = {0};
    pass_ok(r, now, &c);

    assert_int_equal(q_int(db, "SELECT count(*) FROM readings_recent"), 0); /* merged first */
    assert_int_equal(q_int(db,
                           "SELECT count(*) FROM v_readings WHERE sensor = 'p1' AND"
                           " ts_ms < %lld",
                           (long long)cut),
                     0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM v_readings WHERE sensor = 'p1'"), N - due);
    assert_int_equal(q_int(db, "SELECT count(*) FROM v_readings WHERE sensor = 'p2'"), 3);
    assert_int_equal((int64_t)c.raw_deleted, due);
    /* 120 minutes, one of which had its summary already. */
    assert_int_equal(c.downsampled, 119);
    assert_int_equal(
        q_int(db, "SELECT count(*) FROM summaries WHERE series_id = %lld", (long long)s1), 120);
    for (int64_t m = 0; m < 120; m++) {
        int64_t start = T0 + m * MIN_MS;
        expect e = m == 10 ? live : summarise(rs, N, start, start + MIN_MS);
        assert_summary(db, s1, MIN_MS, start, &e);
    }
    assert_int_equal(c.summaries_deleted + c.predictions_deleted + c.alerts_deleted, 0);

    /* A second pass at the same time finds nothing more to do. */
    st_retain_counts c2 = {0};
    pass_ok(r, now, &c2);
    assert_int_equal(c2.raw_deleted + c2.downsampled + c2.summaries_deleted, 0);
    st_retain_free(r);
    st_db_close(db);
    free(rs);
}

/* Without downsampling, the cutoff is exactly now - raw, not rounded. */
static void test_raw_plain_cutoff(void **state) {
    fixture *f = *state;
    st_db *db = open_db(f->path);
    int64_t sid;
    assert_int_equal(st_db_series_id(db, "p1", "temp", &sid), 0);
    reading rs[1000];
    for (int i = 0; i < 1000; i++) {
        rs[i] = (reading){T0 + i * 1000LL, i};
    }
    insert_readings(db, sid, rs, 1000);
    assert_int_equal(st_db_merge(db), 0);
    st_retain_cfg cfg = base_cfg;
    cfg.raw_ms = 600 * 1000;
    cfg.batch_rows = 64;
    st_retain *r = retain_new(db, &cfg);
    st_retain_counts c = {0};
    /* now - raw = T0 + 123.5 s: readings 0..123 go. */
    pass_ok(r, T0 + 723500, &c);
    assert_int_equal(c.raw_deleted, 124);
    assert_int_equal(c.downsampled, 0);
    assert_int_equal(q_int(db, "SELECT min(ts_ms) FROM readings"), T0 + 124000);
    assert_int_equal(q_int(db, "SELECT count(*) FROM readings"), 876);
    assert_int_equal(q_int(db, "SELECT count(*) FROM summaries"), 0);
    st_retain_free(r);
    st_db_close(db);
}

/* ---- roll-up ---- */

/* Three hours of 1-minute summaries made from known readings; 1-minute summaries kept 1 h and
 * rolled up into 1 h. The two old hours become one 1-hour row each, whose count, mean, stddev,
 * min, max, first and last equal those of the readings themselves; p50 and p95 are the
 * count-weighted means of the minutes'. A hopping row and a repeated row are deleted without
 * counting; an hour that had its 1-hour row keeps it. */
static void test_rollup(void **state) {
    fixture *f = *state;
    st_db *db = open_db(f->path);
    int64_t sid;
    assert_int_equal(st_db_series_id(db, "p1", "temp", &sid), 0);
    enum { N = 4 * 3600 / 5 };
    reading *rs = calloc(N, sizeof(*rs));
    assert_non_null(rs);
    rng_seed(11);
    for (int i = 0; i < N; i++) {
        /* Uneven counts per minute: a reading every 5 s, a third of them missing. */
        rs[i] = (reading){T0 + (int64_t)i * 5000, urand() < 0.33 ? NAN : 100 * urand()};
    }
    size_t n = 0;
    for (int i = 0; i < N; i++) {
        if (!isnan(rs[i].v)) {
            rs[n++] = rs[i];
        }
    }
    expect minute[4 * 60];
    assert_int_equal(st_db_begin(db), 0);
    for (int m = 0; m < 4 * 60; m++) {
        int64_t start = T0 + m * MIN_MS;
        minute[m] = summarise(rs, n, start, start + MIN_MS);
        assert_true(minute[m].count > 0);
        insert_summary(db, sid, MIN_MS, start, &minute[m]);
        if (m == 5) {
            insert_summary(db, sid, MIN_MS, start, &minute[m]); /* a size configured twice */
        }
    }
    expect junk = {.count = 1000,
                   .min = -1e6,
                   .max = 1e6,
                   .mean = 1e6,
                   .first = 1e6,
                   .last = 1e6,
                   .p50 = 1e6,
                   .p95 = 1e6};
    insert_summary(db, sid, MIN_MS, T0 + 30 * 1000, &junk); /* hopping: starts mid-minute */
    expect live_hour1 = {.count = 2,
                         .min = 7,
                         .max = 8,
                         .mean = 7.5,
                         .first = 7,
                         .last = 8,
                         .p50 = 7.5,
                         .p95 = 7.95};
    insert_summary(db, sid, HOUR_MS, T0 + HOUR_MS, &live_hour1);
    assert_int_equal(st_db_commit(db), 0);

    st_retain_cfg cfg = base_cfg;
    cfg.windows[0] = (st_retain_window){MIN_MS, HOUR_MS, HOUR_MS};
    cfg.windows[1] = (st_retain_window){HOUR_MS, 0, 0};
    cfg.n_windows = 2;
    cfg.batch_rows = 50; /* several steps per hour */
    st_retain *r = retain_new(db, &cfg);
    st_retain_counts c = {0};
    /* now - keep = T0 + 2h 59m -> rounded down to T0 + 2h. */
    pass_ok(r, T0 + 3 * HOUR_MS + 59 * MIN_MS, &c);
    assert_int_equal(c.rolled_up, 1); /* hour 0; hour 1 had its row */
    assert_int_equal(c.summaries_deleted, 120 + 2);
    assert_int_equal(
        q_int(db, "SELECT count(*) FROM summaries WHERE window_ms = %lld", (long long)MIN_MS), 120);
    assert_int_equal(
        q_int(db, "SELECT min(start_ms) FROM summaries WHERE window_ms = %lld", (long long)MIN_MS),
        T0 + 2 * HOUR_MS);
    expect h0 = summarise(rs, n, T0, T0 + HOUR_MS);
    double p50 = 0, p95 = 0;
    for (int m = 0; m < 60; m++) {
        p50 += minute[m].p50 * (double)minute[m].count;
        p95 += minute[m].p95 * (double)minute[m].count;
    }
    h0.p50 = p50 / (double)h0.count;
    h0.p95 = p95 / (double)h0.count;
    assert_summary(db, sid, HOUR_MS, T0, &h0);
    assert_summary(db, sid, HOUR_MS, T0 + HOUR_MS, &live_hour1);
    assert_int_equal(
        q_int(db, "SELECT count(*) FROM summaries WHERE window_ms = %lld", (long long)HOUR_MS), 2);
    st_retain_free(r);
    st_db_close(db);
    free(rs);
}

/* A listed size with keep 0 stays forever; an unlisted size follows other_summaries. */
static void test_other_and_forever(void **state) {
    fixture *f = *state;
    st_db *db = open_db(f->path);
    int64_t sid;
    assert_int_equal(st_db_series_id(db, "p1", "temp", &sid), 0);
    expect e = {
        .count = 1, .min = 1, .max = 1, .mean = 1, .first = 1, .last = 1, .p50 = 1, .p95 = 1};
    assert_int_equal(st_db_begin(db), 0);
    for (int i = 0; i < 100; i++) {
        insert_summary(db, sid, 10000, T0 + i * 10000LL, &e);
        insert_summary(db, sid, MIN_MS, T0 + i * MIN_MS, &e);
    }
    assert_int_equal(st_db_commit(db), 0);
    st_retain_cfg cfg = base_cfg;
    cfg.windows[0] = (st_retain_window){MIN_MS, 0, 0};
    cfg.n_windows = 1;
    cfg.other_summaries_ms = 500 * 1000;
    cfg.batch_rows = 7;
    st_retain *r = retain_new(db, &cfg);
    st_retain_counts c = {0};
    pass_ok(r, T0 + 1000 * 1000 + 1, &c); /* 10 s windows starting before T0 + 500.001 s go */
    assert_int_equal(c.summaries_deleted, 51);
    assert_int_equal(q_int(db, "SELECT count(*) FROM summaries WHERE window_ms = 10000"), 49);
    assert_int_equal(q_int(db, "SELECT min(start_ms) FROM summaries WHERE window_ms = 10000"),
                     T0 + 510000);
    assert_int_equal(q_int(db, "SELECT count(*) FROM summaries WHERE window_ms = 60000"), 100);
    st_retain_free(r);
    st_db_close(db);
}

/* ---- predictions and alerts ---- */

static void test_predictions(void **state) {
    fixture *f = *state;
    st_db *db = open_db(f->path);
    int64_t s1, s2;
    assert_int_equal(st_db_series_id(db, "p1", "temp", &s1), 0);
    assert_int_equal(st_db_series_id(db, "p2", "temp", &s2), 0);
    assert_int_equal(st_db_begin(db), 0);
    for (int i = 0; i < 300; i++) {
        assert_int_equal(
            st_db_insert_prediction(db, i % 2 ? s1 : s2, T0 + i * MIN_MS, 1, 2, 3, 0, 0, 0), 0);
    }
    assert_int_equal(st_db_commit(db), 0);
    st_retain_cfg cfg = base_cfg;
    cfg.predictions_ms = DAY_MS;
    cfg.batch_rows = 10;
    st_retain *r = retain_new(db, &cfg);
    st_retain_counts c = {0};
    pass_ok(r, T0 + DAY_MS + 100 * MIN_MS, &c); /* i < 100 go */
    assert_int_equal(c.predictions_deleted, 100);
    assert_int_equal(q_int(db, "SELECT count(*) FROM predictions"), 200);
    assert_int_equal(q_int(db, "SELECT min(ts_ms) FROM predictions"), T0 + 100 * MIN_MS);
    st_retain_free(r);
    st_db_close(db);
}

static char *active_alerts(st_db *db) {
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(st_db_handle(db),
                                        "SELECT group_concat(id || ':' || state, ' ') FROM"
                                        " (SELECT * FROM v_active_alerts ORDER BY id)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const char *t = (const char *)sqlite3_column_text(st, 0);
    char *copy = strdup(t != NULL ? t : "");
    sqlite3_finalize(st);
    return copy;
}

/* Old published alerts go, except the newest of each (series, kind, rule); unpublished ones
 * and recent ones stay; v_active_alerts does not change. */
static void test_alerts(void **state) {
    fixture *f = *state;
    st_db *db = open_db(f->path);
    int64_t s1, s2, id;
    assert_int_equal(st_db_series_id(db, "p1", "temp", &s1), 0);
    assert_int_equal(st_db_series_id(db, "p2", "temp", &s2), 0);
    static const struct {
        int series;
        const char *kind, *rule, *state;
        int64_t age_days;
        int published;
        bool gone;
    } rows[] = {
        {1, "high", "hot", "raised", 400, 1, true},     /* 1 */
        {1, "high", "hot", "cleared", 399, 1, true},    /* 2 */
        {1, "high", "hot", "raised", 398, 1, false},    /* 3: newest of its group, active */
        {1, "low", "cold", "raised", 400, 1, true},     /* 4 */
        {1, "low", "cold", "cleared", 400, 1, false},   /* 5: newest of its group */
        {2, "high", "hot", "raised", 500, 0, false},    /* 6: unpublished */
        {2, "high", "hot", "cleared", 500, 1, true},    /* 7 */
        {2, "high", "hot", "raised", 10, 1, false},     /* 8: published, not old enough */
        {2, "high", "hot", "cleared", 400, 1, false},   /* 9: newest (ts stepped back) */
        {2, "stale", "quiet", "raised", 365, 1, false}, /* 10: ts = now - 365 d exactly */
        {2, "stale", "quiet", "cleared", 1, 0, false},  /* 11 */
    };
    const size_t n = sizeof(rows) / sizeof(rows[0]);
    const int64_t now = T0 + 600 * DAY_MS;
    assert_int_equal(st_db_begin(db), 0);
    for (size_t i = 0; i < n; i++) {
        st_alert_row a = {.gateway = "g",
                          .series_id = rows[i].series == 1 ? s1 : s2,
                          .kind = rows[i].kind,
                          .state = rows[i].state,
                          .severity = "warning",
                          .rule = rows[i].rule,
                          .ts_ms = now - rows[i].age_days * DAY_MS,
                          .value = 1,
                          .threshold = 2,
                          .message = "m",
                          .detail = NAN};
        assert_int_equal(st_db_insert_alert(db, &a, &id), 0);
        assert_int_equal(id, (int64_t)i + 1);
    }
    assert_int_equal(st_db_commit(db), 0);
    for (size_t i = 0; i < n; i++) {
        if (rows[i].published) {
            assert_int_equal(st_db_mark_published(db, (int64_t)i + 1), 0);
        }
    }
    char *before = active_alerts(db);
    st_retain_cfg cfg = base_cfg;
    cfg.alerts_ms = 365 * DAY_MS;
    cfg.batch_rows = 3;
    st_retain *r = retain_new(db, &cfg);
    st_retain_counts c = {0};
    pass_ok(r, now, &c);
    char *after = active_alerts(db);
    assert_string_equal(before, after);
    assert_string_equal(after, "3:raised");
    int64_t gone = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t left = q_int(db, "SELECT count(*) FROM alerts WHERE id = %zu", i + 1);
        if (left != (rows[i].gone ? 0 : 1)) {
            print_error("alert %zu: %lld rows left\n", i + 1, (long long)left);
            fail();
        }
        gone += rows[i].gone;
    }
    assert_int_equal((int64_t)c.alerts_deleted, gone);
    free(before);
    free(after);
    st_retain_free(r);
    st_db_close(db);
}

/* ---- batches ---- */

/* Each step stays within batch_rows plus one downsample window (and each step is one
 * transaction): 1000 readings at 1 s, 10 s windows, 50 rows per step. */
static void test_batches_bounded(void **state) {
    fixture *f = *state;
    st_db *db = open_db(f->path);
    int64_t sid;
    assert_int_equal(st_db_series_id(db, "p1", "temp", &sid), 0);
    reading rs[1000];
    for (int i = 0; i < 1000; i++) {
        rs[i] = (reading){T0 + i * 1000LL, i % 17};
    }
    insert_readings(db, sid, rs, 1000);
    assert_int_equal(st_db_merge(db), 0);
    for (int ds = 0; ds <= 1; ds++) {
        st_retain_cfg cfg = base_cfg;
        cfg.raw_ms = 1000 * 1000;
        cfg.downsample_ms = ds ? 10000 : 0;
        cfg.batch_rows = 50;
        st_retain *r = retain_new(db, &cfg);
        /* First round without downsampling: 400 rows (cutoff T0 + 400 s); then 10 s windows up
         * to T0 + 800 s. */
        int64_t now = T0 + (ds ? 1800 : 1400) * 1000LL;
        int steps = 0, rc;
        uint64_t total = 0;
        do {
            st_retain_counts c = {0};
            rc = st_retain_step(r, now, &c);
            assert_true(rc == 0 || rc == 1);
            assert_int_equal(c.steps, 1);
            assert_true(c.raw_deleted <= (uint64_t)(50 + (ds ? 9 : 0)));
            if (ds) {
                assert_int_equal(c.raw_deleted, c.downsampled * 10);
            }
            assert_int_equal(st_retain_running(r), rc == 1);
            total += c.raw_deleted;
            steps++;
        } while (rc == 1);
        assert_int_equal(total, 400);
        assert_true(steps >= 8);
        assert_int_equal(q_int(db, "SELECT min(ts_ms) FROM readings"),
                         T0 + (ds ? 800 : 400) * 1000LL);
        assert_int_equal(q_int(db, "SELECT count(*) FROM summaries"), ds ? 40 : 0);
        st_retain_free(r);
    }
    st_db_close(db);
}

/* ---- errors ---- */

static void test_errors(void **state) {
    fixture *f = *state;
    st_db *db = open_db(f->path);
    st_retain *r = NULL;
    char err[256];
    st_retain_cfg cfg = base_cfg;
    cfg.batch_rows = 0;
    assert_int_equal(st_retain_new(&r, db, &cfg, err, sizeof(err)), ST_EIO);
    assert_non_null(strstr(err, "batch_rows"));
    cfg = base_cfg;
    cfg.windows[0] = (st_retain_window){MIN_MS, DAY_MS, 90000};
    cfg.n_windows = 1;
    assert_int_equal(st_retain_new(&r, db, &cfg, err, sizeof(err)), ST_EIO);
    assert_non_null(strstr(err, "multiple"));
    cfg.windows[0].into_ms = HOUR_MS;
    cfg.windows[1] = (st_retain_window){MIN_MS, DAY_MS, 0};
    cfg.n_windows = 2;
    assert_int_equal(st_retain_new(&r, db, &cfg, err, sizeof(err)), ST_EIO);
    assert_non_null(strstr(err, "twice"));
    assert_null(r);

    cfg = base_cfg;
    cfg.raw_ms = DAY_MS;
    r = retain_new(db, &cfg);
    assert_int_equal(st_db_begin(db), 0);
    assert_int_equal(st_retain_step(r, T0, NULL), ST_EIO);
    assert_non_null(strstr(st_retain_errmsg(r), "inside a transaction"));
    assert_int_equal(st_db_rollback(db), 0);
    /* Another connection holds the write lock: the step fails and the pass is abandoned. */
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(st_db_exec(db, "PRAGMA busy_timeout = 10"), 0);
    assert_int_equal(st_retain_step(r, T0, NULL), ST_EBUSY);
    assert_false(st_retain_running(r));
    assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    pass_ok(r, T0, NULL);
    st_retain_free(r);
    st_retain_free(NULL);
    st_db_close(db);
}

/* ---- measurement ---- */

static double secs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One pass over n old readings of 100 series (1 per 10 s each), 1-minute downsampling, the
 * default batch of 2000 rows. Prints the time and the longest step. */
static int bench(long n) {
    char dir[] = "/tmp/test_st_retain.bench.XXXXXX";
    if (mkdtemp(dir) == NULL) {
        return 1;
    }
    char path[128];
    snprintf(path, sizeof(path), "%s/iotgw.db", dir);
    st_db *db = NULL;
    char err[256];
    st_db_opts o = {.merge_rows = 100000000};
    if (st_db_open(&db, path, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int64_t ids[100];
    for (int s = 0; s < 100; s++) {
        char name[16];
        snprintf(name, sizeof(name), "s%02d", s);
        st_db_series_id(db, name, "v", &ids[s]);
    }
    rng_seed(1);
    st_db_begin(db);
    for (long i = 0; i < n; i++) {
        st_db_insert_reading(db, ids[i % 100], T0 + (i / 100) * 10000, 20 + gauss());
    }
    st_db_commit(db);
    st_db_merge(db);
    st_retain_cfg cfg = {.raw_ms = DAY_MS, .downsample_ms = MIN_MS, .batch_rows = 2000};
    st_retain *r = NULL;
    if (st_retain_new(&r, db, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    st_retain_counts c = {0};
    size_t n_steps = 0, cap = 1024;
    double *step_s = malloc(cap * sizeof(*step_s));
    double t0 = secs();
    int rc;
    do {
        double s0 = secs();
        rc = st_retain_step(r, T0 + (n / 100) * 10000 + 2 * DAY_MS, &c);
        if (n_steps == cap) {
            cap *= 2;
            step_s = realloc(step_s, cap * sizeof(*step_s));
        }
        if (step_s == NULL) {
            return 1;
        }
        step_s[n_steps++] = secs() - s0;
    } while (rc == 1);
    double t = secs() - t0;
    qsort(step_s, n_steps, sizeof(*step_s), cmp_dbl);
    printf("retention pass: %llu readings deleted, %llu summaries made, %llu steps, %.2f s "
           "(%.0f readings/s); step median %.1f ms, p99 %.1f ms, max %.1f ms; rc %d\n",
           (unsigned long long)c.raw_deleted, (unsigned long long)c.downsampled,
           (unsigned long long)c.steps, t, (double)c.raw_deleted / t, step_s[n_steps / 2] * 1000,
           step_s[n_steps * 99 / 100] * 1000, step_s[n_steps - 1] * 1000, rc);
    free(step_s);
    st_retain_free(r);
    st_db_close(db);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 && rc == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
        return bench(argc > 2 ? atol(argv[2]) : 1000000);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_raw_downsampled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_plain_cutoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_and_forever, setup, teardown),
        cmocka_unit_test_setup_teardown(test_predictions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alerts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
