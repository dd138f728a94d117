/* Unit tests of analytics/anomaly.c, and of the three detectors together on single spikes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "anomaly.h"
#include "drift.h"
#include "trend.h"

#define T0  1700000000000LL
#define MIN 60000LL

#include "test_rng.h"

static void test_defaults(void **state) {
    (void)state;
    an_anomaly_cfg c;
    an_anomaly_cfg_default(&c);
    assert_true(c.sensitivity == 0.99999);
    assert_int_equal(c.refractory_ms, 15 * MIN);
    assert_int_equal(c.warmup, 30);
    assert_int_equal(an_anomaly_cfg_check(&c), 0);
    an_anomaly_cfg bad = c;
    bad.sensitivity = 1.0;
    assert_int_equal(an_anomaly_cfg_check(&bad), -1);
    bad = c;
    bad.alpha = 0.0;
    assert_int_equal(an_anomaly_cfg_check(&bad), -1);
    bad = c;
    bad.refractory_ms = -1;
    assert_int_equal(an_anomaly_cfg_check(&bad), -1);
    assert_true(sizeof(an_anomaly_state) <= 72);
    /* The memory budget of the three detectors of one series. */
    assert_true(sizeof(an_trend_state) + sizeof(an_drift_state) + sizeof(an_anomaly_state) <= 256);
    an_anomaly_state st;
    an_anomaly_init(&st);
    an_alert a;
    assert_int_equal(an_anomaly_update(&c, &st, 0, T0, 1.0, &a, 0), -1);
    assert_int_equal(an_anomaly_tick(&c, &st, 0, T0, &a, 0), -1);
}

/* The score function: 0 at 0, monotone, continuous at the start of the tail, in [0, 1],
 * and 1 - score is the Gaussian two-sided tail under the prior. */
static void test_score_function(void **state) {
    (void)state;
    const double p0 = 0.0026997960632601866;
    const double xi = 0.2830;
    const double m2 = 2.0 * xi * xi;
    assert_true(an_anomaly_score_of(0.0, p0, xi, m2) == 0.0);
    double prev = 0.0;
    for (double z = 0.01; z < 40.0; z += 0.01) {
        double s = an_anomaly_score_of(z, p0, xi, m2);
        assert_true(s >= prev - 1e-12 && s <= 1.0);
        prev = s;
    }
    assert_true(fabs(an_anomaly_score_of(1.0, p0, xi, m2) - 0.6826895) < 1e-6);
    double below = an_anomaly_score_of(3.0, p0, xi, m2);
    double above = an_anomaly_score_of(3.0 + 1e-9, p0, xi, m2);
    assert_true(fabs(below - above) < 1e-6);
    /* 1e-5 two-sided is z = 4.42 for a Gaussian; the exponential tail is a bit wider. */
    assert_true(an_anomaly_score_of(4.3, p0, xi, m2) < 0.99999);
    assert_true(an_anomaly_score_of(4.7, p0, xi, m2) > 0.99999);
    /* A heavy learned tail (shape > 0) needs a larger z for the same score. */
    assert_true(an_anomaly_score_of(6.0, 0.02, 1.0, 4.0) < an_anomaly_score_of(6.0, p0, xi, m2));
}

typedef struct counts {
    long hits;   /* readings with score >= sensitivity (after warm-up) */
    long raised; /* raised transitions */
    long cleared;
} counts;

static counts feed(const an_anomaly_cfg *c, an_anomaly_state *st, long n, int64_t (*ts)(long),
                   double (*gen)(long)) {
    counts k = {0, 0, 0};
    for (long i = 0; i < n; i++) {
        an_alert a;
        int r = an_anomaly_update(c, st, 0, ts(i), gen(i), &a, 1);
        assert_true(r == 0 || r == 1);
        double s = an_anomaly_score(st);
        assert_true(s >= 0.0 && s <= 1.0);
        k.hits += s >= c->sensitivity;
        if (r == 1) {
            assert_int_equal(a.kind, AN_KIND_ANOMALY);
            if (a.state == AN_STATE_RAISED) {
                k.raised++;
            } else {
                k.cleared++;
            }
        }
    }
    return k;
}

static int64_t ts_1s(long i) {
    return T0 + i * 1000;
}

static int64_t ts_irregular(long i) {
    static int64_t t;
    static long last = -1;
    if (i == 0) {
        t = T0;
    } else if (i != last) {
        t += (int64_t)(-log(urand()) * 5000.0) + 1;
        if (i % 100000 == 0) {
            t += 12 * 3600 * 1000LL; /* half a day without data */
        }
    }
    last = i;
    return t;
}

static double gen_white(long i) {
    (void)i;
    return 100.0 + 2.0 * gauss();
}

static double gen_laplace(long i) {
    (void)i;
    double u = urand();
    return u < 0.5 ? log(2.0 * u) : -log(2.0 * (1.0 - u));
}

/* A million readings of white noise: the alerting readings stay at the rate implied by the
 * sensitivity (1e-5, i.e. ~10 expected; allow 2x), with the refractory period off. */
static void test_white_noise_rate(void **state) {
    (void)state;
    rng_seed(1);
    an_anomaly_cfg c;
    an_anomaly_cfg_default(&c);
    c.refractory_ms = 0;
    an_anomaly_state st;
    an_anomaly_init(&st);
    counts k = feed(&c, &st, 1000000, ts_1s, gen_white);
    assert_true(k.hits <= 20);
    assert_true(k.raised <= k.hits); /* consecutive alerting readings are one episode */
    /* Irregular sampling with half-day gaps: no worse. */
    rng_seed(2);
    an_anomaly_init(&st);
    k = feed(&c, &st, 500000, ts_irregular, gen_white);
    assert_true(k.hits <= 10);
    /* A heavy-tailed (Laplace) series calibrates its tail: at most a few times the rate. */
    rng_seed(3);
    an_anomaly_init(&st);
    k = feed(&c, &st, 1000000, ts_1s, gen_laplace);
    assert_true(k.hits <= 40);
}

/* A spike is an anomaly at that very reading; the alert clears at the first normal reading
 * a refractory period after the last anomalous one; a second spike inside the refractory
 * period raises nothing new; one after it does. */
static void test_spike_and_refractory(void **state) {
    (void)state;
    rng_seed(4);
    an_anomaly_cfg c;
    an_anomaly_cfg_default(&c);
    an_anomaly_state st;
    an_anomaly_init(&st);
    int64_t t = T0;
    int raised = 0, cleared = 0;
    int64_t raise_ts[4];
    for (long i = 0; i < 20000; i++) {
        t += 1000;
        /* Bounded noise (sd 0.29), so that only the spikes can be anomalies. */
        double v = 20.0 + (urand() - 0.5);
        bool spike = i == 5000 || i == 5300 || i == 8000;
        if (spike) {
            v += 10.0; /* 35 sigma */
        }
        an_alert a;
        int k = an_anomaly_update(&c, &st, 7, t, v, &a, 1);
        if (spike) {
            assert_true(an_anomaly_score(&st) > 0.999999);
        }
        if (k == 1) {
            assert_int_equal(a.rule, 7);
            assert_true(a.threshold == c.sensitivity);
            if (a.state == AN_STATE_RAISED) {
                assert_true(raised < 4);
                assert_true(a.value == v);
                assert_true(a.detail == an_anomaly_score(&st) && a.detail >= c.sensitivity);
                raise_ts[raised++] = t;
            } else {
                cleared++;
                /* 15 min after the last spike (5300 or 8000). */
                assert_true(t >= raise_ts[raised - 1] + c.refractory_ms);
            }
        }
    }
    assert_int_equal(raised, 2);
    assert_int_equal(raise_ts[0], T0 + 5001 * 1000);
    assert_int_equal(raise_ts[1], T0 + 8001 * 1000);
    assert_int_equal(cleared, 2);

    /* The tick clears a raised alert of a series that went silent. */
    an_alert a;
    assert_int_equal(an_anomaly_update(&c, &st, 0, t + 1000, 80.0, &a, 1), 1);
    assert_int_equal(a.state, AN_STATE_RAISED);
    assert_int_equal(an_anomaly_tick(&c, &st, 0, t + 1000 + c.refractory_ms - 1, &a, 1), 0);
    assert_int_equal(an_anomaly_tick(&c, &st, 0, t + 1000 + c.refractory_ms, &a, 1), 1);
    assert_int_equal(a.state, AN_STATE_CLEARED);
    assert_int_equal(a.ts_ms, t + 1000 + c.refractory_ms);
}

/* A level shift scores high at the change, then the detector adapts to the new level. */
static void test_level_shift_adapts(void **state) {
    (void)state;
    rng_seed(5);
    an_anomaly_cfg c;
    an_anomaly_cfg_default(&c);
    c.refractory_ms = 0;
    an_anomaly_state st;
    an_anomaly_init(&st);
    long hits_late = 0;
    for (long i = 0; i < 6000; i++) {
        double v = (i < 3000 ? 50.0 : 80.0) + gauss();
        an_alert a;
        an_anomaly_update(&c, &st, 0, T0 + i * 1000, v, &a, 1);
        if (i == 3000) {
            assert_true(an_anomaly_score(&st) > 0.99999);
        }
        if (i > 3100) {
            hits_late += an_anomaly_score(&st) >= c.sensitivity;
        }
    }
    assert_true(hits_late <= 1);
}

/* Coarse sensors: integer readings that flip now and then, and a stuck sensor. A spread of 0
 * must not turn every change into an infinite anomaly. */
static void test_quantised_and_stuck(void **state) {
    (void)state;
    rng_seed(6);
    an_anomaly_cfg c;
    an_anomaly_cfg_default(&c);
    c.refractory_ms = 0;
    an_anomaly_state st;
    an_anomaly_init(&st);
    long hits = 0;
    for (long i = 0; i < 200000; i++) {
        double v = urand() < 0.02 ? 22.0 : 21.0; /* rare one-step flips */
        an_alert a;
        an_anomaly_update(&c, &st, 0, T0 + i * 1000, v, &a, 1);
        hits += i > 1000 && an_anomaly_score(&st) >= c.sensitivity;
    }
    assert_true(hits <= 2);

    an_anomaly_init(&st);
    for (long i = 0; i < 1000; i++) {
        an_alert a;
        an_anomaly_update(&c, &st, 0, T0 + i * 1000, 0.0, &a, 1);
        assert_true(an_anomaly_score(&st) == 0.0);
    }
    an_alert a;
    an_anomaly_update(&c, &st, 0, T0 + 1000 * 1000, 1.0, &a, 1);
    double s = an_anomaly_score(&st);
    assert_true(s >= 0.0 && s <= 1.0); /* a real change of a stuck sensor: finite, flagged */
    assert_true(s > 0.99999);
}

/* Single spikes: an anomaly each, but no drift and no trend. */
static void test_spikes_all_detectors(void **state) {
    (void)state;
    rng_seed(7);
    an_trend_cfg tc;
    an_trend_cfg_default(&tc);
    tc.has_limit = true;
    tc.limit = 30.0; /* 10 sigma above the level */
    tc.window_ms = 3600000;
    tc.horizon_ms = 4 * 3600000;
    an_drift_cfg dc;
    an_drift_cfg_default(&dc);
    an_anomaly_cfg ac;
    an_anomaly_cfg_default(&ac);
    ac.refractory_ms = 0;
    an_trend_state ts;
    an_drift_state ds;
    an_anomaly_state as;
    an_trend_init(&ts);
    an_drift_init(&ds);
    an_anomaly_init(&as);
    int spikes = 0, anomalies = 0, others = 0;
    for (long i = 0; i < 100000; i++) {
        double v = 0.0 + gauss();
        bool spike = i > 1000 && i % 2000 == 0;
        if (spike) {
            v += (i / 2000) % 2 ? 50.0 : -50.0;
            spikes++;
        }
        an_alert a;
        int64_t t = T0 + i * 1000;
        others += an_trend_update(&tc, &ts, 0, t, v, &a, 1);
        others += an_drift_update(&dc, &ds, 0, t, v, &a, 1);
        if (an_anomaly_update(&ac, &as, 0, t, v, &a, 1) == 1 && a.state == AN_STATE_RAISED) {
            anomalies++;
            assert_true(spike);
        }
    }
    assert_int_equal(anomalies, spikes);
    assert_int_equal(others, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_score_function),
        cmocka_unit_test(test_white_noise_rate),
        cmocka_unit_test(test_spike_and_refractory),
        cmocka_unit_test(test_level_shift_adapts),
        cmocka_unit_test(test_quantised_and_stuck),
        cmocka_unit_test(test_spikes_all_detectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
