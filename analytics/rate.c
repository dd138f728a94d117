/* Rate-of-change state machine; see rate.h for the exact semantics. */
#include "rate.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>

void an_rate_init(an_rate_state *st) {
    if (st == NULL) {
        return;
    }
    *st = (an_rate_state){.last_ts_ms = 0, .last_value = 0, .primed = 0, .raised = 0};
}

int an_rate_restore(an_rate_state *st, int64_t ts_ms, double value) {
    if (st == NULL || !isfinite(value)) {
        return -EINVAL;
    }
    *st = (an_rate_state){.last_ts_ms = ts_ms, .last_value = value, .primed = 1, .raised = 1};
    return 0;
}

/* |v - v0| per second over dt_ms > 0. The difference is scaled before the one division so that
 * exact operands give an exact rate; an overflow (values near DBL_MAX of opposite signs) still
 * compares above any finite limit, but is reported as DBL_MAX so that it prints as a number. */
static double rate_of(double v0, double v, uint64_t dt_ms) {
    double r = fabs(v - v0) * 1000.0 / (double)dt_ms;
    return isfinite(r) ? r : DBL_MAX;
}

/* Rejects a missing argument, cap < 1 or an unusable limit with -EINVAL before touching the
 * state, so that a transition is never consumed without having room to report it. */
int an_rate_update(const an_rate_cfg *cfg, an_rate_state *st, int rule, int64_t ts_ms, double value,
                   an_alert *out, int cap) {
    if (cfg == NULL || st == NULL || out == NULL || cap < 1 || !isfinite(cfg->above) ||
        cfg->above <= 0) {
        return -EINVAL;
    }
    if (!isfinite(value)) {
        return 0;
    }
    if (!st->primed) {
        st->primed = 1;
        st->last_ts_ms = ts_ms;
        st->last_value = value;
        return 0;
    }
    /* A repeated or earlier ts has no slope (zero or negative time). Keeping the previous
     * reading as the reference means the next rate still spans forward in event time. */
    if (ts_ms <= st->last_ts_ms) {
        return 0;
    }
    /* Unsigned, so that extreme timestamps cannot overflow. */
    uint64_t dt = (uint64_t)ts_ms - (uint64_t)st->last_ts_ms;
    double rate = rate_of(st->last_value, value, dt);
    st->last_ts_ms = ts_ms;
    st->last_value = value;

    bool flip = st->raised ? rate <= cfg->above : rate > cfg->above;
    if (!flip) {
        return 0;
    }
    st->raised = !st->raised;
    out[0] = (an_alert){
        .kind = AN_KIND_RATE,
        .state = st->raised ? AN_STATE_RAISED : AN_STATE_CLEARED,
        .severity = cfg->severity,
        .value = value,
        .threshold = cfg->above,
        .ts_ms = ts_ms,
        .rule = rule,
        .detail = rate,
    };
    return 1;
}
