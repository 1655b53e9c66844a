/* Track inspection (inspect.h): one pass over a track's records. */
#include "track/inspect.h"

#include "rtp/reorder.h"
#include "rtp/rtp.h"
#include "rtp/seq.h"

#include <string.h>

int cap_track_inspect(const char *track_dir, struct cap_track_report *out)
{
    memset(out, 0, sizeof(*out));
    struct cap_track_reader *reader;
    int err = cap_track_open(&reader, track_dir);
    if (err)
        return err;
    out->info = *cap_track_info(reader);
    out->chunks = cap_track_chunk_count(reader);

    struct cap_reorder reorder;
    err = cap_reorder_init(&reorder, CAP_INSPECT_REORDER_PACKETS, CAP_INSPECT_REORDER_NS);
    if (err) {
        cap_track_close(reader);
        return err;
    }
    cap_reorder_hold_start(&reorder, true);
    struct cap_seq_state seq;
    cap_seq_init(&seq);
    struct cap_reorder_out popped;
    bool any = false;
    for (;;) {
        struct cap_record rec;
        int got = cap_track_next(reader, &rec);
        if (got == CAP_ECHECKSUM) {
            out->damaged_records++;
            continue;
        }
        if (got == CAP_ETRUNC) {
            out->torn_tail = true;
            continue;
        }
        if (got < 0) {
            err = got;
            break;
        }
        if (got == 0)
            break;
        if (!any)
            out->first_arrival_ns = rec.arrival_ns;
        any = true;
        out->last_arrival_ns = rec.arrival_ns;
        if (rec.type == CAP_RECORD_RTCP) {
            out->rtcp_packets++;
            continue;
        }
        if (rec.type != CAP_RECORD_RTP) {
            out->events++;
            continue;
        }
        out->rtp_packets++;
        out->rtp_bytes += rec.len;
        struct cap_rtp_packet pkt;
        if (cap_rtp_parse(rec.data, rec.len, &pkt) != 0)
            continue;
        uint64_t ext;
        enum cap_seq_verdict v = cap_seq_update(&seq, pkt.sequence, &ext);
        if (v == CAP_SEQ_BAD)
            continue;
        if (v == CAP_SEQ_RESTARTED)
            out->seq_restarts++;
        /* Only the order matters here, so the item is a dummy non-NULL pointer. */
        cap_reorder_push(&reorder, ext, rec.arrival_ns, &reorder);
        while (cap_reorder_pop(&reorder, rec.arrival_ns, &popped) == 1) {
        }
    }
    while (cap_reorder_flush(&reorder, &popped) == 1) {
    }
    out->duplicated = reorder.stats.duplicated;
    out->reordered = reorder.stats.reordered;
    out->late = reorder.stats.late;
    out->lost = reorder.stats.lost >= reorder.stats.late ? reorder.stats.lost - reorder.stats.late : 0;
    cap_reorder_deinit(&reorder);
    cap_track_close(reader);
    return err;
}
