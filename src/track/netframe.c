/* Link-layer frames to UDP datagrams and back. Decoding walks the link header, VLAN tags,
 * the IP header and its options or extension headers by offsets into the frame, checking
 * each length against what the headers promise (else malformed) and against what was
 * captured (else truncated) before reading a byte; it allocates nothing. */
#include "track/netframe.h"

#include "util/bytes.h"

#include <string.h>

#define ETHERNET_HEADER_LEN 14
#define VLAN_TAG_LEN 4
#define NULL_HEADER_LEN 4
#define SLL_HEADER_LEN 16
#define SLL2_HEADER_LEN 20
#define IPV4_MIN_HEADER_LEN 20
#define IPV6_HEADER_LEN 40
#define IPV6_FRAGMENT_HEADER_LEN 8
#define UDP_HEADER_LEN 8

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86DD
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88A8

/* Address families in DLT_NULL/DLT_LOOP headers: AF_INET is 2 everywhere, AF_INET6 differs
 * between the BSDs (24 NetBSD/OpenBSD, 28 FreeBSD, 30 macOS). */
#define BSD_AF_INET 2
#define BSD_AF_INET6_NETBSD 24
#define BSD_AF_INET6_FREEBSD 28
#define BSD_AF_INET6_DARWIN 30

#define IP_PROTO_HOP_BY_HOP 0
#define IP_PROTO_UDP 17
#define IP_PROTO_ROUTING 43
#define IP_PROTO_FRAGMENT 44
#define IP_PROTO_AUTH 51
#define IP_PROTO_DEST_OPTIONS 60

#define IPV4_FLAG_MORE_FRAGMENTS 0x2000
#define IPV4_FLAG_DONT_FRAGMENT 0x4000
#define IPV4_FRAGMENT_OFFSET_MASK 0x1FFF

#define ENCODE_TTL 64
#define IP_MAX_LEN 65535

/* The UDP header at offset, whose IP packet ends at ip_end (as its IP header says; bytes
 * captured past it are link-layer padding). */
static enum cap_netframe_verdict decode_udp(const uint8_t *frame, size_t caplen, size_t offset,
                                            size_t ip_end, const struct cap_udp_endpoints *ep,
                                            struct cap_udp_datagram *out)
{
    if (ip_end - offset < UDP_HEADER_LEN)
        return CAP_NETFRAME_MALFORMED;
    if (caplen - offset < UDP_HEADER_LEN)
        return CAP_NETFRAME_TRUNCATED;
    const uint8_t *udp = frame + offset;
    size_t udp_len = cap_load_be16(udp + 4);
    /* Length 0 is how an IPv6 jumbogram would say "see the IP header"; we do not take those. */
    if (udp_len < UDP_HEADER_LEN || udp_len > ip_end - offset)
        return CAP_NETFRAME_MALFORMED;
    /* The whole IP packet must have been captured, which takes in the whole datagram. */
    if (ip_end > caplen)
        return CAP_NETFRAME_TRUNCATED;
    out->ep = *ep;
    out->ep.src_port = cap_load_be16(udp);
    out->ep.dst_port = cap_load_be16(udp + 2);
    out->payload = udp + UDP_HEADER_LEN;
    out->len = udp_len - UDP_HEADER_LEN;
    return CAP_NETFRAME_UDP;
}

static enum cap_netframe_verdict decode_ipv4(const uint8_t *frame, size_t caplen, size_t offset,
                                             struct cap_udp_datagram *out)
{
    if (caplen - offset < 1)
        return CAP_NETFRAME_TRUNCATED;
    const uint8_t *ip = frame + offset;
    if (ip[0] >> 4 != 4)
        return CAP_NETFRAME_MALFORMED;
    size_t header_len = (size_t)(ip[0] & 0x0F) * 4;
    if (header_len < IPV4_MIN_HEADER_LEN)
        return CAP_NETFRAME_MALFORMED;
    if (caplen - offset < header_len)
        return CAP_NETFRAME_TRUNCATED;
    size_t total_len = cap_load_be16(ip + 2);
    if (total_len < header_len)
        return CAP_NETFRAME_MALFORMED;
    uint16_t fragment = cap_load_be16(ip + 6);
    if ((fragment & IPV4_FLAG_MORE_FRAGMENTS) || (fragment & IPV4_FRAGMENT_OFFSET_MASK))
        return CAP_NETFRAME_FRAGMENT;
    if (ip[9] != IP_PROTO_UDP)
        return CAP_NETFRAME_NOT_UDP;

    /* The end comes from the total length, not caplen: Ethernet pads short frames to 60
     * bytes and the padding is not part of the packet. */
    struct cap_udp_endpoints ep = {.family = 4};
    memcpy(ep.src, ip + 12, 4);
    memcpy(ep.dst, ip + 16, 4);
    return decode_udp(frame, caplen, offset + header_len, offset + total_len, &ep, out);
}

static enum cap_netframe_verdict decode_ipv6(const uint8_t *frame, size_t caplen, size_t offset,
                                             struct cap_udp_datagram *out)
{
    if (caplen - offset < 1)
        return CAP_NETFRAME_TRUNCATED;
    if (frame[offset] >> 4 != 6)
        return CAP_NETFRAME_MALFORMED;
    if (caplen - offset < IPV6_HEADER_LEN)
        return CAP_NETFRAME_TRUNCATED;
    const uint8_t *ip = frame + offset;
    size_t ip_end = offset + IPV6_HEADER_LEN + cap_load_be16(ip + 4);
    struct cap_udp_endpoints ep = {.family = 6};
    memcpy(ep.src, ip + 8, 16);
    memcpy(ep.dst, ip + 24, 16);

    uint8_t next = ip[6];
    size_t pos = offset + IPV6_HEADER_LEN;
    /* Every extension header is at least 8 bytes and must end by ip_end, so this ends. */
    for (;;) {
        size_t ext_len;
        switch (next) {
        case IP_PROTO_UDP:
            return decode_udp(frame, caplen, pos, ip_end, &ep, out);
        case IP_PROTO_HOP_BY_HOP:
        case IP_PROTO_ROUTING:
        case IP_PROTO_DEST_OPTIONS:
        case IP_PROTO_AUTH:
            if (ip_end - pos < 2)
                return CAP_NETFRAME_MALFORMED;
            if (caplen - pos < 2)
                return CAP_NETFRAME_TRUNCATED;
            /* AH counts 4-byte words less two (RFC 4302), the others 8-byte units less one. */
            if (next == IP_PROTO_AUTH)
                ext_len = ((size_t)frame[pos + 1] + 2) * 4;
            else
                ext_len = ((size_t)frame[pos + 1] + 1) * 8;
            break;
        case IP_PROTO_FRAGMENT:
            ext_len = IPV6_FRAGMENT_HEADER_LEN;
            break;
        default:
            /* TCP, ICMPv6, ESP, 59 (no next header), ... */
            return CAP_NETFRAME_NOT_UDP;
        }
        if (ip_end - pos < ext_len)
            return CAP_NETFRAME_MALFORMED;
        if (caplen - pos < ext_len)
            return CAP_NETFRAME_TRUNCATED;
        if (next == IP_PROTO_FRAGMENT) {
            /* An atomic fragment (offset 0, no more fragments, RFC 6946) is whole. */
            uint16_t offset_and_flags = cap_load_be16(frame + pos + 2);
            if (offset_and_flags >> 3 != 0 || (offset_and_flags & 1))
                return CAP_NETFRAME_FRAGMENT;
        }
        next = frame[pos];
        pos += ext_len;
    }
}

/* The payload at offset is of the given ethertype, possibly behind stacked VLAN tags. */
static enum cap_netframe_verdict decode_ethertype(const uint8_t *frame, size_t caplen,
                                                  size_t offset, uint16_t ethertype,
                                                  struct cap_udp_datagram *out)
{
    while (ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ) {
        if (caplen - offset < VLAN_TAG_LEN)
            return CAP_NETFRAME_TRUNCATED;
        ethertype = cap_load_be16(frame + offset + 2);
        offset += VLAN_TAG_LEN;
    }
    switch (ethertype) {
    case ETHERTYPE_IPV4:
        return decode_ipv4(frame, caplen, offset, out);
    case ETHERTYPE_IPV6:
        return decode_ipv6(frame, caplen, offset, out);
    default:
        return CAP_NETFRAME_NOT_IP;
    }
}

static enum cap_netframe_verdict decode_bsd_family(const uint8_t *frame, size_t caplen,
                                                   uint32_t family, struct cap_udp_datagram *out)
{
    switch (family) {
    case BSD_AF_INET:
        return decode_ipv4(frame, caplen, NULL_HEADER_LEN, out);
    case BSD_AF_INET6_NETBSD:
    case BSD_AF_INET6_FREEBSD:
    case BSD_AF_INET6_DARWIN:
        return decode_ipv6(frame, caplen, NULL_HEADER_LEN, out);
    default:
        return CAP_NETFRAME_NOT_IP;
    }
}

enum cap_netframe_verdict cap_netframe_decode(uint32_t linktype, const uint8_t *frame,
                                              size_t caplen, struct cap_udp_datagram *out)
{
    switch (linktype) {
    case CAP_LINKTYPE_ETHERNET:
        if (caplen < ETHERNET_HEADER_LEN)
            return CAP_NETFRAME_TRUNCATED;
        return decode_ethertype(frame, caplen, ETHERNET_HEADER_LEN, cap_load_be16(frame + 12), out);
    case CAP_LINKTYPE_NULL: {
        if (caplen < NULL_HEADER_LEN)
            return CAP_NETFRAME_TRUNCATED;
        /* Host byte order of the capturing machine, which the file does not record: the
         * small family values cannot be mistaken for each other byte-swapped. */
        uint32_t family = cap_load_le32(frame);
        if (family > 0xFFFF)
            family = cap_load_be32(frame);
        return decode_bsd_family(frame, caplen, family, out);
    }
    case CAP_LINKTYPE_LOOP:
        if (caplen < NULL_HEADER_LEN)
            return CAP_NETFRAME_TRUNCATED;
        return decode_bsd_family(frame, caplen, cap_load_be32(frame), out);
    case CAP_LINKTYPE_LINUX_SLL:
        if (caplen < SLL_HEADER_LEN)
            return CAP_NETFRAME_TRUNCATED;
        return decode_ethertype(frame, caplen, SLL_HEADER_LEN, cap_load_be16(frame + 14), out);
    case CAP_LINKTYPE_LINUX_SLL2:
        if (caplen < SLL2_HEADER_LEN)
            return CAP_NETFRAME_TRUNCATED;
        return decode_ethertype(frame, caplen, SLL2_HEADER_LEN, cap_load_be16(frame), out);
    case CAP_LINKTYPE_RAW:
        if (caplen < 1)
            return CAP_NETFRAME_TRUNCATED;
        switch (frame[0] >> 4) {
        case 4:
            return decode_ipv4(frame, caplen, 0, out);
        case 6:
            return decode_ipv6(frame, caplen, 0, out);
        default:
            /* The link type promises IP, so another version is a broken packet. */
            return CAP_NETFRAME_MALFORMED;
        }
    case CAP_LINKTYPE_IPV4:
        return decode_ipv4(frame, caplen, 0, out);
    case CAP_LINKTYPE_IPV6:
        return decode_ipv6(frame, caplen, 0, out);
    default:
        return CAP_NETFRAME_NOT_IP;
    }
}

/* Adds big-endian 16-bit words to a one's-complement sum; an odd last byte is padded with
 * zero (RFC 1071). */
static uint64_t checksum_add(uint64_t sum, const uint8_t *data, size_t len)
{
    size_t i = 0;
    for (; i + 1 < len; i += 2)
        sum += cap_load_be16(data + i);
    if (i < len)
        sum += (uint64_t)data[i] << 8;
    return sum;
}

static uint16_t checksum_finish(uint64_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)~sum;
}

static void encode_udp_header(uint8_t *udp, const struct cap_udp_endpoints *ep, size_t udp_len)
{
    cap_store_be16(udp, ep->src_port);
    cap_store_be16(udp + 2, ep->dst_port);
    cap_store_be16(udp + 4, (uint16_t)udp_len);
    cap_store_be16(udp + 6, 0);
}

static size_t encode_ipv4(const struct cap_udp_endpoints *ep, size_t payload_len, uint8_t *ip)
{
    size_t total_len = IPV4_MIN_HEADER_LEN + UDP_HEADER_LEN + payload_len;
    ip[0] = 0x45;
    ip[1] = 0;
    cap_store_be16(ip + 2, (uint16_t)total_len);
    cap_store_be16(ip + 4, 0);
    cap_store_be16(ip + 6, IPV4_FLAG_DONT_FRAGMENT);
    ip[8] = ENCODE_TTL;
    ip[9] = IP_PROTO_UDP;
    cap_store_be16(ip + 10, 0);
    memcpy(ip + 12, ep->src, 4);
    memcpy(ip + 16, ep->dst, 4);
    cap_store_be16(ip + 10, checksum_finish(checksum_add(0, ip, IPV4_MIN_HEADER_LEN)));
    /* The UDP checksum is optional over IPv4; 0 says "not computed". */
    encode_udp_header(ip + IPV4_MIN_HEADER_LEN, ep, UDP_HEADER_LEN + payload_len);
    return IPV4_MIN_HEADER_LEN + UDP_HEADER_LEN;
}

static size_t encode_ipv6(const struct cap_udp_endpoints *ep, const uint8_t *payload,
                          size_t payload_len, uint8_t *ip)
{
    size_t udp_len = UDP_HEADER_LEN + payload_len;
    cap_store_be32(ip, UINT32_C(6) << 28);
    cap_store_be16(ip + 4, (uint16_t)udp_len);
    ip[6] = IP_PROTO_UDP;
    ip[7] = ENCODE_TTL;
    memcpy(ip + 8, ep->src, 16);
    memcpy(ip + 24, ep->dst, 16);
    uint8_t *udp = ip + IPV6_HEADER_LEN;
    encode_udp_header(udp, ep, udp_len);

    /* Pseudo-header of RFC 8200 section 8.1: addresses, 32-bit length, zeros, next header. */
    uint64_t sum = checksum_add(0, ip + 8, 32);
    sum += udp_len;
    sum += IP_PROTO_UDP;
    sum = checksum_add(sum, udp, UDP_HEADER_LEN);
    if (payload_len > 0)
        sum = checksum_add(sum, payload, payload_len);
    uint16_t checksum = checksum_finish(sum);
    /* 0 means "no checksum", which IPv6 forbids; its one's-complement twin is sent instead. */
    cap_store_be16(udp + 6, checksum == 0 ? 0xFFFF : checksum);
    return IPV6_HEADER_LEN + UDP_HEADER_LEN;
}

size_t cap_netframe_encode_ethernet(const struct cap_udp_endpoints *ep, const uint8_t *payload,
                                    size_t payload_len, uint8_t *out)
{
    uint16_t ethertype;
    if (ep->family == 4 && payload_len <= IP_MAX_LEN - IPV4_MIN_HEADER_LEN - UDP_HEADER_LEN)
        ethertype = ETHERTYPE_IPV4;
    else if (ep->family == 6 && payload_len <= IP_MAX_LEN - UDP_HEADER_LEN)
        ethertype = ETHERTYPE_IPV6;
    else
        return 0;

    /* Zero MAC addresses, as Linux loopback captures have them. */
    memset(out, 0, 12);
    cap_store_be16(out + 12, ethertype);
    uint8_t *ip = out + ETHERNET_HEADER_LEN;
    if (ethertype == ETHERTYPE_IPV4)
        return ETHERNET_HEADER_LEN + encode_ipv4(ep, payload_len, ip);
    return ETHERNET_HEADER_LEN + encode_ipv6(ep, payload, payload_len, ip);
}

const char *cap_netframe_verdict_name(enum cap_netframe_verdict v)
{
    switch (v) {
    case CAP_NETFRAME_UDP:
        return "udp";
    case CAP_NETFRAME_NOT_IP:
        return "not_ip";
    case CAP_NETFRAME_NOT_UDP:
        return "not_udp";
    case CAP_NETFRAME_FRAGMENT:
        return "ip_fragment";
    case CAP_NETFRAME_TRUNCATED:
        return "truncated";
    case CAP_NETFRAME_MALFORMED:
        return "malformed";
    }
    return "unknown";
}
