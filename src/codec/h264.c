/* H.264 depacketizer (RFC 6184), non-interleaved packetization (modes 0 and 1: single NAL
 * units, STAP-A, FU-A) into Annex B access units. Keyframes (IDR) that arrive without their
 * SPS/PPS get the latest ones from the stream or the fmtp's sprop-parameter-sets. */
#include "codec/depay.h"
#include "codec/h26x.h"

#include "capstan/error.h"

#include <string.h>

enum {
    NAL_SLICE = 1,
    NAL_SLICE_PARTITION_A = 2,
    NAL_SLICE_PARTITION_B = 3,
    NAL_SLICE_PARTITION_C = 4,
    NAL_IDR = 5,
    NAL_SPS = 7,
    NAL_PPS = 8,
    NAL_AUD = 9,
    NAL_STAP_A = 24,
    NAL_STAP_B = 25,
    NAL_MTAP16 = 26,
    NAL_MTAP24 = 27,
    NAL_FU_A = 28,
    NAL_FU_B = 29,
};

/* Parameter-set kinds in the order a decoder needs them. */
enum { KIND_SPS, KIND_PPS, KINDS };

struct h264 {
    struct cap_h26x_param_sets params;
    struct cap_h26x_fu fu;     /* per frame */
    uint32_t profile_level_id; /* from the fmtp, informational: the SPS is what counts */
};

static unsigned nal_type(uint8_t header)
{
    return header & 0x1Fu;
}

/* Whether a NAL unit can be the first of an access unit (7.4.1.2.3): a delimiter, SEI,
 * parameter set or reserved prefix type, or a slice that starts the picture. Its
 * first_mb_in_slice is 0, whose exp-Golomb code is a single 1 bit: the top bit of the byte
 * after the header. Without this a frame whose first slice was lost would pass for whole. */
static bool may_start_access_unit(unsigned type, const uint8_t *after_header, size_t len)
{
    switch (type) {
    case NAL_SLICE:
    case NAL_SLICE_PARTITION_A:
    case NAL_IDR:
        return len == 0 || (after_header[0] & 0x80);
    case 6: /* SEI */
    case NAL_SPS:
    case NAL_PPS:
    case NAL_AUD:
    case 14: /* prefix NAL unit */
    case 15: /* subset SPS */
    case 16:
    case 17:
    case 18:
        return true;
    default: /* data partitions B and C, end of sequence/stream, filler, extensions */
        return false;
    }
}

/* The id of an SPS (after profile, constraint flags and level) or PPS (first); -1 unread. */
static int64_t param_set_id(const uint8_t *nal, size_t len)
{
    uint8_t rbsp[16];
    size_t n = cap_h26x_unescape(rbsp, sizeof(rbsp), nal + 1, len - 1);
    struct cap_h26x_bits bits;
    cap_h26x_bits_init(&bits, rbsp, n);
    if (nal_type(nal[0]) == NAL_SPS)
        cap_h26x_bits_skip(&bits, 24);
    uint32_t id = cap_h26x_bits_ue(&bits);
    return bits.failed ? -1 : (int64_t)id;
}

static int remember(struct h264 *h, enum cap_h26x_source source, const uint8_t *nal, size_t len)
{
    if (len < 2)
        return 0;
    unsigned type = nal_type(nal[0]);
    if (type != NAL_SPS && type != NAL_PPS)
        return 0;
    unsigned kind = type == NAL_SPS ? KIND_SPS : KIND_PPS;
    return cap_h26x_params_remember(&h->params, source, kind, param_set_id(nal, len), nal, len);
}

static int remember_from_fmtp(void *ctx, const uint8_t *nal, size_t len)
{
    return remember(ctx, CAP_H26X_FROM_FMTP, nal, len);
}

/* Six hex digits: profile_idc, constraint flags, level_idc (RFC 6184 8.1); 0 if not. */
static uint32_t parse_profile_level_id(const char *value, size_t len)
{
    if (len != 6)
        return 0;
    uint32_t id = 0;
    for (size_t i = 0; i < len; i++) {
        char c = value[i];
        unsigned digit;
        if (c >= '0' && c <= '9')
            digit = (unsigned)(c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            digit = (unsigned)((c | 0x20) - 'a' + 10);
        else
            return 0;
        id = id << 4 | digit;
    }
    return id;
}

static int h264_init(void *priv, const struct cap_codec_params *params)
{
    struct h264 *h = priv;
    const char *fmtp = params && params->fmtp ? params->fmtp : "";
    const char *value;
    size_t len;
    uint32_t mode;
    /* Interleaved mode (2) reorders NAL units by decoding order numbers across packets
     * (STAP-B, MTAP, FU-B); it is not supported, so the whole track is refused here rather
     * than every packet of it later. A mode we cannot read is left to the packets. */
    if (cap_h26x_fmtp_find(fmtp, "packetization-mode", &value, &len) &&
        cap_h26x_parse_uint(value, len, &mode) && mode == 2)
        return CAP_EUNSUPPORTED;
    if (cap_h26x_fmtp_find(fmtp, "profile-level-id", &value, &len))
        h->profile_level_id = parse_profile_level_id(value, len);
    if (cap_h26x_fmtp_find(fmtp, "sprop-parameter-sets", &value, &len))
        return cap_h26x_sprop_each(value, len, remember_from_fmtp, h);
    return 0;
}

static void h264_deinit(void *priv)
{
    struct h264 *h = priv;
    cap_h26x_params_free(&h->params);
}

/* A complete NAL unit: a single-NAL packet or one unit of a STAP-A. */
static int take_nal(struct h264 *h, const uint8_t *nal, size_t len, struct cap_buf *frame)
{
    int err = cap_h26x_append_nal(frame, NULL, 0, nal, len);
    if (!err)
        err = remember(h, CAP_H26X_IN_BAND, nal, len);
    return err;
}

static int stap_a(struct h264 *h, const uint8_t *payload, size_t len, struct cap_buf *frame,
                  struct cap_depay_packet_info *info)
{
    /* Every size is checked before anything is appended: a STAP-A that lies adds nothing. */
    if (cap_h26x_check_aggregate(payload, len, 1, 1) < 0)
        return CAP_EFORMAT;
    for (size_t pos = 1; pos < len;) {
        size_t size = (size_t)payload[pos] << 8 | payload[pos + 1];
        const uint8_t *nal = payload + pos + 2;
        if (pos == 1)
            info->starts_frame = may_start_access_unit(nal_type(nal[0]), nal + 1, size - 1);
        int err = take_nal(h, nal, size, frame);
        if (err)
            return err;
        pos += 2 + size;
    }
    return 0;
}

static int fu_a(struct h264 *h, const uint8_t *payload, size_t len, struct cap_buf *frame,
                struct cap_depay_packet_info *info)
{
    if (len < 2)
        return CAP_EFORMAT;
    uint8_t fu_header = payload[1];
    bool start = fu_header & 0x80, end = fu_header & 0x40;
    unsigned type = nal_type(fu_header);
    uint8_t header = (uint8_t)((payload[0] & 0xE0) | type);
    if (start)
        info->starts_frame = may_start_access_unit(type, payload + 2, len - 2);
    size_t whole;
    int err = cap_h26x_fu_fragment(&h->fu, frame, start, end, type, &header, 1, payload + 2,
                                   len - 2, &whole);
    if (!err && whole != SIZE_MAX)
        err = remember(h, CAP_H26X_IN_BAND, frame->data + whole, frame->len - whole);
    return err;
}

static int h264_packet(void *priv, const struct cap_rtp_packet *pkt, struct cap_buf *frame,
                       struct cap_depay_packet_info *info)
{
    struct h264 *h = priv;
    cap_h26x_fu_sequence(&h->fu, pkt->sequence);
    /* RFC 6184 5.1: the marker bit is set on the last packet of the access unit. */
    info->ends_frame = pkt->marker;
    if (pkt->payload_len < 1)
        return CAP_EFORMAT;
    const uint8_t *payload = pkt->payload;
    size_t len = pkt->payload_len;
    unsigned type = nal_type(payload[0]);
    if (type != NAL_FU_A)
        cap_h26x_fu_close(&h->fu);
    switch (type) {
    case NAL_STAP_A:
        return stap_a(h, payload, len, frame, info);
    case NAL_FU_A:
        return fu_a(h, payload, len, frame, info);
    case NAL_STAP_B:
    case NAL_MTAP16:
    case NAL_MTAP24:
    case NAL_FU_B:
        return CAP_EFORMAT; /* interleaved mode only: not supported (see h264_init) */
    case 0:
    case 30:
    case 31:
        return 0; /* reserved: RFC 6184 5.4 says to ignore them */
    default:
        info->starts_frame = may_start_access_unit(type, payload + 1, len - 1);
        return take_nal(h, payload, len, frame);
    }
}

static void skip_scaling_list(struct cap_h26x_bits *bits, unsigned size)
{
    int32_t last = 8, next = 8;
    for (unsigned j = 0; j < size && !bits->failed; j++) {
        if (next != 0) {
            int32_t delta = cap_h26x_bits_se(bits);
            if (delta < -128 || delta > 127) {
                bits->failed = true;
                return;
            }
            next = (last + delta + 256) % 256;
        }
        last = next == 0 ? last : next;
    }
}

/* Profiles whose SPS carries chroma format, bit depths and scaling matrices (7.3.2.1.1). */
static bool high_profile(uint32_t profile_idc)
{
    static const uint8_t profiles[] = {100, 110, 122, 244, 44,  83,  86,
                                       118, 128, 138, 139, 134, 135, 144};
    for (size_t i = 0; i < sizeof(profiles); i++)
        if (profile_idc == profiles[i])
            return true;
    return false;
}

/* Picture size from an SPS (ITU-T H.264 7.3.2.1.1), cropping applied. False if it does
 * not parse or the size is out of range. */
static bool sps_size(const uint8_t *nal, size_t len, uint16_t *width, uint16_t *height)
{
    if (len < 2)
        return false;
    uint8_t rbsp[CAP_H26X_SPS_PARSE_MAX];
    size_t n = cap_h26x_unescape(rbsp, sizeof(rbsp), nal + 1, len - 1);
    struct cap_h26x_bits b;
    cap_h26x_bits_init(&b, rbsp, n);

    uint32_t profile_idc = cap_h26x_bits_read(&b, 8);
    cap_h26x_bits_skip(&b, 16);    /* constraint flags, level_idc */
    if (cap_h26x_bits_ue(&b) > 31) /* seq_parameter_set_id */
        return false;
    uint32_t chroma_format_idc = 1;
    bool separate_colour_plane = false;
    if (high_profile(profile_idc)) {
        chroma_format_idc = cap_h26x_bits_ue(&b);
        if (chroma_format_idc > 3)
            return false;
        if (chroma_format_idc == 3)
            separate_colour_plane = cap_h26x_bits_read(&b, 1);
        if (cap_h26x_bits_ue(&b) > 6 || cap_h26x_bits_ue(&b) > 6) /* bit depths - 8 */
            return false;
        cap_h26x_bits_skip(&b, 1);       /* qpprime_y_zero_transform_bypass_flag */
        if (cap_h26x_bits_read(&b, 1)) { /* seq_scaling_matrix_present_flag */
            unsigned lists = chroma_format_idc != 3 ? 8 : 12;
            for (unsigned i = 0; i < lists && !b.failed; i++)
                if (cap_h26x_bits_read(&b, 1))
                    skip_scaling_list(&b, i < 6 ? 16 : 64);
        }
    }
    if (cap_h26x_bits_ue(&b) > 12) /* log2_max_frame_num_minus4 */
        return false;
    uint32_t poc_type = cap_h26x_bits_ue(&b);
    if (poc_type == 0) {
        if (cap_h26x_bits_ue(&b) > 12) /* log2_max_pic_order_cnt_lsb_minus4 */
            return false;
    } else if (poc_type == 1) {
        cap_h26x_bits_skip(&b, 1); /* delta_pic_order_always_zero_flag */
        cap_h26x_bits_se(&b);      /* offset_for_non_ref_pic */
        cap_h26x_bits_se(&b);      /* offset_for_top_to_bottom_field */
        uint32_t cycle = cap_h26x_bits_ue(&b);
        if (cycle > 255)
            return false;
        for (uint32_t i = 0; i < cycle && !b.failed; i++)
            cap_h26x_bits_se(&b);
    } else if (poc_type > 2) {
        return false;
    }
    cap_h26x_bits_ue(&b);      /* max_num_ref_frames */
    cap_h26x_bits_skip(&b, 1); /* gaps_in_frame_num_value_allowed_flag */
    uint64_t width_mbs = (uint64_t)cap_h26x_bits_ue(&b) + 1;
    uint64_t height_map_units = (uint64_t)cap_h26x_bits_ue(&b) + 1;
    bool frame_mbs_only = cap_h26x_bits_read(&b, 1);
    if (!frame_mbs_only)
        cap_h26x_bits_skip(&b, 1); /* mb_adaptive_frame_field_flag */
    cap_h26x_bits_skip(&b, 1);     /* direct_8x8_inference_flag */
    uint64_t crop_left = 0, crop_right = 0, crop_top = 0, crop_bottom = 0;
    if (cap_h26x_bits_read(&b, 1)) {
        crop_left = cap_h26x_bits_ue(&b);
        crop_right = cap_h26x_bits_ue(&b);
        crop_top = cap_h26x_bits_ue(&b);
        crop_bottom = cap_h26x_bits_ue(&b);
    }
    if (b.failed)
        return false;

    /* Crop offsets count in chroma samples (7.4.2.1.1, CropUnitX/CropUnitY). */
    uint64_t field_factor = frame_mbs_only ? 1 : 2;
    uint64_t unit_x = 1, unit_y = field_factor;
    if (!separate_colour_plane && chroma_format_idc != 0) {
        unit_x = chroma_format_idc == 3 ? 1 : 2;
        unit_y = (chroma_format_idc == 1 ? 2 : 1) * field_factor;
    }
    uint64_t w = width_mbs * 16, h = height_map_units * 16 * field_factor;
    uint64_t crop_w = (crop_left + crop_right) * unit_x;
    uint64_t crop_h = (crop_top + crop_bottom) * unit_y;
    if (crop_w >= w || crop_h >= h || w - crop_w > UINT16_MAX || h - crop_h > UINT16_MAX)
        return false;
    *width = (uint16_t)(w - crop_w);
    *height = (uint16_t)(h - crop_h);
    return true;
}

static enum cap_h26x_nal_class classify(const uint8_t *nal, size_t len)
{
    unsigned type = nal_type(nal[0]);
    if (type >= NAL_SLICE && type <= NAL_IDR)
        return CAP_H26X_NAL_VCL;
    if (type == NAL_SPS || type == NAL_PPS)
        return CAP_H26X_NAL_PARAM_SET;
    return CAP_H26X_NAL_OTHER;
}

/* What finish needs to know of a frame's NAL units, from one pass over its bytes. */
struct frame_scan {
    bool has_kind[KINDS], idr, vcl;
    bool late_sets;   /* a parameter set after the first slice: there is hoisting to do */
    size_t insert_at; /* where missing parameter sets go: after an access unit delimiter */
};

static void scan_frame(const struct cap_buf *frame, struct frame_scan *scan)
{
    memset(scan, 0, sizeof(*scan));
    size_t pos = 0;
    const uint8_t *nal;
    size_t nal_len;
    for (bool first = true; cap_h26x_next_nal(frame->data, frame->len, &pos, &nal, &nal_len);
         first = false) {
        if (nal_len == 0)
            continue;
        unsigned type = nal_type(nal[0]);
        enum cap_h26x_nal_class class = classify(nal, nal_len);
        scan->late_sets |= scan->vcl && class == CAP_H26X_NAL_PARAM_SET;
        scan->vcl |= class == CAP_H26X_NAL_VCL;
        scan->idr |= type == NAL_IDR;
        scan->has_kind[KIND_SPS] |= type == NAL_SPS;
        scan->has_kind[KIND_PPS] |= type == NAL_PPS;
        if (first && type == NAL_AUD) /* an access unit delimiter stays first (7.4.1.2.3) */
            scan->insert_at = (size_t)(nal + nal_len - frame->data);
    }
}

static int h264_finish(void *priv, struct cap_buf *frame, struct cap_frame *out)
{
    struct h264 *h = priv;
    cap_h26x_fu_reset(&h->fu);
    int err = 0;
    /* One pass over the frame, a second only when parameter sets had to move. */
    struct frame_scan scan;
    scan_frame(frame, &scan);
    if (scan.late_sets) {
        if ((err = cap_h26x_hoist_param_sets(frame, classify)))
            return err;
        scan_frame(frame, &scan);
    }
    /* Parameter sets or SEI on a timestamp of their own are not a picture; the sets are
     * remembered and go in front of the next IDR that lacks them. */
    if (!scan.vcl)
        return CAP_EFORMAT;

    /* Keyframe means IDR; a recovery-point SEI (gradual decoder refresh) does not count. */
    out->keyframe = scan.idr;
    if (!scan.idr)
        return 0;
    size_t insert_at = scan.insert_at, pos;
    const uint8_t *nal;
    size_t nal_len;
    if (!scan.has_kind[KIND_SPS] || !scan.has_kind[KIND_PPS]) {
        struct cap_buf sets;
        cap_buf_init(&sets, CAP_FRAME_MAX);
        for (unsigned kind = 0; kind < KINDS && !err; kind++)
            err = cap_h26x_params_write(&h->params, kind, &sets);
        if (!err)
            err = cap_h26x_insert(frame, insert_at, sets.data, sets.len);
        cap_buf_deinit(&sets);
        if (err)
            return err;
    }
    pos = 0;
    while (cap_h26x_next_nal(frame->data, frame->len, &pos, &nal, &nal_len)) {
        if (nal_len > 0 && nal_type(nal[0]) == NAL_SPS) {
            if (!sps_size(nal, nal_len, &out->width, &out->height))
                out->width = out->height = 0;
            break;
        }
    }
    return 0;
}

static void h264_reset(void *priv)
{
    struct h264 *h = priv;
    cap_h26x_fu_reset(&h->fu);
}

const struct cap_depay_ops cap_depay_h264 = {
    .name = "h264",
    .priv_size = sizeof(struct h264),
    .init = h264_init,
    .deinit = h264_deinit,
    .packet = h264_packet,
    .finish = h264_finish,
    .reset = h264_reset,
};
