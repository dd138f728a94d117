/* paho-mqtt-c, loaded at run time. libpaho-mqtt3as (TLS) links OpenSSL, whose libraries and
 * initialisation cost ~3.4 MB of resident memory even when no TLS connection is ever made; a
 * gateway without TLS loads libpaho-mqtt3a instead. Both come from the same Debian package
 * (libpaho-mqtt1.3) and have the same API; calls go through the table below. */
#ifndef IOTGW_PAHO_H
#define IOTGW_PAHO_H

#include <MQTTAsync.h>

#include <stdbool.h>
#include <stddef.h>

/* X(field, paho function) for every paho function iotgw calls. */
#define GW_PAHO_FUNCS(X)                                                                           \
    X(createWithOptions, MQTTAsync_createWithOptions)                                              \
    X(setCallbacks, MQTTAsync_setCallbacks)                                                        \
    X(setConnected, MQTTAsync_setConnected)                                                        \
    X(setDisconnected, MQTTAsync_setDisconnected)                                                  \
    X(connect, MQTTAsync_connect)                                                                  \
    X(disconnect, MQTTAsync_disconnect)                                                            \
    X(isConnected, MQTTAsync_isConnected)                                                          \
    X(sendMessage, MQTTAsync_sendMessage)                                                          \
    X(subscribeMany, MQTTAsync_subscribeMany)                                                      \
    X(unsubscribeMany, MQTTAsync_unsubscribeMany)                                                  \
    X(getPendingTokens, MQTTAsync_getPendingTokens)                                                \
    X(freeMessage, MQTTAsync_freeMessage)                                                          \
    X(free, MQTTAsync_free)                                                                        \
    X(destroy, MQTTAsync_destroy)                                                                  \
    X(strerror, MQTTAsync_strerror)                                                                \
    X(propertiesAdd, MQTTProperties_add)                                                           \
    X(propertiesFree, MQTTProperties_free)                                                         \
    X(reasonCodeString, MQTTReasonCode_toString)

#define GW_PAHO_FIELD(field, fn) __typeof__(fn) *field;
typedef struct gw_paho {
    GW_PAHO_FUNCS(GW_PAHO_FIELD)
    const char *library; /* the file name loaded */
} gw_paho;
#undef GW_PAHO_FIELD

/* The paho API with TLS (libpaho-mqtt3as) or without (libpaho-mqtt3a), loaded once per kind
 * and kept for the life of the process. NULL with a message in err when the library or one of
 * its functions is missing. Thread-safe. */
const gw_paho *gw_paho_load(bool tls, char *err, size_t errlen);

#endif
