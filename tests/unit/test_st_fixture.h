/* Fixture of the storage unit tests: a temporary directory per test holding iotgw.db, and a
 * plain SQLite connection to inspect the file as a user would. Include after <cmocka.h>. */
#ifndef TEST_ST_FIXTURE_H
#define TEST_ST_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "st_db.h"

typedef struct fixture {
    char dir[64];
    char path[128];
    char *out; /* test_st_query: the last query's output, freed by teardown */
    size_t out_len;
} fixture;

static inline int setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/iotgw_test_st.XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/iotgw.db", f->dir);
    *state = f;
    return 0;
}

static inline int teardown(void **state) {
    fixture *f = *state;
    DIR *d = opendir(f->dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                char p[512];
                snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
                if (unlink(p) != 0) {
                    rmdir(p);
                }
            }
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f->out);
    free(f);
    return 0;
}

static inline st_db *open_ok(const char *path, const st_db_opts *o) {
    st_db *db = NULL;
    char err[256] = "x";
    int rc = st_db_open(&db, path, o, err, sizeof(err));
    if (rc != 0) {
        print_error("open %s: %d %s\n", path, rc, err);
    }
    assert_int_equal(rc, 0);
    assert_non_null(db);
    assert_string_equal(st_db_errmsg(db), "");
    return db;
}

/* A second, plain SQLite connection to inspect the file as a user would. */
static inline sqlite3 *raw_open(const char *path) {
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
    return h;
}

static inline int64_t raw_int(sqlite3 *h, const char *sql) {
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    return v;
}

static inline void raw_exec(sqlite3 *h, const char *sql) {
    assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
}

#endif
