/* Bounded growable buffers (see buf.h). Growth doubles, never past the caller's max. */
#include "util/buf.h"

#include "capstan/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cap_buf_init(struct cap_buf *buf, size_t max)
{
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
    buf->max = max;
}

void cap_buf_deinit(struct cap_buf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

int cap_buf_reserve(struct cap_buf *buf, size_t extra)
{
    if (extra > buf->max || buf->len > buf->max - extra)
        return CAP_ELIMIT;
    size_t need = buf->len + extra;
    if (need <= buf->cap)
        return 0;
    size_t cap = buf->cap ? buf->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > buf->max)
        cap = buf->max;
    uint8_t *data = realloc(buf->data, cap);
    if (!data)
        return CAP_ENOMEM;
    buf->data = data;
    buf->cap = cap;
    return 0;
}

int cap_buf_append(struct cap_buf *buf, const void *data, size_t len)
{
    int err = cap_buf_reserve(buf, len);
    if (err)
        return err;
    if (len)
        memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    return 0;
}

int cap_buf_append_byte(struct cap_buf *buf, uint8_t byte)
{
    return cap_buf_append(buf, &byte, 1);
}

int cap_buf_printf(struct cap_buf *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CAP_EINVAL;
    int err = cap_buf_reserve(buf, (size_t)n + 1);
    if (err)
        return err;
    va_start(ap, fmt);
    vsnprintf((char *)buf->data + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
    return 0;
}

void cap_buf_consume(struct cap_buf *buf, size_t n)
{
    if (n >= buf->len) {
        buf->len = 0;
        return;
    }
    memmove(buf->data, buf->data + n, buf->len - n);
    buf->len -= n;
}
