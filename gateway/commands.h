/* Entry points of the subcommands: `iotgw <command> [args]`. Each gets argv starting at the
 * command name (argv[0] = "run", ...), parses its own options (with --help), and returns
 * the process exit status: 0 success, 1 runtime failure, 2 usage or configuration error. */
#ifndef GW_COMMANDS_H
#define GW_COMMANDS_H

int gw_cmd_run(int argc, char **argv);
int gw_cmd_check(int argc, char **argv);
int gw_cmd_replay(int argc, char **argv);
int gw_cmd_simulate(int argc, char **argv);
int gw_cmd_query(int argc, char **argv);  /* cmd_query.c */
int gw_cmd_alerts(int argc, char **argv); /* cmd_query.c */

struct gw_config;
/* Shared by the commands: fills cfg with the defaults, then the file at path when not NULL.
 * Prints "iotgw <who>: <path>: <reason>" on error and returns -1. */
int gw__load_config(struct gw_config *cfg, const char *path, const char *who);

#endif
