/* MQTT client of the gateway (paho MQTTAsync, MQTT 5 or 3.1.1). Two connections to the broker:
 *  - `sub`: the fixed client id, a persistent session (clean start off, a session expiry), the
 *    QoS1 subscriptions feeding the pipeline. It publishes nothing.
 *  - `pub`: client id + "-pub", a clean session: alerts from the publisher, retained status with
 *    a Last Will, stats.
 * Why two: paho 1.3.12 resends a session's unacknowledged publishes itself after a reconnect,
 * and a publish whose write the lost connection interrupted comes out corrupted (its payload
 * freed; paho issue #1592) or stalls paho's threads for good. A clean session never resends:
 * paho fails what was in flight, and the publisher sends it again from its copy. A session that
 * never publishes has nothing to resend. Both reconnect by themselves with a backoff. */
#include "mqtt.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "paho.h"

#define PASSWORD_MAX 256

/* One connection to the broker. */
typedef struct gw_conn {
    gw_mqtt *m;
    MQTTAsync client;
    const char *role; /* "subscriptions" or "publishing", for the log */
    bool subscriber;  /* the persistent session with the subscriptions */
    char client_id[GW_CFG_STR + 8];
    atomic_bool connected;
    bool up;                     /* main thread: the first connect succeeded */
    atomic_uint connected_calls; /* paho's connected callbacks: every successful connect, the
                                  * first connect included */

    /* One pending request (connect, subscribe, unsubscribe) the main thread waits for. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done; /* 0 pending, 1 success, -1 failure */
    int fail_code;
    int session_present;
    char fail_msg[256];
    char tls_err[256]; /* the last OpenSSL error of a handshake */
} gw_conn;

struct gw_mqtt {
    const gw_config *cfg;
    const gw_paho *api; /* libpaho-mqtt3as with TLS, libpaho-mqtt3a without */
    gw_pipeline *p;
    bool v5;
    char uri[GW_CFG_STR + 32];
    char status_topic[GW_CFG_STR + 16];
    char password[PASSWORD_MAX];
    bool has_password;
    gw_ratelimit rl;
    gw_conn sub;
    gw_conn pub;
};

typedef struct send_ctx {
    gw_mqtt *m;
    int64_t id;
} send_ctx;

static void set_done(gw_conn *c, int done, int code, const char *msg) {
    pthread_mutex_lock(&c->mu);
    c->done = done;
    c->fail_code = code;
    snprintf(c->fail_msg, sizeof(c->fail_msg), "%s", msg != NULL ? msg : "");
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static int wait_done(gw_conn *c, int timeout_ms) {
    int64_t deadline = gw_mono_ms() + timeout_ms;
    pthread_mutex_lock(&c->mu);
    while (c->done == 0 && gw_mono_ms() < deadline) {
        struct timespec ts;
        gw_deadline_after(&ts, CLOCK_REALTIME, 20);
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    int d = c->done;
    pthread_mutex_unlock(&c->mu);
    return d;
}

/* MQTT 3.1.1 CONNACK return codes, which paho passes as the failure code. */
static const char *connack_text(int code) {
    switch (code) {
    case 1:
        return "the broker refused the protocol version";
    case 2:
        return "the broker rejected the client id";
    case 3:
        return "the broker is unavailable";
    case 4:
        return "bad user name or password";
    case 5:
        return "not authorized";
    default:
        return NULL;
    }
}

static void fail_text(gw_conn *c, int code, int reason, const char *msg, char *out, size_t n) {
    const char *txt = NULL;
    /* v5 puts the CONNACK reason code in code, v3.1.1 its return code (1..5). */
    if (reason < 0x80 && code >= 0x80) {
        reason = code;
    }
    if (reason >= 0x80) {
        txt = c->m->api->reasonCodeString((enum MQTTReasonCodes)reason);
    } else if (code > 0) {
        txt = connack_text(code);
    }
    if (reason == MQTTREASONCODE_BAD_USER_NAME_OR_PASSWORD ||
        reason == MQTTREASONCODE_NOT_AUTHORIZED || (reason < 0x80 && (code == 4 || code == 5))) {
        snprintf(out, n,
                 "%s (check mqtt.username and the password: mqtt.password_file or "
                 "IOTGW_MQTT_PASSWORD)",
                 txt);
        return;
    }
    if (txt == NULL) {
        txt = msg != NULL && msg[0] ? msg : c->m->api->strerror(code);
    }
    if (c->tls_err[0] != '\0') {
        snprintf(out, n,
                 "%.60s (TLS: %.120s; check mqtt.tls: ca_file, cert_file, key_file, verify)",
                 txt != NULL ? txt : "failed", c->tls_err);
    } else {
        snprintf(out, n, "%s", txt != NULL ? txt : "failed");
    }
}

static void on_ok(void *ctx, MQTTAsync_successData *r) {
    (void)r;
    set_done(ctx, 1, 0, NULL);
}

static void on_connect_ok(void *ctx, MQTTAsync_successData *r) {
    gw_conn *c = ctx;
    c->session_present = r != NULL ? r->alt.connect.sessionPresent : 0;
    set_done(c, 1, 0, NULL);
}

static void on_fail(void *ctx, MQTTAsync_failureData *r) {
    gw_conn *c = ctx;
    char msg[256];
    fail_text(c, r != NULL ? r->code : -1, 0, r != NULL ? r->message : NULL, msg, sizeof(msg));
    set_done(c, -1, r != NULL ? r->code : -1, msg);
}

static void on_ok5(void *ctx, MQTTAsync_successData5 *r) {
    (void)r;
    set_done(ctx, 1, 0, NULL);
}

static void on_connect_ok5(void *ctx, MQTTAsync_successData5 *r) {
    gw_conn *c = ctx;
    c->session_present = r != NULL ? r->alt.connect.sessionPresent : 0;
    set_done(c, 1, 0, NULL);
}

static void on_fail5(void *ctx, MQTTAsync_failureData5 *r) {
    gw_conn *c = ctx;
    char msg[256];
    fail_text(c, r != NULL ? r->code : -1, r != NULL ? (int)r->reasonCode : 0,
              r != NULL ? r->message : NULL, msg, sizeof(msg));
    set_done(c, -1, r != NULL ? r->code : -1, msg);
}

/* Sets the waiting callbacks of the protocol version in use (paho wants the *5 ones in v5). */
static void wait_callbacks(gw_conn *c, MQTTAsync_responseOptions *ro) {
    ro->context = c;
    if (c->m->v5) {
        ro->onSuccess5 = on_ok5;
        ro->onFailure5 = on_fail5;
    } else {
        ro->onSuccess = on_ok;
        ro->onFailure = on_fail;
    }
}

static int on_tls_error(const char *str, size_t len, void *u) {
    gw_conn *c = u;
    /* OpenSSL's lines read "<thread>:error:<code>:<library>:<function>:<reason>:<file>:..."
     * and end with a newline: keep the reason. */
    const char *e = memmem(str, len, ":error:", 7);
    if (e != NULL) {
        const char *f = e + 1;
        int colons = 0;
        while (f < str + len && colons < 4) {
            colons += *f++ == ':';
        }
        const char *end = memchr(f, ':', (size_t)(str + len - f));
        if (colons == 4 && end != NULL) {
            snprintf(c->tls_err, sizeof(c->tls_err), "%.*s", (int)(end - f), f);
            return 0;
        }
    }
    while (len > 0 && (str[len - 1] == '\n' || str[len - 1] == '\r')) {
        len--;
    }
    snprintf(c->tls_err, sizeof(c->tls_err), "%.*s", (int)len, str);
    return 0;
}

/* Runs on paho's thread under its lock: copy and return, nothing else. Always returns 1:
 * paho has sent the PUBACK already and a 0 would only park the message inside paho. */
static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg) {
    gw_conn *c = ctx;
    gw_mqtt *m = c->m;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    if (m->p != NULL && c->subscriber) {
        gw_pipeline_ingest_dup(m->p, topic, tlen, msg->payload, (size_t)msg->payloadlen,
                               msg->dup != 0);
    }
    m->api->freeMessage(&msg);
    m->api->free(topic);
    return 1;
}

/* Queues one message in paho without asking whether the client is connected (see
 * send_message below). */
static int send_message(gw_conn *c, const char *topic, const void *payload, size_t len, int qos,
                        bool retained);

static void on_lost(void *ctx, char *cause) {
    gw_conn *c = ctx;
    gw_mqtt *m = c->m;
    atomic_store(&c->connected, false);
    GW_WARN("mqtt", "connection to %s lost (%s)%s%s; reconnecting (backoff 1 s to 30 s)", m->uri,
            c->role, cause ? ": " : "", cause ? cause : "");
    /* Readings no longer come in: say so while the publishing connection is up (the Last Will
     * covers the loss of that one). When the broker went away it fails quietly. */
    if (c->subscriber && atomic_load(&m->pub.connected)) {
        (void)send_message(&m->pub, m->status_topic, "offline", 7, 1, true);
    }
}

/* MQTT 5: the broker closed the connection with a DISCONNECT and says why (for instance
 * 0x8B, server shutting down); paho reconnects as after any other loss. */
static void on_disconnected(void *ctx, MQTTProperties *props, enum MQTTReasonCodes reason) {
    gw_conn *c = ctx;
    (void)props;
    GW_WARN("mqtt", "the broker at %s disconnected the gateway (%s): %s", c->m->uri, c->role,
            c->m->api->reasonCodeString(reason));
}

static int subscribe_all(gw_conn *c, MQTTAsync_responseOptions *ro) {
    const gw_config *cfg = c->m->cfg;
    char *filters[GW_TOPIC_MAX_SUBS];
    int qos[GW_TOPIC_MAX_SUBS];
    for (size_t i = 0; i < cfg->n_subs; i++) {
        filters[i] = (char *)cfg->subs[i].topic;
        qos[i] = cfg->mqtt.qos;
    }
    return c->m->api->subscribeMany(c->client, (int)cfg->n_subs, filters, qos, ro);
}

/* Queues one message in paho without asking whether the client is connected: paho runs its
 * callbacks holding its global lock, and MQTTAsync_isConnected takes that lock (paho issue
 * #1230: an error-checking mutex then "avoids" the deadlock by unlocking the callback's lock
 * early). Callable from a paho callback. A disconnected client fails the send. */
static int send_message(gw_conn *c, const char *topic, const void *payload, size_t len, int qos,
                        bool retained) {
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    msg.payload = (void *)payload;
    msg.payloadlen = (int)len;
    msg.qos = qos;
    msg.retained = retained ? 1 : 0;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    int rc = c->m->api->sendMessage(c->client, topic, &msg, &ro);
    return rc == MQTTASYNC_SUCCESS ? 0 : -EIO;
}

int gw_mqtt_publish(gw_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                    bool retained) {
    if (!m->api->isConnected(m->pub.client)) {
        return -ENOTCONN;
    }
    return send_message(&m->pub, topic, payload, len, qos, retained);
}

/* Called from the main thread after connecting and from on_connected (a paho callback). */
static void publish_status(gw_mqtt *m, const char *status) {
    if (send_message(&m->pub, m->status_topic, status, strlen(status), 1, true) != 0) {
        GW_WARN("mqtt", "cannot publish status %s", status);
    }
}

static void on_resub_fail(void *ctx, MQTTAsync_failureData *r) {
    (void)ctx;
    GW_ERROR("mqtt", "subscribing again after reconnect failed: %s",
             r != NULL && r->message != NULL ? r->message : "no reason given");
}

static void on_resub_fail5(void *ctx, MQTTAsync_failureData5 *r) {
    gw_conn *c = ctx;
    GW_ERROR("mqtt", "subscribing again after reconnect failed: %s",
             r != NULL ? c->m->api->reasonCodeString(r->reasonCode) : "no reason given");
}

/* After an automatic reconnect. The subscriptions: the broker kept them when it kept the
 * session, but the connected callback does not say whether it did, so they are always renewed
 * (harmless when present). `online` is said again once both connections are back; the
 * publisher resends what was in flight on its own. */
static void on_connected(void *ctx, char *cause) {
    gw_conn *c = ctx;
    gw_mqtt *m = c->m;
    atomic_store(&c->connected, true);
    /* paho calls this for the first connect too (gw_mqtt_connect handles that one); every
     * later call is a reconnect, whether or not the loss was reported through on_lost. */
    if (atomic_fetch_add(&c->connected_calls, 1) == 0) {
        return;
    }
    GW_INFO("mqtt", "reconnected to %s (%s)%s%s", m->uri, c->role, cause ? ": " : "",
            cause ? cause : "");
    if (c->subscriber) {
        MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
        ro.context = c;
        if (m->v5) {
            ro.onFailure5 = on_resub_fail5;
        } else {
            ro.onFailure = on_resub_fail;
        }
        int rc = subscribe_all(c, &ro);
        if (rc != MQTTASYNC_SUCCESS) {
            GW_ERROR("mqtt", "subscribing again failed: %s", m->api->strerror(rc));
        }
    }
    /* `online` once both are back, after the subscriptions: whichever comes back second says
     * it (each sets its own flag before it looks at the other's, so at least one sees both). */
    gw_conn *other = c->subscriber ? &m->pub : &m->sub;
    if (atomic_load(&other->connected)) {
        publish_status(m, "online");
    }
}

/* Reads the password: mqtt.password_file (which must not be readable by group or others), or
 * the environment variable IOTGW_MQTT_PASSWORD. Never from the config file itself. */
static int load_password(gw_mqtt *m, char *err, size_t errlen) {
    const char *path = m->cfg->mqtt.password_file;
    if (path[0] == '\0') {
        const char *env = getenv("IOTGW_MQTT_PASSWORD");
        if (env != NULL) {
            if (strlen(env) >= sizeof(m->password)) {
                snprintf(err, errlen, "IOTGW_MQTT_PASSWORD is longer than %zu bytes",
                         sizeof(m->password) - 1);
                return -EINVAL;
            }
            snprintf(m->password, sizeof(m->password), "%s", env);
            m->has_password = true;
        }
        return 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "mqtt.password_file %s: %s", path, strerror(errno));
        return -errno;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
        snprintf(err, errlen,
                 "mqtt.password_file %s: readable by group or others (mode %04o); "
                 "refusing it: chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
        close(fd);
        return -EPERM;
    }
    ssize_t n = read(fd, m->password, sizeof(m->password) - 1);
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "mqtt.password_file %s: %s", path, strerror(errno));
        return -EIO;
    }
    m->password[n] = '\0';
    m->password[strcspn(m->password, "\r\n")] = '\0';
    m->has_password = true;
    return 0;
}

static void conn_free(gw_conn *c) {
    if (c->client != NULL) {
        c->m->api->destroy(&c->client);
    }
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
}

static int conn_init(gw_mqtt *m, gw_conn *c, bool subscriber, char *err, size_t errlen) {
    const gw_config *cfg = m->cfg;
    c->m = m;
    c->subscriber = subscriber;
    c->role = subscriber ? "subscriptions" : "publishing";
    snprintf(c->client_id, sizeof(c->client_id), "%s%s", cfg->mqtt.client_id,
             subscriber ? "" : "-pub");
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.MQTTVersion = m->v5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    /* Nothing is buffered inside paho while disconnected: the publisher retries itself and
     * the outbox holds the rest (DESIGN.md: no unbounded buffer between stages). */
    co.sendWhileDisconnected = 0;
    int rc = m->api->createWithOptions(&c->client, m->uri, c->client_id,
                                       MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        c->client = NULL;
        snprintf(err, errlen, "cannot create the MQTT client for %s: %s", m->uri,
                 m->api->strerror(rc));
        return -EIO;
    }
    rc = m->api->setCallbacks(c->client, c, on_lost, on_message, NULL);
    if (rc == MQTTASYNC_SUCCESS) {
        rc = m->api->setConnected(c->client, c, on_connected);
    }
    if (rc == MQTTASYNC_SUCCESS && m->v5) {
        rc = m->api->setDisconnected(c->client, c, on_disconnected);
    }
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "cannot set the MQTT callbacks: %s", m->api->strerror(rc));
        return -EIO;
    }
    return 0;
}

int gw_mqtt_new(gw_mqtt **out, const gw_config *cfg, char *err, size_t errlen) {
    gw_mqtt *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    m->cfg = cfg;
    m->v5 = cfg->mqtt.version == 5;
    m->rl = (gw_ratelimit)GW_RATELIMIT_INIT;
    m->api = gw_paho_load(cfg->mqtt.tls.enabled, err, errlen);
    if (m->api == NULL) {
        free(m);
        return -ENOENT;
    }
    int rc = load_password(m, err, errlen);
    if (rc != 0) {
        free(m);
        return rc;
    }
    snprintf(m->uri, sizeof(m->uri), "%s://%s:%d", cfg->mqtt.tls.enabled ? "ssl" : "tcp",
             cfg->mqtt.host, cfg->mqtt.port);
    snprintf(m->status_topic, sizeof(m->status_topic), "%s/status", cfg->output.prefix);
    rc = conn_init(m, &m->sub, true, err, errlen);
    if (rc == 0) {
        rc = conn_init(m, &m->pub, false, err, errlen);
    }
    if (rc != 0) {
        conn_free(&m->sub);
        conn_free(&m->pub);
        memset(m->password, 0, sizeof(m->password));
        free(m);
        return -EIO;
    }
    *out = m;
    return 0;
}

void gw_mqtt_attach(gw_mqtt *m, gw_pipeline *p) {
    m->p = p;
}

static int start_connect(gw_conn *c) {
    gw_mqtt *m = c->m;
    const gw_config *cfg = m->cfg;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions co5 = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    MQTTProperties props = MQTTProperties_initializer;
    bool persistent = c->subscriber && cfg->mqtt.session_expiry_ms > 0;
    if (m->v5) {
        co = co5;
        co.cleanstart = persistent ? 0 : 1;
        co.onSuccess5 = on_connect_ok5;
        co.onFailure5 = on_fail5;
        if (persistent) {
            int64_t s = cfg->mqtt.session_expiry_ms / 1000;
            MQTTProperty pr = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
            pr.value.integer4 = s > 0xFFFFFFFELL ? 0xFFFFFFFEu : (s < 1 ? 1u : (unsigned)s);
            if (m->api->propertiesAdd(&props, &pr) != 0) {
                return MQTTASYNC_FAILURE;
            }
            co.connectProperties = &props;
        }
    } else {
        co.MQTTVersion = MQTTVERSION_3_1_1;
        co.cleansession = persistent ? 0 : 1;
        co.onSuccess = on_connect_ok;
        co.onFailure = on_fail;
    }
    /* The Last Will goes with the connection that says `online`. */
    if (!c->subscriber) {
        will.topicName = m->status_topic;
        will.message = "offline";
        will.retained = 1;
        will.qos = 1;
        co.will = &will;
    }
    co.keepAliveInterval = cfg->mqtt.keepalive_s;
    co.automaticReconnect = 1;
    co.minRetryInterval = 1;
    co.maxRetryInterval = 30;
    co.context = c;
    if (cfg->mqtt.username[0] != '\0') {
        co.username = cfg->mqtt.username;
    }
    if (m->has_password) {
        co.password = m->password;
    }
    if (cfg->mqtt.tls.enabled) {
        ssl.trustStore = cfg->mqtt.tls.ca_file[0] ? cfg->mqtt.tls.ca_file : NULL;
        ssl.keyStore = cfg->mqtt.tls.cert_file[0] ? cfg->mqtt.tls.cert_file : NULL;
        ssl.privateKey = cfg->mqtt.tls.key_file[0] ? cfg->mqtt.tls.key_file : NULL;
        ssl.enableServerCertAuth = 1;
        ssl.verify = cfg->mqtt.tls.verify ? 1 : 0;
        ssl.ssl_error_cb = on_tls_error;
        ssl.ssl_error_context = c;
        co.ssl = &ssl;
    }
    c->tls_err[0] = '\0';
    /* paho copies the options, the will, the TLS settings and the properties. */
    int rc = m->api->connect(c->client, &co);
    m->api->propertiesFree(&props);
    return rc;
}

/* Connects one connection (unless connected already) and waits for the CONNACK. */
/* Starts connecting one connection (unless it is up already): 0, or -EIO with err set. */
static int conn_start(gw_conn *c, char *err, size_t errlen) {
    if (c->up) {
        return 0; /* an earlier call connected this one before another step failed */
    }
    set_done(c, 0, 0, NULL);
    int rc = start_connect(c);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "cannot connect to %s: %s", c->m->uri, c->m->api->strerror(rc));
        return -EIO;
    }
    return 0;
}

/* Waits for the CONNACK of a connection conn_start started. */
static int conn_wait(gw_conn *c, int timeout_ms, char *err, size_t errlen) {
    if (c->up) {
        return 0;
    }
    int d = wait_done(c, timeout_ms);
    if (d != 1) {
        snprintf(err, errlen, "cannot connect to %s: %s", c->m->uri,
                 d == 0 ? "timed out" : c->fail_msg);
        return -EIO;
    }
    atomic_store(&c->connected, true);
    c->up = true;
    if (c->subscriber && c->session_present) {
        GW_INFO("mqtt", "the broker kept the session of %s", c->client_id);
    }
    return 0;
}

int gw_mqtt_connect(gw_mqtt *m, int timeout_ms, char *err, size_t errlen) {
    /* Both connections at once (paho takes about a second for each), and both outcomes
     * awaited even when one fails, so that a late callback cannot land on the next try.
     * `online` waits for the subscriptions: a client seeing it knows that readings are taken
     * from then on. */
    int64_t deadline = gw_mono_ms() + timeout_ms;
    char err2[256];
    int rc = conn_start(&m->pub, err, errlen);
    int rc2 = conn_start(&m->sub, err2, sizeof(err2));
    if (rc == 0) {
        rc = conn_wait(&m->pub, timeout_ms, err, errlen);
    }
    if (rc2 == 0) {
        int64_t left = deadline - gw_mono_ms();
        rc2 = conn_wait(&m->sub, left > 0 ? (int)left : 0, err2, sizeof(err2));
    }
    if (rc != 0) {
        return rc;
    }
    if (rc2 != 0) {
        snprintf(err, errlen, "%s", err2);
        return rc2;
    }
    gw_conn *c = &m->sub;
    /* Subscribing again in a kept session is harmless and covers a changed config. */
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    wait_callbacks(c, &ro);
    set_done(c, 0, 0, NULL);
    rc = subscribe_all(c, &ro);
    if (rc != MQTTASYNC_SUCCESS || wait_done(c, timeout_ms) != 1) {
        snprintf(err, errlen, "cannot subscribe on %s: %s", m->uri,
                 rc != MQTTASYNC_SUCCESS ? m->api->strerror(rc) : c->fail_msg);
        return -EIO;
    }
    publish_status(m, "online");
    return 0;
}

int gw_mqtt_unsubscribe_all(gw_mqtt *m, int timeout_ms) {
    const gw_config *cfg = m->cfg;
    gw_conn *c = &m->sub;
    char *filters[GW_TOPIC_MAX_SUBS];
    for (size_t i = 0; i < cfg->n_subs; i++) {
        filters[i] = (char *)cfg->subs[i].topic;
    }
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    wait_callbacks(c, &ro);
    set_done(c, 0, 0, NULL);
    int rc = m->api->unsubscribeMany(c->client, (int)cfg->n_subs, filters, &ro);
    if (rc != MQTTASYNC_SUCCESS) {
        return -EIO;
    }
    return wait_done(c, timeout_ms) == 1 ? 0 : -ETIMEDOUT;
}

/* paho's own disconnect timeout is not used (it waited for the full time in tests even with
 * nothing left in flight): DISCONNECT at once, then wait a little for the socket to close. */
static void conn_disconnect(gw_conn *c) {
    gw_mqtt *m = c->m;
    MQTTAsync_disconnectOptions dc = MQTTAsync_disconnectOptions_initializer;
    dc.timeout = 0;
    if (m->api->disconnect(c->client, &dc) == MQTTASYNC_SUCCESS) {
        int64_t deadline = gw_mono_ms() + 500;
        while (m->api->isConnected(c->client) && gw_mono_ms() < deadline) {
            struct timespec ts = {0, 5000000L};
            nanosleep(&ts, NULL);
        }
    }
    atomic_store(&c->connected, false);
}

void gw_mqtt_disconnect(gw_mqtt *m, int timeout_ms) {
    gw_conn *c = &m->pub;
    if (m->api->isConnected(c->client)) {
        /* A clean DISCONNECT suppresses the Last Will: `offline` is published and its PUBACK
         * awaited first. */
        MQTTAsync_message msg = MQTTAsync_message_initializer;
        msg.payload = (void *)"offline";
        msg.payloadlen = 7;
        msg.qos = 1;
        msg.retained = 1;
        MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
        wait_callbacks(c, &ro);
        set_done(c, 0, 0, NULL);
        if (m->api->sendMessage(c->client, m->status_topic, &msg, &ro) != MQTTASYNC_SUCCESS ||
            wait_done(c, timeout_ms) != 1) {
            GW_WARN("mqtt", "status offline not acknowledged; the Last Will may not be sent");
        }
        conn_disconnect(c);
    }
    if (m->api->isConnected(m->sub.client)) {
        conn_disconnect(&m->sub);
    }
    atomic_store(&m->pub.connected, false);
    atomic_store(&m->sub.connected, false);
}

void gw_mqtt_free(gw_mqtt *m) {
    if (m == NULL) {
        return;
    }
    conn_free(&m->sub);
    conn_free(&m->pub);
    memset(m->password, 0, sizeof(m->password));
    free(m);
}

bool gw_mqtt_is_connected(gw_mqtt *m) {
    return atomic_load(&m->sub.connected) && m->api->isConnected(m->sub.client) &&
           atomic_load(&m->pub.connected) && m->api->isConnected(m->pub.client);
}

unsigned gw_mqtt_connects(gw_mqtt *m) {
    return atomic_load(&m->pub.connected_calls);
}

const char *gw_mqtt_uri(const gw_mqtt *m) {
    return m->uri;
}

static void sent(send_ctx *sc) {
    gw_pipeline_alert_delivered(sc->m->p, sc->id);
    free(sc);
}

static void send_failed(send_ctx *sc, const char *why) {
    gw_log_limited(&sc->m->rl, GW_LOG_WARN, "mqtt",
                   "alert %lld not acknowledged (%s); it is sent again after reconnecting",
                   (long long)sc->id, why);
    gw_pipeline_alert_failed(sc->m->p, sc->id);
    free(sc);
}

static void on_sent(void *ctx, MQTTAsync_successData *r) {
    (void)r;
    sent(ctx);
}

static void on_send_fail(void *ctx, MQTTAsync_failureData *r) {
    send_failed(ctx, r != NULL ? ((send_ctx *)ctx)->m->api->strerror(r->code) : "unknown");
}

static void on_sent5(void *ctx, MQTTAsync_successData5 *r) {
    (void)r;
    sent(ctx);
}

static void on_send_fail5(void *ctx, MQTTAsync_failureData5 *r) {
    send_failed(ctx, r != NULL ? ((send_ctx *)ctx)->m->api->strerror(r->code) : "unknown");
}

static int sink_send(void *ctx, const char *topic, const char *payload, size_t len, int qos,
                     bool retained, int64_t alert_id) {
    gw_mqtt *m = ctx;
    if (!m->api->isConnected(m->pub.client)) {
        return -ENOTCONN;
    }
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    msg.payload = (void *)payload;
    msg.payloadlen = (int)len;
    msg.qos = qos;
    msg.retained = retained ? 1 : 0;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    send_ctx *sc = NULL;
    if (alert_id != 0) {
        sc = malloc(sizeof(*sc));
        if (sc == NULL) {
            return -ENOMEM;
        }
        sc->m = m;
        sc->id = alert_id;
        if (m->v5) {
            ro.onSuccess5 = on_sent5;
            ro.onFailure5 = on_send_fail5;
        } else {
            ro.onSuccess = on_sent;
            ro.onFailure = on_send_fail;
        }
        ro.context = sc;
    }
    int rc = m->api->sendMessage(m->pub.client, topic, &msg, &ro);
    if (rc != MQTTASYNC_SUCCESS) {
        free(sc);
        return -EIO;
    }
    return 0;
}

const gw_sink_ops gw_mqtt_sink = {.send = sink_send};
