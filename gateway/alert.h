/* Alert messages as they leave the gateway. Pure formatting, thread-safe. */
#ifndef GW_ALERT_H
#define GW_ALERT_H

#include <stddef.h>

#include "an_types.h"
#include "st_db.h"

/* The alert event as JSON: {"id":12,"gateway":"gw1","sensor":"pump1","metric":"temp",
 * "kind":"high","state":"raised","severity":"warning","rule":"hot","value":31.5,
 * "threshold":30,"ts":"2024-05-01T12:00:00.000Z","message":"..."}, plus for some kinds the
 * figure behind the alert: "rate" (per second), "silence_ms", "eta" (trend: predicted
 * crossing, RFC 3339), "shift" (drift), "score" (anomaly). Strings are escaped. An id <= 0 (an
 * alert not stored, during a storage fault) gives "id":null,"stored":false.
 * Returns the length written (without NUL), or -1 when buf is too small. */
int gw_alert_json(const st_alert_out *a, char *buf, size_t len);

/* A human-readable line: "temp of pump1 is 31.5, above 30 (rule hot)", "temp of pump1 is back
 * to 27.5, below 28 (rule hot)", "temp of pump1 changes by 12 per second, faster than 5 (rule
 * jump)", "temp of pump1 silent for 60 s, last value 21.5 (rule silent)". Returns buf. */
char *gw_alert_message(const an_alert *a, const char *sensor, const char *metric, const char *rule,
                       char *buf, size_t len);

/* Appends s to buf as a JSON string (with quotes). Returns the new length or -1. */
int gw_json_str(char *buf, size_t len, size_t used, const char *s);

#endif
