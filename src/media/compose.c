/* Compose (compose.h): one pass over the recording's timeline in output-frame steps. At
 * each video tick the audio mix runs ahead to the tick's end (deciding the active speaker
 * on the way), every video track is decoded up to the tick, the scene (who is shown where)
 * is worked out from the room's timeline, the Composition State and the speaker, and only
 * the tiles that changed are redrawn on the canvas before it goes to the encoder. */
#include "media/compose.h"

#include "capstan/error.h"
#include "media/compose_draw.h"
#include "media/compose_room.h"
#include "media/compose_tracks.h"
#include "media/layout.h"
#include "media/mix.h"
#include "media/source.h"
#include "media/speaker.h"
#include "media/thumbs.h"
#include "track/pcap.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/log.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/cpu.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MIX_CHANNELS CAP_MIX_CHANNELS
#define LEVEL_VALID_NS (100 * CAP_NS_PER_MS)     /* an RFC 6464 level stands this long */
#define CAMERA_STALE_NS (3 * CAP_NS_PER_SEC)     /* no new frame for this long: camera off */
#define SCREEN_STALE_NS (10 * CAP_NS_PER_SEC)    /* screens may sit still longer */
#define ENDED_HOLD_NS (200 * CAP_NS_PER_MS)      /* a track's last frame, after its end */
#define MAX_DURATION_NS (48 * 3600 * CAP_NS_PER_SEC)

struct peer {
    char peer_id[CAP_TRACK_ID_MAX];
    char name[CAP_TRACK_ID_MAX];
    int room_peer;                /* index in the room model, -1 if none */
    bool hidden;
    bool has_tracks;
    int64_t order;
    AVFrame *placeholder;
    uint64_t placeholder_serial;
    float level_db;               /* this audio block */
};

enum tile_kind { TILE_FRAME = 1, TILE_PLACEHOLDER };

struct tile {
    enum tile_kind kind;
    int source;                   /* video track (FRAME) or peer (PLACEHOLDER) */
    int peer;
    struct cap_rect cell, rect;
    uint64_t serial;
};

struct compose {
    const char *rec_dir;
    struct cap_compose_options opt;
    struct cap_compose_result *out;
    char *why;
    size_t why_size;
    struct cap_log_ctx log;
    struct cap_room_model room;
    struct cap_composition own_composition;
    const struct cap_composition *composition;
    enum cap_layout initial_layout;
    bool need_speaker;
    struct peer *peers;
    size_t peer_count;
    struct cap_compose_video *video;
    size_t video_count;
    struct cap_compose_audio *audio;
    size_t audio_count;
    struct cap_track_source **sources;
    size_t source_count;
    int64_t end_ns;               /* composed length if known in advance, else -1 */
    int64_t estimate_ns;          /* for progress */
    /* output */
    AVFormatContext *fmt;
    AVCodecContext *venc, *aenc;
    AVStream *vst, *ast;
    AVPacket *opkt;
    AVFrame *canvas;
    AVFrame *aframe;
    unsigned rate, block;
    float *mix[MIX_CHANNELS];
    int64_t mix_pos;              /* next sample to mix */
    struct cap_limiter limiter;
    struct cap_speaker_detector speaker;
    int speaker_peer;
    int64_t frame_index;
    struct tile *tiles, *prev_tiles;
    size_t tile_count, prev_count;
    struct cap_rect *cells;
    struct cap_thumbs *thumbs;
    bool placeholder_text_warned;
};

static int fail(struct compose *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct compose *c, int err, const char *fmt, ...)
{
    if (c->why && c->why_size && !c->why[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why, c->why_size, fmt, ap);
        va_end(ap);
    }
    return err;
}

static const char *av_error(int err, char *buf, size_t size)
{
    av_strerror(err, buf, size);
    return buf;
}

static int64_t samples_at(const struct compose *c, int64_t ns)
{
    return av_rescale(ns, c->rate, CAP_NS_PER_SEC);
}

/* ---- output ---- */

static const char *container_name(enum cap_compose_container k)
{
    switch (k) {
    case CAP_COMPOSE_WEBM:
        return "webm";
    case CAP_COMPOSE_M4A:
        return "m4a";
    case CAP_COMPOSE_OGG:
        return "ogg";
    default:
        return "mp4";
    }
}

static const char *muxer_name(enum cap_compose_container k)
{
    switch (k) {
    case CAP_COMPOSE_WEBM:
        return "webm";
    case CAP_COMPOSE_M4A:
        return "ipod";
    case CAP_COMPOSE_OGG:
        return "ogg";
    default:
        return "mp4";
    }
}

static int write_packets(struct compose *c, AVCodecContext *enc, AVStream *st)
{
    for (;;) {
        int rc = avcodec_receive_packet(enc, c->opkt);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return 0;
        if (rc < 0)
            return fail(c, CAP_EIO, "the %s encoder failed", enc->codec->name);
        av_packet_rescale_ts(c->opkt, enc->time_base, st->time_base);
        c->opkt->stream_index = st->index;
        rc = av_interleaved_write_frame(c->fmt, c->opkt);
        if (rc < 0) {
            char text[128];
            return fail(c, CAP_EIO, "cannot write %s: %s", c->opt.out_path, av_error(rc, text, sizeof(text)));
        }
    }
}

/* x264 preset -> libvpx deadline and cpu-used. */
static void vpx_speed(AVCodecContext *enc, const char *preset)
{
    static const char *const fast[] = {"ultrafast", "superfast", "veryfast", "faster"};
    bool quick = false;
    for (size_t i = 0; i < sizeof(fast) / sizeof(fast[0]); i++)
        if (strcmp(preset, fast[i]) == 0)
            quick = true;
    bool slow = strstr(preset, "slow") || strcmp(preset, "placebo") == 0;
    av_opt_set(enc->priv_data, "deadline", quick ? "realtime" : "good", 0);
    av_opt_set_int(enc->priv_data, "cpu-used", quick ? 8 : slow ? 1 : 3, 0);
}

static int open_video_encoder(struct compose *c)
{
    struct cap_compose_options *o = &c->opt;
    const char *name = o->video_codec == CAP_COMPOSE_VP8   ? "libvpx"
                       : o->video_codec == CAP_COMPOSE_VP9 ? "libvpx-vp9"
                                                           : "libx264";
    const AVCodec *codec = avcodec_find_encoder_by_name(name);
    if (!codec)
        return fail(c, CAP_EUNSUPPORTED, "no %s encoder in this FFmpeg build", name);
    AVCodecContext *enc = c->venc = avcodec_alloc_context3(codec);
    if (!enc)
        return CAP_ENOMEM;
    enc->width = (int)o->width;
    enc->height = (int)o->height;
    enc->time_base = (AVRational){1, (int)o->fps};
    enc->framerate = (AVRational){(int)o->fps, 1};
    enc->pix_fmt = AV_PIX_FMT_YUV420P;
    enc->thread_count = (int)o->threads;
    enc->color_range = AVCOL_RANGE_MPEG;
    char crf[16];
    snprintf(crf, sizeof(crf), "%d", o->crf);
    if (o->video_codec == CAP_COMPOSE_H264) {
        av_opt_set(enc->priv_data, "preset", o->preset, 0);
        if (o->video_bitrate > 0)
            enc->bit_rate = o->video_bitrate;
        else
            av_opt_set(enc->priv_data, "crf", crf, 0);
    } else {
        /* libvpx runs on one thread unless told otherwise. */
        if (!o->threads)
            enc->thread_count = av_cpu_count() < 16 ? av_cpu_count() : 16;
        vpx_speed(enc, o->preset);
        enc->gop_size = (int)o->fps * 4;
        if (o->video_bitrate > 0) {
            enc->bit_rate = o->video_bitrate;
        } else {
            av_opt_set(enc->priv_data, "crf", crf, 0);
            /* VP8's constant quality still needs a ceiling; VP9's works with none. */
            if (o->video_codec == CAP_COMPOSE_VP8)
                enc->bit_rate = (int64_t)o->width * o->height * o->fps / 8;
        }
        if (o->video_codec == CAP_COMPOSE_VP9)
            av_opt_set_int(enc->priv_data, "row-mt", 1, 0);
    }
    if (c->fmt->oformat->flags & AVFMT_GLOBALHEADER)
        enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int rc = avcodec_open2(enc, codec, NULL);
    if (rc < 0) {
        char text[128];
        return fail(c, CAP_EUNSUPPORTED, "cannot open the %s encoder (%s, preset %s): %s", name,
                    av_error(rc, text, sizeof(text)), o->preset, "check --preset and --video-bitrate");
    }
    c->vst = avformat_new_stream(c->fmt, NULL);
    if (!c->vst || avcodec_parameters_from_context(c->vst->codecpar, enc) < 0)
        return CAP_ENOMEM;
    c->vst->time_base = enc->time_base;
    c->vst->avg_frame_rate = enc->framerate;
    c->canvas = cap_canvas_new(enc->width, enc->height);
    return c->canvas ? 0 : CAP_ENOMEM;
}

static int open_audio_encoder(struct compose *c)
{
    bool opus = c->opt.container == CAP_COMPOSE_WEBM || c->opt.container == CAP_COMPOSE_OGG;
    const char *name = opus ? "libopus" : "aac";
    const AVCodec *codec = avcodec_find_encoder_by_name(name);
    if (!codec)
        return fail(c, CAP_EUNSUPPORTED, "no %s encoder in this FFmpeg build", name);
    AVCodecContext *enc = c->aenc = avcodec_alloc_context3(codec);
    if (!enc)
        return CAP_ENOMEM;
    enc->sample_rate = (int)c->rate;
    AVChannelLayout stereo = AV_CHANNEL_LAYOUT_STEREO;
    av_channel_layout_copy(&enc->ch_layout, &stereo);
    enc->bit_rate = c->opt.audio_bitrate;
    enc->time_base = (AVRational){1, (int)c->rate};
    enc->sample_fmt = AV_SAMPLE_FMT_NONE;
    for (const enum AVSampleFormat *f = codec->sample_fmts; f && *f != AV_SAMPLE_FMT_NONE; f++)
        if (*f == AV_SAMPLE_FMT_FLTP || *f == AV_SAMPLE_FMT_FLT)
            enc->sample_fmt = *f;
    if (enc->sample_fmt == AV_SAMPLE_FMT_NONE)
        return fail(c, CAP_EUNSUPPORTED, "the %s encoder takes no float samples", name);
    if (c->fmt->oformat->flags & AVFMT_GLOBALHEADER)
        enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int rc = avcodec_open2(enc, codec, NULL);
    if (rc < 0) {
        char text[128];
        return fail(c, CAP_EUNSUPPORTED, "cannot open the %s encoder at %u Hz: %s", name, c->rate,
                    av_error(rc, text, sizeof(text)));
    }
    c->ast = avformat_new_stream(c->fmt, NULL);
    if (!c->ast || avcodec_parameters_from_context(c->ast->codecpar, enc) < 0)
        return CAP_ENOMEM;
    c->ast->time_base = enc->time_base;
    c->block = enc->frame_size > 0 ? (unsigned)enc->frame_size : 1024;
    c->aframe = av_frame_alloc();
    if (!c->aframe)
        return CAP_ENOMEM;
    c->aframe->format = enc->sample_fmt;
    c->aframe->nb_samples = (int)c->block;
    c->aframe->sample_rate = enc->sample_rate;
    av_channel_layout_copy(&c->aframe->ch_layout, &stereo);
    return av_frame_get_buffer(c->aframe, 0) < 0 ? CAP_ENOMEM : 0;
}

static int open_output(struct compose *c)
{
    const char *path = c->opt.out_path;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        int err = cap_mkdir_p(dir);
        if (err)
            return fail(c, err, "%s: cannot create: %s", dir, cap_strerror(err));
    }
    const char *muxer = muxer_name(c->opt.container);
    if (avformat_alloc_output_context2(&c->fmt, NULL, muxer, path) < 0 || !c->fmt)
        return fail(c, CAP_EUNSUPPORTED, "no %s muxer in this FFmpeg build", muxer);
    int err = 0;
    if (c->opt.video)
        err = open_video_encoder(c);
    if (!err && c->opt.audio)
        err = open_audio_encoder(c);
    if (err)
        return err;
    if (!(c->fmt->oformat->flags & AVFMT_NOFILE) && avio_open(&c->fmt->pb, path, AVIO_FLAG_WRITE) < 0)
        return fail(c, CAP_EIO, "cannot create %s", path);
    AVDictionary *mux_opts = NULL;
    if (strcmp(muxer, "mp4") == 0 || strcmp(muxer, "ipod") == 0)
        av_dict_set(&mux_opts, "movflags", "+faststart", 0);
    int rc = avformat_write_header(c->fmt, &mux_opts);
    av_dict_free(&mux_opts);
    if (rc < 0) {
        char text[128];
        return fail(c, CAP_EIO, "cannot start %s: %s", path, av_error(rc, text, sizeof(text)));
    }
    c->opkt = av_packet_alloc();
    return c->opkt ? 0 : CAP_ENOMEM;
}

/* ---- audio blocks ---- */

static int encode_audio_block(struct compose *c, size_t n)
{
    AVFrame *f = c->aframe;
    if (av_frame_make_writable(f) < 0)
        return CAP_ENOMEM;
    f->nb_samples = (int)n;
    if (c->aenc->sample_fmt == AV_SAMPLE_FMT_FLTP) {
        for (int ch = 0; ch < MIX_CHANNELS; ch++)
            memcpy(f->data[ch], c->mix[ch], n * sizeof(float));
    } else {
        float *dst = (float *)f->data[0];
        for (size_t i = 0; i < n; i++)
            for (int ch = 0; ch < MIX_CHANNELS; ch++)
                dst[i * MIX_CHANNELS + (size_t)ch] = c->mix[ch][i];
    }
    f->pts = c->mix_pos;
    if (avcodec_send_frame(c->aenc, f) < 0)
        return fail(c, CAP_EIO, "the audio encoder refused a frame");
    c->out->audio_samples += n;
    return write_packets(c, c->aenc, c->ast);
}

/* Mixes [mix_pos, mix_pos + n), measures each peer's level, updates the speaker. */
static int mix_block(struct compose *c, size_t n)
{
    int64_t a = c->mix_pos, b = a + (int64_t)n;
    for (int ch = 0; ch < MIX_CHANNELS; ch++)
        memset(c->mix[ch], 0, n * sizeof(float));
    for (size_t i = 0; i < c->peer_count; i++)
        c->peers[i].level_db = CAP_MIX_SILENCE_DB;
    for (size_t i = 0; i < c->audio_count; i++) {
        struct cap_compose_audio *at = &c->audio[i];
        int err = cap_compose_audio_fill(at, b);
        if (err)
            return fail(c, err, "audio track %s: %s", at->report->track_id, cap_strerror(err));
        float level = CAP_MIX_SILENCE_DB;
        int64_t from = at->pos > a ? at->pos : a, to = at->pos + (int64_t)at->len < b ? at->pos + (int64_t)at->len : b;
        if (at->decode && to > from) {
            const float *planes[MIX_CHANNELS];
            for (int ch = 0; ch < MIX_CHANNELS; ch++) {
                planes[ch] = at->buf[ch] + (from - at->pos);
                if (!at->muted)
                    cap_mix_add(c->mix[ch] + (from - a), planes[ch], (size_t)(to - from));
            }
            level = cap_mix_rms_db(planes, MIX_CHANNELS, (size_t)(to - from));
        }
        /* The sender's own level, when it sent one, is the better judge. */
        if (c->opt.speaker_from == CAP_SPEAKER_AUDIO_LEVEL && !at->levels.levels) {
            level = CAP_MIX_SILENCE_DB;
        } else if (at->levels.levels) {
            bool recent = at->level >= 0 && b - at->level_pos <= samples_at(c, LEVEL_VALID_NS);
            level = recent ? -(float)at->level : CAP_MIX_SILENCE_DB;
        }
        if (at->decode)
            cap_compose_audio_consume(at, b);
        if (!at->muted && at->peer >= 0 && level > c->peers[at->peer].level_db)
            c->peers[at->peer].level_db = level;
    }
    if (c->need_speaker) {
        float levels[CAP_SPEAKER_MAX_PEERS];
        size_t count = c->peer_count < CAP_SPEAKER_MAX_PEERS ? c->peer_count : CAP_SPEAKER_MAX_PEERS;
        for (size_t i = 0; i < count; i++)
            levels[i] = c->peers[i].level_db;
        int64_t t_ns = av_rescale(b, CAP_NS_PER_SEC, c->rate);
        int before = c->speaker_peer;
        c->speaker_peer = cap_speaker_update(&c->speaker, t_ns, levels);
        if (c->speaker_peer != before && before >= 0)
            c->out->speaker_changes++;
    }
    int err = 0;
    if (c->aenc) {
        cap_limiter_run(&c->limiter, c->mix, MIX_CHANNELS, n);
        err = encode_audio_block(c, n);
    }
    c->mix_pos = b;
    return err;
}

/* Mixes every whole block that ends by `until` (samples). */
static int audio_advance(struct compose *c, int64_t until)
{
    if (!c->audio_count && !c->aenc)
        return 0;
    while (c->mix_pos + (int64_t)c->block <= until) {
        int err = mix_block(c, c->block);
        if (err)
            return err;
    }
    return 0;
}

/* ---- the scene ---- */

static bool peer_present(struct compose *c, size_t p, int64_t t)
{
    const struct peer *peer = &c->peers[p];
    if (peer->hidden)
        return false;
    if (peer->room_peer >= 0 && c->room.peers[peer->room_peer].has_presence)
        return cap_switches_at(&c->room.peers[peer->room_peer].present, t);
    /* No joins or leaves on the timeline: in the room while one of its tracks is. */
    for (size_t i = 0; i < c->video_count; i++)
        if (c->video[i].peer == (int)p &&
            cap_room_track_live(&c->room, c->video[i].room_track >= 0 ? &c->room.tracks[c->video[i].room_track] : NULL, t))
            return true;
    for (size_t i = 0; i < c->audio_count; i++)
        if (c->audio[i].peer == (int)p &&
            cap_room_track_live(&c->room, c->audio[i].room_track >= 0 ? &c->room.tracks[c->audio[i].room_track] : NULL, t))
            return true;
    return false;
}

/* Whether the track's current picture may be shown at t: live, not paused, not stale. */
static bool video_showable(struct compose *c, const struct cap_compose_video *vt, int64_t t)
{
    if (!vt->has_cur || vt->hidden)
        return false;
    const struct cap_room_track *rt = vt->room_track >= 0 ? &c->room.tracks[vt->room_track] : NULL;
    if (!cap_room_track_live(&c->room, rt, t))
        return false;
    int64_t age = t - vt->cur_pts;
    if (cap_compose_video_exhausted(vt))
        return age <= (vt->frame_ns > ENDED_HOLD_NS ? vt->frame_ns : ENDED_HOLD_NS);
    return age <= (vt->screen ? SCREEN_STALE_NS : CAMERA_STALE_NS);
}

static int camera_of(struct compose *c, size_t p, int64_t t)
{
    int best = -1;
    for (size_t i = 0; i < c->video_count; i++) {
        const struct cap_compose_video *vt = &c->video[i];
        if (vt->peer == (int)p && !vt->screen && video_showable(c, vt, t) &&
            (best < 0 || vt->cur_pts > c->video[best].cur_pts))
            best = (int)i;
    }
    return best;
}

static void add_peer_tile(struct compose *c, size_t p, int64_t t)
{
    struct tile *tl = &c->tiles[c->tile_count++];
    memset(tl, 0, sizeof(*tl));
    int cam = camera_of(c, p, t);
    tl->peer = (int)p;
    tl->kind = cam >= 0 ? TILE_FRAME : TILE_PLACEHOLDER;
    tl->source = cam >= 0 ? cam : (int)p;
}

static int find_peer_tile(const struct compose *c, int p)
{
    for (size_t i = 0; i < c->tile_count; i++)
        if (c->tiles[i].peer == p && !(c->tiles[i].kind == TILE_FRAME && c->video[c->tiles[i].source].screen))
            return (int)i;
    return -1;
}

static int find_peer(const struct compose *c, const char *peer_id)
{
    for (size_t i = 0; i < c->peer_count; i++)
        if (strcmp(c->peers[i].peer_id, peer_id) == 0)
            return (int)i;
    return -1;
}

/* Who is shown at t, and which tile is large (-1 for the grid). */
static int build_scene(struct compose *c, int64_t t)
{
    c->tile_count = 0;
    enum cap_layout layout;
    const char *pin;
    cap_composition_at(c->composition, c->initial_layout, t / CAP_NS_PER_MS, &layout, &pin);
    for (size_t p = 0; p < c->peer_count && c->tile_count < CAP_LAYOUT_MAX_TILES; p++)
        if (peer_present(c, p, t))
            add_peer_tile(c, p, t);
    int pinned = pin[0] ? find_peer(c, pin) : -1;
    if (pinned >= 0 && c->peers[pinned].hidden)
        pinned = -1;
    /* A pinned peer is shown even when absent (as its placeholder). */
    if (pinned >= 0 && find_peer_tile(c, pinned) < 0 && c->tile_count < CAP_LAYOUT_MAX_TILES)
        add_peer_tile(c, (size_t)pinned, t);
    int share = -1;
    for (size_t i = 0; i < c->video_count && c->tile_count < CAP_LAYOUT_MAX_TILES; i++) {
        struct cap_compose_video *vt = &c->video[i];
        if (!vt->screen || !video_showable(c, vt, t))
            continue;
        struct tile *tl = &c->tiles[c->tile_count];
        memset(tl, 0, sizeof(*tl));
        tl->kind = TILE_FRAME;
        tl->source = (int)i;
        tl->peer = vt->peer;
        if (share < 0 || vt->first_pts >= c->video[c->tiles[share].source].first_pts)
            share = (int)c->tile_count;
        c->tile_count++;
    }
    if (layout == CAP_LAYOUT_SCREENSHARE && share >= 0)
        return share;
    if (pinned >= 0)
        return find_peer_tile(c, pinned);
    if (layout == CAP_LAYOUT_SPEAKER || layout == CAP_LAYOUT_PINNED) {
        int speaking = c->speaker_peer >= 0 ? find_peer_tile(c, c->speaker_peer) : -1;
        return speaking >= 0 ? speaking : c->tile_count ? 0 : -1;
    }
    return -1;
}

static int placeholder_for(struct compose *c, struct peer *p, int w, int h)
{
    if (p->placeholder && p->placeholder->width == w && p->placeholder->height == h)
        return 0;
    av_frame_free(&p->placeholder);
    bool with_text;
    int err = cap_placeholder_render(&p->placeholder, w, h, p->name, &with_text);
    if (err)
        return err;
    if (!with_text && !c->placeholder_text_warned) {
        c->placeholder_text_warned = true;
        CAP_WARN(&c->log, "no font for sans-serif (fontconfig): placeholders show no names");
    }
    p->placeholder_serial++;
    return 0;
}

static bool same_tile(const struct tile *a, const struct tile *b)
{
    return a->kind == b->kind && a->source == b->source && cap_rect_equal(a->rect, b->rect);
}

/* Lays the tiles out and draws what changed since the last tick. */
static int draw_scene(struct compose *c, int focus)
{
    struct cap_layout_request req = {.layout = focus >= 0 ? CAP_LAYOUT_SPEAKER : CAP_LAYOUT_GRID,
                                     .width = c->canvas->width,
                                     .height = c->canvas->height,
                                     .tiles = c->tile_count,
                                     .focus = focus};
    int err = cap_layout_cells(&req, c->cells);
    if (err)
        return fail(c, err, "layout failed");
    for (size_t i = 0; i < c->tile_count; i++) {
        struct tile *tl = &c->tiles[i];
        tl->cell = c->cells[i];
        if (tl->kind == TILE_FRAME) {
            const AVFrame *f = c->video[tl->source].cur;
            int w = f->width, h = f->height;
            if (f->sample_aspect_ratio.num > 0 && f->sample_aspect_ratio.den > 0)
                w = (int)((int64_t)w * f->sample_aspect_ratio.num / f->sample_aspect_ratio.den);
            tl->rect = cap_layout_fit(tl->cell, w, h);
            tl->serial = c->video[tl->source].serial;
        } else {
            tl->rect = tl->cell;
        }
    }
    bool changed = c->tile_count != c->prev_count;
    for (size_t i = 0; !changed && i < c->tile_count; i++)
        changed = !same_tile(&c->tiles[i], &c->prev_tiles[i]);
    if (av_frame_make_writable(c->canvas) < 0)
        return CAP_ENOMEM;
    if (changed) {
        if (c->frame_index > 0)
            c->out->layout_changes++;
        cap_draw_fill(c->canvas, (struct cap_rect){0, 0, c->canvas->width, c->canvas->height}, 16, 128, 128);
    }
    for (size_t i = 0; i < c->tile_count; i++) {
        struct tile *tl = &c->tiles[i];
        if (tl->rect.w < 2 || tl->rect.h < 2)
            continue;
        if (tl->kind == TILE_PLACEHOLDER) {
            struct peer *p = &c->peers[tl->source];
            if ((err = placeholder_for(c, p, tl->rect.w, tl->rect.h)) != 0)
                return fail(c, err, "cannot draw a placeholder");
            tl->serial = p->placeholder_serial;
        }
        if (!changed && tl->serial == c->prev_tiles[i].serial)
            continue; /* the canvas still shows it */
        if (tl->kind == TILE_PLACEHOLDER) {
            cap_draw_copy(c->canvas, tl->rect, c->peers[tl->source].placeholder);
        } else {
            struct cap_compose_video *vt = &c->video[tl->source];
            if ((err = cap_draw_scaled(&vt->sws, c->canvas, tl->rect, vt->cur)) != 0)
                return fail(c, err, "cannot scale track %s", vt->report->track_id);
        }
    }
    struct tile *swap = c->prev_tiles;
    c->prev_tiles = c->tiles;
    c->tiles = swap;
    c->prev_count = c->tile_count;
    return 0;
}

static int64_t tick_ns(const struct compose *c, int64_t k)
{
    return av_rescale(k, CAP_NS_PER_SEC, c->opt.fps);
}

static void report_progress(struct compose *c, int64_t t)
{
    if (!c->opt.progress || c->estimate_ns <= 0)
        return;
    double done = (double)t / (double)c->estimate_ns;
    c->opt.progress(c->opt.user, done > 0.999 ? 0.999 : done);
}

/* Nothing left to show after t (when the end is not known in advance). */
static bool all_exhausted(struct compose *c, int64_t t)
{
    for (size_t i = 0; i < c->video_count; i++) {
        const struct cap_compose_video *vt = &c->video[i];
        if (!cap_compose_video_exhausted(vt) || (vt->has_cur && t < vt->cur_pts + vt->frame_ns))
            return false;
    }
    for (size_t i = 0; i < c->audio_count; i++)
        if (!cap_compose_audio_exhausted(&c->audio[i], samples_at(c, t)))
            return false;
    return true;
}

static int video_tick(struct compose *c, int64_t k)
{
    int64_t t = tick_ns(c, k), frame = tick_ns(c, k + 1) - t;
    int err = audio_advance(c, samples_at(c, t + frame));
    for (size_t i = 0; !err && i < c->video_count; i++) {
        err = cap_compose_video_advance(&c->video[i], t + frame / 2);
        if (err)
            fail(c, err, "video track %s: %s", c->video[i].report->track_id, cap_strerror(err));
    }
    if (err)
        return err;
    int focus = build_scene(c, t);
    if ((err = draw_scene(c, focus)) != 0)
        return err;
    if (c->thumbs && (err = cap_thumbs_offer(c->thumbs, c->canvas, t)) != 0)
        return fail(c, err, "cannot write a thumbnail: %s", cap_strerror(err));
    c->canvas->pts = k;
    if (avcodec_send_frame(c->venc, c->canvas) < 0)
        return fail(c, CAP_EIO, "the video encoder refused a frame");
    c->out->video_frames++;
    return write_packets(c, c->venc, c->vst);
}

static int run(struct compose *c)
{
    int err = 0;
    int64_t k = 0;
    if (c->venc) {
        int64_t frames = c->end_ns >= 0 ? av_rescale_rnd(c->end_ns, c->opt.fps, CAP_NS_PER_SEC, AV_ROUND_NEAR_INF)
                                         : INT64_MAX;
        if (frames == 0 && c->end_ns >= 0)
            frames = 1;
        for (; k < frames; k++) {
            int64_t t = tick_ns(c, k);
            if (c->end_ns < 0 && k > 0 && all_exhausted(c, t))
                break;
            if (t > MAX_DURATION_NS)
                return fail(c, CAP_ELIMIT, "the recording is longer than 48 hours");
            if ((err = video_tick(c, k)) != 0)
                return err;
            c->frame_index = k + 1;
            if (k % 15 == 0)
                report_progress(c, t);
        }
    }
    /* The rest of the audio: to the video's end, or to the audio's own end. */
    int64_t end = c->venc ? samples_at(c, tick_ns(c, k)) : c->end_ns >= 0 ? samples_at(c, c->end_ns) : -1;
    if (c->aenc) {
        while (end < 0 || c->mix_pos < end) {
            if (end < 0) {
                bool left = false;
                for (size_t i = 0; i < c->audio_count; i++)
                    left = left || !cap_compose_audio_exhausted(&c->audio[i], c->mix_pos);
                if (!left)
                    break;
            }
            int64_t n = end < 0 || end - c->mix_pos >= (int64_t)c->block ? (int64_t)c->block : end - c->mix_pos;
            if ((err = mix_block(c, (size_t)n)) != 0)
                return err;
            if (c->mix_pos / c->block % 50 == 0)
                report_progress(c, av_rescale(c->mix_pos, CAP_NS_PER_SEC, c->rate));
        }
    }
    /* Drain the encoders. */
    if (c->venc) {
        avcodec_send_frame(c->venc, NULL);
        if ((err = write_packets(c, c->venc, c->vst)) != 0)
            return err;
    }
    if (c->aenc) {
        avcodec_send_frame(c->aenc, NULL);
        if ((err = write_packets(c, c->aenc, c->ast)) != 0)
            return err;
    }
    int rc = av_write_trailer(c->fmt);
    if (rc < 0) {
        char text[128];
        return fail(c, CAP_EIO, "cannot finish %s: %s", c->opt.out_path, av_error(rc, text, sizeof(text)));
    }
    int64_t video_ns = c->venc ? tick_ns(c, k) : 0;
    int64_t audio_ns = c->aenc ? av_rescale(c->mix_pos, CAP_NS_PER_SEC, c->rate) : 0;
    c->out->duration_ns = video_ns > audio_ns ? video_ns : audio_ns;
    return 0;
}

/* ---- setting up ---- */

static enum cap_compose_container container_from_path(const char *path, bool video)
{
    const char *dot = strrchr(path, '.');
    if (dot && strchr(dot, '/') == NULL) {
        if (strcasecmp(dot, ".webm") == 0 || strcasecmp(dot, ".mkv") == 0)
            return CAP_COMPOSE_WEBM;
        if (strcasecmp(dot, ".m4a") == 0)
            return CAP_COMPOSE_M4A;
        if (strcasecmp(dot, ".ogg") == 0 || strcasecmp(dot, ".opus") == 0)
            return CAP_COMPOSE_OGG;
        if (strcasecmp(dot, ".mp4") == 0)
            return video ? CAP_COMPOSE_MP4 : CAP_COMPOSE_M4A;
    }
    return video ? CAP_COMPOSE_MP4 : CAP_COMPOSE_M4A;
}

static int resolve_options(struct compose *c, const struct cap_compose_options *in)
{
    struct cap_compose_options *o = &c->opt;
    *o = *in;
    if (!o->out_path || !*o->out_path)
        return fail(c, CAP_EINVAL, "no output file given");
    if (!o->video && !o->audio)
        return fail(c, CAP_EINVAL, "nothing to compose: ask for video, audio or both");
    if (o->composition) {
        c->composition = o->composition;
    } else if (o->composition_path) {
        int err = cap_composition_load(o->composition_path, &c->own_composition, c->why, c->why_size);
        if (err)
            return err;
        c->composition = &c->own_composition;
    }
    const struct cap_composition *comp = c->composition;
    if (!o->width && !o->height && comp && comp->width) {
        o->width = comp->width;
        o->height = comp->height;
    }
    if (!o->width && !o->height) {
        o->width = 1280;
        o->height = 720;
    }
    if (o->width < 16 || o->height < 16 || o->width > 7680 || o->height > 4320 || (o->width & 1) || (o->height & 1))
        return fail(c, CAP_ERANGE, "the resolution must be even sizes from 16x16 to 7680x4320 (got %ux%u)", o->width,
                    o->height);
    if (!o->fps)
        o->fps = comp && comp->fps ? comp->fps : 30;
    if (o->fps > 120)
        return fail(c, CAP_ERANGE, "fps must be 1 to 120 (got %u)", o->fps);
    if (!o->preset)
        o->preset = "veryfast";
    if (o->container == CAP_COMPOSE_AUTO)
        o->container = container_from_path(o->out_path, o->video);
    bool video_container = o->container == CAP_COMPOSE_MP4 || o->container == CAP_COMPOSE_WEBM;
    if (o->video && !video_container)
        return fail(c, CAP_EINVAL, "a %s file holds no video: use .mp4 or .webm, or compose audio alone",
                    container_name(o->container));
    if (o->video_codec == CAP_COMPOSE_CODEC_DEFAULT)
        o->video_codec = o->container == CAP_COMPOSE_WEBM ? CAP_COMPOSE_VP8 : CAP_COMPOSE_H264;
    if (o->video && (o->container == CAP_COMPOSE_WEBM) != (o->video_codec != CAP_COMPOSE_H264))
        return fail(c, CAP_EINVAL, "%s goes in %s", o->video_codec == CAP_COMPOSE_H264 ? "H.264" : "VP8/VP9",
                    o->video_codec == CAP_COMPOSE_H264 ? "MP4" : "WebM");
    if (!o->crf)
        o->crf = o->video_codec == CAP_COMPOSE_H264 ? 23 : 32;
    if (o->crf < 0 || o->crf > 63)
        return fail(c, CAP_ERANGE, "crf must be 0 to 63");
    if (o->video_bitrate < 0 || o->video_bitrate > 1000000000 || o->audio_bitrate < 0 || o->audio_bitrate > 1000000)
        return fail(c, CAP_ERANGE, "bitrates must be positive (video up to 1 Gbit/s, audio up to 1 Mbit/s)");
    if (!o->audio_bitrate)
        o->audio_bitrate = 128000;
    c->rate = o->sample_rate ? o->sample_rate : 48000;
    if (c->rate != 48000 && c->rate != 44100 && c->rate != 32000 && c->rate != 24000 && c->rate != 16000)
        return fail(c, CAP_ERANGE, "the sample rate must be 48000, 44100, 32000, 24000 or 16000");
    if ((o->container == CAP_COMPOSE_WEBM || o->container == CAP_COMPOSE_OGG) && (c->rate == 44100 || c->rate == 32000))
        return fail(c, CAP_ERANGE, "Opus takes 48000, 24000 or 16000 Hz");
    if (o->audio_level_ext_id > 14)
        return fail(c, CAP_ERANGE, "the audio-level extension id must be 1 to 14");
    if (o->speaker_from > CAP_SPEAKER_ENERGY)
        return fail(c, CAP_EINVAL, "unknown speaker source");
    if (o->thumbnail_every_ms < 0)
        return fail(c, CAP_ERANGE, "the thumbnail interval must be positive");
    if (o->thumbnail_every_ms > 0 && (!o->video || !o->thumbnail_dir))
        return fail(c, CAP_EINVAL, "thumbnails need composed video and a folder");
    c->initial_layout = o->layout != CAP_LAYOUT_DEFAULT ? o->layout
                        : comp && comp->layout != CAP_LAYOUT_DEFAULT ? comp->layout
                                                                     : CAP_LAYOUT_GRID;
    c->need_speaker = c->initial_layout == CAP_LAYOUT_SPEAKER || c->initial_layout == CAP_LAYOUT_PINNED;
    for (size_t i = 0; comp && i < comp->event_count; i++)
        if (comp->events[i].type == CAP_COMPOSITION_LAYOUT &&
            (comp->events[i].layout == CAP_LAYOUT_SPEAKER || comp->events[i].layout == CAP_LAYOUT_PINNED))
            c->need_speaker = true;
    c->need_speaker = c->need_speaker && o->video;
    c->block = 960;
    return 0;
}

static int add_peer(struct compose *c, const char *peer_id)
{
    int found = find_peer(c, peer_id);
    if (found >= 0)
        return found;
    if (c->peer_count >= CAP_ROOM_MAX_PEERS)
        return -1;
    struct peer *grown = realloc(c->peers, (c->peer_count + 1) * sizeof(*grown));
    if (!grown)
        return -1;
    c->peers = grown;
    struct peer *p = &c->peers[c->peer_count];
    memset(p, 0, sizeof(*p));
    snprintf(p->peer_id, sizeof(p->peer_id), "%s", peer_id);
    snprintf(p->name, sizeof(p->name), "%s", peer_id);
    p->room_peer = -1;
    p->order = INT64_MAX;
    for (size_t i = 0; i < c->room.peer_count; i++)
        if (strcmp(c->room.peers[i].peer_id, peer_id) == 0) {
            p->room_peer = (int)i;
            snprintf(p->name, sizeof(p->name), "%s", c->room.peers[i].display_name);
            p->order = c->room.peers[i].first_seen_ns;
        }
    p->hidden = cap_composition_hidden(c->composition, peer_id, NULL);
    return (int)c->peer_count++;
}

static int room_track_index(struct compose *c, const char *track_id)
{
    for (size_t i = 0; i < c->room.track_count; i++)
        if (strcmp(c->room.tracks[i].track_id, track_id) == 0)
            return (int)i;
    return -1;
}

static int setup_video(struct compose *c, struct cap_track_source *src, struct cap_compose_track *rep)
{
    const struct cap_track_info *info = cap_track_source_info(src);
    struct cap_compose_video *vt = &c->video[c->video_count];
    memset(vt, 0, sizeof(*vt));
    vt->src = src;
    vt->report = rep;
    vt->screen = strcmp(info->kind, "screen") == 0;
    vt->room_track = room_track_index(c, info->track_id);
    vt->peer = add_peer(c, cap_room_owner_peer(info->peer_id[0] ? info->peer_id : info->track_id));
    vt->hidden = cap_composition_hidden(c->composition, NULL, info->track_id);
    vt->frame_ns = CAP_NS_PER_SEC / 30;
    vt->waiting_key = true;
    if (vt->peer < 0)
        return CAP_ELIMIT;
    c->peers[vt->peer].has_tracks = true;
    /* One thread per track already: no frame threads inside the decoder. */
    int err = cap_compose_open_decoder(&vt->dec, info, 1, rep->error, sizeof(rep->error));
    if (err)
        return err;
    pthread_mutex_init(&vt->lock, NULL);
    pthread_cond_init(&vt->cond, NULL);
    c->video_count++; /* cleanup() frees what follows even on failure */
    vt->pkt = av_packet_alloc();
    return vt->pkt ? 0 : CAP_ENOMEM;
}

static int setup_audio(struct compose *c, struct cap_track_source *src, struct cap_compose_track *rep,
                       const char *track_dir)
{
    const struct cap_track_info *info = cap_track_source_info(src);
    struct cap_compose_audio *at = &c->audio[c->audio_count];
    memset(at, 0, sizeof(*at));
    at->src = src;
    at->report = rep;
    at->room_track = room_track_index(c, info->track_id);
    at->peer = add_peer(c, cap_room_owner_peer(info->peer_id[0] ? info->peer_id : info->track_id));
    at->muted = cap_composition_muted(c->composition, cap_room_owner_peer(info->peer_id), info->track_id) ||
                cap_composition_muted(c->composition, info->peer_id, info->track_id);
    rep->muted = at->muted;
    at->level = -1;
    at->next_pos = -1;
    at->rate = c->rate;
    if (at->peer < 0)
        return CAP_ELIMIT;
    c->peers[at->peer].has_tracks = true;
    if (c->need_speaker && !at->muted && c->opt.speaker_from != CAP_SPEAKER_ENERGY) {
        size_t packets;
        unsigned found = cap_compose_find_level_ext(track_dir, &packets);
        unsigned id = c->opt.audio_level_ext_id ? c->opt.audio_level_ext_id : found;
        if (id) {
            int err = cap_compose_load_levels(at, track_dir, id, packets);
            if (err)
                return err;
            c->out->speaker_from_audio_level = true;
        }
    }
    /* Decoded when it is heard, or when its energy has to pick the speaker. */
    bool energy = c->need_speaker && !at->muted && !at->levels.levels && c->opt.speaker_from != CAP_SPEAKER_AUDIO_LEVEL;
    at->decode = (c->opt.audio && !at->muted) || energy;
    if (!at->decode && !(c->need_speaker && at->levels.levels)) {
        cap_compose_levels_free(at);
        return 1; /* not needed at all */
    }
    /* Counted from here on, so cleanup() frees whatever is set up even on failure. */
    c->audio_count++;
    if (!at->decode)
        return 0;
    int err = cap_compose_open_decoder(&at->dec, info, 1, rep->error, sizeof(rep->error));
    if (err) {
        cap_compose_levels_free(at);
        c->audio_count--;
        return err;
    }
    at->pkt = av_packet_alloc();
    at->frame = av_frame_alloc();
    return at->pkt && at->frame ? 0 : CAP_ENOMEM;
}

static int open_tracks(struct compose *c)
{
    char **dirs;
    size_t count;
    int err = cap_track_dirs_list(c->rec_dir, &dirs, &count);
    if (err)
        return fail(c, err, "%s: not a recording folder (no tracks/)", c->rec_dir);
    struct cap_source_options sopt = {.time_zero_ns = cap_recording_time_zero(c->rec_dir)};
    c->out->tracks = calloc(count ? count : 1, sizeof(*c->out->tracks));
    c->sources = calloc(count ? count : 1, sizeof(*c->sources));
    c->video = calloc(count ? count : 1, sizeof(*c->video));
    c->audio = calloc(count ? count : 1, sizeof(*c->audio));
    c->tiles = calloc(CAP_LAYOUT_MAX_TILES, sizeof(*c->tiles));
    c->prev_tiles = calloc(CAP_LAYOUT_MAX_TILES, sizeof(*c->prev_tiles));
    c->cells = calloc(CAP_LAYOUT_MAX_TILES, sizeof(*c->cells));
    if (!c->out->tracks || !c->sources || !c->video || !c->audio || !c->tiles || !c->prev_tiles || !c->cells) {
        cap_track_dirs_free(dirs, count);
        return CAP_ENOMEM;
    }
    c->out->track_count = count;
    /* Every source first, so tracks of one sender share its clock before any is read. */
    for (size_t i = 0; i < count; i++) {
        struct cap_compose_track *rep = &c->out->tracks[i];
        const char *name = strrchr(dirs[i], '/');
        snprintf(rep->track_id, sizeof(rep->track_id), "%s", name ? name + 1 : dirs[i]);
        rep->start_ns = rep->end_ns = -1;
        struct cap_track_source *src;
        err = cap_track_source_open(&src, dirs[i], &sopt);
        if (err) {
            snprintf(rep->error, sizeof(rep->error), "%s",
                     err == CAP_EUNSUPPORTED ? "codec not supported" : cap_strerror(err));
            continue;
        }
        const struct cap_track_info *info = cap_track_source_info(src);
        snprintf(rep->track_id, sizeof(rep->track_id), "%s", info->track_id);
        snprintf(rep->peer_id, sizeof(rep->peer_id), "%s", info->peer_id);
        snprintf(rep->kind, sizeof(rep->kind), "%s", info->kind);
        snprintf(rep->codec, sizeof(rep->codec), "%s", info->codec);
        c->sources[c->source_count++] = src;
    }
    cap_sources_share_sender_offsets(c->sources, c->source_count);
    err = 0;
    size_t used = 0;
    for (size_t i = 0, s = 0; !err && i < count; i++) {
        struct cap_compose_track *rep = &c->out->tracks[i];
        if (rep->error[0])
            continue;
        struct cap_track_source *src = c->sources[s++];
        const struct cap_track_info *info = cap_track_source_info(src);
        bool is_audio = strcmp(info->kind, "audio") == 0;
        int rc;
        if (is_audio)
            rc = setup_audio(c, src, rep, dirs[i]);
        else if (c->opt.video)
            rc = setup_video(c, src, rep);
        else
            rc = 1;
        if (rc == 1) {
            snprintf(rep->error, sizeof(rep->error), "%s", is_audio ? "not needed (muted)" : "not needed (no video asked)");
        } else if (rc == CAP_ENOMEM || rc == CAP_ELIMIT) {
            err = rc;
        } else if (rc < 0) {
            if (!rep->error[0])
                snprintf(rep->error, sizeof(rep->error), "%s", cap_strerror(rc));
            CAP_WARN(&c->log, "track %s left out: %s", rep->track_id, rep->error);
        } else {
            rep->used = true;
            used++;
        }
    }
    cap_track_dirs_free(dirs, count);
    if (err)
        return fail(c, err, "cannot set the tracks up: %s", cap_strerror(err));
    if (count == 0)
        return fail(c, CAP_ENOENT, "%s: the recording has no tracks", c->rec_dir);
    bool any_audio = false, any_video = false;
    for (size_t i = 0; i < c->audio_count; i++)
        any_audio = any_audio || c->audio[i].decode;
    any_video = c->video_count > 0 || c->peer_count > 0;
    if ((c->opt.video && !any_video) || (!c->opt.video && !any_audio))
        return fail(c, CAP_ENOENT, "nothing to compose: no usable %s track", c->opt.video ? "video or audio" : "audio");
    (void)used;
    return 0;
}

static int by_order(const void *a, const void *b)
{
    const struct peer *x = a, *y = b;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return 0;
}

/* Tiles appear in the order peers came; a peer known only from its tracks comes after. */
static void order_peers(struct compose *c)
{
    char (*ids)[CAP_TRACK_ID_MAX] = malloc(c->peer_count * sizeof(*ids));
    if (!ids)
        return;
    for (size_t i = 0; i < c->peer_count; i++)
        memcpy(ids[i], c->peers[i].peer_id, CAP_TRACK_ID_MAX);
    for (size_t i = 0; i < c->peer_count; i++)
        if (c->peers[i].order == INT64_MAX)
            c->peers[i].order = INT64_MAX - (int64_t)(c->peer_count - i); /* keep discovery order */
    /* Stable by construction: ties are impossible after the line above except equal times,
     * for which insertion order is kept below. */
    for (size_t i = 1; i < c->peer_count; i++) {
        struct peer p = c->peers[i];
        size_t k = i;
        while (k > 0 && by_order(&c->peers[k - 1], &p) > 0) {
            c->peers[k] = c->peers[k - 1];
            k--;
        }
        c->peers[k] = p;
    }
    /* Tracks point at peers by index: follow the moves. */
    for (size_t i = 0; i < c->video_count; i++)
        c->video[i].peer = find_peer(c, ids[c->video[i].peer]);
    for (size_t i = 0; i < c->audio_count; i++)
        c->audio[i].peer = find_peer(c, ids[c->audio[i].peer]);
    free(ids);
}

/* Peers the room knew (present at some time) but that have no track still get a tile. */
static int add_room_peers(struct compose *c)
{
    for (size_t i = 0; i < c->room.peer_count; i++)
        if (c->room.peers[i].has_presence && add_peer(c, c->room.peers[i].peer_id) < 0)
            return CAP_ELIMIT;
    return 0;
}

static void cleanup(struct compose *c)
{
    for (size_t i = 0; i < c->video_count; i++) {
        struct cap_compose_video *vt = &c->video[i];
        cap_compose_video_stop(vt);
        pthread_mutex_destroy(&vt->lock);
        pthread_cond_destroy(&vt->cond);
        avcodec_free_context(&vt->dec);
        av_packet_free(&vt->pkt);
        av_frame_free(&vt->cur);
        sws_freeContext(vt->sws);
        free(vt->packet_buf);
    }
    for (size_t i = 0; i < c->audio_count; i++)
        cap_compose_audio_free(&c->audio[i]);
    for (size_t i = 0; i < c->source_count; i++)
        cap_track_source_close(c->sources[i]);
    for (size_t i = 0; i < c->peer_count; i++)
        av_frame_free(&c->peers[i].placeholder);
    free(c->peers);
    free(c->video);
    free(c->audio);
    free(c->sources);
    free(c->tiles);
    free(c->prev_tiles);
    free(c->cells);
    for (int ch = 0; ch < MIX_CHANNELS; ch++)
        free(c->mix[ch]);
    avcodec_free_context(&c->venc);
    avcodec_free_context(&c->aenc);
    av_frame_free(&c->canvas);
    av_frame_free(&c->aframe);
    av_packet_free(&c->opkt);
    if (c->fmt) {
        if (c->fmt->pb && !(c->fmt->oformat->flags & AVFMT_NOFILE))
            avio_closep(&c->fmt->pb);
        avformat_free_context(c->fmt);
    }
    cap_composition_deinit(&c->own_composition);
    cap_room_model_deinit(&c->room);
}

int cap_compose_recording(const char *rec_dir, const struct cap_compose_options *opt,
                          struct cap_compose_result *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof(*out));
    if (why && why_size)
        why[0] = '\0';
    int64_t started = cap_clock_mono_ns();
    struct compose *c = calloc(1, sizeof(*c));
    if (!c)
        return CAP_ENOMEM;
    c->rec_dir = rec_dir;
    c->out = out;
    c->why = why;
    c->why_size = why_size;
    c->log.recording = rec_dir;
    c->speaker_peer = -1;
    c->end_ns = -1;
    av_log_set_level(AV_LOG_ERROR);
    int err = resolve_options(c, opt);
    if (!err && (err = cap_room_model_load(rec_dir, &c->room)) != 0)
        fail(c, err, "%s: cannot read the timeline: %s", rec_dir, cap_strerror(err));
    if (!err)
        err = open_tracks(c);
    if (!err)
        err = add_room_peers(c);
    if (!err) {
        order_peers(c);
        c->end_ns = c->room.stopped_ns;
        c->estimate_ns = c->end_ns;
        if (c->need_speaker)
            cap_speaker_init(&c->speaker, c->peer_count, NULL);
        err = open_output(c);
    }
    if (!err) {
        for (int ch = 0; ch < MIX_CHANNELS && !err; ch++)
            if (!(c->mix[ch] = calloc(c->block, sizeof(float))))
                err = CAP_ENOMEM;
        cap_limiter_init(&c->limiter, c->rate, 0.98f, 0.25f);
    }
    if (!err && c->opt.thumbnail_every_ms > 0) {
        struct cap_thumbs_options topt = {.dir = c->opt.thumbnail_dir,
                                          .every_ns = c->opt.thumbnail_every_ms * CAP_NS_PER_MS,
                                          .width = (int)c->opt.thumbnail_width,
                                          .sheet_path = c->opt.contact_sheet};
        err = cap_thumbs_open(&c->thumbs, &topt, (int)c->opt.width, (int)c->opt.height, why, why_size);
    }
    for (size_t i = 0; !err && i < c->video_count; i++)
        if ((err = cap_compose_video_start(&c->video[i])) != 0)
            fail(c, err, "cannot start a decoding thread");
    if (!err)
        err = run(c);
    if (c->thumbs) {
        int terr = cap_thumbs_close(c->thumbs, &out->thumbnails, out->contact_sheet, sizeof(out->contact_sheet));
        if (!err && terr)
            err = fail(c, terr, "cannot write the contact sheet: %s", cap_strerror(terr));
    }
    snprintf(out->out_path, sizeof(out->out_path), "%s", c->opt.out_path ? c->opt.out_path : "");
    snprintf(out->container, sizeof(out->container), "%s", container_name(c->opt.container));
    out->width = c->opt.video ? c->opt.width : 0;
    out->height = c->opt.video ? c->opt.height : 0;
    out->fps = c->opt.video ? c->opt.fps : 0;
    out->sample_rate = c->opt.audio ? c->rate : 0;
    bool opened = c->fmt != NULL;
    cleanup(c);
    free(c);
    if (err && opened && opt->out_path)
        remove(opt->out_path);
    if (err && why && why_size && !why[0])
        snprintf(why, why_size, "%s", cap_strerror(err));
    out->seconds = (double)(cap_clock_mono_ns() - started) / 1e9;
    if (err)
        cap_compose_result_deinit(out); /* a failure leaves nothing to free */
    if (!err && opt->progress)
        opt->progress(opt->user, 1.0);
    return err;
}

void cap_compose_result_deinit(struct cap_compose_result *r)
{
    free(r->tracks);
    memset(r, 0, sizeof(*r));
}

json_t *cap_compose_summary(const struct cap_compose_result *r, const char *media_uri)
{
    json_t *tracks = json_array();
    for (size_t i = 0; i < r->track_count; i++) {
        const struct cap_compose_track *t = &r->tracks[i];
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:I, s:I}", "track_id", t->track_id, "peer_id",
                              t->peer_id, "kind", t->kind, "codec", t->codec, "used", t->used, "muted", t->muted,
                              "frames", (json_int_t)t->frames_decoded, "decode_errors",
                              (json_int_t)t->decode_errors);
        if (t->start_ns >= 0) {
            json_object_set_new(j, "start_ms", json_integer((json_int_t)(t->start_ns / CAP_NS_PER_MS)));
            json_object_set_new(j, "end_ms", json_integer((json_int_t)(t->end_ns / CAP_NS_PER_MS)));
        }
        if (t->error[0])
            json_object_set_new(j, "error", json_string(t->error));
        json_array_append_new(tracks, j);
    }
    json_t *s = json_pack("{s:s, s:s, s:I, s:I, s:I}", "media_uri", media_uri ? media_uri : r->out_path, "container",
                          r->container, "duration_ms", (json_int_t)(r->duration_ns / CAP_NS_PER_MS), "video_frames",
                          (json_int_t)r->video_frames, "audio_samples", (json_int_t)r->audio_samples);
    if (r->width)
        json_object_set_new(s, "video", json_pack("{s:i, s:i, s:i}", "width", r->width, "height", r->height, "fps", r->fps));
    if (r->sample_rate)
        json_object_set_new(s, "audio", json_pack("{s:i, s:i}", "sample_rate", r->sample_rate, "channels", MIX_CHANNELS));
    json_object_set_new(s, "layout_changes", json_integer((json_int_t)r->layout_changes));
    json_object_set_new(s, "speaker_changes", json_integer((json_int_t)r->speaker_changes));
    json_object_set_new(s, "speaker_from_audio_level", json_boolean(r->speaker_from_audio_level));
    if (r->thumbnails) {
        json_object_set_new(s, "thumbnails", json_integer(r->thumbnails));
        json_object_set_new(s, "contact_sheet", json_string(r->contact_sheet));
    }
    json_object_set_new(s, "tracks", tracks);
    json_object_set_new(s, "seconds", json_real(r->seconds));
    return s;
}
