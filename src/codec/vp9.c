/* VP9 depacketizer (RFC 9628): strips each packet's payload descriptor and follows the layer
 * frames of a picture (every packet with one RTP timestamp). With spatial layers it keeps the
 * highest whole layer frame plus the lower ones it predicts from, packed as a VP9 superframe
 * (VP9 bitstream spec, Annex B), so one decodable frame per picture comes out. Finishing
 * reads the uncompressed header to confirm key frames and takes the coded size from it or
 * from the scalability structure. */
#include "codec/depay.h"

#include "capstan/error.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Payload descriptor, first byte (RFC 9628 §4.2). */
#define DESC_PICTURE_ID 0x80    /* I */
#define DESC_INTER_PICTURE 0x40 /* P: predicted from an earlier picture */
#define DESC_LAYERS 0x20        /* L: layer indices follow */
#define DESC_FLEXIBLE 0x10      /* F: reference indices (P_DIFF) instead of TL0PICIDX */
#define DESC_BEGIN 0x08         /* B: the packet starts a layer frame */
#define DESC_END 0x04           /* E: the packet ends a layer frame */
#define DESC_SCALABILITY 0x02   /* V: a scalability structure follows */

#define PICTURE_ID_LONG 0x80   /* M: the picture ID takes 15 bits */
#define LAYER_INTER_LAYER 0x01 /* D: predicted from the spatial layer below */
#define P_DIFF_MORE 0x01       /* N: another P_DIFF follows */
#define MAX_P_DIFF 3

/* Scalability structure header: N_S (3 bits), Y, G. */
#define SS_SIZES 0x10
#define SS_GROUPS 0x08

#define MAX_LAYERS 8     /* SID and N_S are 3 bits */
#define MAX_SUPERFRAME 8 /* frames_in_superframe_minus_1 is 3 bits */

/* What one packet's descriptor says. */
struct descriptor {
    size_t size;
    bool begins, ends, inter_picture, has_layer, inter_layer;
    unsigned spatial_id;
    bool has_sizes; /* a scalability structure with resolutions came along */
    unsigned size_count;
    uint16_t width[MAX_LAYERS], height[MAX_LAYERS];
};

/* One spatial layer's frame within the picture being assembled. */
struct layer_frame {
    size_t start, len; /* its bytes in the frame buffer */
    bool present;
    bool begun;         /* its first packet had B */
    bool ended;         /* E, the marker, or the next layer frame followed without a gap */
    bool broken;        /* a gap, a malformed packet or stray bytes inside it */
    bool inter_layer;   /* D: needs the layer frame below it */
    bool inter_picture; /* P of its first packet */
};

struct vp9_depay {
    /* The picture being assembled. */
    bool in_picture;
    uint16_t last_sequence;
    int open_layer;      /* SID receiving bytes; -1 between layer frames */
    int highest_present; /* highest SID with bytes in this picture; -1 none */
    struct layer_frame layers[MAX_LAYERS];
    /* The stream: the resolutions of the last scalability structure that had them. */
    unsigned size_count;
    uint16_t width[MAX_LAYERS], height[MAX_LAYERS];
};

/* ---- the payload descriptor ---- */

static bool has_bytes(size_t len, size_t at, size_t count)
{
    return at <= len && len - at >= count;
}

static int parse_scalability(const uint8_t *p, size_t len, size_t *at, struct descriptor *desc)
{
    if (!has_bytes(len, *at, 1))
        return CAP_EFORMAT;
    uint8_t header = p[(*at)++];
    unsigned layers = (header >> 5) + 1u;
    if (header & SS_SIZES) {
        if (!has_bytes(len, *at, 4 * (size_t)layers))
            return CAP_EFORMAT;
        for (unsigned i = 0; i < layers; i++, *at += 4) {
            desc->width[i] = (uint16_t)(p[*at] << 8 | p[*at + 1]);
            desc->height[i] = (uint16_t)(p[*at + 2] << 8 | p[*at + 3]);
        }
        desc->has_sizes = true;
        desc->size_count = layers;
    }
    if (header & SS_GROUPS) {
        if (!has_bytes(len, *at, 1))
            return CAP_EFORMAT;
        unsigned groups = p[(*at)++];
        for (unsigned i = 0; i < groups; i++) {
            if (!has_bytes(len, *at, 1))
                return CAP_EFORMAT;
            unsigned references = (p[(*at)++] >> 2) & 0x3; /* TID (3) U (1) R (2) */
            if (!has_bytes(len, *at, references))
                return CAP_EFORMAT;
            *at += references;
        }
    }
    return 0;
}

/* Fills desc; CAP_EFORMAT when a field it announces is not there or no VP9 data follows. */
static int parse_descriptor(const uint8_t *p, size_t len, struct descriptor *desc)
{
    memset(desc, 0, sizeof(*desc));
    size_t at = 0;
    if (!has_bytes(len, at, 1))
        return CAP_EFORMAT;
    uint8_t flags = p[at++];
    desc->begins = flags & DESC_BEGIN;
    desc->ends = flags & DESC_END;
    desc->inter_picture = flags & DESC_INTER_PICTURE;
    bool flexible = flags & DESC_FLEXIBLE;
    if (flags & DESC_PICTURE_ID) {
        if (!has_bytes(len, at, 1))
            return CAP_EFORMAT;
        if (p[at++] & PICTURE_ID_LONG) {
            if (!has_bytes(len, at, 1))
                return CAP_EFORMAT;
            at++;
        }
    }
    if (flags & DESC_LAYERS) {
        if (!has_bytes(len, at, 1))
            return CAP_EFORMAT;
        uint8_t layer = p[at++]; /* TID (3) U (1) SID (3) D (1) */
        desc->has_layer = true;
        desc->spatial_id = (layer >> 1) & 0x7;
        desc->inter_layer = layer & LAYER_INTER_LAYER;
        if (!flexible) { /* TL0PICIDX */
            if (!has_bytes(len, at, 1))
                return CAP_EFORMAT;
            at++;
        }
    }
    if (flexible && desc->inter_picture) {
        for (unsigned i = 0;; i++) {
            if (i == MAX_P_DIFF || !has_bytes(len, at, 1))
                return CAP_EFORMAT;
            if (!(p[at++] & P_DIFF_MORE))
                break;
        }
    }
    if (flags & DESC_SCALABILITY) {
        int err = parse_scalability(p, len, &at, desc);
        if (err)
            return err;
    }
    if (at >= len)
        return CAP_EFORMAT;
    desc->size = at;
    return 0;
}

/* ---- following the layer frames of a picture ---- */

static void forget_picture(struct vp9_depay *state)
{
    state->in_picture = false;
    state->open_layer = -1;
    state->highest_present = -1;
    memset(state->layers, 0, sizeof(state->layers));
}

/* Bytes went missing from the layer frame being received: it cannot be used. */
static void break_open_layer(struct vp9_depay *state)
{
    if (state->open_layer >= 0)
        state->layers[state->open_layer].broken = true;
    state->open_layer = -1;
}

/* The next packet follows the open layer frame's last one without a gap but belongs to
 * another layer frame: the open one is whole even if its sender left E unset. */
static void close_open_layer(struct vp9_depay *state)
{
    if (state->open_layer >= 0)
        state->layers[state->open_layer].ended = true;
    state->open_layer = -1;
}

static int vp9_init(void *priv, const struct cap_codec_params *params)
{
    forget_picture(priv);
    return 0;
}

static int vp9_packet(void *priv, const struct cap_rtp_packet *pkt, struct cap_buf *frame,
                      struct cap_depay_packet_info *info)
{
    struct vp9_depay *state = priv;
    bool first = !state->in_picture;
    if (first)
        forget_picture(state);
    else if (pkt->sequence != (uint16_t)(state->last_sequence + 1))
        break_open_layer(state); /* the assembler does not tell codecs where loss was */
    state->in_picture = true;
    state->last_sequence = pkt->sequence;
    /* A padding-only packet (bandwidth probing) carries no descriptor and adds nothing. */
    if (pkt->payload_len == 0)
        return 0;

    struct descriptor desc;
    int err = parse_descriptor(pkt->payload, pkt->payload_len, &desc);
    if (err) {
        break_open_layer(state);
        return err;
    }
    int sid;
    if (desc.has_layer)
        sid = (int)desc.spatial_id;
    else if (desc.begins) /* no layer indices: layer frames are in spatial order */
        sid = state->highest_present + 1;
    else
        sid = state->open_layer >= 0 ? state->open_layer
                                     : (state->highest_present >= 0 ? state->highest_present : 0);
    if (sid >= MAX_LAYERS) {
        break_open_layer(state);
        return CAP_EFORMAT;
    }

    struct layer_frame *layer = &state->layers[sid];
    if (desc.begins) {
        /* Layer frames come in rising spatial order, one per layer. */
        if (sid <= state->highest_present || layer->present) {
            break_open_layer(state);
            return CAP_EFORMAT;
        }
        close_open_layer(state);
        *layer = (struct layer_frame){
            .start = frame->len,
            .present = true,
            .begun = true,
            /* Without layer indices nothing says a higher layer stands alone. */
            .inter_layer = sid > 0 && (desc.has_layer ? desc.inter_layer : true),
            .inter_picture = desc.inter_picture,
        };
        state->open_layer = sid;
        state->highest_present = sid;
    } else if (sid != state->open_layer) {
        /* The middle of a layer frame whose start we did not see (or saw end already). */
        close_open_layer(state);
        if (!layer->present)
            *layer = (struct layer_frame){.start = frame->len, .present = true};
        layer->broken = true;
        state->open_layer = sid;
        if (sid > state->highest_present)
            state->highest_present = sid;
    }

    size_t data_len = pkt->payload_len - desc.size;
    err = cap_buf_append(frame, pkt->payload + desc.size, data_len);
    if (err) {
        break_open_layer(state);
        return err;
    }
    layer->len += data_len;
    /* RFC 9628 sets the marker on the picture's last packet, the end of its top layer. */
    if (desc.ends || pkt->marker)
        close_open_layer(state);
    if (desc.has_sizes) {
        state->size_count = desc.size_count;
        memcpy(state->width, desc.width, sizeof(state->width));
        memcpy(state->height, desc.height, sizeof(state->height));
    }
    info->starts_frame = first && desc.begins;
    info->ends_frame = pkt->marker;
    return 0;
}

/* ---- finishing a picture ---- */

/* A layer frame decodes when it is whole and so is every layer frame it predicts from. */
static bool decodable(const struct vp9_depay *state, int sid)
{
    for (;; sid--) {
        const struct layer_frame *layer = &state->layers[sid];
        if (!layer->present || !layer->begun || !layer->ended || layer->broken)
            return false;
        if (!layer->inter_layer)
            return true;
        if (sid == 0)
            return false;
    }
}

/* The frames of a VP9 superframe (Annex B): their count, with sizes, or 0 when data is a
 * plain frame (no index at its end, or one whose sizes do not add up). */
static unsigned superframe_sizes(const uint8_t *data, size_t len, size_t *sizes)
{
    if (len == 0)
        return 0;
    uint8_t marker = data[len - 1];
    if ((marker & 0xe0) != 0xc0)
        return 0;
    unsigned size_bytes = ((marker >> 3) & 0x3) + 1u;
    unsigned frames = (marker & 0x7) + 1u;
    size_t index_len = 2 + (size_t)size_bytes * frames;
    if (len < index_len || data[len - index_len] != marker)
        return 0;
    const uint8_t *p = data + len - index_len + 1;
    size_t total = 0;
    for (unsigned i = 0; i < frames; i++) {
        size_t size = 0;
        for (unsigned b = 0; b < size_bytes; b++)
            size |= (size_t)*p++ << (8 * b);
        sizes[i] = size;
        total += size;
    }
    return total == len - index_len ? frames : 0;
}

/* Rewrites the frame buffer to hold the layer frames bottom..top: one alone as it is, more
 * as one superframe (a layer frame that is a superframe itself gives up its frames). */
static int keep_layers(const struct vp9_depay *state, struct cap_buf *frame, int bottom, int top)
{
    if (bottom == top) {
        const struct layer_frame *layer = &state->layers[top];
        memmove(frame->data, frame->data + layer->start, layer->len);
        frame->len = layer->len;
        return 0;
    }
    size_t sizes[MAX_SUPERFRAME];
    unsigned count = 0;
    size_t written = 0;
    /* Kept layer frames lie in rising order, so each moves down over bytes already used. */
    for (int sid = bottom; sid <= top; sid++) {
        const struct layer_frame *layer = &state->layers[sid];
        const uint8_t *src = frame->data + layer->start;
        size_t inner[MAX_SUPERFRAME];
        unsigned frames = superframe_sizes(src, layer->len, inner);
        size_t bytes = layer->len;
        if (frames == 0) {
            frames = 1;
            inner[0] = layer->len;
        } else {
            bytes = 0;
            for (unsigned i = 0; i < frames; i++)
                bytes += inner[i];
        }
        if (count + frames > MAX_SUPERFRAME)
            return CAP_EFORMAT;
        memmove(frame->data + written, src, bytes);
        written += bytes;
        memcpy(sizes + count, inner, frames * sizeof(inner[0]));
        count += frames;
    }
    frame->len = written;

    size_t largest = 0;
    for (unsigned i = 0; i < count; i++)
        largest = sizes[i] > largest ? sizes[i] : largest;
    unsigned size_bytes = largest <= 0xff ? 1 : largest <= 0xffff ? 2 : largest <= 0xffffff ? 3 : 4;
    uint8_t index[2 + 4 * MAX_SUPERFRAME];
    size_t index_len = 0;
    uint8_t marker = (uint8_t)(0xc0 | (size_bytes - 1) << 3 | (count - 1));
    index[index_len++] = marker;
    for (unsigned i = 0; i < count; i++)
        for (unsigned b = 0; b < size_bytes; b++)
            index[index_len++] = (uint8_t)(sizes[i] >> (8 * b));
    index[index_len++] = marker;
    return cap_buf_append(frame, index, index_len);
}

struct bit_reader {
    const uint8_t *data;
    size_t len;
    size_t bit;
};

static bool read_bits(struct bit_reader *reader, unsigned count, unsigned *value)
{
    if (reader->bit + count > reader->len * 8)
        return false;
    unsigned v = 0;
    for (unsigned i = 0; i < count; i++, reader->bit++)
        v = v << 1 | ((reader->data[reader->bit / 8] >> (7 - reader->bit % 8)) & 1u);
    *value = v;
    return true;
}

/* Reads a frame's uncompressed header (VP9 spec §6.2): 1 for a key frame (with its size,
 * 0 for a size past 16 bits), 0 for any other frame, CAP_EFORMAT for a key frame whose
 * sync code or size is not there. */
static int read_key_frame_header(const uint8_t *data, size_t len, uint16_t *width, uint16_t *height)
{
    struct bit_reader reader = {data, len, 0};
    unsigned marker, low, high, value;
    if (!read_bits(&reader, 2, &marker) || marker != 2 || !read_bits(&reader, 1, &low) ||
        !read_bits(&reader, 1, &high))
        return 0;
    unsigned profile = high << 1 | low;
    if (profile == 3 && !read_bits(&reader, 1, &value)) /* reserved_zero */
        return 0;
    if (!read_bits(&reader, 1, &value) || value) /* show_existing_frame */
        return 0;
    if (!read_bits(&reader, 1, &value) || value) /* frame_type: 0 is KEY_FRAME */
        return 0;
    unsigned sync, color_space, frame_width, frame_height;
    if (!read_bits(&reader, 2, &value) || /* show_frame, error_resilient_mode */
        !read_bits(&reader, 24, &sync) || sync != 0x498342)
        return CAP_EFORMAT;
    /* color_config(): its length depends on the profile and the color space. */
    if (profile >= 2 && !read_bits(&reader, 1, &value)) /* ten_or_twelve_bit */
        return CAP_EFORMAT;
    if (!read_bits(&reader, 3, &color_space))
        return CAP_EFORMAT;
    bool odd_profile = profile == 1 || profile == 3;
    unsigned color_bits =
        color_space != 7 /* CS_RGB */ ? 1u + (odd_profile ? 3u : 0u) : (odd_profile ? 1u : 0u);
    if (color_bits && !read_bits(&reader, color_bits, &value))
        return CAP_EFORMAT;
    if (!read_bits(&reader, 16, &frame_width) || !read_bits(&reader, 16, &frame_height))
        return CAP_EFORMAT;
    *width = frame_width < 0xffff ? (uint16_t)(frame_width + 1) : 0;
    *height = frame_height < 0xffff ? (uint16_t)(frame_height + 1) : 0;
    return 1;
}

/* Key frame judgement and coded size for the frame now in the buffer, whose first bytes
 * are the bottom layer frame's. */
static int describe(const struct vp9_depay *state, const struct cap_buf *frame, int bottom, int top,
                    struct cap_frame *out)
{
    const struct layer_frame *base = &state->layers[bottom];
    if (!base->begun || base->inter_picture)
        return 0;
    uint16_t width = 0, height = 0;
    int key = read_key_frame_header(frame->data, frame->len, &width, &height);
    if (key <= 0)
        return key;
    out->keyframe = true;
    /* The header's size is the bottom layer's; the structure knows the others. */
    if (bottom != top) {
        width = height = 0;
        if ((unsigned)top < state->size_count) {
            width = state->width[top];
            height = state->height[top];
        }
    }
    out->width = width && height ? width : 0;
    out->height = width && height ? height : 0;
    return 0;
}

static int finish_picture(struct vp9_depay *state, struct cap_buf *frame, struct cap_frame *out)
{
    if (frame->len == 0)
        return CAP_EFORMAT;
    /* The assembler saw everything through to the end: the last layer frame is whole even
     * without its E bit (a picture cut short by loss leaves it open, and so broken). */
    if (out->complete)
        close_open_layer(state);
    else
        break_open_layer(state);

    unsigned present = 0;
    int only = 0;
    for (int sid = 0; sid < MAX_LAYERS; sid++)
        if (state->layers[sid].present) {
            present++;
            only = sid;
        }
    if (present <= 1) {
        /* One layer frame (the usual case): the assembler's verdict on completeness
         * stands, unless the frame predicts from a layer the picture did not bring. */
        if (state->layers[only].inter_layer) {
            out->complete = false;
            return 0;
        }
        return describe(state, frame, only, only, out);
    }

    int top = MAX_LAYERS - 1;
    while (top >= 0 && !decodable(state, top))
        top--;
    if (top < 0) {
        out->complete = false; /* kept as it came, for whoever wants to look */
        return 0;
    }
    int bottom = top;
    while (state->layers[bottom].inter_layer)
        bottom--;
    int err = keep_layers(state, frame, bottom, top);
    if (err)
        return err;
    /* Every packet of what is kept arrived, whatever happened to the layers above it. */
    out->complete = true;
    return describe(state, frame, bottom, top, out);
}

static int vp9_finish(void *priv, struct cap_buf *frame, struct cap_frame *out)
{
    struct vp9_depay *state = priv;
    int err = finish_picture(state, frame, out);
    forget_picture(state);
    return err;
}

static void vp9_reset(void *priv)
{
    forget_picture(priv);
}

const struct cap_depay_ops cap_depay_vp9 = {
    .name = "vp9",
    .priv_size = sizeof(struct vp9_depay),
    .init = vp9_init,
    .packet = vp9_packet,
    .finish = vp9_finish,
    .reset = vp9_reset,
};
