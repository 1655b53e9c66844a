/* Clock readings and conversions between Unix nanoseconds, NTP and ISO 8601 text. */
#include "util/clock.h"

#include <stdio.h>
#include <time.h>

#define NTP_UNIX_OFFSET_SEC UINT64_C(2208988800)

int64_t cap_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * CAP_NS_PER_SEC + ts.tv_nsec;
}

int64_t cap_clock_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * CAP_NS_PER_SEC + ts.tv_nsec;
}

struct timespec cap_clock_deadline_ns(int64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ns < 0)
        ns = 0;
    ts.tv_sec += (time_t)(ns / CAP_NS_PER_SEC);
    ts.tv_nsec += (long)(ns % CAP_NS_PER_SEC);
    if (ts.tv_nsec >= CAP_NS_PER_SEC) {
        ts.tv_sec++;
        ts.tv_nsec -= CAP_NS_PER_SEC;
    }
    return ts;
}

int64_t cap_clock_ntp_to_unix_ns(uint64_t ntp)
{
    uint64_t seconds = ntp >> 32;
    uint64_t fraction = ntp & 0xffffffffu;
    int64_t unix_sec = (int64_t)seconds - (int64_t)NTP_UNIX_OFFSET_SEC;
    int64_t frac_ns = (int64_t)((fraction * (uint64_t)CAP_NS_PER_SEC) >> 32);
    return unix_sec * CAP_NS_PER_SEC + frac_ns;
}

uint64_t cap_clock_unix_ns_to_ntp(int64_t unix_ns)
{
    int64_t sec = unix_ns / CAP_NS_PER_SEC;
    int64_t rem = unix_ns % CAP_NS_PER_SEC;
    if (rem < 0) {
        rem += CAP_NS_PER_SEC;
        sec -= 1;
    }
    uint64_t seconds = (uint64_t)(sec + (int64_t)NTP_UNIX_OFFSET_SEC);
    uint64_t fraction = (((uint64_t)rem << 32) + (uint64_t)CAP_NS_PER_SEC / 2) / (uint64_t)CAP_NS_PER_SEC;
    return (seconds << 32) | (fraction & 0xffffffffu);
}

size_t cap_clock_format_iso8601(int64_t unix_ns, char *out, size_t out_size)
{
    int64_t sec = unix_ns / CAP_NS_PER_SEC;
    int64_t ms = (unix_ns % CAP_NS_PER_SEC) / CAP_NS_PER_MS;
    if (ms < 0) {
        ms += 1000;
        sec -= 1;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    int n = snprintf(out, out_size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms);
    return n < 0 ? 0 : (size_t)n;
}
