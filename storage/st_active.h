/* The alerts raised now (v_active_alerts), read back at start so that the gateway's rules go on
 * from where an earlier run left them (gateway/restore.c).
 *
 * Threads: like every st_db function, on the thread that owns the connection; the gateway
 * calls it once, before its threads start. */
#ifndef ST_ACTIVE_H
#define ST_ACTIVE_H

#include <stddef.h>

#include "st_db.h"

/* Calls fn for each row of v_active_alerts (per (series, kind, rule) the newest transition,
 * when it is 'raised'), in id order, with the columns of st_alert_out (gateway included).
 * Strings are borrowed for the call only and NULL for SQL NULL; numbers NaN for NULL. fn
 * returns 0 to go on, anything else to stop. Must be called outside a transaction (ST_EIO
 * otherwise). Returns the number of rows visited, or a negative ST_E* code with a reason in
 * err. */
int st_db_active_alerts(st_db *db, st_alert_fn fn, void *ctx, char *err, size_t errlen);

#endif
