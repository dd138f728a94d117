/* Stale ("deadman") alert state machine for one (series, rule): raises when a series has been
 * silent for at least `after_ms`, clears at its next reading.
 * Pure and single-threaded: the caller (the worker that owns the series) serialises calls.
 *
 * The caller chooses the clock domain and must use the same one for both calls: live mode
 * passes the arrival time of each reading to an_stale_seen() and the current time on every
 * clock tick to an_stale_check(); replay passes each reading's ts and, on ticks, the largest
 * ts seen in the whole stream. At the start of a live run the gateway also passes the newest
 * stored reading's ts of recently active series (gateway/stale_preload.h).
 *
 * Semantics (exact; tests depend on them):
 * - an_stale_seen(t): last_seen becomes max(last_seen, t) (the first call sets it to t), so a
 *   reading time that steps backwards never makes a series look silent longer. last_value
 *   becomes the reading's value. If an episode is open it clears (kind AN_KIND_STALE,
 *   ts_ms = t, value = the reading's value, detail = the silence that ended, t - last_seen
 *   before the update, in ms, 0 if negative). A seen() never raises: a silence that no check
 *   noticed before the reading arrived produces no alert.
 * - an_stale_check(now): if the series was seen at least once, is not raised and
 *   now - last_seen >= after_ms, raise (ts_ms = now, value = the last value seen,
 *   detail = now - last_seen in ms). Otherwise nothing: one raise per silence however many
 *   checks follow. A series never seen is never stale.
 * - Both transitions have threshold = after_ms (milliseconds, as a double) and the cfg's
 *   severity. */
#ifndef AN_STALE_H
#define AN_STALE_H

#include <stdint.h>

#include "an_types.h"

typedef struct an_stale_cfg {
    int64_t after_ms;     /* > 0: the silence that raises ("stale_after") */
    an_severity severity; /* the rule's severity */
} an_stale_cfg;

/* 24 bytes. */
typedef struct an_stale_state {
    int64_t last_seen_ms; /* the latest reading time, in the caller's clock domain */
    double last_value;    /* the value of the latest reading */
    uint8_t seen;         /* 1 once a reading has been seen */
    uint8_t raised;       /* 1 while an episode is open */
} an_stale_state;

/* Initialises a state to "never seen, nothing raised". */
void an_stale_init(an_stale_state *st);

/* Restores an open episode after a restart from the raised alert: raised, last seen at
 * last_seen_ms (the raise's time minus the silence it reported) with last_value. The next
 * an_stale_seen clears it (detail: the whole silence, restart included); checks raise nothing
 * more. Call it on a state fresh from an_stale_init. Returns 0, or -EINVAL for a NULL state. */
int an_stale_restore(an_stale_state *st, int64_t last_seen_ms, double last_value);

/* Records a reading at time t_ms. Borrows cfg and st (st is updated). Writes at most 1
 * transition (a clear) into out with .rule = rule. Returns the number written (0 or 1), or
 * -EINVAL without touching st when an argument is NULL, cap < 1 or cfg->after_ms <= 0. */
int an_stale_seen(const an_stale_cfg *cfg, an_stale_state *st, int rule, int64_t t_ms, double value,
                  an_alert *out, int cap);

/* Checks the silence at time now_ms. Borrows cfg and st (st is updated). Writes at most 1
 * transition (a raise) into out with .rule = rule. Returns the number written (0 or 1), or
 * -EINVAL as above. */
int an_stale_check(const an_stale_cfg *cfg, an_stale_state *st, int rule, int64_t now_ms,
                   an_alert *out, int cap);

#endif
