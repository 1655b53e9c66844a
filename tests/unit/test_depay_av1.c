/* AV1 depacketizer (codec/av1.c) through the generic assembler: the aggregation header's
 * element forms (W = 0..3), OBUs fragmented over packets (Z/Y), loss and broken chains,
 * LEB128 limits, temporal delimiters, the exact low overhead bitstream written, and key
 * frames told from a real libaom sequence header and frame headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "capstan/error.h"
#include "codec/depay.h"

#define BYTES(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

/* Aggregation header bits. */
#define Z 0x80
#define Y 0x40
#define W(n) ((n) << 4)
#define N 0x08

/* OBU headers without and with obu_has_size_field. */
#define SEQ 0x08   /* sequence header */
#define TD 0x10    /* temporal delimiter */
#define META 0x28  /* metadata */
#define FRAME 0x30 /* frame */
#define TILE_LIST 0x40
#define SIZED 0x02
#define EXT 0x04 /* an extension byte follows */

static int setup(void **state)
{
    const struct cap_depay_ops *ops = cap_depay_find("av1");
    if (!ops)
        return -1;
    struct cap_depacketizer *d = NULL;
    const struct cap_codec_params params = {.clock_rate = 90000, .fmtp = ""};
    if (cap_depacketizer_new(&d, ops, &params) != 0)
        return -1;
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    cap_depacketizer_free(*state);
    return 0;
}

static int push(struct cap_depacketizer *d, uint16_t seq, uint32_t ts, bool marker,
                const uint8_t *payload, size_t len, uint64_t lost_before)
{
    struct cap_rtp_packet pkt = {
        .version = 2,
        .marker = marker,
        .payload_type = 45,
        .sequence = seq,
        .timestamp = ts,
        .payload = payload,
        .payload_len = len,
    };
    return cap_depacketizer_push(d, &pkt, seq, 0, lost_before);
}

static struct cap_frame pop(struct cap_depacketizer *d)
{
    struct cap_frame f;
    memset(&f, 0, sizeof(f));
    assert_int_equal(cap_depacketizer_pop(d, &f), 1);
    return f;
}

static void expect_no_frame(struct cap_depacketizer *d)
{
    struct cap_frame f;
    assert_int_equal(cap_depacketizer_pop(d, &f), 0);
}

static void expect_bytes(const char *what, const struct cap_frame *f, const uint8_t *want,
                         size_t want_len)
{
    if (f->len == want_len && memcmp(f->data, want, want_len) == 0)
        return;
    char got[256] = "", expected[256] = "";
    for (size_t i = 0; i < f->len && i < 60; i++)
        snprintf(got + 3 * i, 4, "%02x ", f->data[i]);
    for (size_t i = 0; i < want_len && i < 60; i++)
        snprintf(expected + 3 * i, 4, "%02x ", want[i]);
    fail_msg("%s:\n  got      %s(%zu bytes)\n  expected %s(%zu bytes)", what, got, f->len, expected,
             want_len);
}

#define EXPECT_BYTES(f, ...) expect_bytes(#f, &(f), BYTES(__VA_ARGS__))

/* ---- element forms ---- */

struct one_packet_case {
    const char *what;
    const uint8_t *payload;
    size_t payload_len;
    const uint8_t *out;
    size_t out_len;
};

static void test_av1_element_forms_and_rewritten_obus(void **state)
{
    struct cap_depacketizer *d = *state;
    uint8_t big[1 + 1 + 200];         /* W=1, one OBU with 200 bytes of payload */
    uint8_t big_out[2 + 1 + 2 + 200]; /* its size, 200, takes two LEB128 bytes */
    big[0] = W(1);
    big[1] = FRAME;
    memset(big + 2, 0x5a, sizeof(big) - 2);
    memcpy(big_out, (const uint8_t[]){0x12, 0x00, FRAME | SIZED, 0xc8, 0x01}, 5);
    memset(big_out + 5, 0x5a, 200);
    const struct one_packet_case cases[] = {
        {"W=0: one element, length first", BYTES(W(0), 3, FRAME, 'a', 'b'),
         BYTES(0x12, 0x00, FRAME | SIZED, 2, 'a', 'b')},
        {"W=0: three elements, all with lengths",
         BYTES(W(0), 2, META, 'm', 1, FRAME, 3, FRAME, 'x', 'y'),
         BYTES(0x12, 0x00, META | SIZED, 1, 'm', FRAME | SIZED, 0, FRAME | SIZED, 2, 'x', 'y')},
        {"W=1: the one element has no length", BYTES(W(1), FRAME, 'a', 'b', 'c'),
         BYTES(0x12, 0x00, FRAME | SIZED, 3, 'a', 'b', 'c')},
        {"W=2: first with length, last without", BYTES(W(2), 2, META, 'm', FRAME, 'a'),
         BYTES(0x12, 0x00, META | SIZED, 1, 'm', FRAME | SIZED, 1, 'a')},
        {"W=3: two with lengths, last without",
         BYTES(W(3), 2, META, 'm', 1, FRAME, FRAME, 'a', 'b'),
         BYTES(0x12, 0x00, META | SIZED, 1, 'm', FRAME | SIZED, 0, FRAME | SIZED, 2, 'a', 'b')},
        {"N set: read the same way", BYTES(W(1) | N, FRAME, 'k'),
         BYTES(0x12, 0x00, FRAME | SIZED, 1, 'k')},
        {"extension byte kept after the header", BYTES(W(1), FRAME | EXT, 0x28, 'a'),
         BYTES(0x12, 0x00, FRAME | EXT | SIZED, 0x28, 1, 'a')},
        {"OBU already sized is kept as is", BYTES(W(1), FRAME | SIZED, 2, 'a', 'b'),
         BYTES(0x12, 0x00, FRAME | SIZED, 2, 'a', 'b')},
        {"sized OBU's padded LEB128 is rewritten short",
         BYTES(W(1), FRAME | EXT | SIZED, 0x08, 0x82, 0x00, 'a', 'b'),
         BYTES(0x12, 0x00, FRAME | EXT | SIZED, 0x08, 2, 'a', 'b')},
        {"element length as a padded LEB128", BYTES(W(0), 0x82, 0x80, 0x00, FRAME, 'a'),
         BYTES(0x12, 0x00, FRAME | SIZED, 1, 'a')},
        {"temporal delimiters in the payload are dropped",
         BYTES(W(3), 1, TD, 2, TD | SIZED, 0, FRAME, 'a'),
         BYTES(0x12, 0x00, FRAME | SIZED, 1, 'a')},
        {"tile list OBUs are dropped", BYTES(W(2), 2, TILE_LIST, 't', FRAME, 'a'),
         BYTES(0x12, 0x00, FRAME | SIZED, 1, 'a')},
        {"a 200-byte OBU gets a two-byte size", big, sizeof(big), big_out, sizeof(big_out)},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (push(d, (uint16_t)i, (uint32_t)i * 3000, true, cases[i].payload, cases[i].payload_len,
                 0) != 0)
            fail_msg("%s: refused", cases[i].what);
        struct cap_frame f = pop(d);
        expect_bytes(cases[i].what, &f, cases[i].out, cases[i].out_len);
        if (!f.complete)
            fail_msg("%s: incomplete", cases[i].what);
        expect_no_frame(d);
    }
}

static void test_av1_malformed_payloads_are_refused(void **state)
{
    struct cap_depacketizer *d = *state;
    const struct one_packet_case cases[] = {
        {"aggregation header alone", BYTES(W(0)), NULL, 0},
        {"LEB128 of 9 bytes",
         BYTES(W(0), 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, FRAME), NULL, 0},
        {"LEB128 over 2^32 - 1", BYTES(W(0), 0xff, 0xff, 0xff, 0xff, 0x1f, FRAME), NULL, 0},
        {"LEB128 cut by the packet's end", BYTES(W(0), 0x80), NULL, 0},
        {"element longer than the packet", BYTES(W(0), 5, FRAME, 'a'), NULL, 0},
        {"second element longer than the packet", BYTES(W(0), 2, FRAME, 'a', 3, FRAME, 'b'), NULL,
         0},
        {"W=2 length past the end", BYTES(W(2), 9, FRAME, 'a'), NULL, 0},
        {"W=3 but only two elements", BYTES(W(3), 2, FRAME, 'a', 2, FRAME, 'b'), NULL, 0},
        {"W=2 but one element", BYTES(W(2), 2, FRAME, 'a'), NULL, 0},
        {"zero-length element", BYTES(W(0), 0, 2, FRAME, 'a'), NULL, 0},
        {"forbidden bit set", BYTES(W(1), 0x80 | FRAME, 'a'), NULL, 0},
        {"extension flag without its byte", BYTES(W(1), FRAME | EXT), NULL, 0},
        {"obu_size larger than the element", BYTES(W(1), FRAME | SIZED, 3, 'a', 'b'), NULL, 0},
        {"obu_size smaller than the element", BYTES(W(1), FRAME | SIZED, 1, 'a', 'b'), NULL, 0},
        {"obu_size field cut", BYTES(W(1), FRAME | SIZED, 0x80), NULL, 0},
        {"Y on the packet that ends the temporal unit", BYTES(W(1) | Y, FRAME, 'a'), NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* Each case its own temporal unit, after a one-packet gap so no chain links them. */
        uint16_t seq = (uint16_t)(i * 2);
        if (push(d, seq, (uint32_t)i * 3000, true, cases[i].payload, cases[i].payload_len, 1) !=
            CAP_EFORMAT)
            fail_msg("%s: accepted", cases[i].what);
    }
    cap_depacketizer_flush(d);
    struct cap_frame f;
    while (cap_depacketizer_pop(d, &f) == 1)
        if (f.complete)
            fail_msg("a malformed temporal unit came out complete");
    assert_int_equal(cap_depacketizer_stats(d)->malformed_packets,
                     sizeof(cases) / sizeof(cases[0]));
}

/* ---- fragmentation ---- */

static void test_av1_obu_fragmented_over_three_packets(void **state)
{
    struct cap_depacketizer *d = *state;
    assert_int_equal(push(d, 1, 9000, false, BYTES(W(1) | Y | N, FRAME, 'a', 'b'), 0), 0);
    assert_int_equal(push(d, 2, 9000, false, BYTES(Z | Y | W(1), 'c', 'd'), 0), 0);
    expect_no_frame(d);
    assert_int_equal(push(d, 3, 9000, true, BYTES(Z | W(1), 'e'), 0), 0);
    struct cap_frame f = pop(d);
    EXPECT_BYTES(f, 0x12, 0x00, FRAME | SIZED, 5, 'a', 'b', 'c', 'd', 'e');
    assert_true(f.complete);
    assert_int_equal(f.packets, 3);
    assert_int_equal(f.timestamp, 9000);
}

static void test_av1_fragments_with_w0_lengths(void **state)
{
    /* W=0 writes a length even before the fragment that continues. */
    struct cap_depacketizer *d = *state;
    assert_int_equal(push(d, 1, 0, false, BYTES(Y | W(0), 3, FRAME, 'a', 'b'), 0), 0);
    assert_int_equal(push(d, 2, 0, true, BYTES(Z | W(0), 1, 'c'), 0), 0);
    struct cap_frame f = pop(d);
    EXPECT_BYTES(f, 0x12, 0x00, FRAME | SIZED, 3, 'a', 'b', 'c');
}

static void test_av1_aggregation_around_a_fragmented_obu(void **state)
{
    struct cap_depacketizer *d = *state;
    /* Packet 1: a whole metadata OBU, then the start of a frame OBU.
     * Packet 2: the frame OBU's end, then a whole second frame OBU. */
    assert_int_equal(push(d, 7, 0, false, BYTES(Y | W(2), 2, META, 'm', FRAME, 'a', 'b'), 0), 0);
    assert_int_equal(push(d, 8, 0, true, BYTES(Z | W(2), 1, 'c', FRAME, 'x'), 0), 0);
    struct cap_frame f = pop(d);
    EXPECT_BYTES(f, 0x12, 0x00, META | SIZED, 1, 'm', FRAME | SIZED, 3, 'a', 'b', 'c',
                 FRAME | SIZED, 1, 'x');
    assert_true(f.complete);
}

static void test_av1_loss_inside_a_fragmented_obu_makes_the_unit_incomplete(void **state)
{
    struct cap_depacketizer *d = *state;
    assert_int_equal(push(d, 1, 0, false, BYTES(Y | W(2), 2, META, 'm', FRAME, 'a', 'b'), 0), 0);
    /* seq 2, the OBU's middle, is lost */
    assert_int_equal(push(d, 3, 0, true, BYTES(Z | W(2), 1, 'e', FRAME, 'x'), 1), 0);
    struct cap_frame f = pop(d);
    /* The broken OBU is left out rather than spliced from the wrong pieces. */
    EXPECT_BYTES(f, 0x12, 0x00, META | SIZED, 1, 'm', FRAME | SIZED, 1, 'x');
    assert_false(f.complete);
    assert_int_equal(cap_depacketizer_stats(d)->malformed_packets, 0);
    /* The next unit is fine and says loss came before it. */
    assert_int_equal(push(d, 4, 3000, true, BYTES(W(1), FRAME, 'n'), 0), 0);
    f = pop(d);
    EXPECT_BYTES(f, 0x12, 0x00, FRAME | SIZED, 1, 'n');
    assert_true(f.complete);
    assert_true(f.after_loss);
}

static void test_av1_continuation_on_the_first_packet_seen_is_incomplete(void **state)
{
    /* Joining mid-stream: the fragment's start was never ours. */
    struct cap_depacketizer *d = *state;
    assert_int_equal(push(d, 500, 0, true, BYTES(Z | W(2), 2, 'q', 'r', FRAME, 'x'), 0), 0);
    struct cap_frame f = pop(d);
    EXPECT_BYTES(f, 0x12, 0x00, FRAME | SIZED, 1, 'x');
    assert_false(f.complete);
}

static void test_av1_continuation_of_nothing_is_malformed(void **state)
{
    /* In sequence, but the previous packet did not set Y. */
    struct cap_depacketizer *d = *state;
    assert_int_equal(push(d, 1, 0, false, BYTES(W(1), FRAME, 'a'), 0), 0);
    assert_int_equal(push(d, 2, 0, true, BYTES(Z | W(2), 1, 'b', FRAME, 'c'), 0), CAP_EFORMAT);
    push(d, 3, 3000, true, BYTES(W(1), FRAME, 'd'), 0);
    struct cap_frame f = pop(d);
    assert_false(f.complete);
    f = pop(d);
    assert_true(f.complete);
    EXPECT_BYTES(f, 0x12, 0x00, FRAME | SIZED, 1, 'd');
}

static void test_av1_y_without_a_following_z_is_malformed(void **state)
{
    struct cap_depacketizer *d = *state;
    assert_int_equal(push(d, 1, 0, false, BYTES(Y | W(1), FRAME, 'a'), 0), 0);
    assert_int_equal(push(d, 2, 0, false, BYTES(W(1), FRAME, 'b'), 0), CAP_EFORMAT);
    assert_int_equal(push(d, 3, 0, true, BYTES(W(1), FRAME, 'c'), 0), 0);
    struct cap_frame f = pop(d);
    assert_false(f.complete);
    EXPECT_BYTES(f, 0x12, 0x00, FRAME | SIZED, 1, 'c'); /* the dangling start is dropped */
}

static void test_av1_unit_ending_inside_an_obu_is_incomplete(void **state)
{
    /* No marker and no loss: the next timestamp ends the unit, with an OBU still open. */
    struct cap_depacketizer *d = *state;
    push(d, 1, 0, false, BYTES(Y | W(2), 2, META, 'm', FRAME, 'a'), 0);
    push(d, 2, 3000, true, BYTES(Z | W(2), 1, 'b', FRAME, 'c'), 0);
    struct cap_frame f = pop(d);
    EXPECT_BYTES(f, 0x12, 0x00, META | SIZED, 1, 'm');
    assert_false(f.complete);
    /* The continuation cannot reach back into the previous unit; this one lacks its start. */
    f = pop(d);
    EXPECT_BYTES(f, 0x12, 0x00, FRAME | SIZED, 1, 'c');
    assert_false(f.complete);
    expect_no_frame(d);
}

static void test_av1_flush_with_an_open_fragment_is_incomplete(void **state)
{
    struct cap_depacketizer *d = *state;
    push(d, 1, 0, false, BYTES(Y | W(2), 2, META, 'm', FRAME, 'a'), 0);
    cap_depacketizer_flush(d);
    struct cap_frame f = pop(d);
    EXPECT_BYTES(f, 0x12, 0x00, META | SIZED, 1, 'm');
    assert_false(f.complete);
}

static void test_av1_one_temporal_delimiter_per_unit_over_many_packets(void **state)
{
    struct cap_depacketizer *d = *state;
    push(d, 1, 0, false, BYTES(W(2), 1, TD, FRAME, 'a'), 0);
    push(d, 2, 0, false, BYTES(W(2), 1, TD, FRAME, 'b'), 0);
    push(d, 3, 0, true, BYTES(W(1), TD | SIZED, 0), 0);
    struct cap_frame f = pop(d);
    EXPECT_BYTES(f, 0x12, 0x00, FRAME | SIZED, 1, 'a', FRAME | SIZED, 1, 'b');
    assert_true(f.complete);
    /* A unit that holds nothing but a temporal delimiter is no frame at all. */
    push(d, 4, 3000, true, BYTES(W(1), TD), 0);
    expect_no_frame(d);
}

/* ---- key frames and sizes ---- */

/* From libaom (ffmpeg -f lavfi -i testsrc2=size=320x240 -c:v libaom-av1 -cpu-used 8):
 * the sequence header's payload, and the first bytes of the first (key) and second (inter)
 * frame OBUs' payloads. The frames are cut short; only their headers' first bits matter. */
static const uint8_t libaom_sequence_header[] = {0x00, 0x00, 0x00, 0x04, 0x3c, 0xff,
                                                 0xbc, 0xda, 0xf9, 0x00, 0x40};
static const uint8_t libaom_key_frame_start[] = {0x14, 0x00, 0xa0, 0xb0, 0x10, 0xdb, 0x6f, 0x2c};
static const uint8_t libaom_inter_frame_start[] = {0x32, 0x01, 0xe0, 0x40, 0x00, 0x00, 0x03, 0x48};

/* A W=2 packet: a sequence header (if given) and one frame OBU. */
static size_t build_unit(uint8_t *out, const uint8_t *sequence_header, size_t sh_len,
                         const uint8_t *frame, size_t frame_len)
{
    size_t n = 0;
    out[n++] = sequence_header ? W(2) : W(1);
    if (sequence_header) {
        out[n++] = (uint8_t)(1 + sh_len);
        out[n++] = SEQ;
        memcpy(out + n, sequence_header, sh_len);
        n += sh_len;
    }
    out[n++] = FRAME;
    memcpy(out + n, frame, frame_len);
    return n + frame_len;
}

static struct cap_frame push_unit(struct cap_depacketizer *d, uint16_t seq,
                                  const uint8_t *sequence_header, size_t sh_len,
                                  const uint8_t *frame, size_t frame_len)
{
    uint8_t packet[256];
    size_t len = build_unit(packet, sequence_header, sh_len, frame, frame_len);
    assert_int_equal(push(d, seq, seq * 3000u, true, packet, len, 0), 0);
    return pop(d);
}

static void test_av1_libaom_key_frame_with_sequence_header(void **state)
{
    struct cap_depacketizer *d = *state;
    struct cap_frame f = push_unit(d, 1, libaom_sequence_header, sizeof(libaom_sequence_header),
                                   libaom_key_frame_start, sizeof(libaom_key_frame_start));
    assert_true(f.keyframe);
    assert_int_equal(f.width, 320);
    assert_int_equal(f.height, 240);
    /* Exactly: TD, sized sequence header, sized frame. */
    assert_int_equal(f.len, 2 + 2 + 11 + 2 + 8);
    assert_memory_equal(f.data, ((const uint8_t[]){0x12, 0x00, SEQ | SIZED, 11}), 4);
    assert_memory_equal(f.data + 4, libaom_sequence_header, 11);
    assert_memory_equal(f.data + 15, ((const uint8_t[]){FRAME | SIZED, 8}), 2);

    f = push_unit(d, 2, NULL, 0, libaom_inter_frame_start, sizeof(libaom_inter_frame_start));
    assert_false(f.keyframe);
    assert_int_equal(f.width, 0);
    assert_int_equal(f.height, 0);
}

static void test_av1_key_frame_needs_its_sequence_header(void **state)
{
    struct cap_depacketizer *d = *state;
    struct cap_frame f =
        push_unit(d, 1, NULL, 0, libaom_key_frame_start, sizeof(libaom_key_frame_start));
    assert_false(f.keyframe);
    f = push_unit(d, 2, libaom_sequence_header, sizeof(libaom_sequence_header),
                  libaom_inter_frame_start, sizeof(libaom_inter_frame_start));
    assert_false(f.keyframe);
    assert_int_equal(f.width, 320); /* the size is known from the sequence header anyway */
}

static void test_av1_frame_types_other_than_key_are_not_key_frames(void **state)
{
    struct cap_depacketizer *d = *state;
    const struct {
        const char *what;
        uint8_t first_byte; /* show_existing_frame, frame_type(2), show_frame, ... */
        bool key;
    } cases[] = {
        {"KEY_FRAME", 0x10, true},
        {"INTER_FRAME", 0x30, false},
        {"INTRA_ONLY_FRAME", 0x50, false},
        {"SWITCH_FRAME", 0x70, false},
        {"show_existing_frame", 0x80, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cap_frame f = push_unit(d, (uint16_t)i, libaom_sequence_header,
                                       sizeof(libaom_sequence_header), &cases[i].first_byte, 1);
        if (f.keyframe != cases[i].key)
            fail_msg("%s: keyframe %d", cases[i].what, f.keyframe);
    }
}

static void test_av1_frame_header_obu_counts_like_a_frame_obu(void **state)
{
    struct cap_depacketizer *d = *state;
    uint8_t packet[64];
    size_t n = 0;
    packet[n++] = W(3);
    packet[n++] = 12;
    packet[n++] = SEQ;
    memcpy(packet + n, libaom_sequence_header, 11);
    n += 11;
    packet[n++] = 2;
    packet[n++] = 0x18; /* OBU_FRAME_HEADER */
    packet[n++] = 0x10; /* KEY_FRAME */
    packet[n++] = 0x20; /* OBU_TILE_GROUP */
    packet[n++] = 0xee;
    assert_int_equal(push(d, 1, 0, true, packet, n, 0), 0);
    assert_true(pop(d).keyframe);
}

/* Writes bits MSB first, as the AV1 spec reads them. */
struct bit_writer {
    uint8_t data[64];
    size_t pos;
};

static void put(struct bit_writer *w, unsigned bits, uint32_t value)
{
    for (unsigned i = bits; i-- > 0;) {
        if ((value >> i) & 1)
            w->data[w->pos / 8] |= (uint8_t)(0x80 >> (w->pos % 8));
        w->pos++;
    }
}

static void test_av1_libaom_sequence_header_with_decoder_model(void **state)
{
    /* libaom with -aom-params timing-info=model at 800x448: timing info, decoder model info
     * and a decoder model for its operating point, all before the frame size. */
    static const uint8_t sequence_header[] = {
        0x04, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x79, 0x78, 0x00, 0x00, 0x00, 0x0a, 0x53,
        0x00, 0x00, 0x13, 0x5f, 0x91, 0x5f, 0x90, 0xbc, 0xc6, 0x3f, 0xbf, 0x36, 0xbe, 0x40, 0x10,
    };
    struct cap_depacketizer *d = *state;
    const uint8_t key = 0x10;
    struct cap_frame f = push_unit(d, 1, sequence_header, sizeof(sequence_header), &key, 1);
    assert_true(f.keyframe);
    assert_int_equal(f.width, 800);
    assert_int_equal(f.height, 448);
}

static void test_av1_sequence_header_with_timing_and_two_operating_points(void **state)
{
    /* Hand-built from AV1 §5.5: every optional part before the frame size present. */
    struct cap_depacketizer *d = *state;
    struct bit_writer w = {{0}, 0};
    put(&w, 3, 0);      /* seq_profile */
    put(&w, 1, 0);      /* still_picture */
    put(&w, 1, 0);      /* reduced_still_picture_header */
    put(&w, 1, 1);      /* timing_info_present_flag */
    put(&w, 32, 1001);  /* num_units_in_display_tick */
    put(&w, 32, 60000); /* time_scale */
    put(&w, 1, 1);      /* equal_picture_interval */
    put(&w, 5, 0x06);   /* num_ticks_per_picture_minus_1 = 5 as uvlc: 00 1 10 */
    put(&w, 1, 1);      /* decoder_model_info_present_flag */
    put(&w, 5, 9);      /* buffer_delay_length_minus_1: 10-bit delays */
    put(&w, 32, 1001);  /* num_units_in_decoding_tick */
    put(&w, 5, 31);     /* buffer_removal_time_length_minus_1 */
    put(&w, 5, 31);     /* frame_presentation_time_length_minus_1 */
    put(&w, 1, 1);      /* initial_display_delay_present_flag */
    put(&w, 5, 1);      /* operating_points_cnt_minus_1: two points */
    put(&w, 12, 0x103); /* [0] operating_point_idc */
    put(&w, 5, 9);      /* [0] seq_level_idx (> 7: a tier bit follows) */
    put(&w, 1, 1);      /* [0] seq_tier */
    put(&w, 1, 1);      /* [0] decoder_model_present_for_this_op */
    put(&w, 10, 0x3ff); /* [0] decoder_buffer_delay */
    put(&w, 10, 0x155); /* [0] encoder_buffer_delay */
    put(&w, 1, 1);      /* [0] low_delay_mode_flag */
    put(&w, 1, 1);      /* [0] initial_display_delay_present_for_this_op */
    put(&w, 4, 9);      /* [0] initial_display_delay_minus_1 */
    put(&w, 12, 0x101); /* [1] operating_point_idc */
    put(&w, 5, 4);      /* [1] seq_level_idx */
    put(&w, 1, 0);      /* [1] decoder_model_present_for_this_op */
    put(&w, 1, 0);      /* [1] initial_display_delay_present_for_this_op */
    put(&w, 4, 10);     /* frame_width_bits_minus_1 */
    put(&w, 4, 10);     /* frame_height_bits_minus_1 */
    put(&w, 11, 1919);  /* max_frame_width_minus_1 */
    put(&w, 11, 1079);  /* max_frame_height_minus_1 */
    put(&w, 8, 0);      /* the rest of the header is not read */
    size_t len = (w.pos + 7) / 8;
    const uint8_t key = 0x10;
    struct cap_frame f = push_unit(d, 1, w.data, len, &key, 1);
    assert_true(f.keyframe);
    assert_int_equal(f.width, 1920);
    assert_int_equal(f.height, 1080);

    /* Cut one byte before the frame size ends: the size is unknown, and so is the key. */
    f = push_unit(d, 2, w.data, len - 2, &key, 1);
    assert_false(f.keyframe);
    assert_int_equal(f.width, 0);
}

static void test_av1_reduced_still_picture_header_means_key_frame(void **state)
{
    struct cap_depacketizer *d = *state;
    struct bit_writer w = {{0}, 0};
    put(&w, 3, 0);  /* seq_profile */
    put(&w, 1, 1);  /* still_picture */
    put(&w, 1, 1);  /* reduced_still_picture_header */
    put(&w, 5, 0);  /* seq_level_idx[0] */
    put(&w, 4, 5);  /* frame_width_bits_minus_1 */
    put(&w, 4, 5);  /* frame_height_bits_minus_1 */
    put(&w, 6, 63); /* max_frame_width_minus_1 */
    put(&w, 6, 47); /* max_frame_height_minus_1 */
    put(&w, 8, 0);
    /* With the reduced header the frame header has no show_existing_frame or frame_type:
     * 0xe0 would read as show_existing_frame otherwise. */
    const uint8_t frame = 0xe0;
    struct cap_frame f = push_unit(d, 1, w.data, (w.pos + 7) / 8, &frame, 1);
    assert_true(f.keyframe);
    assert_int_equal(f.width, 64);
    assert_int_equal(f.height, 48);
}

static void test_av1_fragmented_key_frame_over_packets(void **state)
{
    /* The libaom key frame unit, its frame OBU split over three packets. */
    struct cap_depacketizer *d = *state;
    uint8_t p1[32];
    size_t n = 0;
    p1[n++] = W(2) | Y | N;
    p1[n++] = 12;
    p1[n++] = SEQ;
    memcpy(p1 + n, libaom_sequence_header, 11);
    n += 11;
    p1[n++] = FRAME;
    memcpy(p1 + n, libaom_key_frame_start, 3);
    n += 3;
    assert_int_equal(push(d, 1, 90000, false, p1, n, 0), 0);
    uint8_t p2[4] = {Z | Y | W(1)};
    memcpy(p2 + 1, libaom_key_frame_start + 3, 3);
    assert_int_equal(push(d, 2, 90000, false, p2, sizeof(p2), 0), 0);
    uint8_t p3[3] = {Z | W(1)};
    memcpy(p3 + 1, libaom_key_frame_start + 6, 2);
    assert_int_equal(push(d, 3, 90000, true, p3, sizeof(p3), 0), 0);
    struct cap_frame f = pop(d);
    assert_true(f.complete);
    assert_true(f.keyframe);
    assert_int_equal(f.width, 320);
    assert_int_equal(f.len, 2 + 2 + 11 + 2 + 8);
    assert_memory_equal(f.data + 17, libaom_key_frame_start, 8);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_av1_element_forms_and_rewritten_obus),
        T(test_av1_malformed_payloads_are_refused),
        T(test_av1_obu_fragmented_over_three_packets),
        T(test_av1_fragments_with_w0_lengths),
        T(test_av1_aggregation_around_a_fragmented_obu),
        T(test_av1_loss_inside_a_fragmented_obu_makes_the_unit_incomplete),
        T(test_av1_continuation_on_the_first_packet_seen_is_incomplete),
        T(test_av1_continuation_of_nothing_is_malformed),
        T(test_av1_y_without_a_following_z_is_malformed),
        T(test_av1_unit_ending_inside_an_obu_is_incomplete),
        T(test_av1_flush_with_an_open_fragment_is_incomplete),
        T(test_av1_one_temporal_delimiter_per_unit_over_many_packets),
        T(test_av1_libaom_key_frame_with_sequence_header),
        T(test_av1_key_frame_needs_its_sequence_header),
        T(test_av1_frame_types_other_than_key_are_not_key_frames),
        T(test_av1_frame_header_obu_counts_like_a_frame_obu),
        T(test_av1_libaom_sequence_header_with_decoder_model),
        T(test_av1_sequence_header_with_timing_and_two_operating_points),
        T(test_av1_reduced_still_picture_header_means_key_frame),
        T(test_av1_fragmented_key_frame_over_packets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
