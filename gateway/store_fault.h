/* Storage faults: what the writer does while SQLite cannot write (disk full, the database
 * locked by another program, a read-only file, a database that cannot be opened, an I/O
 * error). This module holds the pieces that need no SQLite and no threads, so that they can
 * be tested alone:
 *   - the fault kinds, their names on MQTT and in the log, and how an ST_E* code maps to one;
 *   - the retry backoff;
 *   - the hold: a bounded buffer of the rows not committed yet (readings, window summaries,
 *     predictions), shedding and counting what does not fit;
 *   - the unstored alerts: alerts published while storage failed, kept (bounded) until they
 *     can be written to the outbox;
 *   - the status as JSON (<prefix>/status/storage and the stats).
 * The policy is documented in docs/history.md ("Storage faults"). Everything here belongs to
 * one thread (the writer), except gw_sf_status, a plain value copied under the pipeline's
 * lock. */
#ifndef GW_STORE_FAULT_H
#define GW_STORE_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "an_types.h"

struct gw_batch;
struct gw_summary_ev;
struct gw_pred_ev;
struct gw_alert_ev;

typedef enum gw_sf_kind {
    GW_SF_OK = 0,
    GW_SF_FULL,        /* disk full, or storage.max_size reached */
    GW_SF_LOCKED,      /* another program held the write lock past storage.busy_timeout */
    GW_SF_READONLY,    /* the file or its directory cannot be written */
    GW_SF_UNAVAILABLE, /* the database cannot be opened (missing directory, ...) */
    GW_SF_IO,          /* any other error of SQLite or of the disk */
} gw_sf_kind;

/* "ok", "full", "locked", "read-only", "unavailable", "io". */
const char *gw_sf_kind_name(gw_sf_kind k);

/* The fault an ST_E* code (st_db.h) means; `opening`: the code came from st_db_open, where a
 * generic error means the file cannot be opened at all. 0 gives GW_SF_OK. */
gw_sf_kind gw_sf_classify(int st_code, bool opening);

/* Retry backoff: the first retry after GW_SF_RETRY_FIRST_MS, each next one twice as late, at
 * most GW_SF_RETRY_MAX_MS. Returns the delay after `prev` (0: the first). */
#define GW_SF_RETRY_FIRST_MS 500
#define GW_SF_RETRY_MAX_MS   10000
int64_t gw_sf_next_delay(int64_t prev);

/* ---- the hold ---- */

typedef struct gw_sf_hold {
    an_reading *readings;
    size_t n_readings, cap_readings;
    struct gw_summary_ev *summaries;
    size_t n_summaries, cap_summaries;
    struct gw_pred_ev *preds;
    size_t n_preds, cap_preds;
    size_t max_rows; /* readings + summaries + predictions held at most */
    /* Shed since gw_sf_hold_init: rows that did not fit (or found no memory). */
    uint64_t readings_shed, summaries_shed, preds_shed;
} gw_sf_hold;

/* Zeroes h and sets its bound. */
void gw_sf_hold_init(gw_sf_hold *h, size_t max_rows);

/* Copies b's readings (unless `readings` is false), summaries and predictions (not its
 * alerts) into the hold while it holds fewer than max_rows rows; the rest is shed (dropped and
 * counted): the hold keeps the oldest rows, newer ones are shed. Borrows b. Returns the number
 * of rows shed. */
size_t gw_sf_hold_add(gw_sf_hold *h, const struct gw_batch *b, bool readings);

size_t gw_sf_hold_rows(const gw_sf_hold *h);

/* A position in the hold, for gw_sf_hold_next; zero-initialise it. */
typedef struct gw_sf_cursor {
    size_t reading, summary, pred;
} gw_sf_cursor;

/* Fills b (overwritten; no alerts, no tick) with the next rows from *c on, as many as a
 * batch holds. Returns false when nothing is left. */
bool gw_sf_hold_next(const gw_sf_hold *h, gw_sf_cursor *c, struct gw_batch *b);

/* Empties the hold; gives back to the system an array with room for more than keep_rows
 * rows. The shed counts stay. */
void gw_sf_hold_clear(gw_sf_hold *h, size_t keep_rows);
void gw_sf_hold_free(gw_sf_hold *h);

/* ---- unstored alerts ---- */

/* Alerts published while storage failed, at most GW_SF_MAX_ALERTS. Each has an id from a
 * reserved range (negative: -1, -2, ...), used only inside the gateway to match its PUBACK;
 * it is not the outbox id, which the alert gets once written. */
#define GW_SF_MAX_ALERTS 4096

typedef struct gw_sf_alert {
    int64_t tmp_id;
    bool acked;    /* the broker acknowledged the MQTT event */
    int64_t db_id; /* the outbox id, once written (the writer's scratch) */
} gw_sf_alert;

typedef struct gw_sf_alerts {
    struct gw_alert_ev *evs; /* parallel to items */
    gw_sf_alert *items;
    size_t n, cap;
    int64_t next_tmp_id; /* the next is next_tmp_id - 1 */
    uint64_t shed;       /* alerts that did not fit: published, never stored */
    /* PUBACKs still awaited for alerts already written: tmp id -> outbox id. A ring: the
     * oldest entry is overwritten when full (its alert is then sent again by the next start,
     * with its outbox id). */
    struct {
        int64_t tmp_id, db_id;
    } late[256];
    size_t n_late, late_next;
} gw_sf_alerts;

/* Returns a new tmp id (always: the MQTT event needs one to match its PUBACK) and keeps a
 * copy of ev under it; *kept is false when the list is full or out of memory (counted in
 * shed). Borrows ev. */
int64_t gw_sf_alerts_add(gw_sf_alerts *a, const struct gw_alert_ev *ev, bool *kept);

/* Records a PUBACK of a tmp id. Returns the outbox id to mark published when the alert was
 * written already (0 otherwise). */
int64_t gw_sf_alerts_acked(gw_sf_alerts *a, int64_t tmp_id);

/* After the alerts were written: remembers tmp -> outbox id for those not acknowledged yet. */
void gw_sf_alerts_written(gw_sf_alerts *a, int64_t tmp_id, int64_t db_id);

/* Forgets the held alerts (not the late PUBACK map, not the shed count). */
void gw_sf_alerts_clear(gw_sf_alerts *a);
void gw_sf_alerts_free(gw_sf_alerts *a);

/* ---- status ---- */

typedef struct gw_sf_status {
    gw_sf_kind kind;
    int64_t since_ms; /* wall clock: when this fault began (ok: 0) */
    char error[256];  /* the SQLite reason of the last failure ("" when ok) */
    uint64_t seq;     /* changes at every transition (ok <-> fault, or another kind) */
    uint64_t faults;  /* fault episodes so far */
    /* This fault (reset when one begins): */
    uint64_t readings_held, rows_held;
    uint64_t readings_shed_now, alerts_unstored;
    /* Since start: */
    uint64_t readings_shed, summaries_shed, preds_shed, alerts_shed, alerts_late;
} gw_sf_status;

/* {"state":"ok"} or {"state":"fault","fault":"full","error":"...","since":"<RFC 3339>",
 * "readings_held":N,"readings_shed":N,"alerts_unstored":N} (readings_shed: in this fault).
 * Returns the length or -1 when buf is too small. */
int gw_sf_status_json(const gw_sf_status *st, char *buf, size_t len);

#endif
