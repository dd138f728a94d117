/* `iotgw replay FILE`: a capture made with `mosquitto_sub -v` (topic, space, payload, one
 * message a line) through the same decode, workers and writer, with no broker. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "commands.h"
#include "config.h"
#include "decode.h"
#include "log.h"
#include "pipeline.h"

static const char replay_usage[] =
    "usage: iotgw replay [options] FILE\n"
    "\n"
    "Feeds a capture through the gateway's decode, workers and writer, without a broker.\n"
    "FILE holds one message a line, as `mosquitto_sub -v -t 'sensors/#'` prints them: the\n"
    "topic, one space, the payload (payloads with a newline cannot be replayed). '-' reads\n"
    "standard input. Results are deterministic: readings without a timestamp get\n"
    "START + (line number - 1) * STEP as their time, never the wall clock.\n"
    "\n"
    "options:\n"
    "  -c, --config FILE     configuration (subscriptions, rules, storage)\n"
    "  -d, --db FILE         SQLite database (overrides storage.path)\n"
    "      --start TIME      time of line 1 for readings without ts: RFC 3339 or epoch ms\n"
    "                        (default 2000-01-01T00:00:00Z)\n"
    "      --step MS         time between lines for readings without ts (default 1000)\n"
    "  -w, --workers N       analytics workers (default 1: alert ids and row order are then\n"
    "                        deterministic; more workers interleave them)\n"
    "  -a, --print-alerts    write every alert as a JSON line to standard output\n"
    "  -q, --quiet           no progress on standard error\n"
    "  -h, --help            this help\n"
    "\n"
    "exit status: 0 done (bad lines are counted and reported, not fatal), 1 I/O or database\n"
    "failure, 2 usage or configuration error\n";

#define DEFAULT_START_MS 946684800000LL

static int parse_time(const char *s, int64_t *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end == '\0' && end != s) {
        *out = v;
        return 0;
    }
    return gw_parse_rfc3339(s, strlen(s), out);
}

static void progress(gw_pipeline *p, uint64_t lines, int64_t t0, off_t size, off_t pos) {
    double secs = (double)(gw_mono_ms() - t0) / 1000.0;
    gw_pipeline_stats st;
    gw_pipeline_stats_get(p, &st);
    if (size > 0) {
        fprintf(stderr, "replay: %llu lines, %llu readings (%.0f%%), %.0f lines/s\n",
                (unsigned long long)lines, (unsigned long long)st.readings,
                100.0 * (double)pos / (double)size, secs > 0 ? (double)lines / secs : 0.0);
    } else {
        fprintf(stderr, "replay: %llu lines, %llu readings, %.0f lines/s\n",
                (unsigned long long)lines, (unsigned long long)st.readings,
                secs > 0 ? (double)lines / secs : 0.0);
    }
}

int gw_cmd_replay(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"db", required_argument, NULL, 'd'},
        {"start", required_argument, NULL, 'S'},
        {"step", required_argument, NULL, 'T'},
        {"workers", required_argument, NULL, 'w'},
        {"print-alerts", no_argument, NULL, 'a'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *db = NULL;
    int64_t start = DEFAULT_START_MS, step = 1000;
    long workers = 1;
    bool print_alerts = false, quiet = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:d:w:aqh", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 'S':
            if (parse_time(optarg, &start) != 0) {
                fprintf(stderr, "iotgw replay: --start: expected RFC 3339 or epoch ms, got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'T':
            step = strtoll(optarg, &end, 10);
            if (*end != '\0' || step < 0) {
                fprintf(stderr, "iotgw replay: --step: expected milliseconds >= 0, got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'a':
            print_alerts = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            fputs(replay_usage, stdout);
            return 0;
        default:
            fputs(replay_usage, stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "iotgw replay: expected one FILE (or -)\n%s", replay_usage);
        return 2;
    }
    const char *path = argv[optind];
    gw_config *cfg = malloc(sizeof(*cfg));
    if (cfg == NULL) {
        return 1;
    }
    if (gw__load_config(cfg, config_path, "replay") != 0) {
        free(cfg);
        return 2;
    }
    if (db != NULL) {
        snprintf(cfg->storage.path, sizeof(cfg->storage.path), "%s", db);
    }
    cfg->pipeline.workers = (int)workers;
    gw_log_set_level_name(cfg->log.level);

    int status = 1;
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (in == NULL) {
        fprintf(stderr, "iotgw replay: %s: %s\n", path, strerror(errno));
        free(cfg);
        return 1;
    }
    struct stat sb;
    off_t size = (in != stdin && fstat(fileno(in), &sb) == 0) ? sb.st_size : 0;
    char err[512];
    gw_pipeline *p = NULL;
    gw_pipeline_opts po = {.inline_decode = true, .print_alerts = print_alerts};
    if (gw_pipeline_new(&p, cfg, &po, err, sizeof(err)) != 0) {
        fprintf(stderr, "iotgw replay: %s\n", err);
        goto out_file;
    }
    if (gw_pipeline_start(p) != 0) {
        fprintf(stderr, "iotgw replay: cannot start the pipeline threads\n");
        goto out_pipeline;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint64_t lines = 0, no_space = 0;
    int64_t t0 = gw_mono_ms(), next_progress = t0 + 2000;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lines++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            len--;
        }
        if (len == 0) {
            continue;
        }
        char *sp = memchr(line, ' ', (size_t)len);
        if (sp == NULL) {
            no_space++;
            continue;
        }
        size_t tlen = (size_t)(sp - line);
        gw_pipeline_decode(p, line, tlen, sp + 1, (size_t)len - tlen - 1,
                           start + (int64_t)(lines - 1) * step);
        if (!quiet && (lines & 0x3fff) == 0 && gw_mono_ms() >= next_progress) {
            progress(p, lines, t0, size, ftello(in));
            next_progress = gw_mono_ms() + 2000;
        }
    }
    if (ferror(in)) {
        fprintf(stderr, "iotgw replay: %s: read error: %s\n", path, strerror(errno));
    } else {
        status = 0;
    }
    free(line);
    gw_pipeline_stop(p);
    gw_pipeline_stats st;
    gw_pipeline_stats_get(p, &st);
    double secs = (double)(gw_mono_ms() - t0) / 1000.0;
    uint64_t bad = 0;
    for (int i = 1; i < GW_DEC_REASON_COUNT; i++) {
        bad += st.decode_errors[i];
    }
    if (!quiet || bad + no_space + st.rows_failed > 0) {
        fprintf(stderr,
                "replay: %llu lines, %llu readings, %llu stored, %llu copies skipped, %llu late, "
                "%llu summaries, "
                "%llu alerts, %llu series, %llu bad messages, %llu lines without a space, "
                "%llu rows failed, %.2f s (%.0f readings/s)\n",
                (unsigned long long)lines, (unsigned long long)st.readings,
                (unsigned long long)st.rows_stored, (unsigned long long)st.rows_duplicate,
                (unsigned long long)st.late_readings, (unsigned long long)st.summaries,
                (unsigned long long)st.alerts, (unsigned long long)st.series,
                (unsigned long long)bad, (unsigned long long)no_space,
                (unsigned long long)st.rows_failed, secs,
                secs > 0 ? (double)st.readings / secs : 0.0);
        for (int i = 1; i < GW_DEC_REASON_COUNT; i++) {
            if (st.decode_errors[i] > 0) {
                fprintf(stderr, "replay:   %s: %llu\n", gw_decode_reason_name((gw_decode_reason)i),
                        (unsigned long long)st.decode_errors[i]);
            }
        }
    }
    if (st.rows_failed > 0) {
        status = 1;
    }
out_pipeline:
    gw_pipeline_free(p);
out_file:
    if (in != stdin) {
        fclose(in);
    }
    free(cfg);
    return status;
}
