/* Threshold alert state machine; see threshold.h for the exact semantics. */
#include "threshold.h"

#include <errno.h>
#include <stddef.h>

/* Event-time duration since the run start; readings earlier than the start count as 0.
 * Computed in unsigned arithmetic so that extreme timestamps cannot overflow. */
static uint64_t run_duration(int64_t start_ms, int64_t ts_ms) {
    if (ts_ms <= start_ms) {
        return 0;
    }
    return (uint64_t)ts_ms - (uint64_t)start_ms;
}

/* Advances one side. `active` is "violating" while not raised and "clearing" while raised;
 * any other reading (the band, or the opposite extreme) ends the current run. Returns true
 * when the side changed state (raised or cleared) on this reading. */
static bool side_step(an_threshold_side *s, bool active, int64_t ts_ms, int64_t need_ms) {
    if (!active) {
        s->in_run = 0;
        return false;
    }
    if (!s->in_run) {
        s->in_run = 1;
        s->run_start_ms = ts_ms;
    }
    uint64_t need = need_ms > 0 ? (uint64_t)need_ms : 0;
    if (run_duration(s->run_start_ms, ts_ms) < need) {
        return false;
    }
    /* A transition ends the run: the next episode phase starts its own run from scratch. */
    s->raised = !s->raised;
    s->in_run = 0;
    return true;
}

static void fill(an_alert *a, const an_threshold_cfg *cfg, an_kind kind, bool raised,
                 double threshold, int rule, int64_t ts_ms, double value) {
    a->kind = kind;
    a->state = raised ? AN_STATE_RAISED : AN_STATE_CLEARED;
    a->severity = cfg->severity;
    a->value = value;
    a->threshold = threshold;
    a->ts_ms = ts_ms;
    a->rule = rule;
}

void an_threshold_init(an_threshold_state *st) {
    if (st == NULL) {
        return;
    }
    st->high = (an_threshold_side){.run_start_ms = 0, .raised = 0, .in_run = 0};
    st->low = (an_threshold_side){.run_start_ms = 0, .raised = 0, .in_run = 0};
}

int an_threshold_restore(an_threshold_state *st, an_kind kind) {
    if (st == NULL || (kind != AN_KIND_HIGH && kind != AN_KIND_LOW)) {
        return -EINVAL;
    }
    an_threshold_side *s = kind == AN_KIND_HIGH ? &st->high : &st->low;
    s->raised = 1;
    s->in_run = 0;
    return 0;
}

/* Rejects a missing argument or cap < 2 with -EINVAL before touching the state, so that a
 * transition is never consumed without having room to report it. Emits the high side's
 * transition first, then the low side's. */
int an_threshold_update(const an_threshold_cfg *cfg, an_threshold_state *st, int rule,
                        int64_t ts_ms, double value, an_alert *out, int cap) {
    if (cfg == NULL || st == NULL || out == NULL || cap < 2) {
        return -EINVAL;
    }
    int n = 0;

    if (cfg->has_above) {
        an_threshold_side *s = &st->high;
        bool active = s->raised ? value < cfg->clear_below : value > cfg->above;
        int64_t need = s->raised ? cfg->clear_for_ms : cfg->for_ms;
        if (side_step(s, active, ts_ms, need)) {
            bool raised = s->raised != 0;
            fill(&out[n++], cfg, AN_KIND_HIGH, raised, raised ? cfg->above : cfg->clear_below, rule,
                 ts_ms, value);
        }
    }

    if (cfg->has_below) {
        an_threshold_side *s = &st->low;
        bool active = s->raised ? value > cfg->clear_above : value < cfg->below;
        int64_t need = s->raised ? cfg->clear_for_ms : cfg->for_ms;
        if (side_step(s, active, ts_ms, need)) {
            bool raised = s->raised != 0;
            fill(&out[n++], cfg, AN_KIND_LOW, raised, raised ? cfg->below : cfg->clear_above, rule,
                 ts_ms, value);
        }
    }

    return n;
}
