/* `iotgw query` and `iotgw alerts`: read the history database (storage/st_query.h) without
 * disturbing the gateway that writes it. */
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "config.h"
#include "st_query.h"

static const char query_head[] =
    "usage: iotgw query --db FILE [options]\n"
    "\n"
    "Prints readings from the history: raw (v_readings: sensor, metric, ts_ms, ts, value,\n"
    "anomaly), oldest first, or aggregated per time window with --window.\n"
    "\n"
    "options:\n";

static const char alerts_head[] =
    "usage: iotgw alerts --db FILE [options]\n"
    "\n"
    "Prints the alert transitions (v_alerts), oldest first, or with --active the alerts raised\n"
    "now (v_active_alerts: per series, kind and rule, the newest transition when it is\n"
    "'raised'). Columns: id, sensor, metric, kind, state, severity, ts_ms, ts, value,\n"
    "threshold, message, published, rule. --since/--until apply to ts_ms.\n"
    "\n"
    "options:\n"
    "  -a, --active          only the alerts raised now\n";

_Static_assert(ST_QUERY_LIMIT_MAX == 100000000 && ST_QUERY_LIMIT_DEFAULT == 1000,
               "the help text below states the limits");

static const char common_options[] =
    "  -d, --db FILE         the SQLite database (required unless -c names one)\n"
    "  -c, --config FILE     take the database from this configuration's storage.path\n"
    "  -s, --sensor GLOB     sensors matching GLOB (case-sensitive; * any text, ? one\n"
    "                        character, [abc] one of; [*] a literal *); default: all\n"
    "  -m, --metric GLOB     metrics matching GLOB; default: all\n"
    "      --since TIME      from TIME, inclusive\n"
    "      --until TIME      up to TIME, exclusive\n"
    "  -f, --format FORMAT   table (default: aligned columns, reals to 10 digits), csv\n"
    "                        (RFC 4180, a header line, NULL as an empty field) or json (one\n"
    "                        array of objects, NULL as null)\n"
    "  -n, --limit N         at most N rows, 1 to 100000000 (default 1000); when more\n"
    "                        match, a note on standard error says so\n"
    "  -r, --reverse         newest first (the limit then keeps the newest rows)\n"
    "  -h, --help            this help\n";

static const char window_options[] =
    "  -w, --window SIZE     aggregates per window of SIZE (1m, 15m, 1h, 1d; 1ms to 3650d),\n"
    "                        aligned to the Unix epoch (a 1h window starts on the hour, UTC):\n"
    "                        sensor, metric, start_ms, start, end_ms, count, min, max, avg,\n"
    "                        first, last. --since/--until select the windows they overlap,\n"
    "                        each over all of its readings.\n"
    "      --source SOURCE   where windows come from:\n"
    "                        auto (default): each window from the best source that has it:\n"
    "                          a stored summary of exactly SIZE (v_summaries); else stored\n"
    "                          summaries of smaller sizes that divide SIZE (e.g. 1-minute\n"
    "                          ones retention left), and raw readings where they have none;\n"
    "                          else the raw readings. A range over thinned history is\n"
    "                          answered whole; no reading counts twice\n"
    "                        raw: always from the raw readings (includes the window still\n"
    "                          open and late readings, which summaries do not)\n"
    "                        summaries: only the stored summaries of exactly SIZE\n"
    "                          (storage.raw = false keeps no raw readings)\n";

static const char notes[] =
    "\n"
    "TIME is a duration before now (30m, 24h, 7d, 2w, 1.5h, 90s, 500ms), now, an RFC 3339\n"
    "time with its zone (2024-05-01T12:00:00Z, 2024-05-01T14:00:00.250+02:00), a date\n"
    "(2024-05-01: midnight UTC) or epoch milliseconds (1714564800000).\n"
    "\n"
    "The database is opened read-only: a query never blocks the gateway writing it (WAL), and\n"
    "sees one consistent snapshot. In the output, ts columns are RFC 3339 UTC with\n"
    "milliseconds, *_ms columns epoch milliseconds; docs/history.md documents every column.\n"
    "\n"
    "exit status: 0 success (also when nothing matches), 1 database error (missing file, not\n"
    "an iotgw database, older or newer schema, SQLite or write error), 2 usage error\n";

static void usage(bool alerts) {
    fputs(alerts ? alerts_head : query_head, stdout);
    fputs(common_options, stdout);
    if (!alerts) {
        fputs(window_options, stdout);
    }
    fputs(notes, stdout);
}

typedef struct args {
    const char *db, *config;
    st_filter f;
    st_format fmt;
    st_source source;
    int64_t window_ms; /* 0: raw readings */
    bool active, has_source;
} args;

static int usage_error(const char *who, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports a usage error and returns exit status 2. */
static int usage_error(const char *who, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "iotgw %s: ", who);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(iotgw %s --help lists the options)\n", who);
    return 2;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parses argv into *a. Returns -1 to go on, or the exit status to return: 0 after --help, 2
 * after a usage error (reported on stderr). */
static int parse(int argc, char **argv, bool alerts, args *a) {
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},     {"config", required_argument, NULL, 'c'},
        {"sensor", required_argument, NULL, 's'}, {"metric", required_argument, NULL, 'm'},
        {"since", required_argument, NULL, 'S'},  {"until", required_argument, NULL, 'U'},
        {"format", required_argument, NULL, 'f'}, {"limit", required_argument, NULL, 'n'},
        {"reverse", no_argument, NULL, 'r'},      {"help", no_argument, NULL, 'h'},
        {"window", required_argument, NULL, 'w'}, {"source", required_argument, NULL, 'O'},
        {"active", no_argument, NULL, 'a'},       {NULL, 0, NULL, 0},
    };
    const char *who = alerts ? "alerts" : "query";
    const char *since = NULL, *until = NULL;
    int64_t now = now_ms();
    int c, li = 0;
    *a = (args){.fmt = ST_FORMAT_TABLE, .source = ST_SOURCE_AUTO};
    st_filter_init(&a->f);
    optind = 1;
    opterr = 0; /* reported below, with the command's name */
    while ((c = getopt_long(argc, argv, alerts ? ":d:c:s:m:f:n:rha" : ":d:c:s:m:f:n:rhw:", opts,
                            &li)) != -1) {
        char *end;
        switch (c) {
        case 'd':
            a->db = optarg;
            break;
        case 'c':
            a->config = optarg;
            break;
        case 's':
            a->f.sensor = optarg;
            break;
        case 'm':
            a->f.metric = optarg;
            break;
        case 'S':
        case 'U':
            if (st_query_parse_time(optarg, now, c == 'S' ? &a->f.since_ms : &a->f.until_ms) != 0) {
                return usage_error(who,
                                   "%s: expected a duration like 24h or an RFC 3339 time, got '%s'",
                                   c == 'S' ? "--since" : "--until", optarg);
            }
            *(c == 'S' ? &since : &until) = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "table") == 0) {
                a->fmt = ST_FORMAT_TABLE;
            } else if (strcmp(optarg, "csv") == 0) {
                a->fmt = ST_FORMAT_CSV;
            } else if (strcmp(optarg, "json") == 0) {
                a->fmt = ST_FORMAT_JSON;
            } else {
                return usage_error(who, "%s: expected table, csv or json, got '%s'", "--format",
                                   optarg);
            }
            break;
        case 'n': {
            long long n = strtoll(optarg, &end, 10);
            if (end == optarg || *end != '\0' || n < 1 || n > ST_QUERY_LIMIT_MAX) {
                return usage_error(who, "--limit: expected a number of rows from 1 to %d, got '%s'",
                                   ST_QUERY_LIMIT_MAX, optarg);
            }
            a->f.limit = n;
            break;
        }
        case 'r':
            a->f.newest_first = true;
            break;
        case 'w':
            if (alerts) {
                goto unknown;
            }
            if (st_query_parse_duration(optarg, &a->window_ms) != 0) {
                return usage_error(
                    who, "%s: expected a duration like 15m or 1h (1ms to 3650d), got '%s'",
                    "--window", optarg);
            }
            break;
        case 'O':
            if (alerts) {
                goto unknown;
            }
            a->has_source = true;
            if (strcmp(optarg, "auto") == 0) {
                a->source = ST_SOURCE_AUTO;
            } else if (strcmp(optarg, "raw") == 0) {
                a->source = ST_SOURCE_RAW;
            } else if (strcmp(optarg, "summaries") == 0) {
                a->source = ST_SOURCE_SUMMARIES;
            } else {
                return usage_error(who, "%s: expected auto, raw or summaries, got '%s'", "--source",
                                   optarg);
            }
            break;
        case 'a':
            if (!alerts) {
                goto unknown;
            }
            a->active = true;
            break;
        case 'h':
            usage(alerts);
            return 0;
        case ':':
            return usage_error(who, "%s needs a value", argv[optind - 1]);
        default:
            if (optopt != 0) {
                return usage_error(who, "unknown option '-%c'", optopt);
            }
            return usage_error(who, "unknown option '%s'", argv[optind - 1]);
        unknown: /* an option of the other command */
            return usage_error(who, "unknown option '--%s'", opts[li].name);
        }
    }
    if (optind < argc) {
        return usage_error(who, "unexpected argument '%s'", argv[optind]);
    }
    if (a->db == NULL && a->config == NULL) {
        return usage_error(who, "--db FILE is required");
    }
    if (a->has_source && a->window_ms == 0) {
        return usage_error(who, "--source needs --window");
    }
    if (since != NULL && until != NULL && a->f.since_ms >= a->f.until_ms) {
        return usage_error(who, "--since %s is not before --until %s", since, until);
    }
    return -1;
}

static int run(int argc, char **argv, bool alerts) {
    const char *who = alerts ? "alerts" : "query";
    args a;
    int status = parse(argc, argv, alerts, &a);
    if (status >= 0) {
        return status;
    }
    gw_config *cfg = NULL;
    if (a.db == NULL) {
        cfg = malloc(sizeof(*cfg));
        if (cfg == NULL) {
            fprintf(stderr, "iotgw %s: out of memory\n", who);
            return 1;
        }
        if (gw__load_config(cfg, a.config, who) != 0) {
            free(cfg);
            return 2;
        }
        a.db = cfg->storage.path;
    }
    char err[600];
    st_query *q = NULL;
    if (st_query_open(&q, a.db, 0, err, sizeof(err)) != 0) {
        fprintf(stderr, "iotgw %s: %s\n", who, err);
        free(cfg);
        return 1;
    }
    st_result res = {0};
    int rc = alerts ? st_query_alerts(q, &a.f, a.active, a.fmt, stdout, &res)
             : a.window_ms > 0
                 ? st_query_windows(q, &a.f, a.window_ms, a.source, a.fmt, stdout, &res)
                 : st_query_readings(q, &a.f, a.fmt, stdout, &res);
    if (rc != 0) {
        fprintf(stderr, "iotgw %s: %s\n", who, st_query_errmsg(q));
        status = 1;
    } else {
        status = 0;
        if (res.truncated) {
            fprintf(stderr,
                    "iotgw %s: showing the %s %" PRId64 " rows; more match: narrow --since/--until"
                    " or raise --limit (at most %d)\n",
                    who, a.f.newest_first ? "newest" : "oldest", res.rows, ST_QUERY_LIMIT_MAX);
        }
    }
    st_query_close(q);
    free(cfg);
    return status;
}

int gw_cmd_query(int argc, char **argv) {
    return run(argc, argv, false);
}

int gw_cmd_alerts(int argc, char **argv) {
    return run(argc, argv, true);
}
