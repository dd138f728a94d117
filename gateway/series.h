/* Series registry: interns (sensor, metric) into a dense id. The decode stage is the only
 * writer (gw_series_intern); every stage may read a series by id once the id has reached it
 * through a queue (the queue's lock orders the accesses). Entries never move or die before
 * gw_series_registry_free, so pointers stay valid.
 *
 * Fields after the names belong to one stage each, as marked; no locks guard them. */
#ifndef GW_SERIES_H
#define GW_SERIES_H

#include <stddef.h>
#include <stdint.h>

typedef struct gw_series {
    uint32_t id;
    uint32_t hash; /* of sensor and metric; hash % workers picks the owning worker */
    const char *sensor;
    const char *metric;
    void *wstate;  /* owned by the worker that owns the series */
    int64_t db_id; /* owned by the writer: id in the SQLite series table, 0 = not yet known */
    int64_t last_stored_ms;  /* owned by the writer: newest ts stored, INT64_MIN = none yet */
    int64_t last_arrival_ms; /* owned by the decode thread: newest arrival time given to a
                                reading without its own ts, INT64_MIN = none yet */
    int64_t newest_ms;       /* owned by the decode thread: newest ts routed, INT64_MIN = none */
} gw_series;

typedef struct gw_series_registry gw_series_registry;

/* Creates a registry for at most max_series series. Returns 0 or -ENOMEM / -EINVAL. */
int gw_series_registry_new(gw_series_registry **out, size_t max_series);
/* Frees the registry and the entries; calls free_wstate(wstate) for entries that have one. */
void gw_series_registry_free(gw_series_registry *r, void (*free_wstate)(void *));

/* Finds or adds (sensor, metric). Borrows the names (copies them on insert). Decode thread
 * only. Returns 0, -ENOSPC when max_series is reached, -ENOMEM. */
int gw_series_intern(gw_series_registry *r, const char *sensor, const char *metric,
                     gw_series **out);

/* The series with this id (which the caller got through a queue). Any thread. */
gw_series *gw_series_get(const gw_series_registry *r, uint32_t id);

/* Number of series interned so far (a snapshot). Any thread. */
size_t gw_series_count(const gw_series_registry *r);

/* The hash used for worker ownership; stable across runs (FNV-1a of sensor NUL metric). */
uint32_t gw_series_hash(const char *sensor, const char *metric);

#endif
