/* The generic frame assembler (codec/depacketizer.c), driven through a fake codec defined
 * here: every payload byte is appended; a payload starting with 'S' (or 'K', a key frame)
 * starts a frame, the marker bit ends one, a payload starting with 'X' is malformed. The
 * tests pin down frame boundaries, completeness, loss flags, the two-slot ready queue and
 * the statistics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "capstan/error.h"
#include "codec/depay.h"

/* ---- the fake codec ---- */

struct fake_calls {
    unsigned init, deinit, packet, finish, reset;
};
static struct fake_calls calls; /* test-only bookkeeping; reset by each test's setup */

static int fake_init(void *priv, const struct cap_codec_params *params)
{
    calls.init++;
    return params && strcmp(params->fmtp, "fail") == 0 ? CAP_EINVAL : 0;
}

static void fake_deinit(void *priv)
{
    calls.deinit++;
}

static int fake_packet(void *priv, const struct cap_rtp_packet *pkt, struct cap_buf *frame,
                       struct cap_depay_packet_info *info)
{
    calls.packet++;
    if (pkt->payload_len > 0 && pkt->payload[0] == 'X')
        return CAP_EFORMAT;
    info->starts_frame = pkt->payload_len > 0 && (pkt->payload[0] == 'S' || pkt->payload[0] == 'K');
    info->ends_frame = pkt->marker;
    return cap_buf_append(frame, pkt->payload, pkt->payload_len);
}

static int fake_finish(void *priv, struct cap_buf *frame, struct cap_frame *out)
{
    calls.finish++;
    out->keyframe = frame->len > 0 && frame->data[0] == 'K';
    return 0;
}

static void fake_reset(void *priv)
{
    calls.reset++;
}

static const struct cap_depay_ops fake_ops = {
    .name = "fake",
    .priv_size = 16,
    .init = fake_init,
    .deinit = fake_deinit,
    .packet = fake_packet,
    .finish = fake_finish,
    .reset = fake_reset,
};

/* ---- helpers ---- */

static int setup(void **state)
{
    memset(&calls, 0, sizeof(calls));
    struct cap_depacketizer *d = NULL;
    const struct cap_codec_params params = {.clock_rate = 90000, .fmtp = ""};
    if (cap_depacketizer_new(&d, &fake_ops, &params) != 0)
        return -1;
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    cap_depacketizer_free(*state);
    return 0;
}

/* Pushes a packet with the given sequence number (also its extended one), timestamp,
 * marker and text payload; it "arrives" at seq * 1000 ns. */
static int push(struct cap_depacketizer *d, uint16_t seq, uint32_t ts, bool marker,
                const char *payload, uint64_t lost_before)
{
    struct cap_rtp_packet pkt = {
        .version = 2,
        .marker = marker,
        .payload_type = 96,
        .sequence = seq,
        .timestamp = ts,
        .ssrc = 0x1234,
        .payload = (const uint8_t *)payload,
        .payload_len = strlen(payload),
    };
    return cap_depacketizer_push(d, &pkt, seq, (int64_t)seq * 1000, lost_before);
}

struct expected {
    const char *data;
    uint32_t ts;
    bool complete;
    bool after_loss;
};

#define EXPECT_FRAME(d, ...) expect_frame(__LINE__, (d), (struct expected){__VA_ARGS__})

static struct cap_frame expect_frame(int line, struct cap_depacketizer *d, struct expected e)
{
    struct cap_frame f;
    memset(&f, 0, sizeof(f));
    if (cap_depacketizer_pop(d, &f) != 1)
        fail_msg("line %d: no frame ready, expected \"%s\"", line, e.data);
    if (f.len != strlen(e.data) || memcmp(f.data, e.data, f.len) != 0)
        fail_msg("line %d: frame \"%.*s\", expected \"%s\"", line, (int)f.len, (const char *)f.data,
                 e.data);
    if (f.timestamp != e.ts)
        fail_msg("line %d: timestamp %u, expected %u", line, f.timestamp, e.ts);
    if (f.complete != e.complete)
        fail_msg("line %d: complete %d, expected %d", line, f.complete, e.complete);
    if (f.after_loss != e.after_loss)
        fail_msg("line %d: after_loss %d, expected %d", line, f.after_loss, e.after_loss);
    return f;
}

static void expect_no_frame(struct cap_depacketizer *d)
{
    struct cap_frame f;
    assert_int_equal(cap_depacketizer_pop(d, &f), 0);
}

/* ---- tests ---- */

static void test_frame_split_across_three_packets(void **state)
{
    struct cap_depacketizer *d = *state;
    assert_int_equal(push(d, 10, 3000, false, "Sab", 0), 0);
    expect_no_frame(d);
    assert_int_equal(push(d, 11, 3000, false, "cd", 0), 0);
    expect_no_frame(d);
    assert_int_equal(push(d, 12, 3000, true, "ef", 0), 0);
    struct cap_frame f = EXPECT_FRAME(d, "Sabcdef", 3000, .complete = true);
    assert_int_equal(f.packets, 3);
    assert_int_equal(f.first_seq, 10);
    assert_int_equal(f.last_seq, 12);
    assert_int_equal(f.arrival_ns, 10000);
    assert_false(f.keyframe);
    assert_int_equal(f.width, 0);
    expect_no_frame(d);
    assert_int_equal(calls.finish, 1);
    assert_int_equal(calls.reset, 0);
}

static void test_keyframe_is_the_codecs_judgement(void **state)
{
    struct cap_depacketizer *d = *state;
    push(d, 1, 0, true, "Kx", 0);
    push(d, 2, 3000, true, "Sy", 0);
    assert_true(EXPECT_FRAME(d, "Kx", 0, .complete = true).keyframe);
    assert_false(EXPECT_FRAME(d, "Sy", 3000, .complete = true).keyframe);
}

static void test_timestamp_change_without_marker_ends_a_complete_frame(void **state)
{
    struct cap_depacketizer *d = *state;
    push(d, 1, 1000, false, "Sa", 0);
    push(d, 2, 1000, false, "b", 0);
    expect_no_frame(d);
    push(d, 3, 2000, false, "Sc", 0);
    EXPECT_FRAME(d, "Sab", 1000, .complete = true);
    expect_no_frame(d);
    push(d, 4, 2000, true, "d", 0);
    EXPECT_FRAME(d, "Scd", 2000, .complete = true);
}

static void test_loss_inside_a_frame_makes_it_incomplete_and_flags_the_next(void **state)
{
    struct cap_depacketizer *d = *state;
    push(d, 1, 1000, false, "Sa", 0);
    push(d, 3, 1000, false, "c", 1); /* seq 2 given up on */
    push(d, 4, 1000, true, "d", 0);
    struct cap_frame f = EXPECT_FRAME(d, "Sacd", 1000, .complete = false);
    assert_int_equal(f.packets, 3);
    assert_int_equal(f.first_seq, 1);
    assert_int_equal(f.last_seq, 4);
    assert_int_equal(calls.reset, 1); /* the codec is told to forget the damaged frame */
    push(d, 5, 2000, true, "Se", 0);
    EXPECT_FRAME(d, "Se", 2000, .complete = true, .after_loss = true);
    push(d, 6, 3000, true, "Sf", 0);
    EXPECT_FRAME(d, "Sf", 3000, .complete = true, .after_loss = false);
}

static void test_loss_between_two_frames_flags_only_the_next(void **state)
{
    struct cap_depacketizer *d = *state;
    push(d, 1, 1000, true, "Sa", 0);
    EXPECT_FRAME(d, "Sa", 1000, .complete = true);
    push(d, 4, 3000, false, "Sd", 2); /* seq 2-3 (a whole frame, say) given up on */
    push(d, 5, 3000, true, "e", 0);
    EXPECT_FRAME(d, "Sde", 3000, .complete = true, .after_loss = true);
}

static void test_loss_before_a_timestamp_change_cuts_the_previous_frame(void **state)
{
    /* No marker yet on the open frame: the lost packet may have been its tail. */
    struct cap_depacketizer *d = *state;
    push(d, 1, 1000, false, "Sa", 0);
    push(d, 3, 2000, true, "Sc", 1);
    EXPECT_FRAME(d, "Sa", 1000, .complete = false);
    EXPECT_FRAME(d, "Sc", 2000, .complete = true, .after_loss = true);
}

static void test_loss_of_a_frames_first_packets(void **state)
{
    struct cap_depacketizer *d = *state;
    push(d, 1, 1000, true, "Sa", 0);
    push(d, 3, 2000, true, "c", 1); /* seq 2 carried the start */
    EXPECT_FRAME(d, "Sa", 1000, .complete = true);
    EXPECT_FRAME(d, "c", 2000, .complete = false, .after_loss = true);
}

static void test_frame_without_its_start_is_incomplete(void **state)
{
    struct cap_depacketizer *d = *state;
    push(d, 1, 1000, false, "a", 0);
    push(d, 2, 1000, true, "b", 0);
    EXPECT_FRAME(d, "ab", 1000, .complete = false);
    /* A start flag on a later packet of the same frame does not help. */
    push(d, 3, 2000, false, "x", 0);
    push(d, 4, 2000, true, "Sy", 0);
    EXPECT_FRAME(d, "xSy", 2000, .complete = false);
}

static void test_malformed_packet_makes_frame_incomplete_and_is_counted(void **state)
{
    struct cap_depacketizer *d = *state;
    assert_int_equal(push(d, 1, 1000, false, "Sa", 0), 0);
    assert_int_equal(push(d, 2, 1000, false, "Xb", 0), CAP_EFORMAT);
    assert_int_equal(push(d, 3, 1000, true, "c", 0), 0);
    EXPECT_FRAME(d, "Sac", 1000, .complete = false);
    const struct cap_depacketizer_stats *s = cap_depacketizer_stats(d);
    assert_int_equal(s->malformed_packets, 1);
    assert_int_equal(s->incomplete_frames, 1);
}

static void test_malformed_first_packet_means_no_start(void **state)
{
    struct cap_depacketizer *d = *state;
    assert_int_equal(push(d, 1, 1000, false, "X", 0), CAP_EFORMAT);
    push(d, 2, 1000, true, "Sb", 0);
    EXPECT_FRAME(d, "Sb", 1000, .complete = false);
}

static void test_malformed_packet_with_marker_leaves_frame_open_until_next_timestamp(void **state)
{
    /* The codec's ends_frame is not trusted from a packet it could not read, so the frame
     * ends at the next timestamp instead. */
    struct cap_depacketizer *d = *state;
    push(d, 1, 1000, false, "Sa", 0);
    assert_int_equal(push(d, 2, 1000, true, "X", 0), CAP_EFORMAT);
    expect_no_frame(d);
    push(d, 3, 2000, true, "Sc", 0);
    EXPECT_FRAME(d, "Sa", 1000, .complete = false);
    EXPECT_FRAME(d, "Sc", 2000, .complete = true);
}

static void test_one_push_can_finish_two_frames_popped_in_order(void **state)
{
    struct cap_depacketizer *d = *state;
    push(d, 1, 1000, false, "Sa", 0);
    push(d, 2, 2000, true, "Sb", 0); /* ends 1000 by timestamp, and is all of 2000 */
    EXPECT_FRAME(d, "Sa", 1000, .complete = true);
    EXPECT_FRAME(d, "Sb", 2000, .complete = true);
    expect_no_frame(d);
}

static void test_flush_finishes_the_frame_in_progress(void **state)
{
    struct cap_depacketizer *d = *state;
    push(d, 1, 1000, true, "Sa", 0);
    push(d, 2, 2000, false, "Sb", 0);
    push(d, 3, 2000, false, "c", 0);
    EXPECT_FRAME(d, "Sa", 1000, .complete = true);
    expect_no_frame(d);
    cap_depacketizer_flush(d);
    struct cap_frame f;
    assert_int_equal(cap_depacketizer_pop(d, &f), 1);
    assert_int_equal(f.len, 3);
    assert_memory_equal(f.data, "Sbc", 3);
    assert_int_equal(f.packets, 2);
    /* The stream stopped inside the frame: its end never arrived, so it is not complete. */
    assert_false(f.complete);
    expect_no_frame(d);
    cap_depacketizer_flush(d); /* nothing in progress: nothing happens */
    expect_no_frame(d);
}

static void test_flush_after_loss_inside_the_frame(void **state)
{
    struct cap_depacketizer *d = *state;
    push(d, 1, 1000, false, "Sa", 0);
    push(d, 3, 1000, false, "c", 1);
    cap_depacketizer_flush(d);
    EXPECT_FRAME(d, "Sac", 1000, .complete = false);
}

static void test_stats_count_packets_frames_incomplete_and_malformed(void **state)
{
    struct cap_depacketizer *d = *state;
    struct cap_frame f;
    static const struct {
        uint16_t seq;
        uint32_t ts;
        bool marker;
        const char *payload;
        uint64_t lost_before;
    } packets[] = {
        {1, 1000, true, "Sa", 0},                            /* frame 1, complete */
        {2, 2000, false, "Sb", 0}, {3, 2000, true, "Xc", 0}, /* malformed */
        {4, 3000, true, "Sd", 0}, /* ends frame 2 (incomplete); frame 3 */
        {6, 4000, true, "e", 1},  /* frame 4: lost its start */
    };
    for (size_t i = 0; i < sizeof(packets) / sizeof(packets[0]); i++) {
        push(d, packets[i].seq, packets[i].ts, packets[i].marker, packets[i].payload,
             packets[i].lost_before);
        while (cap_depacketizer_pop(d, &f) == 1)
            ;
    }
    const struct cap_depacketizer_stats *s = cap_depacketizer_stats(d);
    assert_int_equal(s->packets, 5);
    assert_int_equal(s->frames, 4);
    assert_int_equal(s->incomplete_frames, 2);
    assert_int_equal(s->malformed_packets, 1);
}

static void test_incomplete_frame_with_no_bytes_is_counted_but_not_handed_out(void **state)
{
    /* incomplete_frames counts frames that never come out of pop, so it can exceed the
     * incomplete frames a caller sees (here: one counted, none popped). The next frame
     * says that one before it is missing. */
    struct cap_depacketizer *d = *state;
    assert_int_equal(push(d, 1, 1000, true, "X", 0), CAP_EFORMAT);
    expect_no_frame(d);
    push(d, 2, 2000, true, "Sb", 0);
    EXPECT_FRAME(d, "Sb", 2000, .complete = true, .after_loss = true);
    expect_no_frame(d);
    const struct cap_depacketizer_stats *s = cap_depacketizer_stats(d);
    assert_int_equal(s->frames, 1);
    assert_int_equal(s->incomplete_frames, 1);
    assert_int_equal(s->malformed_packets, 1);
}

static void test_ready_queue_holds_two_frames_and_drops_a_third_unpopped_one(void **state)
{
    /* The caller is meant to pop after every push; one that does not loses frames, and no
     * statistic says so (depay.h has no counter for it). */
    struct cap_depacketizer *d = *state;
    push(d, 1, 1000, true, "Sa", 0);
    push(d, 2, 2000, true, "Sb", 0);
    push(d, 3, 3000, true, "Sc", 0); /* queue full: dropped */
    EXPECT_FRAME(d, "Sa", 1000, .complete = true);
    EXPECT_FRAME(d, "Sb", 2000, .complete = true);
    expect_no_frame(d);
    push(d, 4, 4000, true, "Sd", 0); /* after the dropped one: it says so */
    EXPECT_FRAME(d, "Sd", 4000, .complete = true, .after_loss = true);
    assert_int_equal(cap_depacketizer_stats(d)->frames, 3);
    assert_int_equal(cap_depacketizer_stats(d)->packets, 4);
}

static void test_ready_queue_never_overflows_when_popped_after_every_push(void **state)
{
    /* A mix of single-packet frames, frames ended by the next timestamp (two ready at once)
     * and multi-packet frames; popping after each push must lose none of them. */
    struct cap_depacketizer *d = *state;
    uint16_t seq = 0;
    uint32_t ts = 0;
    unsigned pushed_frames = 0, popped = 0;
    for (int round = 0; round < 300; round++) {
        ts += 3000;
        switch (round % 3) {
        case 0: /* whole frame in one packet */
            push(d, seq++, ts, true, "Sa", 0);
            break;
        case 1: /* no marker: ends when the next frame's timestamp arrives */
            push(d, seq++, ts, false, "Sb", 0);
            break;
        case 2: /* two packets */
            push(d, seq++, ts, false, "Sc", 0);
            push(d, seq++, ts, true, "d", 0);
            break;
        }
        pushed_frames++;
        struct cap_frame f;
        while (cap_depacketizer_pop(d, &f) == 1) {
            assert_true(f.complete);
            assert_false(f.after_loss);
            popped++;
        }
    }
    assert_int_equal(popped, pushed_frames);
    assert_int_equal(cap_depacketizer_stats(d)->frames, pushed_frames);
    assert_int_equal(cap_depacketizer_stats(d)->incomplete_frames, 0);
}

static void test_frames_are_handed_out_in_timestamp_order_with_their_metadata(void **state)
{
    struct cap_depacketizer *d = *state;
    push(d, 100, 0xfffffc18u, true, "Sa", 0); /* timestamps wrap: only change matters */
    push(d, 101, 0x000003e8u, true, "Sb", 0);
    struct cap_frame a = EXPECT_FRAME(d, "Sa", 0xfffffc18u, .complete = true);
    assert_int_equal(a.first_seq, 100);
    struct cap_frame b = EXPECT_FRAME(d, "Sb", 0x000003e8u, .complete = true);
    assert_int_equal(b.first_seq, 101);
    assert_int_equal(b.arrival_ns, 101000);
}

static void test_failed_codec_init_fails_new(void **state)
{
    (void)state;
    memset(&calls, 0, sizeof(calls));
    struct cap_depacketizer *d = NULL;
    const struct cap_codec_params params = {.clock_rate = 90000, .fmtp = "fail"};
    assert_int_equal(cap_depacketizer_new(&d, &fake_ops, &params), CAP_EINVAL);
    assert_null(d);
    assert_int_equal(calls.init, 1);
    /* deinit runs even though init failed: a codec's deinit must cope with a block that
     * init left half set up (or untouched, zeroed). */
    assert_int_equal(calls.deinit, 1);
    assert_int_equal(cap_depacketizer_new(&d, NULL, &params), CAP_EINVAL);
    assert_null(d);
}

static void test_free_calls_deinit_once(void **state)
{
    (void)state;
    memset(&calls, 0, sizeof(calls));
    struct cap_depacketizer *d = NULL;
    assert_int_equal(cap_depacketizer_new(&d, &fake_ops, NULL), 0);
    assert_int_equal(calls.init, 1);
    cap_depacketizer_free(d);
    assert_int_equal(calls.deinit, 1);
    cap_depacketizer_free(NULL);
}

static void test_registry_finds_only_known_codecs(void **state)
{
    (void)state;
    assert_null(cap_depay_find("no-such-codec"));
    const struct cap_depay_ops *ops = cap_depay_find("opus");
    if (ops)
        assert_string_equal(ops->name, "opus");
}

static void test_padding_only_packet_is_skipped_inside_a_frame(void **state)
{
    struct cap_depacketizer *d = *state;
    push(d, 1, 1000, false, "Sa", 0);
    assert_int_equal(push(d, 2, 1000, false, "", 0), 0); /* padding only, mid-frame */
    push(d, 3, 1000, true, "b", 0);
    EXPECT_FRAME(d, "Sab", 1000, .complete = true);
    const struct cap_depacketizer_stats *s = cap_depacketizer_stats(d);
    assert_int_equal(s->empty_packets, 1);
    assert_int_equal(s->malformed_packets, 0);
}

static void test_taken_frame_keeps_its_bytes_while_later_frames_are_built(void **state)
{
    struct cap_depacketizer *d = *state;
    struct cap_buf kept;
    cap_buf_init(&kept, CAP_FRAME_MAX);
    push(d, 1, 1000, true, "Sfirst", 0);
    struct cap_frame f = EXPECT_FRAME(d, "Sfirst", 1000, .complete = true);
    cap_depacketizer_take_frame(d, &kept);
    assert_ptr_equal(kept.data, f.data); /* the frame's own bytes, not a copy */
    assert_int_equal(kept.len, 6);
    for (uint16_t seq = 2; seq < 10; seq++) {
        push(d, seq, 1000u * seq, false, "Slater", 0);
        push(d, (uint16_t)(seq + 100), 1000u * seq, true, "-frame", 0);
        EXPECT_FRAME(d, "Slater-frame", 1000u * seq, .complete = true);
        assert_memory_equal(kept.data, "Sfirst", 6);
    }
    /* The buffer given in exchange serves later frames; taking again returns the newest. */
    push(d, 10, 10000, true, "Snewest", 0);
    EXPECT_FRAME(d, "Snewest", 10000, .complete = true);
    cap_depacketizer_take_frame(d, &kept);
    assert_int_equal(kept.len, 7);
    assert_memory_equal(kept.data, "Snewest", 7);
    push(d, 11, 11000, true, "Safter", 0);
    EXPECT_FRAME(d, "Safter", 11000, .complete = true);
    assert_memory_equal(kept.data, "Snewest", 7);
    cap_buf_deinit(&kept);
}

static void test_take_frame_leaves_the_frame_waiting_behind_it_alone(void **state)
{
    struct cap_depacketizer *d = *state;
    struct cap_buf kept;
    cap_buf_init(&kept, CAP_FRAME_MAX);
    push(d, 1, 1000, false, "Sa", 0);
    push(d, 2, 2000, true, "Sb", 0); /* finishes two frames at once */
    EXPECT_FRAME(d, "Sa", 1000, .complete = true);
    cap_depacketizer_take_frame(d, &kept);
    EXPECT_FRAME(d, "Sb", 2000, .complete = true);
    assert_memory_equal(kept.data, "Sa", 2);
    cap_depacketizer_take_frame(d, &kept);
    assert_memory_equal(kept.data, "Sb", 2);
    push(d, 3, 3000, true, "Sc", 0);
    EXPECT_FRAME(d, "Sc", 3000, .complete = true);
    expect_no_frame(d);
    cap_buf_deinit(&kept);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_frame_split_across_three_packets),
        T(test_padding_only_packet_is_skipped_inside_a_frame),
        T(test_keyframe_is_the_codecs_judgement),
        T(test_timestamp_change_without_marker_ends_a_complete_frame),
        T(test_loss_inside_a_frame_makes_it_incomplete_and_flags_the_next),
        T(test_loss_between_two_frames_flags_only_the_next),
        T(test_loss_before_a_timestamp_change_cuts_the_previous_frame),
        T(test_loss_of_a_frames_first_packets),
        T(test_frame_without_its_start_is_incomplete),
        T(test_malformed_packet_makes_frame_incomplete_and_is_counted),
        T(test_malformed_first_packet_means_no_start),
        T(test_malformed_packet_with_marker_leaves_frame_open_until_next_timestamp),
        T(test_one_push_can_finish_two_frames_popped_in_order),
        T(test_flush_finishes_the_frame_in_progress),
        T(test_flush_after_loss_inside_the_frame),
        T(test_stats_count_packets_frames_incomplete_and_malformed),
        T(test_incomplete_frame_with_no_bytes_is_counted_but_not_handed_out),
        T(test_ready_queue_holds_two_frames_and_drops_a_third_unpopped_one),
        T(test_ready_queue_never_overflows_when_popped_after_every_push),
        T(test_frames_are_handed_out_in_timestamp_order_with_their_metadata),
        T(test_taken_frame_keeps_its_bytes_while_later_frames_are_built),
        T(test_take_frame_leaves_the_frame_waiting_behind_it_alone),
        cmocka_unit_test(test_failed_codec_init_fails_new),
        cmocka_unit_test(test_free_calls_deinit_once),
        cmocka_unit_test(test_registry_finds_only_known_codecs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
