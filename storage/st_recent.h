/* The series that sent readings recently, read back at start so that the gateway watches
 * them for silence (stale_after) from the start, as if their newest stored reading had just
 * been seen (gateway/stale_preload.c).
 *
 * Threads: like every st_db function, on the thread that owns the connection; the gateway
 * calls it once, before its threads start. */
#ifndef ST_RECENT_H
#define ST_RECENT_H

#include <stddef.h>
#include <stdint.h>

#include "st_db.h"

typedef struct st_recent_row {
    const char *sensor; /* borrowed for the call only */
    const char *metric;
    int64_t ts_ms; /* the newest stored reading of the series, staged ones included */
    double value;  /* its value (of the largest value when several share that ts) */
} st_recent_row;

/* fn returns 0 to go on, anything else to stop. */
typedef int (*st_recent_fn)(void *ctx, const st_recent_row *row);

/* Calls fn, in series id order, for each series whose newest reading (in readings or in the
 * staging table readings_recent) has ts_ms >= since_ms. Cost: one indexed lookup per series
 * in readings (never a scan of it) and one pass over the staging table, which the merges keep
 * small. Must be called outside a transaction (ST_EIO otherwise). Returns the number of rows
 * given to fn, or a negative ST_E* code with a reason in err. */
int st_db_recent_series(st_db *db, int64_t since_ms, st_recent_fn fn, void *ctx, char *err,
                        size_t errlen);

#endif
