/* Event-time window engine; see window.h for the exact semantics.
 *
 * Per size, the open windows live in a ring of `slots` windows indexed by their distance
 * `rel` (<= 0) from the newest window index j_hi = floor(watermark / H): window j_hi + rel
 * starts at hi_start + rel * H and sits in slot (hi_slot + rel) mod slots. Windows older than
 * the ring are closed by construction. lo_off says how many ring positions, counted down from
 * j_hi, are still open: the windows with rel <= -lo_off are closed (emitted or past their
 * time), which makes "closed" a prefix of the window indexes and the late test one
 * comparison. The ring moves only when a reading lands beyond j_hi, so the common case (the
 * reading falls in the newest window) costs two comparisons per size and no division. */
#include "window.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quantile.h"

/* One window's aggregates: 120 bytes. The count, min and max live in the quantile
 * estimator. */
typedef struct win_agg {
    an_quant qe;
    double mean; /* Welford running mean */
    double m2;   /* Welford sum of squared deviations */
    double first;
    double last;
    uint32_t first_off; /* ts - window start of `first` */
    uint32_t last_off;  /* ts - window start of `last` */
} win_agg;

_Static_assert(sizeof(win_agg) == 120, "window aggregate grew: update window.h");

/* The layout after wm, computed by an_window_cfg_prepare: int64_t hi_start[n], then
 * uint8_t hi_slot[n] and uint8_t lo_off[n], padding to 8, then the windows, size by size. */
struct an_window_state {
    int64_t wm; /* largest ts seen; INT64_MIN before the first reading */
    int64_t hi_start[];
};

typedef struct ring {
    int64_t *hi_start;
    uint8_t *hi_slot;
    uint8_t *lo_off;
    win_agg *win; /* the size's first slot */
    int slots;
} ring;

static ring ring_of(const an_window_cfg *cfg, an_window_state *st, int i) {
    int n = cfg->n_sizes;
    uint8_t *bytes = (uint8_t *)(st->hi_start + n);
    win_agg *all = (win_agg *)((char *)st + cfg->win_offset);
    return (ring){
        .hi_start = &st->hi_start[i],
        .hi_slot = &bytes[i],
        .lo_off = &bytes[n + i],
        .win = all + cfg->ring_first[i],
        .slots = cfg->slots[i],
    };
}

/* The window at rel (-slots < rel <= 0). */
static win_agg *slot_at(const ring *r, int64_t rel) {
    int64_t s = *r->hi_slot + rel;
    if (s < 0) {
        s += r->slots;
    }
    return &r->win[s];
}

static uint32_t win_count(const win_agg *w) {
    return an_quant_count(&w->qe);
}

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    if (a % b < 0) {
        q--;
    }
    return q;
}

/* Emits (when emit is set) and empties one window. */
static void emit_window(const an_window_cfg *cfg, int i, int64_t start, win_agg *w,
                        an_win_reason reason, an_window_emit_fn emit, void *ctx) {
    if (emit != NULL) {
        uint32_t c = win_count(w);
        an_window_summary s = {
            .size_index = i,
            .window_ms = cfg->size_ms[i],
            .hop_ms = cfg->hop[i],
            .start_ms = start,
            .end_ms = start + cfg->size_ms[i],
            .count = c,
            .min = an_quant_min(&w->qe),
            .max = an_quant_max(&w->qe),
            .mean = w->mean,
            .stddev = c > 1 ? sqrt(w->m2 / (double)(c - 1)) : 0.0,
            .first = w->first,
            .last = w->last,
            .first_ts_ms = start + w->first_off,
            .last_ts_ms = start + w->last_off,
            .p50 = an_quant_p50(&w->qe),
            .p95 = an_quant_p95(&w->qe),
            .reason = reason,
        };
        emit(ctx, &s);
    }
    an_quant_init(&w->qe);
}

/* Closes, oldest first, the ring windows of size i with end + lateness <= limit, and every
 * position before them. Returns the number emitted. */
static int close_upto(const an_window_cfg *cfg, an_window_state *st, int i, int64_t limit,
                      an_win_reason reason, an_window_emit_fn emit, void *ctx) {
    ring r = ring_of(cfg, st, i);
    int64_t h = cfg->hop[i];
    int64_t rel = 1 - (int64_t)*r.lo_off;
    int64_t start = *r.hi_start + rel * h;
    int emitted = 0;
    while (rel <= 0 && start <= limit - cfg->end_late[i]) {
        win_agg *w = slot_at(&r, rel);
        if (win_count(w) > 0) {
            emit_window(cfg, i, start, w, reason, emit, ctx);
            emitted++;
        }
        rel++;
        start += h;
    }
    *r.lo_off = (uint8_t)(1 - rel);
    return emitted;
}

/* Moves the ring of size i forward by d >= 1 windows for a reading at ts (the new
 * watermark). Windows leaving the ring are emitted first; they are only still open when the
 * lateness cap made the ring shorter than the watermark rule needs. */
static void advance(const an_window_cfg *cfg, an_window_state *st, int i, int64_t d, int64_t ts,
                    an_window_emit_fn emit, void *ctx) {
    ring r = ring_of(cfg, st, i);
    int64_t h = cfg->hop[i];
    int64_t pushed = d < r.slots ? d : r.slots;
    for (int64_t rel = 1 - r.slots; rel < 1 - r.slots + pushed; rel++) {
        win_agg *w = slot_at(&r, rel);
        if (win_count(w) > 0) {
            int64_t start = *r.hi_start + rel * h;
            an_win_reason why = start <= ts - cfg->end_late[i] ? AN_WIN_WATERMARK : AN_WIN_EVICTED;
            emit_window(cfg, i, start, w, why, emit, ctx);
        }
    }
    *r.hi_start += d * h;
    if (d >= r.slots) {
        *r.hi_slot = 0; /* every slot is empty: any origin will do */
    } else {
        int s = *r.hi_slot + (int)d;
        *r.hi_slot = (uint8_t)(s >= r.slots ? s - r.slots : s);
    }
    int64_t lo = *r.lo_off + d;
    *r.lo_off = (uint8_t)(lo < r.slots ? lo : r.slots);
}

/* Adds a reading to one open window. Returns 0, or -1 when the window is full. */
static int agg_add(win_agg *w, uint32_t off, double v) {
    uint32_t c = win_count(w);
    if (c == 0) {
        w->mean = v;
        w->m2 = 0.0;
        w->first = v;
        w->last = v;
        w->first_off = off;
        w->last_off = off;
    } else {
        if (c == UINT32_MAX) {
            return -1;
        }
        double delta = v - w->mean;
        w->mean += delta / (double)(c + 1);
        w->m2 += delta * (v - w->mean);
        /* On a tie the later arrival wins, for first as for last. */
        if (off <= w->first_off) {
            w->first = v;
            w->first_off = off;
        }
        if (off >= w->last_off) {
            w->last = v;
            w->last_off = off;
        }
    }
    an_quant_add(&w->qe, v);
    return 0;
}

int an_window_cfg_prepare(an_window_cfg *cfg) {
    if (cfg == NULL) {
        return -EINVAL;
    }
    cfg->prepared = 0;
    if (cfg->n_sizes < 1 || cfg->n_sizes > AN_WIN_MAX_SIZES) {
        return -EINVAL;
    }
    int64_t late = cfg->allowed_lateness_ms;
    if (late < 0 || late > AN_WIN_MAX_DELAY_MS || cfg->grace_ms < 0 ||
        cfg->grace_ms > AN_WIN_MAX_DELAY_MS) {
        return -EINVAL;
    }
    size_t total = 0;
    for (int i = 0; i < cfg->n_sizes; i++) {
        int64_t w = cfg->size_ms[i];
        int64_t h = cfg->hop_ms[i] == 0 ? w : cfg->hop_ms[i];
        if (w < 1 || w > AN_WIN_MAX_SIZE_MS || h < 1 || h > w || w % h != 0 ||
            w / h > AN_WIN_MAX_HOPS) {
            return -EINVAL;
        }
        int64_t extra = (late + h - 1) / h;
        if (extra > AN_WIN_MAX_LATE_SLOTS) {
            extra = AN_WIN_MAX_LATE_SLOTS;
        }
        cfg->hop[i] = h;
        cfg->end_late[i] = w + late;
        cfg->per_reading[i] = (uint8_t)(w / h);
        cfg->slots[i] = (uint8_t)(w / h + extra);
        cfg->ring_first[i] = (uint16_t)total;
        total += cfg->slots[i];
    }
    size_t n = (size_t)cfg->n_sizes;
    size_t bytes = sizeof(int64_t) + n * sizeof(int64_t) + 2 * n;
    cfg->win_offset = (bytes + 7) & ~(size_t)7;
    cfg->total_slots = total;
    cfg->state_bytes = cfg->win_offset + total * sizeof(win_agg);
    cfg->prepared = 1;
    return 0;
}

size_t an_window_state_size(const an_window_cfg *cfg) {
    return cfg != NULL && cfg->prepared ? cfg->state_bytes : 0;
}

size_t an_window_max_emits(const an_window_cfg *cfg) {
    return cfg != NULL && cfg->prepared ? cfg->total_slots : 0;
}

int an_window_init(const an_window_cfg *cfg, an_window_state *st) {
    if (cfg == NULL || !cfg->prepared || st == NULL) {
        return -EINVAL;
    }
    memset(st, 0, cfg->state_bytes);
    st->wm = INT64_MIN;
    return 0;
}

int an_window_new(const an_window_cfg *cfg, an_window_state **out) {
    if (cfg == NULL || !cfg->prepared || out == NULL) {
        return -EINVAL;
    }
    an_window_state *st = malloc(cfg->state_bytes);
    if (st == NULL) {
        return -ENOMEM;
    }
    an_window_init(cfg, st);
    *out = st;
    return 0;
}

void an_window_free(an_window_state *st) {
    free(st);
}

/* The first reading anchors every ring on its window; nothing is open yet. */
static void anchor(const an_window_cfg *cfg, an_window_state *st, int64_t ts) {
    for (int i = 0; i < cfg->n_sizes; i++) {
        ring r = ring_of(cfg, st, i);
        *r.hi_start = floor_div(ts, cfg->hop[i]) * cfg->hop[i];
        *r.hi_slot = 0;
        *r.lo_off = (uint8_t)r.slots;
    }
}

int an_window_add(const an_window_cfg *cfg, an_window_state *st, int64_t ts_ms, double value,
                  an_window_emit_fn emit, void *ctx) {
    if (cfg == NULL || !cfg->prepared || st == NULL || !isfinite(value) ||
        ts_ms < -AN_WIN_TS_LIMIT || ts_ms > AN_WIN_TS_LIMIT) {
        return -EINVAL;
    }
    if (st->wm == INT64_MIN) {
        anchor(cfg, st, ts_ms);
    }
    const int advances = ts_ms > st->wm;
    int late = 0;
    for (int i = 0; i < cfg->n_sizes; i++) {
        ring r = ring_of(cfg, st, i);
        int64_t h = cfg->hop[i];
        int64_t delta = 0;
        if ((uint64_t)(ts_ms - *r.hi_start) >= (uint64_t)h) {
            delta = floor_div(ts_ms - *r.hi_start, h);
            if (delta > 0) {
                advance(cfg, st, i, delta, ts_ms, emit, ctx);
                delta = 0;
            }
        }
        /* The watermark moves to ts: close what it reaches before the reading lands (the
         * reading's own windows end after ts, so they stay open). Inline test of the oldest
         * open position first. */
        if (advances && *r.lo_off > 0 &&
            *r.hi_start + (1 - (int64_t)*r.lo_off) * h <= ts_ms - cfg->end_late[i]) {
            close_upto(cfg, st, i, ts_ms, AN_WIN_WATERMARK, emit, ctx);
        }
        /* The reading's windows, newest first: rel = delta down to delta - W/H + 1. Closed
         * positions form a prefix, so the first closed one ends the loop. */
        int64_t rel_end = delta - cfg->per_reading[i];
        int64_t lo = *r.lo_off;
        for (int64_t rel = delta; rel > rel_end; rel--) {
            if (rel <= -lo) {
                late |= AN_WIN_LATE(i);
                break;
            }
            int64_t start = *r.hi_start + rel * h;
            if (agg_add(slot_at(&r, rel), (uint32_t)(ts_ms - start), value) != 0) {
                late |= AN_WIN_LATE(i);
            }
        }
    }
    if (advances) {
        st->wm = ts_ms;
    }
    return late;
}

int an_window_idle(const an_window_cfg *cfg, an_window_state *st, int64_t now_ms,
                   an_window_emit_fn emit, void *ctx) {
    if (cfg == NULL || !cfg->prepared || st == NULL || now_ms < -AN_WIN_TS_LIMIT ||
        now_ms > AN_WIN_TS_LIMIT) {
        return -EINVAL;
    }
    if (st->wm == INT64_MIN) {
        return 0;
    }
    int emitted = 0;
    for (int i = 0; i < cfg->n_sizes; i++) {
        emitted += close_upto(cfg, st, i, now_ms - cfg->grace_ms, AN_WIN_IDLE, emit, ctx);
    }
    return emitted;
}

int an_window_flush(const an_window_cfg *cfg, an_window_state *st, an_window_emit_fn emit,
                    void *ctx) {
    if (cfg == NULL || !cfg->prepared || st == NULL) {
        return -EINVAL;
    }
    if (st->wm == INT64_MIN) {
        return 0;
    }
    int emitted = 0;
    for (int i = 0; i < cfg->n_sizes; i++) {
        emitted += close_upto(cfg, st, i, INT64_MAX, AN_WIN_FLUSH, emit, ctx);
    }
    return emitted;
}

void an_window_prefetch(const an_window_cfg *cfg, const an_window_state *st) {
    if (cfg == NULL || !cfg->prepared || st == NULL) {
        return;
    }
    const char *p = (const char *)st;
    for (size_t off = 0; off < cfg->state_bytes; off += 64) {
        __builtin_prefetch(p + off, 1);
    }
}

int64_t an_window_watermark(const an_window_state *st) {
    return st == NULL ? INT64_MIN : st->wm;
}

size_t an_window_open_count(const an_window_cfg *cfg, const an_window_state *st) {
    if (cfg == NULL || !cfg->prepared || st == NULL) {
        return 0;
    }
    const win_agg *all = (const win_agg *)((const char *)st + cfg->win_offset);
    size_t n = 0;
    for (size_t k = 0; k < cfg->total_slots; k++) {
        n += win_count(&all[k]) > 0;
    }
    return n;
}
