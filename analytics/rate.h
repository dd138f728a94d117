/* Rate-of-change alert state machine for one (series, rule).
 * Pure and single-threaded: the caller (the worker that owns the series) serialises calls.
 *
 * Semantics (exact; tests depend on them):
 * - The rate between a reading (ts, v) and the previous accepted reading (ts0, v0) is
 *   |v - v0| * 1000 / (ts - ts0), in units of the value per second (ts in ms). It is computed
 *   in that order (difference times 1000, then one division), so that hand-computed vectors
 *   with exact operands give exact rates. A rate that overflows is reported as DBL_MAX.
 * - The first reading of a series only primes the state: no rate, no transition.
 * - A non-finite value (never produced by the decoder) is skipped like the readings below.
 * - A reading whose ts is <= the previous accepted reading's ts (a repeated timestamp or a
 *   clock stepping backwards) gives no rate: it is skipped, changes nothing (not even the
 *   previous reading, which stays the reference) and never raises or clears.
 * - Not raised: raise (kind AN_KIND_RATE) when rate > above. While raised: clear at the first
 *   rate <= above. One raised and one cleared event per episode.
 * - Each transition has threshold = above, value = the reading's value, ts_ms = the reading's
 *   ts and detail = the rate that caused it. */
#ifndef AN_RATE_H
#define AN_RATE_H

#include <stdint.h>

#include "an_types.h"

typedef struct an_rate_cfg {
    double above;         /* finite, > 0: the limit in units per second ("rate_above") */
    an_severity severity; /* the rule's severity */
} an_rate_cfg;

/* 24 bytes. */
typedef struct an_rate_state {
    int64_t last_ts_ms; /* the previous accepted reading */
    double last_value;
    uint8_t primed; /* 1 once a reading has been seen */
    uint8_t raised; /* 1 while an episode is open */
} an_rate_state;

/* Initialises a state to "no reading, nothing raised". */
void an_rate_init(an_rate_state *st);

/* Restores an open episode after a restart from the raised alert: raised, primed with the
 * reading that raised it (ts_ms, value), so that the next reading's rate is measured from it:
 * a rate <= above clears, a faster one changes nothing. Call it on a state fresh from
 * an_rate_init. Returns 0, or -EINVAL for a NULL state or a non-finite value. */
int an_rate_restore(an_rate_state *st, int64_t ts_ms, double value);

/* Feeds one reading (value finite). Borrows cfg and st (st is updated). Writes at most 1
 * transition into out with .rule = rule. Returns the number of transitions written (0 or 1),
 * or -EINVAL without touching st when an argument is NULL, cap < 1, or cfg->above is not a
 * finite number > 0. */
int an_rate_update(const an_rate_cfg *cfg, an_rate_state *st, int rule, int64_t ts_ms, double value,
                   an_alert *out, int cap);

#endif
