/* Unit tests for analytics/stale: hand-computed vectors for every edge of the semantics in
 * stale.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "stale.h"

typedef struct sctx {
    an_stale_cfg cfg;
    an_stale_state st;
    int rule;
    an_alert out[2];
} sctx;

static void setup_cfg(sctx *c, int64_t after_ms) {
    memset(c, 0, sizeof(*c));
    c->cfg.after_ms = after_ms;
    c->cfg.severity = AN_SEV_WARNING;
    c->rule = 3;
    an_stale_init(&c->st);
}

static int seen(sctx *c, int64_t t, double v) {
    memset(c->out, 0xAB, sizeof(c->out));
    return an_stale_seen(&c->cfg, &c->st, c->rule, t, v, c->out, 2);
}

static int check(sctx *c, int64_t now) {
    memset(c->out, 0xAB, sizeof(c->out));
    return an_stale_check(&c->cfg, &c->st, c->rule, now, c->out, 2);
}

static void check_alert(const sctx *c, an_state state, int64_t ts, double v, double silence) {
    const an_alert *a = &c->out[0];
    assert_int_equal(a->kind, AN_KIND_STALE);
    assert_int_equal(a->state, state);
    assert_int_equal(a->severity, c->cfg.severity);
    assert_int_equal(a->rule, c->rule);
    assert_true(a->threshold == (double)c->cfg.after_ms);
    assert_true(a->ts_ms == ts);
    assert_true(a->value == v);
    if (a->detail != silence) {
        print_error("silence %.17g, want %.17g\n", a->detail, silence);
    }
    assert_true(a->detail == silence);
}

#define SEEN_NONE(c, t, v) assert_int_equal(seen((c), (t), (v)), 0)
#define CHECK_NONE(c, now) assert_int_equal(check((c), (now)), 0)
#define RAISE(c, now, v, silence)                                                                  \
    do {                                                                                           \
        assert_int_equal(check((c), (now)), 1);                                                    \
        check_alert((c), AN_STATE_RAISED, (now), (v), (silence));                                  \
    } while (0)
#define CLEAR(c, t, v, silence)                                                                    \
    do {                                                                                           \
        assert_int_equal(seen((c), (t), (v)), 1);                                                  \
        check_alert((c), AN_STATE_CLEARED, (t), (v), (silence));                                   \
    } while (0)

static void test_state_size(void **state) {
    (void)state;
    assert_true(sizeof(an_stale_state) <= 24);
}

/* A series never seen has no last reading: it is never stale. */
static void test_never_seen(void **state) {
    (void)state;
    sctx c;
    setup_cfg(&c, 15000);
    CHECK_NONE(&c, 0);
    CHECK_NONE(&c, 15000);
    CHECK_NONE(&c, INT64_MAX);
    assert_int_equal(c.st.seen, 0);
    assert_int_equal(c.st.raised, 0);
}

/* now - last_seen == after raises; one less does not. */
static void test_boundary(void **state) {
    (void)state;
    sctx c;
    setup_cfg(&c, 15000);
    SEEN_NONE(&c, 1000, 21.5);
    CHECK_NONE(&c, 1000);
    CHECK_NONE(&c, 15999);
    RAISE(&c, 16000, 21.5, 15000);

    /* The shortest limit. */
    setup_cfg(&c, 1);
    SEEN_NONE(&c, 0, 7);
    CHECK_NONE(&c, 0);
    RAISE(&c, 1, 7, 1);
}

/* One raise per silence, however many checks; the next reading clears. */
static void test_one_raise_then_clear(void **state) {
    (void)state;
    sctx c;
    setup_cfg(&c, 15000);
    SEEN_NONE(&c, 1000, 21.5);
    SEEN_NONE(&c, 2000, 21.75); /* the latest reading counts */
    CHECK_NONE(&c, 16999);
    RAISE(&c, 17000, 21.75, 15000);
    CHECK_NONE(&c, 17000);
    CHECK_NONE(&c, 17001);
    CHECK_NONE(&c, 100000);
    /* The clear reports the silence that ended and the reading's value. */
    CLEAR(&c, 40000, 22, 38000);
    SEEN_NONE(&c, 40001, 22.5);
    CHECK_NONE(&c, 55000); /* 14999 since 40001 */
    RAISE(&c, 55001, 22.5, 15000);
    CHECK_NONE(&c, 56000);
    CLEAR(&c, 56000, 23, 15999);
    assert_int_equal(c.st.raised, 0);
}

/* A reading never raises, even after a silence no check saw. */
static void test_seen_never_raises(void **state) {
    (void)state;
    sctx c;
    setup_cfg(&c, 15000);
    SEEN_NONE(&c, 0, 1);
    SEEN_NONE(&c, 1000000, 2);
    CHECK_NONE(&c, 1014999);
    RAISE(&c, 1015000, 2, 15000);
}

/* A reading time that steps backwards does not move last_seen back (but updates the value);
 * a check whose clock is behind last_seen sees no silence. */
static void test_backwards_time(void **state) {
    (void)state;
    sctx c;
    setup_cfg(&c, 15000);
    SEEN_NONE(&c, 10000, 1);
    SEEN_NONE(&c, 5000, 2);
    assert_true(c.st.last_seen_ms == 10000);
    CHECK_NONE(&c, 0);
    CHECK_NONE(&c, 24999);
    RAISE(&c, 25000, 2, 15000);
    /* A clearing reading from before last_seen ended a silence of 0 ms as far as we know. */
    CLEAR(&c, 9000, 3, 0);
    assert_true(c.st.last_seen_ms == 10000);
    assert_true(c.st.last_value == 3);
    RAISE(&c, 25000, 3, 15000);
}

/* Extreme times do not overflow. */
static void test_extremes(void **state) {
    (void)state;
    sctx c;
    setup_cfg(&c, 15000);
    SEEN_NONE(&c, INT64_MIN, 0);
    RAISE(&c, INT64_MAX, 0, 18446744073709551615.0);
    CLEAR(&c, INT64_MAX, 1, 18446744073709551615.0);
    CHECK_NONE(&c, INT64_MIN);
}

static void test_severity(void **state) {
    (void)state;
    sctx c;
    setup_cfg(&c, 500);
    c.cfg.severity = AN_SEV_CRITICAL;
    c.rule = 0;
    SEEN_NONE(&c, 0, 1);
    RAISE(&c, 500, 1, 500);
    assert_int_equal(c.out[0].severity, AN_SEV_CRITICAL);
    CLEAR(&c, 600, 1, 600);
    assert_int_equal(c.out[0].rule, 0);
}

static void test_bad_arguments(void **state) {
    (void)state;
    sctx c;
    setup_cfg(&c, 15000);
    SEEN_NONE(&c, 0, 1);
    an_stale_state before = c.st;
    assert_int_equal(an_stale_seen(NULL, &c.st, 0, 1, 1, c.out, 2), -EINVAL);
    assert_int_equal(an_stale_seen(&c.cfg, NULL, 0, 1, 1, c.out, 2), -EINVAL);
    assert_int_equal(an_stale_seen(&c.cfg, &c.st, 0, 1, 1, NULL, 2), -EINVAL);
    assert_int_equal(an_stale_seen(&c.cfg, &c.st, 0, 1, 1, c.out, 0), -EINVAL);
    assert_int_equal(an_stale_check(NULL, &c.st, 0, 20000, c.out, 2), -EINVAL);
    assert_int_equal(an_stale_check(&c.cfg, NULL, 0, 20000, c.out, 2), -EINVAL);
    assert_int_equal(an_stale_check(&c.cfg, &c.st, 0, 20000, NULL, 2), -EINVAL);
    assert_int_equal(an_stale_check(&c.cfg, &c.st, 0, 20000, c.out, 0), -EINVAL);
    static const int64_t bad[] = {0, -1, INT64_MIN};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c.cfg.after_ms = bad[i];
        assert_int_equal(seen(&c, 1, 1), -EINVAL);
        assert_int_equal(check(&c, 20000), -EINVAL);
    }
    assert_memory_equal(&before, &c.st, sizeof before);
    /* cap 1 is enough. */
    c.cfg.after_ms = 15000;
    assert_int_equal(an_stale_check(&c.cfg, &c.st, 0, 20000, c.out, 1), 1);
    assert_int_equal(an_stale_seen(&c.cfg, &c.st, 0, 20001, 2, c.out, 1), 1);
    an_stale_init(NULL); /* harmless */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_size),        cmocka_unit_test(test_never_seen),
        cmocka_unit_test(test_boundary),          cmocka_unit_test(test_one_raise_then_clear),
        cmocka_unit_test(test_seen_never_raises), cmocka_unit_test(test_backwards_time),
        cmocka_unit_test(test_extremes),          cmocka_unit_test(test_severity),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
