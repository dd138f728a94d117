/* Shared by st_query.c and st_format.c only: the row sinks that write a result set as a table,
 * CSV or JSON (formats described in st_query.h). Single-threaded: one sink per query. */
#ifndef ST_QUERY_INTERNAL_H
#define ST_QUERY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <sqlite3.h>

#include "st_query.h"

/* The widest result (alerts) has 13 columns. */
#define ST__MAX_COLS 32

typedef struct st__sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} st__sbuf;

typedef struct st__sink {
    st_format fmt;
    FILE *out;
    sqlite3_stmt *st;
    int ncol;
    int64_t rows; /* rows written (table: also those held) */
    st__sbuf line;
    /* table only */
    char **cells;  /* held rows, ncol cells each */
    size_t held;   /* rows in cells */
    size_t *width; /* per column, in code points */
    bool *number;  /* per column: holds numbers ... */
    bool *text;    /* ... and no text: right-aligned */
    bool started;  /* header written, held rows flushed, widths fixed */
} st__sink;

/* Prepares a sink for the rows of st (borrowed, like out, until st__sink_free): it writes the
 * first ncol columns (1..sqlite3_column_count; the others are the caller's). Returns 0,
 * ST_ENOMEM, or ST_EIO for more than ST__MAX_COLS or a bad ncol. st__sink_free is due either
 * way. */
int st__sink_init(st__sink *k, st_format fmt, FILE *out, sqlite3_stmt *st, int ncol);

/* Writes (or, for a table, may hold) the current row of st. Returns 0 or ST_ENOMEM. Write
 * errors are left in ferror(out). */
int st__sink_row(st__sink *k);

/* Writes what the result still owes: headers of an empty result, held table rows, the end of
 * the JSON array. Returns 0 or ST_ENOMEM. */
int st__sink_end(st__sink *k);

void st__sink_free(st__sink *k);

/* Writes the query plan (EXPLAIN QUERY PLAN, one step a line) of the statement that
 * st_query_windows would run with these arguments, for tests and benchmarks. Returns 0 or a
 * negative ST_E* code, like st_query_windows. */
int st__query_windows_plan(st_query *q, const st_filter *f, int64_t window_ms, st_source src,
                           FILE *out);

#endif
