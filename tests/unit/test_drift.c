/* Unit tests of analytics/drift.c: steps, noise, spikes, gaps and coarse sensors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "drift.h"

#define T0 1700000000000LL

#include "test_rng.h"

typedef struct run_result {
    int raised;
    int cleared;
    long first_raise; /* reading index, -1 if none */
    an_alert first;
} run_result;

/* Feeds n readings from gen(i) with timestamps from ts(i) and counts the transitions. */
static run_result run(const an_drift_cfg *c, an_drift_state *st, long n, double (*gen)(long),
                      int64_t (*ts)(long)) {
    run_result r = {0, 0, -1, {0}};
    for (long i = 0; i < n; i++) {
        an_alert a;
        int k = an_drift_update(c, st, 2, ts(i), gen(i), &a, 1);
        assert_true(k == 0 || k == 1);
        if (k == 1) {
            assert_int_equal(a.kind, AN_KIND_DRIFT);
            assert_int_equal(a.rule, 2);
            if (a.state == AN_STATE_RAISED) {
                if (r.first_raise < 0) {
                    r.first_raise = i;
                    r.first = a;
                }
                r.raised++;
            } else {
                r.cleared++;
            }
        }
    }
    return r;
}

static int64_t ts_regular(long i) {
    return T0 + i * 1000;
}

static int64_t ts_irregular(long i) {
    /* Jittered 1..10 s intervals with a 6 h gap every 50000 readings; monotonic. */
    static long last_i = -1;
    static int64_t t = T0;
    if (i == 0) {
        t = T0;
    } else if (i != last_i) {
        t += 1000 + (int64_t)(urand() * 9000.0);
        if (i % 50000 == 0) {
            t += 6 * 3600 * 1000LL;
        }
    }
    last_i = i;
    return t;
}

static double step_at;
static double step_size;

static double gen_step(long i) {
    return 10.0 + gauss() + ((double)i >= step_at ? step_size : 0.0);
}

static double gen_noise(long i) {
    (void)i;
    return 10.0 + gauss();
}

static void test_defaults(void **state) {
    (void)state;
    an_drift_cfg c;
    an_drift_cfg_default(&c);
    assert_int_equal(c.warmup, 100);
    assert_int_equal(c.span, 16);
    assert_true(c.k == 4.5 && c.h == 8.0);
    assert_int_equal(an_drift_cfg_check(&c), 0);
    an_drift_cfg bad = c;
    bad.memory = 50;
    assert_int_equal(an_drift_cfg_check(&bad), -1);
    bad = c;
    bad.k = 0.5;
    assert_int_equal(an_drift_cfg_check(&bad), -1);
    bad = c;
    bad.span = 1;
    assert_int_equal(an_drift_cfg_check(&bad), -1);
    assert_true(sizeof(an_drift_state) <= 64);
    an_drift_state st;
    an_drift_init(&st);
    an_alert a;
    assert_int_equal(an_drift_update(&c, &st, 0, T0, 1.0, &a, 0), -1);
}

/* A step of d sigma after the warm-up is raised within a bounded delay, in the right
 * direction, with the baseline as threshold. */
static void test_step_detected(void **state) {
    (void)state;
    const double sizes[] = {1.5, 2.0, 3.0, 5.0, -2.0, -10.0};
    /* Worst cases over 1000 seeds: 56, 24, 15, 9, 25, 5 readings (medians 21, 14, 9, 6, 14, 4). */
    const long max_delay[] = {70, 35, 20, 12, 35, 10};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        rng_seed(100 + s);
        an_drift_cfg c;
        an_drift_cfg_default(&c);
        an_drift_state st;
        an_drift_init(&st);
        step_at = 5000;
        step_size = sizes[s];
        run_result r = run(&c, &st, 5300, gen_step, ts_regular);
        assert_true(r.first_raise >= 5000);
        assert_true(r.first_raise - 5000 <= max_delay[s]);
        assert_true(fabs(r.first.threshold - 10.0) < 0.2);
        assert_int_equal(r.first.state, AN_STATE_RAISED);
        an_drift_info inf;
        an_drift_info_get(&c, &st, &inf);
        assert_int_equal(inf.phase, 2);
        /* The short-term level (not the single noisy reading) tells the direction. */
        assert_true(sizes[s] > 0 ? inf.level > inf.baseline : inf.level < inf.baseline);
        assert_true(r.first.detail * sizes[s] > 0.0); /* the shift, signed */
    }
}

/* A million readings of white noise: no drift. */
static void test_white_noise_no_alert(void **state) {
    (void)state;
    rng_seed(1);
    an_drift_cfg c;
    an_drift_cfg_default(&c);
    an_drift_state st;
    an_drift_init(&st);
    run_result r = run(&c, &st, 1000000, gen_noise, ts_regular);
    assert_int_equal(r.raised, 0);
    an_drift_info inf;
    an_drift_info_get(&c, &st, &inf);
    assert_true(fabs(inf.baseline - 10.0) < 0.1);
    assert_true(fabs(inf.noise_sigma - 1.0) < 0.1);
}

/* The same with irregular sampling and long gaps: counts of readings, not time, matter. */
static void test_irregular_and_gaps(void **state) {
    (void)state;
    rng_seed(2);
    an_drift_cfg c;
    an_drift_cfg_default(&c);
    an_drift_state st;
    an_drift_init(&st);
    run_result r = run(&c, &st, 300000, gen_noise, ts_irregular);
    assert_int_equal(r.raised, 0);
    step_at = 300000 + 2000;
    step_size = 3.0;
    for (long i = 300000; i < 302100; i++) {
        an_alert a;
        if (an_drift_update(&c, &st, 0, ts_irregular(i), gen_step(i), &a, 1) == 1) {
            assert_true(i >= 302000 && i < 302000 + 15);
            return;
        }
    }
    fail_msg("step after gaps not detected");
}

static double gen_ar(long i) {
    static double x;
    if (i == 0) {
        x = 0.0;
    }
    x = 0.95 * x + sqrt(1.0 - 0.95 * 0.95) * gauss();
    return 50.0 + x;
}

/* A strongly autocorrelated series (AR(1), rho 0.95): its slow wander is learned as normal. */
static void test_autocorrelated_no_alert(void **state) {
    (void)state;
    rng_seed(3);
    an_drift_cfg c;
    an_drift_cfg_default(&c);
    an_drift_state st;
    an_drift_init(&st);
    run_result r = run(&c, &st, 300000, gen_ar, ts_regular);
    assert_true(r.raised <= 1); /* at most once while the wander is still being learned */
    assert_true(r.first_raise < 0 || r.first_raise < 5000);
}

static double gen_spikes(long i) {
    double v = 10.0 + gauss();
    if (i % 997 == 500) {
        v += 1e6; /* a huge single spike */
    }
    if (i % 1499 == 700) {
        v -= 30.0;
    }
    return v;
}

/* Single spikes, however large, never raise a drift. */
static void test_spikes_no_drift(void **state) {
    (void)state;
    rng_seed(4);
    an_drift_cfg c;
    an_drift_cfg_default(&c);
    an_drift_state st;
    an_drift_init(&st);
    run_result r = run(&c, &st, 200000, gen_spikes, ts_regular);
    assert_int_equal(r.raised, 0);
    an_drift_info inf;
    an_drift_info_get(&c, &st, &inf);
    assert_true(fabs(inf.baseline - 10.0) < 0.2);
}

/* Cleared when the level comes back; a shift that persists becomes the new baseline. */
static void test_clear_and_relearn(void **state) {
    (void)state;
    rng_seed(5);
    an_drift_cfg c;
    an_drift_cfg_default(&c);
    an_drift_state st;
    an_drift_init(&st);
    /* Up by 4 sigma for 300 readings, then back. */
    int raised = 0, cleared = 0;
    for (long i = 0; i < 3000; i++) {
        double v = 10.0 + gauss() + (i >= 1000 && i < 1300 ? 4.0 : 0.0);
        an_alert a;
        if (an_drift_update(&c, &st, 0, ts_regular(i), v, &a, 1) == 1) {
            if (a.state == AN_STATE_RAISED) {
                raised++;
                assert_true(i >= 1000 && i < 1020);
            } else {
                cleared++;
                assert_true(i >= 1300 && i < 1380);
            }
        }
    }
    assert_int_equal(raised, 1);
    assert_int_equal(cleared, 1);

    /* A permanent shift: raised once, cleared after `relearn` readings, not raised again. */
    raised = cleared = 0;
    long cleared_at = -1;
    for (long i = 3000; i < 10000; i++) {
        double v = 15.0 + gauss();
        an_alert a;
        if (an_drift_update(&c, &st, 0, ts_regular(i), v, &a, 1) == 1) {
            raised += a.state == AN_STATE_RAISED;
            if (a.state == AN_STATE_CLEARED) {
                cleared++;
                cleared_at = i;
            }
        }
    }
    assert_int_equal(raised, 1);
    assert_int_equal(cleared, 1);
    assert_true(cleared_at > 3000 + (long)c.relearn && cleared_at < 3000 + (long)c.relearn + 20);
    an_drift_info inf;
    an_drift_info_get(&c, &st, &inf);
    assert_true(fabs(inf.baseline - 15.0) < 0.3);
}

/* A sensor that reports coarse steps (integers flipping between 20 and 21) and a stuck sensor:
 * the spread floors keep every number finite and the flips are no drift. */
static void test_coarse_and_stuck(void **state) {
    (void)state;
    rng_seed(6);
    an_drift_cfg c;
    an_drift_cfg_default(&c);
    an_drift_state st;
    an_drift_init(&st);
    int raised = 0;
    for (long i = 0; i < 200000; i++) {
        double v = urand() < 0.3 ? 21.0 : 20.0;
        an_alert a;
        raised += an_drift_update(&c, &st, 0, ts_regular(i), v, &a, 1);
    }
    assert_int_equal(raised, 0);
    an_drift_info inf;
    an_drift_info_get(&c, &st, &inf);
    assert_true(inf.level_sigma > 0.0 && isfinite(inf.level_sigma));

    an_drift_init(&st);
    for (long i = 0; i < 1000; i++) {
        an_alert a;
        assert_int_equal(an_drift_update(&c, &st, 0, ts_regular(i), 0.0, &a, 1), 0);
    }
    an_drift_info_get(&c, &st, &inf);
    assert_true(inf.level_sigma > 0.0 && isfinite(inf.level_sigma));
    /* A stuck sensor that starts moving for good is a drift, reported with finite numbers. */
    int k = 0;
    for (long i = 1000; i < 1100 && k == 0; i++) {
        an_alert a;
        k = an_drift_update(&c, &st, 0, ts_regular(i), 1.0, &a, 1);
        if (k == 1) {
            assert_true(fabs(a.threshold) < 0.05 && a.value == 1.0);
        }
    }
    assert_int_equal(k, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_step_detected),
        cmocka_unit_test(test_white_noise_no_alert),
        cmocka_unit_test(test_irregular_and_gaps),
        cmocka_unit_test(test_autocorrelated_no_alert),
        cmocka_unit_test(test_spikes_no_drift),
        cmocka_unit_test(test_clear_and_relearn),
        cmocka_unit_test(test_coarse_and_stuck),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
