/* Open alerts across a reload of the rules (SIGHUP), through the pipeline (inline decode, a
 * recording sink in place of MQTT, a real SQLite file): an alert of a rule whose limits
 * changed stays raised and clears by the new levels; one whose rule was removed, no longer
 * covers the series or no longer checks its kind is cleared at the reload (stored, published,
 * the retained state emptied); an unchanged rule that moved in the list keeps its alert. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "pipeline.h"
#include "test_pipeline_fixture.h"

#define T0 1700000000000LL

static int setup(void **state) {
    fixture *f = fixture_new("iotgw-reload");
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

#define ROWS(f, where) query_int((f)->db, "SELECT count(*) FROM v_alerts WHERE " where)
#define ACTIVE(f)      query_int((f)->db, "SELECT count(*) FROM v_active_alerts")

/* ---- a sink that records what would go to the broker ---- */

typedef struct sent {
    char topic[128];
    char payload[1024];
    bool retained;
} sent;

typedef struct rec_sink {
    gw_pipeline *p;
    pthread_mutex_t mu;
    sent msgs[128];
    int n;
} rec_sink;

static int rec_send(void *ctx, const char *topic, const char *payload, size_t len, int qos,
                    bool retained, int64_t id) {
    rec_sink *s = ctx;
    (void)qos;
    pthread_mutex_lock(&s->mu);
    if (s->n < 128) {
        sent *m = &s->msgs[s->n++];
        snprintf(m->topic, sizeof(m->topic), "%s", topic);
        snprintf(m->payload, sizeof(m->payload), "%.*s", (int)len, payload);
        m->retained = retained;
    }
    pthread_mutex_unlock(&s->mu);
    if (id != 0) {
        gw_pipeline_alert_delivered(s->p, id);
    }
    return 0;
}

static const gw_sink_ops rec_ops = {.send = rec_send};

/* The last retained message on a topic: what a new subscriber gets ("" once emptied); NULL
 * when nothing was retained there. */
static const char *retained(rec_sink *s, const char *topic) {
    for (int i = s->n; i-- > 0;) {
        if (s->msgs[i].retained && strcmp(s->msgs[i].topic, topic) == 0) {
            return s->msgs[i].payload;
        }
    }
    return NULL;
}

/* The alert events (not the state topics) in the order published. */
static int events(rec_sink *s, const sent **out, int cap) {
    int n = 0;
    for (int i = 0; i < s->n && n < cap; i++) {
        if (strncmp(s->msgs[i].topic, "iotgw/alerts/", 13) == 0) {
            out[n++] = &s->msgs[i];
        }
    }
    return n;
}

typedef struct run {
    gw_pipeline *p;
    rec_sink sink;
    int64_t t; /* time of the next reading */
} run;

static void start(fixture *f, run *r) {
    char err[256];
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->sink.mu, NULL);
    gw_pipeline_opts o = {.inline_decode = true, .sink = &rec_ops, .sink_ctx = &r->sink};
    assert_int_equal(gw_pipeline_new(&r->p, f->cfg, &o, err, sizeof(err)), 0);
    r->sink.p = r->p;
    assert_int_equal(gw_pipeline_start(r->p), 0);
    r->t = T0;
}

/* One reading of sensors/<sensor>/<metric>, one second after the previous one. */
static void feed(run *r, const char *sensor, const char *metric, const char *value) {
    char topic[96];
    snprintf(topic, sizeof(topic), "sensors/%s/%s", sensor, metric);
    gw_pipeline_decode(r->p, topic, strlen(topic), value, strlen(value), r->t);
    r->t += 1000;
}

static void reload(run *r, const an_rule *rules, size_t n) {
    assert_int_equal(gw_pipeline_reload_rules(r->p, rules, n), 0);
}

static void stop(run *r) {
    gw_pipeline_stop(r->p);
    gw_pipeline_free(r->p);
    pthread_mutex_destroy(&r->sink.mu);
}

/* "above" 30 -> 35 with the clear level 28 -> 33: a value still above raises nothing new, one
 * in the new band changes nothing, and the new clear level decides the clear. */
static void test_changed_limit_keeps_alert_then_clears_by_new_level(void **state) {
    fixture *f = *state;
    run r;
    start(f, &r);
    feed(&r, "boiler", "temp", "31");
    an_rule next[2];
    memcpy(next, f->cfg->rules, sizeof(next));
    next[0].threshold.above = 35;
    next[0].threshold.clear_below = 33;
    reload(&r, next, 2);
    feed(&r, "boiler", "temp", "34"); /* between the new levels: nothing */
    feed(&r, "boiler", "temp", "36"); /* above the new limit: still the one episode */
    feed(&r, "boiler", "temp", "32"); /* below the new clear level: cleared */
    feed(&r, "boiler", "temp", "31"); /* the new limit is 35: nothing */
    stop(&r);

    assert_int_equal(ROWS(f, "1"), 2);
    assert_int_equal(ROWS(f, "state = 'raised' AND value = 31 AND threshold = 30"), 1);
    assert_int_equal(ROWS(f, "state = 'cleared' AND rule = 'hot' AND value = 32 AND "
                             "threshold = 33 AND severity = 'critical'"),
                     1);
    assert_int_equal(ACTIVE(f), 0);
    char msg[256];
    query_text(f->db, "SELECT message FROM v_alerts WHERE state = 'cleared'", msg, sizeof(msg));
    assert_string_equal(msg, "temp of boiler is back to 32, below 33 (rule hot)");
    const sent *ev[8];
    assert_int_equal(events(&r.sink, ev, 8), 2);
    assert_non_null(strstr(ev[1]->payload, "\"state\":\"cleared\""));
    assert_string_equal(retained(&r.sink, "iotgw/state/boiler/temp/high"), "");
}

/* The new limit makes the current value normal: the reload itself clears nothing; the next
 * reading clears by the ordinary clear logic. An alert restored at start is carried the same. */
static void test_new_limit_above_value_clears_at_next_reading(void **state) {
    fixture *f = *state;
    run r;
    start(f, &r);
    feed(&r, "boiler", "temp", "31");
    an_rule next[2];
    memcpy(next, f->cfg->rules, sizeof(next));
    next[0].threshold.above = 40;
    next[0].threshold.clear_below = 40;
    reload(&r, next, 2);
    stop(&r);
    assert_int_equal(ROWS(f, "1"), 1);
    assert_int_equal(ACTIVE(f), 1);

    /* Restarted with the old rules (the alert is restored at start), then reloaded. */
    start(f, &r);
    r.t = T0 + 60000;
    reload(&r, next, 2);
    feed(&r, "boiler", "temp", "31");
    feed(&r, "boiler", "temp", "45");
    stop(&r);
    assert_int_equal(ROWS(f, "state = 'raised'"), 2);
    assert_int_equal(ROWS(f, "state = 'cleared' AND value = 31 AND threshold = 40"), 1);
    assert_int_equal(ROWS(f, "state = 'raised' AND value = 45 AND threshold = 40"), 1);
    assert_int_equal(query_int(f->db, "SELECT max(id) FROM v_alerts WHERE state = 'raised'"),
                     query_int(f->db, "SELECT max(id) FROM v_alerts"));
    assert_int_equal(ACTIVE(f), 1);
}

/* A removed rule: its alert is cleared by the reload without a reading, with the figures of
 * the raise and a message that says why; the other rule's alert and state topic stay. */
static void test_removed_rule_cleared_on_reload(void **state) {
    fixture *f = *state;
    run r;
    start(f, &r);
    feed(&r, "boiler", "temp", "31"); /* hot raised */
    feed(&r, "tank", "temp", "3");    /* cold raised */
    reload(&r, f->cfg->rules, 1);     /* "cold" removed, "hot" unchanged */
    feed(&r, "tank", "temp", "2");    /* no rule for it any more: nothing */
    feed(&r, "boiler", "temp", "33"); /* hot: still the same episode */
    stop(&r);

    assert_int_equal(ROWS(f, "1"), 3);
    assert_int_equal(ROWS(f, "rule = 'cold' AND state = 'cleared' AND kind = 'low' AND value = 3 "
                             "AND threshold = 5 AND severity = 'warning' AND detail IS NULL AND "
                             "ts_ms = 1700000001000"),
                     1);
    char msg[256];
    query_text(f->db, "SELECT message FROM v_alerts WHERE state = 'cleared'", msg, sizeof(msg));
    assert_string_equal(msg, "low alert on temp of tank cleared on reload: rule cold is no longer "
                             "in the configuration");
    query_text(f->db, "SELECT sensor || '/' || kind || '/' || rule FROM v_active_alerts", msg,
               sizeof(msg));
    assert_string_equal(msg, "boiler/high/hot");
    assert_int_equal(ACTIVE(f), 1);
    /* The two series may be on different workers: only the events of each are in order. */
    const sent *ev[8];
    assert_int_equal(events(&r.sink, ev, 8), 3);
    const sent *last = NULL;
    for (int i = 0; i < 3; i++) {
        last = strcmp(ev[i]->topic, "iotgw/alerts/tank/temp") == 0 ? ev[i] : last;
    }
    assert_non_null(last);
    assert_non_null(strstr(last->payload, "\"state\":\"cleared\""));
    assert_non_null(strstr(last->payload, "cleared on reload: rule cold"));
    assert_string_equal(retained(&r.sink, "iotgw/state/tank/temp/low"), "");
    assert_non_null(strstr(retained(&r.sink, "iotgw/state/boiler/temp/high"), "\"value\":31"));

    /* Nothing of it is left for the next start to clear. */
    start(f, &r);
    stop(&r);
    assert_int_equal(ROWS(f, "1"), 3);
}

/* A rule that no longer covers the series, and one that no longer checks that kind. */
static void test_rule_no_longer_covers_series_or_kind(void **state) {
    fixture *f = *state;
    run r;
    start(f, &r);
    feed(&r, "boiler", "temp", "31");
    feed(&r, "tank", "temp", "3");
    an_rule next[2];
    memcpy(next, f->cfg->rules, sizeof(next));
    snprintf(next[0].metric_glob, sizeof(next[0].metric_glob), "pressure");
    next[1].threshold.has_below = false;
    next[1].threshold.has_above = true;
    next[1].threshold.above = 50;
    next[1].threshold.clear_below = 50;
    reload(&r, next, 2);
    feed(&r, "boiler", "temp", "60"); /* cold now checks above 50 on temp: raises */
    stop(&r);

    char msg[256];
    query_text(f->db, "SELECT message FROM v_alerts WHERE rule = 'hot' AND state = 'cleared'", msg,
               sizeof(msg));
    assert_string_equal(msg, "high alert on temp of boiler cleared on reload: rule hot no longer "
                             "applies to this series");
    query_text(f->db, "SELECT message FROM v_alerts WHERE rule = 'cold' AND state = 'cleared'", msg,
               sizeof(msg));
    assert_string_equal(msg, "low alert on temp of tank cleared on reload: rule cold no longer "
                             "checks for low alerts");
    query_text(f->db, "SELECT sensor || '/' || kind || '/' || rule FROM v_active_alerts", msg,
               sizeof(msg));
    assert_string_equal(msg, "boiler/high/cold");
    assert_int_equal(ACTIVE(f), 1);
    assert_string_equal(retained(&r.sink, "iotgw/state/tank/temp/low"), "");
    assert_non_null(strstr(retained(&r.sink, "iotgw/state/boiler/temp/high"), "\"rule\":\"cold\""));
}

/* An unchanged rule that moved in the list (a rule inserted before it): its alert goes on,
 * and its clear empties the retained state (the writer knows active alerts by rule name). */
static void test_unchanged_rule_moved_keeps_alert(void **state) {
    fixture *f = *state;
    run r;
    start(f, &r);
    feed(&r, "boiler", "temp", "31");
    an_rule next[3];
    threshold_rule(&next[0], "limit", true, 100, 100, AN_SEV_INFO);
    memcpy(&next[1], f->cfg->rules, 2 * sizeof(an_rule));
    reload(&r, next, 3);
    feed(&r, "boiler", "temp", "33");
    feed(&r, "boiler", "temp", "25");
    stop(&r);
    assert_int_equal(ROWS(f, "1"), 2);
    assert_int_equal(ROWS(f, "state = 'cleared' AND rule = 'hot' AND value = 25"), 1);
    assert_int_equal(ACTIVE(f), 0);
    assert_string_equal(retained(&r.sink, "iotgw/state/boiler/temp/high"), "");
}

/* A rate rule whose limit changed: the next rate is measured from the latest reading before
 * the reload (not from the raise), and judged by the new limit. */
static void test_changed_rate_rule_goes_on_from_latest_reading(void **state) {
    fixture *f = *state;
    an_rule *fast = &f->cfg->rules[0];
    memset(fast, 0, sizeof(*fast));
    snprintf(fast->name, sizeof(fast->name), "fast");
    snprintf(fast->sensor_glob, sizeof(fast->sensor_glob), "*");
    snprintf(fast->metric_glob, sizeof(fast->metric_glob), "level");
    fast->has_rate = true;
    fast->rate.above = 5;
    f->cfg->n_rules = 1;
    run r;
    start(f, &r);
    feed(&r, "tank", "level", "10");
    feed(&r, "tank", "level", "20"); /* 10/s: raised */
    feed(&r, "tank", "level", "30"); /* 10/s: still raised */
    an_rule next = *fast;
    next.rate.above = 8;
    reload(&r, &next, 1);
    feed(&r, "tank", "level", "38"); /* 8/s from 30 (9/s from the raise): cleared */
    feed(&r, "tank", "level", "50"); /* 12/s: raised by the new rule */
    stop(&r);
    assert_int_equal(ROWS(f, "1"), 3);
    assert_int_equal(ROWS(f, "state = 'cleared' AND value = 38 AND threshold = 8 AND detail = 8"),
                     1);
    assert_int_equal(ROWS(f, "state = 'raised' AND value = 50 AND threshold = 8"), 1);
    assert_int_equal(ACTIVE(f), 1);
}

/* A stale rule whose silence limit changed: the open alert goes on (the stream's clock passing
 * the new limit raises nothing more) and the series' next reading clears it, with the whole
 * silence. */
static void test_changed_stale_rule_goes_on(void **state) {
    fixture *f = *state;
    an_rule *quiet = &f->cfg->rules[0];
    memset(quiet, 0, sizeof(*quiet));
    snprintf(quiet->name, sizeof(quiet->name), "quiet");
    snprintf(quiet->sensor_glob, sizeof(quiet->sensor_glob), "*");
    snprintf(quiet->metric_glob, sizeof(quiet->metric_glob), "level");
    quiet->has_stale = true;
    quiet->stale.after_ms = 10000;
    f->cfg->n_rules = 1;
    run r;
    start(f, &r);
    feed(&r, "tank", "level", "1");
    /* The replay's clock is the stream: the pump's readings move it on. */
    r.t = T0 + 5000;
    feed(&r, "pump", "level", "1");
    r.t = T0 + 12000;
    feed(&r, "pump", "level", "1"); /* tank silent for 12 s: raised */
    an_rule next = *quiet;
    next.stale.after_ms = 30000;
    reload(&r, &next, 1);
    r.t = T0 + 40000;
    feed(&r, "pump", "level", "1"); /* tank silent for 40 s: still the one episode */
    feed(&r, "tank", "level", "2"); /* at 41 s: cleared */
    stop(&r);
    assert_int_equal(ROWS(f, "1"), 2);
    assert_int_equal(ROWS(f, "sensor = 'tank' AND state = 'raised' AND detail = 12000"), 1);
    assert_int_equal(ROWS(f, "sensor = 'tank' AND state = 'cleared' AND detail = 41000 AND "
                             "threshold = 30000"),
                     1);
    assert_int_equal(ACTIVE(f), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_changed_limit_keeps_alert_then_clears_by_new_level,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_limit_above_value_clears_at_next_reading, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_removed_rule_cleared_on_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_no_longer_covers_series_or_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_rule_moved_keeps_alert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_rate_rule_goes_on_from_latest_reading, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_changed_stale_rule_goes_on, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
