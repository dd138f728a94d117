/* Writer stage: the one SQLite connection that writes. Batches rows into one transaction per
 * tick (storage.tick_ms) or per storage.batch_rows rows; a batch that carries an alert is
 * committed at once, so that alerts are never held back by batching. Alerts enter the outbox
 * in the transaction of the readings that caused them, and go to the publisher only after
 * the commit. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "clock.h"
#include "decode.h"
#include "pipeline_internal.h"
#include "retain.h"
#include "rule.h"

#define PENDING_MAX 1024

/* An alert raised and not cleared yet, for the retained state topics: several rules of the
 * same kind on one series share <prefix>/state/<sensor>/<metric>/<kind>, so when one clears
 * the topic must show the others, not go empty. */
typedef struct active_alert {
    uint32_t series;
    an_kind kind;
    int rule;
    char *payload;
    size_t len;
} active_alert;

typedef struct writer {
    gw_pipeline *p;
    bool in_txn;
    int64_t txn_start_ms;
    int64_t txn_rows;
    int64_t txn_summaries;
    gw_pub_item *pending[PENDING_MAX]; /* alerts of the open transaction */
    size_t n_pending;
    size_t n_alerts_pending; /* of n_pending: alerts, which are committed without delay */
    int64_t *acked;          /* ids to mark published, taken from the pipeline */
    active_alert *active;
    size_t n_active, cap_active;
} writer;

/* Records a transition and sets the item's retained state: the raised alert itself, or on a
 * clear the most recently raised alert of the same (series, kind) still active, or nothing. */
static void active_update(writer *w, const gw_alert_ev *ev, gw_pub_item *it) {
    size_t i;
    for (i = 0; i < w->n_active; i++) {
        active_alert *a = &w->active[i];
        if (a->series == ev->series && a->kind == ev->a.kind && a->rule == ev->a.rule) {
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
                (active_alert){ev->series, ev->a.kind, ev->a.rule, copy, it->payload_len};
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

int gw__writer_open(gw_pipeline *p, char *err, size_t errlen) {
    st_db_opts o = {0};
    char why[256] = "";
    int rc = st_db_open(&p->db, p->cfg->storage.path, &o, why, sizeof(why));
    if (rc != 0) {
        snprintf(err, errlen, "cannot open the database %s: %s", p->cfg->storage.path, why);
        return rc;
    }
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

static gw_pub_item *make_pub_item(const gw_pipeline *p, const st_alert_out *a) {
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

static void hand_to_publisher(writer *w, gw_pub_item *it) {
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
        gw_log_limited(&p->store_rl, GW_LOG_WARN, "writer",
                       "publisher queue full: alert %lld stays in the outbox until restart",
                       (long long)it->id);
        gw__pub_item_free(it);
    }
}

static int ensure_txn(writer *w) {
    if (w->in_txn) {
        return 0;
    }
    int rc = st_db_begin(w->p->db);
    if (rc != 0) {
        gw_log_limited(&w->p->store_rl, GW_LOG_ERROR, "writer", "%s", st_db_errmsg(w->p->db));
        return rc;
    }
    w->in_txn = true;
    w->txn_start_ms = gw_mono_ms();
    w->txn_rows = 0;
    w->txn_summaries = 0;
    return 0;
}

static void mark_acked(writer *w) {
    gw_pipeline *p = w->p;
    size_t n;
    pthread_mutex_lock(&p->ack_mu);
    n = p->n_acked;
    memcpy(w->acked, p->acked, n * sizeof(*w->acked));
    p->n_acked = 0;
    pthread_mutex_unlock(&p->ack_mu);
    for (size_t i = 0; i < n; i++) {
        if (st_db_mark_published(p->db, w->acked[i]) != 0) {
            gw_log_limited(&p->store_rl, GW_LOG_WARN, "writer", "%s", st_db_errmsg(p->db));
        }
    }
}

static void commit(writer *w) {
    gw_pipeline *p = w->p;
    if (!w->in_txn) {
        return;
    }
    int rc = st_db_commit(p->db);
    w->in_txn = false;
    if (rc != 0) {
        gw_log_limited(&p->store_rl, GW_LOG_ERROR, "writer",
                       "commit failed, %lld rows and %zu alerts lost: %s", (long long)w->txn_rows,
                       w->n_pending, st_db_errmsg(p->db));
        st_db_rollback(p->db);
        atomic_fetch_add(&p->rows_failed, (uint64_t)w->txn_rows);
        atomic_fetch_add(&p->summaries_failed, (uint64_t)w->txn_summaries);
        for (size_t i = 0; i < w->n_pending; i++) {
            gw__pub_item_free(w->pending[i]);
        }
        w->n_pending = 0;
        w->n_alerts_pending = 0;
        return;
    }
    atomic_fetch_add(&p->rows_stored, (uint64_t)w->txn_rows);
    atomic_fetch_add(&p->summaries, (uint64_t)w->txn_summaries);
    for (size_t i = 0; i < w->n_pending; i++) {
        if (!w->pending[i]->plain) {
            atomic_fetch_add(&p->alerts, 1);
        }
        hand_to_publisher(w, w->pending[i]);
    }
    w->n_pending = 0;
    w->n_alerts_pending = 0;
}

static int64_t series_db_id(writer *w, gw_series *s) {
    if (s->db_id == 0) {
        int64_t id;
        if (st_db_series_id(w->p->db, s->sensor, s->metric, &id) != 0) {
            gw_log_limited(&w->p->store_rl, GW_LOG_ERROR, "writer", "%s", st_db_errmsg(w->p->db));
            return 0;
        }
        s->db_id = id;
    }
    return s->db_id;
}

static void store_alert(writer *w, const gw_alert_ev *ev) {
    gw_pipeline *p = w->p;
    gw_series *s = gw_series_get(p->series, ev->series);
    int64_t sid = series_db_id(w, s);
    const an_rule *rule = ev->rule;
    char msg[512];
    gw_alert_message(&ev->a, s->sensor, s->metric, rule->name, msg, sizeof(msg));
    st_alert_row row = {
        .gateway = p->cfg->gateway_id,
        .series_id = sid,
        .kind = an_kind_name(ev->a.kind),
        .state = an_state_name(ev->a.state),
        .severity = an_severity_name(ev->a.severity),
        .rule = rule->name,
        .ts_ms = ev->a.ts_ms,
        .value = ev->a.value,
        .threshold = ev->a.threshold,
        .message = msg,
        .detail = ev->a.kind == AN_KIND_HIGH || ev->a.kind == AN_KIND_LOW ? NAN : ev->a.detail,
    };
    int64_t id;
    if (sid == 0 || st_db_insert_alert(p->db, &row, &id) != 0) {
        gw_log_limited(&p->store_rl, GW_LOG_ERROR, "writer", "alert of %s/%s not stored: %s",
                       s->sensor, s->metric, st_db_errmsg(p->db));
        return;
    }
    st_alert_out out = {
        .id = id,
        .gateway = row.gateway,
        .sensor = s->sensor,
        .metric = s->metric,
        .kind = row.kind,
        .state = row.state,
        .severity = row.severity,
        .rule = row.rule,
        .message = msg,
        .ts_ms = row.ts_ms,
        .value = row.value,
        .threshold = row.threshold,
        .detail = row.detail,
    };
    gw_pub_item *it = make_pub_item(p, &out);
    if (it == NULL) {
        GW_ERROR("writer", "out of memory: alert %lld stays in the outbox", (long long)id);
        return;
    }
    active_update(w, ev, it);
    if (w->n_pending == PENDING_MAX) {
        commit(w);
        ensure_txn(w);
    }
    w->pending[w->n_pending++] = it;
    w->n_alerts_pending++;
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

static void store_summary(writer *w, const gw_summary_ev *ev) {
    gw_pipeline *p = w->p;
    gw_series *s = gw_series_get(p->series, ev->series);
    int64_t sid = series_db_id(w, s);
    if (sid == 0 || st_db_insert_summary(p->db, sid, &ev->s) != 0) {
        atomic_fetch_add(&p->summaries_failed, 1);
        gw_log_limited(&p->store_rl, GW_LOG_ERROR, "writer", "summary of %s/%s not stored: %s",
                       s->sensor, s->metric, st_db_errmsg(p->db));
        return;
    }
    w->txn_summaries++;
    if (p->cfg->windows.publish && p->opts.sink != NULL) {
        gw_pub_item *it = summary_item(p, s, &ev->s);
        if (it != NULL && w->n_pending < PENDING_MAX) {
            w->pending[w->n_pending++] = it;
        } else {
            gw__pub_item_free(it);
        }
    }
}

static void store_batch(writer *w, const gw_batch *b) {
    gw_pipeline *p = w->p;
    if (ensure_txn(w) != 0) {
        atomic_fetch_add(&p->rows_failed, b->n_readings);
        return;
    }
    if (p->cfg->storage.raw) {
        for (uint32_t i = 0; i < b->n_readings; i++) {
            const an_reading *r = &b->readings[i];
            gw_series *s = gw_series_get(p->series, r->series);
            int64_t sid = series_db_id(w, s);
            int rc = sid == 0 ? ST_EIO
                     : isnan(r->score)
                         ? st_db_insert_reading(p->db, sid, r->ts_ms, r->value)
                         : st_db_insert_reading_scored(p->db, sid, r->ts_ms, r->value, r->score);
            if (rc != 0) {
                atomic_fetch_add(&p->rows_failed, 1);
                gw_log_limited(&p->store_rl, GW_LOG_ERROR, "writer", "reading not stored: %s",
                               st_db_errmsg(p->db));
                continue;
            }
            w->txn_rows++;
        }
    }
    for (uint32_t i = 0; i < b->n_alerts; i++) {
        store_alert(w, &b->alerts[i]);
    }
    for (uint32_t i = 0; i < b->n_summaries; i++) {
        store_summary(w, &b->summaries[i]);
    }
    for (uint32_t i = 0; i < b->n_preds; i++) {
        const gw_pred_ev *ev = &b->preds[i];
        const an_trend_pred *m = &ev->pred;
        gw_series *s = gw_series_get(p->series, ev->series);
        int64_t sid = series_db_id(w, s);
        int64_t none = 0;
        if (sid == 0 || st_db_insert_prediction(p->db, sid, ev->ts_ms, m->level, m->slope_per_h,
                                                m->slope_se_per_h, m->has_eta ? m->eta_ms : none,
                                                m->has_eta ? m->eta_lo_ms : none,
                                                m->has_eta ? m->eta_hi_ms : none) != 0) {
            gw_log_limited(&p->store_rl, GW_LOG_ERROR, "writer",
                           "prediction of %s/%s not stored: %s", s->sensor, s->metric,
                           st_db_errmsg(p->db));
        }
    }
}

static int resend_one(void *ctx, const st_alert_out *a) {
    writer *w = ctx;
    gw_pub_item *it = make_pub_item(w->p, a);
    if (it != NULL) {
        hand_to_publisher(w, it);
    }
    return 0;
}

void *gw__writer_main(void *arg) {
    gw_pipeline *p = arg;
    writer w = {.p = p};
    w.acked = calloc(p->cap_acked, sizeof(*w.acked));
    if (w.acked == NULL) {
        GW_ERROR("writer", "out of memory at start");
        return NULL;
    }
    if (p->opts.sink != NULL) {
        /* The outbox: what a previous run committed but could not publish goes first. */
        int n = st_db_unpublished(p->db, 0, 100000, resend_one, &w);
        if (n > 0) {
            GW_INFO("writer", "resending %d unpublished alerts from the outbox", n);
        }
    }
    const int64_t tick = p->cfg->storage.tick_ms;
    const int64_t batch_rows = p->cfg->storage.batch_rows;
    void *items[16];
    gw_retain *rt = gw__retain_new(p);
    for (;;) {
        int timeout = -1;
        if (w.in_txn) {
            int64_t left = w.txn_start_ms + tick - gw_mono_ms();
            timeout = left > 0 ? (int)left : 0;
        } else {
            /* Workers do not wake the writer for readings alone (gw_queue_push_lazy), and
             * delivered alerts wait to be marked: poll once per tick. A retention pass under
             * way uses the idle time. */
            timeout = gw__retain_busy(rt) ? 0 : (int)tick;
        }
        size_t n = gw_queue_pop(p->writer_q, items, NULL, 16, timeout);
        if (n == 0 && gw_queue_is_closed(p->writer_q)) {
            break;
        }
        for (size_t i = 0; i < n; i++) {
            gw__retain_observe(rt, items[i]);
            store_batch(&w, items[i]);
            free(items[i]);
        }
        mark_acked(&w);
        if (w.in_txn && (w.n_alerts_pending > 0 || w.txn_rows >= batch_rows ||
                         gw_mono_ms() - w.txn_start_ms >= tick)) {
            commit(&w);
        }
        if (!w.in_txn) {
            gw__retain_run(rt, n == 0);
        }
    }
    commit(&w);
    mark_acked(&w);
    gw__retain_end(rt);
    free(w.acked);
    for (size_t i = 0; i < w.n_active; i++) {
        free(w.active[i].payload);
    }
    free(w.active);
    return NULL;
}

void gw__writer_mark_remaining(gw_pipeline *p) {
    /* Called after every thread has stopped: the connection is free for this thread. */
    for (size_t i = 0; i < p->n_acked; i++) {
        if (st_db_mark_published(p->db, p->acked[i]) != 0) {
            GW_WARN("writer", "%s", st_db_errmsg(p->db));
        }
    }
    p->n_acked = 0;
}
