/* Decoder: topic + payload -> readings.
 *
 * Order of checks: route (topic map), payload size, UTF-8, then the payload shape decided by
 * its first non-blank byte (after an optional UTF-8 BOM):
 *   '{'            JSON object (cJSON)
 *   '['            SenML pack (cJSON)
 *   '"'            JSON string: not numeric (a quoted "21" is text, not a number)
 *   true/false/null                      not numeric
 *   [+-]nan, [+-]inf, [+-]infinity       non-finite (any case)
 *   digit, '+', '-', '.'                 plain number, strict (else malformed)
 *   a letter or a non-ASCII character    text state such as ON or open: not numeric
 *   anything else                        malformed
 *
 * Messages are all-or-nothing without a readings buffer: the parsed tree is walked twice with
 * the same code, once to validate and count, once to call back. The tree does not change in
 * between, so the second walk cannot fail where the first succeeded.
 *
 * SenML (RFC 8428): only records with "v" are readings (records with vs/vb/vd, sum-only and
 * base-only records are skipped, their base fields still apply). A pack is malformed when a
 * record is not an object, a known label has the wrong type or appears twice, a record has
 * more than one value field, bver is above 10, or a label ends in '_' (must-understand).
 *
 * Plain numbers never touch cJSON: a strict grammar scan, then an exact conversion for up to
 * 19 digits with a power of ten <= 22 (Clinger's fast path), else strtod_l in the C locale so
 * that the process locale can never turn "1,5" into a number or "1.5" into garbage.
 *
 * Thread safety caveat: cJSON 1.7.15 stores the last parse error in a global, written (with
 * the same value on success) by every cJSON_ParseWithLengthOpts call. Concurrent decoders
 * therefore race on that variable; we never read it, and the stores are aligned words, but a
 * strict reading of the C memory model (or TSan on an instrumented cJSON) calls it a race. */
#include "decode.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_MAX_MS       INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */
#define TS_MS_THRESHOLD 1e11                     /* JSON ts at or above this is in ms */
#define SENML_REL_LIMIT 268435456.0              /* 2^28: SenML times below are relative */
#define SENML_VERSION   10
#define NUMBER_MAX      1024 /* longest plain-number payload in bytes, blanks excluded */

static const char *const reason_names[GW_DEC_REASON_COUNT] = {
    [GW_DEC_OK] = "ok",
    [GW_DEC_NO_ROUTE] = "no_route",
    [GW_DEC_BAD_NAME] = "bad_name",
    [GW_DEC_OVERSIZE] = "oversize",
    [GW_DEC_NOT_UTF8] = "not_utf8",
    [GW_DEC_MALFORMED] = "malformed",
    [GW_DEC_NOT_NUMERIC] = "not_numeric",
    [GW_DEC_NONFINITE] = "nonfinite",
    [GW_DEC_BAD_TS] = "bad_ts",
    [GW_DEC_TOO_MANY] = "too_many",
};

const char *gw_decode_reason_name(gw_decode_reason r) {
    if ((unsigned)r >= GW_DEC_REASON_COUNT) {
        return "unknown";
    }
    return reason_names[r];
}

/* ---------------------------------------------------------------------------------------- */
/* Bytes                                                                                    */

static inline bool is_blank(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static inline bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. ASCII
 * runs, the common case, are checked eight bytes at a time. */
bool gw_utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        while (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, sizeof(w));
            if ((w & UINT64_C(0x8080808080808080)) != 0) {
                break;
            }
            i += 8;
        }
        if (i == n) {
            break;
        }
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            lo = c == 0xE0 ? 0xA0 : 0x80; /* E0 80..9F would be overlong */
            hi = c == 0xED ? 0x9F : 0xBF; /* ED A0..BF would be a surrogate */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            lo = c == 0xF0 ? 0x90 : 0x80; /* F0 80..8F would be overlong */
            hi = c == 0xF4 ? 0x8F : 0xBF; /* F4 90.. would be above U+10FFFF */
        } else {
            return false; /* continuation byte, C0/C1 (overlong) or F5..FF */
        }
        if (n - i <= need || s[i + 1] < lo || s[i + 1] > hi) {
            return false;
        }
        for (size_t k = 2; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return false;
            }
        }
        i += need + 1;
    }
    return true;
}

static bool word_eq_nocase(const char *s, size_t n, const char *word) {
    size_t wl = strlen(word);
    if (n != wl) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != word[i]) {
            return false;
        }
    }
    return true;
}

static bool is_nonfinite_word(const char *s, size_t n) {
    if (n > 0 && (s[0] == '+' || s[0] == '-')) {
        s++;
        n--;
    }
    return word_eq_nocase(s, n, "nan") || word_eq_nocase(s, n, "inf") ||
           word_eq_nocase(s, n, "infinity");
}

/* ---------------------------------------------------------------------------------------- */
/* Plain numbers                                                                            */

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void c_locale_init(void) {
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Parses the whole of s[0..n) (blanks already trimmed) as a decimal number. */
static gw_decode_reason parse_number(const char *s, size_t n, double *out) {
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
        neg = s[i] == '-';
        i++;
    }
    uint64_t mant = 0;
    int sig = 0;      /* significant digits seen (after leading zeros) */
    int dropped = 0;  /* significant digits beyond the 19 that fit in mant */
    int frac_sig = 0; /* significant digits kept from the fraction */
    int digits = 0;
    for (; i < n && is_digit((unsigned char)s[i]); i++, digits++) {
        if (sig == 0 && s[i] == '0') {
            continue;
        }
        if (sig < 19) {
            mant = mant * 10 + (uint64_t)(s[i] - '0');
        } else {
            dropped++;
        }
        sig++;
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && is_digit((unsigned char)s[i]); i++, digits++) {
            if (sig == 0 && s[i] == '0') {
                frac_sig++; /* leading zeros of the fraction still shift the point */
                continue;
            }
            if (sig < 19) {
                mant = mant * 10 + (uint64_t)(s[i] - '0');
                frac_sig++;
            } else {
                dropped++;
            }
            sig++;
        }
    }
    if (digits == 0) {
        return GW_DEC_MALFORMED;
    }
    long exp10 = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            eneg = s[i] == '-';
            i++;
        }
        if (i == n || !is_digit((unsigned char)s[i])) {
            return GW_DEC_MALFORMED;
        }
        for (; i < n && is_digit((unsigned char)s[i]); i++) {
            if (exp10 < 100000) {
                exp10 = exp10 * 10 + (s[i] - '0');
            }
        }
        if (eneg) {
            exp10 = -exp10;
        }
    }
    if (i != n) {
        return GW_DEC_MALFORMED;
    }
    if (n > NUMBER_MAX) {
        return GW_DEC_MALFORMED;
    }

    double v;
    long e = exp10 - frac_sig;
    if (mant == 0) {
        v = 0.0;
    } else if (dropped == 0 && mant <= (UINT64_C(1) << 53) && e >= -22 && e <= 22) {
        /* Both operands are exact doubles, so one IEEE operation rounds correctly. */
        v = (double)mant;
        v = e >= 0 ? v * pow10_exact[e] : v / pow10_exact[-e];
    } else {
        char buf[NUMBER_MAX + 1];
        memcpy(buf, s, n);
        buf[n] = '\0';
        pthread_once(&c_locale_once, c_locale_init);
        v = c_locale != (locale_t)0 ? strtod_l(buf, NULL, c_locale) : strtod(buf, NULL);
        neg = false; /* strtod saw the sign */
    }
    if (neg) {
        v = -v;
    }
    if (!isfinite(v)) {
        return GW_DEC_NONFINITE;
    }
    *out = v;
    return GW_DEC_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Walking parsed JSON                                                                      */

typedef struct walk {
    const gw_decoder *d;
    const char *sensor;
    int64_t arrival_ms;
    bool own_ts; /* the current reading's time stamp comes from the message */
    bool emit;   /* false: validate and count; true: call back */
    size_t count;
    gw_reading_fn fn;
    void *ctx;
    gw_decode_reason reason;
} walk;

/* A metric name under construction; len may exceed GW_NAME_MAX (then only the length is
 * tracked), and empty records that some path segment was empty. */
typedef struct name {
    char s[GW_NAME_MAX + 1];
    size_t len;
    bool empty_segment;
} name;

static void name_append(name *nm, const char *p, size_t n) {
    if (nm->len <= GW_NAME_MAX && n <= GW_NAME_MAX - nm->len) {
        memcpy(nm->s + nm->len, p, n);
        nm->s[nm->len + n] = '\0';
    }
    nm->len += n;
}

/* Returns 0 to go on, -1 when the message fails (w->reason set), -2 when the callback
 * stopped it. */
static int reading(walk *w, const name *nm, int64_t ts_ms, double value) {
    if (nm->len == 0 || nm->len > GW_NAME_MAX || nm->empty_segment) {
        w->reason = GW_DEC_BAD_NAME;
        return -1;
    }
    if (!isfinite(value)) {
        w->reason = GW_DEC_NONFINITE;
        return -1;
    }
    if (!w->emit) {
        if (w->count == w->d->max_readings) {
            w->reason = GW_DEC_TOO_MANY;
            return -1;
        }
        w->count++;
        return 0;
    }
    return w->fn(w->ctx, w->sensor, nm->s, ts_ms, w->own_ts, value) != 0 ? -2 : 0;
}

static bool ms_in_range(double ms) {
    return ms >= -0.5 && ms < (double)TS_MAX_MS + 0.5;
}

/* JSON `ts`: epoch s, epoch ms (>= 1e11) or an RFC 3339 string. */
static gw_decode_reason json_ts(const cJSON *item, int64_t *out) {
    if (cJSON_IsString(item)) {
        int64_t ms;
        const char *s = item->valuestring;
        if (gw_parse_rfc3339(s, strlen(s), &ms) != 0 || ms < 0 || ms > TS_MAX_MS) {
            return GW_DEC_BAD_TS;
        }
        *out = ms;
        return GW_DEC_OK;
    }
    if (!cJSON_IsNumber(item)) {
        return GW_DEC_BAD_TS;
    }
    double v = item->valuedouble;
    if (!isfinite(v) || v < 0) {
        return GW_DEC_BAD_TS;
    }
    double ms = v >= TS_MS_THRESHOLD ? v : v * 1000.0;
    if (!ms_in_range(ms)) {
        return GW_DEC_BAD_TS;
    }
    *out = llround(ms);
    return GW_DEC_OK;
}

static int walk_object(walk *w, const cJSON *obj, name *nm, int64_t ts_ms, bool top) {
    size_t base_len = nm->len;
    bool base_empty = nm->empty_segment;
    for (const cJSON *c = obj->child; c != NULL; c = c->next) {
        bool is_num = cJSON_IsNumber(c);
        if (!is_num && !cJSON_IsObject(c)) {
            continue; /* strings, booleans, nulls and arrays are not metrics */
        }
        const char *key = c->string != NULL ? c->string : "";
        if (top && strcmp(key, "ts") == 0) {
            continue;
        }
        if (base_len > 0) {
            name_append(nm, ".", 1);
        }
        size_t klen = strlen(key);
        name_append(nm, key, klen);
        nm->empty_segment = base_empty || klen == 0;
        int rc =
            is_num ? reading(w, nm, ts_ms, c->valuedouble) : walk_object(w, c, nm, ts_ms, false);
        nm->len = base_len;
        if (base_len <= GW_NAME_MAX) {
            nm->s[base_len] = '\0';
        }
        nm->empty_segment = base_empty;
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int decode_object(walk *w, const cJSON *root, const char *prefix) {
    int64_t ts_ms = w->arrival_ms;
    bool have_ts = false;
    for (const cJSON *c = root->child; c != NULL; c = c->next) {
        if (c->string == NULL || strcmp(c->string, "ts") != 0) {
            continue;
        }
        if (have_ts) {
            w->reason = GW_DEC_BAD_TS; /* two timestamps: which one? */
            return -1;
        }
        gw_decode_reason r = json_ts(c, &ts_ms);
        if (r != GW_DEC_OK) {
            w->reason = r;
            return -1;
        }
        have_ts = true;
    }
    w->own_ts = have_ts;
    name nm = {.len = 0, .empty_segment = false};
    nm.s[0] = '\0';
    name_append(&nm, prefix, strlen(prefix));
    return walk_object(w, root, &nm, ts_ms, true);
}

/* One SenML record's fields; base fields persist across records in senml_state. */
typedef struct senml_state {
    const char *bn;
    double bt;
    double bv;
} senml_state;

enum senml_type { SEN_STR, SEN_NUM, SEN_BOOL };

static bool senml_type_ok(const cJSON *c, enum senml_type t) {
    switch (t) {
    case SEN_STR:
        return cJSON_IsString(c);
    case SEN_NUM:
        return cJSON_IsNumber(c);
    case SEN_BOOL:
        return cJSON_IsBool(c);
    }
    return false;
}

static const struct senml_label {
    const char *key;
    enum senml_type type;
} senml_labels[] = {
    {"bn", SEN_STR},   {"bt", SEN_NUM}, {"bu", SEN_STR}, {"bv", SEN_NUM}, {"bs", SEN_NUM},
    {"bver", SEN_NUM}, {"n", SEN_STR},  {"u", SEN_STR},  {"v", SEN_NUM},  {"vs", SEN_STR},
    {"vb", SEN_BOOL},  {"vd", SEN_STR}, {"s", SEN_NUM},  {"t", SEN_NUM},  {"ut", SEN_NUM},
};
#define SENML_NLABELS (sizeof(senml_labels) / sizeof(senml_labels[0]))
/* Indexes into senml_labels, in the same order. */
enum { L_BN, L_BT, L_BU, L_BV, L_BS, L_BVER, L_N, L_U, L_V, L_VS, L_VB, L_VD, L_S, L_T, L_UT };
_Static_assert(L_UT + 1 == SENML_NLABELS, "senml_labels and its index enum disagree");

static int senml_record(walk *w, const cJSON *rec, senml_state *st, const char *prefix) {
    const cJSON *f[SENML_NLABELS] = {0};
    if (!cJSON_IsObject(rec)) {
        goto malformed;
    }
    for (const cJSON *c = rec->child; c != NULL; c = c->next) {
        const char *key = c->string != NULL ? c->string : "";
        size_t k = 0;
        while (k < SENML_NLABELS && strcmp(key, senml_labels[k].key) != 0) {
            k++;
        }
        if (k == SENML_NLABELS) {
            size_t kl = strlen(key);
            if (kl > 0 && key[kl - 1] == '_') {
                goto malformed; /* RFC 8428 4.4: must-understand extension */
            }
            continue;
        }
        if (f[k] != NULL || !senml_type_ok(c, senml_labels[k].type)) {
            goto malformed;
        }
        f[k] = c;
    }
    if (f[L_BVER] != NULL && f[L_BVER]->valuedouble > SENML_VERSION) {
        goto malformed;
    }
    if ((f[L_V] != NULL) + (f[L_VS] != NULL) + (f[L_VB] != NULL) + (f[L_VD] != NULL) > 1) {
        goto malformed;
    }
    /* Base fields apply to this record and the ones after it. */
    if (f[L_BN] != NULL) {
        st->bn = f[L_BN]->valuestring;
    }
    if (f[L_BT] != NULL) {
        st->bt = f[L_BT]->valuedouble;
    }
    if (f[L_BV] != NULL) {
        st->bv = f[L_BV]->valuedouble;
    }
    if (f[L_V] == NULL) {
        return 0; /* string, boolean, data or sum-only record: not a reading */
    }
    name nm = {.len = 0, .empty_segment = false};
    nm.s[0] = '\0';
    name_append(&nm, prefix, strlen(prefix));
    if (prefix[0] != '\0') {
        name_append(&nm, ".", 1);
    }
    size_t before = nm.len;
    name_append(&nm, st->bn, strlen(st->bn));
    if (f[L_N] != NULL) {
        name_append(&nm, f[L_N]->valuestring, strlen(f[L_N]->valuestring));
    }
    nm.empty_segment = nm.len == before;

    double t = st->bt + (f[L_T] != NULL ? f[L_T]->valuedouble : 0.0);
    if (!isfinite(t)) {
        w->reason = GW_DEC_BAD_TS;
        return -1;
    }
    double ms = t * 1000.0;
    /* A relative time counts from the arrival: not the message's own clock. */
    w->own_ts = t >= SENML_REL_LIMIT;
    if (!w->own_ts) {
        ms += (double)w->arrival_ms;
    }
    if (!ms_in_range(ms)) {
        w->reason = GW_DEC_BAD_TS;
        return -1;
    }
    return reading(w, &nm, llround(ms), st->bv + f[L_V]->valuedouble);

malformed:
    w->reason = GW_DEC_MALFORMED;
    return -1;
}

static int decode_senml(walk *w, const cJSON *root, const char *prefix) {
    senml_state st = {.bn = "", .bt = 0.0, .bv = 0.0};
    for (const cJSON *rec = root->child; rec != NULL; rec = rec->next) {
        int rc = senml_record(w, rec, &st, prefix);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Entry point                                                                              */

static int fail(gw_decode_reason *reason, gw_decode_reason r) {
    if (reason != NULL) {
        *reason = r;
    }
    return -1;
}

/* Runs the validate pass and then the emit pass over a parsed JSON payload. */
static int decode_json(walk *w, const cJSON *root, const char *prefix, gw_decode_reason *reason) {
    int (*pass)(walk *, const cJSON *, const char *) =
        cJSON_IsObject(root) ? decode_object : decode_senml;
    if (pass(w, root, prefix) != 0) {
        return fail(reason, w->reason);
    }
    if (w->count == 0) {
        return fail(reason, GW_DEC_NOT_NUMERIC);
    }
    w->emit = true;
    if (pass(w, root, prefix) != 0) {
        if (reason != NULL) {
            *reason = GW_DEC_OK;
        }
        return -2;
    }
    if (reason != NULL) {
        *reason = GW_DEC_OK;
    }
    return (int)w->count;
}

int gw_decode(const gw_decoder *d, const char *topic, size_t topic_len, const char *payload,
              size_t payload_len, int64_t arrival_ms, gw_reading_fn fn, void *ctx,
              gw_decode_reason *reason) {
    char sensor[GW_NAME_MAX + 1];
    char metric[GW_NAME_MAX + 1];
    int rc = gw_topic_map_match(d->topics, topic, topic_len, sensor, metric);
    if (rc == -ENOENT) {
        return fail(reason, GW_DEC_NO_ROUTE);
    }
    if (rc != 0) {
        return fail(reason, GW_DEC_BAD_NAME);
    }
    if (payload_len > d->max_payload) {
        return fail(reason, GW_DEC_OVERSIZE);
    }
    if (payload_len == 0 || payload == NULL) {
        return fail(reason, GW_DEC_MALFORMED); /* an empty payload is not a reading */
    }
    if (!gw_utf8_valid((const unsigned char *)payload, payload_len)) {
        return fail(reason, GW_DEC_NOT_UTF8);
    }

    const char *p = payload;
    const char *end = payload + payload_len;
    if (payload_len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3;
    }
    while (p < end && is_blank((unsigned char)*p)) {
        p++;
    }
    while (end > p && is_blank((unsigned char)end[-1])) {
        end--;
    }
    size_t n = (size_t)(end - p);
    if (n == 0) {
        return fail(reason, GW_DEC_MALFORMED);
    }
    unsigned char c0 = (unsigned char)p[0];

    if (c0 == '{' || c0 == '[' || c0 == '"') {
        const char *parse_end = NULL;
        cJSON *root = cJSON_ParseWithLengthOpts(p, n, &parse_end, 0);
        if (root == NULL || parse_end != end) {
            cJSON_Delete(root);
            return fail(reason, GW_DEC_MALFORMED);
        }
        if (cJSON_IsString(root)) {
            cJSON_Delete(root);
            return fail(reason, GW_DEC_NOT_NUMERIC);
        }
        walk w = {.d = d, .sensor = sensor, .arrival_ms = arrival_ms, .fn = fn, .ctx = ctx};
        rc = decode_json(&w, root, metric, reason);
        cJSON_Delete(root);
        return rc;
    }
    if (word_eq_nocase(p, n, "true") || word_eq_nocase(p, n, "false") ||
        word_eq_nocase(p, n, "null")) {
        return fail(reason, GW_DEC_NOT_NUMERIC);
    }
    if (is_nonfinite_word(p, n)) {
        return fail(reason, GW_DEC_NONFINITE);
    }
    if (is_digit(c0) || c0 == '+' || c0 == '-' || c0 == '.') {
        double v;
        gw_decode_reason r = parse_number(p, n, &v);
        if (r != GW_DEC_OK) {
            return fail(reason, r);
        }
        if (metric[0] == '\0') {
            return fail(reason, GW_DEC_BAD_NAME); /* nothing names this value */
        }
        if (d->max_readings == 0) {
            return fail(reason, GW_DEC_TOO_MANY);
        }
        if (reason != NULL) {
            *reason = GW_DEC_OK;
        }
        return fn(ctx, sensor, metric, arrival_ms, false, v) != 0 ? -2 : 1;
    }
    if ((c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z') || c0 >= 0x80) {
        return fail(reason, GW_DEC_NOT_NUMERIC);
    }
    return fail(reason, GW_DEC_MALFORMED);
}

/* ---------------------------------------------------------------------------------------- */
/* RFC 3339                                                                                 */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool digits_at(const char *s, size_t len, size_t pos, size_t n, unsigned *out) {
    if (pos + n > len) {
        return false;
    }
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)s[pos + i])) {
            return false;
        }
        v = v * 10 + (unsigned)(s[pos + i] - '0');
    }
    *out = v;
    return true;
}

int gw_parse_rfc3339(const char *s, size_t len, int64_t *out_ms) {
    unsigned y, mo, d, h, mi, sec;
    if (s == NULL || !digits_at(s, len, 0, 4, &y) || len < 20 || s[4] != '-' ||
        !digits_at(s, len, 5, 2, &mo) || s[7] != '-' || !digits_at(s, len, 8, 2, &d) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits_at(s, len, 11, 2, &h) ||
        s[13] != ':' || !digits_at(s, len, 14, 2, &mi) || s[16] != ':' ||
        !digits_at(s, len, 17, 2, &sec)) {
        return -1;
    }
    static const unsigned char mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || sec > 60) {
        return -1;
    }
    size_t pos = 19;
    unsigned frac_ms = 0;
    if (pos < len && s[pos] == '.') {
        size_t start = ++pos;
        while (pos < len && is_digit((unsigned char)s[pos])) {
            if (pos - start < 3) {
                frac_ms = frac_ms * 10 + (unsigned)(s[pos] - '0');
            }
            pos++;
        }
        if (pos == start) {
            return -1;
        }
        for (size_t k = pos - start; k < 3; k++) {
            frac_ms *= 10;
        }
    }
    if (pos >= len) {
        return -1;
    }
    int64_t offset_min = 0;
    if (s[pos] == 'Z' || s[pos] == 'z') {
        pos++;
    } else if (s[pos] == '+' || s[pos] == '-') {
        unsigned oh, om;
        if (!digits_at(s, len, pos + 1, 2, &oh) || pos + 3 >= len || s[pos + 3] != ':' ||
            !digits_at(s, len, pos + 4, 2, &om) || oh > 23 || om > 59) {
            return -1;
        }
        offset_min = (int64_t)(oh * 60 + om);
        if (s[pos] == '-') {
            offset_min = -offset_min;
        }
        pos += 6;
    } else {
        return -1;
    }
    if (pos != len) {
        return -1;
    }
    /* A leap second (:60) counts as the first second of the next minute, as timegm does. */
    int64_t secs = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 +
                   (int64_t)sec - offset_min * 60;
    *out_ms = secs * 1000 + frac_ms;
    return 0;
}

char *gw_format_rfc3339(int64_t ms, char *buf, size_t len) {
    if (buf == NULL || len == 0) {
        return buf;
    }
    int64_t days = ms / 86400000;
    int64_t rem = ms % 86400000;
    if (rem < 0) {
        rem += 86400000;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    unsigned msod = (unsigned)rem;
    snprintf(buf, len, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ", (long long)y, m, d, msod / 3600000,
             msod / 60000 % 60, msod / 1000 % 60, msod % 1000);
    return buf;
}
