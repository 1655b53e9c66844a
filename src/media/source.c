/* Track sources (source.h). Pass 1 reads every record once for the clock; pass 2 reads
 * them again through the reorder buffer (packets copied out of the reader, whose buffer
 * moves on) into the depacketizer, and maps each frame's timestamp. */
#include "media/source.h"

#include "rtp/reorder.h"
#include "rtp/rtcp.h"
#include "rtp/seq.h"
#include "track/pcap.h"
#include "util/bytes.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct packet_copy {
    uint32_t len;
    int64_t arrival;
    uint8_t data[];
};

struct cap_track_source {
    char dir[4096];
    struct cap_source_options opt;
    struct cap_track_info info;
    struct cap_track_clock *clock;
    struct cap_track_reader *reader;  /* pass 2 */
    struct cap_reorder reorder;
    struct cap_seq_state seq;
    struct cap_depacketizer *depay;
    bool draining;                    /* records ended: flush reorder, then depacketizer */
    bool flushed;
    struct cap_source_stats stats;
    struct packet_copy *current;      /* the packet whose frame is being handed out */
};

/* The CNAME of an SDES chunk for ssrc, if the compound has one. */
static void find_cname(const struct cap_rtcp_packet *pkts, int n, uint32_t ssrc, char *out, size_t size)
{
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (pkts[i].type != CAP_RTCP_SDES)
            continue;
        const uint8_t *p = pkts[i].data + 4, *end = pkts[i].data + pkts[i].len;
        for (unsigned chunk = 0; chunk < pkts[i].count && p + 4 <= end; chunk++) {
            uint32_t chunk_ssrc = cap_load_be32(p);
            p += 4;
            while (p < end && *p != 0) {
                if (p + 2 > end || p + 2 + p[1] > end)
                    return;
                if (p[0] == 1 && chunk_ssrc == ssrc) {
                    size_t n2 = p[1] < size - 1 ? p[1] : size - 1;
                    memcpy(out, p + 2, n2);
                    out[n2] = '\0';
                    return;
                }
                p += 2 + p[1];
            }
            /* null item, then padding to a 32-bit boundary */
            p++;
            while ((size_t)(p - pkts[i].data) % 4 && p < end)
                p++;
        }
    }
}

static int pass_one(struct cap_track_source *s)
{
    struct cap_track_reader *r;
    int err = cap_track_open(&r, s->dir);
    if (err)
        return err;
    struct cap_track_clock_config cfg = {.clock_rate = s->info.clock_rate ? s->info.clock_rate : 90000,
                                         .time_zero_ns = s->opt.time_zero_ns};
    err = cap_track_clock_new(&s->clock, &cfg);
    struct cap_record rec;
    int got;
    struct cap_rtcp_packet pkts[CAP_RTCP_MAX_PACKETS];
    while (!err && (got = cap_track_next(r, &rec)) != 0) {
        if (got < 0) {
            if (got == CAP_ECHECKSUM || got == CAP_ETRUNC) {
                s->stats.damaged_records++;
                continue;
            }
            err = got;
            break;
        }
        if (rec.type == CAP_RECORD_RTP && rec.len >= 12) {
            cap_track_clock_add_rtp(s->clock, cap_load_be32(rec.data + 8), cap_load_be32(rec.data + 4),
                                    rec.arrival_ns);
        } else if (rec.type == CAP_RECORD_RTCP) {
            int n = cap_rtcp_parse(rec.data, rec.len, pkts, CAP_RTCP_MAX_PACKETS);
            for (int i = 0; i < n; i++) {
                if (pkts[i].type != CAP_RTCP_SR)
                    continue;
                char cname[256];
                find_cname(pkts, n, pkts[i].ssrc, cname, sizeof(cname));
                cap_track_clock_add_sr(s->clock, pkts[i].ssrc, pkts[i].ntp, pkts[i].rtp_ts,
                                       rec.arrival_ns, cname);
            }
        }
    }
    cap_track_close(r);
    if (!err)
        cap_track_clock_finish(s->clock);
    return err;
}

int cap_track_source_open(struct cap_track_source **out, const char *track_dir,
                          const struct cap_source_options *opt)
{
    struct cap_track_source *s = calloc(1, sizeof(*s));
    if (!s)
        return CAP_ENOMEM;
    snprintf(s->dir, sizeof(s->dir), "%s", track_dir);
    s->opt = *opt;
    if (!s->opt.reorder_packets)
        s->opt.reorder_packets = 512;
    if (!s->opt.reorder_ns)
        s->opt.reorder_ns = 500 * 1000000LL;
    s->stats.first_keyframe_pts_ns = -1;
    struct cap_track_reader *r;
    int err = cap_track_open(&r, track_dir);
    if (!err) {
        s->info = *cap_track_info(r);
        cap_track_close(r);
    }
    const struct cap_depay_ops *ops = err ? NULL : cap_depay_find(s->info.codec);
    if (!err && !ops)
        err = CAP_EUNSUPPORTED;
    struct cap_codec_params params = {.clock_rate = s->info.clock_rate, .channels = s->info.channels,
                                      .fmtp = s->info.fmtp};
    if (!err)
        err = cap_depacketizer_new(&s->depay, ops, &params);
    if (!err)
        err = cap_reorder_init(&s->reorder, s->opt.reorder_packets, s->opt.reorder_ns);
    if (!err)
        err = pass_one(s);
    if (!err)
        err = cap_track_open(&s->reader, track_dir);
    if (err) {
        cap_track_source_close(s);
        return err;
    }
    cap_seq_init(&s->seq);
    *out = s;
    return 0;
}

void cap_track_source_close(struct cap_track_source *s)
{
    if (!s)
        return;
    struct cap_reorder_out o;
    if (s->reorder.slots) {
        while (cap_reorder_flush(&s->reorder, &o) == 1)
            free(o.item);
        cap_reorder_deinit(&s->reorder);
    }
    free(s->current);
    cap_depacketizer_free(s->depay);
    cap_track_clock_free(s->clock);
    cap_track_close(s->reader);
    free(s);
}

const struct cap_track_info *cap_track_source_info(const struct cap_track_source *s)
{
    return &s->info;
}

struct cap_track_clock *cap_track_source_clock(struct cap_track_source *s)
{
    return s->clock;
}

const struct cap_source_stats *cap_track_source_stats(struct cap_track_source *s)
{
    const struct cap_reorder_stats *r = &s->reorder.stats;
    s->stats.lost = r->lost >= r->late ? r->lost - r->late : 0;
    s->stats.late = r->late;
    s->stats.duplicated = r->duplicated;
    s->stats.reordered = r->reordered;
    s->stats.incomplete_frames = cap_depacketizer_stats(s->depay)->incomplete_frames;
    return &s->stats;
}

/* Gives one ordered packet to the depacketizer. */
static void depacketize(struct cap_track_source *s, const struct cap_reorder_out *o)
{
    struct packet_copy *pc = o->item;
    free(s->current);
    s->current = pc;
    struct cap_rtp_packet pkt;
    if (cap_rtp_parse(pc->data, pc->len, &pkt) != 0) {
        s->stats.malformed++;
        return;
    }
    if (cap_depacketizer_push(s->depay, &pkt, o->seq, pc->arrival, o->lost_before) != 0)
        s->stats.malformed++;
}

/* Moves packets along until the depacketizer has a frame or everything is read. */
static int fill(struct cap_track_source *s)
{
    struct cap_reorder_out o;
    struct cap_record rec;
    for (;;) {
        if (s->draining) {
            if (cap_reorder_flush(&s->reorder, &o) == 1) {
                depacketize(s, &o);
                return 1;
            }
            if (!s->flushed) {
                s->flushed = true;
                cap_depacketizer_flush(s->depay);
                return 1;
            }
            return 0;
        }
        int got = cap_track_next(s->reader, &rec);
        if (got == CAP_ECHECKSUM || got == CAP_ETRUNC)
            continue;
        if (got < 0)
            return got;
        if (got == 0) {
            s->draining = true;
            continue;
        }
        if (rec.type == CAP_RECORD_RTCP) {
            s->stats.rtcp_packets++;
            continue;
        }
        if (rec.type != CAP_RECORD_RTP)
            continue;
        s->stats.rtp_packets++;
        if (rec.len < 12) {
            s->stats.malformed++;
            continue;
        }
        uint64_t ext;
        if (cap_seq_update(&s->seq, cap_load_be16(rec.data + 2), &ext) == CAP_SEQ_BAD)
            continue;
        struct packet_copy *pc = malloc(sizeof(*pc) + rec.len);
        if (!pc)
            return CAP_ENOMEM;
        pc->len = (uint32_t)rec.len;
        pc->arrival = rec.arrival_ns;
        memcpy(pc->data, rec.data, rec.len);
        if (cap_reorder_push(&s->reorder, ext, rec.arrival_ns, pc) != 0) {
            free(pc);
            continue;
        }
        bool any = false;
        while (cap_reorder_pop(&s->reorder, rec.arrival_ns, &o) == 1) {
            depacketize(s, &o);
            any = true;
        }
        if (any)
            return 1;
    }
}

int cap_track_source_next(struct cap_track_source *s, struct cap_media_frame *out)
{
    for (;;) {
        if (cap_depacketizer_pop(s->depay, &out->frame) == 1) {
            s->stats.frames++;
            if (out->frame.keyframe)
                s->stats.keyframes++;
            out->ssrc = s->info.ssrc;
            if (s->current && s->current->len >= 12)
                out->ssrc = cap_load_be32(s->current->data + 8);
            out->pts_ns = cap_track_clock_map(s->clock, out->ssrc, out->frame.timestamp,
                                              out->frame.arrival_ns, &out->new_segment);
            /* Nothing is before the recording began (a first frame that was slow to arrive
             * can map a little earlier than the first arrival). */
            if (out->pts_ns < 0)
                out->pts_ns = 0;
            if (out->frame.keyframe && s->stats.first_keyframe_pts_ns < 0)
                s->stats.first_keyframe_pts_ns = out->pts_ns;
            return 1;
        }
        int more = fill(s);
        if (more <= 0)
            return more;
    }
}

void cap_sources_share_sender_offsets(struct cap_track_source **sources, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        struct cap_track_clock *c = sources[i]->clock;
        const char *cname = cap_track_clock_cname(c);
        if (!cap_track_clock_has_sr(c) || !*cname)
            continue;
        int64_t best = cap_track_clock_sender_offset(c);
        for (size_t k = 0; k < count; k++) {
            struct cap_track_clock *o = sources[k]->clock;
            if (cap_track_clock_has_sr(o) && strcmp(cap_track_clock_cname(o), cname) == 0 &&
                cap_track_clock_sender_offset(o) < best)
                best = cap_track_clock_sender_offset(o);
        }
        cap_track_clock_set_sender_offset(c, best);
    }
}

int64_t cap_recording_time_zero(const char *rec_dir)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/metadata.json", rec_dir);
    json_t *meta = json_load_file(path, 0, NULL);
    json_t *tz = json_object_get(json_object_get(meta, "recording"), "time_zero_ns");
    int64_t zero = json_is_integer(tz) ? (int64_t)json_integer_value(tz) : 0;
    json_decref(meta);
    if (zero)
        return zero;
    /* Else the earliest arrival of any track. */
    char **dirs = NULL;
    size_t count = 0;
    char *single[1] = {(char *)rec_dir};
    bool listed = cap_track_dirs_list(rec_dir, &dirs, &count) == 0;
    char **list = listed ? dirs : single;
    size_t n = listed ? count : 1;
    zero = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        struct cap_track_reader *r;
        if (cap_track_open(&r, list[i]) != 0)
            continue;
        struct cap_record rec;
        if (cap_track_next(r, &rec) == 1 && rec.arrival_ns < zero)
            zero = rec.arrival_ns;
        cap_track_close(r);
    }
    if (listed)
        cap_track_dirs_free(dirs, count);
    return zero == INT64_MAX ? 0 : zero;
}
