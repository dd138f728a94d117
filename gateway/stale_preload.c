/* Silence across a restart; see stale_preload.h. */
#include "stale_preload.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"
#include "rule.h"
#include "st_recent.h"

int64_t gw__stale_preload_horizon(const gw_config *cfg) {
    if (cfg->retention.enabled && cfg->retention.raw_ms > 0) {
        return cfg->retention.raw_ms;
    }
    return GW_STALE_PRELOAD_HORIZON_MS;
}

static bool has_stale_rule(const gw_ruleset *rs) {
    for (size_t i = 0; i < rs->n; i++) {
        if (rs->rules[i].has_stale) {
            return true;
        }
    }
    return false;
}

static bool stale_covers(const gw_ruleset *rs, const char *sensor, const char *metric) {
    for (size_t i = 0; i < rs->n; i++) {
        if (rs->rules[i].has_stale && an_rule_matches(&rs->rules[i], sensor, metric)) {
            return true;
        }
    }
    return false;
}

typedef struct load_ctx {
    gw_pipeline *p;
    gw_stale_preload *sp;
    int64_t now_ms;
    size_t max;
} load_ctx;

static int grow(gw_stale_preload *sp, size_t max) {
    if (sp->n < sp->cap) {
        return 0;
    }
    size_t cap = sp->cap ? sp->cap * 2 : 64;
    if (cap > max) {
        cap = max;
    }
    gw_stale_seed *items = realloc(sp->items, cap * sizeof(*items));
    if (items == NULL) {
        return -ENOMEM;
    }
    sp->items = items;
    sp->cap = cap;
    return 0;
}

static int load_one(void *ctx, const st_recent_row *row) {
    load_ctx *lc = ctx;
    gw_stale_preload *sp = lc->sp;
    gw_series *s;
    if (row->sensor == NULL || row->metric == NULL ||
        !stale_covers(lc->p->rules, row->sensor, row->metric)) {
        return 0;
    }
    if (sp->n >= lc->max || grow(sp, lc->max) != 0) {
        sp->left_out++;
        return 0;
    }
    /* Before the threads start, this thread stands in for the decode stage (series.h); the
     * registry's limit is pipeline.max_series. */
    if (gw_series_intern(lc->p->series, row->sensor, row->metric, &s) != 0) {
        sp->left_out++;
        return 0;
    }
    /* A sensor clock ahead of the gateway's must not postpone the first check. */
    int64_t seen = row->ts_ms < lc->now_ms ? row->ts_ms : lc->now_ms;
    sp->items[sp->n++] = (gw_stale_seed){s->id, seen, row->value};
    return 0;
}

int gw__stale_preload_load(gw_pipeline *p) {
    if (p->opts.inline_decode || !has_stale_rule(p->rules)) {
        return 0;
    }
    if (p->db == NULL) {
        GW_WARN("stale", "database not open at start: series are watched for silence "
                         "(stale_after) only from their first reading after the start");
        return 0;
    }
    gw_stale_preload *sp = calloc(1, sizeof(*sp));
    if (sp == NULL) {
        GW_ERROR("stale", "out of memory: series are watched for silence (stale_after) only "
                          "from their first reading after the start");
        return -ENOMEM;
    }
    int64_t horizon = gw__stale_preload_horizon(p->cfg);
    load_ctx lc = {p, sp, gw_now_ms(), (size_t)p->cfg->pipeline.max_series};
    char err[256] = "";
    int rc = st_db_recent_series(p->db, lc.now_ms - horizon, load_one, &lc, err, sizeof(err));
    if (rc < 0) {
        GW_ERROR("stale",
                 "series are watched for silence (stale_after) only from their first "
                 "reading after the start: %s",
                 err);
        gw__stale_preload_free(sp);
        return rc;
    }
    if (sp->left_out > 0) {
        GW_ERROR("stale",
                 "%llu series with readings in the last %lld s not watched for silence from the "
                 "start (beyond pipeline.max_series = %d, or without memory): they are from "
                 "their next reading",
                 (unsigned long long)sp->left_out, (long long)(horizon / 1000),
                 p->cfg->pipeline.max_series);
    }
    if (sp->n == 0) {
        gw__stale_preload_free(sp);
        return 0;
    }
    GW_INFO("stale",
            "%zu series with readings in the last %lld s watched for silence from the start, "
            "from their newest stored reading",
            sp->n, (long long)(horizon / 1000));
    p->stale_preload = sp;
    return 0;
}

void gw__stale_preload_free(gw_stale_preload *sp) {
    if (sp == NULL) {
        return;
    }
    free(sp->items);
    free(sp);
}
