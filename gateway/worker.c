/* Worker stage: owns the analytics state of the series whose hash % workers is its index.
 * No locks on the hot path: a series' wstate is touched by its worker only.
 *
 * Per series state, one allocation: a header, the window state (when windows are configured),
 * then one entry per matching rule holding only the parts the rule has (threshold, rate,
 * stale), so that a series costs what its rules need and no more. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "pipeline_internal.h"
#include "anomaly.h"
#include "drift.h"
#include "open_alerts.h"
#include "rate.h"
#include "restore.h"
#include "rule.h"
#include "stale.h"
#include "stale_preload.h"
#include "threshold.h"
#include "trend.h"

enum {
    PART_THRESHOLD = 1,
    PART_RATE = 2,
    PART_STALE = 4,
    PART_TREND = 8,
    PART_DRIFT = 16,
    PART_ANOMALY = 32,
    PART_LAST = PART_ANOMALY
};

typedef struct rule_entry {
    uint16_t rule;
    uint8_t parts;
    uint8_t carried; /* 1 when the last reload copied the state of an unchanged rule */
    uint16_t size;   /* bytes of this entry, parts included: entries follow each other */
} rule_entry;

typedef struct wstate {
    uint16_t n_rules;
    uint8_t tick_parts; /* parts that act on clock ticks: stale, trend (predictions), anomaly */
    uint8_t pad;
    uint32_t rules_off; /* offset of the first rule entry */
} wstate;

#define ALIGN8(n) (((n) + 7u) & ~(size_t)7u)

/* Series that no rule selects and no window summarises share this one. */
static wstate empty_state = {0};

void gw__worker_free_state(void *ws) {
    if (ws != &empty_state) {
        free(ws);
    }
}

static size_t part_size(uint8_t part) {
    switch (part) {
    case PART_THRESHOLD:
        return ALIGN8(sizeof(an_threshold_state));
    case PART_RATE:
        return ALIGN8(sizeof(an_rate_state));
    case PART_STALE:
        return ALIGN8(sizeof(an_stale_state));
    case PART_TREND:
        return ALIGN8(sizeof(an_trend_state));
    case PART_DRIFT:
        return ALIGN8(sizeof(an_drift_state));
    case PART_ANOMALY:
        return ALIGN8(sizeof(an_anomaly_state));
    default:
        return 0;
    }
}

static size_t entry_size(uint8_t parts) {
    size_t n = ALIGN8(sizeof(rule_entry));
    for (unsigned bit = 1; bit <= PART_LAST; bit <<= 1) {
        if (parts & bit) {
            n += part_size((uint8_t)bit);
        }
    }
    return n;
}

static uint8_t rule_parts(const an_rule *r) {
    uint8_t parts = 0;
    if (r->threshold.has_above || r->threshold.has_below) {
        parts |= PART_THRESHOLD;
    }
    if (r->has_rate) {
        parts |= PART_RATE;
    }
    if (r->has_stale) {
        parts |= PART_STALE;
    }
    if (r->has_trend) {
        parts |= PART_TREND;
    }
    if (r->has_drift) {
        parts |= PART_DRIFT;
    }
    if (r->has_anomaly) {
        parts |= PART_ANOMALY;
    }
    return parts;
}

/* The parts of an entry, in bit order; NULL when the entry has no such part. */
static void *entry_part(rule_entry *e, uint8_t part) {
    char *p = (char *)e + ALIGN8(sizeof(rule_entry));
    for (unsigned bit = 1; bit <= PART_LAST; bit <<= 1) {
        if (e->parts & bit) {
            if (bit == part) {
                return p;
            }
            p += part_size((uint8_t)bit);
        }
    }
    return NULL;
}

static an_window_state *window_of(wstate *w) {
    return (an_window_state *)((char *)w + ALIGN8(sizeof(wstate)));
}

static rule_entry *first_entry(wstate *w) {
    return (rule_entry *)((char *)w + w->rules_off);
}

static rule_entry *next_entry(rule_entry *e) {
    return (rule_entry *)((char *)e + e->size);
}

typedef struct worker {
    gw_pipeline *p;
    gw_batch *out;
    gw_series **owned; /* the series this worker has seen, for ticks */
    int64_t next_prediction_ms;
    size_t n_owned, cap_owned;
    bool replay;
    const gw_ruleset *rules; /* switched by RELOAD ticks */
    gw_open_alerts open;     /* alerts of these rules raised and not cleared, for reloads */
    uint64_t open_lost;      /* raises not recorded there (no memory) */
} worker;

/* The part whose state machine raises alerts of this kind. */
static uint8_t kind_part(an_kind kind) {
    switch (kind) {
    case AN_KIND_HIGH:
    case AN_KIND_LOW:
        return PART_THRESHOLD;
    case AN_KIND_RATE:
        return PART_RATE;
    case AN_KIND_STALE:
        return PART_STALE;
    case AN_KIND_TREND:
        return PART_TREND;
    case AN_KIND_DRIFT:
        return PART_DRIFT;
    case AN_KIND_ANOMALY:
        return PART_ANOMALY;
    default:
        return 0;
    }
}

static void init_part(rule_entry *e, uint8_t part) {
    void *st = entry_part(e, part);
    switch (st != NULL ? part : 0) {
    case PART_THRESHOLD:
        an_threshold_init(st);
        break;
    case PART_RATE:
        an_rate_init(st);
        break;
    case PART_STALE:
        an_stale_init(st);
        break;
    case PART_TREND:
        an_trend_init(st);
        break;
    case PART_DRIFT:
        an_drift_init(st);
        break;
    case PART_ANOMALY:
        an_anomaly_init(st);
        break;
    default:
        break;
    }
}

/* Records a transition of this worker's rules among its open alerts. Without memory the raise
 * is not recorded, counted, and logged once: a reload then leaves that alert as it is. */
static void note_open(worker *wk, uint32_t series, const an_alert *a) {
    if (gw_open_alerts_note(&wk->open, series, a) != 0 && wk->open_lost++ == 0) {
        GW_ERROR("worker", "out of memory: an open alert is not tracked; a reload (SIGHUP) will "
                           "leave it as it is (counted in the reload's log line)");
    }
}

/* The old entry of an unchanged rule, whose state a reload carries over; NULL if none. */
static rule_entry *same_rule(const gw_ruleset *old_rules, wstate *old, const an_rule *r) {
    if (old == NULL || old == &empty_state) {
        return NULL;
    }
    rule_entry *e = first_entry(old);
    for (uint16_t i = 0; i < old->n_rules; i++, e = next_entry(e)) {
        if (memcmp(&old_rules->rules[e->rule], r, sizeof(*r)) == 0) {
            return e;
        }
    }
    return NULL;
}

/* Builds a series' state for the worker's rule set. With `old` (a reload), the window state and
 * the state of every unchanged rule are carried over. Returns NULL without memory. */
static wstate *build_state(worker *wk, gw_series *s, const gw_ruleset *old_rules, wstate *old) {
    gw_pipeline *p = wk->p;
    const gw_ruleset *rs = wk->rules;
    size_t win_bytes = p->has_windows ? ALIGN8(an_window_state_size(&p->wcfg)) : 0;
    size_t rules_bytes = 0;
    uint16_t n_rules = 0;
    for (size_t i = 0; i < rs->n; i++) {
        if (an_rule_matches(&rs->rules[i], s->sensor, s->metric)) {
            rules_bytes += entry_size(rule_parts(&rs->rules[i]));
            n_rules++;
        }
    }
    if (n_rules == 0 && win_bytes == 0) {
        return &empty_state;
    }
    size_t head = ALIGN8(sizeof(wstate));
    wstate *w = calloc(1, head + win_bytes + rules_bytes);
    if (w == NULL) {
        return NULL;
    }
    w->n_rules = n_rules;
    w->rules_off = (uint32_t)(head + win_bytes);
    if (win_bytes > 0) {
        if (old != NULL && old != &empty_state) {
            memcpy(window_of(w), window_of(old), win_bytes);
        } else {
            an_window_init(&p->wcfg, window_of(w));
        }
    }
    rule_entry *e = first_entry(w);
    for (size_t i = 0; i < rs->n; i++) {
        const an_rule *r = &rs->rules[i];
        if (!an_rule_matches(r, s->sensor, s->metric)) {
            continue;
        }
        e->rule = (uint16_t)i;
        e->parts = rule_parts(r);
        e->size = (uint16_t)entry_size(e->parts);
        rule_entry *was = same_rule(old_rules, old, r);
        e->carried = was != NULL;
        if (was != NULL) {
            memcpy((char *)e + ALIGN8(sizeof(rule_entry)), (char *)was + ALIGN8(sizeof(rule_entry)),
                   e->size - ALIGN8(sizeof(rule_entry)));
        } else {
            for (unsigned bit = 1; bit <= PART_LAST; bit <<= 1) {
                if (e->parts & bit) {
                    init_part(e, (uint8_t)bit);
                }
            }
        }
        w->tick_parts |= e->parts & (PART_STALE | PART_TREND | PART_ANOMALY);
        e = next_entry(e);
    }
    return w;
}

static wstate *state_for(worker *wk, gw_series *s) {
    if (s->wstate != NULL) {
        return s->wstate;
    }
    if (wk->n_owned == wk->cap_owned) {
        size_t cap = wk->cap_owned ? wk->cap_owned * 2 : 256;
        gw_series **owned = realloc(wk->owned, cap * sizeof(*owned));
        if (owned == NULL) {
            goto oom;
        }
        wk->owned = owned;
        wk->cap_owned = cap;
    }
    wstate *w = build_state(wk, s, NULL, NULL);
    if (w == NULL) {
        goto oom;
    }
    s->wstate = w;
    if (w != &empty_state) {
        wk->owned[wk->n_owned++] = s;
    }
    return w;

oom:
    /* Without memory the series gets no analytics; its readings are still stored. */
    GW_ERROR("worker", "out of memory: no rules or windows for %s/%s", s->sensor, s->metric);
    s->wstate = &empty_state;
    return s->wstate;
}

/* At start, before the first reading: the alerts earlier runs left raised on this worker's
 * series go on in the state of their rule part (restore.h). */
static void restore_states(worker *wk, int index) {
    gw_pipeline *p = wk->p;
    const gw_restore *r = p->restore;
    for (size_t i = 0; r != NULL && i < r->n; i++) {
        const gw_restore_item *it = &r->items[i];
        gw_series *s = gw_series_get(p->series, it->series);
        if (it->why != GW_WHY_RULE || (int)(s->hash % (uint32_t)p->n_workers) != index) {
            continue;
        }
        wstate *w = state_for(wk, s);
        void *part = NULL;
        rule_entry *e = w != &empty_state ? first_entry(w) : NULL;
        for (uint16_t k = 0; e != NULL && k < w->n_rules; k++, e = next_entry(e)) {
            if (&wk->rules->rules[e->rule] == it->rule) {
                part = entry_part(e, kind_part(it->a.kind));
                break;
            }
        }
        if (part == NULL || gw__restore_part(it, part) != 0) {
            GW_ERROR("worker", "%s alert %lld of %s/%s (rule %s) not taken over: it stays active",
                     an_kind_name(it->a.kind), (long long)it->id, s->sensor, s->metric,
                     it->rule->name);
        } else {
            note_open(wk, s->id, &it->a);
        }
    }
}

/* At start, after restore_states: the stale parts of the series that sent readings recently
 * start as if their newest stored reading had just been seen (stale_preload.h). Only the stale
 * part: no other part or window sees a reading. A part restored raised is left as it is. */
static void preload_stale(worker *wk, int index) {
    gw_pipeline *p = wk->p;
    const gw_stale_preload *sp = p->stale_preload;
    for (size_t i = 0; sp != NULL && i < sp->n; i++) {
        const gw_stale_seed *it = &sp->items[i];
        gw_series *s = gw_series_get(p->series, it->series);
        if ((int)(s->hash % (uint32_t)p->n_workers) != index) {
            continue;
        }
        wstate *w = state_for(wk, s);
        rule_entry *e = w != &empty_state ? first_entry(w) : NULL;
        for (uint16_t k = 0; e != NULL && k < w->n_rules; k++, e = next_entry(e)) {
            an_stale_state *st = (e->parts & PART_STALE) ? entry_part(e, PART_STALE) : NULL;
            if (st == NULL || st->seen) {
                continue;
            }
            /* On a state never seen, seen() records the time and value and emits nothing. */
            an_alert ev[2];
            (void)an_stale_seen(&wk->rules->rules[e->rule].stale, st, e->rule, it->last_seen_ms,
                                it->value, ev, 2);
        }
    }
}

static void flush_out(worker *wk) {
    gw_batch *b = wk->out;
    if (b == NULL ||
        (b->n_readings == 0 && b->n_alerts == 0 && b->n_summaries == 0 && b->n_preds == 0)) {
        return;
    }
    /* Blocks while the writer is behind: the backpressure reaches decode and ingest. */
    /* The writer commits on its own tick; only alerts are worth waking it for. */
    if (gw_queue_push_lazy(wk->p->writer_q, b, sizeof(*b), -1, b->n_alerts > 0) == 0) {
        wk->out = NULL;
    } else {
        b->n_readings = b->n_alerts = b->n_summaries = b->n_preds = 0;
    }
}

/* The output batch, with room for one reading, `alerts` alerts and one summary. */
static gw_batch *out_batch(worker *wk, uint32_t alerts) {
    gw_batch *b = wk->out;
    if (b != NULL &&
        (b->n_readings == GW_BATCH_READINGS || b->n_alerts + alerts > GW_BATCH_ALERTS ||
         b->n_summaries == GW_BATCH_SUMMARIES)) {
        flush_out(wk);
    }
    if (wk->out == NULL) {
        wk->out = gw__batch_new();
    }
    return wk->out;
}

static void emit_alerts(worker *wk, uint32_t series, const an_alert *ev, int n) {
    if (n <= 0) {
        return;
    }
    for (int k = 0; k < n; k++) {
        note_open(wk, series, &ev[k]);
    }
    gw_batch *b = out_batch(wk, (uint32_t)n);
    if (b == NULL) {
        GW_ERROR("worker", "out of memory: %d alert transitions lost", n);
        return;
    }
    for (int k = 0; k < n; k++) {
        b->alerts[b->n_alerts++] = (gw_alert_ev){ev[k], &wk->rules->rules[ev[k].rule], series};
    }
}

/* ---- reload (SIGHUP) ---- */

typedef struct carry_counts {
    size_t carried; /* open alerts of changed rules that go on in the new rule */
    size_t cleared; /* cleared on reload: the rule is gone, or no longer covers them */
    size_t failed;  /* left as they are (logged one by one) */
} carry_counts;

/* The entry of rule index `rule` in a series' state, NULL if none. */
static rule_entry *entry_of(wstate *w, int rule) {
    rule_entry *e = first_entry(w);
    for (uint16_t i = 0; i < w->n_rules; i++, e = next_entry(e)) {
        if (e->rule == rule) {
            return e;
        }
    }
    return NULL;
}

/* The entry of the new state that carries the state of an unchanged old rule, NULL if none. */
static rule_entry *carried_from(const gw_ruleset *rs, wstate *nw, const an_rule *old_rule) {
    rule_entry *e = first_entry(nw);
    for (uint16_t i = 0; i < nw->n_rules; i++, e = next_entry(e)) {
        if (e->carried && memcmp(&rs->rules[e->rule], old_rule, sizeof(*old_rule)) == 0) {
            return e;
        }
    }
    return NULL;
}

/* Puts an open alert of a changed rule into the part of the new rule's entry ne that checks
 * its kind: the state a restart would give it (gw__restore_part), except that the rate and
 * stale parts take the previous reading from the old rule's part (oe), which is newer than
 * the raise. Returns 0 or -EINVAL. */
static int restore_into(rule_entry *ne, rule_entry *oe, const gw_open_alert *o) {
    uint8_t pb = kind_part(o->a.kind);
    void *part = entry_part(ne, pb);
    if (part == NULL) {
        return -EINVAL;
    }
    /* An unchanged rule of the same name (two rules with one name): the setters start from a
     * fresh state. The threshold setter touches only its side, the other one may be raised. */
    if (ne->carried && pb != PART_THRESHOLD) {
        init_part(ne, pb);
    }
    const an_rate_state *rate = pb == PART_RATE ? entry_part(oe, PART_RATE) : NULL;
    const an_stale_state *stale = pb == PART_STALE ? entry_part(oe, PART_STALE) : NULL;
    if (rate != NULL && rate->primed) {
        return an_rate_restore(part, rate->last_ts_ms, rate->last_value);
    }
    if (stale != NULL && stale->seen) {
        return an_stale_restore(part, stale->last_seen_ms, stale->last_value);
    }
    gw_restore_item it = {.a = o->a};
    return gw__restore_part(&it, part);
}

/* An open alert whose rule changed: it goes on in the rule of the same name that still covers
 * the series and its kind, or it is cleared as at a start (restore.h), saying "on reload". */
static void carry_changed(worker *wk, gw_series *s, const an_rule *old_rule, rule_entry *oe,
                          wstate *nw, gw_open_alert *o, carry_counts *c) {
    int j = -1;
    uint8_t why = gw__restore_find_rule(wk->rules, old_rule->name, s, o->a.kind, &j);
    if (why == GW_WHY_RULE) {
        rule_entry *ne = entry_of(nw, j);
        if (gw_open_alerts_find(&wk->open, s->id, j, o->a.kind) != NULL) {
            /* Another rule of that name keeps one open: v_active_alerts has one row for both. */
            c->carried++;
            return;
        }
        if (ne == NULL || restore_into(ne, oe, o) != 0) {
            GW_ERROR("worker",
                     "%s alert of %s/%s (rule %s) not taken over by the reloaded rule: "
                     "it stays active",
                     an_kind_name(o->a.kind), s->sensor, s->metric, old_rule->name);
            c->failed++;
            return;
        }
        o->a.rule = j;
        note_open(wk, s->id, &o->a);
        c->carried++;
        return;
    }
    an_alert a = o->a;
    a.state = AN_STATE_CLEARED;
    /* As at start: the figures of the raise; in a replay its time, the capture being the clock. */
    int64_t now = wk->replay ? INT64_MIN : gw_now_ms();
    a.ts_ms = now > a.ts_ms ? now : a.ts_ms;
    a.detail = NAN;
    gw_batch *b = out_batch(wk, 1);
    if (b == NULL) {
        GW_ERROR("worker", "out of memory: %s alert of %s/%s (rule %s) not cleared on reload",
                 an_kind_name(a.kind), s->sensor, s->metric, old_rule->name);
        c->failed++;
        return;
    }
    b->alerts[b->n_alerts++] = (gw_alert_ev){a, old_rule, s->id, (uint8_t)(why | GW_WHY_RELOAD)};
    c->cleared++;
}

/* The open alerts of one series' old state (old, rules old_rules), taken out of `was`, into the
 * new state nw. Unchanged rules first, so that their alerts keep their place when a changed
 * rule has the same name. */
static void carry_alerts(worker *wk, gw_series *s, const gw_ruleset *old_rules, wstate *old,
                         wstate *nw, gw_open_alerts *was, carry_counts *c) {
    if (old == NULL || old == &empty_state || was->n == 0) {
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        rule_entry *oe = first_entry(old);
        for (uint16_t i = 0; i < old->n_rules; i++, oe = next_entry(oe)) {
            const an_rule *old_rule = &old_rules->rules[oe->rule];
            rule_entry *same = NULL;
            bool same_known = false;
            for (int k = 0; k < AN_KIND_COUNT; k++) {
                const gw_open_alert *found =
                    (oe->parts & kind_part((an_kind)k))
                        ? gw_open_alerts_find(was, s->id, oe->rule, (an_kind)k)
                        : NULL;
                if (found == NULL) {
                    continue;
                }
                /* Rules are compared only for entries with an open alert. */
                if (!same_known) {
                    same = carried_from(wk->rules, nw, old_rule);
                    same_known = true;
                }
                if ((pass == 0) != (same != NULL)) {
                    break;
                }
                gw_open_alert o = *found;
                (void)gw_open_alerts_remove(was, s->id, oe->rule, (an_kind)k);
                if (same != NULL) {
                    o.a.rule = same->rule;
                    note_open(wk, s->id, &o.a);
                } else {
                    carry_changed(wk, s, old_rule, oe, nw, &o, c);
                }
            }
        }
    }
}

/* SIGHUP: switch to a new rule set. Unchanged rules keep their state; open alerts of changed
 * or removed rules go on in the new rule or are cleared (carry_alerts). Series of this worker
 * that no rule selected may match now: they get their state on their next reading. */
static void reload(worker *wk, int index, const gw_ruleset *rs) {
    gw_pipeline *p = wk->p;
    const gw_ruleset *old_rules = wk->rules;
    wk->rules = rs;
    size_t count = gw_series_count(p->series);
    for (size_t id = 0; id < count; id++) {
        gw_series *s = gw_series_get(p->series, (uint32_t)id);
        if ((int)(s->hash % (uint32_t)p->n_workers) == index && s->wstate == &empty_state) {
            s->wstate = NULL;
        }
    }
    gw_open_alerts was = wk->open;
    wk->open = (gw_open_alerts){0};
    carry_counts c = {0};
    size_t kept = 0;
    for (size_t i = 0; i < wk->n_owned; i++) {
        gw_series *s = wk->owned[i];
        wstate *nw = build_state(wk, s, old_rules, s->wstate);
        if (nw == NULL) {
            GW_ERROR("worker", "out of memory: %s/%s keeps no analytics after the reload",
                     s->sensor, s->metric);
            nw = &empty_state;
        }
        carry_alerts(wk, s, old_rules, s->wstate, nw, &was, &c);
        gw__worker_free_state(s->wstate);
        s->wstate = nw;
        if (nw != &empty_state) {
            wk->owned[kept++] = s;
        }
    }
    wk->n_owned = kept;
    c.failed += was.n;
    gw_open_alerts_free(&was);
    if (c.carried > 0 || c.cleared > 0) {
        GW_INFO("worker",
                "reload: %zu open alerts of changed rules go on in the new rules, %zu cleared "
                "(their rule is gone or no longer covers them)",
                c.carried, c.cleared);
    }
    if (c.failed > 0 || wk->open_lost > 0) {
        GW_ERROR("worker",
                 "reload: %zu open alerts left as they were, %llu never tracked (no memory): "
                 "they stay in v_active_alerts until their rule raises and clears again",
                 c.failed, (unsigned long long)wk->open_lost);
    }
}

typedef struct emit_ctx {
    worker *wk;
    uint32_t series;
} emit_ctx;

static void emit_summary(void *ctx, const an_window_summary *sum) {
    emit_ctx *ec = ctx;
    gw_batch *b = out_batch(ec->wk, 0);
    if (b == NULL) {
        atomic_fetch_add(&ec->wk->p->summaries_failed, 1);
        GW_ERROR("worker", "out of memory: a window summary lost");
        return;
    }
    b->summaries[b->n_summaries++] = (gw_summary_ev){*sum, ec->series};
}

static void process(worker *wk, const an_reading *in) {
    gw_pipeline *p = wk->p;
    an_reading rd = *in;
    const an_reading *r = &rd;
    /* A redelivery the rules have seen already goes to the storage only (which skips it
     * when it is a copy): fed to the rules again, out of order, it could raise again. */
    bool seen = (rd.series & GW_READING_SEEN) != 0;
    rd.series &= ~GW_READING_SEEN;
    gw_series *s = gw_series_get(p->series, r->series);
    wstate *w = state_for(wk, s);
    gw_batch *b = out_batch(wk, 0);
    if (b == NULL) {
        atomic_fetch_add(&p->rows_failed, 1);
        GW_ERROR("worker", "out of memory: reading of %s/%s lost", s->sensor, s->metric);
        return;
    }
    an_reading *out = &b->readings[b->n_readings++];
    *out = *r;
    if (w == &empty_state || seen) {
        return;
    }
    if (p->has_windows) {
        emit_ctx ec = {wk, r->series};
        int rc = an_window_add(&p->wcfg, window_of(w), r->ts_ms, r->value, emit_summary, &ec);
        if (rc > 0) {
            /* Late for at least one size: stored raw (above), counted, not summarised. */
            atomic_fetch_add_explicit(&p->late_readings, 1, memory_order_relaxed);
        }
    }
    /* Silence is measured on the gateway's clock when live and on event time in a replay. */
    int64_t seen_ms = wk->replay ? r->ts_ms : gw_now_ms();
    rule_entry *e = first_entry(w);
    for (uint16_t i = 0; i < w->n_rules; i++, e = next_entry(e)) {
        const an_rule *rule = &wk->rules->rules[e->rule];
        an_alert ev[2];
        if (e->parts & PART_THRESHOLD) {
            emit_alerts(wk, r->series, ev,
                        an_threshold_update(&rule->threshold, entry_part(e, PART_THRESHOLD),
                                            e->rule, r->ts_ms, r->value, ev, 2));
        }
        if (e->parts & PART_RATE) {
            emit_alerts(wk, r->series, ev,
                        an_rate_update(&rule->rate, entry_part(e, PART_RATE), e->rule, r->ts_ms,
                                       r->value, ev, 2));
        }
        if (e->parts & PART_STALE) {
            emit_alerts(wk, r->series, ev,
                        an_stale_seen(&rule->stale, entry_part(e, PART_STALE), e->rule, seen_ms,
                                      r->value, ev, 2));
        }
        if (e->parts & PART_TREND) {
            emit_alerts(wk, r->series, ev,
                        an_trend_update(&rule->trend, entry_part(e, PART_TREND), e->rule, r->ts_ms,
                                        r->value, ev, 2));
        }
        if (e->parts & PART_DRIFT) {
            emit_alerts(wk, r->series, ev,
                        an_drift_update(&rule->drift, entry_part(e, PART_DRIFT), e->rule, r->ts_ms,
                                        r->value, ev, 2));
        }
        if (e->parts & PART_ANOMALY) {
            an_anomaly_state *as = entry_part(e, PART_ANOMALY);
            emit_alerts(wk, r->series, ev,
                        an_anomaly_update(&rule->anomaly, as, e->rule, r->ts_ms, r->value, ev, 2));
            /* The reading is stored with its score; with several anomaly rules, the highest. */
            float score = (float)an_anomaly_score(as);
            if (isnan(out->score) || score > out->score) {
                out->score = score;
            }
        }
    }
}

static void predict(worker *wk, gw_series *s, rule_entry *e, int64_t now) {
    const an_rule *rule = &wk->rules->rules[e->rule];
    an_trend_pred pred;
    if (an_trend_predict(&rule->trend, entry_part(e, PART_TREND), &pred) != 0 || !pred.valid) {
        return;
    }
    gw_batch *b = out_batch(wk, 0);
    if (b == NULL) {
        return;
    }
    b->preds[b->n_preds++] = (gw_pred_ev){pred, now, s->id};
}

static void tick(worker *wk, gw_tick kind, int64_t now) {
    gw_pipeline *p = wk->p;
    /* Predictions are stored every prediction interval, not every tick. */
    bool predict_now = now >= wk->next_prediction_ms || kind == GW_TICK_FLUSH;
    if (predict_now) {
        wk->next_prediction_ms = now + p->cfg->predictions.interval_ms;
    }
    for (size_t i = 0; i < wk->n_owned; i++) {
        gw_series *s = wk->owned[i];
        wstate *w = s->wstate;
        if (p->has_windows) {
            emit_ctx ec = {wk, s->id};
            an_window_idle(&p->wcfg, window_of(w), now, emit_summary, &ec);
            if (kind == GW_TICK_FLUSH) {
                an_window_flush(&p->wcfg, window_of(w), emit_summary, &ec);
            }
        }
        if (w->tick_parts == 0) {
            continue;
        }
        rule_entry *e = first_entry(w);
        for (uint16_t k = 0; k < w->n_rules; k++, e = next_entry(e)) {
            const an_rule *rule = &wk->rules->rules[e->rule];
            an_alert ev[2];
            if (e->parts & PART_STALE) {
                emit_alerts(
                    wk, s->id, ev,
                    an_stale_check(&rule->stale, entry_part(e, PART_STALE), e->rule, now, ev, 2));
            }
            if (e->parts & PART_ANOMALY) {
                emit_alerts(wk, s->id, ev,
                            an_anomaly_tick(&rule->anomaly, entry_part(e, PART_ANOMALY), e->rule,
                                            now, ev, 2));
            }
            if ((e->parts & PART_TREND) && predict_now) {
                predict(wk, s, e, now);
            }
        }
    }
}

void *gw__worker_main(void *arg) {
    gw_worker_arg *wa = arg;
    gw_pipeline *p = wa->p;
    gw_queue *in = p->work_q[wa->index];
    worker wk = {.p = p, .replay = p->opts.inline_decode, .rules = wa->rules};
    void *items[16];
    restore_states(&wk, wa->index);
    preload_stale(&wk, wa->index);
    for (;;) {
        size_t n = gw_queue_pop(in, items, NULL, 16, -1);
        if (n == 0) {
            break;
        }
        for (size_t i = 0; i < n; i++) {
            gw_batch *in_b = items[i];
            for (uint32_t k = 0; k < in_b->n_readings; k++) {
                process(&wk, &in_b->readings[k]);
            }
            if (in_b->tick == GW_TICK_RELOAD) {
                reload(&wk, wa->index, in_b->tick_rules);
            } else if (in_b->tick != GW_TICK_NONE) {
                tick(&wk, in_b->tick, in_b->tick_ms);
            }
            free(in_b);
        }
        flush_out(&wk);
    }
    flush_out(&wk);
    free(wk.out);
    free(wk.owned);
    gw_open_alerts_free(&wk.open);
    return NULL;
}
