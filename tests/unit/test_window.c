/* Unit tests for analytics/window: hand-computed vectors for each rule of window.h, then a
 * differential test against a brute-force model that keeps every reading. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quantile.h"
#include "window.h"

#define assert_near(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

#define MAX_EMITS 4096

typedef struct coll {
    an_window_summary s[MAX_EMITS];
    int n;
} coll;

static void on_emit(void *ctx, const an_window_summary *s) {
    coll *c = ctx;
    assert_true(c->n < MAX_EMITS);
    c->s[c->n++] = *s;
}

typedef struct tw {
    an_window_cfg cfg;
    an_window_state *st;
    coll c;
} tw;

static tw *tw_new(int n, const int64_t *sizes, const int64_t *hops, int64_t late, int64_t grace) {
    tw *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->cfg.n_sizes = n;
    for (int i = 0; i < n; i++) {
        t->cfg.size_ms[i] = sizes[i];
        t->cfg.hop_ms[i] = hops != NULL ? hops[i] : 0;
    }
    t->cfg.allowed_lateness_ms = late;
    t->cfg.grace_ms = grace;
    assert_int_equal(an_window_cfg_prepare(&t->cfg), 0);
    assert_int_equal(an_window_new(&t->cfg, &t->st), 0);
    return t;
}

static tw *tw_one(int64_t size, int64_t late, int64_t grace) {
    return tw_new(1, &size, NULL, late, grace);
}

static void tw_free(tw *t) {
    an_window_free(t->st);
    free(t);
}

static int add(tw *t, int64_t ts, double v) {
    return an_window_add(&t->cfg, t->st, ts, v, on_emit, &t->c);
}

static int flush(tw *t) {
    return an_window_flush(&t->cfg, t->st, on_emit, &t->c);
}

static int idle(tw *t, int64_t now) {
    return an_window_idle(&t->cfg, t->st, now, on_emit, &t->c);
}

static void check_win(const an_window_summary *s, int size_index, int64_t start, int64_t end,
                      uint32_t count, an_win_reason reason) {
    assert_int_equal(s->size_index, size_index);
    assert_true(s->start_ms == start);
    assert_true(s->end_ms == end);
    assert_int_equal(s->count, count);
    assert_int_equal(s->reason, reason);
}

/* ---- configuration ---- */

static void test_cfg(void **state) {
    (void)state;
    an_window_cfg c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(an_window_cfg_prepare(&c), -EINVAL); /* no size */
    assert_int_equal(an_window_cfg_prepare(NULL), -EINVAL);
    c.n_sizes = 3;
    c.size_ms[0] = 60000;
    c.size_ms[1] = 900000;
    c.size_ms[2] = 3600000;
    assert_int_equal(an_window_cfg_prepare(&c), 0);
    /* 8 (watermark) + 3 * 8 (ring starts) + 8 (ring bytes) + 3 * 120 (windows). */
    assert_int_equal(an_window_state_size(&c), 400);
    assert_int_equal(an_window_max_emits(&c), 3);
    assert_int_equal(sizeof(an_quant), 80);

    an_window_cfg bad = c;
    bad.n_sizes = AN_WIN_MAX_SIZES + 1;
    assert_int_equal(an_window_cfg_prepare(&bad), -EINVAL);
    assert_int_equal(an_window_state_size(&bad), 0); /* unprepared */
    bad = c;
    bad.size_ms[1] = 0;
    assert_int_equal(an_window_cfg_prepare(&bad), -EINVAL);
    bad = c;
    bad.size_ms[1] = AN_WIN_MAX_SIZE_MS + 1;
    assert_int_equal(an_window_cfg_prepare(&bad), -EINVAL);
    bad = c;
    bad.hop_ms[0] = 7000; /* does not divide 60000 */
    assert_int_equal(an_window_cfg_prepare(&bad), -EINVAL);
    bad = c;
    bad.hop_ms[0] = 120000; /* longer than the window */
    assert_int_equal(an_window_cfg_prepare(&bad), -EINVAL);
    bad = c;
    bad.hop_ms[0] = 600; /* 100 hops per window */
    assert_int_equal(an_window_cfg_prepare(&bad), -EINVAL);
    bad = c;
    bad.hop_ms[0] = -1;
    assert_int_equal(an_window_cfg_prepare(&bad), -EINVAL);
    bad = c;
    bad.allowed_lateness_ms = -1;
    assert_int_equal(an_window_cfg_prepare(&bad), -EINVAL);
    bad = c;
    bad.grace_ms = AN_WIN_MAX_DELAY_MS + 1;
    assert_int_equal(an_window_cfg_prepare(&bad), -EINVAL);

    /* Slots: W/H + min(ceil(L/H), 3). */
    an_window_cfg h = c;
    h.hop_ms[0] = 15000;           /* 4 + ceil(20000 / 15000) = 6 */
    h.allowed_lateness_ms = 20000; /* sizes 2, 3: 1 + 1 */
    assert_int_equal(an_window_cfg_prepare(&h), 0);
    assert_int_equal(an_window_max_emits(&h), 6 + 2 + 2);
    h.allowed_lateness_ms = 10000000; /* capped: 4 + 3, 1 + 3, 1 + 3 */
    assert_int_equal(an_window_cfg_prepare(&h), 0);
    assert_int_equal(an_window_max_emits(&h), 7 + 4 + 4);
    assert_int_equal(an_window_state_size(&h), 40 + 15 * 120);
}

static void test_invalid_input(void **state) {
    (void)state;
    tw *t = tw_one(1000, 0, 0);
    assert_int_equal(add(t, 100, 1.0), AN_WIN_OK);
    size_t sz = an_window_state_size(&t->cfg);
    unsigned char *before = malloc(sz);
    assert_non_null(before);
    memcpy(before, t->st, sz);
    assert_int_equal(add(t, 200, NAN), -EINVAL);
    assert_int_equal(add(t, 200, INFINITY), -EINVAL);
    assert_int_equal(add(t, AN_WIN_TS_LIMIT + 1, 1.0), -EINVAL);
    assert_int_equal(add(t, -AN_WIN_TS_LIMIT - 1, 1.0), -EINVAL);
    assert_int_equal(add(t, INT64_MIN, 1.0), -EINVAL);
    assert_int_equal(an_window_add(&t->cfg, NULL, 1, 1.0, NULL, NULL), -EINVAL);
    assert_int_equal(an_window_add(NULL, t->st, 1, 1.0, NULL, NULL), -EINVAL);
    assert_int_equal(idle(t, INT64_MAX), -EINVAL);
    assert_memory_equal(before, t->st, sz);
    an_window_cfg raw;
    memset(&raw, 0, sizeof(raw));
    raw.n_sizes = 1;
    raw.size_ms[0] = 1000; /* not prepared */
    assert_int_equal(an_window_add(&raw, t->st, 1, 1.0, NULL, NULL), -EINVAL);
    assert_int_equal(an_window_init(&raw, t->st), -EINVAL);
    an_window_state *o = NULL;
    assert_int_equal(an_window_new(&raw, &o), -EINVAL);
    assert_null(o);
    assert_int_equal(t->c.n, 0);
    free(before);
    tw_free(t);
}

/* ---- aggregates ---- */

static void test_aggregates(void **state) {
    (void)state;
    tw *t = tw_one(60000, 0, 0);
    const double v[8] = {2, 4, 4, 4, 5, 5, 7, 9};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(add(t, 1000 * i, v[i]), AN_WIN_OK);
    }
    assert_int_equal(t->c.n, 0);
    assert_int_equal(an_window_open_count(&t->cfg, t->st), 1);
    assert_int_equal(add(t, 60000, 100.0), AN_WIN_OK);
    assert_int_equal(t->c.n, 1);
    const an_window_summary *s = &t->c.s[0];
    check_win(s, 0, 0, 60000, 8, AN_WIN_WATERMARK);
    assert_true(s->window_ms == 60000 && s->hop_ms == 60000);
    assert_true(s->min == 2.0);
    assert_true(s->max == 9.0);
    assert_near(s->mean, 5.0, 1e-12);
    /* Sum of squared deviations 32, n - 1 = 7. */
    assert_near(s->stddev, sqrt(32.0 / 7.0), 1e-12);
    assert_true(s->first == 2.0 && s->first_ts_ms == 0);
    assert_true(s->last == 9.0 && s->last_ts_ms == 7000);
    /* Sorted 2 4 4 4 5 5 7 9: p50 at rank 3.5 = 4.5; p95 at rank 6.65 = 7 + 0.65 * 2 = 8.3. */
    assert_near(s->p50, 4.5, 1e-12);
    assert_near(s->p95, 8.3, 1e-12);
    tw_free(t);
}

static void test_count_one(void **state) {
    (void)state;
    tw *t = tw_one(1000, 0, 0);
    assert_int_equal(add(t, 1500, -3.25), AN_WIN_OK);
    assert_int_equal(flush(t), 1);
    const an_window_summary *s = &t->c.s[0];
    check_win(s, 0, 1000, 2000, 1, AN_WIN_FLUSH);
    assert_true(s->stddev == 0.0);
    assert_true(s->min == -3.25 && s->max == -3.25 && s->mean == -3.25);
    assert_true(s->first == -3.25 && s->last == -3.25);
    assert_true(s->p50 == -3.25 && s->p95 == -3.25);
    assert_true(s->first_ts_ms == 1500 && s->last_ts_ms == 1500);
    tw_free(t);
}

/* Welford keeps the variance of large-offset data; the naive sum of squares would not. */
static void test_stddev_offset(void **state) {
    (void)state;
    tw *t = tw_one(1000000, 0, 0);
    const double base = 1e9;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(add(t, i, base + (i % 2 ? 1.0 : -1.0)), AN_WIN_OK);
    }
    assert_int_equal(flush(t), 1);
    /* 1000 values of +-1: variance 1000 / 999. */
    assert_near(t->c.s[0].stddev, sqrt(1000.0 / 999.0), 1e-9);
    assert_near(t->c.s[0].mean, base, 1e-6);
    tw_free(t);
}

static void test_first_last_ties(void **state) {
    (void)state;
    tw *t = tw_one(1000, 0, 0);
    assert_int_equal(add(t, 10, 1), AN_WIN_OK);
    assert_int_equal(add(t, 5, 2), AN_WIN_OK);
    assert_int_equal(add(t, 5, 3), AN_WIN_OK); /* tie at the smallest ts: later wins */
    assert_int_equal(add(t, 20, 4), AN_WIN_OK);
    assert_int_equal(add(t, 20, 5), AN_WIN_OK); /* tie at the largest ts: later wins */
    assert_int_equal(add(t, 7, 6), AN_WIN_OK);
    assert_int_equal(flush(t), 1);
    const an_window_summary *s = &t->c.s[0];
    assert_int_equal(s->count, 6);
    assert_true(s->first == 3.0 && s->first_ts_ms == 5);
    assert_true(s->last == 5.0 && s->last_ts_ms == 20);
    tw_free(t);

    /* All at one ts: the last arrival is both first and last. */
    t = tw_one(1000, 0, 0);
    assert_int_equal(add(t, 300, 1), AN_WIN_OK);
    assert_int_equal(add(t, 300, 2), AN_WIN_OK);
    assert_int_equal(add(t, 300, 3), AN_WIN_OK);
    assert_int_equal(flush(t), 1);
    assert_true(t->c.s[0].first == 3.0 && t->c.s[0].last == 3.0);
    tw_free(t);
}

/* ---- alignment and event time ---- */

static void test_alignment_negative(void **state) {
    (void)state;
    tw *t = tw_one(1000, 0, 0);
    assert_int_equal(add(t, -1001, 1), AN_WIN_OK); /* window -2: [-2000, -1000) */
    assert_int_equal(t->c.n, 0);
    assert_int_equal(add(t, -1000, 2), AN_WIN_OK); /* window -1 starts exactly here */
    assert_int_equal(t->c.n, 1);
    check_win(&t->c.s[0], 0, -2000, -1000, 1, AN_WIN_WATERMARK);
    assert_true(t->c.s[0].first == 1.0);
    assert_int_equal(add(t, -1, 3), AN_WIN_OK); /* still window -1 */
    assert_int_equal(t->c.n, 1);
    assert_int_equal(add(t, 0, 4), AN_WIN_OK); /* window 0 */
    assert_int_equal(t->c.n, 2);
    check_win(&t->c.s[1], 0, -1000, 0, 2, AN_WIN_WATERMARK);
    assert_true(t->c.s[1].first == 2.0 && t->c.s[1].last == 3.0);
    assert_int_equal(add(t, 999, 5), AN_WIN_OK);
    assert_int_equal(add(t, 1000, 6), AN_WIN_OK); /* k * W belongs to window k */
    assert_int_equal(t->c.n, 3);
    check_win(&t->c.s[2], 0, 0, 1000, 2, AN_WIN_WATERMARK);
    assert_int_equal(flush(t), 1);
    check_win(&t->c.s[3], 0, 1000, 2000, 1, AN_WIN_FLUSH);
    tw_free(t);

    /* Large negative timestamps and sizes that do not divide them evenly. */
    t = tw_one(3600000, 0, 0);
    assert_int_equal(add(t, -86400000LL * 365 - 1, 1), AN_WIN_OK);
    assert_int_equal(flush(t), 1);
    assert_true(t->c.s[0].start_ms == -86400000LL * 365 - 3600000);
    tw_free(t);
}

static void test_watermark_exact(void **state) {
    (void)state;
    tw *t = tw_one(1000, 0, 0);
    assert_int_equal(add(t, 100, 1), AN_WIN_OK);
    assert_int_equal(add(t, 999, 2), AN_WIN_OK);
    assert_int_equal(t->c.n, 0);
    assert_int_equal(add(t, 1000, 3), AN_WIN_OK);
    assert_int_equal(t->c.n, 1);
    tw_free(t);

    t = tw_one(1000, 500, 0);
    assert_int_equal(add(t, 100, 1), AN_WIN_OK);
    assert_int_equal(add(t, 1499, 2), AN_WIN_OK);
    assert_int_equal(t->c.n, 0);
    assert_int_equal(an_window_open_count(&t->cfg, t->st), 2);
    assert_int_equal(add(t, 1500, 3), AN_WIN_OK); /* end 1000 + lateness 500 */
    assert_int_equal(t->c.n, 1);
    check_win(&t->c.s[0], 0, 0, 1000, 1, AN_WIN_WATERMARK);
    assert_int_equal(an_window_watermark(t->st), 1500);
    tw_free(t);
}

static void test_lateness_out_of_order(void **state) {
    (void)state;
    tw *t = tw_one(1000, 500, 0);
    assert_int_equal(add(t, 100, 1), AN_WIN_OK);
    assert_int_equal(add(t, 1200, 2), AN_WIN_OK);
    assert_int_equal(add(t, 900, 3), AN_WIN_OK); /* window 0 still open until wm 1500 */
    assert_int_equal(add(t, 1100, 7), AN_WIN_OK);
    assert_int_equal(t->c.n, 0);
    assert_int_equal(add(t, 1500, 4), AN_WIN_OK);
    assert_int_equal(t->c.n, 1);
    const an_window_summary *s = &t->c.s[0];
    check_win(s, 0, 0, 1000, 2, AN_WIN_WATERMARK);
    assert_true(s->first == 1.0 && s->last == 3.0 && s->last_ts_ms == 900);
    assert_near(s->mean, 2.0, 1e-12);
    assert_int_equal(add(t, 999, 9), AN_WIN_LATE(0)); /* now closed */
    assert_int_equal(flush(t), 1);
    s = &t->c.s[1];
    check_win(s, 0, 1000, 2000, 3, AN_WIN_FLUSH);
    assert_true(s->first == 7.0 && s->first_ts_ms == 1100 && s->last == 4.0);
    tw_free(t);
}

static void test_late_reported(void **state) {
    (void)state;
    tw *t = tw_one(1000, 0, 0);
    assert_int_equal(add(t, 100, 1), AN_WIN_OK);
    assert_int_equal(add(t, 1000, 2), AN_WIN_OK);
    assert_int_equal(t->c.n, 1);
    assert_int_equal(add(t, 999, 50), AN_WIN_LATE(0));
    assert_int_equal(add(t, -5000, 50), AN_WIN_LATE(0)); /* never opened, but closed */
    assert_int_equal(t->c.n, 1);                         /* nothing re-emitted */
    assert_int_equal(an_window_open_count(&t->cfg, t->st), 1);
    assert_int_equal(add(t, 1001, 3), AN_WIN_OK); /* the open window still takes readings */
    assert_int_equal(flush(t), 1);
    check_win(&t->c.s[1], 0, 1000, 2000, 2, AN_WIN_FLUSH);
    assert_true(t->c.s[1].max == 3.0);
    assert_int_equal(an_window_watermark(t->st), 1001);
    tw_free(t);
}

static void test_idle_grace(void **state) {
    (void)state;
    tw *t = tw_one(1000, 200, 300);
    assert_int_equal(idle(t, 1000000), 0); /* nothing yet */
    assert_int_equal(add(t, 100, 1), AN_WIN_OK);
    assert_int_equal(idle(t, 1499), 0); /* 1000 + 200 + 300 = 1500 */
    assert_int_equal(t->c.n, 0);
    assert_int_equal(idle(t, 1500), 1);
    check_win(&t->c.s[0], 0, 0, 1000, 1, AN_WIN_IDLE);
    assert_int_equal(idle(t, 1500), 0);
    assert_int_equal(add(t, 500, 2), AN_WIN_LATE(0)); /* emitted by idle: late */
    assert_int_equal(add(t, 1100, 3), AN_WIN_OK);     /* the next window opens normally */
    assert_int_equal(idle(t, 2499), 0);
    assert_int_equal(idle(t, 2500), 1);
    check_win(&t->c.s[1], 0, 1000, 2000, 1, AN_WIN_IDLE);
    assert_true(t->c.s[1].first == 3.0);
    /* Idle does not close windows after the watermark's: data after a gap aggregates. */
    assert_int_equal(idle(t, 100000), 0);
    assert_int_equal(add(t, 5000, 4), AN_WIN_OK);
    assert_int_equal(add(t, 5001, 5), AN_WIN_OK);
    assert_int_equal(flush(t), 1);
    check_win(&t->c.s[2], 0, 5000, 6000, 2, AN_WIN_FLUSH);
    tw_free(t);
}

static void test_flush(void **state) {
    (void)state;
    const int64_t sizes[3] = {1000, 5000, 1000};
    const int64_t hops[3] = {0, 0, 500};
    tw *t = tw_new(3, sizes, hops, 0, 0);
    assert_int_equal(flush(t), 0);
    assert_int_equal(add(t, 1200, 1), AN_WIN_OK);
    assert_int_equal(add(t, 1300, 2), AN_WIN_OK);
    assert_int_equal(flush(t), 4);
    check_win(&t->c.s[0], 0, 1000, 2000, 2, AN_WIN_FLUSH);
    check_win(&t->c.s[1], 1, 0, 5000, 2, AN_WIN_FLUSH);
    check_win(&t->c.s[2], 2, 500, 1500, 2, AN_WIN_FLUSH);
    check_win(&t->c.s[3], 2, 1000, 2000, 2, AN_WIN_FLUSH);
    assert_int_equal(flush(t), 0);
    assert_int_equal(an_window_open_count(&t->cfg, t->st), 0);
    /* Flushed windows are closed: the same ts is late for every size now. */
    assert_int_equal(add(t, 1250, 3), AN_WIN_LATE(0) | AN_WIN_LATE(1) | AN_WIN_LATE(2));
    assert_int_equal(add(t, 2000, 4), AN_WIN_LATE(1)); /* new 1 s windows; same 5 s one */
    assert_int_equal(flush(t), 3);
    check_win(&t->c.s[4], 0, 2000, 3000, 1, AN_WIN_FLUSH);
    check_win(&t->c.s[5], 2, 1500, 2500, 1, AN_WIN_FLUSH);
    check_win(&t->c.s[6], 2, 2000, 3000, 1, AN_WIN_FLUSH);
    tw_free(t);
}

/* ---- hopping ---- */

static void test_hopping_membership(void **state) {
    (void)state;
    const int64_t size = 3000;
    const int64_t hop = 1000;
    tw *t = tw_new(1, &size, &hop, 0, 0);
    assert_int_equal(add(t, 500, 1), AN_WIN_OK); /* windows -2000, -1000, 0 */
    assert_int_equal(an_window_open_count(&t->cfg, t->st), 3);
    assert_int_equal(add(t, 1500, 2), AN_WIN_OK); /* -1000, 0, 1000; closes -2000 */
    assert_int_equal(t->c.n, 1);
    check_win(&t->c.s[0], 0, -2000, 1000, 1, AN_WIN_WATERMARK);
    assert_int_equal(add(t, 2500, 3), AN_WIN_OK); /* 0, 1000, 2000; closes -1000 */
    assert_int_equal(t->c.n, 2);
    check_win(&t->c.s[1], 0, -1000, 2000, 2, AN_WIN_WATERMARK);
    assert_near(t->c.s[1].mean, 1.5, 1e-12);
    assert_int_equal(flush(t), 3);
    check_win(&t->c.s[2], 0, 0, 3000, 3, AN_WIN_FLUSH);
    assert_true(t->c.s[2].first == 1.0 && t->c.s[2].last == 3.0);
    check_win(&t->c.s[3], 0, 1000, 4000, 2, AN_WIN_FLUSH);
    assert_true(t->c.s[3].first == 2.0 && t->c.s[3].last == 3.0);
    check_win(&t->c.s[4], 0, 2000, 5000, 1, AN_WIN_FLUSH);
    assert_true(t->c.s[4].hop_ms == 1000 && t->c.s[4].window_ms == 3000);
    tw_free(t);
}

static void test_hopping_partial_late(void **state) {
    (void)state;
    const int64_t size = 2000;
    const int64_t hop = 1000;
    tw *t = tw_new(1, &size, &hop, 0, 0);
    assert_int_equal(add(t, 2100, 1), AN_WIN_OK); /* windows 1000, 2000 */
    assert_int_equal(add(t, 3000, 2), AN_WIN_OK); /* closes 1000 (end 3000); 2000, 3000 */
    assert_int_equal(t->c.n, 1);
    check_win(&t->c.s[0], 0, 1000, 3000, 1, AN_WIN_WATERMARK);
    assert_int_equal(add(t, 1500, 9), AN_WIN_LATE(0)); /* windows 0 and 1000: both closed */
    assert_int_equal(add(t, 2500, 3), AN_WIN_LATE(0)); /* 1000 closed, 2000 open */
    assert_int_equal(flush(t), 2);
    check_win(&t->c.s[1], 0, 2000, 4000, 3, AN_WIN_FLUSH);
    assert_true(t->c.s[1].max == 3.0 && t->c.s[1].last == 2.0);
    check_win(&t->c.s[2], 0, 3000, 5000, 1, AN_WIN_FLUSH);
    tw_free(t);
}

/* ---- several sizes, caps, wild timestamps ---- */

static void test_several_sizes(void **state) {
    (void)state;
    const int64_t sizes[3] = {60000, 900000, 3600000};
    tw *t = tw_new(3, sizes, NULL, 0, 0);
    /* One reading every 10 s for 2 hours, value = minute index. */
    for (int64_t ts = 0; ts < 7200000; ts += 10000) {
        assert_int_equal(add(t, ts, (double)(ts / 60000)), AN_WIN_OK);
    }
    /* 119 minute windows, 7 quarter hours, 1 hour closed so far, in arrival order. */
    int per[3] = {0, 0, 0};
    for (int k = 0; k < t->c.n; k++) {
        per[t->c.s[k].size_index]++;
        assert_int_equal(t->c.s[k].count, (uint32_t)(t->c.s[k].window_ms / 10000));
    }
    assert_int_equal(per[0], 119);
    assert_int_equal(per[1], 7);
    assert_int_equal(per[2], 1);
    /* At ts 3600000 the minute window closes before the quarter and the hour. */
    int k = 0;
    while (t->c.s[k].end_ms != 3600000 || t->c.s[k].size_index != 0) {
        k++;
    }
    check_win(&t->c.s[k + 1], 1, 2700000, 3600000, 90, AN_WIN_WATERMARK);
    check_win(&t->c.s[k + 2], 2, 0, 3600000, 360, AN_WIN_WATERMARK);
    assert_near(t->c.s[k + 2].mean, 29.5, 1e-9);
    assert_true(t->c.s[k + 2].min == 0.0 && t->c.s[k + 2].max == 59.0);
    assert_true(t->c.s[k + 2].p50 >= 28.0 && t->c.s[k + 2].p50 <= 31.0);
    assert_true(t->c.s[k + 2].p95 >= 55.0 && t->c.s[k + 2].p95 <= 58.0);
    /* Late for the minute (closed), still in the open quarter and hour. */
    int n = t->c.n;
    assert_int_equal(add(t, 7200000 - 70000, -1.0), AN_WIN_LATE(0));
    assert_int_equal(t->c.n, n);
    assert_int_equal(flush(t), 3);
    assert_true(t->c.s[n + 1].min == -1.0 && t->c.s[n + 2].min == -1.0);
    assert_int_equal(t->c.s[n + 1].count, 91);
    tw_free(t);
}

static void test_lateness_cap(void **state) {
    (void)state;
    tw *t = tw_one(1000, 10000, 0); /* wants 1 + 10 windows, capped at 4 */
    assert_int_equal(an_window_max_emits(&t->cfg), 4);
    for (int k = 0; k < 4; k++) {
        assert_int_equal(add(t, 1000 * k + 100, k), AN_WIN_OK);
    }
    assert_int_equal(t->c.n, 0);
    assert_int_equal(add(t, 4100, 4), AN_WIN_OK); /* evicts window 0 before 11000 */
    assert_int_equal(t->c.n, 1);
    check_win(&t->c.s[0], 0, 0, 1000, 1, AN_WIN_EVICTED);
    assert_int_equal(add(t, 500, 9), AN_WIN_LATE(0));
    assert_int_equal(add(t, 1500, 5), AN_WIN_OK); /* window 1 still open */
    assert_int_equal(add(t, 12000, 6), AN_WIN_OK);
    /* Windows 1..4 leave the ring at 12000; only window 1 is due (2000 + 10000 <= 12000). */
    assert_int_equal(t->c.n, 5);
    check_win(&t->c.s[1], 0, 1000, 2000, 2, AN_WIN_WATERMARK);
    check_win(&t->c.s[2], 0, 2000, 3000, 1, AN_WIN_EVICTED);
    check_win(&t->c.s[4], 0, 4000, 5000, 1, AN_WIN_EVICTED);
    tw_free(t);
}

static void test_wild_future(void **state) {
    (void)state;
    tw *t = tw_one(60000, 5000, 0);
    assert_int_equal(add(t, 1000, 1), AN_WIN_OK);
    assert_int_equal(add(t, 2000, 2), AN_WIN_OK);
    assert_int_equal(add(t, 4102444800000LL, 3), AN_WIN_OK); /* year 2100 */
    assert_int_equal(t->c.n, 1);
    check_win(&t->c.s[0], 0, 0, 60000, 2, AN_WIN_WATERMARK);
    assert_int_equal(add(t, 3000, 4), AN_WIN_LATE(0));
    assert_int_equal(an_window_watermark(t->st), 4102444800000LL);
    tw_free(t);
}

/* ---- differential test against a model that keeps every reading ---- */

typedef struct ref_rd {
    int size;
    int64_t j;
    int64_t ts;
    double v;
} ref_rd;

typedef struct ref {
    const an_window_cfg *cfg;
    int any;
    int64_t wm;
    int64_t j_hi[AN_WIN_MAX_SIZES];
    int64_t closed[AN_WIN_MAX_SIZES]; /* windows j <= closed are closed */
    ref_rd rd[8192];
    int n;
    coll out;
} ref;

static int64_t floor_div_ref(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b < 0) ? q - 1 : q;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static void ref_emit(ref *m, int i, int64_t j, an_win_reason why) {
    const an_window_cfg *c = m->cfg;
    an_window_summary s;
    memset(&s, 0, sizeof(s));
    double vals[8192];
    int n = 0;
    double sum = 0;
    int keep = 0;
    for (int k = 0; k < m->n; k++) {
        ref_rd *r = &m->rd[k];
        if (r->size != i || r->j != j) {
            m->rd[keep++] = *r;
            continue;
        }
        if (n == 0 || r->ts <= s.first_ts_ms) {
            s.first = r->v;
            s.first_ts_ms = r->ts;
        }
        if (n == 0 || r->ts >= s.last_ts_ms) {
            s.last = r->v;
            s.last_ts_ms = r->ts;
        }
        vals[n++] = r->v;
        sum += r->v;
    }
    m->n = keep;
    assert_true(n > 0);
    qsort(vals, (size_t)n, sizeof(double), cmp_d);
    s.size_index = i;
    s.window_ms = c->size_ms[i];
    s.hop_ms = c->hop[i];
    s.start_ms = j * c->hop[i];
    s.end_ms = s.start_ms + s.window_ms;
    s.count = (uint32_t)n;
    s.min = vals[0];
    s.max = vals[n - 1];
    s.mean = sum / n;
    double ss = 0;
    for (int k = 0; k < n; k++) {
        ss += (vals[k] - s.mean) * (vals[k] - s.mean);
    }
    s.stddev = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
    s.p50 = an_quantile_sorted(vals, (size_t)n, 0.5);
    s.p95 = an_quantile_sorted(vals, (size_t)n, 0.95);
    s.reason = why;
    on_emit(&m->out, &s);
}

/* Emits, oldest first, size i's windows with readings and j <= jc. */
static void ref_close(ref *m, int i, int64_t jc, an_win_reason why, int64_t wm_for_reason) {
    for (;;) {
        int64_t best = INT64_MAX;
        for (int k = 0; k < m->n; k++) {
            if (m->rd[k].size == i && m->rd[k].j <= jc && m->rd[k].j < best) {
                best = m->rd[k].j;
            }
        }
        if (best == INT64_MAX) {
            break;
        }
        an_win_reason r = why;
        if (why == AN_WIN_EVICTED && best * m->cfg->hop[i] + m->cfg->end_late[i] <= wm_for_reason) {
            r = AN_WIN_WATERMARK;
        }
        ref_emit(m, i, best, r);
    }
    if (jc > m->closed[i]) {
        m->closed[i] = jc;
    }
}

static int ref_add(ref *m, int64_t ts, double v) {
    const an_window_cfg *c = m->cfg;
    int late = 0;
    for (int i = 0; i < c->n_sizes; i++) {
        int64_t h = c->hop[i];
        int64_t slots = c->slots[i];
        int64_t jn = floor_div_ref(ts, h);
        if (!m->any) {
            m->j_hi[i] = jn;
            m->closed[i] = jn - slots;
        }
        if (jn > m->j_hi[i]) {
            ref_close(m, i, jn - slots, AN_WIN_EVICTED, ts);
            m->j_hi[i] = jn;
        }
        if (!m->any || ts > m->wm) {
            int64_t jc = floor_div_ref(ts - c->end_late[i], h);
            ref_close(m, i, jc < m->j_hi[i] ? jc : m->j_hi[i], AN_WIN_WATERMARK, ts);
        }
        for (int64_t j = jn; j > jn - c->per_reading[i]; j--) {
            if (j <= m->closed[i]) {
                late |= AN_WIN_LATE(i);
                break;
            }
            assert_true(m->n < 8192);
            m->rd[m->n++] = (ref_rd){.size = i, .j = j, .ts = ts, .v = v};
        }
    }
    if (!m->any || ts > m->wm) {
        m->wm = ts;
    }
    m->any = 1;
    return late;
}

static void ref_idle(ref *m, int64_t now, int flush_all) {
    if (!m->any) {
        return;
    }
    const an_window_cfg *c = m->cfg;
    for (int i = 0; i < c->n_sizes; i++) {
        int64_t jc = m->j_hi[i];
        if (!flush_all) {
            int64_t due = floor_div_ref(now - c->grace_ms - c->end_late[i], c->hop[i]);
            jc = due < jc ? due : jc;
        }
        ref_close(m, i, jc, flush_all ? AN_WIN_FLUSH : AN_WIN_IDLE, 0);
    }
}

static size_t ref_open(const ref *m) {
    size_t n = 0;
    for (int k = 0; k < m->n; k++) {
        int dup = 0;
        for (int l = 0; l < k && !dup; l++) {
            dup = m->rd[l].size == m->rd[k].size && m->rd[l].j == m->rd[k].j;
        }
        n += !dup;
    }
    return n;
}

static void same_summary(const an_window_summary *a, const an_window_summary *b) {
    assert_int_equal(a->size_index, b->size_index);
    assert_true(a->window_ms == b->window_ms && a->hop_ms == b->hop_ms);
    assert_true(a->start_ms == b->start_ms && a->end_ms == b->end_ms);
    assert_int_equal(a->count, b->count);
    assert_int_equal(a->reason, b->reason);
    assert_true(a->min == b->min && a->max == b->max);
    assert_true(a->first == b->first && a->first_ts_ms == b->first_ts_ms);
    assert_true(a->last == b->last && a->last_ts_ms == b->last_ts_ms);
    assert_near(a->mean, b->mean, 1e-9 * (1 + fabs(b->mean)));
    assert_near(a->stddev, b->stddev, 1e-9 * (1 + b->stddev));
    if (b->count <= AN_QUANT_EXACT) {
        assert_true(a->p50 == b->p50 && a->p95 == b->p95);
    } else {
        assert_true(a->min <= a->p50 && a->p50 <= a->p95 && a->p95 <= a->max);
    }
}

static uint64_t rnd_state;
static uint64_t rnd(uint64_t n) {
    rnd_state = rnd_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (rnd_state >> 33) % n;
}

static void run_differential(uint64_t seed) {
    rnd_state = seed;
    static const int64_t sizes[] = {1000, 2000, 3000, 4000, 6000};
    static const int64_t hops[] = {500, 1000, 2000};
    static const int64_t lates[] = {0, 0, 250, 1000, 2500, 7000, 50000};
    static const int64_t graces[] = {0, 400, 3000};
    tw *t = calloc(1, sizeof(*t));
    ref *m = calloc(1, sizeof(*m));
    assert_non_null(t);
    assert_non_null(m);
    t->cfg.n_sizes = 1 + (int)rnd(3);
    for (int i = 0; i < t->cfg.n_sizes; i++) {
        t->cfg.size_ms[i] = sizes[rnd(5)];
        int64_t hop = hops[rnd(3)];
        t->cfg.hop_ms[i] = (rnd(2) && t->cfg.size_ms[i] % hop == 0) ? hop : 0;
    }
    t->cfg.allowed_lateness_ms = lates[rnd(7)];
    t->cfg.grace_ms = graces[rnd(3)];
    assert_int_equal(an_window_cfg_prepare(&t->cfg), 0);
    assert_int_equal(an_window_new(&t->cfg, &t->st), 0);
    m->cfg = &t->cfg;

    int64_t ts = -20000 + (int64_t)rnd(40000);
    for (int step = 0; step < 3000; step++) {
        uint64_t r = rnd(100);
        int before = t->c.n;
        if (r < 4) {
            int64_t now = ts - 1000 + (int64_t)rnd(9000);
            int rc = idle(t, now);
            ref_idle(m, now, 0);
            assert_int_equal(rc, t->c.n - before);
        } else if (r < 5) {
            int rc = flush(t);
            ref_idle(m, 0, 1);
            assert_int_equal(rc, t->c.n - before);
        } else {
            int64_t x;
            if (r < 70) {
                ts += (int64_t)rnd(400);
                x = ts;
            } else if (r < 85) {
                x = ts - (int64_t)rnd(3000);
            } else if (r < 90) {
                x = ts; /* repeated ts */
            } else if (r < 95) {
                ts += 5000 + (int64_t)rnd(25000);
                x = ts;
            } else {
                x = ts - 10000 - (int64_t)rnd(90000);
            }
            double v = (double)rnd(200) / 4.0 - 10.0;
            int got = add(t, x, v);
            int want = ref_add(m, x, v);
            assert_int_equal(got, want);
        }
        assert_true((size_t)(t->c.n - before) <= an_window_max_emits(&t->cfg));
        assert_int_equal(t->c.n, m->out.n);
        for (int k = before; k < t->c.n; k++) {
            same_summary(&t->c.s[k], &m->out.s[k]);
        }
        assert_int_equal(an_window_open_count(&t->cfg, t->st), ref_open(m));
        if (t->c.n > MAX_EMITS - 600) {
            t->c.n = 0;
            m->out.n = 0;
        }
    }
    int before = t->c.n;
    flush(t);
    ref_idle(m, 0, 1);
    assert_int_equal(t->c.n, m->out.n);
    for (int k = before; k < t->c.n; k++) {
        same_summary(&t->c.s[k], &m->out.s[k]);
    }
    free(m);
    tw_free(t);
}

static void test_differential(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        run_differential(seed);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cfg),
        cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_aggregates),
        cmocka_unit_test(test_count_one),
        cmocka_unit_test(test_stddev_offset),
        cmocka_unit_test(test_first_last_ties),
        cmocka_unit_test(test_alignment_negative),
        cmocka_unit_test(test_watermark_exact),
        cmocka_unit_test(test_lateness_out_of_order),
        cmocka_unit_test(test_late_reported),
        cmocka_unit_test(test_idle_grace),
        cmocka_unit_test(test_flush),
        cmocka_unit_test(test_hopping_membership),
        cmocka_unit_test(test_hopping_partial_late),
        cmocka_unit_test(test_several_sizes),
        cmocka_unit_test(test_lateness_cap),
        cmocka_unit_test(test_wild_future),
        cmocka_unit_test(test_differential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
