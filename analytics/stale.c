/* Stale (deadman) state machine; see stale.h for the exact semantics. */
#include "stale.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

void an_stale_init(an_stale_state *st) {
    if (st == NULL) {
        return;
    }
    *st = (an_stale_state){.last_seen_ms = 0, .last_value = 0, .seen = 0, .raised = 0};
}

/* Time from `from` to `to`, 0 when `to` is not later. Unsigned, so that extreme times cannot
 * overflow. */
static uint64_t elapsed(int64_t from, int64_t to) {
    if (to <= from) {
        return 0;
    }
    return (uint64_t)to - (uint64_t)from;
}

static bool usable(const an_stale_cfg *cfg, const an_stale_state *st, const an_alert *out,
                   int cap) {
    return cfg != NULL && st != NULL && out != NULL && cap >= 1 && cfg->after_ms > 0;
}

static void fill(an_alert *a, const an_stale_cfg *cfg, an_state state, int rule, int64_t ts_ms,
                 double value, uint64_t silence_ms) {
    *a = (an_alert){
        .kind = AN_KIND_STALE,
        .state = state,
        .severity = cfg->severity,
        .value = value,
        .threshold = (double)cfg->after_ms,
        .ts_ms = ts_ms,
        .rule = rule,
        .detail = (double)silence_ms,
    };
}

int an_stale_restore(an_stale_state *st, int64_t last_seen_ms, double last_value) {
    if (st == NULL) {
        return -EINVAL;
    }
    *st = (an_stale_state){
        .last_seen_ms = last_seen_ms, .last_value = last_value, .seen = 1, .raised = 1};
    return 0;
}

int an_stale_seen(const an_stale_cfg *cfg, an_stale_state *st, int rule, int64_t t_ms, double value,
                  an_alert *out, int cap) {
    if (!usable(cfg, st, out, cap)) {
        return -EINVAL;
    }
    int n = 0;
    if (st->raised) {
        fill(&out[n++], cfg, AN_STATE_CLEARED, rule, t_ms, value, elapsed(st->last_seen_ms, t_ms));
        st->raised = 0;
    }
    if (!st->seen || t_ms > st->last_seen_ms) {
        st->last_seen_ms = t_ms;
    }
    st->seen = 1;
    st->last_value = value;
    return n;
}

int an_stale_check(const an_stale_cfg *cfg, an_stale_state *st, int rule, int64_t now_ms,
                   an_alert *out, int cap) {
    if (!usable(cfg, st, out, cap)) {
        return -EINVAL;
    }
    if (!st->seen || st->raised) {
        return 0;
    }
    uint64_t silence = elapsed(st->last_seen_ms, now_ms);
    if (silence < (uint64_t)cfg->after_ms) {
        return 0;
    }
    st->raised = 1;
    fill(out, cfg, AN_STATE_RAISED, rule, now_ms, st->last_value, silence);
    return 1;
}
