/* Alert states across a restart: the restore setter of each rule part (a restored raised
 * state + a normal reading clears, + an abnormal one changes nothing), and the gateway's
 * restore at start through the pipeline (inline decode, a real SQLite file): a restored alert
 * is not raised twice, clears normally, and an alert whose rule is gone is cleared at start. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anomaly.h"
#include "config.h"
#include "drift.h"
#include "pipeline.h"
#include "test_pipeline_fixture.h"
#include "rate.h"
#include "stale.h"
#include "threshold.h"
#include "trend.h"

#define T0 1700000000000LL

/* ---- threshold ---- */

static an_threshold_cfg hot_cfg(int64_t clear_for_ms) {
    return (an_threshold_cfg){.has_above = true,
                              .above = 30,
                              .clear_below = 28,
                              .has_below = true,
                              .below = 5,
                              .clear_above = 7,
                              .clear_for_ms = clear_for_ms,
                              .severity = AN_SEV_CRITICAL};
}

static void test_threshold_restored_high(void **state) {
    (void)state;
    an_threshold_cfg cfg = hot_cfg(0);
    an_threshold_state st;
    an_alert out[2];
    an_threshold_init(&st);
    assert_int_equal(an_threshold_restore(&st, AN_KIND_HIGH), 0);
    /* Still above: no second raise. In the band: nothing either. */
    assert_int_equal(an_threshold_update(&cfg, &st, 3, T0, 31.5, out, 2), 0);
    assert_int_equal(an_threshold_update(&cfg, &st, 3, T0 + 1, 29.0, out, 2), 0);
    /* Back below the clear level: one ordinary clear. */
    assert_int_equal(an_threshold_update(&cfg, &st, 3, T0 + 2, 25.0, out, 2), 1);
    assert_int_equal(out[0].kind, AN_KIND_HIGH);
    assert_int_equal(out[0].state, AN_STATE_CLEARED);
    assert_true(out[0].threshold == 28.0);
    assert_true(out[0].value == 25.0);
    assert_int_equal(out[0].rule, 3);
    /* The low side was not restored, and a new episode raises again. */
    assert_int_equal(an_threshold_update(&cfg, &st, 3, T0 + 3, 31.0, out, 2), 1);
    assert_int_equal(out[0].state, AN_STATE_RAISED);
}

static void test_threshold_restored_low_clear_for(void **state) {
    (void)state;
    an_threshold_cfg cfg = hot_cfg(1000);
    an_threshold_state st;
    an_alert out[2];
    an_threshold_init(&st);
    assert_int_equal(an_threshold_restore(&st, AN_KIND_LOW), 0);
    assert_int_equal(an_threshold_update(&cfg, &st, 0, T0, 4.0, out, 2), 0);
    /* clear_for applies to the restored episode like to any other. */
    assert_int_equal(an_threshold_update(&cfg, &st, 0, T0 + 10, 8.0, out, 2), 0);
    assert_int_equal(an_threshold_update(&cfg, &st, 0, T0 + 500, 8.0, out, 2), 0);
    assert_int_equal(an_threshold_update(&cfg, &st, 0, T0 + 1010, 8.0, out, 2), 1);
    assert_int_equal(out[0].kind, AN_KIND_LOW);
    assert_int_equal(out[0].state, AN_STATE_CLEARED);
    assert_true(out[0].threshold == 7.0);
}

static void test_threshold_restore_bad_kind(void **state) {
    (void)state;
    an_threshold_state st;
    an_threshold_init(&st);
    assert_int_equal(an_threshold_restore(&st, AN_KIND_RATE), -EINVAL);
    assert_int_equal(an_threshold_restore(NULL, AN_KIND_HIGH), -EINVAL);
    assert_int_equal(st.high.raised, 0);
}

/* ---- rate ---- */

static void test_rate_restored(void **state) {
    (void)state;
    an_rate_cfg cfg = {.above = 5.0, .severity = AN_SEV_WARNING};
    an_rate_state st;
    an_alert out[1];
    an_rate_init(&st);
    assert_int_equal(an_rate_restore(&st, T0, 10.0), 0);
    /* 90 per second from the raising reading: still too fast, nothing new. */
    assert_int_equal(an_rate_update(&cfg, &st, 1, T0 + 1000, 100.0, out, 1), 0);
    /* 1 per second: cleared, with the rate that cleared it. */
    assert_int_equal(an_rate_update(&cfg, &st, 1, T0 + 2000, 101.0, out, 1), 1);
    assert_int_equal(out[0].state, AN_STATE_CLEARED);
    assert_true(out[0].detail == 1.0);
    assert_true(out[0].value == 101.0);

    /* A normal rate right away clears at the first reading. */
    an_rate_init(&st);
    assert_int_equal(an_rate_restore(&st, T0, 10.0), 0);
    assert_int_equal(an_rate_update(&cfg, &st, 1, T0 + 60000, 12.0, out, 1), 1);
    assert_int_equal(out[0].state, AN_STATE_CLEARED);
    assert_int_equal(an_rate_restore(&st, T0, NAN), -EINVAL);
}

/* ---- stale ---- */

static void test_stale_restored(void **state) {
    (void)state;
    an_stale_cfg cfg = {.after_ms = 60000, .severity = AN_SEV_WARNING};
    an_stale_state st;
    an_alert out[1];
    an_stale_init(&st);
    /* Raised at T0 + 90 s after 90 s of silence: last seen at T0. */
    assert_int_equal(an_stale_restore(&st, T0, 21.5), 0);
    /* Still silent: checks raise nothing more. */
    assert_int_equal(an_stale_check(&cfg, &st, 0, T0 + 200000, out, 1), 0);
    /* A reading clears, reporting the whole silence. */
    assert_int_equal(an_stale_seen(&cfg, &st, 0, T0 + 300000, 22.0, out, 1), 1);
    assert_int_equal(out[0].state, AN_STATE_CLEARED);
    assert_true(out[0].detail == 300000.0);
    assert_true(out[0].value == 22.0);
    /* And the next silence raises again. */
    assert_int_equal(an_stale_check(&cfg, &st, 0, T0 + 360000, out, 1), 1);
    assert_int_equal(out[0].state, AN_STATE_RAISED);
}

/* ---- trend ---- */

static an_trend_cfg trend_cfg(void) {
    an_trend_cfg c;
    an_trend_cfg_default(&c);
    c.window_ms = 3600000;
    c.has_limit = true;
    c.limit = 100.0;
    c.horizon_ms = 3600000;
    return c;
}

static void test_trend_restored_clears_on_flat(void **state) {
    (void)state;
    an_trend_cfg cfg = trend_cfg();
    an_trend_state st;
    an_alert out[1];
    an_trend_init(&st);
    an_trend_restore(&st);
    int cleared = 0;
    long at = -1;
    for (long i = 0; i < 120 && cleared == 0; i++) {
        /* Flat at 50 with a little noise: no limit in sight. */
        double v = 50.0 + ((i * 7919) % 13 - 6) * 0.01;
        int k = an_trend_update(&cfg, &st, 0, T0 + i * 60000, v, out, 1);
        assert_true(k == 0 || (k == 1 && out[0].state == AN_STATE_CLEARED));
        if (k == 1) {
            cleared++;
            at = i;
        }
    }
    assert_int_equal(cleared, 1);
    /* Not before the fit is mature (about half a window). */
    assert_true(at >= 9);
}

static void test_trend_restored_still_rising(void **state) {
    (void)state;
    an_trend_cfg cfg = trend_cfg();
    an_trend_state st;
    an_alert out[1];
    an_trend_init(&st);
    an_trend_restore(&st);
    /* Rising 1 per minute toward 100: within the horizon the whole time; neither a second
     * raise nor a clear. */
    for (long i = 0; i < 45; i++) {
        assert_int_equal(an_trend_update(&cfg, &st, 0, T0 + i * 60000, 50.0 + i, out, 1), 0);
    }
}

/* ---- drift ---- */

static double noise(long i) {
    /* Deterministic, zero-mean, sd about 0.3. */
    return (((i * 2654435761u) >> 7) % 1000) / 1000.0 - 0.5;
}

static void test_drift_restored_back_to_baseline(void **state) {
    (void)state;
    an_drift_cfg cfg;
    an_drift_cfg_default(&cfg);
    an_drift_state st;
    an_alert out[1];
    an_drift_init(&st);
    assert_int_equal(an_drift_restore(&st, 10.0, 5.0), 0);
    long at = -1;
    for (long i = 0; i < 300; i++) {
        int k = an_drift_update(&cfg, &st, 4, T0 + i * 1000, 10.0 + noise(i), out, 1);
        if (k == 1) {
            assert_int_equal(out[0].state, AN_STATE_CLEARED);
            assert_int_equal(at, -1);
            at = i;
            /* Against the baseline it was raised on. */
            assert_true(out[0].threshold == 10.0);
            assert_true(fabs(out[0].detail) < 1.0);
        }
    }
    /* Cleared once the warm-up has learned the noise again, not before. */
    assert_int_equal(at, (long)cfg.warmup - 1);
}

static void test_drift_restored_still_shifted(void **state) {
    (void)state;
    an_drift_cfg cfg;
    an_drift_cfg_default(&cfg);
    an_drift_state st;
    an_alert out[1];
    an_drift_init(&st);
    assert_int_equal(an_drift_restore(&st, 10.0, 5.0), 0);
    /* Still at 15: nothing through the warm-up and beyond (short of relearn). */
    long i = 0;
    for (; i < 600; i++) {
        assert_int_equal(an_drift_update(&cfg, &st, 4, T0 + i * 1000, 15.0 + noise(i), out, 1), 0);
    }
    /* Back to the old baseline: the restored episode clears. */
    int cleared = 0;
    for (; i < 700 && cleared == 0; i++) {
        int k = an_drift_update(&cfg, &st, 4, T0 + i * 1000, 10.0 + noise(i), out, 1);
        if (k == 1) {
            assert_int_equal(out[0].state, AN_STATE_CLEARED);
            assert_true(out[0].threshold == 10.0);
            cleared = 1;
        }
    }
    assert_int_equal(cleared, 1);
    assert_int_equal(an_drift_restore(&st, NAN, 1.0), -1);
}

/* ---- anomaly ---- */

static void test_anomaly_restored(void **state) {
    (void)state;
    an_anomaly_cfg cfg;
    an_anomaly_cfg_default(&cfg); /* refractory 15 min */
    an_anomaly_state st;
    an_alert out[1];
    an_anomaly_init(&st);
    an_anomaly_restore(&st, T0, 99.0);
    /* Within the refractory period: nothing, neither readings nor ticks. */
    assert_int_equal(an_anomaly_update(&cfg, &st, 0, T0 + 60000, 20.0, out, 1), 0);
    assert_int_equal(an_anomaly_update(&cfg, &st, 0, T0 + 120000, 500.0, out, 1), 0);
    assert_int_equal(an_anomaly_tick(&cfg, &st, 0, T0 + 600000, out, 1), 0);
    /* After it, a tick clears with the last reading's value. */
    assert_int_equal(an_anomaly_tick(&cfg, &st, 0, T0 + 900000, out, 1), 1);
    assert_int_equal(out[0].state, AN_STATE_CLEARED);
    assert_true(out[0].value == 500.0);

    /* The first reading after the refractory period clears as well. */
    an_anomaly_init(&st);
    an_anomaly_restore(&st, T0, 99.0);
    assert_int_equal(an_anomaly_update(&cfg, &st, 0, T0 + 1000000, 20.0, out, 1), 1);
    assert_int_equal(out[0].state, AN_STATE_CLEARED);
    assert_true(out[0].value == 20.0);
    assert_int_equal(an_anomaly_update(&cfg, &st, 0, T0 + 1001000, 20.0, out, 1), 0);
}

/* ---- the gateway: restore at start through the pipeline ---- */

static int setup(void **state) {
    fixture *f = fixture_new("iotgw-restore");
    if (f == NULL) {
        return -1;
    }
    f->cfg->pipeline.workers = 2;
    f->cfg->n_rules = 2;
    threshold_rule(&f->cfg->rules[0], "hot", true, 30, 28, AN_SEV_CRITICAL);
    threshold_rule(&f->cfg->rules[1], "cold", false, 5, 7, AN_SEV_WARNING);
    *state = f;
    return 0;
}

/* One run of the gateway without a broker: the payloads in order, one per second, for
 * sensors/boiler/temp, or for sensors/<sensor>/temp when a payload is "<sensor> <value>". */
static void run(fixture *f, const char *const *payloads, size_t n, int64_t t0) {
    gw_pipeline *p;
    char err[256];
    gw_pipeline_opts o = {.inline_decode = true};
    assert_int_equal(gw_pipeline_new(&p, f->cfg, &o, err, sizeof(err)), 0);
    assert_int_equal(gw_pipeline_start(p), 0);
    for (size_t i = 0; i < n; i++) {
        char topic[64] = "sensors/boiler/temp";
        const char *payload = payloads[i];
        const char *space = strchr(payload, ' ');
        if (space != NULL) {
            snprintf(topic, sizeof(topic), "sensors/%.*s/temp", (int)(space - payload), payload);
            payload = space + 1;
        }
        gw_pipeline_decode(p, topic, strlen(topic), payload, strlen(payload),
                           t0 + (int64_t)i * 1000);
    }
    gw_pipeline_stop(p);
    gw_pipeline_free(p);
}

#define ROWS(f, where) query_int((f)->db, "SELECT count(*) FROM v_alerts WHERE " where)
#define ACTIVE(f)      query_int((f)->db, "SELECT count(*) FROM v_active_alerts")

static void test_pipeline_restores_and_clears(void **state) {
    fixture *f = *state;
    const char *raise[] = {"25", "31", "32"};
    run(f, raise, 3, T0);
    assert_int_equal(ROWS(f, "state = 'raised'"), 1);
    assert_int_equal(ACTIVE(f), 1);

    /* Restarted on the same file: still above, nothing new. */
    const char *still[] = {"33", "31"};
    run(f, still, 2, T0 + 10000);
    assert_int_equal(ROWS(f, "state = 'raised'"), 1);
    assert_int_equal(ROWS(f, "state = 'cleared'"), 0);
    assert_int_equal(ACTIVE(f), 1);

    /* Restarted again: a normal value clears it with an ordinary transition. */
    const char *normal[] = {"29", "25", "26"};
    run(f, normal, 3, T0 + 20000);
    assert_int_equal(ROWS(f, "state = 'cleared'"), 1);
    assert_int_equal(ROWS(f, "state = 'cleared' AND kind = 'high' AND rule = 'hot' AND "
                             "value = 25 AND threshold = 28"),
                     1);
    assert_int_equal(ACTIVE(f), 0);
    char msg[256];
    query_text(f->db, "SELECT message FROM v_alerts WHERE state = 'cleared'", msg, sizeof(msg));
    assert_string_equal(msg, "temp of boiler is back to 25, below 28 (rule hot)");
}

static void test_pipeline_clears_alerts_of_removed_rules(void **state) {
    fixture *f = *state;
    const char *raise[] = {"31", "3"};
    run(f, raise, 2, T0);
    /* 31 raises high (hot); 3 clears it (below 28) and raises low (cold). */
    assert_int_equal(ACTIVE(f), 1);
    const char *again[] = {"tank 32"};
    run(f, again, 1, T0 + 5000);
    assert_int_equal(ACTIVE(f), 2);

    /* "cold" removed, "hot" no longer covers temp: both cleared at start, no reading needed. */
    f->cfg->n_rules = 1;
    snprintf(f->cfg->rules[0].metric_glob, sizeof(f->cfg->rules[0].metric_glob), "pressure");
    run(f, NULL, 0, T0);
    assert_int_equal(ACTIVE(f), 0);
    char msg[256];
    query_text(f->db, "SELECT message FROM v_alerts WHERE rule = 'cold' AND state = 'cleared'", msg,
               sizeof(msg));
    assert_string_equal(
        msg, "low alert on temp of boiler cleared at start: rule cold is no longer in the "
             "configuration");
    query_text(f->db, "SELECT message FROM v_alerts WHERE rule = 'hot' ORDER BY id DESC", msg,
               sizeof(msg));
    assert_string_equal(msg, "high alert on temp of tank cleared at start: rule hot no longer "
                             "applies to this series");
    /* The clear carries the raised alert's figures; in a replay its time too. */
    assert_int_equal(ROWS(f, "rule = 'hot' AND state = 'cleared' AND value = 32 AND "
                             "threshold = 30 AND ts_ms = 1700000005000"),
                     1);
    /* Nothing is left to clear at the next start. */
    int64_t before = query_int(f->db, "SELECT count(*) FROM v_alerts");
    run(f, NULL, 0, T0);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM v_alerts"), before);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold_restored_high),
        cmocka_unit_test(test_threshold_restored_low_clear_for),
        cmocka_unit_test(test_threshold_restore_bad_kind),
        cmocka_unit_test(test_rate_restored),
        cmocka_unit_test(test_stale_restored),
        cmocka_unit_test(test_trend_restored_clears_on_flat),
        cmocka_unit_test(test_trend_restored_still_rising),
        cmocka_unit_test(test_drift_restored_back_to_baseline),
        cmocka_unit_test(test_drift_restored_still_shifted),
        cmocka_unit_test(test_anomaly_restored),
        cmocka_unit_test_setup_teardown(test_pipeline_restores_and_clears, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_clears_alerts_of_removed_rules, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
