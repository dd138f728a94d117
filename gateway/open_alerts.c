/* The open alerts of a worker; see open_alerts.h. Open addressing with linear probing; a
 * removal shifts the entries of its probe run back (no tombstones), and moves the last item
 * of the dense array into the freed place. */
#include "open_alerts.h"

#include <errno.h>
#include <stdlib.h>

#define MIN_SLOTS 16

static uint64_t key_hash(uint32_t series, int rule, an_kind kind) {
    uint64_t x = ((uint64_t)series << 32) | ((uint64_t)(uint16_t)rule << 8) | (uint8_t)kind;
    /* splitmix64's finaliser: every input bit moves the low bits the mask keeps. */
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

static bool same_key(const gw_open_alert *e, uint32_t series, int rule, an_kind kind) {
    return e->series == series && e->a.rule == rule && e->a.kind == kind;
}

static size_t home_of(const gw_open_alerts *t, const gw_open_alert *e) {
    return (size_t)key_hash(e->series, e->a.rule, e->a.kind) & (t->n_slots - 1);
}

/* The slot that holds the key, or the empty slot where it would go. n_slots > 0, and the table
 * is never full (load at most 1/2), so the probe ends. */
static size_t probe(const gw_open_alerts *t, uint32_t series, int rule, an_kind kind) {
    size_t mask = t->n_slots - 1;
    size_t i = (size_t)key_hash(series, rule, kind) & mask;
    while (t->slots[i] != 0 && !same_key(&t->items[t->slots[i] - 1], series, rule, kind)) {
        i = (i + 1) & mask;
    }
    return i;
}

static int grow_slots(gw_open_alerts *t, size_t n_slots) {
    uint32_t *slots = calloc(n_slots, sizeof(*slots));
    if (slots == NULL) {
        return -ENOMEM;
    }
    free(t->slots);
    t->slots = slots;
    t->n_slots = n_slots;
    for (size_t k = 0; k < t->n; k++) {
        const gw_open_alert *e = &t->items[k];
        t->slots[probe(t, e->series, e->a.rule, e->a.kind)] = (uint32_t)(k + 1);
    }
    return 0;
}

/* Room for one more entry. */
static int reserve(gw_open_alerts *t) {
    if (t->n >= UINT32_MAX - 1) {
        return -ENOMEM;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        gw_open_alert *items = realloc(t->items, cap * sizeof(*items));
        if (items == NULL) {
            return -ENOMEM;
        }
        t->items = items;
        t->cap = cap;
    }
    if ((t->n + 1) * 2 > t->n_slots) {
        return grow_slots(t, t->n_slots ? t->n_slots * 2 : MIN_SLOTS);
    }
    return 0;
}

/* Empties slot i and shifts back the entries after it that probed past it. */
static void delete_slot(gw_open_alerts *t, size_t i) {
    size_t mask = t->n_slots - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (t->slots[j] == 0) {
            break;
        }
        size_t home = home_of(t, &t->items[t->slots[j] - 1]);
        /* The entry at j may move to i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i] = 0;
}

int gw_open_alerts_note(gw_open_alerts *t, uint32_t series, const an_alert *a) {
    if (a->state != AN_STATE_RAISED) {
        (void)gw_open_alerts_remove(t, series, a->rule, a->kind);
        return 0;
    }
    if (t->n_slots > 0) {
        size_t i = probe(t, series, a->rule, a->kind);
        if (t->slots[i] != 0) {
            t->items[t->slots[i] - 1].a = *a;
            return 0;
        }
    }
    int rc = reserve(t);
    if (rc != 0) {
        return rc;
    }
    t->items[t->n] = (gw_open_alert){series, *a};
    t->slots[probe(t, series, a->rule, a->kind)] = (uint32_t)(t->n + 1);
    t->n++;
    return 0;
}

const gw_open_alert *gw_open_alerts_find(const gw_open_alerts *t, uint32_t series, int rule,
                                         an_kind kind) {
    if (t->n == 0) {
        return NULL;
    }
    size_t i = probe(t, series, rule, kind);
    return t->slots[i] != 0 ? &t->items[t->slots[i] - 1] : NULL;
}

bool gw_open_alerts_remove(gw_open_alerts *t, uint32_t series, int rule, an_kind kind) {
    if (t->n == 0) {
        return false;
    }
    size_t i = probe(t, series, rule, kind);
    if (t->slots[i] == 0) {
        return false;
    }
    size_t k = t->slots[i] - 1;
    delete_slot(t, i);
    size_t last = t->n - 1;
    if (k != last) {
        const gw_open_alert *e = &t->items[last];
        t->slots[probe(t, e->series, e->a.rule, e->a.kind)] = (uint32_t)(k + 1);
        t->items[k] = *e;
    }
    t->n--;
    return true;
}

void gw_open_alerts_free(gw_open_alerts *t) {
    free(t->items);
    free(t->slots);
    *t = (gw_open_alerts){0};
}
