/* clock.h — the one clock of the server: monotonic seconds for durations and deadlines,
 * wall-clock milliseconds for what is stored (created_at, lease expiry), and absolute
 * CLOCK_REALTIME deadlines for pthread_cond_timedwait.
 */
#ifndef BACKPROPD_CLOCK_H
#define BACKPROPD_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Seconds on CLOCK_MONOTONIC (durations, rate limits, heartbeats). */
double clock_monotonic(void);
/* Milliseconds since the Unix epoch on CLOCK_REALTIME (stored timestamps, leases). */
int64_t clock_wall_ms(void);
/* Test-only (tests/store_postgres.c; never called by the server): from now on clock_wall_ms()
 * answers ms milliseconds ahead (negative: behind), as a skewed machine's clock would. */
void clock_debug_skew_ms(int64_t ms);
/* CLOCK_REALTIME now + seconds, for pthread_cond_timedwait. */
struct timespec clock_deadline_in(double seconds);

#endif
