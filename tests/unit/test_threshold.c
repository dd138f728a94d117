/* Unit tests for analytics/threshold: hand-computed vectors for every edge of the semantics in
 * threshold.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "threshold.h"

typedef struct tctx {
    an_threshold_cfg cfg;
    an_threshold_state st;
    int rule;
    an_alert out[4];
} tctx;

static void high_cfg(tctx *c, double above, double clear_below, int64_t for_ms,
                     int64_t clear_for_ms) {
    memset(c, 0, sizeof(*c));
    c->cfg.has_above = true;
    c->cfg.above = above;
    c->cfg.clear_below = clear_below;
    c->cfg.for_ms = for_ms;
    c->cfg.clear_for_ms = clear_for_ms;
    c->cfg.severity = AN_SEV_WARNING;
    an_threshold_init(&c->st);
}

static void low_cfg(tctx *c, double below, double clear_above, int64_t for_ms,
                    int64_t clear_for_ms) {
    memset(c, 0, sizeof(*c));
    c->cfg.has_below = true;
    c->cfg.below = below;
    c->cfg.clear_above = clear_above;
    c->cfg.for_ms = for_ms;
    c->cfg.clear_for_ms = clear_for_ms;
    c->cfg.severity = AN_SEV_WARNING;
    an_threshold_init(&c->st);
}

static int feed(tctx *c, int64_t ts, double v) {
    memset(c->out, 0xAB, sizeof(c->out));
    return an_threshold_update(&c->cfg, &c->st, c->rule, ts, v, c->out, 4);
}

static void check_alert(const an_alert *a, an_kind kind, an_state state, double thr, int64_t ts,
                        double v) {
    assert_int_equal(a->kind, kind);
    assert_int_equal(a->state, state);
    assert_true(a->threshold == thr);
    assert_true(a->ts_ms == ts);
    assert_true(a->value == v);
}

#define NONE(c, ts, v) assert_int_equal(feed((c), (ts), (v)), 0)
#define ONE(c, ts, v, kind, state, thr)                                                            \
    do {                                                                                           \
        assert_int_equal(feed((c), (ts), (v)), 1);                                                 \
        check_alert(&(c)->out[0], (kind), (state), (thr), (ts), (v));                              \
    } while (0)
#define HRAISE(c, ts, v) ONE(c, ts, v, AN_KIND_HIGH, AN_STATE_RAISED, (c)->cfg.above)
#define HCLEAR(c, ts, v) ONE(c, ts, v, AN_KIND_HIGH, AN_STATE_CLEARED, (c)->cfg.clear_below)
#define LRAISE(c, ts, v) ONE(c, ts, v, AN_KIND_LOW, AN_STATE_RAISED, (c)->cfg.below)
#define LCLEAR(c, ts, v) ONE(c, ts, v, AN_KIND_LOW, AN_STATE_CLEARED, (c)->cfg.clear_above)

static void test_init_and_size(void **state) {
    (void)state;
    an_threshold_state st;
    memset(&st, 0x5A, sizeof(st));
    an_threshold_init(&st);
    assert_int_equal(st.high.raised, 0);
    assert_int_equal(st.high.in_run, 0);
    assert_int_equal(st.low.raised, 0);
    assert_int_equal(st.low.in_run, 0);
    /* Per (series, rule) state: keep it small. */
    assert_true(sizeof(an_threshold_side) <= 16);
    assert_true(sizeof(an_threshold_state) <= 32);
}

static void test_exactly_at_threshold(void **state) {
    (void)state;
    tctx c;
    high_cfg(&c, 10.0, 10.0, 0, 0);
    NONE(&c, 0, 10.0);
    NONE(&c, 1, 10.0);
    NONE(&c, 2, 9.0);
    HRAISE(&c, 3, 10.000001);
    /* Raised: exactly at the threshold is not clearing either (band is the single value). */
    NONE(&c, 4, 10.0);
    NONE(&c, 5, 10.0);
    HCLEAR(&c, 6, 9.999999);
    assert_true(c.out[0].threshold == 10.0);
}

static void test_one_raise_per_episode(void **state) {
    (void)state;
    tctx c;
    high_cfg(&c, 10.0, 10.0, 0, 0);
    HRAISE(&c, 100, 11.0);
    for (int i = 0; i < 50; i++) {
        NONE(&c, 101 + i, 11.0 + i);
    }
    NONE(&c, 200, 10.0); /* band */
    NONE(&c, 201, 50.0);
    HCLEAR(&c, 202, 1.0);
    for (int i = 0; i < 50; i++) {
        NONE(&c, 203 + i, 1.0 - i); /* one cleared event per episode */
    }
}

static void test_for_boundary(void **state) {
    (void)state;
    tctx c;
    high_cfg(&c, 10.0, 10.0, 1000, 0);
    NONE(&c, 0, 11.0);
    NONE(&c, 500, 11.0);
    NONE(&c, 999, 11.0); /* one ms short */
    HRAISE(&c, 1000, 11.0);
    NONE(&c, 1001, 11.0);

    /* Exactly for_ms after the first reading, with no readings in between. */
    high_cfg(&c, 10.0, 10.0, 1000, 0);
    NONE(&c, 5000, 12.0);
    HRAISE(&c, 6000, 12.0);

    /* A long gap: the first reading past for_ms raises, whatever the gap. */
    high_cfg(&c, 10.0, 10.0, 1000, 0);
    NONE(&c, 0, 12.0);
    HRAISE(&c, 100000, 13.0);
}

static void test_non_violating_ends_run(void **state) {
    (void)state;
    tctx c;
    high_cfg(&c, 10.0, 10.0, 1000, 0);
    NONE(&c, 0, 11.0);
    NONE(&c, 600, 5.0); /* ends the run */
    NONE(&c, 1000, 11.0);
    NONE(&c, 1999, 11.0);
    HRAISE(&c, 2000, 11.0);

    /* A reading exactly at the threshold also ends the run. */
    high_cfg(&c, 10.0, 10.0, 1000, 0);
    NONE(&c, 0, 11.0);
    NONE(&c, 999, 10.0);
    NONE(&c, 1000, 11.0);
    NONE(&c, 1500, 11.0);
    HRAISE(&c, 2000, 11.0);
}

static void test_band_breaks_runs(void **state) {
    (void)state;
    tctx c;
    high_cfg(&c, 10.0, 8.0, 1000, 1000);
    /* Not raised: a band reading ends the violating run. */
    NONE(&c, 0, 11.0);
    NONE(&c, 500, 9.0);
    NONE(&c, 1000, 11.0);
    NONE(&c, 1999, 11.0);
    HRAISE(&c, 2000, 11.0);
    /* Raised: a band reading ends the clearing run. */
    NONE(&c, 3000, 7.0);
    NONE(&c, 3500, 9.0);
    NONE(&c, 4000, 7.0);
    NONE(&c, 4999, 7.0);
    HCLEAR(&c, 5000, 7.0);
    assert_true(c.out[0].threshold == 8.0);

    /* Band edges with zero durations: both levels are inside the band. */
    high_cfg(&c, 10.0, 8.0, 0, 0);
    NONE(&c, 0, 10.0);
    NONE(&c, 1, 8.0);
    HRAISE(&c, 2, 10.5);
    NONE(&c, 3, 9.0);
    NONE(&c, 4, 10.0);
    NONE(&c, 5, 8.0);
    HCLEAR(&c, 6, 7.99);
    NONE(&c, 7, 9.5); /* band after clear: nothing */
    HRAISE(&c, 8, 10.01);
}

static void test_violating_ends_clearing_run(void **state) {
    (void)state;
    tctx c;
    high_cfg(&c, 10.0, 8.0, 0, 1000);
    HRAISE(&c, 0, 11.0);
    NONE(&c, 100, 7.0);
    NONE(&c, 500, 12.0); /* violating while raised: ends the clearing run, no event */
    NONE(&c, 1000, 7.0);
    NONE(&c, 1999, 7.0);
    HCLEAR(&c, 2000, 7.0);
}

static void test_clear_for_boundary(void **state) {
    (void)state;
    tctx c;
    high_cfg(&c, 10.0, 9.0, 0, 500);
    HRAISE(&c, 0, 11.0);
    NONE(&c, 1000, 8.0);
    NONE(&c, 1499, 8.5); /* one ms short */
    HCLEAR(&c, 1500, 8.9);

    high_cfg(&c, 10.0, 9.0, 0, 500);
    HRAISE(&c, 0, 11.0);
    NONE(&c, 1000, 8.0);
    HCLEAR(&c, 1500, 8.0); /* exactly clear_for_ms */
}

static void test_reraise_new_episode(void **state) {
    (void)state;
    tctx c;
    high_cfg(&c, 10.0, 10.0, 1000, 0);
    NONE(&c, 0, 11.0);
    HRAISE(&c, 1000, 11.0);
    HCLEAR(&c, 5000, 5.0);
    /* The new episode needs a full for_ms again, counted from its own first reading. */
    NONE(&c, 5500, 11.0);
    NONE(&c, 6499, 11.0);
    HRAISE(&c, 6500, 11.0);
    NONE(&c, 7000, 11.0);
    HCLEAR(&c, 8000, 9.0);

    /* With zero durations, alternating readings raise and clear every time. */
    high_cfg(&c, 10.0, 10.0, 0, 0);
    for (int i = 0; i < 5; i++) {
        HRAISE(&c, 10 * i, 20.0);
        HCLEAR(&c, 10 * i + 5, 0.0);
    }
}

static void test_low_side(void **state) {
    (void)state;
    tctx c;
    low_cfg(&c, 0.0, 2.0, 0, 0);
    NONE(&c, 0, 0.0); /* exactly at the threshold */
    NONE(&c, 1, 5.0);
    LRAISE(&c, 2, -0.1);
    NONE(&c, 3, -50.0);
    NONE(&c, 4, 1.0);
    NONE(&c, 5, 2.0); /* exactly at the clear level: band */
    NONE(&c, 6, 0.0);
    LCLEAR(&c, 7, 2.1);
    assert_true(c.out[0].threshold == 2.0);
    NONE(&c, 8, 1.0);
    LRAISE(&c, 9, -1.0);
    assert_true(c.out[0].threshold == 0.0);

    /* Durations on the low side, with band and opposite readings ending runs. */
    low_cfg(&c, 0.0, 2.0, 1000, 1000);
    NONE(&c, 0, -1.0);
    NONE(&c, 500, 1.0); /* band */
    NONE(&c, 1000, -1.0);
    NONE(&c, 1999, -1.0);
    LRAISE(&c, 2000, -2.0);
    NONE(&c, 3000, 3.0);
    NONE(&c, 3500, -5.0); /* violating while raised: ends the clearing run */
    NONE(&c, 4000, 3.0);
    NONE(&c, 4999, 3.0);
    LCLEAR(&c, 5000, 3.0);
}

static void test_both_sides(void **state) {
    (void)state;
    tctx c;
    memset(&c, 0, sizeof(c));
    c.cfg = (an_threshold_cfg){.has_above = true,
                               .above = 10.0,
                               .clear_below = 9.0,
                               .has_below = true,
                               .below = 0.0,
                               .clear_above = 1.0,
                               .for_ms = 0,
                               .clear_for_ms = 0,
                               .severity = AN_SEV_CRITICAL};
    c.rule = 3;
    an_threshold_init(&c.st);
    NONE(&c, 0, 5.0);
    HRAISE(&c, 1, 11.0);
    /* One reading clears the high side and raises the low side: high first. */
    assert_int_equal(feed(&c, 2, -1.0), 2);
    check_alert(&c.out[0], AN_KIND_HIGH, AN_STATE_CLEARED, 9.0, 2, -1.0);
    check_alert(&c.out[1], AN_KIND_LOW, AN_STATE_RAISED, 0.0, 2, -1.0);
    assert_int_equal(c.out[0].rule, 3);
    assert_int_equal(c.out[1].rule, 3);
    assert_int_equal(c.out[0].severity, AN_SEV_CRITICAL);
    assert_int_equal(c.out[1].severity, AN_SEV_CRITICAL);
    /* And back: the low side clears, the high side raises; still high first. */
    assert_int_equal(feed(&c, 3, 12.0), 2);
    check_alert(&c.out[0], AN_KIND_HIGH, AN_STATE_RAISED, 10.0, 3, 12.0);
    check_alert(&c.out[1], AN_KIND_LOW, AN_STATE_CLEARED, 1.0, 3, 12.0);
    /* A mid value clears high only; low is already clear. */
    HCLEAR(&c, 4, 5.0);
    LRAISE(&c, 5, -3.0);
    NONE(&c, 6, 0.5); /* low band */
    LCLEAR(&c, 7, 1.5);
}

static void test_both_sides_independent_runs(void **state) {
    (void)state;
    tctx c;
    memset(&c, 0, sizeof(c));
    c.cfg = (an_threshold_cfg){.has_above = true,
                               .above = 10.0,
                               .clear_below = 10.0,
                               .has_below = true,
                               .below = 0.0,
                               .clear_above = 0.0,
                               .for_ms = 1000,
                               .clear_for_ms = 1000,
                               .severity = AN_SEV_INFO};
    an_threshold_init(&c.st);
    NONE(&c, 0, 11.0);   /* high run starts */
    NONE(&c, 500, -1.0); /* ends the high run, low run starts */
    NONE(&c, 1000, 11.0);
    NONE(&c, 1500, -1.0); /* low run restarts at 1500 */
    NONE(&c, 2000, -1.0);
    NONE(&c, 2499, -1.0);
    LRAISE(&c, 2500, -1.0);
    assert_int_equal(c.out[0].severity, AN_SEV_INFO);
    NONE(&c, 3000, 11.0); /* high run starts, low clearing run starts */
    NONE(&c, 3999, 11.0);
    assert_int_equal(feed(&c, 4000, 11.0), 2);
    check_alert(&c.out[0], AN_KIND_HIGH, AN_STATE_RAISED, 10.0, 4000, 11.0);
    check_alert(&c.out[1], AN_KIND_LOW, AN_STATE_CLEARED, 0.0, 4000, 11.0);
}

static void test_out_of_order(void **state) {
    (void)state;
    tctx c;
    high_cfg(&c, 10.0, 10.0, 1000, 1000);
    NONE(&c, 1000, 11.0); /* run starts at 1000 */
    NONE(&c, 500, 11.0);  /* earlier: duration 0, run continues, start unchanged */
    NONE(&c, 1999, 11.0);
    HRAISE(&c, 2000, 11.0);

    /* An out-of-order reading cannot complete a duration by itself. */
    high_cfg(&c, 10.0, 10.0, 1000, 1000);
    NONE(&c, 5000, 11.0);
    NONE(&c, 5800, 11.0);
    NONE(&c, 200, 11.0);
    NONE(&c, -100000, 11.0);
    NONE(&c, 5999, 11.0);
    HRAISE(&c, 6000, 11.0);

    /* Same on the clearing run. */
    NONE(&c, 9000, 5.0);
    NONE(&c, 100, 5.0);
    NONE(&c, 9999, 5.0);
    HCLEAR(&c, 10000, 5.0);

    /* An out-of-order reading that is not violating still ends the run. */
    high_cfg(&c, 10.0, 10.0, 1000, 0);
    NONE(&c, 1000, 11.0);
    NONE(&c, 0, 5.0);
    NONE(&c, 2000, 11.0);
    HRAISE(&c, 3000, 11.0);

    /* With for_ms == 0 an out-of-order violating reading raises at once. */
    high_cfg(&c, 10.0, 10.0, 0, 0);
    HRAISE(&c, 1000, 11.0);
    HCLEAR(&c, 500, 9.0);
    HRAISE(&c, 0, 11.0);

    /* Repeated timestamps: duration 0. */
    high_cfg(&c, 10.0, 10.0, 1, 0);
    NONE(&c, 7, 11.0);
    NONE(&c, 7, 11.0);
    HRAISE(&c, 8, 11.0);
}

static void test_extreme_timestamps(void **state) {
    (void)state;
    tctx c;
    high_cfg(&c, 10.0, 10.0, 1000, INT64_MAX);
    NONE(&c, INT64_MIN, 11.0);
    HRAISE(&c, INT64_MAX, 11.0); /* no overflow in the duration */
    NONE(&c, INT64_MIN, 5.0);
    NONE(&c, -2, 5.0);   /* INT64_MAX - 1 after the run start */
    HCLEAR(&c, -1, 5.0); /* exactly INT64_MAX */
    /* Negative epoch times work like any other. */
    high_cfg(&c, 10.0, 10.0, 1000, 0);
    NONE(&c, -3000, 11.0);
    NONE(&c, -2001, 11.0);
    HRAISE(&c, -2000, 11.0);
}

static void test_severity_and_rule(void **state) {
    (void)state;
    static const an_severity sevs[] = {AN_SEV_INFO, AN_SEV_WARNING, AN_SEV_CRITICAL};
    for (size_t i = 0; i < 3; i++) {
        tctx c;
        high_cfg(&c, 1.0, 0.5, 0, 0);
        c.cfg.severity = sevs[i];
        c.rule = (int)(i * 17 + 2);
        HRAISE(&c, 10, 2.0);
        assert_int_equal(c.out[0].severity, sevs[i]);
        assert_int_equal(c.out[0].rule, c.rule);
        assert_true(c.out[0].threshold == 1.0);
        HCLEAR(&c, 20, 0.25);
        assert_int_equal(c.out[0].severity, sevs[i]);
        assert_int_equal(c.out[0].rule, c.rule);
        assert_true(c.out[0].threshold == 0.5);
    }
}

static void test_disabled_sides(void **state) {
    (void)state;
    tctx c;
    high_cfg(&c, 10.0, 10.0, 0, 0);
    /* has_below is false: the zeroed below/clear_above are ignored. */
    NONE(&c, 0, -1e9);
    NONE(&c, 1, -5.0);
    HRAISE(&c, 2, 1e9);

    low_cfg(&c, 0.0, 0.0, 0, 0);
    NONE(&c, 0, 1e9);
    LRAISE(&c, 1, -1.0);

    memset(&c, 0, sizeof(c));
    an_threshold_init(&c.st);
    NONE(&c, 0, 1e9);
    NONE(&c, 1, -1e9);
}

static void test_cap_handling(void **state) {
    (void)state;
    tctx c;
    high_cfg(&c, 10.0, 10.0, 0, 0);
    an_threshold_state before = c.st;

    /* cap < 2 is rejected before the state moves, so no transition is ever lost. */
    assert_int_equal(an_threshold_update(&c.cfg, &c.st, 0, 0, 11.0, c.out, 1), -EINVAL);
    assert_int_equal(an_threshold_update(&c.cfg, &c.st, 0, 0, 11.0, c.out, 0), -EINVAL);
    assert_int_equal(an_threshold_update(&c.cfg, &c.st, 0, 0, 11.0, c.out, -1), -EINVAL);
    assert_int_equal(an_threshold_update(&c.cfg, &c.st, 0, 0, 11.0, NULL, 2), -EINVAL);
    assert_int_equal(an_threshold_update(NULL, &c.st, 0, 0, 11.0, c.out, 2), -EINVAL);
    assert_int_equal(an_threshold_update(&c.cfg, NULL, 0, 0, 11.0, c.out, 2), -EINVAL);
    assert_memory_equal(&before, &c.st, sizeof(before));

    /* Exactly 2 is enough for the worst case (both sides transition). */
    an_alert two[2];
    assert_int_equal(an_threshold_update(&c.cfg, &c.st, 0, 0, 11.0, two, 2), 1);
    assert_int_equal(two[0].state, AN_STATE_RAISED);

    c.cfg.has_below = true;
    c.cfg.below = 0.0;
    c.cfg.clear_above = 0.0;
    c.st.low.raised = 0;
    assert_int_equal(an_threshold_update(&c.cfg, &c.st, 0, 1, -1.0, two, 2), 2);
    assert_int_equal(two[0].kind, AN_KIND_HIGH);
    assert_int_equal(two[1].kind, AN_KIND_LOW);

    /* A larger cap: nothing written past the transitions returned. */
    an_alert big[4];
    memset(big, 0xAB, sizeof(big));
    an_alert pristine;
    memset(&pristine, 0xAB, sizeof(pristine));
    assert_int_equal(an_threshold_update(&c.cfg, &c.st, 0, 2, 11.0, big, 4), 2);
    assert_memory_equal(&big[2], &pristine, sizeof(pristine));
    assert_memory_equal(&big[3], &pristine, sizeof(pristine));
    assert_int_equal(an_threshold_update(&c.cfg, &c.st, 0, 3, 11.0, big, 4), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_and_size),
        cmocka_unit_test(test_exactly_at_threshold),
        cmocka_unit_test(test_one_raise_per_episode),
        cmocka_unit_test(test_for_boundary),
        cmocka_unit_test(test_non_violating_ends_run),
        cmocka_unit_test(test_band_breaks_runs),
        cmocka_unit_test(test_violating_ends_clearing_run),
        cmocka_unit_test(test_clear_for_boundary),
        cmocka_unit_test(test_reraise_new_episode),
        cmocka_unit_test(test_low_side),
        cmocka_unit_test(test_both_sides),
        cmocka_unit_test(test_both_sides_independent_runs),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_extreme_timestamps),
        cmocka_unit_test(test_severity_and_rule),
        cmocka_unit_test(test_disabled_sides),
        cmocka_unit_test(test_cap_handling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
