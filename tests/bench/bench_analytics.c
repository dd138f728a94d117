/* The analytics' own cost per reading, as a worker runs them, without queues or storage:
 * 1. 3 tumbling windows (1m, 15m, 1h) and 3 rules (threshold with hysteresis, rate of change,
 *    stale) per series (target <= 200 ns per reading);
 * 2. the predictive-maintenance detectors together: trend + drift + anomaly (target <= 150 ns
 *    per reading, state <= 256 bytes per series).
 * Prints ns per reading; run it under `valgrind --tool=callgrind` for instructions per reading
 * (repeatable on a noisy machine):
 *
 *   bench_analytics [SERIES] [READINGS]          (defaults 1000, 5000000)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "anomaly.h"
#include "drift.h"
#include "rate.h"
#include "stale.h"
#include "threshold.h"
#include "trend.h"
#include "window.h"

typedef struct pdm_state {
    an_trend_state trend;
    an_drift_state drift;
    an_anomaly_state anomaly;
} pdm_state;

typedef struct series_state {
    an_threshold_state th;
    an_rate_state rate;
    an_stale_state stale;
    an_window_state *win;
} series_state;

static uint64_t emitted;

static void on_summary(void *ctx, const an_window_summary *s) {
    (void)ctx;
    emitted += s->count;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv) {
    long n_series = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
    long n_readings = argc > 2 ? strtol(argv[2], NULL, 10) : 5000000;
    if (n_series < 1 || n_readings < 1) {
        fprintf(stderr, "usage: bench_analytics [SERIES] [READINGS]\n");
        return 2;
    }
    an_window_cfg wcfg = {.n_sizes = 3, .size_ms = {60000, 900000, 3600000}};
    if (an_window_cfg_prepare(&wcfg) != 0) {
        return 1;
    }
    an_threshold_cfg th = {.has_above = true, .above = 30, .clear_below = 28, .for_ms = 2000};
    an_rate_cfg rate = {.above = 5};
    an_stale_cfg stale = {.after_ms = 60000};
    series_state *st = calloc((size_t)n_series, sizeof(*st));
    if (st == NULL) {
        return 1;
    }
    for (long i = 0; i < n_series; i++) {
        an_threshold_init(&st[i].th);
        an_rate_init(&st[i].rate);
        an_stale_init(&st[i].stale);
        if (an_window_new(&wcfg, &st[i].win) != 0) {
            return 1;
        }
    }
    /* Values: a slow wave with noise that crosses the threshold now and then; 1 s apart per
     * series, series interleaved as a stream from many sensors would be. */
    uint64_t rng = 0x9e3779b97f4a7c15u, alerts = 0;
    int64_t t0 = 1700000000000;
    int64_t start = now_ns();
    for (long k = 0; k < n_readings; k++) {
        long i = k % n_series;
        int64_t ts = t0 + (k / n_series) * 1000;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        double noise = (double)(rng >> 11) * (1.0 / 9007199254740992.0) - 0.5;
        double v = 25 + 6 * ((k / n_series) % 600 < 300 ? 1 : -1) + noise;
        an_alert out[2];
        series_state *s = &st[i];
        an_window_add(&wcfg, s->win, ts, v, on_summary, NULL);
        alerts += (uint64_t)an_threshold_update(&th, &s->th, 0, ts, v, out, 2);
        alerts += (uint64_t)an_rate_update(&rate, &s->rate, 1, ts, v, out, 2);
        alerts += (uint64_t)an_stale_seen(&stale, &s->stale, 2, ts, v, out, 2);
    }
    int64_t ns = now_ns() - start;
    printf("analytics: %.1f ns per reading (3 windows + 3 rules, %ld series, %ld readings, "
           "%llu alerts, %llu readings summarised; target <= 200 ns)\n",
           (double)ns / (double)n_readings, n_series, n_readings, (unsigned long long)alerts,
           (unsigned long long)emitted);
    printf("analytics: state per series %zu bytes (windows %zu + rules %zu)\n",
           an_window_state_size(&wcfg) + sizeof(an_threshold_state) + sizeof(an_rate_state) +
               sizeof(an_stale_state),
           an_window_state_size(&wcfg),
           sizeof(an_threshold_state) + sizeof(an_rate_state) + sizeof(an_stale_state));
    for (long i = 0; i < n_series; i++) {
        an_window_free(st[i].win);
    }
    free(st);

    /* The detectors: a slow ramp with noise and a step, so that every path runs. */
    an_trend_cfg tc;
    an_trend_cfg_default(&tc);
    tc.has_limit = true;
    tc.limit = 1000;
    an_drift_cfg dc;
    an_drift_cfg_default(&dc);
    an_anomaly_cfg ac;
    an_anomaly_cfg_default(&ac);
    pdm_state *ps = calloc((size_t)n_series, sizeof(*ps));
    if (ps == NULL) {
        return 1;
    }
    for (long i = 0; i < n_series; i++) {
        an_trend_init(&ps[i].trend);
        an_drift_init(&ps[i].drift);
        an_anomaly_init(&ps[i].anomaly);
    }
    alerts = 0;
    double score_sum = 0;
    start = now_ns();
    for (long k = 0; k < n_readings; k++) {
        long i = k % n_series;
        long step = k / n_series;
        int64_t ts = t0 + step * 1000;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        double noise = (double)(rng >> 11) * (1.0 / 9007199254740992.0) - 0.5;
        double v = 50 + step * 0.001 + (step % 5000 > 4000 ? 3 : 0) + noise;
        an_alert out[2];
        pdm_state *s = &ps[i];
        alerts += (uint64_t)an_trend_update(&tc, &s->trend, 0, ts, v, out, 2);
        alerts += (uint64_t)an_drift_update(&dc, &s->drift, 1, ts, v, out, 2);
        alerts += (uint64_t)an_anomaly_update(&ac, &s->anomaly, 2, ts, v, out, 2);
        score_sum += an_anomaly_score(&s->anomaly);
    }
    ns = now_ns() - start;
    printf("detectors: %.1f ns per reading (trend + drift + anomaly, %ld series, %ld readings, "
           "%llu alerts, mean score %.3f; target <= 150 ns)\n",
           (double)ns / (double)n_readings, n_series, n_readings, (unsigned long long)alerts,
           score_sum / (double)n_readings);
    printf("detectors: state per series %zu bytes (trend %zu + drift %zu + anomaly %zu; target "
           "<= 256)\n",
           sizeof(pdm_state), sizeof(an_trend_state), sizeof(an_drift_state),
           sizeof(an_anomaly_state));
    free(ps);
    return 0;
}
