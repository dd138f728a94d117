/* The pipeline: ingest -> decode+route -> worker[k] -> writer -> publisher, threads joined by
 * bounded queues (see DESIGN.md). One pipeline per process.
 *
 * Life cycle: gw_pipeline_new -> gw_pipeline_start -> (feed it) -> gw_pipeline_stop ->
 * gw_pipeline_free. gw_pipeline_stop drains every queue and commits: nothing accepted is
 * lost on an orderly stop. */
#ifndef GW_PIPELINE_H
#define GW_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "decode.h"
#include "queue.h"
#include "store_fault.h"

typedef struct gw_pipeline gw_pipeline;

/* The publisher's sink: how alerts leave the gateway. Called from the publisher thread only.
 * send() hands one message over (asynchronously); for QoS1 messages that carry an alert id
 * (!= 0), the sink later calls gw_pipeline_alert_delivered(p, id) from any thread once the
 * broker acknowledged it. Returns 0 when accepted, negative when it could not be sent now
 * (e.g. not connected); the publisher then retries with a backoff. Borrows all arguments.
 * A negative alert id is an alert published while storage fails (not in the outbox yet). */
typedef struct gw_sink_ops {
    int (*send)(void *ctx, const char *topic, const char *payload, size_t len, int qos,
                bool retained, int64_t alert_id);
} gw_sink_ops;

typedef struct gw_pipeline_opts {
    bool inline_decode;      /* the caller decodes (replay): no decode thread */
    const gw_sink_ops *sink; /* NULL: no publisher (alerts stay in the outbox) */
    void *sink_ctx;
    int max_inflight;  /* QoS1 alerts in flight, default 64 when 0 */
    bool print_alerts; /* write each alert as a JSON line to stdout (replay) */

    /* run: a database that cannot be opened is a storage fault, retried in the background,
     * not an error of gw_pipeline_new (a file that is not an iotgw database still is). */
    bool storage_retry;
} gw_pipeline_opts;

typedef struct gw_pipeline_stats {
    uint64_t messages_in;    /* accepted by ingest (or decoded inline) */
    uint64_t ingest_dropped; /* dropped by the overflow policy */
    uint64_t readings;       /* decoded readings routed to workers */
    uint64_t decode_errors[GW_DEC_REASON_COUNT];
    uint64_t series_rejected; /* readings dropped because max_series was reached */
    uint64_t rows_stored;     /* raw readings committed */
    uint64_t rows_failed;     /* raw readings never stored (shed during a storage fault) */
    uint64_t rows_duplicate;  /* copies of stored readings skipped by merges (redeliveries) */
    uint64_t alerts;          /* alert transitions committed */
    uint64_t alerts_published;
    uint64_t late_readings;    /* readings whose window was already summarised */
    uint64_t summaries;        /* window summaries committed */
    uint64_t summaries_failed; /* window summaries lost (out of memory, storage fault) */
    uint64_t series;
    uint64_t redeliveries_dropped;     /* MQTT redeliveries (DUP) of messages already taken */
    uint64_t redeliveries_stored_only; /* readings of other DUP messages not newer than their
                                          series: stored (copies skipped), not re-analysed */
    uint64_t retention_passes;         /* retention passes completed */
    uint64_t retention_deleted;        /* rows deleted by retention (readings, summaries, ...) */
    uint64_t retention_summaries;      /* summaries made by retention (downsampled, rolled up) */
    size_t n_queues;
    gw_queue_stats queues[2 + 64 + 1];
    gw_sf_status storage; /* storage fault state and its counts */
} gw_pipeline_stats;

/* Builds the pipeline: topic map, decoder, series registry, queues, and opens the database.
 * Borrows cfg (must outlive the pipeline) and opts (copied). On failure returns a negative
 * code with a reason in err. */
int gw_pipeline_new(gw_pipeline **out, const gw_config *cfg, const gw_pipeline_opts *opts,
                    char *err, size_t errlen);

/* Starts the threads. Returns 0 or a negative errno. */
int gw_pipeline_start(gw_pipeline *p);

/* Ingest: copies one MQTT message into the ingest queue. Called from paho's callback thread:
 * it only copies; past pipeline.ingest_wait_ms on a full queue the overflow policy applies
 * (drop_newest: the message is dropped, counted, the first drop of a stall logged at WARN;
 * block: it keeps waiting). Returns 0 when accepted, GW_ETIMEDOUT when dropped, GW_ECLOSED
 * after stop. Borrows topic and payload. */
int gw_pipeline_ingest(gw_pipeline *p, const char *topic, size_t topic_len, const void *payload,
                       size_t payload_len);

/* The same, with the message's MQTT DUP flag: a DUP message whose topic and payload match
 * one of the last few thousand messages is a redelivery and dropped (counted in
 * redeliveries_dropped) by the decode stage. */
int gw_pipeline_ingest_dup(gw_pipeline *p, const char *topic, size_t topic_len, const void *payload,
                           size_t payload_len, bool dup);

/* Inline decode (opts.inline_decode): the calling thread acts as the decode stage. One thread
 * only. Blocks while the workers are full (backpressure). Returns the number of readings or
 * -1 on a bad message (counted). */
int gw_pipeline_decode(gw_pipeline *p, const char *topic, size_t topic_len, const char *payload,
                       size_t payload_len, int64_t arrival_ms);

/* Drains every stage in order and joins the threads. Idempotent. */
void gw_pipeline_stop(gw_pipeline *p);
void gw_pipeline_free(gw_pipeline *p);

/* Any thread, any time. */
void gw_pipeline_stats_get(gw_pipeline *p, gw_pipeline_stats *st);

/* The storage status alone (a copy). Any thread, any time. */
void gw_pipeline_storage_status(gw_pipeline *p, gw_sf_status *st);

/* The sink reports a PUBACK for an alert. Any thread; never blocks for long. */
void gw_pipeline_alert_delivered(gw_pipeline *p, int64_t alert_id);

/* Replaces the rules (SIGHUP): copies rules[0..n) and hands them to every worker behind the
 * readings already queued. A (series, rule) whose rule is unchanged keeps its state (open
 * episodes, trends, baselines); window state is never touched. An open alert of a changed
 * rule goes on in the rule of the same name when it still covers the series and the kind, and
 * is cleared (stored, published) otherwise, as at a start (restore.h). Main thread; with
 * inline decode the decoding thread, and what it decoded before goes by the old rules.
 * Returns 0 or -ENOMEM. */
int gw_pipeline_reload_rules(gw_pipeline *p, const an_rule *rules, size_t n);

/* The sink reports that an alert was not acknowledged (connection lost while in flight): it
 * frees its slot in the in-flight window and stays unpublished in the outbox. Any thread. */
void gw_pipeline_alert_failed(gw_pipeline *p, int64_t alert_id);

/* Writes a one-line summary of the stats to the log at INFO. */
void gw_pipeline_log_stats(gw_pipeline *p, const char *when);

#endif
