/* Retention in the writer: scheduling, clock, stats and logging around storage/st_retain. See
 * retain.h. */
#include "retain.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "st_retain.h"

struct gw_retain {
    gw_pipeline *p;
    st_retain *r;
    bool replay;           /* stream time, else the wall clock */
    bool seen;             /* replay: a reading was seen */
    int64_t stream_min;    /* replay: the smallest reading ts seen */
    int64_t stream_max;    /* replay: the largest reading ts seen */
    bool scheduled;        /* next_pass is set */
    int64_t next_pass;     /* pipeline clock, epoch ms */
    int64_t pass_now;      /* the clock when the pass under way started */
    int64_t pass_mono;     /* monotonic ms at its start */
    int64_t pass_busy_ms;  /* time spent in its steps */
    int64_t pass_worst_ms; /* its longest step */
    int64_t last_step;     /* monotonic ms after the last step */
    st_retain_counts pass; /* what the pass under way did */
};

gw_retain *gw__retain_new(gw_pipeline *p) {
    const gw_config *c = p->cfg;
    if (!c->retention.enabled) {
        return NULL;
    }
    st_retain_cfg rc = {
        .raw_ms = c->retention.raw_ms,
        .downsample_ms = c->retention.downsample_ms,
        .n_windows = c->retention.n_summaries,
        .other_summaries_ms = c->retention.other_summaries_ms,
        .predictions_ms = c->retention.predictions_ms,
        .alerts_ms = c->retention.alerts_ms,
        .batch_rows = c->retention.batch_rows,
    };
    for (size_t i = 0; i < c->retention.n_summaries && i < ST_RETAIN_MAX_WINDOWS; i++) {
        rc.windows[i] = (st_retain_window){c->retention.summaries[i].window_ms,
                                           c->retention.summaries[i].keep_ms,
                                           c->retention.summaries[i].into_ms};
    }
    gw_retain *rt = calloc(1, sizeof(*rt));
    char err[512] = "";
    if (rt == NULL || st_retain_new(&rt->r, p->db, &rc, err, sizeof(err)) != 0) {
        GW_ERROR("retention", "disabled: %s", rt == NULL ? "out of memory" : err);
        free(rt);
        return NULL;
    }
    rt->p = p;
    rt->replay = p->opts.inline_decode;
    return rt;
}

void gw__retain_observe(gw_retain *rt, const gw_batch *b) {
    if (rt == NULL || !rt->replay) {
        return;
    }
    for (uint32_t i = 0; i < b->n_readings; i++) {
        int64_t ts = b->readings[i].ts_ms;
        if (!rt->seen) {
            rt->stream_min = rt->stream_max = ts;
            rt->seen = true;
        }
        rt->stream_min = ts < rt->stream_min ? ts : rt->stream_min;
        rt->stream_max = ts > rt->stream_max ? ts : rt->stream_max;
    }
}

bool gw__retain_busy(const gw_retain *rt) {
    return rt != NULL && st_retain_running(rt->r);
}

/* The pipeline's clock; false before a replay has seen its first reading. */
static bool clock_now(const gw_retain *rt, int64_t *now) {
    int64_t wall = gw_now_ms();
    if (!rt->replay) {
        *now = wall;
        return true;
    }
    *now = rt->stream_max < wall ? rt->stream_max : wall;
    return rt->seen;
}

/* INFO when the pass changed something, else DEBUG: an idle gateway would log an empty pass
 * every interval. */
static void log_pass(gw_retain *rt) {
    const st_retain_counts *c = &rt->pass;
    bool did = c->raw_deleted + c->summaries_deleted + c->predictions_deleted + c->alerts_deleted +
                   c->downsampled + c->rolled_up >
               0;
    gw_log(did ? GW_LOG_INFO : GW_LOG_DEBUG, "retention",
           "pass done: %llu raw readings, %llu summaries, %llu predictions, %llu alerts "
           "deleted; %llu summaries made from raw readings, %llu rolled up; %llu steps, %lld ms "
           "in steps (longest %lld ms), %lld ms in all",
           (unsigned long long)c->raw_deleted, (unsigned long long)c->summaries_deleted,
           (unsigned long long)c->predictions_deleted, (unsigned long long)c->alerts_deleted,
           (unsigned long long)c->downsampled, (unsigned long long)c->rolled_up,
           (unsigned long long)c->steps, (long long)rt->pass_busy_ms, (long long)rt->pass_worst_ms,
           (long long)(gw_mono_ms() - rt->pass_mono));
}

/* Runs one step of the pass under way, or of a new one at `now`; returns st_retain_step's. */
static int step(gw_retain *rt, int64_t now) {
    gw_pipeline *p = rt->p;
    int64_t t0 = gw_mono_ms();
    if (!st_retain_running(rt->r)) {
        memset(&rt->pass, 0, sizeof(rt->pass));
        rt->pass_now = now;
        rt->pass_mono = t0;
        rt->pass_busy_ms = rt->pass_worst_ms = 0;
    }
    st_retain_counts c = {0};
    int rc = st_retain_step(rt->r, rt->pass_now, &c);
    rt->last_step = gw_mono_ms();
    rt->pass_busy_ms += rt->last_step - t0;
    if (rt->last_step - t0 > rt->pass_worst_ms) {
        rt->pass_worst_ms = rt->last_step - t0;
    }
    rt->pass.raw_deleted += c.raw_deleted;
    rt->pass.summaries_deleted += c.summaries_deleted;
    rt->pass.predictions_deleted += c.predictions_deleted;
    rt->pass.alerts_deleted += c.alerts_deleted;
    rt->pass.downsampled += c.downsampled;
    rt->pass.rolled_up += c.rolled_up;
    rt->pass.steps += c.steps;
    atomic_fetch_add(&p->retention_deleted, c.raw_deleted + c.summaries_deleted +
                                                c.predictions_deleted + c.alerts_deleted);
    atomic_fetch_add(&p->retention_summaries, c.downsampled + c.rolled_up);
    if (rc == 0) {
        atomic_fetch_add(&p->retention_passes, 1);
        log_pass(rt);
    } else if (rc < 0) {
        gw_log_limited(&p->store_rl, GW_LOG_WARN, "retention",
                       "pass abandoned, the next one in retention.interval: %s",
                       st_retain_errmsg(rt->r));
    }
    return rc;
}

/* Whether a pass is due at `now`. The first one is due an interval after the start (run), or
 * once the capture's readings span an interval (replay): the span does not depend on the order
 * in which the workers' batches reach the writer, so gw__retain_end can tell whether any pass
 * may have run. */
static bool pass_due(gw_retain *rt, int64_t now) {
    const int64_t interval = rt->p->cfg->retention.interval_ms;
    if (rt->scheduled) {
        return now >= rt->next_pass;
    }
    if (rt->replay) {
        return now - rt->stream_min >= interval;
    }
    rt->next_pass = now + interval;
    rt->scheduled = true;
    return false;
}

void gw__retain_run(gw_retain *rt, bool idle) {
    if (rt == NULL) {
        return;
    }
    int64_t now = 0;
    if (!st_retain_running(rt->r)) {
        if (!clock_now(rt, &now) || !pass_due(rt, now)) {
            return;
        }
        rt->next_pass = now + rt->p->cfg->retention.interval_ms;
        rt->scheduled = true;
    } else if (!idle && gw_mono_ms() - rt->last_step < rt->p->cfg->storage.tick_ms) {
        return;
    }
    (void)step(rt, now);
}

void gw__retain_end(gw_retain *rt, bool finish) {
    if (rt == NULL) {
        return;
    }
    int64_t now;
    if (finish && rt->replay && clock_now(rt, &now) &&
        now - rt->stream_min >= rt->p->cfg->retention.interval_ms) {
        while (st_retain_running(rt->r) && step(rt, now) == 1) {
        }
        while (step(rt, now) == 1) {
        }
    }
    st_retain_free(rt->r);
    free(rt);
}
