#include "series.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BITS 12
#define CHUNK_SIZE (1u << CHUNK_BITS)

struct gw_series_registry {
    size_t max_series;
    atomic_size_t count;
    gw_series ***chunks; /* id -> entry, in chunks so that readers never see a realloc */
    size_t n_chunks;
    gw_series **slots; /* open addressing, power-of-two size, decode thread only */
    size_t n_slots;
};

uint32_t gw_series_hash(const char *sensor, const char *metric) {
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)sensor; *p; p++) {
        h = (h ^ *p) * 16777619u;
    }
    h = (h ^ 0u) * 16777619u;
    for (const unsigned char *p = (const unsigned char *)metric; *p; p++) {
        h = (h ^ *p) * 16777619u;
    }
    return h;
}

int gw_series_registry_new(gw_series_registry **out, size_t max_series) {
    if (max_series == 0 || max_series > UINT32_MAX) {
        return -EINVAL;
    }
    gw_series_registry *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        goto fail_struct;
    }
    r->max_series = max_series;
    r->n_chunks = (max_series + CHUNK_SIZE - 1) / CHUNK_SIZE;
    r->chunks = calloc(r->n_chunks, sizeof(*r->chunks));
    if (r->chunks == NULL) {
        goto fail_chunks;
    }
    r->n_slots = 1024;
    r->slots = calloc(r->n_slots, sizeof(*r->slots));
    if (r->slots == NULL) {
        goto fail_slots;
    }
    *out = r;
    return 0;

fail_slots:
    free(r->chunks);
fail_chunks:
    free(r);
fail_struct:
    return -ENOMEM;
}

void gw_series_registry_free(gw_series_registry *r, void (*free_wstate)(void *)) {
    if (r == NULL) {
        return;
    }
    size_t n = atomic_load(&r->count);
    for (size_t id = 0; id < n; id++) {
        gw_series *s = r->chunks[id >> CHUNK_BITS][id & (CHUNK_SIZE - 1)];
        if (s->wstate != NULL && free_wstate != NULL) {
            free_wstate(s->wstate);
        }
        free(s);
    }
    for (size_t i = 0; i < r->n_chunks; i++) {
        free(r->chunks[i]);
    }
    free(r->chunks);
    free(r->slots);
    free(r);
}

static int grow_slots(gw_series_registry *r) {
    size_t n = r->n_slots * 2;
    gw_series **slots = calloc(n, sizeof(*slots));
    if (slots == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < r->n_slots; i++) {
        gw_series *s = r->slots[i];
        if (s == NULL) {
            continue;
        }
        size_t j = s->hash & (n - 1);
        while (slots[j] != NULL) {
            j = (j + 1) & (n - 1);
        }
        slots[j] = s;
    }
    free(r->slots);
    r->slots = slots;
    r->n_slots = n;
    return 0;
}

int gw_series_intern(gw_series_registry *r, const char *sensor, const char *metric,
                     gw_series **out) {
    uint32_t h = gw_series_hash(sensor, metric);
    size_t mask = r->n_slots - 1;
    size_t j = h & mask;
    for (gw_series *s; (s = r->slots[j]) != NULL; j = (j + 1) & mask) {
        if (s->hash == h && strcmp(s->sensor, sensor) == 0 && strcmp(s->metric, metric) == 0) {
            *out = s;
            return 0;
        }
    }
    size_t id = atomic_load(&r->count);
    if (id >= r->max_series) {
        return -ENOSPC;
    }
    gw_series **chunk = r->chunks[id >> CHUNK_BITS];
    if (chunk == NULL) {
        chunk = calloc(CHUNK_SIZE, sizeof(*chunk));
        if (chunk == NULL) {
            return -ENOMEM;
        }
        r->chunks[id >> CHUNK_BITS] = chunk;
    }
    size_t ls = strlen(sensor) + 1, lm = strlen(metric) + 1;
    gw_series *s = malloc(sizeof(*s) + ls + lm);
    if (s == NULL) {
        return -ENOMEM;
    }
    char *names = (char *)(s + 1);
    memcpy(names, sensor, ls);
    memcpy(names + ls, metric, lm);
    s->id = (uint32_t)id;
    s->hash = h;
    s->sensor = names;
    s->metric = names + ls;
    s->wstate = NULL;
    s->db_id = 0;
    s->last_stored_ms = INT64_MIN;
    s->last_arrival_ms = INT64_MIN;
    s->newest_ms = INT64_MIN;
    /* Keep the load factor under one half. */
    if ((id + 1) * 2 > r->n_slots) {
        if (grow_slots(r) != 0) {
            free(s);
            return -ENOMEM;
        }
        mask = r->n_slots - 1;
        j = h & mask;
        while (r->slots[j] != NULL) {
            j = (j + 1) & mask;
        }
    }
    r->slots[j] = s;
    chunk[id & (CHUNK_SIZE - 1)] = s;
    atomic_store(&r->count, id + 1);
    *out = s;
    return 0;
}

gw_series *gw_series_get(const gw_series_registry *r, uint32_t id) {
    return r->chunks[id >> CHUNK_BITS][id & (CHUNK_SIZE - 1)];
}

size_t gw_series_count(const gw_series_registry *r) {
    return atomic_load(&((gw_series_registry *)r)->count);
}
