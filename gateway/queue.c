#include "queue.h"

#include "clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct gw_queue {
    pthread_mutex_t mu;
    pthread_cond_t not_empty;
    pthread_cond_t not_full;
    const char *name;
    void **items;
    size_t *sizes;
    size_t cap_items;
    size_t cap_bytes;
    size_t head; /* index of the oldest item */
    size_t count;
    size_t bytes;
    int closed;
    int waiting_consumers;
    int waiting_producers;
    uint64_t hwm, pushes, waits, drops;
};

int gw_queue_new(gw_queue **out, const char *name, size_t max_items, size_t max_bytes) {
    if (max_items == 0 || max_bytes == 0) {
        return GW_EINVAL;
    }
    gw_queue *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        goto fail_struct;
    }
    q->items = calloc(max_items, sizeof(*q->items));
    if (q->items == NULL) {
        goto fail_items;
    }
    q->sizes = calloc(max_items, sizeof(*q->sizes));
    if (q->sizes == NULL) {
        goto fail_sizes;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_empty, &ca);
    pthread_cond_init(&q->not_full, &ca);
    pthread_condattr_destroy(&ca);
    q->name = name;
    q->cap_items = max_items;
    q->cap_bytes = max_bytes;
    *out = q;
    return 0;

fail_sizes:
    free(q->items);
fail_items:
    free(q);
fail_struct:
    return GW_ENOMEM;
}

void gw_queue_free(gw_queue *q) {
    if (q == NULL) {
        return;
    }
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    free(q->sizes);
    free(q->items);
    free(q);
}

/* An item larger than the byte bound still fits into an empty queue; otherwise a single
 * oversized item would block its producer forever. */
static int has_room(const gw_queue *q, size_t bytes) {
    if (q->count >= q->cap_items) {
        return 0;
    }
    return q->count == 0 || q->bytes + bytes <= q->cap_bytes;
}

static int push(gw_queue *q, void *item, size_t bytes, int timeout_ms, bool wake_always);

int gw_queue_push(gw_queue *q, void *item, size_t bytes, int timeout_ms) {
    return push(q, item, bytes, timeout_ms, true);
}

int gw_queue_push_lazy(gw_queue *q, void *item, size_t bytes, int timeout_ms, bool wake) {
    return push(q, item, bytes, timeout_ms, wake);
}

static int push(gw_queue *q, void *item, size_t bytes, int timeout_ms, bool wake_always) {
    pthread_mutex_lock(&q->mu);
    if (!q->closed && !has_room(q, bytes)) {
        if (timeout_ms == 0) {
            pthread_mutex_unlock(&q->mu);
            return GW_ETIMEDOUT;
        }
        q->waits++;
        struct timespec dl;
        if (timeout_ms > 0) {
            gw_deadline_after(&dl, CLOCK_MONOTONIC, timeout_ms);
        }
        q->waiting_producers++;
        while (!q->closed && !has_room(q, bytes)) {
            int rc = timeout_ms < 0 ? pthread_cond_wait(&q->not_full, &q->mu)
                                    : pthread_cond_timedwait(&q->not_full, &q->mu, &dl);
            if (rc == ETIMEDOUT && !has_room(q, bytes)) {
                q->waiting_producers--;
                pthread_mutex_unlock(&q->mu);
                return GW_ETIMEDOUT;
            }
        }
        q->waiting_producers--;
    }
    if (q->closed) {
        pthread_mutex_unlock(&q->mu);
        return GW_ECLOSED;
    }
    size_t tail = (q->head + q->count) % q->cap_items;
    q->items[tail] = item;
    q->sizes[tail] = bytes;
    q->count++;
    q->bytes += bytes;
    q->pushes++;
    if (q->count > q->hwm) {
        q->hwm = q->count;
    }
    int wake = q->waiting_consumers > 0 &&
               (wake_always || q->count * 2 >= q->cap_items || q->bytes * 2 >= q->cap_bytes);
    pthread_mutex_unlock(&q->mu);
    if (wake) {
        pthread_cond_signal(&q->not_empty);
    }
    return 0;
}

size_t gw_queue_pop(gw_queue *q, void **items, size_t *sizes, size_t max, int timeout_ms) {
    pthread_mutex_lock(&q->mu);
    if (q->count == 0 && !q->closed && timeout_ms != 0) {
        struct timespec dl;
        if (timeout_ms > 0) {
            gw_deadline_after(&dl, CLOCK_MONOTONIC, timeout_ms);
        }
        q->waiting_consumers++;
        while (q->count == 0 && !q->closed) {
            int rc = timeout_ms < 0 ? pthread_cond_wait(&q->not_empty, &q->mu)
                                    : pthread_cond_timedwait(&q->not_empty, &q->mu, &dl);
            if (rc == ETIMEDOUT) {
                break;
            }
        }
        q->waiting_consumers--;
    }
    size_t n = 0;
    while (n < max && q->count > 0) {
        items[n] = q->items[q->head];
        if (sizes != NULL) {
            sizes[n] = q->sizes[q->head];
        }
        q->bytes -= q->sizes[q->head];
        q->head = (q->head + 1) % q->cap_items;
        q->count--;
        n++;
    }
    int wake = n > 0 && q->waiting_producers > 0;
    pthread_mutex_unlock(&q->mu);
    if (wake) {
        pthread_cond_broadcast(&q->not_full);
    }
    return n;
}

void *gw_queue_steal_oldest(gw_queue *q, size_t *bytes) {
    void *item = NULL;
    gw_queue_pop(q, &item, bytes, 1, 0);
    return item;
}

void gw_queue_close(gw_queue *q) {
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_mutex_unlock(&q->mu);
    pthread_cond_broadcast(&q->not_empty);
    pthread_cond_broadcast(&q->not_full);
}

int gw_queue_is_closed(gw_queue *q) {
    pthread_mutex_lock(&q->mu);
    int c = q->closed;
    pthread_mutex_unlock(&q->mu);
    return c;
}

void gw_queue_count_drop(gw_queue *q) {
    pthread_mutex_lock(&q->mu);
    q->drops++;
    pthread_mutex_unlock(&q->mu);
}

void gw_queue_stats_get(gw_queue *q, gw_queue_stats *out) {
    pthread_mutex_lock(&q->mu);
    out->name = q->name;
    out->depth = q->count;
    out->bytes = q->bytes;
    out->hwm = q->hwm;
    out->pushes = q->pushes;
    out->waits = q->waits;
    out->drops = q->drops;
    out->cap_items = q->cap_items;
    out->cap_bytes = q->cap_bytes;
    pthread_mutex_unlock(&q->mu);
}
