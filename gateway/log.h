/* Logging to stderr: "2024-05-01T12:00:00.000Z WARN  ingest: message" lines, thread-safe
 * (one write(2) per line). Rate-limited logging for per-message problems: at most `burst`
 * lines per `period_ms`; the lines held back are counted and reported with the next line
 * that gets through ("... (37 similar suppressed)"). */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stdatomic.h>
#include <stdint.h>

typedef enum gw_log_level { GW_LOG_DEBUG = 0, GW_LOG_INFO, GW_LOG_WARN, GW_LOG_ERROR } gw_log_level;

/* Sets the minimum level; "debug", "info", "warn", "error". Returns 0 or -1 if unknown. */
int gw_log_set_level_name(const char *name);
void gw_log_set_level(gw_log_level lvl);
gw_log_level gw_log_get_level(void);

/* Any thread. `who` names the stage ("decode", "writer", ...). */
void gw_log(gw_log_level lvl, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define GW_DEBUG(who, ...) gw_log(GW_LOG_DEBUG, who, __VA_ARGS__)
#define GW_INFO(who, ...)  gw_log(GW_LOG_INFO, who, __VA_ARGS__)
#define GW_WARN(who, ...)  gw_log(GW_LOG_WARN, who, __VA_ARGS__)
#define GW_ERROR(who, ...) gw_log(GW_LOG_ERROR, who, __VA_ARGS__)

/* A rate limiter; zero-initialise it, or use GW_RATELIMIT_INIT. Thread-safe. */
typedef struct gw_ratelimit {
    atomic_int_fast64_t window_start_ms;
    atomic_int window_count;
    atomic_int suppressed;
    int burst;     /* lines per period; 10 when 0 */
    int period_ms; /* 10000 when 0 */
} gw_ratelimit;
#define GW_RATELIMIT_INIT                                                                          \
    { 0, 0, 0, 10, 10000 }

/* Logs like gw_log unless the limiter is past its burst in this period. */
void gw_log_limited(gw_ratelimit *rl, gw_log_level lvl, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
