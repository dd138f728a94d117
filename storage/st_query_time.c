/* Times and durations as `iotgw query` and `iotgw alerts` take them (st_query.h). */
#include "st_query.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A number with an optional fraction and a unit, in ms (not rounded), or -1. */
static double duration_ms(const char *s) {
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ms", 1},      {"s", 1000},       {"m", 60000},
                 {"h", 3600000}, {"d", 86400000.0}, {"w", 604800000.0}};
    const char *p = s;
    double v = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 16; p++, digits++) {
        v = v * 10 + (*p - '0');
    }
    if (digits == 0 || (*p >= '0' && *p <= '9')) {
        return -1;
    }
    if (*p == '.') {
        double scale = 0.1;
        int frac = 0;
        for (p++; *p >= '0' && *p <= '9' && frac < 9; p++, frac++, scale /= 10) {
            v += (*p - '0') * scale;
        }
        if (frac == 0 || (*p >= '0' && *p <= '9')) {
            return -1;
        }
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].unit) == 0) {
            return v * units[i].ms;
        }
    }
    return -1;
}

int st_query_parse_duration(const char *s, int64_t *out_ms) {
    double ms = s != NULL ? duration_ms(s) : -1;
    if (ms < 0.5 || ms > (double)ST_QUERY_WINDOW_MAX_MS) {
        return -1;
    }
    *out_ms = llround(ms);
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* n digits at s + pos, or false. */
static bool digits(const char *s, size_t len, size_t pos, size_t n, unsigned *out) {
    unsigned v = 0;
    if (pos + n > len) {
        return false;
    }
    for (size_t i = pos; i < pos + n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* RFC 3339 date-time with a zone ("Z" or +hh:mm), or a full-date alone (midnight UTC). */
static int parse_rfc3339(const char *s, int64_t *out_ms) {
    static const unsigned char mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t len = strlen(s), pos = 19;
    unsigned y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
    if (!digits(s, len, 0, 4, &y) || len < 10 || s[4] != '-' || !digits(s, len, 5, 2, &mo) ||
        s[7] != '-' || !digits(s, len, 8, 2, &d) || mo < 1 || mo > 12 || d < 1 ||
        d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))) {
        return -1;
    }
    int64_t offset_min = 0;
    if (len > 10) {
        if ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, len, 11, 2, &h) ||
            s[13] != ':' || !digits(s, len, 14, 2, &mi) || s[16] != ':' ||
            !digits(s, len, 17, 2, &sec) || h > 23 || mi > 59 || sec > 60) {
            return -1;
        }
        if (pos < len && s[pos] == '.') {
            size_t start = ++pos;
            for (; pos < len && s[pos] >= '0' && s[pos] <= '9'; pos++) {
                frac = pos - start < 3 ? frac * 10 + (unsigned)(s[pos] - '0') : frac;
            }
            if (pos == start) {
                return -1;
            }
            for (size_t k = pos - start; k < 3; k++) {
                frac *= 10;
            }
        }
        unsigned oh, om;
        if (pos + 1 == len && (s[pos] == 'Z' || s[pos] == 'z')) {
            offset_min = 0;
        } else if (pos + 6 == len && (s[pos] == '+' || s[pos] == '-') &&
                   digits(s, len, pos + 1, 2, &oh) && s[pos + 3] == ':' &&
                   digits(s, len, pos + 4, 2, &om) && oh <= 23 && om <= 59) {
            offset_min = (s[pos] == '-' ? -1 : 1) * (int64_t)(oh * 60 + om);
        } else {
            return -1;
        }
    }
    /* A leap second (:60) counts as the first second of the next minute, as timegm does. */
    int64_t secs = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 +
                   (int64_t)sec - offset_min * 60;
    *out_ms = secs * 1000 + frac;
    return 0;
}

int st_query_parse_time(const char *s, int64_t now_ms, int64_t *out_ms) {
    int64_t t;
    if (s == NULL) {
        return -1;
    }
    double ago = duration_ms(s);
    if (strcmp(s, "now") == 0) {
        t = now_ms;
    } else if (ago >= 0) {
        /* Bounded first: llround of a value past int64 is undefined. */
        if (ago > (double)(ST_QUERY_TIME_MAX_MS - ST_QUERY_TIME_MIN_MS) ||
            __builtin_sub_overflow(now_ms, llround(ago), &t)) {
            return -1;
        }
    } else if (parse_rfc3339(s, &t) != 0) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (end == s || *end != '\0' || errno != 0 || (s[0] != '-' && (s[0] < '0' || s[0] > '9'))) {
            return -1;
        }
        t = v;
    }
    if (t < ST_QUERY_TIME_MIN_MS || t > ST_QUERY_TIME_MAX_MS) {
        return -1;
    }
    *out_ms = t;
    return 0;
}
