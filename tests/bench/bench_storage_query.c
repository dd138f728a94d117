/* The query half of bench_storage (see bench_storage.c): one-series queries through
 * v_readings, as a user of the sqlite3 shell writes them, and through st_query, as `iotgw query`
 * runs them. */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <sqlite3.h>

#include "bench_storage.h"
#include "st_query.h"

static int sql_fail(sqlite3 *h, const char *what) {
    fprintf(stderr, "bench_storage: %s: %s\n", what, sqlite3_errmsg(h));
    return -1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of n sorted samples. */
static double pct(const double *v, size_t n, double p) {
    size_t k = (size_t)ceil(p / 100.0 * (double)n);
    return v[k > 0 ? k - 1 : 0];
}

enum qkind {
    Q_AGG,
    Q_30D,
    Q_24H,
    Q_24H_TS,
    Q_CLI_SQL,
    Q_CLI_OPEN,
    Q_CLI_DAYS,
    Q_CLI_DAYS_AUTO,
    Q_CLI_30D,
    Q_CLI_24H,
    Q__COUNT
};

static const struct {
    const char *name;
    const char *sql; /* NULL: through st_query, as `iotgw query` */
    bool last_day;
} qdefs[Q__COUNT] = {
    [Q_AGG] = {"v_readings count+avg 30d",
               "SELECT count(*), avg(value) FROM v_readings WHERE sensor = ?1 AND metric = ?2"
               " AND ts_ms >= ?3 AND ts_ms < ?4",
               false},
    [Q_30D] = {"v_readings rows 30d",
               "SELECT ts_ms, ts, value, anomaly FROM v_readings WHERE sensor = ?1 AND metric = ?2"
               " AND ts_ms >= ?3 AND ts_ms < ?4 ORDER BY ts_ms",
               false},
    [Q_24H] = {"v_readings rows 24h",
               "SELECT ts_ms, ts, value, anomaly FROM v_readings WHERE sensor = ?1 AND metric = ?2"
               " AND ts_ms >= ?3 AND ts_ms < ?4 ORDER BY ts_ms",
               true},
    /* What a user may write instead: ts is computed, so no index narrows the time. */
    [Q_24H_TS] = {"v_readings rows 24h filtered on ts text",
                  "SELECT ts_ms, ts, value, anomaly FROM v_readings WHERE sensor = ?1"
                  " AND metric = ?2 AND ts >= ?5 AND ts < ?6 ORDER BY ts",
                  true},
    /* The SQL that st_query_readings runs (storage/st_query.c) without the output: tells the
     * query from the formatting, for a series named without wildcards (st_query then matches
     * with =). Keep it in step with st_query.c. */
    [Q_CLI_SQL] = {"iotgw query's SQL alone, rows 30d",
                   "SELECT sensor, metric, ts_ms, ts, value, anomaly FROM v_readings WHERE 1"
                   " AND sensor = ?1 AND metric = ?2 AND ts_ms >= ?3 AND ts_ms < ?4"
                   " ORDER BY ts_ms, sensor, metric LIMIT ?5",
                   false},
    /* What every `iotgw query` pays before its query: open, check the schema, close. */
    [Q_CLI_OPEN] = {"iotgw query open+close only", NULL, false},
    [Q_CLI_DAYS] = {"iotgw query --window 1d 30d (raw)", NULL, false},
    /* The default source: no summaries here, so the raw readings plus the look for them. */
    [Q_CLI_DAYS_AUTO] = {"iotgw query --window 1d 30d (auto)", NULL, false},
    [Q_CLI_30D] = {"iotgw query rows 30d", NULL, false},
    [Q_CLI_24H] = {"iotgw query rows 24h", NULL, true},
};

/* Keeps the compiler from dropping the column reads. */
static volatile double sink;

static void rfc3339(int64_t ms, char *buf, size_t len) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
}

/* Binds the parameters of qdefs[k].sql (or of its EXPLAIN) for sensor over [since, until). */
static void bind_params(enum qkind k, sqlite3_stmt *st, const char *sensor, int64_t since,
                        int64_t until) {
    char a[40], b[40];
    rfc3339(since, a, sizeof(a));
    rfc3339(until, b, sizeof(b));
    sqlite3_bind_text(st, 1, sensor, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, "temp", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, since);
    sqlite3_bind_int64(st, 4, until);
    if (k == Q_24H_TS) {
        sqlite3_bind_text(st, 5, a, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 6, b, -1, SQLITE_TRANSIENT);
    } else if (k == Q_CLI_SQL) {
        sqlite3_bind_int64(st, 5, ST_QUERY_LIMIT_MAX + 1);
    }
}

/* Runs one query of kind k for sensor over [since, until); writes the rows it returned (for
 * the count+avg query: the count) to *rows. */
static int run_query(enum qkind k, sqlite3_stmt *st, const char *path, FILE *devnull,
                     const char *sensor, int64_t since, int64_t until, int64_t *rows) {
    if (qdefs[k].sql != NULL) {
        bind_params(k, st, sensor, since, until);
        int64_t n = 0;
        double sum = 0;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            /* Fetch every column, as a client does. */
            for (int c = 0; c < sqlite3_column_count(st); c++) {
                switch (sqlite3_column_type(st, c)) {
                case SQLITE_INTEGER:
                    sum += (double)sqlite3_column_int64(st, c);
                    break;
                case SQLITE_FLOAT:
                    sum += sqlite3_column_double(st, c);
                    break;
                case SQLITE_TEXT:
                    sum += sqlite3_column_bytes(st, c);
                    break;
                default:
                    break;
                }
            }
            n = k == Q_AGG ? sqlite3_column_int64(st, 0) : n + 1;
        }
        sqlite3_reset(st);
        sink = sum;
        if (rc != SQLITE_DONE) {
            fprintf(stderr, "bench_storage: %s: %s\n", qdefs[k].name,
                    sqlite3_errmsg(sqlite3_db_handle(st)));
            return -1;
        }
        *rows = n;
        return 0;
    }
    /* Like one `iotgw query` run: open, one query written as CSV, close. */
    st_query *q = NULL;
    char err[512];
    if (st_query_open(&q, path, 0, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_storage: st_query_open: %s\n", err);
        return -1;
    }
    if (k == Q_CLI_OPEN) {
        st_query_close(q);
        *rows = 0;
        return 0;
    }
    st_filter f;
    st_filter_init(&f);
    f.sensor = sensor;
    f.metric = "temp";
    f.since_ms = since;
    f.until_ms = until;
    f.limit = ST_QUERY_LIMIT_MAX;
    st_result res = {0};
    int ret =
        k == Q_CLI_DAYS || k == Q_CLI_DAYS_AUTO
            ? st_query_windows(q, &f, DAY_MS, k == Q_CLI_DAYS ? ST_SOURCE_RAW : ST_SOURCE_AUTO,
                               ST_FORMAT_CSV, devnull, &res)
            : st_query_readings(q, &f, ST_FORMAT_CSV, devnull, &res);
    if (ret != 0) {
        fprintf(stderr, "bench_storage: %s: %s\n", qdefs[k].name, st_query_errmsg(q));
    }
    st_query_close(q);
    *rows = res.rows;
    return ret;
}

/* The plan with the parameters bound: SQLite plans a GLOB with a bound pattern again once it
 * knows the pattern. */
static void print_plan(sqlite3 *h, enum qkind k, int64_t since, int64_t until) {
    char sql[1024];
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s", qdefs[k].sql);
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) {
        return;
    }
    bind_params(k, st, "s000000", since, until);
    fprintf(stderr, "  plan of %s:", qdefs[k].name);
    while (sqlite3_step(st) == SQLITE_ROW) {
        fprintf(stderr, " [%s]", (const char *)sqlite3_column_text(st, 3));
    }
    fprintf(stderr, "\n");
    sqlite3_finalize(st);
}

/* Each query kind over the same queries random series, one kind after the other (so that a
 * series' pages are not in SQLite's cache from the previous kind). end_ms: just after the
 * newest reading; per_series: readings of a series in the last 30 days. */
int bs_query_pass(int64_t queries, int64_t days, const char *path, const char *label,
                  int64_t n_series, int64_t end_ms, int64_t per_series, bool plans) {
    sqlite3 *h = NULL;
    sqlite3_stmt *st[Q__COUNT] = {0};
    double *lat = calloc((size_t)queries, sizeof(double));
    int64_t *pick = calloc((size_t)queries, sizeof(int64_t));
    FILE *devnull = fopen("/dev/null", "w");
    int ret = -1;
    if (lat == NULL || pick == NULL || devnull == NULL) {
        goto out;
    }
    /* The sqlite3 shell's connection: read-only, default cache. */
    if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sql_fail(h, "open read-only");
        goto out;
    }
    sqlite3_busy_timeout(h, 5000);
    for (int k = 0; k < Q__COUNT; k++) {
        if (qdefs[k].sql != NULL &&
            sqlite3_prepare_v2(h, qdefs[k].sql, -1, &st[k], NULL) != SQLITE_OK) {
            sql_fail(h, qdefs[k].name);
            goto out;
        }
        if (plans && qdefs[k].sql != NULL) {
            print_plan(h, (enum qkind)k, end_ms - days * DAY_MS, end_ms);
        }
    }
    if (plans) {
        fprintf(stderr, "  reader cache_size %" PRId64 " (negative: KiB), page_size %" PRId64 "\n",
                bs_pragma_int(h, "PRAGMA cache_size"), bs_pragma_int(h, "PRAGMA page_size"));
    }
    uint64_t rng = 7;
    for (int64_t i = 0; i < queries; i++) {
        pick[i] = (int64_t)(bs_splitmix(&rng) % (uint64_t)n_series);
    }
    int64_t day_rows = per_series * DAY_MS / (days * DAY_MS);
    for (int k = 0; k < Q__COUNT; k++) {
        int64_t since = end_ms - (qdefs[k].last_day ? DAY_MS : days * DAY_MS), min_rows = -1;
        int64_t max_rows = 0;
        for (int64_t i = 0; i < queries; i++) {
            char sensor[32];
            int64_t n = 0;
            snprintf(sensor, sizeof(sensor), "s%06" PRId64, pick[i]);
            double t = bs_now_s();
            if (run_query((enum qkind)k, st[k], path, devnull, sensor, since, end_ms, &n) != 0) {
                goto out;
            }
            lat[i] = 1e3 * (bs_now_s() - t);
            min_rows = min_rows < 0 || n < min_rows ? n : min_rows;
            max_rows = n > max_rows ? n : max_rows;
        }
        /* A query that found nothing would time nothing. */
        int64_t want = qdefs[k].last_day ? day_rows : per_series;
        if (k != Q_CLI_DAYS && k != Q_CLI_DAYS_AUTO && k != Q_CLI_OPEN &&
            (min_rows < want * 9 / 10 || max_rows > want + want / 10 + 2)) {
            fprintf(stderr,
                    "bench_storage: %s returned %" PRId64 "..%" PRId64
                    " rows a series, expected about %" PRId64 "\n",
                    qdefs[k].name, min_rows, max_rows, want);
            goto out;
        }
        qsort(lat, (size_t)queries, sizeof(double), cmp_double);
        printf("query %s, %s: p50 %.2f ms, p99 %.2f ms, max %.2f ms (%" PRId64
               " random series, %" PRId64 "%s rows each)%s\n",
               label, qdefs[k].name, pct(lat, (size_t)queries, 50), pct(lat, (size_t)queries, 99),
               lat[queries - 1], queries, max_rows, k == Q_AGG ? " counted" : "",
               k == Q_CLI_OPEN ? "" : " (target <= 50 ms)");
        fflush(stdout);
    }
    ret = 0;
out:
    for (int k = 0; k < Q__COUNT; k++) {
        sqlite3_finalize(st[k]);
    }
    sqlite3_close(h);
    if (devnull != NULL) {
        fclose(devnull);
    }
    free(lat);
    free(pick);
    return ret;
}
