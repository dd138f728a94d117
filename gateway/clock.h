/* Time helpers. Thread-safe. */
#ifndef GW_CLOCK_H
#define GW_CLOCK_H

#include <stdint.h>
#include <time.h>

int64_t gw_now_ms(void);  /* wall clock, UTC epoch ms (CLOCK_REALTIME) */
int64_t gw_mono_ms(void); /* monotonic ms, for deadlines and intervals */
int64_t gw_mono_ns(void); /* monotonic ns, for latency measurements */

/* Fills *ts with the time `ms` milliseconds from now on clock `clk`, as the absolute deadline
 * that pthread_cond_timedwait expects (CLOCK_REALTIME unless the condition variable was set to
 * another clock). */
void gw_deadline_after(struct timespec *ts, clockid_t clk, int64_t ms);

#endif
