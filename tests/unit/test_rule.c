/* Unit tests for analytics/rule: glob matching on sensor and metric, and the enum names. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "rule.h"

static an_rule make_rule(const char *sensor_glob, const char *metric_glob) {
    an_rule r;
    memset(&r, 0, sizeof(r));
    snprintf(r.name, sizeof(r.name), "test");
    snprintf(r.sensor_glob, sizeof(r.sensor_glob), "%s", sensor_glob);
    snprintf(r.metric_glob, sizeof(r.metric_glob), "%s", metric_glob);
    return r;
}

/* Checks the sensor glob alone (metric glob "*"), then the metric glob alone. */
static bool glob_ok(const char *glob, const char *name) {
    an_rule rs = make_rule(glob, "*");
    an_rule rm = make_rule("*", glob);
    bool a = an_rule_matches(&rs, name, "m");
    bool b = an_rule_matches(&rm, "s", name);
    assert_int_equal(a, b);
    return a;
}

static void test_star(void **state) {
    (void)state;
    assert_true(glob_ok("*", "pump-1"));
    assert_true(glob_ok("*", ""));
    assert_true(glob_ok("*", "site/a/pump")); /* no FNM_PATHNAME */
    assert_true(glob_ok("*", ".hidden"));     /* no FNM_PERIOD */
    assert_true(glob_ok("*", "a/.b"));
    assert_true(glob_ok("*", "env.t"));
}

static void test_question_mark(void **state) {
    (void)state;
    assert_true(glob_ok("pump-?", "pump-1"));
    assert_true(glob_ok("pump-?", "pump-x"));
    assert_true(glob_ok("pump-?", "pump-/"));
    assert_true(glob_ok("pump-?", "pump-."));
    assert_false(glob_ok("pump-?", "pump-12"));
    assert_false(glob_ok("pump-?", "pump-"));
    assert_false(glob_ok("pump-?", "pump1"));
    assert_false(glob_ok("pump-?", "xpump-1"));
}

static void test_prefix(void **state) {
    (void)state;
    assert_true(glob_ok("temp*", "temp"));
    assert_true(glob_ok("temp*", "temperature"));
    assert_true(glob_ok("temp*", "temp/inner"));
    assert_true(glob_ok("temp*", "temp.c"));
    assert_false(glob_ok("temp*", "xtemp"));
    assert_false(glob_ok("temp*", "tem"));
    assert_false(glob_ok("temp*", "Temperature")); /* case-sensitive */
}

static void test_bracket(void **state) {
    (void)state;
    assert_true(glob_ok("[ab]*", "alpha"));
    assert_true(glob_ok("[ab]*", "beta"));
    assert_true(glob_ok("[ab]*", "a"));
    assert_false(glob_ok("[ab]*", "gamma"));
    assert_false(glob_ok("[ab]*", ""));
    assert_false(glob_ok("[ab]*", "Alpha"));
    assert_true(glob_ok("[!ab]*", "gamma"));
    assert_false(glob_ok("[!ab]*", "alpha"));
}

static void test_exact(void **state) {
    (void)state;
    assert_true(glob_ok("boiler", "boiler"));
    assert_false(glob_ok("boiler", "boiler2"));
    assert_false(glob_ok("boiler", "boile"));
    assert_false(glob_ok("boiler", "Boiler"));
    assert_false(glob_ok("boiler", ""));
    assert_true(glob_ok("", ""));
    assert_false(glob_ok("", "x"));
    /* A backslash escapes a metacharacter. */
    assert_true(glob_ok("a\\*", "a*"));
    assert_false(glob_ok("a\\*", "ab"));
}

static void test_slash_and_dot(void **state) {
    (void)state;
    assert_true(glob_ok("env.*", "env.t"));
    assert_true(glob_ok("env.*", "env."));
    assert_false(glob_ok("env.*", "envt"));
    assert_true(glob_ok("site/*", "site/a/pump"));
    assert_true(glob_ok("*/pump", "site/a/pump"));
    assert_true(glob_ok("site/?/pump", "site/a/pump"));
    assert_true(glob_ok("site/a/pump", "site/a/pump"));
    assert_false(glob_ok("site/a/pump", "site/b/pump"));
    assert_true(glob_ok("*.t", "a/.t"));
    assert_true(glob_ok("a*b", "a/x.y/b"));
}

static void test_both_globs_must_match(void **state) {
    (void)state;
    an_rule r = make_rule("pump-?", "temp*");
    assert_true(an_rule_matches(&r, "pump-1", "temperature"));
    assert_false(an_rule_matches(&r, "pump-1", "pressure"));
    assert_false(an_rule_matches(&r, "pump-10", "temperature"));
    assert_false(an_rule_matches(&r, "fan-1", "humidity"));
    /* Sensor and metric are not swapped. */
    assert_false(an_rule_matches(&r, "temperature", "pump-1"));

    an_rule d = make_rule("*", "*");
    assert_true(an_rule_matches(&d, "anything/at.all", ".x"));
}

static void test_null_arguments(void **state) {
    (void)state;
    an_rule r = make_rule("*", "*");
    assert_false(an_rule_matches(NULL, "s", "m"));
    assert_false(an_rule_matches(&r, NULL, "m"));
    assert_false(an_rule_matches(&r, "s", NULL));
}

static void test_names(void **state) {
    (void)state;
    assert_string_equal(an_kind_name(AN_KIND_HIGH), "high");
    assert_string_equal(an_kind_name(AN_KIND_LOW), "low");
    assert_string_equal(an_kind_name(AN_KIND_RATE), "rate");
    assert_string_equal(an_kind_name(AN_KIND_STALE), "stale");
    assert_string_equal(an_kind_name(AN_KIND_COUNT), "?");
    assert_string_equal(an_kind_name((an_kind)-1), "?");
    assert_string_equal(an_kind_name((an_kind)1000), "?");

    assert_string_equal(an_state_name(AN_STATE_RAISED), "raised");
    assert_string_equal(an_state_name(AN_STATE_CLEARED), "cleared");
    assert_string_equal(an_state_name((an_state)2), "?");
    assert_string_equal(an_state_name((an_state)-1), "?");

    assert_string_equal(an_severity_name(AN_SEV_INFO), "info");
    assert_string_equal(an_severity_name(AN_SEV_WARNING), "warning");
    assert_string_equal(an_severity_name(AN_SEV_CRITICAL), "critical");
    assert_string_equal(an_severity_name((an_severity)3), "?");
    assert_string_equal(an_severity_name((an_severity)-7), "?");
}

static void test_severity_parse(void **state) {
    (void)state;
    static const an_severity all[] = {AN_SEV_INFO, AN_SEV_WARNING, AN_SEV_CRITICAL};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        an_severity s = (an_severity)99;
        assert_int_equal(an_severity_parse(an_severity_name(all[i]), &s), 0);
        assert_int_equal(s, all[i]);
    }
    static const char *const bad[] = {"",         "Warning", "WARNING",    "warn", "crit",
                                      "warning ", " info",   "critical\n", "?",    "high"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        an_severity s = (an_severity)99;
        assert_int_equal(an_severity_parse(bad[i], &s), -1);
        assert_int_equal(s, (an_severity)99); /* untouched on failure */
    }
    an_severity s = (an_severity)99;
    assert_int_equal(an_severity_parse(NULL, &s), -1);
    assert_int_equal(s, (an_severity)99);
    assert_int_equal(an_severity_parse("info", NULL), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_star),
        cmocka_unit_test(test_question_mark),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_bracket),
        cmocka_unit_test(test_exact),
        cmocka_unit_test(test_slash_and_dot),
        cmocka_unit_test(test_both_globs_must_match),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_severity_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
