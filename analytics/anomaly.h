/* Anomaly score of one series: every reading gets a score in [0, 1] from an unsupervised,
 * self-calibrating online detector; an alert when the score passes a sensitivity.
 * Pure (libc + libm), no allocation, no I/O. Single-threaded: the worker that owns the series
 * serialises all calls on one state.
 *
 * Method: each reading is compared with a one-step forecast (an exponentially smoothed level,
 * plus a smoothed per-reading trend when beta > 0). The residual is divided by a robust spread
 * (1.2533 x the exponentially weighted mean absolute residual, residuals clipped at 4 sigma;
 * floored by half the data's quantisation step, by rel_floor x |level| and never 0), and
 * after a gap of g typical sampling intervals (g > 2) the spread is widened by sqrt(g / 2),
 * at most 8x. The standardised residual is corrected for the uncertainty of the spread (a
 * Student t with nu = min(n - 1, 2 / spread_alpha - 1) mapped to a normal deviate z) and
 * becomes score = 1 - p, p the two-sided tail probability of z: Gaussian up to z = 3 and a
 * generalised Pareto tail above it whose rate, scale and shape (method of moments, shape in
 * [0, 0.45]) are learned from the series itself (prior: an exponential tail matching the
 * Gaussian's at 3, worth 1000 readings / 10 exceedances; memories 10^4 readings / 100
 * exceedances), so a heavy-tailed series calibrates itself instead of alarming all the time.
 * On Gaussian white noise, a sensitivity s gives at most ~(1 - s) alerting readings per
 * reading. Level and spread updates are Huber-clipped, so a spike does not drag the forecast;
 * more than 3 outliers in a row on one side are a level change and are followed unclipped
 * (no clipping during the warm-up, when the spread is not yet known).
 * No score (0) and no alert during the first `warmup` readings.
 *
 * Alerts: AN_KIND_ANOMALY raised at a reading whose score >= sensitivity, unless already
 * raised. Cleared at the first normal reading (or tick) at least refractory_ms after the last
 * anomalous reading, so there is at most one raise per refractory period. .value is the
 * reading, .threshold the sensitivity, .detail the reading's score (an_anomaly_score()). */
#ifndef AN_ANOMALY_H
#define AN_ANOMALY_H

#include <stdint.h>

#include "an_types.h"

typedef struct an_anomaly_cfg {
    double alpha;          /* level smoothing per reading, (0, 1]; default 0.3 */
    double beta;           /* trend smoothing per reading, [0, 1); default 0 (plain EWMA) */
    double spread_alpha;   /* spread smoothing per reading, (0, 1); default 0.01 */
    uint32_t warmup;       /* readings before scoring, >= 3; default 30 */
    double sensitivity;    /* alert when score >= sensitivity, (0, 1); default 0.99999 */
    int64_t refractory_ms; /* >= 0; default 15 min */
    double rel_floor;      /* spread sigma >= rel_floor * |level|, >= 0; default 1e-5 */
    an_severity severity;  /* default AN_SEV_WARNING */
} an_anomaly_cfg;

/* Internal state, caller-allocated, 72 bytes. Treat as opaque. */
typedef struct an_anomaly_state {
    double level;    /* smoothed level at the last reading */
    double last_v;   /* previous reading (quantisation step) */
    int64_t last_ts; /* ts of the previous reading */
    int64_t hit_ts;  /* ts of the last anomalous reading while raised */
    float slope;     /* smoothed trend per reading */
    float spread;    /* mean absolute residual */
    float quantum;   /* running median of the non-zero steps, 0 = none yet */
    float dt_typ;    /* running median of the sampling interval (ms), 0 = unknown */
    float score;     /* score of the last reading */
    float tail_p;    /* learned P(z > 3) */
    float tail_xi;   /* learned mean excess of z above 3 */
    float tail_m2;   /* learned mean squared excess (shape of the tail) */
    uint32_t n;      /* readings seen (saturates) */
    uint16_t n_exc;  /* residuals seen above the start of the tail (saturates) */
    uint8_t raised;
    int8_t clip_run; /* consecutive clipped residuals, signed by side */
} an_anomaly_state;

/* Writes the documented defaults into *cfg. Borrows cfg. */
void an_anomaly_cfg_default(an_anomaly_cfg *cfg);

/* Returns 0 if cfg is usable, -1 if a field is out of range. Borrows cfg. */
int an_anomaly_cfg_check(const an_anomaly_cfg *cfg);

/* Initialises a state to "no data". */
void an_anomaly_init(an_anomaly_state *st);

/* Feeds one reading (value finite). Borrows cfg and st (st is updated). Writes at most 1
 * transition into out (cap >= 1 required, else nothing is written and -1 returned) with
 * .rule = rule. Returns the number of transitions written. */
int an_anomaly_update(const an_anomaly_cfg *cfg, an_anomaly_state *st, int rule, int64_t ts_ms,
                      double value, an_alert *out, int cap);

/* Restores an open episode after a restart from the raised alert: raised, its reading
 * (ts_ms, value) the last anomalous one. The detector's statistics are not stored: it warms up
 * again and scores nothing for `warmup` readings. The alert clears as usual at the first
 * reading (or tick) at least refractory_ms after ts_ms (during the warm-up every reading
 * counts as normal); it never raises again while raised. Call it on a state fresh from
 * an_anomaly_init. NULL is ignored. */
void an_anomaly_restore(an_anomaly_state *st, int64_t ts_ms, double value);

/* Clock tick for a series that may have gone silent: clears a raised alert once now_ms is at
 * least refractory_ms after the last anomalous reading. Same contract as update; the cleared
 * alert carries the last reading's value and ts_ms = now_ms. */
int an_anomaly_tick(const an_anomaly_cfg *cfg, an_anomaly_state *st, int rule, int64_t now_ms,
                    an_alert *out, int cap);

/* Score in [0, 1] of the last reading (0 before the warm-up ends). Borrows st. */
double an_anomaly_score(const an_anomaly_state *st);

/* The score function alone: maps a standardised residual |z| to [0, 1] given the learned tail
 * (tail_p = P(|z| > 3), tail_xi = mean excess above 3, tail_m2 = mean squared excess).
 * Exposed for tests and tools. */
double an_anomaly_score_of(double z, double tail_p, double tail_xi, double tail_m2);

#endif
