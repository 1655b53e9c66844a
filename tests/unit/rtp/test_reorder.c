/* reorder: packets out in order, holes waited for up to max_delay then counted lost,
 * duplicates and late packets refused, pushes far ahead forcing the window on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "capstan/error.h"
#include "rtp/reorder.h"

#define DELAY 1000
#define ITEM(seq) ((void *)(uintptr_t)((seq) + 0x1000))

static void push_ok(struct cap_reorder *r, uint64_t seq, int64_t arrival_ns)
{
    int rc = cap_reorder_push(r, seq, arrival_ns, ITEM(seq));
    if (rc != 0)
        fail_msg("push %llu: %d (%s)", (unsigned long long)seq, rc, cap_strerror(rc));
}

static void expect_out(int rc, const struct cap_reorder_out *out, uint64_t seq,
                       uint64_t lost_before)
{
    if (rc != 1)
        fail_msg("want seq %llu out, got rc %d", (unsigned long long)seq, rc);
    if (out->seq != seq || out->lost_before != lost_before)
        fail_msg("got seq %llu lost_before %llu, want seq %llu lost_before %llu",
                 (unsigned long long)out->seq, (unsigned long long)out->lost_before,
                 (unsigned long long)seq, (unsigned long long)lost_before);
    assert_ptr_equal(out->item, ITEM(seq));
}

static void expect_pop(struct cap_reorder *r, int64_t now_ns, uint64_t seq, uint64_t lost_before)
{
    struct cap_reorder_out out;
    expect_out(cap_reorder_pop(r, now_ns, &out), &out, seq, lost_before);
}

static void expect_flush(struct cap_reorder *r, uint64_t seq, uint64_t lost_before)
{
    struct cap_reorder_out out;
    expect_out(cap_reorder_flush(r, &out), &out, seq, lost_before);
}

static void expect_nothing(struct cap_reorder *r, int64_t now_ns)
{
    struct cap_reorder_out out;
    int rc = cap_reorder_pop(r, now_ns, &out);
    if (rc != 0)
        fail_msg("want nothing at %lld, got rc %d seq %llu", (long long)now_ns, rc,
                 (unsigned long long)out.seq);
}

/* The first packets to arrive out of order: without hold_start the first arrival starts
 * the stream and the one sent before it is late; with it, both come out in order. */
static void test_reorder_hold_start_waits_for_packets_sent_before_the_first_arrival(void **state)
{
    (void)state;
    struct cap_reorder r;
    assert_int_equal(cap_reorder_init(&r, 8, DELAY), 0);
    push_ok(&r, 11, 0);
    expect_pop(&r, 0, 11, 0);
    assert_int_equal(cap_reorder_push(&r, 10, 1, ITEM(10)), CAP_ELATE);
    cap_reorder_deinit(&r);

    assert_int_equal(cap_reorder_init(&r, 8, DELAY), 0);
    cap_reorder_hold_start(&r, true);
    push_ok(&r, 11, 0);
    expect_nothing(&r, 0);
    push_ok(&r, 10, 1);
    expect_nothing(&r, DELAY - 1);
    expect_pop(&r, DELAY, 10, 0);
    expect_pop(&r, DELAY, 11, 0);
    /* once started, packets in order pass straight through */
    push_ok(&r, 12, DELAY + 1);
    expect_pop(&r, DELAY + 1, 12, 0);
    assert_int_equal(r.stats.lost, 0);
    assert_int_equal(r.stats.late, 0);
    cap_reorder_deinit(&r);

    /* a full buffer does not wait */
    assert_int_equal(cap_reorder_init(&r, 2, DELAY), 0);
    cap_reorder_hold_start(&r, true);
    push_ok(&r, 20, 0);
    push_ok(&r, 21, 0);
    expect_pop(&r, 0, 20, 0);
    cap_reorder_deinit(&r);
}

static void test_reorder_init_rounds_capacity_and_refuses_nonsense(void **state)
{
    (void)state;
    struct cap_reorder r;
    assert_int_equal(cap_reorder_init(&r, 5, DELAY), 0);
    assert_int_equal(r.capacity, 8);
    cap_reorder_deinit(&r);
    assert_int_equal(cap_reorder_init(&r, 1, DELAY), 0);
    assert_int_equal(r.capacity, 1);
    cap_reorder_deinit(&r);
    assert_int_equal(cap_reorder_init(&r, 100000, DELAY), 0);
    assert_int_equal(r.capacity, 65536);
    cap_reorder_deinit(&r);
    assert_int_equal(cap_reorder_init(&r, 0, DELAY), CAP_EINVAL);
    assert_int_equal(cap_reorder_init(&r, 8, -1), CAP_EINVAL);
}

static void test_reorder_in_order_packets_pass_straight_through(void **state)
{
    (void)state;
    struct cap_reorder r;
    assert_int_equal(cap_reorder_init(&r, 8, DELAY), 0);
    expect_nothing(&r, 0);
    for (uint64_t seq = 100; seq < 120; seq++) {
        push_ok(&r, seq, (int64_t)seq);
        expect_pop(&r, (int64_t)seq, seq, 0);
        expect_nothing(&r, (int64_t)seq);
    }
    assert_int_equal(r.stats.received, 20);
    assert_int_equal(r.stats.emitted, 20);
    assert_int_equal(r.stats.lost, 0);
    assert_int_equal(r.stats.reordered, 0);
    assert_int_equal(r.held, 0);
    cap_reorder_deinit(&r);
}

static void test_reorder_swapped_pairs_come_out_in_order(void **state)
{
    (void)state;
    struct cap_reorder r;
    assert_int_equal(cap_reorder_init(&r, 8, DELAY), 0);
    push_ok(&r, 1, 0);
    expect_pop(&r, 0, 1, 0);
    for (uint64_t seq = 2; seq < 12; seq += 2) {
        push_ok(&r, seq + 1, 10);
        expect_nothing(&r, 10);
        push_ok(&r, seq, 11);
        expect_pop(&r, 11, seq, 0);
        expect_pop(&r, 11, seq + 1, 0);
        expect_nothing(&r, 11);
    }
    assert_int_equal(r.stats.reordered, 5);
    assert_int_equal(r.stats.lost, 0);
    assert_int_equal(r.stats.emitted, 11);
    cap_reorder_deinit(&r);
}

static void test_reorder_hole_given_up_after_max_delay_counts_lost(void **state)
{
    (void)state;
    struct cap_reorder r;
    assert_int_equal(cap_reorder_init(&r, 8, DELAY), 0);
    push_ok(&r, 1, 0);
    expect_pop(&r, 0, 1, 0);
    push_ok(&r, 4, 100);
    push_ok(&r, 5, 200);
    expect_nothing(&r, 100 + DELAY - 1);
    expect_pop(&r, 100 + DELAY, 4, 2);
    expect_pop(&r, 100 + DELAY, 5, 0);
    expect_nothing(&r, 100 + DELAY);
    assert_int_equal(r.stats.lost, 2);
    assert_int_equal(r.stats.emitted, 3);
    /* The given-up packets are late when they turn up, and were counted lost already. */
    assert_int_equal(cap_reorder_push(&r, 3, 2000, ITEM(3)), CAP_ELATE);
    assert_int_equal(cap_reorder_push(&r, 2, 2000, ITEM(2)), CAP_ELATE);
    assert_int_equal(r.stats.late, 2);
    assert_int_equal(r.stats.lost, 2);
    assert_int_equal(r.stats.duplicated, 0);
    cap_reorder_deinit(&r);
}

static void test_reorder_any_held_packet_past_max_delay_gives_up_the_hole(void **state)
{
    (void)state;
    struct cap_reorder r;
    assert_int_equal(cap_reorder_init(&r, 8, DELAY), 0);
    push_ok(&r, 1, 0);
    expect_pop(&r, 0, 1, 0);
    /* The packet after the hole is the newest; the one further on waited longest. */
    push_ok(&r, 6, 50);
    push_ok(&r, 3, 500);
    expect_nothing(&r, 50 + DELAY - 1);
    expect_pop(&r, 50 + DELAY, 3, 1);
    expect_nothing(&r, 50 + DELAY - 1); /* the hole at 4 and 5 gets its own wait */
    expect_pop(&r, 50 + DELAY, 6, 2);
    assert_int_equal(r.stats.lost, 3);
    cap_reorder_deinit(&r);
}

static void test_reorder_hole_filled_in_time_counts_reordered(void **state)
{
    (void)state;
    struct cap_reorder r;
    assert_int_equal(cap_reorder_init(&r, 8, DELAY), 0);
    push_ok(&r, 1, 0);
    push_ok(&r, 3, 1);
    push_ok(&r, 4, 2);
    expect_pop(&r, 5, 1, 0);
    expect_nothing(&r, 5);
    push_ok(&r, 2, 50);
    expect_pop(&r, 50, 2, 0);
    expect_pop(&r, 50, 3, 0);
    expect_pop(&r, 50, 4, 0);
    expect_nothing(&r, 50 + 10 * DELAY);
    assert_int_equal(r.stats.reordered, 1);
    assert_int_equal(r.stats.lost, 0);
    assert_int_equal(r.stats.late, 0);
    cap_reorder_deinit(&r);
}

static void test_reorder_duplicate_of_held_packet_is_refused(void **state)
{
    (void)state;
    struct cap_reorder r;
    assert_int_equal(cap_reorder_init(&r, 8, DELAY), 0);
    push_ok(&r, 1, 0);
    expect_pop(&r, 0, 1, 0);
    push_ok(&r, 3, 1);
    assert_int_equal(cap_reorder_push(&r, 3, 2, ITEM(3)), CAP_EDUPLICATE);
    push_ok(&r, 2, 3);
    assert_int_equal(cap_reorder_push(&r, 2, 4, ITEM(2)), CAP_EDUPLICATE);
    assert_int_equal(r.stats.duplicated, 2);
    assert_int_equal(r.stats.reordered, 1); /* refused duplicates are not counted */
    assert_int_equal(r.stats.received, 5);
    assert_int_equal(r.held, 2);
    expect_pop(&r, 5, 2, 0);
    expect_pop(&r, 5, 3, 0);
    expect_nothing(&r, 5);
    cap_reorder_deinit(&r);
}

static void test_reorder_duplicate_of_emitted_packet_is_refused(void **state)
{
    (void)state;
    struct cap_reorder r;
    assert_int_equal(cap_reorder_init(&r, 8, DELAY), 0);
    for (uint64_t seq = 0; seq < 2000; seq++) {
        push_ok(&r, seq, 0);
        expect_pop(&r, 0, seq, 0);
    }
    assert_int_equal(cap_reorder_push(&r, 1999, 0, ITEM(1999)), CAP_EDUPLICATE);
    assert_int_equal(cap_reorder_push(&r, 2000 - 1024, 0, ITEM(976)), CAP_EDUPLICATE);
    /* Older than the 1024 the bitmap remembers: its turn is gone, whatever it was. */
    assert_int_equal(cap_reorder_push(&r, 2000 - 1025, 0, ITEM(975)), CAP_ELATE);
    assert_int_equal(r.stats.duplicated, 2);
    assert_int_equal(r.stats.late, 1);
    expect_nothing(&r, 10 * DELAY);
    cap_reorder_deinit(&r);
}

static void test_reorder_skipped_seq_is_late_not_duplicate_of_its_bitmap_alias(void **state)
{
    (void)state;
    struct cap_reorder r;
    assert_int_equal(cap_reorder_init(&r, 8, DELAY), 0);
    for (uint64_t seq = 0; seq < 1024; seq++) {
        push_ok(&r, seq, 0);
        expect_pop(&r, 0, seq, 0);
    }
    /* 1024 shares its bit with the emitted 0; giving it up must clear that bit. */
    push_ok(&r, 1025, 0);
    expect_pop(&r, DELAY, 1025, 1);
    assert_int_equal(cap_reorder_push(&r, 1024, DELAY, ITEM(1024)), CAP_ELATE);
    assert_int_equal(cap_reorder_push(&r, 1025, DELAY, ITEM(1025)), CAP_EDUPLICATE);
    cap_reorder_deinit(&r);
}

static void test_reorder_long_give_up_forgets_what_was_emitted(void **state)
{
    (void)state;
    struct cap_reorder r;
    assert_int_equal(cap_reorder_init(&r, 8, DELAY), 0);
    for (uint64_t seq = 0; seq < 10; seq++) {
        push_ok(&r, seq, 0);
        expect_pop(&r, 0, seq, 0);
    }
    /* Thousands given up at once: 4100 shares a bit with the emitted 4 but was skipped. */
    push_ok(&r, 5000, 0);
    assert_int_equal(r.next_seq, 4993);
    assert_int_equal(r.stats.lost, 4983);
    assert_int_equal(cap_reorder_push(&r, 4100, 0, ITEM(4100)), CAP_ELATE);
    expect_pop(&r, DELAY, 5000, 4983 + 7);
    cap_reorder_deinit(&r);
}

static void test_reorder_early_reorder_at_the_start_is_not_lost(void **state)
{
    (void)state;
    struct cap_reorder r;
    assert_int_equal(cap_reorder_init(&r, 8, DELAY), 0);
    push_ok(&r, 5, 0);
    push_ok(&r, 3, 1);
    push_ok(&r, 4, 2);
    expect_pop(&r, 3, 3, 0);
    expect_pop(&r, 3, 4, 0);
    expect_pop(&r, 3, 5, 0);
    assert_int_equal(r.stats.reordered, 2);
    assert_int_equal(r.stats.lost, 0);
    /* Once anything is out, the start is fixed. */
    assert_int_equal(cap_reorder_push(&r, 2, 4, ITEM(2)), CAP_ELATE);
    cap_reorder_deinit(&r);

    /* Before the start by the capacity or more: it cannot fit the window, so it is late. */
    assert_int_equal(cap_reorder_init(&r, 4, DELAY), 0);
    push_ok(&r, 10, 0);
    assert_int_equal(cap_reorder_push(&r, 6, 0, ITEM(6)), CAP_ELATE);
    push_ok(&r, 7, 0);
    expect_pop(&r, 0, 7, 0);
    expect_nothing(&r, DELAY - 1);
    expect_pop(&r, DELAY, 10, 2);
    cap_reorder_deinit(&r);
}

static void test_reorder_push_far_ahead_forces_window_on_without_dropping(void **state)
{
    (void)state;
    struct cap_reorder r;
    assert_int_equal(cap_reorder_init(&r, 4, DELAY), 0);
    push_ok(&r, 10, 0);
    push_ok(&r, 12, 1);
    push_ok(&r, 13, 2);
    expect_pop(&r, 3, 10, 0);
    /* 11 is a hole; 100 is far past the 4-slot window [11, 15). */
    push_ok(&r, 100, 4);
    assert_int_equal(r.next_seq, 97);
    assert_int_equal(r.held, 3);
    /* What the window passed comes out at once, in order; the rest waits as usual. */
    expect_pop(&r, 5, 12, 1);
    expect_pop(&r, 5, 13, 0);
    expect_nothing(&r, 5);
    push_ok(&r, 98, 6); /* still inside the moved window: in time */
    expect_nothing(&r, 6);
    expect_nothing(&r, 4 + DELAY - 1);
    /* 100 has waited long enough for 97 and 99; 98's wait does not hold them up. The
     * 83 given up by the push (14..96) are reported with the first packet after them. */
    expect_pop(&r, 4 + DELAY, 98, 83 + 1);
    expect_pop(&r, 4 + DELAY, 100, 1);
    assert_int_equal(r.stats.lost, 1 + 83 + 1 + 1);
    assert_int_equal(r.stats.emitted, 5);
    assert_int_equal(r.stats.received, 5);
    assert_int_equal(r.held, 0);
    assert_int_equal(cap_reorder_push(&r, 50, 7, ITEM(50)), CAP_ELATE);
    assert_int_equal(cap_reorder_push(&r, 13, 7, ITEM(13)), CAP_EDUPLICATE);
    cap_reorder_deinit(&r);
}

static void test_reorder_push_onto_a_full_window_forces_out_the_oldest(void **state)
{
    (void)state;
    struct cap_reorder r;
    assert_int_equal(cap_reorder_init(&r, 4, DELAY), 0);
    /* No pops: every slot is taken, then each further packet pushes the oldest out. */
    for (uint64_t seq = 1; seq <= 4; seq++)
        push_ok(&r, seq, 0);
    push_ok(&r, 5, 0);
    assert_int_equal(r.held, 5);
    for (uint64_t seq = 1; seq <= 5; seq++)
        expect_pop(&r, 0, seq, 0);
    expect_nothing(&r, 10 * DELAY);
    assert_int_equal(r.stats.lost, 0);
    cap_reorder_deinit(&r);
}

static void test_reorder_forced_out_packets_beyond_capacity_are_a_limit(void **state)
{
    (void)state;
    struct cap_reorder r;
    assert_int_equal(cap_reorder_init(&r, 1, DELAY), 0);
    push_ok(&r, 1, 0);
    push_ok(&r, 2, 0); /* 1 forced out, waiting for pop */
    /* Without a pop there is nowhere to put 2 when 3 forces it out. */
    assert_int_equal(cap_reorder_push(&r, 3, 0, ITEM(3)), CAP_ELIMIT);
    expect_pop(&r, 0, 1, 0);
    push_ok(&r, 3, 0);
    expect_pop(&r, 0, 2, 0);
    expect_pop(&r, 0, 3, 0);
    expect_nothing(&r, 0);
    cap_reorder_deinit(&r);
}

static void test_reorder_flush_drains_in_order_counting_holes(void **state)
{
    (void)state;
    struct cap_reorder r;
    assert_int_equal(cap_reorder_init(&r, 8, DELAY), 0);
    struct cap_reorder_out out;
    assert_int_equal(cap_reorder_flush(&r, &out), 0);
    push_ok(&r, 6, 0);
    push_ok(&r, 1, 0);
    push_ok(&r, 3, 0);
    expect_pop(&r, 0, 1, 0);
    expect_nothing(&r, 0);
    expect_flush(&r, 3, 1);
    expect_flush(&r, 6, 2);
    assert_int_equal(cap_reorder_flush(&r, &out), 0);
    assert_int_equal(r.stats.lost, 3);
    assert_int_equal(r.stats.emitted, 3);
    assert_int_equal(r.held, 0);
    cap_reorder_deinit(&r);
}

static void test_reorder_wraps_around_the_ring_many_times(void **state)
{
    (void)state;
    struct cap_reorder r;
    assert_int_equal(cap_reorder_init(&r, 4, DELAY), 0);
    /* Pairs swapped and a three-step reversal, across seqs that wrap the 4-slot ring. */
    uint64_t order[301];
    size_t n = 0;
    order[n++] = 0;
    for (uint64_t base = 1; base < 301; base += 6) {
        const uint64_t pattern[6] = {1, 0, 2, 5, 4, 3};
        for (size_t i = 0; i < 6; i++)
            order[n++] = base + pattern[i];
    }
    uint64_t expected = 0;
    for (size_t i = 0; i < n; i++) {
        push_ok(&r, order[i], (int64_t)i);
        struct cap_reorder_out out;
        while (cap_reorder_pop(&r, (int64_t)i, &out) == 1) {
            assert_int_equal(out.seq, expected);
            assert_int_equal(out.lost_before, 0);
            expected++;
        }
    }
    assert_int_equal(expected, 301);
    assert_int_equal(r.stats.lost, 0);
    assert_int_equal(r.stats.reordered, 50 * 3);
    cap_reorder_deinit(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reorder_init_rounds_capacity_and_refuses_nonsense),
        cmocka_unit_test(test_reorder_in_order_packets_pass_straight_through),
        cmocka_unit_test(test_reorder_swapped_pairs_come_out_in_order),
        cmocka_unit_test(test_reorder_hole_given_up_after_max_delay_counts_lost),
        cmocka_unit_test(test_reorder_any_held_packet_past_max_delay_gives_up_the_hole),
        cmocka_unit_test(test_reorder_hole_filled_in_time_counts_reordered),
        cmocka_unit_test(test_reorder_duplicate_of_held_packet_is_refused),
        cmocka_unit_test(test_reorder_duplicate_of_emitted_packet_is_refused),
        cmocka_unit_test(test_reorder_skipped_seq_is_late_not_duplicate_of_its_bitmap_alias),
        cmocka_unit_test(test_reorder_long_give_up_forgets_what_was_emitted),
        cmocka_unit_test(test_reorder_early_reorder_at_the_start_is_not_lost),
        cmocka_unit_test(test_reorder_push_far_ahead_forces_window_on_without_dropping),
        cmocka_unit_test(test_reorder_push_onto_a_full_window_forces_out_the_oldest),
        cmocka_unit_test(test_reorder_forced_out_packets_beyond_capacity_are_a_limit),
        cmocka_unit_test(test_reorder_flush_drains_in_order_counting_holes),
        cmocka_unit_test(test_reorder_wraps_around_the_ring_many_times),
        cmocka_unit_test(test_reorder_hold_start_waits_for_packets_sent_before_the_first_arrival),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
