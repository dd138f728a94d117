/* Configuration: one option table drives the defaults, the parsing, the validation and the
 * reference printed by `iotgw check --options` (and copied into docs/config.md). This file holds
 * the tables and the public entry points; config_parse.c the generic machinery that walks the
 * tables, config_check.c the finishing and cross-checks of each section (config_internal.h). */
#include "config_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE_BYTES (1024 * 1024)

/* ---- where values land: type-checked at compile time ---- */

#define TYPE_OK(S, f, T)                                                                           \
    (0 * sizeof(char[__builtin_types_compatible_p(__typeof__(((S *)0)->f), T) ? 1 : -1]))
#define FIELD(S, f, T)                                                                             \
    .off = offsetof(S, f) + TYPE_OK(S, f, T), .size = sizeof(((S *)0)->f), .field = #f
#define O_STRING(S, f)                                                                             \
    .type = OPT_STRING, FIELD(S, f, char[sizeof(((S *)0)->f)]), .max = sizeof(((S *)0)->f) - 1
#define O_INT(S, f, lo, hi)   .type = OPT_INT, FIELD(S, f, int), .min = (lo), .max = (hi)
#define O_INT64(S, f, lo, hi) .type = OPT_INT64, FIELD(S, f, int64_t), .min = (lo), .max = (hi)
#define O_BOOL(S, f)          .type = OPT_BOOL, FIELD(S, f, bool)
/* An enum lands as an int: its values are the indices of names. */
#define O_ENUM(S, f, T, nm)                                                                        \
    .type = OPT_ENUM, FIELD(S, f, T),                                                              \
    .names = (nm) + 0 * sizeof(char[sizeof(T) == sizeof(int) ? 1 : -1])
#define O_ENUM_NAME(S, f, nm)                                                                      \
    .type = OPT_ENUM_NAME, FIELD(S, f, char[sizeof(((S *)0)->f)]), .names = (nm)
#define O_DURATION(S, f)         .type = OPT_DURATION, FIELD(S, f, int64_t), .min = 0, .max = DURATION_MAX
#define O_DURATION_POS(S, f, hi) .type = OPT_DURATION, FIELD(S, f, int64_t), .min = 1, .max = (hi)
#define O_DURATION_KEEP(S, f)                                                                      \
    .type = OPT_DURATION, FIELD(S, f, int64_t), .min = 0, .max = RETAIN_MAX
/* A duration that must be > 0 (at least 1 ms), with a flag set when given. */
#define O_DURATION_POS_FLAG(S, f, has)                                                             \
    .type = OPT_DURATION, FIELD(S, f, int64_t), .min = 1, .max = DURATION_MAX,                     \
    .flag = offsetof(S, has) + 1 + TYPE_OK(S, has, bool)
#define O_NUMBER(S, f) .type = OPT_NUMBER, FIELD(S, f, double)
#define O_NUMBER_FLAG(S, f, has)                                                                   \
    O_NUMBER(S, f), .flag = offsetof(S, has) + 1 + TYPE_OK(S, has, bool)
#define O_NUMBER_POS_FLAG(S, f, has) O_NUMBER_FLAG(S, f, has), .positive = true
#define O_OBJECT(t)                  .type = OPT_OBJECT, .sub = &(t)
#define O_ARRAY(S, f, cnt, t, lo, hi)                                                              \
    .type = OPT_ARRAY, FIELD(S, f, __typeof__(((S *)0)->f)), .sub = &(t),                          \
    .count_off = offsetof(S, cnt) + TYPE_OK(S, cnt, size_t), .min = (lo),                          \
    .max = (hi) + 0 * sizeof(char[(hi) <= sizeof(((S *)0)->f) / sizeof(((S *)0)->f[0]) ? 1 : -1])
#define OPT(nm, kind, dflt, d, ...)                                                                \
    { .name = (nm), kind, .def = (dflt), .desc = (d), __VA_ARGS__ }
#define TABLE(a) .opts = (a), .n = sizeof(a) / sizeof((a)[0])

/* ---- string checks ---- */

static const char *not_empty(const char *s) {
    return s[0] ? NULL : "must not be empty";
}

static const char *topic_level(const char *s) {
    if (!s[0] || strpbrk(s, "/+#")) {
        return "must be one topic level: not empty, no '/', '+' or '#'";
    }
    return NULL;
}

static const char *topic_prefix(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || strpbrk(s, "+#") || s[0] == '/' || s[n - 1] == '/') {
        return "must be a topic without wildcards, not starting or ending with '/'";
    }
    return NULL;
}

/* ---- the tables ---- */

static const char *const overflow_names[] = {"drop_newest", "block", NULL};
static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const severity_names[] = {"info", "warning", "critical", NULL};
static const char *const trend_dir_names[] = {"rising", "falling", NULL};

_Static_assert(GW_OVERFLOW_DROP_NEWEST == 0 && GW_OVERFLOW_BLOCK == 1, "overflow_names order");
_Static_assert(AN_SEV_INFO == 0 && AN_SEV_WARNING == 1 && AN_SEV_CRITICAL == 2,
               "severity_names order");

static const opt mqtt_tls_opts[] = {
    OPT("enabled", O_BOOL(gw_config, mqtt.tls.enabled), "false",
        "Connect with TLS; implied by ca_file, cert_file or key_file."),
    OPT("ca_file", O_STRING(gw_config, mqtt.tls.ca_file), "",
        "PEM file of the CA certificates that sign the broker's; empty: the system's."),
    OPT("cert_file", O_STRING(gw_config, mqtt.tls.cert_file), "",
        "PEM file of the client certificate, for brokers that require one."),
    OPT("key_file", O_STRING(gw_config, mqtt.tls.key_file), "",
        "PEM file of the client certificate's private key."),
    OPT("verify", O_BOOL(gw_config, mqtt.tls.verify), "true",
        "Check that the broker's certificate names mqtt.host."),
};
static const opt_table mqtt_tls_table = {TABLE(mqtt_tls_opts)};

static const opt mqtt_opts[] = {
    OPT("host", O_STRING(gw_config, mqtt.host), "127.0.0.1",
        "Host name or IP address of the MQTT broker.", .check = not_empty),
    OPT("port", O_INT(gw_config, mqtt.port, 1, 65535), "1883", "TCP port of the broker."),
    OPT("client_id", O_STRING(gw_config, mqtt.client_id), "",
        "MQTT client id of the subscribing session, unique on the broker (+\"-pub\": publishing).",
        .def_doc = "\"iotgw-<gateway_id>\""),
    OPT("keepalive_s", O_INT(gw_config, mqtt.keepalive_s, 5, 3600), "30",
        "Keepalive interval in seconds."),
    OPT("qos", O_INT(gw_config, mqtt.qos, 0, 1), "1", "QoS of the subscriptions."),
    OPT("version", O_INT(gw_config, mqtt.version, 3, 5), "5",
        "MQTT protocol version: 5, or 3 for 3.1.1 (4, its protocol level, means the same)."),
    OPT("session_expiry", O_DURATION(gw_config, mqtt.session_expiry_ms), "1h",
        "How long the broker keeps the session (subscriptions, unacknowledged QoS1 messages) "
        "while the gateway is away; 0: a clean session at every connect."),
    OPT("username", O_STRING(gw_config, mqtt.username), "",
        "User name at the broker; empty: none."),
    OPT("password_file", O_STRING(gw_config, mqtt.password_file), "",
        "File holding the password (first line; mode 0600 or stricter); empty: the "
        "environment variable IOTGW_MQTT_PASSWORD, if set. Never in the config file."),
    OPT("tls", O_OBJECT(mqtt_tls_table), NULL, "TLS (mqtts://) to the broker."),
};
static const opt_table mqtt_table = {TABLE(mqtt_opts)};

static const opt sub_opts[] = {
    OPT("topic", O_STRING(gw_subscription, topic), NULL,
        "MQTT topic filter; '+' and '#' wildcards, '#' only as the last level.", .required = true),
    OPT("sensor", O_STRING(gw_subscription, sensor), "{1}",
        "Sensor name template: text and {N}, the N-th wildcard level ({0}: whole topic)."),
    OPT("metric", O_STRING(gw_subscription, metric), "",
        "Metric name template; empty: the payload names the metrics."),
};
static const opt_table sub_table = {TABLE(sub_opts), .elem_size = sizeof(gw_subscription),
                                    .finish = config__finish_sub};
static const gw_subscription default_subs[] = {
    {.topic = "sensors/+/+", .sensor = "{1}", .metric = "{2}"},
};

static const opt output_opts[] = {
    OPT("prefix", O_STRING(gw_config, output.prefix), "iotgw",
        "Topic prefix of the alerts, alert states, status and stats the gateway publishes.",
        .check = topic_prefix),
    OPT("stats_interval", O_DURATION(gw_config, output.stats_interval_ms), "60s",
        "How often the pipeline stats are published as JSON on <prefix>/stats; 0: never."),
};
static const opt_table output_table = {TABLE(output_opts)};

static const opt storage_opts[] = {
    OPT("path", O_STRING(gw_config, storage.path), "iotgw.db", "SQLite database file.",
        .check = not_empty),
    OPT("raw", O_BOOL(gw_config, storage.raw), "true",
        "Store every raw reading (false: only summaries, alerts and predictions)."),
    OPT("batch_rows", O_INT(gw_config, storage.batch_rows, 1, 1000000), "5000",
        "Commit after at most this many rows."),
    OPT("tick_ms", O_INT(gw_config, storage.tick_ms, 1, 60000), "100",
        "Commit at least this often, in milliseconds."),
    OPT("max_size", O_INT64(gw_config, storage.max_size, 65536, 17592186044416LL), "17592186044416",
        "Largest database file, in bytes (whole pages); beyond, writes fail as on a full disk "
        "(storage fault \"full\", docs/history.md). The default is SQLite's own limit."),
    OPT("busy_timeout", O_DURATION_POS(gw_config, storage.busy_timeout_ms, 600000), "5s",
        "How long a write waits for another program's lock on the database before it counts "
        "as a storage fault (locked)."),
    OPT("fault_buffer", O_INT(gw_config, storage.fault_buffer, 0, 100000000), "100000",
        "Rows held in memory while storage fails (a reading takes 24 bytes, a summary 144); "
        "newer rows beyond are shed and counted."),
};
static const opt_table storage_table = {TABLE(storage_opts)};

static const opt pipeline_opts[] = {
    OPT("workers", O_INT(gw_config, pipeline.workers, 1, 64), "2",
        "Analytics worker threads; a series always goes to the same worker."),
    OPT("queue_items", O_INT(gw_config, pipeline.queue_items, 1, 10000000), "4096",
        "Capacity of each queue, in items."),
    OPT("queue_bytes", O_INT64(gw_config, pipeline.queue_bytes, 1024, 17179869184LL), "4194304",
        "Capacity of each queue, in bytes."),
    OPT("ingest_wait_ms", O_INT(gw_config, pipeline.ingest_wait_ms, 0, 60000), "2000",
        "How long ingest waits for room in a full queue, in milliseconds."),
    OPT("overflow", O_ENUM(gw_config, pipeline.overflow, gw_overflow, overflow_names),
        "drop_newest", "Past that wait: drop the new message (counted) or keep waiting."),
    OPT("max_payload", O_INT(gw_config, pipeline.max_payload, 16, 268435455), "65536",
        "Largest payload accepted, in bytes; larger ones are counted."),
    OPT("tick_ms", O_INT(gw_config, pipeline.tick_ms, 10, 60000), "1000",
        "Clock tick: how often idle windows and stale sensors are checked."),
    OPT("max_series", O_INT(gw_config, pipeline.max_series, 1, 100000000), "1000000",
        "Most (sensor, metric) series tracked; new ones past it are counted."),
};
static const opt_table pipeline_table = {TABLE(pipeline_opts)};

static const opt window_size_opts[] = {
    OPT("size", O_DURATION_POS(gw_window_size, size_ms, 4294967295LL), NULL,
        "Window length; windows are aligned to the Unix epoch.", .required = true),
    OPT("hop", O_DURATION(gw_window_size, hop_ms), "0",
        "Hop of a hopping window (divides size, size/hop <= 64); 0: tumbling."),
};
static const opt_table window_size_table = {
    TABLE(window_size_opts), .elem_size = sizeof(gw_window_size), .finish = config__finish_window};

static const opt windows_opts[] = {
    OPT("sizes",
        O_ARRAY(gw_config, windows.sizes, windows.n_sizes, window_size_table, 0,
                GW_CFG_MAX_WINDOWS),
        NULL,
        "Window sizes summarised per series (count, min, max, mean, stddev, first, last, "
        "p50, p95); none by default."),
    OPT("allowed_lateness", O_DURATION(gw_config, windows.allowed_lateness_ms), "0",
        "How long past its end a window waits for out-of-order readings (event time)."),
    OPT("grace", O_DURATION(gw_config, windows.grace_ms), "5s",
        "A silent series' window closes once the clock passes end + allowed_lateness + grace."),
    OPT("publish", O_BOOL(gw_config, windows.publish), "false",
        "Also publish each summary on <prefix>/summaries/<sensor>/<metric> (QoS 0)."),
};
static const opt_table windows_table = {TABLE(windows_opts)};

static const opt predictions_opts[] = {
    OPT("interval", O_DURATION_POS(gw_config, predictions.interval_ms, DURATION_MAX), "5m",
        "How often each trend's prediction (level, slope, eta and band) is stored."),
};
static const opt_table predictions_table = {TABLE(predictions_opts)};

static const opt retain_window_opts[] = {
    OPT("window", O_DURATION_POS(gw_retain_window, window_ms, DURATION_MAX), NULL,
        "Window size of the summaries this entry is about (v_summaries.window_ms).",
        .required = true),
    OPT("keep", O_DURATION_KEEP(gw_retain_window, keep_ms), NULL,
        "Delete them once they start more than this long ago; 0: keep forever.", .required = true),
    OPT("into", O_DURATION(gw_retain_window, into_ms), "0",
        "Before deleting, roll them up into summaries of this larger window size (a multiple "
        "of window); 0: none."),
};
static const opt_table retain_window_table = {TABLE(retain_window_opts),
                                              .elem_size = sizeof(gw_retain_window),
                                              .finish = config__finish_retain_window};
static const gw_retain_window default_retain_windows[] = {
    {.window_ms = 60000, .keep_ms = 90 * MS_PER_DAY, .into_ms = 3600000},
    {.window_ms = 3600000, .keep_ms = 5 * MS_PER_YEAR, .into_ms = 0},
};

static const opt retention_opts[] = {
    OPT("enabled", O_BOOL(gw_config, retention.enabled), "true",
        "Run retention passes (false: keep everything, the file grows without bound)."),
    OPT("raw", O_DURATION_KEEP(gw_config, retention.raw_ms), "7d",
        "Keep raw readings this long (rounded up to a whole downsample window); 0: forever."),
    OPT("downsample", O_DURATION(gw_config, retention.downsample_ms), "1m",
        "Before deleting raw readings, summarise them into windows of this size where no "
        "summary of it exists; 0: delete without summarising."),
    OPT("summaries",
        O_ARRAY(gw_config, retention.summaries, retention.n_summaries, retain_window_table, 0,
                GW_CFG_MAX_RETAIN),
        NULL, "How long summaries of each window size are kept; replaces the default.",
        .def_elems = default_retain_windows,
        .n_def_elems = sizeof(default_retain_windows) / sizeof(default_retain_windows[0])),
    OPT("other_summaries", O_DURATION_KEEP(gw_config, retention.other_summaries_ms), "90d",
        "Keep summaries of window sizes not listed in summaries this long; 0: forever."),
    OPT("predictions", O_DURATION_KEEP(gw_config, retention.predictions_ms), "30d",
        "Keep trend predictions this long; 0: forever."),
    OPT("alerts", O_DURATION_KEEP(gw_config, retention.alerts_ms), "1y",
        "Keep published alerts this long; 0: forever. Unpublished ones and the newest of "
        "each series, kind and rule are always kept."),
    OPT("interval", O_DURATION_POS(gw_config, retention.interval_ms, MS_PER_DAY), "1h",
        "Start a pass this often (in replay: capture time); the first one interval after the "
        "start."),
    OPT("batch_rows", O_INT(gw_config, retention.batch_rows, 1, 1000000), "2000",
        "Rows per step: one transaction of the writer, in its idle time or once per "
        "storage.tick_ms."),
};
static const opt_table retention_table = {TABLE(retention_opts)};

static const opt log_opts[] = {
    OPT("level", O_ENUM_NAME(gw_config, log.level, level_names), "info",
        "Lowest level logged to stderr."),
};
static const opt_table log_table = {TABLE(log_opts)};

static const opt rule_opts[] = {
    OPT("name", O_STRING(an_rule, name), NULL, "Name of the rule in alerts.",
        .def_doc = "\"rules[<i>]\""),
    OPT("sensor", O_STRING(an_rule, sensor_glob), "*",
        "fnmatch(3) pattern of the sensors the rule applies to.", .check = not_empty),
    OPT("metric", O_STRING(an_rule, metric_glob), "*",
        "fnmatch(3) pattern of the metrics the rule applies to.", .check = not_empty),
    OPT("above", O_NUMBER_FLAG(an_rule, threshold.above, threshold.has_above), NULL,
        "Raise a high alert when the value is above this."),
    OPT("clear_below", O_NUMBER(an_rule, threshold.clear_below), NULL,
        "Clear the high alert when the value is below this; <= above.", .def_doc = "above"),
    OPT("below", O_NUMBER_FLAG(an_rule, threshold.below, threshold.has_below), NULL,
        "Raise a low alert when the value is below this."),
    OPT("clear_above", O_NUMBER(an_rule, threshold.clear_above), NULL,
        "Clear the low alert when the value is above this; >= below.", .def_doc = "below"),
    OPT("for", O_DURATION(an_rule, threshold.for_ms), "0",
        "How long (event time) the value must stay past above/below to raise."),
    OPT("clear_for", O_DURATION(an_rule, threshold.clear_for_ms), "0",
        "How long (event time) the value must stay back to clear a high/low alert."),
    OPT("rate_above", O_NUMBER_POS_FLAG(an_rule, rate.above, has_rate), NULL,
        "Raise a rate alert when the value changes faster than this, in units per second."),
    OPT("stale_after", O_DURATION_POS_FLAG(an_rule, stale.after_ms, has_stale), NULL,
        "Raise a stale alert when the series has been silent this long; a reading clears it."),
    OPT("trend", O_BOOL(an_rule, has_trend), "false",
        "Fit a trend (slope, level) and store predictions; implied by trend_limit."),
    OPT("trend_limit", O_NUMBER_FLAG(an_rule, trend.limit, trend.has_limit), NULL,
        "Raise a trend alert when this limit is predicted to be reached within horizon."),
    OPT("trend_dir", O_ENUM(an_rule, trend.dir, an_trend_dir, trend_dir_names), "rising",
        "rising: trend_limit is an upper limit; falling: a lower limit."),
    OPT("trend_window", O_DURATION_POS(an_rule, trend.window_ms, DURATION_MAX), "6h",
        "How much history the trend follows (exponentially weighted; time constant = 1/3)."),
    OPT("horizon", O_DURATION_POS(an_rule, trend.horizon_ms, DURATION_MAX), "24h",
        "Raise when the predicted crossing is this close; clear beyond 1.25 x horizon."),
    OPT("drift", O_BOOL(an_rule, has_drift), "false",
        "Raise a drift alert on a sustained shift of level against a baseline learned online."),
    OPT("anomaly", O_NUMBER_FLAG(an_rule, anomaly.sensitivity, has_anomaly), NULL,
        "Score every reading in [0, 1] and raise an anomaly alert at this score (0 < s < 1; "
        "0.99999 is a good start)."),
    OPT("refractory", O_DURATION(an_rule, anomaly.refractory_ms), "15m",
        "At most one anomaly alert per series and rule in this time."),
    OPT("severity", O_ENUM(an_rule, threshold.severity, an_severity, severity_names), "warning",
        "Severity of the alerts of this rule."),
};
const opt_table config__rule_table = {TABLE(rule_opts), .elem_size = sizeof(an_rule),
                                      .finish = config__finish_rule};

static const opt root_opts[] = {
    OPT("gateway_id", O_STRING(gw_config, gateway_id), "iotgw",
        "Name of this gateway: in the client id, the output topics and every alert.",
        .check = topic_level),
    OPT("mqtt", O_OBJECT(mqtt_table), NULL, "Connection to the MQTT broker."),
    OPT("subscriptions", O_ARRAY(gw_config, subs, n_subs, sub_table, 1, GW_TOPIC_MAX_SUBS), NULL,
        "Topics to subscribe to and how a topic names (sensor, metric); replaces the default.",
        .def_elems = default_subs, .n_def_elems = sizeof(default_subs) / sizeof(default_subs[0])),
    OPT("output", O_OBJECT(output_table), NULL, "What the gateway publishes."),
    OPT("storage", O_OBJECT(storage_table), NULL, "The SQLite history."),
    OPT("pipeline", O_OBJECT(pipeline_table), NULL,
        "Queues and workers between ingest and storage."),
    OPT("windows", O_OBJECT(windows_table), NULL, "Event-time window summaries."),
    OPT("predictions", O_OBJECT(predictions_table), NULL,
        "Trend predictions of the rules with trend or trend_limit (table predictions)."),
    OPT("retention", O_OBJECT(retention_table), NULL,
        "How long the history keeps each table (docs/history.md, Retention)."),
    OPT("log", O_OBJECT(log_table), NULL, "Logging."),
    OPT("rules", O_ARRAY(gw_config, rules, n_rules, config__rule_table, 0, GW_CFG_MAX_RULES), NULL,
        "Alert rules: thresholds, rate of change and silence of every matching series."),
};
static const opt_table root_table = {TABLE(root_opts)};

void gw_config_defaults(gw_config *cfg) {
    char err[8];
    memset(cfg, 0, sizeof *cfg);
    if (config__apply_defaults(&root_table, cfg, err, sizeof err) == 0) {
        (void)config__finish_root(cfg, err, sizeof err);
    }
}

int gw_config_parse(gw_config *cfg, const char *text, size_t len, char *err, size_t errlen) {
    int rc = -ENOMEM;
    size_t bad = 0;
    cJSON *root = NULL;
    gw_config *tmp = malloc(sizeof *tmp);
    char *buf = malloc(len + 1);
    if (!tmp || !buf) {
        config__fail(err, errlen, NULL, "out of memory");
        goto out;
    }
    memset(tmp, 0, sizeof *tmp);
    rc = config__apply_defaults(&root_table, tmp, err, errlen);
    if (rc != 0) {
        goto out;
    }
    if (len > 0) {
        memcpy(buf, text, len);
    }
    buf[len] = '\0';
    if (config__strip_comments(buf, len, &bad) != 0) {
        rc = config__fail(err, errlen, NULL, "line %zu: %s", config__line_of(buf, bad),
                          buf[bad] ? "unterminated comment" : "NUL byte");
        goto out;
    }
    if (strspn(buf, " \t\r\n") == len) {
        rc = config__fail(err, errlen, NULL, "no JSON object: the text is empty or only comments");
        goto out;
    }
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    if (root) {
        for (; end && (size_t)(end - buf) < len && *end && strchr(" \t\r\n", *end); end++) {
        }
    }
    if (!root || !end || (size_t)(end - buf) < len) {
        size_t off = end && end >= buf && (size_t)(end - buf) <= len ? (size_t)(end - buf) : 0;
        rc = config__fail(err, errlen, NULL, "line %zu: %s", config__line_of(buf, off),
                          root ? "unexpected text after the JSON object" : "malformed JSON");
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        rc = config__fail(err, errlen, NULL, "the configuration must be a JSON object");
        goto out;
    }
    rc = config__parse_object(&root_table, tmp, root, "", NULL, err, errlen);
    if (rc == 0) {
        rc = config__finish_root(tmp, err, errlen);
    }
    if (rc == 0) {
        memcpy(cfg, tmp, sizeof *tmp);
    }
out:
    cJSON_Delete(root);
    free(buf);
    free(tmp);
    return rc;
}

int gw_config_load(gw_config *cfg, const char *path, char *err, size_t errlen) {
    int rc = 0;
    size_t len = 0;
    char *text = malloc(MAX_FILE_BYTES + 1);
    if (!text) {
        config__fail(err, errlen, NULL, "out of memory");
        return -ENOMEM;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        rc = -errno;
        config__fail(err, errlen, path, "%s", strerror(errno));
        goto free_text;
    }
    len = fread(text, 1, MAX_FILE_BYTES + 1, f);
    if (ferror(f)) {
        rc = errno ? -errno : -EIO;
        config__fail(err, errlen, path, "%s", strerror(-rc));
        goto close_file;
    }
    if (len > MAX_FILE_BYTES) {
        rc = -EFBIG;
        config__fail(err, errlen, path, "larger than %d bytes", MAX_FILE_BYTES);
        goto close_file;
    }
    rc = gw_config_parse(cfg, text, len, err, errlen);
close_file:
    fclose(f);
free_text:
    free(text);
    return rc;
}

int gw_config_topic_map(const gw_config *cfg, gw_topic_map **out, char *err, size_t errlen) {
    gw_topic_map *m = NULL;
    int rc = gw_topic_map_new(&m);
    if (rc != 0) {
        config__fail(err, errlen, NULL, "out of memory");
        return rc;
    }
    for (size_t i = 0; i < cfg->n_subs; i++) {
        char why[160] = "invalid", p[PATH_LEN];
        const gw_subscription *s = &cfg->subs[i];
        rc = gw_topic_map_add(m, s->topic, s->sensor, s->metric, why, sizeof why);
        if (rc != 0) {
            snprintf(p, sizeof p, "subscriptions[%zu]", i);
            config__fail(err, errlen, p, "%s", why);
            gw_topic_map_free(m);
            return rc;
        }
    }
    *out = m;
    return 0;
}

void gw_config_print_options(FILE *f) {
    config__print_table(f, &root_table, "");
}
