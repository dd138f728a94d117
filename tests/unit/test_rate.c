/* Unit tests for analytics/rate: hand-computed vectors for every edge of the semantics in
 * rate.h. Values are chosen so that every rate is exact in binary floating point. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "rate.h"

typedef struct rctx {
    an_rate_cfg cfg;
    an_rate_state st;
    int rule;
    an_alert out[2];
} rctx;

static void setup_cfg(rctx *c, double above) {
    memset(c, 0, sizeof(*c));
    c->cfg.above = above;
    c->cfg.severity = AN_SEV_INFO;
    c->rule = 7;
    an_rate_init(&c->st);
}

static int feed(rctx *c, int64_t ts, double v) {
    memset(c->out, 0xAB, sizeof(c->out));
    return an_rate_update(&c->cfg, &c->st, c->rule, ts, v, c->out, 2);
}

static void check_alert(const rctx *c, an_state state, int64_t ts, double v, double rate) {
    const an_alert *a = &c->out[0];
    assert_int_equal(a->kind, AN_KIND_RATE);
    assert_int_equal(a->state, state);
    assert_int_equal(a->severity, c->cfg.severity);
    assert_int_equal(a->rule, c->rule);
    assert_true(a->threshold == c->cfg.above);
    assert_true(a->ts_ms == ts);
    assert_true(a->value == v);
    if (a->detail != rate) {
        print_error("rate %.17g, want %.17g\n", a->detail, rate);
    }
    assert_true(a->detail == rate);
}

#define NONE(c, ts, v) assert_int_equal(feed((c), (ts), (v)), 0)
#define RAISE(c, ts, v, rate)                                                                      \
    do {                                                                                           \
        assert_int_equal(feed((c), (ts), (v)), 1);                                                 \
        check_alert((c), AN_STATE_RAISED, (ts), (v), (rate));                                      \
    } while (0)
#define CLEAR(c, ts, v, rate)                                                                      \
    do {                                                                                           \
        assert_int_equal(feed((c), (ts), (v)), 1);                                                 \
        check_alert((c), AN_STATE_CLEARED, (ts), (v), (rate));                                     \
    } while (0)

static void test_state_size(void **state) {
    (void)state;
    assert_true(sizeof(an_rate_state) <= 24);
}

/* The first reading has nothing to compare with, however far it is from anything. */
static void test_first_reading_primes(void **state) {
    (void)state;
    rctx c;
    setup_cfg(&c, 5);
    NONE(&c, 1000, 1e12);
    assert_int_equal(c.st.primed, 1);
    assert_int_equal(c.st.raised, 0);
    assert_true(c.st.last_ts_ms == 1000);
    assert_true(c.st.last_value == 1e12);
    /* From there on the rate counts: 1e12 -> 0 in 1 s is 1e12 per second. */
    RAISE(&c, 2000, 0, 1e12);
}

/* rate > above raises; a rate equal to the limit does not. */
static void test_exactly_at_limit(void **state) {
    (void)state;
    rctx c;
    setup_cfg(&c, 5);
    NONE(&c, 0, 0);
    NONE(&c, 1000, 5);  /* 5 per second: at the limit */
    NONE(&c, 3000, 15); /* 10 in 2 s: 5 */
    NONE(&c, 3200, 16); /* 1 in 200 ms: 5 */
    NONE(&c, 4200, 16); /* 0 */
    NONE(&c, 4201, 16); /* 0 */
    assert_int_equal(c.st.raised, 0);
}

static void test_just_above(void **state) {
    (void)state;
    rctx c;
    /* In value: 5 + 2^-40 per second, exact in binary. */
    double v = 5 + ldexp(1, -40);
    setup_cfg(&c, 5);
    NONE(&c, 0, 0);
    RAISE(&c, 1000, v, v);

    /* In time: 5 in 999 ms is 5000/999 per second. */
    setup_cfg(&c, 5);
    NONE(&c, 0, 0);
    RAISE(&c, 999, 5, 5000.0 / 999.0);

    /* And 5 in 1001 ms is just under. */
    setup_cfg(&c, 5);
    NONE(&c, 0, 0);
    NONE(&c, 1001, 5);
}

/* One raise per episode; while raised the first rate <= above clears, equal included. */
static void test_episode_and_clear_at_equal(void **state) {
    (void)state;
    rctx c;
    setup_cfg(&c, 5);
    NONE(&c, 0, 0);
    RAISE(&c, 1000, 5.5, 5.5);
    NONE(&c, 2000, 12);     /* 6.5: still raised, no second event */
    NONE(&c, 2500, 20);     /* 16 */
    CLEAR(&c, 3500, 25, 5); /* exactly 5: clears */
    NONE(&c, 4500, 30);     /* 5 again: nothing */
    RAISE(&c, 4750, 32, 8); /* 2 in 250 ms: a new episode */
    CLEAR(&c, 5750, 32, 0);
}

/* The rate is the absolute slope: falling values raise as rising ones do. */
static void test_negative_slopes(void **state) {
    (void)state;
    rctx c;
    setup_cfg(&c, 5);
    NONE(&c, 0, 100);
    RAISE(&c, 1000, 90, 10); /* -10 per second */
    CLEAR(&c, 2000, 86, 4);  /* -4 */
    RAISE(&c, 2500, 80, 12); /* -6 in 500 ms */
    NONE(&c, 3500, 90);      /* +10: still raised */
    CLEAR(&c, 4500, 85, 5);  /* -5: at the limit */
    /* Negative values and a crossing of zero. */
    RAISE(&c, 5500, -1, 86); /* -86 */
    CLEAR(&c, 6500, -3, 2);
}

/* Repeated and earlier timestamps give no rate and keep the previous reading as reference. */
static void test_duplicates_and_backwards(void **state) {
    (void)state;
    rctx c;
    setup_cfg(&c, 5);
    NONE(&c, 1000, 0);
    NONE(&c, 1000, 100); /* same ts: skipped */
    NONE(&c, 500, 100);  /* backwards: skipped */
    NONE(&c, 999, -100); /* still backwards */
    assert_true(c.st.last_ts_ms == 1000);
    assert_true(c.st.last_value == 0);
    /* Against (1000, 0): 5 per second. Against any skipped reading it would raise. */
    NONE(&c, 2000, 5);
    RAISE(&c, 3000, 11, 6);
    /* Skipped readings do not clear either. */
    NONE(&c, 3000, 11);
    NONE(&c, 2500, 11);
    assert_int_equal(c.st.raised, 1);
    CLEAR(&c, 4000, 11, 0);
    /* Nor raise. */
    NONE(&c, 4000, 1e9);
    NONE(&c, -4000, -1e9);
    NONE(&c, 5000, 11);
}

static void test_short_intervals(void **state) {
    (void)state;
    rctx c;
    setup_cfg(&c, 5);
    NONE(&c, 0, 0);
    RAISE(&c, 1, 0.0078125, 7.8125); /* 2^-7 in 1 ms */
    CLEAR(&c, 2, 0.0078125, 0);
    NONE(&c, 3, 0.0078125 + 0.00390625); /* 2^-8 in 1 ms: 3.90625 */
}

static void test_non_finite_value_skipped(void **state) {
    (void)state;
    rctx c;
    setup_cfg(&c, 5);
    NONE(&c, 0, NAN); /* does not even prime */
    assert_int_equal(c.st.primed, 0);
    NONE(&c, 1000, 0);
    NONE(&c, 2000, INFINITY);
    NONE(&c, 3000, -INFINITY);
    NONE(&c, 4000, NAN);
    NONE(&c, 5000, 20); /* 20 in 4 s: 5 */
    RAISE(&c, 6000, 26, 6);
}

/* Extremes: an overflowing rate is reported as DBL_MAX; extreme timestamps do not overflow. */
static void test_extremes(void **state) {
    (void)state;
    rctx c;
    setup_cfg(&c, 5);
    NONE(&c, 0, -DBL_MAX);
    RAISE(&c, 1, DBL_MAX, DBL_MAX);
    setup_cfg(&c, 5);
    NONE(&c, INT64_MIN, 0);
    NONE(&c, INT64_MAX, 1e9); /* 1e12 over 2^64 - 1 ms: tiny */
}

static void test_severity_and_rule(void **state) {
    (void)state;
    rctx c;
    setup_cfg(&c, 0.5);
    c.cfg.severity = AN_SEV_CRITICAL;
    c.rule = 0;
    NONE(&c, 0, 0);
    RAISE(&c, 1000, 1, 1);
    assert_int_equal(c.out[0].severity, AN_SEV_CRITICAL);
    assert_int_equal(c.out[0].rule, 0);
}

static void test_bad_arguments(void **state) {
    (void)state;
    rctx c;
    setup_cfg(&c, 5);
    NONE(&c, 0, 0);
    an_rate_state before = c.st;
    assert_int_equal(an_rate_update(NULL, &c.st, 0, 1000, 100, c.out, 2), -EINVAL);
    assert_int_equal(an_rate_update(&c.cfg, NULL, 0, 1000, 100, c.out, 2), -EINVAL);
    assert_int_equal(an_rate_update(&c.cfg, &c.st, 0, 1000, 100, NULL, 2), -EINVAL);
    assert_int_equal(an_rate_update(&c.cfg, &c.st, 0, 1000, 100, c.out, 0), -EINVAL);
    static const double bad[] = {0, -1, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c.cfg.above = bad[i];
        assert_int_equal(feed(&c, 1000, 100), -EINVAL);
    }
    assert_memory_equal(&before, &c.st, sizeof before);
    /* cap 1 is enough. */
    c.cfg.above = 5;
    assert_int_equal(an_rate_update(&c.cfg, &c.st, 0, 1000, 100, c.out, 1), 1);
    an_rate_init(NULL); /* harmless */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_size),
        cmocka_unit_test(test_first_reading_primes),
        cmocka_unit_test(test_exactly_at_limit),
        cmocka_unit_test(test_just_above),
        cmocka_unit_test(test_episode_and_clear_at_equal),
        cmocka_unit_test(test_negative_slopes),
        cmocka_unit_test(test_duplicates_and_backwards),
        cmocka_unit_test(test_short_intervals),
        cmocka_unit_test(test_non_finite_value_skipped),
        cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_severity_and_rule),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
