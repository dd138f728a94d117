/* Read-only queries of the history: the public views of st_db.h (documented in
 * docs/history.md), written as an aligned table, CSV (RFC 4180) or JSON. Used by `iotgw query`
 * and `iotgw alerts`. Window queries read the tables behind the views, for speed: the schema
 * version check at open ties this module to the schema it knows.
 *
 * One st_query is one read-only SQLite connection (SQLITE_OPEN_READONLY, PRAGMA query_only),
 * used by one thread at a time. It never writes, so in WAL mode it never blocks the gateway's
 * writer: each call runs in one read transaction (a consistent snapshot), and a busy_timeout
 * covers the moments a reader must wait (WAL recovery, a checkpoint resetting the log). Every
 * value that comes from the user (patterns, times, limits, window sizes) is bound as an SQL
 * parameter; the SQL text is put together from constant pieces only.
 *
 * Errors: the functions return 0 or a negative ST_E* code (st_db.h) and leave a one-line
 * reason in st_query_errmsg. */
#ifndef ST_QUERY_H
#define ST_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "st_db.h"

#define ST_QUERY_LIMIT_DEFAULT 1000
#define ST_QUERY_LIMIT_MAX     100000000
#define ST_QUERY_BUSY_MS       5000
/* The times st_query_parse_time accepts: years 0000 to 9999. */
#define ST_QUERY_TIME_MIN_MS (-62167219200000LL)
#define ST_QUERY_TIME_MAX_MS 253402300799999LL
/* Window sizes for st_query_windows: 1 ms to 10 years (3650 days). */
#define ST_QUERY_WINDOW_MAX_MS (3650LL * 86400000LL)

typedef struct st_query st_query;

typedef enum st_format {
    ST_FORMAT_TABLE = 0, /* aligned columns under a header; reals rounded to 10 digits */
    ST_FORMAT_CSV,       /* header line, RFC 4180 quoting, CRLF; NULL is an empty field */
    ST_FORMAT_JSON       /* one array of objects; numbers as numbers, NULL as null */
} st_format;

typedef enum st_source {
    ST_SOURCE_AUTO = 0,  /* each window from the best source that has it (st_query_windows) */
    ST_SOURCE_RAW,       /* computed in SQL from v_readings */
    ST_SOURCE_SUMMARIES, /* read from v_summaries (tumbling, epoch-aligned ones only) */
} st_source;

/* Where a window written by st_query_windows came from. */
typedef enum st_origin {
    ST_ORIGIN_STORED = 0, /* a stored summary of exactly the window's size */
    ST_ORIGIN_FINER,      /* combined from stored summaries of smaller sizes */
    ST_ORIGIN_RAW,        /* computed from raw readings */
    ST_ORIGIN_MIXED,      /* smaller stored summaries, and raw readings where they had none */
    ST_ORIGIN__COUNT
} st_origin;

/* What to select. st_filter_init fills the defaults: every series, all time, the default
 * limit, oldest first. */
typedef struct st_filter {
    const char *sensor; /* SQLite GLOB pattern (case-sensitive; * ? [...]); NULL: any */
    const char *metric; /* GLOB pattern; NULL: any */
    int64_t since_ms;   /* inclusive; INT64_MIN: no lower bound */
    int64_t until_ms;   /* exclusive; INT64_MAX: no upper bound */
    int64_t limit;      /* rows written at most, 1..ST_QUERY_LIMIT_MAX */
    bool newest_first;  /* descending order (the limit then keeps the newest rows) */
} st_filter;

void st_filter_init(st_filter *f);

typedef struct st_result {
    int64_t rows;   /* rows written */
    bool truncated; /* more rows matched than the limit */
    /* st_query_windows: the rows written, by st_origin (they add up to rows); else zeros. */
    int64_t windows[ST_ORIGIN__COUNT];
} st_result;

/* Opens the database at path read-only. Refuses a missing file (it is never created), a file
 * that is not an iotgw database (ST_ESCHEMA), and a schema version other than
 * ST_SCHEMA_VERSION (ST_ESCHEMA, saying whether to upgrade iotgw or to let the gateway migrate
 * the file). busy_timeout_ms <= 0 means ST_QUERY_BUSY_MS. Borrows path. On failure *out is
 * untouched and err (when not NULL) holds the reason. */
int st_query_open(st_query **out, const char *path, int busy_timeout_ms, char *err, size_t errlen);
void st_query_close(st_query *q);

/* The reason of the last failure on q ("" if none); valid until the next call. */
const char *st_query_errmsg(const st_query *q);

/* The functions below borrow f and out, write rows to out in fmt, and fill *res (may be NULL).
 * Rows are ordered by time (then sensor, metric), newest first when f->newest_first. A write
 * error on out returns ST_EIO ("write: ..."). Matching nothing is not an error. */

/* Raw readings: the columns of v_readings (sensor, metric, ts_ms, ts, value, anomaly). */
int st_query_readings(st_query *q, const st_filter *f, st_format fmt, FILE *out, st_result *res);

/* Aggregates per window of window_ms (1..ST_QUERY_WINDOW_MAX_MS), aligned to the Unix epoch:
 * columns sensor, metric, start_ms, start, end_ms, count, min, max, avg, first, last. Selects
 * the windows that overlap [since, until), each computed over all of its readings.
 *
 * ST_SOURCE_RAW computes every window from v_readings; ST_SOURCE_SUMMARIES reads the stored
 * summaries of exactly window_ms. ST_SOURCE_AUTO answers each (series, window) from the best
 * source that has it, and never counts a reading twice: a stored summary of exactly window_ms
 * (epoch-aligned); else the parts of the window, each from the coarsest stored summary that
 * covers it, among the "finer" sizes: the largest stored size (for any selected series, in the
 * selected time) that divides window_ms, the largest stored size that divides that one, and
 * so on (at most 8; sizes off this chain would overlap and are not used), and the raw readings
 * of the parts no summary covers. First and last are those of the earliest and latest part;
 * avg is count-weighted. res->windows says how many
 * rows came from where. */
int st_query_windows(st_query *q, const st_filter *f, int64_t window_ms, st_source src,
                     st_format fmt, FILE *out, st_result *res);

/* Alert transitions (v_alerts) or the alerts raised now (v_active_alerts), by id: columns id,
 * sensor, metric, kind, state, severity, ts_ms, ts, value, threshold, message, published,
 * rule. The time filter applies to ts_ms. */
int st_query_alerts(st_query *q, const st_filter *f, bool active_only, st_format fmt, FILE *out,
                    st_result *res);

/* Parses a point in time: "now"; a duration before now_ms ("90s", "30m", "24h", "7d", "2w",
 * "1.5h", "500ms"); an RFC 3339 time with a zone ("2024-05-01T12:00:00Z",
 * "2024-05-01T14:00:00.250+02:00") or a date ("2024-05-01", midnight UTC); or epoch
 * milliseconds ("1714564800000"). Result within ST_QUERY_TIME_MIN_MS..ST_QUERY_TIME_MAX_MS.
 * Returns 0, or -1 (*out_ms untouched). */
int st_query_parse_time(const char *s, int64_t now_ms, int64_t *out_ms);

/* Parses a duration with a unit (ms, s, m, h, d, w), > 0 and at most ST_QUERY_WINDOW_MAX_MS,
 * whole milliseconds. Returns 0, or -1 (*out_ms untouched). */
int st_query_parse_duration(const char *s, int64_t *out_ms);

#endif
