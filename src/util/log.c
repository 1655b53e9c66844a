/* JSON-lines logger behind CAP_LOG: one line per message, written with one write(2)
 * so lines from several threads never interleave. */
#include "util/log.h"

#include "capstan/error.h"
#include "util/clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum cap_log_level cap_log_threshold = CAP_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void cap_log_set_level(enum cap_log_level level)
{
    cap_log_threshold = level;
}

int cap_log_parse_level(const char *name, enum cap_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum cap_log_level)i;
            return 0;
        }
    }
    return CAP_EINVAL;
}

/* Appends s to line as JSON string content, escaping what JSON requires. */
static size_t append_escaped(char *line, size_t pos, size_t cap, const char *s)
{
    for (; *s && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            line[pos++] = '\\';
            line[pos++] = (char)c;
        } else if (c < 0x20) {
            pos += (size_t)snprintf(line + pos, cap - pos, "\\u%04x", c);
        } else {
            line[pos++] = (char)c;
        }
    }
    return pos;
}

static size_t append_raw(char *line, size_t pos, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (pos + n >= cap)
        n = cap - pos - 1;
    memcpy(line + pos, s, n);
    return pos + n;
}

static size_t append_field(char *line, size_t pos, size_t cap, const char *key, const char *value)
{
    if (!value)
        return pos;
    pos = append_raw(line, pos, cap, ",\"");
    pos = append_raw(line, pos, cap, key);
    pos = append_raw(line, pos, cap, "\":\"");
    pos = append_escaped(line, pos, cap, value);
    return append_raw(line, pos, cap, "\"");
}

void cap_log_write(enum cap_log_level level, const struct cap_log_ctx *ctx, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);

    char line[2048];
    size_t cap = sizeof(line) - 2;
    char ts[40];
    cap_clock_format_iso8601(cap_clock_wall_ns(), ts, sizeof(ts));
    size_t pos = (size_t)snprintf(line, cap, "{\"ts\":\"%s\",\"level\":\"%s\"", ts,
                                  level_names[level <= CAP_LOG_DEBUG ? level : CAP_LOG_DEBUG]);
    if (ctx) {
        pos = append_field(line, pos, cap, "recording_id", ctx->recording);
        pos = append_field(line, pos, cap, "track_id", ctx->track);
        pos = append_field(line, pos, cap, "job_id", ctx->job);
    }
    pos = append_field(line, pos, cap, "msg", message);
    line[pos++] = '}';
    line[pos++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, pos);
    (void)ignored;
}
