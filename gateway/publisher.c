/* Publisher stage: sends committed alerts in order, QoS1, with a bounded number in flight.
 * An alert that cannot be sent (broker away) is retried with a backoff; on stop the publisher
 * keeps trying for a short grace period and leaves the rest in the outbox for the next
 * start. */
#include <stdlib.h>

#include "clock.h"
#include "pipeline_internal.h"

#define STOP_GRACE_MS 3000

static bool wait_window(gw_pipeline *p, bool stopping, int64_t deadline) {
    pthread_mutex_lock(&p->ack_mu);
    while (p->inflight >= p->opts.max_inflight) {
        if (stopping && gw_mono_ms() >= deadline) {
            pthread_mutex_unlock(&p->ack_mu);
            return false;
        }
        struct timespec ts;
        gw_deadline_after(&ts, CLOCK_REALTIME, 100);
        pthread_cond_timedwait(&p->ack_cv, &p->ack_mu, &ts);
    }
    p->inflight++;
    pthread_mutex_unlock(&p->ack_mu);
    return true;
}

static void release_window(gw_pipeline *p) {
    pthread_mutex_lock(&p->ack_mu);
    p->inflight--;
    pthread_mutex_unlock(&p->ack_mu);
}

/* Sends one item; returns false when it gave up (stopping and past the grace period). */
static bool send_item(gw_pipeline *p, gw_pub_item *it) {
    const gw_sink_ops *ops = p->opts.sink;
    int backoff = 100;
    int64_t deadline = 0;
    for (;;) {
        bool stopping = gw_queue_is_closed(p->pub_q);
        if (stopping && deadline == 0) {
            deadline = gw_mono_ms() + STOP_GRACE_MS;
        }
        if (!wait_window(p, stopping, deadline)) {
            return false;
        }
        int rc =
            ops->send(p->opts.sink_ctx, it->topic, it->payload, it->payload_len, 1, false, it->id);
        if (rc == 0) {
            /* The state topic holds the current state of (series, kind) for new subscribers;
             * cleared is an empty retained message so that nothing stale lingers. */
            ops->send(p->opts.sink_ctx, it->state_topic,
                      it->state_payload != NULL ? it->state_payload : "", it->state_len, 1, true,
                      0);
            return true;
        }
        release_window(p);
        if (stopping && gw_mono_ms() >= deadline) {
            return false;
        }
        struct timespec ts = {0, (long)backoff * 1000000L};
        nanosleep(&ts, NULL);
        backoff = backoff < 5000 ? backoff * 2 : 5000;
    }
}

void *gw__publisher_main(void *arg) {
    gw_pipeline *p = arg;
    void *items[16];
    size_t left_over = 0;
    for (;;) {
        size_t n = gw_queue_pop(p->pub_q, items, NULL, 16, -1);
        if (n == 0) {
            break;
        }
        for (size_t i = 0; i < n; i++) {
            gw_pub_item *it = items[i];
            if (it->plain) {
                /* Summaries: QoS 0, best effort (SQLite has them). */
                p->opts.sink->send(p->opts.sink_ctx, it->topic, it->payload, it->payload_len, 0,
                                   false, 0);
                gw__pub_item_free(it);
                continue;
            }
            if (!send_item(p, it)) {
                left_over++;
            }
            gw__pub_item_free(it);
        }
    }
    if (left_over > 0) {
        GW_WARN("publisher",
                "%zu alerts not published before stop; they stay in the outbox "
                "and are sent at the next start",
                left_over);
    }
    /* Give the last PUBACKs a moment, so that their alerts are marked published. */
    int64_t deadline = gw_mono_ms() + STOP_GRACE_MS;
    pthread_mutex_lock(&p->ack_mu);
    while (p->inflight > 0 && gw_mono_ms() < deadline) {
        struct timespec ts;
        gw_deadline_after(&ts, CLOCK_REALTIME, 50);
        pthread_cond_timedwait(&p->ack_cv, &p->ack_mu, &ts);
    }
    pthread_mutex_unlock(&p->ack_mu);
    return NULL;
}
