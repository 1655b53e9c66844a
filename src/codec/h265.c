/* H.265 depacketizer (RFC 7798): single NAL units, aggregation packets (AP) and
 * fragmentation units (FU) into Annex B access units. Keyframes (IRAP pictures) that arrive
 * without their VPS/SPS/PPS get the latest ones from the stream or the fmtp's sprop-*. */
#include "codec/depay.h"
#include "codec/h26x.h"

#include "capstan/error.h"

#include <string.h>

#define HEADER_LEN 2

enum {
    NAL_VCL_LAST = 31,
    NAL_IRAP_FIRST = 16, /* BLA_W_LP .. RSV_IRAP_VCL23 */
    NAL_IRAP_LAST = 23,
    NAL_VPS = 32,
    NAL_SPS = 33,
    NAL_PPS = 34,
    NAL_AUD = 35,
    NAL_PREFIX_SEI = 39,
    NAL_AP = 48,
    NAL_FU = 49,
    NAL_PACI = 50,
};

/* Parameter-set kinds in the order a decoder needs them. */
enum { KIND_VPS, KIND_SPS, KIND_PPS, KINDS };

struct h265 {
    struct cap_h26x_param_sets params;
    struct cap_h26x_fu fu; /* per frame */
};

static unsigned nal_type(const uint8_t *nal)
{
    return (nal[0] >> 1) & 0x3Fu;
}

/* Whether a NAL unit can be the first of an access unit (7.4.2.4.4): a delimiter,
 * parameter set, prefix SEI or reserved prefix type, or a slice segment that starts the
 * picture (first_slice_segment_in_pic_flag, the top bit after the header). Without this a
 * frame whose first slice was lost would pass for whole. */
static bool may_start_access_unit(unsigned type, const uint8_t *after_header, size_t len)
{
    if (type <= NAL_VCL_LAST)
        return len == 0 || (after_header[0] & 0x80);
    switch (type) {
    case NAL_VPS:
    case NAL_SPS:
    case NAL_PPS:
    case NAL_AUD:
    case NAL_PREFIX_SEI:
    case 41:
    case 42:
    case 43:
    case 44: /* reserved prefix types */
        return true;
    default: /* end of sequence/bitstream, filler, suffix SEI */
        return false;
    }
}

/* Skips profile_tier_level(1, max_sub_layers_minus1) (7.3.3). */
static void skip_profile_tier_level(struct cap_h26x_bits *b, unsigned max_sub_layers_minus1)
{
    /* general profile space, tier, profile idc (8), compatibility flags (32), source and
     * constraint flags (48), level (8) */
    cap_h26x_bits_skip(b, 8 + 32 + 48 + 8);
    bool profile_present[8] = {false}, level_present[8] = {false};
    for (unsigned i = 0; i < max_sub_layers_minus1; i++) {
        profile_present[i] = cap_h26x_bits_read(b, 1);
        level_present[i] = cap_h26x_bits_read(b, 1);
    }
    if (max_sub_layers_minus1 > 0)
        cap_h26x_bits_skip(b, 2 * (8 - max_sub_layers_minus1)); /* reserved_zero_2bits */
    for (unsigned i = 0; i < max_sub_layers_minus1; i++) {
        if (profile_present[i])
            cap_h26x_bits_skip(b, 88);
        if (level_present[i])
            cap_h26x_bits_skip(b, 8);
    }
}

struct sps_info {
    uint32_t id;
    uint16_t width, height;
};

/* Id and picture size (conformance window applied) from an SPS (7.3.2.2). False if it
 * does not parse or the size is out of range. */
static bool parse_sps(const uint8_t *nal, size_t len, struct sps_info *info)
{
    if (len <= HEADER_LEN)
        return false;
    uint8_t rbsp[CAP_H26X_SPS_PARSE_MAX];
    size_t n = cap_h26x_unescape(rbsp, sizeof(rbsp), nal + HEADER_LEN, len - HEADER_LEN);
    struct cap_h26x_bits b;
    cap_h26x_bits_init(&b, rbsp, n);

    cap_h26x_bits_skip(&b, 4); /* sps_video_parameter_set_id */
    unsigned max_sub_layers_minus1 = cap_h26x_bits_read(&b, 3);
    if (max_sub_layers_minus1 > 6)
        return false;
    cap_h26x_bits_skip(&b, 1); /* sps_temporal_id_nesting_flag */
    skip_profile_tier_level(&b, max_sub_layers_minus1);
    info->id = cap_h26x_bits_ue(&b);
    if (info->id > 15)
        return false;
    uint32_t chroma_format_idc = cap_h26x_bits_ue(&b);
    if (chroma_format_idc > 3)
        return false;
    bool separate_colour_plane = false;
    if (chroma_format_idc == 3)
        separate_colour_plane = cap_h26x_bits_read(&b, 1);
    uint64_t width = cap_h26x_bits_ue(&b);
    uint64_t height = cap_h26x_bits_ue(&b);
    uint64_t left = 0, right = 0, top = 0, bottom = 0;
    if (cap_h26x_bits_read(&b, 1)) { /* conformance_window_flag */
        left = cap_h26x_bits_ue(&b);
        right = cap_h26x_bits_ue(&b);
        top = cap_h26x_bits_ue(&b);
        bottom = cap_h26x_bits_ue(&b);
    }
    if (b.failed)
        return false;

    /* Window offsets count in chroma samples (SubWidthC, SubHeightC; table 6-1). */
    uint64_t unit_x = 1, unit_y = 1;
    if (!separate_colour_plane && (chroma_format_idc == 1 || chroma_format_idc == 2))
        unit_x = 2;
    if (!separate_colour_plane && chroma_format_idc == 1)
        unit_y = 2;
    uint64_t crop_w = (left + right) * unit_x, crop_h = (top + bottom) * unit_y;
    if (width == 0 || height == 0 || crop_w >= width || crop_h >= height ||
        width - crop_w > UINT16_MAX || height - crop_h > UINT16_MAX)
        return false;
    info->width = (uint16_t)(width - crop_w);
    info->height = (uint16_t)(height - crop_h);
    return true;
}

/* The id of a VPS (4 bits), SPS or PPS (first ue); -1 when it cannot be read. */
static int64_t param_set_id(const uint8_t *nal, size_t len)
{
    unsigned type = nal_type(nal);
    if (type == NAL_SPS) {
        struct sps_info info;
        return parse_sps(nal, len, &info) ? (int64_t)info.id : -1;
    }
    uint8_t rbsp[8];
    size_t n = cap_h26x_unescape(rbsp, sizeof(rbsp), nal + HEADER_LEN, len - HEADER_LEN);
    struct cap_h26x_bits bits;
    cap_h26x_bits_init(&bits, rbsp, n);
    uint32_t id = type == NAL_VPS ? cap_h26x_bits_read(&bits, 4) : cap_h26x_bits_ue(&bits);
    return bits.failed ? -1 : (int64_t)id;
}

static int remember(struct h265 *h, enum cap_h26x_source source, const uint8_t *nal, size_t len)
{
    if (len <= HEADER_LEN)
        return 0;
    unsigned type = nal_type(nal);
    if (type < NAL_VPS || type > NAL_PPS)
        return 0;
    return cap_h26x_params_remember(&h->params, source, type - NAL_VPS + KIND_VPS,
                                    param_set_id(nal, len), nal, len);
}

static int remember_from_fmtp(void *ctx, const uint8_t *nal, size_t len)
{
    return remember(ctx, CAP_H26X_FROM_FMTP, nal, len);
}

static int h265_init(void *priv, const struct cap_codec_params *params)
{
    struct h265 *h = priv;
    const char *fmtp = params && params->fmtp ? params->fmtp : "";
    const char *value;
    size_t len;
    uint32_t don_diff;
    /* With sprop-max-don-diff > 0 every packet carries decoding order numbers and NAL
     * units may arrive out of decoding order; reordering them is not supported, so the
     * track is refused here rather than every packet of it later. */
    if (cap_h26x_fmtp_find(fmtp, "sprop-max-don-diff", &value, &len) &&
        cap_h26x_parse_uint(value, len, &don_diff) && don_diff > 0)
        return CAP_EUNSUPPORTED;
    static const char *const sprops[] = {"sprop-vps", "sprop-sps", "sprop-pps"};
    for (size_t i = 0; i < sizeof(sprops) / sizeof(sprops[0]); i++) {
        if (!cap_h26x_fmtp_find(fmtp, sprops[i], &value, &len))
            continue;
        int err = cap_h26x_sprop_each(value, len, remember_from_fmtp, h);
        if (err)
            return err;
    }
    return 0;
}

static void h265_deinit(void *priv)
{
    struct h265 *h = priv;
    cap_h26x_params_free(&h->params);
}

/* A complete NAL unit: a single-NAL packet or one unit of an AP. */
static int take_nal(struct h265 *h, const uint8_t *nal, size_t len, struct cap_buf *frame)
{
    int err = cap_h26x_append_nal(frame, NULL, 0, nal, len);
    if (!err)
        err = remember(h, CAP_H26X_IN_BAND, nal, len);
    return err;
}

static int aggregation(struct h265 *h, const uint8_t *payload, size_t len, struct cap_buf *frame,
                       struct cap_depay_packet_info *info)
{
    /* Every size is checked before anything is appended: an AP that lies adds nothing.
     * (No DONL fields: sprop-max-don-diff > 0 is refused in h265_init.) */
    if (cap_h26x_check_aggregate(payload, len, HEADER_LEN, HEADER_LEN) < 0)
        return CAP_EFORMAT;
    for (size_t pos = HEADER_LEN; pos < len;) {
        size_t size = (size_t)payload[pos] << 8 | payload[pos + 1];
        const uint8_t *nal = payload + pos + 2;
        if (pos == HEADER_LEN)
            info->starts_frame =
                may_start_access_unit(nal_type(nal), nal + HEADER_LEN, size - HEADER_LEN);
        int err = take_nal(h, nal, size, frame);
        if (err)
            return err;
        pos += 2 + size;
    }
    return 0;
}

static int fragment(struct h265 *h, const uint8_t *payload, size_t len, struct cap_buf *frame,
                    struct cap_depay_packet_info *info)
{
    if (len < HEADER_LEN + 1)
        return CAP_EFORMAT;
    uint8_t fu_header = payload[HEADER_LEN];
    bool start = fu_header & 0x80, end = fu_header & 0x40;
    unsigned type = fu_header & 0x3Fu;
    if (type == NAL_AP || type == NAL_FU || type == NAL_PACI)
        return CAP_EFORMAT;
    uint8_t header[HEADER_LEN] = {(uint8_t)((payload[0] & 0x81) | (type << 1)), payload[1]};
    const uint8_t *data = payload + HEADER_LEN + 1;
    size_t data_len = len - HEADER_LEN - 1;
    if (start)
        info->starts_frame = may_start_access_unit(type, data, data_len);
    size_t whole;
    int err = cap_h26x_fu_fragment(&h->fu, frame, start, end, type, header, HEADER_LEN, data,
                                   data_len, &whole);
    if (!err && whole != SIZE_MAX)
        err = remember(h, CAP_H26X_IN_BAND, frame->data + whole, frame->len - whole);
    return err;
}

static int h265_packet(void *priv, const struct cap_rtp_packet *pkt, struct cap_buf *frame,
                       struct cap_depay_packet_info *info)
{
    struct h265 *h = priv;
    cap_h26x_fu_sequence(&h->fu, pkt->sequence);
    /* RFC 7798 4.1: the marker bit is set on the last packet of the access unit. */
    info->ends_frame = pkt->marker;
    if (pkt->payload_len < HEADER_LEN)
        return CAP_EFORMAT;
    const uint8_t *payload = pkt->payload;
    size_t len = pkt->payload_len;
    if ((payload[1] & 0x07) == 0) /* TID 0 is illegal (RFC 7798 1.1.4) */
        return CAP_EFORMAT;
    unsigned type = nal_type(payload);
    if (type != NAL_FU)
        cap_h26x_fu_close(&h->fu);
    switch (type) {
    case NAL_AP:
        return aggregation(h, payload, len, frame, info);
    case NAL_FU:
        return fragment(h, payload, len, frame, info);
    case NAL_PACI:
        return CAP_EFORMAT; /* payload content information: not supported */
    default:
        if (type > NAL_PACI)
            return 0; /* unspecified (51..63): no meaning in RFC 7798, ignored */
        info->starts_frame = may_start_access_unit(type, payload + HEADER_LEN, len - HEADER_LEN);
        return take_nal(h, payload, len, frame);
    }
}

static unsigned layer_id(const uint8_t *nal)
{
    return (unsigned)(nal[0] & 1) << 5 | nal[1] >> 3;
}

static enum cap_h26x_nal_class classify(const uint8_t *nal, size_t len)
{
    if (len < HEADER_LEN)
        return CAP_H26X_NAL_OTHER;
    unsigned type = nal_type(nal);
    if (type <= NAL_VCL_LAST)
        return CAP_H26X_NAL_VCL;
    if (type >= NAL_VPS && type <= NAL_PPS)
        return CAP_H26X_NAL_PARAM_SET;
    return CAP_H26X_NAL_OTHER;
}

/* What finish needs to know of a frame's NAL units, from one pass over its bytes. */
struct frame_scan {
    bool has_kind[KINDS], irap, vcl;
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
        if (nal_len < HEADER_LEN)
            continue;
        unsigned type = nal_type(nal);
        enum cap_h26x_nal_class class = classify(nal, nal_len);
        scan->late_sets |= scan->vcl && class == CAP_H26X_NAL_PARAM_SET;
        scan->vcl |= class == CAP_H26X_NAL_VCL;
        scan->irap |= type >= NAL_IRAP_FIRST && type <= NAL_IRAP_LAST;
        if (type >= NAL_VPS && type <= NAL_PPS)
            scan->has_kind[type - NAL_VPS + KIND_VPS] = true;
        if (first && type == NAL_AUD) /* an access unit delimiter stays first (7.4.2.4.4) */
            scan->insert_at = (size_t)(nal + nal_len - frame->data);
    }
}

static int h265_finish(void *priv, struct cap_buf *frame, struct cap_frame *out)
{
    struct h265 *h = priv;
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
     * remembered and go in front of the next IRAP picture that lacks them. */
    if (!scan.vcl)
        return CAP_EFORMAT;

    out->keyframe = scan.irap;
    if (!scan.irap)
        return 0;
    size_t insert_at = scan.insert_at, pos;
    const uint8_t *nal;
    size_t nal_len;
    if (!scan.has_kind[KIND_VPS] || !scan.has_kind[KIND_SPS] || !scan.has_kind[KIND_PPS]) {
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
        /* Layers above the base one use another SPS syntax; the base layer's size counts. */
        if (nal_len > HEADER_LEN && nal_type(nal) == NAL_SPS && layer_id(nal) == 0) {
            struct sps_info info;
            if (parse_sps(nal, nal_len, &info)) {
                out->width = info.width;
                out->height = info.height;
            }
            break;
        }
    }
    return 0;
}

static void h265_reset(void *priv)
{
    struct h265 *h = priv;
    cap_h26x_fu_reset(&h->fu);
}

const struct cap_depay_ops cap_depay_h265 = {
    .name = "h265",
    .priv_size = sizeof(struct h265),
    .init = h265_init,
    .deinit = h265_deinit,
    .packet = h265_packet,
    .finish = h265_finish,
    .reset = h265_reset,
};
