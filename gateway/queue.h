/* Bounded queue between two stages, bounded by item count and by bytes. Items are pointers;
 * a successful push transfers ownership of the item to the queue, a pop transfers it to the
 * consumer. Multi-producer, multi-consumer; FIFO.
 *
 * Backpressure: a push onto a full queue blocks up to timeout_ms (-1: without limit). A pop
 * on an empty queue blocks up to timeout_ms. After gw_queue_close, pushes fail with
 * GW_ECLOSED and pops drain what is left, then return 0 items without waiting.
 * Each queue counts depth, bytes, high-water mark, pushes, waits (pushes that had to block)
 * and drops (reported by the caller through gw_queue_count_drop). */
#ifndef GW_QUEUE_H
#define GW_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_ETIMEDOUT (-110)
#define GW_ECLOSED   (-32)
#define GW_ENOMEM    (-12)
#define GW_EINVAL    (-22)

typedef struct gw_queue gw_queue;

typedef struct gw_queue_stats {
    const char *name;
    uint64_t depth, bytes, hwm, pushes, waits, drops;
    uint64_t cap_items, cap_bytes;
} gw_queue_stats;

/* Creates a queue holding at most max_items items and max_bytes bytes (an item larger than
 * max_bytes is still accepted when the queue is empty, so that nothing can block forever).
 * Borrows name (must be static). Returns 0, GW_EINVAL or GW_ENOMEM. */
int gw_queue_new(gw_queue **out, const char *name, size_t max_items, size_t max_bytes);
void gw_queue_free(gw_queue *q); /* the queue must be empty or its items are leaked */

/* Pushes one item of `bytes` bytes. Returns 0, GW_ETIMEDOUT (the caller still owns the item)
 * or GW_ECLOSED. Any thread. */
int gw_queue_push(gw_queue *q, void *item, size_t bytes, int timeout_ms);

/* Like gw_queue_push, but a waiting consumer is only woken when `wake` is true or the queue is
 * half full: for consumers that poll on a timer anyway (the writer commits per tick), so that
 * a stream of small batches does not cost a context switch each. */
int gw_queue_push_lazy(gw_queue *q, void *item, size_t bytes, int timeout_ms, bool wake);

/* Pops up to max items into items[] (and their byte sizes into sizes[] when not NULL).
 * Blocks up to timeout_ms (-1: without limit) while the queue is empty and open.
 * Returns the number of items (0 on timeout or when closed and drained). Any thread. */
size_t gw_queue_pop(gw_queue *q, void **items, size_t *sizes, size_t max, int timeout_ms);

/* Removes and returns the oldest item without blocking (NULL when empty); used to apply a
 * drop-oldest policy. */
void *gw_queue_steal_oldest(gw_queue *q, size_t *bytes);

void gw_queue_close(gw_queue *q);
int gw_queue_is_closed(gw_queue *q);
void gw_queue_count_drop(gw_queue *q);
void gw_queue_stats_get(gw_queue *q, gw_queue_stats *out);

#endif
