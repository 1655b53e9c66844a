/* rtp: RTP header parsing and validation, RFC 8285 extension walks, RFC 5761 demux,
 * all from hand-built packets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "capstan/error.h"
#include "rtp/rtp.h"

#define PKT(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

/* V=2, PT 96, seq 0x1234, ts 0xdeadbeef, ssrc 0x01020304, with the first byte's low bits
 * (P, X, CC) given. */
#define HDR(first) (0x80 | (first)), 0x60, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4

static void test_rtp_header_fields_are_read(void **state)
{
    (void)state;
    const uint8_t pkt[] = {0x80, 0xe0, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef,
                           0x01, 0x02, 0x03, 0x04, 'a',  'b',  'c'};
    struct cap_rtp_packet p;
    assert_int_equal(cap_rtp_parse(pkt, sizeof(pkt), &p), 0);
    assert_int_equal(p.version, 2);
    assert_false(p.padding);
    assert_false(p.extension);
    assert_true(p.marker);
    assert_int_equal(p.payload_type, 96);
    assert_int_equal(p.sequence, 0x1234);
    assert_int_equal(p.timestamp, 0xdeadbeefu);
    assert_int_equal(p.ssrc, 0x01020304u);
    assert_int_equal(p.csrc_count, 0);
    assert_ptr_equal(p.payload, pkt + 12);
    assert_int_equal(p.payload_len, 3);
    assert_int_equal(p.padding_len, 0);
}

static void test_rtp_empty_payload_is_valid(void **state)
{
    (void)state;
    const uint8_t pkt[] = {HDR(0)};
    struct cap_rtp_packet p;
    assert_int_equal(cap_rtp_parse(pkt, sizeof(pkt), &p), 0);
    assert_int_equal(p.payload_len, 0);
    assert_ptr_equal(p.payload, pkt + 12);
}

static void test_rtp_csrc_list_is_read(void **state)
{
    (void)state;
    const uint8_t pkt[] = {HDR(0x02), 0xaa, 0xbb, 0xcc, 0xdd, 0x11, 0x22, 0x33, 0x44, 0x77};
    struct cap_rtp_packet p;
    assert_int_equal(cap_rtp_parse(pkt, sizeof(pkt), &p), 0);
    assert_int_equal(p.csrc_count, 2);
    assert_int_equal(p.csrc[0], 0xaabbccddu);
    assert_int_equal(p.csrc[1], 0x11223344u);
    assert_ptr_equal(p.payload, pkt + 20);
    assert_int_equal(p.payload_len, 1);
}

static void test_rtp_padding_is_removed_from_payload(void **state)
{
    (void)state;
    const uint8_t pkt[] = {HDR(0x20), 'x', 'y', 'z', 0, 0, 3};
    struct cap_rtp_packet p;
    assert_int_equal(cap_rtp_parse(pkt, sizeof(pkt), &p), 0);
    assert_true(p.padding);
    assert_int_equal(p.padding_len, 3);
    assert_int_equal(p.payload_len, 3);
    assert_memory_equal(p.payload, "xyz", 3);
}

static void test_rtp_padding_may_fill_everything_after_the_header(void **state)
{
    (void)state;
    const uint8_t pkt[] = {HDR(0x20), 0, 0, 0, 4};
    struct cap_rtp_packet p;
    assert_int_equal(cap_rtp_parse(pkt, sizeof(pkt), &p), 0);
    assert_int_equal(p.padding_len, 4);
    assert_int_equal(p.payload_len, 0);
}

static void test_rtp_extension_block_is_located(void **state)
{
    (void)state;
    const uint8_t pkt[] = {HDR(0x11), 0xaa, 0xbb, 0xcc, 0xdd, /* one CSRC */
                           0xbe,      0xde, 0x00, 0x01, 0x10, 0x55, 0x00, 0x00, 'p'};
    struct cap_rtp_packet p;
    assert_int_equal(cap_rtp_parse(pkt, sizeof(pkt), &p), 0);
    assert_true(p.extension);
    assert_int_equal(p.ext_profile, 0xbede);
    assert_ptr_equal(p.ext_data, pkt + 20);
    assert_int_equal(p.ext_len, 4);
    assert_ptr_equal(p.payload, pkt + 24);
    assert_int_equal(p.payload_len, 1);
}

struct malformed_case {
    const char *what;
    const uint8_t *data;
    size_t len;
};

static void expect_all_refused(const struct malformed_case *cases, size_t n, int expected)
{
    for (size_t i = 0; i < n; i++) {
        struct cap_rtp_packet p;
        int rc = cap_rtp_parse(cases[i].data, cases[i].len, &p);
        if (rc != expected)
            fail_msg("%s: got %d (%s), want %d (%s)", cases[i].what, rc, cap_strerror(rc), expected,
                     cap_strerror(expected));
    }
}

static void test_rtp_short_header_csrc_or_extension_is_truncated(void **state)
{
    (void)state;
    const struct malformed_case cases[] = {
        {"empty", NULL, 0},
        {"header one byte short", PKT(0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0)},
        {"csrc count past end", PKT(HDR(0x02), 1, 2, 3, 4, 5, 6, 7)},
        {"csrc count 15 with none", PKT(HDR(0x0f))},
        {"extension header past end", PKT(HDR(0x10), 0xbe, 0xde, 0x00)},
        {"extension length past end", PKT(HDR(0x10), 0xbe, 0xde, 0x00, 0x02, 1, 2, 3, 4)},
        {"extension after csrc past end", PKT(HDR(0x11), 1, 2, 3, 4)},
    };
    expect_all_refused(cases, sizeof(cases) / sizeof(cases[0]), CAP_ETRUNC);
}

static void test_rtp_version_other_than_2_is_refused(void **state)
{
    (void)state;
    const struct malformed_case cases[] = {
        {"version 0", PKT(0x00, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0)},
        {"version 1", PKT(0x40, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0)},
        {"version 3", PKT(0xc0, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0)},
    };
    expect_all_refused(cases, sizeof(cases) / sizeof(cases[0]), CAP_EVERSION);
}

static void test_rtp_padding_count_zero_or_too_long_is_malformed(void **state)
{
    (void)state;
    const struct malformed_case cases[] = {
        {"padding longer than payload", PKT(HDR(0x20), 'a', 'b', 4)},
        {"padding count zero", PKT(HDR(0x20), 'a', 'b', 0)},
        {"padding with nothing after header", PKT(HDR(0x20))},
        {"padding reaching into extension",
         PKT(HDR(0x30), 0xbe, 0xde, 0x00, 0x01, 0x10, 0, 0, 0, 0, 3)},
        {"padding reaching into csrc", PKT(HDR(0x21), 0, 0, 0, 0, 'a', 3)},
    };
    expect_all_refused(cases, sizeof(cases) / sizeof(cases[0]), CAP_EFORMAT);
}

/* Walks a packet's whole extension block into `ids`/`lens`; returns the walk's last result. */
static int walk(const struct cap_rtp_packet *p, uint8_t *ids, uint8_t *lens, size_t *n)
{
    size_t offset = 0;
    struct cap_rtp_ext_element e;
    int rc;
    *n = 0;
    while ((rc = cap_rtp_ext_next(p, &offset, &e)) == 1) {
        ids[*n] = e.id;
        lens[*n] = e.len;
        (*n)++;
    }
    return rc;
}

static void test_rtp_one_byte_extension_walk_skips_padding(void **state)
{
    (void)state;
    /* id 1 len 1 (0xaa), a padding byte, id 2 len 3, then two padding bytes. */
    const uint8_t pkt[] = {HDR(0x10), 0xbe, 0xde, 0x00, 0x02, 0x10, 0xaa,
                           0x00,      0x22, 0x01, 0x02, 0x03, 0x00};
    struct cap_rtp_packet p;
    assert_int_equal(cap_rtp_parse(pkt, sizeof(pkt), &p), 0);
    uint8_t ids[8], lens[8];
    size_t n;
    assert_int_equal(walk(&p, ids, lens, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(lens[0], 1);
    assert_int_equal(ids[1], 2);
    assert_int_equal(lens[1], 3);

    struct cap_rtp_ext_element e;
    assert_int_equal(cap_rtp_ext_find(&p, 2, &e), 1);
    assert_ptr_equal(e.data, pkt + 16 + 4);
    assert_memory_equal(e.data, "\x01\x02\x03", 3);
    assert_int_equal(cap_rtp_ext_find(&p, 1, &e), 1);
    assert_int_equal(e.data[0], 0xaa);
    assert_int_equal(cap_rtp_ext_find(&p, 3, &e), 0);
}

static void test_rtp_one_byte_extension_id_15_stops_the_walk(void **state)
{
    (void)state;
    /* id 1 len 1, then id 15 (whose length is ignored), then what would be id 3 len 1. */
    const uint8_t pkt[] = {HDR(0x10), 0xbe, 0xde, 0x00, 0x02, 0x10, 0xaa,
                           0xff,      0x30, 0x77, 0x00, 0x00, 0x00};
    struct cap_rtp_packet p;
    assert_int_equal(cap_rtp_parse(pkt, sizeof(pkt), &p), 0);
    uint8_t ids[8], lens[8];
    size_t n;
    assert_int_equal(walk(&p, ids, lens, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 1);
    assert_int_equal(cap_rtp_ext_find(&p, 3, NULL), 0);
    assert_int_equal(cap_rtp_ext_find(&p, 1, NULL), 1);
}

static void test_rtp_one_byte_extension_element_past_block_is_malformed(void **state)
{
    (void)state;
    /* id 1 claims 4 bytes of data but the 4-byte block holds only 3 after it. */
    const uint8_t pkt[] = {HDR(0x10), 0xbe, 0xde, 0x00, 0x01, 0x13, 1, 2, 3, 'p', 'p'};
    struct cap_rtp_packet p;
    assert_int_equal(cap_rtp_parse(pkt, sizeof(pkt), &p), 0);
    assert_int_equal(p.payload_len, 2); /* the payload after the block is not touched */
    uint8_t ids[8], lens[8];
    size_t n;
    assert_int_equal(walk(&p, ids, lens, &n), CAP_EFORMAT);
    assert_int_equal(n, 0);
    assert_int_equal(cap_rtp_ext_find(&p, 1, NULL), CAP_EFORMAT);
}

static void test_rtp_one_byte_extension_id_0_with_length_is_malformed(void **state)
{
    (void)state;
    /* 0x01 is id 0 with length 2, which would fit: but it is not a padding byte, and RFC 8285
     * reserves id 0 for those. */
    const uint8_t pkt[] = {HDR(0x10), 0xbe, 0xde, 0x00, 0x02, 0x10, 0xaa,
                           0x01,      0xbb, 0xcc, 0x00, 0x00, 0x00};
    struct cap_rtp_packet p;
    assert_int_equal(cap_rtp_parse(pkt, sizeof(pkt), &p), 0);
    uint8_t ids[8], lens[8];
    size_t n;
    assert_int_equal(walk(&p, ids, lens, &n), CAP_EFORMAT);
    assert_int_equal(n, 1);
}

static void test_rtp_two_byte_extension_walk(void **state)
{
    (void)state;
    /* appbits 0xf in the profile; id 1 with length 0, a padding byte, id 200 with 3 bytes,
     * padding to the end of the 8-byte block. */
    const uint8_t pkt[] = {HDR(0x10), 0x10, 0x0f, 0x00, 0x02, 0x01, 0x00,
                           0x00,      0xc8, 0x03, 'a',  'b',  'c'};
    struct cap_rtp_packet p;
    assert_int_equal(cap_rtp_parse(pkt, sizeof(pkt), &p), 0);
    uint8_t ids[8], lens[8];
    size_t n;
    assert_int_equal(walk(&p, ids, lens, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(lens[0], 0);
    assert_int_equal(ids[1], 200);
    assert_int_equal(lens[1], 3);
    struct cap_rtp_ext_element e;
    assert_int_equal(cap_rtp_ext_find(&p, 200, &e), 1);
    assert_memory_equal(e.data, "abc", 3);
    /* In the two-byte form 15 is an ordinary id, not a stop. */
    const uint8_t with_15[] = {HDR(0x10), 0x10, 0x00, 0x00, 0x01, 0x0f, 0x01, 0x42, 0x00};
    assert_int_equal(cap_rtp_parse(with_15, sizeof(with_15), &p), 0);
    assert_int_equal(cap_rtp_ext_find(&p, 15, &e), 1);
    assert_int_equal(e.data[0], 0x42);
}

static void test_rtp_two_byte_extension_element_past_block_is_malformed(void **state)
{
    (void)state;
    const uint8_t too_long[] = {HDR(0x10), 0x10, 0x00, 0x00, 0x01, 0x05, 0x03, 1, 2};
    const uint8_t no_length[] = {HDR(0x10), 0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07};
    struct cap_rtp_packet p;
    uint8_t ids[8], lens[8];
    size_t n;
    assert_int_equal(cap_rtp_parse(too_long, sizeof(too_long), &p), 0);
    assert_int_equal(walk(&p, ids, lens, &n), CAP_EFORMAT);
    assert_int_equal(cap_rtp_parse(no_length, sizeof(no_length), &p), 0);
    assert_int_equal(walk(&p, ids, lens, &n), CAP_EFORMAT);
}

static void test_rtp_unknown_extension_profile_parses_but_does_not_walk(void **state)
{
    (void)state;
    const uint8_t pkt[] = {HDR(0x10), 0xab, 0xcd, 0x00, 0x01, 0x10, 0xaa, 0x00, 0x00, 'p'};
    struct cap_rtp_packet p;
    assert_int_equal(cap_rtp_parse(pkt, sizeof(pkt), &p), 0);
    assert_int_equal(p.ext_profile, 0xabcd);
    assert_int_equal(p.payload_len, 1);
    size_t offset = 0;
    struct cap_rtp_ext_element e;
    assert_int_equal(cap_rtp_ext_next(&p, &offset, &e), CAP_EFORMAT);
    assert_int_equal(cap_rtp_ext_find(&p, 1, &e), CAP_EFORMAT);
}

static void test_rtp_walk_without_extension_or_with_empty_block_ends_at_once(void **state)
{
    (void)state;
    const uint8_t none[] = {HDR(0), 'p'};
    const uint8_t empty[] = {HDR(0x10), 0xbe, 0xde, 0x00, 0x00, 'p'};
    struct cap_rtp_packet p;
    size_t offset = 0;
    struct cap_rtp_ext_element e;
    assert_int_equal(cap_rtp_parse(none, sizeof(none), &p), 0);
    assert_int_equal(cap_rtp_ext_next(&p, &offset, &e), 0);
    assert_int_equal(cap_rtp_parse(empty, sizeof(empty), &p), 0);
    assert_int_equal(p.ext_len, 0);
    assert_int_equal(p.payload_len, 1);
    assert_int_equal(cap_rtp_ext_next(&p, &offset, &e), 0);
}

static void test_rtp_rtcp_demux_follows_rfc5761(void **state)
{
    (void)state;
    const struct {
        uint8_t first, second;
        size_t len;
        bool rtcp;
    } cases[] = {
        {0x80, 200, 8, true},  /* SR */
        {0x81, 201, 8, true},  /* RR */
        {0x80, 192, 8, true},  /* lowest of the range */
        {0x80, 223, 8, true},  /* highest of the range */
        {0x80, 191, 8, false}, /* PT 63 with marker */
        {0x80, 224, 8, false}, /* PT 96 with marker */
        {0x80, 96, 8, false},  /* PT 96 */
        {0x40, 200, 8, false}, /* version 1 */
        {0x80, 200, 1, false}, /* too short */
        {0x80, 200, 0, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const uint8_t pkt[2] = {cases[i].first, cases[i].second};
        if (cap_rtp_looks_like_rtcp(pkt, cases[i].len) != cases[i].rtcp)
            fail_msg("case %zu (0x%02x %u len %zu)", i, cases[i].first, cases[i].second,
                     cases[i].len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rtp_header_fields_are_read),
        cmocka_unit_test(test_rtp_empty_payload_is_valid),
        cmocka_unit_test(test_rtp_csrc_list_is_read),
        cmocka_unit_test(test_rtp_padding_is_removed_from_payload),
        cmocka_unit_test(test_rtp_padding_may_fill_everything_after_the_header),
        cmocka_unit_test(test_rtp_extension_block_is_located),
        cmocka_unit_test(test_rtp_short_header_csrc_or_extension_is_truncated),
        cmocka_unit_test(test_rtp_version_other_than_2_is_refused),
        cmocka_unit_test(test_rtp_padding_count_zero_or_too_long_is_malformed),
        cmocka_unit_test(test_rtp_one_byte_extension_walk_skips_padding),
        cmocka_unit_test(test_rtp_one_byte_extension_id_15_stops_the_walk),
        cmocka_unit_test(test_rtp_one_byte_extension_element_past_block_is_malformed),
        cmocka_unit_test(test_rtp_one_byte_extension_id_0_with_length_is_malformed),
        cmocka_unit_test(test_rtp_two_byte_extension_walk),
        cmocka_unit_test(test_rtp_two_byte_extension_element_past_block_is_malformed),
        cmocka_unit_test(test_rtp_unknown_extension_profile_parses_but_does_not_walk),
        cmocka_unit_test(test_rtp_walk_without_extension_or_with_empty_block_ends_at_once),
        cmocka_unit_test(test_rtp_rtcp_demux_follows_rfc5761),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
