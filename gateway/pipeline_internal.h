/* Shared between the pipeline's stage files (pipeline.c, worker.c, writer.c, publisher.c). */
#ifndef GW_PIPELINE_INTERNAL_H
#define GW_PIPELINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "an_types.h"
#include "log.h"
#include "pipeline.h"
#include "series.h"
#include "st_db.h"
#include "store_fault.h"
#include "trend.h"
#include "window.h"

#define GW_BATCH_READINGS  128
#define GW_BATCH_ALERTS    32
#define GW_BATCH_SUMMARIES 16
#define GW_BATCH_PREDS     16
#define GW_MAX_WORKERS     64

/* A message copied out of paho: topic and payload follow the struct. */
/* Set in an_reading.series by the decode stage (series ids stay below 2^31, see
 * pipeline.max_series): a reading of a DUP message that is not newer than the newest reading
 * of its series routed so far, i.e. a redelivery the rules have seen. Workers store it and
 * skip the rules. */
#define GW_READING_SEEN (UINT32_C(1) << 31)

typedef struct gw_msg {
    int64_t arrival_ms;
    uint32_t topic_len;
    uint32_t payload_len;
    bool dup;    /* MQTT DUP flag: possibly a redelivery (mqtt: dedupe in decode) */
    char data[]; /* topic, NUL, payload, NUL */
} gw_msg;

/* A rule set: the rules at start, or after a reload (SIGHUP). Never freed before the pipeline,
 * so that events in flight keep pointing at the rule that made them. */
typedef struct gw_ruleset {
    struct gw_ruleset *older;
    size_t n;
    an_rule rules[];
} gw_ruleset;

typedef struct gw_alert_ev {
    an_alert a;
    const an_rule *rule; /* a.rule indexes the rule set the worker had at the time */
    uint32_t series;
    uint8_t why; /* GW_WHY_RULE (0), or why it was cleared at start or reload (restore.h) */
} gw_alert_ev;

typedef struct gw_summary_ev {
    an_window_summary s;
    uint32_t series;
} gw_summary_ev;

typedef struct gw_pred_ev {
    an_trend_pred pred;
    int64_t ts_ms; /* when the prediction was made (clock of the tick) */
    uint32_t series;
} gw_pred_ev;

/* A clock tick travels through the worker queues like data, so that it is ordered with the
 * readings before it. */
typedef enum gw_tick {
    GW_TICK_NONE = 0,
    GW_TICK_LIVE,   /* wall clock: close idle windows, check stale series */
    GW_TICK_STREAM, /* replay: the same against the capture's latest timestamp */
    GW_TICK_FLUSH,  /* end of a replay: a stream tick, then every open window is emitted */
    GW_TICK_RELOAD, /* new rules (tick_rules): state carried over where a rule is unchanged,
                       open alerts of changed rules carried over or cleared (worker.c) */
} gw_tick;

/* What flows from decode to a worker (readings or a tick) and from a worker to the writer
 * (readings, alert transitions, window summaries). */
typedef struct gw_batch {
    uint32_t n_readings;
    uint32_t n_alerts;
    uint32_t n_summaries;
    uint32_t n_preds;
    gw_tick tick;
    int64_t tick_ms;
    const gw_ruleset *tick_rules;
    an_reading readings[GW_BATCH_READINGS];
    gw_alert_ev alerts[GW_BATCH_ALERTS];
    gw_summary_ev summaries[GW_BATCH_SUMMARIES];
    gw_pred_ev preds[GW_BATCH_PREDS];
} gw_batch;

/* A committed alert on its way out: alert topic, and the retained state topic. */
typedef struct gw_pub_item {
    int64_t id;
    char *topic;
    char *payload;
    size_t payload_len;
    char *state_topic;
    char *state_payload; /* retained on state_topic; NULL: an empty message (nothing active) */
    size_t state_len;
    bool plain; /* a window summary: QoS 0, no state topic, no outbox */
} gw_pub_item;

/* A worker's thread argument: its index travels with it. */
typedef struct gw_worker_arg {
    struct gw_pipeline *p;
    int index;
    /* The rules at start: p->rules may already be a reload's when the thread runs. */
    const gw_ruleset *rules;
} gw_worker_arg;

struct gw_pipeline {
    const gw_config *cfg;
    gw_pipeline_opts opts;
    gw_topic_map *topics;
    gw_decoder decoder;
    gw_series_registry *series;
    st_db *db;
    int n_workers;

    gw_queue *ingest_q;
    gw_queue *work_q[GW_MAX_WORKERS];
    gw_queue *writer_q;
    gw_queue *pub_q;

    pthread_t decode_th, worker_th[GW_MAX_WORKERS], writer_th, pub_th, clock_th;
    bool clock_running;
    pthread_mutex_t clock_mu;
    pthread_cond_t clock_cv;
    bool clock_stop;

    /* The newest rule set (workers switch on a RELOAD tick); the list holds every one. */
    gw_ruleset *rules;

    /* Windows: prepared once from the config, read by every worker. */
    bool has_windows;
    an_window_cfg wcfg;

    /* Replay: stream time for ticks (the inline decode thread only). */
    int64_t stream_max_ts;
    int64_t next_stream_tick;
    bool stream_seen;
    bool cur_dup; /* decode thread: the message being decoded has the DUP flag */
    gw_worker_arg worker_args[GW_MAX_WORKERS];
    bool started, stopped;
    bool decode_running, pub_running;
    int workers_running;
    bool writer_running;

    /* Decode stage state (decode thread, or the inline caller). */
    gw_batch *route[GW_MAX_WORKERS];

    /* Publisher in-flight window and the ids whose PUBACK arrived (drained by the writer). */
    pthread_mutex_t ack_mu;
    pthread_cond_t ack_cv;
    int inflight;
    int64_t *acked;
    size_t n_acked, cap_acked;

    /* mqtt: alerts handed to the sink and not acknowledged yet (publisher keeps them so that
     * one whose connection dropped is sent again), and those whose send failed, to resend
     * in id order after reconnecting. Both under ack_mu, each at most max_inflight. */
    gw_pub_item **unacked;
    size_t n_unacked;
    gw_pub_item **retry;
    size_t n_retry;

    /* mqtt: identities (hash of topic and payload) of recent messages, two generations, to
     * drop a redelivered (DUP) message seen already. Decode thread only. */
    uint64_t *seen[2];
    size_t n_seen;
    atomic_uint_fast64_t redeliveries_dropped, redeliveries_stored_only;

    atomic_bool ingest_stalled;
    gw_ratelimit decode_rl;
    gw_ratelimit store_rl;

    atomic_uint_fast64_t messages_in, ingest_dropped, readings, series_rejected;
    atomic_uint_fast64_t decode_errors[GW_DEC_REASON_COUNT];
    atomic_uint_fast64_t rows_stored, rows_failed, rows_duplicate, alerts, alerts_published;
    atomic_uint_fast64_t late_readings, summaries, summaries_failed;
    atomic_uint_fast64_t retention_passes, retention_deleted, retention_summaries;
    int64_t next_alert_seq;

    /* Alerts raised by earlier runs (restore.h): made before the threads start, then read
     * only, by the workers and the writer at their start. NULL when there are none. */
    struct gw_restore *restore;
    /* Series watched for silence from the start (stale_preload.h): made before the threads
     * start, then read only, by the workers at their start. NULL when there are none. */
    struct gw_stale_preload *stale_preload;

    /* Storage faults: the writer's status, under sf_mu (read by stats and MQTT). */
    pthread_mutex_t sf_mu;
    gw_sf_status sf;
};

/* Stage entry points (thread functions) and helpers. */
void *gw__worker_main(void *arg);
void *gw__writer_main(void *arg);
void *gw__publisher_main(void *arg);
int gw__writer_open(gw_pipeline *p, char *err, size_t errlen);
void gw__pub_item_free(gw_pub_item *it);
void gw__worker_free_state(void *ws);
gw_batch *gw__batch_new(void);
void gw__writer_mark_remaining(gw_pipeline *p);
/* mqtt: removes and returns the unacknowledged copy of an alert (NULL if none). Under ack_mu. */
gw_pub_item *gw__unacked_take(gw_pipeline *p, int64_t id);

#endif
