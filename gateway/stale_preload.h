/* Silence across a restart. The stale part of a rule (stale_after) watches a series once the
 * gateway has seen a reading of it; after a restart that would leave a sensor that died while
 * the gateway was down (or dies before its first reading after the start) unwatched for good.
 * So at the start of `iotgw run` (gw_pipeline_start, before the threads run; not in a replay,
 * which has no wall clock and measures silence on the capture's timestamps), the series the
 * database knows whose newest stored reading is within the horizon (below) and that a stale
 * rule covers are handed to the worker that owns each, which starts that rule part as if the
 * reading had been seen at its stored time (capped at the start's time): the first clock tick
 * raises the usual stale alert when the silence is already longer than stale_after. No other
 * rule part, and no window, sees anything. A stale alert taken over by the restore (restore.h)
 * comes first: its part is left as the restore made it.
 *
 * Horizon: retention.raw (default 7d) when retention is enabled and raw readings expire;
 * otherwise GW_STALE_PRELOAD_HORIZON_MS. A series silent for longer is taken for
 * decommissioned: it raises nothing until it sends again (its readings are about to expire).
 * docs/history.md ("Active alerts across a restart") is the user's version. */
#ifndef GW_STALE_PRELOAD_H
#define GW_STALE_PRELOAD_H

#include <stddef.h>
#include <stdint.h>

#include "pipeline_internal.h"

/* The horizon when retention keeps raw readings forever (or is off): 7 days. */
#define GW_STALE_PRELOAD_HORIZON_MS (7LL * 24 * 3600 * 1000)

typedef struct gw_stale_seed {
    uint32_t series;      /* id in the series registry */
    int64_t last_seen_ms; /* the newest stored reading's ts, at most the start's time */
    double value;         /* its value: the alert's "last value seen" */
} gw_stale_seed;

typedef struct gw_stale_preload {
    gw_stale_seed *items;
    size_t n, cap;
    uint64_t left_out; /* beyond pipeline.max_series or without memory */
} gw_stale_preload;

/* The horizon for this configuration, in ms (see above). Any thread. */
int64_t gw__stale_preload_horizon(const gw_config *cfg);

/* Main thread, in gw_pipeline_start after gw__restore_load and before any thread starts (the
 * series registry is then the caller's): when live (not inline decode), the database is open
 * and a rule has stale_after, reads the recently active series, interns those a stale rule
 * covers (at most pipeline.max_series in all) and sets p->stale_preload (left NULL when there
 * is nothing). Logs what it did and what it left out. Returns 0, or a negative ST_E* / -ENOMEM
 * when the database could not be read (logged; nothing preloaded). */
int gw__stale_preload_load(gw_pipeline *p);

/* Frees what gw__stale_preload_load made. NULL is fine. */
void gw__stale_preload_free(gw_stale_preload *sp);

#endif
