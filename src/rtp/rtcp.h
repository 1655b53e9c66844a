/* RTCP (RFC 3550 §6, RFC 4585 feedback) compound packet parsing with every length
 * checked. A compound packet parses whole or not at all: a lying length or garbage after
 * a valid first packet rejects it. Views point into the caller's buffer. */
#ifndef CAP_RTP_RTCP_H
#define CAP_RTP_RTCP_H

#include <stddef.h>
#include <stdint.h>

enum cap_rtcp_type {
    CAP_RTCP_SR = 200,
    CAP_RTCP_RR = 201,
    CAP_RTCP_SDES = 202,
    CAP_RTCP_BYE = 203,
    CAP_RTCP_APP = 204,
    CAP_RTCP_RTPFB = 205,
    CAP_RTCP_PSFB = 206,
    CAP_RTCP_XR = 207,
};

#define CAP_RTCP_MAX_PACKETS 32

struct cap_rtcp_report_block {
    uint32_t ssrc;
    uint8_t fraction_lost;
    int32_t cumulative_lost; /* 24-bit signed */
    uint32_t highest_seq;
    uint32_t jitter;
    uint32_t lsr;
    uint32_t dlsr;
};

/* One packet of a compound. Fields beyond `type`, `count`, `ssrc` depend on type. */
struct cap_rtcp_packet {
    uint8_t type;
    uint8_t count;            /* RC / SC / FMT / subtype: the 5 bits after P */
    uint32_t ssrc;            /* sender SSRC (SR, RR, RTPFB, PSFB, APP, XR); first SSRC/CSRC of SDES and BYE, 0 if none */
    const uint8_t *data;      /* the whole packet, header included, padding included */
    size_t len;
    /* SR */
    uint64_t ntp;
    uint32_t rtp_ts;
    uint32_t packet_count;
    uint32_t octet_count;
    /* SR, RR: report blocks (count of them), raw 24-byte blocks start here */
    const uint8_t *report_blocks;
    /* RTPFB, PSFB: media source SSRC and FCI */
    uint32_t media_ssrc;
    const uint8_t *fci;
    size_t fci_len;
    /* APP */
    char app_name[5];
};

/* Parses a compound packet into at most `max` entries of `out`; returns the number of
 * packets, or CAP_ETRUNC, CAP_EVERSION, CAP_EFORMAT (length field past the buffer or
 * not ending on the buffer's end, padding on a packet that is not last, SDES items past
 * their chunk, fewer report blocks than counted), CAP_ELIMIT (more than max packets).
 * Unknown packet types in 192..223 are kept with only the common fields. Per RFC 5506 a
 * compound need not start with SR/RR. */
int cap_rtcp_parse(const uint8_t *data, size_t len, struct cap_rtcp_packet *out, size_t max);

/* Decodes report block i (0-based, < count) of an SR or RR. */
void cap_rtcp_report_block(const struct cap_rtcp_packet *pkt, unsigned i,
                           struct cap_rtcp_report_block *out);

/* The SSRC a compound is about: the sender SSRC of its first packet. 0 with none. */
uint32_t cap_rtcp_sender_ssrc(const struct cap_rtcp_packet *packets, int count);

#endif
