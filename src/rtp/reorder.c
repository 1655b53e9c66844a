/* Reorder buffer: puts packets keyed by extended sequence number back in order, waiting a
 * bounded time for holes. Held packets live in a ring indexed by seq & (capacity - 1) that
 * always covers [next_seq, next_seq + capacity); a push beyond that window moves it,
 * giving up holes and queueing the packets it passes in a second ring that pop drains
 * first, so nothing is dropped and the order out stays strictly increasing. */
#include "rtp/reorder.h"

#include <stdlib.h>
#include <string.h>

#include "capstan/error.h"

#define MAX_CAPACITY 65536
#define SEEN_SPAN 1024 /* bits in emitted_seen */

struct cap_reorder_slot {
    bool used;
    uint64_t seq;
    int64_t arrival_ns;
    void *item;
    uint64_t lost_before; /* only in the ready ring */
};

int cap_reorder_init(struct cap_reorder *r, size_t capacity, int64_t max_delay_ns)
{
    if (!r || capacity == 0 || max_delay_ns < 0)
        return CAP_EINVAL;
    memset(r, 0, sizeof(*r));
    if (capacity > MAX_CAPACITY)
        capacity = MAX_CAPACITY;
    size_t rounded = 1;
    while (rounded < capacity)
        rounded <<= 1;
    /* The window ring and the ready ring in one allocation. */
    r->slots = calloc(2 * rounded, sizeof(*r->slots));
    if (!r->slots)
        return CAP_ENOMEM;
    r->capacity = rounded;
    r->max_delay_ns = max_delay_ns;
    return 0;
}

void cap_reorder_hold_start(struct cap_reorder *r, bool hold_start)
{
    r->hold_start = hold_start;
}

void cap_reorder_deinit(struct cap_reorder *r)
{
    if (!r)
        return;
    free(r->slots);
    memset(r, 0, sizeof(*r));
}

static struct cap_reorder_slot *window_slot(struct cap_reorder *r, uint64_t seq)
{
    return &r->slots[seq & (r->capacity - 1)];
}

static struct cap_reorder_slot *ready_slot(struct cap_reorder *r, size_t i)
{
    return &r->slots[r->capacity + ((r->ready_head + i) & (r->capacity - 1))];
}

static size_t window_held(const struct cap_reorder *r)
{
    return r->held - r->ready_count;
}

/* Records that next_seq has been passed, emitted or given up, and moves past it. */
static void pass_next(struct cap_reorder *r, bool emitted)
{
    unsigned bit = (unsigned)(r->next_seq & (SEEN_SPAN - 1));
    uint64_t mask = UINT64_C(1) << (bit & 63);
    if (emitted)
        r->emitted_seen[bit >> 6] |= mask;
    else
        r->emitted_seen[bit >> 6] &= ~mask;
    r->next_seq++;
}

/* Gives up n sequence numbers from next_seq on, none of them held. */
static void give_up(struct cap_reorder *r, uint64_t n)
{
    r->stats.lost += n;
    if (n >= SEEN_SPAN) {
        memset(r->emitted_seen, 0, sizeof(r->emitted_seen));
        r->next_seq += n;
        return;
    }
    while (n-- > 0)
        pass_next(r, false);
}

static bool was_emitted(const struct cap_reorder *r, uint64_t seq)
{
    unsigned bit = (unsigned)(seq & (SEEN_SPAN - 1));
    return (r->emitted_seen[bit >> 6] >> (bit & 63)) & 1;
}

/* Before the first pop nothing has been passed, so the start of the window may still move
 * down for a packet that was overtaken by the very first one. */
static bool never_advanced(const struct cap_reorder *r)
{
    return r->stats.emitted == 0 && r->stats.lost == 0 && r->ready_count == 0;
}

/* Moves the window up so that seq fits at its top: holes below the new start are given up
 * and held packets below it go to the ready ring, in order, for pop to hand out. */
static int make_room(struct cap_reorder *r, uint64_t seq)
{
    uint64_t new_next = seq - r->capacity + 1;
    while (r->next_seq < new_next && window_held(r) > 0) {
        struct cap_reorder_slot *slot = window_slot(r, r->next_seq);
        if (!slot->used) {
            r->stats.lost++;
            r->lost_pending++;
            pass_next(r, false);
            continue;
        }
        if (r->ready_count == r->capacity)
            return CAP_ELIMIT;
        struct cap_reorder_slot *ready = ready_slot(r, r->ready_count);
        *ready = *slot;
        ready->lost_before = r->lost_pending;
        r->lost_pending = 0;
        r->ready_count++;
        slot->used = false;
        pass_next(r, true);
    }
    if (r->next_seq < new_next) {
        r->lost_pending += new_next - r->next_seq;
        give_up(r, new_next - r->next_seq);
    }
    return 0;
}

int cap_reorder_push(struct cap_reorder *r, uint64_t seq, int64_t arrival_ns, void *item)
{
    r->stats.received++;
    if (!r->started) {
        r->started = true;
        r->next_seq = seq;
        r->highest_seq = seq;
        r->first_arrival_ns = arrival_ns;
    } else if (seq < r->next_seq) {
        if (never_advanced(r) && r->highest_seq - seq < r->capacity) {
            r->next_seq = seq;
        } else if (r->next_seq - seq <= SEEN_SPAN && was_emitted(r, seq)) {
            r->stats.duplicated++;
            return CAP_EDUPLICATE;
        } else {
            /* Skipped, or too old for the bitmap to tell: either way its turn is gone. */
            r->stats.late++;
            return CAP_ELATE;
        }
    } else if (seq - r->next_seq >= r->capacity) {
        int rc = make_room(r, seq);
        if (rc < 0)
            return rc;
    }

    struct cap_reorder_slot *slot = window_slot(r, seq);
    if (slot->used) {
        r->stats.duplicated++;
        return CAP_EDUPLICATE;
    }
    slot->used = true;
    slot->seq = seq;
    slot->arrival_ns = arrival_ns;
    slot->item = item;
    r->held++;
    if (seq < r->highest_seq)
        r->stats.reordered++;
    else
        r->highest_seq = seq;
    return 0;
}

static bool waited_enough(int64_t arrival_ns, int64_t now_ns, int64_t delay_ns)
{
    /* Unsigned difference so that extreme clock values cannot overflow. */
    return now_ns >= arrival_ns && (uint64_t)now_ns - (uint64_t)arrival_ns >= (uint64_t)delay_ns;
}

static void fill_out(struct cap_reorder_out *out, const struct cap_reorder_slot *slot,
                     uint64_t lost_before)
{
    out->seq = slot->seq;
    out->arrival_ns = slot->arrival_ns;
    out->item = slot->item;
    out->lost_before = lost_before;
}

/* The one emit path of pop and flush; `force` gives up a hole without waiting. */
static int emit_next(struct cap_reorder *r, int64_t now_ns, bool force, struct cap_reorder_out *out)
{
    if (r->ready_count > 0) {
        struct cap_reorder_slot *ready = ready_slot(r, 0);
        fill_out(out, ready, ready->lost_before);
        ready->used = false;
        r->ready_head = (r->ready_head + 1) & (r->capacity - 1);
        r->ready_count--;
        r->held--;
        r->stats.emitted++;
        return 1;
    }
    if (window_held(r) == 0)
        return 0;
    /* The first packet to arrive need not be the first sent: until it has waited as long
     * as a hole would, the start of the stream may still move down. */
    if (!force && r->hold_start && never_advanced(r) && window_held(r) < r->capacity &&
        !waited_enough(r->first_arrival_ns, now_ns, r->max_delay_ns))
        return 0;

    uint64_t skipped = 0;
    if (!window_slot(r, r->next_seq)->used) {
        /* A hole: find the first packet after it, and whether any held packet has waited
         * long enough for the hole to be given up. */
        uint64_t first = 0;
        bool found = false;
        bool expired = force;
        for (uint64_t seq = r->next_seq + 1; seq <= r->highest_seq; seq++) {
            const struct cap_reorder_slot *slot = window_slot(r, seq);
            if (!slot->used)
                continue;
            if (!found) {
                first = seq;
                found = true;
            }
            if (!expired)
                expired = waited_enough(slot->arrival_ns, now_ns, r->max_delay_ns);
            if (expired)
                break;
        }
        if (!found || !expired)
            return 0;
        skipped = first - r->next_seq;
        give_up(r, skipped);
    }

    struct cap_reorder_slot *slot = window_slot(r, r->next_seq);
    fill_out(out, slot, skipped + r->lost_pending);
    r->lost_pending = 0;
    slot->used = false;
    r->held--;
    r->stats.emitted++;
    pass_next(r, true);
    return 1;
}

int cap_reorder_pop(struct cap_reorder *r, int64_t now_ns, struct cap_reorder_out *out)
{
    return emit_next(r, now_ns, false, out);
}

int cap_reorder_flush(struct cap_reorder *r, struct cap_reorder_out *out)
{
    return emit_next(r, 0, true, out);
}
