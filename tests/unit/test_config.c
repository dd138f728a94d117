/* Unit tests of the configuration: defaults, every option type, errors with their paths,
 * comments, rules, subscriptions, the bundled example and the generated reference. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* ---- helpers ---- */

static gw_config *new_cfg(void) {
    gw_config *c = malloc(sizeof *c);
    assert_non_null(c);
    gw_config_defaults(c);
    return c;
}

static int parse(gw_config *c, const char *text, char *err, size_t errlen) {
    return gw_config_parse(c, text, strlen(text), err, errlen);
}

/* Parses text into a fresh config and expects success. */
static gw_config *parse_ok(const char *text) {
    char err[256] = "";
    gw_config *c = new_cfg();
    int rc = parse(c, text, err, sizeof err);
    if (rc != 0) {
        print_error("unexpected error for %s: %s\n", text, err);
    }
    assert_int_equal(rc, 0);
    return c;
}

/* Expects the text to fail with exactly `want`. */
static void expect_error(const char *text, const char *want) {
    char err[256] = "";
    gw_config *c = new_cfg();
    int rc = parse(c, text, err, sizeof err);
    if (rc != -EINVAL || strcmp(err, want) != 0) {
        print_error("for %s\n  want: %s\n  got:  %s (rc %d)\n", text, want, err, rc);
    }
    assert_int_equal(rc, -EINVAL);
    assert_string_equal(err, want);
    free(c);
}

/* A file of the source tree (IOTGW_SOURCE_DIR: set by tests/unit/CMakeLists.txt). */
static void repo_path(char *out, size_t n, const char *rel) {
    snprintf(out, n, "%s%s", IOTGW_SOURCE_DIR, rel);
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* ---- defaults ---- */

static void test_defaults(void **state) {
    (void)state;
    gw_config *c = new_cfg();
    assert_string_equal(c->gateway_id, "iotgw");
    assert_string_equal(c->mqtt.host, "127.0.0.1");
    assert_int_equal(c->mqtt.port, 1883);
    assert_string_equal(c->mqtt.client_id, "iotgw-iotgw");
    assert_int_equal(c->mqtt.keepalive_s, 30);
    assert_int_equal(c->mqtt.qos, 1);
    assert_int_equal(c->n_subs, 1);
    assert_string_equal(c->subs[0].topic, "sensors/+/+");
    assert_string_equal(c->subs[0].sensor, "{1}");
    assert_string_equal(c->subs[0].metric, "{2}");
    assert_string_equal(c->output.prefix, "iotgw");
    assert_string_equal(c->storage.path, "iotgw.db");
    assert_true(c->storage.raw);
    assert_int_equal(c->storage.batch_rows, 5000);
    assert_int_equal(c->storage.tick_ms, 100);
    assert_int_equal(c->pipeline.workers, 2);
    assert_int_equal(c->pipeline.queue_items, 4096);
    assert_int_equal(c->pipeline.queue_bytes, 4 * 1024 * 1024);
    assert_int_equal(c->pipeline.ingest_wait_ms, 2000);
    assert_int_equal(c->pipeline.overflow, GW_OVERFLOW_DROP_NEWEST);
    assert_int_equal(c->pipeline.max_payload, 65536);
    assert_int_equal(c->pipeline.max_series, 1000000);
    assert_string_equal(c->log.level, "info");
    assert_int_equal(c->n_rules, 0);

    /* An empty object (and only comments around it) gives exactly the defaults. */
    gw_config *p = parse_ok("// nothing here\n{ /* at all */ }\n");
    assert_memory_equal(c, p, sizeof *c);
    free(p);
    free(c);
}

static void test_client_id(void **state) {
    (void)state;
    gw_config *c = parse_ok("{\"gateway_id\": \"plant-7\"}");
    assert_string_equal(c->mqtt.client_id, "iotgw-plant-7");
    free(c);
    c = parse_ok("{\"gateway_id\": \"plant-7\", \"mqtt\": {\"client_id\": \"mine\"}}");
    assert_string_equal(c->mqtt.client_id, "mine");
    free(c);
    expect_error("{\"gateway_id\": \"a/b\"}",
                 "gateway_id: must be one topic level: not empty, no '/', '+' or '#'");
    expect_error("{\"gateway_id\": \"\"}",
                 "gateway_id: must be one topic level: not empty, no '/', '+' or '#'");
    /* 63 bytes fit gateway_id but not "iotgw-" + it in client_id. */
    char text[256];
    snprintf(text, sizeof text, "{\"gateway_id\": \"%063d\"}", 0);
    expect_error(text, "mqtt.client_id: the default \"iotgw-<gateway_id>\" is longer than 63 "
                       "bytes; set it");
    snprintf(text, sizeof text, "{\"gateway_id\": \"%063d\", \"mqtt\": {\"client_id\": \"x\"}}", 0);
    free(parse_ok(text));
}

/* ---- every option lands where it should ---- */

static void test_all_options(void **state) {
    (void)state;
    gw_config *c = parse_ok("{\n"
                            "  \"gateway_id\": \"gw1\",\n"
                            "  \"mqtt\": {\"host\": \"broker.lan\", \"port\": 8883,\n"
                            "           \"client_id\": \"cid\", \"keepalive_s\": 60, \"qos\": 0},\n"
                            "  \"output\": {\"prefix\": \"plant/iotgw\"},\n"
                            "  \"storage\": {\"path\": \"/var/lib/iotgw/h.db\", \"raw\": false,\n"
                            "              \"batch_rows\": 10, \"tick_ms\": 250},\n"
                            "  \"pipeline\": {\"workers\": 4, \"queue_items\": 100,\n"
                            "               \"queue_bytes\": 8589934592, \"ingest_wait_ms\": 0,\n"
                            "               \"overflow\": \"block\", \"max_payload\": 1024,\n"
                            "               \"max_series\": 50},\n"
                            "  \"log\": {\"level\": \"debug\"}\n"
                            "}");
    assert_string_equal(c->gateway_id, "gw1");
    assert_string_equal(c->mqtt.host, "broker.lan");
    assert_int_equal(c->mqtt.port, 8883);
    assert_string_equal(c->mqtt.client_id, "cid");
    assert_int_equal(c->mqtt.keepalive_s, 60);
    assert_int_equal(c->mqtt.qos, 0);
    assert_string_equal(c->output.prefix, "plant/iotgw");
    assert_string_equal(c->storage.path, "/var/lib/iotgw/h.db");
    assert_false(c->storage.raw);
    assert_int_equal(c->storage.batch_rows, 10);
    assert_int_equal(c->storage.tick_ms, 250);
    assert_int_equal(c->pipeline.workers, 4);
    assert_int_equal(c->pipeline.queue_items, 100);
    assert_true(c->pipeline.queue_bytes == 8589934592LL);
    assert_int_equal(c->pipeline.ingest_wait_ms, 0);
    assert_int_equal(c->pipeline.overflow, GW_OVERFLOW_BLOCK);
    assert_int_equal(c->pipeline.max_payload, 1024);
    assert_int_equal(c->pipeline.max_series, 50);
    assert_string_equal(c->log.level, "debug");
    free(c);
}

/* ---- type errors, each with its path ---- */

static void test_type_errors(void **state) {
    (void)state;
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"{\"gateway_id\": 5}", "gateway_id: expected a string"},
        {"{\"mqtt\": {\"host\": null}}", "mqtt.host: expected a string"},
        {"{\"mqtt\": {\"port\": \"1883\"}}", "mqtt.port: expected an integer"},
        {"{\"mqtt\": {\"port\": 1883.5}}", "mqtt.port: expected an integer"},
        {"{\"pipeline\": {\"queue_bytes\": true}}", "pipeline.queue_bytes: expected an integer"},
        {"{\"storage\": {\"raw\": 1}}", "storage.raw: expected true or false"},
        {"{\"storage\": {\"raw\": \"true\"}}", "storage.raw: expected true or false"},
        {"{\"pipeline\": {\"overflow\": \"drop\"}}",
         "pipeline.overflow: expected one of drop_newest, block"},
        {"{\"pipeline\": {\"overflow\": 0}}",
         "pipeline.overflow: expected one of drop_newest, block"},
        {"{\"log\": {\"level\": \"verbose\"}}",
         "log.level: expected one of debug, info, warn, error"},
        {"{\"rules\": [{\"above\": 1}, {\"above\": 2}, {\"above\": \"3\"}]}",
         "rules[2].above: expected a number"},
        {"{\"rules\": [{\"above\": 1e999}]}", "rules[0].above: expected a number"},
        {"{\"rules\": [{\"above\": 1, \"for\": \"soon\"}]}",
         "rules[0].for: expected a duration: seconds, or a string like \"500ms\", \"30s\", "
         "\"5m\", \"2h\", \"1d\""},
        {"{\"rules\": [{\"above\": 1, \"clear_for\": -1}]}",
         "rules[0].clear_for: expected a duration: seconds, or a string like \"500ms\", "
         "\"30s\", \"5m\", \"2h\", \"1d\""},
        {"{\"rules\": [{\"above\": 1, \"severity\": \"fatal\"}]}",
         "rules[0].severity: expected one of info, warning, critical"},
        {"{\"rules\": [{\"above\": 1, \"name\": []}]}", "rules[0].name: expected a string"},
        {"{\"rules\": [{\"rate_above\": \"5\"}]}", "rules[0].rate_above: expected a number"},
        {"{\"rules\": [{\"rate_above\": null}]}", "rules[0].rate_above: expected a number"},
        {"{\"rules\": [{\"stale_after\": \"soon\"}]}",
         "rules[0].stale_after: expected a duration: seconds, or a string like \"500ms\", "
         "\"30s\", \"5m\", \"2h\", \"1d\""},
        {"{\"rules\": [{\"stale_after\": true}]}",
         "rules[0].stale_after: expected a duration: seconds, or a string like \"500ms\", "
         "\"30s\", \"5m\", \"2h\", \"1d\""},
        {"{\"mqtt\": 1}", "mqtt: expected an object"},
        {"{\"storage\": []}", "storage: expected an object"},
        {"{\"rules\": {}}", "rules: expected an array"},
        {"{\"rules\": [5]}", "rules[0]: expected an object"},
        {"{\"subscriptions\": \"sensors/#\"}", "subscriptions: expected an array"},
        {"{\"subscriptions\": [{\"topic\": 1}]}", "subscriptions[0].topic: expected a string"},
        {"[1, 2]", "the configuration must be a JSON object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        expect_error(cases[i].text, cases[i].err);
    }
}

static void test_string_limits(void **state) {
    (void)state;
    char text[600], name[300];
    memset(name, 'h', 255);
    name[255] = '\0';
    snprintf(text, sizeof text, "{\"mqtt\": {\"host\": \"%s\"}}", name);
    gw_config *c = parse_ok(text);
    assert_int_equal(strlen(c->mqtt.host), 255);
    free(c);
    snprintf(text, sizeof text, "{\"mqtt\": {\"host\": \"%sh\"}}", name);
    expect_error(text, "mqtt.host: longer than 255 bytes");
    snprintf(text, sizeof text, "{\"rules\": [{\"above\": 1, \"name\": \"%.64s\"}]}", name);
    expect_error(text, "rules[0].name: longer than 63 bytes");
    expect_error("{\"mqtt\": {\"host\": \"\"}}", "mqtt.host: must not be empty");
    expect_error("{\"storage\": {\"path\": \"\"}}", "storage.path: must not be empty");
    expect_error("{\"output\": {\"prefix\": \"a/#\"}}",
                 "output.prefix: must be a topic without wildcards, not starting or ending "
                 "with '/'");
    expect_error("{\"output\": {\"prefix\": \"a/\"}}",
                 "output.prefix: must be a topic without wildcards, not starting or ending "
                 "with '/'");
    expect_error("{\"rules\": [{\"above\": 1, \"sensor\": \"\"}]}",
                 "rules[0].sensor: must not be empty");
}

/* ---- comments and malformed JSON ---- */

static void test_comments(void **state) {
    (void)state;
    gw_config *c = parse_ok("// leading comment\n"
                            "{\n"
                            "  /* block\n"
                            "     over lines */ \"gateway_id\": \"a\", // trailing\n"
                            "  \"mqtt\": {\"host\": \"http://x/*y*/z\"}, /**/\n"
                            "  \"storage\": {\"path\": \"//not a comment\"},\n"
                            "  \"output\": {\"prefix\": \"q\\\"//still/string\"}\n"
                            "} // after\n"
                            "/* and a last block */");
    assert_string_equal(c->gateway_id, "a");
    assert_string_equal(c->mqtt.host, "http://x/*y*/z");
    assert_string_equal(c->storage.path, "//not a comment");
    assert_string_equal(c->output.prefix, "q\"//still/string");
    free(c);

    /* Comments keep their newlines, so errors name the right line. */
    expect_error("/* one\n two\n three */ {\n \"mqtt\": {\"port\": 1,,}\n}",
                 "line 4: malformed JSON");
    expect_error("{\n// x\n\"a\": 1 /* oops\n}\n", "line 3: unterminated comment");
    /* A comment ends at the end of its line, not at the end of the file. */
    free(parse_ok("{// x\n}"));
    /* A lone slash is not a comment. */
    expect_error("{\n / \n}", "line 2: malformed JSON");
}

static void test_malformed(void **state) {
    (void)state;
    expect_error("{\n  \"mqtt\": {\n    \"port\": 1883\n    \"host\": \"x\"\n  }\n}",
                 "line 4: malformed JSON");
    expect_error("", "no JSON object: the text is empty or only comments");
    expect_error("// only a comment\n", "no JSON object: the text is empty or only comments");
    expect_error("{\"a\": \"never closed\n}", "line 1: malformed JSON");
    expect_error("{}\n\n{}", "line 3: unexpected text after the JSON object");
    free(parse_ok("\n  {}  \n\n"));

    /* The text need not be NUL-terminated: only len bytes are read. */
    const char text[] = "{\"gateway_id\": \"abc\"}garbage";
    char err[128];
    gw_config *c = new_cfg();
    assert_int_equal(gw_config_parse(c, text, 21, err, sizeof err), 0);
    assert_string_equal(c->gateway_id, "abc");
    /* A NUL byte inside the text is an error, not an early end. */
    const char nul[] = "{\n\"gateway_id\": \"a\0b\"}";
    assert_int_equal(gw_config_parse(c, nul, sizeof nul - 1, err, sizeof err), -EINVAL);
    assert_string_equal(err, "line 2: NUL byte");
    free(c);
}

/* ---- unknown and duplicate keys at every level ---- */

static void test_unknown_keys(void **state) {
    (void)state;
    expect_error("{\"gatway_id\": \"x\"}", "gatway_id: unknown key");
    expect_error("{\"mqtt\": {\"prot\": 1}}", "mqtt.prot: unknown key");
    expect_error("{\"output\": {\"Prefix\": \"x\"}}", "output.Prefix: unknown key");
    expect_error("{\"storage\": {\"raw\": true, \"rows\": 1}}", "storage.rows: unknown key");
    expect_error("{\"pipeline\": {\"threads\": 1}}", "pipeline.threads: unknown key");
    expect_error("{\"log\": {\"file\": \"x\"}}", "log.file: unknown key");
    expect_error("{\"subscriptions\": [{\"topic\": \"a/+\"}, {\"topic\": \"b/+\", \"qos\": 1}]}",
                 "subscriptions[1].qos: unknown key");
    expect_error("{\"rules\": [{\"above\": 1}, {\"above\": 1, \"abov\": 2}]}",
                 "rules[1].abov: unknown key");
    expect_error("{\"mqtt\": {\"port\": 1, \"port\": 2}}", "mqtt.port: duplicate key");
    expect_error("{\"log\": {}, \"log\": {}}", "log: duplicate key");
}

/* ---- bounds ---- */

static void test_bounds(void **state) {
    (void)state;
    gw_config *c = parse_ok("{\"mqtt\": {\"port\": 65535, \"keepalive_s\": 5}, "
                            "\"pipeline\": {\"workers\": 64, \"queue_bytes\": 1024}}");
    assert_int_equal(c->mqtt.port, 65535);
    assert_int_equal(c->mqtt.keepalive_s, 5);
    assert_int_equal(c->pipeline.workers, 64);
    assert_int_equal(c->pipeline.queue_bytes, 1024);
    free(c);
    c = parse_ok("{\"mqtt\": {\"port\": 1.0e3}}"); /* an integral value in any notation */
    assert_int_equal(c->mqtt.port, 1000);
    free(c);

    expect_error("{\"mqtt\": {\"port\": 70000}}", "mqtt.port: 70000 is out of range 1..65535");
    expect_error("{\"mqtt\": {\"port\": 0}}", "mqtt.port: 0 is out of range 1..65535");
    expect_error("{\"mqtt\": {\"port\": -1}}", "mqtt.port: -1 is out of range 1..65535");
    expect_error("{\"mqtt\": {\"qos\": 2}}", "mqtt.qos: 2 is out of range 0..1");
    expect_error("{\"mqtt\": {\"keepalive_s\": 4}}", "mqtt.keepalive_s: 4 is out of range 5..3600");
    expect_error("{\"pipeline\": {\"workers\": 65}}", "pipeline.workers: 65 is out of range 1..64");
    expect_error("{\"pipeline\": {\"workers\": 1e30}}",
                 "pipeline.workers: 1e+30 is out of range 1..64");
    expect_error("{\"pipeline\": {\"queue_bytes\": 1023}}",
                 "pipeline.queue_bytes: 1023 is out of range 1024..17179869184");
    expect_error("{\"pipeline\": {\"ingest_wait_ms\": 60001}}",
                 "pipeline.ingest_wait_ms: 60001 is out of range 0..60000");
    expect_error("{\"storage\": {\"batch_rows\": 0}}",
                 "storage.batch_rows: 0 is out of range 1..1000000");
    expect_error("{\"rules\": [{\"above\": 1, \"for\": \"31d\"}]}",
                 "rules[0].for: 31d is out of range 0..30d");
    /* Limits that must be positive. */
    expect_error("{\"rules\": [{\"rate_above\": 0}]}", "rules[0].rate_above: must be > 0, not 0");
    expect_error("{\"rules\": [{\"above\": 1}, {\"rate_above\": -2.5}]}",
                 "rules[1].rate_above: must be > 0, not -2.5");
    expect_error("{\"rules\": [{\"stale_after\": 0}]}",
                 "rules[0].stale_after: 0 is out of range 1ms..30d");
    expect_error("{\"rules\": [{\"stale_after\": \"0ms\"}]}",
                 "rules[0].stale_after: 0 is out of range 1ms..30d");
    expect_error("{\"rules\": [{\"stale_after\": 0.0004}]}",
                 "rules[0].stale_after: 0 is out of range 1ms..30d");
    expect_error("{\"rules\": [{\"stale_after\": \"31d\"}]}",
                 "rules[0].stale_after: 31d is out of range 1ms..30d");
    gw_config *r = parse_ok("{\"rules\": [{\"stale_after\": \"1ms\", \"rate_above\": 1e-9},"
                            " {\"stale_after\": \"30d\"}]}");
    assert_true(r->rules[0].stale.after_ms == 1);
    assert_true(r->rules[0].rate.above == 1e-9);
    assert_true(r->rules[1].stale.after_ms == 30 * 86400000LL);
    free(r);
}

static void test_enums(void **state) {
    (void)state;
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < 4; i++) {
        char text[64];
        snprintf(text, sizeof text, "{\"log\": {\"level\": \"%s\"}}", levels[i]);
        gw_config *c = parse_ok(text);
        assert_string_equal(c->log.level, levels[i]);
        free(c);
    }
    gw_config *c = parse_ok("{\"pipeline\": {\"overflow\": \"block\"}}");
    assert_int_equal(c->pipeline.overflow, GW_OVERFLOW_BLOCK);
    free(c);
    c = parse_ok("{\"pipeline\": {\"overflow\": \"drop_newest\"}}");
    assert_int_equal(c->pipeline.overflow, GW_OVERFLOW_DROP_NEWEST);
    free(c);
    c = parse_ok("{\"rules\": [{\"above\": 1, \"severity\": \"info\"},"
                 " {\"above\": 1, \"severity\": \"critical\"}, {\"above\": 1}]}");
    assert_int_equal(c->rules[0].threshold.severity, AN_SEV_INFO);
    assert_int_equal(c->rules[1].threshold.severity, AN_SEV_CRITICAL);
    assert_int_equal(c->rules[2].threshold.severity, AN_SEV_WARNING);
    free(c);
    /* Names are case-sensitive. */
    expect_error("{\"pipeline\": {\"overflow\": \"Block\"}}",
                 "pipeline.overflow: expected one of drop_newest, block");
}

/* ---- durations ---- */

static void test_parse_duration(void **state) {
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } good[] = {
        {"0", 0},        {"30", 30000},    {"1.5", 1500},  {"500ms", 500},
        {"30s", 30000},  {"1.5s", 1500},   {"0.25s", 250}, {"5m", 300000},
        {"2h", 7200000}, {"1d", 86400000}, {"0ms", 0},     {"1.5ms", 2},
        {"0.1s", 100},   {"90m", 5400000}, {"007s", 7000}, {"36500d", 3153600000000},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t ms = -7;
        if (gw_parse_duration(good[i].s, &ms) != 0 || ms != good[i].ms) {
            print_error("duration %s -> %lld\n", good[i].s, (long long)ms);
        }
        assert_int_equal(gw_parse_duration(good[i].s, &ms), 0);
        assert_true(ms == good[i].ms);
    }
    static const char *const bad[] = {
        "",      "-1s",
        "-5",    "s",
        "ms",    "5x",
        "5 s",   " 5s",
        "5s ",   "1.s",
        ".5s",   "1e3",
        "0x10",  "inf",
        "nan",   "5S",
        "5sec",  "1.2.3s",
        "+5s",   "5ss",
        "1h30m", "99999999999999999999d",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = -7;
        if (gw_parse_duration(bad[i], &ms) != -1) {
            print_error("duration '%s' accepted\n", bad[i]);
        }
        assert_int_equal(gw_parse_duration(bad[i], &ms), -1);
        assert_true(ms == -7); /* untouched on error */
    }
    int64_t ms;
    assert_int_equal(gw_parse_duration(NULL, &ms), -1);

    /* In the config: a number of seconds (fractions too) or a string. */
    gw_config *c = parse_ok("{\"rules\": [{\"above\": 1, \"for\": 2.5, \"clear_for\": \"1m\"},"
                            " {\"above\": 1, \"for\": 0, \"clear_for\": \"250ms\"}]}");
    assert_true(c->rules[0].threshold.for_ms == 2500);
    assert_true(c->rules[0].threshold.clear_for_ms == 60000);
    assert_true(c->rules[1].threshold.for_ms == 0);
    assert_true(c->rules[1].threshold.clear_for_ms == 250);
    free(c);
}

/* ---- rules ---- */

static void test_rule_defaults(void **state) {
    (void)state;
    gw_config *c = parse_ok("{\"rules\": [{\"above\": 30}, {\"name\": \"dry\", \"below\": 20},"
                            " {\"metric\": \"t*\", \"sensor\": \"pump?\", \"above\": 5,"
                            "  \"below\": -5, \"clear_below\": 4, \"clear_above\": -4.5}]}");
    assert_int_equal(c->n_rules, 3);
    const an_rule *r = &c->rules[0];
    assert_string_equal(r->name, "rules[0]");
    assert_string_equal(r->sensor_glob, "*");
    assert_string_equal(r->metric_glob, "*");
    assert_true(r->threshold.has_above);
    assert_false(r->threshold.has_below);
    assert_true(r->threshold.above == 30);
    assert_true(r->threshold.clear_below == 30);
    assert_true(r->threshold.for_ms == 0);
    assert_true(r->threshold.clear_for_ms == 0);
    assert_int_equal(r->threshold.severity, AN_SEV_WARNING);
    assert_false(r->has_rate);
    assert_false(r->has_stale);

    r = &c->rules[1];
    assert_string_equal(r->name, "dry");
    assert_false(r->threshold.has_above);
    assert_true(r->threshold.has_below);
    assert_true(r->threshold.below == 20);
    assert_true(r->threshold.clear_above == 20);

    r = &c->rules[2];
    assert_string_equal(r->name, "rules[2]");
    assert_string_equal(r->sensor_glob, "pump?");
    assert_string_equal(r->metric_glob, "t*");
    assert_true(r->threshold.clear_below == 4);
    assert_true(r->threshold.clear_above == -4.5);
    free(c);

    /* An empty list is fine: no alerts. */
    c = parse_ok("{\"rules\": []}");
    assert_int_equal(c->n_rules, 0);
    free(c);
}

static void test_rule_validation(void **state) {
    (void)state;
    expect_error("{\"rules\": [{\"name\": \"x\"}]}",
                 "rules[0]: needs above, below, rate_above, stale_after, trend, trend_limit, drift "
                 "or anomaly");
    expect_error("{\"rules\": [{\"above\": 1}, {\"above\": 30, \"clear_below\": 31}]}",
                 "rules[1].clear_below: must be <= above (30)");
    expect_error("{\"rules\": [{\"below\": 2.5, \"clear_above\": 2}]}",
                 "rules[0].clear_above: must be >= below (2.5)");
    expect_error("{\"rules\": [{\"below\": 1, \"clear_below\": 0}]}",
                 "rules[0].clear_below: needs above");
    expect_error("{\"rules\": [{\"above\": 1, \"clear_above\": 3}]}",
                 "rules[0].clear_above: needs below");
    expect_error("{\"rules\": [{\"clear_below\": 1}]}",
                 "rules[0]: needs above, below, rate_above, stale_after, trend, trend_limit, drift "
                 "or anomaly");
    /* Equal levels are allowed (no hysteresis). */
    free(parse_ok("{\"rules\": [{\"above\": 3, \"clear_below\": 3, \"below\": 1, "
                  "\"clear_above\": 1}]}"));

    /* The maximum count, and one more. */
    size_t n = GW_CFG_MAX_RULES + 1, cap = 32 + n * 16;
    char *text = malloc(cap);
    assert_non_null(text);
    for (int round = 0; round < 2; round++) {
        size_t count = round == 0 ? GW_CFG_MAX_RULES : n, used = 0;
        used += (size_t)snprintf(text + used, cap - used, "{\"rules\": [");
        for (size_t i = 0; i < count; i++) {
            used +=
                (size_t)snprintf(text + used, cap - used, "%s{\"above\": %zu}", i ? "," : "", i);
        }
        snprintf(text + used, cap - used, "]}");
        if (round == 0) {
            gw_config *c = parse_ok(text);
            assert_int_equal(c->n_rules, GW_CFG_MAX_RULES);
            assert_string_equal(c->rules[255].name, "rules[255]");
            free(c);
        } else {
            expect_error(text, "rules: needs 0..256 entries, not 257");
        }
    }
    free(text);
}

/* The rate and stale parts, alone and combined with the threshold part. */
/* The predictive-maintenance parts: the detectors' defaults under what the rule gives. */
static void test_rule_pdm_parts(void **state) {
    (void)state;
    gw_config *c = parse_ok("{\"rules\": ["
                            " {\"metric\": \"bearing_temp\", \"trend_limit\": 80,"
                            "  \"horizon\": \"12h\", \"trend_window\": \"3h\","
                            "  \"severity\": \"critical\"},"
                            " {\"trend\": true, \"trend_dir\": \"falling\"},"
                            " {\"drift\": true, \"anomaly\": 0.999, \"refractory\": \"1m\"}]}");
    an_trend_cfg td;
    an_trend_cfg_default(&td);
    const an_rule *r = &c->rules[0];
    assert_true(r->has_trend);
    assert_true(r->trend.has_limit);
    assert_true(r->trend.limit == 80);
    assert_int_equal(r->trend.dir, AN_TREND_RISING);
    assert_true(r->trend.horizon_ms == 12 * 3600000LL);
    assert_true(r->trend.window_ms == 3 * 3600000LL);
    assert_true(r->trend.min_t == td.min_t);
    assert_int_equal(r->trend.severity, AN_SEV_CRITICAL);
    assert_false(r->has_drift);
    assert_false(r->has_anomaly);
    assert_int_equal(an_trend_cfg_check(&r->trend), 0);

    r = &c->rules[1];
    assert_true(r->has_trend);
    assert_false(r->trend.has_limit);
    assert_int_equal(r->trend.dir, AN_TREND_FALLING);
    assert_true(r->trend.window_ms == 6 * 3600000LL);

    an_anomaly_cfg ad;
    an_anomaly_cfg_default(&ad);
    r = &c->rules[2];
    assert_false(r->has_trend);
    assert_true(r->has_drift);
    assert_int_equal(an_drift_cfg_check(&r->drift), 0);
    assert_true(r->has_anomaly);
    assert_true(r->anomaly.sensitivity == 0.999);
    assert_true(r->anomaly.refractory_ms == 60000);
    assert_true(r->anomaly.alpha == ad.alpha);
    assert_int_equal(an_anomaly_cfg_check(&r->anomaly), 0);
    free(c);

    expect_error("{\"rules\": [{\"anomaly\": 1}]}",
                 "rules[0].anomaly: must be between 0 and 1 (exclusive), not 1");
    expect_error("{\"rules\": [{\"anomaly\": \"high\"}]}", "rules[0].anomaly: expected a number");
    expect_error("{\"rules\": [{\"drift\": true, \"refractory\": \"1m\"}]}",
                 "rules[0].refractory: needs anomaly");
    expect_error("{\"rules\": [{\"trend\": true, \"horizon\": \"1h\"}]}",
                 "rules[0].horizon: needs trend_limit");
    expect_error("{\"rules\": [{\"drift\": true, \"trend_dir\": \"rising\"}]}",
                 "rules[0].trend_dir: needs trend or trend_limit");
    expect_error("{\"rules\": [{\"trend\": true, \"trend_dir\": \"up\"}]}",
                 "rules[0].trend_dir: expected one of rising, falling");
    expect_error("{\"rules\": [{\"drift\": false}]}",
                 "rules[0]: needs above, below, rate_above, stale_after, trend, trend_limit, "
                 "drift or anomaly");
}

static void test_rule_rate_stale(void **state) {
    (void)state;
    gw_config *c = parse_ok("{\"rules\": ["
                            " {\"name\": \"jump\", \"metric\": \"temperature\", "
                            "  \"rate_above\": 5, \"severity\": \"info\"},"
                            " {\"sensor\": \"sim-*\", \"stale_after\": \"15s\"},"
                            " {\"above\": 30, \"rate_above\": 0.25, \"stale_after\": 90,"
                            "  \"for\": \"2s\", \"severity\": \"critical\"},"
                            " {\"below\": 1, \"stale_after\": \"500ms\"}]}");
    assert_int_equal(c->n_rules, 4);
    const an_rule *r = &c->rules[0];
    assert_string_equal(r->name, "jump");
    assert_true(r->has_rate);
    assert_true(r->rate.above == 5);
    assert_int_equal(r->rate.severity, AN_SEV_INFO);
    assert_false(r->has_stale);
    assert_false(r->threshold.has_above);
    assert_false(r->threshold.has_below);

    r = &c->rules[1];
    assert_string_equal(r->name, "rules[1]");
    assert_string_equal(r->sensor_glob, "sim-*");
    assert_false(r->has_rate);
    assert_true(r->has_stale);
    assert_true(r->stale.after_ms == 15000);
    assert_int_equal(r->stale.severity, AN_SEV_WARNING);
    assert_false(r->threshold.has_above);

    /* Every part of one rule shares the severity. */
    r = &c->rules[2];
    assert_true(r->threshold.has_above);
    assert_true(r->threshold.above == 30);
    assert_true(r->threshold.for_ms == 2000);
    assert_true(r->has_rate);
    assert_true(r->rate.above == 0.25);
    assert_true(r->has_stale);
    assert_true(r->stale.after_ms == 90000);
    assert_int_equal(r->threshold.severity, AN_SEV_CRITICAL);
    assert_int_equal(r->rate.severity, AN_SEV_CRITICAL);
    assert_int_equal(r->stale.severity, AN_SEV_CRITICAL);

    r = &c->rules[3];
    assert_true(r->threshold.has_below);
    assert_true(r->has_stale);
    assert_true(r->stale.after_ms == 500);
    assert_false(r->has_rate);
    free(c);

    /* for and clear_for belong to the threshold part. */
    expect_error("{\"rules\": [{\"rate_above\": 5, \"for\": \"2s\"}]}",
                 "rules[0].for: needs above or below");
    expect_error("{\"rules\": [{\"above\": 1}, {\"stale_after\": 5, \"clear_for\": 0}]}",
                 "rules[1].clear_for: needs above or below");
    /* clear levels still need their limit. */
    expect_error("{\"rules\": [{\"rate_above\": 5, \"clear_below\": 1}]}",
                 "rules[0].clear_below: needs above");
    expect_error("{\"rules\": [{\"stale_after\": 5, \"clear_above\": 1}]}",
                 "rules[0].clear_above: needs below");
    expect_error("{\"rules\": [{\"stale_after\": 5, \"stale\": 1}]}",
                 "rules[0].stale: unknown key");
    expect_error("{\"rules\": [{\"rate_above\": 5, \"rate_above\": 6}]}",
                 "rules[0].rate_above: duplicate key");
}

/* ---- subscriptions ---- */

static void test_subscriptions(void **state) {
    (void)state;
    /* Given, the list replaces the default entry. */
    gw_config *c = parse_ok("{\"subscriptions\": [{\"topic\": \"sensors/+\"},"
                            " {\"topic\": \"plant/+/+/+\", \"sensor\": \"{1}-{2}\","
                            "  \"metric\": \"{3}\"}]}");
    assert_int_equal(c->n_subs, 2);
    assert_string_equal(c->subs[0].topic, "sensors/+");
    assert_string_equal(c->subs[0].sensor, "{1}");
    assert_string_equal(c->subs[0].metric, "");
    assert_string_equal(c->subs[1].sensor, "{1}-{2}");
    assert_string_equal(c->subs[1].metric, "{3}");

    char err[256], sensor[GW_NAME_MAX + 1], metric[GW_NAME_MAX + 1];
    gw_topic_map *m = NULL;
    assert_int_equal(gw_config_topic_map(c, &m, err, sizeof err), 0);
    assert_int_equal(gw_topic_map_count(m), 2);
    const char *t = "plant/a/b/temp";
    assert_int_equal(gw_topic_map_match(m, t, strlen(t), sensor, metric), 0);
    assert_string_equal(sensor, "a-b");
    assert_string_equal(metric, "temp");
    gw_topic_map_free(m);
    free(c);

    /* The default builds a map too. */
    c = new_cfg();
    assert_int_equal(gw_config_topic_map(c, &m, err, sizeof err), 0);
    t = "sensors/pump1/temp";
    assert_int_equal(gw_topic_map_match(m, t, strlen(t), sensor, metric), 0);
    assert_string_equal(sensor, "pump1");
    assert_string_equal(metric, "temp");
    gw_topic_map_free(m);
    free(c);

    expect_error("{\"subscriptions\": []}", "subscriptions: needs 1..64 entries, not 0");
    expect_error("{\"subscriptions\": [{\"sensor\": \"{1}\"}]}", "subscriptions[0]: needs topic");
    expect_error("{\"subscriptions\": [{\"topic\": \"sensors/#/x\"}]}",
                 "subscriptions[0].topic: '#' must be the last level");
}

/* Errors about templates come from the topic map; they must name the template's key. */
static void test_subscription_templates(void **state) {
    (void)state;
    char err[256];
    gw_config *c = new_cfg();
    const char *text = "{\"subscriptions\": [{\"topic\": \"a/+\", \"sensor\": \"{3}\"}]}";
    assert_int_equal(parse(c, text, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "subscriptions[0].sensor: "));
    assert_non_null(strstr(err, "{3}"));
    /* Without a wildcard, the default sensor template {1} has nothing to name. */
    assert_int_equal(parse(c, "{\"subscriptions\": [{\"topic\": \"status\"}]}", err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "subscriptions[0].sensor: "));
    text = "{\"subscriptions\": [{\"topic\": \"a/b\", \"sensor\": \"b\"}, {\"topic\": \"a/+\", "
           "\"metric\": \"{9}\"}]}";
    assert_int_equal(parse(c, text, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "subscriptions[1].metric: "));
    /* Nothing was written on error. */
    assert_int_equal(c->n_subs, 1);
    assert_string_equal(c->subs[0].topic, "sensors/+/+");
    free(c);
}

/* ---- files ---- */

static void test_example_file(void **state) {
    (void)state;
    char path[1024], err[256];
    repo_path(path, sizeof path, "deploy/iotgw.conf");
    gw_config *c = new_cfg();
    int rc = gw_config_load(c, path, err, sizeof err);
    if (rc != 0) {
        print_error("%s: %s\n", path, err);
    }
    assert_int_equal(rc, 0);
    assert_string_equal(c->mqtt.host, "127.0.0.1");
    assert_int_equal(c->mqtt.port, 1883);
    assert_int_equal(c->n_subs, 2);
    assert_string_equal(c->subs[0].topic, "sensors/+/+");
    assert_string_equal(c->subs[0].sensor, "{1}");
    assert_string_equal(c->subs[0].metric, "{2}");
    assert_string_equal(c->subs[1].topic, "sensors/+");
    assert_string_equal(c->subs[1].sensor, "{1}");
    assert_string_equal(c->subs[1].metric, "");
    assert_string_equal(c->storage.path, "iotgw.db");
    assert_string_equal(c->output.prefix, "iotgw");
    assert_true(c->n_rules >= 6);
    /* The rules of the simulator's faults are there. */
    bool warm = false, hot = false, dry = false, shake = false, jump = false, silent = false;
    for (size_t i = 0; i < c->n_rules; i++) {
        const an_rule *r = &c->rules[i];
        const an_threshold_cfg *t = &r->threshold;
        if (an_rule_matches(r, "sim-001", "temperature") && t->has_above && t->above == 30) {
            warm = t->clear_below == 28 && t->for_ms == 2000 && t->severity == AN_SEV_WARNING;
        }
        if (an_rule_matches(r, "sim-001", "temperature") && t->has_above && t->above == 40) {
            hot = t->severity == AN_SEV_CRITICAL;
        }
        if (an_rule_matches(r, "sim-001", "humidity") && t->has_below && t->below == 20) {
            dry = t->clear_above == 25 && t->severity == AN_SEV_INFO;
        }
        if (an_rule_matches(r, "sim-001", "vibration") && t->has_above && t->above == 8) {
            shake = t->clear_below == 6 && t->severity == AN_SEV_CRITICAL;
        }
        if (an_rule_matches(r, "sim-001", "temperature") && r->has_rate) {
            jump = r->rate.above == 5 && r->rate.severity == AN_SEV_INFO;
        }
        if (an_rule_matches(r, "sim-001", "temperature") && r->has_stale) {
            silent = r->stale.after_ms == 15000 && r->stale.severity == AN_SEV_WARNING;
        }
    }
    assert_true(warm && hot && dry && shake && jump && silent);

    gw_topic_map *m = NULL;
    assert_int_equal(gw_config_topic_map(c, &m, err, sizeof err), 0);
    char sensor[GW_NAME_MAX + 1], metric[GW_NAME_MAX + 1];
    const char *t = "sensors/sim-001";
    assert_int_equal(gw_topic_map_match(m, t, strlen(t), sensor, metric), 0);
    assert_string_equal(sensor, "sim-001");
    assert_string_equal(metric, "");
    gw_topic_map_free(m);
    free(c);
}

static void test_load_errors(void **state) {
    (void)state;
    char err[256];
    gw_config *c = new_cfg();
    assert_int_equal(gw_config_load(c, "/nonexistent/iotgw.conf", err, sizeof err), -ENOENT);
    assert_string_equal(err, "/nonexistent/iotgw.conf: No such file or directory");
    assert_true(gw_config_load(c, "/", err, sizeof err) < 0);
    assert_non_null(strstr(err, "/: "));
    free(c);
}

/* ---- the reference ---- */

static char *options_text(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    gw_config_print_options(f);
    fclose(f);
    return buf;
}

static void test_print_options(void **state) {
    (void)state;
    char *text = options_text();
    static const char *const paths[] = {
        "gateway_id ",
        "mqtt.host ",
        "mqtt.port ",
        "mqtt.client_id ",
        "mqtt.keepalive_s ",
        "mqtt.qos ",
        "subscriptions ",
        "subscriptions[].topic ",
        "subscriptions[].sensor ",
        "subscriptions[].metric ",
        "output.prefix ",
        "storage.path ",
        "storage.raw ",
        "storage.batch_rows ",
        "storage.tick_ms ",
        "pipeline.workers ",
        "pipeline.queue_items ",
        "pipeline.queue_bytes ",
        "pipeline.ingest_wait_ms ",
        "pipeline.overflow ",
        "pipeline.max_payload ",
        "pipeline.max_series ",
        "log.level ",
        "rules ",
        "rules[].name ",
        "rules[].sensor ",
        "rules[].metric ",
        "rules[].above ",
        "rules[].clear_below ",
        "rules[].below ",
        "rules[].clear_above ",
        "rules[].for ",
        "rules[].clear_for ",
        "rules[].rate_above ",
        "rules[].stale_after ",
        "rules[].severity ",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (!strstr(text, paths[i])) {
            print_error("missing option %s\n", paths[i]);
        }
        assert_non_null(strstr(text, paths[i]));
    }
    assert_non_null(strstr(text, "mqtt.port                integer 1..65535, default 1883\n"));
    assert_non_null(strstr(text, "one of drop_newest | block, default \"drop_newest\""));
    assert_non_null(strstr(text, "rules[].rate_above       number > 0, default none\n"));
    assert_non_null(strstr(text, "rules[].stale_after      duration 1ms..30d, default none\n"));
    free(text);
}

/* ---- retention ---- */

static void test_retention(void **state) {
    (void)state;
    const int64_t day = 86400000;
    gw_config *c = new_cfg();
    assert_true(c->retention.enabled);
    assert_true(c->retention.raw_ms == 7 * day);
    assert_true(c->retention.downsample_ms == 60000);
    assert_int_equal(c->retention.n_summaries, 2);
    assert_true(c->retention.summaries[0].window_ms == 60000);
    assert_true(c->retention.summaries[0].keep_ms == 90 * day);
    assert_true(c->retention.summaries[0].into_ms == 3600000);
    assert_true(c->retention.summaries[1].window_ms == 3600000);
    assert_true(c->retention.summaries[1].keep_ms == 5 * 365 * day);
    assert_true(c->retention.summaries[1].into_ms == 0);
    assert_true(c->retention.other_summaries_ms == 90 * day);
    assert_true(c->retention.predictions_ms == 30 * day);
    assert_true(c->retention.alerts_ms == 365 * day);
    assert_true(c->retention.interval_ms == 3600000);
    assert_int_equal(c->retention.batch_rows, 2000);
    free(c);

    int64_t ms = 0;
    assert_int_equal(gw_parse_duration("2w", &ms), 0);
    assert_true(ms == 14 * day);
    assert_int_equal(gw_parse_duration("1.5y", &ms), 0);
    assert_true(ms == 547 * day + day / 2);

    c = parse_ok("{\"retention\": {\"raw\": \"0\", \"downsample\": 0, \"summaries\": [{\"window\": "
                 "\"10s\", \"keep\": \"2w\", \"into\": \"5m\"}], \"alerts\": \"100y\"}}");
    assert_true(c->retention.raw_ms == 0);
    assert_int_equal(c->retention.n_summaries, 1);
    assert_true(c->retention.summaries[0].keep_ms == 14 * day);
    assert_true(c->retention.summaries[0].into_ms == 300000);
    assert_true(c->retention.alerts_ms == 36500 * day);
    free(c);

    expect_error("{\"retention\": {\"alerts\": \"101y\"}}",
                 "retention.alerts: 101y is out of range 0..100y");
    expect_error("{\"retention\": {\"summaries\": [{\"window\": \"1m\"}]}}",
                 "retention.summaries[0]: needs keep");
    expect_error("{\"retention\": {\"summaries\": [{\"window\": \"1m\", \"keep\": \"1d\", "
                 "\"into\": \"90s\"}]}}",
                 "retention.summaries[0].into: must be a larger multiple of window (60000 ms)");
    expect_error("{\"retention\": {\"summaries\": [{\"window\": \"1m\", \"keep\": 0, "
                 "\"into\": \"1h\"}]}}",
                 "retention.summaries[0].into: needs keep > 0 (summaries kept forever are not "
                 "rolled up)");
    expect_error("{\"retention\": {\"summaries\": [{\"window\": \"1m\", \"keep\": \"90d\"}, "
                 "{\"window\": \"60s\", \"keep\": \"1d\"}]}}",
                 "retention.summaries[1].window: listed twice (also retention.summaries[0])");
    expect_error("{\"retention\": {\"summaries\": [{\"window\": \"1m\", \"keep\": \"90d\", "
                 "\"into\": \"1h\"}, {\"window\": \"1h\", \"keep\": \"30d\"}]}}",
                 "retention.summaries[0].into: the roll-ups would be kept 30d "
                 "(retention.summaries[1].keep), less than these (90d)");
    expect_error("{\"retention\": {\"raw\": \"100d\", \"summaries\": []}}",
                 "retention.downsample: its summaries would be kept 90d "
                 "(retention.other_summaries), less than the raw readings (100d)");
    c = parse_ok("{\"retention\": {\"raw\": \"100d\", \"downsample\": 0, \"summaries\": []}}");
    free(c);
}

/* docs/config.md carries the reference verbatim between two markers. */
static void test_docs_match(void **state) {
    (void)state;
    char path[1024];
    size_t len = 0;
    repo_path(path, sizeof path, "docs/config.md");
    char *doc = read_all(path, &len);
    assert_non_null(doc);
    const char *begin_mark = "<!-- options:begin -->\n```text\n";
    char *begin = strstr(doc, begin_mark);
    char *end = strstr(doc, "```\n<!-- options:end -->");
    assert_non_null(begin);
    assert_non_null(end);
    begin += strlen(begin_mark);
    assert_true(end >= begin);
    *end = '\0';
    char *text = options_text();
    if (strcmp(begin, text) != 0) {
        print_error("docs/config.md is out of date: regenerate the block between the "
                    "options markers with `iotgw check --options`\n");
    }
    assert_string_equal(begin, text);
    free(text);
    free(doc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_client_id),
        cmocka_unit_test(test_all_options),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_string_limits),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_rule_defaults),
        cmocka_unit_test(test_rule_validation),
        cmocka_unit_test(test_rule_rate_stale),
        cmocka_unit_test(test_rule_pdm_parts),
        cmocka_unit_test(test_subscriptions),
        cmocka_unit_test(test_subscription_templates),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_print_options),
        cmocka_unit_test(test_docs_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
