/* Clocks: monotonic for intervals, wall for timestamps stored in recordings (ns since the
 * Unix epoch), and NTP conversions used by RTCP. */
#ifndef CAP_UTIL_CLOCK_H
#define CAP_UTIL_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CAP_NS_PER_SEC INT64_C(1000000000)
#define CAP_NS_PER_MS INT64_C(1000000)

int64_t cap_clock_mono_ns(void);
int64_t cap_clock_wall_ns(void);

/* The CLOCK_REALTIME deadline `ns` from now, as pthread_cond_timedwait takes it. */
struct timespec cap_clock_deadline_ns(int64_t ns);

/* 64-bit NTP timestamp (RFC 5905 era 0) <-> ns since the Unix epoch. */
int64_t cap_clock_ntp_to_unix_ns(uint64_t ntp);
uint64_t cap_clock_unix_ns_to_ntp(int64_t unix_ns);

/* "2024-01-15T10:00:00.123Z"; returns the length written. */
size_t cap_clock_format_iso8601(int64_t unix_ns, char *out, size_t out_size);

#endif
