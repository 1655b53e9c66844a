/* Track sources (media/source.c) read from real chunk files: packets that arrived out of
 * order come out in order with their own bytes, also when they waited across chunk files
 * (the reader's buffer has moved on by then, so the source must have kept a copy); when a
 * hole fills or is given up, every frame it held back comes out (none dropped); and
 * frames kept with cap_track_source_take_frame stay intact while later ones are read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capstan/track.h"
#include "media/source.h"
#include "track/writer.h"
#include "util/buf.h"

#define T0 INT64_C(1700000000000000000)
#define MS INT64_C(1000000)
#define PACKETS 300
#define SSRC 0x5eed0001u

static char tmpdir[256];

static int make_tmpdir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/capstan-test-source-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* An Opus payload of its own for each sequence number: a code-0 TOC (one 20 ms CELT
 * frame) and bytes that name seq, of a length that varies with it. */
static size_t opus_payload(uint8_t *out, unsigned seq)
{
    size_t len = 40 + (seq * 53) % 200;
    out[0] = 0xfc;
    for (size_t i = 1; i < len; i++)
        out[i] = (uint8_t)(seq * 7 + i);
    return len;
}

static size_t rtp_packet(uint8_t *out, unsigned seq)
{
    uint32_t ts = seq * 960;
    out[0] = 0x80;
    out[1] = 111;
    out[2] = (uint8_t)(seq >> 8);
    out[3] = (uint8_t)seq;
    out[4] = (uint8_t)(ts >> 24);
    out[5] = (uint8_t)(ts >> 16);
    out[6] = (uint8_t)(ts >> 8);
    out[7] = (uint8_t)ts;
    out[8] = (uint8_t)(SSRC >> 24);
    out[9] = (uint8_t)(SSRC >> 16);
    out[10] = (uint8_t)(SSRC >> 8);
    out[11] = (uint8_t)SSRC;
    return 12 + opus_payload(out + 12, seq);
}

/* Writes the packets in the given arrival order, 5 ms apart, into chunks of at most
 * chunk_bytes (so a packet that waits in the reorder buffer waits across files). */
static void write_opus_track(const char *dir, const unsigned *order, size_t count,
                             uint64_t chunk_bytes)
{
    struct cap_track_writer_config cfg = {0};
    cfg.dir = dir;
    strcpy(cfg.info.track_id, "peer1-audio");
    strcpy(cfg.info.kind, "audio");
    strcpy(cfg.info.codec, "opus");
    cfg.info.clock_rate = 48000;
    cfg.info.channels = 2;
    cfg.info.ssrc = SSRC;
    cfg.info.payload_types[0] = 111;
    cfg.info.payload_type_count = 1;
    cfg.max_chunk_bytes = chunk_bytes;
    struct cap_track_writer *w;
    assert_int_equal(cap_track_writer_open(&w, &cfg), 0);
    uint8_t pkt[400];
    for (size_t i = 0; i < count; i++) {
        size_t n = rtp_packet(pkt, order[i]);
        int64_t arrival = T0 + (int64_t)i * 5 * MS;
        assert_int_equal(cap_track_writer_append(w, CAP_RECORD_RTP, 0, arrival, pkt, n), 0);
    }
    assert_int_equal(cap_track_writer_close(w), 0);
}

/* Arrival order: seq 5 after 6..40, pairs swapped from 100 on, 150 twice. */
static size_t shuffled_order(unsigned *order)
{
    size_t n = 0;
    for (unsigned s = 0; s < 5; s++)
        order[n++] = s;
    for (unsigned s = 6; s <= 40; s++)
        order[n++] = s;
    order[n++] = 5;
    for (unsigned s = 41; s < 100; s++)
        order[n++] = s;
    for (unsigned s = 100; s < PACKETS; s += 2) {
        order[n++] = s + 1;
        order[n++] = s;
        if (s == 150)
            order[n++] = 150;
    }
    return n;
}

static void expect_payload(const struct cap_frame *f, unsigned seq)
{
    uint8_t want[300];
    size_t len = opus_payload(want, seq);
    assert_int_equal(f->timestamp, seq * 960);
    assert_int_equal(f->len, len);
    assert_memory_equal(f->data, want, len);
}

static void test_reordered_packets_come_out_in_order_with_their_own_bytes(void **state)
{
    (void)state;
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/reordered", tmpdir);
    unsigned order[PACKETS + 8];
    size_t count = shuffled_order(order);
    write_opus_track(dir, order, count, 4096);

    struct cap_track_source *src;
    struct cap_source_options opt = {.time_zero_ns = T0};
    assert_int_equal(cap_track_source_open(&src, dir, &opt), 0);
    struct cap_media_frame mf;
    unsigned seq = 0;
    int got;
    while ((got = cap_track_source_next(src, &mf)) == 1) {
        assert_true(seq < PACKETS);
        expect_payload(&mf.frame, seq);
        assert_true(mf.frame.complete);
        assert_int_equal(mf.ssrc, SSRC);
        seq++;
    }
    assert_int_equal(got, 0);
    assert_int_equal(seq, PACKETS);
    const struct cap_source_stats *stats = cap_track_source_stats(src);
    assert_int_equal(stats->rtp_packets, count);
    assert_int_equal(stats->lost, 0);
    assert_int_equal(stats->duplicated, 1);
    assert_int_equal(stats->reordered, 1 + (PACKETS - 100) / 2);
    cap_track_source_close(src);
}

static void test_a_lost_packet_costs_only_its_own_frame(void **state)
{
    (void)state;
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/lost", tmpdir);
    /* Seq 50 never arrives: the 100 packets after it (500 ms) wait for it, then all go on
     * at once when the wait gives up, and each is still a frame of its own. */
    unsigned order[PACKETS];
    size_t count = 0;
    for (unsigned s = 0; s < PACKETS; s++)
        if (s != 50)
            order[count++] = s;
    write_opus_track(dir, order, count, 0);

    struct cap_track_source *src;
    struct cap_source_options opt = {.time_zero_ns = T0};
    assert_int_equal(cap_track_source_open(&src, dir, &opt), 0);
    struct cap_media_frame mf;
    size_t frames = 0;
    while (cap_track_source_next(src, &mf) == 1) {
        expect_payload(&mf.frame, order[frames]);
        assert_int_equal(mf.frame.after_loss, order[frames] == 51);
        frames++;
    }
    assert_int_equal(frames, count);
    assert_int_equal(cap_track_source_stats(src)->lost, 1);
    assert_int_equal(cap_track_source_stats(src)->frames, count);
    cap_track_source_close(src);
}

static void test_taken_frames_outlive_the_frames_read_after_them(void **state)
{
    (void)state;
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/taken", tmpdir);
    unsigned order[PACKETS + 8];
    size_t count = shuffled_order(order);
    write_opus_track(dir, order, count, 4096);

    struct cap_track_source *src;
    struct cap_source_options opt = {.time_zero_ns = T0};
    assert_int_equal(cap_track_source_open(&src, dir, &opt), 0);
    struct cap_buf kept[3];
    unsigned kept_seq[3];
    for (int i = 0; i < 3; i++)
        cap_buf_init(&kept[i], CAP_FRAME_MAX);
    struct cap_media_frame mf;
    unsigned seq = 0;
    while (cap_track_source_next(src, &mf) == 1) {
        /* Keep every frame for three more reads, swapping buffers in and out. */
        struct cap_buf *slot = &kept[seq % 3];
        if (seq >= 3) {
            struct cap_frame old = {
                .data = slot->data, .len = slot->len, .timestamp = kept_seq[seq % 3] * 960};
            expect_payload(&old, kept_seq[seq % 3]);
        }
        const uint8_t *bytes = mf.frame.data;
        cap_track_source_take_frame(src, slot);
        assert_ptr_equal(slot->data, bytes); /* moved, not copied */
        assert_int_equal(slot->len, mf.frame.len);
        kept_seq[seq % 3] = seq;
        seq++;
    }
    assert_int_equal(seq, PACKETS);
    for (int i = 0; i < 3; i++) {
        struct cap_frame old = {
            .data = kept[i].data, .len = kept[i].len, .timestamp = kept_seq[i] * 960};
        expect_payload(&old, kept_seq[i]);
        cap_buf_deinit(&kept[i]);
    }
    cap_track_source_close(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reordered_packets_come_out_in_order_with_their_own_bytes),
        cmocka_unit_test(test_a_lost_packet_costs_only_its_own_frame),
        cmocka_unit_test(test_taken_frames_outlive_the_frames_read_after_them),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
