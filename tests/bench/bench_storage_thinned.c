/* The thinned-history part of bench_storage (see bench_storage.c): `iotgw query --window` over
 * what retention leaves with its defaults, 1-minute summaries for the older days and raw
 * readings (one every 10 s) for the last ones, through st_query as `iotgw query` runs it. */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench_storage.h"
#include "st_db.h"
#include "st_query.h"
#include "st_query_internal.h"

#define END_MS      1717200000000LL /* 2024-06-01T00:00:00Z: the newest data ends here */
#define MIN_MS      60000LL
#define HOUR_MS     3600000LL
#define RAW_STEP_MS 10000LL

static int sql_fail(sqlite3 *h, const char *what) {
    fprintf(stderr, "bench_storage: thinned: %s: %s\n", what, sqlite3_errmsg(h));
    return -1;
}

/* A value with two decimals in [0, 100). */
static double value(uint64_t *rng) {
    return (double)(bs_splitmix(rng) % 10000) / 100.0;
}

/* Series s000000... (metric temp) through st_db (schema, series), then their rows straight
 * into the tables, in key order: 1-minute summaries of 6 readings from END - days to
 * END - raw_days, raw readings from there to END. */
static int build(const char *path, int64_t n_series, int64_t days, int64_t raw_days) {
    st_db *db = NULL;
    char err[256];
    st_db_opts o = {0};
    if (st_db_open(&db, path, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_storage: thinned: %s\n", err);
        return -1;
    }
    for (int64_t i = 0; i < n_series; i++) {
        char name[32];
        int64_t id;
        snprintf(name, sizeof(name), "s%06" PRId64, i);
        if (st_db_series_id(db, name, "temp", &id) != 0) {
            st_db_close(db);
            return -1;
        }
    }
    st_db_close(db);
    sqlite3 *h = NULL;
    sqlite3_stmt *sum = NULL, *raw = NULL;
    int ret = -1;
    if (sqlite3_open(path, &h) != SQLITE_OK ||
        sqlite3_exec(h, "PRAGMA synchronous = OFF; PRAGMA cache_size = -65536", NULL, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(h,
                           "INSERT INTO summaries(series_id, window_ms, start_ms, count, min, max,"
                           " mean, stddev, first, last, p50, p95)"
                           " VALUES(?1, 60000, ?2, 6, ?3, ?4, ?5, 1.0, ?6, ?7, ?5, ?4)",
                           -1, &sum, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h, "INSERT INTO readings(series_id, ts_ms, value) VALUES(?1, ?2, ?3)",
                           -1, &raw, NULL) != SQLITE_OK) {
        sql_fail(h, "prepare");
        goto out;
    }
    uint64_t rng = 42;
    int64_t cut = END_MS - raw_days * DAY_MS;
    for (int64_t id = 1; id <= n_series; id++) {
        if (sqlite3_exec(h, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
            sql_fail(h, "begin");
            goto out;
        }
        for (int64_t t = END_MS - days * DAY_MS; t < cut; t += MIN_MS) {
            double a = value(&rng), b = value(&rng), lo = fmin(a, b), hi = fmax(a, b);
            sqlite3_bind_int64(sum, 1, id);
            sqlite3_bind_int64(sum, 2, t);
            sqlite3_bind_double(sum, 3, lo);
            sqlite3_bind_double(sum, 4, hi);
            sqlite3_bind_double(sum, 5, (lo + hi) / 2);
            sqlite3_bind_double(sum, 6, lo);
            sqlite3_bind_double(sum, 7, hi);
            if (sqlite3_step(sum) != SQLITE_DONE) {
                sql_fail(h, "insert summary");
                goto out;
            }
            sqlite3_reset(sum);
        }
        for (int64_t t = cut + id * 7 % RAW_STEP_MS; t < END_MS; t += RAW_STEP_MS) {
            sqlite3_bind_int64(raw, 1, id);
            sqlite3_bind_int64(raw, 2, t);
            sqlite3_bind_double(raw, 3, value(&rng));
            if (sqlite3_step(raw) != SQLITE_DONE) {
                sql_fail(h, "insert reading");
                goto out;
            }
            sqlite3_reset(raw);
        }
        if (sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            sql_fail(h, "commit");
            goto out;
        }
    }
    if (sqlite3_exec(h, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK) {
        sql_fail(h, "checkpoint");
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(sum);
    sqlite3_finalize(raw);
    sqlite3_close(h);
    return ret;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum { K_HOURS, K_DAYS, K_HOURS_RAW, K_MINUTES, K__COUNT };

static const struct {
    const char *name;
    int64_t window_ms;
    st_source src;
    bool last_day;
} kinds[K__COUNT] = {
    [K_HOURS] = {"--window 1h, all days (auto)", HOUR_MS, ST_SOURCE_AUTO, false},
    [K_DAYS] = {"--window 1d, all days (auto)", DAY_MS, ST_SOURCE_AUTO, false},
    [K_HOURS_RAW] = {"--window 1h, all days (raw: the raw days only)", HOUR_MS, ST_SOURCE_RAW,
                     false},
    [K_MINUTES] = {"--window 1m, last 24 h (auto: raw readings)", MIN_MS, ST_SOURCE_AUTO, true},
};

/* One query as `iotgw query` runs it: open, the windows written as CSV, close. */
static int run_query(const char *path, int k, const char *sensor, int64_t since, FILE *devnull,
                     bool plan, st_result *res) {
    st_query *q = NULL;
    char err[512];
    if (st_query_open(&q, path, 0, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_storage: thinned: %s\n", err);
        return -1;
    }
    st_filter f;
    st_filter_init(&f);
    f.sensor = sensor;
    f.metric = "temp";
    f.since_ms = since;
    f.until_ms = END_MS;
    f.limit = ST_QUERY_LIMIT_MAX;
    int ret = plan ? st__query_windows_plan(q, &f, kinds[k].window_ms, kinds[k].src, stderr)
                   : st_query_windows(q, &f, kinds[k].window_ms, kinds[k].src, ST_FORMAT_CSV,
                                      devnull, res);
    if (ret != 0) {
        fprintf(stderr, "bench_storage: thinned: %s: %s\n", kinds[k].name, st_query_errmsg(q));
    }
    st_query_close(q);
    return ret;
}

int bs_thinned_pass(const char *dir, int64_t n_series, int64_t days, int64_t raw_days,
                    int64_t queries) {
    char path[4200];
    snprintf(path, sizeof(path), "%s/thinned.db", dir);
    double *lat = calloc((size_t)queries, sizeof(double));
    FILE *devnull = fopen("/dev/null", "w");
    int ret = -1;
    if (lat == NULL || devnull == NULL || raw_days >= days) {
        goto out;
    }
    fprintf(stderr,
            "  building the thinned history: %" PRId64 " series, %" PRId64
            " days of 1-minute summaries, then %" PRId64 " days of raw readings\n",
            n_series, days - raw_days, raw_days);
    double t = bs_now_s();
    if (build(path, n_series, days, raw_days) != 0) {
        goto out;
    }
    fprintf(stderr, "  built in %.0f s\n", bs_now_s() - t);
    char label[96];
    snprintf(label, sizeof(label),
             "thinned %" PRId64 " x (%" PRId64 " d of 1m summaries + %" PRId64 " d raw every 10 s)",
             n_series, days - raw_days, raw_days);
    for (int k = 0; k < K__COUNT; k++) {
        int64_t since = END_MS - (kinds[k].last_day ? DAY_MS : days * DAY_MS);
        int64_t want = (END_MS - since) / kinds[k].window_ms;
        if (kinds[k].src == ST_SOURCE_RAW) {
            want = raw_days * DAY_MS / kinds[k].window_ms;
        }
        fprintf(stderr, "  plan of %s:\n", kinds[k].name);
        if (run_query(path, k, "s000000", since, devnull, true, NULL) != 0) {
            goto out;
        }
        uint64_t rng = 7;
        for (int64_t i = 0; i < queries; i++) {
            char sensor[32];
            snprintf(sensor, sizeof(sensor), "s%06" PRId64,
                     (int64_t)(bs_splitmix(&rng) % (uint64_t)n_series));
            st_result res = {0};
            double t0 = bs_now_s();
            if (run_query(path, k, sensor, since, devnull, false, &res) != 0) {
                goto out;
            }
            lat[i] = 1e3 * (bs_now_s() - t0);
            if (res.rows != want) {
                fprintf(stderr,
                        "bench_storage: thinned: %s returned %" PRId64 " windows, want %" PRId64
                        "\n",
                        kinds[k].name, res.rows, want);
                goto out;
            }
        }
        qsort(lat, (size_t)queries, sizeof(double), cmp_double);
        size_t n = (size_t)queries, p99 = (size_t)ceil(0.99 * (double)n);
        printf("query %s, iotgw query %s: p50 %.2f ms, p99 %.2f ms, max %.2f ms (%" PRId64
               " random series, %" PRId64 " windows each) (target <= 50 ms)\n",
               label, kinds[k].name, lat[(n + 1) / 2 - 1], lat[p99 > 0 ? p99 - 1 : 0], lat[n - 1],
               queries, want);
        fflush(stdout);
    }
    ret = 0;
out:
    if (devnull != NULL) {
        fclose(devnull);
    }
    free(lat);
    unlink(path);
    char side[4300];
    snprintf(side, sizeof(side), "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", path);
    unlink(side);
    return ret;
}
