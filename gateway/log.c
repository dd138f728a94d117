#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

static atomic_int min_level = GW_LOG_INFO;

static const char *level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

int gw_log_set_level_name(const char *name) {
    static const char *lower[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, lower[i]) == 0) {
            atomic_store(&min_level, i);
            return 0;
        }
    }
    return -1;
}

void gw_log_set_level(gw_log_level lvl) {
    atomic_store(&min_level, (int)lvl);
}

gw_log_level gw_log_get_level(void) {
    return (gw_log_level)atomic_load(&min_level);
}

/* Formats the whole line first so that one write(2) keeps lines from different threads
 * whole. */
static void vlog(gw_log_level lvl, const char *who, const char *suffix, const char *fmt,
                 va_list ap) {
    char line[1024];
    int64_t now = gw_now_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    int n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(now % 1000),
                     level_names[lvl], who);
    if (n < 0) {
        return;
    }
    size_t used = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    int m = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
    if (m > 0) {
        used += (size_t)m < sizeof(line) - used ? (size_t)m : sizeof(line) - used - 1;
    }
    if (suffix != NULL && suffix[0] != '\0') {
        int k = snprintf(line + used, sizeof(line) - used, "%s", suffix);
        if (k > 0) {
            used += (size_t)k < sizeof(line) - used ? (size_t)k : sizeof(line) - used - 1;
        }
    }
    if (used >= sizeof(line) - 1) {
        used = sizeof(line) - 2;
    }
    line[used++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, used);
    (void)w;
}

void gw_log(gw_log_level lvl, const char *who, const char *fmt, ...) {
    if ((int)lvl < atomic_load(&min_level)) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vlog(lvl, who, NULL, fmt, ap);
    va_end(ap);
}

void gw_log_limited(gw_ratelimit *rl, gw_log_level lvl, const char *who, const char *fmt, ...) {
    if ((int)lvl < atomic_load(&min_level)) {
        return;
    }
    int burst = rl->burst > 0 ? rl->burst : 10;
    int period = rl->period_ms > 0 ? rl->period_ms : 10000;
    int64_t now = gw_mono_ms();
    int64_t start = atomic_load(&rl->window_start_ms);
    if (start == 0 || now - start >= period) {
        /* Only one thread opens the new period; the others count into it. */
        if (atomic_compare_exchange_strong(&rl->window_start_ms, &start, now)) {
            atomic_store(&rl->window_count, 0);
        }
    }
    if (atomic_fetch_add(&rl->window_count, 1) >= burst) {
        atomic_fetch_add(&rl->suppressed, 1);
        return;
    }
    int held = atomic_exchange(&rl->suppressed, 0);
    char suffix[64] = "";
    if (held > 0) {
        snprintf(suffix, sizeof(suffix), " (%d similar suppressed)", held);
    }
    va_list ap;
    va_start(ap, fmt);
    vlog(lvl, who, suffix, fmt, ap);
    va_end(ap);
}
