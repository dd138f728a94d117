/* Time helpers. Thread-safe. */
#ifndef GW_CLOCK_H
#define GW_CLOCK_H

#include <stdint.h>

int64_t gw_now_ms(void);  /* wall clock, UTC epoch ms (CLOCK_REALTIME) */
int64_t gw_mono_ms(void); /* monotonic ms, for deadlines and intervals */
int64_t gw_mono_ns(void); /* monotonic ns, for latency measurements */

#endif
