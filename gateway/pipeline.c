#include "pipeline.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "pipeline_internal.h"
#include "restore.h"
#include "stale_preload.h"

static gw_ruleset *ruleset_new(const an_rule *rules, size_t n, gw_ruleset *older) {
    gw_ruleset *rs = malloc(sizeof(*rs) + n * sizeof(rs->rules[0]));
    if (rs != NULL) {
        rs->older = older;
        rs->n = n;
        memcpy(rs->rules, rules, n * sizeof(rs->rules[0]));
    }
    return rs;
}

int gw_pipeline_new(gw_pipeline **out, const gw_config *cfg, const gw_pipeline_opts *opts,
                    char *err, size_t errlen) {
    int rc = -ENOMEM;
    gw_pipeline *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    p->cfg = cfg;
    if (opts != NULL) {
        p->opts = *opts;
    }
    if (p->opts.max_inflight <= 0) {
        p->opts.max_inflight = 64;
    }
    p->n_workers = cfg->pipeline.workers;
    if (p->n_workers < 1 || p->n_workers > GW_MAX_WORKERS) {
        snprintf(err, errlen, "pipeline.workers must be 1..%d", GW_MAX_WORKERS);
        rc = -EINVAL;
        goto fail;
    }
    pthread_mutex_init(&p->ack_mu, NULL);
    pthread_cond_init(&p->ack_cv, NULL);
    pthread_mutex_init(&p->clock_mu, NULL);
    pthread_cond_init(&p->clock_cv, NULL);
    pthread_mutex_init(&p->sf_mu, NULL);
    p->next_stream_tick = INT64_MIN;
    if (cfg->windows.n_sizes > 0) {
        p->wcfg.n_sizes = (int)cfg->windows.n_sizes;
        for (size_t i = 0; i < cfg->windows.n_sizes; i++) {
            p->wcfg.size_ms[i] = cfg->windows.sizes[i].size_ms;
            p->wcfg.hop_ms[i] = cfg->windows.sizes[i].hop_ms;
        }
        p->wcfg.allowed_lateness_ms = cfg->windows.allowed_lateness_ms;
        p->wcfg.grace_ms = cfg->windows.grace_ms;
        if (an_window_cfg_prepare(&p->wcfg) != 0) {
            snprintf(err, errlen, "windows: invalid configuration");
            rc = -EINVAL;
            goto fail;
        }
        p->has_windows = true;
    }
    p->decode_rl = (gw_ratelimit)GW_RATELIMIT_INIT;
    p->store_rl = (gw_ratelimit)GW_RATELIMIT_INIT;

    p->rules = ruleset_new(cfg->rules, cfg->n_rules, NULL);
    if (p->rules == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    rc = gw_config_topic_map(cfg, &p->topics, err, errlen);
    if (rc != 0) {
        goto fail;
    }
    p->decoder.topics = p->topics;
    p->decoder.max_payload = (size_t)cfg->pipeline.max_payload;
    p->decoder.max_readings = 1024;
    rc = gw_series_registry_new(&p->series, (size_t)cfg->pipeline.max_series);
    if (rc != 0) {
        snprintf(err, errlen, "cannot create the series registry");
        goto fail;
    }
    size_t qi = (size_t)cfg->pipeline.queue_items;
    size_t qb = (size_t)cfg->pipeline.queue_bytes;
    /* Batches carry up to GW_BATCH_READINGS readings each, so the stage queues need far fewer
     * items than the ingest queue for the same bytes. */
    size_t bi = qi / 32 > 8 ? qi / 32 : 8;
    rc = gw_queue_new(&p->ingest_q, "ingest", qi, qb);
    for (int i = 0; rc == 0 && i < p->n_workers; i++) {
        rc = gw_queue_new(&p->work_q[i], "worker", bi, qb);
    }
    if (rc == 0) {
        rc = gw_queue_new(&p->writer_q, "writer", bi, qb);
    }
    if (rc == 0) {
        rc = gw_queue_new(&p->pub_q, "publisher", qi, qb);
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot create the queues");
        goto fail;
    }
    p->cap_acked = (size_t)p->opts.max_inflight * 4;
    p->acked = calloc(p->cap_acked, sizeof(*p->acked));
    p->unacked = calloc((size_t)p->opts.max_inflight, sizeof(*p->unacked));
    p->retry = calloc((size_t)p->opts.max_inflight, sizeof(*p->retry));
    if (p->acked == NULL || p->unacked == NULL || p->retry == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    rc = gw__writer_open(p, err, errlen);
    if (rc != 0) {
        goto fail;
    }
    *out = p;
    return 0;

fail:
    gw_pipeline_free(p);
    return rc;
}

gw_batch *gw__batch_new(void) {
    gw_batch *b = malloc(sizeof(*b));
    if (b != NULL) {
        b->n_readings = 0;
        b->n_alerts = 0;
        b->n_summaries = 0;
        b->n_preds = 0;
        b->tick = GW_TICK_NONE;
        b->tick_ms = 0;
        b->tick_rules = NULL;
    }
    return b;
}

static void flush_route(gw_pipeline *p, int k) {
    gw_batch *b = p->route[k];
    if (b == NULL || b->n_readings == 0) {
        return;
    }
    /* Backpressure: a full worker queue blocks the decode stage, which fills the ingest
     * queue, which makes ingest wait. */
    if (gw_queue_push(p->work_q[k], b, sizeof(*b), -1) == 0) {
        p->route[k] = NULL;
    } else {
        b->n_readings = 0;
    }
}

static void flush_routes(gw_pipeline *p) {
    for (int k = 0; k < p->n_workers; k++) {
        flush_route(p, k);
    }
}

static int route_reading(void *ctx, const char *sensor, const char *metric, int64_t ts_ms,
                         bool own_ts, double value) {
    gw_pipeline *p = ctx;
    gw_series *s;
    int rc = gw_series_intern(p->series, sensor, metric, &s);
    if (rc != 0) {
        atomic_fetch_add(&p->series_rejected, 1);
        gw_log_limited(&p->decode_rl, GW_LOG_WARN, "decode",
                       "reading of %s/%s dropped: %s (pipeline.max_series = %d)", sensor, metric,
                       rc == -ENOSPC ? "too many series" : "out of memory",
                       p->cfg->pipeline.max_series);
        return 0;
    }
    /* The storage keeps one copy of equal (series, ts, value) readings; readings stamped on
     * arrival are distinct even when a burst (a broker's backlog after a reconnect) brings
     * several in one millisecond, so their times step forward by 1 ms where they would
     * repeat. */
    if (!own_ts) {
        if (ts_ms <= s->last_arrival_ms) {
            ts_ms = s->last_arrival_ms + 1;
        }
        s->last_arrival_ms = ts_ms;
    }
    uint32_t id = s->id;
    if (ts_ms > s->newest_ms) {
        s->newest_ms = ts_ms;
    } else if (p->cur_dup) {
        id |= GW_READING_SEEN;
        atomic_fetch_add_explicit(&p->redeliveries_stored_only, 1, memory_order_relaxed);
    }
    int k = (int)(s->hash % (uint32_t)p->n_workers);
    gw_batch *b = p->route[k];
    if (b == NULL) {
        b = gw__batch_new();
        if (b == NULL) {
            atomic_fetch_add(&p->series_rejected, 1);
            return 0;
        }
        p->route[k] = b;
    }
    if (ts_ms > p->stream_max_ts || !p->stream_seen) {
        p->stream_max_ts = ts_ms;
        p->stream_seen = true;
    }
    b->readings[b->n_readings++] = (an_reading){id, NAN, ts_ms, value};
    atomic_fetch_add_explicit(&p->readings, 1, memory_order_relaxed);
    if (b->n_readings == GW_BATCH_READINGS) {
        flush_route(p, k);
    }
    return 0;
}

static int decode_one(gw_pipeline *p, const char *topic, size_t tlen, const char *payload,
                      size_t plen, int64_t arrival_ms) {
    gw_decode_reason why;
    int n = gw_decode(&p->decoder, topic, tlen, payload, plen, arrival_ms, route_reading, p, &why);
    if (n < 0) {
        atomic_fetch_add(&p->decode_errors[why], 1);
        gw_log_limited(&p->decode_rl, GW_LOG_WARN, "decode", "message on '%.*s' rejected: %s",
                       (int)(tlen > 200 ? 200 : tlen), topic, gw_decode_reason_name(why));
        return -1;
    }
    return n;
}

/* Sends a tick to every worker behind what was routed so far. Blocking pushes: a tick
 * carries the time that closes windows and raises stale alerts, so dropping one would change
 * results. The clock thread, which must not stall, does not wait instead. */
static void send_ticks(gw_pipeline *p, gw_tick kind, int64_t now) {
    flush_routes(p);
    for (int k = 0; k < p->n_workers; k++) {
        gw_batch *b = gw__batch_new();
        if (b == NULL) {
            GW_ERROR("pipeline", "out of memory: a clock tick lost");
            continue;
        }
        b->tick = kind;
        b->tick_ms = now;
        if (gw_queue_push(p->work_q[k], b, sizeof(*b), -1) != 0) {
            free(b);
        }
    }
}

int gw_pipeline_reload_rules(gw_pipeline *p, const an_rule *rules, size_t n) {
    gw_ruleset *rs = ruleset_new(rules, n, p->rules);
    if (rs == NULL) {
        return -ENOMEM;
    }
    p->rules = rs;
    if (p->opts.inline_decode) {
        /* The caller is the decode stage: what it decoded so far goes by the old rules. */
        flush_routes(p);
    }
    for (int k = 0; k < p->n_workers; k++) {
        gw_batch *b = gw__batch_new();
        if (b == NULL) {
            /* Workers must all switch, or alerts would name rules of two sets. */
            GW_ERROR("pipeline", "out of memory: rules not reloaded in worker %d", k);
            continue;
        }
        b->tick = GW_TICK_RELOAD;
        b->tick_rules = rs;
        if (gw_queue_push(p->work_q[k], b, sizeof(*b), -1) != 0) {
            free(b);
        }
    }
    return 0;
}

int gw_pipeline_decode(gw_pipeline *p, const char *topic, size_t topic_len, const char *payload,
                       size_t payload_len, int64_t arrival_ms) {
    atomic_fetch_add_explicit(&p->messages_in, 1, memory_order_relaxed);
    int n = decode_one(p, topic, topic_len, payload, payload_len, arrival_ms);
    /* A replay's clock is its stream: the latest timestamp seen, ticking every tick_ms of it,
     * so that the results do not depend on how fast the file is read. */
    if (p->stream_seen && p->stream_max_ts >= p->next_stream_tick) {
        if (p->next_stream_tick != INT64_MIN) {
            send_ticks(p, GW_TICK_STREAM, p->stream_max_ts);
        }
        p->next_stream_tick = p->stream_max_ts + p->cfg->pipeline.tick_ms;
    }
    return n;
}

static void *clock_main(void *arg) {
    gw_pipeline *p = arg;
    pthread_mutex_lock(&p->clock_mu);
    while (!p->clock_stop) {
        struct timespec ts;
        gw_deadline_after(&ts, CLOCK_REALTIME, p->cfg->pipeline.tick_ms);
        pthread_cond_timedwait(&p->clock_cv, &p->clock_mu, &ts);
        if (p->clock_stop) {
            break;
        }
        pthread_mutex_unlock(&p->clock_mu);
        /* A worker whose queue is full is busy with readings; it gets the next tick. */
        int64_t now = gw_now_ms();
        for (int k = 0; k < p->n_workers; k++) {
            gw_batch *b = gw__batch_new();
            if (b == NULL) {
                continue;
            }
            b->tick = GW_TICK_LIVE;
            b->tick_ms = now;
            if (gw_queue_push(p->work_q[k], b, sizeof(*b), 0) != 0) {
                free(b);
            }
        }
        pthread_mutex_lock(&p->clock_mu);
    }
    pthread_mutex_unlock(&p->clock_mu);
    return NULL;
}

/* ---- mqtt: redelivery dedupe ---- */

#define SEEN_SLOTS 16384 /* per generation; a generation holds at most half */

static uint64_t msg_identity(const gw_msg *m) {
    /* FNV-1a over topic, NUL and payload: the message's identity. */
    uint64_t h = 1469598103934665603ULL;
    size_t n = (size_t)m->topic_len + 1 + m->payload_len;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)m->data[i];
        h *= 1099511628211ULL;
    }
    return h != 0 ? h : 1;
}

static bool seen_has(const uint64_t *set, uint64_t h) {
    for (size_t i = h % SEEN_SLOTS;; i = (i + 1) % SEEN_SLOTS) {
        if (set[i] == 0) {
            return false;
        }
        if (set[i] == h) {
            return true;
        }
    }
}

/* Remembers every message; returns true when a DUP message was seen already. The set is
 * allocated at the first message; without memory nothing is deduplicated. */
static bool redelivered(gw_pipeline *p, const gw_msg *m) {
    if (p->seen[0] == NULL) {
        p->seen[0] = calloc(SEEN_SLOTS, sizeof(uint64_t));
        p->seen[1] = calloc(SEEN_SLOTS, sizeof(uint64_t));
        if (p->seen[0] == NULL || p->seen[1] == NULL) {
            free(p->seen[0]);
            free(p->seen[1]);
            p->seen[0] = p->seen[1] = NULL;
            return false;
        }
    }
    uint64_t h = msg_identity(m);
    if (m->dup && (seen_has(p->seen[0], h) || seen_has(p->seen[1], h))) {
        atomic_fetch_add(&p->redeliveries_dropped, 1);
        return true;
    }
    if (p->n_seen == SEEN_SLOTS / 2) {
        uint64_t *old = p->seen[1];
        p->seen[1] = p->seen[0];
        memset(old, 0, SEEN_SLOTS * sizeof(uint64_t));
        p->seen[0] = old;
        p->n_seen = 0;
    }
    size_t i = h % SEEN_SLOTS;
    while (p->seen[0][i] != 0 && p->seen[0][i] != h) {
        i = (i + 1) % SEEN_SLOTS;
    }
    if (p->seen[0][i] == 0) {
        p->seen[0][i] = h;
        p->n_seen++;
    }
    return false;
}

static void *decode_main(void *arg) {
    gw_pipeline *p = arg;
    void *items[64];
    for (;;) {
        size_t n = gw_queue_pop(p->ingest_q, items, NULL, 64, -1);
        if (n == 0) {
            break;
        }
        for (size_t i = 0; i < n; i++) {
            gw_msg *m = items[i];
            if (redelivered(p, m)) {
                free(m);
                continue;
            }
            p->cur_dup = m->dup;
            decode_one(p, m->data, m->topic_len, m->data + m->topic_len + 1, m->payload_len,
                       m->arrival_ms);
            free(m);
        }
        /* Hand over what this round produced so that a quiet stream is not held back. */
        flush_routes(p);
    }
    flush_routes(p);
    return NULL;
}

int gw_pipeline_ingest(gw_pipeline *p, const char *topic, size_t topic_len, const void *payload,
                       size_t payload_len) {
    return gw_pipeline_ingest_dup(p, topic, topic_len, payload, payload_len, false);
}

int gw_pipeline_ingest_dup(gw_pipeline *p, const char *topic, size_t topic_len, const void *payload,
                           size_t payload_len, bool dup) {
    gw_msg *m = malloc(sizeof(*m) + topic_len + payload_len + 2);
    if (m == NULL) {
        atomic_fetch_add(&p->ingest_dropped, 1);
        gw_queue_count_drop(p->ingest_q);
        GW_ERROR("ingest", "out of memory: message on '%.*s' dropped", (int)topic_len, topic);
        return GW_ENOMEM;
    }
    m->arrival_ms = gw_now_ms();
    m->topic_len = (uint32_t)topic_len;
    m->payload_len = (uint32_t)payload_len;
    m->dup = dup;
    memcpy(m->data, topic, topic_len);
    m->data[topic_len] = '\0';
    memcpy(m->data + topic_len + 1, payload, payload_len);
    m->data[topic_len + 1 + payload_len] = '\0';
    size_t bytes = sizeof(*m) + topic_len + payload_len + 2;
    int rc = gw_queue_push(p->ingest_q, m, bytes, p->cfg->pipeline.ingest_wait_ms);
    if (rc == GW_ETIMEDOUT) {
        if (!atomic_exchange(&p->ingest_stalled, true)) {
            GW_WARN("ingest",
                    "the ingest queue has been full for %d ms: the pipeline cannot keep up; "
                    "policy %s applies (counted in stats as ingest_dropped)",
                    p->cfg->pipeline.ingest_wait_ms,
                    p->cfg->pipeline.overflow == GW_OVERFLOW_BLOCK ? "block" : "drop_newest");
        }
        if (p->cfg->pipeline.overflow == GW_OVERFLOW_BLOCK) {
            rc = gw_queue_push(p->ingest_q, m, bytes, -1);
        }
    } else if (rc == 0 && atomic_load_explicit(&p->ingest_stalled, memory_order_relaxed)) {
        atomic_store(&p->ingest_stalled, false);
        GW_INFO("ingest", "the ingest queue accepts messages again");
    }
    if (rc != 0) {
        free(m);
        atomic_fetch_add(&p->ingest_dropped, 1);
        gw_queue_count_drop(p->ingest_q);
        return rc;
    }
    atomic_fetch_add_explicit(&p->messages_in, 1, memory_order_relaxed);
    return 0;
}

int gw_pipeline_start(gw_pipeline *p) {
    int rc;
    /* Failures are logged: the gateway runs without the earlier alerts' states. */
    (void)gw__restore_load(p);
    (void)gw__stale_preload_load(p);
    if (p->opts.sink != NULL) {
        rc = pthread_create(&p->pub_th, NULL, gw__publisher_main, p);
        if (rc != 0) {
            return -rc;
        }
        p->pub_running = true;
    }
    rc = pthread_create(&p->writer_th, NULL, gw__writer_main, p);
    if (rc != 0) {
        return -rc;
    }
    p->writer_running = true;
    for (int i = 0; i < p->n_workers; i++) {
        p->worker_args[i] = (gw_worker_arg){p, i, p->rules};
        rc = pthread_create(&p->worker_th[i], NULL, gw__worker_main, &p->worker_args[i]);
        if (rc != 0) {
            return -rc;
        }
        p->workers_running++;
    }
    if (!p->opts.inline_decode) {
        rc = pthread_create(&p->decode_th, NULL, decode_main, p);
        if (rc != 0) {
            return -rc;
        }
        p->decode_running = true;
        rc = pthread_create(&p->clock_th, NULL, clock_main, p);
        if (rc != 0) {
            return -rc;
        }
        p->clock_running = true;
    }
    p->started = true;
    return 0;
}

void gw_pipeline_stop(gw_pipeline *p) {
    if (p == NULL || p->stopped) {
        return;
    }
    p->stopped = true;
    if (p->clock_running) {
        pthread_mutex_lock(&p->clock_mu);
        p->clock_stop = true;
        pthread_cond_broadcast(&p->clock_cv);
        pthread_mutex_unlock(&p->clock_mu);
        pthread_join(p->clock_th, NULL);
        p->clock_running = false;
    }
    /* Each stage drains its input before its consumer's queue is closed, so everything that
     * was accepted reaches the database. */
    gw_queue_close(p->ingest_q);
    if (p->decode_running) {
        pthread_join(p->decode_th, NULL);
        p->decode_running = false;
    } else if (p->started) {
        /* The end of a replay: stale checks at the capture's last timestamp, and every open
         * window is summarised. */
        if (p->stream_seen) {
            send_ticks(p, GW_TICK_FLUSH, p->stream_max_ts);
        }
        flush_routes(p);
    }
    for (int i = 0; i < p->n_workers; i++) {
        gw_queue_close(p->work_q[i]);
    }
    for (int i = 0; i < p->workers_running; i++) {
        pthread_join(p->worker_th[i], NULL);
    }
    p->workers_running = 0;
    gw_queue_close(p->writer_q);
    if (p->writer_running) {
        pthread_join(p->writer_th, NULL);
        p->writer_running = false;
    }
    gw_queue_close(p->pub_q);
    pthread_mutex_lock(&p->ack_mu);
    pthread_cond_broadcast(&p->ack_cv);
    pthread_mutex_unlock(&p->ack_mu);
    if (p->pub_running) {
        pthread_join(p->pub_th, NULL);
        p->pub_running = false;
    }
    if (p->db != NULL) {
        gw__writer_mark_remaining(p);
    }
}

static void drain_free(gw_queue *q, void (*fn)(void *)) {
    if (q == NULL) {
        return;
    }
    void *items[64];
    size_t n;
    gw_queue_close(q);
    while ((n = gw_queue_pop(q, items, NULL, 64, 0)) > 0) {
        for (size_t i = 0; i < n; i++) {
            fn(items[i]);
        }
    }
    gw_queue_free(q);
}

static void free_pub(void *it) {
    gw__pub_item_free(it);
}

void gw_pipeline_free(gw_pipeline *p) {
    if (p == NULL) {
        return;
    }
    gw_pipeline_stop(p);
    drain_free(p->ingest_q, free);
    for (int i = 0; i < GW_MAX_WORKERS; i++) {
        drain_free(p->work_q[i], free);
        free(p->route[i]);
    }
    drain_free(p->writer_q, free);
    drain_free(p->pub_q, free_pub);
    if (p->db != NULL) {
        st_db_close(p->db);
    }
    gw_series_registry_free(p->series, gw__worker_free_state);
    gw__restore_free(p->restore);
    gw__stale_preload_free(p->stale_preload);
    gw_topic_map_free(p->topics);
    free(p->acked);
    for (size_t i = 0; i < p->n_unacked; i++) {
        gw__pub_item_free(p->unacked[i]);
    }
    for (size_t i = 0; i < p->n_retry; i++) {
        gw__pub_item_free(p->retry[i]);
    }
    free(p->unacked);
    free(p->retry);
    free(p->seen[0]);
    free(p->seen[1]);
    pthread_mutex_destroy(&p->ack_mu);
    pthread_cond_destroy(&p->ack_cv);
    pthread_mutex_destroy(&p->clock_mu);
    pthread_cond_destroy(&p->clock_cv);
    pthread_mutex_destroy(&p->sf_mu);
    while (p->rules != NULL) {
        gw_ruleset *older = p->rules->older;
        free(p->rules);
        p->rules = older;
    }
    free(p);
}

void gw_pipeline_alert_delivered(gw_pipeline *p, int64_t alert_id) {
    pthread_mutex_lock(&p->ack_mu);
    if (p->inflight > 0) {
        p->inflight--;
    }
    /* The writer marks these published; if it falls behind, the oldest marks wait for the
     * next start (the alert is then sent again, and its id lets subscribers drop it). */
    if (alert_id != 0 && p->n_acked < p->cap_acked) {
        p->acked[p->n_acked++] = alert_id;
    }
    gw_pub_item *it = gw__unacked_take(p, alert_id);
    pthread_cond_broadcast(&p->ack_cv);
    pthread_mutex_unlock(&p->ack_mu);
    gw__pub_item_free(it);
    atomic_fetch_add(&p->alerts_published, 1);
}

void gw_pipeline_alert_failed(gw_pipeline *p, int64_t alert_id) {
    pthread_mutex_lock(&p->ack_mu);
    if (p->inflight > 0) {
        p->inflight--;
    }
    /* mqtt: the publisher sends it again once the connection is back. */
    gw_pub_item *it = gw__unacked_take(p, alert_id);
    if (it != NULL && p->n_retry < (size_t)p->opts.max_inflight) {
        p->retry[p->n_retry++] = it;
        it = NULL;
    }
    gw__pub_item_free(it);
    pthread_cond_broadcast(&p->ack_cv);
    pthread_mutex_unlock(&p->ack_mu);
}

void gw_pipeline_stats_get(gw_pipeline *p, gw_pipeline_stats *st) {
    memset(st, 0, sizeof(*st));
    st->messages_in = atomic_load(&p->messages_in);
    st->ingest_dropped = atomic_load(&p->ingest_dropped);
    st->readings = atomic_load(&p->readings);
    for (int i = 0; i < GW_DEC_REASON_COUNT; i++) {
        st->decode_errors[i] = atomic_load(&p->decode_errors[i]);
    }
    st->series_rejected = atomic_load(&p->series_rejected);
    st->rows_stored = atomic_load(&p->rows_stored);
    st->rows_failed = atomic_load(&p->rows_failed);
    st->rows_duplicate = atomic_load(&p->rows_duplicate);
    st->alerts = atomic_load(&p->alerts);
    st->alerts_published = atomic_load(&p->alerts_published);
    st->late_readings = atomic_load(&p->late_readings);
    st->summaries = atomic_load(&p->summaries);
    st->summaries_failed = atomic_load(&p->summaries_failed);
    st->series = gw_series_count(p->series);
    st->redeliveries_dropped = atomic_load(&p->redeliveries_dropped);
    st->redeliveries_stored_only = atomic_load(&p->redeliveries_stored_only);
    st->retention_passes = atomic_load(&p->retention_passes);
    st->retention_deleted = atomic_load(&p->retention_deleted);
    st->retention_summaries = atomic_load(&p->retention_summaries);
    size_t n = 0;
    gw_queue_stats_get(p->ingest_q, &st->queues[n++]);
    for (int i = 0; i < p->n_workers; i++) {
        gw_queue_stats_get(p->work_q[i], &st->queues[n++]);
    }
    gw_queue_stats_get(p->writer_q, &st->queues[n++]);
    gw_queue_stats_get(p->pub_q, &st->queues[n++]);
    st->n_queues = n;
    gw_pipeline_storage_status(p, &st->storage);
}

void gw_pipeline_storage_status(gw_pipeline *p, gw_sf_status *st) {
    pthread_mutex_lock(&p->sf_mu);
    *st = p->sf;
    pthread_mutex_unlock(&p->sf_mu);
}

void gw_pipeline_log_stats(gw_pipeline *p, const char *when) {
    gw_pipeline_stats st;
    gw_pipeline_stats_get(p, &st);
    char errs[512] = "";
    size_t used = 0;
    for (int i = 1; i < GW_DEC_REASON_COUNT; i++) {
        if (st.decode_errors[i] > 0 && used < sizeof(errs)) {
            used += (size_t)snprintf(errs + used, sizeof(errs) - used, " %s=%llu",
                                     gw_decode_reason_name((gw_decode_reason)i),
                                     (unsigned long long)st.decode_errors[i]);
        }
    }
    char qs[1024] = "";
    used = 0;
    for (size_t i = 0; i < st.n_queues && used < sizeof(qs); i++) {
        used += (size_t)snprintf(
            qs + used, sizeof(qs) - used, " %s(hwm=%llu waits=%llu drops=%llu)", st.queues[i].name,
            (unsigned long long)st.queues[i].hwm, (unsigned long long)st.queues[i].waits,
            (unsigned long long)st.queues[i].drops);
    }
    GW_INFO("stats",
            "%s: messages_in=%llu readings=%llu stored=%llu store_failed=%llu duplicates=%llu "
            "series=%llu "
            "late=%llu summaries=%llu alerts=%llu published=%llu ingest_dropped=%llu "
            "series_rejected=%llu storage=%s storage_faults=%llu alerts_shed=%llu "
            "decode_errors:%s queues:%s",
            when, (unsigned long long)st.messages_in, (unsigned long long)st.readings,
            (unsigned long long)st.rows_stored, (unsigned long long)st.rows_failed,
            (unsigned long long)st.rows_duplicate, (unsigned long long)st.series,
            (unsigned long long)st.late_readings, (unsigned long long)st.summaries,
            (unsigned long long)st.alerts, (unsigned long long)st.alerts_published,
            (unsigned long long)st.ingest_dropped, (unsigned long long)st.series_rejected,
            gw_sf_kind_name(st.storage.kind), (unsigned long long)st.storage.faults,
            (unsigned long long)st.storage.alerts_shed, errs[0] ? errs : " none", qs);
}
