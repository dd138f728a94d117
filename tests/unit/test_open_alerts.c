/* The open alerts of a worker (gateway/open_alerts.h): a hash map checked against a plain
 * array under random raises and clears, with few distinct keys so that probe runs collide,
 * wrap around and are shifted back by removals. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "open_alerts.h"
#include "test_rng.h"

static an_alert alert(int rule, an_kind kind, an_state state, double value) {
    return (an_alert){.kind = kind, .state = state, .rule = rule, .value = value};
}

static void test_raise_find_clear(void **state) {
    (void)state;
    gw_open_alerts t = {0};
    assert_null(gw_open_alerts_find(&t, 1, 0, AN_KIND_HIGH));
    assert_false(gw_open_alerts_remove(&t, 1, 0, AN_KIND_HIGH));
    an_alert a = alert(0, AN_KIND_HIGH, AN_STATE_RAISED, 31);
    assert_int_equal(gw_open_alerts_note(&t, 1, &a), 0);
    /* Another kind, rule or series is another key. */
    assert_null(gw_open_alerts_find(&t, 1, 0, AN_KIND_LOW));
    assert_null(gw_open_alerts_find(&t, 1, 1, AN_KIND_HIGH));
    assert_null(gw_open_alerts_find(&t, 2, 0, AN_KIND_HIGH));
    const gw_open_alert *o = gw_open_alerts_find(&t, 1, 0, AN_KIND_HIGH);
    assert_non_null(o);
    assert_int_equal(o->series, 1);
    assert_true(o->a.value == 31);
    /* A second raise of the key replaces the first. */
    a.value = 35;
    assert_int_equal(gw_open_alerts_note(&t, 1, &a), 0);
    assert_int_equal(t.n, 1);
    assert_true(gw_open_alerts_find(&t, 1, 0, AN_KIND_HIGH)->a.value == 35);
    /* A clear removes it; a clear of nothing open changes nothing. */
    an_alert c = alert(0, AN_KIND_HIGH, AN_STATE_CLEARED, 25);
    assert_int_equal(gw_open_alerts_note(&t, 1, &c), 0);
    assert_int_equal(t.n, 0);
    assert_null(gw_open_alerts_find(&t, 1, 0, AN_KIND_HIGH));
    assert_int_equal(gw_open_alerts_note(&t, 1, &c), 0);
    gw_open_alerts_free(&t);
    assert_int_equal(t.n, 0);
    /* Usable again after free. */
    assert_int_equal(gw_open_alerts_note(&t, 7, &a), 0);
    assert_non_null(gw_open_alerts_find(&t, 7, 0, AN_KIND_HIGH));
    gw_open_alerts_free(&t);
}

enum { SERIES = 300, RULES = 4, KINDS = AN_KIND_COUNT };

static void test_random_against_array(void **state) {
    (void)state;
    static double ref[SERIES][RULES][KINDS]; /* value while open, 0 when not */
    memset(ref, 0, sizeof(ref));
    gw_open_alerts t = {0};
    rng_seed(42);
    size_t open = 0;
    for (int step = 0; step < 200000; step++) {
        uint32_t s = (uint32_t)(urand() * SERIES);
        int r = (int)(urand() * RULES);
        an_kind k = (an_kind)(int)(urand() * KINDS);
        /* Mostly raises, then mostly clears, in turns: the table fills up and empties again
         * (growing, then removals shifting the probe runs back). */
        bool raise = urand() < (step / 50000 % 2 == 0 ? 0.7 : 0.3);
        double v = (double)(step + 1);
        an_alert a = alert(r, k, raise ? AN_STATE_RAISED : AN_STATE_CLEARED, v);
        assert_int_equal(gw_open_alerts_note(&t, s, &a), 0);
        if (raise) {
            open += ref[s][r][k] == 0;
            ref[s][r][k] = v;
        } else {
            open -= ref[s][r][k] != 0;
            ref[s][r][k] = 0;
        }
        assert_int_equal(t.n, open);
        if (step % 5000 == 0) {
            for (uint32_t si = 0; si < SERIES; si++) {
                for (int ri = 0; ri < RULES; ri++) {
                    for (int ki = 0; ki < KINDS; ki++) {
                        const gw_open_alert *o = gw_open_alerts_find(&t, si, ri, (an_kind)ki);
                        if (ref[si][ri][ki] == 0) {
                            assert_null(o);
                        } else {
                            assert_non_null(o);
                            assert_true(o->a.value == ref[si][ri][ki]);
                        }
                    }
                }
            }
        }
    }
    /* Every open entry is in the dense array exactly once. */
    size_t seen = 0;
    for (size_t i = 0; i < t.n; i++) {
        const gw_open_alert *o = &t.items[i];
        assert_true(ref[o->series][o->a.rule][o->a.kind] == o->a.value);
        seen++;
    }
    assert_int_equal(seen, open);
    gw_open_alerts_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raise_find_clear),
        cmocka_unit_test(test_random_against_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
