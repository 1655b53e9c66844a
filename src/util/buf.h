/* Growable byte buffers with a hard maximum: appends past the cap fail with CAP_ELIMIT
 * instead of growing without bound. */
#ifndef CAP_UTIL_BUF_H
#define CAP_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

struct cap_buf {
    uint8_t *data;
    size_t len;
    size_t cap;     /* bytes allocated */
    size_t max;     /* hard limit on len */
};

/* Caller-owned; starts empty; nothing is allocated until the first append. */
void cap_buf_init(struct cap_buf *buf, size_t max);
void cap_buf_deinit(struct cap_buf *buf);
/* Makes room for `extra` more bytes; CAP_ELIMIT past max, CAP_ENOMEM on allocation failure. */
int cap_buf_reserve(struct cap_buf *buf, size_t extra);
int cap_buf_append(struct cap_buf *buf, const void *data, size_t len);
int cap_buf_append_byte(struct cap_buf *buf, uint8_t byte);
int cap_buf_printf(struct cap_buf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes, keeping the rest. */
void cap_buf_consume(struct cap_buf *buf, size_t n);
static inline void cap_buf_reset(struct cap_buf *buf) { buf->len = 0; }

#endif
