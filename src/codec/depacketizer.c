/* The generic frame assembler (depay.h): frames end at a packet the codec says ends one,
 * or when the RTP timestamp changes; loss inside a frame, a missing start or a malformed
 * payload make it incomplete. Finished frames wait in a two-slot queue (a packet can end
 * one frame and, alone, make the next) and are handed out without copying. */
#include "codec/depay.h"

#include "capstan/error.h"

#include <stdlib.h>
#include <string.h>

struct slot {
    struct cap_buf buf;
    struct cap_frame meta;
};

struct cap_depacketizer {
    const struct cap_depay_ops *ops;
    void *priv;
    struct cap_buf cur;           /* the frame being built */
    struct cap_frame meta;
    bool in_frame;
    bool started;                 /* its first packet said it starts the frame */
    bool damaged;                 /* loss inside it, or a malformed packet */
    bool loss_pending;            /* loss since the last frame was finished */
    struct slot ready[2];
    unsigned ready_head, ready_count;
    struct cap_depacketizer_stats stats;
};

int cap_depacketizer_new(struct cap_depacketizer **out, const struct cap_depay_ops *ops,
                         const struct cap_codec_params *params)
{
    if (!ops)
        return CAP_EINVAL;
    struct cap_depacketizer *d = calloc(1, sizeof(*d));
    if (!d)
        return CAP_ENOMEM;
    d->ops = ops;
    d->priv = calloc(1, ops->priv_size ? ops->priv_size : 1);
    if (!d->priv) {
        free(d);
        return CAP_ENOMEM;
    }
    cap_buf_init(&d->cur, CAP_FRAME_MAX);
    for (int i = 0; i < 2; i++)
        cap_buf_init(&d->ready[i].buf, CAP_FRAME_MAX);
    int err = ops->init ? ops->init(d->priv, params) : 0;
    if (err) {
        cap_depacketizer_free(d);
        return err;
    }
    *out = d;
    return 0;
}

void cap_depacketizer_free(struct cap_depacketizer *d)
{
    if (!d)
        return;
    if (d->ops->deinit)
        d->ops->deinit(d->priv);
    free(d->priv);
    cap_buf_deinit(&d->cur);
    for (int i = 0; i < 2; i++)
        cap_buf_deinit(&d->ready[i].buf);
    free(d);
}

/* Ends the frame in progress. ended: its last packet said so. */
static void finish_frame(struct cap_depacketizer *d, bool ended, bool loss_at_end)
{
    struct cap_frame *meta = &d->meta;
    meta->complete = d->started && !d->damaged && (ended || !loss_at_end);
    int err = d->ops->finish ? d->ops->finish(d->priv, &d->cur, meta) : 0;
    if (!meta->complete && d->ops->reset)
        d->ops->reset(d->priv);
    d->in_frame = false;
    if (!meta->complete)
        d->stats.incomplete_frames++;
    if (err || d->cur.len == 0 || d->ready_count == 2) {
        /* Nothing of this frame goes out: the next one must say that something before it
         * is missing, or a sink would decode it against a frame it never had. */
        if (err || !meta->complete || d->ready_count == 2)
            d->loss_pending = true;
        cap_buf_reset(&d->cur);
        return;
    }
    /* Hand the buffer over by swapping: no copy. */
    struct slot *s = &d->ready[(d->ready_head + d->ready_count) % 2];
    struct cap_buf spare = s->buf;
    s->buf = d->cur;
    d->cur = spare;
    cap_buf_reset(&d->cur);
    meta->data = s->buf.data;
    meta->len = s->buf.len;
    s->meta = *meta;
    d->ready_count++;
    d->stats.frames++;
}

int cap_depacketizer_push(struct cap_depacketizer *d, const struct cap_rtp_packet *pkt,
                          uint64_t ext_seq, int64_t arrival_ns, uint64_t lost_before)
{
    d->stats.packets++;
    /* A packet of padding only (RFC 3550 allows it; senders probe bandwidth with them)
     * carries nothing of any frame: codecs never see it. */
    if (pkt->payload_len == 0) {
        d->stats.empty_packets++;
        if (lost_before)
            d->loss_pending = true;
        return 0;
    }
    if (lost_before) {
        d->loss_pending = true;
        if (d->in_frame && pkt->timestamp == d->meta.timestamp)
            d->damaged = true; /* lost from the middle of this frame */
    }
    if (d->in_frame && pkt->timestamp != d->meta.timestamp)
        finish_frame(d, false, lost_before > 0);
    if (!d->in_frame) {
        memset(&d->meta, 0, sizeof(d->meta));
        d->meta.timestamp = pkt->timestamp;
        d->meta.arrival_ns = arrival_ns;
        d->meta.first_seq = ext_seq;
        d->meta.after_loss = d->loss_pending;
        d->loss_pending = false;
        d->in_frame = true;
        d->damaged = false;
        d->started = false;
        cap_buf_reset(&d->cur);
    }
    struct cap_depay_packet_info info = {0};
    int err = d->ops->packet(d->priv, pkt, &d->cur, &info);
    if (err) {
        d->stats.malformed_packets++;
        d->damaged = true;
    }
    if (d->meta.packets == 0)
        d->started = !err && info.starts_frame;
    d->meta.packets++;
    d->meta.last_seq = ext_seq;
    if (!err && info.ends_frame)
        finish_frame(d, true, false);
    return err ? CAP_EFORMAT : 0;
}

void cap_depacketizer_flush(struct cap_depacketizer *d)
{
    /* The stream ended before the frame's end packet: nothing shows it was not lost. */
    if (d->in_frame)
        finish_frame(d, false, true);
}

int cap_depacketizer_pop(struct cap_depacketizer *d, struct cap_frame *frame)
{
    if (!d->ready_count)
        return 0;
    *frame = d->ready[d->ready_head].meta;
    d->ready_head = (d->ready_head + 1) % 2;
    d->ready_count--;
    return 1;
}

void cap_depacketizer_take_frame(struct cap_depacketizer *d, struct cap_buf *buf)
{
    /* pop moved the head past the slot it handed out */
    struct slot *s = &d->ready[(d->ready_head + 1) % 2];
    struct cap_buf frame = s->buf;
    s->buf = *buf;
    cap_buf_reset(&s->buf);
    *buf = frame;
}

const struct cap_depacketizer_stats *cap_depacketizer_stats(const struct cap_depacketizer *d)
{
    return &d->stats;
}
