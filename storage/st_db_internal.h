/* Shared between the storage connection's files: st_db.c (connection, errors, statements,
 * transactions, merge), st_db_schema.c (schema and migrations) and st_db_rows.c (inserts and
 * reads). Same thread rules as st_db.h: one connection, one thread at a time. */
#ifndef ST_DB_INTERNAL_H
#define ST_DB_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "st_db.h"

/* The prepared statements of a connection: st__db_stmt_defs (st_db.c) holds their SQL. */
enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_INS_READING,
    S_INS_READINGS_CHUNK,
    S_INS_PREDICTION,
    S_INS_ALERT,
    S_SEL_SERIES,
    S_INS_SERIES,
    S_MARK_PUB,
    S_UNPUBLISHED,
    S_COUNT_READINGS,
    S_COUNT_ALERTS,
    S_INS_SUMMARY,
    S_MERGE_BEGIN,
    S_MERGE_COPY,
    S_MERGE_CLEAR,
    S_MERGE_COMMIT,
    S__COUNT
};

typedef struct st__db_stmt_def {
    const char *what; /* prefix of error messages */
    const char *sql;
} st__db_stmt_def;

extern const st__db_stmt_def st__db_stmt_defs[S__COUNT];

struct st_db {
    sqlite3 *h;
    char *path;
    bool read_only;
    int64_t recent;     /* rows in readings_recent, or more after a rollback */
    int64_t retry_at;   /* after a failed merge, do not try again before recent reaches this */
    int64_t merge_rows; /* from st_db_opts; 0 for the default */
    int64_t n_series;
    int64_t maybe_dup;  /* staged rows that may repeat a stored reading (st_db_insert_readings) */
    int64_t duplicates; /* copies skipped by merges since open */
    int64_t merges;     /* merges since open */
    int64_t staged_min; /* smallest ts_ms staged since the last merge (INT64_MAX: none), or
                           smaller after a rollback */
    sqlite3_stmt *stmt[S__COUNT];
    char err[512];
};

/* ---- st_db.c ---- */

/* Records "<what>: <sqlite message>" in db->err and returns the ST_E* code of rc (an SQLite
 * code). */
int st__db_fail(st_db *db, const char *what, int rc);

/* Records a reason that is not an SQLite error; returns code. */
int st__db_fail_msg(st_db *db, int code, const char *what, const char *msg);

/* Resets a statement and clears its bindings, for its next use. */
void st__db_release(sqlite3_stmt *st);

/* Steps a bound statement that returns no row, then releases it. Returns 0 or ST_E*. */
int st__db_step_done(st_db *db, enum stmt_id id);

/* Runs sql that returns one integer into *out; exec runs sql without a result. Both return 0 or
 * ST_E*, with "<what>: ..." in db->err. */
int st__db_query_int(st_db *db, const char *what, const char *sql, int64_t *out);
int st__db_exec_sql(st_db *db, const char *what, const char *sql);

/* Rolls back an open transaction after a failure, keeping the first error. Returns 0 or -1. */
int st__db_rollback_quietly(st_db *db);

/* Merges the staged readings when enough are staged (see st_db.c). */
void st__db_merge_if_due(st_db *db);

/* ---- st_db_schema.c ---- */

/* Refuses files that are not iotgw databases, or come from a newer iotgw. Returns 0 or ST_E*. */
int st__db_check_identity(st_db *db);

/* Brings the schema to ST_SCHEMA_VERSION, one migration a transaction. Returns 0 or ST_E*. */
int st__db_migrate(st_db *db);

#endif
