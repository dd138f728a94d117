/* Read-only queries of the history (st_query.h); the output formats are in st_format.c. */
#include "st_query.h"
#include "st_query_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

/* PRAGMA application_id of an iotgw database ("iotg"), as st_db_schema.c writes it. */
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

/* ---- first and last: aggregates of this connection --------------------------------------- */

/* iotgw_first(key, value) is the value of the row with the smallest key (on a tie, the first
 * such row the query visits), iotgw_last(key, value) that of the largest key (on a tie, the
 * last visited); NULL without a row. One pass, where first_value/last_value need a window
 * sorted per group. Rows with a NULL key or value are skipped. */
typedef struct pick {
    int64_t key;
    double value;
    bool has;
} pick;

static void pick_step(sqlite3_context *c, sqlite3_value **argv, bool last) {
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL || sqlite3_value_type(argv[1]) == SQLITE_NULL) {
        return;
    }
    pick *p = sqlite3_aggregate_context(c, sizeof(*p));
    if (p == NULL) {
        sqlite3_result_error_nomem(c);
        return;
    }
    int64_t key = sqlite3_value_int64(argv[0]);
    if (!p->has || (last ? key >= p->key : key < p->key)) {
        *p = (pick){.key = key, .value = sqlite3_value_double(argv[1]), .has = true};
    }
}

static void first_step(sqlite3_context *c, int argc, sqlite3_value **argv) {
    (void)argc;
    pick_step(c, argv, false);
}

static void last_step(sqlite3_context *c, int argc, sqlite3_value **argv) {
    (void)argc;
    pick_step(c, argv, true);
}

static void pick_final(sqlite3_context *c) {
    pick *p = sqlite3_aggregate_context(c, 0);
    if (p != NULL && p->has) {
        sqlite3_result_double(c, p->value);
    } else {
        sqlite3_result_null(c);
    }
}

static int add_functions(st_query *q) {
    static const struct {
        const char *name;
        void (*step)(sqlite3_context *, int, sqlite3_value **);
    } fns[] = {{"iotgw_first", first_step}, {"iotgw_last", last_step}};
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        int rc =
            sqlite3_create_function_v2(q->h, fns[i].name, 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                       NULL, NULL, fns[i].step, pick_final, NULL);
        if (rc != SQLITE_OK) {
            return fail(q, fns[i].name, rc);
        }
    }
    return 0;
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
    if ((ret = check_identity(q, path)) != 0 || (ret = add_functions(q)) != 0) {
        goto fail_open;
    }
    q->err[0] = '\0';
    *out = q;
    return 0;

fail_open:
    if (err != NULL && errlen > 0) {
        snprintf(err, errlen, "%s", q->err);
    }
    /* Nothing is prepared on the handle: closing cannot fail. */
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
    char s[8192];
    size_t len;
    bool over;
} sql_text;

/* Appends a constant piece of SQL. Values from the user never go here, only into bound
 * parameters (:sensor, :metric, :since, :until, :window, :limit, :f1...). */
static void sql_add(sql_text *t, const char *piece) {
    size_t n = strlen(piece);
    if (t->len + n >= sizeof(t->s)) {
        t->over = true;
        return;
    }
    memcpy(t->s + t->len, piece, n + 1);
    t->len += n;
}

/* The most finer summary sizes one window query combines (st_query.h). */
#define FINER_MAX 8

static const char *const finer_param[FINER_MAX] = {":f1", ":f2", ":f3", ":f4",
                                                   ":f5", ":f6", ":f7", ":f8"};

typedef struct params {
    const char *sensor, *metric;
    int64_t since, until, window, limit;
    int64_t finer[FINER_MAX]; /* bound to :f1...: sizes, largest first, each dividing the last */
    int n_finer;
} params;

/* A pattern without *, ? or [ matches one name: "=" lets SQLite use the series key and the
 * order of the readings, where GLOB would scan the series and sort the result. */
static const char *match_op(const char *pattern) {
    return strpbrk(pattern, "*?[") != NULL ? " GLOB " : " = ";
}

/* " AND col >= :since AND col < :until", each unless it is unbounded. */
static void sql_range(sql_text *t, const params *p, const char *col) {
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

/* The conditions of a filter on a view or table with sensor and metric columns, and time
 * column col (NULL: none) bounded by p->since and p->until. */
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
    if (col != NULL) {
        sql_range(t, p, col);
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
    for (int i = 0; i < p->n_finer; i++) {
        if ((ret = bind_int(q, st, finer_param[i], p->finer[i])) != 0) {
            (void)sqlite3_finalize(st);
            return ret;
        }
    }
    *out = st;
    return 0;
}

/* Runs t and writes at most limit rows; asks SQLite for one more to tell a truncated result.
 * With origin, the last column of t is the st_origin of the row: counted, not written. */
static int run(st_query *q, const char *what, const sql_text *t, params *p, st_format fmt,
               FILE *out, int64_t limit, bool origin, st_result *res) {
    sqlite3_stmt *st = NULL;
    p->limit = limit + 1;
    int ret = prepare(q, what, t, p, &st);
    if (ret != 0) {
        return ret;
    }
    st__sink k;
    bool truncated = false;
    int ncol = sqlite3_column_count(st) - (origin ? 1 : 0);
    int64_t from[ST_ORIGIN__COUNT] = {0};
    if ((ret = st__sink_init(&k, fmt, out, st, ncol)) != 0) {
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
        } else if (origin) {
            int64_t o = sqlite3_column_int64(st, ncol);
            if (o >= 0 && o < ST_ORIGIN__COUNT) {
                from[o]++;
            }
        }
    }
    if (ret == 0 && st__sink_end(&k) != 0) {
        ret = fail_msg(q, ST_ENOMEM, "%s: out of memory", what);
    }
    if (ret == 0 && (fflush(out) != 0 || ferror(out))) {
        ret = fail_msg(q, ST_EIO, "write: %s", strerror(errno != 0 ? errno : EIO));
    }
    if (ret == 0 && res != NULL) {
        *res = (st_result){.rows = k.rows, .truncated = truncated};
        memcpy(res->windows, from, sizeof(from));
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
    params p = {
        .sensor = f->sensor, .metric = f->metric, .since = f->since_ms, .until = f->until_ms};
    sql_text t = {.len = 0};
    sql_add(&t, "SELECT sensor, metric, ts_ms, ts, value, anomaly FROM v_readings");
    sql_where(&t, &p, "ts_ms");
    sql_add(&t, f->newest_first ? " ORDER BY ts_ms DESC, sensor DESC, metric DESC"
                                : " ORDER BY ts_ms, sensor, metric");
    sql_add(&t, " LIMIT :limit");
    if ((ret = begin_read(q)) != 0) {
        return ret;
    }
    ret = run(q, "readings", &t, &p, fmt, out, f->limit, false, res);
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

/* The start of the epoch-aligned unit of size sz (a parameter) holding time col, also before
 * 1970 (SQLite's % truncates towards zero). */
static void sql_align(sql_text *t, const char *col, const char *sz) {
    sql_add(t, col);
    sql_add(t, " - ((");
    sql_add(t, col);
    sql_add(t, " % ");
    sql_add(t, sz);
    sql_add(t, ") + ");
    sql_add(t, sz);
    sql_add(t, ") % ");
    sql_add(t, sz);
}

/* Window queries read the tables behind the views, keyed by series id: a row of v_readings
 * computes its ts text even when nobody asks for it (a compound view), which made up half the
 * time of a window query, and the summaries are looked up by (series_id, window_ms, start_ms)
 * in one step. sel holds the selected series; raw the readings of v_readings (st_db_schema.c:
 * merged ones, and the staged ones the next merge will not skip). */
static void sql_selection(sql_text *t, const params *p) {
    sql_add(t, "sel(id) AS (SELECT id FROM series");
    sql_where(t, p, NULL);
    sql_add(t, "), raw(id, ts_ms, value) AS (SELECT series_id, ts_ms, value FROM readings"
               " WHERE series_id IN sel");
    sql_range(t, p, "ts_ms");
    sql_add(t, " UNION ALL SELECT series_id, ts_ms, value FROM readings_recent staged"
               " WHERE series_id IN sel");
    sql_range(t, p, "ts_ms");
    sql_add(t, " AND NOT EXISTS (SELECT 1 FROM readings merged"
               " WHERE merged.series_id = staged.series_id AND merged.ts_ms = staged.ts_ms"
               " AND merged.value = staged.value))");
}

/* A window is built from parts: rows of the CTEs below, with the columns of PARTS. u is the
 * part's start, n its readings; lo, hi, sm, fv, lv their min, max, sum, first and last value;
 * fs and fr are 1 when stored summaries or raw readings went into it. These combine exactly:
 * sums, min, max, and first/last of the part with the smallest/largest start. */
#define PARTS "(id, u, n, lo, hi, sm, fv, lv, fs, fr)"

/* Parts of size sz from the raw readings. */
static void sql_raw_parts(sql_text *t, const char *sz) {
    sql_add(t, "SELECT id, ");
    sql_align(t, "ts_ms", sz);
    sql_add(t, " AS g, count(*), min(value), max(value), sum(value), iotgw_first(ts_ms, value),"
               " iotgw_last(ts_ms, value), 0, 1 FROM raw GROUP BY id, g");
}

/* Stored summaries of size sz (with their mean instead of a sum when mean) in the selected
 * windows. Summaries of hopping windows have starts between the multiples of their size: only
 * the epoch-aligned (tumbling) ones count. A size configured both tumbling and hopping stores
 * the aligned windows twice, with the same figures: the grouping keeps one. */
static void sql_stored(sql_text *t, const params *p, const char *sz, bool mean) {
    sql_add(t, mean ? "SELECT series_id, start_ms, count, min, max, mean,"
                    : "SELECT series_id, start_ms, count, min, max, mean * count,");
    sql_add(t, " first, last, 1, 0 FROM summaries WHERE series_id IN sel AND window_ms = ");
    sql_add(t, sz);
    sql_range(t, p, "start_ms");
    sql_add(t, " AND start_ms % ");
    sql_add(t, sz);
    sql_add(t, " = 0 GROUP BY series_id, start_ms");
}

/* The parts of CTE below combined into parts of size sz (below's own when same_size), less
 * those a stored summary of size sz covers. */
static void sql_combined(sql_text *t, const char *below, bool same_size, const char *sz) {
    sql_add(t, "SELECT * FROM (");
    if (same_size) {
        sql_add(t, "SELECT id, u AS g, n, lo, hi, sm, fv, lv, fs, fr FROM ");
        sql_add(t, below);
    } else {
        sql_add(t, "SELECT id, ");
        sql_align(t, "u", sz);
        sql_add(t, " AS g, sum(n), min(lo), max(hi), sum(sm), iotgw_first(u, fv),"
                   " iotgw_last(u, lv), max(fs), max(fr) FROM ");
        sql_add(t, below);
        sql_add(t, " GROUP BY id, g");
    }
    sql_add(t, ") x WHERE NOT EXISTS (SELECT 1 FROM summaries cover WHERE cover.series_id = x.id"
               " AND cover.window_ms = ");
    sql_add(t, sz);
    sql_add(t, " AND cover.start_ms = x.g)");
}

/* The windows of size :window, as CTEs and then rows id, start_ms, count, min, max, avg,
 * first, last, origin (st_origin) from src; for auto with the finer sizes :f1.. of p. Each
 * window once: its stored summary, or its parts, each part the stored summary of the largest
 * finer size that covers it, or the raw readings of a part of the smallest finer size that
 * none covers. */
static void sql_window_rows(sql_text *t, const params *p, st_source src) {
    static const char *const level[FINER_MAX] = {"l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8"};
    int k = src == ST_SOURCE_AUTO ? p->n_finer : 0;
    sql_add(t, "WITH ");
    sql_selection(t, p);
    if (src == ST_SOURCE_SUMMARIES) {
        sql_add(t, ", stored" PARTS " AS (");
        sql_stored(t, p, ":window", true);
        sql_add(t, ") SELECT id, u AS start_ms, n AS count, lo AS min, hi AS max, sm AS avg,"
                   " fv AS first, lv AS last, 0 AS origin FROM stored");
        return;
    }
    sql_add(t, ", r" PARTS " AS (");
    sql_raw_parts(t, k > 0 ? finer_param[k - 1] : ":window");
    sql_add(t, ")");
    for (int i = k - 1; i >= 0; i--) {
        sql_add(t, ", ");
        sql_add(t, level[i]);
        sql_add(t, PARTS " AS (");
        sql_stored(t, p, finer_param[i], false);
        sql_add(t, " UNION ALL ");
        sql_combined(t, i == k - 1 ? "r" : level[i + 1], i == k - 1, finer_param[i]);
        sql_add(t, ")");
    }
    if (src == ST_SOURCE_AUTO) {
        sql_add(t, ", w" PARTS " AS (");
        sql_combined(t, k > 0 ? level[0] : "r", k == 0, ":window");
        sql_add(t, "), stored" PARTS " AS (");
        sql_stored(t, p, ":window", true);
        sql_add(t, ")");
    }
    sql_add(t, " SELECT id, u AS start_ms, n AS count, lo AS min, hi AS max, sm / n AS avg,"
               " fv AS first, lv AS last, fs + 2 * fr AS origin FROM ");
    if (src == ST_SOURCE_RAW) {
        sql_add(t, "r");
        return;
    }
    sql_add(t, "w UNION ALL SELECT id, u, n, lo, hi, sm, fv, lv, 0 FROM stored");
}

/* The finer sizes for auto (see st_query.h): the stored sizes below p->window that divide it,
 * for the selected series and windows, found by stepping through the summaries index per series
 * (one lookup per series and size, never a scan of the summaries); then the chain, largest
 * first. This reads the internal tables behind v_summaries: the views cannot step an index. */
static int find_finer(st_query *q, params *p) {
    sql_text t = {.len = 0};
    sql_add(&t, "WITH RECURSIVE sel(id) AS (SELECT id FROM series");
    sql_where(&t, p, NULL);
    sql_add(&t,
            "), sz(id, w) AS (SELECT id, (SELECT min(window_ms) FROM summaries"
            " WHERE series_id = sel.id) FROM sel"
            " UNION ALL SELECT id, (SELECT min(window_ms) FROM summaries"
            " WHERE series_id = sz.id AND window_ms > sz.w) FROM sz"
            " WHERE sz.w < :window)"
            " SELECT DISTINCT w FROM sz WHERE w < :window AND :window % w = 0"
            " AND EXISTS (SELECT 1 FROM summaries WHERE series_id = sz.id AND window_ms = sz.w");
    if (p->since != INT64_MIN) {
        sql_add(&t, " AND start_ms >= :since");
    }
    if (p->until != INT64_MAX) {
        sql_add(&t, " AND start_ms < :until");
    }
    sql_add(&t, ") ORDER BY w DESC");
    sqlite3_stmt *st = NULL;
    int ret = prepare(q, "finer summaries", &t, p, &st);
    if (ret != 0) {
        return ret;
    }
    p->n_finer = 0;
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            break;
        }
        if (rc != SQLITE_ROW) {
            ret = fail(q, "finer summaries", rc);
            break;
        }
        int64_t w = sqlite3_column_int64(st, 0);
        if (p->n_finer < FINER_MAX && (p->n_finer == 0 || p->finer[p->n_finer - 1] % w == 0)) {
            p->finer[p->n_finer++] = w;
        }
    }
    (void)sqlite3_finalize(st); /* a failed step is already recorded */
    return ret;
}

/* The columns of a window query, around sql_window_rows. */
// clang-format off
static const char window_head[] =
    "SELECT s.sensor, s.metric, start_ms, " TS_RFC3339("start_ms") " AS start,"
    " start_ms + :window AS end_ms, count, min, max, avg, first, last, origin FROM (";
// clang-format on

/* Writes the plan of t (EXPLAIN QUERY PLAN), one step a line. */
static int write_plan(st_query *q, const sql_text *t, params *p, FILE *out) {
    sql_text e = {.len = 0};
    sql_add(&e, "EXPLAIN QUERY PLAN ");
    sql_add(&e, t->s);
    sqlite3_stmt *st = NULL;
    p->limit = 1;
    int ret = prepare(q, "plan", &e, p, &st);
    while (ret == 0) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            break;
        }
        if (rc != SQLITE_ROW) {
            ret = fail(q, "plan", rc);
        } else if (fprintf(out, "%s\n", (const char *)sqlite3_column_text(st, 3)) < 0) {
            ret = fail_msg(q, ST_EIO, "write: %s", strerror(errno != 0 ? errno : EIO));
        }
    }
    (void)sqlite3_finalize(st); /* a failed step is already recorded */
    return ret;
}

/* st_query_windows, or with plan its query plan instead of its rows. */
static int windows(st_query *q, const st_filter *f, int64_t window_ms, st_source src, st_format fmt,
                   FILE *out, st_result *res, bool plan) {
    int ret = check_args(q, f, out);
    if (ret != 0) {
        return ret;
    }
    if (window_ms < 1 || window_ms > ST_QUERY_WINDOW_MAX_MS) {
        return fail_msg(q, ST_EIO, "windows: window %lld ms is out of range 1..%lld",
                        (long long)window_ms, (long long)ST_QUERY_WINDOW_MAX_MS);
    }
    /* Whole windows: those that overlap [since, until), with all of their readings. */
    params p = {.sensor = f->sensor,
                .metric = f->metric,
                .since = align_down(f->since_ms, window_ms),
                .until = align_up(f->until_ms, window_ms),
                .window = window_ms};
    if ((ret = begin_read(q)) != 0) {
        return ret;
    }
    if (src == ST_SOURCE_AUTO && (ret = find_finer(q, &p)) != 0) {
        return end_read(q, ret);
    }
    sql_text t = {.len = 0};
    sql_add(&t, window_head);
    sql_window_rows(&t, &p, src);
    sql_add(&t, f->newest_first
                    ? ") x JOIN series s ON s.id = x.id ORDER BY start_ms DESC, sensor DESC,"
                      " metric DESC"
                    : ") x JOIN series s ON s.id = x.id ORDER BY start_ms, sensor, metric");
    sql_add(&t, " LIMIT :limit");
    ret = plan ? write_plan(q, &t, &p, out)
               : run(q, "windows", &t, &p, fmt, out, f->limit, true, res);
    return end_read(q, ret);
}

int st_query_windows(st_query *q, const st_filter *f, int64_t window_ms, st_source src,
                     st_format fmt, FILE *out, st_result *res) {
    return windows(q, f, window_ms, src, fmt, out, res, false);
}

int st__query_windows_plan(st_query *q, const st_filter *f, int64_t window_ms, st_source src,
                           FILE *out) {
    return windows(q, f, window_ms, src, ST_FORMAT_CSV, out, NULL, true);
}

int st_query_alerts(st_query *q, const st_filter *f, bool active_only, st_format fmt, FILE *out,
                    st_result *res) {
    int ret = check_args(q, f, out);
    if (ret != 0) {
        return ret;
    }
    params p = {
        .sensor = f->sensor, .metric = f->metric, .since = f->since_ms, .until = f->until_ms};
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
    ret = run(q, "alerts", &t, &p, fmt, out, f->limit, false, res);
    return end_read(q, ret);
}
