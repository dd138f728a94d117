/* Rules: which series a rule applies to (sensor and metric glob patterns) and what it checks.
 * A rule has up to three parts, each with its own state machine per matching series and its
 * own alerts (all with .rule = the rule's index): the threshold part (above and/or below), the
 * rate part (rate_above) and the stale part (stale_after). The configuration enables at least
 * one part and gives all parts the rule's one severity.
 * Pure; the configuration owns the rule array, workers only read it. */
#ifndef AN_RULE_H
#define AN_RULE_H

#include <stdbool.h>

#include "anomaly.h"
#include "drift.h"
#include "rate.h"
#include "stale.h"
#include "threshold.h"
#include "trend.h"

#define AN_RULE_NAME_MAX 64
#define AN_GLOB_MAX      128

typedef struct an_rule {
    char name[AN_RULE_NAME_MAX];   /* "rules[3]" when the config gives none */
    char sensor_glob[AN_GLOB_MAX]; /* fnmatch(3) pattern, "*" by default */
    char metric_glob[AN_GLOB_MAX];
    an_threshold_cfg threshold; /* enabled by has_above / has_below; holds the rule's severity */
    bool has_rate;              /* rate part given ("rate_above") */
    an_rate_cfg rate;           /* severity copied from threshold.severity */
    bool has_stale;             /* stale part given ("stale_after") */
    an_stale_cfg stale;         /* severity copied from threshold.severity */
    bool has_trend;             /* trend part: "trend" or "trend_limit" given */
    an_trend_cfg trend;         /* defaults from an_trend_cfg_default; severity copied */
    bool has_drift;             /* drift part: "drift": true */
    an_drift_cfg drift;         /* defaults from an_drift_cfg_default; severity copied */
    bool has_anomaly;           /* anomaly part: "anomaly" (the sensitivity) given */
    an_anomaly_cfg anomaly;     /* defaults from an_anomaly_cfg_default; severity copied */
} an_rule;

/* True when the rule applies to (sensor, metric). Borrows all arguments. Thread-safe. */
bool an_rule_matches(const an_rule *r, const char *sensor, const char *metric);

#endif
