/* MQTT client of the gateway (paho MQTTAsync, loaded by paho.h): a persistent session whose
 * subscriptions feed the pipeline's ingest, and a clean-session connection through which the
 * publisher's sink publishes alerts, a retained `<prefix>/status` says online, and the Last
 * Will says offline (mqtt.c says why two). */
#ifndef GW_MQTT_H
#define GW_MQTT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "pipeline.h"

typedef struct gw_mqtt gw_mqtt;

/* Creates the client (no connection yet) and reads the password (mqtt.password_file, which
 * must not be readable by group or others, or $IOTGW_MQTT_PASSWORD). Borrows cfg (must
 * outlive the client). Returns 0 or a negative code with a reason in err. */
int gw_mqtt_new(gw_mqtt **out, const gw_config *cfg, char *err, size_t errlen);

/* Routes received messages and PUBACKs to the pipeline. Call before connecting. */
void gw_mqtt_attach(gw_mqtt *m, gw_pipeline *p);

/* Connects, subscribes every configured filter and publishes `online` (retained). Waits up
 * to timeout_ms. Returns 0, or a negative code with a reason in err. Main thread. After a
 * lost connection the client reconnects by itself and subscribes again. */
int gw_mqtt_connect(gw_mqtt *m, int timeout_ms, char *err, size_t errlen);

/* Unsubscribes every filter and waits for the broker's UNSUBACK (up to timeout_ms), so that
 * no message arrives after it: every message acknowledged before is in the ingest queue. */
int gw_mqtt_unsubscribe_all(gw_mqtt *m, int timeout_ms);

/* Publishes one message (e.g. stats) as it is; nothing is buffered while disconnected.
 * Borrows everything. Any thread but paho's callback threads (it asks paho whether it is
 * connected, which takes the lock paho holds while running a callback). Returns 0,
 * -ENOTCONN or -EIO. */
int gw_mqtt_publish(gw_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                    bool retained);

/* Publishes `offline` (retained) and disconnects cleanly. */
void gw_mqtt_disconnect(gw_mqtt *m, int timeout_ms);
void gw_mqtt_free(gw_mqtt *m);

bool gw_mqtt_is_connected(gw_mqtt *m);

/* How many times the publishing connection has connected so far (the first connect and every
 * automatic reconnect): a change tells that retained messages should be published again. Any
 * thread. */
unsigned gw_mqtt_connects(gw_mqtt *m);

/* The broker's URI (tcp://host:port or ssl://host:port); valid while m lives. */
const char *gw_mqtt_uri(const gw_mqtt *m);

/* The sink for gw_pipeline_opts: ctx is the gw_mqtt. */
extern const gw_sink_ops gw_mqtt_sink;

#endif
