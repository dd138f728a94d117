/* Retention in the writer: schedules the passes of storage/st_retain on the pipeline's clock and
 * runs their steps in the writer's spare time.
 *
 * Clock: the wall clock in `iotgw run`; in `iotgw replay` the stream time, the largest reading
 * ts the writer has seen (never ahead of the wall clock, so that one wild future timestamp
 * cannot make the whole history look old). A pass starts retention.interval after the start
 * (replay: once the readings seen span an interval), then every interval. Its steps (one
 * transaction of about retention.batch_rows rows each) run back to back while the writer has
 * nothing else to do, and at most one per storage.tick_ms while it is busy. At the end of a
 * replay whose readings span at least one interval, the pass under way and then a last full
 * pass at the capture's final time are completed, so that the file left behind does not depend
 * on the speed of the machine or the order in which the workers' batches arrived. Counters go to
 * the pipeline's stats; each pass logs one line: INFO when it changed something, else DEBUG.
 *
 * Thread: the writer's only. Every function accepts NULL (retention disabled) and then does
 * nothing. */
#ifndef GW_RETAIN_H
#define GW_RETAIN_H

#include <stdbool.h>

#include "pipeline_internal.h"

typedef struct gw_retain gw_retain;

/* Borrows p (its db and config). NULL when retention.enabled is false, or on an error (logged:
 * the gateway runs on without retention). */
gw_retain *gw__retain_new(gw_pipeline *p);

/* Sees a batch on its way to storage (replay: advances the stream time). Borrows b. */
void gw__retain_observe(gw_retain *rt, const gw_batch *b);

/* True while a pass is under way: the writer should poll its queue without sleeping. */
bool gw__retain_busy(const gw_retain *rt);

/* Starts a pass when one is due and runs one step when it may: always when idle (the writer
 * found nothing to do), else once per storage.tick_ms. Outside a transaction only. */
void gw__retain_run(gw_retain *rt, bool idle);

/* The writer is stopping: completes the passes a replay owes (see above) when finish is true,
 * then frees rt. With finish false (the connection failed or was replaced: the statements are
 * bound to it), only frees. */
void gw__retain_end(gw_retain *rt, bool finish);

#endif
