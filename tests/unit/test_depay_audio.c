/* Audio depacketizers (codec/opus.c, g711.c, g722.c) through the generic assembler: one
 * packet is one frame, Opus framing is checked against RFC 6716 §3.2 (codes 0-3, DTX,
 * frame counts, durations, padding), G.711 and G.722 pass samples through untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "capstan/error.h"
#include "codec/depay.h"

#define BYTES(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

/* Opus TOC bytes: configuration << 3 | stereo << 2 | code. */
#define CELT_FB_20MS (31 << 3)  /* 20 ms frames */
#define CELT_NB_2_5MS (16 << 3) /* 2.5 ms frames */
#define SILK_NB_60MS (3 << 3)   /* 60 ms frames */

static struct cap_depacketizer *open_codec(const char *name)
{
    const struct cap_depay_ops *ops = cap_depay_find(name);
    if (!ops)
        fail_msg("no depacketizer registered for %s", name);
    assert_string_equal(ops->name, name);
    struct cap_depacketizer *d = NULL;
    const struct cap_codec_params params = {.clock_rate = 48000, .channels = 2, .fmtp = ""};
    assert_int_equal(cap_depacketizer_new(&d, ops, &params), 0);
    return d;
}

/* One packet; audio senders set the marker only at a talkspurt's start, so it is clear. */
static int push(struct cap_depacketizer *d, uint16_t seq, uint32_t ts, const uint8_t *payload,
                size_t len)
{
    struct cap_rtp_packet pkt = {
        .version = 2,
        .payload_type = 111,
        .sequence = seq,
        .timestamp = ts,
        .payload = payload,
        .payload_len = len,
    };
    return cap_depacketizer_push(d, &pkt, seq, 0, 0);
}

/* The packet comes straight back out as one complete key frame of the same bytes. */
/* after_refused: the packet before this one was refused, so its frame is missing */
static void expect_passes_through_after(struct cap_depacketizer *d, uint16_t seq, const uint8_t *payload,
                                        size_t len, const char *what, bool after_refused)
{
    if (push(d, seq, seq * 960u, payload, len) != 0)
        fail_msg("%s: refused", what);
    struct cap_frame f;
    if (cap_depacketizer_pop(d, &f) != 1)
        fail_msg("%s: no frame", what);
    if (f.len != len || memcmp(f.data, payload, len) != 0)
        fail_msg("%s: frame differs from the payload", what);
    if (!f.complete || !f.keyframe || f.after_loss != after_refused || f.packets != 1 || f.width || f.height)
        fail_msg("%s: complete %d keyframe %d after_loss %d packets %u size %ux%u", what,
                 f.complete, f.keyframe, f.after_loss, f.packets, f.width, f.height);
    if (cap_depacketizer_pop(d, &f) != 0)
        fail_msg("%s: more than one frame", what);
}

static void expect_passes_through(struct cap_depacketizer *d, uint16_t seq, const uint8_t *payload,
                                  size_t len, const char *what)
{
    expect_passes_through_after(d, seq, payload, len, what, false);
}

static void expect_refused(struct cap_depacketizer *d, uint16_t seq, const uint8_t *payload,
                           size_t len, const char *what)
{
    if (push(d, seq, seq * 960u, payload, len) != CAP_EFORMAT)
        fail_msg("%s: accepted", what);
    struct cap_frame f;
    if (cap_depacketizer_pop(d, &f) != 0)
        fail_msg("%s: a frame came out", what);
}

struct payload_case {
    const char *what;
    const uint8_t *data;
    size_t len;
};

static void test_opus_valid_packets_pass_through(void **state)
{
    (void)state;
    const struct payload_case cases[] = {
        {"code 0, one frame", BYTES(CELT_FB_20MS | 0, 1, 2, 3)},
        {"code 0 stereo", BYTES(CELT_FB_20MS | 4 | 0, 1, 2, 3)},
        {"DTX: TOC only", BYTES(CELT_FB_20MS | 0)},
        {"DTX: SILK TOC only", BYTES(SILK_NB_60MS | 0)},
        {"comfort packet of 2 bytes", BYTES(CELT_FB_20MS | 0, 0x55)},
        {"code 1, two equal frames", BYTES(CELT_FB_20MS | 1, 1, 2, 3, 4)},
        {"code 1, two empty frames", BYTES(CELT_FB_20MS | 1)},
        {"code 2, first frame 2 bytes", BYTES(CELT_FB_20MS | 2, 2, 'a', 'b', 'c')},
        {"code 2, both frames empty", BYTES(CELT_FB_20MS | 2, 0)},
        {"code 2, first frame is all", BYTES(CELT_FB_20MS | 2, 1, 'a')},
        {"code 3 CBR, 2 frames", BYTES(CELT_FB_20MS | 3, 0x02, 1, 2, 3, 4)},
        {"code 3 CBR, 1 empty frame", BYTES(CELT_FB_20MS | 3, 0x01)},
        {"code 3 VBR, 2 frames", BYTES(CELT_FB_20MS | 3, 0x82, 1, 'a', 'b', 'c')},
        {"code 3 VBR, 3 frames", BYTES(CELT_FB_20MS | 3, 0x83, 1, 0, 'a', 'b')},
        {"code 3 padded", BYTES(CELT_FB_20MS | 3, 0x41, 2, 'a', 0, 0)},
        {"code 3 padded VBR", BYTES(CELT_FB_20MS | 3, 0xc2, 1, 1, 'a', 'b', 0)},
        {"code 3 padding is all", BYTES(CELT_FB_20MS | 3, 0x41, 1, 0)},
        {"code 3, 2 x 60 ms = 120 ms", BYTES(SILK_NB_60MS | 3, 0x02)},
        {"code 3, 48 x 2.5 ms = 120 ms", BYTES(CELT_NB_2_5MS | 3, 48)},
        {"code 3, 6 x 20 ms = 120 ms", BYTES(CELT_FB_20MS | 3, 0x06)},
    };
    struct cap_depacketizer *d = open_codec("opus");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_passes_through(d, (uint16_t)i, cases[i].data, cases[i].len, cases[i].what);
    cap_depacketizer_free(d);
}

static void test_opus_malformed_packets_are_refused(void **state)
{
    (void)state;
    const struct payload_case cases[] = {
        {"code 1, odd length", BYTES(CELT_FB_20MS | 1, 1, 2, 3)},
        {"code 2, no length byte", BYTES(CELT_FB_20MS | 2)},
        {"code 2, first frame past end", BYTES(CELT_FB_20MS | 2, 5, 'a')},
        {"code 2, two-byte length cut", BYTES(CELT_FB_20MS | 2, 252)},
        {"code 3, no count byte", BYTES(CELT_FB_20MS | 3)},
        {"code 3, zero frames", BYTES(CELT_FB_20MS | 3, 0x00, 'a')},
        {"code 3, VBR zero frames", BYTES(CELT_FB_20MS | 3, 0x80)},
        {"code 3, 3 x 60 ms > 120 ms", BYTES(SILK_NB_60MS | 3, 0x03)},
        {"code 3, 49 x 2.5 ms > 120 ms", BYTES(CELT_NB_2_5MS | 3, 49)},
        {"code 3, 7 x 20 ms > 120 ms", BYTES(CELT_FB_20MS | 3, 0x07)},
        {"code 3, 63 frames", BYTES(CELT_FB_20MS | 3, 0x3f)},
        {"code 3 CBR, uneven split", BYTES(CELT_FB_20MS | 3, 0x02, 1, 2, 3)},
        {"code 3, padding length missing", BYTES(CELT_FB_20MS | 3, 0x41)},
        {"code 3, padding past end", BYTES(CELT_FB_20MS | 3, 0x41, 5, 'a')},
        {"code 3, padding chain cut", BYTES(CELT_FB_20MS | 3, 0x41, 255)},
        {"code 3, 254 padding bytes absent", BYTES(CELT_FB_20MS | 3, 0x41, 255, 0, 'a')},
        {"code 3 VBR, lengths past end", BYTES(CELT_FB_20MS | 3, 0x83, 5, 1, 'a')},
        {"code 3 VBR, length bytes missing", BYTES(CELT_FB_20MS | 3, 0x83, 1)},
        {"code 3 VBR, length into padding", BYTES(CELT_FB_20MS | 3, 0xc2, 2, 3, 'a', 0, 0)},
    };
    struct cap_depacketizer *d = open_codec("opus");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_refused(d, (uint16_t)i, cases[i].data, cases[i].len, cases[i].what);
    assert_int_equal(cap_depacketizer_stats(d)->malformed_packets,
                     sizeof(cases) / sizeof(cases[0]));
    cap_depacketizer_free(d);
}

static void test_opus_long_lengths_and_padding(void **state)
{
    (void)state;
    uint8_t p[2600];
    memset(p, 0xab, sizeof(p));
    struct cap_depacketizer *d = open_codec("opus");

    /* Code 2 with a two-byte first length: 252 + 4 * 2 = 260. */
    p[0] = CELT_FB_20MS | 2;
    p[1] = 252;
    p[2] = 2;
    expect_passes_through(d, 1, p, 3 + 260 + 10, "code 2, 260-byte first frame");
    expect_refused(d, 2, p, 3 + 259, "code 2, 260-byte first frame cut");

    /* Code 3 padding of 255 + 255 + 3: 254 + 254 + 3 = 511 bytes of padding. */
    p[0] = CELT_FB_20MS | 3;
    p[1] = 0x41;
    p[2] = 255;
    p[3] = 255;
    p[4] = 3;
    expect_passes_through_after(d, 3, p, 5 + 7 + 511, "code 3, 511 bytes of padding", true);
    expect_refused(d, 4, p, 5 + 510, "code 3, padding one byte short");

    /* Frames may not exceed 1275 bytes (RFC 6716 R2). */
    p[0] = CELT_FB_20MS | 0;
    expect_passes_through_after(d, 5, p, 1 + 1275, "code 0, 1275-byte frame", true);
    expect_refused(d, 6, p, 1 + 1276, "code 0, 1276-byte frame");
    p[0] = CELT_FB_20MS | 1;
    expect_refused(d, 7, p, 1 + 2 * 1276, "code 1, two 1276-byte frames");
    cap_depacketizer_free(d);
}

static void test_opus_every_packet_is_a_frame_and_dtx_gaps_are_not_loss(void **state)
{
    (void)state;
    struct cap_depacketizer *d = open_codec("opus");
    const uint32_t timestamps[] = {0, 960, 1920, 48000, 48960}; /* DTX between 1920 and 48000 */
    const uint8_t voice[] = {CELT_FB_20MS, 0x11, 0x22}, dtx[] = {CELT_FB_20MS};
    for (unsigned i = 0; i < 5; i++) {
        const uint8_t *p = i == 2 ? dtx : voice;
        size_t len = i == 2 ? sizeof(dtx) : sizeof(voice);
        assert_int_equal(push(d, (uint16_t)(i + 1), timestamps[i], p, len), 0);
        struct cap_frame f;
        assert_int_equal(cap_depacketizer_pop(d, &f), 1);
        assert_int_equal(f.timestamp, timestamps[i]);
        assert_int_equal(f.len, len);
        assert_true(f.complete);
        assert_false(f.after_loss);
        assert_int_equal(cap_depacketizer_pop(d, &f), 0);
    }
    assert_int_equal(cap_depacketizer_stats(d)->frames, 5);
    cap_depacketizer_free(d);
}

static void test_opus_malformed_packet_does_not_spoil_the_next(void **state)
{
    (void)state;
    struct cap_depacketizer *d = open_codec("opus");
    assert_int_equal(push(d, 1, 0, BYTES(CELT_FB_20MS | 1, 1)), CAP_EFORMAT);
    assert_int_equal(push(d, 2, 960, BYTES(CELT_FB_20MS, 7)), 0);
    struct cap_frame f;
    assert_int_equal(cap_depacketizer_pop(d, &f), 1);
    assert_int_equal(f.timestamp, 960);
    assert_true(f.complete);
    assert_int_equal(cap_depacketizer_pop(d, &f), 0);
    cap_depacketizer_free(d);
}

static void test_sample_codecs_pass_bytes_through_and_skip_empty_payloads(void **state)
{
    (void)state;
    static const char *const names[] = {"pcmu", "pcma", "g722"};
    uint8_t samples[160];
    for (size_t i = 0; i < sizeof(samples); i++)
        samples[i] = (uint8_t)(i * 7 + 0x55);
    static const uint8_t one[] = {0xff};
    for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
        struct cap_depacketizer *d = open_codec(names[n]);
        expect_passes_through(d, 1, samples, sizeof(samples), names[n]);
        expect_passes_through(d, 2, one, 1, names[n]);
        /* Padding only: the assembler skips it before the codec sees it. */
        assert_int_equal(push(d, 3, 3 * 960u, one, 0), 0);
        struct cap_frame none;
        assert_int_equal(cap_depacketizer_pop(d, &none), 0);
        expect_passes_through(d, 4, samples, 80, names[n]);
        const struct cap_depacketizer_stats *s = cap_depacketizer_stats(d);
        assert_int_equal(s->packets, 4);
        assert_int_equal(s->frames, 3);
        assert_int_equal(s->malformed_packets, 0);
        assert_int_equal(s->empty_packets, 1);
        cap_depacketizer_free(d);
    }
}

static void test_sample_codecs_report_loss_on_the_next_frame(void **state)
{
    (void)state;
    struct cap_depacketizer *d = open_codec("pcma");
    const uint8_t a[] = {1, 2, 3, 4};
    struct cap_rtp_packet pkt = {
        .version = 2, .sequence = 10, .timestamp = 160, .payload = a, .payload_len = sizeof(a)};
    assert_int_equal(cap_depacketizer_push(d, &pkt, 10, 0, 0), 0);
    pkt.sequence = 12;
    pkt.timestamp = 480;
    assert_int_equal(cap_depacketizer_push(d, &pkt, 12, 0, 1), 0);
    struct cap_frame f;
    assert_int_equal(cap_depacketizer_pop(d, &f), 1);
    assert_false(f.after_loss);
    assert_int_equal(cap_depacketizer_pop(d, &f), 1);
    assert_true(f.after_loss);
    assert_true(f.complete);
    cap_depacketizer_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opus_valid_packets_pass_through),
        cmocka_unit_test(test_opus_malformed_packets_are_refused),
        cmocka_unit_test(test_opus_long_lengths_and_padding),
        cmocka_unit_test(test_opus_every_packet_is_a_frame_and_dtx_gaps_are_not_loss),
        cmocka_unit_test(test_opus_malformed_packet_does_not_spoil_the_next),
        cmocka_unit_test(test_sample_codecs_pass_bytes_through_and_skip_empty_payloads),
        cmocka_unit_test(test_sample_codecs_report_loss_on_the_next_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
