/* Alert states across a restart; see restore.h. */
#include "restore.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "clock.h"
#include "st_active.h"
#include "writer_internal.h"

static int parse_kind(const char *name, an_kind *out) {
    for (int k = 0; name != NULL && k < AN_KIND_COUNT; k++) {
        if (strcmp(name, an_kind_name((an_kind)k)) == 0) {
            *out = (an_kind)k;
            return 0;
        }
    }
    return -1;
}

/* Whether the rule has the part that raises alerts of this kind. A trend part without a limit
 * predicts only: it can never clear a trend alert. */
static bool rule_checks(const an_rule *r, an_kind kind) {
    switch (kind) {
    case AN_KIND_HIGH:
        return r->threshold.has_above;
    case AN_KIND_LOW:
        return r->threshold.has_below;
    case AN_KIND_RATE:
        return r->has_rate;
    case AN_KIND_STALE:
        return r->has_stale;
    case AN_KIND_TREND:
        return r->has_trend && r->trend.has_limit;
    case AN_KIND_DRIFT:
        return r->has_drift;
    case AN_KIND_ANOMALY:
        return r->has_anomaly;
    default:
        return false;
    }
}

uint8_t gw__restore_find_rule(const gw_ruleset *rs, const char *name, const gw_series *s,
                              an_kind kind, int *index) {
    uint8_t why = GW_WHY_RULE_GONE;
    for (size_t i = 0; i < rs->n; i++) {
        const an_rule *r = &rs->rules[i];
        if (strcmp(r->name, name) != 0) {
            continue;
        }
        if (!an_rule_matches(r, s->sensor, s->metric)) {
            if (why == GW_WHY_RULE_GONE) {
                why = GW_WHY_NO_MATCH;
            }
            continue;
        }
        if (!rule_checks(r, kind)) {
            why = GW_WHY_PART_OFF;
            continue;
        }
        *index = (int)i;
        return GW_WHY_RULE;
    }
    return why;
}

static int grow(gw_restore *r) {
    if (r->n < r->cap) {
        return 0;
    }
    size_t cap = r->cap ? r->cap * 2 : 16;
    if (cap > GW_RESTORE_MAX) {
        cap = GW_RESTORE_MAX;
    }
    gw_restore_item *items = realloc(r->items, cap * sizeof(*items));
    if (items == NULL) {
        return -ENOMEM;
    }
    r->items = items;
    r->cap = cap;
    return 0;
}

typedef struct load_ctx {
    gw_pipeline *p;
    gw_restore *r;
} load_ctx;

static int load_one(void *ctx, const st_alert_out *row) {
    load_ctx *lc = ctx;
    gw_restore *r = lc->r;
    an_kind kind;
    an_severity sev;
    gw_series *s;
    if (row->sensor == NULL || row->metric == NULL || row->rule == NULL ||
        parse_kind(row->kind, &kind) != 0) {
        r->unusable++;
        return 0;
    }
    if (r->n == GW_RESTORE_MAX || grow(r) != 0) {
        r->too_many++;
        return 0;
    }
    /* Before the threads start, this thread stands in for the decode stage (series.h). */
    if (gw_series_intern(lc->p->series, row->sensor, row->metric, &s) != 0) {
        r->unusable++;
        return 0;
    }
    if (an_severity_parse(row->severity != NULL ? row->severity : "", &sev) != 0) {
        sev = AN_SEV_WARNING;
    }
    gw_restore_item *it = &r->items[r->n];
    *it = (gw_restore_item){
        .a = {.kind = kind,
              .state = AN_STATE_RAISED,
              .severity = sev,
              .value = row->value,
              .threshold = row->threshold,
              .ts_ms = row->ts_ms,
              .rule = -1,
              .detail = row->detail},
        .id = row->id,
        .series = s->id,
    };
    it->why = gw__restore_find_rule(lc->p->rules, row->rule, s, kind, &it->a.rule);
    if (it->why == GW_WHY_RULE) {
        it->rule = &lc->p->rules->rules[it->a.rule];
        char json[2048];
        int n = gw_alert_json(row, json, sizeof(json));
        /* Without it, only a clear of another rule of this kind shows an empty state. */
        it->payload = n > 0 ? strdup(json) : NULL;
    } else {
        it->gone = calloc(1, sizeof(*it->gone));
        if (it->gone == NULL) {
            r->too_many++;
            return 0;
        }
        snprintf(it->gone->name, sizeof(it->gone->name), "%s", row->rule);
        it->rule = it->gone;
        r->n_cleared++;
    }
    r->n++;
    return 0;
}

int gw__restore_load(gw_pipeline *p) {
    if (p->db == NULL) {
        /* The storage fault is reported elsewhere; readings flow from the start, so states
         * cannot be taken over later without racing them. */
        GW_WARN("restore", "database not open at start: alerts raised by earlier runs are not "
                           "taken over (they stay in v_active_alerts)");
        return 0;
    }
    gw_restore *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        GW_ERROR("restore", "out of memory: alerts raised by earlier runs are not taken over");
        return -ENOMEM;
    }
    load_ctx lc = {p, r};
    char err[256] = "";
    int rc = st_db_active_alerts(p->db, load_one, &lc, err, sizeof(err));
    if (rc < 0) {
        GW_ERROR("restore", "alerts raised by earlier runs are not taken over: %s", err);
        gw__restore_free(r);
        return rc;
    }
    if (r->too_many > 0 || r->unusable > 0) {
        GW_ERROR("restore",
                 "%llu active alerts not taken over (%llu beyond %d or without memory, %llu "
                 "without a series or known kind, or past pipeline.max_series): they stay in "
                 "v_active_alerts until their rule raises and clears again",
                 (unsigned long long)(r->too_many + r->unusable), (unsigned long long)r->too_many,
                 GW_RESTORE_MAX, (unsigned long long)r->unusable);
    }
    if (r->n == 0) {
        gw__restore_free(r);
        return 0;
    }
    /* A replay says nothing on stderr but its summary (and nothing at all with -q). */
    gw_log(p->opts.inline_decode ? GW_LOG_DEBUG : GW_LOG_INFO, "restore",
           "%zu alerts raised by earlier runs: %zu go on in their rules, %zu are cleared at "
           "start (their rule is gone or changed)",
           r->n, r->n - r->n_cleared, r->n_cleared);
    p->restore = r;
    return 0;
}

void gw__restore_free(gw_restore *r) {
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i].payload);
        free(r->items[i].gone);
    }
    free(r->items);
    free(r);
}

int gw__restore_part(const gw_restore_item *it, void *state) {
    const an_alert *a = &it->a;
    switch (a->kind) {
    case AN_KIND_HIGH:
    case AN_KIND_LOW:
        return an_threshold_restore(state, a->kind);
    case AN_KIND_RATE:
        return an_rate_restore(state, a->ts_ms, a->value);
    case AN_KIND_STALE: {
        /* The raise came `detail` ms after the last reading. */
        double silence = a->detail >= 0.0 && a->detail < 1e15 ? a->detail : 0.0;
        return an_stale_restore(state, a->ts_ms - (int64_t)silence, a->value);
    }
    case AN_KIND_TREND:
        an_trend_restore(state);
        return 0;
    case AN_KIND_DRIFT: {
        double shift = isfinite(a->detail) ? a->detail : a->value - a->threshold;
        return an_drift_restore(state, a->threshold, shift) == 0 ? 0 : -EINVAL;
    }
    case AN_KIND_ANOMALY:
        an_anomaly_restore(state, a->ts_ms, a->value);
        return 0;
    default:
        return -EINVAL;
    }
}

void gw__restore_writer_start(struct writer *w) {
    gw_pipeline *p = w->p;
    const gw_restore *r = p->restore;
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        const gw_restore_item *it = &r->items[i];
        if (it->why != GW_WHY_RULE || it->payload == NULL) {
            continue;
        }
        gw_alert_ev ev = {it->a, it->rule, it->series, GW_WHY_RULE};
        gw_pub_item raised = {.payload = it->payload, .payload_len = strlen(it->payload)};
        writer__active_update(w, &ev, &raised);
    }
    /* In a replay the capture is the clock: the clear takes the raise's time, so that the
     * file left behind does not depend on when the replay ran. */
    int64_t now = p->opts.inline_decode ? INT64_MIN : gw_now_ms();
    gw_batch *b = NULL;
    for (size_t i = 0; i < r->n; i++) {
        const gw_restore_item *it = &r->items[i];
        if (it->why == GW_WHY_RULE) {
            continue;
        }
        if (b == NULL && (b = gw__batch_new()) == NULL) {
            GW_ERROR("restore", "out of memory: alerts of removed rules stay active");
            return;
        }
        an_alert a = it->a;
        a.state = AN_STATE_CLEARED;
        a.ts_ms = now > a.ts_ms ? now : a.ts_ms;
        a.detail = NAN;
        b->alerts[b->n_alerts++] = (gw_alert_ev){a, it->rule, it->series, it->why};
        if (b->n_alerts == GW_BATCH_ALERTS) {
            writer__store_batch(w, b);
            b->n_alerts = 0;
        }
    }
    if (b != NULL && b->n_alerts > 0) {
        writer__store_batch(w, b);
    }
    free(b);
    if (w->fault == GW_SF_OK && w->in_txn) {
        (void)writer__commit(w);
    }
}

char *gw__restore_message(const gw_alert_ev *ev, const char *sensor, const char *metric, char *buf,
                          size_t len) {
    const char *rule = ev->rule->name;
    const char *kind = an_kind_name(ev->a.kind);
    const char *when = (ev->why & GW_WHY_RELOAD) ? "on reload" : "at start";
    switch (ev->why & ~GW_WHY_RELOAD) {
    case GW_WHY_NO_MATCH:
        snprintf(buf, len,
                 "%s alert on %s of %s cleared %s: rule %s no longer applies to this series", kind,
                 metric, sensor, when, rule);
        break;
    case GW_WHY_PART_OFF:
        snprintf(buf, len,
                 "%s alert on %s of %s cleared %s: rule %s no longer checks for %s alerts", kind,
                 metric, sensor, when, rule, kind);
        break;
    default:
        snprintf(buf, len,
                 "%s alert on %s of %s cleared %s: rule %s is no longer in the configuration", kind,
                 metric, sensor, when, rule);
        break;
    }
    return buf;
}
