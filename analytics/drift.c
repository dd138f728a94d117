/* Drift detector: CUSUM of the short-term level against a learned baseline. See drift.h. */
#include "drift.h"
#include "an_math.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { PH_LEARN = 0, PH_WATCH = 1, PH_RAISED = 2 };

/* Up to this many consecutive outliers on one side are clipped; a longer run is a change of
 * level and enters unclipped so the short-term level can follow it. */
#define MAX_CLIP_RUN 3

void an_drift_cfg_default(an_drift_cfg *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->warmup = 100;
    cfg->span = 16;
    cfg->k = 4.5;
    cfg->h = 8.0;
    cfg->clip = 4.0;
    cfg->memory = 2000;
    cfg->relearn = 1000;
    cfg->rel_floor = 1e-5;
    cfg->severity = AN_SEV_WARNING;
}

int an_drift_cfg_check(const an_drift_cfg *cfg) {
    if (!cfg || cfg->warmup < 10 || cfg->memory < cfg->warmup || cfg->memory > UINT16_MAX ||
        cfg->relearn < 1) {
        return -1;
    }
    if (cfg->span < 2 || cfg->span > cfg->warmup) {
        return -1;
    }
    if (!(cfg->k > 1.0 && isfinite(cfg->k)) || !(cfg->h > 0.0 && isfinite(cfg->h))) {
        return -1;
    }
    if (!(cfg->clip > 0.0 && isfinite(cfg->clip))) {
        return -1;
    }
    if (!(cfg->rel_floor >= 0.0 && isfinite(cfg->rel_floor))) {
        return -1;
    }
    return 0;
}

void an_drift_init(an_drift_state *st) {
    memset(st, 0, sizeof(*st));
}

/* Short-term noise sigma, floored by half the quantisation step and the relative floor. */
static double noise_sigma(const an_drift_cfg *cfg, const an_drift_state *st) {
    double s = sqrt((double)st->noise2);
    s = maxd(s, maxd(0.5 * (double)st->quantum, cfg->rel_floor * fabs(st->mu)));
    return s > 1e-300 ? s : 1e-300;
}

/* Spread D of the short-term level around the baseline: the learned one, but never below what
 * white noise alone gives an EWMA of span L (sigma^2 / (2L - 1)). */
static double level_sigma(const an_drift_cfg *cfg, const an_drift_state *st, double sn) {
    double floor2 = sn * sn / (2.0 * (double)cfg->span - 1.0);
    double d = sqrt(maxd((double)st->dev2, floor2));
    return d > 1e-300 ? d : 1e-300;
}

static double clampd(double x, double lim) {
    return x > lim ? lim : (x < -lim ? -lim : x);
}

static int emit(const an_drift_cfg *cfg, const an_drift_state *st, int rule, int64_t ts_ms,
                double value, an_state state, an_alert *out) {
    out->kind = AN_KIND_DRIFT;
    out->state = state;
    out->severity = cfg->severity;
    out->value = value;
    out->threshold = st->mu;
    out->ts_ms = ts_ms;
    out->rule = rule;
    out->detail = st->level - st->mu;
    return 1;
}

/* Updates the short-term level and the noise estimate with one reading. */
static void track_level(const an_drift_cfg *cfg, an_drift_state *st, double v, double sn) {
    double r = v - st->level;
    double lim = cfg->clip * sn;
    double rc = r;
    bool robust = st->n >= 10 || st->phase != PH_LEARN;
    if (robust && fabs(r) > lim) {
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
    double a;
    double an;
    if (st->phase == PH_LEARN) {
        a = 1.0 / (double)(st->n + 1 < cfg->span ? st->n + 1 : cfg->span);
        an = 1.0 / (double)st->n;
    } else {
        a = 1.0 / (double)cfg->span;
        an = 1.0 / (double)cfg->memory;
    }
    st->level += a * rc;
    double rn = robust ? mind(fabs(r), lim) : fabs(r);
    st->noise2 = (float)((double)st->noise2 + an * (rn * rn - (double)st->noise2));
}

int an_drift_restore(an_drift_state *st, double baseline, double shift) {
    if (!st || !isfinite(baseline) || !isfinite(shift)) {
        return -1;
    }
    st->restored_mu = baseline;
    st->side = shift < 0.0 ? -1 : 1;
    return 0;
}

/* The end of the warm-up after a restore: the level learned from the new readings is judged
 * against the restored baseline, as the raised phase's clearing sum would judge it. */
static int restored_verdict(const an_drift_cfg *cfg, an_drift_state *st, int rule, int64_t ts_ms,
                            double value, an_alert *out) {
    double base = st->restored_mu;
    double w = (st->level - base) / level_sigma(cfg, st, noise_sigma(cfg, st));
    st->gp = 0.0f;
    st->gn = 0.0f;
    st->n = 0;
    if ((double)st->side * w > 0.5 * cfg->k) {
        /* Still shifted: the episode goes on against the baseline it was raised on. */
        st->mu = base;
        st->phase = PH_RAISED;
        return 0;
    }
    double learned = st->mu;
    st->mu = base;
    int k = emit(cfg, st, rule, ts_ms, value, AN_STATE_CLEARED, out);
    st->mu = learned;
    st->phase = PH_WATCH;
    st->side = 0;
    return k;
}

int an_drift_update(const an_drift_cfg *cfg, an_drift_state *st, int rule, int64_t ts_ms,
                    double value, an_alert *out, int cap) {
    if (!cfg || !st || !out || cap < 1) {
        return -1;
    }
    if (st->phase == PH_LEARN && st->n == 0) {
        /* A restored episode survives the start of the learning. */
        double restored_mu = st->restored_mu;
        int8_t side = st->side;
        memset(st, 0, sizeof(*st));
        st->restored_mu = restored_mu;
        st->side = side;
        st->mu = value;
        st->level = value;
        st->last_v = value;
        st->n = 1;
        return 0;
    }
    /* Noise sigma as it was before this reading, used for every clip of this update. */
    double sn = noise_sigma(cfg, st);
    st->quantum = an_quantum_update(st->quantum, st->last_v, value);
    st->last_v = value;
    track_level(cfg, st, value, sn);

    if (st->phase == PH_LEARN) {
        /* Robust running mean for the baseline, running mean square for D. */
        double a = 1.0 / (double)(st->n + 1);
        double tot = sqrt((double)st->noise2 + (double)st->dev2);
        double dv = value - st->mu;
        if (st->n >= 10) {
            dv = clampd(dv, cfg->clip * maxd(tot, sn));
        }
        st->mu += a * dv;
        double e = st->level - st->mu;
        st->dev2 = (float)((double)st->dev2 + (1.0 / (double)st->n) * (e * e - (double)st->dev2));
        st->n++;
        st->age = (uint16_t)(st->n < UINT16_MAX ? st->n : UINT16_MAX);
        if (st->n >= cfg->warmup) {
            if (st->side != 0) {
                return restored_verdict(cfg, st, rule, ts_ms, value, out);
            }
            st->phase = PH_WATCH;
            st->gp = 0.0f;
            st->gn = 0.0f;
            st->n = 0;
        }
        return 0;
    }

    double dsig = level_sigma(cfg, st, sn);
    double w = (st->level - st->mu) / dsig;
    if (st->phase == PH_WATCH) {
        double gp = maxd(0.0, (double)st->gp + w - cfg->k);
        double gn = maxd(0.0, (double)st->gn - w - cfg->k);
        if (gp >= cfg->h || gn >= cfg->h) {
            st->phase = PH_RAISED;
            st->side = gp >= cfg->h ? 1 : -1;
            st->gp = 0.0f;
            st->gn = 0.0f;
            st->n = 0;
            return emit(cfg, st, rule, ts_ms, value, AN_STATE_RAISED, out);
        }
        st->gp = (float)gp;
        st->gn = (float)gn;
        /* The baseline keeps learning from every reading (winsorised, so a spread that is too
         * small grows back: learning only while nothing accumulates would lock it low). */
        if (st->age < UINT16_MAX) {
            st->age++;
        }
        double a = 1.0 / (double)(st->age < cfg->memory ? st->age : cfg->memory);
        st->mu += a * clampd(value - st->mu, cfg->clip * maxd(dsig, sn));
        double e = clampd(st->level - st->mu, cfg->clip * dsig);
        st->dev2 = (float)((double)st->dev2 + a * (e * e - (double)st->dev2));
        return 0;
    }

    /* Raised: the sum on the raised side collects evidence that the level is back within
     * k / 2 spreads of the baseline (the hysteresis keeps a marginal shift from flapping). */
    float *gb = st->side > 0 ? &st->gp : &st->gn;
    double g = maxd(0.0, (double)*gb + 0.5 * cfg->k - (double)st->side * w);
    *gb = (float)g;
    if (st->n < UINT32_MAX) {
        st->n++;
    }
    if (g >= cfg->h || st->n >= cfg->relearn) {
        int k = emit(cfg, st, rule, ts_ms, value, AN_STATE_CLEARED, out);
        if (g < cfg->h) {
            /* The shift persisted: accept the current level as the new baseline. */
            st->mu = st->level;
        }
        st->phase = PH_WATCH;
        st->gp = 0.0f;
        st->gn = 0.0f;
        st->n = 0;
        st->side = 0;
        return k;
    }
    return 0;
}

int an_drift_info_get(const an_drift_cfg *cfg, const an_drift_state *st, an_drift_info *out) {
    memset(out, 0, sizeof(*out));
    out->phase = st->phase;
    out->baseline = st->mu;
    out->level = st->level;
    out->noise_sigma = noise_sigma(cfg, st);
    out->level_sigma = level_sigma(cfg, st, out->noise_sigma);
    if (st->phase == PH_WATCH) {
        out->g_up = st->gp;
        out->g_down = st->gn;
    }
    return 0;
}
