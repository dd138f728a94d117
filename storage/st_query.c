/* Read-only queries of the history (st_query.h); the output formats are in st_format.c. */
#include "st_query.h"
#include "st_query_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

/* PRAGMA application_id of an iotgw database ("iotg"), as st_db.c writes it. */
#define APP_ID 0x696f7467

#define TS_RFC3339(col) "strftime('%Y-%m-%dT%H:%M:%fZ', " col " / 1000.0, 'unixepoch')"

struct st_query {
    sqlite3 *h;
    char err[512];
};

/* ---- errors ------------------------------------------------------------------------------ */

static int map_rc(int rc) {
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return ST_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return ST_EBUSY;
    case SQLITE_NOTADB:
        return ST_ESCHEMA;
    default:
        return ST_EIO;
    }
}

static int fail_msg(st_query *q, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_msg(st_query *q, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->err, sizeof(q->err), fmt, ap);
    va_end(ap);
    return code;
}

/* Records "<what>: <sqlite message>" and returns the ST_E* code of rc. */
static int fail(st_query *q, const char *what, int rc) {
    const char *msg = q->h != NULL ? sqlite3_errmsg(q->h) : sqlite3_errstr(rc);
    return fail_msg(q, map_rc(rc), "%s: %s", what, msg);
}

const char *st_query_errmsg(const st_query *q) {
    return q != NULL ? q->err : "";
}

/* ---- open -------------------------------------------------------------------------------- */

static int query_int(st_query *q, const char *what, const char *sql, int64_t *out) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->h, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return fail(q, what, rc);
    }
    int ret = 0;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
    } else {
        ret = fail(q, what, rc);
    }
    /* A failed step is already recorded; finalizing only repeats it. */
    (void)sqlite3_finalize(st);
    return ret;
}

static int check_identity(st_query *q, const char *path) {
    int64_t app_id, version;
    int ret = query_int(q, path, "PRAGMA application_id", &app_id);
    if (ret == ST_ESCHEMA) {
        return fail_msg(q, ST_ESCHEMA, "%s: not an iotgw database (not an SQLite file)", path);
    }
    if (ret != 0 || (ret = query_int(q, path, "PRAGMA user_version", &version)) != 0) {
        return ret;
    }
    if (app_id != APP_ID) {
        return fail_msg(q, ST_ESCHEMA, "%s: not an iotgw database (no iotgw application_id)", path);
    }
    if (version > ST_SCHEMA_VERSION) {
        return fail_msg(q, ST_ESCHEMA,
                        "%s: schema version %lld is newer than this iotgw supports (%d); "
                        "upgrade iotgw",
                        path, (long long)version, ST_SCHEMA_VERSION);
    }
    if (version < ST_SCHEMA_VERSION) {
        return fail_msg(q, ST_ESCHEMA,
                        "%s: schema version %lld is older than this iotgw's (%d); run the "
                        "gateway (iotgw run or iotgw replay) on it once to migrate it",
                        path, (long long)version, ST_SCHEMA_VERSION);
    }
    return 0;
}

int st_query_open(st_query **out, const char *path, int busy_timeout_ms, char *err, size_t errlen) {
    int ret;
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (out == NULL || path == NULL) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "open: no database path");
        }
        return ST_EIO;
    }
    st_query *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "open: out of memory");
        }
        return ST_ENOMEM;
    }
    /* SQLite would say "unable to open database file" for all of these. */
    struct stat sb;
    if (stat(path, &sb) != 0) {
        ret = fail_msg(q, ST_EIO, "%s: %s", path, strerror(errno));
        goto fail_open;
    }
    if (S_ISDIR(sb.st_mode)) {
        ret = fail_msg(q, ST_EIO, "%s: is a directory", path);
        goto fail_open;
    }
    int rc = sqlite3_open_v2(
        path, &q->h, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, NULL);
    if (rc != SQLITE_OK) {
        ret = fail(q, path, rc);
        goto fail_open;
    }
    rc = sqlite3_busy_timeout(q->h, busy_timeout_ms > 0 ? busy_timeout_ms : ST_QUERY_BUSY_MS);
    if (rc != SQLITE_OK) {
        ret = fail(q, "busy_timeout", rc);
        goto fail_open;
    }
    rc = sqlite3_exec(q->h, "PRAGMA query_only = 1", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        ret = fail(q, "query_only", rc);
        goto fail_open;
    }
    if ((ret = check_identity(q, path)) != 0) {
        goto fail_open;
    }
    q->err[0] = '\0';
    *out = q;
    return 0;

fail_open:
    if (err != NULL && errlen > 0) {
        snprintf(err, errlen, "%s", q->err);
    }
    /* Nothing was prepared on the handle: closing cannot fail. */
    (void)sqlite3_close(q->h);
    free(q);
    return ret;
}

void st_query_close(st_query *q) {
    if (q == NULL) {
        return;
    }
    (void)sqlite3_close(q->h);
    free(q);
}

void st_filter_init(st_filter *f) {
    *f = (st_filter){.since_ms = INT64_MIN, .until_ms = INT64_MAX, .limit = ST_QUERY_LIMIT_DEFAULT};
}

/* ---- queries ----------------------------------------------------------------------------- */

typedef struct sql_text {
    char s[2048];
    size_t len;
    bool over;
} sql_text;

/* Appends a constant piece of SQL. Values from the user never go here, only into bound
 * parameters (:sensor, :metric, :since, :until, :window, :limit). */
static void sql_add(sql_text *t, const char *piece) {
    size_t n = strlen(piece);
    if (t->len + n >= sizeof(t->s)) {
        t->over = true;
        return;
    }
    memcpy(t->s + t->len, piece, n + 1);
    t->len += n;
}

typedef struct params {
    const char *sensor, *metric;
    int64_t since, until, window, limit;
} params;

/* A pattern without *, ? or [ matches one name: "=" lets SQLite use the series key and the
 * order of the readings, where GLOB would scan the series and sort the result. */
static const char *match_op(const char *pattern) {
    return strpbrk(pattern, "*?[") != NULL ? " GLOB " : " = ";
}

/* The conditions of a filter on a view with sensor and metric columns, and time column col
 * bounded by p->since and p->until unless they are unbounded. */
static void sql_where(sql_text *t, const params *p, const char *col) {
    sql_add(t, " WHERE 1");
    if (p->sensor != NULL) {
        sql_add(t, " AND sensor");
        sql_add(t, match_op(p->sensor));
        sql_add(t, ":sensor");
    }
    if (p->metric != NULL) {
        sql_add(t, " AND metric");
        sql_add(t, match_op(p->metric));
        sql_add(t, ":metric");
    }
    if (p->since != INT64_MIN) {
        sql_add(t, " AND ");
        sql_add(t, col);
        sql_add(t, " >= :since");
    }
    if (p->until != INT64_MAX) {
        sql_add(t, " AND ");
        sql_add(t, col);
        sql_add(t, " < :until");
    }
}

static int bind_text(st_query *q, sqlite3_stmt *st, const char *name, const char *v) {
    int i = sqlite3_bind_parameter_index(st, name);
    int rc = i > 0 ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : SQLITE_OK;
    return rc == SQLITE_OK ? 0 : fail(q, name, rc);
}

static int bind_int(st_query *q, sqlite3_stmt *st, const char *name, int64_t v) {
    int i = sqlite3_bind_parameter_index(st, name);
    int rc = i > 0 ? sqlite3_bind_int64(st, i, v) : SQLITE_OK;
    return rc == SQLITE_OK ? 0 : fail(q, name, rc);
}

/* Prepares t and binds the parameters it names. Borrows p (the strings must outlive *out). */
static int prepare(st_query *q, const char *what, const sql_text *t, const params *p,
                   sqlite3_stmt **out) {
    if (t->over) {
        return fail_msg(q, ST_EIO, "%s: query text too long", what);
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->h, t->s, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return fail(q, what, rc);
    }
    int ret;
    if ((ret = bind_text(q, st, ":sensor", p->sensor)) != 0 ||
        (ret = bind_text(q, st, ":metric", p->metric)) != 0 ||
        (ret = bind_int(q, st, ":since", p->since)) != 0 ||
        (ret = bind_int(q, st, ":until", p->until)) != 0 ||
        (ret = bind_int(q, st, ":window", p->window)) != 0 ||
        (ret = bind_int(q, st, ":limit", p->limit)) != 0) {
        (void)sqlite3_finalize(st);
        return ret;
    }
    *out = st;
    return 0;
}

/* Runs t and writes at most limit rows; asks SQLite for one more to tell a truncated result. */
static int run(st_query *q, const char *what, const sql_text *t, params *p, st_format fmt,
               FILE *out, int64_t limit, st_result *res) {
    sqlite3_stmt *st = NULL;
    p->limit = limit + 1;
    int ret = prepare(q, what, t, p, &st);
    if (ret != 0) {
        return ret;
    }
    st__sink k;
    bool truncated = false;
    if ((ret = st__sink_init(&k, fmt, out, st)) != 0) {
        ret = fail_msg(q, ret, "%s: cannot set up the output", what);
    }
    while (ret == 0 && !ferror(out)) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            break;
        }
        if (rc != SQLITE_ROW) {
            ret = fail(q, what, rc);
        } else if (k.rows == limit) {
            truncated = true;
            break;
        } else if (st__sink_row(&k) != 0) {
            ret = fail_msg(q, ST_ENOMEM, "%s: out of memory", what);
        }
    }
    if (ret == 0 && st__sink_end(&k) != 0) {
        ret = fail_msg(q, ST_ENOMEM, "%s: out of memory", what);
    }
    if (ret == 0 && (fflush(out) != 0 || ferror(out))) {
        ret = fail_msg(q, ST_EIO, "write: %s", strerror(errno != 0 ? errno : EIO));
    }
    if (ret == 0 && res != NULL) {
        res->rows = k.rows;
        res->truncated = truncated;
    }
    st__sink_free(&k);
    (void)sqlite3_finalize(st); /* a failed step is already recorded */
    return ret;
}

/* One snapshot for all statements of a call. A reader in WAL mode takes no lock the writer
 * waits for; it only keeps the log from being reset while it reads. */
static int begin_read(st_query *q) {
    int rc = sqlite3_exec(q->h, "BEGIN", NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : fail(q, "begin", rc);
}

static int end_read(st_query *q, int ret) {
    if (!sqlite3_get_autocommit(q->h)) {
        int rc = sqlite3_exec(q->h, ret == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
        if (rc != SQLITE_OK && ret == 0) {
            ret = fail(q, "end of read", rc);
        }
    }
    return ret;
}

static int check_args(st_query *q, const st_filter *f, FILE *out) {
    if (f == NULL || out == NULL) {
        return fail_msg(q, ST_EIO, "query: no filter or no output");
    }
    if (f->limit < 1 || f->limit > ST_QUERY_LIMIT_MAX) {
        return fail_msg(q, ST_EIO, "query: limit %lld is out of range 1..%d", (long long)f->limit,
                        ST_QUERY_LIMIT_MAX);
    }
    return 0;
}

int st_query_readings(st_query *q, const st_filter *f, st_format fmt, FILE *out, st_result *res) {
    int ret = check_args(q, f, out);
    if (ret != 0) {
        return ret;
    }
    params p = {f->sensor, f->metric, f->since_ms, f->until_ms, 0, 0};
    sql_text t = {.len = 0};
    sql_add(&t, "SELECT sensor, metric, ts_ms, ts, value, anomaly FROM v_readings");
    sql_where(&t, &p, "ts_ms");
    sql_add(&t, f->newest_first ? " ORDER BY ts_ms DESC, sensor DESC, metric DESC"
                                : " ORDER BY ts_ms, sensor, metric");
    sql_add(&t, " LIMIT :limit");
    if ((ret = begin_read(q)) != 0) {
        return ret;
    }
    ret = run(q, "readings", &t, &p, fmt, out, f->limit, res);
    return end_read(q, ret);
}

/* Start of the window of size w holding t; INT64_MIN stays unbounded. */
static int64_t align_down(int64_t t, int64_t w) {
    int64_t m = t % w, r;
    m += m < 0 ? w : 0;
    return t == INT64_MIN || __builtin_sub_overflow(t, m, &r) ? INT64_MIN : r;
}

/* End of the window holding t - 1, i.e. the smallest window boundary >= t. */
static int64_t align_up(int64_t t, int64_t w) {
    int64_t m = t % w, r;
    m += m < 0 ? w : 0;
    if (t == INT64_MAX || m == 0) {
        return t;
    }
    return __builtin_add_overflow(t, w - m, &r) ? INT64_MAX : r;
}

/* Summaries of hopping windows have starts between the multiples of their size: only the
 * epoch-aligned (tumbling) ones are these windows. A size configured both tumbling and hopping
 * stores the aligned windows twice, with the same figures: DISTINCT keeps one. */
static void sql_summaries(sql_text *t, const params *p, bool exists, bool newest_first) {
    sql_add(t, exists ? "SELECT EXISTS (SELECT 1"
                      : "SELECT DISTINCT sensor, metric, start_ms, start, end_ms, count, min,"
                        " max, mean AS avg, first, last");
    sql_add(t, " FROM v_summaries");
    sql_where(t, p, "start_ms");
    sql_add(t, " AND window_ms = :window AND start_ms % :window = 0");
    if (exists) {
        sql_add(t, ")");
        return;
    }
    sql_add(t, newest_first ? " ORDER BY start_ms DESC, sensor DESC, metric DESC"
                            : " ORDER BY start_ms, sensor, metric");
    sql_add(t, " LIMIT :limit");
}

/* Aggregates over the raw readings. first/last are the values at the smallest and largest
 * ts_ms of a window (window functions: SQLite has no first/last aggregate). */
static void sql_raw_windows(sql_text *t, const params *p, bool newest_first) {
    sql_add(
        t,
        "SELECT sensor, metric, start_ms, " TS_RFC3339(
            "start_ms") " AS start,"
                        " start_ms + :window AS end_ms, count(*) AS count, min(value) AS min,"
                        " max(value) AS max, avg(value) AS avg, max(fv) AS first, max(lv) AS last"
                        " FROM (SELECT sensor, metric, start_ms, value,"
                        "   first_value(value) OVER w AS fv, last_value(value) OVER w AS lv"
                        " FROM (SELECT sensor, metric, ts_ms, value,"
                        "   ts_ms - ((ts_ms % :window) + :window) % :window AS start_ms"
                        " FROM v_readings");
    sql_where(t, p, "ts_ms");
    sql_add(t, ") WINDOW w AS (PARTITION BY sensor, metric, start_ms ORDER BY ts_ms"
               " ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING))"
               " GROUP BY sensor, metric, start_ms");
    sql_add(t, newest_first ? " ORDER BY start_ms DESC, sensor DESC, metric DESC"
                            : " ORDER BY start_ms, sensor, metric");
    sql_add(t, " LIMIT :limit");
}

int st_query_windows(st_query *q, const st_filter *f, int64_t window_ms, st_source src,
                     st_format fmt, FILE *out, st_result *res) {
    int ret = check_args(q, f, out);
    if (ret != 0) {
        return ret;
    }
    if (window_ms < 1 || window_ms > ST_QUERY_WINDOW_MAX_MS) {
        return fail_msg(q, ST_EIO, "windows: window %lld ms is out of range 1..%lld",
                        (long long)window_ms, (long long)ST_QUERY_WINDOW_MAX_MS);
    }
    /* Whole windows: those that overlap [since, until), with all of their readings. */
    params p = {
        f->sensor, f->metric, align_down(f->since_ms, window_ms), align_up(f->until_ms, window_ms),
        window_ms, 0};
    if ((ret = begin_read(q)) != 0) {
        return ret;
    }
    bool summaries = src == ST_SOURCE_SUMMARIES;
    if (src == ST_SOURCE_AUTO) {
        sql_text t = {.len = 0};
        sql_summaries(&t, &p, true, false);
        sqlite3_stmt *st = NULL;
        if ((ret = prepare(q, "stored summaries", &t, &p, &st)) != 0) {
            return end_read(q, ret);
        }
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            summaries = sqlite3_column_int(st, 0) != 0;
        } else {
            ret = fail(q, "stored summaries", rc);
        }
        (void)sqlite3_finalize(st);
        if (ret != 0) {
            return end_read(q, ret);
        }
    }
    sql_text t = {.len = 0};
    if (summaries) {
        sql_summaries(&t, &p, false, f->newest_first);
    } else {
        sql_raw_windows(&t, &p, f->newest_first);
    }
    ret = run(q, "windows", &t, &p, fmt, out, f->limit, res);
    if (ret == 0 && res != NULL) {
        res->from_summaries = summaries;
    }
    return end_read(q, ret);
}

int st_query_alerts(st_query *q, const st_filter *f, bool active_only, st_format fmt, FILE *out,
                    st_result *res) {
    int ret = check_args(q, f, out);
    if (ret != 0) {
        return ret;
    }
    params p = {f->sensor, f->metric, f->since_ms, f->until_ms, 0, 0};
    sql_text t = {.len = 0};
    sql_add(&t, "SELECT id, sensor, metric, kind, state, severity, ts_ms, ts, value, threshold,"
                " message, published, rule FROM ");
    sql_add(&t, active_only ? "v_active_alerts" : "v_alerts");
    sql_where(&t, &p, "ts_ms");
    sql_add(&t, f->newest_first ? " ORDER BY id DESC" : " ORDER BY id");
    sql_add(&t, " LIMIT :limit");
    if ((ret = begin_read(q)) != 0) {
        return ret;
    }
    ret = run(q, "alerts", &t, &p, fmt, out, f->limit, res);
    return end_read(q, ret);
}
