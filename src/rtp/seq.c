/* Sequence-number validation and extension (RFC 3550 appendix A.1) and timestamp
 * unwrapping. The A.1 state (max_seq, cycles, bad_seq, probation) is kept as the RFC has
 * it so RTCP reports can use it; alongside it runs a 64-bit extended value that, unlike
 * A.1's, never restarts from zero, so it can key a reorder buffer for the whole session. */
#include "rtp/seq.h"

#include <string.h>

#define SEQ_MOD 65536u

void cap_seq_init(struct cap_seq_state *s)
{
    memset(s, 0, sizeof(*s));
    s->bad_seq = SEQ_MOD + 1;
    s->probation = CAP_SEQ_MIN_SEQUENTIAL;
}

/* A.1's init_seq: counting of wraps starts again at seq. */
static void start_counting(struct cap_seq_state *s, uint16_t seq)
{
    s->max_seq = seq;
    s->cycles = 0;
    s->bad_seq = SEQ_MOD + 1;
}

/* Signed distance from `from` to `to` in sequence space, -32768..32767. */
static int32_t seq_distance(uint16_t from, uint16_t to)
{
    uint16_t d = (uint16_t)(to - from);
    return d >= 0x8000 ? (int32_t)d - (int32_t)SEQ_MOD : (int32_t)d;
}

/* True when stepping back `back` from max_ext would land below the current run, where the
 * values belong to an earlier run (or would be negative). */
static bool below_floor(const struct cap_seq_state *s, uint32_t back)
{
    return s->max_ext - s->floor_ext < back;
}

static enum cap_seq_verdict update_on_probation(struct cap_seq_state *s, uint16_t seq,
                                                uint64_t *ext)
{
    uint64_t value;
    bool in_sequence = seq == (uint16_t)(s->max_seq + 1);
    if (in_sequence) {
        value = s->max_ext + 1;
    } else {
        /* A.1 only restarts probation here; the value still has to be usable, so small
         * steps are placed nearest the previous packet (reordering or loss at the very
         * start) and a wild jump starts a tentative run above everything handed out. */
        int32_t d = seq_distance(s->max_seq, seq);
        if (d > -CAP_SEQ_MAX_MISORDER && d < CAP_SEQ_MAX_DROPOUT) {
            if (d < 0 && below_floor(s, (uint32_t)-d))
                return CAP_SEQ_BAD;
            value = d < 0 ? s->max_ext - (uint32_t)-d : s->max_ext + (uint32_t)d;
        } else {
            value = s->highest_ext + 1;
            s->floor_ext = value;
            s->base_ext = value;
        }
    }
    s->max_seq = seq;
    s->max_ext = value;
    if (value > s->highest_ext)
        s->highest_ext = value;
    *ext = value;
    if (!in_sequence) {
        s->probation = CAP_SEQ_MIN_SEQUENTIAL - 1;
        return CAP_SEQ_PROBATION;
    }
    /* Validated. A.1 calls init_seq here, but nothing it resets has moved on probation:
     * max_seq is already seq, cycles and bad_seq are untouched. */
    if (--s->probation > 0)
        return CAP_SEQ_PROBATION;
    return CAP_SEQ_OK;
}

enum cap_seq_verdict cap_seq_update(struct cap_seq_state *s, uint16_t seq, uint64_t *ext)
{
    if (!s->started) {
        /* A.1 primes max_seq = seq - 1 so that the first packet is the first in sequence
         * of its probation; this is that step taken directly. */
        s->started = true;
        s->max_seq = seq;
        s->max_ext = seq;
        s->highest_ext = seq;
        s->base_ext = seq;
        s->floor_ext = 0;
        s->probation = CAP_SEQ_MIN_SEQUENTIAL - 1;
        *ext = seq;
        if (s->probation > 0)
            return CAP_SEQ_PROBATION;
        start_counting(s, seq);
        return CAP_SEQ_OK;
    }
    if (s->probation > 0)
        return update_on_probation(s, seq, ext);

    uint16_t udelta = (uint16_t)(seq - s->max_seq);
    enum cap_seq_verdict verdict;
    uint64_t value;
    if (udelta < CAP_SEQ_MAX_DROPOUT) {
        /* In order, a duplicate of the highest, or a gap small enough to be loss. */
        if (seq < s->max_seq)
            s->cycles += SEQ_MOD;
        s->max_seq = seq;
        s->max_ext += udelta;
        value = s->max_ext;
        verdict = CAP_SEQ_OK;
    } else if (udelta <= SEQ_MOD - CAP_SEQ_MAX_MISORDER) {
        if (seq != s->bad_seq) {
            s->bad_seq = (seq + 1) & (SEQ_MOD - 1);
            return CAP_SEQ_BAD;
        }
        /* Two in a row after the jump: the sender restarted its numbering. Continue above
         * everything handed out, leaving one value free for the packet that made the jump
         * (the caller dropped it as BAD), and refuse anything older than that. */
        start_counting(s, seq);
        s->floor_ext = s->highest_ext + 1;
        s->max_ext = s->highest_ext + 2;
        s->base_ext = s->max_ext;
        s->restarts++;
        value = s->max_ext;
        verdict = CAP_SEQ_RESTARTED;
    } else {
        uint32_t back = SEQ_MOD - udelta;
        if (below_floor(s, back))
            return CAP_SEQ_BAD;
        value = s->max_ext - back;
        verdict = CAP_SEQ_REORDERED;
    }
    if (value > s->highest_ext)
        s->highest_ext = value;
    *ext = value;
    return verdict;
}

void cap_ts_init(struct cap_ts_state *s)
{
    s->started = false;
    s->last_ext = 0;
}

int64_t cap_ts_update(struct cap_ts_state *s, uint32_t ts)
{
    if (!s->started) {
        s->started = true;
        s->last_ext = ts;
        return s->last_ext;
    }
    /* The int32 difference, computed without converting an out-of-range unsigned. */
    uint32_t d = ts - (uint32_t)s->last_ext;
    s->last_ext += d >= 0x80000000u ? (int64_t)d - INT64_C(0x100000000) : (int64_t)d;
    return s->last_ext;
}
