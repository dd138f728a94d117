/* Shared by the files of bench_storage: bench_storage.c (options, the write path, sizes),
 * bench_storage_query.c (the query latencies) and bench_storage_thinned.c (window queries over
 * thinned history). Single-threaded. */
#ifndef BENCH_STORAGE_H
#define BENCH_STORAGE_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#define DAY_MS 86400000LL

/* Monotonic seconds. */
double bs_now_s(void);

/* The next number of the splitmix64 sequence in *s. */
uint64_t bs_splitmix(uint64_t *s);

/* The one integer a statement (a pragma) returns, or -1. Borrows h and sql. */
int64_t bs_pragma_int(sqlite3 *h, const char *sql);

/* Runs every query kind over the same `queries` random series of the n_series ones
 * (s000000 ...; metric temp) of the database at path, and prints p50/p99/max per kind under
 * label. end_ms: just after the newest reading; per_series: readings of one series in the last
 * `days` days (checked against what the queries return); plans: print the SQL query plans on
 * standard error. Returns 0, or -1 after a message on standard error. */
int bs_query_pass(int64_t queries, int64_t days, const char *path, const char *label,
                  int64_t n_series, int64_t end_ms, int64_t per_series, bool plans);

/* Builds a thinned history in dir (n_series series, `days` days ending at a fixed time: the
 * older ones as 1-minute summaries, the last raw_days as raw readings every 10 s), runs the
 * window queries of `iotgw query` on `queries` random series, prints p50/p99/max per kind and
 * the query plans on standard error, and removes the file. Returns 0, or -1 after a message on
 * standard error. */
int bs_thinned_pass(const char *dir, int64_t n_series, int64_t days, int64_t raw_days,
                    int64_t queries);

#endif
