/* Compose's decoders, and its video tracks (compose_tracks.h): each track read through
 * its source and decoded on a thread of its own, a few pictures ahead of the canvas, handed
 * to the compose thread in time order through a small queue of reused frames. */
#include "media/compose_tracks.h"

#include "capstan/error.h"
#include "util/clock.h"

#include <libavutil/channel_layout.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *av_error(int err, char *buf, size_t size)
{
    av_strerror(err, buf, size);
    return buf;
}

static enum AVCodecID codec_id(const char *codec)
{
    static const struct {
        const char *name;
        enum AVCodecID id;
    } map[] = {
        {"vp8", AV_CODEC_ID_VP8},         {"vp9", AV_CODEC_ID_VP9},        {"av1", AV_CODEC_ID_AV1},
        {"h264", AV_CODEC_ID_H264},       {"h265", AV_CODEC_ID_HEVC},      {"opus", AV_CODEC_ID_OPUS},
        {"pcmu", AV_CODEC_ID_PCM_MULAW},  {"pcma", AV_CODEC_ID_PCM_ALAW},  {"g722", AV_CODEC_ID_ADPCM_G722},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].name, codec) == 0)
            return map[i].id;
    return AV_CODEC_ID_NONE;
}

int cap_compose_open_decoder(AVCodecContext **out, const struct cap_track_info *info, unsigned threads, char *why,
                        size_t why_size)
{
    enum AVCodecID id = codec_id(info->codec);
    const AVCodec *codec = id == AV_CODEC_ID_NONE ? NULL : avcodec_find_decoder(id);
    if (!codec) {
        snprintf(why, why_size, "no decoder for codec '%s'", info->codec);
        return CAP_EUNSUPPORTED;
    }
    AVCodecContext *ctx = avcodec_alloc_context3(codec);
    if (!ctx)
        return CAP_ENOMEM;
    ctx->pkt_timebase = (AVRational){1, (int)CAP_NS_PER_SEC};
    if (codec->type == AVMEDIA_TYPE_VIDEO) {
        ctx->thread_count = (int)threads;
        ctx->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    } else {
        unsigned channels = info->channels ? info->channels : (id == AV_CODEC_ID_OPUS ? 2 : 1);
        av_channel_layout_default(&ctx->ch_layout, (int)channels);
        ctx->sample_rate = id == AV_CODEC_ID_OPUS ? 48000 : id == AV_CODEC_ID_ADPCM_G722 ? 16000
                           : info->clock_rate                ? (int)info->clock_rate
                                                             : 8000;
        if (id == AV_CODEC_ID_OPUS) {
            /* An OpusHead with no pre-skip: RTP Opus starts at its first sample. */
            uint8_t *h = av_mallocz(19 + AV_INPUT_BUFFER_PADDING_SIZE);
            if (!h) {
                avcodec_free_context(&ctx);
                return CAP_ENOMEM;
            }
            memcpy(h, "OpusHead", 8);
            h[8] = 1;
            h[9] = (uint8_t)channels;
            h[12] = 0x80, h[13] = 0xbb; /* 48000, little endian */
            ctx->extradata = h;
            ctx->extradata_size = 19;
        }
    }
    int rc = avcodec_open2(ctx, codec, NULL);
    if (rc < 0) {
        char text[128];
        snprintf(why, why_size, "cannot open the %s decoder: %s", info->codec, av_error(rc, text, sizeof(text)));
        avcodec_free_context(&ctx);
        return CAP_EUNSUPPORTED;
    }
    *out = ctx;
    return 0;
}

/* The frame's bytes in a buffer with the zeroed padding decoders read past the end. */
int cap_compose_padded_packet(uint8_t **buf, size_t *cap, AVPacket *pkt, const struct cap_frame *f)
{
    size_t need = f->len + AV_INPUT_BUFFER_PADDING_SIZE;
    if (need > *cap) {
        size_t grown = *cap ? *cap : 65536;
        while (grown < need)
            grown *= 2;
        uint8_t *p = realloc(*buf, grown);
        if (!p)
            return CAP_ENOMEM;
        *buf = p;
        *cap = grown;
    }
    memcpy(*buf, f->data, f->len);
    memset(*buf + f->len, 0, AV_INPUT_BUFFER_PADDING_SIZE);
    av_packet_unref(pkt);
    pkt->data = *buf;
    pkt->size = (int)f->len;
    return 0;
}

/* ---- video tracks ---- */

/* Decodes the next picture into f (decoding thread). 1 with one, 0 at the end, negative
 * on a read error. */
static int video_decode_next(struct cap_compose_video *vt, AVFrame *f, int64_t *pts_out)
{
    struct cap_media_frame mf;
    for (;;) {
        int rc = avcodec_receive_frame(vt->dec, f);
        if (rc == 0) {
            int64_t pts = f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : f->pts;
            *pts_out = pts == AV_NOPTS_VALUE ? vt->last_pts + CAP_NS_PER_SEC / 30 : pts;
            vt->last_pts = *pts_out;
            vt->report->frames_decoded++;
            return 1;
        }
        if (rc == AVERROR_EOF)
            return 0;
        if (rc != AVERROR(EAGAIN)) {
            vt->report->decode_errors++;
            vt->waiting_key = true;
            continue;
        }
        if (vt->flushing)
            return 0; /* a decoder that never says EOF after a flush */
        int got = vt->src_done ? 0 : cap_track_source_next(vt->src, &mf);
        if (got < 0)
            return got;
        if (got == 0) {
            vt->src_done = true;
            vt->flushing = true;
            avcodec_send_packet(vt->dec, NULL);
            continue;
        }
        const struct cap_frame *fr = &mf.frame;
        /* After loss only a keyframe makes the picture right again. */
        if (fr->after_loss || !fr->complete)
            vt->waiting_key = true;
        if (!fr->complete || (vt->waiting_key && !fr->keyframe))
            continue;
        vt->waiting_key = false;
        if (vt->report->start_ns < 0)
            vt->report->start_ns = mf.pts_ns;
        vt->report->end_ns = mf.pts_ns;
        if (cap_compose_padded_packet(&vt->packet_buf, &vt->packet_cap, vt->pkt, fr) != 0)
            return CAP_ENOMEM;
        vt->pkt->pts = vt->pkt->dts = mf.pts_ns;
        vt->pkt->flags = fr->keyframe ? AV_PKT_FLAG_KEY : 0;
        rc = avcodec_send_packet(vt->dec, vt->pkt);
        vt->pkt->data = NULL;
        vt->pkt->size = 0;
        if (rc < 0 && rc != AVERROR(EAGAIN)) {
            vt->report->decode_errors++;
            vt->waiting_key = true;
        }
    }
}

/* The decoding thread: pictures into the queue until the track ends or compose stops. */
static void *video_thread(void *arg)
{
    struct cap_compose_video *vt = arg;
    for (;;) {
        pthread_mutex_lock(&vt->lock);
        while (!vt->stop && (vt->spare_count == 0 || vt->queue_count == CAP_COMPOSE_VIDEO_QUEUE))
            pthread_cond_wait(&vt->cond, &vt->lock);
        if (vt->stop) {
            pthread_mutex_unlock(&vt->lock);
            break;
        }
        AVFrame *f = vt->spare[--vt->spare_count];
        pthread_mutex_unlock(&vt->lock);
        int64_t pts = 0;
        int rc = video_decode_next(vt, f, &pts);
        pthread_mutex_lock(&vt->lock);
        if (rc <= 0) {
            vt->spare[vt->spare_count++] = f;
            vt->error = rc;
            vt->ended = true;
            pthread_cond_broadcast(&vt->cond);
            pthread_mutex_unlock(&vt->lock);
            break;
        }
        size_t slot = (vt->queue_head + vt->queue_count) % CAP_COMPOSE_VIDEO_QUEUE;
        vt->queue[slot] = f;
        vt->queue_pts[slot] = pts;
        vt->queue_count++;
        pthread_cond_broadcast(&vt->cond);
        pthread_mutex_unlock(&vt->lock);
    }
    return NULL;
}

int cap_compose_video_start(struct cap_compose_video *vt)
{
    for (size_t i = 0; i < CAP_COMPOSE_VIDEO_QUEUE + 1; i++) {
        if (!(vt->spare[i] = av_frame_alloc()))
            return CAP_ENOMEM;
        vt->spare_count++;
    }
    if (pthread_create(&vt->thread, NULL, video_thread, vt) != 0)
        return CAP_ENOMEM;
    vt->thread_started = true;
    return 0;
}

void cap_compose_video_stop(struct cap_compose_video *vt)
{
    if (vt->thread_started) {
        pthread_mutex_lock(&vt->lock);
        vt->stop = true;
        pthread_cond_broadcast(&vt->cond);
        pthread_mutex_unlock(&vt->lock);
        pthread_join(vt->thread, NULL);
        vt->thread_started = false;
    }
    for (size_t i = 0; i < vt->queue_count; i++)
        av_frame_free(&vt->queue[(vt->queue_head + i) % CAP_COMPOSE_VIDEO_QUEUE]);
    vt->queue_count = 0;
    for (size_t i = 0; i < vt->spare_count; i++)
        av_frame_free(&vt->spare[i]);
    vt->spare_count = 0;
}

/* Makes cur the latest picture at or before `until` (compose thread). */
int cap_compose_video_advance(struct cap_compose_video *vt, int64_t until)
{
    for (;;) {
        pthread_mutex_lock(&vt->lock);
        while (vt->queue_count == 0 && !vt->ended)
            pthread_cond_wait(&vt->cond, &vt->lock);
        if (vt->queue_count == 0) {
            vt->drained = true;
            int err = vt->error;
            pthread_mutex_unlock(&vt->lock);
            return err;
        }
        int64_t pts = vt->queue_pts[vt->queue_head];
        if (pts > until) {
            pthread_mutex_unlock(&vt->lock);
            return 0;
        }
        AVFrame *f = vt->queue[vt->queue_head];
        vt->queue_head = (vt->queue_head + 1) % CAP_COMPOSE_VIDEO_QUEUE;
        vt->queue_count--;
        AVFrame *old = vt->cur;
        if (old) {
            av_frame_unref(old);
            vt->spare[vt->spare_count++] = old;
        }
        pthread_cond_broadcast(&vt->cond);
        pthread_mutex_unlock(&vt->lock);
        vt->cur = f;
        if (vt->has_cur && pts > vt->cur_pts)
            vt->frame_ns = pts - vt->cur_pts;
        if (!vt->has_cur)
            vt->first_pts = pts;
        vt->cur_pts = pts;
        vt->has_cur = true;
        vt->serial++;
    }
}

bool cap_compose_video_exhausted(const struct cap_compose_video *vt)
{
    return vt->drained;
}

