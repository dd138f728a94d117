#include "mqtt.h"

#include <MQTTAsync.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"

struct gw_mqtt {
    const gw_config *cfg;
    MQTTAsync client;
    gw_pipeline *p;
    char uri[GW_CFG_STR + 32];
    char status_topic[GW_CFG_STR + 16];
    atomic_bool connected;
    gw_ratelimit rl;

    /* One pending request (connect, subscribe, unsubscribe) the main thread waits for. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done; /* 0 pending, 1 success, -1 failure */
    int fail_code;
    char fail_msg[256];
};

typedef struct send_ctx {
    gw_mqtt *m;
    int64_t id;
} send_ctx;

static void set_done(gw_mqtt *m, int done, int code, const char *msg) {
    pthread_mutex_lock(&m->mu);
    m->done = done;
    m->fail_code = code;
    snprintf(m->fail_msg, sizeof(m->fail_msg), "%s", msg != NULL ? msg : "");
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

static int wait_done(gw_mqtt *m, int timeout_ms) {
    int64_t deadline = gw_mono_ms() + timeout_ms;
    pthread_mutex_lock(&m->mu);
    while (m->done == 0 && gw_mono_ms() < deadline) {
        struct timespec ts;
        gw_deadline_after(&ts, CLOCK_REALTIME, 20);
        pthread_cond_timedwait(&m->cv, &m->mu, &ts);
    }
    int d = m->done;
    pthread_mutex_unlock(&m->mu);
    return d;
}

static void on_ok(void *ctx, MQTTAsync_successData *r) {
    (void)r;
    set_done(ctx, 1, 0, NULL);
}

static void on_fail(void *ctx, MQTTAsync_failureData *r) {
    set_done(ctx, -1, r != NULL ? r->code : -1,
             r != NULL && r->message != NULL ? r->message : MQTTAsync_strerror(r ? r->code : -1));
}

/* Runs on paho's thread under its lock: copy and return, nothing else. Always returns 1:
 * paho has sent the PUBACK already and a 0 would only park the message inside paho. */
static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg) {
    gw_mqtt *m = ctx;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    if (m->p != NULL) {
        gw_pipeline_ingest(m->p, topic, tlen, msg->payload, (size_t)msg->payloadlen);
    }
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

static void on_lost(void *ctx, char *cause) {
    gw_mqtt *m = ctx;
    atomic_store(&m->connected, false);
    GW_WARN("mqtt", "connection to %s lost%s%s; reconnecting", m->uri, cause ? ": " : "",
            cause ? cause : "");
}

static int subscribe_all(gw_mqtt *m, MQTTAsync_responseOptions *ro) {
    const gw_config *cfg = m->cfg;
    char *filters[GW_TOPIC_MAX_SUBS];
    int qos[GW_TOPIC_MAX_SUBS];
    for (size_t i = 0; i < cfg->n_subs; i++) {
        filters[i] = (char *)cfg->subs[i].topic;
        qos[i] = cfg->mqtt.qos;
    }
    return MQTTAsync_subscribeMany(m->client, (int)cfg->n_subs, filters, qos, ro);
}

static void publish_status(gw_mqtt *m, const char *status) {
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    msg.payload = (void *)status;
    msg.payloadlen = (int)strlen(status);
    msg.qos = 1;
    msg.retained = 1;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    int rc = MQTTAsync_sendMessage(m->client, m->status_topic, &msg, &ro);
    if (rc != MQTTASYNC_SUCCESS) {
        GW_WARN("mqtt", "cannot publish status %s: %s", status, MQTTAsync_strerror(rc));
    }
}

static void on_resub_fail(void *ctx, MQTTAsync_failureData *r) {
    (void)ctx;
    GW_ERROR("mqtt", "subscribing again after reconnect failed: %s",
             r != NULL && r->message != NULL ? r->message : "no reason given");
}

/* After an automatic reconnect with a clean session the subscriptions are gone. */
static void on_connected(void *ctx, char *cause) {
    gw_mqtt *m = ctx;
    bool was = atomic_exchange(&m->connected, true);
    if (was || cause == NULL || strstr(cause, "reconnect") == NULL) {
        return;
    }
    GW_INFO("mqtt", "reconnected to %s", m->uri);
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onFailure = on_resub_fail;
    ro.context = m;
    int rc = subscribe_all(m, &ro);
    if (rc != MQTTASYNC_SUCCESS) {
        GW_ERROR("mqtt", "subscribing again failed: %s", MQTTAsync_strerror(rc));
    }
    publish_status(m, "online");
}

int gw_mqtt_new(gw_mqtt **out, const gw_config *cfg, char *err, size_t errlen) {
    gw_mqtt *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    m->cfg = cfg;
    m->rl = (gw_ratelimit)GW_RATELIMIT_INIT;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    snprintf(m->uri, sizeof(m->uri), "tcp://%s:%d", cfg->mqtt.host, cfg->mqtt.port);
    snprintf(m->status_topic, sizeof(m->status_topic), "%s/status", cfg->output.prefix);
    int rc = MQTTAsync_create(&m->client, m->uri, cfg->mqtt.client_id, MQTTCLIENT_PERSISTENCE_NONE,
                              NULL);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "cannot create the MQTT client for %s: %s", m->uri,
                 MQTTAsync_strerror(rc));
        goto fail;
    }
    rc = MQTTAsync_setCallbacks(m->client, m, on_lost, on_message, NULL);
    if (rc == MQTTASYNC_SUCCESS) {
        rc = MQTTAsync_setConnected(m->client, m, on_connected);
    }
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "cannot set the MQTT callbacks: %s", MQTTAsync_strerror(rc));
        MQTTAsync_destroy(&m->client);
        goto fail;
    }
    *out = m;
    return 0;

fail:
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m);
    return -EIO;
}

void gw_mqtt_attach(gw_mqtt *m, gw_pipeline *p) {
    m->p = p;
}

int gw_mqtt_connect(gw_mqtt *m, int timeout_ms, char *err, size_t errlen) {
    const gw_config *cfg = m->cfg;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    will.topicName = m->status_topic;
    will.message = "offline";
    will.retained = 1;
    will.qos = 1;
    co.will = &will;
    co.keepAliveInterval = cfg->mqtt.keepalive_s;
    co.cleansession = 1;
    co.automaticReconnect = 1;
    co.minRetryInterval = 1;
    co.maxRetryInterval = 30;
    co.onSuccess = on_ok;
    co.onFailure = on_fail;
    co.context = m;
    set_done(m, 0, 0, NULL);
    int rc = MQTTAsync_connect(m->client, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "cannot connect to %s: %s", m->uri, MQTTAsync_strerror(rc));
        return -EIO;
    }
    int d = wait_done(m, timeout_ms);
    if (d != 1) {
        snprintf(err, errlen, "cannot connect to %s: %s", m->uri,
                 d == 0 ? "timed out" : m->fail_msg);
        return -EIO;
    }
    atomic_store(&m->connected, true);
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_ok;
    ro.onFailure = on_fail;
    ro.context = m;
    set_done(m, 0, 0, NULL);
    rc = subscribe_all(m, &ro);
    if (rc != MQTTASYNC_SUCCESS || wait_done(m, timeout_ms) != 1) {
        snprintf(err, errlen, "cannot subscribe on %s: %s", m->uri,
                 rc != MQTTASYNC_SUCCESS ? MQTTAsync_strerror(rc) : m->fail_msg);
        return -EIO;
    }
    publish_status(m, "online");
    return 0;
}

int gw_mqtt_unsubscribe_all(gw_mqtt *m, int timeout_ms) {
    const gw_config *cfg = m->cfg;
    char *filters[GW_TOPIC_MAX_SUBS];
    for (size_t i = 0; i < cfg->n_subs; i++) {
        filters[i] = (char *)cfg->subs[i].topic;
    }
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_ok;
    ro.onFailure = on_fail;
    ro.context = m;
    set_done(m, 0, 0, NULL);
    int rc = MQTTAsync_unsubscribeMany(m->client, (int)cfg->n_subs, filters, &ro);
    if (rc != MQTTASYNC_SUCCESS) {
        return -EIO;
    }
    return wait_done(m, timeout_ms) == 1 ? 0 : -ETIMEDOUT;
}

void gw_mqtt_disconnect(gw_mqtt *m, int timeout_ms) {
    if (MQTTAsync_isConnected(m->client)) {
        publish_status(m, "offline");
        MQTTAsync_disconnectOptions dc = MQTTAsync_disconnectOptions_initializer;
        dc.timeout = timeout_ms;
        dc.onSuccess = on_ok;
        dc.onFailure = on_fail;
        dc.context = m;
        set_done(m, 0, 0, NULL);
        if (MQTTAsync_disconnect(m->client, &dc) == MQTTASYNC_SUCCESS) {
            wait_done(m, timeout_ms + 500);
        }
    }
    atomic_store(&m->connected, false);
}

void gw_mqtt_free(gw_mqtt *m) {
    if (m == NULL) {
        return;
    }
    MQTTAsync_destroy(&m->client);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m);
}

bool gw_mqtt_is_connected(gw_mqtt *m) {
    return atomic_load(&m->connected) && MQTTAsync_isConnected(m->client);
}

static void on_sent(void *ctx, MQTTAsync_successData *r) {
    (void)r;
    send_ctx *sc = ctx;
    gw_pipeline_alert_delivered(sc->m->p, sc->id);
    free(sc);
}

static void on_send_fail(void *ctx, MQTTAsync_failureData *r) {
    send_ctx *sc = ctx;
    gw_log_limited(&sc->m->rl, GW_LOG_WARN, "mqtt",
                   "alert %lld not acknowledged (%s); it stays in the outbox", (long long)sc->id,
                   r != NULL ? MQTTAsync_strerror(r->code) : "unknown");
    gw_pipeline_alert_failed(sc->m->p, sc->id);
    free(sc);
}

static int sink_send(void *ctx, const char *topic, const char *payload, size_t len, int qos,
                     bool retained, int64_t alert_id) {
    gw_mqtt *m = ctx;
    if (!MQTTAsync_isConnected(m->client)) {
        return -ENOTCONN;
    }
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    msg.payload = (void *)payload;
    msg.payloadlen = (int)len;
    msg.qos = qos;
    msg.retained = retained ? 1 : 0;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    send_ctx *sc = NULL;
    if (alert_id > 0) {
        sc = malloc(sizeof(*sc));
        if (sc == NULL) {
            return -ENOMEM;
        }
        sc->m = m;
        sc->id = alert_id;
        ro.onSuccess = on_sent;
        ro.onFailure = on_send_fail;
        ro.context = sc;
    }
    int rc = MQTTAsync_sendMessage(m->client, topic, &msg, &ro);
    if (rc != MQTTASYNC_SUCCESS) {
        free(sc);
        return -EIO;
    }
    return 0;
}

const gw_sink_ops gw_mqtt_sink = {.send = sink_send};
