/* `iotgw run`: the daemon. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "commands.h"
#include "config.h"
#include "log.h"
#include "mqtt.h"
#include "pipeline.h"

static const char run_usage[] =
    "usage: iotgw run [-c FILE] [options]\n"
    "\n"
    "Runs the gateway: subscribes to the configured sensor topics, stores readings in SQLite,\n"
    "evaluates the rules and publishes alerts. SIGINT/SIGTERM stop it cleanly: every queue is\n"
    "drained and committed first. SIGHUP reloads the rules from the config file; a rule that\n"
    "did not change keeps its state (open alerts, trends, baselines).\n"
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
    gw_pipeline_opts po = {.sink = &gw_mqtt_sink, .sink_ctx = mqtt};
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
            GW_INFO("run", "connected to %s:%d; subscribed", cfg->mqtt.host, cfg->mqtt.port);
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
    int64_t next_stats = gw_mono_ms() + stats_s * 1000;
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
    }
    /* Stop the inflow first: after the UNSUBACK no message arrives, so everything the gateway
     * acknowledged is in the ingest queue, and the pipeline drains it into SQLite. */
    if (gw_mqtt_is_connected(mqtt) && gw_mqtt_unsubscribe_all(mqtt, 5000) != 0) {
        GW_WARN("run", "unsubscribe not confirmed; stopping anyway");
    }
    gw_pipeline_stop(p);
    gw_mqtt_disconnect(mqtt, 2000);
    gw_pipeline_log_stats(p, "final");
    status = 0;

out_pipeline:
    gw_pipeline_free(p);
out_mqtt:
    gw_mqtt_free(mqtt);
out_cfg:
    free(cfg);
    return status;
}
