/* iotgw: the command-line front door. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static const char usage[] =
    "usage: iotgw <command> [options]\n"
    "\n"
    "An IoT sensor-analytics gateway: MQTT in, alerts out, history in SQLite.\n"
    "\n"
    "commands:\n"
    "  run        run the gateway (the daemon)\n"
    "  check      validate a configuration file\n"
    "  replay     feed a `mosquitto_sub -v` capture through the pipeline, no broker\n"
    "  simulate   publish synthetic sensors with drifts, spikes and dropouts\n"
    "  query      print readings from the history, raw or per time window\n"
    "  alerts     print alert transitions from the history, or the active alerts\n"
    "  version    print the version\n"
    "\n"
    "`iotgw <command> --help` documents each command's options.\n";

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("iotgw %s\n", IOTGW_VERSION);
        return 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } commands[] = {
        {"run", gw_cmd_run},           {"check", gw_cmd_check}, {"replay", gw_cmd_replay},
        {"simulate", gw_cmd_simulate}, {"query", gw_cmd_query}, {"alerts", gw_cmd_alerts},
    };
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(cmd, commands[i].name) == 0) {
            return commands[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "iotgw: unknown command '%s'\n\n%s", cmd, usage);
    return 2;
}
