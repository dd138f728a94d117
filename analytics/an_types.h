/* Shared value types of the analytics: readings in, alert transitions out.
 * Pure data, no I/O. Every module of iotgw may include this header. */
#ifndef AN_TYPES_H
#define AN_TYPES_H

#include <stdint.h>

/* One reading of one series. `series` is the gateway's interned id of (sensor, metric). */
typedef struct an_reading {
    uint32_t series;
    float score;   /* anomaly score in [0, 1] once scored, NaN before or without a detector */
    int64_t ts_ms; /* UTC epoch milliseconds */
    double value;  /* always finite */
} an_reading;

typedef enum an_kind {
    AN_KIND_HIGH = 0, /* value above a limit */
    AN_KIND_LOW,      /* value below a limit */
    AN_KIND_RATE,     /* rate of change above a limit */
    AN_KIND_STALE,    /* series went silent */
    AN_KIND_TREND,    /* a limit is predicted to be reached within the horizon (trend.h) */
    AN_KIND_DRIFT,    /* sustained shift of level against a learned baseline (drift.h) */
    AN_KIND_ANOMALY,  /* a reading scored above the anomaly sensitivity (anomaly.h) */
    AN_KIND_COUNT
} an_kind;

typedef enum an_state { AN_STATE_RAISED = 0, AN_STATE_CLEARED } an_state;

typedef enum an_severity { AN_SEV_INFO = 0, AN_SEV_WARNING, AN_SEV_CRITICAL } an_severity;

/* One alert transition produced by a state machine. The gateway adds the id, the gateway id,
 * the sensor and metric names and the human-readable message. */
typedef struct an_alert {
    an_kind kind;
    an_state state;
    an_severity severity;
    double value;     /* the reading that caused the transition */
    double threshold; /* the level that was crossed (raise level or clear level) */
    int64_t ts_ms;    /* ts of the reading that caused the transition */
    int rule;         /* index of the rule in the configuration */
    double detail;    /* kind-specific: the rate (units per second) for AN_KIND_RATE, the
                       * silence in ms for AN_KIND_STALE, the predicted crossing time (epoch ms,
                       * 0 when none) for AN_KIND_TREND, the size of the shift in the series'
                       * units for AN_KIND_DRIFT, the score for AN_KIND_ANOMALY; unset for
                       * AN_KIND_HIGH and AN_KIND_LOW */
} an_alert;

/* Names for the enums, as used on MQTT, in SQLite and in the config ("high", "raised",
 * "warning"). Return a static string; "?" for out-of-range values. */
const char *an_kind_name(an_kind k);
const char *an_state_name(an_state s);
const char *an_severity_name(an_severity s);
/* Parses a severity name; returns 0 and writes *out on success, -1 if unknown. */
int an_severity_parse(const char *name, an_severity *out);

#endif
