/* Compose's audio tracks (compose_tracks.h): each decoded, resampled to the mix's rate
 * (stereo float) and placed on the mix's timeline at its own time, jitter absorbed, gaps
 * left silent; and the senders' own RFC 6464 audio levels, read from the packets' header
 * extensions for speaker detection. */
#include "media/compose_tracks.h"

#include "capstan/error.h"
#include "rtp/rtp.h"
#include "util/clock.h"

#include <libavutil/channel_layout.h>
#include <libavutil/mathematics.h>
#include <stdlib.h>
#include <string.h>

#define AUDIO_SNAP_NS (60 * CAP_NS_PER_MS)       /* closer than this to the end: contiguous */
#define AUDIO_BUFFER_MAX_NS (10 * CAP_NS_PER_SEC) /* one track's buffered samples, at most */

/* ---- RFC 6464 levels out of the raw packets ---- */

static int level_table_init(struct cap_level_table *t, size_t entries)
{
    size_t size = 16;
    while (size < entries * 2)
        size *= 2;
    t->keys = malloc(size * sizeof(*t->keys));
    t->levels = malloc(size);
    if (!t->keys || !t->levels)
        return CAP_ENOMEM;
    memset(t->levels, 0xff, size);
    t->mask = size - 1;
    return 0;
}

static void level_table_free(struct cap_level_table *t)
{
    free(t->keys);
    free(t->levels);
    memset(t, 0, sizeof(*t));
}

static void level_table_put(struct cap_level_table *t, uint32_t ts, uint8_t level)
{
    for (size_t i = (ts * 2654435761u) & t->mask;; i = (i + 1) & t->mask) {
        if (t->levels[i] == 0xff || t->keys[i] == ts) {
            t->keys[i] = ts;
            t->levels[i] = level;
            return;
        }
    }
}

static int level_table_get(const struct cap_level_table *t, uint32_t ts)
{
    if (!t->levels)
        return -1;
    for (size_t i = (ts * 2654435761u) & t->mask;; i = (i + 1) & t->mask) {
        if (t->levels[i] == 0xff)
            return -1;
        if (t->keys[i] == ts)
            return t->levels[i];
    }
}

/* Which header extension id carries a one-byte element on (nearly) every packet: the
 * audio level (the only one-byte extension audio senders use). 0 if none. */
unsigned cap_compose_find_level_ext(const char *track_dir, size_t *packets)
{
    struct cap_track_reader *r;
    *packets = 0;
    if (cap_track_open(&r, track_dir) != 0)
        return 0;
    size_t seen[16] = {0}, total = 0;
    struct cap_record rec;
    int got;
    while ((got = cap_track_next(r, &rec)) != 0) {
        if (got < 0) {
            if (got == CAP_ECHECKSUM || got == CAP_ETRUNC)
                continue;
            break;
        }
        struct cap_rtp_packet pkt;
        if (rec.type != CAP_RECORD_RTP || cap_rtp_parse(rec.data, rec.len, &pkt) != 0)
            continue;
        total++;
        size_t off = 0;
        struct cap_rtp_ext_element e;
        bool counted[16] = {false};
        while (pkt.extension && cap_rtp_ext_next(&pkt, &off, &e) == 1)
            if (e.id < 16 && e.len == 1 && !counted[e.id]) {
                counted[e.id] = true;
                seen[e.id]++;
            }
    }
    cap_track_close(r);
    *packets = total;
    unsigned best = 0;
    for (unsigned id = 1; id < 15; id++)
        if (seen[id] > seen[best])
            best = id;
    return total >= 10 && seen[best] * 10 >= total * 9 ? best : 0;
}

int cap_compose_load_levels(struct cap_compose_audio *at, const char *track_dir, unsigned id, size_t packets)
{
    int err = level_table_init(&at->levels, packets);
    if (err)
        return err;
    struct cap_track_reader *r;
    if ((err = cap_track_open(&r, track_dir)) != 0)
        return err;
    struct cap_record rec;
    int got;
    while ((got = cap_track_next(r, &rec)) != 0) {
        if (got < 0)
            continue;
        struct cap_rtp_packet pkt;
        struct cap_rtp_ext_element e;
        if (rec.type == CAP_RECORD_RTP && cap_rtp_parse(rec.data, rec.len, &pkt) == 0 && pkt.extension &&
            cap_rtp_ext_find(&pkt, (uint8_t)id, &e) == 1 && e.len == 1)
            level_table_put(&at->levels, pkt.timestamp, e.data[0] & 0x7f);
    }
    cap_track_close(r);
    return 0;
}

/* ---- audio tracks ---- */

static int reserve_planes(float **planes, size_t *cap, size_t need, size_t max)
{
    if (need <= *cap)
        return 0;
    if (need > max)
        return CAP_ELIMIT;
    size_t grown = *cap ? *cap : 4096;
    while (grown < need)
        grown *= 2;
    if (grown > max)
        grown = max;
    for (int ch = 0; ch < CAP_MIX_CHANNELS; ch++) {
        float *p = realloc(planes[ch], grown * sizeof(float));
        if (!p)
            return CAP_ENOMEM;
        planes[ch] = p;
    }
    *cap = grown;
    return 0;
}

static size_t buffer_max(const struct cap_compose_audio *at)
{
    return (size_t)((int64_t)at->rate * AUDIO_BUFFER_MAX_NS / CAP_NS_PER_SEC);
}

static int64_t samples_at(const struct cap_compose_audio *at, int64_t ns)
{
    return av_rescale(ns, at->rate, CAP_NS_PER_SEC);
}

/* Resamples one decoded frame onto the end of the pending samples. */
static int audio_convert(struct cap_compose_audio *at)
{
    AVFrame *f = at->frame;
    if (!at->swr) {
        AVChannelLayout stereo = AV_CHANNEL_LAYOUT_STEREO;
        int rc = swr_alloc_set_opts2(&at->swr, &stereo, AV_SAMPLE_FMT_FLTP, (int)at->rate, &f->ch_layout,
                                     (enum AVSampleFormat)f->format, f->sample_rate, 0, NULL);
        if (rc < 0 || swr_init(at->swr) < 0)
            return CAP_EUNSUPPORTED;
    }
    int room = swr_get_out_samples(at->swr, f->nb_samples);
    if (room < 0)
        return CAP_EFORMAT;
    int err = reserve_planes(at->pend, &at->pend_cap, at->pend_len + (size_t)room, buffer_max(at));
    if (err)
        return err;
    uint8_t *dst[CAP_MIX_CHANNELS];
    for (int ch = 0; ch < CAP_MIX_CHANNELS; ch++)
        dst[ch] = (uint8_t *)(at->pend[ch] + at->pend_len);
    int n = swr_convert(at->swr, dst, room, (const uint8_t **)f->extended_data, f->nb_samples);
    if (n < 0)
        return CAP_EFORMAT;
    at->pend_len += (size_t)n;
    return 0;
}

/* Reads (and decodes) the next frame into the pending slot. 1 with one, 0 at the end. */
static int audio_next(struct cap_compose_audio *at)
{
    struct cap_media_frame mf;
    for (;;) {
        int got = cap_track_source_next(at->src, &mf);
        if (got <= 0)
            return got;
        const struct cap_frame *f = &mf.frame;
        if (!f->complete || f->len == 0)
            continue;
        if (at->report->start_ns < 0)
            at->report->start_ns = mf.pts_ns;
        at->report->end_ns = mf.pts_ns;
        at->pend_pos = samples_at(at, mf.pts_ns);
        at->pend_level = level_table_get(&at->levels, f->timestamp);
        at->pend_len = 0;
        at->report->frames_decoded++;
        if (!at->decode) {
            at->has_pend = true;
            return 1;
        }
        if (cap_compose_padded_packet(&at->packet_buf, &at->packet_cap, at->pkt, f) != 0)
            return CAP_ENOMEM;
        at->pkt->pts = at->pkt->dts = mf.pts_ns;
        int rc = avcodec_send_packet(at->dec, at->pkt);
        at->pkt->data = NULL;
        at->pkt->size = 0;
        if (rc < 0) {
            at->report->decode_errors++;
            continue;
        }
        while ((rc = avcodec_receive_frame(at->dec, at->frame)) == 0) {
            int err = audio_convert(at);
            av_frame_unref(at->frame);
            if (err)
                return err;
        }
        if (rc != AVERROR(EAGAIN) && rc != AVERROR_EOF)
            at->report->decode_errors++;
        if (at->pend_len > 0) {
            at->has_pend = true;
            return 1;
        }
    }
}

static int buffer_append(struct cap_compose_audio *at, float *const *src, size_t n)
{
    int err = reserve_planes(at->buf, &at->buf_cap, at->len + n, buffer_max(at));
    if (err)
        return err;
    for (int ch = 0; ch < CAP_MIX_CHANNELS; ch++) {
        if (src)
            memcpy(at->buf[ch] + at->len, src[ch], n * sizeof(float));
        else
            memset(at->buf[ch] + at->len, 0, n * sizeof(float));
    }
    at->len += n;
    return 0;
}

/* Where the pending frame goes: right after the track's previous frame when it is that
 * close (jitter is not a gap), else at its own time. */
static int64_t pending_target(const struct cap_compose_audio *at)
{
    int64_t snap = samples_at(at, AUDIO_SNAP_NS);
    if (at->next_pos >= 0 && at->pend_pos - at->next_pos <= snap && at->next_pos - at->pend_pos <= snap)
        return at->next_pos;
    return at->pend_pos;
}

/* Places the pending frame at its target, silence before it if there is a gap; what would
 * land before the buffered end (already mixed, or a step back in time) is cut off. */
static int place_pending(struct cap_compose_audio *at)
{
    int64_t target = pending_target(at);
    int64_t end = at->pos + (int64_t)at->len;
    int err = 0;
    if (at->len == 0 && target > end) {
        at->pos = target;
        end = target;
    } else if (target > end) {
        err = buffer_append(at, NULL, (size_t)(target - end));
        end = target;
    }
    size_t skip = (size_t)(end - target);
    if (!err && skip < at->pend_len) {
        float *from[CAP_MIX_CHANNELS];
        for (int ch = 0; ch < CAP_MIX_CHANNELS; ch++)
            from[ch] = at->pend[ch] + skip;
        err = buffer_append(at, from, at->pend_len - skip);
    }
    at->next_pos = target + (int64_t)at->pend_len;
    if (at->pend_level >= 0) {
        at->level = at->pend_level;
        at->level_pos = at->pend_pos;
    }
    at->has_pend = false;
    at->pend_len = 0;
    return err;
}

/* Makes the track's samples reach need_end, or says (by stopping short) that it is silent
 * until then. */
int cap_compose_audio_fill(struct cap_compose_audio *at, int64_t need_end)
{
    for (;;) {
        if (at->pos + (int64_t)at->len >= need_end)
            return 0;
        if (!at->has_pend) {
            if (at->done)
                return 0;
            int rc = audio_next(at);
            if (rc < 0)
                return rc;
            if (rc == 0) {
                at->done = true;
                return 0;
            }
        }
        if (!at->decode) {
            /* Levels only: no samples, the frame just happened. */
            if (at->pend_pos >= need_end)
                return 0;
            if (at->pend_level >= 0) {
                at->level = at->pend_level;
                at->level_pos = at->pend_pos;
            }
            at->has_pend = false;
            continue;
        }
        if (pending_target(at) >= need_end)
            return 0; /* silent until past this block */
        int err = place_pending(at);
        if (err)
            return err;
    }
}

/* Drops what lies before `upto`. */
void cap_compose_audio_consume(struct cap_compose_audio *at, int64_t upto)
{
    if (upto <= at->pos)
        return;
    size_t drop = (size_t)(upto - at->pos);
    if (drop >= at->len) {
        at->len = 0;
    } else {
        for (int ch = 0; ch < CAP_MIX_CHANNELS; ch++)
            memmove(at->buf[ch], at->buf[ch] + drop, (at->len - drop) * sizeof(float));
        at->len -= drop;
    }
    at->pos = upto;
}

bool cap_compose_audio_exhausted(const struct cap_compose_audio *at, int64_t pos)
{
    return at->done && !at->has_pend && at->pos + (int64_t)at->len <= pos;
}


void cap_compose_levels_free(struct cap_compose_audio *at)
{
    level_table_free(&at->levels);
}

void cap_compose_audio_free(struct cap_compose_audio *at)
{
    avcodec_free_context(&at->dec);
    swr_free(&at->swr);
    av_packet_free(&at->pkt);
    av_frame_free(&at->frame);
    free(at->packet_buf);
    for (int ch = 0; ch < CAP_MIX_CHANNELS; ch++) {
        free(at->buf[ch]);
        free(at->pend[ch]);
        at->buf[ch] = at->pend[ch] = NULL;
    }
    level_table_free(&at->levels);
}
