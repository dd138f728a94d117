/* Retention: removes what is past its keep from an iotgw database, in small batches, after
 * turning old raw readings into window summaries (downsampling) and old fine summaries into
 * coarser ones (roll-up). docs/history.md ("Retention") is the user's version of this.
 *
 * A pass fixes its cutoffs from `now` when it starts and then works through the database in
 * steps; each step is one transaction (BEGIN IMMEDIATE ... COMMIT) that touches about
 * batch_rows rows, so that the writer that calls it is never held for long. What a pass does:
 *
 * - Staged readings: when readings_recent (the unindexed staging table) holds a reading older
 *   than the raw cutoff, the pass first merges the staging table into readings (st_db_merge, a
 *   step of its own), so that every old reading can be found through the (series_id, ts_ms)
 *   index. Checking costs one scan of the staging table per pass.
 * - Raw readings, per series: readings with ts_ms < raw cutoff are deleted. The raw cutoff is
 *   now - raw_ms, rounded down to a multiple of downsample_ms when that is set, so that only
 *   whole downsample windows go. Before, for every epoch-aligned window [k*D, (k+1)*D) of
 *   D = downsample_ms that has readings and no summary of window_ms D starting at k*D yet, a
 *   summary is made from the readings: count, min, max, mean and sample stddev (n - 1; 0 for
 *   one reading; Welford in ts order), first and last (the values at the smallest and largest
 *   ts; on equal ts which one is unspecified), and exact p50 and p95 (linear interpolation at
 *   rank (n - 1) * p over the sorted values, the definition quantile.h estimates).
 * - Summaries, per series and window size W present: a window listed in windows[] uses its
 *   keep_ms and into_ms, any other W keeps other_summaries_ms and has no into. keep 0 keeps
 *   them. Summaries with start_ms < now - keep are deleted; with into = V the cutoff is rounded
 *   down to a multiple of V and, before deletion, the tumbling (start_ms a multiple of W) rows
 *   of each V window [j*V, (j+1)*V) are rolled up into one summary of window V unless that
 *   window already has one: count = sum of counts, mean count-weighted, stddev pooled (exact:
 *   sqrt of the combined sum of squared deviations / (count - 1)), min, max exact, first of the
 *   earliest row, last of the latest, p50 and p95 the count-weighted means of the rows' p50
 *   and p95 (an approximation: quantiles do not combine exactly). Hopping rows (start not a
 *   multiple of W) and repeats of one start_ms (a size configured twice) are not rolled up,
 *   only deleted.
 * - Predictions, per series: ts_ms < now - predictions_ms are deleted.
 * - Alerts: published alerts (published = 1) with ts_ms < now - alerts_ms are deleted, except
 *   the newest row (highest id) of each (series, kind, rule): v_active_alerts, which shows the
 *   newest row of each group when it is raised, therefore never changes. Unpublished alerts
 *   (the outbox) are never deleted.
 * A keep (raw_ms, keep_ms, other_summaries_ms, predictions_ms, alerts_ms) of 0 keeps that
 * table forever.
 *
 * Late data: a reading older than the raw cutoff that is stored after its downsample window
 * got its summary is deleted by the next pass without changing that summary (as a late reading
 * is left out of the live windows).
 *
 * Ownership and threads: an st_retain belongs to the thread that owns the st_db (the writer);
 * it prepares statements on the db's connection and must be freed before st_db_close. Calls
 * must come outside a transaction. Return values are 0 or ST_E* (st_db.h), with a reason in
 * st_retain_errmsg. */
#ifndef ST_RETAIN_H
#define ST_RETAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "st_db.h"

#define ST_RETAIN_MAX_WINDOWS 8

typedef struct st_retain_window {
    int64_t window_ms; /* summaries of this window size (v_summaries.window_ms), >= 1 */
    int64_t keep_ms;   /* deleted once start_ms < now - keep_ms; 0: kept forever */
    int64_t into_ms;   /* rolled up into this window size first (a multiple of window_ms,
                          larger); 0: none */
} st_retain_window;

typedef struct st_retain_cfg {
    int64_t raw_ms;        /* raw readings; 0: forever */
    int64_t downsample_ms; /* window of the summaries made from raw readings; 0: none */
    st_retain_window windows[ST_RETAIN_MAX_WINDOWS];
    size_t n_windows;           /* each window_ms at most once */
    int64_t other_summaries_ms; /* summaries of a window size not in windows[]; 0: forever */
    int64_t predictions_ms;     /* 0: forever */
    int64_t alerts_ms;          /* published alerts; 0: forever */
    int batch_rows;             /* rows per step (soft: a window being summarised is finished) */
} st_retain_cfg;

/* What was done (committed), added up by st_retain_step. */
typedef struct st_retain_counts {
    uint64_t raw_deleted;         /* raw readings deleted */
    uint64_t downsampled;         /* summaries made from raw readings */
    uint64_t rolled_up;           /* summaries made from finer summaries */
    uint64_t summaries_deleted;   /* summaries deleted */
    uint64_t predictions_deleted; /* predictions deleted */
    uint64_t alerts_deleted;      /* alerts deleted */
    uint64_t steps;               /* transactions (and merges) run */
} st_retain_counts;

typedef struct st_retain st_retain;

/* Checks cfg (ST_EIO with a reason in err when invalid: batch_rows < 1, a negative keep, a
 * window_ms listed twice, an into that is not a larger multiple of its window_ms) and
 * prepares the statements on db's connection. Borrows db (it must outlive the st_retain) and
 * cfg (copied). On failure *out is untouched. */
int st_retain_new(st_retain **out, st_db *db, const st_retain_cfg *cfg, char *err, size_t errlen);
void st_retain_free(st_retain *r);

/* True while a pass is under way (started and not finished). */
bool st_retain_running(const st_retain *r);

/* Runs one step of the pass, in its own transaction; when no pass is under way, starts one
 * with cutoffs from now_ms (epoch ms; ignored during a pass). Adds what it committed to *c
 * (may be NULL). Returns 1 when the pass has more to do, 0 when this step finished it, or a
 * negative ST_E* after rolling the step back; the pass is then abandoned and the next call
 * starts a new one. Must be called outside a transaction. */
int st_retain_step(st_retain *r, int64_t now_ms, st_retain_counts *c);

/* Runs steps until the pass (the one under way, else a new one from now_ms) is finished.
 * Returns 0 or the first error. */
int st_retain_pass(st_retain *r, int64_t now_ms, st_retain_counts *c);

/* The reason of the last failure ("" if none). */
const char *st_retain_errmsg(const st_retain *r);

#endif
