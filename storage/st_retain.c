/* Retention: downsampling, roll-up and deletion in small batches. See st_retain.h. */
#include "st_retain.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "quantile.h"

/* What visiting one series costs in the row budget when nothing is due: about eight index
 * lookups (next series, raw, each window size, predictions), each about as dear as a few
 * rows read. */
#define SERIES_COST 8

/* ---- statements: one table drives preparation and finalization --------------------------- */

enum q_id {
    Q_NEXT_SERIES,
    Q_RAW_SCAN,
    Q_RAW_NTH,
    Q_RAW_DELETE,
    Q_NEXT_WINDOW,
    Q_SUM_EXISTS,
    Q_SUM_INSERT,
    Q_SUM_SCAN,
    Q_SUM_NTH,
    Q_SUM_DELETE,
    Q_PRED_NTH,
    Q_PRED_DELETE,
    Q_ALERT_RANGE,
    Q_ALERT_DELETE,
    Q__COUNT
};

/* Every query on readings, summaries and predictions names series_id and a time range, so that
 * it runs on the (series_id, ts_ms) and (series_id, window_ms, start_ms) indexes of both the
 * rowid and the WITHOUT ROWID layouts; deletes are bounded by a time found with LIMIT/OFFSET
 * rather than by rowids. */
static const struct {
    const char *what;
    const char *sql;
} q_defs[Q__COUNT] = {
    [Q_NEXT_SERIES] = {"retention: next series",
                       "SELECT id FROM series WHERE id > ?1 ORDER BY id LIMIT 1"},
    [Q_RAW_SCAN] = {"retention: read raw readings",
                    "SELECT ts_ms, value FROM readings WHERE series_id = ?1 AND ts_ms < ?2"
                    " ORDER BY ts_ms"},
    [Q_RAW_NTH] = {"retention: find raw batch end",
                   "SELECT ts_ms FROM readings WHERE series_id = ?1 AND ts_ms < ?2"
                   " ORDER BY ts_ms LIMIT 1 OFFSET ?3"},
    [Q_RAW_DELETE] = {"retention: delete raw readings",
                      "DELETE FROM readings WHERE series_id = ?1 AND ts_ms < ?2"},
    [Q_NEXT_WINDOW] = {"retention: next window size",
                       "SELECT min(window_ms) FROM summaries WHERE series_id = ?1"
                       " AND window_ms > ?2"},
    [Q_SUM_EXISTS] = {"retention: find summary",
                      "SELECT 1 FROM summaries WHERE series_id = ?1 AND window_ms = ?2"
                      " AND start_ms = ?3 LIMIT 1"},
    [Q_SUM_INSERT] = {"retention: insert summary",
                      "INSERT INTO summaries(series_id, window_ms, start_ms, count, min, max,"
                      " mean, stddev, first, last, p50, p95)"
                      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"},
    [Q_SUM_SCAN] = {"retention: read summaries",
                    "SELECT start_ms, count, min, max, mean, stddev, first, last, p50, p95"
                    " FROM summaries WHERE series_id = ?1 AND window_ms = ?2 AND start_ms < ?3"
                    " ORDER BY start_ms"},
    [Q_SUM_NTH] = {"retention: find summary batch end",
                   "SELECT start_ms FROM summaries WHERE series_id = ?1 AND window_ms = ?2"
                   " AND start_ms < ?3 ORDER BY start_ms LIMIT 1 OFFSET ?4"},
    [Q_SUM_DELETE] = {"retention: delete summaries",
                      "DELETE FROM summaries WHERE series_id = ?1 AND window_ms = ?2"
                      " AND start_ms < ?3"},
    [Q_PRED_NTH] = {"retention: find prediction batch end",
                    "SELECT ts_ms FROM predictions WHERE series_id = ?1 AND ts_ms < ?2"
                    " ORDER BY ts_ms LIMIT 1 OFFSET ?3"},
    [Q_PRED_DELETE] = {"retention: delete predictions",
                       "DELETE FROM predictions WHERE series_id = ?1 AND ts_ms < ?2"},
    [Q_ALERT_RANGE] = {"retention: alert ids", "SELECT min(id), max(id) FROM alerts"},
    /* The newest row of a (series, kind, rule) is never deleted (EXISTS finds a newer one
     * through alerts_series_kind_rule), so v_active_alerts stays as it was. */
    [Q_ALERT_DELETE] = {"retention: delete alerts",
                        "DELETE FROM alerts WHERE id IN (SELECT a.id FROM alerts a"
                        " WHERE a.id > ?1 AND a.id <= ?2 AND a.published = 1 AND a.ts_ms < ?3"
                        " AND EXISTS (SELECT 1 FROM alerts b WHERE b.series_id IS a.series_id"
                        " AND b.kind IS a.kind AND b.rule IS a.rule AND b.id > a.id))"},
};

enum phase { PH_IDLE, PH_STAGED, PH_SERIES, PH_ALERTS, PH_DONE };
enum sub { SUB_NEXT, SUB_RAW, SUB_WINDOW_NEXT, SUB_WINDOW, SUB_PRED };

/* A summary made by a pass, waiting for its insert (after the scan that made it is reset). */
typedef struct made_summary {
    int64_t start_ms;
    int64_t count;
    double min, max, mean, stddev, first, last, p50, p95;
} made_summary;

struct st_retain {
    st_db *db;
    sqlite3 *h;
    st_retain_cfg cfg;
    sqlite3_stmt *q[Q__COUNT];
    char err[512];

    /* The pass under way. */
    enum phase phase;
    enum sub sub;
    int64_t now, raw_cut, pred_cut, alert_cut;
    int64_t series_id;
    int64_t window_ms;
    int64_t alert_pos, alert_max;
    st_retain_counts step; /* what the step under way did, added up on commit */

    /* Work buffers, grown as needed and kept. */
    double *vals;
    size_t n_vals, cap_vals;
    made_summary *made;
    size_t n_made, cap_made;
};

/* ---- errors and small helpers ------------------------------------------------------------ */

static int map_rc(int rc) {
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return ST_EFULL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return ST_EBUSY;
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return ST_EREADONLY;
    case SQLITE_NOMEM:
        return ST_ENOMEM;
    default:
        return ST_EIO;
    }
}

static int fail(st_retain *r, enum q_id id, int rc) {
    snprintf(r->err, sizeof(r->err), "%s: %s", q_defs[id].what, sqlite3_errmsg(r->h));
    return map_rc(rc);
}

static int fail_msg(st_retain *r, int code, const char *msg) {
    snprintf(r->err, sizeof(r->err), "retention: %s", msg);
    return code;
}

/* Binds 64-bit integers to ?1..?n. */
static int bind_all(st_retain *r, enum q_id id, const int64_t *v, int n) {
    for (int i = 0; i < n; i++) {
        int rc = sqlite3_bind_int64(r->q[id], i + 1, v[i]);
        if (rc != SQLITE_OK) {
            return fail(r, id, rc);
        }
    }
    return 0;
}

/* Runs a bound statement that returns no row; adds the rows it changed to *changed. */
static int run_done(st_retain *r, enum q_id id, uint64_t *changed) {
    int rc = sqlite3_step(r->q[id]);
    int ret = rc == SQLITE_DONE ? 0 : fail(r, id, rc);
    (void)sqlite3_reset(r->q[id]); /* repeats the step's error, reported above */
    if (ret == 0 && changed != NULL) {
        *changed += (uint64_t)sqlite3_changes64(r->h);
    }
    return ret;
}

/* Runs a statement that returns at most one row of integers: *found tells whether it had a
 * row whose first column is not NULL; out[0..n) get the columns. */
static int run_ints(st_retain *r, enum q_id id, int64_t *out, int n, bool *found) {
    int rc = sqlite3_step(r->q[id]);
    int ret = 0;
    *found = false;
    if (rc == SQLITE_ROW) {
        *found = sqlite3_column_type(r->q[id], 0) != SQLITE_NULL;
        for (int i = 0; i < n; i++) {
            out[i] = sqlite3_column_int64(r->q[id], i);
        }
    } else if (rc != SQLITE_DONE) {
        ret = fail(r, id, rc);
    }
    (void)sqlite3_reset(r->q[id]);
    return ret;
}

/* floor(a / b) * b for b > 0, also for negative a (times before 1970). */
static int64_t align_down(int64_t a, int64_t b) {
    int64_t q = a / b;
    if (a % b != 0 && a < 0) {
        q--;
    }
    return q * b;
}

/* now - keep, or INT64_MIN (nothing is due) when keep is 0 (forever). */
static int64_t cutoff(int64_t now, int64_t keep) {
    return keep > 0 ? now - keep : INT64_MIN;
}

static int push_val(st_retain *r, double v) {
    if (r->n_vals == r->cap_vals) {
        size_t cap = r->cap_vals ? r->cap_vals * 2 : 1024;
        double *nv = realloc(r->vals, cap * sizeof(*nv));
        if (nv == NULL) {
            return fail_msg(r, ST_ENOMEM, "out of memory");
        }
        r->vals = nv;
        r->cap_vals = cap;
    }
    r->vals[r->n_vals++] = v;
    return 0;
}

static int push_made(st_retain *r, const made_summary *m) {
    if (r->n_made == r->cap_made) {
        size_t cap = r->cap_made ? r->cap_made * 2 : 64;
        made_summary *nm = realloc(r->made, cap * sizeof(*nm));
        if (nm == NULL) {
            return fail_msg(r, ST_ENOMEM, "out of memory");
        }
        r->made = nm;
        r->cap_made = cap;
    }
    r->made[r->n_made++] = *m;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- life cycle -------------------------------------------------------------------------- */

static const char *check_cfg(const st_retain_cfg *c) {
    if (c->batch_rows < 1) {
        return "batch_rows must be >= 1";
    }
    if (c->raw_ms < 0 || c->downsample_ms < 0 || c->other_summaries_ms < 0 ||
        c->predictions_ms < 0 || c->alerts_ms < 0 || c->n_windows > ST_RETAIN_MAX_WINDOWS) {
        return "negative keep, or too many windows";
    }
    for (size_t i = 0; i < c->n_windows; i++) {
        const st_retain_window *w = &c->windows[i];
        if (w->window_ms < 1 || w->keep_ms < 0 || w->into_ms < 0) {
            return "a window needs window_ms >= 1 and keep_ms, into_ms >= 0";
        }
        if (w->into_ms != 0 && (w->into_ms <= w->window_ms || w->into_ms % w->window_ms != 0)) {
            return "into_ms must be a larger multiple of window_ms";
        }
        for (size_t k = 0; k < i; k++) {
            if (c->windows[k].window_ms == w->window_ms) {
                return "a window_ms is listed twice";
            }
        }
    }
    return NULL;
}

int st_retain_new(st_retain **out, st_db *db, const st_retain_cfg *cfg, char *err, size_t errlen) {
    int ret = ST_EIO;
    const char *why = cfg != NULL ? check_cfg(cfg) : "no configuration";
    if (db == NULL || out == NULL || why != NULL) {
        snprintf(err, errlen, "retention: %s", why != NULL ? why : "no database");
        return ST_EIO;
    }
    st_retain *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(err, errlen, "retention: out of memory");
        return ST_ENOMEM;
    }
    r->db = db;
    r->h = st_db_handle(db);
    r->cfg = *cfg;
    for (int i = 0; i < Q__COUNT; i++) {
        int rc =
            sqlite3_prepare_v3(r->h, q_defs[i].sql, -1, SQLITE_PREPARE_PERSISTENT, &r->q[i], NULL);
        if (rc != SQLITE_OK) {
            ret = fail(r, (enum q_id)i, rc);
            snprintf(err, errlen, "prepare %s", r->err);
            goto fail_prepare;
        }
    }
    *out = r;
    return 0;

fail_prepare:
    st_retain_free(r);
    return ret;
}

void st_retain_free(st_retain *r) {
    if (r == NULL) {
        return;
    }
    for (int i = 0; i < Q__COUNT; i++) {
        (void)sqlite3_finalize(r->q[i]); /* only repeats errors reported before */
    }
    free(r->vals);
    free(r->made);
    free(r);
}

bool st_retain_running(const st_retain *r) {
    return r != NULL && r->phase != PH_IDLE;
}

const char *st_retain_errmsg(const st_retain *r) {
    return r != NULL ? r->err : "";
}

/* ---- summaries made by a pass ------------------------------------------------------------ */

/* Summarises r->vals (one downsample window's values in ts order) into r->made. */
static int finish_window(st_retain *r, int64_t start_ms) {
    size_t n = r->n_vals;
    double *v = r->vals;
    made_summary m = {.start_ms = start_ms, .count = (int64_t)n, .first = v[0], .last = v[n - 1]};
    double mean = 0.0, m2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = v[i] - mean;
        mean += d / (double)(i + 1);
        m2 += d * (v[i] - mean);
    }
    m.mean = mean;
    m.stddev = n > 1 ? sqrt(m2 / (double)(n - 1)) : 0.0;
    qsort(v, n, sizeof(*v), cmp_double);
    m.min = v[0];
    m.max = v[n - 1];
    m.p50 = an_quantile_sorted(v, n, 0.5);
    m.p95 = an_quantile_sorted(v, n, 0.95);
    r->n_vals = 0;
    return push_made(r, &m);
}

/* Inserts the summaries of r->made as window_ms rows of the current series, each unless the
 * series has a summary of that window and start already; counts the inserts in *made. */
static int insert_made(st_retain *r, int64_t window_ms, uint64_t *made) {
    int ret = 0;
    for (size_t i = 0; i < r->n_made && ret == 0; i++) {
        const made_summary *m = &r->made[i];
        const int64_t key[3] = {r->series_id, window_ms, m->start_ms};
        int64_t one;
        bool exists;
        if ((ret = bind_all(r, Q_SUM_EXISTS, key, 3)) != 0 ||
            (ret = run_ints(r, Q_SUM_EXISTS, &one, 1, &exists)) != 0 || exists) {
            continue;
        }
        sqlite3_stmt *st = r->q[Q_SUM_INSERT];
        const double d[8] = {m->min, m->max, m->mean, m->stddev, m->first, m->last, m->p50, m->p95};
        int rc = SQLITE_OK;
        for (int k = 0; k < 3 && rc == SQLITE_OK; k++) {
            rc = sqlite3_bind_int64(st, k + 1, key[k]);
        }
        if (rc == SQLITE_OK) {
            rc = sqlite3_bind_int64(st, 4, m->count);
        }
        for (int k = 0; k < 8 && rc == SQLITE_OK; k++) {
            rc = sqlite3_bind_double(st, k + 5, d[k]);
        }
        ret = rc == SQLITE_OK ? run_done(r, Q_SUM_INSERT, made) : fail(r, Q_SUM_INSERT, rc);
    }
    r->n_made = 0;
    return ret;
}

/* ---- the steps of a series --------------------------------------------------------------- */

/* Deletes the oldest rows below the cutoff, about *budget of them: finds the time of the row
 * after the budget (nth: params + OFFSET) and deletes below it (del: params). params are
 * series_id[, window_ms], cutoff. Returns 1 when rows below the cutoff remain, 0 when none. */
static int bounded_delete(st_retain *r, enum q_id nth, enum q_id del, const int64_t *params, int n,
                          int64_t *budget, uint64_t *deleted) {
    int64_t p[4];
    int64_t hi, before = (int64_t)*deleted;
    bool found;
    int ret;
    memcpy(p, params, (size_t)n * sizeof(*p));
    p[n] = *budget;
    if ((ret = bind_all(r, nth, p, n + 1)) != 0 || (ret = run_ints(r, nth, &hi, 1, &found)) != 0) {
        return ret;
    }
    p[n - 1] = found ? hi : params[n - 1];
    if ((ret = bind_all(r, del, p, n)) != 0 || (ret = run_done(r, del, deleted)) != 0) {
        return ret;
    }
    if (found && (int64_t)*deleted == before) {
        /* More than the budget share the row's time: take them all to make progress. */
        p[n - 1] = hi + 1;
        if ((ret = bind_all(r, del, p, n)) != 0 || (ret = run_done(r, del, deleted)) != 0) {
            return ret;
        }
    }
    int64_t cost = (int64_t)*deleted - before;
    *budget -= cost > 0 ? cost : 1;
    return found ? 1 : 0;
}

/* Raw readings of the current series below the raw cutoff: downsampled, then deleted, whole
 * downsample windows at a time. Returns 1 when more remain, 0 when done. */
static int raw_chunk(st_retain *r, int64_t *budget) {
    const int64_t ds = r->cfg.downsample_ms;
    const int64_t key[2] = {r->series_id, r->raw_cut};
    int ret;
    if (r->raw_cut == INT64_MIN) {
        return 0;
    }
    if (ds == 0) {
        return bounded_delete(r, Q_RAW_NTH, Q_RAW_DELETE, key, 2, budget, &r->step.raw_deleted);
    }
    if ((ret = bind_all(r, Q_RAW_SCAN, key, 2)) != 0) {
        return ret;
    }
    sqlite3_stmt *st = r->q[Q_RAW_SCAN];
    int64_t rows = 0, cur = 0, hi = r->raw_cut;
    bool more = false;
    r->n_vals = 0;
    r->n_made = 0;
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            break;
        }
        if (rc != SQLITE_ROW) {
            ret = fail(r, Q_RAW_SCAN, rc);
            break;
        }
        int64_t b = align_down(sqlite3_column_int64(st, 0), ds);
        if (r->n_vals > 0 && b != cur) {
            if ((ret = finish_window(r, cur)) != 0) {
                break;
            }
            if (rows >= *budget) {
                hi = b;
                more = true;
                break;
            }
        }
        cur = b;
        if ((ret = push_val(r, sqlite3_column_double(st, 1))) != 0) {
            break;
        }
        rows++;
    }
    if (ret == 0 && r->n_vals > 0) {
        ret = finish_window(r, cur);
    }
    (void)sqlite3_reset(st);
    if (ret != 0 || rows == 0) {
        *budget -= 1;
        return ret;
    }
    const int64_t del[2] = {r->series_id, hi};
    if ((ret = insert_made(r, ds, &r->step.downsampled)) != 0 ||
        (ret = bind_all(r, Q_RAW_DELETE, del, 2)) != 0 ||
        (ret = run_done(r, Q_RAW_DELETE, &r->step.raw_deleted)) != 0) {
        return ret;
    }
    *budget -= rows;
    return more ? 1 : 0;
}

/* A roll-up in progress: Chan et al.'s pairwise combination of count, mean and the sum of
 * squared deviations. */
typedef struct rollup {
    made_summary m;
    double m2, p50_sum, p95_sum;
} rollup;

static void rollup_add(rollup *u, sqlite3_stmt *st) {
    int64_t n = sqlite3_column_int64(st, 1);
    double mean = sqlite3_column_double(st, 4), sd = sqlite3_column_double(st, 5);
    double m2 = n > 1 ? sd * sd * (double)(n - 1) : 0.0;
    if (u->m.count == 0) {
        u->m.min = sqlite3_column_double(st, 2);
        u->m.max = sqlite3_column_double(st, 3);
        u->m.first = sqlite3_column_double(st, 6);
        u->m.mean = mean;
        u->m2 = m2;
    } else {
        double total = (double)(u->m.count + n);
        double delta = mean - u->m.mean;
        u->m.min = fmin(u->m.min, sqlite3_column_double(st, 2));
        u->m.max = fmax(u->m.max, sqlite3_column_double(st, 3));
        u->m.mean += delta * (double)n / total;
        u->m2 += m2 + delta * delta * (double)u->m.count * (double)n / total;
    }
    u->m.last = sqlite3_column_double(st, 7);
    u->p50_sum += sqlite3_column_double(st, 8) * (double)n;
    u->p95_sum += sqlite3_column_double(st, 9) * (double)n;
    u->m.count += n;
}

static int rollup_finish(st_retain *r, rollup *u, int64_t start_ms) {
    if (u->m.count == 0) {
        return 0; /* only hopping rows or repeats: nothing to roll up */
    }
    u->m.start_ms = start_ms;
    u->m.stddev = u->m.count > 1 ? sqrt(u->m2 / (double)(u->m.count - 1)) : 0.0;
    /* Rounding must not take a weighted quantile outside [min, max]. */
    u->m.p50 = fmin(fmax(u->p50_sum / (double)u->m.count, u->m.min), u->m.max);
    u->m.p95 = fmin(fmax(u->p95_sum / (double)u->m.count, u->m.min), u->m.max);
    int ret = push_made(r, &u->m);
    memset(u, 0, sizeof(*u));
    return ret;
}

/* Summaries of the current series and window size: rolled up (when the size has an into)
 * and deleted below the size's cutoff. Returns 1 when more remain, 0 when done. */
static int window_chunk(st_retain *r, int64_t *budget) {
    const int64_t w = r->window_ms;
    int64_t keep = r->cfg.other_summaries_ms, into = 0;
    int ret;
    for (size_t i = 0; i < r->cfg.n_windows; i++) {
        if (r->cfg.windows[i].window_ms == w) {
            keep = r->cfg.windows[i].keep_ms;
            into = r->cfg.windows[i].into_ms;
        }
    }
    int64_t cut = cutoff(r->now, keep);
    if (cut == INT64_MIN) {
        *budget -= 1;
        return 0;
    }
    if (into == 0) {
        const int64_t key[3] = {r->series_id, w, cut};
        return bounded_delete(r, Q_SUM_NTH, Q_SUM_DELETE, key, 3, budget,
                              &r->step.summaries_deleted);
    }
    cut = align_down(cut, into);
    const int64_t key[3] = {r->series_id, w, cut};
    if ((ret = bind_all(r, Q_SUM_SCAN, key, 3)) != 0) {
        return ret;
    }
    sqlite3_stmt *st = r->q[Q_SUM_SCAN];
    rollup u = {0};
    int64_t rows = 0, cur = 0, prev_start = 0, hi = cut;
    bool more = false;
    r->n_made = 0;
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            break;
        }
        if (rc != SQLITE_ROW) {
            ret = fail(r, Q_SUM_SCAN, rc);
            break;
        }
        int64_t start = sqlite3_column_int64(st, 0);
        int64_t b = align_down(start, into);
        if (rows > 0 && b != cur) {
            if ((ret = rollup_finish(r, &u, cur)) != 0) {
                break;
            }
            if (rows >= *budget) {
                hi = b;
                more = true;
                break;
            }
        }
        /* Tumbling rows only, each start once: hopping windows overlap, and a size configured
         * twice stores its windows twice. */
        if (align_down(start, w) == start && (rows == 0 || start != prev_start)) {
            rollup_add(&u, st);
        }
        cur = b;
        prev_start = start;
        rows++;
    }
    if (ret == 0 && rows > 0 && !more) {
        ret = rollup_finish(r, &u, cur);
    }
    (void)sqlite3_reset(st);
    if (ret != 0 || rows == 0) {
        *budget -= 1;
        return ret;
    }
    const int64_t del[3] = {r->series_id, w, hi};
    if ((ret = insert_made(r, into, &r->step.rolled_up)) != 0 ||
        (ret = bind_all(r, Q_SUM_DELETE, del, 3)) != 0 ||
        (ret = run_done(r, Q_SUM_DELETE, &r->step.summaries_deleted)) != 0) {
        return ret;
    }
    *budget -= rows;
    return more ? 1 : 0;
}

/* One piece of work of the series phase; moves the cursor on when a part is done. */
static int series_work(st_retain *r, int64_t *budget) {
    int64_t v[1];
    bool found;
    int ret = 0;
    switch (r->sub) {
    case SUB_NEXT: {
        const int64_t after[1] = {r->series_id};
        if ((ret = bind_all(r, Q_NEXT_SERIES, after, 1)) != 0 ||
            (ret = run_ints(r, Q_NEXT_SERIES, v, 1, &found)) != 0) {
            return ret;
        }
        *budget -= SERIES_COST;
        if (!found) {
            r->phase = PH_ALERTS;
            r->alert_pos = r->alert_max = 0;
            if (r->alert_cut != INT64_MIN) {
                int64_t range[2];
                if ((ret = run_ints(r, Q_ALERT_RANGE, range, 2, &found)) != 0) {
                    return ret;
                }
                if (found) {
                    r->alert_pos = range[0] - 1;
                    r->alert_max = range[1];
                }
            }
            return 0;
        }
        r->series_id = v[0];
        r->sub = SUB_RAW;
        return 0;
    }
    case SUB_RAW:
        ret = raw_chunk(r, budget);
        if (ret == 0) {
            r->sub = SUB_WINDOW_NEXT;
            r->window_ms = 0;
        }
        return ret < 0 ? ret : 0;
    case SUB_WINDOW_NEXT: {
        const int64_t after[2] = {r->series_id, r->window_ms};
        if ((ret = bind_all(r, Q_NEXT_WINDOW, after, 2)) != 0 ||
            (ret = run_ints(r, Q_NEXT_WINDOW, v, 1, &found)) != 0) {
            return ret;
        }
        r->sub = found ? SUB_WINDOW : SUB_PRED;
        r->window_ms = found ? v[0] : 0;
        return 0;
    }
    case SUB_WINDOW:
        ret = window_chunk(r, budget);
        if (ret == 0) {
            r->sub = SUB_WINDOW_NEXT;
        }
        return ret < 0 ? ret : 0;
    case SUB_PRED:
        if (r->pred_cut == INT64_MIN) {
            ret = 0;
        } else {
            const int64_t key[2] = {r->series_id, r->pred_cut};
            ret = bounded_delete(r, Q_PRED_NTH, Q_PRED_DELETE, key, 2, budget,
                                 &r->step.predictions_deleted);
        }
        if (ret == 0) {
            r->sub = SUB_NEXT;
        }
        return ret < 0 ? ret : 0;
    }
    return 0;
}

/* Alerts by id ranges of the budget's size. */
static int alerts_work(st_retain *r, int64_t *budget) {
    if (r->alert_pos >= r->alert_max) {
        r->phase = PH_DONE;
        return 0;
    }
    int64_t span = *budget < r->alert_max - r->alert_pos ? *budget : r->alert_max - r->alert_pos;
    const int64_t p[3] = {r->alert_pos, r->alert_pos + span, r->alert_cut};
    int ret;
    if ((ret = bind_all(r, Q_ALERT_DELETE, p, 3)) != 0 ||
        (ret = run_done(r, Q_ALERT_DELETE, &r->step.alerts_deleted)) != 0) {
        return ret;
    }
    r->alert_pos += span;
    *budget -= span;
    return 0;
}

/* ---- passes ------------------------------------------------------------------------------ */

static void start_pass(st_retain *r, int64_t now) {
    const st_retain_cfg *c = &r->cfg;
    r->now = now;
    r->raw_cut = cutoff(now, c->raw_ms);
    if (r->raw_cut != INT64_MIN && c->downsample_ms > 0) {
        r->raw_cut = align_down(r->raw_cut, c->downsample_ms);
    }
    r->pred_cut = cutoff(now, c->predictions_ms);
    r->alert_cut = cutoff(now, c->alerts_ms);
    r->series_id = 0;
    r->sub = SUB_NEXT;
    r->phase = PH_STAGED;
}

static void add_counts(st_retain_counts *c, const st_retain_counts *s) {
    if (c == NULL) {
        return;
    }
    c->raw_deleted += s->raw_deleted;
    c->downsampled += s->downsampled;
    c->rolled_up += s->rolled_up;
    c->summaries_deleted += s->summaries_deleted;
    c->predictions_deleted += s->predictions_deleted;
    c->alerts_deleted += s->alerts_deleted;
    c->steps += s->steps;
}

/* Staged readings are not indexed: when one is below the raw cutoff, merge them all into
 * readings first. Returns 1 when it merged (that was the step), 0 when nothing was due. */
static int merge_if_old(st_retain *r) {
    int64_t oldest;
    bool found;
    int ret;
    if (r->raw_cut == INT64_MIN) {
        return 0;
    }
    /* The writer's connection knows the oldest staged time: no scan of the staging table. */
    found = st_db_staged_min(r->db, &oldest);
    if (!found || oldest >= r->raw_cut) {
        return 0;
    }
    if ((ret = st_db_merge(r->db)) != 0) {
        snprintf(r->err, sizeof(r->err), "retention: %s", st_db_errmsg(r->db));
        return ret;
    }
    return 1;
}

int st_retain_step(st_retain *r, int64_t now_ms, st_retain_counts *c) {
    int ret;
    if (!sqlite3_get_autocommit(r->h)) {
        return fail_msg(r, ST_EIO, "called inside a transaction");
    }
    memset(&r->step, 0, sizeof(r->step));
    if (r->phase == PH_IDLE) {
        start_pass(r, now_ms);
    }
    if (r->phase == PH_STAGED) {
        r->phase = PH_SERIES;
        ret = merge_if_old(r);
        if (ret < 0) {
            r->phase = PH_IDLE;
            return ret;
        }
        if (ret == 1) {
            r->step.steps = 1;
            add_counts(c, &r->step);
            return 1;
        }
    }
    if ((ret = st_db_begin(r->db)) != 0) {
        snprintf(r->err, sizeof(r->err), "retention: %s", st_db_errmsg(r->db));
        r->phase = PH_IDLE;
        return ret;
    }
    int64_t budget = r->cfg.batch_rows;
    while (budget > 0 && r->phase != PH_DONE) {
        ret = r->phase == PH_SERIES ? series_work(r, &budget) : alerts_work(r, &budget);
        if (ret != 0) {
            goto fail_rollback;
        }
    }
    if ((ret = st_db_commit(r->db)) != 0) {
        snprintf(r->err, sizeof(r->err), "retention: %s", st_db_errmsg(r->db));
        goto fail_rollback;
    }
    r->step.steps = 1;
    add_counts(c, &r->step);
    if (r->phase == PH_DONE) {
        r->phase = PH_IDLE;
        return 0;
    }
    return 1;

fail_rollback:
    (void)st_db_rollback(r->db); /* the first error is the one to report */
    r->phase = PH_IDLE;
    return ret;
}

int st_retain_pass(st_retain *r, int64_t now_ms, st_retain_counts *c) {
    int ret;
    do {
        ret = st_retain_step(r, now_ms, c);
    } while (ret == 1);
    return ret;
}
