/* The fixture of the pipeline tests (test_pipeline.c, test_restore.c, test_reload.c): a
 * temporary directory with the database path, a config with the defaults and storage there,
 * threshold rules, and reads of one value from the database. Included once per test file. */
#ifndef TEST_PIPELINE_FIXTURE_H
#define TEST_PIPELINE_FIXTURE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

typedef struct fixture {
    char dir[64];
    char db[128];
    gw_config *cfg;
} fixture;

/* A fixture in a new /tmp/<prefix>-XXXXXX directory, the config at its defaults with the
 * database there and no rules. NULL on failure. */
static inline fixture *fixture_new(const char *prefix) {
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/%s-XXXXXX", prefix);
    f->cfg = malloc(sizeof(*f->cfg));
    if (f->cfg == NULL || mkdtemp(f->dir) == NULL) {
        free(f->cfg);
        free(f);
        return NULL;
    }
    snprintf(f->db, sizeof(f->db), "%s/t.db", f->dir);
    gw_config_defaults(f->cfg);
    snprintf(f->cfg->storage.path, sizeof(f->cfg->storage.path), "%s", f->db);
    f->cfg->n_rules = 0;
    return f;
}

/* A threshold rule on metric "temp" of every sensor: above `level` (clears below `clear`)
 * when high, else below `level` (clears above `clear`). */
static inline void threshold_rule(an_rule *r, const char *name, bool high, double level,
                                  double clear, an_severity sev) {
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->sensor_glob, sizeof(r->sensor_glob), "*");
    snprintf(r->metric_glob, sizeof(r->metric_glob), "temp");
    if (high) {
        r->threshold.has_above = true;
        r->threshold.above = level;
        r->threshold.clear_below = clear;
    } else {
        r->threshold.has_below = true;
        r->threshold.below = level;
        r->threshold.clear_above = clear;
    }
    r->threshold.severity = sev;
}

/* The cmocka teardown: removes the directory and frees the fixture. */
static inline int teardown(void **state) {
    fixture *f = *state;
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0) {
        return -1;
    }
    free(f->cfg);
    free(f);
    return 0;
}

/* The first column of the first row of sql on db (read-only), or -1. */
static inline int64_t query_int(const char *db, const char *sql) {
    sqlite3 *h;
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            v = sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return v;
}

/* The same as text into out ("" when none). */
static inline void query_text(const char *db, const char *sql, char *out, size_t len) {
    sqlite3 *h;
    sqlite3_stmt *st;
    out[0] = '\0';
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL) {
            snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
}

#endif
