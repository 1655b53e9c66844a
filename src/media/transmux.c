/* Transmux (transmux.h): per track a source (chunks -> reorder -> depacketizer ->
 * timeline) and a libavformat muxer opened at the first usable frame, when the stream's
 * size and codec configuration are known. */
#include "media/transmux.h"

#include "track/pcap.h"
#include "util/buf.h"
#include "util/bytes.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/log.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/mathematics.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPUS_FRAME_NS (20 * CAP_NS_PER_MS)
#define OPUS_PRE_SKIP 312 /* samples: libopus's encoder delay at 48 kHz, which RTP never states */
#define AUDIO_GAP_NS (60 * CAP_NS_PER_MS)    /* a gap longer than this is filled */
#define MAX_SILENCE_NS (4 * 3600 * CAP_NS_PER_SEC)

struct output {
    AVFormatContext *fmt;
    AVStream *stream;
    enum AVCodecID codec_id;
    bool is_audio;
    bool header_written;
    bool waiting_keyframe;
    int64_t last_pts;          /* in stream time base */
    AVPacket *pkt;             /* reused for every frame */
    int64_t next_audio_ns;     /* where the next audio frame should start */
    int64_t audio_frame_ns;    /* duration of the last audio frame */
    uint8_t silence[320];
    size_t silence_len;
};

struct codec_map {
    const char *codec;
    enum AVCodecID id;
    const char *format;
    const char *ext;
    bool audio;
};

static const struct codec_map codecs[] = {
    {"vp8", AV_CODEC_ID_VP8, "webm", "webm", false},
    {"vp9", AV_CODEC_ID_VP9, "webm", "webm", false},
    {"av1", AV_CODEC_ID_AV1, "webm", "webm", false},
    {"h264", AV_CODEC_ID_H264, "mp4", "mp4", false},
    {"h265", AV_CODEC_ID_HEVC, "mp4", "mp4", false},
    {"opus", AV_CODEC_ID_OPUS, "ogg", "ogg", true},
    {"pcmu", AV_CODEC_ID_PCM_MULAW, "wav", "wav", true},
    {"pcma", AV_CODEC_ID_PCM_ALAW, "wav", "wav", true},
    {"g722", AV_CODEC_ID_ADPCM_G722, "wav", "wav", true},
};

static const struct codec_map *find_codec(const char *codec)
{
    for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
        if (strcmp(codecs[i].codec, codec) == 0)
            return &codecs[i];
    return NULL;
}

/* ---- codec configuration out of the first frame ---- */

/* Annex B: copies the parameter-set NAL units (types in `want`) into extradata. */
static int annexb_params(const uint8_t *p, size_t len, bool hevc, uint8_t **out, int *out_len)
{
    uint8_t *extra = av_mallocz(len + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!extra)
        return CAP_ENOMEM;
    size_t n = 0, i = 0;
    while (i + 3 <= len) {
        if (!(p[i] == 0 && p[i + 1] == 0 && p[i + 2] == 1)) {
            i++;
            continue;
        }
        size_t start = i + 3, end = start;
        while (end + 3 <= len && !(p[end] == 0 && p[end + 1] == 0 && (p[end + 2] == 1 || (p[end + 2] == 0 && end + 3 < len && p[end + 3] == 1))))
            end++;
        if (end + 3 > len)
            end = len;
        if (start < end) {
            int type = hevc ? (p[start] >> 1) & 0x3f : p[start] & 0x1f;
            bool keep = hevc ? (type >= 32 && type <= 34) : (type == 7 || type == 8);
            if (keep) {
                static const uint8_t code[4] = {0, 0, 0, 1};
                memcpy(extra + n, code, 4);
                memcpy(extra + n + 4, p + start, end - start);
                n += 4 + end - start;
            }
        }
        i = end;
    }
    *out = extra;
    *out_len = (int)n;
    return 0;
}

/* AV1: the sequence header OBU of a temporal unit (low-overhead format, with sizes). */
static int av1_sequence_header(const uint8_t *p, size_t len, uint8_t **out, int *out_len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t header = p[i];
        int type = (header >> 3) & 0xf;
        bool ext = header & 4, has_size = header & 2;
        size_t h = 1 + (ext ? 1 : 0);
        if (!has_size || i + h > len)
            return CAP_EFORMAT;
        uint64_t size = 0;
        size_t k = 0;
        for (; k < 8 && i + h + k < len; k++) {
            size |= (uint64_t)(p[i + h + k] & 0x7f) << (7 * k);
            if (!(p[i + h + k] & 0x80))
                break;
        }
        size_t total = h + k + 1 + size;
        if (k == 8 || i + total > len)
            return CAP_EFORMAT;
        if (type == 1) {
            uint8_t *extra = av_mallocz(total + AV_INPUT_BUFFER_PADDING_SIZE);
            if (!extra)
                return CAP_ENOMEM;
            memcpy(extra, p + i, total);
            *out = extra;
            *out_len = (int)total;
            return 0;
        }
        i += total;
    }
    return CAP_EFORMAT;
}

static int opus_head(unsigned channels, uint8_t **out, int *out_len)
{
    uint8_t *h = av_mallocz(19 + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!h)
        return CAP_ENOMEM;
    memcpy(h, "OpusHead", 8);
    h[8] = 1;
    h[9] = (uint8_t)channels;
    cap_store_le16(h + 10, OPUS_PRE_SKIP);
    cap_store_le32(h + 12, 48000);
    *out = h;
    *out_len = 19;
    return 0;
}

/* Samples in one Opus packet (RFC 6716 §3.1), 0 if unknown. */
static int opus_samples(const uint8_t *p, size_t len)
{
    if (len < 1)
        return 0;
    static const int sizes[32] = {480, 960, 1920, 2880, 480, 960, 1920, 2880, 480, 960, 1920, 2880,
                                  480, 960, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960,
                                  120, 240, 480, 960, 120, 240, 480, 960};
    int per_frame = sizes[p[0] >> 3];
    int code = p[0] & 3;
    int frames = code == 0 ? 1 : code == 3 ? (len >= 2 ? p[1] & 0x3f : 0) : 2;
    return per_frame * frames;
}

/* ---- the muxer ---- */

static int open_output(struct output *o, const struct codec_map *cm, bool matroska, const char *path,
                       const struct cap_track_info *info, const struct cap_frame *first, char *why,
                       size_t why_size)
{
    const char *format = matroska ? "matroska" : cm->format;
    int rc = avformat_alloc_output_context2(&o->fmt, NULL, format, path);
    if (rc < 0 || !o->fmt) {
        snprintf(why, why_size, "no %s muxer", format);
        return CAP_EUNSUPPORTED;
    }
    o->stream = avformat_new_stream(o->fmt, NULL);
    if (!o->stream)
        return CAP_ENOMEM;
    AVCodecParameters *par = o->stream->codecpar;
    par->codec_id = cm->id;
    o->codec_id = cm->id;
    o->is_audio = cm->audio;
    int err = 0;
    if (cm->audio) {
        par->codec_type = AVMEDIA_TYPE_AUDIO;
        unsigned channels = info->channels ? info->channels : (cm->id == AV_CODEC_ID_OPUS ? 2 : 1);
        av_channel_layout_default(&par->ch_layout, (int)channels);
        if (cm->id == AV_CODEC_ID_OPUS) {
            par->sample_rate = 48000;
            err = opus_head(channels, &par->extradata, &par->extradata_size);
            /* RTP times an Opus packet by its first sample, encoder priming included, so
             * the samples a player keeps after the pre-skip belong 6.5 ms after it. Ogg
             * granule positions count the pre-skip (RFC 7845 §4) only when the muxer is
             * told of it. Matroska gets no CodecDelay: libavformat 5.1 writes it without
             * moving block times, which would make the audio early; decoders skip the
             * OpusHead's pre-skip and time the rest from the block anyway. */
            if (!matroska)
                par->initial_padding = OPUS_PRE_SKIP;
            o->stream->time_base = (AVRational){1, 48000};
        } else if (cm->id == AV_CODEC_ID_ADPCM_G722) {
            par->sample_rate = 16000; /* RTP says 8000 for G.722 (RFC 3551), the codec runs at 16000 */
            par->bits_per_coded_sample = 4;
            par->block_align = 1;
            o->stream->time_base = (AVRational){1, 16000};
        } else {
            par->sample_rate = info->clock_rate ? (int)info->clock_rate : 8000;
            par->bits_per_coded_sample = 8;
            par->block_align = (int)channels;
            o->stream->time_base = (AVRational){1, par->sample_rate};
        }
    } else {
        par->codec_type = AVMEDIA_TYPE_VIDEO;
        par->width = first->width ? first->width : 640;
        par->height = first->height ? first->height : 480;
        o->stream->time_base = (AVRational){1, 90000};
        if (cm->id == AV_CODEC_ID_H264 || cm->id == AV_CODEC_ID_HEVC)
            err = annexb_params(first->data, first->len, cm->id == AV_CODEC_ID_HEVC, &par->extradata,
                                &par->extradata_size);
        else if (cm->id == AV_CODEC_ID_AV1)
            err = av1_sequence_header(first->data, first->len, &par->extradata, &par->extradata_size);
    }
    if (err) {
        snprintf(why, why_size, "cannot build the %s codec configuration from the first frame", cm->codec);
        return err;
    }
    if (!(o->fmt->oformat->flags & AVFMT_NOFILE) && avio_open(&o->fmt->pb, path, AVIO_FLAG_WRITE) < 0) {
        if (snprintf(why, why_size, "cannot create %s", path) >= (int)why_size)
            why[why_size - 1] = '\0';
        return CAP_EIO;
    }
    AVDictionary *opts = NULL;
    if (strcmp(format, "mp4") == 0)
        av_dict_set(&opts, "movflags", "+faststart", 0);
    rc = avformat_write_header(o->fmt, &opts);
    av_dict_free(&opts);
    if (rc < 0) {
        char text[128];
        av_strerror(rc, text, sizeof(text));
        if (snprintf(why, why_size, "cannot start %s: %s", path, text) >= (int)why_size)
            why[why_size - 1] = '\0';
        return CAP_EIO;
    }
    o->header_written = true;
    o->last_pts = INT64_MIN;
    return 0;
}

static int write_packet(struct output *o, const uint8_t *data, size_t len, int64_t pts_ns,
                        int64_t duration_ns, bool keyframe)
{
    if (!o->pkt && !(o->pkt = av_packet_alloc()))
        return CAP_ENOMEM;
    /* The frame's own bytes, not a copy: av_write_frame takes packets that are not
     * reference-counted and is done with them when it returns. */
    AVPacket *pkt = o->pkt;
    av_packet_unref(pkt);
    pkt->data = (uint8_t *)data;
    pkt->size = (int)len;
    AVRational ns = {1, (int)CAP_NS_PER_SEC};
    int64_t pts = av_rescale_q(pts_ns, ns, o->stream->time_base);
    if (o->last_pts != INT64_MIN && pts <= o->last_pts)
        pts = o->last_pts + 1; /* the muxer needs increasing timestamps */
    o->last_pts = pts;
    pkt->pts = pkt->dts = pts;
    pkt->duration = duration_ns > 0 ? av_rescale_q(duration_ns, ns, o->stream->time_base) : 0;
    pkt->stream_index = o->stream->index;
    if (keyframe)
        pkt->flags |= AV_PKT_FLAG_KEY;
    int rc = av_write_frame(o->fmt, pkt);
    pkt->data = NULL;
    pkt->size = 0;
    return rc < 0 ? CAP_EIO : 0;
}

static void close_output(struct output *o)
{
    av_packet_free(&o->pkt);
    if (!o->fmt)
        return;
    if (o->header_written)
        av_write_trailer(o->fmt);
    if (o->fmt->pb && !(o->fmt->oformat->flags & AVFMT_NOFILE))
        avio_closep(&o->fmt->pb);
    avformat_free_context(o->fmt);
    o->fmt = NULL;
}

/* One frame of silence in the track's codec, and its duration. */
static void make_silence(struct output *o, const struct cap_frame *model, unsigned channels)
{
    switch (o->codec_id) {
    case AV_CODEC_ID_OPUS:
        /* A code-0 packet of no bytes: DTX, which decoders play as silence. Same mode,
         * bandwidth and frame size as the stream's, from its TOC. */
        o->silence[0] = model->len ? (uint8_t)(model->data[0] & 0xfc) : 0xf8;
        o->silence_len = 1;
        o->audio_frame_ns = (int64_t)opus_samples(o->silence, 1) * CAP_NS_PER_SEC / 48000;
        break;
    case AV_CODEC_ID_PCM_MULAW:
    case AV_CODEC_ID_PCM_ALAW:
        o->silence_len = 160 * channels < sizeof(o->silence) ? 160 * channels : sizeof(o->silence);
        memset(o->silence, o->codec_id == AV_CODEC_ID_PCM_MULAW ? 0xff : 0xd5, o->silence_len);
        o->audio_frame_ns = 20 * CAP_NS_PER_MS;
        break;
    case AV_CODEC_ID_ADPCM_G722:
        /* Bytes a G.722 encoder gives for digital silence (the lower band's zero step). */
        o->silence_len = 160;
        memset(o->silence, 0xfa, o->silence_len);
        o->audio_frame_ns = 20 * CAP_NS_PER_MS;
        break;
    default:
        o->silence_len = 0;
    }
}

static int64_t audio_duration_ns(const struct output *o, const struct cap_frame *f, unsigned channels)
{
    switch (o->codec_id) {
    case AV_CODEC_ID_OPUS:
        return (int64_t)opus_samples(f->data, f->len) * CAP_NS_PER_SEC / 48000;
    case AV_CODEC_ID_PCM_MULAW:
    case AV_CODEC_ID_PCM_ALAW:
        return (int64_t)(f->len / (channels ? channels : 1)) * CAP_NS_PER_SEC / 8000;
    case AV_CODEC_ID_ADPCM_G722:
        return (int64_t)f->len * 2 * CAP_NS_PER_SEC / 16000;
    default:
        return 0;
    }
}

/* ---- one track ---- */

static void transmux_track(const struct cap_transmux_options *opt,
                           struct cap_track_source *src, struct cap_transmux_track *t)
{
    const struct cap_track_info *info = cap_track_source_info(src);
    const struct codec_map *cm = find_codec(info->codec);
    if (!cm) {
        snprintf(t->error, sizeof(t->error), "no container for codec '%s'", info->codec);
        return;
    }
    snprintf(t->file, sizeof(t->file), "%s.%s", info->track_id[0] ? info->track_id : "track",
             opt->matroska ? "mkv" : cm->ext);
    snprintf(t->path, sizeof(t->path), "%s/%s", opt->out_dir, t->file);
    struct output o;
    memset(&o, 0, sizeof(o));
    o.waiting_keyframe = true;
    unsigned channels = info->channels ? info->channels : 1;
    struct cap_media_frame mf;
    int got;
    bool any = false;
    struct cap_buf held;
    cap_buf_init(&held, CAP_FRAME_MAX);
    bool have_held = false, held_key = false;
    int64_t held_pts = 0, last_duration = 0;
    while ((got = cap_track_source_next(src, &mf)) == 1) {
        const struct cap_frame *f = &mf.frame;
        if (!cm->audio) {
            /* After loss a frame may be whole yet refer to one that never arrived: only a
             * keyframe makes the picture right again. */
            if (f->after_loss && !opt->keep_damaged)
                o.waiting_keyframe = true;
            if (!f->complete && !opt->keep_damaged) {
                o.waiting_keyframe = true;
                t->frames_dropped++;
                continue;
            }
            if (o.waiting_keyframe && !f->keyframe) {
                t->frames_dropped++;
                continue;
            }
            o.waiting_keyframe = false;
        } else if (!f->complete && !opt->keep_damaged) {
            t->frames_dropped++;
            continue;
        }
        if (!o.fmt) {
            if (open_output(&o, cm, opt->matroska, t->path, info, f, t->error, sizeof(t->error)) != 0) {
                cap_buf_deinit(&held);
                close_output(&o);
                remove(t->path);
                t->path[0] = '\0';
                return;
            }
            if (cm->audio)
                make_silence(&o, f, channels);
            t->start_ns = mf.pts_ns;
            o.next_audio_ns = mf.pts_ns;
            /* WAV has no timestamps: a late start is silence from time zero. */
            if (strcmp(o.fmt->oformat->name, "wav") == 0 && o.silence_len)
                o.next_audio_ns = 0;
        }
        int64_t duration = 0;
        if (cm->audio) {
            duration = audio_duration_ns(&o, f, channels);
            /* A gap becomes silence, frame by frame, so audio stays where it belongs. */
            if (o.silence_len && o.audio_frame_ns > 0 && mf.pts_ns - o.next_audio_ns > AUDIO_GAP_NS &&
                mf.pts_ns - o.next_audio_ns < MAX_SILENCE_NS) {
                while (mf.pts_ns - o.next_audio_ns >= o.audio_frame_ns) {
                    if (write_packet(&o, o.silence, o.silence_len, o.next_audio_ns, o.audio_frame_ns, true) != 0)
                        break;
                    o.next_audio_ns += o.audio_frame_ns;
                    t->silence_frames++;
                }
            }
            /* Small jitter is not a gap: keep audio contiguous. */
            int64_t pts = mf.pts_ns - o.next_audio_ns <= AUDIO_GAP_NS && mf.pts_ns >= o.next_audio_ns - AUDIO_GAP_NS
                              ? o.next_audio_ns
                              : mf.pts_ns;
            if (write_packet(&o, f->data, f->len, pts, duration, true) != 0)
                break;
            o.next_audio_ns = pts + duration;
            t->end_ns = o.next_audio_ns;
        } else {
            /* Each video frame waits for the next, so it can be written with its duration
             * (containers take their length from the last frame's end). */
            if (have_held) {
                int64_t held_duration = mf.pts_ns - held_pts;
                if (held_duration > 0)
                    last_duration = held_duration;
                if (write_packet(&o, held.data, held.len, held_pts, held_duration > 0 ? held_duration : 0,
                                 held_key) != 0)
                    break;
            }
            cap_track_source_take_frame(src, &held); /* the frame's bytes, kept without a copy */
            have_held = true;
            held_pts = mf.pts_ns;
            held_key = f->keyframe;
            t->end_ns = mf.pts_ns;
        }
        any = true;
        t->frames_written++;
        if (opt->progress && t->frames_written % 1000 == 0)
            opt->progress(opt->user, -1);
    }
    if (have_held && o.fmt) {
        /* The last frame lasts as long as the one before it. */
        write_packet(&o, held.data, held.len, held_pts, last_duration, held_key);
        t->end_ns = held_pts + last_duration;
    }
    cap_buf_deinit(&held);
    close_output(&o);
    if (!any) {
        if (!t->error[0])
            snprintf(t->error, sizeof(t->error), "no usable %s", cm->audio ? "audio frame" : "keyframe");
        remove(t->path);
        t->path[0] = '\0';
    }
}

int cap_transmux_recording(const char *rec_dir, const struct cap_transmux_options *opt,
                           struct cap_transmux_result *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof(*out));
    char **dirs;
    size_t count;
    int err = cap_track_dirs_list(rec_dir, &dirs, &count);
    if (err) {
        snprintf(why, why_size, "%s: not a recording folder (no tracks/)", rec_dir);
        return err;
    }
    if ((err = cap_mkdir_p(opt->out_dir))) {
        snprintf(why, why_size, "%s: cannot create: %s", opt->out_dir, cap_strerror(err));
        cap_track_dirs_free(dirs, count);
        return err;
    }
    av_log_set_level(AV_LOG_ERROR);
    struct cap_source_options sopt = {.time_zero_ns = cap_recording_time_zero(rec_dir)};
    out->tracks = calloc(count ? count : 1, sizeof(*out->tracks));
    struct cap_track_source **sources = calloc(count ? count : 1, sizeof(*sources));
    if (!out->tracks || !sources) {
        free(sources);
        cap_track_dirs_free(dirs, count);
        return CAP_ENOMEM;
    }
    out->track_count = count;
    for (size_t i = 0; i < count; i++) {
        struct cap_transmux_track *t = &out->tracks[i];
        const char *name = strrchr(dirs[i], '/');
        snprintf(t->track_id, sizeof(t->track_id), "%s", name ? name + 1 : dirs[i]);
        err = cap_track_source_open(&sources[i], dirs[i], &sopt);
        if (err) {
            snprintf(t->error, sizeof(t->error), "%s", err == CAP_EUNSUPPORTED ? "codec not supported" : cap_strerror(err));
            sources[i] = NULL;
            continue;
        }
        const struct cap_track_info *info = cap_track_source_info(sources[i]);
        snprintf(t->track_id, sizeof(t->track_id), "%s", info->track_id);
        snprintf(t->peer_id, sizeof(t->peer_id), "%s", info->peer_id);
        snprintf(t->kind, sizeof(t->kind), "%s", info->kind);
        snprintf(t->codec, sizeof(t->codec), "%s", info->codec);
    }
    /* Sync: tracks of one sender share its clock offset. */
    size_t open_count = 0;
    struct cap_track_source **open_sources = calloc(count ? count : 1, sizeof(*open_sources));
    for (size_t i = 0; open_sources && i < count; i++)
        if (sources[i])
            open_sources[open_count++] = sources[i];
    if (open_sources)
        cap_sources_share_sender_offsets(open_sources, open_count);
    free(open_sources);
    for (size_t i = 0; i < count; i++) {
        if (!sources[i])
            continue;
        transmux_track(opt, sources[i], &out->tracks[i]);
        out->tracks[i].source = *cap_track_source_stats(sources[i]);
        cap_track_clock_report(cap_track_source_clock(sources[i]), &out->tracks[i].clock);
        cap_track_source_close(sources[i]);
        if (opt->progress)
            opt->progress(opt->user, (double)(i + 1) / (double)count);
    }
    free(sources);
    cap_track_dirs_free(dirs, count);
    return 0;
}

void cap_transmux_result_deinit(struct cap_transmux_result *r)
{
    free(r->tracks);
    memset(r, 0, sizeof(*r));
}

json_t *cap_transmux_summary(const char *rec_dir, const struct cap_transmux_result *r)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/metadata.json", rec_dir);
    char *metadata = NULL;
    size_t len;
    if (cap_read_file(path, 16 << 20, &metadata, &len) != 0)
        metadata = NULL;
    json_t *peers = json_object();
    for (size_t i = 0; i < r->track_count; i++) {
        const struct cap_transmux_track *t = &r->tracks[i];
        if (!t->path[0])
            continue;
        const char *peer = t->peer_id[0] ? t->peer_id : t->track_id;
        json_t *p = json_object_get(peers, peer);
        if (!p) {
            p = json_pack("{s:{s:{s:{}}}}", "sessions", "0", "track");
            json_object_set_new(peers, peer, p);
        }
        json_t *tracks = json_object_get(json_object_get(json_object_get(p, "sessions"), "0"), "track");
        json_object_set_new(tracks, t->track_id,
                            json_pack("{s:s, s:[{s:s, s:I, s:I}]}", "kind", t->kind, "timeline", "path",
                                      t->file, "start", (json_int_t)(t->start_ns / CAP_NS_PER_MS), "end",
                                      (json_int_t)(t->end_ns / CAP_NS_PER_MS)));
    }
    json_t *summary = json_pack("{s:s, s:o}", "metadata_json", metadata ? metadata : "", "peers", peers);
    free(metadata);
    return summary;
}
