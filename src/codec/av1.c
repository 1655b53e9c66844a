/* AV1 depacketizer (RTP Payload Format for AV1, aomediacodec.github.io/av1-rtp-spec): OBU
 * elements in, temporal units out in the low overhead bitstream format (AV1 §5.2: every OBU
 * carries obu_size, each temporal unit starts with one temporal delimiter). OBUs split over
 * packets are reassembled here; the sequence header and frame headers are read just far
 * enough to tell key frames and the coded size. */
#include "codec/depay.h"

#include "capstan/error.h"

#include <string.h>

/* Aggregation header (spec §4.4). */
#define AGG_Z 0x80 /* the first element continues an OBU from the previous packet */
#define AGG_Y 0x40 /* the last element continues in the next packet */
#define AGG_W_SHIFT 4
#define AGG_W_MASK 0x3

/* OBU header (AV1 §5.3.2). */
#define OBU_FORBIDDEN 0x80
#define OBU_EXTENSION 0x04
#define OBU_HAS_SIZE 0x02
#define OBU_TYPE(header) (((header) >> 3) & 0xf)

enum {
    OBU_SEQUENCE_HEADER = 1,
    OBU_TEMPORAL_DELIMITER = 2,
    OBU_FRAME_HEADER = 3,
    OBU_FRAME = 6,
    OBU_TILE_LIST = 8,
};

#define LEB128_BYTES_MAX 8

struct av1 {
    struct cap_buf fragment; /* the start of an OBU the next packet continues */
    bool fragment_open;      /* fragment is waiting for its continuation */
    bool prev_y;             /* the previous packet in sequence set Y */
    bool have_seq;
    uint16_t last_seq;
    bool reduced_still_picture_header; /* from the last sequence header seen */
};

/* Reads a LEB128 value (AV1 §4.10.5): at most 8 bytes, at most 2^32 - 1. Returns the bytes
 * it took, or 0 if the field is cut short, too long or too large. */
static size_t read_leb128(const uint8_t *p, size_t len, uint64_t *out)
{
    uint64_t value = 0;
    for (size_t i = 0; i < LEB128_BYTES_MAX && i < len; i++) {
        value |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            if (value > UINT32_MAX)
                return 0;
            *out = value;
            return i + 1;
        }
    }
    return 0;
}

static int append_leb128(struct cap_buf *buf, uint64_t value)
{
    uint8_t bytes[LEB128_BYTES_MAX];
    size_t n = 0;
    do {
        bytes[n] = value & 0x7f;
        value >>= 7;
        if (value)
            bytes[n] |= 0x80;
        n++;
    } while (value && n < LEB128_BYTES_MAX);
    return cap_buf_append(buf, bytes, n);
}

/* Appends one whole OBU as it came in an RTP element, rewritten with obu_size. Temporal
 * delimiters and tile lists are dropped, as the RTP spec tells receivers to. */
static int append_obu(struct cap_buf *frame, const uint8_t *obu, size_t len)
{
    if (len < 1 || (obu[0] & OBU_FORBIDDEN))
        return CAP_EFORMAT;
    size_t header_len = obu[0] & OBU_EXTENSION ? 2 : 1;
    if (len < header_len)
        return CAP_EFORMAT;
    const uint8_t *payload = obu + header_len;
    size_t payload_len = len - header_len;
    if (obu[0] & OBU_HAS_SIZE) {
        /* Allowed but unusual in RTP; the size it states must be what the element holds. */
        uint64_t size;
        size_t n = read_leb128(payload, payload_len, &size);
        if (n == 0 || size != payload_len - n)
            return CAP_EFORMAT;
        payload += n;
        payload_len -= n;
    }
    unsigned type = OBU_TYPE(obu[0]);
    if (type == OBU_TEMPORAL_DELIMITER || type == OBU_TILE_LIST)
        return 0;
    int err = cap_buf_append_byte(frame, obu[0] | OBU_HAS_SIZE);
    if (!err && header_len == 2)
        err = cap_buf_append_byte(frame, obu[1]);
    if (!err)
        err = append_leb128(frame, payload_len);
    if (!err)
        err = cap_buf_append(frame, payload, payload_len);
    return err;
}

/* One OBU element. continues: it is the rest of the open fragment; continued: the next
 * packet carries more of it. */
static int take_element(struct av1 *av1, struct cap_buf *frame, const uint8_t *element, size_t len,
                        bool continues, bool continued, bool orphan_is_error)
{
    if (continues && !av1->fragment_open) {
        /* Nothing to continue. After loss (or at the first packet we see) the start is
         * simply gone, which the assembler already knows; otherwise the sender broke the
         * Y/Z chain. */
        return orphan_is_error ? CAP_EFORMAT : 0;
    }
    if (continues || continued) {
        if (!continues)
            cap_buf_reset(&av1->fragment);
        int err = cap_buf_append(&av1->fragment, element, len);
        if (err) {
            av1->fragment_open = false;
            return err;
        }
        av1->fragment_open = continued;
        if (continued)
            return 0;
        return append_obu(frame, av1->fragment.data, av1->fragment.len);
    }
    return append_obu(frame, element, len);
}

static int av1_packet(void *priv, const struct cap_rtp_packet *pkt, struct cap_buf *frame,
                      struct cap_depay_packet_info *info)
{
    struct av1 *av1 = priv;
    const uint8_t *p = pkt->payload;
    size_t len = pkt->payload_len;

    /* The assembler does not tell codecs about loss inside a frame, so continuity of the
     * fragment chain is judged from sequence numbers here. */
    bool follows = av1->have_seq && (uint16_t)(pkt->sequence - av1->last_seq) == 1;
    bool prev_y = av1->prev_y;
    av1->have_seq = true;
    av1->last_seq = pkt->sequence;
    av1->prev_y = false;
    if (!follows)
        av1->fragment_open = false;

    if (len < 2)
        return CAP_EFORMAT; /* an aggregation header and at least one byte of OBU */
    bool z = p[0] & AGG_Z, y = p[0] & AGG_Y;
    unsigned w = (p[0] >> AGG_W_SHIFT) & AGG_W_MASK;
    av1->prev_y = y;
    if (av1->fragment_open && !z) {
        av1->fragment_open = false;
        return CAP_EFORMAT; /* Y promised a continuation that did not come */
    }
    if (y && pkt->marker)
        return CAP_EFORMAT; /* the temporal unit cannot end inside an OBU */
    /* N (a new coded video sequence starts) is not needed: key frames are read from the
     * bitstream itself. */
    info->starts_frame = !z;
    info->ends_frame = pkt->marker;

    size_t pos = 1;
    for (unsigned i = 0; pos < len; i++) {
        size_t element_len;
        if (w != 0 && i == w - 1) {
            element_len = len - pos; /* the last of W elements has no length field */
        } else {
            uint64_t value;
            size_t n = read_leb128(p + pos, len - pos, &value);
            if (n == 0 || value > len - pos - n)
                return CAP_EFORMAT;
            pos += n;
            element_len = (size_t)value;
        }
        if (element_len == 0)
            return CAP_EFORMAT;
        const uint8_t *element = p + pos;
        pos += element_len;
        bool last = pos == len;
        if (w != 0 && last && i != w - 1)
            return CAP_EFORMAT; /* fewer elements than W says */
        int err = take_element(av1, frame, element, element_len, i == 0 && z, last && y,
                               follows && !prev_y);
        if (err)
            return err;
    }
    return 0;
}

/* ---- reading the few header fields finish needs ---- */

struct bits {
    const uint8_t *data;
    size_t len;   /* bytes */
    size_t pos;   /* bits read */
    bool overrun; /* a read went past the end; values read since are 0 */
};

static uint32_t read_bits(struct bits *b, unsigned n)
{
    uint32_t value = 0;
    for (unsigned i = 0; i < n; i++) {
        if (b->pos >= b->len * 8) {
            b->overrun = true;
            return 0;
        }
        value = value << 1 | ((b->data[b->pos / 8] >> (7 - b->pos % 8)) & 1);
        b->pos++;
    }
    return value;
}

/* uvlc() (AV1 §4.10.3); only skipped, so the value is not assembled. */
static void skip_uvlc(struct bits *b)
{
    unsigned leading_zeros = 0;
    while (!b->overrun && !read_bits(b, 1))
        leading_zeros++;
    if (leading_zeros < 32)
        read_bits(b, leading_zeros);
}

struct sequence_header {
    bool reduced_still_picture_header;
    uint32_t max_width, max_height;
};

/* sequence_header_obu() (AV1 §5.5) up to max_frame_height_minus_1. */
static bool parse_sequence_header(const uint8_t *p, size_t len, struct sequence_header *out)
{
    struct bits b = {.data = p, .len = len};
    read_bits(&b, 3); /* seq_profile */
    read_bits(&b, 1); /* still_picture */
    out->reduced_still_picture_header = read_bits(&b, 1);
    if (out->reduced_still_picture_header) {
        read_bits(&b, 5); /* seq_level_idx[0] */
    } else {
        bool decoder_model_info_present = false;
        unsigned buffer_delay_length = 0;
        if (read_bits(&b, 1)) {   /* timing_info_present_flag */
            read_bits(&b, 32);    /* num_units_in_display_tick */
            read_bits(&b, 32);    /* time_scale */
            if (read_bits(&b, 1)) /* equal_picture_interval */
                skip_uvlc(&b);    /* num_ticks_per_picture_minus_1 */
            decoder_model_info_present = read_bits(&b, 1);
            if (decoder_model_info_present) {
                buffer_delay_length = read_bits(&b, 5) + 1;
                read_bits(&b, 32); /* num_units_in_decoding_tick */
                read_bits(&b, 5);  /* buffer_removal_time_length_minus_1 */
                read_bits(&b, 5);  /* frame_presentation_time_length_minus_1 */
            }
        }
        bool initial_display_delay_present = read_bits(&b, 1);
        unsigned operating_points = read_bits(&b, 5) + 1;
        for (unsigned i = 0; i < operating_points && !b.overrun; i++) {
            read_bits(&b, 12);        /* operating_point_idc */
            if (read_bits(&b, 5) > 7) /* seq_level_idx */
                read_bits(&b, 1);     /* seq_tier */
            if (decoder_model_info_present && read_bits(&b, 1)) {
                read_bits(&b, buffer_delay_length); /* decoder_buffer_delay */
                read_bits(&b, buffer_delay_length); /* encoder_buffer_delay */
                read_bits(&b, 1);                   /* low_delay_mode_flag */
            }
            if (initial_display_delay_present && read_bits(&b, 1))
                read_bits(&b, 4); /* initial_display_delay_minus_1 */
        }
    }
    unsigned width_bits = read_bits(&b, 4) + 1;
    unsigned height_bits = read_bits(&b, 4) + 1;
    out->max_width = read_bits(&b, width_bits) + 1;
    out->max_height = read_bits(&b, height_bits) + 1;
    return !b.overrun;
}

/* The start of uncompressed_header() (AV1 §5.9.2): a key frame that is not merely shown
 * again (show_existing_frame). */
static bool is_key_frame(const uint8_t *p, size_t len, bool reduced_still_picture_header)
{
    if (reduced_still_picture_header)
        return true; /* such streams hold only key frames */
    struct bits b = {.data = p, .len = len};
    if (read_bits(&b, 1)) /* show_existing_frame */
        return false;
    return read_bits(&b, 2) == 0 && !b.overrun; /* frame_type == KEY_FRAME */
}

/* Walks the assembled temporal unit (our own output, every OBU sized) for a sequence
 * header and a key frame. */
static void inspect_temporal_unit(struct av1 *av1, const struct cap_buf *frame,
                                  struct cap_frame *out)
{
    bool sequence_header = false, key_frame = false;
    size_t pos = 0;
    while (pos < frame->len) {
        uint8_t header = frame->data[pos];
        size_t header_len = header & OBU_EXTENSION ? 2 : 1;
        uint64_t size;
        size_t n =
            header_len <= frame->len - pos
                ? read_leb128(frame->data + pos + header_len, frame->len - pos - header_len, &size)
                : 0;
        if (n == 0 || size > frame->len - pos - header_len - n)
            return;
        const uint8_t *payload = frame->data + pos + header_len + n;
        pos += header_len + n + (size_t)size;
        unsigned type = OBU_TYPE(header);
        if (type == OBU_SEQUENCE_HEADER) {
            struct sequence_header sh;
            if (!parse_sequence_header(payload, (size_t)size, &sh))
                continue;
            sequence_header = true;
            av1->reduced_still_picture_header = sh.reduced_still_picture_header;
            if (sh.max_width <= UINT16_MAX && sh.max_height <= UINT16_MAX) {
                out->width = (uint16_t)sh.max_width;
                out->height = (uint16_t)sh.max_height;
            }
        } else if (type == OBU_FRAME_HEADER || type == OBU_FRAME) {
            if (is_key_frame(payload, (size_t)size, av1->reduced_still_picture_header))
                key_frame = true;
        }
    }
    out->keyframe = sequence_header && key_frame;
}

static int av1_finish(void *priv, struct cap_buf *frame, struct cap_frame *out)
{
    struct av1 *av1 = priv;
    if (av1->fragment_open) {
        /* The temporal unit ended (by timestamp) inside an OBU: its tail is gone. */
        av1->fragment_open = false;
        out->complete = false;
    }
    if (frame->len == 0)
        return 0; /* nothing survived; the assembler drops the frame */
    inspect_temporal_unit(av1, frame, out);
    static const uint8_t temporal_delimiter[] = {OBU_TEMPORAL_DELIMITER << 3 | OBU_HAS_SIZE, 0};
    int err = cap_buf_reserve(frame, sizeof(temporal_delimiter));
    if (err)
        return err;
    memmove(frame->data + sizeof(temporal_delimiter), frame->data, frame->len);
    memcpy(frame->data, temporal_delimiter, sizeof(temporal_delimiter));
    frame->len += sizeof(temporal_delimiter);
    return 0;
}

static void av1_reset(void *priv)
{
    struct av1 *av1 = priv;
    av1->fragment_open = false;
    cap_buf_reset(&av1->fragment);
}

static int av1_init(void *priv, const struct cap_codec_params *params)
{
    struct av1 *av1 = priv;
    cap_buf_init(&av1->fragment, CAP_FRAME_MAX);
    return 0;
}

static void av1_deinit(void *priv)
{
    struct av1 *av1 = priv;
    cap_buf_deinit(&av1->fragment);
}

const struct cap_depay_ops cap_depay_av1 = {
    .name = "av1",
    .priv_size = sizeof(struct av1),
    .init = av1_init,
    .deinit = av1_deinit,
    .packet = av1_packet,
    .finish = av1_finish,
    .reset = av1_reset,
};
