/* RTCP compound packet parsing (RFC 3550 §6, RFC 4585 feedback, RFC 5506 reduced size).
 * A compound is accepted whole or rejected whole: every packet's length field, padding and
 * type-specific layout is checked against the bytes actually present, and the views handed
 * back point into the caller's buffer. */
#include "rtp/rtcp.h"

#include <string.h>

#include "capstan/error.h"
#include "util/bytes.h"

#define HEADER_LEN 4
#define REPORT_BLOCK_LEN 24
#define SR_FIXED_LEN 28
#define RR_FIXED_LEN 8
#define FEEDBACK_FIXED_LEN 12
#define APP_FIXED_LEN 12

/* SDES (RFC 3550 §6.5): `count` chunks, each an SSRC then items of (type, length, text)
 * ended by a zero type byte and zero-filled to the next 32-bit boundary. `len` excludes
 * padding, so an item running into the padding is as malformed as one past the packet. */
static int check_sdes(const uint8_t *p, size_t len, unsigned count, struct cap_rtcp_packet *out)
{
    size_t at = HEADER_LEN;
    for (unsigned chunk = 0; chunk < count; chunk++) {
        if (len - at < 4)
            return CAP_EFORMAT;
        if (chunk == 0)
            out->ssrc = cap_load_be32(p + at);
        at += 4;
        for (;;) {
            if (at >= len)
                return CAP_EFORMAT;
            if (p[at] == 0)
                break;
            if (len - at < 2 || len - at - 2 < p[at + 1])
                return CAP_EFORMAT;
            at += 2 + (size_t)p[at + 1];
        }
        /* Step over the terminating null and the zeros up to the chunk boundary. */
        at = (at + 1 + 3) & ~(size_t)3;
        if (at > len)
            return CAP_EFORMAT;
    }
    return 0;
}

/* BYE (RFC 3550 §6.6): `count` SSRCs, then optionally a length byte and that much reason. */
static int check_bye(const uint8_t *p, size_t len, unsigned count, struct cap_rtcp_packet *out)
{
    size_t at = HEADER_LEN;
    if ((len - at) / 4 < count)
        return CAP_EFORMAT;
    if (count > 0)
        out->ssrc = cap_load_be32(p + at);
    at += (size_t)count * 4;
    if (at < len && len - at - 1 < p[at])
        return CAP_EFORMAT;
    return 0;
}

/* Fills the type-specific view of one packet whose header has already been checked; `len`
 * is the packet length without padding. */
static int parse_body(const uint8_t *p, size_t len, struct cap_rtcp_packet *out)
{
    switch (out->type) {
    case CAP_RTCP_SR:
        if (len < SR_FIXED_LEN || (len - SR_FIXED_LEN) / REPORT_BLOCK_LEN < out->count)
            return CAP_EFORMAT;
        out->ssrc = cap_load_be32(p + 4);
        out->ntp = cap_load_be64(p + 8);
        out->rtp_ts = cap_load_be32(p + 16);
        out->packet_count = cap_load_be32(p + 20);
        out->octet_count = cap_load_be32(p + 24);
        out->report_blocks = p + SR_FIXED_LEN;
        return 0;
    case CAP_RTCP_RR:
        if (len < RR_FIXED_LEN || (len - RR_FIXED_LEN) / REPORT_BLOCK_LEN < out->count)
            return CAP_EFORMAT;
        out->ssrc = cap_load_be32(p + 4);
        out->report_blocks = p + RR_FIXED_LEN;
        return 0;
    case CAP_RTCP_SDES:
        return check_sdes(p, len, out->count, out);
    case CAP_RTCP_BYE:
        return check_bye(p, len, out->count, out);
    case CAP_RTCP_APP:
        if (len < APP_FIXED_LEN)
            return CAP_EFORMAT;
        out->ssrc = cap_load_be32(p + 4);
        memcpy(out->app_name, p + 8, 4);
        out->app_name[4] = '\0';
        return 0;
    case CAP_RTCP_RTPFB:
    case CAP_RTCP_PSFB:
        if (len < FEEDBACK_FIXED_LEN)
            return CAP_EFORMAT;
        out->ssrc = cap_load_be32(p + 4);
        out->media_ssrc = cap_load_be32(p + 8);
        out->fci = p + FEEDBACK_FIXED_LEN;
        out->fci_len = len - FEEDBACK_FIXED_LEN;
        return 0;
    default:
        /* XR and the types we do not decode: keep the sender SSRC when there is one. */
        if (len >= 8)
            out->ssrc = cap_load_be32(p + 4);
        return 0;
    }
}

int cap_rtcp_parse(const uint8_t *data, size_t len, struct cap_rtcp_packet *out, size_t max)
{
    if ((!data && len > 0) || (!out && max > 0))
        return CAP_EINVAL;
    if (len < HEADER_LEN)
        return CAP_ETRUNC;

    size_t count = 0;
    size_t at = 0;
    while (at < len) {
        const uint8_t *p = data + at;
        size_t remaining = len - at;
        /* Fewer than a header's worth of bytes after a packet: the compound does not end
         * where its last length field says it does. */
        if (remaining < HEADER_LEN)
            return CAP_EFORMAT;
        if (p[0] >> 6 != 2)
            return CAP_EVERSION;
        if (p[1] < 192 || p[1] > 223)
            return CAP_EFORMAT;
        size_t packet_len = ((size_t)cap_load_be16(p + 2) + 1) * 4;
        if (packet_len > remaining)
            return CAP_EFORMAT;

        size_t body_len = packet_len;
        if (p[0] & 0x20) {
            /* RFC 3550 §6.4.1: only the last packet of a compound may be padded. */
            if (packet_len != remaining)
                return CAP_EFORMAT;
            uint8_t pad = p[packet_len - 1];
            if (pad == 0 || pad > packet_len - HEADER_LEN)
                return CAP_EFORMAT;
            body_len -= pad;
        }

        /* Past `max` keep validating into a scratch entry, so a malformed compound reports
         * what is wrong with it rather than merely that it is long. */
        struct cap_rtcp_packet scratch;
        struct cap_rtcp_packet *pkt = count < max ? &out[count] : &scratch;
        memset(pkt, 0, sizeof(*pkt));
        pkt->type = p[1];
        pkt->count = p[0] & 0x1f;
        pkt->data = p;
        pkt->len = packet_len;
        int rc = parse_body(p, body_len, pkt);
        if (rc < 0)
            return rc;
        count++;
        at += packet_len;
    }
    if (count > max)
        return CAP_ELIMIT;
    return (int)count;
}

void cap_rtcp_report_block(const struct cap_rtcp_packet *pkt, unsigned i,
                           struct cap_rtcp_report_block *out)
{
    memset(out, 0, sizeof(*out));
    if (!pkt->report_blocks || i >= pkt->count)
        return;
    const uint8_t *b = pkt->report_blocks + (size_t)i * REPORT_BLOCK_LEN;
    out->ssrc = cap_load_be32(b);
    out->fraction_lost = b[4];
    uint32_t lost = cap_load_be24(b + 5);
    /* Sign-extend the 24-bit two's complement count without relying on shifts of
     * negative values. */
    out->cumulative_lost = (lost & 0x800000) ? (int32_t)lost - 0x1000000 : (int32_t)lost;
    out->highest_seq = cap_load_be32(b + 8);
    out->jitter = cap_load_be32(b + 12);
    out->lsr = cap_load_be32(b + 16);
    out->dlsr = cap_load_be32(b + 20);
}

uint32_t cap_rtcp_sender_ssrc(const struct cap_rtcp_packet *packets, int count)
{
    if (!packets || count <= 0)
        return 0;
    return packets[0].ssrc;
}
