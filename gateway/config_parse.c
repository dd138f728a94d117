/* Configuration, the generic machinery that walks an option table (config_internal.h): storing
 * values with their checks, defaults, parsing JSON objects and arrays, errors and paths,
 * durations, comment stripping, and the reference text of `iotgw check --options`. */
#include "config_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DURATION_MS 1e15 /* about 31,700 years: far from int64 and double limits */

/* A value to store, from JSON or from a default's text. */
typedef struct val {
    enum { V_OTHER, V_STRING, V_NUMBER, V_BOOL } kind;
    const char *s;
    double d;
    bool b;
} val;

/* ---- errors and paths ---- */

__attribute__((format(printf, 4, 5))) int config__fail(char *err, size_t errlen, const char *path,
                                                       const char *fmt, ...) {
    if (err && errlen > 0) {
        size_t n = 0;
        if (path && path[0]) {
            int w = snprintf(err, errlen, "%s: ", path);
            n = w < 0 ? 0 : (size_t)w;
        }
        if (n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - n, fmt, ap);
            va_end(ap);
        }
    }
    return -EINVAL;
}

void config__join(char *out, const char *path, const char *name) {
    snprintf(out, PATH_LEN, "%s%s%s", path, path[0] ? "." : "", name);
}

/* Writes a number as it would appear in the config: integers without a fraction. */
void config__fmt_num(char *buf, size_t n, double v) {
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, n, "%.0f", v);
    } else {
        snprintf(buf, n, "%g", v);
    }
}

void config__fmt_duration(char *buf, size_t n, int64_t ms) {
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"y", MS_PER_YEAR}, {"d", MS_PER_DAY}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    if (ms == 0) {
        snprintf(buf, n, "0");
        return;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms % units[i].ms == 0) {
            snprintf(buf, n, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            return;
        }
    }
    snprintf(buf, n, "%lldms", (long long)ms);
}

static void fmt_names(char *buf, size_t n, const char *const *names, const char *sep) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; names[i] && used < n; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? sep : "", names[i]);
        used += w < 0 ? 0 : (size_t)w;
    }
}

/* ---- durations ---- */

int gw_parse_duration(const char *s, int64_t *out_ms) {
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"", 1000},     {"ms", 1},       {"s", 1000},        {"m", 60000},
                 {"h", 3600000}, {"d", 86400000}, {"w", 604800000.0}, {"y", 31536000000.0}};
    if (!s || !out_ms) {
        return -1;
    }
    const char *p = s;
    double v = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        v = v * 10 + (*p - '0');
    }
    if (digits == 0) {
        return -1;
    }
    if (*p == '.') {
        double scale = 0.1;
        int frac = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, frac++, scale /= 10) {
            v += (*p - '0') * scale;
        }
        if (frac == 0) {
            return -1;
        }
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].unit) == 0) {
            double ms = v * units[i].ms;
            if (!isfinite(ms) || ms > MAX_DURATION_MS) {
                return -1;
            }
            *out_ms = llround(ms);
            return 0;
        }
    }
    return -1;
}

/* ---- storing one value ---- */

static int store_int(const opt *o, void *dst, const val *v, const char *path, char *err,
                     size_t errlen) {
    char num[64];
    if (v->kind != V_NUMBER || !isfinite(v->d) || v->d != floor(v->d)) {
        return config__fail(err, errlen, path, "expected an integer");
    }
    if (v->d < (double)o->min || v->d > (double)o->max) {
        config__fmt_num(num, sizeof num, v->d);
        return config__fail(err, errlen, path, "%s is out of range %lld..%lld", num,
                            (long long)o->min, (long long)o->max);
    }
    if (o->type == OPT_INT) {
        int x = (int)v->d;
        memcpy(dst, &x, sizeof x);
    } else {
        int64_t x = (int64_t)v->d;
        memcpy(dst, &x, sizeof x);
    }
    return 0;
}

static int store_enum(const opt *o, void *dst, const val *v, const char *path, char *err,
                      size_t errlen) {
    for (int i = 0; v->kind == V_STRING && o->names[i]; i++) {
        if (strcmp(v->s, o->names[i]) == 0) {
            if (o->type == OPT_ENUM) {
                memcpy(dst, &i, sizeof i);
            } else {
                snprintf(dst, o->size, "%s", o->names[i]);
            }
            return 0;
        }
    }
    char names[256];
    fmt_names(names, sizeof names, o->names, ", ");
    return config__fail(err, errlen, path, "expected one of %s", names);
}

static int store_duration(const opt *o, void *dst, const val *v, const char *path, char *err,
                          size_t errlen) {
    int64_t ms = -1;
    if (v->kind == V_NUMBER && isfinite(v->d) && v->d >= 0 && v->d * 1000 <= MAX_DURATION_MS) {
        ms = llround(v->d * 1000);
    } else if (v->kind != V_STRING || gw_parse_duration(v->s, &ms) != 0) {
        return config__fail(
            err, errlen, path,
            "expected a duration: seconds, or a string like \"500ms\", \"30s\", \"5m\", "
            "\"2h\", \"1d\"");
    }
    if (ms < o->min || ms > o->max) {
        char a[32], lo[32], hi[32];
        config__fmt_duration(a, sizeof a, ms);
        config__fmt_duration(lo, sizeof lo, o->min);
        config__fmt_duration(hi, sizeof hi, o->max);
        return config__fail(err, errlen, path, "%s is out of range %s..%s", a, lo, hi);
    }
    memcpy(dst, &ms, sizeof ms);
    return 0;
}

static int store(const opt *o, void *base, const val *v, const char *path, char *err,
                 size_t errlen) {
    char *dst = (char *)base + o->off;
    int rc = 0;
    switch (o->type) {
    case OPT_STRING: {
        if (v->kind != V_STRING) {
            return config__fail(err, errlen, path, "expected a string");
        }
        size_t n = strlen(v->s);
        if (n > (size_t)o->max) {
            return config__fail(err, errlen, path, "longer than %lld bytes", (long long)o->max);
        }
        const char *why = o->check ? o->check(v->s) : NULL;
        if (why) {
            return config__fail(err, errlen, path, "%s", why);
        }
        memcpy(dst, v->s, n + 1);
        break;
    }
    case OPT_INT:
    case OPT_INT64:
        rc = store_int(o, dst, v, path, err, errlen);
        break;
    case OPT_BOOL:
        if (v->kind != V_BOOL) {
            return config__fail(err, errlen, path, "expected true or false");
        }
        memcpy(dst, &v->b, sizeof(bool));
        break;
    case OPT_ENUM:
    case OPT_ENUM_NAME:
        rc = store_enum(o, dst, v, path, err, errlen);
        break;
    case OPT_DURATION:
        rc = store_duration(o, dst, v, path, err, errlen);
        break;
    case OPT_NUMBER:
        if (v->kind != V_NUMBER || !isfinite(v->d)) {
            return config__fail(err, errlen, path, "expected a number");
        }
        if (o->positive && !(v->d > 0)) {
            char num[64];
            config__fmt_num(num, sizeof num, v->d);
            return config__fail(err, errlen, path, "must be > 0, not %s", num);
        }
        memcpy(dst, &v->d, sizeof(double));
        break;
    case OPT_OBJECT:
    case OPT_ARRAY:
        return config__fail(err, errlen, path, "internal: not a scalar");
    }
    if (rc == 0 && o->flag) {
        bool yes = true;
        memcpy((char *)base + o->flag - 1, &yes, sizeof yes);
    }
    return rc;
}

/* ---- defaults ---- */

/* Applies the defaults of a table through the same checks as parsed values, so that a bad
 * default is an error of every parse (and caught by the unit tests). */
int config__apply_defaults(const opt_table *t, void *base, char *err, size_t errlen) {
    for (size_t k = 0; k < t->n; k++) {
        const opt *o = &t->opts[k];
        int rc = 0;
        if (o->type == OPT_OBJECT) {
            rc = config__apply_defaults(o->sub, base, err, errlen);
        } else if (o->type == OPT_ARRAY) {
            if (o->n_def_elems > 0) {
                memcpy((char *)base + o->off, o->def_elems, o->n_def_elems * o->sub->elem_size);
            }
            memcpy((char *)base + o->count_off, &o->n_def_elems, sizeof(size_t));
        } else if (o->def) {
            val v = {.kind = V_STRING, .s = o->def};
            if (o->type == OPT_INT || o->type == OPT_INT64 || o->type == OPT_NUMBER) {
                v = (val){.kind = V_NUMBER, .d = strtod(o->def, NULL)};
            } else if (o->type == OPT_BOOL) {
                v = (val){.kind = V_BOOL, .b = strcmp(o->def, "true") == 0};
            }
            rc = store(o, base, &v, o->name, err, errlen);
            if (o->flag) {
                bool no = false; /* a default is not "given" */
                memcpy((char *)base + o->flag - 1, &no, sizeof no);
            }
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* ---- parsing ---- */

static int parse_array(const opt *o, void *base, const cJSON *arr, const char *path, char *err,
                       size_t errlen) {
    if (!cJSON_IsArray(arr)) {
        return config__fail(err, errlen, path, "expected an array");
    }
    int n = cJSON_GetArraySize(arr);
    if (n < o->min || n > o->max) {
        return config__fail(err, errlen, path, "needs %lld..%lld entries, not %d",
                            (long long)o->min, (long long)o->max, n);
    }
    size_t i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        char epath[PATH_LEN + 24];
        snprintf(epath, sizeof epath, "%s[%zu]", path, i);
        void *elem = (char *)base + o->off + i * o->sub->elem_size;
        memset(elem, 0, o->sub->elem_size);
        int rc = config__apply_defaults(o->sub, elem, err, errlen);
        if (rc != 0) {
            return rc;
        }
        if (!cJSON_IsObject(it)) {
            return config__fail(err, errlen, epath, "expected an object");
        }
        uint32_t seen = 0;
        rc = config__parse_object(o->sub, elem, it, epath, &seen, err, errlen);
        if (rc == 0 && o->sub->finish) {
            rc = o->sub->finish(elem, i, seen, epath, err, errlen);
        }
        if (rc != 0) {
            return rc;
        }
    }
    memcpy((char *)base + o->count_off, &i, sizeof i);
    return 0;
}

static int parse_value(const opt *o, void *base, const cJSON *it, const char *path, char *err,
                       size_t errlen) {
    if (o->type == OPT_OBJECT) {
        if (!cJSON_IsObject(it)) {
            return config__fail(err, errlen, path, "expected an object");
        }
        return config__parse_object(o->sub, base, it, path, NULL, err, errlen);
    }
    if (o->type == OPT_ARRAY) {
        return parse_array(o, base, it, path, err, errlen);
    }
    val v = {.kind = V_OTHER};
    if (cJSON_IsString(it)) {
        v = (val){.kind = V_STRING, .s = it->valuestring};
    } else if (cJSON_IsNumber(it)) {
        v = (val){.kind = V_NUMBER, .d = it->valuedouble};
    } else if (cJSON_IsBool(it)) {
        v = (val){.kind = V_BOOL, .b = cJSON_IsTrue(it)};
    }
    return store(o, base, &v, path, err, errlen);
}

int config__parse_object(const opt_table *t, void *base, const cJSON *obj, const char *path,
                         uint32_t *seen_out, char *err, size_t errlen) {
    uint32_t seen = 0;
    if (t->n > 32) {
        return config__fail(err, errlen, path, "internal: table too large");
    }
    for (const cJSON *it = obj->child; it; it = it->next) {
        char sub[PATH_LEN];
        config__join(sub, path, it->string ? it->string : "");
        size_t k = 0;
        while (k < t->n && strcmp(t->opts[k].name, it->string ? it->string : "") != 0) {
            k++;
        }
        if (k == t->n) {
            return config__fail(err, errlen, sub, "unknown key");
        }
        if (seen & (1u << k)) {
            return config__fail(err, errlen, sub, "duplicate key");
        }
        seen |= 1u << k;
        int rc = parse_value(&t->opts[k], base, it, sub, err, errlen);
        if (rc != 0) {
            return rc;
        }
    }
    for (size_t k = 0; k < t->n; k++) {
        if (t->opts[k].required && !(seen & (1u << k))) {
            return config__fail(err, errlen, path, "needs %s", t->opts[k].name);
        }
    }
    if (seen_out) {
        *seen_out = seen;
    }
    return 0;
}

size_t config__line_of(const char *s, size_t off) {
    size_t line = 1;
    for (size_t i = 0; i < off; i++) {
        line += s[i] == '\n';
    }
    return line;
}

/* Blanks comments outside strings, keeping newlines so that line numbers stay right.
 * Returns 0, or -1 with *bad at the start of an unterminated block comment or a NUL byte. */
int config__strip_comments(char *s, size_t len, size_t *bad) {
    enum { CODE, STRING, LINE, BLOCK } st = CODE;
    size_t block_start = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0') {
            *bad = i;
            return -1;
        }
        bool two = i + 1 < len;
        switch (st) {
        case CODE:
            if (s[i] == '"') {
                st = STRING;
            } else if (s[i] == '/' && two && (s[i + 1] == '/' || s[i + 1] == '*')) {
                st = s[i + 1] == '/' ? LINE : BLOCK;
                block_start = i;
                s[i] = ' ';
                s[++i] = ' ';
            }
            break;
        case STRING:
            if (s[i] == '\\' && two && s[i + 1] != '\0') {
                i++;
            } else if (s[i] == '"') {
                st = CODE;
            }
            break;
        case LINE:
            if (s[i] == '\n') {
                st = CODE;
            } else {
                s[i] = ' ';
            }
            break;
        case BLOCK:
            if (s[i] == '*' && two && s[i + 1] == '/') {
                s[i] = ' ';
                s[++i] = ' ';
                st = CODE;
            } else if (s[i] != '\n') {
                s[i] = ' ';
            }
            break;
        }
    }
    if (st == BLOCK) {
        *bad = block_start;
        return -1;
    }
    return 0;
}

/* ---- the reference ---- */

static void fmt_default(char *buf, size_t n, const opt *o) {
    if (o->def_doc) {
        snprintf(buf, n, "%s", o->def_doc);
    } else if (!o->def) {
        snprintf(buf, n, "%s", o->required ? "required" : "none");
    } else if (o->type == OPT_STRING || o->type == OPT_ENUM || o->type == OPT_ENUM_NAME) {
        snprintf(buf, n, "\"%s\"", o->def);
    } else {
        snprintf(buf, n, "%s", o->def);
    }
}

static void print_array_default(FILE *f, const opt *o) {
    fputs("[", f);
    for (size_t i = 0; i < o->n_def_elems; i++) {
        const char *elem = (const char *)o->def_elems + i * o->sub->elem_size;
        fputs(i ? ", {" : "{", f);
        for (size_t k = 0; k < o->sub->n; k++) {
            /* Array elements in the table hold strings and durations. */
            const opt *e = &o->sub->opts[k];
            if (e->type == OPT_STRING) {
                fprintf(f, "%s\"%s\": \"%s\"", k ? ", " : "", e->name, elem + e->off);
            } else if (e->type == OPT_DURATION) {
                int64_t ms;
                char d[32];
                memcpy(&ms, elem + e->off, sizeof ms);
                config__fmt_duration(d, sizeof d, ms);
                /* A key at its own default is left out: {"window": "1h", "keep": "5y"}. */
                if (e->def == NULL || strcmp(d, e->def) != 0) {
                    fprintf(f, "%s\"%s\": \"%s\"", k ? ", " : "", e->name, d);
                }
            }
        }
        fputs("}", f);
    }
    fputs("]", f);
}

void config__print_table(FILE *f, const opt_table *t, const char *prefix) {
    for (size_t k = 0; k < t->n; k++) {
        const opt *o = &t->opts[k];
        char path[PATH_LEN], type[300], def[160], names[200];
        config__join(path, prefix, o->name);
        fmt_default(def, sizeof def, o);
        switch (o->type) {
        case OPT_STRING:
            snprintf(type, sizeof type, "string, at most %lld bytes", (long long)o->max);
            break;
        case OPT_INT:
        case OPT_INT64:
            snprintf(type, sizeof type, "integer %lld..%lld", (long long)o->min, (long long)o->max);
            break;
        case OPT_BOOL:
            snprintf(type, sizeof type, "true | false");
            break;
        case OPT_ENUM:
        case OPT_ENUM_NAME:
            fmt_names(names, sizeof names, o->names, " | ");
            snprintf(type, sizeof type, "one of %s", names);
            break;
        case OPT_DURATION: {
            char lo[32], hi[32];
            config__fmt_duration(lo, sizeof lo, o->min);
            config__fmt_duration(hi, sizeof hi, o->max);
            snprintf(type, sizeof type, "duration %s..%s", lo, hi);
            break;
        }
        case OPT_NUMBER:
            snprintf(type, sizeof type, "%s", o->positive ? "number > 0" : "number");
            break;
        case OPT_OBJECT:
            fprintf(f, "%-24s object\n    %s\n", path, o->desc);
            config__print_table(f, o->sub, path);
            continue;
        case OPT_ARRAY: {
            char elems[PATH_LEN + 4];
            fprintf(f, "%-24s array of %lld..%lld objects, default ", path, (long long)o->min,
                    (long long)o->max);
            print_array_default(f, o);
            fprintf(f, "\n    %s\n", o->desc);
            snprintf(elems, sizeof elems, "%s[]", path);
            config__print_table(f, o->sub, elems);
            continue;
        }
        }
        fprintf(f, "%-24s %s, %s%s\n    %s\n", path, type, o->required ? "" : "default ", def,
                o->desc);
    }
}
