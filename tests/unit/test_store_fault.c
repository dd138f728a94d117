/* Storage faults without SQLite: the kinds, the backoff, the bounded hold, the unstored
 * alerts and the status JSON. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline_internal.h"
#include "store_fault.h"

static void test_classify(void **state) {
    (void)state;
    assert_int_equal(gw_sf_classify(ST_OK, false), GW_SF_OK);
    assert_int_equal(gw_sf_classify(ST_EFULL, false), GW_SF_FULL);
    assert_int_equal(gw_sf_classify(ST_EBUSY, false), GW_SF_LOCKED);
    assert_int_equal(gw_sf_classify(ST_EREADONLY, false), GW_SF_READONLY);
    assert_int_equal(gw_sf_classify(ST_EIO, false), GW_SF_IO);
    assert_int_equal(gw_sf_classify(ST_ENOMEM, false), GW_SF_IO);
    /* A generic error while opening: the file cannot be opened (missing directory...). */
    assert_int_equal(gw_sf_classify(ST_EIO, true), GW_SF_UNAVAILABLE);
    assert_int_equal(gw_sf_classify(ST_EREADONLY, true), GW_SF_READONLY);
    assert_string_equal(gw_sf_kind_name(GW_SF_OK), "ok");
    assert_string_equal(gw_sf_kind_name(GW_SF_FULL), "full");
    assert_string_equal(gw_sf_kind_name(GW_SF_LOCKED), "locked");
    assert_string_equal(gw_sf_kind_name(GW_SF_READONLY), "read-only");
    assert_string_equal(gw_sf_kind_name(GW_SF_UNAVAILABLE), "unavailable");
    assert_string_equal(gw_sf_kind_name(GW_SF_IO), "io");
}

static void test_backoff(void **state) {
    (void)state;
    int64_t want[] = {500, 1000, 2000, 4000, 8000, 10000, 10000, 10000};
    int64_t d = 0;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        d = gw_sf_next_delay(d);
        assert_int_equal(d, want[i]);
    }
}

static gw_batch *batch(uint32_t readings, uint32_t summaries, uint32_t preds, int64_t base) {
    gw_batch *b = gw__batch_new();
    assert_non_null(b);
    for (uint32_t i = 0; i < readings; i++) {
        b->readings[b->n_readings++] = (an_reading){i % 7, NAN, base + i, (double)(base + i)};
    }
    for (uint32_t i = 0; i < summaries; i++) {
        b->summaries[b->n_summaries++] = (gw_summary_ev){.s = {.start_ms = base + i}, .series = i};
    }
    for (uint32_t i = 0; i < preds; i++) {
        b->preds[b->n_preds++] = (gw_pred_ev){.ts_ms = base + i, .series = i};
    }
    /* Alerts are never held: the writer publishes them. */
    b->alerts[b->n_alerts++] = (gw_alert_ev){.series = 1};
    return b;
}

/* The hold keeps the oldest rows up to its bound, sheds and counts the newer ones, and gives
 * them back in order, a batch at a time. */
static void test_hold_bound_and_order(void **state) {
    (void)state;
    gw_sf_hold h;
    gw_sf_hold_init(&h, 1000);
    int64_t base = 0;
    for (int i = 0; i < 10; i++) {
        gw_batch *b = batch(128, 2, 1, base);
        base += 128;
        size_t shed = gw_sf_hold_add(&h, b, true);
        /* 131 rows per batch: 7 batches fit (917), the 8th partly (83 of 131). */
        assert_int_equal(shed, i < 7 ? 0 : (i == 7 ? 131 - 83 : 131));
        free(b);
    }
    assert_int_equal(gw_sf_hold_rows(&h), 1000);
    assert_int_equal(h.n_readings, 7 * 128 + 83);
    assert_int_equal(h.n_summaries, 14);
    assert_int_equal(h.n_preds, 7);
    assert_int_equal(h.readings_shed, 10 * 128 - (7 * 128 + 83));
    assert_int_equal(h.summaries_shed, 6);
    assert_int_equal(h.preds_shed, 3);

    gw_batch *out = gw__batch_new();
    gw_sf_cursor c = {0};
    int64_t next = 0;
    size_t readings = 0, summaries = 0, preds = 0, batches = 0;
    while (gw_sf_hold_next(&h, &c, out)) {
        batches++;
        assert_int_equal(out->n_alerts, 0);
        assert_true(out->n_readings <= GW_BATCH_READINGS);
        for (uint32_t i = 0; i < out->n_readings; i++) {
            assert_int_equal(out->readings[i].ts_ms, next++);
        }
        readings += out->n_readings;
        summaries += out->n_summaries;
        preds += out->n_preds;
    }
    assert_int_equal(readings, h.n_readings);
    assert_int_equal(summaries, 14);
    assert_int_equal(preds, 7);
    assert_int_equal(batches, 8);

    /* Cleared: empty, the shed counts stay, and there is room again. */
    gw_sf_hold_clear(&h, 10);
    assert_int_equal(gw_sf_hold_rows(&h), 0);
    assert_null(h.readings); /* more than 2 x 10 rows' room: given back */
    assert_int_equal(h.readings_shed, 10 * 128 - (7 * 128 + 83));
    gw_batch *b = batch(5, 0, 0, 0);
    assert_int_equal(gw_sf_hold_add(&h, b, true), 0);
    assert_int_equal(h.n_readings, 5);
    /* storage.raw false: readings are neither held nor counted as shed. */
    assert_int_equal(gw_sf_hold_add(&h, b, false), 0);
    assert_int_equal(h.n_readings, 5);
    free(b);
    free(out);
    gw_sf_hold_free(&h);
}

/* A bound of 0 holds nothing: every row is shed and counted. */
static void test_hold_zero(void **state) {
    (void)state;
    gw_sf_hold h;
    gw_sf_hold_init(&h, 0);
    gw_batch *b = batch(3, 1, 1, 0);
    assert_int_equal(gw_sf_hold_add(&h, b, true), 5);
    assert_int_equal(gw_sf_hold_rows(&h), 0);
    assert_int_equal(h.readings_shed, 3);
    gw_batch *out = gw__batch_new();
    gw_sf_cursor c = {0};
    assert_false(gw_sf_hold_next(&h, &c, out));
    free(out);
    free(b);
    gw_sf_hold_free(&h);
}

static void test_unstored_alerts(void **state) {
    (void)state;
    gw_sf_alerts a = {0};
    gw_alert_ev ev = {.series = 3};
    bool kept;
    int64_t first = gw_sf_alerts_add(&a, &ev, &kept);
    assert_true(kept);
    assert_int_equal(first, -1);
    int64_t second = gw_sf_alerts_add(&a, &ev, &kept);
    assert_int_equal(second, -2);
    assert_int_equal(a.n, 2);
    /* A PUBACK before the alert is written: remembered with it. */
    assert_int_equal(gw_sf_alerts_acked(&a, second), 0);
    assert_false(a.items[0].acked);
    assert_true(a.items[1].acked);
    /* Written; the first was not acknowledged yet: its later PUBACK names its outbox id. */
    gw_sf_alerts_written(&a, first, 41);
    gw_sf_alerts_clear(&a);
    assert_int_equal(a.n, 0);
    assert_int_equal(gw_sf_alerts_acked(&a, first), 41);
    assert_int_equal(gw_sf_alerts_acked(&a, first), 0); /* only once */
    assert_int_equal(gw_sf_alerts_acked(&a, -99), 0);

    /* The bound: beyond it an alert still gets an id (to be published) but is not kept. */
    for (int i = 0; i < GW_SF_MAX_ALERTS; i++) {
        gw_sf_alerts_add(&a, &ev, &kept);
        assert_true(kept);
    }
    int64_t over = gw_sf_alerts_add(&a, &ev, &kept);
    assert_false(kept);
    assert_true(over < 0);
    assert_int_equal(a.n, GW_SF_MAX_ALERTS);
    assert_int_equal(a.shed, 1);
    gw_sf_alerts_free(&a);
}

static void test_status_json(void **state) {
    (void)state;
    gw_sf_status st = {0};
    char buf[512];
    assert_int_equal(gw_sf_status_json(&st, buf, sizeof(buf)), (int)strlen("{\"state\":\"ok\"}"));
    assert_string_equal(buf, "{\"state\":\"ok\"}");
    st.kind = GW_SF_FULL;
    st.since_ms = 1700000000123;
    snprintf(st.error, sizeof(st.error), "insert reading: database or disk is \"full\"");
    st.readings_held = 12;
    st.readings_shed_now = 3;
    st.readings_shed = 30; /* since start: not in the status topic */
    st.alerts_unstored = 2;
    int n = gw_sf_status_json(&st, buf, sizeof(buf));
    assert_int_equal(n, (int)strlen(buf));
    assert_string_equal(buf, "{\"state\":\"fault\",\"fault\":\"full\",\"error\":\"insert reading: "
                             "database or disk is \\\"full\\\"\",\"since\":"
                             "\"2023-11-14T22:13:20.123Z\",\"readings_held\":12,"
                             "\"readings_shed\":3,\"alerts_unstored\":2}");
    assert_int_equal(gw_sf_status_json(&st, buf, 40), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_hold_bound_and_order),
        cmocka_unit_test(test_hold_zero),
        cmocka_unit_test(test_unstored_alerts),
        cmocka_unit_test(test_status_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
