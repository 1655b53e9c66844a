/* Decoding captured link-layer frames down to UDP datagrams (and encoding them back for
 * export): Ethernet (with 802.1Q/802.1ad tags), Linux cooked v1/v2, BSD loopback/null,
 * raw IPv4/IPv6; IPv4 options and IPv6 extension headers. Every length is checked
 * against what was captured. */
#ifndef CAP_TRACK_NETFRAME_H
#define CAP_TRACK_NETFRAME_H

#include <stddef.h>
#include <stdint.h>

/* pcap LINKTYPE_* values handled. */
#define CAP_LINKTYPE_NULL 0
#define CAP_LINKTYPE_ETHERNET 1
#define CAP_LINKTYPE_RAW 101
#define CAP_LINKTYPE_LOOP 108
#define CAP_LINKTYPE_LINUX_SLL 113
#define CAP_LINKTYPE_IPV4 228
#define CAP_LINKTYPE_IPV6 229
#define CAP_LINKTYPE_LINUX_SLL2 276

struct cap_udp_endpoints {
    int family;            /* 4 or 6 */
    uint8_t src[16];       /* IPv4 uses the first 4 bytes */
    uint8_t dst[16];
    uint16_t src_port;
    uint16_t dst_port;
};

struct cap_udp_datagram {
    struct cap_udp_endpoints ep;
    const uint8_t *payload;  /* points into the frame */
    size_t len;
};

/* Why a frame is not a usable UDP datagram (counted by the importer). */
enum cap_netframe_verdict {
    CAP_NETFRAME_UDP = 0,       /* *out filled */
    CAP_NETFRAME_NOT_IP,        /* ARP, LLDP, unknown ethertype or link type */
    CAP_NETFRAME_NOT_UDP,       /* TCP, ICMP, ... */
    CAP_NETFRAME_FRAGMENT,      /* an IP fragment (not reassembled) */
    CAP_NETFRAME_TRUNCATED,     /* captured bytes end before the headers or the UDP length */
    CAP_NETFRAME_MALFORMED,     /* lengths that contradict each other, bad version, ... */
};

/* Decodes one frame of the given link type. caplen is what was captured. The UDP
 * payload length comes from the UDP header and must fit in what was captured. */
enum cap_netframe_verdict cap_netframe_decode(uint32_t linktype, const uint8_t *frame,
                                              size_t caplen, struct cap_udp_datagram *out);

/* Builds an Ethernet + IPv4/IPv6 + UDP header for payload_len bytes into out (at least
 * CAP_NETFRAME_MAX_HEADER bytes); returns the header length. IPv4 gets a correct header
 * checksum; the UDP checksum is left 0 for IPv4 and computed for IPv6 (where it is
 * mandatory) over payload. Returns 0, writing nothing, if ep->family is neither 4 nor 6 or
 * payload_len does not fit in one IP packet (65507 bytes over IPv4, 65527 over IPv6). */
#define CAP_NETFRAME_MAX_HEADER (14 + 40 + 8)
size_t cap_netframe_encode_ethernet(const struct cap_udp_endpoints *ep, const uint8_t *payload,
                                    size_t payload_len, uint8_t *out);

const char *cap_netframe_verdict_name(enum cap_netframe_verdict v);

#endif
