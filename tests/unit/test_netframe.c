/* netframe: captured frames of every handled link type down to UDP, the refusals (not IP,
 * not UDP, fragments, malformed lengths), truncation at every byte, and encode/decode round
 * trips with their checksums verified. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "track/netframe.h"

#define BYTES(a) (a), sizeof(a)

/* clang-format off */
/* 10.0.0.1:5004 -> 10.0.0.2:6000 carrying "rtp!". */
static const uint8_t ipv4_udp[] = {
    0x45, 0x00, 0x00, 0x20, /* version 4, IHL 5, total length 32 */
    0x00, 0x00, 0x40, 0x00, /* id 0, DF */
    0x40, 0x11, 0x00, 0x00, /* TTL 64, UDP, header checksum (not checked) */
    10,   0,    0,    1,    /* source */
    10,   0,    0,    2,    /* destination */
    0x13, 0x8c, 0x17, 0x70, /* ports 5004 -> 6000 */
    0x00, 0x0c, 0x00, 0x00, /* UDP length 12, checksum 0 */
    'r',  't',  'p',  '!',
};

/* [2001:db8::1]:5004 -> [2001:db8::2]:6000 carrying "rtp!". */
static const uint8_t ipv6_udp[] = {
    0x60, 0x00, 0x00, 0x00, /* version 6 */
    0x00, 0x0c, 0x11, 0x40, /* payload length 12, next header UDP, hop limit 64 */
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    0x13, 0x8c, 0x17, 0x70, /* ports 5004 -> 6000 */
    0x00, 0x0c, 0x00, 0x00, /* UDP length 12, checksum (not checked) */
    'r',  't',  'p',  '!',
};

static const uint8_t eth_ipv4[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00};
static const uint8_t eth_ipv6[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x86, 0xdd};
static const uint8_t eth_vlan_ipv4[] = {
    0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00,
};
static const uint8_t eth_qinq_ipv6[] = {
    0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, /* MACs */
    0x88, 0xa8, 0x00, 0x0a,                   /* 802.1ad service tag, VLAN 10 */
    0x81, 0x00, 0x00, 0x64,                   /* 802.1Q customer tag, VLAN 100 */
    0x86, 0xdd,
};
static const uint8_t eth_qinq_ipv4[] = {
    0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x81, 0x00, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x64,
    0x08, 0x00,
};
static const uint8_t null_little_endian_ipv4[] = {2, 0, 0, 0};
static const uint8_t null_big_endian_ipv4[] = {0, 0, 0, 2};
static const uint8_t null_little_endian_ipv6_netbsd[] = {24, 0, 0, 0};
static const uint8_t null_big_endian_ipv6_freebsd[] = {0, 0, 0, 28};
static const uint8_t null_little_endian_ipv6_darwin[] = {30, 0, 0, 0};
static const uint8_t loop_ipv4[] = {0, 0, 0, 2};
static const uint8_t loop_ipv6[] = {0, 0, 0, 30};
static const uint8_t sll_ipv4[] = {
    0x00, 0x00,             /* sent to us */
    0x03, 0x04,             /* ARPHRD_LOOPBACK */
    0x00, 0x06,             /* address length */
    0, 0, 0, 0, 0, 0, 0, 0, /* address */
    0x08, 0x00,             /* protocol */
};
static const uint8_t sll_ipv6[] = {
    0x00, 0x04, 0x00, 0x01, 0x00, 0x06,   /* sent by us, Ethernet, 6-byte address */
    0x02, 0, 0, 0, 0, 1, 0, 0, 0x86, 0xdd,
};
static const uint8_t sll2_ipv4[] = {
    0x08, 0x00,             /* protocol */
    0x00, 0x00,             /* reserved */
    0x00, 0x00, 0x00, 0x01, /* interface index */
    0x03, 0x04,             /* ARPHRD_LOOPBACK */
    0x00,                   /* sent to us */
    0x06,                   /* address length */
    0, 0, 0, 0, 0, 0, 0, 0, /* address */
};
static const uint8_t sll2_ipv6[] = {
    0x86, 0xdd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, /* interface 2 */
    0x00, 0x01, 0x04, 0x06,                         /* Ethernet, sent by us */
    0x02, 0, 0, 0, 0, 1, 0, 0,
};

/* A who-has for 10.0.0.2, broadcast. */
static const uint8_t eth_arp[] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x08, 0x06, /* Ethernet */
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,                     /* request */
    0x02, 0,    0,    0,    0,    1,    10,   0, 0, 1,                  /* sender */
    0,    0,    0,    0,    0,    0,    10,   0, 0, 2,                  /* target */
};
/* clang-format on */

static size_t concat(uint8_t *out, const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    if (a_len > 0)
        memcpy(out, a, a_len);
    if (b_len > 0)
        memcpy(out + a_len, b, b_len);
    return a_len + b_len;
}

static void fail_unless_verdict(const char *name, enum cap_netframe_verdict got,
                                enum cap_netframe_verdict want)
{
    if (got != want)
        fail_msg("%s: got %s, want %s", name, cap_netframe_verdict_name(got),
                 cap_netframe_verdict_name(want));
}

/* The reference datagram of ipv4_udp / ipv6_udp, its payload at payload_offset in frame. */
static void assert_reference_datagram(const struct cap_udp_datagram *d, int family,
                                      const uint8_t *frame, size_t payload_offset)
{
    static const uint8_t v4_src[16] = {10, 0, 0, 1};
    static const uint8_t v4_dst[16] = {10, 0, 0, 2};
    static const uint8_t v6_src[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
    static const uint8_t v6_dst[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 2};
    assert_int_equal(d->ep.family, family);
    assert_memory_equal(d->ep.src, family == 4 ? v4_src : v6_src, 16);
    assert_memory_equal(d->ep.dst, family == 4 ? v4_dst : v6_dst, 16);
    assert_int_equal(d->ep.src_port, 5004);
    assert_int_equal(d->ep.dst_port, 6000);
    assert_ptr_equal(d->payload, frame + payload_offset);
    assert_int_equal(d->len, 4);
    assert_memory_equal(d->payload, "rtp!", 4);
}

struct link_case {
    const char *name;
    uint32_t linktype;
    const uint8_t *prefix;
    size_t prefix_len;
    int family;
};

static const struct link_case link_cases[] = {
    {"ethernet ipv4", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv4), 4},
    {"ethernet ipv6", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv6), 6},
    {"ethernet 802.1Q tag ipv4", CAP_LINKTYPE_ETHERNET, BYTES(eth_vlan_ipv4), 4},
    {"ethernet 802.1ad + 802.1Q tags ipv6", CAP_LINKTYPE_ETHERNET, BYTES(eth_qinq_ipv6), 6},
    {"ethernet two 802.1Q tags ipv4", CAP_LINKTYPE_ETHERNET, BYTES(eth_qinq_ipv4), 4},
    {"null little-endian ipv4", CAP_LINKTYPE_NULL, BYTES(null_little_endian_ipv4), 4},
    {"null big-endian ipv4", CAP_LINKTYPE_NULL, BYTES(null_big_endian_ipv4), 4},
    {"null little-endian ipv6 (24)", CAP_LINKTYPE_NULL, BYTES(null_little_endian_ipv6_netbsd), 6},
    {"null big-endian ipv6 (28)", CAP_LINKTYPE_NULL, BYTES(null_big_endian_ipv6_freebsd), 6},
    {"null little-endian ipv6 (30)", CAP_LINKTYPE_NULL, BYTES(null_little_endian_ipv6_darwin), 6},
    {"loop ipv4", CAP_LINKTYPE_LOOP, BYTES(loop_ipv4), 4},
    {"loop ipv6", CAP_LINKTYPE_LOOP, BYTES(loop_ipv6), 6},
    {"linux sll ipv4", CAP_LINKTYPE_LINUX_SLL, BYTES(sll_ipv4), 4},
    {"linux sll ipv6", CAP_LINKTYPE_LINUX_SLL, BYTES(sll_ipv6), 6},
    {"linux sll2 ipv4", CAP_LINKTYPE_LINUX_SLL2, BYTES(sll2_ipv4), 4},
    {"linux sll2 ipv6", CAP_LINKTYPE_LINUX_SLL2, BYTES(sll2_ipv6), 6},
    {"raw ipv4", CAP_LINKTYPE_RAW, NULL, 0, 4},
    {"raw ipv6", CAP_LINKTYPE_RAW, NULL, 0, 6},
    {"ipv4", CAP_LINKTYPE_IPV4, NULL, 0, 4},
    {"ipv6", CAP_LINKTYPE_IPV6, NULL, 0, 6},
};

static size_t build_link_case(const struct link_case *c, uint8_t *frame)
{
    if (c->family == 4)
        return concat(frame, c->prefix, c->prefix_len, BYTES(ipv4_udp));
    return concat(frame, c->prefix, c->prefix_len, BYTES(ipv6_udp));
}

static void test_every_link_type_and_vlan_stack_decodes_to_udp(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(link_cases) / sizeof(link_cases[0]); i++) {
        const struct link_case *c = &link_cases[i];
        uint8_t frame[128];
        size_t len = build_link_case(c, frame);
        struct cap_udp_datagram d;
        fail_unless_verdict(c->name, cap_netframe_decode(c->linktype, frame, len, &d),
                            CAP_NETFRAME_UDP);
        size_t ip_header_len = c->family == 4 ? 20 : 40;
        assert_reference_datagram(&d, c->family, frame, c->prefix_len + ip_header_len + 8);
    }
}

static void test_ipv4_options_are_skipped_to_reach_udp(void **state)
{
    (void)state;
    /* clang-format off */
    static const uint8_t frame[] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00,
        0x46, 0x00, 0x00, 0x24, /* IHL 6, total length 36 */
        0x00, 0x00, 0x40, 0x00, 0x01, 0x11, 0x00, 0x00, 10, 0, 0, 1, 10, 0, 0, 2,
        0x94, 0x04, 0x00, 0x00, /* router alert */
        0x13, 0x8c, 0x17, 0x70, 0x00, 0x0c, 0x00, 0x00, 'r', 't', 'p', '!',
    };
    /* clang-format on */
    struct cap_udp_datagram d;
    assert_int_equal(cap_netframe_decode(CAP_LINKTYPE_ETHERNET, BYTES(frame), &d),
                     CAP_NETFRAME_UDP);
    assert_reference_datagram(&d, 4, frame, 14 + 24 + 8);
}

static void test_ethernet_padding_after_ip_total_length_is_ignored(void **state)
{
    (void)state;
    uint8_t frame[60];
    size_t len = concat(frame, BYTES(eth_ipv4), BYTES(ipv4_udp));
    assert_int_equal(len, 46);
    /* Padding that would pass for payload if caplen were taken as the end. */
    memset(frame + len, 0xa5, sizeof(frame) - len);
    struct cap_udp_datagram d;
    assert_int_equal(cap_netframe_decode(CAP_LINKTYPE_ETHERNET, BYTES(frame), &d),
                     CAP_NETFRAME_UDP);
    assert_reference_datagram(&d, 4, frame, 14 + 20 + 8);
}

/* One byte changed in a frame built from a link prefix and an IP packet. */
struct patch {
    size_t at;
    uint8_t value;
};

struct refusal_case {
    const char *name;
    uint32_t linktype;
    const uint8_t *prefix;
    size_t prefix_len;
    const uint8_t *packet;
    size_t packet_len;
    const struct patch *patches;
    size_t patch_count;
    enum cap_netframe_verdict want;
};

#define PATCHES(...)                                                                               \
    (const struct patch[]){__VA_ARGS__},                                                           \
        sizeof((const struct patch[]){__VA_ARGS__}) / sizeof(struct patch)
#define NO_PATCHES NULL, 0

/* Offsets into an Ethernet frame: the IP header starts at 14, IPv4's UDP header at 34. */
#define IP 14
#define UDP4 (14 + 20)
#define UDP6 (14 + 40)

static const struct refusal_case refusal_cases[] = {
    {"arp", CAP_LINKTYPE_ETHERNET, BYTES(eth_arp), NULL, 0, NO_PATCHES, CAP_NETFRAME_NOT_IP},
    {"arp behind a vlan tag", CAP_LINKTYPE_ETHERNET, BYTES(eth_vlan_ipv4), BYTES(ipv4_udp),
     PATCHES({16, 0x08}, {17, 0x06}), CAP_NETFRAME_NOT_IP},
    {"lldp", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv4), BYTES(ipv4_udp),
     PATCHES({12, 0x88}, {13, 0xcc}), CAP_NETFRAME_NOT_IP},
    {"802.3 length instead of ethertype", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv4), BYTES(ipv4_udp),
     PATCHES({12, 0x00}, {13, 0x20}), CAP_NETFRAME_NOT_IP},
    {"unhandled link type", 147, BYTES(eth_ipv4), BYTES(ipv4_udp), NO_PATCHES, CAP_NETFRAME_NOT_IP},
    {"null with an unknown family", CAP_LINKTYPE_NULL, BYTES(null_little_endian_ipv4),
     BYTES(ipv4_udp), PATCHES({0, 7}), CAP_NETFRAME_NOT_IP},
    {"loop family in host order", CAP_LINKTYPE_LOOP, BYTES(null_little_endian_ipv4),
     BYTES(ipv4_udp), NO_PATCHES, CAP_NETFRAME_NOT_IP},
    {"sll carrying arp", CAP_LINKTYPE_LINUX_SLL, BYTES(sll_ipv4), BYTES(ipv4_udp),
     PATCHES({15, 0x06}), CAP_NETFRAME_NOT_IP},
    {"sll2 carrying arp", CAP_LINKTYPE_LINUX_SLL2, BYTES(sll2_ipv4), BYTES(ipv4_udp),
     PATCHES({1, 0x06}), CAP_NETFRAME_NOT_IP},
    {"raw with ip version 5", CAP_LINKTYPE_RAW, NULL, 0, BYTES(ipv4_udp), PATCHES({0, 0x55}),
     CAP_NETFRAME_MALFORMED},
    {"ipv6 packet under the ipv4 link type", CAP_LINKTYPE_IPV4, NULL, 0, BYTES(ipv6_udp),
     NO_PATCHES, CAP_NETFRAME_MALFORMED},
    {"ipv4 ethertype with version 6", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv4), BYTES(ipv4_udp),
     PATCHES({IP, 0x65}), CAP_NETFRAME_MALFORMED},
    {"ipv4 ihl 4", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv4), BYTES(ipv4_udp), PATCHES({IP, 0x44}),
     CAP_NETFRAME_MALFORMED},
    {"ipv4 ihl 0", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv4), BYTES(ipv4_udp), PATCHES({IP, 0x40}),
     CAP_NETFRAME_MALFORMED},
    {"ipv4 total length below header length", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv4),
     BYTES(ipv4_udp), PATCHES({IP + 3, 19}), CAP_NETFRAME_MALFORMED},
    {"ipv4 total length leaves no room for udp header", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv4),
     BYTES(ipv4_udp), PATCHES({IP + 3, 24}), CAP_NETFRAME_MALFORMED},
    {"ipv4 total length beyond capture", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv4), BYTES(ipv4_udp),
     PATCHES({IP + 3, 33}), CAP_NETFRAME_TRUNCATED},
    {"ipv4 options beyond capture", CAP_LINKTYPE_IPV4, NULL, 0, BYTES(ipv4_udp), PATCHES({0, 0x4f}),
     CAP_NETFRAME_TRUNCATED},
    {"ipv4 more fragments flag", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv4), BYTES(ipv4_udp),
     PATCHES({IP + 6, 0x20}), CAP_NETFRAME_FRAGMENT},
    {"ipv4 nonzero fragment offset", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv4), BYTES(ipv4_udp),
     PATCHES({IP + 6, 0x00}, {IP + 7, 0xb9}), CAP_NETFRAME_FRAGMENT},
    {"ipv4 last fragment at a high offset", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv4), BYTES(ipv4_udp),
     PATCHES({IP + 6, 0x10}), CAP_NETFRAME_FRAGMENT},
    {"ipv4 tcp", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv4), BYTES(ipv4_udp), PATCHES({IP + 9, 6}),
     CAP_NETFRAME_NOT_UDP},
    {"ipv4 icmp", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv4), BYTES(ipv4_udp), PATCHES({IP + 9, 1}),
     CAP_NETFRAME_NOT_UDP},
    {"udp length larger than ipv4 payload", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv4), BYTES(ipv4_udp),
     PATCHES({UDP4 + 5, 13}), CAP_NETFRAME_MALFORMED},
    {"udp length below its header", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv4), BYTES(ipv4_udp),
     PATCHES({UDP4 + 5, 7}), CAP_NETFRAME_MALFORMED},
    {"ipv6 ethertype with version 4", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv6), BYTES(ipv6_udp),
     PATCHES({IP, 0x45}), CAP_NETFRAME_MALFORMED},
    {"ipv6 payload length beyond capture", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv6), BYTES(ipv6_udp),
     PATCHES({IP + 5, 13}), CAP_NETFRAME_TRUNCATED},
    {"udp length larger than ipv6 payload", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv6), BYTES(ipv6_udp),
     PATCHES({IP + 5, 11}), CAP_NETFRAME_MALFORMED},
    {"ipv6 jumbogram udp length 0", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv6), BYTES(ipv6_udp),
     PATCHES({UDP6 + 5, 0}), CAP_NETFRAME_MALFORMED},
    {"ipv6 tcp", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv6), BYTES(ipv6_udp), PATCHES({IP + 6, 6}),
     CAP_NETFRAME_NOT_UDP},
    {"ipv6 icmp", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv6), BYTES(ipv6_udp), PATCHES({IP + 6, 58}),
     CAP_NETFRAME_NOT_UDP},
    {"ipv6 no next header", CAP_LINKTYPE_ETHERNET, BYTES(eth_ipv6), BYTES(ipv6_udp),
     PATCHES({IP + 6, 59}), CAP_NETFRAME_NOT_UDP},
};

static void test_non_udp_fragmented_and_malformed_frames_are_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(refusal_cases) / sizeof(refusal_cases[0]); i++) {
        const struct refusal_case *c = &refusal_cases[i];
        uint8_t frame[128];
        size_t len = concat(frame, c->prefix, c->prefix_len, c->packet, c->packet_len);
        for (size_t p = 0; p < c->patch_count; p++) {
            assert_true(c->patches[p].at < len);
            frame[c->patches[p].at] = c->patches[p].value;
        }
        struct cap_udp_datagram d;
        fail_unless_verdict(c->name, cap_netframe_decode(c->linktype, frame, len, &d), c->want);
    }
}

/* IPv6 after Ethernet whose UDP datagram ("rtp!" again) sits behind the given chain of
 * extension headers; the fixed header's payload length covers chain and datagram. */
static size_t build_ipv6_with_extensions(uint8_t *frame, uint8_t first_next_header,
                                         const uint8_t *chain, size_t chain_len)
{
    size_t len = concat(frame, BYTES(eth_ipv6), BYTES(ipv6_udp));
    frame[IP + 4] = 0;
    frame[IP + 5] = (uint8_t)(chain_len + 12);
    frame[IP + 6] = first_next_header;
    memmove(frame + UDP6 + chain_len, frame + UDP6, 12);
    memcpy(frame + UDP6, chain, chain_len);
    return len + chain_len;
}

struct extension_case {
    const char *name;
    uint8_t first_next_header;
    const uint8_t *chain;
    size_t chain_len;
    enum cap_netframe_verdict want;
};

/* clang-format off */
static const uint8_t hop_by_hop_then_destination_options[] = {
    60, 0, 5, 2, 0, 0, 1, 0,                           /* hop-by-hop: router alert, PadN */
    17, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* destination options: PadN */
};
static const uint8_t routing_header[] = {
    17, 2, 4, 0, 0, 0, 0, 0, /* segment routing, segments left 0, one address */
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
};
static const uint8_t authentication_header[] = {
    17, 4, 0, 0, 0, 0, 0x10, 0x00, 0, 0, 0, 1, /* next, length, SPI, sequence */
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,     /* 96-bit ICV */
};
static const uint8_t atomic_fragment[] = {17, 0, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78};
static const uint8_t first_fragment[] = {17, 0, 0x00, 0x01, 0x12, 0x34, 0x56, 0x78};
static const uint8_t middle_fragment[] = {17, 0, 0x05, 0xa9, 0x12, 0x34, 0x56, 0x78};
static const uint8_t last_fragment[] = {17, 0, 0x05, 0xa8, 0x12, 0x34, 0x56, 0x78};
static const uint8_t hop_by_hop_then_no_next_header[] = {59, 0, 1, 4, 0, 0, 0, 0};
static const uint8_t hop_by_hop_then_esp[] = {50, 0, 1, 4, 0, 0, 0, 0};
/* Claims 8 * (1 + 7) = 64 bytes, more than the whole payload. */
static const uint8_t destination_options_too_long[] = {17, 7, 1, 4, 0, 0, 0, 0};
/* clang-format on */

static const struct extension_case extension_cases[] = {
    {"hop-by-hop then destination options", 0, BYTES(hop_by_hop_then_destination_options),
     CAP_NETFRAME_UDP},
    {"routing header", 43, BYTES(routing_header), CAP_NETFRAME_UDP},
    {"authentication header", 51, BYTES(authentication_header), CAP_NETFRAME_UDP},
    {"atomic fragment", 44, BYTES(atomic_fragment), CAP_NETFRAME_UDP},
    {"first fragment (more fragments)", 44, BYTES(first_fragment), CAP_NETFRAME_FRAGMENT},
    {"middle fragment (offset, more)", 44, BYTES(middle_fragment), CAP_NETFRAME_FRAGMENT},
    {"last fragment (offset, no more)", 44, BYTES(last_fragment), CAP_NETFRAME_FRAGMENT},
    {"no next header", 0, BYTES(hop_by_hop_then_no_next_header), CAP_NETFRAME_NOT_UDP},
    {"esp", 0, BYTES(hop_by_hop_then_esp), CAP_NETFRAME_NOT_UDP},
    {"extension header longer than the payload", 60, BYTES(destination_options_too_long),
     CAP_NETFRAME_MALFORMED},
};

static void test_ipv6_extension_headers_are_walked_to_udp_or_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(extension_cases) / sizeof(extension_cases[0]); i++) {
        const struct extension_case *c = &extension_cases[i];
        uint8_t frame[160];
        size_t len =
            build_ipv6_with_extensions(frame, c->first_next_header, c->chain, c->chain_len);
        struct cap_udp_datagram d;
        fail_unless_verdict(c->name, cap_netframe_decode(CAP_LINKTYPE_ETHERNET, frame, len, &d),
                            c->want);
        if (c->want == CAP_NETFRAME_UDP)
            assert_reference_datagram(&d, 6, frame, UDP6 + c->chain_len + 8);
    }
}

/* Every proper prefix of a valid frame is refused, and nothing past the cut is read: the
 * prefix sits in a heap block of exactly its size, so AddressSanitizer sees any overread. */
static void assert_every_cut_is_refused(const char *name, uint32_t linktype, const uint8_t *frame,
                                        size_t len)
{
    struct cap_udp_datagram d;
    fail_unless_verdict(name, cap_netframe_decode(linktype, frame, len, &d), CAP_NETFRAME_UDP);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *prefix = malloc(cut);
        assert_true(prefix != NULL || cut == 0);
        if (cut > 0)
            memcpy(prefix, frame, cut);
        enum cap_netframe_verdict v = cap_netframe_decode(linktype, prefix, cut, &d);
        if (v != CAP_NETFRAME_TRUNCATED && v != CAP_NETFRAME_MALFORMED)
            fail_msg("%s cut at %zu of %zu: got %s", name, cut, len, cap_netframe_verdict_name(v));
        free(prefix);
    }
}

static void test_truncation_at_every_byte_is_refused_without_reading_past_it(void **state)
{
    (void)state;
    uint8_t frame[160];
    for (size_t i = 0; i < sizeof(link_cases) / sizeof(link_cases[0]); i++) {
        size_t len = build_link_case(&link_cases[i], frame);
        assert_every_cut_is_refused(link_cases[i].name, link_cases[i].linktype, frame, len);
    }
    for (size_t i = 0; i < sizeof(extension_cases) / sizeof(extension_cases[0]); i++) {
        if (extension_cases[i].want != CAP_NETFRAME_UDP)
            continue;
        size_t len =
            build_ipv6_with_extensions(frame, extension_cases[i].first_next_header,
                                       extension_cases[i].chain, extension_cases[i].chain_len);
        assert_every_cut_is_refused(extension_cases[i].name, CAP_LINKTYPE_ETHERNET, frame, len);
    }
}

/* Folds a one's-complement sum of big-endian words, odd byte padded with zero. */
static uint32_t ones_complement_add(uint32_t sum, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i += 2) {
        sum += (uint32_t)data[i] << 8;
        if (i + 1 < len)
            sum += data[i + 1];
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    return sum;
}

static uint32_t ipv6_udp_sum(const uint8_t *ip, const uint8_t *payload, size_t payload_len)
{
    uint8_t pseudo_tail[8] = {0, 0, 0, 0, 0, 0, 0, 17};
    size_t udp_len = 8 + payload_len;
    pseudo_tail[2] = (uint8_t)(udp_len >> 8);
    pseudo_tail[3] = (uint8_t)udp_len;
    uint32_t sum = ones_complement_add(0, ip + 8, 32);
    sum = ones_complement_add(sum, pseudo_tail, sizeof(pseudo_tail));
    sum = ones_complement_add(sum, ip + 40, 8);
    return ones_complement_add(sum, payload, payload_len);
}

static void test_ipv4_encode_round_trips_with_a_valid_header_checksum(void **state)
{
    (void)state;
    const struct cap_udp_endpoints ep = {.family = 4,
                                         .src = {192, 168, 1, 10},
                                         .dst = {10, 9, 8, 7},
                                         .src_port = 40000,
                                         .dst_port = 5004};
    static const uint8_t payload[] = {0x80, 0x60, 0x12, 0x34, 0xde, 0xad, 0xbe};
    uint8_t frame[CAP_NETFRAME_MAX_HEADER + sizeof(payload)];
    size_t header_len = cap_netframe_encode_ethernet(&ep, BYTES(payload), frame);
    assert_int_equal(header_len, 14 + 20 + 8);
    memcpy(frame + header_len, payload, sizeof(payload));

    static const uint8_t zero_macs[12];
    assert_memory_equal(frame, zero_macs, 12);
    const uint8_t *ip = frame + 14;
    assert_int_equal(ip[0], 0x45);
    assert_int_equal(ip[6] & 0x40, 0x40); /* DF */
    assert_int_equal(ip[8], 64);
    assert_int_equal(ones_complement_add(0, ip, 20), 0xFFFF);
    assert_int_equal(ip[26] << 8 | ip[27], 0); /* UDP checksum left out */

    struct cap_udp_datagram d;
    assert_int_equal(
        cap_netframe_decode(CAP_LINKTYPE_ETHERNET, frame, header_len + sizeof(payload), &d),
        CAP_NETFRAME_UDP);
    assert_int_equal(d.ep.family, 4);
    assert_memory_equal(d.ep.src, ep.src, 16);
    assert_memory_equal(d.ep.dst, ep.dst, 16);
    assert_int_equal(d.ep.src_port, 40000);
    assert_int_equal(d.ep.dst_port, 5004);
    assert_int_equal(d.len, sizeof(payload));
    assert_memory_equal(d.payload, payload, sizeof(payload));
}

static void test_ipv6_encode_round_trips_with_a_valid_udp_checksum(void **state)
{
    (void)state;
    const struct cap_udp_endpoints ep = {
        .family = 6,
        .src = {0xfe, 0x80, [8] = 0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55},
        .dst = {0x20, 0x01, 0x0d, 0xb8, [14] = 0xab, 0xcd},
        .src_port = 50000,
        .dst_port = 443};
    static const uint8_t payload[] = {0x80, 0x6f, 0x00, 0x01, 0x00, 0x00, 0x0b, 0xb8, 0xff};
    uint8_t frame[CAP_NETFRAME_MAX_HEADER + sizeof(payload)];
    size_t header_len = cap_netframe_encode_ethernet(&ep, BYTES(payload), frame);
    assert_int_equal(header_len, CAP_NETFRAME_MAX_HEADER);
    memcpy(frame + header_len, payload, sizeof(payload));

    const uint8_t *ip = frame + 14;
    assert_int_equal(frame[12] << 8 | frame[13], 0x86dd);
    assert_int_equal(ip[0] >> 4, 6);
    assert_int_equal(ip[7], 64);
    assert_int_not_equal(ip[46] << 8 | ip[47], 0);
    assert_int_equal(ipv6_udp_sum(ip, BYTES(payload)), 0xFFFF);

    struct cap_udp_datagram d;
    assert_int_equal(
        cap_netframe_decode(CAP_LINKTYPE_ETHERNET, frame, header_len + sizeof(payload), &d),
        CAP_NETFRAME_UDP);
    assert_int_equal(d.ep.family, 6);
    assert_memory_equal(d.ep.src, ep.src, 16);
    assert_memory_equal(d.ep.dst, ep.dst, 16);
    assert_int_equal(d.ep.src_port, 50000);
    assert_int_equal(d.ep.dst_port, 443);
    assert_int_equal(d.len, sizeof(payload));
    assert_memory_equal(d.payload, payload, sizeof(payload));
}

static void test_ipv6_udp_checksum_computing_to_zero_is_sent_as_ffff(void **state)
{
    (void)state;
    const struct cap_udp_endpoints ep = {
        .family = 6, .src = {[15] = 1}, .dst = {[15] = 1}, .src_port = 1, .dst_port = 2};
    uint8_t payload[2] = {0, 0};
    uint8_t frame[CAP_NETFRAME_MAX_HEADER];
    cap_netframe_encode_ethernet(&ep, BYTES(payload), frame);
    /* Choose the payload word that brings the sum to 0xFFFF, whose complement is 0. */
    frame[14 + 46] = 0;
    frame[14 + 47] = 0;
    uint32_t sum = ipv6_udp_sum(frame + 14, BYTES(payload));
    uint16_t word = (uint16_t)(0xFFFF - sum);
    payload[0] = (uint8_t)(word >> 8);
    payload[1] = (uint8_t)word;
    assert_int_equal(ipv6_udp_sum(frame + 14, BYTES(payload)), 0xFFFF);
    cap_netframe_encode_ethernet(&ep, BYTES(payload), frame);
    assert_int_equal(frame[14 + 46], 0xFF);
    assert_int_equal(frame[14 + 47], 0xFF);
    /* ...which a receiver verifies just as well. */
    assert_int_equal(ipv6_udp_sum(frame + 14, BYTES(payload)), 0xFFFF);
}

static void test_encode_refuses_unknown_family_and_oversized_payload(void **state)
{
    (void)state;
    static uint8_t payload[65536];
    uint8_t frame[CAP_NETFRAME_MAX_HEADER];
    struct cap_udp_endpoints ep = {.family = 5};
    assert_int_equal(cap_netframe_encode_ethernet(&ep, payload, 10, frame), 0);
    ep.family = 4;
    assert_int_equal(cap_netframe_encode_ethernet(&ep, payload, 65507, frame), 42);
    assert_int_equal(frame[16] << 8 | frame[17], 65535);
    assert_int_equal(cap_netframe_encode_ethernet(&ep, payload, 65508, frame), 0);
    ep.family = 6;
    assert_int_equal(cap_netframe_encode_ethernet(&ep, payload, 65527, frame), 62);
    assert_int_equal(cap_netframe_encode_ethernet(&ep, payload, 65528, frame), 0);
}

static void test_verdict_names_are_the_importers_drop_reasons(void **state)
{
    (void)state;
    assert_string_equal(cap_netframe_verdict_name(CAP_NETFRAME_UDP), "udp");
    assert_string_equal(cap_netframe_verdict_name(CAP_NETFRAME_NOT_IP), "not_ip");
    assert_string_equal(cap_netframe_verdict_name(CAP_NETFRAME_NOT_UDP), "not_udp");
    assert_string_equal(cap_netframe_verdict_name(CAP_NETFRAME_FRAGMENT), "ip_fragment");
    assert_string_equal(cap_netframe_verdict_name(CAP_NETFRAME_TRUNCATED), "truncated");
    assert_string_equal(cap_netframe_verdict_name(CAP_NETFRAME_MALFORMED), "malformed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_link_type_and_vlan_stack_decodes_to_udp),
        cmocka_unit_test(test_ipv4_options_are_skipped_to_reach_udp),
        cmocka_unit_test(test_ethernet_padding_after_ip_total_length_is_ignored),
        cmocka_unit_test(test_non_udp_fragmented_and_malformed_frames_are_refused),
        cmocka_unit_test(test_ipv6_extension_headers_are_walked_to_udp_or_refused),
        cmocka_unit_test(test_truncation_at_every_byte_is_refused_without_reading_past_it),
        cmocka_unit_test(test_ipv4_encode_round_trips_with_a_valid_header_checksum),
        cmocka_unit_test(test_ipv6_encode_round_trips_with_a_valid_udp_checksum),
        cmocka_unit_test(test_ipv6_udp_checksum_computing_to_zero_is_sent_as_ffff),
        cmocka_unit_test(test_encode_refuses_unknown_family_and_oversized_payload),
        cmocka_unit_test(test_verdict_names_are_the_importers_drop_reasons),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
