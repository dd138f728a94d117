/* Worker stage: owns the analytics state of the series whose hash % workers is its index.
 * No locks on the hot path: a series' wstate is touched by its worker only. */
#include <stdlib.h>
#include <string.h>

#include "pipeline_internal.h"
#include "rule.h"
#include "threshold.h"

typedef struct rule_state {
    uint16_t rule;
    an_threshold_state th;
} rule_state;

typedef struct wstate {
    uint32_t n_rules;
    rule_state r[];
} wstate;

/* Series that no rule selects share this one, so that they cost no allocation. */
static wstate no_rules = {0};

void gw__worker_free_state(void *ws) {
    if (ws != &no_rules) {
        free(ws);
    }
}

static wstate *state_for(gw_pipeline *p, gw_series *s) {
    if (s->wstate != NULL) {
        return s->wstate;
    }
    const gw_config *cfg = p->cfg;
    uint32_t n = 0;
    for (size_t i = 0; i < cfg->n_rules; i++) {
        n += an_rule_matches(&cfg->rules[i], s->sensor, s->metric);
    }
    if (n == 0) {
        s->wstate = &no_rules;
        return s->wstate;
    }
    wstate *w = malloc(sizeof(*w) + n * sizeof(w->r[0]));
    if (w == NULL) {
        /* Without memory the series gets no analytics; its readings are still stored. */
        GW_ERROR("worker", "out of memory: no rules evaluated for %s/%s", s->sensor, s->metric);
        s->wstate = &no_rules;
        return s->wstate;
    }
    w->n_rules = 0;
    for (size_t i = 0; i < cfg->n_rules; i++) {
        if (an_rule_matches(&cfg->rules[i], s->sensor, s->metric)) {
            w->r[w->n_rules].rule = (uint16_t)i;
            an_threshold_init(&w->r[w->n_rules].th);
            w->n_rules++;
        }
    }
    s->wstate = w;
    return w;
}

typedef struct out_ctx {
    gw_pipeline *p;
    gw_batch *b;
} out_ctx;

static gw_batch *new_batch(void) {
    gw_batch *b = malloc(sizeof(*b));
    if (b != NULL) {
        b->n_readings = 0;
        b->n_alerts = 0;
    }
    return b;
}

static void flush_out(out_ctx *o) {
    if (o->b == NULL || (o->b->n_readings == 0 && o->b->n_alerts == 0)) {
        return;
    }
    /* Blocks while the writer is behind: the backpressure reaches decode and ingest. */
    if (gw_queue_push(o->p->writer_q, o->b, sizeof(*o->b), -1) == 0) {
        o->b = NULL;
    } else {
        o->b->n_readings = 0;
        o->b->n_alerts = 0;
    }
}

static gw_batch *out_batch(out_ctx *o, uint32_t need_alerts) {
    if (o->b != NULL &&
        (o->b->n_readings == GW_BATCH_READINGS || o->b->n_alerts + need_alerts > GW_BATCH_ALERTS)) {
        flush_out(o);
    }
    if (o->b == NULL) {
        o->b = new_batch();
    }
    return o->b;
}

static void process(out_ctx *o, const an_reading *r) {
    gw_pipeline *p = o->p;
    gw_series *s = gw_series_get(p->series, r->series);
    wstate *w = state_for(p, s);
    gw_batch *b = out_batch(o, 0);
    if (b == NULL) {
        atomic_fetch_add(&p->rows_failed, 1);
        GW_ERROR("worker", "out of memory: reading of %s/%s lost", s->sensor, s->metric);
        return;
    }
    b->readings[b->n_readings++] = *r;
    for (uint32_t i = 0; i < w->n_rules; i++) {
        rule_state *rs = &w->r[i];
        const an_rule *rule = &p->cfg->rules[rs->rule];
        an_alert ev[2];
        int n = an_threshold_update(&rule->threshold, &rs->th, rs->rule, r->ts_ms, r->value, ev, 2);
        if (n <= 0) {
            continue;
        }
        b = out_batch(o, (uint32_t)n);
        if (b == NULL) {
            GW_ERROR("worker", "out of memory: %d alert transitions of %s/%s lost", n, s->sensor,
                     s->metric);
            continue;
        }
        for (int k = 0; k < n; k++) {
            b->alerts[b->n_alerts++] = (gw_alert_ev){ev[k], r->series};
        }
    }
}

void *gw__worker_main(void *arg) {
    gw_worker_arg *wa = arg;
    gw_pipeline *p = wa->p;
    gw_queue *in = p->work_q[wa->index];
    out_ctx o = {p, NULL};
    void *items[16];
    for (;;) {
        size_t n = gw_queue_pop(in, items, NULL, 16, -1);
        if (n == 0) {
            break;
        }
        for (size_t i = 0; i < n; i++) {
            gw_batch *in_b = items[i];
            for (uint32_t k = 0; k < in_b->n_readings; k++) {
                process(&o, &in_b->readings[k]);
            }
            free(in_b);
        }
        flush_out(&o);
    }
    flush_out(&o);
    free(o.b);
    return NULL;
}
