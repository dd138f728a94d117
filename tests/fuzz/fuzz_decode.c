/* libFuzzer target for the decoder: topic map, payload shapes, timestamps.
 *
 * Input layout: byte 0 = topic length L (clamped to what is left), bytes 1..L = topic, the
 * rest = payload. The topic is copied into its own exact-size buffer and the payload is the
 * tail of the input, so AddressSanitizer sees any read past either one.
 *
 * Besides crashes and sanitizer reports, the target traps when a contract breaks: a callback
 * after a failure, a reading with an empty, long or non-terminated name, a non-finite value, a
 * timestamp out of range, a count that disagrees with the return value, a plain number that
 * differs from strtod, or an RFC 3339 round trip that does not come back.
 *
 * Build: CC=clang cmake -B build-fuzz -DIOTGW_FUZZ=ON -DIOTGW_SANITIZE=ON */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

#define TS_MAX_MS INT64_C(253402300799999)

typedef struct fuzz_ctx {
    int calls;
    int stop_at; /* 0: never stop */
    double last;
} fuzz_ctx;

static int on_reading(void *vctx, const char *sensor, const char *metric, int64_t ts_ms,
                      bool own_ts, double value) {
    (void)own_ts;
    fuzz_ctx *c = vctx;
    size_t sl = strnlen(sensor, GW_NAME_MAX + 1);
    size_t ml = strnlen(metric, GW_NAME_MAX + 1);
    if (sl == 0 || sl > GW_NAME_MAX || ml == 0 || ml > GW_NAME_MAX || !isfinite(value)) {
        __builtin_trap();
    }
    if (ts_ms < 0 || ts_ms > TS_MAX_MS) {
        __builtin_trap();
    }
    c->last = value;
    c->calls++;
    return c->stop_at != 0 && c->calls == c->stop_at;
}

static const gw_decoder *decoder(void) {
    static gw_topic_map *m;
    static gw_decoder d;
    if (m != NULL) {
        return &d;
    }
    static const struct {
        const char *filter, *sensor, *metric;
    } subs[] = {
        {"sensors/+/+", "{1}", "{2}"},
        {"sensors/+", "{1}", ""},
        {"$share/g/s/#", "{1}-{2}", "{3}"},
        {"t/+/x/+", "pre.{0}", "m{2}"},
        {"#", "{1}", ""},
    };
    char err[160];
    if (gw_topic_map_new(&m) != 0) {
        abort();
    }
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (gw_topic_map_add(m, subs[i].filter, subs[i].sensor, subs[i].metric, err, sizeof(err)) !=
            0) {
            abort();
        }
    }
    d.topics = m;
    d.max_payload = 4000;
    d.max_readings = 64;
    return &d;
}

/* A payload made only of number characters that decodes to one reading must equal strtod. */
static void check_number(const uint8_t *p, size_t n, double got) {
    if (n == 0 || n > 64) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (strchr("0123456789.eE+-", p[i]) == NULL || p[i] == '\0') {
            return;
        }
    }
    char buf[65];
    memcpy(buf, p, n);
    buf[n] = '\0';
    double want = strtod(buf, NULL);
    if (memcmp(&want, &got, sizeof(want)) != 0) {
        __builtin_trap();
    }
}

static void check_rfc3339(const uint8_t *p, size_t n) {
    int64_t ms;
    if (gw_parse_rfc3339((const char *)p, n, &ms) != 0 || ms < 0 || ms > TS_MAX_MS) {
        return;
    }
    char buf[25];
    int64_t back;
    gw_format_rfc3339(ms, buf, sizeof(buf));
    if (gw_parse_rfc3339(buf, strlen(buf), &back) != 0 || back != ms) {
        __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) {
        return 0;
    }
    const gw_decoder *d = decoder();
    size_t tlen = data[0];
    if (tlen > size - 1) {
        tlen = size - 1;
    }
    char *topic = malloc(tlen > 0 ? tlen : 1);
    if (topic == NULL) {
        return 0;
    }
    memcpy(topic, data + 1, tlen);
    const uint8_t *payload = data + 1 + tlen;
    size_t plen = size - 1 - tlen;

    fuzz_ctx c = {.calls = 0, .stop_at = (int)(data[0] % 5), .last = 0};
    gw_decode_reason reason = GW_DEC_REASON_COUNT;
    int rc = gw_decode(d, topic, tlen, (const char *)payload, plen, INT64_C(1714564800000),
                       on_reading, &c, &reason);
    if (rc >= 0) {
        if (reason != GW_DEC_OK || rc != c.calls || (size_t)rc > d->max_readings) {
            __builtin_trap();
        }
        if (rc == 1 && tlen >= 8 && memcmp(topic, "sensors/", 8) == 0) {
            check_number(payload, plen, c.last);
        }
    } else if (rc == -1) {
        if (reason == GW_DEC_OK || reason >= GW_DEC_REASON_COUNT || c.calls != 0) {
            __builtin_trap();
        }
        if (strcmp(gw_decode_reason_name(reason), "unknown") == 0) {
            __builtin_trap();
        }
    } else if (rc != -2 || c.stop_at == 0 || c.calls != c.stop_at) {
        __builtin_trap();
    }
    check_rfc3339(payload, plen);
    free(topic);
    return 0;
}
