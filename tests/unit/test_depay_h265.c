/* The H.265 depacketizer (RFC 7798) through the generic assembler: single NAL units,
 * aggregation packets, fragmentation units, loss and malformed payloads, refused PACI and
 * DONL, IRAP detection, VPS/SPS/PPS prepended from the stream or the fmtp, and picture
 * sizes from real encoders' SPS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "capstan/error.h"
#include "codec/depay.h"

extern const struct cap_depay_ops cap_depay_h265;

/* Parameter sets from x265 (ffmpeg -c:v libx265), as they appear on the wire. */
static const uint8_t VPS[] = {
    0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00,
    0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x78, 0x95, 0x98, 0x09,
};
static const uint8_t SPS_1920X1080[] = {
    0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
    0x00, 0x03, 0x00, 0x78, 0xa0, 0x03, 0xc0, 0x80, 0x10, 0xe5, 0x96, 0x56, 0x69, 0x24,
    0xca, 0xf0, 0x16, 0x80, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x0c, 0x84,
};
static const uint8_t PPS[] = {0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40};
static const uint8_t SPS_320X240[] = {
    0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
    0x00, 0x03, 0x00, 0x3c, 0xa0, 0x0a, 0x08, 0x0f, 0x16, 0x59, 0x59, 0xa4, 0x93, 0x2b,
    0xc0, 0x5a, 0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x32, 0x10,
};
/* coded 648x368, conformance window */
static const uint8_t SPS_642X362[] = {
    0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
    0x03, 0x00, 0x3f, 0xa0, 0x05, 0x12, 0x01, 0x71, 0xc9, 0x26, 0x59, 0x59, 0xa4, 0x93, 0x2b,
    0xc0, 0x5a, 0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x32, 0x10,
};
/* Main 4:2:2 10, chroma_format_idc 2 */
static const uint8_t SPS_1920X1080_422[] = {
    0x42, 0x01, 0x01, 0x04, 0x08, 0x00, 0x00, 0x03, 0x00, 0x9d, 0x08, 0x00, 0x00, 0x03, 0x00,
    0x00, 0x78, 0xb0, 0x03, 0xc0, 0x80, 0x10, 0xe4, 0xd9, 0x65, 0x66, 0x92, 0x4c, 0xaf, 0x01,
    0x68, 0x08, 0x00, 0x00, 0x03, 0x00, 0x08, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x40,
};
/* sps_max_sub_layers_minus1 1 */
static const uint8_t SPS_1280X720_SUBLAYERS[] = {
    0x42, 0x01, 0x02, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03,
    0x00, 0x5d, 0x00, 0x00, 0xa0, 0x02, 0x80, 0x80, 0x2d, 0x16, 0x59, 0x59, 0x8a, 0xcd, 0x24, 0x99,
    0x5e, 0x02, 0xd0, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x01, 0x90, 0x80,
};
#define SPROP_VPS "QAEMAf//AWAAAAMAkAAAAwAAAwB4lZgJ"
#define SPROP_SPS_1920X1080 "QgEBAWAAAAMAkAAAAwAAAwB4oAPAgBDlllZpJMrwFoCAAAADAIAAAAyE"
#define SPROP_PPS "RAHBcrRiQA=="
#define SPROP_SPS_422 "QgEBBAgAAAMAnQgAAAMAAHiwA8CAEOTZZWaSTK8BaAgAAAMACAAAAwDIQA=="

/* Slice segments: the top bit after the header is first_slice_segment_in_pic_flag. */
static const uint8_t IDR[] = {0x26, 0x01, 0xaf, 0x08, 0x40, 0x11, 0x22}; /* IDR_W_RADL */
static const uint8_t TRAIL[] = {0x02, 0x01, 0xd0, 0x02, 0x03};           /* TRAIL_R */
static const uint8_t TRAIL_SECOND[] = {0x02, 0x01, 0x40, 0x02};          /* not the first */
static const uint8_t AUD[] = {0x46, 0x01, 0x50};

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

/* An aggregation packet (type 48) of the given units. */
static struct bytes aggregation(const struct nal *nals, size_t count)
{
    struct bytes b = {.len = 0};
    put(&b, (const uint8_t[]){48 << 1, 0x01}, 2);
    for (size_t i = 0; i < count; i++) {
        put_byte(&b, (uint8_t)(nals[i].len >> 8));
        put_byte(&b, (uint8_t)nals[i].len);
        put(&b, nals[i].data, nals[i].len);
    }
    return b;
}

static struct bytes annex_b(const struct nal *nals, size_t count)
{
    struct bytes b = {.len = 0};
    for (size_t i = 0; i < count; i++) {
        put(&b, (const uint8_t[]){0, 0, 0, 1}, 4);
        put(&b, nals[i].data, nals[i].len);
    }
    return b;
}

/* One fragmentation unit of the NAL unit whose 2-byte header is `header`. */
static struct bytes fragment(const uint8_t *header, bool start, bool end, const uint8_t *data,
                             size_t len)
{
    struct bytes b = {.len = 0};
    put_byte(&b, (uint8_t)((header[0] & 0x81) | (49 << 1)));
    put_byte(&b, header[1]);
    put_byte(&b, (uint8_t)((start ? 0x80 : 0) | (end ? 0x40 : 0) | ((header[0] >> 1) & 0x3F)));
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
    s->next_seq = 65530; /* wraps during the longer tests */
    assert_int_equal(cap_depacketizer_new(&s->d, cap_depay_find("h265"), &params), 0);
}

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

static void test_h265_is_registered(void **state)
{
    (void)state;
    assert_ptr_equal(cap_depay_find("h265"), &cap_depay_h265);
}

static void test_h265_single_nal_unit_is_one_frame(void **state)
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
    assert_int_equal(f.width, 0);
    close_stream(&s);
}

static void test_h265_aggregation_with_vps_sps_pps_idr(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "");
    struct nal units[] = {NAL(VPS), NAL(SPS_1920X1080), NAL(PPS), NAL(IDR)};
    assert_int_equal(push_bytes(&s, 0, true, aggregation(units, 4)), 0);
    struct cap_frame f = pop(&s);
    assert_frame_bytes(&f, annex_b(units, 4));
    assert_true(f.keyframe);
    assert_true(f.complete);
    assert_int_equal(f.width, 1920);
    assert_int_equal(f.height, 1080);
    close_stream(&s);
}

static void test_h265_fragments_across_seven_packets(void **state)
{
    (void)state;
    uint8_t idr[3002];
    memcpy(idr, IDR, 3);
    for (size_t i = 3; i < sizeof(idr); i++)
        idr[i] = (uint8_t)(i * 13 + 5);
    static const size_t cuts[] = {2, 500, 900, 1400, 2000, 2001, 2600, sizeof(idr)};
    struct stream s;
    open_stream(&s, "");
    for (size_t i = 0; i + 1 < sizeof(cuts) / sizeof(cuts[0]); i++) {
        bool first = i == 0, last = i + 2 == sizeof(cuts) / sizeof(cuts[0]);
        struct bytes frag = fragment(idr, first, last, idr + cuts[i], cuts[i + 1] - cuts[i]);
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

static void test_h265_fragment_header_keeps_layer_and_tid(void **state)
{
    (void)state;
    /* F 0, type 1, layer id 1, TID 3 */
    static const uint8_t slice[] = {0x02 | 0x00, 0x0b, 0xd0, 0x44, 0x55};
    struct stream s;
    open_stream(&s, "");
    assert_int_equal(push_bytes(&s, 0, false, fragment(slice, true, false, slice + 2, 2)), 0);
    assert_int_equal(push_bytes(&s, 0, true, fragment(slice, false, true, slice + 4, 1)), 0);
    struct cap_frame f = pop(&s);
    assert_frame_bytes(&f, annex_b((struct nal[]){NAL(slice)}, 1));
    close_stream(&s);
}

static void test_h265_fragment_loss_keeps_what_came_before_the_gap(void **state)
{
    (void)state;
    static const uint8_t body[] = {0xaf, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    struct stream s;
    open_stream(&s, "");
    assert_int_equal(push_bytes(&s, 0, false, fragment(IDR, true, false, body, 3)), 0);
    assert_int_equal(push_bytes(&s, 0, false, fragment(IDR, false, false, body + 3, 2)), 0);
    struct bytes after_gap = fragment(IDR, false, false, body + 7, 2); /* body[5..7] lost */
    assert_int_equal(push_lost(&s, 1, 0, false, after_gap.data, after_gap.len), 0);
    assert_int_equal(push_bytes(&s, 0, true, fragment(IDR, false, true, body + 9, 1)), 0);
    struct cap_frame f = pop(&s);
    static const uint8_t prefix[] = {0x26, 0x01, 0xaf, 1, 2, 3, 4};
    assert_frame_bytes(&f, annex_b((struct nal[]){NAL(prefix)}, 1));
    assert_false(f.complete);
    assert_int_equal(cap_depacketizer_stats(s.d)->malformed_packets, 0);
    close_stream(&s);
}

static void test_h265_fragment_without_start_is_malformed(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "");
    assert_int_equal(push_bytes(&s, 0, false, fragment(IDR, false, false, IDR + 2, 2)),
                     CAP_EFORMAT);
    assert_int_equal(push_bytes(&s, 0, true, fragment(IDR, false, true, IDR + 4, 2)), 0);
    assert_no_frame(&s);
    assert_int_equal(cap_depacketizer_stats(s.d)->malformed_packets, 1);
    assert_int_equal(cap_depacketizer_stats(s.d)->incomplete_frames, 1);
    close_stream(&s);
}

static void test_h265_aggregation_lying_sizes_add_nothing(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        uint8_t payload[16];
        size_t len;
    } cases[] = {
        {"size past the end", {0x60, 0x01, 0x00, 0x05, 0x02, 0x01, 0xd0}, 7},
        {"second size past the end",
         {0x60, 0x01, 0x00, 0x03, 0x02, 0x01, 0xd0, 0x00, 0x09, 0x02},
         10},
        {"zero size", {0x60, 0x01, 0x00, 0x00, 0x00, 0x03, 0x02, 0x01, 0xd0}, 9},
        {"unit shorter than a NAL header", {0x60, 0x01, 0x00, 0x01, 0x02}, 5},
        {"half a size at the end", {0x60, 0x01, 0x00, 0x03, 0x02, 0x01, 0xd0, 0x00}, 8},
        {"no units", {0x60, 0x01}, 2},
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

static void test_h265_malformed_and_unsupported_payloads(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        uint8_t payload[8];
        size_t len;
    } cases[] = {
        {"half a NAL header", {0x26}, 1},
        {"FU without FU header", {0x62, 0x01}, 2},
        {"FU of an aggregation packet", {0x62, 0x01, 0x80 | 48, 0x00}, 4},
        {"FU of an FU", {0x62, 0x01, 0xc0 | 49, 0x00}, 4},
        {"PACI", {0x64, 0x01, 0x26, 0x00, 0x26, 0x01, 0xaf}, 7},
        {"TID 0", {0x26, 0x00, 0xaf, 0x08}, 4},
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

static void test_h265_unspecified_types_are_ignored(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "");
    assert_int_equal(push(&s, 0, false, IDR, sizeof(IDR)), 0);
    static const uint8_t unspecified[] = {51 << 1, 0x01, 0x22};
    assert_int_equal(push(&s, 0, true, unspecified, sizeof(unspecified)), 0);
    struct cap_frame f = pop(&s);
    assert_frame_bytes(&f, annex_b((struct nal[]){NAL(IDR)}, 1));
    assert_true(f.complete);
    close_stream(&s);
}

static void test_h265_don_is_refused(void **state)
{
    (void)state;
    static const struct {
        const char *fmtp;
        int expect;
    } cases[] = {
        {"", 0},
        {"sprop-max-don-diff=0", 0},
        {"profile-id=1; sprop-max-don-diff=2", CAP_EUNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cap_codec_params params = {.clock_rate = 90000, .fmtp = cases[i].fmtp};
        struct cap_depacketizer *d = NULL;
        assert_int_equal(cap_depacketizer_new(&d, &cap_depay_h265, &params), cases[i].expect);
        cap_depacketizer_free(d);
    }
}

static void test_h265_missing_marker_timestamp_change_ends_frame(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "");
    assert_int_equal(push(&s, 0, false, IDR, sizeof(IDR)), 0);
    assert_no_frame(&s);
    assert_int_equal(push(&s, 3000, true, TRAIL, sizeof(TRAIL)), 0);
    struct cap_frame f = pop(&s);
    assert_int_equal(f.timestamp, 0);
    assert_true(f.keyframe);
    assert_true(f.complete);
    f = pop(&s);
    assert_int_equal(f.timestamp, 3000);
    assert_false(f.keyframe);
    assert_frame_bytes(&f, annex_b((struct nal[]){NAL(TRAIL)}, 1));
    close_stream(&s);
}

static void test_h265_frame_missing_its_first_slice_is_incomplete(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "");
    assert_int_equal(push(&s, 0, true, TRAIL_SECOND, sizeof(TRAIL_SECOND)), 0);
    assert_false(pop(&s).complete);
    close_stream(&s);
}

/* Keyframe means an IRAP picture: BLA, IDR, CRA (types 16..23). */
static void test_h265_irap_types_are_keyframes(void **state)
{
    (void)state;
    for (unsigned type = 0; type <= 31; type++) {
        struct stream s;
        open_stream(&s, "");
        uint8_t slice[] = {(uint8_t)(type << 1), 0x01, 0x80, 0x11};
        assert_int_equal(push(&s, 0, true, slice, sizeof(slice)), 0);
        struct cap_frame f = pop(&s);
        assert_int_equal(f.keyframe, type >= 16 && type <= 23);
        close_stream(&s);
    }
}

static void test_h265_inter_frame_before_keyframe_is_not_key(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s,
                "sprop-vps=" SPROP_VPS ";sprop-sps=" SPROP_SPS_1920X1080 ";sprop-pps=" SPROP_PPS);
    assert_int_equal(push(&s, 0, true, TRAIL, sizeof(TRAIL)), 0);
    struct cap_frame f = pop(&s);
    assert_false(f.keyframe);
    assert_int_equal(f.width, 0);
    assert_frame_bytes(&f, annex_b((struct nal[]){NAL(TRAIL)}, 1));
    close_stream(&s);
}

static void test_h265_irap_gets_sprop_parameter_sets(void **state)
{
    (void)state;
    static const char *const fmtps[] = {
        "profile-id=1;sprop-vps=" SPROP_VPS ";sprop-sps=" SPROP_SPS_1920X1080
        ";sprop-pps=" SPROP_PPS,
        /* order in the fmtp does not matter, decoding order does */
        "sprop-pps=" SPROP_PPS "; sprop-sps=" SPROP_SPS_1920X1080 "; sprop-vps=" SPROP_VPS,
        /* padding left out */
        "sprop-vps=" SPROP_VPS ";sprop-sps=" SPROP_SPS_1920X1080 ";sprop-pps=RAHBcrRiQA",
    };
    for (size_t i = 0; i < sizeof(fmtps) / sizeof(fmtps[0]); i++) {
        print_message("fmtp: %s\n", fmtps[i]);
        struct stream s;
        open_stream(&s, fmtps[i]);
        assert_int_equal(push(&s, 0, true, IDR, sizeof(IDR)), 0);
        struct cap_frame f = pop(&s);
        assert_true(f.keyframe);
        assert_frame_bytes(
            &f, annex_b((struct nal[]){NAL(VPS), NAL(SPS_1920X1080), NAL(PPS), NAL(IDR)}, 4));
        assert_int_equal(f.width, 1920);
        assert_int_equal(f.height, 1080);
        close_stream(&s);
    }
}

static void test_h265_in_band_parameter_sets_override_sprop(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "sprop-vps=" SPROP_VPS ";sprop-sps=" SPROP_SPS_422 ";sprop-pps=" SPROP_PPS);
    struct nal units[] = {NAL(VPS), NAL(SPS_320X240), NAL(PPS), NAL(IDR)};
    assert_int_equal(push_bytes(&s, 0, true, aggregation(units, 4)), 0);
    struct cap_frame f = pop(&s);
    assert_frame_bytes(&f, annex_b(units, 4));
    assert_int_equal(f.width, 320);

    assert_int_equal(push(&s, 3000, true, TRAIL, sizeof(TRAIL)), 0);
    pop(&s);
    assert_int_equal(push(&s, 6000, true, IDR, sizeof(IDR)), 0);
    f = pop(&s);
    assert_frame_bytes(&f, annex_b(units, 4));
    assert_int_equal(f.width, 320);
    assert_int_equal(f.height, 240);
    close_stream(&s);
}

static void test_h265_parameter_sets_alone_are_not_a_frame(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "");
    struct nal sets[] = {NAL(VPS), NAL(SPS_1920X1080), NAL(PPS)};
    assert_int_equal(push_bytes(&s, 0, true, aggregation(sets, 3)), 0);
    assert_no_frame(&s);
    static const uint8_t cra[] = {21 << 1, 0x01, 0xaf, 0x10};
    assert_int_equal(push(&s, 3000, true, cra, sizeof(cra)), 0);
    struct cap_frame f = pop(&s);
    assert_true(f.keyframe);
    assert_frame_bytes(
        &f, annex_b((struct nal[]){NAL(VPS), NAL(SPS_1920X1080), NAL(PPS), NAL(cra)}, 4));
    close_stream(&s);
}

static void test_h265_parameter_sets_go_after_access_unit_delimiter(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s,
                "sprop-vps=" SPROP_VPS ";sprop-sps=" SPROP_SPS_1920X1080 ";sprop-pps=" SPROP_PPS);
    assert_int_equal(push(&s, 0, false, AUD, sizeof(AUD)), 0);
    assert_int_equal(push(&s, 0, true, IDR, sizeof(IDR)), 0);
    struct cap_frame f = pop(&s);
    assert_frame_bytes(
        &f, annex_b((struct nal[]){NAL(AUD), NAL(VPS), NAL(SPS_1920X1080), NAL(PPS), NAL(IDR)}, 5));
    close_stream(&s);
}

/* An IRAP picture with its SPS and PPS but not its VPS gets the whole remembered set. */
static void test_h265_irap_missing_only_vps_gets_whole_set(void **state)
{
    (void)state;
    struct stream s;
    open_stream(&s, "sprop-vps=" SPROP_VPS);
    struct nal units[] = {NAL(SPS_320X240), NAL(PPS), NAL(IDR)};
    assert_int_equal(push_bytes(&s, 0, true, aggregation(units, 3)), 0);
    struct cap_frame f = pop(&s);
    assert_frame_bytes(&f, annex_b((struct nal[]){NAL(VPS), NAL(SPS_320X240), NAL(PPS),
                                                  NAL(SPS_320X240), NAL(PPS), NAL(IDR)},
                                   6));
    assert_int_equal(f.width, 320);
    close_stream(&s);
}

/* rtph265pay config-interval=-1 repeats VPS/SPS/PPS before every IRAP slice segment;
 * between two slices of one picture they would start a new access unit for a decoder. */
static void test_h265_parameter_sets_between_slices_move_before_them(void **state)
{
    (void)state;
    static const uint8_t idr_second_slice[] = {0x26, 0x01, 0x40, 0x12, 0x34};
    static const uint8_t pps_other[] = {0x44, 0x01, 0x41, 0x72, 0xb4, 0x62, 0x40}; /* id 1 */
    struct stream s;
    open_stream(&s, "");
    struct nal first[] = {NAL(VPS), NAL(SPS_320X240), NAL(PPS), NAL(IDR)};
    assert_int_equal(push_bytes(&s, 0, false, aggregation(first, 4)), 0);
    struct nal late[] = {NAL(VPS), NAL(SPS_320X240), NAL(PPS), NAL(pps_other)};
    assert_int_equal(push_bytes(&s, 0, false, aggregation(late, 4)), 0);
    assert_int_equal(push(&s, 0, true, idr_second_slice, sizeof(idr_second_slice)), 0);
    struct cap_frame f = pop(&s);
    struct nal expected[] = {NAL(VPS),       NAL(SPS_320X240), NAL(PPS),
                             NAL(pps_other), NAL(IDR),         NAL(idr_second_slice)};
    assert_frame_bytes(&f, annex_b(expected, sizeof(expected) / sizeof(expected[0])));
    assert_true(f.keyframe);
    assert_int_equal(f.width, 320);
    close_stream(&s);
}

static void test_h265_sps_picture_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        const uint8_t *sps;
        size_t len;
        uint16_t width, height;
    } cases[] = {
        {"main 1080p", SPS_1920X1080, sizeof(SPS_1920X1080), 1920, 1080},
        {"main 240p", SPS_320X240, sizeof(SPS_320X240), 320, 240},
        {"conformance window", SPS_642X362, sizeof(SPS_642X362), 642, 362},
        {"4:2:2 10-bit", SPS_1920X1080_422, sizeof(SPS_1920X1080_422), 1920, 1080},
        {"two sub-layers", SPS_1280X720_SUBLAYERS, sizeof(SPS_1280X720_SUBLAYERS), 1280, 720},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case: %s\n", cases[i].what);
        struct stream s;
        open_stream(&s, "");
        struct nal units[] = {NAL(VPS), {cases[i].sps, cases[i].len}, NAL(PPS), NAL(IDR)};
        assert_int_equal(push_bytes(&s, 0, true, aggregation(units, 4)), 0);
        struct cap_frame f = pop(&s);
        assert_true(f.keyframe);
        assert_int_equal(f.width, cases[i].width);
        assert_int_equal(f.height, cases[i].height);
        close_stream(&s);
    }
}

/* Every prefix of an SPS: no size until the last size field is in, never a crash. */
static void test_h265_truncated_sps_gives_no_size(void **state)
{
    (void)state;
    static const struct {
        const uint8_t *sps;
        size_t len;
        size_t sizes_from; /* the prefix length that holds the last size field (trace_headers) */
        uint16_t width, height;
    } cases[] = {
        {SPS_1920X1080, sizeof(SPS_1920X1080), 24, 1920, 1080},
        {SPS_642X362, sizeof(SPS_642X362), 25, 642, 362},
        {SPS_1280X720_SUBLAYERS, sizeof(SPS_1280X720_SUBLAYERS), 26, 1280, 720},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t len = 2; len < cases[i].len; len++) {
            struct stream s;
            open_stream(&s, "");
            struct nal units[] = {NAL(VPS), {cases[i].sps, len}, NAL(PPS), NAL(IDR)};
            assert_int_equal(push_bytes(&s, 0, true, aggregation(units, 4)), 0);
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

static void test_h265_malformed_sps_gives_no_size(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        uint8_t sps[24];
        size_t len;
    } cases[] = {
        {"seven sub-layers and nothing after", {0x42, 0x01, 0x0e}, 3},
        {"sps id past 15",
         {0x42, 0x01, 0x01, 0x01, 0x60, 0, 0, 3, 0, 0x90, 0, 0, 3, 0, 0, 3, 0, 0x78, 0x04, 0x10},
         20},
        {"zero width",
         {0x42, 0x01, 0x01, 0x01, 0x60, 0, 0, 3, 0, 0x90, 0, 0, 3, 0, 0, 3, 0, 0x78, 0xa8, 0xff},
         20},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case: %s\n", cases[i].what);
        struct stream s;
        open_stream(&s, "");
        struct nal units[] = {NAL(VPS), {cases[i].sps, cases[i].len}, NAL(PPS), NAL(IDR)};
        assert_int_equal(push_bytes(&s, 0, true, aggregation(units, 4)), 0);
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
        cmocka_unit_test(test_h265_is_registered),
        cmocka_unit_test(test_h265_single_nal_unit_is_one_frame),
        cmocka_unit_test(test_h265_aggregation_with_vps_sps_pps_idr),
        cmocka_unit_test(test_h265_fragments_across_seven_packets),
        cmocka_unit_test(test_h265_fragment_header_keeps_layer_and_tid),
        cmocka_unit_test(test_h265_fragment_loss_keeps_what_came_before_the_gap),
        cmocka_unit_test(test_h265_fragment_without_start_is_malformed),
        cmocka_unit_test(test_h265_aggregation_lying_sizes_add_nothing),
        cmocka_unit_test(test_h265_malformed_and_unsupported_payloads),
        cmocka_unit_test(test_h265_unspecified_types_are_ignored),
        cmocka_unit_test(test_h265_don_is_refused),
        cmocka_unit_test(test_h265_missing_marker_timestamp_change_ends_frame),
        cmocka_unit_test(test_h265_frame_missing_its_first_slice_is_incomplete),
        cmocka_unit_test(test_h265_irap_types_are_keyframes),
        cmocka_unit_test(test_h265_inter_frame_before_keyframe_is_not_key),
        cmocka_unit_test(test_h265_irap_gets_sprop_parameter_sets),
        cmocka_unit_test(test_h265_in_band_parameter_sets_override_sprop),
        cmocka_unit_test(test_h265_parameter_sets_alone_are_not_a_frame),
        cmocka_unit_test(test_h265_parameter_sets_go_after_access_unit_delimiter),
        cmocka_unit_test(test_h265_irap_missing_only_vps_gets_whole_set),
        cmocka_unit_test(test_h265_parameter_sets_between_slices_move_before_them),
        cmocka_unit_test(test_h265_sps_picture_sizes),
        cmocka_unit_test(test_h265_truncated_sps_gives_no_size),
        cmocka_unit_test(test_h265_malformed_sps_gives_no_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
