/* The open alerts of a worker: every alert its rules raised (or that were restored at start)
 * and have not cleared, with the raised transition. A reload (SIGHUP) needs them: an open
 * alert of a changed rule goes on in the new rule's state machine, one whose rule is gone is
 * cleared with the figures of its raise (docs/history.md, "Active alerts across a restart",
 * "On a reload").
 *
 * A hash map keyed by (series, rule index, kind): the entries in one dense array, an index of
 * 4-byte slots over it. Each table belongs to one worker thread: no locks. Transitions are rare
 * next to readings, so a table costs nothing on the hot path and holds only open alerts. */
#ifndef GW_OPEN_ALERTS_H
#define GW_OPEN_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "an_types.h"

typedef struct gw_open_alert {
    uint32_t series;
    an_alert a; /* the raised transition; a.rule (index in the worker's rule set) and a.kind
                   are part of the key */
} gw_open_alert;

/* Zero-initialised, it is an empty table. */
typedef struct gw_open_alerts {
    gw_open_alert *items; /* items[0..n) */
    size_t n, cap;
    uint32_t *slots; /* 0: empty; else the index in items plus 1 */
    size_t n_slots;  /* a power of two, or 0 before the first entry */
} gw_open_alerts;

/* Records a transition: a raise adds its entry (or replaces the one with its key), a clear
 * removes it. Borrows a. Returns 0, or -ENOMEM when a raise could not be recorded (the table
 * is unchanged). */
int gw_open_alerts_note(gw_open_alerts *t, uint32_t series, const an_alert *a);

/* The entry with this key, or NULL. The pointer is valid until the table changes. */
const gw_open_alert *gw_open_alerts_find(const gw_open_alerts *t, uint32_t series, int rule,
                                         an_kind kind);

/* Removes the entry with this key; returns whether there was one. */
bool gw_open_alerts_remove(gw_open_alerts *t, uint32_t series, int rule, an_kind kind);

/* Frees the table's memory and leaves it empty (usable again). */
void gw_open_alerts_free(gw_open_alerts *t);

#endif
