/* Opus depacketizer (RFC 7587): each RTP payload is exactly one Opus packet and one frame.
 * The packet's framing (RFC 6716 §3.2: TOC byte, frame count, frame lengths, padding) is
 * checked so a damaged payload is reported here rather than by a decoder much later. A
 * 1-byte payload (TOC only: a code-0 packet with an empty frame) is how DTX is signalled
 * and passes through. */
#include "codec/depay.h"

#include "capstan/error.h"

#define OPUS_FRAME_BYTES_MAX 1275     /* RFC 6716 R2 */
#define OPUS_PACKET_DURATION_MAX 1200 /* 120 ms, in units of 0.1 ms (R5) */

/* Frame duration in 0.1 ms from the TOC's configuration number (RFC 6716 Table 2). */
static unsigned frame_duration(uint8_t toc)
{
    static const unsigned silk[] = {100, 200, 400, 600};
    static const unsigned hybrid[] = {100, 200};
    static const unsigned celt[] = {25, 50, 100, 200};
    unsigned config = toc >> 3;
    if (config < 12)
        return silk[config % 4];
    if (config < 16)
        return hybrid[config % 2];
    return celt[config % 4];
}

/* Reads one frame length (RFC 6716 §3.2.1: one byte below 252, else two). Advances *pos. */
static int read_frame_length(const uint8_t *p, size_t len, size_t *pos, size_t *out)
{
    if (*pos >= len)
        return CAP_EFORMAT;
    size_t first = p[(*pos)++];
    if (first < 252) {
        *out = first;
        return 0;
    }
    if (*pos >= len)
        return CAP_EFORMAT;
    *out = first + 4 * (size_t)p[(*pos)++];
    return 0;
}

/* RFC 6716 §3.4 requirements R1-R7 on the packet's framing (frame contents are not read). */
static int check_packet(const uint8_t *p, size_t len)
{
    if (len < 1)
        return CAP_EFORMAT; /* R1 */
    size_t pos = 1, body, first;
    switch (p[0] & 0x3) {
    case 0: /* one frame */
        return len - 1 <= OPUS_FRAME_BYTES_MAX ? 0 : CAP_EFORMAT;
    case 1: /* two frames of equal size */
        body = len - 1;
        return body % 2 == 0 && body / 2 <= OPUS_FRAME_BYTES_MAX ? 0 : CAP_EFORMAT; /* R3 */
    case 2: /* two frames, the first one's length given */
        if (read_frame_length(p, len, &pos, &first) || first > len - pos) /* R4 */
            return CAP_EFORMAT;
        return len - pos - first <= OPUS_FRAME_BYTES_MAX ? 0 : CAP_EFORMAT;
    default: /* code 3: a frame count byte, optional padding, CBR or VBR frames */
        break;
    }
    if (len < 2)
        return CAP_EFORMAT; /* R6 */
    uint8_t count_byte = p[pos++];
    unsigned count = count_byte & 0x3f;
    bool vbr = count_byte & 0x80, padded = count_byte & 0x40;
    if (count == 0 || count * frame_duration(p[0]) > OPUS_PACKET_DURATION_MAX)
        return CAP_EFORMAT; /* R5 */
    size_t padding = 0;
    while (padded) { /* each 255 means 254 bytes of padding and another length byte */
        if (pos >= len)
            return CAP_EFORMAT;
        uint8_t b = p[pos++];
        padding += b == 255 ? 254 : b;
        padded = b == 255;
    }
    if (padding > len - pos)
        return CAP_EFORMAT; /* R6/R7: the padding runs past the end */
    size_t end = len - padding;
    if (!vbr) {
        body = end - pos;
        return body % count == 0 && body / count <= OPUS_FRAME_BYTES_MAX ? 0 : CAP_EFORMAT;
    }
    size_t used = 0;
    for (unsigned i = 0; i + 1 < count; i++) {
        size_t frame;
        if (read_frame_length(p, end, &pos, &frame))
            return CAP_EFORMAT;
        used += frame;
    }
    if (pos > end || used > end - pos) /* R7 */
        return CAP_EFORMAT;
    return end - pos - used <= OPUS_FRAME_BYTES_MAX ? 0 : CAP_EFORMAT;
}

static int opus_packet(void *priv, const struct cap_rtp_packet *pkt, struct cap_buf *frame,
                       struct cap_depay_packet_info *info)
{
    int err = check_packet(pkt->payload, pkt->payload_len);
    if (err)
        return err;
    info->starts_frame = true;
    info->ends_frame = true;
    return cap_buf_append(frame, pkt->payload, pkt->payload_len);
}

static int opus_finish(void *priv, struct cap_buf *frame, struct cap_frame *out)
{
    out->keyframe = true; /* Opus decoders start cleanly at any packet */
    return 0;
}

const struct cap_depay_ops cap_depay_opus = {
    .name = "opus",
    .packet = opus_packet,
    .finish = opus_finish,
};
