/* Track sources (source.h). Pass 1 reads every record once for the clock; pass 2 rewinds
 * the same reader (which then skips the checksums pass 1 already verified) and reads them
 * again through the reorder buffer into the depacketizer, one ordered packet at a time,
 * and maps each frame's timestamp. A packet that the reorder buffer hands straight back
 * (the usual case: it arrived in order) goes to the depacketizer from the reader's own
 * buffer; only one that has to wait is copied out, into storage that is reused. */
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

/* A packet in the reorder buffer: the reader's bytes while they are valid, else a copy. */
struct held_packet {
    const uint8_t *data;
    uint32_t len;
    int64_t arrival;
    bool in_reorder;               /* pushed and not emitted yet */
    uint8_t *storage;              /* the copy, when it had to wait */
    size_t storage_cap;
    struct held_packet *next_free;
};

struct cap_track_source {
    struct cap_source_options opt;
    struct cap_track_info info;
    struct cap_track_clock *clock;
    struct cap_track_reader *reader;
    struct cap_reorder reorder;
    struct cap_seq_state seq;
    struct cap_depacketizer *depay;
    bool draining;                    /* records ended: flush reorder, then depacketizer */
    bool flushed;
    struct cap_source_stats stats;
    uint32_t current_ssrc;            /* of the packet last given to the depacketizer */
    bool have_current;
    struct held_packet *free_packets;
    /* Packets leave the reorder buffer one per fill(), so the depacketizer's two-frame queue
     * is emptied between them (a hole filled late can release many frames at once). */
    bool may_pop;
    int64_t pop_now_ns;               /* arrival of the packet pushed last */
    struct held_packet *last_pushed;  /* its bytes are the reader's until its next call */
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
    struct cap_track_reader *r = s->reader;
    struct cap_track_clock_config cfg = {.clock_rate = s->info.clock_rate ? s->info.clock_rate : 90000,
                                         .time_zero_ns = s->opt.time_zero_ns};
    int err = cap_track_clock_new(&s->clock, &cfg);
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
    if (!err)
        err = cap_track_rewind(r);
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
    s->opt = *opt;
    if (!s->opt.reorder_packets)
        s->opt.reorder_packets = 512;
    if (!s->opt.reorder_ns)
        s->opt.reorder_ns = 500 * 1000000LL;
    s->stats.first_keyframe_pts_ns = -1;
    int err = cap_track_open(&s->reader, track_dir);
    if (!err)
        s->info = *cap_track_info(s->reader);
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
        cap_reorder_hold_start(&s->reorder, true);
    if (!err)
        err = pass_one(s);
    if (err) {
        cap_track_source_close(s);
        return err;
    }
    cap_seq_init(&s->seq);
    *out = s;
    return 0;
}

static void free_packet(struct held_packet *p)
{
    free(p->storage);
    free(p);
}

void cap_track_source_close(struct cap_track_source *s)
{
    if (!s)
        return;
    struct cap_reorder_out o;
    if (s->reorder.slots) {
        while (cap_reorder_flush(&s->reorder, &o) == 1)
            free_packet(o.item);
        cap_reorder_deinit(&s->reorder);
    }
    while (s->free_packets) {
        struct held_packet *next = s->free_packets->next_free;
        free_packet(s->free_packets);
        s->free_packets = next;
    }
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

static struct held_packet *take_packet(struct cap_track_source *s)
{
    struct held_packet *p = s->free_packets;
    if (p) {
        s->free_packets = p->next_free;
        return p;
    }
    return calloc(1, sizeof(*p));
}

static void give_back_packet(struct cap_track_source *s, struct held_packet *p)
{
    p->in_reorder = false;
    p->next_free = s->free_packets;
    s->free_packets = p;
}

/* The packet waits in the reorder buffer past the reader's next call: copy its bytes. */
static int keep_packet(struct held_packet *p)
{
    if (p->len > p->storage_cap) {
        uint8_t *grown = realloc(p->storage, p->len);
        if (!grown)
            return CAP_ENOMEM;
        p->storage = grown;
        p->storage_cap = p->len;
    }
    memcpy(p->storage, p->data, p->len);
    p->data = p->storage;
    return 0;
}

/* Gives one ordered packet to the depacketizer, which copies what it keeps. */
static void depacketize(struct cap_track_source *s, const struct cap_reorder_out *o)
{
    struct held_packet *p = o->item;
    s->current_ssrc = cap_load_be32(p->data + 8);
    s->have_current = true;
    struct cap_rtp_packet pkt;
    if (cap_rtp_parse(p->data, p->len, &pkt) != 0)
        s->stats.malformed++;
    else if (cap_depacketizer_push(s->depay, &pkt, o->seq, p->arrival, o->lost_before) != 0)
        s->stats.malformed++;
    give_back_packet(s, p);
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
        if (s->may_pop) {
            if (cap_reorder_pop(&s->reorder, s->pop_now_ns, &o) == 1) {
                depacketize(s, &o);
                return 1;
            }
            s->may_pop = false;
        }
        /* The reader is about to reuse its buffer: a packet still waiting keeps a copy. */
        if (s->last_pushed) {
            if (s->last_pushed->in_reorder && keep_packet(s->last_pushed) != 0)
                return CAP_ENOMEM;
            s->last_pushed = NULL;
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
        struct held_packet *p = take_packet(s);
        if (!p)
            return CAP_ENOMEM;
        p->data = rec.data;
        p->len = (uint32_t)rec.len;
        p->arrival = rec.arrival_ns;
        if (cap_reorder_push(&s->reorder, ext, rec.arrival_ns, p) != 0) {
            give_back_packet(s, p);
            continue;
        }
        p->in_reorder = true;
        s->last_pushed = p;
        s->may_pop = true;
        s->pop_now_ns = rec.arrival_ns;
    }
}

int cap_track_source_next(struct cap_track_source *s, struct cap_media_frame *out)
{
    for (;;) {
        if (cap_depacketizer_pop(s->depay, &out->frame) == 1) {
            s->stats.frames++;
            if (out->frame.keyframe)
                s->stats.keyframes++;
            out->ssrc = s->have_current ? s->current_ssrc : s->info.ssrc;
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

void cap_track_source_take_frame(struct cap_track_source *s, struct cap_buf *buf)
{
    cap_depacketizer_take_frame(s->depay, buf);
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
