/* The VP8 depacketizer (RFC 7741) through the generic assembler: crafted RTP packets in,
 * frames out. Descriptor variants, frame boundaries, loss, malformed descriptors, and the key
 * frame header that gives the coded size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "capstan/error.h"
#include "codec/depay.h"
#include "rtp/rtp.h"

extern const struct cap_depay_ops cap_depay_vp8;

#define TS0 90000u
#define TICK 3000u

/* One track's depacketizer plus the sequence numbers it has been fed. */
struct harness {
    struct cap_depacketizer *d;
    uint16_t seq;
    uint64_t ext_seq;
};

static void harness_init(struct harness *h)
{
    struct cap_codec_params params = {.clock_rate = 90000, .fmtp = ""};
    memset(h, 0, sizeof(*h));
    assert_int_equal(cap_depacketizer_new(&h->d, &cap_depay_vp8, &params), 0);
    h->seq = 65530; /* wraps inside the tests */
}

/* Builds an RTP packet (12-byte header, descriptor, VP8 data), parses it and pushes it; lost
 * sequence numbers before it are skipped. Returns what push returned. */
static int push(struct harness *h, uint32_t ts, bool marker, const uint8_t *desc, size_t desc_len,
                const uint8_t *data, size_t data_len, unsigned lost_before)
{
    uint8_t wire[1500];
    assert_true(12 + desc_len + data_len <= sizeof(wire));
    h->seq = (uint16_t)(h->seq + lost_before);
    h->ext_seq += lost_before;
    wire[0] = 0x80;
    wire[1] = (uint8_t)((marker ? 0x80 : 0) | 96);
    wire[2] = (uint8_t)(h->seq >> 8);
    wire[3] = (uint8_t)h->seq;
    wire[4] = (uint8_t)(ts >> 24);
    wire[5] = (uint8_t)(ts >> 16);
    wire[6] = (uint8_t)(ts >> 8);
    wire[7] = (uint8_t)ts;
    memset(wire + 8, 0x11, 4); /* SSRC */
    if (desc_len)
        memcpy(wire + 12, desc, desc_len);
    if (data_len)
        memcpy(wire + 12 + desc_len, data, data_len);
    struct cap_rtp_packet pkt;
    assert_int_equal(cap_rtp_parse(wire, 12 + desc_len + data_len, &pkt), 0);
    int err =
        cap_depacketizer_push(h->d, &pkt, h->ext_seq, 1000 * (int64_t)h->ext_seq, lost_before);
    h->seq++;
    h->ext_seq++;
    return err;
}

/* The smallest descriptor: S=1, PID=0 starts a frame; S=0 continues one. */
static const uint8_t START[] = {0x10};
static const uint8_t MIDDLE[] = {0x00};

/* A key frame header (RFC 6386 §9.1): tag (key, version 0, shown, first partition size),
 * start code, 14-bit width and height with 2 scaling bits each, then some "partition" bytes. */
static size_t key_frame(uint8_t *out, size_t len, uint16_t width, uint16_t height, unsigned scale)
{
    assert_true(len >= 10);
    uint32_t first_part_size = (uint32_t)(len - 10);
    uint32_t tag =
        0u /* key */ | 0u << 1 /* version */ | 1u << 4 /* show_frame */ | first_part_size << 5;
    out[0] = (uint8_t)tag;
    out[1] = (uint8_t)(tag >> 8);
    out[2] = (uint8_t)(tag >> 16);
    out[3] = 0x9d;
    out[4] = 0x01;
    out[5] = 0x2a;
    out[6] = (uint8_t)width;
    out[7] = (uint8_t)((width >> 8) | scale << 6);
    out[8] = (uint8_t)height;
    out[9] = (uint8_t)((height >> 8) | scale << 6);
    for (size_t i = 10; i < len; i++)
        out[i] = (uint8_t)(i * 7);
    return len;
}

/* An inter frame: tag bit 0 set, the rest filler. */
static size_t inter_frame(uint8_t *out, size_t len, uint8_t fill)
{
    memset(out, fill, len);
    out[0] = (uint8_t)(fill | 0x01);
    return len;
}

static struct cap_frame pop_one(struct harness *h)
{
    struct cap_frame f;
    assert_int_equal(cap_depacketizer_pop(h->d, &f), 1);
    return f;
}

static void assert_no_frame(struct harness *h)
{
    struct cap_frame f;
    assert_int_equal(cap_depacketizer_pop(h->d, &f), 0);
}

static void test_vp8_registered_under_its_name(void **state)
{
    (void)state;
    assert_ptr_equal(cap_depay_find("vp8"), &cap_depay_vp8);
}

static void test_vp8_frame_split_across_three_packets(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    uint8_t frame[900];
    key_frame(frame, sizeof(frame), 640, 480, 0);
    assert_int_equal(push(&h, TS0, false, START, 1, frame, 300, 0), 0);
    assert_no_frame(&h);
    assert_int_equal(push(&h, TS0, false, MIDDLE, 1, frame + 300, 300, 0), 0);
    assert_no_frame(&h);
    assert_int_equal(push(&h, TS0, true, MIDDLE, 1, frame + 600, 300, 0), 0);
    struct cap_frame f = pop_one(&h);
    assert_int_equal(f.len, sizeof(frame));
    assert_memory_equal(f.data, frame, sizeof(frame));
    assert_true(f.complete);
    assert_true(f.keyframe);
    assert_int_equal(f.width, 640);
    assert_int_equal(f.height, 480);
    assert_int_equal(f.packets, 3);
    assert_int_equal(f.timestamp, TS0);
    assert_int_equal(f.last_seq - f.first_seq, 2);
    assert_no_frame(&h);
    cap_depacketizer_free(h.d);
}

/* Every descriptor shape a sender may use: the VP8 data after it comes out untouched. */
static void test_vp8_descriptor_fields_are_stripped(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint8_t desc[6];
        size_t len;
    } cases[] = {
        {"plain", {0x10}, 1},
        {"non-reference, reserved bits", {0x10 | 0x20 | 0x40 | 0x08}, 1},
        {"extension byte with nothing in it", {0x90, 0x00}, 2},
        {"picture id 7 bits", {0x90, 0x80, 0x55}, 3},
        {"picture id 15 bits", {0x90, 0x80, 0x80 | 0x12, 0x34}, 4},
        {"tl0picidx", {0x90, 0x40, 0x07}, 3},
        {"tid", {0x90, 0x20, 0x40}, 3},
        {"keyidx", {0x90, 0x10, 0x05}, 3},
        {"every field, 15-bit picture id", {0x90, 0xf0, 0xff, 0xff, 0x09, 0xe3}, 6},
        {"every field, 7-bit picture id", {0x90, 0xf0, 0x7f, 0x09, 0xe3}, 5},
    };
    struct harness h;
    harness_init(&h);
    uint32_t ts = TS0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++, ts += TICK) {
        uint8_t frame[40];
        inter_frame(frame, sizeof(frame), (uint8_t)(0x20 + 2 * i));
        print_message("case: %s\n", cases[i].name);
        assert_int_equal(push(&h, ts, true, cases[i].desc, cases[i].len, frame, sizeof(frame), 0),
                         0);
        struct cap_frame f = pop_one(&h);
        assert_int_equal(f.len, sizeof(frame));
        assert_memory_equal(f.data, frame, sizeof(frame));
        assert_true(f.complete);
        assert_false(f.keyframe);
        assert_int_equal(f.packets, 1);
    }
    assert_int_equal(cap_depacketizer_stats(h.d)->malformed_packets, 0);
    cap_depacketizer_free(h.d);
}

static void test_vp8_single_packet_frames_in_a_row(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    uint8_t key[60], inter[20];
    key_frame(key, sizeof(key), 320, 240, 0);
    assert_int_equal(push(&h, TS0, true, START, 1, key, sizeof(key), 0), 0);
    struct cap_frame f = pop_one(&h);
    assert_true(f.keyframe && f.complete);
    for (unsigned i = 1; i <= 5; i++) {
        inter_frame(inter, sizeof(inter), (uint8_t)i);
        assert_int_equal(push(&h, TS0 + i * TICK, true, START, 1, inter, sizeof(inter), 0), 0);
        f = pop_one(&h);
        assert_int_equal(f.timestamp, TS0 + i * TICK);
        assert_memory_equal(f.data, inter, sizeof(inter));
        assert_true(f.complete);
        assert_false(f.keyframe);
        assert_int_equal(f.width, 0);
        assert_false(f.after_loss);
    }
    assert_int_equal(cap_depacketizer_stats(h.d)->frames, 6);
    cap_depacketizer_free(h.d);
}

static void test_vp8_loss_inside_a_frame_makes_it_incomplete(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    uint8_t frame[300];
    key_frame(frame, sizeof(frame), 320, 240, 0);
    assert_int_equal(push(&h, TS0, false, START, 1, frame, 100, 0), 0);
    /* the packet carrying frame[100..200) is lost */
    assert_int_equal(push(&h, TS0, true, MIDDLE, 1, frame + 200, 100, 1), 0);
    struct cap_frame f = pop_one(&h);
    assert_false(f.complete);
    assert_int_equal(f.len, 200);
    /* The next frame is whole again. */
    uint8_t inter[10];
    inter_frame(inter, sizeof(inter), 4);
    assert_int_equal(push(&h, TS0 + TICK, true, START, 1, inter, sizeof(inter), 0), 0);
    f = pop_one(&h);
    assert_true(f.complete);
    assert_int_equal(cap_depacketizer_stats(h.d)->incomplete_frames, 1);
    cap_depacketizer_free(h.d);
}

static void test_vp8_missing_marker_ends_the_frame_at_the_next_timestamp(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    uint8_t frame[200], next[30];
    inter_frame(frame, sizeof(frame), 2);
    inter_frame(next, sizeof(next), 6);
    assert_int_equal(push(&h, TS0, false, START, 1, frame, 120, 0), 0);
    assert_int_equal(push(&h, TS0, false, MIDDLE, 1, frame + 120, 80, 0), 0); /* no marker */
    assert_no_frame(&h);
    assert_int_equal(push(&h, TS0 + TICK, true, START, 1, next, sizeof(next), 0), 0);
    struct cap_frame f = pop_one(&h);
    assert_int_equal(f.timestamp, TS0);
    assert_int_equal(f.len, sizeof(frame));
    assert_memory_equal(f.data, frame, sizeof(frame));
    assert_true(f.complete);
    f = pop_one(&h);
    assert_int_equal(f.timestamp, TS0 + TICK);
    assert_true(f.complete);
    cap_depacketizer_free(h.d);
}

static void test_vp8_inter_frame_before_any_keyframe_comes_out_as_is(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    uint8_t inter[50];
    inter_frame(inter, sizeof(inter), 0x40);
    assert_int_equal(push(&h, TS0, true, START, 1, inter, sizeof(inter), 0), 0);
    struct cap_frame f = pop_one(&h);
    assert_true(f.complete);
    assert_false(f.keyframe);
    assert_int_equal(f.width, 0);
    assert_int_equal(f.height, 0);
    cap_depacketizer_free(h.d);
}

/* A frame whose first packet is not its start: incomplete, and what leads it is not read as
 * a frame tag (these bytes would otherwise pass for a key frame header). */
static void test_vp8_frame_without_its_start_is_incomplete(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint8_t desc;
    } cases[] = {
        {"S=0", 0x00},
        {"S=1 but a later partition", 0x11},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case: %s\n", cases[i].name);
        struct harness h;
        harness_init(&h);
        uint8_t looks_like_key[40];
        key_frame(looks_like_key, sizeof(looks_like_key), 100, 100, 0);
        assert_int_equal(
            push(&h, TS0, true, &cases[i].desc, 1, looks_like_key, sizeof(looks_like_key), 3), 0);
        struct cap_frame f = pop_one(&h);
        assert_false(f.complete);
        assert_false(f.keyframe);
        assert_int_equal(f.width, 0);
        assert_true(f.after_loss);
        cap_depacketizer_free(h.d);
    }
}

/* Every announced field must fit: CAP_EFORMAT, the frame marked incomplete, no crash. */
static void test_vp8_malformed_descriptors_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint8_t payload[4];
        size_t len;
    } cases[] = {
        {"descriptor only", {0x00}, 1},
        {"X set, nothing after", {0x80}, 1},
        {"I set, picture id missing", {0x80, 0x80}, 2},
        {"M set, second picture id byte missing", {0x80, 0x80, 0x80}, 3},
        {"L set, tl0picidx missing", {0x80, 0x40}, 2},
        {"I and L set, tl0picidx missing", {0x80, 0xc0, 0x01}, 3},
        {"T set, tid byte missing", {0x80, 0x20}, 2},
        {"K set, keyidx byte missing", {0x80, 0x10}, 2},
        {"every field, the last missing", {0x80, 0xf0, 0x81, 0x02}, 4},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case: %s\n", cases[i].name);
        struct harness h;
        harness_init(&h);
        uint8_t head[100], tail[100];
        inter_frame(head, sizeof(head), 8);
        inter_frame(tail, sizeof(tail), 10);
        /* Alone it makes no frame at all. */
        assert_int_equal(push(&h, TS0, true, cases[i].payload, cases[i].len, NULL, 0, 0),
                         CAP_EFORMAT);
        assert_no_frame(&h);
        /* In the middle of a frame it damages that frame. */
        assert_int_equal(push(&h, TS0 + TICK, false, START, 1, head, sizeof(head), 0), 0);
        assert_int_equal(push(&h, TS0 + TICK, false, cases[i].payload, cases[i].len, NULL, 0, 0),
                         CAP_EFORMAT);
        assert_int_equal(push(&h, TS0 + TICK, true, MIDDLE, 1, tail, sizeof(tail), 0), 0);
        struct cap_frame f = pop_one(&h);
        assert_false(f.complete);
        assert_int_equal(f.len, sizeof(head) + sizeof(tail));
        assert_int_equal(cap_depacketizer_stats(h.d)->malformed_packets, 2);
        cap_depacketizer_free(h.d);
    }
}

static void test_vp8_keyframe_size_from_its_header(void **state)
{
    (void)state;
    static const struct {
        uint16_t width, height;
        unsigned scale;
    } cases[] = {
        {320, 240, 0}, {1920, 1080, 0}, {16383, 1, 3}, {1, 16383, 1}, {176, 144, 2},
    };
    struct harness h;
    harness_init(&h);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t key[10];
        key_frame(key, sizeof(key), cases[i].width, cases[i].height, cases[i].scale);
        assert_int_equal(push(&h, TS0 + (uint32_t)i * TICK, true, START, 1, key, sizeof(key), 0),
                         0);
        struct cap_frame f = pop_one(&h);
        assert_true(f.keyframe);
        assert_int_equal(f.width, cases[i].width);
        assert_int_equal(f.height, cases[i].height);
    }
    cap_depacketizer_free(h.d);
}

/* A key frame claim whose header does not hold is dropped; a tiny inter frame is fine. */
static void test_vp8_broken_keyframe_headers_are_dropped(void **state)
{
    (void)state;
    uint8_t good[10];
    key_frame(good, sizeof(good), 64, 48, 0);
    static const struct {
        const char *name;
        size_t len;
        size_t byte; /* changed to `value` */
        uint8_t value;
    } cases[] = {
        {"one byte", 1, 0, 0x00},          {"nine bytes", 9, 0, 0x00},
        {"start code wrong", 10, 3, 0x9c}, {"start code wrong at its end", 10, 5, 0x2b},
        {"width zero", 10, 7, 0xc0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case: %s\n", cases[i].name);
        struct harness h;
        harness_init(&h);
        uint8_t key[10];
        memcpy(key, good, sizeof(key));
        key[cases[i].byte] = cases[i].value;
        if (cases[i].byte == 7)
            key[6] = 0;
        assert_int_equal(push(&h, TS0, true, START, 1, key, cases[i].len, 0), 0);
        assert_no_frame(&h);
        uint8_t inter[1] = {0x01};
        assert_int_equal(push(&h, TS0 + TICK, true, START, 1, inter, 1, 0), 0);
        struct cap_frame f = pop_one(&h);
        assert_int_equal(f.len, 1);
        assert_false(f.keyframe);
        cap_depacketizer_free(h.d);
    }
}

/* finish() on nothing at all: nothing usable is left. */
static void test_vp8_empty_frame_is_malformed(void **state)
{
    (void)state;
    _Alignas(max_align_t) uint8_t priv[64] = {0};
    assert_true(cap_depay_vp8.priv_size <= sizeof(priv));
    struct cap_buf frame;
    cap_buf_init(&frame, CAP_FRAME_MAX);
    struct cap_frame out = {.complete = true};
    assert_int_equal(cap_depay_vp8.finish(priv, &frame, &out), CAP_EFORMAT);
    cap_buf_deinit(&frame);
}

/* Padding-only packets (bandwidth probes) between frames neither make frames nor damage
 * the next one. */
static void test_vp8_padding_only_packets_add_nothing(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    uint8_t inter[20];
    inter_frame(inter, sizeof(inter), 2);
    assert_int_equal(push(&h, TS0, true, START, 1, inter, sizeof(inter), 0), 0);
    pop_one(&h);
    assert_int_equal(push(&h, TS0, false, NULL, 0, NULL, 0, 0), 0);
    assert_int_equal(push(&h, TS0, false, NULL, 0, NULL, 0, 0), 0);
    assert_int_equal(push(&h, TS0 + TICK, false, START, 1, inter, 10, 0), 0);
    assert_int_equal(push(&h, TS0 + TICK, true, MIDDLE, 1, inter + 10, 10, 0), 0);
    struct cap_frame f = pop_one(&h);
    assert_int_equal(f.timestamp, TS0 + TICK);
    assert_true(f.complete);
    assert_memory_equal(f.data, inter, sizeof(inter));
    assert_no_frame(&h);
    assert_int_equal(cap_depacketizer_stats(h.d)->malformed_packets, 0);
    cap_depacketizer_free(h.d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vp8_registered_under_its_name),
        cmocka_unit_test(test_vp8_frame_split_across_three_packets),
        cmocka_unit_test(test_vp8_descriptor_fields_are_stripped),
        cmocka_unit_test(test_vp8_single_packet_frames_in_a_row),
        cmocka_unit_test(test_vp8_loss_inside_a_frame_makes_it_incomplete),
        cmocka_unit_test(test_vp8_missing_marker_ends_the_frame_at_the_next_timestamp),
        cmocka_unit_test(test_vp8_inter_frame_before_any_keyframe_comes_out_as_is),
        cmocka_unit_test(test_vp8_frame_without_its_start_is_incomplete),
        cmocka_unit_test(test_vp8_malformed_descriptors_are_refused),
        cmocka_unit_test(test_vp8_keyframe_size_from_its_header),
        cmocka_unit_test(test_vp8_broken_keyframe_headers_are_dropped),
        cmocka_unit_test(test_vp8_empty_frame_is_malformed),
        cmocka_unit_test(test_vp8_padding_only_packets_add_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
