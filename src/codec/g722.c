/* G.722 depacketizer (RFC 3551 §4.5.2): the payload is the encoder's output bytes, one RTP
 * packet per frame, refused only when empty. The RTP clock is 8000 Hz although the codec
 * samples at 16000 Hz (an error in RFC 1890 kept for compatibility), so timestamps advance
 * by half the sample count: one byte per timestamp tick at 64 kbit/s. */
#include "codec/depay.h"

#include "capstan/error.h"

static int g722_packet(void *priv, const struct cap_rtp_packet *pkt, struct cap_buf *frame,
                       struct cap_depay_packet_info *info)
{
    if (pkt->payload_len == 0)
        return CAP_EFORMAT;
    info->starts_frame = true;
    info->ends_frame = true;
    return cap_buf_append(frame, pkt->payload, pkt->payload_len);
}

static int g722_finish(void *priv, struct cap_buf *frame, struct cap_frame *out)
{
    out->keyframe = true; /* ADPCM state resynchronises by itself; any frame is a start */
    return 0;
}

const struct cap_depay_ops cap_depay_g722 = {
    .name = "g722",
    .packet = g722_packet,
    .finish = g722_finish,
};
