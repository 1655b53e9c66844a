/* Level-checked logging: JSON lines on stderr, each with the context it was given
 * (recording, track, job). A message below the current level formats nothing. */
#ifndef CAP_UTIL_LOG_H
#define CAP_UTIL_LOG_H

enum cap_log_level {
    CAP_LOG_ERROR = 0,
    CAP_LOG_WARN = 1,
    CAP_LOG_INFO = 2,
    CAP_LOG_DEBUG = 3,
};

/* Who a log line is about; any field may be NULL. */
struct cap_log_ctx {
    const char *recording;
    const char *track;
    const char *job;
};

extern enum cap_log_level cap_log_threshold;

void cap_log_set_level(enum cap_log_level level);
/* Parses "error|warn|info|debug"; returns 0 or CAP_EINVAL. */
int cap_log_parse_level(const char *name, enum cap_log_level *out);

void cap_log_write(enum cap_log_level level, const struct cap_log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define CAP_LOG(level, ctx, ...)                                                               \
    do {                                                                                       \
        if ((level) <= cap_log_threshold)                                                      \
            cap_log_write((level), (ctx), __VA_ARGS__);                                        \
    } while (0)

#define CAP_ERROR(ctx, ...) CAP_LOG(CAP_LOG_ERROR, ctx, __VA_ARGS__)
#define CAP_WARN(ctx, ...) CAP_LOG(CAP_LOG_WARN, ctx, __VA_ARGS__)
#define CAP_INFO(ctx, ...) CAP_LOG(CAP_LOG_INFO, ctx, __VA_ARGS__)
#define CAP_DEBUG(ctx, ...) CAP_LOG(CAP_LOG_DEBUG, ctx, __VA_ARGS__)

#endif
