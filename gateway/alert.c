#include "alert.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

int gw_json_str(char *buf, size_t len, size_t used, const char *s) {
    static const char hex[] = "0123456789abcdef";
    if (used + 2 > len) {
        return -1;
    }
    buf[used++] = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc = 0;
        switch (*c) {
        case '"':
            esc = '"';
            break;
        case '\\':
            esc = '\\';
            break;
        case '\n':
            esc = 'n';
            break;
        case '\r':
            esc = 'r';
            break;
        case '\t':
            esc = 't';
            break;
        default:
            break;
        }
        if (esc != 0) {
            if (used + 2 >= len) {
                return -1;
            }
            buf[used++] = '\\';
            buf[used++] = esc;
        } else if (*c < 0x20) {
            if (used + 6 >= len) {
                return -1;
            }
            buf[used++] = '\\';
            buf[used++] = 'u';
            buf[used++] = '0';
            buf[used++] = '0';
            buf[used++] = hex[*c >> 4];
            buf[used++] = hex[*c & 15];
        } else {
            if (used + 1 >= len) {
                return -1;
            }
            buf[used++] = (char)*c;
        }
    }
    if (used + 1 >= len) {
        return -1;
    }
    buf[used++] = '"';
    buf[used] = '\0';
    return (int)used;
}

static int append(char *buf, size_t len, int used, const char *fmt_key) {
    if (used < 0) {
        return -1;
    }
    int n = snprintf(buf + used, len - (size_t)used, "%s", fmt_key);
    if (n < 0 || (size_t)n >= len - (size_t)used) {
        return -1;
    }
    return used + n;
}

static int append_num(char *buf, size_t len, int used, const char *key, double v) {
    if (used < 0) {
        return -1;
    }
    /* The shortest of %.15g and %.17g that reads back as the same double: 21.37, not
     * 21.370000000000001. JSON has no NaN, and values here are always finite. */
    char num[32];
    snprintf(num, sizeof(num), "%.15g", v);
    if (strtod(num, NULL) != v) {
        snprintf(num, sizeof(num), "%.17g", v);
    }
    int n = snprintf(buf + used, len - (size_t)used, ",\"%s\":%s", key, num);
    if (n < 0 || (size_t)n >= len - (size_t)used) {
        return -1;
    }
    return used + n;
}

static int append_str(char *buf, size_t len, int used, const char *key, const char *v) {
    char k[32];
    snprintf(k, sizeof(k), ",\"%s\":", key);
    used = append(buf, len, used, k);
    if (used < 0) {
        return -1;
    }
    return gw_json_str(buf, len, (size_t)used, v != NULL ? v : "");
}

int gw_alert_json(const st_alert_out *a, char *buf, size_t len) {
    char ts[32];
    /* An alert published while storage fails has no outbox id yet (a negative one inside
     * the gateway): subscribers see "id": null and "stored": false. */
    int used = a->id > 0 ? snprintf(buf, len, "{\"id\":%lld", (long long)a->id)
                         : snprintf(buf, len, "{\"id\":null,\"stored\":false");
    if (used < 0 || (size_t)used >= len) {
        return -1;
    }
    used = append_str(buf, len, used, "gateway", a->gateway);
    used = append_str(buf, len, used, "sensor", a->sensor);
    used = append_str(buf, len, used, "metric", a->metric);
    used = append_str(buf, len, used, "kind", a->kind);
    used = append_str(buf, len, used, "state", a->state);
    used = append_str(buf, len, used, "severity", a->severity);
    used = append_str(buf, len, used, "rule", a->rule);
    used = append_num(buf, len, used, "value", a->value);
    used = append_num(buf, len, used, "threshold", a->threshold);
    used = append_str(buf, len, used, "ts", gw_format_rfc3339(a->ts_ms, ts, sizeof(ts)));
    /* The kind-specific figure, under a name that says what it is. */
    if (!isnan(a->detail) && a->kind != NULL) {
        if (strcmp(a->kind, "trend") == 0 && a->detail > 0) {
            char eta[32];
            used = append_str(buf, len, used, "eta",
                              gw_format_rfc3339((int64_t)a->detail, eta, sizeof(eta)));
        } else if (strcmp(a->kind, "rate") == 0) {
            used = append_num(buf, len, used, "rate", a->detail);
        } else if (strcmp(a->kind, "stale") == 0) {
            used = append_num(buf, len, used, "silence_ms", a->detail);
        } else if (strcmp(a->kind, "drift") == 0) {
            used = append_num(buf, len, used, "shift", a->detail);
        } else if (strcmp(a->kind, "anomaly") == 0) {
            used = append_num(buf, len, used, "score", a->detail);
        }
    }
    used = append_str(buf, len, used, "message", a->message);
    return append(buf, len, used, "}");
}

char *gw_alert_message(const an_alert *a, const char *sensor, const char *metric, const char *rule,
                       char *buf, size_t len) {
    bool raised = a->state == AN_STATE_RAISED;
    switch (a->kind) {
    case AN_KIND_HIGH:
    case AN_KIND_LOW: {
        const char *dir = (a->kind == AN_KIND_HIGH) == raised ? "above" : "below";
        snprintf(buf, len, "%s of %s is %s%.6g, %s %.6g (rule %s)", metric, sensor,
                 raised ? "" : "back to ", a->value, dir, a->threshold, rule);
        break;
    }
    case AN_KIND_RATE:
        snprintf(buf, len, "%s of %s changes by %.6g per second, %s %.6g (rule %s)", metric, sensor,
                 a->detail, raised ? "faster than" : "back to at most", a->threshold, rule);
        break;
    case AN_KIND_STALE:
        if (raised) {
            snprintf(buf, len, "%s of %s silent for %.0f s, last value %.6g (rule %s)", metric,
                     sensor, a->detail / 1000.0, a->value, rule);
        } else {
            snprintf(buf, len, "%s of %s reports again after %.0f s: %.6g (rule %s)", metric,
                     sensor, a->detail / 1000.0, a->value, rule);
        }
        break;
    case AN_KIND_TREND:
        if (raised && a->detail > 0) {
            char when[32];
            snprintf(buf, len, "%s of %s is trending toward %.6g, predicted at %s (rule %s)",
                     metric, sensor, a->threshold,
                     gw_format_rfc3339((int64_t)a->detail, when, sizeof(when)), rule);
        } else {
            snprintf(buf, len, "%s of %s: %s no longer predicted within the horizon (rule %s)",
                     metric, sensor, raised ? "limit" : "the limit is", rule);
        }
        break;
    case AN_KIND_DRIFT:
        /* A drift clears when the level returns, or when the shift has lasted long enough to
         * become the new baseline. */
        snprintf(buf, len,
                 raised ? "%s of %s has shifted by %+.6g from its baseline (rule %s)"
                        : "%s of %s: drift over, level %+.6g from the old baseline (rule %s)",
                 metric, sensor, a->detail, rule);
        break;
    case AN_KIND_ANOMALY:
        snprintf(buf, len,
                 raised ? "%s of %s: unusual reading %.6g (anomaly score %.6f) (rule %s)"
                        : "%s of %s: readings usual again, %.6g (score %.6f) (rule %s)",
                 metric, sensor, a->value, a->detail, rule);
        break;
    default:
        snprintf(buf, len, "%s of %s: %s %s at %.6g, threshold %.6g (rule %s)", metric, sensor,
                 an_kind_name(a->kind), an_state_name(a->state), a->value, a->threshold, rule);
        break;
    }
    return buf;
}
