/* Extending 16-bit RTP sequence numbers and 32-bit timestamps to 64 bits across wraps,
 * with the probation and restart rules of RFC 3550 appendix A.1. */
#ifndef CAP_RTP_SEQ_H
#define CAP_RTP_SEQ_H

#include <stdbool.h>
#include <stdint.h>

#define CAP_SEQ_MIN_SEQUENTIAL 2
#define CAP_SEQ_MAX_DROPOUT 3000
#define CAP_SEQ_MAX_MISORDER 100

enum cap_seq_verdict {
    CAP_SEQ_OK = 0,        /* in sequence or a tolerable jump; extended value valid */
    CAP_SEQ_PROBATION,     /* source not yet validated; extended value valid but tentative */
    CAP_SEQ_REORDERED,     /* older than the highest seen, within MAX_MISORDER; value valid */
    CAP_SEQ_BAD,           /* a large jump: dropped unless the next packet confirms it; also
                              a packet from before the start of the current run, which has no
                              extended value that is not already taken (it is dropped too) */
    CAP_SEQ_RESTARTED,     /* the jump was confirmed: state reset, counting starts again */
};

struct cap_seq_state {
    bool started;
    uint16_t max_seq;
    uint32_t cycles;       /* count of wraps, times 65536 */
    uint32_t bad_seq;      /* the seq after a large jump (65536 + 1 = none) */
    uint32_t probation;
    uint64_t base_ext;     /* first extended seq after the last (re)start */
    uint32_t restarts;
    /* Extended-value bookkeeping (cycles above is kept for RTCP's 32-bit extended highest
     * sequence; these are 64-bit and never start again from zero). */
    uint64_t max_ext;      /* extended value of max_seq */
    uint64_t highest_ext;  /* highest extended value handed out so far */
    uint64_t floor_ext;    /* lowest value a packet of the current run may take */
};

void cap_seq_init(struct cap_seq_state *s);
/* Feeds one sequence number; *ext receives its 64-bit extended value (valid unless BAD).
 * Extended values increase monotonically across restarts (a restart continues above the
 * highest value handed out so far), so they can key reorder buffers. The first packet's
 * value is its 16-bit seq; a confirmed restart takes highest + 2, leaving highest + 1 for
 * the packet that made the jump (dropped as BAD), so a reorder buffer counts it lost. */
enum cap_seq_verdict cap_seq_update(struct cap_seq_state *s, uint16_t seq, uint64_t *ext);

/* Timestamp unwrapping: each value is placed nearest to the previous one, so the
 * extended timestamp moves back for a small reorder and forward across a wrap. */
struct cap_ts_state {
    bool started;
    int64_t last_ext;
};

void cap_ts_init(struct cap_ts_state *s);
int64_t cap_ts_update(struct cap_ts_state *s, uint32_t ts);

#endif
