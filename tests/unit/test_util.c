/* util: error table, bounded buffers, CRC32C vectors, NTP conversions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "capstan/error.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/crc32c.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void test_strerror_covers_every_code(void **state)
{
    (void)state;
    for (int e = CAP_EFIRST_ + 1; e < CAP_ELAST_; e++) {
        const char *text = cap_strerror(e);
        assert_non_null(text);
        assert_string_not_equal(text, "unknown error");
    }
    assert_string_equal(cap_strerror(0), "success");
    assert_string_equal(cap_strerror(CAP_ECHECKSUM), "checksum mismatch");
}

static void test_buf_grows_up_to_its_max_and_no_further(void **state)
{
    (void)state;
    struct cap_buf b;
    cap_buf_init(&b, 100);
    uint8_t chunk[30];
    memset(chunk, 7, sizeof(chunk));
    assert_int_equal(cap_buf_append(&b, chunk, 30), 0);
    assert_int_equal(cap_buf_append(&b, chunk, 30), 0);
    assert_int_equal(cap_buf_append(&b, chunk, 30), 0);
    assert_int_equal(cap_buf_append(&b, chunk, 30), CAP_ELIMIT);
    assert_int_equal(b.len, 90);
    assert_int_equal(cap_buf_append(&b, chunk, 10), 0);
    assert_int_equal(cap_buf_append_byte(&b, 1), CAP_ELIMIT);
    assert_true(b.cap <= 100);
    cap_buf_consume(&b, 95);
    assert_int_equal(b.len, 5);
    assert_int_equal(cap_buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_memory_equal(b.data + 5, "42-x", 4);
    cap_buf_deinit(&b);
}

static void test_buf_rejects_size_overflow(void **state)
{
    (void)state;
    struct cap_buf b;
    cap_buf_init(&b, SIZE_MAX);
    assert_int_equal(cap_buf_append(&b, "a", 1), 0);
    assert_int_equal(cap_buf_reserve(&b, SIZE_MAX), CAP_ELIMIT);
    cap_buf_deinit(&b);
}

static void test_crc32c_known_vectors(void **state)
{
    (void)state;
    /* RFC 3720 B.4 and the common check value. */
    assert_int_equal(cap_crc32c(0, "123456789", 9), 0xe3069283u);
    uint8_t zeros[32] = {0};
    assert_int_equal(cap_crc32c(0, zeros, 32), 0x8a9136aau);
    uint8_t ones[32];
    memset(ones, 0xff, 32);
    assert_int_equal(cap_crc32c(0, ones, 32), 0x62a8ab43u);
    uint8_t inc[32];
    for (int i = 0; i < 32; i++)
        inc[i] = (uint8_t)i;
    assert_int_equal(cap_crc32c(0, inc, 32), 0x46dd794eu);
}

static void test_crc32c_paths_agree_and_continue(void **state)
{
    (void)state;
    /* every length up to a few of the hardware path's 384-byte blocks, then steps */
    uint8_t data[4099];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 131 + 7 + (i >> 9));
    for (size_t off = 0; off < 9; off++) {
        for (size_t len = 0; len + off <= sizeof(data); len += len < 1300 ? 1 : 97) {
            uint32_t a = cap_crc32c(0, data + off, len);
            assert_int_equal(a, cap_crc32c_portable(0, data + off, len));
            size_t half = len / 2;
            uint32_t b = cap_crc32c(cap_crc32c(0, data + off, half), data + off + half, len - half);
            assert_int_equal(a, b);
        }
    }
}

static void test_ntp_round_trip(void **state)
{
    (void)state;
    int64_t t = INT64_C(1700000000123456789);
    uint64_t ntp = cap_clock_unix_ns_to_ntp(t);
    assert_int_equal(ntp >> 32, 1700000000u + 2208988800u);
    int64_t back = cap_clock_ntp_to_unix_ns(ntp);
    assert_true(back - t <= 1 && t - back <= 1);
    char text[40];
    cap_clock_format_iso8601(INT64_C(1705312800500000000), text, sizeof(text));
    assert_string_equal(text, "2024-01-15T10:00:00.500Z");
}

static int side_effects;

static const char *count_call(void)
{
    side_effects++;
    return "x";
}

/* Runs fn with stderr sent to a pipe and returns what it wrote (static buffer). */
static const char *capture_stderr(void (*fn)(void))
{
    static char out[4096];
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    ssize_t n = read(fds[0], out, sizeof(out) - 1);
    close(fds[0]);
    out[n > 0 ? n : 0] = '\0';
    return out;
}

static void log_below_threshold(void)
{
    cap_log_set_level(CAP_LOG_INFO);
    CAP_DEBUG(NULL, "never %s", count_call());
}

static void log_with_context(void)
{
    struct cap_log_ctx ctx = {.recording = "rec-1", .track = "peer\"1-video"};
    CAP_WARN(&ctx, "chunk %d torn\n%s", 7, count_call());
}

static void test_log_formats_nothing_below_its_level_and_escapes_json(void **state)
{
    (void)state;
    side_effects = 0;
    assert_string_equal(capture_stderr(log_below_threshold), "");
    assert_int_equal(side_effects, 0);
    const char *line = capture_stderr(log_with_context);
    assert_int_equal(side_effects, 1);
    assert_non_null(strstr(line, "\"level\":\"warn\""));
    assert_non_null(strstr(line, "\"recording_id\":\"rec-1\""));
    assert_non_null(strstr(line, "\"track_id\":\"peer\\\"1-video\""));
    assert_non_null(strstr(line, "\"msg\":\"chunk 7 torn\\u000ax\"}\n"));
    enum cap_log_level level;
    assert_int_equal(cap_log_parse_level("debug", &level), 0);
    assert_int_equal(level, CAP_LOG_DEBUG);
    assert_int_equal(cap_log_parse_level("loud", &level), CAP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_covers_every_code),
        cmocka_unit_test(test_buf_grows_up_to_its_max_and_no_further),
        cmocka_unit_test(test_buf_rejects_size_overflow),
        cmocka_unit_test(test_crc32c_known_vectors),
        cmocka_unit_test(test_crc32c_paths_agree_and_continue),
        cmocka_unit_test(test_ntp_round_trip),
        cmocka_unit_test(test_log_formats_nothing_below_its_level_and_escapes_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
