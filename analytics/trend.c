/* Online exponentially weighted least-squares trend with eta prediction. See trend.h. */
#include "trend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MS_PER_H 3600000.0
/* A gap longer than this many time constants leaves weights below e^-40: restart the fit. */
#define RESTART_TAUS 40.0
/* Largest lag-1 autocorrelation used in the variance inflation ((1+r)/(1-r) <= 99). */
#define RHO_MAX 0.98
/* Up to this many consecutive outliers on one side are clipped; a longer run is a level
 * change, not a spike, and enters unclipped so the fit can follow it. */
#define MAX_CLIP_RUN 3
/* Level-shift CUSUM on the one-step prediction errors, in standard deviations: allowance,
 * decision threshold (ARL on white noise ~10^7 readings; a 2 sigma step is found in ~8) and
 * per-reading clip. */
#define SHIFT_K    1.0
#define SHIFT_H    8.0
#define SHIFT_CLIP 4.0

/* The weighted least-squares line at x = 0 (t_last). */
typedef struct line {
    bool valid;
    double b;     /* slope per ms */
    double level; /* fitted value at x = 0 */
} line;

void an_trend_cfg_default(an_trend_cfg *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->window_ms = 6 * 3600 * 1000LL;
    cfg->has_limit = false;
    cfg->limit = 0.0;
    cfg->dir = AN_TREND_RISING;
    cfg->horizon_ms = 24 * 3600 * 1000LL;
    cfg->clear_factor = 1.25;
    cfg->min_t = 3.0;
    cfg->band_z = 2.0;
    cfg->min_points = 10;
    cfg->huber_k = 5.0;
    cfg->holt = false;
    cfg->severity = AN_SEV_WARNING;
}

int an_trend_cfg_check(const an_trend_cfg *cfg) {
    if (!cfg || cfg->window_ms <= 0 || cfg->horizon_ms <= 0) {
        return -1;
    }
    if (!(cfg->clear_factor >= 1.0 && isfinite(cfg->clear_factor))) {
        return -1;
    }
    if (!(cfg->min_t > 0.0 && isfinite(cfg->min_t)) ||
        !(cfg->band_z > 0.0 && isfinite(cfg->band_z))) {
        return -1;
    }
    if (!(cfg->huber_k > 0.0 && isfinite(cfg->huber_k)) || cfg->min_points < 3) {
        return -1;
    }
    if (cfg->has_limit && !isfinite(cfg->limit)) {
        return -1;
    }
    if (cfg->dir != AN_TREND_RISING && cfg->dir != AN_TREND_FALLING) {
        return -1;
    }
    return 0;
}

void an_trend_init(an_trend_state *st) {
    memset(st, 0, sizeof(*st));
}

void an_trend_restore(an_trend_state *st) {
    if (st != NULL) {
        st->raised = 1;
    }
}

static void reset_fit(an_trend_state *st, int64_t ts_ms) {
    uint8_t raised = st->raised;
    memset(st, 0, sizeof(*st));
    st->t_last = ts_ms;
    st->raised = raised;
}

/* Weighted Welford update with a point (x, v) of weight w; also keeps the sums of squared
 * weights needed for the exact variance of the weighted slope. */
static void add_point(an_trend_state *st, double x, double v, double w) {
    double s0n = st->s0 + w;
    double dx = x - st->xbar;
    double dv = v - st->vbar;
    double xbar_n = st->xbar + w * dx / s0n;
    double vbar_n = st->vbar + w * dv / s0n;
    double shift = xbar_n - st->xbar;
    double ex = x - xbar_n;

    st->sxx += w * dx * ex;
    st->sxv += w * dx * (v - vbar_n);
    st->svv += w * dv * (v - vbar_n);
    /* Re-centre the w^2 sums on the new mean, then add the point. */
    st->m2 += shift * (shift * st->w2 - 2.0 * st->p1);
    st->p1 -= shift * st->w2;
    st->w2 += w * w;
    st->p1 += w * w * ex;
    st->m2 += w * w * ex * ex;
    st->s0 = s0n;
    st->xbar = xbar_n;
    st->vbar = vbar_n;
}

static void decay(an_trend_state *st, double d) {
    double d2 = d * d;
    st->s0 *= d;
    st->sxx *= d;
    st->sxv *= d;
    st->svv *= d;
    st->w2 *= d2;
    st->p1 *= d2;
    st->m2 *= d2;
    st->cee *= (float)d;
    st->eee *= (float)d;
}

/* The fitted line. `mature` also asks for readings spanning about half a window: that is
 * what predictions and alerts need, while the robustness machinery (Huber clip, error
 * autocorrelation, level-shift CUSUM) runs as soon as min_points readings are in, so the
 * autocorrelation estimate is ready when the first prediction is made. */
static bool line_of(const an_trend_cfg *cfg, const an_trend_state *st, bool mature, line *l) {
    l->valid = false;
    l->b = 0.0;
    l->level = st->vbar;
    /* n_eff = S0^2 / S2 >= min_points, without the division. */
    if (st->n < 3 || !(st->sxx > 0.0) || st->s0 * st->s0 < (double)cfg->min_points * st->w2) {
        return false;
    }
    /* A weighted spread of the timestamps of at least window / (2 sqrt 12), which evenly
     * spaced readings reach after half a window. A young fit changes so fast that every
     * reading is a fresh chance for a false significance; past half a window it has settled. */
    double w = (double)cfg->window_ms;
    if (mature && st->sxx * 48.0 < st->s0 * w * w) {
        return false;
    }
    l->b = st->sxv / st->sxx;
    l->level = st->vbar - l->b * st->xbar;
    l->valid = true;
    return true;
}

/* Residual variance of the line with slope b. */
static double resid_var(const an_trend_state *st, double b) {
    double rss = st->svv - b * st->sxv;
    if (rss < 0.0) {
        rss = 0.0;
    }
    /* E[sum w r^2] = sigma^2 (S0 - S2/S0 - M2/Sxx) for frequency-like weights; for equal
     * weights this is the familiar n - 2. */
    double dof = st->s0 - st->w2 / st->s0 - st->m2 / st->sxx;
    if (dof < 0.5) {
        dof = 0.5;
    }
    return rss / dof;
}

/* Variance of the slope: sigma^2 sum w^2 (x - xbar)^2 / Sxx^2 (exact for weighted LS with
 * independent errors), inflated by (1 + rho) / (1 - rho) for the lag-1 autocorrelation of the
 * one-step prediction errors. */
static double slope_var(const an_trend_state *st, double sigma2) {
    double var_b = sigma2 * st->m2 / (st->sxx * st->sxx);
    double rho = st->eee > 0.0f ? (double)st->cee / (double)st->eee : 0.0;
    if (!(rho > 0.0)) {
        rho = 0.0;
    } else if (rho > RHO_MAX) {
        rho = RHO_MAX;
    }
    return var_b * (1.0 + rho) / (1.0 - rho);
}

static void holt_step(an_trend_state *st, double d, double dt, double v) {
    /* Level time constant tau/4 (alpha = 1 - d^4), slope time constant tau (beta = 1 - d). */
    double d2 = d * d;
    double alpha = 1.0 - d2 * d2;
    double beta = 1.0 - d;
    double pred = st->h_level + (double)st->h_slope * dt;
    double lvl = pred + alpha * (v - pred);
    double slope = (double)st->h_slope + beta * ((lvl - st->h_level) / dt - (double)st->h_slope);
    st->h_level = lvl;
    st->h_slope = (float)slope;
}

/* Two-sided CUSUM of the standardised one-step prediction errors (autocorrelation-corrected
 * like the slope's standard error). A linear trend, however steep, leaves the errors centred;
 * a step of the level (or a sudden change of slope) does not. True when a shift is detected. */
static bool level_shift(an_trend_state *st, double r, double sigma2) {
    double rho = st->eee > 0.0f ? (double)st->cee / (double)st->eee : 0.0;
    rho = rho > 0.0 ? (rho < RHO_MAX ? rho : RHO_MAX) : 0.0;
    double var = sigma2 * (1.0 + rho) / (1.0 - rho);
    double u = var > 0.0 ? r / sqrt(var) : 0.0;
    u = u > SHIFT_CLIP ? SHIFT_CLIP : (u < -SHIFT_CLIP ? -SHIFT_CLIP : u);
    double gp = (double)st->shift_p + u - SHIFT_K;
    double gn = (double)st->shift_n - u - SHIFT_K;
    st->shift_p = (float)(gp > 0.0 ? gp : 0.0);
    st->shift_n = (float)(gn > 0.0 ? gn : 0.0);
    return gp >= SHIFT_H || gn >= SHIFT_H;
}

/* t + rel, saturating at INT64_MAX (also for rel = INFINITY). */
static int64_t add_ms(int64_t t, double rel) {
    if (rel < 0.0) {
        rel = 0.0;
    }
    double sum = (double)t + rel;
    if (!(sum < 9.2e18)) {
        return INT64_MAX;
    }
    return t + (int64_t)llround(rel);
}

/* Level and slope as reported (LS or Holt). */
static void reported(const an_trend_cfg *cfg, const an_trend_state *st, const line *l,
                     double *level, double *b) {
    if (cfg->holt && st->holt_ok) {
        *level = st->h_level;
        *b = (double)st->h_slope;
    } else {
        *level = l->level;
        *b = l->b;
    }
}

/* Relative eta in ms for slope b toward the limit (sign-adjusted); INFINITY when b <= 0. */
static double eta_rel(double dist, double b_toward) {
    if (dist <= 0.0) {
        return 0.0;
    }
    if (!(b_toward > 0.0)) {
        return INFINITY;
    }
    return dist / b_toward;
}

int an_trend_update(const an_trend_cfg *cfg, an_trend_state *st, int rule, int64_t ts_ms,
                    double value, an_alert *out, int cap) {
    if (!cfg || !st || !out || cap < 1) {
        return -1;
    }
    double tau = (double)cfg->window_ms / 3.0;
    double x = 0.0;
    double w = 1.0;
    double d = 1.0;
    double dt = 0.0;
    bool in_order = true;

    if (st->n == 0) {
        reset_fit(st, ts_ms);
    } else {
        /* In double: exact for any realistic timestamps, and no overflow for absurd ones. */
        dt = (double)ts_ms - (double)st->t_last;
        if (dt >= 0.0) {
            if (dt > RESTART_TAUS * tau) {
                reset_fit(st, ts_ms);
                dt = 0.0;
            } else {
                d = exp(-dt / tau);
                decay(st, d);
                st->xbar -= dt;
                st->t_last = ts_ms;
            }
        } else {
            if (-dt > RESTART_TAUS * tau) {
                return 0; /* far older than the window: no weight */
            }
            in_order = false;
            x = dt;
            w = exp(dt / tau);
        }
    }

    line l;
    double v = value;
    if (line_of(cfg, st, false, &l)) {
        double pred = l.level + l.b * x;
        double r = value - pred;
        double sigma2 = resid_var(st, l.b);
        double k2 = cfg->huber_k * cfg->huber_k * sigma2;
        if (r * r > k2) {
            double lim = sqrt(k2);
            int side = r > 0.0 ? 1 : -1;
            /* Length of the run of clipped readings on this side so far. */
            int run = st->clip_run * side > 0 ? abs(st->clip_run) : 0;
            if (run < MAX_CLIP_RUN) {
                v = pred + side * lim;
                st->clip_run = (int8_t)(side * (run + 1));
            }
        } else {
            st->clip_run = 0;
        }
        if (in_order) {
            float e = (float)(v - pred);
            st->cee += e * st->e_prev;
            st->eee += e * e;
            st->e_prev = e;
            if (level_shift(st, r, sigma2)) {
                /* The line no longer describes the series: start a new fit here rather than
                 * extrapolate a step as a slope. */
                reset_fit(st, ts_ms);
                v = value;
            }
        }
    }
    add_point(st, x, v, w);
    if (st->n < UINT32_MAX) {
        st->n++;
    }
    if (!cfg->has_limit && !cfg->holt) {
        return 0;
    }

    line_of(cfg, st, true, &l);
    if (cfg->holt && in_order) {
        if (st->holt_ok && dt > 0.0) {
            holt_step(st, d, dt, v);
        } else if (!st->holt_ok && l.valid) {
            st->h_level = l.level;
            st->h_slope = (float)l.b;
            st->holt_ok = 1;
        }
    }
    if (!cfg->has_limit || !l.valid) {
        return 0;
    }

    double level;
    double b;
    reported(cfg, st, &l, &level, &b);
    double s = cfg->dir == AN_TREND_RISING ? 1.0 : -1.0;
    double dist = s * (cfg->limit - level);
    bool toward = s * b > 0.0;
    double eta = toward ? eta_rel(dist, s * b) : INFINITY;

    int k = 0;
    if (!st->raised) {
        /* Significance last: it is the expensive test. |b| / se >= min_t. */
        if (toward && eta <= (double)cfg->horizon_ms &&
            b * b >= cfg->min_t * cfg->min_t * slope_var(st, resid_var(st, l.b))) {
            st->raised = 1;
            k = 1;
            out[0].state = AN_STATE_RAISED;
        }
    } else if (!toward || eta > cfg->clear_factor * (double)cfg->horizon_ms) {
        st->raised = 0;
        k = 1;
        out[0].state = AN_STATE_CLEARED;
    }
    if (k) {
        out[0].kind = AN_KIND_TREND;
        out[0].severity = cfg->severity;
        out[0].value = value;
        out[0].threshold = cfg->limit;
        out[0].ts_ms = ts_ms;
        out[0].rule = rule;
        /* The predicted crossing time; 0 when none is predicted (the slope turned away). */
        out[0].detail = isfinite(eta) ? (double)add_ms(st->t_last, eta) : 0.0;
    }
    return k;
}

int an_trend_predict(const an_trend_cfg *cfg, const an_trend_state *st, an_trend_pred *out) {
    line l;
    memset(out, 0, sizeof(*out));
    out->eta_ms = INT64_MAX;
    out->eta_lo_ms = INT64_MAX;
    out->eta_hi_ms = INT64_MAX;
    if (!line_of(cfg, st, true, &l)) {
        return 0;
    }
    double level;
    double b;
    reported(cfg, st, &l, &level, &b);
    double se = sqrt(slope_var(st, resid_var(st, l.b)));
    out->valid = true;
    out->level = level;
    out->slope_per_h = b * MS_PER_H;
    out->slope_se_per_h = se * MS_PER_H;
    out->n_eff = st->s0 * st->s0 / st->w2;
    if (!cfg->has_limit) {
        return 0;
    }
    double s = cfg->dir == AN_TREND_RISING ? 1.0 : -1.0;
    double dist = s * (cfg->limit - level);
    if (dist > 0.0 && !(s * b > 0.0)) {
        return 0;
    }
    out->has_eta = true;
    out->eta_ms = add_ms(st->t_last, eta_rel(dist, s * b));
    out->eta_lo_ms = add_ms(st->t_last, eta_rel(dist, s * b + cfg->band_z * se));
    out->eta_hi_ms = add_ms(st->t_last, eta_rel(dist, s * b - cfg->band_z * se));
    return 0;
}
