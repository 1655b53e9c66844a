/* rtcp: compound parsing of every packet type we decode, and refusal of compounds whose
 * lengths, padding or layouts lie, all from hand-built packets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "capstan/error.h"
#include "rtp/rtcp.h"

#define BYTES(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

/* SR from 0x11111111 with one report block about 0x22222222 (52 bytes); `first` is the
 * first byte, so RC can be made to lie. */
#define SR_WITH_BLOCK(first)                                                                       \
    first, 200, 0x00, 0x0c, 0x11, 0x11, 0x11, 0x11,     /* header, sender SSRC */                  \
        0xe0, 0x00, 0x00, 0x01, 0x80, 0x00, 0x00, 0x00, /* NTP */                                  \
        0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x04, 0x00, /* ts, counts */   \
        0x22, 0x22, 0x22, 0x22, 0x40, 0xff, 0xff, 0xfe, /* block: SSRC, fraction, lost -2 */       \
        0x00, 0x01, 0x00, 0x05, 0x00, 0x00, 0x00, 0x20, /* highest seq, jitter */                  \
        0x12, 0x34, 0x56, 0x78, 0x00, 0x01, 0x00, 0x00  /* LSR, DLSR */

/* SDES for 0x11111111 with CNAME "abcd", its null item and one byte of chunk padding. */
#define SDES_CNAME                                                                                 \
    0x81, 202, 0x00, 0x03, 0x11, 0x11, 0x11, 0x11, 0x01, 0x04, 'a', 'b', 'c', 'd', 0x00, 0x00

/* RR from 0x33333333 with no blocks (8 bytes). */
#define RR_EMPTY 0x80, 201, 0x00, 0x01, 0x33, 0x33, 0x33, 0x33

static void test_rtcp_sr_and_sdes_compound_parses(void **state)
{
    (void)state;
    const uint8_t compound[] = {SR_WITH_BLOCK(0x81), SDES_CNAME};
    struct cap_rtcp_packet pkts[4];
    assert_int_equal(cap_rtcp_parse(compound, sizeof(compound), pkts, 4), 2);

    assert_int_equal(pkts[0].type, CAP_RTCP_SR);
    assert_int_equal(pkts[0].count, 1);
    assert_int_equal(pkts[0].ssrc, 0x11111111u);
    assert_ptr_equal(pkts[0].data, compound);
    assert_int_equal(pkts[0].len, 52);
    assert_int_equal(pkts[0].ntp, UINT64_C(0xe000000180000000));
    assert_int_equal(pkts[0].rtp_ts, 0x1000);
    assert_int_equal(pkts[0].packet_count, 0x10);
    assert_int_equal(pkts[0].octet_count, 0x400);
    assert_ptr_equal(pkts[0].report_blocks, compound + 28);

    struct cap_rtcp_report_block b;
    cap_rtcp_report_block(&pkts[0], 0, &b);
    assert_int_equal(b.ssrc, 0x22222222u);
    assert_int_equal(b.fraction_lost, 0x40);
    assert_int_equal(b.cumulative_lost, -2);
    assert_int_equal(b.highest_seq, 0x00010005u);
    assert_int_equal(b.jitter, 0x20);
    assert_int_equal(b.lsr, 0x12345678u);
    assert_int_equal(b.dlsr, 0x00010000u);

    assert_int_equal(pkts[1].type, CAP_RTCP_SDES);
    assert_int_equal(pkts[1].count, 1);
    assert_int_equal(pkts[1].ssrc, 0x11111111u);
    assert_ptr_equal(pkts[1].data, compound + 52);
    assert_int_equal(pkts[1].len, 16);

    assert_int_equal(cap_rtcp_sender_ssrc(pkts, 2), 0x11111111u);
    assert_int_equal(cap_rtcp_sender_ssrc(pkts, 0), 0);
}

static void test_rtcp_rr_with_two_blocks(void **state)
{
    (void)state;
    const uint8_t rr[] = {
        0x82, 201,  0x00, 0x0d, 0x33, 0x33, 0x33, 0x33, 0x44, 0x44, 0x44, 0x44, 0x01, 0x00,
        0x00, 0x07, 0,    0,    0,    9,    0,    0,    0,    1,    0,    0,    0,    2,
        0,    0,    0,    3,    0x55, 0x55, 0x55, 0x55, 0xff, 0x7f, 0xff, 0xff, 0,    0,
        0,    8,    0,    0,    0,    4,    0,    0,    0,    5,    0,    0,    0,    6,
    };
    struct cap_rtcp_packet pkt;
    assert_int_equal(cap_rtcp_parse(rr, sizeof(rr), &pkt, 1), 1);
    assert_int_equal(pkt.type, CAP_RTCP_RR);
    assert_int_equal(pkt.count, 2);
    assert_int_equal(pkt.ssrc, 0x33333333u);
    assert_ptr_equal(pkt.report_blocks, rr + 8);
    struct cap_rtcp_report_block b;
    cap_rtcp_report_block(&pkt, 0, &b);
    assert_int_equal(b.ssrc, 0x44444444u);
    assert_int_equal(b.fraction_lost, 1);
    assert_int_equal(b.cumulative_lost, 7);
    assert_int_equal(b.highest_seq, 9);
    assert_int_equal(b.dlsr, 3);
    cap_rtcp_report_block(&pkt, 1, &b);
    assert_int_equal(b.ssrc, 0x55555555u);
    assert_int_equal(b.fraction_lost, 0xff);
    assert_int_equal(b.cumulative_lost, 0x7fffff);
    assert_int_equal(b.jitter, 4);
    assert_int_equal(b.lsr, 5);
    assert_int_equal(b.dlsr, 6);
    /* An index past the count decodes to zeros rather than reading past the packet. */
    cap_rtcp_report_block(&pkt, 2, &b);
    assert_int_equal(b.ssrc, 0);
}

static void test_rtcp_bye_with_reason(void **state)
{
    (void)state;
    const uint8_t compound[] = {RR_EMPTY, 0x81, 203, 0x00, 0x03, 0x66, 0x66, 0x66, 0x66,
                                0x07,     'l',  'e', 'a',  'v',  'i',  'n',  'g'};
    struct cap_rtcp_packet pkts[2];
    assert_int_equal(cap_rtcp_parse(compound, sizeof(compound), pkts, 2), 2);
    assert_int_equal(pkts[1].type, CAP_RTCP_BYE);
    assert_int_equal(pkts[1].count, 1);
    assert_int_equal(pkts[1].ssrc, 0x66666666u);
    assert_int_equal(pkts[1].len, 16);
    assert_int_equal(cap_rtcp_sender_ssrc(pkts, 2), 0x33333333u);
}

static void test_rtcp_app_name_is_copied(void **state)
{
    (void)state;
    const uint8_t app[] = {0x85, 204, 0x00, 0x03, 0x77, 0x77, 0x77, 0x77,
                           'T',  'E', 'S',  'T',  0xde, 0xad, 0xbe, 0xef};
    struct cap_rtcp_packet pkt;
    assert_int_equal(cap_rtcp_parse(app, sizeof(app), &pkt, 1), 1);
    assert_int_equal(pkt.type, CAP_RTCP_APP);
    assert_int_equal(pkt.count, 5); /* subtype */
    assert_int_equal(pkt.ssrc, 0x77777777u);
    assert_string_equal(pkt.app_name, "TEST");
}

static void test_rtcp_psfb_pli_alone_is_a_reduced_size_compound(void **state)
{
    (void)state;
    const uint8_t pli[] = {0x81, 206, 0x00, 0x02, 0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22};
    struct cap_rtcp_packet pkt;
    assert_int_equal(cap_rtcp_parse(pli, sizeof(pli), &pkt, 1), 1);
    assert_int_equal(pkt.type, CAP_RTCP_PSFB);
    assert_int_equal(pkt.count, 1); /* FMT 1: PLI */
    assert_int_equal(pkt.ssrc, 0x11111111u);
    assert_int_equal(pkt.media_ssrc, 0x22222222u);
    assert_ptr_equal(pkt.fci, pli + 12);
    assert_int_equal(pkt.fci_len, 0);
    assert_int_equal(cap_rtcp_sender_ssrc(&pkt, 1), 0x11111111u);
}

static void test_rtcp_rtpfb_nack_fci_is_exposed(void **state)
{
    (void)state;
    const uint8_t compound[] = {RR_EMPTY, 0x81, 205,  0x00, 0x03, 0x11, 0x11, 0x11, 0x11,
                                0x22,     0x22, 0x22, 0x22, 0x00, 0x64, 0x00, 0x05};
    struct cap_rtcp_packet pkts[2];
    assert_int_equal(cap_rtcp_parse(compound, sizeof(compound), pkts, 2), 2);
    assert_int_equal(pkts[1].type, CAP_RTCP_RTPFB);
    assert_int_equal(pkts[1].count, 1); /* FMT 1: generic NACK */
    assert_int_equal(pkts[1].ssrc, 0x11111111u);
    assert_int_equal(pkts[1].media_ssrc, 0x22222222u);
    assert_int_equal(pkts[1].fci_len, 4);
    assert_memory_equal(pkts[1].fci, "\x00\x64\x00\x05", 4);
}

static void test_rtcp_xr_and_unknown_types_keep_common_fields(void **state)
{
    (void)state;
    const uint8_t compound[] = {0x80, 207, 0x00, 0x01, 0x99, 0x99, 0x99, 0x99, /* XR */
                                0x83, 210, 0x00, 0x00};                        /* type 210 */
    struct cap_rtcp_packet pkts[2];
    assert_int_equal(cap_rtcp_parse(compound, sizeof(compound), pkts, 2), 2);
    assert_int_equal(pkts[0].type, CAP_RTCP_XR);
    assert_int_equal(pkts[0].ssrc, 0x99999999u);
    assert_int_equal(pkts[1].type, 210);
    assert_int_equal(pkts[1].count, 3);
    assert_int_equal(pkts[1].ssrc, 0);
    assert_int_equal(pkts[1].len, 4);
}

static void test_rtcp_padding_on_last_packet_is_allowed(void **state)
{
    (void)state;
    const uint8_t compound[] = {RR_EMPTY, 0xa0, 201,  0x00, 0x02, 0x33, 0x33,
                                0x33,     0x33, 0x00, 0x00, 0x00, 0x04};
    struct cap_rtcp_packet pkts[2];
    assert_int_equal(cap_rtcp_parse(compound, sizeof(compound), pkts, 2), 2);
    assert_int_equal(pkts[1].len, 12); /* padding included */
    assert_int_equal(pkts[1].ssrc, 0x33333333u);
}

static void test_rtcp_more_packets_than_room_is_a_limit(void **state)
{
    (void)state;
    const uint8_t compound[] = {RR_EMPTY, RR_EMPTY, RR_EMPTY};
    struct cap_rtcp_packet pkts[3];
    assert_int_equal(cap_rtcp_parse(compound, sizeof(compound), pkts, 2), CAP_ELIMIT);
    assert_int_equal(cap_rtcp_parse(compound, sizeof(compound), pkts, 3), 3);
}

struct bad_case {
    const char *what;
    const uint8_t *data;
    size_t len;
    int expected;
};

static void test_rtcp_malformed_compounds_are_refused_whole(void **state)
{
    (void)state;
    const struct bad_case cases[] = {
        {"empty", NULL, 0, CAP_ETRUNC},
        {"shorter than a header", BYTES(0x80, 201, 0x00), CAP_ETRUNC},
        {"version 1", BYTES(0x40, 201, 0x00, 0x01, 0, 0, 0, 0), CAP_EVERSION},
        {"RTP packet type", BYTES(0x80, 96, 0x00, 0x01, 0, 0, 0, 0), CAP_EFORMAT},
        {"length too long", BYTES(0x80, 201, 0x00, 0x02, 0, 0, 0, 0), CAP_EFORMAT},
        {"length too long in second packet", BYTES(RR_EMPTY, 0x80, 201, 0x00, 0x05, 0, 0, 0, 0),
         CAP_EFORMAT},
        {"length too short for the SR",
         BYTES(0x80, 200, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
               0, 0, 0),
         CAP_EFORMAT},
        {"length too short: rest read as header",
         BYTES(0x80, 202, 0x00, 0x00, 0x33, 0x33, 0x33, 0x33), CAP_EVERSION},
        {"length too short for the RR", BYTES(0x80, 201, 0x00, 0x00, 0x33, 0x33, 0x33, 0x33),
         CAP_EFORMAT},
        {"garbage after a valid packet", BYTES(RR_EMPTY, 0xde, 0xad, 0xbe, 0xef), CAP_EVERSION},
        {"RTP header after a valid packet", BYTES(RR_EMPTY, 0x80, 0x60, 0x00, 0x00), CAP_EFORMAT},
        {"two stray bytes after a valid packet", BYTES(RR_EMPTY, 0x80, 201), CAP_EFORMAT},
        {"padding on a packet that is not last",
         BYTES(0xa0, 201, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 4, RR_EMPTY), CAP_EFORMAT},
        {"padding count zero", BYTES(0xa0, 201, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0), CAP_EFORMAT},
        {"padding into the header", BYTES(0xa0, 201, 0x00, 0x01, 0, 0, 0, 5), CAP_EFORMAT},
        {"padding into the header of an empty BYE", BYTES(0xa0, 203, 0x00, 0x01, 0, 0, 0, 5),
         CAP_EFORMAT},
        {"padding eating the RR", BYTES(0xa0, 201, 0x00, 0x01, 0, 0, 0, 4), CAP_EFORMAT},
        {"SR with RC past its blocks", BYTES(SR_WITH_BLOCK(0x82)), CAP_EFORMAT},
        {"RR with RC past its blocks", BYTES(0x81, 201, 0x00, 0x01, 0x33, 0x33, 0x33, 0x33),
         CAP_EFORMAT},
        {"SDES item past end",
         BYTES(0x81, 202, 0x00, 0x02, 0x11, 0x11, 0x11, 0x11, 0x01, 0x0a, 'a', 'b'), CAP_EFORMAT},
        {"SDES item without a null item",
         BYTES(0x81, 202, 0x00, 0x02, 0x11, 0x11, 0x11, 0x11, 0x01, 0x02, 'a', 'b'), CAP_EFORMAT},
        {"SDES chunk count past end",
         BYTES(0x82, 202, 0x00, 0x02, 0x11, 0x11, 0x11, 0x11, 0x01, 0x01, 'a', 0x00), CAP_EFORMAT},
        {"SDES item running into padding",
         BYTES(0xa1, 202, 0x00, 0x03, 0x11, 0x11, 0x11, 0x11, 0x01, 0x03, 'a', 'b', 'c', 0x00, 0x00,
               0x04),
         CAP_EFORMAT},
        {"SDES chunk without its SSRC", BYTES(0x81, 202, 0x00, 0x00), CAP_EFORMAT},
        {"SDES chunk padding running into packet padding",
         BYTES(0xa1, 202, 0x00, 0x03, 0x11, 0x11, 0x11, 0x11, 0x01, 0x02, 'a', 'b', 0x00, 0x00,
               0x00, 0x03),
         CAP_EFORMAT},
        {"BYE with SC past end", BYTES(0x82, 203, 0x00, 0x01, 0x11, 0x11, 0x11, 0x11), CAP_EFORMAT},
        {"BYE reason past end",
         BYTES(0x81, 203, 0x00, 0x02, 0x11, 0x11, 0x11, 0x11, 0x05, 'b', 'y', 'e'), CAP_EFORMAT},
        {"APP without a name", BYTES(0x80, 204, 0x00, 0x01, 0x11, 0x11, 0x11, 0x11), CAP_EFORMAT},
        {"PSFB without media SSRC", BYTES(0x81, 206, 0x00, 0x01, 0x11, 0x11, 0x11, 0x11),
         CAP_EFORMAT},
        {"RTPFB without media SSRC", BYTES(0x81, 205, 0x00, 0x00), CAP_EFORMAT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cap_rtcp_packet pkts[4];
        int rc = cap_rtcp_parse(cases[i].data, cases[i].len, pkts, 4);
        if (rc != cases[i].expected)
            fail_msg("%s: got %d (%s), want %d (%s)", cases[i].what, rc, cap_strerror(rc),
                     cases[i].expected, cap_strerror(cases[i].expected));
    }
}

static void test_rtcp_sdes_with_several_chunks_and_items(void **state)
{
    (void)state;
    /* Chunk 1: CNAME "ab", NAME "x", null (12 bytes with SSRC); chunk 2: null only. */
    const uint8_t sdes[] = {0x82, 202,  0x00, 0x05, 0x11, 0x11, 0x11, 0x11, 0x01, 0x02, 'a',  'b',
                            0x02, 0x01, 'x',  0x00, 0x22, 0x22, 0x22, 0x22, 0x00, 0x00, 0x00, 0x00};
    struct cap_rtcp_packet pkt;
    assert_int_equal(cap_rtcp_parse(sdes, sizeof(sdes), &pkt, 1), 1);
    assert_int_equal(pkt.count, 2);
    assert_int_equal(pkt.ssrc, 0x11111111u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rtcp_sr_and_sdes_compound_parses),
        cmocka_unit_test(test_rtcp_rr_with_two_blocks),
        cmocka_unit_test(test_rtcp_bye_with_reason),
        cmocka_unit_test(test_rtcp_app_name_is_copied),
        cmocka_unit_test(test_rtcp_psfb_pli_alone_is_a_reduced_size_compound),
        cmocka_unit_test(test_rtcp_rtpfb_nack_fci_is_exposed),
        cmocka_unit_test(test_rtcp_xr_and_unknown_types_keep_common_fields),
        cmocka_unit_test(test_rtcp_padding_on_last_packet_is_allowed),
        cmocka_unit_test(test_rtcp_more_packets_than_room_is_a_limit),
        cmocka_unit_test(test_rtcp_malformed_compounds_are_refused_whole),
        cmocka_unit_test(test_rtcp_sdes_with_several_chunks_and_items),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
