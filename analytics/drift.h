/* Drift of one series: a sustained shift of its level away from a baseline learned online.
 * Pure (libc + libm), no allocation, no I/O. Single-threaded: the worker that owns the series
 * serialises all calls on one state.
 *
 * Method: a CUSUM on the short-term level, in units of its own normal variability.
 * - The short-term level is an EWMA of span `span` readings of the Huber-clipped readings
 *   (clip x the short-term noise sigma, itself a winsorised RMS of the one-step deviations;
 *   more than 3 clipped readings in a row on one side are a change and are followed).
 * - The baseline mu and the spread D of the short-term level around it are learned over the
 *   first `warmup` readings (robust running mean; running mean square) and keep adapting from
 *   every reading while no drift is raised (running means until `memory` readings, then
 *   exponential with that memory; winsorised at clip x D, so a D that is too small grows
 *   back). D is floored by what white noise alone gives (noise sigma / sqrt(2 span - 1)), by
 *   half the data's quantisation step (running median of the non-zero steps between readings)
 *   and by rel_floor x |mu|; so the slow normal wander of a series is learned as normal, and a
 *   white series is still judged against its noise.
 * - w = (level - mu) / D; g+ = max(0, g+ + w - k), g- = max(0, g- - w - k); a drift is raised
 *   when either sum reaches h: the short-term level has stayed beyond k spreads for a while.
 * A single spike moves the short-term level by at most clip / span noise sigmas, so it never
 * raises a drift. Everything counts readings, not time, so the defaults suit any sampling
 * rate; gaps and irregular sampling do not change the statistics. On white noise a step of
 * d noise sigmas (d >= 1) is raised after about span * ln(1 / (1 - k / (d sqrt(2 span - 1))))
 * + a few readings (median 14 readings for d = 2, 21 for d = 1.5; d = 1 is marginal).
 *
 * Alerts: AN_KIND_DRIFT raised when g+ or g- reaches h; .value is the reading, .threshold the
 * baseline mu, .detail the shift (short-term level - mu, in the series' units; > 0: upward).
 * Cleared when the short-term level is back (a reverse CUSUM of k/2 - w, resp. k/2 + w,
 * reaches h), or when the shift has persisted for `relearn` readings: it is then accepted as
 * the new baseline (mu = current short-term level) and the alert clears. */
#ifndef AN_DRIFT_H
#define AN_DRIFT_H

#include <stdint.h>

#include "an_types.h"

typedef struct an_drift_cfg {
    uint32_t warmup;      /* readings that learn the first baseline, >= 10; default 100 */
    uint32_t span;        /* short-term level EWMA span in readings, 2..warmup; default 16 */
    double k;             /* allowance in units of D, > 1; default 4.5 */
    double h;             /* decision threshold in units of D x readings, > 0; default 8 */
    double clip;          /* Huber clip of readings in noise sigmas, > 0; default 4 */
    uint32_t memory;      /* baseline memory in readings, warmup..65535; default 2000 */
    uint32_t relearn;     /* readings a raised shift persists before it becomes the new
                             baseline, >= 1; default 1000 */
    double rel_floor;     /* noise sigma >= rel_floor * |mu|, >= 0; default 1e-5 */
    an_severity severity; /* default AN_SEV_WARNING */
} an_drift_cfg;

/* Internal state, caller-allocated, 56 bytes. Treat as opaque. */
typedef struct an_drift_state {
    double mu;     /* baseline level */
    double level;  /* short-term level (EWMA) */
    double last_v; /* previous reading (quantisation step) */
    float noise2;  /* short-term noise variance (winsorised) */
    float dev2;    /* mean square of (level - mu): D^2 before the floor */
    union {
        struct {
            float gp; /* upper CUSUM; while raised upward: the reverse (clearing) sum */
            float gn; /* lower CUSUM; while raised downward: the reverse (clearing) sum */
        };
        double restored_mu; /* learning after an_drift_restore: the raised alert's baseline */
    };
    float quantum;   /* running median of the non-zero steps, 0 = none yet */
    uint32_t n;      /* readings in the current phase */
    uint8_t phase;   /* 0 learning, 1 watching, 2 raised */
    int8_t side;     /* +1 / -1 while raised; while learning: a restored episode's side */
    int8_t clip_run; /* consecutive clipped readings, signed by side */
    uint16_t age;    /* readings learned from since the start (saturates) */
} an_drift_state;

/* The current view of the detector, for diagnostics and the predictions table. */
typedef struct an_drift_info {
    int phase;          /* 0 learning, 1 watching, 2 raised */
    double baseline;    /* mu */
    double level;       /* short-term level */
    double noise_sigma; /* short-term noise (after floors) */
    double level_sigma; /* D (after floors) */
    double g_up;        /* current CUSUM sums (0 unless watching) */
    double g_down;
} an_drift_info;

/* Writes the documented defaults into *cfg. Borrows cfg. */
void an_drift_cfg_default(an_drift_cfg *cfg);

/* Returns 0 if cfg is usable, -1 if a field is out of range. Borrows cfg. */
int an_drift_cfg_check(const an_drift_cfg *cfg);

/* Initialises a state to "no data". */
void an_drift_init(an_drift_state *st);

/* Restores an open episode after a restart from the raised alert: its baseline (the alert's
 * threshold) and its shift (the alert's detail; its sign is the side). The detector's
 * statistics are not stored, so it learns them again over `warmup` readings, which raise
 * nothing. At the end of that warm-up the short-term level is judged against the restored
 * baseline: within k / 2 spreads of it (as the raised phase's clearing sum asks) the alert
 * clears (threshold = the restored baseline, detail = level - it) and the newly learned
 * baseline stays; otherwise the episode goes on, raised against the restored baseline
 * (clearing or relearning as usual). Call it on a state fresh from an_drift_init. Returns 0,
 * or -1 for a NULL state or a non-finite baseline or shift. */
int an_drift_restore(an_drift_state *st, double baseline, double shift);

/* Feeds one reading (value finite). Borrows cfg and st (st is updated). Writes at most 1
 * transition into out (cap >= 1 required, else nothing is written and -1 returned) with
 * .rule = rule. Returns the number of transitions written. */
int an_drift_update(const an_drift_cfg *cfg, an_drift_state *st, int rule, int64_t ts_ms,
                    double value, an_alert *out, int cap);

/* Fills *out. Borrows cfg and st. Returns 0. */
int an_drift_info_get(const an_drift_cfg *cfg, const an_drift_state *st, an_drift_info *out);

#endif
