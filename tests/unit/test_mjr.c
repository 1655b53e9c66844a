/* Janus .mjr parsing and import, from crafted files: both header versions, every cut of a
 * header, lying lengths, packets longer than the file, bad magic, refused codecs and
 * media, and imports read back through the track reader. Every cut input is copied to a
 * buffer of exactly its size, so a read past it is caught by ASan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capstan/track.h"
#include "track/mjr_import.h"

#define U0 INT64_C(1700000000000000) /* "u": microseconds since the epoch */
#define VIDEO_SSRC 0x11223344u

static char tmpdir[256];

static int make_tmpdir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/capstan-test-mjr-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- building files ---- */

struct mjr_buf {
    uint8_t data[65536];
    size_t len;
};

static void put(struct mjr_buf *b, const void *data, size_t len)
{
    assert_true(b->len + len <= sizeof(b->data));
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void put_be16(struct mjr_buf *b, unsigned v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(b, x, 2);
}

static void put_be32(struct mjr_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, x, 4);
}

static void start_file(struct mjr_buf *b, const char *magic, const char *json)
{
    b->len = 0;
    put(b, magic, 8);
    put_be16(b, (unsigned)strlen(json));
    put(b, json, strlen(json));
}

static size_t make_rtp(uint8_t *out, uint8_t pt, uint16_t seq, uint32_t ts, uint32_t ssrc,
                       size_t payload)
{
    out[0] = 0x80;
    out[1] = pt;
    out[2] = (uint8_t)(seq >> 8);
    out[3] = (uint8_t)seq;
    for (int i = 0; i < 4; i++) {
        out[4 + i] = (uint8_t)(ts >> (24 - 8 * i));
        out[8 + i] = (uint8_t)(ssrc >> (24 - 8 * i));
    }
    for (size_t i = 0; i < payload; i++)
        out[12 + i] = (uint8_t)(seq + i);
    return 12 + payload;
}

/* A version 2 frame: "MEET", time in ms, length, body. */
static void put_frame_v2(struct mjr_buf *b, uint32_t time_ms, const uint8_t *body, size_t len)
{
    put(b, "MEET", 4);
    put_be32(b, time_ms);
    put_be16(b, (unsigned)len);
    put(b, body, len);
}

/* A version 1 frame: "MEETECHO", length, body. */
static void put_frame_v1(struct mjr_buf *b, const uint8_t *body, size_t len)
{
    put(b, "MEETECHO", 8);
    put_be16(b, (unsigned)len);
    put(b, body, len);
}

static void put_rtp_v2(struct mjr_buf *b, uint32_t time_ms, uint8_t pt, uint16_t seq, uint32_t ts,
                       uint32_t ssrc)
{
    uint8_t pkt[200];
    put_frame_v2(b, time_ms, pkt, make_rtp(pkt, pt, seq, ts, ssrc, 20 + seq % 50));
}

static const char vp8_json[] =
    "{\"t\":\"v\",\"c\":\"vp8\",\"s\":1699999999000000,\"u\":1700000000000000}";

/* Parses the first len bytes of b from a buffer of exactly that size. */
static int parse_cut(const struct mjr_buf *b, size_t len, struct cap_mjr_header *h, char *why,
                     size_t why_size)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, b->data, len);
    int rc = cap_mjr_header_parse(copy, len, h, why, why_size);
    free(copy);
    return rc;
}

static int parse_json(const char *magic, const char *json, struct cap_mjr_header *h, char *why,
                      size_t why_size)
{
    static struct mjr_buf b;
    start_file(&b, magic, json);
    return parse_cut(&b, b.len, h, why, why_size);
}

/* ---- headers ---- */

static void test_v2_header_reads_media_codec_times_fmtp_and_extensions(void **state)
{
    (void)state;
    struct cap_mjr_header h;
    char why[256] = "";
    const char *json =
        "{\"t\":\"v\",\"c\":\"vp9\",\"f\":\"profile-id=2\",\"x\":{\"3\":\"urn:ietf:params:"
        "rtp-hdrext:toffset\",\"13\":\"urn:3gpp:video-orientation\",\"bad\":\"x\",\"4\":5},"
        "\"s\":1699999999000000,\"u\":1700000000000000,\"d\":\"camera\"}";
    assert_int_equal(parse_json("MJR00002", json, &h, why, sizeof(why)), 0);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.size, 10 + strlen(json));
    assert_int_equal(h.media, 'v');
    assert_string_equal(h.kind, "video");
    assert_string_equal(h.codec, "vp9");
    assert_int_equal(h.clock_rate, 90000);
    assert_int_equal(h.channels, 0);
    assert_string_equal(h.fmtp, "profile-id=2");
    /* Only members that map an id to a URI are kept. */
    assert_string_equal(
        h.extmap,
        "{\"13\":\"urn:3gpp:video-orientation\",\"3\":\"urn:ietf:params:rtp-hdrext:toffset\"}");
    assert_int_equal(h.created_us, INT64_C(1699999999000000));
    assert_int_equal(h.first_written_us, U0);
    assert_false(h.encrypted);
}

static void test_v1_header_has_json_and_meetecho_frames_without_times(void **state)
{
    (void)state;
    static struct mjr_buf b;
    start_file(&b, "MJR00001", "{\"t\":\"a\",\"c\":\"opus\",\"s\":1,\"u\":2}");
    uint8_t pkt[64];
    size_t n = make_rtp(pkt, 111, 7, 960, 5, 10);
    put_frame_v1(&b, pkt, n);
    put_frame_v1(&b, pkt, 3); /* too short for RTP, still a frame */
    struct cap_mjr_header h;
    char why[256];
    assert_int_equal(cap_mjr_header_parse(b.data, b.len, &h, why, sizeof(why)), 0);
    assert_int_equal(h.version, 1);
    assert_string_equal(h.codec, "opus");
    assert_string_equal(h.kind, "audio");
    size_t pos = h.size;
    struct cap_mjr_frame f;
    assert_int_equal(cap_mjr_next_frame(&h, b.data, b.len, &pos, &f), 1);
    assert_int_equal(f.len, n);
    assert_int_equal(f.time_ms, 0);
    assert_int_equal(f.offset, h.size);
    assert_memory_equal(f.data, pkt, n);
    assert_int_equal(cap_mjr_next_frame(&h, b.data, b.len, &pos, &f), 1);
    assert_int_equal(f.len, 3);
    assert_int_equal(cap_mjr_next_frame(&h, b.data, b.len, &pos, &f), 0);
    assert_int_equal(pos, b.len);
}

static void test_v2_frames_carry_their_time_and_body(void **state)
{
    (void)state;
    static struct mjr_buf b;
    start_file(&b, "MJR00002", vp8_json);
    for (unsigned i = 0; i < 5; i++)
        put_rtp_v2(&b, 33 * i, 96, (uint16_t)(100 + i), 3000 * i, VIDEO_SSRC);
    put_frame_v2(&b, 4000000000u, (const uint8_t *)"", 0);
    struct cap_mjr_header h;
    char why[256];
    assert_int_equal(cap_mjr_header_parse(b.data, b.len, &h, why, sizeof(why)), 0);
    size_t pos = h.size;
    struct cap_mjr_frame f;
    for (unsigned i = 0; i < 5; i++) {
        assert_int_equal(cap_mjr_next_frame(&h, b.data, b.len, &pos, &f), 1);
        assert_int_equal(f.time_ms, 33 * i);
        assert_int_equal(f.len, 12 + 20 + (100 + i) % 50);
        assert_int_equal(f.data[3], (uint8_t)(100 + i));
    }
    assert_int_equal(cap_mjr_next_frame(&h, b.data, b.len, &pos, &f), 1);
    assert_int_equal(f.time_ms, 4000000000u);
    assert_int_equal(f.len, 0);
    assert_int_equal(cap_mjr_next_frame(&h, b.data, b.len, &pos, &f), 0);
}

static void test_every_codec_gets_its_clock_and_channels(void **state)
{
    (void)state;
    static const struct {
        const char *t, *c, *codec;
        uint32_t clock, channels;
    } cases[] = {
        {"a", "opus", "opus", 48000, 2}, {"a", "pcmu", "pcmu", 8000, 1},
        {"a", "pcma", "pcma", 8000, 1},  {"a", "g722", "g722", 8000, 1},
        {"v", "vp8", "vp8", 90000, 0},   {"v", "VP9", "vp9", 90000, 0},
        {"v", "h264", "h264", 90000, 0}, {"v", "h265", "h265", 90000, 0},
        {"v", "av1", "av1", 90000, 0},   {"A", "g711", "", 8000, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char json[200], why[256];
        snprintf(json, sizeof(json), "{\"t\":\"%s\",\"c\":\"%s\",\"s\":0,\"u\":0}", cases[i].t,
                 cases[i].c);
        struct cap_mjr_header h;
        assert_int_equal(parse_json("MJR00002", json, &h, why, sizeof(why)), 0);
        assert_string_equal(h.codec, cases[i].codec);
        assert_int_equal(h.clock_rate, cases[i].clock);
        assert_int_equal(h.channels, cases[i].channels);
    }
}

static void test_g711_is_named_by_the_first_packets_payload_type(void **state)
{
    (void)state;
    struct cap_mjr_header h;
    char why[256];
    assert_int_equal(parse_json("MJR00002", "{\"t\":\"a\",\"c\":\"g711\",\"s\":0,\"u\":0}", &h, why,
                                sizeof(why)),
                     0);
    assert_int_equal(cap_mjr_header_resolve_pt(&h, 96), CAP_EFORMAT);
    assert_int_equal(cap_mjr_header_resolve_pt(&h, 9), CAP_EFORMAT); /* G.722, not G.711 */
    assert_int_equal(cap_mjr_header_resolve_pt(&h, 8), 0);
    assert_string_equal(h.codec, "pcma");
    assert_int_equal(cap_mjr_header_resolve_pt(&h, 0), 0); /* named once, stays named */
    assert_string_equal(h.codec, "pcma");
    assert_int_equal(parse_json("MJR00002", "{\"t\":\"a\",\"c\":\"g711\",\"s\":0,\"u\":0}", &h, why,
                                sizeof(why)),
                     0);
    assert_int_equal(cap_mjr_header_resolve_pt(&h, 0), 0);
    assert_string_equal(h.codec, "pcmu");
}

static void test_empty_file_is_refused_as_truncated(void **state)
{
    (void)state;
    struct cap_mjr_header h;
    char why[256] = "";
    assert_int_equal(cap_mjr_header_parse(NULL, 0, &h, why, sizeof(why)), CAP_ETRUNC);
    assert_non_null(strstr(why, "empty file"));
}

static void test_header_cut_at_every_byte_is_truncated_never_read_past(void **state)
{
    (void)state;
    static struct mjr_buf b;
    start_file(&b, "MJR00002", vp8_json);
    for (size_t cut = 0; cut < b.len; cut++) {
        struct cap_mjr_header h;
        char why[256] = "";
        assert_int_equal(parse_cut(&b, cut, &h, why, sizeof(why)), CAP_ETRUNC);
        assert_true(why[0] != '\0');
    }
    struct cap_mjr_header h;
    char why[256];
    assert_int_equal(parse_cut(&b, b.len, &h, why, sizeof(why)), 0);
}

static void test_lying_header_lengths_are_refused(void **state)
{
    (void)state;
    static struct mjr_buf b;
    struct cap_mjr_header h;
    char why[256] = "";
    /* Says 500 bytes of JSON; the file has 68. */
    start_file(&b, "MJR00002", vp8_json);
    b.data[8] = 0x01;
    b.data[9] = 0xF4;
    assert_int_equal(parse_cut(&b, b.len, &h, why, sizeof(why)), CAP_ETRUNC);
    assert_non_null(strstr(why, "500 bytes"));
    /* Says 0 bytes. */
    start_file(&b, "MJR00002", vp8_json);
    b.data[8] = b.data[9] = 0;
    assert_int_equal(parse_cut(&b, b.len, &h, why, sizeof(why)), CAP_EFORMAT);
    /* Says fewer bytes than the JSON has: what is left is not JSON. */
    start_file(&b, "MJR00002", vp8_json);
    b.data[9] = (uint8_t)(b.data[9] - 5);
    assert_int_equal(parse_cut(&b, b.len, &h, why, sizeof(why)), CAP_EFORMAT);
    assert_non_null(strstr(why, "not JSON"));
}

static void test_packet_bigger_than_the_file_is_a_cut_not_a_read_past(void **state)
{
    (void)state;
    static struct mjr_buf b;
    start_file(&b, "MJR00002", vp8_json);
    put_rtp_v2(&b, 0, 96, 1, 0, VIDEO_SSRC);
    size_t second = b.len;
    put_rtp_v2(&b, 10, 96, 2, 3000, VIDEO_SSRC);
    b.data[second + 8] = 0x05; /* the second frame now claims 1280+ bytes */
    uint8_t *copy = malloc(b.len);
    memcpy(copy, b.data, b.len);
    struct cap_mjr_header h;
    char why[256];
    assert_int_equal(cap_mjr_header_parse(copy, b.len, &h, why, sizeof(why)), 0);
    size_t pos = h.size;
    struct cap_mjr_frame f;
    assert_int_equal(cap_mjr_next_frame(&h, copy, b.len, &pos, &f), 1);
    assert_int_equal(pos, second);
    assert_int_equal(cap_mjr_next_frame(&h, copy, b.len, &pos, &f), CAP_ETRUNC);
    assert_int_equal(pos, second); /* left at the frame that failed */
    free(copy);
}

static void test_frame_cut_at_every_byte_is_truncated(void **state)
{
    (void)state;
    static struct mjr_buf b;
    start_file(&b, "MJR00002", vp8_json);
    size_t frame_start = b.len;
    put_rtp_v2(&b, 5, 96, 1, 0, VIDEO_SSRC);
    struct cap_mjr_header h;
    char why[256];
    assert_int_equal(cap_mjr_header_parse(b.data, b.len, &h, why, sizeof(why)), 0);
    for (size_t cut = frame_start + 1; cut < b.len; cut++) {
        uint8_t *copy = malloc(cut);
        memcpy(copy, b.data, cut);
        size_t pos = h.size;
        struct cap_mjr_frame f;
        assert_int_equal(cap_mjr_next_frame(&h, copy, cut, &pos, &f), CAP_ETRUNC);
        assert_int_equal(pos, frame_start);
        free(copy);
    }
}

static void test_garbage_where_a_frame_should_start_is_a_format_error(void **state)
{
    (void)state;
    static struct mjr_buf b;
    start_file(&b, "MJR00002", vp8_json);
    put_rtp_v2(&b, 0, 96, 1, 0, VIDEO_SSRC);
    size_t garbage = b.len;
    put(&b, "XEET\0\0\0\0\0\x10", 10);
    struct cap_mjr_header h;
    char why[256];
    assert_int_equal(cap_mjr_header_parse(b.data, b.len, &h, why, sizeof(why)), 0);
    size_t pos = h.size;
    struct cap_mjr_frame f;
    assert_int_equal(cap_mjr_next_frame(&h, b.data, b.len, &pos, &f), 1);
    assert_int_equal(cap_mjr_next_frame(&h, b.data, b.len, &pos, &f), CAP_EFORMAT);
    assert_int_equal(pos, garbage);
    /* A version 2 frame header in a version 1 file is garbage too. */
    struct cap_mjr_header v1 = h;
    v1.version = 1;
    pos = h.size;
    assert_int_equal(cap_mjr_next_frame(&v1, b.data, b.len, &pos, &f), CAP_EFORMAT);
    assert_int_equal(pos, h.size);
    /* Two stray bytes at the end that are not "ME" are garbage, not a cut. */
    b.len = garbage;
    put(&b, "zz", 2);
    pos = garbage;
    assert_int_equal(cap_mjr_next_frame(&h, b.data, b.len, &pos, &f), CAP_EFORMAT);
}

static void test_bad_magic_and_unknown_versions_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
        int rc;
        const char *says;
    } cases[] = {
        {"RIFF\x24\0\0\0WAVEfmt ", 16, CAP_EFORMAT, "not a Janus .mjr"},
        {"MJR00003\0\x02{}", 12, CAP_EVERSION, "unknown .mjr version"},
        {"MEETECHO\0\x05video", 15, CAP_EUNSUPPORTED, "header-less"},
        {"mjr00002\0\x02{}", 12, CAP_EFORMAT, "not a Janus .mjr"},
        {"MJ", 2, CAP_ETRUNC, "inside the .mjr magic"},
        {"XJ", 2, CAP_EFORMAT, "not a Janus .mjr"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        static struct mjr_buf b;
        b.len = 0;
        put(&b, cases[i].bytes, cases[i].len);
        struct cap_mjr_header h;
        char why[256] = "";
        assert_int_equal(parse_cut(&b, b.len, &h, why, sizeof(why)), cases[i].rc);
        assert_non_null(strstr(why, cases[i].says));
    }
}

static void test_bad_info_headers_say_what_is_wrong(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int rc;
        const char *says;
    } cases[] = {
        {"not json at all", CAP_EFORMAT, "not JSON"},
        {"[1,2,3]", CAP_EFORMAT, "not an object"},
        {"{\"c\":\"vp8\",\"s\":0,\"u\":0}", CAP_EFORMAT, "\"t\""},
        {"{\"t\":\"x\",\"c\":\"vp8\",\"s\":0,\"u\":0}", CAP_EFORMAT, "not a, v or d"},
        {"{\"t\":\"v\",\"s\":0,\"u\":0}", CAP_EFORMAT, "codec"},
        {"{\"t\":\"v\",\"c\":\"vp8\",\"u\":0}", CAP_EFORMAT, "\"s\""},
        {"{\"t\":\"v\",\"c\":\"vp8\",\"s\":0}", CAP_EFORMAT, "\"u\""},
        {"{\"t\":\"v\",\"c\":\"vp8\",\"s\":0,\"u\":\"now\"}", CAP_EFORMAT, "\"u\""},
        {"{\"t\":\"v\",\"c\":\"vp8\",\"s\":0,\"u\":-5}", CAP_EFORMAT, "not a time"},
        {"{\"t\":\"v\",\"c\":\"vp8\",\"s\":0,\"u\":99999999999999999}", CAP_EFORMAT, "not a time"},
        {"{\"t\":\"v\",\"c\":\"vp8\",\"s\":0,\"u\":0,\"f\":7}", CAP_EFORMAT, "fmtp"},
        {"{\"t\":\"v\",\"c\":\"vp8\",\"s\":0,\"u\":0,\"x\":[]}", CAP_EFORMAT, "extensions"},
        {"{\"t\":\"v\",\"t\":\"a\",\"c\":\"vp8\",\"s\":0,\"u\":0}", CAP_EFORMAT, "not JSON"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cap_mjr_header h;
        char why[256] = "";
        assert_int_equal(parse_json("MJR00002", cases[i].json, &h, why, sizeof(why)), cases[i].rc);
        if (!strstr(why, cases[i].says))
            fail_msg("case %zu: '%s' does not say '%s'", i, why, cases[i].says);
    }
}

static void test_unknown_codecs_data_and_encrypted_media_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int rc;
        const char *says;
    } cases[] = {
        {"{\"t\":\"a\",\"c\":\"speex\",\"s\":0,\"u\":0}", CAP_EUNSUPPORTED,
         "unknown codec 'speex'"},
        {"{\"t\":\"a\",\"c\":\"multiopus\",\"s\":0,\"u\":0}", CAP_EUNSUPPORTED, "unknown codec"},
        {"{\"t\":\"a\",\"c\":\"l16\",\"s\":0,\"u\":0}", CAP_EUNSUPPORTED, "cannot depacketize"},
        {"{\"t\":\"v\",\"c\":\"opus\",\"s\":0,\"u\":0}", CAP_EFORMAT,
         "media type video with audio codec"},
        {"{\"t\":\"a\",\"c\":\"h264\",\"s\":0,\"u\":0}", CAP_EFORMAT,
         "media type audio with video codec"},
        {"{\"t\":\"d\",\"c\":\"text\",\"s\":0,\"u\":0}", CAP_EUNSUPPORTED, "data channel"},
        {"{\"t\":\"v\",\"c\":\"vp8\",\"s\":0,\"u\":0,\"e\":true}", CAP_EUNSUPPORTED, "encrypted"},
        {"{\"t\":\"a\",\"c\":\"opus\",\"s\":0,\"u\":0,\"or\":63}", CAP_EUNSUPPORTED, "RED"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cap_mjr_header h;
        char why[256] = "";
        assert_int_equal(parse_json("MJR00002", cases[i].json, &h, why, sizeof(why)), cases[i].rc);
        if (!strstr(why, cases[i].says))
            fail_msg("case %zu: '%s' does not say '%s'", i, why, cases[i].says);
    }
    /* e=false is not encrypted. */
    struct cap_mjr_header h;
    char why[256];
    assert_int_equal(parse_json("MJR00002",
                                "{\"t\":\"v\",\"c\":\"vp8\",\"s\":0,\"u\":0,\"e\":false}", &h, why,
                                sizeof(why)),
                     0);
}

static void test_peer_names_come_from_janus_file_names(void **state)
{
    (void)state;
    static const struct {
        const char *path, *peer;
    } cases[] = {
        {"/rec/videoroom-1234-user-5678-audio.mjr", "videoroom-1234-user-5678"},
        {"videoroom-1234-user-5678-1663839090-video-1.mjr", "videoroom-1234-user-5678-1663839090"},
        {"rec-sample-audio.mjr", "rec-sample"},
        {"a/b/alice-VIDEO.mjr", "alice"},
        {"bob.mjr", "bob"},
        {"cam-2.mjr", "cam-2"},
        {"we ird$name-audio.mjr", "we_ird_name"},
        {"-audio.mjr", "janus"},
        {"/x/.mjr", "janus"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char peer[128];
        cap_mjr_peer_from_path(cases[i].path, peer, sizeof(peer));
        assert_string_equal(peer, cases[i].peer);
    }
}

/* ---- imports, read back through the track reader ---- */

static void write_file(const char *name, const struct mjr_buf *b, size_t len, char *path,
                       size_t size)
{
    snprintf(path, size, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b->data, 1, len, f), len);
    fclose(f);
}

struct read_back {
    struct cap_track_info info;
    unsigned rtp, events;
    int64_t arrivals[64];
    uint16_t seqs[64];
    char first_event[512];
};

static void read_track(const char *rec, const char *track_id, struct read_back *out)
{
    memset(out, 0, sizeof(*out));
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/tracks/%s", rec, track_id);
    struct cap_track_reader *r;
    assert_int_equal(cap_track_open(&r, dir), 0);
    out->info = *cap_track_info(r);
    struct cap_record rec_;
    int rc;
    while ((rc = cap_track_next(r, &rec_)) == 1) {
        if (rec_.type == CAP_RECORD_EVENT) {
            if (out->events++ == 0)
                snprintf(out->first_event, sizeof(out->first_event), "%.*s", (int)rec_.len,
                         rec_.data);
            assert_int_equal(out->rtp, 0); /* the event comes before the packets */
            continue;
        }
        assert_int_equal(rec_.type, CAP_RECORD_RTP);
        if (out->rtp < 64) {
            out->arrivals[out->rtp] = rec_.arrival_ns;
            out->seqs[out->rtp] = (uint16_t)(rec_.data[2] << 8 | rec_.data[3]);
        }
        out->rtp++;
    }
    assert_int_equal(rc, 0);
    cap_track_close(r);
}

static void test_import_of_audio_and_video_files_rebuilds_arrival_times(void **state)
{
    (void)state;
    static struct mjr_buf v, a;
    start_file(&v, "MJR00002",
               "{\"t\":\"v\",\"c\":\"h264\",\"f\":\"packetization-mode=1\","
               "\"x\":{\"2\":\"urn:3gpp:video-orientation\"},\"s\":1,\"u\":1700000000000000}");
    for (unsigned i = 0; i < 30; i++)
        put_rtp_v2(&v, 33 * (i / 3), 102, (uint16_t)(65530 + i), 3000 * (i / 3), VIDEO_SSRC);
    start_file(&a, "MJR00002", "{\"t\":\"a\",\"c\":\"opus\",\"s\":1,\"u\":1700000000500000}");
    for (unsigned i = 0; i < 20; i++)
        put_rtp_v2(&a, 20 * i, 111, (uint16_t)i, 960 * i, 0xAABBCCDD);
    uint8_t junk[5] = {1, 2, 3, 4, 5};
    put_frame_v2(&a, 400, junk, sizeof(junk)); /* not RTP: skipped and counted */
    char vpath[300], apath[300], out[300];
    write_file("alice-video.mjr", &v, v.len, vpath, sizeof(vpath));
    write_file("alice-audio.mjr", &a, a.len, apath, sizeof(apath));
    snprintf(out, sizeof(out), "%s/rec-av", tmpdir);
    const char *paths[] = {vpath, apath};
    struct cap_mjr_import_options opt = {
        .paths = paths, .path_count = 2, .out_dir = out, .room_id = "room", .recording_id = "rec"};
    struct cap_mjr_import_report rep;
    char why[512] = "";
    int rc = cap_mjr_import(&opt, &rep, why, sizeof(why));
    if (rc)
        fail_msg("import: %s", why);
    assert_int_equal(rep.track_count, 2);
    assert_int_equal(rep.rtp, 50);
    assert_string_equal(rep.tracks[0].track_id, "alice-video");
    assert_string_equal(rep.tracks[1].track_id, "alice-audio");
    assert_int_equal(rep.tracks[1].not_rtp, 1);
    assert_int_equal(rep.tracks[1].frames, 21);
    assert_false(rep.tracks[0].stopped_early);
    assert_int_equal(rep.first_arrival_ns, U0 * 1000);
    assert_int_equal(rep.last_arrival_ns, (U0 + 500000) * 1000 + INT64_C(380) * 1000000);

    struct read_back rb;
    read_track(out, "alice-video", &rb);
    assert_string_equal(rb.info.codec, "h264");
    assert_string_equal(rb.info.kind, "video");
    assert_string_equal(rb.info.peer_id, "alice");
    assert_string_equal(rb.info.recording_id, "rec");
    assert_string_equal(rb.info.room_id, "room");
    assert_string_equal(rb.info.fmtp, "packetization-mode=1");
    assert_int_equal(rb.info.clock_rate, 90000);
    assert_int_equal(rb.info.ssrc, VIDEO_SSRC);
    assert_int_equal(rb.info.payload_type_count, 1);
    assert_int_equal(rb.info.payload_types[0], 102);
    assert_int_equal(rb.rtp, 30);
    assert_int_equal(rb.events, 1);
    assert_string_equal(
        rb.first_event,
        "{\"type\":\"rtp_extensions\",\"extmap\":{\"2\":\"urn:3gpp:video-orientation\"}}");
    for (unsigned i = 0; i < 30; i++) {
        assert_int_equal(rb.arrivals[i], U0 * 1000 + (int64_t)(33 * (i / 3)) * 1000000);
        assert_int_equal(rb.seqs[i], (uint16_t)(65530 + i));
    }
    read_track(out, "alice-audio", &rb);
    assert_string_equal(rb.info.codec, "opus");
    assert_int_equal(rb.info.clock_rate, 48000);
    assert_int_equal(rb.info.channels, 2);
    assert_int_equal(rb.info.ssrc, 0xAABBCCDD);
    assert_int_equal(rb.rtp, 20);
    assert_int_equal(rb.events, 0);
    assert_int_equal(rb.arrivals[19], (U0 + 500000) * 1000 + INT64_C(380) * 1000000);
    cap_mjr_import_report_deinit(&rep);

    /* The same folder again: refused, nothing overwritten. */
    assert_int_equal(cap_mjr_import(&opt, &rep, why, sizeof(why)), CAP_EEXIST);
    cap_mjr_import_report_deinit(&rep);
}

static void test_import_of_a_v1_file_times_packets_by_their_rtp_clock(void **state)
{
    (void)state;
    static struct mjr_buf b;
    start_file(&b, "MJR00001", "{\"t\":\"a\",\"c\":\"pcmu\",\"s\":1,\"u\":1700000000000000}");
    /* 20 ms packets (160 ticks at 8 kHz) with one reordered pair, starting near the wrap. */
    static const unsigned order[] = {0, 1, 3, 2, 4, 5};
    for (unsigned k = 0; k < 6; k++) {
        uint8_t pkt[64];
        unsigned i = order[k];
        put_frame_v1(&b, pkt, make_rtp(pkt, 0, (uint16_t)i, 0xFFFFFF00u + 160 * i, 7, 20));
    }
    char path[300], out[300];
    write_file("old-audio.mjr", &b, b.len, path, sizeof(path));
    snprintf(out, sizeof(out), "%s/rec-v1", tmpdir);
    const char *paths[] = {path};
    struct cap_mjr_import_options opt = {.paths = paths,
                                         .path_count = 1,
                                         .out_dir = out,
                                         .room_id = "room",
                                         .recording_id = "rec",
                                         .peer_id = "carol"};
    struct cap_mjr_import_report rep;
    char why[512] = "";
    assert_int_equal(cap_mjr_import(&opt, &rep, why, sizeof(why)), 0);
    assert_int_equal(rep.tracks[0].version, 1);
    struct read_back rb;
    read_track(out, "carol-audio", &rb);
    assert_int_equal(rb.rtp, 6);
    static const int64_t ms[] = {0, 20, 60, 60 /* late: held, never earlier */, 80, 100};
    for (unsigned k = 0; k < 6; k++)
        assert_int_equal(rb.arrivals[k], U0 * 1000 + ms[k] * 1000000);
    cap_mjr_import_report_deinit(&rep);
}

static void test_import_of_a_cut_file_keeps_the_whole_packets_and_says_where(void **state)
{
    (void)state;
    static struct mjr_buf b;
    start_file(&b, "MJR00002", vp8_json);
    for (unsigned i = 0; i < 10; i++)
        put_rtp_v2(&b, 33 * i, 96, (uint16_t)i, 3000 * i, VIDEO_SSRC);
    size_t tenth_end = b.len;
    put_rtp_v2(&b, 333, 96, 10, 30000, VIDEO_SSRC);
    size_t cut = b.len - 7;
    char path[300], out[300];
    write_file("cut-video.mjr", &b, cut, path, sizeof(path));
    snprintf(out, sizeof(out), "%s/rec-cut", tmpdir);
    const char *paths[] = {path};
    struct cap_mjr_import_options opt = {
        .paths = paths, .path_count = 1, .out_dir = out, .room_id = "room", .recording_id = "rec"};
    struct cap_mjr_import_report rep;
    char why[512] = "";
    assert_int_equal(cap_mjr_import(&opt, &rep, why, sizeof(why)), 0);
    const struct cap_mjr_import_track *t = &rep.tracks[0];
    assert_int_equal(t->rtp_packets, 10);
    assert_true(t->stopped_early);
    assert_false(t->stopped_at_garbage);
    assert_int_equal(t->stop_offset, tenth_end);
    assert_int_equal(t->unread_bytes, cut - tenth_end);
    struct read_back rb;
    read_track(out, "cut-video", &rb);
    assert_int_equal(rb.rtp, 10);
    cap_mjr_import_report_deinit(&rep);
}

static void test_import_with_a_bad_file_writes_nothing(void **state)
{
    (void)state;
    static struct mjr_buf good, bad;
    start_file(&good, "MJR00002", vp8_json);
    put_rtp_v2(&good, 0, 96, 1, 0, VIDEO_SSRC);
    start_file(&bad, "MJR00002", "{\"t\":\"d\",\"c\":\"text\",\"s\":0,\"u\":0}");
    char gpath[300], bpath[300], out[300];
    write_file("good-video.mjr", &good, good.len, gpath, sizeof(gpath));
    write_file("chat-data.mjr", &bad, bad.len, bpath, sizeof(bpath));
    snprintf(out, sizeof(out), "%s/rec-bad", tmpdir);
    const char *paths[] = {gpath, bpath};
    struct cap_mjr_import_options opt = {
        .paths = paths, .path_count = 2, .out_dir = out, .room_id = "room", .recording_id = "rec"};
    struct cap_mjr_import_report rep;
    char why[512] = "";
    assert_int_equal(cap_mjr_import(&opt, &rep, why, sizeof(why)), CAP_EUNSUPPORTED);
    assert_non_null(strstr(why, "chat-data.mjr"));
    assert_non_null(strstr(why, "data channel"));
    struct stat st;
    assert_int_not_equal(stat(out, &st), 0); /* the folder was never created */
    cap_mjr_import_report_deinit(&rep);

    /* A header and no packet at all: refused too. */
    char epath[300];
    write_file("empty-video.mjr", &good, good.data[9] + 10u, epath, sizeof(epath));
    const char *empty[] = {epath};
    opt.paths = empty;
    opt.path_count = 1;
    assert_int_equal(cap_mjr_import(&opt, &rep, why, sizeof(why)), CAP_ENOENT);
    assert_non_null(strstr(why, "no RTP packet"));
    cap_mjr_import_report_deinit(&rep);
}

static void test_same_peer_and_kind_twice_gets_numbered_track_ids(void **state)
{
    (void)state;
    static struct mjr_buf b;
    start_file(&b, "MJR00002", vp8_json);
    put_rtp_v2(&b, 0, 96, 1, 0, VIDEO_SSRC);
    put_rtp_v2(&b, 40, 96, 2, 3000, VIDEO_SSRC + 1); /* SSRC change: a new chunk */
    char p1[300], p2[300], out[300];
    write_file("cam1.mjr", &b, b.len, p1, sizeof(p1));
    write_file("cam2.mjr", &b, b.len, p2, sizeof(p2));
    snprintf(out, sizeof(out), "%s/rec-twice", tmpdir);
    const char *paths[] = {p1, p2};
    struct cap_mjr_import_options opt = {.paths = paths,
                                         .path_count = 2,
                                         .out_dir = out,
                                         .room_id = "room",
                                         .recording_id = "rec",
                                         .peer_id = "dave"};
    struct cap_mjr_import_report rep;
    char why[512] = "";
    assert_int_equal(cap_mjr_import(&opt, &rep, why, sizeof(why)), 0);
    assert_string_equal(rep.tracks[0].track_id, "dave-video");
    assert_string_equal(rep.tracks[1].track_id, "dave-video-2");
    assert_int_equal(rep.tracks[1].ssrc_changes, 1);
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/tracks/dave-video-2", out);
    struct cap_track_reader *r;
    assert_int_equal(cap_track_open(&r, dir), 0);
    assert_int_equal(cap_track_chunk_count(r), 2);
    cap_track_close(r);
    cap_mjr_import_report_deinit(&rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v2_header_reads_media_codec_times_fmtp_and_extensions),
        cmocka_unit_test(test_v1_header_has_json_and_meetecho_frames_without_times),
        cmocka_unit_test(test_v2_frames_carry_their_time_and_body),
        cmocka_unit_test(test_every_codec_gets_its_clock_and_channels),
        cmocka_unit_test(test_g711_is_named_by_the_first_packets_payload_type),
        cmocka_unit_test(test_empty_file_is_refused_as_truncated),
        cmocka_unit_test(test_header_cut_at_every_byte_is_truncated_never_read_past),
        cmocka_unit_test(test_lying_header_lengths_are_refused),
        cmocka_unit_test(test_packet_bigger_than_the_file_is_a_cut_not_a_read_past),
        cmocka_unit_test(test_frame_cut_at_every_byte_is_truncated),
        cmocka_unit_test(test_garbage_where_a_frame_should_start_is_a_format_error),
        cmocka_unit_test(test_bad_magic_and_unknown_versions_are_refused),
        cmocka_unit_test(test_bad_info_headers_say_what_is_wrong),
        cmocka_unit_test(test_unknown_codecs_data_and_encrypted_media_are_refused),
        cmocka_unit_test(test_peer_names_come_from_janus_file_names),
        cmocka_unit_test(test_import_of_audio_and_video_files_rebuilds_arrival_times),
        cmocka_unit_test(test_import_of_a_v1_file_times_packets_by_their_rtp_clock),
        cmocka_unit_test(test_import_of_a_cut_file_keeps_the_whole_packets_and_says_where),
        cmocka_unit_test(test_import_with_a_bad_file_writes_nothing),
        cmocka_unit_test(test_same_peer_and_kind_twice_gets_numbered_track_ids),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
