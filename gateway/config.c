/* Configuration: one option table drives the defaults, the parsing, the validation and the
 * reference printed by `iotgw check --options` (and copied into docs/config.md). */
#include "config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE_BYTES  (1024 * 1024)
#define PATH_LEN        192
#define MS_PER_DAY      86400000LL
#define DURATION_MAX    (30 * MS_PER_DAY)
#define MAX_DURATION_MS 1e15 /* about 31,700 years: far from int64 and double limits */

/* Retention keeps run to years; the other durations stop at DURATION_MAX. */
#define MS_PER_YEAR (365 * MS_PER_DAY)
#define RETAIN_MAX  (100 * MS_PER_YEAR)

typedef enum opt_type {
    OPT_STRING,    /* char array, NUL-terminated; max = longest length in bytes */
    OPT_INT,       /* int, min..max */
    OPT_INT64,     /* int64_t, min..max */
    OPT_BOOL,      /* bool */
    OPT_ENUM,      /* a C enum (int sized); the value is the index in names */
    OPT_ENUM_NAME, /* one of names, kept as a string */
    OPT_DURATION,  /* int64_t milliseconds, min..max; JSON number of seconds or a string */
    OPT_NUMBER,    /* finite double, > 0 when positive; flag is set when given */
    OPT_OBJECT,    /* members in sub, landing relative to the same base */
    OPT_ARRAY,     /* array of objects: elements in sub, min..max entries */
} opt_type;

typedef struct opt_table opt_table;

/* Completes one object once all its keys are parsed: computed defaults, cross-field checks.
 * `seen` has bit k set when the table's option k was given. */
typedef int (*finish_fn)(void *obj, size_t index, uint32_t seen, const char *path, char *err,
                         size_t errlen);

typedef struct opt {
    const char *name; /* the key inside its object */
    opt_type type;
    size_t off;          /* where the value lands: offset from the base of the table's struct */
    size_t size;         /* bytes of that field */
    size_t flag;         /* offset + 1 of a bool set to true when the key is given; 0: none */
    int64_t min, max;    /* bounds (see opt_type) */
    bool positive;       /* numbers: must be > 0 */
    const char *def;     /* default as text; NULL: none (or computed, see def_doc) */
    const char *def_doc; /* the default as documented when it is computed */
    bool required;       /* the key must be given */
    const char *const *names;            /* enums: NULL-terminated, the index is the value */
    const char *(*check)(const char *s); /* strings: returns a reason, or NULL when fine */
    const opt_table *sub;                /* objects and arrays */
    size_t count_off;                    /* arrays: offset of the size_t count in the base */
    const void *def_elems;               /* arrays: default elements */
    size_t n_def_elems;
    const char *field; /* the C field, for the reader of this table */
    const char *desc;  /* one line */
} opt;

struct opt_table {
    const opt *opts;
    size_t n;
    size_t elem_size; /* arrays: the size of one element */
    finish_fn finish;
};

/* A value to store, from JSON or from a default's text. */
typedef struct val {
    enum { V_OTHER, V_STRING, V_NUMBER, V_BOOL } kind;
    const char *s;
    double d;
    bool b;
} val;

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

static int finish_sub(void *obj, size_t index, uint32_t seen, const char *path, char *err,
                      size_t errlen);
static int finish_rule(void *obj, size_t index, uint32_t seen, const char *path, char *err,
                       size_t errlen);
static int finish_window(void *obj, size_t index, uint32_t seen, const char *path, char *err,
                         size_t errlen);
static int finish_window(void *obj, size_t index, uint32_t seen, const char *path, char *err,
                         size_t errlen);
static int finish_retain_window(void *obj, size_t index, uint32_t seen, const char *path, char *err,
                                size_t errlen);

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
                                    .finish = finish_sub};
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
    TABLE(window_size_opts), .elem_size = sizeof(gw_window_size), .finish = finish_window};

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
                                              .finish = finish_retain_window};
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
static const opt_table rule_table = {TABLE(rule_opts), .elem_size = sizeof(an_rule),
                                     .finish = finish_rule};

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
    OPT("rules", O_ARRAY(gw_config, rules, n_rules, rule_table, 0, GW_CFG_MAX_RULES), NULL,
        "Alert rules: thresholds, rate of change and silence of every matching series."),
};
static const opt_table root_table = {TABLE(root_opts)};

/* ---- errors and paths ---- */

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, const char *path,
                                                      const char *fmt, ...) {
    if (err && errlen > 0) {
        size_t n = 0;
        if (path && path[0]) {
            int w = snprintf(err, errlen, "%s: ", path);
            n = w < 0 ? 0 : (size_t)w;
        }
        if (n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - n, fmt, ap);
            va_end(ap);
        }
    }
    return -EINVAL;
}

static void join(char *out, const char *path, const char *name) {
    snprintf(out, PATH_LEN, "%s%s%s", path, path[0] ? "." : "", name);
}

/* Writes a number as it would appear in the config: integers without a fraction. */
static void fmt_num(char *buf, size_t n, double v) {
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, n, "%.0f", v);
    } else {
        snprintf(buf, n, "%g", v);
    }
}

static void fmt_duration(char *buf, size_t n, int64_t ms) {
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"y", MS_PER_YEAR}, {"d", MS_PER_DAY}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    if (ms == 0) {
        snprintf(buf, n, "0");
        return;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms % units[i].ms == 0) {
            snprintf(buf, n, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            return;
        }
    }
    snprintf(buf, n, "%lldms", (long long)ms);
}

static void fmt_names(char *buf, size_t n, const char *const *names, const char *sep) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; names[i] && used < n; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? sep : "", names[i]);
        used += w < 0 ? 0 : (size_t)w;
    }
}

/* ---- durations ---- */

int gw_parse_duration(const char *s, int64_t *out_ms) {
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"", 1000},     {"ms", 1},       {"s", 1000},        {"m", 60000},
                 {"h", 3600000}, {"d", 86400000}, {"w", 604800000.0}, {"y", 31536000000.0}};
    if (!s || !out_ms) {
        return -1;
    }
    const char *p = s;
    double v = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        v = v * 10 + (*p - '0');
    }
    if (digits == 0) {
        return -1;
    }
    if (*p == '.') {
        double scale = 0.1;
        int frac = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, frac++, scale /= 10) {
            v += (*p - '0') * scale;
        }
        if (frac == 0) {
            return -1;
        }
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].unit) == 0) {
            double ms = v * units[i].ms;
            if (!isfinite(ms) || ms > MAX_DURATION_MS) {
                return -1;
            }
            *out_ms = llround(ms);
            return 0;
        }
    }
    return -1;
}

/* ---- storing one value ---- */

static int store_int(const opt *o, void *dst, const val *v, const char *path, char *err,
                     size_t errlen) {
    char num[64];
    if (v->kind != V_NUMBER || !isfinite(v->d) || v->d != floor(v->d)) {
        return fail(err, errlen, path, "expected an integer");
    }
    if (v->d < (double)o->min || v->d > (double)o->max) {
        fmt_num(num, sizeof num, v->d);
        return fail(err, errlen, path, "%s is out of range %lld..%lld", num, (long long)o->min,
                    (long long)o->max);
    }
    if (o->type == OPT_INT) {
        int x = (int)v->d;
        memcpy(dst, &x, sizeof x);
    } else {
        int64_t x = (int64_t)v->d;
        memcpy(dst, &x, sizeof x);
    }
    return 0;
}

static int store_enum(const opt *o, void *dst, const val *v, const char *path, char *err,
                      size_t errlen) {
    for (int i = 0; v->kind == V_STRING && o->names[i]; i++) {
        if (strcmp(v->s, o->names[i]) == 0) {
            if (o->type == OPT_ENUM) {
                memcpy(dst, &i, sizeof i);
            } else {
                snprintf(dst, o->size, "%s", o->names[i]);
            }
            return 0;
        }
    }
    char names[256];
    fmt_names(names, sizeof names, o->names, ", ");
    return fail(err, errlen, path, "expected one of %s", names);
}

static int store_duration(const opt *o, void *dst, const val *v, const char *path, char *err,
                          size_t errlen) {
    int64_t ms = -1;
    if (v->kind == V_NUMBER && isfinite(v->d) && v->d >= 0 && v->d * 1000 <= MAX_DURATION_MS) {
        ms = llround(v->d * 1000);
    } else if (v->kind != V_STRING || gw_parse_duration(v->s, &ms) != 0) {
        return fail(err, errlen, path,
                    "expected a duration: seconds, or a string like \"500ms\", \"30s\", \"5m\", "
                    "\"2h\", \"1d\"");
    }
    if (ms < o->min || ms > o->max) {
        char a[32], lo[32], hi[32];
        fmt_duration(a, sizeof a, ms);
        fmt_duration(lo, sizeof lo, o->min);
        fmt_duration(hi, sizeof hi, o->max);
        return fail(err, errlen, path, "%s is out of range %s..%s", a, lo, hi);
    }
    memcpy(dst, &ms, sizeof ms);
    return 0;
}

static int store(const opt *o, void *base, const val *v, const char *path, char *err,
                 size_t errlen) {
    char *dst = (char *)base + o->off;
    int rc = 0;
    switch (o->type) {
    case OPT_STRING: {
        if (v->kind != V_STRING) {
            return fail(err, errlen, path, "expected a string");
        }
        size_t n = strlen(v->s);
        if (n > (size_t)o->max) {
            return fail(err, errlen, path, "longer than %lld bytes", (long long)o->max);
        }
        const char *why = o->check ? o->check(v->s) : NULL;
        if (why) {
            return fail(err, errlen, path, "%s", why);
        }
        memcpy(dst, v->s, n + 1);
        break;
    }
    case OPT_INT:
    case OPT_INT64:
        rc = store_int(o, dst, v, path, err, errlen);
        break;
    case OPT_BOOL:
        if (v->kind != V_BOOL) {
            return fail(err, errlen, path, "expected true or false");
        }
        memcpy(dst, &v->b, sizeof(bool));
        break;
    case OPT_ENUM:
    case OPT_ENUM_NAME:
        rc = store_enum(o, dst, v, path, err, errlen);
        break;
    case OPT_DURATION:
        rc = store_duration(o, dst, v, path, err, errlen);
        break;
    case OPT_NUMBER:
        if (v->kind != V_NUMBER || !isfinite(v->d)) {
            return fail(err, errlen, path, "expected a number");
        }
        if (o->positive && !(v->d > 0)) {
            char num[64];
            fmt_num(num, sizeof num, v->d);
            return fail(err, errlen, path, "must be > 0, not %s", num);
        }
        memcpy(dst, &v->d, sizeof(double));
        break;
    case OPT_OBJECT:
    case OPT_ARRAY:
        return fail(err, errlen, path, "internal: not a scalar");
    }
    if (rc == 0 && o->flag) {
        bool yes = true;
        memcpy((char *)base + o->flag - 1, &yes, sizeof yes);
    }
    return rc;
}

/* ---- defaults ---- */

/* Applies the defaults of a table through the same checks as parsed values, so that a bad
 * default is an error of every parse (and caught by the unit tests). */
static int apply_defaults(const opt_table *t, void *base, char *err, size_t errlen) {
    for (size_t k = 0; k < t->n; k++) {
        const opt *o = &t->opts[k];
        int rc = 0;
        if (o->type == OPT_OBJECT) {
            rc = apply_defaults(o->sub, base, err, errlen);
        } else if (o->type == OPT_ARRAY) {
            if (o->n_def_elems > 0) {
                memcpy((char *)base + o->off, o->def_elems, o->n_def_elems * o->sub->elem_size);
            }
            memcpy((char *)base + o->count_off, &o->n_def_elems, sizeof(size_t));
        } else if (o->def) {
            val v = {.kind = V_STRING, .s = o->def};
            if (o->type == OPT_INT || o->type == OPT_INT64 || o->type == OPT_NUMBER) {
                v = (val){.kind = V_NUMBER, .d = strtod(o->def, NULL)};
            } else if (o->type == OPT_BOOL) {
                v = (val){.kind = V_BOOL, .b = strcmp(o->def, "true") == 0};
            }
            rc = store(o, base, &v, o->name, err, errlen);
            if (o->flag) {
                bool no = false; /* a default is not "given" */
                memcpy((char *)base + o->flag - 1, &no, sizeof no);
            }
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* ---- parsing ---- */

static int parse_object(const opt_table *t, void *base, const cJSON *obj, const char *path,
                        uint32_t *seen_out, char *err, size_t errlen);

static int parse_array(const opt *o, void *base, const cJSON *arr, const char *path, char *err,
                       size_t errlen) {
    if (!cJSON_IsArray(arr)) {
        return fail(err, errlen, path, "expected an array");
    }
    int n = cJSON_GetArraySize(arr);
    if (n < o->min || n > o->max) {
        return fail(err, errlen, path, "needs %lld..%lld entries, not %d", (long long)o->min,
                    (long long)o->max, n);
    }
    size_t i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        char epath[PATH_LEN + 24];
        snprintf(epath, sizeof epath, "%s[%zu]", path, i);
        void *elem = (char *)base + o->off + i * o->sub->elem_size;
        memset(elem, 0, o->sub->elem_size);
        int rc = apply_defaults(o->sub, elem, err, errlen);
        if (rc != 0) {
            return rc;
        }
        if (!cJSON_IsObject(it)) {
            return fail(err, errlen, epath, "expected an object");
        }
        uint32_t seen = 0;
        rc = parse_object(o->sub, elem, it, epath, &seen, err, errlen);
        if (rc == 0 && o->sub->finish) {
            rc = o->sub->finish(elem, i, seen, epath, err, errlen);
        }
        if (rc != 0) {
            return rc;
        }
    }
    memcpy((char *)base + o->count_off, &i, sizeof i);
    return 0;
}

static int parse_value(const opt *o, void *base, const cJSON *it, const char *path, char *err,
                       size_t errlen) {
    if (o->type == OPT_OBJECT) {
        if (!cJSON_IsObject(it)) {
            return fail(err, errlen, path, "expected an object");
        }
        return parse_object(o->sub, base, it, path, NULL, err, errlen);
    }
    if (o->type == OPT_ARRAY) {
        return parse_array(o, base, it, path, err, errlen);
    }
    val v = {.kind = V_OTHER};
    if (cJSON_IsString(it)) {
        v = (val){.kind = V_STRING, .s = it->valuestring};
    } else if (cJSON_IsNumber(it)) {
        v = (val){.kind = V_NUMBER, .d = it->valuedouble};
    } else if (cJSON_IsBool(it)) {
        v = (val){.kind = V_BOOL, .b = cJSON_IsTrue(it)};
    }
    return store(o, base, &v, path, err, errlen);
}

static int parse_object(const opt_table *t, void *base, const cJSON *obj, const char *path,
                        uint32_t *seen_out, char *err, size_t errlen) {
    uint32_t seen = 0;
    if (t->n > 32) {
        return fail(err, errlen, path, "internal: table too large");
    }
    for (const cJSON *it = obj->child; it; it = it->next) {
        char sub[PATH_LEN];
        join(sub, path, it->string ? it->string : "");
        size_t k = 0;
        while (k < t->n && strcmp(t->opts[k].name, it->string ? it->string : "") != 0) {
            k++;
        }
        if (k == t->n) {
            return fail(err, errlen, sub, "unknown key");
        }
        if (seen & (1u << k)) {
            return fail(err, errlen, sub, "duplicate key");
        }
        seen |= 1u << k;
        int rc = parse_value(&t->opts[k], base, it, sub, err, errlen);
        if (rc != 0) {
            return rc;
        }
    }
    for (size_t k = 0; k < t->n; k++) {
        if (t->opts[k].required && !(seen & (1u << k))) {
            return fail(err, errlen, path, "needs %s", t->opts[k].name);
        }
    }
    if (seen_out) {
        *seen_out = seen;
    }
    return 0;
}

/* Adds one subscription to a fresh map: the topic map is the one judge of filters and
 * templates. */
static int probe_sub(const char *filter, const char *sensor, const char *metric, char *why,
                     size_t whylen) {
    gw_topic_map *m = NULL;
    int rc = gw_topic_map_new(&m);
    if (rc != 0) {
        snprintf(why, whylen, "out of memory");
        return rc;
    }
    rc = gw_topic_map_add(m, filter, sensor, metric, why, whylen);
    gw_topic_map_free(m);
    return rc;
}

static int finish_sub(void *obj, size_t index, uint32_t seen, const char *path, char *err,
                      size_t errlen) {
    const gw_subscription *s = obj;
    /* Each field is tried alone ("{0}" and "" are valid for any filter) so that the error
     * names the key at fault. */
    const struct {
        const char *key, *sensor, *metric;
    } probes[] = {{"topic", "{0}", ""}, {"sensor", s->sensor, ""}, {"metric", "{0}", s->metric}};
    (void)index;
    (void)seen;
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        char why[160] = "invalid";
        int rc = probe_sub(s->topic, probes[i].sensor, probes[i].metric, why, sizeof why);
        if (rc != 0) {
            char p[PATH_LEN];
            join(p, path, probes[i].key);
            fail(err, errlen, p, "%s", why);
            return rc == -ENOMEM ? rc : -EINVAL;
        }
    }
    return 0;
}

/* True when the key `name` of table t was given in the object that produced `seen`. */
static bool given(const opt_table *t, uint32_t seen, const char *name) {
    for (size_t k = 0; k < t->n; k++) {
        if (strcmp(t->opts[k].name, name) == 0) {
            return seen & (1u << k);
        }
    }
    return false;
}

static int finish_rule(void *obj, size_t index, uint32_t seen, const char *path, char *err,
                       size_t errlen) {
    an_rule *r = obj;
    an_threshold_cfg *t = &r->threshold;
    char p[PATH_LEN], num[64];
    if (!r->name[0]) {
        snprintf(r->name, sizeof r->name, "rules[%zu]", index);
    }
    if (r->trend.has_limit) {
        r->has_trend = true;
    }
    if (!t->has_above && !t->has_below && !r->has_rate && !r->has_stale && !r->has_trend &&
        !r->has_drift && !r->has_anomaly) {
        return fail(err, errlen, path,
                    "needs above, below, rate_above, stale_after, trend, trend_limit, drift or "
                    "anomaly");
    }
    /* Keys that tune a part are an error without the part: they would do nothing. */
    static const struct {
        const char *key, *needs;
        size_t has_off;
    } tuning[] = {
        {"trend_dir", "trend or trend_limit", offsetof(an_rule, has_trend)},
        {"trend_window", "trend or trend_limit", offsetof(an_rule, has_trend)},
        {"horizon", "trend_limit", offsetof(an_rule, trend.has_limit)},
        {"refractory", "anomaly", offsetof(an_rule, has_anomaly)},
    };
    for (size_t i = 0; i < sizeof(tuning) / sizeof(tuning[0]); i++) {
        if (given(&rule_table, seen, tuning[i].key) &&
            !*(const bool *)((const char *)r + tuning[i].has_off)) {
            join(p, path, tuning[i].key);
            return fail(err, errlen, p, "needs %s", tuning[i].needs);
        }
    }
    /* The detectors' own defaults, under what the rule gave. */
    if (r->has_trend) {
        an_trend_cfg given_cfg = r->trend;
        an_trend_cfg_default(&r->trend);
        r->trend.has_limit = given_cfg.has_limit;
        r->trend.limit = given_cfg.limit;
        r->trend.dir = given_cfg.dir;
        r->trend.window_ms = given_cfg.window_ms;
        r->trend.horizon_ms = given_cfg.horizon_ms;
        r->trend.severity = t->severity;
    }
    if (r->has_drift) {
        an_drift_cfg_default(&r->drift);
        r->drift.severity = t->severity;
    }
    if (r->has_anomaly) {
        double sensitivity = r->anomaly.sensitivity;
        int64_t refractory = r->anomaly.refractory_ms;
        if (!(sensitivity > 0 && sensitivity < 1)) {
            join(p, path, "anomaly");
            fmt_num(num, sizeof num, sensitivity);
            return fail(err, errlen, p, "must be between 0 and 1 (exclusive), not %s", num);
        }
        an_anomaly_cfg_default(&r->anomaly);
        r->anomaly.sensitivity = sensitivity;
        r->anomaly.refractory_ms = refractory;
        r->anomaly.severity = t->severity;
    }
    /* The durations belong to the threshold part: given without it they would do nothing. */
    static const char *const threshold_only[] = {"for", "clear_for"};
    for (size_t i = 0; i < sizeof(threshold_only) / sizeof(threshold_only[0]); i++) {
        if (given(&rule_table, seen, threshold_only[i]) && !t->has_above && !t->has_below) {
            join(p, path, threshold_only[i]);
            return fail(err, errlen, p, "needs above or below");
        }
    }
    /* One severity per rule, for every part. */
    r->rate.severity = t->severity;
    r->stale.severity = t->severity;
    if (given(&rule_table, seen, "clear_below")) {
        join(p, path, "clear_below");
        if (!t->has_above) {
            return fail(err, errlen, p, "needs above");
        }
        if (t->clear_below > t->above) {
            fmt_num(num, sizeof num, t->above);
            return fail(err, errlen, p, "must be <= above (%s)", num);
        }
    } else {
        t->clear_below = t->above;
    }
    if (given(&rule_table, seen, "clear_above")) {
        join(p, path, "clear_above");
        if (!t->has_below) {
            return fail(err, errlen, p, "needs below");
        }
        if (t->clear_above < t->below) {
            fmt_num(num, sizeof num, t->below);
            return fail(err, errlen, p, "must be >= below (%s)", num);
        }
    } else {
        t->clear_above = t->below;
    }
    return 0;
}

static int finish_window(void *obj, size_t index, uint32_t seen, const char *path, char *err,
                         size_t errlen) {
    gw_window_size *w = obj;
    char p[PATH_LEN];
    (void)index;
    (void)seen;
    if (w->hop_ms != 0) {
        join(p, path, "hop");
        if (w->hop_ms > w->size_ms || w->size_ms % w->hop_ms != 0) {
            return fail(err, errlen, p, "must divide size (%lld ms)", (long long)w->size_ms);
        }
        if (w->size_ms / w->hop_ms > 64) {
            return fail(err, errlen, p, "size/hop must be <= 64");
        }
    }
    return 0;
}

static int finish_retain_window(void *obj, size_t index, uint32_t seen, const char *path, char *err,
                                size_t errlen) {
    gw_retain_window *w = obj;
    char p[PATH_LEN];
    (void)index;
    (void)seen;
    if (w->into_ms != 0) {
        join(p, path, "into");
        if (w->into_ms <= w->window_ms || w->into_ms % w->window_ms != 0) {
            return fail(err, errlen, p, "must be a larger multiple of window (%lld ms)",
                        (long long)w->window_ms);
        }
        if (w->keep_ms == 0) {
            return fail(err, errlen, p,
                        "needs keep > 0 (summaries kept forever are not rolled up)");
        }
    }
    return 0;
}

/* How long summaries of window_ms are kept; *where names the key that says so. */
static int64_t retain_keep(const gw_config *c, int64_t window_ms, char *where, size_t n) {
    for (size_t i = 0; i < c->retention.n_summaries; i++) {
        if (c->retention.summaries[i].window_ms == window_ms) {
            snprintf(where, n, "retention.summaries[%zu].keep", i);
            return c->retention.summaries[i].keep_ms;
        }
    }
    snprintf(where, n, "retention.other_summaries");
    return c->retention.other_summaries_ms;
}

/* Cross-checks: summaries made by downsampling or a roll-up must not be due before what they
 * were made from. */
static int finish_retention(const gw_config *c, char *err, size_t errlen) {
    char p[PATH_LEN], where[PATH_LEN], a[32], b[32];
    for (size_t i = 0; i < c->retention.n_summaries; i++) {
        const gw_retain_window *w = &c->retention.summaries[i];
        for (size_t k = 0; k < i; k++) {
            if (c->retention.summaries[k].window_ms == w->window_ms) {
                snprintf(p, sizeof p, "retention.summaries[%zu].window", i);
                return fail(err, errlen, p, "listed twice (also retention.summaries[%zu])", k);
            }
        }
    }
    for (size_t i = 0; i < c->retention.n_summaries; i++) {
        const gw_retain_window *w = &c->retention.summaries[i];
        if (w->into_ms == 0) {
            continue;
        }
        int64_t keep = retain_keep(c, w->into_ms, where, sizeof where);
        if (keep != 0 && keep < w->keep_ms) {
            snprintf(p, sizeof p, "retention.summaries[%zu].into", i);
            fmt_duration(a, sizeof a, keep);
            fmt_duration(b, sizeof b, w->keep_ms);
            return fail(err, errlen, p, "the roll-ups would be kept %s (%s), less than these (%s)",
                        a, where, b);
        }
    }
    int64_t ds = c->retention.downsample_ms, raw = c->retention.raw_ms;
    if (ds != 0 && raw != 0) {
        int64_t keep = retain_keep(c, ds, where, sizeof where);
        if (keep != 0 && keep < raw) {
            fmt_duration(a, sizeof a, keep);
            fmt_duration(b, sizeof b, raw);
            return fail(err, errlen, "retention.downsample",
                        "its summaries would be kept %s (%s), less than the raw readings (%s)", a,
                        where, b);
        }
    }
    return 0;
}

static int finish_root(gw_config *c, char *err, size_t errlen) {
    int rc = finish_retention(c, err, errlen);
    if (rc != 0) {
        return rc;
    }
    if (c->mqtt.tls.ca_file[0] || c->mqtt.tls.cert_file[0] || c->mqtt.tls.key_file[0]) {
        c->mqtt.tls.enabled = true;
    }
    if (!c->mqtt.client_id[0]) {
        int n = snprintf(c->mqtt.client_id, sizeof c->mqtt.client_id, "iotgw-%s", c->gateway_id);
        if (n < 0 || (size_t)n >= sizeof c->mqtt.client_id) {
            return fail(err, errlen, "mqtt.client_id",
                        "the default \"iotgw-<gateway_id>\" is longer than %zu bytes; set it",
                        sizeof c->mqtt.client_id - 1);
        }
    }
    return 0;
}

static size_t line_of(const char *s, size_t off) {
    size_t line = 1;
    for (size_t i = 0; i < off; i++) {
        line += s[i] == '\n';
    }
    return line;
}

/* Blanks comments outside strings, keeping newlines so that line numbers stay right.
 * Returns 0, or -1 with *bad at the start of an unterminated block comment or a NUL byte. */
static int strip_comments(char *s, size_t len, size_t *bad) {
    enum { CODE, STRING, LINE, BLOCK } st = CODE;
    size_t block_start = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0') {
            *bad = i;
            return -1;
        }
        bool two = i + 1 < len;
        switch (st) {
        case CODE:
            if (s[i] == '"') {
                st = STRING;
            } else if (s[i] == '/' && two && (s[i + 1] == '/' || s[i + 1] == '*')) {
                st = s[i + 1] == '/' ? LINE : BLOCK;
                block_start = i;
                s[i] = ' ';
                s[++i] = ' ';
            }
            break;
        case STRING:
            if (s[i] == '\\' && two && s[i + 1] != '\0') {
                i++;
            } else if (s[i] == '"') {
                st = CODE;
            }
            break;
        case LINE:
            if (s[i] == '\n') {
                st = CODE;
            } else {
                s[i] = ' ';
            }
            break;
        case BLOCK:
            if (s[i] == '*' && two && s[i + 1] == '/') {
                s[i] = ' ';
                s[++i] = ' ';
                st = CODE;
            } else if (s[i] != '\n') {
                s[i] = ' ';
            }
            break;
        }
    }
    if (st == BLOCK) {
        *bad = block_start;
        return -1;
    }
    return 0;
}

void gw_config_defaults(gw_config *cfg) {
    char err[8];
    memset(cfg, 0, sizeof *cfg);
    if (apply_defaults(&root_table, cfg, err, sizeof err) == 0) {
        (void)finish_root(cfg, err, sizeof err);
    }
}

int gw_config_parse(gw_config *cfg, const char *text, size_t len, char *err, size_t errlen) {
    int rc = -ENOMEM;
    size_t bad = 0;
    cJSON *root = NULL;
    gw_config *tmp = malloc(sizeof *tmp);
    char *buf = malloc(len + 1);
    if (!tmp || !buf) {
        fail(err, errlen, NULL, "out of memory");
        goto out;
    }
    memset(tmp, 0, sizeof *tmp);
    rc = apply_defaults(&root_table, tmp, err, errlen);
    if (rc != 0) {
        goto out;
    }
    if (len > 0) {
        memcpy(buf, text, len);
    }
    buf[len] = '\0';
    if (strip_comments(buf, len, &bad) != 0) {
        rc = fail(err, errlen, NULL, "line %zu: %s", line_of(buf, bad),
                  buf[bad] ? "unterminated comment" : "NUL byte");
        goto out;
    }
    if (strspn(buf, " \t\r\n") == len) {
        rc = fail(err, errlen, NULL, "no JSON object: the text is empty or only comments");
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
        rc = fail(err, errlen, NULL, "line %zu: %s", line_of(buf, off),
                  root ? "unexpected text after the JSON object" : "malformed JSON");
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        rc = fail(err, errlen, NULL, "the configuration must be a JSON object");
        goto out;
    }
    rc = parse_object(&root_table, tmp, root, "", NULL, err, errlen);
    if (rc == 0) {
        rc = finish_root(tmp, err, errlen);
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
        fail(err, errlen, NULL, "out of memory");
        return -ENOMEM;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        rc = -errno;
        fail(err, errlen, path, "%s", strerror(errno));
        goto free_text;
    }
    len = fread(text, 1, MAX_FILE_BYTES + 1, f);
    if (ferror(f)) {
        rc = errno ? -errno : -EIO;
        fail(err, errlen, path, "%s", strerror(-rc));
        goto close_file;
    }
    if (len > MAX_FILE_BYTES) {
        rc = -EFBIG;
        fail(err, errlen, path, "larger than %d bytes", MAX_FILE_BYTES);
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
        fail(err, errlen, NULL, "out of memory");
        return rc;
    }
    for (size_t i = 0; i < cfg->n_subs; i++) {
        char why[160] = "invalid", p[PATH_LEN];
        const gw_subscription *s = &cfg->subs[i];
        rc = gw_topic_map_add(m, s->topic, s->sensor, s->metric, why, sizeof why);
        if (rc != 0) {
            snprintf(p, sizeof p, "subscriptions[%zu]", i);
            fail(err, errlen, p, "%s", why);
            gw_topic_map_free(m);
            return rc;
        }
    }
    *out = m;
    return 0;
}

/* ---- the reference ---- */

static void fmt_default(char *buf, size_t n, const opt *o) {
    if (o->def_doc) {
        snprintf(buf, n, "%s", o->def_doc);
    } else if (!o->def) {
        snprintf(buf, n, "%s", o->required ? "required" : "none");
    } else if (o->type == OPT_STRING || o->type == OPT_ENUM || o->type == OPT_ENUM_NAME) {
        snprintf(buf, n, "\"%s\"", o->def);
    } else {
        snprintf(buf, n, "%s", o->def);
    }
}

static void print_array_default(FILE *f, const opt *o) {
    fputs("[", f);
    for (size_t i = 0; i < o->n_def_elems; i++) {
        const char *elem = (const char *)o->def_elems + i * o->sub->elem_size;
        fputs(i ? ", {" : "{", f);
        for (size_t k = 0; k < o->sub->n; k++) {
            /* Array elements in the table hold strings and durations. */
            const opt *e = &o->sub->opts[k];
            if (e->type == OPT_STRING) {
                fprintf(f, "%s\"%s\": \"%s\"", k ? ", " : "", e->name, elem + e->off);
            } else if (e->type == OPT_DURATION) {
                int64_t ms;
                char d[32];
                memcpy(&ms, elem + e->off, sizeof ms);
                fmt_duration(d, sizeof d, ms);
                /* A key at its own default is left out: {"window": "1h", "keep": "5y"}. */
                if (e->def == NULL || strcmp(d, e->def) != 0) {
                    fprintf(f, "%s\"%s\": \"%s\"", k ? ", " : "", e->name, d);
                }
            }
        }
        fputs("}", f);
    }
    fputs("]", f);
}

static void print_table(FILE *f, const opt_table *t, const char *prefix) {
    for (size_t k = 0; k < t->n; k++) {
        const opt *o = &t->opts[k];
        char path[PATH_LEN], type[300], def[160], names[200];
        join(path, prefix, o->name);
        fmt_default(def, sizeof def, o);
        switch (o->type) {
        case OPT_STRING:
            snprintf(type, sizeof type, "string, at most %lld bytes", (long long)o->max);
            break;
        case OPT_INT:
        case OPT_INT64:
            snprintf(type, sizeof type, "integer %lld..%lld", (long long)o->min, (long long)o->max);
            break;
        case OPT_BOOL:
            snprintf(type, sizeof type, "true | false");
            break;
        case OPT_ENUM:
        case OPT_ENUM_NAME:
            fmt_names(names, sizeof names, o->names, " | ");
            snprintf(type, sizeof type, "one of %s", names);
            break;
        case OPT_DURATION: {
            char lo[32], hi[32];
            fmt_duration(lo, sizeof lo, o->min);
            fmt_duration(hi, sizeof hi, o->max);
            snprintf(type, sizeof type, "duration %s..%s", lo, hi);
            break;
        }
        case OPT_NUMBER:
            snprintf(type, sizeof type, "%s", o->positive ? "number > 0" : "number");
            break;
        case OPT_OBJECT:
            fprintf(f, "%-24s object\n    %s\n", path, o->desc);
            print_table(f, o->sub, path);
            continue;
        case OPT_ARRAY: {
            char elems[PATH_LEN + 4];
            fprintf(f, "%-24s array of %lld..%lld objects, default ", path, (long long)o->min,
                    (long long)o->max);
            print_array_default(f, o);
            fprintf(f, "\n    %s\n", o->desc);
            snprintf(elems, sizeof elems, "%s[]", path);
            print_table(f, o->sub, elems);
            continue;
        }
        }
        fprintf(f, "%-24s %s, %s%s\n    %s\n", path, type, o->required ? "" : "default ", def,
                o->desc);
    }
}

void gw_config_print_options(FILE *f) {
    print_table(f, &root_table, "");
}
