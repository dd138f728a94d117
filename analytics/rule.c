/* Rule matching and the names of the shared analytics enums. */
#include "rule.h"

#include <fnmatch.h>
#include <stddef.h>
#include <string.h>

static const char *const kind_names[AN_KIND_COUNT] = {
    [AN_KIND_HIGH] = "high",       [AN_KIND_LOW] = "low",     [AN_KIND_RATE] = "rate",
    [AN_KIND_STALE] = "stale",     [AN_KIND_TREND] = "trend", [AN_KIND_DRIFT] = "drift",
    [AN_KIND_ANOMALY] = "anomaly",
};

static const char *const state_names[] = {
    [AN_STATE_RAISED] = "raised",
    [AN_STATE_CLEARED] = "cleared",
};

static const char *const severity_names[] = {
    [AN_SEV_INFO] = "info",
    [AN_SEV_WARNING] = "warning",
    [AN_SEV_CRITICAL] = "critical",
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* The enum arguments may hold any int (they come from casts), so range-check as unsigned. */
const char *an_kind_name(an_kind k) {
    if ((unsigned)k >= N_ELEMS(kind_names)) {
        return "?";
    }
    return kind_names[k];
}

const char *an_state_name(an_state s) {
    if ((unsigned)s >= N_ELEMS(state_names)) {
        return "?";
    }
    return state_names[s];
}

const char *an_severity_name(an_severity s) {
    if ((unsigned)s >= N_ELEMS(severity_names)) {
        return "?";
    }
    return severity_names[s];
}

int an_severity_parse(const char *name, an_severity *out) {
    if (name == NULL || out == NULL) {
        return -1;
    }
    for (size_t i = 0; i < N_ELEMS(severity_names); i++) {
        if (strcmp(name, severity_names[i]) == 0) {
            *out = (an_severity)i;
            return 0;
        }
    }
    return -1;
}

/* Flags 0, not FNM_PATHNAME or FNM_PERIOD: sensor and metric names are plain labels, so "*"
 * must match names that contain '/' or start with '.', and "env.*" must match "env.t". */
bool an_rule_matches(const an_rule *r, const char *sensor, const char *metric) {
    if (r == NULL || sensor == NULL || metric == NULL) {
        return false;
    }
    return fnmatch(r->sensor_glob, sensor, 0) == 0 && fnmatch(r->metric_glob, metric, 0) == 0;
}
