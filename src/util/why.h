/* The `char *why, size_t why_size` convention: a call that fails may say why in words
 * for its caller's error message. Either may be NULL/0 when the caller does not care. */
#ifndef CAP_UTIL_WHY_H
#define CAP_UTIL_WHY_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

static inline void cap_set_why(char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void cap_set_why(char *why, size_t size, const char *fmt, ...)
{
    if (!why || !size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
}

#endif
