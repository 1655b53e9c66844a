/* Reorder buffer bounded in packets and in time. Packets go in keyed by extended
 * sequence number in any order and come out in order. A hole is waited for until the
 * buffer is full or the oldest held packet has waited max_delay; then it is declared
 * lost. Counts lost, duplicated, late (after their slot was passed) and reordered packets.
 * Items are opaque pointers owned by the caller. */
#ifndef CAP_RTP_REORDER_H
#define CAP_RTP_REORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cap_reorder_stats {
    uint64_t received;    /* packets pushed */
    uint64_t emitted;
    uint64_t lost;        /* sequence numbers skipped over and never emitted */
    uint64_t duplicated;  /* same sequence as a held or recently emitted packet */
    uint64_t late;        /* arrived after its slot was passed (also counted lost before) */
    uint64_t reordered;   /* arrived after a higher sequence but in time to be emitted in order */
};

struct cap_reorder_slot;

struct cap_reorder {
    struct cap_reorder_slot *slots;
    size_t capacity;          /* max packets held, a power of two */
    int64_t max_delay_ns;
    bool started;
    uint64_t next_seq;        /* next sequence to emit */
    uint64_t highest_seq;     /* highest pushed so far */
    size_t held;              /* packets inside, waiting or ready */
    struct cap_reorder_stats stats;
    /* One bit per seq for the 1024 below next_seq, set if it was emitted and clear if it
     * was skipped, so a packet behind next_seq is told apart as duplicate or late. */
    uint64_t emitted_seen[16];
    /* Packets forced out of the window by a push far ahead wait here, in order, for pop;
     * slots[capacity..2*capacity) is their ring. */
    size_t ready_head;
    size_t ready_count;
    uint64_t lost_pending;    /* given up by a push, reported with the next packet emitted */
    bool hold_start;          /* see cap_reorder_hold_start */
    int64_t first_arrival_ns; /* of the first packet pushed */
};

struct cap_reorder_out {
    uint64_t seq;
    int64_t arrival_ns;
    void *item;
    uint64_t lost_before;     /* sequence numbers given up on just before this one */
};

/* capacity is rounded up to a power of two (at most 65536; larger requests get 65536).
 * CAP_EINVAL for a capacity of 0 or a negative delay, CAP_ENOMEM. */
int cap_reorder_init(struct cap_reorder *r, size_t capacity, int64_t max_delay_ns);
/* With hold_start, nothing leaves the buffer until its first packet has waited max_delay
 * (or the buffer is full): the first packet to arrive need not be the first sent, and
 * packets sent before it that arrive just after it still come out in order instead of
 * late. For readers of recordings, where latency costs nothing; off by default. */
void cap_reorder_hold_start(struct cap_reorder *r, bool hold_start);

/* Frees the slots only: items still held are the caller's, so flush first to get them. */
void cap_reorder_deinit(struct cap_reorder *r);

/* Takes one packet. Returns 0 when held, CAP_EDUPLICATE or CAP_ELATE when refused (the
 * caller still owns the item). A packet further ahead than the capacity forces the
 * oldest holes to be given up first, and the packets held below it out to be emitted by
 * the next pops, so push never fails for lack of room as long as the caller pops until
 * pop returns 0 before pushing again. One that does not may get CAP_ELIMIT once
 * capacity forced-out packets are waiting for pop. */
int cap_reorder_push(struct cap_reorder *r, uint64_t seq, int64_t arrival_ns, void *item);

/* Emits the next packet if it is ready at time now_ns: in order, or after giving up on a
 * hole whose follower has waited max_delay_ns. Returns 1 with *out filled, 0 if none ready. */
int cap_reorder_pop(struct cap_reorder *r, int64_t now_ns, struct cap_reorder_out *out);

/* Like pop but gives up on every hole: drains what is held, in order. */
int cap_reorder_flush(struct cap_reorder *r, struct cap_reorder_out *out);

#endif
