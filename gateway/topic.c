/* Topic map: MQTT filters with wildcards, compiled once, matched per message.
 *
 * A filter is split into levels at add time, so matching is one pass over the received topic
 * per subscription with no allocation. Templates are compiled into a list of parts (literal
 * text or a topic level) and expanded straight into the caller's buffers.
 *
 * Placeholder numbering follows the header's example (`sensors/+/+`, "{1}", "{2}" maps
 * `sensors/pump1/temp` to pump1, temp), which is also what DESIGN.md, the config defaults
 * and deploy/iotgw.conf use: {N} is the N-th *wildcard* level of the filter, counting the
 * '+' levels in order and then each level that a trailing '#' covers; {0} is the whole topic.
 * So with `a/+/b/#`, {1} is topic level 2, {2} level 4, {3} level 5, and so on. A {N} beyond
 * the '+' levels of a filter without '#' is an error at add time.
 *
 * Beyond the header contract: an expanded name that is not valid UTF-8 (or holds a NUL byte)
 * is rejected with -EINVAL like an empty sensor name, and so is a metric name that expands to
 * "" from a non-empty template (otherwise the payload would silently name the metrics). A
 * placeholder that points past the last level of the received topic (possible with `#`)
 * expands to "". Topics starting with '$' do not match filters starting with a wildcard
 * (MQTT 3.1.1 section 4.7.2). */
#include "topic.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILTER_MAX       65535 /* MQTT limit on a topic filter, in bytes */
#define TPL_MAX_PARTS    16    /* placeholders plus literal runs in one template */
#define SHARE_PREFIX     "$share/"
#define SHARE_PREFIX_LEN (sizeof(SHARE_PREFIX) - 1)

enum level_kind { LEVEL_TEXT, LEVEL_PLUS, LEVEL_HASH };

typedef struct level {
    enum level_kind kind;
    const char *text; /* points into sub.filter, LEVEL_TEXT only */
    size_t len;
} level;

typedef struct tpl_part {
    const char *text; /* literal run (points into the template copy), or NULL for a level */
    size_t len;
    unsigned index; /* topic level (1-based) a placeholder expands to; 0 = whole topic */
} tpl_part;

typedef struct tpl {
    char *src; /* owned copy of the template */
    tpl_part parts[TPL_MAX_PARTS];
    size_t nparts;
} tpl;

typedef struct sub {
    char *filter; /* owned copy, as configured (with any $share prefix) */
    level *levels;
    size_t nlevels;
    bool leading_wildcard;
    tpl sensor;
    tpl metric;
} sub;

struct gw_topic_map {
    sub subs[GW_TOPIC_MAX_SUBS];
    size_t n;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (err == NULL || errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Strict UTF-8 and no NUL (a name is a C string). */
static bool name_bytes_ok(const unsigned char *s, size_t n) {
    return memchr(s, 0, n) == NULL && gw_utf8_valid(s, n);
}

/* Splits the matching part of a filter into levels and checks the wildcard rules. */
static int compile_filter(sub *s, const char *match, char *err, size_t errlen) {
    size_t len = strlen(match);
    size_t n = 1;
    for (size_t i = 0; i < len; i++) {
        n += match[i] == '/';
    }
    s->levels = calloc(n, sizeof(*s->levels));
    if (s->levels == NULL) {
        return -ENOMEM;
    }
    s->nlevels = n;
    const char *p = match;
    for (size_t i = 0; i < n; i++) {
        const char *slash = memchr(p, '/', (size_t)(match + len - p));
        size_t l = slash != NULL ? (size_t)(slash - p) : (size_t)(match + len - p);
        level *lv = &s->levels[i];
        if (memchr(p, '#', l) != NULL) {
            if (l != 1) {
                set_err(err, errlen, "'#' must occupy a whole level");
                return -EINVAL;
            }
            if (i != n - 1) {
                set_err(err, errlen, "'#' must be the last level");
                return -EINVAL;
            }
            lv->kind = LEVEL_HASH;
        } else if (memchr(p, '+', l) != NULL) {
            if (l != 1) {
                set_err(err, errlen, "'+' must occupy a whole level");
                return -EINVAL;
            }
            lv->kind = LEVEL_PLUS;
        } else {
            lv->kind = LEVEL_TEXT;
            lv->text = p;
            lv->len = l;
        }
        p += l + 1;
    }
    s->leading_wildcard = s->levels[0].kind != LEVEL_TEXT;
    return 0;
}

/* Topic level (1-based) that capture {N} names: the N-th '+' level, then the levels that a
 * trailing '#' covers, in order. Returns 0 when the filter has no such capture. */
static unsigned capture_level(const sub *s, unsigned n) {
    unsigned seen = 0;
    for (size_t i = 0; i < s->nlevels; i++) {
        if (s->levels[i].kind == LEVEL_PLUS && ++seen == n) {
            return (unsigned)i + 1;
        }
        if (s->levels[i].kind == LEVEL_HASH) {
            return (unsigned)i + 1 + (n - seen - 1);
        }
    }
    return 0;
}

static unsigned count_plus(const sub *s) {
    unsigned n = 0;
    for (size_t i = 0; i < s->nlevels; i++) {
        n += s->levels[i].kind == LEVEL_PLUS;
    }
    return n;
}

/* Parses "text{1}-{2}" into parts, turning each capture number into a topic level. */
static int compile_tpl(const sub *s, tpl *t, const char *src, const char *what, char *err,
                       size_t errlen) {
    t->src = strdup(src);
    if (t->src == NULL) {
        return -ENOMEM;
    }
    size_t len = strlen(src);
    if (!name_bytes_ok((const unsigned char *)src, len)) {
        set_err(err, errlen, "%s template is not valid UTF-8", what);
        return -EINVAL;
    }
    size_t literal = 0;
    const char *p = t->src;
    const char *end = t->src + len;
    while (p < end) {
        if (t->nparts == TPL_MAX_PARTS) {
            set_err(err, errlen, "%s template has more than %d parts", what, TPL_MAX_PARTS);
            return -EINVAL;
        }
        tpl_part *part = &t->parts[t->nparts];
        if (*p == '}') {
            set_err(err, errlen, "unmatched '}' in %s template", what);
            return -EINVAL;
        }
        if (*p != '{') {
            const char *q = p;
            while (q < end && *q != '{' && *q != '}') {
                q++;
            }
            part->text = p;
            part->len = (size_t)(q - p);
            literal += part->len;
            t->nparts++;
            p = q;
            continue;
        }
        const char *close = memchr(p, '}', (size_t)(end - p));
        if (close == NULL) {
            set_err(err, errlen, "unterminated placeholder in %s template", what);
            return -EINVAL;
        }
        size_t digits = (size_t)(close - p - 1);
        unsigned idx = 0;
        bool ok = digits >= 1 && digits <= 4;
        for (const char *d = p + 1; ok && d < close; d++) {
            ok = *d >= '0' && *d <= '9';
            idx = idx * 10 + (unsigned)(*d - '0');
        }
        if (!ok) {
            int shown = close - p + 1 > 32 ? 32 : (int)(close - p + 1);
            set_err(err, errlen, "bad placeholder '%.*s' in %s template (want {N})", shown, p,
                    what);
            return -EINVAL;
        }
        unsigned lvl = 0;
        if (idx > 0) {
            lvl = capture_level(s, idx);
            if (lvl == 0) {
                set_err(err, errlen, "placeholder {%u} but the filter has %u wildcard levels", idx,
                        count_plus(s));
                return -EINVAL;
            }
        }
        part->text = NULL;
        part->len = 0;
        part->index = lvl;
        t->nparts++;
        p = close + 1;
    }
    if (literal > GW_NAME_MAX) {
        set_err(err, errlen, "%s template text is longer than %d bytes", what, GW_NAME_MAX);
        return -EINVAL;
    }
    return 0;
}

static void sub_free(sub *s) {
    free(s->filter);
    free(s->levels);
    free(s->sensor.src);
    free(s->metric.src);
    memset(s, 0, sizeof(*s));
}

int gw_topic_map_new(gw_topic_map **out) {
    gw_topic_map *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return -ENOMEM;
    }
    *out = m;
    return 0;
}

void gw_topic_map_free(gw_topic_map *m) {
    if (m == NULL) {
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        sub_free(&m->subs[i]);
    }
    free(m);
}

int gw_topic_map_add(gw_topic_map *m, const char *filter, const char *sensor_tpl,
                     const char *metric_tpl, char *err, size_t errlen) {
    if (m == NULL || filter == NULL) {
        set_err(err, errlen, "missing filter");
        return -EINVAL;
    }
    if (m->n == GW_TOPIC_MAX_SUBS) {
        set_err(err, errlen, "too many subscriptions (at most %d)", GW_TOPIC_MAX_SUBS);
        return -EINVAL;
    }
    size_t flen = strlen(filter);
    if (flen == 0) {
        set_err(err, errlen, "empty filter");
        return -EINVAL;
    }
    if (flen > FILTER_MAX) {
        set_err(err, errlen, "filter longer than %d bytes", FILTER_MAX);
        return -EINVAL;
    }
    if (!name_bytes_ok((const unsigned char *)filter, flen)) {
        set_err(err, errlen, "filter is not valid UTF-8");
        return -EINVAL;
    }
    if (sensor_tpl == NULL || sensor_tpl[0] == '\0') {
        set_err(err, errlen, "sensor template is empty");
        return -EINVAL;
    }
    if (metric_tpl == NULL) {
        metric_tpl = "";
    }

    sub s;
    memset(&s, 0, sizeof(s));
    int rc = -ENOMEM;
    s.filter = strdup(filter);
    if (s.filter == NULL) {
        goto fail_filter;
    }
    const char *match = s.filter;
    if (strncmp(match, SHARE_PREFIX, SHARE_PREFIX_LEN) == 0) {
        const char *group = match + SHARE_PREFIX_LEN;
        const char *slash = strchr(group, '/');
        if (slash == NULL || slash == group || slash[1] == '\0') {
            set_err(err, errlen, "'$share/' needs a group name and a filter");
            rc = -EINVAL;
            goto fail_filter;
        }
        if (memchr(group, '+', (size_t)(slash - group)) != NULL ||
            memchr(group, '#', (size_t)(slash - group)) != NULL) {
            set_err(err, errlen, "a '$share' group name cannot hold '+' or '#'");
            rc = -EINVAL;
            goto fail_filter;
        }
        match = slash + 1;
    }
    rc = compile_filter(&s, match, err, errlen);
    if (rc != 0) {
        goto fail_filter;
    }
    rc = compile_tpl(&s, &s.sensor, sensor_tpl, "sensor", err, errlen);
    if (rc != 0) {
        goto fail_tpl;
    }
    rc = compile_tpl(&s, &s.metric, metric_tpl, "metric", err, errlen);
    if (rc != 0) {
        goto fail_tpl;
    }
    m->subs[m->n++] = s;
    return 0;

fail_tpl:
fail_filter:
    if (rc == -ENOMEM) {
        set_err(err, errlen, "out of memory");
    }
    sub_free(&s);
    return rc;
}

size_t gw_topic_map_count(const gw_topic_map *m) {
    return m != NULL ? m->n : 0;
}

const char *gw_topic_map_filter(const gw_topic_map *m, size_t i) {
    if (m == NULL || i >= m->n) {
        return NULL;
    }
    return m->subs[i].filter;
}

static bool sub_matches(const sub *s, const char *t, size_t tlen) {
    if (s->leading_wildcard && t[0] == '$') {
        return false;
    }
    size_t pos = 0;
    for (size_t i = 0; i < s->nlevels; i++) {
        const level *lv = &s->levels[i];
        if (lv->kind == LEVEL_HASH) {
            return true; /* also matches the parent level alone: "a/#" matches "a" */
        }
        if (pos > tlen) {
            return false;
        }
        const char *slash = memchr(t + pos, '/', tlen - pos);
        size_t end = slash != NULL ? (size_t)(slash - t) : tlen;
        if (lv->kind == LEVEL_TEXT &&
            (end - pos != lv->len || memcmp(t + pos, lv->text, lv->len) != 0)) {
            return false;
        }
        pos = end + 1;
    }
    return pos == tlen + 1;
}

/* The index-th level (1-based) of the topic; absent levels are empty. */
static void topic_level(const char *t, size_t tlen, unsigned index, const char **out,
                        size_t *out_len) {
    size_t pos = 0;
    for (unsigned i = 1; i < index; i++) {
        const char *slash = memchr(t + pos, '/', tlen - pos);
        if (slash == NULL) {
            *out = t;
            *out_len = 0;
            return;
        }
        pos = (size_t)(slash - t) + 1;
    }
    const char *slash = memchr(t + pos, '/', tlen - pos);
    *out = t + pos;
    *out_len = slash != NULL ? (size_t)(slash - (t + pos)) : tlen - pos;
}

/* Expands a template into buf (GW_NAME_MAX + 1 bytes). Returns the length or a negative
 * error. */
static int expand(const tpl *tp, const char *t, size_t tlen, char *buf) {
    size_t n = 0;
    for (size_t i = 0; i < tp->nparts; i++) {
        const tpl_part *part = &tp->parts[i];
        const char *src = part->text;
        size_t len = part->len;
        if (src == NULL) {
            if (part->index == 0) {
                src = t;
                len = tlen;
            } else {
                topic_level(t, tlen, part->index, &src, &len);
            }
        }
        if (len > GW_NAME_MAX - n) {
            return -ENAMETOOLONG;
        }
        memcpy(buf + n, src, len);
        n += len;
    }
    buf[n] = '\0';
    if (!name_bytes_ok((const unsigned char *)buf, n)) {
        return -EINVAL;
    }
    return (int)n;
}

int gw_topic_map_match(const gw_topic_map *m, const char *topic, size_t topic_len, char *sensor,
                       char *metric) {
    if (m == NULL || topic == NULL || topic_len == 0) {
        return -ENOENT;
    }
    for (size_t i = 0; i < m->n; i++) {
        const sub *s = &m->subs[i];
        if (!sub_matches(s, topic, topic_len)) {
            continue;
        }
        /* Expanded into locals so the caller's buffers are written only on success. */
        char sbuf[GW_NAME_MAX + 1];
        char mbuf[GW_NAME_MAX + 1];
        int slen = expand(&s->sensor, topic, topic_len, sbuf);
        if (slen < 0) {
            return slen;
        }
        if (slen == 0) {
            return -EINVAL;
        }
        int mlen = expand(&s->metric, topic, topic_len, mbuf);
        if (mlen < 0) {
            return mlen;
        }
        if (mlen == 0 && s->metric.nparts > 0) {
            return -EINVAL;
        }
        memcpy(sensor, sbuf, (size_t)slen + 1);
        memcpy(metric, mbuf, (size_t)mlen + 1);
        return 0;
    }
    return -ENOENT;
}
