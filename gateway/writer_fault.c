/* Writer stage, storage faults: entering and leaving a fault, the hold, alerts published
 * unstored, retries. The policy is in docs/history.md ("Storage faults"); the pieces that need
 * no SQLite are in store_fault.c. Writer thread only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "pipeline_internal.h"
#include "store_fault.h"
#include "writer_internal.h"

/* ---- status and fault transitions ---- */

/* Copies the writer's view into the pipeline's status (read by stats and MQTT). */
void writer__status_update(writer *w, bool transition, const char *error) {
    gw_pipeline *p = w->p;
    pthread_mutex_lock(&p->sf_mu);
    gw_sf_status *st = &p->sf;
    if (transition) {
        st->seq++;
        st->kind = w->fault;
        st->since_ms = w->fault != GW_SF_OK ? gw_now_ms() : 0;
    }
    if (error != NULL) {
        snprintf(st->error, sizeof(st->error), "%s", w->fault != GW_SF_OK ? error : "");
    }
    st->readings_held = w->fault != GW_SF_OK ? w->hold.n_readings : 0;
    st->rows_held = w->fault != GW_SF_OK ? gw_sf_hold_rows(&w->hold) : 0;
    st->readings_shed = w->hold.readings_shed;
    st->summaries_shed = w->hold.summaries_shed;
    st->preds_shed = w->hold.preds_shed;
    st->readings_shed_now = w->hold.readings_shed - w->ep.readings_shed;
    st->alerts_unstored = w->unstored.n;
    st->alerts_shed = w->unstored.shed;
    pthread_mutex_unlock(&p->sf_mu);
}

static double secs_since(int64_t mono_ms) {
    return (double)(gw_mono_ms() - mono_ms) / 1000.0;
}

/* A write failed with ST_E* `code` (reason `why`), or a retry did. */
void writer__enter_fault(writer *w, gw_sf_kind kind, const char *why) {
    st_db *db = w->p->db;
    gw_sf_kind was = w->fault;
    if (was == GW_SF_OK) {
        w->fault = kind;
        w->fault_mono_ms = gw_mono_ms();
        w->retry_delay_ms = gw_sf_next_delay(0);
        w->ep.readings_shed = w->hold.readings_shed;
        w->ep.summaries_shed = w->hold.summaries_shed;
        w->ep.preds_shed = w->hold.preds_shed;
        w->ep.alerts_shed = w->unstored.shed;
        w->shed_logged = false;
        w->fault_rl = (gw_ratelimit){0, 0, 0, 1, 60000};
        if (db != NULL) {
            (void)st_db_set_busy_timeout(db, FAULT_BUSY_MS);
        }
        pthread_mutex_lock(&w->p->sf_mu);
        w->p->sf.faults++;
        pthread_mutex_unlock(&w->p->sf_mu);
        GW_ERROR("writer",
                 "storage fault (%s): %s. Until it clears: alerts are still published (with "
                 "\"id\": null) and kept in memory (up to %d) for the outbox; readings, "
                 "summaries and predictions are kept in memory (up to %zu rows) and newer ones "
                 "beyond are shed (counted); retrying every %.1f s to %.0f s",
                 gw_sf_kind_name(kind), why, GW_SF_MAX_ALERTS, w->hold.max_rows,
                 GW_SF_RETRY_FIRST_MS / 1000.0, GW_SF_RETRY_MAX_MS / 1000.0);
    } else if (kind != was) {
        w->fault = kind;
        w->retry_delay_ms = gw_sf_next_delay(w->retry_delay_ms);
        GW_ERROR("writer", "storage fault is now %s (was %s): %s", gw_sf_kind_name(kind),
                 gw_sf_kind_name(was), why);
    } else {
        w->retry_delay_ms = gw_sf_next_delay(w->retry_delay_ms);
        gw_log_limited(&w->fault_rl, GW_LOG_ERROR, "writer",
                       "storage still failing (%s) after %.0f s: %s; %zu rows and %zu alerts in "
                       "memory, %llu readings shed",
                       gw_sf_kind_name(kind), secs_since(w->fault_mono_ms), why,
                       gw_sf_hold_rows(&w->hold), w->unstored.n,
                       (unsigned long long)(w->hold.readings_shed - w->ep.readings_shed));
    }
    w->next_retry_ms = gw_mono_ms() + w->retry_delay_ms;
    writer__status_update(w, kind != was, why);
}

/* The retry wrote everything: back to normal. */
static void leave_fault(writer *w, size_t readings, size_t summaries, size_t preds, size_t alerts) {
    gw_sf_kind was = w->fault;
    w->fault = GW_SF_OK;
    if (w->p->db != NULL) {
        (void)st_db_set_busy_timeout(w->p->db, (int)w->p->cfg->storage.busy_timeout_ms);
    }
    GW_INFO("writer",
            "storage recovered after %.1f s (%s): stored the %zu readings, %zu summaries, "
            "%zu predictions and %zu alerts kept in memory; shed %llu readings, %llu summaries "
            "and %llu predictions; %llu alerts published but never stored",
            secs_since(w->fault_mono_ms), gw_sf_kind_name(was), readings, summaries, preds, alerts,
            (unsigned long long)(w->hold.readings_shed - w->ep.readings_shed),
            (unsigned long long)(w->hold.summaries_shed - w->ep.summaries_shed),
            (unsigned long long)(w->hold.preds_shed - w->ep.preds_shed),
            (unsigned long long)(w->unstored.shed - w->ep.alerts_shed));
    writer__status_update(w, true, "");
}

/* Adds b's rows to the hold; what does not fit is shed, counted and logged once per fault. */
void writer__hold_batch(writer *w, const gw_batch *b) {
    gw_pipeline *p = w->p;
    uint64_t r0 = w->hold.readings_shed, s0 = w->hold.summaries_shed;
    if (gw_sf_hold_add(&w->hold, b, p->cfg->storage.raw) == 0) {
        return;
    }
    atomic_fetch_add(&p->rows_failed, w->hold.readings_shed - r0);
    atomic_fetch_add(&p->summaries_failed, w->hold.summaries_shed - s0);
    if (!w->shed_logged) {
        w->shed_logged = true;
        GW_WARN("writer",
                "storage %s: %zu rows held in memory (storage.fault_buffer); newer readings, "
                "summaries and predictions are shed until it recovers (counted as "
                "readings_shed)",
                w->fault != GW_SF_OK ? "failing" : "busy", w->hold.max_rows);
    }
}

/* Storage is failing: the alert goes out now, without an outbox id, and is kept (bounded) to
 * be written once storage recovers. */
void writer__publish_unstored(writer *w, const gw_alert_ev *ev) {
    bool kept;
    int64_t tmp = gw_sf_alerts_add(&w->unstored, ev, &kept);
    char msg[512];
    st_alert_row row;
    if (!kept) {
        gw_log_limited(&w->p->store_rl, GW_LOG_WARN, "writer",
                       "%d alerts kept in memory while storage fails: this one is published "
                       "but will not be stored",
                       GW_SF_MAX_ALERTS);
    }
    writer__alert_row(w, ev, 0, msg, sizeof(msg), &row);
    gw_pub_item *it = writer__alert_item(w, ev, &row, tmp);
    if (it == NULL) {
        GW_ERROR("writer", "out of memory: an alert of %s not published",
                 gw_series_get(w->p->series, ev->series)->sensor);
        return;
    }
    writer__active_update(w, ev, it);
    writer__hand_to_publisher(w, it);
    writer__status_update(w, false, NULL);
}

/* ---- retries ---- */

static int resend_one(void *ctx, const st_alert_out *a) {
    writer *w = ctx;
    gw_pub_item *it = writer__make_pub_item(w->p, a);
    if (it != NULL) {
        writer__hand_to_publisher(w, it);
    }
    return 0;
}

/* The outbox: what a previous run committed but could not publish goes first. */
void writer__resend_outbox(writer *w) {
    gw_pipeline *p = w->p;
    if (w->outbox_sent || p->db == NULL) {
        return;
    }
    w->outbox_sent = true;
    if (p->opts.sink != NULL) {
        int n = st_db_unpublished(p->db, 0, 100000, resend_one, w);
        if (n > 0) {
            GW_INFO("writer", "resending %d unpublished alerts from the outbox", n);
        }
    }
}

/* Opens the database when it is not open, or reopens it after a read-only or unavailable
 * fault (the file may have been replaced, or its mount changed). Returns 0 when open. */
static int open_db(writer *w) {
    gw_pipeline *p = w->p;
    if (p->db != NULL && w->fault != GW_SF_READONLY && w->fault != GW_SF_UNAVAILABLE) {
        return 0;
    }
    if (p->db != NULL) {
        w->dup_closed += (uint64_t)st_db_duplicates(p->db);
        st_db_close(p->db);
        p->db = NULL;
        /* Another file may be there now: series ids are looked up again. */
        writer__forget_series(w, 0);
    }
    st_db_opts o = writer__db_opts(p->cfg);
    o.busy_timeout_ms = FAULT_BUSY_MS;
    char why[256] = "";
    int rc = st_db_open(&p->db, p->cfg->storage.path, &o, why, sizeof(why));
    if (rc != 0) {
        p->db = NULL;
        char msg[300];
        snprintf(msg, sizeof(msg), "cannot open %.120s: %.160s", p->cfg->storage.path, why);
        writer__enter_fault(w, rc == ST_ESCHEMA ? GW_SF_IO : gw_sf_classify(rc, true), msg);
        return rc;
    }
    GW_INFO("writer", "database %s opened", p->cfg->storage.path);
    writer__resend_outbox(w);
    return 0;
}

/* One retry: the held rows and the unstored alerts in one transaction. */
void writer__retry(writer *w) {
    gw_pipeline *p = w->p;
    if (open_db(w) != 0 || writer__ensure_txn(w) != 0) {
        return;
    }
    gw_sf_cursor c = {0};
    int rc = 0;
    while (rc == 0 && gw_sf_hold_next(&w->hold, &c, w->scratch)) {
        rc = writer__insert_rows(w, w->scratch);
    }
    for (size_t i = 0; i < w->unstored.n && rc == 0; i++) {
        gw_sf_alert *a = &w->unstored.items[i];
        rc = writer__insert_alert(w, &w->unstored.evs[i], &a->db_id, NULL);
        if (rc == 0 && a->acked) {
            rc = st_db_mark_published(p->db, a->db_id);
        }
    }
    if (rc != 0) {
        writer__fail_txn(w, rc);
        return;
    }
    size_t readings = w->hold.n_readings, summaries = w->hold.n_summaries;
    size_t preds = w->hold.n_preds, alerts = w->unstored.n;
    if (writer__commit(w) != 0) {
        return;
    }
    atomic_fetch_add(&p->alerts, (uint64_t)alerts);
    for (size_t i = 0; i < alerts; i++) {
        const gw_sf_alert *a = &w->unstored.items[i];
        if (!a->acked) {
            gw_sf_alerts_written(&w->unstored, a->tmp_id, a->db_id);
        }
    }
    gw_sf_alerts_clear(&w->unstored);
    leave_fault(w, readings, summaries, preds, alerts);
}

/* At stop, after a last retry: what storage never got. */
void writer__report_losses(writer *w) {
    gw_pipeline *p = w->p;
    uint64_t readings = w->hold.n_readings, summaries = w->hold.n_summaries;
    GW_ERROR("writer",
             "stopping while storage fails (%s): %zu readings, %zu summaries, %zu predictions "
             "and %zu published alerts are not stored",
             gw_sf_kind_name(w->fault), w->hold.n_readings, w->hold.n_summaries, w->hold.n_preds,
             w->unstored.n);
    w->hold.readings_shed += readings;
    w->hold.summaries_shed += summaries;
    w->hold.preds_shed += w->hold.n_preds;
    w->unstored.shed += w->unstored.n;
    atomic_fetch_add(&p->rows_failed, readings);
    atomic_fetch_add(&p->summaries_failed, summaries);
    gw_sf_hold_clear(&w->hold, 0);
    gw_sf_alerts_clear(&w->unstored);
    writer__status_update(w, false, NULL);
}
