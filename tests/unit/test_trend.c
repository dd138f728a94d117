/* Unit tests of analytics/trend.c: synthetic degradations with known answers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "trend.h"

#define T0   1700000000000LL /* epoch ms, Nov 2023 */
#define HOUR 3600000LL
#define MIN  60000LL

#include "test_rng.h"

static an_trend_cfg limit_cfg(double limit) {
    an_trend_cfg c;
    an_trend_cfg_default(&c);
    c.has_limit = true;
    c.limit = limit;
    return c;
}

static void test_defaults(void **state) {
    (void)state;
    an_trend_cfg c;
    an_trend_cfg_default(&c);
    assert_int_equal(c.window_ms, 6 * HOUR);
    assert_int_equal(c.horizon_ms, 24 * HOUR);
    assert_false(c.has_limit);
    assert_true(c.clear_factor == 1.25);
    assert_int_equal(an_trend_cfg_check(&c), 0);
    an_trend_cfg bad = c;
    bad.window_ms = 0;
    assert_int_equal(an_trend_cfg_check(&bad), -1);
    bad = c;
    bad.clear_factor = 0.5;
    assert_int_equal(an_trend_cfg_check(&bad), -1);
    bad = c;
    bad.has_limit = true;
    bad.limit = NAN;
    assert_int_equal(an_trend_cfg_check(&bad), -1);
    bad = c;
    bad.min_points = 2;
    assert_int_equal(an_trend_cfg_check(&bad), -1);
    assert_true(sizeof(an_trend_state) <= 128);

    an_trend_state st;
    an_trend_init(&st);
    an_alert a;
    assert_int_equal(an_trend_update(&c, &st, 0, T0, 1.0, &a, 0), -1);
    an_trend_pred p;
    assert_int_equal(an_trend_predict(&c, &st, &p), 0);
    assert_false(p.valid);
}

/* Linear ramp toward a limit with noise: once a window of data has arrived the predicted
 * crossing is within 10% of the true remaining time, the band contains it, and the alert is
 * raised when the crossing comes within the horizon. */
static void run_ramp(bool jitter, bool gap) {
    rng_seed(7);
    an_trend_cfg c = limit_cfg(100.0);
    an_trend_state st;
    an_trend_init(&st);
    const double slope_h = 1.0; /* 20 -> 100 in 80 h */
    const double cross = (double)T0 + 80.0 * (double)HOUR;
    int64_t t = T0;
    int64_t raised_at = -1;
    int checked = 0;
    int64_t next_check = T0 + 8 * HOUR;
    while ((double)t < cross - 2.0 * (double)HOUR) {
        t += jitter ? (int64_t)(MIN * (0.2 + 1.6 * urand())) : MIN;
        if (gap && t > T0 + 30 * HOUR && t < T0 + 33 * HOUR) {
            continue; /* three hours without data */
        }
        double v = 20.0 + slope_h * (double)(t - T0) / (double)HOUR + 0.5 * gauss();
        an_alert a;
        int k = an_trend_update(&c, &st, 3, t, v, &a, 1);
        assert_true(k >= 0);
        if (k == 1) {
            assert_int_equal(a.kind, AN_KIND_TREND);
            assert_int_equal(a.state, AN_STATE_RAISED);
            assert_int_equal(a.rule, 3);
            assert_true(a.threshold == 100.0);
            assert_int_equal(a.ts_ms, t);
            assert_true(raised_at < 0);
            raised_at = t;
            /* The alert carries the predicted crossing time. */
            an_trend_pred p;
            an_trend_predict(&c, &st, &p);
            assert_true(a.detail == (double)p.eta_ms);
            assert_true(fabs(a.detail - cross) < 0.1 * (cross - (double)t));
        }
        if (t >= next_check) {
            next_check += HOUR;
            an_trend_pred p;
            an_trend_predict(&c, &st, &p);
            assert_true(p.valid);
            assert_true(p.has_eta);
            double remaining = cross - (double)t;
            double err = ((double)p.eta_ms - cross) / remaining;
            assert_true(fabs(err) < 0.10);
            assert_true(fabs(p.slope_per_h - slope_h) < 0.1);
            assert_true(p.eta_lo_ms <= p.eta_ms && p.eta_ms <= p.eta_hi_ms);
            checked++;
        }
    }
    assert_true(checked > 60);
    /* Raised when eta <= 24 h: about 24 h before the crossing, within 10%. */
    assert_true(raised_at > 0);
    double lead = (cross - (double)raised_at) / (double)HOUR;
    assert_true(lead > 24.0 * 0.9 && lead <= 24.0 * 1.1);
}

static void test_ramp_eta(void **state) {
    (void)state;
    run_ramp(false, false);
}

static void test_ramp_irregular_with_gap(void **state) {
    (void)state;
    run_ramp(true, true);
}

/* Reference: two-pass weighted least squares in long double over the same points with the
 * same weights, on an axis centred on the newest point. */
typedef struct pt {
    int64_t t;
    double v;
} pt;

static void reference_fit(const pt *p, int n, double tau, long double *slope, long double *level) {
    int64_t tl = p[0].t;
    for (int i = 1; i < n; i++) {
        tl = p[i].t > tl ? p[i].t : tl;
    }
    long double s0 = 0, sx = 0, sv = 0;
    for (int i = 0; i < n; i++) {
        long double x = (long double)(p[i].t - tl);
        long double w = expl(x / (long double)tau);
        s0 += w;
        sx += w * x;
        sv += w * p[i].v;
    }
    long double xb = sx / s0, vb = sv / s0, sxx = 0, sxv = 0;
    for (int i = 0; i < n; i++) {
        long double x = (long double)(p[i].t - tl);
        long double w = expl(x / (long double)tau);
        sxx += w * (x - xb) * (x - xb);
        sxv += w * (x - xb) * (p[i].v - vb);
    }
    *slope = sxv / sxx;
    *level = vb - *slope * xb;
}

/* Epoch-ms timestamps around 1.7e12, a tiny slope (3.6e-3 per hour) on a level of 20 with
 * bounded noise: the online centred sums agree with the reference to near double precision;
 * naive sums of t and t^2 would have lost every digit. Also with readings out of order. */
static void test_numerical_accuracy(void **state) {
    (void)state;
    enum { N = 5000 };
    static pt pts[N];
    rng_seed(11);
    int64_t t = T0;
    for (int i = 0; i < N; i++) {
        t += 1000 + (int64_t)(urand() * 9000.0);
        pts[i].t = t;
        pts[i].v = 20.0 + 1e-9 * (double)(t - T0) + 1e-3 * (urand() - 0.5);
    }
    an_trend_cfg c;
    an_trend_cfg_default(&c);
    double tau = (double)c.window_ms / 3.0;
    long double ref_b, ref_l;
    reference_fit(pts, N, tau, &ref_b, &ref_l);

    for (int pass = 0; pass < 2; pass++) {
        an_trend_state st;
        an_trend_init(&st);
        for (int i = 0; i < N; i++) {
            /* Second pass: swap neighbours, so every other reading arrives late. */
            int j = pass == 0 ? i : (i % 2 == 0 ? (i + 1 < N ? i + 1 : i) : i - 1);
            an_alert a;
            assert_int_equal(an_trend_update(&c, &st, 0, pts[j].t, pts[j].v, &a, 1), 0);
        }
        an_trend_pred p;
        an_trend_predict(&c, &st, &p);
        assert_true(p.valid);
        double b = p.slope_per_h / 3600000.0;
        double rel = fabs((double)(((long double)b - ref_b) / ref_b));
        assert_true(rel < 1e-7);
        assert_true(fabs((double)((long double)p.level - ref_l)) < 1e-9);
    }
}

/* The standard error is calibrated: over independent noisy ramps, |slope - true| < 2 se in
 * about 95% of the runs (irregular sampling). */
static void test_slope_se_calibrated(void **state) {
    (void)state;
    rng_seed(5);
    int inside = 0;
    const int runs = 400;
    an_trend_cfg c;
    an_trend_cfg_default(&c);
    c.window_ms = HOUR;
    for (int r = 0; r < runs; r++) {
        an_trend_state st;
        an_trend_init(&st);
        int64_t t = T0;
        for (int i = 0; i < 1500; i++) {
            t += (int64_t)(-log(urand()) * 10000.0);
            double v = 5.0 + 2.0 * (double)(t - T0) / (double)HOUR + gauss();
            an_alert a;
            an_trend_update(&c, &st, 0, t, v, &a, 1);
        }
        an_trend_pred p;
        an_trend_predict(&c, &st, &p);
        inside += fabs(p.slope_per_h - 2.0) < 2.0 * p.slope_se_per_h;
    }
    double frac = (double)inside / runs;
    assert_true(frac > 0.92 && frac < 0.985);
}

/* A million readings of white noise with a limit 6 sigma away: no trend alert. */
static void test_white_noise_no_alert(void **state) {
    (void)state;
    rng_seed(3);
    an_trend_cfg c = limit_cfg(6.0);
    c.window_ms = HOUR;
    c.horizon_ms = 4 * HOUR;
    an_trend_state st;
    an_trend_init(&st);
    for (long i = 0; i < 1000000; i++) {
        an_alert a;
        assert_int_equal(an_trend_update(&c, &st, 0, T0 + i * 1000, gauss(), &a, 1), 0);
    }
    an_trend_pred p;
    an_trend_predict(&c, &st, &p);
    assert_true(p.valid && isfinite(p.slope_per_h) && isfinite(p.slope_se_per_h));
}

/* Single spikes barely move the fit and never raise; a step toward the limit restarts the
 * fit instead of being extrapolated as a slope. */
static void test_spike_and_step(void **state) {
    (void)state;
    rng_seed(9);
    an_trend_cfg c = limit_cfg(8.0);
    c.window_ms = HOUR;
    c.horizon_ms = 4 * HOUR;
    an_trend_state st;
    an_trend_init(&st);
    int alerts = 0;
    for (long i = 0; i < 40000; i++) {
        double v = gauss();
        if (i % 5000 == 4999) {
            v += 1000.0;
        }
        if (i >= 30000) {
            v += 3.0; /* a step toward the limit, 5 sigma short of it */
        }
        an_alert a;
        int k = an_trend_update(&c, &st, 0, T0 + i * 1000, v, &a, 1);
        alerts += k;
        if (i == 4999 + 1) {
            an_trend_pred p;
            an_trend_predict(&c, &st, &p);
            assert_true(fabs(p.slope_per_h) < 0.5);
            assert_true(fabs(p.level) < 0.5);
        }
    }
    assert_int_equal(alerts, 0);
    an_trend_pred p;
    an_trend_predict(&c, &st, &p);
    assert_true(fabs(p.level - 3.0) < 0.3);
}

/* Raised while rising toward the limit, cleared once the slope turns away (hysteresis). */
static void test_clear_when_slope_turns(void **state) {
    (void)state;
    rng_seed(13);
    an_trend_cfg c = limit_cfg(50.0);
    c.window_ms = HOUR;
    c.horizon_ms = 2 * HOUR;
    an_trend_state st;
    an_trend_init(&st);
    int raised = 0, cleared = 0;
    int64_t t = T0;
    /* 10 per hour for 3 h (level 30 -> 60 is never reached), then falling. */
    for (int i = 0; i < 6 * 60; i++) {
        t += MIN;
        double h = (double)(t - T0) / (double)HOUR;
        double v = (h < 3.0 ? 20.0 + 10.0 * h : 50.0 - 10.0 * (h - 3.0)) + 0.1 * gauss();
        an_alert a;
        if (an_trend_update(&c, &st, 1, t, v, &a, 1) == 1) {
            if (a.state == AN_STATE_RAISED) {
                raised++;
                assert_true(h < 3.0);
                an_trend_pred p;
                an_trend_predict(&c, &st, &p);
                assert_true(p.eta_ms - t <= 2 * HOUR);
            } else {
                cleared++;
                assert_true(h > 3.0);
                /* Either the slope turned away (no crossing) or the crossing moved beyond
                 * 1.25 x horizon. */
                assert_true(a.detail == 0.0 ||
                            a.detail - (double)t > 1.25 * (double)c.horizon_ms - 1.0);
            }
        }
    }
    assert_int_equal(raised, 1);
    assert_int_equal(cleared, 1);
}

/* A falling series toward a lower limit; a level already past the limit gives eta = now. */
static void test_falling_and_past_limit(void **state) {
    (void)state;
    an_trend_cfg c = limit_cfg(10.0);
    c.dir = AN_TREND_FALLING;
    c.window_ms = HOUR;
    an_trend_state st;
    an_trend_init(&st);
    int raised = 0;
    int64_t t = T0;
    for (int i = 0; i < 400; i++) {
        t += MIN;
        double v = 20.0 - 2.0 * (double)(t - T0) / (double)HOUR; /* noise-free */
        an_alert a;
        int k = an_trend_update(&c, &st, 0, t, v, &a, 1);
        raised += k == 1 && a.state == AN_STATE_RAISED;
    }
    assert_int_equal(raised, 1);
    an_trend_pred p;
    an_trend_predict(&c, &st, &p);
    assert_true(p.has_eta);
    assert_true(fabs(p.slope_per_h + 2.0) < 1e-6);
    assert_true(p.level < 10.0);
    assert_int_equal(p.eta_ms, t);
}

/* Holt smoothing reports a level and slope close to the truth on a noisy ramp. */
static void test_holt(void **state) {
    (void)state;
    rng_seed(21);
    an_trend_cfg c = limit_cfg(1000.0);
    c.holt = true;
    an_trend_state st;
    an_trend_init(&st);
    int64_t t = T0;
    for (int i = 0; i < 24 * 60; i++) {
        t += MIN;
        double v = 3.0 * (double)(t - T0) / (double)HOUR + gauss();
        an_alert a;
        an_trend_update(&c, &st, 0, t, v, &a, 1);
    }
    an_trend_pred p;
    an_trend_predict(&c, &st, &p);
    assert_true(p.valid);
    assert_true(fabs(p.slope_per_h - 3.0) < 0.3);
    assert_true(fabs(p.level - 72.0) < 1.0);
    assert_true(p.has_eta);
}

/* Duplicate timestamps, a reading far in the past and a gap longer than the memory: all
 * finite, and the long gap restarts the fit. */
static void test_duplicates_and_gaps(void **state) {
    (void)state;
    an_trend_cfg c = limit_cfg(100.0);
    c.window_ms = 20 * MIN;
    an_trend_state st;
    an_trend_init(&st);
    an_alert a;
    for (int i = 0; i < 100; i++) {
        int64_t t = T0 + (i / 4) * MIN; /* four readings per timestamp */
        assert_true(an_trend_update(&c, &st, 0, t, 5.0 + (i % 3), &a, 1) >= 0);
    }
    assert_int_equal(an_trend_update(&c, &st, 0, T0 - 24 * HOUR, 1e6, &a, 1), 0);
    an_trend_pred p;
    an_trend_predict(&c, &st, &p);
    assert_true(p.valid);
    assert_true(isfinite(p.level) && isfinite(p.slope_per_h) && isfinite(p.slope_se_per_h));
    assert_true(p.level > 4.0 && p.level < 8.0);
    /* A day later (72 windows): the old fit is gone. */
    assert_int_equal(an_trend_update(&c, &st, 0, T0 + 24 * HOUR, 50.0, &a, 1), 0);
    an_trend_predict(&c, &st, &p);
    assert_false(p.valid);
    /* A constant series: zero slope, zero standard error, no eta, no NaN. */
    an_trend_init(&st);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(an_trend_update(&c, &st, 0, T0 + i * MIN, 42.0, &a, 1), 0);
    }
    an_trend_predict(&c, &st, &p);
    assert_true(p.valid);
    assert_true(p.slope_per_h == 0.0 && p.level == 42.0 && !p.has_eta);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_ramp_eta),
        cmocka_unit_test(test_ramp_irregular_with_gap),
        cmocka_unit_test(test_numerical_accuracy),
        cmocka_unit_test(test_slope_se_calibrated),
        cmocka_unit_test(test_white_noise_no_alert),
        cmocka_unit_test(test_spike_and_step),
        cmocka_unit_test(test_clear_when_slope_turns),
        cmocka_unit_test(test_falling_and_past_limit),
        cmocka_unit_test(test_holt),
        cmocka_unit_test(test_duplicates_and_gaps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
