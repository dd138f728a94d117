/* Unit tests for the decoder (gateway/decode.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

#define ARRIVAL  INT64_C(1714564800000) /* 2024-05-01T12:00:00Z */
#define MAX_SEEN 64

typedef struct seen {
    char sensor[GW_NAME_MAX + 1];
    char metric[GW_NAME_MAX + 1];
    int64_t ts;
    double v;
} seen;

typedef struct sink {
    seen r[MAX_SEEN];
    int n;
    int stop_at; /* return non-zero on this call (1-based); 0: never */
} sink;

static int on_reading(void *ctx, const char *sensor, const char *metric, int64_t ts_ms, bool own_ts,
                      double value) {
    (void)own_ts;
    sink *s = ctx;
    if (s->n < MAX_SEEN) {
        snprintf(s->r[s->n].sensor, sizeof(s->r[0].sensor), "%s", sensor);
        snprintf(s->r[s->n].metric, sizeof(s->r[0].metric), "%s", metric);
        s->r[s->n].ts = ts_ms;
        s->r[s->n].v = value;
    }
    s->n++;
    return s->stop_at != 0 && s->n == s->stop_at ? 7 : 0;
}

/* Shared decoder: routes used by all tests. */
static gw_topic_map *topics;
static gw_decoder dec;

static int setup(void **state) {
    (void)state;
    char err[160];
    if (gw_topic_map_new(&topics) != 0 ||
        gw_topic_map_add(topics, "sensors/+/+", "{1}", "{2}", err, sizeof(err)) != 0 ||
        gw_topic_map_add(topics, "sensors/+", "{1}", "", err, sizeof(err)) != 0 ||
        gw_topic_map_add(topics, "long/+/+", "{1}", "{2}", err, sizeof(err)) != 0) {
        return -1;
    }
    dec.topics = topics;
    dec.max_payload = 4096;
    dec.max_readings = 16;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    gw_topic_map_free(topics);
    return 0;
}

/* Decodes and checks rc/reason; on failure no callback may have run. */
static void run_len(const char *topic, const char *payload, size_t len, int want_rc,
                    gw_decode_reason want_reason, sink *s) {
    memset(s, 0, sizeof(*s));
    gw_decode_reason reason = GW_DEC_REASON_COUNT;
    int rc = gw_decode(&dec, topic, strlen(topic), payload, len, ARRIVAL, on_reading, s, &reason);
    if (rc != want_rc || reason != want_reason) {
        fail_msg("topic '%s' payload '%.*s': rc %d reason %s, want rc %d reason %s", topic,
                 (int)(len > 200 ? 200 : len), payload, rc, gw_decode_reason_name(reason), want_rc,
                 gw_decode_reason_name(want_reason));
    }
    if (rc == -1) {
        assert_int_equal(s->n, 0);
    } else if (rc >= 0) {
        assert_int_equal(s->n, rc);
    }
}

static void run(const char *topic, const char *payload, int want_rc, gw_decode_reason want,
                sink *s) {
    run_len(topic, payload, strlen(payload), want_rc, want, s);
}

static void expect_reading(const sink *s, int i, const char *sensor, const char *metric, int64_t ts,
                           double v) {
    assert_true(i < s->n);
    assert_string_equal(s->r[i].sensor, sensor);
    assert_string_equal(s->r[i].metric, metric);
    assert_int_equal(s->r[i].ts, ts);
    if (s->r[i].v != v) {
        fail_msg("reading %d (%s): value %.17g, want %.17g", i, metric, s->r[i].v, v);
    }
}

static void test_reason_names(void **state) {
    (void)state;
    static const char *const want[GW_DEC_REASON_COUNT] = {
        "ok",        "no_route",    "bad_name",  "oversize", "not_utf8",
        "malformed", "not_numeric", "nonfinite", "bad_ts",   "too_many",
    };
    for (int i = 0; i < GW_DEC_REASON_COUNT; i++) {
        assert_string_equal(gw_decode_reason_name((gw_decode_reason)i), want[i]);
    }
    assert_string_equal(gw_decode_reason_name(GW_DEC_REASON_COUNT), "unknown");
    assert_string_equal(gw_decode_reason_name((gw_decode_reason)-1), "unknown");
}

static void test_plain_numbers(void **state) {
    (void)state;
    static const struct {
        const char *payload;
        double v;
    } ok[] = {
        {"21.5", 21.5},
        {" 21.5\n", 21.5},
        {"\t\r\n\v\f 21.5 \t\r\n", 21.5},
        {"-3", -3},
        {"+4", 4},
        {"0", 0},
        {"007", 7},
        {"1e3", 1000},
        {"1E-2", 0.01},
        {"2.5e+2", 250},
        {".5", 0.5},
        {"5.", 5},
        {"0.1", 0.1},
        {"0.000001", 1e-6},
        {"123456789012345678", 123456789012345678.0},
        {"9007199254740993", 9007199254740993.0}, /* 2^53 + 1: rounds like strtod */
        {"3.14159265358979323846264338327950288", 3.14159265358979323846264338327950288},
        {"123456789012345678901234567890", 123456789012345678901234567890.0},
        {"1.7976931348623157e308", 1.7976931348623157e308},
        {"4.9e-324", 4.9e-324},
        {"1e-400", 0.0},
        {"1e23", 1e23},
        {"0.000000000000000000000000000001", 1e-30},
        {"\xEF\xBB\xBF 42", 42}, /* UTF-8 BOM */
    };
    sink s;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        run("sensors/p1/temp", ok[i].payload, 1, GW_DEC_OK, &s);
        expect_reading(&s, 0, "p1", "temp", ARRIVAL, ok[i].v);
    }
    run("sensors/p1/temp", "-0", 1, GW_DEC_OK, &s);
    assert_true(s.r[0].v == 0.0 && signbit(s.r[0].v));

    static const struct {
        const char *payload;
        gw_decode_reason reason;
    } bad[] = {
        {"1,5", GW_DEC_MALFORMED},
        {"0x10", GW_DEC_MALFORMED},
        {"0x1p3", GW_DEC_MALFORMED},
        {"1e", GW_DEC_MALFORMED},
        {"1e+", GW_DEC_MALFORMED},
        {"-", GW_DEC_MALFORMED},
        {"+", GW_DEC_MALFORMED},
        {".", GW_DEC_MALFORMED},
        {"-.e1", GW_DEC_MALFORMED},
        {"1.2.3", GW_DEC_MALFORMED},
        {"12abc", GW_DEC_MALFORMED},
        {"21.5C", GW_DEC_MALFORMED},
        {"1 2", GW_DEC_MALFORMED},
        {"--1", GW_DEC_MALFORMED},
        {"1e5.5", GW_DEC_MALFORMED},
        {"1_000", GW_DEC_MALFORMED},
        {"", GW_DEC_MALFORMED},
        {"   \n", GW_DEC_MALFORMED},
        {"@1", GW_DEC_MALFORMED},
        {"#", GW_DEC_MALFORMED},
        {"nan", GW_DEC_NONFINITE},
        {"NaN", GW_DEC_NONFINITE},
        {"-nan", GW_DEC_NONFINITE},
        {"inf", GW_DEC_NONFINITE},
        {"-Inf", GW_DEC_NONFINITE},
        {"+INFINITY", GW_DEC_NONFINITE},
        {" infinity\n", GW_DEC_NONFINITE},
        {"1e999", GW_DEC_NONFINITE},
        {"-1e999", GW_DEC_NONFINITE},
        {"1.7976931348623159e308", GW_DEC_NONFINITE}, /* rounds past DBL_MAX */
        {"-1797693134862315807937289714053034150799341327100378269361737789804449682927647"
         "50946649017977587207096330286416692887910946555547851940402630657488671505820681"
         "90890200070838367627385484581771153176447573027006985557136695962284291481986083"
         "4936475292719074168444365510704342711559699508093042880177904174497792",
         GW_DEC_NONFINITE}, /* the halfway point above DBL_MAX rounds to infinity */
        {"on", GW_DEC_NOT_NUMERIC},
        {"OFF", GW_DEC_NOT_NUMERIC},
        {"open", GW_DEC_NOT_NUMERIC},
        {"nano", GW_DEC_NOT_NUMERIC},
        {"\xC3\xA9t\xC3\xA9", GW_DEC_NOT_NUMERIC},
        {"true", GW_DEC_NOT_NUMERIC},
        {"false", GW_DEC_NOT_NUMERIC},
        {"null", GW_DEC_NOT_NUMERIC},
        {"\"21\"", GW_DEC_NOT_NUMERIC},
        {" \"21.5\" ", GW_DEC_NOT_NUMERIC},
        {"\"abc", GW_DEC_MALFORMED},
        {"\"a\" \"b\"", GW_DEC_MALFORMED},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run("sensors/p1/temp", bad[i].payload, -1, bad[i].reason, &s);
    }
    /* A NUL byte is valid UTF-8 but not part of a number. */
    run_len("sensors/p1/temp", "21.5\0", 5, -1, GW_DEC_MALFORMED, &s);
    /* Only the given length counts: the payload need not be NUL-terminated. */
    run_len("sensors/p1/temp", "21.5999", 4, 1, GW_DEC_OK, &s);
    expect_reading(&s, 0, "p1", "temp", ARRIVAL, 21.5);
    /* Longer than any sensible number. */
    char huge[1100];
    memset(huge, '1', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    run("sensors/p1/temp", huge, -1, GW_DEC_MALFORMED, &s);
}

/* A plain number must not depend on the process locale. */
static void test_plain_number_locale(void **state) {
    (void)state;
    static const char *const locales[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8"};
    const char *got = NULL;
    for (size_t i = 0; i < sizeof(locales) / sizeof(locales[0]) && got == NULL; i++) {
        got = setlocale(LC_NUMERIC, locales[i]);
    }
    if (got == NULL) {
        skip(); /* no locale with a decimal comma installed */
    }
    sink s;
    run("sensors/p1/temp", "21.5", 1, GW_DEC_OK, &s);
    expect_reading(&s, 0, "p1", "temp", ARRIVAL, 21.5);
    run("sensors/p1/temp", "3.14159265358979323846264338", 1, GW_DEC_OK, &s);
    run("sensors/p1/temp", "1,5", -1, GW_DEC_MALFORMED, &s);
    run("sensors/p1", "{\"t\":21.5}", 1, GW_DEC_OK, &s);
    expect_reading(&s, 0, "p1", "t", ARRIVAL, 21.5);
    setlocale(LC_NUMERIC, "C");
}

static void test_routing_and_names(void **state) {
    (void)state;
    sink s;
    run("other/p1/temp", "1", -1, GW_DEC_NO_ROUTE, &s);
    run("sensors", "1", -1, GW_DEC_NO_ROUTE, &s);
    run("sensors//temp", "1", -1, GW_DEC_BAD_NAME, &s);
    run("sensors/p1/", "1", -1, GW_DEC_BAD_NAME, &s);
    run("sensors/\xC0\xAF/temp", "1", -1, GW_DEC_BAD_NAME, &s);
    /* A plain number needs a metric from the topic. */
    run("sensors/p1", "21.5", -1, GW_DEC_BAD_NAME, &s);
    char topic[2 * GW_NAME_MAX + 16];
    char lvl[GW_NAME_MAX + 2];
    memset(lvl, 's', sizeof(lvl) - 1);
    lvl[sizeof(lvl) - 1] = '\0';
    snprintf(topic, sizeof(topic), "long/%s/m", lvl);
    run(topic, "1", -1, GW_DEC_BAD_NAME, &s);
    lvl[GW_NAME_MAX] = '\0';
    snprintf(topic, sizeof(topic), "long/%s/m", lvl);
    run(topic, "1", 1, GW_DEC_OK, &s);
    expect_reading(&s, 0, lvl, "m", ARRIVAL, 1);
    /* Route errors come before payload errors. */
    run("other/x", "\xFF", -1, GW_DEC_NO_ROUTE, &s);
}

static void test_size_and_utf8(void **state) {
    (void)state;
    sink s;
    char *big = malloc(dec.max_payload + 2);
    assert_non_null(big);
    /* Exactly max_payload bytes is accepted. */
    memset(big, ' ', dec.max_payload);
    big[0] = '7';
    run_len("sensors/p/t", big, dec.max_payload, 1, GW_DEC_OK, &s);
    /* One more is oversize, checked before UTF-8. */
    memset(big, 0xFF, dec.max_payload + 1);
    run_len("sensors/p/t", big, dec.max_payload + 1, -1, GW_DEC_OVERSIZE, &s);
    free(big);

    static const char *const invalid[] = {
        "\x80",                             /* lone continuation byte */
        "\xBF 1",                           /* lone continuation byte */
        "\xC0\xAF",                         /* overlong '/' */
        "\xC1\xBF",                         /* overlong */
        "\xE0\x80\xAF",                     /* overlong 3-byte */
        "\xE0\x9F\xBF",                     /* overlong 3-byte */
        "\xF0\x80\x80\xAF",                 /* overlong 4-byte */
        "\xF0\x8F\xBF\xBF",                 /* overlong 4-byte */
        "\xED\xA0\x80",                     /* U+D800 surrogate */
        "\xED\xBF\xBF",                     /* U+DFFF surrogate */
        "\xF4\x90\x80\x80",                 /* U+110000 */
        "\xF5\x80\x80\x80",                 /* beyond U+10FFFF */
        "\xFF",                             /* never valid */
        "\xFE",                             /* never valid */
        "\xE2\x82",                         /* truncated */
        "\xF0\x9F\x8C",                     /* truncated */
        "\xC3\x28",                         /* bad continuation */
        "{\"a\":1,\"b\":\"\xE2\x28\xA1\"}", /* bad continuation inside JSON */
        "12345678\xC3",                     /* truncated after an ASCII run */
    };
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        run("sensors/p/t", invalid[i], -1, GW_DEC_NOT_UTF8, &s);
    }
    /* Boundary code points are valid. */
    run("sensors/p", "{\"a\":1,\"s\":\"\xF4\x8F\xBF\xBF \xED\x9F\xBF \xEE\x80\x80 \xC2\x80\"}", 1,
        GW_DEC_OK, &s);
    /* Non-ASCII names pass through. */
    run("sensors/p", "{\"temp\xC3\xA9rature\":1.5,\"\xE6\xB8\xA9\xE5\xBA\xA6\":2}", 2, GW_DEC_OK,
        &s);
    expect_reading(&s, 0, "p", "temp\xC3\xA9rature", ARRIVAL, 1.5);
    expect_reading(&s, 1, "p", "\xE6\xB8\xA9\xE5\xBA\xA6", ARRIVAL, 2);
    /* A lone surrogate escape is invalid JSON. */
    run("sensors/p", "{\"a\\ud800\":1}", -1, GW_DEC_MALFORMED, &s);
    run("sensors/p", "{\"a\\ud83c\\udf21\":1}", 1, GW_DEC_OK, &s);
    expect_reading(&s, 0, "p", "a\xF0\x9F\x8C\xA1", ARRIVAL, 1);
}

static void test_json_object(void **state) {
    (void)state;
    sink s;
    run("sensors/p1", "{\"ts\":1700000000123,\"temperature\":21.5,\"humidity\":40.2}", 2, GW_DEC_OK,
        &s);
    expect_reading(&s, 0, "p1", "temperature", INT64_C(1700000000123), 21.5);
    expect_reading(&s, 1, "p1", "humidity", INT64_C(1700000000123), 40.2);

    /* No ts: arrival time. Whitespace around and inside is fine. */
    run("sensors/p1", " \n{ \"a\" : 1 , \"b\" : -2.5e1 }\r\n", 2, GW_DEC_OK, &s);
    expect_reading(&s, 0, "p1", "a", ARRIVAL, 1);
    expect_reading(&s, 1, "p1", "b", ARRIVAL, -25);

    /* Nested objects are flattened; other types are skipped. */
    run("sensors/p1",
        "{\"env\":{\"t\":1,\"deep\":{\"x\":2},\"s\":\"str\"},\"list\":[1,2],\"on\":true,"
        "\"off\":false,\"none\":null,\"name\":\"pump\",\"v\":3,\"empty\":{}}",
        3, GW_DEC_OK, &s);
    expect_reading(&s, 0, "p1", "env.t", ARRIVAL, 1);
    expect_reading(&s, 1, "p1", "env.deep.x", ARRIVAL, 2);
    expect_reading(&s, 2, "p1", "v", ARRIVAL, 3);

    /* A metric from the topic prefixes the field names; a nested ts is just a metric. */
    run("sensors/p1/env", "{\"ts\":1700000000,\"t\":1,\"in\":{\"ts\":5}}", 2, GW_DEC_OK, &s);
    expect_reading(&s, 0, "p1", "env.t", INT64_C(1700000000000), 1);
    expect_reading(&s, 1, "p1", "env.in.ts", INT64_C(1700000000000), 5);

    /* Nothing numeric. */
    run("sensors/p1", "{}", -1, GW_DEC_NOT_NUMERIC, &s);
    run("sensors/p1", "{\"a\":\"x\"}", -1, GW_DEC_NOT_NUMERIC, &s);
    run("sensors/p1", "{\"a\":[1,2,3],\"b\":{\"c\":\"d\"}}", -1, GW_DEC_NOT_NUMERIC, &s);
    run("sensors/p1", "{\"ts\":1700000000}", -1, GW_DEC_NOT_NUMERIC, &s);

    /* Malformed JSON. */
    static const char *const malformed[] = {
        "{",
        "{\"a\":1",
        "{\"a\":1}}",
        "{\"a\":1} x",
        "{\"a\":1}\x01",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "{\"a\":01x}",
        "{\"a\":0x10}",
        "{\"a\":NaN}",
        "{\"a\":Infinity}",
        "{\"a\":1.5.5}",
        "{\"a\":\"unterminated}",
        "{\"a\":1}{\"b\":2}",
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        run("sensors/p1", malformed[i], -1, GW_DEC_MALFORMED, &s);
    }

    /* Overflow to infinity fails the whole message, with no callback. */
    run("sensors/p1", "{\"a\":1,\"b\":1e999}", -1, GW_DEC_NONFINITE, &s);
    run("sensors/p1", "{\"a\":1,\"b\":{\"c\":-1e400}}", -1, GW_DEC_NONFINITE, &s);
}

static void test_json_ts(void **state) {
    (void)state;
    static const struct {
        const char *payload;
        int64_t ts;
    } ok[] = {
        {"{\"ts\":1700000000,\"a\":1}", INT64_C(1700000000000)},
        {"{\"ts\":1700000000.5,\"a\":1}", INT64_C(1700000000500)},
        {"{\"a\":1,\"ts\":1700000000.1234}", INT64_C(1700000000123)},
        {"{\"ts\":1700000000123,\"a\":1}", INT64_C(1700000000123)},
        {"{\"ts\":99999999999,\"a\":1}", INT64_C(99999999999000)}, /* just below 1e11: s */
        {"{\"ts\":100000000000,\"a\":1}", INT64_C(100000000000)},  /* 1e11: ms */
        {"{\"ts\":0,\"a\":1}", 0},
        {"{\"ts\":253402300799999,\"a\":1}", INT64_C(253402300799999)},
        {"{\"ts\":\"2024-05-01T12:00:00Z\",\"a\":1}", INT64_C(1714564800000)},
        {"{\"ts\":\"2024-05-01T12:00:00.123+02:00\",\"a\":1}", INT64_C(1714557600123)},
        {"{\"ts\":\"2024-05-01 17:30:00-00:00\",\"a\":1}", INT64_C(1714584600000)},
        {"{\"ts\":\"2023-11-14T22:13:20.123456789Z\",\"a\":1}", INT64_C(1700000000123)},
    };
    sink s;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        run("sensors/p", ok[i].payload, 1, GW_DEC_OK, &s);
        expect_reading(&s, 0, "p", "a", ok[i].ts, 1);
    }
    static const char *const bad[] = {
        "{\"ts\":-1,\"a\":1}",
        "{\"ts\":-0.5,\"a\":1}",
        "{\"ts\":253402300800000,\"a\":1}", /* year 10000 */
        "{\"ts\":1e300,\"a\":1}",
        "{\"ts\":1e999,\"a\":1}",
        "{\"ts\":\"yesterday\",\"a\":1}",
        "{\"ts\":\"1700000000\",\"a\":1}",
        "{\"ts\":\"2024-05-01T12:00:00\",\"a\":1}",
        "{\"ts\":\"1969-12-31T23:59:59Z\",\"a\":1}",
        "{\"ts\":\"9999-12-31T23:59:59-01:00\",\"a\":1}",
        "{\"ts\":true,\"a\":1}",
        "{\"ts\":null,\"a\":1}",
        "{\"ts\":{},\"a\":1}",
        "{\"ts\":[1],\"a\":1}",
        "{\"ts\":1700000000,\"a\":1,\"ts\":1700000001}",
        "{\"ts\":\"bad\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run("sensors/p", bad[i], -1, GW_DEC_BAD_TS, &s);
    }
}

static void test_json_names(void **state) {
    (void)state;
    sink s;
    char payload[1024];
    char key[GW_NAME_MAX + 2];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    snprintf(payload, sizeof(payload), "{\"%s\":1}", key); /* 129 bytes */
    run("sensors/p", payload, -1, GW_DEC_BAD_NAME, &s);
    key[GW_NAME_MAX] = '\0';
    snprintf(payload, sizeof(payload), "{\"%s\":1}", key); /* 128 bytes */
    run("sensors/p", payload, 1, GW_DEC_OK, &s);
    expect_reading(&s, 0, "p", key, ARRIVAL, 1);
    /* With the topic prefix "m." the same key no longer fits. */
    run("sensors/p/m", payload, -1, GW_DEC_BAD_NAME, &s);
    /* Nested names: 64 + '.' + 64 = 129. */
    key[64] = '\0';
    snprintf(payload, sizeof(payload), "{\"%s\":{\"%s\":1}}", key, key);
    run("sensors/p", payload, -1, GW_DEC_BAD_NAME, &s);
    /* A long path without numbers below is harmless. */
    snprintf(payload, sizeof(payload), "{\"%s\":{\"%s\":\"x\"},\"a\":1}", key, key);
    run("sensors/p", payload, 1, GW_DEC_OK, &s);
    /* Empty field names. */
    run("sensors/p", "{\"\":1}", -1, GW_DEC_BAD_NAME, &s);
    run("sensors/p", "{\"a\":{\"\":1}}", -1, GW_DEC_BAD_NAME, &s);
    run("sensors/p", "{\"\":{\"b\":1}}", -1, GW_DEC_BAD_NAME, &s);
    run("sensors/p/m", "{\"\":1}", -1, GW_DEC_BAD_NAME, &s);
    run("sensors/p", "{\"\":\"x\",\"a\":1}", 1, GW_DEC_OK, &s);
}

static void test_limits_and_callback(void **state) {
    (void)state;
    sink s;
    char payload[1024];
    size_t n = 0;
    n += (size_t)snprintf(payload + n, sizeof(payload) - n, "{");
    for (size_t i = 0; i < dec.max_readings; i++) {
        n += (size_t)snprintf(payload + n, sizeof(payload) - n, "%s\"m%zu\":%zu", i ? "," : "", i,
                              i);
    }
    snprintf(payload + n, sizeof(payload) - n, "}");
    run("sensors/p", payload, (int)dec.max_readings, GW_DEC_OK, &s);
    expect_reading(&s, 15, "p", "m15", ARRIVAL, 15);
    /* One more is too many, and nothing is emitted. */
    snprintf(payload + n, sizeof(payload) - n, ",\"x\":1}");
    run("sensors/p", payload, -1, GW_DEC_TOO_MANY, &s);

    /* A callback that returns non-zero stops decoding. */
    gw_decode_reason reason = GW_DEC_REASON_COUNT;
    memset(&s, 0, sizeof(s));
    s.stop_at = 2;
    const char *three = "{\"a\":1,\"b\":2,\"c\":3}";
    assert_int_equal(
        gw_decode(&dec, "sensors/p", 9, three, strlen(three), ARRIVAL, on_reading, &s, &reason),
        -2);
    assert_int_equal(s.n, 2);
    assert_int_equal(reason, GW_DEC_OK);
    memset(&s, 0, sizeof(s));
    s.stop_at = 1;
    assert_int_equal(gw_decode(&dec, "sensors/p/t", 11, "5", 1, ARRIVAL, on_reading, &s, &reason),
                     -2);
    assert_int_equal(s.n, 1);

    /* A NULL reason pointer is allowed. */
    memset(&s, 0, sizeof(s));
    assert_int_equal(gw_decode(&dec, "sensors/p/t", 11, "5", 1, ARRIVAL, on_reading, &s, NULL), 1);
    assert_int_equal(gw_decode(&dec, "x", 1, "5", 1, ARRIVAL, on_reading, &s, NULL), -1);

    /* max_readings 0 accepts nothing. */
    gw_decoder none = dec;
    none.max_readings = 0;
    assert_int_equal(gw_decode(&none, "sensors/p/t", 11, "5", 1, ARRIVAL, on_reading, &s, &reason),
                     -1);
    assert_int_equal(reason, GW_DEC_TOO_MANY);
}

static void test_senml_rfc8428_examples(void **state) {
    (void)state;
    sink s;
    /* 5.1.1 Single Datapoint */
    run("sensors/dev", "[{\"n\":\"urn:dev:ow:10e2073a01080063\",\"u\":\"Cel\",\"v\":23.1}]", 1,
        GW_DEC_OK, &s);
    expect_reading(&s, 0, "dev", "urn:dev:ow:10e2073a01080063", ARRIVAL, 23.1);

    /* 5.1.2 Multiple Datapoints, time "now" */
    run("sensors/dev",
        "[{\"bn\":\"urn:dev:ow:10e2073a01080063:\",\"n\":\"voltage\",\"u\":\"V\",\"v\":120.1},"
        "{\"n\":\"current\",\"u\":\"A\",\"v\":1.2}]",
        2, GW_DEC_OK, &s);
    expect_reading(&s, 0, "dev", "urn:dev:ow:10e2073a01080063:voltage", ARRIVAL, 120.1);
    expect_reading(&s, 1, "dev", "urn:dev:ow:10e2073a01080063:current", ARRIVAL, 1.2);

    /* 5.1.2 with base time and relative offsets */
    run("sensors/dev",
        "[{\"bn\":\"urn:dev:ow:10e2073a01080063:\",\"bt\":1.276020076001e+09,\"bu\":\"A\","
        "\"bver\":5,\"n\":\"voltage\",\"u\":\"V\",\"v\":120.1},"
        "{\"n\":\"current\",\"t\":-5,\"v\":1.2},{\"n\":\"current\",\"t\":-4,\"v\":1.3},"
        "{\"n\":\"current\",\"t\":-3,\"v\":1.4},{\"n\":\"current\",\"t\":-2,\"v\":1.5},"
        "{\"n\":\"current\",\"t\":-1,\"v\":1.6},{\"n\":\"current\",\"v\":1.7}]",
        7, GW_DEC_OK, &s);
    const char *bn = "urn:dev:ow:10e2073a01080063:";
    char name[GW_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%svoltage", bn);
    expect_reading(&s, 0, "dev", name, INT64_C(1276020076001), 120.1);
    snprintf(name, sizeof(name), "%scurrent", bn);
    expect_reading(&s, 1, "dev", name, INT64_C(1276020071001), 1.2);
    expect_reading(&s, 5, "dev", name, INT64_C(1276020075001), 1.6);
    expect_reading(&s, 6, "dev", name, INT64_C(1276020076001), 1.7);

    /* 5.1.4 Multiple Measurements: no "n", the base name is the name */
    run("sensors/dev",
        "[{\"bn\":\"urn:dev:ow:10e2073a01080063\",\"bt\":1.320067464e+09,\"bu\":\"%RH\","
        "\"v\":20},{\"u\":\"lon\",\"v\":24.30621},{\"u\":\"lat\",\"v\":60.07965},"
        "{\"t\":60,\"v\":20.3},{\"u\":\"lon\",\"t\":60,\"v\":24.30622},"
        "{\"u\":\"lat\",\"t\":60,\"v\":60.07965},{\"t\":120,\"v\":20.7},"
        "{\"u\":\"lon\",\"t\":120,\"v\":24.30623},{\"u\":\"lat\",\"t\":120,\"v\":60.07966},"
        "{\"u\":\"%EL\",\"t\":150,\"v\":98},{\"t\":180,\"v\":21.2},"
        "{\"u\":\"lon\",\"t\":180,\"v\":24.30628},{\"u\":\"lat\",\"t\":180,\"v\":60.07967}]",
        13, GW_DEC_OK, &s);
    expect_reading(&s, 0, "dev", "urn:dev:ow:10e2073a01080063", INT64_C(1320067464000), 20);
    expect_reading(&s, 3, "dev", "urn:dev:ow:10e2073a01080063", INT64_C(1320067524000), 20.3);
    expect_reading(&s, 9, "dev", "urn:dev:ow:10e2073a01080063", INT64_C(1320067614000), 98);
    expect_reading(&s, 12, "dev", "urn:dev:ow:10e2073a01080063", INT64_C(1320067644000), 60.07967);

    /* 5.1.6 Multiple Data Types: only the numeric record is a reading */
    run("sensors/dev",
        "[{\"bn\":\"urn:dev:ow:10e2073a01080063:\",\"n\":\"temp\",\"u\":\"Cel\",\"v\":23.1},"
        "{\"n\":\"label\",\"vs\":\"Machine Room\"},{\"n\":\"open\",\"vb\":false},"
        "{\"n\":\"nfv-reader\",\"vd\":\"aGkgCg\"}]",
        1, GW_DEC_OK, &s);
    expect_reading(&s, 0, "dev", "urn:dev:ow:10e2073a01080063:temp", ARRIVAL, 23.1);

    /* 5.1.7 Collection of Resources: later base name and base time */
    run("sensors/dev",
        "[{\"bn\":\"2001:db8::2/\",\"bt\":1.320078429e+09,\"n\":\"temperature\",\"u\":\"Cel\","
        "\"v\":27.2},{\"n\":\"humidity\",\"u\":\"%RH\",\"v\":80},"
        "{\"bn\":\"2001:db8::1/\",\"n\":\"temperature\",\"u\":\"Cel\",\"v\":12.3},"
        "{\"n\":\"humidity\",\"u\":\"%RH\",\"v\":67}]",
        4, GW_DEC_OK, &s);
    expect_reading(&s, 0, "dev", "2001:db8::2/temperature", INT64_C(1320078429000), 27.2);
    expect_reading(&s, 1, "dev", "2001:db8::2/humidity", INT64_C(1320078429000), 80);
    expect_reading(&s, 2, "dev", "2001:db8::1/temperature", INT64_C(1320078429000), 12.3);
    expect_reading(&s, 3, "dev", "2001:db8::1/humidity", INT64_C(1320078429000), 67);
}

static void test_senml_rules(void **state) {
    (void)state;
    sink s;
    /* Relative times (< 2^28 s) count from arrival; bv adds to v. */
    run("sensors/d", "[{\"bn\":\"x\",\"bv\":100,\"v\":1,\"t\":-1.5},{\"v\":2,\"t\":10}]", 2,
        GW_DEC_OK, &s);
    expect_reading(&s, 0, "d", "x", ARRIVAL - 1500, 101);
    expect_reading(&s, 1, "d", "x", ARRIVAL + 10000, 102);
    /* 2^28 - 1 is relative, 2^28 absolute. */
    run("sensors/d",
        "[{\"n\":\"a\",\"t\":268435455,\"v\":1},{\"n\":\"b\",\"t\":268435456,\"v\":1}]", 2,
        GW_DEC_OK, &s);
    expect_reading(&s, 0, "d", "a", ARRIVAL + INT64_C(268435455000), 1);
    expect_reading(&s, 1, "d", "b", INT64_C(268435456000), 1);
    /* The topic metric prefixes SenML names. */
    run("sensors/d/pack", "[{\"bn\":\"dev/\",\"n\":\"t\",\"v\":1}]", 1, GW_DEC_OK, &s);
    expect_reading(&s, 0, "d", "pack.dev/t", ARRIVAL, 1);
    /* Base-only and sum-only records are not readings; unknown fields are ignored. */
    run("sensors/d",
        "[{\"bn\":\"a/\",\"bt\":1.7e9},{\"n\":\"s\",\"s\":5},{\"n\":\"v\",\"v\":1,"
        "\"foo\":\"bar\",\"ut\":60}]",
        1, GW_DEC_OK, &s);
    expect_reading(&s, 0, "d", "a/v", INT64_C(1700000000000), 1);

    /* Not numeric. */
    run("sensors/d", "[]", -1, GW_DEC_NOT_NUMERIC, &s);
    run("sensors/d", "[{\"n\":\"a\",\"vs\":\"x\"},{\"n\":\"b\",\"vb\":true}]", -1,
        GW_DEC_NOT_NUMERIC, &s);
    /* Bad shape. */
    static const char *const malformed[] = {
        "[1,2]",
        "[{\"n\":\"a\",\"v\":1},2]",
        "[[]]",
        "[{\"n\":1,\"v\":1}]",
        "[{\"n\":\"a\",\"v\":\"1\"}]",
        "[{\"n\":\"a\",\"v\":true}]",
        "[{\"bn\":null,\"n\":\"a\",\"v\":1}]",
        "[{\"n\":\"a\",\"t\":\"2024-05-01T12:00:00Z\",\"v\":1}]",
        "[{\"n\":\"a\",\"vb\":1}]",
        "[{\"n\":\"a\",\"v\":1,\"vs\":\"x\"}]",
        "[{\"n\":\"a\",\"v\":1,\"v\":2}]",
        "[{\"n\":\"a\",\"v\":1,\"crit_\":1}]",
        "[{\"n\":\"a\",\"v\":1,\"bver\":11}]",
        "[{\"n\":\"a\",\"v\":1}",
        "[{\"n\":\"a\",\"v\":1}]]",
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        run("sensors/d", malformed[i], -1, GW_DEC_MALFORMED, &s);
    }
    /* Names. */
    run("sensors/d", "[{\"v\":1}]", -1, GW_DEC_BAD_NAME, &s);
    run("sensors/d", "[{\"bn\":\"\",\"n\":\"\",\"v\":1}]", -1, GW_DEC_BAD_NAME, &s);
    run("sensors/d/m", "[{\"v\":1}]", -1, GW_DEC_BAD_NAME, &s);
    char payload[512];
    char n[GW_NAME_MAX + 1];
    memset(n, 'n', 100);
    n[100] = '\0';
    snprintf(payload, sizeof(payload), "[{\"bn\":\"%.28s\",\"n\":\"%s\",\"v\":1}]", n, n);
    run("sensors/d", payload, 1, GW_DEC_OK, &s); /* 128 */
    snprintf(payload, sizeof(payload), "[{\"bn\":\"%.29s\",\"n\":\"%s\",\"v\":1}]", n, n);
    run("sensors/d", payload, -1, GW_DEC_BAD_NAME, &s); /* 129 */
    /* Time and value range. */
    run("sensors/d", "[{\"n\":\"a\",\"t\":1e12,\"v\":1}]", -1, GW_DEC_BAD_TS, &s);
    run("sensors/d", "[{\"n\":\"a\",\"bt\":1e308,\"t\":1e308,\"v\":1}]", -1, GW_DEC_BAD_TS, &s);
    run("sensors/d", "[{\"n\":\"a\",\"t\":-1e300,\"v\":1}]", -1, GW_DEC_BAD_TS, &s);
    run("sensors/d", "[{\"n\":\"a\",\"bv\":1e308,\"v\":1e308}]", -1, GW_DEC_NONFINITE, &s);
    run("sensors/d", "[{\"n\":\"a\",\"v\":1},{\"n\":\"b\",\"v\":1e999}]", -1, GW_DEC_NONFINITE, &s);
    /* Too many records. */
    size_t len = 0;
    len += (size_t)snprintf(payload + len, sizeof(payload) - len, "[{\"bn\":\"x\",\"v\":0}");
    for (size_t i = 1; i <= dec.max_readings; i++) {
        len += (size_t)snprintf(payload + len, sizeof(payload) - len, ",{\"v\":%zu}", i);
    }
    snprintf(payload + len, sizeof(payload) - len, "]");
    run("sensors/d", payload, -1, GW_DEC_TOO_MANY, &s);
}

static void test_rfc3339_parse(void **state) {
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2024-05-01T12:00:00Z", INT64_C(1714564800000)},
        {"2024-05-01t12:00:00z", INT64_C(1714564800000)},
        {"2024-05-01 12:00:00Z", INT64_C(1714564800000)},
        {"2024-05-01T12:00:00+00:00", INT64_C(1714564800000)},
        {"2024-05-01T12:00:00-00:00", INT64_C(1714564800000)},
        {"2024-05-01T12:00:00.123+02:00", INT64_C(1714557600123)},
        {"2024-05-01T12:00:00-05:30", INT64_C(1714584600000)},
        {"2024-05-01T12:00:00.1Z", INT64_C(1714564800100)},
        {"2024-05-01T12:00:00.12Z", INT64_C(1714564800120)},
        {"2024-05-01T12:00:00.999999999999Z", INT64_C(1714564800999)},
        {"2024-02-29T00:00:00Z", INT64_C(1709164800000)},
        {"2000-02-29T00:00:00Z", INT64_C(951782400000)},
        {"2023-11-14T22:13:20.123Z", INT64_C(1700000000123)},
        {"2016-12-31T23:59:60Z", INT64_C(1483228800000)}, /* leap second */
        {"9999-12-31T23:59:59.999Z", INT64_C(253402300799999)},
        {"1969-12-31T23:59:59.999Z", -1},
        {"0000-01-01T00:00:00Z", INT64_C(-62167219200000)},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ms = 42;
        if (gw_parse_rfc3339(ok[i].s, strlen(ok[i].s), &ms) != 0 || ms != ok[i].ms) {
            fail_msg("'%s': got %lld, want %lld", ok[i].s, (long long)ms, (long long)ok[i].ms);
        }
    }
    static const char *const bad[] = {
        "",
        "2024-05-01",
        "2024-05-01T12:00:00",
        "2024-05-01T12:00Z",
        "2024-05-01T12:00:00.Z",
        "2024-05-01T12:00:00+0200",
        "2024-05-01T12:00:00+02",
        "2024-05-01T12:00:00+24:00",
        "2024-05-01T12:00:00+02:60",
        "2024-05-01T12:00:00ZZ",
        "2024-05-01T12:00:00Z ",
        " 2024-05-01T12:00:00Z",
        "2024-5-01T12:00:00Z",
        "2024-05-1T12:00:00Z",
        "2024/05/01T12:00:00Z",
        "2024-05-01X12:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-00-10T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-05-00T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2024-05-01T24:00:00Z",
        "2024-05-01T12:60:00Z",
        "2024-05-01T12:00:61Z",
        "+2024-05-01T12:00:00Z",
        "20240501T120000Z",
        "2024-05-01T12:00:00,5Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 42;
        if (gw_parse_rfc3339(bad[i], strlen(bad[i]), &ms) != -1 || ms != 42) {
            fail_msg("'%s' should be rejected", bad[i]);
        }
    }
    /* Only len bytes are read. */
    int64_t ms = 0;
    assert_int_equal(gw_parse_rfc3339("2024-05-01T12:00:00Zjunk", 20, &ms), 0);
    assert_int_equal(ms, INT64_C(1714564800000));
    assert_int_equal(gw_parse_rfc3339("2024-05-01T12:00:00Z", 19, &ms), -1);
    assert_int_equal(gw_parse_rfc3339(NULL, 0, &ms), -1);
}

static void test_rfc3339_format(void **state) {
    (void)state;
    char buf[25];
    assert_string_equal(gw_format_rfc3339(0, buf, sizeof(buf)), "1970-01-01T00:00:00.000Z");
    assert_string_equal(gw_format_rfc3339(INT64_C(1714557600123), buf, sizeof(buf)),
                        "2024-05-01T10:00:00.123Z");
    assert_string_equal(gw_format_rfc3339(-1, buf, sizeof(buf)), "1969-12-31T23:59:59.999Z");
    assert_string_equal(gw_format_rfc3339(INT64_C(951782400000), buf, sizeof(buf)),
                        "2000-02-29T00:00:00.000Z");
    assert_string_equal(gw_format_rfc3339(INT64_C(253402300799999), buf, sizeof(buf)),
                        "9999-12-31T23:59:59.999Z");
    char small[11];
    assert_string_equal(gw_format_rfc3339(0, small, sizeof(small)), "1970-01-01");
    assert_ptr_equal(gw_format_rfc3339(0, small, 0), small);

    /* Round trip over four centuries, on a stride that hits every field. */
    for (int64_t ms = INT64_C(-2208988800000); ms < INT64_C(10413792000000);
         ms += INT64_C(86399999) * 7 + 13) {
        int64_t back = 0;
        gw_format_rfc3339(ms, buf, sizeof(buf));
        if (gw_parse_rfc3339(buf, strlen(buf), &back) != 0 || back != ms) {
            fail_msg("%lld -> %s -> %lld", (long long)ms, buf, (long long)back);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason_names),
        cmocka_unit_test(test_plain_numbers),
        cmocka_unit_test(test_plain_number_locale),
        cmocka_unit_test(test_routing_and_names),
        cmocka_unit_test(test_size_and_utf8),
        cmocka_unit_test(test_json_object),
        cmocka_unit_test(test_json_ts),
        cmocka_unit_test(test_json_names),
        cmocka_unit_test(test_limits_and_callback),
        cmocka_unit_test(test_senml_rfc8428_examples),
        cmocka_unit_test(test_senml_rules),
        cmocka_unit_test(test_rfc3339_parse),
        cmocka_unit_test(test_rfc3339_format),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
