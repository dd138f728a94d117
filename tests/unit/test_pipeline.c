/* The pipeline without a broker: inline decode (as replay does), a recording sink in place of
 * MQTT, and a real SQLite file in a temporary directory. */
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "config.h"
#include "pipeline.h"

#include "test_pipeline_fixture.h"

static int setup(void **state) {
    fixture *f = fixture_new("iotgw-test");
    if (f == NULL) {
        return -1;
    }
    f->cfg->n_rules = 1;
    threshold_rule(&f->cfg->rules[0], "hot", true, 30, 28, AN_SEV_CRITICAL);
    *state = f;
    return 0;
}

static void feed(gw_pipeline *p, const char *topic, const char *payload, int64_t ts) {
    gw_pipeline_decode(p, topic, strlen(topic), payload, strlen(payload), ts);
}

static void test_every_reading_is_stored(void **state) {
    fixture *f = *state;
    f->cfg->pipeline.workers = 3;
    f->cfg->storage.batch_rows = 100;
    gw_pipeline *p;
    char err[256];
    gw_pipeline_opts o = {.inline_decode = true};
    assert_int_equal(gw_pipeline_new(&p, f->cfg, &o, err, sizeof(err)), 0);
    assert_int_equal(gw_pipeline_start(p), 0);
    enum { N = 20000 };
    char topic[64], payload[32];
    for (int i = 0; i < N; i++) {
        snprintf(topic, sizeof(topic), "sensors/s%03d/level", i % 500);
        snprintf(payload, sizeof(payload), "%d", i);
        feed(p, topic, payload, 1700000000000 + i);
    }
    feed(p, "sensors/x/level", "not a number", 0);
    feed(p, "elsewhere/x", "1", 0);
    gw_pipeline_stop(p);
    gw_pipeline_stats st;
    gw_pipeline_stats_get(p, &st);
    assert_int_equal(st.messages_in, N + 2);
    assert_int_equal(st.readings, N);
    assert_int_equal(st.rows_stored, N);
    assert_int_equal(st.rows_failed, 0);
    assert_int_equal(st.series, 500);
    assert_int_equal(st.decode_errors[GW_DEC_NOT_NUMERIC], 1);
    assert_int_equal(st.decode_errors[GW_DEC_NO_ROUTE], 1);
    gw_pipeline_free(p);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM v_readings"), N);
    assert_int_equal(query_int(f->db, "SELECT sum(value) FROM v_readings"),
                     (int64_t)N * (N - 1) / 2);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM series"), 500);
}

typedef struct sent {
    char topic[128];
    char payload[1024];
    bool retained;
    int64_t id;
} sent;

typedef struct rec_sink {
    gw_pipeline *p;
    pthread_mutex_t mu;
    sent msgs[64];
    int n;
    int fail_first; /* calls to refuse, as a disconnected client does */
} rec_sink;

static int rec_send(void *ctx, const char *topic, const char *payload, size_t len, int qos,
                    bool retained, int64_t id) {
    rec_sink *s = ctx;
    assert_int_equal(qos, 1);
    pthread_mutex_lock(&s->mu);
    if (s->fail_first > 0) {
        s->fail_first--;
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    sent *m = &s->msgs[s->n++];
    snprintf(m->topic, sizeof(m->topic), "%s", topic);
    snprintf(m->payload, sizeof(m->payload), "%.*s", (int)len, payload);
    m->retained = retained;
    m->id = id;
    pthread_mutex_unlock(&s->mu);
    if (id != 0) {
        gw_pipeline_alert_delivered(s->p, id);
    }
    return 0;
}

static const gw_sink_ops rec_ops = {.send = rec_send};

static void test_alerts_are_stored_then_published_in_order(void **state) {
    fixture *f = *state;
    rec_sink sink = {.fail_first = 2};
    pthread_mutex_init(&sink.mu, NULL);
    gw_pipeline *p;
    char err[256];
    gw_pipeline_opts o = {.inline_decode = true, .sink = &rec_ops, .sink_ctx = &sink};
    assert_int_equal(gw_pipeline_new(&p, f->cfg, &o, err, sizeof(err)), 0);
    sink.p = p;
    assert_int_equal(gw_pipeline_start(p), 0);
    const char *values[] = {"25", "31", "33", "29", "27", "40"};
    for (int i = 0; i < 6; i++) {
        feed(p, "sensors/boiler/temp", values[i], 1700000000000 + i * 1000);
    }
    feed(p, "sensors/boiler/pressure", "99", 1700000000000);
    gw_pipeline_stop(p);
    gw_pipeline_stats st;
    gw_pipeline_stats_get(p, &st);
    assert_int_equal(st.alerts, 3);
    assert_int_equal(st.alerts_published, 3);
    gw_pipeline_free(p);

    /* raised 31, cleared 27, raised 40: each an alert message then its retained state. */
    assert_int_equal(sink.n, 6);
    assert_string_equal(sink.msgs[0].topic, "iotgw/alerts/boiler/temp");
    assert_false(sink.msgs[0].retained);
    assert_non_null(strstr(sink.msgs[0].payload, "\"state\":\"raised\""));
    assert_non_null(strstr(sink.msgs[0].payload, "\"value\":31,"));
    assert_non_null(strstr(sink.msgs[0].payload, "\"severity\":\"critical\""));
    assert_non_null(strstr(sink.msgs[0].payload, "\"ts\":\"2023-11-14T22:13:21.000Z\""));
    assert_string_equal(sink.msgs[1].topic, "iotgw/state/boiler/temp/high");
    assert_true(sink.msgs[1].retained);
    assert_string_equal(sink.msgs[1].payload, sink.msgs[0].payload);
    assert_non_null(strstr(sink.msgs[2].payload, "\"state\":\"cleared\""));
    assert_true(sink.msgs[3].retained);
    assert_string_equal(sink.msgs[3].payload, "");
    assert_true(sink.msgs[0].id < sink.msgs[2].id && sink.msgs[2].id < sink.msgs[4].id);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM alerts WHERE published = 1"), 3);
    pthread_mutex_destroy(&sink.mu);
}

/* An alert committed in a run whose broker never took it is sent by the next run. */
static void test_outbox_is_resent_after_restart(void **state) {
    fixture *f = *state;
    gw_pipeline *p;
    char err[256];
    gw_pipeline_opts o = {.inline_decode = true};
    assert_int_equal(gw_pipeline_new(&p, f->cfg, &o, err, sizeof(err)), 0);
    assert_int_equal(gw_pipeline_start(p), 0);
    feed(p, "sensors/a/temp", "50", 1700000000000);
    gw_pipeline_free(p);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM alerts WHERE published = 0"), 1);

    rec_sink sink = {0};
    pthread_mutex_init(&sink.mu, NULL);
    gw_pipeline_opts o2 = {.inline_decode = true, .sink = &rec_ops, .sink_ctx = &sink};
    assert_int_equal(gw_pipeline_new(&p, f->cfg, &o2, err, sizeof(err)), 0);
    sink.p = p;
    assert_int_equal(gw_pipeline_start(p), 0);
    gw_pipeline_free(p);
    assert_int_equal(sink.n, 2);
    assert_string_equal(sink.msgs[0].topic, "iotgw/alerts/a/temp");
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM alerts WHERE published = 0"), 0);
    pthread_mutex_destroy(&sink.mu);
}

/* A full ingest queue: drop_newest drops after the bounded wait, counts it, and keeps what it
 * accepted. */
static void test_ingest_overflow_drops_and_counts(void **state) {
    fixture *f = *state;
    f->cfg->pipeline.queue_items = 4;
    f->cfg->pipeline.ingest_wait_ms = 5;
    gw_pipeline *p;
    char err[256];
    assert_int_equal(gw_pipeline_new(&p, f->cfg, NULL, err, sizeof(err)), 0);
    /* Not started: nothing drains the ingest queue. */
    for (int i = 0; i < 6; i++) {
        int rc = gw_pipeline_ingest(p, "sensors/a/level", 15, "1", 1);
        assert_int_equal(rc, i < 4 ? 0 : GW_ETIMEDOUT);
    }
    gw_pipeline_stats st;
    gw_pipeline_stats_get(p, &st);
    assert_int_equal(st.messages_in, 4);
    assert_int_equal(st.ingest_dropped, 2);
    assert_int_equal(st.queues[0].drops, 2);
    assert_int_equal(st.queues[0].hwm, 4);
    assert_string_equal(st.queues[0].name, "ingest");
    assert_int_equal(gw_pipeline_start(p), 0);
    gw_pipeline_stop(p);
    gw_pipeline_stats_get(p, &st);
    assert_int_equal(st.rows_stored, 4);
    assert_int_equal(gw_pipeline_ingest(p, "sensors/a/level", 15, "1", 1), GW_ECLOSED);
    gw_pipeline_free(p);
}

/* Two rules of one kind on one series share the retained state topic: when the stricter one
 * clears, the state shows the one still raised, not nothing. */
static void test_state_topic_keeps_other_active_rule(void **state) {
    fixture *f = *state;
    f->cfg->n_rules = 2;
    an_rule *hot = &f->cfg->rules[1];
    *hot = f->cfg->rules[0];
    snprintf(f->cfg->rules[0].name, sizeof(f->cfg->rules[0].name), "warm");
    snprintf(hot->name, sizeof(hot->name), "hot");
    hot->threshold.above = 40;
    hot->threshold.clear_below = 40;
    rec_sink sink = {0};
    pthread_mutex_init(&sink.mu, NULL);
    gw_pipeline *p;
    char err[256];
    gw_pipeline_opts o = {.inline_decode = true, .sink = &rec_ops, .sink_ctx = &sink};
    assert_int_equal(gw_pipeline_new(&p, f->cfg, &o, err, sizeof(err)), 0);
    sink.p = p;
    assert_int_equal(gw_pipeline_start(p), 0);
    feed(p, "sensors/oven/temp", "45", 1700000000000);
    feed(p, "sensors/oven/temp", "35", 1700000001000);
    feed(p, "sensors/oven/temp", "20", 1700000002000);
    gw_pipeline_free(p);
    /* warm raised, hot raised, hot cleared, warm cleared: each alert then its state. */
    assert_int_equal(sink.n, 8);
    assert_non_null(strstr(sink.msgs[3].payload, "\"rule\":\"hot\",\"value\":45"));
    assert_non_null(strstr(sink.msgs[4].payload, "\"rule\":\"hot\""));
    assert_non_null(strstr(sink.msgs[4].payload, "\"state\":\"cleared\""));
    assert_string_equal(sink.msgs[5].topic, "iotgw/state/oven/temp/high");
    assert_non_null(strstr(sink.msgs[5].payload, "\"rule\":\"warm\""));
    assert_non_null(strstr(sink.msgs[5].payload, "\"state\":\"raised\""));
    assert_string_equal(sink.msgs[7].payload, "");
    pthread_mutex_destroy(&sink.mu);
}

/* Through the decode thread (as iotgw run does), which hands over what it decoded at once;
 * the time is the arrival time. */
static void ingest(gw_pipeline *p, const char *topic, const char *payload) {
    assert_int_equal(gw_pipeline_ingest(p, topic, strlen(topic), payload, strlen(payload)), 0);
}

/* Polls cond(p) every 10 ms for up to 30 s. */
static bool wait_until(bool (*cond)(gw_pipeline *p, void *arg), gw_pipeline *p, void *arg) {
    for (int i = 0; i < 3000; i++) {
        if (cond(p, arg)) {
            return true;
        }
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

static bool storage_is(gw_pipeline *p, void *kind) {
    gw_sf_status st;
    gw_pipeline_storage_status(p, &st);
    return st.kind == *(gw_sf_kind *)kind;
}

static bool sink_has(gw_pipeline *p, void *arg) {
    (void)p;
    rec_sink *s = arg;
    pthread_mutex_lock(&s->mu);
    bool found = false;
    for (int i = 0; i < s->n && !found; i++) {
        found = strstr(s->msgs[i].payload, "\"id\":null,\"stored\":false") != NULL &&
                !s->msgs[i].retained;
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}

static sqlite3 *lock_db(const char *path) {
    sqlite3 *h;
    assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 10000);
    assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    return h;
}

static void unlock_db(sqlite3 *h) {
    assert_int_equal(sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
}

/* Another program holds the write lock past storage.busy_timeout: the writer reports the
 * fault, publishes the alert at once without an outbox id, keeps the readings, and once the
 * lock is gone stores all of them and the alert (marked published: its PUBACK came). */
static void test_storage_locked_holds_and_recovers(void **state) {
    fixture *f = *state;
    f->cfg->storage.busy_timeout_ms = 50;
    rec_sink sink = {0};
    pthread_mutex_init(&sink.mu, NULL);
    gw_pipeline *p;
    char err[256];
    gw_pipeline_opts o = {.sink = &rec_ops, .sink_ctx = &sink};
    assert_int_equal(gw_pipeline_new(&p, f->cfg, &o, err, sizeof(err)), 0);
    sink.p = p;
    assert_int_equal(gw_pipeline_start(p), 0);
    char payload[32];
    for (int i = 0; i < 10; i++) {
        snprintf(payload, sizeof(payload), "%d", i);
        ingest(p, "sensors/a/level", payload);
    }
    gw_sf_kind ok = GW_SF_OK, locked = GW_SF_LOCKED;
    sqlite3 *h = lock_db(f->db);
    for (int i = 10; i < 110; i++) {
        snprintf(payload, sizeof(payload), "%d", i);
        ingest(p, "sensors/a/level", payload);
    }
    assert_true(wait_until(storage_is, p, &locked));
    ingest(p, "sensors/boiler/temp", "35");
    assert_true(wait_until(sink_has, p, &sink));
    gw_sf_status st;
    gw_pipeline_storage_status(p, &st);
    assert_int_equal(st.faults, 1);
    assert_non_null(strstr(st.error, "locked"));
    unlock_db(h);
    assert_true(wait_until(storage_is, p, &ok));
    gw_pipeline_stop(p);
    gw_pipeline_stats stats;
    gw_pipeline_stats_get(p, &stats);
    assert_int_equal(stats.rows_stored, 111);
    assert_int_equal(stats.rows_failed, 0);
    assert_int_equal(stats.storage.readings_shed, 0);
    assert_int_equal(stats.storage.alerts_unstored, 0);
    assert_int_equal(stats.alerts, 1);
    gw_pipeline_free(p);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM v_readings"), 111);
    assert_int_equal(query_int(f->db, "SELECT sum(value) FROM v_readings WHERE sensor = 'a'"),
                     109 * 110 / 2);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM v_alerts WHERE published = 1"), 1);
    pthread_mutex_destroy(&sink.mu);
}

static bool all_taken(gw_pipeline *p, void *n) {
    gw_sf_status st;
    gw_pipeline_storage_status(p, &st);
    return st.readings_held + st.readings_shed == *(uint64_t *)n;
}

/* The hold is bounded by storage.fault_buffer: the oldest readings are kept, the newer ones
 * shed and counted (also as rows_failed). */
static void test_storage_fault_sheds_beyond_bound(void **state) {
    fixture *f = *state;
    f->cfg->storage.busy_timeout_ms = 20;
    f->cfg->storage.batch_rows = 1000;
    f->cfg->storage.fault_buffer = 2000;
    gw_pipeline *p;
    char err[256];
    gw_pipeline_opts o = {0};
    assert_int_equal(gw_pipeline_new(&p, f->cfg, &o, err, sizeof(err)), 0);
    assert_int_equal(gw_pipeline_start(p), 0);
    sqlite3 *h = lock_db(f->db);
    char payload[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(payload, sizeof(payload), "%d", i);
        ingest(p, "sensors/a/level", payload);
    }
    uint64_t n = 5000;
    assert_true(wait_until(all_taken, p, &n));
    gw_sf_status st;
    gw_pipeline_storage_status(p, &st);
    assert_int_equal(st.kind, GW_SF_LOCKED);
    assert_int_equal(st.readings_held, 2000);
    assert_int_equal(st.readings_shed, 3000);
    assert_int_equal(st.readings_shed_now, 3000);
    unlock_db(h);
    gw_sf_kind ok = GW_SF_OK;
    assert_true(wait_until(storage_is, p, &ok));
    gw_pipeline_stop(p);
    gw_pipeline_stats stats;
    gw_pipeline_stats_get(p, &stats);
    assert_int_equal(stats.rows_stored, 2000);
    assert_int_equal(stats.rows_failed, 3000);
    gw_pipeline_free(p);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM v_readings"), 2000);
    assert_int_equal(query_int(f->db, "SELECT max(value) FROM v_readings"), 1999);
}

/* Stopping while the fault lasts: a last try, then what was not stored is reported and
 * counted, never silently dropped. */
static void test_storage_fault_at_stop_is_counted(void **state) {
    fixture *f = *state;
    f->cfg->storage.busy_timeout_ms = 20;
    gw_pipeline *p;
    char err[256];
    gw_pipeline_opts o = {0};
    assert_int_equal(gw_pipeline_new(&p, f->cfg, &o, err, sizeof(err)), 0);
    assert_int_equal(gw_pipeline_start(p), 0);
    sqlite3 *h = lock_db(f->db);
    ingest(p, "sensors/a/level", "1");
    ingest(p, "sensors/a/level", "2");
    gw_pipeline_stop(p);
    gw_pipeline_stats stats;
    gw_pipeline_stats_get(p, &stats);
    assert_int_equal(stats.rows_stored, 0);
    assert_int_equal(stats.rows_failed, 2);
    assert_int_equal(stats.storage.kind, GW_SF_LOCKED);
    gw_pipeline_free(p);
    unlock_db(h);
}

/* A database that cannot be opened: an error for replay and tests, a fault that the writer
 * retries with storage_retry (iotgw run); a file that is not an iotgw database stays an
 * error. */
static void test_storage_unavailable_at_start(void **state) {
    fixture *f = *state;
    char dir[160];
    snprintf(dir, sizeof(dir), "%s/later", f->dir);
    snprintf(f->cfg->storage.path, sizeof(f->cfg->storage.path), "%s/gw.db", dir);
    gw_pipeline *p;
    char err[256];
    gw_pipeline_opts o = {0};
    assert_int_not_equal(gw_pipeline_new(&p, f->cfg, &o, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "cannot open the database"));
    o.storage_retry = true;
    assert_int_equal(gw_pipeline_new(&p, f->cfg, &o, err, sizeof(err)), 0);
    gw_sf_status st;
    gw_pipeline_storage_status(p, &st);
    assert_int_equal(st.kind, GW_SF_UNAVAILABLE);
    assert_int_equal(gw_pipeline_start(p), 0);
    ingest(p, "sensors/a/level", "7");
    assert_int_equal(mkdir(dir, 0755), 0);
    gw_sf_kind ok = GW_SF_OK;
    assert_true(wait_until(storage_is, p, &ok));
    gw_pipeline_free(p);
    char path[200];
    snprintf(path, sizeof(path), "%s/gw.db", dir);
    assert_int_equal(query_int(path, "SELECT sum(value) FROM v_readings"), 7);

    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("not a database, but long enough to look like a header of one, or so\n", fp);
    fclose(fp);
    assert_int_equal(gw_pipeline_new(&p, f->cfg, &o, err, sizeof(err)), ST_ESCHEMA);
}

static void test_alert_json_escapes(void **state) {
    (void)state;
    st_alert_out a = {
        .id = 7,
        .gateway = "g",
        .sensor = "he said \"hi\"",
        .metric = "t\\x",
        .kind = "high",
        .state = "raised",
        .severity = "info",
        .rule = "r",
        .message = "line\nbreak\x01",
        .ts_ms = 1700000000123,
        .value = 0.1,
        .threshold = -2.5e-7,
    };
    char buf[1024];
    int n = gw_alert_json(&a, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(buf));
    assert_string_equal(buf, "{\"id\":7,\"gateway\":\"g\",\"sensor\":\"he said \\\"hi\\\"\","
                             "\"metric\":\"t\\\\x\",\"kind\":\"high\",\"state\":\"raised\","
                             "\"severity\":\"info\",\"rule\":\"r\",\"value\":0.1,"
                             "\"threshold\":-2.5e-07,"
                             "\"ts\":\"2023-11-14T22:13:20.123Z\","
                             "\"message\":\"line\\nbreak\\u0001\"}");
    assert_int_equal(gw_alert_json(&a, buf, 40), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_reading_is_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alerts_are_stored_then_published_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_outbox_is_resent_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_overflow_drops_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_topic_keeps_other_active_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_storage_locked_holds_and_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_storage_fault_sheds_beyond_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_storage_fault_at_stop_is_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_storage_unavailable_at_start, setup, teardown),
        cmocka_unit_test(test_alert_json_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
