/* Unit tests for the topic map (gateway/topic.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "topic.h"

static gw_topic_map *map_with(const char *filter, const char *sensor, const char *metric) {
    gw_topic_map *m = NULL;
    char err[160] = "";
    assert_int_equal(gw_topic_map_new(&m), 0);
    int rc = gw_topic_map_add(m, filter, sensor, metric, err, sizeof(err));
    if (rc != 0) {
        fail_msg("add(%s, %s, %s): %s", filter, sensor, metric, err);
    }
    return m;
}

/* Matches and checks the result; for a failure the output buffers must stay untouched. */
static void expect_match(const gw_topic_map *m, const char *topic, int want_rc,
                         const char *want_sensor, const char *want_metric) {
    char sensor[GW_NAME_MAX + 1] = "untouched";
    char metric[GW_NAME_MAX + 1] = "untouched";
    int rc = gw_topic_map_match(m, topic, strlen(topic), sensor, metric);
    if (rc != want_rc) {
        fail_msg("topic '%s': rc %d, want %d", topic, rc, want_rc);
    }
    if (rc == 0) {
        assert_string_equal(sensor, want_sensor);
        assert_string_equal(metric, want_metric);
    } else {
        assert_string_equal(sensor, "untouched");
        assert_string_equal(metric, "untouched");
    }
}

static void test_add_errors(void **state) {
    (void)state;
    static const struct {
        const char *filter, *sensor, *metric, *why;
    } cases[] = {
        {"", "{0}", "", "empty filter"},
        {"a/#/b", "{0}", "", "'#' must be the last level"},
        {"a/b#", "{0}", "", "'#' must occupy a whole level"},
        {"#a", "{0}", "", "'#' must occupy a whole level"},
        {"a/+b", "{0}", "", "'+' must occupy a whole level"},
        {"a/b+/c", "{0}", "", "'+' must occupy a whole level"},
        {"sensors/+", "{2}", "", "placeholder {2} but the filter has 1 wildcard levels"},
        {"sensors/+/+", "{1}", "{3}", "placeholder {3} but the filter has 2 wildcard levels"},
        {"sensors/temp", "{1}", "", "placeholder {1} but the filter has 0 wildcard levels"},
        {"sensors/+", "", "", "sensor template is empty"},
        {"sensors/+", NULL, "", "sensor template is empty"},
        {"sensors/+", "{1", "", "unterminated placeholder in sensor template"},
        {"sensors/+", "{1}", "x{", "unterminated placeholder in metric template"},
        {"sensors/+", "{x}", "", "bad placeholder '{x}' in sensor template"},
        {"sensors/+", "{}", "", "bad placeholder '{}' in sensor template"},
        {"sensors/+", "{-1}", "", "bad placeholder"},
        {"sensors/+", "{12345}", "", "bad placeholder"},
        {"sensors/+", "a}", "", "unmatched '}' in sensor template"},
        {"$share/g", "{0}", "", "'$share/' needs a group name and a filter"},
        {"$share/g/", "{0}", "", "'$share/' needs a group name and a filter"},
        {"$share//a", "{0}", "", "'$share/' needs a group name and a filter"},
        {"$share/g+/a", "{0}", "", "'$share' group name cannot hold"},
        {"$share/g/a/#/b", "{0}", "", "'#' must be the last level"},
        {"a/\xC0\xAF", "{0}", "", "filter is not valid UTF-8"},
        {"a/+", "\xED\xA0\x80", "", "sensor template is not valid UTF-8"},
        {"a/+", "{1}", "\xFF", "metric template is not valid UTF-8"},
        {"a/+", "{1}{1}{1}{1}{1}{1}{1}{1}{1}{1}{1}{1}{1}{1}{1}{1}{1}", "",
         "sensor template has more than 16 parts"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_topic_map *m = NULL;
        char err[160] = "";
        assert_int_equal(gw_topic_map_new(&m), 0);
        int rc = gw_topic_map_add(m, cases[i].filter, cases[i].sensor, cases[i].metric, err,
                                  sizeof(err));
        if (rc != -EINVAL || strstr(err, cases[i].why) == NULL) {
            fail_msg("case %zu (%s): rc %d err '%s', want '%s'", i, cases[i].filter, rc, err,
                     cases[i].why);
        }
        assert_int_equal(gw_topic_map_count(m), 0);
        gw_topic_map_free(m);
    }
}

static void test_add_template_text_limit(void **state) {
    (void)state;
    char tpl[GW_NAME_MAX + 8];
    memset(tpl, 'x', GW_NAME_MAX);
    tpl[GW_NAME_MAX] = '\0';
    gw_topic_map *m = NULL;
    char err[160] = "";
    assert_int_equal(gw_topic_map_new(&m), 0);
    assert_int_equal(gw_topic_map_add(m, "a/+", tpl, "", err, sizeof(err)), 0);
    strcat(tpl, "{1}y");
    assert_int_equal(gw_topic_map_add(m, "a/+", tpl, "", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "sensor template text is longer than 128 bytes"));
    /* A NULL or short error buffer is fine. */
    assert_int_equal(gw_topic_map_add(m, "a/#/b", "{0}", "", NULL, 0), -EINVAL);
    assert_int_equal(gw_topic_map_add(m, "a/#/b", "{0}", "", err, 1), -EINVAL);
    assert_string_equal(err, "");
    assert_int_equal(gw_topic_map_count(m), 1);
    gw_topic_map_free(m);
}

static void test_add_valid_and_count(void **state) {
    (void)state;
    gw_topic_map *m = NULL;
    char err[160];
    assert_int_equal(gw_topic_map_new(&m), 0);
    assert_int_equal(gw_topic_map_count(m), 0);
    assert_null(gw_topic_map_filter(m, 0));
    assert_int_equal(gw_topic_map_add(m, "sensors/+/+", "{1}", "{2}", err, sizeof(err)), 0);
    assert_int_equal(gw_topic_map_add(m, "$share/grp/plant/+", "{1}", NULL, err, sizeof(err)), 0);
    assert_int_equal(gw_topic_map_add(m, "#", "{0}", "", err, sizeof(err)), 0);
    assert_int_equal(gw_topic_map_add(m, "deep/#", "{7}", "{9999}", err, sizeof(err)), 0);
    assert_int_equal(gw_topic_map_add(m, "fixed/topic", "boiler", "temp", err, sizeof(err)), 0);
    assert_int_equal(gw_topic_map_add(m, "a//b", "{0}", "", err, sizeof(err)), 0);
    assert_int_equal(gw_topic_map_count(m), 6);
    assert_string_equal(gw_topic_map_filter(m, 0), "sensors/+/+");
    assert_string_equal(gw_topic_map_filter(m, 1), "$share/grp/plant/+");
    assert_string_equal(gw_topic_map_filter(m, 5), "a//b");
    assert_null(gw_topic_map_filter(m, 6));
    gw_topic_map_free(m);
    gw_topic_map_free(NULL);
    assert_int_equal(gw_topic_map_count(NULL), 0);
}

static void test_max_subscriptions(void **state) {
    (void)state;
    gw_topic_map *m = NULL;
    char err[160] = "";
    assert_int_equal(gw_topic_map_new(&m), 0);
    for (int i = 0; i < GW_TOPIC_MAX_SUBS; i++) {
        char f[32];
        snprintf(f, sizeof(f), "s%d/+", i);
        assert_int_equal(gw_topic_map_add(m, f, "{1}", "", err, sizeof(err)), 0);
    }
    assert_int_equal(gw_topic_map_add(m, "last/+", "{1}", "", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "too many subscriptions"));
    assert_int_equal(gw_topic_map_count(m), GW_TOPIC_MAX_SUBS);
    expect_match(m, "s63/x", 0, "x", "");
    gw_topic_map_free(m);
}

static void test_match_basic(void **state) {
    (void)state;
    gw_topic_map *m = map_with("sensors/+/+", "{1}", "{2}");
    expect_match(m, "sensors/pump1/temp", 0, "pump1", "temp");
    expect_match(m, "sensors/pump1", -ENOENT, NULL, NULL);
    expect_match(m, "sensors/pump1/temp/x", -ENOENT, NULL, NULL);
    expect_match(m, "Sensors/pump1/temp", -ENOENT, NULL, NULL);
    expect_match(m, "other/pump1/temp", -ENOENT, NULL, NULL);
    expect_match(m, "", -ENOENT, NULL, NULL);
    gw_topic_map_free(m);

    m = map_with("sensors/+", "{1}", "");
    expect_match(m, "sensors/sim-001", 0, "sim-001", "");
    gw_topic_map_free(m);
}

/* Wildcard semantics from MQTT 3.1.1 section 4.7. */
static void test_match_wildcards(void **state) {
    (void)state;
    static const struct {
        const char *filter, *topic;
        int match;
    } cases[] = {
        {"sport/tennis/player1/#", "sport/tennis/player1", 1},
        {"sport/tennis/player1/#", "sport/tennis/player1/ranking", 1},
        {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", 1},
        {"sport/tennis/player1/#", "sport/tennis/player2", 0},
        {"sport/#", "sport", 1},
        {"sport/#", "sports", 0},
        {"#", "anything/at/all", 1},
        {"#", "/", 1},
        {"sport/tennis/+", "sport/tennis/player1", 1},
        {"sport/tennis/+", "sport/tennis/player1/tournament", 0},
        {"sport/+", "sport", 0},
        {"sport/+", "sport/", 1},
        {"+/+", "/finance", 1},
        {"/+", "/finance", 1},
        {"+", "/finance", 0},
        {"+", "finance", 1},
        {"+/tennis/#", "sport/tennis", 1},
        {"+/tennis/#", "sport/tennis/x/y", 1},
        {"a//b", "a//b", 1},
        {"a/+/b", "a//b", 1},
        {"a/b", "a/b/", 0},
        {"#", "$SYS/broker/load", 0},
        {"+/broker/load", "$SYS/broker/load", 0},
        {"$SYS/#", "$SYS/broker/load", 1},
        {"$SYS/+/load", "$SYS/broker/load", 1},
        {"$share/g/sensors/+", "sensors/x", 1},
        {"$share/g/sensors/+", "$share/g/sensors/x", 0},
        {"$share/g/#", "a/b", 1},
        {"$share/g/#", "$SYS/b", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_topic_map *m = map_with(cases[i].filter, "s", "");
        char sensor[GW_NAME_MAX + 1];
        char metric[GW_NAME_MAX + 1];
        int rc = gw_topic_map_match(m, cases[i].topic, strlen(cases[i].topic), sensor, metric);
        if (rc != (cases[i].match ? 0 : -ENOENT)) {
            fail_msg("filter '%s' topic '%s': rc %d", cases[i].filter, cases[i].topic, rc);
        }
        gw_topic_map_free(m);
    }
}

static void test_match_templates(void **state) {
    (void)state;
    gw_topic_map *m = map_with("site/+/dev/+/+", "{1}-{2}", "m_{3}");
    expect_match(m, "site/north/dev/pump/temp", 0, "north-pump", "m_temp");
    gw_topic_map_free(m);

    m = map_with("site/+/x", "{0}", "{1}");
    expect_match(m, "site/a/x", 0, "site/a/x", "a");
    gw_topic_map_free(m);

    /* '#' levels continue the numbering after the '+' levels. */
    m = map_with("a/+/b/#", "{1}", "{2}.{3}");
    expect_match(m, "a/s1/b/c/d", 0, "s1", "c.d");
    expect_match(m, "a/s1/b/c/d/e", 0, "s1", "c.d");
    expect_match(m, "a/s1/b/c", 0, "s1", "c.");
    expect_match(m, "a/s1/b", 0, "s1", ".");
    gw_topic_map_free(m);

    m = map_with("deep/#", "{1}", "{2}");
    expect_match(m, "deep/a/b", 0, "a", "b");
    expect_match(m, "deep/a", -EINVAL, NULL, NULL); /* metric template gives "" */
    expect_match(m, "deep", -EINVAL, NULL, NULL);   /* sensor "" */
    gw_topic_map_free(m);

    m = map_with("fixed/topic", "boiler", "");
    expect_match(m, "fixed/topic", 0, "boiler", "");
    gw_topic_map_free(m);

    m = map_with("u/+", "{1}", "");
    expect_match(m, "u/caf\xC3\xA9", 0, "caf\xC3\xA9", "");
    expect_match(m, "u/\xF0\x9F\x8C\xA1", 0, "\xF0\x9F\x8C\xA1", "");
    gw_topic_map_free(m);
}

static void test_first_match_wins(void **state) {
    (void)state;
    gw_topic_map *m = map_with("sensors/special/+", "special", "{1}");
    char err[160];
    assert_int_equal(gw_topic_map_add(m, "sensors/+/+", "{1}", "{2}", err, sizeof(err)), 0);
    assert_int_equal(gw_topic_map_add(m, "#", "fallback", "", err, sizeof(err)), 0);
    expect_match(m, "sensors/special/temp", 0, "special", "temp");
    expect_match(m, "sensors/pump/temp", 0, "pump", "temp");
    expect_match(m, "misc/thing", 0, "fallback", "");
    /* The first matching subscription decides even when its names are bad. */
    expect_match(m, "sensors//temp", -EINVAL, NULL, NULL);
    gw_topic_map_free(m);
}

static void test_share_prefix(void **state) {
    (void)state;
    gw_topic_map *m = map_with("$share/workers/sensors/+/+", "{1}", "{2}");
    expect_match(m, "sensors/p/t", 0, "p", "t");
    assert_string_equal(gw_topic_map_filter(m, 0), "$share/workers/sensors/+/+");
    gw_topic_map_free(m);
}

static void test_name_limits(void **state) {
    (void)state;
    gw_topic_map *m = map_with("s/+/+", "{1}", "{2}");
    char topic[3 * GW_NAME_MAX];
    char longest[GW_NAME_MAX + 2];
    memset(longest, 'a', GW_NAME_MAX);
    longest[GW_NAME_MAX] = '\0';
    snprintf(topic, sizeof(topic), "s/%s/%s", longest, longest);
    expect_match(m, topic, 0, longest, longest);
    snprintf(topic, sizeof(topic), "s/%sa/m", longest);
    expect_match(m, topic, -ENAMETOOLONG, NULL, NULL);
    snprintf(topic, sizeof(topic), "s/x/%sa", longest);
    expect_match(m, topic, -ENAMETOOLONG, NULL, NULL);
    expect_match(m, "s//m", -EINVAL, NULL, NULL);                 /* empty sensor */
    expect_match(m, "s/x/", -EINVAL, NULL, NULL);                 /* metric template gives "" */
    expect_match(m, "s/\xC0\xAF/m", -EINVAL, NULL, NULL);         /* overlong */
    expect_match(m, "s/\xED\xA0\x80/m", -EINVAL, NULL, NULL);     /* surrogate */
    expect_match(m, "s/\xF4\x90\x80\x80/m", -EINVAL, NULL, NULL); /* > U+10FFFF */
    expect_match(m, "s/x/\xE2\x82", -EINVAL, NULL, NULL);         /* truncated */
    /* A NUL inside the (length-delimited) topic cannot be part of a C string name. */
    char sensor[GW_NAME_MAX + 1], metric[GW_NAME_MAX + 1];
    assert_int_equal(gw_topic_map_match(m, "s/a\0b/m", 7, sensor, metric), -EINVAL);
    /* The topic need not be NUL-terminated. */
    assert_int_equal(gw_topic_map_match(m, "s/p/tXYZ", 5, sensor, metric), 0);
    assert_string_equal(sensor, "p");
    assert_string_equal(metric, "t");
    gw_topic_map_free(m);

    /* Mixed text counts towards the limit. */
    m = map_with("t/+", "pre-{1}", "");
    char want[GW_NAME_MAX + 8];
    memset(longest, 'b', GW_NAME_MAX - 4);
    longest[GW_NAME_MAX - 4] = '\0';
    snprintf(want, sizeof(want), "pre-%s", longest);
    snprintf(topic, sizeof(topic), "t/%s", longest);
    expect_match(m, topic, 0, want, "");
    snprintf(topic, sizeof(topic), "t/%sb", longest);
    expect_match(m, topic, -ENAMETOOLONG, NULL, NULL);
    gw_topic_map_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_errors),          cmocka_unit_test(test_add_template_text_limit),
        cmocka_unit_test(test_add_valid_and_count), cmocka_unit_test(test_max_subscriptions),
        cmocka_unit_test(test_match_basic),         cmocka_unit_test(test_match_wildcards),
        cmocka_unit_test(test_match_templates),     cmocka_unit_test(test_first_match_wins),
        cmocka_unit_test(test_share_prefix),        cmocka_unit_test(test_name_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
