/* The H.264 depacketizer (RFC 6184) through the generic assembler: single NAL units, STAP-A,
 * FU-A, loss and malformed payloads, refused interleaved types, parameter sets prepended to
 * IDR frames from the stream or the fmtp, and picture sizes from real encoders' SPS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "capstan/error.h"
#include "codec/depay.h"

extern const struct cap_depay_ops cap_depay_h264;

/* Parameter sets from x264 (ffmpeg -c:v libx264), as they appear on the wire. Baseline: */
static const uint8_t SPS_320X240[] = {
    0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00,
    0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0xa4, 0x80,
};
static const uint8_t PPS_320X240[] = {0x68, 0xcb, 0x83, 0xcb, 0x20};
/* high, 1920x1088 cropped to 1080 */
static const uint8_t SPS_1920X1080[] = {
    0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00,
    0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x60, 0xc6, 0x58,
};
static const uint8_t PPS_1920X1080[] = {0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0};
/* high 4:4:4 predictive: crop in luma rows */
static const uint8_t SPS_1920X1080_444[] = {
    0x67, 0xf4, 0x00, 0x28, 0x91, 0x9b, 0x28, 0x0f, 0x00, 0x44, 0xfc, 0x4e, 0x02, 0x20,
    0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x06, 0x41, 0xe3, 0x06, 0x32, 0xc0,
};
/* high 4:2:2: crop in luma rows too */
static const uint8_t SPS_1920X1080_422[] = {
    0x67, 0x7a, 0x00, 0x28, 0xbc, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe2, 0x70, 0x11, 0x00,
    0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x18, 0x31, 0x96,
};
/* frame_mbs_only_flag 0 */
static const uint8_t SPS_720X576_INTERLACED[] = {
    0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xb4, 0x24, 0xd8, 0x08, 0x80,
    0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x19, 0x0f, 0x8a, 0x14, 0xcb,
};
/* Built by hand (x264 puts its matrices in the PPS) and checked with ffmpeg's
 * trace_headers: scaling lists (one explicit 4x4, one "use default", one explicit 8x8),
 * pic_order_cnt_type 1 with a cycle, an emulation prevention byte before the size fields,
 * 1920x1088 cropped to 1080. */
static const uint8_t SPS_1920X1080_SCALING[] = {
    0x67, 0x64, 0x00, 0x28, 0xad, 0x8a, 0x38, 0x0f, 0xe0, 0x08, 0x0d, 0x10, 0xc2, 0x45, 0x0c,
    0x1e, 0x10, 0x09, 0x05, 0x02, 0xf0, 0x88, 0x6c, 0x87, 0x10, 0x2c, 0x60, 0xf0, 0x85, 0x14,
    0xc2, 0x45, 0x0d, 0x1c, 0x11, 0xb2, 0x1c, 0x40, 0xb1, 0x83, 0xc2, 0x14, 0x53, 0x09, 0x14,
    0x34, 0x70, 0x46, 0xc8, 0x71, 0x02, 0xc6, 0x0f, 0x08, 0x51, 0x4c, 0x24, 0x50, 0xd1, 0xc1,
    0x1b, 0x21, 0xc4, 0x0b, 0x18, 0x3c, 0x21, 0x15, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x0c,
    0x84, 0x28, 0x00, 0x00, 0x20, 0x00, 0x00, 0x28, 0x0f, 0x00, 0x44, 0xfc, 0xa8,
};
/* The same sets in base64, as sprop-parameter-sets carries them. */
#define SPROP_320X240 "Z0LADdkBQfsBEAAAAwAQAAADAyDxQqSA,aMuDyyA="

/* Slices: the top bit after the header is first_mb_in_slice == 0 (starts the picture). */
static const uint8_t IDR[] = {0x65, 0x88, 0x84, 0x00, 0x21, 0xff, 0xfe};
static const uint8_t P_SLICE[] = {0x41, 0x9a, 0x02, 0x03, 0x04};
static const uint8_t P_SLICE_SECOND[] = {0x41, 0x40, 0x11, 0x22}; /* first_mb_in_slice 1 */
static const uint8_t AUD[] = {0x09, 0xf0};

/* ---- building packets and expected frames ---- */

struct bytes {
    uint8_t data[8192];
    size_t len;
};

static void put(struct bytes *b, const void *data, size_t len)
{
    assert_true(b->len + len <= sizeof(b->data));
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void put_byte(struct bytes *b, uint8_t byte)
{
    put(b, &byte, 1);
}

struct nal {
    const uint8_t *data;
    size_t len;
};

#define NAL(array) ((struct nal){(array), sizeof(array)})

/* A STAP-A (type 24, NRI 3) of the given units. */
static struct bytes stap_a(const struct nal *nals, size_t count)
{
    struct bytes b = {.len = 0};
    put_byte(&b, 0x78);
    for (size_t i = 0; i < count; i++) {
        put_byte(&b, (uint8_t)(nals[i].len >> 8));
        put_byte(&b, (uint8_t)nals[i].len);
        put(&b, nals[i].data, nals[i].len);
    }
    return b;
}

/* What the depacketizer should hand out: a 4-byte start code before every unit. */
static struct bytes annex_b(const struct nal *nals, size_t count)
{
    struct bytes b = {.len = 0};
    for (size_t i = 0; i < count; i++) {
        put(&b, (const uint8_t[]){0, 0, 0, 1}, 4);
        put(&b, nals[i].data, nals[i].len);
    }
    return b;
}

/* One FU-A fragment of the unit whose header is `nal_header`. */
static struct bytes fu_a(uint8_t nal_header, bool start, bool end, const uint8_t *data, size_t len)
{
    struct bytes b = {.len = 0};
    put_byte(&b, (uint8_t)((nal_header & 0xE0) | 28));
    put_byte(&b, (uint8_t)((start ? 0x80 : 0) | (end ? 0x40 : 0) | (nal_header & 0x1F)));
    put(&b, data, len);
    return b;
}

struct stream {
    struct cap_depacketizer *d;
    uint16_t next_seq;
};

static void open_stream(struct stream *s, const char *fmtp)
{
    struct cap_codec_params params = {.clock_rate = 90000, .fmtp = fmtp};
    s->d = NULL;
    s->next_seq = 100;
    assert_int_equal(cap_depacketizer_new(&s->d, cap_depay_find("h264"), &params), 0);
}

/* Pushes the next packet; `lost` sequence numbers are skipped before it. */
static int push_lost(struct stream *s, unsigned lost, uint32_t ts, bool marker,
                     const uint8_t *payload, size_t len)
{
    s->next_seq = (uint16_t)(s->next_seq + lost);
    struct cap_rtp_packet pkt = {
        .version = 2,
        .marker = marker,
        .payload_type = 96,
        .sequence = s->next_seq,
        .timestamp = ts,
        .ssrc = 0x1234,
        .payload = payload,
        .payload_len = len,
    };
    int err = cap_depacketizer_push(s->d, &pkt, s->next_seq, (int64_t)s->next_seq * 1000, lost);
    s->next_seq++;
    return err;
}

static int push(struct stream *s, uint32_t ts, bool marker, const uint8_t *payload, size_t len)
{
    return push_lost(s, 0, ts, marker, payload, len);
}

static int push_bytes(struct stream *s, uint32_t ts, bool marker, struct bytes b)
{
    return push(s, ts, marker, b.data, b.len);
}

static struct cap_frame pop(struct stream *s)
{
    struct cap_frame f;
    assert_int_equal(cap_depacketizer_pop(s->d, &f), 1);
    return f;
}

static void assert_no_frame(struct stream *s)
{
    struct cap_frame f;
    assert_int_equal(cap_depacketizer_pop(s->d, &f), 0);
}

static void assert_frame_bytes(const struct cap_frame *f, struct bytes expected)
{
    assert_int_equal(f->len, expected.len);
    assert_memory_equal(f->data, expected.data, expected.len);
}

static void close_stream(struct stream *s)
{
    cap_depacketizer_free(s->d);
}

/* ---- tests ---- */

static void test_h264_is_registered(void **state)
{
    (void)state;
    assert_ptr_equal(cap_depay_find("h264"), &cap_depay_h264);
}

static void test_h264_single_nal_unit_is_one_frame(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "");
    assert_int_equal(push(&s, 3000, true, IDR, sizeof(IDR)), 0);
    struct cap_frame f = pop(&s);
    assert_frame_bytes(&f, annex_b((struct nal[]){NAL(IDR)}, 1));
    assert_true(f.keyframe);
    assert_true(f.complete);
    assert_int_equal(f.packets, 1);
    assert_int_equal(f.timestamp, 3000);
    assert_int_equal(f.width, 0); /* no SPS anywhere */
    assert_no_frame(&s);
    close_stream(&s);
}

static void test_h264_stap_a_with_sps_pps_idr(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "packetization-mode=1");
    struct nal units[] = {NAL(SPS_320X240), NAL(PPS_320X240), NAL(IDR)};
    assert_int_equal(push_bytes(&s, 0, true, stap_a(units, 3)), 0);
    struct cap_frame f = pop(&s);
    assert_frame_bytes(&f, annex_b(units, 3));
    assert_true(f.keyframe);
    assert_true(f.complete);
    assert_int_equal(f.width, 320);
    assert_int_equal(f.height, 240);
    close_stream(&s);
}

static void test_h264_fu_a_split_across_seven_packets(void **state)
{
    (void)state;
    uint8_t idr[3001];
    idr[0] = 0x65;
    for (size_t i = 1; i < sizeof(idr); i++)
        idr[i] = (uint8_t)(i * 7 + 1);
    idr[1] = 0x88;
    static const size_t cuts[] = {1, 500, 900, 1400, 2000, 2001, 2600, sizeof(idr)};
    struct stream s;
    open_stream(&s, "");
    for (size_t i = 0; i + 1 < sizeof(cuts) / sizeof(cuts[0]); i++) {
        bool first = i == 0, last = i + 2 == sizeof(cuts) / sizeof(cuts[0]);
        struct bytes frag = fu_a(idr[0], first, last, idr + cuts[i], cuts[i + 1] - cuts[i]);
        assert_int_equal(push_bytes(&s, 9000, last, frag), 0);
        if (!last)
            assert_no_frame(&s);
    }
    struct cap_frame f = pop(&s);
    assert_frame_bytes(&f, annex_b((struct nal[]){{idr, sizeof(idr)}}, 1));
    assert_int_equal(f.packets, 7);
    assert_true(f.complete);
    assert_true(f.keyframe);
    close_stream(&s);
}

static void test_h264_fu_a_header_keeps_nri_of_indicator(void **state)
{
    (void)state;
    static const uint8_t slice[] = {0x21, 0x9a, 0x01, 0x02}; /* NRI 1, non-IDR */
    struct stream s;
    open_stream(&s, "");
    assert_int_equal(push_bytes(&s, 0, false, fu_a(slice[0], true, false, slice + 1, 2)), 0);
    assert_int_equal(push_bytes(&s, 0, true, fu_a(slice[0], false, true, slice + 3, 1)), 0);
    struct cap_frame f = pop(&s);
    assert_frame_bytes(&f, annex_b((struct nal[]){NAL(slice)}, 1));
    assert_false(f.keyframe);
    close_stream(&s);
}

static void test_h264_fu_a_start_and_end_in_one_packet(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "");
    assert_int_equal(push_bytes(&s, 0, true, fu_a(IDR[0], true, true, IDR + 1, sizeof(IDR) - 1)),
                     0);
    struct cap_frame f = pop(&s);
    assert_frame_bytes(&f, annex_b((struct nal[]){NAL(IDR)}, 1));
    assert_true(f.complete);
    close_stream(&s);
}

static void test_h264_fu_a_loss_keeps_what_came_before_the_gap(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x88, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    struct stream s;
    open_stream(&s, "");
    assert_int_equal(push_bytes(&s, 0, false, fu_a(0x65, true, false, body, 3)), 0);
    assert_int_equal(push_bytes(&s, 0, false, fu_a(0x65, false, false, body + 3, 2)), 0);
    /* body[5..7] is lost */
    struct bytes after_gap = fu_a(0x65, false, false, body + 7, 2);
    assert_int_equal(push_lost(&s, 1, 0, false, after_gap.data, after_gap.len), 0);
    assert_int_equal(push_bytes(&s, 0, true, fu_a(0x65, false, true, body + 9, 1)), 0);
    struct cap_frame f = pop(&s);
    static const uint8_t prefix[] = {0x65, 0x88, 1, 2, 3, 4};
    assert_frame_bytes(&f, annex_b((struct nal[]){NAL(prefix)}, 1));
    assert_false(f.complete);
    assert_int_equal(cap_depacketizer_stats(s.d)->incomplete_frames, 1);
    assert_int_equal(cap_depacketizer_stats(s.d)->malformed_packets, 0);

    /* The next frame is whole again. */
    assert_int_equal(push(&s, 3000, true, P_SLICE, sizeof(P_SLICE)), 0);
    f = pop(&s);
    assert_true(f.complete);
    assert_frame_bytes(&f, annex_b((struct nal[]){NAL(P_SLICE)}, 1));
    close_stream(&s);
}

static void test_h264_fu_a_continuation_without_start_is_malformed(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "");
    /* The frame's first packet is a middle fragment (its start was never sent). */
    assert_int_equal(push_bytes(&s, 0, false, fu_a(0x65, false, false, IDR + 1, 2)), CAP_EFORMAT);
    /* The rest of that unit is skipped without counting again. */
    assert_int_equal(push_bytes(&s, 0, true, fu_a(0x65, false, true, IDR + 3, 2)), 0);
    assert_no_frame(&s); /* nothing usable */
    assert_int_equal(cap_depacketizer_stats(s.d)->malformed_packets, 1);
    assert_int_equal(cap_depacketizer_stats(s.d)->incomplete_frames, 1);

    /* After a whole slice in the same frame: the frame comes out, incomplete. */
    assert_int_equal(push(&s, 3000, false, P_SLICE, sizeof(P_SLICE)), 0);
    assert_int_equal(push_bytes(&s, 3000, true, fu_a(0x41, false, true, IDR + 3, 2)), CAP_EFORMAT);
    cap_depacketizer_flush(s.d);
    struct cap_frame f = pop(&s);
    assert_frame_bytes(&f, annex_b((struct nal[]){NAL(P_SLICE)}, 1));
    assert_false(f.complete);
    close_stream(&s);
}

static void test_h264_fu_a_type_change_mid_unit_is_malformed(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "");
    assert_int_equal(push_bytes(&s, 0, false, fu_a(0x65, true, false, IDR + 1, 2)), 0);
    assert_int_equal(push_bytes(&s, 0, true, fu_a(0x41, false, true, IDR + 3, 2)), CAP_EFORMAT);
    cap_depacketizer_flush(s.d);
    struct cap_frame f = pop(&s);
    static const uint8_t prefix[] = {0x65, 0x88, 0x84};
    assert_frame_bytes(&f, annex_b((struct nal[]){NAL(prefix)}, 1));
    assert_false(f.complete);
    close_stream(&s);
}

/* STAP-As whose sizes lie: each is refused whole, and adds nothing to the frame. */
static void test_h264_stap_a_lying_sizes_add_nothing(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        uint8_t payload[16];
        size_t len;
    } cases[] = {
        {"size past the end", {0x78, 0x00, 0x05, 0x65, 0x88}, 5},
        {"second size past the end", {0x78, 0x00, 0x02, 0x65, 0x88, 0x00, 0x09, 0x41}, 8},
        {"zero size", {0x78, 0x00, 0x00, 0x00, 0x02, 0x65, 0x88}, 7},
        {"half a size at the end", {0x78, 0x00, 0x02, 0x65, 0x88, 0x00}, 6},
        {"no units", {0x78}, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case: %s\n", cases[i].what);
        struct stream s;
        open_stream(&s, "");
        assert_int_equal(push(&s, 0, false, IDR, sizeof(IDR)), 0);
        assert_int_equal(push(&s, 0, true, cases[i].payload, cases[i].len), CAP_EFORMAT);
        cap_depacketizer_flush(s.d);
        struct cap_frame f = pop(&s);
        assert_frame_bytes(&f, annex_b((struct nal[]){NAL(IDR)}, 1));
        assert_false(f.complete);
        assert_int_equal(cap_depacketizer_stats(s.d)->malformed_packets, 1);
        close_stream(&s);
    }
}

static void test_h264_truncated_payloads_are_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        uint8_t payload[4];
        size_t len;
    } cases[] = {
        {"FU-A indicator without FU header", {0x7c}, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case: %s\n", cases[i].what);
        struct stream s;
        open_stream(&s, "");
        assert_int_equal(push(&s, 0, true, cases[i].payload, cases[i].len), CAP_EFORMAT);
        cap_depacketizer_flush(s.d);
        assert_no_frame(&s);
        assert_int_equal(cap_depacketizer_stats(s.d)->malformed_packets, 1);
        close_stream(&s);
    }
}

static void test_h264_interleaved_mode_types_are_refused(void **state)
{
    (void)state;
    static const uint8_t types[] = {25, 26, 27, 29}; /* STAP-B, MTAP16, MTAP24, FU-B */
    for (size_t i = 0; i < sizeof(types); i++) {
        struct stream s;
        open_stream(&s, "packetization-mode=1");
        uint8_t payload[] = {(uint8_t)(0x60 | types[i]), 0x00, 0x01, 0x00, 0x02, 0x65, 0x88};
        assert_int_equal(push(&s, 0, true, payload, sizeof(payload)), CAP_EFORMAT);
        cap_depacketizer_flush(s.d);
        assert_no_frame(&s);
        close_stream(&s);
    }
}

static void test_h264_packetization_modes(void **state)
{
    (void)state;
    static const struct {
        const char *fmtp;
        int expect;
    } cases[] = {
        {"", 0},
        {"packetization-mode=0", 0},
        {"profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1", 0},
        {"packetization-mode = 1", 0},
        {"packetization-mode=2", CAP_EUNSUPPORTED},
        {"profile-level-id=42e01f; PACKETIZATION-MODE=2", CAP_EUNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("fmtp: %s\n", cases[i].fmtp);
        struct cap_codec_params params = {.clock_rate = 90000, .fmtp = cases[i].fmtp};
        struct cap_depacketizer *d = NULL;
        assert_int_equal(cap_depacketizer_new(&d, &cap_depay_h264, &params), cases[i].expect);
        cap_depacketizer_free(d);
    }
}

static void test_h264_reserved_types_are_ignored(void **state)
{
    (void)state;
    static const uint8_t types[] = {0, 30, 31};
    for (size_t i = 0; i < sizeof(types); i++) {
        struct stream s;
        open_stream(&s, "");
        assert_int_equal(push(&s, 0, false, IDR, sizeof(IDR)), 0);
        uint8_t payload[] = {types[i], 0x11, 0x22};
        assert_int_equal(push(&s, 0, true, payload, sizeof(payload)), 0);
        struct cap_frame f = pop(&s);
        assert_frame_bytes(&f, annex_b((struct nal[]){NAL(IDR)}, 1));
        assert_true(f.complete);
        close_stream(&s);
    }
}

static void test_h264_missing_marker_timestamp_change_ends_frame(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "");
    assert_int_equal(push(&s, 0, false, IDR, sizeof(IDR)), 0);
    assert_no_frame(&s);
    assert_int_equal(push(&s, 3000, true, P_SLICE, sizeof(P_SLICE)), 0);
    struct cap_frame f = pop(&s);
    assert_int_equal(f.timestamp, 0);
    assert_true(f.keyframe);
    assert_true(f.complete);
    assert_frame_bytes(&f, annex_b((struct nal[]){NAL(IDR)}, 1));
    f = pop(&s);
    assert_int_equal(f.timestamp, 3000);
    assert_false(f.keyframe);
    assert_frame_bytes(&f, annex_b((struct nal[]){NAL(P_SLICE)}, 1));
    close_stream(&s);
}

static void test_h264_inter_frame_before_keyframe_is_not_key(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "packetization-mode=1;sprop-parameter-sets=" SPROP_320X240);
    assert_int_equal(push(&s, 0, true, P_SLICE, sizeof(P_SLICE)), 0);
    struct cap_frame f = pop(&s);
    assert_false(f.keyframe);
    assert_true(f.complete);
    assert_int_equal(f.width, 0);
    assert_int_equal(f.height, 0);
    /* Parameter sets are prepended to IDR frames only. */
    assert_frame_bytes(&f, annex_b((struct nal[]){NAL(P_SLICE)}, 1));
    close_stream(&s);
}

static void test_h264_frame_missing_its_first_slice_is_incomplete(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "");
    /* The packet with first_mb_in_slice 0 never came; no loss was reported either. */
    assert_int_equal(push(&s, 0, true, P_SLICE_SECOND, sizeof(P_SLICE_SECOND)), 0);
    struct cap_frame f = pop(&s);
    assert_false(f.complete);
    close_stream(&s);
}

/* sprop-parameter-sets, however padded, go in front of an IDR that came without them. */
static void test_h264_idr_gets_sprop_parameter_sets(void **state)
{
    (void)state;
    static const char *const fmtps[] = {
        "profile-level-id=42c00d;packetization-mode=1;sprop-parameter-sets=" SPROP_320X240,
        "sprop-parameter-sets=Z0LADdkBQfsBEAAAAwAQAAADAyDxQqSA,aMuDyyA;packetization-mode=1",
        "packetization-mode=1; sprop-parameter-sets = Z0LADdkBQfsBEAAAAwAQAAADAyDxQqSA , aMuDyyA= ",
        /* an entry that is not base64 is skipped */
        "sprop-parameter-sets=Z0LADdkBQfsBEAAAAwAQAAADAyDxQqSA,!!!!,aMuDyyA=",
    };
    for (size_t i = 0; i < sizeof(fmtps) / sizeof(fmtps[0]); i++) {
        print_message("fmtp: %s\n", fmtps[i]);
        struct stream s;
        open_stream(&s, fmtps[i]);
        assert_int_equal(push(&s, 0, true, IDR, sizeof(IDR)), 0);
        struct cap_frame f = pop(&s);
        assert_true(f.keyframe);
        assert_frame_bytes(
            &f, annex_b((struct nal[]){NAL(SPS_320X240), NAL(PPS_320X240), NAL(IDR)}, 3));
        assert_int_equal(f.width, 320);
        assert_int_equal(f.height, 240);
        close_stream(&s);
    }
}

static void test_h264_sprop_padding_of_two(void **state)
{
    (void)state;
    static const uint8_t pps[] = {0x68, 0xce, 0x3c, 0x80}; /* "aM48gA==" */
    struct stream s;
    open_stream(&s, "sprop-parameter-sets=aM48gA==");
    assert_int_equal(push(&s, 0, true, IDR, sizeof(IDR)), 0);
    struct cap_frame f = pop(&s);
    assert_frame_bytes(&f, annex_b((struct nal[]){NAL(pps), NAL(IDR)}, 2));
    close_stream(&s);
}

static void test_h264_in_band_parameter_sets_override_sprop(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "packetization-mode=1;sprop-parameter-sets=" SPROP_320X240);
    struct nal units[] = {NAL(SPS_1920X1080), NAL(PPS_1920X1080), NAL(IDR)};
    assert_int_equal(push_bytes(&s, 0, true, stap_a(units, 3)), 0);
    struct cap_frame f = pop(&s);
    assert_frame_bytes(&f, annex_b(units, 3)); /* had its own: nothing added */
    assert_int_equal(f.width, 1920);
    assert_int_equal(f.height, 1080);

    assert_int_equal(push(&s, 3000, true, P_SLICE, sizeof(P_SLICE)), 0);
    pop(&s);
    assert_int_equal(push(&s, 6000, true, IDR, sizeof(IDR)), 0);
    f = pop(&s);
    assert_frame_bytes(&f, annex_b(units, 3));
    assert_int_equal(f.width, 1920);
    assert_int_equal(f.height, 1080);
    close_stream(&s);
}

static void test_h264_parameter_sets_alone_are_not_a_frame(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "");
    struct nal sets[] = {NAL(SPS_1920X1080), NAL(PPS_1920X1080)};
    assert_int_equal(push_bytes(&s, 0, true, stap_a(sets, 2)), 0);
    assert_no_frame(&s);
    assert_int_equal(push(&s, 3000, true, IDR, sizeof(IDR)), 0);
    struct cap_frame f = pop(&s);
    assert_frame_bytes(
        &f, annex_b((struct nal[]){NAL(SPS_1920X1080), NAL(PPS_1920X1080), NAL(IDR)}, 3));
    assert_int_equal(f.width, 1920);
    close_stream(&s);
}

static void test_h264_parameter_sets_go_after_access_unit_delimiter(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "sprop-parameter-sets=" SPROP_320X240);
    struct nal units[] = {NAL(AUD), NAL(IDR)};
    assert_int_equal(push_bytes(&s, 0, true, stap_a(units, 2)), 0);
    struct cap_frame f = pop(&s);
    assert_frame_bytes(
        &f, annex_b((struct nal[]){NAL(AUD), NAL(SPS_320X240), NAL(PPS_320X240), NAL(IDR)}, 4));
    close_stream(&s);
}

/* An IDR with its SPS but not its PPS gets the whole remembered set, in decoding order. */
static void test_h264_idr_missing_only_pps_gets_whole_set(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "sprop-parameter-sets=" SPROP_320X240);
    struct nal units[] = {NAL(SPS_1920X1080), NAL(IDR)};
    assert_int_equal(push_bytes(&s, 0, true, stap_a(units, 2)), 0);
    struct cap_frame f = pop(&s);
    assert_frame_bytes(&f, annex_b((struct nal[]){NAL(SPS_1920X1080), NAL(PPS_320X240),
                                                  NAL(SPS_1920X1080), NAL(IDR)},
                                   4));
    assert_int_equal(f.width, 1920);
    close_stream(&s);
}

/* rtph264pay config-interval=-1 repeats SPS/PPS before every IDR slice; between two slices
 * of one picture they would start a new access unit for a decoder. */
static void test_h264_parameter_sets_between_slices_move_before_them(void **state)
{
    (void)state;
    static const uint8_t sei[] = {0x06, 0x05, 0x01, 0x11, 0x80};
    static const uint8_t idr_second_slice[] = {0x65, 0x40, 0x12, 0x34};
    static const uint8_t pps_other[] = {0x68, 0x4b, 0x83, 0xcb, 0x20}; /* pps id 1 */
    struct stream s;
    open_stream(&s, "");
    struct nal first[] = {NAL(AUD), NAL(SPS_320X240), NAL(PPS_320X240), NAL(sei)};
    assert_int_equal(push_bytes(&s, 0, false, stap_a(first, 4)), 0);
    struct nal repeat_and_slice[] = {NAL(SPS_320X240), NAL(PPS_320X240), NAL(IDR)};
    assert_int_equal(push_bytes(&s, 0, false, stap_a(repeat_and_slice, 3)), 0);
    struct nal late[] = {NAL(SPS_320X240), NAL(PPS_320X240), NAL(pps_other)};
    assert_int_equal(push_bytes(&s, 0, false, stap_a(late, 3)), 0);
    assert_int_equal(push(&s, 0, true, idr_second_slice, sizeof(idr_second_slice)), 0);
    struct cap_frame f = pop(&s);
    /* Repeats after the first slice go; a set not seen before moves in front of it. */
    struct nal expected[] = {NAL(AUD),       NAL(SPS_320X240), NAL(PPS_320X240),
                             NAL(sei),       NAL(SPS_320X240), NAL(PPS_320X240),
                             NAL(pps_other), NAL(IDR),         NAL(idr_second_slice)};
    assert_frame_bytes(&f, annex_b(expected, sizeof(expected) / sizeof(expected[0])));
    assert_true(f.keyframe);
    assert_int_equal(f.width, 320);
    close_stream(&s);
}

static void test_h264_sps_picture_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        const uint8_t *sps;
        size_t len;
        uint16_t width, height;
    } cases[] = {
        {"baseline", SPS_320X240, sizeof(SPS_320X240), 320, 240},
        {"high, cropped", SPS_1920X1080, sizeof(SPS_1920X1080), 1920, 1080},
        {"high 4:4:4, cropped", SPS_1920X1080_444, sizeof(SPS_1920X1080_444), 1920, 1080},
        {"high 4:2:2, cropped", SPS_1920X1080_422, sizeof(SPS_1920X1080_422), 1920, 1080},
        {"interlaced", SPS_720X576_INTERLACED, sizeof(SPS_720X576_INTERLACED), 720, 576},
        {"scaling lists, poc type 1", SPS_1920X1080_SCALING, sizeof(SPS_1920X1080_SCALING), 1920,
         1080},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case: %s\n", cases[i].what);
        struct stream s;
        open_stream(&s, "");
        struct nal units[] = {{cases[i].sps, cases[i].len}, NAL(PPS_320X240), NAL(IDR)};
        assert_int_equal(push_bytes(&s, 0, true, stap_a(units, 3)), 0);
        struct cap_frame f = pop(&s);
        assert_true(f.keyframe);
        assert_int_equal(f.width, cases[i].width);
        assert_int_equal(f.height, cases[i].height);
        close_stream(&s);
    }
}

/* Every prefix of an SPS: no size until the last size field is in, never a crash. */
static void test_h264_truncated_sps_gives_no_size(void **state)
{
    (void)state;
    static const struct {
        const uint8_t *sps;
        size_t len;
        size_t sizes_from; /* the prefix length that holds the last size field (trace_headers) */
        uint16_t width, height;
    } cases[] = {
        {SPS_320X240, sizeof(SPS_320X240), 8, 320, 240},
        {SPS_1920X1080, sizeof(SPS_1920X1080), 11, 1920, 1080},
        {SPS_1920X1080_SCALING, sizeof(SPS_1920X1080_SCALING), 88, 1920, 1080},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t len = 1; len < cases[i].len; len++) {
            struct stream s;
            open_stream(&s, "");
            struct nal units[] = {{cases[i].sps, len}, NAL(PPS_320X240), NAL(IDR)};
            assert_int_equal(push_bytes(&s, 0, true, stap_a(units, 3)), 0);
            struct cap_frame f = pop(&s);
            assert_true(f.keyframe);
            if (len < cases[i].sizes_from) {
                assert_int_equal(f.width, 0);
                assert_int_equal(f.height, 0);
            } else {
                assert_int_equal(f.width, cases[i].width);
                assert_int_equal(f.height, cases[i].height);
            }
            close_stream(&s);
        }
    }
}

static void test_h264_malformed_sps_gives_no_size(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        uint8_t sps[12];
        size_t len;
    } cases[] = {
        {"exp-Golomb longer than 32 bits", {0x67, 0x42, 0xc0, 0x0d, 0, 0, 0, 0, 0, 0x80}, 10},
        {"chroma_format_idc past 3", {0x67, 0x64, 0x00, 0x28, 0x8a, 0xff, 0xff, 0xff}, 8},
        {"only the header", {0x67}, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case: %s\n", cases[i].what);
        struct stream s;
        open_stream(&s, "");
        struct nal units[] = {{cases[i].sps, cases[i].len}, NAL(PPS_320X240), NAL(IDR)};
        assert_int_equal(push_bytes(&s, 0, true, stap_a(units, 3)), 0);
        struct cap_frame f = pop(&s);
        assert_true(f.keyframe);
        assert_int_equal(f.width, 0);
        assert_int_equal(f.height, 0);
        close_stream(&s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h264_is_registered),
        cmocka_unit_test(test_h264_single_nal_unit_is_one_frame),
        cmocka_unit_test(test_h264_stap_a_with_sps_pps_idr),
        cmocka_unit_test(test_h264_fu_a_split_across_seven_packets),
        cmocka_unit_test(test_h264_fu_a_header_keeps_nri_of_indicator),
        cmocka_unit_test(test_h264_fu_a_start_and_end_in_one_packet),
        cmocka_unit_test(test_h264_fu_a_loss_keeps_what_came_before_the_gap),
        cmocka_unit_test(test_h264_fu_a_continuation_without_start_is_malformed),
        cmocka_unit_test(test_h264_fu_a_type_change_mid_unit_is_malformed),
        cmocka_unit_test(test_h264_stap_a_lying_sizes_add_nothing),
        cmocka_unit_test(test_h264_truncated_payloads_are_malformed),
        cmocka_unit_test(test_h264_interleaved_mode_types_are_refused),
        cmocka_unit_test(test_h264_packetization_modes),
        cmocka_unit_test(test_h264_reserved_types_are_ignored),
        cmocka_unit_test(test_h264_missing_marker_timestamp_change_ends_frame),
        cmocka_unit_test(test_h264_inter_frame_before_keyframe_is_not_key),
        cmocka_unit_test(test_h264_frame_missing_its_first_slice_is_incomplete),
        cmocka_unit_test(test_h264_idr_gets_sprop_parameter_sets),
        cmocka_unit_test(test_h264_sprop_padding_of_two),
        cmocka_unit_test(test_h264_in_band_parameter_sets_override_sprop),
        cmocka_unit_test(test_h264_parameter_sets_alone_are_not_a_frame),
        cmocka_unit_test(test_h264_parameter_sets_go_after_access_unit_delimiter),
        cmocka_unit_test(test_h264_idr_missing_only_pps_gets_whole_set),
        cmocka_unit_test(test_h264_parameter_sets_between_slices_move_before_them),
        cmocka_unit_test(test_h264_sps_picture_sizes),
        cmocka_unit_test(test_h264_truncated_sps_gives_no_size),
        cmocka_unit_test(test_h264_malformed_sps_gives_no_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
