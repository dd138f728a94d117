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

#define GW_BATCH_READINGS 128
#define GW_BATCH_ALERTS   32
#define GW_MAX_WORKERS    64

/* A message copied out of paho: topic and payload follow the struct. */
typedef struct gw_msg {
    int64_t arrival_ms;
    uint32_t topic_len;
    uint32_t payload_len;
    char data[]; /* topic, NUL, payload, NUL */
} gw_msg;

typedef struct gw_alert_ev {
    an_alert a;
    uint32_t series;
} gw_alert_ev;

/* What flows from decode to a worker (readings only) and from a worker to the writer. */
typedef struct gw_batch {
    uint32_t n_readings;
    uint32_t n_alerts;
    an_reading readings[GW_BATCH_READINGS];
    gw_alert_ev alerts[GW_BATCH_ALERTS];
} gw_batch;

/* A committed alert on its way out: alert topic, and the retained state topic. */
typedef struct gw_pub_item {
    int64_t id;
    char *topic;
    char *payload;
    size_t payload_len;
    char *state_topic;
    bool state_clear; /* cleared: an empty retained message replaces the state */
} gw_pub_item;

/* A worker's thread argument: its index travels with it. */
typedef struct gw_worker_arg {
    struct gw_pipeline *p;
    int index;
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

    pthread_t decode_th, worker_th[GW_MAX_WORKERS], writer_th, pub_th;
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

    atomic_bool ingest_stalled;
    gw_ratelimit decode_rl;
    gw_ratelimit store_rl;

    atomic_uint_fast64_t messages_in, ingest_dropped, readings, series_rejected;
    atomic_uint_fast64_t decode_errors[GW_DEC_REASON_COUNT];
    atomic_uint_fast64_t rows_stored, rows_failed, alerts, alerts_published;
    int64_t next_alert_seq;
};

/* Stage entry points (thread functions) and helpers. */
void *gw__worker_main(void *arg);
void *gw__writer_main(void *arg);
void *gw__publisher_main(void *arg);
int gw__writer_open(gw_pipeline *p, char *err, size_t errlen);
void gw__pub_item_free(gw_pub_item *it);
void gw__worker_free_state(void *ws);
void gw__writer_mark_remaining(gw_pipeline *p);

#endif
