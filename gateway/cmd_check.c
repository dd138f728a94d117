/* `iotgw check`: validates a configuration file without connecting to anything. */
#include "commands.h"
#include "config.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f) {
    fputs("usage: iotgw check -c FILE\n"
          "       iotgw check --options\n"
          "Validates a configuration file: prints \"FILE: ok (...)\" and exits 0, or prints\n"
          "\"FILE: <option path>: <reason>\" on stderr and exits 2.\n"
          "\n"
          "  -c, --config FILE  the configuration (JSON; // and /* */ comments allowed)\n"
          "      --options      print every option with its type, default and description\n"
          "  -h, --help         print this help\n",
          f);
}

static int usage_error(const char *fmt, const char *arg) {
    fputs("iotgw check: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n", stderr);
    usage(stderr);
    return 2;
}

/* A database in a directory that does not exist is no config error (iotgw run starts, reports
 * the storage fault and waits for the directory), but most likely a mistake: say so. */
static void warn_missing_dir(const char *file, const char *path) {
    char dir[PATH_MAX];
    struct stat st;
    snprintf(dir, sizeof(dir), "%s", path);
    char *d = dirname(dir);
    if (stat(d, &st) != 0 && errno == ENOENT) {
        fprintf(stderr,
                "%s: warning: storage.path: directory %s does not exist; iotgw run would start, "
                "report the storage fault \"unavailable\" and wait for it\n",
                file, d);
    }
}

int gw_cmd_check(int argc, char **argv) {
    const char *file = NULL;
    bool options = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--options") == 0) {
            options = true;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) {
                return usage_error("%s needs a file", a);
            }
            file = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            file = a + 9;
        } else {
            return usage_error("unexpected argument '%s'", a);
        }
    }
    if (options) {
        gw_config_print_options(stdout);
        if (!file) {
            return 0;
        }
    }
    if (!file) {
        return usage_error("%s", "missing -c FILE");
    }

    int status = 2;
    char err[512];
    gw_topic_map *map = NULL;
    gw_config *cfg = malloc(sizeof *cfg);
    if (!cfg) {
        fprintf(stderr, "iotgw check: out of memory\n");
        return 1;
    }
    int rc = gw_config_load(cfg, file, err, sizeof err);
    if (rc == -EINVAL) {
        fprintf(stderr, "%s: %s\n", file, err);
        goto free_cfg;
    }
    if (rc != 0) {
        /* Unreadable: err already names the file. */
        fprintf(stderr, "iotgw check: %s\n", err);
        status = rc == -ENOMEM ? 1 : 2;
        goto free_cfg;
    }
    rc = gw_config_topic_map(cfg, &map, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", file, err);
        status = rc == -ENOMEM ? 1 : 2;
        goto free_cfg;
    }
    printf("%s: ok (%zu subscriptions, %zu rules)\n", file, cfg->n_subs, cfg->n_rules);
    warn_missing_dir(file, cfg->storage.path);
    status = 0;
    gw_topic_map_free(map);
free_cfg:
    free(cfg);
    return status;
}
