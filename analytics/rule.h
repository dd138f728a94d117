/* Rules: which series a rule applies to (sensor and metric glob patterns) and what it checks.
 * Pure; the configuration owns the rule array, workers only read it. */
#ifndef AN_RULE_H
#define AN_RULE_H

#include <stdbool.h>

#include "threshold.h"

#define AN_RULE_NAME_MAX 64
#define AN_GLOB_MAX 128

typedef struct an_rule {
    char name[AN_RULE_NAME_MAX]; /* "rules[3]" when the config gives none */
    char sensor_glob[AN_GLOB_MAX]; /* fnmatch(3) pattern, "*" by default */
    char metric_glob[AN_GLOB_MAX];
    an_threshold_cfg threshold;
} an_rule;

/* True when the rule applies to (sensor, metric). Borrows all arguments. Thread-safe. */
bool an_rule_matches(const an_rule *r, const char *sensor, const char *metric);

#endif
