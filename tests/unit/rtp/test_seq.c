/* seq: RFC 3550 A.1 validation (probation, wrap, misorder, jump and restart) with 64-bit
 * extended values that never go backwards across a restart; timestamp unwrapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rtp/seq.h"

struct step {
    uint16_t seq;
    enum cap_seq_verdict verdict;
    uint64_t ext; /* checked unless the verdict is BAD */
};

static const char *verdict_name(enum cap_seq_verdict v)
{
    switch (v) {
    case CAP_SEQ_OK:
        return "OK";
    case CAP_SEQ_PROBATION:
        return "PROBATION";
    case CAP_SEQ_REORDERED:
        return "REORDERED";
    case CAP_SEQ_BAD:
        return "BAD";
    case CAP_SEQ_RESTARTED:
        return "RESTARTED";
    }
    return "?";
}

/* Feeds the steps in order and checks each verdict and extended value. */
static void run_steps(struct cap_seq_state *s, const struct step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t ext = UINT64_C(0xdeadbeef);
        enum cap_seq_verdict v = cap_seq_update(s, steps[i].seq, &ext);
        if (v != steps[i].verdict)
            fail_msg("step %zu (seq %u): verdict %s, want %s", i, steps[i].seq, verdict_name(v),
                     verdict_name(steps[i].verdict));
        if (v != CAP_SEQ_BAD && ext != steps[i].ext)
            fail_msg("step %zu (seq %u): ext %llu, want %llu", i, steps[i].seq,
                     (unsigned long long)ext, (unsigned long long)steps[i].ext);
    }
}

#define RUN(state, ...)                                                                            \
    do {                                                                                           \
        const struct step steps_[] = {__VA_ARGS__};                                                \
        run_steps((state), steps_, sizeof(steps_) / sizeof(steps_[0]));                            \
    } while (0)

static void test_seq_first_packets_are_on_probation_then_ok(void **state)
{
    (void)state;
    struct cap_seq_state s;
    cap_seq_init(&s);
    RUN(&s, {1000, CAP_SEQ_PROBATION, 1000}, {1001, CAP_SEQ_OK, 1001}, {1002, CAP_SEQ_OK, 1002});
    assert_int_equal(s.probation, 0);
    assert_int_equal(s.base_ext, 1000);
}

static void test_seq_probation_starts_over_on_a_gap_or_reorder(void **state)
{
    (void)state;
    struct cap_seq_state s;
    cap_seq_init(&s);
    /* Not consecutive: probation starts over, yet each value sits where it belongs. */
    RUN(&s, {10, CAP_SEQ_PROBATION, 10}, {12, CAP_SEQ_PROBATION, 12}, {11, CAP_SEQ_PROBATION, 11},
        {13, CAP_SEQ_PROBATION, 13}, {14, CAP_SEQ_OK, 14}, {15, CAP_SEQ_OK, 15});
}

static void test_seq_wraps_at_65535_to_0(void **state)
{
    (void)state;
    struct cap_seq_state s;
    cap_seq_init(&s);
    RUN(&s, {65534, CAP_SEQ_PROBATION, 65534}, {65535, CAP_SEQ_OK, 65535}, {0, CAP_SEQ_OK, 65536},
        {1, CAP_SEQ_OK, 65537});
    assert_int_equal(s.cycles, 65536);
    assert_int_equal(s.max_seq, 1);
}

static void test_seq_gap_within_dropout_is_loss_not_a_jump(void **state)
{
    (void)state;
    struct cap_seq_state s;
    cap_seq_init(&s);
    RUN(&s, {100, CAP_SEQ_PROBATION, 100}, {101, CAP_SEQ_OK, 101},
        {101 + CAP_SEQ_MAX_DROPOUT - 1, CAP_SEQ_OK, 101 + CAP_SEQ_MAX_DROPOUT - 1},
        {101 + 2 * CAP_SEQ_MAX_DROPOUT - 1, CAP_SEQ_BAD, 0}); /* exactly MAX_DROPOUT on */
}

static void test_seq_reorder_within_misorder_keeps_its_place(void **state)
{
    (void)state;
    struct cap_seq_state s;
    cap_seq_init(&s);
    RUN(&s, {100, CAP_SEQ_PROBATION, 100}, {101, CAP_SEQ_OK, 101}, {102, CAP_SEQ_OK, 102},
        {104, CAP_SEQ_OK, 104}, {103, CAP_SEQ_REORDERED, 103}, {105, CAP_SEQ_OK, 105},
        {102, CAP_SEQ_REORDERED, 102}, /* a duplicate is an older packet too */
        {105, CAP_SEQ_OK, 105},        /* a duplicate of the highest stays in place */
        {(uint16_t)(105 - CAP_SEQ_MAX_MISORDER + 1), CAP_SEQ_REORDERED,
         105 - CAP_SEQ_MAX_MISORDER + 1},
        {(uint16_t)(105 - CAP_SEQ_MAX_MISORDER), CAP_SEQ_BAD, 0});
}

static void test_seq_reorder_across_the_wrap(void **state)
{
    (void)state;
    struct cap_seq_state s;
    cap_seq_init(&s);
    RUN(&s, {65533, CAP_SEQ_PROBATION, 65533}, {65534, CAP_SEQ_OK, 65534}, {1, CAP_SEQ_OK, 65537},
        {65535, CAP_SEQ_REORDERED, 65535}, {0, CAP_SEQ_REORDERED, 65536}, {2, CAP_SEQ_OK, 65538});
}

static void test_seq_large_jump_is_bad_then_restart_when_confirmed(void **state)
{
    (void)state;
    struct cap_seq_state s;
    cap_seq_init(&s);
    RUN(&s, {100, CAP_SEQ_PROBATION, 100}, {101, CAP_SEQ_OK, 101}, {102, CAP_SEQ_OK, 102},
        {20000, CAP_SEQ_BAD, 0}, /* dropped, remembered */
        {103, CAP_SEQ_OK, 103},  /* the old numbering goes on undisturbed */
        {30000, CAP_SEQ_BAD, 0}, {30001, CAP_SEQ_RESTARTED, 105}, /* 104 is left for 30000 */
        {30002, CAP_SEQ_OK, 106}, {30000, CAP_SEQ_REORDERED, 104},
        {29999, CAP_SEQ_BAD, 0}); /* would be 103, the old run's */
    assert_int_equal(s.restarts, 1);
    assert_int_equal(s.base_ext, 105);
    assert_int_equal(s.cycles, 0);
    assert_int_equal(s.max_seq, 30002);
}

static void test_seq_unconfirmed_jump_is_dropped(void **state)
{
    (void)state;
    struct cap_seq_state s;
    cap_seq_init(&s);
    RUN(&s, {100, CAP_SEQ_PROBATION, 100}, {101, CAP_SEQ_OK, 101}, {20000, CAP_SEQ_BAD, 0},
        {20005, CAP_SEQ_BAD, 0}, {20007, CAP_SEQ_BAD, 0}, {102, CAP_SEQ_OK, 102});
    assert_int_equal(s.restarts, 0);
}

static void test_seq_ext_never_decreases_after_restart(void **state)
{
    (void)state;
    struct cap_seq_state s;
    cap_seq_init(&s);
    /* Run across a wrap, then restart at a lower 16-bit value: extended values keep rising. */
    uint64_t ext = 0, highest = 0;
    for (uint32_t i = 0; i < 70000; i++) {
        uint16_t seq = (uint16_t)(40000 + i);
        enum cap_seq_verdict v = cap_seq_update(&s, seq, &ext);
        assert_true(v == CAP_SEQ_OK || (i == 0 && v == CAP_SEQ_PROBATION));
        assert_int_equal(ext, 40000 + i);
        highest = ext;
    }
    uint16_t max_seq = s.max_seq;
    assert_int_equal(cap_seq_update(&s, (uint16_t)(max_seq + 20000), &ext), CAP_SEQ_BAD);
    assert_int_equal(cap_seq_update(&s, (uint16_t)(max_seq + 20001), &ext), CAP_SEQ_RESTARTED);
    assert_int_equal(ext, highest + 2);
    /* A new-run packet from before the jump would collide with the old run: refused. */
    assert_int_equal(cap_seq_update(&s, (uint16_t)(max_seq + 19990), &ext), CAP_SEQ_BAD);
    /* and it does not arm a restart: the next packet of the new run is still in order. */
    assert_int_equal(cap_seq_update(&s, (uint16_t)(max_seq + 20002), &ext), CAP_SEQ_OK);
    assert_int_equal(ext, highest + 3);
    /* A second restart, backwards this time, still climbs. */
    uint16_t back = (uint16_t)(max_seq + 20002 - 10000);
    assert_int_equal(cap_seq_update(&s, back, &ext), CAP_SEQ_BAD);
    assert_int_equal(cap_seq_update(&s, (uint16_t)(back + 1), &ext), CAP_SEQ_RESTARTED);
    assert_int_equal(ext, highest + 5);
    assert_int_equal(cap_seq_update(&s, (uint16_t)(back + 2), &ext), CAP_SEQ_OK);
    assert_int_equal(ext, highest + 6);
    assert_int_equal(s.restarts, 2);
}

static void test_seq_reordered_before_the_first_packet_at_zero_is_bad(void **state)
{
    (void)state;
    struct cap_seq_state s;
    cap_seq_init(&s);
    /* Below 0 there is no value; the refusal leaves the state alone (no restart armed). */
    RUN(&s, {0, CAP_SEQ_PROBATION, 0}, {1, CAP_SEQ_OK, 1}, {65535, CAP_SEQ_BAD, 0},
        {0, CAP_SEQ_REORDERED, 0}, {2, CAP_SEQ_OK, 2});
    cap_seq_init(&s);
    RUN(&s, {5, CAP_SEQ_PROBATION, 5}, {6, CAP_SEQ_OK, 6}, {3, CAP_SEQ_REORDERED, 3});
    cap_seq_init(&s);
    RUN(&s, {1, CAP_SEQ_PROBATION, 1}, {65534, CAP_SEQ_BAD, 0}, {2, CAP_SEQ_OK, 2});
}

static void test_seq_wild_jump_on_probation_starts_above_everything(void **state)
{
    (void)state;
    struct cap_seq_state s;
    cap_seq_init(&s);
    RUN(&s, {100, CAP_SEQ_PROBATION, 100}, {40000, CAP_SEQ_PROBATION, 101},
        {40001, CAP_SEQ_OK, 102}, {39999, CAP_SEQ_BAD, 0}, /* would be 100, the first's value */
        {40002, CAP_SEQ_OK, 103});
    assert_int_equal(s.base_ext, 101);
    /* Above the highest handed out, not above the latest: here 102, before 101 came. */
    cap_seq_init(&s);
    RUN(&s, {100, CAP_SEQ_PROBATION, 100}, {102, CAP_SEQ_PROBATION, 102},
        {101, CAP_SEQ_PROBATION, 101}, {40000, CAP_SEQ_PROBATION, 103}, {40001, CAP_SEQ_OK, 104});
}

struct ts_step {
    uint32_t ts;
    int64_t ext;
};

static void test_ts_unwraps_forward_and_steps_back_nearest(void **state)
{
    (void)state;
    const struct ts_step steps[] = {
        {0xffffff00u, INT64_C(0xffffff00)},
        {0x00000100u, INT64_C(0x100000100)}, /* forward across the wrap */
        {0xfffffff0u, INT64_C(0xfffffff0)},  /* small step back across it */
        {0x00000200u, INT64_C(0x100000200)},
        {0x80000100u, INT64_C(0x180000100)}, /* just under half the space forward */
        {0x000000f0u, INT64_C(0x2000000f0)}, /* and again: a second wrap */
        {0x00000050u, INT64_C(0x200000050)}, /* small step back */
    };
    struct cap_ts_state s;
    cap_ts_init(&s);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        int64_t ext = cap_ts_update(&s, steps[i].ts);
        if (ext != steps[i].ext)
            fail_msg("step %zu: %lld, want %lld", i, (long long)ext, (long long)steps[i].ext);
    }
}

static void test_ts_half_the_space_away_counts_as_backwards(void **state)
{
    (void)state;
    /* The int32 difference of exactly 2^31 is INT32_MIN: a step back. */
    struct cap_ts_state s;
    cap_ts_init(&s);
    assert_int_equal(cap_ts_update(&s, 0x80000000u), INT64_C(0x80000000));
    assert_true(cap_ts_update(&s, 0) == 0);
    assert_true(cap_ts_update(&s, 0x80000000u) == -INT64_C(0x80000000));
    assert_true(cap_ts_update(&s, 0x7fffffffu) == -INT64_C(0x80000001));
}

static void test_ts_step_back_before_the_first_goes_negative(void **state)
{
    (void)state;
    struct cap_ts_state s;
    cap_ts_init(&s);
    assert_int_equal(cap_ts_update(&s, 0x10), 0x10);
    assert_true(cap_ts_update(&s, 0xfffffff0u) == -16);
    assert_int_equal(cap_ts_update(&s, 0x20), 0x20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seq_first_packets_are_on_probation_then_ok),
        cmocka_unit_test(test_seq_probation_starts_over_on_a_gap_or_reorder),
        cmocka_unit_test(test_seq_wraps_at_65535_to_0),
        cmocka_unit_test(test_seq_gap_within_dropout_is_loss_not_a_jump),
        cmocka_unit_test(test_seq_reorder_within_misorder_keeps_its_place),
        cmocka_unit_test(test_seq_reorder_across_the_wrap),
        cmocka_unit_test(test_seq_large_jump_is_bad_then_restart_when_confirmed),
        cmocka_unit_test(test_seq_unconfirmed_jump_is_dropped),
        cmocka_unit_test(test_seq_ext_never_decreases_after_restart),
        cmocka_unit_test(test_seq_reordered_before_the_first_packet_at_zero_is_bad),
        cmocka_unit_test(test_seq_wild_jump_on_probation_starts_above_everything),
        cmocka_unit_test(test_ts_unwraps_forward_and_steps_back_nearest),
        cmocka_unit_test(test_ts_half_the_space_away_counts_as_backwards),
        cmocka_unit_test(test_ts_step_back_before_the_first_goes_negative),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
