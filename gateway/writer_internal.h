/* Shared between the writer's files: writer.c (transactions, rows, alerts) and
 * writer_fault.c (storage faults). Everything here runs on the writer thread only, except
 * gw__writer_open (pipeline.c, before the threads start). */
#ifndef GW_WRITER_INTERNAL_H
#define GW_WRITER_INTERNAL_H

#include "pipeline_internal.h"
#include "store_fault.h"

#define PENDING_MAX 1024

/* An alert raised and not cleared yet, for the retained state topics: several rules of the
 * same kind on one series share <prefix>/state/<sensor>/<metric>/<kind>, so when one clears
 * the topic must show the others, not go empty. The rule is known by its name, as in
 * v_active_alerts: its index changes when a reload (SIGHUP) adds or removes rules before it,
 * and an alert of a changed rule goes on under the same name. */
typedef struct active_alert {
    uint32_t series;
    an_kind kind;
    const char *rule; /* the name, in a rule set (they live as long as the pipeline) */
    char *payload;
    size_t len;
} active_alert;

/* While storage is failing, a retry that meets another program's lock gives up after this
 * long instead of storage.busy_timeout, so that the writer keeps taking batches. */
#define FAULT_BUSY_MS 100
/* Outbox ids acknowledged while storage fails, marked published once it recovers; beyond
 * this many the oldest marks are lost and those alerts are sent again by the next start. */
#define MARKS_MAX 65536

typedef struct writer {
    gw_pipeline *p;
    bool in_txn;
    int64_t txn_start_ms;
    gw_pub_item *pending[PENDING_MAX]; /* alerts and summaries of the open transaction */
    size_t n_pending;
    size_t n_alerts_pending; /* of n_pending: alerts, which are committed without delay */
    gw_alert_ev txn_alerts[PENDING_MAX]; /* alerts of the open transaction, as events */
    size_t n_txn_alerts;
    int64_t *acked; /* ids to mark published, taken from the pipeline */
    int64_t *marks; /* outbox ids to mark published in the next transaction */
    size_t n_marks, cap_marks;
    uint32_t *known; /* series whose db_id is set; from txn_known on: set in the open txn */
    size_t n_known, cap_known, txn_known;
    gw_sf_hold hold;       /* rows not committed yet */
    size_t keep_rows;      /* what the hold keeps allocated between transactions */
    gw_sf_alerts unstored; /* alerts published while storage failed */
    gw_batch *scratch;     /* the hold, replayed one batch at a time */
    bool outbox_sent;      /* the unpublished alerts of earlier runs were handed over */
    /* The fault, GW_SF_OK when none. */
    gw_sf_kind fault;
    int64_t fault_mono_ms, retry_delay_ms, next_retry_ms;
    gw_sf_status ep; /* counts at the start of this fault, to report what it cost */
    bool shed_logged;
    gw_ratelimit fault_rl;
    active_alert *active;
    size_t n_active, cap_active;
    uint64_t dup_closed; /* copies skipped on connections closed since start (reopens) */
} writer;

/* Publishes the count of copies skipped since start, over every connection. */
static inline void writer__note_duplicates(writer *w) {
    if (w->p->db != NULL) {
        atomic_store(&w->p->rows_duplicate, w->dup_closed + (uint64_t)st_db_duplicates(w->p->db));
    }
}

/* ---- writer.c ---- */

st_db_opts writer__db_opts(const gw_config *cfg);

/* Transactions: each returns 0 or the ST_E* error, after which the writer is in a fault
 * (writer__fail_txn has rolled back, kept the rows in the hold and published the alerts of
 * the transaction unstored). */
int writer__ensure_txn(writer *w);
int writer__commit(writer *w);
void writer__fail_txn(writer *w, int code);

/* Forgets the cached series ids set from known[from] on (after a rollback or a reopen). */
void writer__forget_series(writer *w, size_t from);

/* Stores a batch from the workers (rows and alerts), or holds it while storage fails. */
void writer__store_batch(writer *w, const gw_batch *b);

/* Inserts a batch's readings, summaries and predictions (not its alerts) into the open
 * transaction. Returns 0 or the first error. */
int writer__insert_rows(writer *w, const gw_batch *b);

/* Inserts an alert's row; writes its outbox id and, when it is not NULL, its MQTT item. */
int writer__insert_alert(writer *w, const gw_alert_ev *ev, int64_t *id, gw_pub_item **it);

/* The row of an alert (message into msg) and its MQTT item with outbox id `id` (negative:
 * not stored). Borrow everything; the item is new (NULL without memory). */
void writer__alert_row(writer *w, const gw_alert_ev *ev, int64_t series_id, char *msg, size_t len,
                       st_alert_row *row);
gw_pub_item *writer__alert_item(writer *w, const gw_alert_ev *ev, const st_alert_row *row,
                                int64_t id);
gw_pub_item *writer__make_pub_item(const gw_pipeline *p, const st_alert_out *a);

/* Records a transition for the retained state topics and sets it->state_payload. */
void writer__active_update(writer *w, const gw_alert_ev *ev, gw_pub_item *it);

/* Takes ownership of it: to the publisher queue (or freed). */
void writer__hand_to_publisher(writer *w, gw_pub_item *it);

/* ---- writer_fault.c ---- */

/* Copies the writer's fault state and counts into the pipeline's status; `transition`: the
 * state changed; error: the reason to report (NULL keeps the last). */
void writer__status_update(writer *w, bool transition, const char *error);

/* A write, an open or a retry failed: enters the fault, or counts another failure of it
 * (backoff), and logs (ERROR once per fault or kind, then rate-limited). */
void writer__enter_fault(writer *w, gw_sf_kind kind, const char *why);

/* Adds a batch's rows to the hold; sheds, counts and logs (once per fault) what does not
 * fit. */
void writer__hold_batch(writer *w, const gw_batch *b);

/* Publishes an alert without an outbox id and keeps it (bounded) for the outbox. */
void writer__publish_unstored(writer *w, const gw_alert_ev *ev);

/* Hands the unpublished outbox rows of earlier runs to the publisher, once. */
void writer__resend_outbox(writer *w);

/* One retry: (re)opens the database when needed, writes the hold and the unstored alerts in
 * one transaction; leaves the fault when it commits. */
void writer__retry(writer *w);

/* At stop, after a last retry: logs and counts what storage never got. */
void writer__report_losses(writer *w);

#endif
