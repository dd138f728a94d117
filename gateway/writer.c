/* Writer stage: the one SQLite connection that writes. Batches rows into one transaction per
 * tick (storage.tick_ms) or per storage.batch_rows rows; a batch that carries an alert is
 * committed at once, so that alerts are never held back by batching. Alerts enter the outbox
 * in the transaction of the readings that caused them, and go to the publisher only after
 * the commit.
 *
 * Storage faults (docs/history.md): the rows of the open transaction are kept in memory (the
 * hold) until it commits. When a write fails, the transaction is rolled back and the writer
 * enters a fault: its alerts, and every alert after them, are published at once without an
 * outbox id and kept in memory; new rows join the hold up to storage.fault_buffer, and are
 * shed beyond it; every retry (backoff 0.5 s to 10 s) writes the hold and the kept alerts in
 * one transaction. The writer never waits for the fault to clear: it keeps taking batches,
 * so that the workers keep going and alerts keep flowing. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "clock.h"
#include "decode.h"
#include "pipeline_internal.h"
#include "restore.h"
#include "retain.h"
#include "rule.h"
#include "store_fault.h"
#include "writer_internal.h"

/* Records a transition and sets the item's retained state: the raised alert itself, or on a
 * clear the most recently raised alert of the same (series, kind) still active, or nothing. */
void writer__active_update(writer *w, const gw_alert_ev *ev, gw_pub_item *it) {
    size_t i;
    for (i = 0; i < w->n_active; i++) {
        active_alert *a = &w->active[i];
        if (a->series == ev->series && a->kind == ev->a.kind &&
            strcmp(a->rule, ev->rule->name) == 0) {
            break;
        }
    }
    if (i < w->n_active) {
        free(w->active[i].payload);
        memmove(&w->active[i], &w->active[i + 1], (w->n_active - i - 1) * sizeof(*w->active));
        w->n_active--;
    }
    if (ev->a.state == AN_STATE_RAISED) {
        if (w->n_active == w->cap_active) {
            size_t cap = w->cap_active ? w->cap_active * 2 : 64;
            active_alert *na = realloc(w->active, cap * sizeof(*na));
            if (na == NULL) {
                return; /* the item keeps its own payload as the state */
            }
            w->active = na;
            w->cap_active = cap;
        }
        char *copy = strdup(it->payload);
        if (copy != NULL) {
            w->active[w->n_active++] =
                (active_alert){ev->series, ev->a.kind, ev->rule->name, copy, it->payload_len};
        }
        return;
    }
    for (size_t k = w->n_active; k-- > 0;) {
        active_alert *a = &w->active[k];
        if (a->series == ev->series && a->kind == ev->a.kind) {
            free(it->state_payload);
            it->state_payload = strdup(a->payload);
            it->state_len = it->state_payload != NULL ? a->len : 0;
            return;
        }
    }
}

st_db_opts writer__db_opts(const gw_config *cfg) {
    return (st_db_opts){.busy_timeout_ms = (int)cfg->storage.busy_timeout_ms,
                        .max_bytes = cfg->storage.max_size};
}

int gw__writer_open(gw_pipeline *p, char *err, size_t errlen) {
    st_db_opts o = writer__db_opts(p->cfg);
    char why[256] = "";
    int rc = st_db_open(&p->db, p->cfg->storage.path, &o, why, sizeof(why));
    if (rc == 0) {
        return 0;
    }
    /* A file that is not an iotgw database, or is from a newer iotgw, does not fix itself. */
    if (rc == ST_ESCHEMA || rc == ST_ENOMEM || !p->opts.storage_retry) {
        snprintf(err, errlen, "cannot open the database %s: %s", p->cfg->storage.path, why);
        return rc;
    }
    /* The writer thread reports it, and retries. */
    p->db = NULL;
    pthread_mutex_lock(&p->sf_mu);
    p->sf.kind = gw_sf_classify(rc, true);
    p->sf.since_ms = gw_now_ms();
    snprintf(p->sf.error, sizeof(p->sf.error), "cannot open %.120s: %.120s", p->cfg->storage.path,
             why);
    p->sf.seq++;
    pthread_mutex_unlock(&p->sf_mu);
    return 0;
}

void gw__pub_item_free(gw_pub_item *it) {
    if (it == NULL) {
        return;
    }
    free(it->topic);
    free(it->payload);
    free(it->state_topic);
    free(it->state_payload);
    free(it);
}

gw_pub_item *writer__make_pub_item(const gw_pipeline *p, const st_alert_out *a) {
    char json[2048];
    int n = gw_alert_json(a, json, sizeof(json));
    gw_pub_item *it = calloc(1, sizeof(*it));
    if (it == NULL || n < 0) {
        free(it);
        return NULL;
    }
    const char *prefix = p->cfg->output.prefix;
    it->id = a->id;
    it->payload = strdup(json);
    it->payload_len = (size_t)n;
    if (asprintf(&it->topic, "%s/alerts/%s/%s", prefix, a->sensor, a->metric) < 0) {
        it->topic = NULL;
    }
    if (asprintf(&it->state_topic, "%s/state/%s/%s/%s", prefix, a->sensor, a->metric, a->kind) <
        0) {
        it->state_topic = NULL;
    }
    /* By default the state is this alert while raised, nothing once cleared; the writer
     * replaces it when another rule of the same kind is still raised (active_update). */
    if (strcmp(a->state, "cleared") != 0) {
        it->state_payload = strdup(json);
        it->state_len = (size_t)n;
    }
    if (it->payload == NULL || it->topic == NULL || it->state_topic == NULL ||
        (strcmp(a->state, "cleared") != 0 && it->state_payload == NULL)) {
        gw__pub_item_free(it);
        return NULL;
    }
    return it;
}

void writer__hand_to_publisher(writer *w, gw_pub_item *it) {
    gw_pipeline *p = w->p;
    if (p->opts.print_alerts) {
        fwrite(it->payload, 1, it->payload_len, stdout);
        fputc('\n', stdout);
    }
    if (p->opts.sink == NULL) {
        gw__pub_item_free(it);
        return;
    }
    /* The publisher queue is bounded; when the broker is away for long the outbox in SQLite
     * keeps the rest and the next start sends it. */
    if (gw_queue_push(p->pub_q, it, it->payload_len + 128, it->plain ? 0 : 1000) != 0) {
        gw_queue_count_drop(p->pub_q);
        if (it->plain) {
            /* A summary is in SQLite already; its MQTT copy is best effort. */
            gw__pub_item_free(it);
            return;
        }
        if (it->id > 0) {
            gw_log_limited(&p->store_rl, GW_LOG_WARN, "writer",
                           "publisher queue full: alert %lld stays in the outbox until restart",
                           (long long)it->id);
        } else {
            gw_log_limited(&p->store_rl, GW_LOG_WARN, "writer",
                           "publisher queue full: an alert raised while storage fails is not "
                           "published now; it goes to the outbox when storage recovers and "
                           "out at the next start");
        }
        gw__pub_item_free(it);
    }
}

static gw_pub_item *summary_item(const gw_pipeline *p, const gw_series *s,
                                 const an_window_summary *m) {
    char json[1024], start[32];
    /* Names go through the JSON escaper: a sensor name may hold quotes. */
    int n = snprintf(json, sizeof(json), "{\"sensor\":");
    n = gw_json_str(json, sizeof(json), (size_t)n, s->sensor);
    if (n >= 0 && (size_t)n + 10 < sizeof(json)) {
        n += snprintf(json + n, sizeof(json) - (size_t)n, ",\"metric\":");
        n = gw_json_str(json, sizeof(json), (size_t)n, s->metric);
    }
    if (n < 0) {
        return NULL;
    }
    int k = snprintf(json + n, sizeof(json) - (size_t)n,
                     ",\"window_ms\":%lld,\"start\":\"%s\",\"start_ms\":%lld,\"end_ms\":%lld,"
                     "\"count\":%u,\"min\":%.15g,\"max\":%.15g,\"mean\":%.15g,"
                     "\"stddev\":%.15g,\"first\":%.15g,\"last\":%.15g,\"p50\":%.15g,"
                     "\"p95\":%.15g}",
                     (long long)m->window_ms, gw_format_rfc3339(m->start_ms, start, sizeof(start)),
                     (long long)m->start_ms, (long long)m->end_ms, m->count, m->min, m->max,
                     m->mean, m->stddev, m->first, m->last, m->p50, m->p95);
    if (k < 0 || (size_t)k >= sizeof(json) - (size_t)n) {
        return NULL;
    }
    gw_pub_item *it = calloc(1, sizeof(*it));
    if (it == NULL) {
        return NULL;
    }
    it->payload = strdup(json);
    if (asprintf(&it->topic, "%s/summaries/%s/%s", p->cfg->output.prefix, s->sensor, s->metric) <
        0) {
        it->topic = NULL;
    }
    if (it->payload == NULL || it->topic == NULL) {
        gw__pub_item_free(it);
        return NULL;
    }
    it->payload_len = strlen(it->payload);
    it->plain = true;
    return it;
}

/* ---- transactions ---- */

int writer__ensure_txn(writer *w) {
    if (w->in_txn) {
        return 0;
    }
    int rc = st_db_begin(w->p->db);
    if (rc != 0) {
        writer__enter_fault(w, gw_sf_classify(rc, false), st_db_errmsg(w->p->db));
        return rc;
    }
    w->in_txn = true;
    w->txn_start_ms = gw_mono_ms();
    return 0;
}

static void add_mark(writer *w, int64_t id) {
    if (w->n_marks == w->cap_marks) {
        size_t cap = w->cap_marks ? w->cap_marks * 2 : 64;
        int64_t *m = cap <= MARKS_MAX ? realloc(w->marks, cap * sizeof(*m)) : NULL;
        if (m == NULL) {
            gw_log_limited(&w->p->store_rl, GW_LOG_WARN, "writer",
                           "alert %lld not marked published: too many marks waiting for "
                           "storage; it is sent again at the next start",
                           (long long)id);
            return;
        }
        w->marks = m;
        w->cap_marks = cap;
    }
    w->marks[w->n_marks++] = id;
}

/* Takes the PUBACKs the sink reported: outbox ids are marked in the next transaction; a
 * PUBACK of an alert not stored yet is remembered with it. */
static void take_acks(writer *w) {
    gw_pipeline *p = w->p;
    size_t n;
    pthread_mutex_lock(&p->ack_mu);
    n = p->n_acked;
    memcpy(w->acked, p->acked, n * sizeof(*w->acked));
    p->n_acked = 0;
    pthread_mutex_unlock(&p->ack_mu);
    for (size_t i = 0; i < n; i++) {
        int64_t id = w->acked[i] > 0 ? w->acked[i] : gw_sf_alerts_acked(&w->unstored, w->acked[i]);
        if (id > 0) {
            add_mark(w, id);
        }
    }
}

/* Series ids cached from a rolled-back transaction may name rows that do not exist. */
void writer__forget_series(writer *w, size_t from) {
    for (size_t i = from; i < w->n_known; i++) {
        gw_series_get(w->p->series, w->known[i])->db_id = 0;
    }
    w->n_known = from;
    w->txn_known = from;
}

static void drop_pending(writer *w) {
    for (size_t i = 0; i < w->n_pending; i++) {
        gw__pub_item_free(w->pending[i]);
    }
    w->n_pending = 0;
    w->n_alerts_pending = 0;
}

/* A write or the commit failed with `code`: the transaction is rolled back, its rows stay in
 * the hold, its alerts go out unstored, and the writer is in a fault. */
void writer__fail_txn(writer *w, int code) {
    gw_pipeline *p = w->p;
    char why[512];
    snprintf(why, sizeof(why), "%s", st_db_errmsg(p->db));
    (void)st_db_rollback(p->db);
    w->in_txn = false;
    writer__forget_series(w, w->txn_known);
    drop_pending(w);
    writer__enter_fault(w, gw_sf_classify(code, false), why);
    size_t n = w->n_txn_alerts;
    w->n_txn_alerts = 0;
    for (size_t i = 0; i < n; i++) {
        writer__publish_unstored(w, &w->txn_alerts[i]);
    }
}

/* Commits the open transaction. Returns 0, or the error (then the writer is in a fault). */
int writer__commit(writer *w) {
    gw_pipeline *p = w->p;
    if (!w->in_txn) {
        return 0;
    }
    int rc = 0;
    for (size_t i = 0; i < w->n_marks && rc == 0; i++) {
        rc = st_db_mark_published(p->db, w->marks[i]);
    }
    if (rc == 0) {
        rc = st_db_commit(p->db);
    }
    if (rc != 0) {
        writer__fail_txn(w, rc);
        return rc;
    }
    w->in_txn = false;
    w->n_marks = 0;
    w->txn_known = w->n_known;
    atomic_fetch_add(&p->rows_stored, (uint64_t)w->hold.n_readings);
    writer__note_duplicates(w);
    atomic_fetch_add(&p->summaries, (uint64_t)w->hold.n_summaries);
    atomic_fetch_add(&p->alerts, (uint64_t)w->n_txn_alerts);
    gw_sf_hold_clear(&w->hold, w->keep_rows);
    w->n_txn_alerts = 0;
    for (size_t i = 0; i < w->n_pending; i++) {
        writer__hand_to_publisher(w, w->pending[i]);
    }
    w->n_pending = 0;
    w->n_alerts_pending = 0;
    return 0;
}

/* ---- rows ---- */

static int series_db_id(writer *w, gw_series *s, int64_t *id) {
    if (s->db_id == 0) {
        int rc = st_db_series_id(w->p->db, s->sensor, s->metric, &s->db_id);
        if (rc != 0) {
            return rc;
        }
        if (w->n_known == w->cap_known) {
            size_t cap = w->cap_known ? w->cap_known * 2 : 256;
            uint32_t *k = realloc(w->known, cap * sizeof(*k));
            if (k == NULL) {
                /* Without a record the id could not be forgotten on a rollback. */
                s->db_id = 0;
                return ST_ENOMEM;
            }
            w->known = k;
            w->cap_known = cap;
        }
        w->known[w->n_known++] = s->id;
    }
    *id = s->db_id;
    return 0;
}

/* The row and the MQTT form of an alert; msg receives the message. */
void writer__alert_row(writer *w, const gw_alert_ev *ev, int64_t series_id, char *msg, size_t len,
                       st_alert_row *row) {
    gw_pipeline *p = w->p;
    gw_series *s = gw_series_get(p->series, ev->series);
    if (ev->why != GW_WHY_RULE) {
        gw__restore_message(ev, s->sensor, s->metric, msg, len);
    } else {
        gw_alert_message(&ev->a, s->sensor, s->metric, ev->rule->name, msg, len);
    }
    *row = (st_alert_row){
        .gateway = p->cfg->gateway_id,
        .series_id = series_id,
        .kind = an_kind_name(ev->a.kind),
        .state = an_state_name(ev->a.state),
        .severity = an_severity_name(ev->a.severity),
        .rule = ev->rule->name,
        .ts_ms = ev->a.ts_ms,
        .value = ev->a.value,
        .threshold = ev->a.threshold,
        .message = msg,
        .detail = ev->a.kind == AN_KIND_HIGH || ev->a.kind == AN_KIND_LOW ? NAN : ev->a.detail,
    };
}

/* Builds the MQTT item of an alert with outbox id `id` (negative: not stored). */
gw_pub_item *writer__alert_item(writer *w, const gw_alert_ev *ev, const st_alert_row *row,
                                int64_t id) {
    gw_series *s = gw_series_get(w->p->series, ev->series);
    st_alert_out out = {
        .id = id,
        .gateway = row->gateway,
        .sensor = s->sensor,
        .metric = s->metric,
        .kind = row->kind,
        .state = row->state,
        .severity = row->severity,
        .rule = row->rule,
        .message = row->message,
        .ts_ms = row->ts_ms,
        .value = row->value,
        .threshold = row->threshold,
        .detail = row->detail,
    };
    return writer__make_pub_item(w->p, &out);
}

/* Inserts the alert row; writes its outbox id. */
int writer__insert_alert(writer *w, const gw_alert_ev *ev, int64_t *id, gw_pub_item **it) {
    gw_series *s = gw_series_get(w->p->series, ev->series);
    int64_t sid;
    char msg[512];
    st_alert_row row;
    int rc = series_db_id(w, s, &sid);
    if (rc != 0) {
        return rc;
    }
    writer__alert_row(w, ev, sid, msg, sizeof(msg), &row);
    if ((rc = st_db_insert_alert(w->p->db, &row, id)) != 0) {
        return rc;
    }
    if (it != NULL) {
        *it = writer__alert_item(w, ev, &row, *id);
    }
    return 0;
}

static int store_alert(writer *w, const gw_alert_ev *ev) {
    int64_t id;
    gw_pub_item *it = NULL;
    if (w->n_pending == PENDING_MAX || w->n_txn_alerts == PENDING_MAX) {
        int rc = writer__commit(w);
        if (rc == 0) {
            rc = writer__ensure_txn(w);
        }
        if (rc != 0) {
            return rc;
        }
    }
    int rc = writer__insert_alert(w, ev, &id, &it);
    if (rc != 0) {
        return rc;
    }
    w->txn_alerts[w->n_txn_alerts++] = *ev;
    if (it == NULL) {
        GW_ERROR("writer", "out of memory: alert %lld stays in the outbox", (long long)id);
        return 0;
    }
    writer__active_update(w, ev, it);
    w->pending[w->n_pending++] = it;
    w->n_alerts_pending++;
    return 0;
}

static int store_summary(writer *w, const gw_summary_ev *ev) {
    gw_pipeline *p = w->p;
    gw_series *s = gw_series_get(p->series, ev->series);
    int64_t sid;
    int rc = series_db_id(w, s, &sid);
    if (rc != 0 || (rc = st_db_insert_summary(p->db, sid, &ev->s)) != 0) {
        return rc;
    }
    if (p->cfg->windows.publish && p->opts.sink != NULL) {
        gw_pub_item *it = summary_item(p, s, &ev->s);
        if (it != NULL && w->n_pending < PENDING_MAX) {
            w->pending[w->n_pending++] = it;
        } else {
            gw__pub_item_free(it);
        }
    }
    return 0;
}

/* Appends a batch's readings in multi-row statements. A reading newer than every one stored
 * before for its series cannot repeat one; the others (late, redelivered, or retried after a
 * storage fault) are counted so that the merge at stop removes any copy (st_db_settle).
 * Returns 0 or the first error. */
static int insert_readings(writer *w, const gw_batch *b) {
    gw_pipeline *p = w->p;
    st_reading_row rows[GW_BATCH_READINGS];
    size_t n = 0, maybe_dup = 0;
    for (uint32_t i = 0; i < b->n_readings; i++) {
        const an_reading *r = &b->readings[i];
        gw_series *s = gw_series_get(p->series, r->series);
        int64_t sid;
        int rc = series_db_id(w, s, &sid);
        if (rc != 0) {
            return rc;
        }
        if (r->ts_ms > s->last_stored_ms) {
            s->last_stored_ms = r->ts_ms;
        } else {
            maybe_dup++;
        }
        rows[n++] = (st_reading_row){sid, r->ts_ms, r->value, isnan(r->score) ? NAN : r->score};
    }
    return st_db_insert_readings(p->db, rows, n, maybe_dup, NULL);
}

/* Inserts b's readings, summaries and predictions into the open transaction. Returns 0 or
 * the first error. */
int writer__insert_rows(writer *w, const gw_batch *b) {
    gw_pipeline *p = w->p;
    int64_t sid;
    int rc = 0;
    if (p->cfg->storage.raw) {
        rc = insert_readings(w, b);
    }
    for (uint32_t i = 0; i < b->n_summaries && rc == 0; i++) {
        rc = store_summary(w, &b->summaries[i]);
    }
    for (uint32_t i = 0; i < b->n_preds && rc == 0; i++) {
        const gw_pred_ev *ev = &b->preds[i];
        const an_trend_pred *m = &ev->pred;
        int64_t none = 0;
        if ((rc = series_db_id(w, gw_series_get(p->series, ev->series), &sid)) == 0) {
            rc = st_db_insert_prediction(p->db, sid, ev->ts_ms, m->level, m->slope_per_h,
                                         m->slope_se_per_h, m->has_eta ? m->eta_ms : none,
                                         m->has_eta ? m->eta_lo_ms : none,
                                         m->has_eta ? m->eta_hi_ms : none);
        }
    }
    return rc;
}

/* A batch from the workers: written into the open transaction, or held while storage fails.
 * Its alerts are stored with it, or published unstored. */
void writer__store_batch(writer *w, const gw_batch *b) {
    if (w->fault == GW_SF_OK) {
        (void)writer__ensure_txn(w);
    }
    writer__hold_batch(w, b);
    if (w->fault == GW_SF_OK) {
        int rc = writer__insert_rows(w, b);
        if (rc != 0) {
            writer__fail_txn(w, rc);
        }
    }
    for (uint32_t i = 0; i < b->n_alerts; i++) {
        if (w->fault == GW_SF_OK) {
            int rc = store_alert(w, &b->alerts[i]);
            if (rc == 0) {
                continue;
            }
            /* A failed commit inside store_alert has rolled back already. */
            if (w->fault == GW_SF_OK) {
                writer__fail_txn(w, rc);
            }
        }
        writer__publish_unstored(w, &b->alerts[i]);
    }
    if (w->fault != GW_SF_OK) {
        writer__status_update(w, false, NULL);
    } else if (gw_sf_hold_rows(&w->hold) >= (size_t)w->p->cfg->storage.batch_rows) {
        (void)writer__commit(w);
    }
}

static int writer_init(writer *w, gw_pipeline *p) {
    const gw_config *cfg = p->cfg;
    memset(w, 0, sizeof(*w));
    w->p = p;
    /* The open transaction must always fit: one batch past batch_rows at most. */
    w->keep_rows =
        (size_t)cfg->storage.batch_rows + GW_BATCH_READINGS + GW_BATCH_SUMMARIES + GW_BATCH_PREDS;
    size_t bound = (size_t)cfg->storage.fault_buffer;
    gw_sf_hold_init(&w->hold, bound > w->keep_rows ? bound : w->keep_rows);
    w->acked = calloc(p->cap_acked, sizeof(*w->acked));
    w->scratch = gw__batch_new();
    if (w->acked == NULL || w->scratch == NULL) {
        free(w->acked);
        free(w->scratch);
        return -1;
    }
    return 0;
}

static void writer_free(writer *w) {
    free(w->acked);
    free(w->scratch);
    free(w->marks);
    free(w->known);
    gw_sf_hold_free(&w->hold);
    gw_sf_alerts_free(&w->unstored);
    for (size_t i = 0; i < w->n_active; i++) {
        free(w->active[i].payload);
    }
    free(w->active);
}

void *gw__writer_main(void *arg) {
    gw_pipeline *p = arg;
    writer *w = malloc(sizeof(*w));
    if (w == NULL || writer_init(w, p) != 0) {
        free(w);
        GW_ERROR("writer", "out of memory at start");
        return NULL;
    }
    if (p->db == NULL) {
        /* gw__writer_open could not open it: start in the fault it recorded. */
        char why[sizeof(p->sf.error)];
        pthread_mutex_lock(&p->sf_mu);
        gw_sf_kind kind = p->sf.kind;
        snprintf(why, sizeof(why), "%s", p->sf.error);
        pthread_mutex_unlock(&p->sf_mu);
        writer__enter_fault(w, kind != GW_SF_OK ? kind : GW_SF_UNAVAILABLE, why);
    }
    writer__resend_outbox(w);
    gw__restore_writer_start(w);
    const int64_t tick = p->cfg->storage.tick_ms;
    void *items[16];
    gw_retain *rt = NULL; /* made once the connection is up; NULL: retention off */
    st_db *rt_db = NULL;  /* the connection rt's statements belong to */
    bool rt_tried = false;
    if (p->db != NULL) {
        rt = gw__retain_new(p); /* before the first batch: a replay's stream time starts there */
        rt_db = p->db;
        rt_tried = true;
    }
    for (;;) {
        int64_t now = gw_mono_ms();
        int64_t wait = tick;
        if (w->fault != GW_SF_OK) {
            wait = w->next_retry_ms - now < tick ? w->next_retry_ms - now : tick;
        } else if (w->in_txn) {
            wait = w->txn_start_ms + tick - now;
        } else if (gw__retain_busy(rt)) {
            wait = 0; /* a retention pass under way uses the idle time */
        }
        /* Workers do not wake the writer for readings alone (gw_queue_push_lazy), and
         * delivered alerts wait to be marked: poll at least once per tick. */
        size_t n = gw_queue_pop(p->writer_q, items, NULL, 16, wait > 0 ? (int)wait : 0);
        if (n == 0 && gw_queue_is_closed(p->writer_q)) {
            break;
        }
        for (size_t i = 0; i < n; i++) {
            gw__retain_observe(rt, items[i]);
            writer__store_batch(w, items[i]);
            free(items[i]);
        }
        take_acks(w);
        if (w->fault != GW_SF_OK) {
            if (gw_mono_ms() >= w->next_retry_ms) {
                writer__retry(w);
            }
            continue;
        }
        if (!w->in_txn && w->n_marks > 0) {
            (void)writer__ensure_txn(w);
        }
        if (w->in_txn && (w->n_alerts_pending > 0 ||
                          gw_sf_hold_rows(&w->hold) >= (size_t)p->cfg->storage.batch_rows ||
                          gw_mono_ms() - w->txn_start_ms >= tick)) {
            (void)writer__commit(w);
        }
        /* Retention statements belong to the connection: after a reopen (storage fault),
         * they are prepared again. */
        if (rt_db != p->db) {
            gw__retain_end(rt, false);
            rt = NULL;
            rt_db = p->db;
            rt_tried = false;
        }
        if (!rt_tried && p->db != NULL) {
            rt = gw__retain_new(p);
            rt_tried = true;
        }
        if (!w->in_txn) {
            gw__retain_run(rt, n == 0);
        }
    }
    take_acks(w);
    if (w->fault == GW_SF_OK && (w->in_txn || w->n_marks > 0) && writer__ensure_txn(w) == 0) {
        (void)writer__commit(w);
    }
    /* A replay's last passes; none on a connection that is failing or was replaced. */
    gw__retain_end(rt, w->fault == GW_SF_OK && rt_db == p->db);
    if (w->fault != GW_SF_OK) {
        /* One last try, with the full busy timeout: the lock may be about to go. */
        if (p->db != NULL) {
            (void)st_db_set_busy_timeout(p->db, (int)p->cfg->storage.busy_timeout_ms);
        }
        writer__retry(w);
    }
    if (w->fault != GW_SF_OK) {
        writer__report_losses(w);
    } else if (p->db != NULL && st_db_settle(p->db) != 0) {
        /* Merges staged copies of staged readings, which v_readings would show twice. */
        GW_WARN("writer", "readings left staged at stop (merged at the next start): %s",
                st_db_errmsg(p->db));
    }
    writer__note_duplicates(w);
    writer_free(w);
    free(w);
    return NULL;
}

void gw__writer_mark_remaining(gw_pipeline *p) {
    /* Called after every thread has stopped: the connection is free for this thread. Alerts
     * not stored (negative ids) have no row to mark. */
    for (size_t i = 0; i < p->n_acked; i++) {
        if (p->acked[i] > 0 && st_db_mark_published(p->db, p->acked[i]) != 0) {
            GW_WARN("writer", "%s", st_db_errmsg(p->db));
        }
    }
    p->n_acked = 0;
}
