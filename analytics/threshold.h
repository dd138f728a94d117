/* Threshold alert state machine for one (series, rule): `above` / `below` limits with
 * hysteresis (clear levels) and event-time durations (`for`, `clear_for`).
 * Pure and single-threaded: the caller (the worker that owns the series) serialises calls.
 *
 * Semantics (exact; tests depend on them), evaluated independently for the high side and
 * the low side:
 * - high side, enabled by has_above: a reading is violating when value > above. Raise
 *   (kind AN_KIND_HIGH, threshold = above) at the first reading of a consecutive run of
 *   violating readings whose ts - ts(first reading of the run) >= for_ms. A non-violating
 *   reading ends the run. While raised, a reading is "clearing" when value < clear_below;
 *   clear (threshold = clear_below) at the first reading of a consecutive run of clearing
 *   readings whose duration >= clear_for_ms. A reading in the band between the two levels
 *   (clear_below <= value <= above) ends both runs and changes nothing. One raised event and
 *   one cleared event per episode.
 * - low side, enabled by has_below: mirror image with value < below, clear when
 *   value > clear_above (kind AN_KIND_LOW).
 * Durations are measured in event time (reading ts), never the wall clock. A reading whose
 * ts is earlier than the start of the current run counts as duration 0 from the run start
 * (durations never go negative). */
#ifndef AN_THRESHOLD_H
#define AN_THRESHOLD_H

#include <stdbool.h>
#include <stdint.h>

#include "an_types.h"

typedef struct an_threshold_cfg {
    bool has_above;
    double above;
    double clear_below; /* the caller sets it to `above` when the config omits it */
    bool has_below;
    double below;
    double clear_above;   /* the caller sets it to `below` when the config omits it */
    int64_t for_ms;       /* >= 0 */
    int64_t clear_for_ms; /* >= 0 */
    an_severity severity;
} an_threshold_cfg;

/* One side's state: 16 bytes. */
typedef struct an_threshold_side {
    int64_t run_start_ms; /* ts of the first reading of the current run */
    uint8_t raised;       /* 1 while an episode is open */
    uint8_t in_run;       /* 1 while a violating (not raised) or clearing (raised) run is open */
} an_threshold_side;

typedef struct an_threshold_state {
    an_threshold_side high;
    an_threshold_side low;
} an_threshold_state;

/* Initialises a state to "nothing raised, no run". */
void an_threshold_init(an_threshold_state *st);

/* Restores an open episode after a restart: the side of `kind` (AN_KIND_HIGH or AN_KIND_LOW)
 * is raised, with no run, as right after its raise. The next readings then clear it under the
 * usual rules (clear level, clear_for) or, while they stay beyond the clear level, change
 * nothing. Call it on a state fresh from an_threshold_init. Returns 0, or -EINVAL for another
 * kind or a NULL state. */
int an_threshold_restore(an_threshold_state *st, an_kind kind);

/* Feeds one reading. Borrows cfg and st (st is updated). Writes at most 2 transitions into
 * out (cap >= 2 required) with .rule = rule. Returns the number of transitions written. */
int an_threshold_update(const an_threshold_cfg *cfg, an_threshold_state *st, int rule,
                        int64_t ts_ms, double value, an_alert *out, int cap);

#endif
