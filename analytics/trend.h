/* Trend of one series: online least-squares level and slope over a sliding time window, and
 * the predicted time at which the series reaches a limit (predictive maintenance).
 * Pure (libc + libm), no allocation, no I/O. Single-threaded: the worker that owns the series
 * serialises all calls on one state.
 *
 * Method: exponentially weighted least squares. A reading of age a (ms before the newest
 * reading) has weight exp(-a / tau) with tau = window_ms / 3, so 95% of the weight lies inside
 * the window; the slope estimate has the variance of a plain fit over about 1.2 windows.
 * The sums are kept centred (weighted Welford updates on a time axis relative to the newest
 * reading), so epoch-ms timestamps and tiny slopes lose no precision; each reading costs O(1)
 * and one exp(). A bucketed exact sliding window was rejected because it needs ~40 bytes per
 * bucket, beyond the memory budget of a series.
 *
 * Robustness: a reading further than huber_k standard deviations from the current fit enters
 * clipped to that distance (Huber), so single spikes barely move the fit (more than 3 in a row
 * on one side are a change and enter unclipped). The slope's standard error comes from the
 * weighted residuals (exact for weighted LS with independent errors) and is inflated by the
 * lag-1 autocorrelation of the one-step prediction errors ((1+rho)/(1-rho)), so slow wander is
 * not taken for a significant trend. A CUSUM of the standardised one-step prediction errors
 * (allowance 1, threshold 8) detects a step of the level, or a sudden change of slope, and
 * restarts the fit there: a step is not extrapolated as a slope. A prediction needs min_points
 * effective readings spanning about half a window (weighted spread of their timestamps >=
 * window / (2 sqrt 12)), so a young fit cannot raise on a few minutes of noise. A gap longer
 * than 40 tau restarts the fit. Readings with a timestamp older than the newest are added with
 * their proper (smaller) weight; duplicate timestamps are fine.
 *
 * Holt (holt = true): level and slope are reported from Holt's linear smoothing on the
 * irregular time axis (level time constant window/12, slope time constant window/3), which
 * reacts faster than the LS line; the standard error and the band still come from the LS fit.
 *
 * Alerts (only when has_limit): AN_KIND_TREND is raised when the slope points toward the
 * limit, is significant (|slope| >= min_t standard errors) and the predicted crossing is at
 * most horizon_ms away (a level already at or past the limit counts as eta 0); it is cleared
 * when the predicted crossing moves beyond clear_factor * horizon_ms or the slope turns away.
 * .value is the reading, .threshold the limit, .ts_ms the reading's ts, .detail the predicted
 * crossing time in epoch ms (0 when none is predicted: cleared because the slope turned away);
 * the band is in an_trend_predict(). */
#ifndef AN_TREND_H
#define AN_TREND_H

#include <stdbool.h>
#include <stdint.h>

#include "an_types.h"

typedef enum an_trend_dir {
    AN_TREND_RISING = 0, /* the limit is an upper limit: alert when rising toward it */
    AN_TREND_FALLING     /* the limit is a lower limit: alert when falling toward it */
} an_trend_dir;

typedef struct an_trend_cfg {
    int64_t window_ms;    /* sliding window, > 0; default 6 h */
    bool has_limit;       /* default false: predictions only, never an alert */
    double limit;         /* finite */
    an_trend_dir dir;     /* default AN_TREND_RISING */
    int64_t horizon_ms;   /* raise when the limit is predicted within it, > 0; default 24 h */
    double clear_factor;  /* clear when eta > clear_factor * horizon, >= 1; default 1.25 */
    double min_t;         /* slope significance (t statistic) to raise, > 0; default 3 */
    double band_z;        /* half-width of the eta band in standard errors, > 0; default 2 */
    uint32_t min_points;  /* effective number of readings before any prediction; default 10 */
    double huber_k;       /* clip readings beyond huber_k residual sd, > 0; default 5 */
    bool holt;            /* report Holt (level + trend) smoothing instead of the LS line;
                             default false */
    an_severity severity; /* default AN_SEV_WARNING */
} an_trend_cfg;

/* Internal state, caller-allocated, 120 bytes. Treat as opaque. */
typedef struct an_trend_state {
    int64_t t_last; /* ts of the newest reading; the time axis is x = ts - t_last (ms) */
    double s0;      /* sum of weights */
    double w2;      /* sum of squared weights */
    double xbar;    /* weighted mean of x (<= 0 for in-order data) */
    double vbar;    /* weighted mean of the values */
    double sxx;     /* centred weighted sums */
    double sxv;
    double svv;
    double p1;      /* sum w^2 (x - xbar) */
    double m2;      /* sum w^2 (x - xbar)^2 */
    double h_level; /* Holt level at t_last */
    float h_slope;  /* Holt slope per ms */
    float e_prev;   /* previous one-step prediction error */
    float cee;      /* decayed sum of e[t] * e[t-1] */
    float eee;      /* decayed sum of e[t]^2 */
    float shift_p;  /* level-shift CUSUM of the standardised prediction errors, up */
    float shift_n;  /* and down */
    uint32_t n;     /* readings seen since the last restart (saturates) */
    uint8_t raised;
    uint8_t holt_ok;
    int8_t clip_run; /* consecutive clipped readings, signed by side */
} an_trend_state;

/* The current prediction. Times are UTC epoch ms. */
typedef struct an_trend_pred {
    bool valid;            /* enough data for level and slope */
    double level;          /* fitted value at the newest reading */
    double slope_per_h;    /* value units per hour */
    double slope_se_per_h; /* standard error, autocorrelation-corrected */
    double n_eff;          /* effective number of readings in the window */
    bool has_eta;          /* a limit is configured and the slope points toward it */
    int64_t eta_ms;        /* predicted crossing time (ts of the newest reading if already past) */
    int64_t eta_lo_ms;     /* earliest plausible crossing (slope + band_z se) */
    int64_t eta_hi_ms;     /* latest plausible crossing; INT64_MAX when the band includes 0 */
} an_trend_pred;

/* Writes the documented defaults into *cfg (no limit). Borrows cfg. */
void an_trend_cfg_default(an_trend_cfg *cfg);

/* Returns 0 if cfg is usable, -1 if a field is out of range. Borrows cfg. */
int an_trend_cfg_check(const an_trend_cfg *cfg);

/* Initialises a state to "no data". */
void an_trend_init(an_trend_state *st);

/* Restores an open episode after a restart: raised, with no fit (the fit is not stored). The
 * alert then clears once a new fit is mature (min_points readings over about half a window)
 * and no longer predicts the limit within clear_factor x horizon, or its slope turns away;
 * until then nothing changes, and it never raises again while raised. Call it on a state fresh
 * from an_trend_init. NULL is ignored. */
void an_trend_restore(an_trend_state *st);

/* Feeds one reading (value finite; ts in any order). Borrows cfg and st (st is updated). Writes
 * at most 1 transition into out (cap >= 1 required, else nothing is written and -1 returned)
 * with .rule = rule. Returns the number of transitions written. */
int an_trend_update(const an_trend_cfg *cfg, an_trend_state *st, int rule, int64_t ts_ms,
                    double value, an_alert *out, int cap);

/* Computes the current prediction into *out. Borrows cfg and st; does not modify st. Always
 * returns 0 (out->valid tells whether there is a fit). */
int an_trend_predict(const an_trend_cfg *cfg, const an_trend_state *st, an_trend_pred *out);

#endif
