/* Shared between the configuration's files: config.c (the option tables and the public entry
 * points), config_parse.c (the machinery that walks a table) and config_check.c (the finishing
 * of each section). Nothing here keeps state: any thread may call these, each on its own
 * objects (everything is borrowed). */
#ifndef GW_CONFIG_INTERNAL_H
#define GW_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "config.h"

#define PATH_LEN     192
#define MS_PER_DAY   86400000LL
#define DURATION_MAX (30 * MS_PER_DAY)

/* Retention keeps run to years; the other durations stop at DURATION_MAX. */
#define MS_PER_YEAR (365 * MS_PER_DAY)
#define RETAIN_MAX  (100 * MS_PER_YEAR)

typedef enum opt_type {
    OPT_STRING,    /* char array, NUL-terminated; max = longest length in bytes */
    OPT_INT,       /* int, min..max */
    OPT_INT64,     /* int64_t, min..max */
    OPT_BOOL,      /* bool */
    OPT_ENUM,      /* a C enum (int sized); the value is the index in names */
    OPT_ENUM_NAME, /* one of names, kept as a string */
    OPT_DURATION,  /* int64_t milliseconds, min..max; JSON number of seconds or a string */
    OPT_NUMBER,    /* finite double, > 0 when positive; flag is set when given */
    OPT_OBJECT,    /* members in sub, landing relative to the same base */
    OPT_ARRAY,     /* array of objects: elements in sub, min..max entries */
} opt_type;

typedef struct opt_table opt_table;

/* Completes one object once all its keys are parsed: computed defaults, cross-field checks.
 * `seen` has bit k set when the table's option k was given. */
typedef int (*finish_fn)(void *obj, size_t index, uint32_t seen, const char *path, char *err,
                         size_t errlen);

typedef struct opt {
    const char *name; /* the key inside its object */
    opt_type type;
    size_t off;          /* where the value lands: offset from the base of the table's struct */
    size_t size;         /* bytes of that field */
    size_t flag;         /* offset + 1 of a bool set to true when the key is given; 0: none */
    int64_t min, max;    /* bounds (see opt_type) */
    bool positive;       /* numbers: must be > 0 */
    const char *def;     /* default as text; NULL: none (or computed, see def_doc) */
    const char *def_doc; /* the default as documented when it is computed */
    bool required;       /* the key must be given */
    const char *const *names;            /* enums: NULL-terminated, the index is the value */
    const char *(*check)(const char *s); /* strings: returns a reason, or NULL when fine */
    const opt_table *sub;                /* objects and arrays */
    size_t count_off;                    /* arrays: offset of the size_t count in the base */
    const void *def_elems;               /* arrays: default elements */
    size_t n_def_elems;
    const char *field; /* the C field, for the reader of this table */
    const char *desc;  /* one line */
} opt;

struct opt_table {
    const opt *opts;
    size_t n;
    size_t elem_size; /* arrays: the size of one element */
    finish_fn finish;
};

/* ---- config.c ---- */

/* The table of one rule (rules[]), for the finishing of a rule. */
extern const opt_table config__rule_table;

/* ---- config_parse.c ---- */

/* Writes "<path>: <message>" into err (when not NULL) and returns -EINVAL. */
__attribute__((format(printf, 4, 5))) int config__fail(char *err, size_t errlen, const char *path,
                                                       const char *fmt, ...);

/* Writes "<path>.<name>" (or name alone at the root) into out, PATH_LEN bytes. */
void config__join(char *out, const char *path, const char *name);

/* Write a number, or a duration in milliseconds, as it would appear in the config. */
void config__fmt_num(char *buf, size_t n, double v);
void config__fmt_duration(char *buf, size_t n, int64_t ms);

/* Stores the defaults of table t into base. Returns 0 or -EINVAL (a bad default, in err). */
int config__apply_defaults(const opt_table *t, void *base, char *err, size_t errlen);

/* Parses the members of obj (borrowed) into base; writes the keys given into *seen_out when it
 * is not NULL. Returns 0 or a negative errno code with the reason in err. */
int config__parse_object(const opt_table *t, void *base, const cJSON *obj, const char *path,
                         uint32_t *seen_out, char *err, size_t errlen);

/* The line number (from 1) of offset off in s. */
size_t config__line_of(const char *s, size_t off);

/* Blanks the comments of s (len bytes) outside strings. Returns 0, or -1 with *bad at the start
 * of an unterminated block comment or a NUL byte. */
int config__strip_comments(char *s, size_t len, size_t *bad);

/* Prints the reference of table t, its keys under prefix. */
void config__print_table(FILE *f, const opt_table *t, const char *prefix);

/* ---- config_check.c ---- */

/* The finish_fn of subscriptions, rules, windows.sizes and retention.summaries. */
int config__finish_sub(void *obj, size_t index, uint32_t seen, const char *path, char *err,
                       size_t errlen);
int config__finish_rule(void *obj, size_t index, uint32_t seen, const char *path, char *err,
                        size_t errlen);
int config__finish_window(void *obj, size_t index, uint32_t seen, const char *path, char *err,
                          size_t errlen);
int config__finish_retain_window(void *obj, size_t index, uint32_t seen, const char *path,
                                 char *err, size_t errlen);

/* Completes the whole configuration: cross-checks of retention, TLS, the client id. */
int config__finish_root(gw_config *c, char *err, size_t errlen);

#endif
