/* What `capstan inspect` reports per track: counts, times, and the loss, duplication and
 * reordering seen in the RTP sequence numbers, counted by the same reorder buffer the
 * media pipeline uses. */
#ifndef CAP_TRACK_INSPECT_H
#define CAP_TRACK_INSPECT_H

#include "capstan/track.h"

#include <stdbool.h>
#include <stdint.h>

/* Reorder window used for the counts: a packet later than this is late, not reordered. */
#define CAP_INSPECT_REORDER_PACKETS 1024
#define CAP_INSPECT_REORDER_NS INT64_C(1000000000)

struct cap_track_report {
    struct cap_track_info info;
    unsigned chunks;
    uint64_t rtp_packets;
    uint64_t rtcp_packets;
    uint64_t events;
    uint64_t rtp_bytes;
    int64_t first_arrival_ns;   /* of any record */
    int64_t last_arrival_ns;
    uint64_t lost;              /* sequence numbers never received */
    uint64_t duplicated;
    uint64_t reordered;         /* arrived after a later packet, in time to be put back */
    uint64_t late;              /* arrived after the reorder window had given up on them */
    uint64_t seq_restarts;      /* sequence jumps treated as a sender restart */
    uint64_t damaged_records;   /* records whose checksum failed (skipped) */
    bool torn_tail;             /* a chunk ends inside a record (needs repair) */
};

int cap_track_inspect(const char *track_dir, struct cap_track_report *out);

#endif
