/* Configuration: a JSON file (comments allowed: // to end of line and slash-star blocks) read
 * once at start. Every option is declared in one table in config.c (name, type, default,
 * bounds, description); an unknown key or a bad value is an error naming its path, e.g.
 * "rules[2].above: expected a number". Defaults give a working gateway on a local broker.
 *
 * The struct is filled once by gw_config_load and then read-only: any thread may read it. */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rule.h"
#include "topic.h"

#define GW_CFG_STR       256
#define GW_CFG_MAX_RULES 256

typedef enum gw_overflow {
    GW_OVERFLOW_DROP_NEWEST = 0, /* "drop_newest": drop the message that does not fit */
    GW_OVERFLOW_BLOCK,           /* "block": keep waiting (the broker holds the rest) */
} gw_overflow;

typedef struct gw_subscription {
    char topic[GW_CFG_STR];  /* MQTT filter, e.g. "sensors/+/+" */
    char sensor[GW_CFG_STR]; /* template, default "{1}" */
    char metric[GW_CFG_STR]; /* template, default "" (payload names the metrics) */
} gw_subscription;

#define GW_CFG_MAX_WINDOWS 8

typedef struct gw_window_size {
    int64_t size_ms; /* "windows.sizes[i].size", duration, 1 ms .. 49 days */
    int64_t hop_ms;  /* "windows.sizes[i].hop", 0 (default) = tumbling; must divide size */
} gw_window_size;

#define GW_CFG_MAX_RETAIN 8

/* How long summaries of one window size are kept (retention.summaries[i]); see
 * storage/st_retain.h for what the storage does with it. */
typedef struct gw_retain_window {
    int64_t window_ms; /* "window", 1 ms .. 30 days */
    int64_t keep_ms;   /* "keep", 0 = forever */
    int64_t into_ms;   /* "into": rolled up into this size first; 0 = none */
} gw_retain_window;

typedef struct gw_config {
    char gateway_id[64]; /* "gateway_id", default: "iotgw" */

    struct {
        char host[GW_CFG_STR];     /* "mqtt.host", default "127.0.0.1" */
        int port;                  /* "mqtt.port", default 1883, 1..65535 */
        char client_id[64];        /* "mqtt.client_id", default "iotgw-<gateway_id>" when empty */
        int keepalive_s;           /* "mqtt.keepalive_s", default 30, 5..3600 */
        int qos;                   /* "mqtt.qos", subscription QoS, default 1, 0..1 */
        int version;               /* "mqtt.version": 5 (default) or 3 (3.1.1; 4 is the same) */
        int64_t session_expiry_ms; /* "mqtt.session_expiry", default 1h; 0: clean session */
        char username[GW_CFG_STR]; /* "mqtt.username", default none */
        char password_file[GW_CFG_STR]; /* "mqtt.password_file"; else $IOTGW_MQTT_PASSWORD */
        struct {
            bool enabled;               /* "mqtt.tls.enabled"; implied by any file below */
            char ca_file[GW_CFG_STR];   /* "mqtt.tls.ca_file": CAs that sign the broker */
            char cert_file[GW_CFG_STR]; /* "mqtt.tls.cert_file": client certificate (PEM) */
            char key_file[GW_CFG_STR];  /* "mqtt.tls.key_file": its private key (PEM) */
            bool verify;                /* "mqtt.tls.verify": check the server name, default true */
        } tls;
    } mqtt;

    gw_subscription subs[GW_TOPIC_MAX_SUBS]; /* "subscriptions": array of objects */
    size_t n_subs;                           /* default: one, sensors/+/+ -> {1}, {2} */

    struct {
        char prefix[GW_CFG_STR];   /* "output.prefix", default "iotgw" */
        int64_t stats_interval_ms; /* "output.stats_interval": stats on <prefix>/stats, 60s */
    } output;

    struct {
        char path[GW_CFG_STR]; /* "storage.path", default "iotgw.db" */
        bool raw;              /* "storage.raw", store raw readings, default true */
        int batch_rows;        /* "storage.batch_rows", default 5000, 1..1000000 */
        int tick_ms;           /* "storage.tick_ms", commit at least this often, default 100 */

        /* Storage faults (docs/history.md). */
        int64_t max_size;        /* "storage.max_size", bytes, default 16 TiB (SQLite's limit) */
        int64_t busy_timeout_ms; /* "storage.busy_timeout", default 5s */
        int fault_buffer;        /* "storage.fault_buffer", rows held during a fault, 100000 */
    } storage;

    struct {
        int workers;          /* "pipeline.workers", default 2, 1..64 */
        int queue_items;      /* "pipeline.queue_items", per queue, default 4096 */
        int64_t queue_bytes;  /* "pipeline.queue_bytes", per queue, default 4 MiB */
        int ingest_wait_ms;   /* "pipeline.ingest_wait_ms", default 2000, 0..60000 */
        gw_overflow overflow; /* "pipeline.overflow", "drop_newest" (default) | "block" */
        int max_payload;      /* "pipeline.max_payload", bytes, default 65536 */
        int max_series;       /* "pipeline.max_series", default 1000000 */
        int tick_ms;          /* "pipeline.tick_ms", clock tick, default 1000 */
    } pipeline;

    struct {
        gw_window_size sizes[GW_CFG_MAX_WINDOWS]; /* "windows.sizes": none by default */
        size_t n_sizes;
        int64_t allowed_lateness_ms; /* "windows.allowed_lateness", default 0 */
        int64_t grace_ms;            /* "windows.grace", idle close, default 5s */
        bool publish;                /* "windows.publish": summaries on MQTT too */
    } windows;

    struct {
        int64_t interval_ms; /* "predictions.interval": trend predictions stored, default 5m */
    } predictions;

    struct {
        bool enabled;          /* "retention.enabled", default true */
        int64_t raw_ms;        /* "retention.raw", default 7d; 0 = forever */
        int64_t downsample_ms; /* "retention.downsample", default 1m; 0 = none */
        gw_retain_window summaries[GW_CFG_MAX_RETAIN]; /* default 1m: 90d into 1h; 1h: 5y */
        size_t n_summaries;
        int64_t other_summaries_ms; /* "retention.other_summaries", default 90d */
        int64_t predictions_ms;     /* "retention.predictions", default 30d */
        int64_t alerts_ms;          /* "retention.alerts", published alerts, default 1y */
        int64_t interval_ms;        /* "retention.interval": a pass this often, default 1h */
        int batch_rows;             /* "retention.batch_rows": rows per step, default 2000 */
    } retention;

    struct {
        char level[16]; /* "log.level": "debug" | "info" (default) | "warn" | "error" */
    } log;

    an_rule rules[GW_CFG_MAX_RULES]; /* "rules": array; see analytics/rule.h */
    size_t n_rules;
    /* Rule keys: "name", "sensor" (glob, default "*"), "metric" (glob, default "*"),
     * "above", "clear_below", "below", "clear_above" (numbers), "for", "clear_for"
     * (durations: a number of seconds or a string "500ms", "30s", "5m", "2h", "1d"),
     * "severity" ("info" | "warning" (default) | "critical"). "rate_above" (units per second),
     * "stale_after" (duration). A rule needs at least one of above, below, rate_above, stale_after;
     * clear_below must be <= above and clear_above >= below. */
} gw_config;

/* Fills cfg with the defaults. */
void gw_config_defaults(gw_config *cfg);

/* Parses a config text (len bytes, need not be NUL-terminated) on top of the defaults.
 * Borrows text. On error returns -EINVAL and writes "path: reason" into err
 * (e.g. "rules[2].above: expected a number", "mqtt.prot: unknown key",
 * "line 4: malformed JSON"). Thread: any, no globals. */
int gw_config_parse(gw_config *cfg, const char *text, size_t len, char *err, size_t errlen);

/* Reads and parses a file. Errors as above, plus "<path>: <strerror>" when unreadable. */
int gw_config_load(gw_config *cfg, const char *path, char *err, size_t errlen);

/* Parses a duration ("500ms", "30s", "5m", "2h", "1d", "2w", "5y" (365 d), or a bare number of
 * seconds) into ms.
 * Returns 0 or -1. */
int gw_parse_duration(const char *s, int64_t *out_ms);

/* Builds the topic map of the subscriptions. Returns 0 or a negative errno with err set. */
int gw_config_topic_map(const gw_config *cfg, gw_topic_map **out, char *err, size_t errlen);

/* Prints every option with type, default and description (for `iotgw check --options` and
 * the docs). */
void gw_config_print_options(FILE *f);

#endif
