/* The storage layer on real SQLite files (docs/benchmarks.md, "Storage"). Prints one line per
 * figure on standard output, details on standard error; never asserts a time.
 *
 *   insert  raw readings through st_db (append to the staging table, merge into the indexed
 *           table, as the gateway's writer does) in transactions of --batch rows, merges
 *           included, vs the SQLite ceiling measured in the same run: plain INSERTs into an
 *           unindexed table with the same batching (1 and 32 rows a statement);
 *           target >= 400k rows/s
 *   query   p50/p99 of one-series queries over 30 days in a database of --rows readings, per
 *           shape (--shapes: series counts), with the staging table empty and full: plain SQL
 *           on v_readings (as with sqlite3) and the st_query path of `iotgw query`;
 *           target <= 50 ms
 *   size    bytes on disk per reading (after a checkpoint), with and without anomaly scores
 *   thinned (only when asked for, and in --smoke) `iotgw query --window` over the history
 *           retention leaves: --thinned-series series, 1-minute summaries for --days minus 7
 *           days, then raw readings every 10 s; target <= 50 ms
 *
 *   bench_storage [--smoke] [--only insert,query,thinned] [--rows N] [--shapes 1000,10000] ...
 *   bench_storage --help
 *
 * Database files go to a fresh directory under --dir (default $TMPDIR or /tmp) and are removed
 * at the end unless --keep. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench_storage.h"
#include "st_db.h"

#define T0_MS     1700000000000LL /* start of every generated history */
#define MAX_BATCH 1000000

/* One reading as the writer hands it to storage. */
typedef st_reading_row row;

typedef struct opts {
    const char *dir;
    bool keep, do_insert, do_query, do_thinned;
    int64_t insert_rows, insert_series, rows, queries, days, merge_rows;
    int64_t thinned_series, raw_days;
    int batch;
    int64_t shapes[8];
    int n_shapes;
} opts;

/* ---- clocks, random numbers ------------------------------------------------------------- */

static double clock_s(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bs_now_s(void) {
    return clock_s(CLOCK_MONOTONIC);
}

static double cpu_s(void) {
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

uint64_t bs_splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ---- generated readings ------------------------------------------------------------------ */

/* Readings in time order: round k gives every series one reading, series s at
 * t0 + k * step + s * step / n_series. Values have two decimals, like most payloads (SQLite
 * stores a REAL without a fraction as an integer, which would flatter the size on disk). */
typedef struct gen {
    const int64_t *ids; /* series id of each series index */
    int64_t n_series, t0_ms, step_ms, next;
    bool scored;
    uint64_t rng;
} gen;

static void gen_fill(gen *g, row *rows, size_t n) {
    for (size_t i = 0; i < n; i++, g->next++) {
        int64_t s = g->next % g->n_series, k = g->next / g->n_series;
        uint64_t r = bs_splitmix(&g->rng);
        rows[i] = (row){
            .series_id = g->ids[s],
            .ts_ms = g->t0_ms + k * g->step_ms + s * g->step_ms / g->n_series,
            .value = 20.0 + (double)(s % 50) + (double)(r % 1000) / 100.0,
            .anomaly = g->scored ? (double)(r >> 40) / (double)(1ULL << 24) : NAN,
        };
    }
}

/* ---- the write path ---------------------------------------------------------------------- */

/* The one place where readings enter st_db. When the multi-row st_db_insert_readings(db,
 * rows, n) exists, the loop becomes `return st_db_insert_readings(db, rows, n);` (and row
 * becomes its row type). */
/* The writer's path: multi-row statements; generated histories go forward in time per series,
 * so no row may repeat another (the writer's n_maybe_dup is 0). */
static int insert_rows(st_db *db, const row *rows, size_t n) {
    return st_db_insert_readings(db, rows, n, 0, NULL);
}

/* The default merge threshold of st_db.h: max(262144, 64 x number of series). */
static int64_t default_merge_rows(int64_t n_series) {
    return n_series * 64 > 262144 ? n_series * 64 : 262144;
}

typedef struct writer {
    st_db *db;
    row *buf;
    int batch;
    int64_t merge_rows; /* merge once this many are staged */
    int64_t staged;     /* readings not merged yet */
    int64_t rows, merges;
    double write_s, merge_s, max_merge_s;
} writer;

static int open_writer(writer *w, const char *path, int batch, int64_t merge_rows) {
    char err[512];
    /* st_db_commit would merge by itself; the threshold is set out of reach so that merges run
     * from here, at the same point (after the commit that reaches merge_rows), and are timed
     * on their own. */
    st_db_opts o = {.merge_rows = 2000000000};
    *w = (writer){.batch = batch, .merge_rows = merge_rows};
    w->buf = malloc(sizeof(row) * (size_t)batch);
    if (w->buf == NULL) {
        fprintf(stderr, "bench_storage: out of memory\n");
        return -1;
    }
    if (st_db_open(&w->db, path, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_storage: open %s: %s\n", path, err);
        free(w->buf);
        return -1;
    }
    return 0;
}

static void close_writer(writer *w) {
    st_db_close(w->db);
    free(w->buf);
}

static int fail_db(st_db *db, const char *what) {
    fprintf(stderr, "bench_storage: %s: %s\n", what, st_db_errmsg(db));
    return -1;
}

/* Creates the series s000000... with metric "temp" and writes their ids to ids. */
static int make_series(writer *w, int64_t n, int64_t *ids) {
    if (st_db_begin(w->db) != 0) {
        return fail_db(w->db, "begin");
    }
    for (int64_t s = 0; s < n; s++) {
        char name[32];
        snprintf(name, sizeof(name), "s%06" PRId64, s);
        if (st_db_series_id(w->db, name, "temp", &ids[s]) != 0) {
            return fail_db(w->db, "series");
        }
    }
    return st_db_commit(w->db) == 0 ? 0 : fail_db(w->db, "commit");
}

static int merge_now(writer *w) {
    double t = bs_now_s();
    if (st_db_merge(w->db) != 0) {
        return fail_db(w->db, "merge");
    }
    t = bs_now_s() - t;
    w->merge_s += t;
    w->max_merge_s = t > w->max_merge_s ? t : w->max_merge_s;
    w->merges++;
    w->staged = 0;
    return 0;
}

/* Writes n readings of g in transactions of w->batch rows; merges when due unless no_merge. */
static int write_readings(writer *w, gen *g, int64_t n, bool no_merge) {
    double t = bs_now_s();
    for (int64_t done = 0; done < n;) {
        size_t k = (size_t)(n - done < w->batch ? n - done : w->batch);
        gen_fill(g, w->buf, k);
        if (st_db_begin(w->db) != 0) {
            return fail_db(w->db, "begin");
        }
        if (insert_rows(w->db, w->buf, k) != 0) {
            return fail_db(w->db, "insert");
        }
        if (st_db_commit(w->db) != 0) {
            return fail_db(w->db, "commit");
        }
        done += (int64_t)k;
        w->staged += (int64_t)k;
        if (!no_merge && w->staged >= w->merge_rows && merge_now(w) != 0) {
            return -1;
        }
    }
    w->rows += n;
    w->write_s += bs_now_s() - t;
    return 0;
}

/* ---- the SQLite ceiling ------------------------------------------------------------------ */

static int sql_fail(sqlite3 *h, const char *what) {
    fprintf(stderr, "bench_storage: %s: %s\n", what, sqlite3_errmsg(h));
    return -1;
}

static int exec(sqlite3 *h, const char *sql) {
    return sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : sql_fail(h, sql);
}

/* Binds k rows to the placeholders of st, 4 a row. */
static int bind_rows(sqlite3_stmt *st, const row *r, int k) {
    for (int i = 0; i < k; i++) {
        int c = i * 4;
        if (sqlite3_bind_int64(st, c + 1, r[i].series_id) != SQLITE_OK ||
            sqlite3_bind_int64(st, c + 2, r[i].ts_ms) != SQLITE_OK ||
            sqlite3_bind_double(st, c + 3, r[i].value) != SQLITE_OK ||
            (isnan(r[i].anomaly) ? sqlite3_bind_null(st, c + 4)
                                 : sqlite3_bind_double(st, c + 4, r[i].anomaly)) != SQLITE_OK) {
            return -1;
        }
    }
    return 0;
}

/* Plain INSERTs of n readings of g into an unindexed STRICT table, per_stmt rows a statement,
 * with st_db's pragmas (WAL, synchronous NORMAL, 2 MiB cache) and batching. Writes the time. */
static int ceiling(const char *path, gen *g, int64_t n, int batch, int per_stmt, row *buf,
                   double *secs) {
    sqlite3 *h = NULL;
    sqlite3_stmt *one = NULL, *many = NULL;
    char sql[4096];
    int ret = -1;
    if (sqlite3_open(path, &h) != SQLITE_OK) {
        fprintf(stderr, "bench_storage: open %s failed\n", path);
        goto out;
    }
    if (exec(h, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                " PRAGMA journal_size_limit = 67108864; PRAGMA cache_size = -2048;"
                " CREATE TABLE t(series_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL,"
                " value REAL NOT NULL, anomaly REAL) STRICT") != 0) {
        goto out;
    }
    size_t len = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO t VALUES(?,?,?,?)");
    for (int i = 1; i < per_stmt && len + 12 < sizeof(sql); i++) {
        len += (size_t)snprintf(sql + len, sizeof(sql) - len, ",(?,?,?,?)");
    }
    if (sqlite3_prepare_v2(h, "INSERT INTO t VALUES(?,?,?,?)", -1, &one, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h, sql, -1, &many, NULL) != SQLITE_OK) {
        sql_fail(h, "prepare");
        goto out;
    }
    double t = bs_now_s();
    for (int64_t done = 0; done < n;) {
        int k = (int)(n - done < batch ? n - done : batch);
        gen_fill(g, buf, (size_t)k);
        if (exec(h, "BEGIN IMMEDIATE") != 0) {
            goto out;
        }
        for (int i = 0; i < k;) {
            bool full = per_stmt > 1 && k - i >= per_stmt;
            sqlite3_stmt *st = full ? many : one;
            int m = full ? per_stmt : 1;
            if (bind_rows(st, buf + i, m) != 0 || sqlite3_step(st) != SQLITE_DONE) {
                sql_fail(h, "insert");
                goto out;
            }
            sqlite3_reset(st);
            i += m;
        }
        if (exec(h, "COMMIT") != 0) {
            goto out;
        }
        done += k;
    }
    *secs = bs_now_s() - t;
    ret = 0;
out:
    sqlite3_finalize(one);
    sqlite3_finalize(many);
    sqlite3_close(h);
    return ret;
}

/* ---- files and sizes --------------------------------------------------------------------- */

/* dir/name into out; false when it does not fit. */
static bool join_path(char *out, size_t len, const char *dir, const char *name) {
    int n = snprintf(out, len, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= len) {
        fprintf(stderr, "bench_storage: path too long: %s/%s\n", dir, name);
        return false;
    }
    return true;
}

static void remove_db(const char *path) {
    char p[4200];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
        (void)unlink(p);
    }
}

static int64_t file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

int64_t bs_pragma_int(sqlite3 *h, const char *sql) {
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

/* Checkpoints the log into the file (through the writer's connection), then reports the file
 * size per reading on stdout under label and the share of each table and index on stderr. */
static int report_size(writer *w, const char *path, const char *label, int64_t readings) {
    if (st_db_exec(w->db, "PRAGMA wal_checkpoint(TRUNCATE)") != 0) {
        return fail_db(w->db, "checkpoint");
    }
    sqlite3 *h = NULL;
    if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(h);
        fprintf(stderr, "bench_storage: open %s read-only failed\n", path);
        return -1;
    }
    char wal[4200];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    int64_t size = file_size(path), page = bs_pragma_int(h, "PRAGMA page_size");
    int64_t pages = bs_pragma_int(h, "PRAGMA page_count");
    int64_t free_pages = bs_pragma_int(h, "PRAGMA freelist_count");
    printf("size %s: %.1f bytes/reading on disk (%" PRId64 " bytes for %" PRId64
           " readings after a checkpoint, wal %" PRId64 " bytes); %.1f without the %" PRId64
           " free pages (page_size %" PRId64 ")\n",
           label, (double)size / (double)readings, size, readings, file_size(wal),
           (double)((pages - free_pages) * page) / (double)readings, free_pages, page);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(h,
                           "SELECT name, sum(pgsize) FROM dbstat GROUP BY name"
                           " HAVING sum(pgsize) > 1048576 ORDER BY 2 DESC",
                           -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            fprintf(stderr, "  %s: %s %.1f bytes/reading\n", label,
                    (const char *)sqlite3_column_text(st, 0),
                    (double)sqlite3_column_int64(st, 1) / (double)readings);
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    fflush(stdout);
    return 0;
}

/* ---- insert ------------------------------------------------------------------------------ */

/* One pass of o->insert_rows readings of o->insert_series series through st_db. */
static int insert_pass(const opts *o, const char *dir, const char *label, bool scored,
                       const char *pragma, double ceiling_rate[2]) {
    char path[4096];
    if (!join_path(path, sizeof(path), dir, "insert.db")) {
        return -1;
    }
    int64_t *ids = calloc((size_t)o->insert_series, sizeof(*ids));
    writer w;
    int ret = -1;
    if (ids == NULL || open_writer(&w, path, o->batch,
                                   o->merge_rows > 0 ? o->merge_rows
                                                     : default_merge_rows(o->insert_series)) != 0) {
        free(ids);
        return -1;
    }
    if (make_series(&w, o->insert_series, ids) != 0 ||
        (pragma != NULL && st_db_exec(w.db, pragma) != 0)) {
        goto out;
    }
    gen g = {ids, o->insert_series, T0_MS, 1000, 0, scored, 42};
    double cpu = cpu_s();
    if (write_readings(&w, &g, o->insert_rows, false) != 0) {
        goto out;
    }
    double final_t = bs_now_s();
    int64_t final_rows = w.staged;
    if (w.staged > 0 && merge_now(&w) != 0) {
        goto out;
    }
    final_t = bs_now_s() - final_t;
    cpu = cpu_s() - cpu;
    double total = w.write_s + final_t, rate = (double)w.rows / total;
    printf("insert %s: %.0f rows/s through st_db, merges included (%" PRId64 " readings, %" PRId64
           " series in time order, %d-row transactions, merge every %" PRId64 " rows: %" PRId64
           " merges incl. the final one of %" PRId64
           " rows, %.0f%% of the time, longest %.2f s; %.2f s, CPU %.2f s)",
           label, rate, w.rows, o->insert_series, o->batch, w.merge_rows, w.merges, final_rows,
           100.0 * w.merge_s / total, w.max_merge_s, total, cpu);
    if (ceiling_rate != NULL) {
        printf("; ratio to the SQLite ceiling %.2f (1 row a statement), %.2f (32 rows)",
               rate / ceiling_rate[0], rate / ceiling_rate[1]);
    }
    printf(" (target >= 400000 rows/s)\n");
    fprintf(stderr, "  insert %s: append %.2f us/row, merge %.2f us/row\n", label,
            1e6 * (total - w.merge_s) / (double)w.rows, 1e6 * w.merge_s / (double)w.rows);
    fflush(stdout);
    ret = report_size(&w, path, label, w.rows);
out:
    close_writer(&w);
    free(ids);
    remove_db(path);
    return ret;
}

static int bench_insert(const opts *o, const char *dir) {
    char path[4096];
    if (!join_path(path, sizeof(path), dir, "ceiling.db")) {
        return -1;
    }
    row *buf = malloc(sizeof(row) * (size_t)o->batch);
    int64_t *ids = calloc((size_t)o->insert_series, sizeof(*ids));
    double secs[2] = {0, 0}, rate[2];
    int ret = -1;
    if (buf == NULL || ids == NULL) {
        goto out;
    }
    for (int64_t s = 0; s < o->insert_series; s++) {
        ids[s] = s + 1;
    }
    for (int i = 0; i < 2; i++) {
        gen g = {ids, o->insert_series, T0_MS, 1000, 0, false, 42};
        int ok = ceiling(path, &g, o->insert_rows, o->batch, i == 0 ? 1 : 32, buf, &secs[i]);
        remove_db(path);
        if (ok != 0) {
            goto out;
        }
        rate[i] = (double)o->insert_rows / secs[i];
    }
    printf("insert ceiling: %.0f rows/s plain INSERT into an unindexed table, 1 row a statement;"
           " %.0f rows/s 32 rows a statement (%" PRId64 " readings, %d-row transactions)\n",
           rate[0], rate[1], o->insert_rows, o->batch);
    fflush(stdout);
    if (insert_pass(o, dir, "raw", false, NULL, rate) != 0 ||
        insert_pass(o, dir, "scored", true, NULL, NULL) != 0 ||
        /* Debian builds SQLite with SECURE_DELETE: the merge's DELETE then overwrites every
         * freed page of the staging table with zeros, i.e. writes it once more. */
        insert_pass(o, dir, "raw, secure_delete off", false, "PRAGMA secure_delete = OFF", rate) !=
            0) {
        goto out;
    }
    ret = 0;
out:
    free(buf);
    free(ids);
    return ret;
}

/* Builds a database of o->rows readings of n_series series over o->days days through st_db,
 * queries it with the staging table empty, fills the staging table to just below the merge
 * threshold with newer readings, and queries it again. */
static int bench_query_shape(const opts *o, const char *dir, int64_t n_series) {
    char path[4096], label[128];
    if (!join_path(path, sizeof(path), dir, "query.db")) {
        return -1;
    }
    int64_t per_series = o->rows / n_series;
    int64_t step = o->days * DAY_MS / per_series;
    int64_t *ids = calloc((size_t)n_series, sizeof(*ids));
    int64_t merge_rows = o->merge_rows > 0 ? o->merge_rows : default_merge_rows(n_series);
    writer w;
    int ret = -1;
    if (ids == NULL || per_series < 2 || step < 1) {
        fprintf(stderr, "bench_storage: %" PRId64 " rows cannot fill %" PRId64 " series\n", o->rows,
                n_series);
        free(ids);
        return -1;
    }
    if (open_writer(&w, path, o->batch, merge_rows) != 0) {
        free(ids);
        return -1;
    }
    if (make_series(&w, n_series, ids) != 0) {
        goto out;
    }
    gen g = {ids, n_series, T0_MS, step, 0, false, 99};
    int64_t total = per_series * n_series, tenth = total / 10 > 0 ? total / 10 : total;
    double cpu = cpu_s(), last_rate = 0;
    fprintf(stderr, "  building %" PRId64 " x %" PRId64 " (one reading every %.1f s)\n", n_series,
            per_series, (double)step / 1000.0);
    for (int64_t done = 0; done < total; done += tenth) {
        int64_t n = total - done < tenth ? total - done : tenth;
        double t = bs_now_s();
        if (write_readings(&w, &g, n, false) != 0) {
            goto out;
        }
        last_rate = (double)n / (bs_now_s() - t);
        fprintf(stderr, "  built %" PRId64 " rows, %.0f rows/s for the last %" PRId64 "\n",
                done + n, last_rate, n);
    }
    double t = bs_now_s();
    if (w.staged > 0 && merge_now(&w) != 0) {
        goto out;
    }
    double secs = w.write_s + bs_now_s() - t;
    snprintf(label, sizeof(label), "%" PRId64 " x %" PRId64, n_series, per_series);
    printf("build %s: %.0f rows/s through st_db, merges included, %" PRId64 " readings in %.0f s;"
           " %.0f rows/s for the last tenth (merges %.0f%% of the time, %" PRId64
           " merges, longest %.2f s; CPU %.0f s)\n",
           label, (double)w.rows / secs, w.rows, secs, last_rate, 100.0 * w.merge_s / secs,
           w.merges, w.max_merge_s, cpu_s() - cpu);
    if (report_size(&w, path, label, w.rows) != 0) {
        goto out;
    }
    int64_t end = T0_MS + per_series * step;
    snprintf(label, sizeof(label), "%" PRId64 " x %" PRId64 ", staging empty", n_series,
             per_series);
    if (bs_query_pass(o->queries, o->days, path, label, n_series, end, per_series, true) != 0) {
        goto out;
    }
    /* Staging full: as many newer readings as st_db stages before it merges, still staged. */
    int64_t more = merge_rows - 1;
    if (write_readings(&w, &g, more, true) != 0) {
        goto out;
    }
    end = T0_MS + (g.next + n_series - 1) / n_series * step;
    snprintf(label, sizeof(label), "%" PRId64 " x %" PRId64 ", staging full (%" PRId64 " rows)",
             n_series, per_series, more);
    if (bs_query_pass(o->queries, o->days, path, label, n_series, end, per_series, false) != 0) {
        goto out;
    }
    ret = 0;
out:
    close_writer(&w);
    free(ids);
    remove_db(path);
    return ret;
}

/* ---- main -------------------------------------------------------------------------------- */

static const char usage_text[] =
    "usage: bench_storage [options]\n"
    "  --only LIST          insert,query,thinned (default insert,query)\n"
    "  --rows N             readings in the query database (default 50000000)\n"
    "  --shapes LIST        series counts of the query databases (default 1000,10000)\n"
    "  --days D             history span (default 30)\n"
    "  --queries N          random series per query kind (default 300)\n"
    "  --thinned-series N   series of the thinned history (default 1000)\n"
    "  --raw-days D         its days of raw readings, the last ones (default 7)\n"
    "  --insert-rows N      readings of each insert pass (default 5000000)\n"
    "  --insert-series N    series of the insert passes (default 10000)\n"
    "  --batch N            rows per transaction (default 5000, the writer's batch_rows)\n"
    "  --merge-rows N       merge threshold (default st_db's: max(262144, 64 x series))\n"
    "  --dir DIR            where the database files go (default $TMPDIR or /tmp)\n"
    "  --keep               keep the directory (the files are removed after each pass anyway)\n"
    "  --smoke              tiny sizes: proves the program works, the figures mean nothing\n";

static bool parse_i64(const char *s, int64_t lo, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo) {
        return false;
    }
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv, opts *o) {
    const char *tmp = getenv("TMPDIR");
    *o = (opts){.dir = tmp != NULL && *tmp != '\0' ? tmp : "/tmp",
                .do_insert = true,
                .do_query = true,
                .insert_rows = 5000000,
                .insert_series = 10000,
                .rows = 50000000,
                .queries = 300,
                .days = 30,
                .thinned_series = 1000,
                .raw_days = 7,
                .batch = 5000,
                .shapes = {1000, 10000},
                .n_shapes = 2};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n;
        bool ok = true, takes = true;
        if (strcmp(a, "--smoke") == 0) {
            o->insert_rows = 60000, o->insert_series = 200, o->rows = 40000, o->queries = 20;
            o->shapes[0] = 20, o->shapes[1] = 200, o->merge_rows = 10000;
            o->do_thinned = true, o->thinned_series = 5, o->days = 3, o->raw_days = 1;
            takes = false;
        } else if (strcmp(a, "--keep") == 0) {
            o->keep = true, takes = false;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            exit(0);
        } else if (v == NULL) {
            ok = false;
        } else if (strcmp(a, "--only") == 0) {
            o->do_insert = strstr(v, "insert") != NULL;
            o->do_query = strstr(v, "query") != NULL;
            o->do_thinned = strstr(v, "thinned") != NULL;
            ok = o->do_insert || o->do_query || o->do_thinned;
        } else if (strcmp(a, "--shapes") == 0) {
            o->n_shapes = 0;
            for (char *p = (char *)v, *e; *p != '\0' && o->n_shapes < 8; p = *e ? e + 1 : e) {
                long long s = strtoll(p, &e, 10);
                ok = ok && s >= 1 && e != p && (*e == ',' || *e == '\0');
                if (!ok) {
                    break;
                }
                o->shapes[o->n_shapes++] = s;
            }
        } else if (strcmp(a, "--dir") == 0) {
            o->dir = v;
        } else if (strcmp(a, "--batch") == 0 && parse_i64(v, 1, &n) && n <= MAX_BATCH) {
            o->batch = (int)n;
        } else {
            int64_t *dst = strcmp(a, "--rows") == 0             ? &o->rows
                           : strcmp(a, "--days") == 0           ? &o->days
                           : strcmp(a, "--queries") == 0        ? &o->queries
                           : strcmp(a, "--insert-rows") == 0    ? &o->insert_rows
                           : strcmp(a, "--insert-series") == 0  ? &o->insert_series
                           : strcmp(a, "--merge-rows") == 0     ? &o->merge_rows
                           : strcmp(a, "--thinned-series") == 0 ? &o->thinned_series
                           : strcmp(a, "--raw-days") == 0       ? &o->raw_days
                                                                : NULL;
            ok = dst != NULL && parse_i64(v, 1, dst);
        }
        if (!ok) {
            fprintf(stderr, "bench_storage: bad option %s%s%s\n%s", a, v ? " " : "", v ? v : "",
                    usage_text);
            return -1;
        }
        i += takes ? 1 : 0;
    }
    return 0;
}

int main(int argc, char **argv) {
    opts o;
    if (parse_args(argc, argv, &o) != 0) {
        return 2;
    }
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/iotgw-bench-storage-XXXXXX", o.dir);
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "bench_storage: mkdtemp %s: %s\n", dir, strerror(errno));
        return 1;
    }
    fprintf(stderr, "  bench_storage: SQLite %s, files in %s, writer cache 2 MiB (st_db)\n",
            sqlite3_libversion(), dir);
    int ret = 0;
    if (o.do_insert) {
        ret = bench_insert(&o, dir);
    }
    for (int i = 0; ret == 0 && o.do_query && i < o.n_shapes; i++) {
        ret = bench_query_shape(&o, dir, o.shapes[i]);
    }
    if (ret == 0 && o.do_thinned) {
        if (o.raw_days >= o.days) {
            fprintf(stderr, "bench_storage: --raw-days must be below --days\n");
            ret = -1;
        } else {
            ret = bs_thinned_pass(dir, o.thinned_series, o.days, o.raw_days, o.queries);
        }
    }
    if (!o.keep && rmdir(dir) != 0) {
        fprintf(stderr, "bench_storage: rmdir %s: %s\n", dir, strerror(errno));
    }
    return ret == 0 ? 0 : 1;
}
