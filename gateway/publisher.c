/* Publisher stage: sends committed alerts in order, QoS1, with a bounded number in flight.
 * An alert that cannot be sent (broker away) is retried with a backoff; on stop the publisher
 * keeps trying for a short grace period and leaves the rest in the outbox for the next
 * start. */
#include <stdlib.h>
#include <string.h>

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

/* ---- mqtt: alerts in flight are kept until acknowledged, to resend after a reconnect ---- */

static char *dup_or_null(const char *s, bool *ok) {
    if (s == NULL) {
        return NULL;
    }
    char *d = strdup(s);
    *ok = *ok && d != NULL;
    return d;
}

static gw_pub_item *copy_item(const gw_pub_item *it) {
    gw_pub_item *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    bool ok = true;
    *c = *it;
    c->topic = dup_or_null(it->topic, &ok);
    c->payload = dup_or_null(it->payload, &ok);
    c->state_topic = dup_or_null(it->state_topic, &ok);
    c->state_payload = dup_or_null(it->state_payload, &ok);
    if (!ok) {
        gw__pub_item_free(c);
        return NULL;
    }
    return c;
}

gw_pub_item *gw__unacked_take(gw_pipeline *p, int64_t id) {
    for (size_t i = 0; i < p->n_unacked; i++) {
        if (p->unacked[i]->id == id) {
            gw_pub_item *it = p->unacked[i];
            memmove(&p->unacked[i], &p->unacked[i + 1],
                    (p->n_unacked - i - 1) * sizeof(*p->unacked));
            p->n_unacked--;
            return it;
        }
    }
    return NULL;
}

/* Keeps a copy before the send: the PUBACK may arrive before send() returns. Without memory
 * or room the alert is not tracked and, if its connection drops, waits for the next start. */
static void track(gw_pipeline *p, const gw_pub_item *it) {
    gw_pub_item *c = copy_item(it);
    pthread_mutex_lock(&p->ack_mu);
    if (c != NULL && p->n_unacked < (size_t)p->opts.max_inflight) {
        p->unacked[p->n_unacked++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&p->ack_mu);
    gw__pub_item_free(c);
}

static void untrack(gw_pipeline *p, int64_t id) {
    pthread_mutex_lock(&p->ack_mu);
    gw_pub_item *c = gw__unacked_take(p, id);
    pthread_mutex_unlock(&p->ack_mu);
    gw__pub_item_free(c);
}

static int by_id(const void *a, const void *b) {
    int64_t x = (*(gw_pub_item *const *)a)->id, y = (*(gw_pub_item *const *)b)->id;
    return x < y ? -1 : x > y;
}

/* Takes the alerts whose connection dropped while in flight, oldest first. */
static size_t take_retries(gw_pipeline *p, gw_pub_item **out, size_t max) {
    pthread_mutex_lock(&p->ack_mu);
    size_t n = p->n_retry < max ? p->n_retry : max;
    memcpy(out, p->retry, n * sizeof(*out));
    memmove(p->retry, p->retry + n, (p->n_retry - n) * sizeof(*p->retry));
    p->n_retry -= n;
    pthread_mutex_unlock(&p->ack_mu);
    qsort(out, n, sizeof(*out), by_id);
    return n;
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
        track(p, it);
        int rc =
            ops->send(p->opts.sink_ctx, it->topic, it->payload, it->payload_len, 1, false, it->id);
        if (rc != 0) {
            untrack(p, it->id);
        }
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
        gw_pub_item *again[16];
        size_t k = take_retries(p, again, 16);
        if (k > 0) {
            GW_INFO("publisher",
                    "sending %zu alerts again that were in flight when the "
                    "connection dropped",
                    k);
        }
        for (size_t i = 0; i < k; i++) {
            if (!send_item(p, again[i])) {
                left_over++;
            }
            gw__pub_item_free(again[i]);
        }
        /* A timeout, so that alerts to send again are noticed while the queue is quiet. */
        size_t n = gw_queue_pop(p->pub_q, items, NULL, 16, 250);
        if (n == 0) {
            if (gw_queue_is_closed(p->pub_q)) {
                break;
            }
            continue;
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
