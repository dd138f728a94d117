/* `iotgw run`: the daemon. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "commands.h"
#include "config.h"
#include "decode.h"
#include "log.h"
#include "mqtt.h"
#include "pipeline.h"

static const char run_usage[] =
    "usage: iotgw run [-c FILE] [options]\n"
    "\n"
    "Runs the gateway: subscribes to the configured sensor topics, stores readings in SQLite,\n"
    "evaluates the rules and publishes alerts. SIGINT/SIGTERM stop it cleanly: every queue is\n"
    "drained and committed first. SIGHUP reloads the rules from the config file; a rule that\n"
    "did not change keeps its state (open alerts, trends, baselines), an open alert of a\n"
    "changed rule goes on and clears by its new limits, one of a removed rule is cleared.\n"
    "\n"
    "options:\n"
    "  -c, --config FILE    configuration file (JSON with comments); without it, defaults:\n"
    "                       broker 127.0.0.1:1883, topics sensors/+/+, database iotgw.db\n"
    "  -H, --host HOST      broker host (overrides mqtt.host); numeric or fast to resolve\n"
    "  -p, --port PORT      broker port (overrides mqtt.port)\n"
    "  -d, --db FILE        SQLite database (overrides storage.path)\n"
    "  -s, --stats SECONDS  log pipeline stats every SECONDS (default 60, 0 = only at exit)\n"
    "  -v, --verbose        log at debug level\n"
    "  -h, --help           this help\n";

int gw__load_config(gw_config *cfg, const char *path, const char *who) {
    char err[512];
    gw_config_defaults(cfg);
    if (path == NULL) {
        return 0;
    }
    int rc = gw_config_load(cfg, path, err, sizeof(err));
    if (rc == -EINVAL) {
        fprintf(stderr, "iotgw %s: %s: %s\n", who, path, err);
        return -1;
    }
    if (rc != 0) {
        /* Unreadable: err names the file already. */
        fprintf(stderr, "iotgw %s: %s\n", who, err);
        return -1;
    }
    return 0;
}

/* The outbox backlog and the database size, read through a connection of its own (the
 * writer's is not shared). Returns 0 or -1. */
static int db_figures(const char *path, int64_t *backlog, int64_t *bytes) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        goto out;
    }
    sqlite3_busy_timeout(db, 200);
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM alerts WHERE published = 0", -1, &st, NULL) !=
            SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        goto out;
    }
    *backlog = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT page_count * page_size FROM pragma_page_count(), "
                           "pragma_page_size()",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        goto out;
    }
    *bytes = sqlite3_column_int64(st, 0);
    rc = 0;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

static void add_num(cJSON *o, const char *name, double v) {
    cJSON_AddItemToObject(o, name, cJSON_CreateNumber(v));
}

/* Publishes the pipeline stats as JSON on <prefix>/stats (QoS 0, not retained). */
static void publish_stats(gw_mqtt *mqtt, gw_pipeline *p, const gw_config *cfg) {
    gw_pipeline_stats st;
    gw_pipeline_stats_get(p, &st);
    cJSON *o = cJSON_CreateObject();
    cJSON *errs = cJSON_CreateObject();
    cJSON *qs = cJSON_CreateArray();
    if (o == NULL || errs == NULL || qs == NULL) {
        cJSON_Delete(o);
        cJSON_Delete(errs);
        cJSON_Delete(qs);
        return;
    }
    cJSON_AddItemToObject(o, "gateway", cJSON_CreateString(cfg->gateway_id));
    add_num(o, "ts_ms", (double)gw_now_ms());
    add_num(o, "messages_in", (double)st.messages_in);
    add_num(o, "readings", (double)st.readings);
    add_num(o, "rows_stored", (double)st.rows_stored);
    add_num(o, "rows_failed", (double)st.rows_failed);
    add_num(o, "rows_duplicate", (double)st.rows_duplicate);
    uint64_t total_errs = 0;
    for (int i = 1; i < GW_DEC_REASON_COUNT; i++) {
        add_num(errs, gw_decode_reason_name((gw_decode_reason)i), (double)st.decode_errors[i]);
        total_errs += st.decode_errors[i];
    }
    add_num(o, "decode_errors_total", (double)total_errs);
    cJSON_AddItemToObject(o, "decode_errors", errs);
    add_num(o, "late_readings", (double)st.late_readings);
    add_num(o, "ingest_dropped", (double)st.ingest_dropped);
    add_num(o, "series_rejected", (double)st.series_rejected);
    add_num(o, "redeliveries_dropped", (double)st.redeliveries_dropped);
    add_num(o, "redeliveries_stored_only", (double)st.redeliveries_stored_only);
    add_num(o, "series", (double)st.series);
    add_num(o, "summaries", (double)st.summaries);
    add_num(o, "alerts", (double)st.alerts);
    add_num(o, "alerts_published", (double)st.alerts_published);
    add_num(o, "retention_passes", (double)st.retention_passes);
    add_num(o, "retention_deleted", (double)st.retention_deleted);
    add_num(o, "retention_summaries", (double)st.retention_summaries);
    for (size_t i = 0; i < st.n_queues; i++) {
        const gw_queue_stats *q = &st.queues[i];
        cJSON *j = cJSON_CreateObject();
        if (j == NULL) {
            continue;
        }
        cJSON_AddItemToObject(j, "name", cJSON_CreateString(q->name));
        add_num(j, "depth", (double)q->depth);
        add_num(j, "hwm", (double)q->hwm);
        add_num(j, "waits", (double)q->waits);
        add_num(j, "drops", (double)q->drops);
        add_num(j, "cap_items", (double)q->cap_items);
        cJSON_AddItemToArray(qs, j);
    }
    cJSON_AddItemToObject(o, "queues", qs);
    cJSON *sto = cJSON_CreateObject();
    if (sto != NULL) {
        const gw_sf_status *sf = &st.storage;
        cJSON_AddItemToObject(sto, "state", cJSON_CreateString(gw_sf_kind_name(sf->kind)));
        add_num(sto, "faults", (double)sf->faults);
        add_num(sto, "readings_held", (double)sf->readings_held);
        add_num(sto, "rows_held", (double)sf->rows_held);
        add_num(sto, "readings_shed", (double)sf->readings_shed);
        add_num(sto, "summaries_shed", (double)sf->summaries_shed);
        add_num(sto, "predictions_shed", (double)sf->preds_shed);
        add_num(sto, "alerts_unstored", (double)sf->alerts_unstored);
        add_num(sto, "alerts_shed", (double)sf->alerts_shed);
        cJSON_AddItemToObject(o, "storage", sto);
    }
    int64_t backlog = 0, bytes = 0;
    if (db_figures(cfg->storage.path, &backlog, &bytes) == 0) {
        add_num(o, "outbox_backlog", (double)backlog);
        add_num(o, "db_bytes", (double)bytes);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL) {
        return;
    }
    char topic[GW_CFG_STR + 16];
    snprintf(topic, sizeof(topic), "%s/stats", cfg->output.prefix);
    if (gw_mqtt_publish(mqtt, topic, text, strlen(text), 0, false) != 0) {
        GW_DEBUG("run", "stats not published: not connected");
    }
    free(text);
}

/* The retained <prefix>/status/storage: published once connected, at every change of the
 * storage state, after every reconnect, and while a fault lasts every 5 s when its counts
 * changed. A publish that fails (not connected) is tried again at the next call. */
typedef struct storage_pub {
    bool done;
    uint64_t seq;
    unsigned connects;
    int64_t next_ms;
    char last[512];
} storage_pub;

static void publish_storage(gw_mqtt *mqtt, gw_pipeline *p, const gw_config *cfg, storage_pub *sp) {
    gw_sf_status st;
    char json[512];
    gw_pipeline_storage_status(p, &st);
    int n = gw_sf_status_json(&st, json, sizeof(json));
    unsigned connects = gw_mqtt_connects(mqtt);
    int64_t now = gw_mono_ms();
    if (n < 0 || connects == 0) {
        return;
    }
    bool due = !sp->done || st.seq != sp->seq || connects != sp->connects ||
               (st.kind != GW_SF_OK && now >= sp->next_ms && strcmp(json, sp->last) != 0);
    if (!due) {
        return;
    }
    char topic[GW_CFG_STR + 16];
    snprintf(topic, sizeof(topic), "%s/status/storage", cfg->output.prefix);
    if (gw_mqtt_publish(mqtt, topic, json, (size_t)n, 1, true) != 0) {
        return;
    }
    sp->done = true;
    sp->seq = st.seq;
    sp->connects = connects;
    sp->next_ms = now + 5000;
    snprintf(sp->last, sizeof(sp->last), "%s", json);
}

/* SIGHUP: the rules of the config file are read again and replace the running ones; the rest of
 * the configuration needs a restart. A config with an error changes nothing. */
static void reload_rules(gw_pipeline *p, const gw_config *running, const char *path) {
    if (path == NULL) {
        GW_WARN("run", "SIGHUP: no configuration file (-c) to reload");
        return;
    }
    gw_config *next = malloc(sizeof(*next));
    char err[512];
    if (next == NULL) {
        GW_ERROR("run", "SIGHUP: out of memory; rules unchanged");
        return;
    }
    gw_config_defaults(next);
    int rc = gw_config_load(next, path, err, sizeof(err));
    if (rc != 0) {
        GW_ERROR("run", "SIGHUP: %s%s%s; rules unchanged", rc == -EINVAL ? path : "",
                 rc == -EINVAL ? ": " : "", err);
        free(next);
        return;
    }
    /* Only the rules are live; say so when other options changed. */
    gw_config cmp = *next;
    cmp.n_rules = running->n_rules;
    memcpy(cmp.rules, running->rules, sizeof(cmp.rules));
    /* mqtt and storage may be overridden on the command line (--host, --port, --db), so they
     * are not compared. */
    memcpy(&cmp.mqtt, &running->mqtt, sizeof(cmp.mqtt));
    memcpy(&cmp.storage, &running->storage, sizeof(cmp.storage));
    if (memcmp(&cmp, running, sizeof(cmp)) != 0) {
        GW_WARN("run",
                "SIGHUP: options other than the rules changed in %s; they apply at the "
                "next restart",
                path);
    }
    if (gw_pipeline_reload_rules(p, next->rules, next->n_rules) != 0) {
        GW_ERROR("run", "SIGHUP: out of memory; rules unchanged");
    } else {
        GW_INFO("run", "SIGHUP: rules reloaded from %s (%zu rules)", path, next->n_rules);
    }
    free(next);
}

int gw_cmd_run(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},   {"db", required_argument, NULL, 'd'},
        {"stats", required_argument, NULL, 's'},  {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *host = NULL, *db = NULL;
    long port = 0, stats_s = 60;
    bool verbose = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:H:p:d:s:vh", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'H':
            host = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 'p':
            port = strtol(optarg, &end, 10);
            if (*end != '\0' || port < 1 || port > 65535) {
                fprintf(stderr, "iotgw run: --port: expected 1..65535, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 's':
            stats_s = strtol(optarg, &end, 10);
            if (*end != '\0' || stats_s < 0 || stats_s > 86400) {
                fprintf(stderr, "iotgw run: --stats: expected 0..86400 seconds, got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            fputs(run_usage, stdout);
            return 0;
        default:
            fputs(run_usage, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "iotgw run: unexpected argument '%s'\n%s", argv[optind], run_usage);
        return 2;
    }
    gw_config *cfg = malloc(sizeof(*cfg));
    if (cfg == NULL) {
        fprintf(stderr, "iotgw run: out of memory\n");
        return 1;
    }
    if (gw__load_config(cfg, config_path, "run") != 0) {
        free(cfg);
        return 2;
    }
    if (host != NULL) {
        snprintf(cfg->mqtt.host, sizeof(cfg->mqtt.host), "%s", host);
    }
    if (port != 0) {
        cfg->mqtt.port = (int)port;
    }
    if (db != NULL) {
        snprintf(cfg->storage.path, sizeof(cfg->storage.path), "%s", db);
    }
    gw_log_set_level_name(cfg->log.level);
    if (verbose) {
        gw_log_set_level(GW_LOG_DEBUG);
    }

    /* Signals go to this thread only (sigtimedwait below); every thread created from here on
     * inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    int status = 1;
    char err[512];
    gw_mqtt *mqtt = NULL;
    gw_pipeline *p = NULL;
    if (gw_mqtt_new(&mqtt, cfg, err, sizeof(err)) != 0) {
        GW_ERROR("run", "%s", err);
        goto out_cfg;
    }
    gw_pipeline_opts po = {.sink = &gw_mqtt_sink, .sink_ctx = mqtt, .storage_retry = true};
    if (gw_pipeline_new(&p, cfg, &po, err, sizeof(err)) != 0) {
        GW_ERROR("run", "%s", err);
        goto out_mqtt;
    }
    gw_mqtt_attach(mqtt, p);
    if (gw_pipeline_start(p) != 0) {
        GW_ERROR("run", "cannot start the pipeline threads");
        goto out_pipeline;
    }
    GW_INFO("run",
            "iotgw %s: gateway '%s', database %s, broker %s:%d, %zu subscriptions, "
            "%zu rules, %d workers",
            IOTGW_VERSION, cfg->gateway_id, cfg->storage.path, cfg->mqtt.host, cfg->mqtt.port,
            cfg->n_subs, cfg->n_rules, cfg->pipeline.workers);

    /* Connect, retrying with a backoff while no broker answers; a signal ends the wait. */
    int backoff_s = 1;
    bool stop = false;
    while (!stop) {
        if (gw_mqtt_connect(mqtt, 10000, err, sizeof(err)) == 0) {
            GW_INFO("run", "connected to %s (MQTT %s); subscribed", gw_mqtt_uri(mqtt),
                    cfg->mqtt.version == 5 ? "5" : "3.1.1");
            break;
        }
        GW_WARN("run", "%s; retrying in %d s", err, backoff_s);
        struct timespec ts = {backoff_s, 0};
        int sig = sigtimedwait(&sigs, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            stop = true;
        } else if (sig == SIGHUP) {
            reload_rules(p, cfg, config_path);
        }
        backoff_s = backoff_s < 30 ? backoff_s * 2 : 30;
    }
    storage_pub spub = {0};
    if (!stop) {
        publish_storage(mqtt, p, cfg, &spub);
    }
    int64_t next_stats = gw_mono_ms() + stats_s * 1000;
    const int64_t pub_every = cfg->output.stats_interval_ms;
    int64_t next_pub = gw_mono_ms() + pub_every;
    while (!stop) {
        struct timespec ts = {1, 0};
        int sig = sigtimedwait(&sigs, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            GW_INFO("run", "%s received: draining and stopping",
                    sig == SIGINT ? "SIGINT" : "SIGTERM");
            stop = true;
        } else if (sig == SIGHUP) {
            reload_rules(p, cfg, config_path);
        }
        if (stats_s > 0 && gw_mono_ms() >= next_stats) {
            gw_pipeline_log_stats(p, "periodic");
            next_stats += stats_s * 1000;
        }
        if (pub_every > 0 && gw_mono_ms() >= next_pub) {
            publish_stats(mqtt, p, cfg);
            next_pub = gw_mono_ms() + pub_every;
        }
        publish_storage(mqtt, p, cfg, &spub);
    }
    if (cfg->mqtt.session_expiry_ms > 0) {
        /* A persistent session: disconnecting stops the inflow and the broker keeps the
         * subscriptions, queueing what arrives until the next start (unsubscribing would lose
         * it). Everything acknowledged is in the ingest queue and the pipeline drains it into
         * SQLite; alerts of the drain stay in the outbox for the next start. */
        gw_mqtt_disconnect(mqtt, 2000);
        gw_pipeline_stop(p);
    } else {
        /* A clean session: after the UNSUBACK no message arrives, so everything acknowledged
         * is in the ingest queue; the drain's alerts can still go out. */
        if (gw_mqtt_is_connected(mqtt) && gw_mqtt_unsubscribe_all(mqtt, 5000) != 0) {
            GW_WARN("run", "unsubscribe not confirmed; stopping anyway");
        }
        gw_pipeline_stop(p);
        gw_mqtt_disconnect(mqtt, 2000);
    }
    gw_pipeline_log_stats(p, "final");
    status = 0;
    /* paho reports the sends still pending when the client is destroyed: the pipeline must
     * still exist then. */
    gw_mqtt_free(mqtt);
    mqtt = NULL;

out_pipeline:
    gw_pipeline_free(p);
out_mqtt:
    gw_mqtt_free(mqtt);
out_cfg:
    free(cfg);
    return status;
}
