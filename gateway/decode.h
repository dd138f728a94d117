/* Decoder: (topic, payload) -> readings. Payloads accepted:
 * - a plain number ("21.5", " 21.5\n"): one reading, metric from the topic template;
 * - a JSON object: every numeric field is a metric, nested objects flattened with '.'
 *   ({"env":{"t":1}} -> "env.t"); a `ts` field at top level is the timestamp (epoch seconds,
 *   epoch milliseconds — values >= 1e11 are ms — or an RFC 3339 string), not a metric;
 *   strings, booleans, nulls and arrays inside an object are not metrics and are skipped;
 *   when the topic template gives a metric, it prefixes the field names ("m.field");
 * - a SenML (RFC 8428) array: records with n/bn, v/bv, t/bt (seconds; t < 2^28 relative to
 *   arrival time), u ignored; records with vs/vb/vd only are skipped.
 * Without a timestamp a reading gets the arrival time.
 *
 * Bad input never aborts: the decoder returns a reason and the caller counts it. Reasons are
 * per message: a message either yields its readings or fails as a whole (nothing emitted).
 *
 * The decoder is read-only after setup: gw_decode is thread-safe for concurrent callers. */
#ifndef GW_DECODE_H
#define GW_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "topic.h"

typedef enum gw_decode_reason {
    GW_DEC_OK = 0,
    GW_DEC_NO_ROUTE,    /* topic matches no subscription */
    GW_DEC_BAD_NAME,    /* expanded sensor/metric empty, too long or not UTF-8 */
    GW_DEC_OVERSIZE,    /* payload longer than max_payload */
    GW_DEC_NOT_UTF8,    /* payload is not valid UTF-8 */
    GW_DEC_MALFORMED,   /* not a number, not valid JSON, trailing garbage, bad SenML shape */
    GW_DEC_NOT_NUMERIC, /* valid but carries no numeric value (e.g. "on", {"a":"x"}, true) */
    GW_DEC_NONFINITE,   /* NaN or +-Inf (including numbers that overflow a double) */
    GW_DEC_BAD_TS,      /* ts present but unparseable, negative or beyond year 9999 */
    GW_DEC_TOO_MANY,    /* more readings in one message than max_readings */
    GW_DEC_REASON_COUNT
} gw_decode_reason;

/* Stable snake_case name of a reason ("no_route", "malformed", ...) for logs and stats. */
const char *gw_decode_reason_name(gw_decode_reason r);

typedef struct gw_decoder {
    const gw_topic_map *topics; /* borrowed; must outlive the decoder */
    size_t max_payload;         /* bytes, e.g. 65536 */
    size_t max_readings;        /* per message, e.g. 1024 */
} gw_decoder;

/* Called once per reading. sensor/metric are NUL-terminated and only valid during the call.
 * own_ts is true when ts_ms comes from the message (a "ts" field, an absolute SenML time),
 * false when it is the arrival time (or a SenML time relative to it).
 * Return 0 to go on; a non-zero return stops decoding and is passed back by gw_decode. */
typedef int (*gw_reading_fn)(void *ctx, const char *sensor, const char *metric, int64_t ts_ms,
                             bool own_ts, double value);

/* Decodes one message. Borrows everything; payload need not be NUL-terminated.
 * arrival_ms is the time stamp given to readings without one.
 * All readings are validated before the first callback, so on failure no callback was made.
 * Returns the number of readings (>= 0) with *reason = GW_DEC_OK; -1 with *reason set when the
 * message is bad; -2 when a callback returned non-zero (decoding stopped there). */
int gw_decode(const gw_decoder *d, const char *topic, size_t topic_len, const char *payload,
              size_t payload_len, int64_t arrival_ms, gw_reading_fn fn, void *ctx,
              gw_decode_reason *reason);

/* Parses an RFC 3339 date-time ("2024-05-01T12:00:00Z", "...T12:00:00.123+02:00", a space
 * instead of 'T' accepted) into UTC epoch ms. Returns 0 or -1. Thread-safe. */
int gw_parse_rfc3339(const char *s, size_t len, int64_t *out_ms);

/* Formats UTC epoch ms as RFC 3339 with milliseconds ("2024-05-01T12:00:00.000Z").
 * buf needs 25 bytes. Returns buf. */
char *gw_format_rfc3339(int64_t ms, char *buf, size_t len);

#endif
