#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"

static void test_intern_is_stable(void **state) {
    (void)state;
    gw_series_registry *r;
    assert_int_equal(gw_series_registry_new(&r, 100000), 0);
    gw_series *a, *b, *c;
    assert_int_equal(gw_series_intern(r, "pump1", "temp", &a), 0);
    assert_int_equal(gw_series_intern(r, "pump1", "flow", &b), 0);
    assert_int_equal(gw_series_intern(r, "pump1", "temp", &c), 0);
    assert_ptr_equal(a, c);
    assert_int_not_equal(a->id, b->id);
    assert_string_equal(b->sensor, "pump1");
    assert_string_equal(b->metric, "flow");
    /* (sensor, metric) pairs that concatenate alike stay apart. */
    gw_series *d, *e;
    assert_int_equal(gw_series_intern(r, "ab", "c", &d), 0);
    assert_int_equal(gw_series_intern(r, "a", "bc", &e), 0);
    assert_ptr_not_equal(d, e);
    assert_int_equal(gw_series_count(r), 4);
    gw_series_registry_free(r, NULL);
}

/* Many series: the hash table grows, ids stay dense, lookups by id and by name agree. */
static void test_many_series(void **state) {
    (void)state;
    gw_series_registry *r;
    enum { N = 50000 };
    assert_int_equal(gw_series_registry_new(&r, N), 0);
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "s%05d", i);
        gw_series *s;
        assert_int_equal(gw_series_intern(r, name, "m", &s), 0);
        assert_int_equal(s->id, i);
    }
    for (int i = 0; i < N; i += 997) {
        snprintf(name, sizeof(name), "s%05d", i);
        gw_series *s;
        assert_int_equal(gw_series_intern(r, name, "m", &s), 0);
        assert_ptr_equal(s, gw_series_get(r, (uint32_t)i));
        assert_int_equal(s->hash, gw_series_hash(name, "m"));
    }
    /* The limit is a number, and past it intern says so. */
    gw_series *s;
    assert_int_equal(gw_series_intern(r, "one-too-many", "m", &s), -ENOSPC);
    assert_int_equal(gw_series_count(r), N);
    gw_series_registry_free(r, NULL);
}

static int freed;
static void count_free(void *p) {
    freed++;
    free(p);
}

static void test_free_calls_state_destructor(void **state) {
    (void)state;
    gw_series_registry *r;
    assert_int_equal(gw_series_registry_new(&r, 10), 0);
    gw_series *a, *b;
    assert_int_equal(gw_series_intern(r, "x", "y", &a), 0);
    assert_int_equal(gw_series_intern(r, "x", "z", &b), 0);
    a->wstate = malloc(8);
    freed = 0;
    gw_series_registry_free(r, count_free);
    assert_int_equal(freed, 1);
}

static void test_hash_is_stable_across_runs(void **state) {
    (void)state;
    /* Worker ownership must not change between runs or builds: FNV-1a, fixed value. */
    assert_int_equal(gw_series_hash("", ""), 0x050c5d1fu);
    assert_int_not_equal(gw_series_hash("a", "b"), gw_series_hash("b", "a"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intern_is_stable),
        cmocka_unit_test(test_many_series),
        cmocka_unit_test(test_free_calls_state_destructor),
        cmocka_unit_test(test_hash_is_stable_across_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
