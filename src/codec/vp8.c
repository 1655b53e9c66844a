/* VP8 depacketizer (RFC 7741): strips each packet's payload descriptor and concatenates the
 * VP8 data into the frame a decoder or an IVF/WebM muxer wants. Finishing a frame reads the
 * frame tag and, for key frames, the key frame header (RFC 6386 §9.1) for the coded size. */
#include "codec/depay.h"

#include "capstan/error.h"

#include <stdbool.h>
#include <stdint.h>

/* Payload descriptor, first byte (RFC 7741 §4.2). Bits R and N say nothing we need. */
#define DESC_EXTENDED 0x80        /* X: the extension byte follows */
#define DESC_PARTITION_START 0x10 /* S: the packet starts a VP8 partition */
#define DESC_PARTITION_INDEX 0x07 /* PID */

/* Extension byte: which optional fields follow, in this order. */
#define EXT_PICTURE_ID 0x80 /* I */
#define EXT_TL0PICIDX 0x40  /* L */
#define EXT_TID 0x20        /* T: TID/Y/KEYIDX byte */
#define EXT_KEYIDX 0x10     /* K: the same byte */

#define PICTURE_ID_LONG 0x80 /* M: the picture ID takes 15 bits (two bytes) */

/* RFC 6386 §9.1: a 3-byte frame tag whose bit 0 is 0 for key frames; key frames go on with
 * a start code and two 16-bit fields, 14 bits of size and 2 of scaling. */
#define FRAME_TAG_INTER 0x01
#define KEY_HEADER_SIZE 10
#define KEY_SIZE_MASK 0x3fff

struct vp8_depay {
    bool in_frame;   /* a packet of the current frame went through packet() */
    bool from_start; /* that frame's first packet carried its first byte */
};

/* Returns the descriptor's size, or CAP_EFORMAT when a field it announces is not there or
 * no VP8 data follows it. */
static int descriptor_size(const uint8_t *payload, size_t len)
{
    size_t size = 1;
    if (len < size)
        return CAP_EFORMAT;
    if (payload[0] & DESC_EXTENDED) {
        if (len < size + 1)
            return CAP_EFORMAT;
        uint8_t extension = payload[size++];
        if (extension & EXT_PICTURE_ID) {
            if (len < size + 1)
                return CAP_EFORMAT;
            if (payload[size++] & PICTURE_ID_LONG) {
                if (len < size + 1)
                    return CAP_EFORMAT;
                size++;
            }
        }
        if (extension & EXT_TL0PICIDX) {
            if (len < size + 1)
                return CAP_EFORMAT;
            size++;
        }
        if (extension & (EXT_TID | EXT_KEYIDX)) {
            if (len < size + 1)
                return CAP_EFORMAT;
            size++;
        }
    }
    if (size >= len)
        return CAP_EFORMAT;
    return (int)size;
}

static int vp8_packet(void *priv, const struct cap_rtp_packet *pkt, struct cap_buf *frame,
                      struct cap_depay_packet_info *info)
{
    struct vp8_depay *state = priv;
    bool first = !state->in_frame;
    state->in_frame = true;
    /* A padding-only packet (bandwidth probing) carries no descriptor and adds nothing. */
    if (pkt->payload_len == 0)
        return 0;
    int size = descriptor_size(pkt->payload, pkt->payload_len);
    if (size < 0)
        return size;
    bool starts =
        (pkt->payload[0] & DESC_PARTITION_START) && (pkt->payload[0] & DESC_PARTITION_INDEX) == 0;
    int err = cap_buf_append(frame, pkt->payload + size, pkt->payload_len - (size_t)size);
    if (err)
        return err;
    if (first)
        state->from_start = starts;
    info->starts_frame = starts;
    info->ends_frame = pkt->marker;
    return 0;
}

static int vp8_finish(void *priv, struct cap_buf *frame, struct cap_frame *out)
{
    struct vp8_depay *state = priv;
    bool from_start = state->from_start;
    *state = (struct vp8_depay){0};
    if (frame->len == 0)
        return CAP_EFORMAT;
    /* Without the frame's first bytes, what leads the buffer is not the frame tag. */
    if (!from_start)
        return 0;
    const uint8_t *data = frame->data;
    if (data[0] & FRAME_TAG_INTER)
        return 0;
    if (frame->len < KEY_HEADER_SIZE)
        return CAP_EFORMAT;
    if (data[3] != 0x9d || data[4] != 0x01 || data[5] != 0x2a)
        return CAP_EFORMAT;
    uint16_t width = (uint16_t)((data[6] | data[7] << 8) & KEY_SIZE_MASK);
    uint16_t height = (uint16_t)((data[8] | data[9] << 8) & KEY_SIZE_MASK);
    if (width == 0 || height == 0)
        return CAP_EFORMAT;
    out->keyframe = true;
    out->width = width;
    out->height = height;
    return 0;
}

static void vp8_reset(void *priv)
{
    struct vp8_depay *state = priv;
    *state = (struct vp8_depay){0};
}

const struct cap_depay_ops cap_depay_vp8 = {
    .name = "vp8",
    .priv_size = sizeof(struct vp8_depay),
    .packet = vp8_packet,
    .finish = vp8_finish,
    .reset = vp8_reset,
};
