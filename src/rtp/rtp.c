/* RTP packet parsing (RFC 3550 §5.1), RFC 8285 header-extension walking and the RFC 5761
 * RTP/RTCP demultiplexing test. Everything here reads straight from the caller's buffer
 * and checks each length from the wire before it is used; nothing is allocated or copied. */
#include "rtp/rtp.h"

#include <string.h>

#include "capstan/error.h"
#include "util/bytes.h"

int cap_rtp_parse(const uint8_t *data, size_t len, struct cap_rtp_packet *out)
{
    if (!out || (!data && len > 0))
        return CAP_EINVAL;
    memset(out, 0, sizeof(*out));
    if (len < CAP_RTP_HEADER_MIN)
        return CAP_ETRUNC;

    out->version = data[0] >> 6;
    if (out->version != 2)
        return CAP_EVERSION;
    out->padding = (data[0] & 0x20) != 0;
    out->extension = (data[0] & 0x10) != 0;
    out->csrc_count = data[0] & 0x0f;
    out->marker = (data[1] & 0x80) != 0;
    out->payload_type = data[1] & 0x7f;
    out->sequence = cap_load_be16(data + 2);
    out->timestamp = cap_load_be32(data + 4);
    out->ssrc = cap_load_be32(data + 8);

    size_t offset = CAP_RTP_HEADER_MIN;
    if (len - offset < (size_t)out->csrc_count * 4)
        return CAP_ETRUNC;
    for (unsigned i = 0; i < out->csrc_count; i++, offset += 4)
        out->csrc[i] = cap_load_be32(data + offset);

    if (out->extension) {
        if (len - offset < 4)
            return CAP_ETRUNC;
        out->ext_profile = cap_load_be16(data + offset);
        out->ext_len = (size_t)cap_load_be16(data + offset + 2) * 4;
        offset += 4;
        if (len - offset < out->ext_len)
            return CAP_ETRUNC;
        out->ext_data = data + offset;
        offset += out->ext_len;
    }

    size_t remaining = len - offset;
    if (out->padding) {
        /* The count byte is itself padding, so it counts at least 1 and lies after the
         * headers: with nothing after them the count exceeds the 0 bytes remaining. */
        out->padding_len = data[len - 1];
        if (out->padding_len == 0 || out->padding_len > remaining)
            return CAP_EFORMAT;
        remaining -= out->padding_len;
    }
    out->payload = data + offset;
    out->payload_len = remaining;
    return 0;
}

bool cap_rtp_looks_like_rtcp(const uint8_t *data, size_t len)
{
    if (!data || len < 2 || data[0] >> 6 != 2)
        return false;
    /* Marker bit and payload type together: RTCP types 192..223 never collide with the
     * dynamic RTP payload types a muxed session may use (RFC 5761 §4). */
    return data[1] >= 192 && data[1] <= 223;
}

/* RFC 8285 §4.2: one byte of id (4 bits) and length-1 (4 bits) per element. A zero byte is
 * padding; id 15 is reserved and stops the walk with the elements seen so far. Id 0 with a
 * non-zero length is neither padding nor a usable element, so the block is malformed. */
static int next_one_byte(const struct cap_rtp_packet *pkt, size_t *offset,
                         struct cap_rtp_ext_element *out)
{
    size_t at = *offset;
    while (at < pkt->ext_len && pkt->ext_data[at] == 0)
        at++;
    if (at >= pkt->ext_len) {
        *offset = pkt->ext_len;
        return 0;
    }
    uint8_t id = pkt->ext_data[at] >> 4;
    uint8_t len = (uint8_t)((pkt->ext_data[at] & 0x0f) + 1);
    if (id == 15) {
        *offset = pkt->ext_len;
        return 0;
    }
    if (id == 0 || pkt->ext_len - at - 1 < len)
        return CAP_EFORMAT;
    out->id = id;
    out->len = len;
    out->data = pkt->ext_data + at + 1;
    *offset = at + 1 + len;
    return 1;
}

/* RFC 8285 §4.3: an id byte and a length byte (0..255) per element; a zero id byte is
 * padding. */
static int next_two_byte(const struct cap_rtp_packet *pkt, size_t *offset,
                         struct cap_rtp_ext_element *out)
{
    size_t at = *offset;
    while (at < pkt->ext_len && pkt->ext_data[at] == 0)
        at++;
    if (at >= pkt->ext_len) {
        *offset = pkt->ext_len;
        return 0;
    }
    if (pkt->ext_len - at < 2)
        return CAP_EFORMAT;
    uint8_t len = pkt->ext_data[at + 1];
    if (pkt->ext_len - at - 2 < len)
        return CAP_EFORMAT;
    out->id = pkt->ext_data[at];
    out->len = len;
    out->data = pkt->ext_data + at + 2;
    *offset = at + 2 + len;
    return 1;
}

int cap_rtp_ext_next(const struct cap_rtp_packet *pkt, size_t *offset,
                     struct cap_rtp_ext_element *out)
{
    if (!pkt || !offset || !out)
        return CAP_EINVAL;
    if (!pkt->extension)
        return 0;
    if (pkt->ext_profile == CAP_RTP_EXT_ONE_BYTE)
        return *offset >= pkt->ext_len ? 0 : next_one_byte(pkt, offset, out);
    if ((pkt->ext_profile & CAP_RTP_EXT_TWO_BYTE_MASK) == CAP_RTP_EXT_TWO_BYTE)
        return *offset >= pkt->ext_len ? 0 : next_two_byte(pkt, offset, out);
    return CAP_EFORMAT;
}

int cap_rtp_ext_find(const struct cap_rtp_packet *pkt, uint8_t id, struct cap_rtp_ext_element *out)
{
    size_t offset = 0;
    struct cap_rtp_ext_element element;
    int rc;
    while ((rc = cap_rtp_ext_next(pkt, &offset, &element)) == 1) {
        if (element.id == id) {
            if (out)
                *out = element;
            return 1;
        }
    }
    return rc;
}
