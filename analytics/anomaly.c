/* Self-calibrating online anomaly score. See anomaly.h. */
#include "anomaly.h"
#include "an_math.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAD_TO_SIGMA 1.2533141373155001
/* Start of the learned (generalised Pareto) tail, in sigma, and its prior: the exponential
 * tail that matches a Gaussian at 3 sigma. */
#define TAIL_Z0  3.0
#define GAUSS_P0 0.0026997960632601866 /* P(|Z| > 3) */
#define GAUSS_XI 0.2830                /* E[Z - 3 | Z > 3] */
/* Learning rates of the tail: the rate remembers ~10^4 readings, the excess moments ~100
 * exceedances; an excess counts at most TAIL_XCAP times the current mean excess, so a burst of
 * huge anomalies cannot quickly teach the detector that everything is normal. */
#define TAIL_ALPHA 1e-4
#define XI_ALPHA   0.01
/* Until the exponential memories fill, the tail estimates are running means over the data
 * plus the prior, which counts as TAIL_N0 scored readings and XI_K0 exceedances. */
#define TAIL_N0   1000.0
#define XI_K0     10.0
#define TAIL_XCAP 5.0
#define XI_MIN    0.2
#define XI_MAX    5.0
#define SHAPE_MAX 0.45
/* Huber clip of level and spread updates, in sigma; a run of more than MAX_CLIP_RUN clipped
 * readings on one side is a level change and is followed unclipped. */
#define HUBER        4.0
#define MAX_CLIP_RUN 3
/* Gap handling: widen the spread beyond GAP_START typical intervals, at most GAP_MAX times;
 * extrapolate the trend over at most TREND_MAX intervals. */
#define GAP_START 2.0
#define GAP_MAX   8.0
#define TREND_MAX 10.0
#define DT_STEP   1.05

void an_anomaly_cfg_default(an_anomaly_cfg *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->alpha = 0.3;
    cfg->beta = 0.0;
    cfg->spread_alpha = 0.01;
    cfg->warmup = 30;
    cfg->sensitivity = 0.99999;
    cfg->refractory_ms = 15 * 60 * 1000LL;
    cfg->rel_floor = 1e-5;
    cfg->severity = AN_SEV_WARNING;
}

int an_anomaly_cfg_check(const an_anomaly_cfg *cfg) {
    if (!cfg || !(cfg->alpha > 0.0 && cfg->alpha <= 1.0)) {
        return -1;
    }
    if (!(cfg->beta >= 0.0 && cfg->beta < 1.0)) {
        return -1;
    }
    if (!(cfg->spread_alpha > 0.0 && cfg->spread_alpha < 1.0)) {
        return -1;
    }
    if (!(cfg->sensitivity > 0.0 && cfg->sensitivity < 1.0)) {
        return -1;
    }
    if (cfg->warmup < 3 || cfg->refractory_ms < 0) {
        return -1;
    }
    if (!(cfg->rel_floor >= 0.0 && isfinite(cfg->rel_floor))) {
        return -1;
    }
    return 0;
}

void an_anomaly_init(an_anomaly_state *st) {
    memset(st, 0, sizeof(*st));
}

/* erf(x) for x >= 0 within 1.5e-7 (Abramowitz & Stegun 7.1.26): one exp instead of libm's
 * erfc, which costs about as much as the rest of the update. */
static double erf_fast(double x) {
    double t = 1.0 / (1.0 + 0.3275911 * x);
    double poly =
        t * (0.254829592 +
             t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return 1.0 - poly * exp(-x * x);
}

double an_anomaly_score_of(double z, double tail_p, double tail_xi, double tail_m2) {
    if (!(z > 0.0)) {
        return 0.0;
    }
    if (z <= TAIL_Z0) {
        /* Gaussian body, rescaled so the score is continuous at the start of the tail. */
        double s = erf_fast(z * M_SQRT1_2) * (1.0 - tail_p) / (1.0 - GAUSS_P0);
        return s < 1.0 ? s : 1.0;
    }
    /* Generalised Pareto excess by the method of moments: shape = (1 - mean^2 / var) / 2. */
    double var = tail_m2 - tail_xi * tail_xi;
    double shape = var > 0.0 ? 0.5 * (1.0 - tail_xi * tail_xi / var) : 0.0;
    double y = z - TAIL_Z0;
    double p;
    if (shape > 1e-3) {
        shape = shape < SHAPE_MAX ? shape : SHAPE_MAX;
        double scale = tail_xi * (1.0 - shape);
        p = tail_p * exp(-log1p(shape * y / scale) / shape);
    } else {
        p = tail_p * exp(-y / tail_xi);
    }
    return 1.0 - p;
}

double an_anomaly_score(const an_anomaly_state *st) {
    return st->score;
}

static double sigma_of(const an_anomaly_cfg *cfg, const an_anomaly_state *st) {
    double s = MAD_TO_SIGMA * (double)st->spread;
    double fq = 0.5 * (double)st->quantum;
    double fr = cfg->rel_floor * fabs(st->level);
    s = maxd(s, maxd(fq, fr));
    return s > 1e-300 ? s : 1e-300;
}

static void learn_tail(const an_anomaly_cfg *cfg, an_anomaly_state *st, double z) {
    double p = st->tail_p;
    double ap = maxd(TAIL_ALPHA, 1.0 / (TAIL_N0 + (double)(st->n - cfg->warmup)));
    if (z > TAIL_Z0) {
        if (st->n_exc < UINT16_MAX) {
            st->n_exc++;
        }
        double ax = maxd(XI_ALPHA, 1.0 / (XI_K0 + (double)st->n_exc));
        double m = st->tail_xi;
        double x = mind(z - TAIL_Z0, TAIL_XCAP * m);
        m += ax * (x - m);
        m = mind(maxd(m, XI_MIN), XI_MAX);
        double m2 = (double)st->tail_m2 + ax * (x * x - (double)st->tail_m2);
        st->tail_xi = (float)m;
        st->tail_m2 = (float)maxd(m2, m * m);
        p += ap * (1.0 - p);
    } else {
        p -= ap * p;
    }
    st->tail_p = (float)maxd(p, 0.25 * GAUSS_P0);
}

/* The spread is estimated from about nu residuals; a residual standardised by it follows a
 * Student t with nu degrees of freedom rather than a normal. Wallace's (1959) approximation
 * maps t to the normal deviate with the same tail probability, so a young detector (or a
 * fast-moving spread) is not overconfident. */
static double t_to_z(double t, double nu) {
    double x = t * t / nu;
    /* log1p by its series while x is small (error < 7e-8 relative), which is most readings. */
    double l = x < 0.05 ? x * (1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))) : log1p(x);
    return sqrt(nu * l) * (8.0 * nu + 1.0) / (8.0 * nu + 3.0);
}

static int emit(const an_anomaly_cfg *cfg, const an_anomaly_state *st, int rule, int64_t ts_ms,
                double value, an_state state, an_alert *out) {
    out->kind = AN_KIND_ANOMALY;
    out->state = state;
    out->severity = cfg->severity;
    out->value = value;
    out->threshold = cfg->sensitivity;
    out->ts_ms = ts_ms;
    out->rule = rule;
    out->detail = st->score;
    return 1;
}

int an_anomaly_update(const an_anomaly_cfg *cfg, an_anomaly_state *st, int rule, int64_t ts_ms,
                      double value, an_alert *out, int cap) {
    if (!cfg || !st || !out || cap < 1) {
        return -1;
    }
    if (st->n == 0) {
        /* A restored episode survives the start (an_anomaly_restore). */
        uint8_t raised = st->raised;
        int64_t hit_ts = st->hit_ts;
        memset(st, 0, sizeof(*st));
        st->level = value;
        st->last_v = value;
        st->last_ts = ts_ms;
        st->tail_p = (float)GAUSS_P0;
        st->tail_xi = (float)GAUSS_XI;
        st->tail_m2 = (float)(2.0 * GAUSS_XI * GAUSS_XI);
        st->n = 1;
        st->raised = raised;
        st->hit_ts = hit_ts;
        if (raised && (double)ts_ms - (double)hit_ts >= (double)cfg->refractory_ms) {
            st->raised = 0;
            return emit(cfg, st, rule, ts_ms, value, AN_STATE_CLEARED, out);
        }
        return 0;
    }

    /* Sampling interval, in units of the typical one. */
    double g = 1.0;
    double dt = ts_ms > st->last_ts ? (double)ts_ms - (double)st->last_ts : 0.0;
    if (dt > 0.0) {
        if (st->dt_typ > 0.0f) {
            g = dt / (double)st->dt_typ;
            if (dt > (double)st->dt_typ) {
                st->dt_typ = (float)((double)st->dt_typ * DT_STEP);
            } else if (dt < (double)st->dt_typ) {
                st->dt_typ = (float)((double)st->dt_typ / DT_STEP);
            }
        } else {
            st->dt_typ = (float)dt;
        }
    } else if (st->dt_typ > 0.0f) {
        g = 0.0;
    }
    if (ts_ms > st->last_ts) {
        st->last_ts = ts_ms;
    }

    double pred = st->level + (double)st->slope * mind(g, TREND_MAX);
    double r = value - pred;
    double sig = sigma_of(cfg, st);
    double widen = g > GAP_START ? mind(sqrt(g / GAP_START), GAP_MAX) : 1.0;
    double z = fabs(r) / (sig * widen);

    bool scoring = st->n >= cfg->warmup;
    double score = 0.0;
    if (scoring) {
        double nu = mind((double)(st->n - 1), 2.0 / cfg->spread_alpha - 1.0);
        z = t_to_z(z, nu);
        score = an_anomaly_score_of(z, st->tail_p, st->tail_xi, st->tail_m2);
        learn_tail(cfg, st, z);
    }
    st->score = (float)score;

    /* Huber-clipped updates, only after the warm-up: clipping against a spread learned from a
     * handful of residuals would lock it at whatever the first readings showed. */
    double lim = HUBER * sig * widen;
    double rc = r;
    if (scoring && fabs(r) > lim) {
        int side = r > 0.0 ? 1 : -1;
        /* Length of the run of clipped readings on this side so far. */
        int run = st->clip_run * side > 0 ? abs(st->clip_run) : 0;
        if (run < MAX_CLIP_RUN) {
            rc = side * lim;
            st->clip_run = (int8_t)(side * (run + 1));
        }
    } else {
        st->clip_run = 0;
    }
    double lvl = pred + cfg->alpha * rc;
    if (cfg->beta > 0.0) {
        double step = lvl - st->level;
        st->slope = (float)((double)st->slope + cfg->beta * (step - (double)st->slope));
    }
    st->level = lvl;
    double a = 1.0 / (double)st->n;
    if (a < cfg->spread_alpha) {
        a = cfg->spread_alpha;
    }
    /* The spread always takes the clipped residual, also while the level follows a change. */
    double ar = (scoring ? mind(fabs(r), lim) : fabs(r)) / widen;
    st->spread = (float)((double)st->spread + a * (ar - (double)st->spread));
    /* The step of this reading counts for the floor only from the next one on: the first
     * change of a sensor that was constant so far is scored against the relative floor. */
    st->quantum = an_quantum_update(st->quantum, st->last_v, value);
    st->last_v = value;
    if (st->n < UINT32_MAX) {
        st->n++;
    }

    if (scoring && score >= cfg->sensitivity) {
        st->hit_ts = ts_ms;
        if (!st->raised) {
            st->raised = 1;
            return emit(cfg, st, rule, ts_ms, value, AN_STATE_RAISED, out);
        }
        return 0;
    }
    if (st->raised && (double)ts_ms - (double)st->hit_ts >= (double)cfg->refractory_ms) {
        st->raised = 0;
        return emit(cfg, st, rule, ts_ms, value, AN_STATE_CLEARED, out);
    }
    return 0;
}

void an_anomaly_restore(an_anomaly_state *st, int64_t ts_ms, double value) {
    if (st != NULL) {
        st->raised = 1;
        st->hit_ts = ts_ms;
        st->last_v = value;
    }
}

int an_anomaly_tick(const an_anomaly_cfg *cfg, an_anomaly_state *st, int rule, int64_t now_ms,
                    an_alert *out, int cap) {
    if (!cfg || !st || !out || cap < 1) {
        return -1;
    }
    if (st->raised && (double)now_ms - (double)st->hit_ts >= (double)cfg->refractory_ms) {
        st->raised = 0;
        return emit(cfg, st, rule, now_ms, st->last_v, AN_STATE_CLEARED, out);
    }
    return 0;
}
