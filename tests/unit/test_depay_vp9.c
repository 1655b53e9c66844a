/* The VP9 depacketizer (RFC 9628) through the generic assembler: crafted RTP packets in,
 * frames out. Flexible and non-flexible descriptors, the scalability structure, layer frames
 * across packets, spatial layers (the highest whole one kept, with the layers it predicts
 * from as a superframe), key frames from the P bit and the uncompressed header, malformed
 * descriptors. */
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

extern const struct cap_depay_ops cap_depay_vp9;

#define TS0 90000u
#define TICK 3000u

/* Descriptor first byte. */
#define I 0x80
#define P 0x40
#define L 0x20
#define F 0x10
#define B 0x08
#define E 0x04
#define V 0x02
#define Z 0x01

struct harness {
    struct cap_depacketizer *d;
    uint16_t seq;
    uint64_t ext_seq;
};

static void harness_init(struct harness *h)
{
    struct cap_codec_params params = {.clock_rate = 90000, .fmtp = ""};
    memset(h, 0, sizeof(*h));
    assert_int_equal(cap_depacketizer_new(&h->d, &cap_depay_vp9, &params), 0);
    h->seq = 65533; /* wraps inside the tests */
}

/* Builds an RTP packet (12-byte header, descriptor, VP9 data), parses it and pushes it; lost
 * sequence numbers before it are skipped. Returns what push returned. */
static int push(struct harness *h, uint32_t ts, bool marker, const uint8_t *desc, size_t desc_len,
                const uint8_t *data, size_t data_len, unsigned lost_before)
{
    uint8_t wire[1500];
    assert_true(12 + desc_len + data_len <= sizeof(wire));
    h->seq = (uint16_t)(h->seq + lost_before);
    h->ext_seq += lost_before;
    wire[0] = 0x80;
    wire[1] = (uint8_t)((marker ? 0x80 : 0) | 98);
    wire[2] = (uint8_t)(h->seq >> 8);
    wire[3] = (uint8_t)h->seq;
    wire[4] = (uint8_t)(ts >> 24);
    wire[5] = (uint8_t)(ts >> 16);
    wire[6] = (uint8_t)(ts >> 8);
    wire[7] = (uint8_t)ts;
    memset(wire + 8, 0x22, 4);
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

/* ---- VP9 frames ---- */

struct bit_writer {
    uint8_t *data;
    size_t bit;
};

static void put_bits(struct bit_writer *w, unsigned count, unsigned value)
{
    while (count--) {
        if ((value >> count) & 1)
            w->data[w->bit / 8] |= (uint8_t)(0x80 >> (w->bit % 8));
        w->bit++;
    }
}

enum frame_kind { KEY, INTER, SHOW_EXISTING };

/* A VP9 frame of len bytes: an uncompressed header (VP9 spec §6.2) as far as the frame size,
 * then filler whose bytes never look like a superframe marker. */
static size_t vp9_frame(uint8_t *out, size_t len, enum frame_kind kind, unsigned profile,
                        unsigned color_space, uint16_t width, uint16_t height, uint8_t seed)
{
    memset(out, 0, len);
    struct bit_writer w = {out, 0};
    put_bits(&w, 2, 2); /* frame_marker */
    put_bits(&w, 1, profile & 1);
    put_bits(&w, 1, profile >> 1);
    if (profile == 3)
        put_bits(&w, 1, 0);
    put_bits(&w, 1, kind == SHOW_EXISTING);
    if (kind == SHOW_EXISTING) {
        put_bits(&w, 3, 5);
    } else {
        put_bits(&w, 1, kind == INTER); /* frame_type */
        put_bits(&w, 1, 1);             /* show_frame */
        put_bits(&w, 1, 0);             /* error_resilient_mode */
        if (kind == KEY) {
            put_bits(&w, 24, 0x498342);
            if (profile >= 2)
                put_bits(&w, 1, 1);
            put_bits(&w, 3, color_space);
            bool odd = profile == 1 || profile == 3;
            if (color_space != 7)
                put_bits(&w, odd ? 4 : 1, odd ? 0x4 : 0);
            else if (odd)
                put_bits(&w, 1, 0);
            put_bits(&w, 16, width - 1u);
            put_bits(&w, 16, height - 1u);
        }
    }
    assert_true((w.bit + 7) / 8 <= len);
    for (size_t i = (w.bit + 7) / 8; i < len; i++)
        out[i] = (uint8_t)((seed + i * 13) & 0x7f);
    return len;
}

static size_t key_frame(uint8_t *out, size_t len, uint16_t width, uint16_t height)
{
    return vp9_frame(out, len, KEY, 0, 1, width, height, 1);
}

static size_t inter_frame(uint8_t *out, size_t len, uint8_t seed)
{
    return vp9_frame(out, len, INTER, 0, 0, 0, 0, seed);
}

/* A non-flexible descriptor with a 15-bit picture ID, layer indices and TL0PICIDX. */
static size_t layer_desc(uint8_t *out, uint8_t flags, unsigned sid, bool inter_layer)
{
    out[0] = (uint8_t)(I | L | flags);
    out[1] = 0x80 | 0x01;
    out[2] = 0x23;
    out[3] = (uint8_t)(sid << 1 | (inter_layer ? 1 : 0));
    out[4] = 0x09;
    return 5;
}

/* Pushes one layer frame in `packets` pieces (the last one marked if `last_in_picture`);
 * skip, when not 0, names a piece (1-based) that is lost. */
static void push_layer(struct harness *h, uint32_t ts, uint8_t flags, unsigned sid,
                       bool inter_layer, const uint8_t *data, size_t len, unsigned packets,
                       bool last_in_picture, unsigned skip)
{
    size_t piece = (len + packets - 1) / packets;
    unsigned lost = 0;
    for (unsigned i = 0; i < packets; i++) {
        size_t at = i * piece;
        size_t n = at + piece <= len ? piece : len - at;
        if (skip == i + 1) {
            lost++;
            continue;
        }
        uint8_t desc[5];
        uint8_t f = flags & (uint8_t) ~(B | E);
        if (i == 0)
            f |= flags & B;
        if (i == packets - 1)
            f |= flags & E;
        size_t dlen = layer_desc(desc, f, sid, inter_layer);
        assert_int_equal(
            push(h, ts, last_in_picture && i == packets - 1, desc, dlen, data + at, n, lost), 0);
        lost = 0;
    }
}

/* Checks that a frame is the superframe of the given frames, in order (Annex B index). */
static void assert_superframe(const struct cap_frame *f, const uint8_t *const *frames,
                              const size_t *sizes, unsigned count)
{
    size_t at = 0, largest = 0;
    for (unsigned i = 0; i < count; i++) {
        assert_true(at + sizes[i] <= f->len);
        assert_memory_equal(f->data + at, frames[i], sizes[i]);
        at += sizes[i];
        largest = sizes[i] > largest ? sizes[i] : largest;
    }
    unsigned bytes = largest <= 0xff ? 1 : largest <= 0xffff ? 2 : 3;
    assert_int_equal(f->len, at + 2 + bytes * count);
    uint8_t marker = (uint8_t)(0xc0 | (bytes - 1) << 3 | (count - 1));
    assert_int_equal(f->data[at], marker);
    assert_int_equal(f->data[f->len - 1], marker);
    const uint8_t *p = f->data + at + 1;
    for (unsigned i = 0; i < count; i++) {
        size_t size = 0;
        for (unsigned b = 0; b < bytes; b++)
            size |= (size_t)*p++ << (8 * b);
        assert_int_equal(size, sizes[i]);
    }
}

/* ---- tests ---- */

static void test_vp9_registered_under_its_name(void **state)
{
    (void)state;
    assert_ptr_equal(cap_depay_find("vp9"), &cap_depay_vp9);
}

/* Every descriptor shape, flexible and not: the VP9 data after it comes out untouched. */
static void test_vp9_descriptor_fields_are_stripped(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint8_t desc[24];
        size_t len;
    } cases[] = {
        {"bare", {B | E}, 1},
        {"Z bit", {B | E | Z}, 1},
        {"picture id 7 bits", {I | B | E, 0x7f}, 2},
        {"picture id 15 bits", {I | B | E, 0xff, 0xfe}, 3},
        {"non-flexible layer indices and tl0picidx", {I | L | B | E, 0x05, 0xa0, 0x11}, 4},
        {"non-flexible, inter-picture", {I | P | L | B | E, 0x05, 0x20, 0x11}, 4},
        {"flexible layer indices, no tl0picidx", {I | L | F | B | E, 0x05, 0x20}, 3},
        {"flexible, one p_diff", {I | P | F | B | E, 0x80, 0x05, 0x02}, 4},
        {"flexible, three p_diffs", {I | P | F | B | E, 0x05, 0x03, 0x05, 0x06}, 5},
        {"flexible, layers and two p_diffs", {I | P | L | F | B | E, 0x05, 0x22, 0x03, 0x08}, 5},
        {"ss without sizes or groups", {I | B | E | V, 0x05, 0x40}, 3},
        {"ss with sizes for two layers",
         {I | L | B | E | V, 0x05, 0x00, 0x00, 0x30, 0x01, 0x40, 0x00, 0xb4, 0x02, 0x80, 0x01,
          0x68},
         13},
        {"ss with groups and references",
         {I | L | B | E | V, 0x05, 0x00, 0x00, 0x08, 0x03, 0x04, 0x01, 0x28, 0x02, 0x01, 0x44,
          0x02},
         13},
        {"ss with sizes and an empty group list",
         {B | E | V, 0x18, 0x01, 0x40, 0x00, 0xf0, 0x00},
         7},
    };
    struct harness h;
    harness_init(&h);
    uint32_t ts = TS0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++, ts += TICK) {
        uint8_t frame[40];
        inter_frame(frame, sizeof(frame), (uint8_t)i);
        print_message("case: %s\n", cases[i].name);
        assert_int_equal(push(&h, ts, true, cases[i].desc, cases[i].len, frame, sizeof(frame), 0),
                         0);
        struct cap_frame f = pop_one(&h);
        assert_int_equal(f.len, sizeof(frame));
        assert_memory_equal(f.data, frame, sizeof(frame));
        assert_true(f.complete);
        assert_false(f.keyframe);
    }
    assert_int_equal(cap_depacketizer_stats(h.d)->malformed_packets, 0);
    cap_depacketizer_free(h.d);
}

static void test_vp9_layer_frame_across_three_packets(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    uint8_t frame[1000];
    key_frame(frame, sizeof(frame), 1280, 720);
    const uint8_t first[] = {I | B, 0x80, 0x01}, middle[] = {I, 0x80, 0x01},
                  last[] = {I | E, 0x80, 0x01};
    assert_int_equal(push(&h, TS0, false, first, 3, frame, 400, 0), 0);
    assert_int_equal(push(&h, TS0, false, middle, 3, frame + 400, 400, 0), 0);
    assert_no_frame(&h);
    assert_int_equal(push(&h, TS0, true, last, 3, frame + 800, 200, 0), 0);
    struct cap_frame f = pop_one(&h);
    assert_int_equal(f.len, sizeof(frame));
    assert_memory_equal(f.data, frame, sizeof(frame));
    assert_true(f.complete);
    assert_true(f.keyframe);
    assert_int_equal(f.width, 1280);
    assert_int_equal(f.height, 720);
    assert_int_equal(f.packets, 3);
    cap_depacketizer_free(h.d);
}

static void test_vp9_keyframe_needs_p_clear_and_a_key_header(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint8_t flags;
        enum frame_kind kind;
        unsigned profile, color_space;
        bool keyframe;
    } cases[] = {
        {"P=0, key frame, profile 0", 0, KEY, 0, 1, true},
        {"P=0, key frame, profile 1 (subsampling bits)", 0, KEY, 1, 2, true},
        {"P=0, key frame, profile 2 (bit depth bit)", 0, KEY, 2, 1, true},
        {"P=0, key frame, profile 3", 0, KEY, 3, 5, true},
        {"P=0, key frame, profile 1, RGB", 0, KEY, 1, 7, true},
        {"P=0, key frame, profile 0, RGB", 0, KEY, 0, 7, true},
        {"P=1, key frame header", P, KEY, 0, 1, false},
        {"P=0, inter frame header", 0, INTER, 0, 0, false},
        {"P=0, show existing frame", 0, SHOW_EXISTING, 0, 0, false},
    };
    struct harness h;
    harness_init(&h);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case: %s\n", cases[i].name);
        uint8_t frame[30];
        vp9_frame(frame, sizeof(frame), cases[i].kind, cases[i].profile, cases[i].color_space,
                  (uint16_t)(100 + i), (uint16_t)(50 + i), 3);
        uint8_t desc[] = {(uint8_t)(I | B | E | cases[i].flags), 0x05};
        assert_int_equal(
            push(&h, TS0 + (uint32_t)i * TICK, true, desc, sizeof(desc), frame, sizeof(frame), 0),
            0);
        struct cap_frame f = pop_one(&h);
        assert_int_equal(f.keyframe, cases[i].keyframe);
        assert_int_equal(f.width, cases[i].keyframe ? 100 + i : 0);
        assert_int_equal(f.height, cases[i].keyframe ? 50 + i : 0);
    }
    cap_depacketizer_free(h.d);
}

/* A key frame whose header breaks off or has the wrong sync code is dropped. */
static void test_vp9_broken_keyframe_headers_are_dropped(void **state)
{
    (void)state;
    uint8_t good[12];
    key_frame(good, sizeof(good), 640, 360);
    static const struct {
        const char *name;
        size_t len;
        size_t byte;
        uint8_t value;
    } cases[] = {
        {"sync code wrong", 12, 2, 0x84},
        {"ends inside the sync code", 2, 0, 0x82},
        {"ends inside the frame size", 7, 0, 0x82},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case: %s\n", cases[i].name);
        struct harness h;
        harness_init(&h);
        uint8_t frame[12];
        memcpy(frame, good, sizeof(frame));
        frame[cases[i].byte] = cases[i].value;
        const uint8_t desc[] = {B | E};
        assert_int_equal(push(&h, TS0, true, desc, 1, frame, cases[i].len, 0), 0);
        assert_no_frame(&h);
        const uint8_t inter_desc[] = {P | B | E};
        assert_int_equal(push(&h, TS0 + TICK, true, inter_desc, 1, frame, cases[i].len, 0), 0);
        assert_false(pop_one(&h).keyframe); /* the same bytes with P=1: not a key frame claim */
        cap_depacketizer_free(h.d);
    }
}

/* Two spatial layers, the upper predicted from the lower: both kept, as one superframe, with
 * the size from the scalability structure. */
static void test_vp9_two_whole_dependent_layers_make_a_superframe(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    uint8_t base[300], upper[700];
    key_frame(base, sizeof(base), 320, 180);
    inter_frame(upper, sizeof(upper), 9);
    /* First packet carries the SS: two layers, 320x180 and 640x360. */
    const uint8_t ss_desc[] = {I | L | B | V, 0x80, 0x01, 0x00, 0x00, 0x30, 0x01,
                               0x40,          0x00, 0xb4, 0x02, 0x80, 0x01, 0x68};
    const uint8_t base_end[] = {I | L | E, 0x80, 0x01, 0x00, 0x00};
    assert_int_equal(push(&h, TS0, false, ss_desc, sizeof(ss_desc), base, 150, 0), 0);
    assert_int_equal(push(&h, TS0, false, base_end, sizeof(base_end), base + 150, 150, 0), 0);
    push_layer(&h, TS0, B | E, 1, true, upper, sizeof(upper), 2, true, 0);
    struct cap_frame f = pop_one(&h);
    const uint8_t *frames[] = {base, upper};
    const size_t sizes[] = {sizeof(base), sizeof(upper)};
    assert_superframe(&f, frames, sizes, 2);
    assert_true(f.complete);
    assert_true(f.keyframe);
    assert_int_equal(f.width, 640);
    assert_int_equal(f.height, 360);

    /* The next picture, inter: the SS is remembered but sizes are only for key frames. */
    uint8_t base2[100], upper2[200];
    inter_frame(base2, sizeof(base2), 20);
    inter_frame(upper2, sizeof(upper2), 30);
    push_layer(&h, TS0 + TICK, P | B | E, 0, false, base2, sizeof(base2), 1, false, 0);
    push_layer(&h, TS0 + TICK, P | B | E, 1, true, upper2, sizeof(upper2), 1, true, 0);
    f = pop_one(&h);
    const uint8_t *frames2[] = {base2, upper2};
    const size_t sizes2[] = {sizeof(base2), sizeof(upper2)};
    assert_superframe(&f, frames2, sizes2, 2);
    assert_false(f.keyframe);
    assert_int_equal(f.width, 0);
    cap_depacketizer_free(h.d);
}

/* An upper layer that does not predict from the lower one stands alone. */
static void test_vp9_independent_upper_layer_is_kept_alone(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    uint8_t base[100], upper[250];
    inter_frame(base, sizeof(base), 1);
    inter_frame(upper, sizeof(upper), 2);
    push_layer(&h, TS0, P | B | E, 0, false, base, sizeof(base), 1, false, 0);
    push_layer(&h, TS0, P | B | E, 1, false, upper, sizeof(upper), 3, true, 0);
    struct cap_frame f = pop_one(&h);
    assert_int_equal(f.len, sizeof(upper));
    assert_memory_equal(f.data, upper, sizeof(upper));
    assert_true(f.complete);
    cap_depacketizer_free(h.d);
}

/* Loss inside the upper layer frame: the whole lower one is kept, and it is complete. */
static void test_vp9_lower_layer_kept_when_the_upper_is_damaged(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        unsigned skip;        /* which of the upper layer's three packets is lost */
        bool upper_key_frame; /* an independent key frame on top is no help when damaged */
    } cases[] = {
        {"first packet (B) of the upper layer lost", 1, false},
        {"middle packet lost", 2, false},
        {"middle packet lost, upper independent", 2, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case: %s\n", cases[i].name);
        struct harness h;
        harness_init(&h);
        uint8_t base[200], upper[600];
        key_frame(base, sizeof(base), 320, 240);
        inter_frame(upper, sizeof(upper), 5);
        push_layer(&h, TS0, B | E, 0, false, base, sizeof(base), 2, false, 0);
        push_layer(&h, TS0, B | E, 1, !cases[i].upper_key_frame, upper, sizeof(upper), 3, true,
                   cases[i].skip);
        struct cap_frame f = pop_one(&h);
        assert_int_equal(f.len, sizeof(base));
        assert_memory_equal(f.data, base, sizeof(base));
        assert_true(f.complete);
        assert_true(f.keyframe);
        assert_int_equal(f.width, 320);
        assert_int_equal(f.height, 240);
        cap_depacketizer_free(h.d);
    }
}

/* The picture's last packet (the upper layer's end, with the marker) is lost: the next
 * timestamp ends the picture, and the lower layer is kept. */
static void test_vp9_lower_layer_kept_when_the_upper_loses_its_end(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    uint8_t base[90], upper[300], next[50];
    inter_frame(base, sizeof(base), 1);
    inter_frame(upper, sizeof(upper), 2);
    inter_frame(next, sizeof(next), 3);
    push_layer(&h, TS0, P | B | E, 0, false, base, sizeof(base), 1, false, 0);
    push_layer(&h, TS0, P | B, 1, true, upper, 200, 2, false, 0); /* its third packet is lost */
    assert_no_frame(&h);
    uint8_t desc[5];
    size_t dlen = layer_desc(desc, P | B | E, 0, false);
    assert_int_equal(push(&h, TS0 + TICK, true, desc, dlen, next, sizeof(next), 1), 0);
    struct cap_frame f = pop_one(&h);
    assert_int_equal(f.timestamp, TS0);
    assert_int_equal(f.len, sizeof(base));
    assert_memory_equal(f.data, base, sizeof(base));
    assert_true(f.complete);
    f = pop_one(&h);
    assert_int_equal(f.timestamp, TS0 + TICK);
    assert_true(f.after_loss);
    cap_depacketizer_free(h.d);
}

/* Three layers in a prediction chain, the top one damaged: the lower two as a superframe. */
static void test_vp9_three_layers_top_damaged_keeps_the_two_below(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    uint8_t l0[120], l1[260], l2[500];
    inter_frame(l0, sizeof(l0), 1);
    inter_frame(l1, sizeof(l1), 2);
    inter_frame(l2, sizeof(l2), 3);
    push_layer(&h, TS0, P | B | E, 0, false, l0, sizeof(l0), 1, false, 0);
    push_layer(&h, TS0, P | B | E, 1, true, l1, sizeof(l1), 2, false, 0);
    push_layer(&h, TS0, P | B | E, 2, true, l2, sizeof(l2), 3, true, 2);
    struct cap_frame f = pop_one(&h);
    const uint8_t *frames[] = {l0, l1};
    const size_t sizes[] = {sizeof(l0), sizeof(l1)};
    assert_superframe(&f, frames, sizes, 2);
    assert_true(f.complete);
    assert_false(f.keyframe);
    cap_depacketizer_free(h.d);
}

/* The lower layer is damaged: an upper layer that needs it cannot be kept either. */
static void test_vp9_damaged_lower_layer(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        bool upper_depends;
        bool kept;
    } cases[] = {
        {"upper predicts from it: nothing decodable, incomplete", true, false},
        {"upper independent: the upper kept", false, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case: %s\n", cases[i].name);
        struct harness h;
        harness_init(&h);
        uint8_t base[300], upper[200];
        inter_frame(base, sizeof(base), 1);
        inter_frame(upper, sizeof(upper), 2);
        push_layer(&h, TS0, P | B | E, 0, false, base, sizeof(base), 3, false, 2);
        push_layer(&h, TS0, P | B | E, 1, cases[i].upper_depends, upper, sizeof(upper), 1, true, 0);
        struct cap_frame f = pop_one(&h);
        assert_int_equal(f.complete, cases[i].kept);
        if (cases[i].kept) {
            assert_int_equal(f.len, sizeof(upper));
            assert_memory_equal(f.data, upper, sizeof(upper));
        } else {
            assert_int_equal(f.len, 200 + sizeof(upper)); /* as it came, minus the loss */
        }
        cap_depacketizer_free(h.d);
    }
}

/* A picture made only of an upper layer that predicts from a lower one it does not bring. */
static void test_vp9_lone_layer_missing_its_reference_is_incomplete(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    uint8_t upper[100];
    inter_frame(upper, sizeof(upper), 4);
    uint8_t desc[5];
    size_t dlen = layer_desc(desc, P | B | E, 1, true);
    assert_int_equal(push(&h, TS0, true, desc, dlen, upper, sizeof(upper), 2), 0);
    struct cap_frame f = pop_one(&h);
    assert_false(f.complete);
    assert_int_equal(f.len, sizeof(upper));
    cap_depacketizer_free(h.d);
}

/* A layer frame that is itself a superframe (a hidden frame plus a shown one) gives up its
 * frames to the picture's superframe: superframes do not nest. */
static void test_vp9_inner_superframe_is_flattened(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    uint8_t hidden[40], shown[30], upper[50];
    inter_frame(hidden, sizeof(hidden), 1);
    inter_frame(shown, sizeof(shown), 2);
    inter_frame(upper, sizeof(upper), 3);
    uint8_t base[40 + 30 + 4];
    memcpy(base, hidden, sizeof(hidden));
    memcpy(base + 40, shown, sizeof(shown));
    base[70] = 0xc1;
    base[71] = 40;
    base[72] = 30;
    base[73] = 0xc1;
    push_layer(&h, TS0, P | B | E, 0, false, base, sizeof(base), 1, false, 0);
    push_layer(&h, TS0, P | B | E, 1, true, upper, sizeof(upper), 1, true, 0);
    struct cap_frame f = pop_one(&h);
    const uint8_t *frames[] = {hidden, shown, upper};
    const size_t sizes[] = {sizeof(hidden), sizeof(shown), sizeof(upper)};
    assert_superframe(&f, frames, sizes, 3);

    /* With one layer the superframe passes through untouched. */
    push_layer(&h, TS0 + TICK, P | B | E, 0, false, base, sizeof(base), 2, true, 0);
    f = pop_one(&h);
    assert_int_equal(f.len, sizeof(base));
    assert_memory_equal(f.data, base, sizeof(base));
    cap_depacketizer_free(h.d);
}

/* Large layer frames need two-byte sizes in the index. */
static void test_vp9_superframe_index_grows_its_size_fields(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    static uint8_t base[1200], upper[3000];
    inter_frame(base, sizeof(base), 1);
    inter_frame(upper, sizeof(upper), 2);
    push_layer(&h, TS0, P | B | E, 0, false, base, sizeof(base), 2, false, 0);
    push_layer(&h, TS0, P | B | E, 1, true, upper, sizeof(upper), 3, true, 0);
    struct cap_frame f = pop_one(&h);
    const uint8_t *frames[] = {base, upper};
    const size_t sizes[] = {sizeof(base), sizeof(upper)};
    assert_superframe(&f, frames, sizes, 2);
    assert_int_equal(f.data[f.len - 1], 0xc0 | 1 << 3 | 1);
    cap_depacketizer_free(h.d);
}

/* Without layer indices a second B in the picture is taken as the next spatial layer, and
 * as predicted from the one below (nothing says otherwise). */
static void test_vp9_layer_frames_without_layer_indices(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    uint8_t base[60], upper[80];
    key_frame(base, sizeof(base), 160, 90);
    inter_frame(upper, sizeof(upper), 2);
    const uint8_t desc0[] = {I | B | E, 0x11}, desc1[] = {I | B | E, 0x11};
    assert_int_equal(push(&h, TS0, false, desc0, 2, base, sizeof(base), 0), 0);
    assert_int_equal(push(&h, TS0, true, desc1, 2, upper, sizeof(upper), 0), 0);
    struct cap_frame f = pop_one(&h);
    const uint8_t *frames[] = {base, upper};
    const size_t sizes[] = {sizeof(base), sizeof(upper)};
    assert_superframe(&f, frames, sizes, 2);
    assert_true(f.keyframe);
    assert_int_equal(f.width, 0); /* the header only knows the bottom layer's size */
    cap_depacketizer_free(h.d);
}

static void test_vp9_missing_marker_ends_the_picture_at_the_next_timestamp(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    uint8_t frame[200], next[30];
    inter_frame(frame, sizeof(frame), 2);
    inter_frame(next, sizeof(next), 6);
    const uint8_t first[] = {P | B}, last[] = {P}; /* neither E nor the marker */
    assert_int_equal(push(&h, TS0, false, first, 1, frame, 100, 0), 0);
    assert_int_equal(push(&h, TS0, false, last, 1, frame + 100, 100, 0), 0);
    assert_no_frame(&h);
    const uint8_t whole[] = {P | B | E};
    assert_int_equal(push(&h, TS0 + TICK, true, whole, 1, next, sizeof(next), 0), 0);
    struct cap_frame f = pop_one(&h);
    assert_int_equal(f.timestamp, TS0);
    assert_memory_equal(f.data, frame, sizeof(frame));
    assert_int_equal(f.len, sizeof(frame));
    assert_true(f.complete);
    f = pop_one(&h);
    assert_true(f.complete);
    cap_depacketizer_free(h.d);
}

static void test_vp9_picture_without_its_start_is_incomplete(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    uint8_t frame[40];
    key_frame(frame, sizeof(frame), 64, 64);
    const uint8_t middle[] = {E}; /* B missing, though the bytes look like a key frame */
    assert_int_equal(push(&h, TS0, true, middle, 1, frame, sizeof(frame), 1), 0);
    struct cap_frame f = pop_one(&h);
    assert_false(f.complete);
    assert_false(f.keyframe);
    assert_true(f.after_loss);
    cap_depacketizer_free(h.d);
}

/* Layer frames out of spatial order, or twice for one layer: malformed. */
static void test_vp9_layer_frames_out_of_order_are_refused(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    uint8_t data[50];
    inter_frame(data, sizeof(data), 1);
    uint8_t desc[5];
    size_t dlen = layer_desc(desc, P | B | E, 1, false);
    assert_int_equal(push(&h, TS0, false, desc, dlen, data, sizeof(data), 0), 0);
    dlen = layer_desc(desc, P | B | E, 0, false);
    assert_int_equal(push(&h, TS0, false, desc, dlen, data, sizeof(data), 0), CAP_EFORMAT);
    dlen = layer_desc(desc, P | B | E, 1, false);
    assert_int_equal(push(&h, TS0, false, desc, dlen, data, sizeof(data), 0), CAP_EFORMAT);
    cap_depacketizer_flush(h.d);
    struct cap_frame f = pop_one(&h);
    assert_false(f.complete);
    cap_depacketizer_free(h.d);
}

/* Every announced field must fit: CAP_EFORMAT, the frame marked incomplete, no crash. */
static void test_vp9_malformed_descriptors_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint8_t payload[16];
        size_t len;
    } cases[] = {
        {"descriptor only", {B | E}, 1},
        {"I set, picture id missing", {I | B}, 1},
        {"M set, second picture id byte missing", {I | B, 0x80}, 2},
        {"L set, layer byte missing", {L | B}, 1},
        {"L set, non-flexible, tl0picidx missing", {L | B, 0x00}, 2},
        {"flexible P, p_diff missing", {F | P | B}, 1},
        {"flexible P, p_diff chain runs past the end", {F | P | B, 0x03, 0x05}, 3},
        {"flexible P, a fourth p_diff announced", {F | P | B, 0x03, 0x05, 0x07, 0x08}, 5},
        {"V set, ss missing", {V | B}, 1},
        {"ss sizes past the end", {V | B, 0x30, 0x01, 0x40, 0x00, 0xb4, 0x02, 0x80}, 8},
        {"ss sizes past the end, one layer", {V | B, 0x10, 0x01, 0x40, 0x00}, 5},
        {"ss group count missing", {V | B, 0x08}, 2},
        {"ss group description missing", {V | B, 0x08, 0x02, 0x00}, 4},
        {"ss group p_diffs past the end", {V | B, 0x08, 0x01, 0x0c, 0x01, 0x02}, 6},
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
        /* In the middle of a layer frame it damages the picture. */
        const uint8_t first[] = {P | B}, last[] = {P | E};
        assert_int_equal(push(&h, TS0 + TICK, false, first, 1, head, sizeof(head), 0), 0);
        assert_int_equal(push(&h, TS0 + TICK, false, cases[i].payload, cases[i].len, NULL, 0, 0),
                         CAP_EFORMAT);
        assert_int_equal(push(&h, TS0 + TICK, true, last, 1, tail, sizeof(tail), 0), 0);
        struct cap_frame f = pop_one(&h);
        assert_false(f.complete);
        assert_int_equal(cap_depacketizer_stats(h.d)->malformed_packets, 2);
        cap_depacketizer_free(h.d);
    }
}

static void test_vp9_empty_frame_is_malformed(void **state)
{
    (void)state;
    _Alignas(max_align_t) uint8_t priv[512] = {0};
    assert_true(cap_depay_vp9.priv_size <= sizeof(priv));
    assert_int_equal(cap_depay_vp9.init(priv, NULL), 0);
    struct cap_buf frame;
    cap_buf_init(&frame, CAP_FRAME_MAX);
    struct cap_frame out = {.complete = true};
    assert_int_equal(cap_depay_vp9.finish(priv, &frame, &out), CAP_EFORMAT);
    cap_buf_deinit(&frame);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vp9_registered_under_its_name),
        cmocka_unit_test(test_vp9_descriptor_fields_are_stripped),
        cmocka_unit_test(test_vp9_layer_frame_across_three_packets),
        cmocka_unit_test(test_vp9_keyframe_needs_p_clear_and_a_key_header),
        cmocka_unit_test(test_vp9_broken_keyframe_headers_are_dropped),
        cmocka_unit_test(test_vp9_two_whole_dependent_layers_make_a_superframe),
        cmocka_unit_test(test_vp9_independent_upper_layer_is_kept_alone),
        cmocka_unit_test(test_vp9_lower_layer_kept_when_the_upper_is_damaged),
        cmocka_unit_test(test_vp9_lower_layer_kept_when_the_upper_loses_its_end),
        cmocka_unit_test(test_vp9_three_layers_top_damaged_keeps_the_two_below),
        cmocka_unit_test(test_vp9_damaged_lower_layer),
        cmocka_unit_test(test_vp9_lone_layer_missing_its_reference_is_incomplete),
        cmocka_unit_test(test_vp9_inner_superframe_is_flattened),
        cmocka_unit_test(test_vp9_superframe_index_grows_its_size_fields),
        cmocka_unit_test(test_vp9_layer_frames_without_layer_indices),
        cmocka_unit_test(test_vp9_missing_marker_ends_the_picture_at_the_next_timestamp),
        cmocka_unit_test(test_vp9_picture_without_its_start_is_incomplete),
        cmocka_unit_test(test_vp9_layer_frames_out_of_order_are_refused),
        cmocka_unit_test(test_vp9_malformed_descriptors_are_refused),
        cmocka_unit_test(test_vp9_empty_frame_is_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
