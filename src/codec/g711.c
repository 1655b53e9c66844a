/* G.711 depacketizers (RFC 3551 §4.5.14): PCMU (mu-law) and PCMA (A-law) payloads are
 * plain 8-bit samples, one RTP packet per frame. Nothing to reassemble; the only thing to
 * refuse is a packet that carries no samples. */
#include "codec/depay.h"

#include "capstan/error.h"

static int g711_packet(void *priv, const struct cap_rtp_packet *pkt, struct cap_buf *frame,
                       struct cap_depay_packet_info *info)
{
    if (pkt->payload_len == 0)
        return CAP_EFORMAT;
    info->starts_frame = true;
    info->ends_frame = true;
    return cap_buf_append(frame, pkt->payload, pkt->payload_len);
}

static int g711_finish(void *priv, struct cap_buf *frame, struct cap_frame *out)
{
    out->keyframe = true; /* every block of samples decodes on its own */
    return 0;
}

const struct cap_depay_ops cap_depay_pcmu = {
    .name = "pcmu",
    .packet = g711_packet,
    .finish = g711_finish,
};

const struct cap_depay_ops cap_depay_pcma = {
    .name = "pcma",
    .packet = g711_packet,
    .finish = g711_finish,
};
