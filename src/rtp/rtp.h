/* RTP (RFC 3550) packet parsing and validation, RFC 8285 header extensions, and the
 * RFC 5761 rule that tells RTP from RTCP on a multiplexed port. Parsing never copies:
 * the parsed view points into the caller's buffer. */
#ifndef CAP_RTP_RTP_H
#define CAP_RTP_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAP_RTP_HEADER_MIN 12
#define CAP_RTP_MAX_CSRC 15

/* RFC 8285 profile values of the extension header. */
#define CAP_RTP_EXT_ONE_BYTE 0xBEDE
#define CAP_RTP_EXT_TWO_BYTE_MASK 0xFFF0
#define CAP_RTP_EXT_TWO_BYTE 0x1000

struct cap_rtp_packet {
    uint8_t version;
    bool padding;
    bool extension;
    bool marker;
    uint8_t csrc_count;
    uint8_t payload_type;
    uint16_t sequence;
    uint32_t timestamp;
    uint32_t ssrc;
    uint32_t csrc[CAP_RTP_MAX_CSRC];
    uint16_t ext_profile;      /* when extension: the 16-bit "defined by profile" field */
    const uint8_t *ext_data;   /* extension body, ext_len bytes (a multiple of 4) */
    size_t ext_len;
    const uint8_t *payload;    /* payload after header, CSRCs and extension, padding removed */
    size_t payload_len;
    uint8_t padding_len;       /* count from the last byte when padding is set, else 0 */
};

/* Parses and validates one RTP packet. Returns 0, or CAP_ETRUNC (shorter than its
 * header, CSRC list or extension says), CAP_EVERSION (version != 2), CAP_EFORMAT
 * (padding count 0 or longer than the payload). */
int cap_rtp_parse(const uint8_t *data, size_t len, struct cap_rtp_packet *out);

/* RFC 5761 §4: a packet on a muxed port whose second byte is 192..223 (RTCP packet
 * types 192..223) is RTCP. Checks the version too; false for anything shorter than 2. */
bool cap_rtp_looks_like_rtcp(const uint8_t *data, size_t len);

/* One RFC 8285 header extension element. */
struct cap_rtp_ext_element {
    uint8_t id;
    uint8_t len;
    const uint8_t *data;
};

/* Walks the elements of a one-byte (0xBEDE) or two-byte (0x100X) extension block.
 * Start with *offset = 0. Returns 1 with an element, 0 at the end, CAP_EFORMAT if an
 * element runs past the block or the profile is neither form (a one-byte id of 15 ends
 * the walk, as RFC 8285 says). Padding bytes (0) are skipped. */
int cap_rtp_ext_next(const struct cap_rtp_packet *pkt, size_t *offset,
                     struct cap_rtp_ext_element *out);

/* Finds the element with the given id; 1 found, 0 absent, negative on a malformed block. */
int cap_rtp_ext_find(const struct cap_rtp_packet *pkt, uint8_t id,
                     struct cap_rtp_ext_element *out);

#endif
